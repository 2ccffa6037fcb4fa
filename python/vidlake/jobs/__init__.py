"""Ingestion jobs: background work with a status, a journal in the dataset, and resume.

    >>> job = ds.append(scenes, asynchronous=True)          # scene datasets (vidlake.scenes)
    >>> job = vidlake.jobs.ingest_files(ds, files, workers=4)
    >>> ds.resume_job(job.id)                               # after a kill, from another process

``job.py`` (the :class:`Job` and its states), ``journal.py`` (what is stored in the dataset),
``fetch.py`` (bounded, retried fetching), ``ingest.py`` (files in-process, on a process pool
or on Ray; the per-file ``transform`` hook), ``compact.py`` (reclaiming replaced rows' bytes), ``lease.py`` (a running job's lease:
nothing races a live job).
"""
from __future__ import annotations

from .compact import compact, dead_bytes
from .fetch import Fetcher
from .ingest import ingest_files, new_ingest_journal, resume_ingest, resume_job, stage_files
from .job import Job
from .journal import Journal, committed_tasks, job_status, list_jobs
from .lease import Lease, running_jobs

__all__ = ["Fetcher", "Job", "Journal", "Lease", "committed_tasks", "compact", "dead_bytes", "ingest_files", "job_status",
           "list_jobs", "new_ingest_journal", "resume_ingest", "resume_job",
           "running_jobs", "stage_files"]
