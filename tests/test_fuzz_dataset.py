"""Property: no damage to a dataset's metadata or tables makes vidlake raise anything but a
``vidlake.VidlakeError`` (issue 13, part 4; docs/DESIGN.md "Threat model").

Hypothesis damages one JSON object of a small real dataset (the commit record, a tensor meta or
a table segment): a value anywhere in it replaced by any JSON value, a key deleted, or the raw
bytes cut, flipped or spliced. Then the dataset is loaded and every sample read.

In the test suite the run is small and derandomised (the same examples every time); ``make fuzz``
runs it with ``VIDLAKE_FUZZ_EXAMPLES`` examples and fresh randomness. A failure found that way
becomes an ``@example`` below.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import vidlake

VIDEO = "stub_h264.mp4"
EXAMPLES = int(os.environ.get("VIDLAKE_FUZZ_EXAMPLES", "40"))
FUZZING = "VIDLAKE_FUZZ_EXAMPLES" in os.environ

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not FUZZING, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, asset_path) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "ds"
    ds = vidlake.empty(str(root))
    with ds:
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
        ds.create_tensor("notes", htype="text")
        ds.create_tensor("boxes", htype="sequence[bbox]", coords={"type": "pixel", "mode": "LTWH"})
        for k in range(2):
            ds.append({"videos": vidlake.read(asset_path(VIDEO)), "labels": k, "notes": f"clip {k}",
                       "boxes": [[[1, 2, 3, 4]], [], [[5, 6, 7, 8], [1, 1, 1, 1]]]})
    return root


def json_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.json"))


def read_everything(root: Path) -> None:
    ds = vidlake.load(str(root), read_only=True)
    for t in ds.tensors.values():
        _ = len(t), t.shape
        for i in range(len(t)):
            s = t[i]
            _ = s.shape, s.numpy(aslist=True) if t.htype.startswith("sequence") else s.numpy()
            if t.htype == "video":
                _ = s.timestamps, t[i, 1:3].numpy(), s.sample_info


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["../x", "\ud800", "videos", "mp4", "video", "1.1", "vidlake"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)


def paths_of(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(obj, list):
        for k, v in enumerate(obj):
            out += paths_of(v, (*prefix, k))
    return out


@st.composite
def json_damage(draw, obj: Any) -> Any:
    paths = [p for p in paths_of(obj) if p]
    path = draw(st.sampled_from(paths))
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return obj


def bytes_damage(draw, raw: bytes) -> bytes:
    kind = draw(st.sampled_from(["cut", "flip", "splice"]))
    at = draw(st.integers(0, max(0, len(raw) - 1)))
    if kind == "cut":
        return raw[:at]
    if kind == "flip":
        return raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    return raw[:at] + draw(st.binary(max_size=16)) + raw[at:]


def check(pristine: Path, name: str, mutate) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        shutil.copytree(pristine, root)
        path = root / name
        path.write_bytes(mutate(path.read_bytes()))
        with contextlib.suppress(vidlake.VidlakeError):
            read_everything(root)


@SETTINGS
@given(data=st.data())
@example(data=None)  # the pristine dataset reads (no damage)
def test_damaged_json_raises_only_vidlake_errors(pristine, data):
    if data is None:
        read_everything(pristine)
        return
    name = data.draw(st.sampled_from(json_files(pristine)), label="file")
    if data.draw(st.booleans(), label="json-level"):
        def mutate(raw: bytes) -> bytes:
            return json.dumps(data.draw(json_damage(json.loads(raw)), label="damage")).encode()
    else:
        def mutate(raw: bytes) -> bytes:
            return bytes_damage(data.draw, raw)
    check(pristine, name, mutate)
