"""The on-disk format (see ``docs/FORMAT.md``): object keys, metadata JSON, version checks.

Everything here is plain data <-> bytes; no I/O. The layout of a dataset root::

    dataset_meta.json                  the commit record: tensors, sample counts, table segments
    <tensor>/tensor_meta.json          htype, sample_compression, chunk sizes (written once)
    <tensor>/tables/<seg>.json         sample table segments: per sample its byte extents,
                                       packet-index extent and sample_info (immutable)
    <tensor>/chunks/<chunk>            sample bytes, many small samples packed per chunk
    <tensor>/lists/<list>.json         segment lists (2.0): descriptors of sealed segments, or of
                                       lower-level lists (immutable)

    >>> from vidlake.format import records as fmt
    >>> meta = fmt.new_dataset_meta()
    >>> fmt.decode_dataset_meta(fmt.encode_json(meta))["format_version"]
    '1.2'
"""
from __future__ import annotations

import gc
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import DatasetError, VidlakeError
from ..video import Index

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "DATASET_META_KEY",
    "DEFAULT_MAX_CHUNK_SIZE",
    "DEFAULT_TARGET_CHUNK_SIZE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LISTS_VERSION",
    "Extent",
    "check_dataset_meta",
    "check_entry",
    "check_tensor_name",
    "check_version",
    "chunk_key",
    "decode_dataset_meta",
    "decode_json",
    "decode_list",
    "decode_stored",
    "decode_table",
    "decode_tensor_meta",
    "encode_json",
    "encode_list",
    "encode_table",
    "is_list_key",
    "is_table_key",
    "later_version",
    "list_key",
    "new_dataset_meta",
    "new_id",
    "sample_index",
    "table_key",
    "tensor_meta_key",
]

FORMAT_NAME = "vidlake"
#: ``major.minor``: a reader accepts any minor of its major and refuses a newer major.
#: 1.1 added the optional ``creds_keys`` of the commit record and the link htypes.
#: 1.1 also added the image, bbox and sequence[...] htypes and the optional tensor-meta fields
#: ``coords``, ``aligned_to`` (docs/FORMAT.md, "Sequences and annotations").
#: 1.2 added the optional ``shape`` summary of each segment in the commit record (readers load
#: segments lazily; docs/FORMAT.md, "Segment summaries").
#: 2.0 added segment lists (``tensor_state[t]["lists"]``, ``<tensor>/lists/<id>.json``;
#: docs/FORMAT.md, "Segment lists"): a major, since a 1.x reader cannot read a record with lists
#: (it refuses it with its "newer major, upgrade" message). A writer says 2.0 only in a record
#: that has lists (1.x readers read every other record), so FORMAT_VERSION stays what a record
#: without lists says. A reader reads every older major too.
FORMAT_VERSION = "1.2"
LISTS_VERSION = "2.0"
FORMAT_MAJOR = 2
#: the deepest segment-list tree a record may name (64 entries per list: 64^16 segments)
MAX_LIST_LEVEL = 16
#: the most entries one segment list may hold
MAX_LIST_ENTRIES = 1 << 16
#: the most dimensions a stored shape (or a segment's summary) may have
MAX_SHAPE_DIMS = 32

DATASET_META_KEY = "dataset_meta.json"
DEFAULT_MAX_CHUNK_SIZE = 16 * 1024 * 1024
DEFAULT_TARGET_CHUNK_SIZE = 8 * 1024 * 1024
#: the largest chunk size a tensor meta may declare (16 GiB)
MAX_CHUNK_SIZE_LIMIT = 16 << 30

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


def list_key(tensor: str, list_id: str) -> str:
    """Key of one segment list (format 2.0)."""
    return f"{tensor}/lists/{list_id}.json"


_LIST_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}/lists/[0-9a-f]{8,64}\.json$")


def is_list_key(key: str) -> bool:
    """True for the key of a segment list (replaced lists are garbage, deleted after the grace period).

        >>> is_list_key("videos/lists/9f0c1a2b.json"), is_list_key("videos/lists/../x.json")
        (True, False)
    """
    return isinstance(key, str) and bool(_LIST_KEY_RE.match(key))


_TABLE_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}/tables/[0-9a-f]{8,64}\.json$")


def is_table_key(key: str) -> bool:
    """True for the key of a sample-table segment (what a writer may delete as garbage)."""
    return isinstance(key, str) and bool(_TABLE_KEY_RE.match(key))


_CHUNK_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}/chunks/[0-9a-f]{8,64}$")


def is_chunk_key(key: str) -> bool:
    """True for the key of a chunk object (compaction lists chunks it emptied as garbage, 1.1).

        >>> is_chunk_key("videos/chunks/9f0c1a2b"), is_chunk_key("dataset_meta.json")
        (True, False)
    """
    return isinstance(key, str) and bool(_CHUNK_KEY_RE.match(key))


def new_id() -> str:
    """A fresh random object id (never reused, so a crashed writer's leftovers never collide)."""
    return uuid.uuid4().hex


def encode_json(obj: Any) -> bytes:
    """Canonical JSON bytes (compact, UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def decode_json(data: bytes, what: str) -> Any:
    """Parse JSON, turning damage into a DatasetError naming ``what``.

    The text must be UTF-8, and so must every string in it: a ``\\ud800`` escape (a lone
    surrogate) parses, but could not be encoded again, so it is refused here.
    """
    data = bytes(data)
    try:
        obj = json.loads(data.decode("utf-8"))
        if b"\\u" in data:  # only escapes can smuggle in lone surrogates
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError) as e:
        raise DatasetError(f"{what} is damaged (not valid JSON: {e})") from None
    return obj


# -- structural checks of what a dataset from someone else may hold (docs/DESIGN.md, "Threat
# model"): every field a loader or reader uses is checked here, once, when it is loaded.
_ID_RE = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")
#: largest byte offset or length, and sample count, a dataset may name (2^53, as the core)
MAX_COUNT = 1 << 53


def _damaged(what: str, field: str, why: str) -> DatasetError:
    return DatasetError(f"{what} is damaged: field {field!r} {why}")


def _int(v: Any, what: str, field: str, lo: int = 0, hi: int = MAX_COUNT) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _damaged(what, field, f"must be an integer in [{lo}, {hi}], not {v!r:.80}")
    return v


def _object_id(v: Any, what: str, field: str) -> str:
    if not isinstance(v, str) or not _ID_RE.match(v):
        raise _damaged(what, field, f"must be an object id (letters, digits, '_', '-'), not {v!r:.80}")
    return v


def _dict(v: Any, what: str, field: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _damaged(what, field, f"must be an object, not {type(v).__name__}")
    return v


def _list(v: Any, what: str, field: str) -> list[Any]:
    if not isinstance(v, list):
        raise _damaged(what, field, f"must be a list, not {type(v).__name__}")
    return v


def _extents(v: Any, what: str, field: str) -> None:
    for k, e in enumerate(_list(v, what, field)):
        f = f"{field}[{k}]"
        if not isinstance(e, list) or len(e) != 3:
            raise _damaged(what, f, "must be [chunk id, offset, length]")
        _object_id(e[0], what, f + "[0]")
        _int(e[1], what, f + "[1]")
        _int(e[2], what, f + "[2]")


def check_version(meta: dict[str, Any], what: str) -> None:
    """Refuse objects of another format or of a major format version newer than this reader's."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise DatasetError(f"{what} is not a vidlake object (format={meta.get('format') if isinstance(meta, dict) else None!r})")
    ver = str(meta.get("format_version", ""))
    try:
        major = int(ver.split(".")[0])
    except ValueError:
        raise DatasetError(f"{what} has an unreadable format_version {ver!r}") from None
    if major > FORMAT_MAJOR:
        raise DatasetError(
            f"{what} was written with vidlake format version {ver}; this vidlake reads "
            f"formats up to {FORMAT_MAJOR}.x. Upgrade vidlake to open it."
        )


def later_version(a: str, b: str) -> str:
    """The later of two ``major.minor`` versions (what a commit record says after a writer of
    version ``b`` commits to a dataset of version ``a``: a newer minor is kept as it is).

        >>> later_version("1.1", "1.2"), later_version("2.0", "1.2"), later_version("", "1.2")
        ('1.2', '2.0', '1.2')
    """
    def key(v: str) -> tuple[int, int]:
        try:
            major, minor = v.split(".")
            return int(major), int(minor)
        except ValueError:
            return (-1, -1)
    return a if key(a) > key(b) else b


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
    check_dataset_meta(meta, what)
    return meta


def check_dataset_meta(meta: dict[str, Any], what: str) -> None:
    """Every field of a commit record a loader uses, checked before any is used.

        >>> check_dataset_meta(new_dataset_meta(), "ds/dataset_meta.json")
    """
    _int(meta["generation"], what, "generation")
    tensors = _list(meta["tensors"], what, "tensors")
    states = _dict(meta["tensor_state"], what, "tensor_state")
    for k, name in enumerate(tensors):
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise _damaged(what, f"tensors[{k}]", f"is not a tensor name: {name!r:.80}")
        if name not in states:
            raise _damaged(what, f"tensor_state[{name!r}]", "is missing")
    if len(set(tensors)) != len(tensors):
        raise _damaged(what, "tensors", "lists a tensor twice")
    for name in tensors:
        f = f"tensor_state[{name!r}]"
        st = _dict(states[name], what, f)
        if "length" not in st or "segments" not in st:
            raise _damaged(what, f, "needs 'length' and 'segments'")
        length = _int(st["length"], what, f + ".length")
        # 2.0: segment lists cover the first rows, the segments listed here the rest
        covered = check_descriptors(st.get("lists", []), what, f + ".lists", 0, None)
        covered = check_descriptors(st["segments"], what, f + ".segments", covered, 0)
        if covered != length:
            raise _damaged(what, f + ".segments", f"cover {covered} samples, but 'length' is {length}")
        oc = st.get("open_chunk")
        if oc is not None:
            if not isinstance(oc, list) or len(oc) != 2:
                raise _damaged(what, f + ".open_chunk", "must be null or [chunk id, size]")
            _object_id(oc[0], what, f + ".open_chunk[0]")
            _int(oc[1], what, f + ".open_chunk[1]")
    for k, g in enumerate(_list(meta.get("garbage", []), what, "garbage")):
        if (not isinstance(g, list) or len(g) != 2 or not isinstance(g[0], str)
                or isinstance(g[1], bool) or not isinstance(g[1], (int, float))):
            raise _damaged(what, f"garbage[{k}]", "must be [key, unix time]")
    for k, c in enumerate(_list(meta.get("creds_keys", []), what, "creds_keys")):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not isinstance(c.get("managed", False), bool):
            raise _damaged(what, f"creds_keys[{k}]", "must be {\"name\": str, \"managed\": bool}")
    _dict(meta.get("info", {}), what, "info")


def summary_shape(shapes: list[Any]) -> list[Any] | None:
    """The summary of a segment list (2.0): the element-wise common shape of its entries'
    summaries (``[None]`` when their ranks differ), ``None`` when one of them has none (as
    ``htypes.common_shape``, which this layer cannot import).

        >>> summary_shape([[2, 3], [4, 3]]), summary_shape([[2], None]), summary_shape([[1], [1, 2]])
        ([None, 3], None, [None])
    """
    if not shapes or any(x is None for x in shapes):
        return None
    ndim = len(shapes[0])
    if any(len(x) != ndim for x in shapes):
        return [None]
    return [x0 if all(x[d] == x0 for x in shapes) else None for d, x0 in enumerate(shapes[0])]


def _summary(v: Any, what: str, field: str) -> None:
    """A segment's (1.2) or a segment list's (2.0) ``shape`` summary, or ``None``."""
    if v is None:
        return
    shape = _list(v, what, field)
    if len(shape) > MAX_SHAPE_DIMS:
        raise _damaged(what, field, f"has {len(shape)} dimensions (at most {MAX_SHAPE_DIMS})")
    for d, x in enumerate(shape):
        if x is not None:
            _int(x, what, f"{field}[{d}]", 0, 1 << 31)


def check_descriptors(descs: Any, what: str, field: str, start: int, level: int | None) -> int:
    """Descriptors of segments (``level`` 0: ``{"id", "start", "count", "shape"}``) or of
    segment lists (``{..., "level"}``, 2.0; ``level`` the one they all have, ``None``: any)
    covering rows ``start ..`` in order without gaps; returns the end.

        >>> check_descriptors([{"id": "ab", "start": 4, "count": 2}], "m.json", "segments", 4, 0)
        6
    """
    covered = start
    for k, d in enumerate(_list(descs, what, field)):
        sf = f"{field}[{k}]"
        d = _dict(d, what, sf)
        _object_id(d.get("id"), what, sf + ".id")
        if _int(d.get("start"), what, sf + ".start") != covered:
            raise _damaged(what, sf + ".start", f"is {d['start']}, but the entries before end at {covered}")
        covered += _int(d.get("count"), what, sf + ".count", 1)
        if level != 0:
            lv = _int(d.get("level"), what, sf + ".level", 1, MAX_LIST_LEVEL)
            if level is not None and lv != level:
                raise _damaged(what, sf + ".level", f"must be {level}")
        _summary(d.get("shape"), what, sf + ".shape")
    if covered > MAX_COUNT:
        raise _damaged(what, field, f"cover more than {MAX_COUNT} samples")
    return covered


def encode_list(tensor: str, level: int, start: int, entries: list[dict[str, Any]]) -> bytes:
    """A segment list (2.0): descriptors of the segments (``level`` 1) or of the level - 1
    lists (``level`` > 1) holding samples ``start ..``."""
    return encode_json({
        "format": FORMAT_NAME, "format_version": LISTS_VERSION,
        "tensor": tensor, "level": level, "start": start, "entries": entries,
    })


def decode_list(data: bytes, what: str, desc: Mapping[str, Any], tensor: str) -> list[dict[str, Any]]:
    """Parse a segment list and check it is the one ``desc`` (its descriptor in the record or in
    the list above) names: same tensor, level, start and count, entries covering exactly those
    rows, at most MAX_LIST_ENTRIES of them, and a summary that is the common shape of theirs.

        >>> raw = encode_list("t", 1, 0, [{"id": "ab", "start": 0, "count": 3, "shape": [2]}])
        >>> decode_list(raw, "t/lists/x.json", {"id": "x", "start": 0, "count": 3, "level": 1, "shape": [2]}, "t")
        [{'id': 'ab', 'start': 0, 'count': 3, 'shape': [2]}]
    """
    obj = _dict(decode_json(data, what), what, "(top)")
    check_version(obj, what)
    level, start, count = desc["level"], desc["start"], desc["count"]
    for k, want in (("tensor", tensor), ("level", level), ("start", start)):
        if obj.get(k) != want:
            raise _damaged(what, k, f"is {obj.get(k)!r:.80}, but the list that names it says {want!r}")
    entries = _list(obj.get("entries"), what, "entries")
    if not 0 < len(entries) <= MAX_LIST_ENTRIES:
        raise _damaged(what, "entries", f"has {len(entries)} entries (1 .. {MAX_LIST_ENTRIES})")
    end = check_descriptors(entries, what, "entries", start, level - 1)
    if end != start + count:
        raise _damaged(what, "entries", f"cover samples {start}..{end - 1}, but the list that names it says "
                                        f"{start}..{start + count - 1}")
    summary = desc.get("shape")
    if summary is not None:
        got = summary_shape([e.get("shape") for e in entries])
        if got != list(summary):
            raise _damaged(what, "entries", f"have the common shape {got}, but the list that names it says "
                                            f"{list(summary)}")
    return entries


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
    # values that drive writes: a crafted 0 or negative chunk size would loop forever on append
    sizes = {k: meta.get(k) for k in ("max_chunk_size", "target_chunk_size")}
    for k, v in sizes.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= MAX_CHUNK_SIZE_LIMIT):
            raise DatasetError(f"{what} is damaged: {k} must be an int in 1 .. {MAX_CHUNK_SIZE_LIMIT}, got {v!r}")
    if None not in sizes.values() and sizes["target_chunk_size"] > sizes["max_chunk_size"]:
        raise DatasetError(f"{what} is damaged: target_chunk_size {sizes['target_chunk_size']} is larger than "
                           f"max_chunk_size {sizes['max_chunk_size']}")
    if not isinstance(meta["name"], str) or not _NAME_RE.match(meta["name"]):
        raise _damaged(what, "name", f"is not a tensor name: {meta['name']!r:.80}")
    if not isinstance(meta["htype"], str):
        raise _damaged(what, "htype", "must be a string")
    for k in ("sample_compression", "dtype", "aligned_to"):
        if meta.get(k) is not None and not isinstance(meta[k], str):
            raise _damaged(what, k, "must be a string or null")
    names = meta.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise _damaged(what, "class_names", "must be a list of strings")
    for k in ("coords",):
        if meta.get(k) is not None:
            _dict(meta[k], what, k)
    return meta


def encode_table(tensor: str, start: int, samples: list[dict[str, Any]]) -> bytes:
    """A sample-table segment: the entries of samples ``start .. start+len(samples)-1``."""
    return encode_json({
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "tensor": tensor, "start": start, "samples": samples,
    })


def decode_table(data: bytes, what: str, start: int, count: int, htype: str | None = None) -> list[dict[str, Any]]:
    """Parse a segment and check it holds exactly the samples the commit record says, each
    entry well formed for a tensor of ``htype`` (see :func:`check_entry`)."""
    # Note [No collections while parsing]: a 4,096-row segment is some 60,000 new dicts and
    # lists; the cyclic collector would run many times over them (and over everything else the
    # process holds) while they are made, though JSON cannot make cycles. Pausing it made parsing
    # a scene dataset's tables 3.4x faster (5.5 s -> 1.6 s for 19.5 MB, 2 busy cores).
    was = gc.isenabled()
    gc.disable()
    try:
        seg = decode_json(data, what)
        check_version(seg, what)
        samples = seg.get("samples")
        if seg.get("start") != start or not isinstance(samples, list) or len(samples) != count:
            raise DatasetError(f"{what} is damaged (expected samples {start}..{start + count - 1})")
        ids: set[str] = set()
        kind = htype if isinstance(htype, str) else ""
        for k, e in enumerate(samples):
            if not _plain_entry_ok(e, kind, ids):  # the full check says what is wrong, or passes
                check_entry(e, what, f"samples[{k}]", htype)
    finally:
        if was:
            gc.enable()
    return samples


def _plain_extents_ok(v: Any, ids: set[str]) -> bool:
    if type(v) is not list:
        return False
    for x in v:
        if type(x) is not list or len(x) != 3:
            return False
        c, o, n = x
        if type(o) is not int or type(n) is not int or not (0 <= o <= MAX_COUNT and 0 <= n <= MAX_COUNT):
            return False
        if type(c) is not str:
            return False
        if c not in ids:
            if not _ID_RE.match(c):
                return False
            ids.add(c)
    return True


def _plain_items_ok(items: Any, shape: list[Any], data: list[list[Any]]) -> bool:
    if type(items) is not dict:
        return False
    offsets, shapes = items.get("offsets"), items.get("shapes")
    if type(offsets) is not list or type(shapes) is not list or len(shapes) != max(0, len(offsets) - 1):
        return False
    prev = 0
    for k, o in enumerate(offsets):  # 0 first, then non-decreasing
        if type(o) is not int or not prev <= o <= (MAX_COUNT if k else 0):
            return False
        prev = o
    if not shape or shape[0] != len(shapes):
        return False
    if offsets and offsets[-1] != sum(n for _c, _o, n in data):
        return False
    for sh in shapes:
        if type(sh) is not list:
            return False
        for v in sh:
            if type(v) is not int or not 0 <= v <= 1 << 31:
                return False
    return True


def _plain_entry_ok(e: Any, htype: str, ids: set[str]) -> bool:
    """True when :func:`check_entry` would pass ``e`` and ``e`` is a plain entry (no link):
    the same checks, done faster for the rows of a whole segment (chunk ids
    already matched in ``ids`` are not matched again). False means "ask check_entry", which
    passes what this does not cover and names the field of what is wrong.

        >>> _plain_entry_ok({"data": [["c1", 0, 10]], "info": {"shape": [1]}}, "json", set())
        True
    """
    if type(e) is not dict or "link" in e or htype.startswith("link["):
        return False
    if not _plain_extents_ok(e.get("data"), ids):
        return False
    if "index" in e and not _plain_extents_ok(e["index"], ids):
        return False
    if "original" in e and not _plain_extents_ok(e["original"], ids):
        return False
    info = e.get("info")
    if type(info) is not dict:
        return False
    shape = info.get("shape")
    if type(shape) is not list:
        return False
    for v in shape:
        if v is not None and (type(v) is not int or not 0 <= v <= 1 << 31):
            return False
    if htype == "video" and ("index" not in e or len(shape) != 4 or None in shape):
        return False
    items = info.get("items")
    if items is None:
        if htype.startswith("sequence"):
            return False
    elif not _plain_items_ok(items, shape, e["data"]):
        return False
    for key in ("filename", "format"):
        v = info.get(key)
        if v is not None and type(v) is not str:
            return False
    return True


def check_entry(e: Any, what: str, field: str, htype: str | None = None) -> None:
    """The fields of one sample-table entry that readers use (see docs/FORMAT.md), for a
    tensor of ``htype`` (``None``: only what every entry has).

        >>> check_entry({"data": [["c1", 0, 10]], "info": {"shape": [1]}}, "t.json", "samples[0]")
    """
    e = _dict(e, what, field)
    _extents(e.get("data"), what, field + ".data")
    if "index" in e:
        _extents(e["index"], what, field + ".index")
    if "original" in e:  # a re-encoded video's file as appended (keep_original=True)
        _extents(e["original"], what, field + ".original")
    info = _dict(e.get("info"), what, field + ".info")
    shape = _list(info.get("shape"), what, field + ".info.shape")
    for d, v in enumerate(shape):
        if v is not None:
            _int(v, what, f"{field}.info.shape[{d}]", 0, 1 << 31)
    htype = htype if isinstance(htype, str) else ""
    verified = not isinstance(e.get("link"), dict) or e["link"].get("verified", True) is not False
    if htype in ("video", "link[video]") and verified:
        if "index" not in e:
            raise _damaged(what, field + ".index", "is missing (a video sample has a packet index)")
        if len(shape) != 4 or any(v is None for v in shape):
            raise _damaged(what, field + ".info.shape", "must be [frames, height, width, 3]")
    if htype.startswith("link[") and "link" not in e:
        raise _damaged(what, field + ".link", "is missing (a sample of a link tensor)")
    items = info.get("items")
    if htype.startswith("sequence") and items is None:
        raise _damaged(what, field + ".info.items", "is missing (a sequence sample)")
    if items is not None:  # sequence[X]: item k is bytes [offsets[k], offsets[k+1]) of the sample
        items = _dict(items, what, field + ".info.items")
        offsets = _list(items.get("offsets"), what, field + ".info.items.offsets")
        shapes = _list(items.get("shapes"), what, field + ".info.items.shapes")
        prev = 0
        for k, o in enumerate(offsets):  # 0 first, then non-decreasing
            prev = _int(o, what, f"{field}.info.items.offsets[{k}]", prev, MAX_COUNT if k else 0)
        if len(shapes) != max(0, len(offsets) - 1):
            raise _damaged(what, field + ".info.items.shapes", "needs one entry per item")
        if not shape or shape[0] != len(shapes):
            raise _damaged(what, field + ".info.shape", f"must start with the number of items ({len(shapes)})")
        size = sum(n for _c, _o, n in e["data"])
        if offsets and offsets[-1] != size:
            raise _damaged(what, field + ".info.items.offsets", f"must end at the sample's {size} bytes")
        for k, sh in enumerate(shapes):
            for d, v in enumerate(_list(sh, what, f"{field}.info.items.shapes[{k}]")):
                _int(v, what, f"{field}.info.items.shapes[{k}][{d}]", 0, 1 << 31)
    for key in ("filename", "format"):
        if info.get(key) is not None and not isinstance(info[key], str):
            raise _damaged(what, f"{field}.info.{key}", "must be a string or null")
    if "link" in e:
        ln = _dict(e["link"], what, field + ".link")
        if not isinstance(ln.get("url"), str):
            raise _damaged(what, field + ".link.url", "must be a string")
        if ln.get("creds_key") is not None and not isinstance(ln["creds_key"], str):
            raise _damaged(what, field + ".link.creds_key", "must be a string or null")
        if not isinstance(ln.get("verified", True), bool):
            raise _damaged(what, field + ".link.verified", "must be true or false")


def sample_index(entry: Mapping[str, Any], data: bytes, name: str, sample_bytes: int | None = None) -> Any:
    """The stored packet index of a video sample, checked against the sample's entry.

    The core validates the index itself (``IndexFormatError`` naming the field); this adds what
    only the dataset knows: the stored ``shape`` is ``[frames, height, width, 3]`` of that index,
    and for a sample stored in the dataset (``sample_bytes``, the length of its ``data``) the
    index describes a file of exactly that many bytes.

    For a stored sample (needs its chunks, so not a doctest):
    ``sample_index(entry, store.read_extents(entry["index"]), "ds/videos[0]", 574823)``.
    """
    index = Index.from_bytes(bytes(data), name)
    md = index.metadata
    want = [int(index.num_frames), int(md["height"]), int(md["width"]), 3]
    shape = entry["info"]["shape"]
    if list(shape) != want:
        raise DatasetError(f"{name} is damaged: field 'info.shape' is {shape} but its packet index "
                           f"describes {want}")
    if sample_bytes is not None and int(index.source_size) != sample_bytes:
        raise DatasetError(f"{name} is damaged: its packet index describes a file of {index.source_size} "
                           f"bytes but field 'data' holds {sample_bytes}")
    return index


def decode_stored(decode: Callable[..., Any], data: bytes, what: str, kind: str, *args: Any) -> Any:
    """``decode(data, *args)`` for a stored sample value of htype ``kind``; bytes that do not
    decode (text that is not UTF-8, JSON or ``.npy`` that is damaged) become a DatasetError
    naming the sample ``what``.

        >>> decode_stored(bytes.decode, b"hello", "ds/notes[0]", "text")
        'hello'
    """
    try:
        return decode(data, *args)
    except VidlakeError:
        raise
    except Exception as e:  # noqa: BLE001 -- whatever numpy or json make of damaged bytes
        raise DatasetError(f"{what} is damaged: its stored bytes are not a {kind} value "
                           f"({type(e).__name__}: {str(e)[:200]})") from None
