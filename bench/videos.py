"""Benchmark videos: synthetic ones made with the ffmpeg CLI (cached in bench/.cache/videos)
and the real clips from the shared test data.

Synthetic videos are ffmpeg's ``testsrc2`` pattern with light temporal noise, encoded at a
realistic bitrate (1080p 8 Mbit/s, 720p 4 Mbit/s, 360p 1.5 Mbit/s) so decode cost is close
to camera footage instead of the near-free decode of a flat test pattern. GOP 30 and 250
videos have 300 frames (10 s at 30 fps); GOP 600 videos have 600 frames (one GOP).
H.264 and H.265 use 3 B-frames; VP9 uses alt-ref frames; AV1 uses SVT-AV1 (libaom if SVT
is absent) with its default hierarchical structure.

    >>> from bench.videos import synthetic, HEADLINE
    >>> v = synthetic(*HEADLINE)          # 1080p H.264, GOP 250, B-frames (issue 2's headline)
    >>> v.path, v.frames
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
VIDEO_CACHE = CACHE / "videos"
# The shared test data, as the tests find it (tests/assets.py): $VIDLAKE_TESTDATA, else
# ../shared/testdata beside the checkout. No machine's absolute path is written here.
TESTDATA = Path(os.environ.get("VIDLAKE_TESTDATA", str(HERE.parent.parent / "shared" / "testdata"))) / "video"

CODECS = ("h264", "h265", "vp9", "av1")
HEIGHTS = (360, 720, 1080)
GOPS = (30, 250, 600)
HEADLINE = ("h264", 1080, 250)
WIDTH = {360: 640, 720: 1280, 1080: 1920}
BITRATE = {360: "1500k", 720: "4M", 1080: "8M"}
FPS = 30

# Real clips used by the suite (shared/testdata/video), with why each is there.
REAL_CLIPS = {
    "bulk-water.mov": "real footage, 640x424 H.264 High, 480 frames, GOP 240, B-frames (headline real clip)",
    "samplemp4.mp4": "640x360 H.264 High, 400 frames, GOP 250, B-frames",
    "sample_mp4.mp4": "480x270 H.264 Baseline, 901 frames, GOP 90, faststart",
    "flipping_a_pancake.mkv": "426x240 H.264 in Matroska, 310 frames, GOP 150",
    "big_buck_bunny.mp4": "1280x720 H.264 Main, 132 frames, one GOP",
}
HEADLINE_REAL = "bulk-water.mov"


@dataclass
class Video:
    name: str
    path: str
    kind: str  # "synthetic" or "real"
    codec: str
    width: int
    height: int
    gop: int | None
    frames: int  # packets in the stream (ffprobe -count_packets); the oracle decode is the truth
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        return os.path.getsize(self.path)

    def label(self) -> str:
        if self.kind == "synthetic":
            return f"{self.codec} {self.height}p GOP {self.gop}"
        return self.name


@functools.cache
def encoders() -> frozenset:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=False).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("V"):
            names.add(parts[1])
    return frozenset(names)


def av1_encoder() -> str | None:
    enc = encoders()
    for name in ("libsvtav1", "libaom-av1"):
        if name in enc:
            return name
    return None


def _encode_args(codec: str, height: int, gop: int) -> tuple[list[str], str]:
    br = BITRATE[height]
    rate = ["-b:v", br, "-maxrate", br, "-bufsize", str(2 * int(br.rstrip("kM")) ) + br[-1]]
    if codec == "h264":
        return (["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", str(gop), "-keyint_min", str(gop),
                 "-sc_threshold", "0", *rate], "mp4")
    if codec == "h265":
        return (["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", *rate, "-x265-params",
                 f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=3:log-level=error"], "mp4")
    if codec == "vp9":
        return (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
                 "-g", str(gop), "-b:v", br], "webm")
    if codec == "av1":
        enc = av1_encoder()
        if enc == "libsvtav1":
            return (["-c:v", "libsvtav1", "-preset", "12", "-g", str(gop), "-b:v", br,
                     "-svtav1-params", "scd=0"], "mp4")
        if enc == "libaom-av1":
            return (["-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime", "-row-mt", "1",
                     "-g", str(gop), "-b:v", br], "mp4")
        raise RuntimeError("no AV1 encoder in this ffmpeg (need libsvtav1 or libaom-av1)")
    raise ValueError(f"unknown codec {codec!r}; choose from {CODECS}")


def frames_for_gop(gop: int) -> int:
    return 600 if gop >= 600 else 300


def count_packets(path: str) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
                          "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=False).stdout.strip()
    try:
        return int(out.split(",")[0])
    except ValueError:
        return 0


def probe(path: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,width,height", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=False).stdout.strip().splitlines()
    codec, w, h = ([*out[0].split(","), "", "0", "0"])[:3] if out else ("?", "0", "0")
    return {"codec": codec, "width": int(w), "height": int(h)}


def synthetic(codec: str, height: int, gop: int, *, verbose: bool = True) -> Video:
    """Return the cached synthetic video, encoding it first if needed."""
    _, ext = _encode_args(codec, height, gop)
    VIDEO_CACHE.mkdir(parents=True, exist_ok=True)
    n = frames_for_gop(gop)
    name = f"{codec}_{height}p_gop{gop}.{ext}"
    path = VIDEO_CACHE / name
    if not path.exists():
        args, _ = _encode_args(codec, height, gop)
        src = f"testsrc2=size={WIDTH[height]}x{height}:rate={FPS},noise=alls=6:allf=t,format=yuv420p"
        tmp = path.with_suffix(".tmp" + path.suffix)
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src,
               "-frames:v", str(n), *args, "-pix_fmt", "yuv420p", str(tmp)]
        if verbose:
            print(f"[videos] encoding {name} ...", flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"ffmpeg failed for {name}: {r.stderr.strip()[-400:]}")
        os.replace(tmp, path)
    return Video(name=name, path=str(path), kind="synthetic", codec=codec, width=WIDTH[height],
                 height=height, gop=gop, frames=count_packets(str(path)),
                 note=f"testsrc2+noise, {BITRATE[height]}bit/s")


def synthetic_matrix(codecs=CODECS, heights=HEIGHTS, gops=GOPS) -> list[Video]:
    out = []
    for c in codecs:
        if c == "av1" and av1_encoder() is None:
            continue
        for h in heights:
            for g in gops:
                out.append(synthetic(c, h, g))
    return out


def real(name: str) -> Video:
    path = TESTDATA / name
    if not path.exists():
        raise FileNotFoundError(f"{path} (set VIDLAKE_TESTDATA to the shared testdata folder)")
    p = probe(str(path))
    return Video(name=name, path=str(path), kind="real", codec=p["codec"], width=p["width"],
                 height=p["height"], gop=None, frames=count_packets(str(path)),
                 note=REAL_CLIPS.get(name, ""))


def real_clips(names=None) -> list[Video]:
    names = list(REAL_CLIPS) if names is None else names
    return [real(n) for n in names if (TESTDATA / n).exists()]


def ingest_files(n: int = 50) -> list[str]:
    """n small H.264 mp4 files for the ingestion workload: 10 distinct encodes (360p/720p,
    2-4 s, GOP 30-120) repeated under different names. Cached."""
    d = VIDEO_CACHE / f"ingest{n}"
    marker = d / ".done"
    if marker.exists():
        return sorted(str(p) for p in d.glob("*.mp4"))
    d.mkdir(parents=True, exist_ok=True)
    print(f"[videos] making {n} files for the ingestion workload ...", flush=True)
    bases = []
    for k in range(10):
        h = 360 if k % 2 == 0 else 720
        frames = 60 + 30 * (k % 3)
        gop = (30, 60, 120)[k % 3]
        p = d / f"base{k}.mp4.tmp.mp4"
        src = f"testsrc2=size={WIDTH[h]}x{h}:rate={FPS},noise=alls=6:allf=t,hue=h={k * 36},format=yuv420p"
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src,
               "-frames:v", str(frames), "-c:v", "libx264", "-preset", "veryfast", "-bf", "3",
               "-g", str(gop), "-b:v", BITRATE[h], "-pix_fmt", "yuv420p", str(p)]
        subprocess.run(cmd, check=True, capture_output=True)
        bases.append(p)
    files = []
    for i in range(n):
        dst = d / f"clip{i:03d}.mp4"
        shutil.copyfile(bases[i % len(bases)], dst)
        files.append(str(dst))
    for p in bases:
        p.unlink()
    marker.write_text("ok\n")
    return files


def _copies(d: Path, n: int, bases: list[Path]) -> list[str]:
    """``n`` files in ``d`` named clipNNNNN.mp4, copies of ``bases`` in turn."""
    files = []
    for i in range(n):
        dst = d / f"clip{i:05d}.mp4"
        shutil.copyfile(bases[i % len(bases)], dst)
        files.append(str(dst))
    return files


def _cached_set(name: str, n: int, size: tuple[int, int], frames: int, gop: int, bitrate: str) -> list[str]:
    """n short H.264 mp4 files (10 distinct encodes of testsrc2+noise with other hues, B-frames,
    repeated under other names), made once into bench/.cache/videos/NAME."""
    d = VIDEO_CACHE / name
    marker = d / ".done"
    if marker.exists():
        return sorted(str(p) for p in d.glob("clip*.mp4"))
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True, exist_ok=True)
    print(f"[videos] making {n} files for {name} ...", flush=True)
    bases = []
    for k in range(10):
        p = d / f"base{k}.tmp.mp4"
        src = f"testsrc2=size={size[0]}x{size[1]}:rate={FPS},noise=alls=6:allf=t,hue=h={k * 36},format=yuv420p"
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src,
               "-frames:v", str(frames), "-c:v", "libx264", "-preset", "veryfast", "-bf", "3",
               "-g", str(gop), "-b:v", bitrate, "-pix_fmt", "yuv420p", str(p)]
        subprocess.run(cmd, check=True, capture_output=True)
        bases.append(p)
    files = _copies(d, n, bases)
    for p in bases:
        p.unlink()
    marker.write_text("ok\n")
    return files


def small_clips(n: int = 50) -> list[str]:
    """n short clips for the many-file read workloads: 640x360 H.264, 90 frames (3 s),
    GOP 30, 3 B-frames, 1.5 Mbit/s (~0.5 MB each)."""
    return _cached_set(f"clips360_{n}", n, (640, 360), 90, 30, BITRATE[360])


def small_files(n: int = 10_000) -> list[str]:
    """n small files for the small-file ingestion workload: 256x144 H.264, 15 frames, GOP 15
    (~10 kB each)."""
    return _cached_set(f"small{n}", n, (256, 144), 15, 15, "300k")


if __name__ == "__main__":  # make every video now (python bench/videos.py)
    import time
    t = time.perf_counter()
    for v in synthetic_matrix() + real_clips():
        print(f"{v.label():28s} {v.frames:5d} frames {v.size_bytes / 1e6:8.2f} MB  {v.path}")
    ingest_files()
    print(f"done in {time.perf_counter() - t:.1f}s")
