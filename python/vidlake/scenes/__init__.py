"""Scenes: videos or lists of frame images with reference ids and metadata (Scale Nucleus's
``VideoScene`` / ``DatasetItem``), stored in a vidlake dataset and uploaded in jobs.

    >>> import vidlake
    >>> ds = vidlake.scene_dataset("./scenes_ds")
    >>> job = ds.append([vidlake.VideoScene("video-1", video_location="a.mp4")], asynchronous=True)
    >>> job.sleep_until_complete(); ds.scene("video-1").frames[0:4].numpy().shape
"""
from __future__ import annotations

from .dataset import ImageFrames, Scene, SceneDataset, scene_dataset
from .index import ItemIndex, MetadataIndex
from .items import DatasetItem, ItemRef, SceneError, VideoScene

__all__ = ["DatasetItem", "ImageFrames", "ItemIndex", "ItemRef", "MetadataIndex", "Scene", "SceneDataset", "SceneError", "VideoScene",
           "scene_dataset"]
