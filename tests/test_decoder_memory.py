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
