"""One adapter per library, all with the same methods.

Every method returns a C-contiguous uint8 RGB array of shape (N, H, W, 3) (``frame_at``
returns N = 1), so compare.py can time them the same way and check every frame against
the oracle (a sequential PyAV decode). The limit adapter returns ``None`` and reports the
seconds libavcodec spent in ``reported_seconds`` instead.

    adapter = ADAPTERS["pyav"](threads=2)
    adapter.open("video.mp4")
    frames = adapter.frames_at([3, 100, 7])   # (3, H, W, 3) uint8
    adapter.close()

An adapter whose library is missing says why in ``unavailable()``; a method a library
cannot do raises ``NotSupported`` with the reason (shown as n/a in the results).
"""
# ruff: noqa: BLE001  (an adapter reports why a library is unusable instead of raising)
from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
import zlib
from pathlib import Path

import numpy as np

os.environ.setdefault("BUGGER_OFF", "true")  # Deep Lake 3.x: no usage reporting

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
PEERS_JSON = CACHE / "peers.json"


class NotSupported(Exception):
    """The library has no way to do this request."""


def _peer_reason(key: str) -> str | None:
    """Why setup_bench.sh could not install a peer (from bench/.cache/peers.json)."""
    try:
        p = json.loads(PEERS_JSON.read_text())["peers"].get(key)
    except Exception:
        return None
    if p and not p.get("ok"):
        return p.get("reason")
    return None


def _stack(frames: list) -> np.ndarray:
    if not frames:
        return np.empty((0, 0, 0, 3), np.uint8)
    return np.ascontiguousarray(np.stack(frames))


def _compression_for(path: str) -> str:
    ext = Path(path).suffix.lower().lstrip(".")
    return {"mpg": "mpeg", "m4v": "m4v"}.get(ext, ext)


def best_video_stream(container):
    """``streams.best("video")`` where PyAV has it (>= 13), else the first video stream."""
    best = getattr(container.streams, "best", None)
    return (best("video") if best else None) or container.streams.video[0]


class Adapter:
    key = "base"
    label = "base"
    threads_aware = True  # does the library take a decoder thread count?

    def __init__(self, threads: int = 1):
        self.threads = threads
        self.path: str | None = None
        self.reported_seconds: float | None = None

    # ---- availability ----
    @classmethod
    def unavailable(cls) -> str | None:
        """None when usable, else the reason it is not."""
        return None

    @classmethod
    def version(cls) -> str:
        return "?"

    def prepare(self, path: str) -> None:
        """Untimed one-off work before ``open`` (e.g. ingesting into a dataset)."""

    # ---- the common interface ----
    def open(self, path: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        raise NotImplementedError

    def frame_at(self, i: int) -> np.ndarray:
        return self.frames_at([i])

    def frames_at(self, indices) -> np.ndarray:
        raise NotImplementedError

    def range(self, start: int, stop: int, step: int = 1) -> np.ndarray:
        return self.frames_at(list(range(start, stop, step)))

    def first_n(self, n: int) -> np.ndarray:
        return self.range(0, n, 1)

    def all_frames(self) -> np.ndarray:
        return self.range(0, len(self), 1)

    def resized(self, indices, h: int, w: int) -> np.ndarray:
        raise NotSupported("no resize in the decoder")

    def stream(self, n: int, batch: int, keep) -> np.ndarray:
        """Decode all ``n`` frames in order, ``batch`` at a time, holding one batch at a time
        (as a feature extractor or ``ffmpeg -f rawvideo`` does); returns copies of the frames
        in ``keep`` so they can be checked."""
        kept = {}
        want = set(keep)
        for a in range(0, n, batch):
            frames = self.range(a, min(n, a + batch), 1)
            for i in range(a, min(n, a + batch)):
                if i in want:
                    kept[i] = frames[i - a].copy()
            del frames
        return _stack([kept[i] for i in keep])

    def _stream_through(self, shape, n: int, batch: int, keep, fill) -> np.ndarray:
        """``stream`` through one reused buffer: ``fill(start, stop, rows)`` decodes frames
        ``[start, stop)`` into ``rows``."""
        buf = np.empty((batch, *tuple(shape)), np.uint8)
        kept = {}
        want = set(keep)
        for a in range(0, n, batch):
            b = min(n, a + batch)
            fill(a, b, buf[:b - a])
            for i in range(a, b):
                if i in want:
                    kept[i] = buf[i - a].copy()
        return _stack([kept[i] for i in keep])


# ----------------------------------------------------------------------------------------
class VidlakeReader(Adapter):
    key = "vidlake"
    label = "vidlake (reader)"

    @classmethod
    def unavailable(cls):
        try:
            import vidlake
            import vidlake._core  # noqa: F401
            from vidlake import VideoReader  # noqa: F401
        except Exception as e:  # the core may not be built yet
            return f"vidlake not importable: {type(e).__name__}: {e}"
        return None

    @classmethod
    def version(cls):
        import vidlake
        return vidlake.__version__

    def open(self, path):
        import vidlake
        self.path = path
        self.r = vidlake.VideoReader(path, threads=self.threads)

    def close(self):
        self.r = None

    def __len__(self):
        return len(self.r)

    def frames_at(self, indices):
        return self.r.get_frames(list(indices))

    def range(self, start, stop, step=1):
        return self.r[start:stop:step]

    def all_frames(self):
        return self.r[:]

    def resized(self, indices, h, w):
        return self.r.get_frames(list(indices), size=(h, w))

    def stream(self, n, batch, keep):
        return self._stream_through(self.r.shape[1:], n, batch, keep,
                                    lambda a, b, rows: self.r.get_frames(np.arange(a, b), out=rows))


class VidlakeDataset(Adapter):
    key = "vidlake_ds"
    label = "vidlake (dataset)"

    @classmethod
    def unavailable(cls):
        try:
            import vidlake
            for name in ("empty", "load", "read"):
                if not hasattr(vidlake, name):
                    return f"vidlake.{name} does not exist yet (dataset layer not merged)"
            import vidlake._core
        except Exception as e:
            return f"vidlake not importable: {type(e).__name__}: {e}"
        return None

    @classmethod
    def version(cls):
        import vidlake
        return vidlake.__version__

    @staticmethod
    def ds_dir(path: str) -> Path:
        return CACHE / "vidlake_ds" / (Path(path).name.replace(".", "_") + f"_{os.path.getsize(path)}")

    def prepare(self, path):
        import vidlake
        d = self.ds_dir(path)
        if (d / ".bench_done").exists():
            return
        shutil.rmtree(d, ignore_errors=True)
        d.parent.mkdir(parents=True, exist_ok=True)
        ds = vidlake.empty(str(d), overwrite=True)
        ds.create_tensor("videos", htype="video", sample_compression=_compression_for(path))
        ds.videos.append(vidlake.read(path))
        if hasattr(ds, "flush"):
            ds.flush()
        (d / ".bench_done").write_text("ok\n")

    def open(self, path):
        import vidlake
        self.path = path
        self.ds = vidlake.load(str(self.ds_dir(path)), read_only=True)
        self.t = self.ds.videos

    def close(self):
        self.ds = self.t = None

    def __len__(self):
        return int(self.t[0].shape[0])

    def frames_at(self, indices):
        return np.ascontiguousarray(self.t[0, list(indices)].numpy())

    def frame_at(self, i):
        return np.ascontiguousarray(self.t[0, i].numpy())[None]

    def range(self, start, stop, step=1):
        return np.ascontiguousarray(self.t[0, start:stop:step].numpy())

    def all_frames(self):
        return np.ascontiguousarray(self.t[0].numpy())

    def stream(self, n, batch, keep):
        return self._stream_through(self.t[0].shape[1:], n, batch, keep,
                                    lambda a, b, rows: self.t[0, a:b].numpy(out=rows))

    # many videos in one dataset (bench/many.py): sample j = files[j]
    @staticmethod
    def many_dir(paths) -> Path:
        return CACHE / "vidlake_ds_many" / f"{len(paths)}_{zlib.crc32(' '.join(paths).encode()):08x}"

    def prepare_many(self, paths):
        import vidlake
        d = self.many_dir(paths)
        if (d / ".bench_done").exists():
            return
        shutil.rmtree(d, ignore_errors=True)
        d.parent.mkdir(parents=True, exist_ok=True)
        ds = vidlake.empty(str(d), overwrite=True)
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        with ds:
            ds.videos.extend([vidlake.read(p) for p in paths])
        (d / ".bench_done").write_text("ok\n")

    def open_many(self, paths):
        import vidlake
        self.ds = vidlake.load(str(self.many_dir(paths)), read_only=True)
        self.t = self.ds.videos

    def frame_of(self, j, i):
        return np.ascontiguousarray(self.t[int(j), int(i)].numpy())


# ----------------------------------------------------------------------------------------
class PyAV(Adapter):
    """Idiomatic PyAV: a first demux pass maps frame index -> pts and finds the keyframes;
    a request seeks to the keyframe at or before the target (``container.seek(pts,
    stream=s, backward=True)``) and decodes until the target's pts. Sorted requests that
    lie ahead in the same GOP keep decoding forward instead of seeking again."""
    key = "pyav"
    label = "PyAV (seek+decode)"

    @classmethod
    def unavailable(cls):
        try:
            import av  # noqa: F401
        except Exception as e:
            return f"PyAV not importable: {e}"
        return None

    @classmethod
    def version(cls):
        import av
        return av.__version__

    def _configure(self, stream):
        cc = stream.codec_context
        if self.threads > 1:
            cc.thread_type = "AUTO"
            cc.thread_count = self.threads
        else:
            cc.thread_count = 1

    def open(self, path):
        import av
        self.path = path
        self.c = av.open(path)
        s = best_video_stream(self.c)
        self.s = s
        pts, keys = [], []
        for pkt in self.c.demux(s):
            if pkt.size == 0:
                continue
            t = pkt.pts if pkt.pts is not None else pkt.dts
            if t is None:
                continue
            pts.append(t)
            if pkt.is_keyframe:
                keys.append(t)
        self.pts = sorted(pts)
        self.idx_of = {p: i for i, p in enumerate(self.pts)}
        self.key_pts = sorted(keys) or self.pts[:1]
        # key_before[i]: pts of the last keyframe at or before frame i (presentation order)
        import bisect
        self._bisect = bisect
        self._configure(s)
        self._gen = None
        self._last = None
        self.c.seek(self.key_pts[0], stream=s, backward=True)
        self._gen = self.c.decode(s)
        self._last = -1

    def close(self):
        if getattr(self, "c", None) is not None:
            self.c.close()
        self.c = None

    def __len__(self):
        return len(self.pts)

    def _key_at_or_before(self, target_pts):
        j = self._bisect.bisect_right(self.key_pts, target_pts) - 1
        return self.key_pts[max(j, 0)]

    def _seek(self, target_pts):
        kp = self._key_at_or_before(target_pts)
        self.c.seek(kp, stream=self.s, backward=True)
        self._gen = self.c.decode(self.s)
        self._last = None

    def _get(self, t: int, fmt_kwargs) -> np.ndarray:
        target = self.pts[t]
        kp = self._key_at_or_before(target)
        k_idx = self.idx_of.get(kp, 0)
        if self._gen is None or self._last is None or not (self._last < t and k_idx <= self._last):
            self._seek(target)
        for frame in self._gen:
            fp = frame.pts
            if fp is None or fp >= target:
                self._last = t
                return frame.to_ndarray(**fmt_kwargs)
            self._last = self.idx_of.get(fp, self._last)
        self._gen = None
        raise IndexError(f"frame {t} not found in {self.path}")

    def _many(self, indices, fmt_kwargs):
        want = sorted({int(i) for i in indices})
        got = {t: self._get(t, fmt_kwargs) for t in want}
        return _stack([got[int(i)] for i in indices])

    def frames_at(self, indices):
        return self._many(indices, {"format": "rgb24"})

    def resized(self, indices, h, w):
        return self._many(indices, {"format": "rgb24", "width": w, "height": h,
                                    "interpolation": "BILINEAR"})

    def _sequential(self, n=None):
        self.c.seek(self.key_pts[0], stream=self.s, backward=True)
        gen = self.c.decode(self.s)
        out = []
        for frame in gen:
            out.append(frame.to_ndarray(format="rgb24"))
            if n is not None and len(out) >= n:
                break
        self._gen, self._last = None, None
        return _stack(out)

    def first_n(self, n):
        return self._sequential(n)

    def stream(self, n, batch, keep):
        self.c.seek(self.key_pts[0], stream=self.s, backward=True)
        kept, want = {}, set(keep)
        for i, frame in enumerate(self.c.decode(self.s)):
            if i >= n:
                break
            a = frame.to_ndarray(format="rgb24")
            if i in want:
                kept[i] = a
        self._gen, self._last = None, None
        return _stack([kept[i] for i in keep if i in kept])

    def all_frames(self):
        return self._sequential()


# ----------------------------------------------------------------------------------------
class Decord(Adapter):
    key = "decord"
    label = "decord"

    @classmethod
    def unavailable(cls):
        try:
            import decord  # noqa: F401
        except Exception as e:
            return _peer_reason("decord") or f"decord not importable: {e}"
        return None

    @classmethod
    def version(cls):
        import decord
        return decord.__version__

    def open(self, path):
        from decord import VideoReader, cpu
        self.path = path
        self.vr = VideoReader(path, ctx=cpu(0), num_threads=self.threads)
        self._rs = None

    def close(self):
        self.vr = self._rs = None

    def __len__(self):
        return len(self.vr)

    def frames_at(self, indices):
        return np.ascontiguousarray(self.vr.get_batch(list(indices)).asnumpy())

    def resized(self, indices, h, w):
        from decord import VideoReader, cpu
        if self._rs is None or self._rs[0] != (h, w):
            self._rs = ((h, w), VideoReader(self.path, ctx=cpu(0), width=w, height=h,
                                            num_threads=self.threads))
        return np.ascontiguousarray(self._rs[1].get_batch(list(indices)).asnumpy())


# ----------------------------------------------------------------------------------------
class OpenCV(Adapter):
    """OpenCV's FFmpeg backend: ``CAP_PROP_POS_FRAMES`` seek + ``read``, BGR -> RGB.
    Requests a short way ahead of the current position ``grab`` forward instead of seeking."""
    key = "opencv"
    label = "OpenCV"
    AHEAD = 64

    @classmethod
    def unavailable(cls):
        try:
            import cv2  # noqa: F401
        except Exception as e:
            return _peer_reason("opencv") or f"cv2 not importable: {e}"
        return None

    @classmethod
    def version(cls):
        import cv2
        return cv2.__version__

    def open(self, path):
        import cv2
        self.cv2 = cv2
        self.path = path
        params = [cv2.CAP_PROP_N_THREADS, self.threads] if hasattr(cv2, "CAP_PROP_N_THREADS") else []
        self.cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, params)
        if not self.cap.isOpened():
            raise RuntimeError(f"OpenCV cannot open {path}")
        self.n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.pos = 0

    def close(self):
        if getattr(self, "cap", None) is not None:
            self.cap.release()
        self.cap = None

    def __len__(self):
        return self.n

    def _read(self):
        ok, f = self.cap.read()
        if not ok:
            raise IndexError(f"OpenCV could not read frame {self.pos} of {self.path}")
        self.pos += 1
        return self.cv2.cvtColor(f, self.cv2.COLOR_BGR2RGB)

    def _goto(self, i):
        if self.pos <= i < self.pos + self.AHEAD:
            while self.pos < i:
                self.cap.grab()
                self.pos += 1
        else:
            self.cap.set(self.cv2.CAP_PROP_POS_FRAMES, i)
            self.pos = i

    def frames_at(self, indices):
        want = sorted({int(i) for i in indices})
        got = {}
        for t in want:
            self._goto(t)
            got[t] = self._read()
        return _stack([got[int(i)] for i in indices])

    def range(self, start, stop, step=1):
        stop = min(stop, self.n)
        out = []
        self._goto(start)
        for i in range(start, stop, step):
            self._goto(i)
            out.append(self._read())
        return _stack(out)

    def all_frames(self):
        self._goto(0)
        out = []
        while True:
            ok, f = self.cap.read()
            if not ok:
                break
            out.append(self.cv2.cvtColor(f, self.cv2.COLOR_BGR2RGB))
        self.pos = len(out)
        return _stack(out)

    def resized(self, indices, h, w):
        frames = self.frames_at(indices)
        return _stack([self.cv2.resize(f, (w, h), interpolation=self.cv2.INTER_AREA) for f in frames])


# ----------------------------------------------------------------------------------------
class DeepLake3(Adapter):
    """Deep Lake 3.x: the video is ingested once (untimed, cached) into a local dataset with
    ``htype="video"``; reads are ``ds.videos[0][...].numpy()``. Deep Lake 3.x accepts an int
    or a slice as the frame index, not a list, so a list of frames is one call per frame."""
    key = "deeplake3"
    label = "Deep Lake 3.x"
    threads_aware = False

    @classmethod
    def unavailable(cls):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import deeplake
            if not deeplake.__version__.startswith("3."):
                return f"deeplake {deeplake.__version__} is not 3.x"
        except Exception as e:
            return _peer_reason("deeplake3") or f"deeplake not importable: {e}"
        return None

    @classmethod
    def version(cls):
        import deeplake
        return deeplake.__version__

    @staticmethod
    def ds_dir(path: str) -> Path:
        return CACHE / "deeplake3" / (Path(path).name.replace(".", "_") + f"_{os.path.getsize(path)}")

    def prepare(self, path):
        import deeplake
        d = self.ds_dir(path)
        if (d / ".bench_done").exists():
            return
        shutil.rmtree(d, ignore_errors=True)
        d.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = deeplake.empty(str(d), overwrite=True, verbose=False)
            src, compr = path, _compression_for(path)
            if compr not in ("mp4", "mkv", "avi"):
                # Deep Lake 3.x takes only mp4/mkv/avi: remux (same packets, no re-encode).
                compr = "mkv" if compr == "webm" else "mp4"
                src = str(d.parent / (d.name + "." + compr))
                subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", path,
                                "-map", "0:v:0", "-c", "copy", src], check=True)
            ds.create_tensor("videos", htype="video", sample_compression=compr)
            try:
                ds.videos.append(deeplake.read(src))
            except Exception as e:
                raise NotSupported(f"Deep Lake 3.x cannot ingest {Path(path).name}: "
                                   f"{type(e).__name__}: {str(e)[:200]}") from e
            ds.flush()
        (d / ".bench_done").write_text("ok\n")

    def open(self, path):
        import deeplake
        self.path = path
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.ds = deeplake.load(str(self.ds_dir(path)), read_only=True, verbose=False)
        self.v = self.ds.videos[0]

    def close(self):
        self.ds = self.v = None

    def __len__(self):
        return int(self.v.shape[0])

    def frame_at(self, i):
        return np.ascontiguousarray(self.v[int(i)].numpy())[None]

    def frames_at(self, indices):
        return _stack([self.v[int(i)].numpy() for i in indices])

    def range(self, start, stop, step=1):
        return np.ascontiguousarray(self.v[start:stop:step].numpy())

    def all_frames(self):
        return np.ascontiguousarray(self.v.numpy())

    @staticmethod
    def many_dir(paths) -> Path:
        return CACHE / "deeplake3_many" / f"{len(paths)}_{zlib.crc32(' '.join(paths).encode()):08x}"

    def prepare_many(self, paths):
        import deeplake
        d = self.many_dir(paths)
        if (d / ".bench_done").exists():
            return
        shutil.rmtree(d, ignore_errors=True)
        d.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = deeplake.empty(str(d), overwrite=True, verbose=False)
            ds.create_tensor("videos", htype="video", sample_compression="mp4")
            with ds:
                ds.videos.extend([deeplake.read(p) for p in paths])
        (d / ".bench_done").write_text("ok\n")

    def open_many(self, paths):
        import deeplake
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.ds = deeplake.load(str(self.many_dir(paths)), read_only=True, verbose=False)

    def frame_of(self, j, i):
        return np.ascontiguousarray(self.ds.videos[int(j)][int(i)].numpy())


# ----------------------------------------------------------------------------------------
class TorchCodec(Adapter):
    """torchcodec's ``VideoDecoder(path, seek_mode=..., dimension_order="NHWC")``: frames come
    back as (N, H, W, 3) uint8 tensors, turned into numpy without a copy. Four variants: seek
    mode ``"exact"`` (a scan of every packet at creation builds the frame index) or
    ``"approximate"`` (frame positions from the header's fps and duration), each with the run's
    thread count (``num_ffmpeg_threads=threads``) or torchcodec's default (the argument left
    out: 1 thread). Resizing uses torchcodec's decoder transform ``Resize((h, w))``
    (bilinear, antialiased) on a second decoder."""
    key = "torchcodec"
    label = "torchcodec"
    seek_mode = "exact"
    default_threads = False  # True: leave num_ffmpeg_threads at torchcodec's default

    def __init__(self, threads: int = 1):
        super().__init__(threads)
        self._rs = None

    @classmethod
    def describe(cls, threads: int) -> str:
        t = "default: 1 thread" if cls.default_threads else f"{threads} thread{'s' if threads > 1 else ''}"
        return f"torchcodec ({cls.seek_mode}, {t})"

    @classmethod
    def unavailable(cls):
        try:
            from torchcodec.decoders import VideoDecoder  # noqa: F401
        except Exception as e:
            return _peer_reason("torchcodec") or f"torchcodec not importable: {type(e).__name__}: {e}"
        return None

    @classmethod
    def version(cls):
        import torch
        import torchcodec
        return f"{torchcodec.__version__} (torch {torch.__version__})"

    def _decoder(self, path, transforms=None):
        from torchcodec.decoders import VideoDecoder
        kw = {} if self.default_threads else {"num_ffmpeg_threads": self.threads}
        if transforms is not None:
            kw["transforms"] = transforms
        return VideoDecoder(path, seek_mode=self.seek_mode, dimension_order="NHWC", **kw)

    def open(self, path):
        self.path = path
        self.d = self._decoder(path)
        self._rs = None

    def close(self):
        self.d = self._rs = None

    def __len__(self):
        return len(self.d)

    @staticmethod
    def _np(batch):
        return np.ascontiguousarray(batch.data.numpy())

    def frame_at(self, i):
        return np.ascontiguousarray(self.d.get_frame_at(int(i)).data.numpy())[None]

    def frames_at(self, indices):
        return self._np(self.d.get_frames_at([int(i) for i in indices]))

    def range(self, start, stop, step=1):
        return self._np(self.d.get_frames_in_range(start, min(stop, len(self.d)), step))

    def resized(self, indices, h, w):
        from torchcodec.transforms import Resize
        if self._rs is None or self._rs[0] != (h, w):
            self._rs = ((h, w), self._decoder(self.path, [Resize((h, w))]))
        return self._np(self._rs[1].get_frames_at([int(i) for i in indices]))


class TorchCodecApprox(TorchCodec):
    key = "torchcodec_approx"
    seek_mode = "approximate"


class TorchCodecDefault(TorchCodec):
    key = "torchcodec_1t"
    default_threads = True


class TorchCodecApproxDefault(TorchCodec):
    key = "torchcodec_approx_1t"
    seek_mode = "approximate"
    default_threads = True


TORCHCODEC = [TorchCodec, TorchCodecApprox, TorchCodecDefault, TorchCodecApproxDefault]


# ----------------------------------------------------------------------------------------
class Limit(Adapter):
    """The limit: libavcodec decoding exactly the packets a request needs, with a bare
    send/receive loop, converting only the wanted frames to RGB into a scratch buffer
    (``vidlake._core.decode_limit``). Its time is what libavcodec reports, not wall time."""
    key = "limit"
    label = "limit"

    def __init__(self, threads: int = 1):
        super().__init__(threads)
        self.label = f"limit ({threads} thread{'s' if threads > 1 else ''})"
        self.key = f"limit{threads}"

    @classmethod
    def unavailable(cls):
        try:
            from vidlake._core import decode_limit  # noqa: F401
        except Exception as e:
            return f"vidlake._core.decode_limit missing: {type(e).__name__}: {e}"
        return None

    @classmethod
    def version(cls):
        import vidlake
        return "vidlake " + vidlake.__version__

    def open(self, path):
        from vidlake._core import decode_limit
        self.fn = decode_limit
        self.path = path
        self.n = None

    def set_length(self, n: int) -> None:
        self.n = n

    def __len__(self):
        if self.n is None:
            import vidlake
            self.n = len(vidlake.VideoReader(self.path))
        return self.n

    def frames_at(self, indices):
        self.reported_seconds = float(self.fn(self.path, [int(i) for i in indices], self.threads))

    def frame_at(self, i):
        return self.frames_at([i])

    def stream(self, n, batch, keep):
        return self.frames_at(list(range(n)))


ADAPTERS = {
    "vidlake": VidlakeReader,
    "vidlake_ds": VidlakeDataset,
    "pyav": PyAV,
    "decord": Decord,
    "opencv": OpenCV,
    "deeplake3": DeepLake3,
    **{c.key: c for c in TORCHCODEC},
}
