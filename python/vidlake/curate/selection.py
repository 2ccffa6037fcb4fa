"""Selecting frames from a collection of videos: :func:`select`.

    >>> import vidlake
    >>> sel = vidlake.select("s3://bucket/input/", n_samples=50, strategy="diversity",
    ...                      creds=creds, candidates="per_second:1")
    >>> sel.records()[0]
    {'video': 3, 'source': 's3://bucket/input/c.mp4', 'frame': 412, 'timestamp': 16.48, 'score': 0.71}
    >>> vidlake.export_frames(sel, "s3://bucket/lightly/frames/", creds=creds)

Strategies: ``"diversity"`` (greedy farthest point, the k-center heuristic, on the candidate
embeddings: each pick is the candidate farthest from everything picked so far; its ``score``
is that distance), ``"random"`` (uniform over candidates, or by ``weights``) and ``"uniform"``
(evenly spaced in play time over the whole collection). All are deterministic for a ``seed``.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import json
import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dataset import Dataset, Tensor
from ..errors import VidlakeError
from ..storage import get_provider
from ..storage.creds import redact
from .candidates import Candidates, candidate_frames, iter_candidate_batches
from .embed import default_embed, embedder_name, embedder_size
from .scan import ScanResult, open_video, scan

if TYPE_CHECKING:
    from ..video import VideoReader

__all__ = ["STRATEGIES", "Selection", "VideoSet", "farthest_point", "select"]

STRATEGIES = ("diversity", "random", "uniform")


# ---------------------------------------------------------------------------------------
# the videos a selection runs over
# ---------------------------------------------------------------------------------------
class VideoSet:
    """The videos of a selection: a dataset video tensor, a :func:`vidlake.scan` result, or a
    list of paths / URLs. ``urls[i]`` names video ``i``; ``open(i)`` gives its reader."""

    def __init__(self, source: Any, creds: dict[str, Any] | None = None) -> None:
        self.tensor: Tensor | None = None
        self.urls: list[str]
        self.creds = creds
        if isinstance(source, VideoSet):
            self.tensor, self.urls, self.creds = source.tensor, list(source.urls), source.creds
        elif isinstance(source, Tensor):
            if not source.spec.video:
                raise VidlakeError(f"tensor {source.key!r} is not a video tensor (htype {source.htype!r})")
            self.tensor = source
            self.urls = [self._tensor_url(source, i) for i in range(len(source))]
        elif isinstance(source, ScanResult):
            self.urls = list(source.videos)
            self.creds = creds if creds is not None else source.creds
        elif isinstance(source, (str, os.PathLike)):
            found = scan(source, creds)
            self.urls = list(found.videos)
        elif isinstance(source, Sequence):
            self.urls = [os.fspath(s) if isinstance(s, os.PathLike) else str(s) for s in source]
        else:
            raise TypeError("source must be a video tensor, a vidlake.scan(...) result, a folder / glob / "
                            f"prefix, or a list of paths or URLs; got {type(source).__name__}")

    @staticmethod
    def _tensor_url(t: Tensor, i: int) -> str:
        if t.spec.linked:
            url = (t.entry(i).get("link") or {}).get("url")
            if url:
                return redact(str(url))
        return f"{redact(str(t.dataset.path))}#{t.key}[{i}]"

    def __len__(self) -> int:
        return len(self.urls)

    def open(self, i: int) -> VideoReader:
        if self.tensor is not None:
            return self.tensor.open_reader(i, threads=1)
        return open_video(self.urls[i], self.creds, threads=1)

    def label(self, i: int) -> str:
        """A short name of video ``i`` for file names: its file stem, or ``<tensor>_<i>``."""
        if self.tensor is not None and not self.tensor.spec.linked:
            return f"{self.tensor.key}_{i:05d}"
        base = self.urls[i].rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        stem = os.path.splitext(base)[0] or f"video_{i:05d}"
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)


# ---------------------------------------------------------------------------------------
# stored embeddings (reused across runs)
# ---------------------------------------------------------------------------------------
class _FolderStore:
    """Embeddings as ``<key>.npz`` under a folder or a storage URL prefix."""

    def __init__(self, root: str, creds: dict[str, Any] | None) -> None:
        self.provider = get_provider(root, creds=creds)

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        name = f"{key}.npz"
        try:
            if not self.provider.exists(name):
                return None
            with np.load(io.BytesIO(self.provider.get(name))) as z:
                return z["frames"].astype(np.int64), z["embeddings"].astype(np.float32)
        except (OSError, ValueError, KeyError):
            return None

    def put(self, key: str, frames: np.ndarray, emb: np.ndarray) -> None:
        buf = io.BytesIO()
        np.savez(buf, frames=frames, embeddings=emb)
        self.provider.put(f"{key}.npz", buf.getvalue())


class _DatasetStore:
    """Embeddings in a dataset: ``<prefix>_keys`` (text), ``<prefix>_frames`` (int64, the
    candidate frame numbers) and ``<prefix>_embeddings`` (float32 (n, d), row j of a sample
    belongs to frame j of the same sample of ``_frames``)."""

    def __init__(self, ds: Dataset, prefix: str) -> None:
        self.ds = ds
        self.names = (f"{prefix}_keys", f"{prefix}_frames", f"{prefix}_embeddings")
        self._keys: dict[str, int] | None = None

    def _index(self) -> dict[str, int]:
        if self._keys is None:
            k = self.names[0]
            self._keys = {} if k not in self.ds.tensors else {
                str(v): i for i, v in enumerate(self.ds.tensors[k].numpy(aslist=True))}
        return self._keys

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        i = self._index().get(key)
        if i is None:
            return None
        t = self.ds.tensors
        return (np.asarray(t[self.names[1]][i].numpy(), np.int64),
                np.asarray(t[self.names[2]][i].numpy(), np.float32))

    def put(self, key: str, frames: np.ndarray, emb: np.ndarray) -> None:
        keys, fr, em = self.names
        tensors = self.ds.tensors
        if keys not in tensors:
            self.ds.create_tensor(keys, htype="text")
            self.ds.create_tensor(fr, htype="generic", dtype="int64")
            self.ds.create_tensor(em, htype="generic", dtype="float32")
            tensors = self.ds.tensors
        with self.ds:
            tensors[keys].append(key)
            tensors[fr].append(np.asarray(frames, np.int64))
            tensors[em].append(np.asarray(emb, np.float32))
        self._index()[key] = len(self.ds.tensors[keys]) - 1


def _store_for(cache: Any, creds: dict[str, Any] | None) -> _FolderStore | _DatasetStore | None:
    if cache is None or cache is False:
        return None
    if isinstance(cache, Dataset):
        return _DatasetStore(cache, "curate")
    if isinstance(cache, tuple) and len(cache) == 2 and isinstance(cache[0], Dataset):
        return _DatasetStore(cache[0], str(cache[1]))
    if isinstance(cache, (str, os.PathLike)):
        return _FolderStore(os.fspath(cache), creds)
    raise TypeError(f"cache must be None, a folder / URL prefix, a Dataset or (Dataset, prefix); got {cache!r}")


def _video_key(reader: VideoReader, url: str, spec: Candidates, ename: str, size: tuple[int, int]) -> str:
    h = hashlib.sha1()
    h.update(reader.index.to_bytes())  # content-defined: the same video under another name hits
    h.update(json.dumps([str(spec), ename, list(size)]).encode())
    return h.hexdigest()[:32]


# ---------------------------------------------------------------------------------------
# per-video work (in-process or in a pool worker)
# ---------------------------------------------------------------------------------------
@dataclass
class _Job:
    videos: VideoSet
    spec: Candidates
    embed: Callable[[np.ndarray], np.ndarray] | None
    size: tuple[int, int]
    batch: int
    store: Any
    precomputed: list[np.ndarray] | None


@dataclass
class _VideoResult:
    frames: np.ndarray
    timestamps: np.ndarray
    embeddings: np.ndarray | None
    meta: dict[str, Any]
    stats: dict[str, int] = field(default_factory=dict)
    error: str | None = None


_JOB: _Job | None = None  # set before a pool forks, so workers inherit the embedder and the videos


def _run_video(job: _Job, i: int) -> _VideoResult:
    try:
        r = job.videos.open(i)
    except (VidlakeError, OSError, ValueError) as e:
        return _VideoResult(np.zeros(0, np.int64), np.zeros(0), None, {}, error=str(e))
    m = r.metadata
    meta = {"num_frames": len(r), "fps": m.get("fps"), "width": m.get("width"), "height": m.get("height"),
            "codec": m.get("codec"), "duration": float(r.end_seconds - r.timestamps[0]) if len(r) else 0.0}
    frames = candidate_frames(r, job.spec)
    ts = np.asarray(r.timestamps, np.float64)[frames] if len(frames) else np.zeros(0)
    stats: dict[str, int] = {}
    emb: np.ndarray | None = None
    if job.precomputed is not None:
        emb = np.asarray(job.precomputed[i], np.float32)
        if len(emb) != len(frames):
            raise ValueError(f"embeddings of video {i} ({job.videos.urls[i]}) have {len(emb)} rows but it has "
                             f"{len(frames)} candidates ({job.spec})")
    elif job.embed is not None:
        key = _video_key(r, job.videos.urls[i], job.spec, embedder_name(job.embed), job.size)
        hit = job.store.get(key) if job.store is not None else None
        if hit is not None and np.array_equal(hit[0], frames):
            emb = hit[1]
            stats["reused"] = 1
        else:
            parts = []
            for _, batch in iter_candidate_batches(r, frames, job.spec, size=job.size, batch=job.batch,
                                                   stats=stats):
                parts.append(np.asarray(job.embed(batch), np.float32))
            emb = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
            if len(emb) != len(frames) or emb.ndim != 2:
                raise ValueError(f"the embedder returned shape {emb.shape} for {len(frames)} frames; "
                                 "it must return (n, d)")
            if job.store is not None:
                job.store.put(key, frames, emb)
    return _VideoResult(frames, ts, emb, meta, stats)


def _child_init() -> None:
    """In each forked worker: a parent that ran torch leaves its intra-op thread pool behind in the
    child, which hangs the first parallel op there; one thread per worker, as PyTorch's own
    DataLoader workers do."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _pool_task(i: int) -> _VideoResult:
    assert _JOB is not None
    return _run_video(_JOB, i)


def _run_all(job: _Job, todo: list[int], workers: int, progress: bool) -> dict[int, _VideoResult]:
    global _JOB
    out: dict[int, _VideoResult] = {}
    bar = _bar(len(todo), "select: embedding" if job.embed else "select: indexing", progress)
    try:
        if workers <= 1 or len(todo) <= 1 or isinstance(job.store, _DatasetStore):
            for i in todo:
                out[i] = _run_video(job, i)
                bar.update(1)
        else:
            _JOB = job
            ctx = mp.get_context("fork")
            with cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                        initializer=_child_init) as ex:
                futs = {ex.submit(_pool_task, i): i for i in todo}
                for f in cf.as_completed(futs):
                    out[futs[f]] = f.result()
                    bar.update(1)
    finally:
        _JOB = None
        bar.close()
    return out


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, desc: str, progress: bool, unit: str = "video") -> Any:
    if not progress or total <= 1:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit)


# ---------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------
def farthest_point(emb: np.ndarray, k: int, *, seed: int = 0, groups: np.ndarray | None = None,
                   per_group: int | None = None, weights: np.ndarray | None = None,
                   first: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy farthest-point (k-center) selection: ``(picked rows, scores)``.

    The first row is drawn with ``seed`` (or given as ``first``); each next pick is the row
    with the largest (``weights``-scaled) distance to its nearest pick so far; ties go to the
    lowest row. A pick's score is that distance; the first one's is the second pick's distance
    to it. ``groups`` with ``per_group`` caps the picks per group (rows of one video).
    Rows with weight 0 are never picked.

        >>> pts = np.array([[0, 0], [0.1, 0], [5, 5], [10, 0]], np.float32)
        >>> farthest_point(pts, 3, first=0)[0]
        array([0, 3, 2])
    """
    emb = np.asarray(emb, np.float32)
    n = len(emb)
    w = np.ones(n, np.float32) if weights is None else np.asarray(weights, np.float32)
    allowed = w > 0
    k = int(min(k, int(allowed.sum())))
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    counts: dict[int, int] = {}
    if first is None:
        rng = np.random.default_rng(seed)
        first = int(rng.choice(np.flatnonzero(allowed)))
    picks = [first]
    scores = [0.0]
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: one matrix-vector product per pick, no (n, d) temporaries
    sq = np.einsum("ij,ij->i", emb, emb)

    def dist(row: int) -> np.ndarray:
        d2 = emb @ (-2.0 * emb[row])
        d2 += sq
        d2 += sq[row]
        np.maximum(d2, 0.0, out=d2)
        return np.sqrt(d2, out=d2)

    mind = dist(first)
    mind[~allowed] = -1.0

    def take(row: int) -> None:
        mind[row] = -1.0
        if groups is not None and per_group is not None:
            g = int(groups[row])
            counts[g] = counts.get(g, 0) + 1
            if counts[g] >= per_group:
                mind[groups == g] = -1.0

    take(first)
    weighted = weights is not None
    while len(picks) < k:
        gain = mind * w if weighted else mind
        row = int(np.argmax(gain))
        if gain[row] < 0:
            break  # everything left is capped or excluded
        picks.append(row)
        scores.append(float(gain[row]))
        np.minimum(mind, dist(row), out=mind)  # excluded rows stay at -1 (distances are >= 0)
        take(row)
    if len(picks) > 1:
        scores[0] = float(np.linalg.norm(emb[picks[1]].astype(np.float64) - emb[first]) * w[first])
    return np.asarray(picks, np.int64), np.asarray(scores, np.float32)


def _random(n: int, k: int, seed: int, groups: np.ndarray, per_group: int | None,
            weights: np.ndarray | None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    keys = np.full(n, np.inf)
    pos = w > 0
    # weighted sampling without replacement (Efraimidis-Spirakis): smallest -log(u)/w first
    keys[pos] = -np.log(rng.random(int(pos.sum()))) / w[pos]
    order = np.argsort(keys, kind="stable")
    order = order[np.isfinite(keys[order])]
    return _cap(order, k, groups, per_group)


def _cap(order: np.ndarray, k: int, groups: np.ndarray, per_group: int | None) -> np.ndarray:
    out: list[int] = []
    counts: dict[int, int] = {}
    for row in order:
        g = int(groups[row])
        if per_group is not None and counts.get(g, 0) >= per_group:
            continue
        counts[g] = counts.get(g, 0) + 1
        out.append(int(row))
        if len(out) >= k:
            break
    return np.asarray(out, np.int64)


def _uniform(times: np.ndarray, k: int, groups: np.ndarray, per_group: int | None,
             weights: np.ndarray | None) -> np.ndarray:
    """Evenly spaced in play time over the collection (videos back to back)."""
    ok = np.ones(len(times), bool) if weights is None else np.asarray(weights) > 0
    rows = np.flatnonzero(ok)
    if rows.size == 0 or k <= 0:
        return np.zeros(0, np.int64)
    t = times[rows]
    targets = (np.arange(k) + 0.5) * (t[-1] - t[0] + 1e-9) / k + t[0]
    # nearest candidate to each target, then the unused nearest ones for targets already taken
    near = np.clip(np.searchsorted(t, targets), 0, len(t) - 1)
    prev = np.clip(near - 1, 0, len(t) - 1)
    near = np.where(np.abs(t[prev] - targets) <= np.abs(t[near] - targets), prev, near)
    order = list(dict.fromkeys(int(x) for x in near))
    if len(order) < k:  # fewer distinct candidates than targets: fill with the rest in time order
        seen = set(order)
        order += [r for r in range(len(t)) if r not in seen]
    return _cap(rows[np.asarray(order, np.int64)], k, groups, per_group)


# ---------------------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------------------
@dataclass
class Selection:
    """Chosen frames: parallel arrays ``video`` (position in ``videos``), ``frame`` (frame
    number), ``timestamp`` (seconds), ``score``; ``videos`` holds the :class:`VideoSet`.
    ``candidates`` and ``embeddings`` keep every candidate per video (reusable as
    ``select(..., embeddings=sel.embeddings)``).

        >>> sel.records()[:1]
        [{'video': 0, 'source': 'clips/a.mp4', 'frame': 120, 'timestamp': 4.8, 'score': 0.62}]
        >>> sel.to_dataset(ds, "selection")     # one json record per selected frame
    """

    videos: VideoSet
    video: np.ndarray
    frame: np.ndarray
    timestamp: np.ndarray
    score: np.ndarray
    strategy: str = "diversity"
    candidates_spec: str = ""
    seed: int = 0
    candidates: list[np.ndarray] = field(default_factory=list, repr=False)
    embeddings: list[np.ndarray] | None = field(default=None, repr=False)
    stats: dict[str, Any] = field(default_factory=dict, repr=False)
    errors: dict[str, str] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.frame)

    def records(self) -> list[dict[str, Any]]:
        """One dict per selected frame: video, source, frame, timestamp, score (plus ``sample``,
        the dataset sample index, when the videos are a dataset tensor)."""
        out = []
        for v, f, t, s in zip(self.video.tolist(), self.frame.tolist(), self.timestamp.tolist(),
                              self.score.tolist()):
            rec: dict[str, Any] = {"video": v, "source": self.videos.urls[v], "frame": f,
                                   "timestamp": round(float(t), 6), "score": round(float(s), 6)}
            if self.videos.tensor is not None:
                rec["sample"] = v
                rec["tensor"] = self.videos.tensor.key
            out.append(rec)
        return out

    def __iter__(self):
        return iter(self.records())

    def to_dataset(self, ds: Dataset, tensor: str = "selection") -> Tensor:
        """Store the records as a ``json`` tensor of ``ds`` (created if missing; appended to)."""
        t = ds.tensors.get(tensor) or ds.create_tensor(tensor, htype="json")
        with ds:
            t.extend(self.records())
        return ds.tensors[tensor]

    def frames(self, size: tuple[int, int] | None = None, aslist: bool = False) -> np.ndarray | list[np.ndarray]:
        """The selected frames in selection order: (n, H, W, 3) uint8, or a list of (H, W, 3)
        with ``aslist=True`` (needed when videos differ in size, unless ``size=(h, w)``).

            >>> sel.frames(size=(224, 224)).shape
            (50, 224, 224, 3)
        """
        out: list[np.ndarray | None] = [None] * len(self)
        for v in dict.fromkeys(self.video.tolist()):
            rows = np.flatnonzero(self.video == v)
            for r, fr in zip(rows.tolist(), self.videos.open(v).get_frames(self.frame[rows], size=size)):
                out[r] = fr
        frames = [f for f in out if f is not None]
        if aslist:
            return frames
        if len({f.shape for f in frames}) > 1:
            raise ValueError("the selected videos differ in frame size: use frames(aslist=True) or frames(size=(h, w))")
        return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


def _resolve_embed(strategy: str, embeddings: Any) -> tuple[Callable | None, list[np.ndarray] | None]:
    if callable(embeddings):
        return embeddings, None
    if embeddings is None:
        return (default_embed if strategy == "diversity" else None), None
    if isinstance(embeddings, np.ndarray) and embeddings.ndim == 2:
        return None, [embeddings]
    if isinstance(embeddings, Sequence):
        return None, [np.asarray(e, np.float32) for e in embeddings]
    raise TypeError("embeddings must be None (the built-in default), a callable embed(frames) -> (n, d), "
                    "or precomputed arrays aligned to the candidates (one (n_i, d) array per video)")


def select(
    source: Any,
    n_samples: int = 50,
    strategy: str = "diversity",
    embeddings: Any = None,
    candidates: Any = None,
    seed: int = 0,
    *,
    per_video: int | None = None,
    weights: Callable[[dict[str, Any]], Any] | np.ndarray | None = None,
    filter: Callable[[dict[str, Any]], bool] | None = None,
    size: tuple[int, int] | None = None,
    cache: Any = None,
    creds: dict[str, Any] | None = None,
    workers: int | None = None,
    batch: int = 64,
    progress: bool = True,
) -> Selection:
    """Pick ``n_samples`` frames of ``source`` (a dataset video tensor, a :func:`vidlake.scan`
    result, a folder / glob / ``s3://`` prefix, or a list of paths or URLs).

    Args:
        strategy: ``"diversity"`` (k-center on embeddings), ``"random"`` or ``"uniform"``.
        embeddings: ``None`` (the built-in :func:`vidlake.curate.default_embed`), a callable
            ``embed(frames_uint8_nhwc) -> (n, d) float32`` (its ``size`` attribute says the
            decode size, its ``name`` keys the cache), or precomputed arrays, one (n_i, d) per
            video aligned to its candidates (``sel.embeddings`` of an earlier run).
        candidates: ``"keyframes"``, ``"all"``, ``"every:K"``, ``"per_second:N"`` (default 1
            per second); see :class:`vidlake.curate.Candidates`.
        per_video: at most this many frames from any one video.
        weights: per-candidate weights, an array over all candidates (video by video) or a
            callable ``weights(info) -> (n_i,)`` per video; 0 excludes a frame. ``info`` has
            ``video``, ``source``, ``frames``, ``timestamps`` and the video's metadata.
        filter: ``filter(info) -> bool`` per video (``info`` as for ``weights``, without the
            frames): ``False`` drops the video before anything is decoded.
        size: (h, w) frames are decoded at for the embedder (default: its ``size``, 64x64 for
            the default embedder).
        cache: where embeddings are stored and found again on later runs: a folder or URL
            prefix (``.npz`` per video, keyed by the video's index, candidates and embedder),
            or a Dataset (tensors ``curate_keys``/``curate_frames``/``curate_embeddings``).
        creds: for remote sources and caches (the same keys as datasets take).
        workers: processes that decode and embed videos in parallel (default: one per core;
            0 or 1: in this process).

        >>> sel = vidlake.select(ds.videos, n_samples=20, strategy="diversity", per_video=5)
        >>> len(sel), sel.records()[0]["frame"]
        (20, 417)
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(map(repr, STRATEGIES))}, got {strategy!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 0:
        raise ValueError(f"n_samples must be a non-negative int, got {n_samples!r}")
    if per_video is not None and (isinstance(per_video, bool) or int(per_video) < 1):
        raise ValueError(f"per_video must be a positive int or None, got {per_video!r}")
    spec = Candidates.parse(candidates)
    videos = VideoSet(source, creds)
    embed, pre = _resolve_embed(strategy, embeddings)
    if pre is not None and len(pre) != len(videos):
        raise ValueError(f"embeddings has {len(pre)} arrays but the source has {len(videos)} videos")
    esize = size if size is not None else (embedder_size(embed) if embed is not None else (64, 64))
    job = _Job(videos, spec, embed, (int(esize[0]), int(esize[1])), int(batch), _store_for(cache, creds), pre)
    if workers is None:
        workers = os.cpu_count() or 1
    todo = list(range(len(videos)))
    if filter is not None:
        kept = []
        for i in todo:
            r = videos.open(i)
            info = {"video": i, "source": videos.urls[i], **r.metadata}
            if filter(info):
                kept.append(i)
        todo = kept
    results = _run_all(job, todo, int(workers), progress)
    errors = {videos.urls[i]: res.error for i, res in results.items() if res.error}
    if errors and len(errors) == len(results):
        raise VidlakeError("no video could be read: " + "; ".join(f"{redact(k)}: {v}" for k, v in errors.items()))

    # all candidates, video by video
    vid_l, fr_l, ts_l, emb_l, w_l = [], [], [], [], []
    offset = 0.0
    gtimes = []
    cand = [np.zeros(0, np.int64) for _ in range(len(videos))]
    embs: list[np.ndarray] = [np.zeros((0, 0), np.float32) for _ in range(len(videos))]
    stats: dict[str, Any] = {"videos": len(todo), "failed": len(errors)}
    for i in todo:
        res = results[i]
        if res.error:
            continue
        cand[i] = res.frames
        for k, v in res.stats.items():
            stats[k] = stats.get(k, 0) + v
        vid_l.append(np.full(len(res.frames), i, np.int64))
        fr_l.append(res.frames)
        ts_l.append(res.timestamps)
        gtimes.append(res.timestamps - (res.timestamps[0] if len(res.timestamps) else 0.0) + offset)
        offset += float(res.meta.get("duration") or 0.0) + 1.0
        if res.embeddings is not None:
            emb_l.append(res.embeddings)
            embs[i] = res.embeddings
        if callable(weights):
            info = {"video": i, "source": videos.urls[i], "frames": res.frames, "timestamps": res.timestamps,
                    **res.meta}
            w = np.asarray(weights(info), np.float64).reshape(-1)
            if len(w) != len(res.frames):
                raise ValueError(f"weights returned {len(w)} values for {len(res.frames)} candidates of "
                                 f"{videos.urls[i]}")
            w_l.append(w)
    vid = np.concatenate(vid_l) if vid_l else np.zeros(0, np.int64)
    fr = np.concatenate(fr_l) if fr_l else np.zeros(0, np.int64)
    ts = np.concatenate(ts_l) if ts_l else np.zeros(0)
    gt = np.concatenate(gtimes) if gtimes else np.zeros(0)
    if callable(weights):
        wts: np.ndarray | None = np.concatenate(w_l) if w_l else np.zeros(0)
    elif weights is not None:
        wts = np.asarray(weights, np.float64).reshape(-1)
        if len(wts) != len(fr):
            raise ValueError(f"weights has {len(wts)} values but there are {len(fr)} candidates")
    else:
        wts = None
    stats["candidates"] = len(fr)

    if strategy == "diversity":
        emb = np.concatenate(emb_l) if emb_l else np.zeros((0, 1), np.float32)
        rows, scores = farthest_point(emb, int(n_samples), seed=seed, groups=vid, per_group=per_video,
                                      weights=wts)
    elif strategy == "random":
        rows = _random(len(fr), int(n_samples), seed, vid, per_video, wts)
        scores = np.ones(len(rows), np.float32)
    else:
        rows = _uniform(gt, int(n_samples), vid, per_video, wts)
        scores = np.ones(len(rows), np.float32)
    return Selection(videos, vid[rows], fr[rows], ts[rows], np.asarray(scores, np.float32), strategy, str(spec),
                     int(seed), cand, embs if emb_l else None, stats, errors)
