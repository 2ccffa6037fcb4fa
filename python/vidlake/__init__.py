"""vidlake: frame-exact video datasets for deep learning.

    >>> import vidlake
    >>> r = vidlake.VideoReader("clip.mp4")
    >>> r[10].shape            # (H, W, 3) uint8 RGB
"""
from __future__ import annotations

from .errors import (  # noqa: F401
    CredentialsError,
    DatasetError,
    HtypeError,
    IndexFormatError,
    ReadOnlyError,
    SampleAppendError,
    StorageError,
    UnsupportedFormatError,
    VideoDecodeError,
    VidlakeError,
)
from .reader import VideoReader  # noqa: F401

__version__ = "0.1.0"
