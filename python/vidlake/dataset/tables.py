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

Staged rows past the committed length live in memory (``tail``); rows replaced by an upsert are
changed in their (loaded) segment. Only the dataset's writer changes a table
(``vidlake/dataset/writer.py``).
"""
from __future__ import annotations

import bisect
import threading
from typing import TYPE_CHECKING, Any

from ..errors import DatasetError
from ..htypes import common_shape
from ..storage import _forksafe

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterator, Sequence

__all__ = ["SampleTable", "check_summary", "segment_shape"]

Entry = dict[str, Any]


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
    """The entries of one tensor's samples: committed ones read lazily by segment, staged ones
    in memory. Behaves as the list of entries the writer and the readers index."""

    def __init__(self, segments: Sequence[dict[str, Any]], load: Callable[[dict[str, Any]], list[Entry]] | None,
                 tail: list[Entry] | None = None) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._set_segments(segments, {})
        self.tail: list[Entry] = list(tail or [])
        _forksafe.register(self)

    def _after_fork_in_child(self) -> None:
        # a parent thread may have held the lock at the fork, mid-read of a segment: that
        # segment is simply not loaded in the child, which reads it again on first use
        self._lock = threading.Lock()

    def _set_segments(self, segments: Sequence[dict[str, Any]], loaded: dict[str, list[Entry]]) -> None:
        self.segments = [dict(s) for s in segments]
        self._starts = [int(s["start"]) for s in self.segments]
        self.committed = (int(self.segments[-1]["start"]) + int(self.segments[-1]["count"])) if self.segments else 0
        self._rows: dict[str, list[Entry]] = loaded

    # -- segments ----------------------------------------------------------------------------
    def loaded_segments(self) -> int:
        """How many committed segments are in memory (read so far, or written by this process)."""
        return len(self._rows)

    def segment_of(self, i: int) -> int:
        """The position in :attr:`segments` of the segment holding committed row ``i``."""
        return bisect.bisect_right(self._starts, i) - 1

    def rows_of(self, k: int) -> list[Entry]:
        """The entries of segment ``k`` (read and checked on first use)."""
        seg = self.segments[k]
        rows = self._rows.get(seg["id"])
        if rows is None:
            if self._load is None:  # pragma: no cover -- a table without storage has no segments
                raise DatasetError(f"segment {seg['id']} is not loaded and there is no storage to read it from")
            with self._lock:
                rows = self._rows.get(seg["id"])
                if rows is None:
                    rows = self._load(seg)
                    self._rows[seg["id"]] = rows
        return rows

    def load_all(self) -> None:
        """Read every segment not read yet (what an eager load did)."""
        for k in range(len(self.segments)):
            self.rows_of(k)

    def commit(self, segments: Sequence[dict[str, Any]], written: dict[str, list[Entry]]) -> None:
        """After a commit: the new committed layout; ``written`` holds the rows of the segments
        this commit wrote (every staged row is in one of them). Kept segments keep their rows."""
        ids = {s["id"] for s in segments}
        loaded = {sid: rows for sid, rows in self._rows.items() if sid in ids}
        loaded.update(written)
        self._set_segments(segments, loaded)
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
        if type(i) is int and 0 <= i < self.committed:  # the common case, first
            k = bisect.bisect_right(self._starts, i) - 1
            rows = self._rows.get(self.segments[k]["id"])
            return (rows if rows is not None else self.rows_of(k))[i - self._starts[k]]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = self._norm(int(i))
        if i >= self.committed:
            return self.tail[i - self.committed]
        k = self.segment_of(i)
        return self.rows_of(k)[i - self._starts[k]]

    def __setitem__(self, i: int, entry: Entry) -> None:
        i = self._norm(int(i))
        if i >= self.committed:
            self.tail[i - self.committed] = entry
            return
        k = self.segment_of(i)
        self.rows_of(k)[i - self._starts[k]] = entry

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
        for k in range(len(self.segments)):
            yield from self.rows_of(k)
        yield from self.tail

    # -- summaries ---------------------------------------------------------------------------
    def shapes(self) -> list[Sequence[int | None]]:
        """A list of shapes whose common shape is the tensor's sample shape: the record's
        summary of each segment not read yet (read it when the record has none: a segment
        written before format 1.2), the rows of the others, and the staged rows."""
        out: list[Sequence[int | None]] = []
        for k, seg in enumerate(self.segments):
            rows = self._rows.get(seg["id"])
            if rows is None and seg.get("shape") is not None:
                out.append(seg["shape"])
            else:
                out.extend(e["info"]["shape"] for e in (rows if rows is not None else self.rows_of(k)))
        out.extend(e["info"]["shape"] for e in self.tail)
        return out
