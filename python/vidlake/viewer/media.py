"""What the viewer serves: a sample's stored bytes by ranges, frames as JPEG, overlays as JSON.

* :func:`byte_source` gives the stored file of a ``video`` sample (its chunks) or of a
  ``link[video]`` sample (the local file or the remote object) as a range source; the server
  answers the browser's ``Range`` requests from it, so only what the browser asks for is read
  from storage (never the whole file first).
* :func:`native_playback` says whether Chromium / Firefox / Safari play the file as it is
  (H.264, VP8, VP9, AV1 in mp4 / webm / mkv, 8-bit 4:2:0, no rotation); anything else is played
  by the *frame player*: frame-exact JPEGs from vidlake's own decoder (:class:`FrameCache`).
* :func:`sample_payload` is everything the sample page's script needs: the stored timestamps
  (from the packet index, so the frame number shown is the true one), and per-frame overlays
  (``sequence[bbox]`` converted to pixel LTRB boxes, class labels and ids as captions).

    >>> src = byte_source(ds.videos, 0)
    >>> src.size, len(src.fetch([(0, 1024)])[0])
    (574823, 1024)
"""
from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import StorageError
from ..htypes.bbox import convert_boxes
from ..sources import RemoteRangeSource
from ..storage import split_url, url_scheme
from ..storage.creds import redact
from ..video import encode_image

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from ..dataset import Dataset, Tensor

__all__ = ["FrameCache", "byte_source", "mime_type", "native_playback", "sample_payload"]

#: browser codecs (FFmpeg codec names) and containers (``sample_info["format"]``) played as they are
NATIVE_CODECS = ("h264", "vp8", "vp9", "av1")
NATIVE_FORMATS = ("mp4", "m4v", "mov", "webm", "mkv")
NATIVE_PIX_FMTS = ("yuv420p", "yuvj420p")
#: frames per second assumed for image sequences (they carry no timestamps)
SEQUENCE_FPS = 10.0
#: most frames of one overlay tensor sent to the page
MAX_OVERLAY_FRAMES = 200_000

_MIME = {"mp4": "video/mp4", "m4v": "video/mp4", "mov": "video/mp4", "webm": "video/webm",
         "mkv": "video/x-matroska", "avi": "video/x-msvideo", "mpeg": "video/mpeg", "mpg": "video/mpeg",
         "ts": "video/mp2t", "ivf": "video/x-ivf", "hevc": "video/hevc", "h264": "video/h264"}
_IMAGE_MIME = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def mime_type(fmt: str | None) -> str:
    """The Content-Type of a stored video of ``sample_info["format"]`` ``fmt``."""
    return _MIME.get(str(fmt or "").lower(), "application/octet-stream")


class FileSource:
    """A local file as a range source (``size``, ``name``, ``fetch``), read with ``pread``."""

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name
        self.size = os.stat(path).st_size

    def fetch(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return [os.pread(fd, max(0, int(e) - int(s)), int(s)) for s, e in ranges]
        finally:
            os.close(fd)


def byte_source(tensor: Tensor, row: int) -> Any:
    """The stored video file of sample ``row`` as a range source (``size``, ``fetch(ranges)``).

    ``video`` samples: the chunks that hold them (ranged gets of the dataset's provider);
    ``link[video]`` samples: the linked local file (under the roots the dataset allows) or the
    remote object through the dataset's provider for that URL and creds key."""
    ctx = tensor.stored(row)
    e = ctx.entry
    if not tensor.spec.linked:
        return ctx.range_source(e["data"])
    ln = e["link"]
    url = ln["url"]
    size = int(tensor.reader(row).index.source_size)  # the stored index (built on first use if unverified)
    if url_scheme(url) in ("", "file"):
        path = url.removeprefix("file://")
        ctx.check_local_path(path)
        try:
            return FileSource(path, ctx.name)
        except OSError as err:
            raise StorageError(f"{ctx.name}: the linked file {path} cannot be read: {err.strerror or err}") from None
    parent, key = split_url(url)
    provider = ctx.link_provider(parent, ln.get("creds_key"))
    return RemoteRangeSource(provider, key, size=size, name=redact(url), cache=False)


def native_playback(tensor: Tensor, row: int) -> tuple[bool, str]:
    """(the browser plays the stored file as it is, why not when it does not)."""
    if not tensor.spec.video:
        return False, "an image sequence"
    info = tensor.info(row)
    md = tensor.reader(row).metadata
    fmt = str(info.get("format") or "")
    codec = str(md.get("codec") or "")
    pix = str(md.get("pix_fmt") or "")
    if fmt not in NATIVE_FORMATS:
        return False, f"the {fmt or 'unknown'} container is not played by browsers"
    if codec not in NATIVE_CODECS:
        return False, f"{codec or 'this codec'} is not decoded by every browser"
    if pix not in NATIVE_PIX_FMTS:
        return False, f"{pix} (browsers play 8-bit 4:2:0)"
    if int(md.get("rotation") or 0) % 360:
        return False, "the video has a rotation (browsers turn it, vidlake's frames are as stored)"
    w, h = int(md.get("width") or 0), int(md.get("height") or 0)
    if w % 2 or h % 2:
        return False, f"odd frame size {w}x{h}"
    return True, ""


class FrameCache:
    """JPEG frames of samples, decoded by vidlake (frame-exact), kept in a bounded LRU.

    A request for the frame after the last one requested of that sample decodes ``batch``
    frames at once (one decoder pass; playback asks for frames in order), any other request
    decodes just that frame. One lock per sample: parallel requests of the page's prefetch
    wait for the batch that holds their frame instead of decoding it again."""

    def __init__(self, max_frames: int = 256, batch: int = 8) -> None:
        self.max_frames = max_frames
        self.batch = batch
        self._jpegs: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._sample_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._last: dict[tuple[Any, ...], int] = {}
        self.frames_decoded = 0

    def _get(self, key: tuple[Any, ...]) -> bytes | None:
        with self._lock:
            v = self._jpegs.get(key)
            if v is not None:
                self._jpegs.move_to_end(key)
            return v

    def _put(self, key: tuple[Any, ...], data: bytes) -> None:
        with self._lock:
            self._jpegs[key] = data
            self._jpegs.move_to_end(key)
            while len(self._jpegs) > self.max_frames:
                self._jpegs.popitem(last=False)

    def frame(self, tensor: Tensor, row: int, n: int, size: tuple[int, int] | None = None) -> bytes:
        """JPEG of frame ``n`` of video sample ``row`` (at ``size`` = (h, w) when given)."""
        sid = (id(tensor), row, size)
        key = (*sid, n)
        hit = self._get(key)
        if hit is not None:
            return hit
        with self._lock:
            slock = self._sample_locks.setdefault(sid, threading.Lock())
        with slock:
            hit = self._get(key)
            if hit is not None:
                return hit
            total = int(tensor.sample_shape(row)[0])
            sequential = self._last.get(sid) == n - 1
            count = min(self.batch, total - n) if sequential else 1
            idx = np.arange(n, n + max(1, count), dtype=np.int64)
            frames = tensor.reader(row).get_frames(idx, size=size)
            self.frames_decoded += len(idx)
            out = b""
            for k, f in zip(idx, frames):
                data = encode_image(f, "jpg")
                self._put((*sid, int(k)), data)
                if int(k) == n:
                    out = data
            self._last[sid] = int(idx[-1])
            return out


def sequence_item(tensor: Tensor, row: int, k: int) -> tuple[bytes, str]:
    """(encoded bytes, mime type) of item ``k`` of a ``sequence[image]`` sample, or of an
    ``image`` sample (``k = 0``), as stored (no re-encode); other image data is JPEG-encoded."""
    if tensor.spec.frames:
        e = tensor.entry(row)
        offs = e["info"]["items"]["offsets"]
        if not 0 <= k < len(offs) - 1:
            raise IndexError(f"{tensor.key}[{row}] has {len(offs) - 1} items, not {k + 1}")
        data = tensor.stored(row).range_source(e["data"]).fetch([(offs[k], offs[k + 1])])[0]
    elif tensor.spec.linked:
        return encode_image(np.asarray(tensor.value(row)), "jpg"), "image/jpeg"
    else:
        e = tensor.entry(row)
        data = tensor.stored(row).read_extents(e["data"])
    fmt = str(tensor.meta.get("sample_compression") or "").lower()
    mime = _IMAGE_MIME.get(fmt)
    if mime is None:
        return encode_image(np.asarray(tensor.spec.decode(data, tensor.meta)), "jpg"), "image/jpeg"
    return bytes(data), mime


def is_image_sequence(tensor: Tensor) -> bool:
    return tensor.htype == "sequence[image]"


def player_tensors(ds: Dataset) -> list[str]:
    """Tensors a sample page can play: videos first, then image sequences."""
    vids = [n for n, t in ds.tensors.items() if t.spec.video]
    seqs = [n for n, t in ds.tensors.items() if is_image_sequence(t)]
    return vids + seqs


def timestamps_of(tensor: Tensor, row: int) -> np.ndarray:
    """Presentation times (seconds) of every frame: the stored index for videos, ``k / 10``
    (:data:`SEQUENCE_FPS`) for image sequences."""
    if tensor.spec.video:
        return np.asarray(tensor.reader(row).timestamps, dtype=np.float64)
    n = int(tensor.sample_shape(row)[0])
    return np.arange(n, dtype=np.float64) / SEQUENCE_FPS


def frame_size(tensor: Tensor, row: int) -> tuple[int, int]:
    """(height, width) of the frames as vidlake decodes them (as stored: no rotation)."""
    if tensor.spec.video:
        md = tensor.reader(row).metadata
        return int(md["height"]), int(md["width"])
    shapes = tensor.entry(row)["info"]["items"]["shapes"]
    if not shapes:
        return 0, 0
    return int(shapes[0][0]), int(shapes[0][1])


def _items(tensor: Tensor, row: int) -> list[Any]:
    v = tensor.sample(row).numpy(aslist=True)
    return list(v)


def _names(tensor: Tensor, ids: Any) -> list[str]:
    names = tensor.meta.get("class_names") or []
    out = []
    for k in np.asarray(ids).reshape(-1):
        k = int(k)
        out.append(str(names[k]) if k < len(names) else str(k))
    return out


def _pixel_ltrb(boxes: Any, coords: dict[str, Any], hw: tuple[int, int]) -> list[list[float]]:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(b):
        return []
    px = convert_boxes(b, coords, mode="LTRB", type="pixel", image_size=hw)
    return [[round(float(x), 2) for x in r] for r in px]


def _aligned(ds: Dataset, main: str, t: Tensor, row: int, n: int) -> bool:
    """Does sequence tensor ``t`` hold one item per frame of ``main`` in this row?"""
    if not t.spec.frames or t.spec.video or row >= len(t):
        return False
    if t.meta.get("aligned_to") not in (None, main):
        return False
    return t.frame_count(row) == n


def _short(value: Any, limit: int = 4000) -> str:
    if isinstance(value, str):
        s = value
    else:
        try:
            s = json.dumps(value, indent=2, default=lambda o: np.asarray(o).tolist(), ensure_ascii=False)
        except (TypeError, ValueError):
            s = repr(value)
    return s if len(s) <= limit else s[:limit] + f"... ({len(s)} characters)"


def row_values(ds: Dataset, row: int, skip: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One entry per tensor of a row for the metadata panel: ``{"tensor", "htype", "kind", "text"}``
    (``kind``: ``json``, ``text``, ``label``, ``array``, ``video``, ``images``, ``image``, ``error``)."""
    out: list[dict[str, Any]] = []
    for name, t in ds.tensors.items():
        if name in skip:
            continue
        item: dict[str, Any] = {"tensor": name, "htype": t.htype}
        try:
            if row >= len(t):
                item.update(kind="text", text="(no sample in this row)")
            elif t.spec.video:
                info = t.info(row)
                item.update(kind="video", text=f"{info.get('shape')} {info.get('format')} {info.get('fps') or 0:.3f} fps")
            elif is_image_sequence(t):
                item.update(kind="images", text=f"{t.frame_count(row)} images", count=t.frame_count(row))
            elif t.htype in ("image", "link[image]"):
                item.update(kind="image", text=str(t.sample_shape(row)))
            elif t.htype == "json":
                item.update(kind="json", text=_short(t.value(row)))
            elif t.htype == "text":
                item.update(kind="text", text=_short(t.value(row)))
            elif "class_names" in t.meta and not t.spec.frames:
                ids = np.asarray(t.value(row)).reshape(-1)
                item.update(kind="label", text=", ".join(f"{n} ({int(i)})" for n, i in zip(_names(t, ids), ids)))
            elif t.spec.frames:
                item.update(kind="text", text=f"sequence of {t.frame_count(row)} items")
            else:
                item.update(kind="array", text=_short(np.asarray(t.value(row)).tolist()))
        except Exception as e:  # noqa: BLE001 - one unreadable tensor must not hide the others
            item.update(kind="error", text=f"{type(e).__name__}: {e}")
        out.append(item)
    return out


def sample_payload(ds: Dataset, main: str, row: int) -> dict[str, Any]:
    """What the sample page's script gets (embedded in the page as JSON): frame facts from the
    stored index, the overlays of every tensor aligned to ``main`` and the row's static boxes.

    ``overlays``: ``[{"tensor", "boxes": per frame [[l, t, r, b], ...] in pixels of the decoded
    frame, "captions": per frame one string per box (class names / ids) or None}]``;
    ``captions``: per-frame values (labels, ids not matching boxes) ``[{"tensor", "values"}]``;
    ``filmstrips``: aligned ``sequence[image]`` tensors (item URLs are built by the page)."""
    t = ds[main]
    ts = timestamps_of(t, row)
    n = len(ts)
    hw = frame_size(t, row)
    durations = np.diff(ts)
    frame_duration = float(np.median(durations)) if len(durations) else 1.0 / SEQUENCE_FPS
    overlays: list[dict[str, Any]] = []
    labels: list[tuple[str, list[list[str]]]] = []
    ids: list[tuple[str, list[list[str]]]] = []
    captions: list[dict[str, Any]] = []
    filmstrips: list[dict[str, Any]] = []
    for name, other in ds.tensors.items():
        if name == main or row >= len(other):
            continue
        base = other.htype.removeprefix("sequence[").rstrip("]") if other.spec.frames else other.htype
        if base == "bbox" and not other.spec.frames:  # one set of boxes for the whole row
            b = _pixel_ltrb(other.value(row), other.meta.get("coords") or {}, hw)
            overlays.append({"tensor": name, "static": True, "boxes": [b], "captions": None})
            continue
        if not _aligned(ds, main, other, row, n) or n > MAX_OVERLAY_FRAMES:
            continue
        if other.htype == "sequence[bbox]":
            coords = other.meta.get("coords") or {}
            overlays.append({"tensor": name, "static": False,
                             "boxes": [_pixel_ltrb(b, coords, hw) for b in _items(other, row)], "captions": None})
        elif other.htype == "sequence[class_label]":
            labels.append((name, [_names(other, v) for v in _items(other, row)]))
        elif other.htype in ("sequence[generic]", "sequence[]"):
            ids.append((name, [[str(x) for x in np.asarray(v).reshape(-1).tolist()] for v in _items(other, row)]))
        elif is_image_sequence(other):
            filmstrips.append({"tensor": name, "count": n})
        elif other.htype in ("sequence[text]", "sequence[json]"):
            captions.append({"tensor": name, "values": [_short(v, 200) for v in _items(other, row)]})
    # per-box captions: class names and ids whose count matches the boxes of each frame
    on_boxes: dict[str, str] = {}
    for name, per in labels + ids:
        target = next((o for o in overlays if not o["static"]
                       and all(len(p) == len(b) for p, b in zip(per, o["boxes"]))), None)
        if target is None:
            captions.append({"tensor": name, "values": [", ".join(p) for p in per]})
            continue
        on_boxes[name] = target["tensor"]
        if target["captions"] is None:
            target["captions"] = [[""] * len(b) for b in target["boxes"]]
        for f, p in enumerate(per):
            target["captions"][f] = [(c + " " + x).strip() for c, x in zip(target["captions"][f], p)]
    return {
        "tensor": main, "row": row, "frames": n, "height": hw[0], "width": hw[1],
        "timestamps": [round(float(x), 6) for x in ts], "frame_duration": frame_duration,
        "overlays": overlays, "captions": captions, "filmstrips": filmstrips, "box_captions": on_boxes,
    }
