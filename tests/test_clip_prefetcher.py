"""vidlake.ClipPrefetcher: the C++ pool that decodes clips ahead (Note [Clip prefetch pool])."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import video

import vidlake


def test_same_frames_as_get_frames_and_queue_bound_holds():
    readers = [vidlake.VideoReader(video(v)) for v in ("bikes.mp4", "carphone_distorted.mp4", "realshort.mp4")]
    rng = np.random.default_rng(0)
    jobs = []
    for k in range(12):
        r = readers[k % 3]
        start = int(rng.integers(0, len(r) - 8))
        jobs.append((r, np.arange(start, start + 8, 2)))
    pool = vidlake.ClipPrefetcher(threads=2, capacity=3)
    outs = [np.empty((4, 40, 56, 3), np.uint8) for _ in jobs]
    tickets = [pool.submit(r, idx, o, size=(40, 56)) for (r, idx), o in zip(jobs, outs)]  # waits for room
    st = pool.stats
    assert st["submitted"] == 12
    assert 1 <= st["peak_pending"] <= 3 == st["capacity"]
    for t in tickets:
        pool.wait(t)
    for (r, idx), o in zip(jobs, outs):
        np.testing.assert_array_equal(o, r.get_frames(idx, size=(40, 56)))
    st = pool.stats
    assert st["completed"] == 12
    assert st["pending"] == 0
    assert st["uncollected"] == 0
    assert st["peak_pending"] <= 3


def test_errors_and_bad_arguments():
    r = vidlake.VideoReader(video("realshort.mp4"))
    pool = vidlake.ClipPrefetcher(threads=1, capacity=1)
    with pytest.raises(IndexError, match="out of range"):
        pool.submit(r, [len(r)], np.empty((1, *r.shape[1:]), np.uint8))
    with pytest.raises(ValueError, match="out must be"):
        pool.submit(r, [0, 1], np.empty((1, *r.shape[1:]), np.uint8))
    with pytest.raises(ValueError, match="unknown prefetch ticket"):
        pool.wait(12345)
    with pytest.raises(ValueError, match="capacity"):
        vidlake.ClipPrefetcher(threads=1, capacity=0)
    t = pool.submit(r, [3], np.empty((1, *r.shape[1:]), np.uint8))
    pool.wait(t)
    with pytest.raises(ValueError, match="unknown prefetch ticket"):
        pool.wait(t)                                     # each ticket once


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_pool_inherited_through_fork_is_refused_and_freed_safely():
    code = textwrap.dedent(f"""
        import gc, os, numpy as np, vidlake
        r = vidlake.VideoReader({video("bikes.mp4")!r})
        pool = vidlake.ClipPrefetcher(threads=2, capacity=2)
        out = np.empty((2, *r.shape[1:]), np.uint8)
        pool.wait(pool.submit(r, [0, 9], out))
        pid = os.fork()
        if pid == 0:
            try:
                pool.submit(r, [1], np.empty((1, *r.shape[1:]), np.uint8))
                os._exit(3)
            except ValueError as e:
                ok = "forked child" in str(e)
            del pool
            gc.collect()                                  # its threads are the parent's: not joined
            mine = vidlake.ClipPrefetcher(threads=1, capacity=1)
            o = np.empty((1, *r.shape[1:]), np.uint8)
            mine.wait(mine.submit(r, [9], o))
            os._exit(0 if ok and np.array_equal(o[0], out[1]) else 4)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == "child 0", res.stdout + res.stderr[-2000:]
