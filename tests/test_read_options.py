"""Every read option of VideoReader.get_frames works on dataset reads, per read and as a tensor
default: a rotated phone clip reads upright from a dataset, resized, gray, and in either colour
conversion, each exactly as the reader gives it (and the reader as the oracle gives it)."""
from __future__ import annotations

import numpy as np
import oracle
import pytest
from helpers import video

import vidlake

ROTATED = "video_90.mov"        # display matrix: 90 degrees
TAGGED = "av1_video.mkv"        # bt709: the two colour conversions differ


@pytest.fixture
def ds(tmp_path):
    d = vidlake.empty(str(tmp_path / "ds"))
    d.create_tensor("videos", htype="video", sample_compression="mov")
    d.create_tensor("clips", htype="link[video]")
    d.videos.append(vidlake.read(video(ROTATED)))
    d.clips.append(vidlake.link(video(ROTATED)))
    return d


def test_rotate_size_gray_on_dataset_reads(ds):
    r = vidlake.VideoReader(video(ROTATED))
    assert r.metadata["rotation"] in (90.0, -90.0)
    idx = [0, 2, 1]
    for t in (ds.videos, ds.clips):
        up = t[0, idx].numpy(rotate=True)
        oracle.assert_batch_equal(up, r.get_frames(idx, rotate=True), idx, f"{t.key} rotate=True")
        h, w = r.metadata["height"], r.metadata["width"]
        assert up.shape == (3, w, h, 3)                       # upright: sides swapped
        small = t[0, idx].numpy(size=(48, 64))
        oracle.assert_batch_equal(small, r.get_frames(idx, size=(48, 64)), idx, f"{t.key} size")
        oracle.assert_batch_equal(small, oracle.stack(video(ROTATED), idx, (48, 64)), idx, f"{t.key} size oracle")
        g = t[0, 2].numpy(gray=True)
        assert g.shape == (h, w, 1)
        oracle.assert_frames_equal(g, oracle.frame(video(ROTATED), 2, "gray"), f"{t.key} gray")
        both = t[0, 0:2].numpy(rotate=True, size=(30, 20))
        oracle.assert_batch_equal(both, r.get_frames([0, 1], rotate=True, size=(30, 20)), [0, 1], "rotate+size")


def test_color_conversion_on_dataset_reads(tmp_path):
    d = vidlake.empty(str(tmp_path / "ds"))
    d.create_tensor("videos", htype="video", sample_compression="mkv")
    d.videos.append(vidlake.read(video(TAGGED)))
    path = video(TAGGED)
    oracle.assert_frames_equal(d.videos[0, 3].numpy(), oracle.frame(path, 3), "default: the stream's colours")
    oracle.assert_frames_equal(d.videos[0, 3].numpy(color_conversion="bt601"), oracle.frame(path, 3, "bt601"),
                               "bt601")
    assert not np.array_equal(d.videos[0, 3].numpy(), d.videos[0, 3].numpy(color_conversion="bt601"))


def test_tensor_read_options_are_stored_and_overridable(tmp_path):
    path = str(tmp_path / "ds")
    d = vidlake.empty(path)
    d.create_tensor("videos", htype="video", sample_compression="mov", read_options={"rotate": True})
    d.videos.append(vidlake.read(video(ROTATED)))
    d = vidlake.load(path)
    r = vidlake.VideoReader(video(ROTATED))
    h, w = r.metadata["height"], r.metadata["width"]
    assert d.videos.read_options == {"rotate": True}
    assert d.videos[0].shape == (len(r), w, h, 3)
    assert d.videos.shape == (1, len(r), w, h, 3)
    oracle.assert_frames_equal(d.videos[0, 2].numpy(), r.get_frames([2], rotate=True)[0], "stored default")
    oracle.assert_frames_equal(d.videos[0, 2].numpy(rotate=False), r[2], "overridden per read")
    out = np.empty((2, w, h, 3), np.uint8)
    assert d.videos[0, 0:2].numpy(out=out) is out
    oracle.assert_batch_equal(out, r.get_frames([0, 1], rotate=True), [0, 1], "out= with the default")
    d.videos.set_read_options(size=(32, 32))
    assert d.videos[0, 0].shape == (32, 32, 3)
    assert d.videos[0, 0].numpy().shape == (32, 32, 3)
    assert vidlake.load(path).videos.read_options == {"rotate": True}   # set_read_options is not stored


def test_bad_read_options(ds, tmp_path):
    with pytest.raises(ValueError, match="color_conversion"):
        ds.videos[0, 0].numpy(color_conversion="bt709")
    with pytest.raises(ValueError, match="size"):
        ds.videos[0, 0].numpy(size=(0, 10))
    with pytest.raises(ValueError, match="out must be"):
        ds.videos[0, 0].numpy(out=np.empty((8, 8, 3), np.uint8), rotate=True)
    with pytest.raises(ValueError, match="unknown read option"):
        ds.videos.set_read_options(flip=True)
    d = vidlake.empty(str(tmp_path / "other"))
    with pytest.raises(ValueError, match="read_options are for video tensors"):
        d.create_tensor("labels", htype="class_label", read_options={"rotate": True})
    with pytest.raises(ValueError, match="rotate must be True or False"):
        d.create_tensor("videos", htype="video", sample_compression="mp4", read_options={"rotate": "yes"})
    assert list(d.tensors) == []
    d.create_tensor("labels", htype="class_label")
    d.labels.append(1)
    with pytest.raises(ValueError, match="read options of video samples"):
        d.labels[0].numpy(size=(2, 2))
