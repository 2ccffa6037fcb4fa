"""vidlake's frames equal reference frames published by peer projects' test suites.

reference/torchcodec/<video>.stream<S>.frame<NNNNNN>.pt: torch.save()d HxWx3 uint8 RGB tensors,
read here without torch (the zip's <name>/data/0 member is the raw tensor storage); made with the
ffmpeg CLI, which converts with the stream's tagged colour matrix (av1_video.mkv is tagged bt709),
as vidlake does by default; they are compared with default arguments, and the test oracle's
stream-colour conversion is checked against them too (so the oracle is known to apply the
matrix: PyAV 12's to_ndarray always uses BT.601).
reference/pims/bulk-water_frame<N>.npy: numpy arrays of bulk-water.mov frames, made with PyAV's
BT.601 to_ndarray: compared with ``color_conversion="bt601"``.
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


def _check(video: str, stream: int, index: int, expected: np.ndarray, what: str, colors: str = "stream") -> None:
    asset = assets.get(video)
    path = str(assets.VIDEO_DIR / video)
    r = vidlake.VideoReader(path, stream=stream)
    assert expected.shape == (asset.height, asset.width, 3)

    def get(i):
        return r.get_frames([i], color_conversion=colors)[0]

    oracle.assert_frames_equal(get(index), expected, f"{what}: frame {index}")
    if colors == "stream":  # the defaults
        oracle.assert_frames_equal(r[index], expected, f"{what}: r[{index}]")
        oracle.assert_frames_equal(r.get_frames([index])[0], expected, f"{what}: get_frames([{index}])")
    # and again after reading something else (a seek back into the stream)
    get(len(r) - 1)
    oracle.assert_frames_equal(get(index), expected, f"{what}: frame {index} after reading the last frame")


def test_reference_files_present():
    assert len(TORCHCODEC) == 2, f"reference frames missing under {assets.REFERENCE_DIR}"
    assert len(PIMS) == 2, f"reference frames missing under {assets.REFERENCE_DIR}"


@pytest.mark.parametrize("ref", TORCHCODEC, ids=lambda p: p.name)
def test_torchcodec_reference(ref):
    m = re.fullmatch(r"(.+)\.stream(\d+)\.frame(\d+)\.pt", ref.name)
    assert m, ref.name
    video, stream, index = m.group(1), int(m.group(2)), int(m.group(3))
    asset = assets.get(video)
    expected = load_torch_uint8_frame(ref, asset.height, asset.width)
    _check(video, stream, index, expected, ref.name)
    # the oracle really applies the frame's matrix and range: it gives the same frame
    path = str(assets.VIDEO_DIR / video)
    oracle.assert_frames_equal(oracle.frame(path, index, stream_index=stream), expected, f"oracle, {ref.name}")


def test_bt601_differs_from_the_default_only_on_tagged_streams():
    """bt709-tagged av1_video.mkv: the two conversions differ; untagged h265_video.mp4: identical."""
    path = str(assets.VIDEO_DIR / "av1_video.mkv")
    tagged = vidlake.VideoReader(path)
    assert tagged.metadata["color_space"] == "bt709"
    bt601 = tagged.get_frames([3], color_conversion="bt601")
    assert not np.array_equal(bt601, tagged.get_frames([3]))
    assert np.array_equal(bt601, tagged.get_frames([3], color_conversion="pyav"))      # the alias
    oracle.assert_frames_equal(bt601[0], oracle.frame(path, 3, "bt601"), "bt601 is PyAV 12's to_ndarray")
    oracle.assert_frames_equal(tagged.get_frames([3])[0], oracle.frame(path, 3), "the default: the stream's colours")
    untagged = vidlake.VideoReader(str(assets.VIDEO_DIR / "h265_video.mp4"))
    assert np.array_equal(untagged.get_frames([3], color_conversion="bt601"), untagged.get_frames([3]))
    with pytest.raises(ValueError, match="color_conversion"):
        untagged.get_frames([0], color_conversion="bt709")


def test_switching_conversions_does_not_leak_colour_details():
    """One reader alternating conversions on a full-range BT.709 stream gives every frame exactly
    as a fresh reader does (a reused swscale context once kept stale colour details)."""
    path = str(assets.VIDEO_DIR / "two_first_slice.mp4")
    fresh = vidlake.VideoReader(path).get_frames([1])[0]
    r = vidlake.VideoReader(path)
    r.get_frames([0])
    r.get_frames([0], color_conversion="bt601")
    r.get_frames([0], gray=True)
    oracle.assert_frames_equal(r.get_frames([1])[0], fresh, "frame 1 after other conversions")
    oracle.assert_frames_equal(fresh, oracle.frame(path, 1), "frame 1 against the oracle")


@pytest.mark.parametrize("ref", PIMS, ids=lambda p: p.name)
def test_pims_reference(ref):
    m = re.fullmatch(r"(.+)_frame(\d+)\.npy", ref.name)
    assert m, ref.name
    expected = np.load(ref)
    assert expected.dtype == np.uint8
    _check(m.group(1) + ".mov", 0, int(m.group(2)), expected, ref.name, "bt601")


@pytest.mark.parametrize("name", ["amve.mp4", "hdr10tags-both.mkv"])
def test_bt2020_streams(name):
    """BT.2020 streams: PyAV 12 cannot apply their matrix, so their default-colour frames are
    checked against the ffmpeg CLI where it decodes the same pictures (test_reader_exact);
    here every frame is checked bit for bit in BT.601 against PyAV (the decode is exact), and
    the default conversion really applies the BT.2020 matrix (it differs from BT.601)."""
    path = str(assets.VIDEO_DIR / name)
    r = vidlake.VideoReader(path)
    assert r.metadata["color_space"].startswith("bt2020")
    idx = list(range(len(r)))
    oracle.assert_batch_equal(r.get_frames(idx, color_conversion="bt601"), oracle.stack(path, idx, "bt601"), idx,
                              f"{name} bt601")
    assert not np.array_equal(r.get_frames([0]), r.get_frames([0], color_conversion="bt601"))
