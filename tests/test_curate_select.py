"""vidlake.select (vidlake.curate): k-center on known answers, determinism, strategies, hooks,
stored embeddings, dataset sources, and the default embedding against random on real scenes."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from helpers import video

import vidlake
from vidlake.curate import default_embed, farthest_point, torch_embedder

FFMPEG = shutil.which("ffmpeg")
CLIPS = ["bikes.mp4", "dash_video4.webm", "flipping_a_pancake.mkv"]


def _clusters(seed: int = 0, per: int = 20, k: int = 5, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(k, d, dtype=np.float32) * 100
    labels = np.repeat(np.arange(k), per)
    pts = centres[labels] + rng.normal(0, 0.5, (k * per, d)).astype(np.float32)
    perm = rng.permutation(len(pts))
    return pts[perm], labels[perm]


def test_farthest_point_known_answers():
    pts = np.array([[0, 0], [0.1, 0], [5, 5], [10, 0]], np.float32)
    rows, scores = farthest_point(pts, 3, first=0)
    np.testing.assert_array_equal(rows, [0, 3, 2])
    np.testing.assert_allclose(scores, [10, 10, np.hypot(5, 5)], rtol=1e-6)
    # five far-apart clusters: five picks take one each, whatever the seed
    emb, labels = _clusters()
    for seed in range(10):
        rows, scores = farthest_point(emb, 5, seed=seed)
        assert sorted(labels[rows].tolist()) == [0, 1, 2, 3, 4]
        assert np.all(np.diff(scores[1:]) <= 1e-6)  # greedy gains never grow
        assert scores[-1] > 100  # every pick is a new cluster (centres are 141 apart)
    # the sixth pick is inside a cluster: its gain is small
    assert farthest_point(emb, 6, seed=0)[1][-1] < 5
    # at most 1 per group; weight 0 is never picked; k beyond the allowed rows stops early
    rows, _ = farthest_point(emb, 5, seed=0, groups=labels, per_group=1)
    assert sorted(labels[rows].tolist()) == [0, 1, 2, 3, 4]
    w = (labels != 2).astype(np.float32)
    rows, _ = farthest_point(emb, 10, seed=1, weights=w)
    assert 2 not in labels[rows].tolist()
    assert len(farthest_point(emb, 500, seed=0, groups=labels, per_group=3)[0]) == 15
    assert len(farthest_point(emb, 0)[0]) == 0


def test_select_is_deterministic_and_balanced():
    paths = [video(c) for c in CLIPS]
    a = vidlake.select(paths, n_samples=12, seed=3, workers=0, progress=False)
    b = vidlake.select(paths, n_samples=12, seed=3, workers=2, progress=False)  # in a process pool
    np.testing.assert_array_equal(a.video, b.video)
    np.testing.assert_array_equal(a.frame, b.frame)
    np.testing.assert_array_equal(a.score, b.score)
    assert len(a) == 12
    assert a.stats["candidates"] == 10 + 33 + 11  # 1 per second: 10 s, 32.5 s, 10.3 s
    r = vidlake.VideoReader(paths[1])
    rec = a.records()[0]
    assert set(rec) == {"video", "source", "frame", "timestamp", "score"}
    assert rec["source"] == paths[rec["video"]]
    if rec["video"] == 1:
        assert rec["timestamp"] == pytest.approx(float(r.timestamps[rec["frame"]]))
    capped = vidlake.select(paths, n_samples=12, seed=3, per_video=2, workers=0, progress=False)
    assert len(capped) == 6
    assert np.bincount(capped.video).tolist() == [2, 2, 2]
    # random: seeded, weighted, capped
    r1 = vidlake.select(paths, n_samples=8, strategy="random", seed=1, workers=0, progress=False)
    r2 = vidlake.select(paths, n_samples=8, strategy="random", seed=1, workers=0, progress=False)
    r3 = vidlake.select(paths, n_samples=8, strategy="random", seed=2, workers=0, progress=False)
    np.testing.assert_array_equal(r1.frame, r2.frame)
    assert (r1.video.tolist(), r1.frame.tolist()) != (r3.video.tolist(), r3.frame.tolist())
    only_first = vidlake.select(paths, n_samples=8, strategy="random", workers=0, progress=False,
                                weights=lambda info: np.full(len(info["frames"]), float(info["video"] == 0)))
    assert set(only_first.video.tolist()) == {0}
    assert len(only_first) == 8
    no_bikes = vidlake.select(paths, n_samples=5, workers=0, progress=False,
                              filter=lambda info: info["codec"] != "h264")
    assert set(no_bikes.video.tolist()) == {1}
    with pytest.raises(ValueError, match="strategy"):
        vidlake.select(paths, strategy="best")
    with pytest.raises(ValueError, match="n_samples"):
        vidlake.select(paths, n_samples=-1)


def test_uniform_is_even_in_time():
    p = video("dash_video4.webm")  # 812 frames at 25 fps
    sel = vidlake.select([p], n_samples=8, strategy="uniform", candidates="all", workers=0, progress=False)
    ts = np.sort(sel.timestamp)
    gaps = np.diff(ts)
    assert len(ts) == 8
    assert gaps.max() - gaps.min() < 0.1  # evenly spaced to a frame or two
    assert ts[0] == pytest.approx(812 / 25 / 16, abs=0.1)


def test_embed_hook_torch_model_and_stored_embeddings(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is needed for the CPU model example")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
    embed = torch_embedder(net, size=(64, 64), name="tiny-cnn")
    calls = []

    def counting(frames):
        calls.append(frames.shape)
        return embed(frames)

    counting.size = (64, 64)
    counting.name = "tiny-cnn"
    paths = [video(c) for c in CLIPS[:2]]
    cache = tmp_path / "emb"
    a = vidlake.select(paths, n_samples=6, embeddings=counting, cache=cache, workers=0, progress=False)
    assert calls
    assert all(s[1:] == (64, 64, 3) for s in calls)  # frames decoded at the embedding size
    assert a.embeddings is not None
    assert [e.shape for e in a.embeddings] == [(10, 32), (33, 32)]
    assert len(list(cache.iterdir())) == 2
    calls.clear()
    b = vidlake.select(paths, n_samples=6, embeddings=counting, cache=cache, workers=0, progress=False)
    assert calls == []  # every video's embeddings came from the store
    assert b.stats["reused"] == 2
    np.testing.assert_array_equal(a.frame, b.frame)
    # another candidate rule is another key; precomputed arrays are taken as they are
    c = vidlake.select(paths, n_samples=6, embeddings=counting, cache=cache, candidates="every:50",
                       workers=0, progress=False)
    assert calls
    assert len(list(cache.iterdir())) == 4
    d = vidlake.select(paths, n_samples=6, embeddings=c.embeddings, candidates="every:50", workers=0,
                       progress=False)
    np.testing.assert_array_equal(c.frame, d.frame)
    with pytest.raises(ValueError, match="rows"):
        vidlake.select(paths, n_samples=6, embeddings=c.embeddings, workers=0, progress=False)


def test_dataset_tensor_source_store_and_reuse(tmp_path):
    ds = vidlake.empty(tmp_path / "ds")
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    with ds:
        ds.videos.append(vidlake.read(video("bikes.mp4")))
        ds.videos.append(vidlake.read(video("samplemp4.mp4")))
    sel = ds.videos.select(n_samples=5, candidates="every:25", cache=ds, workers=0, progress=False)
    assert len(sel) == 5
    assert {r["tensor"] for r in sel.records()} == {"videos"}
    assert set(ds.tensors) >= {"curate_keys", "curate_frames", "curate_embeddings"}
    assert len(ds.curate_embeddings) == 2
    np.testing.assert_array_equal(ds.curate_frames[0].numpy(), np.arange(0, 250, 25))
    assert ds.curate_embeddings[1].numpy().shape == (16, 160)
    again = vidlake.load(tmp_path / "ds").videos.select(n_samples=5, candidates="every:25",
                                                         cache=vidlake.load(tmp_path / "ds"),
                                                         workers=0, progress=False)
    assert again.stats["reused"] == 2
    np.testing.assert_array_equal(again.frame, sel.frame)
    t = sel.to_dataset(ds, "selection")
    assert len(t) == 5
    back = vidlake.load(tmp_path / "ds").selection.numpy(aslist=True)
    assert [b["frame"] for b in back] == sel.frame.tolist()
    # the selected frames are the dataset's frames
    got = sel.frames(aslist=True)
    for i, rec in enumerate(sel.records()):
        np.testing.assert_array_equal(got[i], ds.videos[rec["sample"], rec["frame"]].numpy())


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """A real clip of four visibly different scenes (1.6 s each of four real videos, 10 fps)."""
    if FFMPEG is None:
        pytest.skip("the ffmpeg CLI is needed to make the scenes clip")
    out = tmp_path_factory.mktemp("scenes") / "scenes.mp4"
    names = ["vp90-2-2pass-akiyo.webm", "bulk-water.mov", "flipping_a_pancake.mkv", "dash_video4.webm"]
    inputs = [a for n in names for a in ("-i", video(n))]
    parts = ";".join(f"[{i}:v]trim=0:1.6,setpts=PTS-STARTPTS,scale=160:96,setsar=1,fps=10[v{i}]"
                     for i in range(4))
    graph = parts + ";" + "".join(f"[v{i}]" for i in range(4)) + "concat=n=4:v=1[v]"
    subprocess.run([FFMPEG, "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[v]",
                    "-c:v", "libx264", "-g", "8", "-pix_fmt", "yuv420p", str(out)], check=True, timeout=120)
    return str(out)


def test_default_embedding_separates_scenes_better_than_random(scenes):
    r = vidlake.VideoReader(scenes)
    assert len(r) == 64
    scene_of = (np.asarray(r.timestamps) // 1.6).astype(int)  # 16 frames per scene
    first = vidlake.select([scenes], n_samples=4, candidates="all", workers=0, progress=False)
    covered = []
    for seed in range(10):
        s = vidlake.select([scenes], n_samples=4, candidates="all", seed=seed, embeddings=first.embeddings,
                           workers=0, progress=False)
        covered.append(len(set(scene_of[s.frame].tolist())))
    rand = [len(set(scene_of[vidlake.select([scenes], n_samples=4, strategy="random", candidates="all", seed=seed,
                                            workers=0, progress=False).frame].tolist()))
            for seed in range(100)]
    assert min(covered) == 4  # four picks, four scenes, from any start
    assert np.mean(rand) < 3.2  # random: 2.8 expected (4 * (1 - C(48,4)/C(64,4)))
    # the embedding itself: frames of one scene are closer than frames of different scenes
    emb = default_embed(r.get_frames(np.arange(64), size=(64, 64)))
    norms = np.linalg.norm(emb, axis=1)
    assert np.all(norms <= 1 + 1e-5)
    assert np.mean(np.abs(norms - 1) < 1e-5) > 0.9  # a flat frame has no layout or texture block
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    same = scene_of[:, None] == scene_of[None]
    assert d[same].mean() * 3 < d[~same].mean()


def test_link_tensor_source_names_the_linked_url(tmp_path):
    ds = vidlake.empty(tmp_path / "ds", allow_local_links=True)
    ds.create_tensor("links", htype="link[video]")
    with ds:
        ds.links.append(vidlake.link(video("bikes.mp4")))
    sel = ds.links.select(n_samples=3, candidates="every:50", workers=0, progress=False)
    assert {r["source"] for r in sel.records()} == {video("bikes.mp4")}
    assert {r["sample"] for r in sel.records()} == {0}
    res = vidlake.export_frames(sel, tmp_path / "out", progress=False)
    assert all(f.startswith("bikes_f") for f in res.files)


def test_pool_after_torch_in_the_parent_does_not_hang(tmp_path):
    """A parent that already ran torch ops forks the selection pool: each worker runs torch with one
    thread (as DataLoader workers do); before, the first conv in a worker hung on the parent's pool.
    Run in a fresh interpreter under a timeout, so a hang fails instead of stalling the suite."""
    pytest.importorskip("torch")
    import subprocess
    import sys

    from assets import VIDEO_DIR

    files = [str(VIDEO_DIR / n) for n in ("samplemp4.mp4", "bikes.mp4", "bulk-water.mov")]
    script = tmp_path / "fork_torch.py"
    script.write_text(
        "import sys, torch, vidlake\n"
        "from vidlake.curate import torch_embedder\n"
        "torch.nn.functional.conv2d(torch.randn(64, 3, 224, 224), torch.randn(16, 3, 5, 5))\n"
        "net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 5, stride=4), torch.nn.ReLU(),\n"
        "                          torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())\n"
        "embed = torch_embedder(net, size=(112, 112), name='t')\n"
        f"sel = vidlake.select({files!r}, n_samples=5, embeddings=embed, workers=2, progress=False)\n"
        "print('selected', len(sel))\n")
    try:
        res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("vidlake.select's process pool hung after torch ran in the parent")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "selected 5" in res.stdout
