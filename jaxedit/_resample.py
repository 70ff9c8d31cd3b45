"""Resampling of masks and feature maps between grids: one home for every resize rule.

Every function takes the input size first and the output size second (``n_in, n_out``); the
matrices are ``[n_out, n_in]`` so that ``P @ x`` resamples the first axis of ``x``.

* `nearest_index`: torch ``F.interpolate(mode="nearest")`` (output i reads input
  ``floor(i · n_in / n_out)``), the Editing in Style reference's mask resize.
* `area_matrix`: torch ``adaptive_avg_pool`` / ``mode="area"`` (output i averages the whole
  input pixels ``floor(i·n_in/n_out) .. ceil((i+1)·n_in/n_out) − 1``).
* `coverage_matrix`: the exact box filter (the fraction of output cell i covered by input pixel
  j), used by the region presets. It equals `area_matrix` when one size divides the other.
* `resize_masks`: ``[..., H, W]`` masks / heatmaps by ``"nearest"`` or ``"area"``.
* `lanczos_upsample`: Lanczos-3 resize of soft maps (PandA's part maps), JAX or PIL.
* `nearest_centres`: nearest neighbour at pixel centres (PandA's mask comparison).

This module is a ground floor: it imports nothing of jaxedit's but ``_checks``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._checks import RESIZE_MODES, as_float_array, check_resize, pair

_HIGHEST = lax.Precision.HIGHEST


# ------------------------------------------------------------------------------------------------
# 1-D resampling rules (index vectors and [n_out, n_in] matrices)
# ------------------------------------------------------------------------------------------------
def nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """torch ``F.interpolate(mode="nearest")``: output i reads input ``floor(i · n_in / n_out)``.

    Args:
      n_in: input length.
      n_out: output length.

    Returns:
      ``[n_out]`` int indices into the input.
    """
    return (np.arange(n_out) * n_in) // n_out


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Adaptive average pooling ``[n_out, n_in]`` (torch ``adaptive_avg_pool``/``mode="area"``):
    output i averages inputs ``floor(i·n_in/n_out) .. ceil((i+1)·n_in/n_out) − 1``.

    Args:
      n_in: input length.
      n_out: output length.

    Returns:
      ``[n_out, n_in]`` float64, rows summing to 1.
    """
    P = np.zeros((n_out, n_in))
    for i in range(n_out):
        a, b = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        P[i, a:b] = 1.0 / (b - a)
    return P


def coverage_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Exact box filter: the fraction of output cell i covered by input pixel j.

    Args:
      n_in: input length.
      n_out: output length.

    Returns:
      ``[n_out, n_in]`` float64, rows summing to 1.
    """
    edges_out = np.arange(n_out + 1) * (n_in / n_out)
    lo = np.maximum(edges_out[:-1, None], np.arange(n_in)[None, :])
    hi = np.minimum(edges_out[1:, None], np.arange(n_in)[None, :] + 1)
    return np.clip(hi - lo, 0, None) * (n_out / n_in)


# ------------------------------------------------------------------------------------------------
# Masks / heatmaps
# ------------------------------------------------------------------------------------------------
def resize_masks(masks, size, mode: str = "nearest") -> jax.Array:
    """Resample masks / heatmaps to another grid.

    Args:
      masks: ``[..., H0, W0]``.
      size: ``h`` or ``(h, w)``.
      mode: ``"nearest"`` (the reference's ``F.interpolate(mode="nearest")``, up and down: output
        pixel i reads input ``floor(i·H0/h)``, so a down-sampled mask *samples* pixels) or
        ``"area"`` (average of the covered input pixels; equal to nearest when up-sampling by an
        integer factor).
    Returns:
      ``[..., h, w]``.
    """
    check_resize(mode)
    masks = jnp.asarray(masks)
    if masks.ndim < 2:
        raise ValueError(f"masks must be [..., H, W], got shape {tuple(masks.shape)}")
    h, w = pair(size)
    H0, W0 = masks.shape[-2:]
    if (h, w) == (H0, W0):
        return masks
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {(h, w)}")
    if mode == "nearest":
        return masks[..., nearest_index(H0, h)[:, None], nearest_index(W0, w)[None, :]]
    m = as_float_array(masks)
    Ph = jnp.asarray(area_matrix(H0, h), m.dtype)
    Pw = jnp.asarray(area_matrix(W0, w), m.dtype)
    return jnp.einsum("hH,...HW,wW->...hw", Ph, m, Pw, precision=_HIGHEST)


# ------------------------------------------------------------------------------------------------
# PandA's rules: Lanczos-3 maps, nearest at pixel centres


def lanczos_upsample(maps, size, *, backend: str = "jax") -> np.ndarray:
    """Lanczos-3 resize of float maps ``[..., h, w]`` -> ``[..., H, W]`` (float32).

    ``backend="jax"`` (default): ``jax.image.resize(method="lanczos3")``, batched on the device;
    ``"pil"``: PIL's ``LANCZOS`` map by map on float32 ``"F"`` images, the reference notebook's
    call. The two agree to float32 rounding (≤ 3e-6 absolute on unit-scale maps, measured for
    8->64, 16->256, 7->100, 32->1024, 64->512, 16->24 and 64->32; tested), so thresholded masks
    can differ only where a value is within that of the threshold.
    """
    hh, ww = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    m = np.asarray(maps, np.float32)
    if backend == "jax":
        out = jax.image.resize(jnp.asarray(m), m.shape[:-2] + (hh, ww), method="lanczos3")
        return np.asarray(out, np.float32)
    if backend != "pil":
        raise ValueError(f"backend must be 'jax' or 'pil', got {backend!r}")
    from PIL import Image

    flat = m.reshape((-1,) + m.shape[-2:])
    filters: Any = getattr(Image, "Resampling", Image)  # Pillow < 9.1: on Image
    lanczos = filters.LANCZOS
    out = np.stack(
        [np.asarray(Image.fromarray(f, mode="F").resize((int(ww), int(hh)), lanczos)) for f in flat]
    )
    return out.reshape(m.shape[:-2] + (hh, ww))


def nearest_centres(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """[..., h0, w0] bool -> [..., h, w] by nearest neighbour at pixel centres."""
    rows = np.floor((np.arange(h) + 0.5) * mask.shape[-2] / h).astype(int)
    cols = np.floor((np.arange(w) + 0.5) * mask.shape[-1] / w).astype(int)
    return mask[..., rows, :][..., cols]


__all__ = [
    "RESIZE_MODES",
    "area_matrix",
    "coverage_matrix",
    "lanczos_upsample",
    "nearest_centres",
    "nearest_index",
    "resize_masks",
]
