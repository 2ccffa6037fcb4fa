"""One dataset test body, four storage backends: memory, a local folder, S3 (moto in server
mode on 127.0.0.1) and GCS (gcp-storage-emulator on 127.0.0.1). Plus the remote-only cases, on
S3 and on GCS: a commit whose metadata PUT fails, the bytes a one-frame read of a remote dataset
sample moves (counted at the server side by a TCP proxy), growing a large open chunk.
"""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import numpy as np
import pytest
from helpers import video

import vidlake
from vidlake import _core

pytestmark = pytest.mark.timeout(120)

VIDEOS = ["samplemp4.mp4", "bikes.mp4", "carphone_distorted.mp4"]
INFO_KEYS = {"duration", "fps", "timebase", "shape", "format", "filename", "modified"}
SLACK = 512 * 1024



@pytest.fixture(params=["memory", "local", "s3", "gcs"])
def backend(request, tmp_path):
    """(dataset path, creds) on each backend; S3 is a fresh bucket on the moto server, GCS one on
    the GCS emulator."""
    if request.param == "memory":
        return f"mem://backends-{uuid.uuid4().hex}", None
    if request.param == "local":
        return str(tmp_path / "ds"), None
    if request.param == "gcs":
        gcs = request.getfixturevalue("gcs_server")
        return f"gs://{request.getfixturevalue('gcs_bucket')}/datasets/ds", gcs.creds()
    moto = request.getfixturevalue("moto_server")
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/datasets/ds", moto.creds()


def snapshot(path: str, creds) -> dict[str, str]:
    """Every object of the dataset (through its provider) with a hash of its bytes."""
    p = vidlake.storage.get_provider(path, creds=creds, read_only=True)
    return {k: hashlib.sha1(p.get(k)).hexdigest() for k in p.list()}


def _frames(path: str, idx) -> np.ndarray:
    return vidlake.VideoReader(path).get_frames(np.asarray(idx, dtype=np.int64))


# -- the walkthrough -------------------------------------------------------------------------
def test_walkthrough(backend):
    path, creds = backend
    ds = vidlake.empty(path, creds=creds)
    with ds:
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        for name in VIDEOS:
            ds.videos.append(vidlake.read(video(name)))
    assert len(ds) == 3

    ds = vidlake.load(path, creds=creds)
    assert vidlake.exists(path, creds=creds)
    v = ds.videos
    assert len(v) == 3
    assert list(ds.tensors) == ["videos"]
    for i, name in enumerate(VIDEOS):
        p = video(name)
        ref = vidlake.VideoReader(p)
        n = len(ref)
        info = v[i].sample_info
        assert set(info) == INFO_KEYS
        assert info["filename"] == p
        assert info["format"] == "mp4"
        assert info["modified"] is False
        assert v[i].shape == (n, *ref.shape[1:]) == tuple(info["shape"])
        ts = np.asarray(ref.timestamps, dtype=np.float64).astype(np.float32)
        cases = {"a:b": slice(3, 19), "a:b:s": slice(1, n, 7), "list": [5, 0, n - 1], "neg": [-1, -2]}
        for what, sel in cases.items():
            want = np.arange(n)[sel]
            got = v[i, sel].numpy()
            assert np.array_equal(got, _frames(p, want)), f"{name} [{what}]"
            assert v[i, sel].shape == got.shape
            np.testing.assert_array_equal(v[i, sel].timestamp, ts[want])
        mid = n // 2
        assert np.array_equal(v[i, mid].numpy(), _frames(p, [mid])[0])
    # a whole (small) video, data() and lists of samples
    small = video(VIDEOS[2])
    assert np.array_equal(v[2].numpy(), _frames(small, range(len(vidlake.VideoReader(small)))))
    d = v[1, 0:4].data()
    assert set(d) == {"frames", "timestamps"}
    assert np.array_equal(d["frames"], _frames(video(VIDEOS[1]), range(4)))
    lst = v[0:3, 0:2].numpy(aslist=True)
    assert [a.shape[0] for a in lst] == [2, 2, 2]
    assert [a.shape for a in v[[2, 0], 0:1].numpy(aslist=True)] == [(1, *lst[2].shape[1:]), (1, *lst[0].shape[1:])]
    assert v.shape == (3, None, None, None, 3)


def test_read_only_refuses_writes(backend):
    path, creds = backend
    ds = vidlake.empty(path, creds=creds)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(vidlake.read(video(VIDEOS[2])))
    before = snapshot(path, creds)
    ro = vidlake.load(path, read_only=True, creds=creds)
    for write in (lambda: ro.videos.append(vidlake.read(video(VIDEOS[2]))),
                  lambda: ro.create_tensor("more", htype="text"),
                  lambda: ro.add_creds_key("k"),
                  lambda: ro.delete()):
        with pytest.raises(vidlake.ReadOnlyError):
            write()
    assert ro.videos[0, 1].shape == ro.videos[0].shape[1:]
    assert snapshot(path, creds) == before


@pytest.mark.parametrize("bad", ["empty", "text", "truncated"])
def test_failed_append_leaves_dataset_unchanged(backend, tmp_path, bad):
    path, creds = backend
    ds = vidlake.empty(path, creds=creds)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(vidlake.read(video(VIDEOS[2])))
    before = snapshot(path, creds)
    f = tmp_path / f"bad-{bad}.mp4"
    f.write_bytes({"empty": b"", "text": b"this is not a video\n" * 50,
                   "truncated": Path(video(VIDEOS[0])).read_bytes()[:3000]}[bad])
    with pytest.raises(vidlake.SampleAppendError):
        ds.videos.extend([vidlake.read(video(VIDEOS[1])), vidlake.read(str(f))])
    assert len(ds) == 1
    assert snapshot(path, creds) == before
    ds2 = vidlake.load(path, creds=creds)
    assert len(ds2) == 1
    assert np.array_equal(ds2.videos[0, 3].numpy(), _frames(video(VIDEOS[2]), [3])[0])
    ds.videos.append(vidlake.read(video(VIDEOS[1])))  # the dataset object is still usable
    assert len(vidlake.load(path, creds=creds)) == 2


# -- S3: a commit that fails at its last step ------------------------------------------------
def test_s3_metadata_put_failure_leaves_remote_dataset_unchanged(moto_server, s3_bucket, fault_proxy_s3,
                                                                  monkeypatch):
    monkeypatch.setenv("VIDLAKE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("VIDLAKE_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("VIDLAKE_RETRY_MAX_DELAY", "0.05")
    path = f"s3://{s3_bucket}/ds"
    creds = moto_server.creds(fault_proxy_s3.url)
    ds = vidlake.empty(path, creds=creds)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(vidlake.read(video(VIDEOS[2])))
    meta_before = ds.provider.get("dataset_meta.json")

    fault_proxy_s3.fail_matching("PUT", "dataset_meta.json", mode="503")
    with pytest.raises(vidlake.StorageError, match="unchanged"):
        ds.videos.append(vidlake.read(video(VIDEOS[1])))
    assert fault_proxy_s3.faults == 3  # the metadata PUT and its retries; everything before it went through
    fault_proxy_s3.heal()

    assert ds.provider.get("dataset_meta.json") == meta_before
    assert len(ds) == 1
    again = vidlake.load(path, creds=moto_server.creds())
    assert len(again) == 1
    assert np.array_equal(again.videos[0, 7].numpy(), _frames(video(VIDEOS[2]), [7])[0])
    # the writer is still usable, and the leftover bytes of the failed commit are overwritten
    ds.videos.append(vidlake.read(video(VIDEOS[0])))
    again = vidlake.load(path, creds=moto_server.creds())
    assert len(again) == 2
    assert np.array_equal(again.videos[1, 100].numpy(), _frames(video(VIDEOS[0]), [100])[0])
    assert np.array_equal(again.videos[0, 7].numpy(), _frames(video(VIDEOS[2]), [7])[0])


# -- S3: a one-frame read moves the GOP, not the sample ---------------------------------------
def test_remote_sample_frame_read_fetches_only_needed_ranges(moto_server, s3_bucket, big_video,
                                                             counting_proxy_s3, record_property):
    path = f"s3://{s3_bucket}/ds"
    ds = vidlake.empty(path, creds=moto_server.creds())
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(vidlake.read(str(big_video.path)))
    ds.videos.append(vidlake.read(video(VIDEOS[2])))

    idx = _core.Index.build(str(big_video.path))
    keys = [int(k) for k in idx.keyframe_indices]
    first, nxt = keys[len(keys) // 2], keys[len(keys) // 2 + 1]
    frame = nxt - 1  # the last frame of the middle GOP: every packet of the GOP is needed
    gop_bytes = sum(e - s for s, e in idx.byte_ranges(list(range(first, nxt))))

    remote = vidlake.load(path, read_only=True, creds=moto_server.creds(counting_proxy_s3.url))
    assert remote.videos[0].shape[0] == idx.num_frames  # metadata only
    counting_proxy_s3.reset()
    got = remote.videos[0, frame].numpy()
    moved = counting_proxy_s3.bytes_down
    record_property("one_frame_bytes", moved)
    print(f"one frame of a {big_video.size} B remote dataset sample: {moved} B moved "
          f"(GOP {gop_bytes} B)")
    assert np.array_equal(got, vidlake.VideoReader(str(big_video.path))[frame])
    assert moved <= gop_bytes + SLACK, (moved, gop_bytes)
    assert moved < big_video.size / 4


def test_s3_append_to_a_large_open_chunk_uploads_only_the_new_sample(moto_server, s3_bucket,
                                                                      counting_proxy_s3, record_property):
    """Appending to a dataset whose open chunk is 5 MiB or more moves about the new sample, not the
    whole chunk twice (on S3 a commit opens a new chunk rather than rewrite a committed one, which
    another writer may be appending to: docs/FORMAT.md, "Several writers")."""
    path = f"s3://{s3_bucket}/ds"
    creds = moto_server.creds(counting_proxy_s3.url)
    names = ["sample_mp4.mp4"] * 4                                # 4 x 1.57 MB: one open chunk
    ds = vidlake.empty(path, creds=creds)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    with ds:
        ds.videos.extend([vidlake.read(video(n)) for n in names])
    chunks = [k for k in vidlake.storage.get_provider(path, creds=creds).list("videos/") if "chunks" in k]
    assert len(chunks) == 1
    new = video("samplemp4.mp4")
    counting_proxy_s3.reset()
    ds.videos.append(vidlake.read(new))
    moved = counting_proxy_s3.bytes_up + counting_proxy_s3.bytes_down
    size = Path(new).stat().st_size
    record_property("bytes_moved", moved)
    assert moved < size + 512 * 1024, f"{moved} bytes moved to append {size} bytes"
    ds = vidlake.load(path, creds=creds, read_only=True)
    assert len(ds.videos) == 5
    for i, n in ((0, names[0]), (3, names[3]), (4, "samplemp4.mp4")):
        want = _frames(video(n), [0, 17])
        np.testing.assert_array_equal(ds.videos[i, [0, 17]].numpy(), want)


# -- GCS: the same remote-only cases -----------------------------------------------------------
def test_gcs_metadata_upload_failure_leaves_remote_dataset_unchanged(gcs_server, gcs_bucket, fault_proxy_gcs,
                                                                     monkeypatch):
    monkeypatch.setenv("VIDLAKE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("VIDLAKE_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("VIDLAKE_RETRY_MAX_DELAY", "0.05")
    path = f"gs://{gcs_bucket}/ds"
    ds = vidlake.empty(path, creds=gcs_server.creds(fault_proxy_gcs.url))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(vidlake.read(video(VIDEOS[2])))
    meta_before = ds.provider.get("dataset_meta.json")

    fault_proxy_gcs.fail_matching("POST", "/upload/", mode="503", body_part=b"ds/dataset_meta.json")
    with pytest.raises(vidlake.StorageError, match="unchanged"):
        ds.videos.append(vidlake.read(video(VIDEOS[1])))
    assert fault_proxy_gcs.faults == 3  # the metadata upload and its retries; everything before it went through
    fault_proxy_gcs.heal()

    assert ds.provider.get("dataset_meta.json") == meta_before
    again = vidlake.load(path, creds=gcs_server.creds())
    assert len(again) == 1
    assert np.array_equal(again.videos[0, 7].numpy(), _frames(video(VIDEOS[2]), [7])[0])
    ds.videos.append(vidlake.read(video(VIDEOS[0])))  # the writer is still usable
    again = vidlake.load(path, creds=gcs_server.creds())
    assert len(again) == 2
    assert np.array_equal(again.videos[1, 100].numpy(), _frames(video(VIDEOS[0]), [100])[0])


def test_gcs_sample_frame_read_fetches_only_needed_ranges(gcs_server, gcs_bucket, big_video, counting_proxy_gcs,
                                                          record_property):
    path = f"gs://{gcs_bucket}/ds"
    ds = vidlake.empty(path, creds=gcs_server.creds())
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(vidlake.read(str(big_video.path)))

    idx = _core.Index.build(str(big_video.path))
    keys = [int(k) for k in idx.keyframe_indices]
    first, nxt = keys[len(keys) // 2], keys[len(keys) // 2 + 1]
    gop_bytes = sum(e - s for s, e in idx.byte_ranges(list(range(first, nxt))))

    remote = vidlake.load(path, read_only=True, creds=gcs_server.creds(counting_proxy_gcs.url))
    assert remote.videos[0].shape[0] == idx.num_frames
    counting_proxy_gcs.reset()
    got = remote.videos[0, nxt - 1].numpy()
    moved = counting_proxy_gcs.bytes_down
    record_property("gcs_one_frame_bytes", moved)
    print(f"one frame of a {big_video.size} B GCS dataset sample: {moved} B moved (GOP {gop_bytes} B)")
    assert np.array_equal(got, vidlake.VideoReader(str(big_video.path))[nxt - 1])
    assert moved <= gop_bytes + SLACK, (moved, gop_bytes)
    assert moved < big_video.size / 4


def test_gcs_append_to_a_large_open_chunk_uploads_only_the_new_sample(gcs_server, gcs_bucket, counting_proxy_gcs,
                                                                       record_property):
    """Growing an open chunk on GCS composes on the server (GCSProvider.append)."""
    path = f"gs://{gcs_bucket}/ds"
    creds = gcs_server.creds(counting_proxy_gcs.url)
    names = ["sample_mp4.mp4"] * 4
    ds = vidlake.empty(path, creds=creds)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    with ds:
        ds.videos.extend([vidlake.read(video(n)) for n in names])
    chunks = [k for k in vidlake.storage.get_provider(path, creds=creds).list("videos/") if "chunks" in k]
    assert len(chunks) == 1
    new = video("samplemp4.mp4")
    counting_proxy_gcs.reset()
    ds.videos.append(vidlake.read(new))
    moved = counting_proxy_gcs.bytes_up + counting_proxy_gcs.bytes_down
    size = Path(new).stat().st_size
    record_property("gcs_bytes_moved", moved)
    print(f"appending {size} B to a large open chunk on GCS moved {moved} B")
    assert moved < size + 512 * 1024, f"{moved} bytes moved to append {size} bytes"
    ds = vidlake.load(path, creds=creds, read_only=True)
    assert len(ds.videos) == 5
    for i, n in ((0, names[0]), (3, names[3]), (4, "samplemp4.mp4")):
        np.testing.assert_array_equal(ds.videos[i, [0, 17]].numpy(), _frames(video(n), [0, 17]))
