"""Ingestion jobs against a plain copy (issue 16): files/s and MB/s for many small and a few
large videos, in this process (``workers=0``), on a process pool and (``--ray``) on Ray.

    .venv/bin/python bench/ingest_jobs.py                       # 10,000 small + 100 large videos
    .venv/bin/python bench/ingest_jobs.py --small 500 --large 10 --no-report   # a quick look

Inputs are made in ``--workdir`` (default: a temporary folder, deleted after): ``--small``
copies of ``carphone_distorted.mp4`` (7 KB, 30 frames) and ``--large`` files of about
``--large-mb`` MB (``samplemp4.mp4`` concatenated with ``ffmpeg -c copy``). Each contender
writes into a fresh folder on the same file system: "copy" is ``shutil.copyfile`` of every
file (what any ingest must at least do), the others are ``vidlake.jobs.ingest_files`` (index
every file, place its bytes and index in chunks, journal, one commit per batch). The files
are read once before timing (page cache warm for everyone). Writes the table to the
"Ingestion jobs" section of bench/RESULTS.md (unless ``--no-report``).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import vidlake  # noqa: E402
from vidlake.jobs import ingest_files  # noqa: E402

TESTDATA = Path(os.environ.get("VIDLAKE_TESTDATA", str(HERE.parent.parent / "shared" / "testdata"))) / "video"
RESULTS_MD = HERE / "RESULTS.md"
MARKER = "<!-- sections below: other bench scripts (kept by compare.py) -->"


def update_results(title: str, body: str, md: Path = RESULTS_MD) -> None:
    """Replace (or add) section ``## title`` after the marker that compare.py keeps."""
    text = md.read_text() if md.exists() else ""
    if MARKER not in text:
        text = text.rstrip("\n") + "\n\n" + MARKER + "\n"
    head, tail = text.split(MARKER, 1)
    sections: list[tuple[str, str]] = []
    for chunk in ("\n" + tail).split("\n## ")[1:]:
        t, _, rest = chunk.partition("\n")
        sections.append((t.strip(), rest))
    sections = [(t, r) for t, r in sections if t != title] + [(title, "\n" + body.strip("\n") + "\n")]
    md.write_text(head + MARKER + "\n" + "".join(f"\n## {t}\n{r.strip(chr(10))}\n" for t, r in sections))


def make_inputs(work: Path, small: int, large: int, large_mb: float) -> tuple[list[str], list[str]]:
    src_small = TESTDATA / "carphone_distorted.mp4"
    sd = work / "small"
    sd.mkdir(parents=True, exist_ok=True)
    smalls = []
    for k in range(small):
        p = sd / f"s{k:05d}.mp4"
        if not p.exists():
            shutil.copyfile(src_small, p)
        smalls.append(str(p))
    ld = work / "large"
    ld.mkdir(parents=True, exist_ok=True)
    big = ld / "big.mp4"
    if large and not big.exists():
        piece = TESTDATA / "samplemp4.mp4"
        n = max(1, round(large_mb * 1e6 / piece.stat().st_size))
        lst = work / "concat.txt"
        lst.write_text("".join(f"file '{piece}'\n" for _ in range(n)))
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy",
                        str(big)], check=True)
    larges = []
    for k in range(large):
        p = ld / f"l{k:03d}.mp4"
        if not p.exists():
            shutil.copyfile(big, p)
        larges.append(str(p))
    return smalls, larges


def warm(files: list[str]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 22):
                pass


def run_copy(files: list[str], out: Path) -> float:
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    for k, f in enumerate(files):
        shutil.copyfile(f, out / f"{k:05d}.mp4")
    os.sync()
    return time.perf_counter() - t0


def run_ingest(files: list[str], out: Path, **kw) -> float:
    ds = vidlake.empty(out)
    t0 = time.perf_counter()
    job = ingest_files(ds, files, **kw)
    os.sync()
    dt = time.perf_counter() - t0
    st = job.status()
    if st["state"] != "completed" or st["done"] != len(files):
        raise SystemExit(f"ingest failed: {st}")
    ds = vidlake.load(out)
    assert len(ds.videos) == len(files)
    ds.videos[len(files) - 1, 0].numpy()  # the last one reads
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=100)
    ap.add_argument("--large-mb", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2, help="process-pool size (default 2 = nproc here)")
    ap.add_argument("--ray", action="store_true", help="also run on a local Ray cluster (ray.init(num_cpus=workers))")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-report", action="store_true")
    a = ap.parse_args()
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="vidlake-ingest-bench-"))
    t_start = time.strftime("%Y-%m-%d %H:%M:%S")
    load0 = os.getloadavg()[0]
    try:
        smalls, larges = make_inputs(work, a.small, a.large, a.large_mb)
        rows = []
        for label, files in (("small", smalls), ("large", larges)):
            if not files:
                continue
            warm(files)
            mb = sum(os.path.getsize(f) for f in files) / 1e6
            contenders = [("plain copy (shutil.copyfile)", lambda o, fs=files: run_copy(fs, o)),
                          ("ingest, in this process", lambda o, fs=files: run_ingest(fs, o)),
                          (f"ingest, pool of {a.workers} processes",
                           lambda o, fs=files: run_ingest(fs, o, workers=a.workers))]
            if a.ray:
                import ray

                ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
                contenders.append((f"ingest, Ray ({a.workers} CPUs, local)",
                                   lambda o, fs=files: run_ingest(fs, o, executor="ray")))
            for k, (name, fn) in enumerate(contenders):
                out = work / f"out-{label}-{k}"
                shutil.rmtree(out, ignore_errors=True)
                dt = fn(out)
                rows.append((label, len(files), mb, name, dt))
                print(f"{label:5} {len(files):6} files {mb:9.1f} MB  {name:34} {dt:8.2f} s  "
                      f"{len(files) / dt:9.1f} files/s  {mb / dt:8.1f} MB/s", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]
    cmd = "python bench/ingest_jobs.py " + " ".join(sys.argv[1:])
    lines = [f"`{cmd.strip()}` ({t_start}; {platform.platform()}, `nproc` = {os.cpu_count()}, load average "
             f"{load0:.1f} at start, {load1:.1f} at end; shared machine, so treat ratios as the result).",
             "", "| inputs | files | MB | how | seconds | files/s | MB/s | vs copy |", "|---|---|---|---|---|---|---|---|"]
    base: dict[str, float] = {}
    for label, n, mb, name, dt in rows:
        base.setdefault(label, dt)
        lines.append(f"| {label} | {n} | {mb:.1f} | {name} | {dt:.2f} | {n / dt:.1f} | {mb / dt:.1f} | "
                     f"{dt / base[label]:.2f}x |")
    lines += ["", "Small: copies of carphone_distorted.mp4 (7 KB); large: samplemp4.mp4 concatenated (`ffmpeg -c copy`). "
              "Ingest indexes every file (demux only), stores its bytes and packet index in chunks and commits "
              "once per batch with the job's progress in the commit record; the pool's workers write their own "
              "chunk objects and the driver only commits."]
    text = "\n".join(lines)
    print(text)
    if not a.no_report:
        update_results("Ingestion jobs (bench/ingest_jobs.py, issue 16)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
