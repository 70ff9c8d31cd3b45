"""The fixed map from a StyleGAN2 latent z to toy-face factors, and ground-truth factor edits.

``z [N, Z_DIM]`` is first normalized exactly as the StyleGAN2 mapping network does
(``u = z / sqrt(mean(z**2) + 1e-8)``), so the factors depend only on what the generator sees; then
factor ``i`` (``i < K = len(FACTORS)``) is ``lo_i + (hi_i - lo_i) * Phi(u_i)`` with ``Phi`` the
standard normal CDF (for z ~ N(0, I), each factor is close to uniform on its range). The last
``Z_DIM - K`` coordinates are nuisance: they change no factor and carry the norm, so that one
factor can be moved with every other factor fixed (`edit_factor`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr, ndtri

from .._typing import ToyFactors, ToyFactorsArray, ToyNuisance, ToyZ, ToyZArray, ToyZSample
from ._render import FACTORS, _check_factors, factor_index

Z_DIM = 64
NUM_FACTORS = len(FACTORS)
_EPS = 1e-8  # the mapping network's normalize_2nd_moment epsilon


def _lo_hi(dtype):
    lo = jnp.asarray([f.lo for f in FACTORS], dtype)
    hi = jnp.asarray([f.hi for f in FACTORS], dtype)
    return lo, hi


def _check_z(z, name: str = "z"):
    z = jnp.asarray(z)
    if not jnp.issubdtype(z.dtype, jnp.floating):
        z = z.astype(jax.dtypes.canonicalize_dtype(jnp.float64))
    if z.ndim != 2 or z.shape[1] != Z_DIM:
        raise ValueError(f"{name} must have shape [N, {Z_DIM}], got {tuple(z.shape)}")
    if not bool(jnp.all(jnp.isfinite(z))):
        raise ValueError(f"{name} contains non-finite values")
    return z


def normalize(z: ToyZArray) -> ToyZArray:
    """z [N, Z_DIM] -> u [N, Z_DIM], the mapping network's ``normalize_2nd_moment``."""
    return z * jax.lax.rsqrt(jnp.mean(jnp.square(z), axis=-1, keepdims=True) + _EPS)


def _factors_from_z(z):
    lo, hi = _lo_hi(z.dtype)
    return lo + (hi - lo) * ndtr(normalize(z)[:, :NUM_FACTORS])


def factors_from_z(z: ToyZ) -> ToyFactorsArray:
    """z ``[N, Z_DIM]`` -> factors ``[N, K]``: ``lo + (hi - lo) * Phi(u[:, :K])`` with
    ``u = z / sqrt(mean(z**2) + 1e-8)`` (see the module docstring)."""
    return _factors_from_z(_check_z(z))


def z_from_factors(factors: ToyFactors, nuisance: ToyNuisance) -> ToyZArray:
    """The z (with ``mean(z**2) = 1``) whose factors are ``factors [N, K]``; ``nuisance
    [N, Z_DIM - K]`` gives the direction of the nuisance coordinates (rescaled to carry the norm).

    Raises ValueError where the factors alone already need more than the whole norm (a factor
    pinned within ~3e-5 of its range's end, for the default sizes).
    """
    f = _check_factors(factors)
    nuis = jnp.asarray(nuisance, f.dtype)
    want = (f.shape[0], Z_DIM - len(FACTORS))
    if nuis.shape != want:
        raise ValueError(
            f"nuisance must have shape [N, Z_DIM - K] = {list(want)}, got {list(nuis.shape)}"
        )
    if not bool(jnp.all(jnp.isfinite(nuis))):
        raise ValueError("nuisance contains non-finite values")
    lo, hi = _lo_hi(f.dtype)
    t = jnp.clip((f - lo) / (hi - lo), 1e-12, 1 - 1e-12)
    u = ndtri(t)
    return _with_norm(u, nuis)


def _with_norm(u_f, nuis):
    room = Z_DIM - jnp.sum(u_f * u_f, axis=-1, keepdims=True)
    if bool(jnp.any(room <= 0)):
        raise ValueError(
            "the requested factors are too extreme to be represented with "
            f"mean(z**2) = 1 (sum of their squared normal scores exceeds {Z_DIM})"
        )
    norm = jnp.sqrt(jnp.sum(nuis * nuis, axis=-1, keepdims=True))
    nuis = jnp.where(norm > 0, nuis, 1.0)
    norm = jnp.where(norm > 0, norm, np.sqrt(nuis.shape[-1]))
    return jnp.concatenate([u_f, nuis * jnp.sqrt(room) / norm], axis=-1)


def edit_factor(z: ToyZ, name: str, alpha) -> ToyZArray:
    """Ground-truth factor edit: z ``[N, Z_DIM]`` -> z' ``[N, Z_DIM]`` whose normal score
    ``u_i`` of factor ``name`` is moved by ``alpha`` and every other factor is unchanged
    (the nuisance coordinates are rescaled so that ``mean(z'**2) = 1``)."""
    z = _check_z(z)
    i = factor_index(name)
    u = normalize(z)
    u_f = u[:, :NUM_FACTORS].at[:, i].add(jnp.asarray(alpha, u.dtype))
    return _with_norm(u_f, u[:, NUM_FACTORS:])


def sample_z(seed: int, n: int, dtype=None) -> ToyZSample:
    """``n`` standard normal latents ``[n, Z_DIM]`` from ``jax.random.key(seed)``."""
    dtype = dtype or jax.dtypes.canonicalize_dtype(jnp.float64)
    return jax.random.normal(jax.random.key(int(seed)), (int(n), Z_DIM), dtype)
