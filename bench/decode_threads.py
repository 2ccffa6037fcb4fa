#!/usr/bin/env python
"""Full-decode throughput against the codec thread count: vidlake vs PyAV vs the ffmpeg CLI.

    python bench/decode_threads.py                  # 1080p H.264 and 720p HEVC (bench/videos.py)
    python bench/decode_threads.py --runs 5 FILE    # other files

For each file and thread count (1, 2 and "auto", FFmpeg's one per core), the median of ``--runs``
full decodes, in frames per second, of:

* vidlake: ``VideoReader(path, threads=n)`` read in batches of 32 into one reused buffer (RGB);
* PyAV: ``thread_type="AUTO"``, ``thread_count=n`` (0 for auto), every frame to an RGB array;
* the ffmpeg CLI: ``ffmpeg -threads n -i FILE -f null -`` (decode only, the system FFmpeg's own
  ceiling) and the same with ``-pix_fmt rgb24`` (decode + the RGB conversion vidlake does).

The load average is printed with the results: on a shared machine it bounds what threads can
give (2 cores shared with other jobs leave less than two cores' worth to any one decode).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

import vidlake  # noqa: E402

try:
    import av
except ImportError:  # pragma: no cover - the bench venv has it
    av = None

THREADS = (("1", 1), ("2", 2), ("auto", 0))


def vidlake_decode(path: str, threads: int) -> int:
    r = vidlake.VideoReader(path, threads=threads)
    n = len(r)
    buf = np.empty((32, *r.shape[1:]), np.uint8)
    for a in range(0, n, 32):
        r.get_frames(range(a, min(a + 32, n)), out=buf[:min(32, n - a)])
    return n


def pyav_decode(path: str, threads: int) -> int:
    n = 0
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        s.thread_count = threads
        for f in c.decode(s):
            f.to_ndarray(format="rgb24")
            n += 1
    return n


def ffmpeg_decode(path: str, threads: int, rgb: bool) -> int:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", str(threads), "-i", path]
    if rgb:
        cmd += ["-pix_fmt", "rgb24"]
    subprocess.run([*cmd, "-f", "null", "-"], check=True)
    return 0  # frames: the caller's count


def fps(fn, frames: int, runs: int) -> tuple[float, float]:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return frames / statistics.median(ts), frames / min(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    files = args.files
    if not files:
        from bench.videos import synthetic
        files = [synthetic("h264", 1080, 250).path, synthetic("h265", 720, 250).path]
    print(f"load average {os.getloadavg()[0]:.2f} at start, {os.cpu_count()} cores; PyAV "
          f"{getattr(av, '__version__', 'absent')}; fps, median (best) of {args.runs} full decodes")
    for path in files:
        frames = len(vidlake.VideoReader(path))
        print(f"\n{Path(path).name}: {frames} frames\n| threads | vidlake | PyAV | ffmpeg CLI decode | "
              "ffmpeg CLI decode + rgb24 |\n|---|---:|---:|---:|---:|")
        for label, n in THREADS:
            cells = [fps(lambda n=n, p=path: vidlake_decode(p, n), frames, args.runs)]
            if av is not None:
                cells.append(fps(lambda n=n, p=path: pyav_decode(p, n), frames, args.runs))
            else:
                cells.append((float("nan"), float("nan")))
            cells.append(fps(lambda n=n, p=path: ffmpeg_decode(p, n, False), frames, args.runs))
            cells.append(fps(lambda n=n, p=path: ffmpeg_decode(p, n, True), frames, args.runs))
            print(f"| {label} | " + " | ".join(f"{m:.0f} ({b:.0f})" for m, b in cells) + " |")
        print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
