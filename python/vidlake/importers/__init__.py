"""Importers of tracking datasets into vidlake datasets.

    >>> from vidlake.importers import ingest_mot, ingest_lasot
    >>> ingest_mot(ds, ["MOT17/train/MOT17-02-FRCNN"])          # sequence[image] frames + boxes, ids...
    >>> ingest_lasot(ds, ["LaSOT/dog/dog-2"], video="dog-2.mp4")  # video + (frames, 1, 4) boxes

Both add one row per sequence and upsert by ``reference_id`` (the sequence name), so importing
a sequence again replaces its row. Command line: ``vidlake ingest --format mot|lasot``.
"""
from __future__ import annotations

from .lasot import ingest_lasot, read_lasot
from .mot import MOT_CLASS_NAMES, MotTable, ingest_mot, read_mot_txt, read_seqinfo

__all__ = ["MOT_CLASS_NAMES", "MotTable", "ingest_lasot", "ingest_mot", "read_lasot", "read_mot_txt",
           "read_seqinfo"]
