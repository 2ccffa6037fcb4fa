"""The docstring examples that need no files run as doctests (the others name videos and datasets
the reader is assumed to have; the README's snippets run in tests/test_readme.py)."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "vidlake.format",
    "vidlake.format.records",
    "vidlake.htypes",
    "vidlake.htypes.base",
    "vidlake.storage",
    "vidlake.storage.memory",
    "vidlake.storage.ranged",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert res.attempted > 0, f"{name} has no examples"
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples of {name} failed (run doctest on it)"


def test_plumbing_modules_are_not_url_schemes():
    import vidlake

    for url in ("creds://x/y", "retry://x/y", "ranged://a/b", "range-cache://a/b"):
        with pytest.raises(vidlake.StorageError, match="no storage provider"):
            vidlake.storage.get_provider(url)
