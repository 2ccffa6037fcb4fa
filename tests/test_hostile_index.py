"""A stored packet index is untrusted input (issue 13, part 2; docs/DESIGN.md "Threat model").

Each crafted index below once crashed, hung or corrupted the process, or got past loading into
the planner or libavcodec. Now each is refused when it is loaded, with an
``IndexFormatError`` naming the field. Loading and reading run in a subprocess with a
timeout, so a regression fails its test instead of killing pytest.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import assets
import pytest

import vidlake
from vidlake import _core

TIMEOUT = 60
H264 = "stub_h264.mp4"                 # 5 frames, B-frames
MPEG2 = "matrixbench_mpeg2.lq1.mpg"    # the heap corruption was on MPEG-2

# Runs in a child: open with the given index bytes, read first and last frame, report.
_CHILD = textwrap.dedent("""
    import json, sys, vidlake
    path, index = sys.argv[1], bytes.fromhex(sys.stdin.read())
    try:
        r = vidlake.VideoReader(path, index=index, name="crafted")
        n = len(r)
        r.metadata
        r.get_frames([0, n - 1])
    except BaseException as e:
        print(json.dumps({"type": type(e).__name__, "vidlake": isinstance(e, vidlake.VidlakeError),
                          "msg": str(e)}))
        sys.exit(0)
    print(json.dumps({"type": None, "len": n}))
""")


def run_child(path: str, index: bytes) -> dict:
    try:
        res = subprocess.run([sys.executable, "-c", _CHILD, path], input=index.hex(), check=False,
                             capture_output=True, text=True, timeout=TIMEOUT,
                             env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading a crafted index of {path} hung for more than {TIMEOUT} s")
    assert res.returncode == 0, f"child crashed: exit code {res.returncode}\nstderr:\n{res.stderr[-3000:]}"
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no report from child:\nstdout:\n{res.stdout}\nstderr:\n{res.stderr[-3000:]}"
    return json.loads(lines[-1])


def crafted(path: str, change) -> bytes:
    """The index of ``path`` with ``change(fields)`` applied, serialised as is."""
    fields = _core.Index.build(path)._fields()
    change(fields)
    return _core.Index._bytes_from_fields(fields)


def setter(**values):
    def change(f):
        f.update(values)
    return change


def packet(k: int, **values):
    cols = ("pts", "dts", "duration", "offset", "size", "flags")

    def change(f):
        p = dict(zip(cols, f["packets"][k]))
        p.update({c: (v(f, p) if callable(v) else v) for c, v in values.items()})
        f["packets"][k] = tuple(p[c] for c in cols)
    return change


def frames(packets, pts):
    def change(f):
        f["frame_packet"] = packets(f["frame_packet"])
        f["frame_pts"] = pts(f["frame_pts"])
    return change


JPEGXL_ID, WRAPPED_AVFRAME_ID, AAC_ID = 259, 135169, 86018  # FFmpeg 5.1's AVCodecID values

CASES = {
    # codec parameters that reach libavcodec
    "mpeg2_bits_per_raw_sample_255": (MPEG2, setter(bits_per_raw_sample=255), "bits_per_raw_sample"),
    "mpeg2_bits_per_raw_sample_10": (MPEG2, setter(bits_per_raw_sample=10), "bits_per_raw_sample"),
    "h264_bits_per_raw_sample_255": (H264, setter(bits_per_raw_sample=255), "bits_per_raw_sample"),
    "h264_video_delay_17": (H264, setter(video_delay=17), "video_delay"),
    "h264_video_delay_huge": (H264, setter(video_delay=2**31 - 1), "video_delay"),
    "jpegxl_over_h264": (H264, setter(codec_id=JPEGXL_ID), "codec_id"),
    "wrapped_avframe_over_h264": (H264, setter(codec_id=WRAPPED_AVFRAME_ID), "codec_id"),
    "audio_codec_id": (H264, setter(codec_id=AAC_ID), "codec_id"),
    "unknown_codec_id": (H264, setter(codec_id=999_999), "codec_id"),
    "width_negative": (H264, setter(width=-160), "width"),
    "width_huge": (H264, setter(width=1 << 20), "width"),
    "pix_fmt_unknown": (H264, setter(pix_fmt=100_000), "pix_fmt"),
    "color_space_unknown": (H264, setter(color_space=1000), "color_space"),
    "color_primaries_gap": (H264, setter(color_primaries=15), "color_primaries"),
    "color_trc_negative": (H264, setter(color_trc=-5), "color_trc"),
    "color_range_unknown": (H264, setter(color_range=7), "color_range"),
    "rotation_nan": (H264, setter(rotation=float("nan")), "rotation"),
    "num_streams_zero": (H264, setter(num_streams=0), "num_streams"),
    "stream_index_outside": (H264, setter(stream_index=5), "stream_index"),
    # counts, offsets, sizes, timestamps, orders
    "offset_near_2_63": (H264, packet(1, offset=2**63 - 100), "offset"),
    "offset_past_source": (H264, packet(4, offset=lambda f, p: f["source_size"]), "offset"),
    "size_past_source": (H264, packet(0, size=lambda f, p: f["source_size"] + 1), "size"),
    "source_size_zero": (H264, setter(source_size=0), "source_size"),
    "pts_near_2_63": (H264, packet(2, pts=2**62 + 5), "pts"),
    "no_packets": (H264, lambda f: f.update(packets=[], frame_packet=[], frame_pts=[]), "packets"),
    "no_frames": (H264, frames(lambda p: [], lambda t: []), "frames"),
    "frame_packet_twice": (H264, frames(lambda p: [p[0], p[0], *p[2:]], lambda t: t), "frames[1].packet"),
    "frame_pts_not_increasing": (H264, frames(lambda p: [p[1], p[0], *p[2:]], lambda t: [t[1], t[0], *t[2:]]),
                                 "frames[1].pts"),
    "frame_pts_not_packet_pts": (H264, frames(lambda p: p, lambda t: [t[0] + 1, *t[1:]]), "frames[0].pts"),
    # text fields
    "container_not_utf8": (H264, setter(container=b"mov,\xff\xfe"), "container"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_index_is_refused_at_load(case, asset_path):
    name, change, field = CASES[case]
    path = asset_path(name)
    data = crafted(path, change)
    got = run_child(path, data)
    assert got["type"] == "IndexFormatError", f"{case}: {got}"
    assert "packet index field '" in got["msg"], f"{case}: the error does not name a field: {got['msg']}"
    assert field in got["msg"], f"{case}: the error does not name field {field!r}: {got['msg']}"
    assert got["msg"].startswith("crafted: "), f"{case}: the error does not name the source: {got['msg']}"


def test_index_of_another_file_is_refused(asset_path):
    """A valid index whose packets lie past the end of the source it is used with."""
    big = _core.Index.build(asset_path("bikes.mp4")).to_bytes()
    with pytest.raises(vidlake.IndexFormatError, match=r"names bytes up to .* but the source holds 2660"):
        vidlake.VideoReader(asset_path(H264), index=big)


def test_truncated_index_bytes_are_refused(asset_path):
    data = _core.Index.build(asset_path(H264)).to_bytes()
    for n in range(0, len(data), 7):
        with pytest.raises(vidlake.IndexFormatError):
            _core.Index.from_bytes(data[:n])


@pytest.mark.parametrize("asset", [a for a in assets.SHARED], ids=str)
def test_every_index_the_builder_writes_is_accepted(asset, asset_path):
    """Validation refuses only what the index builder cannot write."""
    idx = _core.Index.build(asset_path(asset), -1 if asset.stream_index == 0 else asset.stream_index)
    again = _core.Index.from_bytes(idx.to_bytes(), asset.name)
    assert again.to_bytes() == idx.to_bytes()
    assert again.num_frames == asset.num_frames
