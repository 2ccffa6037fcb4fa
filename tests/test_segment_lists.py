"""Segment lists (format 2.0, docs/FORMAT.md "Segment lists"): the commit record names the sealed
table segments through a tree of immutable list objects, so its size does not grow with the
dataset; lists are read lazily, checked when read and by ``ds.check()``, replaced ones are
garbage like segments, and every guarantee of the commit protocol holds with them (atomic
commits, SIGKILL mid-append, two writers, upsert, compaction). Datasets of 1.0-1.2 still load
and append; a dataset that needs no list keeps writing 1.2.

The segment size, list fan-out and sealing threshold are made small here (the format does not
fix them); reads are counted through a provider wrapper, never timed.
"""
from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import vidlake
from vidlake.cli import main as cli_main
from vidlake.format import records as fmt
from vidlake.storage import get_provider

writer_mod = importlib.import_module("vidlake.dataset.writer")   # vidlake.dataset is also the function

ROWS, FANOUT, SEAL = 8, 3, 16   # rows per segment, entries per list, rows sealed at once (at least)


@pytest.fixture(autouse=True)
def small_lists(monkeypatch):
    monkeypatch.setattr(writer_mod, "MAX_SEGMENT_ROWS", ROWS)
    monkeypatch.setattr(writer_mod, "LIST_FANOUT", FANOUT)
    monkeypatch.setattr(writer_mod, "SEAL_ROWS", SEAL)


class Counting:
    """Reads through a provider: key -> times read."""

    def __init__(self, provider) -> None:
        self.reads: dict[str, int] = {}
        real = provider.get

        def get(key, *a, **kw):
            self.reads[key] = self.reads.get(key, 0) + 1
            return real(key, *a, **kw)
        provider.get = get

    def count(self, kind: str, tensor: str = "") -> int:
        return sum(n for k, n in self.reads.items() if f"/{kind}/" in k and k.startswith(tensor))


def open_counted(path: str, read_only: bool = True) -> tuple[vidlake.Dataset, Counting]:
    p = get_provider(path, read_only=read_only)
    c = Counting(p)
    return vidlake.Dataset(p, path, read_only=read_only), c


def meta_of(root) -> dict:
    return json.loads((root / "dataset_meta.json").read_bytes())


def build(path: str, n: int, step: int = 13) -> vidlake.Dataset:
    ds = vidlake.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("reference_id", htype="text")
        ds.create_tensor("arr", htype="generic", dtype="int32")
    for start in range(0, n, step):
        with ds:
            for k in range(start, min(n, start + step)):
                ds.append({"reference_id": f"r{k}", "arr": np.full((2,) if k % 7 else (3,), k, np.int32)})
    return ds


def value(t, i):
    return t[i].numpy().tolist()


def all_lists(root, tensor: str) -> list[dict]:
    """Every list descriptor of the tree(s) the record names, top down."""
    out, todo = [], list(meta_of(root)["tensor_state"][tensor].get("lists", []))
    while todo:
        d = todo.pop(0)
        out.append(d)
        obj = json.loads((root / tensor / "lists" / f"{d['id']}.json").read_bytes())
        todo += [e for e in obj["entries"] if d["level"] > 1]
    return out


# -- the record ----------------------------------------------------------------------------------
def _big(path: str, n: int, per_commit: int = 10_000) -> vidlake.Dataset:
    """A one-tensor dataset of ``n`` rows, cheaply: one stored value, its entry staged again."""
    ds = vidlake.empty(path, overwrite=True)
    ds.create_tensor("n", htype="class_label")
    ds.n.append(3)
    entry = ds.n.entry(0)
    for start in range(1, n, per_commit):
        with ds:
            for _ in range(start, min(n, start + per_commit)):
                ds.writer.stage_entry(ds.n, entry)   # (entries are never changed in place)
    return ds


@pytest.mark.timeout(300)
def test_record_size_is_flat_in_the_dataset_length(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_mod, "MAX_SEGMENT_ROWS", 64)
    monkeypatch.setattr(writer_mod, "LIST_FANOUT", 4)
    monkeypatch.setattr(writer_mod, "SEAL_ROWS", 256)
    monkeypatch.setattr(writer_mod, "GC_GRACE_SECONDS", -1.0)   # the record keeps one commit's garbage
    sizes = {}
    for n in (100, 10_000, 100_000):
        ds = _big(str(tmp_path / f"d{n}"), n)
        for _ in range(3):                 # appends of one row, as a user appends
            ds.n.append(1)
        sizes[n] = (tmp_path / f"d{n}" / "dataset_meta.json").stat().st_size
        assert len(vidlake.load(str(tmp_path / f"d{n}"), read_only=True)) == n + 3
    # all segments in the record, as before 2.0, would take ~70 bytes each: 1,560 of them at 100k
    assert sizes[100_000] - sizes[100] < 1500, sizes
    assert abs(sizes[100_000] - sizes[10_000]) < 1500, sizes
    m = meta_of(tmp_path / "d100000")
    assert m["format_version"] == "2.0"
    st = m["tensor_state"]["n"]
    assert len(st["lists"]) == 1
    assert st["lists"][0]["level"] >= 4
    assert len(st["segments"]) <= 64 // 8 + 256 // 64 + 2
    # a dataset that needed no list is still what a 1.2 reader reads
    small = meta_of(tmp_path / "d100")
    assert small["format_version"] == "1.2"
    assert "lists" not in small["tensor_state"]["n"]


def test_lists_are_read_lazily(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_mod, "MAX_SEGMENT_ROWS", 64)
    monkeypatch.setattr(writer_mod, "LIST_FANOUT", 4)
    monkeypatch.setattr(writer_mod, "SEAL_ROWS", 256)
    path = str(tmp_path / "big")
    w = _big(path, 100_000)
    for k in range(5):
        w.n.append(k % 5)                   # rows with their own values at the end
    ds, c = open_counted(path)
    assert c.count("lists") == c.count("tables") == 0
    assert len(ds) == 100_005
    assert ds.n.shape == (100_005, 1)
    assert c.count("lists") == c.count("tables") == 0   # length and shape come from the record
    root_level = ds._meta["tensor_state"]["n"]["lists"][0]["level"]
    assert int(ds.n[70_000].numpy()[0]) == 3
    assert c.count("lists") == root_level
    assert c.count("tables") == 1
    seg = ds.n._entries.segment_at(70_000)
    for i in range(seg["start"], seg["start"] + seg["count"]):  # same segment: nothing new
        ds.n[i].numpy()
    assert c.count("lists") == root_level
    assert c.count("tables") == 1
    ds.n[seg["start"] + seg["count"]].numpy()    # the next segment: it, and the lists not read yet on its path
    assert root_level <= c.count("lists") < 2 * root_level
    assert c.count("tables") == 2
    assert [int(ds.n[i].numpy()[0]) for i in range(100_000, 100_005)] == [0, 1, 2, 3, 4]
    assert max(c.reads.values()) == 1        # nothing was read twice


# -- behaviour equals a model under appends, upserts and compaction --------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_lists_equal_a_model_under_appends_upserts_and_compaction(tmp_path, seed):
    rng = random.Random(seed)
    path = f"mem://lists-{uuid.uuid4().hex}" if seed % 2 else str(tmp_path / "ds")
    ds = vidlake.empty(path)
    with ds:
        ds.create_tensor("reference_id", htype="text")
        ds.create_tensor("arr", htype="generic", dtype="int32")
    model: list[tuple[str, list]] = []
    for _round in range(18):
        op = rng.random()
        if op < 0.55 or len(model) < 30:
            with ds:
                for _ in range(rng.choice([1, 1, 3, 9, 40])):
                    k = len(model)
                    row = (f"r{k}", [k] * rng.choice([2, 2, 3]))
                    ds.append({"reference_id": row[0], "arr": np.asarray(row[1], np.int32)})
                    model.append(row)
        elif op < 0.9:
            rows = [model[rng.randrange(len(model))] for _ in range(rng.randint(1, 5))]
            rows = [(r[0], [int(r[0][1:]), -rng.randint(0, 9)]) for r in rows]
            placed = ds.upsert([{"reference_id": r[0], "arr": np.asarray(r[1], np.int32)} for r in rows])
            for r, i in zip(rows, placed):
                model[i] = r
        else:
            vidlake.jobs.compact(ds, min_dead=0.01)
        lazy = vidlake.load(path, read_only=True)
        assert len(lazy) == len(model)
        order = list(range(len(model)))
        rng.shuffle(order)
        for i in order:
            assert lazy.reference_id[i].text() == model[i][0]
            assert value(lazy.arr, i) == model[i][1]
        eager = vidlake.load(path, read_only=True)
        eager.load_tables()
        lengths = {len(m[1]) for m in model}
        assert lazy.arr.shape == eager.arr.shape == (len(model), lengths.pop() if len(lengths) == 1 else None)
        assert lazy.check() == {"reference_id": len(model), "arr": len(model)}
        assert [value(ds.arr, i) for i in range(len(model))] == [m[1] for m in model]  # the writer's view
    st = vidlake.load(path, read_only=True)._meta["tensor_state"]["arr"]
    assert st.get("lists"), "the test never made a segment list"
    assert st["lists"][0]["level"] >= 2


def test_upsert_of_a_listed_row_rewrites_its_path_only(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    build(str(root), 200)
    before = {d["id"] for d in all_lists(root, "arr")}
    ds, c = open_counted(str(root), read_only=False)
    monkeypatch.setattr(writer_mod, "GC_GRACE_SECONDS", -1.0)
    ds.upsert({"reference_id": "r5", "arr": np.asarray([-5], np.int32)})
    level = ds._meta["tensor_state"]["arr"]["lists"][0]["level"]
    assert c.count("lists", "arr/") == level      # read the path to row 5, nothing else
    after = {d["id"] for d in all_lists(root, "arr")}
    assert len(before - after) == level == len(after - before)   # one list per level replaced
    m = meta_of(root)
    assert {k for k, _t in m["garbage"] if "/lists/" in k} == {fmt.list_key("arr", i) for i in before - after}
    ds.append({"reference_id": "z", "arr": np.asarray([0, 0], np.int32)})   # deletes expired garbage
    for lid in before - after:
        assert not (root / "arr" / "lists" / f"{lid}.json").exists()
    d = vidlake.load(str(root), read_only=True)
    assert value(d.arr, 5) == [-5]
    assert value(d.arr, 6) == [6, 6]
    assert len(d) == 201
    assert d.check()["arr"] == 201


def test_compaction_moves_listed_rows(tmp_path):
    root = tmp_path / "ds"
    ds = build(str(root), 200)
    for k in (3, 50, 77, 120):          # dead bytes in the first chunks, rows below the lists
        ds.upsert({"reference_id": f"r{k}", "arr": np.asarray([-k], np.int32)})
    want = [value(ds.arr, i) for i in range(200)]
    lists_before = {d["id"] for d in all_lists(root, "arr")}
    stats = vidlake.jobs.compact(ds, min_dead=0.01)
    assert stats["arr"]["rows_moved"] > 0
    assert {d["id"] for d in all_lists(root, "arr")} != lists_before
    d = vidlake.load(str(root), read_only=True)
    assert [value(d.arr, i) for i in range(200)] == want
    assert d.check()["arr"] == 200


# -- damage ------------------------------------------------------------------------------------------
def _damage_list(root, change, tensor: str = "arr", deep: bool = False) -> str:
    lists = all_lists(root, tensor)
    d = lists[-1] if deep else lists[0]
    path = root / tensor / "lists" / f"{d['id']}.json"
    path.write_bytes(change(path.read_bytes()))
    return fmt.list_key(tensor, d["id"])


def _edit(field: str, v):
    def change(raw: bytes) -> bytes:
        obj = json.loads(raw)
        if field.startswith("entries."):
            obj["entries"][0][field.split(".", 1)[1]] = v
        else:
            obj[field] = v
        return json.dumps(obj).encode()
    return change


@pytest.mark.parametrize(("change", "named"), [
    (lambda raw: raw[: len(raw) // 2], "not valid JSON"),
    (_edit("format_version", "3.0"), "format version 3.0"),
    (_edit("format", "zarr"), "not a vidlake object"),
    (_edit("tensor", "reference_id"), "field 'tensor'"),
    (_edit("start", 3), "field 'start'"),
    (_edit("level", 1), "field 'level'"),
    (_edit("entries", []), "field 'entries'"),
    (_edit("entries", {"a": 1}), "field 'entries'"),
    (_edit("entries.id", "../../../../tmp/x"), "entries[0].id"),
    (_edit("entries.count", 10**20), "entries[0].count"),
    (_edit("entries.start", 1), "entries[0].start"),
    (_edit("entries.shape", [7, 7]), "common shape"),
])
def test_hostile_list_object_names_the_file(tmp_path, capsys, change, named):
    root = tmp_path / "ds"
    w = build(str(root), 120)
    for k in range(120, 123):
        w.append({"reference_id": f"r{k}", "arr": np.full((2,), k, np.int32)})
    key = _damage_list(root, change)
    ds = vidlake.load(str(root), read_only=True)          # loading reads no list
    assert len(ds) == 123
    assert ds.arr._entries.listed <= 120
    assert value(ds.arr, 121) == [121, 121]               # rows outside the lists read fine
    for _ in range(2):                                    # every touch fails, naming the list
        with pytest.raises(vidlake.DatasetError, match=r"is damaged|not a vidlake|format version") as e:
            ds.arr[0].numpy()
        # (a lying summary in an entry is found where it is used: in the list it describes,
        # whose entries do not agree with it; the error names that list)
        where = key if named != "common shape" else "arr/lists/"
        assert where in str(e.value), str(e.value)
        assert named in str(e.value), str(e.value)
    with pytest.raises(vidlake.DatasetError) as e:
        vidlake.load(str(root), read_only=True).check()
    assert where in str(e.value)
    assert cli_main(["check", str(root)]) == 1
    assert where in capsys.readouterr().err


def test_hostile_leaf_list_and_lying_segment_summary(tmp_path):
    root = tmp_path / "ds"
    build(str(root), 120)
    # a leaf list entry whose summary lies about its segment's rows: damage when the segment is read
    key = _damage_list(root, _edit("entries.shape", [9]), deep=True)
    ds = vidlake.load(str(root), read_only=True)
    with pytest.raises(vidlake.DatasetError) as e:
        ds.check()
    assert key in str(e.value) or "summary" in str(e.value), str(e.value)


def test_check_rereads_lists_already_in_memory(tmp_path):
    root = tmp_path / "ds"
    build(str(root), 120)
    ds = vidlake.load(str(root), read_only=True)
    ds.load_tables()
    key = _damage_list(root, lambda raw: raw[:-3])
    assert value(ds.arr, 1) == [1, 1]                     # the snapshot in memory
    with pytest.raises(vidlake.DatasetError, match=key):
        ds.check()


@pytest.mark.parametrize(("value_", "named"), [
    ([{"id": "ab", "start": 1, "count": 2, "level": 1}], "lists[0].start"),
    ([{"id": "../../x", "start": 0, "count": 2, "level": 1}], "lists[0].id"),
    ([{"id": "ab", "start": 0, "count": 2, "level": 0}], "lists[0].level"),
    ([{"id": "ab", "start": 0, "count": 2, "level": 99}], "lists[0].level"),
    ([{"id": "ab", "start": 0, "count": 2}], "lists[0].level"),
    ({"id": "ab"}, ".lists"),
    ([{"id": "ab", "start": 0, "count": 2, "level": 1, "shape": "x"}], "lists[0].shape"),
])
def test_hostile_lists_in_the_record_fail_at_load(tmp_path, value_, named):
    root = tmp_path / "ds"
    build(str(root), 120)
    m = meta_of(root)
    m["tensor_state"]["arr"]["lists"] = value_
    (root / "dataset_meta.json").write_bytes(json.dumps(m).encode())
    with pytest.raises(vidlake.DatasetError, match=r"dataset_meta\.json") as e:
        vidlake.load(str(root), read_only=True)
    assert named in str(e.value), str(e.value)


def test_missing_list_is_damage(tmp_path):
    root = tmp_path / "ds"
    build(str(root), 120)
    d = all_lists(root, "arr")[-1]
    (root / "arr" / "lists" / f"{d['id']}.json").unlink()
    ds = vidlake.load(str(root), read_only=True)
    with pytest.raises(vidlake.DatasetError, match="is missing; the dataset is damaged"):
        ds.arr[d["start"]].numpy()


def test_a_newer_commit_replaced_the_list(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    build(str(root), 120)
    reader = vidlake.load(str(root), read_only=True)
    monkeypatch.setattr(writer_mod, "GC_GRACE_SECONDS", -1.0)
    w = vidlake.load(str(root))
    w.upsert({"reference_id": "r1", "arr": np.asarray([-1], np.int32)})
    w.append({"reference_id": "z", "arr": np.zeros(2, np.int32)})        # deletes the garbage
    with pytest.raises(vidlake.DatasetError, match=r"replaced by a newer commit.*load the dataset again"):
        reader.arr[1].numpy()
    assert value(vidlake.load(str(root), read_only=True).arr, 1) == [-1]


# -- versions ----------------------------------------------------------------------------------------
def test_old_datasets_load_and_append_into_lists(tmp_path, monkeypatch):
    """A dataset written before 2.0 (here: with the writers' default sizes, so no list, and
    then stripped of 1.2's summaries as a 1.1 writer wrote it) loads, reads and appends; the
    append that first needs a list makes it 2.0, and its segments without a summary are listed
    in lists without one (the shape is read from the rows then)."""
    root = tmp_path / "ds"
    monkeypatch.setattr(writer_mod, "SEAL_ROWS", 10**9)
    build(str(root), 60)
    m = meta_of(root)
    assert m["format_version"] == "1.2"
    assert "lists" not in m["tensor_state"]["arr"]
    m["format_version"] = "1.1"
    for st in m["tensor_state"].values():
        for s in st["segments"]:
            s.pop("shape")
    (root / "dataset_meta.json").write_bytes(json.dumps(m).encode())
    want = [value(vidlake.load(str(root), read_only=True).arr, i) for i in range(60)]
    monkeypatch.setattr(writer_mod, "SEAL_ROWS", SEAL)
    w = vidlake.load(str(root))
    assert w.format_version == "1.1"
    w.append({"reference_id": "x", "arr": np.zeros(2, np.int32)})
    m = meta_of(root)
    assert m["format_version"] == "2.0"
    lists = m["tensor_state"]["arr"]["lists"]
    assert lists
    assert lists[0].get("shape") is None
    d = vidlake.load(str(root), read_only=True)
    assert d.arr.shape == (61, None)
    assert [value(d.arr, i) for i in range(60)] == want
    assert d.check()["arr"] == 61
    # a newer major is refused as before
    m["format_version"] = "3.0"
    (root / "dataset_meta.json").write_bytes(json.dumps(m).encode())
    with pytest.raises(vidlake.DatasetError, match=r"format version 3\.0.*reads formats up to 2\.x.*Upgrade"):
        vidlake.load(str(root))


# -- crashes and concurrent writers --------------------------------------------------------------
WRITER = textwrap.dedent("""
    import importlib, sys
    import numpy as np
    import vidlake
    w = importlib.import_module("vidlake.dataset.writer")
    w.MAX_SEGMENT_ROWS, w.LIST_FANOUT, w.SEAL_ROWS, w.GC_GRACE_SECONDS = 8, 3, 16, 0.05
    ds = vidlake.load(sys.argv[1])
    k = len(ds)
    while True:
        n = 1 + k % 11                    # commits of 1 .. 11 rows: merges, seals, new roots
        with ds:
            for j in range(k, k + n):
                ds.append({"reference_id": f"r{j}", "arr": np.full((2,), j, np.int32)})
        if k % 5 == 0:                    # and upserts of listed rows (paths rewritten)
            ds.upsert({"reference_id": f"r{k // 3}", "arr": np.full((2,), k // 3, np.int32)})
        k += n
        print(k, flush=True)
""")


@pytest.mark.timeout(300)
def test_sigkill_mid_append_keeps_every_committed_row(tmp_path):
    root = tmp_path / "ds"
    build(str(root), 40)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    committed = 40
    for round_, delay in enumerate([0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08]):
        proc = subprocess.Popen([sys.executable, str(script), str(root)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        seen = committed
        target = committed + 30 + 7 * round_
        while seen < target:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"writer died: {proc.stderr.read()}")
            seen = int(line)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        rest = proc.stdout.read().split()
        last = int(rest[-1]) if rest else seen
        ds = vidlake.load(str(root), read_only=True)
        n = len(ds)
        assert last <= n <= last + 11, (last, n)          # every returned commit is there
        assert ds.check() == {"reference_id": n, "arr": n}
        assert [value(ds.arr, i)[0] for i in range(40, n)] == list(range(40, n))
        assert all(ds.reference_id[i].text() == f"r{i}" for i in range(n))
        committed = n
    assert meta_of(root)["tensor_state"]["arr"]["lists"][0]["level"] >= 2


def _append_many(path: str, who: str, n: int, barrier, out: str) -> None:
    writer_mod.MAX_SEGMENT_ROWS, writer_mod.LIST_FANOUT, writer_mod.SEAL_ROWS = ROWS, FANOUT, SEAL
    acked, refused = [], 0
    barrier.wait()
    for j in range(n):
        try:
            ds = vidlake.load(path)
            with ds:
                for r in range(5):
                    ds.append({"reference_id": f"{who}-{j}-{r}", "arr": np.full((2,), j, np.int32)})
        except vidlake.ConcurrentWriteError:
            refused += 1
            continue
        acked += [f"{who}-{j}-{r}" for r in range(5)]
    with open(out, "w") as f:
        json.dump({"acked": acked, "refused": refused}, f)


@pytest.mark.timeout(300)
def test_two_writers_with_lists(tmp_path):
    root = tmp_path / "ds"
    build(str(root), 60)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)
    outs = [str(tmp_path / f"{w}.json") for w in "ab"]
    procs = [ctx.Process(target=_append_many, args=(str(root), w, 25, barrier, o)) for w, o in zip("ab", outs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
        assert p.exitcode == 0
    results = [json.loads(Path(o).read_text()) for o in outs]
    ds = vidlake.load(str(root), read_only=True)
    ids = [ds.reference_id[i].text() for i in range(len(ds))]
    acked = [r for res in results for r in res["acked"]]
    assert len(ids) == len(set(ids)) == 60 + len(acked)
    assert not set(acked) - set(ids)
    assert ds.check()["arr"] == len(ds)
    assert meta_of(root)["tensor_state"]["arr"]["lists"]


def test_lists_on_s3_with_a_refused_writer(s3_root):
    """S3 (moto): no lock, the record is replaced with If-Match; a writer refused there has
    written only lists and segments nobody names."""
    path, creds = s3_root
    ds = vidlake.empty(path, creds=creds)
    ds.create_tensor("arr", htype="generic", dtype="int32")
    for start in range(0, 120, 13):
        with ds:
            for k in range(start, min(120, start + 13)):
                ds.arr.append(np.full((2,), k, np.int32))
    a, b = vidlake.load(path, creds=creds), vidlake.load(path, creds=creds)
    assert a._meta["tensor_state"]["arr"]["lists"]
    with a:
        for k in range(120, 140):
            a.arr.append(np.full((2,), k, np.int32))
    with b:
        for _ in range(30):
            b.arr.append(np.full((2,), -1, np.int32))
        with pytest.raises(vidlake.ConcurrentWriteError):
            b.flush()
    d = vidlake.load(path, creds=creds, read_only=True)
    assert [value(d.arr, i) for i in range(len(d))] == [[k, k] for k in range(140)]
    assert d.check() == {"arr": 140}
