"""PyTorch loading for vidlake datasets (``pip install vidlake[torch]``).

    >>> import vidlake, vidlake.torch
    >>> ds = vidlake.load("./video_ds", read_only=True)
    >>> loader = ds.pytorch(tensors=["videos", "labels"], clip=16, batch_size=8, shuffle=True,
    ...                     num_workers=2, size=(224, 224), seed=0)
    >>> batch = next(iter(loader))
    >>> batch["videos"].shape, batch["labels"].shape, batch["frame_indices"].shape
    (torch.Size([8, 16, 224, 224, 3]), torch.Size([8, 1]), torch.Size([8, 16]))

For your own loader: :class:`ClipDataset` (map-style; works with any sampler, including
``DistributedSampler``) and :class:`ClipIterable` (iterable, sharded by worker and by rank);
:func:`collate` combines sample dicts; :class:`ReaderCache` is the per-process reader cache.
"""
from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("vidlake.torch needs PyTorch: pip install 'vidlake[torch]' (or pip install torch)") from e

from .cache import DEFAULT_CACHE_BYTES, ReaderCache, state_bytes
from .collate import collate
from .data import ClipDataset, ClipIterable, ClipSpec
from .loader import EpochSampler, VidlakeDataLoader, make_loader

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "ClipDataset",
    "ClipIterable",
    "ClipSpec",
    "EpochSampler",
    "ReaderCache",
    "VidlakeDataLoader",
    "collate",
    "make_loader",
    "state_bytes",
]
