"""The storage provider interface: a small key -> bytes store.

Every dataset object (metadata JSON, sample tables, chunks) goes through this interface, so
a new backend (S3, HTTP, GCS) is one new module in ``vidlake/storage/`` and nothing else
(see :func:`vidlake.storage.get_provider` for how a URL scheme finds its module).

Keys are ``/``-separated relative paths such as ``"videos/chunks/9f3a..."``.

    >>> from vidlake.storage import MemoryProvider
    >>> p = MemoryProvider("mem://doc")
    >>> p.put("a/b", b"hello")
    >>> p.get_bytes("a/b", 1, 3)
    b'el'
    >>> p.list("a/")
    ['a/b']

Contract every provider keeps (the dataset layer's durability rests on it):

* ``put(key, data)`` is atomic: a reader sees the old object or the new one, never a mix,
  and a writer killed mid-``put`` leaves the old object (locally: temp file + rename).
* ``append(key, data, offset)`` writes ``data`` at byte ``offset`` of the object (creating it
  when ``offset == 0``) and drops anything after ``offset`` first; bytes before ``offset`` are
  never touched, so data other readers already use stays valid. It need not be atomic: the
  dataset layer only ever references appended bytes after a later atomic ``put`` commits them.
* A missing key raises ``KeyError`` (mapping convention); any other failure ``StorageError``.
* Writes on a provider opened read-only raise ``ReadOnlyError``.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConcurrentWriteError, ReadOnlyError, StorageError

if TYPE_CHECKING:
    import builtins
    from collections.abc import Iterable, Sequence

__all__ = ["FileRange", "StorageProvider", "check_key"]


@dataclass(frozen=True)
class FileRange:
    """Bytes ``[offset, offset + length)`` of a local file, not read into memory yet.

    Appending a local video stages a FileRange instead of the file's bytes, so a local
    provider can copy it in the kernel (``copy_file_range``) like ``cp`` does. ``size`` and
    ``mtime_ns`` are the file's at staging time: a file changed since is refused.
    """

    path: str
    offset: int
    length: int
    size: int
    mtime_ns: int

    @classmethod
    def of_file(cls, path: str) -> FileRange:
        """The whole file."""
        st = os.stat(path)
        return cls(path, 0, st.st_size, st.st_size, st.st_mtime_ns)

    def __len__(self) -> int:
        return self.length

    def slice(self, start: int, end: int) -> FileRange:
        """The sub-range ``[start, end)`` (relative to this range)."""
        end = min(end, self.length)
        return FileRange(self.path, self.offset + start, max(0, end - start), self.size, self.mtime_ns)

    def open_checked(self) -> int:
        """An O_RDONLY fd of the file, after checking it did not change since staging."""
        fd = os.open(self.path, os.O_RDONLY)
        st = os.fstat(fd)
        if st.st_size != self.size or st.st_mtime_ns != self.mtime_ns:
            os.close(fd)
            raise StorageError(f"{self.path} changed while it was being appended (size or mtime differs)")
        return fd

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """The bytes ``[start, end)`` of this range."""
        end = self.length if end is None else min(end, self.length)
        try:
            fd = self.open_checked()
        except OSError as e:
            raise StorageError(f"reading {self.path} failed: {e.strerror or e}") from None
        try:
            out = b""
            pos, n = self.offset + start, end - start
            while len(out) < n:
                more = os.pread(fd, n - len(out), pos + len(out))
                if not more:
                    raise StorageError(f"{self.path} is shorter than when it was appended")
                out += more
            return out
        finally:
            os.close(fd)


def materialize(part: bytes | bytearray | memoryview | FileRange) -> bytes:
    """A staged part as bytes."""
    return part.read() if isinstance(part, FileRange) else bytes(part)


def check_key(key: str) -> str:
    """Validate a relative object key (no leading ``/``, no ``..``); return it normalised."""
    if not isinstance(key, str) or not key or key.startswith("/") or "\\" in key:
        raise StorageError(f"invalid storage key {key!r}")
    norm = posixpath.normpath(key)
    if norm.startswith("..") or norm != key.rstrip("/"):
        raise StorageError(f"invalid storage key {key!r}")
    return norm


class StorageProvider(ABC):
    """Abstract key -> bytes store; subclasses implement the six ``_``-free primitives.

    Attributes:
        root: the URL or path the provider was opened on (shown in errors).
        read_only: when True every write raises :class:`vidlake.ReadOnlyError`.
    """

    #: URL schemes this provider serves (``""`` = plain local path).
    schemes: tuple[str, ...] = ()
    #: True when a ranged read costs no round trip (local disk, memory): the decoder then
    #: reads a few packets past a request so the next one can continue without a seek.
    local: bool = False
    #: True when :meth:`commit_lock` excludes every other writer (local disk: an advisory file
    #: lock; memory: a process lock). Without it, writers rely on :meth:`put_if_tag` alone and
    #: never rewrite an object another writer may have committed (no appends to shared chunks).
    exclusive_commits: bool = False

    def __init__(self, root: str, read_only: bool = False) -> None:
        self.root = root
        self.read_only = read_only

    # -- reads -------------------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object ``key``; ``KeyError`` when it does not exist."""

    @abstractmethod
    def get_bytes(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of object ``key`` (a ranged get; ``None`` = open end)."""

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> builtins.list[bytes]:
        """Several ``[start, end)`` ranges of one object. Remote providers fetch them in parallel."""
        return [self.get_bytes(key, s, e) for s, e in ranges]

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes of object ``key``; ``KeyError`` when missing."""

    def exists(self, key: str) -> bool:
        """True when object ``key`` exists."""
        try:
            self.size(key)
            return True
        except KeyError:
            return False

    @abstractmethod
    def list(self, prefix: str = "") -> builtins.list[str]:
        """Sorted keys starting with ``prefix`` (recursive)."""

    # -- writes ------------------------------------------------------------------------
    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (replace whole object)."""

    def append(self, key: str, data: bytes, offset: int) -> None:
        """Write ``data`` at ``offset`` of ``key``, dropping what was after ``offset``.

        The default reads the kept prefix and re-puts the object; providers that can write
        in place (local files) override it.
        """
        self.check_writable()
        old = self.get_bytes(key, 0, offset) if offset else b""
        if len(old) != offset:
            raise StorageError(f"{self.root}: {key} has {len(old)} bytes, expected at least {offset}")
        self.put(key, old + bytes(data))

    def write_parts(self, key: str, parts: Sequence[bytes | bytearray | memoryview | FileRange],
                    offset: int) -> None:
        """Write the concatenation of ``parts`` at ``offset`` of ``key``: a new object (atomic,
        like ``put``) when ``offset == 0``, else like ``append``. Local files among the parts
        (:class:`FileRange`) are read here; LocalProvider copies them in the kernel instead."""
        data = b"".join(materialize(p) for p in parts)
        if offset == 0:
            self.put(key, data)
        else:
            self.append(key, data, offset)

    # -- commits -------------------------------------------------------------------------
    def commit_lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        """Held by a writer from checking the commit record to replacing it. The default
        excludes nobody (see :attr:`exclusive_commits`)."""
        return contextlib.nullcontext()

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """The object and a tag of this version of it, for :meth:`put_if_tag`. The default tag
        is a hash of the bytes (providers with versions use their ETag or generation)."""
        data = self.get(key)
        return data, hashlib.sha256(data).hexdigest()

    def put_if_tag(self, key: str, data: bytes, tag: str) -> None:
        """Replace ``key`` only if it is still the version ``tag`` names, else raise
        :class:`vidlake.ConcurrentWriteError`. The default compares and replaces under
        :meth:`commit_lock` (which the caller holds), so it is atomic only where that lock is."""
        try:
            now = self.get_tagged(key)[1]
        except KeyError:
            now = None
        if now != tag:
            raise ConcurrentWriteError(f"{self.root}/{key} was replaced by another writer")
        self.put(key, data)

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove object ``key`` (no error when it does not exist)."""

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove several objects."""
        for k in keys:
            self.delete(k)

    def clear(self, prefix: str = "") -> None:
        """Remove every object under ``prefix`` (the whole store when empty)."""
        self.delete_many(self.list(prefix))

    def flush(self) -> None:  # noqa: B027 - optional hook: the default has nothing to push
        """Push buffered writes to the backend (all built-in providers write through)."""

    # -- helpers -----------------------------------------------------------------------
    def check_writable(self) -> None:
        """Raise :class:`vidlake.ReadOnlyError` when the provider is read-only."""
        if self.read_only:
            raise ReadOnlyError(f"{self.root} is opened read-only; open it with read_only=False to write")

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"{type(self).__name__}({self.root!r}, {mode})"
