"""Deep Lake's "Creating Datasets with Sequences" (MOT16) script, end to end, on real gt files.

The seed builds one row per sequence with ``sequence[image]`` frames, ``sequence[bbox]`` boxes
and ``sequence[]`` uint32 ids, then reads frame 10 of a sequence back.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import annotation_assets as aa
import numpy as np

import vidlake


def build_seed(tmp_path):
    """The seed script, as the tutorial writes it (pandas replaced by numpy)."""
    seqs = {
        "TUD-Campus": aa.mot_sequence(aa.TUD, tmp_path / "mot" / "TUD-Campus", 71, 48, 64),
        "MOT17-02": aa.mot_sequence(aa.MOT17, tmp_path / "mot" / "MOT17-02", 600, 36, 64),
    }
    ds = vidlake.empty(str(tmp_path / "mot_ds"), overwrite=True)
    with ds:
        ds.create_tensor("frames", htype="sequence[image]", sample_compression="jpg")
        ds.create_tensor("boxes", htype="sequence[bbox]")
        ds.create_tensor("ids", htype="sequence[]", dtype="uint32")
        for folder in seqs.values():
            img_folder = folder / "img1"
            gt = np.loadtxt(folder / "gt" / "gt.txt", delimiter=",")
            fns = sorted(os.listdir(img_folder))
            boxes_seq, ids_seq = [], []
            for k in range(1, len(fns) + 1):
                rows = gt[gt[:, 0] == k]
                boxes_seq.append(rows[:, 2:6].astype("float32"))
                ids_seq.append(rows[:, 1].astype("uint32"))
            ds.append({"frames": [vidlake.read(str(img_folder / f)) for f in fns],
                       "boxes": boxes_seq, "ids": ids_seq})
    return ds, seqs


def test_seed_script_end_to_end(tmp_path):
    ds, seqs = build_seed(tmp_path)
    ds = vidlake.load(str(tmp_path / "mot_ds"), read_only=True)     # a fresh load
    assert len(ds) == 2
    assert [len(ds.frames[i]) for i in range(2)] == [71, 600]
    assert ds.frames.shape == (2, None, None, 64, 3)
    assert ds.frames[0].shape == (71, 48, 64, 3)
    assert ds.frames[1].shape == (600, 36, 64, 3)

    for seq, folder in enumerate(seqs.values()):
        gt = aa.mot_gt_by_frame(folder / "gt" / "gt.txt")
        for frame in (0, 3, 10, len(ds.frames[seq]) - 1):
            img = ds.frames[seq][frame].numpy()
            np.testing.assert_array_equal(img, aa.reference_decode(folder / "img1" / f"{frame + 1:06d}.jpg"))
            rows = gt.get(frame + 1, np.zeros((0, 10)))
            boxes = ds.boxes[seq][frame].numpy()
            ids = ds.ids[seq][frame].numpy()
            assert boxes.dtype == np.float32
            assert ids.dtype == np.uint32
            np.testing.assert_array_equal(boxes, rows[:, 2:6].astype(np.float32).reshape(-1, 4))
            np.testing.assert_array_equal(ids, rows[:, 1].astype(np.uint32))
    # frame 10 of TUD-Campus, exactly as the gt file has it
    assert ds.ids[0][10].numpy().tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(ds.boxes[0][10].numpy()[[0, 4]],
                                  np.array([[483, 169, 88, 250], [166, 210, 70.546, 153.68]], np.float32))
    # slices of a sequence
    clip = ds.frames[0, 5:9].numpy()
    assert clip.shape == (4, 48, 64, 3)
    np.testing.assert_array_equal(clip[2], ds.frames[0][7].numpy())
    assert len(ds.frames[0, 5:9]) == 4
    assert [b.shape for b in ds.boxes[1, 0:6].numpy(aslist=True)][4:] == [(0, 4), (0, 4)]  # gt covers 1-4


def test_seed_reload_in_new_process(tmp_path):
    build_seed(tmp_path)
    code = f"""
import json, vidlake
ds = vidlake.load({str(tmp_path / 'mot_ds')!r}, read_only=True)
print(json.dumps({{"n": len(ds), "frames": [len(ds.frames[i]) for i in range(len(ds))],
                  "ids10": ds.ids[0][10].numpy().tolist(), "box10": ds.boxes[0][10].numpy().tolist(),
                  "px": ds.frames[0][10].numpy()[5, 7].tolist()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    gt = aa.mot_gt_by_frame(tmp_path / "mot" / "TUD-Campus" / "gt" / "gt.txt")[11]
    assert res["n"] == 2
    assert res["frames"] == [71, 600]
    assert res["ids10"] == gt[:, 1].astype(int).tolist()
    assert res["box10"] == gt[:, 2:6].astype(np.float32).tolist()
    assert res["px"] == aa.reference_decode(tmp_path / "mot" / "TUD-Campus" / "img1" / "000011.jpg")[5, 7].tolist()
