"""``ds.upsert(rows, key="reference_id")``: replace the row whose key matches, or append.

    >>> ds.upsert({"reference_id": "scene-7", "frames": [vidlake.read(p) for p in paths],
    ...            "metadata": {"weather": "rain"}})                # appended: no scene-7 yet
    >>> ds.upsert({"reference_id": "scene-7", "frames": [...], "metadata": {"weather": "sun"}})
    >>> len(ds), ds.metadata[0].data()
    (1, {'value': {'weather': 'sun'}})

A row must give a sample for every tensor; every tensor of the matched row is replaced. The
call is all or nothing, like an append: rows are validated and staged, then committed once
(at the end of the call, or on leaving ``with ds:``); any failure leaves the dataset (and the
in-memory view of it) as before.

On disk (``docs/FORMAT.md``, "Upsert"): a replaced row's new bytes are appended to the chunks
like any sample's, and the sample-table segment holding the row is rewritten as a new segment
(fresh id) naming the new bytes; the commit record then names the new segment instead of the
old one (which becomes garbage). Nothing else changes, so readers of format 1.0 read the result.
The replaced bytes stay in their chunks, unreferenced (compaction is a follow-up).
A tensor whose new sample is identical to the stored one (same ``sample_info``, same bytes) is
not replaced: an upsert that changes one metadata field rewrites the metadata, never the video.

Matching reads the key tensor's values once per call (a ``text`` or ``generic`` scalar tensor;
``json`` works too, compared as canonical JSON); keys must be unique among existing rows.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ..errors import DatasetError, SampleAppendError
from ..storage.provider import FileRange

if TYPE_CHECKING:  # pragma: no cover
    from ..htypes import PreparedSample
    from .dataset import Dataset
    from .tensor import Tensor

__all__ = ["same_sample", "upsert"]

_COMPARE_PIECE = 8 << 20  # bytes compared at a time when checking a sample is unchanged

Rows = Union[Mapping[str, Any], Iterable[Mapping[str, Any]]]


def _norm(value: Any) -> str:
    """A hashable canonical form of a key value."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
    elif isinstance(value, np.generic):
        value = value.item()
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def same_sample(t: Tensor, i: int, p: PreparedSample) -> bool:
    """True when prepared sample ``p`` is exactly what row ``i`` of ``t`` stores (same
    ``sample_info``, link and bytes): replacing it would only rewrite the same bytes.

        >>> same_sample(ds.videos, 0, ds.videos.spec.prepare(vidlake.read("a.mp4"), "videos", ds.videos.meta, None))
        True
    """
    e = t.entry(i)
    if e.get("info") != p.info or e.get("link") != p.link or (e.get("video") or {}) != (p.extra or {}):
        return False
    extents = [(str(c), int(o), int(n)) for c, o, n in e["data"]]
    if sum(n for _c, _o, n in extents) != len(p.data):
        return False
    pos = 0
    for cid, off, n in extents:
        for s in range(0, n, _COMPARE_PIECE):
            k = min(_COMPARE_PIECE, n - s)
            new = p.data.read(pos, pos + k) if isinstance(p.data, FileRange) else bytes(p.data[pos:pos + k])
            if t.store.read(cid, off + s, off + s + k) != new:
                return False
            pos += k
    return True


def upsert(ds: Dataset, rows: Rows, key: str = "reference_id") -> list[int]:
    """Replace or append rows by ``key``; returns the row index each row went to."""
    w = ds.writer
    w.check_writable()
    rows = [rows] if isinstance(rows, Mapping) else list(rows)
    if key not in ds.tensors:
        raise DatasetError(f"upsert key {key!r} is not a tensor of {ds.path}; tensors: {list(ds.tensors)}")
    kt = ds[key]
    save = w.savepoint()
    undo: list[Any] = []
    placed: list[int] = []
    try:
        where: dict[str, list[int]] = {}
        n = len(ds)
        for i in range(n):
            where.setdefault(_norm(kt.value(i)), []).append(i)
        for row in rows:
            if not isinstance(row, Mapping):
                raise TypeError(f"upsert takes a dict {{tensor: sample}} or a list of them, got {type(row).__name__}")
            unknown = [k for k in row if k not in ds.tensors]
            missing = [k for k in ds.tensors if k not in row]
            if unknown or missing:
                raise SampleAppendError(
                    f"an upserted row needs exactly one sample per tensor of {ds.path}; "
                    + (f"unknown: {unknown} " if unknown else "") + (f"missing: {missing}" if missing else "")
                )
            prepared = {k: ds[k].spec.prepare(v, k, ds[k].meta, ds.link_access) for k, v in row.items()}
            pk = prepared[key]
            kv = _norm(kt.spec.decode(bytes(pk.data), kt.meta))
            hits = where.get(kv, [])
            if len(hits) > 1:
                raise DatasetError(f"upsert key {key}={json.loads(kv)!r} matches rows {hits}; keys must be unique")
            if hits:
                i = hits[0]
                for k, p in prepared.items():
                    if not same_sample(ds[k], i, p):  # unchanged samples keep their bytes
                        w.stage_replacement(ds[k], i, p, undo)
            else:
                if any(len(t) != n for t in ds.tensors.values()):
                    raise DatasetError(f"{ds.path}: tensors have different lengths; upsert needs a rectangular dataset")
                for k, p in prepared.items():
                    w.stage(ds[k], p)
                i = n
                n += 1
                where[kv] = [i]
            w.check_alignment({k: i for k in prepared})
            placed.append(i)
    except BaseException:
        w.undo_replacements(undo)
        w.rollback(save)
        raise
    w.maybe_commit()
    return placed
