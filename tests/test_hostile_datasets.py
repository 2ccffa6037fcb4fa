"""A dataset from someone else is untrusted input: it cannot make vidlake read local files through
links, follow links out of its folder, hang on a FIFO, read a device as metadata, loop on a crafted
chunk size, or delete objects its writer did not create (docs/DESIGN.md, "Threat model")."""
from __future__ import annotations

import json
import os

import pytest
from helpers import video

import vidlake

CLIP = "stub_h264.mp4"


@pytest.fixture
def no_local_links(monkeypatch):
    monkeypatch.delenv("VIDLAKE_ALLOW_LOCAL_LINKS", raising=False)


def _links_ds(path, allow=None):
    ds = vidlake.empty(path, allow_local_links=allow)
    ds.create_tensor("clips", htype="link[video]")
    return ds


def test_local_links_are_refused_unless_a_root_is_allowed(tmp_path, no_local_links):
    ds = _links_ds(str(tmp_path / "ds"))
    with pytest.raises(vidlake.SampleAppendError, match="allow_local_links"):
        ds.clips.append(vidlake.link(video(CLIP)))
    assert len(ds.clips) == 0
    root = os.path.dirname(video(CLIP))
    ds = vidlake.load(str(tmp_path / "ds"), allow_local_links=[root])
    ds.clips.append(vidlake.link(video(CLIP)))
    assert ds.clips[0, 0].numpy().shape[-1] == 3
    # another process (a colleague) opening the folder without allowing that root reads nothing
    again = vidlake.load(str(tmp_path / "ds"))
    with pytest.raises(vidlake.LinkRefusedError, match="refusing the link to the local file"):
        again.clips[0, 0].numpy()
    with pytest.raises(vidlake.LinkRefusedError):
        vidlake.load(str(tmp_path / "ds"), allow_local_links=[str(tmp_path / "elsewhere")]).clips[0, 0].numpy()


def test_a_crafted_link_to_a_system_file_is_refused(tmp_path, no_local_links):
    """A stored link entry rewritten to name /etc/passwd (with verify=False, so no index) is
    refused on read, even when the user allowed the test videos' folder."""
    path = str(tmp_path / "ds")
    ds = _links_ds(path, allow=True)
    ds.clips.append(vidlake.link(video(CLIP), verify=False))
    tables = [k for k in ds.provider.list("clips/tables/")]
    raw = json.loads(ds.provider.get(tables[0]))
    text = json.dumps(raw).replace(video(CLIP), "/etc/passwd")
    ds.provider.put(tables[0], text.encode())
    d = vidlake.load(path, allow_local_links=[os.path.dirname(video(CLIP))])
    with pytest.raises(vidlake.LinkRefusedError, match="/etc/passwd"):
        _ = d.clips[0].shape
    with pytest.raises(vidlake.LinkRefusedError, match="/etc/passwd"):
        d.clips[0, 0].numpy()


def test_local_links_allowed_by_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDLAKE_ALLOW_LOCAL_LINKS", os.path.dirname(video(CLIP)))
    ds = _links_ds(str(tmp_path / "ds"))
    ds.clips.append(vidlake.link(video(CLIP)))
    with pytest.raises(ValueError, match="allow_local_links"):
        vidlake.load(str(tmp_path / "ds"), allow_local_links=3)


def _video_ds(path):
    ds = vidlake.empty(path)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.append(vidlake.read(video(CLIP)))
    return ds


def test_symlinked_chunk_and_folder_are_refused(tmp_path):
    path = tmp_path / "ds"
    ds = _video_ds(str(path))
    chunk = next(k for k in ds.provider.list("videos/chunks/"))
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"s" * 100_000)
    target = path / chunk
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(vidlake.StorageError, match="symbolic link"):
        vidlake.load(str(path)).videos[0, 0].numpy()
    # a folder of the dataset that is a link out of it: neither read nor written
    tables = path / "videos" / "tables"
    moved = tmp_path / "tables-elsewhere"
    tables.rename(moved)
    tables.symlink_to(moved, target_is_directory=True)
    # (table segments are read when first touched, format 1.2: so on the first read, and by check())
    d = vidlake.load(str(path))
    with pytest.raises(vidlake.StorageError, match="leads outside the dataset"):
        d.videos[0].sample_info  # noqa: B018
    with pytest.raises(vidlake.StorageError, match="leads outside the dataset"):
        d.check()


def test_fifo_and_device_as_metadata_fail_fast(tmp_path):
    path = tmp_path / "ds"
    _video_ds(str(path))
    meta = path / "dataset_meta.json"
    meta.unlink()
    os.mkfifo(meta)
    with pytest.raises(vidlake.StorageError, match="not a regular file"):
        vidlake.load(str(path))
    meta.unlink()
    meta.symlink_to("/dev/zero")
    with pytest.raises(vidlake.StorageError, match="symbolic link"):
        vidlake.load(str(path))


@pytest.mark.parametrize("bad", [0, -5, "8", True, 2**62])
def test_crafted_chunk_sizes_are_refused_at_load(tmp_path, bad):
    path = tmp_path / "ds"
    _video_ds(str(path))
    tm = path / "videos" / "tensor_meta.json"
    meta = json.loads(tm.read_text())
    meta["max_chunk_size"] = bad
    tm.write_text(json.dumps(meta))
    with pytest.raises(vidlake.DatasetError, match="max_chunk_size"):
        vidlake.load(str(path))


def test_garbage_naming_the_commit_record_is_never_deleted(tmp_path):
    path = tmp_path / "ds"
    _video_ds(str(path))
    meta = json.loads((path / "dataset_meta.json").read_text())
    meta["garbage"] = [["dataset_meta.json", 0.0], ["videos/tensor_meta.json", 0.0]]
    (path / "dataset_meta.json").write_text(json.dumps(meta))
    ds = vidlake.load(str(path))
    ds.videos.append(vidlake.read(video(CLIP)))
    ds = vidlake.load(str(path))
    assert len(ds.videos) == 2
    assert (path / "videos" / "tensor_meta.json").exists()
    assert all(k.startswith("videos/tables/") for k, _t in ds._meta["garbage"])   # the crafted entries are gone


@pytest.mark.parametrize("backend", ["s3", "gcs"])
def test_remote_datasets_refuse_local_links(request, backend, no_local_links):
    """A bucket someone else wrote names a local file in a link: reading it is refused unless the
    reader allows that folder (S3 on the moto server, GCS on the emulator)."""
    if backend == "s3":
        srv, bucket = request.getfixturevalue("moto_server"), request.getfixturevalue("s3_bucket")
        path = f"s3://{bucket}/ds"
    else:
        srv, bucket = request.getfixturevalue("gcs_server"), request.getfixturevalue("gcs_bucket")
        path = f"gs://{bucket}/ds"
    creds = srv.creds()
    ds = vidlake.empty(path, creds=creds, allow_local_links=True)      # the writer allowed it
    ds.create_tensor("clips", htype="link[video]")
    ds.clips.append(vidlake.link(video(CLIP)))
    reader = vidlake.load(path, creds=creds, read_only=True)           # someone else reads the bucket
    with pytest.raises(vidlake.LinkRefusedError, match="refusing the link to the local file"):
        reader.clips[0, 0].numpy()
    ok = vidlake.load(path, creds=creds, read_only=True, allow_local_links=[os.path.dirname(video(CLIP))])
    assert ok.clips[0, 0].numpy().shape[-1] == 3


@pytest.mark.parametrize("bad", ["requence[bbox]", "sequence[video]", 7, None])
def test_an_unknown_htype_in_tensor_meta_is_a_dataset_error(tmp_path, bad):
    """Found by the metadata property test: the registry's ValueError escaped from a damaged htype."""
    path = tmp_path / "ds"
    _video_ds(str(path))
    tm = path / "videos" / "tensor_meta.json"
    meta = json.loads(tm.read_text())
    meta["htype"] = bad
    tm.write_text(json.dumps(meta))
    with pytest.raises(vidlake.DatasetError, match="videos"):
        vidlake.load(str(path))
