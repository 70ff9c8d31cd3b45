"""Ground floor of `jaxedit.linalg`: argument checks and the canonical form of directions."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

HP = jax.lax.Precision.HIGHEST


def canonical_rows(v: jax.Array) -> jax.Array:
    """Rows [k, D] -> unit L2 norm, the largest-magnitude entry of each row positive."""
    v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
    idx = jnp.argmax(jnp.abs(v), axis=-1)
    sign = jnp.sign(jnp.take_along_axis(v, idx[..., None], axis=-1))
    return v * jnp.where(sign == 0, 1.0, sign)


def sym(m):
    """``(m + mᵀ) / 2`` of a square matrix."""
    return (m + m.T) / 2


def check_k(k: int, d: int) -> int:
    """``k`` as an int in ``[1, d]`` (else ValueError)."""
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= d:
        raise ValueError(f"k must be an integer in [1, D={d}], got {k!r}")
    return int(k)


def check_regularization(regularization) -> float:
    """``regularization`` as a finite float >= 0 (else ValueError)."""
    try:
        tau = float(regularization)
    except (TypeError, ValueError):
        raise ValueError(f"regularization must be a number >= 0, got {regularization!r}") from None
    if not math.isfinite(tau) or tau < 0:
        raise ValueError(f"regularization must be a finite number >= 0, got {regularization!r}")
    return tau
