"""`fit` (features in memory or streamed by a callable) and `refine` (sample-specific parts)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
import numpy as np

from ... import _ops
from ..._typing import Features, LossHistory, PartsArray, SampleFeatures
from ...errors import PandaConvergenceWarning
from ...sampling import Compute, as_compute
from ._checks import (
    APPEARANCE_RATE,
    INIT_PARTS_HIGH,
    REFERENCE_RANKS,
    _check_appearance,
    _check_features,
    _check_parts,
    _check_ranks,
    _check_steps,
    _resolve_optimizer,
)
from ._loss import _hosvd_from_scatter, _scatter
from ._result import PandaResult, _check_result
from ._steps import _fit_scan, _hyper, _init_states, _refine_jit, _stream_step


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
            raise ValueError(
                f"init_appearance must be 'hosvd', 'random' or an array [C, R_C], got "
                f"{init_appearance!r}"
            )
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
# fit
# ------------------------------------------------------------------------------------------------
def _convergence(losses: np.ndarray) -> tuple[bool, str]:
    """(converged, message) from the loss curve."""
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        return False, (
            f"the loss became non-finite at step {int(bad[0])}: the learning rate "
            "is too large for this layer's feature scale (lower it 10x, or use the "
            "default Adam)"
        )
    n = losses.size
    if n < 20:
        return True, ""
    tenth = max(n // 10, 2)
    last, before = float(np.mean(losses[-tenth:])), float(np.mean(losses[-2 * tenth : -tenth]))
    drop = (before - last) / max(abs(last), 1e-300)
    if drop > 0.01:
        return False, (
            f"the loss still fell by {100 * drop:.2g}% over the last tenth of the "
            "steps: increase steps (or the learning rate) for converged factors"
        )
    return True, ""


def _finish(a, p, losses, energy, shape, layer, settings, warn: bool = True) -> PandaResult:
    h, w, _ = shape
    losses = np.asarray(losses)
    ok, msg = _convergence(losses)
    dead = np.flatnonzero(np.all(np.asarray(p) == 0, axis=0))
    if dead.size and np.all(np.isfinite(losses)):
        ok = False
        msg = (
            f"part(s) {dead.tolist()} collapsed to zero during the fit and cannot recover (the "
            f"gradient vanishes at P = 0): lower the learning rate"
        ) + (f"; also {msg}" if msg else "")
    if not ok and warn:
        warnings.warn(f"PandA fit: {msg}", PandaConvergenceWarning, stacklevel=3)
    return PandaResult(
        appearance=np.asarray(a),
        parts=np.asarray(p).reshape(h, w, -1),
        losses=losses,
        feature_energy=float(energy),
        layer=layer,
        converged=ok,
        settings=dict(settings),
    )


def fit(
    features: Features | Callable[..., Any],
    ranks=REFERENCE_RANKS,
    steps: int = 1000,
    optimizer=None,
    learning_rate: float | None = None,
    init_appearance="hosvd",
    init_parts=None,
    minibatch_size: int | None = None,
    key=None,
    progress: bool = False,
    *,
    layer: str | None = None,
    compute: Compute | None = None,
    hosvd_samples: int = 1000,
) -> PandaResult:
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
      minibatch_size: PandA's optimizer mini-batch (not a generator work size): None = all N
        samples every step (full gradient); an integer draws that many samples without
        replacement at every step. Not used with a callable. Recorded as
        ``settings["batch_size"]`` (the file format's key).
      key: PRNG key for the parts init and the mini-batches (default ``jax.random.key(0)``).
      progress: show a progress bar with the current loss.
      layer: name of the layer the features come from (recorded in the result).
      compute: a `jaxedit.Compute` (None = ``Compute()``); only its ``precision`` is read
        (matmul precision, ``"highest"`` by default): the features' dtype is the compute dtype.
      hosvd_samples: samples for the HOSVD init and the feature energy with a callable.

    Returns:
      `PandaResult` (``appearance [C, R_C]``, ``parts [H, W, R_S]``, ``losses [steps]``).

    Raises:
      TypeError: ``compute`` is not a `jaxedit.Compute`.
      ValueError: bad features, ranks, steps, optimizer, learning rate, initial factors or
        ``minibatch_size``.
    """
    steps = _check_steps(steps)
    tx, lr, mode, normalized = _resolve_optimizer(optimizer, learning_rate)
    key = jax.random.key(0) if key is None else key
    precision = as_compute(compute, "compute").precision
    prec = _ops.as_precision(precision)
    settings: dict[str, Any] = dict(
        optimizer=mode,
        learning_rate=lr,
        steps=steps,
        batch_size=minibatch_size,
        precision=str(precision),
        ranks=None,
        appearance_rate=APPEARANCE_RATE if normalized else 1.0,
    )
    if callable(features) and not hasattr(features, "shape"):
        if minibatch_size is not None:
            raise ValueError(
                "minibatch_size does not apply when features is a callable (its "
                "batches have their own size)"
            )
        return _fit_stream(
            features,
            ranks,
            steps,
            tx,
            lr,
            mode,
            normalized,
            init_appearance,
            init_parts,
            key,
            progress,
            layer,
            prec,
            hosvd_samples,
            settings,
        )
    x = _check_features(features)
    n, h, w, c = x.shape
    r_c, r_s = _check_ranks(ranks, h * w, c)
    settings["ranks"] = [r_c, r_s]
    if minibatch_size is not None:
        if (
            isinstance(minibatch_size, bool)
            or not isinstance(minibatch_size, (int, np.integer))
            or not 1 <= minibatch_size <= n
        ):
            raise ValueError(
                f"minibatch_size must be None (full batch) or an integer in "
                f"[1, N = {n}], got {minibatch_size!r}"
            )
        minibatch_size = int(minibatch_size) if minibatch_size < n else None
    xs = x.reshape(n, h * w, c)
    energies = jnp.sum(jnp.square(xs), axis=(1, 2))
    energy = float(jnp.mean(energies))
    if energy <= 0:
        raise ValueError("features are all zero: nothing to factorize")
    k_init, k_data = jax.random.split(key)
    a, p, a_name, p_name = _init_factors(
        init_appearance,
        init_parts,
        k_init,
        (h, w, c),
        (r_c, r_s),
        x.dtype,
        lambda xs=xs: _hosvd_from_scatter(_scatter(xs, precision=prec) / n),
    )
    settings.update(init_appearance=a_name, init_parts=p_name, samples=n)
    b = n if minibatch_size is None else minibatch_size
    hp = _hyper(normalized, lr, (h, w, c), (r_c, r_s), b, energy, steps, x.dtype)
    a, p = a / hp["scale_a"], p / hp["scale_p"]
    s_a, s_p = _init_states(tx, a, p)
    xt = jnp.transpose(xs, (1, 0, 2))  # [S, N, C]: see _objective
    del xs
    chunk = steps if not progress else max(1, -(-steps // 100))
    out = []
    from ..._io import progress as progress_bar

    with progress_bar(steps, "panda fit", enabled=progress) as bar:
        t = 0
        while t < steps:
            m = min(chunk, steps - t)
            a, p, s_a, s_p, l = _fit_scan(
                tx,
                a,
                p,
                s_a,
                s_p,
                xt,
                energies,
                hp,
                k_data,
                jnp.asarray(t, jnp.int32),
                steps=m,
                minibatch_size=minibatch_size,
                precision=prec,
            )
            out.append(l)
            t += m
            if progress:
                bar.set_postfix(
                    loss=f"{float(l[-1]):.5g}", rel=f"{float(l[-1]) / energy:.4f}", refresh=False
                )
                bar.update(m)
    losses = jnp.concatenate(out) if len(out) > 1 else out[0]
    return _finish(a * hp["scale_a"], p * hp["scale_p"], losses, energy, (h, w, c), layer, settings)


def _fit_stream(
    features,
    ranks,
    steps,
    tx,
    lr,
    mode,
    normalized,
    init_appearance,
    init_parts,
    key,
    progress,
    layer,
    prec,
    hosvd_samples,
    settings,
    energy=None,
    first_batch=None,
):
    """fit() on a callable ``(step, key) -> [B, H, W, C]``: a Python loop over one jitted step."""
    k_init, k_data, k_hosvd = jax.random.split(key, 3)

    def batch(t):
        xb = (
            first_batch
            if (t == 0 and first_batch is not None)
            else features(t, jax.random.fold_in(k_data, t))
        )
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
                xb = (
                    x0
                    if t == 0
                    else _check_features(
                        features(t, jax.random.fold_in(k_hosvd, t)), f"features({t}, key)"
                    )
                )
                if xb.shape[1:] != (h, w, c):
                    raise ValueError(
                        f"features({t}, key) has shape {tuple(xb.shape)}; earlier "
                        f"batches were [B, {h}, {w}, {c}]"
                    )
                scat = scat + _scatter(xb.reshape(xb.shape[0], h * w, c), precision=prec)
                count += xb.shape[0]
                t += 1
            hosvd_cache["v"] = (scat / count, float(jnp.trace(scat)) / count)
        return hosvd_cache["v"]

    a, p, a_name, p_name = _init_factors(
        init_appearance,
        init_parts,
        k_init,
        (h, w, c),
        (r_c, r_s),
        dtype,
        lambda: _hosvd_from_scatter(scatter_stats()[0]),
    )
    if energy is None:
        energy = (
            scatter_stats()[1]
            if hosvd_cache
            else float(jnp.mean(jnp.sum(jnp.square(x0), axis=(1, 2, 3))))
        )
    if energy <= 0:
        raise ValueError("features are all zero: nothing to factorize")
    settings.update(init_appearance=a_name, init_parts=p_name, samples="streamed")
    hp = _hyper(normalized, lr, (h, w, c), (r_c, r_s), 1, energy, steps, dtype)
    a, p = a / hp["scale_a"], p / hp["scale_p"]
    s_a, s_p = _init_states(tx, a, p)
    losses = []
    from ..._io import progress as progress_bar

    with progress_bar(steps, "panda fit", enabled=progress) as bar:
        for t in range(steps):
            xb = x0 if t == 0 else batch(t)
            if xb.shape[1:] != (h, w, c):
                raise ValueError(
                    f"features({t}, key) has shape {tuple(xb.shape)}; earlier batches "
                    f"were [B, {h}, {w}, {c}]"
                )
            hp_t = {
                **hp,
                "t": jnp.asarray(t, jnp.int32),
                "weight": jnp.asarray(1.0 / (xb.shape[0] * energy) if normalized else 1.0, dtype),
            }
            a, p, s_a, s_p, l = _stream_step(tx, a, p, s_a, s_p, xb, hp_t, prec)
            losses.append(l)
            if progress:
                bar.set_postfix(
                    loss=f"{float(l):.5g}", rel=f"{float(l) / energy:.4f}", refresh=False
                )
                bar.update(1)
    return _finish(
        a * hp["scale_a"], p * hp["scale_p"], jnp.stack(losses), energy, (h, w, c), layer, settings
    )


@overload
def refine(
    result: PandaResult,
    features: SampleFeatures,
    steps: int = 100,
    learning_rate: float | None = None,
    optimizer=None,
    *,
    compute: Compute | None = None,
    return_losses: Literal[False] = False,
) -> PartsArray: ...


@overload
def refine(
    result: PandaResult,
    features: SampleFeatures,
    steps: int = 100,
    learning_rate: float | None = None,
    optimizer=None,
    *,
    compute: Compute | None = None,
    return_losses: Literal[True],
) -> tuple[PartsArray, LossHistory]: ...


def refine(
    result: PandaResult,
    features: SampleFeatures,
    steps: int = 100,
    learning_rate: float | None = None,
    optimizer=None,
    *,
    compute: Compute | None = None,
    return_losses: bool = False,
):
    """Sample-specific parts ``P̃_i``: the parts objective on one sample with ``A`` frozen, from the
    global parts (the reference's ``refine``), with the same optimizer choices as `fit`.

    ``"pgd"`` is the reference's loop exactly (gradient of that sample's loss, clamp at 0; its
    defaults are lr 1e-8 for 1000 steps, 1e-5 for 100 in its demo); the default Adam works on the
    sample's loss divided by ``‖Z_i‖²_F``.

    Args:
      features: ``[H, W, C]`` (one sample) or ``[N, H, W, C]`` (each refined independently).
      compute: a `jaxedit.Compute` (None = ``Compute()``); only its ``precision`` is read.
    Returns:
      parts ``[H, W, R_S]`` (or ``[N, H, W, R_S]``); with ``return_losses`` also the raw losses
      ``[steps]`` (``[N, steps]``) before each step.
    Raises:
      TypeError: ``compute`` is not a `jaxedit.Compute`.
    """
    _check_result(result)
    precision = as_compute(compute, "compute").precision
    steps = _check_steps(steps)
    tx, lr, mode, normalized = _resolve_optimizer(optimizer, learning_rate, "refine")
    x = jnp.asarray(features)
    single = x.ndim == 3
    x = _check_features(x[None] if single else x)
    n, h, w, c = x.shape
    if (h, w, c) != result.feature_shape:
        raise ValueError(
            f"features have [H, W, C] = {(h, w, c)} but the factors were learned on "
            f"{result.feature_shape}"
        )
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
    parts, losses = _refine_jit(
        tx,
        a,
        p / hp["scale_p"],
        xs,
        weights.astype(x.dtype),
        hp,
        steps=steps,
        precision=_ops.as_precision(precision),
    )
    parts = (parts * hp["scale_p"]).reshape(n, h, w, -1)
    if single:
        parts, losses = parts[0], losses[0]
    if not bool(jnp.all(jnp.isfinite(losses))):
        warnings.warn(
            "PandA refine: the loss became non-finite: lower the learning rate",
            PandaConvergenceWarning,
            stacklevel=2,
        )
    return (parts, losses) if return_losses else parts
