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

import bisect
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
#: the most entries a segment list holds (format 2.0; docs/FORMAT.md "Segment lists"): one list
#: of 64 full segments covers 262,144 rows, two levels 16.7 M, three levels 1.07 G
LIST_FANOUT = 64
#: segments up to the last full one move into segment lists once they hold this many rows: a
#: tensor under ~16k rows keeps every segment in the commit record (which then stays 1.2)
SEAL_ROWS = 4 * 4096


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
            written_lists: dict[str, dict[str, list[dict[str, Any]]]] = {}
            gone: dict[str, set[str]] = {}
            for name in new_tensors:
                meta["tensors"].append(name)
                meta["tensor_state"][name] = fmt.new_tensor_state()
            # 1. data: sample bytes and packet indexes into chunks
            for t in dirty:
                for cid, off, parts in t.store.pending():
                    p.write_parts(fmt.chunk_key(t.key, cid), parts, off)
            # 2. index: immutable sample-table segments (binary-counter merging keeps O(log n)),
            # then the segment lists (2.0) above the rewritten and the newly sealed ones
            for t in dirty:
                st = meta["tensor_state"][t.key]
                written[t.key], written_lists[t.key], gone[t.key] = self._write_tables(t, st, stale)
            if any(st.get("lists") for st in meta["tensor_state"].values()):
                meta["format_version"] = fmt.later_version(str(meta["format_version"]), fmt.LISTS_VERSION)
            # merged-away segments are garbage: deleted after a grace period (see GC_GRACE_SECONDS)
            now = time.time()
            garbage = meta.get("garbage", [])
            # only table segments this format writes are ever deleted (a crafted entry naming
            # another object, the commit record say, is dropped from the list, never deleted)
            expired = [k for k, t0 in garbage if now - t0 > GC_GRACE_SECONDS
                       and (fmt.is_table_key(k) or fmt.is_chunk_key(k) or fmt.is_list_key(k))]
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
                st = meta["tensor_state"][t.key]
                t._entries.commit(st["segments"], written[t.key], st.get("lists", []), written_lists[t.key],
                                  gone[t.key])
            t._committed_len = len(t._entries)
            t._committed_open_chunk = t._open_chunk
            t._replaced.clear()
            t.store.discard()
        with contextlib.suppress(StorageError, OSError):  # no record younger than the grace period names these
            p.delete_many(expired)

    def _write_tables(self, t: Tensor, st: dict[str, Any], stale: list[str]
                      ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]], set[str]]:
        """Step 2 of a commit for one tensor: write the table segments holding its new and
        replaced rows and the segment lists above them, and set its record entry ``st``.
        Returns the rows of the segments written, the entries of the lists written and the ids
        of the segments and lists that left the record (their keys are added to ``stale``)."""
        p = self.ds.provider
        table = t._entries
        mine: dict[str, list[dict[str, Any]]] = {}
        lists_written: dict[str, list[dict[str, Any]]] = {}
        gone: set[str] = set()

        def drop(desc: dict[str, Any], level: int) -> None:
            gone.add(desc["id"])
            lists_written.pop(desc["id"], None)  # (written by this commit, then replaced again)
            stale.append(fmt.list_key(t.key, desc["id"]) if level else fmt.table_key(t.key, desc["id"]))

        def write_segment(start: int, count: int) -> dict[str, Any]:
            sid = fmt.new_id()
            # rows of a merged-in or replaced older segment are read here (at most
            # MAX_SEGMENT_ROWS of them: what the commit rewrites anyway)
            rows = table[start:start + count]
            # the record's summary (1.2): shape of the tensor without a segment read
            p.put(fmt.table_key(t.key, sid), fmt.encode_table(t.key, start, rows))
            mine[sid] = rows
            return {"id": sid, "start": start, "count": count, "shape": segment_shape(rows)}

        def write_list(level: int, entries: list[dict[str, Any]]) -> dict[str, Any]:
            lid, start = fmt.new_id(), int(entries[0]["start"])
            p.put(fmt.list_key(t.key, lid), fmt.encode_list(t.key, level, start, entries))
            lists_written[lid] = entries
            return {"id": lid, "start": start, "count": sum(int(e["count"]) for e in entries), "level": level,
                    "shape": fmt.summary_shape([e.get("shape") for e in entries])}

        def entries_of(desc: dict[str, Any]) -> list[dict[str, Any]]:
            return lists_written[desc["id"]] if desc["id"] in lists_written else table.list_entries(desc)

        replaced = sorted(t._replaced)

        def touched(desc: dict[str, Any]) -> bool:
            k = bisect.bisect_left(replaced, int(desc["start"]))
            return k < len(replaced) and replaced[k] < int(desc["start"]) + int(desc["count"])

        def rewrite(desc: dict[str, Any], level: int) -> dict[str, Any]:
            """``desc`` again, with every segment holding a replaced row rewritten (upsert,
            compaction), and every list above one: new objects, fresh ids."""
            if not touched(desc):
                return desc
            drop(desc, level)
            if level == 0:
                return write_segment(int(desc["start"]), int(desc["count"]))
            return write_list(level, [rewrite(e, level - 1) for e in entries_of(desc)])

        # Note [Segment lists]: the record lists a tensor's segments up to the last full one through a
        # tree of immutable segment lists (LIST_FANOUT entries each, growing on the right: only the
        # lists on its rightmost path are ever rewritten by an append) and the rest itself; so the
        # record stays the same size however long the tensor grows (docs/FORMAT.md, "Segment lists").
        lists = [rewrite(d, int(d["level"])) for d in st.get("lists", [])]
        segs = [rewrite(s, 0) for s in st["segments"]]
        # new rows: segments of at most MAX_SEGMENT_ROWS (a commit of many rows included)
        for first in range(t._committed_len, len(table), MAX_SEGMENT_ROWS):
            segs.append({"id": None, "start": first, "count": min(MAX_SEGMENT_ROWS, len(table) - first)})
        while (len(segs) >= 2 and segs[-2]["count"] <= segs[-1]["count"]
               and segs[-2]["count"] + segs[-1]["count"] <= MAX_SEGMENT_ROWS):
            a, b = segs[-2], segs.pop()
            if a["id"] in mine:      # rewritten above (a replaced row), merged after all
                del mine[a["id"]]
            elif a["id"] is not None:
                drop(a, 0)
            segs[-1] = {"id": None, "start": a["start"], "count": a["count"] + b["count"]}
        segs = [write_segment(int(s["start"]), int(s["count"])) if s["id"] is None else s for s in segs]
        # seal: a segment up to the last full one never merges again; once they hold SEAL_ROWS
        # rows they go into the lists (so a small dataset never gets one: its record stays 1.2)
        full = [k for k, s in enumerate(segs) if int(s["count"]) >= MAX_SEGMENT_ROWS]
        if full and sum(int(s["count"]) for s in segs[:full[-1] + 1]) >= SEAL_ROWS:
            lists = self._append_to_lists(lists, segs[:full[-1] + 1], entries_of, write_list, drop)
            segs = segs[full[-1] + 1:]
        if lists:
            st["lists"] = lists
        st["segments"] = segs
        st["length"] = len(table)
        st["open_chunk"] = list(t._open_chunk) if t._open_chunk else None
        return mine, lists_written, gone

    @staticmethod
    def _append_to_lists(lists: list[dict[str, Any]], segs: list[dict[str, Any]],
                         entries_of: Callable[[dict[str, Any]], list[dict[str, Any]]],
                         write_list: Callable[[int, list[dict[str, Any]]], dict[str, Any]],
                         drop: Callable[[dict[str, Any], int], None]) -> list[dict[str, Any]]:
        """``lists`` (the record's list descriptors) with the segments ``segs`` appended: the
        lists on the rightmost path of the last tree are written again (an unchanged one keeps
        its id), and a new root on top when the old one overflows."""
        fanout = LIST_FANOUT

        def group(level: int, items: list[dict[str, Any]], old: dict[str, Any] | None,
                  old_entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            out = []
            for k in range(0, len(items), fanout):
                part = items[k:k + fanout]
                out.append(old if old is not None and part == old_entries else write_list(level, part))
            if old is not None and old not in out:
                drop(old, level)
            return out

        if not lists:
            rest, carry, level = [], group(1, segs, None, []), 1
        else:
            rest, root = lists[:-1], lists[-1]
            path = [root]
            while int(path[-1]["level"]) > 1:
                path.append(entries_of(path[-1])[-1])
            carry = segs
            for node in reversed(path):  # the last leaf first
                entries = entries_of(node)
                items = (entries if int(node["level"]) == 1 else entries[:-1]) + carry
                carry = group(int(node["level"]), items, node, entries)
            level = int(root["level"])
        while len(carry) > 1:
            level += 1
            carry = group(level, carry, None, [])
        return rest + carry

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
