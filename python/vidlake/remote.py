"""Reading remote videos by byte ranges: only the bytes a read needs cross the network.

:class:`RemoteRangeSource` turns one object of any storage provider (S3, HTTP(S), ...) into
the *range source* the core reads through (``size``, ``name``, ``fetch(ranges)``; see
docs/DESIGN.md). The core calls ``fetch`` once per read window with every byte range of the
read plan (the packets from the keyframe to the last wanted frame); the ranges are fetched
with parallel ranged GETs over the provider's connection pool. An optional
:class:`RangeCache` keeps fetched ranges on local disk, bounded in size.

    >>> import vidlake
    >>> from vidlake.remote import open_remote_video, RemoteRangeSource, RangeCache
    >>> r = open_remote_video("s3://bucket/videos/clip.mp4", creds={"aws_region": "eu-west-1"})
    >>> frame = r[1234]                                  # fetches one GOP, not the file
    >>> # with a packet index stored earlier (no demux at all):
    >>> src = RemoteRangeSource(get_provider("s3://bucket/videos"), "clip.mp4", size=idx.source_size)
    >>> r = vidlake.VideoReader(src, index=idx)

Building a packet index demuxes the whole file once (the core reads it in ~256 KB single-range
calls); :func:`open_remote_video` turns on read-ahead for that pass (sequential reads are
fetched in 8 MB windows, in parallel parts) and off again for frame reads, which fetch exactly
the planned ranges. Store the index (``reader.index.to_bytes()``) to skip that pass next time.
"""
from __future__ import annotations

import builtins
import concurrent.futures as cf
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from typing import Any, Callable

from .creds import redact
from .errors import StorageError, VideoDecodeError
from .storage import get_provider, split_url

__all__ = ["RangeCache", "RemoteRangeSource", "build_remote_index", "open_remote_video", "parallel_ranges"]

log = logging.getLogger("vidlake.remote")

DEFAULT_READAHEAD = 8 * 1024 * 1024
DEFAULT_CACHE_BYTES = 1 << 30


def parallel_ranges(
    ranges: Sequence[tuple[int, int]],
    part_size: int,
    fetch_one: Callable[[int, int], bytes],
    executor: Callable[[], cf.Executor],
) -> builtins.list[bytes]:
    """Fetch ``[start, end)`` ranges with ``fetch_one(start, end)``.

    Each range is split into parts of at most ``part_size`` bytes; the parts run on
    ``executor()`` in parallel (a lone part runs in the calling thread). Returns one ``bytes``
    per range, in order. The first failure is raised (the other parts are cancelled).
    """
    parts: builtins.list[tuple[int, int, int]] = []  # (range number, start, end)
    for i, (s, e) in enumerate(ranges):
        s, e = int(s), int(e)
        if s < 0 or e < s:
            raise StorageError(f"bad byte range [{s}, {e})")
        pos = s
        while pos < e:
            nxt = min(e, pos + part_size)
            parts.append((i, pos, nxt))
            pos = nxt
    if len(parts) == 1:
        got = [fetch_one(parts[0][1], parts[0][2])]
    elif parts:
        ex = executor()
        futures = [ex.submit(fetch_one, s, e) for _, s, e in parts]
        try:
            got = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    else:
        got = []
    out: builtins.list[builtins.list[bytes]] = [[] for _ in ranges]
    for (i, _s, _e), data in zip(parts, got):
        out[i].append(data)
    return [p[0] if len(p) == 1 else b"".join(p) for p in out]


class RangeCache:
    """A size-bounded on-disk cache of fetched byte ranges of remote objects.

    Each cached range is one file ``<dir>/<sha256(object id)[:32]>/<start>-<end>`` (written to a
    temporary name, then renamed: safe with several processes). A read is served from the cache
    when one cached range contains it. When the cache grows past ``max_bytes`` the least
    recently used ranges are deleted. Objects are identified by URL and size: the cache
    assumes a remote object is not rewritten in place with the same size (true of video
    files in datasets); call :meth:`clear` otherwise. Only object bytes are stored, never
    credentials.

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

    @staticmethod
    def _hash(ident: str) -> str:
        return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def _scan_total(self) -> int:
        total = 0
        if os.path.isdir(self.directory):
            for dirpath, _dirs, files in os.walk(self.directory):
                for f in files:
                    try:
                        total += os.path.getsize(os.path.join(dirpath, f))
                    except OSError:
                        pass
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
            try:
                os.unlink(tmp)
            except OSError:
                pass
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


def _cache_from_env() -> RangeCache | None:
    d = os.environ.get("VIDLAKE_CACHE_DIR")
    if not d:
        return None
    return RangeCache(d, int(os.environ.get("VIDLAKE_CACHE_MAX_BYTES", DEFAULT_CACHE_BYTES)))


class RemoteRangeSource:
    """One remote object as a range source for ``vidlake.VideoReader`` / ``_core.Index.build``.

    Args:
        provider: a storage provider (``S3Provider``, ``HTTPProvider``, any ``StorageProvider``).
        key: the object's key in ``provider``.
        size: the object's size in bytes when known (e.g. ``index.source_size``): saves a HEAD.
        name: shown in errors (default: the object's URL).
        cache: a :class:`RangeCache`; ``None`` = the one configured by ``VIDLAKE_CACHE_DIR``
            (and ``VIDLAKE_CACHE_MAX_BYTES``), if any; ``False`` = no cache.
        readahead: bytes to read ahead on sequential single-range fetches (0 = off; frame
            reads should not read ahead, index builds profit from it).

    ``stats`` counts ``fetch_calls``, ``ranges``, ``bytes_fetched`` (from the provider),
    ``bytes_from_cache`` and ``bytes_from_readahead``.
    """

    def __init__(
        self,
        provider: Any,
        key: str,
        *,
        size: int | None = None,
        name: str | None = None,
        cache: None | bool | RangeCache = None,
        readahead: int = 0,
    ) -> None:
        self.provider = provider
        self.key = key
        url = provider.url(key) if hasattr(provider, "url") else f"{provider.root.rstrip('/')}/{key}"
        self.url = url
        self.name = redact(name or url)
        self.size = int(size) if size is not None else int(provider.size(key))
        self.cache: RangeCache | None = _cache_from_env() if cache is None else (cache or None)
        self._ident = f"{url}#{self.size}"
        self.readahead = int(readahead)
        self._ra: tuple[int, bytes] | None = None  # (start, data) of the read-ahead buffer
        self._last_end: int | None = None
        self._lock = threading.Lock()
        self.last_error: BaseException | None = None
        self.stats = {"fetch_calls": 0, "ranges": 0, "bytes_fetched": 0, "bytes_from_cache": 0,
                      "bytes_from_readahead": 0}

    def __repr__(self) -> str:
        return f"RemoteRangeSource({self.name!r}, size={self.size})"

    def _from_readahead(self, s: int, e: int) -> bytes | None:
        ra = self._ra
        if ra is not None and ra[0] <= s and e <= ra[0] + len(ra[1]):
            return ra[1][s - ra[0]:e - ra[0]]
        return None

    def _get(self, ranges: builtins.list[tuple[int, int]]) -> builtins.list[bytes]:
        if hasattr(self.provider, "get_ranges"):
            got = self.provider.get_ranges(self.key, ranges)
        else:
            got = [self.provider.get_bytes(self.key, s, e) for s, e in ranges]
        with self._lock:
            self.stats["bytes_fetched"] += sum(len(g) for g in got)
        return got

    def fetch(self, ranges: Sequence[tuple[int, int]]) -> builtins.list[bytes]:
        """Bytes of each ``[start, end)`` range (clipped to the object), fetched in parallel."""
        try:
            return self._fetch(ranges)
        except KeyError:
            self.last_error = FileNotFoundError(f"{self.name}: no such object (deleted after it was opened?)")
            raise self.last_error from None
        except BaseException as e:
            self.last_error = e
            raise

    def _fetch(self, ranges: Sequence[tuple[int, int]]) -> builtins.list[bytes]:
        # The lock guards the read-ahead state and the counters only: network I/O runs
        # outside it, so readers sharing this source in several threads fetch concurrently.
        rs = [(max(0, int(s)), min(self.size, int(e))) for s, e in ranges]
        out: builtins.list[bytes | None] = [None] * len(rs)
        missing: builtins.list[int] = []
        with self._lock:
            self.stats["fetch_calls"] += 1
            self.stats["ranges"] += len(rs)
            sequential = (len(rs) == 1 and self.readahead > 0 and self._last_end is not None
                          and self._last_end == rs[0][0])
            if rs:
                self._last_end = rs[-1][1]
            for i, (s, e) in enumerate(rs):
                if e <= s:
                    out[i] = b""
                    continue
                got = self._from_readahead(s, e)
                if got is not None:
                    self.stats["bytes_from_readahead"] += len(got)
                    out[i] = got
                else:
                    missing.append(i)
        if self.cache is not None:
            still = []
            for i in missing:
                got = self.cache.get(self._ident, *rs[i])
                if got is None:
                    still.append(i)
                else:
                    out[i] = got
                    with self._lock:
                        self.stats["bytes_from_cache"] += len(got)
            missing = still
        if missing:
            want = [rs[i] for i in missing]
            if sequential and len(want) == 1:
                # a sequential reader (the demuxer building an index): read ahead
                s, e = want[0]
                data = self._get([(s, min(self.size, max(e, s + self.readahead)))])[0]
                with self._lock:
                    self._ra = (s, data)
                out[missing[0]] = data[: e - s]
                if self.cache is not None:
                    self.cache.put(self._ident, s, data)
            else:
                for i, data in zip(missing, self._get(want)):
                    out[i] = data
                    if self.cache is not None:
                        self.cache.put(self._ident, rs[i][0], data)
        return out  # type: ignore[return-value]


def open_remote_video(
    url: str,
    creds: dict[str, Any] | None = None,
    *,
    index: Any = None,
    cache: None | bool | RangeCache = None,
    threads: int | None = None,
    stream: int | None = None,
):
    """A :class:`vidlake.VideoReader` over a remote video, reading only the byte ranges it needs.

    ``url`` is ``s3://bucket/key``, ``http(s)://host/path`` or any URL whose scheme has a
    storage provider; ``creds`` goes to that provider. Without ``index`` the packet index is
    built here by demuxing the file once through ranged reads (with read-ahead); with one
    (an ``Index`` or its bytes) nothing is read until frames are asked for.

        >>> r = open_remote_video("https://example.com/clip.mp4")
        >>> r[100].shape
        (1080, 1920, 3)
    """
    from . import _core
    from .reader import VideoReader

    url = os.fspath(url) if isinstance(url, os.PathLike) else str(url)
    parent, name = split_url(url)
    provider = get_provider(parent, creds=creds, read_only=True)
    if isinstance(index, (bytes, bytearray, memoryview)):
        index = _core.Index.from_bytes(bytes(index))
    size = index.source_size if index is not None else None
    try:
        src = RemoteRangeSource(provider, name, size=size, cache=cache)
    except KeyError:
        raise FileNotFoundError(f"{redact(url)}: no such object") from None
    if index is None:
        index = build_remote_index(src, stream)
    return VideoReader(src, index=index, threads=threads, name=src.name)


def build_remote_index(src: RemoteRangeSource, stream: int | None = None):
    """Build the packet index of ``src`` by demuxing it once through ranged reads, with
    read-ahead on for that pass (off again afterwards, for frame reads). A storage failure
    during the pass is raised as it is (not as a decode error)."""
    from . import _core

    saved = src.readahead
    src.readahead = max(saved, DEFAULT_READAHEAD)
    try:
        return _core.Index.build(src, -1 if stream is None else stream, src.name)
    except VideoDecodeError:
        if isinstance(src.last_error, (StorageError, FileNotFoundError)):
            raise src.last_error from None
        raise
    finally:
        src.readahead = saved
        src._ra = None
