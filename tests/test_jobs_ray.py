"""Ingestion on Ray (issue 16): tasks stage their own chunk objects, the driver commits; a worker
killed mid-job is retried by Ray, or (retries off) the job fails and resumes without duplicates.
One local cluster (``ray.init(num_cpus=2)``) for the whole module: Ray starts slowly."""
from __future__ import annotations

import os
import shutil
import signal
import sys

import numpy as np
import pytest
from helpers import video
from PIL import Image

import vidlake
from vidlake.jobs import ingest_files

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'vidlake[ray]'; scripts/setup.sh does)")

CLIP = "stub_h264.mp4"


@pytest.fixture(scope="module")
def cluster():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the tasks' transforms live here
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def _clips(d, n):
    d.mkdir()
    for k in range(n):
        shutil.copy(video(CLIP), d / f"v{k:03d}.mp4")
    return sorted(str(p) for p in d.iterdir())


def _check(root, files):
    ds = vidlake.load(root)
    assert sorted(ds.videos[i].sample_info["filename"] for i in range(len(ds.videos))) == sorted(files)
    want = vidlake.VideoReader(video(CLIP)).get_frames([0, 3])
    for i in range(len(ds.videos)):
        np.testing.assert_array_equal(ds.videos[i, [0, 3]].numpy(), want)


def _killer(marker: str, victim: str):
    """A transform that kills its own Ray worker (SIGKILL) the first time it meets ``victim``."""
    def transform(path: str):
        if path.endswith(victim) and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return vidlake.read(path)
    return transform


def test_ray_ingest_stages_on_workers_and_commits_once_per_task(cluster, tmp_path):
    files = _clips(tmp_path / "in", 10)
    ds = vidlake.empty(tmp_path / "ds")
    job = ingest_files(ds, files, executor="ray", batch_size=3)
    st = job.status()
    assert st["state"] == "completed", st
    assert st["done"] == 10
    _check(tmp_path / "ds", files)
    # 4 tasks of at most 3 files: 4 commits after the tensor's, then one of the record alone
    # that files the ended job away (docs/JOBS.md, "Bounded job records"); each task wrote its
    # own chunk
    ds = vidlake.load(tmp_path / "ds")
    assert ds._meta["generation"] == 1 + 4 + 1
    assert "jobs" not in ds._meta.get("info", {})
    assert len({ds.videos.entry(i)["data"][0][0] for i in range(10)}) == 4


def test_ray_worker_killed_mid_job_is_retried(cluster, tmp_path):
    files = _clips(tmp_path / "in", 8)
    ds = vidlake.empty(tmp_path / "ds")
    job = ingest_files(ds, files, executor="ray", batch_size=2,
                       transform=_killer(str(tmp_path / "killed"), "v005.mp4"))
    st = job.status()
    assert (tmp_path / "killed").exists()        # a worker did die
    assert st["state"] == "completed", st
    _check(tmp_path / "ds", files)


def test_ray_job_that_fails_resumes_without_duplicates(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDLAKE_RAY_TASK_RETRIES", "0")     # the dead worker's task fails the job
    files = _clips(tmp_path / "in", 8)
    ds = vidlake.empty(tmp_path / "ds")
    job = ingest_files(ds, files, executor="ray", batch_size=2,
                       transform=_killer(str(tmp_path / "killed"), "v004.mp4"))
    st = job.status()
    assert st["state"] == "failed", st
    committed = len(vidlake.load(tmp_path / "ds").videos)
    assert committed < 8
    monkeypatch.delenv("VIDLAKE_RAY_TASK_RETRIES")
    again = vidlake.load(tmp_path / "ds").resume_job(job.id, executor="ray")
    assert again.status()["state"] == "completed", again.status()
    assert again.status()["done"] == 8
    _check(tmp_path / "ds", files)


def test_scene_append_on_ray(cluster, tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    paths = []
    for k in range(3):
        p = tmp_path / "img" / f"{k}.png"
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    scenes = [vidlake.VideoScene(f"s{k}", items=[vidlake.DatasetItem(p, f"s{k}-{j}", {"j": j})
                                                 for j, p in enumerate(paths)], frame_rate=2, metadata={"k": k})
              for k in range(7)]
    ds = vidlake.scene_dataset(tmp_path / "ds")
    job = ds.append(scenes, executor="ray", batch_size=3)
    st = job.status()
    assert st["state"] == "completed", st
    assert st["done"] == 7
    ds = vidlake.scene_dataset(tmp_path / "ds")
    assert ds.reference_ids == [s.reference_id for s in scenes]
    want = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    for s in scenes:
        got = ds.scene(s.reference_id)
        np.testing.assert_array_equal(got.frames.numpy(), want)
        assert got.metadata == s.metadata
        assert got.items == s.items
    assert ds.query_metadata({"k": {">=": 5}}) == ["s5", "s6"]
    # updates go through the same path: metadata only, no frames rewritten
    scenes[2].metadata = {"k": 20}
    assert ds.append(scenes, update=True, executor="ray").status()["counts"] == {"unchanged": 6, "updated": 1}
    assert vidlake.scene_dataset(tmp_path / "ds").scene("s2").metadata == {"k": 20}
