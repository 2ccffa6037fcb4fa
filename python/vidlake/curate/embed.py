"""Frame embeddings for selection: the hook ``embed(frames_uint8_nhwc) -> (n, d) float32`` and a
built-in default that needs no download, no GPU and no model.

    >>> from vidlake.curate import default_embed, torch_embedder
    >>> default_embed(frames).shape                   # frames (n, 64, 64, 3) uint8
    (n, 160)
    >>> embed = torch_embedder(my_cpu_model, size=(112, 112))   # any torch module, CPU

An embedder is any callable taking a uint8 array (n, h, w, 3) and returning (n, d) float32.
Two optional attributes steer :func:`vidlake.select`: ``size`` (h, w), the size frames are
decoded at (in the decoder's swscale pass, so no full-size frame is ever made), and ``name``,
which keys stored embeddings (change it when the model changes).

Note [The default embedding]
``default_embed`` (``name="vidlake-default-v1"``, ``size=(64, 64)``) joins three unit-length
blocks, each weighted 1/sqrt(3) (so the whole vector has length 1, and Euclidean distances lie in
[0, 2]; a block that is all zero, as layout and texture of a flat frame, stays zero):

* colour: a joint RGB histogram with 4 levels per channel (64 bins), square-rooted (the
  Hellinger map, so a big colour region does not drown the rest). Captures what colours are in
  the picture and how much, regardless of where.
* layout: the luma plane pooled to an 8x8 thumbnail, mean removed, scaled to unit length.
  Captures where light and dark are (horizon, big objects, framing), independent of exposure.
* texture: gradient orientations (of luma at half size) in 8 bins weighted by magnitude, in
  each quarter of the picture (32 bins). Captures edge direction and density (buildings vs foliage vs sky).

Limits: it knows nothing of what things are (two red cars and a red wall can be close; the
same person in two different shirts is far); it moves with lighting changes and colour
grading, and camera shake shifts the layout block; tiny objects barely register at 64x64.
Good for deduplicating near-identical frames and spreading a budget over visibly different
scenes; use a learned model through the hook for semantic diversity.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_EMBED_SIZE", "default_embed", "embedder_name", "embedder_size", "torch_embedder"]

#: (height, width) frames are decoded at for :func:`default_embed`
DEFAULT_EMBED_SIZE = (64, 64)
_LEVELS = 4
_THUMB = 8
_ORIENT = 8


def _luma(frames: np.ndarray) -> np.ndarray:
    """BT.601 luma in 0..255 as float32, from integer weights (77, 150, 29) / 256."""
    f = frames.astype(np.uint16)
    y = f[..., 0] * 77 + f[..., 1] * 150 + f[..., 2] * 29
    return (y >> 8).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _pool(a: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Mean of (n, H, W) over an out_h x out_w grid of (nearly) equal cells."""
    _, h, w = a.shape
    if h % out_h == 0 and w % out_w == 0:
        return a.reshape(a.shape[0], out_h, h // out_h, out_w, w // out_w).mean(axis=(2, 4))
    ys = np.linspace(0, h, out_h + 1).astype(int)
    xs = np.linspace(0, w, out_w + 1).astype(int)
    rows = np.add.reduceat(a, ys[:-1], axis=1) / np.diff(ys)[None, :, None]
    return np.add.reduceat(rows, xs[:-1], axis=2) / np.diff(xs)[None, None, :]


def default_embed(frames: np.ndarray) -> np.ndarray:
    """The built-in embedding (Note [The default embedding]): colour histogram, gray layout
    thumbnail and gradient-orientation histogram, (n, 160) float32 of unit length.

        >>> default_embed(np.zeros((2, 64, 64, 3), np.uint8)).shape
        (2, 160)
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"default_embed takes uint8 frames (n, h, w, 3), got {frames.dtype} {frames.shape}")
    n, h, w, _ = frames.shape
    if n == 0:
        return np.zeros((0, 160), np.float32)
    # colour: 4 levels per channel are the top two bits
    q = frames >> 6
    code = ((q[..., 0] << 4) | (q[..., 1] << 2) | q[..., 2]).reshape(n, -1).astype(np.int32)
    code += (np.arange(n, dtype=np.int32) * _LEVELS ** 3)[:, None]
    hist = np.bincount(code.ravel(), minlength=n * _LEVELS ** 3)
    colour = np.sqrt(hist.reshape(n, -1).astype(np.float32) / float(h * w))
    # layout
    y = _luma(frames)
    thumb = _pool(y, min(_THUMB, h), min(_THUMB, w)).reshape(n, -1)
    thumb = thumb - thumb.mean(axis=1, keepdims=True)
    if thumb.shape[1] < _THUMB * _THUMB:
        thumb = np.pad(thumb, ((0, 0), (0, _THUMB * _THUMB - thumb.shape[1])))
    # texture, on luma at half size (at most 32x32: edges of the 64x64 frame, a quarter of the work)
    ys = _pool(y, max(1, h // 2), max(1, w // 2)) if h >= 4 and w >= 4 else y
    gh, gw = ys.shape[1:]
    gx = np.zeros_like(ys)
    gy = np.zeros_like(ys)
    gx[:, :, 1:-1] = ys[:, :, 2:] - ys[:, :, :-2]
    gy[:, 1:-1, :] = ys[:, 2:, :] - ys[:, :-2, :]
    mag = np.sqrt(gx * gx + gy * gy)
    ang = np.arctan2(gy, gx)
    ang[ang < 0] += np.pi  # orientation, not direction
    b = np.minimum((ang * (_ORIENT / np.pi)).astype(np.int32), _ORIENT - 1)
    cell = (np.arange(gh)[:, None] * 2 // gh) * 2 + (np.arange(gw)[None, :] * 2 // gw)
    idx = (cell[None].astype(np.int32) * _ORIENT + b) + (np.arange(n, dtype=np.int32) * 4 * _ORIENT)[:, None, None]
    tex = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=n * 4 * _ORIENT).reshape(n, -1)
    blocks = [_unit(colour), _unit(thumb.astype(np.float32)), _unit(tex.astype(np.float32))]
    return (np.concatenate(blocks, axis=1) / np.sqrt(3.0)).astype(np.float32)


default_embed.size = DEFAULT_EMBED_SIZE  # type: ignore[attr-defined]
default_embed.name = "vidlake-default-v1"  # type: ignore[attr-defined]


def embedder_size(embed: Callable[..., Any], fallback: tuple[int, int] = (224, 224)) -> tuple[int, int]:
    """The (h, w) an embedder wants (its ``size`` attribute), else ``fallback``."""
    s = getattr(embed, "size", None)
    if s is None:
        return fallback
    h, w = (int(s), int(s)) if isinstance(s, (int, np.integer)) else (int(s[0]), int(s[1]))
    if h <= 0 or w <= 0:
        raise ValueError(f"embedder size must be positive (h, w), got {s!r}")
    return h, w


def embedder_name(embed: Callable[..., Any]) -> str:
    """What keys stored embeddings: the ``name`` attribute, else the callable's qualified name."""
    n = getattr(embed, "name", None)
    if isinstance(n, str) and n:
        return n
    return f"{getattr(embed, '__module__', '?')}.{getattr(embed, '__qualname__', type(embed).__name__)}"


def torch_embedder(model: Any, size: tuple[int, int] = (224, 224), *, name: str | None = None,
                   mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
                   std: tuple[float, float, float] = (0.229, 0.224, 0.225),
                   device: str = "cpu", batch: int = 64) -> Callable[[np.ndarray], np.ndarray]:
    """An embedder from a torch module: frames become float NCHW in [0, 1], normalised by
    ``mean``/``std`` (ImageNet's by default), run through ``model`` in eval mode without
    gradients, and flattened to (n, d) float32.

        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
        >>> embed = torch_embedder(net, size=(64, 64), name="tiny-cnn")
        >>> embed(np.zeros((3, 64, 64, 3), np.uint8)).shape
        (3, 32)
    """
    import torch

    model = model.to(device).eval()
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def embed(frames: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(frames), batch):
                x = torch.from_numpy(np.ascontiguousarray(frames[i:i + batch])).to(device)
                x = (x.permute(0, 3, 1, 2).float() / 255.0 - m) / s
                out.append(model(x).reshape(x.shape[0], -1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    embed.size = tuple(size)  # type: ignore[attr-defined]
    embed.name = name or f"torch:{type(model).__name__}"  # type: ignore[attr-defined]
    return embed
