"""Still images: the ``image`` htype's encoding, validation and decoding.

An ``image`` sample is stored as its encoded file (jpg / png / webp), byte for byte when it was
appended as ``vidlake.read(path)`` or as bytes; a numpy array is encoded to the tensor's
``sample_compression`` first (png losslessly, jpg / webp at quality 95).

Decoded images are uint8 arrays of shape ``(H, W, C)``: ``C = 3`` (RGB) for colour images,
``C = 1`` for grayscale ones and ``C = 4`` (RGBA) for images with transparency. The shape is
read from the file header at append time (no decode), so ``ds.images[i].shape`` needs no I/O
beyond the sample table.

    >>> from vidlake.video import decode_image, encode_image
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
from typing import Any

import numpy as np

from .. import _core

__all__ = [
    "IMAGE_COMPRESSIONS",
    "decode_image",
    "encode_image",
    "image_header",
]

#: accepted ``sample_compression`` values of ``image`` tensors (``jpeg`` is ``jpg``)
IMAGE_COMPRESSIONS = ("jpg", "jpeg", "png", "webp")

#: Pillow format name -> the compressions that name a file of that format
IMAGE_FAMILIES = {"JPEG": ("jpg", "jpeg"), "MPO": ("jpg", "jpeg"), "PNG": ("png",), "WEBP": ("webp",)}
#: the name recorded in ``sample_info["format"]``
IMAGE_FORMAT_NAME = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp"}


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
