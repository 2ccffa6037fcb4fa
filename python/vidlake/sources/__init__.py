"""What a user appends or opens remotely: lazy samples (``vidlake.read``), links
(``vidlake.link``), remote range sources and remote index builds.

    >>> s = vidlake.read("clip.mp4")                      # nothing read yet
    >>> r = vidlake.open_remote_video("s3://bucket/clip.mp4")   # ranged reads only
"""
from __future__ import annotations

from .link import LinkedSample, link
from .remote import RemoteRangeSource, build_remote_index, open_remote_video
from .sample import Sample, read

__all__ = ["LinkedSample", "RemoteRangeSource", "Sample", "build_remote_index", "link", "open_remote_video", "read"]
