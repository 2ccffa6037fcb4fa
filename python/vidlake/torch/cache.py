"""ReaderCache: the video readers of one loader process, bounded by the bytes of their decoders.

    >>> cache = ReaderCache(max_bytes=256 << 20)
    >>> r = cache.get(ds.videos, 3)          # opened once, then reused by every later clip of row 3
    >>> cache.settle()                       # after a read: trim / close least recently used readers
    >>> cache.info()
    {'readers': 1, 'bytes': 37324800, 'max_bytes': 268435456, 'opened': 1, 'closed': 0, 'hits': 0}

Decoder memory is what a reader costs: a decoder state holds the codec's reference pictures,
about 12 pictures of the stream's size (a 1080p 8-bit 4:2:0 H.264 state is about 37 MB;
docs/DESIGN.md, "Parked decoders"). :meth:`state_bytes` estimates it from the stream's size
and pixel format; a reader's cost is that times the states it keeps alive
(``reader.stats["decoders"]``). When the cache is over ``max_bytes``, readers other than the
most recently used first give back all but one parked state (``reader.trim(1)``), then the
least recently used readers are closed until the cache fits (the most recent one always
stays, so a single huge video still reads).

Fork and spawn: a cache copied into a forked worker forgets its parent's readers and opens its
own (the core sets an inherited reader's decoder states aside in the child, so freeing or using
one there is safe: docs/DESIGN.md, "Readers inherited through fork"); its lock is a new one, made
right after the fork (:mod:`vidlake.storage._forksafe`). Pickled (spawn), a cache travels empty.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from ..storage import _forksafe

__all__ = ["DEFAULT_CACHE_BYTES", "ReaderCache", "state_bytes"]

#: default budget of one loader process's decoder states
DEFAULT_CACHE_BYTES = 512 << 20
#: pictures a decoder state holds, measured on H.264 (see docs/DESIGN.md, "Parked decoders")
_PICTURES_PER_STATE = 12

def _bytes_per_pixel(pix_fmt: str) -> float:
    deep = any(tag in pix_fmt for tag in ("10", "12", "16"))
    if "444" in pix_fmt or pix_fmt.startswith(("rgb", "bgr", "gbr")):
        per = 3.0
    elif "422" in pix_fmt:
        per = 2.0
    elif pix_fmt.startswith("gray"):
        per = 1.0
    else:
        per = 1.5
    return per * (2 if deep else 1)


def state_bytes(metadata: dict) -> int:
    """Estimated bytes of one decoder state of a stream (its reference pictures)."""
    w, h = int(metadata.get("width") or 0), int(metadata.get("height") or 0)
    return int(w * h * _bytes_per_pixel(str(metadata.get("pix_fmt") or "")) * _PICTURES_PER_STATE)


class ReaderCache:
    """Readers keyed by ``(tensor name, row)``, least recently used first out (see module doc).

    ``threads`` is the codec threads of each reader opened (None: one per core)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, threads: int | None = None) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be a non-negative int, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.threads = threads
        self._readers: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._opened = self._closed = self._hits = 0
        _forksafe.register(self)

    # -- pickling (spawn): empty
    def __getstate__(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        ReaderCache.__init__(self, state["max_bytes"], state["threads"])

    def _after_fork_in_child(self) -> None:
        # forked: the parent's readers (and its possibly held lock) stay the parent's
        self._readers = OrderedDict()
        self._lock = threading.Lock()
        self._opened = self._closed = self._hits = 0

    def get(self, tensor: Any, row: int) -> Any:
        """The reader of ``tensor``'s sample ``row``, opened on first use."""
        key = (tensor.key, int(row))
        with self._lock:
            r = self._readers.get(key)
            if r is not None:
                self._readers.move_to_end(key)
                self._hits += 1
                return r
        r = tensor.open_reader(int(row), threads=self.threads)
        with self._lock:
            self._readers[key] = r
            self._readers.move_to_end(key)
            self._opened += 1
        return r

    @staticmethod
    def reader_bytes(reader: Any) -> int:
        """Estimated decoder memory a reader holds now."""
        return int(reader.stats.get("decoders", 0)) * state_bytes(reader.metadata)

    def total_bytes(self) -> int:
        """Estimated decoder memory of every cached reader."""
        with self._lock:
            readers = list(self._readers.values())
        return sum(self.reader_bytes(r) for r in readers)

    def settle(self) -> None:
        """Bring the cache within ``max_bytes``: trim older readers to one parked state, then
        close the least recently used (never the most recent)."""
        with self._lock:
            items = list(self._readers.items())
            sizes = {k: self.reader_bytes(r) for k, r in items}
            total = sum(sizes.values())
            if total <= self.max_bytes:
                return
            for k, r in items[:-1]:
                if r.stats.get("decoders", 0) > 1:
                    r.trim(1)
                    total -= sizes[k]
                    sizes[k] = self.reader_bytes(r)
                    total += sizes[k]
            while total > self.max_bytes and len(self._readers) > 1:
                k, r = self._readers.popitem(last=False)
                total -= sizes.pop(k)
                r.trim(0)  # frees the decoder states now, even if a caller still holds the reader
                self._closed += 1

    def clear(self) -> None:
        """Close every reader."""
        with self._lock:
            readers = list(self._readers.values())
            self._closed += len(readers)
            self._readers.clear()
        for r in readers:
            r.trim(0)

    def __len__(self) -> int:
        return len(self._readers)

    def info(self) -> dict[str, int]:
        """readers, bytes (estimated), max_bytes, opened, closed, hits."""
        return {"readers": len(self._readers), "bytes": self.total_bytes(), "max_bytes": self.max_bytes,
                "opened": self._opened, "closed": self._closed, "hits": self._hits}

    def __repr__(self) -> str:
        i = self.info()
        return f"ReaderCache({i['readers']} readers, ~{i['bytes'] >> 20} MB of {i['max_bytes'] >> 20} MB)"
