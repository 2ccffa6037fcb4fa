"""In-memory provider for ``mem://name`` datasets (process-local, lost at exit).

Stores with the same name share their objects inside one process, so
``vidlake.empty("mem://x")`` followed by ``vidlake.load("mem://x")`` sees the same data.

    >>> from vidlake.storage import MemoryProvider
    >>> MemoryProvider("mem://scratch").put("k", b"v")
    >>> MemoryProvider("mem://scratch").get("k")
    b'v'
"""
from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from ..errors import ConcurrentWriteError
from . import _forksafe
from .provider import StorageProvider, check_key

if TYPE_CHECKING:
    import builtins
    from collections.abc import Iterator

__all__ = ["MemoryProvider"]

_STORES: dict[str, dict[str, bytes]] = {}
_COMMIT_LOCKS: dict[str, threading.Lock] = {}
_LOCK = threading.Lock()


@_forksafe.at_fork_in_child
def _fresh_locks() -> None:
    """In a forked child: new locks (a parent thread may have held one); the stores are the
    child's own copy from now on."""
    global _LOCK
    _LOCK = threading.Lock()
    for root in list(_COMMIT_LOCKS):
        _COMMIT_LOCKS[root] = threading.Lock()


def _commit_lock(root: str) -> threading.Lock:
    with _LOCK:
        return _COMMIT_LOCKS.setdefault(root, threading.Lock())


class MemoryProvider(StorageProvider):
    """A dict of key -> bytes, shared by name within the process (a forked child gets its own
    copy of the stores, and new locks)."""

    schemes = ("mem",)
    local = True
    exclusive_commits = True

    def __init__(self, root: str = "mem://", read_only: bool = False) -> None:
        if not root.startswith("mem://"):
            root = "mem://" + root
        super().__init__(root, read_only)
        with _LOCK:
            self._objects = _STORES.setdefault(root, {})

    @contextlib.contextmanager
    def commit_lock(self, timeout: float) -> Iterator[None]:
        lock = _commit_lock(self.root)  # looked up each time: a forked child has new ones
        if not lock.acquire(timeout=max(0.0, timeout)):
            raise ConcurrentWriteError(f"{self.root}: another writer has been committing for over {timeout:g} s")
        try:
            yield
        finally:
            lock.release()

    def get(self, key: str) -> bytes:
        return self._objects[check_key(key)]

    def get_bytes(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        return self._objects[check_key(key)][start:end]

    def size(self, key: str) -> int:
        return len(self._objects[check_key(key)])

    def list(self, prefix: str = "") -> builtins.list[str]:
        return sorted(k for k in list(self._objects) if k.startswith(prefix))

    def put(self, key: str, data: bytes) -> None:
        self.check_writable()
        self._objects[check_key(key)] = bytes(data)  # one dict store: atomic

    def append(self, key: str, data: bytes, offset: int) -> None:
        self.check_writable()
        key = check_key(key)
        old = self._objects.get(key, b"")[:offset]
        self._objects[key] = old + bytes(data)

    def delete(self, key: str) -> None:
        self.check_writable()
        self._objects.pop(check_key(key), None)
