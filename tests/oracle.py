"""The oracle: a plain sequential PyAV decode of the whole stream.

PyAV is built against the same system FFmpeg as vidlake, so frame i of the oracle is what
libavcodec + libswscale produce for presentation-order frame i, and vidlake must match it bit
for bit.  The decode goes packet by packet (``container.demux`` + ``packet.decode``) instead of
``container.decode`` only so that a packet libavcodec refuses (``InvalidDataError``: NAL units
that do not split) is skipped the way the ffmpeg CLI skips it, instead of ending the decode;
on well-formed files the two are identical.

Results are cached per session: ``info()`` (frame count, times, keyframe flags) is computed once
per file; frames are kept in a byte-bounded LRU so large files hold only the frames asked for.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import av
import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable

av.logging.set_level(av.logging.PANIC)
# PyAV installs an av_log callback that takes the GIL.  Restore FFmpeg's own callback so that the
# oracle cannot interfere with vidlake's decoder threads in this process; the interaction itself is
# pinned by test_reader_threads.py::test_no_deadlock_with_pyav_log_callback (in a subprocess).
av.logging.restore_default_callback()

# "rgb24" | "gray" | (height, width) bilinear resize to rgb24, in the frame's own colours (vidlake's
# default); "bt601" | ("bt601", height, width): swscale's default BT.601 matrix (PyAV <= 16's
# to_ndarray, vidlake's color_conversion="bt601")
Kind = Union[str, tuple]

_FRAME_BUDGET = 1_500_000_000     # bytes of decoded frames kept across the session
_lock = threading.RLock()
_info_cache: dict = {}
_frame_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
_frame_bytes = 0


@dataclass(frozen=True)
class Info:
    path: str
    stream_index: int
    num_frames: int
    times: np.ndarray          # float64 seconds (NaN where PyAV has no time)
    times_valid: bool          # all present and strictly increasing
    key_frames: tuple          # frame.key_frame per presentation-order frame
    width: int
    height: int
    pix_fmt: str


def _single_threaded(path: str) -> bool:
    """Damaged assets are decoded with one thread.

    FFmpeg's error concealment reads pictures the damaged packets never produced, and what it
    finds there depends on the thread configuration: PyAV's own output for corrupted_payload.mp4
    differs between thread_count 1 and 2. The single-threaded sequential decode is the only
    machine-independent reference, and vidlake decodes damaged streams that way (DESIGN.md).
    """
    import assets

    try:
        return assets.get(os.path.basename(str(path))).damaged
    except KeyError:
        return False


def _iter_frames(path: str, stream_index: int | None):
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if stream_index is None else container.streams[stream_index]
        if _single_threaded(path):
            stream.thread_count = 1
        for packet in container.demux(stream):      # ends with an empty packet that flushes the decoder
            try:
                out = packet.decode()
            except av.error.InvalidDataError:
                continue                            # a packet the decoder refuses is not a frame
            for frame in out:
                yield stream.index, frame


def info(path, stream_index: int | None = None) -> Info:
    key = (str(path), stream_index)
    with _lock:
        if key in _info_cache:
            return _info_cache[key]
    times, keys = [], []
    index, width, height, pix_fmt = -1, 0, 0, ""
    for index, frame in _iter_frames(str(path), stream_index):  # noqa: B007 - the last index is kept
        if not times:
            width, height, pix_fmt = frame.width, frame.height, frame.format.name
        times.append(np.nan if frame.time is None else float(frame.time))
        keys.append(bool(frame.key_frame))
    t = np.asarray(times, dtype=np.float64)
    valid = bool(len(t) > 0 and np.all(np.isfinite(t)) and np.all(np.diff(t) > 0))
    result = Info(str(path), index, len(t), t, valid, tuple(keys), width, height, pix_fmt)
    with _lock:
        _info_cache[key] = result
    return result


# PyAV 12's names for the swscale colour matrices (sws_getCoefficients) it can set; other
# matrices (BT.2020) it cannot express, and those frames come from the ffmpeg CLI instead
_SWS_CS_DEFAULT = 5
_PYAV_MATRICES = {1, 4, 5, 6, 7}
_RANGE_JPEG, _RANGE_MPEG = 2, 1


class NotExpressible(Exception):
    """PyAV cannot apply this frame's colour matrix."""


def _stream_colors(frame, fmt: str, size: tuple | None = None):
    """``frame`` converted with its own matrix and range, as vidlake's default, the ffmpeg CLI and
    torchcodec do. PyAV 12's ``to_ndarray`` keeps swscale's BT.601 defaults, and its ``reformat``
    sets colour details only when source and destination colorspace (or range) differ, so the
    source matrix and range are given explicitly and the destination matrix (unused for RGB
    output) is made to differ. Checked against torchcodec's reference frames
    (test_reference_frames.py) and against the ffmpeg CLI."""
    cs, rng = int(frame.colorspace), int(frame.color_range)
    src_cs = _SWS_CS_DEFAULT if cs == 2 else cs                  # unspecified: swscale's default
    if src_cs not in _PYAV_MATRICES:
        raise NotExpressible(cs)
    if rng in (_RANGE_JPEG, _RANGE_MPEG):
        src_range = "JPEG" if rng == _RANGE_JPEG else "MPEG"
    else:                                                        # unspecified: swscale's default
        src_range = "JPEG" if frame.format.name.startswith("yuvj") else "MPEG"
    kw = {} if size is None else {"height": size[0], "width": size[1], "interpolation": "BILINEAR"}
    return frame.reformat(format=fmt, src_colorspace=src_cs, dst_colorspace=1 if src_cs != 1 else 5,
                          src_color_range=src_range, dst_color_range="JPEG", **kw).to_ndarray()


def _convert(frame, kind: Kind) -> np.ndarray:
    if kind == "rgb24":
        arr = _stream_colors(frame, "rgb24")
    elif kind == "bt601":
        arr = frame.to_ndarray(format="rgb24")
    elif kind == "gray":  # the luma plane as swscale converts it by default (no colour matrix)
        arr = frame.to_ndarray(format="gray")[..., None]
    elif kind[0] == "bt601":
        _, h, w = kind
        arr = frame.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR").to_ndarray()
    else:
        arr = _stream_colors(frame, "rgb24", kind)
    return np.ascontiguousarray(arr).copy()


_cli_cache: dict = {}


def _cli_frames(path: str, stream_index: int | None, kind: Kind) -> np.ndarray:
    """Every frame of a sequential ffmpeg CLI decode converted as ``kind`` (the CLI's scale
    filter uses the frame's matrix and range; bilinear as vidlake; no frame dropped or doubled).

    Used only where PyAV cannot apply the frame's matrix (BT.2020), and only after checking that
    the CLI decodes the same pictures as PyAV: its BT.601 conversion of the first frames must
    equal PyAV's ``to_ndarray``; otherwise the test is skipped with the reason (there is then
    no independent reference for that stream's colours here)."""
    import subprocess

    import pytest

    inf = info(path, stream_index)
    h, w = (inf.height, inf.width) if kind == "rgb24" else kind
    key = (str(path), inf.stream_index, h, w)
    if key in _cli_cache:
        return _cli_cache[key]

    def run(vf: str) -> np.ndarray:
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:{inf.stream_index}",
               "-vsync", "passthrough", "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        raw = subprocess.run(cmd, capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)

    probe = run(f"scale={inf.width}:{inf.height}:in_color_matrix=bt601:in_range=tv:flags=bilinear")
    ref = frames(path, [0, min(2, inf.num_frames - 1)], "bt601", stream_index)
    if len(probe) != inf.num_frames or not all(np.array_equal(probe[i], ref[i]) for i in ref):
        pytest.skip(f"{os.path.basename(str(path))}: PyAV 12 cannot apply this stream's colour matrix and the "
                    "ffmpeg CLI decodes other pictures than PyAV here, so there is no reference for its colours")
    out = _cli_cache[key] = run(f"scale={w}:{h}:flags=bilinear")
    return out


def _store(key: tuple, arr: np.ndarray) -> None:
    global _frame_bytes
    if key in _frame_cache:
        _frame_cache.move_to_end(key)
        return
    _frame_cache[key] = arr
    _frame_bytes += arr.nbytes
    while _frame_bytes > _FRAME_BUDGET and len(_frame_cache) > 1:
        _, old = _frame_cache.popitem(last=False)
        _frame_bytes -= old.nbytes


def frames(path, indices: Iterable[int], kind: Kind = "rgb24",
           stream_index: int | None = None) -> dict:
    """{index: frame} for the requested presentation-order indices (negative allowed).

    Decodes once, sequentially, up to the largest missing index; converts only what is needed.
    """
    n = info(path, stream_index).num_frames
    wanted = sorted({i + n if i < 0 else i for i in indices})
    for i in wanted:
        if not 0 <= i < n:
            raise IndexError(f"oracle: frame {i} out of range for {path} ({n} frames)")
    base = (str(path), stream_index, kind)
    with _lock:
        missing = {i for i in wanted if (*base, i) not in _frame_cache}
        if missing:
            last = max(missing)
            try:
                for i, (_, frame) in enumerate(_iter_frames(str(path), stream_index)):
                    if i in missing:
                        _store((*base, i), _convert(frame, kind))
                    if i >= last:
                        break
            except NotExpressible:
                cli = _cli_frames(str(path), stream_index, kind)
                for i in missing:
                    _store((*base, i), np.ascontiguousarray(cli[i]).copy())
        out = {}
        for i in wanted:
            arr = _frame_cache.get((*base, i))
            if arr is None:     # evicted by the budget while filling: decode that one again
                arr = _single(path, i, kind, stream_index)
            out[i] = arr
    return {i: out[i + n if i < 0 else i] for i in indices}


def _single(path, index: int, kind: Kind, stream_index: int | None) -> np.ndarray:
    try:
        for i, (_, frame) in enumerate(_iter_frames(str(path), stream_index)):
            if i == index:
                return _convert(frame, kind)
    except NotExpressible:
        return np.ascontiguousarray(_cli_frames(str(path), stream_index, kind)[index]).copy()
    raise IndexError(index)


def frame(path, index: int, kind: Kind = "rgb24", stream_index: int | None = None) -> np.ndarray:
    return frames(path, [index], kind, stream_index)[index]


def stack(path, indices, kind: Kind = "rgb24", stream_index: int | None = None) -> np.ndarray:
    got = frames(path, list(indices), kind, stream_index)
    return np.stack([got[i] for i in indices])


def assert_frames_equal(actual, expected, what: str) -> None:
    """Bit-exact comparison; on failure report shapes or the max abs diff and where it is."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        raise AssertionError(f"{what}: got {actual.dtype}{actual.shape}, expected {expected.dtype}{expected.shape}")
    if not np.array_equal(actual, expected):
        diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
        where = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), diff.shape))
        raise AssertionError(
            f"{what}: not bit-identical to the oracle: max abs diff {int(diff.max())} at {where}, "
            f"{int((diff > 0).sum())} of {diff.size} values differ")


def assert_batch_equal(actual, expected, indices, what: str) -> None:
    """Compare a (N, H, W, C) batch frame by frame so a failure names the frame index."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        raise AssertionError(f"{what}: got {actual.dtype}{actual.shape}, expected {expected.dtype}{expected.shape}")
    for pos, idx in enumerate(indices):
        assert_frames_equal(actual[pos], expected[pos], f"{what}: position {pos} (frame {idx})")
