"""vidlake's frames equal reference frames published by peer projects' test suites.

reference/torchcodec/<video>.stream<S>.frame<NNNNNN>.pt: torch.save()d HxWx3 uint8 RGB tensors,
read here without torch (the zip's <name>/data/0 member is the raw tensor storage); made with the
ffmpeg CLI, which converts with the stream's tagged colour matrix (av1_video.mkv is tagged bt709),
so they are compared with ``color_conversion="stream"`` (vidlake's ffmpeg/torchcodec conversion);
PyAV's to_ndarray, vidlake's default, always uses BT.601 and differs from them on bt709 streams.
reference/pims/bulk-water_frame<N>.npy: numpy arrays of bulk-water.mov frames.
"""
from __future__ import annotations

import re
import zipfile

import assets
import numpy as np
import oracle
import pytest
import vidlake

TORCHCODEC = sorted((assets.REFERENCE_DIR / "torchcodec").glob("*.pt"))
PIMS = sorted((assets.REFERENCE_DIR / "pims").glob("*.npy"))


def load_torch_uint8_frame(path, height: int, width: int) -> np.ndarray:
    with zipfile.ZipFile(path) as z:
        raw = z.read(next(n for n in z.namelist() if n.endswith("/data/0")))
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def _check(video: str, stream: int, index: int, expected: np.ndarray, what: str, colors: str = "pyav") -> None:
    asset = assets.get(video)
    path = str(assets.VIDEO_DIR / video)
    r = vidlake.VideoReader(path, stream=stream)
    assert expected.shape == (asset.height, asset.width, 3)

    def get(i):
        return r.get_frames([i], color_conversion=colors)[0]

    oracle.assert_frames_equal(get(index), expected, f"{what}: frame {index}")
    if colors == "pyav":
        oracle.assert_frames_equal(r[index], expected, f"{what}: r[{index}]")
    # and again after reading something else (a seek back into the stream)
    get(len(r) - 1)
    oracle.assert_frames_equal(get(index), expected, f"{what}: frame {index} after reading the last frame")


def test_reference_files_present():
    assert len(TORCHCODEC) == 2 and len(PIMS) == 2, f"reference frames missing under {assets.REFERENCE_DIR}"


@pytest.mark.parametrize("ref", TORCHCODEC, ids=lambda p: p.name)
def test_torchcodec_reference(ref):
    m = re.fullmatch(r"(.+)\.stream(\d+)\.frame(\d+)\.pt", ref.name)
    assert m, ref.name
    video, stream, index = m.group(1), int(m.group(2)), int(m.group(3))
    asset = assets.get(video)
    _check(video, stream, index, load_torch_uint8_frame(ref, asset.height, asset.width), ref.name, "stream")


def test_stream_colors_differ_from_pyav_only_on_tagged_streams():
    """bt709-tagged av1_video.mkv: the two conversions differ; untagged h265_video.mp4: identical."""
    tagged = vidlake.VideoReader(str(assets.VIDEO_DIR / "av1_video.mkv"))
    assert tagged.metadata["color_space"] == "bt709"
    assert not np.array_equal(tagged.get_frames([3], color_conversion="stream"), tagged.get_frames([3]))
    oracle.assert_frames_equal(tagged.get_frames([3])[0], oracle.frame(str(assets.VIDEO_DIR / "av1_video.mkv"), 3),
                               "the default conversion is PyAV's")
    untagged = vidlake.VideoReader(str(assets.VIDEO_DIR / "h265_video.mp4"))
    assert np.array_equal(untagged.get_frames([3], color_conversion="stream"), untagged.get_frames([3]))
    with pytest.raises(ValueError, match="color_conversion"):
        untagged.get_frames([0], color_conversion="bt709")


@pytest.mark.parametrize("ref", PIMS, ids=lambda p: p.name)
def test_pims_reference(ref):
    m = re.fullmatch(r"(.+)_frame(\d+)\.npy", ref.name)
    assert m, ref.name
    expected = np.load(ref)
    assert expected.dtype == np.uint8
    _check(m.group(1) + ".mov", 0, int(m.group(2)), expected, ref.name)
