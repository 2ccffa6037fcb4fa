"""Reading remote videos by byte ranges: only the bytes a read needs cross the network.

:class:`RemoteRangeSource` turns one object of any storage provider (S3, HTTP(S), ...) into
the *range source* the core reads through (``size``, ``name``, ``fetch(ranges)``; see
docs/DESIGN.md). The core calls ``fetch`` once per read window with every byte range of the
read plan (the packets from the keyframe to the last wanted frame); the ranges are fetched
with parallel ranged GETs over the provider's connection pool. An optional
:class:`RangeCache` keeps fetched ranges on local disk, bounded in size.

    >>> import vidlake
    >>> from vidlake import open_remote_video, RemoteRangeSource, RangeCache
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

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from ..errors import StorageError, VideoDecodeError
from ..storage import _forksafe, get_provider, split_url
from ..storage.creds import redact
from ..storage.range_cache import RangeCache, cache_from_env
from ..video import Index, VideoReader

if TYPE_CHECKING:
    import builtins
    from collections.abc import Sequence

__all__ = ["INDEX_MODES", "RemoteRangeSource", "build_remote_index", "open_remote_video"]

log = logging.getLogger("vidlake.remote")

DEFAULT_READAHEAD = 8 * 1024 * 1024


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
        cache: bool | RangeCache | None = None,
        readahead: int = 0,
    ) -> None:
        self.provider = provider
        self.key = key
        url = provider.url(key) if hasattr(provider, "url") else f"{provider.root.rstrip('/')}/{key}"
        self.url = url
        self.name = redact(name or url)
        self.size = int(size) if size is not None else int(provider.size(key))
        self.cache: RangeCache | None = cache_from_env() if cache is None else (cache if isinstance(cache, RangeCache)
                                                                               else None)
        self._ident = f"{url}#{self.size}"
        self.readahead = int(readahead)
        self._ra: tuple[int, bytes] | None = None  # (start, data) of the read-ahead buffer
        self._last_end: int | None = None
        self._lock = threading.Lock()
        _forksafe.register(self)
        self.last_error: BaseException | None = None
        self.stats = {"fetch_calls": 0, "ranges": 0, "bytes_fetched": 0, "bytes_from_cache": 0,
                      "bytes_from_readahead": 0}

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # a parent thread may have held it at the fork

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
    cache: bool | RangeCache | None = None,
    threads: int | None = None,
    stream: int | None = None,
    index_mode: str = "auto",
):
    """A :class:`vidlake.VideoReader` over a remote video, reading only the byte ranges it needs.

    ``url`` is ``s3://bucket/key``, ``http(s)://host/path`` or any URL whose scheme has a
    storage provider; ``creds`` goes to that provider. Without ``index`` the packet index is
    built here through ranged reads: for MP4/MOV from the container's tables and for
    Matroska/WebM with H.264/HEVC from its element and block headers (headers only, never
    frame payloads), for other files by demuxing them once (``index_mode``: see :func:`build_remote_index`);
    with one (an ``Index`` or its bytes) nothing is read until frames are asked for.

        >>> r = open_remote_video("https://example.com/clip.mp4")
        >>> r[100].shape
        (1080, 1920, 3)
    """
    url = os.fspath(url) if isinstance(url, os.PathLike) else str(url)
    parent, name = split_url(url)
    provider = get_provider(parent, creds=creds, read_only=True)
    if isinstance(index, (bytes, bytearray, memoryview)):
        index = Index.from_bytes(bytes(index), redact(url))
    size = index.source_size if index is not None else None
    try:
        src = RemoteRangeSource(provider, name, size=size, cache=cache)
    except KeyError:
        raise FileNotFoundError(f"{redact(url)}: no such object") from None
    if index is None:
        index = build_remote_index(src, stream, index_mode)
    return VideoReader(src, index=index, threads=threads, name=src.name)


INDEX_MODES = ("auto", "tables", "demux")


def build_remote_index(src: RemoteRangeSource, stream: int | None = None, mode: str = "auto"):
    """Build the packet index of ``src`` through ranged reads.

    ``mode="auto"`` (default) builds MP4/MOV indexes from the container's tables (the
    sample tables or fragment headers, and the heads of the sync samples: docs/REMOTE.md,
    "Index from the container's tables") and Matroska/WebM H.264/HEVC indexes from their
    element and block headers, never reading sample payloads, and demuxes every other file
    once; ``"tables"`` refuses to demux (``UnsupportedFormatError`` when the
    tables path cannot index the file exactly); ``"demux"`` always demuxes. The demux pass
    reads ahead (off again afterwards, for frame reads). A storage failure during a pass is
    raised as it is (not as a decode error)."""
    if mode not in INDEX_MODES:
        raise ValueError(f"index mode must be one of {', '.join(map(repr, INDEX_MODES))}, not {mode!r}")
    s = -1 if stream is None else stream
    if mode != "demux":
        try:
            return _build(src, s, "tables", readahead=0)
        except VideoDecodeError:  # UnsupportedFormatError included: not a file the tables path indexes
            if mode == "tables":
                raise
            src.last_error = None
    return _build(src, s, "demux", readahead=max(src.readahead, DEFAULT_READAHEAD))


def _build(src: RemoteRangeSource, stream: int, mode: str, readahead: int):
    saved = src.readahead
    src.readahead = readahead
    try:
        return Index.build(src, stream, src.name, mode)
    except VideoDecodeError:
        if isinstance(src.last_error, (StorageError, FileNotFoundError)):
            raise src.last_error from None
        raise
    finally:
        src.readahead = saved
        src._ra = None
