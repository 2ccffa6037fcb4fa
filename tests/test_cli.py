"""The ``vidlake`` command line: ingest, info, frames."""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import assets
import numpy as np
import oracle
import pytest

from vidlake.api import load
from vidlake.cli import main, parse_frames


def video(name: str) -> str:
    p = assets.VIDEO_DIR / name
    if not p.exists():
        pytest.fail(f"shared test video missing: {p}")
    return str(p)


def test_parse_frames():
    assert parse_frames("7") == 7
    assert parse_frames("-1") == -1
    assert parse_frames("0:10") == slice(0, 10)
    assert parse_frames("::4") == slice(None, None, 4)
    assert parse_frames(":") == slice(None, None)
    assert parse_frames("3,17,5") == [3, 17, 5]
    with pytest.raises(argparse.ArgumentTypeError, match="bad frame selection"):
        parse_frames("a:b")


def test_ingest_info_frames(tmp_path, capsys):
    src = tmp_path / "videos"
    (src / "sub").mkdir(parents=True)
    for n in ("stub_h264.mp4", "bikes.mp4"):
        shutil.copy(video(n), src / n)
    shutil.copy(video("carphone_distorted.mp4"), src / "sub" / "carphone.mp4")
    shutil.copy(video("flipping_a_pancake.mkv"), src / "pancake.mkv")     # wrong container: skipped
    (src / "readme.txt").write_text("not a video")                       # not a video extension: ignored
    ds = str(tmp_path / "ds")

    rc = main(["ingest", str(src), "--to", ds, "--compression", "mp4"])
    out, err = capsys.readouterr()
    assert rc == 1                                   # one file skipped
    assert "skipped" in err
    assert "pancake.mkv" in err
    assert "is mkv" in err
    assert "ingested 3 of 4" in out
    d = load(ds)
    assert [Path(i["filename"]).name for i in d.videos.sample_info] == ["bikes.mp4", "stub_h264.mp4",
                                                                        "carphone.mp4"]

    assert main(["ingest", str(src / "stub_h264.mp4"), "--to", ds, "-q"]) == 0   # appends to existing
    assert len(load(ds).videos) == 4
    capsys.readouterr()

    assert main(["info", ds]) == 0
    out = capsys.readouterr().out
    assert "videos" in out
    assert "640x272" in out
    assert "bikes.mp4" in out
    assert "h264" in out

    npy = tmp_path / "clip.npy"
    assert main(["frames", ds, "videos", "0", "10:50:5", "--out", str(npy)]) == 0
    got = np.load(npy)
    idx = list(range(10, 50, 5))
    oracle.assert_batch_equal(got, oracle.stack(str(src / "bikes.mp4"), idx), idx, "cli npy")

    pngs = tmp_path / "pngs"
    assert main(["frames", ds, "videos", "2", "3,17,5", "--out", str(pngs)]) == 0
    from PIL import Image

    names = sorted(p.name for p in pngs.iterdir())
    assert names == ["frame_000003.png", "frame_000005.png", "frame_000017.png"]
    oracle.assert_frames_equal(np.asarray(Image.open(pngs / "frame_000017.png")),
                               oracle.frame(str(src / "sub" / "carphone.mp4"), 17), "cli png")

    assert main(["frames", ds, "videos", "0", "-1", "--out", str(tmp_path / "last.npy")]) == 0
    assert np.load(tmp_path / "last.npy").shape == (1, 272, 640, 3)
    capsys.readouterr()
    assert main(["frames", ds, "videos", "0", "999", "--out", str(tmp_path / "x.npy")]) == 1
    assert "out of range" in capsys.readouterr().err
    assert main(["frames", ds, "nope", "0", "1", "--out", str(tmp_path / "x.npy")]) == 2


def test_console_script_entry_point(tmp_path):
    """``python -m vidlake.cli`` (what the ``vidlake`` console script calls) runs end to end."""
    ds = str(tmp_path / "ds")
    r = subprocess.run([sys.executable, "-m", "vidlake.cli", "ingest", video("stub_h264.mp4"), "--to", ds],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ingest" in r.stderr                      # the tqdm progress bar
    r = subprocess.run([sys.executable, "-m", "vidlake.cli", "info", ds], check=False, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0
    assert "stub_h264.mp4" in r.stdout
    r = subprocess.run([sys.executable, "-m", "vidlake.cli", "info", str(tmp_path / "none")],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "no vidlake dataset" in r.stderr
