"""A size-bounded on-disk cache of byte ranges of remote objects (``VIDLAKE_CACHE_DIR``).

    >>> from vidlake.storage import RangeCache
    >>> cache = RangeCache("~/.cache/vidlake/ranges", max_bytes=2 << 30)
    >>> r = vidlake.open_remote_video("s3://bucket/clip.mp4", cache=cache)
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import uuid
from typing import TYPE_CHECKING

from . import _forksafe

if TYPE_CHECKING:
    import builtins

__all__ = ["DEFAULT_CACHE_BYTES", "RangeCache", "cache_from_env"]

log = logging.getLogger("vidlake.remote")

DEFAULT_CACHE_BYTES = 1 << 30


class RangeCache:
    """A size-bounded on-disk cache of fetched byte ranges of remote objects.

    Each cached range is one file ``<dir>/<sha256(object id)[:32]>/<start>-<end>`` (written to a
    temporary name, then renamed: safe with several processes). A read is served from the cache
    when one cached range contains it. When the cache grows past ``max_bytes`` the least
    recently used ranges are deleted. Objects are identified by URL and size: the cache
    assumes a remote object is not rewritten in place with the same size (true of video
    files in datasets); call :meth:`clear` otherwise. Only object bytes are stored, never
    credentials. A forked child shares the directory and gets a new lock.

        >>> cache = RangeCache("~/.cache/vidlake/ranges", max_bytes=2 << 30)
        >>> r = open_remote_video("s3://bucket/clip.mp4", cache=cache)
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._objects: dict[str, builtins.list[tuple[int, int]]] = {}
        self._total: int | None = None
        self.hits = 0
        self.misses = 0
        _forksafe.register(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # a parent thread may have held it at the fork

    @staticmethod
    def _hash(ident: str) -> str:
        return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def _scan_total(self) -> int:
        total = 0
        if os.path.isdir(self.directory):
            for dirpath, _dirs, files in os.walk(self.directory):
                for f in files:
                    with contextlib.suppress(OSError):
                        total += os.path.getsize(os.path.join(dirpath, f))
        return total

    def _ranges(self, h: str) -> builtins.list[tuple[int, int]]:
        rs = self._objects.get(h)
        if rs is None:
            rs = []
            d = os.path.join(self.directory, h)
            try:
                names = os.listdir(d)
            except OSError:
                names = []
            for n in names:
                a, sep, b = n.partition("-")
                if sep and a.isdigit() and b.isdigit():
                    rs.append((int(a), int(b)))
            self._objects[h] = rs
        return rs

    def get(self, ident: str, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` of object ``ident`` when a cached range holds them, else None."""
        h = self._hash(ident)
        with self._lock:
            cands = [r for r in self._ranges(h) if r[0] <= start and r[1] >= end]
        for cs, ce in sorted(cands, key=lambda r: r[1] - r[0]):
            path = os.path.join(self.directory, h, f"{cs}-{ce}")
            try:
                with open(path, "rb") as f:
                    f.seek(start - cs)
                    data = f.read(end - start)
                os.utime(path)  # LRU clock
            except OSError:
                with self._lock:
                    rs = self._ranges(h)
                    if (cs, ce) in rs:
                        rs.remove((cs, ce))
                continue
            if len(data) == end - start:
                self.hits += 1
                return data
        self.misses += 1
        return None

    def put(self, ident: str, start: int, data: bytes) -> None:
        """Keep ``data`` as bytes ``[start, start+len(data))`` of object ``ident``."""
        n = len(data)
        if n == 0 or n > self.max_bytes // 2:
            return
        h = self._hash(ident)
        d = os.path.join(self.directory, h)
        path = os.path.join(d, f"{start}-{start + n}")
        tmp = os.path.join(self.directory, f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.makedirs(d, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("range cache %s: cannot store a range (%s); continuing without it", self.directory,
                        e.strerror or e)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        with self._lock:
            rs = self._ranges(h)
            if (start, start + n) not in rs:
                rs.append((start, start + n))
                if self._total is None:
                    self._total = self._scan_total()
                else:
                    self._total += n
            over = self._total is not None and self._total > self.max_bytes
        if over:
            self._evict()

    def _evict(self) -> None:
        with self._lock:
            entries = []
            for dirpath, _dirs, files in os.walk(self.directory):
                for f in files:
                    p = os.path.join(dirpath, f)
                    try:
                        st = os.stat(p)
                    except OSError:
                        continue
                    entries.append((st.st_mtime, st.st_size, p))
            total = sum(e[1] for e in entries)
            entries.sort()
            target = int(self.max_bytes * 0.9)
            for _mt, size, p in entries:
                if total <= target:
                    break
                try:
                    os.unlink(p)
                    total -= size
                except OSError:
                    continue
            self._total = total
            self._objects.clear()

    @property
    def total_bytes(self) -> int:
        """Bytes currently stored (scans the directory)."""
        with self._lock:
            self._total = self._scan_total()
            return self._total

    def clear(self) -> None:
        """Delete every cached range."""
        import shutil

        with self._lock:
            shutil.rmtree(self.directory, ignore_errors=True)
            self._objects.clear()
            self._total = 0


def cache_from_env() -> RangeCache | None:
    d = os.environ.get("VIDLAKE_CACHE_DIR")
    if not d:
        return None
    return RangeCache(d, int(os.environ.get("VIDLAKE_CACHE_MAX_BYTES", DEFAULT_CACHE_BYTES)))
