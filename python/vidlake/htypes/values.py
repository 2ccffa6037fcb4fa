"""The small-value htypes that accompany videos: ``generic``, ``class_label``, ``text``, ``json``.

    >>> ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
    >>> ds.labels.append("dog"); ds.labels[0].numpy()
    array([1], dtype=uint32)

* ``generic``: numeric arrays stored as ``.npy``, cast to the tensor's ``dtype`` only when no
  value changes (:func:`vidlake.htypes.base.safe_cast`).
* ``class_label``: ints (``>= 0``) or names from the tensor's ``class_names``; an unknown name
  is refused (the list is fixed when the tensor is created, so ids never change meaning).
* ``text``: a ``str`` (UTF-8); ``json``: any JSON-serialisable value.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import HtypeError
from . import register
from .base import Htype, PreparedSample, WriteContext, npy, safe_cast

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["ClassLabelHtype", "GenericHtype", "JsonHtype", "TextHtype", "class_ids"]


class GenericHtype(Htype):
    """``generic``: numeric arrays of any shape."""

    name = "generic"
    sequence_item = True

    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        try:
            arr = np.asarray(sample)
        except Exception as e:  # noqa: BLE001 - numpy raises many types here
            raise HtypeError(f"tensor {tensor!r} cannot store {type(sample).__name__}: {e}") from None
        if arr.dtype == object:
            raise HtypeError(f"tensor {tensor!r} (htype 'generic') takes numeric arrays; got an object array")
        want = meta.get("dtype")
        if want is not None:
            arr = safe_cast(arr, want, tensor)
        return PreparedSample(npy(arr), {"shape": list(arr.shape)})


def class_ids(sample: Any, tensor: str, class_names: Sequence[str]) -> np.ndarray:
    """A class_label sample (an int, a name, or a list of them) -> uint32 ids."""
    names = list(class_names)
    vals = sample if isinstance(sample, (list, tuple, np.ndarray)) else [sample]
    out = []
    for v in vals:
        if isinstance(v, str):
            if v not in names:
                raise HtypeError(
                    f"class {v!r} is not in tensor {tensor!r}'s class_names {names}; "
                    "pass class_names= to create_tensor (the list is fixed at creation)"
                )
            out.append(names.index(v))
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            if not 0 <= int(v) < 2**32:
                raise HtypeError(f"tensor {tensor!r} (htype 'class_label'): class id {int(v)} is not in 0 .. 2**32-1")
            out.append(int(v))
        else:
            raise HtypeError(f"tensor {tensor!r} (htype 'class_label') takes ints or class names, got {v!r}")
    return np.asarray(out, dtype=np.uint32)


class ClassLabelHtype(Htype):
    """``class_label``: uint32 class ids, appended as ids or as names of ``class_names``."""

    name = "class_label"
    sequence_item = True
    fixed_dtype = "uint32"
    strict_dtype = True

    def params(self, dtype: Any, class_names: Sequence[str] | None,
               coords: Mapping[str, Any] | None) -> dict[str, Any]:
        out = super().params(dtype, None, coords)
        names = [str(n) for n in class_names or []]
        if len(set(names)) != len(names):
            raise ValueError(f"class_names has duplicates: {names}")
        out["class_names"] = names
        return out

    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        arr = class_ids(sample, tensor, meta.get("class_names") or [])
        return PreparedSample(npy(arr), {"shape": list(arr.shape)})


class TextHtype(Htype):
    """``text``: one ``str`` per sample, stored as UTF-8."""

    name = "text"
    sequence_item = True
    array_values = False

    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        if not isinstance(sample, str):
            raise HtypeError(f"tensor {tensor!r} (htype 'text') takes str samples, got {type(sample).__name__}")
        return PreparedSample(sample.encode("utf-8"), {"shape": [1]})

    def decode(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        return data.decode("utf-8")


class JsonHtype(TextHtype):
    """``json``: any JSON-serialisable value (no NaN), stored compactly."""

    name = "json"

    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        try:
            data = json.dumps(sample, separators=(",", ":"), allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise HtypeError(f"tensor {tensor!r} (htype 'json') needs a JSON-serialisable sample: {e}") from None
        return PreparedSample(data, {"shape": [1]})

    def decode(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        return json.loads(data.decode("utf-8"))


register(GenericHtype())
register(ClassLabelHtype())
register(TextHtype())
register(JsonHtype())
