"""HTTPProvider against a real HTTP/1.1 server on 127.0.0.1 that honours Range
(and, under ``/norange/``, one that ignores it), with faults from a real proxy."""
from __future__ import annotations

import logging
import os
import time

import pytest
from remote_fixtures import free_port

import vidlake
from vidlake.storage import get_provider
from vidlake.storage.http import HTTPProvider
from vidlake.storage.retry import RetryPolicy

pytestmark = pytest.mark.timeout(60)

FAST = RetryPolicy(max_attempts=5, base_delay=0.02, max_delay=0.2, total_timeout=20)


@pytest.fixture
def blob(http_server):
    data = os.urandom(300_000)
    http_server.add("dir/blob.bin", data)
    return data


def test_contract(http_server, blob):
    p = get_provider(f"{http_server.url}/dir", creds=None)
    assert isinstance(p, HTTPProvider)
    assert p.read_only
    assert p.get("blob.bin") == blob
    assert p.size("blob.bin") == len(blob)
    assert p.exists("blob.bin")
    assert not p.exists("nope.bin")
    assert p.get_bytes("blob.bin", 10, 20) == blob[10:20]
    assert p.get_bytes("blob.bin", 299_990) == blob[299_990:]
    assert p.get_bytes("blob.bin", 299_990, 400_000) == blob[299_990:]
    assert p.get_bytes("blob.bin", 300_000, 300_010) == b""  # 416 from the server
    assert p.get_bytes("blob.bin", 7, 7) == b""
    ranges = [(0, 1), (100, 200_000), (123, 123), (299_000, 300_000)]
    assert p.get_ranges("blob.bin", ranges) == [blob[s:e] for s, e in ranges]
    ranges_sent = [r for _m, _p, r in http_server.log if r]
    assert "bytes=10-19" in ranges_sent
    assert p.ranges_supported is True
    for call in (lambda: p.get("nope.bin"), lambda: p.get_bytes("nope.bin", 0, 4), lambda: p.size("nope.bin")):
        with pytest.raises(KeyError):
            call()


def test_parallel_parts(http_server, blob):
    p = HTTPProvider(f"{http_server.url}/dir", part_size=64 * 1024, max_workers=4)
    http_server.reset()
    assert p.get_ranges("blob.bin", [(0, 300_000)]) == [blob]
    assert http_server.requests == 5  # 300 000 bytes in parts of 64 KiB


def test_https_scheme_and_read_only(http_server, blob):
    p = get_provider("https://example.invalid/videos")  # no request is made
    assert isinstance(p, HTTPProvider)
    assert p.root == "https://example.invalid/videos"
    q = get_provider(f"{http_server.url}/dir", read_only=False)
    for call in (lambda: q.put("k", b"v"), lambda: q.delete("blob.bin"), lambda: q.append("k", b"v", 0),
                 lambda: q.delete_many(["k"]), lambda: q.clear()):
        with pytest.raises(vidlake.ReadOnlyError):
            call()
    with pytest.raises(vidlake.StorageError, match="http storage cannot list"):
        q.list()


def test_size_without_head(http_server, blob):
    p = HTTPProvider(f"{http_server.url}/nohead/dir")
    assert p.size("blob.bin") == len(blob)  # from a one-byte Range probe
    with pytest.raises(KeyError):
        p.size("nope.bin")


def test_server_ignoring_range_falls_back_and_says_so(http_server, blob, caplog):
    caplog.set_level(logging.WARNING, logger="vidlake")
    p = HTTPProvider(f"{http_server.url}/norange/dir")
    assert p.get_bytes("blob.bin", 10, 20) == blob[10:20]
    assert p.ranges_supported is False
    warnings = [r for r in caplog.records if "ignores HTTP Range" in r.getMessage()]
    assert len(warnings) == 1
    http_server.reset()
    ranges = [(0, 5), (1000, 250_000), (299_999, 300_000)]
    assert p.get_ranges("blob.bin", ranges) == [blob[s:e] for s, e in ranges]
    assert p.get_bytes("blob.bin", 5, 10) == blob[5:10]
    assert http_server.requests <= 2  # HEAD + one whole download, then served from memory
    assert len([r for r in caplog.records if "ignores HTTP Range" in r.getMessage()]) == 1


def test_retries(http_server, blob, fault_proxy_http):
    p = HTTPProvider(f"{fault_proxy_http.url}/dir", retry=FAST)
    fault_proxy_http.fail(3, "503")
    assert p.get_bytes("blob.bin", 0, 100) == blob[:100]
    assert fault_proxy_http.faults == 3
    fault_proxy_http.fail(2, "drop")
    assert p.get("blob.bin") == blob
    fault_proxy_http.fail(3, "503")
    assert p.size("blob.bin") == len(blob)
    fault_proxy_http.fail(2, "drop")
    ranges = [(0, 10), (100, 200), (1000, 2000)]
    assert p.get_ranges("blob.bin", ranges) == [blob[s:e] for s, e in ranges]


def test_stall_then_success(http_server, blob, fault_proxy_http):
    fault_proxy_http.stall_seconds = 10
    p = HTTPProvider(f"{fault_proxy_http.url}/dir", retry=FAST, read_timeout=0.5)
    fault_proxy_http.fail(1, "stall")
    t = time.monotonic()
    assert p.get_bytes("blob.bin", 0, 10) == blob[:10]
    assert time.monotonic() - t < 5


def test_permanent_failure(http_server, blob, fault_proxy_http):
    p = HTTPProvider(f"{fault_proxy_http.url}/dir",
                     retry=RetryPolicy(max_attempts=100, base_delay=0.05, max_delay=0.3, total_timeout=2))
    fault_proxy_http.fail_always("503")
    t = time.monotonic()
    with pytest.raises(vidlake.StorageError) as ei:
        p.get_bytes("blob.bin", 0, 10)
    assert time.monotonic() - t < 5
    assert f"{fault_proxy_http.url}/dir/blob.bin" in str(ei.value)
    assert "503" in str(ei.value)
    # nothing listening at all
    q = HTTPProvider(f"http://127.0.0.1:{free_port()}/x", connect_timeout=1,
                     retry=RetryPolicy(max_attempts=3, base_delay=0.05, total_timeout=5))
    with pytest.raises(vidlake.StorageError, match="GET failed after 3 attempts"):
        q.get("k")


def test_auth_headers_are_secrets(http_server, blob, caplog):
    caplog.set_level(logging.DEBUG)
    token = "Bearer vidlake-http-token-Mz81Kq2"
    http_server.required_header = ("Authorization", token)
    try:
        p = HTTPProvider(f"{http_server.url}/dir", retry=FAST)
        with pytest.raises(vidlake.CredentialsError) as ei:
            p.get_bytes("blob.bin", 0, 10)
        assert f"{http_server.url}/dir/blob.bin" in str(ei.value)
        q = get_provider(f"{http_server.url}/dir", creds={"headers": {"Authorization": token}})
        assert q.get_bytes("blob.bin", 0, 10) == blob[:10]
        assert token not in repr(q)
        for r in caplog.records:
            assert token not in r.getMessage()
    finally:
        http_server.required_header = None
