"""Durability: failures at every step of a commit, SIGKILL mid-append, readers during writes."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import oracle
import pytest
from helpers import snapshot, video

import vidlake
from vidlake.api import empty, load, read
from vidlake.storage import LocalProvider

SMALL = ["stub_h264.mp4", "carphone_distorted.mp4", "amve.mp4", "unordered.mov"]
BIG = "sample_mp4.mp4"   # 1.5 MB: with a 256 kB max_chunk_size it spans several chunks




def check_all_readable(path: str, files: list) -> int:
    """Load, and check every listed sample against the file it came from (first and last frame)."""
    ds = load(path, read_only=True)
    v = ds.videos
    for i in range(len(v)):
        src = v[i].sample_info["filename"]
        assert src in files, src
        n = oracle.info(src).num_frames
        assert v[i].shape[0] == n
        oracle.assert_batch_equal(v[i, [0, n - 1]].numpy(), oracle.stack(src, [0, n - 1]), [0, n - 1],
                                  f"{path}[{i}]")
    return len(v)


def _one_sample_dataset(tmp_path):
    """A dataset holding SMALL[0], with 1 MB chunks so BIG spans two of them."""
    p = tmp_path / "ds"
    ds = empty(str(p))
    ds.create_tensor("videos", htype="video", sample_compression="mp4",
                     max_chunk_size=1024 * 1024, target_chunk_size=512 * 1024)
    ds.videos.append(read(video(SMALL[0])))
    return p, ds


class Boom(Exception):
    pass


@pytest.mark.parametrize("fail_at", range(5))
def test_failure_at_each_commit_step_leaves_dataset_unchanged(tmp_path, monkeypatch, fail_at):
    """An error at the k-th storage write of a commit: on disk and in memory, nothing changed.

    Appending BIG (1.5 MB) with a 1 MB max_chunk_size writes: chunk 1, chunk 2 (data), the
    merged table segment (index), dataset_meta.json (commit point) -- writes 0..3; 4 = no failure.
    """
    p, ds = _one_sample_dataset(tmp_path)
    before = snapshot(p)
    calls = {"n": 0}
    real_write, real_append = LocalProvider.write_parts, LocalProvider.append

    def counting(real):
        def wrapper(self, *a, **kw):
            if calls["n"] == fail_at:
                calls["n"] += 1
                raise vidlake.StorageError("injected failure (disk full)")
            calls["n"] += 1
            return real(self, *a, **kw)
        return wrapper

    # every LocalProvider write goes through write_parts (put too) or append
    monkeypatch.setattr(LocalProvider, "write_parts", counting(real_write))
    monkeypatch.setattr(LocalProvider, "append", counting(real_append))
    try:
        ds.videos.append(read(video(BIG)))       # chunk appends/puts, table put, meta put
        wrote_all = True
    except vidlake.StorageError as e:
        wrote_all = False
        err = str(e)
    else:
        err = ""
    if not wrote_all:
        assert "dataset is unchanged" in err
        assert "disk full" in err
    monkeypatch.undo()
    assert wrote_all == (fail_at == 4)
    if wrote_all:
        assert calls["n"] == 4
        assert len(load(str(p)).videos) == 2
        return
    assert len(ds.videos) == 1
    assert len(load(str(p)).videos) == 1
    # only garbage past committed ends / unreferenced objects may have appeared; the commit record
    # and the committed table are byte-identical
    after = snapshot(p)
    for k, h in before.items():
        if "/chunks/" not in k:
            assert after.get(k) == h, k
    # the same object keeps working after the failure
    ds.videos.append(read(video(SMALL[1])))
    ds.videos.append(read(video(BIG)))
    assert check_all_readable(str(p), [video(SMALL[0]), video(SMALL[1]), video(BIG)]) == 3


def _tmp_files(root) -> list:
    return [str(q) for q in root.rglob("*") if ".tmp-" in q.name]


def test_new_chunks_are_written_during_extend_and_published_at_commit(tmp_path):
    """Inside ``with ds:`` the bytes of new chunks go to temporary files as the samples are
    staged (so copying overlaps indexing); other processes see none of it until the commit."""
    p, ds = _one_sample_dataset(tmp_path)
    with ds:
        ds.videos.extend([read(video(n)) for n in SMALL[1:]] + [read(video(BIG))])
        assert _tmp_files(p), "no chunk was written before the commit"
        assert len(load(str(p), read_only=True).videos) == 1        # not visible yet
        assert len(ds.videos) == 5                                   # but readable here
        oracle.assert_frames_equal(ds.videos[4, 10].numpy(), oracle.frame(video(BIG), 10), "staged read")
    assert not _tmp_files(p)
    assert check_all_readable(str(p), [video(n) for n in SMALL] + [video(BIG)]) == 5


def test_failed_staged_write_leaves_dataset_unchanged(tmp_path, monkeypatch):
    """A write error while an extend copies a new chunk (disk full): nothing appended, no
    temporary file left, and the dataset keeps working."""
    from vidlake.storage.local import StagedObject

    p, ds = _one_sample_dataset(tmp_path)
    before = snapshot(p)
    real = StagedObject.write
    calls = {"n": 0}

    def failing(self, parts, pos):
        calls["n"] += 1
        if calls["n"] == 2:
            raise vidlake.StorageError("injected failure (disk full)")
        return real(self, parts, pos)

    monkeypatch.setattr(StagedObject, "write", failing)
    with pytest.raises(vidlake.StorageError, match="disk full"):
        ds.videos.extend([read(video(BIG)), read(video(SMALL[1]))])
    monkeypatch.undo()
    assert calls["n"] == 2
    assert snapshot(p) == before
    assert not _tmp_files(p)
    assert len(ds.videos) == 1
    assert len(load(str(p)).videos) == 1
    ds.videos.extend([read(video(BIG)), read(video(SMALL[1]))])
    assert check_all_readable(str(p), [video(SMALL[0]), video(BIG), video(SMALL[1])]) == 3


WRITER = textwrap.dedent("""
    import sys, itertools
    from vidlake.api import load, read
    path, files = sys.argv[1], sys.argv[2:]
    ds = load(path)
    for i in itertools.count():
        ds.videos.append(read(files[i % len(files)]))
        print(len(ds.videos), flush=True)
""")


@pytest.mark.timeout(240)
def test_sigkill_mid_append_keeps_every_committed_sample(tmp_path):
    p = str(tmp_path / "ds")
    ds = empty(p)
    ds.create_tensor("videos", htype="video", sample_compression="mp4",
                     max_chunk_size=256 * 1024, target_chunk_size=128 * 1024)
    files = [video(n) for n in SMALL] + [video(BIG)]
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    committed = 0
    mid_append = 0
    delays = [0.0, 0.001, 0.003, 0.006, 0.011, 0.015, 0.02, 0.028, 0.037, 0.05]
    for round_, delay in enumerate(delays):
        proc = subprocess.Popen([sys.executable, str(script), p, *files], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        seen = committed
        target = committed + 3 + round_ % 5
        while seen < target:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"writer died: {proc.stderr.read()}")
            seen = int(line)
        time.sleep(delay)                           # land somewhere inside a later append
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        rest = proc.stdout.read().split()
        last_reported = int(rest[-1]) if rest else seen
        n = check_all_readable(p, files)
        # every append that returned is there; at most the one in flight beyond it
        assert last_reported <= n <= last_reported + 1, (last_reported, n)
        mid_append += n == last_reported and proc.returncode == -signal.SIGKILL
        committed = n
    assert mid_append > 0                                 # some kills landed inside an append
    # and the dataset still accepts appends after all the crashes
    ds = load(p)
    ds.videos.append(read(files[0]))
    assert check_all_readable(p, files) == committed + 1


READER = textwrap.dedent("""
    import sys, time
    from vidlake.api import load
    path, seconds = sys.argv[1], float(sys.argv[2])
    end = time.time() + seconds
    loads = 0
    lens = []
    while time.time() < end:
        ds = load(path, read_only=True)
        v = ds.videos
        n = len(v)
        lens.append(n)
        if n:
            last = v[n - 1]
            assert last.shape[0] == last.sample_info["shape"][0]
            assert v[n - 1, -1].numpy().shape == tuple(last.shape[1:])
        loads += 1
    assert lens == sorted(lens), "a reader saw the dataset shrink"
    print(loads, lens[-1], flush=True)
""")


@pytest.mark.timeout(120)
def test_readers_in_other_processes_see_a_consistent_dataset(tmp_path):
    p = str(tmp_path / "ds")
    ds = empty(p)
    ds.create_tensor("videos", htype="video", sample_compression="mp4",
                     max_chunk_size=256 * 1024, target_chunk_size=128 * 1024)
    ds.videos.append(read(video(SMALL[0])))
    script = tmp_path / "reader.py"
    script.write_text(READER)
    readers = [subprocess.Popen([sys.executable, str(script), p, "3"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    files = [video(n) for n in SMALL] + [video(BIG)]
    end = time.time() + 3.5
    i = 0
    while time.time() < end:
        ds.videos.append(read(files[i % len(files)]))
        i += 1
    for r in readers:
        out, err = r.communicate(timeout=60)
        assert r.returncode == 0, f"reader failed: {err}"
        loads, _last_len = (int(x) for x in out.split())
        assert loads > 1, out
    n = check_all_readable(p, files)
    assert n == i + 1, (n, i + 1)


def test_second_writer_is_refused_not_merged(tmp_path):
    p = str(tmp_path / "ds")
    a = empty(p)
    a.create_tensor("videos", htype="video", sample_compression="mp4")
    b = load(p)
    a.videos.append(read(video(SMALL[0])))
    with pytest.raises(vidlake.DatasetError, match="another writer"):
        b.videos.append(read(video(SMALL[1])))
    assert len(b.videos) == 0
    assert check_all_readable(p, [video(SMALL[0])]) == 1
    b = load(p)
    b.videos.append(read(video(SMALL[1])))
    assert check_all_readable(p, [video(SMALL[0]), video(SMALL[1])]) == 2


def test_memory_dataset_failure_rolls_back(monkeypatch):
    from vidlake.storage import MemoryProvider

    ds = empty("mem://rollback-test", overwrite=True)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(read(video(SMALL[0])))

    def boom(self, key, data):
        raise vidlake.StorageError("injected")

    monkeypatch.setattr(MemoryProvider, "put", boom)
    with pytest.raises(vidlake.StorageError, match="unchanged"):
        ds.videos.append(read(video(SMALL[1])))
    monkeypatch.undo()
    assert len(ds.videos) == 1
    assert len(load("mem://rollback-test").videos) == 1
