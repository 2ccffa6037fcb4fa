"""The Python package's layers: imports run one way only (docs/DESIGN.md, "Where things live").

    errors <- {video, storage} <- sources <- format <- htypes <- dataset <- api <- {cli, importers, demo, ...}

An ``ast`` walk over every module of ``python/vidlake``: each import (type-only ones included)
must name its own layer group or a lower layer (the top layer's modules may use each other;
the siblings {video, storage} do not), only the video layer touches ``vidlake._core``, and imports inside functions
are allowed only in the top layer (where they keep optional dependencies optional).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "python" / "vidlake"

#: layer groups from the bottom up; a module may import its own group and every lower layer
LAYERS: list[set[str]] = [
    {"errors"},
    {"video", "storage"},
    {"sources"},
    {"format"},
    {"htypes"},
    {"dataset"},
    {"api"},
    {"__init__", "cli", "demo", "importers", "viewer", "torch", "samplers", "jobs", "scenes", "select", "curate",
     "encode", "__main__"},
]
TOP = len(LAYERS) - 1


def _rank(group: str) -> int:
    for r, groups in enumerate(LAYERS):
        if group in groups:
            return r
    raise AssertionError(f"vidlake.{group} is in no layer: add it to LAYERS in tests/test_layers.py "
                         "and to the map in docs/DESIGN.md")


def _group(parts: tuple[str, ...]) -> str:
    """The layer group of module ``vidlake.<parts>`` (its first component)."""
    return parts[0] if parts else "__init__"


def _modules() -> list[tuple[tuple[str, ...], Path]]:
    out = []
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG).with_suffix("").parts
        out.append((rel, p))
    return out


def _imports(path: Path, rel: tuple[str, ...]):
    """(imported module parts below vidlake, line, inside a function) of every vidlake import."""
    tree = ast.parse(path.read_text(), str(path))
    here = rel[:-1]  # the package the module (or package __init__) is in

    def walk(node: ast.AST, in_func: bool):
        for child in ast.iter_child_nodes(node):
            f = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = here[: len(here) - (child.level - 1)] if child.level > 1 else here
                    mod = tuple(base) + (tuple(child.module.split(".")) if child.module else ())
                    if not child.module:  # from . import x, y: x and y are modules or names of base
                        for a in child.names:
                            yield (*mod, a.name), child.lineno, f
                        continue
                    yield mod, child.lineno, f
                elif child.module and (child.module == "vidlake" or child.module.startswith("vidlake.")):
                    mod = tuple(child.module.split(".")[1:])
                    if not mod:
                        for a in child.names:
                            yield (a.name,), child.lineno, f
                        continue
                    yield mod, child.lineno, f
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name == "vidlake" or a.name.startswith("vidlake."):
                        yield tuple(a.name.split(".")[1:]), child.lineno, f
            yield from walk(child, f)

    yield from walk(tree, False)


def test_every_module_has_a_layer():
    for rel, _p in _modules():
        _rank(_group(rel))


@pytest.mark.parametrize(("rel", "path"), _modules(), ids=lambda v: ".".join(v) if isinstance(v, tuple) else "")
def test_imports_run_one_way(rel, path):
    me = _group(rel)
    my_rank = _rank(me)
    problems = []
    for target, line, in_func in _imports(path, rel):
        where = f"vidlake/{'/'.join(rel)}.py:{line}"
        if not target:
            continue
        if target[0] == "_core":
            if me not in ("video",):
                problems.append(f"{where}: only the video layer imports vidlake._core")
            continue
        tg = _group(target)
        if tg == "__init__" or (len(target) == 1 and target[0] not in {g for gs in LAYERS for g in gs}):
            # `from vidlake import X` / `from .. import X` with X a name of the package root
            tr = TOP
        else:
            tr = _rank(tg)
        if tg != me and (tr > my_rank or (tr == my_rank and my_rank != TOP)):
            problems.append(f"{where}: vidlake.{me} (layer {my_rank}) imports vidlake.{'.'.join(target)} "
                            f"(layer {tr}): imports must run down the layers")
        if in_func and my_rank < TOP:
            problems.append(f"{where}: import inside a function below the top layer "
                            "(import at module level, or move the code up a layer)")
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_bad_import(tmp_path):
    """The walk finds an upward import and a function-level one (so the test above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("from ..dataset import Dataset\n\ndef f():\n    from ..api import load\n")
    found = list(_imports(bad, ("video", "bad")))
    assert (("dataset",), 1, False) in found
    assert (("api",), 4, True) in found
