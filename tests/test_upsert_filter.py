"""ds.upsert by reference id (replace, insert, atomic on failure, durable) and ds.filter views."""
from __future__ import annotations

import json
import uuid

import annotation_assets as aa
import numpy as np
import pytest
from helpers import snapshot

import vidlake


def scene(ref: str, n: int, weather: str, shade: int = 0) -> dict:
    return {"reference_id": ref, "frames": [aa.frame_image(k + shade, 8, 8) for k in range(n)],
            "boxes": [np.full((1, 4), k + shade, np.float32) for k in range(n)], "metadata": {"weather": weather, "n": n}}


def make(path: str):
    ds = vidlake.empty(path, overwrite=True)
    ds.create_tensor("reference_id", htype="text")
    ds.create_tensor("frames", htype="sequence[image]", sample_compression="png")
    ds.create_tensor("boxes", htype="sequence[bbox]", aligned_to="frames")
    ds.create_tensor("metadata", htype="json")
    return ds


@pytest.fixture(params=["local", "memory"])
def ds_path(request, tmp_path):
    if request.param == "memory":
        return f"mem://ups-{uuid.uuid4().hex}"
    return str(tmp_path / "ds")


def test_upsert_insert_and_replace(ds_path):
    ds = make(ds_path)
    assert ds.upsert([scene("a", 3, "rain"), scene("b", 2, "sun")]) == [0, 1]
    assert ds.upsert(scene("a", 5, "snow", shade=50)) == [0]            # replaces row 0 (every tensor)
    assert ds.upsert(scene("c", 1, "fog")) == [2]                        # no match: appended
    for d in (ds, vidlake.load(ds_path)):
        assert len(d) == 3
        assert [d.reference_id[i].text() for i in range(3)] == ["a", "b", "c"]
        assert d.metadata[0].data() == {"value": {"weather": "snow", "n": 5}}
        assert len(d.frames[0]) == 5
        assert d.boxes[0].shape == (5, 1, 4)
        np.testing.assert_array_equal(d.frames[0][4].numpy(), aa.frame_image(54, 8, 8))
        assert d.boxes[0][4].numpy().tolist() == [[54, 54, 54, 54]]
        np.testing.assert_array_equal(d.frames[1][1].numpy(), aa.frame_image(1, 8, 8))
    # several upserts in one `with` share a commit; the same key twice: the last wins
    with ds:
        ds.upsert(scene("b", 1, "x"))
        ds.upsert(scene("b", 2, "y"))
        ds.upsert(scene("d", 1, "z"))
    d = vidlake.load(ds_path)
    assert len(d) == 4
    assert d.metadata[1].numpy() == {"weather": "y", "n": 2}
    assert d.reference_id[3].text() == "d"


def test_upsert_rewrites_only_the_table_segment(tmp_path):
    root = tmp_path / "ds"
    ds = make(str(root))
    for i in range(8):
        ds.upsert(scene(f"s{i}", 1, "w"))
    meta0 = json.loads((root / "dataset_meta.json").read_text())
    ds.upsert(scene("s5", 2, "new"))
    meta1 = json.loads((root / "dataset_meta.json").read_text())
    assert meta1["format_version"] == vidlake.format.records.FORMAT_VERSION
    segs0, segs1 = meta0["tensor_state"]["metadata"]["segments"], meta1["tensor_state"]["metadata"]["segments"]
    assert [(s["start"], s["count"]) for s in segs0] == [(s["start"], s["count"]) for s in segs1]
    changed = [a["id"] != b["id"] for a, b in zip(segs0, segs1)]
    assert sum(changed) == 1                                            # the segment holding row 5
    assert meta1["tensor_state"]["metadata"]["length"] == 8
    assert vidlake.load(str(root)).metadata[5].numpy() == {"weather": "new", "n": 2}


def test_upsert_atomic_on_failure(tmp_path):
    root = tmp_path / "ds"
    ds = make(str(root))
    ds.upsert([scene("a", 2, "rain"), scene("b", 2, "sun")])
    before = snapshot(root)
    bad_box = scene("a", 2, "snow")
    bad_box["boxes"] = [np.zeros((1, 4)), np.zeros((1, 3))]
    misaligned = scene("b", 3, "snow")
    misaligned["boxes"] = misaligned["boxes"][:2]
    missing = scene("z", 1, "x")
    del missing["metadata"]
    for rows, err in (([scene("b", 1, "ok"), bad_box], vidlake.HtypeError),   # first row fine, second bad
                      ([misaligned], vidlake.SampleAppendError),
                      ([scene("new", 1, "ok"), missing], vidlake.SampleAppendError)):
        with pytest.raises(err):
            ds.upsert(rows)
        assert snapshot(root) == before
        assert len(ds) == 2
        assert ds.metadata[1].numpy() == {"weather": "sun", "n": 2}
        assert len(ds.frames[0]) == 2
    with pytest.raises(vidlake.DatasetError, match="upsert key 'nope'"):
        ds.upsert(scene("a", 1, "x"), key="nope")

    # a failing commit (storage error at the commit point) restores the replaced rows in memory too
    real_put = ds.provider.put

    def failing_put(key, data):
        if key == "dataset_meta.json":
            raise OSError("disk full")
        return real_put(key, data)

    ds.provider.put = failing_put
    with pytest.raises(vidlake.StorageError, match="unchanged"):
        ds.upsert(scene("a", 4, "hail"))
    ds.provider.put = real_put
    assert ds.metadata[0].numpy() == {"weather": "rain", "n": 2}
    assert len(ds.frames[0]) == 2
    assert vidlake.load(str(root)).metadata[0].numpy() == {"weather": "rain", "n": 2}
    ds.upsert(scene("a", 4, "hail"))                                     # and the dataset still works
    assert vidlake.load(str(root)).metadata[0].numpy() == {"weather": "hail", "n": 4}


def test_upsert_duplicate_keys_refused(tmp_path):
    ds = make(str(tmp_path / "ds"))
    ds.append(scene("a", 1, "x"))
    ds.append(scene("a", 1, "y"))
    with pytest.raises(vidlake.DatasetError, match=r"matches rows \[0, 1\]"):
        ds.upsert(scene("a", 1, "z"))


def test_filter_view(ds_path):
    ds = make(ds_path)
    ds.upsert([scene("a", 2, "rain"), scene("b", 3, "sun"), scene("c", 1, "rain"), scene("d", 4, "sun")])
    rain = ds.filter(lambda row: row.metadata.numpy()["weather"] == "rain")
    assert len(rain) == 2
    assert rain.indices == [0, 2]
    assert [r.reference_id.text() for r in rain] == ["a", "c"]
    assert rain[1].reference_id.text() == "c"
    assert rain[-1].metadata.numpy()["n"] == 1
    assert rain.metadata.numpy() == [{"weather": "rain", "n": 2}, {"weather": "rain", "n": 1}]
    assert [b.shape for b in rain.boxes.numpy(aslist=True)] == [(2, 1, 4), (1, 1, 4)]
    np.testing.assert_array_equal(rain[0].frames.numpy(), np.stack([aa.frame_image(k, 8, 8) for k in range(2)]))
    assert len(rain[0:1]) == 1
    assert rain[0:1].reference_id.numpy() == ["a"]
    big = ds.filter(lambda row: len(row.frames) >= 3)
    assert big.indices == [1, 3]
    assert len(ds.filter(lambda row: row.reference_id.text() == "zz")) == 0
    # numpy-array results are truthy when all true
    assert ds.filter(lambda row: row.boxes.numpy(aslist=True)[0] >= 0).indices == [0, 1, 2, 3]
