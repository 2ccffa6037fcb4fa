"""``ds.pytorch(...)``: a ``torch.utils.data.DataLoader`` over a vidlake dataset.

    >>> loader = ds.pytorch(tensors=["videos", "boxes"], clip=16, batch_size=8, shuffle=True,
    ...                     num_workers=2, size=(224, 224), seed=0)
    >>> for batch in loader:
    ...     batch["videos"].shape, batch["frame_indices"].shape     # (8, 16, 224, 224, 3), (8, 16)

Batches come from :class:`vidlake.torch.ClipDataset.__getitems__` (every clip decoded straight
into the batch tensor; shared memory inside workers), indexed by a sampler that yields
``(epoch, item)`` pairs, so shuffling and the random clip draws follow ``seed`` and the epoch
even in persistent workers. With ``num_workers=0`` the next ``prefetch`` batches are decoded
on a background thread while the caller uses the current one (the core releases the GIL).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from .cache import DEFAULT_CACHE_BYTES
from .data import ClipDataset, prefetched

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["EpochSampler", "VidlakeDataLoader", "make_loader"]


class EpochSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, item)`` for ``n`` items, shuffled with ``seed`` and the epoch; the epoch
    advances at every new iteration."""

    def __init__(self, n: int, shuffle: bool, seed: int) -> None:
        self.n = int(n)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        self.epoch += 1
        order = (np.random.default_rng([self.seed, epoch, 1 << 20]).permutation(self.n) if self.shuffle
                 else np.arange(self.n))
        for j in order.tolist():
            yield (epoch, j)


def _batch_passthrough(batch: Any) -> Any:
    return batch


class VidlakeDataLoader(torch.utils.data.DataLoader):
    """A DataLoader that, with ``num_workers=0``, decodes ``prefetch`` batches ahead on a thread."""

    def __init__(self, *args: Any, prefetch: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefetch = int(prefetch)

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch`` next (shuffle order and random clips)."""
        s: Any = getattr(self.batch_sampler, "sampler", None) if self.batch_sampler is not None else self.sampler
        if hasattr(s, "set_epoch"):
            s.set_epoch(epoch)

    def __iter__(self):
        it = super().__iter__()
        if self.num_workers > 0 or self.prefetch <= 0:
            return it
        # the prefetch thread drives the single-process iterator (it decodes there)
        return prefetched(_pull(it), self.prefetch)


def _pull(it: Iterator[Any]) -> Iterator[Callable[[], Any]]:
    """Units of work for :func:`prefetched`: advancing this generator (on the prefetch thread)
    pulls, and so decodes, the next batch of ``it``."""
    for b in it:
        yield lambda b=b: b  # type: ignore[misc]


def make_loader(ds: Any, tensors: Sequence[str] | None = None, clip: Any = None, batch_size: int | None = 1,
                shuffle: bool = False, num_workers: int = 0,
                transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                size: tuple[int, int] | None = None, seed: int | None = None, drop_last: bool = False,
                persistent_workers: bool = False, pin_memory: bool = False, *, ragged: str = "list",
                dimension_order: str = "NHWC", prefetch: int = 1, rows: Sequence[int] | None = None,
                cache_bytes: int = DEFAULT_CACHE_BYTES, decode_threads: int | None = None,
                multiprocessing_context: Any = None, prefetch_factor: int | None = None) -> VidlakeDataLoader:
    """The DataLoader of ``Dataset.pytorch`` (see there for the arguments)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    if decode_threads is None and num_workers > 0:
        decode_threads = 1  # the workers are the parallelism; one codec thread each
    clips = ClipDataset(ds, tensors, clip, rows=rows, size=size, seed=seed, ragged=ragged,
                        dimension_order=dimension_order, transform=transform, cache_bytes=cache_bytes,
                        decode_threads=decode_threads)
    sampler = EpochSampler(len(clips), shuffle, clips.source.seed)
    kw: dict[str, Any] = {}
    if num_workers > 0:
        kw["persistent_workers"] = bool(persistent_workers)
        if multiprocessing_context is not None:
            kw["multiprocessing_context"] = multiprocessing_context
        if prefetch_factor is not None:
            kw["prefetch_factor"] = prefetch_factor
    return VidlakeDataLoader(clips, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                             num_workers=num_workers, collate_fn=_batch_passthrough, pin_memory=pin_memory,
                             prefetch=prefetch, **kw)
