"""Tensors and tensor views: ``ds.videos``, ``ds.videos[i]``, ``ds.videos[i, a:b:s]``.

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

import builtins
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .chunks import ChunkRangeSource, ChunkStore
from .errors import DatasetError
from .htypes import VIDEO_HTYPES, common_shape, decode_value

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset

__all__ = ["SampleView", "Tensor", "TensorView"]

_READER_CACHE = 8
# Readers of the most recently read samples keep their parked decoder states (docs/DESIGN.md,
# "Parked decoders"; up to ~160 MB each); older cached readers keep one, so a tensor's readers
# hold at most about 2 x 160 MB + 6 states at once.
_PARKING_READERS = 2

FrameSel = Union[None, int, slice, Sequence[int], np.ndarray]


def _sample_indices(item: Any, n: int, what: str) -> tuple[list[int], bool]:
    """Normalise a sample selection -> (indices, is_single)."""
    if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
        i = int(item)
        if not -n <= i < n:
            raise IndexError(f"{what}: sample index {i} out of range for {n} samples")
        return [i % n], True
    if isinstance(item, slice):
        return list(range(n))[item], False
    if isinstance(item, (list, tuple, np.ndarray)):
        out = []
        for v in np.asarray(item).reshape(-1).tolist():
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{what}: sample indices must be integers, got {v!r}")
            if not -n <= v < n:
                raise IndexError(f"{what}: sample index {v} out of range for {n} samples")
            out.append(v % n)
        return out, False
    raise TypeError(f"{what}: cannot index with {type(item).__name__}")


def _frame_indices(sel: FrameSel, n: int, what: str) -> tuple[np.ndarray, bool]:
    """Normalise a frame selection -> (int64 frame numbers, is_single_frame)."""
    if sel is None:
        return np.arange(n, dtype=np.int64), False
    if isinstance(sel, (int, np.integer)) and not isinstance(sel, bool):
        k = int(sel)
        if not -n <= k < n:
            raise IndexError(f"{what}: frame {k} out of range for a video of {n} frames")
        return np.array([k % n], dtype=np.int64), True
    if isinstance(sel, slice):
        return np.arange(n, dtype=np.int64)[sel], False
    arr = np.asarray(sel)
    if arr.dtype == bool or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{what}: frame indices must be integers, got {sel!r}")
    arr = arr.astype(np.int64).reshape(-1)
    bad = arr[(arr < -n) | (arr >= n)]
    if bad.size:
        raise IndexError(f"{what}: frame {int(bad[0])} out of range for a video of {n} frames")
    return arr % n if n else arr, False


class Tensor:
    """A named column of a dataset (``ds.videos``). Create with ``ds.create_tensor``.

        >>> t = ds.create_tensor("videos", htype="video", sample_compression="mp4")
        >>> t.append(vidlake.read("a.mp4")); len(t)
        1
    """

    def __init__(self, dataset: Dataset, name: str, meta: dict[str, Any], entries: list[dict[str, Any]],
                 open_chunk: tuple[str, int] | None) -> None:
        self.dataset = dataset
        self.key = name
        self.meta = meta
        self._entries = entries
        self._committed_len = len(entries)
        self._open_chunk = tuple(open_chunk) if open_chunk else None
        self._committed_open_chunk = self._open_chunk
        self.store = ChunkStore(dataset.provider, name)
        self._readers: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()
        #: committed rows replaced by ``ds.upsert`` but not yet committed: index -> old entry
        self._replaced: dict[int, dict[str, Any]] = {}

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
        if self.htype in VIDEO_HTYPES or self.htype == "link[image]":
            return np.dtype(np.uint8)
        if self.htype == "class_label":
            return np.dtype(np.uint32)
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
        shapes = [e["info"]["shape"] for e in self._entries]
        if not shapes:
            return (0,) + ((None, None, None, 3) if self.htype in VIDEO_HTYPES else ())
        return (len(shapes),) + common_shape(shapes)

    @property
    def sample_info(self) -> list[dict[str, Any]]:
        """``sample_info`` of every sample (a list of dicts)."""
        return [self._info(i) for i in range(len(self))]

    def __repr__(self) -> str:
        return f"Tensor(key={self.key!r}, htype={self.htype!r}, len={len(self)})"

    # -- writing -----------------------------------------------------------------------
    def append(self, sample: Any) -> None:
        """Append one sample; atomic: on failure the tensor is unchanged and the error says why.

            >>> ds.videos.append(vidlake.read("clip.mp4"))
        """
        self.dataset._append_rows([{self.key: sample}], only=[self.key])

    def extend(self, samples: Iterable[Any]) -> None:
        """Append several samples, all or none.

            >>> ds.videos.extend([vidlake.read(p) for p in paths])
        """
        self.dataset._append_rows([{self.key: s} for s in samples], only=[self.key])

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
        idx, single = _sample_indices(item, len(self), self.key)
        if single:
            return SampleView(self, idx[0], frames)
        return TensorView(self, idx, frames)

    def __iter__(self):
        for i in range(len(self)):
            yield SampleView(self, i, None)

    def numpy(self, aslist: bool = False) -> np.ndarray | list[Any]:
        """Every sample decoded (see :meth:`TensorView.numpy`)."""
        return TensorView(self, list(range(len(self))), None).numpy(aslist=aslist)

    def data(self, aslist: bool = False) -> Any:
        """Every sample's data (see :meth:`SampleView.data`)."""
        return TensorView(self, list(range(len(self))), None).data()

    # -- internals ---------------------------------------------------------------------
    def _entry(self, i: int) -> dict[str, Any]:
        return self._entries[i]

    def _info(self, i: int) -> dict[str, Any]:
        if "link" in self._entries[i]:
            from .link import linked_info  # an unverified link is indexed on first use

            return linked_info(self, i)
        return dict(self._entries[i]["info"])

    def _sample_shape(self, i: int) -> tuple[int, ...]:
        if "link" in self._entries[i]:
            return tuple(self._info(i)["shape"])
        return tuple(self._entries[i]["info"]["shape"])

    def _reader(self, i: int):
        """The VideoReader of sample ``i`` over its chunks, with its stored index (cached)."""
        with self._lock:
            r = self._readers.get(i)
            if r is not None:
                was_last = next(reversed(self._readers)) == i
                self._readers.move_to_end(i)
                older = [] if was_last else list(self._readers.values())[:-_PARKING_READERS]
            else:
                older = None
        if r is not None:
            for o in older:  # memory: only the most recent readers keep several parked decoders
                o.trim(1)
            return r
        r = self._open_reader(i)
        with self._lock:
            r = self._readers.setdefault(i, r)
            self._readers.move_to_end(i)
            while len(self._readers) > _READER_CACHE:
                self._readers.popitem(last=False)
            older = list(self._readers.values())[:-_PARKING_READERS]
        for o in older:
            o.trim(1)
        return r

    def _open_reader(self, i: int, threads: int | None = None):
        """A new VideoReader of sample ``i`` (not cached; vidlake.torch keeps its own per worker)."""
        from .reader import VideoReader

        e = self._entries[i]
        fname = e["info"].get("filename")
        name = f"{self.dataset.path}/{self.key}[{i}]" + (f" ({fname})" if fname else "")
        if "link" in e:  # a linked video: ranged reads from its URL or local path
            from .link import open_linked_reader

            return open_linked_reader(self, i, name)
        index_bytes = self.store.read_extents(e["index"])
        src = ChunkRangeSource(self.store, e["data"], name=name)
        return VideoReader(src, index=index_bytes, name=name, threads=threads)

    def _value(self, i: int) -> Any:
        if "link" in self._entries[i]:
            from .link import read_linked_image

            return read_linked_image(self, i)
        return decode_value(self.htype, self.store.read_extents(self._entries[i]["data"]))

    def _drop_readers_from(self, n: int) -> None:
        with self._lock:
            for k in [k for k in self._readers if k >= n]:
                del self._readers[k]


class SampleView:
    """One sample, optionally restricted to some frames: ``ds.videos[i]``, ``ds.videos[i, a:b]``."""

    def __new__(cls, tensor: Tensor, index: int, frames: FrameSel = None) -> SampleView:  # noqa: PYI034
        # samples of sequence[...] tensors are SequenceSampleViews (items instead of frames)
        if cls is SampleView and tensor.htype.startswith("sequence["):
            from .sequence import SequenceSampleView

            return super().__new__(SequenceSampleView)
        return super().__new__(cls)

    def __init__(self, tensor: Tensor, index: int, frames: FrameSel = None) -> None:
        self.tensor = tensor
        self.index = index
        self.frames = frames
        if frames is not None:
            if tensor.htype not in VIDEO_HTYPES:
                raise IndexError(f"{tensor.key}: frame indexing is only for video tensors")
            self._selection()  # validate now: a bad frame index fails where it is written

    def _what(self) -> str:
        return f"{self.tensor.key}[{self.index}]"

    def _selection(self) -> tuple[np.ndarray, bool]:
        n = self.tensor._sample_shape(self.index)[0]
        return _frame_indices(self.frames, n, self._what())

    def __getitem__(self, frames: Any) -> SampleView:
        """Chained frame indexing: ``ds.videos[0][10:20]`` is ``ds.videos[0, 10:20]``."""
        if self.tensor.htype not in VIDEO_HTYPES:
            raise IndexError(f"{self._what()}: only video samples can be indexed by frame")
        if self.frames is None:
            return SampleView(self.tensor, self.index, frames)
        sel, single = self._selection()
        if single:
            raise IndexError(f"{self._what()}: a single frame cannot be indexed further")
        if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
            if not -len(sel) <= int(frames) < len(sel):
                raise IndexError(f"{self._what()}: index {frames} out of range for {len(sel)} selected frames")
            return SampleView(self.tensor, self.index, int(sel[int(frames)]))
        return SampleView(self.tensor, self.index, sel[frames] if isinstance(frames, slice)
                          else sel[np.asarray(frames, dtype=np.int64)])

    @property
    def shape(self) -> tuple[int, ...]:
        """``(N, H, W, 3)`` for a video (``(H, W, 3)`` for one frame); from metadata, no decode."""
        full = self.tensor._sample_shape(self.index)
        if self.tensor.htype not in VIDEO_HTYPES or self.frames is None:
            return full
        idx, single = self._selection()
        return full[1:] if single else (len(idx),) + full[1:]

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def sample_info(self) -> builtins.dict[str, Any]:
        """Exactly ``duration`` (timebase units), ``fps``, ``timebase``, ``shape``, ``format``,
        ``filename``, ``modified`` for a video sample."""
        return self.tensor._info(self.index)

    def numpy(self, aslist: bool = False, out: np.ndarray | None = None) -> Any:
        """Decode the selected frames: ``(k, H, W, 3)`` uint8 RGB, or ``(H, W, 3)`` for one frame.

        ``out`` (a C-contiguous uint8 array of exactly that shape) receives the frames without
        another allocation and is returned.

            >>> buf = np.empty((10, 360, 640, 3), np.uint8)
            >>> ds.videos[0, 0:10].numpy(out=buf)
        """
        t = self.tensor
        if t.htype not in VIDEO_HTYPES:
            return t._value(self.index)
        idx, single = self._selection()
        shape = self.shape
        if out is not None:
            if out.shape != shape or out.dtype != np.uint8:
                raise ValueError(f"{self._what()}: out must be a uint8 array of shape {shape}, "
                                 f"got {out.dtype} {out.shape}")
            if not out.flags.c_contiguous or not out.flags.writeable:
                raise ValueError(f"{self._what()}: out must be C-contiguous and writeable")
        if len(idx) == 0:
            return out if out is not None else np.empty(shape, np.uint8)
        r = t._reader(self.index)
        dst = None if out is None else (out[None] if single else out)
        frames = r.get_frames(idx, out=dst)
        if out is not None:
            return out
        return frames[0] if single else frames

    @property
    def timestamp(self) -> np.ndarray:
        """Presentation timestamps (float32 seconds) of the selected frames, in the order asked."""
        t = self.tensor
        if t.htype not in VIDEO_HTYPES:
            raise DatasetError(f"{t.key} is a {t.htype!r} tensor; timestamps exist only for videos")
        idx, _single = self._selection()
        ts = np.asarray(t._reader(self.index).timestamps, dtype=np.float64)
        return ts[idx].astype(np.float32)

    #: Deep Lake's name for :attr:`timestamp`
    timestamps = timestamp

    # -- frames by time: the VideoReader methods of the same names (vidlake/timestamps.py)
    def _video_reader(self):
        t = self.tensor
        if t.htype not in VIDEO_HTYPES:
            raise DatasetError(f"{t.key} is a {t.htype!r} tensor; frames by time exist only for videos")
        return t._reader(self.index)

    def get_frames_played_at(self, seconds: Any, **kwargs: Any) -> np.ndarray:
        """The frame shown at each time (``pts <= t < next pts``) of this video sample; errors name
        the sample. Times are the whole sample's, whatever frames this view selects.

            >>> ds.videos[0].get_frames_played_at([0.0, 2.5]).shape
            (2, 360, 640, 3)
        """
        return self._video_reader().get_frames_played_at(seconds, **kwargs)

    def get_frames_in_range(self, start_s: float, stop_s: float, **kwargs: Any) -> np.ndarray:
        """Every frame of this sample shown during ``[start_s, stop_s)``.

            >>> ds.videos[0].get_frames_in_range(1.0, 2.0).shape
            (31, 360, 640, 3)
        """
        return self._video_reader().get_frames_in_range(start_s, stop_s, **kwargs)

    def get_frames_at_timestamps(self, seconds: Any, tolerance_s: float = 1e-4, **kwargs: Any) -> np.ndarray:
        """The frame nearest each time, within ``tolerance_s`` (else :class:`vidlake.FrameTimestampError`
        naming the sample, the time and the nearest frame).

            >>> ds.videos[0].get_frames_at_timestamps([0.5005], tolerance_s=1e-4).shape
            (1, 360, 640, 3)
        """
        return self._video_reader().get_frames_at_timestamps(seconds, tolerance_s, **kwargs)

    def data(self, aslist: bool = False) -> builtins.dict[str, Any]:
        """``{"frames": ..., "timestamps": ...}`` for videos; ``{"value": ...}`` otherwise
        (plus ``"text"`` names for class labels)."""
        t = self.tensor
        if t.htype in VIDEO_HTYPES:
            return {"frames": self.numpy(), "timestamps": self.timestamp}
        v = t._value(self.index)
        if t.htype == "class_label":
            names = t.meta.get("class_names") or []
            return {"value": v, "text": [names[int(k)] if int(k) < len(names) else None for k in v]}
        return {"value": v}

    def text(self) -> str:
        """The value of a ``text`` sample."""
        return self.tensor._value(self.index) if self.tensor.htype == "text" else str(self.numpy())

    def dict(self) -> Any:
        """The value of a ``json`` sample."""
        return self.tensor._value(self.index)

    def __repr__(self) -> str:
        f = "" if self.frames is None else f", frames={self.frames!r}"
        return f"SampleView({self.tensor.key}[{self.index}]{f}, shape={self.shape})"


class TensorView:
    """Several samples of a tensor: ``ds.videos[0:3]``, ``ds.videos[[0, 2], 0:8]``."""

    def __init__(self, tensor: Tensor, indices: list[int], frames: FrameSel = None) -> None:
        self.tensor = tensor
        self.indices = indices
        self.frames = frames

    def _samples(self) -> list[SampleView]:
        return [SampleView(self.tensor, i, self.frames) for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: Any) -> SampleView | TensorView:
        if self.frames is not None:
            raise IndexError("index the tensor directly: ds.videos[i, frames]")
        frames = None
        if isinstance(item, tuple):
            item, frames = item[0], (item[1] if len(item) > 1 else None)
        sub, single = _sample_indices(item, len(self.indices), self.tensor.key)
        if single:
            return SampleView(self.tensor, self.indices[sub[0]], frames)
        return TensorView(self.tensor, [self.indices[k] for k in sub], frames)

    def __iter__(self):
        return iter(self._samples())

    @property
    def shape(self) -> tuple[int | None, ...]:
        """``(num_samples, *shape)`` with ``None`` for ragged dimensions."""
        shapes = [s.shape for s in self._samples()]
        return (len(shapes),) + common_shape(shapes) if shapes else (0,)

    @property
    def sample_info(self) -> list[dict[str, Any]]:
        """``sample_info`` of each sample."""
        return [self.tensor._info(i) for i in self.indices]

    def numpy(self, aslist: bool = False) -> np.ndarray | list[Any]:
        """Decode each sample; ``aslist=True`` returns one array per sample (ragged is fine),
        otherwise samples of equal shape are stacked."""
        arrays = [s.numpy() for s in self._samples()]
        if aslist:
            return arrays
        if self.tensor.htype in ("text", "json"):
            return arrays
        shapes = {np.shape(a) for a in arrays}
        if len(shapes) > 1:
            raise DatasetError(
                f"{self.tensor.key}: the selected samples have different shapes {sorted(shapes)}; "
                "use .numpy(aslist=True)"
            )
        if not arrays:
            return np.empty((0,), dtype=self.tensor.dtype or np.uint8)
        return np.stack(arrays)

    @property
    def timestamp(self) -> list[np.ndarray]:
        """Timestamps of each selected sample (a list of float32 arrays)."""
        return [s.timestamp for s in self._samples()]

    timestamps = timestamp

    def data(self, aslist: bool = False) -> list[dict[str, Any]]:
        """``data()`` of each sample, as a list."""
        return [s.data() for s in self._samples()]

    def __repr__(self) -> str:
        return f"TensorView({self.tensor.key}, {len(self)} samples)"
