"""Google Cloud Storage through google-cloud-storage: ``gcs://bucket/prefix`` and ``gs://bucket/prefix``.

    >>> from vidlake.storage import get_provider
    >>> p = get_provider("gs://my-bucket/datasets/ds1", creds={"gcs_service_account": "/keys/sa.json"})
    >>> p.put("dataset_meta.json", b"{}")          # one upload: atomic in GCS
    >>> p.get_bytes("videos/chunks/0", 100, 200)   # one ranged GET
    >>> p.get_ranges("videos/chunks/0", [(0, 10), (5_000_000, 6_000_000)])   # in parallel
    >>> gen = p.generation("dataset_meta.json")
    >>> p.put_if_generation("dataset_meta.json", b'{"v": 2}', gen)   # fails if another writer won

``creds`` (all optional) may hold:

* ``gcs_service_account``: the path of a service-account (or ``authorized_user``) JSON key
  file, or that JSON as a dict (its ``private_key`` is a secret: never shown or logged);
* ``gcs_anon``: ``True`` (or ``"true"``) for anonymous access (public buckets, emulators);
* ``gcs_project``: the project id (not needed for object access);
* ``endpoint_url``: another endpoint than ``https://storage.googleapis.com`` (an emulator).

Without ``gcs_service_account`` / ``gcs_anon`` the default chain of google-auth finds the
credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application-default credentials,
the metadata server on Google Cloud). ``STORAGE_EMULATOR_HOST`` is honoured as
google-cloud-storage honours it: when set (and no ``endpoint_url`` is given) requests go to
that host, anonymously unless explicit credentials are given.

Errors: a missing object raises ``KeyError``; refused or missing credentials raise
:class:`vidlake.CredentialsError` naming the URL; a failed generation precondition raises
:class:`vidlake.ConcurrentWriteError`; anything else, after the transient failures
(connection errors, timeouts, HTTP 408/429/500/502/503/504, a corrupted download) have
been retried with backoff and jitter (:mod:`vidlake.storage.retry`), raises
:class:`vidlake.StorageError` naming the URL. google-cloud-storage's own retries are off
(``retry=None`` on every call) so that vidlake's policy is the only one.

``append`` (growing a dataset's open chunk) composes on the server: the new bytes are
uploaded as a temporary object and GCS concatenates the kept object and it (``compose``),
so the committed bytes are neither downloaded nor uploaded again; see docs/REMOTE.md.

In a forked child (a loader worker) the provider makes its own client, pool and locks on
first use (:mod:`vidlake.storage._forksafe`).
"""
from __future__ import annotations

import base64
import builtins
import concurrent.futures as cf
import contextlib
import hashlib
import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ..errors import ConcurrentWriteError, CredentialsError, StorageError
from . import _forksafe
from .creds import LOG_PREFIXES, install_log_redaction, redact, register_secrets, validate_creds
from .provider import StorageProvider, check_key
from .ranged import parallel_ranges
from .retry import RetryExhausted, RetryPolicy, call_with_retry, default_policy, exhausted_error

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["GCSProvider", "open_provider"]

T = TypeVar("T")

DEFAULT_PART_SIZE = 8 * 1024 * 1024
DEFAULT_WORKERS = 16
#: ``append`` composes on the server when the kept prefix is at least this big (below it one
#: GET of the prefix and one upload cost fewer requests than upload + compose + delete).
COMPOSE_MIN_BYTES = 1024 * 1024
#: where ``append`` keeps the temporary part it composes (below the root, hidden from ``list``)
TMP_DIR = ".vidlake-tmp"
SCOPE_RW = "https://www.googleapis.com/auth/devstorage.read_write"
SCOPE_RO = "https://www.googleapis.com/auth/devstorage.read_only"
_KEY_TYPES = ("service_account", "authorized_user")
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_GCS_LOGGERS = (*LOG_PREFIXES, "requests")


def _status(e: BaseException) -> int:
    code = getattr(e, "code", None)
    if isinstance(code, int):
        return code
    resp = getattr(e, "response", None)
    return int(getattr(resp, "status_code", 0) or 0)


def classify(e: BaseException) -> str:
    """``"missing"``, ``"creds"``, ``"conflict"``, ``"range"``, ``"transient"`` or ``"fatal"``."""
    from google.api_core import exceptions as gex
    from google.auth import exceptions as aex
    from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

    if isinstance(e, (gex.GoogleAPICallError, InvalidResponse)):
        status = _status(e)
        if status == 404:
            return "missing"
        if status in (401, 403):
            return "creds"
        if status == 412:
            return "conflict"
        if status == 416:
            return "range"
        if status in _TRANSIENT_STATUS:
            return "transient"
        return "fatal"
    if isinstance(e, DataCorruption):  # checksum mismatch of a download: fetch it again
        return "transient"
    if isinstance(e, aex.TransportError):  # the token endpoint could not be reached
        return "transient"
    if isinstance(e, aex.RefreshError):
        return "transient" if getattr(e, "retryable", False) else "creds"
    if isinstance(e, aex.GoogleAuthError):
        return "creds"
    try:
        import requests.exceptions as rex

        if isinstance(e, rex.SSLError):
            return "fatal"
        if isinstance(e, (rex.ConnectionError, rex.Timeout, rex.ChunkedEncodingError)):
            return "transient"
    except ImportError:  # pragma: no cover - requests comes with google-auth's transport
        pass
    try:
        import urllib3.exceptions as u3

        if isinstance(e, u3.SSLError):
            return "fatal"
        if isinstance(e, u3.HTTPError):
            return "transient"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(e, (ConnectionError, TimeoutError, socket.timeout)):
        return "transient"
    return "fatal"


def _describe(e: BaseException) -> str:
    status = _status(e)
    msg = str(getattr(e, "message", "") or e)
    if len(msg) > 300:
        msg = msg[:300] + "..."
    text = f"{type(e).__name__} (HTTP {status}): {msg}" if status else f"{type(e).__name__}: {msg}"
    return redact(text)


def _parse_url(url: str) -> tuple[str, str, str]:
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("gcs", "gs"):
        raise StorageError(f"{url!r} is not a gcs:// or gs:// URL")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise StorageError(f"{url!r}: a GCS URL names a bucket: gs://bucket/prefix")
    return scheme, bucket, prefix.strip("/")


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


class GCSProvider(StorageProvider):
    """Objects under ``gs://bucket/prefix`` (or ``gcs://``), through one google-cloud-storage client.

    Args:
        root: ``gs://bucket``, ``gcs://bucket/some/prefix``, ...
        creds: see the module docstring; ``None`` = google-auth's default chain.
        read_only: writes raise :class:`vidlake.ReadOnlyError` (and the OAuth scope asked
            for is read-only).
        retry: a :class:`vidlake.storage.retry.RetryPolicy` (default: from ``VIDLAKE_RETRY_*``).
        max_workers: threads and pooled connections for parallel ranged GETs.
        part_size: ranges longer than this are fetched as parallel parts.
        connect_timeout, read_timeout: seconds, per HTTP request.
        list_page_size: keys per list request (at most 1000).
        compose_min_bytes: smallest kept prefix ``append`` composes on the server.
    """

    schemes = ("gcs", "gs")

    def __init__(
        self,
        root: str,
        creds: dict[str, Any] | None = None,
        read_only: bool = False,
        *,
        retry: RetryPolicy | None = None,
        max_workers: int = DEFAULT_WORKERS,
        part_size: int = DEFAULT_PART_SIZE,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        list_page_size: int = 1000,
        compose_min_bytes: int = COMPOSE_MIN_BYTES,
    ) -> None:
        scheme, bucket, prefix = _parse_url(root)
        super().__init__(f"{scheme}://{bucket}" + (f"/{prefix}" if prefix else ""), read_only)
        self.scheme = scheme
        self.bucket = bucket
        self.prefix = prefix
        self.retry = retry or default_policy()
        self.max_workers = max(1, int(max_workers))
        self.part_size = max(64 * 1024, int(part_size))
        self.list_page_size = max(1, min(1000, int(list_page_size)))
        self.compose_min_bytes = max(1, int(compose_min_bytes))
        self._timeout = (float(connect_timeout), float(read_timeout))
        creds = validate_creds(creds, where=f"creds for {self.root}")
        self._creds = creds
        self._client_obj: Any = self._make_client(creds)
        self._bucket_obj: Any = self._client_obj.bucket(bucket)
        self._pool: cf.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        _forksafe.register(self)

    @property
    def _client(self):
        """The google-cloud-storage client (made anew on first use in a forked child: its
        requests session and credentials are not fork-safe)."""
        c = self._client_obj
        if c is None:
            with self._pool_lock:
                if self._client_obj is None:
                    client = self._make_client(self._creds)
                    self._bucket_obj = client.bucket(self.bucket)
                    self._client_obj = client
                c = self._client_obj
        return c

    @property
    def _bucket(self):
        if self._client_obj is None:
            self._client  # noqa: B018 - makes the client and its bucket
        return self._bucket_obj

    def _after_fork_in_child(self) -> None:
        # the parent's client (its sockets and locks), pool threads and held locks stay the parent's
        self._pool_lock = threading.Lock()
        self._pool = None
        self._client_obj = None
        self._bucket_obj = None

    # -- client ------------------------------------------------------------------------
    def _credentials(self, creds: dict[str, Any], emulator: bool):
        """(google-auth credentials, project or None) from ``creds`` or the default chain."""
        import google.auth
        from google.auth import exceptions as aex
        from google.auth.credentials import AnonymousCredentials

        scopes = [SCOPE_RO if self.read_only else SCOPE_RW]
        project = creds.get("gcs_project") or None
        if _truthy(creds.get("gcs_anon")):
            return AnonymousCredentials(), project
        sa = creds.get("gcs_service_account")
        if sa is not None:
            if isinstance(sa, dict):
                info, where = dict(sa), "the gcs_service_account dict"
            elif isinstance(sa, (str, os.PathLike)):
                path = os.path.expanduser(os.fspath(sa))
                where = f"the key file {path}"
                try:
                    import json

                    with open(path, encoding="utf-8") as f:
                        info = json.load(f)
                except OSError as e:
                    raise CredentialsError(f"{self.root}: cannot read {where}: {e.strerror or e}") from None
                except ValueError:
                    raise CredentialsError(f"{self.root}: {where} is not JSON") from None
                if not isinstance(info, dict):
                    raise CredentialsError(f"{self.root}: {where} does not hold a JSON object")
            else:
                raise CredentialsError(f"{self.root}: gcs_service_account is a key file path or a dict, "
                                       f"got {type(sa).__name__}")
            register_secrets(info)
            kind = info.get("type")
            if kind not in _KEY_TYPES:
                raise CredentialsError(f"{self.root}: {where} is of type {kind!r}; accepted: {list(_KEY_TYPES)}")
            try:
                if kind == "service_account":
                    from google.oauth2 import service_account

                    cred = service_account.Credentials.from_service_account_info(info, scopes=scopes)
                else:
                    from google.oauth2 import credentials as user_credentials

                    cred = user_credentials.Credentials.from_authorized_user_info(info, scopes=scopes)
            except (aex.GoogleAuthError, ValueError, KeyError, TypeError) as e:
                # the message may quote the key: name the type of the problem only
                raise CredentialsError(f"{self.root}: {where} is not a usable {kind} key "
                                       f"({type(e).__name__})") from None
            return cred, project or info.get("project_id") or info.get("quota_project_id")
        if emulator:  # google-cloud-storage's rule: STORAGE_EMULATOR_HOST means no auth
            return AnonymousCredentials(), project
        try:
            cred, proj = google.auth.default(scopes=scopes)
        except aex.GoogleAuthError as e:
            raise CredentialsError(
                f"{self.root}: no Google credentials found ({_describe(e)}); give creds="
                "{'gcs_service_account': '/path/key.json'}, set GOOGLE_APPLICATION_CREDENTIALS, or use "
                "{'gcs_anon': True} for a public bucket") from None
        return cred, project or proj

    def _make_client(self, creds: dict[str, Any] | None):
        try:
            import requests.adapters
            from google.auth.transport.requests import AuthorizedSession
            from google.cloud import storage
        except ModuleNotFoundError:
            raise StorageError(f"{self.root}: gcs:// storage needs google-cloud-storage "
                               "(pip install 'vidlake[gcs]')") from None

        creds = dict(creds or {})
        endpoint = creds.get("endpoint_url") or None
        emulator = False
        if endpoint is None and os.environ.get("STORAGE_EMULATOR_HOST"):
            endpoint = os.environ["STORAGE_EMULATOR_HOST"]
            emulator = True
        if endpoint and "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        credentials, project = self._credentials(creds, emulator)
        session = AuthorizedSession(credentials)
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=self.max_workers,
                                                max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        try:
            client = storage.Client(project=project, credentials=credentials, _http=session,
                                    client_options={"api_endpoint": endpoint} if endpoint else None)
        except ValueError as e:  # e.g. a universe-domain mismatch
            raise StorageError(f"{self.root}: cannot create a GCS client: {redact(str(e))}") from None
        # google-cloud-storage >= 3.x looks bucket metadata up in background threads for its
        # tracing attributes: extra requests vidlake neither needs nor counts. Off.
        if getattr(client, "_bucket_metadata_cache", None) is not None:
            client._bucket_metadata_cache = None
        install_log_redaction(_GCS_LOGGERS)
        return client

    # -- plumbing ----------------------------------------------------------------------
    def url(self, key: str = "") -> str:
        """The ``gs://`` (or ``gcs://``) URL of ``key`` (of the root when empty)."""
        return f"{self.scheme}://{self.bucket}/{self._object_key(key)}" if key else self.root

    def _object_key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` with retries; translate google-cloud-storage's errors into vidlake's."""
        where = self.url(key) if key else self.root
        try:
            return call_with_retry(fn, policy=self.retry, is_transient=lambda e: classify(e) == "transient",
                                   what=f"{op} {where}")
        except RetryExhausted as r:
            raise exhausted_error(r, op, where, _describe) from None
        except (KeyError, StorageError):
            raise
        except Exception as e:  # noqa: BLE001 - every client error is translated here
            kind = classify(e)
            if kind == "missing":
                # an upload or a listing has no object to miss: its 404 is the bucket's
                if op in ("PUT", "LIST") or self._bucket_missing(e):
                    raise StorageError(f"{where}: {op} failed: bucket {self.bucket!r} does not exist") from None
                raise KeyError(key) from None
            if kind == "creds":
                raise CredentialsError(
                    f"{where}: access denied ({_describe(e)}); check the credentials (creds / creds key) "
                    f"used for {self.root}") from None
            if kind == "conflict":
                raise ConcurrentWriteError(
                    f"{where}: {op} refused: the object changed since it was read (generation "
                    f"precondition failed: another writer got there first)") from None
            raise StorageError(f"{where}: {op} failed: {_describe(e)}") from None

    @staticmethod
    def _bucket_missing(e: BaseException) -> bool:
        msg = str(getattr(e, "message", "") or e).lower()
        return "bucket" in msg and ("not found" in msg or "does not exist" in msg)

    def _executor(self) -> cf.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="vidlake-gcs")
            return self._pool

    def close(self) -> None:
        """Stop the thread pool and close pooled connections."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        with contextlib.suppress(Exception):
            if self._client_obj is not None:
                self._client_obj.close()

    # -- reads -------------------------------------------------------------------------
    def _download(self, okey: str, start: int | None, end: int | None, generation: int | None = None) -> bytes:
        blob = self._bucket.blob(okey, generation=generation)
        whole = start is None and end is None
        return blob.download_as_bytes(
            start=start, end=None if end is None else end - 1, raw_download=True,
            checksum="auto" if whole else None, retry=None, timeout=self._timeout)

    def get(self, key: str) -> bytes:
        okey = self._object_key(key)
        return self._call("GET", key, lambda: self._download(okey, None, None))

    def _get_range(self, key: str, okey: str, start: int, end: int | None) -> bytes:
        want = None if end is None else end - start

        def once() -> bytes:
            try:
                data = self._download(okey, start, end)
            except Exception as e:
                if classify(e) == "range":  # start at or past the end
                    return b""
                raise
            if want is not None and len(data) > want:
                raise StorageError(f"{self.url(key)}: asked for {want} bytes at {start}, got {len(data)}")
            return data

        return self._call("GET", key, once)

    def get_bytes(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        start = int(start or 0)
        if start < 0 or (end is not None and end < 0):
            raise StorageError(f"{self.url(key)}: negative byte range [{start}, {end})")
        if end is not None and end <= start:
            self._object_key(key)
            return b""
        if start == 0 and end is None:
            return self.get(key)
        return self._get_range(key, self._object_key(key), start, end)

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> builtins.list[bytes]:
        """Several ``[start, end)`` ranges of one object, fetched in parallel (one GET per part)."""
        okey = self._object_key(key)
        return parallel_ranges(
            ranges, self.part_size, lambda s, e: self._get_range(key, okey, s, e), self._executor,
        )

    def _meta(self, key: str):
        okey = self._object_key(key)

        def once():
            blob = self._bucket.blob(okey)
            blob.reload(projection="noAcl", retry=None, timeout=self._timeout)
            return blob

        return self._call("HEAD", key, once)

    def size(self, key: str) -> int:
        return int(self._meta(key).size)

    def generation(self, key: str) -> int:
        """The generation (version number) of object ``key``; ``KeyError`` when missing.

        Pass it to :meth:`put_if_generation` to replace the object only if nobody else did
        in between.
        """
        return int(self._meta(key).generation)

    def get_with_generation(self, key: str) -> tuple[bytes, int]:
        """``(bytes, generation)`` of object ``key``, the bytes being those of that generation."""
        okey = self._object_key(key)
        for _ in range(5):
            gen = self.generation(key)
            try:
                data: bytes = self._call("GET", key,
                                         lambda gen=gen: self._download(okey, None, None, gen))  # type: ignore[misc]
                return data, gen
            except KeyError:  # replaced between the two requests: read the new one
                continue
        raise StorageError(f"{self.url(key)}: the object keeps changing while it is read")

    def list(self, prefix: str = "") -> builtins.list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        full = base + prefix
        keys: builtins.list[str] = []
        token: str | None = None
        while True:
            def page(token=token):
                it = self._client.list_blobs(self._bucket, prefix=full or None, page_size=self.list_page_size,
                                             page_token=token, fields="items(name),nextPageToken",
                                             retry=None, timeout=self._timeout)
                pg = next(it.pages)
                return [b.name for b in pg], it.next_page_token

            names, token = self._call("LIST", "", page)
            for name in names:
                k = name[len(base):]
                if k and not k.endswith("/") and not k.startswith(f"{TMP_DIR}/"):
                    keys.append(k)
            if not token:
                break
        return sorted(keys)

    # -- writes ------------------------------------------------------------------------
    def _upload(self, okey: str, body: bytes, if_generation_match: int | None = None) -> int:
        blob = self._bucket.blob(okey)
        blob.upload_from_string(body, content_type="application/octet-stream",
                                if_generation_match=if_generation_match, retry=None, timeout=self._timeout)
        return int(blob.generation or 0)

    def put(self, key: str, data: bytes) -> None:
        self.check_writable()
        okey = self._object_key(key)
        body = bytes(data)
        self._call("PUT", key, lambda: self._upload(okey, body))

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """The object and its generation (the tag :meth:`put_if_tag` checks)."""
        data, gen = self.get_with_generation(key)
        return data, str(gen)

    def put_if_tag(self, key: str, data: bytes, tag: str) -> None:
        """Replace ``key`` only while its generation is still ``tag`` (the dataset commit)."""
        self.put_if_generation(key, data, int(tag))

    def put_if_generation(self, key: str, data: bytes, expected: int) -> int:
        """Replace ``key`` by ``data`` only if its generation is still ``expected``; the new generation.

        ``expected=0`` means "only if the object does not exist". GCS checks the precondition
        and writes in one step (``ifGenerationMatch``), so of several writers racing from the
        same generation exactly one succeeds; the others raise
        :class:`vidlake.ConcurrentWriteError` and the object holds the winner's bytes.

            >>> gen = p.generation("dataset_meta.json")
            >>> p.put_if_generation("dataset_meta.json", new_meta, gen)
        """
        self.check_writable()
        okey = self._object_key(key)
        body = bytes(data)
        expected = int(expected)
        attempts = [0]

        def once() -> int:
            attempts[0] += 1
            try:
                return self._upload(okey, body, if_generation_match=expected)
            except Exception as e:
                if classify(e) == "conflict" and attempts[0] > 1:
                    # an earlier attempt may have been written before its answer was lost:
                    # then the object holds exactly our bytes, and the write is ours
                    blob = self._bucket.blob(okey)
                    with contextlib.suppress(Exception):
                        blob.reload(projection="noAcl", retry=None, timeout=self._timeout)
                        if blob.md5_hash == _md5_b64(body):
                            return int(blob.generation)
                raise

        return self._call("PUT", key, once)

    def append(self, key: str, data: bytes | bytearray | memoryview, offset: int) -> None:
        """Replace ``key`` by its bytes ``[0, offset)`` followed by ``data``, atomically.

        GCS objects are immutable. When the object is exactly ``offset`` bytes long and at
        least ``compose_min_bytes`` (1 MiB), ``data`` is uploaded as a temporary object and
        GCS composes the object and it into a new generation of ``key`` (conditional on the
        generation read first): nothing is downloaded, only the new bytes are uploaded, and
        the temporary object is deleted. A longer object (a tail to drop) or a smaller prefix
        takes GET of the prefix + one upload. Until the new generation exists readers see
        the old one.
        """
        self.check_writable()
        if offset < self.compose_min_bytes:
            return super().append(key, bytes(data), offset)
        meta = self._meta(key)
        have, gen = int(meta.size), int(meta.generation)
        if have < offset:
            raise StorageError(f"{self.url(key)}: has {have} bytes, expected at least {offset}")
        body = bytes(data)
        okey = self._object_key(key)
        if have > offset:
            old = self.get_bytes(key, 0, offset)
            if len(old) != offset:
                raise StorageError(f"{self.url(key)}: has {len(old)} bytes, expected at least {offset}")
            self.put_if_generation(key, old + body, gen)
            return
        if not body:
            return
        tmp_key = f"{TMP_DIR}/{uuid.uuid4().hex}"
        tmp = self._object_key(tmp_key)
        self._call("PUT", key, lambda: self._upload(tmp, body))
        attempts = [0]

        def compose() -> None:
            attempts[0] += 1
            dest = self._bucket.blob(okey)
            try:
                dest.compose([self._bucket.blob(okey), self._bucket.blob(tmp)], if_generation_match=gen,
                             retry=None, timeout=self._timeout)
            except Exception as e:
                if classify(e) == "conflict" and attempts[0] > 1 and self._tail_is(key, offset, body):
                    return  # an earlier attempt composed before its answer was lost
                raise

        try:
            self._call("COMPOSE", key, compose)
        finally:
            with contextlib.suppress(Exception):  # best effort: a leftover is hidden from list()
                self._bucket.blob(tmp).delete(retry=None, timeout=self._timeout)

    def _tail_is(self, key: str, offset: int, body: bytes) -> bool:
        try:
            return self.size(key) == offset + len(body) and self.get_bytes(key, offset, offset + len(body)) == body
        except Exception:  # noqa: BLE001 - this is a check: any failure means "no"
            return False

    def delete(self, key: str) -> None:
        self.check_writable()
        okey = self._object_key(key)

        def once() -> None:
            try:
                self._bucket.blob(okey).delete(retry=None, timeout=self._timeout)
            except Exception as e:
                if classify(e) != "missing":
                    raise

        self._call("DELETE", key, once)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove several objects (in parallel on the thread pool)."""
        self.check_writable()
        keys = builtins.list(keys)
        if len(keys) <= 1:
            for k in keys:
                self.delete(k)
            return
        futures = [self._executor().submit(self.delete, k) for k in keys]
        for f in futures:
            f.result()


def open_provider(url: str, creds: dict[str, Any] | None = None, read_only: bool = False) -> GCSProvider:
    """Open ``gcs://bucket/prefix`` or ``gs://bucket/prefix`` (called by :func:`vidlake.storage.get_provider`)."""
    return GCSProvider(url, creds=creds, read_only=read_only)
