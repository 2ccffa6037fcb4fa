"""GCSProvider against a real GCS JSON API server (gcp-storage-emulator on 127.0.0.1).

Faults come from a real proxy on loopback (503 answers, reset connections, stalls), never from
patched clients. Service-account keys are real RSA keys whose ``token_uri`` is a loopback token
endpoint, so google-auth signs and exchanges a JWT exactly as it would with Google. The
emulator ignores generation preconditions: a loopback proxy enforcing them as GCS does
(``GenerationProxy``) stands in front of it for the conditional-write tests, and one test
pins down that the emulator alone does not.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import os
import time
import traceback

import pytest
from remote_fixtures import HOST, GcsEmulator, free_port

import vidlake
from vidlake.storage import get_provider
from vidlake.storage.creds import validate_creds
from vidlake.storage.gcs import TMP_DIR, GCSProvider
from vidlake.storage.retry import RetryPolicy

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


def _all_names(gcs: GcsEmulator, bucket: str) -> list[str]:
    return sorted(b.name for b in gcs.client().bucket(bucket).list_blobs())


@pytest.fixture
def no_google_env(monkeypatch, tmp_path):
    """No ambient Google credentials: no GOOGLE_APPLICATION_CREDENTIALS, no gcloud config."""
    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT",
                "GCLOUD_PROJECT", "CLOUDSDK_CONFIG", "API_ENDPOINT_OVERRIDE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# -- the provider contract ---------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["gs", "gcs"])
def test_contract(gcs_server, gcs_bucket, scheme):
    root = f"{scheme}://{gcs_bucket}/ds"
    p = get_provider(root, creds=gcs_server.creds())
    assert isinstance(p, GCSProvider)
    assert p.root == root
    assert p.url("a/b") == f"{scheme}://{gcs_bucket}/ds/a/b"
    assert p.list() == []
    blob = bytes(range(256)) * 40
    p.put("dataset_meta.json", b"{}")
    p.put("videos/chunks/0", blob)
    p.put("videos/chunks/1", b"x")
    assert p.get("dataset_meta.json") == b"{}"
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
    p.put("videos/chunks/1", b"second version")
    assert p.get("videos/chunks/1") == b"second version"
    p.append("videos/chunks/1", b"!!", 6)
    assert p.get("videos/chunks/1") == b"second!!"
    for call in (lambda: p.get("nope"), lambda: p.get_bytes("nope", 0, 4), lambda: p.size("nope"),
                 lambda: p.generation("nope"), lambda: p.get_ranges("nope", [(0, 4), (4, 8)])):
        with pytest.raises(KeyError):
            call()
    p.delete("videos/chunks/1")
    p.delete("videos/chunks/1")  # deleting a missing object is fine
    assert p.list("videos/") == ["videos/chunks/0"]
    p.delete_many(["videos/chunks/0", "dataset_meta.json"])
    assert p.list() == []


def test_prefix_isolation_and_listing(gcs_server, gcs_bucket):
    creds = gcs_server.creds()
    a = GCSProvider(f"gs://{gcs_bucket}/a", creds=creds, list_page_size=3)
    b = GCSProvider(f"gs://{gcs_bucket}/ab", creds=creds, list_page_size=3)
    keys = [f"k/{i:02d}" for i in range(10)]
    a.delete_many([])
    for k in keys:
        a.put(k, k.encode())
    b.put("other", b"o")
    assert a.list() == keys
    assert a.list("k/0") == keys
    assert b.list() == ["other"]
    whole = GCSProvider(f"gs://{gcs_bucket}", creds=creds)
    assert whole.list() == sorted([f"a/{k}" for k in keys] + ["ab/other"])
    a.clear()
    assert a.list() == []
    assert b.list() == ["other"]


def test_get_ranges_parallel_parts(gcs_root):
    root, creds = gcs_root
    p = GCSProvider(root, creds=creds, part_size=64 * 1024, max_workers=4)
    blob = os.urandom(700_000)
    p.put("blob", blob)
    ranges = [(0, 10), (5, 300_000), (699_990, 700_000), (123, 123), (650_000, 800_000)]
    assert p.get_ranges("blob", ranges) == [blob[s:e] for s, e in ranges]


def test_large_put_is_one_object(gcs_root):
    """Above 8 MiB google-cloud-storage uploads resumably: the object appears whole, once."""
    root, creds = gcs_root
    p = get_provider(root, creds=creds)
    blob = os.urandom(9 << 20)
    p.put("big", blob)
    assert p.size("big") == len(blob)
    assert p.get("big") == blob
    assert p.get_bytes("big", (9 << 20) - 5) == blob[-5:]


def test_read_only(gcs_root):
    root, creds = gcs_root
    get_provider(root, creds=creds).put("k", b"v")
    p = get_provider(root, creds=creds, read_only=True)
    assert p.get("k") == b"v"
    for call in (lambda: p.put("k", b"w"), lambda: p.delete("k"), lambda: p.delete_many(["k"]),
                 lambda: p.append("k", b"w", 0), lambda: p.put_if_generation("k", b"w", 0)):
        with pytest.raises(vidlake.ReadOnlyError):
            call()


def test_missing_bucket(gcs_server):
    p = GCSProvider("gs://no-such-bucket-vidlake/x", creds=gcs_server.creds(), retry=FAST)
    for call in (lambda: p.put("k", b"v"), lambda: p.list()):
        with pytest.raises(vidlake.StorageError, match="bucket 'no-such-bucket-vidlake' does not exist"):
            call()


def test_unknown_scheme_lists_every_supported_one():
    with pytest.raises(vidlake.StorageError) as ei:
        get_provider("ftp://host/x")
    msg = str(ei.value)
    for scheme in ("local paths", "file://", "mem://", "s3://", "gcs://", "gs://", "http://", "https://"):
        assert scheme in msg, msg


# -- credentials -------------------------------------------------------------------------
def test_storage_emulator_host_is_honoured(gcs_server, gcs_bucket, monkeypatch, no_google_env):
    """As in google-cloud-storage: STORAGE_EMULATOR_HOST sends requests there, anonymously."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    p = get_provider(f"gs://{gcs_bucket}/env")
    p.put("x", b"via STORAGE_EMULATOR_HOST")
    assert p.get("x") == b"via STORAGE_EMULATOR_HOST"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"{HOST}:{gcs_server.port}")  # without a scheme
    assert get_provider(f"gs://{gcs_bucket}/env", creds={"gcs_project": "p"}).list() == ["x"]


@pytest.mark.parametrize("form", ["dict", "path", "managed-env"])
def test_service_account_key(gcs_server, gcs_bucket, token_server, tmp_path, monkeypatch, no_google_env, form):
    """A service-account key (dict or file): google-auth signs a JWT, trades it for a token at
    the key's token_uri (loopback here), then calls the storage API with it."""
    key = token_server.key()
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(key))
    if form == "dict":
        creds = {"gcs_service_account": key, "endpoint_url": gcs_server.endpoint}
    elif form == "path":
        creds = {"gcs_service_account": str(path), "endpoint_url": gcs_server.endpoint}
    else:  # a managed creds key from VIDLAKE_CREDS_<KEY>_<FIELD> variables: strings only
        from vidlake.storage.creds import resolve_creds

        monkeypatch.setenv("VIDLAKE_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("VIDLAKE_CREDS_MY_GCS_GCS_SERVICE_ACCOUNT", str(path))
        monkeypatch.setenv("VIDLAKE_CREDS_MY_GCS_ENDPOINT_URL", gcs_server.endpoint)
        creds = resolve_creds("my-gcs", managed=True, populated=None)
    p = get_provider(f"gs://{gcs_bucket}/sa", creds=creds)
    p.put("k", b"signed in")
    assert p.get("k") == b"signed in"
    assert token_server.requests == 1  # one token, reused
    assert "jwt-bearer" in token_server.forms[0]
    shown = repr(validate_creds(creds))
    assert key["private_key"] not in shown
    assert key["private_key_id"] not in shown


def test_google_application_credentials(gcs_server, gcs_bucket, token_server, tmp_path, monkeypatch,
                                        no_google_env):
    """Without creds the default chain reads GOOGLE_APPLICATION_CREDENTIALS."""
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(token_server.key()))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    p = get_provider(f"gs://{gcs_bucket}/adc", creds={"endpoint_url": gcs_server.endpoint})
    p.put("k", b"default chain")
    assert p.get("k") == b"default chain"
    assert token_server.requests == 1


def test_no_credentials_is_a_clear_error(gcs_bucket, no_google_env):
    with pytest.raises(vidlake.CredentialsError, match=f"gs://{gcs_bucket}/x: no Google credentials found"):
        GCSProvider(f"gs://{gcs_bucket}/x")


def test_bad_creds(gcs_server, tmp_path, token_server):
    with pytest.raises(vidlake.CredentialsError, match="unknown field"):
        GCSProvider("gs://b", creds={"gcs_key": "x"})
    with pytest.raises(vidlake.CredentialsError, match="not JSON text"):
        GCSProvider("gs://b", creds={"gcs_service_account": json.dumps(token_server.key())})
    with pytest.raises(vidlake.CredentialsError, match="cannot read the key file"):
        GCSProvider("gs://b", creds={"gcs_service_account": str(tmp_path / "missing.json")})
    (tmp_path / "x.json").write_text("not json")
    with pytest.raises(vidlake.CredentialsError, match="is not JSON"):
        GCSProvider("gs://b", creds={"gcs_service_account": str(tmp_path / "x.json")})
    with pytest.raises(vidlake.CredentialsError, match="accepted"):
        GCSProvider("gs://b", creds={"gcs_service_account": {"type": "external_account"}})
    key = dict(token_server.key(), private_key="-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(vidlake.CredentialsError, match="not a usable service_account key") as ei:
        GCSProvider("gs://b", creds={"gcs_service_account": key})
    assert "not a key" not in str(ei.value)


def test_refused_key_names_the_url_not_the_secret(gcs_server, gcs_bucket, token_server, caplog):
    caplog.set_level(logging.DEBUG)
    key = token_server.key()
    token_server.refuse = True
    p = GCSProvider(f"gs://{gcs_bucket}/ds", retry=FAST,
                    creds={"gcs_service_account": key, "endpoint_url": gcs_server.endpoint})
    with pytest.raises(vidlake.CredentialsError) as ei:
        p.get("dataset_meta.json")
    msg = str(ei.value)
    assert f"gs://{gcs_bucket}/ds/dataset_meta.json" in msg
    assert "access denied" in msg
    assert "invalid_grant" in msg
    pem_body = key["private_key"].splitlines()[1]
    _no_secret_anywhere(ei.value, caplog.records, pem_body, key["private_key_id"])
    assert token_server.requests == 1  # a refused key is not retried


def test_secrets_stay_out_of_logs(gcs_server, gcs_bucket, token_server, caplog):
    caplog.set_level(logging.DEBUG)
    key = token_server.key()
    p = get_provider(f"gs://{gcs_bucket}/ds", creds={"gcs_service_account": key, "endpoint_url": gcs_server.endpoint})
    p.put("k", b"v")
    assert p.get("k") == b"v"
    assert caplog.records, "expected debug records (urllib3, google-auth)"
    pem_body = key["private_key"].splitlines()[1]
    for r in caplog.records:
        msg = r.getMessage()
        assert pem_body not in msg, r.name
        assert key["private_key_id"] not in msg, r.name
        assert token_server.access_token not in msg, r.name
    assert key["private_key"] not in repr(p)


def test_google_auth_structured_logs_are_masked(gcs_server, gcs_bucket, token_server):
    """With the ``google`` logger configured, google-auth logs each request with its headers and
    body as structured extras: the signed JWT it trades for a token is masked there."""

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    h = Keep()
    g = logging.getLogger("google")
    level = g.level
    g.addHandler(h)
    g.setLevel(logging.DEBUG)
    try:
        key = token_server.key()
        p = get_provider(f"gs://{gcs_bucket}/ds", creds={"gcs_service_account": key,
                                                         "endpoint_url": gcs_server.endpoint})
        p.put("k", b"v")
    finally:
        g.removeHandler(h)
        g.setLevel(level)
    token_requests = [r for r in h.records if "/token" in str(getattr(r, "httpRequest", ""))]
    assert token_requests, "google-auth logged no structured request"
    for r in h.records:
        attrs = str(r.__dict__)
        assert "eyJ" not in attrs, "a JWT in a log record"  # every JWT starts with eyJ ({")
        assert token_server.access_token not in attrs
        assert key["private_key_id"] not in attrs


# -- append: compose on the server --------------------------------------------------------
def test_append_composes_on_the_server(gcs_server, gcs_bucket, counting_proxy_gcs):
    """Above 1 MiB append uploads only the new bytes and GCS concatenates (compose)."""
    p = GCSProvider(f"gs://{gcs_bucket}/r", creds=gcs_server.creds(counting_proxy_gcs.url), retry=FAST)
    blob = os.urandom(3 << 20)
    p.put("videos/chunks/0", blob)
    tail = os.urandom(100_000)
    counting_proxy_gcs.reset()
    p.append("videos/chunks/0", tail, len(blob))
    moved = counting_proxy_gcs.bytes_up + counting_proxy_gcs.bytes_down
    assert len(tail) <= moved < len(tail) + 32_000, moved
    assert p.get("videos/chunks/0") == blob + tail
    assert _all_names(gcs_server, gcs_bucket) == ["r/videos/chunks/0"]  # the temporary part is gone
    # a shorter kept prefix drops what follows it, bytes before it stay
    p.append("videos/chunks/0", b"end", len(blob) - 10)
    assert p.get("videos/chunks/0") == blob[:-10] + b"end"
    p.append("videos/chunks/0", b"", len(blob) - 10)
    assert p.get("videos/chunks/0") == blob[:-10]
    with pytest.raises(vidlake.StorageError, match="expected at least"):
        p.append("videos/chunks/0", b"x", len(blob) + 1)
    p.append("videos/chunks/0", b"small", 10)  # below 1 MiB: GET + PUT
    assert p.get("videos/chunks/0") == blob[:10] + b"small"


def test_failed_compose_leaves_the_object(gcs_server, gcs_bucket, fault_proxy_gcs):
    p = GCSProvider(f"gs://{gcs_bucket}/r", creds=gcs_server.creds(fault_proxy_gcs.url), retry=FAST)
    blob = os.urandom(2 << 20)
    p.put("chunk", blob)
    fault_proxy_gcs.fail_matching("POST", "/compose", "503", None)
    with pytest.raises(vidlake.StorageError, match="COMPOSE failed after 5 attempts"):
        p.append("chunk", b"new bytes", len(blob))
    fault_proxy_gcs.heal()
    assert p.get("chunk") == blob
    assert _all_names(gcs_server, gcs_bucket) == ["r/chunk"]  # the temporary part was deleted


def test_leftover_temporary_parts_are_not_listed(gcs_server, gcs_bucket):
    p = GCSProvider(f"gs://{gcs_bucket}", creds=gcs_server.creds())
    p.put(f"{TMP_DIR}/left-by-a-crash", b"x")
    p.put("k", b"v")
    assert p.list() == ["k"]


# -- conditional writes (generation preconditions) ------------------------------------------
def test_emulator_itself_ignores_generation_preconditions(gcs_root):
    """Why GenerationProxy exists: a stale ifGenerationMatch goes through on the bare emulator
    (on GCS it is refused with 412). Should the emulator start enforcing, this test fails and
    the proxy can go."""
    root, creds = gcs_root
    p = GCSProvider(root, creds=creds)
    p.put("meta", b"v1")
    stale = p.generation("meta")
    p.put("meta", b"v2")
    p.put_if_generation("meta", b"stale write", stale)
    assert p.get("meta") == b"stale write"


def test_put_if_generation(gcs_server, gcs_bucket, generation_proxy_gcs):
    creds = gcs_server.creds(generation_proxy_gcs.url)
    a = GCSProvider(f"gs://{gcs_bucket}/ds", creds=creds, retry=FAST)
    b = GCSProvider(f"gs://{gcs_bucket}/ds", creds=creds, retry=FAST)
    g1 = a.put_if_generation("dataset_meta.json", b'{"v": 1}', 0)  # 0: only if absent
    assert g1 > 0
    assert a.generation("dataset_meta.json") == g1
    with pytest.raises(vidlake.ConcurrentWriteError, match="changed since it was read"):
        b.put_if_generation("dataset_meta.json", b'{"v": "b"}', 0)
    data, gen = b.get_with_generation("dataset_meta.json")
    assert (data, gen) == (b'{"v": 1}', g1)
    # two writers read generation g1; the first to commit wins, the second fails cleanly
    g2 = a.put_if_generation("dataset_meta.json", b'{"v": 2, "by": "a"}', g1)
    assert g2 != g1
    with pytest.raises(vidlake.ConcurrentWriteError) as ei:
        b.put_if_generation("dataset_meta.json", b'{"v": 2, "by": "b"}', gen)
    assert f"gs://{gcs_bucket}/ds/dataset_meta.json" in str(ei.value)
    assert isinstance(ei.value, vidlake.StorageError)
    assert not isinstance(ei.value, vidlake.CredentialsError)
    assert a.get("dataset_meta.json") == b'{"v": 2, "by": "a"}'
    assert generation_proxy_gcs.refused == 2
    # a transient failure is retried like any write
    generation_proxy_gcs.fail(2, "503")
    g3 = b.put_if_generation("dataset_meta.json", b'{"v": 3}', g2)
    assert b.get_with_generation("dataset_meta.json") == (b'{"v": 3}', g3)


def test_conditional_writes_whose_answer_was_lost(gcs_server, gcs_bucket, generation_proxy_gcs):
    """The write lands, its answer is lost, the retry meets 412: it was ours, so it succeeded."""
    creds = gcs_server.creds(generation_proxy_gcs.url)
    p = GCSProvider(f"gs://{gcs_bucket}/ds", creds=creds, retry=FAST)
    g1 = p.put_if_generation("dataset_meta.json", b"v1", 0)
    generation_proxy_gcs.fail(1, "lose")
    g2 = p.put_if_generation("dataset_meta.json", b"v2", g1)
    assert generation_proxy_gcs.refused == 1  # the retry was refused ...
    assert p.get_with_generation("dataset_meta.json") == (b"v2", g2)  # ... and reported as the success it was
    # someone else's write after ours is still a conflict
    other = GCSProvider(f"gs://{gcs_bucket}/ds", creds=creds, retry=FAST)
    other.put_if_generation("dataset_meta.json", b"other", g2)
    generation_proxy_gcs.fail(1, "503")
    with pytest.raises(vidlake.ConcurrentWriteError):
        p.put_if_generation("dataset_meta.json", b"v3", g2)
    # a compose that landed but whose answer was lost is not applied twice
    blob = os.urandom(2 << 20)
    p.put("chunk", blob)
    generation_proxy_gcs.fail_matching("POST", "/compose", "lose", 1)
    p.append("chunk", b"tail", len(blob))
    assert p.get("chunk") == blob + b"tail"


def test_racing_writers_exactly_one_wins(gcs_server, gcs_bucket, generation_proxy_gcs):
    creds = gcs_server.creds(generation_proxy_gcs.url)
    base = GCSProvider(f"gs://{gcs_bucket}/ds", creds=creds)
    g0 = base.put_if_generation("dataset_meta.json", b"base", 0)
    writers = [GCSProvider(f"gs://{gcs_bucket}/ds", creds=creds) for _ in range(8)]

    def commit(i: int):
        try:
            return writers[i].put_if_generation("dataset_meta.json", f"writer {i}".encode(), g0)
        except vidlake.ConcurrentWriteError:
            return None

    with cf.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(commit, range(8)))
    winners = [i for i, g in enumerate(results) if g is not None]
    assert len(winners) == 1, results
    assert base.get_with_generation("dataset_meta.json") == (f"writer {winners[0]}".encode(), results[winners[0]])


# -- retries -----------------------------------------------------------------------------
def _via(proxy, gcs: GcsEmulator, bucket: str, **kw) -> GCSProvider:
    kw.setdefault("retry", FAST)
    return GCSProvider(f"gs://{bucket}/r", creds=gcs.creds(proxy.url), **kw)


def test_retry_503_then_success(gcs_server, gcs_bucket, fault_proxy_gcs):
    p = _via(fault_proxy_gcs, gcs_server, gcs_bucket)
    fault_proxy_gcs.fail(3, "503")
    p.put("k", b"value")
    assert fault_proxy_gcs.faults == 3
    assert fault_proxy_gcs.requests == 4
    fault_proxy_gcs.fail(3, "503")
    assert p.get_bytes("k", 1, 4) == b"alu"
    fault_proxy_gcs.fail(3, "503")
    assert p.get("k") == b"value"
    fault_proxy_gcs.fail(3, "503")
    assert p.size("k") == 5
    fault_proxy_gcs.fail(3, "503")
    assert p.list() == ["k"]
    fault_proxy_gcs.fail(3, "503")
    p.delete("k")
    assert p.list() == []


def test_retry_dropped_connections(gcs_server, gcs_bucket, fault_proxy_gcs):
    p = _via(fault_proxy_gcs, gcs_server, gcs_bucket)
    p.put("k", b"0123456789")
    fault_proxy_gcs.fail(2, "drop")
    assert p.get("k") == b"0123456789"
    fault_proxy_gcs.fail(2, "drop")
    p.put("k", b"abc")
    assert p.get("k") == b"abc"
    assert fault_proxy_gcs.faults == 4


def test_retry_stall_times_out_then_succeeds(gcs_server, gcs_bucket, fault_proxy_gcs):
    fault_proxy_gcs.stall_seconds = 10
    p = _via(fault_proxy_gcs, gcs_server, gcs_bucket, read_timeout=0.5, connect_timeout=2)
    p.put("k", b"stalled")
    fault_proxy_gcs.fail(1, "stall")
    t = time.monotonic()
    assert p.get_bytes("k", 0, 3) == b"sta"
    assert time.monotonic() - t < 5
    assert fault_proxy_gcs.faults == 1


def test_permanent_failure_is_a_clear_error_in_bounded_time(gcs_server, gcs_bucket, fault_proxy_gcs):
    policy = RetryPolicy(max_attempts=50, base_delay=0.05, max_delay=0.3, total_timeout=2.0)
    p = _via(fault_proxy_gcs, gcs_server, gcs_bucket, retry=policy)
    fault_proxy_gcs.fail_always("503")
    t = time.monotonic()
    with pytest.raises(vidlake.StorageError) as ei:
        p.get("videos/big.mp4")
    assert time.monotonic() - t < 5
    msg = str(ei.value)
    assert f"gs://{gcs_bucket}/r/videos/big.mp4" in msg
    assert "503" in msg
    assert "attempt" in msg
    assert not isinstance(ei.value, vidlake.CredentialsError)


def test_unreachable_endpoint(gcs_bucket):
    policy = RetryPolicy(max_attempts=3, base_delay=0.05, total_timeout=5)
    p = GCSProvider(f"gs://{gcs_bucket}/x", retry=policy, connect_timeout=1,
                    creds={"gcs_anon": True, "endpoint_url": f"http://{HOST}:{free_port()}"})
    t = time.monotonic()
    with pytest.raises(vidlake.StorageError, match=f"gs://{gcs_bucket}/x/k: GET failed after 3 attempts"):
        p.get("k")
    assert time.monotonic() - t < 10
