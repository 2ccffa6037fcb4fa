"""MOT and LaSOT importers (library and ``vidlake ingest --format``) on the shared annotation files."""
from __future__ import annotations

import shutil

import annotation_assets as aa
import numpy as np
import pytest

import vidlake
from vidlake.cli import main
from vidlake.importers import (
    MOT_CLASS_NAMES,
    ingest_lasot,
    ingest_mot,
    read_lasot,
    read_mot_txt,
    read_seqinfo,
)


def test_read_mot_files():
    info = read_seqinfo(str(aa.need(aa.MOT17 / "seqinfo.ini")))
    assert info == {"name": "MOT17-02-FRCNN", "imDir": "img1", "frameRate": 30, "seqLength": 600,
                    "imWidth": 1920, "imHeight": 1080, "imExt": ".jpg"}
    assert read_seqinfo(str(aa.TUD / "seqinfo.ini")) == {"name": "TUD-Campus", "seqLength": 71}
    nine = read_mot_txt(str(aa.MOT17 / "gt" / "gt.txt"))
    assert nine.columns == 9
    assert len(nine.frame) == 156
    assert set(nine.frame.tolist()) == {1, 2, 3, 4}
    assert nine.boxes.min(axis=0)[1] == -1                                  # negative top is kept
    assert nine.boxes[0].tolist() == [912, 484, 97, 109]
    assert nine.cls[0] == 7
    assert nine.visibility[0] == 1.0
    ten = read_mot_txt(str(aa.TUD / "gt" / "gt.txt"))                    # CRLF, fractional boxes
    assert ten.columns == 10
    assert len(ten.frame) == 359
    assert (ten.cls == 0).all()
    assert (ten.visibility == -1).all()
    raw = (aa.TUD / "gt" / "gt.txt").read_bytes()
    assert b"\r\n" in raw
    k = next(i for i, line in enumerate(raw.decode().splitlines()) if line.startswith("11,5,"))
    np.testing.assert_array_equal(ten.boxes[k], np.array([166, 210, 70.546, 153.68], np.float32))
    res = read_mot_txt(str(aa.TUD / "tracker_output.txt"))
    assert res.columns == 10
    assert len(res.frame) == 222


def test_bad_mot_files(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_text("1,1,2,3,4,5,1,1\n")
    with pytest.raises(vidlake.DatasetError, match=r"gt.txt:1: expected 9 or 10 columns, got 8"):
        read_mot_txt(str(p))
    p.write_text("1,1,2,3,4,5,1,1,1\n2,1,2,3,4,5,1,1,1,1\n")
    with pytest.raises(vidlake.DatasetError, match=":2: 10 columns, but earlier lines have 9"):
        read_mot_txt(str(p))
    p.write_text("0,1,2,3,4,5,1,1,1\n")
    with pytest.raises(vidlake.DatasetError, match="start at 1"):
        read_mot_txt(str(p))


def test_ingest_mot17_nine_columns(tmp_path):
    seq = aa.mot_sequence(aa.MOT17, tmp_path / "MOT17" / "train" / "MOT17-02-FRCNN", 600, 1080, 1920, same=True)
    ds = vidlake.empty(str(tmp_path / "ds"))
    assert ingest_mot(ds, [str(tmp_path / "MOT17" / "train")]) == [0]
    ds = vidlake.load(str(tmp_path / "ds"), read_only=True)
    assert ds.frames[0].shape == (600, 1080, 1920, 3)
    assert ds.boxes.meta["coords"] == {"type": "pixel", "mode": "LTWH"}
    assert ds.boxes.meta["aligned_to"] == "frames"
    gt = aa.mot_gt_by_frame(seq / "gt" / "gt.txt")
    for f in (0, 3):
        rows = gt[f + 1]
        np.testing.assert_array_equal(ds.boxes[0][f].numpy(), rows[:, 2:6].astype(np.float32))
        assert ds.ids[0][f].numpy().tolist() == rows[:, 1].astype(int).tolist()
        assert ds.classes[0][f].numpy().tolist() == rows[:, 7].astype(int).tolist()
        np.testing.assert_array_equal(ds.visibility[0][f].numpy(), rows[:, 8].astype(np.float32))
        np.testing.assert_array_equal(ds.confidences[0][f].numpy(), rows[:, 6].astype(np.float32))
    assert ds.boxes[0][4].numpy().shape == (0, 4)                        # gt covers frames 1-4 only
    assert ds.classes[0].data()["text"][0][0] == MOT_CLASS_NAMES[7] == "static_person"
    md = ds.metadata[0].numpy()
    assert md["frameRate"] == 30
    assert md["columns"] == 9
    assert ds.reference_id[0].text() == "MOT17-02-FRCNN"
    np.testing.assert_array_equal(ds.frames[0][599].numpy(), aa.reference_decode(seq / "img1" / "000600.jpg"))
    # importing again replaces the row (upsert by sequence name)
    assert ingest_mot(vidlake.load(str(tmp_path / "ds")), [str(seq)]) == [0]
    assert len(vidlake.load(str(tmp_path / "ds"))) == 1


def test_ingest_mot_cli_two_sequences_and_errors(tmp_path, capsys):
    root = tmp_path / "train"
    aa.mot_sequence(aa.TUD, root / "TUD-Campus", 71, 48, 64)
    aa.mot_sequence(aa.MOT17, root / "MOT17-02-FRCNN", 600, 1080, 1920, same=True)
    out = str(tmp_path / "ds")
    assert main(["ingest", "--format", "mot", str(root), "--to", out, "-q"]) == 0
    assert "ingested 2 of 2 mot sequence(s)" in capsys.readouterr().out
    ds = vidlake.load(out)
    assert [ds.reference_id[i].text() for i in range(2)] == ["MOT17-02-FRCNN", "TUD-Campus"]
    tud = aa.mot_gt_by_frame(root / "TUD-Campus" / "gt" / "gt.txt")
    np.testing.assert_array_equal(ds.boxes[1][10].numpy(), tud[11][:, 2:6].astype(np.float32))
    np.testing.assert_array_equal(ds.frames[1][10].numpy(), aa.reference_decode(root / "TUD-Campus" / "img1" / "000011.jpg"))
    assert ds.metadata[1].numpy()["columns"] == 10
    assert ds.classes[1][0].numpy().tolist() == [0] * len(tud[1])
    clip = ds[1, 10:12]
    assert clip.frames.numpy().shape == (2, 48, 64, 3)
    assert len(clip.ids.numpy(aslist=True)) == 2
    assert clip.timestamps is None                                        # image sequences carry no times

    # a sequence whose frames disagree with seqinfo.ini is reported and skipped
    bad = tmp_path / "bad"
    aa.mot_sequence(aa.MOT17, bad / "MOT17-02-FRCNN", 600, 36, 64, same=True)
    assert main(["ingest", "--format", "mot", str(bad), "--to", out, "-q"]) == 1
    assert "frames are 64x36 but seqinfo.ini says 1920x1080" in capsys.readouterr().err
    short = tmp_path / "short"
    aa.mot_sequence(aa.TUD, short / "TUD-Campus", 3, 8, 8)
    with pytest.raises(vidlake.DatasetError, match=r"seqinfo.ini says 71 frames but .* holds 3"):
        ingest_mot(vidlake.load(out), [str(short / "TUD-Campus")])
    assert len(vidlake.load(out)) == 2


@pytest.fixture(scope="module")
def dog2_video(tmp_path_factory):
    n = len(read_lasot(str(aa.need(aa.LASOT_DOG2)))["boxes"])
    return aa.make_video(tmp_path_factory.mktemp("lasot") / "dog-2.mp4", n)


def test_read_lasot():
    ann = read_lasot(str(aa.LASOT_DOG2))
    assert ann["boxes"].shape == (1363, 4)
    assert ann["boxes"][0].tolist() == [646, 305, 253, 237]
    assert ann["absent"].shape == (1363,)
    assert ann["absent"].dtype == bool
    assert ann["nlp"] == "dog running in a circle"
    assert len(ann["attributes"]) == 14
    assert "full_occlusion" not in ann


def test_ingest_lasot_video_aligned(tmp_path, dog2_video):
    seq = tmp_path / "dog" / "dog-2"
    shutil.copytree(aa.LASOT_DOG2, seq)
    (seq / "full_occlusion.txt").write_text(",".join("1" if k % 100 == 0 else "0" for k in range(1363)) + "\n")
    shutil.copy(dog2_video, seq / "dog-2.mp4")                           # the video beside the annotations
    out = str(tmp_path / "ds")
    assert main(["ingest", "--format", "lasot", str(seq), "--to", out, "-q"]) == 0
    ds = vidlake.load(out, read_only=True)
    gt = np.loadtxt(aa.LASOT_DOG2 / "groundtruth.txt", delimiter=",", dtype=np.float32)
    assert ds.boxes[0].shape == (1363, 1, 4)
    assert ds.boxes.meta["aligned_to"] == "videos"
    np.testing.assert_array_equal(ds.boxes[0].numpy(), gt[:, None, :])
    row = ds[0, 1000:1010]
    got = row.numpy()
    assert got["videos"].shape == (10, 48, 64, 3)
    np.testing.assert_array_equal(got["videos"], ds.videos[0, 1000:1010].numpy())
    np.testing.assert_array_equal(got["boxes"], gt[1000:1010, None, :])
    np.testing.assert_allclose(row.timestamps, np.arange(1000, 1010) / 30, atol=1e-3)
    absent = np.loadtxt(aa.LASOT_DOG2 / "absent.txt").astype(bool)
    assert got["absent"].tolist() == absent[1000:1010].tolist()
    assert ds.full_occlusion[0].numpy()[::100].all()
    assert ds.full_occlusion[0].numpy().sum() == 14
    assert not ds.out_of_view[0].numpy().any()                           # no file: all False
    assert ds.metadata[0].numpy()["nlp"] == "dog running in a circle"

    # a video with a different number of frames is refused: the boxes would not line up
    other = tmp_path / "other" / "dog-2"
    shutil.copytree(aa.LASOT_DOG2, other)
    short = aa.make_video(tmp_path / "short.mp4", 100)
    with pytest.raises(vidlake.SampleAppendError, match=r"1363 item.*100 frame"):
        ingest_lasot(vidlake.load(out), [str(other)], video=str(short))
    assert len(vidlake.load(out)) == 1


def test_ingest_lasot_image_folder(tmp_path):
    seq = tmp_path / "dog-2"
    seq.mkdir()
    lines = (aa.LASOT_DOG2 / "groundtruth.txt").read_text().splitlines()[:30]
    (seq / "groundtruth.txt").write_text("\r\n".join(lines) + "\r\n")
    img = seq / "img"
    img.mkdir()
    for k in range(1, 31):
        (img / f"{k:08d}.jpg").write_bytes(aa.jpg_bytes(aa.frame_image(k, 24, 32)))
    ds = vidlake.empty(str(tmp_path / "ds"))
    ingest_lasot(ds, [str(seq)])
    assert ds.boxes.meta["aligned_to"] == "frames"
    assert ds.frames[0].shape == (30, 24, 32, 3)
    np.testing.assert_array_equal(ds[0, 29].boxes.numpy(), np.array([lines[29].split(",")], np.float32))
    np.testing.assert_array_equal(ds[0, 29].frames.numpy(), aa.reference_decode(img / "00000030.jpg"))
    (img / "00000030.jpg").unlink()
    with pytest.raises(vidlake.DatasetError, match=r"29 frames but groundtruth.txt has 30"):
        ingest_lasot(ds, [str(seq)])
