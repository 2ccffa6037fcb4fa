"""Recycled output buffers (Note [Recycled output buffers], docs/DESIGN.md): arrays of 16 MB or
more that vidlake allocates are reused after Python frees them, never while they are alive, and
their memory goes back to the system when not reused in time."""
from __future__ import annotations

import gc
import multiprocessing
import time

import numpy as np
import oracle
import pytest

import vidlake

ROW = 360 * 640 * 3            # samplemp4.mp4 is 640x360
BIG = list(range(40, 70))      # 30 rows = 20 MB, above the 16 MB threshold
OTHER = list(range(100, 130))  # same size, other frames


@pytest.fixture
def cache():
    """A fresh, enabled cache with a long keep time; the defaults are restored afterwards."""
    before = vidlake.output_cache_info()
    vidlake.clear_output_cache()
    vidlake.set_output_cache(max_bytes=1 << 30, keep_seconds=60)
    yield
    vidlake.clear_output_cache()
    vidlake.set_output_cache(max_bytes=before["max_bytes"], keep_seconds=before["keep_seconds"])


@pytest.fixture(scope="module")
def video(asset_path):
    path = asset_path("samplemp4.mp4")
    return path, vidlake.VideoReader(path)


def _delta(before: dict, key: str) -> int:
    return vidlake.output_cache_info()[key] - before[key]


def test_freed_array_memory_is_reused_and_frames_stay_exact(cache, video):
    path, r = video
    before = vidlake.output_cache_info()
    a = r.get_frames(BIG)
    assert a.nbytes >= vidlake.output_cache_info()["min_bytes"]
    assert _delta(before, "misses") == 1
    oracle.assert_batch_equal(a, oracle.stack(path, BIG), BIG, "first read")
    address = a.__array_interface__["data"][0]
    del a
    gc.collect()
    assert vidlake.output_cache_info()["cached_blocks"] == 1
    b = r.get_frames(OTHER)
    assert _delta(before, "hits") == 1
    assert b.__array_interface__["data"][0] == address      # the same memory, recycled
    assert vidlake.output_cache_info()["cached_blocks"] == 0
    # every byte is this read's: nothing of the first read's frames is left
    oracle.assert_batch_equal(b, oracle.stack(path, OTHER), OTHER, "recycled read")


def test_live_arrays_and_views_are_never_reused(cache, video):
    path, r = video
    before = vidlake.output_cache_info()
    a = r.get_frames(BIG)
    b = r.get_frames(OTHER)
    assert not np.shares_memory(a, b)
    view = a[3]                 # keeps the first read's memory alive
    del a
    gc.collect()
    c = r.get_frames(BIG)
    assert _delta(before, "hits") == 0
    assert _delta(before, "misses") == 3
    assert not np.shares_memory(view, c)
    assert not np.shares_memory(b, c)
    np.testing.assert_array_equal(view, oracle.frame(path, BIG[3]))
    oracle.assert_batch_equal(b, oracle.stack(path, OTHER), OTHER, "second live array")


def test_small_reads_and_out_buffers_bypass_the_cache(cache, video):
    _, r = video
    before = vidlake.output_cache_info()
    small = r.get_frames(BIG[:5])                      # 3.5 MB: numpy's allocator
    assert small.flags.owndata
    out = np.empty((len(BIG), 360, 640, 3), np.uint8)
    assert r.get_frames(BIG, out=out) is out
    del small, out
    gc.collect()
    assert _delta(before, "hits") == 0
    assert _delta(before, "misses") == 0
    assert vidlake.output_cache_info()["cached_blocks"] == 0


def test_a_much_larger_block_is_not_used_for_a_small_read(cache, video):
    _, r = video
    before = vidlake.output_cache_info()
    big = r.get_frames(list(range(60)))                 # 41 MB
    del big
    gc.collect()
    small = r.get_frames(BIG)                          # 20 MB: would waste half the block
    assert _delta(before, "hits") == 0
    assert _delta(before, "misses") == 2
    assert vidlake.output_cache_info()["cached_blocks"] == 1
    del small


def test_unused_blocks_go_back_to_the_system(cache, video):
    _, r = video
    vidlake.set_output_cache(keep_seconds=0.2)
    before = vidlake.output_cache_info()
    a = r.get_frames(BIG)
    del a
    gc.collect()
    deadline = time.monotonic() + 30
    while vidlake.output_cache_info()["cached_bytes"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert vidlake.output_cache_info()["cached_bytes"] == 0
    assert _delta(before, "returned") == 1


def test_max_bytes_zero_turns_it_off_and_gives_memory_back(cache, video):
    _, r = video
    a = r.get_frames(BIG)
    del a
    gc.collect()
    assert vidlake.output_cache_info()["cached_blocks"] == 1
    vidlake.set_output_cache(max_bytes=0)                  # lowering gives memory back at once
    assert vidlake.output_cache_info()["cached_bytes"] == 0
    before = vidlake.output_cache_info()
    a = r.get_frames(BIG)
    del a
    gc.collect()
    b = r.get_frames(BIG)
    assert _delta(before, "hits") == 0
    assert _delta(before, "returned") == 1
    assert vidlake.output_cache_info()["cached_blocks"] == 0
    del b


def test_blocks_over_max_bytes_are_not_kept(cache, video):
    _, r = video
    vidlake.set_output_cache(max_bytes=30 << 20)
    a, b = r.get_frames(BIG), r.get_frames(OTHER)      # 2 x 20 MB (22 MB mapped each)
    del a
    gc.collect()
    del b
    gc.collect()
    info = vidlake.output_cache_info()
    assert info["cached_blocks"] == 1
    assert info["cached_bytes"] <= 30 << 20


@pytest.mark.parametrize("kwargs", [{"max_bytes": -1}, {"max_bytes": 1.5}, {"max_bytes": True}, {"max_bytes": 2**63},
                                    {"keep_seconds": -0.1}, {"keep_seconds": float("nan")}, {"keep_seconds": float("inf")},
                                    {"keep_seconds": "10"}])
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError, match=r"max_bytes|keep_seconds"):
        vidlake.set_output_cache(**kwargs)


def _child(path, queue):
    info = vidlake.output_cache_info()
    r = vidlake.VideoReader(path)
    a = r.get_frames(BIG)
    queue.put((info["cached_blocks"], int(a[0].sum()), int(a[-1].sum())))


def test_a_forked_child_starts_with_an_empty_cache_and_reads(cache, video):
    path, r = video
    a = r.get_frames(BIG)
    want = (0, int(a[0].sum()), int(a[-1].sum()))
    del a
    gc.collect()
    assert vidlake.output_cache_info()["cached_blocks"] == 1
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(path, queue))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert got == want
    assert vidlake.output_cache_info()["cached_blocks"] == 1   # the parent's cache is untouched


def test_threads_reading_and_freeing_large_arrays_stay_exact(cache, video):
    """Blocks move between threads' reads while others are live: every frame stays exact."""
    from concurrent.futures import ThreadPoolExecutor

    path, r = video
    want = {i: oracle.frame(path, i) for i in (BIG[0], BIG[-1], OTHER[0], OTHER[-1])}

    def work(k):
        idx = BIG if k % 2 else OTHER
        for _ in range(4):
            a = r.get_frames(idx)
            np.testing.assert_array_equal(a[0], want[idx[0]])
            np.testing.assert_array_equal(a[-1], want[idx[-1]])
            del a
        return True

    before = vidlake.output_cache_info()
    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(work, range(8)))
    info = vidlake.output_cache_info()
    assert info["hits"] - before["hits"] + info["misses"] - before["misses"] == 32
    assert info["hits"] > before["hits"]
