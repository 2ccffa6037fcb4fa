"""Bounded job records (issue 16): an ended job's committed ranges move from the commit record
to ``_jobs/<id>/done.json``, so 20 (or 20,000) jobs do not grow ``dataset_meta.json``; every
job's status stays readable and resume stays exact."""
from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import numpy as np
from helpers import video
from PIL import Image

import vidlake
from vidlake.jobs import committed_tasks, ingest_files, job_status, list_jobs, new_ingest_journal

if TYPE_CHECKING:
    from pathlib import Path

CLIP = "stub_h264.mp4"


def _meta(root: Path) -> dict:
    return json.loads((root / "dataset_meta.json").read_text())


def test_twenty_jobs_leave_the_commit_record_bounded(tmp_path):
    root = tmp_path / "ds"
    ds = vidlake.empty(root)
    src = tmp_path / "in"
    src.mkdir()
    files = []
    for k in range(20):
        shutil.copy(video(CLIP), src / f"v{k:02d}.mp4")
        files.append(str(src / f"v{k:02d}.mp4"))
    info_sizes, ids = [], []
    for k in range(20):
        job = ingest_files(ds, files[k:k + 1] * (1 + k % 2), batch_size=1)   # 1 or 2 tasks each
        assert job.status()["state"] == "completed"
        ids.append(job.id)
        meta = _meta(root)
        assert "jobs" not in meta.get("info", {}), meta["info"]
        info_sizes.append(len(json.dumps(meta.get("info", {}))))
    assert set(info_sizes) == {info_sizes[0]}      # the record's info does not grow with jobs
    assert list_jobs(ds) == ids
    for k, job_id in enumerate(ids):               # every job's status is still readable, exactly
        st = job_status(vidlake.load(root), job_id)
        assert (st["state"], st["kind"], st["done"], st["total"]) == ("completed", "ingest", 1 + k % 2, 1 + k % 2)
        assert st["counts"] == {"appended": 1 + k % 2}
        assert committed_tasks(vidlake.load(root), job_id) == set(range(1 + k % 2))
        # resuming an ended job reads its done.json: nothing is done twice
        assert vidlake.load(root).resume_job(job_id).status()["done"] == 1 + k % 2
    assert len(vidlake.load(root).videos) == sum(1 + k % 2 for k in range(20))
    assert "jobs" not in _meta(root).get("info", {})


def test_scene_jobs_file_their_records_too(tmp_path):
    root = tmp_path / "ds"
    img = tmp_path / "a.png"
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(img)
    ds = vidlake.scene_dataset(root)
    ids = []
    for k in range(6):
        sc = vidlake.VideoScene(f"s{k}", items=[vidlake.DatasetItem(str(img), f"s{k}-0")], metadata={"k": k})
        ids.append(ds.append([sc]).id)
        assert "jobs" not in _meta(root).get("info", {})
    skipped = ds.append([vidlake.VideoScene("s0", items=[vidlake.DatasetItem(str(img), "s0-0")])])
    assert "jobs" not in _meta(root).get("info", {})
    for job_id in ids:
        st = job_status(vidlake.scene_dataset(root), job_id)
        assert (st["state"], st["kind"], st["done"], st["total"]) == ("completed", "scenes", 1, 1)
    st = job_status(ds, skipped.id)
    assert (st["state"], st["done"], st["skipped"]) == ("completed", 0, 1)


def test_interrupted_and_pending_jobs_read_as_such(tmp_path):
    root = tmp_path / "ds"
    ds = vidlake.empty(root)
    files = [video(CLIP)] * 3
    pending = new_ingest_journal(ds, files, "videos")
    assert job_status(vidlake.load(root), pending.id)["state"] == "pending"
    # a job killed after its first batch: its entry is still in the record, no done.json
    journal = new_ingest_journal(ds, files, "videos")
    journal.attach()
    with ds:
        ds.videos.append(vidlake.read(files[0]))
        journal.staged.add(0)
    journal.detach()
    assert _meta(root)["info"]["jobs"][journal.id] == {"done": [[0, 1]]}
    st = job_status(vidlake.load(root), journal.id)
    assert (st["state"], st["done"], st["total"]) == ("interrupted", 1, 3)
    # resumed: exactly the two others, then filed away
    st = vidlake.load(root).resume_job(journal.id).status()
    assert (st["state"], st["done"]) == ("completed", 3)
    assert len(vidlake.load(root).videos) == 3
    assert job_status(vidlake.load(root), journal.id)["state"] == "completed"
    assert "jobs" not in _meta(root).get("info", {})


def test_a_crash_between_filing_and_dropping_keeps_resume_exact(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    ds = vidlake.empty(root)
    files = [video(CLIP)] * 2
    writer_mod = __import__("sys").modules["vidlake.dataset.writer"]

    def crash(self, change):   # done.json is written, then the process dies before the record changes
        raise OSError("killed")

    monkeypatch.setattr(writer_mod.Writer, "update_meta", crash)
    job = ingest_files(ds, files, batch_size=1)
    assert job.status()["state"] == "completed"
    assert _meta(root)["info"]["jobs"][job.id] == {"done": [[0, 2]]}     # the record still says it
    assert (root / "_jobs" / job.id / "done.json").is_file()
    monkeypatch.undo()
    assert vidlake.load(root).resume_job(job.id).status()["done"] == 2
    assert len(vidlake.load(root).videos) == 2
    assert "jobs" not in _meta(root).get("info", {})                     # filed on this end
