"""The ``vidlake`` command line.

    vidlake ingest videos/ clip.mkv --to ./video_ds [--tensor videos] [--compression mp4]
    vidlake info ./video_ds
    vidlake frames ./video_ds videos 0 10:50:5 --out clip.npy      # or --out frames_dir/ (PNGs)

``ingest`` never decodes: each file is read once, indexed (demux only) and stored as is, with
a progress bar. Files whose real container differs from the tensor's ``sample_compression``
(or that are not readable videos) are reported and skipped; the exit code is then 1.
``frames`` takes a frame selection like Python indexing: ``7``, ``-1``, ``0:10``, ``0:100:5``,
``:`` or a list ``3,17,5``.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import VidlakeError
from .htypes.video import VIDEO_COMPRESSIONS

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["collect_files", "main", "parse_frames"]


def parse_frames(text: str) -> int | slice | list[int]:
    """Parse a frame selection: ``"5"`` -> 5, ``"0:10:2"`` -> slice(0, 10, 2), ``"3,17,5"`` -> [3, 17, 5].

    >>> parse_frames("::4"), parse_frames("-1")
    (slice(None, None, 4), -1)
    """
    t = text.strip()
    try:
        if "," in t:
            return [int(x) for x in t.split(",") if x.strip()]
        if ":" in t:
            parts = t.split(":")
            if len(parts) > 3:
                raise ValueError
            vals = [int(p) if p.strip() else None for p in parts]
            return slice(*vals)
        return int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad frame selection {text!r}: use N, -1, A:B, A:B:S, : or a list like 3,17,5"
        ) from None


def collect_files(inputs: Sequence[str]) -> list[str]:
    """Files named on the command line plus the video files (by extension) under named folders
    and under URL prefixes (``s3://bucket/videos/``: every key below it, listed by its provider)."""
    exts = {"." + c for c in VIDEO_COMPRESSIONS}
    out: list[str] = []
    for p in inputs:
        if "://" in p and not p.startswith("file://"):
            from .storage import get_provider

            if os.path.splitext(p)[1].lower() in exts:  # one remote file
                out.append(p)
                continue
            root = p.rstrip("/")
            out.extend(f"{root}/{k}" for k in get_provider(root, read_only=True).list()
                       if os.path.splitext(k)[1].lower() in exts)
            continue
        if os.path.isdir(p):
            for dirpath, dirs, files in os.walk(p):
                dirs.sort()
                out.extend(os.path.join(dirpath, f) for f in sorted(files)
                           if os.path.splitext(f)[1].lower() in exts)
        else:
            out.append(p)
    return out


def _compression_for(path: str) -> str | None:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    return ext if ext in VIDEO_COMPRESSIONS else None


def cmd_ingest(args: argparse.Namespace) -> int:
    from .api import dataset

    if args.format != "video":  # MOT / LaSOT sequence folders: vidlake/importers/
        from .importers.cli import ingest_folders

        return ingest_folders(args)

    if args.resume is not None:
        return _resume_ingest(args)
    files = collect_files(args.inputs)
    if not files:
        print("vidlake ingest: no video files found", file=sys.stderr)
        return 2
    missing = [f for f in files if "://" not in f and not os.path.isfile(f)]
    if missing:
        print(f"vidlake ingest: no such file: {missing[0]}", file=sys.stderr)
        return 2
    ds = dataset(args.to)
    if args.tensor not in ds.tensors:
        comp = args.compression or _compression_for(files[0])
        if comp is None:
            print(f"vidlake ingest: cannot tell the format of {files[0]}; pass --compression "
                  f"({', '.join(VIDEO_COMPRESSIONS)})", file=sys.stderr)
            return 2
        ds.create_tensor(args.tensor, htype="video", sample_compression=comp)
    t = ds[args.tensor]
    if t.htype != "video":
        print(f"vidlake ingest: tensor {args.tensor!r} is a {t.htype!r} tensor, not video", file=sys.stderr)
        return 2
    return _ingest_job(args, ds, files)


def _ingest_job(args: argparse.Namespace, ds: Any, files: list[str] | None, job_id: str | None = None) -> int:
    """Run (or resume) a journaled ingest job with a progress bar (``vidlake/jobs/ingest.py``):
    killed at any moment, ``vidlake ingest --resume --to DS`` continues it."""
    from tqdm import tqdm

    from .jobs.ingest import new_ingest_journal, resume_ingest
    from .jobs.journal import Journal

    executor = "ray" if args.ray else None
    if job_id is None:
        journal = new_ingest_journal(ds, files or [], args.tensor, args.compression, args.workers, executor,
                                     args.batch)
    else:
        journal = Journal.open(ds, job_id)
    tasks = journal.tasks
    paths = [str(task["path"]) for task in tasks]
    tensor = str(journal.args.get("tensor", args.tensor))
    sizes = [os.path.getsize(p) if os.path.isfile(p) else 0 for p in paths]
    before = journal.committed()
    total = sum(sizes)
    reported = [0]
    try:
        with tqdm(total=total, initial=sum(sizes[k] for k in before), unit="B", unit_scale=True,
                  unit_divisor=1024, desc="ingest", disable=args.quiet, file=sys.stderr) as bar:
            def progress(job: Any) -> None:
                errs = job.errors()
                for e in errs[reported[0]:]:
                    bar.write(f"skipped {e['reference_id']}: {e['cause'].split(': ', 1)[-1]}", file=sys.stderr)
                reported[0] = len(errs)
                bar.update(max(0, job.bytes + sum(sizes[k] for k in before) - bar.n))

            job = resume_ingest(ds, journal, workers=args.workers,
                                executor=executor if job_id is None or executor else None,
                                ray_address=None if args.ray in (None, "auto") else args.ray, progress=progress)
    except KeyboardInterrupt:
        # leaving the batch's `with ds:` committed what was staged before the interrupt (unless
        # the interrupt hit that commit): the commit record says which tasks are in
        from .api import load
        from .jobs.journal import from_ranges

        now_ds = load(args.to, read_only=True)
        done = from_ranges(now_ds._meta.get("info", {}).get("jobs", {}).get(journal.id, {}).get("done"))
        committed = [paths[k] for k in sorted(done - before)]
        now = len(now_ds[tensor])
        print(f"\ninterrupted: {len(committed)} of {len(paths) - len(before)} file(s) committed to {args.to} "
              f"[{tensor}], which now has {now} sample(s)", file=sys.stderr)
        for f in committed:
            print(f"  committed {f}", file=sys.stderr)
        rest = [paths[k] for k in range(len(paths)) if k not in done]
        if rest:
            print(f"  not ingested: {len(rest)} file(s), from {rest[0]}", file=sys.stderr)
            print(f"  resume with: vidlake ingest --resume {journal.id} --to {args.to}", file=sys.stderr)
        return 130
    st = job.status()
    if st["state"] == "failed":
        print(f"vidlake ingest: job {journal.id} failed: {st.get('cause')}; resume with "
              f"vidlake ingest --resume {journal.id} --to {args.to}", file=sys.stderr)
        return 1
    n_ok = st["done"] - len(before)
    print(f"ingested {n_ok} of {len(paths) - len(before)} file(s) into {args.to} [{tensor}]; "
          f"the tensor now has {len(ds[tensor])} sample(s)")
    return 1 if st["failed"] else 0


def _resume_ingest(args: argparse.Namespace) -> int:
    from .api import load
    from .jobs.journal import Journal, list_jobs

    ds = load(args.to)
    job_id = args.resume
    if job_id == "latest":
        open_jobs = [j for j in list_jobs(ds) if Journal.open(ds, j).kind == "ingest" and Journal.open(ds, j).pending()]
        if not open_jobs:
            print(f"vidlake ingest: no unfinished ingest job in {args.to}", file=sys.stderr)
            return 0
        job_id = open_jobs[-1]
    return _ingest_job(args, ds, None, job_id)


def cmd_info(args: argparse.Namespace) -> int:
    from .api import load

    ds = load(args.ds, read_only=True)
    ds.summary()
    for t in ds.tensors.values():
        if t.spec.name != "video" or len(t) == 0:
            continue
        print(f"\n{t.key}:")
        print(f"{'#':>5}  {'frames':>7}  {'size':>11}  {'fps':>7}  {'seconds':>8}  {'fmt':<5} {'codec':<10} filename")
        for i in range(len(t)):
            e = t.entry(i)
            info = e["info"]
            n, h, w, _ = info["shape"]
            secs = info["duration"] * info["timebase"]
            codec = e.get("video", {}).get("codec", "?")
            print(f"{i:>5}  {n:>7}  {f'{w}x{h}':>11}  {info['fps']:>7.3f}  {secs:>8.3f}  "
                  f"{info['format']:<5} {codec:<10} {info.get('filename') or ''}")
    return 0


def cmd_frames(args: argparse.Namespace) -> int:
    from .api import load

    ds = load(args.ds, read_only=True)
    if args.tensor not in ds.tensors:
        print(f"vidlake frames: no tensor {args.tensor!r} in {args.ds}; tensors: {list(ds.tensors)}",
              file=sys.stderr)
        return 2
    view = ds[args.tensor][args.index, args.frames]
    frames = view.numpy()
    if frames.ndim == 3:
        frames = frames[None]
    out = args.out
    if out.lower().endswith(".npy"):
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        np.save(out, frames)
        print(f"wrote {frames.shape} uint8 to {out}")
        return 0
    from PIL import Image

    os.makedirs(out, exist_ok=True)
    sel = view._selection()[0] if hasattr(view, "_selection") else range(len(frames))
    for k, fr in zip(sel, frames):
        Image.fromarray(fr).save(os.path.join(out, f"frame_{int(k):06d}.png"))
    print(f"wrote {len(frames)} PNG frame(s) to {out}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vidlake`` command."""
    p = argparse.ArgumentParser(prog="vidlake", description="Frame-exact video datasets.")
    sub = p.add_subparsers(dest="cmd", required=True)

    pi = sub.add_parser("ingest", help="append video files (or folders of them) to a dataset")
    pi.add_argument("inputs", nargs="*", metavar="FILES_OR_DIR")
    pi.add_argument("--to", required=True, metavar="DS", help="dataset path (created when missing)")
    pi.add_argument("--tensor", default="videos", help="video tensor name (default: videos)")
    pi.add_argument("--compression", choices=VIDEO_COMPRESSIONS, default=None,
                    help="sample_compression when the tensor is created (default: first file's extension)")
    pi.add_argument("--format", choices=("video", "mot", "lasot"), default="video",
                    help="video files (default), or MOT / LaSOT sequence folders (vidlake.importers)")
    pi.add_argument("--video", default=None, help="--format lasot: the video of a single sequence folder")
    pi.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pi.add_argument("--resume", nargs="?", const="latest", default=None, metavar="JOB_ID",
                    help="continue an interrupted ingest job of --to DS (default: its latest unfinished one)")
    pi.add_argument("--workers", type=int, default=0, metavar="N",
                    help="index files and stage chunks on N processes (one committer; default: in this process)")
    pi.add_argument("--batch", type=int, default=None, metavar="N",
                    help="files per commit (default 64; on a pool or Ray: per worker task)")
    pi.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                    help="stage on a Ray cluster (ADDRESS or auto; pip install 'vidlake[ray]')")
    pi.set_defaults(func=cmd_ingest)

    pn = sub.add_parser("info", help="describe a dataset")
    pn.add_argument("ds", metavar="DS")
    pn.set_defaults(func=cmd_info)

    pf = sub.add_parser("frames", help="decode frames of one sample to .npy or a folder of PNGs")
    pf.add_argument("ds", metavar="DS")
    pf.add_argument("tensor", metavar="TENSOR")
    pf.add_argument("index", type=int, metavar="INDEX")
    pf.add_argument("frames", type=parse_frames, metavar="SLICE")
    pf.add_argument("--out", required=True, help="file.npy, or a folder for PNG files")
    pf.set_defaults(func=cmd_frames)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vidlake`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (VidlakeError, IndexError) as e:
        print(f"vidlake {args.cmd}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vidlake {args.cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
