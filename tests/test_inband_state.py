"""Decoder state carried in the stream survives a seek (issue 12.2, Note [Replayed in-band state]).

A decoder that starts at a keyframe has not seen what came before it.  Two cases, built here
without special files:

* x264's version SEI.  FFmpeg's H.264 decoder reads "x264 - core N" from the first access unit and,
  for N < 151, decodes 4:4:4 streams with 8x8 transforms with a workaround for an x264 bug.  A
  lossless 4:4:4 stream (8x8 transforms, B-frames, CAVLC, several GOPs) whose SEI is patched to say
  ``core 142`` therefore decodes differently sequentially and after a naive seek; vidlake must
  equal the sequential decode on every frame, whatever the access pattern.
* Parameter sets that appear only in-band (Annex B).  A raw stream whose SPS/PPS appear only before
  the first keyframe, and one whose SPS/PPS change once mid-stream (two encodes with different
  settings, concatenated; each set appears once).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import av
import numpy as np
import oracle
import pytest

import vidlake

GOP = 10


def _encode(path: Path, codec_args: list[str], fmt: str, size="96x64", seconds=2.0, rate=25, src="testsrc2"):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{src}=size={size}:rate={rate}:duration={seconds}",
                    *codec_args, "-f", fmt, str(path)], check=True)


def _sequential(path) -> list:
    """Frames of a plain one-thread sequential decode (the reference)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        return [f.to_ndarray(format="rgb24") for f in c.decode(s)]


def _naive_seek(path, keyframe_number: int) -> list:
    """What a reader that seeks to the keyframe-th keyframe and decodes on sees (PyAV's seek)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        keys = [p.pts for p in c.demux(s) if p.pts is not None and p.is_keyframe]
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        c.seek(keys[keyframe_number], stream=s, backward=True, any_frame=False)
        return [f.to_ndarray(format="rgb24") for f in c.decode(s)]


def _check_access_patterns(path, expected: list, seed: int) -> None:
    """Every frame equals the sequential decode: single random reads in several orders (fresh and
    parked states), batches, strided slices, one-thread (light) states, reads through bytes."""
    n = len(expected)
    rng = np.random.default_rng(seed)

    def check(got, i, how):
        oracle.assert_frames_equal(got, expected[i], f"{Path(path).name} {how} (frame {i})")

    for order in range(3):                               # fresh reader per order, parked states reused
        r = vidlake.VideoReader(str(path))
        assert len(r) == n
        for i in rng.permutation(n)[: min(n, 25)]:
            check(r[int(i)], int(i), f"order {order} r[{i}]")
    r = vidlake.VideoReader(str(path))
    for i in (n - 1, n // 2, 2 * GOP + 3, GOP, GOP + 1):  # backwards: every read restarts a state
        check(r[i], i, f"r[{i}]")
    batch = [int(i) for i in rng.choice(n, size=min(n, 16), replace=False)]
    for k, frame in enumerate(r.get_frames(batch + batch[:3])):
        check(frame, (batch + batch[:3])[k], "batch")
    for k, frame in zip(range(GOP + 2, n, 3), r[GOP + 2::3]):
        check(frame, k, "slice")
    one = vidlake.VideoReader(str(path), threads=1)
    for i in rng.permutation(n)[:10]:
        check(one[int(i)], int(i), f"threads=1 r[{i}]")
    fresh = vidlake.VideoReader(Path(path).read_bytes(), skip_nonref=False)
    for i in (3 * GOP + 1, GOP + 4):
        check(fresh[i], i, f"bytes, no skipping r[{i}]")
    stored = vidlake.VideoReader(str(path), index=r.index.to_bytes())
    check(stored[2 * GOP + 5], 2 * GOP + 5, "stored index")


# ---------------------------------------------------------------------------------------------
# x264's version SEI


@pytest.fixture(scope="module")
def old_x264(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("x264sei")
    path = d / "x444_core142.mp4"
    _encode(path, ["-c:v", "libx264", "-pix_fmt", "yuv444p", "-profile:v", "high444", "-g", str(GOP), "-bf", "3",
                   "-x264-params", "qp=0:8x8dct=1:cabac=0"], "mp4", size="160x120", seconds=2.0)
    data = bytearray(path.read_bytes())
    m = re.search(rb"x264 - core (\d{3}) ", data)
    assert m, "libx264 wrote no version SEI"
    data[m.start(1):m.end(1)] = b"142"                    # same length: nothing else moves
    path.write_bytes(bytes(data))
    return path


def test_x264_version_is_recorded(old_x264):
    r = vidlake.VideoReader(str(old_x264))
    assert r.metadata["x264_build"] == 142
    assert vidlake.VideoReader(str(old_x264), index=r.index.to_bytes()).metadata["x264_build"] == 142


def test_x264_version_survives_a_seek(old_x264):
    expected = _sequential(old_x264)
    assert len(expected) >= 3 * GOP
    naive = _naive_seek(old_x264, 2)
    start = len(expected) - len(naive)
    assert start == 2 * GOP
    differ = [k for k, f in enumerate(naive) if not np.array_equal(f, expected[start + k])]
    assert differ, "the patched SEI should make a naive seek differ from the sequential decode"
    _check_access_patterns(old_x264, expected, seed=142)


# ---------------------------------------------------------------------------------------------
# parameter sets only in-band (Annex B)

_PS = {"h264": (7, 8), "hevc": (32, 33, 34)}


def _nal_type(unit: bytes, codec: str) -> int:
    h = unit[unit.index(b"\x00\x00\x01") + 3]
    return (h >> 1) & 0x3F if codec == "hevc" else h & 0x1F


def _split_annexb(data: bytes) -> list:
    starts = [m.start() for m in re.finditer(b"\x00\x00\x01", data)]
    units = []
    for k, s in enumerate(starts):
        b = s - 1 if s > 0 and data[s - 1] == 0 else s
        e = starts[k + 1] if k + 1 < len(starts) else len(data)
        if k + 1 < len(starts) and data[e - 1] == 0:
            e -= 1
        units.append(data[b:e])
    return units


def _keep_each_parameter_set_once(data: bytes, codec: str) -> tuple[bytes, int]:
    """Drops every parameter-set NAL unit equal to one already seen; returns (stream, kept)."""
    seen, out = set(), []
    for u in _split_annexb(data):
        if _nal_type(u, codec) in _PS[codec]:
            body = u.lstrip(b"\x00")
            if body in seen:
                continue
            seen.add(body)
        out.append(u)
    return b"".join(out), len(seen)


def _codec_args(codec: str, variant: int) -> list[str]:
    if codec == "h264":
        extra = ["cabac=1:ref=3", "cabac=0:ref=1:8x8dct=0"][variant]
        return ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(GOP), "-bf", "2", "-x264-params", extra]
    extra = ["sao=1:amp=1", "sao=0:amp=0:weightp=0:sign-hide=0"][variant]
    return ["-c:v", "libx265", "-pix_fmt", "yuv420p", "-g", str(GOP), "-bf", "2",
            "-x265-params", f"log-level=error:keyint={GOP}:min-keyint={GOP}:scenecut=0:open-gop=0:{extra}"]


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_parameter_sets_only_before_the_first_keyframe(tmp_path, codec):
    raw = tmp_path / f"raw.{codec}"
    _encode(raw, _codec_args(codec, 0), codec, seconds=2.4)
    stripped, kept = _keep_each_parameter_set_once(raw.read_bytes(), codec)
    assert kept == len(_PS[codec])
    path = tmp_path / f"ps_once.{codec}"
    path.write_bytes(stripped)
    units = _split_annexb(stripped)
    first_vcl = next(k for k, u in enumerate(units) if _nal_type(u, codec) < (32 if codec == "hevc" else 6))
    assert all(_nal_type(u, codec) not in _PS[codec] for u in units[first_vcl:]), "parameter sets after the first picture"
    expected = _sequential(path)
    assert len(expected) >= 3 * GOP
    _check_access_patterns(path, expected, seed=7)


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_parameter_sets_changing_mid_stream(tmp_path, codec):
    parts = []
    for variant in (0, 1):
        p = tmp_path / f"part{variant}.{codec}"
        _encode(p, _codec_args(codec, variant), codec, seconds=2.4, src="testsrc2" if variant == 0 else "smptebars")
        parts.append(p.read_bytes())
    stripped, kept = _keep_each_parameter_set_once(parts[0] + parts[1], codec)
    assert kept > len(_PS[codec]), "the two encodes should differ in their parameter sets"
    path = tmp_path / f"ps_change.{codec}"
    path.write_bytes(stripped)
    expected = _sequential(path)
    r = vidlake.VideoReader(str(path))
    assert r.metadata["inband_parameter_sets"] == kept
    assert len(expected) == len(r) >= 6 * GOP
    _check_access_patterns(path, expected, seed=11)
    # the second encode's second GOP, read first: only the replayed parameter sets make it exact
    fresh = vidlake.VideoReader(str(path))
    i = len(expected) - GOP - 3
    oracle.assert_frames_equal(fresh[i], expected[i], f"{path.name} second part, frame {i}")
