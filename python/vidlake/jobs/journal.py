"""Job journals stored in the dataset: what a job was asked to do, and what it committed.

A job's journal is two things (``docs/FORMAT.md``, "Job journals"):

* ``_jobs/<job id>/spec.json`` (written once, before the job's first commit): the job's tasks
  (scenes as JSON, or file paths) and arguments, never secrets;
* ``info.jobs[<job id>]`` in the commit record ``dataset_meta.json``: the task numbers whose rows
  are committed, as ``[start, stop)`` ranges. Every commit of the job writes it *in the same
  atomic replacement as the rows themselves* (a writer commit hook), so after a SIGKILL at any
  moment the record says exactly which tasks are in the dataset: a resumed job does the others,
  nothing twice, nothing lost.

``_jobs/<job id>/status.json`` (best effort, rewritten after each batch) keeps the last status
and errors for ``vidlake jobs``-style inspection; nothing depends on it.

    >>> j = Journal.create(ds, "scenes", tasks=[s.to_json() for s in scenes], args={"update": True})
    >>> j.committed()          # task numbers already in the dataset
    set()
"""
from __future__ import annotations

import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import ConcurrentWriteError, DatasetError, StorageError
from ..format import records as fmt

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    from ..dataset import Dataset
    from .lease import Lease

__all__ = ["Journal", "committed_tasks", "from_ranges", "job_status", "list_jobs", "to_ranges"]

JOBS_PREFIX = "_jobs"


def to_ranges(nums: Iterable[int]) -> list[list[int]]:
    """``{0, 1, 2, 5}`` -> ``[[0, 3], [5, 6]]`` (sorted ``[start, stop)`` ranges).

        >>> to_ranges([5, 0, 1, 2])
        [[0, 3], [5, 6]]
    """
    out: list[list[int]] = []
    for n in sorted(set(nums)):
        if out and out[-1][1] == n:
            out[-1][1] = n + 1
        else:
            out.append([n, n + 1])
    return out


def from_ranges(ranges: Any) -> set[int]:
    """The inverse of :func:`to_ranges`.

        >>> sorted(from_ranges([[0, 3], [5, 6]]))
        [0, 1, 2, 5]
    """
    out: set[int] = set()
    for r in ranges or ():
        if isinstance(r, list) and len(r) == 2 and all(isinstance(v, int) for v in r):
            out.update(range(r[0], r[1]))
    return out


def _spec_key(job_id: str) -> str:
    return f"{JOBS_PREFIX}/{job_id}/spec.json"


def _status_key(job_id: str) -> str:
    return f"{JOBS_PREFIX}/{job_id}/status.json"


def _done_key(job_id: str) -> str:
    return f"{JOBS_PREFIX}/{job_id}/done.json"


def _read_json(ds: Dataset, key: str) -> dict[str, Any] | None:
    """A stored JSON object of a job, or None when missing or unreadable (never raises for
    damage: callers fall back to what the commit record says)."""
    try:
        raw = ds.provider.get(key)
    except KeyError:
        return None
    try:
        v = fmt.decode_json(raw, f"{ds.path}/{key}")
    except DatasetError:
        return None
    return v if isinstance(v, dict) else None


def committed_tasks(ds: Dataset, job_id: str) -> set[int]:
    """Task numbers of ``job_id`` whose rows are committed: the commit record's
    ``info.jobs[job_id]`` while the job has one (it is written atomically with the rows), else the
    ranges the ended job filed in ``_jobs/<id>/done.json`` (empty when it committed nothing).

        >>> sorted(committed_tasks(ds, "job-3f0c9a1b2d4e5f60"))
        [0, 1, 2]
    """
    rec = ds._meta.get("info", {}).get("jobs", {}).get(job_id)
    if isinstance(rec, dict):
        return from_ranges(rec.get("done"))
    done = _read_json(ds, _done_key(job_id))
    return from_ranges(done.get("done")) if done is not None else set()


class Journal:
    """The journal of one job in one dataset (see the module docstring)."""

    def __init__(self, ds: Dataset, job_id: str, spec: dict[str, Any]) -> None:
        self.ds = ds
        self.id = job_id
        self.spec = spec
        #: task numbers staged in the current batch (not committed yet)
        self.staged: set[int] = set()
        self._status_at = 0.0
        #: the running job's lease (``lease.py``); a job that lost it must not commit
        self.lease: Lease | None = None
        self._committed = committed_tasks(ds, job_id)

    @property
    def kind(self) -> str:
        return str(self.spec.get("kind"))

    @property
    def tasks(self) -> list[Any]:
        return list(self.spec.get("tasks", []))

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.spec.get("args", {}))

    @classmethod
    def create(cls, ds: Dataset, kind: str, tasks: list[Any], args: dict[str, Any]) -> Journal:
        """Write a new job's spec into the dataset and return its journal."""
        job_id = "job-" + uuid.uuid4().hex[:16]
        spec = {"format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION, "id": job_id, "kind": kind,
                "created": time.time(), "args": args, "tasks": tasks}
        ds.provider.put(_spec_key(job_id), fmt.encode_json(spec))
        return cls(ds, job_id, spec)

    @classmethod
    def open(cls, ds: Dataset, job_id: str) -> Journal:
        """The journal of an existing job (``DatasetError`` when there is none)."""
        try:
            raw = ds.provider.get(_spec_key(job_id))
        except KeyError:
            raise DatasetError(f"{ds.path} has no job {job_id!r} (jobs: {list_jobs(ds) or 'none'})") from None
        what = f"{ds.path}/{_spec_key(job_id)}"
        spec = fmt.decode_json(raw, what)
        fmt.check_version(spec, what)
        if not isinstance(spec.get("tasks"), list) or spec.get("id") != job_id:
            raise DatasetError(f"{what} is damaged (no task list, or another job's id)")
        return cls(ds, job_id, spec)

    def committed(self) -> set[int]:
        """Task numbers whose rows are committed (as the dataset's commit record says)."""
        return set(self._committed)

    def pending(self) -> list[int]:
        """Task numbers not committed yet, in order."""
        return [k for k in range(len(self.spec["tasks"])) if k not in self._committed]

    # -- the commit hook: progress is part of the same commit as the rows -----------------------
    def hook(self, meta: dict[str, Any]) -> None:
        if self.lease is not None:
            self.lease.check()
        done = self._committed | self.staged
        meta.setdefault("info", {}).setdefault("jobs", {})[self.id] = {"done": to_ranges(done)}

    def attach(self) -> None:
        if self.hook not in self.ds.writer.commit_hooks:
            self.ds.writer.commit_hooks.append(self.hook)

    def detach(self) -> None:
        with contextlib.suppress(ValueError):
            self.ds.writer.commit_hooks.remove(self.hook)

    def batch_committed(self) -> None:
        """The staged batch is committed: its tasks count as done."""
        self._committed |= self.staged
        self.staged = set()

    def batch_dropped(self) -> None:
        self.staged = set()

    def finish(self, status: dict[str, Any]) -> None:
        """The job ended (``status`` is its final status): file its committed ranges in
        ``_jobs/<id>/done.json``, then drop its entry from the commit record, so the record does
        not grow by one entry per job forever. In that order: after a crash between the two,
        both say the same (the record, which readers prefer, wins anyway). Best effort: when
        another writer committed meanwhile the entry stays until the job next ends."""
        if self.lease is not None and self.lease.lost.is_set():
            return  # another runner owns the job now
        done = self.committed()
        now = time.time()
        record = {"format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION, "id": self.id,
                  "kind": self.kind, "state": status.get("state"), "ended": now, "total": len(self.tasks),
                  "done": to_ranges(done)}
        try:
            self.ds.provider.put(_done_key(self.id), fmt.encode_json(record))
        except (StorageError, OSError):
            return  # without done.json the record's entry must stay
        self.write_status(status, force=True)
        if self.id not in self.ds._meta.get("info", {}).get("jobs", {}):
            return

        def drop(meta: dict[str, Any]) -> None:
            jobs = meta.get("info", {}).get("jobs", {})
            jobs.pop(self.id, None)
            if not jobs:
                meta.get("info", {}).pop("jobs", None)

        with contextlib.suppress(ConcurrentWriteError, StorageError, OSError):
            self.ds.writer.update_meta(drop)

    def write_status(self, status: dict[str, Any], force: bool = False) -> None:
        """Best effort: the last status, for inspection (at most once a second unless ``force``
        or the job ended)."""
        now = time.monotonic()
        if not force and status.get("state") == "running" and now - self._status_at < 1.0:
            return
        self._status_at = now
        with contextlib.suppress(StorageError, OSError):
            self.ds.provider.put(_status_key(self.id), fmt.encode_json(
                {"format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION, **status}))


def list_jobs(ds: Dataset) -> list[str]:
    """Ids of the jobs journaled in ``ds``, oldest first.

        >>> vidlake.jobs.list_jobs(ds)
        ['job-3f0c9a1b2d4e5f60']
    """
    ids: dict[str, float] = {}
    for key in ds.provider.list(JOBS_PREFIX):
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == JOBS_PREFIX and parts[2] == "spec.json":
            ids[parts[1]] = 0.0
    for job_id in ids:
        with contextlib.suppress(Exception):
            ids[job_id] = float(fmt.decode_json(ds.provider.get(_spec_key(job_id)), job_id).get("created", 0.0))
    return sorted(ids, key=lambda k: (ids[k], k))


def job_status(ds: Dataset, job_id: str) -> dict[str, Any]:
    """What is known of a journaled job, from any process: ``state`` (``"running"`` while its
    lease is live, the final state of an ended job, ``"interrupted"`` for one killed mid-way,
    ``"pending"`` for one that never committed nor ended), ``done`` (tasks committed, exact),
    ``total``, ``kind``, and the last stored status's counts and errors.

        >>> vidlake.jobs.job_status(ds, "job-3f0c9a1b2d4e5f60")["state"]
        'completed'
    """
    from .lease import is_live, read_lease  # lease imports nothing of the journal

    j = Journal.open(ds, job_id)
    last = _read_json(ds, _status_key(job_id)) or {}
    ended = _read_json(ds, _done_key(job_id))
    rec, _tag = read_lease(ds, job_id)
    in_record = job_id in ds._meta.get("info", {}).get("jobs", {})
    if rec is not None and is_live(rec):
        state = "running"
    elif ended is not None and not in_record:
        state = str(ended.get("state") or last.get("state") or "completed")
    elif in_record or last:
        state = "interrupted"
    else:
        state = "pending"
    out: dict[str, Any] = {k: v for k, v in last.items() if k not in ("format", "format_version")}
    out.update({"job_id": job_id, "kind": j.kind, "state": state, "done": len(j.committed()),
                "total": len(j.tasks)})
    return out
