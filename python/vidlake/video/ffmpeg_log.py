"""FFmpeg's own log lines go to Python's ``logging`` (logger ``vidlake.ffmpeg``), not to stderr.

    >>> import logging, vidlake
    >>> logging.getLogger("vidlake.ffmpeg").setLevel(logging.DEBUG)
    >>> vidlake.set_ffmpeg_log_level("warning")      # FFmpeg's own filter (default: "error")

The core's log callback only buffers lines (it may run on FFmpeg's worker threads and never
calls into Python, docs/DESIGN.md Note [FFmpeg log lines]); every reader call drains the buffer
into the logger afterwards, from the calling thread. At most 1000 lines are kept between two
drains; a drain that finds lines dropped says how many.
"""
from __future__ import annotations

import logging

from .. import _core

__all__ = ["FFMPEG_LEVELS", "forward_ffmpeg_log", "set_ffmpeg_log_level"]

log = logging.getLogger("vidlake.ffmpeg")

#: FFmpeg's level names -> AV_LOG_* values
FFMPEG_LEVELS = {"quiet": -8, "panic": 0, "fatal": 8, "error": 16, "warning": 24, "info": 32,
                 "verbose": 40, "debug": 48, "trace": 56}


def _python_level(av_level: int) -> int:
    if av_level <= FFMPEG_LEVELS["error"]:
        return logging.ERROR
    if av_level <= FFMPEG_LEVELS["warning"]:
        return logging.WARNING
    if av_level <= FFMPEG_LEVELS["info"]:
        return logging.INFO
    return logging.DEBUG


def set_ffmpeg_log_level(level: str | int) -> None:
    """Which of FFmpeg's messages are kept: a name of :data:`FFMPEG_LEVELS` or an AV_LOG_* int."""
    if isinstance(level, str):
        if level not in FFMPEG_LEVELS:
            raise ValueError(f"FFmpeg log level {level!r} is not one of {', '.join(FFMPEG_LEVELS)}")
        level = FFMPEG_LEVELS[level]
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"FFmpeg log level must be a name or an int, got {level!r}")
    _core.set_ffmpeg_log_level(int(level))


def forward_ffmpeg_log() -> None:
    """Hand the buffered FFmpeg lines to the ``vidlake.ffmpeg`` logger (cheap when empty)."""
    lines, dropped = _core.drain_ffmpeg_log()
    if dropped:
        log.warning("%d FFmpeg log line(s) dropped (more than 1000 between two reads)", dropped)
    for level, text in lines:
        log.log(_python_level(level), "%s", text)
