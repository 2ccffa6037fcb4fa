"""Interrupted and failed ingests: Ctrl-C during `vidlake ingest` says what was committed and exits
cleanly (no traceback), everything it reports is in the dataset; a failed importer run leaves no
empty tensors behind (tensor creation is part of the same transaction)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import annotation_assets as aa
import numpy as np
import pytest
from helpers import video

import vidlake
from vidlake.cli import main
from vidlake.importers import ingest_mot

CLIP = "stub_h264.mp4"


def _files(tmp_path, n):
    d = tmp_path / "in"
    d.mkdir()
    for k in range(n):
        shutil.copy(video(CLIP), d / f"v{k:03d}.mp4")
    return d


def test_ctrl_c_during_ingest_reports_what_was_committed(tmp_path, capsys, monkeypatch):
    from vidlake import api

    src = _files(tmp_path, 6)
    real = api.read
    calls = []

    def read_then_interrupt(path, *a, **kw):  # Ctrl-C arrives while the 4th file is read
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(path, *a, **kw)

    monkeypatch.setattr(api, "read", read_then_interrupt)
    out = str(tmp_path / "ds")
    assert main(["ingest", str(src), "--to", out, "-q"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: 3 of 6 file(s) committed" in err
    assert "Traceback" not in err
    for k in range(3):
        assert f"committed {src / f'v{k:03d}.mp4'}" in err
    assert "not ingested: 3 file(s)" in err
    ds = vidlake.load(out)
    assert len(ds.videos) == 3
    want = vidlake.VideoReader(video(CLIP)).get_frames([0])
    for i in range(3):
        np.testing.assert_array_equal(ds.videos[i, [0]].numpy(), want)


def test_sigint_to_the_cli_exits_cleanly(tmp_path):
    src = _files(tmp_path, 200)
    out = str(tmp_path / "ds")
    proc = subprocess.Popen([sys.executable, "-m", "vidlake.cli", "ingest", str(src), "--to", out],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    meta = os.path.join(out, "dataset_meta.json")
    while time.monotonic() < deadline:  # interrupt once the tensor is committed (appends under way)
        try:
            with open(meta) as f:
                if "videos" in json.load(f).get("tensors", []):
                    break
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out_text, err = proc.communicate(timeout=120)
    if proc.returncode == 0 or "ingested 200 of 200" in out_text:
        pytest.skip("the ingest finished before the interrupt arrived")
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert "interrupted" in err
    ds = vidlake.load(out)
    n = len(ds.videos)
    assert f"now has {n} sample(s)" in err or "vidlake ingest: interrupted" in err
    for i in range(n):  # everything committed is readable
        assert ds.videos[i, 0].numpy().shape[-1] == 3


def test_a_failed_import_leaves_no_empty_tensors(tmp_path):
    bad = tmp_path / "bad"
    aa.mot_sequence(aa.MOT17, bad / "MOT17-02-FRCNN", 600, 36, 64, same=True)   # frames disagree with seqinfo
    ds = vidlake.empty(str(tmp_path / "ds"))
    with pytest.raises(vidlake.DatasetError):
        ingest_mot(ds, [str(bad / "MOT17-02-FRCNN")])
    assert ds.tensors == {}
    assert vidlake.load(str(tmp_path / "ds")).tensors == {}


def test_rollback_drops_tensors_created_in_the_block(tmp_path):
    path = str(tmp_path / "ds")
    ds = vidlake.empty(path)
    ds.create_tensor("kept", htype="text")
    with ds:
        ds.create_tensor("tmp", htype="text")
        ds.tmp.append("x")
        ds.kept.append("y")
        ds.rollback()
    d = vidlake.load(path)
    assert list(d.tensors) == ["kept"]
    assert len(d.kept) == 0
    with ds:  # a tensor created in a block exists once the block commits
        ds.create_tensor("later", htype="text")
        ds.later.append("z")
    assert vidlake.load(path).later[0].text() == "z"
