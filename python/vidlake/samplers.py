"""Clip samplers with torchcodec's names and semantics, over a ``VideoReader`` or a video sample.

    >>> from vidlake import samplers
    >>> r = vidlake.VideoReader("clip.mp4")
    >>> clips = samplers.clips_at_random_indices(r, num_clips=4, num_frames_per_clip=16, seed=0)
    >>> clips.frames.shape, clips.indices.shape, clips.timestamps.shape
    ((4, 16, 360, 640, 3), (4, 16), (4, 16))
    >>> samplers.clips_at_regular_timestamps(ds.videos[0], seconds_between_clip_starts=2.0,
    ...                                      num_frames_per_clip=8).indices

Index-based samplers pick clip *starts* in ``[sampling_range_start, sampling_range_end)``
(frame numbers; negative values count from the end) and take ``num_frames_per_clip`` frames
``num_indices_between_frames`` apart. The default end is the last start whose clip fits in
the video. Time-based samplers do the same in seconds (``seconds_between_frames`` defaults to
one average frame period) and take, for each sampling time, the frame shown at that time
(``VideoReader.get_frames_played_at``: exact on variable frame rate files).

A clip that runs past the end of the video is completed by ``policy``: ``"repeat_last"``
repeats its last valid frame, ``"wrap"`` starts the clip over, ``"error"`` raises ValueError.

Random samplers take ``seed`` (an int, a ``numpy.random.Generator``, or None for fresh
entropy); the same seed gives the same clips. Regular samplers are deterministic.

All the clips of one call are decoded by one ``get_frames`` call, which decodes each GOP once
however many clips share it, into the one ``(num_clips, num_frames_per_clip, H, W, 3)`` array.
``size=(h, w)`` (and the other ``get_frames`` keywords) pass through.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np

__all__ = [
    "POLICIES",
    "Clips",
    "clips_at_random_indices",
    "clips_at_random_timestamps",
    "clips_at_regular_indices",
    "clips_at_regular_timestamps",
    "decode_clips",
]

POLICIES = ("repeat_last", "wrap", "error")
Policy = Literal["repeat_last", "wrap", "error"]
Seed = Union[None, int, np.random.Generator]


@dataclass
class Clips:
    """Clips of one video: ``frames`` (num_clips, num_frames_per_clip, H, W, 3) uint8 RGB,
    ``indices`` (num_clips, num_frames_per_clip) int64 frame numbers, ``timestamps`` the same
    frames' presentation times (float64 seconds)."""

    frames: np.ndarray
    indices: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __repr__(self) -> str:
        return f"Clips({len(self)} clips, frames {self.frames.shape}, dtype {self.frames.dtype})"


def _reader_of(video: Any) -> Any:
    """A VideoReader, or a video tensor sample (``ds.videos[i]``) -> its reader."""
    if hasattr(video, "get_frames") and hasattr(video, "timestamps") and hasattr(video, "indices_played_at"):
        return video
    reader = getattr(video, "_video_reader", None)
    if reader is None:
        raise TypeError(f"samplers take a vidlake.VideoReader or a video sample (ds.videos[i]), "
                        f"got {type(video).__name__}")
    if getattr(video, "frames", None) is not None:
        raise ValueError("samplers take a whole video sample (ds.videos[i]), not a frame selection")
    return reader()


def _name(reader: Any) -> str:
    return getattr(reader, "_name", "") or "video"


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(None if seed is None else int(seed))
    raise TypeError(f"seed must be an int, a numpy.random.Generator or None, got {seed!r}")


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(map(repr, POLICIES))}, got {policy!r}")


def _complete(values: list, n: int, policy: str, what: str) -> list:
    """Fill a clip cut by the end of the video up to ``n`` values by ``policy``."""
    if len(values) >= n:
        return values
    if policy == "error":
        raise ValueError(f"{what}: a clip runs past the end of the video (policy='error'); leave "
                         "sampling_range_end at its default or choose policy='repeat_last' or 'wrap'")
    if policy == "repeat_last":
        return values + [values[-1]] * (n - len(values))
    return (values * (n // len(values) + 1))[:n]


# ---- index-based ----------------------------------------------------------------------
def _index_range(n: int, span: int, start: int, end: int | None, what: str) -> tuple[int, int]:
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
        raise TypeError(f"sampling_range_start must be an int frame number, got {start!r}")
    if start < -n:
        raise ValueError(f"{what}: sampling_range_start ({start}) must be >= {-n} (the video has {n} frames)")
    if start < 0:
        start += n
    if start >= n:
        raise ValueError(f"{what}: sampling_range_start ({start}) must be smaller than the number of frames ({n})")
    if end is None:
        end = max(n - span + 1, 1)
        if start >= end:
            raise ValueError(f"{what}: clips of {span} frames fit only when starting before frame {end}, "
                             f"but sampling_range_start is {start}; pass sampling_range_end and a policy")
    else:
        if isinstance(end, bool) or not isinstance(end, (int, np.integer)):
            raise TypeError(f"sampling_range_end must be an int frame number or None, got {end!r}")
        if end < 0:
            end += n
        end = min(int(end), n)
        if start >= end:
            raise ValueError(f"{what}: sampling_range_start ({start}) must be smaller than sampling_range_end ({end})")
    return int(start), int(end)


def plan_index_clips(
    reader: Any,
    kind: Literal["random", "regular"],
    *,
    num_clips: int = 1,
    num_frames_per_clip: int = 1,
    num_indices_between_frames: int = 1,
    sampling_range_start: int = 0,
    sampling_range_end: int | None = None,
    policy: Policy = "repeat_last",
    seed: Seed = None,
) -> np.ndarray:
    """The frame numbers (num_clips, num_frames_per_clip) an index-based sampler would decode."""
    what = _name(reader)
    num_clips = _positive_int(num_clips, "num_clips")
    t = _positive_int(num_frames_per_clip, "num_frames_per_clip")
    step = _positive_int(num_indices_between_frames, "num_indices_between_frames")
    _check_policy(policy)
    n = len(reader)
    if n < 1:
        raise ValueError(f"{what}: the video has no frames")
    span = step * (t - 1) + 1
    lo, hi = _index_range(n, span, sampling_range_start, sampling_range_end, what)
    if kind == "random":
        starts = _rng(seed).integers(lo, hi, size=num_clips)
    else:  # equally spaced starts (repeated when there are more clips than starts)
        starts = np.linspace(lo, hi - 1, num=num_clips).astype(np.int64)
    out = np.empty((num_clips, t), np.int64)
    for c, s0 in enumerate(starts.tolist()):
        out[c] = _complete(list(range(s0, min(s0 + span, n), step)), t, policy, what)
    return out


# ---- time-based -----------------------------------------------------------------------
def _time_params(reader: Any, seconds_between_frames: float | None) -> tuple[float, float, float]:
    ts = reader.timestamps
    what = _name(reader)
    if len(ts) < 1:
        raise ValueError(f"{what}: the video has no frames")
    begin, end = float(ts[0]), float(reader.end_seconds)
    if seconds_between_frames is None:
        fps = float(reader.metadata.get("average_fps") or reader.metadata.get("fps") or 0.0)
        if fps <= 0:
            fps = len(ts) / (end - begin) if end > begin else 0.0
        if fps <= 0:
            raise ValueError(f"{what}: no average frame rate; pass seconds_between_frames or use an index sampler")
        seconds_between_frames = 1.0 / fps
    elif not float(seconds_between_frames) > 0:
        raise ValueError(f"seconds_between_frames must be > 0, got {seconds_between_frames!r}")
    return begin, end, float(seconds_between_frames)


def _time_range(begin: float, end: float, t: int, dt: float, start: float | None, stop: float | None,
                what: str) -> tuple[float, float]:
    if start is None:
        start = begin
    else:
        start = float(start)
        if start < begin:
            raise ValueError(f"{what}: sampling_range_start ({start}) must be at least {begin} (the first frame)")
        if start >= end:
            raise ValueError(f"{what}: sampling_range_start ({start}) must be smaller than {end} (the end)")
    if stop is None:
        stop = end - (t - 1) * dt  # every sampling time of every clip stays before the end
    else:
        stop = float(stop)
        if stop <= begin:
            raise ValueError(f"{what}: sampling_range_end ({stop}) must be greater than {begin} (the first frame)")
    if start >= stop:
        raise ValueError(f"{what}: sampling_range_start ({start}) must be smaller than sampling_range_end ({stop})"
                         + ("; the clips are longer than the video: pass sampling_range_end and a policy"
                            if stop < end else ""))
    return start, min(stop, end)


def plan_time_clips(
    reader: Any,
    kind: Literal["random", "regular"],
    *,
    num_clips: int | None = 1,
    seconds_between_clip_starts: float | None = None,
    num_frames_per_clip: int = 1,
    seconds_between_frames: float | None = None,
    sampling_range_start: float | None = None,
    sampling_range_end: float | None = None,
    policy: Policy = "repeat_last",
    seed: Seed = None,
) -> np.ndarray:
    """The sampling times (num_clips, num_frames_per_clip) a time-based sampler would look up."""
    what = _name(reader)
    t = _positive_int(num_frames_per_clip, "num_frames_per_clip")
    _check_policy(policy)
    begin, end, dt = _time_params(reader, seconds_between_frames)
    lo, hi = _time_range(begin, end, t, dt, sampling_range_start, sampling_range_end, what)
    if kind == "random":
        num_clips = _positive_int(num_clips, "num_clips")
        starts = _rng(seed).random(num_clips) * (hi - lo) + lo
    else:
        step = seconds_between_clip_starts
        if step is None or isinstance(step, bool) or not float(step) > 0:
            raise ValueError(f"seconds_between_clip_starts must be > 0, got {step!r}")
        starts = np.arange(lo, hi, float(step), dtype=np.float64)
        starts = starts[starts < hi]  # arange may reach the excluded end by rounding
    out = np.empty((len(starts), t), np.float64)
    for c, s0 in enumerate(starts.tolist()):
        times = [s0 + k * dt for k in range(t)]
        out[c] = _complete([x for x in times if x < end], t, policy, what)
    return out


# ---- decoding -------------------------------------------------------------------------
def decode_clips(reader: Any, indices: np.ndarray, out: np.ndarray | None = None, **kwargs: Any) -> Clips:
    """Decode clips given as frame numbers (num_clips, num_frames_per_clip) with one
    ``get_frames`` call (each GOP decoded once); ``out`` receives the frames.

        >>> decode_clips(r, np.array([[0, 1, 2], [100, 101, 102]])).frames.shape
        (2, 3, 360, 640, 3)
    """
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim != 2:
        raise ValueError(f"indices must be (num_clips, num_frames_per_clip), got shape {idx.shape}")
    c, t = idx.shape
    flat_out = None
    if out is not None:
        if out.ndim != 5 or out.shape[:2] != (c, t):
            raise ValueError(f"out must have shape ({c}, {t}, H, W, C), got {out.shape}")
        flat_out = out.reshape((c * t, *out.shape[2:]))
        if not np.shares_memory(flat_out, out):
            raise ValueError("out must be C-contiguous")
    frames = reader.get_frames(idx.reshape(-1), out=flat_out, **kwargs)
    ts = np.asarray(reader.timestamps, dtype=np.float64)
    return Clips(frames.reshape((c, t, *frames.shape[1:])) if out is None else out, idx, ts[idx])


def _decode(reader: Any, indices: np.ndarray, kwargs: dict[str, Any]) -> Clips:
    return decode_clips(reader, indices, **kwargs)


def clips_at_random_indices(
    video: Any,
    *,
    num_clips: int = 1,
    num_frames_per_clip: int = 1,
    num_indices_between_frames: int = 1,
    sampling_range_start: int = 0,
    sampling_range_end: int | None = None,
    policy: Policy = "repeat_last",
    seed: Seed = None,
    **kwargs: Any,
) -> Clips:
    """``num_clips`` clips starting at random frame numbers (uniform in the sampling range).

        >>> clips_at_random_indices(r, num_clips=2, num_frames_per_clip=4, seed=7).indices
        array([[375, 376, 377, 378], [248, 249, 250, 251]])
    """
    r = _reader_of(video)
    idx = plan_index_clips(r, "random", num_clips=num_clips, num_frames_per_clip=num_frames_per_clip,
                           num_indices_between_frames=num_indices_between_frames,
                           sampling_range_start=sampling_range_start, sampling_range_end=sampling_range_end,
                           policy=policy, seed=seed)
    return _decode(r, idx, kwargs)


def clips_at_regular_indices(
    video: Any,
    *,
    num_clips: int = 1,
    num_frames_per_clip: int = 1,
    num_indices_between_frames: int = 1,
    sampling_range_start: int = 0,
    sampling_range_end: int | None = None,
    policy: Policy = "repeat_last",
    **kwargs: Any,
) -> Clips:
    """``num_clips`` clips whose starts are equally spaced over the sampling range (first and
    last start included; starts repeat when there are more clips than frames to start at).

        >>> clips_at_regular_indices(r, num_clips=3, num_frames_per_clip=2).indices
        array([[  0,   1], [199, 200], [398, 399]])
    """
    r = _reader_of(video)
    idx = plan_index_clips(r, "regular", num_clips=num_clips, num_frames_per_clip=num_frames_per_clip,
                           num_indices_between_frames=num_indices_between_frames,
                           sampling_range_start=sampling_range_start, sampling_range_end=sampling_range_end,
                           policy=policy)
    return _decode(r, idx, kwargs)


def clips_at_random_timestamps(
    video: Any,
    *,
    num_clips: int = 1,
    num_frames_per_clip: int = 1,
    seconds_between_frames: float | None = None,
    sampling_range_start: float | None = None,
    sampling_range_end: float | None = None,
    policy: Policy = "repeat_last",
    seed: Seed = None,
    **kwargs: Any,
) -> Clips:
    """``num_clips`` clips starting at random times (uniform in the sampling range, seconds);
    each frame is the one shown at its sampling time.

        >>> clips_at_random_timestamps(r, num_clips=2, num_frames_per_clip=4, seed=0).timestamps
    """
    r = _reader_of(video)
    times = plan_time_clips(r, "random", num_clips=num_clips, num_frames_per_clip=num_frames_per_clip,
                            seconds_between_frames=seconds_between_frames,
                            sampling_range_start=sampling_range_start, sampling_range_end=sampling_range_end,
                            policy=policy, seed=seed)
    return _decode(r, r.indices_played_at(times.reshape(-1)).reshape(times.shape), kwargs)


def clips_at_regular_timestamps(
    video: Any,
    *,
    seconds_between_clip_starts: float,
    num_frames_per_clip: int = 1,
    seconds_between_frames: float | None = None,
    sampling_range_start: float | None = None,
    sampling_range_end: float | None = None,
    policy: Policy = "repeat_last",
    **kwargs: Any,
) -> Clips:
    """Clips starting every ``seconds_between_clip_starts`` from the start of the sampling range
    (as torchcodec, the number of clips follows from the spacing).

        >>> clips_at_regular_timestamps(r, seconds_between_clip_starts=5.0, num_frames_per_clip=2).indices
        array([[  0,   1], [149, 150], [299, 300]])
    """
    r = _reader_of(video)
    times = plan_time_clips(r, "regular", num_clips=None, seconds_between_clip_starts=seconds_between_clip_starts,
                            num_frames_per_clip=num_frames_per_clip, seconds_between_frames=seconds_between_frames,
                            sampling_range_start=sampling_range_start, sampling_range_end=sampling_range_end,
                            policy=policy)
    return _decode(r, r.indices_played_at(times.reshape(-1)).reshape(times.shape), kwargs)
