"""``DatasetItem`` and ``VideoScene``: scenes as labelling platforms (Scale Nucleus) name them.

    >>> import vidlake
    >>> items = [vidlake.DatasetItem(f"frames/{k:03d}.jpg", f"video-1-frame-{k}", {"k": k}) for k in range(3)]
    >>> scene = vidlake.VideoScene("video-1", items=items, frame_rate=30, metadata={"weather": "rain"})
    >>> scene.add_item(vidlake.DatasetItem("frames/003.jpg", "video-1-frame-3"), index=3)
    'added'
    >>> scene.add_item(vidlake.DatasetItem("frames/x.jpg", "video-1-frame-0"), index=0)   # collision
    'ignored'
    >>> video = vidlake.VideoScene("video-2", video_location="s3://bucket/001/00.mp4", metadata={"n": 4})

A scene is either a video file (``video_location``: a local path, ``s3://``, ``gs://``,
``http(s)://``) or an ordered list of frame images (``items``), never both. Reference ids are
what updates match on (``ds.append(scenes, update=True)``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import VidlakeError

__all__ = ["DatasetItem", "ItemRef", "SceneError", "VideoScene"]


class SceneError(VidlakeError, ValueError):
    """A scene or item that breaks the rules (both or neither of video_location and items,
    a bad reference id, metadata that is not JSON)."""


def _check_ref(ref: Any, what: str) -> str:
    if not isinstance(ref, str) or not ref:
        raise SceneError(f"{what}: reference_id must be a non-empty string, got {ref!r}")
    return ref


def _check_metadata(md: Any, what: str) -> dict[str, Any]:
    if md is None:
        return {}
    if not isinstance(md, dict):
        raise SceneError(f"{what}: metadata must be a dict, got {type(md).__name__}")
    try:
        json.dumps(md, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise SceneError(f"{what}: metadata must be JSON (str, numbers, bools, None, lists, dicts): {e}") from None
    return dict(md)


class ItemRef(NamedTuple):
    """Where an item found by ``ds.query_items`` is: its scene's reference id, its own reference
    id and its frame number in the scene (``ds.scene(ref.scene).frames[ref.frame]``).

        >>> ds.query_items(is_raining=True)
        [ItemRef(scene='video-1', item='video-1-frame-0', frame=0)]
    """

    scene: str
    item: str
    frame: int


@dataclass
class DatasetItem:
    """One frame image of a scene: where it is, its reference id and its metadata.

        >>> item = vidlake.DatasetItem("s3://bucket/001/00.jpeg", "video-1-frame-0", {"is_raining": True})
    """

    image_location: str
    reference_id: str
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.image_location, str) or not self.image_location:
            raise SceneError(f"DatasetItem {self.reference_id!r}: image_location must be a path or URL, "
                             f"got {self.image_location!r}")
        _check_ref(self.reference_id, "DatasetItem")
        self.metadata = _check_metadata(self.metadata, f"DatasetItem {self.reference_id!r}")

    def to_json(self) -> dict[str, Any]:
        return {"image_location": self.image_location, "reference_id": self.reference_id,
                "metadata": self.metadata or {}}


@dataclass
class VideoScene:
    """A scene: a video file or an ordered list of :class:`DatasetItem` frames (exactly one),
    with a reference id, a frame rate and metadata.

        >>> vidlake.VideoScene("video-1", video_location="s3://bucket/001/00.mp4", metadata={"scalar": 4})
        >>> vidlake.VideoScene("video-2", items=[item0, item1], frame_rate=30)

    No cap on frames per scene.
    """

    reference_id: str
    video_location: str | None = None
    items: list[DatasetItem] | None = None
    frame_rate: float | None = None
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _check_ref(self.reference_id, "VideoScene")
        what = f"VideoScene {self.reference_id!r}"
        if (self.video_location is None) == (self.items is None):
            raise SceneError(f"{what}: give exactly one of video_location (a video file) and items "
                             "(a list of DatasetItem frames)")
        if self.video_location is not None and (not isinstance(self.video_location, str) or not self.video_location):
            raise SceneError(f"{what}: video_location must be a path or URL, got {self.video_location!r}")
        if self.items is not None:
            self.items = list(self.items)
            for k, it in enumerate(self.items):
                if not isinstance(it, DatasetItem):
                    raise SceneError(f"{what}: items[{k}] is a {type(it).__name__}, not a vidlake.DatasetItem")
        if self.frame_rate is not None:
            if isinstance(self.frame_rate, bool) or not isinstance(self.frame_rate, (int, float)) \
                    or not self.frame_rate > 0:
                raise SceneError(f"{what}: frame_rate must be a positive number, got {self.frame_rate!r}")
            self.frame_rate = float(self.frame_rate)
        self.metadata = _check_metadata(self.metadata, what)

    @property
    def is_video(self) -> bool:
        """True for a scene made of a video file, False for one made of frame images."""
        return self.video_location is not None

    def add_item(self, item: DatasetItem, index: int, update: bool = False) -> str:
        """Add ``item`` at ``index`` (``len(items)`` appends). An existing index is overwritten
        only with ``update=True``, otherwise the collision is ignored. Returns what happened:
        ``"added"``, ``"updated"`` or ``"ignored"``.

            >>> scene.add_item(item4, index=4)                 # append at the end
            'added'
            >>> scene.add_item(item0_new, index=0, update=True)
            'updated'
        """
        what = f"VideoScene {self.reference_id!r}"
        if self.items is None:
            raise SceneError(f"{what} is a video scene (video_location); add_item is for scenes made of frame items")
        if not isinstance(item, DatasetItem):
            raise SceneError(f"{what}: add_item takes a vidlake.DatasetItem, got {type(item).__name__}")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= len(self.items):
            raise SceneError(f"{what}: index must be an int in 0..{len(self.items)} (the scene has "
                             f"{len(self.items)} item(s)), got {index!r}")
        if index == len(self.items):
            self.items.append(item)
            return "added"
        if not update:
            return "ignored"
        self.items[index] = item
        return "updated"

    def to_json(self) -> dict[str, Any]:
        """The scene as JSON (what an ingestion job's journal stores)."""
        return {"reference_id": self.reference_id, "video_location": self.video_location,
                "items": None if self.items is None else [it.to_json() for it in self.items],
                "frame_rate": self.frame_rate, "metadata": self.metadata or {}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VideoScene:
        items = d.get("items")
        return cls(d["reference_id"], video_location=d.get("video_location"),
                   items=None if items is None else [DatasetItem(i["image_location"], i["reference_id"],
                                                                 i.get("metadata")) for i in items],
                   frame_rate=d.get("frame_rate"), metadata=d.get("metadata"))
