"""Image helpers: float NHWC in [-1, 1] -> uint8, grids, PNG files (written under the output
policy of `jaxedit._io`: atomically, symlinks followed, special files refused)."""

from __future__ import annotations

import os

import numpy as np

from ._typing import ImageBatch, ImagesLike, Uint8Array, Uint8Grid, Uint8Image, Uint8Images


def to_uint8(img: ImagesLike) -> Uint8Array:
    """[..., H, W, C] floats in [-1, 1] -> uint8 as NVIDIA's ``generate.py`` (``x*127.5+128``).

    Raises ValueError if any value is NaN or infinite (it would silently become black).
    """
    x = np.asarray(img, np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(
            f"the images contain {int(bad.sum())} non-finite value(s) (NaN or inf) "
            f"out of {x.size}: the generator's output is invalid (non-finite inputs "
            "or weights?)"
        )
    return np.clip(x * 127.5 + 128, 0, 255).astype(np.uint8)


def image_grid(imgs: Uint8Images, cols: int | None = None) -> Uint8Grid:
    """[N, H, W, C] uint8 -> one [rows*H, cols*W, C] image (``cols`` defaults to N)."""
    imgs = np.asarray(imgs)
    if imgs.ndim != 4 or imgs.shape[0] == 0:
        raise ValueError(f"images must be [N, H, W, C] with N >= 1, got shape {imgs.shape}")
    n, h, w, c = imgs.shape
    cols = int(n) if cols is None else int(cols)
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, c), imgs.dtype)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * h : (r + 1) * h, q * w : (q + 1) * w] = imgs[i]
    return grid


def save_png(image: Uint8Image, path: str | os.PathLike, *, overwrite: bool = True) -> str:
    """Write a [H, W, 3|1] uint8 image to ``path`` (atomically; ``overwrite=False`` refuses an
    existing file). Returns the path written (a symlink's target)."""
    from PIL import Image

    from ._io import atomic_output

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] not in (1, 3) or img.dtype != np.uint8:
        raise ValueError(f"save_png needs a [H, W, 1|3] uint8 image, got {img.shape} {img.dtype}")
    if img.shape[-1] == 1:
        img = img[..., 0]
    pil = Image.fromarray(img)
    with atomic_output(path, overwrite=overwrite, suffix=".png") as f:
        pil.save(f, format="PNG")
    return os.path.realpath(os.fspath(path))


def save_image_grid(
    imgs: ImageBatch, path: str | os.PathLike, cols: int | None = None, *, overwrite: bool = True
) -> str:
    """[N, H, W, C] floats in [-1, 1] -> a PNG grid at ``path``."""
    return save_png(image_grid(to_uint8(imgs), cols), path, overwrite=overwrite)
