"""VideoReader: frame-exact random access to one video stream.

    >>> import vidlake
    >>> r = vidlake.VideoReader("clip.mp4")
    >>> len(r), r.metadata["fps"]
    (400, 29.97)
    >>> r[0].shape                       # (H, W, 3) uint8 RGB
    >>> clip = r[100:200:5]              # (20, H, W, 3)
    >>> batch = r.get_frames([17, 3, 3, 250])   # any order, duplicates allowed
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .. import _core
from . import timestamps as _ts
from .ffmpeg_log import forward_ffmpeg_log
from .memory import _check_budget

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

#: ``color_conversion`` values: the frame's own colours (default), or BT.601 always ("pyav": alias)
COLOR_CONVERSIONS = ("stream", "bt601", "pyav")

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Any]


def _source_name(source: Source, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", None) or ""



def _output_size(color_conversion: str, size: Sequence[int] | None) -> tuple[int, int]:
    """Checks the read options every frame read shares; (h, w) of ``size``, (0, 0) for none."""
    if color_conversion not in COLOR_CONVERSIONS:
        raise ValueError(f"color_conversion must be one of {', '.join(map(repr, COLOR_CONVERSIONS))}, "
                         f"got {color_conversion!r}")
    if size is None:
        return 0, 0
    if len(size) != 2 or int(size[0]) <= 0 or int(size[1]) <= 0:
        raise ValueError(f"size must be (height, width) with positive values, got {size!r}")
    return int(size[0]), int(size[1])

class VideoReader:
    """Reads frames of one video stream, exactly as a sequential decode emits them.

    ``source`` is a path, a bytes-like object, or a range source (an object with
    ``size`` and ``fetch(ranges) -> list[bytes]``, used by datasets and remote
    storage). ``stream`` picks a video stream by its container index (default: the
    one FFmpeg ranks best). ``threads`` sets the codec threads (default: one per
    core). ``index`` reuses a stored packet index (``Index`` or its bytes), so the
    file is not demuxed again. ``skip_nonref`` (default ``True``, the same default as
    ``vidlake._core.Decoder``) lets a read skip unwanted non-reference frames where
    that provably changes no other frame (never for MPEG-4 Part 2, containers without
    timestamps or damaged streams); frames are identical either way, only faster.
    ``decoder_memory_budget`` caps, in bytes, the estimated memory of the decoder states
    this reader parks between reads (default: :func:`vidlake.set_decoder_memory_budget`'s,
    built in 160 MB); ``0`` parks none.

    Frame numbers are presentation order. A read decodes only the packets it
    needs, from the keyframe before the first wanted frame, and converts only
    the wanted frames. The GIL is released while decoding; one reader can be
    shared between threads.
    """

    def __init__(
        self,
        source: Source,
        *,
        stream: int | None = None,
        threads: int | None = None,
        index: bytes | _core.Index | None = None,
        name: str | None = None,
        skip_nonref: bool = True,
        decoder_memory_budget: int | None = None,
    ) -> None:
        if stream is not None and (not isinstance(stream, int) or stream < 0):
            raise ValueError(f"stream must be a non-negative int or None, got {stream!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 0):
            raise ValueError(f"threads must be a non-negative int or None, got {threads!r}")
        budget = _check_budget(decoder_memory_budget, "decoder_memory_budget")
        if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
            raise FileNotFoundError(f"{os.fspath(source)}: no such file")
        self._name = _source_name(source, name)
        self._source = source  # kept for get_keyframes (its own decoder, Note [Keyframes alone])
        if index is None:
            # A local file or buffer: MP4/MOV from the sample tables, confirmed by its NAL headers
            # (docs/DESIGN.md, "Building the index"); a range source: the default for its kind.
            local = isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview))
            try:
                self._index = _core.Index.build(source, -1 if stream is None else stream, self._name,
                                                "checked" if local else "auto")
            finally:
                forward_ffmpeg_log()
        elif isinstance(index, (bytes, bytearray, memoryview)):
            self._index = _core.Index.from_bytes(bytes(index), self._name)
        else:
            self._index = index
        try:
            self._decoder = _core.Decoder(source, self._index, threads or 0, skip_nonref, self._name, budget)
        finally:
            forward_ffmpeg_log()
        self._metadata = self._index.metadata
        self._timestamps: np.ndarray | None = None

    # ---- facts
    @property
    def index(self) -> _core.Index:
        """The packet index (``.to_bytes()`` stores it)."""
        return self._index

    @property
    def metadata(self) -> dict:
        """Codec, size, pixel format, fps, time base, duration, rotation, ... (a copy)."""
        return dict(self._metadata)

    @property
    def stream_index(self) -> int:
        return self._index.stream_index

    @property
    def timestamps(self) -> np.ndarray:
        """Presentation time in seconds of every frame (float64, presentation order)."""
        ts = self._timestamps
        if ts is None:  # no lock: two threads computing it is harmless, and a lock held by another
            ts = self._index.timestamps  # thread at a fork would stay held in the child
            ts.setflags(write=False)
            self._timestamps = ts
        return ts

    @property
    def keyframe_indices(self) -> np.ndarray:
        """Frame numbers of the keyframes (int64)."""
        return self._index.keyframe_indices

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(num_frames, height, width, 3) of what ``r[:]`` returns."""
        return (len(self), self._metadata["height"], self._metadata["width"], 3)

    @property
    def stats(self) -> dict:
        """Counters since creation or ``reset_stats()``: packets_decoded, frames_decoded,
        frames_converted, frames_skipped (decoded but not returned: before the wanted frame after
        a seek, between strided frames; ``frames_decoded == frames_converted + frames_skipped``),
        bytes_read, spans, seeks, forward_decodes, retries, decode_errors; and, not counters,
        ``decoders`` (the decoder states alive now), ``parked_decoders`` and ``parked_bytes``
        (those parked between reads and their estimated memory, see docs/DESIGN.md)."""
        return dict(self._decoder.stats)

    @property
    def decoder_memory_budget(self) -> int:
        """Bytes of decoder memory this reader's parked states keep to (its own budget, else the
        process-wide one of :func:`vidlake.set_decoder_memory_budget`)."""
        return int(self._decoder.memory_budget)

    def reset_stats(self) -> None:
        self._decoder.reset_stats()

    def trim(self, keep: int = 0) -> None:
        """Close the decoder states parked between reads, except the ``keep`` most recently
        used (fewer if they are over the budget), and free their memory (up to about 160 MB per
        reader by default; a 1080p H.264 state is about 37 MB), giving freed heap pages back to
        the system (glibc's ``malloc_trim``). Later reads open new states as needed; frames are
        the same either way."""
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise ValueError(f"keep must be a non-negative int, got {keep!r}")
        self._decoder.trim(keep)

    def __len__(self) -> int:
        return self._index.num_frames

    def __repr__(self) -> str:
        m = self._metadata
        return (f"VideoReader({self._name!r}, {len(self)} frames, {m['codec']} {m['width']}x{m['height']}, "
                f"{m['fps']:.3f} fps)")

    # ---- frames
    def get_frames(
        self,
        indices: Sequence[int] | np.ndarray | Iterable[int],
        out: np.ndarray | None = None,
        *,
        size: tuple[int, int] | None = None,
        gray: bool = False,
        rotate: bool = False,
        color_conversion: str = "stream",
    ) -> np.ndarray:
        """Frames at ``indices`` (any order, duplicates allowed, negative from the end).

        Returns a uint8 array (N, H, W, 3) RGB — (N, H, W, 1) with ``gray=True`` —
        in the order asked. ``out`` is a C-contiguous uint8 array of that shape to
        decode into (returned). ``size=(h, w)`` resizes in the same conversion pass
        (bilinear). ``rotate=True`` turns frames upright by the display matrix.
        ``color_conversion="stream"`` (default) converts with each frame's own
        matrix and range (BT.709, BT.2020, full range), exactly as the ffmpeg CLI,
        torchcodec and PyAV >= 17 do; ``"bt601"`` (alias ``"pyav"``) always uses
        swscale's default BT.601 matrix, as PyAV <= 16 and Deep Lake 3.x do.
        ``gray=True`` gives the luma plane either way.

            >>> r.get_frames([30, 10, 10], size=(224, 224)).shape
            (3, 224, 224, 3)
        """
        idx = np.asarray(indices if not isinstance(indices, (set, frozenset)) else sorted(indices))
        if idx.size == 0:
            idx = idx.astype(np.int64).reshape(0)
        if idx.ndim != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {idx.shape}")
        if idx.dtype.kind not in "iu":
            raise TypeError(f"frame indices must be integers, got {idx.dtype}")
        h, w = _output_size(color_conversion, size)
        try:
            return self._decoder.get_frames(idx.astype(np.int64, copy=False), out, h, w, bool(gray), bool(rotate),
                                            color_conversion == "stream")
        finally:
            forward_ffmpeg_log()

    # ---- frames by time (vidlake/timestamps.py)
    @property
    def end_seconds(self) -> float:
        """When the last frame stops being shown (its start plus its duration), in seconds."""
        return _ts.end_seconds(self.timestamps, self._metadata)

    def indices_played_at(self, seconds: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Frame numbers shown at each time: ``pts[k] <= t < pts[k+1]`` (int64, in the order asked)."""
        return _ts.indices_played_at(self.timestamps, self.end_seconds, seconds, self._name)

    def indices_in_range(self, start_s: float, stop_s: float) -> np.ndarray:
        """Frame numbers shown at some time in ``[start_s, stop_s)``, in order."""
        return _ts.indices_in_range(self.timestamps, self.end_seconds, start_s, stop_s, self._name)

    def indices_at_timestamps(self, seconds: float | Sequence[float] | np.ndarray,
                              tolerance_s: float = 1e-4) -> np.ndarray:
        """Frame numbers nearest each time, each within ``tolerance_s`` (else FrameTimestampError)."""
        return _ts.indices_at_timestamps(self.timestamps, seconds, tolerance_s, self._name)

    def get_frames_played_at(self, seconds: float | Sequence[float] | np.ndarray, **kwargs: Any) -> np.ndarray:
        """The frame shown at each time (``pts <= t < next pts``), as ``get_frames`` returns them
        (same keyword arguments). A time outside ``[timestamps[0], end_seconds)`` raises
        :class:`vidlake.FrameTimestampError`.

            >>> r.get_frames_played_at([0.0, 0.5, 0.51]).shape      # exact on VFR files too
            (3, 360, 640, 3)
        """
        return self.get_frames(self.indices_played_at(seconds), **kwargs)

    def get_frames_in_range(self, start_s: float, stop_s: float, **kwargs: Any) -> np.ndarray:
        """Every frame shown during ``[start_s, stop_s)`` (including the one already on screen at
        ``start_s``), in order.

            >>> r.get_frames_in_range(1.0, 2.0).shape    # frames 29..59 of a 29.97 fps video
            (31, 360, 640, 3)
        """
        return self.get_frames(self.indices_in_range(start_s, stop_s), **kwargs)

    def get_frames_at_timestamps(self, seconds: float | Sequence[float] | np.ndarray,
                                 tolerance_s: float = 1e-4, **kwargs: Any) -> np.ndarray:
        """The frame whose timestamp is nearest each time; a time with no frame within
        ``tolerance_s`` raises :class:`vidlake.FrameTimestampError` naming this video, the
        time and the nearest frame (LeRobot's rule for aligning sensor data with frames).

            >>> r.get_frames_at_timestamps(r.timestamps[[3, 9]], tolerance_s=1e-4).shape
            (2, 360, 640, 3)
        """
        return self.get_frames(self.indices_at_timestamps(seconds, tolerance_s), **kwargs)

    def __getitem__(self, key: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.get_frames([int(key)])[0]
        if isinstance(key, slice):
            return self.get_frames(np.arange(*key.indices(len(self)), dtype=np.int64))
        return self.get_frames(key)

    def __iter__(self):
        """Iterates frames in order, decoding in batches."""
        n = len(self)
        for start in range(0, n, 32):
            batch = self.get_frames(np.arange(start, min(n, start + 32)))
            yield from batch

    # ---- keyframes only (vidlake.curate's fast candidates; cpp/keyframe_reader.h)
    def get_keyframes(
        self,
        indices: Sequence[int] | np.ndarray | None = None,
        *,
        size: tuple[int, int] | None = None,
        gray: bool = False,
        rotate: bool = False,
        color_conversion: str = "stream",
        threads: int = 1,
    ) -> tuple[np.ndarray, dict]:
        """Keyframes decoded each from its own packet alone (no other packet of the GOP is read
        or decoded): ``(frames, stats)``, frames as :meth:`get_frames` returns them (the same
        pixels), stats the decode counters of this call (``packets_decoded``,
        ``frames_decoded``, ``frames_converted``; ``fallback_frames``: keyframes the decoder
        would not emit alone, read the ordinary way). ``indices`` default to
        :attr:`keyframe_indices`; each must be a keyframe.

            >>> frames, st = r.get_keyframes(size=(64, 64))
            >>> st["packets_decoded"] == len(r.keyframe_indices)
            True
        """
        idx = np.asarray(self.keyframe_indices if indices is None else indices, dtype=np.int64).reshape(-1)
        h, w = _output_size(color_conversion, size)
        try:
            frames, produced, stats = _core.decode_keyframes(
                self._source, self._index, idx, h, w, bool(gray), bool(rotate), color_conversion == "stream",
                int(threads), self._name)
        finally:
            forward_ffmpeg_log()
        missing = np.flatnonzero(~produced)
        stats["fallback_frames"] = int(missing.size)
        if missing.size:
            frames[missing] = self.get_frames(idx[missing], size=size, gray=gray, rotate=rotate,
                                              color_conversion=color_conversion)
        return frames, stats
