"""Writing selected frames as images: :func:`export_frames`, to a folder or an ``s3://`` prefix.

    >>> import vidlake
    >>> sel = vidlake.select("videos/", n_samples=50)
    >>> res = vidlake.export_frames(sel, "s3://bucket/lightly/frames/", format="png", resize=512,
    ...                             creds=creds)
    >>> res.written, res.skipped, res.failed
    (50, 0, [])

File names tell the video, the frame number and the timestamp:
``<video>_f<frame, 6 digits>_t<seconds, 3 decimals>s.<ext>`` (``clip_f000412_t16.480s.png``);
a video name shared by two videos gets a short hash of its URL. ``manifest.jsonl`` beside them
has one JSON object per frame: ``reference_id`` (the file name without extension), ``file``,
``video_reference_id`` (the video's URL, or ``<dataset>#<tensor>[<sample>]``), ``source``,
``video``, ``sample`` (dataset sources), ``frame``, ``timestamp``, ``score``, ``width``,
``height``, ``format``: labels that come back under a reference id join to the dataset.

Pixels are exact: a PNG decodes to vidlake's frame (``VideoReader.get_frames``), a resized one to
``get_frames(..., size=(h, w))`` (swscale's bilinear resize in the conversion pass). jpg/webp are
lossy (``quality``, default 95).

Idempotent and resumable: files already at the destination are skipped (``overwrite=True``
writes them again). Nothing partial ever has a final name: local files are written to a
temporary name and renamed; an S3 PUT is atomic. A failed write is retried (``retries``, with
back-off), then reported in ``failed`` (the manifest lists only frames that are there).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import StorageError
from ..storage import get_provider, url_scheme
from ..storage.creds import redact
from .selection import _bar

if TYPE_CHECKING:
    from .selection import Selection

__all__ = ["EXPORT_FORMATS", "ExportResult", "export_frames", "frame_file_names", "resized_size"]

EXPORT_FORMATS = ("png", "jpg", "jpeg", "webp")
MANIFEST = "manifest.jsonl"


@dataclass
class ExportResult:
    """What :func:`export_frames` did: ``written`` and ``skipped`` (already there) counts,
    ``failed`` ``(file, error)`` pairs, ``files`` (all names, in selection order) and the
    ``manifest`` location."""

    dest: str
    written: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    manifest: str = ""


def resized_size(width: int, height: int, resize: Any) -> tuple[int, int] | None:
    """The (w, h) of a frame of ``width`` x ``height`` under ``resize``: ``None`` (as is),
    ``(w, h)`` (exact; ``-1`` for one side keeps the aspect ratio), an int (the longest side) or
    a float (a scale). ``None`` when no resize is needed.

        >>> resized_size(1920, 1080, 960), resized_size(1920, 1080, 0.25), resized_size(640, 360, (320, -1))
        ((960, 540), (480, 270), (320, 180))
    """
    if resize is None:
        return None
    if isinstance(resize, bool):
        raise TypeError(f"resize must be (w, h), an int (longest side) or a float (scale), got {resize!r}")
    if isinstance(resize, (tuple, list)):
        if len(resize) != 2:
            raise ValueError(f"resize (w, h) needs two values, got {resize!r}")
        w, h = int(resize[0]), int(resize[1])
        if w <= 0 and h <= 0:
            raise ValueError(f"resize needs at least one positive side, got {resize!r}")
        if w <= 0:
            w = max(1, round(width * h / height))
        if h <= 0:
            h = max(1, round(height * w / width))
    elif isinstance(resize, (int, np.integer)):
        if resize <= 0:
            raise ValueError(f"resize (longest side) must be positive, got {resize!r}")
        s = float(resize) / max(width, height)
        w, h = max(1, round(width * s)), max(1, round(height * s))
    elif isinstance(resize, (float, np.floating)):
        if not resize > 0:
            raise ValueError(f"resize (scale) must be positive, got {resize!r}")
        w, h = max(1, round(width * float(resize))), max(1, round(height * float(resize)))
    else:
        raise TypeError(f"resize must be (w, h), an int (longest side) or a float (scale), got {resize!r}")
    return None if (w, h) == (width, height) else (w, h)


def frame_file_names(sel: Selection, ext: str = "png") -> list[str]:
    """The file name of each selected frame (selection order)."""
    labels = {v: sel.videos.label(v) for v in set(sel.video.tolist())}
    counts: dict[str, int] = {}
    for lab in labels.values():
        counts[lab] = counts.get(lab, 0) + 1
    for v, lab in list(labels.items()):
        if counts[lab] > 1:
            labels[v] = f"{lab}~{hashlib.sha1(sel.videos.urls[v].encode()).hexdigest()[:8]}"
    return [f"{labels[v]}_f{f:06d}_t{t:.3f}s.{ext}"
            for v, f, t in zip(sel.video.tolist(), sel.frame.tolist(), sel.timestamp.tolist())]


def _encode(frame: np.ndarray, fmt: str, quality: int) -> bytes:
    from PIL import Image

    im = Image.fromarray(frame)
    buf = io.BytesIO()
    if fmt == "png":
        im.save(buf, "PNG", compress_level=6)
    elif fmt in ("jpg", "jpeg"):
        im.save(buf, "JPEG", quality=quality)
    else:
        im.save(buf, "WEBP", quality=quality)
    return buf.getvalue()


class _LocalDest:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def existing(self) -> set[str]:
        return {f for f in os.listdir(self.root) if not f.startswith(".")}

    def put(self, name: str, data: bytes) -> None:
        final = os.path.join(self.root, name)
        tmp = os.path.join(self.root, f".{name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)  # atomic: the final name never holds a partial file
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def get(self, name: str) -> bytes:
        with open(os.path.join(self.root, name), "rb") as f:
            return f.read()

    def url(self, name: str) -> str:
        return os.path.join(self.root, name)


class _ProviderDest:
    def __init__(self, root: str, creds: dict[str, Any] | None) -> None:
        self.root = root.rstrip("/")
        self.provider = get_provider(self.root, creds=creds)

    def existing(self) -> set[str]:
        return {k for k in self.provider.list("") if "/" not in k}

    def put(self, name: str, data: bytes) -> None:
        self.provider.put(name, data)  # one PUT: the object appears whole or not at all

    def get(self, name: str) -> bytes:
        return self.provider.get(name)

    def url(self, name: str) -> str:
        return f"{self.root}/{name}"


def export_frames(
    selection: Selection,
    dest: str | os.PathLike[str],
    format: str = "png",
    *,
    quality: int = 95,
    resize: Any = None,
    creds: dict[str, Any] | None = None,
    overwrite: bool = False,
    retries: int = 3,
    rotate: bool = False,
    progress: bool = True,
) -> ExportResult:
    """Write the frames of ``selection`` as images under ``dest`` (a folder or an ``s3://``
    prefix; ``creds`` as for datasets), plus ``manifest.jsonl``.

    ``format``: png (default, lossless), jpg / jpeg or webp (``quality`` 1-100). ``resize``:
    ``(w, h)``, an int (longest side) or a float (scale); the aspect ratio is kept unless both
    sides are given. ``rotate=True`` turns frames upright by the display matrix first.

        >>> res = vidlake.export_frames(sel, "out/", format="jpg", quality=90, resize=(640, -1))
        >>> res.files[0]
        'clip_f000412_t16.480s.jpg'
    """
    fmt = str(format).lower()
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, EXPORT_FORMATS))}, got {format!r}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be 1..100, got {quality!r}")
    root = os.fspath(dest) if isinstance(dest, os.PathLike) else str(dest)
    scheme = url_scheme(root)
    target: _LocalDest | _ProviderDest
    if scheme in ("", "file"):
        target = _LocalDest(root[len("file://"):] if scheme == "file" else root)
    else:
        target = _ProviderDest(root, creds)
    names = frame_file_names(selection, fmt)
    have = set() if overwrite else target.existing()
    res = ExportResult(redact(root), files=names)
    records: dict[int, dict[str, Any]] = {}
    recs = selection.records()
    previous = {} if overwrite else _old_manifest(target)
    bar = _progress(len(names), progress)
    try:
        for v in dict.fromkeys(selection.video.tolist()):
            rows = [int(r) for r in np.flatnonzero(selection.video == v)]
            # frame order: the reader decodes on from batch to batch instead of seeking back
            todo = sorted((r for r in rows if names[r] not in have), key=lambda r: int(selection.frame[r]))
            known = [r for r in rows if names[r] in have and names[r] in previous]
            for r in known:  # resumed: nothing to decode, the old manifest line stays
                res.skipped += 1
                records[r] = previous[names[r]]
                bar.update(1)
            known_set = set(known)
            rest = [r for r in rows if r not in known_set]
            if not rest:
                continue
            reader = selection.videos.open(v)
            m = reader.metadata
            sideways = rotate and round(float(m.get("rotation") or 0)) % 180 != 0
            w0, h0 = (int(m["height"]), int(m["width"])) if sideways else (int(m["width"]), int(m["height"]))
            size = resized_size(w0, h0, resize)
            out_w, out_h = size if size else (w0, h0)
            for r in rest:
                if names[r] in have:
                    res.skipped += 1
                    records[r] = _record(recs[r], names[r], out_w, out_h, fmt, selection)
                    bar.update(1)
            for start in range(0, len(todo), 16):
                part = todo[start:start + 16]
                frames = reader.get_frames(selection.frame[part], rotate=rotate,
                                           size=None if size is None else (size[1], size[0]))
                for r, fr in zip(part, frames):
                    err = _put_retry(target, names[r], _encode(fr, fmt, int(quality)), retries)
                    if err is None:
                        res.written += 1
                        records[r] = _record(recs[r], names[r], out_w, out_h, fmt, selection)
                    else:
                        res.failed.append((names[r], err))
                    bar.update(1)
    finally:
        bar.close()
    manifest = "".join(json.dumps(records[r], sort_keys=True) + "\n" for r in sorted(records))
    err = _put_retry(target, MANIFEST, manifest.encode(), retries)
    if err is not None:
        res.failed.append((MANIFEST, err))
    res.manifest = redact(target.url(MANIFEST))
    return res


def _old_manifest(target: _LocalDest | _ProviderDest) -> dict[str, dict[str, Any]]:
    """The records of an earlier run's manifest, by file name (empty when there is none)."""
    try:
        data = target.get(MANIFEST)
    except (OSError, StorageError, KeyError):
        return {}
    out = {}
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("file"), str):
            out[rec["file"]] = rec
    return out


def _record(rec: dict[str, Any], name: str, w: int, h: int, fmt: str, sel: Selection) -> dict[str, Any]:
    out = dict(rec)
    out.update({"reference_id": name.rsplit(".", 1)[0], "file": name,
                "video_reference_id": sel.videos.urls[rec["video"]], "width": w, "height": h,
                "format": fmt})
    return out


def _put_retry(target: _LocalDest | _ProviderDest, name: str, data: bytes, retries: int) -> str | None:
    delay = 0.2
    last = ""
    for attempt in range(max(1, int(retries) + 1)):
        try:
            target.put(name, data)
            return None
        except (OSError, StorageError) as e:
            last = f"{type(e).__name__}: {e}"
            if attempt < retries:
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
    return f"{last} (after {max(1, int(retries) + 1)} attempts)"


def _progress(total: int, progress: bool) -> Any:
    return _bar(total, "export", progress, unit="frame")
