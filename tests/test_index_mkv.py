"""The packet index of Matroska/WebM from the element headers (docs/REMOTE.md, "Index from the
container's tables"; Note [Matroska index from the block headers] in cpp/mkv_layout.h): field for
field the index the full demux builds, on every shared Matroska/WebM asset it applies to and on
synthetic ones (B-frames, small and unknown-size clusters, BlockGroups, audio with lacing, Void
and CRC-32 elements); a truncated file is refused by mode "tables"; through the HTTP Range server
only the headers and the heads of key frames cross the wire."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import assets
import numpy as np
import pytest
from helpers import assert_every_index_mode_refuses, tables_indexes_of_damaged
from remote_fixtures import HOST, CountingProxy

import vidlake
from vidlake import _core, open_remote_video

pytestmark = pytest.mark.timeout(300)

MKV_ASSETS = [a for a in assets.ALL_ASSETS if a.container == "matroska"]
# Where the tables path must apply: Matroska/WebM with H.264/HEVC (docs/REMOTE.md).
TABLE_CODECS = ("h264", "hevc")


def _ffmpeg(*args: str) -> None:
    res = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], capture_output=True, text=True,
                         timeout=240, check=False)
    assert res.returncode == 0, res.stderr[-2000:]


def _has_encoder(name: str) -> bool:
    res = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=False)
    return f" {name} " in res.stdout


def _both(path: str):
    demux = _core.Index.build(path, -1, path, "demux")
    try:
        tables = _core.Index.build(path, -1, path, "tables")
    except vidlake.UnsupportedFormatError as e:
        return demux, None, str(e)
    return demux, tables, ""


def assert_same_index(demux, tables, what: str) -> None:
    assert tables.built_from == "tables"
    assert demux.built_from == "demux"
    a, b = demux._fields(), tables._fields()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k], f"{what}: field {k!r} differs between the full demux and the tables"
    assert demux.to_bytes() == tables.to_bytes(), what


@pytest.mark.parametrize("asset", MKV_ASSETS, ids=lambda a: a.name)
def test_shared_and_synthetic_assets(asset, asset_path):
    path = asset_path(asset)
    demux, tables, why = _both(path)
    if tables is None:
        assert asset.codec not in TABLE_CODECS, f"{asset.name}: the tables path should apply: {why}"
        assert "container tables" in why
        assert Path(path).name in why
        return
    assert asset.codec in TABLE_CODECS
    assert_same_index(demux, tables, asset.name)


# -- synthetic files ------------------------------------------------------------------------
SRC = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6",
       "-f", "lavfi", "-i", "sine=frequency=440:duration=6"]
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
CASES = {
    "bframes.mkv": [*SRC, *X264, "-bf", "3", "-g", "50", "-c:a", "libopus"],
    "small_clusters.mkv": [*SRC, *X264, "-bf", "2", "-g", "30", "-c:a", "aac", "-cluster_size_limit", "20000",
                           "-cluster_time_limit", "100"],
    "live.mkv": [*SRC, *X264, "-bf", "2", "-g", "30", "-an", "-live", "1"],
    "open_gop.mkv": [*SRC[:4], *X264, "-x264-params", "open-gop=1:keyint=40", "-an"],
    "hevc.mkv": [*SRC[:4], "-c:v", "libx265", "-x265-params", "log-level=error:keyint=40", "-an"],
    "h264.webm": [*SRC[:4], *X264, "-an", "-f", "matroska"],  # CodecID V_MPEG4/ISO/AVC in a .webm name
}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg CLI is needed for synthetic Matroska files")
    d = tmp_path_factory.mktemp("mkv")
    out = {}
    for name, args in CASES.items():
        p = d / name
        _ffmpeg(*args, str(p))
        out[name] = p
    return out


def _read_same(path: Path, demux, tables) -> None:
    ref = vidlake.VideoReader(str(path), index=demux)
    r = vidlake.VideoReader(str(path), index=tables)
    want = sorted({0, 7, len(r) // 2, len(r) - 1})
    assert np.array_equal(r.get_frames(want), ref.get_frames(want))


@pytest.mark.parametrize("name", list(CASES))
def test_synthetic(synth, name):
    demux, tables, why = _both(str(synth[name]))
    assert tables is not None, why
    assert_same_index(demux, tables, name)
    _read_same(synth[name], demux, tables)


# Codecs whose key flags and hidden frames live in every payload: the full demux, never a guess.
PAYLOAD_CODECS = {
    "vp9.webm": ("libvpx-vp9", ["-deadline", "realtime", "-cpu-used", "8", "-auto-alt-ref", "1",
                                "-lag-in-frames", "10"]),
    "av1.mkv": ("libsvtav1", ["-preset", "12"]),
    "vp8.webm": ("libvpx", ["-deadline", "realtime", "-auto-alt-ref", "1", "-lag-in-frames", "10"]),
}


@pytest.mark.parametrize("name", list(PAYLOAD_CODECS))
def test_payload_codecs_go_to_the_full_demux(tmp_path, name):
    encoder, opts = PAYLOAD_CODECS[name]
    if not _has_encoder(encoder):
        pytest.skip(f"ffmpeg has no {encoder}")
    p = tmp_path / name
    _ffmpeg(*SRC[:4], "-t", "2", "-c:v", encoder, *opts, str(p))
    with pytest.raises(vidlake.UnsupportedFormatError, match=rf"{name.replace('.', '[.]')}.*container tables"):
        _core.Index.build(str(p), -1, str(p), "tables")
    assert _core.Index.build(str(p), -1, str(p), "auto").built_from == "demux"


# -- hand-built EBML: BlockGroups, ReferenceBlock, lacing, Void, CRC-32 ----------------------
def _vint(n: int) -> bytes:
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return ((1 << (7 * length)) | n).to_bytes(length, "big")
    raise ValueError(n)


def _el(eid: int, body: bytes, unknown: bool = False) -> bytes:
    ident = eid.to_bytes((eid.bit_length() + 7) // 8, "big")
    return ident + (b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown else _vint(len(body))) + body


def _elements(data: bytes, start: int, end: int):
    """(id, header start, body start, body end) of the EBML elements tiling data[start:end]."""
    pos = start
    while pos < end:
        b = data[pos]
        idlen = 8 - b.bit_length() + 1
        eid = int.from_bytes(data[pos:pos + idlen], "big")
        s = data[pos + idlen]
        szlen = 8 - s.bit_length() + 1
        size = int.from_bytes(data[pos + idlen:pos + idlen + szlen], "big") & ((1 << (7 * szlen)) - 1)
        body = pos + idlen + szlen
        if size == (1 << (7 * szlen)) - 1:
            size = end - body  # unknown size: to the end of the parent
        yield eid, pos, body, body + size
        pos = body + size


def _rewrite_clusters(src: Path, dst: Path, fn) -> None:
    """dst: src with every Cluster's body replaced by fn(list of child elements as (id, bytes)),
    the Cues and SeekHead dropped (their offsets would be stale)."""
    data = src.read_bytes()
    out = bytearray()
    for eid, hs, bs, be in _elements(data, 0, len(data)):
        if eid != 0x18538067:
            out += data[hs:be]
            continue
        seg = bytearray()
        for cid, chs, cbs, cbe in _elements(data, bs, be):
            if cid in (0x1C53BB6B, 0x114D9B74):  # Cues, SeekHead
                continue
            if cid == 0x1F43B675:
                kids = [(k, data[khs:kbe], data[kbs:kbe]) for k, khs, kbs, kbe in _elements(data, cbs, cbe)]
                seg += _el(0x1F43B675, fn(kids))
            else:
                seg += data[chs:cbe]
        out += _el(0x18538067, bytes(seg))
    dst.write_bytes(bytes(out))


def _as_block_groups(kids) -> bytes:
    """SimpleBlocks as BlockGroups: a Block (flags without the key bit), a ReferenceBlock on
    non-key frames, a BlockDuration, with a Void and a CRC-32-like element sprinkled in."""
    body = bytearray()
    for i, (eid, whole, payload) in enumerate(kids):
        if eid != 0xA3:
            body += whole
            continue
        tl = 8 - payload[0].bit_length() + 1
        flags = payload[tl + 2]
        block = payload[:tl + 2] + bytes([flags & 0x7F]) + payload[tl + 3:]
        group = _el(0xA1, block)
        if not flags & 0x80:
            group += _el(0xFB, b"\xd8")  # ReferenceBlock -40
        group += _el(0x9B, b"\x28")  # BlockDuration 40
        if i % 7 == 3:
            group += _el(0xEC, b"\0" * 300)  # Void
        body += _el(0xA0, group)
        if i % 5 == 2:
            body += _el(0xEC, b"\0" * 20000)
    return bytes(body)


def test_block_groups_and_void(synth, tmp_path):
    p = tmp_path / "groups.mkv"
    _rewrite_clusters(synth["bframes.mkv"], p, _as_block_groups)
    demux, tables, why = _both(str(p))
    assert tables is not None, why
    assert_same_index(demux, tables, p.name)
    keys = [p for p in demux._fields()["packets"] if p[5] & 1]  # (pts, dts, duration, offset, size, flags)
    assert 3 <= len(keys) < len(demux._fields()["packets"]) // 10  # key frames: the groups without a ReferenceBlock
    _read_same(p, demux, tables)


def _unflag_keys(kids) -> bytes:
    """Every video SimpleBlock but the file's first loses its key bit (the IDR slices stay)."""
    body = bytearray()
    for eid, whole, payload in kids:
        if eid == 0xA3 and payload[0] == 0x81 and _unflag_keys.seen:
            body += _el(0xA3, payload[:3] + bytes([payload[3] & 0x7F]) + payload[4:])
        else:
            _unflag_keys.seen = _unflag_keys.seen or eid == 0xA3
            body += whole
    return bytes(body)


_unflag_keys.seen = False  # type: ignore[attr-defined]


def test_key_frames_the_container_does_not_flag(synth, tmp_path):
    """The H.264 parser flags an IDR key whatever the block says: the tables path sees the IDR in
    the frame's first bytes and leaves the file to the full demux rather than miss the key."""
    p = tmp_path / "unflagged.mkv"
    _unflag_keys.seen = False  # type: ignore[attr-defined]
    _rewrite_clusters(synth["live.mkv"], p, _unflag_keys)
    demux = _core.Index.build(str(p), -1, str(p), "demux")
    assert len(demux.keyframe_indices) >= 3
    with pytest.raises(vidlake.UnsupportedFormatError, match=r"unflagged\.mkv.*container tables"):
        _core.Index.build(str(p), -1, str(p), "tables")


def _with_crc(kids) -> bytes:
    return _el(0xBF, b"\0\0\0\0") + b"".join(whole for _, whole, _ in kids)


def test_crc_elements(synth, tmp_path):
    p = tmp_path / "crc.mkv"
    _rewrite_clusters(synth["small_clusters.mkv"], p, _with_crc)
    demux, tables, why = _both(str(p))
    assert tables is not None, why
    assert_same_index(demux, tables, p.name)


def _laced_video(kids) -> bytes:
    """Two video frames per block with Xiph lacing: the demuxer splits them, the tables path
    leaves the file to the full demux (mode "tables" refuses)."""
    body = bytearray()
    pending = None
    for eid, whole, payload in kids:
        if eid != 0xA3:
            body += whole
            continue
        tl = 8 - payload[0].bit_length() + 1
        if pending is None:
            pending = payload
            continue
        frame0 = pending[tl + 3:]
        frame1 = payload[tl + 3:]
        sizes = b"\xff" * (len(frame0) // 255) + bytes([len(frame0) % 255])
        head = pending[:tl + 2] + bytes([pending[tl + 2] | 0x02]) + b"\x01" + sizes
        body += _el(0xA3, head + frame0 + frame1)
        pending = None
    if pending is not None:
        body += _el(0xA3, pending)
    return bytes(body)


def test_laced_video_goes_to_the_full_demux(synth, tmp_path):
    p = tmp_path / "laced.mkv"
    _rewrite_clusters(synth["live.mkv"], p, _laced_video)
    demux = _core.Index.build(str(p), -1, str(p), "demux")
    assert demux.num_frames > 100
    with pytest.raises(vidlake.UnsupportedFormatError, match=r"laced\.mkv.*container tables"):
        _core.Index.build(str(p), -1, str(p), "tables")


def test_audio_lacing_is_skipped_exactly(tmp_path):
    """Audio in laced blocks (mkvmerge writes those; here Xiph-laced Vorbis from ffmpeg when the
    muxer laces, else hand-laced): the video index is the full demux's."""
    p = tmp_path / "laced_audio.mkv"
    src = tmp_path / "src.mkv"
    _ffmpeg(*SRC, *X264, "-g", "25", "-c:a", "libopus", str(src))
    _rewrite_clusters(src, p, _lace_audio)
    demux, tables, why = _both(str(p))
    assert tables is not None, why
    assert_same_index(demux, tables, p.name)


def _lace_audio(kids) -> bytes:
    """Pairs of consecutive audio blocks (track 2) merged into EBML-laced blocks."""
    body = bytearray()
    pending = None
    for eid, whole, payload in kids:
        if eid != 0xA3 or payload[0] != 0x82:
            body += whole
            continue
        if pending is None:
            pending = payload
            continue
        f0, f1 = pending[4:], payload[4:]
        head = pending[:3] + bytes([pending[3] | 0x06]) + b"\x01" + _vint(len(f0))
        body += _el(0xA3, head + f0 + f1)
        pending = None
    if pending is not None:
        body += _el(0xA3, pending)
    return bytes(body)


def test_truncated_file(synth, tmp_path):
    """A recording cut mid-cluster: mode "tables" refuses naming the file, "auto" demuxes it."""
    data = synth["bframes.mkv"].read_bytes()
    p = tmp_path / "cut.mkv"
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(vidlake.UnsupportedFormatError, match=r"cut\.mkv.*container tables"):
        _core.Index.build(str(p), -1, str(p), "tables")
    idx = _core.Index.build(str(p), -1, str(p), "auto")
    assert idx.built_from == "demux"
    live = synth["live.mkv"].read_bytes()
    q = tmp_path / "cut_live.mkv"
    q.write_bytes(live[: len(live) // 2 + 1234])
    with pytest.raises(vidlake.UnsupportedFormatError, match=r"cut_live\.mkv.*container tables"):
        _core.Index.build(str(q), -1, str(q), "tables")


def _restart_timestamps(kids) -> bytes:
    """Every Cluster's Timestamp set to 0: each cluster restarts at the first one's times."""
    return b"".join(_el(0xE7, b"\x00") if eid == 0xE7 else whole for eid, whole, _ in kids)


def test_repeated_timestamps_read_but_are_not_stored(synth, tmp_path):
    """Clusters that all restart at pts 0 (found by fuzz/container_fuzzer.cpp: a cluster copied
    after another): the frame order comes from a decode whose timestamps repeat. The video reads
    from its file in every mode, but the loader refuses its index (frame timestamps must strictly
    increase), so an append (or a link) refuses it naming the file instead of storing an
    unloadable index."""
    p = tmp_path / "restarts.mkv"
    _rewrite_clusters(synth["small_clusters.mkv"], p, _restart_timestamps)
    for mode in ("demux", "tables", "auto", "checked"):
        idx = _core.Index.build(str(p), -1, str(p), mode)
        with pytest.raises(vidlake.IndexFormatError, match=r"pts' does not follow the previous frame's"):
            _core.Index.from_bytes(idx.to_bytes(), p.name)
    r = vidlake.VideoReader(str(p))
    assert r.get_frames([0, len(r) - 1]).shape[0] == 2
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mkv")
    with pytest.raises(vidlake.SampleAppendError, match=r"restarts\.mkv.*packet index could not be loaded again"):
        ds.videos.append(vidlake.read(str(p)))
    assert len(ds.videos) == 0
    # a link[video] to it is refused the same way (its index is stored in the dataset too)
    ds.create_tensor("links", htype="link[video]")
    with pytest.raises(vidlake.SampleAppendError, match=r"cannot link .*restarts\.mkv.*packet index could not be loaded again"):
        ds.links.append(vidlake.link(str(p)))
    assert len(ds.links) == 0


def _huge_ebml_laces(kids) -> bytes:
    """The cluster's first SimpleBlock claims EBML lacing with 40 laces of about 2^56 bytes each."""
    out = bytearray()
    for eid, whole, payload in kids:
        if eid == 0xA3 and not _huge_ebml_laces.done:
            _huge_ebml_laces.done = True
            tl = 8 - payload[0].bit_length() + 1
            laces = bytes([39]) + b"\x01\xff\xff\xff\xff\xff\xff\xfe" * 39
            out += _el(0xA3, payload[:tl + 2] + bytes([payload[tl + 2] | 0x06]) + laces + payload[tl + 3:])
        else:
            out += whole
    return bytes(out)


_huge_ebml_laces.done = False  # type: ignore[attr-defined]


def test_lace_sizes_larger_than_the_block(synth, tmp_path):
    """EBML lace sizes near 2^56 (issue 19): the scan refuses the block on the first lace larger
    than the block instead of summing them into a signed overflow (undefined behaviour that
    UBSan reports under make test-asan-core; fuzz/regressions-container replays it in make fuzz)."""
    p = tmp_path / "laces.mkv"
    _huge_ebml_laces.done = False  # type: ignore[attr-defined]
    _rewrite_clusters(synth["live.mkv"], p, _huge_ebml_laces)
    with pytest.raises(vidlake.UnsupportedFormatError, match=r"laces\.mkv.*container tables"):
        _core.Index.build(str(p), -1, str(p), "tables")
    assert _core.Index.build(str(p), -1, str(p), "auto").built_from == "demux"  # FFmpeg's own rules


def test_frame_size_beyond_what_the_loader_accepts(tmp_path):
    """A Matroska PixelHeight of 16432 (found by fuzz/container_fuzzer.cpp on a VP9 WebM): every
    mode raises UnsupportedFormatError naming the file and the size, rather than build an index
    the loader refuses (frames are at most 16384 x 16384, docs/DESIGN.md "Threat model")."""
    src = tmp_path / "src.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x256:r=10", "-frames:v", "3", *X264, "-an", str(src))
    data = bytearray(src.read_bytes())
    at = data.find(bytes([0xBA, 0x82, 0x01, 0x00]))  # PixelHeight 256
    assert at > 0
    data[at + 2:at + 4] = (16432).to_bytes(2, "big")
    p = tmp_path / "tall.mkv"
    p.write_bytes(bytes(data))
    why = r"tall\.mkv: the container gives the video a frame size of 64x16432, larger than vidlake reads"
    assert_every_index_mode_refuses(p, vidlake.UnsupportedFormatError, why)


def _header_bytes(data: bytes) -> list[int]:
    """Offsets of the element headers (and the first block-header bytes) of a Matroska file."""
    out: list[int] = []
    for eid, hs, bs, be in _elements(data, 0, len(data)):
        out += range(hs, bs)
        if eid != 0x18538067:
            continue
        for cid, chs, cbs, cbe in _elements(data, bs, be):
            out += range(chs, cbs)
            if cid == 0x1F43B675:
                for _, khs, kbs, kbe in _elements(data, cbs, cbe):
                    out += range(khs, min(kbe, kbs + 4))
    return out


@pytest.mark.parametrize("name", ["small_clusters.mkv", "live.mkv"])
def test_damaged_headers_give_the_demux_index_or_a_clear_error(synth, tmp_path, name):
    """Seeded damage to element and block headers: the tables path returns the index the full
    demux builds of the same damaged file, or raises VideoDecodeError naming the file; never a
    crash, never another index (900 damaged files gave 0 differences while this was written)."""
    src = synth[name].read_bytes()
    where = _header_bytes(src)

    def damage(data: bytearray, _trial: int, rng: np.random.Generator) -> None:
        for _ in range(int(rng.integers(1, 3))):
            data[where[int(rng.integers(0, len(where)))]] = int(rng.integers(0, 256))

    for p, idx in tables_indexes_of_damaged(src, damage, tmp_path, ".mkv", trials=40, seed=7):
        assert_same_index(_core.Index.build(str(p), -1, str(p), "demux"), idx, p.name)


# -- remote -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_mkv(big_video, tmp_path_factory):
    """The big 1080p H.264 video (>= 50 MB) in Matroska: video only, and with an Opus track."""
    d = tmp_path_factory.mktemp("big_mkv")
    plain, audio = d / "big.mkv", d / "big_audio.mkv"
    _ffmpeg("-i", str(big_video.path), "-map", "0:v:0", "-c", "copy", str(plain))
    _ffmpeg("-i", str(big_video.path), "-f", "lavfi", "-i", "sine=frequency=440:duration=30",
            "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "libopus", "-shortest", str(audio))
    return {"video": plain, "audio": audio}


# What crosses the wire (HTTP response headers included) against the file size: headers only.
# Between two video frames the Opus blocks (their data too, a read cannot skip them cheaply) add
# about as much again as the video's own headers (docs/REMOTE.md, measured line).
WIRE_SHARE = {"video": 1 / 100, "audio": 2 / 100}


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_remote_mkv_reads_headers_only(http_server, big_mkv, kind):
    path = big_mkv[kind]
    size = path.stat().st_size
    url = http_server.add(f"videos/{path.name}", path)
    local = _core.Index.build(str(path), -1, str(path), "demux")
    proxy = CountingProxy(HOST, http_server.port)
    try:
        http_server.reset()
        r = open_remote_video(url.replace(http_server.url, proxy.url))
        wire = proxy.bytes_down
        print(f"\nlinked a {size} B Matroska file ({kind}) over HTTP with {wire} B over the wire "
              f"({100 * wire / size:.2f}%), {http_server.requests} requests")
        assert r.index.built_from == "tables"
        assert r.index.to_bytes() == local.to_bytes()
        assert wire < size * WIRE_SHARE[kind]
        ref = vidlake.VideoReader(str(path), index=local)
        assert np.array_equal(r[len(r) // 2], ref[len(r) // 2])
    finally:
        proxy.close()


def test_remote_webm_vp9_is_demuxed(http_server):
    """VP9 frames carry their key flag and visibility in the payload: demuxed fully, and the
    scan stops at the Tracks element (no cluster is walked)."""
    url = http_server.add("videos/akiyo.webm", assets.VIDEO_DIR / "vp90-2-2pass-akiyo.webm")
    r = open_remote_video(url)
    assert r.index.built_from == "demux"
    http_server.reset()
    with pytest.raises(vidlake.UnsupportedFormatError, match="container tables"):
        open_remote_video(url, index_mode="tables")
    assert http_server.requests <= 4  # the size, the first 2 KB (EBML header to Tracks)
    local = _core.Index.build(str(assets.VIDEO_DIR / "vp90-2-2pass-akiyo.webm"))
    assert r.index.to_bytes() == local.to_bytes()
