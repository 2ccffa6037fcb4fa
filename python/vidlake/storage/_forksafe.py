"""Fork safety: objects that hold locks, thread pools or network clients reset themselves in a
forked child.

A forked process (a ``DataLoader`` worker, a ``multiprocessing`` pool worker) starts with one
thread, the one that called ``fork``, and a copy of everything else as it was at that instant:

* a lock another thread held stays held, by a thread that does not exist in the child, so the
  first ``with lock:`` there waits forever;
* a ``ThreadPoolExecutor`` has no threads left, but its count of idle threads says it has, so
  work submitted to it is never run;
* a network client (a urllib3 pool, a boto3 or google-cloud client) shares its sockets and
  its own internal locks with the parent: two processes reading one socket get each other's
  answers.

So every such object registers itself here and knows how to reset itself: fresh locks, no
pool (re-created on first use), no client (re-created on first use from the settings it was
made with). The resets run in the child right after ``fork`` (``os.register_at_fork``),
before any other Python code there, for every registered object that is still alive (the
registry holds weak references). Module-level state registers a function instead.

    >>> import threading
    >>> from vidlake.storage import _forksafe
    >>> class Thing:
    ...     def __init__(self):
    ...         self._lock = threading.Lock()
    ...         _forksafe.register(self)
    ...     def _after_fork_in_child(self):
    ...         self._lock = threading.Lock()
    >>> t = Thing()
    >>> _forksafe.registered(t)
    True

Spawned processes (``multiprocessing`` 'spawn' / 'forkserver') import vidlake afresh and
unpickle what they are given, so nothing is inherited there and nothing needs resetting.
"""
from __future__ import annotations

import os
import weakref
from typing import Any, Callable

__all__ = ["at_fork_in_child", "forks", "register", "registered"]

#: method a registered object must have
METHOD = "_after_fork_in_child"

_objects: dict[int, weakref.ref[Any]] = {}
_functions: list[Callable[[], None]] = []
_forks = 0


def register(obj: Any) -> Any:
    """Call ``obj._after_fork_in_child()`` in every forked child while ``obj`` is alive; returns ``obj``.

    The method runs in the child before anything else there and must only replace state
    (new locks, ``None`` for pools and clients that are re-created lazily): no I/O, no
    waiting, and never touching what it replaces (its locks may be held, its sockets are the
    parent's)."""
    if not callable(getattr(obj, METHOD, None)):
        raise TypeError(f"{type(obj).__name__} has no {METHOD}() method to register for fork safety")
    key = id(obj)

    def gone(ref: weakref.ref[Any], key: int = key) -> None:
        if _objects.get(key) is ref:
            _objects.pop(key, None)

    _objects[key] = weakref.ref(obj, gone)
    return obj


def registered(obj: Any) -> bool:
    """Whether ``obj`` is registered (and alive)."""
    ref = _objects.get(id(obj))
    return ref is not None and ref() is obj


def at_fork_in_child(fn: Callable[[], None]) -> Callable[[], None]:
    """Run ``fn()`` in every forked child (for module-level locks and caches); a decorator."""
    _functions.append(fn)
    return fn


def forks() -> int:
    """How many forks separate this process from the first one that imported vidlake."""
    return _forks


def _after_fork_in_child() -> None:
    global _forks
    _forks += 1
    first: BaseException | None = None
    for fn in list(_functions):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - run every reset; report the first failure below
            first = first or e
    for ref in list(_objects.values()):
        obj = ref()
        if obj is None:
            continue
        try:
            getattr(obj, METHOD)()
        except Exception as e:  # noqa: BLE001
            first = first or e
    if first is not None:  # CPython reports an exception from an at-fork hook as unraisable
        raise first


if hasattr(os, "register_at_fork"):  # every POSIX system; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
