"""The ``video`` htype: a sample is the appended file's bytes, unchanged (no decode, no
re-encode), with the packet index the core builds while demuxing once.

    >>> ds.create_tensor("videos", htype="video", sample_compression="mp4")
    >>> ds.videos.append(vidlake.read("clip.mp4"))
    >>> ds.videos[0].sample_info["shape"]
    [400, 360, 640, 3]
"""
from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import (
    HtypeError,
    IndexFormatError,
    SampleAppendError,
    StorageError,
    VideoDecodeError,
    VideoEncodeError,
)
from ..format.records import sample_index
from ..sources import Sample
from ..storage.provider import FileRange
from ..video import Index, VideoReader
from ..video.encode import Frames, encode_to_bytes, reencode_bytes
from . import register
from .base import Htype, PreparedSample, SampleContext, WriteContext

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CONTAINER_FAMILIES", "VIDEO_COMPRESSIONS", "VideoHtype", "container_format", "storable_index", "video_facts"]

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
    raise HtypeError(
        f"a video tensor takes vidlake.read(path), a file path, the file's bytes, or frames (an (N, H, W, 3) "
        f"uint8 array, an iterator of frames, vidlake.frames(...)); got {type(sample).__name__}"
    )


#: sample_compression values the encoder writes (frames appended, re-encoding)
ENCODE_CONTAINERS = ("mp4", "m4v", "mov", "mkv", "webm")


def _is_frames(sample: Any) -> bool:
    """Frames to encode: an array, vidlake.frames(...), or an iterator (not a file or bytes)."""
    if isinstance(sample, (np.ndarray, Frames)):
        return True
    if isinstance(sample, (str, os.PathLike, bytes, bytearray, memoryview, Sample, dict)):
        return False
    return hasattr(sample, "__iter__") and not hasattr(sample, "read")


def _encode_frames(sample: Any, compression: str, tensor: str, meta: Mapping[str, Any]) -> tuple[bytes, dict]:
    """Frames -> the file's bytes in the tensor's container, with the tensor's and the sample's settings."""
    if compression not in ENCODE_CONTAINERS:
        raise SampleAppendError(f"cannot append frames to {tensor!r}: vidlake encodes into "
                                f"{', '.join(ENCODE_CONTAINERS)}, not {compression!r}")
    settings = dict(meta.get("encode") or {})
    source, timestamps = sample, None
    if isinstance(sample, Frames):
        if sample.settings.get("lossless"):  # the sample's lossless=True beats the tensor's quality
            settings.pop("crf", None)
            settings.pop("bitrate", None)
        settings.update(sample.settings)
        source, timestamps = sample.source, sample.timestamps
    settings.pop("container", None)
    try:
        facts = encode_to_bytes(source, settings, timestamps, container=compression)
    except VideoEncodeError as e:
        raise SampleAppendError(f"cannot append frames to {tensor!r}: {e}") from None
    return facts.pop("data"), facts


def prepare_video(sample: Any, compression: str, tensor: str,
                  meta: Mapping[str, Any] | None = None) -> PreparedSample:
    """Demux once (no decode) to build the packet index, check the container, fill sample_info.
    Frames are encoded first (the tensor's ``encode`` settings); a tensor with ``reencode``
    re-encodes files to that profile (``keep_original``: the file is kept too)."""
    meta = meta or {}
    encoded: dict[str, Any] | None = None
    if _is_frames(sample):
        data: Any
        data, encoded = _encode_frames(sample, compression, tensor, meta)
        filename = None
    else:
        data, filename = _video_source(sample)
    original: Any = None
    reencoded: dict[str, Any] | None = None
    if encoded is None and meta.get("reencode"):
        what = repr(filename) if filename else "the video bytes"
        src = data.path if isinstance(data, FileRange) else data
        try:
            new, facts = reencode_bytes(src, meta["reencode"], container=compression, name=filename)
        except (VideoDecodeError, VideoEncodeError) as e:
            raise SampleAppendError(f"cannot append {what} to {tensor!r}: re-encoding failed ({e})") from None
        if meta.get("keep_original"):
            original = data
        data, reencoded = new, facts["reencoded"]
    prepared = _prepare_file(data, filename, compression, tensor)
    if encoded is not None:
        prepared.info["encoded"] = encoded["encoded"]
    if reencoded is not None:
        prepared.info["reencoded"] = reencoded
        prepared.info["modified"] = True
        prepared.original = original
    return prepared


def _prepare_file(data: Any, filename: str | None, compression: str, tensor: str) -> PreparedSample:
    what = repr(filename) if filename else "the video bytes"
    if not len(data):
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: the file is empty (0 bytes)")
    try:
        # a local file is demuxed straight from disk (the core preads it); its bytes are copied
        # into chunks by the provider at commit, never through Python
        index = Index.build(data.path if isinstance(data, FileRange) else data, -1, filename or "")
    except VideoDecodeError as e:
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: not a readable video ({e})") from None
    try:
        head = data.read(0, 64) if isinstance(data, FileRange) else data[:64]
    except StorageError as e:
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: {e}") from None
    info, extra = video_facts(index, bytes(head), filename, compression, tensor)
    stored = storable_index(index, f"cannot append {what} to {tensor!r}", filename or "")
    return PreparedSample(data=data, info=info, index=stored, extra=extra)


def storable_index(index: Index, cannot: str, filename: str) -> bytes:
    """The bytes of ``index`` to store with a video or link[video] sample; ``SampleAppendError``
    (``cannot``: "cannot append 'x.mkv' to 'videos'") if the loader would refuse them.

    The builder checks the stream fields as the loader does; what it still lets through is frame
    timestamps that repeat or go backwards (the order from a decode: pts that restart or are
    missing), which read from the file but cannot be loaded again, so they are not stored."""
    stored = bytes(index.to_bytes())
    try:
        Index.from_bytes(stored, filename)
    except IndexFormatError as e:
        raise SampleAppendError(f"{cannot}: its packet index could not be loaded again ({e}); read it "
                                "from its file with vidlake.VideoReader") from None
    return stored


def video_facts(index: Any, head: bytes, filename: str | None, compression: str | None,
                tensor: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(sample_info, extra facts) of a video from its packet index and its first 64 bytes.

    Refuses a video without frames and, when ``compression`` is given, a container outside
    that compression's family. Shared by ``video`` and ``link[video]`` (``vidlake/htypes/link.py``).
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


class VideoHtype(Htype):
    """``video``: encoded video files, read frame-exactly through their stored packet index."""

    name = "video"
    frames = True
    video = True
    compressions = VIDEO_COMPRESSIONS
    fixed_dtype = "uint8"

    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        return prepare_video(sample, meta["sample_compression"], tensor, meta)

    def open_reader(self, ctx: SampleContext, threads: int | None = None) -> VideoReader:
        e = ctx.entry
        src = ctx.range_source(e["data"])
        index = sample_index(e, ctx.read_extents(e["index"]), ctx.name, src.size)  # untrusted input
        return VideoReader(src, index=index, name=ctx.name, threads=threads)


register(VideoHtype())
