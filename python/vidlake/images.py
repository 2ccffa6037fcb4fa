"""Still images: the ``image`` htype's encoding, validation and decoding.

An ``image`` sample is stored as its encoded file (jpg / png / webp), byte for byte when it was
appended as ``vidlake.read(path)`` or as bytes; a numpy array is encoded to the tensor's
``sample_compression`` first (png losslessly, jpg / webp at quality 95).

Decoded images are uint8 arrays of shape ``(H, W, C)``: ``C = 3`` (RGB) for colour images,
``C = 1`` for grayscale ones and ``C = 4`` (RGBA) for images with transparency. The shape is
read from the file header at append time (no decode), so ``ds.images[i].shape`` needs no I/O
beyond the sample table.

    >>> from vidlake.images import decode_image, encode_image
    >>> a = decode_image(encode_image(np.zeros((4, 6, 3), np.uint8), "png"))
    >>> a.shape, a.dtype
    ((4, 6, 3), dtype('uint8'))

Decoding goes through the C++ core: libavcodec decodes the file and libswscale converts it
into a numpy buffer (``out=`` to reuse one), with the GIL released -- the same path and the
same conversion as video frames, so pixels equal a PyAV decode of the file. Pillow only reads
headers (size and mode, no decode) and encodes numpy arrays appended as images.
"""
from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from .errors import HtypeError, SampleAppendError

__all__ = [
    "IMAGE_COMPRESSIONS",
    "decode_image",
    "encode_image",
    "image_header",
    "prepare_image",
]

#: accepted ``sample_compression`` values of ``image`` tensors (``jpeg`` is ``jpg``)
IMAGE_COMPRESSIONS = ("jpg", "jpeg", "png", "webp")

#: Pillow format name -> the compressions that name a file of that format
_FAMILIES = {"JPEG": ("jpg", "jpeg"), "MPO": ("jpg", "jpeg"), "PNG": ("png",), "WEBP": ("webp",)}
#: the name recorded in ``sample_info["format"]``
_FORMAT_NAME = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp"}


def _pil():
    from PIL import Image

    return Image


def _target_mode(im: Any) -> str:
    """The mode a decoded image is converted to: L (grayscale), RGBA (transparency) or RGB."""
    mode = im.mode
    if mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F"):
        return "L"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        return "RGBA"
    return "RGB"


_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}


def image_header(data: bytes) -> tuple[str, tuple[int, int, int]]:
    """(Pillow format name, decoded shape ``(H, W, C)``) from the header only (no decode).

    Raises ``ValueError`` when ``data`` is not an image Pillow can open.
    """
    Image = _pil()
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            return str(im.format), (int(h), int(w), _CHANNELS[_target_mode(im)])
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad input
        raise ValueError(f"not a readable image ({type(e).__name__}: {e})") from None


def decode_image(data: bytes, out: np.ndarray | None = None, name: str = "") -> np.ndarray:
    """Decode an encoded image to a uint8 ``(H, W, C)`` array (C = 1, 3 or 4, see module doc)
    with libavcodec (the C++ core), into ``out`` when given.

        >>> decode_image(open("000001.jpg", "rb").read()).shape
        (1080, 1920, 3)
    """
    from . import _core

    # The output row already says how many channels; only a fresh decode reads the header.
    channels = out.shape[2] if out is not None and out.ndim == 3 else image_header(data)[1][2]
    return _core.decode_image(data, out, channels, name)


def encode_image(arr: np.ndarray, compression: str) -> bytes:
    """Encode a uint8 ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` array
    (4 channels not for jpg) as ``compression``."""
    Image = _pil()
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        mode = "L"
    elif a.ndim == 3 and a.shape[2] in (3, 4):
        mode = "RGB" if a.shape[2] == 3 else "RGBA"
    else:
        raise ValueError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {a.shape}")
    c = compression.lower()
    if c in ("jpg", "jpeg") and mode == "RGBA":
        raise ValueError("jpg has no alpha channel: append (H, W, 3) arrays or use a png / webp tensor")
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8), mode)
    buf = io.BytesIO()
    if c in ("jpg", "jpeg"):
        im.save(buf, "JPEG", quality=95)
    elif c == "png":
        im.save(buf, "PNG")
    elif c == "webp":
        im.save(buf, "WEBP", quality=95)
    else:
        raise ValueError(f"cannot encode images as {compression!r}; accepted: {', '.join(IMAGE_COMPRESSIONS)}")
    return buf.getvalue()


def _image_bytes(sample: Any) -> tuple[bytes, str | None]:
    """(encoded bytes, filename) of a sample appended to an image tensor (not arrays)."""
    from .sample import Sample

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
    from .annotations import safe_cast
    from .htypes import PreparedSample

    if isinstance(sample, np.ndarray):
        arr = safe_cast(sample, np.uint8, tensor)
        try:
            data = encode_image(arr, compression)
        except ValueError as e:
            raise HtypeError(f"tensor {tensor!r} (htype 'image'): {e}") from None
        fmt_name, shape = image_header(data)
        return PreparedSample(data, {"shape": list(shape), "format": _FORMAT_NAME[fmt_name], "filename": None})
    data, filename = _image_bytes(sample)
    what = repr(filename) if filename else "the image bytes"
    if not data:
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: the file is empty (0 bytes)")
    try:
        fmt_name, shape = image_header(data)
    except ValueError as e:
        raise SampleAppendError(f"cannot append {what} to {tensor!r}: {e}") from None
    family = _FAMILIES.get(fmt_name, ())
    if compression not in family:
        real = _FORMAT_NAME.get(fmt_name, fmt_name.lower())
        raise SampleAppendError(
            f"cannot append {what} to {tensor!r}: the file is {real} but the tensor's sample_compression "
            f"is {compression!r}. Append it to a tensor created with sample_compression={real!r} "
            "or convert it first"
        )
    return PreparedSample(data, {"shape": list(shape), "format": _FORMAT_NAME[fmt_name], "filename": filename})
