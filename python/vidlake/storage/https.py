"""``https://`` roots: the same read-only provider as ``http://`` (see :mod:`vidlake.storage.http`)."""
from __future__ import annotations

from .http import HTTPProvider, open_provider

__all__ = ["HTTPProvider", "open_provider"]
