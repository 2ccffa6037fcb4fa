"""Annotation test data: the shared real annotation files and generated frames / videos for them.

Frames and videos are generated in tmp dirs (never committed): numpy -> Pillow jpg, ffmpeg testsrc2.
"""
from __future__ import annotations

import io
import shutil
import subprocess
from typing import TYPE_CHECKING

import assets
import numpy as np
import pytest

if TYPE_CHECKING:
    from pathlib import Path

ANN_DIR = assets.TESTDATA / "annotations"
MOT17 = ANN_DIR / "mot" / "MOT17-02-FRCNN-mini"     # 9 columns, seqLength 600, 1920x1080, gt frames 1-4
TUD = ANN_DIR / "mot" / "TUD-Campus"                # 10 columns, CRLF, seqLength 71
LASOT_DOG2 = ANN_DIR / "lasot" / "dog-2"            # 1363 lines
COCOVID = ANN_DIR / "cocovid" / "youtube_vis_0043f083b5.json"


def need(p: Path) -> Path:
    if not p.exists():
        pytest.fail(f"shared annotation file missing: {p}")
    return p


def frame_image(k: int, h: int, w: int) -> np.ndarray:
    """A distinct, smooth test picture for frame k (jpg-friendly)."""
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1) + 7 * k) % 256
    g = (y * 255 // max(h - 1, 1) + 13 * k) % 256
    b = np.full((h, w), (31 * k) % 256)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def jpg_bytes(arr: np.ndarray, quality: int = 90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def reference_decode(path) -> np.ndarray:
    """The reference for image pixels of vidlake's default image decoder ("pillow"): Pillow's
    decode, ``np.asarray(Image.open(f).convert("RGB"))`` (``(H, W, 1)`` for grayscale files)."""
    from PIL import Image

    with Image.open(str(path)) as im:
        if im.mode in ("L", "1"):
            return np.asarray(im.convert("L"))[:, :, None]
        return np.asarray(im.convert("RGBA" if im.mode in ("RGBA", "LA", "PA") else "RGB"))


def pyav_decode(path_or_bytes) -> np.ndarray:
    """The reference of ``image_decoder="ffmpeg"``: a PyAV (libavcodec) decode of the file with
    to_ndarray("rgb24") -- the same libavcodec and conversion."""
    import av

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with av.open(src) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def write_frames(folder: Path, n: int, h: int, w: int, same: bool = False) -> list[Path]:
    """n jpgs 000001.jpg .. (distinct pictures; or one picture written n times when same=True)."""
    folder.mkdir(parents=True, exist_ok=True)
    one = jpg_bytes(frame_image(0, h, w)) if same else None
    paths = []
    for k in range(1, n + 1):
        p = folder / f"{k:06d}.jpg"
        p.write_bytes(one if same else jpg_bytes(frame_image(k, h, w)))
        paths.append(p)
    return paths


def mot_sequence(src: Path, dst: Path, n: int, h: int, w: int, same: bool = False) -> Path:
    """Copy a shared MOT sequence's annotation files to dst and generate its img1/ frames."""
    shutil.copytree(need(src), dst)
    write_frames(dst / "img1", n, h, w, same=same)
    return dst


def make_video(path: Path, frames: int, size: str = "64x48", fps: int = 30) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.fail("the ffmpeg CLI is needed to generate test videos")
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
           "-i", f"testsrc2=size={size}:rate={fps}", "-frames:v", str(frames),
           "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.fail(f"ffmpeg failed: {res.stderr}")
    return path


def mot_gt_by_frame(gt: Path) -> dict[int, np.ndarray]:
    """frame -> rows of gt.txt (float64), parsed independently of vidlake."""
    rows = [[float(v) for v in line.split(",")] for line in gt.read_text().splitlines() if line.strip()]
    a = np.asarray(rows)
    return {int(f): a[a[:, 0] == f] for f in np.unique(a[:, 0])}
