"""Read-only HTTP(S) storage: ``http://host/path`` and ``https://host/path`` roots.

    >>> from vidlake.storage import get_provider
    >>> p = get_provider("https://example.com/videos")
    >>> p.size("clip.mp4")                 # HEAD (or a one-byte Range probe)
    >>> p.get_bytes("clip.mp4", 0, 1024)   # GET with "Range: bytes=0-1023", 206 verified

Reads are ranged GETs over a pool of keep-alive connections (urllib3), several ranges in
parallel on a thread pool (in a forked child the provider makes its own connections, pool and
locks on first use: :mod:`vidlake.storage._forksafe`). Transient failures (connection errors, timeouts, HTTP 408, 429,
500, 502, 503, 504) are retried with backoff and jitter (:mod:`vidlake.storage.retry`); 404/410
raise ``KeyError``; 401/403 raise :class:`vidlake.CredentialsError` naming the URL; anything
else :class:`vidlake.StorageError`. Writes raise :class:`vidlake.ReadOnlyError`; ``list``
raises ``StorageError`` (HTTP has no listing).

A server that ignores ``Range`` (answers ``200`` with the whole object) still works: the
provider logs a warning once, then downloads each object whole, once, and serves ranges from
memory (one object of at most ``fallback_limit`` bytes, 256 MB by default, is kept); a bigger
object is streamed up to the end of each wanted range instead.

``creds`` may hold ``headers``: extra request headers such as ``Authorization``; their
values are treated as secrets (never logged or shown).
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import re
import socket
import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from urllib.parse import quote

from ..errors import CredentialsError, ReadOnlyError, StorageError
from . import _forksafe
from .creds import install_log_redaction, redact, validate_creds
from .provider import StorageProvider, check_key
from .ranged import parallel_ranges
from .retry import RetryExhausted, RetryPolicy, call_with_retry, default_policy, exhausted_error

if TYPE_CHECKING:
    import builtins
    from collections.abc import Sequence

__all__ = ["HTTPProvider", "open_provider"]

log = logging.getLogger("vidlake.storage.http")
T = TypeVar("T")

_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_SAFE = "/?&=%:@!$'()*+,;~-._"  # keep URLs that are already encoded (presigned URLs) intact


class _Transient(Exception):
    """An HTTP status worth retrying."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status


class _Status(Exception):
    """A final, non-retryable HTTP status."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status


def _is_transient(e: BaseException) -> bool:
    import urllib3.exceptions as u3

    if isinstance(e, _Transient):
        return True
    if isinstance(e, u3.SSLError):
        return False
    return isinstance(e, (u3.HTTPError, ConnectionError, TimeoutError, socket.timeout))


class HTTPProvider(StorageProvider):
    """Objects below an ``http(s)://`` URL, read with (ranged) GETs; always read-only.

    Args:
        root: ``http://host/dir`` or ``https://host/dir``; a key is appended as ``/<key>``.
        creds: optional ``{"headers": {...}}`` sent with every request.
        retry: a :class:`vidlake.storage.retry.RetryPolicy` (default: from ``VIDLAKE_RETRY_*``).
        max_workers: threads and pooled connections per host for parallel ranges.
        part_size: ranges longer than this are fetched as parallel parts.
        connect_timeout, read_timeout: seconds, per request.
        fallback_limit: largest object kept in memory when the server ignores Range.
    """

    schemes = ("http", "https")

    def __init__(
        self,
        root: str,
        creds: dict[str, Any] | None = None,
        read_only: bool = True,
        *,
        retry: RetryPolicy | None = None,
        max_workers: int = 16,
        part_size: int = 8 * 1024 * 1024,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        fallback_limit: int = 256 * 1024 * 1024,
    ) -> None:
        try:
            import urllib3  # noqa: F401 - here for the error; used by _new_manager
        except ModuleNotFoundError:
            raise StorageError("http(s):// storage needs urllib3 (pip install urllib3)") from None

        if not re.match(r"^https?://[^/]+", root, re.IGNORECASE):
            raise StorageError(f"{redact(root)!r} is not an http(s):// URL")
        super().__init__(root.rstrip("/"), True)
        creds = validate_creds(creds, where=f"creds for {redact(self.root)}")
        self._headers = {"Accept-Encoding": "identity", "User-Agent": "vidlake"}
        if creds and creds.get("headers"):
            hdrs = creds["headers"]
            if not isinstance(hdrs, dict):
                raise CredentialsError(f"creds['headers'] for {redact(self.root)} must be a dict")
            self._headers.update({str(k): str(v) for k, v in hdrs.items()})
        self.retry = retry or default_policy()
        self.max_workers = max(1, int(max_workers))
        self.part_size = max(64 * 1024, int(part_size))
        self.fallback_limit = int(fallback_limit)
        self._timeouts = (float(connect_timeout), float(read_timeout))
        self._manager: Any = self._new_manager()  # a urllib3.PoolManager; None until used in a child
        self._pool: cf.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        #: False once the server answered a ranged GET with the whole object.
        self.ranges_supported: bool | None = None
        self._whole: tuple[str, bytes] | None = None  # (key, bytes) when Range is ignored
        install_log_redaction()
        _forksafe.register(self)

    def _new_manager(self):
        import urllib3

        return urllib3.PoolManager(
            num_pools=8, maxsize=self.max_workers, block=False, retries=False,
            timeout=urllib3.Timeout(connect=self._timeouts[0], read=self._timeouts[1]),
        )

    @property
    def _http(self):
        """The pool of keep-alive connections (made anew on first use in a forked child)."""
        m = self._manager
        if m is None:
            with self._lock:
                if self._manager is None:
                    self._manager = self._new_manager()
                m = self._manager
        return m

    def _after_fork_in_child(self) -> None:
        # the parent's sockets, pool threads and (possibly held) locks stay the parent's
        self._lock = threading.Lock()
        self._pool = None
        self._manager = None

    # -- plumbing ----------------------------------------------------------------------
    def url(self, key: str = "") -> str:
        """The URL of ``key`` (of the root when empty)."""
        return f"{self.root}/{quote(check_key(key), safe=_SAFE)}" if key else self.root

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        where = redact(self.url(key))
        try:
            return call_with_retry(fn, policy=self.retry, is_transient=_is_transient, what=f"{op} {where}")
        except RetryExhausted as r:
            raise exhausted_error(r, op, where, lambda e: redact(f"{type(e).__name__}: {e}")) from None
        except _Status as e:
            if e.status in (404, 410):
                raise KeyError(key) from None
            if e.status in (401, 403):
                raise CredentialsError(f"{where}: access denied (HTTP {e.status}); check the credentials "
                                       f"(creds headers) used for {redact(self.root)}") from None
            raise StorageError(f"{where}: {op} failed: HTTP {e.status}") from None
        except (KeyError, StorageError):
            raise
        except Exception as e:  # noqa: BLE001
            raise StorageError(f"{where}: {op} failed: {redact(f'{type(e).__name__}: {e}')}") from None

    def _request(self, method: str, key: str, headers: dict[str, str] | None = None):
        h = dict(self._headers)
        if headers:
            h.update(headers)
        resp = self._http.request(method, self.url(key), headers=h, preload_content=False,
                                  decode_content=False, redirect=True)
        if resp.status >= 400:
            reason = resp.reason or ""
            resp.drain_conn()
            resp.release_conn()
            if resp.status in _TRANSIENT_STATUS:
                raise _Transient(resp.status, reason)
            raise _Status(resp.status, reason)
        return resp

    def _executor(self) -> cf.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(self.max_workers, thread_name_prefix="vidlake-http")
            return self._pool

    def close(self) -> None:
        """Stop the thread pool and close pooled connections."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            m, self._manager = self._manager, None
        if m is not None:
            m.clear()

    # -- reads -------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        def once() -> bytes:
            resp = self._request("GET", key)
            try:
                return resp.read()
            finally:
                resp.release_conn()

        return self._call("GET", key, once)

    def _ignored_range(self, key: str) -> None:
        with self._lock:
            first = self.ranges_supported is not False
            self.ranges_supported = False
        if first:
            log.warning("%s ignores HTTP Range requests (answered 200 instead of 206): vidlake falls back to "
                        "downloading whole objects (kept in memory up to %d MB), which reads more than needed",
                        redact(self.root), self.fallback_limit >> 20)

    def _whole_object(self, key: str) -> bytes | None:
        """The whole object, downloaded once and kept (Range-ignoring servers only)."""
        with self._lock:
            if self._whole is not None and self._whole[0] == key:
                return self._whole[1]
        try:
            n = self.size(key)
        except StorageError:
            n = -1
        if n < 0 or n > self.fallback_limit:
            return None
        data = self.get(key)
        with self._lock:
            self._whole = (key, data)
        return data

    def _get_range(self, key: str, start: int, end: int | None) -> bytes:
        if self.ranges_supported is False:
            whole = self._whole_object(key)
            if whole is not None:
                return whole[start:end]
        rng = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"

        def once() -> bytes:
            try:
                resp = self._request("GET", key, {"Range": rng})
            except _Status as e:
                if e.status == 416:  # the range starts at or after the end
                    return b""
                raise
            try:
                if resp.status == 206:
                    m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
                    if m is None or int(m.group(1)) != start:
                        raise StorageError(f"{redact(self.url(key))}: the server answered range {rng} with "
                                           f"Content-Range {resp.headers.get('Content-Range')!r}")
                    data = resp.read()
                    want = int(m.group(2)) - start + 1
                    if len(data) != want:
                        raise ConnectionError(f"short body: {len(data)} of {want} bytes")
                    return data
                # 200: the server ignored Range; read what we need and drop the connection
                self._ignored_range(key)
                if end is None:
                    data = resp.read()
                    return data[start:]
                data = resp.read(end)
                resp.close()
                return data[start:end]
            finally:
                resp.release_conn()

        data = self._call("GET", key, once)
        if self.ranges_supported is None:
            self.ranges_supported = True
        return data

    def get_bytes(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        start = int(start or 0)
        if start < 0 or (end is not None and end < 0):
            raise StorageError(f"{redact(self.url(key))}: negative byte range [{start}, {end})")
        if end is not None and end <= start:
            check_key(key)
            return b""
        if start == 0 and end is None:
            return self.get(key)
        return self._get_range(key, start, end)

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> builtins.list[bytes]:
        """Several ``[start, end)`` ranges of one object, fetched in parallel."""
        check_key(key)
        if self.ranges_supported is False:
            whole = self._whole_object(key)
            if whole is not None:
                return [whole[int(s):int(e)] for s, e in ranges]
            # too big to keep: stream each range's prefix, one at a time (slow, but bounded memory)
            return [self._get_range(key, int(s), int(e)) if e > s else b"" for s, e in ranges]
        return parallel_ranges(ranges, self.part_size, lambda s, e: self._get_range(key, s, e), self._executor)

    def size(self, key: str) -> int:
        def once() -> int:
            try:
                resp = self._request("HEAD", key)
                try:
                    n = resp.headers.get("Content-Length")
                finally:
                    resp.release_conn()
                if n is not None and resp.status == 200:
                    return int(n)
            except _Status as e:
                if e.status not in (400, 405, 501):
                    raise
            # no usable HEAD: probe one byte
            try:
                resp = self._request("GET", key, {"Range": "bytes=0-0"})
            except _Status as e:
                if e.status == 416:
                    return 0
                raise
            try:
                if resp.status == 206:
                    m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
                    if m and m.group(3) != "*":
                        resp.read()
                        return int(m.group(3))
                n = resp.headers.get("Content-Length")
                resp.close()
                if resp.status == 200 and n is not None:
                    return int(n)
            finally:
                resp.release_conn()
            raise StorageError(f"{redact(self.url(key))}: the server reports no size (no Content-Length)")

        return self._call("HEAD", key, once)

    def list(self, prefix: str = "") -> builtins.list[str]:
        raise StorageError(f"http storage cannot list ({redact(self.root)}): HTTP has no directory listing")

    # -- writes ------------------------------------------------------------------------
    def check_writable(self) -> None:
        raise ReadOnlyError(f"{redact(self.root)}: http(s) storage is read-only")

    def put(self, key: str, data: bytes) -> None:
        self.check_writable()

    def append(self, key: str, data: bytes, offset: int) -> None:
        self.check_writable()

    def delete(self, key: str) -> None:
        self.check_writable()

    def delete_many(self, keys) -> None:
        self.check_writable()

    def clear(self, prefix: str = "") -> None:
        self.check_writable()

    def __repr__(self) -> str:
        return f"HTTPProvider({redact(self.root)!r}, read-only)"


def open_provider(url: str, creds: dict[str, Any] | None = None, read_only: bool = False) -> HTTPProvider:
    """Open an ``http(s)://`` root (called by :func:`vidlake.storage.get_provider`); always read-only."""
    return HTTPProvider(url, creds=creds)
