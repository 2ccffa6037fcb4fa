"""S3Provider against a real S3-compatible server (moto in server mode on 127.0.0.1).

Faults come from a real proxy on loopback (503 answers, reset connections, stalls), never
from patched clients.
"""
from __future__ import annotations

import logging
import os
import time
import traceback

import pytest
from remote_fixtures import HOST, MotoS3, free_port

import vidlake
from vidlake.storage import get_provider
from vidlake.storage.retry import RetryPolicy
from vidlake.storage.s3 import S3Provider

pytestmark = pytest.mark.timeout(60)

FAST = RetryPolicy(max_attempts=5, base_delay=0.02, max_delay=0.2, total_timeout=20)


def _no_secret_anywhere(exc: BaseException, records, *secrets: str) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for s in secrets:
        assert s not in str(exc)
        assert s not in repr(exc)
        assert s not in text
        for r in records:
            assert s not in r.getMessage(), f"secret leaked in log record of {r.name}"


# -- the provider contract ---------------------------------------------------------------
def test_contract(s3_root):
    root, creds = s3_root
    p = get_provider(root, creds=creds)
    assert isinstance(p, S3Provider)
    assert p.root == root
    assert p.list() == []
    p.put("dataset_meta.json", b"{}")
    p.put("videos/chunks/0", bytes(range(256)) * 40)
    p.put("videos/chunks/1", b"x")
    assert p.get("dataset_meta.json") == b"{}"
    blob = bytes(range(256)) * 40
    assert p.get_bytes("videos/chunks/0", 10, 20) == blob[10:20]
    assert p.get_bytes("videos/chunks/0", 10) == blob[10:]
    assert p.get_bytes("videos/chunks/0") == blob
    assert p.get_bytes("videos/chunks/0", 10_000, 20_000) == blob[10_000:20_000]  # clipped at the end
    assert p.get_bytes("videos/chunks/0", 20_000, 30_000) == b""  # past the end
    assert p.get_bytes("videos/chunks/0", 5, 5) == b""
    assert p.size("videos/chunks/0") == len(blob)
    assert p.exists("videos/chunks/1")
    assert not p.exists("videos/chunks/2")
    assert p.list() == ["dataset_meta.json", "videos/chunks/0", "videos/chunks/1"]
    assert p.list("videos/") == ["videos/chunks/0", "videos/chunks/1"]
    # overwrite replaces the whole object
    p.put("videos/chunks/1", b"second version")
    assert p.get("videos/chunks/1") == b"second version"
    # append (default: kept prefix + re-put)
    p.append("videos/chunks/1", b"!!", 6)
    assert p.get("videos/chunks/1") == b"second!!"
    # missing keys
    for call in (lambda: p.get("nope"), lambda: p.get_bytes("nope", 0, 4), lambda: p.size("nope")):
        with pytest.raises(KeyError):
            call()
    # delete / delete_many / clear
    p.delete("videos/chunks/1")
    p.delete("videos/chunks/1")  # deleting a missing object is fine
    assert p.list("videos/") == ["videos/chunks/0"]
    p.delete_many(["videos/chunks/0", "dataset_meta.json"])
    assert p.list() == []


def test_prefix_isolation_and_pagination(moto_server, s3_bucket):
    creds = moto_server.creds()
    a = S3Provider(f"s3://{s3_bucket}/a", creds=creds, list_page_size=3)
    b = S3Provider(f"s3://{s3_bucket}/ab", creds=creds, list_page_size=3)
    keys = [f"k/{i:02d}" for i in range(10)]
    for k in keys:
        a.put(k, k.encode())
    b.put("other", b"o")
    assert a.list() == keys  # 4 pages of 3
    assert a.list("k/0") == keys
    assert b.list() == ["other"]
    whole = S3Provider(f"s3://{s3_bucket}", creds=creds)
    assert whole.list() == sorted([f"a/{k}" for k in keys] + ["ab/other"])
    a.clear()
    assert a.list() == []
    assert b.list() == ["other"]


def test_get_ranges_parallel_parts(s3_root):
    root, creds = s3_root
    p = S3Provider(root, creds=creds, part_size=64 * 1024, max_workers=4)
    blob = os.urandom(700_000)
    p.put("blob", blob)
    ranges = [(0, 10), (5, 300_000), (699_990, 700_000), (123, 123), (650_000, 800_000)]
    got = p.get_ranges("blob", ranges)
    assert got == [blob[s:e] for s, e in ranges]
    with pytest.raises(KeyError):
        p.get_ranges("missing", [(0, 10), (10, 20)])


def test_read_only(s3_root):
    root, creds = s3_root
    get_provider(root, creds=creds).put("k", b"v")
    p = get_provider(root, creds=creds, read_only=True)
    assert p.get("k") == b"v"
    for call in (lambda: p.put("k", b"w"), lambda: p.delete("k"), lambda: p.delete_many(["k"]),
                 lambda: p.append("k", b"w", 0)):
        with pytest.raises(vidlake.ReadOnlyError):
            call()


def test_default_chain_from_environment(moto_server, s3_bucket, monkeypatch, tmp_path):
    """Without creds boto3's default chain applies: env keys and AWS_ENDPOINT_URL."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-value")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    p = get_provider(f"s3://{s3_bucket}/env", creds=None)
    p.put("x", b"from env")
    assert p.get("x") == b"from env"
    # a creds dict holding only non-secret fields still uses the chain for the keys
    q = get_provider(f"s3://{s3_bucket}/env", creds={"aws_region": "us-east-1"})
    assert q.get("x") == b"from env"


def test_missing_bucket(moto_server):
    p = S3Provider("s3://no-such-bucket-vidlake/x", creds=moto_server.creds(), retry=FAST)
    with pytest.raises(vidlake.StorageError, match="no-such-bucket-vidlake"):
        p.put("k", b"v")


def test_bad_creds_fields(moto_server):
    with pytest.raises(vidlake.CredentialsError, match="unknown field"):
        S3Provider("s3://b", creds={"aws_secret": "x"})
    with pytest.raises(vidlake.CredentialsError):
        S3Provider("s3://b", creds={"profile_name": "no-such-profile-vidlake"})


# -- retries -----------------------------------------------------------------------------
def _via(proxy, moto_server: MotoS3, bucket: str, **kw) -> S3Provider:
    kw.setdefault("retry", FAST)
    return S3Provider(f"s3://{bucket}/r", creds=moto_server.creds(proxy.url), **kw)


def test_append_copies_a_large_prefix_on_the_server(moto_server, s3_bucket, counting_proxy_s3):
    """S3Provider.append above 5 MiB: a multipart upload whose first part is a server-side copy
    of the kept prefix; only the new bytes cross the network (counted by a TCP proxy)."""
    p = _via(counting_proxy_s3, moto_server, s3_bucket)
    blob = os.urandom(6 << 20)
    p.put("videos/chunks/0", blob)
    tail = os.urandom(100_000)
    counting_proxy_s3.reset()
    p.append("videos/chunks/0", tail, len(blob))
    moved = counting_proxy_s3.bytes_up + counting_proxy_s3.bytes_down
    assert len(tail) <= moved < len(tail) + 64_000, moved
    assert p.get("videos/chunks/0") == blob + tail
    # a shorter kept prefix drops what follows it (a rolled-back tail), bytes before it stay
    p.append("videos/chunks/0", b"end", len(blob) - 10)
    assert p.get("videos/chunks/0") == blob[:-10] + b"end"
    p.append("videos/chunks/0", b"", 5 << 20)            # nothing new: the copy alone
    assert p.get("videos/chunks/0") == blob[:5 << 20]
    with pytest.raises(vidlake.StorageError, match="expected at least"):
        p.append("videos/chunks/0", b"x", (5 << 20) + 1)
    assert p.get("videos/chunks/0") == blob[:5 << 20]
    # below 5 MiB the default GET + PUT
    p.append("videos/chunks/0", b"small", 10)
    assert p.get("videos/chunks/0") == blob[:10] + b"small"


def test_failed_server_side_append_leaves_the_object(moto_server, s3_bucket, fault_proxy_s3):
    p = _via(fault_proxy_s3, moto_server, s3_bucket)
    blob = os.urandom(6 << 20)
    p.put("chunk", blob)
    fault_proxy_s3.fail_matching("POST", "uploadId", "503", None)   # CompleteMultipartUpload
    with pytest.raises(vidlake.StorageError, match="failed after"):
        p.append("chunk", b"new bytes", len(blob))
    fault_proxy_s3.heal()
    assert p.get("chunk") == blob
    uploads = moto_server.client().list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert uploads == [], "the failed upload was not aborted"


def test_retry_503_then_success(moto_server, s3_bucket, fault_proxy_s3):
    p = _via(fault_proxy_s3, moto_server, s3_bucket)
    fault_proxy_s3.fail(3, "503")
    p.put("k", b"value")
    assert fault_proxy_s3.faults == 3
    assert fault_proxy_s3.requests == 4
    fault_proxy_s3.fail(3, "503")
    assert p.get_bytes("k", 1, 4) == b"alu"
    fault_proxy_s3.fail(3, "503")
    assert p.size("k") == 5  # HEAD: a 503 without a body
    fault_proxy_s3.fail(3, "503")
    assert p.list() == ["k"]


def test_retry_dropped_connections(moto_server, s3_bucket, fault_proxy_s3):
    p = _via(fault_proxy_s3, moto_server, s3_bucket)
    p.put("k", b"0123456789")
    fault_proxy_s3.fail(2, "drop")
    assert p.get("k") == b"0123456789"
    fault_proxy_s3.fail(2, "drop")
    p.put("k", b"abc")
    assert p.get("k") == b"abc"
    assert fault_proxy_s3.faults == 4


def test_retry_stall_times_out_then_succeeds(moto_server, s3_bucket, fault_proxy_s3):
    fault_proxy_s3.stall_seconds = 10
    p = _via(fault_proxy_s3, moto_server, s3_bucket, read_timeout=0.5, connect_timeout=2)
    p.put("k", b"stalled")
    fault_proxy_s3.fail(1, "stall")
    t = time.monotonic()
    assert p.get("k") == b"stalled"
    assert time.monotonic() - t < 5
    assert fault_proxy_s3.faults == 1


def test_permanent_failure_is_a_clear_error_in_bounded_time(moto_server, s3_bucket, fault_proxy_s3):
    policy = RetryPolicy(max_attempts=50, base_delay=0.05, max_delay=0.3, total_timeout=2.0)
    p = _via(fault_proxy_s3, moto_server, s3_bucket, retry=policy)
    fault_proxy_s3.fail_always("503")
    t = time.monotonic()
    with pytest.raises(vidlake.StorageError) as ei:
        p.get("videos/big.mp4")
    elapsed = time.monotonic() - t
    assert elapsed < 5
    msg = str(ei.value)
    assert f"s3://{s3_bucket}/r/videos/big.mp4" in msg
    assert "503" in msg
    assert "attempt" in msg
    assert not isinstance(ei.value, vidlake.CredentialsError)


def test_unreachable_endpoint(s3_bucket):
    port = free_port()  # nothing listens there
    policy = RetryPolicy(max_attempts=3, base_delay=0.05, total_timeout=5)
    p = S3Provider(f"s3://{s3_bucket}/x", retry=policy, connect_timeout=1,
                   creds={"aws_access_key_id": "a-key", "aws_secret_access_key": "a-secret",
                          "endpoint_url": f"http://{HOST}:{port}", "aws_region": "us-east-1"})
    t = time.monotonic()
    with pytest.raises(vidlake.StorageError, match=f"s3://{s3_bucket}/x/k: GET failed after 3 attempts"):
        p.get("k")
    assert time.monotonic() - t < 10


# -- credentials -------------------------------------------------------------------------
def test_wrong_credentials_name_the_url_not_the_secret(moto_server, s3_bucket, caplog):
    caplog.set_level(logging.DEBUG)
    iam = moto_server.client("iam")
    iam.create_user(UserName="vidlake-reader")
    key = iam.create_access_key(UserName="vidlake-reader")["AccessKey"]
    real_secret = key["SecretAccessKey"]
    wrong_secret = "WRONG-secret-Zq8v1LkP0xY7mN3bC5dE"
    bogus = {"aws_access_key_id": "AKIAVIDLAKEBOGUS0000", "aws_secret_access_key": wrong_secret,
             "endpoint_url": moto_server.endpoint, "aws_region": "us-east-1"}
    bad_sig = dict(bogus, aws_access_key_id=key["AccessKeyId"])
    no_policy = dict(bogus, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=real_secret)
    caplog.clear()  # the set-up above logged the new key itself (botocore's own debug log)
    with moto_server.enable_auth():
        for creds, secret in ((bogus, wrong_secret), (bad_sig, wrong_secret), (no_policy, real_secret)):
            p = S3Provider(f"s3://{s3_bucket}/ds", creds=creds, retry=FAST)
            with pytest.raises(vidlake.CredentialsError) as ei:
                p.get("dataset_meta.json")
            assert f"s3://{s3_bucket}/ds/dataset_meta.json" in str(ei.value)
            assert "access denied" in str(ei.value)
            _no_secret_anywhere(ei.value, caplog.records, secret)
            assert secret not in repr(p)
            with pytest.raises(vidlake.CredentialsError):
                p.put("x", b"y")


def test_secrets_stay_out_of_logs(s3_root, caplog):
    """botocore logs request headers at DEBUG (the session token among them): vidlake scrubs them."""
    caplog.set_level(logging.DEBUG)
    root, creds = s3_root
    token = "SESSION-token-Hk29dJ3mQw81Lx0PzT"
    creds = dict(creds, aws_secret_access_key="SECRET-key-Rv71Nq3Ws0Yb5Jd8", aws_session_token=token)
    p = get_provider(root, creds=creds)
    p.put("k", b"v")
    assert p.get("k") == b"v"
    assert caplog.records, "expected botocore debug records"
    for r in caplog.records:
        msg = r.getMessage()
        assert token not in msg, r.name
        assert "SECRET-key-Rv71Nq3Ws0Yb5Jd8" not in msg, r.name
    assert any("***" in r.getMessage() for r in caplog.records)  # the token header was there, masked
