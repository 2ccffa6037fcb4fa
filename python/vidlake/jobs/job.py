"""``Job``: an ingestion that runs in the background, with a status you can poll.

    >>> job = ds.append(scenes, update=True, asynchronous=True)
    >>> job.status()["state"]
    'running'
    >>> job.sleep_until_complete()["state"]
    'completed'
    >>> job.errors()            # [{"reference_id": ..., "cause": ...}] of the items that failed

States: ``pending`` (created, not started), ``running``, then ``completed`` (every task was
tried; some may have failed: see ``errors()``), ``failed`` (the job itself stopped, e.g. the
dataset could not be written; ``status()["cause"]`` says why) or ``cancelled``. A job that is
killed (SIGKILL, power loss) continues with ``ds.resume_job(job.id)``.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from .lease import Lease

__all__ = ["Job", "JobCancelled"]

STATES = ("pending", "running", "completed", "failed", "cancelled")


class JobCancelled(Exception):
    """Raised inside a job's runner when it was cancelled (never escapes the job)."""


class Job:
    """A background (or finished) ingestion job. Made by ``ds.append(..., asynchronous=True)``,
    ``ds.resume_job(id)`` or ``vidlake.jobs.ingest_files``; not constructed directly."""

    def __init__(self, job_id: str, total: int, runner: Callable[[Job], None], dataset_path: str = "",
                 lease: Lease | None = None) -> None:
        self.id = job_id
        #: the job's lease in the dataset (``vidlake/jobs/lease.py``): renewed while it runs,
        #: released when it ends
        self.lease = lease
        self.dataset_path = dataset_path
        self.total = total
        self.state = "pending"
        self.done = 0           # tasks committed (appended, updated or unchanged)
        self.failed = 0
        self.skipped = 0        # existing reference ids left alone (update=False)
        self.bytes = 0          # bytes fetched / read
        self.counts: dict[str, int] = {}
        self.cause: str | None = None
        self._errors: list[dict[str, Any]] = []
        self._runner = runner
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._started = 0.0
        self._finished: float | None = None
        #: callbacks ``fn(job)`` after every batch (the CLI's progress bar)
        self.on_progress: list[Callable[[Job], None]] = []
        #: callbacks ``fn(job, final_state)`` when the runner returns or raises, before the
        #: lease is released and the state set (the journal files its record here)
        self.on_end: list[Callable[[Job, str], None]] = []

    # -- running ---------------------------------------------------------------------------
    def start(self, asynchronous: bool) -> Job:
        """Run the job here (``asynchronous=False``) or in a background thread."""
        if self.lease is not None:
            self.lease.start_renewing()
        if asynchronous:
            self._thread = threading.Thread(target=self._run, name=f"vidlake-{self.id}", daemon=True)
            self._thread.start()
        else:
            self._run()
        return self

    def _run(self) -> None:
        self.state = "running"
        self._started = time.monotonic()
        end = "failed"
        try:
            self._runner(self)
            end = "cancelled" if self._cancel.is_set() else "completed"
        except JobCancelled:
            end = "cancelled"
        except BaseException as e:
            self.cause = f"{type(e).__name__}: {e}"
            if not isinstance(e, Exception):
                raise
        finally:
            # the job's records are settled and its lease given up before its state says it
            # ended, so whoever waits for that (compaction, a resume) finds the job gone
            for fn in list(self.on_end):
                with contextlib.suppress(Exception):
                    fn(self, end)
            if self.lease is not None:
                self.lease.release()
            self._finished = time.monotonic()
            self.state = end
            self.progress()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancel(self) -> None:
        """Raise :class:`JobCancelled` in the runner once the job is cancelled."""
        if self._cancel.is_set():
            raise JobCancelled(self.id)

    def error(self, reference_id: str, cause: BaseException | str) -> None:
        """Record a failed task (the job goes on)."""
        with self._lock:
            self.failed += 1
            text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
            self._errors.append({"reference_id": reference_id, "cause": text})

    def count(self, outcome: str, n: int = 1) -> None:
        with self._lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + n

    def progress(self) -> None:
        for fn in list(self.on_progress):
            fn(self)

    # -- what users call -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The job's state and counts::

            {"job_id": "job-…", "state": "running", "done": 120, "failed": 1, "skipped": 0,
             "total": 500, "bytes": 73400320, "elapsed": 12.5, "rate": 9.6, "bytes_per_s": 5.9e6,
             "counts": {"appended": 100, "updated": 15, "unchanged": 5},
             "errors": [{"reference_id": "video-7", "cause": "SampleAppendError: ..."}]}

        ``rate`` is tasks per second, ``bytes_per_s`` bytes fetched per second.
        """
        end = self._finished if self._finished is not None else time.monotonic()
        elapsed = max(0.0, end - self._started) if self._started else 0.0
        with self._lock:
            out: dict[str, Any] = {
                "job_id": self.id, "state": self.state, "done": self.done, "failed": self.failed,
                "skipped": self.skipped, "total": self.total, "bytes": self.bytes,
                "elapsed": round(elapsed, 3),
                "rate": (self.done + self.skipped) / elapsed if elapsed > 0 else 0.0,
                "bytes_per_s": self.bytes / elapsed if elapsed > 0 else 0.0,
                "counts": dict(self.counts), "errors": [dict(e) for e in self._errors],
            }
        if self.cause:
            out["cause"] = self.cause
        return out

    def errors(self) -> list[dict[str, Any]]:
        """The failed tasks: ``[{"reference_id": ..., "cause": ...}]``."""
        with self._lock:
            return [dict(e) for e in self._errors]

    def is_done(self) -> bool:
        return self.state in ("completed", "failed", "cancelled")

    def sleep_until_complete(self, timeout: float | None = None, verbose: bool = False) -> dict[str, Any]:
        """Block until the job ends (or ``timeout`` seconds pass); returns :meth:`status`.

            >>> job.sleep_until_complete()["state"]
            'completed'
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_done():
            t = self._thread
            if t is None:
                break
            t.join(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
            if verbose:
                s = self.status()
                print(f"{self.id}: {s['state']} {s['done'] + s['skipped']}/{s['total']} ({s['failed']} failed)")
            if deadline is not None and time.monotonic() >= deadline:
                break
        return self.status()

    def cancel(self) -> None:
        """Stop after the batch under way (committed rows stay; resume with ``ds.resume_job``)."""
        self._cancel.set()

    def __repr__(self) -> str:
        return f"Job({self.id!r}, state={self.state!r}, {self.done + self.skipped}/{self.total})"
