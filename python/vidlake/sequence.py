"""``sequence[X]`` tensors: a sample is an ordered list of X items (frames, per-frame boxes, ...).

    >>> ds.create_tensor("frames", htype="sequence[image]", sample_compression="jpg")
    >>> ds.create_tensor("boxes", htype="sequence[bbox]", aligned_to="frames")
    >>> ds.create_tensor("ids", htype="sequence[]", dtype="uint32", aligned_to="frames")
    >>> with ds:
    ...     ds.append({"frames": [vidlake.read(p) for p in paths], "boxes": boxes_seq, "ids": ids_seq})
    >>> len(ds.frames[0]), ds.frames[0][10].numpy().shape, ds.boxes[0, 2:5].numpy(aslist=True)

Storage (``docs/FORMAT.md``, "Sequences"): the sample's bytes are the concatenation of its
items' encodings (each exactly what a sample of X would store); the table entry's ``info``
holds ``shape`` = ``[n, *common item shape]`` (``null`` where items differ) and ``items`` =
``{"offsets": [o0 .. on], "shapes": [...]}``. Reading item ``k`` fetches bytes
``[o_k, o_k+1)`` only.

Alignment: a ``sequence[...]`` tensor created with ``aligned_to="videos"`` must have, in every
row, as many items as the ``videos`` sample has frames (checked at append and upsert).
"""
from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .chunks import ChunkRangeSource
from .errors import DatasetError, HtypeError, SampleAppendError
from .htypes import PreparedSample, common_shape, decode_value, prepare_sample
from .tensor import SampleView, _frame_indices

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset
    from .tensor import Tensor

__all__ = [
    "SequenceSampleView",
    "check_alignment",
    "frame_count",
    "has_frames",
    "inner_htype",
    "is_sequence",
    "prepare_sequence",
]

#: inner htypes a sequence may hold
SEQUENCE_ITEMS = ("image", "bbox", "class_label", "generic", "text", "json")


def is_sequence(htype: str) -> bool:
    """True for ``sequence[...]`` htypes."""
    return isinstance(htype, str) and htype.startswith("sequence[") and htype.endswith("]")


def inner_htype(htype: str) -> str:
    """The item htype of ``sequence[X]`` (``sequence[]`` holds ``generic`` items)."""
    inner = htype[len("sequence["):-1]
    return inner or "generic"


def check_sequence_htype(htype: str) -> str:
    """Validate ``sequence[X]``; ``sequence[video]`` is refused (a video already is a sequence)."""
    inner = inner_htype(htype)
    if inner not in SEQUENCE_ITEMS:
        raise ValueError(
            f"htype {htype!r} is not supported; a sequence holds one of {', '.join(SEQUENCE_ITEMS)} "
            "(sequence[] is sequence[generic]; a video tensor already is a sequence of frames)"
        )
    return htype


def has_frames(htype: str) -> bool:
    """Tensors whose samples are indexed by frame: videos and sequences."""
    return htype == "video" or htype.startswith("link[video") or is_sequence(htype)


def prepare_sequence(htype: str, sample: Any, tensor: str, meta: Mapping[str, Any]) -> PreparedSample:
    """Validate and encode every item of a sequence sample."""
    inner = inner_htype(htype)
    if isinstance(sample, (str, bytes, bytearray, dict)) or not hasattr(sample, "__iter__"):
        raise HtypeError(
            f"tensor {tensor!r} ({htype}) takes a list of items (one per frame), got {type(sample).__name__}"
        )
    parts: list[bytes] = []
    offsets = [0]
    shapes: list[list[int]] = []
    for k, item in enumerate(sample):
        try:
            p = prepare_sample(inner, item, tensor, meta)
        except SampleAppendError as e:
            raise type(e)(f"item {k} of the sequence: {e}") from None
        data = bytes(p.data)
        parts.append(data)
        offsets.append(offsets[-1] + len(data))
        shapes.append(list(p.info["shape"]))
    shape = [len(shapes)] + list(common_shape(shapes)) if shapes else [0]
    return PreparedSample(b"".join(parts), {"shape": shape, "items": {"offsets": offsets, "shapes": shapes}})


def frame_count(t: Tensor, i: int) -> int | None:
    """Frames (video) or items (sequence) of sample ``i``; None when unknown."""
    shape = t._entries[i].get("info", {}).get("shape")
    if not shape or shape[0] is None:
        return None
    return int(shape[0])


def check_alignment(ds: Dataset, touched: Mapping[str, int]) -> None:
    """After staging: every aligned pair with a sample at a touched index has equal frame counts.

    ``touched`` maps tensor name -> the index just written.
    """
    tensors = ds._tensors
    for a in tensors.values():
        target = a.meta.get("aligned_to")
        if not target or target not in tensors:
            continue
        v = tensors[target]
        for i in {touched[k] for k in (a.key, target) if k in touched}:
            if i >= len(a._entries) or i >= len(v._entries):
                continue
            na, nv = frame_count(a, i), frame_count(v, i)
            if na is not None and nv is not None and na != nv:
                raise SampleAppendError(
                    f"tensor {a.key!r} is aligned to {target!r}: row {i} gives {na} item(s) for {a.key!r} "
                    f"but {nv} frame(s) for {target!r}; give one {a.key} item per frame"
                )


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
        return self.tensor._entries[self.index]["info"]["items"]

    def _selection(self) -> tuple[np.ndarray, bool]:
        n = self.tensor._sample_shape(self.index)[0]
        return _frame_indices(self.frames, int(n), self._what())

    def _fetch(self, ks: np.ndarray) -> list[bytes]:
        e = self.tensor._entries[self.index]
        if not len(ks):
            return []
        offs = self._items()["offsets"]
        src = ChunkRangeSource(self.tensor.store, e["data"], name=self._what())
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
    def shape(self) -> tuple[int | None, ...]:
        """``(n, *item shape)`` (``None`` where items differ), or one item's shape."""
        if self.frames is None:
            return tuple(self.tensor._sample_shape(self.index))
        idx, single = self._selection()
        shapes = self._items()["shapes"]
        if single:
            return tuple(shapes[int(idx[0])])
        return (len(idx),) + common_shape([shapes[int(k)] for k in idx])

    def __len__(self) -> int:
        idx, single = self._selection()
        if single:
            raise TypeError(f"{self._what()} is a single item; it has no len()")
        return len(idx)

    def numpy(self, aslist: bool = False, out: np.ndarray | None = None) -> Any:
        """Decode the selected items: one item's value, or the items stacked ``(k, ...)``
        (a list when ``aslist=True``; items of different shapes need ``aslist=True``).
        ``text`` / ``json`` items always come as a list."""
        from .images import decode_image

        t = self.tensor
        inner = inner_htype(t.htype)
        idx, single = self._selection()
        blobs = self._fetch(idx)
        if inner == "image" and not single and not aslist:
            shapes = {tuple(self._items()["shapes"][int(k)]) for k in idx}
            if len(shapes) == 1:
                shape = (len(idx),) + shapes.pop()
                if out is None:
                    out = np.empty(shape, np.uint8)
                elif out.shape != shape or out.dtype != np.uint8:
                    raise ValueError(f"{self._what()}: out must be a uint8 array of shape {shape}")
                if not out.flags.c_contiguous:
                    raise ValueError(f"{self._what()}: out must be C-contiguous")
                for j, b in enumerate(blobs):
                    decode_image(b, out=out[j])  # libavcodec straight into the output row
                return out
        vals = [decode_value(inner, b) for b in blobs]
        if single:
            return vals[0]
        if aslist or inner in ("text", "json"):
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
        if inner_htype(t.htype) == "class_label":
            names = t.meta.get("class_names") or []

            def text(ids: Any) -> list[Any]:
                return [names[int(k)] if int(k) < len(names) else None for k in np.asarray(ids).reshape(-1)]

            return {"value": v, "text": text(v) if single else [text(x) for x in v]}
        return {"value": v}

    def __repr__(self) -> str:
        f = "" if self.frames is None else f", items={self.frames!r}"
        return f"SequenceSampleView({self.tensor.key}[{self.index}]{f})"


def check_aligned_to(ds: Dataset, htype: str, aligned_to: str) -> str:
    """Validate ``create_tensor(..., aligned_to=...)``: a sequence aligned to an existing video or
    sequence tensor."""
    if not is_sequence(htype):
        raise ValueError(f"aligned_to is for sequence[...] tensors (one item per frame), not {htype!r}")
    t = ds._tensors.get(aligned_to)
    if t is None:
        raise ValueError(f"aligned_to={aligned_to!r}: no such tensor in {ds.path}; create it first")
    if not has_frames(t.htype):
        raise ValueError(f"aligned_to={aligned_to!r} is a {t.htype!r} tensor; align to a video or sequence tensor")
    return aligned_to
