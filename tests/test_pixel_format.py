"""The index states the pixel format the decoder will produce (docs/DESIGN.md, "Building the
index"). For H.264 in mp4/Matroska it is read from the SPS (Note [H.264 pixel format]); the
cases it leaves to a decoder probe (monochrome, RGB 4:4:4) are here too. Each file is encoded
small and compared with the format of PyAV's first decoded frame, and its frames stay exact."""
from __future__ import annotations

import subprocess

import av
import oracle
import pytest

import vidlake

CASES = {
    # name: (encoder args, container extension)
    "yuv420p": (["-c:v", "libx264", "-pix_fmt", "yuv420p"], "mp4"),
    "yuvj420p": (["-c:v", "libx264", "-pix_fmt", "yuvj420p"], "mp4"),
    "full-range-flag": (["-c:v", "libx264", "-pix_fmt", "yuv420p", "-color_range", "pc"], "mp4"),
    "limited-range-flag": (["-c:v", "libx264", "-pix_fmt", "yuv420p", "-color_range", "tv",
                            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"], "mp4"),
    "yuv422p": (["-c:v", "libx264", "-pix_fmt", "yuv422p"], "mp4"),
    "yuv444p": (["-c:v", "libx264", "-pix_fmt", "yuv444p"], "mp4"),
    "yuvj444p-mkv": (["-c:v", "libx264", "-pix_fmt", "yuvj444p"], "mkv"),
    "yuv420p10le": (["-c:v", "libx264", "-pix_fmt", "yuv420p10le"], "mp4"),
    "yuv422p10le-mkv": (["-c:v", "libx264", "-pix_fmt", "yuv422p10le"], "mkv"),
    "gray (decoder probe)": (["-c:v", "libx264", "-pix_fmt", "gray"], "mp4"),
    "rgb 4:4:4 (decoder probe)": (["-c:v", "libx264rgb", "-pix_fmt", "bgr0"], "mp4"),
    "scaling matrix": (["-c:v", "libx264", "-pix_fmt", "yuv420p", "-x264-params", "cqm=jvt"], "mp4"),
}


def _encode(path, args):
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
           "testsrc2=size=96x64:rate=10:duration=0.6", *args, "-bf", "2", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"this ffmpeg cannot encode {args}: {res.stderr.strip()[-200:]}")


def _decoded_format(path) -> str:
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            return frame.format.name
    raise AssertionError(f"{path}: no frame")


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_index_pixel_format_is_the_decoders(name, tmp_path):
    args, ext = CASES[name]
    path = tmp_path / f"clip.{ext}"
    _encode(path, args)
    want = _decoded_format(path)
    r = vidlake.VideoReader(str(path))
    assert r.metadata["pix_fmt"] == want
    assert vidlake._core.Index.build(path.read_bytes()).metadata["pix_fmt"] == want
    n = len(r)
    oracle.assert_batch_equal(r[:], oracle.stack(str(path), range(n)), list(range(n)), f"{name} frames")
