"""Writing video: RGB frames -> libavcodec (C++ core, no subprocess) -> mp4 / mkv / webm.

:func:`encode` writes a whole array (or an iterator of frames) to a path, a writable binary
file or memory (``dest=None``: the bytes are returned in the facts under ``"data"``);
:class:`VideoWriter` streams batches for recordings that do not fit in memory; :func:`frames`
wraps frames with their settings and timestamps for ``ds.videos.append(...)``;
:func:`reencode_bytes` re-encodes a video file's bytes to a profile (``"seek"``, ``"intra"``,
``"lerobot"`` or a dict of settings), with the source's timestamps.

    >>> import numpy as np, vidlake
    >>> rgb = np.zeros((30, 64, 64, 3), np.uint8)
    >>> vidlake.encode(rgb, "out.mp4", fps=30)["shape"]
    [30, 64, 64, 3]

Colours: YUV streams are converted from RGB with the BT.709 matrix, limited range, and tagged
so (matrix, range, primaries, transfer, in the bitstream and in the container), which is what
vidlake's default ``color_conversion="stream"`` inverts. ``lossless=True`` stores RGB planes
(FFV1 ``bgr0``, libx264rgb ``qp 0``, VP9 / HEVC ``gbrp`` lossless): a bit-exact round trip.
Timestamps given are those read back (mp4: exactly, when they are multiples of a time base
vidlake can pick -- 1/fps, ms, 1/90000 or us; mkv / webm store milliseconds).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from fractions import Fraction
from typing import Any, BinaryIO, Union

import numpy as np

from .. import _core
from ..errors import VideoEncodeError, VidlakeError
from .ffmpeg_log import forward_ffmpeg_log
from .reader import VideoReader

__all__ = [
    "CODECS",
    "REENCODE_PROFILES",
    "Frames",
    "VideoWriter",
    "available_codecs",
    "check_settings",
    "encode",
    "frames",
    "reencode_bytes",
    "resolve_profile",
]

Dest = Union[str, "os.PathLike[str]", BinaryIO, None]

#: vidlake's codec names -> FFmpeg encoders, in order of preference (the first one present)
CODECS: dict[str, tuple[str, ...]] = {
    "h264": ("libx264",),
    "hevc": ("libx265",),
    "av1": ("libsvtav1", "libaom-av1"),
    "vp9": ("libvpx-vp9",),
    "vp8": ("libvpx",),
    "ffv1": ("ffv1",),
    "mpeg2": ("mpeg2video",),
    "mpeg4": ("mpeg4",),
    "mjpeg": ("mjpeg",),
}
_ALIASES = {"h265": "hevc", "avc": "h264", "x264": "h264", "x265": "hevc", "mpeg2video": "mpeg2"}

#: the encoder of each codec for ``lossless=True`` and its RGB pixel format (bit-exact; tests
#: prove each one the system has)
LOSSLESS: dict[str, tuple[str, str]] = {
    "h264": ("libx264rgb", "bgr24"),
    "ffv1": ("ffv1", "bgr0"),
    "vp9": ("libvpx-vp9", "gbrp"),
    "hevc": ("libx265", "gbrp"),
}

#: YUV pixel formats ``lossless=True`` accepts (h264: libx264 qp 0, ffv1): 4:4:4 with 10 or more
#: bits per sample, where the BT.709 round trip of 8-bit RGB is bit-exact (8-bit 4:4:4 is not:
#: off by up to 2 levels)
LOSSLESS_YUV = ("yuv444p10le", "yuv444p12le", "yuv444p16le")

#: container name (``sample_compression`` / file suffix) -> FFmpeg muxer
MUXERS = {"mp4": "mp4", "m4v": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm"}
#: the container a codec goes into when the destination does not say
DEFAULT_CONTAINER = {"vp8": "webm", "ffv1": "mkv"}

# AVCOL_* values (libavutil/pixfmt.h; stable across FFmpeg 5-7)
_SPC_BT709, _SPC_BT470BG = 1, 5
_RANGE_MPEG, _RANGE_JPEG = 1, 2
_PRI_BT709, _TRC_BT709 = 1, 1
_PRI_UNSPEC, _TRC_UNSPEC, _SPC_UNSPEC, _SPC_RGB = 2, 2, 2, 0

#: re-encode profiles (``create_tensor(reencode=...)``, ``vidlake ingest --reencode``); sizes
#: and latencies measured by bench/encode.py (README "Writing video")
REENCODE_PROFILES: dict[str, dict[str, Any]] = {
    # short GOP, no B-frames: a random frame decodes at most gop-1 frames before it
    "seek": {"codec": "h264", "crf": 23, "gop": 10, "bframes": 0, "preset": "fast"},
    # every frame a keyframe
    "intra": {"codec": "h264", "crf": 23, "gop": 1, "bframes": 0, "preset": "fast"},
    # LeRobot's choice for its episodes: AV1, a keyframe every 2 frames, crf 30, yuv420p
    "lerobot": {"codec": "av1", "crf": 30, "gop": 2, "pix_fmt": "yuv420p"},
}

_SETTINGS = ("codec", "fps", "crf", "bitrate", "preset", "gop", "bframes", "pix_fmt", "lossless", "threads",
             "container", "options")


def available_codecs() -> dict[str, str]:
    """vidlake codec name -> the FFmpeg encoder that will be used, for the encoders the linked
    FFmpeg has.

        >>> "h264" in vidlake.video.encode.available_codecs()
        True
    """
    out = {}
    for name, encs in CODECS.items():
        for e in encs:
            if _core.has_encoder(e):
                out[name] = e
                break
    return out


def _codec_name(codec: str) -> str:
    c = str(codec).lower()
    c = _ALIASES.get(c, c)
    if c in CODECS:
        return c
    for name, encs in CODECS.items():  # an FFmpeg encoder name
        if c in encs or c == "libx264rgb":
            return "h264" if c == "libx264rgb" else name
    raise VideoEncodeError(f"unknown codec {codec!r}: use one of {', '.join(sorted(CODECS))} "
                           "(or an FFmpeg encoder name such as libx264)")


def _encoder_for(codec: str, requested: str, lossless: bool) -> tuple[str, str | None]:
    """(FFmpeg encoder, forced pix_fmt or None) for a codec."""
    if lossless:
        if codec not in LOSSLESS:
            raise VideoEncodeError(f"codec {codec!r} has no lossless mode in vidlake; use one of "
                                   f"{', '.join(sorted(LOSSLESS))}")
        enc, pf = LOSSLESS[codec]
        if not _core.has_encoder(enc):
            raise VideoEncodeError(f"lossless {codec}: the linked FFmpeg has no encoder {enc}")
        return enc, pf
    req = requested.lower()
    if req in CODECS.get(codec, ()) or req == "libx264rgb":
        if not _core.has_encoder(req):
            raise VideoEncodeError(f"the linked FFmpeg has no encoder {req}")
        return req, None
    for e in CODECS[codec]:
        if _core.has_encoder(e):
            return e, None
    raise VideoEncodeError(f"codec {codec!r}: the linked FFmpeg has none of the encoders "
                           f"{', '.join(CODECS[codec])} (check `ffmpeg -encoders`)")


def _fps_fraction(fps: Any) -> Fraction:
    try:
        f = Fraction(fps).limit_denominator(1001 * 1000) if not isinstance(fps, Fraction) else fps
    except (TypeError, ValueError, ZeroDivisionError):
        raise VideoEncodeError(f"fps must be a positive number or fraction, got {fps!r}") from None
    if not f > 0:
        raise VideoEncodeError(f"fps must be positive, got {fps!r}")
    # 29.97 -> 30000/1001 and friends
    for base in (24, 30, 48, 60, 120, 240):
        if abs(float(f) - base * 1000 / 1001) < 1e-3:
            return Fraction(base * 1000, 1001)
    return f


def _time_base_for(ts: np.ndarray, fps: Fraction) -> int:
    """The smallest denominator among 1/fps-related ones, ms, 1/90000, us, 1/1e9 in which every
    timestamp is a whole number (so that it reads back bit-equal); else microseconds."""
    cands = [fps.numerator, fps.numerator * 2, 1000, 90000, 1_000_000, 1_000_000_000]
    for den in cands:
        if den <= 0 or den > 2**31 - 1:
            continue
        p = np.round(ts * den)
        if np.all(p / den == ts) and np.all(np.diff(p) > 0):
            return int(den)
    return 1_000_000


def _settings(codec: str = "h264", *, fps: Any = 30, crf: float | None = None, bitrate: int | None = None,
              preset: str | None = None, gop: int | None = None, bframes: int | None = None,
              pix_fmt: str | None = None, lossless: bool = False, threads: int = 0,
              container: str | None = None, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validated encode settings, defaults filled in (what sample_info["encoded"] records)."""
    name = _codec_name(codec)
    enc, forced_pf = _encoder_for(name, str(codec), bool(lossless))
    if lossless and (crf is not None or bitrate is not None):
        raise VideoEncodeError("lossless=True takes no crf or bitrate")
    if crf is not None and bitrate is not None:
        raise VideoEncodeError("give crf or bitrate, not both")
    if gop is not None and (not isinstance(gop, (int, np.integer)) or gop < 1):
        raise VideoEncodeError(f"gop must be a positive int (frames between keyframes), got {gop!r}")
    if bframes is not None and (not isinstance(bframes, (int, np.integer)) or bframes < 0):
        raise VideoEncodeError(f"bframes must be a non-negative int, got {bframes!r}")
    fpsf = _fps_fraction(fps)
    if lossless and pix_fmt in LOSSLESS_YUV and name in ("h264", "ffv1"):
        # 10+ bit 4:4:4 with the BT.709 matrix gives 8-bit RGB back bit-exactly (tested)
        enc, forced_pf = ("libx264" if name == "h264" else "ffv1"), pix_fmt
    if pix_fmt is not None and forced_pf is not None and pix_fmt not in ("gbrp", "bgr0", "bgr24", "rgb24",
                                                                         *LOSSLESS_YUV):
        raise VideoEncodeError(f"lossless=True keeps RGB (pix_fmt {forced_pf}) or 10+ bit 4:4:4 "
                               f"({', '.join(LOSSLESS_YUV)}); {pix_fmt!r} would not round-trip bit-exactly")
    pf = pix_fmt or forced_pf or ("yuvj420p" if enc == "mjpeg" else "yuv420p")
    gop_given = gop is not None
    if gop is None:
        gop = 1 if name in ("mjpeg", "ffv1") and not lossless else max(1, round(float(fpsf)))  # 1 s
    return {"codec": name, "encoder": enc, "fps": fpsf, "crf": crf, "bitrate": bitrate, "preset": preset,
            "gop": int(gop), "gop_given": gop_given, "bframes": bframes, "pix_fmt": pf, "lossless": bool(lossless), "threads": int(threads),
            "container": container, "options": dict(options or {})}


def check_settings(settings: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Validate a dict of :func:`encode` settings (names and values; the encoder must exist)."""
    unknown = set(settings) - set(_SETTINGS)
    if unknown:
        raise VideoEncodeError(f"{what}: unknown settings {sorted(unknown)}; known: {', '.join(_SETTINGS)}")
    return _settings(**dict(settings))


def _core_options(s: Mapping[str, Any], width: int, height: int, tb_den: int, tb_num: int = 1) -> dict[str, Any]:
    """The C++ encoder's options for validated settings (codec-specific defaults here)."""
    enc, pf, fps = s["encoder"], s["pix_fmt"], s["fps"]
    copts: dict[str, str] = {}
    crf, preset = s["crf"], s["preset"]
    gop, bframes = s["gop"], s["bframes"]
    lossless = s["lossless"]
    bit_rate = int(s["bitrate"] or 0)
    if "qp" in s["options"]:
        bit_rate, crf = -1, None  # a constant quantiser given: no crf default (bit_rate -1: none)
    if enc in ("libx264", "libx264rgb"):
        copts["preset"] = preset or "fast"
        if lossless:
            copts["qp"] = "0"
        elif not bit_rate:
            copts["crf"] = str(23 if crf is None else crf)
        x264 = "log-level=error"
        if s.get("gop_given"):
            x264 += ":scenecut=0"  # keyframes exactly every gop frames (no extra ones at scene cuts)
        copts["x264-params"] = x264
    elif enc == "libx265":
        copts["preset"] = preset or "fast"
        params = ["log-level=error"]
        if lossless:
            params.append("lossless=1")
        elif not bit_rate:
            copts["crf"] = str(28 if crf is None else crf)
        if gop is not None:
            params.append(f"keyint={gop}:min-keyint={gop}")  # x265 ignores AVCodecContext.gop_size alone
            if gop == 1:
                params.append("no-open-gop=1")
        if bframes is not None:
            params.append(f"bframes={bframes}")
        copts["x265-params"] = ":".join(params)
    elif enc == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr otherwise (1: errors)
        copts["preset"] = str(preset if preset is not None else 10)
        if not bit_rate:
            copts["crf"] = str(35 if crf is None else crf)
    elif enc == "libaom-av1":
        copts["cpu-used"] = str(preset if preset is not None else 8)
        copts["row-mt"] = "1"
        copts["usage"] = "realtime" if not lossless else "good"
        if lossless:
            copts["lossless"] = "1"
        elif not bit_rate:
            copts["crf"] = str(30 if crf is None else crf)
    elif enc in ("libvpx-vp9", "libvpx"):
        copts["deadline"] = "realtime" if preset is None else str(preset)
        copts["cpu-used"] = "8" if enc == "libvpx-vp9" else "16"
        if lossless:
            copts["lossless"] = "1"
        elif not bit_rate:
            copts["crf"] = str((32 if enc == "libvpx-vp9" else 10) if crf is None else crf)
            if enc == "libvpx":
                bit_rate = int(width * height * float(fps))  # vp8's crf works under a bitrate cap: 1 bit/pixel
    elif enc == "ffv1":
        copts["level"] = "3"
        copts["slicecrc"] = "1"
    elif enc in ("mpeg2video", "mpeg4", "mjpeg") and not bit_rate:
        copts["qscale"] = str(3 if crf is None else crf)
    copts.update({str(k): str(v) for k, v in s["options"].items()})
    qscale = copts.pop("qscale", None)
    rgb = pf in ("gbrp", "bgr0", "bgr24", "rgb24", "gbrp10le", "gbrp12le")
    jpeg = enc == "mjpeg"
    bit_rate = max(0, bit_rate)
    o: dict[str, Any] = {
        "encoder": enc, "pix_fmt": pf, "width": width, "height": height, "tb_num": tb_num, "tb_den": tb_den,
        "fps_num": fps.numerator, "fps_den": fps.denominator, "gop": gop if gop is not None else -1,
        "max_b_frames": -1 if bframes is None else bframes, "bit_rate": bit_rate, "threads": s["threads"],
        "color_space": _SPC_RGB if rgb else (_SPC_BT470BG if jpeg else _SPC_BT709),
        "color_range": _RANGE_JPEG if (rgb or jpeg) else _RANGE_MPEG,
        "color_primaries": _PRI_BT709, "color_trc": _TRC_BT709,
        "codec_options": copts, "muxer_options": {},
    }
    if qscale is not None:
        o["qscale"] = float(qscale)
    return o


def _container_for(dest: Dest, s: Mapping[str, Any]) -> str:
    if s.get("container"):
        c = str(s["container"]).lower().lstrip(".")
    elif isinstance(dest, (str, os.PathLike)):
        c = os.path.splitext(os.fspath(dest))[1].lower().lstrip(".") or "mp4"
    else:
        c = DEFAULT_CONTAINER.get(s["codec"], "mp4")
    if c not in MUXERS:
        raise VideoEncodeError(f"cannot write a {c!r} container: use one of {', '.join(MUXERS)}")
    return c


def _as_batch(a: Any, what: str) -> np.ndarray:
    """A frame (H, W, 3) or a batch (N, H, W, 3) of uint8 RGB, C-contiguous, as a batch."""
    arr = np.asarray(a)
    if arr.dtype != np.uint8:
        raise VideoEncodeError(f"{what}: frames must be uint8 RGB, got dtype {arr.dtype} (convert with "
                               "np.clip(x * 255, 0, 255).astype(np.uint8) for floats in [0, 1])")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise VideoEncodeError(f"{what}: frames must be (N, H, W, 3) or (H, W, 3) RGB, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


class VideoWriter:
    """Streams RGB frames into a video: ``append`` batches as they come, ``close`` at the end.
    Memory stays flat (frames are encoded as they arrive; a path destination is written as it
    goes; a file object gets the bytes at close). Settings as :func:`encode`. Leaving a ``with``
    block by an exception still finishes the file with the frames appended before it.

        >>> with vidlake.VideoWriter("run.mp4", fps=25, codec="h264", gop=25) as w:
        ...     for batch in camera_batches():
        ...         w.append(batch)
        >>> w.info["shape"][0]
        1000
    """

    def __init__(self, dest: Dest, *, codec: str | None = None, fps: Any = 30, crf: float | None = None,
                 gop: int | None = None, pix_fmt: str | None = None, lossless: bool = False,
                 bitrate: int | None = None, preset: str | None = None, bframes: int | None = None,
                 threads: int = 0, container: str | None = None, options: Mapping[str, Any] | None = None,
                 time_base: Fraction | None = None, name: str | None = None) -> None:
        if codec is None:  # h264, except where the container holds only VP8 / VP9 / AV1
            c = container or ""
            if not c and isinstance(dest, (str, os.PathLike)):
                c = os.path.splitext(os.fspath(dest))[1].lstrip(".")
            codec = "vp9" if c.lower() == "webm" else "h264"
        self._settings = _settings(codec, fps=fps, crf=crf, bitrate=bitrate, preset=preset, gop=gop,
                                   bframes=bframes, pix_fmt=pix_fmt, lossless=lossless, threads=threads,
                                   container=container, options=options)
        self._container = _container_for(dest, self._settings)
        self._settings["container"] = self._container
        self._dest = dest
        self._path = os.fspath(dest) if isinstance(dest, (str, os.PathLike)) else ""
        self._name = name or self._path or "<memory>"
        self._time_base = Fraction(time_base) if time_base is not None else None
        self._enc: Any = None
        self._shape: tuple[int, int] | None = None
        self._n = 0
        self._next_pts = 0
        self._last_dur = 1
        self._closed = False
        self._opened = False  # the encoder (and a path's file) was set up
        self.info: dict[str, Any] = {}

    def _open(self, h: int, w: int, first_ts: np.ndarray | None) -> None:
        s = self._settings
        sub = Fraction(1, 1)
        if s["pix_fmt"] in ("yuv420p", "yuvj420p", "yuv420p10le", "nv12"):
            sub = Fraction(2, 1)
        if sub == 2 and (h % 2 or w % 2):
            raise VideoEncodeError(f"{self._name}: {s['pix_fmt']} (4:2:0) needs even frame sizes, got "
                                   f"{w}x{h}: crop or pad to even, or use pix_fmt='yuv444p'")
        if self._time_base is None:
            if first_ts is None:
                self._time_base = 1 / s["fps"]
            else:
                self._time_base = Fraction(1, _time_base_for(first_ts, s["fps"]))
        if s["encoder"] == "libsvtav1" and (h < 64 or w < 64) and _core.has_encoder("libaom-av1"):
            s["encoder"] = "libaom-av1"  # SVT-AV1 refuses frames under 64x64
        tb = self._time_base
        opts = _core_options(s, w, h, tb.denominator, tb.numerator)
        opts["muxer"] = MUXERS[self._container]
        self._opened = True
        try:
            self._enc = _core.VideoEncoder(opts, self._path, self._name)
        finally:
            forward_ffmpeg_log()
        self._shape = (h, w)
        self._last_dur = max(1, round(1 / (s["fps"] * tb)))

    def append(self, frames: Any, timestamps: Iterable[float] | np.ndarray | None = None) -> None:
        """Encode a batch (N, H, W, 3) or one frame (H, W, 3) of uint8 RGB; ``timestamps``:
        their presentation times in seconds (default: one frame every 1/fps)."""
        if self._closed:
            raise VideoEncodeError(f"{self._name}: the writer is closed")
        batch = _as_batch(frames, self._name)
        n = batch.shape[0]
        if n == 0:
            return
        ts = None
        if timestamps is not None:
            ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
            if ts.shape[0] != n:
                raise VideoEncodeError(f"{self._name}: {ts.shape[0]} timestamps for {n} frames")
            if not np.all(np.isfinite(ts)):
                raise VideoEncodeError(f"{self._name}: timestamps must be finite")
        h, w = int(batch.shape[1]), int(batch.shape[2])
        if self._enc is None:
            if h == 0 or w == 0:
                raise VideoEncodeError(f"{self._name}: frames of size {w}x{h}")
            self._open(h, w, ts)
        elif (h, w) != self._shape:
            raise VideoEncodeError(f"{self._name}: frame {self._n} is {w}x{h} but the video is "
                                   f"{self._shape[1]}x{self._shape[0]} (all frames need one size)")  # type: ignore[index]
        assert self._time_base is not None
        if ts is None:
            pts = self._next_pts + np.arange(n, dtype=np.int64) * self._last_dur
            dur = np.full(n, self._last_dur, np.int64)
        else:
            pts = np.round(ts / float(self._time_base)).astype(np.int64)
            d = np.diff(pts)
            dur = np.append(d, d[-1] if d.size else self._last_dur).astype(np.int64)
            if np.any(dur <= 0) or (self._n and pts[0] < self._next_pts):
                raise VideoEncodeError(f"{self._name}: timestamps must increase (frame {self._n} on); "
                                       f"time base {self._time_base}")
            self._last_dur = int(dur[-1])
        try:
            self._enc.write(batch, pts, dur)
        finally:
            forward_ffmpeg_log()
        self._n += n
        self._next_pts = int(pts[-1]) + int(dur[-1])

    def close(self) -> dict[str, Any]:
        """Flush and finish the file; returns (and keeps in ``.info``) the facts of what it wrote."""
        if self._closed:
            return self.info
        self._closed = True
        if self._enc is None:
            raise VideoEncodeError(f"{self._name}: no frames were written (a video needs at least one)")
        try:
            self._enc.finish()
        finally:
            forward_ffmpeg_log()
        data: bytes | None = None
        if not self._path:
            data = self._enc.take_bytes()
            if self._dest is not None:
                self._dest.write(data)  # type: ignore[union-attr]
        self.info = self._facts(data)
        return self.info

    def _facts(self, data: bytes | None) -> dict[str, Any]:
        src: Any = data if data is not None else self._path
        idx = _core.Index.build(src, -1, self._name)
        md = dict(idx.metadata)
        facts = dict(self._enc.facts)
        s = self._settings
        info: dict[str, Any] = {
            "shape": [int(idx.num_frames), int(md["height"]), int(md["width"]), 3],
            "fps": float(md.get("fps") or 0.0),
            "timebase": float(md["time_base"]),
            "duration": int(md.get("duration_ts") or 0),
            "format": self._container,
            "size_bytes": int(md.get("size_bytes") or 0),
            "keyframes": int(md.get("keyframes") or 0),
            "encoded": {
                "codec": s["codec"], "encoder": s["encoder"], "pix_fmt": facts.get("pix_fmt", s["pix_fmt"]),
                "fps": str(s["fps"]), "crf": s["crf"], "bitrate": s["bitrate"], "preset": s["preset"],
                "gop": s["gop"], "bframes": s["bframes"], "lossless": s["lossless"],
                "color_space": md.get("color_space"), "color_range": md.get("color_range"),
                "color_primaries": md.get("color_primaries"), "color_transfer": md.get("color_transfer"),
            },
        }
        if data is not None:
            info["data"] = data
        return info

    def _write_pts(self, batch: np.ndarray, pts: np.ndarray, all_pts: np.ndarray, n: int) -> None:
        """Append frames with pts in the writer's time base (re-encoding keeps the source's)."""
        if self._enc is None:
            self._open(int(batch.shape[1]), int(batch.shape[2]), None)
        nxt = np.searchsorted(all_pts, pts, side="right")
        dur = np.where(nxt < n, all_pts[np.minimum(nxt, n - 1)] - pts, 0)
        last = int(np.median(np.diff(all_pts))) if n > 1 else self._last_dur
        dur = np.where(dur > 0, dur, max(1, last)).astype(np.int64)
        try:
            self._enc.write(np.ascontiguousarray(batch), np.ascontiguousarray(pts, np.int64), dur)
        finally:
            forward_ffmpeg_log()
        self._n += batch.shape[0]
        self._next_pts = int(pts[-1]) + int(dur[-1])

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        elif self._enc is not None and not self._closed:
            # keep what was recorded: the frames appended before the error are finished into a
            # readable file; the error itself propagates
            with contextlib.suppress(VidlakeError):
                self.close()

    def __len__(self) -> int:
        return self._n


class Frames:
    """Frames with their encode settings and timestamps, for ``ds.videos.append`` (made by
    :func:`frames`)."""

    def __init__(self, source: Any, timestamps: Any, settings: dict[str, Any]) -> None:
        self.source = source
        self.timestamps = None if timestamps is None else np.asarray(timestamps, dtype=np.float64).reshape(-1)
        self.settings = settings

    def __repr__(self) -> str:
        shape = getattr(self.source, "shape", None)
        return f"<vidlake.Frames {shape if shape is not None else 'iterator'} {self.settings}>"


def frames(source: Any, *, fps: Any = None, timestamps: Iterable[float] | np.ndarray | None = None,
           **settings: Any) -> Frames:
    """Frames (an (N, H, W, 3) uint8 array or an iterator of frames / batches) carrying how to
    encode them (``codec``, ``crf``, ``gop``, ``pix_fmt``, ``lossless``, ... as :func:`encode`) and
    their timing (``fps`` or per-frame ``timestamps`` in seconds). Settings not given come from
    the tensor's ``encode=`` settings, then :func:`encode`'s defaults.

        >>> ds.videos.append(vidlake.frames(rgb, fps=25, crf=18))
    """
    unknown = set(settings) - set(_SETTINGS)
    if unknown:
        raise TypeError(f"vidlake.frames got unknown settings {sorted(unknown)}; known: {', '.join(_SETTINGS)}")
    if fps is not None:
        settings["fps"] = fps
    return Frames(source, timestamps, settings)


def _iter_batches(source: Any, timestamps: np.ndarray | None, what: str,
                  batch: int = 32) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(batch, its timestamps) pairs from an array or an iterator of frames / batches."""
    if isinstance(source, np.ndarray):
        arr = _as_batch(source, what)
        if timestamps is not None and timestamps.shape[0] != arr.shape[0]:
            raise VideoEncodeError(f"{what}: {timestamps.shape[0]} timestamps for {arr.shape[0]} frames")
        step = max(1, (1 << 26) // max(1, arr[0].nbytes)) if arr.shape[0] else 1
        for i in range(0, arr.shape[0], step):
            yield arr[i:i + step], None if timestamps is None else timestamps[i:i + step]
        return
    if isinstance(source, (str, bytes, os.PathLike)) or not isinstance(source, Iterable):
        raise VideoEncodeError(f"{what}: frames must be a uint8 array (N, H, W, 3) or an iterator of frames, "
                               f"got {type(source).__name__}")
    pos = 0
    pending: list[np.ndarray] = []
    count = 0
    for item in source:
        b = _as_batch(item, what)
        pending.append(b)
        count += b.shape[0]
        if count >= batch:
            out = np.concatenate(pending) if len(pending) > 1 else pending[0]
            if out.shape[1:] != pending[0].shape[1:]:
                raise VideoEncodeError(f"{what}: frames of different sizes")
            yield out, None if timestamps is None else timestamps[pos:pos + out.shape[0]]
            pos += out.shape[0]
            pending, count = [], 0
    if pending:
        shapes = {p.shape[1:] for p in pending}
        if len(shapes) > 1:
            raise VideoEncodeError(f"{what}: frame {pos} on: frames of different sizes {sorted(shapes)}")
        out = np.concatenate(pending) if len(pending) > 1 else pending[0]
        yield out, None if timestamps is None else timestamps[pos:pos + out.shape[0]]
        pos += out.shape[0]
    if timestamps is not None and pos != timestamps.shape[0]:
        raise VideoEncodeError(f"{what}: {timestamps.shape[0]} timestamps for {pos} frames")


def encode(frames: Any, dest: Dest = None, *, codec: str | None = None, fps: Any = None, crf: float | None = None,
           gop: int | None = None, pix_fmt: str | None = None, lossless: bool = False,
           timestamps: Iterable[float] | np.ndarray | None = None, bitrate: int | None = None,
           preset: str | None = None, bframes: int | None = None, threads: int = 0,
           container: str | None = None, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Encode RGB frames into a video and return the facts of what was written (``shape``, ``fps``,
    ``timebase``, ``duration``, ``format``, ``size_bytes``, ``keyframes``, ``encoded``: the
    settings used; with ``dest=None`` also ``data``: the file's bytes).

    ``frames``: an (N, H, W, 3) uint8 array or an iterator of (H, W, 3) frames / batches.
    ``dest``: a path (the suffix picks mp4 / mov / mkv / webm), a writable binary file, or None.
    ``codec``: h264 (default; vp9 for webm), hevc, av1, vp9, vp8, ffv1, mpeg2, mpeg4, mjpeg, or
    an FFmpeg encoder name. ``crf`` / ``bitrate``: quality (defaults per codec: h264 23, hevc 28, av1 35
    svt / 30 aom, vp9 32). ``gop``: frames between keyframes (default: one second of frames).
    ``bframes``: B-frames (default: the encoder's). ``pix_fmt``: default yuv420p (4:2:0 needs even
    sizes); yuv444p, yuv420p10le, ... where the encoder allows. ``lossless=True``: bit-exact RGB.
    ``timestamps``: presentation times in seconds, one per frame (else one frame every 1/fps;
    ``fps`` defaults to 30, or to the timestamps' median rate).
    ``options``: extra FFmpeg encoder options (e.g. ``{"tune": "zerolatency"}``).

        >>> facts = vidlake.encode(np.zeros((10, 32, 32, 3), np.uint8), None, lossless=True, codec="ffv1")
        >>> facts["encoded"]["pix_fmt"], len(facts["data"]) > 0
        ('bgr0', True)
    """
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.float64).reshape(-1)
    if fps is None:  # nominal rate: from the timestamps given, else 30
        d = np.diff(ts) if ts is not None and ts.size > 1 else np.zeros(0)
        fps = 1 / float(np.median(d)) if d.size and np.median(d) > 0 else 30
    what = os.fspath(dest) if isinstance(dest, (str, os.PathLike)) else "<frames>"
    w = VideoWriter(dest, codec=codec, fps=fps, crf=crf, gop=gop, pix_fmt=pix_fmt, lossless=lossless,
                    bitrate=bitrate, preset=preset, bframes=bframes, threads=threads, container=container,
                    options=options, time_base=None if ts is None else Fraction(1, _time_base_for(ts, _fps_fraction(fps))))
    try:
        for batch, bts in _iter_batches(frames, ts, what):
            w.append(batch, bts)
    except BaseException:
        w._closed = True
        w._enc = None
        if w._path and w._opened:  # a failed encode leaves no partial file behind
            with contextlib.suppress(OSError):
                os.remove(w._path)
        raise
    if len(w) == 0:
        raise VideoEncodeError(f"{what}: no frames to encode (a video needs at least one)")
    return w.close()


def encode_to_bytes(source: Any, settings: Mapping[str, Any], timestamps: Any = None,
                    container: str | None = None) -> dict[str, Any]:
    """:func:`encode` into memory with a settings mapping (the ``Frames`` / tensor path)."""
    s = dict(settings)
    if container is not None:
        s["container"] = container
    return encode(source, None, timestamps=timestamps, **s)


# -- re-encoding --------------------------------------------------------------------------
def resolve_profile(profile: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A re-encode profile name (``seek``, ``intra``, ``lerobot``; ``None`` / ``"none"``: keep
    as is) or a dict of :func:`encode` settings -> the settings dict (validated names)."""
    if profile is None or profile in ("none", "as-is", "keep"):
        return None
    if isinstance(profile, str):
        if profile not in REENCODE_PROFILES:
            raise ValueError(f"unknown re-encode profile {profile!r}: use one of "
                             f"{', '.join(REENCODE_PROFILES)}, None, or a dict of encode settings")
        return dict(REENCODE_PROFILES[profile], profile=profile)
    if isinstance(profile, Mapping):
        d = dict(profile)
        unknown = set(d) - set(_SETTINGS) - {"profile"}
        if unknown:
            raise ValueError(f"unknown re-encode settings {sorted(unknown)}; known: {', '.join(_SETTINGS)}")
        d.setdefault("profile", "custom")
        return d
    raise ValueError(f"reencode must be a profile name, a dict of settings or None, got {type(profile).__name__}")


def reencode_bytes(data: bytes | bytearray | memoryview | str | os.PathLike[str],
                   profile: str | Mapping[str, Any], *, container: str | None = None,
                   name: str | None = None, batch: int = 16) -> tuple[bytes, dict[str, Any]]:
    """Re-encode a video (its bytes or a path) to a profile; returns (the new file's bytes, facts).

    Frames are decoded with vidlake's default conversion and encoded with the source's time base
    and timestamps, so frame ``i`` of the result is shown when frame ``i`` of the source was.
    Only the video stream is kept (audio and rotation metadata are not). Pure function of its
    inputs: safe to run in worker processes.

        >>> new, info = reencode_bytes(open("clip.mp4", "rb").read(), "seek")
        >>> info["reencoded"]["profile"], info["keyframes"] >= info["shape"][0] // 10
        ('seek', True)
    """
    s = resolve_profile(profile)
    if s is None:
        raise ValueError("reencode_bytes needs a profile (seek, intra, lerobot or a dict)")
    prof = s.pop("profile", "custom")
    src_name = name or (os.fspath(data) if isinstance(data, (str, os.PathLike)) else "<bytes>")
    r = VideoReader(data if isinstance(data, (str, os.PathLike)) else bytes(data), name=src_name)
    md = r.metadata
    n, h, w = len(r), int(md["height"]), int(md["width"])
    tb = Fraction(int(md["time_base_num"]), int(md["time_base_den"]))
    pts = np.asarray(r.index.pts, dtype=np.int64)
    fps = md.get("fps") or 30
    s.setdefault("fps", fps)
    if (h % 2 or w % 2) and s.get("pix_fmt") in (None, "yuv420p"):
        s["pix_fmt"] = "yuv444p"  # 4:2:0 needs even sizes: keep every pixel instead
    cont = container or s.pop("container", None) or "mp4"
    s.pop("container", None)
    wtr = VideoWriter(None, container=cont, time_base=tb, name=src_name, **s)
    order = np.argsort(pts, kind="stable")
    if not np.all(order == np.arange(n)):
        raise VideoEncodeError(f"{src_name}: frame timestamps are not increasing; cannot re-encode")
    # durations from the pts; the last frame keeps the source's nominal frame duration
    for i in range(0, n, batch):
        idx = np.arange(i, min(n, i + batch))
        fr = r.get_frames(idx)
        wtr._write_pts(fr, pts[idx], pts, n)
    out = wtr.close()
    new = out.pop("data")
    out["reencoded"] = {"profile": prof, **{k: v for k, v in out["encoded"].items()},
                        "source_size": int(md.get("size_bytes") or 0), "source_codec": md.get("codec"),
                        "source_keyframes": int(md.get("keyframes") or 0)}
    return new, out
