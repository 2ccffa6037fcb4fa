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

Alignment (``aligned_to=``, one item per frame of a video or sequence tensor) is a rule
between tensors: the dataset's writer checks it (``vidlake/dataset/writer.py``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import HtypeError, SampleAppendError
from .base import Htype, PreparedSample, WriteContext, common_shape

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["SequenceHtype", "compose"]


class SequenceHtype(Htype):
    """``sequence[X]``: an ordered list of X items per sample, indexed like frames."""

    frames = True

    def __init__(self, name: str, item: Htype) -> None:
        self.name = name
        self.item = item
        self.compressions = item.compressions
        self.compression_required = item.compression_required
        self.fixed_dtype = item.fixed_dtype
        self.strict_dtype = item.strict_dtype
        self.decodes_rows = item.decodes_rows
        self.still_image = item.still_image
        self.array_values = item.array_values

    def check_compression(self, compression: str | None) -> str | None:
        return self.item.check_compression(compression)

    def params(self, dtype: Any, class_names: Sequence[str] | None,
               coords: Mapping[str, Any] | None) -> dict[str, Any]:
        return self.item.params(dtype, class_names, coords)

    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        """Validate and encode every item of a sequence sample."""
        if isinstance(sample, (str, bytes, bytearray, dict)) or not hasattr(sample, "__iter__"):
            raise HtypeError(
                f"tensor {tensor!r} ({self.name}) takes a list of items (one per frame), got {type(sample).__name__}"
            )
        parts: list[bytes] = []
        offsets = [0]
        shapes: list[list[int]] = []
        for k, item in enumerate(sample):
            try:
                p = self.item.prepare(item, tensor, meta, ctx)
            except SampleAppendError as e:
                raise type(e)(f"item {k} of the sequence: {e}") from None
            data = bytes(p.data)
            parts.append(data)
            offsets.append(offsets[-1] + len(data))
            shapes.append(list(p.info["shape"]))
        shape = [len(shapes), *list(common_shape(shapes))] if shapes else [0]
        return PreparedSample(b"".join(parts), {"shape": shape, "items": {"offsets": offsets, "shapes": shapes}})

    def decode(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        """One item's bytes -> its value."""
        return self.item.decode(data, meta)

    def decode_row(self, data: bytes, out: Any) -> Any:
        return self.item.decode_row(data, out)


def compose(name: str, registry: Mapping[str, Htype]) -> SequenceHtype:
    """The htype ``sequence[X]`` from X's (``sequence[]`` holds ``generic`` items);
    ``sequence[video]`` is refused (a video already is a sequence of frames)."""
    inner = name[len("sequence["):-1] or "generic"
    item = registry.get(inner)
    allowed = [k for k, h in registry.items() if h.sequence_item]
    if item is None or not item.sequence_item:
        raise ValueError(
            f"htype {name!r} is not supported; a sequence holds one of {', '.join(allowed)} "
            "(sequence[] is sequence[generic]; a video tensor already is a sequence of frames)"
        )
    return SequenceHtype(name, item)
