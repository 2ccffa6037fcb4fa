"""Fork safety of the objects registered with vidlake.storage._forksafe (storage, the lazy
sample table, the ingestion fetcher): a child forked while another thread holds a
lock, or while a ranged fetch is in flight, reads correct bytes and never hangs.

Each scenario forks with multiprocessing's 'fork' context and waits a bounded time for the
child's answer, so a regression fails the test (the child is killed) instead of hanging the
suite. Without the resets (before _forksafe) every lock scenario hung: the child waited for a
lock held by a thread that exists only in the parent; the warm-pool and in-flight scenarios
hung too (the child's copy of the ThreadPoolExecutor counted the parent's idle threads and
never started one of its own); the retry children drew the parent's jitter sequence.
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import multiprocessing as mp
import os
import random
import threading
import time
import traceback
import uuid
from typing import Any, Callable

import numpy as np
import pytest
from helpers import video

import vidlake
from vidlake.sources.remote import RemoteRangeSource
from vidlake.storage import _forksafe, creds, memory
from vidlake.storage.gcs import GCSProvider
from vidlake.storage.http import HTTPProvider
from vidlake.storage.memory import MemoryProvider
from vidlake.storage.range_cache import RangeCache
from vidlake.storage.retry import RetryPolicy
from vidlake.storage.s3 import S3Provider

pytestmark = pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="no fork on this platform")

CTX = mp.get_context("fork")
PART = 64 * 1024  # the smallest part size: a few hundred KB make several parallel parts
RANGES = [(0, 3 * PART), (5 * PART + 7, 6 * PART + 99)]


def in_child(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """``fn()`` run in a forked child; its result. A child that hangs is killed and fails the test."""
    r, w = CTX.Pipe(duplex=False)

    def main() -> None:
        try:
            out: tuple[str, Any] = ("ok", fn())
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        w.send(out)

    p = CTX.Process(target=main, daemon=True)
    p.start()
    w.close()
    try:
        if not r.poll(timeout):
            p.kill()
            p.join(10)
            pytest.fail(f"the forked child hung (killed after {timeout:g} s)")
        kind, value = r.recv()
    finally:
        r.close()
        p.join(10)
    if kind != "ok":
        pytest.fail(f"the forked child failed: {value}")
    return value


@contextlib.contextmanager
def held_by_another_thread(lock: Any):
    """``lock`` held by a helper thread for the duration of the block (as at a fork mid-call)."""
    got, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            got.set()
            release.wait(60)

    t = threading.Thread(target=hold, name="holds-a-lock", daemon=True)
    t.start()
    assert got.wait(10)
    try:
        yield
    finally:
        release.set()
        t.join(10)


def expected(data: bytes) -> list[bytes]:
    return [data[s:e] for s, e in RANGES]


@pytest.fixture
def blob(http_server) -> tuple[str, bytes]:
    data = os.urandom(8 * PART)
    name = f"fork-{uuid.uuid4().hex[:8]}.bin"
    http_server.add(name, data)
    return name, data


def quick(**kw: Any) -> RetryPolicy:
    return RetryPolicy(max_attempts=kw.pop("max_attempts", 5), base_delay=0.05, max_delay=0.2, total_timeout=20)


# -- the registry ----------------------------------------------------------------------
def test_registry_is_weak_and_checks_the_reset_method():
    class Thing:
        def _after_fork_in_child(self) -> None:
            self.reset = True

    t: Thing | None = Thing()
    assert _forksafe.register(t) is t
    assert _forksafe.registered(t)

    def child() -> tuple[bool, bool]:
        return getattr(t, "reset", False), _forksafe.forks() > 0

    assert in_child(child) == (True, True)
    assert not hasattr(t, "reset")            # the parent's object is untouched
    key = id(t)
    assert key in _forksafe._objects
    t = None
    gc.collect()
    assert key not in _forksafe._objects      # a dead object leaves the registry
    with pytest.raises(TypeError, match="_after_fork_in_child"):
        _forksafe.register(object())


# -- HTTP ------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", ["lock held", "pool warm"])
def test_http_child_reads_with_inherited_provider(http_server, blob, scenario):
    name, data = blob
    p = HTTPProvider(http_server.url, max_workers=2, part_size=PART, retry=quick())
    assert p.get_ranges(name, RANGES) == expected(data)  # pool threads and connections are warm

    def child() -> bool:
        return p.get_ranges(name, RANGES) == expected(data) and p.get_bytes(name, 10, 20) == data[10:20]

    if scenario == "lock held":
        with held_by_another_thread(p._lock):
            assert in_child(child)
    else:
        assert in_child(child)
    assert p.get_ranges(name, RANGES) == expected(data)  # the parent's provider still works
    p.close()


def _fork_during_stalled_fetch(proxy, read: Callable[[], list[bytes]], want: list[bytes]) -> None:
    """Fork while a parent thread's ranged fetch waits on a stalled request; both get correct bytes."""
    assert read() == want                     # warm: pool threads idle, connections pooled
    proxy.stall_seconds = 3.0
    proxy.fail(1, "stall")
    result: dict[str, Any] = {}

    def parent_fetch() -> None:
        try:
            result["got"] = read()
        except BaseException as e:  # noqa: BLE001
            result["error"] = e

    t = threading.Thread(target=parent_fetch, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while proxy.faults < 1:                   # the stalled request is in flight
        assert time.monotonic() < deadline, "the stalled request never arrived"
        time.sleep(0.005)
    assert in_child(lambda: read() == want)
    t.join(30)
    assert not t.is_alive()
    assert result.get("got") == want, result.get("error")


def test_http_fork_while_a_ranged_fetch_is_in_flight(http_server, blob, fault_proxy_http):
    name, data = blob
    p = HTTPProvider(fault_proxy_http.url, max_workers=2, part_size=PART, read_timeout=1.0, retry=quick())
    _fork_during_stalled_fetch(fault_proxy_http, lambda: p.get_ranges(name, RANGES), expected(data))
    p.close()


def test_remote_source_lock_held(http_server, blob):
    name, data = blob
    src = RemoteRangeSource(HTTPProvider(http_server.url, retry=quick()), name)
    with held_by_another_thread(src._lock):
        assert in_child(lambda: src.fetch(RANGES) == expected(data))


# -- S3 (moto) -------------------------------------------------------------------------
@pytest.fixture
def s3_blob(moto_server, s3_bucket) -> tuple[str, bytes]:
    data = os.urandom(8 * PART)
    moto_server.client().put_object(Bucket=s3_bucket, Key="ds/blob.bin", Body=data)
    return "blob.bin", data


@pytest.mark.parametrize("scenario", ["lock held", "pool warm"])
def test_s3_child_reads_with_inherited_provider(moto_server, s3_bucket, s3_blob, scenario):
    name, data = s3_blob
    p = S3Provider(f"s3://{s3_bucket}/ds", creds=moto_server.creds(), max_workers=2, part_size=PART, retry=quick())
    assert p.get_ranges(name, RANGES) == expected(data)
    parent_client = p._client

    def child() -> tuple[bool, bool]:
        ok = p.get_ranges(name, RANGES) == expected(data) and p.get_bytes(name, 3, 9) == data[3:9]
        return ok, p._client is not parent_client   # the parent's boto3 client is not used here

    if scenario == "lock held":
        with held_by_another_thread(p._pool_lock):
            assert in_child(child) == (True, True)
    else:
        assert in_child(child) == (True, True)
    assert p._client is parent_client
    assert p.get_ranges(name, RANGES) == expected(data)
    p.close()


def test_s3_fork_while_a_ranged_fetch_is_in_flight(moto_server, s3_bucket, s3_blob, fault_proxy_s3):
    name, data = s3_blob
    p = S3Provider(f"s3://{s3_bucket}/ds", creds=moto_server.creds(endpoint=fault_proxy_s3.url), max_workers=2,
                   part_size=PART, read_timeout=1.0, retry=quick())
    _fork_during_stalled_fetch(fault_proxy_s3, lambda: p.get_ranges(name, RANGES), expected(data))
    p.close()


# -- GCS (emulator) --------------------------------------------------------------------
def test_gcs_child_reads_with_lock_held(gcs_root):
    root, gcreds = gcs_root
    p = GCSProvider(root, creds=gcreds, max_workers=2, part_size=PART, retry=quick())
    data = os.urandom(8 * PART)
    p.put("blob.bin", data)
    assert p.get_ranges("blob.bin", RANGES) == expected(data)

    parent_client = p._client

    def child() -> tuple[bool, bool]:
        return p.get_ranges("blob.bin", RANGES) == expected(data), p._client is not parent_client

    with held_by_another_thread(p._pool_lock):
        assert in_child(child) == (True, True)
    assert p.get_ranges("blob.bin", RANGES) == expected(data)
    p.close()


# -- module and instance locks ---------------------------------------------------------
def test_creds_registry_lock_held():
    secret = f"fork-secret-{uuid.uuid4().hex}"

    def child() -> str:
        creds.register_secrets({"aws_secret_access_key": secret})
        return creds.redact(f"key={secret}")

    with held_by_another_thread(creds._SECRETS_LOCK):
        assert in_child(child) == "key=***"


def test_memory_locks_held():
    root = f"mem://fork-{uuid.uuid4().hex[:8]}"
    p = MemoryProvider(root)
    p.put("k", b"v")

    def child() -> bytes:
        q = MemoryProvider(root)              # takes the module lock
        with q.commit_lock(2.0):              # the parent's writer holds its commit lock
            q.put("k2", b"w")
        return q.get("k") + q.get("k2")

    with p.commit_lock(1.0), held_by_another_thread(memory._LOCK):
        assert in_child(child) == b"vw"
    assert p.list() == ["k"]                  # the child's writes stay the child's


def test_range_cache_lock_held(tmp_path):
    cache = RangeCache(tmp_path / "ranges", max_bytes=1 << 20)
    cache.put("obj#10", 0, b"0123456789")

    def child() -> tuple[bytes | None, bytes | None]:
        cache.put("obj#10", 20, b"abc")
        return cache.get("obj#10", 2, 5), cache.get("obj#10", 20, 23)

    with held_by_another_thread(cache._lock):
        assert in_child(child) == (b"234", b"abc")


def test_tensor_and_reader_cache_locks_held(tmp_path):
    from vidlake.torch.cache import ReaderCache

    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    with ds:
        ds.append({"videos": vidlake.read(video("realshort.mp4"))})
    want = vidlake.VideoReader(video("realshort.mp4")).get_frames([0, 7]).copy()
    rc = ReaderCache()
    rc.get(ds.videos, 0).get_frames([1])      # a reader cached in the parent

    def child() -> bool:
        ok = len(rc) == 0                     # the parent's readers stay the parent's
        ok &= np.array_equal(rc.get(ds.videos, 0).get_frames([0, 7]), want)
        ok &= np.array_equal(ds.videos.reader(0).get_frames([0, 7]), want)  # takes the tensor's lock
        return bool(ok) and rc.info()["opened"] == 1

    with held_by_another_thread(rc._lock), held_by_another_thread(ds.videos._lock):
        assert in_child(child)
    assert len(rc) == 1


# -- retry jitter ----------------------------------------------------------------------
def test_retry_jitter_reseeded_in_each_child():
    policy = RetryPolicy(base_delay=1.0, max_delay=1.0, rng=random.Random(7))

    def draws() -> list[float]:
        return [policy.delay(3) for _ in range(8)]

    a, b = in_child(draws), in_child(draws)
    mine = draws()
    assert a != b
    assert mine not in (a, b)
    assert all(0.0 <= x <= 1.0 for x in a + b)


# -- dataset sample tables and ingestion fetchers -----------------------------------------
def test_sample_table_lock_held(tmp_path, monkeypatch):
    # a loader worker forked while a parent thread reads a segment of a lazily loaded table
    # (the table's lock held) reads that segment itself instead of waiting forever
    writer_mod = importlib.import_module("vidlake.dataset.writer")   # vidlake.dataset is also a function
    monkeypatch.setattr(writer_mod, "MAX_SEGMENT_ROWS", 4)
    path = str(tmp_path / "ds")
    ds = vidlake.empty(path)
    ds.create_tensor("labels", htype="generic", dtype="int64")
    with ds:
        for i in range(10):
            ds.labels.append(np.int64(i))
    ds = vidlake.load(path, read_only=True)
    table = ds.labels._entries
    assert len(table.segments) == 3
    assert table.loaded_segments() == 0
    assert _forksafe.registered(table)

    def child() -> list[int]:
        return [int(ds.labels[i].numpy()) for i in (9, 0, 5)]

    with held_by_another_thread(table._lock):
        assert in_child(child) == [9, 0, 5]
    assert table.loaded_segments() == 0      # the child's reads stay the child's


def test_fetcher_pool_warm_in_parent(tmp_path):
    from vidlake.jobs.fetch import Fetcher

    files = []
    for i in range(3):
        f = tmp_path / f"f{i}.bin"
        f.write_bytes(bytes([i]) * (1000 + i))
        files.append(str(f))
    with Fetcher(workers=2) as fetcher:
        assert [len(x) for x in [fu.result() for fu in [fetcher.submit(f) for f in files]]] == [1000, 1001, 1002]

        def child() -> list[int]:
            # the parent's pool counts idle threads that do not exist here
            return [len(fu.result(10)) for fu in [fetcher.submit(f) for f in files]]

        with held_by_another_thread(fetcher._lock):
            assert in_child(child) == [1000, 1001, 1002]
        assert len(fetcher.submit(files[0]).result(10)) == 1000   # the parent's pool still works
    with pytest.raises(RuntimeError, match="closed"):
        fetcher.submit(files[0])
