"""The oracle's colours: each frame converted with its own matrix and range, as vidlake converts
by default (and the ffmpeg CLI and torchcodec); the same rule as tests/oracle.py."""
from __future__ import annotations

import numpy as np

# PyAV 12's names for the swscale matrices it can set (sws_getCoefficients numbers)
_SWS_CS_DEFAULT = 5
_PYAV_MATRICES = {1, 4, 5, 6, 7}
_RANGE_MPEG, _RANGE_JPEG = 1, 2


def stream_rgb(frame, size: tuple | None = None) -> np.ndarray | None:
    """``frame`` in RGB with its own matrix and range, as tests/oracle.py converts it (PyAV 12's
    ``to_ndarray`` keeps BT.601 and its ``reformat`` sets colour details only when source and
    destination differ, so both are given explicitly). None for a matrix PyAV cannot set
    (BT.2020): the caller falls back to BT.601 and says so."""
    cs, rng = int(frame.colorspace), int(frame.color_range)
    src_cs = _SWS_CS_DEFAULT if cs == 2 else cs                  # unspecified: swscale's default
    if src_cs not in _PYAV_MATRICES:
        return None
    if rng in (_RANGE_JPEG, _RANGE_MPEG):
        src_range = "JPEG" if rng == _RANGE_JPEG else "MPEG"
    else:                                                        # unspecified: swscale's default
        src_range = "JPEG" if frame.format.name.startswith("yuvj") else "MPEG"
    kw = {} if size is None else {"height": size[0], "width": size[1], "interpolation": "BILINEAR"}
    return frame.reformat(format="rgb24", src_colorspace=src_cs, dst_colorspace=1 if src_cs != 1 else 5,
                          src_color_range=src_range, dst_color_range="JPEG", **kw).to_ndarray()


def oracle_rgb(frame) -> tuple[np.ndarray, np.ndarray | None]:
    """(the frame in its own colours, its BT.601 conversion where that differs, else None); a
    matrix PyAV cannot set gives the BT.601 conversion first."""
    bt601 = frame.to_ndarray(format="rgb24")   # first: PyAV 12 reuses a frame's swscale context,
    own = stream_rgb(frame)                     # and a default conversion after explicit details keeps them
    if own is None:
        return bt601, None
    return own, None if np.array_equal(own, bt601) else bt601
