"""Re-encode profiles, measured (issue 17): size, encode speed, random-frame and clip latency,
loader throughput, for a 1080p and a 360p source. Prints a markdown table for bench/RESULTS.md.

    .venv/bin/python bench/encode.py                  # both sources, every profile (a few minutes)
    .venv/bin/python bench/encode.py --heights 360 --frames 90 --importers

Sources: real clips of the shared test data (``--real``, default bulk-water.mov: real footage,
H.264 GOP 240 with B-frames) and short (``--frames``, default 150 = 5 s at 30 fps) ffmpeg ``testsrc2`` clips with
temporal noise, encoded the way cameras and downloads usually are (H.264, GOP 250, 3 B-frames,
1080p 8 Mbit/s, 360p 1.5 Mbit/s; as bench/videos.py), cached in bench/.cache/encode. Each
profile's file comes from ``vidlake.reencode_bytes`` (decode + encode, the time reported as
encode frames/s). Latencies are medians over random frames / random 16-frame clips read with
one warm ``VideoReader`` (2 codec threads); loader throughput is frames/s of random 16-frame
clips read by 2 Python threads sharing the reader (1 codec thread each).

``--importers`` also measures the MOT / LaSOT ``encode=True`` option: the shared TUD-Campus
(71 frames) and LaSOT dog-2 (first 300 lines) annotations with JPEG frames (quality 90) made
from the real clip bulk-water.mov (640x424), the dataset's bytes with the frames as JPEGs vs
as one video.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import vidlake
from vidlake.video import VideoReader
from vidlake.video.encode import REENCODE_PROFILES, reencode_bytes

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "encode"
TESTDATA = Path(os.environ.get("VIDLAKE_TESTDATA", str(HERE.parent.parent / "shared" / "testdata")))
SIZES = {1080: (1920, "8M"), 360: (640, "1500k")}
PROFILES = ["as-is", "seek", "intra", "lerobot"]


def source(height: int, frames: int) -> Path:
    w, br = SIZES[height]
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"src_{height}p_{frames}.mp4"
    if not out.exists():
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
               "-i", f"testsrc2=size={w}x{height}:rate=30,noise=alls=12:allf=t", "-frames:v", str(frames),
               "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "250", "-keyint_min", "250",
               "-sc_threshold", "0", "-b:v", br, "-maxrate", br, "-bufsize", br, "-pix_fmt", "yuv420p",
               str(out)]
        subprocess.run(cmd, check=True)
    return out


def latencies(data: bytes, rng: np.random.Generator, singles: int, clips: int) -> tuple[float, float]:
    r = VideoReader(data, threads=2)
    n = len(r)
    r[0]  # warm
    one = []
    for i in rng.integers(0, n, singles):
        t = time.perf_counter()
        r[int(i)]
        one.append(time.perf_counter() - t)
    clip = []
    for s in rng.integers(0, max(1, n - 16), clips):
        t = time.perf_counter()
        r[int(s):int(s) + 16]
        clip.append(time.perf_counter() - t)
    return statistics.median(one) * 1000, statistics.median(clip) * 1000


def loader(data: bytes, clips: int, seed: int) -> float:
    r = VideoReader(data, threads=1)
    n = len(r)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, max(1, n - 16), clips)
    parts = [starts[0::2], starts[1::2]]

    def work(ss):
        for s in ss:
            r[int(s):int(s) + 16]

    t = time.perf_counter()
    th = [threading.Thread(target=work, args=(p,)) for p in parts]
    for x in th:
        x.start()
    for x in th:
        x.join()
    return clips * 16 / (time.perf_counter() - t)


def bench_source(label: str, src: Path, singles: int, clips: int) -> list[dict]:
    orig = src.read_bytes()
    frames = len(VideoReader(orig))
    rows = []
    for prof in PROFILES:
        if prof == "as-is":
            data, secs = orig, None
        else:
            t = time.perf_counter()
            data, _info = reencode_bytes(orig, prof)
            secs = time.perf_counter() - t
        r = VideoReader(data)
        one, clip = latencies(data, np.random.default_rng(1), singles, clips)
        rows.append({
            "source": label, "profile": prof, "bytes": len(data), "x": len(data) / len(orig),
            "encode_fps": None if secs is None else frames / secs, "keyframes": len(r.keyframe_indices),
            "frame_ms": one, "clip_ms": clip, "loader_fps": loader(data, clips, 2),
        })
        print(f"  {label} {prof}: {rows[-1]}", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    out = ["| source | profile | settings | size | x of original | keyframes | encode frames/s | "
           "random frame ms | 16-frame clip ms | loader frames/s |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = REENCODE_PROFILES.get(r["profile"])
        settings = "the source file" if s is None else ", ".join(f"{k} {v}" for k, v in s.items())
        enc = "-" if r["encode_fps"] is None else f"{r['encode_fps']:.1f}"
        out.append(f"| {r['source']} | {r['profile']} | {settings} | {r['bytes'] / 1e6:.2f} MB | {r['x']:.2f}x | "
                   f"{r['keyframes']} | {enc} | {r['frame_ms']:.1f} | {r['clip_ms']:.1f} | {r['loader_fps']:.0f} |")
    return "\n".join(out)


def dir_bytes(p: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _s, fs in os.walk(p) for f in fs)


def bench_importers(frames_src: Path) -> str:
    from PIL import Image

    from vidlake.importers import ingest_lasot, ingest_mot

    tmp = Path(tempfile.mkdtemp(prefix="vidlake-bench-enc-"))
    try:
        r = VideoReader(frames_src)
        lines = []
        for kind, ann, n in (("mot", TESTDATA / "annotations" / "mot" / "TUD-Campus", 71),
                             ("lasot", TESTDATA / "annotations" / "lasot" / "dog-2", 300)):
            seq = tmp / kind / ann.name
            shutil.copytree(ann, seq)
            img = seq / ("img1" if kind == "mot" else "img")
            img.mkdir(exist_ok=True)
            if kind == "lasot":
                gt = (seq / "groundtruth.txt").read_text().splitlines()[:n]
                (seq / "groundtruth.txt").write_text("\n".join(gt) + "\n")
                for f in ("absent.txt", "full_occlusion.txt", "out_of_view.txt"):
                    if (seq / f).exists():
                        (seq / f).unlink()
            digits = 6 if kind == "mot" else 8
            for k in range(n):
                Image.fromarray(r[k % len(r)]).save(img / f"{k + 1:0{digits}d}.jpg", quality=90)
            jpg = dir_bytes(str(img))
            sizes = {}
            for enc in (False, True):
                out = str(tmp / f"{kind}_{enc}")
                ds = vidlake.empty(out)
                t = time.perf_counter()
                (ingest_mot(ds, [str(seq)], encode=enc) if kind == "mot" else ingest_lasot(ds, [str(seq)], encode=enc))
                sizes[enc] = (dir_bytes(out), time.perf_counter() - t)
            lines.append(f"| {kind} {ann.name} ({n} frames, 640x424 JPEG q90: {jpg / 1e6:.2f} MB) | "
                         f"{sizes[False][0] / 1e6:.2f} MB | {sizes[True][0] / 1e6:.2f} MB | "
                         f"{sizes[False][0] / sizes[True][0]:.1f}x | {sizes[True][1]:.1f} s |")
        return "\n".join(["| sequence | dataset, frames as JPEGs | dataset, encode=True | smaller by | import time (encode) |",
                          "|---|---|---|---|---|", *lines])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heights", type=int, nargs="+", default=[1080, 360], choices=sorted(SIZES))
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--singles", type=int, default=15)
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--real", nargs="*", default=["bulk-water.mov"],
                    help="real clips of the shared test data to add as sources")
    ap.add_argument("--importers", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    rows = []
    for h in args.heights:
        rows += bench_source(f"synthetic {h}p ({args.frames} frames)", source(h, args.frames), args.singles, args.clips)
    for name in args.real:
        p = TESTDATA / "video" / name
        n = len(VideoReader(p))
        md = VideoReader(p).metadata
        rows += bench_source(f"{name} ({md['width']}x{md['height']}, {n} frames)", p, args.singles, args.clips)
    print(f"`.venv/bin/python bench/encode.py {' '.join(sys.argv[1:])}`: {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{time.time() - t0:.0f} s, load average {os.getloadavg()[0]:.1f}\n")
    print(table(rows))
    if args.importers:
        print()
        print(bench_importers(TESTDATA / "video" / "bulk-water.mov"))


if __name__ == "__main__":
    main()
