"""``make demo``: generate (or take) videos, ingest them, read frames, check them, time it.

    python -m vidlake.demo                      # generates a handful of clips with the ffmpeg CLI
    python -m vidlake.demo --videos ~/clips     # or uses your folder

Steps: ingest every video into a local dataset (``demo_data/dataset``) with a progress bar,
then for each video read a random frame, a clip and a strided clip from a freshly loaded
dataset, compare frames and timestamps with a plain sequential decode (PyAV, or the ffmpeg
CLI when PyAV is missing), and print a table of timings. One tensor per container format
(``videos_mp4``, ``videos_webm``...): a tensor's ``sample_compression`` is checked against
each file's real container.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time

import numpy as np

__all__ = ["generate_videos", "main"]

# name, ffmpeg output args, size, frames: small clips covering the common families
_CLIPS: list[tuple[str, list[str], str, int]] = [
    ("h264_bframes.mp4", ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "48",
                          "-pix_fmt", "yuv420p"], "1280x720", 300),
    ("hevc.mp4", ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=30",
                  "-pix_fmt", "yuv420p", "-tag:v", "hvc1"], "480x270", 90),
    ("vp9.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "40",
                  "-b:v", "500k"], "320x240", 90),
    ("mpeg4.avi", ["-c:v", "mpeg4", "-q:v", "4", "-g", "25", "-bf", "1"], "352x288", 75),
    ("mpeg2.ts", ["-c:v", "mpeg2video", "-q:v", "4", "-g", "15", "-bf", "2"], "320x240", 60),
    ("h264_vfr.mkv", ["-vf", "setpts='N/30/TB+if(gte(N,30),0.2/TB,0)'", "-fps_mode", "passthrough",
                      "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p"], "320x180", 60),
]


_NO_PTS_FORMATS = ("avi", "h264", "hevc")


def generate_videos(out_dir: str) -> list[str]:
    """Encode the demo clips (test pattern + moving noise) with the ffmpeg CLI; returns paths."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("demo: the ffmpeg command is needed to generate videos (or pass --videos DIR)")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, codec_args, size, frames in _CLIPS:
        path = os.path.join(out_dir, name)
        if not os.path.exists(path):
            cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                   "-i", f"testsrc2=size={size}:rate=30", "-frames:v", str(frames), *codec_args, path]
            r = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"  (skipping {name}: this ffmpeg cannot encode it: {r.stderr.strip()[-200:]})")
                continue
        paths.append(path)
    return paths


def _oracle(path: str, upto: int) -> tuple[list[np.ndarray], list[float]]:
    """Frames 0..upto of a plain sequential decode by the ffmpeg CLI, converted to RGB with each
    frame's own colour matrix and range (as vidlake does by default; bilinear, every frame kept,
    frames as stored: no auto-rotation),
    and their timestamps from PyAV when it is installed (else NaN)."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", path], check=False, capture_output=True, text=True)
    w, h = (int(x) for x in probe.stdout.strip().split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-noautorotate", "-i", path, "-map", "0:v:0", "-fps_mode",
                          "passthrough", "-frames:v", str(upto + 1), "-sws_flags", "bilinear", "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-"], check=False, capture_output=True).stdout
    frames = list(np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)[:upto + 1])
    times = [float("nan")] * len(frames)
    try:
        import av
    except ImportError:
        return frames, times
    with av.open(path) as c:
        times = []
        for f in c.decode(video=0):
            times.append(float(f.time) if f.time is not None else float("nan"))
            if len(times) >= len(frames):
                break
    return frames, times


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0 when every frame matched."""
    ap = argparse.ArgumentParser(prog="python -m vidlake.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", help="folder of videos to use instead of generated clips")
    ap.add_argument("--out", default="demo_data", help="work folder (default: demo_data)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import vidlake
    from vidlake.api import empty, load, read
    from vidlake.cli import collect_files

    t_start = time.perf_counter()
    rng = random.Random(args.seed)
    if args.videos:
        files = collect_files([args.videos])
        print(f"demo: {len(files)} video(s) from {args.videos}")
    else:
        print("demo: generating sample videos with ffmpeg ...")
        files = generate_videos(os.path.join(args.out, "videos"))
    if not files:
        print("demo: no videos")
        return 2

    # -- ingest ---------------------------------------------------------------------------
    from tqdm import tqdm

    ds_path = os.path.join(args.out, "dataset")
    ds = empty(ds_path, overwrite=True)
    placed: list[tuple[str, str, int, float]] = []  # file, tensor, index, ingest ms
    total = sum(os.path.getsize(f) for f in files)
    t_ing = time.perf_counter()
    with tqdm(total=total, unit="B", unit_scale=True, desc="ingest", file=sys.stderr) as bar, ds:
        for f in files:
            fmt = os.path.splitext(f)[1].lower().lstrip(".")
            tname = f"videos_{fmt}"
            t0 = time.perf_counter()
            try:
                if tname not in ds.tensors:
                    ds.create_tensor(tname, htype="video", sample_compression=fmt)
                ds[tname].append(read(f))
                placed.append((f, tname, len(ds[tname]) - 1, _ms(t0)))
            except (vidlake.VidlakeError, ValueError) as e:
                bar.write(f"skipped {f}: {e}")
            bar.update(os.path.getsize(f))
    ingest_s = time.perf_counter() - t_ing
    print(f"ingested {len(placed)} video(s), {total / 1e6:.1f} MB in {ingest_s:.2f} s")

    # -- read back from a freshly loaded dataset, check against a sequential decode ----------
    rows = []
    all_ok = True
    for f, tname, i, ing_ms in placed:
        t0 = time.perf_counter()
        ds = load(ds_path, read_only=True)
        v = ds[tname]
        n = v[i].shape[0]
        first = v[i, 0].numpy()
        load_first_ms = _ms(t0)
        k = rng.randrange(n)
        t0 = time.perf_counter()
        one = v[i, k].numpy()
        rand_ms = _ms(t0)
        a = rng.randrange(max(1, n - 16))
        b = min(n, a + 16)
        t0 = time.perf_counter()
        clip = v[i, a:b].numpy()
        clip_ms = _ms(t0)
        step = max(1, n // 10)
        t0 = time.perf_counter()
        strided = v[i, ::step].numpy()
        stride_ms = _ms(t0)
        ts = v[i].timestamp

        ref, ref_t = _oracle(f, n - 1)
        ok = len(ref) == n
        ok = ok and np.array_equal(first, ref[0]) and np.array_equal(one, ref[k])
        ok = ok and all(np.array_equal(clip[j], ref[a + j]) for j in range(b - a))
        ok = ok and all(np.array_equal(strided[j], ref[s]) for j, s in enumerate(range(0, n, step)))
        verdict = "yes" if ok else "NO (frames)"
        # AVI and raw streams carry no presentation timestamps: vidlake defines frame i's time
        # as i / fps there, so only containers with real pts are compared with the decoder's times
        no_pts = v[i].sample_info["format"] in _NO_PTS_FORMATS
        if ok and no_pts:
            verdict = "yes (frames; no pts)"
        elif ok and not np.isnan(ref_t).any() and not np.allclose(ts, np.asarray(ref_t, np.float32), atol=1e-4):
            ok, verdict = False, "NO (timestamps)"
        all_ok &= bool(ok)
        rows.append((os.path.basename(f), f"{n}", f"{ing_ms:.1f}", f"{load_first_ms:.1f}",
                     f"{rand_ms:.1f}", f"{clip_ms:.1f}", f"{stride_ms:.1f}", verdict))

    head = ("video", "frames", "ingest ms", "load+frame0 ms", "random ms", "clip16 ms", "strided ms", "exact")
    widths = [max(len(r[c]) for r in [*rows, head]) for c in range(len(head))]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"\ndataset: {ds_path}   total time {time.perf_counter() - t_start:.1f} s   "
          f"{'all frames and timestamps exact' if all_ok else 'MISMATCHES FOUND'}")
    return 0 if all_ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
