"""ClipPrefetcher: C++ threads that decode clips into given arrays while Python does other work.

    >>> import numpy as np, vidlake
    >>> r = vidlake.VideoReader("clip.mp4")
    >>> pool = vidlake.ClipPrefetcher(threads=2, capacity=8)
    >>> out = np.empty((16, 224, 224, 3), np.uint8)
    >>> ticket = pool.submit(r, range(0, 32, 2), out, size=(224, 224))   # returns at once
    >>> pool.wait(ticket)                                                 # out holds the frames
    >>> pool.stats["peak_pending"] <= pool.stats["capacity"]
    True

The frames are exactly those of ``r.get_frames(indices, size=size)``. At most ``capacity`` clips
are queued or decoding at once (``submit`` waits, without the GIL, beyond that), so the memory in
flight is bounded by what the caller allocated. ``ds.pytorch(num_workers=0)`` uses one to decode
the next batches while the training loop works on the current one (docs/DESIGN.md, Note [Clip
prefetch pool]). A pool belongs to the process that made it: in a forked child make a new one.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .. import _core
from .ffmpeg_log import forward_ffmpeg_log
from .reader import COLOR_CONVERSIONS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .reader import VideoReader

__all__ = ["ClipPrefetcher"]


class ClipPrefetcher:
    """A pool of ``threads`` decode threads with room for ``capacity`` clips (see module doc)."""

    def __init__(self, threads: int | None = None, capacity: int | None = None) -> None:
        threads = min(8, os.cpu_count() or 1) if threads is None else threads
        capacity = 4 * threads if capacity is None else capacity
        for name, v in (("threads", threads), ("capacity", capacity)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self._pool = _core.ClipPrefetcher(threads, capacity)
        self.threads = threads
        self.capacity = capacity

    def submit(self, reader: VideoReader, indices: Iterable[int] | np.ndarray, out: np.ndarray, *,
               size: tuple[int, int] | None = None, color_conversion: str = "stream") -> int:
        """Queue the decode of ``reader``'s frames ``indices`` into ``out`` (C-contiguous uint8
        ``(N, H, W, 3)``, resized to ``size``); returns a ticket for :meth:`wait`."""
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
        if idx.size == 0:
            idx = idx.astype(np.int64).reshape(0)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise ValueError(f"indices must be one-dimensional integers, got {idx.dtype} {idx.shape}")
        if color_conversion not in COLOR_CONVERSIONS:
            raise ValueError(f"color_conversion must be one of {COLOR_CONVERSIONS}, got {color_conversion!r}")
        h = w = 0
        if size is not None:
            if len(size) != 2 or int(size[0]) <= 0 or int(size[1]) <= 0:
                raise ValueError(f"size must be (height, width) with positive values, got {size!r}")
            h, w = int(size[0]), int(size[1])
        return int(self._pool.submit(reader._decoder, idx.astype(np.int64, copy=False), out, h, w,
                                     color_conversion == "stream"))

    def wait(self, ticket: int) -> None:
        """Block until the ticket's clip is in its array; re-raises the decode's error."""
        try:
            self._pool.wait(int(ticket))
        finally:
            forward_ffmpeg_log()

    @property
    def stats(self) -> dict:
        """threads, capacity, submitted, completed, pending (queued or decoding), peak_pending
        (the most at once: never above capacity) and uncollected (done, not waited for)."""
        return dict(self._pool.stats)

    def __repr__(self) -> str:
        return f"ClipPrefetcher({self.threads} threads, capacity {self.capacity})"
