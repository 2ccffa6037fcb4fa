"""Fetching the files of an ingestion: bounded concurrency, retries, one provider per place.

    >>> f = Fetcher(workers=8, creds={"aws_access_key_id": ..., "aws_secret_access_key": ...})
    >>> futs = [f.submit(url) for url in urls]       # at most 8 downloads at a time
    >>> data = futs[0].result()                      # bytes (retried on transient errors)

Local paths are read directly; ``s3://``, ``gs://``, ``http(s)://`` go through the storage
provider of their scheme (which retries single requests itself); a whole-file fetch that still
fails with a transient error is tried again, up to ``retries`` more times.
"""
from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import ReadOnlyError, SampleAppendError, StorageError
from ..storage import StorageProvider, _forksafe, get_provider, split_url, url_scheme
from ..storage.retry import RetryExhausted, RetryPolicy, call_with_retry

__all__ = ["Fetcher", "file_digest", "is_remote"]

_HASH_PIECE = 4 << 20


def is_remote(location: str) -> bool:
    """True for URLs other than local paths and ``file://``."""
    return url_scheme(location) not in ("", "file")


def file_digest(path: str) -> str:
    """blake2b-256 of a local file, read in pieces (no whole-file buffer)."""
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while True:
            b = f.read(_HASH_PIECE)
            if not b:
                return h.hexdigest()
            h.update(b)


def _transient(e: BaseException) -> bool:
    if isinstance(e, (KeyError, FileNotFoundError, PermissionError, IsADirectoryError, ReadOnlyError)):
        return False
    return isinstance(e, (StorageError, ConnectionError, TimeoutError, OSError))


class Fetcher:
    """A pool of ``workers`` threads fetching whole files (see the module docstring)."""

    def __init__(self, workers: int = 8, retries: int = 2, creds: dict[str, Any] | None = None,
                 retry_delay: float = 0.2) -> None:
        self.workers = max(1, int(workers))
        self.creds = creds
        self.policy = RetryPolicy(max_attempts=1 + max(0, int(retries)), base_delay=retry_delay,
                                  max_delay=2.0, total_timeout=120.0)
        self._pool: ThreadPoolExecutor | None = None  # made on first use (and again after a fork)
        self._providers: dict[str, StorageProvider] = {}
        self._lock = threading.Lock()
        self._closed = False
        _forksafe.register(self)

    def _after_fork_in_child(self) -> None:
        # the parent's pool has no threads here but counts them as idle, so it would never run
        # what the child submits; the providers are the parent's (each resets itself, but a
        # child's fetcher starts clean)
        self._pool = None
        self._providers = {}
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("this Fetcher is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vidlake-fetch")
            return self._pool

    def _provider(self, parent: str) -> StorageProvider:
        with self._lock:
            p = self._providers.get(parent)
            if p is None:
                p = self._providers[parent] = get_provider(parent, creds=self.creds, read_only=True)
            return p

    def fetch(self, location: str) -> bytes:
        """The bytes of ``location`` (``SampleAppendError`` naming it and the cause on failure)."""
        def once() -> bytes:
            if not is_remote(location):
                with open(location.removeprefix("file://"), "rb") as f:
                    return f.read()
            parent, name = split_url(location)
            return self._provider(parent).get(name)

        try:
            return call_with_retry(once, policy=self.policy, is_transient=_transient, what=f"fetch {location}")
        except RetryExhausted as e:
            cause = e.__cause__ or e
            raise SampleAppendError(f"cannot fetch {location}: {cause} (tried {e.attempts} times)") from None
        except KeyError:
            raise SampleAppendError(f"cannot fetch {location}: no such object") from None
        except OSError as e:
            raise SampleAppendError(f"cannot fetch {location}: {e.strerror or e}") from None
        except StorageError as e:
            raise SampleAppendError(f"cannot fetch {location}: {e}") from None

    def submit(self, location: str) -> Future[bytes]:
        return self._executor().submit(self.fetch, location)

    def submit_call(self, fn: Any, *args: Any) -> Future[Any]:
        return self._executor().submit(fn, *args)

    def close(self) -> None:
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def local_path(location: str) -> str | None:
    """The local path of a location (``file://`` stripped), or None for a URL."""
    return None if is_remote(location) else location.removeprefix("file://")


def ensure_exists(location: str) -> None:
    p = local_path(location)
    if p is not None and not os.path.isfile(p):
        raise SampleAppendError(f"cannot read {location}: no such file")
