"""The Deep Lake video walkthrough end to end, the dataset API, read-only and bad inputs."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import numpy as np
import oracle
import pytest
from helpers import snapshot, video

import vidlake
from vidlake.api import dataset, empty, load, read

SEED_KEYS = {"duration", "fps", "timebase", "shape", "format", "filename", "modified"}




@pytest.fixture(params=["local", "memory"])
def ds_path(request, tmp_path):
    if request.param == "memory":
        return f"mem://ds-{uuid.uuid4().hex}"
    return str(tmp_path / "video_ds")


def test_public_names_exported():
    """The owner of vidlake/__init__.py re-exports these (see the hand-off diff)."""
    for name in ("empty", "load", "dataset", "read"):
        assert getattr(vidlake, name) is getattr(vidlake.api, name)


# -- the seed walkthrough ------------------------------------------------------------------------
WALK = ["samplemp4.mp4", "bikes.mp4", "interlaced_crop.mp4", "carphone_distorted.mp4"]


def test_seed_walkthrough(ds_path):
    ds = empty(ds_path, overwrite=True)
    with ds:
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        for name in WALK:
            ds.videos.append(read(video(name)))
    assert len(ds) == len(ds.videos) == len(WALK)
    assert list(ds.tensors) == ["videos"]

    ds = load(ds_path)
    v = ds.videos
    first = video(WALK[0])
    # shape and sample_info exactly as in the seed example
    assert v[0].shape == (400, 360, 640, 3)
    info = v[0].sample_info
    assert set(info) == SEED_KEYS
    assert info["duration"] == 400400
    assert info["shape"] == [400, 360, 640, 3]
    assert info["fps"] == pytest.approx(29.97, abs=1e-2)
    assert info["timebase"] == pytest.approx(1 / 30000)
    assert info["format"] == "mp4"
    assert info["filename"] == first
    assert info["modified"] is False
    assert v.shape == (4, None, None, None, 3)

    for i, name in enumerate(WALK):
        path = video(name)
        n = oracle.info(path).num_frames
        assert v[i].shape[0] == n
        times = oracle.info(path).times.astype(np.float32)
        # whole video, first/last, slices, strides, negative and list indexing
        cases = {
            "all": (slice(None), list(range(n))),
            "a:b": (slice(3, 19), list(range(3, 19))),
            "a:b:s": (slice(1, n, 7), list(range(1, n, 7))),
            "list": ([3, 17, 5], [3, 17, 5]),
            "neg list": ([-1, 0, -2], [n - 1, 0, n - 2]),
        }
        for what, (sel, want) in cases.items():
            got = v[i, sel].numpy()
            oracle.assert_batch_equal(got, oracle.stack(path, want), want, f"{name} [{what}]")
            np.testing.assert_array_equal(v[i, sel].timestamp, times[want])
            assert v[i, sel].timestamp.dtype == np.float32
            assert v[i, sel].shape == got.shape
        last = v[i, -1].numpy()
        oracle.assert_frames_equal(last, oracle.frame(path, n - 1), f"{name} [-1]")
        assert v[i, -1].shape == last.shape

    # .numpy(out=...) decodes into the caller's buffer
    buf = np.zeros((8, 360, 640, 3), np.uint8)
    res = v[0, 10:18].numpy(out=buf)
    assert res is buf
    oracle.assert_batch_equal(buf, oracle.stack(first, range(10, 18)), list(range(10, 18)), "out=")
    one = np.zeros((360, 640, 3), np.uint8)
    assert v[0, 5].numpy(out=one) is one
    oracle.assert_frames_equal(one, oracle.frame(first, 5), "out= single frame")
    with pytest.raises(ValueError, match="shape"):
        v[0, 10:18].numpy(out=np.zeros((7, 360, 640, 3), np.uint8))

    # .data() and aslist
    d = v[1, 0:4].data()
    assert set(d) == {"frames", "timestamps"}
    oracle.assert_batch_equal(d["frames"], oracle.stack(video(WALK[1]), range(4)), list(range(4)), "data()")
    np.testing.assert_array_equal(d["timestamps"], oracle.info(video(WALK[1])).times[:4].astype(np.float32))
    lst = v[0:3, 0:2].numpy(aslist=True)
    assert [a.shape for a in lst] == [(2, 360, 640, 3), (2, 272, 640, 3), (2, 360, 640, 3)]
    full = v[0:3].numpy(aslist=True)
    assert [len(a) for a in full] == [400, 250, oracle.info(video(WALK[2])).num_frames]
    with pytest.raises(vidlake.DatasetError, match="aslist=True"):
        v[0:3].numpy()


def test_seed_walkthrough_other_containers(tmp_path):
    """Same reads through tensors of other compressions (mov, mkv, webm, avi, mpeg, ts, ivf)."""
    cases = [("mov", "bulk-water.mov"), ("mkv", "flipping_a_pancake.mkv"), ("webm", "vp90-2-2pass-akiyo.webm"),
             ("avi", "packed_bframes.avi"), ("mpeg", "matrixbench_mpeg2.lq1.mpg"), ("ts", "h264small.ts"),
             ("ivf", "frames_refs_short_signaling.ivf"), ("mp4", "h265_video.mp4")]
    ds = empty(str(tmp_path / "ds"))
    with ds:
        for comp, name in cases:
            ds.create_tensor(f"v_{comp}", htype="video", sample_compression=comp)
            ds[f"v_{comp}"].append(read(video(name)))
    ds = load(str(tmp_path / "ds"), read_only=True)
    for comp, name in cases:
        path = video(name)
        t = ds[f"v_{comp}"]
        n = oracle.info(path).num_frames
        assert t[0].shape[0] == n
        assert t[0].sample_info["format"] == comp
        want = sorted({0, n // 3, n - 1})
        oracle.assert_batch_equal(t[0, want].numpy(), oracle.stack(path, want), want, name)


# -- API surface -----------------------------------------------------------------------------------
def test_create_tensor_validation(ds_path):
    ds = empty(ds_path)
    with pytest.raises(ValueError, match="accepted: mp4, m4v, mov, mkv, webm, avi, mpeg, mpg, ts, ivf, hevc, h264"):
        ds.create_tensor("videos", htype="video", sample_compression="gif")
    with pytest.raises(ValueError, match="accepted"):
        ds.create_tensor("videos", htype="video")
    with pytest.raises(ValueError, match="htype 'nope' is not supported"):
        ds.create_tensor("x", htype="nope")
    with pytest.raises(vidlake.DatasetError, match="invalid tensor name"):
        ds.create_tensor("a/b", htype="generic")
    t = ds.create_tensor("videos", htype="video", sample_compression="MP4")
    assert t.sample_compression == "mp4"
    assert t.htype == "video"
    with pytest.raises(vidlake.DatasetError, match="already exists"):
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
    assert ds.create_tensor("videos", htype="video", sample_compression="mp4", exist_ok=True) is t
    with pytest.raises(vidlake.DatasetError, match="clashes"):
        ds.create_tensor("append", htype="generic")
    assert len(ds) == 0
    assert ds.videos.shape == (0, None, None, None, 3)


def test_empty_load_dataset_semantics(tmp_path):
    p = str(tmp_path / "ds")
    with pytest.raises(vidlake.DatasetError, match="no vidlake dataset"):
        load(p)
    ds = dataset(p)                                  # creates
    ds.create_tensor("labels", htype="class_label")
    ds.labels.append(3)
    assert len(dataset(p)) == 1                      # loads
    with pytest.raises(vidlake.DatasetError, match="already exists"):
        empty(p)
    assert len(empty(p, overwrite=True).tensors) == 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(vidlake.DatasetError, match="not empty and is not a vidlake dataset"):
        empty(str(tmp_path / "other"), overwrite=True)
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"


def test_multi_tensor_rows_and_views(ds_path):
    ds = empty(ds_path)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
    ds.create_tensor("captions", htype="text")
    ds.create_tensor("meta", htype="json")
    ds.create_tensor("boxes", htype="generic", dtype="float32")
    ds.append({"videos": read(video("stub_h264.mp4")), "labels": "dog", "captions": "a stub",
               "meta": {"k": [1, 2]}, "boxes": np.ones((2, 4))})
    ds.extend({"videos": [video("carphone_distorted.mp4"), Path(video("amve.mp4")).read_bytes()],
               "labels": [0, 1], "captions": ["x", "y"], "meta": [None, 5], "boxes": [np.zeros((1, 4))] * 2})
    assert len(ds) == 3
    ds = load(ds_path)
    assert ds.labels[0].numpy().tolist() == [1]
    assert ds.labels[0].data()["text"] == ["dog"]
    assert ds.captions[0].text() == "a stub"
    assert ds.meta[0].dict() == {"k": [1, 2]}
    assert ds.boxes[0].numpy().dtype == np.float32
    assert ds.boxes.shape == (3, None, 4)
    assert ds[1].videos.shape == (120, 144, 176, 3)
    assert ds[1].videos.sample_info["filename"] == video("carphone_distorted.mp4")
    assert ds[2].videos.sample_info["filename"] is None          # appended as bytes
    assert ds[0:2].labels.numpy().tolist() == [[1], [0]]
    with pytest.raises(vidlake.SampleAppendError, match="no sample for tensor"):
        ds.append({"videos": video("stub_h264.mp4")})
    with pytest.raises(vidlake.SampleAppendError, match="no tensor"):
        ds.append({"nope": 1, "videos": video("stub_h264.mp4")})
    with pytest.raises(vidlake.HtypeError, match="class_names"):
        ds.labels.append("bird")
    with pytest.raises(IndexError):
        ds.videos[3]
    with pytest.raises(IndexError, match="frame 5 out of range"):
        ds.videos[0, 5]
    assert len(ds) == 3
    assert len(ds.labels) == 3
    txt = ds._summary_text()
    for word in ("videos", "video", "mp4", "labels", "class_label"):
        assert word in txt


def test_summary_prints(capsys, tmp_path):
    ds = empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(read(video("stub_h264.mp4")))
    ds.summary()
    out = capsys.readouterr().out
    assert "videos" in out
    assert "(1, 5, 120, 160, 3)" in out


def test_with_block_batches_and_reads_pending(tmp_path):
    p = str(tmp_path / "ds")
    ds = empty(p)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    gen = ds._meta["generation"]
    with ds:
        ds.videos.append(read(video("stub_h264.mp4")))
        ds.videos.append(read(video("carphone_distorted.mp4")))
        assert len(load(p).videos) == 0                  # not committed yet
        assert ds._meta["generation"] == gen
        oracle.assert_frames_equal(ds.videos[1, 7].numpy(), oracle.frame(video("carphone_distorted.mp4"), 7),
                                   "pending sample")
    assert ds._meta["generation"] == gen + 1             # one commit for the block
    assert len(load(p).videos) == 2
    oracle.assert_frames_equal(load(p).videos[1, 7].numpy(),
                               oracle.frame(video("carphone_distorted.mp4"), 7), "committed sample")


def test_numpy_frames_refused_clearly(tmp_path):
    # numpy frames are encoded since issue 17 (tests/test_encode.py); frames that cannot be are
    # refused clearly and leave the dataset as it was
    ds = empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    before = snapshot(tmp_path / "ds")
    with pytest.raises(vidlake.SampleAppendError, match=r"frames must be uint8 RGB, got dtype float32"):
        ds.videos.append(np.zeros((4, 32, 32, 3), np.float32))
    with pytest.raises(vidlake.HtypeError, match="video tensor takes"):
        ds.videos.append(12)
    assert snapshot(tmp_path / "ds") == before
    assert len(ds.videos) == 0


# -- read-only ---------------------------------------------------------------------------------
def test_read_only_refuses_writes(tmp_path):
    p = str(tmp_path / "ds")
    ds = empty(p)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(read(video("stub_h264.mp4")))
    before = snapshot(tmp_path / "ds")
    ro = load(p, read_only=True)
    assert ro.read_only
    for write in (lambda: ro.videos.append(read(video("stub_h264.mp4"))),
                  lambda: ro.append({"videos": video("stub_h264.mp4")}),
                  lambda: ro.videos.extend([video("stub_h264.mp4")]),
                  lambda: ro.create_tensor("x", htype="generic"),
                  lambda: ro.delete()):
        with pytest.raises(vidlake.ReadOnlyError, match="read-only"):
            write()
    with ro:
        pass                                              # entering/leaving is fine
    ro.flush()
    assert ro.videos[0].shape == (5, 120, 160, 3)
    assert snapshot(tmp_path / "ds") == before
    assert isinstance(vidlake.ReadOnlyError("x"), vidlake.DatasetError)


# -- bad inputs: clear error, dataset unchanged ---------------------------------------------------
def _bad_inputs(tmp_path: Path) -> dict:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video, just text named .mp4\n" * 20)
    trunc = tmp_path / "truncated.mp4"
    trunc.write_bytes(Path(video("sample_mp4.mp4")).read_bytes()[:3000])   # faststart: moov, no frames
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    return {
        "text named .mp4": (str(text), vidlake.SampleAppendError, "not a readable video|no decodable frames"),
        "truncated mp4": (str(trunc), vidlake.SampleAppendError, "not a readable video|no decodable frames"),
        "zero bytes": (str(zero), vidlake.SampleAppendError, "empty"),
        "wrong compression": (video("flipping_a_pancake.mkv"), vidlake.SampleAppendError,
                              "is mkv .*sample_compression is 'mp4'"),
        "missing file": (str(tmp_path / "nope.mp4"), vidlake.SampleAppendError, "cannot read video file"),
    }


@pytest.mark.parametrize("case", ["text named .mp4", "truncated mp4", "zero bytes", "wrong compression",
                                  "missing file"])
def test_bad_input_leaves_dataset_unchanged(tmp_path, case):
    p = tmp_path / "ds"
    ds = empty(str(p))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(read(video("stub_h264.mp4")))
    before = snapshot(p)
    path, exc, msg = _bad_inputs(tmp_path)[case]
    for attempt in (lambda: ds.videos.append(read(path)),
                    lambda: ds.videos.extend([video("carphone_distorted.mp4"), read(path)]),
                    lambda: ds.append({"videos": read(path)})):
        with pytest.raises(exc, match=msg):
            attempt()
        assert snapshot(p) == before
        assert len(ds.videos) == 1
    # the exception leaves the `with ds:` block on purpose: the block still commits its first append
    with pytest.raises(exc, match=msg), ds:  # noqa: PT012
        ds.videos.append(read(video("carphone_distorted.mp4")))
        ds.videos.append(read(path))                  # fails; the earlier append still commits
    assert len(ds.videos) == 2
    ds2 = load(str(p))
    assert len(ds2.videos) == 2
    assert ds2.videos[1].shape == (120, 144, 176, 3)
    ds2.videos.append(read(video("amve.mp4")))            # the dataset keeps working
    assert len(load(str(p)).videos) == 3


def test_extend_indexes_in_parallel_keeps_order_and_first_error(tmp_path):
    """extend() builds the packet indexes on a thread pool: samples land in the order given,
    and with several bad files the error is the first bad row's, the dataset unchanged."""
    p = tmp_path / "ds"
    ds = empty(str(p))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    good = [video(n) for n in ("stub_h264.mp4", "carphone_distorted.mp4", "samplemp4.mp4", "bikes.mp4",
                               "amve.mp4", "realshort.mp4")]
    ds.videos.extend([read(g) for g in good])
    assert [i["filename"] for i in ds.videos.sample_info] == good
    for i, g in enumerate(good):
        want = oracle.info(g)
        assert ds.videos[i].shape[0] == want.num_frames, g
    oracle.assert_frames_equal(ds.videos[2, 300].numpy(), oracle.frame(good[2], 300), "samplemp4 frame 300")
    before = snapshot(p)
    bad = _bad_inputs(tmp_path)
    rows = [good[0], bad["truncated mp4"][0], good[1], bad["text named .mp4"][0]]
    with pytest.raises(vidlake.SampleAppendError, match="trunc"):
        ds.videos.extend(rows)
    assert snapshot(p) == before
    assert len(ds.videos) == len(good)


def test_mov_family_accepted_and_recorded(tmp_path):
    """A QuickTime .mov in an mp4 tensor: same container family, accepted; sample_info says mov."""
    ds = empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(read(video("video_0.mov")))
    assert ds.videos[0].sample_info["format"] == "mov"
    ds.create_tensor("webm", htype="video", sample_compression="webm")
    with pytest.raises(vidlake.SampleAppendError, match="is mp4"):
        ds.webm.append(read(video("stub_h264.mp4")))


def test_copied_dataset_is_self_contained(tmp_path):
    p = tmp_path / "ds"
    ds = empty(str(p))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(read(video("stub_h264.mp4")))
    shutil.copytree(p, tmp_path / "copy")
    c = load(str(tmp_path / "copy"))
    oracle.assert_frames_equal(c.videos[0, 2].numpy(), oracle.frame(video("stub_h264.mp4"), 2), "copy")


def test_sample_read_is_lazy(tmp_path):
    s = read(video("bikes.mp4"))
    assert s._buffer is None                               # nothing read yet
    assert s.shape == (250, 272, 640, 3)
    assert s.compression == "mp4"
    assert read(tmp_path / "nothing.mp4").path.endswith("nothing.mp4")   # no I/O until used


def test_with_block_commits_early_past_flush_threshold(tmp_path):
    p = str(tmp_path / "ds")
    ds = empty(p)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.flush_threshold = 1                                # any staged byte triggers a commit
    with ds:
        ds.videos.append(read(video("stub_h264.mp4")))
        assert len(load(p).videos) == 1
        ds.videos.extend([video("amve.mp4"), video("carphone_distorted.mp4")])
        assert len(load(p).videos) == 3


def test_shape_and_sample_info_are_metadata_only(tmp_path):
    """shape and sample_info come from the loaded table: no storage read, no decoder (their
    speed, < 1 ms, is measured in bench/). The tensor's shape needs not even the table (the
    commit record's segment summaries, format 1.2); a sample's needs its table segment, read
    once (tests/test_lazy_tables.py)."""
    p = str(tmp_path / "ds")
    ds = empty(p)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.extend([video("stub_h264.mp4"), video("bikes.mp4")])
    d = load(p, read_only=True)
    provider = d.videos.store.provider
    names = ("get", "get_bytes", "get_ranges", "size", "exists", "list")
    real = {name: getattr(provider, name) for name in names}

    def no_io(*_a, **_k):
        raise AssertionError("shape/sample_info touched storage")

    for name in names:
        setattr(provider, name, no_io)
    summary_shape = d.videos.shape
    for name in names:  # the table segment is read once, when a sample is first touched
        setattr(provider, name, real[name])
    d.load_tables()
    for name in names:
        setattr(provider, name, no_io)
    assert d.videos[1].shape == (250, 272, 640, 3)
    assert d.videos[1].sample_info["shape"] == [250, 272, 640, 3]
    assert d.videos.shape[0] == 2
    assert d.videos.shape[1:] == tuple(
        a if a == b else None for a, b in zip(d.videos[0].shape, d.videos[1].shape))
    assert d.videos.shape == summary_shape
    assert [i["filename"] for i in d.videos.sample_info] == [video("stub_h264.mp4"), video("bikes.mp4")]
    assert len(d.videos._readers) == 0, "a decoder was opened"


def test_sequential_batches_decode_on_without_seeking(ds_path):
    """Reading a video in consecutive batches (a feature extractor's loop) continues the
    decoder from batch to batch on local and in-memory datasets: one seek per GOP."""
    ds = empty(ds_path)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    path = video("samplemp4.mp4")                 # 400 frames, keyframes at 0 and 250
    ds.videos.append(read(path))
    n = ds.videos[0].shape[0]
    buf = np.empty((32, *ds.videos[0].shape[1:]), np.uint8)
    for a in range(0, n, 32):
        b = min(n, a + 32)
        ds.videos[0, a:b].numpy(out=buf[:b - a])
        if a in (0, 224, 256, 384):
            oracle.assert_batch_equal(buf[:b - a], oracle.stack(path, range(a, b)), list(range(a, b)),
                                      f"batch {a}:{b}")
    stats = ds.videos.reader(0).stats
    assert stats["frames_converted"] == n, stats
    assert stats["seeks"] <= 2, f"consecutive batches restarted at the keyframe: {stats}"
    assert stats["packets_decoded"] <= n + 16, stats


def test_only_the_two_most_recent_readers_keep_several_parked_decoders(ds_path):
    """Memory bound (docs/DESIGN.md, "Parked decoders"): a tensor's cached readers other than
    the two most recently read close their parked decoder states down to one; frames stay exact."""
    ds = empty(ds_path)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    path = video("samplemp4.mp4")
    ds.videos.extend([read(path)] * 3)
    for t in (200, 20, 100):                              # three parked states in sample 0
        oracle.assert_frames_equal(ds.videos[0, t].numpy(), oracle.frame(path, t), f"[0, {t}]")
    readers = ds.videos._readers
    assert readers[0].stats["decoders"] >= 2
    for i, t in ((1, 210), (1, 30), (2, 220), (2, 40)):  # a jump back opens a second state
        oracle.assert_frames_equal(ds.videos[i, t].numpy(), oracle.frame(path, t), f"[{i}, {t}]")
    assert readers[0].stats["decoders"] == 1, "the least recent reader kept all its parked decoders"
    assert readers[1].stats["decoders"] >= 2
    assert readers[2].stats["decoders"] >= 2
    oracle.assert_frames_equal(ds.videos[0, 110].numpy(), oracle.frame(path, 110), "[0, 110] after trim")
    assert readers[1].stats["decoders"] == 1
    assert readers[2].stats["decoders"] >= 2


def test_dataset_pickles_for_worker_processes(tmp_path):
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    p = str(tmp_path / "ds")
    ds = empty(p)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.extend([video("stub_h264.mp4"), video("carphone_distorted.mp4")])
    ds.videos[1, 3].numpy()                               # a cached reader must not break pickling
    clone = pickle.loads(pickle.dumps(load(p, read_only=True)))
    assert clone.read_only
    assert len(clone.videos) == 2
    oracle.assert_frames_equal(clone.videos[1, 3].numpy(), oracle.frame(video("carphone_distorted.mp4"), 3),
                               "unpickled")
    # threads sharing one dataset
    want = oracle.stack(video("carphone_distorted.mp4"), range(0, 120, 7))
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda k: clone.videos[1, 0:120:7].numpy(), range(8)))
    for o in outs:
        np.testing.assert_array_equal(o, want)


def test_chained_frame_indexing(tmp_path):
    ds = empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(read(video("carphone_distorted.mp4")))
    path = video("carphone_distorted.mp4")
    assert ds.videos[0][10:20].shape == (10, 144, 176, 3)
    oracle.assert_frames_equal(ds.videos[0][10:40:3][2].numpy(), oracle.frame(path, 16), "chained")
    np.testing.assert_array_equal(ds.videos[0][10:40][[0, -1]].timestamp,
                                  oracle.info(path).times[[10, 39]].astype(np.float32))
    assert ds[0].videos[5].shape == (144, 176, 3)
