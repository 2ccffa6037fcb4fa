"""Storage providers: where a dataset's objects live.

    >>> from vidlake.storage import get_provider
    >>> type(get_provider("/data/my_ds")).__name__
    'LocalProvider'
    >>> type(get_provider("mem://scratch")).__name__
    'MemoryProvider'

Adding a backend is adding one module: a URL ``<scheme>://...`` is served by the module
``vidlake/storage/<scheme>.py`` (``-`` and ``+`` in the scheme become ``_``), which must define

    def open_provider(url: str, creds: dict | None = None, read_only: bool = False) -> StorageProvider

returning a :class:`StorageProvider` whose root is ``url``. Nothing else changes.
"""
from __future__ import annotations

import importlib
import re
from typing import Any

from ..errors import StorageError
from .local import LocalProvider
from .memory import MemoryProvider
from .provider import StorageProvider
from .range_cache import RangeCache

__all__ = ["LocalProvider", "MemoryProvider", "RangeCache", "StorageProvider", "get_provider", "split_url",
           "supported_schemes", "url_scheme"]

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def url_scheme(path: str) -> str:
    """The URL scheme of ``path`` (``""`` for a plain local path).

    >>> url_scheme("s3://bucket/ds"), url_scheme("./ds")
    ('s3', '')
    """
    m = _SCHEME_RE.match(str(path))
    return m.group(1).lower() if m else ""


def split_url(url: str) -> tuple[str, str]:
    """Split a file URL or path into (parent, name): ``"s3://b/d/x.mp4"`` -> ``("s3://b/d", "x.mp4")``."""
    url = str(url)
    head, sep, name = url.rstrip("/").rpartition("/")
    if not sep or head.endswith((":/", ":")):
        raise StorageError(f"{url!r} does not name a file")
    return head, name


#: modules of this package that are plumbing, not providers of a URL scheme
_NOT_PROVIDERS = frozenset({"provider", "local", "memory", "creds", "retry", "ranged", "range_cache"})


def supported_schemes() -> list[str]:
    """What :func:`get_provider` serves: local paths, ``file://``, ``mem://`` and one
    ``<scheme>://`` per provider module in this package.

    >>> supported_schemes()
    ['local paths', 'file://', 'mem://', 'gcs://', 'gs://', 'http://', 'https://', 's3://']
    """
    import pkgutil

    mods = sorted(m.name for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith("_") and m.name not in _NOT_PROVIDERS)
    return ["local paths", "file://", "mem://", *(f"{m.replace('_', '-')}://" for m in mods)]


def get_provider(path: Any, creds: dict[str, Any] | None = None, read_only: bool = False) -> StorageProvider:
    """Open the provider for a dataset root: local folder, ``file://``, ``mem://`` or a plug-in scheme."""
    path = str(path) if not isinstance(path, str) else path
    scheme = url_scheme(path)
    if scheme in ("", "file"):
        return LocalProvider(path, read_only=read_only)
    if scheme == "mem":
        return MemoryProvider(path, read_only=read_only)
    modname = scheme.replace("-", "_").replace("+", "_").replace(".", "_")
    unsupported = StorageError(
        f"no storage provider for {scheme}:// URLs ({path}); supported: {', '.join(supported_schemes())}")
    if modname in _NOT_PROVIDERS or modname.startswith("_"):
        raise unsupported
    try:
        mod = importlib.import_module(f"{__name__}.{modname}")
    except ModuleNotFoundError as e:
        if e.name and e.name.endswith(f".{modname}"):
            raise unsupported from None
        raise
    return mod.open_provider(path, creds=creds, read_only=read_only)
