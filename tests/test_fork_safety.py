"""Readers inherited through fork (DataLoader workers): freed or used in the child, never a hang.

Each scenario runs in a fresh interpreter under a timeout, so a hang is a failure, not a stuck
suite. Before the fix (cpp/fork_guard.h, Note [Objects inherited through fork]) the first
scenario hung every time: the child's garbage collector freed a reader whose codec context had
frame threads, and closing it waited in pthread_cond_destroy for threads that only exist in
the parent.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from helpers import video

PRELUDE = """
import gc, os, sys, threading, time
import numpy as np
import vidlake

def wait(pid, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"
"""


def run_script(body: str, timeout: float = 90) -> str:
    code = PRELUDE + textwrap.dedent(body)
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                             check=False)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the fork scenario hung (killed after {timeout} s):\n{e.stdout}\n{e.stderr}")
    assert res.returncode == 0, f"fork scenario failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-3000:]}"
    return res.stdout


def test_inherited_readers_freed_and_used_in_forked_children():
    """20 forks; each child frees a reader with parked frame-threaded decoders (as a worker's
    garbage collector does), reads exact frames from another inherited one, and opens its own."""
    out = run_script(f"""
        a = vidlake.VideoReader({video("bikes.mp4")!r}, threads=2)
        b = vidlake.VideoReader({video("carphone_distorted.mp4")!r}, threads=2)
        idx = [40, 3, 90, 4]
        a.get_frames([0, 5, 20]); a.get_frames([70, 71])          # several parked states
        want_b = b.get_frames(idx).copy()
        want_c = vidlake.VideoReader({video("realshort.mp4")!r}).get_frames([1, 30]).copy()
        assert a.stats["decoders"] >= 1
        for rep in range(20):
            pid = os.fork()
            if pid == 0:
                try:
                    del globals()["a"]
                    gc.collect()                                  # frees the inherited reader here
                    ok = np.array_equal(b.get_frames(idx), want_b)
                    ok &= b.stats["decoders"] >= 1                # the child's own decoder
                    c = vidlake.VideoReader({video("realshort.mp4")!r})
                    ok &= np.array_equal(c.get_frames([1, 30]), want_c)
                    del b, c
                    gc.collect()
                    os._exit(0 if ok else 3)
                except BaseException:
                    os._exit(4)
            code = wait(pid, 20)
            assert code == 0, f"child {{rep}}: {{code}}"
        # the parent's readers are untouched
        assert np.array_equal(b.get_frames(idx), want_b)
        print("ok", a.stats["decoders"])
        """)
    assert out.startswith("ok")


def test_fork_while_other_threads_decode_and_log():
    """Threads of the parent decode (holding decoder locks, logging FFmpeg lines) while the main
    thread forks 20 times; each child reads from and frees the reader those threads were using."""
    out = run_script(f"""
        vidlake.set_ffmpeg_log_level("debug")                     # FFmpeg lines from codec threads
        r = vidlake.VideoReader({video("bikes.mp4")!r}, threads=2)
        want = r.get_frames([10, 60]).copy()
        n = len(r)
        stop = threading.Event()
        def reader_loop(k):
            rng = np.random.default_rng(k)
            while not stop.is_set():
                r.get_frames(np.sort(rng.integers(0, n, 3)))
        threads = [threading.Thread(target=reader_loop, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        try:
            for rep in range(20):
                time.sleep(0.02)
                pid = os.fork()
                if pid == 0:
                    try:
                        ok = np.array_equal(r.get_frames([10, 60]), want)
                        vidlake.set_ffmpeg_log_level("error")
                        del globals()["r"]
                        gc.collect()
                        os._exit(0 if ok else 3)
                    except BaseException:
                        os._exit(4)
                code = wait(pid, 20)
                assert code == 0, f"child {{rep}}: {{code}}"
        finally:
            stop.set()
            for t in threads:
                t.join()
        print("ok")
        """)
    assert out.startswith("ok")
