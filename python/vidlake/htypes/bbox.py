"""The ``bbox`` htype: boxes with declared coordinates, and conversions between modes.

    >>> ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
    >>> ds.boxes.append(np.array([[912, 484, 97, 109]]))          # (num_boxes, 4)
    >>> convert_boxes(ds.boxes[0].numpy(), ds.boxes.meta["coords"], mode="LTRB")
    array([[ 912.,  484., 1009.,  593.]], dtype=float32)

Rules checked at append (each failure is a :class:`vidlake.HtypeError`, the dataset unchanged):

* ``bbox``: a numeric array whose last dimension is 4 (``(N, 4)`` usually; an empty list is
  ``(0, 4)``), stored as the tensor's dtype (default float32).
* ``class_label``: ints (``>= 0``) or names from the tensor's ``class_names``; an unknown name is
  refused (the list is fixed when the tensor is created, so ids never change meaning).
* every numeric htype casts to the tensor's dtype only when no value changes: floats may be
  narrowed (float64 -> float32), any other cast must give back every value exactly
  (``[1, 2]`` int64 -> uint32 is fine, ``-1`` -> uint32 or ``0.5`` -> int32 is refused).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import HtypeError
from . import register
from .base import Htype, PreparedSample, WriteContext, npy, safe_cast

__all__ = ["BBOX_MODES", "BBOX_TYPES", "DEFAULT_COORDS", "BBoxHtype", "check_coords", "convert_boxes", "prepare_bbox"]

BBOX_TYPES = ("pixel", "fractional")
BBOX_MODES = ("LTWH", "LTRB", "CCWH")
DEFAULT_COORDS = {"type": "pixel", "mode": "LTWH"}


def check_coords(coords: Mapping[str, Any] | None) -> dict[str, str]:
    """Validate a bbox ``coords`` dict, filling defaults (``{"type": "pixel", "mode": "LTWH"}``)."""
    if coords is None:
        return dict(DEFAULT_COORDS)
    if not isinstance(coords, Mapping):
        # ValueError like every other bad create_tensor parameter
        raise ValueError(f"coords must be a dict like {DEFAULT_COORDS}, got {coords!r}")  # noqa: TRY004
    extra = set(coords) - {"type", "mode"}
    if extra:
        raise ValueError(f"coords takes the keys 'type' and 'mode' only; got {sorted(extra)}")
    out = {**DEFAULT_COORDS, **dict(coords)}
    if out["type"] not in BBOX_TYPES:
        raise ValueError(f"coords type {out['type']!r} is not supported; accepted: {', '.join(BBOX_TYPES)}")
    if out["mode"] not in BBOX_MODES:
        raise ValueError(f"coords mode {out['mode']!r} is not supported; accepted: {', '.join(BBOX_MODES)}")
    return out


def convert_boxes(boxes: np.ndarray, coords: Mapping[str, Any], mode: str | None = None,
                  type: str | None = None, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Convert boxes (last dim 4) from ``coords`` to another ``mode`` and/or ``type``.

    ``image_size`` is ``(height, width)`` and is needed to change between pixel and fractional.

        >>> convert_boxes(np.array([[10, 20, 30, 40.]]), {"type": "pixel", "mode": "LTWH"},
        ...               mode="CCWH", type="fractional", image_size=(100, 200))
        array([[0.125, 0.4  , 0.15 , 0.4  ]])
    """
    src = check_coords(coords)
    dst_mode = mode or src["mode"]
    dst_type = type or src["type"]
    check_coords({"type": dst_type, "mode": dst_mode})
    b = np.asarray(boxes)
    if b.shape[-1:] != (4,):
        raise ValueError(f"boxes need a last dimension of 4, got shape {b.shape}")
    out_dtype = b.dtype if np.issubdtype(b.dtype, np.floating) else np.float64
    b = b.astype(np.float64)
    # to LTRB
    if src["mode"] == "LTWH":
        l, t, r, bt = b[..., 0], b[..., 1], b[..., 0] + b[..., 2], b[..., 1] + b[..., 3]
    elif src["mode"] == "CCWH":
        l, t = b[..., 0] - b[..., 2] / 2, b[..., 1] - b[..., 3] / 2
        r, bt = b[..., 0] + b[..., 2] / 2, b[..., 1] + b[..., 3] / 2
    else:
        l, t, r, bt = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if dst_type != src["type"]:
        if image_size is None:
            raise ValueError("image_size=(height, width) is needed to convert between pixel and fractional boxes")
        h, w = float(image_size[0]), float(image_size[1])
        sx, sy = (1 / w, 1 / h) if dst_type == "fractional" else (w, h)
        l, r, t, bt = l * sx, r * sx, t * sy, bt * sy
    if dst_mode == "LTWH":
        res = np.stack([l, t, r - l, bt - t], axis=-1)
    elif dst_mode == "CCWH":
        res = np.stack([(l + r) / 2, (t + bt) / 2, r - l, bt - t], axis=-1)
    else:
        res = np.stack([l, t, r, bt], axis=-1)
    return res.astype(out_dtype)


def prepare_bbox(sample: Any, tensor: str, meta: Mapping[str, Any]):
    """Validate one bbox sample (last dim 4) and store it as the tensor's dtype."""
    try:
        arr = np.asarray(sample)
    except Exception as e:  # noqa: BLE001 - numpy raises many types here
        raise HtypeError(f"tensor {tensor!r} (htype 'bbox') cannot store {type(sample).__name__}: {e}") from None
    if arr.size == 0 and arr.shape[-1:] != (4,):
        arr = arr.reshape(0, 4)
    if arr.ndim == 0 or arr.shape[-1] != 4:
        raise HtypeError(
            f"tensor {tensor!r} (htype 'bbox') needs boxes whose last dimension is 4 "
            f"({meta.get('coords', DEFAULT_COORDS)['mode']}), got shape {arr.shape}"
        )
    arr = safe_cast(arr, meta.get("dtype") or "float32", tensor)
    return PreparedSample(npy(arr), {"shape": list(arr.shape)})


class BBoxHtype(Htype):
    """``bbox``: boxes (last dimension 4) in the tensor's ``coords`` (type and mode)."""

    name = "bbox"
    sequence_item = True

    def params(self, dtype: Any, class_names: Sequence[str] | None,
               coords: Mapping[str, Any] | None) -> dict[str, Any]:
        out = super().params(dtype, class_names, None)
        out["coords"] = check_coords(coords)
        if out["dtype"] is None:
            out["dtype"] = "float32"
        return out

    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        return prepare_bbox(sample, tensor, meta)


register(BBoxHtype())
