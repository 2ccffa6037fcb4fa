"""The budget for parked decoder states (docs/DESIGN.md, "Parked decoders"): a reader never keeps
more estimated decoder memory parked than its budget, closes the least recently used states over
it, and reads stay exact whatever the budget."""
from __future__ import annotations

import subprocess

import numpy as np
import oracle
import pytest

import vidlake

NUM_FRAMES = 240


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """320x240 H.264, one keyframe, 2 B-frames: every parked state can serve later frames."""
    path = str(tmp_path_factory.mktemp("budget") / "gop240.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size=320x240:rate=30:duration={NUM_FRAMES / 30}", "-c:v", "libx264",
                    "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "2",
                    "-x264-params", f"keyint={NUM_FRAMES}:min-keyint={NUM_FRAMES}:scenecut=0",
                    "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1", path],
                   check=True, capture_output=True)
    return path


@pytest.fixture
def default_budget():
    """Restores the process-wide budget a test changes."""
    before = vidlake.decoder_memory_budget()
    yield
    vidlake.set_decoder_memory_budget(before)


def state_bytes(path: str, threads: int = 2) -> int:
    """The estimated memory of one parked state of this video (what one read leaves parked)."""
    r = vidlake.VideoReader(path, threads=threads)
    r.get_frames([5, 6])
    s = r.stats
    assert s["parked_decoders"] == 1, s
    assert s["parked_bytes"] > 0, s
    return s["parked_bytes"]


def random_reads(r: vidlake.VideoReader, path: str, budget: int, seed: int = 3, n: int = 30) -> None:
    rng = np.random.default_rng(seed)
    for t in rng.integers(0, NUM_FRAMES, n).tolist():
        oracle.assert_frames_equal(r[t], oracle.frame(path, t), f"frame {t} with a budget of {budget} bytes")
        s = r.stats
        assert s["parked_bytes"] <= budget, (t, s)
        assert s["parked_decoders"] <= s["decoders"], s


def test_stats_report_parked_states_and_bytes(clip):
    r = vidlake.VideoReader(clip, threads=1)
    s = r.stats
    assert s["parked_decoders"] == 1, s   # the one opened at construction
    assert s["decoders"] == 1, s
    one = s["parked_bytes"]
    # the estimate: reference pictures (10) and one per codec thread, of a 320x240 yuv420p picture
    assert one == 320 * 240 * 3 // 2 * (10 + 1), s
    for t in (200, 100, 20):  # each before the others: none can decode on to it
        r[t]
    s = r.stats
    assert s["parked_decoders"] == 3, s
    assert s["parked_bytes"] == 3 * one, s
    assert r.decoder_memory_budget == 160 * 1024 * 1024
    r.trim(1)
    assert (r.stats["parked_decoders"], r.stats["parked_bytes"]) == (1, one), r.stats


@pytest.mark.parametrize("states", [0, 1, 2])
def test_a_small_budget_is_never_exceeded_and_reads_stay_exact(clip, states):
    one = state_bytes(clip)
    budget = states * one + one // 2  # room for `states` parked states, not one more
    r = vidlake.VideoReader(clip, threads=2, decoder_memory_budget=budget)
    assert r.decoder_memory_budget == budget
    random_reads(r, clip, budget)
    s = r.stats
    assert s["parked_decoders"] <= states, s
    if states:
        assert s["parked_decoders"] >= 1, s


def test_budget_zero_parks_nothing(clip):
    r = vidlake.VideoReader(clip, threads=1, decoder_memory_budget=0)
    random_reads(r, clip, 0, n=10)
    assert r.stats["parked_decoders"] == 0, r.stats
    assert r.stats["parked_bytes"] == 0, r.stats
    assert r.stats["decoders"] == 0, r.stats


def test_parked_states_within_budget_still_serve_a_jump_back(clip):
    """Two states fit: reading 200, then 20, keeps both parked; 230 and 25 continue from them."""
    one = state_bytes(clip, threads=1)
    r = vidlake.VideoReader(clip, threads=1, decoder_memory_budget=2 * one, skip_nonref=False)
    for t in (200, 20):
        oracle.assert_frames_equal(r[t], oracle.frame(clip, t), f"frame {t}")
    assert r.stats["parked_decoders"] == 2, r.stats
    r.reset_stats()
    for t in (230, 25):
        oracle.assert_frames_equal(r[t], oracle.frame(clip, t), f"frame {t}")
    assert r.stats["seeks"] == 0, r.stats
    # a position neither can serve (before both) restarts the least recently used one (at 230)
    oracle.assert_frames_equal(r[5], oracle.frame(clip, 5), "frame 5")
    assert r.stats["parked_decoders"] == 2, r.stats
    assert r.stats["parked_bytes"] <= 2 * one, r.stats
    r.reset_stats()
    oracle.assert_frames_equal(r[235], oracle.frame(clip, 235), "frame 235")
    s = r.stats
    assert s["seeks"] == 0, s       # from the state at 25, the state at 230 is gone
    assert s["frames_decoded"] >= 235 - 25, s


def test_process_wide_budget_applies_to_readers_without_their_own(clip, default_budget):
    one = state_bytes(clip)
    vidlake.set_decoder_memory_budget(one)
    assert vidlake.decoder_memory_budget() == one
    shared = vidlake.VideoReader(clip, threads=2)
    own = vidlake.VideoReader(clip, threads=2, decoder_memory_budget=3 * one)
    assert shared.decoder_memory_budget == one
    assert own.decoder_memory_budget == 3 * one
    random_reads(shared, clip, one, n=12)
    assert shared.stats["parked_decoders"] == 1, shared.stats
    random_reads(own, clip, 3 * one, n=12)
    # lowering the process budget applies to existing readers from their next read or trim
    vidlake.set_decoder_memory_budget(0)
    assert shared.decoder_memory_budget == 0
    shared.trim(8)
    assert shared.stats["parked_decoders"] == 0, shared.stats
    random_reads(shared, clip, 0, n=4)
    vidlake.set_decoder_memory_budget(None)
    assert vidlake.decoder_memory_budget() is None
    assert shared.decoder_memory_budget == 160 * 1024 * 1024


def test_built_in_budget_keeps_one_state_even_when_it_alone_is_larger(clip, default_budget):
    """Under the built-in budget a reader keeps its most recent state (8K video would not fit);
    an explicit budget is strict."""
    vidlake.set_decoder_memory_budget(None)
    r = vidlake.VideoReader(clip, threads=1)
    r[10]
    assert r.stats["parked_decoders"] >= 1, r.stats
    strict = vidlake.VideoReader(clip, threads=1, decoder_memory_budget=state_bytes(clip, threads=1) - 1)
    strict[10]
    assert strict.stats["parked_decoders"] == 0, strict.stats


@pytest.mark.parametrize("bad", [-1, 1.5, True, "64M", 2**63])
def test_bad_budgets_are_refused(clip, bad, default_budget):
    with pytest.raises(ValueError, match="decoder_memory_budget must be"):
        vidlake.VideoReader(clip, decoder_memory_budget=bad)
    with pytest.raises(ValueError, match="nbytes must be"):
        vidlake.set_decoder_memory_budget(bad)


# ---- the process's parked decoders together (docs/DESIGN.md, "The process's parked decoders")

@pytest.fixture
def no_total_budget():
    """Restores the total budget a test changes."""
    before = vidlake.total_decoder_memory_budget()
    yield
    vidlake.set_total_decoder_memory_budget(before)


def test_totals_count_every_reader_and_go_when_they_close(clip):
    import gc
    gc.collect()
    before = vidlake.parked_decoder_memory()
    readers = [vidlake.VideoReader(clip, threads=1) for _ in range(3)]
    for r in readers:
        r.get_frames([10, 200])
    now = vidlake.parked_decoder_memory()
    assert now["decoders"] == before["decoders"] + 3, (before, now)
    mine = sum(r.stats["parked_bytes"] for r in readers)
    assert mine > 0
    assert now["parked_bytes"] == before["parked_bytes"] + mine, (before, now)
    assert now["parked_decoders"] == before["parked_decoders"] + sum(r.stats["parked_decoders"] for r in readers)
    del readers, r
    gc.collect()
    after = vidlake.parked_decoder_memory()
    assert (after["decoders"], after["parked_bytes"]) == (before["decoders"], before["parked_bytes"]), after


@pytest.mark.parametrize("states", [0, 2])
def test_a_total_budget_is_never_exceeded_and_the_least_recently_read_give_back_first(clip, states,
                                                                                       no_total_budget):
    one = state_bytes(clip, threads=1)
    budget = states * one
    vidlake.set_total_decoder_memory_budget(budget)
    assert vidlake.total_decoder_memory_budget() == budget
    assert vidlake.parked_decoder_memory()["budget"] == budget
    readers = [vidlake.VideoReader(clip, threads=1) for _ in range(4)]
    assert vidlake.parked_decoder_memory()["parked_bytes"] <= budget
    shed_before = vidlake.parked_decoder_memory()["shed_decoders"]
    rng = np.random.default_rng(7)
    for step in range(12):
        i = step % 4
        t = int(rng.integers(0, NUM_FRAMES))
        oracle.assert_frames_equal(readers[i][t], oracle.frame(clip, t), f"reader {i} frame {t}")
        totals = vidlake.parked_decoder_memory()
        assert totals["parked_bytes"] <= budget, (step, totals)
        parked = [r.stats["parked_decoders"] for r in readers]
        if states == 0:
            assert parked == [0, 0, 0, 0], parked
        elif step >= 1:
            # the two most recently read keep their one state each; the others gave theirs back
            recent = {i, (i - 1) % 4}
            assert parked == [1 if j in recent else 0 for j in range(4)], (step, parked)
    assert vidlake.parked_decoder_memory()["shed_decoders"] > shed_before


def test_without_a_total_budget_readers_keep_their_own(clip, no_total_budget):
    vidlake.set_total_decoder_memory_budget(None)
    assert vidlake.total_decoder_memory_budget() is None
    readers = [vidlake.VideoReader(clip, threads=1) for _ in range(4)]
    for r in readers:
        r.get_frames([3, 150])
    assert all(r.stats["parked_decoders"] >= 1 for r in readers), [r.stats for r in readers]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_bad_total_budgets_are_refused(bad, no_total_budget):
    with pytest.raises(ValueError, match="nbytes must be a non-negative int"):
        vidlake.set_total_decoder_memory_budget(bad)


def test_a_forked_child_starts_its_own_totals(clip, no_total_budget):
    import multiprocessing as mp
    one = state_bytes(clip, threads=1)
    vidlake.set_total_decoder_memory_budget(one)
    import gc
    r = vidlake.VideoReader(clip, threads=1)
    r.get_frames([4])
    want = oracle.frame(clip, 60)   # here: PyAV objects collected in a forked child can hang it
    gc.collect()                    # (README, "fork is safe"), so the child decodes with vidlake only
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_totals, args=(r, want, q))
    p.start()
    try:
        got = q.get(timeout=120)
    finally:
        p.join(timeout=60)
        if p.is_alive():
            p.kill()
    assert p.exitcode == 0, got
    first, after_read, ok = got
    assert first["parked_bytes"] == 0, first   # the parent's states are not the child's
    assert 0 < after_read["parked_bytes"] <= one, after_read
    assert ok
    assert r.stats["parked_decoders"] == 1   # the parent's reader kept its own


def _child_totals(r, want, q):
    first = vidlake.parked_decoder_memory()
    frame = r[60]
    q.put((first, vidlake.parked_decoder_memory(), bool(np.array_equal(frame, want))))


def test_a_total_budget_under_concurrent_reads_of_shared_readers(clip, no_total_budget):
    # Threads read the same readers at once while the ledger closes other readers' parked states
    # (a busy pool is skipped, never waited for): no deadlock, the cap holds once they are done,
    # every frame exact.
    import threading
    one = state_bytes(clip, threads=1)
    vidlake.set_total_decoder_memory_budget(one)
    readers = [vidlake.VideoReader(clip, threads=1) for _ in range(3)]
    wanted = [int(t) for t in np.random.default_rng(11).integers(0, NUM_FRAMES, 8)]
    want = {t: oracle.frame(clip, t) for t in wanted}
    errors: list[str] = []

    def work(k):
        rng = np.random.default_rng(k)
        try:
            for _ in range(12):
                i = int(rng.integers(0, len(readers)))
                t = wanted[int(rng.integers(0, len(wanted)))]
                if not np.array_equal(readers[i][t], want[t]):
                    errors.append(f"thread {k}: reader {i} frame {t} differs")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a reading thread did not finish (deadlock?)"
    assert not errors, errors
    readers[0][wanted[0]]   # a last read with no other in flight settles the ledger
    assert vidlake.parked_decoder_memory()["parked_bytes"] <= one
