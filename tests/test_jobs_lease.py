"""Job leases (issue 16): a running job holds ``_jobs/<id>/lease.json``; compaction and a second
runner of the same job are refused while it is live; an expired lease, or one of a dead process
on this host, is taken over (so kill -9 then resume still works: tests/test_jobs.py)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest
from helpers import video
from remote_fixtures import moto_server, s3_bucket, s3_root  # noqa: F401

import vidlake
from vidlake.cli import main
from vidlake.jobs import compact, ingest_files, new_ingest_journal, running_jobs
from vidlake.jobs.lease import _proc_start, is_live, lease_key

if TYPE_CHECKING:
    from pathlib import Path

CLIP = "stub_h264.mp4"


def _clips(tmp_path: Path, n: int) -> list[str]:
    d = tmp_path / "in"
    d.mkdir(exist_ok=True)
    out = []
    for k in range(n):
        shutil.copy(video(CLIP), d / f"v{k:03d}.mp4")
        out.append(str(d / f"v{k:03d}.mp4"))
    return out


class _Gate:
    """A ``transform`` that holds the job inside its first file until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()

    def __call__(self, path: str):
        self.entered.set()
        assert self.go.wait(120), "the test never released the job"
        return vidlake.read(path)


def _wait(cond, what: str, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.02)


def _held_job(tmp_path: Path, n: int = 3):
    root = tmp_path / "ds"
    ds = vidlake.empty(root)
    gate = _Gate()
    job = ingest_files(ds, _clips(tmp_path, n), transform=gate, asynchronous=True, batch_size=2)
    assert gate.entered.wait(60)
    return root, ds, job, gate


def test_live_lease_refuses_compaction_and_a_second_runner(tmp_path):
    root, _ds, job, gate = _held_job(tmp_path)
    try:
        rec = json.loads((root / lease_key(job.id)).read_text())
        assert (rec["job_id"], rec["host"], rec["pid"]) == (job.id, socket.gethostname(), os.getpid())
        assert [r["job_id"] for r in running_jobs(vidlake.load(root))] == [job.id]
        with pytest.raises(vidlake.JobRunningError, match=job.id) as e:
            compact(vidlake.load(root))
        assert e.value.job_id == job.id
        with pytest.raises(vidlake.JobRunningError, match="cannot be run twice"):
            vidlake.load(root).resume_job(job.id)
        # another process on this host: `vidlake ingest --resume` refuses and says why
        r = subprocess.run([sys.executable, "-m", "vidlake.cli", "ingest", "--resume", job.id, "--to", str(root), "-q"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, r.stderr
        assert f"job {job.id} is running" in r.stderr
        assert f"pid {os.getpid()}" in r.stderr
    finally:
        gate.go.set()
    st = job.sleep_until_complete(120)
    assert (st["state"], st["done"]) == ("completed", 3), st
    assert not (root / lease_key(job.id)).exists()          # released when it ended
    assert running_jobs(vidlake.load(root)) == []
    compact(vidlake.load(root))                              # allowed again
    assert len(vidlake.load(root).videos) == 3


def test_compaction_refused_by_a_job_that_starts_during_it(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    ds = vidlake.empty(root)
    with ds:
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        ds.create_tensor("reference_id", htype="text")
    for k in range(2):
        ds.append({"videos": vidlake.read(video(CLIP)), "reference_id": f"r{k}"})
    ds.upsert({"videos": vidlake.read(video("carphone_distorted.mp4")), "reference_id": "r0"})  # dead bytes
    ds = vidlake.load(root)
    journal = new_ingest_journal(ds, [], "videos")
    writer_mod = sys.modules["vidlake.dataset.writer"]
    real = writer_mod.Writer.commit

    def commit_with_a_job_starting(self):   # a job took its lease after compaction's first check
        _write_lease(root, journal.id)
        real(self)

    monkeypatch.setattr(writer_mod.Writer, "commit", commit_with_a_job_starting)
    before = (root / "dataset_meta.json").read_bytes()
    with pytest.raises(vidlake.JobRunningError, match=journal.id):
        compact(ds, min_dead=0.01)
    assert (root / "dataset_meta.json").read_bytes() == before    # nothing committed
    monkeypatch.setattr(writer_mod.Writer, "commit", real)
    (root / lease_key(journal.id)).unlink()
    assert compact(vidlake.load(root), min_dead=0.01)["videos"]["rows_moved"] >= 1


def _write_lease(root: Path, job_id: str, **fields) -> None:
    now = time.time()
    rec = {"format": "vidlake", "format_version": "1.1", "job_id": job_id, "host": socket.gethostname(),
           "pid": os.getpid(), "pid_start": None, "token": "someone-else", "acquired": now, "renewed": now,
           "expires": now + 3600, "seconds": 30.0, **fields}
    (root / lease_key(job_id)).write_text(json.dumps(rec))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("case", ["expired", "dead_pid", "reused_pid"])
def test_stale_lease_is_taken_over(tmp_path, case):
    root = tmp_path / "ds"
    files = _clips(tmp_path, 3)
    ds = vidlake.empty(root)
    journal = new_ingest_journal(ds, files, "videos")
    if case == "expired":          # another host, lease ran out: that runner is gone
        _write_lease(root, journal.id, host="elsewhere-host", expires=time.time() - 1)
    elif case == "dead_pid":       # this host, the process no longer exists (a kill -9)
        _write_lease(root, journal.id, pid=_dead_pid())
    else:                          # this host, the pid now belongs to a newer process
        start = _proc_start(os.getpid())
        if start is None:
            pytest.skip("no /proc: process start times are not known")
        _write_lease(root, journal.id, pid_start=start[1] - 1)
    assert running_jobs(vidlake.load(root)) == []
    compact(vidlake.load(root))    # a stale lease does not block compaction either
    st = vidlake.load(root).resume_job(journal.id).status()
    assert (st["state"], st["done"]) == ("completed", 3), st
    assert len(vidlake.load(root).videos) == 3
    assert not (root / lease_key(journal.id)).exists()


def test_live_lease_of_another_host_is_respected(tmp_path):
    root = tmp_path / "ds"
    ds = vidlake.empty(root)
    journal = new_ingest_journal(ds, _clips(tmp_path, 1), "videos")
    _write_lease(root, journal.id, host="elsewhere-host", pid=1)
    assert [r["host"] for r in running_jobs(vidlake.load(root))] == ["elsewhere-host"]
    with pytest.raises(vidlake.JobRunningError, match="host elsewhere-host"):
        vidlake.load(root).resume_job(journal.id)
    with pytest.raises(vidlake.JobRunningError):
        compact(vidlake.load(root))
    assert main(["ingest", "--resume", journal.id, "--to", str(root), "-q"]) == 1
    assert len(vidlake.load(root).videos) == 0


def test_zombie_holder_is_not_live(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        rec = {"job_id": "job-x", "host": socket.gethostname(), "pid": p.pid, "expires": time.time() + 3600}
        assert is_live(rec)
        os.kill(p.pid, signal.SIGKILL)
        _wait(lambda: (_proc_start(p.pid) or ("Z",))[0] == "Z", "the child to become a zombie")
        assert not is_live(rec)        # killed but not reaped yet: dead all the same
    finally:
        p.kill()
        p.wait()


def test_renewal_keeps_a_long_job_live(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDLAKE_JOB_LEASE_SECONDS", "1.5")
    root, _ds, job, gate = _held_job(tmp_path, n=2)
    try:
        lease = job.lease
        assert lease is not None
        assert lease.seconds == 1.5
        first = json.loads((root / lease_key(job.id)).read_text())["expires"]
        # three renew periods (one renewal each) and more than a whole lease period later
        _wait(lambda: lease.renewals >= 3 and time.time() > first + 1.5, "three renewals")
        assert [r["job_id"] for r in running_jobs(vidlake.load(root))] == [job.id]
        assert json.loads((root / lease_key(job.id)).read_text())["expires"] > first
        with pytest.raises(vidlake.JobRunningError):
            compact(vidlake.load(root))
    finally:
        gate.go.set()
    assert job.sleep_until_complete(120)["state"] == "completed"
    assert running_jobs(vidlake.load(root)) == []


def test_a_runner_that_lost_its_lease_does_not_commit(tmp_path):
    root, _ds, job, gate = _held_job(tmp_path, n=2)
    try:
        _write_lease(root, job.id, token="the-new-runner")      # taken over while this one stalled
    finally:
        gate.go.set()
    st = job.sleep_until_complete(120)
    assert st["state"] == "failed", st
    assert "lost its lease" in st["cause"]
    assert len(vidlake.load(root).videos) == 0
    # the new runner's lease is left alone
    assert json.loads((root / lease_key(job.id)).read_text())["token"] == "the-new-runner"


def test_lease_seconds_must_be_positive(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDLAKE_JOB_LEASE_SECONDS", "0")
    ds = vidlake.empty(tmp_path / "ds")
    with pytest.raises(ValueError, match="VIDLAKE_JOB_LEASE_SECONDS"):
        ingest_files(ds, _clips(tmp_path, 1))


def test_leases_on_s3(tmp_path, s3_root):  # noqa: F811
    root, creds = s3_root
    ds = vidlake.empty(root, creds=creds)
    gate = _Gate()
    job = ingest_files(ds, _clips(tmp_path, 2), transform=gate, asynchronous=True, creds=creds)
    assert gate.entered.wait(60)
    try:
        other = vidlake.load(root, creds=creds)
        assert [r["job_id"] for r in running_jobs(other)] == [job.id]
        with pytest.raises(vidlake.JobRunningError, match="cannot be run twice"):
            other.resume_job(job.id)
        with pytest.raises(vidlake.JobRunningError):
            compact(other)
    finally:
        gate.go.set()
    assert job.sleep_until_complete(120)["state"] == "completed"
    other = vidlake.load(root, creds=creds)
    assert running_jobs(other) == []
    assert not other.provider.exists(lease_key(job.id))
    assert len(other.videos) == 2


def test_a_forked_child_records_its_own_start_time():
    """A lease written by a forked child names the child's process start, not the parent's
    cached one (else the child's live lease would look like a reused pid and be taken over)."""
    import multiprocessing as mp

    from vidlake.jobs import lease as lease_mod

    lease_mod._self_start()  # cached in the parent
    ctx = mp.get_context("fork")
    q = ctx.Queue()

    def child():
        st = lease_mod._proc_start(os.getpid())
        q.put((lease_mod._self_start(), st[1] if st else None))

    p = ctx.Process(target=child)
    p.start()
    got, want = q.get(timeout=60)
    p.join(60)
    assert got == want
