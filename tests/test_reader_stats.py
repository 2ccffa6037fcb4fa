"""Decode-work counters pin the reader's performance behaviour, not only its output.

Two synthetic long-GOP clips (320x240, 300 frames, 2 B-frames) with a known packet layout:
gop300.mp4 (one keyframe) and gop30.mp4 (keyframes every 30 frames).  The bounds allow the
decoder's reorder delay (``REORDER`` = number of B-frames: libavcodec holds that many frames
before the first output), nothing more: a read decodes only the packets from the keyframe that
opens the target's GOP up to the target, each at most once.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import av
import numpy as np
import oracle
import pytest

import vidlake

NUM_FRAMES = 300
REORDER = 2           # -bf 2
COUNTERS = ("packets_decoded", "frames_decoded", "frames_converted", "bytes_read", "spans", "seeks")


@dataclass
class Clip:
    path: str
    size: int
    pts_of_dpos: list         # decode order -> pts
    dpos_of_frame: list       # presentation index -> decode position
    keyframes: list           # presentation indices of keyframes

    def key_before(self, t: int) -> int:
        return max(k for k in self.keyframes if k <= t)

    def last_dpos(self, target: int) -> int:
        """Decode position of the last packet needed to output ``target``: libavcodec returns frames in
        presentation order, so every frame from the GOP's keyframe up to the target must be decoded."""
        return max(self.dpos_of_frame[self.key_before(target):target + 1])

    def packets_needed(self, targets) -> int:
        """Packets in decode order from the keyframe of the first target's GOP to the last one needed."""
        kpos = self.dpos_of_frame[self.key_before(min(targets))]
        return max(self.last_dpos(t) for t in targets) - kpos + 1


def _encode(path: str, keyint: int) -> Clip:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=30:duration={NUM_FRAMES / 30}",
           "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(keyint), "-bf", str(REORDER),
           "-x264-params", f"keyint={keyint}:min-keyint={keyint}:scenecut=0",
           "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1", path]
    subprocess.run(cmd, check=True, capture_output=True)
    pts, keys = [], []
    with av.open(path) as c:
        for pkt in c.demux(video=0):
            if pkt.size:
                pts.append(pkt.pts)
                keys.append(pkt.is_keyframe)
    order = np.argsort(pts, kind="stable")          # presentation index -> decode position
    dpos_of_frame = [int(d) for d in order]
    frame_of_dpos = {d: i for i, d in enumerate(dpos_of_frame)}
    keyframes = sorted(frame_of_dpos[d] for d, k in enumerate(keys) if k)
    assert len(pts) == NUM_FRAMES
    return Clip(path, os.path.getsize(path), pts, dpos_of_frame, keyframes)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("stats")
    gop300 = _encode(str(d / "gop300.mp4"), 300)
    gop30 = _encode(str(d / "gop30.mp4"), 30)
    assert gop300.keyframes == [0]
    assert gop30.keyframes == list(range(0, NUM_FRAMES, 30))
    return {"gop300": gop300, "gop30": gop30}


def fresh(clip: Clip, threads=1) -> vidlake.VideoReader:
    # threads=1: with frame threading libavcodec holds up to (threads - 1) more packets before its
    # first output, which the tight packet bounds below do not allow for (see the threads=None test)
    r = vidlake.VideoReader(clip.path, threads=threads)
    r.reset_stats()
    return r


def delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before[k] for k in COUNTERS}


def test_stats_keys_and_reset(clips):
    r = vidlake.VideoReader(clips["gop30"].path)
    r.get_frames([3, 70])
    s = r.stats
    for k in COUNTERS:
        assert k in s, f"stats lacks {k!r}: {sorted(s)}"
        assert isinstance(s[k], int)
        assert s[k] >= 0
    assert s["frames_converted"] == 2
    assert s["packets_decoded"] > 0
    r.reset_stats()
    assert all(r.stats[k] == 0 for k in COUNTERS), r.stats


def test_keyframe_indices_match_the_stream(clips):
    for clip in clips.values():
        r = vidlake.VideoReader(clip.path)
        assert list(np.asarray(r.keyframe_indices)) == clip.keyframes
        assert len(r) == NUM_FRAMES


@pytest.mark.parametrize("target", [150, 299, 7])
def test_single_mid_gop_frame_decodes_only_what_it_needs(clips, target):
    clip = clips["gop300"]
    r = fresh(clip)
    oracle.assert_frames_equal(r[target], oracle.frame(clip.path, target), f"gop300 frame {target}")
    s = r.stats
    key = clip.key_before(target)
    assert s["frames_converted"] == 1, s
    assert s["frames_decoded"] <= target - key + 1 + REORDER, s
    assert s["packets_decoded"] <= clip.packets_needed([target]) + REORDER, (s, clip.packets_needed([target]))
    assert s["spans"] == 1, s
    assert s["seeks"] <= 1, s


@pytest.mark.parametrize("targets", [[100, 180], [180, 100], [120, 121, 120]])
def test_two_frames_in_one_gop_are_one_span(clips, targets):
    clip = clips["gop300"]
    r = fresh(clip)
    got = r.get_frames(targets)
    oracle.assert_batch_equal(got, oracle.stack(clip.path, targets), targets, f"gop300 {targets}")
    s = r.stats
    assert s["spans"] == 1, s
    assert s["seeks"] <= 1, s
    # every packet at most once: no second pass from the keyframe for the second target
    assert s["packets_decoded"] <= clip.packets_needed(targets) + REORDER, (s, clip.packets_needed(targets))
    assert s["frames_decoded"] <= max(targets) + 1 + REORDER, s
    assert s["frames_converted"] == len(set(targets)) or s["frames_converted"] == len(targets), s


def test_frames_in_different_gops_are_two_spans(clips):
    clip = clips["gop30"]
    targets = [250, 40]
    r = fresh(clip)
    oracle.assert_batch_equal(r.get_frames(targets), oracle.stack(clip.path, targets), targets, "gop30 [250, 40]")
    s = r.stats
    assert s["spans"] == 2, s
    assert s["seeks"] <= 2, s
    budget = sum(clip.packets_needed([t]) + REORDER for t in targets)
    assert s["packets_decoded"] <= budget, (s, budget)
    assert s["frames_decoded"] <= (40 - 30 + 1 + REORDER) + (250 - 240 + 1 + REORDER), s
    assert s["frames_converted"] == 2, s


@pytest.mark.parametrize(("name", "first"), [("gop300", 100), ("gop30", 32)])
def test_forward_read_in_same_gop_continues_without_seek(clips, name, first):
    clip = clips[name]
    second = first + 5
    r = fresh(clip)
    oracle.assert_frames_equal(r[first], oracle.frame(clip.path, first), f"{name} frame {first}")
    before = dict(r.stats)
    oracle.assert_frames_equal(r[second], oracle.frame(clip.path, second), f"{name} frame {second}")
    d = delta(r.stats, before)
    assert d["seeks"] == 0, f"second read seeked: {d}"
    step = clip.last_dpos(second) - clip.last_dpos(first)
    assert d["packets_decoded"] <= max(step, 0) + REORDER + 1, d
    assert d["frames_decoded"] <= (second - first) + REORDER, d
    assert d["frames_converted"] == 1, d


def test_default_threads_decode_only_what_they_need(clips):
    """Default decoder threads: frame threading may hold up to ~cpu_count extra packets in flight."""
    clip = clips["gop300"]
    r = fresh(clip, threads=None)
    target = 150
    oracle.assert_frames_equal(r[target], oracle.frame(clip.path, target), f"gop300 frame {target}")
    s = r.stats
    slack = REORDER + (os.cpu_count() or 1) + 1
    assert s["packets_decoded"] <= clip.packets_needed([target]) + slack, (s, clip.packets_needed([target]))
    assert s["frames_decoded"] <= target + 1 + REORDER, s
    assert s["frames_converted"] == 1, s
    assert s["spans"] == 1, s


def test_bytes_read_for_one_early_frame_is_small(clips):
    clip = clips["gop30"]
    r = fresh(clip)
    r[2]
    s = r.stats
    assert s["bytes_read"] > 0, s
    assert s["bytes_read"] < clip.size / 4, (s, clip.size)


def test_bytes_read_grows_with_the_read(clips):
    clip = clips["gop30"]
    r = fresh(clip)
    r[2]
    small = r.stats["bytes_read"]
    r.reset_stats()
    r.get_frames(list(range(0, NUM_FRAMES, 29)))
    assert r.stats["bytes_read"] > small


@pytest.mark.parametrize("threads", [1, None])
def test_parked_decoder_serves_a_later_frame_after_a_jump_back(clips, threads):
    """Note [Parked decoders]: reading 200 then jumping back to 20 keeps the decoder that stands
    at 200 parked; a read of 230 continues from it instead of decoding 0..230 again."""
    clip = clips["gop300"]
    r = fresh(clip, threads=threads)
    for t in (200, 20):
        oracle.assert_frames_equal(r[t], oracle.frame(clip.path, t), f"gop300 frame {t}")
    before = dict(r.stats)
    oracle.assert_frames_equal(r[230], oracle.frame(clip.path, 230), "gop300 frame 230")
    d = delta(r.stats, before)
    assert d["seeks"] == 0, f"the read of 230 restarted at the keyframe: {d}"
    slack = REORDER + (os.cpu_count() or 1) + 1
    assert d["packets_decoded"] <= clip.last_dpos(230) - clip.last_dpos(200) + slack, d
    # and the decoder parked at 20 still serves 25
    before = dict(r.stats)
    oracle.assert_frames_equal(r[25], oracle.frame(clip.path, 25), "gop300 frame 25")
    d = delta(r.stats, before)
    assert d["seeks"] == 0, d
    assert d["packets_decoded"] <= 5 + slack, d


def test_parked_decoders_are_bounded(clips):
    """Random reads across one long GOP keep at most 8 decoders; every frame stays exact."""
    clip = clips["gop300"]
    r = vidlake.VideoReader(clip.path)
    rng = np.random.default_rng(7)
    ref = {}
    for t in rng.integers(0, NUM_FRAMES, 24).tolist():
        ref.setdefault(t, oracle.frame(clip.path, t))
        oracle.assert_frames_equal(r[t], ref[t], f"gop300 frame {t}")
    assert 1 <= r.stats["decoders"] <= 8, r.stats


def test_trim_closes_parked_decoders_and_reads_stay_exact(clips):
    """r.trim(keep) closes idle decoder states beyond the `keep` most recently used; the one kept
    still serves a later frame without a seek, and a reader trimmed to none opens a new state."""
    clip = clips["gop300"]
    r = vidlake.VideoReader(clip.path)
    for t in (200, 20, 100):
        oracle.assert_frames_equal(r[t], oracle.frame(clip.path, t), f"gop300 frame {t}")
    assert r.stats["decoders"] >= 2, r.stats
    r.trim(1)
    assert r.stats["decoders"] == 1, r.stats
    before = dict(r.stats)
    oracle.assert_frames_equal(r[110], oracle.frame(clip.path, 110), "gop300 frame 110")
    assert delta(r.stats, before)["seeks"] == 0, "the state parked at 100 (the most recent) was closed"
    r.trim()
    assert r.stats["decoders"] == 0, r.stats
    oracle.assert_frames_equal(r[5], oracle.frame(clip.path, 5), "gop300 frame 5 after trim()")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="keep must be"):
            r.trim(bad)


# ---- frames_skipped (Note [Skipped frames]): frames the decoder emitted that the read did not
# return. One codec thread and skip_nonref=False, so that every frame between a GOP's keyframe and
# the last wanted frame comes out of the decoder, one per packet: the expected counts follow from
# the keyframes alone.

def exact_reader(clip: Clip) -> vidlake.VideoReader:
    r = vidlake.VideoReader(clip.path, threads=1, skip_nonref=False)
    r.reset_stats()
    return r


def expected_skipped(clip: Clip, targets) -> int:
    """Frames decoded but not returned by a read of ``targets`` whose GOPs are each one seek: in each
    GOP, every frame from its keyframe up to its last wanted frame is emitted, in presentation order."""
    by_key: dict = {}
    for t in set(targets):
        by_key.setdefault(clip.key_before(t), []).append(t)
    return sum(max(ts) - k + 1 - len(ts) for k, ts in by_key.items())


def assert_skipped_consistent(s: dict) -> None:
    assert s["frames_decoded"] == s["frames_converted"] + s["frames_skipped"], s


def test_frames_skipped_is_in_stats_and_reset(clips):
    r = vidlake.VideoReader(clips["gop30"].path)
    r.get_frames([3, 70])
    s = r.stats
    assert isinstance(s["frames_skipped"], int), s
    assert s["frames_skipped"] >= 0, s
    assert_skipped_consistent(s)
    r.reset_stats()
    assert r.stats["frames_skipped"] == 0, r.stats


@pytest.mark.parametrize(("name", "target"), [("gop300", 150), ("gop30", 45), ("gop30", 30)])
def test_frames_skipped_for_a_seek_into_a_gop(clips, name, target):
    clip = clips[name]
    r = exact_reader(clip)
    oracle.assert_frames_equal(r[target], oracle.frame(clip.path, target), f"{name} frame {target}")
    s = r.stats
    assert s["seeks"] == 1, s
    assert s["frames_skipped"] == target - clip.key_before(target) == expected_skipped(clip, [target]), s
    assert s["frames_converted"] == 1, s
    assert_skipped_consistent(s)


@pytest.mark.parametrize(("name", "key"), [("gop300", slice(10, 200, 10)), ("gop30", slice(10, 300, 30)),
                                           ("gop30", slice(31, 170, 4))])
def test_frames_skipped_for_a_strided_read(clips, name, key):
    clip = clips[name]
    r = exact_reader(clip)
    targets = list(range(*key.indices(NUM_FRAMES)))
    oracle.assert_batch_equal(r[key], oracle.stack(clip.path, targets), targets, f"{name} {key}")
    s = r.stats
    assert s["frames_converted"] == len(targets), s
    gops = {clip.key_before(t) for t in targets}

    def next_key(k: int) -> int:
        return min([j for j in clip.keyframes if j > k] + [NUM_FRAMES])

    if all(max(t for t in targets if clip.key_before(t) == k) < next_key(k) - 5 for k in gops):
        # every GOP's last wanted frame is well before the next keyframe: one seek per GOP
        assert s["seeks"] == len(gops), s
        assert s["frames_skipped"] == expected_skipped(clip, targets), (s, expected_skipped(clip, targets))
    else:
        # the decoder may decode on into the next GOP instead of seeking; never more than
        # every frame up to the last wanted one
        assert expected_skipped(clip, targets) <= s["frames_skipped"] <= max(targets) + 1 - len(targets), s
    assert_skipped_consistent(s)


def test_frames_skipped_is_zero_for_a_sequential_read(clips):
    clip = clips["gop30"]
    r = exact_reader(clip)
    for a in range(0, NUM_FRAMES, 32):
        r.get_frames(range(a, min(a + 32, NUM_FRAMES)))
    s = r.stats
    assert s["frames_converted"] == NUM_FRAMES, s
    assert s["frames_skipped"] == 0, s
    assert s["seeks"] == 1, s
    assert_skipped_consistent(s)


@pytest.mark.parametrize("threads", [1, None])
def test_frames_skipped_with_nonref_skipping_never_exceeds_the_full_decode(clips, threads):
    """With skip_nonref (the default) non-reference frames between the wanted ones are not decoded
    at all, so fewer frames are skipped after decoding; the counters stay consistent."""
    clip = clips["gop300"]
    r = vidlake.VideoReader(clip.path, threads=threads)
    r.reset_stats()
    targets = list(range(10, 200, 10))
    oracle.assert_batch_equal(r.get_frames(targets), oracle.stack(clip.path, targets), targets, "gop300 strided")
    s = r.stats
    assert s["frames_skipped"] <= expected_skipped(clip, targets) + (os.cpu_count() or 1) + REORDER, s
    assert_skipped_consistent(s)
