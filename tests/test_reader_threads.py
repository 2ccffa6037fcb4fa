"""Concurrency: one reader shared by many Python threads, and decoder thread counts."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import zlib
from concurrent.futures import ThreadPoolExecutor

import assets
import numpy as np
import oracle
import pytest

import vidlake

SHARED_ASSET = assets.get("bikes.mp4")          # 250 frames, 6 GOPs, B-frames


@pytest.mark.slow
def test_shared_reader_many_threads(asset_path):
    path = asset_path(SHARED_ASSET)
    r = vidlake.VideoReader(path)
    n = len(r)
    rng = np.random.default_rng(1234)
    calls = [[int(i) for i in rng.integers(0, n, size=int(rng.integers(1, 5)))] for _ in range(200)]
    expected = oracle.frames(path, sorted({i for c in calls for i in c}))

    def work(call):
        return call, r.get_frames(call)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, calls))
    assert len(results) == 200
    for k, (call, got) in enumerate(results):
        want = np.stack([expected[i] for i in call])
        oracle.assert_batch_equal(got, want, call, f"call {k} get_frames({call}) from 8 threads")


def test_shared_reader_mixed_api_many_threads(asset_path):
    """Single-index, slice and batch reads interleaved across threads on one reader."""
    path = asset_path(assets.get("base_moov_end.mp4"))
    r = vidlake.VideoReader(path)
    n = len(r)
    expected = oracle.frames(path, range(n))
    rng = np.random.default_rng(99)
    jobs = []
    for _ in range(120):
        kind = int(rng.integers(0, 3))
        a = int(rng.integers(0, n))
        jobs.append((kind, a))

    def work(job):
        kind, a = job
        if kind == 0:
            return [a], r[a][None]
        if kind == 1:
            idx = list(range(n))[a:a + 6:2]
            return idx, r[a:a + 6:2]
        idx = [a, (a * 7) % n, a]
        return idx, r.get_frames(idx)

    with ThreadPoolExecutor(8) as pool:
        for idx, got in pool.map(work, jobs):
            oracle.assert_batch_equal(got, np.stack([expected[i] for i in idx]), idx, f"threads read {idx}")


THREAD_ASSETS = assets.select(
    "samplemp4.mp4", "interlaced_crop.mp4", "h265_10bits.mp4", "av1_video.mkv", "vp90-2-2pass-akiyo.webm",
    "open_gop.mp4", "matrixbench_mpeg2.lq1.mpg",
)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("asset", THREAD_ASSETS, ids=str)
def test_exact_with_decoder_threads(asset, threads, asset_path):
    path = asset_path(asset)
    r = vidlake.VideoReader(path, threads=threads)
    n = len(r)
    assert n == oracle.info(path).num_frames
    rng = np.random.default_rng(zlib.crc32(asset.name.encode()) + threads)
    singles = [0, n - 1] + [int(i) for i in rng.integers(0, n, size=8)]
    batch = [int(i) for i in rng.integers(0, n, size=8)]
    sl = slice(n // 4, n // 4 + 12, 3)
    expected = oracle.frames(path, set(singles) | set(batch) | set(range(n)[sl]))
    for i in singles:
        oracle.assert_frames_equal(r[i], expected[i], f"{asset.name} threads={threads} r[{i}]")
    got = r.get_frames(batch)
    oracle.assert_batch_equal(got, np.stack([expected[i] for i in batch]), batch,
                              f"{asset.name} threads={threads} get_frames")
    idx = list(range(n)[sl])
    oracle.assert_batch_equal(r[sl], np.stack([expected[i] for i in idx]), idx,
                              f"{asset.name} threads={threads} r[{sl.start}:{sl.stop}:{sl.step}]")


_PYAV_CALLBACK_CHILD = textwrap.dedent("""
    import sys
    import av  # noqa: F401  (installs PyAV's GIL-taking av_log callback, as in any app using both)
    import vidlake
    for path in sys.argv[1:]:
        r = vidlake.VideoReader(path)
        r.get_frames([len(r) // 2, 0, len(r) - 1])
        r[len(r) // 3]
        del r
    print("ok")
""")


def test_no_deadlock_with_pyav_log_callback(asset_path):
    """Opening, reading and dropping readers in a process that imported PyAV must not hang.

    PyAV's av_log callback acquires the GIL; a reader that frees its codec context (joining
    libavcodec's frame threads, which may log) while holding the GIL deadlocks.
    """
    paths = [asset_path(a) for a in assets.select("samplemp4.mp4", "sampleavi.avi", "bikes.mp4")]
    try:
        res = subprocess.run([sys.executable, "-c", _PYAV_CALLBACK_CHILD, *paths], check=False,
                             capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("reader hung (deadlock) in a process with PyAV's av_log callback installed")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "ok" in res.stdout, res.stderr[-3000:]


@pytest.mark.parametrize("name", ["corrupted.mp4", "two_first_slice.mp4", "corrupted_payload.mp4"])
def test_damaged_streams_decode_the_same_whatever_the_thread_setting(name, asset_path):
    """Damaged streams are decoded single-threaded (DESIGN.md, Note [Damaged streams]), so the
    frames after the damage do not depend on `threads` nor on the order of reads."""
    path = str(asset_path(assets.get(name)))
    one = vidlake.VideoReader(path, threads=1)
    assert one.metadata["damaged"]
    reference = one[:]
    rng = np.random.default_rng(7)
    for threads in (2, 4):
        r = vidlake.VideoReader(path, threads=threads)
        order = rng.permutation(len(r))
        for i in order[:12]:
            oracle.assert_frames_equal(r[int(i)], reference[i], f"{name} threads={threads} r[{i}]")
        oracle.assert_frames_equal(r[:], reference, f"{name} threads={threads} r[:]")
