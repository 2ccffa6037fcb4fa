"""Opening datasets: ``empty``, ``load``, ``dataset`` (Deep Lake 3.x names), and ``read``.

    >>> import vidlake
    >>> ds = vidlake.empty("./video_ds", overwrite=True)   # local folder
    >>> ds = vidlake.load("./video_ds", read_only=True)
    >>> ds = vidlake.dataset("mem://scratch")               # load if it exists, else create
"""
from __future__ import annotations

import os
from typing import Any, Union

from .dataset import Dataset
from .errors import DatasetError
from .format import records as fmt
from .sources import Sample, read
from .storage import LocalProvider, get_provider

__all__ = ["Sample", "dataset", "empty", "exists", "load", "read"]

PathLike = Union[str, "os.PathLike[str]"]


def _path(path: PathLike) -> str:
    return os.fspath(path) if isinstance(path, os.PathLike) else str(path)


def exists(path: PathLike, creds: dict[str, Any] | None = None) -> bool:
    """True when a vidlake dataset is stored at ``path``."""
    return get_provider(_path(path), creds=creds, read_only=True).exists(fmt.DATASET_META_KEY)


def empty(path: PathLike, overwrite: bool = False, creds: dict[str, Any] | None = None) -> Dataset:
    """Create a new, empty dataset at ``path`` (a folder, or ``mem://name``).

    An existing dataset there is an error unless ``overwrite=True`` (which deletes it).
    A non-empty folder that is not a dataset is never overwritten.

        >>> ds = vidlake.empty("./video_ds", overwrite=True)
    """
    p = _path(path)
    provider = get_provider(p, creds=creds)
    if provider.exists(fmt.DATASET_META_KEY):
        if not overwrite:
            raise DatasetError(f"a dataset already exists at {p}; use vidlake.load({p!r}) "
                               "or vidlake.empty(path, overwrite=True) to replace it")
        provider.delete(fmt.DATASET_META_KEY)  # first, so an interrupted delete does not load
        provider.clear()
    elif provider.list():
        raise DatasetError(f"{p} is not empty and is not a vidlake dataset; refusing to create one there")
    if isinstance(provider, LocalProvider) and os.path.isfile(provider.root):
        raise DatasetError(f"{p} is a file, not a folder")
    return Dataset._create(provider, p)


def load(path: PathLike, read_only: bool = False, creds: dict[str, Any] | None = None) -> Dataset:
    """Open an existing dataset; ``read_only=True`` refuses every write with ``ReadOnlyError``.

        >>> ds = vidlake.load("./video_ds")
        >>> ds.videos[0, 0:8].numpy().shape
        (8, 360, 640, 3)
    """
    p = _path(path)
    provider = get_provider(p, creds=creds, read_only=read_only)
    return Dataset(provider, p, read_only=read_only)


def dataset(path: PathLike, read_only: bool = False, overwrite: bool = False,
            creds: dict[str, Any] | None = None) -> Dataset:
    """Load the dataset at ``path`` if there is one, else create it.

        >>> ds = vidlake.dataset("./video_ds")
    """
    if not overwrite and exists(path, creds=creds):
        return load(path, read_only=read_only, creds=creds)
    if read_only:
        raise DatasetError(f"no vidlake dataset at {_path(path)} to open read-only")
    return empty(path, overwrite=overwrite, creds=creds)
