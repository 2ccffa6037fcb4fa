"""Loopback servers for the remote-storage tests: real servers, no patched clients.

* ``moto_server``   -- moto's S3 in server mode (``ThreadedMotoServer``) on 127.0.0.1, a free port.
* ``gcs_server``    -- gcp-storage-emulator (a GCS JSON API server) in this process on 127.0.0.1.
* ``token_server``  -- an OAuth token endpoint for service-account keys whose ``token_uri`` is here.
* ``GenerationProxy`` -- a proxy in front of the GCS emulator enforcing ``ifGenerationMatch``
                       (the emulator ignores generation preconditions).
* ``http_server``   -- an HTTP/1.1 file server honouring ``Range`` (``/norange/<name>`` ignores it).
* ``CountingProxy`` -- a TCP proxy counting the bytes each way (server-side byte counts).
* ``FaultProxy``    -- an HTTP proxy injecting faults: ``503`` answers, dropped connections
                       (RST), stalls; for the first N requests or for every request.
* ``big_video``     -- a ~20 s 1080p H.264 mp4 (tens of MB) made once with the ffmpeg CLI.

Use them with ``from remote_fixtures import moto_server, s3_bucket, ...`` in a test module.
Every server is a process-wide singleton: several test modules importing the session fixtures
share one instance, started on first use and shut down at the end of the session. Everything
listens on 127.0.0.1 only; proxies and handlers run on daemon threads, stalls wake up at
shutdown, so nothing outlives the session.
"""
from __future__ import annotations

import contextlib
import http.client
import http.server
import logging
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

# google-auth's default chain asks the GCE metadata server (169.254.169.254) when it finds
# nothing else: keep every such probe on loopback, and off, before google.auth is imported.
os.environ["NO_GCE_CHECK"] = "true"
os.environ["GCE_METADATA_HOST"] = "127.0.0.1:9"
os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"
os.environ.pop("STORAGE_EMULATOR_HOST", None)

HOST = "127.0.0.1"
REGION = "us-east-1"
FAKE_KEY_ID = "vidlake-test-key-id"
FAKE_SECRET = "vidlake-test-secret-value"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


_SINGLETONS: dict[str, object] = {}
_SINGLETON_LOCK = threading.Lock()


@contextlib.contextmanager
def _shared(name: str, make, stop) -> Iterator[object]:
    with _SINGLETON_LOCK:
        entry = _SINGLETONS.get(name)
        if entry is None:
            entry = [make(), 0]
            _SINGLETONS[name] = entry
        entry[1] += 1
    try:
        yield entry[0]
    finally:
        with _SINGLETON_LOCK:
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                _SINGLETONS.pop(name, None)
        if last:
            stop(entry[0])


# ---------------------------------------------------------------------------------------
# moto S3 server
# ---------------------------------------------------------------------------------------
class MotoS3:
    """A running moto server: ``endpoint``, ``creds()``, ``client()``, ``enable_auth()``."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
        self.server.start()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self.endpoint = f"http://{HOST}:{self.port}"
        self._wait_ready()

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server on port {self.port} did not start") from None
                time.sleep(0.05)

    def creds(self, endpoint: str | None = None, **extra) -> dict:
        """A creds dict for vidlake pointing at this server (or at a proxy in front of it)."""
        c = {"aws_access_key_id": FAKE_KEY_ID, "aws_secret_access_key": FAKE_SECRET,
             "endpoint_url": endpoint or self.endpoint, "aws_region": REGION}
        c.update(extra)
        return c

    def client(self, service: str = "s3", **kw):
        import boto3
        from botocore.config import Config

        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=FAKE_KEY_ID,
            aws_secret_access_key=FAKE_SECRET, config=Config(retries={"total_max_attempts": 2}), **kw)

    def _post(self, path: str, body: bytes) -> None:
        req = urllib.request.Request(self.endpoint + path, data=body, method="POST",
                                     headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    @contextlib.contextmanager
    def enable_auth(self) -> Iterator[None]:
        """Within the block moto checks access keys, signatures and IAM policies."""
        self._post("/moto-api/reset-auth", b"0")
        try:
            yield
        finally:
            self._post("/moto-api/reset-auth", b"inf")

    def make_bucket(self, prefix: str = "vl") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def drop_bucket(self, name: str) -> None:
        c = self.client()
        try:
            while True:
                page = c.list_objects_v2(Bucket=name)
                objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if not objs:
                    break
                c.delete_objects(Bucket=name, Delete={"Objects": objs, "Quiet": True})
            c.delete_bucket(Bucket=name)
        except Exception as e:  # noqa: BLE001 - best-effort clean-up
            logging.getLogger(__name__).debug("dropping bucket %s: %s", name, e)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    """moto's S3 on 127.0.0.1 (one per test session)."""
    with _shared("moto", MotoS3, MotoS3.stop) as srv:
        yield srv


@pytest.fixture
def s3_bucket(moto_server: MotoS3) -> Iterator[str]:
    """A fresh, empty bucket on the moto server (deleted after the test)."""
    name = moto_server.make_bucket()
    yield name
    moto_server.drop_bucket(name)


@pytest.fixture
def s3_root(moto_server: MotoS3, s3_bucket: str) -> tuple[str, dict]:
    """``("s3://<fresh bucket>/ds", creds)``: a dataset root and the creds that reach it."""
    return f"s3://{s3_bucket}/ds", moto_server.creds()


# ---------------------------------------------------------------------------------------
# HTTP file server with Range support
# ---------------------------------------------------------------------------------------
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _QuietServer

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def _resolve(self) -> tuple[Path | None, bool]:
        path = self.path.split("?", 1)[0]
        honour_range = True
        if path.startswith("/norange/"):
            honour_range = False
            path = path[len("/norange"):]
        elif path.startswith("/nohead/"):
            path = path[len("/nohead"):]
        name = urllib.request.url2pathname(path.lstrip("/"))
        owner: RangeHTTPServer = self.server.owner  # type: ignore[attr-defined]
        if name in owner.files:
            return owner.files[name], honour_range
        p = (owner.root / name).resolve()
        if owner.root.resolve() not in p.parents or not p.is_file():
            return None, honour_range
        return p, honour_range

    def _send_plain(self, status: int, body: bytes = b"", extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        owner: RangeHTTPServer = self.server.owner  # type: ignore[attr-defined]
        with owner.lock:
            owner.requests += 1
            owner.log.append((self.command, self.path, self.headers.get("Range")))
        if owner.required_header and self.headers.get(owner.required_header[0]) != owner.required_header[1]:
            self._send_plain(403, b"forbidden")
            return
        if head and self.path.startswith("/nohead/"):
            self._send_plain(405, b"", {"Allow": "GET"})
            return
        path, honour_range = self._resolve()
        if path is None:
            self._send_plain(404, b"not found")
            return
        size = path.stat().st_size
        rng = self.headers.get("Range")
        start, end = 0, size  # [start, end)
        status = 200
        if rng and honour_range:
            m = _RANGE_RE.match(rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                self._send_plain(416, b"", {"Content-Range": f"bytes */{size}"})
                return
            if m.group(1):
                start = int(m.group(1))
                end = min(size, int(m.group(2)) + 1) if m.group(2) else size
            else:  # suffix range: the last n bytes
                start = max(0, size - int(m.group(2)))
            if start >= size or end <= start:
                self._send_plain(416, b"", {"Content-Range": f"bytes */{size}"})
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        if honour_range:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if head:
            return
        with open(path, "rb") as f:
            f.seek(start)
            left = end - start
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                try:
                    self.wfile.write(chunk)
                except OSError:  # the client went away (e.g. after reading what it needed)
                    self.close_connection = True
                    return
                left -= len(chunk)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)


class RangeHTTPServer:
    """Serves ``root`` (plus files registered in ``files``) on 127.0.0.1 with Range support.

    ``/norange/<name>`` serves the same file but ignores ``Range`` (answers 200, whole file);
    ``/nohead/<name>`` answers HEAD with 405 (size must come from a Range probe).
    ``required_header = (name, value)`` makes every request without it fail with 403.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.files: dict[str, Path] = {}
        self.requests = 0
        self.log: list[tuple[str, str, str | None]] = []
        self.required_header: tuple[str, str] | None = None
        self.lock = threading.Lock()
        self.httpd = _QuietServer((HOST, 0), _RangeHandler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="range-http", daemon=True)
        self.thread.start()

    def add(self, name: str, data: bytes | Path) -> str:
        """Serve ``data`` (bytes or a file path) as ``/<name>``; returns its URL."""
        if isinstance(data, (bytes, bytearray)):
            p = self.root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        else:
            self.files[name] = Path(data)
        return f"{self.url}/{name}"

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.log.clear()
        self.required_header = None

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def http_server(tmp_path_factory) -> Iterator[RangeHTTPServer]:
    """The Range-honouring HTTP server (one per session); ``reset()`` at the start of a test."""
    def make():
        return RangeHTTPServer(tmp_path_factory.mktemp("http-root"))

    with _shared("http", make, RangeHTTPServer.stop) as srv:
        srv.reset()
        yield srv


# ---------------------------------------------------------------------------------------
# Byte-counting TCP proxy
# ---------------------------------------------------------------------------------------
class CountingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``(host, port)`` counting the bytes both ways.

    ``bytes_down`` is what the server sent to the client (responses, headers included),
    ``bytes_up`` what the client sent; ``connections`` the TCP connections accepted.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.bytes_down = 0
        self.bytes_up = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._closed = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self.thread = threading.Thread(target=self._accept_loop, name="counting-proxy", daemon=True)
        self.thread.start()

    def reset(self) -> None:
        with self._lock:
            self.bytes_down = self.bytes_up = self.connections = 0

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self.connections += 1
                self._socks.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, "down"), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while True:
                data = src.recv(256 * 1024)
                if not data:
                    break
                with self._lock:
                    if direction == "down":
                        self.bytes_down += len(data)
                    else:
                        self.bytes_up += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()
            with self._lock:
                self._socks.discard(src)
                self._socks.discard(dst)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        self.thread.join(timeout=5)


# ---------------------------------------------------------------------------------------
# Fault-injecting HTTP proxy
# ---------------------------------------------------------------------------------------
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
S3_503_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
               b"<Message>injected by FaultProxy</Message><RequestId>fault</RequestId></Error>")


class _FaultHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = bytearray()
            while True:
                line = self.rfile.readline(65537)
                raw += line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        t = self.rfile.readline(65537)
                        raw += t
                        if t in (b"\r\n", b"\n", b""):
                            return bytes(raw)
                raw += self.rfile.read(size + 2)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _drop(self) -> None:
        # RST instead of FIN: the client sees "connection reset by peer"
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _send_answer(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status, reason)
        for k, v in headers:
            if k.lower() in _HOP_BY_HOP or k.lower() == "content-length":
                continue
            self.send_header(k, v)
        if self.command == "HEAD":
            n = {k.lower(): v for k, v in headers}.get("content-length")
            if n is not None:
                self.send_header("Content-Length", n)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.owner  # type: ignore[attr-defined]
        body = self._read_body()
        answer = proxy._intercept(self.command, self.path, self.headers, body)
        if answer == "drop":
            self._drop()
            return
        if answer is not None:
            self._send_answer(*answer)
            return
        fault = proxy._next_fault(self.command, self.path, body)
        if fault == "503":
            self.send_response(503, "Service Unavailable")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(S3_503_BODY)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(S3_503_BODY)
            return
        if fault == "drop":
            self._drop()
            return
        if fault == "stall":
            proxy._closed.wait(proxy.stall_seconds)
            self._drop()
            return
        if fault == "lose":  # the server does the work, the client never hears of it
            forward(proxy.target, self.command, self.path, self.headers, body)
            self._drop()
            return
        self._send_answer(*forward(proxy.target, self.command, self.path, self.headers, body))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle


def forward(target: tuple[str, int], method: str, path: str, headers, body: bytes):
    """Send one request to ``target``; ``(status, reason, headers, body)`` of its answer."""
    conn = http.client.HTTPConnection(*target, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            if k.lower() not in ("connection", "proxy-connection", "keep-alive"):
                conn.putheader(k, v)
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.reason, resp.getheaders(), data
    finally:
        conn.close()


MODES = ("503", "drop", "stall", "lose")


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``(host, port)`` that misbehaves on purpose.

    ``fail(n, mode)`` makes the next ``n`` requests fail; ``fail_always(mode)`` every request
    until ``heal()``. Modes: ``"503"`` (an S3-style ServiceUnavailable answer), ``"drop"``
    (the connection is reset without an answer), ``"stall"`` (no answer for ``stall_seconds``,
    then reset), ``"lose"`` (the request is forwarded and done, then the connection is reset
    before the answer: a write that landed although the client saw it fail). ``fail_matching(method, path_part, mode, n)`` fails only requests of that
    method whose path contains ``path_part`` (``n=None``: until ``heal()``), e.g. the PUT of
    ``dataset_meta.json``; with ``body_part`` only those whose body holds it too (a GCS upload
    names its object in the body). ``requests`` counts requests, ``faults`` the faults injected.
    """

    def __init__(self, host: str, port: int, stall_seconds: float = 5.0) -> None:
        self.target = (host, port)
        self.stall_seconds = stall_seconds
        self.requests = 0
        self.faults = 0
        self._pending: list[str] = []
        self._always: str | None = None
        self._rules: list[list] = []  # [method, path part, mode, remaining count or None]
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.httpd = _QuietServer((HOST, 0), _FaultHandler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="fault-proxy", daemon=True)
        self.thread.start()

    def fail(self, n: int, mode: str = "503") -> None:
        assert mode in MODES, mode
        with self._lock:
            self._pending.extend([mode] * n)

    def fail_always(self, mode: str = "503") -> None:
        assert mode in MODES, mode
        with self._lock:
            self._always = mode

    def fail_matching(self, method: str, path_part: str, mode: str = "503", n: int | None = None,
                      body_part: bytes | None = None) -> None:
        assert mode in MODES, mode
        with self._lock:
            self._rules.append([method.upper(), path_part, mode, n, body_part])

    def heal(self) -> None:
        with self._lock:
            self._pending.clear()
            self._always = None
            self._rules.clear()

    def reset(self) -> None:
        self.heal()
        with self._lock:
            self.requests = self.faults = 0

    def _next_fault(self, method: str = "", path: str = "", body: bytes = b"") -> str | None:
        with self._lock:
            self.requests += 1
            for rule in self._rules:
                if (rule[0] == method.upper() and rule[1] in path and rule[3] != 0
                        and (rule[4] is None or rule[4] in body)):
                    if rule[3] is not None:
                        rule[3] -= 1
                    self.faults += 1
                    return rule[2]
            fault = self._pending.pop(0) if self._pending else self._always
            if fault:
                self.faults += 1
            return fault

    def _intercept(self, method: str, path: str, headers, body: bytes):
        """Subclasses may answer a request themselves: ``(status, reason, headers, body)``;
        ``None`` lets it through."""
        return

    def close(self) -> None:
        self._closed.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def counting_proxy_s3(moto_server: MotoS3) -> Iterator[CountingProxy]:
    """A fresh byte-counting proxy in front of the moto server."""
    p = CountingProxy(HOST, moto_server.port)
    yield p
    p.close()


@pytest.fixture
def fault_proxy_s3(moto_server: MotoS3) -> Iterator[FaultProxy]:
    """A fresh fault-injecting proxy in front of the moto server."""
    p = FaultProxy(HOST, moto_server.port)
    yield p
    p.close()


@pytest.fixture
def fault_proxy_http(http_server: RangeHTTPServer) -> Iterator[FaultProxy]:
    """A fresh fault-injecting proxy in front of the HTTP file server."""
    p = FaultProxy(HOST, http_server.port)
    yield p
    p.close()


# ---------------------------------------------------------------------------------------
# A large 1080p video
# ---------------------------------------------------------------------------------------
class BigVideo:
    """``path`` of a 1920x1080, 30 fps, ~20 s H.264 mp4 with a keyframe every 60 frames."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.s3_uri: str | None = None  # set by the ``big_video_s3`` fixture


BIG_VIDEO_SECONDS = float(os.environ.get("VIDLAKE_BIG_VIDEO_SECONDS", "20"))


def _make_big_video(tmp_path_factory) -> BigVideo:
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg CLI is needed to generate the 1080p test video")
    out = tmp_path_factory.mktemp("big-video") / "testsrc2_1080p.mp4"
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30", "-t", str(BIG_VIDEO_SECONDS),
           "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-g", "60", "-pix_fmt", "yuv420p",
           str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    if res.returncode != 0:
        pytest.fail(f"ffmpeg failed to make the 1080p video: {res.stderr[-2000:]}")
    return BigVideo(out)


@pytest.fixture(scope="session")
def big_video(tmp_path_factory) -> Iterator[BigVideo]:
    """The large 1080p video, generated once per session."""
    with _shared("big_video", lambda: _make_big_video(tmp_path_factory), lambda v: None) as v:
        yield v


def _upload_big_video(moto: MotoS3, video: BigVideo) -> str:
    bucket = moto.make_bucket("vl-big")
    moto.client().upload_file(str(video.path), bucket, "videos/big.mp4")
    return f"s3://{bucket}/videos/big.mp4"


@pytest.fixture(scope="session")
def big_video_s3(moto_server: MotoS3, big_video: BigVideo) -> Iterator[BigVideo]:
    """The large video uploaded once to the moto server; ``big_video_s3.s3_uri`` is its URL."""
    def make():
        big_video.s3_uri = _upload_big_video(moto_server, big_video)
        return big_video

    def stop(v):
        if v.s3_uri:
            moto_server.drop_bucket(v.s3_uri.split("/")[2])

    with _shared("big_video_s3", make, stop) as v:
        yield v


# ---------------------------------------------------------------------------------------
# GCS: gcp-storage-emulator, an OAuth token endpoint, generation preconditions
# ---------------------------------------------------------------------------------------
class GcsEmulator:
    """gcp-storage-emulator serving the GCS JSON API on 127.0.0.1 (in this process, in memory).

    What it does and does not do (checked by tests/test_storage_gcs.py): ranged GETs (206 with
    Content-Range; a range starting past the end gives 206 with an empty body, not 416),
    uploads (multipart and resumable), compose, listing with prefixes (all keys in one page:
    ``maxResults``/``pageToken`` are ignored), deletes. It ignores generation preconditions
    (``ifGenerationMatch``: see ``GenerationProxy``) and checks no credentials at all.
    """

    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

        self.port = free_port()
        self.server = create_server(HOST, self.port, in_memory=True)
        api = getattr(self.server, "_api", None)
        if isinstance(api, threading.Thread):
            api.daemon = True  # an interrupted session must not hang on the server thread
        self.server.start()
        for name in ("gcp_storage_emulator", "api.object", "api.bucket"):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # it logs every 404 as an error
        self.endpoint = f"http://{HOST}:{self.port}"

    def creds(self, endpoint: str | None = None, **extra) -> dict:
        """Anonymous creds for vidlake pointing at the emulator (or at a proxy in front of it)."""
        c = {"endpoint_url": endpoint or self.endpoint, "gcs_anon": True}
        c.update(extra)
        return c

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="vidlake-test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.endpoint})

    def make_bucket(self, prefix: str = "vl") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(name)
        return name

    def upload(self, bucket: str, key: str, path: str | Path) -> str:
        self.client().bucket(bucket).blob(key).upload_from_filename(str(path))
        return f"gs://{bucket}/{key}"

    def drop_bucket(self, name: str) -> None:
        try:
            b = self.client().bucket(name)
            for blob in list(b.list_blobs()):
                blob.delete()
            b.delete()
        except Exception as e:  # noqa: BLE001 - best-effort clean-up
            logging.getLogger(__name__).debug("dropping bucket %s: %s", name, e)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GcsEmulator]:
    """gcp-storage-emulator on 127.0.0.1 (one per test session)."""
    pytest.importorskip("gcp_storage_emulator")
    pytest.importorskip("google.cloud.storage")
    with _shared("gcs", GcsEmulator, GcsEmulator.stop) as srv:
        yield srv


@pytest.fixture
def gcs_bucket(gcs_server: GcsEmulator) -> Iterator[str]:
    """A fresh, empty bucket on the GCS emulator (deleted after the test)."""
    name = gcs_server.make_bucket()
    yield name
    gcs_server.drop_bucket(name)


@pytest.fixture
def gcs_root(gcs_server: GcsEmulator, gcs_bucket: str) -> tuple[str, dict]:
    """``("gs://<fresh bucket>/ds", creds)``: a dataset root and the creds that reach it."""
    return f"gs://{gcs_bucket}/ds", gcs_server.creds()


@pytest.fixture
def counting_proxy_gcs(gcs_server: GcsEmulator) -> Iterator[CountingProxy]:
    """A fresh byte-counting proxy in front of the GCS emulator."""
    p = CountingProxy(HOST, gcs_server.port)
    yield p
    p.close()


@pytest.fixture
def fault_proxy_gcs(gcs_server: GcsEmulator) -> Iterator[FaultProxy]:
    """A fresh fault-injecting proxy in front of the GCS emulator."""
    p = FaultProxy(HOST, gcs_server.port)
    yield p
    p.close()


class GenerationProxy(FaultProxy):
    """A proxy in front of the GCS emulator that enforces generation preconditions as GCS does.

    A request carrying ``ifGenerationMatch=G`` (single-request uploads, compose, deletes) is
    checked and forwarded under one lock: when the object's current generation (0 = absent)
    is not ``G`` it is answered ``412 conditionNotMet`` and never reaches the emulator.
    Requests through this proxy are thus serialised the way GCS serialises writes of one
    object. ``refused`` counts the 412 answers. Faults (``fail``...) work as in FaultProxy.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self._write_lock = threading.Lock()
        self.refused = 0

    @staticmethod
    def _object_of(path: str, body: bytes) -> tuple[str, str] | None:
        import json
        from urllib.parse import parse_qs, unquote, urlsplit

        parts = urlsplit(path)
        m = re.match(r"^(?:/upload)?/storage/v1/b/([^/]+)/o(?:/(.+?))?(/compose)?$", parts.path)
        if not m:
            return None
        bucket, name = m.group(1), m.group(2)
        if name is not None:
            return bucket, unquote(name)
        q = parse_qs(parts.query)
        if "name" in q:
            return bucket, q["name"][0]
        start = body.find(b"{")  # multipart upload: the first part is the object's JSON metadata
        if start < 0:
            return None
        try:
            meta, _ = json.JSONDecoder().raw_decode(body[start:].decode("utf-8", "replace"))
        except ValueError:
            return None
        return (bucket, meta["name"]) if isinstance(meta, dict) and "name" in meta else None

    def _current_generation(self, bucket: str, name: str) -> int:
        import json
        from urllib.parse import quote

        status, _r, _h, data = forward(self.target, "GET", f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}",
                                       {"Host": f"{HOST}:{self.target[1]}"}, b"")
        if status == 404:
            return 0
        return int(json.loads(data)["generation"])

    def _intercept(self, method: str, path: str, headers, body: bytes):
        import json
        from urllib.parse import parse_qs, urlsplit

        want = parse_qs(urlsplit(path).query).get("ifGenerationMatch")
        if not want or method not in ("POST", "PUT", "DELETE", "PATCH"):
            return None
        obj = self._object_of(path, body)
        if obj is None:
            return None
        with self._write_lock:
            fault = self._next_fault(method, path, body)  # keep fault injection usable here
            if fault is not None and fault != "lose":
                return 503, "Service Unavailable", [("Content-Type", "application/json")], \
                    b'{"error": {"code": 503, "message": "injected by GenerationProxy"}}'
            have = self._current_generation(*obj)
            if have != int(want[0]):
                with self._lock:
                    self.refused += 1
                msg = {"error": {"code": 412, "message": "At least one of the pre-conditions you specified did "
                                 "not hold.", "errors": [{"reason": "conditionNotMet"}]}}
                return 412, "Precondition Failed", [("Content-Type", "application/json")], json.dumps(msg).encode()
            answer = forward(self.target, method, path, headers, body)
            return "drop" if fault == "lose" else answer


@pytest.fixture
def generation_proxy_gcs(gcs_server: GcsEmulator) -> Iterator[GenerationProxy]:
    """A fresh precondition-enforcing proxy in front of the GCS emulator."""
    p = GenerationProxy(HOST, gcs_server.port)
    yield p
    p.close()


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        import json

        owner: TokenServer = self.server.owner  # type: ignore[attr-defined]
        n = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(n).decode()
        with owner.lock:
            owner.requests += 1
            owner.forms.append(form)
        if owner.refuse:
            body = json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}).encode()
            status = 400
        else:
            body = json.dumps({"access_token": owner.access_token, "expires_in": 3600,
                               "token_type": "Bearer"}).encode()
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class TokenServer:
    """An OAuth 2.0 token endpoint on 127.0.0.1: service-account keys made by :meth:`key`
    point their ``token_uri`` here, so google-auth signs a JWT and exchanges it here (never
    with Google). ``refuse = True`` answers ``400 invalid_grant`` (a revoked or wrong key)."""

    def __init__(self) -> None:
        self.requests = 0
        self.forms: list[str] = []
        self.refuse = False
        self.access_token = f"ya29.vidlake-test-{uuid.uuid4().hex}"
        self.lock = threading.Lock()
        self.httpd = _QuietServer((HOST, 0), _TokenHandler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.url = f"http://{HOST}:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="token-server", daemon=True)
        self.thread.start()
        self._pem: str | None = None

    def key(self, email: str = "vidlake-test@vidlake-test.iam.gserviceaccount.com", fresh: bool = False) -> dict:
        """A service-account key (JSON as a dict), ``token_uri`` = this server; its RSA key is made
        once per server (``fresh=True``: a new one)."""
        if self._pem is None or fresh:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": "vidlake-test",
                "private_key_id": f"kid{uuid.uuid4().hex}", "private_key": self._pem,
                "client_email": email, "client_id": "1234567890", "token_uri": self.url}

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.forms.clear()
        self.refuse = False

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    """A loopback OAuth token endpoint for this test (counters at zero, refusal off)."""
    with _shared("token", TokenServer, TokenServer.stop) as srv:
        srv.reset()
        yield srv


def _upload_big_video_gcs(gcs: GcsEmulator, video: BigVideo) -> str:
    bucket = gcs.make_bucket("vl-big")
    return gcs.upload(bucket, "videos/big.mp4", video.path)


@pytest.fixture(scope="session")
def big_video_gcs(gcs_server: GcsEmulator, big_video: BigVideo) -> Iterator[str]:
    """The large video uploaded once to the GCS emulator: its ``gs://`` URL."""
    def stop(uri):
        gcs_server.drop_bucket(uri.split("/")[2])

    with _shared("big_video_gcs", lambda: _upload_big_video_gcs(gcs_server, big_video), stop) as uri:
        yield uri
