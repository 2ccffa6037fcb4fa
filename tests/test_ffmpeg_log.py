"""FFmpeg's log lines reach Python's logging (logger ``vidlake.ffmpeg``) instead of stderr.

Run in a fresh interpreter: the test oracle (PyAV) installs its own av_log callback in this
process, and libavutil has one callback per process."""
from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import video

import vidlake

SCRIPT = r"""
import logging, sys, vidlake
records = []
class H(logging.Handler):
    def emit(self, r): records.append((r.levelname, r.getMessage()))
logging.getLogger("vidlake.ffmpeg").addHandler(H())
logging.getLogger("vidlake.ffmpeg").setLevel(logging.DEBUG)
vidlake.set_ffmpeg_log_level("debug")
r = vidlake.VideoReader(sys.argv[1])
r.get_frames([0, len(r) - 1])
assert records, "no FFmpeg log line reached logging"
assert all(isinstance(m, str) and m and not m.endswith("\n") for _l, m in records)
print(len(records), sorted({l for l, _m in records}))
"""


def test_ffmpeg_lines_go_to_logging_not_stderr():
    res = subprocess.run([sys.executable, "-c", SCRIPT, video("stub_h264.mp4")], capture_output=True, text=True, check=False,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    n, levels = res.stdout.split(" ", 1)
    assert int(n) > 0
    assert "DEBUG" in levels
    assert res.stderr == "", f"FFmpeg wrote to stderr: {res.stderr[:500]}"


def test_bad_levels():
    with pytest.raises(ValueError, match="not one of"):
        vidlake.set_ffmpeg_log_level("loud")
    with pytest.raises(TypeError, match="name or an int"):
        vidlake.set_ffmpeg_log_level(2.5)
    vidlake.set_ffmpeg_log_level("error")
