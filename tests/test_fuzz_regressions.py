"""Every input the index fuzzer kept (``fuzz/regressions``: crashers found, ``fuzz/corpus``) is
replayed through the Python API, so the test suite keeps them fixed without clang.

An input is one selector byte (seed video of ``fuzz/seed_videos.txt``, and the kind of source:
file bytes in memory, a local or a remote range source) followed by packet-index bytes
(``fuzz/index_fuzzer.cpp``). All inputs run in one child process: a crash or hang fails the test.
Without sanitizers an old crasher may pass silently (undefined behaviour need not crash), so
each crasher must also be refused at load; ``make test-asan`` runs this under ASan and UBSan.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import assets
import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
TIMEOUT = 300

# the range source both children read through: a dataset's ChunkRangeSource (local) or a remote
# object, over bytes in memory
_RANGES = textwrap.dedent("""
    class Ranges:
        def __init__(self, b, local):
            self.b, self.size, self.local, self.name = b, len(b), local, "ranges"
        def fetch(self, ranges):
            return [self.b[a:e] for a, e in ranges]
""")

_CHILD = _RANGES + textwrap.dedent("""
    import json, sys, vidlake
    videos, inputs = json.loads(sys.stdin.read())
    data = {p: open(p, "rb").read() for p in videos}

    out = []
    for path in inputs:
        raw = open(path, "rb").read()
        if not raw:
            continue
        k, mode = raw[0] % len(videos), (raw[0] // len(videos)) % 3
        b = data[videos[k]]
        src = b if mode == 0 else Ranges(b, mode == 1)
        stage = "load"
        try:
            r = vidlake.VideoReader(src, index=raw[1:], threads=1)
            stage = "read"
            n = len(r)
            r.metadata
            r.get_frames([0, n // 2, n - 1], size=(16, 16))
            out.append([path, None, stage, ""])
        except vidlake.VidlakeError as e:
            out.append([path, "vidlake", stage, type(e).__name__])
        except BaseException as e:
            out.append([path, type(e).__name__, stage, str(e)[:300]])
    print(json.dumps(out))
""")


def seed_videos() -> list[str]:
    names = [ln.strip() for ln in (FUZZ / "seed_videos.txt").read_text().splitlines()]
    return [str(assets.VIDEO_DIR / n) for n in names if n and not n.startswith("#")]


def test_fuzz_inputs_replay_without_crash_or_foreign_errors():
    videos = seed_videos()
    missing = [v for v in videos if not os.path.exists(v)]
    if missing:
        pytest.fail(f"seed videos missing from the shared test data: {missing}")
    inputs = sorted(str(p) for d in ("regressions", "corpus") for p in (FUZZ / d).glob("*") if p.is_file())
    assert any("regressions" in p for p in inputs), "no fuzz regressions found"
    try:
        res = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps([videos, inputs]), text=True,
                             capture_output=True, timeout=TIMEOUT, check=False,
                             env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"replaying {len(inputs)} fuzz inputs hung for more than {TIMEOUT} s")
    assert res.returncode == 0, f"child crashed: exit code {res.returncode}\nstderr:\n{res.stderr[-3000:]}"
    results = json.loads(res.stdout.splitlines()[-1])
    foreign = [r for r in results if r[1] not in (None, "vidlake")]
    assert not foreign, f"errors outside vidlake.VidlakeError: {foreign}"
    # A kept crasher is refused when it is loaded, before anything is decoded, unless it is a
    # valid index that crashed later on (such files are named valid-*).
    late = [r for r in results if "/regressions/" in r[0] and not Path(r[0]).name.startswith("valid-")
            and (r[2], r[3]) != ("load", "IndexFormatError")]
    assert not late, f"crashers not refused at load with IndexFormatError: {late}"


# Container crashers (``fuzz/regressions-container``, ``fuzz/container_fuzzer.cpp``): one selector
# byte (index mode: auto, tables, checked, demux; source: file bytes, a local or a remote range
# source) followed by the bytes of a video file. Each is built, reloaded and read as the harness
# does; each must now be refused with a VidlakeError, or give an index that loads again unchanged.
_CONTAINER_CHILD = _RANGES + textwrap.dedent("""
    import json, sys, vidlake
    from vidlake import _core
    inputs = json.loads(sys.stdin.read())

    out = []
    for path in inputs:
        raw = open(path, "rb").read()
        if len(raw) < 2:
            continue
        mode = ("auto", "tables", "checked", "demux")[raw[0] % 4]
        kind = (raw[0] // 4) % 3
        b = raw[1:]
        src = b if kind == 0 else Ranges(b, kind == 1)
        stage = "build"
        try:
            idx = _core.Index.build(src, -1, "input", mode)
            stored = idx.to_bytes()
            stage = "reload"
            try:
                again = _core.Index.from_bytes(stored, "input")
            except vidlake.IndexFormatError as e:
                # The two refusals left to the store (an append refuses them by name): frame
                # timestamps from a decode that repeat, and a codec outside the stored-index list
                # (msrle); the video still reads from its file.
                decode_order = ("pts' does not follow the previous frame's" in str(e)
                                and not idx.metadata.get("pts_from_container"))
                file_only = (f"({idx.metadata.get('codec')}), not a video codec vidlake reads from a stored index"
                             in str(e))
                if not (decode_order or file_only):
                    raise
                again = None
            assert again is None or again.to_bytes() == stored, "the index changed when loaded again"
            stage = "read"
            r = vidlake.VideoReader(src, index=idx, threads=1)
            r.get_frames([0, len(r) - 1], size=(16, 16))
            out.append([path, None, stage, ""])
        except vidlake.VidlakeError as e:  # a built index the loader refuses is a finding
            out.append([path, "vidlake" if stage != "reload" else type(e).__name__, stage, str(e)[:300]])
        except BaseException as e:
            out.append([path, type(e).__name__, stage, str(e)[:300]])
    print(json.dumps(out))
""")


def test_container_crashers_replay_without_crash_or_foreign_errors():
    inputs = sorted(str(p) for p in (FUZZ / "regressions-container").glob("*") if p.is_file())
    assert inputs, "no container fuzz regressions found"
    try:
        res = subprocess.run([sys.executable, "-c", _CONTAINER_CHILD], input=json.dumps(inputs), text=True,
                             capture_output=True, timeout=TIMEOUT, check=False,
                             env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"replaying {len(inputs)} container fuzz inputs hung for more than {TIMEOUT} s")
    assert res.returncode == 0, f"child crashed: exit code {res.returncode}\nstderr:\n{res.stderr[-3000:]}"
    results = json.loads(res.stdout.splitlines()[-1])
    assert len(results) == len(inputs)
    foreign = [r for r in results if r[1] not in (None, "vidlake")]
    assert not foreign, f"errors outside vidlake.VidlakeError (or an index that does not reload): {foreign}"
