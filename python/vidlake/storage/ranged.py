"""Ranged fetch plumbing shared by the remote providers (S3, HTTP, GCS).

A read plan hands a provider several ``[start, end)`` byte ranges at once; each provider
fetches one range with its own client and this module splits large ranges into parts and runs
them in parallel on the provider's pool.

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> pool = ThreadPoolExecutor(2)
    >>> [len(b) for b in parallel_ranges([(0, 10), (20, 25)], 8, lambda s, e: bytes(e - s), lambda: pool)]
    [10, 5]
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import StorageError

if TYPE_CHECKING:
    import builtins
    import concurrent.futures as cf
    from collections.abc import Sequence

__all__ = ["parallel_ranges"]


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
