"""Row views: filtered rows (``ds.filter(fn)``) and a row cut to some frames (``ds[i, a:b]``).

    >>> night = ds.filter(lambda row: row.metadata.numpy()["time"] == "night")
    >>> len(night), night[0].reference_id.text(), night.boxes.numpy(aslist=True)
    >>> clip = ds[0, 100:110]                 # frames 100..109 of row 0
    >>> clip.videos.numpy().shape, clip.timestamps, clip.boxes.numpy()
    ((10, 360, 640, 3), array([...], dtype=float32), array(... (10, 1, 4) ...))

``ds[i, a:b]`` cuts every tensor that has frames (videos and ``sequence[...]`` tensors, so the
video and every tensor aligned to it) to the same frames; tensors without frames (``json``
metadata, ``text`` ids, scene-level labels) are returned whole.
"""
from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .dataset import DatasetView
from .sequence import has_frames
from .tensor import _sample_indices

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset

__all__ = ["FrameRowView", "RowsView", "filter_rows", "frame_row"]


class RowsView(DatasetView):
    """Some rows of a dataset, in order: ``len``, ``view[k]`` (a row), ``view[a:b]``, iteration,
    ``view.tensor_name`` (a view of that tensor over these rows, with ``.numpy()``)."""

    def __init__(self, ds: Dataset, indices: list[int]) -> None:
        super().__init__(ds, list(indices), False)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            return super().__getitem__(item)
        sub, single = _sample_indices(item, len(self.indices), f"view of {self.dataset.path}")
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
            if has_frames(t.htype):
                self[k]

    def __getitem__(self, name: str) -> Any:
        t = self._ds[name]
        if has_frames(t.htype):
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
        videos = [k for k, t in ts.items() if t.htype == "video" or t.htype.startswith("link[video")]
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
        return {k: v.numpy(aslist=aslist) if has_frames(self._ds[k].htype) else v.numpy()
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
    rows, single = _sample_indices(item[0], len(ds), ds.path)
    if not single:
        raise IndexError(f"{ds.path}: ds[i, frames] takes one row index i; loop over rows for several")
    return FrameRowView(ds, rows[0], item[1])
