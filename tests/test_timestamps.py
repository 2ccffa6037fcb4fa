"""Timestamps are FFmpeg's best-effort timestamps (docs/DESIGN.md, "Timestamps").

``r.timestamps`` / ``r.index.pts`` must equal, frame for frame, what ffprobe prints as
``best_effort_timestamp`` for a plain sequential decode (what torchcodec reports too): on every
asset, and on synthetic MPEG-TS / MPEG-PS files whose first video PES carries no PTS.  Where
FFmpeg gives a frame no timestamp at all, vidlake keeps the frame packet's container pts (the one
case among the assets: the last picture of matrixbench_mpeg2.lq1.mpg, drained at the end), which
PyAV's ``frame.time`` reports too.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import assets
import numpy as np
import oracle
import pytest

import vidlake


def ffprobe_best_effort(path, stream_index: int) -> tuple[list, float]:
    """(best_effort_timestamp per decoded frame, None where FFmpeg has none; time base)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", str(stream_index), "-show_entries",
         "frame=best_effort_timestamp:stream=time_base", "-of", "json", str(path)],
        capture_output=True, text=True, check=True).stdout
    d = json.loads(out)
    num, den = (int(x) for x in d["streams"][0]["time_base"].split("/"))
    return [f.get("best_effort_timestamp") for f in d["frames"]], num / den


def check_against_ffprobe(path, stream_index: int = 0) -> vidlake.VideoReader:
    r = vidlake.VideoReader(str(path))
    want, tb = ffprobe_best_effort(path, r.stream_index if stream_index is None else stream_index)
    pts = np.asarray(r.index.pts)
    assert len(pts) == len(want), f"{path}: {len(pts)} frames, ffprobe decodes {len(want)}"
    missing = [i for i, w in enumerate(want) if w is None]
    bad = [i for i, w in enumerate(want) if w is not None and int(pts[i]) != w]
    assert not bad, (f"{Path(path).name}: {len(bad)} timestamps differ from ffprobe's best_effort_timestamp, "
                     f"first at frame {bad[0]}: {int(pts[bad[0]])} != {want[bad[0]]}")
    if missing:
        # The documented rule: where FFmpeg has no timestamp (frames drained at the end), the frame
        # keeps its packet's container pts, which PyAV reports as frame.time; without one, the
        # previous frame's timestamp plus the nominal frame duration (frame 0: the stream's start).
        times = oracle.info(str(path)).times
        for i in missing:
            if r.metadata["pts_from_container"]:
                assert np.isfinite(times[i]), f"{Path(path).name}: frame {i} has no PyAV time"
                assert r.timestamps[i] == pytest.approx(times[i], abs=1e-9), (
                    f"{Path(path).name}: frame {i} has no best-effort timestamp; {r.timestamps[i]} != PyAV {times[i]}")
            elif i == 0:
                assert r.timestamps[0] == pytest.approx(r.metadata["start_time"], abs=1e-9)
            else:
                assert r.timestamps[i] - r.timestamps[i - 1] == pytest.approx(1 / r.metadata["fps"]), (
                    f"{Path(path).name}: frame {i} has no best-effort timestamp and is not one frame after {i - 1}")
    np.testing.assert_allclose(r.timestamps, pts * tb, rtol=0, atol=1e-12)
    return r


@pytest.mark.parametrize("asset", assets.READABLE, ids=str)
def test_timestamps_are_ffprobe_best_effort(asset, asset_path):
    check_against_ffprobe(asset_path(asset), asset.stream_index)


def test_index_bytes_keep_timestamps(asset_path):
    path = asset_path(assets.get("sampleavi.avi"))
    r = vidlake.VideoReader(path)
    again = vidlake.VideoReader(path, index=r.index.to_bytes())
    np.testing.assert_array_equal(again.timestamps, r.timestamps)


# ---------------------------------------------------------------------------------------------
# MPEG-TS / MPEG-PS whose first video PES has no PTS (nor DTS)


def _strip_first_pes_pts_ts(data: bytearray) -> int:
    """Turn the PTS/DTS of the first video PES of a TS into stuffing; returns its PID."""
    for off in range(0, len(data) - 188 + 1, 188):
        pkt = data[off:off + 188]
        assert pkt[0] == 0x47
        if not pkt[1] & 0x40:                       # payload_unit_start_indicator
            continue
        pid = ((pkt[1] & 0x1F) << 8) | pkt[2]
        afc = (pkt[3] >> 4) & 3
        p = 4 + (1 + pkt[4] if afc in (2, 3) else 0)
        if pkt[p:p + 3] != b"\x00\x00\x01" or not 0xE0 <= pkt[p + 3] <= 0xEF:
            continue                                # not a video PES
        _stuff_pes_header(data, off + p)
        return pid
    raise AssertionError("no video PES found")


def _stuff_pes_header(data: bytearray, pes: int) -> None:
    flags = data[pes + 7]
    assert flags >> 6 in (2, 3), "the first video PES should carry a PTS"
    n = 5 if flags >> 6 == 2 else 10
    data[pes + 7] = flags & 0x3F                    # PTS_DTS_flags = 00
    for k in range(n):                              # the header keeps its length: stuffing bytes
        data[pes + 9 + k] = 0xFF


def _strip_first_pes_pts_ps(data: bytearray) -> None:
    """The same for the first video PES of an MPEG-PS (MPEG-2 PES syntax)."""
    i = 0
    while True:
        i = data.index(b"\x00\x00\x01", i)
        sid = data[i + 3]
        if 0xE0 <= sid <= 0xEF and data[i + 6] >> 6 == 2:
            _stuff_pes_header(data, i)
            return
        i += 3


def _make(tmp_path: Path, name: str, codec_args: list[str], fmt: str) -> Path:
    src = tmp_path / f"src_{name}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2",
                    *codec_args, "-f", fmt, str(src)], check=True)
    data = bytearray(src.read_bytes())
    if fmt == "mpegts":
        _strip_first_pes_pts_ts(data)
    else:
        _strip_first_pes_pts_ps(data)
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


# (encoder arguments, muxer, whether the demuxer reports the first packet without pts: for MPEG-2
# the parser restores it from the stream's timing, so only the timestamps are compared there)
CASES = {
    "h264_bframes_nopts.ts": (["-c:v", "libx264", "-bf", "2", "-g", "12", "-pix_fmt", "yuv420p"], "mpegts", True),
    "h264_bframes_nopts.mpg": (["-c:v", "libx264", "-bf", "2", "-g", "12", "-pix_fmt", "yuv420p"], "vob", True),
    "mpeg2_bframes_nopts.ts": (["-c:v", "mpeg2video", "-bf", "2", "-g", "12"], "mpegts", False),
    "mpeg2_bframes_nopts.mpg": (["-c:v", "mpeg2video", "-bf", "2", "-g", "12"], "vob", False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_pes_without_pts(tmp_path, name):
    args, fmt, no_pts = CASES[name]
    path = _make(tmp_path, name, args, fmt)
    first = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts",
                            "-read_intervals", "%+#1", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=True).stdout.split()
    if no_pts:
        assert first, "ffprobe listed no video packet"
        assert first[0].startswith("N/A"), f"the first video packet still has a pts: {first}"
    r = check_against_ffprobe(path)
    info = oracle.info(str(path))
    assert len(r) == info.num_frames
    n = len(r)
    for i in [0, 1, 2, n // 2, n - 1, 5, 3]:
        oracle.assert_frames_equal(r[i], oracle.frames(str(path), [i])[i], f"{name} frame {i}")
