"""Issue 17, importers and CLI: MOT / LaSOT image sequences encoded into one video sample
(annotations unchanged), ``vidlake ingest --reencode``."""
from __future__ import annotations

import json

import annotation_assets as aa
import numpy as np
import pytest
from assets import VIDEO_DIR

import vidlake
from vidlake import _core
from vidlake.cli import main
from vidlake.importers import ingest_lasot, ingest_mot


@pytest.fixture(autouse=True)
def _libx264():
    """vidlake's default codec; the per-codec tests skip on their own encoder."""
    if not _core.has_encoder("libx264"):
        pytest.skip("the system FFmpeg has no libx264 (vidlake's default h264 encoder)")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_mot_encode_frames_keeps_annotations(tmp_path):
    seq = aa.mot_sequence(aa.TUD, tmp_path / "TUD-Campus", 71, 48, 64)
    plain = vidlake.empty(str(tmp_path / "plain"))
    ingest_mot(plain, [str(seq)])
    enc = vidlake.empty(str(tmp_path / "enc"))
    ingest_mot(enc, [str(seq)], encode=True)
    assert enc.frames.htype == "video"
    assert plain.frames.htype == "sequence[image]"
    assert enc.boxes.meta["aligned_to"] == "frames"
    info = enc.frames[0].sample_info
    assert info["shape"] == [71, 48, 64, 3]
    assert info["encoded"]["gop"] == 10
    for name in ("boxes", "ids", "confidences", "classes", "visibility"):
        a, b = plain[name][0].numpy(aslist=True), enc[name][0].numpy(aslist=True)
        assert len(a) == len(b) == 71
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), name
    assert enc.metadata[0].data() == plain.metadata[0].data()
    got = enc[0, [0, 35, 70]].frames.numpy()
    want = plain[0, [0, 35, 70]].frames.numpy()
    assert got.shape == want.shape == (3, 48, 64, 3)
    assert psnr(got, want) > 30
    # importing with the other kind into the same dataset is refused clearly
    with pytest.raises(vidlake.DatasetError, match="frames tensor is 'video'"):
        ingest_mot(enc, [str(seq)])
    assert len(enc) == 1


def test_lasot_encode_frames_and_cli(tmp_path):
    seq = tmp_path / "dog-2"
    seq.mkdir()
    lines = (aa.LASOT_DOG2 / "groundtruth.txt").read_text().splitlines()[:30]
    (seq / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    img = seq / "img"
    img.mkdir()
    for k in range(1, 31):
        (img / f"{k:08d}.jpg").write_bytes(aa.jpg_bytes(aa.frame_image(k, 25, 33)))  # odd size: 4:4:4
    out = str(tmp_path / "ds")
    assert main(["ingest", "--format", "lasot", str(seq), "--to", out, "-q", "--encode-frames"]) == 0
    ds = vidlake.load(out)
    assert ds.boxes.meta["aligned_to"] == "videos"
    assert ds.videos[0].sample_info["encoded"]["pix_fmt"] == "yuv444p"
    assert ds.videos[0].shape == (30, 25, 33, 3)
    np.testing.assert_array_equal(ds[0, 29].boxes.numpy(), np.array([lines[29].split(",")], np.float32))
    assert psnr(ds[0, 29].videos.numpy(), aa.reference_decode(img / "00000030.jpg")) > 30
    assert len(ingest_lasot(vidlake.load(out), [str(seq)], encode={"crf": 30})) == 1  # upsert


def test_cli_ingest_reencode(tmp_path):
    src = VIDEO_DIR / "stub_h264.mp4"
    if not src.exists():
        pytest.skip(f"{src} is missing (VIDLAKE_TESTDATA)")
    out = str(tmp_path / "ds")
    assert main(["ingest", str(src), "--to", out, "-q", "--reencode", "intra", "--keep-original"]) == 0
    ds = vidlake.load(out)
    info = ds.videos[0].sample_info
    assert info["reencoded"]["profile"] == "intra"
    r = ds.videos.reader(0)
    assert list(r.keyframe_indices) == list(range(len(r)))
    assert ds.videos.original_bytes(0) == src.read_bytes()
    out2 = str(tmp_path / "ds2")
    custom = json.dumps({"codec": "h264", "gop": 3, "bframes": 0, "crf": 35})
    assert main(["ingest", str(src), "--to", out2, "-q", "--reencode", custom]) == 0
    r2 = vidlake.load(out2).videos.reader(0)
    assert list(r2.keyframe_indices) == list(range(0, len(r2), 3))
    assert main(["ingest", str(src), "--to", str(tmp_path / "ds3"), "-q", "--reencode", "fastest"]) == 2
    # an existing tensor keeps its own profile
    assert main(["ingest", str(src), "--to", out, "-q", "--reencode", "seek"]) == 2
