"""The ``image`` htype: a sample is an encoded still image (jpg / png / webp).

Stored byte for byte when appended as ``vidlake.read(path)``, a path or bytes; a numpy array is
encoded to the tensor's ``sample_compression`` first (png losslessly, jpg / webp at quality 95).
Decoding and the channel rules are in :mod:`vidlake.video.images`.

    >>> ds.create_tensor("images", htype="image", sample_compression="jpg")
    >>> ds.images.append(vidlake.read("000001.jpg")); ds.images[0].shape
    (1080, 1920, 3)
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import HtypeError, SampleAppendError
from ..sources import Sample
from ..video.images import (
    IMAGE_COMPRESSIONS,
    IMAGE_FAMILIES,
    IMAGE_FORMAT_NAME,
    current_image_decoder,
    decode_image,
    encode_image,
    image_header,
)
from . import register
from .base import Htype, PreparedSample, WriteContext, safe_cast

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ImageHtype", "prepare_image", "stored_image_decoder"]


def _image_bytes(sample: Any) -> tuple[bytes, str | None]:
    """(encoded bytes, filename) of a sample appended to an image tensor (not arrays)."""

    if isinstance(sample, Sample):
        try:
            return sample.buffer, sample.path
        except OSError as e:
            raise SampleAppendError(f"cannot read image file {sample.path!r}: {e.strerror or e}") from None
        except KeyError:
            raise SampleAppendError(f"cannot read image {sample.path!r}: no such object") from None
    if isinstance(sample, (str, os.PathLike)):
        path = os.fspath(sample)
        try:
            with open(path, "rb") as f:
                return f.read(), path
        except OSError as e:
            raise SampleAppendError(f"cannot read image file {path!r}: {e.strerror or e}") from None
    if isinstance(sample, (bytes, bytearray, memoryview)):
        return bytes(sample), None
    raise HtypeError(
        "an image tensor takes vidlake.read(path), a file path, the file's bytes or a uint8 numpy "
        f"array; got {type(sample).__name__}"
    )


def prepare_image(sample: Any, compression: str, tensor: str):
    """Validate (header only) or encode one image sample -> PreparedSample."""

    if isinstance(sample, np.ndarray):
        arr = safe_cast(sample, np.uint8, tensor)
        try:
            data = encode_image(arr, compression)
        except ValueError as e:
            raise HtypeError(f"tensor {tensor!r} (htype 'image'): {e}") from None
        fmt_name, shape = image_header(data)
        return PreparedSample(data, {"shape": list(shape), "format": IMAGE_FORMAT_NAME[fmt_name], "filename": None})
    data, filename = _image_bytes(sample)
    what = repr(filename) if filename else "the image bytes"
    if not data:
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: the file is empty (0 bytes)")
    try:
        fmt_name, shape = image_header(data)
    except ValueError as e:
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: {e}") from None
    family = IMAGE_FAMILIES.get(fmt_name, ())
    if compression not in family:
        real = IMAGE_FORMAT_NAME.get(fmt_name, fmt_name.lower())
        raise SampleAppendError(
            f"cannot append {what} to {tensor!r}: the file is {real} but the tensor's sample_compression "
            f"is {compression!r}. Append it to a tensor created with sample_compression={real!r} "
            "or convert it first"
        )
    return PreparedSample(data, {"shape": list(shape), "format": IMAGE_FORMAT_NAME[fmt_name], "filename": filename})


class ImageHtype(Htype):
    """``image``: encoded still images, decoded to uint8 ``(H, W, C)``."""

    name = "image"
    sequence_item = True
    compressions = IMAGE_COMPRESSIONS
    fixed_dtype = "uint8"
    strict_dtype = True
    decodes_rows = True
    still_image = True

    def prepare(self, sample: Any, tensor: str, meta: Mapping[str, Any],
                ctx: WriteContext | None) -> PreparedSample:
        return prepare_image(sample, meta["sample_compression"], tensor)

    def decode(self, data: bytes, meta: Mapping[str, Any]) -> Any:
        return decode_image(data, image_decoder=current_image_decoder(stored_image_decoder(meta)))

    def decode_row(self, data: bytes, out: np.ndarray) -> np.ndarray:
        return decode_image(data, out=out)  # straight into the output row; decoder: the read's


def stored_image_decoder(meta: Mapping[str, Any]) -> str | None:
    """The ``image_decoder`` of a tensor's stored ``read_options`` (None: the default)."""
    return (meta.get("read_options") or {}).get("image_decoder")


register(ImageHtype())
