"""S3 (and S3-compatible) storage through boto3: ``s3://bucket/prefix``.

    >>> from vidlake.storage import get_provider
    >>> p = get_provider("s3://my-bucket/datasets/ds1", creds={"aws_region": "eu-west-1"})
    >>> p.put("dataset_meta.json", b"{}")          # one PUT: atomic in S3
    >>> p.get_bytes("videos/chunks/0", 100, 200)   # one ranged GET
    >>> p.get_ranges("videos/chunks/0", [(0, 10), (5_000_000, 6_000_000)])   # in parallel

``creds`` may hold ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``,
``endpoint_url``, ``aws_region`` and ``profile_name``; without creds (or with only
``endpoint_url`` / ``aws_region``) boto3's default chain finds the credentials (environment,
``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``~/.aws/*``, instance roles).

Errors: a missing object raises ``KeyError``; refused credentials (access denied, unknown key
id, bad signature, expired token) raise :class:`vidlake.CredentialsError` naming the URL;
anything else, after the transient failures (connection errors, timeouts, HTTP 500/502/503/
504, ``SlowDown`` and other throttling) have been retried with backoff and jitter
(:mod:`vidlake.storage.retry`), raises :class:`vidlake.StorageError` naming the URL. botocore's own
retries are switched off so that vidlake's policy is the only one.

``append`` (growing a dataset's open chunk) copies a kept prefix of 5 MiB or more on the server
(multipart upload with ``UploadPartCopy``) and uploads only the new bytes; see docs/REMOTE.md.

Ranged reads of several ranges (``get_ranges``) run on a thread pool over pooled connections
(botocore ``max_pool_connections``); ranges larger than ``part_size`` are split into parts
fetched in parallel. In a forked child (a loader worker) the provider makes its own boto3
client, pool and locks on first use (:mod:`vidlake.storage._forksafe`).
"""
from __future__ import annotations

import builtins
import concurrent.futures as cf
import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ..errors import ConcurrentWriteError, CredentialsError, StorageError
from . import _forksafe
from .creds import install_log_redaction, redact, validate_creds
from .provider import StorageProvider, check_key
from .ranged import parallel_ranges
from .retry import RetryExhausted, RetryPolicy, call_with_retry, default_policy, exhausted_error

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["S3Provider", "open_provider"]

T = TypeVar("T")

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CREDS_CODES = frozenset({
    "AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "InvalidClientTokenId", "UnrecognizedClientException",
    "AuthFailure", "RequestExpired", "403", "401", "Forbidden",
})
_TRANSIENT_CODES = frozenset({
    "InternalError", "InternalFailure", "ServiceUnavailable", "SlowDown", "Throttling", "ThrottlingException",
    "ThrottledException", "RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "EC2ThrottledException",
    "500", "502", "503", "504",
})
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

DEFAULT_PART_SIZE = 8 * 1024 * 1024
COPY_MIN_BYTES = 5 * 1024 * 1024  # S3's smallest multipart part (but the last): server-side append above it
DEFAULT_WORKERS = 16


def _client_error_info(e: Exception) -> tuple[str, int]:
    resp = getattr(e, "response", None) or {}
    code = str((resp.get("Error") or {}).get("Code", ""))
    status = int((resp.get("ResponseMetadata") or {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def classify(e: BaseException) -> str:
    """``"missing"``, ``"creds"``, ``"transient"`` or ``"fatal"`` for an exception from boto3."""
    from botocore import exceptions as bex

    if isinstance(e, bex.ClientError):
        code, status = _client_error_info(e)
        if code in _MISSING_CODES:
            return "missing"
        if code in _CREDS_CODES or status in (401, 403):
            return "creds"
        if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS:
            return "transient"
        return "fatal"
    if isinstance(e, (bex.NoCredentialsError, bex.PartialCredentialsError, bex.CredentialRetrievalError,
                      bex.ProfileNotFound, bex.UnknownCredentialError)):
        return "creds"
    if isinstance(e, bex.SSLError):
        return "fatal"
    if isinstance(e, (bex.HTTPClientError, bex.ConnectionError, bex.IncompleteReadError)):
        return "transient"
    try:
        import urllib3.exceptions as u3

        if isinstance(e, u3.HTTPError):
            return "transient"
    except ImportError:  # pragma: no cover - urllib3 comes with botocore
        pass
    if isinstance(e, (ConnectionError, TimeoutError, socket.timeout)):
        return "transient"
    return "fatal"


def _describe(e: BaseException) -> str:
    from botocore import exceptions as bex

    if isinstance(e, bex.ClientError):
        code, status = _client_error_info(e)
        msg = str((e.response.get("Error") or {}).get("Message", "") or "")
        text = f"{code or 'error'} (HTTP {status})" if status else (code or "error")
        return redact(f"{text}: {msg}" if msg else text)
    return redact(f"{type(e).__name__}: {e}")


def _parse_url(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):] if url.lower().startswith("s3://") else url
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise StorageError(f"{url!r}: an S3 URL names a bucket: s3://bucket/prefix")
    return bucket, prefix.strip("/")


class S3Provider(StorageProvider):
    """Objects under ``s3://bucket/prefix``, through one boto3 client.

    Args:
        root: ``s3://bucket`` or ``s3://bucket/some/prefix``.
        creds: see the module docstring; ``None`` = boto3's default chain.
        read_only: writes raise :class:`vidlake.ReadOnlyError`.
        retry: a :class:`vidlake.storage.retry.RetryPolicy` (default: from ``VIDLAKE_RETRY_*``).
        max_workers: threads and pooled connections for parallel ranged GETs.
        part_size: ranges longer than this are fetched as parallel parts.
        connect_timeout, read_timeout: seconds, per HTTP request.
        list_page_size: keys per LIST request (at most 1000).
    """

    schemes = ("s3",)

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
    ) -> None:
        bucket, prefix = _parse_url(root)
        super().__init__(f"s3://{bucket}" + (f"/{prefix}" if prefix else ""), read_only)
        self.bucket = bucket
        self.prefix = prefix
        self.retry = retry or default_policy()
        self.max_workers = max(1, int(max_workers))
        self.part_size = max(64 * 1024, int(part_size))
        self.list_page_size = max(1, min(1000, int(list_page_size)))
        creds = validate_creds(creds, where=f"creds for {self.root}")
        self._client_args = (creds, connect_timeout, read_timeout)
        self._client_obj: Any = self._make_client(creds, connect_timeout, read_timeout)
        self._pool: cf.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        _forksafe.register(self)

    @property
    def _client(self):
        """The boto3 client (made anew on first use in a forked child: boto3 is not fork-safe)."""
        c = self._client_obj
        if c is None:
            with self._pool_lock:
                if self._client_obj is None:
                    self._client_obj = self._make_client(*self._client_args)
                c = self._client_obj
        return c

    def _after_fork_in_child(self) -> None:
        # the parent's client (its sockets and locks), pool threads and held locks stay the parent's
        self._pool_lock = threading.Lock()
        self._pool = None
        self._client_obj = None

    def _make_client(self, creds: dict[str, Any] | None, connect_timeout: float, read_timeout: float):
        try:
            import boto3
            from botocore import exceptions as bex
            from botocore.config import Config
        except ModuleNotFoundError:
            raise StorageError(f"{self.root}: s3:// storage needs boto3 (pip install boto3)") from None

        creds = dict(creds or {})
        endpoint_url = creds.pop("endpoint_url", None)
        region = creds.pop("aws_region", None)
        creds.pop("headers", None)
        s3_opts = {"addressing_style": "path"} if endpoint_url else None
        config = Config(
            max_pool_connections=self.max_workers,
            retries={"total_max_attempts": 1, "mode": "standard"},  # vidlake retries, not botocore
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            s3=s3_opts,
        )
        try:
            session = boto3.session.Session(
                aws_access_key_id=creds.get("aws_access_key_id"),
                aws_secret_access_key=creds.get("aws_secret_access_key"),
                aws_session_token=creds.get("aws_session_token"),
                region_name=region,
                profile_name=creds.get("profile_name"),
            )
            client = session.client("s3", endpoint_url=endpoint_url, config=config)
        except (bex.ProfileNotFound, bex.PartialCredentialsError, bex.NoCredentialsError) as e:
            raise CredentialsError(f"{self.root}: {_describe(e)}") from None
        except ValueError as e:  # e.g. a malformed endpoint_url
            raise StorageError(f"{self.root}: cannot create an S3 client: {redact(str(e))}") from None
        install_log_redaction()
        return client

    # -- plumbing ----------------------------------------------------------------------
    def url(self, key: str = "") -> str:
        """The ``s3://`` URL of ``key`` (of the root when empty)."""
        return f"s3://{self.bucket}/{self._object_key(key)}" if key else self.root

    def _object_key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` with retries; translate boto3's errors into vidlake's."""
        where = self.url(key) if key else self.root
        try:
            return call_with_retry(fn, policy=self.retry, is_transient=lambda e: classify(e) == "transient",
                                   what=f"{op} {where}")
        except RetryExhausted as r:
            raise exhausted_error(r, op, where, _describe) from None
        except Exception as e:
            kind = classify(e)
            if kind == "missing":
                raise KeyError(key) from None
            if kind == "creds":
                raise CredentialsError(
                    f"{where}: access denied ({_describe(e)}); check the credentials (creds / creds key) "
                    f"used for {self.root}") from None
            if isinstance(e, (KeyError, StorageError, ConcurrentWriteError)):
                raise
            code, _ = _client_error_info(e)
            if code == "NoSuchBucket":
                raise StorageError(f"{where}: {op} failed: bucket {self.bucket!r} does not exist") from None
            raise StorageError(f"{where}: {op} failed: {_describe(e)}") from None

    def _executor(self) -> cf.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="vidlake-s3")
            return self._pool

    def close(self) -> None:
        """Stop the thread pool and close pooled connections."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        close = getattr(self._client_obj, "close", None)
        if close is not None:
            close()

    # -- reads -------------------------------------------------------------------------
    def _get_object(self, okey: str, range_header: str | None) -> bytes:
        return self._get_object_tagged(okey, range_header)[0]

    def _get_object_tagged(self, okey: str, range_header: str | None) -> tuple[bytes, str]:
        """(bytes, ETag) of one GET; a body shorter than its Content-Length is a transient error."""
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": okey}
        if range_header:
            kw["Range"] = range_header
        resp = self._client.get_object(**kw)
        body = resp["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        n = resp.get("ContentLength")
        if n is not None and len(data) != int(n):
            raise ConnectionError(f"short body: {len(data)} of {n} bytes")
        return data, str(resp.get("ETag", ""))

    def get(self, key: str) -> bytes:
        okey = self._object_key(key)
        return self._call("GET", key, lambda: self._get_object(okey, None))

    def _get_range(self, key: str, okey: str, start: int, end: int | None) -> bytes:
        rng = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"

        def once() -> bytes:
            from botocore import exceptions as bex

            try:
                return self._get_object(okey, rng)
            except bex.ClientError as e:
                code, status = _client_error_info(e)
                if code == "InvalidRange" or status == 416:  # start at or past the end
                    return b""
                raise

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

    def size(self, key: str) -> int:
        okey = self._object_key(key)
        resp = self._call("HEAD", key, lambda: self._client.head_object(Bucket=self.bucket, Key=okey))
        return int(resp["ContentLength"])

    def list(self, prefix: str = "") -> builtins.list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        full = base + prefix
        keys: builtins.list[str] = []
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full, "MaxKeys": self.list_page_size}
            if token:
                kw["ContinuationToken"] = token
            page: dict[str, Any] = self._call("LIST", "", lambda kw=kw: self._client.list_objects_v2(**kw))  # type: ignore[misc]
            for obj in page.get("Contents", []) or []:
                k = obj["Key"][len(base):]
                if k and not k.endswith("/"):
                    keys.append(k)
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
            if not token:
                break
        return sorted(keys)

    # -- writes ------------------------------------------------------------------------
    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """The object and its ETag (for :meth:`put_if_tag`)."""
        okey = self._object_key(key)
        return self._call("GET", key, lambda: self._get_object_tagged(okey, None))

    def put_if_tag(self, key: str, data: bytes, tag: str) -> None:
        """Replace ``key`` only while its ETag is still ``tag``: a conditional PUT (``If-Match``),
        so a racing writer's commit fails with :class:`vidlake.ConcurrentWriteError` instead of
        overwriting another's."""
        from botocore import exceptions as bex

        self.check_writable()
        okey = self._object_key(key)
        body = bytes(data)

        def once() -> None:
            try:
                self._client.put_object(Bucket=self.bucket, Key=okey, Body=body, IfMatch=tag)
            except bex.ClientError as e:
                code, status = _client_error_info(e)
                if status == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise ConcurrentWriteError(f"{self.url(key)} was replaced by another writer") from None
                raise

        self._call("PUT", key, once)

    def put(self, key: str, data: bytes) -> None:
        self.check_writable()
        okey = self._object_key(key)
        body = bytes(data)
        self._call("PUT", key, lambda: self._client.put_object(Bucket=self.bucket, Key=okey, Body=body))

    def append(self, key: str, data: bytes | bytearray | memoryview, offset: int) -> None:
        """Replace ``key`` by its bytes ``[0, offset)`` followed by ``data``, atomically.

        S3 cannot append. When the kept prefix is at least 5 MiB (S3's smallest part), S3
        copies it on the server: a multipart upload whose first part is an ``UploadPartCopy``
        of the prefix and whose second is ``data``, so nothing is downloaded and only the new
        bytes are uploaded. Until the upload completes the old object stays as it was; a
        failure aborts the upload. Smaller prefixes take the default GET + PUT.
        """
        self.check_writable()
        if offset < COPY_MIN_BYTES:
            return super().append(key, bytes(data), offset)
        have = self.size(key)
        if have < offset:
            raise StorageError(f"{self.url(key)}: has {have} bytes, expected at least {offset}")
        okey = self._object_key(key)
        body = bytes(data)
        c = self._client
        upload = self._call("PUT", key, lambda: c.create_multipart_upload(Bucket=self.bucket, Key=okey))["UploadId"]
        try:
            copied = self._call("PUT", key, lambda: c.upload_part_copy(
                Bucket=self.bucket, Key=okey, UploadId=upload, PartNumber=1,
                CopySource={"Bucket": self.bucket, "Key": okey}, CopySourceRange=f"bytes=0-{offset - 1}"))
            parts = [{"PartNumber": 1, "ETag": copied["CopyPartResult"]["ETag"]}]
            if body:
                sent = self._call("PUT", key, lambda: c.upload_part(
                    Bucket=self.bucket, Key=okey, UploadId=upload, PartNumber=2, Body=body))
                parts.append({"PartNumber": 2, "ETag": sent["ETag"]})
            self._call("PUT", key, lambda: c.complete_multipart_upload(
                Bucket=self.bucket, Key=okey, UploadId=upload, MultipartUpload={"Parts": parts}))
        except BaseException:
            with contextlib.suppress(Exception):  # best effort: S3 lifecycle rules clean up the rest
                c.abort_multipart_upload(Bucket=self.bucket, Key=okey, UploadId=upload)
            raise

    def delete(self, key: str) -> None:
        self.check_writable()
        okey = self._object_key(key)
        self._call("DELETE", key, lambda: self._client.delete_object(Bucket=self.bucket, Key=okey))

    def delete_many(self, keys: Iterable[str]) -> None:
        self.check_writable()
        keys = builtins.list(keys)
        for i in range(0, len(keys), 1000):
            batch = keys[i:i + 1000]
            objs = [{"Key": self._object_key(k)} for k in batch]
            resp: dict[str, Any] = self._call(
                "DELETE", "",
                lambda objs=objs: self._client.delete_objects(Bucket=self.bucket,  # type: ignore[misc]
                                                              Delete={"Objects": objs, "Quiet": True}))
            errors = resp.get("Errors") or []
            if errors:
                first = errors[0]
                code = str(first.get("Code", ""))
                text = (f"{self.root}: deleting {len(errors)} object(s) failed, first "
                        f"s3://{self.bucket}/{first.get('Key')}: {code} {redact(str(first.get('Message', '')))}")
                if code in _CREDS_CODES:
                    raise CredentialsError(text)
                raise StorageError(text)


def open_provider(url: str, creds: dict[str, Any] | None = None, read_only: bool = False) -> S3Provider:
    """Open ``s3://bucket/prefix`` (called by :func:`vidlake.storage.get_provider`)."""
    return S3Provider(url, creds=creds, read_only=read_only)

