"""The htype registry: every tensor type vidlake knows, one module each.

    >>> from vidlake import htypes
    >>> htypes.lookup("video").check_compression("MP4")
    'mp4'
    >>> htypes.lookup("video").check_compression("gif")
    Traceback (most recent call last):
    ValueError: sample_compression 'gif' is not supported for htype 'video'; accepted: mp4, m4v, ...
    >>> htypes.lookup("sequence[image]").frames
    True

Adding an htype is adding one module to this package that defines an :class:`Htype` subclass
and registers an instance with :func:`register` (every module here is imported when the
package is). ``sequence[X]`` is composed at lookup from X's htype (``htypes/sequence.py``), and
``sequence[]`` is ``sequence[generic]``.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .base import Htype, PreparedSample, SampleContext, WriteContext, common_shape
from .sequence import compose

__all__ = [
    "Htype",
    "PreparedSample",
    "SampleContext",
    "WriteContext",
    "check_compression",
    "check_htype",
    "common_shape",
    "lookup",
    "names",
    "prepare_sample",
    "register",
]

_REGISTRY: dict[str, Htype] = {}
_COMPOSED: dict[str, Htype] = {}


def register(htype: Htype) -> Htype:
    """Make ``htype`` known under ``htype.name`` (one module per htype family calls this)."""
    if not htype.name or htype.name in _REGISTRY:
        raise ValueError(f"htype name {htype.name!r} is empty or registered twice")
    _REGISTRY[htype.name] = htype
    return htype


def names() -> tuple[str, ...]:
    """The registered htype names (``sequence[X]`` comes on top, for every sequence item X)."""
    return tuple(_REGISTRY)


def lookup(name: Any) -> Htype:
    """The htype called ``name``; ``ValueError`` listing the accepted names otherwise."""
    if isinstance(name, str):
        h = _REGISTRY.get(name) or _COMPOSED.get(name)
        if h is not None:
            return h
        if name.startswith("sequence[") and name.endswith("]"):
            h = _COMPOSED[name] = compose(name, _REGISTRY)
            return h
    raise ValueError(f"htype {name!r} is not supported; accepted: {', '.join(names())}, sequence[...]")


def check_htype(name: str) -> str:
    """Validate an htype name."""
    return lookup(name).name


def check_compression(htype: str, compression: str | None) -> str | None:
    """Validate ``sample_compression`` for ``htype``."""
    return lookup(htype).check_compression(compression)


def prepare_sample(htype: str, sample: Any, tensor: str, meta: Any, ctx: WriteContext | None = None) -> PreparedSample:
    """Validate and encode one sample for a tensor with this meta."""
    return lookup(htype).prepare(sample, tensor, meta, ctx)


for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base":
        importlib.import_module(f"{__name__}.{_m.name}")
