"""``ds.query_items`` (issue 16): per-frame item metadata queried through an index kept current
on append and update, checked against a brute-force scan of every scene's items."""
from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

import vidlake
from vidlake import DatasetItem, ItemRef, SceneError, VideoScene
from vidlake.scenes.index import _MISSING, field_value

if TYPE_CHECKING:
    from pathlib import Path



def _image(tmp_path: Path) -> str:
    p = tmp_path / "f.png"
    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(p)
    return str(p)


def _random_md(rng: random.Random) -> dict:
    md: dict = {}
    if rng.random() < 0.8:
        md["cars"] = rng.randint(0, 6)
    if rng.random() < 0.7:
        md["weather"] = rng.choice(["rain", "sun", "fog"])
    if rng.random() < 0.3:
        md["speed"] = rng.choice([0.5, 1, 2.5, 4])
    if rng.random() < 0.5:
        md["cam"] = {"id": rng.randint(0, 2)}
    if rng.random() < 0.2:
        md["flag"] = rng.choice([True, False])
    return md


def _scenes(rng: random.Random, img: str, prefix: str, n: int) -> list[VideoScene]:
    return [VideoScene(f"{prefix}{k}", items=[DatasetItem(img, f"{prefix}{k}-{j}", _random_md(rng))
                                             for j in range(rng.randint(0, 5))], frame_rate=10)
            for k in range(n)]


def _holds(v, op, arg) -> bool:
    num = isinstance(v, (int, float)) and not isinstance(v, bool)
    if op == "exists":
        return (v is not _MISSING) == bool(arg)
    if v is _MISSING:
        return False
    if op == "==":
        return v == arg and isinstance(v, bool) == isinstance(arg, bool)
    if op == "!=":
        return not _holds(v, "==", arg)
    if op == "in":
        return any(_holds(v, "==", a) for a in arg)
    if op == "not in":
        return not _holds(v, "in", arg)
    if isinstance(arg, str) != isinstance(v, str) or not (num or isinstance(v, str)):
        return False
    return {">": v > arg, ">=": v >= arg, "<": v < arg, "<=": v <= arg}[op]


def _brute(ds, conditions) -> list[ItemRef]:
    out = []
    for ref in ds.reference_ids:
        for frame, it in enumerate(ds.scene(ref).items):
            ok = True
            for field, cond in conditions.items():
                ops = cond.items() if isinstance(cond, dict) else [("==", cond)]
                ok = ok and all(_holds(field_value(it.metadata, field), op, arg) for op, arg in ops)
            if ok:
                out.append(ItemRef(ref, it.reference_id, frame))
    return out


def _random_condition(rng: random.Random) -> dict:
    choices = [
        lambda: {"cars": rng.randint(0, 6)},
        lambda: {"cars": {">": rng.randint(0, 6)}},
        lambda: {"cars": {">=": 2, "<": rng.randint(3, 7)}},
        lambda: {"weather": rng.choice(["rain", "sun", "fog"])},
        lambda: {"weather": {"in": rng.sample(["rain", "sun", "fog"], 2)}},
        lambda: {"weather": {"not in": ["rain"]}},
        lambda: {"weather": {"!=": "sun"}},
        lambda: {"speed": {"exists": rng.choice([True, False])}},
        lambda: {"cars": {"exists": False}},
        lambda: {"cam.id": rng.randint(0, 2)},
        lambda: {"speed": {"<=": 2.5}},
        lambda: {"flag": True},
        lambda: {"weather": {">=": "rain"}},
    ]
    cond: dict = {}
    for _ in range(rng.randint(1, 2)):
        cond.update(rng.choice(choices)())
    return cond


def test_query_items_matches_a_scan(tmp_path):
    rng = random.Random(16)
    img = _image(tmp_path)
    root = tmp_path / "ds"
    ds = vidlake.scene_dataset(root)
    ds.append(_scenes(rng, img, "a", 15))
    conds = [_random_condition(rng) for _ in range(60)]
    for c in conds:
        assert ds.query_items(c) == _brute(ds, c), c
    # appended and updated scenes (new items, changed metadata, fewer items) keep the index exact
    ds.append(_scenes(rng, img, "b", 6))
    ds.append(_scenes(rng, img, "a", 5), update=True)          # a0..a4 get new items
    ds.append([VideoScene("a5", items=[], frame_rate=10)], update=True)   # a5 loses every item
    for c in conds:
        assert ds.query_items(c) == _brute(ds, c), c
    # a fresh load builds the same index from the stored item metadata
    fresh = vidlake.scene_dataset(root)
    for c in conds:
        assert fresh.query_items(c) == _brute(fresh, c), c
    assert ds.query_items(cars=3) == ds.query_items({"cars": 3})


def test_query_items_basics(tmp_path):
    img = _image(tmp_path)
    ds = vidlake.scene_dataset(tmp_path / "ds")
    items = [DatasetItem(img, f"v-{k}", {"is_raining": k % 2 == 0, "k": k}) for k in range(4)]
    ds.append([VideoScene("v", items=items, frame_rate=5), VideoScene("w", items=[DatasetItem(img, "w-0")])])
    assert ds.query_items(is_raining=True) == [ItemRef("v", "v-0", 0), ItemRef("v", "v-2", 2)]
    hit = ds.query_items({"k": {">=": 3}})[0]
    assert (hit.scene, hit.item, hit.frame) == ("v", "v-3", 3)
    np.testing.assert_array_equal(ds.scene(hit.scene).frames[hit.frame].numpy(), np.full((8, 8, 3), 9, np.uint8))
    assert ds.query_items({"k": {"exists": False}}) == [ItemRef("w", "w-0", 0)]
    assert len(ds.query_items()) == 5
    with pytest.raises(SceneError, match="takes a list"):
        ds.query_items({"k": {"in": 3}})
    # scene metadata conditions speak the same language: exists False is the rows without it
    ds.update_metadata({"v": {"weather": "rain"}})
    assert ds.query_metadata({"weather": {"exists": False}}) == ["w"]


def test_query_items_of_a_video_dataset_is_empty(tmp_path):
    from helpers import video

    ds = vidlake.scene_dataset(tmp_path / "ds")
    ds.append([VideoScene("v", video_location=video("stub_h264.mp4"), metadata={"a": 1})])
    assert ds.query_items() == []
    assert ds.query_items(a=1) == []
