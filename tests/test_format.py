"""Storage providers, chunk placement, the on-disk format and its version checks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import assets
import numpy as np
import oracle
import pytest

import vidlake
from vidlake.api import empty, load, read
from vidlake.format import records as fmt
from vidlake.format.chunks import ChunkRangeSource, ChunkStore, place
from vidlake.storage import LocalProvider, MemoryProvider, get_provider, split_url, url_scheme
from vidlake.storage.provider import FileRange, materialize

REPO = Path(__file__).resolve().parent.parent


def video(name: str) -> str:
    p = assets.VIDEO_DIR / name
    if not p.exists():
        pytest.fail(f"shared test video missing: {p}")
    return str(p)


# -- providers: one body for every backend ----------------------------------------------------
@pytest.fixture(params=["memory", "local"])
def provider(request, tmp_path):
    if request.param == "memory":
        return MemoryProvider(f"mem://test-{uuid.uuid4().hex}")
    return LocalProvider(str(tmp_path / "store"))


def test_provider_contract(provider):
    p = provider
    with pytest.raises(KeyError):
        p.get("missing")
    assert not p.exists("a/b.bin")
    p.put("a/b.bin", b"0123456789")
    p.put("a/c/d.json", b"{}")
    p.put("top", b"x")
    assert p.get("a/b.bin") == b"0123456789"
    assert p.get_bytes("a/b.bin", 2, 5) == b"234"
    assert p.get_bytes("a/b.bin", 8) == b"89"
    assert p.get_ranges("a/b.bin", [(0, 1), (9, 10)]) == [b"0", b"9"]
    assert p.size("a/b.bin") == 10
    assert p.exists("a/b.bin")
    assert p.list() == ["a/b.bin", "a/c/d.json", "top"]
    assert p.list("a/") == ["a/b.bin", "a/c/d.json"]
    p.put("a/b.bin", b"new")                       # replace
    assert p.get("a/b.bin") == b"new"
    p.append("a/b.bin", b"XYZ", 3)                 # append at the end
    assert p.get("a/b.bin") == b"newXYZ"
    p.append("a/b.bin", b"!", 4)                   # drops the tail after offset first
    assert p.get("a/b.bin") == b"newX!"
    p.append("fresh", b"abc", 0)                   # creates
    assert p.get("fresh") == b"abc"
    p.delete("a/b.bin")
    p.delete("a/b.bin")                            # no error
    assert not p.exists("a/b.bin")
    p.clear()
    assert p.list() == []


def test_provider_read_only(provider):
    provider.put("k", b"v")
    ro = type(provider)(provider.root, read_only=True)
    assert ro.get("k") == b"v"
    for write in (lambda: ro.put("k", b"w"), lambda: ro.delete("k"), lambda: ro.append("k", b"w", 1)):
        with pytest.raises(vidlake.ReadOnlyError):
            write()
    assert provider.get("k") == b"v"


def test_provider_bad_keys(provider):
    for key in ("", "/abs", "../up", "a/../../b"):
        with pytest.raises(vidlake.StorageError):
            provider.put(key, b"x")


def test_local_put_is_atomic_and_ignores_temp_files(tmp_path):
    p = LocalProvider(str(tmp_path))
    p.put("meta.json", b"old")
    (tmp_path / "meta.json.tmp-123-abcd").write_bytes(b"half-written")   # a killed writer's leftover
    assert p.list() == ["meta.json"]
    assert p.get("meta.json") == b"old"


def test_get_provider_dispatch(tmp_path):
    assert isinstance(get_provider(str(tmp_path)), LocalProvider)
    assert isinstance(get_provider(f"file://{tmp_path}"), LocalProvider)
    assert isinstance(get_provider("mem://x"), MemoryProvider)
    with pytest.raises(vidlake.StorageError, match="no storage provider for nosuch://"):
        get_provider("nosuch://bucket/ds")
    assert url_scheme("s3://b/x") == "s3"
    assert url_scheme("./x") == ""
    assert split_url("s3://b/d/x.mp4") == ("s3://b/d", "x.mp4")


def test_memory_provider_shared_by_name():
    name = f"mem://shared-{uuid.uuid4().hex}"
    MemoryProvider(name).put("k", b"v")
    assert MemoryProvider(name).get("k") == b"v"


# -- chunk placement and the range source ------------------------------------------------------
def _ids():
    n = iter(range(100))
    return lambda: f"c{next(n)}"


def test_place_packs_small_samples():
    new = _ids()
    assert place(None, 10, 100, 200, new) == [("c0", 0, 10)]
    assert place(("c0", 10), 50, 100, 200, new) == [("c0", 10, 50)]
    # open chunk past target: new chunk
    assert place(("c0", 120), 5, 100, 200, new) == [("c1", 0, 5)]
    # would exceed max: new chunk
    assert place(("c1", 90), 150, 100, 200, new) == [("c2", 0, 150)]


def test_place_splits_large_samples():
    new = _ids()
    ext = place(("c9", 10), 450, 100, 200, new)
    assert ext == [("c0", 0, 200), ("c1", 0, 200), ("c2", 0, 50)]
    assert sum(e[2] for e in ext) == 450


def test_chunk_range_source_maps_ranges_to_chunks():
    p = MemoryProvider(f"mem://crs-{uuid.uuid4().hex}")
    p.put(fmt.chunk_key("t", "a"), b"xxABCDE")
    p.put(fmt.chunk_key("t", "b"), b"FGHIJ")
    store = ChunkStore(p, "t")
    src = ChunkRangeSource(store, [("a", 2, 5), ("b", 0, 5)], name="t[0]")
    assert src.size == 10
    assert src.fetch([(0, 10)]) == [b"ABCDEFGHIJ"]
    assert src.fetch([(3, 7), (9, 10), (5, 5)]) == [b"DEFG", b"J", b""]
    with pytest.raises(vidlake.StorageError):
        src.fetch([(5, 11)])


def test_chunk_store_pending_reads_and_rollback(tmp_path):
    p = MemoryProvider(f"mem://cs-{uuid.uuid4().hex}")
    p.put(fmt.chunk_key("t", "a"), b"0123")
    src = tmp_path / "src.bin"
    src.write_bytes(b"abcdefgh")
    store = ChunkStore(p, "t")
    store.write(("a", 4, 3), memoryview(b"456"))
    store.write(("a", 7, 3), FileRange.of_file(str(src)).slice(2, 5))      # "cde", read lazily
    assert store.read("a", 2, 9) == b"23456cd"
    sp = store.savepoint()
    store.write(("a", 10, 2), b"78")
    store.write(("n", 0, 2), b"zz")
    assert store.pending_bytes() == 10
    store.truncate(sp)
    assert [(c, o, b"".join(materialize(x) for x in parts)) for c, o, parts in store.pending()] == \
        [("a", 4, b"456cde")]
    with pytest.raises(vidlake.StorageError):
        store.write(("a", 11, 1), b"x")                 # not at the chunk's end
    p.write_parts(fmt.chunk_key("t", "a"), store.pending()[0][2], 4)
    assert p.get(fmt.chunk_key("t", "a")) == b"0123456cde"


def test_local_provider_copies_file_ranges_and_refuses_changed_files(tmp_path):
    lp = LocalProvider(str(tmp_path / "store"))
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 100)
    fr = FileRange.of_file(str(src))
    lp.write_parts("c", [b"head", fr.slice(10, 20), fr.slice(25_000, 25_600)], 0)
    want = b"head" + src.read_bytes()[10:20] + src.read_bytes()[25_000:25_600]
    assert lp.get("c") == want
    lp.write_parts("c", [fr.slice(0, 3)], 4)                # append mode: drops the tail first
    assert lp.get("c") == b"head" + src.read_bytes()[:3]
    src.write_bytes(b"changed")
    with pytest.raises(vidlake.StorageError, match="changed while it was being appended"):
        lp.write_parts("d", [fr], 0)
    assert not lp.exists("d")
    assert lp.list() == ["c"]


# -- metadata and versions -----------------------------------------------------------------------
def test_meta_json_roundtrip_and_version_refusal(tmp_path):
    ds = empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    raw = json.loads((tmp_path / "ds" / "dataset_meta.json").read_text())
    assert raw["format"] == "vidlake"
    assert raw["format_version"] == fmt.FORMAT_VERSION
    assert raw["tensors"] == ["videos"]
    tmeta = json.loads((tmp_path / "ds" / "videos" / "tensor_meta.json").read_text())
    assert tmeta["max_chunk_size"] == 16 * 1024 * 1024
    assert tmeta["sample_compression"] == "mp4"

    # a newer minor loads; a newer major is refused with a clear message
    raw["format_version"] = "1.7"
    (tmp_path / "ds" / "dataset_meta.json").write_text(json.dumps(raw))
    assert load(str(tmp_path / "ds")).tensors.keys() == {"videos"}
    raw["format_version"] = "3.0"
    (tmp_path / "ds" / "dataset_meta.json").write_text(json.dumps(raw))
    with pytest.raises(vidlake.DatasetError, match=r"format version 3\.0.*reads formats up to 2\.x.*Upgrade"):
        load(str(tmp_path / "ds"))


def test_newer_tensor_meta_major_refused(tmp_path):
    ds = empty(str(tmp_path / "ds"))
    ds.create_tensor("labels", htype="class_label")
    path = tmp_path / "ds" / "labels" / "tensor_meta.json"
    m = json.loads(path.read_text())
    m["format_version"] = "3.1"
    path.write_text(json.dumps(m))
    with pytest.raises(vidlake.DatasetError, match=r"3.1"):
        load(str(tmp_path / "ds"))


def test_damaged_meta_is_a_clear_error(tmp_path):
    empty(str(tmp_path / "ds"))
    (tmp_path / "ds" / "dataset_meta.json").write_bytes(b"{not json")
    with pytest.raises(vidlake.DatasetError, match="damaged"):
        load(str(tmp_path / "ds"))
    with pytest.raises(vidlake.DatasetError, match="no vidlake dataset"):
        load(str(tmp_path / "nothing"))


def test_large_video_split_across_chunks_reads_exact(tmp_path):
    """A video bigger than max_chunk_size spans several chunks; reads stay exact."""
    path = video("sample_mp4.mp4")                      # 1.5 MB, faststart, 901 frames
    ds = empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4",
                     max_chunk_size=256 * 1024, target_chunk_size=128 * 1024)
    ds.videos.append(read(video("stub_h264.mp4")))      # small one first: shares a chunk
    ds.videos.append(read(path))
    e = ds.videos.entry(1)
    assert len(e["data"]) >= 6
    assert all(n <= 256 * 1024 for _c, _o, n in e["data"])
    assert sum(n for _c, _o, n in e["data"]) == os.path.getsize(path)
    ds = load(str(tmp_path / "ds"), read_only=True)
    for idx in ([0, 450, 900], [899, 3]):
        got = ds.videos[1, idx].numpy()
        oracle.assert_batch_equal(got, oracle.stack(path, idx), idx, "split video")
    # the whole stored sample is the original file, byte for byte
    assert ds.videos.store.read_extents(e["data"]) == Path(path).read_bytes()
    chunks = os.listdir(tmp_path / "ds" / "videos" / "chunks")
    assert max(os.path.getsize(tmp_path / "ds" / "videos" / "chunks" / c) for c in chunks) <= 256 * 1024


def test_small_videos_share_a_chunk(tmp_path):
    ds = empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    for name in ("stub_h264.mp4", "carphone_distorted.mp4", "amve.mp4"):
        ds.videos.append(read(video(name)))
    ids = {c for i in range(3) for c, _o, _n in ds.videos.entry(i)["data"] + ds.videos.entry(i)["index"]}
    assert len(ids) == 1
    assert len(os.listdir(tmp_path / "ds" / "videos" / "chunks")) == 1


def test_table_segments_stay_logarithmic(tmp_path, monkeypatch):
    import importlib

    dataset_mod = importlib.import_module("vidlake.dataset.writer")   # vidlake.dataset is also the function

    ds = empty("mem://seg-" + uuid.uuid4().hex)
    ds.create_tensor("labels", htype="class_label")
    for i in range(37):
        ds.labels.append(i)
    segs = ds._meta["tensor_state"]["labels"]["segments"]
    assert len(segs) <= 6
    assert sum(s["count"] for s in segs) == 37
    # merged-away segments are listed as garbage and deleted after a grace period
    garbage = ds._meta["garbage"]
    assert len(ds.provider.list("labels/tables/")) == len(segs) + len(garbage)
    monkeypatch.setattr(dataset_mod, "GC_GRACE_SECONDS", -1.0)
    ds.labels.append(37)
    segs = ds._meta["tensor_state"]["labels"]["segments"]
    live = {fmt.table_key("labels", s["id"]) for s in segs}
    assert set(ds.provider.list("labels/tables/")) == live | {k for k, _t in ds._meta["garbage"]}
    assert len(ds._meta["garbage"]) <= 2
    ds2 = load(ds.path)
    assert ds2.labels.numpy().reshape(-1).tolist() == list(range(38))


def test_format_round_trip_in_a_new_process(tmp_path):
    """Write here, load and read in a fresh interpreter."""
    path = video("bikes.mp4")
    ds = empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
        ds.append({"videos": read(path), "labels": "b"})
    code = textwrap.dedent(f"""
        import json, numpy as np
        from vidlake.api import load
        ds = load({str(tmp_path / "ds")!r}, read_only=True)
        v = ds.videos
        np.save({str(tmp_path / "frames.npy")!r}, v[0, [0, 100, 249]].numpy())
        print(json.dumps({{"len": len(ds), "shape": list(v[0].shape), "info": v[0].sample_info,
                          "ts": v[0, 0:3].timestamp.tolist(), "label": ds.labels[0].numpy().tolist()}}))
    """)
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["len"] == 1
    assert res["shape"] == [250, 272, 640, 3]
    assert res["info"] == ds.videos[0].sample_info
    assert res["label"] == [1]
    info = oracle.info(path)
    np.testing.assert_array_equal(np.float32(res["ts"]), info.times[:3].astype(np.float32))
    oracle.assert_batch_equal(np.load(tmp_path / "frames.npy"), oracle.stack(path, [0, 100, 249]),
                              [0, 100, 249], "new process")


def test_reads_fetch_only_needed_chunk_ranges_and_reuse_the_stored_index(tmp_path, monkeypatch):
    """A read of a few frames fetches a fraction of the sample's bytes (only the chunks holding
    the needed packets) and never re-demuxes: Index.build is not called on the read path."""
    path = video("sample_mp4.mp4")                      # 1.5 MB, 11 GOPs
    ds = empty(str(tmp_path / "ds"))
    ds.create_tensor("videos", htype="video", sample_compression="mp4",
                     max_chunk_size=128 * 1024, target_chunk_size=64 * 1024)
    ds.videos.append(read(path))
    size = os.path.getsize(path)

    from vidlake import _core

    def no_probe(*a, **kw):
        raise AssertionError("the read path re-probed the video")

    monkeypatch.setattr(_core.Index, "build", no_probe)
    fetched = {"bytes": 0, "chunks": set()}
    real = LocalProvider.get_bytes

    def counting(self, key, start=None, end=None):
        data = real(self, key, start, end)
        if "/chunks/" in key:
            fetched["bytes"] += len(data)
            fetched["chunks"].add(key)
        return data

    monkeypatch.setattr(LocalProvider, "get_bytes", counting)
    d = load(str(tmp_path / "ds"), read_only=True)
    assert d.videos[0].shape == (901, 270, 480, 3)
    assert d.videos[0].sample_info["duration"] > 0
    assert fetched["bytes"] == 0                        # shape and sample_info: no chunk I/O
    got = d.videos[0, 455].numpy()
    oracle.assert_frames_equal(got, oracle.frame(path, 455), "partial read")
    n_chunks = len(d.videos.entry(0)["data"])
    assert fetched["bytes"] < size / 3, (fetched, size)
    assert len(fetched["chunks"]) < n_chunks
