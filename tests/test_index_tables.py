"""The packet index from MP4/MOV container tables (docs/REMOTE.md, "Index from the container's
tables"): field for field the index the full demux builds, on every asset it applies to, locally
and through S3; only headers and the heads of sync samples cross the wire (counted at the server)."""
from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import assets
import numpy as np
import pytest
from helpers import assert_every_index_mode_refuses, tables_indexes_of_damaged
from remote_fixtures import HOST, CountingProxy

import vidlake
from vidlake import _core, open_remote_video

pytestmark = pytest.mark.timeout(120)

# Where the tables path must apply: MP4/MOV with H.264/HEVC (docs/REMOTE.md).
TABLE_CODECS = ("h264", "hevc")
# The documented exception: a damaged payload only the full demux sees (the rule is tested below).
DAMAGED = {a.name for a in assets.ALL_ASSETS if a.damaged}


def _box_order(path: str) -> list[str]:
    data = Path(path).read_bytes()
    pos, out = 0, []
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        size = int.from_bytes(data[pos + 8:pos + 16], "big") if size == 1 else (size or len(data) - pos)
        out.append(data[pos + 4:pos + 8].decode("latin-1"))
        pos += max(size, 8)
    return out


def _boxes_tile(path: str) -> bool:
    """Do the file's top-level ISO-BMFF boxes cover it exactly? (A truncated recording's mdat
    runs past the end: such files are left to the full demux.)"""
    data = Path(path).read_bytes()
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        if size == 1:
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        elif size == 0:
            size = len(data) - pos
        if size < 8:
            return False
        pos += size
    return pos == len(data)


def _both(path: str):
    demux = _core.Index.build(path, -1, path, "demux")
    try:
        tables = _core.Index.build(path, -1, path, "tables")
    except vidlake.UnsupportedFormatError as e:
        return demux, None, str(e)
    return demux, tables, ""


@pytest.mark.parametrize("asset", assets.ALL_ASSETS, ids=lambda a: a.name)
def test_tables_index_equals_full_demux(asset, asset_path):
    path = asset_path(asset)
    demux, tables, why = _both(path)
    applies = asset.container == "mov" and asset.codec in TABLE_CODECS and _boxes_tile(path)
    if tables is None:
        assert not applies, f"{asset.name}: the tables path should apply: {why}"
        assert "container tables" in why
        assert Path(path).name in why
        return
    assert tables.built_from == "tables"
    assert demux.built_from == "demux"
    if asset.name in DAMAGED:
        return  # test_damaged_payload_is_found_at_decode
    a, b = demux._fields(), tables._fields()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k], f"{asset.name}: field {k!r} differs between the full demux and the tables"
    assert demux.to_bytes() == tables.to_bytes()


def test_tables_read_far_less_than_the_file(asset_path):
    path = asset_path("bulk-water.mov")
    demux, tables, _ = _both(path)
    size = Path(path).stat().st_size
    assert demux.build_bytes >= size  # the demux reads every byte
    assert tables.build_bytes < size / 20


def _mdat_payload(path: str) -> int:
    """Bytes inside the file's top-level mdat boxes (what the tables path reads as zeros)."""
    data = Path(path).read_bytes()
    pos, total = 0, 0
    while pos + 8 <= len(data):
        size, header = int.from_bytes(data[pos:pos + 4], "big"), 8
        if size == 1:
            size, header = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            size = len(data) - pos
        if data[pos + 4:pos + 8] == b"mdat":
            total += size - header
        pos += max(size, 8)
    return total


@pytest.mark.parametrize("name", ["hevc.mp4", "h265_video.mp4", "base_faststart.mp4", "base_moov_end.mp4",
                                  "samplemp4.mp4", "bulk-water.mov"])
def test_tables_path_demuxes_once(asset_path, name):
    """Note [Keyframe heads]: an MP4 whose moov lists every sample is indexed in one demux pass,
    the sync samples' heads laid over the zeros before it: libavformat hands over every packet
    once and is handed the payload once (counted, not timed; two passes did both twice)."""
    path = asset_path(name)
    demux = _core.Index.build(path, -1, path, "demux")
    packets = len(demux._fields()["packets"])
    assert demux.build_packets == packets
    assert demux.build_payload_bytes == 0
    payload = _mdat_payload(path)
    assert payload > 0
    for mode in ("tables", "checked"):
        idx = _core.Index.build(path, -1, path, mode)
        assert idx.built_from == "tables", mode
        assert idx.to_bytes() == demux.to_bytes(), mode
        assert idx.build_packets == packets, (mode, idx.build_packets, packets)
        # Once, plus what the header's reads spanned (two 64 KB buffers at most: the one at the
        # mdat's start, a short forward seek read through), dropped before the pass.
        assert payload <= idx.build_payload_bytes <= payload + (128 << 10), (mode, idx.build_payload_bytes)
    stored = _core.Index.from_bytes(demux.to_bytes())
    assert (stored.build_packets, stored.build_payload_bytes) == (-1, -1)


def test_damaged_payload_is_found_at_decode(asset_path):
    """A sample whose NAL units do not split is invisible to the tables: the index then counts it
    as a frame, and reading it raises VideoDecodeError naming the file (never a wrong frame);
    the full demux index reads the file as a sequential decode does."""
    path = asset_path("corrupted.mp4")
    demux, tables, _ = _both(path)
    assert demux.num_frames == 49
    assert tables.num_frames == 50
    good = vidlake.VideoReader(path, index=demux)
    assert good.get_frames(list(range(49))).shape[0] == 49
    r = vidlake.VideoReader(path, index=tables)
    with pytest.raises(vidlake.VideoDecodeError, match=r"corrupted\.mp4"):
        r.get_frames(list(range(len(r))))


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, asset_path):
    """One H.264 source remuxed four ways: moov at the end, moov first, fragmented, fragmented with
    an empty moov (every sample in fragments)."""
    src = asset_path("samplemp4.mp4")
    d = tmp_path_factory.mktemp("layouts")
    out = {}
    for name, flags in [("moov_end", []), ("faststart", ["-movflags", "+faststart"]),
                        ("fragmented", ["-movflags", "frag_keyframe"]),
                        ("empty_moov", ["-movflags", "frag_keyframe+empty_moov+default_base_moof"])]:
        p = d / f"{name}.mp4"
        _ffmpeg("-i", src, "-map", "0:v:0", "-c", "copy", *flags, str(p))
        out[name] = str(p)
    return out


@pytest.mark.parametrize("layout", ["moov_end", "faststart", "fragmented", "empty_moov"])
def test_layouts(layouts, layout):
    demux, tables, why = _both(layouts[layout])
    assert tables is not None, why
    assert demux.to_bytes() == tables.to_bytes()
    # One demux pass where the moov lists every sample; two for fragments (Note [Keyframe heads]).
    passes = 2 if layout in ("fragmented", "empty_moov") else 1
    assert tables.build_packets == passes * len(demux._fields()["packets"])
    r = vidlake.VideoReader(layouts[layout], index=tables)
    ref = vidlake.VideoReader(layouts[layout], index=demux)
    want = [0, 5, len(r) - 1, 17]
    assert np.array_equal(r.get_frames(want), ref.get_frames(want))


def test_hostile_boxes_fall_back_or_fail_clearly(tmp_path):
    cases = {
        "huge_box.mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\xff\xff\xff\xffmoov" + b"\0" * 64,
        "zero_size.mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x04moov",
        "no_moov.mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x10mdat" + b"\1" * 8,
        "binary_type.mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x10\x01\x02\x03\x04" + b"\0" * 8,
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(vidlake.VideoDecodeError, match=name):
            _core.Index.build(str(p), -1, str(p), "tables")
        with pytest.raises(vidlake.VideoDecodeError, match=name):
            _core.Index.build(str(p), -1, str(p), "auto")


def test_large_padding_is_not_read(tmp_path, asset_path):
    """A 100 MB 'free' box after the moov (sparse on disk) reads as zeros: the tables path fetches
    headers only, and the index still equals the full demux's."""
    src = Path(asset_path("samplemp4.mp4")).read_bytes()
    p = tmp_path / "padded.mp4"
    pad = 100 << 20
    with open(p, "wb") as f:
        f.write(src)
        f.write(pad.to_bytes(4, "big") + b"free")
        f.truncate(len(src) + pad)
    demux, tables, why = _both(str(p))
    assert tables is not None, why
    assert demux.to_bytes() == tables.to_bytes()
    assert tables.build_bytes < 1 << 20


def test_huge_unknown_box_goes_to_the_full_demux(tmp_path, asset_path):
    """A 100 MB box of an unknown type is not fetched whole: 'auto' on a remote-like source would
    demux instead; 'tables' says it cannot."""
    src = Path(asset_path("samplemp4.mp4")).read_bytes()
    p = tmp_path / "odd.mp4"
    size = 100 << 20
    with open(p, "wb") as f:
        f.write(src)
        f.write(size.to_bytes(4, "big") + b"zzzz")
        f.truncate(len(src) + size)
    with pytest.raises(vidlake.UnsupportedFormatError, match="container tables"):
        _core.Index.build(str(p), -1, str(p), "tables")


def test_bad_mode():
    with pytest.raises(ValueError, match="index mode"):
        _core.Index.build(str(assets.VIDEO_DIR / "samplemp4.mp4"), -1, "", "fast")
    with pytest.raises(ValueError, match="index mode"):
        vidlake.sources.remote.build_remote_index(None, None, "fast")  # type: ignore[arg-type]


# -- remote ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moov_end_s3(moto_server, big_video, tmp_path_factory):
    """The big 1080p video remuxed with its moov at the end, on the moto server."""
    p = tmp_path_factory.mktemp("moov_end") / "big_moov_end.mp4"
    _ffmpeg("-i", str(big_video.path), "-c", "copy", str(p))
    bucket = moto_server.make_bucket("vl-tables")
    moto_server.client().upload_file(str(p), bucket, "videos/big_moov_end.mp4")
    yield p, f"s3://{bucket}/videos/big_moov_end.mp4"
    moto_server.drop_bucket(bucket)


def test_remote_moov_at_end_reads_headers_only(moto_server, moov_end_s3):
    path, url = moov_end_s3
    size = path.stat().st_size
    assert _box_order(str(path))[-1] == "moov"  # the moov really is at the end
    local = _core.Index.build(str(path), -1, str(path), "demux")
    proxy = CountingProxy(HOST, moto_server.port)
    try:
        r = open_remote_video(url, creds=moto_server.creds(proxy.url))
        wire = proxy.bytes_down
        print(f"\nlinked a {size} B moov-at-end MP4 from S3 with {wire} B over the wire ({100 * wire / size:.2f}%)")
        assert r.index.built_from == "tables"
        assert r.index.to_bytes() == local.to_bytes()
        assert wire < size / 100
        ref = vidlake.VideoReader(str(path), index=local)
        assert np.array_equal(r[len(r) // 2], ref[len(r) // 2])
    finally:
        proxy.close()


def test_remote_webm_is_demuxed(http_server):
    url = http_server.add("videos/akiyo.webm", assets.VIDEO_DIR / "vp90-2-2pass-akiyo.webm")
    r = open_remote_video(url)
    assert r.index.built_from == "demux"
    with pytest.raises(vidlake.UnsupportedFormatError, match="container tables"):
        open_remote_video(url, index_mode="tables")
    local = _core.Index.build(str(assets.VIDEO_DIR / "vp90-2-2pass-akiyo.webm"))
    assert r.index.to_bytes() == local.to_bytes()


def test_damaged_headers_never_crash(tmp_path, asset_path):
    """Seeded random damage to the boxes of a real MP4 (moov at the end and fragmented): the tables
    path returns an index or raises VideoDecodeError naming the file, never crashes; whatever it
    returns decodes or fails cleanly."""
    src = Path(asset_path("samplemp4.mp4")).read_bytes()
    moov = src.rfind(b"moov") - 4

    def damage(data: bytearray, trial: int, rng: np.random.Generator) -> None:
        for _ in range(int(rng.integers(1, 6))):
            at = int(rng.integers(moov, len(data))) if trial % 3 else int(rng.integers(0, 64))
            data[at] = int(rng.integers(0, 256))

    for p, idx in tables_indexes_of_damaged(src, damage, tmp_path, ".mp4", trials=60, seed=1):
        r = vidlake.VideoReader(str(p), index=idx)
        with contextlib.suppress(vidlake.VideoDecodeError, IndexError, ValueError):
            r.get_frames([0, len(r) - 1])


def test_sample_entry_depth_the_loader_refuses(tmp_path):
    """A QuickTime sample entry whose depth is 10794 (found by fuzz/container_fuzzer.cpp): the
    demuxer reports it as bits_per_coded_sample, which a stored index may not hold (at most 64);
    every mode raises UnsupportedFormatError naming the file and the field, rather than build an
    index Index.from_bytes then refuses as damaged."""
    src = tmp_path / "src.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=10", "-frames:v", "3", "-c:v", "libx264", str(src))
    data = bytearray(src.read_bytes())
    entry = data.find(b"avc1", data.find(b"stsd")) - 4  # the sample entry box
    assert entry > 0
    depth = entry + 8 + 6 + 2 + 16 + 4 + 8 + 4 + 2 + 32
    assert data[depth:depth + 2] == b"\x00\x18"  # 24 bits
    data[depth:depth + 2] = (10794).to_bytes(2, "big")
    p = tmp_path / "deep.mp4"
    p.write_bytes(bytes(data))
    why = r"deep\.mp4: the container describes the video stream .* 'bits_per_coded_sample' is 10794, outside \[0, 64\]"
    assert_every_index_mode_refuses(p, vidlake.UnsupportedFormatError, why)
