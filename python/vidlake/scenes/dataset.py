"""Scene datasets: ``vidlake.scene_dataset(path)``, ``ds.append(scenes)``, ``ds.scene(reference_id)``.

    >>> import vidlake
    >>> ds = vidlake.scene_dataset("./scenes_ds")
    >>> scenes = [vidlake.VideoScene("video-1", video_location="clips/a.mp4", metadata={"weather": "rain"})]
    >>> job = ds.append(scenes, update=True, asynchronous=True)
    >>> job.sleep_until_complete()["state"]
    'completed'
    >>> s = ds.scene("video-1")
    >>> s.frames[0:8].numpy().shape, s.frames[0:8].timestamp, s.metadata
    ((8, 360, 640, 3), array([0., 0.0333..., ...], dtype=float32), {'weather': 'rain'})
    >>> ds.query_metadata(weather="rain")
    ['video-1']
    >>> ds.query_items(is_raining=True)          # per-frame item metadata of scenes of items
    [ItemRef(scene='video-2', item='video-2-frame-0', frame=0)]

Layout (ordinary tensors, so frames, timestamps, aligned annotations, the viewer and the
PyTorch loader all work on scenes; one row per scene):

============== ======================= ==================================================
tensor         htype                   holds
============== ======================= ==================================================
reference_id   text                    the scene's reference id (unique)
frames         video, or               the video file as it is (video scenes), or the
               sequence[image]         frame images byte for byte (scenes of items)
frame_rate     generic float64         the scene's frame rate (a video's own fps when not given)
metadata       json                    the scene's metadata
content_hash   text                    blake2b-256 of the frames' bytes (updates and dedupe)
item_ids       sequence[text]          per-frame reference ids (empty for a video scene)
item_metadata  sequence[json]          per-frame metadata (empty for a video scene)
item_locations sequence[text]          where each frame image came from
============== ======================= ==================================================

A dataset holds one kind of scene, fixed by its first scene: video files (``frames`` is a
``video`` tensor) or frame images (``sequence[image]``, with the item tensors ``aligned_to``
it). Frame images are kept as ``sequence[image]`` rather than encoded into a video: each frame
stays the exact image that was uploaded (labels drawn on it stay exact), no encoder runs at
ingest, and the per-frame reference ids and metadata line up one to one with the items.
``scene.frames`` reads alike for both kinds (``.numpy()``, slices, ``.timestamp``; for images
the timestamps are ``k / frame_rate``).

Updates (``update=True``) compare before they write: new frames are staged only when their
content hash differs from the stored one, the metadata only when it differs, and so on per
tensor (``docs/FORMAT.md``, "Upsert"): a metadata-only update rewrites the metadata row's
table segment and never a byte of video.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..api import empty
from ..dataset import Dataset
from ..dataset.views import RowsView
from ..errors import DatasetError, SampleAppendError, VidlakeError
from ..format import records as fmt
from ..htypes import lookup
from ..htypes.video import VIDEO_COMPRESSIONS
from ..jobs.fetch import Fetcher, file_digest, local_path
from ..jobs.ingest import ChunkPacker, StagePool, resume_ingest
from ..jobs.job import Job
from ..jobs.journal import Journal
from ..jobs.lease import Lease
from ..sources import Sample
from ..storage import get_provider
from ..video.images import IMAGE_FORMAT_NAME, image_header
from .index import ItemIndex, MetadataIndex
from .items import DatasetItem, ItemRef, SceneError, VideoScene

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping
    from concurrent.futures import Future

    from ..dataset.tensor import Tensor

__all__ = ["ImageFrames", "Scene", "SceneDataset", "scene_dataset"]

SCENE_TENSORS = ("reference_id", "frames", "frame_rate", "metadata", "content_hash",
                 "item_ids", "item_metadata", "item_locations")
_ITEM_TENSORS = ("item_ids", "item_metadata", "item_locations")
#: scenes fetched and committed together by a job (one commit per batch)
DEFAULT_BATCH = 16
DEFAULT_FETCH_WORKERS = 8


def bulk_values(t: Tensor, rows: range) -> list[Any]:
    """Decoded values of scalar samples ``rows`` of ``t``, reading each chunk's covering span
    once (not one request per sample): a 100k-row metadata tensor loads in a few reads."""
    spans: dict[str, list[int]] = {}
    entries = [t.entry(i)["data"] for i in rows]
    for ext in entries:
        for cid, off, n in ext:
            sp = spans.setdefault(str(cid), [int(off), int(off) + int(n)])
            sp[0] = min(sp[0], int(off))
            sp[1] = max(sp[1], int(off) + int(n))
    blobs = {cid: (lo, t.store.read(cid, lo, hi)) for cid, (lo, hi) in spans.items()}
    out: list[Any] = []
    decode, meta, kind = t.spec.decode, t.meta, t.spec.name
    for i, ext in zip(rows, entries):
        parts = []
        for cid, off, n in ext:
            lo, blob = blobs[str(cid)]
            parts.append(blob[int(off) - lo:int(off) - lo + int(n)])
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        out.append(fmt.decode_stored(decode, data, f"{t.dataset.path}/{t.key}[{i}]", kind, meta))
    return out


def bulk_sequences(t: Tensor, rows: range) -> list[list[Any]]:
    """Decoded items of every sequence sample ``rows`` of ``t`` (as :func:`bulk_values`: each
    chunk's covering span read once), split by the items' stored offsets."""
    spans: dict[str, list[int]] = {}
    entries = [t.entry(i) for i in rows]
    for e in entries:
        for cid, off, n in e["data"]:
            sp = spans.setdefault(str(cid), [int(off), int(off) + int(n)])
            sp[0] = min(sp[0], int(off))
            sp[1] = max(sp[1], int(off) + int(n))
    blobs = {cid: (lo, t.store.read(cid, lo, hi)) for cid, (lo, hi) in spans.items()}
    out: list[list[Any]] = []
    decode, meta, kind = t.spec.decode, t.meta, t.spec.name
    for i, e in zip(rows, entries):
        parts = []
        for cid, off, n in e["data"]:
            lo, blob = blobs[str(cid)]
            parts.append(blob[int(off) - lo:int(off) - lo + int(n)])
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        offs = (e["info"].get("items") or {}).get("offsets") or [0]
        what = f"{t.dataset.path}/{t.key}[{i}]"
        out.append([fmt.decode_stored(decode, bytes(data[a:b]), what, kind, meta) for a, b in zip(offs, offs[1:])])
    return out


class _Cache:
    """What updates and queries need of every row, in memory: reference id -> row, content
    hashes, frame rates and the metadata index. The content hashes are read on the first update
    that compares one (a query never needs them: one table fewer to read after a load)."""

    def __init__(self, ds: SceneDataset) -> None:
        n = len(ds) if "frames" in ds.tensors else 0
        rows = range(n)
        refs = bulk_values(ds["reference_id"], rows) if n else []
        self.ids: dict[str, int] = {r: i for i, r in enumerate(refs)}
        self._hashes: list[str] | None = None if n else []
        self._ds = ds
        #: frame rates read so far (row -> rate); read per row when an update needs one
        self.rates: dict[int, float] = {}
        self.index = MetadataIndex(bulk_values(ds["metadata"], rows) if n else [])
        self.refs: list[str] = list(refs)
        #: the item index, built on the first ``query_items`` and kept up to date after
        self._items: ItemIndex | None = None

    @property
    def hashes(self) -> list[str]:
        """Content hash per row, read in bulk the first time one is needed."""
        if self._hashes is None:
            self._hashes = bulk_values(self._ds["content_hash"], range(len(self.refs)))
        return self._hashes

    def items(self) -> ItemIndex:
        if self._items is None:
            idx = ItemIndex()
            n = len(self.refs)
            if n and "item_ids" in self._ds.tensors:
                ids = bulk_sequences(self._ds["item_ids"], range(n))
                mds = bulk_sequences(self._ds["item_metadata"], range(n))
                for row in range(n):
                    idx.set_scene(row, ids[row], mds[row])
            self._items = idx
        return self._items

    def rate(self, row: int) -> float:
        if row not in self.rates:
            self.rates[row] = float(np.asarray(self._ds["frame_rate"].value(row)).reshape(-1)[0])
        return self.rates[row]

    def put(self, row: int, ref: str, digest: str, md: dict[str, Any], rate: float,
            items: list[Any] | None = None) -> None:
        hashes = self.hashes  # read (if not yet) over the rows known before this one
        if self._items is not None:
            its = items or []
            self._items.set_scene(row, [it.reference_id for it in its], [dict(it.metadata or {}) for it in its])
        if row == len(self.refs):
            self.refs.append(ref)
            hashes.append(digest)
        else:
            hashes[row] = digest
        self.rates[row] = rate
        self.ids[ref] = row
        self.index.set(row, md)


@dataclass
class _Fetched:
    frames: Any          # a Sample (video), or a list of Samples (frame images)
    digest: str
    nbytes: int


class ImageFrames:
    """The frames of a scene made of images, read like a video sample: ``.numpy()``, slices,
    ``.timestamp`` (``k / frame_rate`` seconds), ``.shape``.

        >>> s = ds.scene("video-1")
        >>> s.frames[2:4].numpy().shape, s.frames[2:4].timestamp
        ((2, 480, 640, 3), array([0.0667, 0.1], dtype=float32))
    """

    def __init__(self, view: Any, frame_rate: float | None) -> None:
        self.view = view
        self.frame_rate = frame_rate

    def __getitem__(self, frames: Any) -> ImageFrames:
        return ImageFrames(self.view[frames], self.frame_rate)

    def __len__(self) -> int:
        return len(self.view)

    @property
    def shape(self) -> tuple[Any, ...]:
        return tuple(self.view.shape)

    def numpy(self, aslist: bool = False, out: np.ndarray | None = None) -> Any:
        """Decoded frames ``(k, H, W, C)`` uint8 (``aslist=True`` when frame sizes differ)."""
        return self.view.numpy(aslist=aslist, out=out)

    def data(self, aslist: bool = False) -> dict[str, Any]:
        return dict(self.view.data(aslist=aslist))

    @property
    def timestamp(self) -> np.ndarray:
        """Seconds of the selected frames, float32: frame ``k`` is at ``k / frame_rate``."""
        if not self.frame_rate or math.isnan(self.frame_rate):
            raise DatasetError(f"{self.view._what()}: this scene has no frame_rate, so its frames have no "
                               "timestamps; give VideoScene(..., frame_rate=30)")
        idx, _single = self.view._selection()
        return (np.asarray(idx, dtype=np.float64) / self.frame_rate).astype(np.float32)

    timestamps = timestamp

    def __repr__(self) -> str:
        return f"ImageFrames({self.view!r}, frame_rate={self.frame_rate})"


class Scene:
    """A stored scene (``ds.scene(reference_id)``): ``frames``, ``metadata``, ``items``."""

    def __init__(self, ds: SceneDataset, row: int) -> None:
        self.dataset = ds
        self.index = row
        self.reference_id: str = ds["reference_id"].value(row)

    @property
    def is_video(self) -> bool:
        return bool(self.dataset["frames"].spec.video)

    @property
    def frame_rate(self) -> float | None:
        v = float(np.asarray(self.dataset["frame_rate"].value(self.index)).reshape(-1)[0])
        return None if math.isnan(v) else v

    @property
    def frames(self) -> Any:
        """The frames: a video sample view (``ds.frames[i]``) or :class:`ImageFrames`."""
        view = self.dataset["frames"][self.index]
        return view if self.is_video else ImageFrames(view, self.frame_rate)

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.dataset["metadata"].value(self.index))

    @property
    def video_location(self) -> str | None:
        """Where the video came from (``None`` for a scene of items)."""
        return self.dataset["frames"].entry(self.index)["info"].get("filename") if self.is_video else None

    @property
    def items(self) -> list[DatasetItem]:
        """Per-frame reference ids and metadata as :class:`DatasetItem` s (empty for a video scene)."""
        if self.is_video:
            return []
        ds, i = self.dataset, self.index
        ids = ds["item_ids"][i].numpy(aslist=True)
        mds = ds["item_metadata"][i].numpy(aslist=True)
        locs = ds["item_locations"][i].numpy(aslist=True)
        return [DatasetItem(loc, ref, md) for loc, ref, md in zip(locs, ids, mds)]

    def __repr__(self) -> str:
        return f"Scene({self.reference_id!r}, row={self.index}, {'video' if self.is_video else 'images'})"


class SceneDataset(Dataset):
    """A dataset of scenes (see the module docstring). Open with :func:`scene_dataset`."""

    _scene_cache: _Cache | None = None
    #: the storage credentials the dataset was opened with, for staging workers (memory only)
    _storage_creds: dict[str, Any] | None = None
    _scene_lock: threading.RLock | None = None

    def _load(self) -> None:
        super()._load()
        self._scene_cache = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        SceneDataset.__init__(self, state["provider"], state["path"], state["read_only"],
                              state.get("allow_local_links"))

    @property
    def _lock_(self) -> threading.RLock:
        if self._scene_lock is None:
            self._scene_lock = threading.RLock()
        return self._scene_lock

    def _cache(self) -> _Cache:
        if self._scene_cache is None:
            self._scene_cache = _Cache(self)
        return self._scene_cache

    def _invalidate(self) -> None:
        self._scene_cache = None

    # -- reading -------------------------------------------------------------------------
    @property
    def kind(self) -> str | None:
        """``"video"`` or ``"images"`` once the first scene is stored, else None."""
        t = self._tensors.get("frames")
        return None if t is None else ("video" if t.spec.video else "images")

    @property
    def reference_ids(self) -> list[str]:
        """Reference ids of the scenes, in row order."""
        return list(self._cache().refs)

    def has_scene(self, reference_id: str) -> bool:
        return reference_id in self._cache().ids

    def scene(self, reference_id: str) -> Scene:
        """The scene with that reference id (``KeyError`` naming it when there is none).

            >>> ds.scene("video-1").frames[10:20].numpy().shape
            (10, 360, 640, 3)
        """
        row = self._cache().ids.get(reference_id)
        if row is None:
            raise KeyError(f"no scene with reference_id {reference_id!r} in {self.path}")
        return Scene(self, row)

    def scene_at(self, row: int) -> Scene:
        """The scene of row ``row``."""
        if not 0 <= row < len(self):
            raise IndexError(f"{self.path}: row {row} out of range for {len(self)} scenes")
        return Scene(self, row)

    def query_metadata(self, conditions: Mapping[str, Any] | None = None, **equal: Any) -> list[str]:
        """Reference ids of the scenes whose metadata match every condition, in row order.
        A condition is a value (equality) or ``{operator: value}`` with operators
        ``== != > >= < <= in "not in" exists``; dotted names reach nested fields. Indexed:
        the first query of a field builds its index (one pass), later ones cost O(log n + hits).

            >>> ds.query_metadata(weather="rain")
            ['video-1', 'video-7']
            >>> ds.query_metadata({"speed": {">": 3, "<=": 9}, "camera.id": {"in": [1, 2]}})
        """
        c = self._cache()
        return [c.refs[i] for i in c.index.query({**(conditions or {}), **equal})]

    def query_items(self, conditions: Mapping[str, Any] | None = None, **equal: Any) -> list[ItemRef]:
        """The frame items whose per-frame metadata (``DatasetItem.metadata``) match every
        condition, as :class:`ItemRef` (scene reference id, item reference id, frame number),
        ordered by scene then frame. Conditions as for :meth:`query_metadata`
        (``{"exists": False}`` matches items without the field). Indexed: the first call
        reads every scene's item metadata once; appends and updates keep the index current.

            >>> ds.query_items(is_raining=True)
            [ItemRef(scene='video-1', item='video-1-frame-0', frame=0)]
            >>> ds.query_items({"cars": {">=": 3}}, camera="front")
        """
        c = self._cache()
        with self._lock_:
            hits = c.items().query({**(conditions or {}), **equal})
        return [ItemRef(c.refs[row], item, frame) for row, frame, item in hits]

    def filter(self, fn: Any = None, **conditions: Any) -> RowsView:
        """``ds.filter(lambda row: ...)`` as for any dataset, or metadata conditions as for
        :meth:`query_metadata` (``ds.filter(weather="rain")``, ``ds.filter({"speed": {">": 3}})``):
        a view of the matching rows.

            >>> ds.filter(weather="rain").frames[0].numpy().shape
        """
        if callable(fn):
            return super().filter(fn)
        conds = {**(fn or {}), **conditions}
        return RowsView(self, self._cache().index.query(conds))

    # -- writing ---------------------------------------------------------------------------
    def append(self, items: Any, update: bool = False, asynchronous: bool = False,  # type: ignore[override]
               *, creds: dict[str, Any] | None = None, fetch_workers: int = DEFAULT_FETCH_WORKERS,
               batch_size: int = DEFAULT_BATCH, retries: int = 2, skip_ok: bool = False,
               executor: str | None = None, workers: int = 0, ray_address: str | None = None,
               source_creds: dict[str, Any] | None = None) -> Any:
        """Add scenes (a :class:`VideoScene` or a list of them) in a job; returns the :class:`Job`.

        With ``update=True`` a scene whose reference id exists gets the new metadata, frame
        rate and items, and new frames only when their content changed; with ``update=False``
        it is skipped and reported (``job.status()["skipped"]``). ``asynchronous=True`` runs
        the job in a background thread (poll ``job.status()``); otherwise this call blocks.
        Files are fetched by ``fetch_workers`` threads with ``retries``; a scene that fails
        (unreadable file, wrong format) is reported in ``job.errors()`` and leaves nothing
        behind; the others go on. A dict is appended as one row, as by ``Dataset.append``.
        ``executor="ray"`` (``ray_address``: ``"auto"``, ``"ray://host:10001"``; default a
        local cluster) or ``workers=N`` (processes) fetches, indexes and stages new scenes on
        workers that write their own chunk objects; this process commits once per batch.
        ``creds`` (or its other name ``source_creds``, as for ``vidlake.jobs.ingest_files``) are
        the credentials of the scenes' files: held in memory only, never journaled.

            >>> job = ds.append([scene0, scene1], update=True, asynchronous=True)
            >>> job.sleep_until_complete()
        """
        if isinstance(items, dict):
            self._invalidate()
            return super().append(items, skip_ok=skip_ok)
        scenes = [items] if isinstance(items, VideoScene) else list(items)
        for k, s in enumerate(scenes):
            if not isinstance(s, VideoScene):
                raise SceneError(f"ds.append takes vidlake.VideoScene objects; item {k} is a {type(s).__name__}")
        seen: dict[str, int] = {}
        for k, s in enumerate(scenes):
            if s.reference_id in seen:
                raise SceneError(f"reference_id {s.reference_id!r} is given twice (scenes {seen[s.reference_id]} "
                                 f"and {k}); reference ids are unique")
            seen[s.reference_id] = k
        self.writer.check_writable()
        if self._depth:
            raise SceneError("ds.append(scenes) commits batch by batch; call it outside `with ds:`")
        creds = creds if creds is not None else source_creds
        journal = Journal.create(self, "scenes", [s.to_json() for s in scenes],
                                 {"update": bool(update), "batch_size": int(batch_size),
                                  "fetch_workers": int(fetch_workers), "retries": int(retries),
                                  "executor": executor, "workers": int(workers)})
        return self._start(journal, scenes, asynchronous, creds, executor, workers, ray_address)

    def resume_job(self, job_id: str, asynchronous: bool = False, creds: dict[str, Any] | None = None,
                   workers: int | None = None, executor: str | None = None,
                   source_creds: dict[str, Any] | None = None, **kwargs: Any) -> Job:
        """Continue a job that was killed, cancelled or failed: the tasks whose rows the commit
        record lists are not done again, the others are (``vidlake/jobs/journal.py``).

            >>> job = ds.resume_job("job-3f0c9a1b2d4e5f60")
        """
        creds = creds if creds is not None else source_creds   # the files' creds (memory only)
        journal = Journal.open(self, job_id)
        if journal.kind == "scenes":
            scenes = [VideoScene.from_json(d) for d in journal.tasks]
            a = journal.args
            return self._start(journal, scenes, asynchronous, creds, a.get("executor") if executor is None else executor,
                               int(a.get("workers") or 0) if workers is None else workers, kwargs.get("ray_address"))
        return resume_ingest(self, journal, asynchronous=asynchronous, workers=workers, executor=executor,
                             creds=self._storage_creds, source_creds=creds, **kwargs)

    def update_metadata(self, metadata: Mapping[str, dict[str, Any]]) -> int:
        """Replace the metadata of existing scenes, ``{reference_id: metadata}``, in one commit;
        frames are not touched (nor fetched). Returns the number of scenes changed.

            >>> ds.update_metadata({"video-1": {"weather": "sun"}})
            1
        """
        self.writer.check_writable()
        c = self._cache()
        missing = [r for r in metadata if r not in c.ids]
        if missing:
            raise KeyError(f"no scene with reference_id {missing[0]!r} in {self.path}")
        t = self["metadata"]
        w = self.writer
        save = w.savepoint()
        undo: list[Any] = []
        changed: list[tuple[int, str, dict[str, Any]]] = []
        with self._lock_:
            try:
                for ref, md in metadata.items():
                    md = VideoScene(ref, video_location="-", metadata=md).metadata or {}
                    row = c.ids[ref]
                    if c.index.values[row] == md:
                        continue
                    w.stage_replacement(t, row, t.spec.prepare(md, "metadata", t.meta, self.link_access), undo)
                    changed.append((row, ref, md))
                w.maybe_commit()
            except BaseException:
                w.undo_replacements(undo)
                w.rollback(save)
                self._invalidate()
                raise
            for row, _ref, md in changed:
                c.index.set(row, md)
        return len(changed)

    def extend(self, samples: dict[str, Any], skip_ok: bool = False) -> None:
        self._invalidate()
        super().extend(samples, skip_ok=skip_ok)

    def upsert(self, rows: Any, key: str = "reference_id") -> list[int]:
        self._invalidate()
        return super().upsert(rows, key=key)

    def rollback(self) -> None:
        self._invalidate()
        super().rollback()

    # -- the job -----------------------------------------------------------------------------
    def _start(self, journal: Journal, scenes: list[VideoScene], asynchronous: bool,
               creds: dict[str, Any] | None, executor: str | None = None, workers: int = 0,
               ray_address: str | None = None) -> Job:
        def run(j: Job) -> None:
            self._run(j, journal, scenes, creds, executor, workers, ray_address)

        journal.lease = lease = Lease.acquire(self, journal.id)   # JobRunningError while it runs elsewhere
        job = Job(journal.id, len(scenes), run, self.path, lease=lease)

        def finish(j: Job, end: str) -> None:
            with self._lock_:   # another job of this dataset object may be committing
                journal.finish({**j.status(), "state": end})
        job.on_end.append(finish)
        job.done = len(journal.committed())
        return job.start(asynchronous)

    def _run(self, job: Job, journal: Journal, scenes: list[VideoScene], creds: dict[str, Any] | None,
             executor: str | None, workers: int, ray_address: str | None) -> None:
        args = journal.args
        update = bool(args.get("update"))
        batch = max(1, int(args.get("batch_size", DEFAULT_BATCH)))
        pending = journal.pending()
        batches = [pending[b:b + batch] for b in range(0, len(pending), batch)]
        fetch_workers, retries = int(args.get("fetch_workers", DEFAULT_FETCH_WORKERS)), int(args.get("retries", 2))
        fetcher = Fetcher(fetch_workers, retries, creds)
        pool = StagePool(workers, executor, ray_address) if executor == "ray" or workers > 0 else None
        ahead = 1 if pool is None else 2 * pool.width   # batches fetched / staged ahead of the committer

        def prepare(ks: list[int]) -> list[tuple[int, VideoScene, Callable[[], Any]]]:
            """Start a batch: new scenes go to a staging task when there is a pool (and the
            tensors exist), the others are fetched here."""
            remote = [k for k in ks if pool is not None and "frames" in self._tensors
                      and scenes[k].reference_id not in self._cache().ids]
            got: dict[int, Any] = {}
            if remote:
                assert pool is not None
                tmetas = {name: dict(self._tensors[name].meta) for name in SCENE_TENSORS}
                handle = pool.submit(stage_scenes, self.path, self._storage_creds, tmetas,
                                     [(k, scenes[k].to_json()) for k in remote], creds, fetch_workers, retries)

                def result(k: int) -> Any:
                    if not got:
                        got.update({r[0]: r for r in pool.result(handle)})
                    return _Staged.of(got[k])
            out: list[tuple[int, VideoScene, Callable[[], Any]]] = []
            for k in ks:
                resolve: Callable[[], Any] = functools.partial(result, k) if k in remote \
                    else self._submit(fetcher, scenes[k])
                out.append((k, scenes[k], resolve))
            return out

        journal.attach()
        try:
            queue = [prepare(ks) for ks in batches[:ahead]]
            for b in range(len(batches)):
                if job.cancelled():
                    return
                cur = queue.pop(0)
                if b + ahead < len(batches):
                    queue.append(prepare(batches[b + ahead]))
                self._run_batch(job, journal, cur, update)
                journal.write_status(job.status())
                job.progress()
        finally:
            journal.detach()
            fetcher.close()
            if pool is not None:
                pool.shutdown()
        journal.write_status({**job.status(), "state": "cancelled" if job.cancelled() else "completed"})

    def _run_batch(self, job: Job, journal: Journal, work: list[tuple[int, VideoScene, Callable[[], _Fetched]]],
                   update: bool) -> None:
        outcomes: list[str] = []
        with self._lock_:
            threshold = self.flush_threshold
            self.flush_threshold = 1 << 62  # one commit per batch: the journal's progress goes with it
            try:
                with self:
                    for k, sc, resolve in work:
                        try:
                            fetched = resolve()
                            job.bytes += fetched.nbytes
                            outcome = self._stage_entries(sc, fetched) if isinstance(fetched, _Staged) \
                                else self._stage_scene(sc, fetched, update)
                        except VidlakeError as e:
                            job.error(sc.reference_id, e)
                            continue
                        if outcome != "skipped":
                            journal.staged.add(k)
                        outcomes.append(outcome)
            except BaseException:
                journal.batch_dropped()
                self._invalidate()
                raise
            finally:
                self.flush_threshold = threshold
        journal.batch_committed()
        for o in outcomes:
            if o == "skipped":
                job.skipped += 1
            else:
                job.done += 1
            job.count(o)

    def _stage_entries(self, sc: VideoScene, st: _Staged) -> str:
        """Stage a new scene whose rows a worker prepared (its bytes are in chunk objects the
        worker wrote): only the table entries are added here."""
        c = self._cache()
        if sc.reference_id in c.ids:
            raise SceneError(f"VideoScene {sc.reference_id!r} was added meanwhile; append it again")
        w = self.writer
        n = len(self)
        save = w.savepoint()
        try:
            for k in SCENE_TENSORS:
                w.stage_entry(self._tensors[k], st.entries[k])
            w.check_alignment({k: n for k in SCENE_TENSORS})
        except BaseException:
            w.rollback(save)
            raise
        c.put(n, sc.reference_id, st.digest, dict(sc.metadata or {}), st.rate, sc.items)
        return "appended"

    def _submit(self, fetcher: Fetcher, sc: VideoScene) -> Callable[[], _Fetched]:
        """Start fetching a scene's files; returns the call that waits for them."""
        return _submit_fetch(fetcher, sc)

    def _create_scene_tensors(self, sc: VideoScene, fetched: _Fetched) -> None:
        if sc.video_location is not None:
            ext = sc.video_location.rsplit(".", 1)[-1].lower().split("?")[0]
            self.create_tensor("frames", htype="video", sample_compression=ext if ext in VIDEO_COMPRESSIONS else "mp4")
            aligned = None
        else:
            comp = "jpeg"
            if fetched.frames:
                try:
                    comp = IMAGE_FORMAT_NAME.get(image_header(fetched.frames[0].buffer)[0], "jpeg")
                except ValueError as e:
                    raise SampleAppendError(f"{sc.items[0].image_location if sc.items else ''}: not an image ({e})") \
                        from None
            self.create_tensor("frames", htype="sequence[image]", sample_compression=comp)
            aligned = "frames"
        self.create_tensor("reference_id", htype="text")
        self.create_tensor("frame_rate", htype="generic", dtype="float64")
        self.create_tensor("metadata", htype="json")
        self.create_tensor("content_hash", htype="text")
        self.create_tensor("item_ids", htype="sequence[text]", aligned_to=aligned)
        self.create_tensor("item_metadata", htype="sequence[json]", aligned_to=aligned)
        self.create_tensor("item_locations", htype="sequence[text]", aligned_to=aligned)

    def _stage_scene(self, sc: VideoScene, fetched: _Fetched, update: bool) -> str:
        """Stage one scene (inside the job's ``with ds:``): ``"appended"``, ``"updated"``,
        ``"unchanged"`` or ``"skipped"``. All or nothing: a failure leaves nothing staged."""
        if "frames" not in self._tensors:
            self._create_scene_tensors(sc, fetched)
        missing = [k for k in SCENE_TENSORS if k not in self._tensors]
        if missing:
            raise DatasetError(f"{self.path} is not a scene dataset (no tensor(s) {missing})")
        if sc.is_video != (self.kind == "video"):
            raise SceneError(f"VideoScene {sc.reference_id!r} is a {'video' if sc.is_video else 'frame-items'} "
                             f"scene but {self.path} holds {self.kind} scenes; a scene dataset holds one kind")
        c = self._cache()
        row = c.ids.get(sc.reference_id)
        if row is not None and not update:
            return "skipped"
        values = _scene_values(sc, fetched)
        w = self.writer

        def prep(k: str, v: Any) -> Any:
            t = self._tensors[k]
            return t.spec.prepare(v, k, t.meta, self.link_access)

        if row is None:
            prepared, rate = _prepare_row({k: (self._tensors[k].spec, self._tensors[k].meta) for k in SCENE_TENSORS},
                                          sc, fetched, self.link_access)
            n = len(self)
            if any(len(self._tensors[k]) != n for k in SCENE_TENSORS):
                raise DatasetError(f"{self.path}: the scene tensors have different lengths; the dataset "
                                   "was changed by hand")
            save = w.savepoint()
            try:
                for k in SCENE_TENSORS:
                    w.stage(self._tensors[k], prepared[k])
                w.check_alignment({k: n for k in SCENE_TENSORS})
            except BaseException:
                w.rollback(save)
                raise
            c.put(n, sc.reference_id, fetched.digest, dict(values["metadata"]), rate, sc.items)
            return "appended"
        # update: stage only what differs
        changed: dict[str, Any] = {}
        frames_changed = fetched.digest != c.hashes[row]
        if frames_changed:
            changed["frames"] = fetched.frames
            changed["content_hash"] = fetched.digest
        if values["metadata"] != c.index.values[row]:
            changed["metadata"] = values["metadata"]
        if not sc.is_video:
            for k in _ITEM_TENSORS:
                if frames_changed or self._tensors[k][row].numpy(aslist=True) != values[k]:
                    changed[k] = values[k]
        prepared = {k: prep(k, v) for k, v in changed.items()}
        old_rate = c.rate(row)
        rate = sc.frame_rate or (float(prepared["frames"].info.get("fps") or "nan")
                                 if frames_changed and sc.is_video else old_rate)
        if not (rate == old_rate or (math.isnan(rate) and math.isnan(old_rate))):
            prepared["frame_rate"] = prep("frame_rate", np.float64(rate))
        if not prepared:
            return "unchanged"
        save = w.savepoint()
        undo: list[Any] = []
        try:
            for k, p in prepared.items():
                w.stage_replacement(self._tensors[k], row, p, undo)
            w.check_alignment({k: row for k in prepared})
        except BaseException:
            w.undo_replacements(undo)
            w.rollback(save)
            raise
        c.put(row, sc.reference_id, fetched.digest, dict(values["metadata"]), rate, sc.items)
        return "updated"


def _fetch_video(fetcher: Fetcher, loc: str) -> _Fetched:
    """A video scene's file: a local one is hashed in place and appended from disk (no copy in
    memory); a remote one is fetched whole (with retries)."""
    path = local_path(loc)
    if path is not None:
        try:
            digest = file_digest(path)
        except OSError as e:
            raise SampleAppendError(f"cannot read video file {loc!r}: {e.strerror or e}") from None
        s = Sample(loc)
        return _Fetched(s, digest, os.path.getsize(path))
    data = fetcher.fetch(loc)
    s = Sample(loc)
    s._buffer = data
    return _Fetched(s, hashlib.blake2b(data, digest_size=32).hexdigest(), len(data))


def _submit_fetch(fetcher: Fetcher, sc: VideoScene) -> Callable[[], _Fetched]:
    """Start fetching a scene's files on ``fetcher``; returns the call that waits for them."""
    if sc.video_location is not None:
        loc = sc.video_location
        fut: Future[_Fetched] = fetcher.submit_call(_fetch_video, fetcher, loc)
        return fut.result
    locs = [it.image_location for it in sc.items or ()]
    futs = [fetcher.submit(loc) for loc in locs]

    def resolve() -> _Fetched:
        h = hashlib.blake2b(digest_size=32)
        samples = []
        n = 0
        try:
            for loc, f in zip(locs, futs):
                data = f.result()
                h.update(len(data).to_bytes(8, "little"))
                h.update(hashlib.blake2b(data, digest_size=32).digest())
                s = Sample(loc)
                s._buffer = data
                samples.append(s)
                n += len(data)
        finally:
            for f in futs:
                f.cancel()
        return _Fetched(samples, h.hexdigest(), n)
    return resolve


def _scene_values(sc: VideoScene, fetched: _Fetched) -> dict[str, Any]:
    items = sc.items or []
    return {"reference_id": sc.reference_id, "frames": fetched.frames, "metadata": sc.metadata or {},
            "content_hash": fetched.digest, "item_ids": [it.reference_id for it in items],
            "item_metadata": [it.metadata or {} for it in items],
            "item_locations": [it.image_location for it in items]}


def _prepare_row(tensors: Mapping[str, tuple[Any, Mapping[str, Any]]], sc: VideoScene, fetched: _Fetched,
                 ctx: Any) -> tuple[dict[str, Any], float]:
    """Every scene tensor's prepared sample for a new scene, and its frame rate (a video's own
    fps when the scene gives none)."""
    def prep(k: str, v: Any) -> Any:
        spec, meta = tensors[k]
        return spec.prepare(v, k, meta, ctx)

    values = _scene_values(sc, fetched)
    prepared = {"frames": prep("frames", fetched.frames)}
    rate = sc.frame_rate or (float(prepared["frames"].info.get("fps") or "nan") if sc.is_video else math.nan)
    values["frame_rate"] = np.float64(rate)
    prepared.update({k: prep(k, v) for k, v in values.items() if k != "frames"})
    return prepared, rate


@dataclass
class _Staged:
    """A new scene a worker staged: its table entries (bytes already in the worker's chunks)."""

    entries: dict[str, dict[str, Any]]
    digest: str
    rate: float
    nbytes: int

    @classmethod
    def of(cls, r: tuple[Any, ...]) -> _Staged:
        _k, entries, err, nbytes, digest, rate = r
        if err is not None:
            raise SampleAppendError(err)
        return cls(entries, digest, rate, nbytes)


def stage_scenes(root: str, storage_creds: dict[str, Any] | None, tmetas: dict[str, dict[str, Any]],
                 tasks: list[tuple[int, dict[str, Any]]], fetch_creds: dict[str, Any] | None,
                 fetch_workers: int = DEFAULT_FETCH_WORKERS, retries: int = 2) -> list[tuple[Any, ...]]:
    """A worker's part of a scene job (a Ray task or a pool process): fetch, hash and index the
    new scenes ``tasks`` (``(task number, scene JSON)``), write their samples into new chunk
    objects of every scene tensor under ``root`` and return, per scene, ``(task number,
    {tensor: entry} or None, error or None, bytes fetched, content hash, frame rate)``.
    Nothing is committed here.
    """
    provider = get_provider(root, creds=storage_creds)
    tensors = {k: (lookup(m["htype"]), m) for k, m in tmetas.items()}
    video_kind = bool(tensors["frames"][0].video)
    packers = {k: ChunkPacker(k, m) for k, m in tmetas.items()}
    out: list[tuple[Any, ...]] = []
    with Fetcher(fetch_workers, retries, fetch_creds) as fetcher:
        work = [(k, VideoScene.from_json(d)) for k, d in tasks]
        resolvers = [(k, sc, _submit_fetch(fetcher, sc)) for k, sc in work]
        for k, sc, resolve in resolvers:
            nbytes = 0
            try:
                if sc.is_video != video_kind:
                    raise SceneError(f"VideoScene {sc.reference_id!r} is a {'video' if sc.is_video else 'frame-items'} "
                                     f"scene but {root} holds {'video' if video_kind else 'images'} scenes")
                fetched = resolve()
                nbytes = fetched.nbytes
                prepared, rate = _prepare_row(tensors, sc, fetched, None)
            except VidlakeError as e:
                out.append((k, None, f"{type(e).__name__}: {e}", nbytes, None, None))
                continue
            entries = {name: packers[name].entry(p) for name, p in prepared.items()}
            out.append((k, entries, None, nbytes, fetched.digest, rate))
    for packer in packers.values():
        packer.flush(provider)
    return out


def scene_dataset(path: Any, read_only: bool = False, overwrite: bool = False, creds: dict[str, Any] | None = None,
                  allow_local_links: Any = None) -> SceneDataset:
    """Open the scene dataset at ``path``, creating it when there is none (``open_args`` as
    :func:`vidlake.dataset`). Its tensors are laid out by the first scene appended.

        >>> ds = vidlake.scene_dataset("./scenes_ds")
        >>> ds = vidlake.scene_dataset("s3://bucket/scenes", creds={...})
    """
    p = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    provider = get_provider(p, creds=creds, read_only=read_only)
    if overwrite or not provider.exists(fmt.DATASET_META_KEY):
        if read_only:
            raise DatasetError(f"no vidlake dataset at {p} (and read_only=True cannot create one)")
        empty(p, overwrite=overwrite, creds=creds, allow_local_links=allow_local_links)
    ds = SceneDataset(provider, p, read_only=read_only, allow_local_links=allow_local_links)
    ds._storage_creds = creds
    if ds.tensors and "reference_id" not in ds.tensors:
        raise DatasetError(f"{p} is a vidlake dataset but not a scene dataset (tensors {list(ds.tensors)}); "
                           "open it with vidlake.load")
    return ds
