"""Small helpers shared by the dataset-level tests."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import assets
import pytest


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
