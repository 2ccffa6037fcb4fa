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

A process that keeps many readers open at once can also cap all of them together: over
``vidlake.set_total_decoder_memory_budget(nbytes)``, the least recently read readers give back
their parked states first (docs/DESIGN.md, "The process's parked decoders").

    >>> vidlake.set_total_decoder_memory_budget(512 << 20)   # every reader together
    >>> vidlake.parked_decoder_memory()["parked_bytes"] <= 512 << 20
    True
    >>> vidlake.set_total_decoder_memory_budget(None)        # no cap again (the default)
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


def set_total_decoder_memory_budget(nbytes: int | None) -> None:
    """Cap, in bytes, the decoder states parked by every :class:`~vidlake.VideoReader` of this
    process together (dataset tensors' readers included); ``None`` (the default) sets no cap
    beyond each reader's own budget, ``0`` parks none.

    After a read, trim or open that puts the total over the cap, the readers read least recently
    close their parked states first (oldest first), then, if still over, the reader that read
    last its own oldest ones; a reader busy reading in another thread is skipped, never waited
    for. Frames are the same either way: a reader without a parked state opens a decoder and
    seeks. :func:`parked_decoder_memory` reports the totals."""
    _core.set_total_decoder_memory_budget(_check_budget(nbytes, "nbytes"))


def total_decoder_memory_budget() -> int | None:
    """The cap :func:`set_total_decoder_memory_budget` set, or ``None`` for none."""
    b = int(_core.total_decoder_memory_budget())
    return None if b < 0 else b


def parked_decoder_memory() -> dict:
    """This process's decoders together: ``decoders`` (readers alive), ``parked_decoders`` and
    ``parked_bytes`` (their parked states and estimated memory, as of each reader's last read),
    ``shed_decoders`` (states closed to keep to the total budget so far) and ``budget``
    (:func:`total_decoder_memory_budget`)."""
    d = dict(_core.parked_decoder_totals())
    d["budget"] = total_decoder_memory_budget()
    return d
