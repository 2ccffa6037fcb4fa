"""Every exception vidlake raises on purpose, in one place.

Catch ``vidlake.VidlakeError`` for all of them, or a specific class::

    try:
        vidlake.VideoReader("broken.mp4")
    except vidlake.VideoDecodeError as e:
        print(e)   # names the file and FFmpeg's own message
"""
from __future__ import annotations


class VidlakeError(Exception):
    """Base class of every vidlake error."""


class VideoDecodeError(VidlakeError):
    """A video could not be opened, demuxed or decoded (corrupt, truncated, not a video)."""


class UnsupportedFormatError(VideoDecodeError, ValueError):
    """The file is valid but of a kind vidlake does not read (e.g. no video stream)."""


class FrameTimestampError(VidlakeError, ValueError):
    """No frame at a requested time: outside the stream, or none within the tolerance
    (``get_frames_at_timestamps``); the message names the video, the time and the nearest frame."""


class IndexFormatError(VidlakeError):
    """A stored packet index is damaged or was written by a newer, unknown format version."""


class DatasetError(VidlakeError):
    """A dataset-level problem: missing dataset, bad tensor name, format version too new."""


class ReadOnlyError(DatasetError):
    """A write was attempted on a dataset opened with ``read_only=True``."""


class SampleAppendError(DatasetError, ValueError):
    """A sample was refused at append time; the dataset was left unchanged."""


class HtypeError(SampleAppendError):
    """A sample does not follow the rules of its tensor's htype."""


class StorageError(VidlakeError):
    """A storage provider failed (missing key, I/O error, remote failure after retries)."""


class ConcurrentWriteError(DatasetError, StorageError):
    """Another writer committed to the dataset first (or holds its commit lock too long), or a
    conditional write was refused because the object changed since it was read; this writer's
    staged appends were not committed. Reload the dataset and append again."""


class JobRunningError(DatasetError):
    """A job of the dataset is running (its lease is live): a second runner of the same job, or
    compaction, is refused. ``job_id`` names the job; the message names its host and pid."""

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class LinkRefusedError(StorageError):
    """A linked sample points at a local file outside the roots the user allowed
    (``allow_local_links``): a dataset cannot make vidlake read local files by itself."""


class CredentialsError(StorageError):
    """Credentials are missing, not populated, or were refused by the storage service."""


__all__ = [
    "ConcurrentWriteError",
    "CredentialsError",
    "DatasetError",
    "FrameTimestampError",
    "HtypeError",
    "IndexFormatError",
    "JobRunningError",
    "LinkRefusedError",
    "ReadOnlyError",
    "SampleAppendError",
    "StorageError",
    "UnsupportedFormatError",
    "VideoDecodeError",
    "VideoEncodeError",
    "VidlakeError",
]


class VideoEncodeError(VidlakeError, ValueError):
    """Frames cannot be encoded: an encoder or muxer FFmpeg lacks or refuses, bad settings or frames."""
