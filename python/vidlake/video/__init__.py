"""The video layer: thin Python over the C++ core (``vidlake._core``).

Everything between encoded bytes and pixels lives here: :class:`VideoReader` (frame-exact
reads of one video stream), the packet :class:`Index`, still-image decode/encode and the
recycled output memory. This layer knows nothing of datasets, tensors or storage providers;
it reads through paths, bytes or *range sources* (objects with ``size``, ``name`` and
``fetch(ranges)``).

    >>> from vidlake.video import VideoReader, Index
    >>> r = VideoReader("clip.mp4")
    >>> Index.build("clip.mp4").num_frames == len(r)
    True
"""
from __future__ import annotations

from .._core import Index
from .ffmpeg_log import forward_ffmpeg_log, set_ffmpeg_log_level
from .images import (
    IMAGE_COMPRESSIONS,
    IMAGE_DECODERS,
    JPEG_LIBRARY,
    decode_image,
    encode_image,
    image_header,
    using_image_decoder,
)
from .memory import (
    clear_output_cache,
    decoder_memory_budget,
    output_cache_info,
    parked_decoder_memory,
    set_decoder_memory_budget,
    set_output_cache,
    set_total_decoder_memory_budget,
    total_decoder_memory_budget,
)
from .prefetch import ClipPrefetcher
from .reader import VideoReader

__all__ = [
    "IMAGE_COMPRESSIONS",
    "IMAGE_DECODERS",
    "JPEG_LIBRARY",
    "ClipPrefetcher",
    "Index",
    "VideoReader",
    "clear_output_cache",
    "decode_image",
    "decoder_memory_budget",
    "encode_image",
    "forward_ffmpeg_log",
    "image_header",
    "output_cache_info",
    "parked_decoder_memory",
    "set_decoder_memory_budget",
    "set_ffmpeg_log_level",
    "set_output_cache",
    "set_total_decoder_memory_budget",
    "total_decoder_memory_budget",
    "using_image_decoder",
]
