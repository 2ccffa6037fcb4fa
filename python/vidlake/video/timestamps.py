"""Frames addressed by time: which frame is shown at a time, in a range, or near a timestamp.

    >>> r = vidlake.VideoReader("clip.mp4")
    >>> r.indices_played_at([0.0, 1.25])          # the frame on screen at each time
    array([ 0, 37])
    >>> r.get_frames_in_range(1.0, 2.0).shape     # every frame shown during [1.0, 2.0)
    (31, 360, 640, 3)
    >>> r.get_frames_at_timestamps([0.5005], tolerance_s=1e-4)   # LeRobot's rule

The model (torchcodec's): frame ``k`` is shown from its presentation time ``pts[k]`` until
``pts[k+1]``; the last frame until the end of the stream (its start time plus its duration
as the container states it; one frame period when the container states none). Times are
compared with the frames' own float64 timestamps (``pts * time_base``, correctly rounded),
so a timestamp read from ``r.timestamps`` always finds its own frame, on variable frame rate
files too: nothing assumes a constant frame rate.

The functions here take the timestamps and the stream's end; ``VideoReader`` and video
samples (``ds.videos[i]``) expose them as methods.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Union

import numpy as np

from ..errors import FrameTimestampError

__all__ = ["end_seconds", "indices_at_timestamps", "indices_in_range", "indices_played_at"]

Seconds = Union[float, Sequence[float], np.ndarray, Iterable[float]]

#: LeRobot's default tolerance for aligning sensor timestamps with video frames
DEFAULT_TOLERANCE_S = 1e-4


def end_seconds(timestamps: np.ndarray, metadata: dict) -> float:
    """End of the stream in seconds: when the last frame stops being shown."""
    ts = np.asarray(timestamps, dtype=np.float64)
    if ts.size == 0:
        return float(metadata.get("start_time") or 0.0)
    last = float(ts[-1])
    end = float(metadata.get("start_time") or 0.0) + float(metadata.get("duration") or 0.0)
    if end > last:
        return end
    fps = float(metadata.get("fps") or 0.0)
    if ts.size > 1 and ts[-1] > ts[-2]:
        return last + float(ts[-1] - ts[-2])
    return last + (1.0 / fps if fps > 0 else 1e-3)


def _seconds_array(seconds: Seconds, name: str) -> np.ndarray:
    if hasattr(seconds, "__iter__") and not isinstance(seconds, (np.ndarray, Sequence)):
        seconds = list(seconds)  # a generator
    arr = np.asarray(seconds)
    if arr.dtype == bool or (arr.size and arr.dtype.kind not in "iuf"):
        raise TypeError(f"{name}: times must be numbers in seconds, got {arr.dtype}")
    arr = arr.astype(np.float64).reshape(-1)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise FrameTimestampError(f"{name}: time {float(arr[bad][0])!r} is not a finite number of seconds")
    return arr


def indices_played_at(timestamps: np.ndarray, end: float, seconds: Seconds, name: str = "") -> np.ndarray:
    """Frame numbers shown at each time: the ``k`` with ``pts[k] <= t < pts[k+1]`` (int64).

    A time before the first frame or at/after the end of the stream is a
    :class:`vidlake.FrameTimestampError` naming the video, the time and the valid range.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    t = _seconds_array(seconds, name)
    if ts.size == 0:
        if t.size:
            raise FrameTimestampError(f"{name}: the video has no frames")
        return np.empty(0, np.int64)
    out = (np.searchsorted(ts, t, side="right") - 1).astype(np.int64)
    bad = (out < 0) | (t >= end)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise FrameTimestampError(
            f"{name}: no frame is shown at {float(t[k])!r} s; frames are shown from {float(ts[0])!r} s "
            f"(frame 0) until {end!r} s (the end of frame {ts.size - 1})"
        )
    return out


def indices_in_range(timestamps: np.ndarray, end: float, start_s: float, stop_s: float,
                     name: str = "") -> np.ndarray:
    """Frame numbers shown at some time in ``[start_s, stop_s)``: every frame whose display
    interval ``[pts[k], pts[k+1])`` meets it, in order (int64; empty when start == stop).

    ``start_s`` must lie in the stream (``[pts[0], end)``) and ``stop_s`` must not be
    before it (it may be past the end: the range is cut there).
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    (a,) = _seconds_array([start_s], name)
    (b,) = _seconds_array([stop_s], name)
    if b < a:
        raise FrameTimestampError(f"{name}: stop_s ({b!r}) is before start_s ({a!r})")
    if ts.size == 0 or a == b:
        return np.empty(0, np.int64)
    first = int(indices_played_at(ts, end, [a], name)[0])
    stop = int(np.searchsorted(ts, b, side="left"))  # first frame starting at or after stop_s
    return np.arange(first, max(first, stop), dtype=np.int64)


def indices_at_timestamps(timestamps: np.ndarray, seconds: Seconds, tolerance_s: float = DEFAULT_TOLERANCE_S,
                          name: str = "") -> np.ndarray:
    """Frame numbers whose timestamp is nearest each time (int64), LeRobot's rule for aligning
    sensor data with frames: the nearest frame must lie within ``tolerance_s`` of the time,
    else a :class:`vidlake.FrameTimestampError` names the video, the time, the nearest frame
    and its timestamp. On a tie the earlier frame wins."""
    if isinstance(tolerance_s, bool) or not isinstance(tolerance_s, (int, float, np.floating, np.integer)) \
            or not np.isfinite(tolerance_s) or tolerance_s < 0:
        raise ValueError(f"tolerance_s must be a finite number of seconds >= 0, got {tolerance_s!r}")
    ts = np.asarray(timestamps, dtype=np.float64)
    t = _seconds_array(seconds, name)
    if ts.size == 0:
        if t.size:
            raise FrameTimestampError(f"{name}: the video has no frames")
        return np.empty(0, np.int64)
    right = np.clip(np.searchsorted(ts, t, side="left"), 0, ts.size - 1)
    left = np.clip(right - 1, 0, ts.size - 1)
    d_left = np.abs(t - ts[left])
    d_right = np.abs(ts[right] - t)
    out = np.where(d_left <= d_right, left, right).astype(np.int64)
    dist = np.minimum(d_left, d_right)
    bad = dist > float(tolerance_s)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        f = int(out[k])
        raise FrameTimestampError(
            f"{name}: no frame within {float(tolerance_s)!r} s of {float(t[k])!r} s; the nearest is frame {f} "
            f"at {float(ts[f])!r} s ({float(dist[k])!r} s away). Check the timestamps or raise tolerance_s."
        )
    return out
