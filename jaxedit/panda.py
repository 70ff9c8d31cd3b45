"""PandA (Oldfield et al., ICLR 2023): parts and appearances of one layer's feature maps.

For feature maps ``Z_i`` of N samples at one layer (``C`` channels, ``S = H·W`` positions, the
reference's ``C x S`` unfolding), PandA learns *appearances* ``A [C, R_C]`` and non-negative
*parts* ``P [S, R_S]`` minimizing::

    L(A, P) = Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F        subject to  P ≥ 0

(the sample core ``Aᵀ Z_i P`` is a projection, never stored). Columns of ``P`` reshaped to
``[H, W]`` are soft part masks shared by all samples; columns of ``A`` are channel directions.
A *local edit* adds ``λ · a_j ⊗ minmax01(Σ_{k∈parts} P[:, k])`` to one sample's features and
resumes the generator from that layer.

Conventions (jaxedit): features are NHWC ``[N, H, W, C]`` as :meth:`StyleGAN2Generator.features`
returns them; ``Z_i = features[i].reshape(S, C).T`` (row-major over ``H, W``, as the reference's
``Z.view(C, H*W)``); parts are returned as ``[H, W, R_S]``.

Optimization (:func:`fit`):

* ``optimizer="pgd"`` is the reference's solver exactly: per step, the gradient of the loss
  **summed** over the batch, ``P ← max(P − lr·∇_P, 0)``, then ``A ← A − lr·∇_A`` evaluated at the
  new ``P``. Its learning rate is in units of 1 / feature-scale² and has to be retuned for every
  layer and checkpoint (the reference uses 1e-8 … 1e-6).
* the default, ``optax.adam``, and any ``optax.GradientTransformation`` take the same
  alternating steps (one optimizer state per factor; ``P`` projected onto ``P ≥ 0`` after each of
  its updates) on a problem put in natural units, which is what makes one learning rate work on
  every layer:

  - the loss is divided by the mean feature energy ``E = mean_i ‖Z_i‖²_F`` of the data (fixed
    before the first step, stored as :attr:`PandaResult.feature_energy`) and averaged over the
    batch: it is the fraction of the feature energy left unexplained (1 at ``P = 0``), whatever
    the layer's or the checkpoint's activation scale;
  - the optimizer updates ``A / σ_A`` and ``P / σ_P`` with ``σ_A = 1/sqrt(C)`` (the entry scale of
    unit-norm columns) and ``σ_P = sqrt(R_S / (H·W))`` (the entry scale of parts with
    ``PᵀP ≈ I`` and near-disjoint supports), so a step of ``lr`` moves each entry by about
    ``lr`` times its natural size on any layer (:func:`natural_scales`).

  - the appearance updates are scaled by 0.1 (:data:`APPEARANCE_RATE`): ``A`` starts at the
    near-optimal HOSVD solution, and full-rate appearance steps make Adam oscillate.

  The default Adam uses a peak learning rate of 0.05 (:data:`DEFAULT_LEARNING_RATE`) with a
  linear warm-up over the first 5 % of the steps and a cosine decay to 1 % of the peak at the
  last step (measured on 8x8 … 64x64 layers of random and fixture StyleGAN2s: peak rates up to
  0.1 converge, 0.2 and above can drive parts to zero, where they stay).
* ``losses[t]`` is the **raw** mean over step t's batch of ``‖Z_i − A AᵀZ_iPPᵀ‖²_F`` before step
  t's updates, in every mode (``relative_losses`` divides by ``E``).

The loss is evaluated as ``Z − A K Pᵀ`` with ``K = (Aᵀ Z) P`` formed as ``(Pᵀ Zᵀ) A``: its
cost per sample is ``O(R_S · S · C + R_S · C · R_C)``, against ``O(S · C · R_C + S² · C)`` for the
reference's hand-written gradients. ``jax.grad`` of it equals those gradients (tested).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import warnings
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from . import _ops
from ._ops import Precision

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


from .errors import PandaConvergenceWarning


# ------------------------------------------------------------------------------------------------
# Result
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class PandaResult:
    """Learned PandA factors.

    Attributes:
      appearance: ``[C, R_C]`` appearance factors ``A`` (columns = channel directions).
      parts: ``[H, W, R_S]`` non-negative parts factors ``P`` (``P[:, :, k]`` = part k).
      losses: ``[steps]`` raw batch-mean loss before each step's updates.
      feature_energy: ``E = mean_i ‖Z_i‖²_F`` of the training features (the loss normalizer).
      layer: the generator layer the features came from (e.g. ``"b16.conv1"``) or None.
      converged: False when the loss was still falling by more than 1 % over the last tenth of
        the steps, or became non-finite (a :class:`PandaConvergenceWarning` says so).
      settings: how the factors were made (optimizer, learning rate, steps, batch size, init,
        precision, and the source of the features when known).
    """

    appearance: np.ndarray
    parts: np.ndarray
    losses: np.ndarray
    feature_energy: float
    layer: str | None = None
    converged: bool = True
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ranks(self) -> tuple[int, int]:
        """``(R_C, R_S)``."""
        return int(self.appearance.shape[1]), int(self.parts.shape[-1])

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of the features the factors apply to."""
        h, w, _ = self.parts.shape
        return int(h), int(w), int(self.appearance.shape[0])

    @property
    def relative_losses(self) -> np.ndarray:
        """``losses / feature_energy``: the fraction of the feature energy left unexplained."""
        return np.asarray(self.losses) / self.feature_energy

    def parts_matrix(self) -> np.ndarray:
        """``P`` as the reference's ``[S, R_S]`` matrix (rows row-major over ``H, W``)."""
        h, w, r = self.parts.shape
        return np.asarray(self.parts).reshape(h * w, r)


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
        raise ValueError(f"{name} must be NHWC [N, H, W, C] (as gen.features returns), got shape "
                         f"{tuple(x.shape)}")
    if min(x.shape) < 1:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    _check_finite(x, name)
    return x


def _check_ranks(ranks, s: int, c: int) -> tuple[int, int]:
    try:
        r_c, r_s = (int(r) for r in ranks)
    except (TypeError, ValueError):
        raise ValueError(f"ranks must be a pair (R_C, R_S) of positive integers, got {ranks!r}") from None
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
            raise ValueError(f"optimizer must be None / 'adam' (default Adam), 'pgd' (the "
                             f"reference's projected gradient descent) or an "
                             f"optax.GradientTransformation, got {optimizer!r}")
        if lr is None:
            raise ValueError(
                f"{what}(optimizer='pgd') needs learning_rate: plain gradient descent on the summed "
                "loss needs a rate tuned to the layer's feature scale (the reference uses 1e-8 … 1e-6; "
                "lower it 10x per deeper layer), or use the default Adam, which needs no tuning")
        return _SGD, lr, "pgd", False
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(f"optimizer must be an optax.GradientTransformation, 'pgd' or None, got "
                         f"{type(optimizer).__name__}")
    if lr is not None:
        raise ValueError("learning_rate applies to the default Adam and to 'pgd'; an "
                         "optax.GradientTransformation carries its own")
    return optimizer, None, "optax", True


# ------------------------------------------------------------------------------------------------
# Loss
# ------------------------------------------------------------------------------------------------
# Layout: a batch is held position-major, xt [S, B, C] (xt[:, b, :] = Z_bᵀ), so that every
# product with P is one GEMM over all samples (XLA on CPU runs a vmapped batch of small matmuls
# ~5x slower). The summed loss is expanded as
#     Σ_b ‖Z_b − A K_bᵀ Pᵀ‖² = Σ_b ‖Z_b‖² − 2 Σ_b ‖K_b‖² + Σ_b ⟨PᵀP · K_b Aᵀ, K_b Aᵀ⟩
# with K_b = Pᵀ Z_bᵀ A [R_S, R_C]: X is read once (plus once in the backward pass) and the
# reconstruction [S, B, C] is never formed (2-15x faster than the direct form, measured).
def _objective(a: jax.Array, p: jax.Array, xt: jax.Array, e_sum: jax.Array, precision
               ) -> jax.Array:
    """Σ_b ‖Z_b − A AᵀZ_b P Pᵀ‖²_F. a: [C, R_C], p: [S, R_S], xt: [S, B, C],
    e_sum = Σ_b ‖Z_b‖²_F -> []."""
    s, b, c = xt.shape
    r = p.shape[1]
    t = jnp.matmul(p.T, xt.reshape(s, b * c), precision=precision).reshape(r, b, c)
    k = jnp.einsum("rbc,cq->rbq", t, a, precision=precision)          # K_b stacked
    ka = jnp.einsum("rbq,cq->rbc", k, a, precision=precision).reshape(r, b * c)
    gp = jnp.matmul(p.T, p, precision=precision)
    return e_sum - 2 * jnp.sum(jnp.square(k)) + jnp.sum(
        jnp.matmul(gp, ka, precision=precision) * ka)


def _direct_loss(a, p, x, precision) -> jax.Array:
    """‖Z − A AᵀZ P Pᵀ‖²_F for one sample in the direct (cancellation-free) form.
    a: [C, R_C], p: [S, R_S], x: [S, C] (= Zᵀ) -> []."""
    k = jnp.matmul(jnp.matmul(p.T, x, precision=precision), a, precision=precision)
    rec = jnp.matmul(p, jnp.matmul(k, a.T, precision=precision), precision=precision)
    return jnp.sum(jnp.square(x - rec))


def loss(result_or_appearance, features, parts=None, *, precision: Precision = "highest"
         ) -> jax.Array:
    """Per-sample loss ``‖Z_i − A AᵀZ_i P Pᵀ‖²_F`` in the direct form: ``[N]`` for features
    ``[N, H, W, C]``.

    Pass a :class:`PandaResult`, or ``A [C, R_C]`` and ``parts [H·W | H, W, R_S]``. (:func:`fit`
    records its losses from an expanded form that loses ~4 digits in float32 when the loss is
    below 0.1 % of the feature energy; use this for final numbers.)
    """
    x = _check_features(features)
    n, h, w, c = x.shape
    if isinstance(result_or_appearance, PandaResult):
        a, p = result_or_appearance.appearance, result_or_appearance.parts
    else:
        a, p = result_or_appearance, parts
    a = _check_appearance(a, c, None, x.dtype)
    p = _check_parts(p, h, w, None, x.dtype)
    return _loss_jit(a, p, x.reshape(n, h * w, c), precision=_ops.as_precision(precision))


@functools.partial(jax.jit, static_argnames=("precision",))
def _loss_jit(a, p, x, *, precision):
    return jax.vmap(_direct_loss, in_axes=(None, None, 0, None))(a, p, x, precision)


# ------------------------------------------------------------------------------------------------
# Initialization
# ------------------------------------------------------------------------------------------------
def _sign_fix(u: jax.Array) -> jax.Array:
    """Make the largest-magnitude entry of every column positive (a deterministic sign)."""
    idx = jnp.argmax(jnp.abs(u), axis=0)
    s = jnp.sign(u[idx, jnp.arange(u.shape[1])])
    return u * jnp.where(s == 0, 1, s)[None, :]


@functools.partial(jax.jit, static_argnames=("precision",))
def _scatter(x: jax.Array, *, precision) -> jax.Array:
    """x: [B, S, C] -> Σ_i Z_i Z_iᵀ [C, C] (uncentred channel scatter, summed)."""
    return jnp.einsum("bsc,bsd->cd", x, x, precision=precision)


@jax.jit
def _hosvd_from_scatter(scat: jax.Array) -> jax.Array:
    """[C, C] PSD -> eigenvectors by descending eigenvalue [C, C] (the reference's SVD of Σ)."""
    _, v = jnp.linalg.eigh((scat + scat.T) / 2)
    return _sign_fix(v[:, ::-1])


def hosvd(features, rank: int | None = None, *, precision: Precision = "highest") -> jax.Array:
    """HOSVD appearance init: left singular vectors of ``Σ = (1/N) Σ_i Z_i Z_iᵀ`` (uncentred).

    features: ``[N, H, W, C]`` -> ``[C, rank]`` (all C when rank is None), columns by descending
    singular value, each with its largest-magnitude entry positive.
    """
    x = _check_features(features)
    n, h, w, c = x.shape
    scat = _scatter(x.reshape(n, h * w, c), precision=_ops.as_precision(precision)) / n
    u = _hosvd_from_scatter(scat)
    return u if rank is None else u[:, :int(rank)]


def _check_appearance(a, c: int, r_c: int | None, dtype) -> jax.Array:
    a = jnp.asarray(a)
    if a.ndim != 2 or a.shape[0] != c or (r_c is not None and a.shape[1] != r_c):
        want = f"[{c}, {r_c if r_c is not None else 'R_C'}]"
        raise ValueError(f"the appearance factors must have shape {want} ([C, R_C]), got "
                         f"{tuple(a.shape)}")
    _check_finite(a, "the appearance factors")
    return a.astype(dtype)


def _check_parts(p, h: int, w: int, r_s: int | None, dtype, name: str = "the parts factors"
                 ) -> jax.Array:
    """[H·W, R_S] or [H, W, R_S] -> [S, R_S] (clamped at 0 is the caller's job)."""
    p = jnp.asarray(p)
    if p.ndim == 3 and p.shape[:2] == (h, w):
        p = p.reshape(h * w, p.shape[2])
    if p.ndim != 2 or p.shape[0] != h * w or (r_s is not None and p.shape[1] != r_s):
        want = r_s if r_s is not None else "R_S"
        raise ValueError(f"{name} must have shape [{h * w}, {want}] or [{h}, {w}, {want}] "
                         f"(row-major over H, W), got {tuple(p.shape)}")
    _check_finite(p, name)
    return p.astype(dtype)


def _init_factors(init_appearance, init_parts, key, shape, ranks, dtype, hosvd_fn):
    """-> (A [C, R_C], P [S, R_S] clamped >= 0, init name)."""
    h, w, c = shape
    r_c, r_s = ranks
    k_a, k_p = jax.random.split(key)
    if isinstance(init_appearance, str):
        if init_appearance == "hosvd":
            a = hosvd_fn()[:, :r_c].astype(dtype)
        elif init_appearance == "random":
            a = 0.01 * jax.random.normal(k_a, (c, r_c), dtype)
        else:
            raise ValueError(f"init_appearance must be 'hosvd', 'random' or an array [C, R_C], got "
                             f"{init_appearance!r}")
        a_name = init_appearance
    else:
        a = _check_appearance(init_appearance, c, r_c, dtype)
        a_name = "array"
    if init_parts is None:
        p = jax.random.uniform(k_p, (h * w, r_s), dtype, 0.0, INIT_PARTS_HIGH)
        p_name = "uniform(0, 0.01)"
    else:
        p = _check_parts(init_parts, h, w, r_s, dtype, "init_parts")
        p_name = "array"
    return a, jnp.maximum(p, 0), a_name, p_name


# ------------------------------------------------------------------------------------------------
# Steps
# ------------------------------------------------------------------------------------------------
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


def _fit_scan_impl(tx, a, p, s_a, s_p, xt, energies, hp, key, t0, *, steps, batch_size,
                   precision):
    """``steps`` steps from step ``t0`` over data xt [S, N, C] with per-sample energies [N] (full
    batch, or ``batch_size`` samples drawn without replacement at step t from
    ``fold_in(key, t)``) -> (a, p, s_A, s_P, losses [steps])."""
    n = xt.shape[1]
    e_all = jnp.sum(energies)

    def body(carry, t):
        a_, p_, s_a_, s_p_ = carry
        if batch_size is None:
            xb, eb = xt, e_all
        else:
            idx = jax.random.choice(jax.random.fold_in(key, t), n, (batch_size,), replace=False)
            xb, eb = jnp.take(xt, idx, axis=1), jnp.sum(energies[idx])
        a_, p_, s_a_, s_p_, l = _step(tx, a_, p_, s_a_, s_p_, xb, eb, {**hp, "t": t}, precision)
        return (a_, p_, s_a_, s_p_), l

    (a, p, s_a, s_p), losses = lax.scan(body, (a, p, s_a, s_p), t0 + jnp.arange(steps))
    return a, p, s_a, s_p, losses


_fit_scan = jax.jit(_fit_scan_impl, static_argnums=(0,),
                    static_argnames=("steps", "batch_size", "precision"))


def _hyper(normalized, lr, shape, ranks, batch, energy, total, dtype) -> dict:
    """The traced per-fit scalars of :func:`_step`."""
    sa, sp = natural_scales(shape, ranks) if normalized else (1.0, 1.0)
    return dict(weight=jnp.asarray(1.0 / (batch * energy) if normalized else 1.0, dtype),
                scale_a=jnp.asarray(sa, dtype), scale_p=jnp.asarray(sp, dtype),
                rate_a=jnp.asarray(APPEARANCE_RATE if normalized else 1.0, dtype),
                lr=jnp.asarray(0.0 if lr is None else lr, dtype),
                t=jnp.asarray(0, jnp.int32), total=jnp.asarray(total, jnp.int32))


# ------------------------------------------------------------------------------------------------
# fit
# ------------------------------------------------------------------------------------------------
def _convergence(losses: np.ndarray) -> tuple[bool, str]:
    """(converged, message) from the loss curve."""
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        return False, (f"the loss became non-finite at step {int(bad[0])}: the learning rate is too "
                       "large for this layer's feature scale (lower it 10x, or use the default Adam)")
    n = losses.size
    if n < 20:
        return True, ""
    tenth = max(n // 10, 2)
    last, before = float(np.mean(losses[-tenth:])), float(np.mean(losses[-2 * tenth:-tenth]))
    drop = (before - last) / max(abs(last), 1e-300)
    if drop > 0.01:
        return False, (f"the loss still fell by {100 * drop:.2g}% over the last tenth of the steps: "
                       "increase steps (or the learning rate) for converged factors")
    return True, ""


def _finish(a, p, losses, energy, shape, layer, settings, warn: bool = True) -> PandaResult:
    h, w, _ = shape
    losses = np.asarray(losses)
    ok, msg = _convergence(losses)
    dead = np.flatnonzero(np.all(np.asarray(p) == 0, axis=0))
    if dead.size and np.all(np.isfinite(losses)):
        ok = False
        msg = (f"part(s) {dead.tolist()} collapsed to zero during the fit and cannot recover (the "
               f"gradient vanishes at P = 0): lower the learning rate") + (f"; also {msg}" if msg else "")
    if not ok and warn:
        warnings.warn(f"PandA fit: {msg}", PandaConvergenceWarning, stacklevel=3)
    return PandaResult(appearance=np.asarray(a), parts=np.asarray(p).reshape(h, w, -1),
                       losses=losses, feature_energy=float(energy), layer=layer, converged=ok,
                       settings=dict(settings))


def fit(features, ranks=REFERENCE_RANKS, steps: int = 1000, optimizer=None,
        learning_rate: float | None = None, init_appearance="hosvd", init_parts=None,
        batch_size: int | None = None, key=None, progress: bool = False, *,
        layer: str | None = None, precision: Precision = "highest",
        hosvd_samples: int = 1000) -> PandaResult:
    """Learn PandA parts and appearances from one layer's features.

    Args:
      features: ``[N, H, W, C]`` (NHWC, as ``gen.features`` returns), or a callable
        ``(step, key) -> [B, H, W, C]`` streaming fresh samples (the reference's stochastic mode:
        a Python loop over one jitted step).
      ranks: ``(R_C, R_S)``: number of appearances (≤ C) and parts (≤ H·W).
      steps: number of alternating steps.
      optimizer: None or ``"adam"`` (Adam, peak ``learning_rate`` 0.05 with warm-up and cosine
        decay, in natural units), ``"pgd"`` (the reference's projected gradient descent on the
        summed loss; needs ``learning_rate``) or any ``optax.GradientTransformation`` (applied to
        each factor with its own state, in natural units). See the module docstring. Reuse the
        same transformation object across calls to avoid recompiling.
      learning_rate: for the default Adam (peak, relative; default 0.05) and for ``"pgd"`` (raw).
      init_appearance: ``"hosvd"`` (left singular vectors of the mean uncentred channel scatter of
        the features; with a callable, of its first ``hosvd_samples`` samples), ``"random"``
        (``0.01 · N(0, 1)``), or an array ``[C, R_C]``.
      init_parts: ``[H·W, R_S]`` (row-major over H, W) or ``[H, W, R_S]``; None: U(0, 0.01) from
        ``key``. Clamped at 0.
      batch_size: None = all N samples every step (full gradient); an integer draws that many
        samples without replacement at every step. Not used with a callable.
      key: PRNG key for the parts init and the mini-batches (default ``jax.random.key(0)``).
      progress: show a progress bar with the current loss.
      layer: name of the layer the features come from (recorded in the result).
      precision: matmul precision (``"highest"`` default).
      hosvd_samples: samples for the HOSVD init and the feature energy with a callable.

    Returns:
      :class:`PandaResult` (``appearance [C, R_C]``, ``parts [H, W, R_S]``, ``losses [steps]``).
    """
    steps = _check_steps(steps)
    tx, lr, mode, normalized = _resolve_optimizer(optimizer, learning_rate)
    key = jax.random.key(0) if key is None else key
    prec = _ops.as_precision(precision)
    settings = dict(optimizer=mode, learning_rate=lr, steps=steps, batch_size=batch_size,
                    precision=str(precision), ranks=None,
                    appearance_rate=APPEARANCE_RATE if normalized else 1.0)
    if callable(features) and not hasattr(features, "shape"):
        if batch_size is not None:
            raise ValueError("batch_size does not apply when features is a callable (its batches "
                             "have their own size)")
        return _fit_stream(features, ranks, steps, tx, lr, mode, normalized, init_appearance,
                           init_parts, key, progress, layer, prec, hosvd_samples, settings)
    x = _check_features(features)
    n, h, w, c = x.shape
    r_c, r_s = _check_ranks(ranks, h * w, c)
    settings["ranks"] = [r_c, r_s]
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be None (full batch) or an integer in [1, N = {n}], "
                             f"got {batch_size!r}")
        batch_size = int(batch_size) if batch_size < n else None
    xs = x.reshape(n, h * w, c)
    energies = jnp.sum(jnp.square(xs), axis=(1, 2))
    energy = float(jnp.mean(energies))
    if energy <= 0:
        raise ValueError("features are all zero: nothing to factorize")
    k_init, k_data = jax.random.split(key)
    a, p, a_name, p_name = _init_factors(
        init_appearance, init_parts, k_init, (h, w, c), (r_c, r_s), x.dtype,
        lambda: _hosvd_from_scatter(_scatter(xs, precision=prec) / n))
    settings.update(init_appearance=a_name, init_parts=p_name, samples=n)
    b = n if batch_size is None else batch_size
    hp = _hyper(normalized, lr, (h, w, c), (r_c, r_s), b, energy, steps, x.dtype)
    a, p = a / hp["scale_a"], p / hp["scale_p"]
    s_a, s_p = _init_states(tx, a, p)
    xt = jnp.transpose(xs, (1, 0, 2))          # [S, N, C]: see _objective
    del xs
    chunk = steps if not progress else max(1, -(-steps // 100))
    out = []
    from ._io import progress as progress_bar

    with progress_bar(steps, "panda fit", enabled=progress) as bar:
        t = 0
        while t < steps:
            m = min(chunk, steps - t)
            a, p, s_a, s_p, l = _fit_scan(tx, a, p, s_a, s_p, xt, energies, hp, k_data,
                                          jnp.asarray(t, jnp.int32), steps=m,
                                          batch_size=batch_size, precision=prec)
            out.append(l)
            t += m
            if progress:
                bar.set_postfix(loss=f"{float(l[-1]):.5g}", rel=f"{float(l[-1]) / energy:.4f}",
                                refresh=False)
                bar.update(m)
    losses = jnp.concatenate(out) if len(out) > 1 else out[0]
    return _finish(a * hp["scale_a"], p * hp["scale_p"], losses, energy, (h, w, c), layer,
                   settings)


def _fit_stream(features, ranks, steps, tx, lr, mode, normalized, init_appearance, init_parts,
                key, progress, layer, prec, hosvd_samples, settings, energy=None,
                first_batch=None):
    """fit() on a callable ``(step, key) -> [B, H, W, C]``: a Python loop over one jitted step."""
    k_init, k_data, k_hosvd = jax.random.split(key, 3)

    def batch(t):
        xb = first_batch if (t == 0 and first_batch is not None) else features(
            t, jax.random.fold_in(k_data, t))
        return _check_features(xb, f"features({t}, key)")

    x0 = batch(0)
    _, h, w, c = x0.shape
    r_c, r_s = _check_ranks(ranks, h * w, c)
    settings["ranks"] = [r_c, r_s]
    dtype = x0.dtype
    hosvd_cache = {}

    def scatter_stats():
        """(mean scatter [C, C], mean energy) over >= hosvd_samples streamed samples."""
        if "v" not in hosvd_cache:
            scat, count, t = jnp.zeros((c, c), dtype), 0, 0
            while count < max(int(hosvd_samples), 1):
                xb = x0 if t == 0 else _check_features(
                    features(t, jax.random.fold_in(k_hosvd, t)), f"features({t}, key)")
                if xb.shape[1:] != (h, w, c):
                    raise ValueError(f"features({t}, key) has shape {tuple(xb.shape)}; earlier "
                                     f"batches were [B, {h}, {w}, {c}]")
                scat = scat + _scatter(xb.reshape(xb.shape[0], h * w, c), precision=prec)
                count += xb.shape[0]
                t += 1
            hosvd_cache["v"] = (scat / count, float(jnp.trace(scat)) / count)
        return hosvd_cache["v"]

    a, p, a_name, p_name = _init_factors(
        init_appearance, init_parts, k_init, (h, w, c), (r_c, r_s), dtype,
        lambda: _hosvd_from_scatter(scatter_stats()[0]))
    if energy is None:
        energy = scatter_stats()[1] if hosvd_cache else float(
            jnp.mean(jnp.sum(jnp.square(x0), axis=(1, 2, 3))))
    if energy <= 0:
        raise ValueError("features are all zero: nothing to factorize")
    settings.update(init_appearance=a_name, init_parts=p_name, samples="streamed")
    hp = _hyper(normalized, lr, (h, w, c), (r_c, r_s), 1, energy, steps, dtype)
    a, p = a / hp["scale_a"], p / hp["scale_p"]
    s_a, s_p = _init_states(tx, a, p)
    losses = []
    from ._io import progress as progress_bar

    with progress_bar(steps, "panda fit", enabled=progress) as bar:
        for t in range(steps):
            xb = x0 if t == 0 else batch(t)
            if xb.shape[1:] != (h, w, c):
                raise ValueError(f"features({t}, key) has shape {tuple(xb.shape)}; earlier batches "
                                 f"were [B, {h}, {w}, {c}]")
            hp_t = {**hp, "t": jnp.asarray(t, jnp.int32), "weight": jnp.asarray(
                1.0 / (xb.shape[0] * energy) if normalized else 1.0, dtype)}
            a, p, s_a, s_p, l = _stream_step(tx, a, p, s_a, s_p, xb, hp_t, prec)
            losses.append(l)
            if progress:
                bar.set_postfix(loss=f"{float(l):.5g}", rel=f"{float(l) / energy:.4f}",
                                refresh=False)
                bar.update(1)
    return _finish(a * hp["scale_a"], p * hp["scale_p"], jnp.stack(losses), energy, (h, w, c),
                   layer, settings)


# ------------------------------------------------------------------------------------------------
# Generators
# ------------------------------------------------------------------------------------------------
def _is_stylegan2(gen) -> bool:
    return hasattr(gen, "synthesis_split") and hasattr(gen, "conv_layer_names")


def _require_generator(gen, what: str):
    from . import _biggan_split

    if not (_is_stylegan2(gen) or _biggan_split.is_biggan(gen)):
        kind = type(gen).__name__
        raise ValueError(
            f"panda.{what} supports StyleGAN2 generators (split at gen.conv_layer_names, e.g. "
            f"'b16.conv1') and BigGAN-deep (split after 'block3', 'attention', ...); got {kind}. "
            f"For other models, compute [N, H, W, C] features yourself and call "
            f"panda.fit(features, ...)")


def resolve_layer(gen, layer) -> str:
    """A split point by name or by the reference's genforce index L (the features after layers
    ``0..L-1``). StyleGAN2: conv names (``"b16.conv1"``; ``L = 5`` is ``b16.conv1`` at 1024 px).
    BigGAN-deep: the reference's ``generator.layers``, ``"block0"`` ... with ``"attention"``
    before block ``attention_layer_position``."""
    from . import _biggan_split

    _require_generator(gen, "resolve_layer")
    if _biggan_split.is_biggan(gen):
        return _biggan_split.layer_names(gen)[_biggan_split.resolve(gen, layer)]
    names = gen.conv_layer_names
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not 1 <= layer <= len(names):
            raise ValueError(f"layer index {layer} out of range: the reference's index L runs "
                             f"1..{len(names)} for this generator ({names[0]} .. {names[-1]})")
        return names[int(layer) - 1]
    if layer not in names:
        raise ValueError(f"unknown layer {layer!r}; choose one of {list(names)} (or the "
                         f"reference's index 1..{len(names)})")
    return str(layer)


def _num_classes(gen) -> int:
    from . import _biggan_split

    return gen.num_classes if _biggan_split.is_biggan(gen) else gen.c_dim


def _class_rows(gen, c, n: int):
    classes = _num_classes(gen)
    if classes == 0:
        if c is not None:
            raise ValueError("c was given but this generator is unconditional")
        return None
    if c is None:
        raise ValueError(f"this generator is conditional: pass c of shape [{classes}] or "
                         f"[N, {classes}] (e.g. jaxedit.one_hot([k], {classes})[0])")
    c = np.asarray(c, np.float64)
    if c.ndim == 1:
        c = c[None]
    if c.shape[0] == 1:
        c = np.repeat(c, n, axis=0)
    if c.shape != (n, classes):
        raise ValueError(f"c must have shape [{classes}] or [{n}, {classes}], got {c.shape}")
    _check_finite(c, "c")
    return c


class _LayerFeatures:
    """Features of a StyleGAN2 layer for z / ws batches (mapping + synthesis_split, jitted)."""

    latents_shape = "ws [N, num_ws, w_dim]"

    def __init__(self, gen, layer, truncation_psi, truncation_cutoff, noise_mode, dtype,
                 precision):
        self.gen, self.layer = gen, layer
        self.kw = dict(noise_mode=noise_mode, dtype=dtype, precision=precision)
        self.psi, self.cutoff = truncation_psi, truncation_cutoff

    def seed_z(self, seed: int) -> np.ndarray:
        """NVIDIA generate.py's z for a seed: [1, z_dim]."""
        from .models.stylegan2 import seed_to_z

        return seed_to_z(seed, self.gen.z_dim)

    def stream_z(self, t: int, n: int) -> np.ndarray:
        """The reference's z for step t: ``RandomState(t).randn(n, z_dim)``."""
        return reference_z(t, n, self.gen.z_dim)

    def check_latents(self, latents) -> jax.Array:
        ws = jnp.asarray(latents)
        if ws.ndim != 3 or ws.shape[1:] != (self.gen.num_ws, self.gen.w_dim):
            raise ValueError(f"latents must be ws [N, {self.gen.num_ws}, {self.gen.w_dim}], got "
                             f"{tuple(ws.shape)}")
        _check_finite(ws, "latents")
        return ws

    def from_z(self, z, c=None):
        ws = self.gen.mapping(z, c, self.psi, self.cutoff, dtype=self.kw["dtype"],
                              precision=self.kw["precision"])
        return self.from_latents(ws)

    def from_latents(self, ws, c=None):
        return self.gen.synthesis_split(ws, self.layer, **self.kw).x


class _BigGANFeatures:
    """Features of a BigGAN-deep layer for z batches (``truncation · truncnorm`` z, class
    vectors; latents are z)."""

    latents_shape = "z [N, z_dim]"

    def __init__(self, gen, layer, truncation, dtype, precision):
        if not 0 < truncation <= 1:
            raise ValueError(f"truncation must be in (0, 1] for BigGAN, got {truncation}")
        self.gen, self.layer, self.truncation = gen, layer, float(truncation)
        self.dtype, self.precision = dtype, precision

    def seed_z(self, seed: int) -> np.ndarray:
        """jaxedit synth's BigGAN z for a seed: ``truncated_noise_sample(1, z_dim, truncation,
        seed)``."""
        from .models.biggan import truncated_noise_sample

        return truncated_noise_sample(1, self.gen.z_dim, self.truncation, seed=int(seed))

    def stream_z(self, t: int, n: int) -> np.ndarray:
        from .models.biggan import truncated_noise_sample

        return truncated_noise_sample(n, self.gen.z_dim, self.truncation, seed=int(t))

    def check_latents(self, latents) -> jax.Array:
        z = jnp.asarray(latents)
        if z.ndim != 2 or z.shape[1] != self.gen.z_dim:
            raise ValueError(f"latents must be z [N, {self.gen.z_dim}] for BigGAN, got "
                             f"{tuple(z.shape)}")
        _check_finite(z, "latents")
        return z

    def from_z(self, z, c=None):
        return self.from_latents(z, c)

    def from_latents(self, z, c=None):
        from . import _biggan_split

        return _biggan_split.split(self.gen, z, c, self.layer, self.truncation, dtype=self.dtype,
                                   precision=self.precision)[0]


def reference_z(seed: int, n: int, z_dim: int) -> np.ndarray:
    """The reference's latents for step/seed t: ``np.random.seed(t); randn(n, z_dim)``. -> [n, z_dim]."""
    return np.random.RandomState(int(seed)).randn(int(n), int(z_dim))


def fit_generator(gen, layer, ranks=REFERENCE_RANKS, steps: int = 1000, *, seeds=None,
                  latents=None, batch_size: int | None = None, truncation_psi: float = 1.0,
                  truncation_cutoff: int | None = None, c=None, noise_mode: str = "const",
                  optimizer=None, learning_rate: float | None = None, init_appearance="hosvd",
                  init_parts=None, hosvd_samples: int = 1000, key=None, progress: bool = False,
                  max_cache_bytes: int = 2**30, feature_batch: int = 32, dtype=None,
                  precision: Precision = "highest") -> PandaResult:
    """:func:`fit` on a generator layer's features, drawn from the generator batch by batch.

    Generators: StyleGAN2 (layers ``"b16.conv1"`` ...) and BigGAN-deep (``"block3"``,
    ``"attention"`` ...; ``c`` is required, ``truncation_psi`` is BigGAN's truncation in (0, 1],
    which scales z and picks the BN statistics); either also by the reference's index L
    (:func:`resolve_layer`).

    Samples:
      * ``seeds`` (StyleGAN2: NVIDIA ``generate.py`` latents, ``RandomState(seed).randn(1,
        z_dim)``; BigGAN: ``truncated_noise_sample(1, z_dim, truncation, seed)`` as ``jaxedit
        synth``) or ``latents`` (StyleGAN2 ws ``[N, num_ws, w_dim]``, BigGAN z ``[N, z_dim]``):
        a fixed pool of N samples. If its features fit in ``max_cache_bytes`` (default 1 GiB)
        they are computed once (``feature_batch`` at a time) and fitted as an array
        (``batch_size`` None = full gradient); otherwise each step computes the features of
        ``batch_size`` pool samples (needs ``batch_size``).
      * neither: the reference's stochastic mode, a fresh batch every step: step t uses
        ``z = RandomState(t).randn(batch_size or 1, z_dim)`` (BigGAN: truncated normal with seed
        t); the HOSVD init uses the reference's 10 samples of seed i for ``i < hosvd_samples / 10``.

    Memory is bounded by ``max(max_cache_bytes, feature_batch · H·W·C)`` feature values.
    ``truncation_psi`` (reference: 1.0), ``truncation_cutoff``, ``c`` (conditional generators:
    ``[c_dim]`` or ``[N, c_dim]``; BigGAN: class vectors ``[num_classes]`` or
    ``[N, num_classes]``) and ``noise_mode`` (StyleGAN2; reference: const noise) apply to every
    sample. Other arguments as :func:`fit`. Returns a :class:`PandaResult` with ``layer`` set.
    """
    from . import _biggan_split

    _require_generator(gen, "fit_generator")
    layer = resolve_layer(gen, layer)
    steps = _check_steps(steps)
    if seeds is not None and latents is not None:
        raise ValueError("pass seeds or latents, not both")
    if not isinstance(feature_batch, (int, np.integer)) or feature_batch < 1:
        raise ValueError(f"feature_batch must be a positive integer, got {feature_batch!r}")
    key = jax.random.key(0) if key is None else key
    biggan = _biggan_split.is_biggan(gen)
    if biggan:
        lf = _BigGANFeatures(gen, layer, truncation_psi, dtype, precision)
        source = dict(layer=layer, truncation=float(truncation_psi), family="biggan")
    else:
        lf = _LayerFeatures(gen, layer, truncation_psi, truncation_cutoff, noise_mode, dtype,
                            precision)
        source = dict(layer=layer, truncation_psi=float(truncation_psi), noise_mode=noise_mode,
                      truncation_cutoff=truncation_cutoff)

    if seeds is None and latents is None:       # the reference's stochastic mode
        b = 1 if batch_size is None else int(batch_size)
        if b < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        c_one = _class_rows(gen, c, 1)

        def stream(t, _key):
            return lf.from_z(lf.stream_z(t, b), None if c_one is None else np.repeat(c_one, b, 0))

        def hosvd_stream(i, _key):
            return lf.from_z(lf.stream_z(i, 10),
                             None if c_one is None else np.repeat(c_one, 10, axis=0))

        source.update(samples="reference stream: step t -> " + (
            "truncated_noise_sample(B, z_dim, truncation, seed=t)" if biggan
            else "RandomState(t).randn(B, z_dim)"), batch_size=b)
        return _fit_generator_stream(stream, hosvd_stream, ranks, steps, optimizer, learning_rate,
                                     init_appearance, init_parts, hosvd_samples, key, progress,
                                     layer, precision, source)

    if seeds is not None:
        seeds = [int(s) for s in np.asarray(seeds).reshape(-1)]
        if not seeds:
            raise ValueError("seeds is empty")
        n = len(seeds)
        cs = _class_rows(gen, c, n)

        def pool(idx):
            z = np.concatenate([lf.seed_z(seeds[i]) for i in idx])
            return lf.from_z(z, None if cs is None else cs[np.asarray(idx)])

        source.update(samples=f"{n} seeds", seeds=_seed_summary(seeds))
    else:
        lat = lf.check_latents(latents)
        n = lat.shape[0]
        if n == 0:
            raise ValueError("latents is empty")
        cs = _class_rows(gen, c, n) if biggan else None

        def pool(idx):
            return lf.from_latents(lat[np.asarray(idx)],
                                   None if cs is None else cs[np.asarray(idx)])

        source.update(samples=f"{n} latents")
    x0 = pool([0])
    _, h, w, ch = x0.shape
    itemsize = jnp.dtype(x0.dtype).itemsize
    if n * h * w * ch * itemsize <= max_cache_bytes:
        feats = []
        from ._io import progress as progress_bar

        with progress_bar(n, "panda features", enabled=progress) as bar:
            for i in range(0, n, feature_batch):
                idx = list(range(i, min(i + feature_batch, n)))
                feats.append(pool(idx))
                bar.update(len(idx))
        x = jnp.concatenate(feats)
        res = fit(x, ranks, steps, optimizer, learning_rate, init_appearance, init_parts,
                  batch_size, key, progress, layer=layer, precision=precision)
        return dataclasses.replace(res, settings={**res.settings, **source})
    if batch_size is None:
        raise ValueError(
            f"the features of {n} samples ({n * h * w * ch * itemsize / 2**30:.2f} GiB) exceed "
            f"max_cache_bytes = {max_cache_bytes}: pass batch_size to stream mini-batches (or "
            f"raise max_cache_bytes)")
    b = int(batch_size)
    if not 1 <= b <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size!r}")
    pick_key = jax.random.fold_in(key, 1)

    def stream(t, _key):
        idx = np.asarray(jax.random.choice(jax.random.fold_in(pick_key, t), n, (b,),
                                           replace=False))
        return pool(list(idx))

    def hosvd_stream(i, _key):
        lo = (i * feature_batch) % n
        return pool(list(range(lo, min(lo + feature_batch, n))))

    source.update(batch_size=b)
    return _fit_generator_stream(stream, hosvd_stream, ranks, steps, optimizer, learning_rate,
                                 init_appearance, init_parts, min(hosvd_samples, n), key,
                                 progress, layer, precision, source)


def _seed_summary(seeds: Sequence[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def _fit_generator_stream(stream, hosvd_stream, ranks, steps, optimizer, learning_rate,
                          init_appearance, init_parts, hosvd_samples, key, progress, layer,
                          precision, source):
    tx, lr, mode, normalized = _resolve_optimizer(optimizer, learning_rate)
    prec = _ops.as_precision(precision)
    x0 = _check_features(stream(0, None), "generator features")
    _, h, w, c = x0.shape
    dtype = x0.dtype
    # HOSVD init and the feature energy from the reference's HOSVD samples.
    scat, count, i = jnp.zeros((c, c), dtype), 0, 0
    need_hosvd = isinstance(init_appearance, str) and init_appearance == "hosvd"
    target = max(int(hosvd_samples), 1) if need_hosvd else 1
    from ._io import progress as progress_bar

    with progress_bar(target, "panda hosvd", enabled=progress and need_hosvd) as bar:
        while count < target:
            xb = _check_features(hosvd_stream(i, None), "generator features")
            scat = scat + _scatter(xb.reshape(xb.shape[0], h * w, c), precision=prec)
            count += xb.shape[0]
            i += 1
            bar.update(xb.shape[0])
    scat = scat / count
    energy = float(jnp.trace(scat))
    init_a = _hosvd_from_scatter(scat)[:, :_check_ranks(ranks, h * w, c)[0]] if need_hosvd \
        else init_appearance
    settings = dict(optimizer=mode, learning_rate=lr, steps=steps, batch_size=None,
                    precision=str(precision), ranks=None,
                    appearance_rate=APPEARANCE_RATE if normalized else 1.0)
    res = _fit_stream(stream, ranks, steps, tx, lr, mode, normalized, init_a, init_parts, key,
                      progress, layer, prec, hosvd_samples, settings, energy=energy,
                      first_batch=x0)
    st = {**res.settings, **source}
    if need_hosvd:
        st["init_appearance"] = "hosvd"
    st["hosvd_samples"] = count if need_hosvd else 0
    return dataclasses.replace(res, settings=st)


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


def refine(result: PandaResult, features, steps: int = 100, learning_rate: float | None = None,
           optimizer=None, *, precision: Precision = "highest", return_losses: bool = False):
    """Sample-specific parts ``P̃_i``: the parts objective on one sample with ``A`` frozen, from the
    global parts (the reference's ``refine``), with the same optimizer choices as :func:`fit`.

    ``"pgd"`` is the reference's loop exactly (gradient of that sample's loss, clamp at 0; its
    defaults are lr 1e-8 for 1000 steps, 1e-5 for 100 in its demo); the default Adam works on the
    sample's loss divided by ``‖Z_i‖²_F``.

    Args:
      features: ``[H, W, C]`` (one sample) or ``[N, H, W, C]`` (each refined independently).
    Returns:
      parts ``[H, W, R_S]`` (or ``[N, H, W, R_S]``); with ``return_losses`` also the raw losses
      ``[steps]`` (``[N, steps]``) before each step.
    """
    _check_result(result)
    steps = _check_steps(steps)
    tx, lr, mode, normalized = _resolve_optimizer(optimizer, learning_rate, "refine")
    x = jnp.asarray(features)
    single = x.ndim == 3
    x = _check_features(x[None] if single else x)
    n, h, w, c = x.shape
    if (h, w, c) != result.feature_shape:
        raise ValueError(f"features have [H, W, C] = {(h, w, c)} but the factors were learned on "
                         f"{result.feature_shape}")
    xs = x.reshape(n, h * w, c)
    a = jnp.asarray(result.appearance, x.dtype)
    p = jnp.asarray(result.parts_matrix(), x.dtype)
    energy = jnp.sum(jnp.square(xs), axis=(1, 2))
    if normalized:
        if bool(jnp.any(energy <= 0)):
            raise ValueError("a sample's features are all zero: nothing to refine")
        weights = 1.0 / energy
    else:
        weights = jnp.ones_like(energy)
    hp = _hyper(normalized, lr, (h, w, c), result.ranks, 1, 1.0, steps, x.dtype)
    parts, losses = _refine_jit(tx, a, p / hp["scale_p"], xs, weights.astype(x.dtype), hp,
                                steps=steps, precision=_ops.as_precision(precision))
    parts = (parts * hp["scale_p"]).reshape(n, h, w, -1)
    if single:
        parts, losses = parts[0], losses[0]
    if not bool(jnp.all(jnp.isfinite(losses))):
        warnings.warn("PandA refine: the loss became non-finite: lower the learning rate",
                      PandaConvergenceWarning, stacklevel=2)
    return (parts, losses) if return_losses else parts


# ------------------------------------------------------------------------------------------------
# Edits
# ------------------------------------------------------------------------------------------------
def _check_result(result) -> None:
    if not isinstance(result, PandaResult):
        raise ValueError(f"expected a PandaResult (from panda.fit / panda.load), got "
                         f"{type(result).__name__}")


def _edit_spec(parts, appearances, strengths, r_s: int, r_c: int):
    """-> list of (part indices, appearance index, strength)."""
    def as_list(v):
        return list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]

    if isinstance(parts, (int, np.integer)):
        parts = [[parts]]
    parts = [sorted({int(k) for k in as_list(ps)}) for ps in as_list(parts)]
    apps = [int(j) for j in as_list(appearances)]
    lams = [float(s) for s in as_list(strengths)]
    if not (len(parts) == len(apps) == len(lams)) or not parts:
        raise ValueError(f"parts, appearances and strengths need one entry per edit, got "
                         f"{len(parts)}, {len(apps)} and {len(lams)}")
    for ps in parts:
        if not ps or min(ps) < 0 or max(ps) >= r_s:
            raise ValueError(f"part indices must be in [0, R_S = {r_s}), got {ps}")
    for j in apps:
        if not 0 <= j < r_c:
            raise ValueError(f"appearance indices must be in [0, R_C = {r_c}), got {j}")
    for lam in lams:
        if not math.isfinite(lam):
            raise ValueError(f"strengths must be finite, got {lam}")
    return list(zip(parts, apps, lams))


def part_map(parts_factors, parts) -> np.ndarray:
    """``minmax01(Σ_{k∈parts} P[..., k])``: ``[H, W, R_S]`` (or ``[N, H, W, R_S]``) -> ``[H, W]``
    (``[N, H, W]``), each map rescaled to [0, 1] (the reference's ``mapRange``)."""
    pf = np.asarray(parts_factors, np.float64)
    idx = [int(k) for k in ([parts] if isinstance(parts, (int, np.integer)) else parts)]
    m = pf[..., idx].sum(axis=-1)
    lo = m.min(axis=(-2, -1), keepdims=True)
    hi = m.max(axis=(-2, -1), keepdims=True)
    if np.any(hi <= lo):
        raise ValueError(f"part(s) {idx} are constant over the feature map (all zero?): there is "
                         f"no region to edit; choose other parts")
    return (m - lo) / (hi - lo)


def edit_direction(result: PandaResult, parts, appearances, strengths, *, parts_factors=None
                   ) -> jax.Array:
    """The feature-space edit ``Σ_i λ_i · a_{app_i} ⊗ minmax01(Σ_{k∈parts_i} P[:, k])``.

    Args:
      parts: one entry per edit, each a part index or a list of part indices (summed), e.g.
        ``[[0, 1], [2]]``; a bare int is one edit.
      appearances: one appearance index per edit; strengths: one λ per edit.
      parts_factors: parts to use instead of ``result.parts``: ``[H, W, R_S]`` or refined
        per-sample parts ``[N, H, W, R_S]`` (from :func:`refine`).
    Returns:
      ``[H, W, C]`` (``[N, H, W, C]`` for per-sample parts), in the appearance's dtype.
    """
    _check_result(result)
    pf = np.asarray(result.parts if parts_factors is None else parts_factors)
    h, w, c = result.feature_shape
    if pf.ndim not in (3, 4) or pf.shape[-3:] != (h, w, result.ranks[1]):
        raise ValueError(f"parts_factors must be [{h}, {w}, {result.ranks[1]}] or "
                         f"[N, {h}, {w}, {result.ranks[1]}], got {pf.shape}")
    _check_finite(pf, "parts_factors")
    spec = _edit_spec(parts, appearances, strengths, result.ranks[1], result.ranks[0])
    a = jnp.asarray(result.appearance)
    d = 0
    for ps, j, lam in spec:
        m = jnp.asarray(part_map(pf, ps), a.dtype)
        d = d + lam * m[..., None] * a[:, j]
    return d


def _resume(gen, ws, state, x, drop_skip: bool, noise_mode, key, dtype, precision):
    from .models.stylegan2 import SynthesisState

    if not drop_skip:
        st = SynthesisState(x=x, img=state.img, residual=state.residual, layer=state.layer)
        return gen.synthesis_resume(ws, st, noise_mode=noise_mode, key=key, dtype=dtype,
                                    precision=precision)
    # The reference's genforce port restarts the skip image at the split: every ToRGB output of
    # the convs before the split is dropped, including the current block's when the split is its
    # conv1 (that ToRGB ran with the *first* pass). Resume after the block's tail with no image.
    ws, _ = gen._prepare(ws, None, dtype, noise_mode, key)
    start = gen._op_index_after(state.layer)
    if state.layer.endswith(".conv1"):
        start += 1
    n_ops = len(gen._ops_list())
    if start >= n_ops:
        raise ValueError(f"drop_skip=True at the last block ({state.layer}) leaves no ToRGB "
                         "after the split: the image would be empty")
    out, _ = gen._program(ws, None, {"x": jnp.asarray(x, ws.dtype), "img": None,
                                     "residual": state.residual}, key, start=start, stop=n_ops,
                          noise_mode=noise_mode, precision=precision, collect=False)
    return out["img"]


def edit(gen, latents, result: PandaResult, parts, appearances, strengths, *,
         parts_factors=None, layer: str | None = None, drop_skip: bool = False,
         noise_mode: str = "const", key=None, c=None, truncation: float = 1.0, dtype=None,
         precision: Precision = "highest", return_original: bool = False):
    """Local PandA edit: split the synthesis at the factors' layer, add :func:`edit_direction` to
    the features, resume.

    StyleGAN2: the skip image accumulated before the split is carried across it (so zero
    strength returns the unedited image, equal to ``gen.synthesis(latents)``).
    ``drop_skip=True`` reproduces the reference (genforce port), which restarts the skip image
    at the split in both the original and the edited image (every ToRGB contribution of the
    layers before the split is lost). BigGAN-deep: the remaining layers and the output head run
    with the same conditioning vector (zero strength returns ``gen(z, c, truncation)``).

    Args:
      gen: a StyleGAN2 or BigGAN-deep generator. latents: StyleGAN2 ws ``[N, num_ws, w_dim]``;
        BigGAN z ``[N, z_dim]`` (with ``c``, class vectors ``[num_classes]`` or
        ``[N, num_classes]``, and ``truncation``).
      parts, appearances, strengths, parts_factors: as :func:`edit_direction`.
      layer: override ``result.layer``.
    Returns:
      edited images ``[N, H, W, 3]``; with ``return_original``, ``(original, edited)`` computed
      the same way.
    """
    from . import _biggan_split

    _check_result(result)
    _require_generator(gen, "edit")
    name = layer if layer is not None else result.layer
    if name is None:
        raise ValueError("the factors record no layer: pass layer=...")
    name = resolve_layer(gen, name)
    biggan = _biggan_split.is_biggan(gen)
    if biggan:
        if drop_skip:
            raise ValueError("drop_skip applies to StyleGAN2 (BigGAN has no skip image)")
        z = _BigGANFeatures(gen, name, truncation, dtype, precision).check_latents(latents)
        x, cond = _biggan_split.split(gen, z, _class_rows(gen, c, z.shape[0]), name, truncation,
                                      dtype=dtype, precision=precision)

        def resume(feats):
            return _biggan_split.resume(gen, feats, cond, name, truncation, precision=precision)
    else:
        if c is not None:
            raise ValueError("c applies to BigGAN; StyleGAN2 latents (ws) already include it")
        ws = jnp.asarray(latents)
        state = gen.synthesis_split(ws, name, noise_mode=noise_mode, key=key, dtype=dtype,
                                    precision=precision)
        x = state.x

        def resume(feats):
            return _resume(gen, ws, state, feats, drop_skip, noise_mode, key, dtype, precision)
    if tuple(x.shape[1:]) != result.feature_shape:
        raise ValueError(f"layer {name} has features [H, W, C] = {tuple(x.shape[1:])} but "
                         f"the factors were learned on {result.feature_shape}")
    d = edit_direction(result, parts, appearances, strengths, parts_factors=parts_factors)
    if d.ndim == 4 and d.shape[0] != x.shape[0]:
        raise ValueError(f"per-sample parts_factors are for {d.shape[0]} samples, latents for "
                         f"{x.shape[0]}")
    edited = resume(x + jnp.asarray(d, x.dtype))
    if not return_original:
        return edited
    return resume(x), edited


# ------------------------------------------------------------------------------------------------
# Saliency
# ------------------------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("precision",))
def _coords(x, a, *, precision):
    return jnp.einsum("nhwc,cr->nhwr", x, a, precision=precision)


def saliency(result: PandaResult, features, *, precision: Precision = "highest") -> jax.Array:
    """Coordinates in the appearance basis, ``Aᵀ Z_i``: ``[N, H, W, C]`` -> ``[N, H, W, R_C]``
    (``[H, W, C]`` -> ``[H, W, R_C]``); channel k is the saliency map of appearance k."""
    _check_result(result)
    x = jnp.asarray(features)
    single = x.ndim == 3
    x = _check_features(x[None] if single else x)
    if x.shape[-1] != result.feature_shape[2]:
        raise ValueError(f"features have C = {x.shape[-1]} channels, the factors "
                         f"{result.feature_shape[2]}")
    out = _coords(x, jnp.asarray(result.appearance, x.dtype), precision=_ops.as_precision(precision))
    return out[0] if single else out


def _concepts(concepts, r_c: int) -> list[int]:
    if concepts is None:
        return list(range(r_c))
    ks = [int(k) for k in ([concepts] if isinstance(concepts, (int, np.integer)) else concepts)]
    if not ks or min(ks) < 0 or max(ks) >= r_c:
        raise ValueError(f"concepts must be appearance indices in [0, R_C = {r_c}), got {ks}")
    return ks


def saliency_thresholds(result: PandaResult, features, concepts=None) -> np.ndarray:
    """The reference's mask thresholds: the mean of ``(Aᵀ Z_i)[k]`` over the given samples and
    positions, ``[K]`` for the chosen concepts (all R_C by default)."""
    ks = _concepts(concepts, result.ranks[0])
    return np.asarray(saliency(result, features), np.float64)[..., ks].mean(axis=(0, 1, 2))


def lanczos_upsample(maps, size, *, backend: str = "jax") -> np.ndarray:
    """Lanczos-3 resize of float maps ``[..., h, w]`` -> ``[..., H, W]`` (float32).

    ``backend="jax"`` (default): ``jax.image.resize(method="lanczos3")``, batched on the device;
    ``"pil"``: PIL's ``LANCZOS`` map by map on float32 ``"F"`` images, the reference notebook's
    call. The two agree to float32 rounding (≤ 3e-6 absolute on unit-scale maps, measured for
    8->64, 16->256, 7->100, 32->1024, 64->512, 16->24 and 64->32; tested), so thresholded masks
    can differ only where a value is within that of the threshold.
    """
    hh, ww = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    m = np.asarray(maps, np.float32)
    if backend == "jax":
        out = jax.image.resize(jnp.asarray(m), m.shape[:-2] + (hh, ww), method="lanczos3")
        return np.asarray(out, np.float32)
    if backend != "pil":
        raise ValueError(f"backend must be 'jax' or 'pil', got {backend!r}")
    from PIL import Image

    flat = m.reshape((-1,) + m.shape[-2:])
    lanczos = getattr(Image, "Resampling", Image).LANCZOS
    out = np.stack([np.asarray(Image.fromarray(f, mode="F").resize((ww, hh), lanczos))
                    for f in flat])
    return out.reshape(m.shape[:-2] + (hh, ww))


def saliency_masks(result: PandaResult, features, size, concepts=None, *, thresholds=None,
                   backend: str = "jax") -> np.ndarray:
    """Binary concept masks as in the reference notebook (``localize-concepts.ipynb``).

    ``(Aᵀ Z_i)[k]`` is upsampled to the image size with a Lanczos-3 filter (the notebook uses
    PIL's ``LANCZOS`` on the float32 map; :func:`lanczos_upsample`'s default JAX backend equals it
    to float32 rounding, ``backend="pil"`` calls PIL itself) and thresholded ``>=`` the mean of
    the *low-resolution* coordinates over the given samples and positions
    (:func:`saliency_thresholds`), or ``thresholds [K]`` computed on another sample set.

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
        raise ValueError(f"thresholds must have shape [{len(ks)}] (one per concept), got {thr.shape}")
    _check_finite(thr, "thresholds")
    up = lanczos_upsample(np.moveaxis(coords, -1, 1), size, backend=backend)   # [N, K, H', W']
    return np.moveaxis(up >= thr.astype(np.float32)[None, :, None, None], 1, -1)


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------
def part_region(result: PandaResult, parts, threshold: float = 0.5, *, parts_factors=None
                ) -> np.ndarray:
    """A region from learned parts: ``minmax01(Σ_{k∈parts} P[:, :, k]) >= threshold``, ``[H, W]``
    bool at the feature resolution (``[N, H, W]`` for per-sample ``parts_factors``); regions
    are resampled to the image by nearest neighbour wherever jaxedit uses them."""
    _check_result(result)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    pf = result.parts if parts_factors is None else parts_factors
    idx = [parts] if isinstance(parts, (int, np.integer)) else list(parts)
    _edit_spec([idx], [0], [0.0], result.ranks[1], result.ranks[0])
    return part_map(pf, idx) >= threshold


def evaluate_edit(gen, latents, result: PandaResult, parts, appearances, strengths, region=None,
                  *, threshold: float = 0.5, **edit_kw) -> dict:
    """ROIR and masked MSE (:func:`jaxedit.metrics.locality`) of a PandA edit against the same
    latents unedited (both through :func:`edit`).

    ``region``: any region :func:`jaxedit.regions.region_mask` accepts (bool mask, Box, preset,
    4-tuple) or None: the learned parts of the edit, :func:`part_region` (union of every edit's
    parts) at ``threshold``. The result records the region's provenance under ``"region"``.
    """
    from .metrics import locality

    spec = _edit_spec(parts, appearances, strengths, result.ranks[1], result.ranks[0])
    if region is None:
        union = sorted({k for ps, _, _ in spec for k in ps})
        region = part_region(result, union, threshold)
        how = f"panda parts {union} >= {threshold:g} (minmax-scaled, feature grid)"
    else:
        how = region if isinstance(region, str) else f"given {type(region).__name__}"
    x0, x1 = edit(gen, latents, result, parts, appearances, strengths, return_original=True,
                  **edit_kw)
    out = locality(np.asarray(x0), np.asarray(x1), region)
    out["region"] = how
    out["edits"] = [{"parts": ps, "appearance": j, "strength": lam} for ps, j, lam in spec]
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = np.logical_and(a, b).sum(axis=(-2, -1))
    union = np.logical_or(a, b).sum(axis=(-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _nearest(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """[..., h0, w0] bool -> [..., h, w] by nearest neighbour at pixel centres."""
    rows = np.floor((np.arange(h) + 0.5) * mask.shape[-2] / h).astype(int)
    cols = np.floor((np.arange(w) + 0.5) * mask.shape[-1] / w).astype(int)
    return mask[..., rows, :][..., cols]


def part_iou(result: PandaResult, ground_truth, threshold: float = 0.5, *, parts_factors=None,
             resample: str = "lanczos", max_parts: int = 1) -> dict[str, dict]:
    """IoU of the best-matching learned part for every ground-truth part mask.

    Each learned part k, ``minmax01(P_k)`` (:func:`part_map`), is brought to the ground truth's
    grid and thresholded ``>= threshold``: ``resample="lanczos"`` (default) upsamples the soft
    map with :func:`lanczos_upsample` first, as the reference's saliency masks do;
    ``"nearest"`` thresholds at the feature grid (:func:`part_region`) and resamples the binary
    mask by nearest neighbour. With per-sample masks ``[N, H', W']`` (or per-sample
    ``parts_factors [N, H, W, R_S]`` from :func:`refine`) the IoU is averaged over the samples.

    ``max_parts > 1`` also searches unions of up to that many parts for each mask (a region made
    of several parts, e.g. both eyes): greedily, starting from the best part, adding the part
    that raises the IoU of the union of the thresholded masks most, while it rises.

    Args:
      ground_truth: ``{name: [H', W'] or [N, H', W'] bool}`` (e.g. ``toyfaces.part_masks``).
    Returns:
      ``{name: {"part": best k, "iou": its IoU, "ious": [R_S] every part's IoU}}``; with
      ``max_parts > 1`` also ``"parts"`` (the chosen union) and ``"union_iou"``.
    """
    _check_result(result)
    if isinstance(max_parts, bool) or not isinstance(max_parts, (int, np.integer)) \
            or max_parts < 1:
        raise ValueError(f"max_parts must be a positive integer, got {max_parts!r}")
    if resample not in ("lanczos", "nearest"):
        raise ValueError(f"resample must be 'lanczos' or 'nearest', got {resample!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    pf = np.asarray(result.parts if parts_factors is None else parts_factors)
    r_s = result.ranks[1]
    maps = []
    for k in range(r_s):
        try:
            maps.append(part_map(pf, [k]))
        except ValueError:            # an all-zero part covers nothing
            maps.append(None)
    out = {}
    cache: dict[tuple[int, int], list] = {}
    for name, gt in dict(ground_truth).items():
        g = np.asarray(gt).astype(bool)
        if g.ndim not in (2, 3):
            raise ValueError(f"ground_truth[{name!r}] must be [H, W] or [N, H, W], got {g.shape}")
        hh, ww = g.shape[-2:]
        if (hh, ww) not in cache:
            masks = []
            for m in maps:
                if m is None:
                    masks.append(np.zeros(pf.shape[:-3] + (hh, ww), bool))
                elif resample == "lanczos":
                    masks.append(lanczos_upsample(m, (hh, ww)) >= threshold)
                else:
                    masks.append(_nearest(m >= threshold, hh, ww))
            cache[(hh, ww)] = masks
        masks = cache[(hh, ww)]
        ious = [float(np.mean(_iou(m, g))) for m in masks]
        best = int(np.argmax(ious))
        out[name] = {"part": best, "iou": ious[best], "ious": ious}
        if max_parts > 1:
            chosen, union, val = [best], masks[best], ious[best]
            while len(chosen) < min(max_parts, r_s):
                cand = [(float(np.mean(_iou(union | masks[k], g))), k)
                        for k in range(r_s) if k not in chosen]
                v, k = max(cand)
                if v <= val:
                    break
                chosen, union, val = chosen + [k], union | masks[k], v
            out[name].update(parts=chosen, union_iou=val)
    return out


# ------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------
def save(result: PandaResult, path, *, overwrite: bool = True) -> str:
    """Write the factors and their settings to ``path`` (.npz, atomically; ``overwrite=False``
    refuses an existing file) -> the path written."""
    from ._io import save_npz

    _check_result(result)
    return save_npz(path, overwrite=overwrite, format="jaxedit-panda", version=np.int64(FORMAT_VERSION),
                    appearance=np.asarray(result.appearance), parts=np.asarray(result.parts),
                    losses=np.asarray(result.losses),
                    feature_energy=np.float64(result.feature_energy),
                    layer="" if result.layer is None else result.layer,
                    converged=np.bool_(result.converged),
                    settings=json.dumps(dict(result.settings), default=str, sort_keys=True))


def load(path) -> PandaResult:
    """Read factors written by :func:`save` (no pickles); every key and shape is checked."""
    from ._io import load_npz

    d = load_npz(path, ("format", "appearance", "parts", "losses", "feature_energy", "layer",
                        "settings"), "PandA factors")
    path = os.fspath(path)
    if str(d["format"]) != "jaxedit-panda":
        raise ValueError(f"{path}: not a jaxedit PandA factors file (format {str(d['format'])!r})")
    a, p = d["appearance"], d["parts"]
    if a.ndim != 2 or p.ndim != 3 or not np.issubdtype(a.dtype, np.floating) \
            or not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"{path}: 'appearance' must be float [C, R_C] and 'parts' float "
                         f"[H, W, R_S], got {a.shape} {a.dtype} and {p.shape} {p.dtype}")
    if p.shape[2] > p.shape[0] * p.shape[1] or a.shape[1] > a.shape[0]:
        raise ValueError(f"{path}: inconsistent ranks: appearance {a.shape}, parts {p.shape}")
    for k in ("appearance", "parts"):
        if not np.all(np.isfinite(d[k])):
            raise ValueError(f"{path}: '{k}' contains non-finite values")
    if np.any(p < 0):
        raise ValueError(f"{path}: 'parts' has negative entries (PandA parts are non-negative)")
    try:
        settings = json.loads(str(d["settings"]))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: 'settings' is not valid JSON ({e})") from None
    energy = float(d["feature_energy"])
    if not math.isfinite(energy) or energy <= 0:
        raise ValueError(f"{path}: 'feature_energy' must be finite and > 0, got {energy}")
    layer = str(d["layer"]) or None
    return PandaResult(appearance=a, parts=p, losses=np.asarray(d["losses"]),
                       feature_energy=energy, layer=layer,
                       converged=bool(d["converged"]) if "converged" in d else True,
                       settings=settings)


__all__ = [
    "APPEARANCE_RATE",
    "DEFAULT_LEARNING_RATE",
    "PandaConvergenceWarning",
    "PandaResult",
    "REFERENCE_LEARNING_RATE",
    "edit",
    "edit_direction",
    "evaluate_edit",
    "fit",
    "fit_generator",
    "hosvd",
    "lanczos_upsample",
    "load",
    "loss",
    "natural_scales",
    "part_iou",
    "part_map",
    "part_region",
    "reference_z",
    "refine",
    "resolve_layer",
    "save",
    "saliency",
    "saliency_masks",
    "saliency_thresholds",
]
