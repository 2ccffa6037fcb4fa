"""``create_tensor(encode=..., reencode=..., keep_original=...)``: a video tensor's encode
settings, checked once and stored in its tensor_meta.json (README "Writing video").

    >>> encode_meta(lookup("video"), "videos", {"codec": "h264", "crf": 20}, "seek", False)
    {'encode': {'codec': 'h264', 'crf': 20}, 'reencode': {...'profile': 'seek'}}
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..video.encode import check_settings, resolve_profile

if TYPE_CHECKING:
    from ..htypes.base import Htype

__all__ = ["encode_meta"]


def encode_meta(spec: Htype, tensor: str, encode: dict[str, Any] | None, reencode: Any,
                keep_original: bool) -> dict[str, Any]:
    """The tensor_meta fields for these options ({} when none is given); ``ValueError`` for
    a tensor that is not ``video`` or for settings the encoder would refuse."""
    if encode is None and reencode is None and not keep_original:
        return {}
    if spec.name != "video":
        raise ValueError(f"{tensor}: encode / reencode / keep_original are for video tensors, not {spec.name!r}")
    out: dict[str, Any] = {}
    if encode is not None:
        if not isinstance(encode, dict):
            raise ValueError(f"{tensor}: encode must be a dict of vidlake.encode settings")
        check_settings(encode, f"{tensor}: encode")
        out["encode"] = {k: (str(v) if k == "fps" else v) for k, v in encode.items()}
    profile = resolve_profile(reencode)
    if profile is not None:
        check_settings({k: v for k, v in profile.items() if k != "profile"}, f"{tensor}: reencode")
        out["reencode"] = profile
    if keep_original:
        if profile is None:
            raise ValueError(f"{tensor}: keep_original=True needs a reencode profile (nothing to keep otherwise)")
        out["keep_original"] = True
    return out
