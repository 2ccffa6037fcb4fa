"""vidlake.torch: ds.pytorch(), ClipDataset, ClipIterable, collate, the reader cache.

Every frame a loader hands out is checked bit for bit against the oracle's sequential decode
of the frames the batch reports (``frame_indices``), resized the same way; aligned boxes are
made so that each box names its row and frame, so a box cut with the wrong frame shows.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
import subprocess
import sys
import threading
import weakref

import numpy as np
import oracle
import pytest
from helpers import video

import vidlake

torch = pytest.importorskip("torch", reason="vidlake.torch needs PyTorch (pip install 'vidlake[torch]')")
import vidlake.torch as vt

SIZE = (48, 64)
VIDEOS = ["carphone_distorted.mp4", "realshort.mp4", "bikes.mp4", "stub_h264.mp4"]


def boxes_for(row: int, n: int) -> list[np.ndarray]:
    """Frame f of row r has (f + r) % 3 boxes, each [r, f, j, 1]."""
    return [np.array([[row, f, j, 1] for j in range((f + row) % 3)], np.float32).reshape(-1, 4)
            for f in range(n)]


@pytest.fixture(scope="module")
def ds_info(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchds") / "ds"
    ds = vidlake.empty(str(root))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.create_tensor("boxes", htype="sequence[bbox]", aligned_to="videos")
    ds.create_tensor("labels", htype="class_label", class_names=[f"c{k}" for k in range(len(VIDEOS))])
    ds.create_tensor("name", htype="text")
    paths = [video(v) for v in VIDEOS]
    with ds:
        for row, p in enumerate(paths):
            n = len(vidlake.VideoReader(p))
            ds.append({"videos": vidlake.read(p), "boxes": boxes_for(row, n), "labels": row, "name": VIDEOS[row]})
    return str(root), paths


def in_fresh_interpreter(request, timeout: int = 240) -> bool:
    """Run a test that forks DataLoader workers in a fresh interpreter, once, and report its result.

    The suite's process holds the threads of every test before this one (servers, pools, codec
    threads); a fork copies their locks but not the threads. vidlake's own state survives that
    (tests/test_fork_safety.py), other libraries' locks need not; a training script forks from a
    process like the child here, and a hang there fails after ``timeout`` seconds. Returns True
    in the parent (the child ran the test), False in the child (run the test body)."""
    if os.environ.get("VIDLAKE_FORK_TEST_CHILD") == "1":
        return False
    env = dict(os.environ, VIDLAKE_FORK_TEST_CHILD="1")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", f"timeout={timeout}",
                          request.node.nodeid],
                         cwd=str(request.config.rootpath), env=env, capture_output=True, text=True,
                         timeout=timeout + 40, check=False)
    assert res.returncode == 0, f"{request.node.nodeid} in a fresh interpreter:\n{res.stdout[-4000:]}{res.stderr[-2000:]}"
    return True


@pytest.fixture(autouse=True)
def _collect_before_fork():
    """Free what earlier tests left for the collector before a test forks workers. vidlake's
    readers are safe to free in a forked child (tests/test_fork_safety.py), but the oracle's PyAV
    objects are not: a PyAV codec context left in a reference cycle and collected in a worker
    hangs there in avpriv_slicethread_free, waiting for the parent's codec threads (seen with gdb
    on a hung worker)."""
    gc.collect()


@pytest.fixture
def ds(ds_info):
    return vidlake.load(ds_info[0], read_only=True)


def check_batch(batch, paths, size=SIZE, nchw=False):
    """Frames equal the oracle's at the reported indices; boxes and labels belong to them."""
    frames = batch["videos"]
    idx = batch["frame_indices"]
    assert frames.dtype == torch.uint8
    for b, row in enumerate(batch["index"].tolist()):
        got = frames[b].numpy() if not nchw else frames[b].permute(0, 2, 3, 1).numpy()
        ks = idx[b].tolist()
        oracle.assert_batch_equal(got, oracle.stack(paths[row], ks, size), ks, f"row {row} clip {ks}")
        ts = vidlake.VideoReader(paths[row]).timestamps[ks]
        np.testing.assert_array_equal(batch["timestamps"][b].numpy(), ts)
        assert batch["labels"][b].tolist() == [row]
        assert batch["name"][b] == VIDEOS[row]
    gc.collect()    # the oracle's PyAV garbage, before a later fork (see _collect_before_fork)
    return batch["index"].tolist()


def test_loader_0_workers_exact_frames_every_row_once(ds, ds_info):
    loader = ds.pytorch(tensors=["videos", "boxes", "labels", "name"], clip=8, batch_size=3, shuffle=True,
                        size=SIZE, seed=0)
    assert isinstance(loader, torch.utils.data.DataLoader)
    rows = []
    for batch in loader:
        assert batch["videos"].shape[1:] == (8, *SIZE, 3)
        assert batch["frame_indices"].shape == batch["timestamps"].shape == (len(batch["index"]), 8)
        rows += check_batch(batch, ds_info[1])
        # boxes (ragged): one list per sample, one (k, 4) tensor per frame of the clip
        for b, row in enumerate(batch["index"].tolist()):
            for t, f in enumerate(batch["frame_indices"][b].tolist()):
                np.testing.assert_array_equal(batch["boxes"][b][t].numpy(), boxes_for(row, f + 1)[f])
    assert sorted(rows) == list(range(len(VIDEOS)))


def test_loader_2_workers_fork_same_clips_as_0_workers(ds, ds_info, request):
    if in_fresh_interpreter(request):
        return
    kw = {"tensors": ["videos", "labels", "name"], "clip": 6, "batch_size": 2, "shuffle": True, "size": SIZE,
          "seed": 7}
    ref_loader = ds.pytorch(num_workers=0, **kw)
    ref = [(b["index"].tolist(), b["frame_indices"].tolist()) for b in ref_loader]
    # the reference loader's readers stay open: the forked workers inherit them
    loader = ds.pytorch(num_workers=2, multiprocessing_context="fork", **kw)
    got = []
    for batch in loader:
        check_batch(batch, ds_info[1])
        got.append((batch["index"].tolist(), batch["frame_indices"].tolist()))
    assert got == ref   # the epoch is the same whatever the number of workers
    # the next epoch draws other clips, reproducibly
    second = [(b["index"].tolist(), b["frame_indices"].tolist()) for b in loader]
    assert second != got


def test_reader_cache_inherited_through_fork(ds, ds_info, request):
    """A dataset whose readers are open in the parent is used by forked workers, which open their own."""
    if in_fresh_interpreter(request):
        return
    clips = vt.ClipDataset(ds, ["videos", "labels", "name"], clip=4, size=SIZE, seed=1)
    clips[0], clips[3]          # readers open here, in the parent
    parent = dict(clips.cache._readers)
    assert len(parent) == 2
    loader = torch.utils.data.DataLoader(clips, batch_size=2, num_workers=2, collate_fn=vt.collate,
                                         multiprocessing_context="fork")
    for batch in loader:
        check_batch(batch, ds_info[1])
    assert dict(clips.cache._readers) == parent          # the parent's cache is untouched
    for r in parent.values():
        assert len(r.get_frames([0])) == 1               # and its readers still work


def test_fork_workers_over_epochs_with_inherited_readers(ds, ds_info, request):
    """Stress: 2 fork workers, 3 epochs (new workers each), every worker starting with a garbage
    collection that frees readers inherited from the parent (open in its cache, and left in a
    reference cycle); a hang fails the test after 120 s instead of blocking the suite."""
    if in_fresh_interpreter(request, timeout=120):
        return
    clips = vt.ClipDataset(ds, ["videos", "labels", "name"], clip=3, size=SIZE, seed=11, decode_threads=2)
    for i in range(len(clips)):
        clips[i]                               # a frame-threaded reader per row, open in the parent
    cycle: list = [vidlake.VideoReader(ds_info[1][2], threads=2)]
    cycle[0].get_frames([0, 9, 30])
    cycle.append(cycle)                        # garbage for the workers' collector
    del cycle
    loader = torch.utils.data.DataLoader(clips, batch_size=2, num_workers=2, collate_fn=vt.collate,
                                         multiprocessing_context="fork", worker_init_fn=lambda _: gc.collect())
    for epoch in range(3):
        clips.set_epoch(epoch)
        rows = []
        for batch in loader:
            rows += check_batch(batch, ds_info[1])
        assert sorted(rows) == list(range(len(VIDEOS)))


def test_prefetch_pool_same_batches_as_python_thread_and_bounded(ds, ds_info):
    """num_workers=0: the C++ decode pool hands out exactly the batches of the Python-thread
    path, and never holds more clips than its bound (a counter, not a timing)."""
    kw = {"tensors": ["videos", "labels", "name"], "clip": vt.ClipSpec(num_frames=5, clips_per_video=3),
          "batch_size": 3, "shuffle": True, "size": SIZE, "seed": 8, "prefetch": 2}
    pooled = ds.pytorch(**kw)
    python = ds.pytorch(prefetch_threads=0, **kw)
    got = list(pooled)
    ref = list(python)
    assert pooled.prefetcher is not None
    assert python.prefetcher is None
    assert len(got) == len(ref) == 4
    for a, b in zip(got, ref):
        assert torch.equal(a["videos"], b["videos"])
        assert torch.equal(a["frame_indices"], b["frame_indices"])
        assert a["index"].tolist() == b["index"].tolist()
        check_batch(a, ds_info[1])
    st = pooled.prefetcher.stats
    assert st["capacity"] == 3 * (2 + 1)
    assert st["submitted"] == 12
    assert st["peak_pending"] <= st["capacity"]
    assert st["pending"] == st["uncollected"] == 0
    # stopped after one batch: the clips still decoding are collected, none left behind
    for _ in zip(range(1), pooled):
        pass
    st = pooled.prefetcher.stats
    assert st["pending"] == st["uncollected"] == 0
    assert st["submitted"] == 12 + 9


@pytest.mark.parametrize("nchw", [False, True])
def test_frames_decoded_into_the_batch_tensor_without_copy(ds, ds_info, nchw):
    loader = ds.pytorch(tensors=["videos", "labels", "name"], clip=5, batch_size=4, size=SIZE, seed=3,
                        dimension_order="NCHW" if nchw else "NHWC")
    batch = next(iter(loader))
    v = batch["videos"]
    if nchw:
        assert v.shape == (4, 5, 3, *SIZE)
        assert not v.is_contiguous()
        assert v.permute(0, 1, 3, 4, 2).is_contiguous()
    else:
        assert v.shape == (4, 5, *SIZE, 3)
        assert v.is_contiguous()
    check_batch(batch, ds_info[1], nchw=nchw)


def test_aligned_boxes_padded_with_mask(ds):
    loader = ds.pytorch(tensors=["videos", "boxes"], clip=7, batch_size=4, size=SIZE, seed=2, ragged="pad")
    batch = next(iter(loader))
    boxes, mask = batch["boxes"], batch["boxes_mask"]
    assert boxes.shape == (4, 7, 2, 4)
    assert mask.shape == (4, 7, 2)
    assert mask.dtype == torch.bool
    for b, row in enumerate(batch["index"].tolist()):
        for t, f in enumerate(batch["frame_indices"][b].tolist()):
            k = (f + row) % 3
            assert mask[b, t].tolist() == [True] * k + [False] * (2 - k)
            np.testing.assert_array_equal(boxes[b, t, :k].numpy(), boxes_for(row, f + 1)[f])
            assert (boxes[b, t, k:] == 0).all()


def test_whole_video_samples_and_transform(ds, ds_info):
    loader = ds.pytorch(tensors=["videos", "boxes"], batch_size=1, rows=[1])
    (batch,) = list(loader)
    n = len(vidlake.VideoReader(ds_info[1][1]))
    assert batch["videos"].shape == (1, n, 240, 320, 3)
    assert len(batch["boxes"][0]) == n
    oracle.assert_batch_equal(batch["videos"][0].numpy(), oracle.stack(ds_info[1][1], range(n)), range(n), "whole")

    def transform(s):
        return {"x": s["videos"].float().mean(), "row": s["index"]}

    loader = ds.pytorch(clip=4, batch_size=2, size=SIZE, transform=transform, seed=0)
    batch = next(iter(loader))
    assert set(batch) == {"x", "row"}
    assert batch["x"].dtype == torch.float32
    assert batch["row"].shape == (2,)


def test_clip_dataset_map_style_and_epochs(ds, ds_info):
    clips = vt.ClipDataset(ds, ["videos", "labels"], clip=vt.ClipSpec(num_frames=3, clips_per_video=2), seed=4,
                           size=SIZE)
    assert len(clips) == 2 * len(VIDEOS)
    s = clips[5]                                      # row 2, its second clip
    assert s["index"] == 2
    assert s["videos"].shape == (3, *SIZE, 3)
    np.testing.assert_array_equal(clips[(0, 5)]["frame_indices"], s["frame_indices"])
    clips.set_epoch(1)
    assert not all(np.array_equal(clips[i]["frame_indices"], clips[(0, i)]["frame_indices"]) for i in range(8))
    reg = vt.ClipDataset(ds, ["videos"], clip={"num_frames": 2, "clips_per_video": 3, "sampler": "regular"})
    n = len(vidlake.VideoReader(ds_info[1][0]))
    starts = [reg[i]["frame_indices"][0].item() for i in range(3)]
    assert starts == np.linspace(0, n - 2, 3).astype(int).tolist()
    with pytest.raises(ValueError, match="exactly one video tensor"):
        vt.ClipDataset(ds, ["labels"], clip=2)
    with pytest.raises(ValueError, match="unknown field"):
        vt.ClipDataset(ds, clip={"frames": 2})


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_sharding_covers_every_item_once_per_epoch(ds, world_size, request):
    if in_fresh_interpreter(request):
        return
    num_workers = 2
    spec = vt.ClipSpec(num_frames=2, clips_per_video=5)        # 20 items
    seen = []
    rows = []
    for rank in range(world_size):
        it = vt.ClipIterable(ds, ["videos", "labels"], clip=spec, shuffle=True, seed=9, size=SIZE,
                             rank=rank, world_size=world_size)
        for w in range(num_workers):
            seen += it.shard(0, w, num_workers)
        # and for real: every clip handed out by the workers of this rank, in batches of 3
        it = vt.ClipIterable(ds, ["videos", "labels"], clip=spec, shuffle=True, seed=9, size=SIZE,
                             rank=rank, world_size=world_size, batch_size=3)
        loader = torch.utils.data.DataLoader(it, batch_size=None, num_workers=num_workers,
                                             multiprocessing_context="fork")
        rows += [int(i) for b in loader for i in b["index"]]
        del loader, it
        gc.collect()
    assert sorted(seen) == list(range(20))
    assert sorted(rows) == sorted([i // 5 for i in range(20)])


def test_iterable_batches_and_early_stop(ds, ds_info):
    it = vt.ClipIterable(ds, ["videos", "labels", "name"], clip=4, batch_size=3, shuffle=True, seed=5, size=SIZE,
                         prefetch=2)
    assert len(it) == 2
    batches = list(it)
    assert [len(b["index"]) for b in batches] == [3, 1]
    for b in batches:
        check_batch(b, ds_info[1])
    before = threading.active_count()
    for _ in zip(range(1), ds.pytorch(clip=2, batch_size=1, size=SIZE, prefetch=2)):
        pass                                          # break after one batch: the prefetch thread ends
    gc.collect()
    assert threading.active_count() <= before
    loader = torch.utils.data.DataLoader(vt.ClipIterable(ds, ["videos", "labels"], clip=2, size=SIZE),
                                         batch_size=4, collate_fn=vt.collate)
    (b,) = list(loader)
    assert b["videos"].shape == (4, 2, *SIZE, 3)
    assert b["labels"].shape == (4, 1)


def test_reader_cache_obeys_its_byte_limit(ds, ds_info):
    t = ds.videos
    one = {row: vt.state_bytes(vidlake.VideoReader(p).metadata) for row, p in enumerate(ds_info[1])}
    limit = int(2.5 * max(one.values()))
    cache = vt.ReaderCache(max_bytes=limit)
    rng = np.random.default_rng(0)
    refs = []
    for _step in range(40):
        row = int(rng.integers(0, len(VIDEOS)))
        r = cache.get(t, row)
        refs.append(weakref.ref(r))
        n = len(r)
        r.get_frames(rng.integers(0, n, size=3))          # random reads park decoder states
        cache.settle()
        total = cache.total_bytes()
        assert total <= limit or len(cache) == 1, f"{total} bytes cached, limit {limit}"
        live = {id(x) for x in cache._readers.values()}
        for ref in refs:                                   # readers dropped by the cache hold no decoder
            x = ref()
            if x is not None and id(x) not in live:
                assert x.stats["decoders"] == 0
    info = cache.info()
    assert info["closed"] > 0
    assert info["opened"] > len(VIDEOS)
    assert info["bytes"] <= limit
    cache.clear()
    assert len(cache) == 0
    assert cache.total_bytes() == 0


def test_spawn_worker(ds, ds_info):
    ctx = multiprocessing.get_context("spawn")
    loader = ds.pytorch(tensors=["videos", "labels", "name"], clip=3, batch_size=2, size=SIZE, seed=0,
                        num_workers=1, multiprocessing_context=ctx, rows=[0, 3])
    rows = []
    for batch in loader:
        rows += check_batch(batch, ds_info[1])
    assert sorted(rows) == [0, 3]


def test_bad_arguments(ds):
    with pytest.raises(ValueError, match="batch_size"):
        ds.pytorch(batch_size=0)
    with pytest.raises(ValueError, match="ragged"):
        ds.pytorch(ragged="ragged")
    with pytest.raises(ValueError, match="dimension_order"):
        ds.pytorch(dimension_order="CHW")
    with pytest.raises(KeyError, match="no tensor 'nope'"):
        ds.pytorch(tensors=["videos", "nope"])
    with pytest.raises(ValueError, match="num_frames must be a positive int"):
        ds.pytorch(clip=0)
