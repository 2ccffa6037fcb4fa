"""The on-disk format (see ``docs/FORMAT.md``): object keys, metadata JSON, version checks.

Everything here is plain data <-> bytes; no I/O. The layout of a dataset root::

    dataset_meta.json                  the commit record: tensors, sample counts, table segments
    <tensor>/tensor_meta.json          htype, sample_compression, chunk sizes (written once)
    <tensor>/tables/<seg>.json         sample table segments: per sample its byte extents,
                                       packet-index extent and sample_info (immutable)
    <tensor>/chunks/<chunk>            sample bytes, many small samples packed per chunk

    >>> from vidlake.format import records as fmt
    >>> meta = fmt.new_dataset_meta()
    >>> fmt.decode_dataset_meta(fmt.encode_json(meta))["format_version"]
    '1.1'
"""
from __future__ import annotations

import json
import re
import uuid
from typing import Any

from ..errors import DatasetError

__all__ = [
    "DATASET_META_KEY",
    "DEFAULT_MAX_CHUNK_SIZE",
    "DEFAULT_TARGET_CHUNK_SIZE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Extent",
    "check_tensor_name",
    "check_version",
    "chunk_key",
    "decode_dataset_meta",
    "decode_json",
    "decode_table",
    "decode_tensor_meta",
    "encode_json",
    "encode_table",
    "new_dataset_meta",
    "new_id",
    "table_key",
    "tensor_meta_key",
]

FORMAT_NAME = "vidlake"
#: ``major.minor``: a reader accepts any minor of its major and refuses a newer major.
#: 1.1 added the optional ``creds_keys`` of the commit record and the link htypes.
#: 1.1 also added the image, bbox and sequence[...] htypes and the optional tensor-meta fields
#: ``coords``, ``aligned_to`` (docs/FORMAT.md, "Sequences and annotations").
FORMAT_VERSION = "1.1"
FORMAT_MAJOR = 1

DATASET_META_KEY = "dataset_meta.json"
DEFAULT_MAX_CHUNK_SIZE = 16 * 1024 * 1024
DEFAULT_TARGET_CHUNK_SIZE = 8 * 1024 * 1024

#: a byte extent inside a tensor's chunks: (chunk id, offset, length)
Extent = tuple[str, int, int]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")


def check_tensor_name(name: str) -> str:
    """Tensor names are identifiers (letters, digits, ``_``, ``-``); also the folder name."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise DatasetError(
            f"invalid tensor name {name!r}: use letters, digits, '_' or '-', starting with a letter or '_'"
        )
    return name


def tensor_meta_key(tensor: str) -> str:
    """Key of a tensor's meta JSON."""
    return f"{tensor}/tensor_meta.json"


def chunk_key(tensor: str, chunk_id: str) -> str:
    """Key of one chunk object."""
    return f"{tensor}/chunks/{chunk_id}"


def table_key(tensor: str, seg_id: str) -> str:
    """Key of one sample-table segment."""
    return f"{tensor}/tables/{seg_id}.json"


def new_id() -> str:
    """A fresh random object id (never reused, so a crashed writer's leftovers never collide)."""
    return uuid.uuid4().hex


def encode_json(obj: Any) -> bytes:
    """Canonical JSON bytes (compact, UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def decode_json(data: bytes, what: str) -> Any:
    """Parse JSON, turning damage into a DatasetError naming ``what``."""
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DatasetError(f"{what} is damaged (not valid JSON: {e})") from None


def check_version(meta: dict[str, Any], what: str) -> None:
    """Refuse objects of another format or of a newer major format version."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise DatasetError(f"{what} is not a vidlake object (format={meta.get('format') if isinstance(meta, dict) else None!r})")
    ver = str(meta.get("format_version", ""))
    try:
        major = int(ver.split(".")[0])
    except ValueError:
        raise DatasetError(f"{what} has an unreadable format_version {ver!r}") from None
    if major > FORMAT_MAJOR:
        raise DatasetError(
            f"{what} was written with vidlake format version {ver}; this vidlake reads format "
            f"{FORMAT_MAJOR}.x only. Upgrade vidlake to open it."
        )


def new_dataset_meta() -> dict[str, Any]:
    """The commit record of an empty dataset."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "generation": 0,
        "tensors": [],          # creation order
        "tensor_state": {},     # name -> {"length", "segments": [{"id","start","count"}], "open_chunk": [id, size]|None}
        "info": {},
    }


def decode_dataset_meta(data: bytes, root: str = "dataset") -> dict[str, Any]:
    """Parse and validate ``dataset_meta.json``."""
    what = f"{root}/{DATASET_META_KEY}"
    meta = decode_json(data, what)
    check_version(meta, what)
    for k in ("generation", "tensors", "tensor_state"):
        if k not in meta:
            raise DatasetError(f"{what} is damaged (missing {k!r})")
    return meta


def new_tensor_state() -> dict[str, Any]:
    """Commit-record entry of an empty tensor."""
    return {"length": 0, "segments": [], "open_chunk": None}


def decode_tensor_meta(data: bytes, what: str) -> dict[str, Any]:
    """Parse and validate a ``tensor_meta.json``."""
    meta = decode_json(data, what)
    check_version(meta, what)
    for k in ("name", "htype"):
        if k not in meta:
            raise DatasetError(f"{what} is damaged (missing {k!r})")
    return meta


def encode_table(tensor: str, start: int, samples: list[dict[str, Any]]) -> bytes:
    """A sample-table segment: the entries of samples ``start .. start+len(samples)-1``."""
    return encode_json({
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "tensor": tensor, "start": start, "samples": samples,
    })


def decode_table(data: bytes, what: str, start: int, count: int) -> list[dict[str, Any]]:
    """Parse a segment and check it holds exactly the samples the commit record says."""
    seg = decode_json(data, what)
    check_version(seg, what)
    samples = seg.get("samples")
    if seg.get("start") != start or not isinstance(samples, list) or len(samples) != count:
        raise DatasetError(f"{what} is damaged (expected samples {start}..{start + count - 1})")
    return samples
