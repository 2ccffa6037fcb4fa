"""``ds.pytorch(...)``: a ``torch.utils.data.DataLoader`` over a vidlake dataset.

    >>> loader = ds.pytorch(tensors=["videos", "boxes"], clip=16, batch_size=8, shuffle=True,
    ...                     num_workers=2, size=(224, 224), seed=0)
    >>> for batch in loader:
    ...     batch["videos"].shape, batch["frame_indices"].shape     # (8, 16, 224, 224, 3), (8, 16)

Batches come from :class:`vidlake.torch.ClipDataset.__getitems__` (every clip decoded straight
into the batch tensor; shared memory inside workers), indexed by a sampler that yields
``(epoch, item)`` pairs, so shuffling and the random clip draws follow ``seed`` and the epoch
even in persistent workers. With ``num_workers=0`` the next ``prefetch`` batches are decoded
while the caller uses the current one: their clips are planned in Python and decoded on the C++
threads of a :class:`vidlake.ClipPrefetcher` (``prefetch_threads`` of them, one per core by
default; its queue holds at most ``batch_size * (prefetch + 1)`` clips), or, with
``prefetch_threads=0``, a transform or ``pin_memory``, by a Python thread driving the loader.
"""
from __future__ import annotations

import contextlib
import os
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..video import ClipPrefetcher
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

    def __init__(self, *args: Any, prefetch: int = 1, prefetch_threads: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefetch = int(prefetch)
        if prefetch_threads is not None and (isinstance(prefetch_threads, bool) or not isinstance(prefetch_threads, int)
                                             or prefetch_threads < 0):
            raise ValueError(f"prefetch_threads must be an int >= 0 or None, got {prefetch_threads!r}")
        self.prefetch_threads = min(8, os.cpu_count() or 1) if prefetch_threads is None else prefetch_threads
        self._pool: ClipPrefetcher | None = None
        self._pool_pid = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch`` next (shuffle order and random clips)."""
        s: Any = getattr(self.batch_sampler, "sampler", None) if self.batch_sampler is not None else self.sampler
        if hasattr(s, "set_epoch"):
            s.set_epoch(epoch)

    @property
    def prefetcher(self) -> ClipPrefetcher | None:
        """The C++ decode pool of ``num_workers=0`` iteration (None until first used)."""
        return self._pool

    def _uses_pool(self) -> bool:
        ds = self.dataset
        return (self.prefetch_threads > 0 and not self.pin_memory and isinstance(ds, ClipDataset)
                and ds.source.transform is None and self.batch_sampler is not None)

    def __iter__(self):
        if self.num_workers > 0 or self.prefetch <= 0:
            return super().__iter__()
        if self._uses_pool():
            return self._pool_batches()
        # the prefetch thread drives the single-process iterator (it decodes there)
        return prefetched(_pull(super().__iter__()), self.prefetch)

    def _pool_batches(self) -> Iterator[dict[str, Any]]:
        """Batches whose clips decode on the C++ pool, ``prefetch`` batches ahead."""
        ds: ClipDataset = self.dataset
        if self._pool is None or self._pool_pid != os.getpid():
            bs = self.batch_size or 1
            self._pool = ClipPrefetcher(self.prefetch_threads, capacity=bs * (self.prefetch + 1))
            self._pool_pid = os.getpid()
        pool = self._pool
        pending: deque[Callable[[], dict[str, Any]]] = deque()
        try:
            for keys in self.batch_sampler:
                pending.append(ds.source.batch_begin([ds._key(k) for k in keys], pool))
                if len(pending) > self.prefetch:
                    yield pending.popleft()()
            while pending:
                yield pending.popleft()()
        finally:  # stopped early: collect what is still decoding
            while pending:
                with contextlib.suppress(Exception):  # the caller stopped: nothing to report to
                    pending.popleft()()


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
                multiprocessing_context: Any = None, prefetch_factor: int | None = None,
                prefetch_threads: int | None = None) -> VidlakeDataLoader:
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
                             prefetch=prefetch, prefetch_threads=prefetch_threads, **kw)
