"""``vidlake.read``: a lazy sample (a video file that is opened only when needed).

    >>> import vidlake
    >>> s = vidlake.read("clip.mp4")          # nothing read yet
    >>> ds.videos.append(s)                   # bytes read once, indexed, stored as they are
    >>> s.shape                               # (N, H, W, 3), from the packet index
    >>> s.numpy()[0]                          # or decode it directly

Remote URLs (``s3://``, ``https://``...) go through the storage provider of their scheme,
with ``creds`` passed to it.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..storage import get_provider, split_url, url_scheme
from ..video import VideoReader
from .remote import open_remote_video

__all__ = ["Sample", "read"]


class Sample:
    """A video file by path or URL; bytes, index and frames are fetched on first use."""

    def __init__(self, path: str, creds: dict[str, Any] | None = None) -> None:
        self.path = path
        self.creds = creds
        self._buffer: bytes | None = None
        self._reader: VideoReader | None = None

    @property
    def is_remote(self) -> bool:
        """True for URLs other than local paths and ``file://``."""
        return url_scheme(self.path) not in ("", "file")

    @property
    def local_path(self) -> str | None:
        """The local file path (``file://`` stripped), or None for remote URLs."""
        if self.is_remote:
            return None
        return self.path.removeprefix("file://")

    @property
    def buffer(self) -> bytes:
        """The file's bytes (read once, then cached)."""
        if self._buffer is None:
            if self.is_remote:
                parent, name = split_url(self.path)
                self._buffer = get_provider(parent, creds=self.creds, read_only=True).get(name)
            else:
                p = self.path.removeprefix("file://")
                with open(p, "rb") as f:
                    self._buffer = f.read()
        return self._buffer

    def _get_reader(self):
        if self._reader is None:
            if self._buffer is not None:
                self._reader = VideoReader(self._buffer, name=self.path)
            elif self.is_remote:
                # ranged reads: only the packets a read needs cross the network
                self._reader = open_remote_video(self.path, creds=self.creds)
            else:
                self._reader = VideoReader(self.path.removeprefix("file://"), name=self.path)
        return self._reader

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(frames, height, width, 3), from the packet index (no decode)."""
        r = self._get_reader()
        md = r.metadata
        return (len(r), int(md["height"]), int(md["width"]), 3)

    @property
    def compression(self) -> str:
        """The file extension, lower case (what Deep Lake calls the sample's compression)."""
        return os.path.splitext(self.path)[1].lstrip(".").lower()

    def numpy(self) -> np.ndarray:
        """Decode every frame: ``(N, H, W, 3)`` uint8."""
        r = self._get_reader()
        return r.get_frames(np.arange(len(r), dtype=np.int64))

    def __repr__(self) -> str:
        return f"Sample({self.path!r})"


def read(path_or_url: Any, creds: dict[str, Any] | None = None) -> Sample:
    """A lazy sample for ``path_or_url``, to append to a video tensor.

    >>> ds.videos.append(vidlake.read("./videos/example1.mp4"))
    """
    return Sample(os.fspath(path_or_url) if isinstance(path_or_url, os.PathLike) else str(path_or_url), creds)
