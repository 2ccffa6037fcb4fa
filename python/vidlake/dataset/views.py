"""Views of samples and rows: what indexing a tensor or a dataset returns.

    >>> ds.videos[0].shape                 # (N, H, W, 3), from the stored index: no I/O
    >>> ds.videos[0].sample_info           # duration, fps, timebase, shape, format, filename, modified
    >>> ds.videos[0, 10:20:2].numpy()      # decodes only what frames 10, 12, ... 18 need
    >>> ds.videos[0, [3, 17, 5]].timestamp # float32 seconds, in the order asked
    >>> ds.videos[0:3].numpy(aslist=True)  # one array per video
    >>> ds.frames[0, 10:20].numpy()        # items 10..19 of a sequence sample
    >>> night = ds.filter(lambda row: row.metadata.numpy()["time"] == "night")
    >>> clip = ds[0, 100:110]              # row 0 cut to frames 100..109 (every framed tensor)

* :class:`SampleView` (one sample, optionally some frames), :class:`SequenceSampleView` (one
  ``sequence[...]`` sample, optionally some items), :class:`TensorView` (several samples);
* :class:`DatasetView` (rows: ``ds[0].videos``), :class:`RowsView` (``ds.filter(fn)``),
  :class:`FrameRowView` (``ds[i, a:b]`` cuts every tensor that has frames -- videos and
  ``sequence[...]`` tensors, so the video and every tensor aligned to it -- to the same frames;
  tensors without frames are returned whole).

A view reads through its tensor's per-sample methods (``entry``, ``info``, ``reader``,
``value``); the htype (``tensor.spec``) decides what a sample is.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ..errors import DatasetError
from ..format.records import decode_stored
from ..htypes import common_shape
from ..video.images import check_image_decoder, using_image_decoder

if TYPE_CHECKING:  # pragma: no cover
    import builtins

    from .dataset import Dataset
    from .tensor import Tensor

__all__ = [
    "DatasetView",
    "FrameRowView",
    "RowsView",
    "SampleView",
    "SequenceSampleView",
    "TensorView",
    "filter_rows",
    "frame_indices",
    "frame_row",
    "frame_shape",
    "sample_indices",
]

FrameSel = Union[None, int, slice, Sequence[int], np.ndarray]


def frame_shape(hwc: Sequence[int], opts: builtins.dict[str, Any], entry: builtins.dict[str, Any]) -> tuple[int, ...]:
    """``(H, W, C)`` of one frame as read with these options (``size``, ``rotate``, ``gray``),
    from the stored shape and display rotation (the core's rule: quarter turns of -rotation)."""
    h, w, c = hwc
    if opts.get("size") is not None:
        h, w = (int(v) for v in opts["size"])
    elif opts.get("rotate") and round(-float((entry.get("video") or {}).get("rotation") or 0) / 90) % 2:
        h, w = w, h
    return (h, w, 1 if opts.get("gray") else c)


def sample_indices(item: Any, n: int, what: str) -> tuple[list[int], bool]:
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


def frame_indices(sel: FrameSel, n: int, what: str) -> tuple[np.ndarray, bool]:
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


class SampleView:
    """One sample, optionally restricted to some frames: ``ds.videos[i]``, ``ds.videos[i, a:b]``."""

    def __init__(self, tensor: Tensor, index: int, frames: FrameSel = None) -> None:
        self.tensor = tensor
        self.index = index
        self.frames = frames
        if frames is not None:
            if not tensor.spec.video:
                raise IndexError(f"{tensor.key}: frame indexing is only for video tensors")
            self._selection()  # validate now: a bad frame index fails where it is written

    def _what(self) -> str:
        return f"{self.tensor.key}[{self.index}]"

    def _selection(self) -> tuple[np.ndarray, bool]:
        n = self.tensor.sample_shape(self.index)[0]
        return frame_indices(self.frames, n, self._what())

    def __getitem__(self, frames: Any) -> SampleView:
        """Chained frame indexing: ``ds.videos[0][10:20]`` is ``ds.videos[0, 10:20]``."""
        if not self.tensor.spec.video:
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
    def shape(self) -> tuple[Any, ...]:
        """``(N, H, W, 3)`` for a video (``(H, W, 3)`` for one frame), as :meth:`numpy` returns it
        with the tensor's read options; from metadata, no decode."""
        return self._shape(self.tensor.read_options)

    def _shape(self, opts: builtins.dict[str, Any]) -> tuple[Any, ...]:
        full = self.tensor.sample_shape(self.index)
        if not self.tensor.spec.video:
            return full
        full = (full[0], *frame_shape(full[1:], opts, self.tensor.entry(self.index)))
        if self.frames is None:
            return full
        idx, single = self._selection()
        return full[1:] if single else (len(idx), *full[1:])

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def sample_info(self) -> builtins.dict[str, Any]:
        """Exactly ``duration`` (timebase units), ``fps``, ``timebase``, ``shape``, ``format``,
        ``filename``, ``modified`` for a video sample."""
        return self.tensor.info(self.index)

    def numpy(self, aslist: bool = False, out: np.ndarray | None = None, *,
              size: tuple[int, int] | None = None, gray: bool | None = None, rotate: bool | None = None,
              color_conversion: str | None = None, image_decoder: str | None = None) -> Any:
        """Decode the selected frames: ``(k, H, W, 3)`` uint8 RGB, or ``(H, W, 3)`` for one frame.

        The options are :meth:`vidlake.VideoReader.get_frames`'s: ``size=(h, w)`` resizes in
        the conversion pass, ``gray=True`` gives ``(..., 1)`` luma, ``rotate=True`` turns frames
        upright by the display matrix, ``color_conversion`` is ``"stream"`` (the frame's own
        colours, default) or ``"bt601"``. Options left at ``None`` take the tensor's read
        options (``create_tensor(..., read_options={...})``). ``out`` (a C-contiguous uint8
        array of exactly the result's shape) receives the frames without another allocation.
        Image samples take ``image_decoder`` (``"pillow"``, default, or ``"ffmpeg"``: see
        :mod:`vidlake.video.images`).

            >>> ds.videos[0, 0:10].numpy(size=(224, 224), rotate=True).shape
            (10, 224, 224, 3)
            >>> buf = np.empty((10, 360, 640, 3), np.uint8)
            >>> ds.videos[0, 0:10].numpy(out=buf)
        """
        t = self.tensor
        if not t.spec.video:
            if size is not None or gray or rotate or color_conversion is not None:
                raise ValueError(f"{self._what()}: size, gray, rotate and color_conversion are read options "
                                 f"of video samples; {t.htype!r} samples take none")
            with using_image_decoder(image_options(t, image_decoder)):
                return t.value(self.index)
        if image_decoder is not None:
            raise ValueError(f"{self._what()}: image_decoder is a read option of image samples, not of videos")
        opts = t.merged_read_options(size=size, gray=gray, rotate=rotate, color_conversion=color_conversion)
        idx, single = self._selection()
        shape = self._shape(opts)
        if out is not None:
            if out.shape != shape or out.dtype != np.uint8:
                raise ValueError(f"{self._what()}: out must be a uint8 array of shape {shape}, "
                                 f"got {out.dtype} {out.shape}")
            if not out.flags.c_contiguous or not out.flags.writeable:
                raise ValueError(f"{self._what()}: out must be C-contiguous and writeable")
        if len(idx) == 0:
            return out if out is not None else np.empty(shape, np.uint8)
        r = t.reader(self.index)
        dst = None if out is None else (out[None] if single else out)
        frames = r.get_frames(idx, out=dst, **opts)
        if out is not None:
            return out
        return frames[0] if single else frames

    @property
    def timestamp(self) -> np.ndarray:
        """Presentation timestamps (float32 seconds) of the selected frames, in the order asked."""
        t = self.tensor
        if not t.spec.video:
            raise DatasetError(f"{t.key} is a {t.htype!r} tensor; timestamps exist only for videos")
        idx, _single = self._selection()
        ts = np.asarray(t.reader(self.index).timestamps, dtype=np.float64)
        return ts[idx].astype(np.float32)

    #: Deep Lake's name for :attr:`timestamp`
    timestamps = timestamp

    # -- frames by time: the VideoReader methods of the same names (vidlake/video/timestamps.py)
    def _video_reader(self) -> Any:
        t = self.tensor
        if not t.spec.video:
            raise DatasetError(f"{t.key} is a {t.htype!r} tensor; frames by time exist only for videos")
        return t.reader(self.index)

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
        if t.spec.video:
            return {"frames": self.numpy(), "timestamps": self.timestamp}
        v = t.value(self.index)
        if "class_names" in t.meta:
            names = t.meta.get("class_names") or []
            return {"value": v, "text": [names[int(k)] if int(k) < len(names) else None for k in v]}
        return {"value": v}

    def play(self, open_browser: bool | None = None) -> Any:
        """Watch this video sample in the browser (inline in Jupyter): :meth:`Tensor.play`.

            >>> ds.videos[1].play()
        """
        return self.tensor.play(self.index, open_browser=open_browser)

    def text(self) -> str:
        """The value of a ``text`` sample."""
        v = self.numpy()
        return v if isinstance(v, str) else str(v)

    def dict(self) -> Any:
        """The value of a ``json`` sample."""
        return self.tensor.value(self.index)

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
        return [self.tensor.sample(i, self.frames) for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: Any) -> SampleView | TensorView:
        if self.frames is not None:
            raise IndexError("index the tensor directly: ds.videos[i, frames]")
        frames = None
        if isinstance(item, tuple):
            item, frames = item[0], (item[1] if len(item) > 1 else None)
        sub, single = sample_indices(item, len(self.indices), self.tensor.key)
        if single:
            return self.tensor.sample(self.indices[sub[0]], frames)
        return TensorView(self.tensor, [self.indices[k] for k in sub], frames)

    def __iter__(self):
        return iter(self._samples())

    @property
    def shape(self) -> tuple[int | None, ...]:
        """``(num_samples, *shape)`` with ``None`` for ragged dimensions."""
        shapes = [s.shape for s in self._samples()]
        return (len(shapes), *common_shape(shapes)) if shapes else (0,)

    @property
    def sample_info(self) -> list[dict[str, Any]]:
        """``sample_info`` of each sample."""
        return [self.tensor.info(i) for i in self.indices]

    def numpy(self, aslist: bool = False, **read_options: Any) -> np.ndarray | list[Any]:
        """Decode each sample; ``aslist=True`` returns one array per sample (ragged is fine),
        otherwise samples of equal shape are stacked. ``read_options`` (``size``, ``gray``,
        ``rotate``, ``color_conversion``) go to each video sample's :meth:`SampleView.numpy`."""
        arrays = [s.numpy(**read_options) for s in self._samples()]
        if aslist:
            return arrays
        if not self.tensor.spec.array_values:
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


class SequenceSampleView(SampleView):
    """One sequence sample, optionally restricted to some items: ``ds.frames[0]``,
    ``ds.frames[0, 10:20]``, ``ds.boxes[0][10]``."""

    def __init__(self, tensor: Tensor, index: int, frames: Any = None) -> None:
        self.tensor = tensor
        self.index = index
        self.frames = frames
        if frames is not None:
            self._selection()

    def _items(self) -> dict[str, Any]:
        return self.tensor.entry(self.index)["info"]["items"]

    def _selection(self) -> tuple[np.ndarray, bool]:
        n = self.tensor.sample_shape(self.index)[0]
        return frame_indices(self.frames, int(n), self._what())

    def _fetch(self, ks: np.ndarray) -> list[bytes]:
        e = self.tensor.entry(self.index)
        if not len(ks):
            return []
        offs = self._items()["offsets"]
        src = self.tensor.stored(self.index).range_source(e["data"])
        return src.fetch([(offs[int(k)], offs[int(k) + 1]) for k in ks])

    def __getitem__(self, frames: Any) -> SequenceSampleView:
        """Chained item indexing: ``ds.frames[0][10:20]`` is ``ds.frames[0, 10:20]``."""
        if self.frames is None:
            return SequenceSampleView(self.tensor, self.index, frames)
        sel, single = self._selection()
        if single:
            raise IndexError(f"{self._what()}: a single item cannot be indexed further")
        if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
            if not -len(sel) <= int(frames) < len(sel):
                raise IndexError(f"{self._what()}: index {frames} out of range for {len(sel)} selected items")
            return SequenceSampleView(self.tensor, self.index, int(sel[int(frames)]))
        return SequenceSampleView(self.tensor, self.index, sel[frames] if isinstance(frames, slice)
                                  else sel[np.asarray(frames, dtype=np.int64)])

    def __iter__(self):
        idx, single = self._selection()
        if single:
            raise TypeError(f"{self._what()}: a single item is not iterable")
        for k in idx:
            yield SequenceSampleView(self.tensor, self.index, int(k))

    @property
    def shape(self) -> tuple[Any, ...]:
        """``(n, *item shape)`` (``None`` where items differ), or one item's shape."""
        if self.frames is None:
            return tuple(self.tensor.sample_shape(self.index))
        idx, single = self._selection()
        shapes = self._items()["shapes"]
        if single:
            return tuple(shapes[int(idx[0])])
        return (len(idx), *common_shape([shapes[int(k)] for k in idx]))

    def __len__(self) -> int:
        idx, single = self._selection()
        if single:
            raise TypeError(f"{self._what()} is a single item; it has no len()")
        return len(idx)

    def numpy(self, aslist: bool = False, out: np.ndarray | None = None, *,
              size: tuple[int, int] | None = None, gray: bool | None = None, rotate: bool | None = None,
              color_conversion: str | None = None, image_decoder: str | None = None) -> Any:
        """Decode the selected items: one item's value, or the items stacked ``(k, ...)``
        (a list when ``aslist=True``; items of different shapes need ``aslist=True``).
        ``text`` / ``json`` items always come as a list. Frame read options (``size``, ``gray``,
        ``rotate``, ``color_conversion``) are for video samples; images come decoded as stored,
        by ``image_decoder`` (``"pillow"``, default, or ``"ffmpeg"``)."""
        if size is not None or gray or rotate or color_conversion is not None:
            raise ValueError(f"{self._what()}: size, gray, rotate and color_conversion are read options of "
                             f"video samples; {self.tensor.htype!r} items are decoded as stored")
        with using_image_decoder(image_options(self.tensor, image_decoder)):
            return self._numpy(aslist, out)

    def _numpy(self, aslist: bool, out: np.ndarray | None) -> Any:
        t = self.tensor
        spec = t.spec
        idx, single = self._selection()
        blobs = self._fetch(idx)
        if spec.decodes_rows and not single and not aslist:
            shapes = {tuple(self._items()["shapes"][int(k)]) for k in idx}
            if len(shapes) == 1:
                shape = (len(idx), *shapes.pop())
                if out is None:
                    out = np.empty(shape, np.uint8)
                elif out.shape != shape or out.dtype != np.uint8:
                    raise ValueError(f"{self._what()}: out must be a uint8 array of shape {shape}")
                if not out.flags.c_contiguous:
                    raise ValueError(f"{self._what()}: out must be C-contiguous")
                for j, b in enumerate(blobs):
                    spec.decode_row(b, out[j])
                return out
        vals = [decode_stored(spec.decode, b, self._what(), spec.name, t.meta) for b in blobs]
        if single:
            return vals[0]
        if aslist or not spec.array_values:
            return vals
        if not vals:
            return np.empty((0,), dtype=t.dtype or np.float64)
        shapes = {np.shape(v) for v in vals}
        if len(shapes) > 1:
            raise DatasetError(
                f"{self._what()}: the selected items have different shapes {sorted(shapes)}; "
                "use .numpy(aslist=True)"
            )
        res = np.stack(vals)
        if out is not None:
            out[...] = res
            return out
        return res

    def data(self, aslist: bool = False) -> builtins.dict[str, Any]:
        """``{"value": items}`` (plus ``"text"``: class names per item for class labels)."""
        t = self.tensor
        idx, single = self._selection()
        shapes = self._items()["shapes"]
        ragged = len({tuple(shapes[int(k)]) for k in idx}) > 1
        v = self.numpy(aslist=aslist or ragged)
        if "class_names" in t.meta:
            names = t.meta.get("class_names") or []

            def text(ids: Any) -> list[Any]:
                return [names[int(k)] if int(k) < len(names) else None for k in np.asarray(ids).reshape(-1)]

            return {"value": v, "text": text(v) if single else [text(x) for x in v]}
        return {"value": v}

    def __repr__(self) -> str:
        f = "" if self.frames is None else f", items={self.frames!r}"
        return f"SequenceSampleView({self.tensor.key}[{self.index}]{f})"




class DatasetView:
    """Rows of a dataset: ``ds[0].videos``, ``ds[2:5].labels.numpy()``."""

    def __init__(self, ds: Dataset, indices: list[int], single: bool) -> None:
        self.dataset = ds
        self.indices = indices
        self.single = single

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Any:
        t = self.dataset[name]
        if self.single:
            return t.sample(self.indices[0])
        return TensorView(t, list(self.indices))

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def tensors(self) -> dict[str, Any]:
        """Name -> view of that tensor over these rows."""
        return {k: self[k] for k in self.dataset.tensors}

    def __repr__(self) -> str:
        return f"DatasetView({self.dataset.path!r}, rows={self.indices if len(self.indices) < 10 else len(self.indices)})"


class RowsView(DatasetView):
    """Some rows of a dataset, in order: ``len``, ``view[k]`` (a row), ``view[a:b]``, iteration,
    ``view.tensor_name`` (a view of that tensor over these rows, with ``.numpy()``)."""

    def __init__(self, ds: Dataset, indices: list[int]) -> None:
        super().__init__(ds, list(indices), False)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            return super().__getitem__(item)
        sub, single = sample_indices(item, len(self.indices), f"view of {self.dataset.path}")
        if single:
            return DatasetView(self.dataset, [self.indices[sub[0]]], True)
        return RowsView(self.dataset, [self.indices[k] for k in sub])

    def __iter__(self) -> Iterator[DatasetView]:
        for i in self.indices:
            yield DatasetView(self.dataset, [i], True)

    def __repr__(self) -> str:
        n = len(self.indices)
        return f"RowsView({self.dataset.path!r}, rows={self.indices if n < 10 else n})"


def _truthy(res: Any) -> bool:
    if isinstance(res, np.ndarray):
        return bool(res.size) and bool(res.all())
    return bool(res)


def filter_rows(ds: Dataset, fn: Callable[[DatasetView], Any]) -> RowsView:
    """The rows for which ``fn(row)`` is true (``row.tensor`` is that row's sample view)."""
    keep = [i for i in range(len(ds)) if _truthy(fn(DatasetView(ds, [i], True)))]
    return RowsView(ds, keep)


class FrameRowView:
    """One row cut to some frames: ``ds[i, a:b]`` (see the module doc). ``view["boxes"]`` or
    ``view.boxes`` is that tensor's view; ``numpy()``, ``data()``, ``timestamps`` cover the row."""

    def __init__(self, ds: Dataset, index: int, frames: Any) -> None:
        # underscored: tensors are reached as attributes too (a tensor is often called "frames")
        self._ds = ds
        self._row = index
        self._sel = frames
        for k, t in ds.tensors.items():  # validate the frame selection where it is written
            if t.spec.frames:
                self[k]

    def __getitem__(self, name: str) -> Any:
        t = self._ds[name]
        if t.spec.frames:
            return t[self._row, self._sel]
        return t[self._row]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def tensors(self) -> builtins.dict[str, Any]:
        """Name -> view of that tensor in this row (cut to the frames where it has frames)."""
        return {k: self[k] for k in self._ds.tensors}

    def _video(self) -> str | None:
        """The video tensor the timestamps come from: the one others are aligned to, else the first."""
        ts = self._ds.tensors
        videos = [k for k, t in ts.items() if t.spec.video]
        targets = [t.meta.get("aligned_to") for t in ts.values()]
        for k in videos:
            if k in targets:
                return k
        return videos[0] if videos else None

    @property
    def timestamps(self) -> np.ndarray | None:
        """Timestamps (float32 seconds) of the selected frames of the row's video; None when the
        row has no video tensor (image sequences carry no times)."""
        v = self._video()
        return None if v is None else self[v].timestamp

    timestamp = timestamps

    def numpy(self, aslist: bool = False) -> builtins.dict[str, Any]:
        """``{tensor: values}`` of every tensor in this row, framed tensors cut to the frames."""
        return {k: v.numpy(aslist=aslist) if self._ds[k].spec.frames else v.numpy()
                for k, v in self.tensors.items()}

    def data(self) -> builtins.dict[str, Any]:
        """``{tensor: view.data()}``: frames and timestamps for videos, ``{"value": ...}`` else."""
        return {k: v.data() for k, v in self.tensors.items()}

    def __repr__(self) -> str:
        return f"FrameRowView({self._ds.path!r}, row={self._row}, frames={self._sel!r})"


def frame_row(ds: Dataset, item: tuple[Any, ...]) -> FrameRowView:
    """``ds[i, frames]`` -> :class:`FrameRowView` (one row only)."""
    if len(item) != 2:
        raise IndexError(f"{ds.path}: index rows as ds[i] or ds[i, frames]")
    rows, single = sample_indices(item[0], len(ds), ds.path)
    if not single:
        raise IndexError(f"{ds.path}: ds[i, frames] takes one row index i; loop over rows for several")
    return FrameRowView(ds, rows[0], item[1])


def image_options(t: Tensor, image_decoder: str | None) -> str | None:
    """The image decoder of one read of ``t``: the call's, else the tensor's read option (None:
    the default, ``"pillow"``)."""
    if image_decoder is None:
        return t.read_options.get("image_decoder")
    if not t.spec.still_image:
        raise ValueError(f"{t.key}: image_decoder is a read option of image tensors, not of {t.htype!r}")
    return check_image_decoder(image_decoder, f"{t.key}: image_decoder")
