"""Small helpers shared by the tests: test videos, dataset snapshots, and tables indexes of
damaged container files."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import assets
import numpy as np
import pytest

import vidlake
from vidlake import _core

if TYPE_CHECKING:
    from collections.abc import Iterator


def video(name: str) -> str:
    """Path of a shared test video; fails (not skips) when the test data is missing."""
    p = assets.VIDEO_DIR / name
    if not p.exists():
        pytest.fail(f"shared test video missing: {p}")
    return str(p)


def snapshot(root: Path) -> dict:
    """Every file under a dataset folder with its hash: "unchanged" means equal snapshots."""
    out = {}
    for dirpath, _d, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def tables_indexes_of_damaged(src: bytes, damage: Callable[[bytearray, int, np.random.Generator], None],
                              tmp_path: Path, suffix: str, trials: int, seed: int) -> Iterator[tuple[Path, object]]:
    """Damaged copies of a container file, indexed by the tables path (``mode="tables"``).

    For each of ``trials`` copies, ``damage(data, trial, rng)`` changes the bytes in place; the
    copy is written as ``damaged<trial><suffix>`` and its tables index built. A copy the tables
    path refuses must raise ``VideoDecodeError`` naming the file (checked here); the accepted
    ones are yielded as ``(path, index)`` for the caller's own check. Never a crash."""
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        data = bytearray(src)
        damage(data, trial, rng)
        p = tmp_path / f"damaged{trial}{suffix}"
        p.write_bytes(bytes(data))
        message = ""
        try:
            idx = _core.Index.build(str(p), -1, str(p), "tables")
        except vidlake.VideoDecodeError as e:
            message = str(e)
            idx = None
        if idx is None:
            assert p.name in message, f"the error does not name the file {p.name}: {message}"
            continue
        yield p, idx


def assert_every_index_mode_refuses(path: Path, error: type[Exception], why: str) -> None:
    """Each index build mode (demux, tables, auto, checked) raises ``error`` matching ``why`` on
    the file ``path``, rather than build an index the loader refuses."""
    for mode in ("demux", "tables", "auto", "checked"):
        with pytest.raises(error, match=why):
            _core.Index.build(str(path), -1, str(path), mode)
