#!/usr/bin/env python
"""Selection at scale: scan + candidates + built-in embedding + k-center over an hour of video.

    python bench/select_frames.py                       # 6 x 10 min at 160x96, 25 fps (1 h, 90 000 frames)
    python bench/select_frames.py --minutes 2 --files 3 # a quick look
    python bench/select_frames.py --out bench/results/select.json

The videos are generated once with the ffmpeg CLI (libx264, GOP 250 = 10 s, six different lavfi
sources so the collection has visibly different content) into --dir (default
/tmp/vidlake-bench-select). Then, per row, ``vidlake.select`` runs end to end (index, candidates,
decode at 64x64 in the conversion pass, default embedding, farthest-point selection of 200
frames) and reports wall time, candidate frames per second, video seconds per second and peak
memory. Memory is the peak RSS of this process and of the largest worker process; "flat" means it
does not grow with the amount of video (compare the 1-file row with the all-files row).

A last row decodes *every* frame of one file at 64x64 for the cost of the naive approach.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import vidlake

SOURCES = [
    "testsrc2=size=160x96:rate=25",
    "smptehdbars=size=160x96:rate=25,hue=H=t/3",
    "life=size=160x96:rate=25:mold=10:ratio=0.2:death_color=#C83232:life_color=#00ff00",
    "cellauto=size=160x96:rate=25:rule=110",
    "rgbtestsrc=size=160x96:rate=25,rotate=a=t/5",
    "testsrc=size=160x96:rate=25,negate",
]


def make_videos(folder: Path, files: int, minutes: float) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        sys.exit("bench/select_frames.py needs the ffmpeg CLI")
    out = []
    for i in range(files):
        p = folder / f"part{i:02d}_{minutes:g}min.mp4"
        if not p.exists():
            src = SOURCES[i % len(SOURCES)]
            tmp = p.with_suffix(".tmp.mp4")
            t = time.perf_counter()
            subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", src, "-t", f"{minutes * 60:g}",
                            "-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-pix_fmt", "yuv420p",
                            str(tmp)], check=True)
            tmp.rename(p)
            print(f"made {p.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        out.append(str(p))
    return out


def peak_rss_mb() -> tuple[float, float]:
    """Peak RSS of this process and of its largest child (the pool's workers), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


ROWS = [  # (name, files: "one" | "all", candidates, pool)
    ("keyframes, 1 file, in-process", "one", "keyframes", False),
    ("keyframes, all files, in-process", "all", "keyframes", False),
    ("keyframes, all files, process pool", "all", "keyframes", True),
    ("per_second:1, 1 file, process pool", "one", "per_second:1", True),
    ("per_second:1, all files, process pool", "all", "per_second:1", True),
    ("all frames, all files, process pool", "all", "all", True),
]


def run_row(k: int, paths: list[str], workers: int) -> dict:
    """One row, in this (fresh) process, so its peak memory is its own."""
    name, which, candidates, pool = ROWS[k]
    paths = paths[:1] if which == "one" else paths
    secs = sum(vidlake.VideoReader(p).end_seconds for p in paths)
    t = time.perf_counter()
    sel = vidlake.select(paths, n_samples=200, candidates=candidates, workers=workers if pool else 0,
                         progress=False)
    wall = time.perf_counter() - t
    own, kids = peak_rss_mb()
    n = sel.stats["candidates"]
    return {"row": name, "files": len(paths), "candidates": candidates, "workers": workers if pool else 0,
            "video_seconds": round(secs, 1), "candidate_frames": n, "selected": len(sel),
            "frames_decoded": sel.stats.get("frames_decoded", 0),
            "packets_decoded": sel.stats.get("packets_decoded", 0), "wall_s": round(wall, 2),
            "candidate_frames_per_s": round(n / wall, 1), "decoded_frames_per_s":
            round(sel.stats.get("frames_decoded", 0) / wall, 1), "video_s_per_s": round(secs / wall, 1),
            "peak_rss_mb_main": round(own, 1), "peak_rss_mb_worker": round(kids, 1) if pool else None}


def decode_all_row(path: str) -> dict:
    r = vidlake.VideoReader(path, threads=1)
    t = time.perf_counter()
    n = 0
    for start in range(0, len(r), 256):
        n += len(r.get_frames(np.arange(start, min(len(r), start + 256)), size=(64, 64)))
    wall = time.perf_counter() - t
    return {"row": "decode every frame at 64x64 (1 file, 1 thread, no embedding)", "frames": n,
            "wall_s": round(wall, 2), "frames_per_s": round(n / wall, 1)}


def keyframes_rows(paths: list[str]) -> list[dict]:
    """Keyframes of every file: each decoded alone (get_keyframes) vs the ordinary read of the
    same frames (get_frames: it decodes a few packets past each span, Note [Lookahead])."""
    out = []
    for label, fn in (("get_keyframes (each keyframe alone)", lambda r, k: r.get_keyframes(k, size=(64, 64))),
                      ("get_frames(keyframes) (ordinary read)", lambda r, k: r.get_frames(k, size=(64, 64)))):
        readers = [vidlake.VideoReader(p, threads=1) for p in paths]
        t = time.perf_counter()
        decoded = n = 0
        for r in readers:
            k = r.keyframe_indices
            got = fn(r, k)
            decoded += got[1]["frames_decoded"] if isinstance(got, tuple) else r.stats["frames_decoded"]
            n += len(k)
        wall = time.perf_counter() - t
        out.append({"row": f"keyframes of all files, {label}", "keyframes": n, "frames_decoded": decoded,
                    "wall_s": round(wall, 3), "keyframes_per_s": round(n / wall, 1)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/vidlake-bench-select")
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    ap.add_argument("--row", type=int, default=None, help=argparse.SUPPRESS)  # internal: one row, JSON out
    args = ap.parse_args(argv)
    paths = make_videos(Path(args.dir), args.files, args.minutes)
    if args.row is not None:
        print(json.dumps(run_row(args.row, paths, args.workers)))
        return 0
    rows = []
    for k in range(len(ROWS)):
        cmd = [sys.executable, os.path.abspath(__file__), "--dir", args.dir, "--files", str(args.files),
               "--minutes", str(args.minutes), "--workers", str(args.workers), "--row", str(k)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    for row in [decode_all_row(paths[0]), *keyframes_rows(paths)]:
        rows.append(row)
        print(json.dumps(row), flush=True)
    info = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "vidlake": vidlake.__version__, "python": platform.python_version(),
            "videos": f"{args.files} x {args.minutes:g} min, 160x96, 25 fps, libx264 ultrafast, GOP 250",
            "rows": rows}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
