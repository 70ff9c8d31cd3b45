"""Host-side input checks shared by the library entry points (never used inside traced code:
a tracer is passed through unchecked, so calling these from a function that may run under
``jax.jit`` / ``jax.linearize`` is harmless)."""

from __future__ import annotations

import math

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from . import _ops

RESIZE_MODES = ("nearest", "area")


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


def is_tracer(x) -> bool:
    """Whether ``x`` is a JAX tracer (a value inside ``jit`` / ``grad``, not inspectable)."""
    return isinstance(x, jax.core.Tracer)


def float_dtype(x=None):
    """The dtype of ``x`` if it is a real floating array, else the default float dtype (float64
    with x64 enabled, float32 otherwise)."""
    if x is not None and jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating):
        return jnp.asarray(x).dtype
    return _ops.default_float_dtype()


def as_float_array(x) -> jax.Array:
    """``jnp.asarray(x)``, cast to the default float dtype unless it is already real floating.

    Args:
      x: an array-like of any shape.

    Returns:
      the array, same shape (no finiteness check: callers check after their shape checks).
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(_ops.default_float_dtype())
    return x


def as_key(key):
    """A ``jax.random`` key from None (seed 0), an int seed, or a key (returned as is)."""
    if key is None:
        return jax.random.key(0)
    if isinstance(key, (int, np.integer)):
        return jax.random.key(int(key))
    return key


def pair(size) -> tuple[int, int]:
    """``h`` or ``(h, w)`` -> ``(h, w)`` as Python ints."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def check_resize(resize: str) -> str:
    """``resize`` if it is one of `RESIZE_MODES` (``"nearest"``, ``"area"``), else ValueError."""
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    return resize


__all__ = [
    "RESIZE_MODES",
    "as_float_array",
    "as_key",
    "check_finite",
    "check_resize",
    "finite_scalar",
    "float_dtype",
    "is_tracer",
    "pair",
]
