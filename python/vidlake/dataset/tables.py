"""A tensor's sample table, read one segment at a time (docs/DESIGN.md, "Loading large datasets").

    >>> t = ds.metadata._entries           # a SampleTable: len() needs no segment read
    >>> len(t), t.loaded_segments()
    (100000, 0)
    >>> t[70_000]["info"]                  # reads (and checks) the one segment holding row 70,000
    {'shape': [1]}
    >>> t.loaded_segments()
    1

The commit record lists each tensor's segments (``start``, ``count``, and since format 1.2 the
common ``shape`` of its rows), so ``len()``, the row -> segment mapping and the tensor's shape
need no segment read. A segment is read, parsed and checked (every entry, and its rows against
the record's summary) the first time one of its rows is touched; a damaged one raises the
``DatasetError`` naming its key then, and every time it is touched again.

Since format 2.0 the record names the first (sealed) segments through segment lists: a tree
whose leaves list segment descriptors and whose upper levels list lists, each descriptor with
its rows' common shape. A list is read (and checked) the first time a row it covers is
touched, exactly like a segment: touching a row reads the lists on its path, then its segment.

Staged rows past the committed length live in memory (``tail``); rows replaced by an upsert are
changed in their (loaded) segment. Only the dataset's writer changes a table
(``vidlake/dataset/writer.py``).
"""
from __future__ import annotations

import bisect
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DatasetError
from ..htypes import common_shape
from ..storage import _forksafe

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterator, Sequence

__all__ = ["SampleTable", "check_summary", "segment_shape"]

Entry = dict[str, Any]
T = TypeVar("T")


def segment_shape(rows: Sequence[Entry]) -> list[int | None]:
    """The summary of a segment the commit record keeps (format 1.2): the common ``info.shape``
    of its rows, ``None`` where they differ (``[None]`` when their ranks differ).

        >>> segment_shape([{"info": {"shape": [5, 120, 160, 3]}}, {"info": {"shape": [9, 120, 160, 3]}}])
        [None, 120, 160, 3]
    """
    return list(common_shape([e["info"]["shape"] for e in rows]))


def check_summary(rows: Sequence[Entry], summary: Sequence[int | None], what: str, tensor: str, start: int) -> None:
    """The rows of a segment read from ``what`` agree with the commit record's ``summary`` of
    it, else a ``DatasetError`` naming the first sample that does not (``tensor[i]``) or the
    segment. A reader reports the tensor's shape from the summaries of segments it has not
    read, so a summary that lies is damage, found when the segment is read.

        >>> check_summary([{"info": {"shape": [2]}}], [2], "ds/t/tables/ab.json", "ds/t", 0)
    """
    got = segment_shape(rows)
    want = list(summary)
    if got == want:
        return
    for k, e in enumerate(rows):
        shape = list(e["info"]["shape"])
        if (len(want) != len(shape) and want != [None]) or any(
                w is not None and w != v for w, v in zip(want, shape)):
            raise DatasetError(f"{tensor}[{start + k}] is damaged: field 'info.shape' is {shape} but the commit "
                               f"record's summary of its table segment {what} says {want}")
    raise DatasetError(f"{what} is damaged: its rows have the common shape {got}, but the commit record's "
                       f"summary of the segment says {want}")


class SampleTable:
    """The entries of one tensor's samples: committed ones read lazily by segment (found
    through the segment lists of format 2.0, also read lazily), staged ones in memory. Behaves
    as the list of entries the writer and the readers index.

    ``lists`` are the record's list descriptors (rows ``0 .. listed - 1``), ``segments`` its
    directly listed segments (rows ``listed .. committed - 1``)."""

    def __init__(self, segments: Sequence[dict[str, Any]], load: Callable[[dict[str, Any]], list[Entry]] | None,
                 tail: list[Entry] | None = None, lists: Sequence[dict[str, Any]] = (),
                 load_list: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None) -> None:
        self._load = load
        self._load_list = load_list
        self._lock = threading.Lock()
        self._set_segments(segments, {}, lists, {})
        self.tail: list[Entry] = list(tail or [])
        _forksafe.register(self)

    def _after_fork_in_child(self) -> None:
        # a parent thread may have held the lock at the fork, mid-read of a segment: that
        # segment is simply not loaded in the child, which reads it again on first use
        self._lock = threading.Lock()

    def _set_segments(self, segments: Sequence[dict[str, Any]], loaded: dict[str, list[Entry]],
                      lists: Sequence[dict[str, Any]] = (),
                      nodes: dict[str, tuple[list[dict[str, Any]], list[int]]] | None = None) -> None:
        self.lists = [dict(d) for d in lists]
        self._list_starts = [int(d["start"]) for d in self.lists]
        self.listed = (int(self.lists[-1]["start"]) + int(self.lists[-1]["count"])) if self.lists else 0
        self.segments = [dict(s) for s in segments]
        self._starts = [int(s["start"]) for s in self.segments]
        self.committed = (int(self.segments[-1]["start"]) + int(self.segments[-1]["count"])) if self.segments \
            else self.listed
        self._rows: dict[str, list[Entry]] = loaded
        #: list id -> (its entries, their starts): the segment lists read so far (2.0)
        self._nodes: dict[str, tuple[list[dict[str, Any]], list[int]]] = nodes if nodes is not None else {}

    # -- segments ----------------------------------------------------------------------------
    def loaded_segments(self) -> int:
        """How many committed segments are in memory (read so far, or written by this process)."""
        return len(self._rows)

    def loaded_lists(self) -> int:
        """How many segment lists (format 2.0) are in memory (read so far, or written here)."""
        return len(self._nodes)

    def segment_of(self, i: int) -> int:
        """The position in :attr:`segments` (the directly listed ones) of the segment holding
        committed row ``i`` (``listed <= i``; rows before are found through :attr:`lists`)."""
        return bisect.bisect_right(self._starts, i) - 1

    def list_entries(self, desc: dict[str, Any]) -> list[dict[str, Any]]:
        """The entries of the segment list ``desc`` names (read and checked on first use)."""
        got = self._nodes.get(desc["id"])
        if got is None:
            if self._load_list is None:  # pragma: no cover -- a table without storage has no lists
                raise DatasetError(f"segment list {desc['id']} is not loaded and there is no storage to read it from")
            load_list = self._load_list

            def read() -> tuple[list[dict[str, Any]], list[int]]:
                entries = load_list(desc)
                return entries, [int(e["start"]) for e in entries]
            got = self._read_once(self._nodes, desc["id"], read)
        return got[0]

    def remember_list(self, desc: dict[str, Any], entries: list[dict[str, Any]]) -> None:
        """Keep the (checked, or just written) entries of a segment list."""
        self._nodes.setdefault(desc["id"], (entries, [int(e["start"]) for e in entries]))

    def segment_at(self, i: int) -> dict[str, Any]:
        """The descriptor of the segment holding committed row ``i``: through the lists on its
        path (each read on first use) when ``i < listed``."""
        if i >= self.listed:
            return self.segments[bisect.bisect_right(self._starts, i) - 1]
        d = self.lists[bisect.bisect_right(self._list_starts, i) - 1]
        for _ in range(int(d["level"])):  # the record checked levels fall by one per step
            self.list_entries(d)
            entries, starts = self._nodes[d["id"]]
            d = entries[bisect.bisect_right(starts, i) - 1]
        return d

    def _seg_rows(self, seg: dict[str, Any]) -> list[Entry]:
        rows = self._rows.get(seg["id"])
        if rows is None:
            if self._load is None:  # pragma: no cover -- a table without storage has no segments
                raise DatasetError(f"segment {seg['id']} is not loaded and there is no storage to read it from")
            load = self._load
            rows = self._read_once(self._rows, seg["id"], lambda: load(seg))
        return rows

    def _read_once(self, cache: dict[str, T], key: str, read: Callable[[], T]) -> T:
        """``cache[key]``, read under the table's lock if no other thread has read it meanwhile
        (so concurrent first touches of one segment or list read it once)."""
        with self._lock:
            got = cache.get(key)
            if got is None:
                got = cache[key] = read()
        return got

    def rows_of(self, k: int) -> list[Entry]:
        """The entries of directly listed segment ``k`` (read and checked on first use)."""
        return self._seg_rows(self.segments[k])

    def iter_segments(self) -> Iterator[dict[str, Any]]:
        """Every committed segment's descriptor in row order (reading every segment list)."""
        def walk(d: dict[str, Any], level: int) -> Iterator[dict[str, Any]]:
            if level == 0:
                yield d
                return
            for e in self.list_entries(d):
                yield from walk(e, level - 1)
        for d in self.lists:
            yield from walk(d, int(d["level"]))
        yield from self.segments

    def load_all(self) -> None:
        """Read every segment (and segment list) not read yet (what an eager load did)."""
        for seg in self.iter_segments():
            self._seg_rows(seg)

    def commit(self, segments: Sequence[dict[str, Any]], written: dict[str, list[Entry]],
               lists: Sequence[dict[str, Any]] = (), written_lists: dict[str, list[dict[str, Any]]] | None = None,
               gone: set[str] | frozenset[str] = frozenset()) -> None:
        """After a commit: the new committed layout; ``written`` holds the rows of the segments
        this commit wrote (every staged row is in one of them), ``written_lists`` the entries of
        the segment lists it wrote, ``gone`` the ids of the segments and lists it replaced or
        merged away (dropped from memory). Everything else read so far is kept."""
        loaded = {sid: rows for sid, rows in self._rows.items() if sid not in gone}
        loaded.update(written)
        nodes = {lid: v for lid, v in self._nodes.items() if lid not in gone}
        self._set_segments(segments, loaded, lists, nodes)
        for lid, entries in (written_lists or {}).items():
            self._nodes[lid] = (entries, [int(e["start"]) for e in entries])
        self.tail = []

    # -- the list the writer and readers use ------------------------------------------------
    def __len__(self) -> int:
        return self.committed + len(self.tail)

    def _norm(self, i: int) -> int:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sample index {i} out of range for {n} samples")
        return i

    def __getitem__(self, i: Any) -> Any:
        if type(i) is int and self.listed <= i < self.committed:  # the common case, first
            k = bisect.bisect_right(self._starts, i) - 1
            rows = self._rows.get(self.segments[k]["id"])
            return (rows if rows is not None else self.rows_of(k))[i - self._starts[k]]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = self._norm(int(i))
        if i >= self.committed:
            return self.tail[i - self.committed]
        seg = self.segment_at(i)
        return self._seg_rows(seg)[i - int(seg["start"])]

    def __setitem__(self, i: int, entry: Entry) -> None:
        i = self._norm(int(i))
        if i >= self.committed:
            self.tail[i - self.committed] = entry
            return
        seg = self.segment_at(i)
        self._seg_rows(seg)[i - int(seg["start"])] = entry

    def __delitem__(self, s: slice) -> None:
        """Only staged rows are ever dropped (a rollback): ``del table[n:]`` with ``n`` at or past
        the committed length."""
        if not isinstance(s, slice) or s.step not in (None, 1) or s.stop is not None:
            raise TypeError("only del table[n:] (dropping staged rows) is supported")
        n = len(self) if s.start is None else s.start
        if n < self.committed:
            raise ValueError(f"cannot drop committed rows ({n} < {self.committed})")
        del self.tail[n - self.committed:]

    def append(self, entry: Entry) -> None:
        self.tail.append(entry)

    def pop(self) -> Entry:
        """Take back the last staged row."""
        if not self.tail:
            raise IndexError("no staged row to pop")
        return self.tail.pop()

    def __iter__(self) -> Iterator[Entry]:
        for seg in self.iter_segments():
            yield from self._seg_rows(seg)
        yield from self.tail

    # -- summaries ---------------------------------------------------------------------------
    def shapes(self) -> list[Sequence[int | None]]:
        """A list of shapes whose common shape is the tensor's sample shape: the record's
        summary of each segment (or segment list) not read yet (read it when there is none: a
        segment written before format 1.2), the rows of the others, and the staged rows. A list
        not read yet holds no segment read yet, so its summary stands for its rows."""
        out: list[Sequence[int | None]] = []

        def add(d: dict[str, Any], level: int) -> None:
            if level == 0:
                rows = self._rows.get(d["id"])
                if rows is None and d.get("shape") is not None:
                    out.append(d["shape"])
                else:
                    out.extend(e["info"]["shape"] for e in (rows if rows is not None else self._seg_rows(d)))
            elif d["id"] not in self._nodes and d.get("shape") is not None:
                out.append(d["shape"])
            else:
                for e in self.list_entries(d):
                    add(e, level - 1)
        for d in self.lists:
            add(d, int(d["level"]))
        for s in self.segments:
            add(s, 0)
        out.extend(e["info"]["shape"] for e in self.tail)
        return out
