"""Datasets: named tensors over a storage provider, with atomic, crash-safe appends.

    >>> import vidlake
    >>> ds = vidlake.empty("./video_ds", overwrite=True)
    >>> with ds:
    ...     ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ...     ds.videos.append(vidlake.read("./videos/example1.mp4"))
    >>> len(ds), ds.videos[0].shape
    (1, (400, 360, 640, 3))

How an append stays atomic (details in ``docs/FORMAT.md``): the sample is validated and
indexed in memory first; a commit then writes the chunk bytes (appended after the committed
end of the open chunk, or new chunk objects), then an immutable sample-table segment, and
last replaces ``dataset_meta.json`` atomically. Nothing refers to the new bytes until that
last step, so a failure or a SIGKILL at any earlier point leaves the previous dataset.
Outside ``with ds:`` every append commits at once; inside, appends are batched and committed
on exit (or when more than ``flush_threshold`` bytes are waiting).
"""
from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

try:
    from typing import Self
except ImportError:  # Python < 3.11
    from typing import TypeVar

    Self = TypeVar("Self", bound="Dataset")  # type: ignore[misc]

from . import format as fmt
from .annotations import htype_params
from .chunks import place
from .errors import CredentialsError, DatasetError, ReadOnlyError, SampleAppendError, StorageError
from .htypes import PreparedSample, check_compression, check_htype, prepare_sample
from .sequence import check_aligned_to, check_alignment
from .storage import StorageProvider
from .storage.provider import FileRange
from .tensor import SampleView, Tensor, TensorView, _sample_indices

__all__ = ["Dataset", "DatasetView"]

#: inside ``with ds:``, commit early once this many sample bytes wait in memory
DEFAULT_FLUSH_THRESHOLD = 64 * 1024 * 1024
#: a loader retries this long when objects named by the commit record vanish under it
_LOAD_RETRY_SECONDS = 10.0
_INDEX_WORKERS = 8  # threads building the packet indexes of one extend() (see _prepare_rows)
#: merged-away table segments are deleted only this long after they left the commit record,
#: so a reader that read the old record has time to read them
GC_GRACE_SECONDS = 30.0


class Dataset:
    """A vidlake dataset. Open one with :func:`vidlake.empty`, :func:`vidlake.load` or
    :func:`vidlake.dataset` rather than calling this constructor.

        >>> ds = vidlake.load("./video_ds", read_only=True)
        >>> ds.summary()
    """

    def __init__(self, provider: StorageProvider, path: str, read_only: bool = False) -> None:
        self.provider = provider
        self.path = path
        self.read_only = read_only
        self.flush_threshold = DEFAULT_FLUSH_THRESHOLD
        self._depth = 0
        self._meta: dict[str, Any] = {}
        self._tensors: dict[str, Tensor] = {}
        self._populated_creds: dict[str, dict[str, Any]] = {}  # creds key -> secrets, memory only
        self._link_providers: dict[tuple[str, str | None], StorageProvider] = {}
        self._load()

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def _create(cls, provider: StorageProvider, path: str) -> Dataset:
        provider.put(fmt.DATASET_META_KEY, fmt.encode_json(fmt.new_dataset_meta()))
        return cls(provider, path)

    def _load(self) -> None:
        """Read a consistent snapshot: the commit record, then the immutable objects it names.
        A concurrent writer may delete merged table segments after its commit; then we re-read."""
        last: Exception | None = None
        deadline = time.monotonic() + _LOAD_RETRY_SECONDS
        while True:
            try:
                raw = self.provider.get(fmt.DATASET_META_KEY)
            except KeyError:
                raise DatasetError(f"no vidlake dataset at {self.path} (no {fmt.DATASET_META_KEY})") from None
            meta = fmt.decode_dataset_meta(raw, self.path)
            try:
                tensors = {name: self._load_tensor(name, meta["tensor_state"][name]) for name in meta["tensors"]}
            except KeyError as e:
                last = e
                if time.monotonic() > deadline:
                    break
                time.sleep(0.001)
                continue
            self._meta = meta
            self._tensors = tensors
            return
        raise DatasetError(f"{self.path}: object {last} named by {fmt.DATASET_META_KEY} is missing; "
                           "the dataset is damaged")

    def _load_tensor(self, name: str, state: dict[str, Any]) -> Tensor:
        key = fmt.tensor_meta_key(name)
        tmeta = fmt.decode_tensor_meta(self.provider.get(key), f"{self.path}/{key}")
        entries: list[dict[str, Any]] = []
        for seg in state["segments"]:
            skey = fmt.table_key(name, seg["id"])
            entries.extend(fmt.decode_table(self.provider.get(skey), f"{self.path}/{skey}",
                                            seg["start"], seg["count"]))
        if len(entries) != state["length"]:
            raise DatasetError(f"{self.path}: tensor {name!r} lists {state['length']} samples "
                               f"but its tables hold {len(entries)}; the dataset is damaged")
        oc = state.get("open_chunk")
        return Tensor(self, name, tmeta, entries, tuple(oc) if oc else None)

    def __getstate__(self) -> dict[str, Any]:
        """Datasets pickle (e.g. into DataLoader workers) as their committed state: the copy
        loads it again from storage."""
        if self._pending_bytes():
            raise DatasetError(f"{self.path} has staged appends; call ds.flush() before pickling")
        return {"provider": self.provider, "path": self.path, "read_only": self.read_only}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["provider"], state["path"], state["read_only"])

    # -- tensors -----------------------------------------------------------------------
    @property
    def tensors(self) -> dict[str, Tensor]:
        """Name -> :class:`Tensor`, in creation order."""
        return dict(self._tensors)

    def __getattr__(self, name: str) -> Tensor:
        if name.startswith("_"):
            raise AttributeError(name)
        tensors = self.__dict__.get("_tensors") or {}
        if name in tensors:
            return tensors[name]
        raise AttributeError(f"dataset {self.__dict__.get('path')!r} has no tensor or attribute {name!r}")

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            if item not in self._tensors:
                raise KeyError(f"no tensor {item!r} in {self.path}; tensors: {list(self._tensors)}")
            return self._tensors[item]
        if isinstance(item, tuple):  # ds[i, a:b]: the row cut to some frames (vidlake/views.py)
            from .views import frame_row

            return frame_row(self, item)
        idx, single = _sample_indices(item, len(self), self.path)
        return DatasetView(self, idx, single)

    def __len__(self) -> int:
        if not self._tensors:
            return 0
        return min(len(t) for t in self._tensors.values())

    def __iter__(self):
        for i in range(len(self)):
            yield DatasetView(self, [i], True)

    def create_tensor(self, name: str, htype: str = "generic", sample_compression: str | None = None,
                      dtype: str | None = None, class_names: Sequence[str] | None = None,
                      max_chunk_size: int | None = None, target_chunk_size: int | None = None,
                      exist_ok: bool = False, coords: dict[str, str] | None = None,
                      aligned_to: str | None = None, **kwargs: Any) -> Tensor:
        """Add a tensor. Video tensors need a ``sample_compression``; anything not accepted is
        a ``ValueError`` listing what is. ``coords`` is for bbox tensors, ``aligned_to`` makes a
        ``sequence[...]`` tensor keep one item per frame of a video or sequence tensor
        (``docs/ANNOTATIONS.md``).

            >>> ds.create_tensor("videos", htype="video", sample_compression="mp4")
            >>> ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
            >>> ds.create_tensor("boxes", htype="sequence[bbox]", coords={"type": "pixel", "mode": "LTWH"},
            ...                  aligned_to="videos")
        """
        self._check_writable()
        if kwargs:
            raise TypeError(f"create_tensor got unsupported arguments: {sorted(kwargs)}")
        fmt.check_tensor_name(name)
        if name in self._tensors:
            if exist_ok:
                return self._tensors[name]
            raise DatasetError(f"tensor {name!r} already exists in {self.path}")
        if hasattr(type(self), name):
            raise DatasetError(f"tensor name {name!r} clashes with a Dataset attribute; choose another")
        check_htype(htype)
        comp = check_compression(htype, sample_compression)
        max_cs = int(max_chunk_size or fmt.DEFAULT_MAX_CHUNK_SIZE)
        target = int(target_chunk_size or min(fmt.DEFAULT_TARGET_CHUNK_SIZE, max_cs))
        if max_cs <= 0 or not 0 < target <= max_cs:
            raise ValueError(f"need 0 < target_chunk_size <= max_chunk_size (got {target}, {max_cs})")
        tmeta: dict[str, Any] = {
            "format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION,
            "name": name, "htype": htype, "sample_compression": comp,
            "dtype": "uint8" if htype in ("video", "link[video]", "link[image]") else (str(dtype) if dtype else None),
            "max_chunk_size": max_cs, "target_chunk_size": target,
        }
        # htype parameters (default dtypes, class_names, bbox coords): vidlake/annotations.py
        tmeta.update(htype_params(htype, dtype, class_names, coords))
        if aligned_to is not None:
            tmeta["aligned_to"] = check_aligned_to(self, htype, aligned_to)
        # tensor meta first, then the commit record that makes the tensor exist
        self.provider.put(fmt.tensor_meta_key(name), fmt.encode_json(tmeta))
        t = Tensor(self, name, tmeta, [], None)
        self._tensors[name] = t
        try:
            self._commit(new_tensor=name)
        except BaseException:
            del self._tensors[name]
            raise
        return t

    # -- writing -----------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(f"dataset {self.path} is opened read-only; "
                                "open it with vidlake.load(path, read_only=False) to write")

    def append(self, sample: dict[str, Any], skip_ok: bool = False) -> None:
        """Append one row: one sample per tensor, all or none.

            >>> ds.append({"videos": vidlake.read("a.mp4"), "labels": 1})
        """
        if not isinstance(sample, dict):
            raise TypeError("Dataset.append takes a dict {tensor name: sample}")
        self._append_rows([sample], only=None, skip_ok=skip_ok)

    def extend(self, samples: dict[str, Sequence[Any]], skip_ok: bool = False) -> None:
        """Append several rows given as ``{tensor: [samples...]}``, all or none."""
        if not isinstance(samples, dict):
            raise TypeError("Dataset.extend takes a dict {tensor name: list of samples}")
        lens = {k: len(v) for k, v in samples.items()}
        if len(set(lens.values())) > 1:
            raise SampleAppendError(f"extend needs the same number of samples per tensor, got {lens}")
        n = next(iter(lens.values()), 0)
        self._append_rows([{k: v[i] for k, v in samples.items()} for i in range(n)], only=None, skip_ok=skip_ok)

    def _append_rows(self, rows: Iterable[dict[str, Any]], only: list[str] | None,
                     skip_ok: bool = False) -> None:
        """Validate, stage and (outside ``with``) commit rows; on any failure the rows of this
        call are dropped and the dataset is as before."""
        self._check_writable()
        rows = list(rows)
        save = self._savepoint()
        try:
            for row in rows:
                unknown = [k for k in row if k not in self._tensors]
                if unknown:
                    raise SampleAppendError(f"no tensor(s) {unknown} in {self.path}; tensors: {list(self._tensors)}")
                if only is None and not skip_ok:
                    missing = [k for k in self._tensors if k not in row]
                    if missing:
                        raise SampleAppendError(
                            f"the row has no sample for tensor(s) {missing}; pass skip_ok=True to leave them out"
                        )
            for row, prepared in zip(rows, self._prepare_rows(rows)):
                for k, p in prepared.items():
                    self._stage(self._tensors[k], p)
                check_alignment(self, {k: len(self._tensors[k]._entries) - 1 for k in row})
        except BaseException:
            self._rollback(save)
            raise
        if self._depth == 0 or self._pending_bytes() > self.flush_threshold:
            self._commit()

    def _prepare_rows(self, rows: list[dict[str, Any]]):
        """Yield each row's prepared samples, in order. Video samples are indexed on a thread
        pool (the core releases the GIL while it demuxes), so an extend of many files builds
        their packet indexes in parallel; the first failing row, in row order, raises."""
        def prep(k: str, v: Any) -> PreparedSample:
            t = self._tensors[k]
            return prepare_sample(t.htype, v, k, t.meta, dataset=self)

        videos = [(i, k) for i, row in enumerate(rows) for k in row if self._tensors[k].htype == "video"]
        cores = os.cpu_count() or 1
        # on local disk the calling thread copies each staged sample's bytes into its chunk
        # meanwhile (ChunkStore.write): the pool leaves it one core (measured, 2 cores, 50
        # files: 28 ms with one index thread beside the copying one, 46 ms with two)
        copying = getattr(self.provider, "begin_write", None) is not None
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

    def _stage(self, t: Tensor, p: PreparedSample) -> None:
        """Place a prepared sample's bytes (and index) in the tensor's chunks, in memory."""
        maximum = int(t.meta["max_chunk_size"])
        target = int(t.meta["target_chunk_size"])

        def put(data: bytes | FileRange) -> list[list[Any]]:
            extents = place(t._open_chunk, len(data), target, maximum, fmt.new_id)
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
        t._entries.append(entry)

    def _pending_bytes(self) -> int:
        return sum(t.store.pending_bytes() for t in self._tensors.values())

    def _savepoint(self) -> dict[str, tuple[int, Any, dict[str, int]]]:
        return {name: (len(t._entries), t._open_chunk, t.store.savepoint())
                for name, t in self._tensors.items()}

    def _rollback(self, save: dict[str, tuple[int, Any, dict[str, int]]]) -> None:
        for name, t in self._tensors.items():
            n, oc, bufs = save.get(name, (t._committed_len, t._committed_open_chunk, {}))
            del t._entries[n:]
            t._open_chunk = oc
            t.store.truncate(bufs)
            t._drop_readers_from(n)

    def _rollback_all(self) -> None:
        for t in self._tensors.values():  # rows replaced by upsert get their committed entries back
            for i, old in t._replaced.items():
                t._entries[i] = old
            t._drop_readers_from(min(t._replaced, default=len(t._entries)))
            t._replaced.clear()
        self._rollback({name: (t._committed_len, t._committed_open_chunk, {}) for name, t in self._tensors.items()})

    def _commit(self, new_tensor: str | None = None) -> None:
        """Write staged samples durably: chunks, then table segments, then the commit record."""
        dirty = [t for t in self._tensors.values() if len(t._entries) > t._committed_len or t._replaced]
        if not dirty and new_tensor is None:
            return
        p = self.provider
        stale: list[str] = []
        expired: list[str] = []
        try:
            self._check_writable()
            cur = fmt.decode_dataset_meta(p.get(fmt.DATASET_META_KEY), self.path)
            if cur["generation"] != self._meta["generation"]:
                raise DatasetError(
                    f"{self.path} was changed by another writer since it was loaded (generation "
                    f"{self._meta['generation']} -> {cur['generation']}); reload it with vidlake.load() "
                    "and append again. Only one process may write to a dataset at a time."
                )
            meta = copy.deepcopy(self._meta)
            meta["generation"] += 1
            if new_tensor is not None:
                meta["tensors"].append(new_tensor)
                meta["tensor_state"][new_tensor] = fmt.new_tensor_state()
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
                if len(t._entries) > t._committed_len:
                    segs.append({"id": None, "start": t._committed_len, "count": len(t._entries) - t._committed_len})
                while len(segs) >= 2 and segs[-2]["count"] <= segs[-1]["count"]:
                    a, b = segs[-2], segs.pop()
                    segs[-1] = {"id": None, "start": a["start"], "count": a["count"] + b["count"]}
                for s in segs:
                    if s["id"] is None:
                        s["id"] = fmt.new_id()
                        rows = t._entries[s["start"]:s["start"] + s["count"]]
                        p.put(fmt.table_key(t.key, s["id"]), fmt.encode_table(t.key, s["start"], rows))
                kept = {s["id"] for s in segs}
                stale += [fmt.table_key(t.key, s["id"]) for s in old if s["id"] not in kept]
                st["segments"] = segs
                st["length"] = len(t._entries)
                st["open_chunk"] = list(t._open_chunk) if t._open_chunk else None
            # merged-away segments are garbage: deleted after a grace period (see GC_GRACE_SECONDS)
            now = time.time()
            garbage = meta.get("garbage", [])
            expired = [k for k, t0 in garbage if now - t0 > GC_GRACE_SECONDS]
            meta["garbage"] = [[k, t0] for k, t0 in garbage if now - t0 <= GC_GRACE_SECONDS]
            meta["garbage"] += [[k, now] for k in stale]
            # 3. metadata: the atomic commit point
            p.put(fmt.DATASET_META_KEY, fmt.encode_json(meta))
        except BaseException as e:
            n = sum(len(t._entries) - t._committed_len for t in dirty)
            self._rollback_all()
            if isinstance(e, (StorageError, OSError)) and not isinstance(e, ReadOnlyError):
                raise StorageError(f"writing to {self.path} failed, the dataset is unchanged "
                                   f"({n} staged sample(s) dropped): {e}") from e
            raise
        self._meta = meta
        for t in self._tensors.values():
            t._committed_len = len(t._entries)
            t._committed_open_chunk = t._open_chunk
            t._replaced.clear()
            t.store.discard()
        try:  # no commit record younger than the grace period names these
            p.delete_many(expired)
        except (StorageError, OSError):
            pass

    def upsert(self, rows: dict[str, Any] | Iterable[dict[str, Any]], key: str = "reference_id") -> list[int]:
        """Replace the row whose ``key`` tensor matches each given row (every tensor of it), or
        append it when none does; all or nothing. Returns the row indices (``vidlake/upsert.py``).

            >>> ds.upsert({"reference_id": "scene-7", "frames": frames, "metadata": {"weather": "sun"}})
        """
        from .upsert import upsert

        return upsert(self, rows, key=key)

    def filter(self, fn: Any) -> Any:
        """A view of the rows for which ``fn(row)`` is true (``vidlake/views.py``).

            >>> night = ds.filter(lambda row: row.metadata.numpy()["time"] == "night")
            >>> len(night), night.metadata.numpy()
        """
        from .views import filter_rows

        return filter_rows(self, fn)

    def pytorch(self, tensors: Sequence[str] | None = None, clip: Any = None, batch_size: int = 1,
                shuffle: bool = False, num_workers: int = 0, transform: Any = None,
                size: tuple[int, int] | None = None, seed: int | None = None, drop_last: bool = False,
                persistent_workers: bool = False, pin_memory: bool = False, **kwargs: Any) -> Any:
        """A ``torch.utils.data.DataLoader`` of batches keyed by tensor name (``vidlake/torch/``;
        needs ``pip install vidlake[torch]``). ``clip=16`` (or a ``vidlake.torch.ClipSpec``)
        samples 16-frame clips, every tensor aligned to the video cut to the same frames;
        without ``clip`` a sample is the whole video. ``size=(h, w)`` resizes while decoding.
        Also: ``ragged="list"|"pad"``, ``dimension_order="NHWC"|"NCHW"``, ``prefetch``,
        ``rows``, ``cache_bytes``, ``decode_threads``, ``multiprocessing_context``.

            >>> loader = ds.pytorch(tensors=["videos", "boxes"], clip=16, batch_size=8, shuffle=True,
            ...                     num_workers=2, size=(224, 224), seed=0)
            >>> next(iter(loader))["videos"].shape
            torch.Size([8, 16, 224, 224, 3])
        """
        from .torch import make_loader

        return make_loader(self, tensors, clip, batch_size, shuffle, num_workers, transform, size, seed,
                           drop_last, persistent_workers, pin_memory, **kwargs)

    def flush(self) -> None:
        """Commit every staged append now (``with ds:`` does this on exit)."""
        if self.read_only:
            return
        self._commit()

    def __enter__(self) -> Self:
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and not self.read_only:
            self._commit()

    # -- creds keys (for linked samples; see vidlake/link.py, docs/REMOTE.md) ------------
    def add_creds_key(self, creds_key: str, managed: bool = False) -> None:
        """Register a creds key name for linked samples. Only the name (and ``managed``) is
        stored in the dataset; the secrets come from :meth:`populate_creds` (memory only) or,
        with ``managed=True``, from the local credentials file / environment (``vidlake.creds``).

            >>> ds.add_creds_key("my-bucket")
            >>> ds.populate_creds("my-bucket", {"aws_access_key_id": ..., "aws_secret_access_key": ...})
        """
        self._check_writable()
        if not isinstance(creds_key, str) or not creds_key or creds_key == "ENV":
            raise ValueError(f"a creds key is a non-empty string other than 'ENV' (reserved), got {creds_key!r}")
        if creds_key in self.get_creds_keys():
            raise DatasetError(f"creds key {creds_key!r} already exists in {self.path}")
        cur = fmt.decode_dataset_meta(self.provider.get(fmt.DATASET_META_KEY), self.path)
        if cur["generation"] != self._meta["generation"]:
            raise DatasetError(f"{self.path} was changed by another writer since it was loaded; reload it")
        meta = copy.deepcopy(self._meta)
        meta["generation"] += 1
        meta.setdefault("creds_keys", []).append({"name": creds_key, "managed": bool(managed)})
        self.provider.put(fmt.DATASET_META_KEY, fmt.encode_json(meta))  # names only, never secrets
        self._meta = meta

    def populate_creds(self, creds_key: str, creds: dict[str, Any]) -> None:
        """Give the secrets of creds key ``creds_key`` for this process (kept in memory only,
        never written). Fields as for ``vidlake.load(..., creds=...)``."""
        from .creds import validate_creds

        if creds_key not in self.get_creds_keys():
            raise CredentialsError(f"{creds_key!r} is not a creds key of {self.path}; "
                                   f"add it first with ds.add_creds_key({creds_key!r})")
        self._populated_creds[creds_key] = validate_creds(creds, where=f"creds for key {creds_key!r}") or {}
        self._drop_link_sources(creds_key)

    def get_creds_keys(self) -> list[str]:
        """Names of the creds keys added to this dataset (``"ENV"`` needs no adding)."""
        return [k["name"] for k in self._meta.get("creds_keys", [])]

    def _link_creds(self, creds_key: str | None, check_only: bool = False) -> Any:
        """The creds dict of a linked sample's key (``None``: the client's default chain);
        ``check_only`` only checks that the key was added."""
        from .creds import resolve_creds

        if creds_key is None or creds_key == "ENV":
            return None
        keys = {k["name"]: k for k in self._meta.get("creds_keys", [])}
        if creds_key not in keys:
            raise CredentialsError(f"creds key {creds_key!r} is not a creds key of {self.path} "
                                   f"(keys: {sorted(keys)}); add it with ds.add_creds_key({creds_key!r})")
        if check_only:
            return None
        if creds_key in self._populated_creds:
            return self._populated_creds[creds_key]
        return resolve_creds(creds_key, managed=bool(keys[creds_key].get("managed")), populated=None)

    def _drop_link_sources(self, creds_key: str | None) -> None:
        for k in [k for k in self._link_providers if k[1] == creds_key]:
            del self._link_providers[k]
        for t in self._tensors.values():
            if "link" in t.htype:
                t._drop_readers_from(0)

    # -- housekeeping ------------------------------------------------------------------
    def delete(self) -> None:
        """Delete the whole dataset from its storage."""
        self._check_writable()
        self.provider.delete(fmt.DATASET_META_KEY)  # first: a half-deleted dataset no longer loads
        self.provider.clear()
        self._tensors = {}
        self._meta = fmt.new_dataset_meta()

    @property
    def format_version(self) -> str:
        """Format version of the dataset's commit record."""
        return str(self._meta.get("format_version"))

    def summary(self, file: Any = None) -> None:
        """Print a table of tensors: htype, shape, dtype, compression.

            >>> ds.summary()
            Dataset(path='./video_ds', tensors=['videos'])
             tensor   htype          shape           dtype  compression
        """
        print(self._summary_text(), file=file or sys.stdout)

    def _summary_text(self) -> str:
        head = f"Dataset(path={self.path!r}, {'read_only=True, ' if self.read_only else ''}tensors={list(self._tensors)})"
        rows = [("tensor", "htype", "shape", "dtype", "compression"),
                ("-------", "-------", "-------", "-------", "-------")]
        for t in self._tensors.values():
            dt = t.dtype
            rows.append((t.key, t.htype, str(t.shape), str(dt) if dt is not None else "None",
                         str(t.sample_compression)))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        ro = ", read_only=True" if self.read_only else ""
        return f"Dataset(path={self.path!r}{ro}, tensors={list(self._tensors)})"


class DatasetView:
    """Rows of a dataset: ``ds[0].videos``, ``ds[2:5].labels.numpy()``."""

    def __init__(self, ds: Dataset, indices: list[int], single: bool) -> None:
        self.dataset = ds
        self.indices = indices
        self.single = single

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Any:
        t: Tensor = self.dataset[name]
        if self.single:
            return SampleView(t, self.indices[0])
        return TensorView(t, list(self.indices))

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def tensors(self) -> dict[str, Any]:
        """Name -> view of that tensor over these rows."""
        return {k: self[k] for k in self.dataset.tensors}

    def __repr__(self) -> str:
        return f"DatasetView({self.dataset.path!r}, rows={self.indices if len(self.indices) < 10 else len(self.indices)})"
