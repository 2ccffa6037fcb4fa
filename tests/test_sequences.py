"""sequence[X] tensors, htype rules at append, alignment to a video, aligned slicing ds[i, a:b]."""
from __future__ import annotations

import uuid

import annotation_assets as aa
import numpy as np
import pytest
from helpers import snapshot

import vidlake


@pytest.fixture(params=["local", "memory"])
def ds_path(request, tmp_path):
    if request.param == "memory":
        return f"mem://seq-{uuid.uuid4().hex}"
    return str(tmp_path / "ds")


def test_sequence_htypes_roundtrip(ds_path):
    ds = vidlake.empty(ds_path)
    ds.create_tensor("frames", htype="sequence[image]", sample_compression="png")
    ds.create_tensor("labels", htype="sequence[class_label]", class_names=["person", "car"], aligned_to="frames")
    ds.create_tensor("captions", htype="sequence[text]", aligned_to="frames")
    ds.create_tensor("extra", htype="sequence[json]", aligned_to="frames")
    ds.create_tensor("scores", htype="sequence[]", aligned_to="frames")
    pics = [aa.frame_image(k, 6 + k, 8) for k in range(3)]           # ragged heights
    ds.append({"frames": pics, "labels": [["car"], [], ["person", 1]], "captions": ["a", "b", "c"],
               "extra": [{"k": 1}, None, [1, 2]], "scores": [np.arange(2), np.arange(2) * 2, np.arange(2) * 3]})
    ds = vidlake.load(ds_path)
    assert ds.frames.shape == (1, 3, None, 8, 3)
    assert ds.frames[0].shape == (3, None, 8, 3)
    for k in range(3):
        np.testing.assert_array_equal(ds.frames[0][k].numpy(), pics[k])      # png: lossless
        assert ds.frames[0, k].shape == (6 + k, 8, 3)
    with pytest.raises(vidlake.DatasetError, match="aslist=True"):
        ds.frames[0].numpy()
    assert [a.shape for a in ds.frames[0].numpy(aslist=True)] == [(6, 8, 3), (7, 8, 3), (8, 8, 3)]
    assert ds.labels[0][2].numpy().tolist() == [0, 1]
    assert ds.labels[0].data()["text"] == [["car"], [], ["person", "car"]]
    assert ds.captions[0].numpy() == ["a", "b", "c"]
    assert ds.captions[0][1].numpy() == "b"
    assert ds.extra[0].numpy() == [{"k": 1}, None, [1, 2]]
    assert ds.scores[0].numpy().tolist() == [[0, 1], [0, 2], [0, 3]]
    assert ds.scores[0, ::2].numpy().tolist() == [[0, 1], [0, 3]]
    assert [s.numpy().tolist() for s in ds.scores[0]] == [[0, 1], [0, 2], [0, 3]]   # iteration
    assert ds.frames.dtype == np.uint8
    assert ds.labels.dtype == np.uint32
    with pytest.raises(IndexError, match="out of range"):
        ds.frames[0][3]
    # an empty sequence is a sample of 0 items
    ds.append({"frames": [], "labels": [], "captions": [], "extra": [], "scores": []})
    assert len(ds.frames[1]) == 0
    assert ds.frames[1].numpy(aslist=True) == []


def test_image_tensor_from_files_and_arrays(tmp_path):
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("images", htype="image", sample_compression="jpeg")
    paths = aa.write_frames(tmp_path / "img", 2, 20, 30)
    ds.images.append(vidlake.read(str(paths[0])))
    ds.images.append(str(paths[1]))
    smooth = (np.add.outer(np.arange(20), np.arange(30))[:, :, None] * [2, 3, 1] + 40).astype(np.uint8)
    ds.images.append(smooth)                                           # encoded to jpg by vidlake
    assert ds.images.shape == (3, 20, 30, 3)
    np.testing.assert_array_equal(ds.images[0].numpy(), aa.reference_decode(paths[0]))
    assert ds.images[0].sample_info["format"] == "jpeg"
    assert ds.images[0].sample_info["filename"] == str(paths[0])
    assert np.abs(ds.images[2].numpy().astype(int) - smooth).mean() < 3
    png = tmp_path / "x.png"
    from PIL import Image
    Image.fromarray(aa.frame_image(1, 4, 4)).save(png)
    with pytest.raises(vidlake.SampleAppendError, match=r"the file is png.*sample_compression is 'jpeg'"):
        ds.images.append(vidlake.read(str(png)))
    with pytest.raises(vidlake.SampleAppendError, match="not a readable image"):
        ds.images.append(b"not an image at all")
    with pytest.raises(vidlake.HtypeError, match="cannot store float64 value"):
        ds.images.append(np.full((4, 4, 3), 0.5))
    with pytest.raises(ValueError, match="accepted: jpg, jpeg, png, webp"):
        ds.create_tensor("bad", htype="image", sample_compression="gif")
    assert len(ds.images) == 3


def test_htype_rules_refused_and_dataset_unchanged(tmp_path):
    root = tmp_path / "ds"
    ds = vidlake.empty(str(root))
    ds.create_tensor("frames", htype="sequence[image]", sample_compression="jpg")
    ds.create_tensor("boxes", htype="sequence[bbox]", aligned_to="frames")
    ds.create_tensor("ids", htype="sequence[]", dtype="uint32", aligned_to="frames")
    ds.create_tensor("labels", htype="sequence[class_label]", class_names=["person"], aligned_to="frames")
    imgs = [aa.frame_image(k, 8, 8) for k in range(2)]
    good = {"frames": imgs, "boxes": [np.zeros((1, 4))] * 2, "ids": [[1], [2]], "labels": [["person"], [0]]}
    ds.append(good)
    before = snapshot(root)
    cases = [
        ({"boxes": [np.zeros((1, 4)), np.zeros((1, 5))]}, vidlake.HtypeError, "item 1 of the sequence.*last dimension is 4"),
        ({"ids": [[1], [-1]]}, vidlake.HtypeError, "uint32.*-1"),
        ({"ids": [[1], [1.5]]}, vidlake.HtypeError, "cannot store float64 value 1.5"),
        ({"labels": [["person"], ["dog"]]}, vidlake.HtypeError, "class 'dog' is not in"),
        ({"boxes": "abc"}, vidlake.HtypeError, "takes a list of items"),
        ({"boxes": [np.zeros((1, 4))] * 3}, vidlake.SampleAppendError, "aligned to 'frames'.*3 item"),
        ({"frames": imgs + imgs[:1]}, vidlake.SampleAppendError, "aligned to 'frames'"),
    ]
    for change, err, msg in cases:
        with pytest.raises(err, match=msg):
            ds.append({**good, **change})
        assert len(ds) == 1
        assert all(len(t) == 1 for t in ds.tensors.values())
    assert snapshot(root) == before
    assert vidlake.HtypeError.__mro__[1] is vidlake.SampleAppendError
    # safe casts are accepted: float64 -> float32 boxes, int64 -> uint32 ids
    ds.append({**good, "boxes": [np.array([[1.5, 2, 3, 4]]), np.zeros((0, 4))], "ids": [np.array([7]), []]})
    assert ds.boxes[1][0].numpy().dtype == np.float32
    assert ds.ids[1][0].numpy().tolist() == [7]
    # one tensor at a time: checked against the other tensor's sample of the same row
    ds.boxes.append([np.zeros((1, 4))])                  # row 2 of boxes: 1 item, frames has none yet
    with pytest.raises(vidlake.SampleAppendError, match=r"row 2 gives 1 item.*2 frame"):
        ds.frames.append(imgs)
    ds.frames.append(imgs[:1])
    # create-time rules
    with pytest.raises(ValueError, match="aligned_to is for sequence"):
        ds.create_tensor("x", htype="bbox", aligned_to="frames")
    with pytest.raises(ValueError, match="no such tensor"):
        ds.create_tensor("x", htype="sequence[bbox]", aligned_to="nope")
    with pytest.raises(ValueError, match="coords mode 'XYXY'"):
        ds.create_tensor("x", htype="bbox", coords={"type": "pixel", "mode": "XYXY"})
    with pytest.raises(ValueError, match="sequence holds one of"):
        ds.create_tensor("x", htype="sequence[video]")


def test_aligned_to_video_and_slicing(tmp_path):
    vid = aa.make_video(tmp_path / "clip.mp4", 40)
    short = aa.make_video(tmp_path / "short.mp4", 25)
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.create_tensor("boxes", htype="sequence[bbox]", aligned_to="videos")
    ds.create_tensor("visible", htype="sequence[]", dtype="bool", aligned_to="videos")
    ds.create_tensor("metadata", htype="json")
    boxes = [np.array([[k, k + 1, 10, 12]], np.float32) for k in range(40)]
    ds.append({"videos": vidlake.read(str(vid)), "boxes": boxes, "visible": [k % 3 != 0 for k in range(40)],
               "metadata": {"scene": "a"}})
    with pytest.raises(vidlake.SampleAppendError, match=r"row 1 gives 40 item.*25 frame"):
        ds.append({"videos": vidlake.read(str(short)), "boxes": boxes, "visible": [True] * 40, "metadata": {}})
    assert len(ds) == 1

    ds = vidlake.load(str(tmp_path / "ds"))
    row = ds[0, 10:15]
    out = row.numpy()
    assert out["videos"].shape == (5, 48, 64, 3)
    np.testing.assert_array_equal(out["videos"], ds.videos[0, 10:15].numpy())
    np.testing.assert_array_equal(out["boxes"], np.stack(boxes[10:15]))
    assert out["boxes"].shape == (5, 1, 4)
    assert out["visible"].tolist() == [k % 3 != 0 for k in range(10, 15)]
    assert out["metadata"] == {"scene": "a"}                       # no frames: whole sample
    np.testing.assert_allclose(row.timestamps, np.arange(10, 15) / 30, atol=1e-4)
    d = row.data()
    assert set(d["videos"]) == {"frames", "timestamps"}
    assert d["boxes"]["value"].shape == (5, 1, 4)
    # strided and single frames, attribute access
    np.testing.assert_array_equal(ds[0, ::10].boxes.numpy()[:, 0, 0], [0, 10, 20, 30])
    assert ds[0, 7].boxes.numpy().tolist() == [[7, 8, 10, 12]]
    assert ds[0, 7].videos.numpy().shape == (48, 64, 3)
    with pytest.raises(IndexError, match="frame 40 out of range"):
        ds[0, 40]
    with pytest.raises(IndexError, match="one row index"):
        ds[0:1, 3]
    assert ds.boxes[0].shape == (40, 1, 4)
    assert ds.boxes.shape == (1, 40, 1, 4)
