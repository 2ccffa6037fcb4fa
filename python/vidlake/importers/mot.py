"""MOTChallenge (MOT15/16/17/20) sequences -> one row per sequence.

A sequence folder holds ``seqinfo.ini`` (optional for MOT15), ``img1/000001.jpg ...`` and
``gt/gt.txt``, whose lines are

* MOT16/17/20, 9 columns: ``frame, id, left, top, width, height, consider, class, visibility``
* MOT15 / py-motmetrics, 10 columns: ``frame, id, left, top, width, height, conf, x, y, z``

(frames 1-based; boxes in pixels, possibly fractional or negative; LF or CRLF line ends).

Tensors of the row (created when missing; boxes and the per-box tensors are aligned to frames):

| tensor | htype | per frame |
|---|---|---|
| ``frames`` | ``sequence[image]`` (jpg) | the frame image |
| ``boxes`` | ``sequence[bbox]``, pixel LTWH, float32 | ``(k, 4)`` |
| ``ids`` | ``sequence[]`` uint32 | ``(k,)`` track ids |
| ``confidences`` | ``sequence[]`` float32 | ``(k,)`` column 7 (``consider`` flag in MOT16/17 gt, ``conf`` in MOT15) |
| ``classes`` | ``sequence[class_label]`` | ``(k,)`` MOT class (id = MOT class number; 0 ``unknown`` for 10-column files) |
| ``visibility`` | ``sequence[]`` float32 | ``(k,)`` (-1 for 10-column files) |
| ``metadata`` | ``json`` | the seqinfo values plus ``columns`` (9 or 10) |
| ``reference_id`` | ``text`` | the sequence name (upsert key) |

By default frames are stored as the jpg files they are. ``encode=True`` (or a dict of
``vidlake.encode`` settings; ``vidlake ingest --format mot --encode-frames``) encodes each
sequence's frames into one video sample instead: ``frames`` is then a ``video`` tensor (mp4,
``importers/frames_video.py``) and the annotations stay aligned frame for frame.
"""
from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DatasetError
from .frames_video import encode_settings, sequence_video

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    from ..dataset import Dataset

__all__ = ["MOT_CLASS_NAMES", "MotTable", "find_sequences", "ingest_mot", "read_mot_txt", "read_seqinfo"]

#: class_names of the ``classes`` tensor: index = MOT16/17/20 class number (0 = not given)
MOT_CLASS_NAMES = ["unknown", "pedestrian", "person_on_vehicle", "car", "bicycle", "motorbike",
                   "non_motorized_vehicle", "static_person", "distractor", "occluder",
                   "occluder_on_ground", "occluder_full", "reflection", "crowd"]

_INT_KEYS = ("frameRate", "seqLength", "imWidth", "imHeight")


def read_seqinfo(path: str) -> dict[str, Any]:
    """``seqinfo.ini`` -> dict (``frameRate``, ``seqLength``, ``imWidth``, ``imHeight`` as ints)."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # keep the camelCase keys
    with open(path, encoding="utf-8") as f:
        cp.read_file(f)
    if "Sequence" not in cp:
        raise DatasetError(f"{path}: no [Sequence] section")
    out: dict[str, Any] = dict(cp["Sequence"])
    for k in _INT_KEYS:
        if k in out:
            try:
                out[k] = int(out[k])
            except ValueError:
                raise DatasetError(f"{path}: {k}={out[k]!r} is not an integer") from None
    return out


@dataclass
class MotTable:
    """The rows of a MOT text file (one per box), column by column."""

    frame: np.ndarray       # int64, 1-based
    id: np.ndarray          # int64
    boxes: np.ndarray       # (k, 4) float32 LTWH pixels
    conf: np.ndarray        # float32: column 7
    cls: np.ndarray         # int64: column 8 of 9-column files, else 0
    visibility: np.ndarray  # float32: column 9 of 9-column files, else -1
    columns: int            # 9 or 10


def read_mot_txt(path: str) -> MotTable:
    """Parse a MOT ``gt.txt`` / result file (9 or 10 comma-separated columns, LF or CRLF)."""
    rows: list[list[float]] = []
    ncol = None
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f.read().splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) not in (9, 10):
                raise DatasetError(f"{path}:{lineno}: expected 9 or 10 columns, got {len(parts)}: {line!r}")
            if ncol is None:
                ncol = len(parts)
            elif len(parts) != ncol:
                raise DatasetError(f"{path}:{lineno}: {len(parts)} columns, but earlier lines have {ncol}")
            try:
                rows.append([float(p) for p in parts])
            except ValueError:
                raise DatasetError(f"{path}:{lineno}: not a number in {line!r}") from None
    a = np.asarray(rows, dtype=np.float64).reshape(-1, ncol or 10)
    frame = a[:, 0].astype(np.int64)
    if len(frame) and frame.min() < 1:
        raise DatasetError(f"{path}: frame numbers start at 1, found {frame.min()}")
    nine = ncol == 9
    return MotTable(
        frame=frame,
        id=a[:, 1].astype(np.int64),
        boxes=a[:, 2:6].astype(np.float32),
        conf=a[:, 6].astype(np.float32),
        cls=a[:, 7].astype(np.int64) if nine else np.zeros(len(a), np.int64),
        visibility=a[:, 8].astype(np.float32) if nine else np.full(len(a), -1, np.float32),
        columns=ncol or 10,
    )


def find_sequences(inputs: Iterable[str]) -> list[str]:
    """Sequence folders named by ``inputs``: a folder with ``gt/``, ``img1/`` or ``seqinfo.ini``,
    or a folder of such folders (e.g. ``MOT17/train``)."""
    out: list[str] = []
    for p in inputs:
        if not os.path.isdir(p):
            raise DatasetError(f"{p}: not a folder")
        if _is_sequence(p):
            out.append(p)
        else:
            subs = sorted(os.path.join(p, d) for d in os.listdir(p) if _is_sequence(os.path.join(p, d)))
            if not subs:
                raise DatasetError(f"{p}: not a MOT sequence folder (no gt/, img1/ or seqinfo.ini) "
                                   "and holds none")
            out.extend(subs)
    return out


def _is_sequence(p: str) -> bool:
    return os.path.isdir(p) and any(os.path.exists(os.path.join(p, x)) for x in ("gt", "img1", "seqinfo.ini"))


def _ensure_tensors(ds: Dataset, encode: Any = False) -> None:
    want = "video" if encode else "sequence[image]"
    if "frames" in ds.tensors and ds.tensors["frames"].htype != want:
        raise DatasetError(f"{ds.path}: its frames tensor is {ds.tensors['frames'].htype!r}; import "
                           f"{'with' if ds.tensors['frames'].htype == 'video' else 'without'} encode= into it")
    if encode:
        ds.create_tensor("frames", htype="video", sample_compression="mp4", exist_ok=True)
    else:
        ds.create_tensor("frames", htype="sequence[image]", sample_compression="jpg", exist_ok=True)
    specs = [
        ("boxes", {"htype": "sequence[bbox]", "coords": {"type": "pixel", "mode": "LTWH"}}),
        ("ids", {"htype": "sequence[]", "dtype": "uint32"}),
        ("confidences", {"htype": "sequence[]", "dtype": "float32"}),
        ("classes", {"htype": "sequence[class_label]", "class_names": MOT_CLASS_NAMES}),
        ("visibility", {"htype": "sequence[]", "dtype": "float32"}),
    ]
    for name, kw in specs:
        ds.create_tensor(name, aligned_to="frames", exist_ok=True, **kw)  # type: ignore[arg-type]
    ds.create_tensor("metadata", htype="json", exist_ok=True)
    ds.create_tensor("reference_id", htype="text", exist_ok=True)


def mot_row(folder: str, gt: str | None = None, encode: Any = False) -> dict[str, Any]:
    """One dataset row for a MOT sequence folder (frames as lazy ``vidlake.read`` samples, or
    with ``encode`` as ``vidlake.frames`` to encode into one video)."""
    from ..sources import read
    from ..video import image_header

    info_path = os.path.join(folder, "seqinfo.ini")
    info = read_seqinfo(info_path) if os.path.exists(info_path) else {}
    name = str(info.get("name") or os.path.basename(os.path.normpath(folder)))
    im_dir = os.path.join(folder, str(info.get("imDir", "img1")))
    ext = str(info.get("imExt", ".jpg")).lower()
    images = sorted(f for f in os.listdir(im_dir) if f.lower().endswith(ext)) if os.path.isdir(im_dir) else []
    n = int(info.get("seqLength") or len(images))
    if len(images) != n:
        raise DatasetError(f"{folder}: seqinfo.ini says {n} frames but {im_dir} holds {len(images)} {ext} file(s)")
    want = [f"{k:06d}{ext}" for k in range(1, n + 1)]
    if images != want:
        bad = next(a for a, b in zip(images, want) if a != b)
        raise DatasetError(f"{im_dir}: frames must be named 000001{ext} .. {n:06d}{ext}; found {bad!r}")
    if n and "imWidth" in info and "imHeight" in info:
        with open(os.path.join(im_dir, images[0]), "rb") as f:
            _fmt, (h, w, _c) = image_header(f.read())
        if (w, h) != (info["imWidth"], info["imHeight"]):
            raise DatasetError(f"{folder}: frames are {w}x{h} but seqinfo.ini says "
                               f"{info['imWidth']}x{info['imHeight']}")
    gt_path = gt or os.path.join(folder, "gt", "gt.txt")
    table = read_mot_txt(gt_path) if os.path.exists(gt_path) else None
    boxes, ids, conf, cls, vis = [], [], [], [], []
    if table is not None and len(table.frame) and table.frame.max() > n:
        raise DatasetError(f"{gt_path}: boxes for frame {table.frame.max()} but the sequence has {n} frames")
    if table is not None:
        order = np.argsort(table.frame, kind="stable")
        bounds = np.searchsorted(table.frame[order], np.arange(1, n + 2))
    for k in range(n):
        sel = order[bounds[k]:bounds[k + 1]] if table is not None else np.zeros(0, np.int64)
        if table is None:
            boxes.append(np.zeros((0, 4), np.float32))
            ids.append(np.zeros(0, np.uint32))
            conf.append(np.zeros(0, np.float32))
            cls.append(np.zeros(0, np.uint32))
            vis.append(np.zeros(0, np.float32))
            continue
        boxes.append(table.boxes[sel])
        ids.append(table.id[sel])
        conf.append(table.conf[sel])
        c = table.cls[sel]
        cls.append(np.where((c >= 0) & (c < len(MOT_CLASS_NAMES)), c, 0))
        vis.append(table.visibility[sel])
    meta = dict(info)
    meta.update(name=name, columns=table.columns if table is not None else None, source=os.path.abspath(folder))
    paths = [os.path.join(im_dir, f) for f in images]
    fps = float(info["frameRate"]) if info.get("frameRate") else None
    return {
        "frames": sequence_video(paths, fps, encode_settings(encode)) if encode else [read(p) for p in paths],
        "boxes": boxes, "ids": ids, "confidences": conf, "classes": cls, "visibility": vis,
        "metadata": meta, "reference_id": name,
    }


def ingest_mot(ds: Dataset, inputs: Iterable[str], progress: Any = None, encode: Any = False) -> list[int]:
    """Import MOT sequence folders (or folders of them) into ``ds``, one row per sequence,
    upserted by ``reference_id`` = sequence name. Returns the row of each sequence.
    ``encode=True`` (or a dict of settings) stores each sequence's frames as one video.

        >>> ingest_mot(vidlake.empty("./mot_ds"), ["MOT17/train"])
    """
    seqs = find_sequences(list(inputs))
    rows = []
    with ds:  # tensors and rows in one transaction: a failed run leaves no empty tensors behind
        try:
            _ensure_tensors(ds, encode)
            for folder in seqs:
                rows += ds.upsert(mot_row(folder, encode=encode), key="reference_id")
                if progress is not None:
                    progress(folder)
        except BaseException:
            ds.rollback()
            raise
    return rows
