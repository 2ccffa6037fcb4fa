"""Chunk placement (writing) and chunk-backed byte sources (reading).

A tensor's sample bytes live in chunk objects. Placement rule (``place``), for ``n`` bytes:

1. the open chunk (the last one written) takes the whole sample when it is still below
   ``target_chunk_size`` and would stay within ``max_chunk_size``;
2. otherwise a sample of at most ``max_chunk_size`` bytes starts a new chunk;
3. a larger sample is split into pieces of ``max_chunk_size`` bytes, one new chunk each.

The chunk written last stays open for the next sample. A sample is thus a list of extents
``(chunk_id, offset, length)``, and :class:`ChunkRangeSource` turns the sample-relative byte
ranges the decoder asks for into ranged gets of just the chunks that hold them.

    >>> place(open_chunk=("c1", 100), n=50, target=1000, maximum=2000, new_id=lambda: "c2")
    [('c1', 100, 50)]
"""
from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any, Callable, Union

from ..errors import StorageError
from ..storage.provider import FileRange
from .records import Extent, chunk_key

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..storage import StorageProvider

__all__ = ["ChunkRangeSource", "ChunkStore", "place"]


def place(open_chunk: tuple[str, int] | None, n: int, target: int, maximum: int,
          new_id: Callable[[], str]) -> list[Extent]:
    """Where ``n`` bytes go: a list of (chunk id, offset, length) extents (see module doc)."""
    if open_chunk is not None:
        cid, size = open_chunk
        if size < target and size + n <= maximum:
            return [(cid, size, n)]
    if n <= maximum:
        return [(new_id(), 0, n)]
    out: list[Extent] = []
    done = 0
    while done < n:
        k = min(maximum, n - done)
        out.append((new_id(), 0, k))
        done += k
    return out


Part = Union[bytes, bytearray, memoryview, FileRange]


class _Pending:
    """Staged appends to one chunk: parts written after the chunk's committed ``base``."""

    __slots__ = ("base", "length", "parts", "staged")

    def __init__(self, base: int) -> None:
        self.base = base
        self.parts: list[Part] = []
        self.length = 0
        self.staged: Any = None   # a new chunk already being written (provider.begin_write), or None


class ChunkStore:
    """A tensor's chunks: committed bytes in the provider plus not-yet-committed appends.

    ``write`` stages a part (bytes, or a :class:`FileRange` of a local file that is copied
    only at commit) at the end of a chunk; ``pending()`` hands the parts to the commit;
    ``truncate``/``discard`` roll back. Reads see both, so samples appended inside
    ``with ds:`` are readable before the flush.
    """

    def __init__(self, provider: StorageProvider, tensor: str) -> None:
        self.provider = provider
        self.tensor = tensor
        self._pending: dict[str, _Pending] = {}

    def write(self, extent: Extent, part: Part) -> None:
        """Stage ``part`` (exactly ``extent``'s length) at ``extent``, the chunk's current end.

        The parts of a *new* chunk on a provider that can stage objects (local disk) are
        copied into its temporary file right away, so an ``extend()`` copies the bytes of the
        files it has indexed while it indexes the next ones; the commit then only publishes
        the file. Anything else is written at commit."""
        cid, off, n = extent
        if len(part) != n:
            raise StorageError(f"chunk {cid}: part of {len(part)} bytes for an extent of {n}")
        p = self._pending.get(cid)
        if p is None:
            p = self._pending[cid] = _Pending(off)
        if p.base + p.length != off:
            raise StorageError(f"chunk {cid}: write at {off}, but its end is {p.base + p.length}")
        begin = getattr(self.provider, "begin_write", None)
        if p.base == 0 and begin is not None:
            if p.staged is None:
                p.staged = begin(chunk_key(self.tensor, cid))
            staged = p.staged
            staged.write([part], p.length)
        p.parts.append(part)
        p.length += n

    def pending(self) -> list[tuple[str, int, list[Part]]]:
        """(chunk id, offset, parts) of every staged append; a chunk already written into a
        staged object comes as that one object, which the provider's ``write_parts`` publishes."""
        return [(cid, p.base, [p.staged] if p.staged is not None else list(p.parts))
                for cid, p in self._pending.items() if p.length]

    def pending_bytes(self) -> int:
        """Total staged bytes."""
        return sum(p.length for p in self._pending.values())

    def savepoint(self) -> dict[str, int]:
        """Staged parts per chunk, for :meth:`truncate`."""
        return {cid: len(p.parts) for cid, p in self._pending.items()}

    def truncate(self, save: dict[str, int]) -> None:
        """Roll staged appends back to a :meth:`savepoint`."""
        for cid in list(self._pending):
            p = self._pending[cid]
            if cid not in save:
                if p.staged is not None:
                    p.staged.abort()
                del self._pending[cid]
            else:
                for part in p.parts[save[cid]:]:
                    p.length -= len(part)
                del p.parts[save[cid]:]
                if p.staged is not None:
                    p.staged.truncate(p.length)

    def discard(self) -> None:
        """Forget staged appends (after a commit, or to roll back); temporary files of chunks
        not published are removed."""
        for p in self._pending.values():
            if p.staged is not None:
                p.staged.abort()
        self._pending.clear()

    def _read_pending(self, p: _Pending, start: int, end: int) -> bytes:
        out = []
        pos = p.base
        for part in p.parts:
            a, b = max(start, pos), min(end, pos + len(part))
            if a < b:
                if isinstance(part, FileRange):
                    out.append(part.read(a - pos, b - pos))
                else:
                    out.append(bytes(memoryview(part)[a - pos:b - pos]))
            pos += len(part)
            if pos >= end:
                break
        return b"".join(out)

    def read(self, cid: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of chunk ``cid``."""
        p = self._pending.get(cid)
        if p is not None and end > p.base:
            if start >= p.base:
                return self._read_pending(p, start, end)
            head = self._read_committed(cid, start, p.base)
            return head + self._read_pending(p, p.base, end)
        return self._read_committed(cid, start, end)

    def _read_committed(self, cid: str, start: int, end: int) -> bytes:
        try:
            data = self.provider.get_bytes(chunk_key(self.tensor, cid), start, end)
        except KeyError:
            raise StorageError(f"{self.provider.root}: chunk {cid} of tensor {self.tensor!r} is missing") from None
        if len(data) != end - start:
            raise StorageError(
                f"{self.provider.root}: chunk {cid} of tensor {self.tensor!r} is shorter than expected"
            )
        return data

    def read_many(self, cid: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Several ``[start, end)`` ranges of chunk ``cid``: committed bytes in one
        ``provider.get_ranges`` call (parallel ranged GETs on remote providers)."""
        p = self._pending.get(cid)
        if p is not None and any(end > p.base for _start, end in ranges):
            return [self.read(cid, a, b) for a, b in ranges]
        try:
            got = self.provider.get_ranges(chunk_key(self.tensor, cid), list(ranges))
        except KeyError:
            raise StorageError(f"{self.provider.root}: chunk {cid} of tensor {self.tensor!r} is missing") from None
        for (a, b), data in zip(ranges, got):
            if len(data) != b - a:
                raise StorageError(
                    f"{self.provider.root}: chunk {cid} of tensor {self.tensor!r} is shorter than expected"
                )
        return list(got)

    def read_extents(self, extents: Sequence[Extent]) -> bytes:
        """Concatenated bytes of a list of extents (a whole sample or its index)."""
        return b"".join(self.read(cid, off, off + n) for cid, off, n in extents)


class ChunkRangeSource:
    """A RangeSource (``size``, ``name``, ``fetch``) over one sample's extents.

    The core's decoder asks for sample-relative ``[start, end)`` ranges; each becomes ranged
    gets of only the chunks that hold it.

        >>> src = ChunkRangeSource(store, [("c1", 0, 10), ("c2", 0, 5)], name="videos[3]")
        >>> src.fetch([(8, 12)])     # 2 bytes from c1, 2 from c2
    """

    def __init__(self, store: ChunkStore, extents: Sequence[Extent], name: str = "") -> None:
        self.store = store
        self.extents: list[tuple[str, int, int]] = [(str(e[0]), int(e[1]), int(e[2])) for e in extents]
        self.starts: list[int] = []
        pos = 0
        for _cid, _off, n in self.extents:
            self.starts.append(pos)
            pos += n
        self.size = pos
        self.name = name
        self.bytes_fetched = 0
        # no round trip per read: the decoder may read ahead (see StorageProvider.local)
        self.local = bool(getattr(store.provider, "local", False))

    def fetch(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each sample-relative ``[start, end)`` range.

        All pieces that fall in one chunk are fetched with one ``read_many`` (so a remote
        provider gets them with parallel ranged GETs), then reassembled per range.
        """
        pieces: list[list[tuple[str, int, int]]] = []      # per range: (chunk, start, end)
        by_chunk: dict[str, list[tuple[int, int]]] = {}
        for start, end in ranges:
            start, end = int(start), int(end)
            if start < 0 or end > self.size or start > end:
                raise StorageError(f"{self.name}: range [{start}, {end}) outside the sample's {self.size} bytes")
            mine: list[tuple[str, int, int]] = []
            i = max(0, bisect.bisect_right(self.starts, start) - 1)
            pos = start
            while pos < end:
                cid, off, n = self.extents[i]
                s0 = self.starts[i]
                a, b = pos - s0, min(end - s0, n)
                mine.append((cid, off + a, off + b))
                by_chunk.setdefault(cid, []).append((off + a, off + b))
                pos = s0 + b
                i += 1
            pieces.append(mine)
        fetched: dict[tuple[str, int, int], bytes] = {}
        for cid, wanted in by_chunk.items():
            unique = sorted(set(wanted))
            for (a, b), data in zip(unique, self.store.read_many(cid, unique)):
                fetched[(cid, a, b)] = data
        out = []
        for mine in pieces:
            data = b"".join(fetched[piece] for piece in mine)
            self.bytes_fetched += len(data)
            out.append(data)
        return out
