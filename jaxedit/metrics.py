"""Locality of an edit: masked MSE inside / outside a region and ROIR.

For an edit ``Δ = edited - original`` (images ``[N, H, W, C]``) and a region mask M (resampled
to the image grid):

* ``mse_inside  = Σ M ⊙ Δ² / (n_inside · C)``, ``mse_outside = Σ (1 − M) ⊙ Δ² / (n_outside · C)``
  (means over the pixels of each part), averaged over samples;
* ``roir = mean_n ‖(1 − M) ⊙ Δ_n‖ / ‖M ⊙ Δ_n‖`` (region-outside-to-inside ratio: lower = more
  local).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _ops
from ._checks import check_finite, finite_scalar
from .editing import render_edits
from .regions import RegionLike, region_mask


def locality(original, edited, region: RegionLike) -> dict[str, float]:
    """original, edited: ``[N, H, W, C]`` -> ``{"mse_inside", "mse_outside", "roir"}`` (+ per sample).

    Non-finite images raise ValueError. A sample whose edit leaves the region unchanged has ROIR
    ``inf`` (``nan`` if nothing changed at all).
    """
    x0, x1 = np.asarray(original, np.float64), np.asarray(edited, np.float64)
    if x0.shape != x1.shape or x0.ndim != 4:
        raise ValueError(f"original and edited must both be [N, H, W, C], got {x0.shape} and {x1.shape}")
    for name, x in (("original", x0), ("edited", x1)):
        bad = int(x.size - np.isfinite(x).sum())
        if bad:
            raise ValueError(f"the {name} images contain {bad} non-finite value(s) (NaN or inf): "
                             "the generator's output is invalid")
    m = region_mask(region, x0.shape[1:3]).astype(np.float64)[None, :, :, None]
    d2 = (x1 - x0) ** 2
    c = x0.shape[-1]
    inside = (d2 * m).sum(axis=(1, 2, 3))
    outside = (d2 * (1 - m)).sum(axis=(1, 2, 3))
    n_in = m.sum() * c
    n_out = (1 - m).sum() * c
    with np.errstate(divide="ignore", invalid="ignore"):
        roir = np.sqrt(outside) / np.sqrt(inside)
    return {"mse_inside": float(np.mean(inside / n_in)), "mse_outside": float(np.mean(outside / n_out)),
            "roir": float(np.mean(roir)), "roir_per_sample": roir.tolist()}


def evaluate_direction(gen, latents, direction, region: RegionLike, *, alpha: float = 3.0,
                       space: str = "w", slots: Sequence[int] | None = None, c=None,
                       truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                       noise_mode: str = "const", dtype=None,
                       precision: _ops.Precision = "highest") -> dict[str, float]:
    """:func:`locality` of ``latents + alpha * direction`` (unit-normalized) against ``latents``.

    ``latents``/``space``/``slots`` as :func:`jaxedit.editing.edit_latents`. A non-finite or
    zero direction, or a non-finite alpha, raises ValueError.
    """
    alpha = finite_scalar("alpha", alpha)
    check_finite("direction", direction)
    d = np.asarray(direction, np.float64)
    norm = np.linalg.norm(d)
    if norm == 0:
        raise ValueError("direction is all zeros: it has no direction to normalize")
    d = d / norm
    imgs = render_edits(gen, latents, d, [0.0, float(alpha)], space=space, slots=slots, c=c,
                        truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                        noise_mode=noise_mode, dtype=dtype, precision=precision)
    out = locality(imgs[0], imgs[1], region)
    out["alpha"] = float(alpha)
    return out


__all__ = ["evaluate_direction", "locality"]
