"""Host-side input checks shared by the library entry points (never used inside traced code:
a tracer is passed through unchecked, so calling these from a function that may run under
``jax.jit`` / ``jax.linearize`` is harmless)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def check_finite(name: str, x):
    """Raise ValueError naming ``name`` if the concrete array ``x`` holds NaN or inf.

    Integer / boolean arrays and ``None`` pass; tracers are not inspected. Returns ``x``.
    """
    if x is None or isinstance(x, jax.core.Tracer):
        return x
    if isinstance(x, jax.Array):
        if not jnp.issubdtype(x.dtype, jnp.inexact) or bool(jnp.isfinite(x).all()):
            return x
        bad = int(jnp.size(x) - jnp.isfinite(x).sum())
        size = int(x.size)
    else:
        a = np.asarray(x)
        if a.dtype.kind not in "fc" or np.isfinite(a).all():
            return x
        bad, size = int(a.size - np.isfinite(a).sum()), int(a.size)
    raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf) out of {size}")


def finite_scalar(name: str, v) -> float:
    """``float(v)``, or ValueError naming ``name`` if it is not a finite real number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return f


__all__ = ["check_finite", "finite_scalar"]
