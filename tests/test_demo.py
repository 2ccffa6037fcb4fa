"""``make demo``'s main job runs, checks its frames, and is quick."""
from __future__ import annotations

import shutil
import time

import assets
import pytest

from vidlake import demo


@pytest.mark.timeout(180)
def test_demo_generated_videos(tmp_path, capsys):
    if shutil.which("ffmpeg") is None:
        pytest.skip("the demo generates videos with the ffmpeg CLI")
    t0 = time.perf_counter()
    rc = demo.main(["--out", str(tmp_path / "demo")])
    elapsed = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "all frames and timestamps exact" in out
    assert "h264_bframes.mp4" in out
    assert "load+frame0 ms" in out
    assert elapsed < 120


def test_demo_with_a_folder(tmp_path, capsys):
    vids = tmp_path / "vids"
    vids.mkdir()
    for n in ("stub_h264.mp4", "vp92-2-20-10bit-yuv420.webm", "video_90.mov"):
        shutil.copy(assets.VIDEO_DIR / n, vids / n)
    rc = demo.main(["--videos", str(vids), "--out", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.count(" yes") == 3
