"""A 100,000-scene dataset (issue 16): load time, memory, shape / sample_info / metadata-query
latency, and what appending scene 100,001 or updating one scene's metadata costs against the
same on a small dataset.

    .venv/bin/python bench/many_samples.py                 # 100,000 scenes
    .venv/bin/python bench/many_samples.py --n 20000 --no-report

The dataset is a scene dataset (``vidlake.scene_dataset``) of video scenes whose ``frames``
rows all name the bytes of one stored clip (staged once, then its table entry repeated with
``writer.stage_entry``: what is measured is the tables, the commit record and the indexes,
not video I/O); every scene has its own reference id, content hash and metadata
(``{"weather": ..., "speed": k % 100, "cam": {"id": k % 7}}``). Load and memory are measured in
a fresh interpreter. Writes the "100,000 samples" section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from ingest_jobs import TESTDATA, update_results  # noqa: E402

import vidlake  # noqa: E402
from vidlake.scenes.dataset import SCENE_TENSORS  # noqa: E402

WEATHER = ["rain", "sun", "fog", "snow"]
CLIP = TESTDATA / "carphone_distorted.mp4"


def build(root: Path, n: int) -> float:
    ds = vidlake.scene_dataset(root, overwrite=True)
    ds.append([vidlake.VideoScene("s0", video_location=str(CLIP), metadata={"weather": "rain", "speed": 0,
                                                                             "cam": {"id": 0}})])
    entry = ds.frames.entry(0)
    digest = ds.content_hash[0].numpy()
    rate = float(np.asarray(ds.frame_rate[0].numpy()).reshape(-1)[0])
    w = ds.writer
    t0 = time.perf_counter()
    step = 10_000
    for start in range(1, n, step):
        with ds:
            for k in range(start, min(n, start + step)):
                md = {"weather": WEATHER[k % 4], "speed": k % 100, "cam": {"id": k % 7}}
                values = {"reference_id": f"s{k}", "frame_rate": np.float64(rate), "metadata": md,
                          "content_hash": digest, "item_ids": [], "item_metadata": [], "item_locations": []}
                w.stage_entry(ds.frames, json.loads(json.dumps(entry)))
                for name, v in values.items():
                    t = ds[name]
                    w.stage(t, t.spec.prepare(v, name, t.meta, None))
    return time.perf_counter() - t0


_LOAD = """
import json, resource, sys, time
t0 = time.perf_counter()
import vidlake
t_import = time.perf_counter() - t0
rss0 = int(open("/proc/self/statm").read().split()[1]) * 4096
t0 = time.perf_counter()
ds = vidlake.scene_dataset(sys.argv[1], read_only=True)
t_load = time.perf_counter() - t0
rss1 = int(open("/proc/self/statm").read().split()[1]) * 4096
t0 = time.perf_counter()
shape = ds.frames.shape
t_shape = time.perf_counter() - t0
t0 = time.perf_counter()
ds.frames[len(ds) // 2].sample_info
t_touch = time.perf_counter() - t0
t0 = time.perf_counter()
ids = ds.reference_ids
t_ids = time.perf_counter() - t0
rss2 = int(open("/proc/self/statm").read().split()[1]) * 4096
t0 = time.perf_counter()
ds.load_tables()
t_all = time.perf_counter() - t0
rss3 = int(open("/proc/self/statm").read().split()[1]) * 4096
t0 = time.perf_counter()
ds.check()
t_check = time.perf_counter() - t0
print(json.dumps({"import": t_import, "load": t_load, "rss_load": rss1 - rss0, "ids": t_ids,
                  "rss_ids": rss2 - rss1, "n": len(ids), "shape": t_shape, "touch": t_touch,
                  "all": t_all, "rss_all": rss3 - rss0, "check": t_check}))
"""


def timed(fn, reps: int = 7) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


class Counting:
    """Bytes written through a provider (put / write_parts / append)."""

    def __init__(self, p) -> None:
        self.n = 0
        for name in ("put", "write_parts", "append"):
            real = getattr(p, name)

            def wrap(key, data, *a, _real=real, **kw):
                self.n += sum(len(x) for x in data) if isinstance(data, (list, tuple)) else len(data)
                return _real(key, data, *a, **kw)
            setattr(p, name, wrap)


def append_cost(root: Path, reps: int) -> tuple[float, float, int]:
    """Median seconds and bytes written to append (and commit) one new scene."""
    ds = vidlake.scene_dataset(root)
    c = Counting(ds.provider)
    ts, bs = [], []
    base = len(ds)
    for r in range(reps):
        c.n = 0
        sc = vidlake.VideoScene(f"new-{base}-{r}", video_location=str(CLIP), metadata={"weather": "hail", "speed": r})
        t0 = time.perf_counter()
        st = ds.append([sc]).status()
        ts.append(time.perf_counter() - t0)
        bs.append(c.n)
        assert st["done"] == 1, st
    return statistics.median(ts), statistics.median(bs), len(ds)


def update_cost(root: Path, reps: int) -> tuple[float, float]:
    ds = vidlake.scene_dataset(root)
    ds.reference_ids  # noqa: B018 -- load the index first
    c = Counting(ds.provider)
    ts, bs = [], []
    for r in range(reps):
        c.n = 0
        ref = ds.reference_ids[(r * 7919) % len(ds)]
        t0 = time.perf_counter()
        ds.update_metadata({ref: {"weather": "hail", "speed": 1000 + r}})
        ts.append(time.perf_counter() - t0)
        bs.append(c.n)
    return statistics.median(ts), statistics.median(bs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=100, help="the small dataset the costs are compared with")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-report", action="store_true")
    a = ap.parse_args()
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="vidlake-many-bench-"))
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load0 = os.getloadavg()[0]
    res: dict[str, float] = {}
    try:
        big, small = work / "big", work / "small"
        res["build"] = build(big, a.n)
        build(small, a.small)
        print(f"built {a.n} scenes in {res['build']:.1f} s", flush=True)
        out = subprocess.run([sys.executable, "-c", _LOAD, str(big)], capture_output=True, text=True, check=True)
        lo = json.loads(out.stdout)
        ds = vidlake.scene_dataset(big, read_only=True)
        n = len(ds)
        segs = {k: len(ds._meta["tensor_state"][k]["segments"]) for k in SCENE_TENSORS}
        listed = vidlake.scene_dataset(big, read_only=True).frames._entries
        all_segs = sum(1 for _ in listed.iter_segments())   # (reads the segment lists, not the segments)
        n_lists, list_levels = listed.loaded_lists(), max((d["level"] for d in listed.lists), default=0)
        meta_bytes = (big / "dataset_meta.json").stat().st_size
        i = n // 2
        res["tensor_shape"] = timed(lambda: ds.frames.shape, 5)
        res["sample_shape"] = timed(lambda: ds.frames[i].shape, 200)
        res["sample_info"] = timed(lambda: ds.frames[i].sample_info, 200)
        res["scene_lookup"] = timed(lambda: ds.scene(f"s{i}").metadata, 200)
        fresh = vidlake.scene_dataset(big, read_only=True)
        t0 = time.perf_counter()
        first = fresh.query_metadata(weather="rain")
        res["query_first"] = time.perf_counter() - t0
        res["query_eq"] = timed(lambda: ds.query_metadata(weather="rain"), 20)
        res["query_range"] = timed(lambda: ds.query_metadata({"speed": {">=": 90}}), 20)
        res["query_and"] = timed(lambda: ds.query_metadata({"speed": {"<": 5}, "cam.id": 3}), 20)
        assert len(first) == sum(1 for k in range(n) if (k == 0 or WEATHER[k % 4] == "rain"))
        ds = fresh = None  # free the loaded tables before the cost runs
        a_small = append_cost(small, 15)
        a_big = append_cost(big, 15)
        u_small = update_cost(small, 15)
        u_big = update_cost(big, 15)
        ds = vidlake.scene_dataset(big)
        t0 = time.perf_counter()
        ds.load_tables()  # compaction reads every entry; timed apart
        res["compact_tables"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        stats = vidlake.jobs.compact(ds, min_dead=0.01)
        res["compact"] = time.perf_counter() - t0
        ds = None
        moved = sum(s["rows_moved"] for s in stats.values())
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]
    ms = 1000.0
    cmd = ("python bench/many_samples.py " + " ".join(sys.argv[1:])).strip()
    lines = [
        f"`{cmd}` ({started}; {platform.platform()}, `nproc` = {os.cpu_count()}, load average {load0:.1f} at start, "
        f"{load1:.1f} at end).", "",
        f"A scene dataset of {n:,} video scenes ({len(SCENE_TENSORS)} tensors); built in {res['build']:.1f} s "
        f"(10,000 scenes per commit). Commit record `dataset_meta.json`: {meta_bytes:,} bytes; table segments per "
        f"tensor: {all_segs} (at most 4,096 rows each), {segs['frames']} of them named by the record itself and the "
        f"others through {n_lists} segment list(s) ({list_levels} level(s); format 2.0).", "",
        "| what | result |", "|---|---|",
        f"| `import vidlake` (fresh interpreter) | {lo['import']:.2f} s |",
        f"| `vidlake.scene_dataset(path, read_only=True)` (commit record and tensor metas; table segments "
        f"are read on first touch) | {lo['load'] * ms:.1f} ms, +{lo['rss_load'] / 1e6:.1f} MB RSS |",
        f"| then `ds.frames.shape` (from the record's segment summaries, no segment read) | "
        f"{lo['shape'] * ms:.2f} ms |",
        f"| then `ds.frames[n // 2].sample_info` (reads and checks one 4,096-row segment) | "
        f"{lo['touch'] * ms:.1f} ms |",
        f"| then first `ds.reference_ids` (reads the reference id and metadata tables, values in bulk; content hashes wait for an update) | "
        f"{lo['ids']:.2f} s, +{lo['rss_ids'] / 1e6:.0f} MB RSS |",
        f"| then `ds.load_tables()` (every other segment: what loading did before format 1.2) | "
        f"{lo['all']:.2f} s, +{lo['rss_all'] / 1e6:.0f} MB RSS in all |",
        f"| then `ds.check()` (every segment of every tensor read again and checked; `vidlake check`) | "
        f"{lo['check']:.2f} s |",
        f"| `ds.frames.shape` (all {n:,} rows) | {res['tensor_shape'] * 1e6:.1f} µs |",
        f"| `ds.frames[i].shape` | {res['sample_shape'] * 1e6:.1f} µs |",
        f"| `ds.frames[i].sample_info` | {res['sample_info'] * 1e6:.1f} µs |",
        f"| `ds.scene(ref).metadata` | {res['scene_lookup'] * 1e6:.1f} µs |",
        f"| first `query_metadata(weather=\"rain\")` on a fresh load (bulk read + field index) | "
        f"{res['query_first']:.2f} s |",
        f"| `query_metadata(weather=\"rain\")` ({n // 4:,} hits) | {res['query_eq'] * ms:.1f} ms |",
        f"| `query_metadata({{\"speed\": {{\">=\": 90}}}})` (~{n // 10:,} hits) | {res['query_range'] * ms:.1f} ms |",
        f"| `query_metadata({{\"speed\": {{\"<\": 5}}, \"cam.id\": 3}})` | {res['query_and'] * ms:.1f} ms |",
        f"| append + commit one scene: {a.small}-scene dataset | {a_small[0] * ms:.1f} ms, {a_small[1]:,.0f} bytes "
        "written |",
        f"| append + commit one scene: {n:,}-scene dataset | {a_big[0] * ms:.1f} ms, {a_big[1]:,.0f} bytes written |",
        f"| `update_metadata` of one scene: {a.small}-scene dataset | {u_small[0] * ms:.1f} ms, {u_small[1]:,.0f} "
        "bytes written |",
        f"| `update_metadata` of one scene: {n:,}-scene dataset | {u_big[0] * ms:.1f} ms, {u_big[1]:,.0f} bytes "
        "written (one segment of at most 4,096 rows read, if not yet, and rewritten) |",
        f"| `vidlake.jobs.compact(ds, min_dead=0.01)` after those updates, after `ds.load_tables()` "
        f"({res['compact_tables']:.2f} s) | {res['compact']:.2f} s ({moved:,} rows moved) |",
        "",
        "Appends write the new rows' bytes, one new table segment per tensor (merged binary-counter style up to "
        "4,096 rows, so a commit rewrites at most 4,096 entries) and the commit record, whose size no longer "
        "grows with n: since format 2.0 it names the sealed segments through one segment-list tree per tensor "
        "(docs/FORMAT.md, \"Segment lists\"; an append rewrites the tree's rightmost path once per ~16,384 rows). "
        "Loading reads the commit record and the tensor metas only: "
        "lengths, the row -> segment map and tensor shapes come from the record (format 1.2 segment "
        "summaries), and a table segment is read and checked when one of its rows is first touched "
        "(docs/DESIGN.md, \"Loading large datasets\"), so load time and memory no longer grow with the "
        "number of samples; what grows is the work of the first operation that needs every row of a "
        "tensor (the scene index behind `reference_ids` and `query_metadata`, `load_tables`, `check`).",
    ]
    text = "\n".join(lines)
    print(text)
    if not a.no_report:
        update_results("100,000 samples (bench/many_samples.py, issue 16)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
