"""Workloads over many files (compare.py runs them; each returns plain dicts for results.json).

* ``short_files``: the data-loader pattern over many short clips: for each of 50 files,
  create the decoder *inside the timed region*, read 4 random frames, close it.
* ``many_videos``: 1,000 random (video, frame) reads spread over 50 videos in one process
  (one child process per library), every reader kept open, RSS sampled as the reads go.
* ``ingest_small``: ingestion of 10,000 small files (copies of 10 distinct encodes).

Correctness is checked as everywhere else in the suite: against a sequential PyAV decode in
each frame's own colours (bench/colors.py), *exact* = bit-identical, *wrong* = mean absolute
difference > compare.WRONG_MAD (from the BT.601 conversion too, where it differs). The oracle
keeps only the md5 of every frame; a frame whose md5 differs is compared in full by decoding
that file once more (so memory stays small for libraries that are right, and wrong frames
are still counted, never guessed).

    >>> import many, videos
    >>> files = videos.small_clips(50)
    >>> oracle = many.DigestOracle(files)
"""
# ruff: noqa: BLE001  (a benchmark reports a library that fails, it does not stop)
from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import adapters as A
import numpy as np
from colors import oracle_rgb

HERE = Path(__file__).resolve().parent


def md5(a: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(a).data).hexdigest()


def _content_key(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class DigestOracle:
    """md5 of every frame of each file's sequential PyAV decode (files with the same bytes are
    decoded once). ``check(items)`` takes ``(path, index, md5, frame or None)`` tuples."""

    def __init__(self, paths: list[str]):
        import av
        self.key = {}
        self.md5: dict[str, list[str]] = {}
        self.first: dict[str, str] = {}
        t = time.perf_counter()
        for p in paths:
            k = _content_key(p)
            self.key[p] = k
            if k in self.md5:
                continue
            self.first[k] = p
            with av.open(p) as c:
                s = A.best_video_stream(c)
                s.codec_context.thread_type = "AUTO"
                self.md5[k] = [md5(oracle_rgb(f)[0]) for f in c.decode(s)]   # the frame's own colours
        self.seconds = time.perf_counter() - t

    def frames(self, path: str) -> int:
        return len(self.md5[self.key[path]])

    def _decode(self, key: str, want: set) -> dict:
        import av
        out = {}
        with av.open(self.first[key]) as c:
            s = A.best_video_stream(c)
            for i, f in enumerate(c.decode(s)):
                if i in want:
                    out[i] = oracle_rgb(f)   # (own colours, BT.601 where it differs)
        return out

    def check(self, items, wrong_mad: float) -> dict:
        wrong = exact = 0
        max_mad = 0.0
        pending: dict[str, list] = {}
        for path, i, digest, frame in items:
            k = self.key[path]
            ref = self.md5[k]
            if digest is not None and 0 <= i < len(ref) and digest == ref[i]:
                exact += 1
            elif frame is None or not 0 <= i < len(ref):
                wrong += 1
                max_mad = float("inf")
            else:
                pending.setdefault(k, []).append((i, frame))
        for k, got in pending.items():
            ref = self._decode(k, {i for i, _ in got})
            for i, frame in got:
                want, bt601 = ref.get(i, (None, None))
                if want is None or frame.shape != want.shape:
                    wrong += 1
                    max_mad = float("inf")
                    continue
                mad = float(np.abs(frame.astype(np.int16) - want).mean())
                if bt601 is not None:  # another colour convention is not another frame
                    mad = min(mad, float(np.abs(frame.astype(np.int16) - bt601).mean()))
                max_mad = max(max_mad, mad)
                wrong += mad > wrong_mad
        return {"wrong": wrong, "exact": exact, "total": len(items), "max_mad": max_mad}


def _stats(times):
    import compare
    return compare.stats(times)


# ---------------------------------------------------------------------------------------
def requests_short(files: list[str], oracle: DigestOracle, per_file: int = 4) -> list[list[int]]:
    import compare
    out = []
    for j, p in enumerate(files):
        rng = compare.seeded_rng("short_files", j)
        n = oracle.frames(p)
        out.append(sorted({int(i) for i in rng.integers(0, n, per_file)}))
    return out


def run_short_files(key: str, threads: int, files: list[str], oracle: DigestOracle, reps: int,
                    wrong_mad: float, budget) -> dict:
    # reps: passes over all the files (compare.py runs 1: the per-file times are the sample)
    """For every file: create the decoder, read its 4 random frames, close it -- all timed.
    Dataset libraries ingest each file beforehand (untimed, cached), then load in the loop."""
    import compare
    req = requests_short(files, oracle)
    totals, per_file, items = [], [], []
    try:
        for p in files:
            compare.make_adapter(key, threads).prepare(p)
        for r in range(reps):
            if r and budget.left() < 0:
                break
            gc.collect()
            got = []
            t_all = 0.0
            for p, idx in zip(files, req):
                t0 = time.perf_counter()
                ad = compare.make_adapter(key, threads)
                ad.open(p)
                out = ad.frames_at(idx)
                ad.close()
                del ad
                dt = time.perf_counter() - t0
                t_all += dt
                per_file.append(dt)
                got.append((p, idx, out))
            totals.append(t_all)
            if r == 0:
                for p, idx, out in got:
                    n_out = out.shape[0] if getattr(out, "ndim", 0) == 4 else 0
                    for j, i in enumerate(idx):
                        f = out[j] if j < n_out else None
                        items.append((p, i, md5(f) if f is not None else None, f))
            del got
    except A.NotSupported as e:
        return {"status": "n/a", "reason": str(e)}
    except Exception as e:
        return {"status": "error", "reason": f"{type(e).__name__}: {str(e)[:300]}"}
    res = {"status": "ok", **_stats(totals), "per_file": _stats(per_file), "files": len(files),
           "frames_per_file": sum(map(len, req)) / len(req), "check": oracle.check(items, wrong_mad)}
    res["files_per_s"] = len(files) / res["median"] if res["median"] else None
    return res


# ---------------------------------------------------------------------------------------
MANY_CHILD = r"""
import gc, hashlib, json, sys, time, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, sys.argv[1])
import numpy as np
import adapters as A

def rss(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

spec = json.load(open(sys.argv[2]))
key, threads, files, req = spec["key"], spec["threads"], spec["files"], spec["requests"]
dump = open(spec["dump"], "wb")
multi = key in ("vidlake_ds", "deeplake3")
A.ADAPTERS[key].unavailable()  # imports the library: the RSS below grows with readers, not imports
if spec.get("total_budget") is not None:  # vidlake's cap on every reader's parked decoders together
    import vidlake
    vidlake.set_total_decoder_memory_budget(spec["total_budget"])
base = rss()
t_start = time.perf_counter()
if multi:
    ad = A.ADAPTERS[key](threads=threads)
    ad.prepare_many(files)
    ad.open_many(files)
    t_open = time.perf_counter() - t_start
    get = ad.frame_of
else:
    readers = {}
    t_open = 0.0
    def get(j, i):
        r = readers.get(j)
        if r is None:
            r = readers[j] = A.ADAPTERS[key](threads=threads)
            r.open(files[j])
        return r.frame_at(i)
samples, lat, out = [(0, 0.0, base)], [], []
every = max(1, len(req) // 20)
t0 = time.perf_counter()
for k, (j, i) in enumerate(req):
    a = time.perf_counter()
    f = get(j, i)
    lat.append(time.perf_counter() - a)
    f = f[0] if f.ndim == 4 else f
    d = hashlib.md5(np.ascontiguousarray(f).data).hexdigest()
    out.append(d)
    if d != spec["oracle"][k]:  # kept for the parent's full comparison
        dump.write(json.dumps({"k": k, "shape": list(f.shape)}).encode() + b"\n")
        dump.write(np.ascontiguousarray(f, dtype=np.uint8).tobytes())
    del f
    if (k + 1) % every == 0 or k + 1 == len(req):
        samples.append((k + 1, time.perf_counter() - t0, rss()))
wall = time.perf_counter() - t0
dump.close()
print(json.dumps({"base_mb": base, "peak_mb": rss("VmHWM"), "samples": samples, "lat": lat,
                  "md5": out, "wall": wall, "open_s": t_open}))
"""


def requests_many(files: list[str], oracle: DigestOracle, n: int) -> list[tuple[int, int]]:
    import compare
    rng = compare.seeded_rng("many_videos", len(files), n)
    js = rng.integers(0, len(files), n)
    return [(int(j), int(rng.integers(0, oracle.frames(files[j])))) for j in js]


def run_many_videos(key: str, threads: int, files: list[str], oracle: DigestOracle, n: int,
                    wrong_mad: float, total_budget: int | None = None) -> dict:
    """``n`` random frames across ``files`` in a child process (RSS is per process); vidlake with
    ``total_budget`` runs under ``vidlake.set_total_decoder_memory_budget(total_budget)``."""
    req = requests_many(files, oracle, n)
    want = [oracle.md5[oracle.key[files[j]]][i] for j, i in req]
    tmp = Path(tempfile.mkdtemp(prefix="many-", dir=str(A.CACHE)))
    spec = tmp / "spec.json"
    dump = tmp / "dump.bin"
    spec.write_text(json.dumps({"key": key, "threads": threads, "files": files, "requests": req,
                                "oracle": want, "dump": str(dump), "total_budget": total_budget}))
    err = ""
    try:
        r = subprocess.run([sys.executable, "-c", MANY_CHILD, str(HERE), str(spec)], capture_output=True,
                           text=True, timeout=900, check=False)
        err = (r.stderr.strip().splitlines() or [""])[-1]
        d = json.loads(r.stdout.strip().splitlines()[-1])
        kept = {}
        with open(dump, "rb") as f:
            while True:
                head = f.readline()
                if not head:
                    break
                h = json.loads(head)
                size = int(np.prod(h["shape"]))
                kept[h["k"]] = np.frombuffer(f.read(size), np.uint8).reshape(h["shape"])
        items = [(files[j], i, d["md5"][k], kept.get(k)) for k, (j, i) in enumerate(req)]
        ck = oracle.check(items, wrong_mad)
    except Exception as e:
        return {"status": "error", "reason": f"{type(e).__name__}: {e} {err}"[:300]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lat = _stats(d["lat"])
    return {"status": "ok", **lat, "wall": d["wall"], "open_s": d["open_s"], "frames": n,
            "videos": len(files), "base_mb": d["base_mb"], "peak_mb": d["peak_mb"],
            "rss": [[k, t, m] for k, t, m in d["samples"]], "check": ck}


# ---------------------------------------------------------------------------------------
def run_ingest_small(files: list[str], libs: list[str], deeplake_files: int) -> dict:
    """Ingest ``files`` once each way (one repeat: 10,000 files is its own average). Deep Lake
    3.x gets the first ``deeplake_files`` of them (all 10,000 would take minutes of the run)."""
    import compare
    total_mb = sum(os.path.getsize(f) for f in files) / 1e6
    tmp = Path(tempfile.mkdtemp(prefix="vidlake-bench-ingest-small-", dir=str(A.CACHE)))
    out = {}

    def timeit(fn, fs):
        d = tmp / "ds"
        shutil.rmtree(d, ignore_errors=True)
        gc.collect()
        t0 = time.perf_counter()
        fn(d, fs)
        dt = time.perf_counter() - t0
        shutil.rmtree(d, ignore_errors=True)
        mb = sum(os.path.getsize(f) for f in fs) / 1e6
        return {"status": "ok", **compare.stats([dt]), "files": len(fs), "mb_per_s": mb / dt,
                "files_per_s": len(fs) / dt, "ms_per_file": dt * 1000 / len(fs)}

    def copy(d, fs):
        d.mkdir(parents=True)
        for f in fs:
            shutil.copyfile(f, d / os.path.basename(f))

    def vidlake_ingest(d, fs):
        import vidlake
        ds = vidlake.empty(str(d), overwrite=True)
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        with ds:
            ds.videos.extend([vidlake.read(f) for f in fs])

    def deeplake_ingest(d, fs):
        import deeplake
        ds = deeplake.empty(str(d), overwrite=True, verbose=False)
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        with ds:
            ds.videos.extend([deeplake.read(f) for f in fs])

    try:
        out["copy"] = timeit(copy, files)
        out["copy"]["what"] = "shutil.copyfile of every file"
        for key, fn, fs, what in (
                ("vidlake_ds", vidlake_ingest, files,
                 "vidlake.empty + create_tensor(htype='video') + extend([vidlake.read(f) ...])"),
                ("deeplake3", deeplake_ingest, files[:deeplake_files],
                 "deeplake.empty + create_tensor(htype='video') + extend([deeplake.read(f) ...])")):
            if key not in libs or not fs:
                continue
            why = A.ADAPTERS[key].unavailable()
            if why:
                out[key] = {"status": "n/a", "reason": why}
                continue
            try:
                out[key] = timeit(fn, fs)
                out[key]["what"] = what
            except Exception as e:
                out[key] = {"status": "error", "reason": f"{type(e).__name__}: {str(e)[:300]}"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"files": len(files), "total_mb": total_mb, "results": out}
