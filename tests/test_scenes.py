"""Scenes (issue 16): VideoScene / DatasetItem rules, scene datasets from videos and from frame
images read exactly, async jobs with status counts and errors, update=True/False by reference id
(a metadata-only update writes no video byte), metadata queries, remote fetching."""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import video
from PIL import Image
from remote_fixtures import http_server, moto_server, s3_bucket  # noqa: F401

import vidlake
from vidlake import DatasetItem, SceneError, VideoScene

CLIPS = ["stub_h264.mp4", "carphone_distorted.mp4", "samplemp4.mp4"]


def _images(d, n, seed=0, size=(24, 40)):
    """n PNG frames with distinct random pixels; returns their paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(d, exist_ok=True)
    out = []
    for k in range(n):
        p = os.path.join(d, f"f{k:03d}.png")
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(p)
        out.append(p)
    return out


def _items(paths, prefix):
    return [DatasetItem(p, f"{prefix}-frame-{k}", {"k": k, "raining": k % 2 == 0}) for k, p in enumerate(paths)]


# -- the scene objects ------------------------------------------------------------------------
def test_video_scene_needs_exactly_one_of_video_location_and_items():
    with pytest.raises(SceneError, match="exactly one of video_location"):
        VideoScene("s")
    with pytest.raises(SceneError, match="exactly one of video_location"):
        VideoScene("s", video_location="a.mp4", items=[])
    with pytest.raises(SceneError, match="reference_id"):
        VideoScene("", video_location="a.mp4")
    with pytest.raises(SceneError, match="metadata must be JSON"):
        VideoScene("s", video_location="a.mp4", metadata={"x": object()})
    with pytest.raises(SceneError, match="frame_rate"):
        VideoScene("s", video_location="a.mp4", frame_rate=0)
    with pytest.raises(SceneError, match=r"not a vidlake\.DatasetItem"):
        VideoScene("s", items=["a.jpg"])
    assert VideoScene("s", items=[]).items == []


def test_add_item_adds_updates_or_ignores_and_says_which():
    a, b, c = (DatasetItem(f"{x}.jpg", x) for x in "abc")
    s = VideoScene("s", items=[a, b])
    assert s.add_item(c, index=2) == "added"
    assert [i.reference_id for i in s.items] == ["a", "b", "c"]
    new = DatasetItem("a2.jpg", "a2")
    assert s.add_item(new, index=0) == "ignored"          # a collision without update=True
    assert s.items[0] is a
    assert s.add_item(new, index=0, update=True) == "updated"
    assert s.items[0] is new
    assert len(s.items) == 3
    with pytest.raises(SceneError, match=r"index must be an int in 0\.\.3"):
        s.add_item(c, index=5)
    with pytest.raises(SceneError, match="video scene"):
        VideoScene("v", video_location="a.mp4").add_item(c, index=0)
    many = VideoScene("long", items=[])                     # no cap on frames per scene
    for k in range(5000):
        many.add_item(DatasetItem("f.jpg", f"f{k}"), index=k)
    assert len(many.items) == 5000


def test_scene_json_round_trip():
    s = VideoScene("s", items=_items(["a.png", "b.png"], "s"), frame_rate=12.5, metadata={"w": [1, {"x": 2}]})
    assert VideoScene.from_json(s.to_json()) == s


# -- scene datasets ---------------------------------------------------------------------------
def test_video_scenes_read_exactly_like_video_samples(tmp_path):
    ds = vidlake.scene_dataset(tmp_path / "ds")
    scenes = [VideoScene(f"v{k}", video_location=video(c), metadata={"k": k}) for k, c in enumerate(CLIPS)]
    job = ds.append(scenes)
    st = job.status()
    assert st["state"] == "completed"
    assert st["done"] == 3
    assert st["failed"] == 0
    assert st["total"] == 3
    assert st["counts"] == {"appended": 3}
    assert st["bytes"] == sum(os.path.getsize(video(c)) for c in CLIPS)
    ds = vidlake.scene_dataset(tmp_path / "ds")               # reopened: everything is committed
    assert ds.kind == "video"
    assert ds.reference_ids == ["v0", "v1", "v2"]
    for k, c in enumerate(CLIPS):
        s = ds.scene(f"v{k}")
        r = vidlake.VideoReader(video(c))
        assert s.frames.shape == (len(r), *r[0].shape)
        assert s.metadata == {"k": k}
        assert s.items == []
        np.testing.assert_array_equal(s.frames[1:4].numpy(), r.get_frames([1, 2, 3]))
        np.testing.assert_allclose(s.frames[0:3].timestamp, np.asarray(r.timestamps[:3], np.float32))
        assert s.frame_rate == pytest.approx(ds.frames[k].sample_info["fps"])
        assert s.video_location == video(c)
    # the rows are ordinary tensors: the same frames through ds.frames
    np.testing.assert_array_equal(ds.frames[1, 2].numpy(), ds.scene("v1").frames[2].numpy())
    with pytest.raises(KeyError, match="no scene with reference_id 'nope'"):
        ds.scene("nope")


def test_image_scenes_keep_every_frame_exact(tmp_path):
    paths = _images(tmp_path / "img", 6)
    ds = vidlake.scene_dataset(tmp_path / "ds")
    sc = VideoScene("cam-1", items=_items(paths, "cam-1"), frame_rate=10, metadata={"site": "a"})
    assert ds.append([sc], asynchronous=True).sleep_until_complete()["done"] == 1
    ds = vidlake.scene_dataset(tmp_path / "ds")
    s = ds.scene("cam-1")
    want = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    assert ds.kind == "images"
    assert ds.frames.htype == "sequence[image]"
    np.testing.assert_array_equal(s.frames.numpy(), want)
    np.testing.assert_array_equal(s.frames[2:5].numpy(), want[2:5])
    np.testing.assert_array_equal(s.frames[3].numpy(), want[3])
    np.testing.assert_allclose(s.frames[2:5].timestamp, np.array([0.2, 0.3, 0.4], np.float32))
    assert s.frames.shape == (6, 24, 40, 3)
    assert len(s.frames) == 6
    assert s.items == sc.items
    assert s.metadata == {"site": "a"}
    assert s.frame_rate == 10.0
    for k, p in enumerate(paths):  # stored byte for byte
        stored = ds.frames[0, k]._fetch(np.array([k]))[0]
        assert stored == Path(p).read_bytes()
    # a scene of another kind is refused, with nothing written
    job = ds.append([VideoScene("v", video_location=video(CLIPS[0]))])
    assert job.status()["failed"] == 1
    assert "holds images scenes" in job.errors()[0]["cause"]
    assert len(vidlake.load(tmp_path / "ds")) == 1


def test_async_job_counts_and_failures_leave_no_half_scene(tmp_path):
    paths = _images(tmp_path / "img", 4)
    broken = tmp_path / "img" / "broken.png"
    broken.write_bytes(b"not an image at all")
    ds = vidlake.scene_dataset(tmp_path / "ds")
    scenes = [VideoScene(f"s{k}", items=_items(paths, f"s{k}"), frame_rate=5) for k in range(5)]
    scenes[1].items[2] = DatasetItem(str(broken), "bad-frame")                       # undecodable frame
    scenes[3].items[0] = DatasetItem(str(tmp_path / "missing.png"), "missing-frame")  # no such file
    job = ds.append(scenes, asynchronous=True, batch_size=2)
    st = job.sleep_until_complete(timeout=60)
    assert st["state"] == "completed"
    assert (st["done"], st["failed"], st["skipped"], st["total"]) == (3, 2, 0, 5)
    errs = {e["reference_id"]: e["cause"] for e in job.errors()}
    assert set(errs) == {"s1", "s3"}
    assert "broken.png" in errs["s1"]
    assert "missing.png" in errs["s3"]
    assert st["errors"] == job.errors()
    assert st["rate"] > 0
    assert st["bytes"] > 0
    ds = vidlake.load(tmp_path / "ds")
    assert ds.reference_id.numpy(aslist=True) == ["s0", "s2", "s4"]           # no half-written scene
    assert {len(t) for t in ds.tensors.values()} == {3}


def test_duplicate_reference_ids_in_one_call_are_refused(tmp_path):
    ds = vidlake.scene_dataset(tmp_path / "ds")
    with pytest.raises(SceneError, match="given twice"):
        ds.append([VideoScene("a", video_location=video(CLIPS[0])), VideoScene("a", video_location=video(CLIPS[1]))])


def _count_writes(ds, monkeypatch):
    """Bytes written per object key prefix (tensor name), counted at the provider."""
    written: dict[str, int] = {}
    p = ds.provider

    def count(key, n):
        top = key.split("/")[0]
        written[top] = written.get(top, 0) + n

    real_put, real_parts, real_append = p.put, p.write_parts, p.append

    def put(key, data, *a, **kw):
        count(key, len(data))
        return real_put(key, data, *a, **kw)

    def write_parts(key, parts, offset, *a, **kw):
        count(key, sum(len(x) for x in parts))
        return real_parts(key, parts, offset, *a, **kw)

    def append(key, data, offset, *a, **kw):
        count(key, len(data))
        return real_append(key, data, offset, *a, **kw)

    monkeypatch.setattr(p, "put", put)
    monkeypatch.setattr(p, "write_parts", write_parts)
    monkeypatch.setattr(p, "append", append)
    return written


def test_update_true_replaces_metadata_without_rewriting_video(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    ds = vidlake.scene_dataset(root)
    scenes = [VideoScene(f"v{k}", video_location=video(c), metadata={"w": "sun"}) for k, c in enumerate(CLIPS)]
    ds.append(scenes)
    chunks_before = sorted(os.listdir(root / "frames" / "chunks"))
    sizes_before = {c: os.path.getsize(root / "frames" / "chunks" / c) for c in chunks_before}
    written = _count_writes(ds, monkeypatch)
    scenes[2].metadata = {"w": "rain", "n": 1}
    job = ds.append(scenes, update=True)
    assert job.status()["counts"] == {"unchanged": 2, "updated": 1}
    assert "frames" not in written                                          # not a byte of video
    assert "content_hash" not in written
    assert written.get("metadata", 0) > 0
    assert sum(written.values()) < 20_000
    assert sorted(os.listdir(root / "frames" / "chunks")) == chunks_before
    assert {c: os.path.getsize(root / "frames" / "chunks" / c) for c in chunks_before} == sizes_before
    ds = vidlake.scene_dataset(root)
    assert ds.scene("v2").metadata == {"w": "rain", "n": 1}
    assert ds.scene("v0").metadata == {"w": "sun"}
    assert ds.query_metadata(w="rain") == ["v2"]
    # update=False: existing reference ids are skipped and reported
    scenes[0].metadata = {"w": "fog"}
    st = ds.append(scenes, update=False).status()
    assert (st["skipped"], st["done"], st["counts"]) == (3, 0, {"skipped": 3})
    assert vidlake.scene_dataset(root).scene("v0").metadata == {"w": "sun"}
    # update_metadata: no fetch, no frames
    written.clear()
    assert ds.update_metadata({"v0": {"w": "fog"}, "v1": {"w": "sun"}}) == 1
    assert set(written) <= {"metadata", "dataset_meta.json"}
    assert vidlake.scene_dataset(root).scene("v0").metadata == {"w": "fog"}


def test_update_with_new_frames_rewrites_them(tmp_path):
    root = tmp_path / "ds"
    src = tmp_path / "clip.mp4"
    shutil.copy(video(CLIPS[0]), src)
    ds = vidlake.scene_dataset(root)
    ds.append([VideoScene("v", video_location=str(src))])
    shutil.copy(video(CLIPS[1]), src)                          # same location, new content
    assert ds.append([VideoScene("v", video_location=str(src))], update=True).status()["counts"] == {"updated": 1}
    ds = vidlake.scene_dataset(root)
    assert len(ds) == 1
    want = vidlake.VideoReader(video(CLIPS[1]))
    np.testing.assert_array_equal(ds.scene("v").frames[0:2].numpy(), want.get_frames([0, 1]))
    assert ds.scene("v").frame_rate == pytest.approx(ds.frames[0].sample_info["fps"])


def test_items_update_by_reference_id(tmp_path):
    paths = _images(tmp_path / "img", 3)
    ds = vidlake.scene_dataset(tmp_path / "ds")
    sc = VideoScene("s", items=_items(paths, "s"), frame_rate=30)
    ds.append([sc])
    sc.add_item(DatasetItem(paths[1], "s-frame-1", {"k": 1, "label": "car"}), index=1, update=True)
    assert ds.append([sc], update=True).status()["counts"] == {"updated": 1}
    ds = vidlake.scene_dataset(tmp_path / "ds")
    items = ds.scene("s").items
    assert items[1].metadata == {"k": 1, "label": "car"}
    assert items[0].metadata == {"k": 0, "raining": True}
    extra = _images(tmp_path / "img2", 1, seed=5)
    sc.add_item(DatasetItem(extra[0], "s-frame-3"), index=3)   # one more frame: frames change too
    ds.append([sc], update=True)
    ds = vidlake.scene_dataset(tmp_path / "ds")
    assert ds.scene("s").frames.shape[0] == 4
    assert len(ds.scene("s").items) == 4


def test_query_metadata_and_filter(tmp_path):
    ds = vidlake.scene_dataset(tmp_path / "ds")
    paths = _images(tmp_path / "img", 1)
    mds = [{"speed": k, "weather": ["rain", "sun", "fog"][k % 3], "cam": {"id": k % 2}} for k in range(12)]
    mds[5] = {"weather": "rain"}                                  # no speed
    ds.append([VideoScene(f"s{k}", items=_items(paths, f"s{k}"), metadata=md) for k, md in enumerate(mds)])
    ref = [f"s{k}" for k in range(12)]

    def brute(pred):
        return [r for r, md in zip(ref, mds) if pred(md)]

    assert ds.query_metadata(weather="rain") == brute(lambda m: m["weather"] == "rain")
    assert ds.query_metadata({"speed": {">": 3, "<=": 9}}) == brute(lambda m: 3 < m.get("speed", -1) <= 9)
    assert ds.query_metadata({"speed": {">=": 4.0}}) == brute(lambda m: m.get("speed", -1) >= 4)
    assert ds.query_metadata({"speed": {"<": 2}}) == ["s0", "s1"]
    assert ds.query_metadata({"cam.id": 1, "weather": {"in": ["sun", "fog"]}}) == \
        brute(lambda m: m.get("cam", {}).get("id") == 1 and m["weather"] in ("sun", "fog"))
    # rows without the field (s5): the language query_items shares (exists False used to match nothing)
    assert ds.query_metadata({"speed": {"exists": False}}) == brute(lambda m: "speed" not in m) == ["s5"]
    assert ds.query_metadata({"speed": {"exists": True}}) == brute(lambda m: "speed" in m)
    assert ds.query_metadata({"weather": {"!=": "rain"}}) == brute(lambda m: m["weather"] != "rain")
    assert ds.query_metadata({"weather": {"not in": ["rain"]}}) == brute(lambda m: m["weather"] != "rain")
    view = ds.filter(weather="fog")
    assert view.reference_id.numpy(aslist=True) == brute(lambda m: m["weather"] == "fog")
    assert len(ds.filter(lambda row: row.reference_id.numpy() == "s3")) == 1
    # the index follows updates
    ds.update_metadata({"s0": {"weather": "snow", "speed": 100}})
    assert ds.query_metadata(weather="snow") == ["s0"]
    assert "s0" not in ds.query_metadata(weather="rain")
    assert ds.query_metadata({"speed": {">": 50}}) == ["s0"]
    with pytest.raises(SceneError, match="takes a list"):
        ds.query_metadata({"speed": {"in": 3}})
    # a fresh load answers the same
    assert vidlake.scene_dataset(tmp_path / "ds").query_metadata({"speed": {">": 50}}) == ["s0"]


def test_cancel_stops_between_batches(tmp_path):
    paths = _images(tmp_path / "img", 2)
    gate = threading.Event()
    ds = vidlake.scene_dataset(tmp_path / "ds")
    scenes = [VideoScene(f"s{k}", items=_items(paths, f"s{k}")) for k in range(6)]
    job = ds.append(scenes, batch_size=2, asynchronous=True)
    job.on_progress.append(lambda j: gate.set())
    gate.wait(30)
    job.cancel()
    st = job.sleep_until_complete(timeout=60)
    assert st["state"] in ("cancelled", "completed")
    n = len(vidlake.load(tmp_path / "ds"))
    assert n == st["done"]
    assert n % 2 == 0
    if st["state"] == "cancelled":                            # the rest comes with resume_job
        assert ds.resume_job(job.id).status()["done"] == 6
        assert vidlake.load(tmp_path / "ds").reference_id.numpy(aslist=True) == [s.reference_id for s in scenes]


# -- remote frames and videos -----------------------------------------------------------------
def test_remote_images_over_http_and_video_on_s3(tmp_path, http_server, moto_server, s3_bucket):  # noqa: F811
    paths = _images(tmp_path / "img", 4, seed=3)
    urls = [http_server.add(f"sc/{os.path.basename(p)}", Path(p).read_bytes()) for p in paths]
    missing = f"{http_server.url}/sc/none.png"
    s3 = moto_server.client()
    s3.upload_file(video(CLIPS[1]), s3_bucket, "vids/a.mp4")
    creds = moto_server.creds()
    ds = vidlake.scene_dataset(tmp_path / "imgs")
    job = ds.append([VideoScene("web", items=_items(urls, "web"), frame_rate=4),
                     VideoScene("bad", items=_items([urls[0], missing], "bad"))], fetch_workers=3)
    st = job.status()
    assert st["done"] == 1
    assert st["failed"] == 1
    assert "none.png" in job.errors()[0]["cause"]
    want = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    np.testing.assert_array_equal(vidlake.scene_dataset(tmp_path / "imgs").scene("web").frames.numpy(), want)
    assert vidlake.scene_dataset(tmp_path / "imgs").scene("web").items[0].image_location == urls[0]
    vds = vidlake.scene_dataset(tmp_path / "vids")
    st = vds.append([VideoScene("s3", video_location=f"s3://{s3_bucket}/vids/a.mp4", metadata={"x": 1})],
                    creds=creds).status()
    assert st["done"] == 1, st
    s = vidlake.scene_dataset(tmp_path / "vids").scene("s3")
    r = vidlake.VideoReader(video(CLIPS[1]))
    np.testing.assert_array_equal(s.frames[[0, 5]].numpy(), r.get_frames([0, 5]))
    stored = vds.frames[0]
    assert stored.sample_info["filename"] == f"s3://{s3_bucket}/vids/a.mp4"
    digest = hashlib.blake2b(Path(video(CLIPS[1])).read_bytes(), digest_size=32).hexdigest()
    assert vds.content_hash[0].numpy() == digest


def test_a_metadata_query_after_a_load_reads_no_content_hash(tmp_path):
    """Queries need reference ids and metadata only; the content hashes (for updates) are read
    on the first update that compares one, and the update still skips unchanged frames."""
    from vidlake.scenes.dataset import SceneDataset
    from vidlake.storage import get_provider

    path = str(tmp_path / "ds")
    ds = vidlake.scene_dataset(path)
    ds.append([VideoScene(f"v{k}", video_location=video(c), metadata={"k": k})
               for k, c in enumerate(CLIPS)], asynchronous=False)

    provider = get_provider(path)
    reads: list[str] = []
    real = provider.get

    def get(key, *a, **kw):
        reads.append(key)
        return real(key, *a, **kw)

    provider.get = get
    d = SceneDataset(provider, path)
    assert d.query_metadata(k=1) == ["v1"]
    assert any(k.startswith("metadata/tables/") for k in reads)
    assert not [k for k in reads if k.startswith("content_hash/tables/")]
    frames_before = d["frames"].entry(0)["data"]
    job = d.append([VideoScene("v0", video_location=video(CLIPS[0]), metadata={"k": 10})],
                   update=True, asynchronous=False)
    assert job.status()["state"] == "completed"
    assert [k for k in reads if k.startswith("content_hash/tables/")], "the update compared no hash"
    fresh = vidlake.scene_dataset(path, read_only=True)
    assert fresh.scene("v0").metadata == {"k": 10}
    assert fresh["frames"].entry(0)["data"] == frames_before, "a metadata-only update rewrote frames"
    assert fresh.query_metadata(k=10) == ["v0"]
