"""Candidate frames: which frames of a video selection looks at, decided from the packet index
alone (no decoding), and read in GOP-friendly batches.

    >>> from vidlake.curate import Candidates, candidate_frames
    >>> candidate_frames(reader, "keyframes")        # I-frames only: each decoded alone
    >>> candidate_frames(reader, "every:10")         # every 10th frame
    >>> candidate_frames(reader, "per_second:2")     # the frames shown at 0, 0.5, 1.0, ... s
    >>> candidate_frames(reader, "all")

``keyframes`` is the cheap mode: each keyframe is decoded from its own packet alone
(:meth:`vidlake.VideoReader.get_keyframes`, Note [Keyframes alone] in cpp/keyframe_reader.h),
so no other packet of a GOP is read or decoded. The other modes read their frames in sorted
batches through the GOP-aware reader: each GOP is decoded once, as far as the last wanted frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..video import VideoReader

__all__ = ["CANDIDATE_MODES", "Candidates", "candidate_frames", "iter_candidate_batches"]

CANDIDATE_MODES = ("keyframes", "all", "every", "per_second")


@dataclass(frozen=True)
class Candidates:
    """A candidate rule: ``mode`` one of :data:`CANDIDATE_MODES`; ``value`` is k for ``every``
    (every k-th frame) and n for ``per_second`` (n frames per second of play time).

        >>> Candidates.parse("every:5"), Candidates.parse("keyframes")
        (Candidates(mode='every', value=5.0), Candidates(mode='keyframes', value=0.0))
    """

    mode: str = "per_second"
    value: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in CANDIDATE_MODES:
            raise ValueError(f"candidates mode must be one of {', '.join(map(repr, CANDIDATE_MODES))}, "
                             f"got {self.mode!r}")
        if self.mode == "every" and (self.value < 1 or self.value != int(self.value)):
            raise ValueError(f"candidates 'every:k' needs an integer k >= 1, got {self.value!r}")
        if self.mode == "per_second" and not self.value > 0:
            raise ValueError(f"candidates 'per_second:n' needs n > 0, got {self.value!r}")

    @classmethod
    def parse(cls, spec: Any) -> Candidates:
        """From ``None`` (1 per second), a :class:`Candidates`, ``"keyframes"``, ``"all"``,
        ``"every:K"``, ``"per_second:N"`` (``"fps:N"``), or an int K (every K-th frame)."""
        if spec is None:
            return cls()
        if isinstance(spec, Candidates):
            return spec
        if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
            return cls("every", float(spec))
        if isinstance(spec, str):
            name, _, val = spec.strip().lower().partition(":")
            name = {"fps": "per_second", "keyframe": "keyframes", "key": "keyframes", "i": "keyframes"}.get(name, name)
            if name in ("keyframes", "all"):
                if val:
                    raise ValueError(f"candidates {spec!r}: {name!r} takes no value")
                return cls(name, 0.0)
            try:
                return cls(name, float(val) if val else (1.0 if name in ("every", "per_second") else 0.0))
            except ValueError as e:
                if "candidates" in str(e):
                    raise
                raise ValueError(f"bad candidates {spec!r}: use 'keyframes', 'all', 'every:K' or "
                                 "'per_second:N'") from None
        raise TypeError(f"candidates must be None, a str, an int or a Candidates, got {type(spec).__name__}")

    def __str__(self) -> str:
        if self.mode in ("keyframes", "all"):
            return self.mode
        v = int(self.value) if self.value == int(self.value) else self.value
        return f"{self.mode}:{v}"


def candidate_frames(reader: VideoReader, spec: Any = None) -> np.ndarray:
    """Sorted frame numbers (int64) of the candidates of ``reader`` under ``spec`` (see
    :meth:`Candidates.parse`). Uses the index only: nothing is decoded.

    A video without keyframe flags (intra-only VP9, say) has frame 0 as its one keyframe
    candidate.
    """
    c = Candidates.parse(spec)
    n = len(reader)
    if n == 0:
        return np.zeros(0, np.int64)
    if c.mode == "all":
        return np.arange(n, dtype=np.int64)
    if c.mode == "every":
        return np.arange(0, n, int(c.value), dtype=np.int64)
    if c.mode == "keyframes":
        k = np.asarray(reader.keyframe_indices, dtype=np.int64)
        return np.unique(k) if k.size else np.zeros(1, np.int64)
    ts = reader.timestamps
    t0, t1 = float(ts[0]), float(reader.end_seconds)
    times = t0 + np.arange(0, max(t1 - t0, 0.0), 1.0 / c.value)
    times = times[times < t1]
    if times.size == 0:
        return np.zeros(1, np.int64)
    return np.unique(reader.indices_played_at(times)).astype(np.int64)


def iter_candidate_batches(
    reader: VideoReader,
    frames: np.ndarray,
    spec: Any = None,
    *,
    size: tuple[int, int] | None = None,
    batch: int = 64,
    stats: dict[str, int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(frame numbers, frames uint8 NHWC)`` batches of ``frames`` (sorted), decoded at
    ``size=(h, w)`` in the conversion pass. Keyframes mode decodes each keyframe alone; the
    others read sorted batches (the reader decodes on from batch to batch, never twice).
    ``stats`` (a dict) gets the decode counters added up."""
    c = Candidates.parse(spec)
    frames = np.asarray(frames, dtype=np.int64)
    keyset = set(np.asarray(reader.keyframe_indices, dtype=np.int64).tolist()) if c.mode == "keyframes" else set()
    for start in range(0, len(frames), batch):
        part = frames[start:start + batch]
        if c.mode == "keyframes" and keyset and all(int(f) in keyset for f in part):
            arr, st = reader.get_keyframes(part, size=size)
            if stats is not None:
                for k in ("packets_decoded", "frames_decoded", "frames_converted", "fallback_frames"):
                    stats[k] = stats.get(k, 0) + int(st.get(k, 0))
        else:
            before = reader.stats
            arr = reader.get_frames(part, size=size)
            if stats is not None:
                after = reader.stats
                for k in ("packets_decoded", "frames_decoded", "frames_converted"):
                    stats[k] = stats.get(k, 0) + int(after[k] - before[k])
        yield part, arr
