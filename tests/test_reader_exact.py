"""Frame exactness of vidlake.VideoReader against the PyAV sequential-decode oracle, on every asset.

Every readable asset in assets.py is checked for: len(), metadata, timestamps, first / last /
negative / random single reads, strided slices, and a shuffled batch with duplicates; all frames
bit-identical to the oracle.  Then the options of get_frames (out=, gray=, size=, rotate=) and the
kinds of source (path, PathLike, bytes-like, upper-case extension) on a selection of assets.
"""
from __future__ import annotations

import pathlib
import zlib
from dataclasses import dataclass

import assets
import numpy as np
import oracle
import pytest

import vidlake

# ---------------------------------------------------------------------------------------------
# the per-asset read plan: deterministic, so the oracle decodes each file once for all tests


@dataclass
class Plan:
    edges: list        # first, middle, last
    random: list
    slices: list       # slice objects
    batch: list        # shuffled, with duplicates

    def all_indices(self, n: int) -> set:
        idx = set(self.edges) | set(self.random) | set(self.batch)
        for sl in self.slices:
            idx.update(range(n)[sl])
        return idx


def make_plan(asset: assets.Asset, n: int) -> Plan:
    rng = np.random.default_rng(zlib.crc32(asset.name.encode()))
    edges = sorted({0, n // 2, n - 1})
    random = [int(i) for i in rng.integers(0, n, size=8 if asset.large else 20)]
    slices = [
        slice(0, n, max(1, n // 8)),
        slice(n // 3, n // 3 + 6),
        slice(1, None, 7),
        slice(-5, None),
        slice(n // 2, None, 3 if n < 400 else 9),
    ]
    uniq = [int(i) for i in rng.choice(n, size=min(n, 10), replace=False)]
    batch = uniq + uniq[:3] + [uniq[0]]
    rng.shuffle(batch)
    return Plan(edges, random, slices, batch)


@dataclass
class Case:
    asset: assets.Asset
    path: str
    reader: vidlake.VideoReader
    info: oracle.Info
    plan: Plan
    expected: dict     # index -> oracle frame


@pytest.fixture(scope="module", params=assets.READABLE, ids=str)
def case(request, asset_path) -> Case:
    asset = request.param
    path = asset_path(asset)
    info = oracle.info(path)
    assert info.num_frames == asset.num_frames, (
        f"registry/oracle mismatch for {asset.name}: oracle decodes {info.num_frames} frames, "
        f"assets.py says {asset.num_frames}")
    reader = vidlake.VideoReader(path)
    plan = make_plan(asset, info.num_frames)
    expected = oracle.frames(path, sorted(plan.all_indices(info.num_frames)))
    yield Case(asset, path, reader, info, plan, expected)
    del reader


def _check_frame(case: Case, got, index: int, how: str) -> None:
    n = case.info.num_frames
    oracle.assert_frames_equal(got, case.expected[index % n], f"{case.asset.name} {how} (frame {index % n})")


# ---------------------------------------------------------------------------------------------
# every asset


def test_len_and_metadata(case: Case):
    a, r = case.asset, case.reader
    assert len(r) == case.info.num_frames, f"{a.name}: len {len(r)} != oracle frame count {case.info.num_frames}"
    assert r.stream_index == a.stream_index
    md = r.metadata
    for key in ("codec", "width", "height", "pix_fmt", "fps", "time_base", "rotation", "num_frames"):
        assert key in md, f"metadata lacks {key!r}: {sorted(md)}"
    assert md["num_frames"] == len(r)
    assert (md["width"], md["height"]) == (a.width, a.height)
    assert md["codec"] == a.codec
    assert md["pix_fmt"] == a.pix_fmt
    assert md["pix_fmt"] == case.info.pix_fmt, "the index's pixel format is not the decoded frames' format"
    assert (md["rotation"] - a.rotation) % 360 == 0, f"rotation {md['rotation']}, expected {a.rotation}"
    if not a.vfr:
        assert md["fps"] == pytest.approx(a.fps_value, rel=1e-3)


def test_timestamps(case: Case):
    a, n = case.asset, case.info.num_frames
    ts = case.reader.timestamps
    assert isinstance(ts, np.ndarray)
    assert ts.dtype == np.float64
    assert ts.shape == (n,)
    assert np.all(np.diff(ts) > 0), f"{a.name}: timestamps not strictly increasing"
    if a.pts_from_container:
        assert case.info.times_valid, f"{a.name}: PyAV times not monotonic; mark pts_from_container=False"
        bad = np.flatnonzero(np.abs(ts - case.info.times) > 1e-9)
        assert bad.size == 0, (
            f"{a.name}: {bad.size} timestamps differ from PyAV's frame.time, first at frame {bad[0]}: "
            f"{ts[bad[0]]!r} != {case.info.times[bad[0]]!r}")
    else:
        # Without container pts the timestamps are FFmpeg's best-effort ones (the decoder's dts
        # of a sequential decode, test_timestamps.py compares them with ffprobe), one frame apart.
        for i in range(1, n):
            assert ts[i] - ts[i - 1] == pytest.approx(1 / a.fps_value), f"{a.name}: timestamp of frame {i}"


def test_keyframe_indices(case: Case):
    k = np.asarray(case.reader.keyframe_indices)
    n = len(case.reader)
    if k.size == 0:     # a stream without keyframe flags (vp90-2-16-intra-only.webm) may report none
        return
    assert np.all(np.diff(k) > 0), "keyframe_indices must be strictly increasing"
    assert k.min() >= 0
    assert k.max() < n


def test_first_last_negative(case: Case):
    r, n = case.reader, case.info.num_frames
    a = case.asset
    for i in case.plan.edges:
        got = r[i]
        assert got.shape == (a.height, a.width, 3)
        assert got.dtype == np.uint8
        _check_frame(case, got, i, f"r[{i}]")
    _check_frame(case, r[-1], n - 1, "r[-1]")
    _check_frame(case, r[-n], 0, f"r[-{n}]")


def test_random_frames(case: Case):
    for i in case.plan.random:
        _check_frame(case, case.reader[i], i, f"r[{i}] (random)")


def test_strided_slices(case: Case):
    n = case.info.num_frames
    for sl in case.plan.slices:
        idx = list(range(n)[sl])
        got = case.reader[sl]
        what = f"{case.asset.name} r[{sl.start}:{sl.stop}:{sl.step}]"
        assert got.shape == (len(idx), case.asset.height, case.asset.width, 3), what
        for pos, i in enumerate(idx):
            _check_frame(case, got[pos], i, f"{what} position {pos}")


def test_batch_shuffled_with_duplicates(case: Case):
    batch = case.plan.batch
    got = case.reader.get_frames(batch)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.uint8
    assert got.flags.c_contiguous
    assert got.shape == (len(batch), case.asset.height, case.asset.width, 3)
    for pos, i in enumerate(batch):
        _check_frame(case, got[pos], i, f"get_frames({batch}) position {pos}")


# ---------------------------------------------------------------------------------------------
# options of get_frames

BASE = assets.get("base_moov_end.mp4")
GRAY_ASSETS = assets.select(
    "base_moov_end.mp4", "bulk-water.mov", "amve.mp4", "odd_321x241_yuv444.mp4", "vp8_video_with_alpha.webm",
    "h264small.ts", "xdcam8mp2-1s_small.ts", "hdr10tags-both.mkv", "av1_video.mkv", "mjpeg.avi",
)
RESIZE_ASSETS = assets.select(
    "base_moov_end.mp4", "bikes.mp4", "bulk-water.mov", "h265_10bits.mp4", "odd_321x241_yuv444.mp4",
    "vp91-2-04-yuv444.webm", "vp8_video_with_alpha.webm", "matrixbench_mpeg2.lq1.mpg", "av1_video.mkv",
)
ROTATED = [a for a in assets.READABLE if a.rotation != 0]


def _spread(n: int) -> list:
    return sorted({0, n // 3, n - 1})


@pytest.mark.parametrize("asset", GRAY_ASSETS, ids=str)
def test_gray(asset, asset_path):
    path = asset_path(asset)
    r = vidlake.VideoReader(path)
    idx = _spread(len(r))
    got = r.get_frames(idx, gray=True)
    assert got.shape == (len(idx), asset.height, asset.width, 1)
    assert got.dtype == np.uint8
    oracle.assert_batch_equal(got, oracle.stack(path, idx, "gray"), idx, f"{asset.name} gray")


@pytest.mark.parametrize("asset", RESIZE_ASSETS, ids=str)
def test_resize(asset, asset_path):
    path = asset_path(asset)
    r = vidlake.VideoReader(path)
    idx = _spread(len(r))
    for size in [(asset.height // 2, asset.width // 2), (97, 131), (asset.height + 30, asset.width * 2 - 1)]:
        got = r.get_frames(idx, size=size)
        assert got.shape == (len(idx), size[0], size[1], 3)
        assert got.dtype == np.uint8
        oracle.assert_batch_equal(got, oracle.stack(path, idx, size), idx, f"{asset.name} size={size}")


@pytest.mark.parametrize("asset", ROTATED, ids=str)
def test_rotate(asset, asset_path):
    path = asset_path(asset)
    r = vidlake.VideoReader(path)
    idx = _spread(len(r))
    got = r.get_frames(idx, rotate=True)
    # display matrix angle is counter-clockwise: -90 -> turn the picture 90 degrees clockwise
    k = asset.rotation // 90
    expected = np.stack([np.rot90(f, k=k) for f in oracle.stack(path, idx)])
    oracle.assert_batch_equal(got, expected, idx, f"{asset.name} rotate=True (rotation {asset.rotation})")
    # without rotate the stored (coded) orientation comes back
    oracle.assert_batch_equal(r.get_frames(idx), oracle.stack(path, idx), idx, f"{asset.name} rotate=False")


def test_rotate_on_unrotated_is_identity(asset_path):
    path = asset_path(BASE)
    r = vidlake.VideoReader(path)
    oracle.assert_batch_equal(r.get_frames([0, 7], rotate=True), oracle.stack(path, [0, 7]), [0, 7], "rotate=True")


@pytest.fixture(scope="module")
def base(asset_path):
    path = asset_path(BASE)
    return path, vidlake.VideoReader(path)


def test_out_buffer_written_in_place(base):
    path, r = base
    idx = [5, 1, 5, 40]
    out = np.zeros((len(idx), BASE.height, BASE.width, 3), dtype=np.uint8)
    res = r.get_frames(idx, out=out)
    assert res is out
    oracle.assert_batch_equal(out, oracle.stack(path, idx), idx, "get_frames(out=)")


@pytest.mark.parametrize("with_out", [False, True], ids=["new array", "out="])
def test_large_read_prefaulted_output(with_out, asset_path):
    """Reads of >= 64 MB of frames fault the output's pages in on a helper thread (Note
    [Prefaulting the output]); the frames, duplicates and a caller's buffer stay exact."""
    path = asset_path("samplemp4.mp4")          # 640x360: 120 rows = 83 MB
    r = vidlake.VideoReader(path)
    idx = [*list(range(150, 30, -1)), 40, 150]
    out = None
    if with_out:
        out = np.full((len(idx), 360, 640, 3), 7, dtype=np.uint8)
    res = r.get_frames(idx, out=out)
    assert res.nbytes >= 64 * 2**20
    if with_out:
        assert res is out
    oracle.assert_batch_equal(res, oracle.stack(path, idx), idx, "large read")


def test_out_buffer_gray_and_resize(base):
    path, r = base
    out = np.zeros((2, BASE.height, BASE.width, 1), dtype=np.uint8)
    assert r.get_frames([3, 2], out=out, gray=True) is out
    oracle.assert_batch_equal(out, oracle.stack(path, [3, 2], "gray"), [3, 2], "get_frames(out=, gray=True)")
    out = np.zeros((2, 60, 80, 3), dtype=np.uint8)
    assert r.get_frames([3, 2], out=out, size=(60, 80)) is out
    oracle.assert_batch_equal(out, oracle.stack(path, [3, 2], (60, 80)), [3, 2], "get_frames(out=, size=)")


@pytest.mark.parametrize("make_out", [
    pytest.param(lambda h, w: np.zeros((2, h, w, 3), np.uint8), id="too-few-frames"),
    pytest.param(lambda h, w: np.zeros((3, h, w + 1, 3), np.uint8), id="wrong-width"),
    pytest.param(lambda h, w: np.zeros((3, h, w, 1), np.uint8), id="wrong-channels"),
    pytest.param(lambda h, w: np.zeros((3, h, w, 3), np.float32), id="float32"),
    pytest.param(lambda h, w: np.zeros((3, h, w, 3), np.uint16), id="uint16"),
    pytest.param(lambda h, w: np.zeros((3, h, w * 2, 3), np.uint8)[:, :, ::2], id="strided"),
    pytest.param(lambda h, w: np.asfortranarray(np.zeros((3, h, w, 3), np.uint8)), id="fortran"),
    pytest.param(lambda h, w: np.zeros((3 * h * w * 3,), np.uint8), id="flat"),
])
def test_out_buffer_rejected(base, make_out):
    _, r = base
    out = make_out(BASE.height, BASE.width)
    before = out.copy()
    with pytest.raises(ValueError, match="out"):
        r.get_frames([0, 1, 2], out=out)
    assert np.array_equal(out, before), "a rejected out= buffer must not be written"


# ---------------------------------------------------------------------------------------------
# kinds of source

BYTES_ASSETS = assets.select(
    "base_moov_end.mp4", "samplemp4.mp4", "flipping_a_pancake.mkv", "h264small.ts", "sampleavi.avi",
    "base_annexb.h264", "vp90-2-2pass-akiyo.webm", "sample-in-issue-505.mp4",
)


@pytest.mark.parametrize("asset", BYTES_ASSETS, ids=str)
def test_bytes_source_equals_path(asset, asset_path):
    path = asset_path(asset)
    by_path = vidlake.VideoReader(path)
    by_bytes = vidlake.VideoReader(pathlib.Path(path).read_bytes())
    n = len(by_path)
    assert len(by_bytes) == n
    np.testing.assert_array_equal(by_bytes.timestamps, by_path.timestamps)
    np.testing.assert_array_equal(np.asarray(by_bytes.keyframe_indices), np.asarray(by_path.keyframe_indices))
    assert by_bytes.stream_index == by_path.stream_index
    idx = [*_spread(n), n // 2]
    oracle.assert_batch_equal(by_bytes.get_frames(idx), oracle.stack(path, idx), idx, f"{asset.name} from bytes")


@pytest.mark.parametrize("wrap", [bytearray, memoryview, lambda b: np.frombuffer(b, np.uint8)],
                         ids=["bytearray", "memoryview", "numpy"])
def test_other_bytes_like_sources(wrap, asset_path):
    path = asset_path(BASE)
    r = vidlake.VideoReader(wrap(pathlib.Path(path).read_bytes()))
    assert len(r) == BASE.num_frames
    oracle.assert_batch_equal(r.get_frames([0, 31]), oracle.stack(path, [0, 31]), [0, 31], f"source {wrap}")


def test_pathlike_source(asset_path):
    path = pathlib.Path(asset_path(BASE))
    r = vidlake.VideoReader(path)
    assert len(r) == BASE.num_frames
    oracle.assert_frames_equal(r[17], oracle.frame(str(path), 17), "PathLike source frame 17")


@pytest.mark.parametrize("name", ["base_upper.MP4", "base_copy.m4v", "base_copy.mkv", "base_copy.mov",
                                  "base_annexb.h264"])
def test_container_variants_equal_base(name, asset_path):
    """Stream copies of one H.264 stream (any container, any extension case) give the same frames."""
    r = vidlake.VideoReader(asset_path(name))
    base_path = asset_path(BASE)
    assert len(r) == BASE.num_frames
    idx = [0, 13, 29, 30, 59]
    oracle.assert_batch_equal(r.get_frames(idx), oracle.stack(base_path, idx), idx, f"{name} vs {BASE.name}")
