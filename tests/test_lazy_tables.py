"""Table segments are read lazily (format 1.2, docs/DESIGN.md "Loading large datasets"): loading
reads no segment, ``len`` and ``shape`` come from the commit record's summaries, a read touches
only the segments it needs, a damaged segment fails when touched (and in ``ds.check()`` /
``vidlake check``), and datasets written before 1.2 (no summaries) still load.

Reads are counted with a provider wrapper, never timed.
"""
from __future__ import annotations

import importlib
import json
import random
import uuid
from typing import TYPE_CHECKING

import numpy as np
import pytest

import vidlake
from vidlake.cli import main as cli_main
from vidlake.format import records as fmt
from vidlake.htypes import common_shape
from vidlake.storage import get_provider

if TYPE_CHECKING:
    from pathlib import Path

writer_mod = importlib.import_module("vidlake.dataset.writer")   # vidlake.dataset is also the function

ROWS = 8  # rows per segment in these tests (writers cap at 4096; readers accept any segmentation)


@pytest.fixture(autouse=True)
def small_segments(monkeypatch):
    monkeypatch.setattr(writer_mod, "MAX_SEGMENT_ROWS", ROWS)


class Counting:
    """Table-segment reads through a provider: key -> times read."""

    def __init__(self, provider) -> None:
        self.provider = provider
        self.reads: dict[str, int] = {}
        real = provider.get

        def get(key, *a, **kw):
            if "/tables/" in key:
                self.reads[key] = self.reads.get(key, 0) + 1
            return real(key, *a, **kw)
        provider.get = get

    def segments(self, tensor: str | None = None) -> int:
        return sum(1 for k in self.reads if tensor is None or k.startswith(f"{tensor}/"))


def open_counted(path: str, read_only: bool = True) -> tuple[vidlake.Dataset, Counting]:
    p = get_provider(path, read_only=read_only)
    c = Counting(p)
    return vidlake.Dataset(p, path, read_only=read_only), c


def value(t, i):
    v = t[i].numpy()
    return v.tolist() if isinstance(v, np.ndarray) else v


def build(path: str, n: int, seed: int = 0) -> vidlake.Dataset:
    rng = np.random.default_rng(seed)
    ds = vidlake.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("reference_id", htype="text")
        ds.create_tensor("arr", htype="generic", dtype="int32")
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b", "c"])
    step = 13
    for start in range(0, n, step):  # several commits: binary-counter merges, full segments
        with ds:
            for k in range(start, min(n, start + step)):
                shape = (2, 3) if k % 5 else (int(rng.integers(1, 4)), 3)
                ds.append({"reference_id": f"r{k}", "arr": np.full(shape, k, np.int32), "labels": k % 3})
    return ds


def eager_shape(t) -> tuple:
    shapes = [t.entry(i)["info"]["shape"] for i in range(len(t))]
    return (len(shapes), *common_shape(shapes))


def test_load_len_and_shape_read_no_segment(tmp_path):
    path = str(tmp_path / "ds")
    build(path, 100)
    ds, c = open_counted(path)
    assert c.segments() == 0
    assert len(ds) == 100
    assert len(ds.arr) == 100
    assert ds.arr.shape == (100, None, 3)
    assert ds.labels.shape == (100, 1)
    assert c.segments() == 0
    segs = ds._meta["tensor_state"]["arr"]["segments"]
    assert len(segs) >= 100 // ROWS
    assert all(s["count"] <= ROWS for s in segs)
    assert all("shape" in s for s in segs)
    # the summaries agree with the rows
    assert ds.arr.shape == eager_shape(ds.arr)


def test_a_read_touches_only_its_segment(tmp_path):
    path = str(tmp_path / "ds")
    build(path, 100)
    ds, c = open_counted(path)
    assert value(ds.arr, 71) == np.full((2, 3), 71).tolist()
    assert c.segments("arr") == 1
    assert c.segments() == 1
    seg = ds._meta["tensor_state"]["arr"]["segments"][ds.arr._entries.segment_of(71)]
    assert c.reads == {fmt.table_key("arr", seg["id"]): 1}
    assert seg["start"] <= 71 < seg["start"] + seg["count"]
    # rows of the same segment: no new read; another segment: one more
    for i in range(seg["start"], seg["start"] + seg["count"]):
        ds.arr[i].numpy()
    assert c.segments() == 1
    ds.labels[3].numpy()
    assert c.segments() == 2
    assert c.segments("labels") == 1
    assert ds.arr._entries.loaded_segments() == 1
    # sample_info and a view of a few rows touch their segments only
    ds.arr[[0, 99]].numpy(aslist=True)
    assert c.segments("arr") == 3


def test_append_reads_no_full_segment(tmp_path):
    """Appending to a big tensor reads only the small tail segments it merges (at most
    MAX_SEGMENT_ROWS rows), never the full ones: append stays O(1) in the tensor's length."""
    path = str(tmp_path / "ds")
    build(path, 100)
    ds, c = open_counted(path, read_only=False)
    full = {fmt.table_key(name, s["id"]) for name in ds.tensors
            for s in ds._meta["tensor_state"][name]["segments"] if s["count"] == ROWS}
    for k in range(20):
        ds.append({"reference_id": f"new{k}", "arr": np.zeros((2, 3), np.int32), "labels": 0})
    assert not set(c.reads) & full
    assert sum(c.reads.values()) <= 20 * 3 * 2
    d = vidlake.load(path, read_only=True)
    assert len(d) == 120
    assert value(d.arr, 119) == np.zeros((2, 3)).tolist()
    assert d.reference_id[100].text() == "new0"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lazy_equals_eager_under_random_appends_and_upserts(tmp_path, seed):
    rng = random.Random(seed)
    path = f"mem://lazy-{uuid.uuid4().hex}" if seed % 2 else str(tmp_path / "ds")
    ds = vidlake.empty(path)
    with ds:
        ds.create_tensor("reference_id", htype="text")
        ds.create_tensor("arr", htype="generic", dtype="int32")
        ds.create_tensor("meta", htype="json")
    model: list[tuple[str, list, dict]] = []
    for _round in range(12):
        op = rng.random()
        if op < 0.5 or not model:  # append a batch in one commit
            with ds:
                for _ in range(rng.randint(1, 20)):
                    k = len(model)
                    shape = rng.choice([(2,), (2,), (rng.randint(1, 3),)])
                    row = (f"r{k}", np.full(shape, k, np.int32).tolist(), {"k": k})
                    ds.append({"reference_id": row[0], "arr": np.asarray(row[1], np.int32), "meta": row[2]})
                    model.append(row)
        else:  # upsert a few existing rows (and maybe a new one)
            rows = []
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(model))
                new = (model[i][0], [i, i, i, 7][:rng.randint(1, 4)], {"k": i, "v": rng.random()})
                rows.append(new)
            placed = ds.upsert([{"reference_id": r[0], "arr": np.asarray(r[1], np.int32), "meta": r[2]}
                                for r in rows])
            for r, i in zip(rows, placed):
                model[i] = r
        # a fresh lazy load, read in random order, equals the model and an eager load
        lazy = vidlake.load(path, read_only=True)
        eager = vidlake.load(path, read_only=True)
        eager.load_tables()
        assert len(lazy) == len(model)
        assert lazy.arr.shape == eager.arr.shape == eager_shape(eager.arr)
        order = list(range(len(model)))
        rng.shuffle(order)
        for i in order:
            assert lazy.reference_id[i].text() == model[i][0]
            assert value(lazy.arr, i) == model[i][1]
            assert lazy.meta[i].data()["value"] == model[i][2]
            for name in lazy.tensors:
                assert lazy[name].entry(i) == eager[name].entry(i)
        assert lazy.check() == {name: len(model) for name in lazy.tensors}
        # the writing object (its tables partly in memory) agrees too
        assert ds.arr.shape == lazy.arr.shape
        assert [value(ds.arr, i) for i in range(len(model))] == [m[1] for m in model]


def damage_segment(root: Path, tensor: str, k: int, change) -> str:
    meta = json.loads((root / "dataset_meta.json").read_bytes())
    seg = meta["tensor_state"][tensor]["segments"][k]
    path = root / tensor / "tables" / f"{seg['id']}.json"
    path.write_bytes(change(path.read_bytes()))
    return fmt.table_key(tensor, seg["id"])


def test_damaged_segment_fails_when_touched_and_in_check(tmp_path, capsys):
    root = tmp_path / "ds"
    build(str(root), 60)
    key = damage_segment(root, "arr", 2, lambda raw: raw[: len(raw) // 2])
    ds = vidlake.load(str(root), read_only=True)        # no segment read: loads
    assert ds.arr.shape == (60, None, 3)                 # from the summaries
    seg = ds._meta["tensor_state"]["arr"]["segments"][2]
    assert value(ds.arr, 1) == np.full((2, 3), 1).tolist()  # other segments read fine
    for _ in range(2):  # every touch fails, naming the segment (nothing half-loaded is kept)
        with pytest.raises(vidlake.DatasetError, match=f"{key}.*not valid JSON"):
            ds.arr[seg["start"]].numpy()
    with pytest.raises(vidlake.DatasetError, match=key):
        vidlake.load(str(root), read_only=True).check()
    assert cli_main(["check", str(root)]) == 1
    assert key in capsys.readouterr().err
    # an intact dataset checks fine
    good = tmp_path / "good"
    build(str(good), 30)
    assert cli_main(["check", str(good)]) == 0
    assert "ok (format 1.2" in capsys.readouterr().out


def test_check_rereads_segments_already_in_memory(tmp_path):
    root = tmp_path / "ds"
    build(str(root), 30)
    ds = vidlake.load(str(root), read_only=True)
    ds.load_tables()
    damage_segment(root, "labels", 0, lambda raw: raw.replace(b'"shape":[1]', b'"shape":"x"', 1))
    assert ds.labels[0].numpy().tolist() == [0]          # the snapshot in memory
    with pytest.raises(vidlake.DatasetError, match=r"labels/tables/.*samples\[0\]\.info\.shape"):
        ds.check()


def test_a_lying_summary_is_damage(tmp_path):
    root = tmp_path / "ds"
    build(str(root), 30)
    meta = json.loads((root / "dataset_meta.json").read_bytes())
    seg = meta["tensor_state"]["arr"]["segments"][0]
    seg["shape"] = [2, 4]                               # its rows are (2, 3) and (k, 3)
    (root / "dataset_meta.json").write_bytes(json.dumps(meta).encode())
    ds = vidlake.load(str(root), read_only=True)
    assert ds.arr.shape == (30, None, None)             # what the record says, before any read
    with pytest.raises(vidlake.DatasetError, match=r"ds/arr\[\d+\] is damaged: field 'info.shape'.*summary"):
        ds.arr[0].numpy()
    with pytest.raises(vidlake.DatasetError, match="summary"):
        vidlake.load(str(root), read_only=True).check()
    # a summary of the wrong kind is refused at load, naming the field
    seg["shape"] = ["big"]
    (root / "dataset_meta.json").write_bytes(json.dumps(meta).encode())
    with pytest.raises(vidlake.DatasetError, match=r"segments\[0\]\.shape\[0\]"):
        vidlake.load(str(root), read_only=True)


def as_written_by_1_1(root: Path, keep: int = 0) -> None:
    """Turn a dataset into what a 1.1 writer wrote: no segment summaries, version 1.1 (the only
    differences of 1.2). ``keep``: leave the summaries of the first ``keep`` segments (a 1.2
    writer's segments kept by a 1.1 writer's later commits)."""
    meta = json.loads((root / "dataset_meta.json").read_bytes())
    meta["format_version"] = "1.1"
    for name, st in meta["tensor_state"].items():
        for s in st["segments"][keep:]:
            s.pop("shape", None)
            p = root / name / "tables" / f"{s['id']}.json"
            seg = json.loads(p.read_bytes())
            seg["format_version"] = "1.1"
            p.write_bytes(json.dumps(seg).encode())
    (root / "dataset_meta.json").write_bytes(json.dumps(meta).encode())


@pytest.mark.parametrize("keep", [0, 3])
def test_datasets_written_before_1_2_load_and_upgrade(tmp_path, keep):
    root = tmp_path / "ds"
    build(str(root), 50)
    want = [value(vidlake.load(str(root), read_only=True).arr, i) for i in range(50)]
    as_written_by_1_1(root, keep)
    ds, c = open_counted(str(root))
    assert ds.format_version == "1.1"
    assert c.segments() == 0
    assert len(ds) == 50
    n_segs = len(ds._meta["tensor_state"]["arr"]["segments"])
    assert ds.arr.shape == (50, None, 3)                 # reads the segments without a summary
    assert c.segments("arr") == n_segs - keep
    assert [value(ds.arr, i) for i in range(50)] == want
    # a 1.2 writer appends: the record says 1.2, new segments carry summaries, old ones are kept
    w = vidlake.load(str(root))
    w.append({"reference_id": "x", "arr": np.zeros((2, 3), np.int32), "labels": 1})
    meta = json.loads((root / "dataset_meta.json").read_bytes())
    assert meta["format_version"] == fmt.FORMAT_VERSION == "1.2"
    segs = meta["tensor_state"]["arr"]["segments"]
    assert "shape" in segs[-1]
    d = vidlake.load(str(root), read_only=True)
    assert d.arr.shape == (51, None, 3)
    assert d.check()["arr"] == 51
    assert [value(d.arr, i) for i in range(50)] == want


def test_record_of_1_2_only_adds_an_optional_field(tmp_path):
    """What a 1.1 reader needs to read a 1.2 dataset: the same keys, plus ``shape`` in
    segments, which it ignores (a reader accepts every minor of its major)."""
    root = tmp_path / "ds"
    build(str(root), 20)
    meta = json.loads((root / "dataset_meta.json").read_bytes())
    for st in meta["tensor_state"].values():
        assert {k for s in st["segments"] for k in s} == {"id", "start", "count", "shape"}
    meta["format_version"] = "3.0"
    (root / "dataset_meta.json").write_bytes(json.dumps(meta).encode())
    with pytest.raises(vidlake.DatasetError, match=r"format version 3\.0.*reads formats up to 2\.x"):
        vidlake.load(str(root))


def test_segment_replaced_by_another_writer(tmp_path, monkeypatch):
    """A reader that loaded before another writer replaced rows (and the replaced segment was
    deleted after the grace period) gets a clear error on first touching it; ``load_tables()``
    right after loading keeps a snapshot that survives."""
    root = tmp_path / "ds"
    build(str(root), 40)
    reader = vidlake.load(str(root), read_only=True)
    snapshot = vidlake.load(str(root), read_only=True)
    snapshot.load_tables()
    before = value(snapshot.arr, 1)
    monkeypatch.setattr(writer_mod, "GC_GRACE_SECONDS", -1.0)
    w = vidlake.load(str(root))
    w.upsert({"reference_id": "r1", "arr": np.full((1, 3), -1, np.int32), "labels": 2})
    w.append({"reference_id": "z", "arr": np.zeros((2, 3), np.int32), "labels": 0})  # deletes the garbage
    with pytest.raises(vidlake.DatasetError, match=r"replaced by a newer commit.*load the dataset again"):
        reader.arr[1].numpy()
    assert value(snapshot.arr, 1) == before
    assert value(vidlake.load(str(root), read_only=True).arr, 1) == [[-1, -1, -1]]
    # a segment the current record still names that is gone: damage
    meta = json.loads((root / "dataset_meta.json").read_bytes())
    seg = meta["tensor_state"]["labels"]["segments"][0]
    (root / "labels" / "tables" / f"{seg['id']}.json").unlink()
    with pytest.raises(vidlake.DatasetError, match="is missing; the dataset is damaged"):
        vidlake.load(str(root), read_only=True).labels[0].numpy()


_VALUES = [None, 0, 1, -1, 2**31, 2**31 + 1, 2**60, True, 1.5, "", "c1", "../x", "c1\n", [], {}, [["c1", 0, 1]],
           [["c1", -1, 1]], [["c1", 0]], ["c1", 0, 1], [5, 120, 160, 3], [None, 3], {"shape": [1]},
           {"offsets": [0], "shapes": []}, {"url": "x"}]


@pytest.mark.parametrize("htype", ["video", "json", "generic", "link[video]", "sequence[bbox]", None])
def test_the_fast_entry_check_passes_only_what_the_full_check_passes(htype):
    """decode_table checks plain entries with a faster equivalent of check_entry; whatever it
    passes, check_entry passes too (what it does not pass goes to check_entry)."""
    from vidlake.format.records import _plain_entry_ok, check_entry
    base = {"data": [["c1", 0, 10]], "index": [["c1", 10, 5]],
            "info": {"shape": [5, 120, 160, 3], "filename": "a.mp4", "format": "mp4"}}
    if htype and htype.startswith("sequence"):
        base = {"data": [["c1", 0, 10]], "info": {"shape": [2, None, 4], "filename": None,
                                                  "items": {"offsets": [0, 4, 10], "shapes": [[1, 4], [0, 4]]}}}
    rng = random.Random(7)
    passed = 0
    for _ in range(3000):
        e = json.loads(json.dumps(base))
        for _k in range(rng.randint(1, 3)):  # damage one to three places
            where = rng.choice(["top", "info", "extent"])
            v = json.loads(json.dumps(rng.choice(_VALUES)))
            if where == "top":
                key = rng.choice(["data", "index", "original", "info", "link"])
                e.pop(key) if rng.random() < 0.3 and key in e else e.__setitem__(key, v)
            elif where == "info" and isinstance(e.get("info"), dict):
                items = e["info"].get("items")
                if isinstance(items, dict) and rng.random() < 0.5:  # inside a sequence's items
                    key = rng.choice(["offsets", "shapes"])
                    if isinstance(items.get(key), list) and items[key] and rng.random() < 0.7:
                        items[key][rng.randrange(len(items[key]))] = rng.choice([v, 0, 4, 10, 11, [1, 4], [-1]])
                    else:
                        items[key] = v
                else:
                    e["info"][rng.choice(["shape", "filename", "format", "items"])] = v
            elif isinstance(e.get("data"), list) and e["data"] and isinstance(e["data"][0], list) and e["data"][0]:
                e["data"][0][rng.randrange(len(e["data"][0]))] = v
        if _plain_entry_ok(e, htype or "", set()):
            passed += 1
            check_entry(e, "t.json", "samples[0]", htype)   # must not raise
    if htype == "link[video]":
        assert passed == 0          # links always take the full check
    else:
        assert passed > 50
