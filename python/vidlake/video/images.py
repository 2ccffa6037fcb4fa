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

Decoding goes through the C++ core into a numpy buffer (``out=`` to reuse one), with the GIL
released. The image decoder (``image_decoder``, :data:`IMAGE_DECODERS`):

* ``"pillow"`` (default): Pillow's pixels, ``np.asarray(Image.open(f).convert(mode))`` bit for
  bit (what users of Deep Lake and torchvision trained on). JPEG is decoded in the core by
  libjpeg-turbo, the library Pillow's wheels bundle, with the calls Pillow makes (C++,
  ``cpp/jpeg_decoder.cpp``; CMYK JPEGs converted as Pillow converts them); WebP by Pillow itself
  (libwebp: its lossy pictures differ from libavcodec's by a few levels); PNG by libavcodec.
* ``"ffmpeg"``: every format through libavcodec and libswscale, the path and conversion of
  video frames (a JPEG equals a PyAV decode of it; up to ~40 levels from Pillow's pixels).

PNG is lossless, so both give Pillow's pixels (16-bit PNGs: the high byte of each sample, where
Pillow's ``convert("L")`` would clip). A JPEG that libjpeg-turbo cannot take (lossless or
12-bit JPEG) is decoded by libavcodec either way. Pillow otherwise only reads headers (size and
mode, no decode) and encodes numpy arrays appended as images. The decoder of a read is the
``image_decoder`` argument, else the one set by :func:`using_image_decoder` around it (dataset
reads: the read option or the tensor's ``read_options``), else ``"pillow"``.
"""
from __future__ import annotations

import contextlib
import contextvars
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _core
from ..errors import VideoDecodeError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "IMAGE_COMPRESSIONS",
    "IMAGE_DECODERS",
    "JPEG_LIBRARY",
    "check_image_decoder",
    "current_image_decoder",
    "decode_image",
    "encode_image",
    "image_header",
    "using_image_decoder",
]

#: the image decoders; the first is the default
IMAGE_DECODERS = ("pillow", "ffmpeg")
#: the libjpeg-turbo this build decodes JPEG with, e.g. ``"libjpeg-turbo 2.1.5"``
JPEG_LIBRARY: str = _core.JPEG_LIBRARY

_DECODER: contextvars.ContextVar[str | None] = contextvars.ContextVar("vidlake_image_decoder", default=None)


def check_image_decoder(name: Any, what: str = "image_decoder") -> str:
    """``name`` if it is one of :data:`IMAGE_DECODERS`, else ``ValueError`` naming ``what``."""
    if name not in IMAGE_DECODERS:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, IMAGE_DECODERS))}, got {name!r}")
    return str(name)


@contextlib.contextmanager
def using_image_decoder(name: str | None) -> Iterator[None]:
    """Within the block (this thread / task), images decode with ``name`` unless a call says
    otherwise; ``None`` changes nothing.

        >>> with using_image_decoder("ffmpeg"):
        ...     a = decode_image(encode_image(np.zeros((2, 2, 3), np.uint8), "jpg"))
    """
    if name is None:
        yield
        return
    token = _DECODER.set(check_image_decoder(name))
    try:
        yield
    finally:
        _DECODER.reset(token)


def current_image_decoder(default: str | None = None) -> str:
    """The decoder :func:`decode_image` uses without an argument: the innermost
    :func:`using_image_decoder`, else ``default``, else ``"pillow"``."""
    return _DECODER.get() or default or IMAGE_DECODERS[0]

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


def decode_image(data: bytes, out: np.ndarray | None = None, name: str = "",
                 image_decoder: str | None = None) -> np.ndarray:
    """Decode an encoded image to a uint8 ``(H, W, C)`` array (C = 1, 3 or 4, see module doc)
    into ``out`` when given. ``image_decoder``: ``"pillow"`` (Pillow's pixels) or ``"ffmpeg"``
    (libavcodec); ``None``: see the module doc.

        >>> decode_image(open("000001.jpg", "rb").read()).shape
        (1080, 1920, 3)
    """
    dec = check_image_decoder(image_decoder) if image_decoder is not None else current_image_decoder()
    if dec == "pillow" and bytes(data[:4]) == b"RIFF" and bytes(data[8:12]) == b"WEBP":
        return _pillow_decode(data, out, name)
    # The output row already says how many channels; only a fresh decode reads the header.
    channels = out.shape[2] if out is not None and out.ndim == 3 else image_header(data)[1][2]
    return _core.decode_image(data, out, channels, name, "libjpeg-turbo" if dec == "pillow" else "ffmpeg")


def _pillow_decode(data: bytes, out: np.ndarray | None, name: str) -> np.ndarray:
    """Pillow's own decode (WebP: libwebp's pixels), converted to the module's channel rules."""
    Image = _pil()
    try:
        with Image.open(io.BytesIO(data)) as im:
            mode = _target_mode(im) if out is None or out.ndim != 3 else {1: "L", 3: "RGB", 4: "RGBA"}[out.shape[2]]
            a = np.asarray(im.convert(mode))
    except (OSError, ValueError, SyntaxError, KeyError) as e:
        raise VideoDecodeError(f"{name or 'image'}: cannot decode the image ({type(e).__name__}: {e})") from None
    if a.ndim == 2:
        a = a[:, :, None]
    if out is None:
        return np.ascontiguousarray(a)
    if out.shape != a.shape or out.dtype != np.uint8:
        raise ValueError(f"{name or 'image'}: out must be a uint8 array of shape {a.shape}, got {out.dtype} {out.shape}")
    out[...] = a
    return out


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
