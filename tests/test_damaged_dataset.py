"""A dataset from someone else is untrusted input (issue 13, part 2; docs/DESIGN.md "Threat model").

Each test damages one field of a small real dataset (commit record, table segment, a sample's
stored packet index) the way a crafted or corrupted dataset could, then loads it and reads every
sample in a subprocess (a crash or hang fails the test, not pytest). Every outcome must be a
``vidlake.VidlakeError`` that names the dataset, the sample where there is one, and the field.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from typing import TYPE_CHECKING

import pytest

import vidlake
from vidlake import _core

if TYPE_CHECKING:
    from pathlib import Path

TIMEOUT = 60
VIDEO = "stub_h264.mp4"

# Runs in a child: load, read every sample of every tensor, report the first error.
_CHILD = textwrap.dedent("""
    import json, sys, time, vidlake
    t0 = time.monotonic()
    try:
        ds = vidlake.load(sys.argv[1], read_only=True)
        for name, t in ds.tensors.items():
            for i in range(len(t)):
                t[i].numpy()
                if t.htype == "video":
                    t[i].timestamps
    except BaseException as e:
        print(json.dumps({"type": type(e).__name__, "vidlake": isinstance(e, vidlake.VidlakeError),
                          "msg": str(e), "seconds": time.monotonic() - t0}))
        sys.exit(0)
    print(json.dumps({"type": None, "seconds": time.monotonic() - t0}))
""")


def load_and_read(path: Path) -> dict:
    try:
        res = subprocess.run([sys.executable, "-c", _CHILD, str(path)], check=False, capture_output=True,
                             text=True, timeout=TIMEOUT, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {path} hung for more than {TIMEOUT} s")
    assert res.returncode == 0, f"child crashed: exit code {res.returncode}\nstderr:\n{res.stderr[-3000:]}"
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no report from child:\nstdout:\n{res.stdout}\nstderr:\n{res.stderr[-3000:]}"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, asset_path) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "ds"
    ds = vidlake.empty(str(root))
    with ds:
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
        ds.create_tensor("notes", htype="text")
        for k in range(2):
            ds.append({"videos": vidlake.read(asset_path(VIDEO)), "labels": k, "notes": f"clip {k}"})
    return root


@pytest.fixture
def ds_copy(pristine, tmp_path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(pristine, dst)
    return dst


def meta_path(root: Path) -> Path:
    return root / "dataset_meta.json"


def edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_bytes())
    change(obj)
    path.write_bytes(json.dumps(obj).encode())


def table_path(root: Path, tensor: str) -> Path:
    seg = json.loads(meta_path(root).read_bytes())["tensor_state"][tensor]["segments"][0]["id"]
    return root / tensor / "tables" / f"{seg}.json"


def edit_entry(root: Path, tensor: str, k: int, change) -> None:
    edit_json(table_path(root, tensor), lambda t: change(t["samples"][k]))


def replace_index(root: Path, k: int, change) -> None:
    """Store ``change(fields)`` of video sample k's packet index as its new index."""
    seg = json.loads(table_path(root, "videos").read_bytes())
    entry = seg["samples"][k]
    (cid, off, n), = entry["index"]
    raw = (root / "videos" / "chunks" / cid).read_bytes()[off:off + n]
    fields = _core.Index.from_bytes(raw)._fields()
    change(fields)
    data = _core.Index._bytes_from_fields(fields)
    new = uuid.uuid4().hex
    (root / "videos" / "chunks" / new).write_bytes(data)
    entry["index"] = [[new, 0, len(data)]]
    table_path(root, "videos").write_bytes(json.dumps(seg).encode())


def expect(got: dict, cls: str, *parts: str) -> None:
    assert got["type"] is not None, "the damaged dataset loaded and read without error"
    assert got["vidlake"], f"{got['type']} is not a vidlake.VidlakeError: {got['msg']}"
    assert got["type"] == cls, got
    for p in parts:
        assert p in got["msg"], f"the error does not name {p!r}: {got['msg']}"


def test_pristine_dataset_reads(pristine):
    assert load_and_read(pristine)["type"] is None


# -- the commit record -------------------------------------------------------------------------
def test_missing_tensor_state_fails_at_once(ds_copy):
    edit_json(meta_path(ds_copy), lambda m: m["tensor_state"].pop("labels"))
    got = load_and_read(ds_copy)
    expect(got, "DatasetError", str(ds_copy), "dataset_meta.json", "tensor_state['labels']")
    assert got["seconds"] < 5, f"took {got['seconds']:.1f} s (a missing field is not a missing object)"


def test_segment_without_id(ds_copy):
    edit_json(meta_path(ds_copy), lambda m: m["tensor_state"]["videos"]["segments"][0].pop("id"))
    got = load_and_read(ds_copy)
    expect(got, "DatasetError", "dataset_meta.json", "segments[0].id")
    assert got["seconds"] < 5


@pytest.mark.parametrize(("field", "value", "named"), [
    ("generation", "12", "generation"),
    ("tensors", {"videos": 1}, "tensors"),
    ("tensors", ["videos", "../../etc"], "tensors[1]"),
    ("tensor_state", [], "tensor_state"),
    ("garbage", [["x", "yesterday"]], "garbage[0]"),
    ("creds_keys", [{"name": 7}], "creds_keys[0]"),
])
def test_commit_record_field_of_the_wrong_kind(ds_copy, field, value, named):
    edit_json(meta_path(ds_copy), lambda m: m.__setitem__(field, value))
    expect(load_and_read(ds_copy), "DatasetError", "dataset_meta.json", named)


@pytest.mark.parametrize(("field", "value", "named"), [
    ("length", -1, ".length"),
    ("length", 2**70, ".length"),
    ("open_chunk", ["../x", 5], "open_chunk[0]"),
    ("open_chunk", ["c", -5], "open_chunk[1]"),
    ("segments", [{"id": "ab", "start": 1, "count": 2}], "segments[0].start"),
    ("segments", [{"id": "../../../../tmp/x", "start": 0, "count": 2}], "segments[0].id"),
])
def test_tensor_state_field_out_of_range(ds_copy, field, value, named):
    edit_json(meta_path(ds_copy), lambda m: m["tensor_state"]["videos"].__setitem__(field, value))
    expect(load_and_read(ds_copy), "DatasetError", "dataset_meta.json", named)


def test_lone_surrogate_in_a_text_field(ds_copy):
    """JSON escapes can hold text that is not UTF-8 ('\\ud800'): refused when loaded."""
    path = table_path(ds_copy, "videos")
    path.write_bytes(path.read_bytes().replace(b'"filename":', b'"filename":"\\ud800","x":', 1))
    expect(load_and_read(ds_copy), "DatasetError", "tables", "not valid JSON")


def test_table_not_utf8(ds_copy):
    path = table_path(ds_copy, "videos")
    path.write_bytes(path.read_bytes().replace(b"stub_h264", b"stub\xffh264", 1))
    expect(load_and_read(ds_copy), "DatasetError", "videos/tables", "not valid JSON")


def test_text_sample_not_utf8(ds_copy):
    """A text sample's stored bytes are not UTF-8: a DatasetError naming the sample."""
    (cid, off, _n), = json.loads(table_path(ds_copy, "notes").read_bytes())["samples"][1]["data"]
    chunk = ds_copy / "notes" / "chunks" / cid
    raw = bytearray(chunk.read_bytes())
    raw[off] = 0xFF
    chunk.write_bytes(bytes(raw))
    expect(load_and_read(ds_copy), "DatasetError", f"{ds_copy}/notes[1]", "damaged")


# -- table entries -----------------------------------------------------------------------------
@pytest.mark.parametrize(("tensor", "change", "named"), [
    ("videos", lambda e: e.__setitem__("data", [["c", -1, 10]]), "samples[1].data[0][1]"),
    ("videos", lambda e: e.__setitem__("data", "everything"), "samples[1].data"),
    ("videos", lambda e: e.__setitem__("index", [["../../x", 0, 10]]), "samples[1].index[0][0]"),
    ("videos", lambda e: e["info"].__setitem__("shape", "big"), "samples[1].info.shape"),
    ("videos", lambda e: e.pop("info"), "samples[1].info"),
    ("labels", lambda e: e["info"].__setitem__("shape", [2**40]), "samples[1].info.shape[0]"),
    ("notes", lambda e: e["info"].__setitem__("filename", 5), "samples[1].info.filename"),
])
def test_table_entry_field_of_the_wrong_kind(ds_copy, tensor, change, named):
    edit_entry(ds_copy, tensor, 1, change)
    expect(load_and_read(ds_copy), "DatasetError", f"{tensor}/tables", named)


def test_stored_shape_must_match_the_index(ds_copy):
    edit_entry(ds_copy, "videos", 1, lambda e: e["info"].__setitem__("shape", [999, 120, 160, 3]))
    expect(load_and_read(ds_copy), "DatasetError", f"{ds_copy}/videos[1]", "info.shape", "[5, 120, 160, 3]")


def test_stored_frame_size_must_match_the_index(ds_copy):
    edit_entry(ds_copy, "videos", 0, lambda e: e["info"].__setitem__("shape", [5, 4000, 4000, 3]))
    expect(load_and_read(ds_copy), "DatasetError", f"{ds_copy}/videos[0]", "info.shape")


# -- a sample's stored packet index --------------------------------------------------------------
def test_index_with_no_frames(ds_copy):
    """Once a segfault in Index.metadata."""
    replace_index(ds_copy, 1, lambda f: f.update(frame_packet=[], frame_pts=[]))
    expect(load_and_read(ds_copy), "IndexFormatError", f"{ds_copy}/videos[1]", "'frames'")


def test_index_offset_near_2_63(ds_copy):
    """Once a wild memcpy on every read through the dataset's range source."""
    def change(f):
        p = list(f["packets"][2])
        p[3] = 2**63 - 64
        f["packets"][2] = tuple(p)
    replace_index(ds_copy, 0, change)
    expect(load_and_read(ds_copy), "IndexFormatError", f"{ds_copy}/videos[0]", "packets[2].offset")


def test_index_codec_parameters(ds_copy):
    replace_index(ds_copy, 0, lambda f: f.update(video_delay=40))
    expect(load_and_read(ds_copy), "IndexFormatError", f"{ds_copy}/videos[0]", "video_delay")


def test_index_of_a_bigger_file(ds_copy):
    """The index claims a longer file than the sample's bytes (its packets fit the claim)."""
    replace_index(ds_copy, 1, lambda f: f.update(source_size=f["source_size"] + 4096))
    expect(load_and_read(ds_copy), "DatasetError", f"{ds_copy}/videos[1]", "'data'", "describes a file of")


def test_index_past_the_sample_bytes(ds_copy):
    """Packets past the end of the sample, with a source_size that agrees with them."""
    def change(f):
        p = list(f["packets"][-1])
        p[3] = f["source_size"] + 100
        f["packets"][-1] = tuple(p)
        f["source_size"] += 100 + p[4]
    replace_index(ds_copy, 1, change)
    expect(load_and_read(ds_copy), "DatasetError", f"{ds_copy}/videos[1]", "'data'")
