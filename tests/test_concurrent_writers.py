"""Two and four writer processes appending to one dataset at the same moment: every append that
returned normally is present and exact afterwards, the others raised a clear error, and no
committed sample is damaged. Local disk (commit lock + compare-and-swap of the commit record),
memory (one process, threads) and S3 on the moto server (conditional PUT with If-Match).
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import threading

import numpy as np
import pytest
from helpers import video

import vidlake

CLIP = "stub_h264.mp4"          # small: many appends per trial


def _writer(path: str, creds, who: str, n: int, barrier, out: str) -> None:
    """Append ``n`` rows; record which returned normally and which raised (and what)."""
    acked, refused = [], []
    barrier.wait()
    for j in range(n):
        rid = f"{who}-{j}"
        try:
            ds = vidlake.load(path, creds=creds)
            ds.append({"ids": rid, "videos": vidlake.read(video(CLIP))})
        except vidlake.ConcurrentWriteError as e:
            refused.append([rid, str(e)])
            continue
        acked.append(rid)
    with open(out, "w") as f:
        json.dump({"acked": acked, "refused": refused}, f)


def _make(path: str, creds=None) -> None:
    ds = vidlake.empty(path, creds=creds)
    ds.create_tensor("ids", htype="text")
    ds.create_tensor("videos", htype="video", sample_compression="mp4")


def _check(path: str, creds, results: list[dict]) -> tuple[int, int]:
    ds = vidlake.load(path, creds=creds, read_only=True)
    ids = [ds.ids[i].text() for i in range(len(ds))]
    assert len(ids) == len(set(ids)), "a row was committed twice"
    acked = [r for res in results for r in res["acked"]]
    refused = [r for res in results for r, _msg in res["refused"]]
    missing = sorted(set(acked) - set(ids))
    assert not missing, f"acknowledged appends lost: {missing}"
    assert not set(refused) & set(ids), "a refused append was committed"
    for res in results:
        for _rid, msg in res["refused"]:
            assert "another writer" in msg, msg
            assert "not committed" in msg, msg
    want = vidlake.VideoReader(video(CLIP)).get_frames([0, 2])
    for i in range(len(ds)):  # every committed sample is readable and exact
        np.testing.assert_array_equal(ds.videos[i, [0, 2]].numpy(), want)
    return len(acked), len(refused)


def _run_processes(path: str, creds, writers: int, n: int, tmp_path) -> list[dict]:
    ctx = mp.get_context("spawn")  # fresh interpreters: no lock of this one's threads inherited
    barrier = ctx.Barrier(writers)
    outs = [str(tmp_path / f"w{k}.json") for k in range(writers)]
    procs = [ctx.Process(target=_writer, args=(path, creds, f"w{k}", n, barrier, outs[k])) for k in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"writer exited with {p.exitcode}"
    results = []
    for o in outs:
        with open(o) as f:
            results.append(json.load(f))
    return results


@pytest.mark.parametrize(("writers", "trials", "n"), [(2, 4, 12), (4, 2, 8)])
def test_local_writers_never_lose_an_acknowledged_append(tmp_path, writers, trials, n):
    total_acked = 0
    for trial in range(trials):
        path = str(tmp_path / f"ds{trial}")
        _make(path)
        results = _run_processes(path, None, writers, n, tmp_path)
        acked, _refused = _check(path, None, results)
        total_acked += acked
    assert total_acked > 0


def test_memory_writers_in_threads(tmp_path):
    path = "mem://writers-" + os.urandom(4).hex()
    _make(path)
    barrier = threading.Barrier(4)
    outs = [str(tmp_path / f"t{k}.json") for k in range(4)]
    threads = [threading.Thread(target=_writer, args=(path, None, f"t{k}", 10, barrier, outs[k])) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    results = []
    for o in outs:
        with open(o) as f:
            results.append(json.load(f))
    _check(path, None, results)


def test_s3_writers_never_lose_an_acknowledged_append(moto_server, s3_bucket, tmp_path):
    creds = moto_server.creds()
    for trial in range(2):
        path = f"s3://{s3_bucket}/ds{trial}"
        _make(path, creds)
        results = _run_processes(path, creds, 2, 6, tmp_path)
        _check(path, creds, results)


def test_gcs_writers_never_lose_an_acknowledged_append(gcs_server, gcs_bucket, generation_proxy_gcs, tmp_path):
    """Through a proxy that enforces generation preconditions as GCS does (the emulator ignores
    them): the commit record is replaced only if its generation is still the one read."""
    creds = gcs_server.creds(generation_proxy_gcs.url)
    path = f"gs://{gcs_bucket}/ds"
    _make(path, creds)
    results = _run_processes(path, creds, 2, 6, tmp_path)
    _check(path, creds, results)


def test_stale_writer_is_refused_before_it_writes(tmp_path):
    """A writer that loaded an older generation refuses to commit and leaves the other
    writer's committed open chunk byte-identical (no in-place rewrite)."""
    path = str(tmp_path / "ds")
    _make(path)
    a = vidlake.load(path)
    b = vidlake.load(path)
    a.append({"ids": "a", "videos": vidlake.read(video(CLIP))})
    chunks = {k: a.provider.get(k) for k in a.provider.list("videos/chunks/")}
    with pytest.raises(vidlake.ConcurrentWriteError, match="another writer"):
        b.append({"ids": "b", "videos": vidlake.read(video(CLIP))})
    assert {k: a.provider.get(k) for k in a.provider.list("videos/chunks/")} == chunks
    assert len(b) == 0                               # b's staged row was dropped
    assert [vidlake.load(path).ids[i].text() for i in range(1)] == ["a"]


def test_commit_lock_times_out_with_a_clear_error(tmp_path, monkeypatch):
    path = str(tmp_path / "ds")
    _make(path)
    ds = vidlake.load(path)
    monkeypatch.setenv("VIDLAKE_LOCK_TIMEOUT", "0.2")
    with ds.provider.commit_lock(5), pytest.raises(vidlake.ConcurrentWriteError, match="committing"):
        vidlake.load(path).ids.append("x")
    ds.ids.append("y")                               # the lock is free again
    assert vidlake.load(path).ids[0].text() == "y"


def _hold_lock(path: str, held) -> None:
    p = vidlake.load(path).provider
    with p.commit_lock(5):
        held.set()
        threading.Event().wait(60)


def test_a_killed_lock_holder_leaves_the_dataset_writable(tmp_path):
    path = str(tmp_path / "ds")
    _make(path)
    ctx = mp.get_context("spawn")
    held = ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(path, held))
    proc.start()
    assert held.wait(30)
    proc.kill()
    proc.join(30)
    ds = vidlake.load(path)
    ds.ids.append("after")
    assert vidlake.load(path).ids[0].text() == "after"
