"""vidlake.export_frames (vidlake.curate): exact pixels, resize, names, manifest, resume, retries,
a folder and an S3 prefix (moto), and the CLI end to end from S3 videos to S3 PNGs."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import video
from PIL import Image

import vidlake
from vidlake import cli
from vidlake.curate import export as export_mod
from vidlake.curate import resized_size

CLIPS = ["bikes.mp4", "dash_video4.webm"]


@pytest.fixture(scope="module")
def sel():
    return vidlake.select([video(c) for c in CLIPS], n_samples=6, seed=0, workers=0, progress=False)


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _manifest(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_export_folder_exact_pixels_names_manifest(tmp_path, sel):
    res = vidlake.export_frames(sel, tmp_path / "out", progress=False)
    assert (res.written, res.skipped, res.failed) == (6, 0, [])
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted([*res.files, "manifest.jsonl"])
    man = _manifest((tmp_path / "out" / "manifest.jsonl").read_text())
    assert [m["file"] for m in man] == res.files
    for m, rec in zip(man, sel.records()):
        assert m["file"] == f"{Path(rec['source']).stem}_f{rec['frame']:06d}_t{rec['timestamp']:.3f}s.png"
        assert m["reference_id"] == m["file"][:-4]
        assert (m["source"], m["video_reference_id"], m["frame"]) == (rec["source"], rec["source"], rec["frame"])
        assert m["timestamp"] == rec["timestamp"]
        assert m["score"] == rec["score"]
        want = vidlake.VideoReader(rec["source"])[rec["frame"]]
        got = _png((tmp_path / "out" / m["file"]).read_bytes())
        np.testing.assert_array_equal(got, want)  # the PNG is vidlake's frame, bit for bit
        assert (m["width"], m["height"]) == (want.shape[1], want.shape[0])


@pytest.mark.parametrize(("resize", "fmt"), [(160, "png"), ((100, 60), "png"), (0.25, "jpg"), ((120, -1), "webp")])
def test_export_resize_and_formats(tmp_path, sel, resize, fmt):
    res = vidlake.export_frames(sel, tmp_path, format=fmt, resize=resize, quality=90, progress=False)
    assert res.written == 6
    man = _manifest((tmp_path / "manifest.jsonl").read_text())
    for m in man:
        r = vidlake.VideoReader(m["source"])
        w0, h0 = r.metadata["width"], r.metadata["height"]
        w, h = resized_size(w0, h0, resize)
        assert (m["width"], m["height"], m["format"]) == (w, h, fmt)
        assert m["file"].endswith("." + fmt)
        got = np.asarray(Image.open(tmp_path / m["file"]).convert("RGB"))
        want = r.get_frames([m["frame"]], size=(h, w))[0]  # swscale's resize in the conversion pass
        assert got.shape == want.shape
        if fmt == "png":
            np.testing.assert_array_equal(got, want)
        else:
            assert np.abs(got.astype(int) - want).mean() < 12  # lossy, but the same picture
    assert resized_size(640, 272, 640) is None
    assert resized_size(640, 272, (-1, 136)) == (320, 136)
    for bad in (0, -2.0, (0, 0), (1, 2, 3)):
        with pytest.raises(ValueError, match="resize"):
            resized_size(640, 272, bad)
    with pytest.raises(ValueError, match="format"):
        vidlake.export_frames(sel, tmp_path, format="gif")


def test_export_resumes_and_never_leaves_partial_files(tmp_path, sel, monkeypatch):
    out = tmp_path / "out"
    first = vidlake.export_frames(sel, out, progress=False)
    manifest = (out / "manifest.jsonl").read_text()
    gone = out / first.files[2]
    gone.unlink()
    again = vidlake.export_frames(sel, out, progress=False)
    assert (again.written, again.skipped) == (1, 5)
    assert gone.exists()
    assert (out / "manifest.jsonl").read_text() == manifest  # the same lines, resumed or not
    assert len(_manifest((out / "manifest.jsonl").read_text())) == 6
    # a write that fails twice is retried; one that always fails is reported, with no file left
    real_put = export_mod._LocalDest.put
    failures: dict[str, int] = {}

    def flaky(self, name, data):
        if name != "manifest.jsonl" and failures.get(name, 0) < 2:
            failures[name] = failures.get(name, 0) + 1
            with open(Path(self.root) / f".{name}.partial", "wb") as f:
                f.write(data[: len(data) // 2])  # what a crash mid-write leaves: never the final name
            raise OSError("disk hiccup")
        real_put(self, name, data)

    monkeypatch.setattr(export_mod._LocalDest, "put", flaky)
    monkeypatch.setattr(export_mod.time, "sleep", lambda s: None)
    redo = vidlake.export_frames(sel, tmp_path / "flaky", progress=False)
    assert (redo.written, redo.failed) == (6, [])
    assert set(failures.values()) == {2}

    def broken(self, name, data):
        if name.endswith(".png"):
            raise OSError("no space left")
        real_put(self, name, data)

    monkeypatch.setattr(export_mod._LocalDest, "put", broken)
    bad = vidlake.export_frames(sel, tmp_path / "broken", retries=2, progress=False)
    assert bad.written == 0
    assert len(bad.failed) == 6
    assert "after 3 attempts" in bad.failed[0][1]
    assert [p.name for p in (tmp_path / "broken").iterdir()] == ["manifest.jsonl"]
    assert (tmp_path / "broken" / "manifest.jsonl").read_text() == ""
    monkeypatch.undo()
    # the real writer: temporary name, then rename; nothing else is left behind
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_export_to_s3_exact_and_resumable(moto_server, s3_bucket, sel):
    creds = moto_server.creds()
    dest = f"s3://{s3_bucket}/lightly/frames"
    res = vidlake.export_frames(sel, dest, creds=creds, progress=False)
    assert (res.written, res.failed) == (6, [])
    c = moto_server.client()
    keys = sorted(o["Key"] for o in c.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == sorted([f"lightly/frames/{f}" for f in res.files] + ["lightly/frames/manifest.jsonl"])
    man = _manifest(c.get_object(Bucket=s3_bucket, Key="lightly/frames/manifest.jsonl")["Body"].read().decode())
    for m in man:
        body = c.get_object(Bucket=s3_bucket, Key=f"lightly/frames/{m['file']}")["Body"].read()
        np.testing.assert_array_equal(_png(body), vidlake.VideoReader(m["source"])[m["frame"]])
    c.delete_object(Bucket=s3_bucket, Key=f"lightly/frames/{res.files[0]}")
    again = vidlake.export_frames(sel, dest, creds=creds, progress=False)
    assert (again.written, again.skipped) == (1, 5)
    assert res.manifest == f"{dest}/manifest.jsonl"


def test_cli_select_from_s3_videos_to_s3_pngs(moto_server, s3_bucket, tmp_path, capsys):
    c = moto_server.client()
    for name in CLIPS:
        c.put_object(Bucket=s3_bucket, Key=f"input/{name}", Body=Path(video(name)).read_bytes())
    c.put_object(Bucket=s3_bucket, Key="input/notes.txt", Body=b"x")
    creds = json.dumps(moto_server.creds())
    assert cli.main(["scan", f"s3://{s3_bucket}/input/", "--creds", creds]) == 0
    out = capsys.readouterr()
    assert out.out.split() == [f"s3://{s3_bucket}/input/{n}" for n in CLIPS]
    assert "2 video(s), 1 other file(s) skipped (.txt: 1)" in out.err
    argv = ["select", f"s3://{s3_bucket}/input/", "--n-samples", "4", "--per-video", "2", "--export",
            f"s3://{s3_bucket}/selected/", "--resize", "128", "--creds", creds, "--workers", "0", "-q",
            "--json", str(tmp_path / "sel.jsonl")]
    assert cli.main(argv) == 0
    assert "exported 4 frame(s), 0 already there, 0 failed" in capsys.readouterr().err
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=s3_bucket, Prefix="selected/")["Contents"]]
    assert len(keys) == 5
    man = _manifest(c.get_object(Bucket=s3_bucket, Key="selected/manifest.jsonl")["Body"].read().decode())
    assert sorted(m["source"].rsplit("/", 1)[1] for m in man) == sorted(CLIPS * 2)
    assert all(max(m["width"], m["height"]) == 128 for m in man)
    assert len(_manifest((tmp_path / "sel.jsonl").read_text())) == 4
    assert cli.main(argv) == 0  # again: everything is there already
    assert "exported 0 frame(s), 4 already there" in capsys.readouterr().err


def test_cli_select_from_a_dataset_tensor(tmp_path, capsys):
    src = tmp_path / "videos"
    src.mkdir()
    for name in ("bikes.mp4", "samplemp4.mp4"):
        shutil.copy(video(name), src / name.upper())
    (src / "notes.txt").write_text("x")
    found = vidlake.scan(src)
    ds = vidlake.empty(tmp_path / "ds")
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    with ds:
        ds.videos.extend(found.samples())  # the scan feeds a video tensor
    assert len(ds.videos) == 2
    argv = ["select", str(tmp_path / "ds"), "--tensor", "videos", "--n-samples", "3", "--candidates", "keyframes",
            "--export", str(tmp_path / "out"), "--format", "jpg", "--workers", "0", "-q"]
    assert cli.main(argv) == 0
    assert "selected 3 of 8 candidate frames from 2 video(s)" in capsys.readouterr().err
    man = _manifest((tmp_path / "out" / "manifest.jsonl").read_text())
    keyframes = {0: [0, 30, 76, 137, 187, 242], 1: [0, 250]}  # BIKES.MP4, SAMPLEMP4.MP4
    assert len(man) == 3
    assert all(m["frame"] in keyframes[m["sample"]] for m in man)
    for m in man:
        assert m["file"] == f"videos_{m['sample']:05d}_f{m['frame']:06d}_t{m['timestamp']:.3f}s.jpg"
        assert m["video_reference_id"] == f"{tmp_path / 'ds'}#videos[{m['sample']}]"
    assert cli.main(["select", str(tmp_path / "ds"), "--tensor", "missing", "--n-samples", "1"]) == 2
