#!/usr/bin/env python
"""Opening a reader, and opening it plus decoding its first frame: vidlake vs PyAV vs OpenCV.

    python bench/open_time.py                       # 720p HEVC and 1080p H.264 (bench/videos.py)
    python bench/open_time.py --runs 15 FILE ...    # other files

For each file (page cache warm: one untimed open first), the median and minimum of ``--runs``
(at least 7) timed runs, each in a fresh object, interleaved (one run of every row per round), of:

* vidlake, ``VideoReader(path)`` as it opens a local file now: the index from the MP4 sample
  tables confirmed by every sample's NAL headers (Note [Checked tables]), and the same with the
  index from a demux of every packet (``mode="demux"``, what ``VideoReader(path)`` did before);
  the index build alone: checked tables, the tables unchecked (``mode="tables"``), full demux;
* PyAV: ``av.open(path)`` and its video stream (no index: PyAV seeks by timestamp);
* OpenCV: ``cv2.VideoCapture(path)`` (no index either), when cv2 imports.

"+ first frame" rows add ``r[0]`` / the first decoded frame / ``cap.read()``. Run it in the
benchmark venv (``.venv-bench/bin/python bench/open_time.py``), which has all three.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import vidlake  # noqa: E402
from vidlake import _core  # noqa: E402

try:
    import av
except ImportError:  # pragma: no cover - the bench venv has it
    av = None
try:
    import cv2
except ImportError:
    cv2 = None


def vidlake_open(path: str, mode: str, first: bool):
    def run():
        if mode == "checked":
            r = vidlake.VideoReader(path)
        else:
            r = vidlake.VideoReader(path, index=_core.Index.build(path, -1, path, mode))
        if first:
            r[0]
    return run


def index_only(path: str, mode: str):
    return lambda: _core.Index.build(path, -1, path, mode)


def pyav_open(path: str, first: bool):
    def run():
        with av.open(path) as c:
            s = c.streams.video[0]
            if first:
                next(c.decode(s)).to_ndarray(format="rgb24")
    return run


def opencv_open(path: str, first: bool):
    def run():
        cap = cv2.VideoCapture(path)
        if first:
            ok, _ = cap.read()
            assert ok, path
        cap.release()
    return run


def rows_for(path: str, runs: int) -> list[tuple[str, list[float]]]:
    fns = []
    for first in (False, True):
        tail = " + first frame" if first else ""
        fns.append((f"vidlake VideoReader(path){tail}", vidlake_open(path, "checked", first)))
        fns.append((f"vidlake, index by full demux{tail}", vidlake_open(path, "demux", first)))
        if av is not None:
            fns.append((f"PyAV av.open{tail}", pyav_open(path, first)))
        if cv2 is not None:
            fns.append((f"OpenCV VideoCapture{tail}", opencv_open(path, first)))
    fns.append(("index only: checked tables", index_only(path, "checked")))
    fns.append(("index only: tables, unchecked", index_only(path, "tables")))
    fns.append(("index only: full demux", index_only(path, "demux")))
    # interleaved: every row runs once per round, so load changes on a shared machine hit all alike
    for _, fn in fns:
        fn()  # warm: page cache, lazily loaded libraries
    times: dict = {name: [] for name, _ in fns}
    for _ in range(runs):
        for name, fn in fns:
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return [(name, times[name]) for name, _ in fns]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="videos (default: the 720p HEVC and 1080p H.264 bench videos)")
    ap.add_argument("--runs", type=int, default=9, help="timed runs per row (at least 7)")
    args = ap.parse_args()
    if args.runs < 7:
        ap.error("--runs must be at least 7")
    files = args.files
    if not files:
        from bench.videos import synthetic
        files = [synthetic("h265", 720, 250).path, synthetic("h264", 1080, 250).path]
    print(f"load average {os.getloadavg()[0]:.2f}; vidlake {getattr(vidlake, '__version__', '?')}, "
          f"PyAV {getattr(av, '__version__', 'absent')}, OpenCV {getattr(cv2, '__version__', 'absent')}; "
          f"median and min of {args.runs} interleaved runs, page cache warm")
    for path in files:
        idx = _core.Index.build(path, -1, path, "checked")
        size = os.path.getsize(path)
        print(f"\n{Path(path).name}: {size / 1e6:.1f} MB, {idx.num_frames} frames; checked index built from "
              f"{idx.built_from}, read {idx.build_bytes / 1e3:.0f} KB")
        print("| what | median ms | min ms |\n|---|---:|---:|")
        for name, ts in rows_for(path, args.runs):
            ms = [t * 1e3 for t in ts]
            print(f"| {name} | {statistics.median(ms):.2f} | {min(ms):.2f} |")


if __name__ == "__main__":
    main()
