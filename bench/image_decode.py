"""Still-image decode time: vidlake's two image decoders and Pillow, per image.

    .venv/bin/python bench/image_decode.py [--rounds 30]

JPEGs made from the shared test videos with ffmpeg's MJPEG encoder (q 3): 1920x1080 4:2:0
(demo_skeleton.mp4) and 640x360 4:2:0 (samplemp4.mp4), plus a 64x48 Pillow JPEG (MOT-style
thumbnails). Each cell is the median of ``--rounds`` decodes of bytes already in memory, into a
new array; every decoder's pixels are checked once (the default must equal Pillow's).
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vidlake.video import JPEG_LIBRARY, decode_image

HERE = Path(__file__).resolve().parent
TESTDATA = Path(os.environ.get("VIDLAKE_TESTDATA", str(HERE.parent.parent / "shared" / "testdata"))) / "video"


def make_jpegs(tmp: Path) -> dict[str, bytes]:
    if shutil.which("ffmpeg") is None:
        sys.exit("image_decode: needs the ffmpeg CLI")
    out = {}
    for name, src in [("1920x1080", "demo_skeleton.mp4"), ("640x360", "samplemp4.mp4")]:
        dst = tmp / f"{name}.jpg"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(TESTDATA / src),
                        "-frames:v", "1", "-pix_fmt", "yuvj420p", "-q:v", "3", str(dst)], check=True)
        out[name] = dst.read_bytes()
    small = np.asarray(Image.open(io.BytesIO(out["640x360"])).convert("RGB").resize((64, 48)))
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, "JPEG", quality=90)
    out["64x48"] = buf.getvalue()
    return out


def pillow(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def median_ms(fn, data: bytes, rounds: int) -> float:
    fn(data)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    decoders = {
        "vidlake default (libjpeg-turbo)": lambda d: decode_image(d),
        'vidlake image_decoder="ffmpeg"': lambda d: decode_image(d, image_decoder="ffmpeg"),
        "Pillow np.asarray(convert('RGB'))": pillow,
    }
    with tempfile.TemporaryDirectory() as tmp:
        jpegs = make_jpegs(Path(tmp))
    print(f"{JPEG_LIBRARY}; Pillow {Image.__version__}; {args.rounds} rounds, median ms per image")
    print("| decoder | " + " | ".join(jpegs) + " |")
    print("|---|" + "---|" * len(jpegs))
    for label, fn in decoders.items():
        cells = []
        for data in jpegs.values():
            same = np.array_equal(fn(data), pillow(data))
            cells.append(f"{median_ms(fn, data, args.rounds):.2f}{'' if same else ' (not Pillow pixels)'}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
