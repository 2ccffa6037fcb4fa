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

import importlib
import multiprocessing as mp
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import SampleAppendError, VidlakeError
from ..format import records as fmt
from ..format.chunks import place
from ..htypes import lookup
from ..sources import read
from ..storage import get_provider, split_url
from .job import Job
from .journal import Journal, from_ranges
from .lease import Lease

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Sequence

    from ..dataset import Dataset, Tensor

__all__ = ["DEFAULT_FILE_BATCH", "ChunkPacker", "StagePool", "ingest_files", "new_ingest_journal", "resume_ingest", "resume_job", "stage_files"]

#: files per batch (one commit each) when ingesting in this process
DEFAULT_FILE_BATCH = 64
#: files per worker task on a pool or Ray (each task writes its own chunk objects)
DEFAULT_TASK_FILES = 64


def _sample_of(path: str, transform: Callable[[str], Any] | None, source_creds: dict[str, Any] | None = None) -> Any:
    return transform(path) if transform is not None else read(path, creds=source_creds)


def stage_files(root: str, creds: dict[str, Any] | None, tensor: str, tmeta: dict[str, Any],
                tasks: list[tuple[int, str]], transform: Callable[[str], Any] | None = None,
                source_creds: dict[str, Any] | None = None) -> list[tuple[int, dict[str, Any] | None, str | None, int]]:
    """A worker's part: index every file of ``tasks`` (``(task number, path)``), write their
    bytes and packet indexes into new chunk objects of ``tensor`` under ``root``, and return
    ``(task number, table entry or None, error or None, bytes)`` per file. Nothing is
    committed: the entries name objects nobody else names until the committer commits them.
    ``creds`` are the dataset's storage credentials, ``source_creds`` those of the files (remote
    URLs); both arrive in memory (pickled to the worker), never written anywhere.

        >>> stage_files("./video_ds", None, "videos", ds.videos.meta, [(0, "a.mp4")])
        [(0, {'data': [['9f…', 0, 574823]], 'index': [...], 'info': {...}, 'video': {...}}, None, 574823)]
    """
    provider = get_provider(root, creds=creds)
    spec = lookup(tmeta["htype"])
    packer = ChunkPacker(tensor, tmeta)
    out: list[tuple[int, dict[str, Any] | None, str | None, int]] = []
    for k, path in tasks:
        try:
            p = spec.prepare(_sample_of(path, transform, source_creds), tensor, tmeta, None)
        except VidlakeError as e:
            out.append((k, None, f"{type(e).__name__}: {e}", 0))
            continue
        out.append((k, packer.entry(p), None, len(p.data)))
    packer.flush(provider)
    return out


class ChunkPacker:
    """Places prepared samples of one tensor into new chunk objects of a worker's own (the
    chunk rules of ``docs/FORMAT.md``, starting from no open chunk) and writes them on
    :meth:`flush`; :meth:`entry` gives the table entry naming the placed bytes.

        >>> packer = ChunkPacker("videos", ds.videos.meta)
        >>> entry = packer.entry(prepared)
        >>> packer.flush(provider)
    """

    def __init__(self, tensor: str, tmeta: dict[str, Any]) -> None:
        self.tensor = tensor
        self.target, self.maximum = int(tmeta["target_chunk_size"]), int(tmeta["max_chunk_size"])
        self.chunks: dict[str, list[Any]] = {}
        self.open_chunk: tuple[str, int] | None = None

    def put(self, data: Any) -> list[list[Any]]:
        extents = place(self.open_chunk, len(data), self.target, self.maximum, fmt.new_id)
        pos = 0
        for cid, _off, n in extents:
            piece = data.slice(pos, pos + n) if hasattr(data, "slice") else memoryview(data)[pos:pos + n]
            self.chunks.setdefault(cid, []).append(piece)
            pos += n
        last = extents[-1]
        self.open_chunk = (last[0], last[1] + last[2])
        return [list(e) for e in extents]

    def entry(self, p: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"data": self.put(p.data) if len(p.data) else [], "info": p.info}
        if p.index is not None:
            entry["index"] = self.put(p.index)
        if p.extra:
            entry["video"] = p.extra
        if p.link is not None:
            entry["link"] = p.link
        if getattr(p, "original", None) is not None:  # re-encoded with keep_original (as writer.stage)
            entry["original"] = self.put(p.original)
        return entry

    def flush(self, provider: Any) -> None:
        for cid, parts in self.chunks.items():
            provider.write_parts(fmt.chunk_key(self.tensor, cid), parts, 0)
        self.chunks = {}


#: how often Ray runs a staging task again when its worker dies (``VIDLAKE_RAY_TASK_RETRIES``)
DEFAULT_RAY_RETRIES = 3


class StagePool:
    """Where staging tasks run: a process pool (``workers`` spawned processes) or a Ray
    cluster (``executor="ray"``, ``address`` as for ``ray.init``; a local one by default).
    ``submit(fn, *args)`` starts ``fn(*args)``; ``result(handle)`` waits for it.

        >>> with StagePool(workers=4) as pool:
        ...     h = pool.submit(stage_files, root, None, "videos", meta, tasks)
        ...     pool.result(h)
    """

    def __init__(self, workers: int = 0, executor: str | None = None, address: str | None = None) -> None:
        self.ray: Any = None
        self.pool: ProcessPoolExecutor | None = None
        self._remotes: dict[Any, Any] = {}
        if executor == "ray":
            try:
                import ray
            except ImportError:
                raise VidlakeError("executor='ray' needs Ray: pip install 'vidlake[ray]'") from None
            if not ray.is_initialized():
                ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=False)
            self.ray = ray
            self.retries = int(os.environ.get("VIDLAKE_RAY_TASK_RETRIES", DEFAULT_RAY_RETRIES))
            self.width = max(1, int(ray.cluster_resources().get("CPU", 1)))
        elif executor in (None, "process", "processes"):
            self.pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=mp.get_context("spawn"))
            self.width = max(1, workers)
        else:
            raise ValueError(f"executor is None (a process pool) or 'ray', got {executor!r}")

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.ray is not None:
            remote = self._remotes.get(fn)
            if remote is None:
                remote = self._remotes[fn] = self.ray.remote(max_retries=self.retries)(fn)
            return remote.remote(*args)
        assert self.pool is not None
        return self.pool.submit(fn, *args)

    def result(self, handle: Any) -> Any:
        return handle.result() if isinstance(handle, Future) else self.ray.get(handle)

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> StagePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def ingest_files(ds: Dataset, files: Sequence[str], tensor: str = "videos", compression: str | None = None,
                 workers: int = 0, executor: str | None = None, ray_address: str | None = None,
                 batch_size: int | None = None, transform: Callable[[str], Any] | None = None,
                 asynchronous: bool = False, progress: Callable[[Job], None] | None = None,
                 creds: dict[str, Any] | None = None, source_creds: dict[str, Any] | None = None) -> Job:
    """Append video files to ``tensor`` (created with ``compression`` when missing) as a job
    journaled in ``ds`` (see the module docstring). ``workers > 0`` stages on a process pool,
    ``executor="ray"`` on a Ray cluster (``ray_address``: ``"auto"``, ``"ray://host:10001"``;
    default: a local one). ``creds`` are the dataset's storage credentials for the workers,
    ``source_creds`` those of the files to ingest (``s3://``, ``gs://`` URLs; a creds dict as for
    :func:`vidlake.dataset`). Both are held in memory only, never journaled: pass them again to
    :func:`resume_ingest` / ``ds.resume_job``. Default: the environment's.

        >>> job = vidlake.jobs.ingest_files(ds, ["a.mp4", "b.mp4"], workers=2)
        >>> job = vidlake.jobs.ingest_files(ds, ["s3://bucket/a.mp4"], source_creds={"aws_access_key_id": ...})
    """
    journal = new_ingest_journal(ds, files, tensor, compression, workers, executor, batch_size)
    return _start(ds, journal, workers, executor, ray_address, transform, asynchronous, progress, creds,
                  source_creds)


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
                  progress: Callable[[Job], None] | None = None, creds: dict[str, Any] | None = None,
                  source_creds: dict[str, Any] | None = None) -> Job:
    """Continue an ingest job (``ds.resume_job(id)`` calls this for ingest jobs; ``source_creds``
    as for :func:`ingest_files`)."""
    a = journal.args
    return _start(ds, journal, int(a.get("workers") or 0) if workers is None else workers,
                  a.get("executor") if executor is None else executor, ray_address, transform, asynchronous, progress,
                  creds, source_creds)


def resume_job(ds: Dataset, job_id: str, asynchronous: bool = False, **kwargs: Any) -> Job:
    """``ds.resume_job(job_id)``: continue the journaled job ``job_id`` of any kind (ingest of
    files here; scene jobs through :class:`vidlake.SceneDataset`).

        >>> vidlake.jobs.resume_job(ds, "job-3f0c9a1b2d4e5f60", workers=4)
    """
    journal = Journal.open(ds, job_id)
    if journal.kind == "ingest":
        return resume_ingest(ds, journal, asynchronous=asynchronous, **kwargs)
    scenes = importlib.import_module("vidlake.scenes")  # scenes imports jobs: looked up at call time
    sds = ds if isinstance(ds, scenes.SceneDataset) else scenes.SceneDataset(
        ds.provider, ds.path, read_only=ds.read_only, allow_local_links=ds.link_access.allow_local_links)
    return sds.resume_job(job_id, asynchronous=asynchronous, **kwargs)


def _start(ds: Dataset, journal: Journal, workers: int, executor: str | None, ray_address: str | None,
           transform: Callable[[str], Any] | None, asynchronous: bool, progress: Callable[[Job], None] | None,
           creds: dict[str, Any] | None = None, source_creds: dict[str, Any] | None = None) -> Job:
    def run(job: Job) -> None:
        _run(ds, job, journal, workers, executor, ray_address, transform, creds, source_creds)

    journal.lease = lease = Lease.acquire(ds, journal.id)   # JobRunningError while it runs elsewhere
    job = Job(journal.id, len(journal.tasks), run, ds.path, lease=lease)
    job.on_end.append(lambda j, end: journal.finish({**j.status(), "state": end}))
    job.done = len(journal.committed())
    if progress is not None:
        job.on_progress.append(progress)
    return job.start(asynchronous)


def _path_of(task: dict[str, Any]) -> str:
    p = str(task["path"])
    return p if os.path.exists(p) or "://" in p else str(task.get("abs") or p)


def _run(ds: Dataset, job: Job, journal: Journal, workers: int, executor: str | None, ray_address: str | None,
         transform: Callable[[str], Any] | None, creds: dict[str, Any] | None,
         source_creds: dict[str, Any] | None = None) -> None:
    a = journal.args
    t = ds[str(a["tensor"])]
    tasks = journal.tasks
    pending = journal.pending()
    journal.attach()
    try:
        if executor == "ray" or workers > 0:
            _run_parallel(ds, job, journal, t, tasks, pending, workers, executor, ray_address, transform,
                          int(a.get("batch_size") or DEFAULT_TASK_FILES), creds, source_creds)
        else:
            _run_here(ds, job, journal, t, tasks, pending, transform, int(a.get("batch_size") or DEFAULT_FILE_BATCH),
                      source_creds)
    finally:
        journal.detach()
    journal.write_status({**job.status(), "state": "completed"}, force=True)


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
              transform: Callable[[str], Any] | None, batch: int, source_creds: dict[str, Any] | None = None) -> None:
    from .. import api  # looked up per call: tests and tools may wrap api.read

    ahead = max(1, (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=max(1, ahead - 1), thread_name_prefix="vidlake-index") as pool:
        _run_batches(ds, job, journal, t, tasks, pending, transform, batch, api, pool, ahead, source_creds)


def _remote_bytes(url: str, providers: dict[str, Any], creds: dict[str, Any] | None = None) -> bytes:
    parent, name = split_url(url)
    p = providers.get(parent)
    if p is None:
        p = providers[parent] = get_provider(parent, creds=creds, read_only=True)
    try:
        return p.get(name)
    except KeyError:
        raise SampleAppendError(f"cannot read video {url!r}: no such object") from None


def _run_batches(ds: Dataset, job: Job, journal: Journal, t: Tensor, tasks: list[Any], pending: list[int],
                 transform: Callable[[str], Any] | None, batch: int, api: Any, pool: ThreadPoolExecutor,
                 ahead: int, source_creds: dict[str, Any] | None = None) -> None:
    providers: dict[str, Any] = {}
    for b in range(0, len(pending), batch):
        job.check_cancel()
        ks = pending[b:b + batch]
        ok: list[int] = []

        def stage(ks: list[int] = ks, ok: list[int] = ok) -> None:
            # files are read here in order; their packet indexes are built on a thread pool
            # while earlier ones are staged (the core releases the GIL while it demuxes). An
            # interrupt while reading still stages every file read before it.
            inflight: deque[tuple[int, str, Future[Any]]] = deque()

            def drain_one() -> None:
                k, path, fut = inflight.popleft()
                try:
                    p = fut.result()
                    save = ds.writer.savepoint()
                    try:
                        ds.writer.stage(t, p)
                        ds.writer.check_alignment({t.key: len(t) - 1})
                    except BaseException:
                        ds.writer.rollback(save)
                        raise
                except VidlakeError as e:
                    job.error(str(tasks[k]["path"]), e)
                    return
                finally:
                    job.bytes += _size(path)
                journal.staged.add(k)
                ok.append(k)
                job.progress()

            try:
                for k in ks:
                    path = _path_of(tasks[k])
                    try:
                        sample = transform(path) if transform is not None else api.read(path, creds=source_creds)
                        if transform is None and "://" in path and not path.startswith("file://"):
                            sample._buffer = _remote_bytes(path, providers, source_creds)  # one client per bucket
                    except VidlakeError as e:
                        job.error(str(tasks[k]["path"]), e)
                        continue
                    inflight.append((k, path, pool.submit(t.spec.prepare, sample, t.key, t.meta, ds.link_access)))
                    while len(inflight) > ahead:
                        drain_one()
            finally:
                while inflight:
                    drain_one()
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
                  transform: Callable[[str], Any] | None, per_task: int, creds: dict[str, Any] | None,
                  source_creds: dict[str, Any] | None = None) -> None:
    root = ds.path
    pool = StagePool(workers, executor, ray_address)
    chunks = [pending[b:b + per_task] for b in range(0, len(pending), per_task)]
    window = 2 * pool.width
    try:
        futs: list[Any] = []
        nxt = 0

        def fill() -> None:
            nonlocal nxt
            while nxt < len(chunks) and len(futs) < window:
                part = [(k, _path_of(tasks[k])) for k in chunks[nxt]]
                futs.append(pool.submit(stage_files, root, creds, t.key, dict(t.meta), part, transform, source_creds))
                nxt += 1
        fill()
        while futs:
            job.check_cancel()
            f = futs.pop(0)
            results = pool.result(f)
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
        pool.shutdown()
