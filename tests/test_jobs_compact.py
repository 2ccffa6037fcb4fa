"""Compaction (issue 16): bytes of rows replaced by upsert / scene updates are reclaimed; every
live row stays exact; a failure mid-compaction leaves the dataset as it was."""
from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
from helpers import video

import vidlake
from vidlake.jobs import compact, dead_bytes

writer_mod = importlib.import_module("vidlake.dataset.writer")   # vidlake.dataset is also the function
CLIPS = ["stub_h264.mp4", "carphone_distorted.mp4", "samplemp4.mp4", "video_0.mov"]


def _rows(ds):
    """Every row's stored bytes (data + packet index) per tensor, and some decoded frames."""
    out = {}
    for name, t in ds.tensors.items():
        for i in range(len(t)):
            e = t.entry(i)
            out[(name, i)] = (t.store.read_extents(e["data"]), t.store.read_extents(e.get("index", [])))
    frames = [ds.videos[i, [0]].numpy() for i in range(len(ds.videos))]
    return out, frames


def _chunk_bytes(root, tensor):
    d = root / tensor / "chunks"
    return sum(os.path.getsize(d / f) for f in os.listdir(d) if ".tmp-" not in f)


def _dataset(root):
    ds = vidlake.empty(root)
    with ds:
        # small chunks: the samples share chunks, so compaction must move live rows out of them
        ds.create_tensor("videos", htype="video", sample_compression="mp4", target_chunk_size=64_000)
        ds.create_tensor("reference_id", htype="text")
        ds.create_tensor("labels", htype="json")
    for k, c in enumerate(CLIPS[:3]):
        ds.append({"videos": vidlake.read(video(c)), "reference_id": f"r{k}", "labels": {"k": k}})
    # replace two rows: their old videos become dead bytes
    ds.upsert({"videos": vidlake.read(video(CLIPS[3])), "reference_id": "r0", "labels": {"k": 10}})
    ds.upsert({"videos": vidlake.read(video(CLIPS[0])), "reference_id": "r2", "labels": {"k": 12}})
    return ds


def test_compaction_keeps_live_rows_exact_and_frees_the_rest(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    ds = _dataset(root)
    before, frames = _rows(vidlake.load(root))
    dead = dead_bytes(ds)
    replaced = os.path.getsize(video(CLIPS[0])) + os.path.getsize(video(CLIPS[2]))
    assert dead["videos"] >= replaced
    stats = compact(ds, min_dead=0.05)
    assert stats["videos"]["victims"] >= 1
    assert stats["videos"]["rows_moved"] >= 1
    after, frames2 = _rows(vidlake.load(root))
    assert after == before                      # every live row: the same bytes
    for a, b in zip(frames, frames2):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(writer_mod, "GC_GRACE_SECONDS", -1.0)
    ds = vidlake.load(root)
    ds.labels.append({"k": 99})                 # the next commit deletes the emptied chunks
    ds.videos.append(vidlake.read(video(CLIPS[1])))
    ds.reference_id.append("r3")
    ds = vidlake.load(root)
    assert dead_bytes(ds)["videos"] == 0
    live = sum(n for i in range(len(ds.videos)) for e in ("data", "index")
               for _c, _o, n in ds.videos.entry(i)[e])
    assert _chunk_bytes(root, "videos") == live     # nothing but live bytes is left
    assert _rows(ds)[0][("videos", 0)] == before[("videos", 0)]


def test_a_failed_compaction_leaves_the_dataset_as_it_was(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    ds = _dataset(root)
    before, _frames = _rows(vidlake.load(root))
    meta_before = (root / "dataset_meta.json").read_bytes()
    dead = dead_bytes(ds)

    def refuse(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ds.provider, "put_if_tag", refuse)   # dies at the commit point
    with pytest.raises(vidlake.StorageError, match="unchanged"):
        compact(ds)
    monkeypatch.undo()
    assert (root / "dataset_meta.json").read_bytes() == meta_before
    again = vidlake.load(root)
    assert _rows(again)[0] == before
    # nothing was freed (the failed attempt may leave objects nobody names: harmless leftovers)
    assert all(dead_bytes(again)[k] >= dead[k] for k in dead)
    assert _rows(ds)[0] == before               # the in-memory dataset was rolled back too
    assert compact(ds)["videos"]["victims"] >= 1  # and can compact afterwards
    assert _rows(vidlake.load(root))[0] == before


def test_scene_updates_then_compaction(tmp_path):
    root = tmp_path / "scenes"
    ds = vidlake.scene_dataset(root)
    scenes = [vidlake.VideoScene(f"v{k}", video_location=video(c), metadata={"n": 0}) for k, c in enumerate(CLIPS[:2])]
    ds.append(scenes)
    for n in range(1, 4):
        ds.update_metadata({"v0": {"n": n}, "v1": {"n": -n}})
    assert dead_bytes(ds)["metadata"] > 0
    assert dead_bytes(ds)["frames"] == 0
    compact(ds, min_dead=0.01)
    ds = vidlake.scene_dataset(root)
    assert ds.scene("v0").metadata == {"n": 3}
    assert ds.scene("v1").metadata == {"n": -3}
    np.testing.assert_array_equal(ds.scene("v1").frames[0].numpy(), vidlake.VideoReader(video(CLIPS[1]))[0])


def test_table_segments_are_capped_so_a_commit_rewrites_a_bounded_number_of_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_mod, "MAX_SEGMENT_ROWS", 8)
    ds = vidlake.empty(tmp_path / "ds")
    ds.create_tensor("reference_id", htype="text")
    ds.create_tensor("n", htype="json")
    with ds:                                              # one commit of 30 rows: 4 segments
        for k in range(30):
            ds.append({"reference_id": f"r{k}", "n": k})
    segs = ds._meta["tensor_state"]["n"]["segments"]
    assert [s["count"] for s in segs] == [8, 8, 8, 6]
    for k in range(30, 61):                               # one row per commit: merged up to 8 only
        ds.append({"reference_id": f"r{k}", "n": k})
        counts = [s["count"] for s in ds._meta["tensor_state"]["n"]["segments"]]
        assert max(counts) <= 8
        assert sum(counts) == k + 1
    before = {s["id"] for s in ds._meta["tensor_state"]["n"]["segments"]}
    ds.upsert({"reference_id": "r13", "n": -13})          # rewrites the one segment holding row 13
    after = {s["id"] for s in ds._meta["tensor_state"]["n"]["segments"]}
    assert len(after - before) == 1
    ds = vidlake.load(tmp_path / "ds")
    assert [ds.n[i].numpy() for i in range(61)] == [(-13 if k == 13 else k) for k in range(61)]
