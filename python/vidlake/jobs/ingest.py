"""Ingesting video files as a journaled job: resumable after a kill, in-process or on a pool.

    >>> job = vidlake.jobs.ingest_files(ds, ["a.mp4", "b.mp4"], tensor="videos")
    >>> job.status()["done"]
    2
    >>> job = vidlake.jobs.ingest_files(ds, files, workers=4)               # a process pool
    >>> job = vidlake.jobs.ingest_files(ds, files, executor="ray")          # a Ray cluster
    >>> ds.resume_job(job.id)            # after a SIGKILL: continues, nothing twice, nothing lost

How it runs: files are split into batches. A *worker* (this process, a pool process or a Ray
task) stages a batch: it reads each file (through the per-file ``transform`` hook, see
below), builds its packet index (demux only) and, on a pool or Ray, writes the batch's bytes
into chunk objects of its own (fresh ids: nobody names them yet) and returns the table
entries. The *committer* (this process, alone) adds the entries in task order and commits
once per batch; the commit record gets the batch's task numbers in the same atomic write
(``vidlake/jobs/journal.py``). A kill loses at most the batches not committed, whose chunk
objects nobody names (harmless leftovers); resuming redoes exactly those.

``transform`` (a picklable ``fn(path) -> sample`` run by the worker for every file; default
:func:`vidlake.read`) is the hook for per-file steps such as re-encoding: it may return a
``vidlake.read(...)`` sample, a path, or the bytes of the file to store.
"""
from __future__ import annotations

import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import VidlakeError
from ..format import records as fmt
from ..format.chunks import place
from ..htypes import lookup
from ..sources import read
from ..storage import get_provider
from .job import Job
from .journal import Journal, from_ranges

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Sequence

    from ..dataset import Dataset, Tensor

__all__ = ["DEFAULT_FILE_BATCH", "ingest_files", "new_ingest_journal", "resume_ingest", "stage_files"]

#: files per batch (one commit each) when ingesting in this process
DEFAULT_FILE_BATCH = 16
#: files per worker task on a pool or Ray (each task writes its own chunk objects)
DEFAULT_TASK_FILES = 64


def _sample_of(path: str, transform: Callable[[str], Any] | None) -> Any:
    return transform(path) if transform is not None else read(path)


def stage_files(root: str, creds: dict[str, Any] | None, tensor: str, tmeta: dict[str, Any],
                tasks: list[tuple[int, str]], transform: Callable[[str], Any] | None = None
                ) -> list[tuple[int, dict[str, Any] | None, str | None, int]]:
    """A worker's part: index every file of ``tasks`` (``(task number, path)``), write their
    bytes and packet indexes into new chunk objects of ``tensor`` under ``root``, and return
    ``(task number, table entry or None, error or None, bytes)`` per file. Nothing is
    committed: the entries name objects nobody else names until the committer commits them.

        >>> stage_files("./video_ds", None, "videos", ds.videos.meta, [(0, "a.mp4")])
        [(0, {'data': [['9f…', 0, 574823]], 'index': [...], 'info': {...}, 'video': {...}}, None, 574823)]
    """
    provider = get_provider(root, creds=creds)
    spec = lookup(tmeta["htype"])
    target, maximum = int(tmeta["target_chunk_size"]), int(tmeta["max_chunk_size"])
    chunks: dict[str, list[Any]] = {}
    open_chunk: tuple[str, int] | None = None
    out: list[tuple[int, dict[str, Any] | None, str | None, int]] = []

    def put(data: Any) -> list[list[Any]]:
        nonlocal open_chunk
        extents = place(open_chunk, len(data), target, maximum, fmt.new_id)
        pos = 0
        for cid, _off, n in extents:
            piece = data.slice(pos, pos + n) if hasattr(data, "slice") else memoryview(data)[pos:pos + n]
            chunks.setdefault(cid, []).append(piece)
            pos += n
        last = extents[-1]
        open_chunk = (last[0], last[1] + last[2])
        return [list(e) for e in extents]

    for k, path in tasks:
        try:
            p = spec.prepare(_sample_of(path, transform), tensor, tmeta, None)
        except VidlakeError as e:
            out.append((k, None, f"{type(e).__name__}: {e}", 0))
            continue
        entry: dict[str, Any] = {"data": put(p.data), "info": p.info}
        if p.index is not None:
            entry["index"] = put(p.index)
        if p.extra:
            entry["video"] = p.extra
        out.append((k, entry, None, len(p.data)))
    for cid, parts in chunks.items():
        provider.write_parts(fmt.chunk_key(tensor, cid), parts, 0)
    return out


def _ray_executor(address: str | None) -> Any:
    try:
        import ray
    except ImportError:
        raise VidlakeError("executor='ray' needs Ray: pip install 'vidlake[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=False)
    remote = ray.remote(max_retries=3)(stage_files)

    class _RayPool:
        def submit(self, fn: Any, *args: Any) -> Any:
            return remote.remote(*args)

        def result(self, ref: Any) -> Any:
            return ray.get(ref)

        def shutdown(self) -> None:
            pass

    return _RayPool()


def ingest_files(ds: Dataset, files: Sequence[str], tensor: str = "videos", compression: str | None = None,
                 workers: int = 0, executor: str | None = None, ray_address: str | None = None,
                 batch_size: int | None = None, transform: Callable[[str], Any] | None = None,
                 asynchronous: bool = False, progress: Callable[[Job], None] | None = None) -> Job:
    """Append video files to ``tensor`` (created with ``compression`` when missing) as a job
    journaled in ``ds`` (see the module docstring). ``workers > 0`` stages on a process pool,
    ``executor="ray"`` on a Ray cluster (``ray_address``: ``"auto"``, ``"ray://host:10001"``;
    default: a local one).

        >>> job = vidlake.jobs.ingest_files(ds, ["a.mp4", "b.mp4"], workers=2)
    """
    journal = new_ingest_journal(ds, files, tensor, compression, workers, executor, batch_size)
    return _start(ds, journal, workers, executor, ray_address, transform, asynchronous, progress)


def new_ingest_journal(ds: Dataset, files: Sequence[str], tensor: str = "videos", compression: str | None = None,
                       workers: int = 0, executor: str | None = None, batch_size: int | None = None) -> Journal:
    """Create ``tensor`` when missing and write the journal of a new ingest job (not started:
    :func:`resume_ingest` runs it)."""
    if tensor not in ds.tensors:
        comp = compression
        if comp is None and files:
            comp = os.path.splitext(files[0])[1].lower().lstrip(".")
        ds.create_tensor(tensor, htype="video", sample_compression=comp)
    tasks = [{"path": f, "abs": f if "://" in f else os.path.abspath(f)} for f in files]
    return Journal.create(ds, "ingest", tasks, {"tensor": tensor, "batch_size": batch_size, "workers": workers,
                                                "executor": executor})


def resume_ingest(ds: Dataset, journal: Journal, asynchronous: bool = False, workers: int | None = None,
                  executor: str | None = None, ray_address: str | None = None,
                  transform: Callable[[str], Any] | None = None,
                  progress: Callable[[Job], None] | None = None) -> Job:
    """Continue an ingest job (``ds.resume_job(id)`` calls this for ingest jobs)."""
    a = journal.args
    return _start(ds, journal, int(a.get("workers") or 0) if workers is None else workers,
                  a.get("executor") if executor is None else executor, ray_address, transform, asynchronous, progress)


def _start(ds: Dataset, journal: Journal, workers: int, executor: str | None, ray_address: str | None,
           transform: Callable[[str], Any] | None, asynchronous: bool, progress: Callable[[Job], None] | None) -> Job:
    def run(job: Job) -> None:
        _run(ds, job, journal, workers, executor, ray_address, transform)

    job = Job(journal.id, len(journal.tasks), run, ds.path)
    job.done = len(journal.committed())
    if progress is not None:
        job.on_progress.append(progress)
    return job.start(asynchronous)


def _path_of(task: dict[str, Any]) -> str:
    p = str(task["path"])
    return p if os.path.exists(p) or "://" in p else str(task.get("abs") or p)


def _run(ds: Dataset, job: Job, journal: Journal, workers: int, executor: str | None, ray_address: str | None,
         transform: Callable[[str], Any] | None) -> None:
    a = journal.args
    t = ds[str(a["tensor"])]
    tasks = journal.tasks
    pending = journal.pending()
    journal.attach()
    try:
        if executor == "ray" or workers > 0:
            _run_parallel(ds, job, journal, t, tasks, pending, workers, executor, ray_address, transform,
                          int(a.get("batch_size") or DEFAULT_TASK_FILES))
        else:
            _run_here(ds, job, journal, t, tasks, pending, transform, int(a.get("batch_size") or DEFAULT_FILE_BATCH))
    finally:
        journal.detach()
    journal.write_status(job.status())


def _commit_batch(ds: Dataset, journal: Journal, stage: Callable[[], None]) -> None:
    threshold = ds.flush_threshold
    ds.flush_threshold = 1 << 62  # one commit per batch, with the journal's progress in it
    try:
        with ds:
            stage()
    except BaseException:
        if journal.staged and not _was_committed(ds, journal):
            journal.batch_dropped()
        else:
            journal.batch_committed()
        raise
    finally:
        ds.flush_threshold = threshold
    journal.batch_committed()


def _was_committed(ds: Dataset, journal: Journal) -> bool:
    """After an interrupt: did the batch's commit happen (``with ds:`` commits on the way out)?"""
    done = ds._meta.get("info", {}).get("jobs", {}).get(journal.id, {}).get("done")
    return bool(journal.staged) and journal.staged <= from_ranges(done)


def _run_here(ds: Dataset, job: Job, journal: Journal, t: Tensor, tasks: list[Any], pending: list[int],
              transform: Callable[[str], Any] | None, batch: int) -> None:
    from .. import api

    for b in range(0, len(pending), batch):
        job.check_cancel()
        ks = pending[b:b + batch]
        ok: list[int] = []

        def stage(ks: list[int] = ks, ok: list[int] = ok) -> None:
            for k in ks:
                path = _path_of(tasks[k])
                try:
                    sample = transform(path) if transform is not None else api.read(path)
                    ds.writer.append_rows([{t.key: sample}], only=[t.key])
                except VidlakeError as e:
                    job.error(str(tasks[k]["path"]), e)
                    continue
                finally:
                    job.bytes += _size(path)
                journal.staged.add(k)
                ok.append(k)
                job.progress()
        _commit_batch(ds, journal, stage)
        job.done += len(ok)
        job.count("appended", len(ok))
        journal.write_status(job.status())
        job.progress()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _run_parallel(ds: Dataset, job: Job, journal: Journal, t: Tensor, tasks: list[Any], pending: list[int],
                  workers: int, executor: str | None, ray_address: str | None,
                  transform: Callable[[str], Any] | None, per_task: int) -> None:
    creds = getattr(ds.provider, "creds", None)
    root = ds.path
    pool: Any
    if executor == "ray":
        pool = _ray_executor(ray_address)
    else:
        import multiprocessing as mp

        pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=mp.get_context("spawn"))
    chunks = [pending[b:b + per_task] for b in range(0, len(pending), per_task)]
    window = max(2, 2 * max(1, workers))
    try:
        futs: list[Any] = []
        nxt = 0

        def fill() -> None:
            nonlocal nxt
            while nxt < len(chunks) and len(futs) < window:
                part = [(k, _path_of(tasks[k])) for k in chunks[nxt]]
                futs.append(pool.submit(stage_files, root, creds, t.key, dict(t.meta), part, transform))
                nxt += 1
        fill()
        while futs:
            job.check_cancel()
            f = futs.pop(0)
            results = f.result() if isinstance(f, Future) else pool.result(f)
            fill()
            good = [(k, e) for k, e, err, _n in results if e is not None]

            def stage(good: list[tuple[int, dict[str, Any]]] = good) -> None:
                for k, entry in good:
                    ds.writer.stage_entry(t, entry)
                    journal.staged.add(k)
            _commit_batch(ds, journal, stage)
            for k, _e, err, n in results:
                job.bytes += n
                if err is not None:
                    job.error(str(tasks[k]["path"]), err)
            job.done += len(good)
            job.count("appended", len(good))
            journal.write_status(job.status())
            job.progress()
    finally:
        if isinstance(pool, Executor):
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            pool.shutdown()
