"""The metadata index of a scene dataset: field conditions answered without a scan.

    >>> idx = MetadataIndex([{"weather": "rain", "speed": 3}, {"weather": "sun", "speed": 9}])
    >>> idx.query({"weather": "rain"}), idx.query({"speed": {">": 5}})
    ([0], [1])

One :class:`FieldIndex` per queried field (a dotted path ``"camera.id"`` reaches into nested
dicts), built on its first query from the rows' metadata (one pass) and kept up to date as
rows are appended, updated or deleted: equality and ``in`` are hash lookups, ranges are bisections of
the field's sorted numbers (or strings), so a query costs O(log n + matches), not O(n).
The index lives in memory; the metadata itself is the dataset's ``metadata`` json tensor.
"""
from __future__ import annotations

import bisect
import json
from typing import Any, Callable

from .items import SceneError

__all__ = ["OPERATORS", "ItemIndex", "MetadataIndex"]

_MISSING = object()
#: condition operators of :meth:`MetadataIndex.query`
OPERATORS = ("==", "!=", ">", ">=", "<", "<=", "in", "not in", "exists")


def field_value(md: Any, field: str) -> Any:
    v = md
    for part in field.split("."):
        if not isinstance(v, dict) or part not in v:
            return _MISSING
        v = v[part]
    return v


def _key(v: Any) -> Any:
    """Hashable equality key: numbers compare by value (1 == 1.0), bools apart from numbers."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", float(v))
    if isinstance(v, str):
        return ("s", v)
    return ("j", json.dumps(v, sort_keys=True, separators=(",", ":")))


def _ordered(v: Any) -> tuple[str, Any] | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return ("n", float(v))
    if isinstance(v, str):
        return ("s", v)
    return None


class FieldIndex:
    """Rows by value of one field: a hash map for equality, sorted lists for ranges."""

    def __init__(self, field: str, universe: Callable[[], set[int]] | None = None) -> None:
        self.field = field
        #: every live row (for ``{"exists": False}``)
        self.universe: Callable[[], set[int]] = universe or set
        self.eq: dict[Any, set[int]] = {}
        self.sorted: dict[str, list[tuple[Any, int]]] = {"n": [], "s": []}
        self.present: set[int] = set()

    def _note(self, row: int, md: Any) -> Any:
        """Record ``row`` as present and under its value; its ordered key (or None) for
        ``sorted``, which the caller inserts."""
        v = field_value(md, self.field)
        if v is _MISSING:
            return None
        self.present.add(row)
        self.eq.setdefault(_key(v), set()).add(row)
        return _ordered(v)

    def add(self, row: int, md: Any) -> None:
        o = self._note(row, md)
        if o is not None:
            bisect.insort(self.sorted[o[0]], (o[1], row))

    def add_many(self, rows: Any) -> None:
        """:meth:`add` for many ``(row, metadata)`` pairs: one sort at the end instead of an
        insertion per row (building a field's index over 100k rows: O(n log n), not O(n^2))."""
        for row, md in rows:
            o = self._note(row, md)
            if o is not None:
                self.sorted[o[0]].append((o[1], row))
        for lst in self.sorted.values():
            lst.sort()

    def remove(self, row: int, md: Any) -> None:
        v = field_value(md, self.field)
        if v is _MISSING:
            return
        self.present.discard(row)
        rows = self.eq.get(_key(v))
        if rows is not None:
            rows.discard(row)
            if not rows:
                del self.eq[_key(v)]
        o = _ordered(v)
        if o is not None:
            lst = self.sorted[o[0]]
            k = bisect.bisect_left(lst, (o[1], row))
            if k < len(lst) and lst[k] == (o[1], row):
                del lst[k]

    def match(self, op: str, arg: Any) -> set[int]:
        if op == "==":
            return set(self.eq.get(_key(arg), ()))
        if op == "!=":
            return self.present - self.eq.get(_key(arg), set())
        if op in ("in", "not in"):
            if not isinstance(arg, (list, tuple, set, frozenset)):
                raise SceneError(f"metadata condition {self.field!r} {op!r} takes a list, got {arg!r}")
            hit: set[int] = set()
            for a in arg:
                hit |= self.eq.get(_key(a), set())
            return hit if op == "in" else self.present - hit
        if op == "exists":
            return set(self.present) if arg else self.universe() - self.present
        o = _ordered(arg)
        if o is None:
            raise SceneError(f"metadata condition {self.field!r} {op!r} compares numbers or strings, got {arg!r}")
        lst = self.sorted[o[0]]
        lo, hi = 0, len(lst)
        if op == ">":
            lo = bisect.bisect_right(lst, (o[1], 1 << 62))
        elif op == ">=":
            lo = bisect.bisect_left(lst, (o[1], -1))
        elif op == "<":
            hi = bisect.bisect_left(lst, (o[1], -1))
        elif op == "<=":
            hi = bisect.bisect_right(lst, (o[1], 1 << 62))
        else:
            raise SceneError(f"unknown metadata operator {op!r}; use one of {', '.join(OPERATORS)}")
        return {r for _v, r in lst[lo:hi]}


class MetadataIndex:
    """Metadata of every row, plus lazily built :class:`FieldIndex` es (module docstring).
    Rows may be deleted (:meth:`delete`: the item index renumbers a scene's items that way);
    a deleted row matches nothing."""

    def __init__(self, values: list[dict[str, Any]]) -> None:
        self.values: list[Any] = values
        self.fields: dict[str, FieldIndex] = {}
        self.deleted: set[int] = set()

    def live(self) -> set[int]:
        """Every row not deleted."""
        return set(range(len(self.values))) - self.deleted

    def set(self, row: int, md: dict[str, Any]) -> None:
        """Row ``row`` (an existing one, or ``len(values)`` for a new one) now has ``md``."""
        old = self.values[row] if row < len(self.values) else None
        for fi in self.fields.values():
            if old is not None:
                fi.remove(row, old)
            fi.add(row, md)
        if row < len(self.values):
            self.values[row] = md
            self.deleted.discard(row)
        else:
            self.values.append(md)

    def delete(self, row: int) -> None:
        """Row ``row`` is gone: it matches no condition any more (its number is not reused)."""
        if row in self.deleted or row >= len(self.values):
            return
        for fi in self.fields.values():
            fi.remove(row, self.values[row])
        self.values[row] = None
        self.deleted.add(row)

    def field(self, name: str) -> FieldIndex:
        fi = self.fields.get(name)
        if fi is None:
            fi = FieldIndex(name, self.live)
            fi.add_many((row, md) for row, md in enumerate(self.values) if row not in self.deleted)
            self.fields[name] = fi
        return fi

    def query(self, conditions: dict[str, Any]) -> list[int]:
        """Rows matching every condition, in row order. A condition is a value (equality) or a
        dict ``{operator: value}`` with operators ``== != > >= < <= in "not in" exists``
        (``{"exists": False}``: rows without the field)."""
        result: set[int] | None = None
        for name, cond in conditions.items():
            if not isinstance(name, str) or not name:
                raise SceneError(f"a metadata field name is a non-empty string, got {name!r}")
            fi = self.field(name)
            ops = cond.items() if isinstance(cond, dict) and cond and all(k in OPERATORS for k in cond) \
                else [("==", cond)]
            for op, arg in ops:
                hit = fi.match(op, arg)
                result = hit if result is None else result & hit
                if not result:
                    return []
        if result is None:
            return sorted(self.live())
        return sorted(result)


class ItemIndex:
    """The per-frame item metadata of every scene, indexed like scene metadata: each item is
    one row of a :class:`MetadataIndex` (numbered in the order items were added), mapped to
    ``(scene row, frame, item reference id)``. Replacing a scene's items deletes its old rows
    and adds new ones, so appends and updates cost O(items of that scene), never a rebuild.

        >>> idx = ItemIndex()
        >>> idx.set_scene(0, ["a-0", "a-1"], [{"car": 1}, {"car": 3}])
        >>> idx.query({"car": {">": 2}})
        [(0, 1, 'a-1')]
    """

    def __init__(self) -> None:
        self.md = MetadataIndex([])
        self.where: list[tuple[int, int, str]] = []   # item row -> (scene row, frame, item id)
        self.rows_of: dict[int, list[int]] = {}         # scene row -> its item rows

    def set_scene(self, row: int, ids: list[str], mds: list[dict[str, Any]]) -> None:
        """Scene ``row`` now has items ``ids`` with metadata ``mds`` (in frame order)."""
        for r in self.rows_of.pop(row, ()):
            self.md.delete(r)
        rows = []
        for k, (ref, md) in enumerate(zip(ids, mds)):
            r = len(self.where)
            self.where.append((row, k, ref))
            self.md.set(r, md if isinstance(md, dict) else {})
            rows.append(r)
        if rows:
            self.rows_of[row] = rows

    def query(self, conditions: dict[str, Any]) -> list[tuple[int, int, str]]:
        """``(scene row, frame, item reference id)`` of the items matching every condition
        (:meth:`MetadataIndex.query`'s language), ordered by scene row then frame."""
        return sorted(self.where[r] for r in self.md.query(conditions))
