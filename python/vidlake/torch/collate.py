"""Collation of clip samples into batches: stacked where shapes agree, ragged where they do not.

    >>> batch = collate([ds_clip[0], ds_clip[1]], ragged="pad")
    >>> batch["videos"].shape, batch["boxes"].shape, batch["boxes_mask"].shape
    (torch.Size([2, 16, 224, 224, 3]), torch.Size([2, 16, 3, 4]), torch.Size([2, 16, 3]))

A sample is a dict. Values of a key are combined as follows:

* torch tensors or numeric numpy arrays of one shape -> one stacked tensor (in a DataLoader
  worker it is allocated in shared memory, so handing it to the main process copies nothing);
* numbers -> a 1-D tensor;
* per-frame lists (a tensor aligned to the video, cut to the clip: one item per frame, e.g.
  ``sequence[bbox]`` boxes of ``(k_t, 4)``): stacked to ``(B, T, ...)`` when every item of
  every sample has one shape; otherwise ``ragged="list"`` keeps a list (per sample) of lists
  (per frame) of tensors and ``ragged="pad"`` pads them with zeros to ``(B, T, K, ...)``
  (``K`` the most items of any frame) with a boolean ``<key>_mask`` ``(B, T, K)`` that is
  True for real items;
* anything else (text, json, arrays of different shapes) -> a list.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["RAGGED", "alloc_uint8", "collate"]

RAGGED = ("list", "pad")


def _in_worker() -> bool:
    return torch.utils.data.get_worker_info() is not None


def _alloc(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor; in a DataLoader worker it lives in shared memory from the start,
    so sending it to the main process moves a file descriptor, not the bytes."""
    if _in_worker():
        numel = int(np.prod(shape, dtype=np.int64))
        try:
            base = torch.empty(0, dtype=dtype)
            storage = base._typed_storage()._new_shared(numel, device=base.device)
            return base.new(storage).resize_(*shape)
        except (AttributeError, RuntimeError, TypeError):  # private API moved: plain memory
            pass
    return torch.empty(shape, dtype=dtype)


def alloc_uint8(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised uint8 tensor for frames (shared memory inside a DataLoader worker)."""
    return _alloc(tuple(int(s) for s in shape), torch.uint8)


def _as_tensor(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        return torch.from_numpy(np.ascontiguousarray(v))
    return v


def _numeric(v: Any) -> bool:
    return isinstance(v, torch.Tensor) or (isinstance(v, np.ndarray) and v.dtype.kind in "biuf")


def _stack(vals: Sequence[Any]) -> torch.Tensor:
    ts = [_as_tensor(v) for v in vals]
    out = _alloc((len(ts), *tuple(ts[0].shape)), ts[0].dtype)
    return torch.stack(ts, out=out)


def _framed(key: str, vals: list[list[Any]], ragged: str) -> dict[str, Any]:
    items = [it for v in vals for it in v]
    if items and all(_numeric(it) for it in items):
        shapes = {tuple(it.shape) for it in items}
        dtypes = {str(it.dtype) for it in items}
        if len(shapes) == 1 and len(dtypes) == 1 and len({len(v) for v in vals}) == 1:
            return {key: _stack([np.stack(v) if isinstance(v[0], np.ndarray) else torch.stack(v)
                                 for v in vals])}
        if ragged == "pad" and len(dtypes) == 1 and len({s[1:] for s in shapes}) == 1 \
                and all(len(s) >= 1 for s in shapes):
            b, t = len(vals), max(len(v) for v in vals)
            k = max(s[0] for s in shapes)
            tail = next(iter(shapes))[1:]
            first = _as_tensor(items[0])
            out = torch.zeros((b, t, k, *tail), dtype=first.dtype)
            mask = torch.zeros((b, t, k), dtype=torch.bool)
            for i, v in enumerate(vals):
                for j, it in enumerate(v):
                    n = int(it.shape[0])
                    out[i, j, :n] = _as_tensor(it)
                    mask[i, j, :n] = True
            return {key: out, f"{key}_mask": mask}
    return {key: [[_as_tensor(it) for it in v] for v in vals]}


def collate(samples: Sequence[dict[str, Any]], ragged: str = "list") -> dict[str, Any]:
    """Combine sample dicts into a batch dict (rules in the module doc). A batch dict (what
    ``ClipDataset.__getitems__`` returns) passes through unchanged, so this is the
    ``collate_fn`` for both datasets.

        >>> loader = torch.utils.data.DataLoader(vidlake.torch.ClipIterable(ds, clip=8), batch_size=4,
        ...                                      collate_fn=vidlake.torch.collate)
    """
    if ragged not in RAGGED:
        raise ValueError(f"ragged must be one of {RAGGED}, got {ragged!r}")
    if isinstance(samples, dict):  # already a batch (ClipDataset.__getitems__ in a DataLoader)
        return samples
    if not samples:
        return {}
    out: dict[str, Any] = {}
    for key in samples[0]:
        vals = [s[key] for s in samples]
        if all(isinstance(v, list) for v in vals):
            out.update(_framed(key, vals, ragged))
        elif all(_numeric(v) for v in vals) and len({(tuple(v.shape), str(v.dtype)) for v in vals}) == 1:
            out[key] = _stack(vals)
        elif all(isinstance(v, (bool, int, float, np.number)) and not isinstance(v, str) for v in vals):
            out[key] = torch.as_tensor(vals)
        else:
            out[key] = [_as_tensor(v) for v in vals]
    return out
