"""The index a plain ``VideoReader(path)`` builds (docs/DESIGN.md, "Building the index"): for a local
MP4/MOV with H.264/HEVC, from the sample tables confirmed by every sample's NAL headers (Note [Checked
tables]) instead of a demux of every packet; byte for byte the full demux's index on every asset,
falling back to the full demux wherever the tables could differ (damaged samples, other containers)."""
from __future__ import annotations

from pathlib import Path

import assets
import numpy as np
import oracle
import pytest
from test_index_tables import TABLE_CODECS, _boxes_tile

import vidlake
from vidlake import _core

pytestmark = pytest.mark.timeout(120)


def _tables_apply(asset, path: str) -> bool:
    return asset.container == "mov" and asset.codec in TABLE_CODECS and _boxes_tile(path)


@pytest.mark.parametrize("asset", assets.READABLE, ids=lambda a: a.name)
def test_reader_index_is_the_full_demux_index(asset, asset_path):
    path = asset_path(asset)
    demux = _core.Index.build(path, -1, path, "demux")
    r = vidlake.VideoReader(path)
    assert r.index.to_bytes() == demux.to_bytes(), f"{asset.name}: the reader's index differs from the full demux"
    assert len(r) == asset.num_frames
    if _tables_apply(asset, path) and not asset.damaged:
        assert r.index.built_from == "tables", f"{asset.name}: the reader demuxed every packet"
    elif asset.damaged or not _tables_apply(asset, path):
        # damaged samples only the payload shows, or not a file the tables path indexes
        assert r.index.built_from == "demux", asset.name
    # and from bytes in memory the same
    mem = vidlake.VideoReader(Path(path).read_bytes(), name=asset.name)
    assert mem.index.to_bytes() == demux.to_bytes(), asset.name


def test_checked_mode_falls_back_on_a_damaged_sample(asset_path):
    """corrupted.mp4: packet 30's NAL units do not split; the tables alone count it as a frame (50),
    the checked build sees it and demuxes (49 frames, damaged), and every frame reads exactly."""
    path = asset_path("corrupted.mp4")
    assert _core.Index.build(path, -1, path, "tables").num_frames == 50
    checked = _core.Index.build(path, -1, path, "checked")
    assert checked.built_from == "demux"
    assert checked.num_frames == 49
    r = vidlake.VideoReader(path)
    got = r.get_frames(list(range(len(r))))
    oracle.assert_batch_equal(got, oracle.stack(path, range(49)), list(range(49)), "corrupted.mp4")


def test_checked_mode_reads_little_of_a_large_file(asset_path):
    """The checked build of the 1080p asset reads the tables and a few bytes per NAL unit, far
    less than the file; the frames it serves equal PyAV's."""
    a = next(x for x in assets.READABLE if x.container == "mov" and x.codec == "h264" and x.height >= 1080
             and not x.damaged)
    path = asset_path(a)
    idx = _core.Index.build(path, -1, path, "checked")
    if not _tables_apply(a, path):
        pytest.skip(f"{a.name}: not a file the tables path indexes")
    assert idx.built_from == "tables"
    size = Path(path).stat().st_size
    assert idx.build_bytes < size / 10, (idx.build_bytes, size)
    r = vidlake.VideoReader(path, index=idx)
    picks = np.linspace(0, len(r) - 1, 4).astype(int).tolist()
    oracle.assert_batch_equal(r.get_frames(picks), oracle.stack(path, picks), picks, a.name)


def test_index_build_refuses_unknown_modes(asset_path):
    with pytest.raises(ValueError, match="'checked'"):
        _core.Index.build(asset_path("samplemp4.mp4"), -1, "x", "lazy")
