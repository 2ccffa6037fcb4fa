"""Datasets: tensors over a storage provider, their views, and the one write path.

* ``dataset.py``: :class:`Dataset` (opening, tensors, creds keys, housekeeping);
* ``tensor.py``: :class:`Tensor` and the per-sample access its views and htypes use;
* ``views.py``: sample, tensor and row views (``ds.videos[i, a:b]``, ``ds.filter``, ``ds[i, a:b]``);
* ``writer.py``: staging, savepoints, rollback, the cross-tensor rules and the commit protocol;
* ``upsert.py``: ``ds.upsert`` through the writer's methods.

    >>> ds = vidlake.empty("./video_ds", overwrite=True)
    >>> ds.create_tensor("videos", htype="video", sample_compression="mp4")
"""
from __future__ import annotations

from .dataset import Dataset, LinkAccess
from .tensor import Tensor
from .views import DatasetView, FrameRowView, RowsView, SampleView, SequenceSampleView, TensorView
from .writer import Writer

__all__ = [
    "Dataset",
    "DatasetView",
    "FrameRowView",
    "LinkAccess",
    "RowsView",
    "SampleView",
    "SequenceSampleView",
    "Tensor",
    "TensorView",
    "Writer",
]
