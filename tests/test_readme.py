"""The README's ```python blocks, run as tests (the convention is in README.md, "Testing the examples").

* Every ```python block of README.md runs. The blocks of one ``##`` section (its ``###``
  subsections included) share one namespace and run in order, as one test named after it.
  A namespace starts with ``np`` (numpy) and ``vidlake`` imported, as the README assumes.
* A block right after ``<!-- readme: skip (reason) -->`` is not run (opening a browser, real
  credentials); the reason is required.
* ``expr  # -> text`` checks the value: ``repr(expr)`` must match ``text`` with doctest's rules
  (``...`` matches anything, whitespace runs are equal). For ``print(...)`` the printed text is
  compared. Comment lines right below that start with ``#`` plus at least three spaces continue
  ``text``; ``  # remark`` (two spaces, then ``#``) ends the text of a line. Every such check must run (one in an ``except`` block that is never entered fails).
* Each test runs in a fresh temporary folder holding the files the README names
  (:data:`FILES`: copies of ``VIDLAKE_TESTDATA`` videos, a small MOT-style image folder, a
  text file posing as a video). Remote snippets run against the loopback servers of
  tests/remote_fixtures.py: ``AWS_*`` variables point boto3 at moto, ``STORAGE_EMULATOR_HOST``
  at the GCS emulator (buckets ``my-bucket``, ``bucket``, ``other-bucket``, ``public-bucket``
  hold ``clip.mp4``), and ``https://example.com/`` is replaced by the local HTTP server's URL.
"""
from __future__ import annotations

import ast
import contextlib
import doctest
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import annotation_assets as aa
import assets
import numpy as np
import pytest

import vidlake
from vidlake import _core

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
# docs/*.md are not run: their blocks are API outlines (signatures, ``creds={...}``, names the
# reader brings) rather than examples; a file joins by being listed here once its blocks run.
DOCS = [ROOT / "README.md"]

#: working-folder name -> the shared test video it stands for
FILES = {
    "clip.mp4": "samplemp4.mp4",                 # 640x360 H.264, 400 frames at 29.97 fps, GOP 250
    "videos/example1.mp4": "samplemp4.mp4",
    "videos/example2.mp4": "bikes.mp4",          # 640x272, 250 frames at 25 fps
}
MOT_SEQ = "MOT17/train/MOT17-02-FRCNN"          # img1/000001.jpg .. 000020.jpg (64x48) + gt/
REMOTE_URL = "https://example.com/"
S3_BUCKETS = ("my-bucket", "bucket")
GCS_BUCKETS = ("my-bucket", "other-bucket", "public-bucket")

SKIP_RE = re.compile(r"<!--\s*readme:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
CHECK_RE = re.compile(r"#\s*->\s?(?P<want>.*)$")


@dataclass
class Block:
    line: int                      # 1-based line of the block's first code line in the file
    code: str
    skip: str | None = None


@dataclass
class Section:
    doc: Path
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.doc.name}::{self.title}"


def parse_sections(doc: Path) -> list[Section]:
    """The ``##`` sections of a markdown file that hold ```python blocks."""
    lines = doc.read_text().splitlines()
    sections: list[Section] = [Section(doc, "(top)")]
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("## "):
            sections.append(Section(doc, ln[3:].strip()))
        elif ln.strip() == "```python":
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            if j == len(lines):
                raise AssertionError(f"{doc.name}:{i + 1}: unterminated ```python block")
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            m = SKIP_RE.search(lines[k]) if k >= 0 else None
            if k >= 0 and "readme: skip" in lines[k] and m is None:
                raise AssertionError(f"{doc.name}:{k + 1}: a skip marker needs a reason: "
                                     "<!-- readme: skip (why) -->")
            sections[-1].blocks.append(Block(start + 1, "\n".join(lines[start:j]) + "\n",
                                             m.group("reason") if m else None))
            i = j
        i += 1
    return [s for s in sections if s.blocks]


# ---------------------------------------------------------------------------------------
# value checks: ``expr  # -> want``
# ---------------------------------------------------------------------------------------
def _wanted(code: str) -> dict[int, str]:
    """1-based line -> expected text, for every line ending in ``# -> ...`` (plus continuations)."""
    lines = code.splitlines()
    out: dict[int, str] = {}
    for n, ln in enumerate(lines):
        m = CHECK_RE.search(ln)
        if m is None or ln.lstrip().startswith("#"):
            continue
        want = [m.group("want")]
        for cont in lines[n + 1:]:
            s = cont.strip()
            if not (s.startswith("#   ") or cont.startswith(" " * m.start() + "#")):
                break
            want.append(s[1:])
        out[n + 1] = " ".join(w.split("  # ")[0].strip() for w in want)
    return out


class _Checks(ast.NodeTransformer):
    """Rewrites each checked expression statement into a call of ``__readme_check__``."""

    def __init__(self, wanted: dict[int, str]) -> None:
        self.wanted = wanted
        self.found: set[int] = set()

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        line = node.end_lineno or node.lineno
        if line not in self.wanted:
            return node
        self.found.add(line)
        v = node.value
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "print":
            fn = ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[],
                                               defaults=[]), body=v)
            call = ast.Call(ast.Name("__readme_print__", ast.Load()), [fn, ast.Constant(line)], [])
        else:
            call = ast.Call(ast.Name("__readme_check__", ast.Load()), [v, ast.Constant(line)], [])
        return ast.copy_location(ast.Expr(call), node)


_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _matches(want: str, got: str) -> bool:
    return _CHECKER.check_output(want + "\n", got + "\n", _FLAGS)


def run_section(section: Section, namespace: dict, url_map: dict[str, str]) -> int:
    """Runs the section's blocks in order in ``namespace``; returns the number of checks made."""
    made = 0
    for b in section.blocks:
        if b.skip is not None:
            continue
        code = b.code
        for k, v in url_map.items():
            code = code.replace(k, v)
        where = f"{section.doc.name}:{b.line}"
        wanted = _wanted(code)
        tree = ast.parse(code, filename=where)
        checks = _Checks(wanted)
        tree = ast.fix_missing_locations(checks.visit(tree))
        missing = set(wanted) - checks.found
        assert not missing, f"{where}: '# ->' only checks an expression statement (block lines {sorted(missing)})"
        done: set[int] = set()

        def check(value, line, wanted=wanted, done=done, first=b.line):
            got = repr(value)
            assert _matches(wanted[line], got), (
                f"{section.doc.name}:{first + line - 1}: expected {wanted[line]!r}, got {got!r}")
            done.add(line)
            return value

        def check_print(fn, line, wanted=wanted, done=done, first=b.line):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                fn()
            got = buf.getvalue().rstrip("\n")
            assert _matches(wanted[line], got), (
                f"{section.doc.name}:{first + line - 1}: printed {got!r}, expected {wanted[line]!r}")
            done.add(line)

        namespace["__readme_check__"] = check
        namespace["__readme_print__"] = check_print
        # line numbers of tracebacks point into the markdown file
        tree = ast.increment_lineno(tree, b.line - 1)
        exec(compile(tree, str(section.doc), "exec"), namespace)
        skipped = set(wanted) - done
        assert not skipped, (f"{where}: the checks on block lines {sorted(skipped)} never ran "
                             "(an except block not entered?)")
        made += len(done)
    return made


# ---------------------------------------------------------------------------------------
# the working folder and the servers
# ---------------------------------------------------------------------------------------
def _damaged_dataset(root: Path, video: Path) -> None:
    """A one-video dataset whose stored packet index says ``video_delay`` 40 (a crafted index)."""
    ds = vidlake.empty(str(root))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(vidlake.read(str(video)))
    seg_id = json.loads((root / "dataset_meta.json").read_bytes())["tensor_state"]["videos"]["segments"][0]["id"]
    table = root / "videos" / "tables" / f"{seg_id}.json"
    seg = json.loads(table.read_bytes())
    (cid, off, n), = seg["samples"][0]["index"]
    fields = _core.Index.from_bytes((root / "videos" / "chunks" / cid).read_bytes()[off:off + n])._fields()
    fields["video_delay"] = 40
    data = _core.Index._bytes_from_fields(fields)
    (root / "videos" / "chunks" / "crafted").write_bytes(data)
    seg["samples"][0]["index"] = [["crafted", 0, len(data)]]
    table.write_bytes(json.dumps(seg).encode())


@pytest.fixture
def readme_folder(tmp_path, monkeypatch) -> Iterator[Path]:
    sources = {assets.VIDEO_DIR / s for s in FILES.values()}
    before = {p: p.stat() for p in sources if p.exists()}
    for name, shared in FILES.items():
        dst = tmp_path / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        src = assets.VIDEO_DIR / shared
        if not src.exists():
            pytest.fail(f"shared test video missing: {src}")
        # a copy, never a symlink: the README's examples write files of these names
        # ("Writing video" encodes to clip.mp4), and a write must not reach the shared data
        shutil.copyfile(src, dst)
    (tmp_path / "notes.txt.mp4").write_text("meeting notes, not a video\n")
    _damaged_dataset(tmp_path / "downloaded_ds", tmp_path / "clip.mp4")
    aa.mot_sequence(aa.MOT17, tmp_path / MOT_SEQ, 20, 48, 64)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for p, st in before.items():  # the examples must never write the shared test data
        now = p.stat()
        assert (now.st_size, now.st_mtime_ns) == (st.st_size, st.st_mtime_ns), f"{p} was modified"


@pytest.fixture
def readme_remote(request, monkeypatch, moto_server, http_server):
    """S3 (moto) through boto3's environment chain, https://example.com/ -> the local HTTP server,
    and for a section that names ``gs://`` the GCS emulator."""
    clip = assets.VIDEO_DIR / FILES["clip.mp4"]
    for k, v in {"AWS_ACCESS_KEY_ID": "readme-key", "AWS_SECRET_ACCESS_KEY": "readme-secret",
                 "AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    s3 = moto_server.client()
    for b in S3_BUCKETS:
        s3.create_bucket(Bucket=b)
        s3.upload_file(str(clip), b, "clip.mp4")
    http_server.add("clip.mp4", clip)
    gcs = None
    if any("gs://" in b.code for b in request.node.callspec.params["section"].blocks):
        gcs = request.getfixturevalue("gcs_server")   # skips when gcp-storage-emulator is absent
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
        g = gcs.client()
        for b in GCS_BUCKETS:
            g.create_bucket(b)
            g.bucket(b).blob("clip.mp4").upload_from_filename(str(clip))
    yield {REMOTE_URL: http_server.url + "/"}
    for b in S3_BUCKETS:
        moto_server.drop_bucket(b)
    if gcs is not None:
        for b in GCS_BUCKETS:
            gcs.drop_bucket(b)


SECTIONS = [s for doc in DOCS for s in parse_sections(doc)]


@pytest.mark.parametrize("section", SECTIONS, ids=[s.id for s in SECTIONS])
def test_readme_section(section, readme_folder, readme_remote):
    if all(b.skip is not None for b in section.blocks):
        pytest.skip("; ".join(b.skip for b in section.blocks if b.skip))
    namespace = {"__name__": "__readme__", "np": np, "vidlake": vidlake}
    os.environ.setdefault("VIDLAKE_ALLOW_LOCAL_LINKS", "*")
    run_section(section, namespace, readme_remote)


# ---------------------------------------------------------------------------------------
# the harness itself
# ---------------------------------------------------------------------------------------
def test_harness_checks_values_and_skips(tmp_path):
    doc = tmp_path / "X.md"
    doc.write_text("# t\n\n## A\n\n```python\nx = 2\nx + 1        # -> 3\nprint('a b')  # -> a b\n```\n\n"
                   "<!-- readme: skip (opens a browser) -->\n```python\nraise SystemExit\n```\n\n"
                   "## B\n\n```python\n{'k': list(range(30))}   # -> {'k': [0, 1,\n"
                   "#                                  ..., 29]}\n```\n")
    a, b = parse_sections(doc)
    assert [x.skip for x in a.blocks] == [None, "opens a browser"]
    assert run_section(a, {}, {}) == 2
    assert run_section(b, {}, {}) == 1
    doc.write_text("## C\n\n```python\n1 + 1   # -> 3\n```\n")
    with pytest.raises(AssertionError, match="expected '3', got '2'"):
        run_section(parse_sections(doc)[0], {}, {})
    doc.write_text("## D\n\n```python\ntry:\n    pass\nexcept ValueError as e:\n    print(e)  # -> boom\n```\n")
    with pytest.raises(AssertionError, match="never ran"):
        run_section(parse_sections(doc)[0], {}, {})
    doc.write_text("## E\n\n<!-- readme: skip -->\n```python\npass\n```\n")
    with pytest.raises(AssertionError, match="needs a reason"):
        parse_sections(doc)
