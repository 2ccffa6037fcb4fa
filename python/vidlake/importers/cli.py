"""``vidlake ingest --format mot|lasot FOLDERS --to DS``: the command-line side of the importers."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..errors import VidlakeError

if TYPE_CHECKING:
    import argparse

__all__ = ["ingest_folders"]


def ingest_folders(args: argparse.Namespace) -> int:
    """Import MOT or LaSOT sequence folders; one line per sequence, exit code 1 on any failure."""
    from ..api import dataset
    from .lasot import ingest_lasot
    from .mot import find_sequences, ingest_mot

    ds = dataset(args.to)
    failed = 0
    if args.format == "mot":
        try:
            folders = find_sequences(args.inputs)
        except VidlakeError as e:
            print(f"vidlake ingest: {e}", file=sys.stderr)
            return 2
    else:
        folders = list(args.inputs)
    for folder in folders:
        try:
            if args.format == "mot":
                rows = ingest_mot(ds, [folder], encode=getattr(args, "encode_frames", False))
            else:
                rows = ingest_lasot(ds, [folder], video=args.video, encode=getattr(args, "encode_frames", False))
        except (VidlakeError, OSError) as e:
            failed += 1
            print(f"skipped {folder}: {e}", file=sys.stderr)
            continue
        if not args.quiet:
            print(f"{folder} -> row {rows[0]}", file=sys.stderr)
    print(f"ingested {len(folders) - failed} of {len(folders)} {args.format} sequence(s) into {args.to}; "
          f"the dataset now has {len(ds)} row(s)")
    return 1 if failed else 0
