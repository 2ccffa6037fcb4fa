"""The ``vidlake`` command line.

    vidlake ingest videos/ clip.mkv --to ./video_ds [--tensor videos] [--compression mp4]
    vidlake info ./video_ds
    vidlake frames ./video_ds videos 0 10:50:5 --out clip.npy      # or --out frames_dir/ (PNGs)
    vidlake view ./video_ds [--port 8765] [--no-browser]           # browse it in a local web app
    vidlake scan s3://bucket/input/                                 # videos by extension, others counted
    vidlake select s3://bucket/input/ --n-samples 50 --export s3://bucket/lightly/ [--resize 512]

``ingest`` never decodes: each file is read once, indexed (demux only) and stored as is, with
a progress bar. Files whose real container differs from the tensor's ``sample_compression``
(or that are not readable videos) are reported and skipped; the exit code is then 1.
``ingest --reencode seek|intra|lerobot|JSON`` re-encodes each file instead (decode + encode,
``vidlake.reencode_bytes``; ``--keep-original`` keeps the file too); ``--format mot|lasot
--encode-frames`` encodes each image sequence into one video sample.
``frames`` takes a frame selection like Python indexing: ``7``, ``-1``, ``0:10``, ``0:100:5``,
``:`` or a list ``3,17,5``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import JobRunningError, VidlakeError
from .htypes.video import ENCODE_CONTAINERS, VIDEO_COMPRESSIONS

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


def collect_files(inputs: Sequence[str], creds: dict[str, Any] | None = None) -> list[str]:
    """Files named on the command line plus the video files (by extension) under named folders
    and under URL prefixes (``s3://bucket/videos/``: every key below it, listed by its provider
    with ``creds``)."""
    exts = {"." + c for c in VIDEO_COMPRESSIONS}
    out: list[str] = []
    for p in inputs:
        if "://" in p and not p.startswith("file://"):
            from .storage import get_provider

            if os.path.splitext(p)[1].lower() in exts:  # one remote file
                out.append(p)
                continue
            root = p.rstrip("/")
            out.extend(f"{root}/{k}" for k in get_provider(root, creds=creds, read_only=True).list()
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


def _reencode_arg(args: argparse.Namespace) -> Any:
    """--reencode: a profile name, a JSON dict of encode settings, or None (as is)."""
    v = getattr(args, "reencode", None)
    if v is None or v in ("none", "as-is"):
        return None
    if v.lstrip().startswith("{"):
        return json.loads(v)
    return v


def cmd_ingest(args: argparse.Namespace) -> int:
    from .api import dataset

    if args.format != "video":  # MOT / LaSOT sequence folders: vidlake/importers/
        from .importers.cli import ingest_folders

        return ingest_folders(args)

    if args.resume is not None:
        return _resume_ingest(args)
    files = collect_files(args.inputs, args.creds)
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
        reencode = _reencode_arg(args)
        if reencode is not None and comp not in ENCODE_CONTAINERS:
            comp = "mp4"  # re-encoded files are written as mp4 unless --compression says mkv / webm
        try:
            ds.create_tensor(args.tensor, htype="video", sample_compression=comp, reencode=reencode,
                             keep_original=bool(getattr(args, "keep_original", False)))
        except ValueError as e:
            print(f"vidlake ingest: {e}", file=sys.stderr)
            return 2
    elif _reencode_arg(args) is not None:
        have = (ds[args.tensor].meta.get("reencode") or {}).get("profile")
        want = _reencode_arg(args)
        if have != (want if isinstance(want, str) else "custom"):
            print(f"vidlake ingest: tensor {args.tensor!r} exists with reencode={have!r}; --reencode applies "
                  "to a new tensor only", file=sys.stderr)
            return 2
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
                                ray_address=None if args.ray in (None, "auto") else args.ray, progress=progress,
                                source_creds=getattr(args, "creds", None))
    except JobRunningError as e:
        print(f"vidlake ingest: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # leaving the batch's `with ds:` committed what was staged before the interrupt (unless
        # the interrupt hit that commit): the commit record says which tasks are in
        from .api import load
        from .jobs.journal import committed_tasks

        now_ds = load(args.to, read_only=True)
        done = committed_tasks(now_ds, journal.id)
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


def cmd_check(args: argparse.Namespace) -> int:
    from .api import load

    ds = load(args.ds, read_only=True)
    counts = ds.check()
    for name, n in counts.items():
        table = ds[name]._entries
        lists = f", {table.loaded_lists()} segment list(s)" if table.lists else ""
        print(f"{name}: {n} sample(s), {sum(1 for _ in table.iter_segments())} table segment(s){lists} checked")
    print(f"{ds.path}: ok (format {ds.format_version}, generation {ds._meta['generation']})")
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


def cmd_view(args: argparse.Namespace) -> int:
    import json
    import threading

    from .api import load
    from .viewer import visualize

    creds = None
    if args.creds:
        with open(args.creds) as f:
            creds = json.load(f)
    ds = load(args.ds, read_only=True, creds=creds, allow_local_links=True if args.allow_local_links else None)
    v = visualize(ds, open_browser=not args.no_browser, port=args.port)
    print(f"vidlake view: serving {args.ds} at {v.url}", flush=True)
    print("vidlake view: press Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait(args.seconds)
    finally:
        v.close()
    return 0


def _source_creds_arg(text: str | None) -> dict | None:
    """``vidlake ingest --creds``: the credentials of the files to ingest, held in memory only
    (never written to the dataset): a JSON object, a JSON file, ``ENV:NAME`` (the variables
    ``VIDLAKE_CREDS_<NAME>_<FIELD>``, e.g. ``VIDLAKE_CREDS_SRC_AWS_SECRET_ACCESS_KEY`` for
    ``ENV:src``) or ``ENV`` (the storage client's own default chain, as without ``--creds``)."""
    from .errors import CredentialsError
    from .storage.creds import CREDS_FIELDS, env_var_name, validate_creds

    if not text or text == "ENV":
        return None
    if text.startswith("ENV:"):
        name = text[4:]
        if not name:
            raise argparse.ArgumentTypeError("--creds ENV:NAME needs a NAME (the variables VIDLAKE_CREDS_<NAME>_<FIELD>)")
        creds: dict | None = {f: os.environ[env_var_name(name, f)] for f in CREDS_FIELDS
                              if f != "headers" and os.environ.get(env_var_name(name, f))}
        if not creds:
            raise argparse.ArgumentTypeError(
                f"--creds {text}: none of the variables {env_var_name(name, '<FIELD>')} is set (e.g. "
                f"{env_var_name(name, 'aws_access_key_id')}, {env_var_name(name, 'aws_secret_access_key')})")
    else:
        creds = _creds_arg(text)
    try:
        return validate_creds(creds, where="--creds")
    except CredentialsError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _creds_arg(text: str | None) -> dict | None:
    """``--creds``: a JSON object or a JSON file (else the environment's default chain)."""
    if not text:
        return None
    import json

    try:
        raw = open(text).read() if os.path.isfile(text) else text  # noqa: SIM115 - tiny file
        val = json.loads(raw)
    except (OSError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"--creds must be a JSON object or a JSON file: {e}") from None
    if not isinstance(val, dict):
        raise argparse.ArgumentTypeError("--creds must be a JSON object")
    return val


def _resize_arg(text: str):
    """``--resize``: ``WxH`` (``640x-1`` keeps the aspect), an int (longest side) or a float (scale)."""
    t = text.strip().lower()
    try:
        if "x" in t:
            w, h = t.split("x", 1)
            return (int(w), int(h))
        return float(t) if "." in t else int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad --resize {text!r}: use WxH, a longest side (512) "
                                         "or a scale (0.5)") from None


def cmd_scan(args: argparse.Namespace) -> int:
    from .curate import scan

    found = scan(args.source, creds=args.creds, recursive=not args.no_recursive)
    for v in found.videos:
        print(v)
    print(found.summary(), file=sys.stderr)
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    import json

    from .curate import export_frames, select

    source = args.source
    if args.tensor:
        from .api import load

        ds = load(args.source, read_only=args.cache is None, creds=args.creds)
        if args.tensor not in ds.tensors:
            print(f"vidlake select: no tensor {args.tensor!r} in {args.source}; tensors: {list(ds.tensors)}",
                  file=sys.stderr)
            return 2
        source = ds.tensors[args.tensor]
    sel = select(source, n_samples=args.n_samples, strategy=args.strategy, candidates=args.candidates,
                 seed=args.seed, per_video=args.per_video, cache=args.cache, creds=args.creds,
                 workers=args.workers, progress=not args.quiet)
    print(f"selected {len(sel)} of {sel.stats.get('candidates', 0)} candidate frames from "
          f"{sel.stats.get('videos', 0)} video(s) ({args.strategy})", file=sys.stderr)
    for url, err in sel.errors.items():
        print(f"vidlake select: skipped {url}: {err}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            for r in sel.records():
                f.write(json.dumps(r) + "\n")
    if args.export:
        res = export_frames(sel, args.export, format=args.format, quality=args.quality, resize=args.resize,
                            creds=args.export_creds or args.creds, progress=not args.quiet)
        print(f"exported {res.written} frame(s), {res.skipped} already there, {len(res.failed)} failed; "
              f"manifest {res.manifest}", file=sys.stderr)
        for name, err in res.failed:
            print(f"vidlake select: failed {name}: {err}", file=sys.stderr)
        return 1 if res.failed else 0
    if not args.json:
        for r in sel.records():
            print(json.dumps(r))
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
    pi.add_argument("--creds", type=_source_creds_arg, default=None, metavar="FILE|JSON|ENV:NAME",
                    help="credentials of s3:// / gs:// inputs, memory only (default: the environment's); "
                         "pass them again with --resume")
    pi.add_argument("--resume", nargs="?", const="latest", default=None, metavar="JOB_ID",
                    help="continue an interrupted ingest job of --to DS (default: its latest unfinished one)")
    pi.add_argument("--workers", type=int, default=0, metavar="N",
                    help="index files and stage chunks on N processes (one committer; default: in this process)")
    pi.add_argument("--batch", type=int, default=None, metavar="N",
                    help="files per commit (default 64; on a pool or Ray: per worker task)")
    pi.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                    help="stage on a Ray cluster (ADDRESS or auto; pip install 'vidlake[ray]')")
    pi.add_argument("--reencode", default=None, metavar="PROFILE",
                    help="re-encode each file: seek, intra, lerobot, none (default: as is), or a JSON dict of "
                         "vidlake.encode settings (README 'Writing video')")
    pi.add_argument("--keep-original", action="store_true", help="with --reencode: keep each file as given too")
    pi.add_argument("--encode-frames", action="store_true",
                    help="--format mot|lasot: encode each image sequence into one video sample")
    pi.set_defaults(func=cmd_ingest)

    pn = sub.add_parser("info", help="describe a dataset")
    pn.add_argument("ds", metavar="DS")
    pn.set_defaults(func=cmd_info)

    pk = sub.add_parser("check", help="check every table segment of a dataset (loading reads them lazily)")
    pk.add_argument("ds", metavar="DS")
    pk.set_defaults(func=cmd_check)

    pf = sub.add_parser("frames", help="decode frames of one sample to .npy or a folder of PNGs")
    pf.add_argument("ds", metavar="DS")
    pf.add_argument("tensor", metavar="TENSOR")
    pf.add_argument("index", type=int, metavar="INDEX")
    pf.add_argument("frames", type=parse_frames, metavar="SLICE")
    pf.add_argument("--out", required=True, help="file.npy, or a folder for PNG files")
    pf.set_defaults(func=cmd_frames)

    pv = sub.add_parser("view", help="browse a dataset in a local web app (grid, player, overlays)")
    pv.add_argument("ds", metavar="DS")
    pv.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    pv.add_argument("--no-browser", action="store_true", help="print the URL, do not open a browser")
    pv.add_argument("--creds", default=None, metavar="FILE.json", help="storage creds of a remote dataset")
    pv.add_argument("--allow-local-links", action="store_true", help="read local files of link[video] samples")
    pv.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    pv.set_defaults(func=cmd_view)
    ps = sub.add_parser("scan", help="list the video files of a folder, glob, s3:// prefix or HTTP listing")
    ps.add_argument("source", metavar="SOURCE")
    ps.add_argument("--creds", type=_creds_arg, default=None, help="JSON object or file (default: environment)")
    ps.add_argument("--no-recursive", action="store_true", help="only the top folder / prefix level")
    ps.set_defaults(func=cmd_scan)

    pc = sub.add_parser("select", help="pick diverse frames of videos and export them as images")
    pc.add_argument("source", metavar="SOURCE", help="folder, glob, s3:// prefix, HTTP listing, or a dataset "
                    "with --tensor")
    pc.add_argument("--tensor", default=None, help="SOURCE is a dataset: its video tensor")
    pc.add_argument("--n-samples", type=int, default=50, help="frames to select (default 50)")
    pc.add_argument("--strategy", choices=("diversity", "random", "uniform"), default="diversity")
    pc.add_argument("--candidates", default=None,
                    help="keyframes | all | every:K | per_second:N (default per_second:1)")
    pc.add_argument("--per-video", type=int, default=None, help="at most this many frames per video")
    pc.add_argument("--seed", type=int, default=0)
    pc.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    pc.add_argument("--cache", default=None, help="folder or URL prefix that keeps embeddings between runs")
    pc.add_argument("--export", default=None, metavar="DEST", help="folder or s3:// prefix for the images")
    pc.add_argument("--format", choices=("png", "jpg", "jpeg", "webp"), default="png")
    pc.add_argument("--quality", type=int, default=95, help="jpg / webp quality (default 95)")
    pc.add_argument("--resize", type=_resize_arg, default=None, help="WxH, longest side, or scale")
    pc.add_argument("--json", default=None, metavar="FILE", help="write the selection as JSON lines")
    pc.add_argument("--creds", type=_creds_arg, default=None, help="JSON object or file (default: environment)")
    pc.add_argument("--export-creds", type=_creds_arg, default=None, help="creds for DEST (default: --creds)")
    pc.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    pc.set_defaults(func=cmd_select)
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
