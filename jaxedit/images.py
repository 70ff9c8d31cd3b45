"""Image helpers: float NHWC in [-1, 1] -> uint8, grids, PNG files (written atomically)."""

from __future__ import annotations

import os
import tempfile

import numpy as np


def to_uint8(img) -> np.ndarray:
    """[..., H, W, C] floats in [-1, 1] -> uint8 as NVIDIA's ``generate.py`` (``x*127.5+128``)."""
    return np.clip(np.asarray(img, np.float64) * 127.5 + 128, 0, 255).astype(np.uint8)


def image_grid(imgs, cols: int | None = None) -> np.ndarray:
    """[N, H, W, C] uint8 -> one [rows*H, cols*W, C] image."""
    imgs = np.asarray(imgs)
    n, h, w, c = imgs.shape
    cols = cols or n
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, c), imgs.dtype)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = imgs[i]
    return grid


def save_png(image: np.ndarray, path: str | os.PathLike) -> str:
    """Write a [H, W, 3|1] uint8 image to ``path`` atomically."""
    from PIL import Image

    from ._io import replace_file

    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = np.asarray(image)
    if img.shape[-1] == 1:
        img = img[..., 0]
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=os.path.dirname(path))
    os.close(fd)
    try:
        Image.fromarray(img).save(tmp, format="PNG")
        replace_file(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def save_image_grid(imgs, path: str | os.PathLike, cols: int | None = None) -> str:
    """[N, H, W, C] floats in [-1, 1] -> a PNG grid at ``path``."""
    return save_png(image_grid(to_uint8(imgs), cols), path)
