"""``gs://bucket/prefix``: the same Google Cloud Storage provider as ``gcs://`` (see :mod:`.gcs`).

    >>> from vidlake.storage import get_provider
    >>> get_provider("gs://my-bucket/ds", creds={"gcs_anon": True})
    GCSProvider('gs://my-bucket/ds', read-write)
"""
from __future__ import annotations

from .gcs import GCSProvider, open_provider

__all__ = ["GCSProvider", "open_provider"]
