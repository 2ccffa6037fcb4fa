"""Image sequences -> one video sample: the ``encode=`` option of the MOT and LaSOT importers.

A sequence's JPEG frames are decoded one by one (libavcodec, never all in memory) and encoded
into one mp4 sample; the annotations stay aligned frame for frame (frame k of the video is image
k). Sizes measured by ``bench/encode.py --importers`` (README "Writing video").

    >>> ingest_mot(ds, ["MOT17/train/MOT17-02-FRCNN"], encode=True)   # frames: one h264 video
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..video import decode_image, image_header
from ..video.encode import Frames, check_settings, frames

__all__ = ["IMPORT_ENCODE", "encode_settings", "image_frames", "sequence_video"]

#: what ``encode=True`` means: h264, near-transparent quality for frames that were JPEGs
#: already, a keyframe every 10 frames and no B-frames (random frame reads decode <= 9 more)
IMPORT_ENCODE: dict[str, Any] = {"codec": "h264", "crf": 18, "gop": 10, "bframes": 0}


def encode_settings(encode: bool | Mapping[str, Any]) -> dict[str, Any]:
    """``encode=True`` -> :data:`IMPORT_ENCODE`; a dict: those settings (checked) over it."""
    s = dict(IMPORT_ENCODE)
    if isinstance(encode, Mapping):
        s.update(encode)
    check_settings(s, "encode")
    return s


def _rgb(path: str) -> np.ndarray:
    """An image file decoded to (H, W, 3) RGB (gray and RGBA images converted)."""
    with open(path, "rb") as f:
        data = f.read()
    _fmt, (h, w, _c) = image_header(data)
    return decode_image(data, np.empty((h, w, 3), np.uint8), path)


def image_frames(paths: Sequence[str]) -> Iterator[np.ndarray]:
    """Each image decoded to (H, W, 3) uint8 RGB, one at a time."""
    shape = None
    for p in paths:
        arr = _rgb(p)
        if shape is None:
            shape = arr.shape
        elif arr.shape != shape:
            raise DatasetError(f"{p}: {arr.shape[1]}x{arr.shape[0]} but the sequence's frames are "
                               f"{shape[1]}x{shape[0]}; a video needs one size")
        yield arr


def sequence_video(paths: Sequence[str], fps: float | None, settings: Mapping[str, Any]) -> Frames:
    """The frames of an image sequence as ``vidlake.frames`` for a video tensor (odd sizes get
    4:4:4, which needs no even width and height)."""
    if not paths:
        raise DatasetError("an image sequence without frames cannot become a video")
    s = dict(settings)
    h, w = _rgb(paths[0]).shape[:2]
    if (h % 2 or w % 2) and s.get("pix_fmt") in (None, "yuv420p"):
        s["pix_fmt"] = "yuv444p"
    s.setdefault("fps", fps or 30)
    return frames(image_frames(list(paths)), **s)
