"""vidlake.scan and candidate frames (vidlake.curate): extensions, sources, codecs, keyframes-only."""
from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import video

import vidlake
from vidlake.curate import Candidates, candidate_frames, is_video_name, iter_candidate_batches

FFMPEG = shutil.which("ffmpeg")


def _touch(root: Path, names: list[str]) -> None:
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"not really a video")


MIXED = ["a.MP4", "b.Mov", "c.m4v", "d.HEVC", "e.mpg", "f.MPEG", "g.Avi", "h.webm", "i.mkv", "j.ts", "k.IVF",
         "l.h264", "sub/m.WebM", "sub/deeper/n.mp4"]
OTHER = ["notes.txt", "cover.JPG", "README", "clip.mp4.part", "mp4", "sub/x.flv", "sub/y.ogv", "sub/.DS_Store"]


def test_extensions_case_insensitive_and_others_counted(tmp_path):
    _touch(tmp_path, MIXED + OTHER)
    found = vidlake.scan(tmp_path)
    assert sorted(Path(v).name for v in found) == sorted(Path(n).name for n in MIXED)
    assert found.skipped_count == len(OTHER)
    by_ext = found.skipped_by_extension
    assert (by_ext[".txt"], by_ext[".jpg"], by_ext[".part"], by_ext[".flv"]) == (1, 1, 1, 1)
    assert by_ext[""] == 3  # README, "mp4" (a name, not an extension), .DS_Store
    assert "14 video(s), 8 other file(s) skipped" in found.summary()
    # not recursive, a glob, a file:// URL, a list
    assert len(vidlake.scan(tmp_path, recursive=False)) == 12
    assert [Path(v).name for v in vidlake.scan(str(tmp_path / "sub" / "*"))] == ["m.WebM"]
    assert len(vidlake.scan(str(tmp_path / "**" / "*.mp4"))) == 1  # glob patterns match case-sensitively
    assert len(vidlake.scan(f"file://{tmp_path}")) == 14
    assert len(vidlake.scan([str(tmp_path / "sub"), str(tmp_path / "a.MP4")])) == 3
    for name in ("s3://b/x/CLIP.MKV", "https://h/v.Mp4?sig=1", "x.TS"):
        assert is_video_name(name)
    for name in ("s3://b/x/clip.mkv.tmp", "https://h/v.png", "x.tsx", ""):
        assert not is_video_name(name)
    with pytest.raises(FileNotFoundError):
        vidlake.scan(tmp_path / "missing")


def test_scan_s3_prefix_feeds_reads_and_links(moto_server, s3_bucket):
    c = moto_server.client()
    data = Path(video("bikes.mp4")).read_bytes()
    c.put_object(Bucket=s3_bucket, Key="in/BIKES.MP4", Body=data)
    c.put_object(Bucket=s3_bucket, Key="in/sub/two.webm", Body=Path(video("vp90-2-2pass-akiyo.webm")).read_bytes())
    c.put_object(Bucket=s3_bucket, Key="in/labels.json", Body=b"{}")
    c.put_object(Bucket=s3_bucket, Key="other/skip.mp4", Body=b"x")
    creds = moto_server.creds()
    found = vidlake.scan(f"s3://{s3_bucket}/in/", creds=creds)
    assert found.videos == [f"s3://{s3_bucket}/in/BIKES.MP4", f"s3://{s3_bucket}/in/sub/two.webm"]
    assert found.skipped == [f"s3://{s3_bucket}/in/labels.json"]
    assert [Path(v).name for v in vidlake.scan(f"s3://{s3_bucket}/in", creds=creds, recursive=False)] == ["BIKES.MP4"]
    r = found.open(0)
    assert len(r) == 250
    np.testing.assert_array_equal(r[[0, 100]], vidlake.VideoReader(video("bikes.mp4"))[[0, 100]])
    links = found.links()
    assert [lk.url for lk in links] == found.videos


def test_scan_http_listing(tmp_path):
    _touch(tmp_path, ["a.mp4", "B.MKV", "c.txt", "d/e.webm"])
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}/"
        found = vidlake.scan(base)
        assert found.videos == [base + "B.MKV", base + "a.mp4", base + "d/e.webm"]
        assert found.skipped == [base + "c.txt"]
        assert len(vidlake.scan(base, recursive=False)) == 2
        with pytest.raises(vidlake.StorageError, match="not an HTML directory listing"):
            vidlake.scan(base + "c.txt")
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


# ---- candidates ------------------------------------------------------------------------
def test_candidate_modes_from_the_index():
    r = vidlake.VideoReader(video("bikes.mp4"))  # 250 frames, 25 fps, 6 keyframes
    before = r.stats["frames_decoded"]
    np.testing.assert_array_equal(candidate_frames(r, "all"), np.arange(250))
    np.testing.assert_array_equal(candidate_frames(r, "every:10"), np.arange(0, 250, 10))
    np.testing.assert_array_equal(candidate_frames(r, 25), np.arange(0, 250, 25))
    np.testing.assert_array_equal(candidate_frames(r, "keyframes"), r.keyframe_indices)
    two = candidate_frames(r, "per_second:2")
    np.testing.assert_array_equal(two, r.indices_played_at(np.arange(0, 10, 0.5)))
    assert len(two) == 20
    np.testing.assert_array_equal(candidate_frames(r, None), candidate_frames(r, "fps:1"))
    assert r.stats["frames_decoded"] == before  # the index alone: nothing decoded
    assert str(Candidates.parse("every:5")) == "every:5"
    assert str(Candidates.parse("fps:2")) == "per_second:2"
    for bad in ("every:0", "per_second:-1", "sometimes", "every:1.5", "keyframes:3"):
        with pytest.raises(ValueError, match="candidates"):
            Candidates.parse(bad)
    with pytest.raises(TypeError):
        Candidates.parse(1.5)
    # no keyframe flags at all (intra-only VP9): frame 0 stands in
    r0 = vidlake.VideoReader(video("vp90-2-16-intra-only.webm"))
    np.testing.assert_array_equal(candidate_frames(r0, "keyframes"), [0])


# open GOPs (H.264 recovery points, HEVC CRA, MPEG-2), AVI without pts, AV1, VP8, MPEG-4 ASP,
# a container keyframe a decode cannot start from (two_first_slice: the ordinary path is used)
KEYFRAME_ASSETS = ["samplemp4.mp4", "interlaced_crop.mp4", "h265_video.mp4", "matrixbench_mpeg2.lq1.mpg",
                   "sampleavi.avi", "av1_video.mkv", "dash_video4.webm", "packed_bframes.avi",
                   "elst_ends_betn_b_and_i.mp4", "two_first_slice.mp4", "xdcam8mp2-1s_small.ts"]


@pytest.mark.parametrize("name", KEYFRAME_ASSETS)
def test_keyframes_only_decodes_only_keyframes(name):
    r = vidlake.VideoReader(video(name))
    k = r.keyframe_indices
    frames, st = r.get_keyframes(k)
    # the same pixels as the ordinary read
    np.testing.assert_array_equal(frames, vidlake.VideoReader(video(name)).get_frames(k))
    alone = len(k) - st["fallback_frames"]
    assert (st["packets_decoded"], st["frames_decoded"], st["frames_converted"]) == (alone, alone, alone)
    if name != "two_first_slice.mp4":
        assert st["fallback_frames"] == 0
    small, _ = r.get_keyframes(k[:2], size=(32, 48), gray=True)
    np.testing.assert_array_equal(small, vidlake.VideoReader(video(name)).get_frames(k[:2], size=(32, 48), gray=True))


def test_keyframes_only_is_far_cheaper_than_decoding_all():
    r = vidlake.VideoReader(video("dash_video4.webm"))  # 812 frames, 27 keyframes
    stats: dict[str, int] = {}
    got = list(iter_candidate_batches(r, candidate_frames(r, "keyframes"), "keyframes", size=(64, 64), batch=10,
                                      stats=stats))
    assert [len(f) for f, _ in got] == [10, 10, 7]
    assert (stats["packets_decoded"], stats["frames_decoded"]) == (27, 27)
    r.reset_stats()
    r.get_frames(np.arange(len(r)), size=(64, 64))
    assert (r.stats["frames_decoded"], r.stats["packets_decoded"]) == (812, 812)
    with pytest.raises(ValueError, match="not a keyframe"):
        r.get_keyframes([1])


# ---- every codec the issue names, in files made here ----------------------------------
CODECS = [  # (file, ffmpeg encoder arguments)
    ("h264.mp4", ["-c:v", "libx264", "-g", "4", "-bf", "2", "-pix_fmt", "yuv420p"]),
    ("h265.MP4", ["-c:v", "libx265", "-x265-params", "keyint=4:log-level=none", "-pix_fmt", "yuv420p",
                  "-tag:v", "hvc1"]),
    ("vp8.webm", ["-c:v", "libvpx", "-g", "4", "-b:v", "200k"]),
    ("vp9.webm", ["-c:v", "libvpx-vp9", "-g", "4", "-b:v", "200k", "-deadline", "realtime", "-cpu-used", "8"]),
    ("av1.mkv", ["-c:v", "libaom-av1", "-g", "4", "-cpu-used", "8", "-b:v", "200k", "-pix_fmt", "yuv420p"]),
    ("mpeg2.mpg", ["-c:v", "mpeg2video", "-g", "4", "-bf", "2"]),
    ("mpeg4.avi", ["-c:v", "mpeg4", "-g", "4"]),
    ("mjpeg.avi", ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p"]),
    ("cinepak.mov", ["-c:v", "cinepak", "-g", "4"]),
]


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory):
    if FFMPEG is None:
        pytest.skip("the ffmpeg CLI is needed to make the codec test files")
    d = tmp_path_factory.mktemp("codecs")
    made = []
    for name, args in CODECS:
        cmd = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1.2",
               *args, str(d / name)]
        if subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0:
            made.append(name)
    (d / "readme.txt").write_text("not a video")
    return d, made


def test_every_named_codec_scans_selects_and_reads_keyframes(codec_dir):
    d, made = codec_dir
    missing = {n for n, _ in CODECS} - set(made)
    assert not missing, f"the system ffmpeg could not encode {sorted(missing)}"
    found = vidlake.scan(d)
    assert (len(found), found.skipped_count) == (len(CODECS), 1)
    codecs = set()
    for i in range(len(found)):
        r = found.open(i)
        codecs.add(r.metadata["codec"])
        assert len(r) == 12
        k = candidate_frames(r, "keyframes")
        frames, st = r.get_keyframes(k)
        np.testing.assert_array_equal(frames, vidlake.VideoReader(found[i]).get_frames(k))
        assert st["packets_decoded"] == len(k) - st["fallback_frames"]
    assert codecs == {"h264", "hevc", "vp8", "vp9", "av1", "mpeg2video", "mpeg4", "mjpeg", "cinepak"}
    sel = vidlake.select(found, n_samples=9, candidates="keyframes", per_video=1, workers=0, progress=False)
    assert sorted(sel.video.tolist()) == list(range(9))


def test_keyframes_only_over_s3_fetches_only_keyframe_bytes(moto_server, s3_bucket):
    data = Path(video("dash_video4.webm")).read_bytes()
    moto_server.client().put_object(Bucket=s3_bucket, Key="v/dash.webm", Body=data)
    r = vidlake.open_remote_video(f"s3://{s3_bucket}/v/dash.webm", moto_server.creds(), cache=False)
    packets = r.index._fields()["packets"]  # (pts, dts, duration, offset, size, flags)
    key_bytes = sum(p[4] for p in packets if p[5] & 1)
    before = dict(r._source.stats)
    frames, st = r.get_keyframes()
    fetched = r._source.stats["bytes_fetched"] - before["bytes_fetched"]
    assert st["packets_decoded"] == 27
    assert fetched == key_bytes  # 68 791 of 871 646 bytes: nothing of the GOPs but their keyframes
    assert fetched < len(data) / 10
    np.testing.assert_array_equal(frames, vidlake.VideoReader(video("dash_video4.webm")).get_frames(r.keyframe_indices))
