"""Bad input gives clean, named errors: never a crash, a hang, or a wrong exception type.

Opening and reading each bad file runs in a subprocess with a timeout, so a segfault or an
endless loop in the core fails that test instead of killing the pytest process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import assets
import numpy as np
import pytest

import vidlake

TIMEOUT = 60

# Runs in a child: open + read, report what happened as one JSON line on stdout.
_CHILD = textwrap.dedent("""
    import json, sys, vidlake
    source = sys.argv[1]
    if sys.argv[2] == "bytes":
        with open(source, "rb") as f:
            source = f.read()
    elif sys.argv[2] == "hex":
        source = bytes.fromhex(source)
    try:
        r = vidlake.VideoReader(source)
        n = len(r)
        r[0]
        r.get_frames([0, n - 1])
    except BaseException as e:
        print(json.dumps({"type": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                          "is_vde": isinstance(e, vidlake.VideoDecodeError), "msg": str(e)}))
        sys.exit(0)
    print(json.dumps({"type": None, "len": n}))
""")


def run_child(source: str, mode: str = "path") -> dict:
    try:
        res = subprocess.run([sys.executable, "-c", _CHILD, source, mode], check=False, capture_output=True,
                             text=True, timeout=TIMEOUT, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"opening/reading {source!r} ({mode}) hung for more than {TIMEOUT} s")
    assert res.returncode == 0, (
        f"child crashed on {source!r} ({mode}): exit code {res.returncode}\nstderr:\n{res.stderr[-3000:]}")
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no report from child:\nstdout:\n{res.stdout}\nstderr:\n{res.stderr[-3000:]}"
    return json.loads(lines[-1])


@pytest.mark.parametrize("name", assets.BAD_INPUTS)
def test_bad_file_raises_named_video_decode_error(name, asset_path):
    path = asset_path(name)
    got = run_child(path)
    assert got["type"] is not None, f"{name}: opened and read without error ({got.get('len')} frames)"
    assert got["is_vde"], f"{name}: raised {got['type']} ({got['msg']!r}), expected VideoDecodeError"
    assert "VidlakeError" in got["mro"]
    assert name in got["msg"], f"{name}: error message does not name the file: {got['msg']!r}"


@pytest.mark.parametrize("name", assets.BAD_INPUTS)
def test_bad_bytes_raise_video_decode_error(name, asset_path):
    got = run_child(asset_path(name), "bytes")
    assert got["type"] is not None, f"{name} as bytes: opened and read without error"
    assert got["is_vde"], f"{name} as bytes: raised {got['type']} ({got['msg']!r}), expected VideoDecodeError"


@pytest.mark.parametrize("garbage", [
    "this is not a video at all " * 40,
    "\x00" * 4096,
    "\x00\x00\x00\x18ftypmp42",          # an mp4 signature and nothing else
    "\x00\x00\x00\x01\x67",              # an H.264 start code and a lone SPS header byte
], ids=["text", "zeros", "ftyp-only", "annexb-stub"])
def test_garbage_bytes_raise_video_decode_error(garbage):
    got = run_child(garbage.encode("latin-1").hex(), "hex")
    assert got["type"] is not None, "garbage bytes opened and read without error"
    assert got["is_vde"], f"garbage bytes raised {got['type']} ({got['msg']!r}), expected VideoDecodeError"


def test_empty_bytes_raise_video_decode_error():
    with pytest.raises(vidlake.VideoDecodeError):
        vidlake.VideoReader(b"")


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "no_such_video_here.mp4"
    with pytest.raises((FileNotFoundError, vidlake.VideoDecodeError)) as info:
        vidlake.VideoReader(str(missing))
    assert "no_such_video_here.mp4" in str(info.value) or getattr(info.value, "filename", None) == str(missing)


def test_video_decode_error_is_a_vidlake_error():
    assert issubclass(vidlake.VideoDecodeError, vidlake.VidlakeError)


@pytest.fixture(scope="module")
def reader(asset_path):
    return vidlake.VideoReader(asset_path(assets.get("base_moov_end.mp4")))


@pytest.mark.parametrize("bad", [
    lambda n: n, lambda n: n + 1, lambda n: -n - 1, lambda n: -10**9, lambda n: 10**9,
], ids=["len", "len+1", "-len-1", "-1e9", "1e9"])
def test_index_out_of_range(reader, bad):
    with pytest.raises(IndexError):
        reader[bad(len(reader))]


@pytest.mark.parametrize("indices", [[0, 10**9], [60], [-61], [3, 2, 60, 1], [2**62]],
                         ids=["0,1e9", "len", "-len-1", "mixed", "2^62"])
def test_get_frames_index_out_of_range(reader, indices):
    with pytest.raises(IndexError):
        reader.get_frames(indices)


def test_reader_still_works_after_errors(reader):
    with pytest.raises(IndexError):
        reader.get_frames([0, 10**9])
    with pytest.raises(IndexError):
        reader[len(reader)]
    frames = reader.get_frames([0, len(reader) - 1])
    assert frames.shape == (2, 240, 320, 3)
    assert np.array_equal(frames[0], reader[0])


def _mpeg2_with_colour_bytes(path, primaries: int, transfer: int, matrix: int) -> None:
    """An MPEG-2 stream whose sequence display extension carries the given colour bytes."""
    import shutil
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg CLI")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=25", "-frames:v", "12", "-c:v", "mpeg2video", "-g", "6",
                    "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
                    str(path)], check=True, timeout=TIMEOUT)
    data = bytearray(path.read_bytes())
    # 00 00 01 B5, then extension id 2 (sequence display) in the high nibble, video_format and
    # colour_description_flag = 1 in the low one, then primaries, transfer and matrix bytes.
    at = data.find(b"\x00\x00\x01\xb5\x2b")
    assert at >= 0, "ffmpeg wrote no sequence display extension"
    data[at + 5:at + 8] = bytes([primaries, transfer, matrix])
    path.write_bytes(bytes(data))


def test_colour_values_ffmpeg_does_not_name_read_as_unspecified(tmp_path):
    # A fuzzed file (CI, container_fuzzer) had colour matrix 200 in an MPEG-2 sequence header:
    # FFmpeg's MPEG-2 decoder copies it unchecked, and reading it as the C++ enum was undefined
    # behaviour (UBSan in the ASan suite). Now such a value is "unspecified", as FFmpeg's H.264
    # and HEVC parsers make it, and the frames are those of a sequential decode.
    import oracle
    path = tmp_path / "colour200.m2v"
    _mpeg2_with_colour_bytes(path, 201, 202, 200)
    report = run_child(str(path))
    assert report["type"] is None, report
    r = vidlake.VideoReader(str(path))
    md = r.metadata
    # "unknown" is FFmpeg's name of the unspecified value (ffprobe prints the same).
    assert (md["color_space"], md["color_primaries"], md["color_transfer"]) == ("unknown",) * 3, md
    n = len(r)
    assert n == report["len"] == oracle.info(str(path)).num_frames
    got = r.get_frames(list(range(n)))
    ref = oracle.frames(str(path), range(n))
    for i in range(n):
        np.testing.assert_array_equal(got[i], ref[i], err_msg=f"frame {i}")


def _fragmented_mp4_with_trun_count(path, count: int) -> None:
    """A fragmented MP4 (ffmpeg CLI) whose second trun box says `count` samples."""
    import shutil
    import struct
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg CLI")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=25", "-frames:v", "20", "-c:v", "libx264", "-g", "5",
                    "-movflags", "frag_keyframe+empty_moov", str(path)], check=True, timeout=TIMEOUT)
    data = bytearray(path.read_bytes())
    truns = [i - 4 for i in range(len(data)) if data[i:i + 4] == b"trun"]
    assert len(truns) >= 2, "ffmpeg wrote fewer than two fragments"
    # size(4) 'trun'(4) version+flags(4) sample_count(4)
    struct.pack_into(">I", data, truns[1] + 12, count)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("mode", ["auto", "tables", "checked", "demux"])
def test_trun_sample_count_beyond_its_box_is_refused_before_libavformat(tmp_path, mode):
    # libavformat sizes its index for a trun's sample count before reading the entries: a 5 KB
    # fuzzed file saying 83,886,085 samples took 2.7 GB and 6 s to open. vidlake checks every
    # trun first (Note [Fragment sample counts]) and names the box.
    from vidlake import _core
    path = tmp_path / "frag.mp4"
    _fragmented_mp4_with_trun_count(path, 0x05000005)
    with pytest.raises(vidlake.VideoDecodeError, match=r"frag\.mp4: damaged MP4: the trun box at offset \d+ "
                                                        r"lists 83886085 samples, more than its \d+ bytes hold"):
        _core.Index.build(str(path), -1, str(path), mode)
    report = run_child(str(path))
    assert report["is_vde"], report
    assert "trun box" in report["msg"], report


def test_trun_sample_counts_that_fit_still_read(tmp_path):
    # The check refuses only counts the box cannot hold: the same file unpatched reads exactly.
    import oracle
    path = tmp_path / "frag.mp4"
    _fragmented_mp4_with_trun_count(path, 5)   # what ffmpeg wrote (-g 5): unchanged
    r = vidlake.VideoReader(str(path))
    assert len(r) == oracle.info(str(path)).num_frames == 20
    ref = oracle.frames(str(path), [0, 7, 19])
    for i in (0, 7, 19):
        np.testing.assert_array_equal(r[i], ref[i], err_msg=f"frame {i}")
