"""Datasets: named tensors over a storage provider, with atomic, crash-safe appends.

    >>> import vidlake
    >>> ds = vidlake.empty("./video_ds", overwrite=True)
    >>> with ds:
    ...     ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ...     ds.videos.append(vidlake.read("./videos/example1.mp4"))
    >>> len(ds), ds.videos[0].shape
    (1, (400, 360, 640, 3))

Every write goes through the dataset's :class:`~vidlake.dataset.writer.Writer` (``ds.writer``),
which owns staging, rollback and the commit protocol (how an append stays atomic is explained
there and in ``docs/FORMAT.md``).
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import CredentialsError, DatasetError, LinkRefusedError, SampleAppendError
from ..format import records as fmt
from ..htypes import lookup
from ..storage import StorageProvider, get_provider, url_scheme
from ..storage.creds import redact, resolve_creds, validate_creds
from .encoding import encode_meta
from .tables import SampleTable, check_summary
from .tensor import Tensor, check_options_fit, check_read_options
from .upsert import upsert
from .views import DatasetView, RowsView, filter_rows, frame_row, sample_indices
from .writer import GC_GRACE_SECONDS, Writer

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable, Mapping, Sequence

    from typing_extensions import Self

__all__ = ["GC_GRACE_SECONDS", "Dataset", "DatasetView", "LinkAccess"]

#: inside ``with ds:``, commit early once this many sample bytes wait in memory
DEFAULT_FLUSH_THRESHOLD = 64 * 1024 * 1024
#: a loader retries this long when objects named by the commit record vanish under it
_LOAD_RETRY_SECONDS = 10.0


def local_link_roots(allow: Any) -> Any:
    """``True`` (any local path) or the list of real paths under which local links may be read,
    from ``allow_local_links`` or, when it is None, ``VIDLAKE_ALLOW_LOCAL_LINKS`` ("*" or roots
    separated by ``os.pathsep``)."""
    if allow is None:
        env = os.environ.get("VIDLAKE_ALLOW_LOCAL_LINKS", "")
        if env.strip() in ("*", "1", "true", "yes"):
            return True
        allow = [p for p in env.split(os.pathsep) if p.strip()]
    if allow is True:
        return True
    if allow is False:
        return []
    if isinstance(allow, (str, os.PathLike)):
        allow = [allow]
    try:
        return [os.path.realpath(os.fspath(p)) for p in allow]
    except TypeError:
        raise ValueError(f"allow_local_links is True, False, a path or a list of paths, got {allow!r}") from None


def _scope_of(url: str) -> tuple[str, str]:
    """(scheme, bucket or host) of a URL, lower-cased: what credentials are bound to."""
    scheme = url_scheme(url)
    if not scheme or scheme in ("file", "mem"):
        raise ValueError(f"{url!r} is not a remote URL (scope names buckets or hosts: s3://bucket, https://host)")
    rest = url.split("://", 1)[1]
    return scheme, rest.split("/", 1)[0].lower()


class LinkAccess:
    """The dataset's credentials for linked samples (:class:`vidlake.htypes.WriteContext`):
    creds key names live in the commit record, secrets only in this object's memory."""

    def __init__(self, ds: Dataset, allow_local_links: Any = None) -> None:
        self._ds = ds
        self.populated: dict[str, dict[str, Any]] = {}  # creds key -> secrets, memory only
        self._providers: dict[tuple[str, str | None], StorageProvider] = {}
        self.allow_local_links = allow_local_links
        self._local_roots = local_link_roots(allow_local_links)
        #: creds key -> the (scheme, bucket or host) pairs its credentials may be sent to
        self.scopes: dict[str, list[tuple[str, str]]] = {}

    def check_local_path(self, path: str) -> None:
        """Links to local files are read only under roots the user allowed: a dataset from
        someone else (a shared folder, a bucket) must not turn local files into pixels."""
        roots = self._local_roots
        if roots is True:
            return
        real = os.path.realpath(path)
        for r in roots or ():
            if real == r or real.startswith(r.rstrip(os.sep) + os.sep):
                return
        raise LinkRefusedError(
            f"{self._ds.path}: refusing the link to the local file {path}: local links are read only under "
            "roots you allow (vidlake.load(path, allow_local_links=['/data/videos']) or True for any, or "
            f"VIDLAKE_ALLOW_LOCAL_LINKS); allowed here: {roots or 'none'}")

    def creds(self, creds_key: str | None, check_only: bool = False) -> Any:
        """The creds dict of a linked sample's key (``None``: the client's default chain);
        ``check_only`` only checks that the key was added."""
        if creds_key is None or creds_key == "ENV":
            return None
        keys = {k["name"]: k for k in self._ds._meta.get("creds_keys", [])}
        if creds_key not in keys:
            raise CredentialsError(f"creds key {creds_key!r} is not a creds key of {self._ds.path} "
                                   f"(keys: {sorted(keys)}); add it with ds.add_creds_key({creds_key!r})")
        if check_only:
            return None
        if creds_key in self.populated:
            return self.populated[creds_key]
        return resolve_creds(creds_key, managed=bool(keys[creds_key].get("managed")), populated=None)

    def link_provider(self, parent: str, creds_key: str | None) -> StorageProvider:
        """A read-only provider of ``parent`` with that key's creds, one per parent and key."""
        p = self._providers.get((parent, creds_key))
        if p is None:
            creds = self.creds(creds_key)
            if creds:
                self.check_scope(creds_key, creds, parent)
            p = get_provider(parent, creds=creds, read_only=True)
            self._providers[(parent, creds_key)] = p
        return p

    def check_scope(self, creds_key: str | None, creds: Mapping[str, Any], url: str) -> None:
        """Credentials go only where they were given for (Note [Credentials scope]): S3 fields
        to ``s3://``, GCS fields to ``gs://``/``gcs://``, HTTP headers to ``http(s)://``, and
        only to the buckets or hosts of ``populate_creds(..., scope=...)``, else to the first
        bucket or host the key is used with in this process."""
        where = _scope_of(url)
        kinds = {f.split("_")[0] for f in creds if f in ("aws_access_key_id", "aws_secret_access_key",
                                                          "aws_session_token", "gcs_service_account", "headers")}
        family = {"aws": ("s3",), "gcs": ("gs", "gcs"), "headers": ("http", "https")}
        for k in kinds:
            if where[0] not in family[k]:
                raise CredentialsError(f"creds key {creds_key!r} holds {k} credentials, which are never sent to "
                                       f"a {where[0]}:// URL ({redact(url)})")
        allowed = self.scopes.get(creds_key or "")
        if allowed is None:  # trust on first use: bound to the first bucket / host it is used with
            self.scopes[creds_key or ""] = [where]
            return
        if where not in allowed:
            raise CredentialsError(
                f"creds key {creds_key!r} is bound to {', '.join(f'{a}://{b}' for a, b in allowed)}, not "
                f"{where[0]}://{where[1]} ({redact(url)}); pass ds.populate_creds(key, creds, scope=[...]) "
                "naming every bucket or host it is for")

    def forget(self, creds_key: str | None) -> None:
        """Drop the providers (and linked readers) made with ``creds_key``'s old secrets."""
        for k in [k for k in self._providers if k[1] == creds_key]:
            del self._providers[k]
        for t in self._ds.tensors.values():
            if t.spec.linked:
                t.drop_readers(0)


class Dataset:
    """A vidlake dataset. Open one with :func:`vidlake.empty`, :func:`vidlake.load` or
    :func:`vidlake.dataset` rather than calling this constructor.

        >>> ds = vidlake.load("./video_ds", read_only=True)
        >>> ds.summary()
    """

    def __init__(self, provider: StorageProvider, path: str, read_only: bool = False,
                 allow_local_links: Any = None) -> None:
        self.provider = provider
        self.path = path
        self.read_only = read_only
        self.flush_threshold = DEFAULT_FLUSH_THRESHOLD
        self._depth = 0
        self._meta: dict[str, Any] = {}
        self._tensors: dict[str, Tensor] = {}
        self._meta_generation = 0
        self.writer = Writer(self)
        self.link_access = LinkAccess(self, allow_local_links)
        self._populated_creds = self.link_access.populated
        self._load()

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def _create(cls, provider: StorageProvider, path: str, allow_local_links: Any = None) -> Dataset:
        provider.put(fmt.DATASET_META_KEY, fmt.encode_json(fmt.new_dataset_meta()))
        return cls(provider, path, allow_local_links=allow_local_links)

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
            self._meta_generation = meta["generation"]
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
        """A tensor of the record: its meta is read now, its table segments on first use
        (:class:`~vidlake.dataset.tables.SampleTable`; docs/DESIGN.md, "Loading large datasets")."""
        key = fmt.tensor_meta_key(name)
        tmeta = fmt.decode_tensor_meta(self.provider.get(key), f"{self.path}/{key}")
        generation = int(self._meta_generation)

        def load(seg: dict[str, Any]) -> list[dict[str, Any]]:
            return self._load_segment(name, tmeta["htype"], seg, generation)

        def load_list(desc: dict[str, Any]) -> list[dict[str, Any]]:
            return self._load_list(name, desc, generation)

        oc = state.get("open_chunk")
        table = SampleTable(state["segments"], load, lists=state.get("lists", []), load_list=load_list)
        return Tensor(self, name, tmeta, table, tuple(oc) if oc else None)

    def _load_list(self, name: str, desc: dict[str, Any], generation: int) -> list[dict[str, Any]]:
        """The checked entries of one segment list (format 2.0) named by the commit record (of
        ``generation``) or by the list above it; a missing one as a missing segment."""
        key = fmt.list_key(name, desc["id"])
        try:
            raw = self.provider.get(key)
        except KeyError:
            raise self._missing_segment(name, desc, key, generation, "segment list") from None
        return fmt.decode_list(raw, f"{self.path}/{key}", desc, name)

    def _load_segment(self, name: str, htype: str, seg: dict[str, Any], generation: int) -> list[dict[str, Any]]:
        """The checked entries of one table segment the commit record (of ``generation``) names.

        Every entry is checked as an eager load checked it, and the rows against the record's
        summary (``shape``, format 1.2). A segment that vanished is either damage (the current
        record still names it) or a newer commit's doing (rows replaced or merged, the grace
        period over): then the error says to load the dataset again."""
        skey = fmt.table_key(name, seg["id"])
        what = f"{self.path}/{skey}"
        try:
            raw = self.provider.get(skey)
        except KeyError:
            raise self._missing_segment(name, seg, skey, generation) from None
        rows = fmt.decode_table(raw, what, seg["start"], seg["count"], htype)
        summary = seg.get("shape")
        if summary is not None:
            check_summary(rows, summary, what, f"{self.path}/{name}", seg["start"])
        return rows

    def _missing_segment(self, name: str, seg: dict[str, Any], skey: str, generation: int,
                         kind: str = "table segment") -> DatasetError:
        try:
            cur = fmt.decode_dataset_meta(self.provider.get(fmt.DATASET_META_KEY), self.path)
        except (KeyError, DatasetError):
            cur = None
        if cur is not None and cur["generation"] != generation:
            # (an object below a segment list cannot be looked up without reading lists: only the
            # record's own are; loading again then tells a replaced object from a lost one)
            state = cur["tensor_state"].get(name, {})
            named = any(s.get("id") == seg["id"] for s in state.get("segments", []) + state.get("lists", []))
            if not named:
                return DatasetError(
                    f"{self.path}: {kind} {skey} (samples {seg['start']}..{seg['start'] + seg['count'] - 1} "
                    f"of {name!r}) was replaced by a newer commit (generation {generation} -> {cur['generation']}) "
                    "and deleted after its grace period, before this process first read it; load the dataset "
                    "again (vidlake.load) to read the current rows, or call ds.load_tables() right after "
                    "loading to keep a snapshot in memory")
        return DatasetError(f"{self.path}: object {skey} named by {fmt.DATASET_META_KEY} is missing; "
                            "the dataset is damaged")

    def load_tables(self) -> None:
        """Read (and check) every table segment of every tensor now, as loading did before
        format 1.2: afterwards no read of this object touches a table segment again, so it keeps
        reading this snapshot however long other writers go on replacing rows.

            >>> ds = vidlake.load("./video_ds", read_only=True)
            >>> ds.load_tables()
        """
        for t in self._tensors.values():
            t._entries.load_all()

    def check(self) -> dict[str, int]:
        """Check every table segment and segment list of every tensor (each entry's fields, and
        the rows against the commit record's summaries), as ``vidlake check PATH`` does; returns the number of
        samples checked per tensor. A damaged segment raises the ``DatasetError`` naming it.

            >>> vidlake.load("./video_ds", read_only=True).check()
            {'videos': 1}
        """
        out: dict[str, int] = {}
        for name, t in self._tensors.items():
            table = t._entries
            for d in table.lists:
                self._check_tree(name, t.htype, table, d, int(d["level"]))
            for seg in table.segments:
                self._check_tree(name, t.htype, table, seg, 0)
            out[name] = table.committed
        return out

    def _check_tree(self, name: str, htype: str, table: SampleTable, d: dict[str, Any], level: int) -> None:
        """``check()`` of one segment (``level`` 0) or of a segment list and all below it."""
        generation = int(self._meta_generation)
        if level == 0:
            if d["id"] in table._rows:  # already checked when read: read it again, from storage
                self._load_segment(name, htype, d, generation)
            else:
                table._seg_rows(d)
            return
        # every segment list (2.0) is read again from storage and checked too
        entries = self._load_list(name, d, generation)
        table.remember_list(d, entries)
        for e in entries:
            self._check_tree(name, htype, table, e, level - 1)

    def __getstate__(self) -> dict[str, Any]:
        """Datasets pickle (e.g. into DataLoader workers) as their committed state: the copy
        loads it again from storage."""
        if self.writer.pending_bytes():
            raise DatasetError(f"{self.path} has staged appends; call ds.flush() before pickling")
        return {"provider": self.provider, "path": self.path, "read_only": self.read_only,
                "allow_local_links": self.link_access.allow_local_links}

    def __setstate__(self, state: dict[str, Any]) -> None:
        Dataset.__init__(self, state["provider"], state["path"], state["read_only"], state.get("allow_local_links"))

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
        if isinstance(item, tuple):  # ds[i, a:b]: the row cut to some frames (views.py)
            return frame_row(self, item)
        idx, single = sample_indices(item, len(self), self.path)
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
                      aligned_to: str | None = None, read_options: dict[str, Any] | None = None,
                      encode: dict[str, Any] | None = None, reencode: str | dict[str, Any] | None = None,
                      keep_original: bool = False, **kwargs: Any) -> Tensor:
        """Add a tensor. Video tensors need a ``sample_compression``; anything not accepted is
        a ``ValueError`` listing what is. ``coords`` is for bbox tensors, ``aligned_to`` makes a
        ``sequence[...]`` tensor keep one item per frame of a video or sequence tensor
        (``docs/ANNOTATIONS.md``). ``read_options`` (video tensors: ``size``, ``gray``,
        ``rotate``, ``color_conversion``; image tensors: ``image_decoder``) are stored as the
        defaults of every read. Video tensors: ``encode`` (settings of :func:`vidlake.encode`) is how frames appended as
        arrays are encoded; ``reencode`` (``"seek"``, ``"intra"``, ``"lerobot"``, a dict of
        settings, or None: as is) re-encodes every appended file, ``keep_original=True`` keeps
        the file as given too (``Tensor.original_bytes``); README "Writing video".

            >>> ds.create_tensor("videos", htype="video", sample_compression="mp4")
            >>> ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
            >>> ds.create_tensor("boxes", htype="sequence[bbox]", coords={"type": "pixel", "mode": "LTWH"},
            ...                  aligned_to="videos")
        """
        self.writer.check_writable()
        if kwargs:
            raise TypeError(f"create_tensor got unsupported arguments: {sorted(kwargs)}")
        fmt.check_tensor_name(name)
        if name in self._tensors:
            if exist_ok:
                return self._tensors[name]
            raise DatasetError(f"tensor {name!r} already exists in {self.path}")
        if hasattr(type(self), name) or name in self.__dict__:
            raise DatasetError(f"tensor name {name!r} clashes with a Dataset attribute; choose another")
        spec = lookup(htype)
        comp = spec.check_compression(sample_compression)
        max_cs = int(max_chunk_size or fmt.DEFAULT_MAX_CHUNK_SIZE)
        target = int(target_chunk_size or min(fmt.DEFAULT_TARGET_CHUNK_SIZE, max_cs))
        if max_cs <= 0 or not 0 < target <= max_cs:
            raise ValueError(f"need 0 < target_chunk_size <= max_chunk_size (got {target}, {max_cs})")
        tmeta: dict[str, Any] = {
            "format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION,
            "name": name, "htype": spec.name, "sample_compression": comp,
            "max_chunk_size": max_cs, "target_chunk_size": target,
        }
        tmeta.update(spec.params(dtype, class_names, coords))  # dtype, class_names, coords: the htype's rules
        if aligned_to is not None:
            tmeta["aligned_to"] = self.writer.check_aligned_to(htype, aligned_to)
        if read_options:
            check_options_fit(dict(read_options), spec, name)
            tmeta["read_options"] = {k: list(v) if isinstance(v, tuple) else v
                                     for k, v in check_read_options(dict(read_options), name).items()}
        tmeta.update(encode_meta(spec, name, encode, reencode, keep_original))
        return self.writer.create_tensor(name, tmeta)

    # -- writing ----------------------------------------------------------------------
    def append(self, sample: dict[str, Any], skip_ok: bool = False) -> None:
        """Append one row: one sample per tensor, all or none.

            >>> ds.append({"videos": vidlake.read("a.mp4"), "labels": 1})
        """
        if not isinstance(sample, dict):
            raise TypeError("Dataset.append takes a dict {tensor name: sample}")
        self.writer.append_rows([sample], only=None, skip_ok=skip_ok)

    def extend(self, samples: dict[str, Sequence[Any]], skip_ok: bool = False) -> None:
        """Append several rows given as ``{tensor: [samples...]}``, all or none."""
        if not isinstance(samples, dict):
            raise TypeError("Dataset.extend takes a dict {tensor name: list of samples}")
        lens = {k: len(v) for k, v in samples.items()}
        if len(set(lens.values())) > 1:
            raise SampleAppendError(f"extend needs the same number of samples per tensor, got {lens}")
        n = next(iter(lens.values()), 0)
        self.writer.append_rows([{k: v[i] for k, v in samples.items()} for i in range(n)], only=None,
                                skip_ok=skip_ok)

    def upsert(self, rows: dict[str, Any] | Iterable[dict[str, Any]], key: str = "reference_id") -> list[int]:
        """Replace the row whose ``key`` tensor matches each given row (every tensor of it), or
        append it when none does; all or nothing. Returns the row indices (``vidlake/dataset/upsert.py``).

            >>> ds.upsert({"reference_id": "scene-7", "frames": frames, "metadata": {"weather": "sun"}})
        """
        return upsert(self, rows, key=key)

    def filter(self, fn: Any) -> RowsView:
        """A view of the rows for which ``fn(row)`` is true (``vidlake/dataset/views.py``).

            >>> night = ds.filter(lambda row: row.metadata.numpy()["time"] == "night")
            >>> len(night), night.metadata.numpy()
        """
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
        # vidlake.torch is the top layer's optional PyTorch integration: loaded on demand (an
        # entry point, not a dependency of the dataset layer; torch is an optional install)
        make_loader = importlib.import_module("vidlake.torch").make_loader
        return make_loader(self, tensors, clip, batch_size, shuffle, num_workers, transform, size, seed,
                           drop_last, persistent_workers, pin_memory, **kwargs)

    def resume_job(self, job_id: str, **kwargs: Any) -> Any:
        """Continue an ingestion job journaled in this dataset (killed, cancelled or failed):
        what its commits recorded is not done again (``vidlake/jobs/``). Returns its ``Job``.

            >>> job = ds.resume_job("job-3f0c9a1b2d4e5f60")
            >>> job.status()["state"]
            'completed'
        """
        # vidlake.jobs is the top layer's ingestion machinery: loaded on demand, like pytorch()
        return importlib.import_module("vidlake.jobs").resume_job(self, job_id, **kwargs)

    def visualize(self, open_browser: bool | None = None, port: int = 0, **kwargs: Any) -> Any:
        """Browse the dataset in a local web app (``vidlake/viewer/``): a grid of samples with
        thumbnails; a page per sample with the player, the true frame counter, frame stepping
        (arrow keys) and the boxes / labels of aligned tensors drawn on their frames. Opens the
        default browser (inline in Jupyter); the server (127.0.0.1, random token in every URL,
        read-only) stops on ``close()``, at the end of a ``with`` block or at exit.

            >>> with ds.visualize() as v:
            ...     print(v.url)
        """
        # vidlake.viewer is in the top layer: loaded on demand, as ds.pytorch() loads vidlake.torch
        return importlib.import_module("vidlake.viewer").visualize(self, open_browser=open_browser, port=port,
                                                                   **kwargs)

    def rollback(self) -> None:
        """Drop every append, upsert and new tensor staged since the last commit (inside
        ``with ds:``); the dataset is then as it was committed.

            >>> with ds:
            ...     ds.create_tensor("tmp", htype="text")
            ...     ds.tmp.append("x")
            ...     ds.rollback()          # nothing of the block is committed on exit
        """
        self.writer.rollback_all()

    def flush(self) -> None:
        """Commit every staged append now (``with ds:`` does this on exit)."""
        if self.read_only:
            return
        self.writer.commit()

    def __enter__(self) -> Self:
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and not self.read_only:
            self.writer.commit()

    # -- creds keys (for linked samples; see vidlake/htypes/link.py, docs/REMOTE.md) ------------
    def add_creds_key(self, creds_key: str, managed: bool = False) -> None:
        """Register a creds key name for linked samples. Only the name (and ``managed``) is
        stored in the dataset; the secrets come from :meth:`populate_creds` (memory only) or,
        with ``managed=True``, from the local credentials file / environment (``vidlake.storage.creds``).

            >>> ds.add_creds_key("my-bucket")
            >>> ds.populate_creds("my-bucket", {"aws_access_key_id": ..., "aws_secret_access_key": ...})
        """
        self.writer.check_writable()
        if not isinstance(creds_key, str) or not creds_key or creds_key == "ENV":
            raise ValueError(f"a creds key is a non-empty string other than 'ENV' (reserved), got {creds_key!r}")
        if creds_key in self.get_creds_keys():
            raise DatasetError(f"creds key {creds_key!r} already exists in {self.path}")
        # names only, never secrets
        self.writer.update_meta(lambda m: m.setdefault("creds_keys", []).append(
            {"name": creds_key, "managed": bool(managed)}))

    def populate_creds(self, creds_key: str, creds: dict[str, Any],
                       scope: str | Sequence[str] | None = None) -> None:
        """Give the secrets of creds key ``creds_key`` for this process (kept in memory only,
        never written). Fields as for ``vidlake.load(..., creds=...)``. ``scope`` names the
        buckets or hosts they are for (``"s3://my-bucket"``, ``"https://cdn.example.com"``);
        links elsewhere never get them. Without it they are bound to the first bucket or host
        a link with this key is read from (pass ``scope`` for a dataset from someone else).

            >>> ds.populate_creds("my-bucket", {"aws_access_key_id": ..., "aws_secret_access_key": ...},
            ...                   scope="s3://my-bucket")
        """
        if creds_key not in self.get_creds_keys():
            raise CredentialsError(f"{creds_key!r} is not a creds key of {self.path}; "
                                   f"add it first with ds.add_creds_key({creds_key!r})")
        scopes = None
        if scope is not None:
            urls = [scope] if isinstance(scope, str) else list(scope)
            scopes = [_scope_of(u) for u in urls]
        self.link_access.populated[creds_key] = validate_creds(creds, where=f"creds for key {creds_key!r}") or {}
        self.link_access.scopes.pop(creds_key, None)
        if scopes is not None:
            self.link_access.scopes[creds_key] = scopes
        self.link_access.forget(creds_key)

    def get_creds_keys(self) -> list[str]:
        """Names of the creds keys added to this dataset (``"ENV"`` needs no adding)."""
        return [k["name"] for k in self._meta.get("creds_keys", [])]

    # -- housekeeping ------------------------------------------------------------------
    def delete(self) -> None:
        """Delete the whole dataset from its storage."""
        self.writer.check_writable()
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
