"""A stream whose picture size changes mid-way (docs/DESIGN.md, "Resolution changes").

The rule: the index declares the first frame's size; a read without ``size=`` of a frame of
another size fails, naming the frame and both sizes (never silently scaled, up or down); with
``size=(h, w)`` every frame is scaled from its own size to ``(h, w)`` (bilinear, the oracle's
PyAV reformat). Test files: two tiny H.264 segments (160x120 and 320x240, B-frames, GOP 10)
joined into one MPEG-TS stream, in both orders.
"""
from __future__ import annotations

import shutil
import subprocess
import uuid

import numpy as np
import oracle
import pytest

import vidlake

FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
SMALL, BIG = (120, 160), (240, 320)        # (height, width)
N = 20                                      # frames per segment


@pytest.fixture(scope="module")
def streams(tmp_path_factory) -> dict[str, str]:
    """{"up": small then big, "down": big then small} TS files of 2 x N frames."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("the ffmpeg CLI is needed to generate test videos")
    root = tmp_path_factory.mktemp("reschange")
    parts = {}
    for name, (h, w) in (("small", SMALL), ("big", BIG)):
        parts[name] = root / f"{name}.ts"
        subprocess.run([*FFMPEG, "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate=25", "-frames:v", str(N),
                        "-c:v", "libx264", "-g", "10", "-bf", "2", "-pix_fmt", "yuv420p", str(parts[name])],
                       check=True, capture_output=True)
    out = {}
    for name, (a, b) in {"up": ("small", "big"), "down": ("big", "small")}.items():
        out[name] = str(root / f"{name}.ts")
        subprocess.run([*FFMPEG, "-i", f"concat:{parts[a]}|{parts[b]}", "-c", "copy", out[name]],
                       check=True, capture_output=True)
    return out


@pytest.mark.parametrize(("name", "first", "second"), [("up", SMALL, BIG), ("down", BIG, SMALL)])
def test_declared_size_is_the_first_frames_and_other_sizes_are_refused(streams, name, first, second):
    path = streams[name]
    r = vidlake.VideoReader(path)
    assert len(r) == 2 * N
    assert (r.metadata["height"], r.metadata["width"]) == first
    assert r.shape == (2 * N, *first, 3)
    assert {oracle.frame(path, i).shape[:2] for i in (0, N - 1)} == {first}
    assert {oracle.frame(path, i).shape[:2] for i in (N, 2 * N - 1)} == {second}
    oracle.assert_batch_equal(r[0:N], oracle.stack(path, range(N)), list(range(N)), f"{name} first part")
    msg = (rf"frame {N} is {second[1]}x{second[0]} but the stream declares {first[1]}x{first[0]} "
           r"\(its resolution changes mid-stream\); read with size=\(height, width\)")
    with pytest.raises(vidlake.VideoDecodeError, match=msg):
        r[N]
    with pytest.raises(vidlake.VideoDecodeError, match="resolution changes mid-stream"):
        r.get_frames([3, N + 5, 1])
    with pytest.raises(vidlake.VideoDecodeError, match="resolution changes mid-stream"):
        r[:]
    oracle.assert_frames_equal(r[N - 1], oracle.frame(path, N - 1), f"{name} frame {N - 1} after an error")


@pytest.mark.parametrize("name", ["up", "down"])
@pytest.mark.parametrize("size", [SMALL, BIG, (90, 128)])
def test_size_scales_every_frame_from_its_own_size(streams, name, size):
    path = streams[name]
    r = vidlake.VideoReader(path)
    want = oracle.stack(path, range(2 * N), size)
    oracle.assert_batch_equal(r.get_frames(range(2 * N), size=size), want, list(range(2 * N)), f"{name} {size}")
    order = [N + 7, 2, N, 2 * N - 1, N - 1, N + 7, 11]          # random access across the change
    oracle.assert_batch_equal(r.get_frames(order, size=size), want[order], order, f"{name} {size} shuffled")
    for i in (N + 3, 4, N + 12):
        oracle.assert_frames_equal(r.get_frames([i], size=size)[0], want[i], f"{name} {size} frame {i}")


def test_dataset_reads_follow_the_rule(streams):
    ds = vidlake.empty(f"mem://res-{uuid.uuid4().hex}")
    ds.create_tensor("videos", htype="video", sample_compression="ts")
    ds.create_tensor("scaled", htype="video", sample_compression="ts", read_options={"size": list(SMALL)})
    ds.append({"videos": vidlake.read(streams["down"]), "scaled": vidlake.read(streams["down"])})
    assert ds.videos[0].shape == (2 * N, *BIG, 3)
    oracle.assert_frames_equal(ds.videos[0, 3].numpy(), oracle.frame(streams["down"], 3), "dataset frame 3")
    with pytest.raises(vidlake.VideoDecodeError, match=rf"frame {N} is 160x120 but the stream declares 320x240"):
        ds.videos[0, N - 2:N + 2].numpy()
    want = oracle.stack(streams["down"], range(N - 2, N + 2), SMALL)
    got = ds.videos[0, N - 2:N + 2].numpy(size=SMALL)
    oracle.assert_batch_equal(got, want, list(range(4)), "dataset size=")
    oracle.assert_batch_equal(ds.scaled[0, N - 2:N + 2].numpy(), want, list(range(4)), "tensor default size")
    assert ds.scaled[0].shape == (2 * N, *SMALL, 3)
    assert np.array_equal(ds.scaled[0, N].numpy(), want[2])
