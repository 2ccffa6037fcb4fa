"""Local-filesystem provider: one file per key under a root folder.

    >>> from vidlake.storage import LocalProvider
    >>> p = LocalProvider("/tmp/ds")
    >>> p.put("dataset_meta.json", b"{}")      # temp file + os.replace: atomic

``put`` writes ``<key>.tmp-<pid>-<random>`` next to the target and renames it over the target
(``os.replace``), so a process killed mid-write leaves the old object. With ``fsync=True``
(or ``VIDLAKE_FSYNC=1`` in the environment) file data and the directory entry are also
fsync'ed, which extends the guarantee from process crashes to power loss at some speed cost.
Stray ``*.tmp-*`` files from killed writers are ignored by :meth:`list`.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
import uuid
from typing import TYPE_CHECKING

from ..errors import ConcurrentWriteError, StorageError
from .provider import FileRange, StorageProvider, check_key

if TYPE_CHECKING:
    import builtins
    from collections.abc import Iterator, Sequence

__all__ = ["LocalProvider"]

_TMP_MARK = ".tmp-"
#: the commit lock file in a dataset root (not an object: list() does not show it)
LOCK_NAME = ".vidlake-commit.lock"


class StagedObject:
    """A new object being written into a temporary file (:meth:`LocalProvider.begin_write`)."""

    def __init__(self, provider: LocalProvider, key: str, tmp: str, fd: int) -> None:
        self.provider, self.key, self.tmp, self.fd = provider, key, tmp, fd
        self.open = True
        self.published = False

    def write(self, parts: Sequence[bytes | bytearray | memoryview | FileRange], pos: int) -> None:
        try:
            LocalProvider._write_at(self.fd, parts, pos)
        except OSError as e:
            raise self.provider._fail("writing", self.key, e) from None

    def truncate(self, length: int) -> None:
        try:
            os.ftruncate(self.fd, length)
        except OSError as e:
            raise self.provider._fail("writing", self.key, e) from None

    def publish(self) -> None:
        """Make the object visible under its key (fsync'ed first when the provider fsyncs)."""
        p = self.provider
        p.check_writable()
        try:
            if p.fsync:
                os.fsync(self.fd)
            os.close(self.fd)
            self.open = False
            os.replace(self.tmp, p._path(self.key))
        except OSError as e:
            self.abort()
            raise p._fail("writing", self.key, e) from None
        self.published = True
        p._fsync_dir(os.path.dirname(p._path(self.key)))

    def abort(self) -> None:
        """Drop the temporary file (idempotent; nothing to do once published)."""
        if self.published:
            return
        if self.open:
            self.open = False
            with contextlib.suppress(OSError):
                os.close(self.fd)
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


class LocalProvider(StorageProvider):
    """Objects stored as files below ``root`` (created on first write)."""

    schemes = ("", "file")
    local = True
    exclusive_commits = True

    def __init__(self, root: str, read_only: bool = False, fsync: bool | None = None) -> None:
        root = root.removeprefix("file://")
        root = os.path.abspath(os.path.expanduser(root))
        super().__init__(root, read_only)
        if fsync is None:
            fsync = os.environ.get("VIDLAKE_FSYNC", "") not in ("", "0")
        self.fsync = fsync

    def _path(self, key: str) -> str:
        """The file of ``key``; refused when a folder on the way is a link out of the dataset
        (a dataset from someone else must not make vidlake read or write elsewhere)."""
        path = os.path.join(self.root, *check_key(key).split("/"))
        parent = os.path.dirname(path)
        if parent != self.root:
            real_root = os.path.realpath(self.root)
            real = os.path.realpath(parent)
            if real != real_root and not real.startswith(real_root + os.sep):
                raise StorageError(f"{key!r} in {self.root}: its folder leads outside the dataset "
                                   f"(a symbolic link to {real}); refusing to use it")
        return path

    def _open_read(self, key: str) -> int:
        """A read descriptor of ``key``'s file: a regular file inside the dataset, not a link,
        device or FIFO (opened non-blocking, so a FIFO cannot hang the reader)."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise KeyError(key) from None
        except IsADirectoryError:
            raise KeyError(key) from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise StorageError(f"{key!r} in {self.root} is a symbolic link; a dataset's objects are "
                                   "regular files inside it") from None
            raise self._fail("reading", key, e) from None
        try:
            st = os.fstat(fd)
        except OSError as e:
            os.close(fd)
            raise self._fail("reading", key, e) from None
        if stat.S_ISDIR(st.st_mode):
            os.close(fd)
            raise KeyError(key)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise StorageError(f"{key!r} in {self.root} is not a regular file (a device, FIFO or socket); "
                               "refusing to read it")
        return fd

    def _fail(self, what: str, key: str, e: OSError) -> StorageError:
        msg = f"{what} {key!r} in {self.root} failed: {e.strerror or e}"
        if e.errno == errno.ENOSPC:
            msg += " (disk full)"
        return StorageError(msg)

    # -- reads -------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        fd = self._open_read(key)
        try:
            with os.fdopen(fd, "rb") as f:
                return f.read()
        except OSError as e:
            raise self._fail("reading", key, e) from None

    def get_bytes(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        start = start or 0
        fd = self._open_read(key)
        try:
            if end is None:
                end = os.fstat(fd).st_size
            n = max(0, end - start)
            out = os.pread(fd, n, start)
            while len(out) < n:  # pread may return short reads on some filesystems
                more = os.pread(fd, n - len(out), start + len(out))
                if not more:
                    break
                out += more
            return out
        except OSError as e:
            raise self._fail("reading", key, e) from None
        finally:
            os.close(fd)

    def size(self, key: str) -> int:
        try:
            st = os.lstat(self._path(key))
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as e:
            raise self._fail("stat of", key, e) from None
        if stat.S_ISDIR(st.st_mode):
            raise KeyError(key)
        if not stat.S_ISREG(st.st_mode):
            raise StorageError(f"{key!r} in {self.root} is not a regular file; refusing to use it")
        return st.st_size

    def list(self, prefix: str = "") -> builtins.list[str]:
        keys: builtins.list[str] = []
        if not os.path.isdir(self.root):
            return keys
        for dirpath, _dirs, files in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            for name in files:
                if _TMP_MARK in name or (not rel and name == LOCK_NAME):
                    continue
                k = rel + name
                if k.startswith(prefix):
                    keys.append(k)
        return sorted(keys)

    # -- commits -----------------------------------------------------------------------
    @contextlib.contextmanager
    def commit_lock(self, timeout: float) -> Iterator[None]:
        """An exclusive advisory lock (``flock``) on ``<root>/{LOCK_NAME}``, waited for up to
        ``timeout`` seconds. The kernel drops it when the holder exits, also on SIGKILL, so a
        crashed writer never leaves the dataset locked."""
        self.check_writable()
        path = os.path.join(self.root, LOCK_NAME)
        try:
            os.makedirs(self.root, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise self._fail("locking", LOCK_NAME, e) from None
        try:
            deadline = time.monotonic() + max(0.0, timeout)
            delay = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ConcurrentWriteError(
                            f"{self.root}: another process has been committing to this dataset for over "
                            f"{timeout:g} s (lock {path}); try again later") from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- writes ------------------------------------------------------------------------
    def _fsync_dir(self, d: str) -> None:
        if not self.fsync:
            return
        try:
            fd = os.open(d, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def put(self, key: str, data: bytes) -> None:
        self.write_parts(key, [data], 0)

    @staticmethod
    def _write_at(fd: int, parts: Sequence[bytes | bytearray | memoryview | FileRange], pos: int) -> None:
        """Write parts at ``pos`` of ``fd``; file ranges are copied in the kernel when possible."""
        for part in parts:
            if isinstance(part, FileRange):
                src = part.open_checked()
                try:
                    done = 0
                    while done < part.length:
                        try:
                            n = os.copy_file_range(src, fd, part.length - done, part.offset + done, pos + done)
                        except (OSError, AttributeError):   # other filesystems / platforms
                            n = 0
                        if n <= 0:
                            buf = os.pread(src, min(8 << 20, part.length - done), part.offset + done)
                            if not buf:
                                raise StorageError(f"{part.path} is shorter than when it was appended")
                            n = os.pwrite(fd, buf, pos + done)
                        done += n
                finally:
                    os.close(src)
                pos += part.length
            else:
                view = memoryview(part).cast("B")
                while view:
                    n = os.pwrite(fd, view, pos)
                    view = view[n:]
                    pos += n

    def begin_write(self, key: str) -> StagedObject:
        """A new object written piece by piece into a temporary file, invisible until
        ``write_parts(key, [staged], 0)`` publishes it (by rename); ``abort()`` drops it.
        Datasets copy the bytes of new chunks this way while an ``extend()`` still indexes
        the files after them (see docs/FORMAT.md, "The commit protocol")."""
        self.check_writable()
        path = self._path(key)
        tmp = f"{path}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as e:
            raise self._fail("writing", key, e) from None
        return StagedObject(self, key, tmp, fd)

    def write_parts(self, key: str, parts: Sequence[bytes | bytearray | memoryview | FileRange],
                    offset: int) -> None:
        if offset:
            return self._append_parts(key, parts, offset)
        if len(parts) == 1 and isinstance(parts[0], StagedObject) and parts[0].key == key:
            return parts[0].publish()
        self.check_writable()
        path = self._path(key)
        d = os.path.dirname(path)
        tmp = f"{path}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            os.makedirs(d, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                self._write_at(fd, parts, 0)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except (OSError, StorageError) as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, StorageError):
                raise
            raise self._fail("writing", key, e) from None
        self._fsync_dir(d)
        return None

    def append(self, key: str, data: bytes, offset: int) -> None:
        self._append_parts(key, [data], offset)

    def _append_parts(self, key: str, parts: Sequence[bytes | bytearray | memoryview | FileRange],
                      offset: int) -> None:
        self.check_writable()
        path = self._path(key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise self._fail("writing", key, e) from None
        try:
            if os.fstat(fd).st_size < offset:
                raise StorageError(f"{self.root}: {key} is shorter than {offset} bytes; the dataset is damaged")
            os.ftruncate(fd, offset)  # drop an uncommitted tail left by a killed writer
            self._write_at(fd, parts, offset)
            if self.fsync:
                os.fsync(fd)
        except OSError as e:
            raise self._fail("writing", key, e) from None
        finally:
            os.close(fd)

    def delete(self, key: str) -> None:
        self.check_writable()
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise self._fail("deleting", key, e) from None

    def clear(self, prefix: str = "") -> None:
        self.check_writable()
        for k in self.list(prefix):
            self.delete(k)
        if not prefix and os.path.isdir(self.root):
            # remove stray temp files and now-empty folders too
            for dirpath, _dirs, files in os.walk(self.root, topdown=False):
                for name in files:
                    if _TMP_MARK in name:
                        with contextlib.suppress(OSError):
                            os.unlink(os.path.join(dirpath, name))
                if dirpath != self.root:
                    with contextlib.suppress(OSError):
                        os.rmdir(dirpath)
