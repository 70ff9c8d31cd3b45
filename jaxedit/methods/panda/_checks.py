"""PandA's ground floor: constants, the built-in optimizer singletons and every input check
shared by the fitting, editing and evaluation modules."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ... import _ops

DEFAULT_LEARNING_RATE = 0.05
"""Peak learning rate of the default Adam, in units of each factor's natural scale (see the module
docstring); the same value serves every layer."""
APPEARANCE_RATE = 0.1
"""In the normalized modes (default Adam, optax) the appearance updates are scaled by this factor
(a learning rate 10x lower for ``A`` than for ``P``): ``A`` starts at the HOSVD solution, which
is close to optimal, and full-rate appearance steps make Adam oscillate (measured on the trained
toy-face StyleGAN2 at 16x16x64: the loss jumped from 0.42 to 1.5 of the feature energy mid-run
and ended at 0.86 with some part initializations; at 0.1x every tested run decreased
monotonically to the same or a lower loss). ``"pgd"`` (the reference) is not scaled."""
WARMUP_FRACTION = 0.05
FINAL_FRACTION = 0.01

REFERENCE_LEARNING_RATE = 1e-8
"""The reference's default PGD learning rate (``Model.decompose``); 1e-6 in its demo at 32x32."""

REFERENCE_RANKS = (512, 8)
INIT_PARTS_HIGH = 0.01
"""Parts start as U(0, 0.01), as in the reference."""

FORMAT_VERSION = 1

# One instance of each built-in transformation, so that jit caches on the same static object and
# a new learning rate (kept in the optimizer state) never recompiles.
_ADAM = optax.inject_hyperparams(optax.adam)(learning_rate=1.0)
_SGD = optax.inject_hyperparams(optax.sgd)(learning_rate=1.0)
_BUILTIN = (_ADAM, _SGD)


# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------
def _check_finite(x, name: str) -> None:
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")


def _check_features(features, name: str = "features") -> jax.Array:
    """[N, H, W, C] -> jnp array (float), checked."""
    x = jnp.asarray(features)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(_ops.default_float_dtype())
    if x.ndim != 4:
        raise ValueError(
            f"{name} must be NHWC [N, H, W, C] (as gen.features returns), got shape "
            f"{tuple(x.shape)}"
        )
    if min(x.shape) < 1:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    _check_finite(x, name)
    return x


def _check_ranks(ranks, s: int, c: int) -> tuple[int, int]:
    try:
        r_c, r_s = (int(r) for r in ranks)
    except (TypeError, ValueError):
        raise ValueError(
            f"ranks must be a pair (R_C, R_S) of positive integers, got {ranks!r}"
        ) from None
    if not 1 <= r_c <= c:
        raise ValueError(f"ranks[0] = R_C = {r_c} must be in [1, C = {c}] (appearances)")
    if not 1 <= r_s <= s:
        raise ValueError(f"ranks[1] = R_S = {r_s} must be in [1, H·W = {s}] (parts)")
    return r_c, r_s


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return int(steps)


def _resolve_optimizer(optimizer, learning_rate, what: str = "fit"):
    """-> (transformation, learning rate or None, mode name, normalized loss?)."""
    if learning_rate is not None:
        try:
            lr = float(learning_rate)
        except (TypeError, ValueError):
            raise ValueError(f"learning_rate must be a number, got {learning_rate!r}") from None
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning_rate must be finite and > 0, got {learning_rate!r}")
    else:
        lr = None
    if optimizer is None or (isinstance(optimizer, str) and optimizer == "adam"):
        return _ADAM, DEFAULT_LEARNING_RATE if lr is None else lr, "adam", True
    if isinstance(optimizer, str):
        if optimizer != "pgd":
            raise ValueError(
                f"optimizer must be None / 'adam' (default Adam), 'pgd' (the "
                f"reference's projected gradient descent) or an "
                f"optax.GradientTransformation, got {optimizer!r}"
            )
        if lr is None:
            raise ValueError(
                f"{what}(optimizer='pgd') needs learning_rate: plain gradient descent on the "
                "summed loss needs a rate tuned to the layer's feature scale (the reference uses "
                "1e-8 … 1e-6; lower it 10x per deeper layer), or use the default Adam, which "
                "needs no tuning"
            )
        return _SGD, lr, "pgd", False
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(
            f"optimizer must be an optax.GradientTransformation, 'pgd' or None, got "
            f"{type(optimizer).__name__}"
        )
    if lr is not None:
        raise ValueError(
            "learning_rate applies to the default Adam and to 'pgd'; an "
            "optax.GradientTransformation carries its own"
        )
    return optimizer, None, "optax", True


def _check_appearance(a, c: int, r_c: int | None, dtype) -> jax.Array:
    a = jnp.asarray(a)
    if a.ndim != 2 or a.shape[0] != c or (r_c is not None and a.shape[1] != r_c):
        want = f"[{c}, {r_c if r_c is not None else 'R_C'}]"
        raise ValueError(
            f"the appearance factors must have shape {want} ([C, R_C]), got {tuple(a.shape)}"
        )
    _check_finite(a, "the appearance factors")
    return a.astype(dtype)


def _check_parts(
    p, h: int, w: int, r_s: int | None, dtype, name: str = "the parts factors"
) -> jax.Array:
    """[H·W, R_S] or [H, W, R_S] -> [S, R_S] (clamped at 0 is the caller's job)."""
    p = jnp.asarray(p)
    if p.ndim == 3 and p.shape[:2] == (h, w):
        p = p.reshape(h * w, p.shape[2])
    if p.ndim != 2 or p.shape[0] != h * w or (r_s is not None and p.shape[1] != r_s):
        want = r_s if r_s is not None else "R_S"
        raise ValueError(
            f"{name} must have shape [{h * w}, {want}] or [{h}, {w}, {want}] "
            f"(row-major over H, W), got {tuple(p.shape)}"
        )
    _check_finite(p, name)
    return p.astype(dtype)
