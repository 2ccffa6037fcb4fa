"""Frames by time and clip samplers, against hand-computed expectations.

vfr_setpts.mp4 (make_synthetic.sh) is strongly VFR with exact pts in 1/90000 ticks: frames
0-29 at 30 fps, 30-59 at 10 fps, 60-89 at 60 fps, i.e. frame i starts at i/30 s, 1 + (i-30)/10 s
or 4 + (i-60)/60 s. samplemp4.mp4 is constant rate 30000/1001 (frame k at k * 1001/30000 s),
400 frames, GOP 250. Frames are compared bit for bit with the oracle's sequential decode.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import oracle
import pytest
from helpers import video

import vidlake
from vidlake import samplers


def vfr_ticks(i: int) -> int:
    if i < 30:
        return i * 3000
    if i < 60:
        return 90000 + (i - 30) * 9000
    return 360000 + (i - 60) * 1500


VFR_TIMES = np.array([float(Fraction(vfr_ticks(i), 90000)) for i in range(90)])
CFR_PERIOD = Fraction(1001, 30000)


@pytest.fixture(scope="module")
def vfr(synthetic):
    return str(synthetic.path("vfr_setpts.mp4"))


@pytest.fixture(scope="module")
def cfr():
    return video("samplemp4.mp4")


# ---- timestamps -------------------------------------------------------------------------
def test_vfr_timestamps_are_the_hand_computed_ones(vfr):
    r = vidlake.VideoReader(vfr)
    assert len(r) == 90
    np.testing.assert_array_equal(r.timestamps, VFR_TIMES)
    assert r.end_seconds > VFR_TIMES[-1]


def test_played_at_on_vfr_uses_pts_le_t_lt_next(vfr):
    r = vidlake.VideoReader(vfr)
    # at each frame's own time, just before the next, and in the middle of its interval
    nxt = np.append(VFR_TIMES[1:], r.end_seconds)
    np.testing.assert_array_equal(r.indices_played_at(VFR_TIMES), np.arange(90))
    np.testing.assert_array_equal(r.indices_played_at(np.nextafter(nxt, -np.inf)), np.arange(90))
    np.testing.assert_array_equal(r.indices_played_at((VFR_TIMES + nxt) / 2), np.arange(90))
    # hand-picked: 0.99 s -> frame 29 (0.9667..1.0); 1.0 -> 30; 3.95 -> 59 (3.9..4.0); 4.0 -> 60
    np.testing.assert_array_equal(r.indices_played_at([0.99, 1.0, 1.05, 3.95, 4.0, 4.009, 4.017]),
                                  [29, 30, 30, 59, 60, 60, 61])
    got = r.get_frames_played_at([3.95, 0.0, 4.5])
    oracle.assert_batch_equal(got, oracle.stack(vfr, [59, 0, 89]), [59, 0, 89], "played_at on VFR")


def test_played_at_on_constant_rate(cfr):
    r = vidlake.VideoReader(cfr)
    ks = np.array([0, 1, 29, 30, 250, 399])
    starts = np.array([float(k * CFR_PERIOD) for k in ks])
    almost_next = np.array([float((k + Fraction(999, 1000)) * CFR_PERIOD) for k in ks])
    np.testing.assert_array_equal(r.indices_played_at(starts), ks)
    np.testing.assert_array_equal(r.indices_played_at(almost_next), ks)
    np.testing.assert_array_equal(r.indices_played_at(1.0), [29])  # 29 * 1.001/30 = 0.9676 <= 1.0 < 1.001
    np.testing.assert_array_equal(r.get_frames_played_at([1.0, 0.0]), r.get_frames([29, 0]))


def test_played_at_outside_the_stream_names_the_video(cfr):
    r = vidlake.VideoReader(cfr)
    with pytest.raises(vidlake.FrameTimestampError, match=r"samplemp4\.mp4: no frame is shown at 13\.4 s"):
        r.get_frames_played_at([1.0, 13.4])
    with pytest.raises(vidlake.FrameTimestampError, match=r"at -0.5 s"):
        r.indices_played_at(-0.5)
    with pytest.raises(vidlake.FrameTimestampError, match="not a finite"):
        r.indices_played_at([float("nan")])
    with pytest.raises(ValueError, match="no frame is shown"):  # FrameTimestampError is a ValueError too
        r.indices_played_at(r.end_seconds)
    assert r.indices_played_at(np.nextafter(r.end_seconds, 0)).tolist() == [399]


def test_in_range_includes_the_frame_on_screen_at_start(vfr, cfr):
    r = vidlake.VideoReader(vfr)
    # [0.97, 1.25): frame 28 (0.9333..0.9667) is not shown; 29 (0.9667..1.0) is on screen at
    # 0.97; 30, 31, 32 start at 1.0, 1.1, 1.2; 33 starts at 1.3, after the range
    assert r.indices_in_range(0.97, 1.25).tolist() == [29, 30, 31, 32]
    assert r.indices_in_range(0.95, 1.25).tolist() == [28, 29, 30, 31, 32]
    assert r.indices_in_range(1.0, 1.3).tolist() == [30, 31, 32]     # stop is excluded
    assert r.indices_in_range(4.49, 99.0).tolist() == [89]           # cut at the end
    assert r.indices_in_range(2.0, 2.0).tolist() == []
    with pytest.raises(vidlake.FrameTimestampError, match="before start_s"):
        r.indices_in_range(2.0, 1.0)
    c = vidlake.VideoReader(cfr)
    assert c.get_frames_in_range(1.0, 2.0).shape == (31, 360, 640, 3)    # frames 29..59
    np.testing.assert_array_equal(c.get_frames_in_range(1.0, 1.1), c.get_frames([29, 30, 31, 32]))


def test_at_timestamps_tolerance_lerobot_rule(vfr):
    r = vidlake.VideoReader(vfr)
    # sensor times a little off the frames: within 1e-4 s the nearest frame is taken
    q = VFR_TIMES[[0, 31, 75]] + np.array([5e-5, -8e-5, 0.0])
    assert r.indices_at_timestamps(q, tolerance_s=1e-4).tolist() == [0, 31, 75]
    oracle.assert_batch_equal(r.get_frames_at_timestamps(q), oracle.stack(vfr, [0, 31, 75]), [0, 31, 75],
                              "at_timestamps")
    # 1.05 s lies between frame 30 (1.0) and 31 (1.1), 0.05 s from each: an error naming
    # the video, the time and the nearest frame (ties go to the earlier frame)
    with pytest.raises(vidlake.FrameTimestampError) as e:
        r.get_frames_at_timestamps([1.0, 1.05], tolerance_s=1e-3)
    msg = str(e.value)
    assert "vfr_setpts.mp4" in msg
    assert "1.05 s" in msg
    assert "frame 30 at 1.0 s" in msg
    assert r.indices_at_timestamps([1.05], tolerance_s=0.06).tolist() == [30]
    assert r.indices_at_timestamps([1.07], tolerance_s=0.06).tolist() == [31]
    with pytest.raises(vidlake.FrameTimestampError, match="frame 89"):
        r.indices_at_timestamps([10.0])
    with pytest.raises(ValueError, match="tolerance_s"):
        r.indices_at_timestamps([1.0], tolerance_s=-1)


def test_real_vfr_gap(tmp_path):
    """demo_skeleton.mp4: 1/30 s steps with one 0.2 s gap (dropped frames)."""
    path = video("demo_skeleton.mp4")
    r = vidlake.VideoReader(path)
    ts = r.timestamps
    gap = int(np.argmax(np.diff(ts)))
    assert abs((ts[gap + 1] - ts[gap]) - 0.2) < 1e-3
    inside = ts[gap] + 0.1
    assert r.indices_played_at([inside]).tolist() == [gap]        # the frame before the gap stays on screen
    with pytest.raises(vidlake.FrameTimestampError, match=f"nearest is frame {gap}"):
        r.indices_at_timestamps([ts[gap] + 0.09], tolerance_s=0.02)


def test_video_sample_methods_name_the_sample(tmp_path, vfr):
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.create_tensor("labels", htype="class_label")
    ds.append({"videos": vidlake.read(vfr), "labels": 0})
    s = ds.videos[0]
    oracle.assert_batch_equal(s.get_frames_played_at([3.95, 1.0]), oracle.stack(vfr, [59, 30]), [59, 30],
                              "sample played_at")
    np.testing.assert_array_equal(s.get_frames_in_range(0.97, 1.25), oracle.stack(vfr, [29, 30, 31, 32]))
    with pytest.raises(vidlake.FrameTimestampError, match=r"videos\[0\] \(.*vfr_setpts\.mp4\).*1\.05 s"):
        s.get_frames_at_timestamps([1.05])
    with pytest.raises(vidlake.DatasetError, match="only for videos"):
        ds.labels[0].get_frames_played_at([0.0])


# ---- samplers ---------------------------------------------------------------------------
def test_regular_indices_hand_computed(cfr):
    r = vidlake.VideoReader(cfr)
    # span = 2 * 3 + 1 = 7; starts in [0, 400 - 7 + 1) = [0, 394); linspace(0, 393, 3) -> 0, 196, 393
    c = samplers.clips_at_regular_indices(r, num_clips=3, num_frames_per_clip=4, num_indices_between_frames=2)
    expect = np.array([[0, 2, 4, 6], [196, 198, 200, 202], [393, 395, 397, 399]])
    np.testing.assert_array_equal(c.indices, expect)
    assert c.frames.shape == (3, 4, 360, 640, 3)
    assert c.frames.dtype == np.uint8
    np.testing.assert_array_equal(c.timestamps, r.timestamps[expect])
    flat = expect.reshape(-1).tolist()
    oracle.assert_batch_equal(c.frames.reshape(-1, 360, 640, 3), oracle.stack(cfr, flat), flat, "regular clips")


def test_end_policies(cfr):
    r = vidlake.VideoReader(cfr)
    kw = {"num_clips": 1, "num_frames_per_clip": 4, "num_indices_between_frames": 2,
          "sampling_range_start": 395, "sampling_range_end": 396}
    # the clip would be 395, 397, 399, 401: 401 is past the end
    assert samplers.clips_at_regular_indices(r, **kw).indices.tolist() == [[395, 397, 399, 399]]
    assert samplers.clips_at_regular_indices(r, policy="wrap", **kw).indices.tolist() == [[395, 397, 399, 395]]
    with pytest.raises(ValueError, match="past the end"):
        samplers.clips_at_regular_indices(r, policy="error", **kw)
    with pytest.raises(ValueError, match="policy must be one of"):
        samplers.clips_at_regular_indices(r, policy="loop", **kw)
    # a start past the last one whose clip fits, with the default end, is refused
    with pytest.raises(ValueError, match="sampling_range_start"):
        samplers.clips_at_regular_indices(r, num_frames_per_clip=8, sampling_range_start=395)
    # negative range values count from the end
    c = samplers.clips_at_regular_indices(r, num_clips=2, num_frames_per_clip=2, sampling_range_start=-10,
                                          sampling_range_end=-1)
    assert c.indices.tolist() == [[390, 391], [398, 399]]


def test_random_indices_seeded_in_range_and_gop_decoded_once(cfr):
    r = vidlake.VideoReader(cfr)
    r.reset_stats()
    a = samplers.clips_at_random_indices(r, num_clips=8, num_frames_per_clip=16, seed=123)
    packets = r.stats["packets_decoded"]
    b = samplers.clips_at_random_indices(r, num_clips=8, num_frames_per_clip=16, seed=123)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.frames, b.frames)
    starts = a.indices[:, 0]
    assert ((starts >= 0) & (starts < 400 - 16 + 1)).all()
    np.testing.assert_array_equal(a.indices, starts[:, None] + np.arange(16))
    # 8 clips of 16 frames over 2 GOPs: decoding clip by clip would decode ~8 x 100 packets;
    # one call decodes each needed GOP prefix once: at most the 400 packets of the file
    assert packets <= 400, f"decoded {packets} packets for 8 clips"
    c = samplers.clips_at_random_indices(r, num_clips=8, num_frames_per_clip=16, seed=124)
    assert not np.array_equal(a.indices, c.indices)
    flat = a.indices[:3].reshape(-1).tolist()
    oracle.assert_batch_equal(a.frames[:3].reshape(-1, 360, 640, 3), oracle.stack(cfr, flat), flat, "random clips")


def test_time_samplers_on_vfr_hand_computed(vfr):
    r = vidlake.VideoReader(vfr)
    # regular: starts every 1.5 s from 0 with 3 frames 0.05 s apart; starts must lie before
    # end - 2 * 0.05 = 4.4167 (so every sampling time is before the end): 0, 1.5, 3.0
    c = samplers.clips_at_regular_timestamps(r, seconds_between_clip_starts=1.5, num_frames_per_clip=3,
                                             seconds_between_frames=0.05)
    # times: [0, .05, .1] -> 0, 1, 3; [1.5, 1.55, 1.6] -> 35, 35, 36; [3.0, 3.05, 3.1] -> 50, 50, 51
    assert c.indices.tolist() == [[0, 1, 3], [35, 35, 36], [50, 50, 51]]
    np.testing.assert_array_equal(c.timestamps, VFR_TIMES[c.indices])
    flat = c.indices.reshape(-1).tolist()
    oracle.assert_batch_equal(c.frames.reshape(-1, 240, 320, 3), oracle.stack(vfr, flat), flat, "time clips")
    # default spacing is one average frame period (90 frames over the stream's duration)
    avg = 1 / r.metadata["average_fps"]
    d = samplers.clips_at_regular_timestamps(r, seconds_between_clip_starts=4.0, num_frames_per_clip=2)
    assert d.indices.tolist() == [[0, r.indices_played_at(avg)[0]], [60, r.indices_played_at(4.0 + avg)[0]]]
    # random: seeded, each clip's frames are those shown at start + k * spacing
    e = samplers.clips_at_random_timestamps(r, num_clips=5, num_frames_per_clip=4, seconds_between_frames=0.1,
                                            seed=5)
    f = samplers.clips_at_random_timestamps(r, num_clips=5, num_frames_per_clip=4, seconds_between_frames=0.1,
                                            seed=5)
    np.testing.assert_array_equal(e.indices, f.indices)
    assert (np.diff(e.indices, axis=1) >= 0).all()
    # end policies in time: sampling range forced past the end
    g = samplers.clips_at_regular_timestamps(r, seconds_between_clip_starts=1.0, num_frames_per_clip=4,
                                             seconds_between_frames=0.01, sampling_range_start=4.48,
                                             sampling_range_end=4.49)
    # 4.48, 4.49, 4.50 are shown (frame 88 until 4.4833, then 89); 4.51 -> 89; 4.52 >= end 4.5167
    assert g.indices.tolist() == [[88, 89, 89, 89]]
    h = samplers.clips_at_regular_timestamps(r, seconds_between_clip_starts=1.0, num_frames_per_clip=4,
                                             seconds_between_frames=0.02, sampling_range_start=4.48,
                                             sampling_range_end=4.49, policy="wrap")
    assert h.indices.tolist() == [[88, 89, 88, 89]]   # 4.48, 4.50 valid; 4.52, 4.54 wrap


def test_samplers_take_video_samples(tmp_path, cfr):
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(vidlake.read(cfr))
    c = samplers.clips_at_regular_indices(ds.videos[0], num_clips=2, num_frames_per_clip=3, size=(36, 64))
    assert c.frames.shape == (2, 3, 36, 64, 3)
    np.testing.assert_array_equal(c.frames[1], vidlake.VideoReader(cfr).get_frames([397, 398, 399], size=(36, 64)))
    with pytest.raises(ValueError, match="whole video sample"):
        samplers.clips_at_random_indices(ds.videos[0, 0:10])
    with pytest.raises(TypeError, match="VideoReader or a video sample"):
        samplers.clips_at_random_indices(np.zeros(3))
