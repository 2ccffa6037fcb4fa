#!/usr/bin/env python
"""Compare vidlake with its peers and with the decode limit, in one run.

    python bench/compare.py --quick            # representative subset, < 5 minutes on 2 cores
    python bench/compare.py --full             # everything, < 30 minutes on 2 cores
    python bench/compare.py --full --only short_files,many_videos,ingest_small   # the many-file rows
    python bench/compare.py --quick --only warm_random,clip

Writes bench/RESULTS.md, bench/results/results.json and one PNG chart per workload family
in bench/results/. Run it from the bench venv (bench/setup_bench.sh, or `make bench`).

Method
- Every library's output is checked against the oracle: a sequential PyAV decode of the
  same stream, each frame converted to RGB with its own matrix and range (vidlake's default,
  the ffmpeg CLI's and torchcodec's; ``stream_rgb`` below, as tests/oracle.py does it). A
  frame is *wrong* when its mean absolute difference from the oracle frame is > 1.0 (or it is
  missing / has another shape), and also from the frame converted with swscale's BT.601
  default (PyAV <= 16's ``to_ndarray``, decord, Deep Lake 3.x) when that differs: another
  colour convention is not another frame. *Exact* frames are bit-identical to the oracle's
  own-colours frame. Both counts are reported.
- The same requests (same random indices, seeded per video) go to every library.
- Warm workloads open the decoder first (untimed) and do one untimed warm-up request;
  cold workloads create the decoder inside the timed region.
- Times are wall-clock medians and p90 over the repeats; the limit rows report the
  seconds libavcodec spent (``vidlake._core.decode_limit``) for exactly the same request.
- A global time budget keeps --quick and --full within their limits: cells that would
  start after it are reported as skipped. --quick also gives each part of its plan (the
  synthetic headline, the real clip, each many-file row) a share of it.
"""
# ruff: noqa: BLE001  (a benchmark reports a library that fails, it does not stop)
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
warnings.filterwarnings("ignore")

import adapters as A
import videos as V
from colors import stream_rgb

RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"
WRONG_MAD = 1.0

WORKLOADS = {
    # name: (family, title)
    "cold": ("random", "cold: open + 1 random frame"),
    "warm_random": ("random", "warm random single frame"),
    "batch10": ("random", "10 random frames in one call"),
    "clip": ("sequential", "clip 100:200"),
    "strided": ("sequential", "strided 0:300:5"),
    "first100": ("sequential", "first 100 frames"),
    "full": ("full", "full decode"),
    "full_stream": ("full", "full decode, streamed in batches of 8 through one buffer"),
    "resize224": ("full", "decode + resize to 224x224 (10 random frames)"),
    "ffmpeg_full": ("full", "full decode vs the ffmpeg CLI at the same thread count"),
    "loader": ("loader", "2 threads x batches of 8 random 16-frame clips"),
    "ingest": ("ingest", "ingestion of 50 files"),
    "short_files": ("many", "decoder created in the timed loop: short files, open + 4 random frames each"),
    "many_videos": ("many", "random frames across 50 videos in one process (RSS over time)"),
    "ingest_small": ("ingest", "ingestion of 10,000 small files"),
    "memory": ("memory", "peak memory of a 100-frame clip fetch"),
    "index_build": ("index", "index build (demux, no decode)"),
}
PER_VIDEO = ["cold", "warm_random", "batch10", "clip", "strided", "first100", "full", "full_stream", "resize224"]

TORCHCODEC = [c.key for c in A.TORCHCODEC]  # exact / approximate x run's threads / default (1)
LIB_ORDER = ["vidlake", "vidlake_ds", "pyav", "decord", "opencv", "deeplake3", *TORCHCODEC]
PEERS = ["pyav", "decord", "opencv", "deeplake3", *TORCHCODEC]
# The loader and many-file rows give every reader 1 codec thread, so the torchcodec variants
# that differ only in threads would repeat each other there: only the default-thread ones run.
ONE_THREAD_ROWS_SKIP = {"torchcodec", "torchcodec_approx"}
MANY_TOTAL_BUDGET = 256 << 20  # many_videos: vidlake readers again under set_total_decoder_memory_budget
MANY_FRAMES = {"quick": 100, "full": 1000}  # many_videos: random frames across the 50 videos
SHORT_FILES = {"quick": 20, "full": 50}  # short_files: files opened in the timed loop
# --quick keeps the many-file rows to the libraries that say something new there (5 minutes)
MANY_QUICK_SKIP = {"short_files": {"deeplake3"},
                   "many_videos": {"deeplake3", "torchcodec_1t", "torchcodec_approx_1t"}}
SMALL_FILES = 10_000  # ingest_small: files; Deep Lake 3.x ingests the first DEEPLAKE_SMALL
DEEPLAKE_SMALL = {"quick": 0, "full": 1000}

# Repeats per workload: (quick, full). Each cell also stops repeating after CELL_BUDGET s.
REPS = {"cold": (2, 5), "warm_random": (9, 11), "batch10": (1, 3), "clip": (1, 3), "strided": (1, 3),
        "first100": (1, 3), "full": (1, 3), "full_stream": (1, 3), "resize224": (1, 3)}
CELL_BUDGET = {"quick": 1.5, "full": 3.0}
ISSUE2 = ["warm_random", "batch10", "clip", "strided", "full", "full_stream"]


def deeplake_skip(mode: str, w: str, video) -> bool:
    """Deep Lake 3.x decodes slices frame by frame from the start (~50 s for a strided read of
    a 1080p clip), so its slow cells run only where they fit in the time budget."""
    big = video.width * video.height > 1280 * 720
    if mode == "quick":
        return w not in ("cold", "warm_random", "clip")
    return big and w in ("strided", "batch10", "full", "full_stream", "first100", "resize224")


MANY_ROWS = ("short_files", "many_videos", "ingest_small")
# --quick gives each part of its plan a share of its budget (seconds), so that on a loaded
# machine every part still runs (its last cells are skipped) instead of the last parts only.
QUICK_SHARES = {"synthetic": 80, "real": 65, "ingest": None, "short_files": 20, "many_videos": 30,
                "ingest_small": 15}


def plan_videos(mode: str, sel=None, video: str | None = None) -> list[tuple]:
    """[(video, role, workloads, extras, libs or None for all, tier)] in priority order (the time
    budget skips from the end). tier "quick" uses the --quick repeats and cell budget. When
    ``sel`` holds none of the per-video workloads, no video is made (``--only ingest`` etc.)."""
    if sel is not None and all(w in MANY_ROWS or w == "ingest" for w in sel):
        return [(x, None, None, None, None, mode) for x in ("ingest", *MANY_ROWS) if x in sel]
    if video in V.REAL_CLIPS:  # one real clip: no synthetic video is made
        wl = PER_VIDEO if video == V.HEADLINE_REAL else ["cold", *ISSUE2]
        extras = ["ffmpeg_full", "index_build", "loader"] if video == V.HEADLINE_REAL else ["index_build"]
        return [(r, "headline", wl, extras, None, mode) for r in V.real_clips([video])]
    plan = []
    hs = V.synthetic(*V.HEADLINE)
    real_head = V.real_clips([V.HEADLINE_REAL])
    if mode == "quick":
        # 1080p at torchcodec's default single thread is the slow half of its rows: --quick runs
        # those two variants on the real clip only (--full on both).
        plan.append((hs, "headline", ["cold", *ISSUE2], ["ffmpeg_full", "index_build", "memory"],
                     [k for k in LIB_ORDER if k not in ("torchcodec_1t", "torchcodec_approx_1t")], "quick"))
        for r in real_head:
            plan.append((r, "headline", PER_VIDEO, ["ffmpeg_full", "index_build", "loader"], None, "quick"))
        plan.append(("ingest", None, None, None, None, "quick"))
        plan += [(x, None, None, None, None, "quick") for x in MANY_ROWS]
        return plan
    # The loader pattern runs on the real clip: 2 x 3 batches of 128 1080p frames take minutes.
    plan.append((hs, "headline", PER_VIDEO, ["ffmpeg_full", "index_build", "memory"], None, "full"))
    for r in real_head:
        plan.append((r, "headline", PER_VIDEO, ["ffmpeg_full", "index_build", "loader"], None, "full"))
    plan.append(("ingest", None, None, None, None, "full"))
    plan += [(x, None, None, None, None, "full") for x in MANY_ROWS]
    peers = ["vidlake", "pyav", "decord", "opencv", "torchcodec"]
    for codec in ("h265", "vp9", "av1"):
        if codec == "av1" and V.av1_encoder() is None:
            continue
        plan.append((V.synthetic(codec, 1080, 250), "headline", ISSUE2, ["ffmpeg_full", "index_build"],
                     [*peers, "deeplake3", "torchcodec_approx"], "quick"))
    for r in V.real_clips():
        if r.name != V.HEADLINE_REAL:
            plan.append((r, "headline", ["cold", *ISSUE2], ["index_build"],
                         [k for k in LIB_ORDER if k not in ("torchcodec_1t", "torchcodec_approx_1t")], "quick"))
    names = {p[0].name for p in plan if not isinstance(p[0], str)}
    for v in sorted(V.synthetic_matrix(), key=lambda v: (v.height, v.gop)):
        if v.name not in names:
            plan.append((v, "matrix", ["warm_random", "clip"], [], peers, "quick"))
    return plan


class Budget:
    def __init__(self, seconds: float):
        self.t0 = time.perf_counter()
        self.seconds = seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.t0)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def share(self, seconds: float | None) -> Budget:
        """A budget for one part of the run: spent after ``seconds`` or when this one is."""
        return self if seconds is None else _Share(self, seconds)


class _Share(Budget):
    def __init__(self, parent: Budget, seconds: float):
        super().__init__(seconds)
        self.parent = parent

    def left(self) -> float:
        return min(self.parent.left(), super().left())

    def elapsed(self) -> float:
        return self.parent.elapsed()


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------
# machine and versions
REPO = HERE.parent


def scrub(text):
    """Recorded text with this machine's paths made relative: the checkout becomes ``.``, the
    shared test videos ``$VIDLAKE_TESTDATA/video`` (RESULTS.md names no machine's paths)."""
    if text is None:
        return None
    text = str(text)
    for root, name in ((str(V.TESTDATA), "$VIDLAKE_TESTDATA/video"), (str(REPO), ".")):
        text = text.replace(root, name)
    return text


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False).stdout
    except Exception:
        return ""


def _read_lines(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


def machine_info() -> dict:
    cpu = ""
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name"):
            cpu = line.split(":", 1)[1].strip()
    if not cpu:
        found = [ln.split(":", 1)[1].strip() for ln in _read_lines("/proc/cpuinfo") if ln.startswith("model name")]
        cpu = found[0] if found else platform.processor()
    mem = ""
    kb = [int(ln.split()[1]) for ln in _read_lines("/proc/meminfo") if ln.startswith("MemTotal")]
    if kb:
        mem = f"{kb[0] / 1024 / 1024:.1f} GiB"
    ff = sh(["ffmpeg", "-version"]).splitlines()
    return {
        "nproc": os.cpu_count(),
        "nproc_cmd": sh(["nproc"]).strip(),
        "cpu": cpu,
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "ffmpeg": ff[0] if ff else "ffmpeg not found",
        "loadavg_start": os.getloadavg(),
    }


def library_table(threads: int) -> dict:
    out = {}
    try:
        peers_json = json.loads(A.PEERS_JSON.read_text())
    except (OSError, ValueError):
        peers_json = {}
    for key in LIB_ORDER:
        cls = A.ADAPTERS[key]
        why = cls.unavailable()
        ver = None
        if why is None:
            try:
                ver = cls.version()
            except Exception as e:
                ver = f"? ({e})"
        label = cls.describe(threads) if hasattr(cls, "describe") else cls.label
        out[key] = {"label": label, "ok": why is None, "version": ver, "reason": scrub(why)}
    why = A.Limit.unavailable()
    out["limit"] = {"label": "limit (vidlake._core.decode_limit)", "ok": why is None,
                    "version": None if why else A.Limit.version(), "reason": why}
    import av
    out["oracle"] = {"label": "oracle (PyAV sequential decode)", "ok": True,
                     "version": f"PyAV {av.__version__}, libavcodec "
                                + ".".join(map(str, av.library_versions.get("libavcodec", ())))}
    out["numpy"] = {"label": "numpy", "ok": True, "version": np.__version__}
    out["_peers_json"] = peers_json
    return out


# ---------------------------------------------------------------------------------------
# oracle
class Frames(dict):
    """Oracle frames by number; ``bt601`` holds the BT.601 conversion of frames where it differs."""

    def __init__(self) -> None:
        super().__init__()
        self.bt601: dict[int, np.ndarray] = {}


class Oracle:
    """Frames of a sequential PyAV decode. Only the frames some request needs are kept."""

    def __init__(self, path: str, need: set | None, resize: tuple | None = None):
        import av
        self.frames = Frames()
        self.small = Frames()
        self.bt601_only = False  # a matrix PyAV cannot set: colours checked against BT.601
        t = time.perf_counter()
        with av.open(path) as c:
            s = A.best_video_stream(c)
            s.codec_context.thread_type = "AUTO"
            n = 0
            for f in c.decode(s):
                # BT.601 first: PyAV 12 keeps a frame's swscale context, and a default conversion
                # after one with explicit colour details would reuse those details
                if need is None or n in need:
                    bt601 = f.to_ndarray(format="rgb24")
                    self._keep(self.frames, n, stream_rgb(f), bt601)
                if resize is not None:  # every frame: check_resized looks at the neighbours
                    bt601 = f.to_ndarray(format="rgb24", width=resize[1], height=resize[0], interpolation="BILINEAR")
                    self._keep(self.small, n, stream_rgb(f, resize), bt601)
                n += 1
        self.n = n
        self.seconds = time.perf_counter() - t
        if self.bt601_only:
            print(f"oracle: {os.path.basename(path)} has a colour matrix PyAV cannot set; its frames "
                  "are checked against the BT.601 conversion", file=sys.stderr)

    def _keep(self, into: Frames, n: int, own: np.ndarray | None, bt601: np.ndarray) -> None:
        if own is None:
            self.bt601_only = True
            into[n] = bt601
        else:
            into[n] = own
            if not np.array_equal(own, bt601):
                into.bt601[n] = bt601


def check(out, indices, ref: dict) -> dict:
    """Compare a library's output rows with the oracle frames for ``indices``."""
    if out is None:
        return {"wrong": None, "exact": None, "total": len(indices), "max_mad": None}
    wrong = exact = 0
    max_mad = 0.0
    n_out = out.shape[0] if hasattr(out, "shape") and out.ndim == 4 else 0
    for j, i in enumerate(indices):
        want = ref.get(int(i))
        if want is None or j >= n_out or out[j].shape != want.shape:
            wrong += 1
            max_mad = float("inf")
            continue
        got = out[j]
        if np.array_equal(got, want):
            exact += 1
            continue
        mad = float(np.abs(got.astype(np.int16) - want).mean())
        other = getattr(ref, "bt601", {}).get(int(i))
        if other is not None:  # another colour convention is not another frame
            mad = min(mad, float(np.abs(got.astype(np.int16) - other).mean()))
        max_mad = max(max_mad, mad)
        if mad > WRONG_MAD:
            wrong += 1
    if n_out > len(indices):
        wrong += n_out - len(indices)
    return {"wrong": wrong, "exact": exact, "total": len(indices), "max_mad": max_mad}


def check_resized(out, indices, small: dict) -> dict:
    """Resized frames: other libraries scale with other filters (OpenCV's INTER_AREA differs
    from swscale's bilinear by ~1.1 mean abs diff on real footage, about as much as two
    neighbouring frames differ), so a resized frame is *wrong* when an oracle frame within
    3 of the target matches it better than the target does (or it differs by more than 16:
    garbage). A 1080p noisy frame scaled by OpenCV's INTER_AREA differs by ~4.4 from the
    target and ~6.5 from its neighbours."""
    if out is None:
        return {"wrong": None, "exact": None, "total": len(indices), "max_mad": None}
    wrong = exact = 0
    max_mad = 0.0
    n_out = out.shape[0] if hasattr(out, "shape") and out.ndim == 4 else 0
    for j, i in enumerate(indices):
        i = int(i)
        want = small.get(i)
        if want is None or j >= n_out or out[j].shape != want.shape:
            wrong += 1
            continue
        got = out[j].astype(np.int16)
        if np.array_equal(out[j], want):
            exact += 1
            continue
        pool = small
        bt601 = getattr(small, "bt601", {})
        if i in bt601 and float(np.abs(got - bt601[i]).mean()) < float(np.abs(got - want).mean()):
            pool = {**small, **bt601}          # a BT.601 library: judged among BT.601 frames
            want = pool[i]
        mad = float(np.abs(got - want).mean())
        max_mad = max(max_mad, mad)
        others = [float(np.abs(got - pool[k]).mean()) for k in range(i - 3, i + 4) if k != i and k in pool]
        if mad > 16.0 or (others and min(others) < mad):
            wrong += 1
    return {"wrong": wrong, "exact": exact, "total": len(indices), "max_mad": max_mad}


def merge_checks(cs: list[dict]) -> dict:
    cs = [c for c in cs if c and c.get("wrong") is not None]
    if not cs:
        return {"wrong": None, "exact": None, "total": 0, "max_mad": None}
    return {"wrong": sum(c["wrong"] for c in cs), "exact": sum(c["exact"] for c in cs),
            "total": sum(c["total"] for c in cs), "max_mad": max(c["max_mad"] for c in cs)}


def stats(times: list[float]) -> dict:
    """Median, p90, n, min and the first repeat (in the order timed) of a cell's times."""
    if not times:
        return {"median": None, "p90": None, "n": 0}
    ts = sorted(times)
    p90 = ts[min(len(ts) - 1, round(0.9 * (len(ts) - 1)))]
    return {"median": statistics.median(ts), "p90": p90, "n": len(ts), "min": ts[0], "first": times[0]}


# ---------------------------------------------------------------------------------------
# requests
def seeded_rng(*parts) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(map(str, parts)).encode()))


def make_requests(video: V.Video, n: int, mode: str, workloads: list[str]) -> dict:
    """Per workload, the list of requests (method, args, expected indices), one per repeat."""
    qi = 0 if mode == "quick" else 1
    req = {}
    for w in workloads:
        if w not in REPS:
            continue
        reps = REPS[w][qi]
        rng = seeded_rng(video.name, w)
        if w == "cold" or w == "warm_random":
            idx = rng.integers(0, n, reps).tolist()
            req[w] = [("frame_at", (i,), [i]) for i in idx]
        elif w == "batch10":
            req[w] = []
            for _ in range(reps):
                idx = rng.integers(0, n, 10).tolist()
                req[w].append(("frames_at", (idx,), idx))
        elif w == "resize224":
            req[w] = []
            for _ in range(reps):
                idx = rng.integers(0, n, 10).tolist()
                req[w].append(("resized", (idx, 224, 224), idx))
        elif w == "clip":
            a, b = (100, 200) if n >= 200 else (n // 4, min(n, n // 4 + 100))
            req[w] = [("range", (a, b, 1), list(range(a, b)))] * reps
        elif w == "strided":
            b = min(300, n)
            req[w] = [("range", (0, b, 5), list(range(0, b, 5)))] * reps
        elif w == "first100":
            b = min(100, n)
            req[w] = [("first_n", (b,), list(range(b)))] * reps
        elif w == "full":
            req[w] = [("all_frames", (), list(range(n)))] * reps
        elif w == "full_stream":
            keep = sorted(set(range(0, n, max(1, n // 10))) | {n - 1})
            req[w] = [("stream", (n, 8, keep), keep)] * reps
    return req


def needed_indices(req: dict) -> set:
    need = set()
    for rs in req.values():
        for _, _, idx in rs:
            need.update(int(i) for i in idx)
    return need


# ---------------------------------------------------------------------------------------
# running one library on one video
def make_adapter(key: str, threads: int):
    if key.startswith("limit"):
        return A.Limit(threads=threads)
    return A.ADAPTERS[key](threads=threads)


def run_cell(key: str, threads: int, video: V.Video, w: str, requests: list, oracle: Oracle,
             budget: Budget, cell_budget: float, n_frames: int) -> dict:
    """Time one workload for one library on one video."""
    times, checks = [], []
    is_limit = key.startswith("limit")
    ref = oracle.small if w == "resize224" else oracle.frames
    chk = check_resized if w == "resize224" else check
    try:
        if w == "cold":
            for k, (meth, args, idx) in enumerate(requests):
                if k and (sum(times) > cell_budget or budget.left() < 0):
                    break
                ad = make_adapter(key, threads)
                ad.prepare(video.path)
                gc.collect()
                t0 = time.perf_counter()
                ad.open(video.path)
                out = getattr(ad, meth)(*args)
                dt = time.perf_counter() - t0
                if is_limit:
                    dt = ad.reported_seconds
                ad.close()
                times.append(dt)
                checks.append(chk(out, idx, ref))
                del out
        else:
            ad = make_adapter(key, threads)
            ad.prepare(video.path)
            ad.open(video.path)
            if is_limit:
                ad.set_length(n_frames)
            # warm-up (untimed): one cheap request through the same code path
            meth, args, idx = ("resized", ([0], 224, 224), [0]) if w == "resize224" else ("frame_at", (0,), [0])
            out = getattr(ad, meth)(*args)
            checks.append(chk(out, idx, ref))
            del out
            for k, (meth, args, idx) in enumerate(requests):
                if k and (sum(times) > cell_budget or budget.left() < 0):
                    break
                gc.collect()
                t0 = time.perf_counter()
                out = getattr(ad, meth)(*args)
                dt = time.perf_counter() - t0
                if is_limit:
                    dt = ad.reported_seconds
                times.append(dt)
                checks.append(chk(out, idx, ref))
                del out
            ad.close()
    except A.NotSupported as e:
        return {"status": "n/a", "reason": str(e)}
    except Exception as e:
        return {"status": "error", "reason": f"{type(e).__name__}: {str(e)[:300]}"}
    res = {"status": "ok", **stats(times), "check": merge_checks(checks)}
    if is_limit:
        res["check"] = {"wrong": None, "exact": None, "total": 0, "max_mad": None}
    return res


# ---------------------------------------------------------------------------------------
# workloads that are not per-library-per-request
def run_ffmpeg_full(video: V.Video, threads: int, reps: int, oracle: Oracle | None = None,
                    n_frames: int = 0) -> dict:
    """The ffmpeg CLI decoding every frame to rgb24 into /dev/null, timed by its own -benchmark
    rtime. With an oracle, each round also times vidlake decoding every frame into one new
    array and streamed in batches of 8 through one buffer, right after ffmpeg: the VM's speed
    drifts by 20-30% within minutes, so the targets compare rounds measured side by side."""
    times, wall = [], []
    vl = {"full": [], "stream": []}
    checks = {"full": [], "stream": []}
    ad = None
    if oracle is not None and n_frames:
        try:
            ad = make_adapter("vidlake", threads)
            ad.prepare(video.path)
            ad.open(video.path)
            ad.frame_at(0)  # warm-up, as in the cells
        except Exception:
            ad = None
    keep = sorted(set(range(0, n_frames, max(1, n_frames // 10))) | {n_frames - 1}) if n_frames else []
    for _ in range(reps):
        t0 = time.perf_counter()
        r = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-benchmark", "-threads", str(threads),
                            "-i", video.path, "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24",
                            "-y", "/dev/null"], capture_output=True, text=True, check=False)
        wall.append(time.perf_counter() - t0)
        m = re.search(r"rtime=([0-9.]+)s", r.stderr)
        if m:
            times.append(float(m.group(1)))
        if ad is not None:
            gc.collect()
            t0 = time.perf_counter()
            out = ad.all_frames()
            vl["full"].append(time.perf_counter() - t0)
            checks["full"].append(check(out[keep], keep, oracle.frames))
            del out
            gc.collect()
            t0 = time.perf_counter()
            out = ad.stream(n_frames, 8, keep)
            vl["stream"].append(time.perf_counter() - t0)
            checks["stream"].append(check(out, keep, oracle.frames))
            del out
    if ad is not None:
        ad.close()
    res = {"status": "ok" if times else "error", **stats(times), "wall": stats(wall),
           "command": f"ffmpeg -benchmark -threads {threads} -i {video.name} -map 0:v:0 -f rawvideo "
                      f"-pix_fmt rgb24 -y /dev/null"}
    if not times:
        res["reason"] = "could not parse rtime from ffmpeg -benchmark"
    for k in ("full", "stream"):
        if vl[k]:
            res[f"vidlake_{k}"] = {"status": "ok", **stats(vl[k]), "check": merge_checks(checks[k])}
    return res


def run_index_build(video: V.Video, libs: list[str], reps: int) -> dict:
    size_mb = video.size_bytes / 1e6
    out = {}

    def timeit(fn):
        # one untimed warm-up, then at least `reps` builds and at least 0.25 s of them (a small
        # file indexes in ~1 ms, where five samples on a noisy VM say little), at most 200
        fn()
        ts = []
        while len(ts) < reps or (sum(ts) < 0.25 and len(ts) < 200):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        s = stats(ts)
        s["mb_per_s"] = size_mb / s["median"] if s["median"] else None
        s["status"] = "ok"
        return s

    def measure(key, fn, what):
        # A peer that cannot open this video (decord has no AV1, say) is recorded, not fatal.
        try:
            out[key] = timeit(fn)
            out[key]["what"] = what
        except Exception as e:
            out[key] = {"status": "error", "reason": f"{type(e).__name__}: {str(e)[:300]}"}

    if "vidlake" in libs and A.VidlakeReader.unavailable() is None:
        from vidlake import _core
        measure("vidlake", lambda: _core.Index.build(video.path), "vidlake._core.Index.build(path)")
    if "pyav" in libs:
        def pyav_pass():
            a = A.PyAV(threads=1)
            a.open(video.path)
            a.close()
        measure("pyav", pyav_pass, "PyAV demux pass (pts + keyframes), as the PyAV adapter's open")
    if "decord" in libs and A.Decord.unavailable() is None:
        from decord import VideoReader, cpu
        measure("decord", lambda: VideoReader(video.path, ctx=cpu(0), num_threads=1),
                "decord.VideoReader(path) (builds its frame index at open)")
    for key, mode in (("torchcodec", "exact"), ("torchcodec_approx", "approximate")):
        if key in libs and A.TorchCodec.unavailable() is None:
            from torchcodec.decoders import VideoDecoder
            measure(key, lambda mode=mode: VideoDecoder(video.path, seek_mode=mode),
                    f"VideoDecoder(path, seek_mode=\"{mode}\")"
                    + (" (scans every packet to build its frame index)" if mode == "exact"
                       else " (header only, no scan)"))
    return out


def run_loader(key: str, video: V.Video, oracle: Oracle, batches: int, n: int, budget: Budget) -> dict:
    """Two Python threads, each with its own reader (one codec thread each), each decoding
    ``batches`` batches of 8 random clips of 16 frames."""
    rng = seeded_rng(video.name, "loader")
    plan = [[[int(s) for s in rng.integers(0, max(1, n - 16), 8)] for _ in range(batches)] for _ in range(2)]
    if key.startswith("limit"):
        ad = make_adapter("limit1", 1)
        ad.open(video.path)
        lat = []
        for t in range(2):
            for b in plan[t]:
                s = 0.0
                for st in b:
                    ad.frames_at(list(range(st, min(n, st + 16))))
                    s += ad.reported_seconds
                lat.append(s)
        total = sum(lat) / 2
        res = {"status": "ok", **stats(lat), "wall": total,
               "frames_per_s": 2 * batches * 8 * 16 / total if total else None,
               "note": "sum of one-thread decode_limit over all clips / 2 threads",
               "check": {"wrong": None, "exact": None, "total": 0, "max_mad": None}}
        return res
    try:
        ads = []
        for _ in range(2):
            ad = make_adapter(key, 1)
            ad.prepare(video.path)
            ad.open(video.path)
            ad.range(0, 1)  # warm-up
            ads.append(ad)
    except A.NotSupported as e:
        return {"status": "n/a", "reason": str(e)}
    except Exception as e:
        return {"status": "error", "reason": f"{type(e).__name__}: {e}"}
    lat = [[], []]
    outs = [[], []]
    errors = []

    def worker(t):
        try:
            for b in plan[t]:
                t0 = time.perf_counter()
                got = [ads[t].range(st, min(n, st + 16), 1) for st in b]
                lat[t].append(time.perf_counter() - t0)
                outs[t].append(got)
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")

    gc.collect()
    t0 = time.perf_counter()
    ths = [threading.Thread(target=worker, args=(t,)) for t in range(2)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    wall = time.perf_counter() - t0
    for ad in ads:
        ad.close()
    if errors:
        return {"status": "error", "reason": errors[0]}
    checks = []
    for t in range(2):
        for b, got in zip(plan[t], outs[t]):
            for st, arr in zip(b, got):
                checks.append(check(arr, list(range(st, min(n, st + 16))), oracle.frames))
    return {"status": "ok", **stats(lat[0] + lat[1]), "wall": wall,
            "frames_per_s": 2 * batches * 8 * 16 / wall, "check": merge_checks(checks)}


def run_ingest(files: list[str], libs: list[str], reps: int) -> dict:
    total_mb = sum(os.path.getsize(f) for f in files) / 1e6
    tmp = Path(tempfile.mkdtemp(prefix="vidlake-bench-ingest-", dir=str(A.CACHE)))
    out = {}

    def timeit(fn, reps=reps):
        ts = []
        for k in range(reps):
            d = tmp / f"rep{k}"
            shutil.rmtree(d, ignore_errors=True)
            gc.collect()
            t0 = time.perf_counter()
            fn(d)
            ts.append(time.perf_counter() - t0)
            shutil.rmtree(d, ignore_errors=True)
        s = stats(ts)
        s["mb_per_s"] = total_mb / s["median"]
        s["files_per_s"] = len(files) / s["median"]
        s["status"] = "ok"
        return s

    def copy(d):
        d.mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, d / os.path.basename(f))

    def vidlake_ingest(d):
        import vidlake
        ds = vidlake.empty(str(d), overwrite=True)
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        with ds:
            ds.videos.extend([vidlake.read(f) for f in files])

    def deeplake_ingest(d):
        import deeplake
        ds = deeplake.empty(str(d), overwrite=True, verbose=False)
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        with ds:
            ds.videos.extend([deeplake.read(f) for f in files])

    try:
        out["copy"] = timeit(copy, max(reps, 3))
        out["copy"]["what"] = "shutil.copyfile of every file"
        for key, fn, what in (("vidlake_ds", vidlake_ingest, ("vidlake.empty + create_tensor(htype='video') "
                                                              "+ extend([vidlake.read(f) ...])")),
                              ("deeplake3", deeplake_ingest, ("deeplake.empty + create_tensor(htype='video') "
                                                              "+ extend([deeplake.read(f) ...])"))):
            if key not in libs:
                continue
            why = A.ADAPTERS[key].unavailable()
            if why:
                out[key] = {"status": "n/a", "reason": why}
                continue
            try:
                out[key] = timeit(fn)
                out[key]["what"] = what
            except Exception as e:
                out[key] = {"status": "error", "reason": f"{type(e).__name__}: {str(e)[:300]}"}
        meta = None
        if "vidlake_ds" in libs and A.VidlakeDataset.unavailable() is None:
            meta = run_metadata(tmp / "meta", vidlake_ingest, len(files))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"files": len(files), "total_mb": total_mb, "results": out, "metadata": meta}


def run_metadata(d: Path, ingest, n: int) -> dict:
    """``shape`` and ``sample_info`` of a sample of a dataset loaded in this process: the
    median of 2,000 calls each, over all samples (after one untimed load)."""
    import vidlake
    ingest(d)
    res = {}
    try:
        ds = vidlake.load(str(d), read_only=True)
        v = ds.videos
        for what, fn in (("shape", lambda i: v[i].shape), ("sample_info", lambda i: v[i].sample_info)):
            ts = []
            for k in range(2000):
                t0 = time.perf_counter()
                fn(k % n)
                ts.append(time.perf_counter() - t0)
            res[what] = {"status": "ok", **stats(ts)}
    except Exception as e:
        res["error"] = f"{type(e).__name__}: {str(e)[:300]}"
    return res


MEMORY_CHILD = r"""
import gc, json, sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, sys.argv[1])
import adapters as A

def status(field):  # kB from /proc/self/status (VmHWM is per process, unlike ru_maxrss
    for line in open("/proc/self/status"):  # which a child inherits from its parent)
        if line.startswith(field + ":"):
            return int(line.split()[1])

key, path, threads, a, b = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ad = A.ADAPTERS[key](threads=threads)
ad.prepare(path)
ad.open(path)
ad.frame_at(0)
gc.collect()
base = status("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
        f.write("5")
except OSError:
    pass
out = ad.range(a, b, 1)
peak = max(status("VmHWM"), status("VmRSS"))
print(json.dumps({"base_kb": base, "peak_kb": peak, "out_bytes": int(out.nbytes), "frames": int(out.shape[0])}))
"""


def run_memory(key: str, video: V.Video, threads: int, n: int) -> dict:
    a, b = (100, 200) if n >= 200 else (0, min(n, 100))
    err = ""
    try:
        r = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(HERE), key, video.path, str(threads),
                            str(a), str(b)], capture_output=True, text=True, timeout=300, check=False)
        err = (r.stderr.strip().splitlines() or [""])[-1]
        d = json.loads(r.stdout.strip().splitlines()[-1])
    except Exception as e:
        return {"status": "error", "reason": f"{type(e).__name__}: {e} {err}"[:300]}
    delta_mb = (d["peak_kb"] - d["base_kb"]) / 1024
    out_mb = d["out_bytes"] / 2**20
    return {"status": "ok", "delta_mb": delta_mb, "out_mb": out_mb, "base_mb": d["base_kb"] / 1024,
            "overhead_mb": delta_mb - out_mb, "frames": d["frames"], "request": f"{a}:{b}"}


# ---------------------------------------------------------------------------------------
# orchestration
def fmt_ms(x):
    if x is None:
        return "-"
    ms = x * 1000
    return f"{ms:.0f}" if ms >= 100 else (f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}")


def run_ingest_step(results: dict, libs: list, reps: int) -> None:
    files = V.ingest_files(50)
    r = run_ingest(files, libs, reps)
    results["ingest"] = r
    for k, c in r["results"].items():
        if c.get("status") == "ok":
            log(f"    ingest       {k:11s} median {fmt_ms(c['median']):>7s} ms  {c['mb_per_s']:.0f} MB/s")
        else:
            log(f"    ingest       {k:11s} {c.get('status')}: {c.get('reason', '')[:120]}")


def run_many_step(what: str, results: dict, libs: list, threads: int, mode: str, budget: Budget) -> None:
    """The many-file rows: short_files, many_videos (50 short 360p clips), ingest_small."""
    import many
    if what == "ingest_small":
        files = V.small_files(SMALL_FILES)
        r = many.run_ingest_small(files, libs, DEEPLAKE_SMALL[mode])
        results["ingest_small"] = r
        for k, c in r["results"].items():
            if c.get("status") == "ok":
                log(f"    ingest_small {k:11s} {c['files']} files {c['median']:.2f} s  {c['files_per_s']:.0f} files/s "
                    f"{c['ms_per_file']:.2f} ms/file")
            else:
                log(f"    ingest_small {k:11s} {c.get('status')}: {c.get('reason', '')[:120]}")
        return
    files = V.small_clips(50)
    oracle = results.setdefault("_oracle", {}).get("clips")
    if oracle is None:
        oracle = results["_oracle"]["clips"] = many.DigestOracle(files)
    if what == "short_files":
        files = files[:SHORT_FILES[mode]]
    entry = {"files": len(files), "frames_each": oracle.frames(files[0]),
             "size_mb": sum(os.path.getsize(f) for f in files) / 1e6,
             "note": "640x360 H.264, 90 frames, GOP 30, 3 B-frames (10 distinct encodes, copied to 50 names)",
             "cells": {}}
    log(f"[bench] {what}: {len(files)} clips (oracle {oracle.seconds:.1f}s) t={budget.elapsed():.0f}s")
    if what == "many_videos":
        entry["frames"] = MANY_FRAMES[mode]
    results[what] = entry
    for key in libs:
        if mode == "quick" and key in MANY_QUICK_SKIP[what]:
            continue
        if budget.left() < 0:
            entry["cells"][key] = {"status": "skipped", "reason": "time budget"}
            continue
        if what == "short_files":
            c = many.run_short_files(key, threads, files, oracle, 1, WRONG_MAD, budget)
        else:
            c = many.run_many_videos(key, threads, files, oracle, MANY_FRAMES[mode], WRONG_MAD)
        entry["cells"][key] = c
        if what == "many_videos" and key == "vidlake" and budget.left() > 0:
            # the same readers under a cap on their parked decoders together
            capped = many.run_many_videos(key, threads, files, oracle, MANY_FRAMES[mode], WRONG_MAD,
                                          total_budget=MANY_TOTAL_BUDGET)
            entry["cells"][f"vidlake_total_{MANY_TOTAL_BUDGET >> 20}mb"] = capped
            if capped["status"] == "ok":
                log(f"    many_videos  vidlake, total budget {MANY_TOTAL_BUDGET >> 20} MB: {capped['wall']:.2f} s "
                    f"(median {fmt_ms(capped['median'])} ms) peak {capped['peak_mb']:.0f} MB  "
                    f"wrong={capped['check']['wrong']}")
        if c["status"] != "ok":
            log(f"    {what:12s} {key:11s} {c['status']}: {c.get('reason', '')[:120]}")
        elif what == "short_files":
            log(f"    short_files  {key:11s} median {fmt_ms(c['median']):>7s} ms for {c['files']} files "
                f"({fmt_ms(c['per_file']['median'])} ms/file)  wrong={c['check']['wrong']} "
                f"exact={c['check']['exact']}/{c['check']['total']}")
        else:
            log(f"    many_videos  {key:11s} {c['frames']} frames {c['wall']:.2f} s (median {fmt_ms(c['median'])} ms) "
                f"RSS {c['base_mb']:.0f} -> {c['rss'][-1][2]:.0f} MB, peak {c['peak_mb']:.0f} MB  "
                f"wrong={c['check']['wrong']} exact={c['check']['exact']}/{c['check']['total']}")


def run(args) -> dict:
    mode = "quick" if args.quick else "full"
    total = Budget(args.budget or (245 if mode == "quick" else 1500))
    budget = total
    threads = args.threads
    only = set(args.only.split(",")) if args.only else None
    bad = (only or set()) - set(WORKLOADS)
    if bad:
        raise SystemExit(f"unknown workload(s) {sorted(bad)}; choose from {sorted(WORKLOADS)}")
    sel = [w for w in WORKLOADS if only is None or w in only]
    libs_info = library_table(threads)
    libs = [k for k in LIB_ORDER if libs_info[k]["ok"]]
    if args.libs:
        libs = [k for k in libs if k in args.libs.split(",")]
    have_limit = libs_info["limit"]["ok"]
    limit_keys = (["limit1"] + ([f"limit{threads}"] if threads > 1 else [])) if have_limit else []
    machine = machine_info()
    cmd = "python bench/compare.py " + " ".join(sys.argv[1:])
    log(f"[bench] {mode}: workloads {','.join(sel)}; libraries {','.join(libs + limit_keys)}; "
        f"threads {threads}; budget {budget.seconds:.0f}s")
    plan = plan_videos(mode, sel, args.video)
    results = {"mode": mode, "command": cmd, "threads": threads, "machine": machine, "libraries": libs_info,
               "videos": {}, "ingest": None, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
               "wrong_mad_threshold": WRONG_MAD, "skipped": [], "only": sorted(only) if only else None}

    def video_entry(v, role):
        return {"label": v.label(), "path": v.path, "kind": v.kind, "codec": v.codec, "width": v.width,
                "height": v.height, "gop": v.gop, "size_mb": v.size_bytes / 1e6, "role": role,
                "note": v.note, "workloads": {}}

    for v, role, wl, extras, only_libs, tier in plan:
        part = v if isinstance(v, str) else v.kind
        budget = total.share(QUICK_SHARES.get(part) if mode == "quick" and only is None else None)
        if v == "ingest":
            if "ingest" in sel and budget.left() > 0:
                run_ingest_step(results, libs, 1 if mode == "quick" else 3)
            continue
        if args.video and (isinstance(v, str) or args.video not in (v.name, v.label())):
            continue
        if isinstance(v, str):  # the many-file rows (bench/many.py)
            if v in sel and budget.left() > 0:
                run_many_step(v, results, libs, threads, mode, budget)
            elif v in sel:
                results["skipped"].append(v)
            continue
        if budget.left() < 0:
            log(f"[bench] time budget spent; skipping {v.label()}")
            results["skipped"].append(v.label())
            continue
        cell_budget = CELL_BUDGET[tier]
        wl = [w for w in wl if w in sel]
        extras = [w for w in extras if w in sel]
        if not wl and not extras:
            continue
        vlibs = [k for k in libs if only_libs is None or k in only_libs]
        vlimits = limit_keys if role == "headline" else limit_keys[:1]
        n = v.frames
        req = make_requests(v, n, tier, wl)
        full_oracle = "full" in wl or "loader" in extras
        oracle = Oracle(v.path, None if full_oracle else needed_indices(req) | {0},
                        (224, 224) if "resize224" in wl else None)
        if oracle.n != n:  # the decoder, not the packet count, is the truth
            n = oracle.n
            req = make_requests(v, n, tier, wl)
            oracle = Oracle(v.path, None if full_oracle else needed_indices(req) | {0},
                            (224, 224) if "resize224" in wl else None)
        entry = video_entry(v, role)
        entry["frames"] = n
        results["videos"][v.name] = entry
        log(f"[bench] {v.label()} ({n} frames, {entry['size_mb']:.1f} MB; oracle {oracle.seconds:.1f}s) "
            f"t={budget.elapsed():.0f}s")
        for w in wl:
            cells = {}
            for key in vlibs + vlimits:
                if key == "vidlake_ds" and role == "matrix":
                    continue
                if key == "deeplake3" and deeplake_skip(mode, w, v):
                    continue
                if key.startswith("limit") and w == "resize224":
                    continue
                if budget.left() < 0:
                    cells[key] = {"status": "skipped", "reason": "time budget"}
                    continue
                th = int(key[5:]) if key.startswith("limit") else threads
                cells[key] = run_cell(key, th, v, w, req[w], oracle, budget, cell_budget, n)
                c = cells[key]
                if c["status"] == "ok":
                    ck = c["check"]
                    log(f"    {w:12s} {key:11s} median {fmt_ms(c['median']):>7s} ms  p90 "
                        f"{fmt_ms(c['p90']):>7s}  n={c['n']}  wrong={ck['wrong']} exact={ck['exact']}"
                        f"/{ck['total']}")
                else:
                    log(f"    {w:12s} {key:11s} {c['status']}: {c.get('reason', '')[:120]}")
            entry["workloads"][w] = cells
        results["skipped"] += [f"{v.label()}: {x}" for x in extras if budget.left() <= 0]
        if "ffmpeg_full" in extras and budget.left() > 0:
            r = run_ffmpeg_full(v, threads, 1 if tier == "quick" else 3, oracle, n)
            entry["workloads"]["ffmpeg_full"] = {"ffmpeg": r}
            log(f"    ffmpeg_full  ffmpeg      median {fmt_ms(r.get('median')):>7s} ms (rtime)")
            for k in ("full", "stream"):
                c = r.get(f"vidlake_{k}")
                if c:
                    log(f"    ffmpeg_full  vidlake {k:6s} median {fmt_ms(c['median']):>7s} ms  (rounds "
                        f"interleaved with ffmpeg)  wrong={c['check']['wrong']}")
        if "index_build" in extras and budget.left() > 0:
            r = run_index_build(v, vlibs, 5)
            entry["workloads"]["index_build"] = r
            for k, c in r.items():
                if c.get("status") == "ok":
                    log(f"    index_build  {k:11s} median {fmt_ms(c['median']):>7s} ms  "
                        f"{c['mb_per_s']:.0f} MB/s")
        if "loader" in extras and budget.left() > 0:
            cells = {}
            for key in vlibs + limit_keys[:1]:
                if (key in ("deeplake3",) and mode == "quick") or key in ONE_THREAD_ROWS_SKIP:
                    continue
                if budget.left() < 0:
                    cells[key] = {"status": "skipped", "reason": "time budget"}
                    continue
                cells[key] = run_loader(key, v, oracle, 2 if mode == "quick" else 3, n, budget)
                c = cells[key]
                if c["status"] == "ok":
                    log(f"    loader       {key:11s} batch median {fmt_ms(c['median']):>7s} ms  "
                        f"{c['frames_per_s']:.0f} frames/s  wrong={c['check']['wrong']}")
                else:
                    log(f"    loader       {key:11s} {c['status']}: {c.get('reason', '')[:120]}")
            entry["workloads"]["loader"] = cells
        if "memory" in extras and budget.left() > 0:
            cells = {}
            for key in vlibs:
                if key == "deeplake3" and mode == "quick":
                    continue
                cells[key] = run_memory(key, v, threads, n)
                c = cells[key]
                if c["status"] == "ok":
                    log(f"    memory       {key:11s} +{c['delta_mb']:.0f} MB peak "
                        f"(output {c['out_mb']:.0f} MB)")
                else:
                    log(f"    memory       {key:11s} {c['status']}: {c.get('reason', '')[:120]}")
            entry["workloads"]["memory"] = cells
        del oracle
        gc.collect()
    results.pop("_oracle", None)
    machine["loadavg_end"] = os.getloadavg()
    results["elapsed_s"] = total.elapsed()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return results


ROWS = ("ingest", *MANY_ROWS)


def stamp_commands(results: dict) -> dict:
    """Name the run that made each table: per-video workloads and the many-file rows."""
    cmd = results["command"]

    def stamp(cells):
        for c in (cells or {}).values():
            if isinstance(c, dict):
                c.setdefault("command", cmd)
    for v in results["videos"].values():
        for cells in v["workloads"].values():
            stamp(cells)
    for r in ROWS:
        if results.get(r):
            stamp(results[r].get("cells") or results[r].get("results"))
    results.setdefault("runs", [{k: results.get(k) for k in ("command", "started", "finished", "elapsed_s")}
                                | {"loadavg": [results["machine"]["loadavg_start"][0],
                                               results["machine"]["loadavg_end"][0]]}])
    return results


def merge(old: dict, new: dict) -> dict:
    """``old`` with the cells that ``new`` ran replaced (library by library) and its runs appended."""
    old, new = stamp_commands(old), stamp_commands(new)
    if old.get("mode") != new.get("mode") or old.get("threads") != new.get("threads"):
        return new  # a --quick run never mixes with a --full one, nor other thread counts
    for name, v in new["videos"].items():
        if name not in old["videos"]:
            old["videos"][name] = v
            continue
        o = old["videos"][name]
        for w, cells in v["workloads"].items():
            if isinstance(o["workloads"].get(w), dict):
                o["workloads"][w].update(cells)
            else:
                o["workloads"][w] = cells
    for r in ROWS:
        if new.get(r):
            k = "cells" if "cells" in new[r] else "results"
            if old.get(r) and k in old[r]:
                old[r] = {**new[r], k: {**old[r][k], **new[r][k]}}
            else:
                old[r] = new[r]
    ran = set(new.get("only") or WORKLOADS)
    ran_videos = {v["label"] for v in new["videos"].values()}
    old["skipped"] = [x for x in old.get("skipped", [])
                      if x.split(": ")[-1] not in ran and x not in ran_videos] + new["skipped"]
    for k in ("libraries", "machine", "finished"):
        old[k] = new[k]
    old["runs"] = old["runs"] + new["runs"]
    old["elapsed_s"] = sum(r["elapsed_s"] for r in old["runs"])
    return old


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="representative subset (< 5 min on 2 cores)")
    g.add_argument("--full", action="store_true", help="every video and workload (< 30 min on 2 cores)")
    p.add_argument("--only", help=f"comma-separated workloads: {','.join(WORKLOADS)}")
    p.add_argument("--libs", help=f"comma-separated libraries: {','.join(LIB_ORDER)}")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                   help="decoder threads for every library and the limit (default: nproc)")
    p.add_argument("--budget", type=float, help="seconds before remaining cells are skipped")
    p.add_argument("--no-report", action="store_true", help="print only; keep RESULTS.md as it is")
    p.add_argument("--video", help="run only this video of the plan (file name or label, e.g. bulk-water.mov)")
    p.add_argument("--merge", action="store_true",
                   help="merge this run's cells into bench/results/results.json instead of replacing it "
                        "(every table in RESULTS.md names the run that made it)")
    args = p.parse_args(argv)
    if not args.full:
        args.quick = True
    results = json.loads(scrub(json.dumps(run(args), default=str)))
    if args.no_report:
        return
    this_run = results["elapsed_s"]
    old_path = RESULTS_DIR / "results.json"
    if args.merge and old_path.exists():
        results = merge(json.loads(old_path.read_text()), results)
    import report
    RESULTS_DIR.mkdir(exist_ok=True)
    results = stamp_commands(results)
    (RESULTS_DIR / "results.json").write_text(json.dumps(results, indent=1, default=str))
    report.write(results, RESULTS_MD, RESULTS_DIR)
    log(f"[bench] wrote {RESULTS_MD.relative_to(HERE.parent)} and {RESULTS_DIR.relative_to(HERE.parent)}/ "
        f"(this run {this_run:.0f} s)")


if __name__ == "__main__":
    main()
