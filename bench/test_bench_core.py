"""Regression benchmarks for vidlake's core operations (pytest-benchmark).

    pytest bench/ --benchmark-only                       # run and print the table
    pytest bench/ --benchmark-only --benchmark-autosave  # keep a baseline in .benchmarks/
    pytest bench/ --benchmark-only --benchmark-compare   # compare with the last saved run

Not part of the unit tests: `pytest tests` (and `make test`) never collect bench/. Every
benchmark also checks its frames against a sequential PyAV decode once, so a faster but
wrong build fails here too.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
vidlake = pytest.importorskip("vidlake")
_core = pytest.importorskip("vidlake._core")

N_FRAMES = 150
GOP = 60


@pytest.fixture(scope="session")
def video(tmp_path_factory) -> str:
    """A small H.264 video with B-frames: 640x360, 150 frames, GOP 60."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg CLI is needed to make the benchmark video")
    path = tmp_path_factory.mktemp("bench") / "small_h264.mp4"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=640x360:rate=30,noise=alls=6:allf=t,format=yuv420p", "-frames:v", str(N_FRAMES),
         "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", str(GOP), "-keyint_min", str(GOP),
         "-sc_threshold", "0", "-b:v", "1500k", "-pix_fmt", "yuv420p", str(path)],
        check=True, capture_output=True)
    return str(path)


@pytest.fixture(scope="session")
def oracle(video) -> list:
    av = pytest.importorskip("av")
    with av.open(video) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture
def reader(video):
    return vidlake.VideoReader(video)


def _random_indices(k: int, seed: int) -> list:
    return np.random.default_rng(seed).integers(0, N_FRAMES, k).tolist()


def test_index_build(benchmark, video):
    index = benchmark(_core.Index.build, video)
    assert len(index) >= N_FRAMES


def test_warm_random_frame(benchmark, reader, oracle):
    indices = iter(_random_indices(10_000, 1))
    reader.get_frames([0])  # warm
    last = {}

    def one():
        i = next(indices)
        last["i"] = i
        return reader.get_frames([i])

    out = benchmark(one)
    assert np.array_equal(out[0], oracle[last["i"]])


def test_batch_of_10_random_frames(benchmark, reader, oracle):
    batches = iter([_random_indices(10, s) for s in range(10_000)])
    reader.get_frames([0])
    last = {}

    def batch():
        idx = next(batches)
        last["idx"] = idx
        return reader.get_frames(idx)

    out = benchmark(batch)
    for row, i in zip(out, last["idx"]):
        assert np.array_equal(row, oracle[i])


def test_clip_40_frames(benchmark, reader, oracle):
    reader.get_frames([0])
    out = benchmark(lambda: reader[70:110])
    assert out.shape[0] == 40
    assert all(np.array_equal(out[k], oracle[70 + k]) for k in range(40))
