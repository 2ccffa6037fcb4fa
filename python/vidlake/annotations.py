"""Annotation htypes: ``bbox`` coordinates, ``class_label`` names, safe dtype casts.

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

from .errors import HtypeError

__all__ = [
    "BBOX_MODES",
    "BBOX_TYPES",
    "DEFAULT_COORDS",
    "check_coords",
    "class_ids",
    "convert_boxes",
    "prepare_bbox",
    "safe_cast",
]

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


def safe_cast(arr: np.ndarray, dtype: Any, tensor: str) -> np.ndarray:
    """``arr`` as ``dtype`` when no value changes (floats may be narrowed); else HtypeError."""
    dst = np.dtype(dtype)
    a = np.asarray(arr)
    if a.dtype == dst:
        return a
    if a.dtype.kind not in "biuf" or dst.kind not in "biufc":
        raise HtypeError(f"tensor {tensor!r} (dtype {dst}) cannot store {a.dtype} values")
    with np.errstate(all="ignore"):
        out = a.astype(dst)
        if dst.kind in "fc":
            lost = np.isfinite(a) & ~np.isfinite(out) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
            if lost.any():
                raise HtypeError(f"tensor {tensor!r} (dtype {dst}): value {a[lost].flat[0].item()!r} does not fit")
            return out
        back = out.astype(a.dtype)
    bad = ~(back == a)
    if bad.any():
        raise HtypeError(
            f"tensor {tensor!r} (dtype {dst}) cannot store {a.dtype} value {a[bad].flat[0].item()!r} exactly; "
            f"cast the data yourself or create the tensor with another dtype"
        )
    return out


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


def prepare_bbox(sample: Any, tensor: str, meta: Mapping[str, Any]):
    """Validate one bbox sample (last dim 4) and store it as the tensor's dtype."""
    from .htypes import PreparedSample, _npy

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
    return PreparedSample(_npy(arr), {"shape": list(arr.shape)})


def htype_params(htype: str, dtype: Any = None, class_names: Sequence[str] | None = None,
                 coords: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Tensor-meta fields of ``create_tensor``'s htype parameters, validated: the dtype (default
    float32 for bbox, uint32 for class labels, uint8 for images), ``class_names``, ``coords``.
    ``sequence[X]`` takes X's parameters."""
    base = (htype[len("sequence["):-1] or "generic") if htype.startswith("sequence[") else htype
    out: dict[str, Any] = {}
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype {dtype!r} is not a numpy dtype") from None
        if dt.kind not in "biufc":
            raise ValueError(f"dtype {dtype!r} is not numeric")
        if base in ("generic", "bbox"):
            out["dtype"] = str(dt)
        elif base in ("class_label", "image") and dt != (np.uint32 if base == "class_label" else np.uint8):
            raise ValueError(f"htype {htype!r} has dtype {'uint32' if base == 'class_label' else 'uint8'}")
    if base == "class_label":
        names = [str(n) for n in class_names or []]
        if len(set(names)) != len(names):
            raise ValueError(f"class_names has duplicates: {names}")
        out["class_names"] = names
        out["dtype"] = "uint32"
    elif class_names:
        raise ValueError("class_names is only for htype='class_label' or 'sequence[class_label]'")
    if base == "bbox":
        out["coords"] = check_coords(coords)
        out.setdefault("dtype", "float32")
    elif coords is not None:
        raise ValueError("coords is only for htype='bbox' or 'sequence[bbox]'")
    if base == "image":
        out["dtype"] = "uint8"
    return out
