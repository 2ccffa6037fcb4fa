"""ClipDataset (map-style) and ClipIterable (iterable, sharded by worker and rank).

    >>> import vidlake, vidlake.torch
    >>> ds = vidlake.load("./video_ds", read_only=True)
    >>> clips = vidlake.torch.ClipDataset(ds, tensors=["videos", "boxes"], clip=16, size=(224, 224), seed=0)
    >>> len(clips), clips[0]["videos"].shape          # one clip per video per epoch by default
    (120, torch.Size([16, 224, 224, 3]))
    >>> it = vidlake.torch.ClipIterable(ds, clip=16, batch_size=8, shuffle=True, seed=0)
    >>> loader = torch.utils.data.DataLoader(it, batch_size=None, num_workers=2)

A sample is a dict keyed by tensor name: the video tensor's frames (the clip, ``(T, H, W, 3)``
uint8, or ``(T, 3, H, W)`` with ``dimension_order="NCHW"``, a view: no copy), every tensor
with frames (``sequence[...]`` tensors aligned to the video) cut to the clip's frames (a
list with one item per frame), and the other tensors whole; plus ``index`` (the row),
``frame_indices`` and ``timestamps`` (the frames' numbers and presentation times). Without
``clip`` a sample is the whole video, as in Deep Lake.

Clips: ``clip=16`` or ``clip=ClipSpec(num_frames=16, ...)`` (or a dict of its fields). Random
clips are drawn with the index sampler of :mod:`vidlake.samplers` seeded by
``(seed, epoch, item)``, so an epoch is reproducible whatever the number of workers.

Batches (``__getitems__`` of ClipDataset, ``batch_size`` of ClipIterable) decode every clip
straight into one ``(B, T, H, W, 3)`` tensor (in shared memory inside a worker) -- no
per-sample arrays, no stacking copy. Readers are opened once per process and kept in a
:class:`~vidlake.torch.cache.ReaderCache`.
"""
from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from .. import htypes, samplers
from .cache import DEFAULT_CACHE_BYTES, ReaderCache
from .collate import RAGGED, alloc_uint8, collate

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["ClipDataset", "ClipIterable", "ClipSpec"]

RESERVED = ("index", "frame_indices", "timestamps")
DIMENSION_ORDERS = ("NHWC", "NCHW")


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut from each video.

    ``num_frames`` frames ``num_indices_between_frames`` apart (or, when
    ``seconds_between_frames`` is set, the frames shown at times that far apart:
    time-based); ``clips_per_video`` clips of each video per epoch; ``sampler="random"``
    (uniform clip starts, a new draw each epoch) or ``"regular"`` (equally spaced starts,
    index-based only); ``sampling_range_start`` / ``sampling_range_end`` and ``policy`` as in
    :mod:`vidlake.samplers`.

        >>> ClipSpec(num_frames=16, num_indices_between_frames=2, clips_per_video=4)
    """

    num_frames: int
    num_indices_between_frames: int = 1
    seconds_between_frames: float | None = None
    clips_per_video: int = 1
    sampler: str = "random"
    sampling_range_start: Any = None
    sampling_range_end: Any = None
    policy: str = "repeat_last"

    def __post_init__(self) -> None:
        for name in ("num_frames", "num_indices_between_frames", "clips_per_video"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"ClipSpec.{name} must be a positive int, got {v!r}")
        if self.sampler not in ("random", "regular"):
            raise ValueError(f"ClipSpec.sampler must be 'random' or 'regular', got {self.sampler!r}")
        if self.sampler == "regular" and self.seconds_between_frames is not None:
            raise ValueError("ClipSpec: sampler='regular' is index-based; leave seconds_between_frames None")
        if self.policy not in samplers.POLICIES:
            raise ValueError(f"ClipSpec.policy must be one of {samplers.POLICIES}, got {self.policy!r}")

    @classmethod
    def of(cls, clip: Any) -> ClipSpec | None:
        """None, an int (frames per clip), a dict of fields or a ClipSpec -> ClipSpec or None."""
        if clip is None or isinstance(clip, ClipSpec):
            return clip
        if isinstance(clip, (int, np.integer)) and not isinstance(clip, bool):
            return cls(num_frames=int(clip))
        if isinstance(clip, dict):
            known = {f.name for f in fields(cls)}
            extra = sorted(set(clip) - known)
            if extra:
                raise ValueError(f"clip: unknown field(s) {extra}; ClipSpec takes {sorted(known)}")
            return cls(**clip)
        raise TypeError(f"clip must be None, an int (frames per clip), a dict or a ClipSpec, got {clip!r}")


def _is_video(htype: str) -> bool:
    return htypes.lookup(htype).video


def _has_frames(htype: str) -> bool:
    return htypes.lookup(htype).frames


def _worker_slot() -> tuple[int, int]:
    info = torch.utils.data.get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def _dist_slot(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None or world_size is None:
        d = torch.distributed
        if d.is_available() and d.is_initialized():
            rank = d.get_rank() if rank is None else rank
            world_size = d.get_world_size() if world_size is None else world_size
    rank, world_size = int(rank or 0), int(world_size or 1)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return rank, world_size


def decode_order(plans: Sequence[tuple[int, np.ndarray]]) -> list[int]:
    """Positions of a batch's clips ``(row, frame numbers)`` in the order to decode them: by row,
    then by first frame. Clips of one video then move its decoder forward (a GOP that two clips
    share is decoded once, no seek back), whatever order the sampler drew them in; each clip
    still lands in its own place of the batch.

        >>> decode_order([(0, np.array([200, 201])), (1, np.array([5])), (0, np.array([10, 11]))])
        [2, 0, 1]
    """
    def key(b: int) -> tuple[int, int, int]:
        row, idx = plans[b]
        return int(row), int(np.min(idx)) if len(idx) else -1, b

    return sorted(range(len(plans)), key=key)


class _ClipSource:
    """What ClipDataset and ClipIterable share: items -> plans -> samples and batches."""

    def __init__(self, ds: Any, tensors: Sequence[str] | None, clip: Any, rows: Sequence[int] | None,
                 size: tuple[int, int] | None, seed: int | None, ragged: str, dimension_order: str,
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None, cache_bytes: int,
                 decode_threads: int | None) -> None:
        names = list(ds.tensors) if tensors is None else list(tensors)
        if not names:
            raise ValueError("tensors: select at least one tensor")
        for n in names:
            if n not in ds.tensors:
                raise KeyError(f"no tensor {n!r} in {ds.path}; tensors: {list(ds.tensors)}")
            if n in RESERVED:
                raise ValueError(f"tensor {n!r} clashes with the loader's key {n!r}; "
                                 f"the loader adds {RESERVED} to every sample")
        videos = [n for n in names if _is_video(ds.tensors[n].htype)]
        if len(videos) != 1:
            raise ValueError(f"the loader needs exactly one video tensor among {names}, got {videos}")
        if ragged not in RAGGED:
            raise ValueError(f"ragged must be one of {RAGGED}, got {ragged!r}")
        if dimension_order not in DIMENSION_ORDERS:
            raise ValueError(f"dimension_order must be one of {DIMENSION_ORDERS}, got {dimension_order!r}")
        if size is not None:
            if len(size) != 2 or int(size[0]) <= 0 or int(size[1]) <= 0:
                raise ValueError(f"size must be (height, width) with positive values, got {size!r}")
            size = (int(size[0]), int(size[1]))
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self.ds = ds
        self.names = names
        self.video = videos[0]
        self.framed = [n for n in names if n != self.video and _has_frames(ds.tensors[n].htype)]
        self.spec = ClipSpec.of(clip)
        n_rows = len(ds.tensors[self.video])
        self.rows = list(range(n_rows)) if rows is None else [int(r) for r in rows]
        bad = [r for r in self.rows if not 0 <= r < n_rows]
        if bad:
            raise IndexError(f"rows: {bad[0]} out of range for {n_rows} rows")
        self.size = size
        # one seed shared by every worker (drawn here, in the process that builds the loader)
        self.seed = int(int(np.random.SeedSequence().entropy) % (1 << 63)) if seed is None else int(seed)  # type: ignore[arg-type]
        self.ragged = ragged
        self.dimension_order = dimension_order
        self.transform = transform
        self.cache = ReaderCache(cache_bytes, threads=decode_threads)

    # -- items -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows) * (self.spec.clips_per_video if self.spec else 1)

    def row_of(self, item: int) -> tuple[int, int]:
        per = self.spec.clips_per_video if self.spec else 1
        return self.rows[item // per], item % per

    def plan(self, epoch: int, item: int) -> tuple[int, np.ndarray]:
        """(row, frame numbers of the clip) of ``item`` in ``epoch``."""
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} clips")
        row, k = self.row_of(item)
        reader = self.cache.get(self.ds.tensors[self.video], row)
        s = self.spec
        if s is None:
            return row, np.arange(len(reader), dtype=np.int64)
        rng = np.random.default_rng([self.seed, int(epoch), int(item)])
        if s.seconds_between_frames is not None:
            times = samplers.plan_time_clips(
                reader, "random", num_clips=1, num_frames_per_clip=s.num_frames,
                seconds_between_frames=s.seconds_between_frames, sampling_range_start=s.sampling_range_start,
                sampling_range_end=s.sampling_range_end, policy=s.policy, seed=rng)  # type: ignore[arg-type]
            return row, reader.indices_played_at(times[0])
        kw = {"num_frames_per_clip": s.num_frames, "num_indices_between_frames": s.num_indices_between_frames,
              "sampling_range_start": 0 if s.sampling_range_start is None else s.sampling_range_start,
              "sampling_range_end": s.sampling_range_end, "policy": s.policy}
        if s.sampler == "random":
            return row, samplers.plan_index_clips(reader, "random", num_clips=1, seed=rng, **kw)[0]
        return row, samplers.plan_index_clips(reader, "regular", num_clips=s.clips_per_video, **kw)[k]

    # -- samples -----------------------------------------------------------------------
    def _frame_shape(self, reader: Any, n: int) -> tuple[int, int, int, int]:
        h, w = self.size if self.size else (reader.metadata["height"], reader.metadata["width"])
        return (n, int(h), int(w), 3)

    def _decode(self, reader: Any, idx: np.ndarray, out: torch.Tensor) -> None:
        reader.get_frames(idx, out=out.numpy(), size=self.size)

    def _order(self, frames: torch.Tensor) -> torch.Tensor:
        """NHWC frames -> the asked dimension order, as a view."""
        if self.dimension_order == "NCHW":
            return frames.movedim(-1, -3)
        return frames

    def _extras(self, row: int, idx: np.ndarray) -> dict[str, Any]:
        """Everything of a sample but the frames."""
        out: dict[str, Any] = {}
        for n in self.names:
            if n == self.video:
                continue
            t = self.ds.tensors[n]
            if n in self.framed:
                out[n] = list(t[row, idx].numpy(aslist=True))
            else:
                out[n] = t[row].numpy()
        reader = self.cache.get(self.ds.tensors[self.video], row)
        out["index"] = int(row)
        out["frame_indices"] = torch.from_numpy(np.asarray(idx, dtype=np.int64).copy())
        out["timestamps"] = torch.from_numpy(np.asarray(reader.timestamps, dtype=np.float64)[idx])
        return out

    def sample(self, epoch: int, item: int) -> dict[str, Any]:
        row, idx = self.plan(epoch, item)
        reader = self.cache.get(self.ds.tensors[self.video], row)
        frames = alloc_uint8(self._frame_shape(reader, len(idx)))
        self._decode(reader, idx, frames)
        self.cache.settle()
        s = {self.video: self._order(frames), **self._extras(row, idx)}
        return self.transform(s) if self.transform is not None else s

    def batch(self, keys: Sequence[tuple[int, int]]) -> dict[str, Any]:
        """One batch dict; without a transform the clips decode straight into one tensor, in
        decode order (:func:`decode_order`), each into its place in the caller's order."""
        if self.transform is not None:
            return collate([self.sample(e, i) for e, i in keys], ragged=self.ragged)
        plans = [self.plan(e, i) for e, i in keys]
        t = self.ds.tensors[self.video]
        readers = [self.cache.get(t, row) for row, _ in plans]
        shapes = {self._frame_shape(r, len(idx)) for r, (_, idx) in zip(readers, plans)}
        order = decode_order(plans)
        if len(shapes) == 1:  # one buffer for the batch
            frames = alloc_uint8((len(plans), *next(iter(shapes))))
            for b in order:
                self._decode(readers[b], plans[b][1], frames[b])
                self.cache.settle()
            video: Any = self._order(frames)
        else:  # ragged: whole videos of different lengths or sizes
            parts: list[Any] = [None] * len(plans)
            for b in order:
                f = alloc_uint8(self._frame_shape(readers[b], len(plans[b][1])))
                self._decode(readers[b], plans[b][1], f)
                parts[b] = self._order(f)
                self.cache.settle()
            video = parts
        out = collate([self._extras(row, idx) for row, idx in plans], ragged=self.ragged)
        return {self.video: video, **out}


    def batch_begin(self, keys: Sequence[tuple[int, int]], pool: Any) -> Callable[[], dict[str, Any]]:
        """Start a batch on a :class:`vidlake.ClipPrefetcher`: plan it and queue its clips now
        (their decode runs on the pool's threads); the returned function waits for them and
        gives what :meth:`batch` would. Batches with a transform or clips of different shapes
        are decoded by that function instead."""
        if self.transform is not None:
            return lambda: self.batch(keys)
        plans = [self.plan(e, i) for e, i in keys]
        t = self.ds.tensors[self.video]
        readers = [self.cache.get(t, row) for row, _ in plans]
        shapes = {self._frame_shape(r, len(idx)) for r, (_, idx) in zip(readers, plans)}
        if len(shapes) != 1:
            return lambda: self.batch(keys)
        frames = alloc_uint8((len(plans), *next(iter(shapes))))
        arr = frames.numpy()
        tickets = [pool.submit(readers[b], plans[b][1], arr[b], size=self.size) for b in decode_order(plans)]
        out = collate([self._extras(row, idx) for row, idx in plans], ragged=self.ragged)

        def finish() -> dict[str, Any]:
            errors = []
            for tk in tickets:  # every clip, even after an error: none is left decoding
                try:
                    pool.wait(tk)
                except Exception as e:  # noqa: BLE001 - the first is raised below
                    errors.append(e)
            self.cache.settle()
            if errors:
                raise errors[0]
            return {self.video: self._order(frames), **out}
        return finish


class ClipDataset(torch.utils.data.Dataset):
    """Map-style dataset of clips: item ``j`` is clip ``j % clips_per_video`` of row
    ``rows[j // clips_per_video]`` (see the module doc for the sample dict).

    An item is an int (the epoch is :attr:`epoch`, set with :meth:`set_epoch`, e.g. beside a
    ``DistributedSampler``) or an ``(epoch, j)`` pair (what ``ds.pytorch`` feeds it, so random
    clips change every epoch even in persistent workers). ``__getitems__`` loads a whole batch
    into one tensor (PyTorch's DataLoader calls it with each batch of indices).

        >>> clips = ClipDataset(ds, clip=ClipSpec(num_frames=8, clips_per_video=2), seed=0)
        >>> clips[(0, 5)]["frame_indices"]
        tensor([118, 119, 120, 121, 122, 123, 124, 125])
    """

    def __init__(self, ds: Any, tensors: Sequence[str] | None = None, clip: Any = None, *,
                 rows: Sequence[int] | None = None, size: tuple[int, int] | None = None, seed: int | None = None,
                 ragged: str = "list", dimension_order: str = "NHWC",
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, decode_threads: int | None = None) -> None:
        self.source = _ClipSource(ds, tensors, clip, rows, size, seed, ragged, dimension_order, transform,
                                  cache_bytes, decode_threads)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch int items are drawn for (random clips differ between epochs)."""
        self.epoch = int(epoch)

    @property
    def cache(self) -> ReaderCache:
        """This process's reader cache."""
        return self.source.cache

    def __len__(self) -> int:
        return len(self.source)

    def _key(self, item: Any) -> tuple[int, int]:
        if isinstance(item, tuple):
            return int(item[0]), int(item[1])
        return self.epoch, int(item)

    def __getitem__(self, item: Any) -> dict[str, Any]:
        return self.source.sample(*self._key(item))

    def __getitems__(self, items: Sequence[Any]) -> dict[str, Any]:
        return self.source.batch([self._key(i) for i in items])


class ClipIterable(torch.utils.data.IterableDataset):
    """Iterable dataset of clips, sharded by DataLoader worker and by distributed rank: each
    epoch's items (shuffled with ``seed`` and the epoch when ``shuffle``) are dealt round-robin
    to the ``world_size * num_workers`` readers, so every clip is read exactly once per epoch.
    ``rank`` / ``world_size`` default to ``torch.distributed``'s when it is initialised.

    With ``batch_size`` it yields batch dicts (use ``DataLoader(it, batch_size=None)``); the
    last smaller batch of each worker is dropped with ``drop_last``. Without it, it yields
    samples (combine them with ``collate_fn=vidlake.torch.collate``). ``prefetch`` batches are
    decoded ahead on a thread (the core releases the GIL), in a queue of that size.

        >>> it = ClipIterable(ds, clip=16, batch_size=8, shuffle=True, seed=0, rank=0, world_size=2)
        >>> for batch in torch.utils.data.DataLoader(it, batch_size=None, num_workers=2):
        ...     batch["videos"].shape        # torch.Size([8, 16, H, W, 3])
    """

    def __init__(self, ds: Any, tensors: Sequence[str] | None = None, clip: Any = None, *,
                 batch_size: int | None = None, shuffle: bool = False, drop_last: bool = False,
                 rows: Sequence[int] | None = None, size: tuple[int, int] | None = None, seed: int | None = None,
                 ragged: str = "list", dimension_order: str = "NHWC",
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 rank: int | None = None, world_size: int | None = None, prefetch: int = 1,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, decode_threads: int | None = None) -> None:
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size <= 0):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be an int >= 0, got {prefetch!r}")
        self.source = _ClipSource(ds, tensors, clip, rows, size, seed, ragged, dimension_order, transform,
                                  cache_bytes, decode_threads)
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rank, self.world_size = _dist_slot(rank, world_size)
        self.prefetch = prefetch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration draws (its shuffle and its random clips)."""
        self.epoch = int(epoch)

    @property
    def cache(self) -> ReaderCache:
        return self.source.cache

    def shard(self, epoch: int, worker: int = 0, num_workers: int = 1) -> list[int]:
        """The items ``worker`` of this rank reads in ``epoch``."""
        n = len(self.source)
        order = (np.random.default_rng([self.source.seed, int(epoch), 1 << 20]).permutation(n)
                 if self.shuffle else np.arange(n))
        slot = self.rank * num_workers + worker
        return order[slot::self.world_size * num_workers].tolist()

    def __len__(self) -> int:
        """Items of this rank per epoch; with batch_size, its batches when read by one process
        (each DataLoader worker may end on a smaller batch of its own)."""
        n = len(self.source)
        mine = len(range(self.rank, n, self.world_size))
        if self.batch_size is None:
            return mine
        return mine // self.batch_size if self.drop_last else -(-mine // self.batch_size)

    def _units(self, epoch: int) -> Iterator[Any]:
        worker, num_workers = _worker_slot()
        items = self.shard(epoch, worker, num_workers)
        src = self.source
        if self.batch_size is None:
            for i in items:
                yield lambda i=i: src.sample(epoch, i)
            return
        bs = self.batch_size
        for a in range(0, len(items), bs):
            chunk = items[a:a + bs]
            if len(chunk) < bs and self.drop_last:
                return
            yield lambda chunk=chunk: src.batch([(epoch, i) for i in chunk])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        epoch = self.epoch
        self.epoch += 1  # the next iteration (in this process) draws the next epoch
        units = self._units(epoch)
        if self.prefetch == 0:
            for u in units:
                yield u()
            return
        yield from prefetched((u for u in units), self.prefetch)


_DONE = object()


def prefetched(units: Iterator[Callable[[], Any]], depth: int) -> Iterator[Any]:
    """Run each unit of work on one background thread, ``depth`` results ahead at most (a
    bounded queue: memory stays flat); results come back in order, errors re-raised here."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(x: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for u in units:
                if stop.is_set() or not put((True, u())):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put((False, e))
            return
        put((True, _DONE))

    th = threading.Thread(target=run, name=f"vidlake-prefetch-{os.getpid()}", daemon=True)
    th.start()
    try:
        while True:
            ok, x = q.get()
            if not ok:
                raise x
            if x is _DONE:
                return
            yield x
    finally:
        stop.set()
        th.join()
