"""Remote reads against the peers (issue 19): time and bytes moved, through a shaped link.

A moto S3 server (its own process, on 127.0.0.1) holds one 1080p H.264 video (GOP 250,
B-frames, moov at the end, ~25 s). Every library reads it through ``ShapedProxy``, a TCP
proxy on 127.0.0.1 that adds a fixed latency to every request/response turn (and one to
every new connection, for its handshake), caps the bandwidth of each direction (shared by
all connections, like one link) and counts the bytes both ways. Workloads:

* cold: open from nothing (a new dataset / reader / file object) + one random frame;
* warm: one random frame from an open reader (after a first read);
* clip: frames 100:200 from an open reader;
* batch: one loader batch of 16 random frames of the video in one call, from an open reader.

Libraries: vidlake dataset on S3 (``vidlake.empty("s3://...")`` + append, read with
``vidlake.load``), vidlake ``link[video]`` (the dataset on S3 too, the link to the object),
vidlake ``open_remote_video`` (index from the container's tables), the same with a range
cache that outlives each reader (``RangeCache``: what a second epoch or process pays), Deep
Lake 3.x (dataset on the same S3), torchcodec 0.13 over an s3fs file object (``seek_mode="approximate"``) and
PyAV over the same kind of file object (seek by time, decode to the frame). Every frame is
checked against a local sequential PyAV decode (wrong: mean absolute difference > 1.0, as in
compare.py). The table goes to bench/results/remote.json and is printed as Markdown.

    .venv-bench/bin/python bench/remote.py                  # rtt 20 ms, 50 MB/s, 3 repeats
    .venv-bench/bin/python bench/remote.py --rtt-ms 50 --mbps 20 --repeats 5
    .venv-bench/bin/python bench/remote.py --libs vidlake_remote,pyav
"""
# ruff: noqa: BLE001  (a library that fails is reported, not raised)
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
import uuid
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("BUGGER_OFF", "true")  # Deep Lake 3.x: no usage reporting

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import videos as V  # noqa: E402

HOST = "127.0.0.1"
KEY_ID, SECRET, REGION = "bench-key-id", "bench-secret", "us-east-1"
N_FRAMES = 750  # 25 s at 30 fps: three GOPs of 250
WRONG_MAD = 1.0


def log(msg: str) -> None:
    print(f"[remote] {msg}", flush=True)


# ---------------------------------------------------------------------------------------
# the link: latency per turn, bandwidth cap, byte counts
# ---------------------------------------------------------------------------------------
class _Bucket:
    """A bandwidth cap shared by every connection of one direction."""

    def __init__(self, bytes_per_s: float) -> None:
        self.rate = bytes_per_s
        self.next_free = 0.0
        self.lock = threading.Lock()

    def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        with self.lock:
            start = max(time.monotonic(), self.next_free)
            self.next_free = start + n / self.rate
            done = self.next_free
        delay = done - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class ShapedProxy:
    """A TCP proxy on 127.0.0.1 in front of ``(host, port)``.

    * latency: a new connection waits ``rtt`` before it reaches the server (the handshake);
      the first response bytes after each request wait ``rtt`` (the request's way there and
      the response's way back), so every request/response turn costs one round trip;
    * bandwidth: each direction is capped at ``bytes_per_s`` over all connections together;
    * counts: ``down`` (server to client, HTTP headers included), ``up``, ``turns``
      (request/response turns), ``connections``.
    """

    def __init__(self, host: str, port: int, rtt: float, bytes_per_s: float) -> None:
        self.target = (host, port)
        self.rtt = rtt
        self.down_bucket, self.up_bucket = _Bucket(bytes_per_s), _Bucket(bytes_per_s)
        self.lock = threading.Lock()
        self.down = self.up = self.turns = self.connections = 0
        self.closed = threading.Event()
        self.socks: set[socket.socket] = set()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(128)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def snapshot(self) -> tuple[int, int, int, int]:
        with self.lock:
            return self.down, self.up, self.turns, self.connections

    def _accept_loop(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        time.sleep(self.rtt)
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = {"waiting": False}
        with self.lock:
            self.connections += 1
            self.socks.update((client, upstream))
        threading.Thread(target=self._pump, args=(client, upstream, "up", state), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, "down", state), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str, state: dict) -> None:
        bucket = self.down_bucket if direction == "down" else self.up_bucket
        try:
            while True:
                data = src.recv(64 * 1024)
                if not data:
                    break
                if direction == "up":
                    state["waiting"] = True
                elif state["waiting"]:
                    state["waiting"] = False
                    with self.lock:
                        self.turns += 1
                    time.sleep(self.rtt)
                bucket.take(len(data))
                with self.lock:
                    if direction == "down":
                        self.down += len(data)
                    else:
                        self.up += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()


# ---------------------------------------------------------------------------------------
# the S3 server (moto, its own process so it does not share our GIL)
# ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Moto:
    def __init__(self) -> None:
        self.port = free_port()
        env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from moto.server import main; main()", "-H", HOST,
             "-p", str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.endpoint = f"http://{HOST}:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def boto_client(endpoint: str):
    import boto3
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY_ID,
                        aws_secret_access_key=SECRET, region_name=REGION)


def vl_creds(endpoint: str) -> dict:
    return {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET,
            "endpoint_url": endpoint, "aws_region": REGION}


# ---------------------------------------------------------------------------------------
# the video and the oracle
# ---------------------------------------------------------------------------------------
def make_video() -> Path:
    V.VIDEO_CACHE.mkdir(parents=True, exist_ok=True)
    path = V.VIDEO_CACHE / f"remote_h264_1080p_gop250_{N_FRAMES}.mp4"
    if path.exists():
        return path
    args, _ = V._encode_args("h264", 1080, 250)
    src = f"testsrc2=size=1920x1080:rate={V.FPS},noise=alls=6:allf=t,format=yuv420p"
    tmp = path.with_suffix(".tmp.mp4")
    log(f"encoding {path.name} (1080p, GOP 250, {N_FRAMES} frames, moov at the end) ...")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src,
                    "-frames:v", str(N_FRAMES), *args, "-pix_fmt", "yuv420p", str(tmp)], check=True)
    os.replace(tmp, path)
    return path


def moov_at_end(path: Path) -> bool:
    with open(path, "rb") as f:
        order = []
        while True:
            h = f.read(8)
            if len(h) < 8:
                break
            size, kind = int.from_bytes(h[:4], "big"), h[4:8].decode("latin-1")
            if size == 1:
                size = int.from_bytes(f.read(8), "big")
                f.seek(size - 16, 1)
            else:
                f.seek(size - 8, 1)
            order.append(kind)
    return "moov" in order and "mdat" in order and order.index("moov") > order.index("mdat")


def oracle_frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    import av
    out = {}
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for i, fr in enumerate(c.decode(s)):
            if i in wanted:
                out[i] = fr.to_ndarray(format="rgb24")
            if i >= max(wanted):
                break
    return out


def check(got: np.ndarray, indices: list[int], oracle: dict[int, np.ndarray]) -> tuple[int, int]:
    """(wrong, exact) of ``got`` (N, H, W, 3) against the oracle frames."""
    got = np.asarray(got)
    if got.ndim == 3:
        got = got[None]
    wrong = exact = 0
    for j, i in enumerate(indices):
        if j >= len(got) or got[j].shape != oracle[i].shape:
            wrong += 1
            continue
        if np.array_equal(got[j], oracle[i]):
            exact += 1
            continue
        mad = float(np.abs(got[j].astype(np.int16) - oracle[i].astype(np.int16)).mean())
        wrong += mad > WRONG_MAD
    wrong += max(0, len(got) - len(indices))
    return wrong, exact


# ---------------------------------------------------------------------------------------
# the libraries: prepare (untimed) / open / frame / frames / clip / close
# ---------------------------------------------------------------------------------------
class Lib:
    key = "base"
    label = "base"

    def __init__(self, ctx: dict) -> None:
        self.ctx = ctx

    def version(self) -> str:
        return "?"

    def prepare(self) -> None:
        """Untimed: ingest / link (its bytes are reported separately)."""

    def open(self) -> None:
        raise NotImplementedError

    def frame(self, i: int) -> np.ndarray:
        return self.frames([i])

    def frames(self, idx: list[int]) -> np.ndarray:
        raise NotImplementedError

    def clip(self, a: int, b: int) -> np.ndarray:
        return self.frames(list(range(a, b)))

    def close(self) -> None:
        pass


class VidlakeDataset(Lib):
    key = "vidlake_dataset"
    label = "vidlake dataset on S3"

    def version(self):
        import vidlake
        return vidlake.__version__

    def prepare(self):
        import vidlake
        self.url = f"s3://{self.ctx['bucket']}/vl_ds"
        ds = vidlake.empty(self.url, overwrite=True, creds=self.ctx["creds"])
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        with ds:
            ds.videos.append(vidlake.read(str(self.ctx["video"])))

    def open(self):
        import vidlake
        self.ds = vidlake.load(self.url, read_only=True, creds=self.ctx["creds"])
        self.t = self.ds.videos

    def frame(self, i):
        return self.t[0, int(i)].numpy()

    def frames(self, idx):
        return self.t[0, [int(i) for i in idx]].numpy()

    def clip(self, a, b):
        return self.t[0, a:b].numpy()

    def close(self):
        self.ds = self.t = None


class VidlakeLink(VidlakeDataset):
    key = "vidlake_link"
    label = "vidlake link[video] (dataset on S3)"

    def prepare(self):
        import vidlake
        self.url = f"s3://{self.ctx['bucket']}/vl_link"
        ds = vidlake.empty(self.url, overwrite=True, creds=self.ctx["creds"])
        ds.create_tensor("videos", htype="link[video]")
        ds.add_creds_key("bench")
        ds.populate_creds("bench", self.ctx["creds"])
        with ds:
            ds.videos.append(vidlake.link(self.ctx["s3_url"], creds_key="bench"))

    def open(self):
        import vidlake
        self.ds = vidlake.load(self.url, read_only=True, creds=self.ctx["creds"])
        self.ds.populate_creds("bench", self.ctx["creds"])
        self.t = self.ds.videos


class VidlakeRemote(Lib):
    key = "vidlake_remote"
    label = "vidlake open_remote_video"

    def version(self):
        import vidlake
        return vidlake.__version__

    def open(self):
        import vidlake
        self.r = vidlake.open_remote_video(self.ctx["s3_url"], creds=self.ctx["creds"], cache=False)

    def frame(self, i):
        return self.r[int(i)]

    def frames(self, idx):
        return self.r[[int(i) for i in idx]]

    def clip(self, a, b):
        return self.r[a:b]

    def close(self):
        self.r = None


class VidlakeRemoteCache(VidlakeRemote):
    """``open_remote_video`` with an on-disk ``RangeCache`` that outlives each reader, as it
    outlives a process or an epoch: every open builds the index again, from cached ranges
    after the first one, and a frame whose packets an earlier read fetched moves no bytes."""
    key = "vidlake_remote_cache"
    label = "vidlake open_remote_video, range cache kept across opens"

    def prepare(self):
        import tempfile

        from vidlake.storage import RangeCache
        self._dir = tempfile.TemporaryDirectory(prefix="vl-bench-cache-")
        self.cache = RangeCache(self._dir.name, max_bytes=4 << 30)
        self.open()  # untimed: the first open fills the cache with the index's ranges
        self.close()

    def open(self):
        import vidlake
        self.r = vidlake.open_remote_video(self.ctx["s3_url"], creds=self.ctx["creds"], cache=self.cache)


class DeepLake3(Lib):
    key = "deeplake3"
    label = "Deep Lake 3.x (dataset on S3)"

    def version(self):
        import deeplake
        return deeplake.__version__

    def _creds(self):
        return {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET,
                "endpoint_url": self.ctx["endpoint"], "aws_region": REGION}

    def prepare(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import deeplake
            self.url = f"s3://{self.ctx['bucket']}/dl_ds"
            ds = deeplake.empty(self.url, overwrite=True, creds=self._creds(), verbose=False)
            ds.create_tensor("videos", htype="video", sample_compression="mp4")
            ds.videos.append(deeplake.read(str(self.ctx["video"])))
            ds.flush()

    def open(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import deeplake
            self.ds = deeplake.load(self.url, read_only=True, creds=self._creds(), verbose=False)
        self.v = self.ds.videos[0]

    def frame(self, i):
        return np.ascontiguousarray(self.v[int(i)].numpy())

    def frames(self, idx):
        # Deep Lake 3.x takes an int or a slice as the frame index, not a list.
        return np.stack([self.v[int(i)].numpy() for i in idx])

    def clip(self, a, b):
        return np.ascontiguousarray(self.v[a:b].numpy())

    def close(self):
        self.ds = self.v = None


class _S3FileLib(Lib):
    """A fresh s3fs filesystem (no instance cache) and file object per open."""

    block_size: int | None = None  # None: s3fs's default (50 MiB, readahead cache)

    def _file(self):
        import s3fs
        fs = s3fs.S3FileSystem(key=KEY_ID, secret=SECRET, skip_instance_cache=True,
                               use_listings_cache=False,
                               client_kwargs={"endpoint_url": self.ctx["endpoint"],
                                              "region_name": REGION})
        kw = {} if self.block_size is None else {"block_size": self.block_size}
        return fs.open(self.ctx["s3_key"], "rb", **kw)

    def s3fs_version(self):
        import s3fs
        return s3fs.__version__

    def close(self):
        f = getattr(self, "f", None)
        if f is not None:
            with contextlib.suppress(Exception):
                f.close()
        self.f = None


class TorchCodecS3fs(_S3FileLib):
    key = "torchcodec"
    label = "torchcodec (approximate) over s3fs"

    def version(self):
        import torchcodec
        return f"{torchcodec.__version__} (s3fs {self.s3fs_version()})"

    def open(self):
        from torchcodec.decoders import VideoDecoder
        self.f = self._file()
        self.d = VideoDecoder(self.f, seek_mode="approximate", dimension_order="NHWC",
                              num_ffmpeg_threads=2)

    def frame(self, i):
        return self.d.get_frame_at(int(i)).data.numpy()

    def frames(self, idx):
        return self.d.get_frames_at([int(i) for i in idx]).data.numpy()

    def clip(self, a, b):
        return self.d.get_frames_in_range(a, b).data.numpy()

    def close(self):
        self.d = None
        super().close()


class PyAVS3fs(_S3FileLib):
    """PyAV over the file object: frame i is at pts i / fps (a constant-rate file, as this one
    is); seek back to the keyframe before it and decode up to it. Sorted requests in the same
    GOP keep decoding forward."""
    key = "pyav"
    label = "PyAV over s3fs"

    def version(self):
        import av
        return f"{av.__version__} (s3fs {self.s3fs_version()})"

    def open(self):
        import av
        self.f = self._file()
        self.c = av.open(self.f)
        self.s = self.c.streams.video[0]
        self.s.thread_type = "AUTO"
        self.s.codec_context.thread_count = 2
        rate = self.s.average_rate
        tb = self.s.time_base
        start = self.s.start_time or 0
        self.pts_of = lambda i: start + round(i / rate / tb)
        self.gen = None
        self.last_pts = None

    def _get(self, i):
        target = self.pts_of(i)
        if self.gen is None or self.last_pts is None or target <= self.last_pts \
                or target - self.last_pts > self.pts_of(250) - self.pts_of(0):
            self.c.seek(target, stream=self.s, backward=True, any_frame=False)
            self.gen = self.c.decode(self.s)
        for fr in self.gen:
            if fr.pts is None:
                continue
            self.last_pts = fr.pts
            if fr.pts >= target:
                return fr.to_ndarray(format="rgb24")
        self.gen = None
        raise IndexError(f"frame {i} not found")

    def frames(self, idx):
        got = {i: self._get(i) for i in sorted(set(idx))}
        return np.stack([got[i] for i in idx])

    def close(self):
        if getattr(self, "c", None) is not None:
            self.c.close()
        self.c = self.gen = None
        super().close()


class TorchCodecS3fs1M(TorchCodecS3fs):
    key = "torchcodec_1m"
    label = "torchcodec (approximate) over s3fs, 1 MiB blocks"
    block_size = 1 << 20


class PyAVS3fs1M(PyAVS3fs):
    key = "pyav_1m"
    label = "PyAV over s3fs, 1 MiB blocks"
    block_size = 1 << 20


LIBS = [VidlakeDataset, VidlakeLink, VidlakeRemote, VidlakeRemoteCache, DeepLake3, TorchCodecS3fs,
        TorchCodecS3fs1M, PyAVS3fs, PyAVS3fs1M]


# ---------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------
def measure(proxy: ShapedProxy, fn) -> tuple[float, int, int, int, object]:
    d0, _u0, t0, c0 = proxy.snapshot()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    time.sleep(0.01)  # let the pumps account the last bytes
    d1, _u1, t1, c1 = proxy.snapshot()
    return dt, d1 - d0, t1 - t0, c1 - c0, out


WORKLOADS = ("cold", "warm", "clip", "batch")


def run_all(classes, ctx: dict, proxy: ShapedProxy, plan: dict, oracle: dict, repeats: int,
            heavy_repeats: int) -> dict:
    """Prepare every library, then run the workloads round by round: repeat r of a workload
    runs for every library before repeat r + 1, so a change of the machine's load spreads
    over all of them instead of landing on one."""
    libs, results = [], {}
    for cls in classes:
        lib = cls(ctx)
        res = results[lib.key] = {"label": lib.label, "rows": {}}
        log(f"prepare {lib.label}")
        try:
            res["version"] = lib.version()
            dt, down, turns, _, _ = measure(proxy, lib.prepare)
            res["prepare"] = {"s": dt, "down": down, "turns": turns}
            libs.append(lib)
        except Exception as e:
            res["error"] = f"{type(e).__name__}: {str(e)[:400]}"
            log(f"{lib.key}: unusable: {res['error']}")
            traceback.print_exc(limit=3)

    def cold(lib, i):
        def go():
            lib.close()
            lib.open()
            return lib.frame(i)
        return go

    a, b = plan["clip"]
    calls = {
        "cold": lambda lib, r: (cold(lib, plan["cold"][r]), [plan["cold"][r]]),
        "warm": lambda lib, r: (lambda: lib.frame(plan["warm"][r]), [plan["warm"][r]]),
        "clip": lambda lib, r: (lambda: lib.clip(a, b), list(range(a, b))),
        "batch": lambda lib, r: (lambda: lib.frames(plan["batch"][r]), plan["batch"][r]),
    }
    samples: dict = {(lib.key, w): [] for lib in libs for w in WORKLOADS}
    failed: dict = {}
    for w in WORKLOADS:
        if w == "warm":  # open every reader and read once: that first read is not "warm"
            for lib in libs:
                try:
                    lib.close()
                    lib.open()
                    lib.frame(plan["first"])
                except Exception as e:
                    failed[(lib.key, w)] = f"open: {type(e).__name__}: {str(e)[:300]}"
        n = repeats if w in ("cold", "warm") else heavy_repeats
        for r in range(n):
            for lib in libs:
                if (lib.key, w) in failed:
                    continue
                fn, idx = calls[w](lib, r)
                try:
                    dt, down, turns, conns, out = measure(proxy, fn)
                except Exception as e:
                    failed[(lib.key, w)] = f"{type(e).__name__}: {str(e)[:300]}"
                    log(f"{lib.key} {w}: {failed[(lib.key, w)]}")
                    continue
                wrong, exact = check(out, idx, oracle)
                del out
                samples[(lib.key, w)].append({"s": dt, "down": down, "turns": turns,
                                              "connections": conns, "wrong": wrong,
                                              "exact": exact, "total": len(idx)})
                log(f"{lib.key:16s} {w:5s} #{r} {dt * 1e3:8.0f} ms {down / 1e6:8.2f} MB "
                    f"{turns:4d} turns  wrong {wrong}/{len(idx)}")
    for lib in libs:
        lib.close()
        for w in WORKLOADS:
            sm = samples[(lib.key, w)]
            if (lib.key, w) in failed:
                results[lib.key]["rows"][w] = {"error": failed[(lib.key, w)]}
            elif sm:
                results[lib.key]["rows"][w] = {
                    "s": statistics.median(x["s"] for x in sm),
                    "down": int(statistics.median(x["down"] for x in sm)),
                    "turns": int(statistics.median(x["turns"] for x in sm)),
                    "wrong": sum(x["wrong"] for x in sm), "exact": sum(x["exact"] for x in sm),
                    "total": sum(x["total"] for x in sm), "samples": sm}
    return results


def markdown(result: dict) -> str:
    names = {"cold": "cold: open + 1 random frame", "warm": "warm random frame",
             "clip": "clip 100:200", "batch": "loader batch: 16 random frames, one call"}
    libs = result["libs"]
    out = []
    for w, title in names.items():
        out.append(f"**{title}**\n")
        out.append("| library | time: median (min-max) | bytes from S3: median, high (min-max) | request turns | wrong frames |")
        out.append("|---|---|---|---|---|")
        for r in libs.values():  # the higher middle sample: with 2 repeats, the larger
            c = r.get("rows", {}).get(w, {})
            if "samples" in c:
                c["down"] = statistics.median_high(x["down"] for x in c["samples"])
                c["turns"] = statistics.median_high(x["turns"] for x in c["samples"])
        cells = [(k, r["rows"][w]) for k, r in libs.items() if "s" in r.get("rows", {}).get(w, {})]
        best_t = min((c["s"] for _, c in cells), default=None)
        best_b = min((c["down"] for _, c in cells), default=None)
        for r in libs.values():
            c = r.get("rows", {}).get(w)
            cold = r.get("rows", {}).get("cold", {})
            whole = w != "cold" and cold.get("samples") and \
                min(x["down"] for x in cold["samples"]) >= result["video"]["bytes"]
            if c is None or "s" not in c:
                why = (c or {}).get("error") or r.get("error") or "not run"
                out.append(f"| {r['label']} | n/a | n/a | n/a | {why[:160]} |")
                continue
            ts = f"{c['s'] * 1e3:,.0f} ms"
            lo, hi = min(x["s"] for x in c["samples"]), max(x["s"] for x in c["samples"])
            rng = f" ({lo * 1e3:,.0f}-{hi * 1e3:,.0f})" if len(c["samples"]) > 1 else ""
            bs = f"{c['down'] / 1e6:,.2f} MB"
            if whole:
                bs += " (the whole file, fetched at open, is held in memory)"
            blo, bhi = min(x["down"] for x in c["samples"]), max(x["down"] for x in c["samples"])
            brng = f" ({blo / 1e6:,.2f}-{bhi / 1e6:,.2f})" if len(c["samples"]) > 1 and blo != bhi else ""
            if c["s"] == best_t:
                ts = f"**{ts}**"
            if c["down"] == best_b:
                bs = f"**{bs}**"
            out.append(f"| {r['label']} | {ts}{rng} | {bs}{brng} | {c['turns']} | {c['wrong']} of {c['total']} |")
        out.append("")
    return "\n".join(out)


BEGIN, END = "<!-- bench/remote.py: begin -->", "<!-- bench/remote.py: end -->"


def section(result: dict) -> str:
    """The generated part of RESULTS.md's remote section: run, settings, versions, tables."""
    m, v, px = result["machine"], result["video"], result["proxy"]
    la0, la1 = m["loadavg_start"][0], m["loadavg_end"][0]
    vers = "; ".join(f"{r['label']} {r.get('version', '?')}" for r in result["libs"].values())
    plan = result["plan"]
    lines = [
        BEGIN,
        f"- Command: `.venv-bench/bin/python {result['command'].strip()}` "
        f"({result['time']}, {result['seconds']:.0f} s; raw numbers `bench/results/remote.json`).",
        f"- Machine: {m['nproc']} cores, {m['platform']}, Python {m['python']}, PyAV {m['pyav']} "
        f"(libavcodec {m['libavcodec']}); load average {la0:.1f} at start, {la1:.1f} at end "
        "(other jobs shared the machine: times are noisy, bytes are not).",
        f"- Versions: {vers}.",
        f"- Link (`ShapedProxy`, 127.0.0.1, in front of moto's S3 server in its own process): "
        f"{px['rtt_ms']:g} ms per request/response turn and per new connection, "
        f"{px['mb_per_s']:g} MB/s each way shared by all connections; bytes counted at the proxy "
        "(server to client, HTTP headers included).",
        f"- Video: `{v['name']}`, 1920x1080 H.264, GOP 250, B-frames, {v['frames']} frames, "
        f"{v['bytes'] / 1e6:.1f} MB, moov at the end: {v['moov_at_end']} (`bench/videos.py` settings).",
        f"- Requests (seed 19): cold frames {plan['cold']}, warm frames {plan['warm']} (after one "
        f"untimed read of frame {plan['first']}), clip 100:200, batch: one call for 16 random "
        "frames of the video (sorted, different each repeat). Medians over the repeats; repeat r "
        "of a workload runs for every library before repeat r + 1.",
        "",
        markdown(result),
        END,
    ]
    return "\n".join(lines)


def write_results(result: dict, path: Path) -> None:
    """Replace the generated block in RESULTS.md (or append the section)."""
    text = path.read_text() if path.exists() else ""
    block = section(result)
    if BEGIN in text and END in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n## Remote reads against the peers (issue 19; `bench/remote.py`)\n\n" \
            + block + "\n"
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rtt-ms", type=float, default=20.0)
    ap.add_argument("--mbps", type=float, default=50.0, help="bandwidth cap, MB/s each way")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of cold and warm")
    ap.add_argument("--heavy-repeats", type=int, default=2, help="repeats of clip and batch")
    ap.add_argument("--libs", default=",".join(c.key for c in LIBS))
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--out", default=str(HERE / "results" / "remote.json"))
    ap.add_argument("--write-results", action="store_true",
                    help="put the tables into bench/RESULTS.md (its remote section)")
    ap.add_argument("--from-json", help="no run: render this remote.json (with --write-results)")
    a = ap.parse_args()
    if a.from_json:
        result = json.loads(Path(a.from_json).read_text())
        if a.write_results:
            write_results(result, HERE / "RESULTS.md")
        print(section(result))
        return 0
    t_start = time.time()
    load0 = os.getloadavg()
    video = make_video()
    size = video.stat().st_size
    n = V.count_packets(str(video))
    log(f"video {video.name}: {size / 1e6:.1f} MB, {n} frames, moov at the end: {moov_at_end(video)}")

    rnd = random.Random(a.seed)
    reps = max(a.repeats, a.heavy_repeats)
    plan = {"cold": [rnd.randrange(n) for _ in range(reps)], "first": rnd.randrange(n),
            "warm": [rnd.randrange(n) for _ in range(reps)], "clip": (100, 200),
            "batch": [sorted(rnd.sample(range(n), 16)) for _ in range(reps)]}
    wanted = set(plan["cold"]) | set(plan["warm"]) | set(range(100, 200)) | {plan["first"]}
    for b in plan["batch"]:
        wanted |= set(b)
    t = time.perf_counter()
    oracle = oracle_frames(video, wanted)
    log(f"oracle: {len(oracle)} frames decoded locally in {time.perf_counter() - t:.1f} s")

    moto = Moto()
    proxy = None
    try:
        bucket = "bench-" + uuid.uuid4().hex[:8]
        s3 = boto_client(moto.endpoint)
        s3.create_bucket(Bucket=bucket)
        s3.upload_file(str(video), bucket, "videos/" + video.name)
        proxy = ShapedProxy(HOST, moto.port, a.rtt_ms / 1e3, a.mbps * 1e6)
        ctx = {"video": video, "bucket": bucket, "endpoint": proxy.url, "creds": vl_creds(proxy.url),
               "s3_url": f"s3://{bucket}/videos/{video.name}", "s3_key": f"{bucket}/videos/{video.name}"}
        wanted_libs = a.libs.split(",")
        results = run_all([c for c in LIBS if c.key in wanted_libs], ctx, proxy, plan, oracle,
                          a.repeats, a.heavy_repeats)
    finally:
        if proxy is not None:
            proxy.close()
        moto.stop()
    import av
    machine = {"nproc": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version(), "pyav": av.__version__,
               "libavcodec": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
               "loadavg_start": load0, "loadavg_end": os.getloadavg()}
    result = {"command": "bench/remote.py " + " ".join(sys.argv[1:]),
              "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t_start)),
              "seconds": time.time() - t_start,
              "video": {"name": video.name, "bytes": size, "frames": n, "moov_at_end": moov_at_end(video)},
              "proxy": {"rtt_ms": a.rtt_ms, "mb_per_s": a.mbps}, "plan": plan,
              "machine": machine, "libs": results}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1, default=str))
    if a.write_results:
        write_results(result, HERE / "RESULTS.md")
    print()
    print(section(result))
    log(f"done in {result['seconds']:.0f} s; raw numbers in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
