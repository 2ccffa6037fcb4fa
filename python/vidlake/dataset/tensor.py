"""Tensors: ``ds.videos`` (its samples are read through the views in ``views.py``).

    >>> ds.videos[0].shape                 # (N, H, W, 3), from the stored index: no I/O
    >>> ds.videos[0].sample_info           # duration, fps, timebase, shape, format, filename, modified
    >>> ds.videos[0, 10:20:2].numpy()      # decodes only what frames 10, 12, ... 18 need
    >>> ds.videos[0, [3, 17, 5]].timestamp # float32 seconds, in the order asked
    >>> ds.videos[0:3].numpy(aslist=True)  # one array per video

A video sample is read with ``VideoReader(ChunkRangeSource(...), index=<stored index bytes>)``:
the packet index written at ingest is reused (never a re-probe) and only the chunk ranges
holding the needed packets are fetched.
"""
from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DatasetError
from ..format.chunks import ChunkRangeSource, ChunkStore
from ..htypes import Htype, common_shape, lookup
from ..storage import _forksafe
from ..video.images import check_image_decoder
from ..video.reader import COLOR_CONVERSIONS
from .tables import SampleTable
from .views import SampleView, SequenceSampleView, TensorView, frame_shape, sample_indices

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable, Mapping, Sequence

    from ..storage import StorageProvider
    from ..video import VideoReader
    from .dataset import Dataset

__all__ = ["StoredSample", "Tensor"]

_READER_CACHE = 8
# Readers of the most recently read samples keep their parked decoder states (docs/DESIGN.md,
# "Parked decoders"; up to ~160 MB each); older cached readers keep one, so a tensor's readers
# hold at most about 2 x 160 MB + 6 states at once.
_PARKING_READERS = 2


def check_read_options(options: dict[str, Any], tensor: str) -> dict[str, Any]:
    """Validate read options (those of ``VideoReader.get_frames``); ``ValueError`` naming them."""
    allowed = ("size", "gray", "rotate", "color_conversion", "image_decoder")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{tensor}: unknown read option(s) {unknown}; accepted: {', '.join(allowed)}")
    out = dict(options)
    if out.get("size") is not None:
        size = out["size"]
        if (not isinstance(size, (tuple, list)) or len(size) != 2
                or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size)):
            raise ValueError(f"{tensor}: size must be (height, width) with positive ints, got {size!r}")
        out["size"] = (int(size[0]), int(size[1]))
    for k in ("gray", "rotate"):
        if k in out and not isinstance(out[k], (bool, np.bool_)):
            raise ValueError(f"{tensor}: {k} must be True or False, got {out[k]!r}")
    if "color_conversion" in out and out["color_conversion"] not in COLOR_CONVERSIONS:
        raise ValueError(f"{tensor}: color_conversion must be one of {', '.join(map(repr, COLOR_CONVERSIONS))}, "
                         f"got {out['color_conversion']!r}")
    if "image_decoder" in out:
        check_image_decoder(out["image_decoder"], f"{tensor}: image_decoder")
    return out


def check_options_fit(options: dict[str, Any], spec: Htype, tensor: str) -> None:
    """Video tensors take the frame options, still-image tensors ``image_decoder`` only."""
    if spec.video and "image_decoder" in options:
        raise ValueError(f"{tensor}: image_decoder is a read option of image tensors, not of {spec.name!r}")
    if spec.still_image and set(options) - {"image_decoder"}:
        raise ValueError(f"{tensor}: {spec.name!r} tensors take one read option, image_decoder; "
                         f"got {sorted(options)}")
    if not spec.video and not spec.still_image and options:
        raise ValueError(f"read_options are for video tensors (and image tensors: image_decoder), "
                         f"not {spec.name!r}")


class StoredSample:
    """One stored sample as the htype sees it (:class:`vidlake.htypes.SampleContext`): its table
    entry and tensor meta, its bytes, and the dataset's credentials and link providers."""

    def __init__(self, tensor: Tensor, index: int) -> None:
        self._tensor = tensor
        self.tensor = tensor.key
        self.index = index
        self.meta: Mapping[str, Any] = tensor.meta
        self.entry: Mapping[str, Any] = tensor.entry(index)
        fname = self.entry["info"].get("filename")
        self.name = f"{tensor.dataset.path}/{tensor.key}[{index}]" + (f" ({fname})" if fname else "")
        self.memo = tensor._memo.setdefault(index, {})

    def read_extents(self, extents: Sequence[Sequence[Any]]) -> bytes:
        return self._tensor.store.read_extents([(str(e[0]), int(e[1]), int(e[2])) for e in extents])

    def range_source(self, extents: Sequence[Sequence[Any]]) -> ChunkRangeSource:
        return ChunkRangeSource(self._tensor.store, [(str(e[0]), int(e[1]), int(e[2])) for e in extents],
                                name=self.name)

    def creds(self, creds_key: str | None, check_only: bool = False) -> Any:
        return self._tensor.dataset.link_access.creds(creds_key, check_only)

    def link_provider(self, parent: str, creds_key: str | None) -> StorageProvider:
        return self._tensor.dataset.link_access.link_provider(parent, creds_key)

    def check_local_path(self, path: str) -> None:
        self._tensor.dataset.link_access.check_local_path(path)


class Tensor:
    """A named column of a dataset (``ds.videos``). Create with ``ds.create_tensor``.

        >>> t = ds.create_tensor("videos", htype="video", sample_compression="mp4")
        >>> t.append(vidlake.read("a.mp4")); len(t)
        1

    The staging fields (``_entries`` past ``_committed_len``, ``_open_chunk``, ``_replaced``)
    are changed only by the dataset's writer (``vidlake/dataset/writer.py``).
    """

    def __init__(self, dataset: Dataset, name: str, meta: dict[str, Any],
                 entries: SampleTable | list[dict[str, Any]], open_chunk: tuple[str, int] | None) -> None:
        self.dataset = dataset
        self.key = name
        self.meta = meta
        try:
            self.spec: Htype = lookup(meta["htype"])
        except ValueError as e:  # a damaged or crafted tensor_meta.json
            raise DatasetError(f"{dataset.path}: tensor {name!r} is damaged: {e}") from None
        #: the sample table: committed segments read on first use (``tables.py``), staged rows
        self._entries = entries if isinstance(entries, SampleTable) else SampleTable([], None, entries)
        self._committed_len = len(self._entries)
        self._open_chunk = tuple(open_chunk) if open_chunk else None
        self._committed_open_chunk = self._open_chunk
        self.store = ChunkStore(dataset.provider, name)
        self._readers: OrderedDict[int, VideoReader] = OrderedDict()
        self._lock = threading.Lock()
        _forksafe.register(self)
        #: committed rows replaced by ``ds.upsert`` but not yet committed: index -> old entry
        self._replaced: dict[int, dict[str, Any]] = {}
        #: per-sample memory of this process (htypes keep lazily built facts here)
        self._memo: dict[int, dict[str, Any]] = {}
        self._read_options = check_read_options(meta.get("read_options") or {}, name)

    def _after_fork_in_child(self) -> None:
        # inherited readers are safe to use or free in the child (the core sets their decoder
        # states aside); the lock may have been held by a parent thread at the fork
        self._lock = threading.Lock()

    # -- description -------------------------------------------------------------------
    @property
    def htype(self) -> str:
        """The tensor's htype (``"video"``, ``"generic"``, ...)."""
        return self.meta["htype"]

    @property
    def sample_compression(self) -> str | None:
        """Declared compression (``"mp4"``...) of a video tensor, else None."""
        return self.meta.get("sample_compression")

    @property
    def dtype(self) -> np.dtype | None:
        """Element type of ``numpy()`` results (uint8 for video)."""
        if self.spec.fixed_dtype is not None:
            return np.dtype(self.spec.fixed_dtype)
        d = self.meta.get("dtype")
        return np.dtype(d) if d else None

    @property
    def num_samples(self) -> int:
        """Number of samples (same as ``len``)."""
        return len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def shape(self) -> tuple[int | None, ...]:
        """``(num_samples, *sample_shape)`` with ``None`` where samples differ (ragged)."""
        n = len(self._entries)
        if not n:
            return (0,) + ((None, None, None, 3) if self.spec.video else ())
        if self.spec.video and self._read_options:  # the frame shape as read depends on each entry
            shapes = [[s[0], *frame_shape(s[1:], self._read_options, e)] if None not in s else s
                      for s, e in ((e["info"]["shape"], e) for e in self._entries)]
        else:  # the commit record's per-segment summaries: no segment read (docs/FORMAT.md, 1.2)
            shapes = self._entries.shapes()
        return (n, *common_shape(shapes))

    @property
    def sample_info(self) -> list[dict[str, Any]]:
        """``sample_info`` of every sample (a list of dicts)."""
        return [self.info(i) for i in range(len(self))]

    def __repr__(self) -> str:
        return f"Tensor(key={self.key!r}, htype={self.htype!r}, len={len(self)})"

    @property
    def read_options(self) -> dict[str, Any]:
        """Default options of frame reads (``size``, ``gray``, ``rotate``, ``color_conversion``):
        stored with ``create_tensor(..., read_options=...)``, changed for this process with
        :meth:`set_read_options`; each ``numpy()`` call may override them."""
        return dict(self._read_options)

    def set_read_options(self, **options: Any) -> None:
        """Change the read options of this tensor object (not stored in the dataset).

            >>> ds.videos.set_read_options(rotate=True, size=(224, 224))
        """
        if not self.spec.video and not self.spec.still_image:
            raise ValueError(f"{self.key}: read options are for video tensors (and image tensors: "
                             f"image_decoder), not {self.htype!r}")
        check_options_fit({k: v for k, v in options.items() if v is not None}, self.spec, self.key)
        merged = {**self._read_options, **options}
        self._read_options = check_read_options({k: v for k, v in merged.items() if v is not None}, self.key)

    def merged_read_options(self, **options: Any) -> dict[str, Any]:
        """The tensor's read options with the given ones (not None) on top, validated."""
        given = {k: v for k, v in options.items() if v is not None}
        return check_read_options({**self._read_options, **given}, self.key)

    # -- writing -----------------------------------------------------------------------
    def append(self, sample: Any) -> None:
        """Append one sample; atomic: on failure the tensor is unchanged and the error says why.

            >>> ds.videos.append(vidlake.read("clip.mp4"))
        """
        self.dataset.writer.append_rows([{self.key: sample}], only=[self.key])

    def extend(self, samples: Iterable[Any]) -> None:
        """Append several samples, all or none.

            >>> ds.videos.extend([vidlake.read(p) for p in paths])
        """
        self.dataset.writer.append_rows([{self.key: s} for s in samples], only=[self.key])

    # -- reading -----------------------------------------------------------------------
    def __getitem__(self, item: Any) -> SampleView | TensorView:
        frames: Any = None
        if isinstance(item, tuple):
            if len(item) == 0:
                item = slice(None)
            elif len(item) > 2:
                raise IndexError(f"{self.key}: at most [sample, frames] indexing is supported")
            else:
                item, frames = item[0], (item[1] if len(item) == 2 else None)
        idx, single = sample_indices(item, len(self), self.key)
        if single:
            return self.sample(idx[0], frames)
        return TensorView(self, idx, frames)

    def sample(self, i: int, frames: Any = None) -> SampleView:
        """The view of sample ``i`` (optionally cut to ``frames``): ``ds.videos[i, frames]``."""
        if self.spec.frames and not self.spec.video:
            return SequenceSampleView(self, i, frames)
        return SampleView(self, i, frames)

    def __iter__(self):
        for i in range(len(self)):
            yield self.sample(i)

    def numpy(self, aslist: bool = False) -> np.ndarray | list[Any]:
        """Every sample decoded (see :meth:`TensorView.numpy`)."""
        return TensorView(self, list(range(len(self))), None).numpy(aslist=aslist)

    def data(self, aslist: bool = False) -> Any:
        """Every sample's data (see :meth:`SampleView.data`)."""
        return TensorView(self, list(range(len(self))), None).data()

    def play(self, i: int, open_browser: bool | None = None) -> Any:
        """Watch video (or ``sequence[image]``) sample ``i`` in the browser: ``ds.videos[i].play()``.
        Opens the default browser (``$BROWSER`` is honoured) or, in Jupyter, displays inline;
        returns at once (the browser streams what it needs with Range requests). See
        ``vidlake/viewer/``.

            >>> ds.videos.play(1)          # same as ds.videos[1].play()
        """
        # vidlake.viewer is in the top layer: loaded on demand (like Dataset.pytorch)
        return importlib.import_module("vidlake.viewer").play(self, i, open_browser=open_browser)

    # -- per-sample access (used by the views) -------------------------------------------
    def entry(self, i: int) -> dict[str, Any]:
        """The sample table entry of sample ``i`` (docs/FORMAT.md); do not modify it."""
        return self._entries[i]

    def stored(self, i: int) -> StoredSample:
        """Sample ``i`` as its htype sees it."""
        return StoredSample(self, i)

    def info(self, i: int) -> dict[str, Any]:
        """``sample_info`` of sample ``i`` (an unverified link is indexed on first use)."""
        return self.spec.info(self.stored(i))

    def original_bytes(self, i: int) -> bytes:
        """The file as appended of a re-encoded video sample (``create_tensor(reencode=...,
        keep_original=True)``); ``DatasetError`` when the tensor did not keep it.

            >>> vidlake.VideoReader(ds.videos.original_bytes(0)).metadata["codec"]
            'h264'
        """
        e = self._entries[i]
        if "original" not in e:
            raise DatasetError(f"{self.key}[{i}]: no original kept (create_tensor(..., reencode=..., "
                               "keep_original=True) keeps it)")
        return self.stored(i).read_extents(e["original"])

    def sample_shape(self, i: int) -> tuple[int, ...]:
        """The shape of sample ``i``, from the table (links: from their facts)."""
        if self.spec.linked:
            return tuple(self.info(i)["shape"])
        return tuple(self._entries[i]["info"]["shape"])

    def frame_count(self, i: int) -> int | None:
        """Frames (video) or items (sequence) of sample ``i``; None when unknown."""
        shape = self._entries[i].get("info", {}).get("shape")
        if not shape or shape[0] is None:
            return None
        return int(shape[0])

    def reader(self, i: int) -> VideoReader:
        """The VideoReader of video sample ``i`` over its chunks or link, with its stored index (cached)."""
        with self._lock:
            r = self._readers.get(i)
            if r is not None:
                was_last = next(reversed(self._readers)) == i
                self._readers.move_to_end(i)
                older = [] if was_last else list(self._readers.values())[:-_PARKING_READERS]
            else:
                older = None
        if r is not None:
            for o in older or ():  # memory: only the most recent readers keep several parked decoders
                o.trim(1)
            return r
        r = self.open_reader(i)
        with self._lock:
            r = self._readers.setdefault(i, r)
            self._readers.move_to_end(i)
            while len(self._readers) > _READER_CACHE:
                self._readers.popitem(last=False)
            older = list(self._readers.values())[:-_PARKING_READERS]
        for o in older:
            o.trim(1)
        return r

    def open_reader(self, i: int, threads: int | None = None) -> VideoReader:
        """A new VideoReader of video sample ``i`` (not cached: :meth:`reader` caches; the
        PyTorch loader keeps its own per worker)."""
        return self.spec.open_reader(self.stored(i), threads)

    def value(self, i: int) -> Any:
        """The decoded value of non-video sample ``i``."""
        return self.spec.read(self.stored(i))

    def drop_readers(self, start: int = 0, only: int | None = None) -> None:
        """Forget cached readers of samples ``>= start`` (or of sample ``only``)."""
        with self._lock:
            for k in [k for k in self._readers if (k == only if only is not None else k >= start)]:
                del self._readers[k]
            for k in [k for k in self._memo if (k == only if only is not None else k >= start)]:
                del self._memo[k]

    def select(self, n_samples: int = 50, strategy: str = "diversity", **kwargs: Any) -> Any:
        """Pick ``n_samples`` frames of this video tensor: :func:`vidlake.select` with this
        tensor as the source (same keyword arguments); returns a ``vidlake.curate.Selection``.

            >>> sel = ds.videos.select(n_samples=20, strategy="diversity", per_video=4)
            >>> sel.to_dataset(ds, "selection")
        """
        select = importlib.import_module("vidlake.curate").select
        return select(self, n_samples, strategy, **kwargs)
