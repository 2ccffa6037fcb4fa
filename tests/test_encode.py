"""Writing video (issue 17): vidlake.encode / VideoWriter / frames, ds.videos.append(frames),
re-encoding at ingest. Frames are small and synthetic so that the whole file runs in seconds."""
from __future__ import annotations

import gc
import io
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import oracle
import pytest
from assets import VIDEO_DIR

import vidlake
from vidlake import _core
from vidlake.errors import SampleAppendError, VideoEncodeError
from vidlake.format.records import check_entry
from vidlake.video import VideoReader
from vidlake.video.encode import CODECS, LOSSLESS, available_codecs, reencode_bytes

H, W, N = 64, 80, 12


@pytest.fixture(autouse=True)
def _libx264():
    """vidlake's default codec; the per-codec tests skip on their own encoder."""
    if not _core.has_encoder("libx264"):
        pytest.skip("the system FFmpeg has no libx264 (vidlake's default h264 encoder)")


#: the lowest PSNR (dB) a default lossy encode of the test pattern must reach, per codec; 4:2:0
#: alone (FFV1, lossless after the chroma subsampling) gives 35.7 dB on it, the codecs measured
#: 31.4 (hevc) .. 33.6 (vp9); vp8's default is a 1 bit/pixel cap
PSNR_FLOOR = {"h264": 30, "hevc": 29, "av1": 30, "vp9": 30, "vp8": 24, "ffv1": 34, "mpeg2": 30, "mpeg4": 30,
              "mjpeg": 30}


def pattern(n: int = N, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """Moving gradients plus a little noise: natural enough for every codec, never constant."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((n, h, w, 3), np.float64)
    for i in range(n):
        out[i, ..., 0] = 128 + 90 * np.sin(x / 9.0 + i / 5.0)
        out[i, ..., 1] = 128 + 90 * np.cos(y / 7.0 - i / 4.0)
        out[i, ..., 2] = 128 + 90 * np.sin((x + y) / 13.0 + i / 3.0)
    return np.clip(out + rng.integers(-2, 3, out.shape), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def need(codec: str) -> str:
    enc = available_codecs().get(codec)
    if enc is None:
        pytest.skip(f"the system FFmpeg has none of the encoders {CODECS[codec]} for {codec}")
    return enc


# -- numpy round trips -------------------------------------------------------------------
@pytest.mark.parametrize("codec", sorted(LOSSLESS))
def test_lossless_round_trip_is_bit_exact(codec):
    enc, _pf = LOSSLESS[codec]
    if not _core.has_encoder(enc):
        pytest.skip(f"the system FFmpeg has no {enc} (lossless {codec})")
    fr = pattern(seed=1)
    rng = np.random.default_rng(5)
    fr[3] = rng.integers(0, 256, fr[3].shape, dtype=np.uint8)  # pure noise: nothing to smooth over
    info = vidlake.encode(fr, None, codec=codec, lossless=True)
    r = VideoReader(info["data"])
    back = r[:]
    assert back.shape == fr.shape
    assert np.array_equal(back, fr), f"{codec} lossless: max diff {np.abs(back.astype(int) - fr).max()}"
    assert info["encoded"]["lossless"] is True
    assert info["shape"] == [N, H, W, 3]


@pytest.mark.parametrize(("codec", "pix_fmt"), [("h264", "yuv444p10le"), ("ffv1", "yuv444p10le"),
                                               ("ffv1", "yuv444p16le")])
def test_yuv444_10bit_is_exact_and_8bit_is_not(codec, pix_fmt):
    """Documented in the README: 8-bit RGB through BT.709 YUV 4:4:4 with 10 or more bits (libx264
    qp 0, FFV1) comes back bit-exact; through 8-bit 4:4:4 it is off by up to 2 levels (the RGB ->
    YUV rounding), although the codec itself is lossless there."""
    need(codec)
    rng = np.random.default_rng(7)
    fr = rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)  # 16384 random colours
    info = vidlake.encode(fr, None, codec=codec, pix_fmt=pix_fmt, lossless=True)
    assert info["encoded"]["pix_fmt"] == pix_fmt
    assert info["encoded"]["color_space"] == "bt709"
    assert np.array_equal(VideoReader(info["data"])[:], fr)
    near = VideoReader(vidlake.encode(fr, None, codec=codec, pix_fmt="yuv444p",
                                      options={"qp": 0} if codec == "h264" else None)["data"])[:]
    d = np.abs(near.astype(int) - fr)
    assert 0 < d.max() <= 2


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_every_codec_round_trips(codec, tmp_path):
    need(codec)
    fr = pattern()
    info = vidlake.encode(fr, None, codec=codec, fps=25)
    r = VideoReader(info["data"])
    back = r[:]
    assert back.shape == fr.shape == tuple(info["shape"])
    assert len(r) == N
    p = psnr(back, fr)
    assert p >= PSNR_FLOOR[codec], f"{codec}: PSNR {p:.1f} dB < {PSNR_FLOOR[codec]}"
    # timestamps read back are those given (one frame every 1/25 s); mkv / webm keep ms
    tol = 0 if info["format"] in ("mp4", "mov") else 5e-4
    assert np.allclose(r.timestamps, np.arange(N) / 25, atol=tol, rtol=0)
    if tol == 0:
        assert np.array_equal(r.timestamps, np.arange(N) / 25)


def test_small_av1_falls_back_to_libaom():
    if not (_core.has_encoder("libsvtav1") and _core.has_encoder("libaom-av1")):
        pytest.skip("needs both libsvtav1 and libaom-av1 in the system FFmpeg")
    fr = pattern(n=6, h=32, w=48)
    info = vidlake.encode(fr, None, codec="av1")
    assert info["encoded"]["encoder"] == "libaom-av1"
    assert psnr(VideoReader(info["data"])[:], fr) > 28


def test_colour_tags_written_and_inverted_by_default_conversion():
    fr = pattern()
    info = vidlake.encode(fr, None, codec="h264", crf=10, pix_fmt="yuv444p")
    r = VideoReader(info["data"])
    md = r.metadata
    assert (md["color_space"], md["color_range"], md["color_primaries"], md["color_transfer"]) == \
        ("bt709", "tv", "bt709", "bt709")
    # the default ("stream") conversion inverts the BT.709 matrix used to encode; BT.601 does not
    good = psnr(r[:], fr)
    bad = psnr(r.get_frames(range(N), color_conversion="bt601"), fr)
    assert good > 37
    assert good > bad + 5


def test_timestamps_given_are_read_back(tmp_path):
    fr = pattern()
    ts = np.array([0.0, 0.04, 0.1, 0.12, 0.2, 0.25, 0.3, 0.5, 0.55, 0.6, 0.61, 1.0]) + 2.0
    info = vidlake.encode(fr, tmp_path / "t.mp4", timestamps=ts)
    r = VideoReader(tmp_path / "t.mp4")
    assert np.array_equal(r.timestamps, ts)
    assert info["shape"][0] == N
    # mkv stores milliseconds
    vidlake.encode(fr, tmp_path / "t.mkv", timestamps=ts)
    assert np.allclose(VideoReader(tmp_path / "t.mkv").timestamps, ts, atol=5e-4, rtol=0)


def test_settings_gop_bframes_pix_fmt_and_file_object(tmp_path):
    fr = pattern(n=20)
    buf = io.BytesIO()
    info = vidlake.encode(fr, buf, codec="h264", gop=5, bframes=0, pix_fmt="yuv444p", crf=20)
    r = VideoReader(buf.getvalue())
    assert list(r.keyframe_indices) == [0, 5, 10, 15]
    assert r.metadata["pix_fmt"] == "yuv444p"
    assert info["keyframes"] == 4
    assert r.metadata["has_b_frames"] == 0
    ten = vidlake.encode(fr, tmp_path / "a.mp4", pix_fmt="yuv420p10le")
    assert VideoReader(tmp_path / "a.mp4").metadata["pix_fmt"] == "yuv420p10le"
    assert psnr(VideoReader(tmp_path / "a.mp4")[:], fr) > 30
    assert ten["encoded"]["pix_fmt"] == "yuv420p10le"


def test_bad_input_is_a_clear_error(tmp_path):
    fr = pattern()
    with pytest.raises(VideoEncodeError, match="uint8"):
        vidlake.encode(fr.astype(np.float32), None)
    with pytest.raises(VideoEncodeError, match="no frames"):
        vidlake.encode(fr[:0], None)
    with pytest.raises(VideoEncodeError, match="different sizes"):
        vidlake.encode(iter([fr[0], fr[1, :32]]), None)
    with pytest.raises(VideoEncodeError, match="even"):
        vidlake.encode(fr[:, :63], None)
    with pytest.raises(VideoEncodeError, match=r"\(N, H, W, 3\)"):
        vidlake.encode(fr[..., :2], None)
    with pytest.raises(VideoEncodeError, match="unknown codec"):
        vidlake.encode(fr, None, codec="nope")
    with pytest.raises(VideoEncodeError, match="does not know the option"):
        vidlake.encode(fr, None, options={"no-such-option": 1})
    with pytest.raises(VideoEncodeError, match="timestamps"):
        vidlake.encode(fr, None, timestamps=np.zeros(N))
    with pytest.raises(VideoEncodeError, match="mp4 container cannot hold ffv1"):
        vidlake.encode(fr, tmp_path / "f.mp4", codec="ffv1")
    with pytest.raises(VideoEncodeError, match="webm container cannot hold h264"):
        vidlake.encode(fr, tmp_path / "f.webm", codec="h264")
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(VideoEncodeError):
        vidlake.encode(iter([fr[0], fr[1, :32]]), tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()  # a failed encode leaves no partial file


# -- streaming writer --------------------------------------------------------------------
def test_streaming_writer_10000_frames_flat_memory(tmp_path):
    """10,000 frames through VideoWriter: Python-side memory stays flat (the frames are not
    kept) and every frame is in the file."""
    path = tmp_path / "long.mp4"
    base = pattern(n=50, h=16, w=16)
    gc.collect()
    tracemalloc.start()
    try:
        with vidlake.VideoWriter(path, fps=100, codec="h264", gop=100, preset="ultrafast") as w:
            peaks = []
            for k in range(200):
                w.append(base.copy())  # a fresh 38 KB batch each time
                if k in (20, 199):
                    peaks.append(tracemalloc.get_traced_memory()[0])
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(w) == 10_000
    # what Python holds after 20 batches and after 200 is the same (< 200 KB apart); all the
    # frames together are 7.7 MB
    assert peaks[1] - peaks[0] < 200_000, peaks
    assert peak < 2_000_000, peak
    r = VideoReader(path)
    assert len(r) == 10_000
    assert w.info["shape"] == [10_000, 16, 16, 3]
    assert np.array_equal(r.timestamps[[0, 9999]], [0.0, 99.99])
    assert psnr(r[[0, 5049, 9999]], base[[0, 49, 49]]) > 25


def test_writer_keeps_frames_recorded_before_an_error(tmp_path):
    path = tmp_path / "rec.mp4"
    fr = pattern()
    w = vidlake.VideoWriter(path)

    def record():
        with w:
            w.append(fr)
            w.append(fr[:, :, :40])  # wrong size: refused, the 12 frames before are kept

    with pytest.raises(VideoEncodeError, match="frame 12 is 40x64"):
        record()
    assert len(VideoReader(path)) == N
    assert w.info["shape"] == [N, H, W, 3]


def test_encoders_in_threads():
    """Encoders run with the GIL released: four threads encode at once, each file is whole."""
    fr = pattern(n=30)
    with ThreadPoolExecutor(4) as pool:
        out = list(pool.map(lambda k: vidlake.encode(fr, None, crf=20 + k, threads=1)["data"], range(4)))
    for data in out:
        assert len(VideoReader(data)) == 30
    assert psnr(VideoReader(out[0])[:], fr) > 30


# -- datasets ----------------------------------------------------------------------------
def test_dataset_append_frames(tmp_path):
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4", encode={"crf": 18, "gop": 4})
    fr = pattern()
    ds.videos.append(fr)
    ds.videos.append(iter(list(fr)))  # an iterator of frames
    ts = np.arange(N) * 0.05 + 1.0
    ds.videos.append(vidlake.frames(fr, timestamps=np.round(ts, 2), codec="h264", lossless=True))
    ds.flush()
    ds = vidlake.load(str(tmp_path / "ds"))
    assert len(ds.videos) == 3
    a = ds.videos[0].numpy()
    assert a.shape == fr.shape
    assert psnr(a, fr) > 30
    info = ds.videos[0].sample_info
    assert info["encoded"]["crf"] == 18
    assert info["encoded"]["gop"] == 4
    assert info["shape"] == [N, H, W, 3]
    assert ds.videos[1].numpy().shape == fr.shape
    assert psnr(ds.videos[1].numpy(), fr) > 30
    assert np.array_equal(ds.videos[2].numpy(), fr)
    assert ds.videos[2].sample_info["encoded"]["lossless"] is True
    r = ds.videos.reader(2)
    assert np.array_equal(r.timestamps, np.round(ts, 2))


@pytest.mark.parametrize("compression", ["mkv", "webm"])
def test_dataset_append_frames_other_containers(tmp_path, compression):
    if compression == "webm":
        need("vp9")
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("v", htype="video", sample_compression=compression)
    ds.v.append(pattern())
    assert ds.v[0].sample_info["format"] == compression
    assert ds.v[0].sample_info["encoded"]["codec"] == ("vp9" if compression == "webm" else "h264")
    assert ds.v[0].numpy().shape == (N, H, W, 3)


def test_dataset_bad_frames_leave_dataset_unchanged(tmp_path):
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(pattern())
    ds.flush()
    fr = pattern()
    bad = [fr.astype(np.float64), fr[:0], iter([fr[0], fr[1, :, :32]]), fr[:, :63, :63], np.zeros((3, 8, 8), np.uint8)]
    for b in bad:
        with pytest.raises(SampleAppendError):
            ds.videos.append(b)
        assert len(ds.videos) == 1
    ds.flush()
    assert len(vidlake.load(str(tmp_path / "ds")).videos) == 1
    with pytest.raises(ValueError, match="video tensors"):
        ds.create_tensor("labels", htype="class_label", encode={"crf": 1})
    with pytest.raises(ValueError, match="unknown settings"):
        ds.create_tensor("v2", htype="video", sample_compression="mp4", encode={"quality": 1})
    with pytest.raises(ValueError, match="profile"):
        ds.create_tensor("v3", htype="video", sample_compression="mp4", reencode="fastest")
    ds.create_tensor("v4", htype="video", sample_compression="avi")
    with pytest.raises(SampleAppendError, match="encodes into"):
        ds.v4.append(fr)


# -- re-encoding -------------------------------------------------------------------------
SRC = VIDEO_DIR / "bikes.mp4"


def need_src():
    if not SRC.exists():
        pytest.skip(f"{SRC} is missing (VIDLAKE_TESTDATA)")


@pytest.fixture(scope="module")
def short_src(tmp_path_factory):
    """The first 60 frames of bikes.mp4 (h264, 640x272, 6 keyframes in 250), cut with stream copy."""
    need_src()
    out = tmp_path_factory.mktemp("src") / "short.mp4"
    r = VideoReader(SRC)
    fr = r[:60]
    vidlake.encode(fr, out, codec="h264", gop=250, crf=23)  # long GOP, B-frames: seek-unfriendly
    return out


@pytest.mark.parametrize("profile", ["seek", "intra", {"codec": "h264", "gop": 7, "bframes": 2, "crf": 30}])
def test_reencode_bytes_exact_against_sequential_decode(short_src, profile):
    data = short_src.read_bytes()
    new, info = reencode_bytes(data, profile)
    src = VideoReader(data)
    r = VideoReader(new)
    assert len(r) == len(src) == 60
    assert np.array_equal(r.timestamps, src.timestamps)  # the source's timestamps, exactly
    gop = {"seek": 10, "intra": 1}.get(profile if isinstance(profile, str) else "", 7)
    assert list(r.keyframe_indices) == list(range(0, 60, gop))
    assert info["reencoded"]["profile"] == (profile if isinstance(profile, str) else "custom")
    # random reads of the re-encoded stream equal a sequential decode of it (the oracle)
    path = short_src.parent / f"re_{info['reencoded']['profile']}_{gop}.mp4"
    path.write_bytes(new)
    idx = [59, 0, 33, 7, 8, 21, 21, 50]
    want = oracle.frames(str(path), idx)
    got = VideoReader(path).get_frames(idx)
    for k, i in enumerate(idx):
        assert np.array_equal(got[k], want[i]), f"frame {i}"
    assert psnr(r[:], src[:]) > 30


def test_dataset_reencode_and_keep_original(short_src, tmp_path):
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4", reencode="seek", keep_original=True)
    ds.create_tensor("plain", htype="video", sample_compression="mp4")
    ds.append({"videos": vidlake.read(str(short_src)), "plain": vidlake.read(str(short_src))})
    ds.flush()
    ds = vidlake.load(str(tmp_path / "ds"))
    info = ds.videos[0].sample_info
    assert info["reencoded"]["profile"] == "seek"
    assert info["modified"] is True
    assert "reencoded" not in ds.plain[0].sample_info
    assert ds.videos.original_bytes(0) == short_src.read_bytes()
    with pytest.raises(vidlake.DatasetError, match="no original"):
        ds.plain.original_bytes(0)
    # damaged original extents are refused when the table is loaded, naming the field
    with pytest.raises(vidlake.DatasetError, match=r"samples\[0\]\.original"):
        check_entry({**ds.videos.entry(0), "original": [["c1", -5, 10]]}, "t.json", "samples[0]", "video")
    new, _ = reencode_bytes(short_src.read_bytes(), "seek")
    path = tmp_path / "seek.mp4"
    path.write_bytes(new)
    idx = [45, 3, 31]
    want = oracle.frames(str(path), idx)
    got = ds.videos[0, idx].numpy()
    for k, i in enumerate(idx):
        assert np.array_equal(got[k], want[i])
    r = ds.videos.reader(0)
    assert list(r.keyframe_indices) == list(range(0, 60, 10))
