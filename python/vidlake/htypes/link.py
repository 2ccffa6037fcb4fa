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
  (``populate_creds`` in this process, or ``managed=True``: ``vidlake.storage.creds``). Local paths
  ignore creds. Secrets never enter the dataset.
* ``link[image]`` samples are whole-file reads (images are small), decoded like ``image``
  samples (``vidlake/video/images.py``: uint8 ``(H, W, C)``, C = 1, 3 or 4); ``sample_info`` is
  ``shape``, ``format``, ``filename``, ``modified``.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import CredentialsError, HtypeError, SampleAppendError, StorageError, VideoDecodeError
from ..format.records import sample_index
from ..sources import LinkedSample, RemoteRangeSource, Sample, build_remote_index, link
from ..storage import get_provider, split_url, url_scheme
from ..storage.creds import redact
from ..video import IMAGE_COMPRESSIONS, Index, VideoReader, decode_image, image_header
from ..video.images import current_image_decoder
from . import register
from .base import Htype, PreparedSample, SampleContext, WriteContext
from .image import stored_image_decoder
from .video import VIDEO_COMPRESSIONS, storable_index, video_facts

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping

    import numpy as np

    from ..storage import StorageProvider

__all__ = ["LinkImageHtype", "LinkVideoHtype"]


# -- sources ---------------------------------------------------------------------------------
def _local_path(url: str, ctx: WriteContext | None = None) -> str:
    """The path of a local link, after the dataset said that this path may be read (a dataset
    from someone else must not make vidlake read local files: ``allow_local_links``)."""
    path = url.removeprefix("file://")
    if ctx is not None:
        ctx.check_local_path(path)
    return path


def _provider(ctx: WriteContext | None, url: str, creds_key: str | None) -> tuple[StorageProvider, str]:
    """(read-only provider of the URL's parent, object key); the dataset keeps one per parent and key."""
    parent, name = split_url(url)
    if ctx is None:
        return get_provider(parent, read_only=True), name
    return ctx.link_provider(parent, creds_key), name


def _remote_source(ctx: WriteContext | None, url: str, creds_key: str | None,
                   size: int | None = None) -> RemoteRangeSource:
    provider, key = _provider(ctx, url, creds_key)
    try:
        return RemoteRangeSource(provider, key, size=size, name=redact(url))
    except KeyError:
        raise FileNotFoundError(f"{redact(url)}: no such object") from None


def _whole_file(ctx: WriteContext | None, ln: Mapping[str, Any]) -> bytes:
    url = ln["url"]
    if url_scheme(url) in ("", "file"):
        with open(_local_path(url, ctx), "rb") as f:
            return f.read()
    provider, key = _provider(ctx, url, ln.get("creds_key"))
    try:
        return provider.get(key)
    except KeyError:
        raise FileNotFoundError(f"{redact(url)}: no such object") from None


# -- append ----------------------------------------------------------------------------------
def _index_video(ctx: WriteContext | None, s: LinkedSample, tensor: str, compression: str | None):
    """(index, sample_info, extra) of a linked video, by ranged reads or from the local file."""
    what = repr(redact(s.url))
    if s.is_local:
        path = _local_path(s.url, ctx)
        try:
            index = Index.build(path, -1, s.url)
            with open(path, "rb") as f:
                head = f.read(64)
        except OSError as e:
            raise SampleAppendError(f"cannot link {what} to {tensor!r}: {e.strerror or e}") from None
    else:
        src = _remote_source(ctx, s.url, s.creds_key)
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


def prepare_link(htype: str, sample: Any, tensor: str, meta: Mapping[str, Any],
                 ctx: WriteContext | None) -> PreparedSample:
    """Validate a linked sample; index it (unless ``verify=False``) without copying its bytes."""
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
    if ctx is not None:
        ctx.creds(sample.creds_key, check_only=True)  # an unknown key name fails now
    entry_link = {"url": sample.url, "creds_key": sample.creds_key, "verified": bool(sample.verify)}
    if not sample.verify:
        return PreparedSample(b"", _unknown_info(htype, sample.url), link=entry_link)
    what = repr(redact(sample.url))
    comp = meta.get("sample_compression")
    try:
        if htype == "link[video]":
            index, info, extra = _index_video(ctx, sample, tensor, comp)
            stored = storable_index(index, f"cannot link {what} to {tensor!r}", redact(sample.url))
            return PreparedSample(b"", info, index=stored, extra=extra, link=entry_link)
        data = _whole_file(ctx, entry_link)
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
def _resolved(ctx: SampleContext, htype: str) -> dict[str, Any]:
    """Facts of an unverified link built on first use (memory only): info (+ index)."""
    ln = ctx.entry["link"]
    hit = ctx.memo.get("link")
    if hit is not None and hit[0] == ln["url"]:
        return hit[1]
    s = LinkedSample(ln["url"], ln.get("creds_key"), True)
    comp = ctx.meta.get("sample_compression")
    try:
        if htype == "link[video]":
            index, info, _extra = _index_video(ctx, s, ctx.tensor, comp)
            out = {"info": info, "index": index}
        else:
            out = {"info": _image_facts(_whole_file(ctx, ln), s.url, ctx.tensor, comp)}
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
    ctx.memo["link"] = (ln["url"], out)
    return out


def linked_info(ctx: SampleContext, htype: str) -> dict[str, Any]:
    """``sample_info`` of a linked sample (stored, or built on first use when unverified)."""
    e = ctx.entry
    if e["link"].get("verified", True):
        return dict(e["info"])
    return dict(_resolved(ctx, htype)["info"])


def open_linked_reader(ctx: SampleContext, threads: int | None = None) -> VideoReader:
    """A VideoReader over a linked video: its stored index, ranged reads from its source."""
    e = ctx.entry
    ln = e["link"]
    name = ctx.name
    if ln.get("verified", True):
        index = sample_index(e, ctx.read_extents(e["index"]), name)  # untrusted input
    else:
        index = _resolved(ctx, "link[video]")["index"]
    url = ln["url"]
    if url_scheme(url) in ("", "file"):
        path = _local_path(url, ctx)
        try:
            size = os.stat(path).st_size
        except OSError as err:
            raise StorageError(f"{name}: the linked file {path} cannot be read: {err.strerror or err}") from None
        if size != int(index.source_size):
            raise StorageError(f"{name}: the linked file {path} changed since it was linked "
                               f"({size} bytes, indexed {int(index.source_size)}); link it again")
        return VideoReader(path, index=index, name=name, threads=threads)
    try:
        src = _remote_source(ctx, url, ln.get("creds_key"), size=int(index.source_size))
    except FileNotFoundError as err:
        raise StorageError(f"{name}: {err}") from None
    return VideoReader(src, index=index, name=redact(name), threads=threads)


def read_linked_image(ctx: SampleContext) -> np.ndarray:
    """A linked image as ``(H, W, C)`` uint8 (the whole file is read)."""
    ln = ctx.entry["link"]
    what = f"{ctx.tensor}[{ctx.index}]"
    try:
        data = _whole_file(ctx, ln)
    except FileNotFoundError as err:
        raise StorageError(f"{what}: {err}") from None
    except OSError as err:
        raise StorageError(f"{what}: cannot read {redact(ln['url'])}: {err.strerror or err}") from None
    try:
        return decode_image(data, image_decoder=current_image_decoder(stored_image_decoder(ctx.meta)))
    except ModuleNotFoundError:
        raise HtypeError("link[image] tensors decode images with Pillow: pip install pillow") from None
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for bad input
        raise StorageError(f"{what}: {redact(ln['url'])} is not a readable image "
                           f"({type(err).__name__})") from None


class LinkVideoHtype(Htype):
    """``link[video]``: a video by URL or path; the dataset keeps its index, not its bytes."""

    name = "link[video]"
    frames = True
    video = True
    linked = True
    compressions = VIDEO_COMPRESSIONS
    compression_required = False
    fixed_dtype = "uint8"

    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        return prepare_link(self.name, sample, tensor, meta, ctx)

    def info(self, ctx: SampleContext) -> dict[str, Any]:
        return linked_info(ctx, self.name)

    def open_reader(self, ctx: SampleContext, threads: int | None = None) -> VideoReader:
        return open_linked_reader(ctx, threads)


class LinkImageHtype(Htype):
    """``link[image]``: an image by URL or path, read whole and decoded like ``image``."""

    name = "link[image]"
    linked = True
    compressions = IMAGE_COMPRESSIONS
    compression_required = False
    fixed_dtype = "uint8"
    still_image = True

    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        return prepare_link(self.name, sample, tensor, meta, ctx)

    def info(self, ctx: SampleContext) -> dict[str, Any]:
        return linked_info(ctx, self.name)

    def read(self, ctx: SampleContext) -> Any:
        return read_linked_image(ctx)


register(LinkVideoHtype())
register(LinkImageHtype())
