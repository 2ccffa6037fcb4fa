"""Htype rules: what each tensor type accepts, how a sample becomes stored bytes and back.

``video`` tensors store the appended file's bytes unchanged (no decode, no re-encode) with the
packet index the core builds while demuxing once. The other htypes (``generic``,
``class_label``, ``text``, ``json``) hold the small per-sample values that accompany videos.

    >>> from vidlake import htypes
    >>> htypes.check_compression("video", "mp4")
    'mp4'
    >>> htypes.check_compression("video", "gif")
    Traceback (most recent call last):
    ValueError: sample_compression 'gif' is not supported for htype 'video'; accepted: mp4, m4v, ...
"""
from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import HtypeError, SampleAppendError, StorageError, VideoDecodeError
from .storage.provider import FileRange

__all__ = [
    "CONTAINER_FAMILIES",
    "HTYPES",
    "VIDEO_COMPRESSIONS",
    "PreparedSample",
    "check_compression",
    "check_htype",
    "container_format",
    "decode_value",
    "prepare_sample",
]

HTYPES = ("video", "generic", "class_label", "text", "json", "image", "bbox")
#: plus ``sequence[X]`` for X in ``vidlake.sequence.SEQUENCE_ITEMS`` (``sequence[]`` = generic items)
#: linked htypes (``vidlake.link``): the dataset keeps a URL plus index and sample_info, not the
#: bytes; their rules live in ``vidlake/link.py``
LINK_HTYPES = ("link[video]", "link[image]")
#: htypes whose samples are videos (frame indexing, timestamps)
VIDEO_HTYPES = ("video", "link[video]")

#: accepted ``sample_compression`` values of video tensors (``mpg`` is ``mpeg``)
VIDEO_COMPRESSIONS = ("mp4", "m4v", "mov", "mkv", "webm", "avi", "mpeg", "mpg", "ts", "ivf", "hevc", "h264")

#: FFmpeg demuxer name -> the compressions that name a file of that container
CONTAINER_FAMILIES: dict[str, tuple[str, ...]] = {
    "mov,mp4,m4a,3gp,3g2,mj2": ("mp4", "m4v", "mov"),
    "matroska,webm": ("mkv", "webm"),
    "avi": ("avi",),
    "mpeg": ("mpeg", "mpg"),
    "mpegts": ("ts",),
    "ivf": ("ivf",),
    "hevc": ("hevc",),
    "h264": ("h264",),
}


def check_htype(htype: str) -> str:
    """Validate an htype name."""
    if isinstance(htype, str) and htype.startswith("sequence["):
        from .sequence import check_sequence_htype

        return check_sequence_htype(htype)
    if htype not in HTYPES + LINK_HTYPES:
        raise ValueError(f"htype {htype!r} is not supported; accepted: {', '.join(HTYPES + LINK_HTYPES)}")
    return htype


def check_compression(htype: str, compression: str | None) -> str | None:
    """Validate ``sample_compression`` for ``htype``; video tensors require one."""
    if htype == "video":
        c = compression.lower() if isinstance(compression, str) else compression
        if c not in VIDEO_COMPRESSIONS:
            raise ValueError(
                f"sample_compression {compression!r} is not supported for htype 'video'; "
                f"accepted: {', '.join(VIDEO_COMPRESSIONS)}"
            )
        return c
    if htype in ("image", "sequence[image]"):
        from .images import IMAGE_COMPRESSIONS

        c = compression.lower() if isinstance(compression, str) else compression
        if c not in IMAGE_COMPRESSIONS:
            raise ValueError(f"sample_compression {compression!r} is not supported for htype {htype!r}; "
                             f"accepted: {', '.join(IMAGE_COMPRESSIONS)}")
        return c
    if htype in LINK_HTYPES:
        from .link import check_link_compression

        return check_link_compression(htype, compression)
    if compression is not None:
        raise ValueError(f"htype {htype!r} takes no sample_compression (got {compression!r}); use None")
    return None


def container_format(container: str, head: bytes) -> str:
    """The file's real format as a ``sample_compression`` name, from FFmpeg's demuxer name
    and the first bytes (the mp4 ``ftyp`` brand tells mp4 / m4v / mov apart, the EBML DocType
    tells webm from mkv)."""
    if container == "mov,mp4,m4a,3gp,3g2,mj2":
        if head[4:8] == b"ftyp":
            brand = head[8:12]
            if brand == b"qt  ":
                return "mov"
            if brand.startswith(b"M4V"):
                return "m4v"
            return "mp4"
        return "mov"  # classic QuickTime files start with moov/mdat/wide atoms, no ftyp
    if container == "matroska,webm":
        return "webm" if b"webm" in head[:64] else "mkv"
    fam = CONTAINER_FAMILIES.get(container)
    return fam[0] if fam else container


@dataclass
class PreparedSample:
    """A validated sample, ready to be placed in chunks: its bytes plus its table entry."""

    data: bytes | FileRange
    info: dict[str, Any]
    index: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    link: dict[str, Any] | None = None  # link htypes: url, creds_key, verified (entry["link"])


# -- video ---------------------------------------------------------------------------------
def _local_file(path: str) -> FileRange | bytes:
    """A local file to append: a FileRange (copied by the provider at commit, no read here)
    for regular files, else (pipes, devices) its bytes."""
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            return FileRange(path, 0, st.st_size, st.st_size, st.st_mtime_ns)
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SampleAppendError(f"cannot read video file {path!r}: {e.strerror or e}") from None


def _video_source(sample: Any) -> tuple[bytes | FileRange, str | None]:
    """(file bytes or local file range, filename) of a sample appended to a video tensor."""
    from .sample import Sample

    if isinstance(sample, Sample):
        if sample.local_path is not None and sample._buffer is None:
            return _local_file(sample.local_path), sample.path
        try:
            return sample.buffer, sample.path
        except OSError as e:
            raise SampleAppendError(f"cannot read video file {sample.path!r}: {e.strerror or e}") from None
        except KeyError:
            raise SampleAppendError(f"cannot read video {sample.path!r}: no such object") from None
    if isinstance(sample, (str, os.PathLike)):
        path = os.fspath(sample)
        return _local_file(path), path
    if isinstance(sample, (bytes, bytearray, memoryview)):
        return bytes(sample), None
    if isinstance(sample, np.ndarray):
        raise SampleAppendError(
            f"a numpy array of frames (shape {sample.shape}) cannot be appended to a video tensor yet: "
            "vidlake stores encoded video files as they are and has no frame encoder. Encode the frames "
            "to a file first (e.g. `ffmpeg -f rawvideo -pix_fmt rgb24 -s WxH -r FPS -i - -c:v libx264 out.mp4`) "
            "and append vidlake.read('out.mp4')"
        )
    raise HtypeError(
        f"a video tensor takes vidlake.read(path), a file path or the file's bytes; got {type(sample).__name__}"
    )


def prepare_video(sample: Any, compression: str, tensor: str) -> PreparedSample:
    """Demux once (no decode) to build the packet index, check the container, fill sample_info."""
    from . import _core

    data, filename = _video_source(sample)
    what = repr(filename) if filename else "the video bytes"
    if not len(data):
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: the file is empty (0 bytes)")
    try:
        # a local file is demuxed straight from disk (the core preads it); its bytes are copied
        # into chunks by the provider at commit, never through Python
        index = _core.Index.build(data.path if isinstance(data, FileRange) else data, -1, filename or "")
    except VideoDecodeError as e:
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: not a readable video ({e})") from None
    try:
        head = data.read(0, 64) if isinstance(data, FileRange) else data[:64]
    except StorageError as e:
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: {e}") from None
    info, extra = video_facts(index, bytes(head), filename, compression, tensor)
    return PreparedSample(data=data, info=info, index=bytes(index.to_bytes()), extra=extra)


def video_facts(index: Any, head: bytes, filename: str | None, compression: str | None,
                tensor: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(sample_info, extra facts) of a video from its packet index and its first 64 bytes.

    Refuses a video without frames and, when ``compression`` is given, a container outside
    that compression's family. Shared by ``video`` and ``link[video]`` (``vidlake/link.py``).
    """
    what = repr(filename) if filename else "the video bytes"
    md = dict(index.metadata)
    n = int(index.num_frames)
    if n <= 0:
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: the video has no decodable frames")
    container = str(md.get("container", ""))
    real = container_format(container, head)
    family = CONTAINER_FAMILIES.get(container, (real,))
    if compression is not None and compression not in family:
        raise SampleAppendError(
            f"cannot append {what} to {tensor!r}: the file is {real} (FFmpeg container {container!r}) "
            f"but the tensor's sample_compression is {compression!r}. Append it to a tensor created "
            f"with sample_compression={real!r}, or remux it (ffmpeg -i in -c copy out.{compression})"
        )
    tb = float(md.get("time_base") or 0.0)
    dur_ts = md.get("duration_ts")
    if dur_ts is None or int(dur_ts) < 0:
        dur_ts = round(float(md.get("duration") or 0.0) / tb) if tb else 0
    info = {
        "duration": int(dur_ts),
        "fps": float(md.get("fps") or 0.0),
        "timebase": tb,
        "shape": [n, int(md["height"]), int(md["width"]), 3],
        "format": real,
        "filename": filename,
        "modified": False,
    }
    extra = {k: md[k] for k in ("codec", "pix_fmt", "rotation", "container", "time_base_num", "time_base_den")
             if k in md}
    return info, extra


# -- small-value htypes ----------------------------------------------------------------------
def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def prepare_value(htype: str, sample: Any, tensor: str, meta: dict[str, Any]) -> PreparedSample:
    """Encode a non-video sample (``generic``, ``class_label``, ``text``, ``json``)."""
    if htype == "text":
        if not isinstance(sample, str):
            raise HtypeError(f"tensor {tensor!r} (htype 'text') takes str samples, got {type(sample).__name__}")
        return PreparedSample(sample.encode("utf-8"), {"shape": [1]})
    if htype == "json":
        try:
            data = json.dumps(sample, separators=(",", ":"), allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise HtypeError(f"tensor {tensor!r} (htype 'json') needs a JSON-serialisable sample: {e}") from None
        return PreparedSample(data, {"shape": [1]})
    if htype == "class_label":
        from .annotations import class_ids  # class-name rules live with the other annotation rules

        arr = class_ids(sample, tensor, meta.get("class_names") or [])
        return PreparedSample(_npy(arr), {"shape": list(arr.shape)})
    # generic
    try:
        arr = np.asarray(sample)
    except Exception as e:  # noqa: BLE001 - numpy raises many types here
        raise HtypeError(f"tensor {tensor!r} cannot store {type(sample).__name__}: {e}") from None
    if arr.dtype == object:
        raise HtypeError(f"tensor {tensor!r} (htype 'generic') takes numeric arrays; got an object array")
    want = meta.get("dtype")
    if want is not None:
        from .annotations import safe_cast  # casts that change no value (docs/ANNOTATIONS.md)

        arr = safe_cast(arr, want, tensor)
    return PreparedSample(_npy(arr), {"shape": list(arr.shape)})


def prepare_sample(htype: str, sample: Any, tensor: str, meta: dict[str, Any],
                   dataset: Any = None) -> PreparedSample:
    """Validate and encode one sample for a tensor with this meta. ``dataset`` resolves the
    creds keys of linked samples."""
    if htype == "video":
        return prepare_video(sample, meta["sample_compression"], tensor)
    if htype in LINK_HTYPES:
        from .link import prepare_link

        return prepare_link(htype, sample, tensor, meta, dataset)
    if htype.startswith("sequence["):
        from .sequence import prepare_sequence

        return prepare_sequence(htype, sample, tensor, meta)
    if htype == "image":
        from .images import prepare_image

        return prepare_image(sample, meta["sample_compression"], tensor)
    if htype == "bbox":
        from .annotations import prepare_bbox

        return prepare_bbox(sample, tensor, meta)
    return prepare_value(htype, sample, tensor, meta)


def decode_value(htype: str, data: bytes) -> Any:
    """Stored bytes -> value for the small-value htypes."""
    if htype == "text":
        return data.decode("utf-8")
    if htype == "json":
        return json.loads(data.decode("utf-8"))
    if htype == "image":
        from .images import decode_image

        return decode_image(data)
    return np.load(io.BytesIO(data), allow_pickle=False)


def common_shape(shapes: Sequence[Sequence[int]]) -> tuple[int | None, ...]:
    """Element-wise common shape, ``None`` where samples differ (ragged)."""
    if not shapes:
        return ()
    ndim = len(shapes[0])
    if any(len(s) != ndim for s in shapes):
        return (None,)
    return tuple(s0 if all(s[d] == s0 for s in shapes) else None for d, s0 in enumerate(shapes[0]))
