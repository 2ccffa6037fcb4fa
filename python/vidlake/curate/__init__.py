"""Curation: find the videos of a collection, pick diverse frames, write them as images.

    >>> import vidlake
    >>> found = vidlake.scan("s3://bucket/input/", creds=creds)          # videos by extension
    >>> sel = vidlake.select(found, n_samples=50, strategy="diversity")  # k-center on embeddings
    >>> vidlake.export_frames(sel, "s3://bucket/lightly/", format="png", creds=creds)

* :mod:`.scan` -- :func:`scan`: folders, globs, ``s3://`` prefixes, HTTP listings.
* :mod:`.candidates` -- which frames are looked at (keyframes alone, every k-th, n per second, all).
* :mod:`.embed` -- the ``embed(frames) -> (n, d)`` hook, the built-in default, a torch adapter.
* :mod:`.selection` -- :func:`select` (diversity / random / uniform) and :class:`Selection`.
* :mod:`.export` -- :func:`export_frames` to a folder or an ``s3://`` prefix, with a manifest.
"""
from __future__ import annotations

from .candidates import CANDIDATE_MODES, Candidates, candidate_frames, iter_candidate_batches
from .embed import DEFAULT_EMBED_SIZE, default_embed, torch_embedder
from .export import EXPORT_FORMATS, ExportResult, export_frames, resized_size
from .scan import VIDEO_EXTENSIONS, ScanResult, is_video_name, open_video, scan
from .selection import STRATEGIES, Selection, VideoSet, farthest_point, select

__all__ = [
    "CANDIDATE_MODES",
    "DEFAULT_EMBED_SIZE",
    "EXPORT_FORMATS",
    "STRATEGIES",
    "VIDEO_EXTENSIONS",
    "Candidates",
    "ExportResult",
    "ScanResult",
    "Selection",
    "VideoSet",
    "candidate_frames",
    "default_embed",
    "export_frames",
    "farthest_point",
    "is_video_name",
    "iter_candidate_batches",
    "open_video",
    "resized_size",
    "scan",
    "select",
    "torch_embedder",
]
