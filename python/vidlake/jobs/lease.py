"""Job leases: a running job says so in the dataset, so nothing races it.

    >>> vidlake.jobs.running_jobs(ds)
    [{'job_id': 'job-3f0c9a1b2d4e5f60', 'host': 'node-7', 'pid': 4242, 'expires': 1764640030.5, ...}]
    >>> vidlake.jobs.compact(ds)          # refused while a job runs
    vidlake.errors.JobRunningError: ./ds: job job-3f0c9a1b2d4e5f60 is running (host node-7, pid 4242, ...)

A job that runs holds ``_jobs/<job id>/lease.json``::

    {"format": "vidlake", "format_version": "1.1", "job_id": "job-…", "host": "node-7",
     "pid": 4242, "pid_start": 81234567, "token": "…", "acquired": 1764640000.5,
     "renewed": 1764640020.5, "expires": 1764640050.5, "seconds": 30.0}

written before its first task and renewed every third of ``VIDLAKE_JOB_LEASE_SECONDS``
(default 30) by a daemon thread; the job deletes it when it ends. A lease is *live* while
``expires`` is in the future, unless it was written on this host by a process that no longer
exists (``pid`` gone, a zombie, or a new process under the same pid: ``pid_start`` differs),
so a job killed with SIGKILL is resumed at once on its host and after at most one lease
period elsewhere.

Who looks at it: resuming a job (``ds.resume_job``, ``vidlake ingest --resume``) refuses with
:class:`vidlake.JobRunningError` while the job's lease is live elsewhere; ``jobs.compact``
refuses while any job's lease is live (a pool or Ray job's staged chunks are named by nobody
until its commit, so compaction would take them for garbage), and checks again inside its own
commit. A job whose lease was taken over (it stalled for longer than a lease period and
another runner resumed it) stops at its next commit with :class:`vidlake.JobRunningError`;
the dataset's generation check refuses a stale commit anyway, so rows are never doubled.

Taking a lease happens under the dataset's commit lock (exclusive on local disk); renewing
replaces the lease only while it is the version this job last wrote (``put_if_tag``).
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..dataset.writer import lock_timeout
from ..errors import ConcurrentWriteError, DatasetError, JobRunningError, StorageError
from ..format import records as fmt

if TYPE_CHECKING:  # pragma: no cover
    from ..dataset import Dataset

__all__ = ["DEFAULT_LEASE_SECONDS", "Lease", "lease_seconds", "read_lease", "running_jobs"]

JOBS_PREFIX = "_jobs"
#: lease length when ``VIDLAKE_JOB_LEASE_SECONDS`` is unset
DEFAULT_LEASE_SECONDS = 30.0


def lease_seconds() -> float:
    """``VIDLAKE_JOB_LEASE_SECONDS`` (default 30): how long a lease lasts without renewal."""
    raw = os.environ.get("VIDLAKE_JOB_LEASE_SECONDS")
    if raw is None or raw == "":
        return DEFAULT_LEASE_SECONDS
    try:
        v = float(raw)
    except ValueError:
        raise ValueError(f"VIDLAKE_JOB_LEASE_SECONDS must be a number of seconds, got {raw!r}") from None
    if not v > 0:
        raise ValueError(f"VIDLAKE_JOB_LEASE_SECONDS must be positive, got {raw!r}")
    return v


def lease_key(job_id: str) -> str:
    return f"{JOBS_PREFIX}/{job_id}/lease.json"


def _proc_start(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of ``pid`` from ``/proc``; None where there is no /proc
    entry to read (no such process, or not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()  # the command name may hold spaces and parentheses
    try:
        return rest[0], int(rest[19])
    except (IndexError, ValueError):
        return None


def _pid_alive(pid: int, start: int | None) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return True  # cannot tell: assume it lives (the expiry still bounds the lease)
    st = _proc_start(pid)
    if st is None:  # no /proc entry: it exited just now, or there is no /proc (then os.kill said yes)
        return not os.path.isdir("/proc")
    state, started = st
    if state in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return start is None or started == start


_SELF_START: tuple[int, int | None] | None = None  # (pid, its start): a forked child has its own


def _self_start() -> int | None:
    global _SELF_START
    pid = os.getpid()
    if _SELF_START is None or _SELF_START[0] != pid:
        st = _proc_start(pid)
        _SELF_START = (pid, st[1] if st else None)
    return _SELF_START[1]


def is_live(rec: dict[str, Any], now: float | None = None) -> bool:
    """True while lease record ``rec`` holds (module docstring)."""
    now = time.time() if now is None else now
    try:
        if float(rec.get("expires", 0.0)) <= now:
            return False
        if rec.get("host") == socket.gethostname():
            start = rec.get("pid_start")
            return _pid_alive(int(rec.get("pid", 0)), int(start) if isinstance(start, int) else None)
    except (TypeError, ValueError):
        return False  # a damaged record holds nothing
    return True


def read_lease(ds: Dataset, job_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The job's lease record and its version tag, or ``(None, None)`` when it has none (a
    damaged record reads as none: it cannot say who holds it)."""
    try:
        raw, tag = ds.provider.get_tagged(lease_key(job_id))
    except KeyError:
        return None, None
    try:
        rec = fmt.decode_json(raw, f"{ds.path}/{lease_key(job_id)}")
    except DatasetError:
        return None, tag
    return (rec if isinstance(rec, dict) else None), tag


def describe(ds: Dataset, rec: dict[str, Any]) -> str:
    left = float(rec.get("expires", 0.0)) - time.time()
    return (f"{ds.path}: job {rec.get('job_id')} is running (host {rec.get('host')}, pid {rec.get('pid')}, "
            f"lease renewed until {left:.0f} s from now)")


def running_jobs(ds: Dataset) -> list[dict[str, Any]]:
    """The jobs of ``ds`` whose lease is live now: their lease records (``job_id``, ``host``,
    ``pid``, ``expires`` as Unix time, ...), oldest lease first.

        >>> [j["job_id"] for j in vidlake.jobs.running_jobs(ds)]
        ['job-3f0c9a1b2d4e5f60']
    """
    out = []
    now = time.time()
    for key in ds.provider.list(JOBS_PREFIX):
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != JOBS_PREFIX or parts[2] != "lease.json":
            continue
        rec, _tag = read_lease(ds, parts[1])
        if rec is not None and rec.get("job_id") == parts[1] and is_live(rec, now):
            out.append(rec)
    return sorted(out, key=lambda r: (float(r.get("acquired", 0.0)), str(r.get("job_id"))))


def check_no_running_jobs(ds: Dataset, what: str) -> None:
    """``JobRunningError`` when any job of ``ds`` is live (``what`` names the refused action)."""
    live = running_jobs(ds)
    if live:
        ids = ", ".join(str(r.get("job_id")) for r in live)
        raise JobRunningError(f"{describe(ds, live[0])}; {what} is refused while a job runs "
                              f"(live: {ids}); wait for it, or cancel it", job_id=str(live[0].get("job_id")))


class Lease:
    """The lease of one running job (module docstring). :meth:`acquire` takes it or raises
    :class:`JobRunningError`; :meth:`start_renewing` keeps it; :meth:`release` gives it up."""

    def __init__(self, ds: Dataset, job_id: str, seconds: float | None = None) -> None:
        self.ds = ds
        self.job_id = job_id
        self.seconds = lease_seconds() if seconds is None else float(seconds)
        self.token = uuid.uuid4().hex
        self.acquired = 0.0
        #: set when another runner took the lease over (this job must not commit again)
        self.lost = threading.Event()
        self.renewals = 0
        self._tag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._io = threading.Lock()

    def _record(self, now: float) -> dict[str, Any]:
        return {"format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION, "job_id": self.job_id,
                "host": socket.gethostname(), "pid": os.getpid(), "pid_start": _self_start(),
                "token": self.token, "acquired": self.acquired or now, "renewed": now,
                "expires": now + self.seconds, "seconds": self.seconds}

    @classmethod
    def acquire(cls, ds: Dataset, job_id: str) -> Lease:
        """Take the lease of ``job_id`` (``JobRunningError`` while another runner's is live)."""
        lease = cls(ds, job_id)
        p = ds.provider
        key = lease_key(job_id)
        with p.commit_lock(lock_timeout()):   # VIDLAKE_LOCK_TIMEOUT, as commits wait
            rec, tag = read_lease(ds, job_id)
            if rec is not None and is_live(rec):
                raise JobRunningError(f"{describe(ds, rec)}; it cannot be run twice at once "
                                      "(a lease whose holder died is taken over after it expires)", job_id=job_id)
            now = time.time()
            lease.acquired = now
            data = fmt.encode_json(lease._record(now))
            try:
                if tag is None:
                    p.put(key, data)
                else:
                    p.put_if_tag(key, data, tag)
                got, lease._tag = read_lease(ds, job_id)
            except ConcurrentWriteError:
                got = None
            if got is None or got.get("token") != lease.token:
                raise JobRunningError(f"{ds.path}: another runner took the lease of job {job_id} at the same "
                                      "moment; it is running there", job_id=job_id)
        return lease

    def renew(self) -> bool:
        """Push the expiry one lease period on; False (and :attr:`lost` set) when another
        runner holds the lease now."""
        with self._io:
            if self.lost.is_set():
                return False
            rec, tag = read_lease(self.ds, self.job_id)
            if rec is None or rec.get("token") != self.token:
                self.lost.set()
                return False
            try:
                self.ds.provider.put_if_tag(lease_key(self.job_id), fmt.encode_json(self._record(time.time())),
                                            tag or "")
                _rec, self._tag = read_lease(self.ds, self.job_id)
            except ConcurrentWriteError:
                self.lost.set()
                return False
            self.renewals += 1
            return True

    def _renew_loop(self) -> None:
        period = self.seconds / 3.0
        while not self._stop.wait(period):
            try:
                if not self.renew():
                    return
            except (StorageError, OSError):
                continue  # a transient failure: try again next period (the expiry leaves two more)

    def start_renewing(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_loop, name=f"vidlake-lease-{self.job_id}", daemon=True)
            self._thread.start()

    def check(self) -> None:
        """``JobRunningError`` when the lease was taken over by another runner. Called inside
        each of the job's commits (one small read), so a runner that lost its lease never
        commits again."""
        if not self.lost.is_set():
            rec, _tag = read_lease(self.ds, self.job_id)
            if rec is None or rec.get("token") != self.token:
                self.lost.set()
        if self.lost.is_set():
            raise JobRunningError(f"{self.ds.path}: job {self.job_id} lost its lease to another runner (it "
                                  f"stalled for more than {self.seconds:g} s, or its lease was removed); "
                                  "this runner stops", job_id=self.job_id)

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still this job's."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5.0)
        with self._io, contextlib.suppress(StorageError, OSError):
            rec, _tag = read_lease(self.ds, self.job_id)
            if rec is not None and rec.get("token") == self.token:
                self.ds.provider.delete(lease_key(self.job_id))
