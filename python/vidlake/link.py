"""Linked samples: ``link[video]`` and ``link[image]`` tensors keep where a file is, not its bytes.

    >>> import vidlake
    >>> ds = vidlake.empty("./links_ds")
    >>> ds.create_tensor("clips", htype="link[video]")
    >>> ds.add_creds_key("my-bucket")                                   # the NAME is stored
    >>> ds.populate_creds("my-bucket", {"aws_access_key_id": ..., "aws_secret_access_key": ...})
    >>> ds.clips.append(vidlake.link("s3://my-bucket/videos/a.mp4", creds_key="my-bucket"))
    >>> ds.clips.append(vidlake.link("https://example.com/b.mp4"))
    >>> ds.clips.append(vidlake.link("/data/c.mp4"))
    >>> ds.clips[0, 100:110].numpy()      # ranged reads of only the packets frames 100..109 need

The rules of the link htypes, in one place:

* **append** (``verify=True``, the default): the file is demuxed once through ranged reads
  (remote) or from disk (local): its packet index and ``sample_info`` are built exactly as for
  a ``video`` sample and stored in the dataset's chunks and sample table; the video bytes are
  not copied. The entry records ``{"url", "creds_key", "verified"}`` (``docs/FORMAT.md``).
  A missing file or a file that is not a video is refused (``SampleAppendError``), refused
  credentials raise ``CredentialsError``; the dataset is then unchanged.
* **append** with ``vidlake.link(url, verify=False)``: nothing is read; only the creds key
  *name* is checked. The index and ``sample_info`` are built on first use (``shape``,
  ``sample_info`` or a frame read) in each process, kept in memory, never written back.
* **read**: the stored index plans the read; only the byte ranges of the needed packets are
  fetched from the source (``RemoteRangeSource`` over the provider of the URL's scheme, or
  the local file). The source must not change after linking: a local file whose size differs
  from the indexed one is refused; a changed remote object gives wrong frames or a decode error.
* **creds**: ``creds_key=None`` and ``"ENV"`` use the storage client's default chain (for S3,
  boto3's: environment, ``AWS_ENDPOINT_URL``, config files, roles); any other key must have
  been added with ``ds.add_creds_key`` and is resolved at each use by the dataset
  (``populate_creds`` in this process, or ``managed=True``: ``vidlake.creds``). Local paths
  ignore creds. Secrets never enter the dataset.
* ``link[image]`` samples are whole-file reads (images are small), decoded like ``image``
  samples (``vidlake/images.py``: uint8 ``(H, W, C)``, C = 1, 3 or 4); ``sample_info`` is
  ``shape``, ``format``, ``filename``, ``modified``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .creds import redact
from .errors import CredentialsError, HtypeError, SampleAppendError, StorageError, VideoDecodeError
from .htypes import VIDEO_COMPRESSIONS, PreparedSample, video_facts
from .images import IMAGE_COMPRESSIONS as _IMAGE_COMPRESSIONS
from .images import decode_image, image_header
from .storage import get_provider, split_url, url_scheme

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import Dataset
    from .storage import StorageProvider
    from .tensor import Tensor

__all__ = ["IMAGE_COMPRESSIONS", "LinkedSample", "check_link_compression", "link"]

#: accepted ``sample_compression`` values of ``link[image]`` tensors (None accepts any image):
#: those of the ``image`` htype (``vidlake/images.py``)
IMAGE_COMPRESSIONS = _IMAGE_COMPRESSIONS


@dataclass(frozen=True)
class LinkedSample:
    """A file by URL or path, to append to a ``link[video]`` / ``link[image]`` tensor.
    Make one with :func:`vidlake.link`."""

    url: str
    creds_key: str | None = None
    verify: bool = True

    @property
    def is_local(self) -> bool:
        """True for local paths and ``file://`` URLs."""
        return url_scheme(self.url) in ("", "file")

    def __repr__(self) -> str:
        key = "" if self.creds_key is None else f", creds_key={self.creds_key!r}"
        ver = "" if self.verify else ", verify=False"
        return f"LinkedSample({redact(self.url)!r}{key}{ver})"


def link(url: str | os.PathLike[str], creds_key: str | None = None, verify: bool = True) -> LinkedSample:
    """A linked sample: ``url`` is ``s3://bucket/key``, ``gs://bucket/key`` (or ``gcs://``),
    ``http(s)://...``, ``file://...`` or a local path (made absolute here, so reads do not
    depend on the working directory).

    ``creds_key`` names a creds key of the dataset (``ds.add_creds_key``), or ``"ENV"`` /
    ``None`` for the client's default chain. ``verify=False`` skips reading the file at
    append time: index and ``sample_info`` are then built on first use.

        >>> ds.links.append(vidlake.link("s3://bucket/clip.mp4", creds_key="my-bucket"))
    """
    u = os.fspath(url) if isinstance(url, os.PathLike) else url
    if not isinstance(u, str) or not u:
        raise HtypeError(f"vidlake.link takes a URL or a path, got {url!r}")
    if creds_key is not None and (not isinstance(creds_key, str) or not creds_key):
        raise HtypeError(f"creds_key is a creds key name (str) or None, got {creds_key!r}")
    if url_scheme(u) == "":
        u = os.path.abspath(u)
    return LinkedSample(u, creds_key, bool(verify))


def check_link_compression(htype: str, compression: str | None) -> str | None:
    """``sample_compression`` of a link tensor: None (any) or one to check each file against."""
    if compression is None:
        return None
    c = compression.lower() if isinstance(compression, str) else compression
    allowed = VIDEO_COMPRESSIONS if htype == "link[video]" else IMAGE_COMPRESSIONS
    if c not in allowed:
        raise ValueError(f"sample_compression {compression!r} is not supported for htype {htype!r}; "
                         f"accepted: None, {', '.join(allowed)}")
    return c


# -- sources ---------------------------------------------------------------------------------
def _local_path(url: str) -> str:
    return url.removeprefix("file://")


def _provider(ds: Dataset | None, url: str, creds_key: str | None) -> tuple[StorageProvider, str]:
    """(read-only provider of the URL's parent, object key), one provider per parent and key."""
    parent, name = split_url(url)
    cache = ds._link_providers if ds is not None else {}
    p = cache.get((parent, creds_key))
    if p is None:
        creds = ds._link_creds(creds_key) if ds is not None else None
        p = get_provider(parent, creds=creds, read_only=True)
        cache[(parent, creds_key)] = p
    return p, name


def _remote_source(ds: Dataset | None, url: str, creds_key: str | None, size: int | None = None):
    from .remote import RemoteRangeSource

    provider, key = _provider(ds, url, creds_key)
    try:
        return RemoteRangeSource(provider, key, size=size, name=redact(url))
    except KeyError:
        raise FileNotFoundError(f"{redact(url)}: no such object") from None


def _whole_file(ds: Dataset | None, ln: dict[str, Any]) -> bytes:
    url = ln["url"]
    if url_scheme(url) in ("", "file"):
        with open(_local_path(url), "rb") as f:
            return f.read()
    provider, key = _provider(ds, url, ln.get("creds_key"))
    try:
        return provider.get(key)
    except KeyError:
        raise FileNotFoundError(f"{redact(url)}: no such object") from None


# -- append ----------------------------------------------------------------------------------
def _index_video(ds: Dataset | None, s: LinkedSample, tensor: str, compression: str | None):
    """(index, sample_info, extra) of a linked video, by ranged reads or from the local file."""
    from . import _core
    from .remote import build_remote_index

    what = repr(redact(s.url))
    if s.is_local:
        path = _local_path(s.url)
        try:
            index = _core.Index.build(path, -1, s.url)
            with open(path, "rb") as f:
                head = f.read(64)
        except OSError as e:
            raise SampleAppendError(f"cannot link {what} to {tensor!r}: {e.strerror or e}") from None
    else:
        src = _remote_source(ds, s.url, s.creds_key)
        index = build_remote_index(src)
        head = src.fetch([(0, 64)])[0]
    info, extra = video_facts(index, head, s.url, compression, tensor)
    return index, info, extra


def _image_facts(data: bytes, url: str, tensor: str, compression: str | None) -> dict[str, Any]:
    try:
        pil_format, shape = image_header(data)
    except ModuleNotFoundError:
        raise HtypeError("link[image] tensors decode images with Pillow: pip install pillow") from None
    except ValueError as e:
        raise SampleAppendError(f"cannot link {redact(url)!r} to {tensor!r}: {e}") from None
    fmt_name = {"MPO": "jpeg"}.get(pil_format, pil_format.lower())
    if compression is not None and fmt_name.replace("jpeg", "jpg") != compression.replace("jpeg", "jpg"):
        raise SampleAppendError(f"cannot link {redact(url)!r} to {tensor!r}: the file is {fmt_name} "
                                f"but the tensor's sample_compression is {compression!r}")
    return {"shape": list(shape), "format": fmt_name, "filename": url, "modified": False}


def _unknown_info(htype: str, url: str) -> dict[str, Any]:
    if htype == "link[video]":
        return {"duration": None, "fps": None, "timebase": None, "shape": [None, None, None, 3],
                "format": None, "filename": url, "modified": False}
    return {"shape": [None, None, None], "format": None, "filename": url, "modified": False}


def prepare_link(htype: str, sample: Any, tensor: str, meta: dict[str, Any], ds: Dataset | None) -> PreparedSample:
    """Validate a linked sample; index it (unless ``verify=False``) without copying its bytes."""
    from .sample import Sample

    if isinstance(sample, Sample):
        if sample.creds:
            raise HtypeError(f"tensor {tensor!r} (htype {htype!r}) stores creds key names, not creds: append "
                             "vidlake.link(url, creds_key=...) after ds.add_creds_key / ds.populate_creds")
        sample = link(sample.path)
    elif isinstance(sample, (str, os.PathLike)):
        sample = link(sample)
    if not isinstance(sample, LinkedSample):
        raise HtypeError(f"tensor {tensor!r} (htype {htype!r}) takes vidlake.link(url, creds_key=...) samples, "
                         f"got {type(sample).__name__}")
    if ds is not None:
        ds._link_creds(sample.creds_key, check_only=True)  # an unknown key name fails now
    entry_link = {"url": sample.url, "creds_key": sample.creds_key, "verified": bool(sample.verify)}
    if not sample.verify:
        return PreparedSample(b"", _unknown_info(htype, sample.url), link=entry_link)
    what = repr(redact(sample.url))
    comp = meta.get("sample_compression")
    try:
        if htype == "link[video]":
            index, info, extra = _index_video(ds, sample, tensor, comp)
            return PreparedSample(b"", info, index=bytes(index.to_bytes()), extra=extra, link=entry_link)
        data = _whole_file(ds, entry_link)
        return PreparedSample(b"", _image_facts(data, sample.url, tensor, comp), link=entry_link)
    except (FileNotFoundError, KeyError):
        raise SampleAppendError(f"cannot link {what} to {tensor!r}: no such file or object") from None
    except VideoDecodeError as e:
        raise SampleAppendError(f"cannot link {what} to {tensor!r}: not a readable video ({redact(str(e))})") from None
    except CredentialsError:
        raise
    except StorageError as e:
        raise SampleAppendError(f"cannot link {what} to {tensor!r}: {e}") from None


# -- read ------------------------------------------------------------------------------------
def _resolved(t: Tensor, i: int) -> dict[str, Any]:
    """Facts of an unverified link built on first use (memory only): info (+ index)."""
    e = t._entries[i]
    ln = e["link"]
    cache: dict[int, tuple[str, dict[str, Any]]] = t.__dict__.setdefault("_link_resolved", {})
    hit = cache.get(i)
    if hit is not None and hit[0] == ln["url"]:
        return hit[1]
    s = LinkedSample(ln["url"], ln.get("creds_key"), True)
    comp = t.meta.get("sample_compression")
    try:
        if t.htype == "link[video]":
            index, info, _extra = _index_video(t.dataset, s, t.key, comp)
            out = {"info": info, "index": index}
        else:
            out = {"info": _image_facts(_whole_file(t.dataset, ln), s.url, t.key, comp)}
    except SampleAppendError as err:  # the same checks as at append, reported as read errors
        raise StorageError(str(err).replace("cannot link", "cannot read linked")) from None
    except VideoDecodeError as err:
        raise StorageError(f"cannot read linked {redact(s.url)!r}: not a readable video ({redact(str(err))})") from None
    except (FileNotFoundError, KeyError):
        raise StorageError(f"cannot read linked {redact(s.url)!r}: no such file or object") from None
    except CredentialsError:
        raise
    except OSError as err:
        raise StorageError(f"cannot read linked {redact(s.url)!r}: {err.strerror or err}") from None
    cache[i] = (ln["url"], out)
    return out


def linked_info(t: Tensor, i: int) -> dict[str, Any]:
    """``sample_info`` of linked sample ``i`` (stored, or built on first use when unverified)."""
    e = t._entries[i]
    if e["link"].get("verified", True):
        return dict(e["info"])
    return dict(_resolved(t, i)["info"])


def open_linked_reader(t: Tensor, i: int, name: str):
    """A VideoReader over linked video ``i``: its stored index, ranged reads from its source."""
    from . import _core
    from .reader import VideoReader

    e = t._entries[i]
    ln = e["link"]
    if ln.get("verified", True):
        index = _core.Index.from_bytes(bytes(t.store.read_extents(e["index"])))
    else:
        index = _resolved(t, i)["index"]
    url = ln["url"]
    if url_scheme(url) in ("", "file"):
        path = _local_path(url)
        try:
            size = os.stat(path).st_size
        except OSError as err:
            raise StorageError(f"{name}: the linked file {path} cannot be read: {err.strerror or err}") from None
        if size != int(index.source_size):
            raise StorageError(f"{name}: the linked file {path} changed since it was linked "
                               f"({size} bytes, indexed {int(index.source_size)}); link it again")
        return VideoReader(path, index=index, name=name)
    try:
        src = _remote_source(t.dataset, url, ln.get("creds_key"), size=int(index.source_size))
    except FileNotFoundError as err:
        raise StorageError(f"{name}: {err}") from None
    return VideoReader(src, index=index, name=redact(name))


def read_linked_image(t: Tensor, i: int) -> np.ndarray:
    """Linked image ``i`` as ``(H, W, 3)`` uint8 RGB (the whole file is read)."""
    ln = t._entries[i]["link"]
    try:
        data = _whole_file(t.dataset, ln)
    except FileNotFoundError as err:
        raise StorageError(f"{t.key}[{i}]: {err}") from None
    except OSError as err:
        raise StorageError(f"{t.key}[{i}]: cannot read {redact(ln['url'])}: {err.strerror or err}") from None
    try:
        return decode_image(data)
    except ModuleNotFoundError:
        raise HtypeError("link[image] tensors decode images with Pillow: pip install pillow") from None
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for bad input
        raise StorageError(f"{t.key}[{i}]: {redact(ln['url'])} is not a readable image "
                           f"({type(err).__name__})") from None
