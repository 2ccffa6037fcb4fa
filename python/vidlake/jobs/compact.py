"""Compaction: reclaim the bytes of rows replaced by ``ds.upsert`` or scene updates.

    >>> stats = vidlake.jobs.compact(ds)
    >>> stats["videos"]
    {'chunks': 3, 'victims': 2, 'rows_moved': 5, 'bytes_moved': 1843200, 'bytes_freed': 4194304}

A replaced sample's old bytes stay in their chunk, named by nobody (``docs/FORMAT.md``,
"Upsert"). For each tensor, compaction finds the chunks whose dead share (bytes no live entry
names) is at least ``min_dead``, moves the live samples out of them
(their bytes and packet indexes are staged again, exactly as an upsert of the same sample),
and commits once (an emptied open chunk is replaced by a new one), listing the emptied chunks in the commit record's ``garbage``: the first
commit at least ``GC_GRACE_SECONDS`` later deletes them (readers of the older record have that
long to finish). Crash safety is the commit protocol's: until the commit record is replaced,
nothing it names has changed, so a crash (or an error) mid-compaction leaves the dataset as it
was; after it, every row reads the same bytes from their new place.

Compaction is refused (:class:`vidlake.JobRunningError`) while any job of the dataset holds a
live lease (``lease.py``): chunks a pool or Ray job's workers staged and it has not committed
yet are named by nobody, like garbage. It checks before it starts and again inside its commit.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import DatasetError, StorageError
from ..format import records as fmt
from ..htypes import PreparedSample
from .lease import check_no_running_jobs

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from ..dataset import Dataset

__all__ = ["compact", "dead_bytes"]


def _live(t: Any) -> tuple[dict[str, int], dict[str, set[int]]]:
    live: dict[str, int] = {}
    rows: dict[str, set[int]] = {}
    for i in range(len(t)):
        e = t.entry(i)
        for cid, _off, n in list(e.get("data", [])) + list(e.get("index", [])) + list(e.get("original", [])):
            live[str(cid)] = live.get(str(cid), 0) + int(n)
            rows.setdefault(str(cid), set()).add(i)
    return live, rows


def dead_bytes(ds: Dataset) -> dict[str, int]:
    """Bytes in each tensor's chunks that no live entry names (what compaction could free).

        >>> vidlake.jobs.dead_bytes(ds)
        {'videos': 1843200, 'metadata': 310}
    """
    out: dict[str, int] = {}
    for name, t in ds.tensors.items():
        live, _rows = _live(t)
        total = 0
        for key in ds.provider.list(f"{name}/chunks/"):
            if not fmt.is_chunk_key(key):
                continue
            cid = key.rsplit("/", 1)[1]
            size = ds.provider.size(key)
            oc: Any = t._committed_open_chunk
            if oc and oc[0] == cid:
                size = min(size, int(oc[1]))
            total += max(0, size - live.get(cid, 0))
        out[name] = total
    return out


def compact(ds: Dataset, tensors: Sequence[str] | None = None, min_dead: float = 0.25) -> dict[str, dict[str, int]]:
    """Move live samples out of chunks that are at least ``min_dead`` dead, then commit once;
    the emptied chunks are deleted after the grace period (module docstring). Returns per
    tensor: chunks, victims, rows_moved, bytes_moved, bytes_freed (the victims' sizes).

        >>> vidlake.jobs.compact(ds)["videos"]["bytes_freed"]
        4194304
    """
    w = ds.writer
    w.check_writable()
    if ds._depth or w.pending_bytes():
        raise DatasetError(f"{ds.path}: compact() commits on its own; call it outside `with ds:` with nothing staged")
    if not 0.0 < min_dead <= 1.0:
        raise ValueError(f"min_dead is a fraction in (0, 1], got {min_dead}")
    check_no_running_jobs(ds, "compaction")
    names = list(tensors) if tensors is not None else list(ds.tensors)
    stats: dict[str, dict[str, int]] = {}
    victims_keys: list[str] = []
    undo: list[Any] = []
    save = w.savepoint()
    try:
        for name in names:
            t = ds[name]
            live, rows = _live(t)
            oc: Any = t._committed_open_chunk
            st = {"chunks": 0, "victims": 0, "rows_moved": 0, "bytes_moved": 0, "bytes_freed": 0}
            victims: list[str] = []
            for key in ds.provider.list(f"{name}/chunks/"):
                if not fmt.is_chunk_key(key):
                    continue
                st["chunks"] += 1
                cid = key.rsplit("/", 1)[1]
                size = ds.provider.size(key)
                if oc and oc[0] == cid:
                    size = min(size, int(oc[1]))  # past the committed size: an old writer's garbage
                if size and (size - live.get(cid, 0)) / size >= min_dead:
                    victims.append(cid)
                    st["bytes_freed"] += ds.provider.size(key)
                    if oc and oc[0] == cid:
                        w.close_open_chunk(t)  # moved rows must not land in it again
            moved = sorted(set().union(*(rows.get(c, set()) for c in victims))) if victims else []
            for i in moved:
                e = t.entry(i)
                data = t.store.read_extents([(str(c), int(o), int(n)) for c, o, n in e.get("data", [])])
                index = t.store.read_extents([(str(c), int(o), int(n)) for c, o, n in e["index"]]) \
                    if "index" in e else None
                p = PreparedSample(data, dict(e["info"]), index, dict(e.get("video") or {}), e.get("link"))
                if "original" in e:  # a re-encoded video's kept original moves with it
                    p.original = t.store.read_extents([(str(c), int(o), int(n)) for c, o, n in e["original"]])
                w.stage_replacement(t, i, p, undo)
                st["bytes_moved"] += len(data) + len(index or b"")
            st["rows_moved"] = len(moved)
            st["victims"] = len(victims)
            victims_keys += [fmt.chunk_key(name, c) for c in victims]
            stats[name] = st

        def hook(meta: dict[str, Any]) -> None:
            # again under the commit lock, which a job takes its lease under: a job that
            # started meanwhile may have staged chunks nobody names yet
            check_no_running_jobs(ds, "compaction")
            now = time.time()
            meta.setdefault("garbage", []).extend([k, now] for k in victims_keys)

        w.commit_hooks.append(hook)
        try:
            if any(s["rows_moved"] for s in stats.values()):
                w.commit()
            elif victims_keys:  # only dead chunks: a commit of the record alone lists them
                try:
                    w.update_meta(hook)
                except (OSError, StorageError) as e:
                    raise StorageError(f"compacting {ds.path} failed, the dataset is unchanged: {e}") from e
        finally:
            w.commit_hooks.remove(hook)
    except BaseException:
        w.undo_replacements(undo)
        w.rollback(save)
        raise
    return stats
