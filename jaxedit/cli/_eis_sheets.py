"""Contact sheets of the ``jaxedit eis`` commands: sample cells, row labels, cluster heatmaps."""

from __future__ import annotations

import numpy as np


def cell_images(imgs_u8: np.ndarray, size: int) -> np.ndarray:
    """[N, R, R, 3] uint8 -> cells of side ``size`` at most (block average when R > size; small
    models are enlarged by an integer factor to about 64 px)."""
    r = imgs_u8.shape[1]
    if size >= r:
        up = max(1, min(size, 64) // r)
        return imgs_u8.repeat(up, axis=1).repeat(up, axis=2)
    s = -(-r // size)
    side = r // s
    x = imgs_u8[:, : side * s, : side * s].astype(np.float64)
    x = x.reshape(x.shape[0], side, s, side, s, x.shape[-1]).mean(axis=(2, 4))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def text_column(labels, cell: int, width: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    col = Image.new("RGB", (width, cell * len(labels)), (255, 255, 255))
    draw = ImageDraw.Draw(col)
    for i, text in enumerate(labels):
        draw.text((2, i * cell + max(0, cell // 2 - 5)), text, fill=(0, 0, 0))
    return np.asarray(col)


def heatmap_sheet(images, heatmaps, cell: int) -> np.ndarray:
    """Row 0: the samples; row 1 + k: each sample dimmed outside cluster k. A left column names
    the rows (cluster id and its share of the pixels)."""
    from ..images import image_grid, to_uint8
    from ..methods.eis import resize_masks

    imgs = cell_images(to_uint8(images), cell)  # [N, c, c, 3]
    n, k = heatmaps.shape[:2]
    masks = np.asarray(resize_masks(heatmaps, imgs.shape[1], "nearest"))  # [N, K, c, c]
    rows = [imgs]
    for j in range(k):
        w = 0.2 + 0.8 * masks[:, j, :, :, None]
        rows.append(np.clip(imgs * w, 0, 255).astype(np.uint8))
    grid = image_grid(np.concatenate(rows), cols=n)
    share = [float(masks[:, j].mean()) for j in range(k)]
    names = ["sample"] + [f"{j} ({100 * share[j]:.0f}%)" for j in range(k)]
    return np.concatenate([text_column(names, imgs.shape[1], 64), grid], axis=1)
