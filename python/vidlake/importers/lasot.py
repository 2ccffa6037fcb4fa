"""LaSOT sequences -> one row per sequence, boxes aligned to the video's frames.

A LaSOT sequence folder (``<class>/<class>-<n>/``) holds ``groundtruth.txt`` (one ``x,y,w,h``
line per frame, pixels, top-left origin, as LaSOT writes them), optionally
``full_occlusion.txt`` and ``out_of_view.txt`` (one comma-separated 0/1 flag per frame),
``absent.txt`` (the evaluation toolkit's one flag per line), ``nlp.txt`` and ``attributes.txt``,
and its frames as ``img/00000001.jpg ...``, or a video file beside it.

Tensors of the row (created when missing):

| tensor | htype | per frame |
|---|---|---|
| ``videos`` (a video file, or ``img/`` with ``encode=True``) or ``frames`` (``img/``) | ``video`` / ``sequence[image]`` | |
| ``boxes`` | ``sequence[bbox]`` pixel LTWH, aligned | ``(1, 4)``: a sample is ``(frames, 1, 4)`` |
| ``full_occlusion``, ``out_of_view``, ``absent`` | ``sequence[]`` bool, aligned | ``()``; all False when the file is missing |
| ``metadata`` | ``json`` | ``{"name", "nlp", "attributes"}`` |
| ``reference_id`` | ``text`` | the sequence name (upsert key) |
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DatasetError
from ..video.encode import Frames
from .frames_video import encode_settings, sequence_video

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    from ..dataset import Dataset

__all__ = ["FLAG_FILES", "ingest_lasot", "read_lasot"]

FLAG_FILES = ("full_occlusion", "out_of_view", "absent")
_VIDEO_EXTS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")


def _numbers(path: str) -> list[list[float]]:
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f.read().splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append([float(x) for x in line.replace("\t", ",").split(",") if x.strip()])
            except ValueError:
                raise DatasetError(f"{path}:{lineno}: not a number in {line!r}") from None
    return out


def read_lasot(folder: str) -> dict[str, Any]:
    """The annotations of one LaSOT sequence folder: ``boxes`` ``(n, 4)`` float32 and, where
    their files exist, ``full_occlusion`` / ``out_of_view`` / ``absent`` ``(n,)`` bool,
    ``nlp`` (str), ``attributes`` (list of ints)."""
    gt = os.path.join(folder, "groundtruth.txt")
    if not os.path.exists(gt):
        raise DatasetError(f"{folder}: no groundtruth.txt (not a LaSOT sequence folder)")
    rows = _numbers(gt)
    bad = [i for i, r in enumerate(rows, 1) if len(r) != 4]
    if bad:
        raise DatasetError(f"{gt}:{bad[0]}: expected x,y,w,h (4 numbers)")
    out: dict[str, Any] = {"boxes": np.asarray(rows, np.float32).reshape(-1, 4)}
    n = len(rows)
    for name in FLAG_FILES:
        p = os.path.join(folder, f"{name}.txt")
        if os.path.exists(p):
            flags = [v for r in _numbers(p) for v in r]
            if len(flags) != n:
                raise DatasetError(f"{p}: {len(flags)} flags for {n} frames in groundtruth.txt")
            out[name] = np.asarray(flags) != 0
    p = os.path.join(folder, "nlp.txt")
    if os.path.exists(p):
        with open(p, encoding="utf-8") as f:
            out["nlp"] = f.read().strip()
    p = os.path.join(folder, "attributes.txt")
    if os.path.exists(p):
        out["attributes"] = [int(v) for r in _numbers(p) for v in r]
    return out


def _find_video(folder: str) -> str | None:
    name = os.path.basename(os.path.normpath(folder))
    cands = sorted(f for f in os.listdir(folder) if f.lower().endswith(_VIDEO_EXTS))
    for f in cands:
        if os.path.splitext(f)[0] == name:
            return os.path.join(folder, f)
    if len(cands) == 1:
        return os.path.join(folder, cands[0])
    if len(cands) > 1:
        raise DatasetError(f"{folder}: several videos {cands}; pass video= to choose")
    return None


def lasot_row(folder: str, video: str | None = None, encode: Any = False) -> tuple[dict[str, Any], str]:
    """(row, frame tensor name) for one LaSOT sequence; frames from ``video``, a video beside
    the annotations, or ``img/`` (``encode``: the images encoded into one ``videos`` sample)."""
    from ..sources import read

    ann = read_lasot(folder)
    n = len(ann["boxes"])
    name = os.path.basename(os.path.normpath(folder))
    row: dict[str, Any] = {
        "boxes": [b[None] for b in ann["boxes"]],
        "metadata": {"name": name, "nlp": ann.get("nlp"), "attributes": ann.get("attributes"),
                     "source": os.path.abspath(folder)},
        "reference_id": name,
    }
    for flag in FLAG_FILES:
        row[flag] = list(ann.get(flag, np.zeros(n, bool)))
    video = video or _find_video(folder)
    if video is not None:
        row["videos"] = read(video)
        return row, "videos"
    img = os.path.join(folder, "img")
    if not os.path.isdir(img):
        raise DatasetError(f"{folder}: no video file and no img/ folder of frames; pass video=")
    files = sorted(f for f in os.listdir(img) if f.lower().endswith((".jpg", ".jpeg")))
    if len(files) != n:
        raise DatasetError(f"{img}: {len(files)} frames but groundtruth.txt has {n} lines")
    paths = [os.path.join(img, f) for f in files]
    if encode:
        row["videos"] = sequence_video(paths, 30.0, encode_settings(encode))  # LaSOT is 30 fps
        return row, "videos"
    row["frames"] = [read(p) for p in paths]
    return row, "frames"


def ingest_lasot(ds: Dataset, folders: Iterable[str], video: str | None = None,
                 progress: Any = None, encode: Any = False) -> list[int]:
    """Import LaSOT sequence folders into ``ds`` (one row each, upserted by ``reference_id``).
    ``video`` names the video of a single folder when it is not beside the annotations.
    ``encode=True`` (or a dict of settings) encodes an ``img/`` folder into one video sample.

        >>> ingest_lasot(vidlake.empty("./lasot_ds"), ["LaSOT/dog/dog-2"], video="dog-2.mp4")
    """
    folders = list(folders)
    if video is not None and len(folders) != 1:
        raise DatasetError("video= names the video of one sequence; pass one folder with it")
    out: list[int] = []
    with ds:  # tensors and rows in one transaction: a failed run leaves no empty tensors behind
        try:
            for folder in folders:
                row, frames = lasot_row(folder, video, encode)
                if ("frames" if frames == "videos" else "videos") in ds.tensors:
                    raise DatasetError(f"{ds.path}: mixes video and image-frame LaSOT sequences; use one kind per dataset")
                if frames == "videos":
                    src = row["videos"]
                    ext = "mp4" if isinstance(src, Frames) else os.path.splitext(src.path)[1].lstrip(".").lower()
                    ds.create_tensor("videos", htype="video", sample_compression=ext, exist_ok=True)
                else:
                    ds.create_tensor("frames", htype="sequence[image]", sample_compression="jpg", exist_ok=True)
                ds.create_tensor("boxes", htype="sequence[bbox]", coords={"type": "pixel", "mode": "LTWH"},
                                 aligned_to=frames, exist_ok=True)
                for flag in FLAG_FILES:
                    ds.create_tensor(flag, htype="sequence[]", dtype="bool", aligned_to=frames, exist_ok=True)
                ds.create_tensor("metadata", htype="json", exist_ok=True)
                ds.create_tensor("reference_id", htype="text", exist_ok=True)
                out += ds.upsert(row, key="reference_id")
                if progress is not None:
                    progress(folder)
        except BaseException:
            ds.rollback()
            raise
    return out
