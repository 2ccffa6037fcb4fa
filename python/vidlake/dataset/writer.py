"""The write path of a dataset, in one place: validation order, staging, savepoints, rollback,
the cross-tensor rules (``aligned_to``) and the commit protocol.

    >>> with ds:                          # appends are staged ...
    ...     ds.videos.append(vidlake.read("a.mp4"))
    ...     ds.labels.append(1)
    >>> # ... and committed on exit: chunks, then table segments, then the commit record

How an append stays atomic (details in ``docs/FORMAT.md``): each sample is validated and
indexed in memory first (its htype's ``prepare``); staging then places its bytes in the
tensor's chunks (appended after the committed end of the open chunk, or in new chunk objects:
on local disk written to temporary files as they are staged). A commit writes the chunk bytes,
then immutable sample-table segments, and last replaces ``dataset_meta.json`` atomically.
Nothing refers to the new bytes until that last step, so a failure or a SIGKILL at any earlier
point leaves the previous dataset; a failure inside a call rolls the in-memory state back to
the savepoint taken at its start. Outside ``with ds:`` every append commits at once; inside,
appends are batched and committed on exit (or when more than ``flush_threshold`` bytes wait).

Only this module changes a tensor's staging fields (``_entries`` past ``_committed_len``,
``_open_chunk``, ``_replaced``) and the dataset's commit record.
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import ConcurrentWriteError, ReadOnlyError, SampleAppendError, StorageError
from ..format import records as fmt
from ..format.chunks import place
from ..htypes import PreparedSample, lookup
from ..storage.provider import FileRange
from .tables import segment_shape
from .tensor import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterable, Mapping

    from .dataset import Dataset

__all__ = ["GC_GRACE_SECONDS", "Writer"]

#: how long a writer waits for another's commit lock (``VIDLAKE_LOCK_TIMEOUT`` seconds)
DEFAULT_LOCK_TIMEOUT = 60.0
_INDEX_WORKERS = 8  # threads building the packet indexes of one extend() (see prepare_rows)
#: merged-away table segments are deleted only this long after they left the commit record,
#: so a reader that read the old record has time to read them
GC_GRACE_SECONDS = 30.0
#: table segments are merged (binary counter) only up to this many rows: a commit then rewrites
#: at most this many entries, however large the tensor (appending sample 100,001 costs what
#: sample 1 did), and an update rewrites one segment of at most this many rows
MAX_SEGMENT_ROWS = 4096


def lock_timeout() -> float:
    """Seconds a commit waits for the dataset's commit lock (``VIDLAKE_LOCK_TIMEOUT``, default 60)."""
    try:
        return max(0.0, float(os.environ.get("VIDLAKE_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT)))
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT


class Writer:
    """Every change to one dataset goes through its writer (``ds.writer``)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        #: tensors created since the last commit (inside ``with ds:``): part of the next commit
        self._new_tensors: list[str] = []
        #: called with the new commit record inside every commit, before it is written (so
        #: what they add is atomic with the rows; ingestion jobs record their progress here)
        self.commit_hooks: list[Callable[[dict[str, Any]], None]] = []

    def check_writable(self) -> None:
        """``ReadOnlyError`` when the dataset was opened read-only."""
        if self.ds.read_only:
            raise ReadOnlyError(f"dataset {self.ds.path} is opened read-only; "
                                "open it with vidlake.load(path, read_only=False) to write")

    def create_tensor(self, name: str, tmeta: dict[str, Any]) -> Tensor:
        """Write a new tensor's meta; the commit record that makes it exist is written now, or,
        inside ``with ds:``, by the block's commit: a tensor created in a block whose writes are
        rolled back (``ds.rollback()``) never appears."""
        self.check_writable()
        self.ds.provider.put(fmt.tensor_meta_key(name), fmt.encode_json(tmeta))
        t = Tensor(self.ds, name, tmeta, [], None)
        self.ds._tensors[name] = t
        self._new_tensors.append(name)
        if self.ds._depth == 0:
            self.commit()  # on failure rollback_all() has taken the tensor back out
        return t

    def update_meta(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Commit a change of the commit record alone (e.g. a creds key name), refused when
        another writer committed since this dataset was loaded."""
        self.check_writable()
        p = self.ds.provider
        with p.commit_lock(lock_timeout()):
            raw, tag = p.get_tagged(fmt.DATASET_META_KEY)
            cur = fmt.decode_dataset_meta(raw, self.ds.path)
            if cur["generation"] != self.ds._meta["generation"]:
                raise ConcurrentWriteError(f"{self.ds.path} was changed by another writer since it was loaded; "
                                           "reload it")
            meta = copy.deepcopy(self.ds._meta)
            meta["generation"] += 1
            change(meta)
            p.put_if_tag(fmt.DATASET_META_KEY, fmt.encode_json(meta), tag)
        self.ds._meta = meta

    def maybe_commit(self) -> None:
        """Commit now unless inside ``with ds:`` (and under ``flush_threshold`` bytes)."""
        if self.ds._depth == 0 or self.pending_bytes() > self.ds.flush_threshold:
            self.commit()

    def append_rows(self, rows: Iterable[dict[str, Any]], only: list[str] | None,
                     skip_ok: bool = False) -> None:
        """Validate, stage and (outside ``with``) commit rows; on any failure the rows of this
        call are dropped and the dataset is as before."""
        self.check_writable()
        rows = list(rows)
        save = self.savepoint()
        try:
            for row in rows:
                unknown = [k for k in row if k not in self.ds._tensors]
                if unknown:
                    raise SampleAppendError(f"no tensor(s) {unknown} in {self.ds.path}; tensors: {list(self.ds._tensors)}")
                if only is None and not skip_ok:
                    missing = [k for k in self.ds._tensors if k not in row]
                    if missing:
                        raise SampleAppendError(
                            f"the row has no sample for tensor(s) {missing}; pass skip_ok=True to leave them out"
                        )
            for row, prepared in zip(rows, self.prepare_rows(rows)):
                for k, p in prepared.items():
                    self.stage(self.ds._tensors[k], p)
                self.check_alignment({k: len(self.ds._tensors[k]._entries) - 1 for k in row})
        except BaseException:
            self.rollback(save)
            raise
        self.maybe_commit()

    def prepare_rows(self, rows: list[dict[str, Any]]):
        """Yield each row's prepared samples, in order. Video samples are indexed on a thread
        pool (the core releases the GIL while it demuxes), so an extend of many files builds
        their packet indexes in parallel; the first failing row, in row order, raises."""
        def prep(k: str, v: Any) -> PreparedSample:
            t = self.ds._tensors[k]
            return t.spec.prepare(v, k, t.meta, self.ds.link_access)

        videos = [(i, k) for i, row in enumerate(rows) for k in row if self.ds._tensors[k].spec.video and not self.ds._tensors[k].spec.linked]
        cores = os.cpu_count() or 1
        # on local disk the calling thread copies each staged sample's bytes into its chunk
        # meanwhile (ChunkStore.write): the pool leaves it one core (measured, 2 cores, 50
        # files: 28 ms with one index thread beside the copying one, 46 ms with two)
        copying = getattr(self.ds.provider, "begin_write", None) is not None
        workers = min(len(videos), max(1, cores - 1) if copying else cores, _INDEX_WORKERS)
        if len(videos) < 2 or cores < 2:
            for row in rows:
                yield {k: prep(k, v) for k, v in row.items()}
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidlake-index") as pool:
            futures = {(i, k): pool.submit(prep, k, rows[i][k]) for i, k in videos}
            try:
                for i, row in enumerate(rows):
                    yield {k: futures[(i, k)].result() if (i, k) in futures else prep(k, v)
                           for k, v in row.items()}
            finally:
                for f in futures.values():
                    f.cancel()

    def stage(self, t: Tensor, p: PreparedSample) -> None:
        """Place a prepared sample's bytes (and index) in the tensor's chunks, in memory."""
        maximum = int(t.meta["max_chunk_size"])
        target = int(t.meta["target_chunk_size"])

        # A writer without an exclusive commit lock never appends to a chunk that is already
        # committed (another writer may be appending to it too): its first sample of each commit
        # opens a new chunk (Note [Commit under the lock]).
        shared = not self.ds.provider.exclusive_commits

        def put(data: bytes | FileRange) -> list[list[Any]]:
            oc: Any = None if shared and t._open_chunk == t._committed_open_chunk else t._open_chunk
            extents = place(oc, len(data), target, maximum, fmt.new_id)
            view = data if isinstance(data, FileRange) else memoryview(data)
            pos = 0
            for cid, off, n in extents:
                piece = view.slice(pos, pos + n) if isinstance(view, FileRange) else view[pos:pos + n]
                t.store.write((cid, off, n), piece)
                pos += n
            last = extents[-1]
            t._open_chunk = (last[0], last[1] + last[2])
            return [list(e) for e in extents]

        entry: dict[str, Any] = {"data": put(p.data) if len(p.data) else [], "info": p.info}
        if p.index is not None:
            entry["index"] = put(p.index)
        if p.extra:
            entry["video"] = p.extra
        if p.link is not None:
            entry["link"] = p.link
        if p.original is not None:  # a re-encoded video's file as appended (keep_original=True)
            entry["original"] = put(p.original)
        t._entries.append(entry)

    def close_open_chunk(self, t: Tensor) -> None:
        """Make the next sample staged in ``t`` open a new chunk (compaction empties the open
        chunk too); a rollback to an earlier savepoint restores the open chunk."""
        t._open_chunk = None

    def stage_entry(self, t: Tensor, entry: dict[str, Any]) -> None:
        """Stage a row whose bytes another process already wrote into chunk objects of their
        own (fresh ids, named by nobody until this commit): ingestion workers (``vidlake/jobs``)
        index files and stage chunks in parallel, and the committer only adds their entries."""
        t._entries.append(entry)

    def pending_bytes(self) -> int:
        return sum(t.store.pending_bytes() for t in self.ds._tensors.values())

    def savepoint(self) -> dict[str, tuple[int, Any, dict[str, int]]]:
        return {name: (len(t._entries), t._open_chunk, t.store.savepoint())
                for name, t in self.ds._tensors.items()}

    def rollback(self, save: dict[str, tuple[int, Any, dict[str, int]]]) -> None:
        for name, t in self.ds._tensors.items():
            n, oc, bufs = save.get(name, (t._committed_len, t._committed_open_chunk, {}))
            del t._entries[n:]
            t._open_chunk = oc
            t.store.truncate(bufs)
            t.drop_readers(n)

    def rollback_all(self) -> None:
        """Drop everything staged since the last commit: rows, replacements, new tensors."""
        for name in self._new_tensors:
            self.ds._tensors.pop(name, None)
        self._new_tensors.clear()
        for t in self.ds._tensors.values():  # rows replaced by upsert get their committed entries back
            for i, old in t._replaced.items():
                t._entries[i] = old
            t.drop_readers(min(t._replaced, default=len(t._entries)))
            t._replaced.clear()
        self.rollback({name: (t._committed_len, t._committed_open_chunk, {}) for name, t in self.ds._tensors.items()})

    def commit(self) -> None:
        """Write staged samples durably: chunks, then table segments, then the commit record."""
        dirty = [t for t in self.ds._tensors.values() if len(t._entries) > t._committed_len or t._replaced]
        new_tensors = list(self._new_tensors)
        if not dirty and not new_tensors:
            return
        p = self.ds.provider
        stale: list[str] = []
        expired: list[str] = []
        lock = p.commit_lock(lock_timeout())
        locked = False
        try:
            self.check_writable()
            lock.__enter__()
            locked = True
            # Note [Commit under the lock]: the generation check, every write and the
            # replacement of the commit record happen while this writer holds the dataset's
            # commit lock (local: flock; memory: a process lock), and the record is replaced
            # only if it is still the version read here (S3: If-Match on its ETag). A writer
            # that finds another's commit refuses before writing a byte; on providers without
            # an exclusive lock it never rewrote a committed chunk anyway (see stage()).
            raw, tag = p.get_tagged(fmt.DATASET_META_KEY)
            cur = fmt.decode_dataset_meta(raw, self.ds.path)
            if cur["generation"] != self.ds._meta["generation"]:
                raise ConcurrentWriteError(
                    f"{self.ds.path} was changed by another writer since it was loaded (generation "
                    f"{self.ds._meta['generation']} -> {cur['generation']}); reload it with vidlake.load() "
                    "and append again"
                )
            meta = copy.deepcopy(self.ds._meta)
            meta["generation"] += 1
            # the segments below carry their 1.2 summaries (a newer minor is kept as it is)
            meta["format_version"] = fmt.later_version(str(meta.get("format_version", "")), fmt.FORMAT_VERSION)
            written: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for name in new_tensors:
                meta["tensors"].append(name)
                meta["tensor_state"][name] = fmt.new_tensor_state()
            # 1. data: sample bytes and packet indexes into chunks
            for t in dirty:
                for cid, off, parts in t.store.pending():
                    p.write_parts(fmt.chunk_key(t.key, cid), parts, off)
            # 2. index: immutable sample-table segments (binary-counter merging keeps O(log n))
            for t in dirty:
                st = meta["tensor_state"][t.key]
                old = list(st["segments"])
                # a segment holding a row replaced by upsert is rewritten whole, under a fresh id
                segs = [{"id": None, "start": s["start"], "count": s["count"]}
                        if any(s["start"] <= i < s["start"] + s["count"] for i in t._replaced) else s
                        for s in old]
                # new rows: segments of at most MAX_SEGMENT_ROWS (a commit of many rows included)
                for first in range(t._committed_len, len(t._entries), MAX_SEGMENT_ROWS):
                    segs.append({"id": None, "start": first,
                                 "count": min(MAX_SEGMENT_ROWS, len(t._entries) - first)})
                while (len(segs) >= 2 and segs[-2]["count"] <= segs[-1]["count"]
                       and segs[-2]["count"] + segs[-1]["count"] <= MAX_SEGMENT_ROWS):
                    a, b = segs[-2], segs.pop()
                    segs[-1] = {"id": None, "start": a["start"], "count": a["count"] + b["count"]}
                mine = written[t.key] = {}
                for s in segs:
                    if s["id"] is None:
                        s["id"] = sid = fmt.new_id()
                        # rows of a merged-in older segment are read here (at most
                        # MAX_SEGMENT_ROWS of them: what the commit rewrites anyway)
                        rows = t._entries[s["start"]:s["start"] + s["count"]]
                        # the record's summary (1.2): shape of the tensor without a segment read
                        s["shape"] = segment_shape(rows)
                        p.put(fmt.table_key(t.key, sid), fmt.encode_table(t.key, s["start"], rows))
                        mine[sid] = rows
                kept = {s["id"] for s in segs}
                stale += [fmt.table_key(t.key, s["id"]) for s in old if s["id"] not in kept]
                st["segments"] = segs
                st["length"] = len(t._entries)
                st["open_chunk"] = list(t._open_chunk) if t._open_chunk else None
            # merged-away segments are garbage: deleted after a grace period (see GC_GRACE_SECONDS)
            now = time.time()
            garbage = meta.get("garbage", [])
            # only table segments this format writes are ever deleted (a crafted entry naming
            # another object, the commit record say, is dropped from the list, never deleted)
            expired = [k for k, t0 in garbage if now - t0 > GC_GRACE_SECONDS
                       and (fmt.is_table_key(k) or fmt.is_chunk_key(k))]
            meta["garbage"] = [[k, t0] for k, t0 in garbage if now - t0 <= GC_GRACE_SECONDS]
            meta["garbage"] += [[k, now] for k in stale]
            for hook in self.commit_hooks:
                hook(meta)
            # 3. metadata: the atomic commit point
            p.put_if_tag(fmt.DATASET_META_KEY, fmt.encode_json(meta), tag)
        except BaseException as e:
            if locked:
                lock.__exit__(None, None, None)
            n = sum(len(t._entries) - t._committed_len for t in dirty)
            self.rollback_all()
            if isinstance(e, ConcurrentWriteError):
                raise ConcurrentWriteError(f"{e} ({n} staged sample(s) not committed; the dataset has the "
                                           "other writer's commit)") from None
            if isinstance(e, (StorageError, OSError)) and not isinstance(e, ReadOnlyError):
                raise StorageError(f"writing to {self.ds.path} failed, the dataset is unchanged "
                                   f"({n} staged sample(s) dropped): {e}") from e
            raise
        lock.__exit__(None, None, None)
        self.ds._meta = meta
        self._new_tensors.clear()
        for t in self.ds._tensors.values():
            if t.key in written:
                t._entries.commit(meta["tensor_state"][t.key]["segments"], written[t.key])
            t._committed_len = len(t._entries)
            t._committed_open_chunk = t._open_chunk
            t._replaced.clear()
            t.store.discard()
        with contextlib.suppress(StorageError, OSError):  # no record younger than the grace period names these
            p.delete_many(expired)

    def stage_replacement(self, t: Tensor, i: int, p: PreparedSample, undo: list[Any]) -> None:
        """Stage ``p`` as the new sample of row ``i`` of ``t`` (upsert): its bytes go into chunks
        like an append's, its entry replaces row ``i``; ``undo`` records how to take it back."""
        self.stage(t, p)
        entry = t._entries.pop()
        old = t._entries[i]
        first = i < t._committed_len and i not in t._replaced
        if first:
            t._replaced[i] = old          # the committed entry, restored if the commit fails
        undo.append((t, i, old, first))
        t._entries[i] = entry
        t.drop_readers(only=i)

    def undo_replacements(self, undo: list[Any]) -> None:
        """Take back :meth:`stage_replacement` calls, newest first."""
        for t, i, old, first in reversed(undo):
            t._entries[i] = old
            if first:
                t._replaced.pop(i, None)

    def check_alignment(self, touched: Mapping[str, int]) -> None:
        """After staging: every aligned pair with a sample at a touched index has equal frame counts.

        ``touched`` maps tensor name -> the index just written.
        """
        tensors = self.ds._tensors
        for a in tensors.values():
            target = a.meta.get("aligned_to")
            if not target or target not in tensors:
                continue
            v = tensors[target]
            for i in {touched[k] for k in (a.key, target) if k in touched}:
                if i >= len(a) or i >= len(v):
                    continue
                na, nv = a.frame_count(i), v.frame_count(i)
                if na is not None and nv is not None and na != nv:
                    raise SampleAppendError(
                        f"tensor {a.key!r} is aligned to {target!r}: row {i} gives {na} item(s) for {a.key!r} "
                        f"but {nv} frame(s) for {target!r}; give one {a.key} item per frame"
                    )

    def check_aligned_to(self, htype: str, aligned_to: str) -> str:
        """Validate ``create_tensor(..., aligned_to=...)``: a sequence aligned to an existing video or
        sequence tensor."""
        if not (lookup(htype).frames and not lookup(htype).video):
            raise ValueError(f"aligned_to is for sequence[...] tensors (one item per frame), not {htype!r}")
        t = self.ds._tensors.get(aligned_to)
        if t is None:
            raise ValueError(f"aligned_to={aligned_to!r}: no such tensor in {self.ds.path}; create it first")
        if not t.spec.frames:
            raise ValueError(f"aligned_to={aligned_to!r} is a {t.htype!r} tensor; align to a video or sequence tensor")
        return aligned_to
