"""Training-loader benchmark: random 16-frame clips at 224x224, batches of 8, 0/1/2 workers.

    .venv-bench/bin/python bench/loader.py                      # 360p, 0 1 2 workers, 30 batches
    .venv-bench/bin/python bench/loader.py --heights 360 1080 --batches 50
    .venv-bench/bin/python bench/loader.py --soak 2000 --soak-workers 2   # memory over 2,000 batches
    .venv-bench/bin/python bench/loader.py --verify 0 --peer-seconds 20   # no frame check, <= ~20 s a cell

Loaders (each run in a fresh process; peak memory is the PSS of that process and its workers (shared pages counted once)):

* ``vidlake``: ``ds.pytorch(clip=16, batch_size=8, shuffle=True, num_workers=w, size=(224, 224))``
  over a local dataset of the same video ingested ``--rows`` times (each row its own reader);
* ``pyav``: a map-style torch Dataset doing what a PyAV user writes: per worker one open
  container per file, seek to the keyframe before the clip, decode forward, convert the 16
  frames with ``to_ndarray(width=224, height=224)``; a DataLoader batches them;
* ``decord``: decord's own ``VideoLoader`` (16-frame sequences, ``shuffle=2``, random order;
  8 sequences make a batch); it has no worker processes, so only the 0-worker row;
* ``decord_ds``: decord's ``VideoReader(width=224, height=224).get_batch`` in a torch Dataset;
* ``torchcodec`` / ``torchcodec_approx``: ``torchcodec.samplers.clips_at_random_indices`` in a
  torch Dataset (one ``VideoDecoder`` per row and worker, ``seek_mode="exact"`` /
  ``"approximate"``), resized with ``torch.nn.functional.interpolate``;
* ``limit``: a bare libavcodec send/receive loop over exactly the packets the same clips need,
  converting the wanted frames to full-size RGB (``vidlake._core.decode_limit``), on both
  cores: the best of 2 codec threads and 2 x one thread. It decodes every packet from the
  keyframe on; vidlake skips the non-reference frames a clip does not show, so it can beat it.

Throughput is clips/s and frames/s over ``--batches`` batches after the first (worker start-up
and the first batch are reported apart): the median over windows of 5 batches (the 2-core
machine is shared, so single windows swing), with the mean over all batches kept in the JSON. Wrong frames: the first ``--verify`` batches of every
loader are checked against a reference decode at the indices the loader reports (vidlake's
``VideoReader.get_frames(size=(224, 224))``, itself bit-exact against a sequential PyAV
decode): vidlake must be bit-identical; a peer's frame is wrong when it is closer to a
neighbouring frame than to the one it reports (their resize filters differ, so pixels are not
compared exactly).

Writes ``bench/results/loader.json`` and prints the markdown table for bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
CACHE = HERE / ".cache" / "loader"
T = 16
BATCH = 8
SIZE = (224, 224)
PEERS = ("vidlake", "pyav", "decord", "decord_ds", "torchcodec", "torchcodec_approx")
WINDOW = 5  # batches per timing window; clips/s is the median over windows (the machine is loaded)


# ---- the video and the dataset ----------------------------------------------------------
def video_path(height: int) -> str:
    from bench.videos import synthetic

    return synthetic("h264", height, 250, verbose=True).path


def dataset_path(height: int, rows: int) -> str:
    import vidlake

    path = CACHE / f"ds_{height}p_x{rows}"
    if not (path / "dataset_meta.json").exists():
        src = video_path(height)
        ds = vidlake.empty(str(path), overwrite=True)
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        with ds:
            for _ in range(rows):
                ds.videos.append(vidlake.read(src))
    return str(path)


# ---- peers (run inside the child process) ------------------------------------------------
def _vidlake_loader(height: int, rows: int, workers: int, seed: int):
    import vidlake

    ds = vidlake.load(dataset_path(height, rows), read_only=True)
    import vidlake.torch as vt

    # many random clips per video per epoch (an epoch of the 4-row dataset is then 1,000 clips)
    clip = vt.ClipSpec(num_frames=T, clips_per_video=250)
    loader = ds.pytorch(tensors=["videos"], clip=clip, batch_size=BATCH, shuffle=True, num_workers=workers,
                        size=SIZE, seed=seed, drop_last=True,
                        **({"multiprocessing_context": "fork"} if workers else {}))

    def batches():
        while True:
            for b in loader:
                yield b["videos"].numpy(), b["frame_indices"].numpy()

    return batches()


class _PyAVClips:
    """What a PyAV user writes: seek to the keyframe before the clip, decode forward."""

    def __init__(self, path: str, rows: int, seed: int, threads: int) -> None:
        import vidlake

        self.path, self.rows, self.seed, self.threads = path, rows, seed, threads
        self.pts = np.sort(np.asarray(vidlake.VideoReader(path).index.pts))
        self.n = len(self.pts)
        self.containers: dict = {}

    def __len__(self) -> int:
        return self.rows * 1000

    def _container(self, row: int):
        import av

        c = self.containers.get(row)
        if c is None:
            c = av.open(self.path)
            s = c.streams.video[0]
            if self.threads > 1:
                s.codec_context.thread_type = "AUTO"
                s.codec_context.thread_count = self.threads
            else:
                s.codec_context.thread_count = 1
            self.containers[row] = c
        return c

    def __getitem__(self, i: int):
        import torch

        rng = np.random.default_rng([self.seed, i])
        row = i % self.rows
        start = int(rng.integers(0, self.n - T + 1))
        want = {int(p): k for k, p in enumerate(self.pts[start:start + T])}
        last = int(self.pts[start + T - 1])
        c = self._container(row)
        s = c.streams.video[0]
        c.seek(int(self.pts[start]), stream=s, backward=True)
        out = np.empty((T, SIZE[0], SIZE[1], 3), np.uint8)
        got = 0
        for frame in c.decode(s):
            k = want.get(frame.pts)
            if k is not None:
                out[k] = frame.to_ndarray(width=SIZE[1], height=SIZE[0], format="rgb24")
                got += 1
            if frame.pts >= last and got == T:
                break
        if got != T:
            raise RuntimeError(f"PyAV clip at frame {start}: found {got} of {T} frames")
        return torch.from_numpy(out), torch.arange(start, start + T)


class _DecordClips(_PyAVClips):
    def _reader(self, row: int):
        from decord import VideoReader, cpu

        r = self.containers.get(row)
        if r is None:
            r = VideoReader(self.path, ctx=cpu(0), width=SIZE[1], height=SIZE[0], num_threads=self.threads)
            self.containers[row] = r
        return r

    def __getitem__(self, i: int):
        import torch

        rng = np.random.default_rng([self.seed, i])
        start = int(rng.integers(0, self.n - T + 1))
        idx = list(range(start, start + T))
        frames = self._reader(i % self.rows).get_batch(idx).asnumpy()
        return torch.from_numpy(np.ascontiguousarray(frames)), torch.tensor(idx)


class _TorchCodecClips(_PyAVClips):
    seek_mode = "exact"

    def __getitem__(self, i: int):
        import torch
        from torchcodec.decoders import VideoDecoder
        from torchcodec.samplers import clips_at_random_indices

        d = self.containers.get(i % self.rows)
        if d is None:
            d = VideoDecoder(self.path, seek_mode=self.seek_mode, num_ffmpeg_threads=self.threads)
            self.containers[i % self.rows] = d
        torch.manual_seed(self.seed * 1_000_003 + i)
        clip = clips_at_random_indices(d, num_clips=1, num_frames_per_clip=T)
        x = torch.nn.functional.interpolate(clip.data[0].float(), size=SIZE, mode="bilinear", antialias=False)
        idx = torch.round(clip.pts_seconds[0] * d.metadata.average_fps).long()
        return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous(), idx


class _TorchCodecApproxClips(_TorchCodecClips):
    seek_mode = "approximate"


def _dataset_loader(cls, height: int, rows: int, workers: int, seed: int):
    import torch

    ds = cls(video_path(height), rows, seed, threads=2 if workers == 0 else 1)
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers,
                                         drop_last=True, generator=torch.Generator().manual_seed(seed),
                                         **({"multiprocessing_context": "fork"} if workers else {}))

    def batches():
        while True:
            for frames, idx in loader:
                yield frames.numpy(), idx.numpy()

    return batches()


def _decord_videoloader(height: int, rows: int, workers: int, seed: int):
    from decord import VideoLoader, cpu

    if workers:
        raise NotImplementedError("decord's VideoLoader has no worker processes")
    path = video_path(height)
    vl = VideoLoader([path] * rows, ctx=[cpu(0)], shape=(T, SIZE[0], SIZE[1], 3), interval=0, skip=0,
                     shuffle=2)

    def clips():
        while True:
            vl.reset()
            for frames, idx in vl:
                yield frames.asnumpy(), idx.asnumpy()[:, 1]

    it = clips()

    def batches():
        while True:
            got = [next(it) for _ in range(BATCH)]
            yield np.stack([f for f, _ in got]), np.stack([i for _, i in got])

    return batches()


def make_batches(peer: str, height: int, rows: int, workers: int, seed: int):
    if peer == "vidlake":
        return _vidlake_loader(height, rows, workers, seed)
    if peer == "pyav":
        return _dataset_loader(_PyAVClips, height, rows, workers, seed)
    if peer == "decord_ds":
        return _dataset_loader(_DecordClips, height, rows, workers, seed)
    if peer == "torchcodec":
        return _dataset_loader(_TorchCodecClips, height, rows, workers, seed)
    if peer == "torchcodec_approx":
        return _dataset_loader(_TorchCodecApproxClips, height, rows, workers, seed)
    if peer == "decord":
        return _decord_videoloader(height, rows, workers, seed)
    raise ValueError(peer)


def version_of(peer: str) -> str:
    mod = {"vidlake": "vidlake", "pyav": "av", "decord": "decord", "decord_ds": "decord",
           "torchcodec": "torchcodec", "torchcodec_approx": "torchcodec"}[peer]
    m = __import__(mod)
    return str(getattr(m, "__version__", "?"))


# ---- checking -----------------------------------------------------------------------------
def check_frames(peer: str, path: str, kept: list) -> dict:
    """Compare kept (frames, indices) batches with the reference decode at the reported indices."""
    import vidlake

    ref = vidlake.VideoReader(path)
    n = len(ref)
    checked = wrong = exact = 0
    for frames, idx in kept:
        for b in range(frames.shape[0]):
            ks = [int(k) for k in idx[b]]
            want = ref.get_frames(ks, size=SIZE)
            for t, k in enumerate(ks):
                checked += 1
                f = frames[b, t]
                if np.array_equal(f, want[t]):
                    exact += 1
                    continue
                if peer == "vidlake":
                    wrong += 1
                    continue
                near = [j for j in (k - 1, k + 1) if 0 <= j < n]
                d_own = np.abs(f.astype(np.int16) - want[t]).mean()
                others = ref.get_frames(near, size=SIZE)
                if any(np.abs(f.astype(np.int16) - o).mean() < d_own for o in others):
                    wrong += 1
    return {"checked": checked, "wrong": wrong, "exact": exact}


# ---- child: one loader, one worker count --------------------------------------------------
def run_one(peer: str, height: int, rows: int, workers: int, batches: int, verify: int, seed: int,
            peer_seconds: float | None = None) -> dict:
    """One cell: ``batches`` timed batches after the first (fewer when ``peer_seconds`` runs out
    first: at least one), the first ``verify`` batches kept and checked (0: none)."""
    t0 = time.perf_counter()
    it = make_batches(peer, height, rows, workers, seed)
    kept = []      # (frames, indices) of the batches to verify
    clip_idx = []  # indices of the first batches' clips (for the decode limit), even without verify
    frames, idx = next(it)
    first = time.perf_counter() - t0
    if verify:
        kept.append((frames.copy(), idx.copy()))
    clip_idx.append(np.asarray(idx).copy())
    t1 = time.perf_counter()
    stamps = [t1]
    for k in range(batches):
        frames, idx = next(it)
        assert frames.shape == (BATCH, T, SIZE[0], SIZE[1], 3), frames.shape
        if k + 1 < verify:
            kept.append((frames.copy(), idx.copy()))
        if k + 1 < max(verify, 1):
            clip_idx.append(np.asarray(idx).copy())
        stamps.append(time.perf_counter())
        if peer_seconds is not None and stamps[-1] - t1 >= peer_seconds:
            break
    measured = len(stamps) - 1
    dt = stamps[-1] - t1
    windows = [WINDOW * BATCH / (stamps[a + WINDOW] - stamps[a]) for a in range(0, measured - WINDOW + 1, WINDOW)]
    med = float(np.median(windows)) if windows else measured * BATCH / dt
    res = {"peer": peer, "height": height, "workers": workers, "batches": measured, "batches_asked": batches,
           "seconds": dt, "first_batch_s": first, "clips_per_s": med, "frames_per_s": med * T,
           "mean_clips_per_s": measured * BATCH / dt, "window_clips_per_s": windows,
           "version": version_of(peer), "verified": bool(kept)}
    res.update(check_frames(peer, video_path(height), kept))
    if peer == "vidlake":
        from vidlake._core import decode_limit

        path = video_path(height)
        clips = [list(map(int, row)) for i in clip_idx for row in i]
        lim = {}
        for th in (1, 2):
            secs = sum(float(decode_limit(path, c, th)) for c in clips)
            lim[th] = len(clips) / secs
        res["limit_clips_per_s"] = max(lim[2], 2 * lim[1])
        res["limit_detail"] = {"1 thread x 2 cores": 2 * lim[1], "2 threads": lim[2], "clips": len(clips)}
    return res


def soak(height: int, rows: int, workers: int, batches: int, seed: int) -> dict:
    """Memory (PSS) of this process tree every 100 batches over a long vidlake run."""
    import psutil

    it = make_batches("vidlake", height, rows, workers, seed)
    me = psutil.Process()

    def tree_rss() -> int:
        total = 0
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_full_info().pss
        return total

    marks = []
    t0 = time.perf_counter()
    for k in range(batches):
        next(it)
        if k % 100 == 0 or k == batches - 1:
            marks.append((k, tree_rss()))
    dt = time.perf_counter() - t0
    return {"height": height, "workers": workers, "batches": batches, "seconds": dt,
            "clips_per_s": batches * BATCH / dt, "rss": marks}


# ---- parent: fresh process per cell, memory sampling ---------------------------------------
def measure(args: list[str]) -> tuple[dict, int]:
    import psutil

    p = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    peak = 0
    proc = psutil.Process(p.pid)
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            total = 0
            try:
                for q in [proc, *proc.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):  # PSS: shared pages of forked workers count once
                        total += q.memory_full_info().pss
            except psutil.Error:
                pass
            peak = max(peak, total)
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = p.communicate()
    stop.set()
    th.join()
    if p.returncode != 0:
        return {"error": (err.strip().splitlines() or ["?"])[-1][-300:]}, peak
    return json.loads(out.strip().splitlines()[-1]), peak


def fmt(x: float | None, unit: str = "") -> str:
    return "n/a" if x is None else (f"{x:,.1f}{unit}" if x < 100 else f"{x:,.0f}{unit}")


def table(results: list[dict], heights: list[int], workers: list[int]) -> str:
    label = {"vidlake": "vidlake `ds.pytorch`", "pyav": "PyAV Dataset (seek + decode)",
             "decord": "decord `VideoLoader`", "decord_ds": "decord `VideoReader` Dataset",
             "torchcodec": "torchcodec samplers Dataset, exact",
             "torchcodec_approx": "torchcodec samplers Dataset, approximate"}
    lines = []
    for h in heights:
        lines.append(f"\n**{h}p H.264, GOP 250** (random 16-frame clips at 224x224, batch 8)\n")
        lines.append("| loader | " + " | ".join(f"{w} workers: clips/s (frames/s), peak PSS" for w in workers)
                     + " | wrong frames |")
        lines.append("|---|" + "---|" * (len(workers) + 1))
        best_peer = {w: 0.0 for w in workers}
        for peer in PEERS:
            rs = {r["workers"]: r for r in results if r.get("peer") == peer and r.get("height") == h}
            if not rs:
                continue
            cells, checked, wrong = [], 0, 0
            for w in workers:
                r = rs.get(w)
                if r is None or "error" in r:
                    cells.append("n/a" + (f" ({r['error'][:60]})" if r and "error" in r else ""))
                    continue
                short = (f" [{r['batches']} of {r['batches_asked']} batches]"
                         if r.get("batches_asked", r["batches"]) > r["batches"] else "")
                cells.append(f"{fmt(r['clips_per_s'])} ({fmt(r['frames_per_s'])}), {r['peak_rss'] / 2**20:,.0f} MB"
                             + short)
                checked += r["checked"]
                wrong += r["wrong"]
                if peer != "vidlake":
                    best_peer[w] = max(best_peer[w], r["clips_per_s"])
            ver = next((r.get("version") for r in rs.values() if r.get("version")), "")
            lines.append(f"| {label[peer]} {ver} | " + " | ".join(cells)
                         + (f" | {wrong} of {checked} |" if checked else " | not checked (--verify 0) |"))
        vl = {r["workers"]: r for r in results if r.get("peer") == "vidlake" and r.get("height") == h
              and "error" not in r}
        lines.append("| bare libavcodec loop, every packet the clips need, full-size RGB, both cores | "
                     + " | ".join(fmt(vl[w].get("limit_clips_per_s")) if w in vl else "n/a" for w in workers)
                     + " | |")
        lines.append("| vidlake / best peer | " + " | ".join(
            f"{vl[w]['clips_per_s'] / best_peer[w]:.2f}x" if w in vl and best_peer[w] else "n/a" for w in workers)
            + " | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heights", type=int, nargs="+", default=[360])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--peers", nargs="+", default=list(PEERS))
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--verify", type=int, default=3, help="batches of every cell checked frame by frame (0: none)")
    ap.add_argument("--peer-seconds", type=float, default=None,
                    help="cap of each cell's timed loop, seconds: it stops after the batch that crosses it "
                         "(the table says how many batches were measured)")
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--soak", type=int, default=0, help="also run vidlake for this many batches, memory every 100")
    ap.add_argument("--soak-workers", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "loader.json"))
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        kind = a.child[0]
        if kind == "soak":
            h, w, n = map(int, a.child[1:4])
            print(json.dumps(soak(h, a.rows, w, n, a.seed)))
        else:
            peer, h, w = a.child[0], int(a.child[1]), int(a.child[2])
            print(json.dumps(run_one(peer, h, a.rows, w, a.batches, a.verify, a.seed, a.peer_seconds)))
        sys.stdout.flush()
        os._exit(0)  # skip interpreter teardown (decord's and the loaders' threads)
    results = []
    for h in a.heights:
        video_path(h)
        dataset_path(h, a.rows)
        # worker-major: the loaders compared in a cell run back to back (the machine's load drifts)
        for w in a.workers:
            for peer in a.peers:
                if peer == "decord" and w:
                    continue
                t = time.perf_counter()
                common = ["--batches", str(a.batches), "--verify", str(a.verify), "--rows", str(a.rows),
                          "--seed", str(a.seed)]
                if a.peer_seconds is not None:
                    common += ["--peer-seconds", str(a.peer_seconds)]
                r, peak = measure([peer, str(h), str(w), *common])
                r.update({"peer": peer, "height": h, "workers": w, "peak_rss": peak})
                results.append(r)
                msg = r.get("error") or (f"{r['clips_per_s']:.1f} clips/s over {r['batches']} batches, "
                                         f"wrong {r['wrong']}/{r['checked']}")
                print(f"[loader] {h}p {peer:10s} workers={w}: {msg}, peak PSS {peak / 2**20:.0f} MB "
                      f"({time.perf_counter() - t:.0f} s)", flush=True)
    soak_res = None
    if a.soak:
        h = a.heights[0]
        soak_res, peak = measure(["soak", str(h), str(a.soak_workers), str(a.soak), "--rows", str(a.rows),
                                  "--seed", str(a.seed)])
        soak_res["peak_rss"] = peak
        print(f"[loader] soak: {json.dumps(soak_res)}", flush=True)
    import torch

    import vidlake

    doc = {"command": "python bench/loader.py " + " ".join(sys.argv[1:]),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
           "versions": {"vidlake": vidlake.__version__, "torch": torch.__version__},
           "results": results, "soak": soak_res}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=2))
    print(table(results, a.heights, a.workers))
    if soak_res and "rss" in soak_res:
        rss = soak_res["rss"]
        print(f"\nvidlake, {soak_res['workers']} workers, {soak_res['batches']} batches: PSS of the process tree "
              + ", ".join(f"{m / 2**20:.0f} MB at batch {k}" for k, m in rss[:: max(1, len(rss) // 6)])
              + f"; {soak_res['clips_per_s']:.1f} clips/s")


if __name__ == "__main__":
    main()
