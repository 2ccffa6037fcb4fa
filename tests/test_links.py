"""Linked samples (``link[video]``, ``link[image]``) over S3, GCS, HTTP and local paths, and remote
``vidlake.read`` samples copied into a normal video tensor.

Linked videos: the index and sample_info are built at append with ranged reads and stored; the
video bytes are not copied; every video feature works with ranged reads from the source.
"""
from __future__ import annotations

import io
import os
import shutil
import uuid
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import video

import vidlake
from vidlake import _core

pytestmark = pytest.mark.timeout(120)

SLACK = 512 * 1024
SEVEN = {"duration", "fps", "timebase", "shape", "format", "filename", "modified"}



def frames(path: str, idx) -> np.ndarray:
    return vidlake.VideoReader(path).get_frames(np.asarray(idx, dtype=np.int64))


@pytest.fixture
def sources(moto_server, s3_bucket, gcs_server, gcs_bucket, http_server, tmp_path):
    """name -> (url, creds_key, local reference path) for bikes.mp4 on S3, GCS, HTTP and disk."""
    ref = video("bikes.mp4")
    moto_server.client().upload_file(ref, s3_bucket, "videos/bikes.mp4")
    local = tmp_path / "bikes.mp4"
    shutil.copyfile(ref, local)
    return {
        "s3": (f"s3://{s3_bucket}/videos/bikes.mp4", "bucket", ref),
        "gcs": (gcs_server.upload(gcs_bucket, "videos/bikes.mp4", ref), "gcs", ref),
        "http": (http_server.add(f"links-{uuid.uuid4().hex[:8]}/bikes.mp4", Path(ref)), None, ref),
        "local": (str(local), None, ref),
    }


@pytest.fixture
def key_creds(moto_server, gcs_server):
    """creds key name -> the creds it stands for in these tests."""
    return {"bucket": moto_server.creds(), "gcs": gcs_server.creds()}


def link_ds(moto_server, path: str = "", gcs_server=None) -> vidlake.Dataset:
    ds = vidlake.empty(path or f"mem://links-{uuid.uuid4().hex}")
    ds.create_tensor("links", htype="link[video]")
    ds.add_creds_key("bucket")
    ds.populate_creds("bucket", moto_server.creds())
    if gcs_server is not None:
        ds.add_creds_key("gcs")
        ds.populate_creds("gcs", gcs_server.creds())
    return ds


def data_bytes(ds) -> int:
    return sum(len(ds.provider.get(k)) for k in ds.provider.list() if "/chunks/" in k)


@pytest.mark.parametrize("where", ["s3", "gcs", "http", "local"])
def test_linked_video_every_feature(where, sources, key_creds, moto_server, gcs_server, tmp_path):
    url, key, ref = sources[where]
    ds = link_ds(moto_server, str(tmp_path / "ds"), gcs_server)
    ds.links.append(vidlake.link(url, creds_key=key))
    assert len(ds) == 1
    # the video bytes were not copied: the chunks hold the packet index only
    assert data_bytes(ds) < os.path.getsize(ref) / 5

    # sample_info equals that of the same file appended to a normal video tensor
    plain = vidlake.empty(f"mem://plain-{uuid.uuid4().hex}")
    plain.create_tensor("videos", htype="video", sample_compression="mp4")
    plain.videos.append(vidlake.read(ref))

    ds = vidlake.load(str(tmp_path / "ds"))       # a fresh process would do the same
    if key:
        ds.populate_creds(key, key_creds[key])
    s = ds.links[0]
    info = s.sample_info
    assert set(info) == SEVEN
    assert info["filename"] == url
    assert {k: v for k, v in info.items() if k != "filename"} == \
        {k: v for k, v in plain.videos[0].sample_info.items() if k != "filename"}
    n = len(vidlake.VideoReader(ref))
    assert s.shape == (n, 272, 640, 3)
    assert ds.links.shape == (1, n, 272, 640, 3)
    ts = np.asarray(vidlake.VideoReader(ref).timestamps, dtype=np.float64).astype(np.float32)
    for sel in (slice(0, 5), slice(10, 60, 9), [200, 3, 120], [-1], 77):
        want = np.arange(n)[sel]
        got = ds.links[0, sel].numpy()
        assert np.array_equal(got, frames(ref, np.atleast_1d(want)).reshape(got.shape)), sel
        np.testing.assert_array_equal(ds.links[0, sel].timestamp, ts[want])
    d = ds.links[0, 4:7].data()
    assert np.array_equal(d["frames"], frames(ref, [4, 5, 6]))
    np.testing.assert_array_equal(d["timestamps"], ts[4:7])
    assert [a.shape for a in ds.links[[0, 0], 0:2].numpy(aslist=True)] == [(2, 272, 640, 3)] * 2
    assert ds.links[0][100:103][1].shape == (272, 640, 3)


def test_links_and_videos_side_by_side(sources, moto_server, gcs_server):
    """A dataset mixing linked sources and a normal video tensor, appended row by row."""
    ds = link_ds(moto_server, gcs_server=gcs_server)
    ds.create_tensor("labels", htype="text")
    with ds:
        for where, (url, key, _ref) in sources.items():
            ds.append({"links": vidlake.link(url, creds_key=key), "labels": where})
    n = len(sources)
    assert len(ds) == n == 4
    ref = sources["s3"][2]
    want = frames(ref, [0, 249])
    for i in range(n):
        assert np.array_equal(ds.links[i, [0, -1]].numpy(), want)
        assert ds[i].labels.text() == list(sources)[i]
    assert np.array_equal(ds.links[0:n, 10].numpy(), np.stack([frames(ref, [10])[0]] * n))


def test_verify_false_defers_the_index_to_first_use(sources, moto_server, http_server):
    url, _key, ref = sources["http"]
    ds = link_ds(moto_server)
    http_server.reset()
    ds.links.append(vidlake.link(url, verify=False))
    ds.links.append(vidlake.link(f"{http_server.url}/nothing-here.mp4", verify=False))
    assert http_server.requests == 0                   # nothing read at append
    assert ds.links.shape == (2, None, None, None, 3)  # unknown until read
    assert ds.links[0].shape == (250, 272, 640, 3)     # indexed now (ranged reads), kept in memory
    assert ds.links[0].sample_info["fps"] == 25.0
    assert np.array_equal(ds.links[0, 30:33].numpy(), frames(ref, [30, 31, 32]))
    with pytest.raises(vidlake.StorageError, match=r"nothing-here.mp4"):
        ds.links[1, 0].numpy()
    # the stored entry still says unverified: nothing was written back
    assert vidlake.Dataset(ds.provider, ds.path).links.entry(0)["link"]["verified"] is False


def test_bad_links_are_refused_at_append(sources, moto_server, gcs_server, http_server, tmp_path):
    ds = link_ds(moto_server, gcs_server=gcs_server)
    ds.links.append(vidlake.link(sources["local"][0]))
    before = {k: ds.provider.get(k) for k in ds.provider.list()}
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    bucket = sources["s3"][0].split("/")[2]
    bad = [
        vidlake.link(str(tmp_path / "missing.mp4")),
        vidlake.link(str(text)),
        vidlake.link(f"{http_server.url}/missing.mp4"),
        vidlake.link(f"s3://{bucket}/videos/missing.mp4", creds_key="bucket"),
        vidlake.link(sources["gcs"][0].replace("bikes.mp4", "missing.mp4"), creds_key="gcs"),
    ]
    for b in bad:
        with pytest.raises(vidlake.SampleAppendError, match="cannot link"):
            ds.links.append(b)
    # an unknown scheme names every scheme that is supported
    with pytest.raises(vidlake.SampleAppendError) as ei:
        ds.links.append(vidlake.link("ftp://host/videos/a.mp4"))
    for scheme in ("local paths", "file://", "mem://", "s3://", "gcs://", "gs://", "http://", "https://"):
        assert scheme in str(ei.value), str(ei.value)
    with pytest.raises(vidlake.CredentialsError, match="'nokey'"):
        ds.links.append(vidlake.link(sources["s3"][0], creds_key="nokey"))
    with pytest.raises(vidlake.HtypeError):
        ds.links.append(b"raw bytes")
    with pytest.raises(vidlake.HtypeError, match="creds key names"):
        ds.links.append(vidlake.read(sources["s3"][0], creds=moto_server.creds()))
    webm = ds.create_tensor("webm_links", htype="link[video]", sample_compression="webm")
    with pytest.raises(vidlake.SampleAppendError, match="sample_compression"):
        webm.append(vidlake.link(sources["local"][0]))
    with pytest.raises(ValueError, match="accepted"):
        ds.create_tensor("x", htype="link[video]", sample_compression="gif")
    assert len(ds.links) == 1
    assert all(ds.provider.get(k) == v for k, v in before.items() if k != "dataset_meta.json")


def test_changed_local_file_is_refused_at_read(tmp_path):
    f = tmp_path / "clip.mp4"
    shutil.copyfile(video("carphone_distorted.mp4"), f)
    ds = vidlake.empty(f"mem://{uuid.uuid4().hex}")
    ds.create_tensor("links", htype="link[video]")
    ds.links.append(vidlake.link(str(f)))
    with open(f, "ab") as fh:
        fh.write(b"\0" * 100)
    with pytest.raises(vidlake.StorageError, match="changed since it was linked"):
        ds.links[0, 0].numpy()


def test_linked_images(tmp_path, http_server):
    from PIL import Image

    rng = np.random.default_rng(5)
    png = tmp_path / "a.png"
    arr = rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)
    Image.fromarray(arr).save(png)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    jpg_url = http_server.add(f"img-{uuid.uuid4().hex[:6]}/b.jpg", buf.getvalue())
    ds = vidlake.empty(f"mem://{uuid.uuid4().hex}")
    ds.create_tensor("images", htype="link[image]")
    ds.images.extend([vidlake.link(str(png)), vidlake.link(jpg_url), vidlake.link(jpg_url, verify=False)])
    assert ds.images[0].shape == (37, 53, 3)
    assert ds.images[0].sample_info["format"] == "png"
    assert np.array_equal(ds.images[0].numpy(), arr)
    # images decode as Pillow decodes them (the default image decoder): the reference is
    # Pillow's decode of the same bytes; image_decoder="ffmpeg" gives PyAV's (libavcodec) decode
    expect_jpg = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert np.array_equal(ds.images[1].numpy(), expect_jpg)
    assert ds.images[2].shape == (37, 53, 3)
    assert np.array_equal(ds.images[0:3].numpy()[1:], np.stack([expect_jpg, expect_jpg]))
    with av.open(io.BytesIO(buf.getvalue())) as c:
        expect_ffmpeg = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert np.array_equal(ds.images[1].numpy(image_decoder="ffmpeg"), expect_ffmpeg)
    assert not np.array_equal(expect_ffmpeg, expect_jpg)
    assert ds.images.dtype == np.uint8
    with pytest.raises(vidlake.SampleAppendError):
        ds.images.append(vidlake.link(video("carphone_distorted.mp4")))
    pngs = ds.create_tensor("pngs", htype="link[image]", sample_compression="png")
    with pytest.raises(vidlake.SampleAppendError, match="sample_compression"):
        pngs.append(vidlake.link(jpg_url))


def test_linked_frame_read_fetches_only_needed_ranges(moto_server, big_video_s3, counting_proxy_s3,
                                                      record_property):
    ds = vidlake.empty(f"mem://{uuid.uuid4().hex}")
    ds.create_tensor("links", htype="link[video]")
    ds.add_creds_key("big")
    ds.populate_creds("big", moto_server.creds())
    ds.links.append(vidlake.link(big_video_s3.s3_uri, creds_key="big"))
    assert data_bytes(ds) < 200_000  # the index, not the 50 MB video

    idx = _core.Index.build(str(big_video_s3.path))
    keys = [int(k) for k in idx.keyframe_indices]
    first, nxt = keys[len(keys) // 2], keys[len(keys) // 2 + 1]
    gop_bytes = sum(e - s for s, e in idx.byte_ranges(list(range(first, nxt))))
    ds.populate_creds("big", moto_server.creds(counting_proxy_s3.url))  # now through the proxy
    counting_proxy_s3.reset()
    got = ds.links[0, nxt - 1].numpy()
    moved = counting_proxy_s3.bytes_down
    record_property("linked_one_frame_bytes", moved)
    print(f"one frame of a {big_video_s3.size} B linked video: {moved} B moved (GOP {gop_bytes} B)")
    assert np.array_equal(got, vidlake.VideoReader(str(big_video_s3.path))[nxt - 1])
    assert moved <= gop_bytes + SLACK, (moved, gop_bytes)


# -- vidlake.read(url) into a normal video tensor: the bytes are copied ------------------------
@pytest.mark.parametrize("where", ["s3", "gcs", "http"])
def test_remote_read_sample_is_copied_into_chunks(where, sources, key_creds, moto_server, gcs_server, tmp_path):
    url, key, ref = sources[where]
    creds = key_creds[key] if key else None
    s = vidlake.read(url, creds=creds)
    assert s.shape == (250, 272, 640, 3)  # ranged reads: the index only
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(s)
    ds.videos.append(vidlake.read(url, creds=creds))
    size = os.path.getsize(ref)
    assert all(sum(n for _c, _o, n in e["data"]) == size for e in (ds.videos.entry(i) for i in range(len(ds.videos))))
    if where == "s3":
        moto_server.client().delete_object(Bucket=url.split("/")[2], Key="videos/bikes.mp4")
    if where == "gcs":
        gcs_server.client().bucket(url.split("/")[2]).blob("videos/bikes.mp4").delete()
    ds = vidlake.load(str(tmp_path / "ds"))  # self-contained: the source is not needed any more
    assert ds.videos[1].sample_info["filename"] == url
    assert np.array_equal(ds.videos[1, [0, 125, 249]].numpy(), frames(ref, [0, 125, 249]))


def test_gcs_linked_frame_read_fetches_only_needed_ranges(gcs_server, big_video, big_video_gcs, counting_proxy_gcs,
                                                          record_property):
    ds = vidlake.empty(f"mem://{uuid.uuid4().hex}")
    ds.create_tensor("links", htype="link[video]")
    ds.add_creds_key("big")
    ds.populate_creds("big", gcs_server.creds())
    ds.links.append(vidlake.link(big_video_gcs, creds_key="big"))
    assert data_bytes(ds) < 200_000  # the index, not the 50 MB video

    idx = _core.Index.build(str(big_video.path))
    keys = [int(k) for k in idx.keyframe_indices]
    first, nxt = keys[len(keys) // 2], keys[len(keys) // 2 + 1]
    gop_bytes = sum(e - s for s, e in idx.byte_ranges(list(range(first, nxt))))
    ds.populate_creds("big", gcs_server.creds(counting_proxy_gcs.url))  # now through the proxy
    counting_proxy_gcs.reset()
    got = ds.links[0, nxt - 1].numpy()
    moved = counting_proxy_gcs.bytes_down
    record_property("gcs_linked_one_frame_bytes", moved)
    print(f"one frame of a {big_video.size} B video linked from GCS: {moved} B moved (GOP {gop_bytes} B)")
    assert np.array_equal(got, vidlake.VideoReader(str(big_video.path))[nxt - 1])
    assert moved <= gop_bytes + SLACK, (moved, gop_bytes)
