"""Jobs that survive (issue 16): SIGKILL of a scene job or of `vidlake ingest` at a random
moment, then resume: no duplicate, no loss, every committed sample readable, on local disk and
on S3 (moto). Plus the process-pool ingest (workers stage chunks, one committer)."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import video
from PIL import Image
from remote_fixtures import moto_server, s3_bucket  # noqa: F401

import vidlake
from vidlake.cli import main
from vidlake.jobs import ingest_files, job_status, list_jobs, running_jobs

REPO = Path(__file__).resolve().parent.parent
CLIP = "stub_h264.mp4"


def _images(d: Path, n: int) -> list[str]:
    rng = np.random.default_rng(1)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        p = d / f"f{k:03d}.png"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(p)
        out.append(str(p))
    return out


# every commit announces itself, so the test can kill the process at a random point of the job
_ANNOUNCE = """
import importlib, time
_w = importlib.import_module("vidlake.dataset.writer")
_commit = _w.Writer.commit
def _announced(self):
    print("commit", flush=True)
    time.sleep(0.02)  # the kill lands before, inside or after this commit
    _commit(self)
_w.Writer.commit = _announced
"""
_SCENE_JOB = _ANNOUNCE + """
import json, sys, vidlake
root, creds, scenes = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
ds = vidlake.scene_dataset(root, creds=creds or None)
print("started", flush=True)
ds.append([vidlake.VideoScene.from_json(s) for s in scenes], batch_size=2)
print("finished", flush=True)
"""


def _kill_at_random(cmd: list[str], rng: random.Random, commits: int, first: int = 1) -> bool:
    """Run ``cmd``; SIGKILL it a random moment (0-30 ms) after a random one of its first
    ``commits`` commits (from number ``first``) started (so before, inside or after a commit); True if it was killed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "tests")})
    assert proc.stdout is not None
    target = rng.randint(first, commits)
    seen = 0
    for line in proc.stdout:
        seen += line.startswith("commit")
        if seen >= target:
            time.sleep(rng.uniform(0.0, 0.03))
            break
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return killed


def _resume_all(ds, scenes):
    jobs = list_jobs(ds)
    # no journal: killed before the job's journal was written, so nothing was committed
    st = ds.resume_job(jobs[-1]).status() if jobs else ds.append(scenes).status()
    assert st["state"] == "completed", st
    return st


def _check_scenes(ds, scenes, want_frames):
    refs = ds.reference_id.numpy(aslist=True)
    assert refs == [s.reference_id for s in scenes]                 # each exactly once, in order
    assert {len(t) for t in ds.tensors.values()} == {len(scenes)}
    for s in scenes:                                               # every committed scene reads exactly
        got = ds.scene(s.reference_id)
        np.testing.assert_array_equal(got.frames.numpy(), want_frames)
        assert got.metadata == s.metadata
        assert [i.reference_id for i in got.items] == [i.reference_id for i in s.items]


def _scene_kill_resume(root: str, creds: dict | None, tmp_path: Path, n: int, trials: int):
    paths = _images(tmp_path / "img", 3)
    want = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    rng = random.Random(16)
    partial = 0
    for trial in range(trials):
        scenes = [vidlake.VideoScene(f"t{trial}-s{k}", items=[vidlake.DatasetItem(p, f"t{trial}-s{k}-{j}")
                                                               for j, p in enumerate(paths)],
                                     frame_rate=5, metadata={"k": k}) for k in range(n)]
        r = f"{root}/trial{trial}"
        killed = _kill_at_random([sys.executable, "-c", _SCENE_JOB, r, json.dumps(creds or {}),
                                  json.dumps([s.to_json() for s in scenes])], rng, n // 2)
        ds = vidlake.scene_dataset(r, creds=creds)
        before = len(ds) if "frames" in ds.tensors else 0
        if list_jobs(ds):   # the killed runner's lease may be left behind: its pid is gone, so it is not live
            assert running_jobs(ds) == []
            assert job_status(ds, list_jobs(ds)[-1])["state"] in ("interrupted", "pending", "completed")
        _resume_all(ds, scenes)
        _check_scenes(vidlake.scene_dataset(r, creds=creds), scenes, want)
        # resuming again is a no-op
        ds = vidlake.scene_dataset(r, creds=creds)
        if list_jobs(ds):
            assert ds.resume_job(list_jobs(ds)[-1]).status()["done"] == n
        assert len(vidlake.scene_dataset(r, creds=creds)) == n
        print(f"trial {trial}: killed={killed}, {before} of {n} scenes committed before the kill")
        partial += killed and 0 < before < n
    assert partial, "no trial was killed in the middle of its job"


def test_scene_job_killed_then_resumed_local(tmp_path):
    _scene_kill_resume(str(tmp_path / "ds"), None, tmp_path, n=12, trials=2)


def test_scene_job_killed_then_resumed_s3(tmp_path, moto_server, s3_bucket):  # noqa: F811
    _scene_kill_resume(f"s3://{s3_bucket}/ds", moto_server.creds(), tmp_path, n=6, trials=1)


def _clips(tmp_path: Path, n: int) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for k in range(n):
        shutil.copy(video(CLIP), d / f"v{k:03d}.mp4")
    return d


def _check_videos(out: str, src: Path, n: int) -> None:
    ds = vidlake.load(out)
    names = [ds.videos[i].sample_info["filename"] for i in range(len(ds.videos))]
    assert sorted(names) == sorted(str(src / f"v{k:03d}.mp4") for k in range(n))   # no loss, no duplicate
    want = vidlake.VideoReader(video(CLIP)).get_frames([0, 2])
    for i in range(len(ds.videos)):
        np.testing.assert_array_equal(ds.videos[i, [0, 2]].numpy(), want)


def test_cli_ingest_killed_then_resume(tmp_path, capsys):
    n = 32
    src = _clips(tmp_path, n)
    rng = random.Random(7)
    partial = 0
    for trial in range(2):
        out = str(tmp_path / f"ds{trial}")
        cmd = [sys.executable, "-c", _ANNOUNCE + "import sys; from vidlake.cli import main; sys.exit(main(sys.argv[1:]))",
               "ingest", str(src), "--to", out, "-q", "--batch", "8"]
        killed = _kill_at_random(cmd, rng, n // 8, first=2)  # commit 1 creates the tensor
        if not vidlake.exists(out) or not list_jobs(vidlake.load(out)):  # killed before the journal
            assert main(["ingest", str(src), "--to", out, "-q"]) == 0
            before = 0
        else:
            before = len(vidlake.load(out).videos)
            capsys.readouterr()
            assert main(["ingest", "--resume", "--to", out, "-q"]) == 0
            if before < n:
                assert f"ingested {n - before} of {n - before} file(s)" in capsys.readouterr().out
        _check_videos(out, src, n)
        assert main(["ingest", "--resume", "--to", out, "-q"]) == 0     # nothing left: a no-op
        assert len(vidlake.load(out).videos) == n
        print(f"trial {trial}: killed={killed}, {before} of {n} files committed before the kill")
        partial += killed and 0 < before < n
    assert partial, "no trial was killed in the middle of its job"


def test_ingest_on_a_process_pool_matches_in_process(tmp_path):
    n = 12
    src = _clips(tmp_path, n)
    files = sorted(str(p) for p in src.iterdir())
    ds = vidlake.empty(tmp_path / "pool")
    job = ingest_files(ds, files, workers=2, batch_size=5)
    st = job.status()
    assert st["state"] == "completed", st
    assert st["done"] == n
    _check_videos(str(tmp_path / "pool"), src, n)
    seq = vidlake.empty(tmp_path / "seq")
    ingest_files(seq, files)
    a, b = vidlake.load(tmp_path / "pool").videos, vidlake.load(tmp_path / "seq").videos
    for i in range(n):  # same entries (but chunk ids), same bytes
        assert a[i].sample_info == b[i].sample_info
        assert a.store.read_extents(a.entry(i)["data"]) == b.store.read_extents(b.entry(i)["data"])
    assert a.entry(0)["index"]
    assert a.entry(0)["video"] == b.entry(0)["video"]


def test_transform_hook_and_failed_files_in_a_pool(tmp_path):
    src = _clips(tmp_path, 3)
    (src / "bad.mp4").write_bytes(b"not a video")
    files = sorted(str(p) for p in src.iterdir())
    ds = vidlake.empty(tmp_path / "ds")
    job = ingest_files(ds, files, workers=1, transform=vidlake.read)
    st = job.status()
    assert (st["done"], st["failed"]) == (3, 1)
    assert job.errors()[0]["reference_id"].endswith("bad.mp4")
    assert len(vidlake.load(tmp_path / "ds").videos) == 3


def test_commit_record_carries_job_progress(tmp_path):
    src = _clips(tmp_path, 5)
    ds = vidlake.empty(tmp_path / "ds")
    seen = []

    def progress(job):   # after each batch's commit: the record says which tasks are in
        meta = json.loads((tmp_path / "ds" / "dataset_meta.json").read_text())
        seen.append(meta.get("info", {}).get("jobs", {}).get(job.id))

    job = ingest_files(ds, sorted(str(p) for p in src.iterdir()), batch_size=2, progress=progress)
    for want in ([[0, 2]], [[0, 4]], [[0, 5]]):
        assert {"done": want} in seen
    # once ended, the ranges move to the job's own done.json and the record forgets the job
    meta = json.loads((tmp_path / "ds" / "dataset_meta.json").read_text())
    assert job.id not in meta.get("info", {}).get("jobs", {})
    done = json.loads((tmp_path / "ds" / "_jobs" / job.id / "done.json").read_text())
    assert (done["done"], done["state"], done["total"]) == ([[0, 5]], "completed", 5)
    assert (tmp_path / "ds" / "_jobs" / job.id / "spec.json").is_file()


def test_scene_append_on_a_process_pool(tmp_path):
    clips = ["stub_h264.mp4", "carphone_distorted.mp4", "video_0.mov", "samplemp4.mp4"]
    scenes = [vidlake.VideoScene(f"v{k}", video_location=video(c), metadata={"k": k}) for k, c in enumerate(clips)]
    ds = vidlake.scene_dataset(tmp_path / "ds")
    st = ds.append(scenes[:1]).status()          # the first scene lays out the tensors here
    st = ds.append(scenes, update=True, workers=2, batch_size=1).status()
    assert st["state"] == "completed", st
    assert st["counts"] == {"unchanged": 1, "appended": 3}
    ds = vidlake.scene_dataset(tmp_path / "ds")
    assert ds.reference_ids == ["v0", "v1", "v2", "v3"]
    for k, c in enumerate(clips):
        r = vidlake.VideoReader(video(c))
        s = ds.scene(f"v{k}")
        np.testing.assert_array_equal(s.frames[[0, len(r) - 1]].numpy(), r.get_frames([0, len(r) - 1]))
        assert s.frame_rate == pytest.approx(ds.frames[k].sample_info["fps"])
    assert ds.query_metadata({"k": {">": 1}}) == ["v2", "v3"]


def test_cli_ingest_of_an_s3_prefix(tmp_path, moto_server, s3_bucket, monkeypatch, capsys):  # noqa: F811
    from remote_fixtures import REGION

    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    c = moto_server.creds()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", c["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", c["aws_secret_access_key"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    s3 = moto_server.client()
    for k in range(3):
        s3.upload_file(video(CLIP), s3_bucket, f"vids/v{k}.mp4")
    s3.put_object(Bucket=s3_bucket, Key="vids/notes.txt", Body=b"not a video")
    out = str(tmp_path / "ds")
    assert main(["ingest", f"s3://{s3_bucket}/vids/", "--to", out, "-q"]) == 0
    assert "ingested 3 of 3 file(s)" in capsys.readouterr().out
    ds = vidlake.load(out)
    assert sorted(ds.videos[i].sample_info["filename"] for i in range(3)) == \
        [f"s3://{s3_bucket}/vids/v{k}.mp4" for k in range(3)]
    np.testing.assert_array_equal(ds.videos[2, [0]].numpy(), vidlake.VideoReader(video(CLIP)).get_frames([0]))
