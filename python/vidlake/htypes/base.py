"""The htype interface: what every tensor type defines, and what it may ask of its dataset.

An htype is one :class:`Htype` subclass in one module of this package, registered with
:func:`vidlake.htypes.register`; the dataset layer asks the registry
(:func:`vidlake.htypes.lookup`) and never compares htype names itself. An htype:

* validates ``create_tensor``'s parameters (:meth:`Htype.check_compression`, :meth:`Htype.params`);
* turns an appended sample into stored bytes plus its table entry (:meth:`Htype.prepare`);
* reads a stored sample back (:meth:`Htype.read` for values, :meth:`Htype.open_reader` for
  frame-indexed video kinds, :meth:`Htype.info` for ``sample_info``).

It sees its dataset only through the narrow contexts below (:class:`WriteContext` at append,
:class:`SampleContext` at read): credentials, link providers and the stored sample's bytes,
never ``Dataset`` or ``Tensor`` objects.

    >>> from vidlake import htypes
    >>> h = htypes.lookup("sequence[bbox]")
    >>> h.frames, h.video, h.params(None, None, None)["coords"]
    (True, False, {'type': 'pixel', 'mode': 'LTWH'})
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import HtypeError
from ..format.records import decode_stored

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping, Sequence

    from ..format.chunks import ChunkRangeSource
    from ..storage import StorageProvider
    from ..video import VideoReader

__all__ = [
    "Htype",
    "PreparedSample",
    "SampleContext",
    "WriteContext",
    "common_shape",
    "load_npy",
    "npy",
    "numeric_dtype",
    "safe_cast",
]


@dataclass
class PreparedSample:
    """A validated sample, ready to be placed in chunks: its bytes plus its table entry."""

    data: Any  # bytes, or a storage.provider.FileRange copied by the provider at commit
    info: dict[str, Any]
    index: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    link: dict[str, Any] | None = None  # link htypes: url, creds_key, verified (entry["link"])
    original: Any = None  # re-encoded videos with keep_original: the file as given (entry["original"])


class WriteContext(Protocol):
    """What an htype may ask of the dataset while preparing a sample."""

    def creds(self, creds_key: str | None, check_only: bool = False) -> Any:
        """The secrets of a creds key (``None``: the client's default chain); ``check_only``
        only checks that the key exists."""

    def link_provider(self, parent: str, creds_key: str | None) -> StorageProvider:
        """A read-only provider for ``parent`` with that key's credentials (cached)."""

    def check_local_path(self, path: str) -> None:
        """Raise unless the user allowed links to this local path (``allow_local_links``)."""


class SampleContext(WriteContext, Protocol):
    """What an htype may ask of the dataset about one stored sample."""

    name: str                   # for messages: "<dataset>/<tensor>[i] (<filename>)"
    tensor: str
    index: int
    meta: Mapping[str, Any]     # the tensor's meta
    entry: Mapping[str, Any]    # the sample's table entry
    memo: dict[str, Any]        # per-sample memory of this process (e.g. facts of a lazy link)

    def read_extents(self, extents: Sequence[Sequence[Any]]) -> bytes:
        """The bytes stored at these chunk extents."""

    def range_source(self, extents: Sequence[Sequence[Any]]) -> ChunkRangeSource:
        """A range source over the bytes stored at these extents (ranged chunk reads)."""


class Htype:
    """Base of every htype. Class attributes describe it; methods implement its rules."""

    #: the htype's name (``"video"``, ``"bbox"``, ``"sequence[image]"``...)
    name: str = ""
    #: samples are indexed by frame (``ds.t[i, a:b]``): videos and sequences
    frames: bool = False
    #: samples decode as videos (``VideoReader``: timestamps, frame reads)
    video: bool = False
    #: samples are links: the dataset keeps a URL, not the bytes
    linked: bool = False
    #: may be the item of a ``sequence[...]``
    sequence_item: bool = False
    #: accepted ``sample_compression`` values; ``None``: the htype takes none
    compressions: tuple[str, ...] | None = None
    #: ``sample_compression`` must be given (else it may be None)
    compression_required: bool = True
    #: the dtype of every sample (``None``: the tensor's ``dtype`` or the data's)
    fixed_dtype: str | None = None
    #: a ``dtype=`` other than ``fixed_dtype`` is an error (else it is ignored)
    strict_dtype: bool = False
    #: values are numpy arrays (several samples stack); else a list of values (text, json)
    array_values: bool = True
    #: :meth:`decode_row` decodes straight into a preallocated uint8 row (images)
    decodes_rows: bool = False
    #: values are still images, decoded by an image decoder (read option ``image_decoder``)
    still_image: bool = False

    # -- create_tensor ---------------------------------------------------------------
    def check_compression(self, compression: str | None) -> str | None:
        """Validate ``sample_compression``; returns it lower-cased."""
        if self.compressions is None:
            if compression is not None:
                raise ValueError(f"htype {self.name!r} takes no sample_compression (got {compression!r}); use None")
            return None
        if compression is None and not self.compression_required:
            return None
        c = compression.lower() if isinstance(compression, str) else compression
        if c not in self.compressions:
            none = "None, " if not self.compression_required else ""
            raise ValueError(f"sample_compression {compression!r} is not supported for htype {self.name!r}; "
                             f"accepted: {none}{', '.join(self.compressions)}")
        return c

    def params(self, dtype: Any, class_names: Sequence[str] | None,
               coords: Mapping[str, Any] | None) -> dict[str, Any]:
        """Tensor-meta fields of ``create_tensor``'s htype parameters, validated (always
        including ``dtype``). Subclasses taking ``class_names`` or ``coords`` override this."""
        dt = numeric_dtype(dtype) if dtype is not None else None
        if class_names:
            raise ValueError("class_names is only for htype='class_label' or 'sequence[class_label]'")
        if coords is not None:
            raise ValueError("coords is only for htype='bbox' or 'sequence[bbox]'")
        if self.fixed_dtype is not None:
            if dt is not None and dt != np.dtype(self.fixed_dtype) and self.strict_dtype:
                raise ValueError(f"htype {self.name!r} has dtype {self.fixed_dtype}")
            return {"dtype": self.fixed_dtype}
        return {"dtype": str(dt) if dt is not None else None}

    # -- append ----------------------------------------------------------------------
    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        """Validate and encode one appended sample."""
        raise NotImplementedError

    # -- read ------------------------------------------------------------------------
    def decode(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        """Stored bytes -> value (small-value htypes, sequence items)."""
        return load_npy(data)

    def decode_row(self, data: bytes, out: np.ndarray) -> np.ndarray:
        """Decode into ``out`` (only where :attr:`decodes_rows`)."""
        raise NotImplementedError

    def read(self, ctx: SampleContext) -> Any:
        """The value of a stored sample (non-video htypes)."""
        return decode_stored(self.decode, ctx.read_extents(ctx.entry["data"]), ctx.name, self.name, ctx.meta)

    def info(self, ctx: SampleContext) -> dict[str, Any]:
        """``sample_info`` of a stored sample."""
        return dict(ctx.entry["info"])

    def open_reader(self, ctx: SampleContext, threads: int | None = None) -> VideoReader:
        """A ``VideoReader`` over a stored video sample (``video`` htypes only); ``threads``
        sets its codec threads (default: one per core)."""
        raise HtypeError(f"{ctx.name}: {self.name!r} samples are not videos")

    def __repr__(self) -> str:
        return f"<htype {self.name}>"


# -- helpers shared by the htypes --------------------------------------------------------
def npy(arr: np.ndarray) -> bytes:
    """An array as ``.npy`` bytes (no pickles)."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def load_npy(data: bytes) -> np.ndarray:
    """``.npy`` bytes -> array (no pickles)."""
    return np.load(io.BytesIO(data), allow_pickle=False)


def numeric_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a numeric numpy dtype, else ``ValueError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype {dtype!r} is not a numpy dtype") from None
    if dt.kind not in "biufc":
        raise ValueError(f"dtype {dtype!r} is not numeric")
    return dt


def safe_cast(arr: np.ndarray, dtype: Any, tensor: str) -> np.ndarray:
    """``arr`` as ``dtype`` when no value changes (floats may be narrowed); else HtypeError.

        >>> safe_cast(np.array([1, 2]), "uint32", "ids").dtype
        dtype('uint32')
    """
    dst = np.dtype(dtype)
    a = np.asarray(arr)
    if a.dtype == dst:
        return a
    if a.dtype.kind not in "biuf" or dst.kind not in "biufc":
        raise HtypeError(f"tensor {tensor!r} (dtype {dst}) cannot store {a.dtype} values")
    with np.errstate(all="ignore"):
        out = a.astype(dst)
        if dst.kind in "fc":
            lost = np.isfinite(a) & ~np.isfinite(out) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
            if lost.any():
                raise HtypeError(f"tensor {tensor!r} (dtype {dst}): value {a[lost].flat[0].item()!r} does not fit")
            return out
        back = out.astype(a.dtype)
    bad = ~(back == a)
    if bad.any():
        raise HtypeError(
            f"tensor {tensor!r} (dtype {dst}) cannot store {a.dtype} value {a[bad].flat[0].item()!r} exactly; "
            f"cast the data yourself or create the tensor with another dtype"
        )
    return out


def common_shape(shapes: Sequence[Sequence[int]]) -> tuple[int | None, ...]:
    """Element-wise common shape, ``None`` where samples differ (ragged).

        >>> common_shape([[2, 4], [3, 4]])
        (None, 4)
    """
    if not shapes:
        return ()
    ndim = len(shapes[0])
    if any(len(s) != ndim for s in shapes):
        return (None,)
    return tuple(s0 if all(s[d] == s0 for s in shapes) else None for d, s0 in enumerate(shapes[0]))
