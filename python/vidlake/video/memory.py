"""The memory behind the frame arrays vidlake allocates.

A read that allocates its output (``r[a:b]``, ``r.get_frames(idx)``, ``ds.videos[i].numpy()``)
gets arrays of 16 MB or more from a small cache of recycled blocks: when Python frees such an
array its memory is kept, pages still in place, for ``keep_seconds`` (10 s by default) and given
to the next read of about the same size, instead of asking the kernel for new zeroed pages each
time. A loop reading clip after clip of one shape stops paying for page faults; memory that is
not reused in time goes back to the system. See docs/DESIGN.md, "Recycled output buffers".

    >>> import vidlake
    >>> vidlake.output_cache_info()["max_bytes"]      # an eighth of RAM, at most 4 GB
    >>> vidlake.set_output_cache(max_bytes=0)         # off: every array is new memory
    >>> vidlake.set_output_cache(max_bytes=2 << 30, keep_seconds=30)

Passing ``out=`` to a read never involves the cache.

The decoder states a reader parks between reads (docs/DESIGN.md, "Parked decoders") have a
budget of their own, per reader: ``vidlake.set_decoder_memory_budget(nbytes)`` sets it for every
reader without a ``decoder_memory_budget=`` of its own.

    >>> vidlake.set_decoder_memory_budget(64 << 20)   # 64 MB of parked decoders per reader
    >>> vidlake.set_decoder_memory_budget(None)       # the built-in 160 MB again
"""
from __future__ import annotations

import math

from .. import _core


def set_output_cache(*, max_bytes: int | None = None, keep_seconds: float | None = None) -> None:
    """Set how much freed output memory is kept for reuse (0 turns the cache off) and for how long.

    ``None`` leaves a setting as it is. Lowering either gives memory back at once.
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)
                                  or not 0 <= max_bytes < 2**63):
        raise ValueError(f"max_bytes must be a non-negative int (below 2**63) or None, got {max_bytes!r}")
    if keep_seconds is not None and (isinstance(keep_seconds, bool) or not isinstance(keep_seconds, (int, float))
                                     or not math.isfinite(keep_seconds) or keep_seconds < 0):
        raise ValueError(f"keep_seconds must be a finite non-negative number or None, got {keep_seconds!r}")
    _core.configure_output_cache(-1 if max_bytes is None else max_bytes, -1.0 if keep_seconds is None else float(keep_seconds))


def output_cache_info() -> dict:
    """Settings and counters: max_bytes, keep_seconds, cached_bytes, cached_blocks, hits, misses,
    returned (blocks given back to the system) and min_bytes (smaller arrays use numpy's allocator)."""
    return dict(_core.output_cache_info())


def clear_output_cache() -> None:
    """Give every cached block back to the system now."""
    _core.clear_output_cache()


def _check_budget(nbytes: int | None, what: str) -> int:
    if nbytes is None:
        return -1
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 0 <= nbytes < 2**63:
        raise ValueError(f"{what} must be a non-negative int of bytes (below 2**63) or None, got {nbytes!r}")
    return nbytes


def set_decoder_memory_budget(nbytes: int | None) -> None:
    """Set the process-wide budget, in bytes, for the decoder states each reader parks between
    reads; it applies to every :class:`~vidlake.VideoReader` without a budget of its own
    (``decoder_memory_budget=``), from its next read on. Over the budget a reader closes its
    least recently used parked states; ``0`` parks none (every read opens a decoder and seeks).

    ``None`` restores the built-in budget: 160 MB, and at least the most recently used state even
    when one state alone is larger (8K video). An explicit budget is strict."""
    _core.set_decoder_memory_budget(_check_budget(nbytes, "nbytes"))


def decoder_memory_budget() -> int | None:
    """The budget :func:`set_decoder_memory_budget` set, or ``None`` for the built-in one (160 MB)."""
    b = int(_core.decoder_memory_budget())
    return None if b < 0 else b
