"""Clips of one video in a batch are decoded in frame order, then returned in the caller's order.

A long-GOP synthetic clip (300 frames, one keyframe, 2 B-frames): four clips of it asked
latest-first would each decode from the keyframe again; decoded in frame order the decoder
moves forward once. Pinned with the reader's decode counters, and the frames are those of a
sequential decode, each clip in the place the caller asked for.
"""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

import vidlake
from vidlake import samplers

torch = pytest.importorskip("torch")
from vidlake.torch import ClipDataset, ClipSpec  # noqa: E402
from vidlake.torch.data import decode_order  # noqa: E402

NUM_FRAMES = 300
CLIP = 8
ITEMS = [3, 1, 2, 0]  # regular clips of one video, asked out of frame order


@pytest.fixture(scope="module")
def long_gop(tmp_path_factory):
    d = tmp_path_factory.mktemp("order")
    path = str(d / "gop300.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size=320x240:rate=30:duration={NUM_FRAMES / 30}", "-c:v", "libx264",
                    "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "300", "-bf", "2",
                    "-x264-params", "keyint=300:min-keyint=300:scenecut=0", path], check=True, capture_output=True)
    ds = vidlake.empty(str(d / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    with ds:
        ds.append({"videos": vidlake.read(path)})
    every = vidlake.VideoReader(path, threads=1).get_frames(list(range(NUM_FRAMES))).copy()
    return ds, path, every


def clips(ds) -> ClipDataset:
    return ClipDataset(ds, ["videos"], ClipSpec(num_frames=CLIP, clips_per_video=4, sampler="regular"), seed=0,
                       decode_threads=1)


def test_decode_order_groups_rows_and_sorts_starts():
    plans = [(1, np.array([40, 41])), (0, np.array([90])), (1, np.array([3, 4])), (0, np.array([7]))]
    assert decode_order(plans) == [3, 1, 2, 0]
    assert decode_order([]) == []


def test_batch_of_one_videos_clips_decodes_forward_once(long_gop):
    ds, path, every = long_gop
    cd = clips(ds)
    plans = [cd.source.plan(0, i) for i in ITEMS]
    starts = [int(idx[0]) for _, idx in plans]
    assert starts != sorted(starts), starts
    assert len(set(starts)) == len(starts), starts
    reader = cd.cache.get(ds.videos, 0)
    reader.reset_stats()
    batch = cd.__getitems__(ITEMS)
    got = reader.stats

    # the same clips decoded in the caller's order, one get_frames each, on a fresh reader
    unsorted = vidlake.VideoReader(path, threads=1)
    unsorted.reset_stats()
    for _, idx in plans:
        unsorted.get_frames(idx)
    base = unsorted.stats

    assert got["packets_decoded"] < base["packets_decoded"], (got, base)
    assert got["seeks"] < base["seeks"] or base["seeks"] == 0, (got, base)
    last = max(int(idx[-1]) for _, idx in plans)
    assert got["packets_decoded"] <= last + 1 + 2 + 1, got  # one pass from the keyframe (+ B-frame delay)

    # each clip in the caller's place, frames identical to the sequential decode
    for b, (_, idx) in enumerate(plans):
        assert batch["frame_indices"][b].tolist() == list(idx)
        assert np.array_equal(batch["videos"][b].numpy(), every[idx]), f"clip {b}"


def test_prefetch_pool_submits_in_frame_order(long_gop):
    ds, _path, every = long_gop
    cd = clips(ds)
    pool = vidlake.ClipPrefetcher(1, capacity=8)
    reader = cd.cache.get(ds.videos, 0)
    reader.reset_stats()
    batch = cd.source.batch_begin([cd._key(i) for i in ITEMS], pool)()
    last = max(int(i[-1]) for i in batch["frame_indices"])
    assert reader.stats["packets_decoded"] <= last + 1 + 2 + 1, reader.stats
    for b in range(len(ITEMS)):
        assert np.array_equal(batch["videos"][b].numpy(), every[batch["frame_indices"][b].numpy()]), f"clip {b}"


def test_sampler_call_decodes_each_gop_once(long_gop):
    _ds, path, every = long_gop
    r = vidlake.VideoReader(path, threads=1)
    r.reset_stats()
    c = samplers.clips_at_regular_indices(r, num_clips=4, num_frames_per_clip=CLIP)
    assert r.stats["packets_decoded"] <= int(np.max(c.indices)) + 1 + 2 + 1, r.stats
    assert np.array_equal(c.frames, every[c.indices])
