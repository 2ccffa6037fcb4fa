"""The on-disk format (``docs/FORMAT.md``): records and their versions (``records``), and chunk
I/O (``chunks``: placing sample bytes in chunk objects, staging them, reading extents back).

    >>> from vidlake.format import records
    >>> records.FORMAT_VERSION
    '1.2'
"""
from __future__ import annotations

from . import chunks, records

__all__ = ["chunks", "records"]
