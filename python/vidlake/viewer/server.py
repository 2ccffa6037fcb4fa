"""The viewer's local web server: the standard library's ``ThreadingHTTPServer``, read-only.

Note [Viewer security]: the server binds to 127.0.0.1 on a free port and answers only URLs
that start with ``/<token>/``, a 128-bit random token made per server (``secrets``), so other
local users and web pages in the same browser (DNS rebinding, cross-site requests) cannot
read the dataset without knowing it. It answers GET and HEAD only and never writes to the
dataset. Pages are sent with ``Referrer-Policy: no-referrer`` and a Content-Security-Policy
that allows nothing but this server.

Note [Viewer streaming]: ``GET /<token>/video/<tensor>/<row>`` answers ``Range`` requests
(206 with ``Content-Range``) from the sample's range source (``media.byte_source``): the
stored chunks of a ``video`` sample or the linked file / remote object of a ``link[video]``
sample. An open-ended range (``bytes=N-``, what browsers ask first) is answered with at most
:data:`OPEN_RANGE` bytes (a 206 whose ``Content-Range`` says so; browsers then ask for the
next range when they need it), so a browser reading ahead into a connection it is about to
drop cannot pull megabytes it never plays. The answer is written in pieces of at most :data:`PIECE` bytes, each fetched just
before it is sent, so a browser that reads only the moov atom and the first seconds makes
vidlake fetch only those bytes, and a connection the browser drops stops the fetching. One
thread per connection: pages, frames and thumbnails stay responsive while a large remote
video streams.

    >>> with Viewer(ds) as v:
    ...     print(v.url)                   # http://127.0.0.1:PORT/TOKEN/
"""
from __future__ import annotations

import atexit
import contextlib
import http.server
import importlib.resources
import logging
import re
import secrets
import socket
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ..errors import VidlakeError
from ..storage.creds import redact
from .media import FrameCache, byte_source, mime_type, native_playback, sample_payload, sequence_item
from .pages import error_page, grid_page, is_player, row_page, sample_page

if TYPE_CHECKING:  # pragma: no cover
    from ..dataset import Dataset

__all__ = ["PIECE", "Viewer", "close_all"]

log = logging.getLogger("vidlake.viewer")

#: bytes fetched from storage and written per step of a video answer
PIECE = 512 * 1024
#: most bytes answered to an open-ended range (``bytes=N-``); the browser asks again for more
OPEN_RANGE = 1024 * 1024
#: width of grid thumbnails
THUMB_WIDTH = 240
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_STATIC = {"viewer.js": "text/javascript; charset=utf-8", "viewer.css": "text/css; charset=utf-8"}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "media-src 'self'; connect-src 'self'; frame-ancestors *")

_LIVE: weakref.WeakSet[Viewer] = weakref.WeakSet()
_ATEXIT = [False]


def close_all() -> None:
    """Stop every viewer server of this process (also run at exit)."""
    for v in list(_LIVE):
        v.close()


class _NotFound(Exception):
    pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    viewer: Viewer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._conns: set[Any] = set()
        self._conns_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close every open connection (idle keep-alive ones too), so no handler thread outlives
        the server."""
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser dropping a connection (it does, after reading what it needs) is normal:
        no traceback on stderr; anything else goes to the ``vidlake.viewer`` logger."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        log.warning("viewer: request from %s failed", client_address, exc_info=exc)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "vidlake-viewer"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # -- answers ---------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None,
              cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "private, max-age=3600" if cache else "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.server.viewer._count(len(body))

    def _page(self, status: int, html: str) -> None:
        self._send(status, html.encode("utf-8"), "text/html; charset=utf-8", {"Content-Security-Policy": _CSP})

    def _error(self, status: int, title: str, message: str) -> None:
        self._page(status, error_page(self.server.viewer.base, title, message))

    def do_GET(self) -> None:
        v = self.server.viewer
        parts = urlsplit(self.path)
        path = parts.path
        if not path.startswith(v.base):
            self._send(403, b"forbidden: this viewer's URLs carry its token\n", "text/plain; charset=utf-8")
            return
        rest = [unquote(p) for p in path[len(v.base):].split("/") if p]
        query = parse_qs(parts.query)
        with v._lock:
            v.requests += 1
        try:
            self._route(rest, query)
        except (BrokenPipeError, ConnectionResetError):  # the browser went away
            self.close_connection = True
        except _NotFound as e:
            self._error(404, "Not found", str(e))
        except Exception as e:  # every failure becomes a page naming the sample and cause
            log.debug("viewer request %s failed", redact(self.path), exc_info=True)
            kind = "Unreadable sample" if isinstance(e, (VidlakeError, OSError)) else "Viewer error"
            with contextlib.suppress(OSError):
                self._error(500, kind, redact(f"{type(e).__name__}: {e}"))

    do_HEAD = do_GET

    def _route(self, rest: list[str], query: dict[str, list[str]]) -> None:
        v = self.server.viewer
        ds = v.ds
        if not rest:
            page = int((query.get("page") or ["0"])[0] or 0)
            self._page(200, grid_page(v.base, ds, page))
            return
        kind = rest[0]
        if kind == "static" and len(rest) == 2 and rest[1] in _STATIC:
            body = importlib.resources.files("vidlake.viewer").joinpath("static").joinpath(rest[1]).read_bytes()
            self._send(200, body, _STATIC[rest[1]], cache=True)
            return
        if kind == "row" and len(rest) == 2:
            self._page(200, row_page(v.base, ds, self._row_of_ds(rest[1])))
            return
        if kind in ("s", "video", "frame", "thumb", "item") and len(rest) >= 3:
            name = rest[1]
            if name not in ds.tensors:
                raise _NotFound(f"{ds.path} has no tensor {name!r}; tensors: {', '.join(ds.tensors)}")
            t = ds[name]
            row = self._row(rest[2], len(t), name)
            if kind == "s":
                if not is_player(ds, name):
                    raise _NotFound(f"{name} ({t.htype}) is not a video or an image sequence")
                self._sample(name, row)
            elif kind == "video" and t.spec.video:
                self._video(name, row)
            elif kind == "frame" and len(rest) == 4 and t.spec.video:
                n = self._row(rest[3], int(t.sample_shape(row)[0]), f"{name}[{row}] frame")
                self._send(200, v.frames.frame(t, row, n), "image/jpeg", cache=True)
            elif kind == "thumb":
                self._thumb(name, row)
            elif kind == "item" and len(rest) == 4:
                k = int(rest[3]) if rest[3].isdigit() else -1
                try:
                    data, mime = sequence_item(t, row, k)
                except IndexError as e:
                    raise _NotFound(str(e)) from None
                self._send(200, data, mime, cache=True)
            else:
                raise _NotFound(f"nothing at {'/'.join(rest)}")
            return
        raise _NotFound(f"nothing at /{'/'.join(quote(p) for p in rest)}")

    @staticmethod
    def _row(text: str, n: int, what: str) -> int:
        if not text.isdigit():
            raise _NotFound(f"{what}: {text!r} is not a sample number")
        row = int(text)
        if row >= n:
            raise _NotFound(f"no sample {row} in {what}: it has {n} (0 to {n - 1})" if n else
                            f"no sample {row} in {what}: it is empty")
        return row

    def _row_of_ds(self, text: str) -> int:
        ds = self.server.viewer.ds
        return self._row(text, max((len(t) for t in ds.tensors.values()), default=0), str(ds.path))

    # -- the sample page ---------------------------------------------------------------------
    def _sample(self, name: str, row: int) -> None:
        v = self.server.viewer
        t = v.ds[name]
        try:
            payload = sample_payload(v.ds, name, row)
            native, why = native_playback(t, row)
            if native and t.spec.video:
                byte_source(t, row)  # a linked file that vanished fails here, as a page
        except Exception as e:  # the page says which sample and why
            log.debug("sample page %s[%d]", name, row, exc_info=True)
            self._error(500, "Unreadable sample",
                        redact(f"{v.ds.path}: {name}[{row}] cannot be shown: {type(e).__name__}: {e}"))
            return
        if v.force_frames:
            native, why = False, "frame player chosen (force_frames=True)"
        self._page(200, sample_page(v.base, v.ds, name, row, payload, native, why))

    def _thumb(self, name: str, row: int) -> None:
        v = self.server.viewer
        t = v.ds[name]
        if t.spec.video:
            h, w = t.reader(row).metadata["height"], t.reader(row).metadata["width"]
            tw = min(THUMB_WIDTH, int(w))
            th = max(2, round(int(h) * tw / max(1, int(w))))
            n = int(t.sample_shape(row)[0])
            self._send(200, v.frames.frame(t, row, min(n - 1, n // 10), size=(th, tw)), "image/jpeg", cache=True)
            return
        data, mime = sequence_item(t, row, 0)
        self._send(200, data, mime, cache=True)

    # -- Range streaming ---------------------------------------------------------------------
    def _video(self, name: str, row: int) -> None:
        v = self.server.viewer
        t = v.ds[name]
        src = byte_source(t, row)
        size = int(src.size)
        start, end, status = 0, size, 200
        rng = self.headers.get("Range")
        if rng:
            m = _RANGE_RE.match(rng.strip())
            ok = bool(m) and bool(m.group(1) or m.group(2))  # type: ignore[union-attr]
            if ok and m is not None:
                if m.group(1):
                    start = int(m.group(1))
                    end = min(size, int(m.group(2)) + 1) if m.group(2) else min(size, start + OPEN_RANGE)
                else:
                    start = max(0, size - int(m.group(2)))
                ok = start < size and start < end
            if not ok:
                self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", mime_type(t.info(row).get("format")))
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        pos = start
        while pos < end and not v._closed.is_set():
            nxt = min(end, pos + PIECE)
            data = src.fetch([(pos, nxt)])[0]
            if len(data) != nxt - pos:
                raise VidlakeError(f"{name}[{row}]: short read at byte {pos}")
            self.wfile.write(data)
            v._count(len(data))
            pos = nxt


class Viewer:
    """A local web app over one dataset: a grid of its samples and a page per sample with the
    player, the frame counter, frame stepping and the overlays (``vidlake/viewer/``).

    Binds 127.0.0.1 on a free port (``port=0``) with a random token in every URL, serves
    read-only, and stops on :meth:`close`, at the end of a ``with`` block or at exit.
    ``force_frames=True`` plays every video through the frame player (vidlake's decoder).

        >>> with vidlake.viewer.Viewer(ds) as v:
        ...     v.sample_url("videos", 0)
        'http://127.0.0.1:41234/Xk.../s/videos/0'
    """

    def __init__(self, ds: Dataset, host: str = "127.0.0.1", port: int = 0,
                 force_frames: bool = False) -> None:
        self.ds = ds
        self.token = secrets.token_urlsafe(16)
        self.base = f"/{self.token}/"
        self.force_frames = force_frames
        self.frames = FrameCache()
        self.requests = 0
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.viewer = self
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"vidlake-viewer-{self.port}", daemon=True)
        self._thread.start()
        _LIVE.add(self)
        if not _ATEXIT[0]:
            atexit.register(close_all)
            _ATEXIT[0] = True

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    @property
    def url(self) -> str:
        """The grid page (the token is part of it)."""
        return f"http://{self.host}:{self.port}{self.base}"

    def sample_url(self, tensor: str, row: int) -> str:
        """The page of sample ``row`` of video (or image sequence) tensor ``tensor``."""
        return f"{self.url}s/{quote(tensor)}/{int(row)}"

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Stop the server (idempotent); open connections are closed, streams stop."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.drop_connections()
        self._thread.join(timeout=5)
        _LIVE.discard(self)

    def __enter__(self) -> Viewer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _repr_html_(self) -> str:
        """Inline in Jupyter: the grid in an iframe."""
        return (f'<iframe src="{self.url}" width="100%" height="640" style="border:0" '
                f'title="vidlake viewer"></iframe>')

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.url
        return f"Viewer({self.ds.path!r}, {state})"
