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

This module is a ground floor: it imports nothing of jaxedit's but ``_checks``.
"""

from __future__ import annotations

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


__all__ = ["RESIZE_MODES", "area_matrix", "coverage_matrix", "nearest_index", "resize_masks"]
