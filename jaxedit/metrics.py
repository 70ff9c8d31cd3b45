"""Locality of an edit: masked MSE inside / outside a region and ROIR; the CIELAB error and
In/Out-MSE of Editing in Style.

For an edit ``Δ = edited - original`` (images ``[N, H, W, C]``) and a region mask M (resampled
to the image grid):

* ``mse_inside  = Σ M ⊙ Δ² / (n_inside · C)``, ``mse_outside = Σ (1 − M) ⊙ Δ² / (n_outside · C)``
  (means over the pixels of each part), averaged over samples;
* ``roir = mean_n ‖(1 − M) ⊙ Δ_n‖ / ‖M ⊙ Δ_n‖`` (region-outside-to-inside ratio: lower = more
  local).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._checks import as_float_array, check_finite, finite_scalar
from ._resample import resize_masks
from .editing import render_edits
from .regions import RegionLike, generator_preset_set, preset, region_mask
from .sampling import Compute, Sampling, as_compute, as_sampling


def locality(original, edited, region: RegionLike) -> dict[str, float]:
    """original, edited: ``[N, H, W, C]`` -> ``{"mse_inside", "mse_outside", "roir"}`` (+ per sample).

    Non-finite images raise ValueError. A sample whose edit leaves the region unchanged has ROIR
    ``inf`` (``nan`` if nothing changed at all).
    """
    x0, x1 = np.asarray(original, np.float64), np.asarray(edited, np.float64)
    if x0.shape != x1.shape or x0.ndim != 4:
        raise ValueError(
            f"original and edited must both be [N, H, W, C], got {x0.shape} and {x1.shape}"
        )
    for name, x in (("original", x0), ("edited", x1)):
        bad = int(x.size - np.isfinite(x).sum())
        if bad:
            raise ValueError(
                f"the {name} images contain {bad} non-finite value(s) (NaN or inf): "
                "the generator's output is invalid"
            )
    m = region_mask(region, x0.shape[1:3]).astype(np.float64)[None, :, :, None]
    d2 = (x1 - x0) ** 2
    c = x0.shape[-1]
    inside = (d2 * m).sum(axis=(1, 2, 3))
    outside = (d2 * (1 - m)).sum(axis=(1, 2, 3))
    n_in = m.sum() * c
    n_out = (1 - m).sum() * c
    with np.errstate(divide="ignore", invalid="ignore"):
        roir = np.sqrt(outside) / np.sqrt(inside)
    return {
        "mse_inside": float(np.mean(inside / n_in)),
        "mse_outside": float(np.mean(outside / n_out)),
        "roir": float(np.mean(roir)),
        "roir_per_sample": roir.tolist(),
    }


def evaluate_direction(
    gen,
    latents,
    direction,
    region: RegionLike,
    *,
    alpha: float = 3.0,
    space: str = "w",
    slots: Sequence[int] | None = None,
    sampling: Sampling | None = None,
    compute: Compute | None = None,
) -> dict[str, float]:
    """`locality` of ``latents + alpha * direction`` (unit-normalized) against ``latents``.

    ``latents``/``space``/``slots`` as `jaxedit.editing.edit_latents`. A non-finite or
    zero direction, or a non-finite alpha, raises ValueError.

    Args:
      gen: the generator.
      latents: as `jaxedit.render_edits`.
      direction: ``[D]``.
      region: the region (mask ``[H, W]``, Box, preset name or tuple; a short preset name such
        as ``"eyes"`` resolves by the generator: `jaxedit.regions.generator_preset_set`).
      alpha: the edit size.
      space: the latent space of the direction.
      slots: W+ slots that move (None = all).
      sampling: a `jaxedit.Sampling` (None: ``Sampling()``), as `jaxedit.render_edits`.
      compute: a `jaxedit.Compute` (None: ``Compute()``), as `jaxedit.render_edits`.

    Returns:
      `locality`'s dict plus ``"alpha"``.

    Raises:
      TypeError: ``sampling`` / ``compute`` of the wrong type.
      ValueError: a non-finite or zero direction, a non-finite alpha.
    """
    sampling = as_sampling(sampling)
    compute = as_compute(compute)
    alpha = finite_scalar("alpha", alpha)
    check_finite("direction", direction)
    d = np.asarray(direction, np.float64)
    norm = np.linalg.norm(d)
    if norm == 0:
        raise ValueError("direction is all zeros: it has no direction to normalize")
    d = d / norm
    imgs = render_edits(
        gen,
        latents,
        d,
        [0.0, float(alpha)],
        space=space,
        slots=slots,
        sampling=sampling,
        compute=compute,
    )
    if isinstance(region, str) and "," not in region:  # a short name resolves by the generator
        region = preset(region, prefer=generator_preset_set(gen))
    out = locality(imgs[0], imgs[1], region)
    out["alpha"] = float(alpha)
    return out


# ------------------------------------------------------------------------------------------------
# CIELAB error and locality
# ------------------------------------------------------------------------------------------------
_HIGHEST = lax.Precision.HIGHEST

# sRGB (D65) -> XYZ, rows X, Y, Z (IEC 61966-2-1 primaries as printed in the reference).
SRGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
D65_WHITE = (95.047, 100.0, 108.883)


def rgb_to_lab(
    rgb, *, parity: bool = False, value_range=(-1.0, 1.0), shift: bool = True
) -> jax.Array:
    """sRGB ``[..., 3]`` -> CIELAB ``[..., 3]`` (L, a, b) as the reference's ``rgb2lab``.

    ``value_range`` maps the input to [0, 1] (jaxedit images are in [-1, 1]); values are then
    clipped to [0, 1]. sRGB is linearized (threshold 0.04045, exponent 2.4), ×100, taken to XYZ,
    divided by the D65 white (95.047, 100, 108.883) and mapped with the Lab function (0.008856,
    7.787, 16/116). ``parity=True`` multiplies the row vector by the matrix itself (the
    reference's ``rgb @ M``, i.e. the transposed transform); False uses the correct ``M @ rgb``.
    ``shift``: L ×2.55 and a, b +128 (the reference's 0..255 scale).
    """
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}")
    x = as_float_array(rgb)
    if x.shape[-1:] != (3,):
        raise ValueError(f"rgb must be [..., 3], got shape {tuple(x.shape)}")
    x = jnp.clip((x - lo) / (hi - lo), 0, 1)
    lin = (
        jnp.where(x > 0.04045, ((jnp.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92) * 100
    )
    M = jnp.asarray(SRGB_TO_XYZ, x.dtype)
    xyz = jnp.dot(lin, M if parity else M.T, precision=_HIGHEST)
    xyz = xyz / jnp.asarray(D65_WHITE, x.dtype)
    f = jnp.where(xyz > 0.008856, jnp.cbrt(jnp.maximum(xyz, 0.008856)), 7.787 * xyz + 16 / 116)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    if shift:
        L, a, b = L * 2.55, a + 128, b + 128
    return jnp.stack([L, a, b], axis=-1)


def lab_squared_error(a, b, parity: bool = False, *, value_range=(-1.0, 1.0)) -> jax.Array:
    """Per-pixel CIELAB error of the reference: images ``[..., H, W, 3]`` -> ``[..., H, W]`` =
    mean over (L, a, b) of ``(Δ / 255)²`` on the shifted 0..255 scale (see `rgb_to_lab`
    for ``parity`` and ``value_range``)."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    check_finite("a", a)
    check_finite("b", b)
    d = (
        rgb_to_lab(a, parity=parity, value_range=value_range)
        - rgb_to_lab(b, parity=parity, value_range=value_range)
    ) / 255
    return jnp.sum(d * d, axis=-1) / 3


def in_out_mse(error, region, *, resize: str = "nearest") -> dict[str, Any]:
    """In-MSE / Out-MSE of a per-pixel error map over a region.

    Args:
      error: ``[N, H, W]`` (e.g. `lab_squared_error` of target and edited).
      region: ``[H', W']`` or ``[N, H', W']`` weights in [0, 1] (bool or soft), resized to H x W
        with ``resize`` if needed.
    Returns:
      ``{"in_mse", "out_mse", "ratio"}`` (pooled over all samples: ``Σ m·e / Σ m`` and
      ``Σ (1−m)·e / Σ (1−m)``; ratio = out / in, NaN when in is 0) plus per-sample lists
      ``"in_per_sample"``, ``"out_per_sample"`` (NaN where a sample's region or its complement is
      empty).
    """
    e = np.asarray(check_finite("error", error), np.float64)
    if e.ndim != 3:
        raise ValueError(f"error must be [N, H, W], got shape {e.shape}")
    m = jnp.asarray(region)
    if m.ndim not in (2, 3) or (m.ndim == 3 and m.shape[0] not in (1, e.shape[0])):
        raise ValueError(f"region must be [H, W] or [N={e.shape[0]}, H, W], got {tuple(m.shape)}")
    m = np.asarray(
        resize_masks(m.astype(jnp.float32) if m.dtype == bool else m, e.shape[1:], resize),
        np.float64,
    )
    if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
        raise ValueError("region weights must be finite and in [0, 1]")
    m = np.broadcast_to(m, e.shape)
    w_in, w_out = m.sum(), (1 - m).sum()
    if w_in == 0:
        raise ValueError("the region is empty on every sample")
    if w_out == 0:
        raise ValueError("the region covers every pixel: there is no outside")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_in = (m * e).sum(axis=(1, 2)) / m.sum(axis=(1, 2))
        per_out = ((1 - m) * e).sum(axis=(1, 2)) / (1 - m).sum(axis=(1, 2))
    i, o = float((m * e).sum() / w_in), float(((1 - m) * e).sum() / w_out)
    return {
        "in_mse": i,
        "out_mse": o,
        "ratio": o / i if i > 0 else float("nan"),
        "in_per_sample": per_in.tolist(),
        "out_per_sample": per_out.tolist(),
    }


def lab_locality(
    original,
    edited,
    region,
    *,
    parity: bool = False,
    value_range=(-1.0, 1.0),
    resize: str = "nearest",
) -> dict[str, Any]:
    """`in_out_mse` of `lab_squared_error` between images ``[N, H, W, 3]``."""
    return in_out_mse(
        lab_squared_error(original, edited, parity, value_range=value_range), region, resize=resize
    )


__all__ = [
    "D65_WHITE",
    "SRGB_TO_XYZ",
    "evaluate_direction",
    "in_out_mse",
    "lab_locality",
    "lab_squared_error",
    "locality",
    "rgb_to_lab",
]
