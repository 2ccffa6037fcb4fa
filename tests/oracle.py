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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Union

import av
import numpy as np

av.logging.set_level(av.logging.PANIC)
# PyAV installs an av_log callback that takes the GIL.  Restore FFmpeg's own callback so that the
# oracle cannot interfere with vidlake's decoder threads in this process; the interaction itself is
# pinned by test_reader_threads.py::test_no_deadlock_with_pyav_log_callback (in a subprocess).
av.logging.restore_default_callback()

Kind = Union[str, tuple]          # "rgb24" | "gray" | (height, width) bilinear resize to rgb24

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
    for index, frame in _iter_frames(str(path), stream_index):
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


def _convert(frame, kind: Kind) -> np.ndarray:
    if kind == "rgb24":
        arr = frame.to_ndarray(format="rgb24")
    elif kind == "gray":
        arr = frame.to_ndarray(format="gray")[..., None]
    else:
        h, w = kind
        arr = frame.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR").to_ndarray()
    return np.ascontiguousarray(arr).copy()


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
        missing = {i for i in wanted if base + (i,) not in _frame_cache}
        if missing:
            last = max(missing)
            for i, (_, frame) in enumerate(_iter_frames(str(path), stream_index)):
                if i in missing:
                    _store(base + (i,), _convert(frame, kind))
                if i >= last:
                    break
        out = {}
        for i in wanted:
            arr = _frame_cache.get(base + (i,))
            if arr is None:     # evicted by the budget while filling: decode that one again
                arr = _single(path, i, kind, stream_index)
            out[i] = arr
    return {i: out[i + n if i < 0 else i] for i in indices}


def _single(path, index: int, kind: Kind, stream_index: int | None) -> np.ndarray:
    for i, (_, frame) in enumerate(_iter_frames(str(path), stream_index)):
        if i == index:
            return _convert(frame, kind)
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
