"""bbox coords and conversion, class labels, safe casts, json metadata (vidlake/annotations.py)."""
from __future__ import annotations

import numpy as np
import pytest

import vidlake
from vidlake.htypes import lookup
from vidlake.htypes.base import safe_cast
from vidlake.htypes.bbox import check_coords, convert_boxes


def htype_params(htype, dtype=None, class_names=None, coords=None):
    return lookup(htype).params(dtype, class_names, coords)


def test_bbox_coords_and_conversion():
    assert check_coords(None) == {"type": "pixel", "mode": "LTWH"}
    assert check_coords({"mode": "LTRB"}) == {"type": "pixel", "mode": "LTRB"}
    for bad in ({"type": "percent"}, {"mode": "XYWH"}, {"x": 1}, "LTWH"):
        with pytest.raises(ValueError, match="coords"):
            check_coords(bad)
    b = np.array([[10, 20, 30, 40]], np.float32)
    ltwh = {"type": "pixel", "mode": "LTWH"}
    np.testing.assert_allclose(convert_boxes(b, ltwh, mode="LTRB"), [[10, 20, 40, 60]])
    np.testing.assert_allclose(convert_boxes(b, ltwh, mode="CCWH"), [[25, 40, 30, 40]])
    frac = convert_boxes(b, ltwh, type="fractional", image_size=(100, 200))
    np.testing.assert_allclose(frac, [[0.05, 0.2, 0.15, 0.4]])
    back = convert_boxes(convert_boxes(frac, {"type": "fractional", "mode": "LTWH"}, mode="CCWH"),
                         {"type": "fractional", "mode": "CCWH"}, mode="LTWH", type="pixel", image_size=(100, 200))
    np.testing.assert_allclose(back, b, rtol=1e-5)
    with pytest.raises(ValueError, match="image_size"):
        convert_boxes(b, ltwh, type="fractional")


def test_bbox_tensor_rules(tmp_path):
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("boxes", htype="bbox", coords={"type": "fractional", "mode": "CCWH"})
    assert ds.boxes.meta["coords"] == {"type": "fractional", "mode": "CCWH"}
    assert ds.boxes.dtype == np.float32
    ds.boxes.append([[0.5, 0.5, 0.1, 0.2]])
    ds.boxes.append([])                                    # no boxes: (0, 4)
    assert ds.boxes[1].numpy().shape == (0, 4)
    for bad, msg in (([[1, 2, 3]], "last dimension is 4"), (5, "last dimension is 4"),
                     ([["a", "b", "c", "d"]], "cannot store")):
        with pytest.raises(vidlake.HtypeError, match=msg):
            ds.boxes.append(bad)
    assert len(ds.boxes) == 2
    ds.create_tensor("ib", htype="bbox", dtype="int32")
    ds.ib.append(np.array([[1.0, 2, 3, 4]]))               # integral floats: exact, accepted
    with pytest.raises(vidlake.HtypeError, match=r"value 2.5"):
        ds.ib.append(np.array([[1.0, 2.5, 3, 4]]))
    with pytest.raises(ValueError, match="coords is only for"):
        ds.create_tensor("x", htype="generic", coords={"mode": "LTWH"})


def test_class_labels(tmp_path):
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
    ds.labels.append(["dog", "cat", 1])
    ds.labels.append(np.array([0], np.int64))
    assert ds.labels[0].numpy().tolist() == [1, 0, 1]
    assert ds.labels[0].data()["text"] == ["dog", "cat", "dog"]
    with pytest.raises(vidlake.HtypeError, match=r"class 'bird' is not in.*fixed at creation"):
        ds.labels.append("bird")
    with pytest.raises(vidlake.HtypeError, match="class id -1"):
        ds.labels.append(-1)
    with pytest.raises(ValueError, match="duplicates"):
        ds.create_tensor("x", htype="class_label", class_names=["a", "a"])
    with pytest.raises(ValueError, match="class_names is only for"):
        ds.create_tensor("x", htype="bbox", class_names=["a"])
    assert vidlake.load(str(tmp_path / "ds")).labels.meta["class_names"] == ["cat", "dog"]


def test_safe_cast():
    assert safe_cast(np.array([1.0, 2.0]), "float32", "t").dtype == np.float32
    assert safe_cast(np.array([1, 2**31]), "uint32", "t").tolist() == [1, 2**31]
    assert safe_cast(np.array([True, False]), "uint8", "t").tolist() == [1, 0]
    for arr, dt in ((np.array([2**32]), "uint32"), (np.array([-1]), "uint8"), (np.array([0.5]), "int64"),
                    (np.array([np.nan]), "int32"), (np.array([1e300]), "float32"), (np.array([2]), "bool"),
                    (np.array(["1"]), "int32")):
        with pytest.raises(vidlake.HtypeError):
            safe_cast(arr, dt, "t")
    assert htype_params("sequence[bbox]") == {"coords": {"type": "pixel", "mode": "LTWH"}, "dtype": "float32"}
    assert htype_params("sequence[]", dtype="uint32") == {"dtype": "uint32"}
    with pytest.raises(ValueError, match="has dtype uint8"):
        htype_params("image", dtype="float32")


def test_json_metadata_and_text(tmp_path):
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("metadata", htype="json")
    ds.create_tensor("reference_id", htype="text")
    ds.append({"metadata": {"weather": "rain", "frames": 5000, "tags": ["a"]}, "reference_id": "scene-1"})
    ds = vidlake.load(str(tmp_path / "ds"))
    assert ds.metadata[0].data() == {"value": {"weather": "rain", "frames": 5000, "tags": ["a"]}}
    assert ds.metadata[0].numpy() == {"weather": "rain", "frames": 5000, "tags": ["a"]}
    assert ds.reference_id[0].text() == "scene-1"
    assert ds.reference_id[0].data() == {"value": "scene-1"}
    with pytest.raises(vidlake.HtypeError, match="JSON-serialisable"):
        ds.metadata.append({"x": object()})
    with pytest.raises(vidlake.HtypeError, match="takes str"):
        ds.reference_id.append(5)
