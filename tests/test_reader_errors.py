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


def _small_h264_mp4(path, *flags: str) -> bytearray:
    """The bytes of a 20-frame 64x48 H.264 MP4 (GOP 5) the ffmpeg CLI writes to `path` with `flags`."""
    import shutil
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg CLI")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=25", "-frames:v", "20", "-c:v", "libx264", "-g", "5",
                    *flags, str(path)], check=True, timeout=TIMEOUT)
    return bytearray(path.read_bytes())


def _fragmented_mp4_with_trun_count(path, count: int) -> None:
    """A fragmented MP4 (ffmpeg CLI) whose second trun box says `count` samples."""
    import struct
    data = _small_h264_mp4(path, "-movflags", "frag_keyframe+empty_moov")
    truns = [i - 4 for i in range(len(data)) if data[i:i + 4] == b"trun"]
    assert len(truns) >= 2, "ffmpeg wrote fewer than two fragments"
    # size(4) 'trun'(4) version+flags(4) sample_count(4)
    struct.pack_into(">I", data, truns[1] + 12, count)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("mode", ["auto", "tables", "checked", "demux"])
def test_trun_sample_count_beyond_its_box_is_refused_before_libavformat(tmp_path, mode):
    # libavformat sizes its index for a trun's sample count before reading the entries: a 5 KB
    # fuzzed file saying 83,886,085 samples took 2.7 GB and 6 s to open. vidlake checks every
    # trun first (Note [Table entry counts]) and names the box.
    from vidlake import _core
    path = tmp_path / "frag.mp4"
    _fragmented_mp4_with_trun_count(path, 0x05000005)
    with pytest.raises(vidlake.VideoDecodeError, match=r"frag\.mp4: damaged MP4: the trun box at offset \d+ "
                                                        r"lists 83886085 samples, more than its \d+ bytes hold"):
        _core.Index.build(str(path), -1, str(path), mode)
    report = run_child(str(path))
    assert report["is_vde"], report
    assert "trun box" in report["msg"], report


def _boxes(data, start: int, end: int):
    """(offset, size, type) of the boxes tiling data[start:end] (32-bit sizes, as ffmpeg writes)."""
    import struct
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        yield at, size, kind
        at += size


def _box_path(data, path: list[bytes]) -> list[tuple[int, int]]:
    """(offset, size) of each box along `path` from the top level (the first match at each)."""
    found = []
    start, end = 0, len(data)
    for name in path:
        for at, size, kind in _boxes(data, start, end):
            if kind == name:
                found.append((at, size))
                start, end = at + 8, at + size
                break
        else:
            raise AssertionError(f"no {name!r} box on the way to {path}")
    return found


def _insert_into(data: bytearray, path: list[bytes], at: int, box: bytes) -> None:
    """Inserts `box` `at` bytes into the body of the last box of `path`, growing every box on it."""
    import struct
    chain = _box_path(data, path)
    data[chain[-1][0] + 8 + at:chain[-1][0] + 8 + at] = box
    for offset, size in chain:
        struct.pack_into(">I", data, offset, size + len(box))


_STBL = [b"moov", b"trak", b"mdia", b"minf", b"stbl"]


def _mp4_with_b_frames(path) -> bytearray:
    """A 20-frame H.264 MP4 with B-frames (ctts) and its moov after the mdat (ffmpeg CLI)."""
    data = _small_h264_mp4(path, "-bf", "2")
    assert [k for _, _, k in _boxes(data, 0, len(data))][-1] == b"moov", "ffmpeg wrote the moov first"
    return data


def _patch_count(data: bytearray, table: bytes, count: int, field: int = 4) -> None:
    """Sets the entry count (`field` bytes into the body) of the stbl's `table` box."""
    import struct
    stbl_at, stbl_size = _box_path(data, _STBL)[-1]
    for at, _, kind in _boxes(data, stbl_at + 8, stbl_at + stbl_size):
        if kind == table:
            struct.pack_into(">I", data, at + 8 + field, count)
            return
    raise AssertionError(f"no {table!r} in the stbl")


# (box, the count's place in its body, the count, what the message says)
_HOSTILE_TABLES = [
    (b"ctts", 4, 0x08000003, r"lists 134217731 entries, more than its \d+ bytes hold"),
    (b"stsc", 4, 0x10000000, r"lists 268435456 entries, more than its \d+ bytes hold"),
    (b"stco", 4, 0x20000000, r"lists 536870912 entries, more than its \d+ bytes hold"),
    (b"stss", 4, 0x20000000, r"lists 536870912 entries, more than its \d+ bytes hold"),
    (b"stts", 4, 0x08000000, r"lists 134217728 entries, more than its \d+ bytes hold"),
    (b"stsz", 8, 0x10000000, r"lists 268435456 samples, more than its \d+ bytes hold"),
]


@pytest.mark.parametrize("mode", ["auto", "tables", "checked", "demux"])
@pytest.mark.parametrize(("table", "field", "count", "message"), _HOSTILE_TABLES, ids=[t[0].decode() for t in _HOSTILE_TABLES])
def test_table_entry_count_beyond_its_box_is_refused_before_libavformat(tmp_path, mode, table, field, count,
                                                                       message):
    # libavformat (5.1) sizes its arrays for a table's entry count before reading the entries: a
    # 1.6 KB fuzzed file whose ctts said 134,217,731 entries asked for 1.1 GB, and three such
    # arrays took 2.9 GB in CI. vidlake checks every table box first (Note [Table entry counts]).
    from vidlake import _core
    path = tmp_path / "tables.mp4"
    data = _mp4_with_b_frames(path)
    _patch_count(data, table, count, field)
    path.write_bytes(bytes(data))
    pattern = rf"tables\.mp4: damaged MP4: the {table.decode()} box at offset \d+ {message}"
    with pytest.raises(vidlake.VideoDecodeError, match=pattern):
        _core.Index.build(str(path), -1, str(path), mode)
    report = run_child(str(path))
    assert report["is_vde"], report
    assert f"{table.decode()} box" in report["msg"], report


def _hostile_ctts() -> bytes:
    import struct
    return struct.pack(">I4sII", 24, b"ctts", 0, 0x08000003) + bytes(8)


@pytest.mark.parametrize("place", ["top level", "udta in moov", "sample entry"])
def test_table_box_outside_its_stbl_is_checked_where_libavformat_parses_it(tmp_path, place):
    # The demuxer applies a table box to the last track wherever it sits in a box it parses
    # children of, the child boxes of a sample entry and the top level included; so the walk
    # enters those too. The offset named is the hostile box's own.
    import struct

    from vidlake import _core
    path = tmp_path / "placed.mp4"
    data = _mp4_with_b_frames(path)
    ctts = _hostile_ctts()
    if place == "top level":
        where = len(data)
        data += ctts
    elif place == "udta in moov":
        moov_at, moov_size = _box_path(data, [b"moov"])[0]
        where = moov_at + moov_size
        _insert_into(data, [b"moov"], moov_size - 8, struct.pack(">I4s", 8 + len(ctts), b"udta") + ctts)
        where += 8  # the ctts inside the new udta
    else:
        entry_at = _box_path(data, [*_STBL, b"stsd"])[-1][0]
        avc1_at = entry_at + 16      # stsd: header, version and flags, entry count
        assert data[avc1_at + 4:avc1_at + 8] == b"avc1"
        avc1_size = struct.unpack_from(">I", data, avc1_at)[0]
        where = avc1_at + avc1_size  # after the avcC (and any other child) of the entry
        _insert_into(data, [*_STBL, b"stsd"], avc1_at + avc1_size - (entry_at + 8), ctts)
        struct.pack_into(">I", data, avc1_at, avc1_size + len(ctts))
    path.write_bytes(bytes(data))
    with pytest.raises(vidlake.VideoDecodeError, match=rf"the ctts box at offset {where} lists 134217731 entries"):
        _core.Index.build(str(path), -1, str(path), "demux")
    with pytest.raises(vidlake.VideoDecodeError, match=rf"the ctts box at offset {where} lists 134217731 entries"):
        _core.Index.build(str(path), -1, str(path), "tables")


@pytest.mark.parametrize("mode", ["auto", "demux"])
def test_table_counts_are_checked_when_the_first_box_is_damaged_too(tmp_path, mode):
    # libavformat's probe takes a file whose ftyp type is damaged when later boxes are MP4 ones
    # (container_fuzzer: the ctts input again with the ftyp's type bytes changed); the check does
    # not depend on the first box either.
    from vidlake import _core
    path = tmp_path / "noftyp.mp4"
    data = _mp4_with_b_frames(path)
    assert data[4:8] == b"ftyp"
    data[4:8] = b"\x9b\x8byp"
    path.write_bytes(bytes(data))
    assert len(_core.Index.build(str(path), -1, str(path), mode)) == 20  # still an MP4 to libavformat
    _patch_count(data, b"ctts", 0x08000003)
    path.write_bytes(bytes(data))
    with pytest.raises(vidlake.VideoDecodeError, match=r"the ctts box at offset \d+ lists 134217731 entries"):
        _core.Index.build(str(path), -1, str(path), mode)


@pytest.mark.parametrize("mode", ["auto", "tables", "demux"])
def test_a_sample_entry_larger_than_its_stsd_is_refused(tmp_path, mode):
    # The demuxer bounds an entry's child boxes by the entry's own size: a fuzzed 1.5 KB file
    # whose avc1 entry said 4 GB made libavformat ask for 707 MB of avcC extradata.
    import struct

    from vidlake import _core
    path = tmp_path / "entry.mp4"
    data = _mp4_with_b_frames(path)
    avc1_at = _box_path(data, [*_STBL, b"stsd"])[-1][0] + 16
    assert data[avc1_at + 4:avc1_at + 8] == b"avc1"
    struct.pack_into(">I", data, avc1_at, 0xF5000088)
    path.write_bytes(bytes(data))
    with pytest.raises(vidlake.VideoDecodeError, match=rf"the avc1 box at offset {avc1_at} \(a sample entry\) says "
                                                        r"4110418056 bytes, more than the \d+ left in its stsd"):
        _core.Index.build(str(path), -1, str(path), mode)


@pytest.mark.parametrize("mode", ["auto", "demux"])
def test_a_moov_cut_by_the_end_of_the_file_is_refused_by_name(tmp_path, mode):
    # The demuxer does not cut a top-level box at the end of the file, so the boxes inside a moov
    # that says more than the file holds could claim as much; a file cut inside its moov (at the
    # end) is refused, naming the box and the bytes there are.
    from vidlake import _core
    path = tmp_path / "cut.mp4"
    data = _mp4_with_b_frames(path)
    moov_at, moov_size = _box_path(data, [b"moov"])[0]
    path.write_bytes(bytes(data[:moov_at + moov_size // 2]))
    with pytest.raises(vidlake.VideoDecodeError, match=rf"cut\.mp4: truncated or damaged MP4: the moov box at offset "
                                                        rf"{moov_at} says {moov_size} bytes, but the file ends "
                                                        rf"{moov_size // 2} bytes after its start"):
        _core.Index.build(str(path), -1, str(path), mode)


def test_tables_that_fit_still_read(tmp_path):
    # Nothing above refuses a file whose tables fit: the unpatched file reads exactly, by every mode.
    import oracle

    from vidlake import _core
    path = tmp_path / "tables.mp4"
    path.write_bytes(bytes(_mp4_with_b_frames(path)))
    for mode in ("auto", "tables", "checked", "demux"):
        assert len(_core.Index.build(str(path), -1, str(path), mode)) == 20, mode
    r = vidlake.VideoReader(str(path))
    assert len(r) == oracle.info(str(path)).num_frames == 20
    ref = oracle.frames(str(path), range(20))
    got = r.get_frames(list(range(20)))
    for i in range(20):
        np.testing.assert_array_equal(got[i], ref[i], err_msg=f"frame {i}")


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


def test_a_codec_outside_the_stored_index_list_reads_from_its_file_and_is_not_stored(tmp_path):
    # container_fuzzer found an msrle stream: the builder indexes any video codec FFmpeg decodes
    # (VideoReader reads it from its file), a stored index names only the codecs of
    # index_validate.cpp, so a dataset refuses the append by name and stays as it was.
    import shutil

    import oracle
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg CLI")
    path = tmp_path / "video1.avi"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=10", "-frames:v", "10", "-c:v", "msvideo1",
                    "-pix_fmt", "rgb555le", str(path)], check=True, timeout=TIMEOUT)
    r = vidlake.VideoReader(str(path))
    assert r.metadata["codec"] == "msvideo1"
    assert len(r) == oracle.info(str(path)).num_frames == 10
    got = r.get_frames(list(range(10)))
    ref = oracle.frames(str(path), range(10))
    for i in range(10):
        np.testing.assert_array_equal(got[i], ref[i], err_msg=f"frame {i}")
    ds = vidlake.empty(f"mem://codec-outside-{os.getpid()}")
    ds.create_tensor("videos", htype="video", sample_compression="avi")
    with pytest.raises(vidlake.SampleAppendError, match=r"cannot append '.*video1\.avi' to 'videos'.*"
                                                         r"'codec_id' is \d+ \(msvideo1\)"):
        ds.videos.append(vidlake.read(str(path)))
    assert len(ds.videos) == 0
