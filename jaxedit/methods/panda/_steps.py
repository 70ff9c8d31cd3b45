"""The optimizer steps: natural scales, the default Adam's schedule, one alternating step, the
scanned full-data loop, the streamed step and the per-sample refinement loop (all jitted with the
transformation as a static argument)."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import optax
from jax import lax

from ._checks import _ADAM, _BUILTIN, APPEARANCE_RATE, FINAL_FRACTION, WARMUP_FRACTION
from ._loss import _objective


def natural_scales(shape, ranks) -> tuple[float, float]:
    """``(σ_A, σ_P) = (1/sqrt(C), sqrt(R_S / (H·W)))``: the entry scale of unit-norm appearance
    columns and of parts with ``PᵀP ≈ I`` and near-disjoint supports. The normalized modes
    optimize ``A / σ_A`` and ``P / σ_P``."""
    h, w, c = shape
    return 1.0 / math.sqrt(c), math.sqrt(ranks[1] / (h * w))


def _adam_factor(t, total):
    """The default Adam's schedule: linear warm-up over the first 5 % of the steps, then a cosine
    decay from 1 to 0.01 at the last step. t: 0-based step, total: number of steps."""
    t = jnp.asarray(t, jnp.float32) + 1.0
    total = jnp.asarray(total, jnp.float32)
    warm = jnp.maximum(jnp.ceil(WARMUP_FRACTION * total), 1.0)
    prog = jnp.clip((t - warm) / jnp.maximum(total - warm, 1.0), 0.0, 1.0)
    decay = FINAL_FRACTION + (1 - FINAL_FRACTION) * 0.5 * (1 + jnp.cos(jnp.pi * prog))
    return jnp.where(t < warm, t / warm, decay)


def _with_lr(tx, state, hp):
    """Put this step's learning rate into a built-in transformation's state."""
    if tx not in _BUILTIN:
        return state
    lr = hp["lr"] * (_adam_factor(hp["t"], hp["total"]) if tx is _ADAM else 1.0)
    hyper = dict(state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(lr, hyper["learning_rate"].dtype)
    return state._replace(hyperparams=hyper)


def _step(tx, a, p, s_a, s_p, xt, e_sum, hp, precision):
    """One alternating step on the optimized variables ``a = A / σ_A``, ``p = P / σ_P``: P update
    + projection onto P >= 0, then A update at the new P.

    xt: [S, B, C], e_sum = Σ_b ‖Z_b‖²; hp: traced scalars ``weight`` (the objective is
    ``weight · Σ_b loss_b``), ``scale_a``, ``scale_p``, ``lr``, ``t``, ``total``.
    -> (a, p, s_A, s_P, raw batch-mean loss before the step).
    """
    b = xt.shape[1]
    sa, sp, wt = hp["scale_a"], hp["scale_p"], hp["weight"]

    def obj_p(p_):
        raw = _objective(sa * a, sp * p_, xt, e_sum, precision)
        return wt * raw, raw

    (_, raw), g_p = jax.value_and_grad(obj_p, has_aux=True)(p)
    u_p, s_p = tx.update(g_p, _with_lr(tx, s_p, hp), p)
    p = optax.projections.projection_non_negative(optax.apply_updates(p, u_p))
    g_a = jax.grad(lambda a_: wt * _objective(sa * a_, sp * p, xt, e_sum, precision))(a)
    u_a, s_a = tx.update(g_a, _with_lr(tx, s_a, hp), a)
    a = optax.apply_updates(a, jax.tree.map(lambda u: hp["rate_a"] * u, u_a))
    return a, p, s_a, s_p, raw / b


@functools.partial(jax.jit, static_argnums=(0,))
def _init_states(tx, a, p):
    return tx.init(a), tx.init(p)


@functools.partial(jax.jit, static_argnums=(0, 7))
def _stream_step(tx, a, p, s_a, s_p, x, hp, precision):
    """_step on a batch x [B, H, W, C] (NHWC)."""
    n, h, w, c = x.shape
    xt = jnp.transpose(x.reshape(n, h * w, c), (1, 0, 2))
    return _step(tx, a, p, s_a, s_p, xt, jnp.sum(jnp.square(x)), hp, precision)


def _fit_scan_impl(
    tx, a, p, s_a, s_p, xt, energies, hp, key, t0, *, steps, minibatch_size, precision
):
    """``steps`` steps from step ``t0`` over data xt [S, N, C] with per-sample energies [N] (full
    batch, or ``minibatch_size`` samples drawn without replacement at step t from
    ``fold_in(key, t)``) -> (a, p, s_A, s_P, losses [steps])."""
    n = xt.shape[1]
    e_all = jnp.sum(energies)

    def body(carry, t):
        a_, p_, s_a_, s_p_ = carry
        if minibatch_size is None:
            xb, eb = xt, e_all
        else:
            idx = jax.random.choice(jax.random.fold_in(key, t), n, (minibatch_size,), replace=False)
            xb, eb = jnp.take(xt, idx, axis=1), jnp.sum(energies[idx])
        a_, p_, s_a_, s_p_, l = _step(tx, a_, p_, s_a_, s_p_, xb, eb, {**hp, "t": t}, precision)
        return (a_, p_, s_a_, s_p_), l

    (a, p, s_a, s_p), losses = lax.scan(body, (a, p, s_a, s_p), t0 + jnp.arange(steps))
    return a, p, s_a, s_p, losses


_fit_scan = jax.jit(
    _fit_scan_impl, static_argnums=(0,), static_argnames=("steps", "minibatch_size", "precision")
)


def _hyper(normalized, lr, shape, ranks, batch, energy, total, dtype) -> dict:
    """The traced per-fit scalars of `_step`."""
    sa, sp = natural_scales(shape, ranks) if normalized else (1.0, 1.0)
    return dict(
        weight=jnp.asarray(1.0 / (batch * energy) if normalized else 1.0, dtype),
        scale_a=jnp.asarray(sa, dtype),
        scale_p=jnp.asarray(sp, dtype),
        rate_a=jnp.asarray(APPEARANCE_RATE if normalized else 1.0, dtype),
        lr=jnp.asarray(0.0 if lr is None else lr, dtype),
        t=jnp.asarray(0, jnp.int32),
        total=jnp.asarray(total, jnp.int32),
    )


# ------------------------------------------------------------------------------------------------
# Refinement
# ------------------------------------------------------------------------------------------------
def _refine_one(tx, a, p, s_p, x, hp, steps, precision):
    """One sample x: [S, C], optimized variable p = P / σ_P -> (p, raw losses [steps])."""
    e = jnp.sum(jnp.square(x))
    sp, wt = hp["scale_p"], hp["weight"]

    def body(carry, t):
        p_, s_ = carry

        def obj(q):
            raw = _objective(a, sp * q, x[:, None, :], e, precision)
            return wt * raw, raw

        (_, raw), g = jax.value_and_grad(obj, has_aux=True)(p_)
        u, s_ = tx.update(g, _with_lr(tx, s_, {**hp, "t": t}), p_)
        p_ = optax.projections.projection_non_negative(optax.apply_updates(p_, u))
        return (p_, s_), raw

    (p, _), losses = lax.scan(body, (p, s_p), jnp.arange(steps))
    return p, losses


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("steps", "precision"))
def _refine_jit(tx, a, p, x, weights, hp, *, steps, precision):
    """x: [N, S, C], weights [N] -> p [N, S, R_S], losses [N, steps]."""

    def one(xi, wi):
        return _refine_one(tx, a, p, tx.init(p), xi, {**hp, "weight": wi}, steps, precision)

    return jax.vmap(one)(x, weights)
