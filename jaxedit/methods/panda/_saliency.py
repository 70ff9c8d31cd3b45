"""Saliency of the appearances: coordinates `Aᵀ Z_i`, the reference's thresholds and binary
concept masks."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ... import _ops
from ..._resample import lanczos_upsample
from ..._typing import Features, Saliency, SampleFeatures, Thresholds
from ...sampling import Compute, as_compute
from ._checks import _check_features, _check_finite
from ._result import PandaResult, _check_result


@functools.partial(jax.jit, static_argnames=("precision",))
def _coords(x, a, *, precision):
    return jnp.einsum("nhwc,cr->nhwr", x, a, precision=precision)


def saliency(
    result: PandaResult, features: SampleFeatures, *, compute: Compute | None = None
) -> Saliency:
    """Coordinates in the appearance basis, ``Aᵀ Z_i``: ``[N, H, W, C]`` -> ``[N, H, W, R_C]``
    (``[H, W, C]`` -> ``[H, W, R_C]``); channel k is the saliency map of appearance k.

    ``compute``: a `jaxedit.Compute` (None = ``Compute()``); only its ``precision`` is read
    (TypeError for another type)."""
    _check_result(result)
    precision = as_compute(compute, "compute").precision
    x = jnp.asarray(features)
    single = x.ndim == 3
    x = _check_features(x[None] if single else x)
    if x.shape[-1] != result.feature_shape[2]:
        raise ValueError(
            f"features have C = {x.shape[-1]} channels, the factors {result.feature_shape[2]}"
        )
    out = _coords(
        x, jnp.asarray(result.appearance, x.dtype), precision=_ops.as_precision(precision)
    )
    return out[0] if single else out


def _concepts(concepts, r_c: int) -> list[int]:
    if concepts is None:
        return list(range(r_c))
    ks = [int(k) for k in ([concepts] if isinstance(concepts, (int, np.integer)) else concepts)]
    if not ks or min(ks) < 0 or max(ks) >= r_c:
        raise ValueError(f"concepts must be appearance indices in [0, R_C = {r_c}), got {ks}")
    return ks


def saliency_thresholds(result: PandaResult, features: Features, concepts=None) -> Thresholds:
    """The reference's mask thresholds: the mean of ``(Aᵀ Z_i)[k]`` over the given samples and
    positions, ``[K]`` for the chosen concepts (all R_C by default)."""
    ks = _concepts(concepts, result.ranks[0])
    return np.asarray(saliency(result, features), np.float64)[..., ks].mean(axis=(0, 1, 2))


def saliency_masks(
    result: PandaResult,
    features: Features,
    size,
    concepts=None,
    *,
    thresholds=None,
    backend: str = "jax",
) -> np.ndarray:
    """Binary concept masks as in the reference notebook (``localize-concepts.ipynb``).

    ``(Aᵀ Z_i)[k]`` is upsampled to the image size with a Lanczos-3 filter (the notebook uses
    PIL's ``LANCZOS`` on the float32 map; `lanczos_upsample`'s default JAX backend equals it
    to float32 rounding, ``backend="pil"`` calls PIL itself) and thresholded ``>=`` the mean of
    the *low-resolution* coordinates over the given samples and positions
    (`saliency_thresholds`), or ``thresholds [K]`` computed on another sample set.

    Args:
      features: ``[N, H, W, C]``. size: image side (or ``(H', W')``).
      concepts: appearance indices (default all R_C: mind the memory).
    Returns:
      ``[N, H', W', K]`` bool.
    """
    ks = _concepts(concepts, result.ranks[0])
    coords = np.asarray(saliency(result, features), np.float64)[..., ks]
    if coords.ndim == 3:
        coords = coords[None]
    thr = coords.mean(axis=(0, 1, 2)) if thresholds is None else np.asarray(thresholds, np.float64)
    if thr.shape != (len(ks),):
        raise ValueError(
            f"thresholds must have shape [{len(ks)}] (one per concept), got {thr.shape}"
        )
    _check_finite(thr, "thresholds")
    up = lanczos_upsample(np.moveaxis(coords, -1, 1), size, backend=backend)  # [N, K, H', W']
    return np.moveaxis(up >= thr.astype(np.float32)[None, :, None, None], 1, -1)
