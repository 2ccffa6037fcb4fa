"""``vidlake.link``: a file by URL or path, to append to a ``link[video]`` / ``link[image]``
tensor (the dataset keeps where the file is, not its bytes; the rules are in
``vidlake/htypes/link.py``).

    >>> s = vidlake.link("s3://bucket/videos/a.mp4", creds_key="my-bucket")
    >>> s.url, s.creds_key, s.is_local
    ('s3://bucket/videos/a.mp4', 'my-bucket', False)
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import HtypeError
from ..storage import url_scheme
from ..storage.creds import redact

__all__ = ["LinkedSample", "link"]


@dataclass(frozen=True)
class LinkedSample:
    """A file by URL or path, to append to a ``link[video]`` / ``link[image]`` tensor.
    Make one with :func:`vidlake.link`."""

    url: str
    creds_key: str | None = None
    verify: bool = True

    @property
    def is_local(self) -> bool:
        """True for local paths and ``file://`` URLs."""
        return url_scheme(self.url) in ("", "file")

    def __repr__(self) -> str:
        key = "" if self.creds_key is None else f", creds_key={self.creds_key!r}"
        ver = "" if self.verify else ", verify=False"
        return f"LinkedSample({redact(self.url)!r}{key}{ver})"


def link(url: str | os.PathLike[str], creds_key: str | None = None, verify: bool = True) -> LinkedSample:
    """A linked sample: ``url`` is ``s3://bucket/key``, ``gs://bucket/key`` (or ``gcs://``),
    ``http(s)://...``, ``file://...`` or a local path (made absolute here, so reads do not
    depend on the working directory).

    ``creds_key`` names a creds key of the dataset (``ds.add_creds_key``), or ``"ENV"`` /
    ``None`` for the client's default chain. ``verify=False`` skips reading the file at
    append time: index and ``sample_info`` are then built on first use.

        >>> ds.links.append(vidlake.link("s3://bucket/clip.mp4", creds_key="my-bucket"))
    """
    u = os.fspath(url) if isinstance(url, os.PathLike) else url
    if not isinstance(u, str) or not u:
        raise HtypeError(f"vidlake.link takes a URL or a path, got {url!r}")
    if creds_key is not None and (not isinstance(creds_key, str) or not creds_key):
        raise HtypeError(f"creds_key is a creds key name (str) or None, got {creds_key!r}")
    if url_scheme(u) == "":
        u = os.path.abspath(u)
    return LinkedSample(u, creds_key, bool(verify))
