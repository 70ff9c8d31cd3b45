"""`pivotal_tune`: Pivotal Tuning Inversion (Roich et al., PTI): fine-tune the generator so that
the projected latents (the *pivots*) reproduce the images exactly.

Per step (one compiled step for the whole batch): the images of the pivots under the tuned
weights, the mean over the images of ``loss.distance(images, targets)`` (PTI: ``L2 + LPIPS``),
plus, optionally, PTI's locality regularizer: random latents of the prior are moved to a fixed
distance from each pivot (``pivot + distance * (w - pivot) / ||w - pivot||``, PTI's
``alpha = 30`` in W+), and the tuned generator's images there are kept close to the original
generator's (``noise_mode="none"``, PTI's ``0.1 L2 + 0.1 LPIPS``). Adam (``optax.adam``, PTI's
learning rate 3e-4) updates every parameter (``nnx.Param``) of the generator; buffers (noise
inputs, ``w_avg``, BigGAN's batch-norm statistics) stay as they are.

PTI tunes one generator per image (its ``SingleIDCoach``); here the images of one call share
one tuned generator (PTI's ``MultiIDCoach``); call once per image for the former. PTI's early
stop (LPIPS below 0.07) is not implemented: the run takes ``steps`` steps.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .._checks import as_key, check_finite, finite_scalar
from ..sampling import as_compute, as_sampling
from . import _losses, _space
from ._options import as_option, check_steps
from ._project import ProjectionResult, check_class_vectors, check_images

PTI_STEPS = 350
PTI_LEARNING_RATE = 3e-4
PTI_LOCALITY_DISTANCE = 30.0


@dataclasses.dataclass(frozen=True, eq=False)
class Locality:
    """PTI's locality regularizer ("ball holder").

    Attributes:
      samples: random latents per image and step (PTI: 1).
      distance: how far from the pivot they are put (PTI: 30 in W+, the norm over every slot);
        None: 30 for W generators, the spread of the prior's z for BigGAN.
      psi: truncation of the random latents (PTI: 0.5).
      loss: the image loss between the tuned and the original generator there (PTI:
        ``0.1 L2 + 0.1 LPIPS``; default ``Weighted((MSE(),), (0.1,))``).

    Raises:
      ValueError: ``samples`` not a positive integer, a non-positive ``distance``, ``psi``
        outside [0, 1].
      TypeError: ``loss`` is not an image loss.
    """

    samples: int = 1
    distance: float | None = None
    psi: float = 0.5
    loss: Any = None

    def __post_init__(self):
        if isinstance(self.samples, bool) or not isinstance(self.samples, (int, np.integer)):
            raise ValueError(f"samples must be a positive integer, got {self.samples!r}")
        if self.samples < 1:
            raise ValueError(f"samples must be a positive integer, got {self.samples!r}")
        object.__setattr__(self, "samples", int(self.samples))
        if self.distance is not None:
            d = finite_scalar("distance", self.distance)
            if d <= 0:
                raise ValueError(f"distance must be positive, got {self.distance!r}")
            object.__setattr__(self, "distance", d)
        psi = finite_scalar("psi", self.psi)
        if not 0.0 <= psi <= 1.0:
            raise ValueError(f"psi must be in [0, 1], got {self.psi!r}")
        object.__setattr__(self, "psi", psi)
        if self.loss is None:
            object.__setattr__(self, "loss", _losses.Weighted((_losses.MSE(),), (0.1,)))
        _losses.check_loss(self.loss, "locality.loss")


@dataclasses.dataclass(frozen=True)
class _TunePlan:
    graphdef: Any
    space: _space.Space
    loss: Any
    locality: Any  # static half of the locality loss, or None
    samples: int
    psi: float


def _morph(sp: _space.Space, pivots, samples):
    """PTI's ``get_morphed_w_code``: ``pivot + distance * (s - pivot) / ||s - pivot||`` (the
    distance applied by the caller)."""
    d = samples - pivots
    axes = tuple(range(1, d.ndim))
    norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=axes, keepdims=True))
    return d / jnp.maximum(norm, jnp.finfo(d.dtype).tiny)


@functools.partial(jax.jit, static_argnames=("loss",))
def _tune_prepare(loss, loss_arrays, targets):
    return _losses.prepare(_losses.merge_static(loss, loss_arrays), targets)


@functools.partial(jax.jit, static_argnames=("plan",), donate_argnames=("params", "opt_state"))
def _tune_step(
    plan: _TunePlan,
    params,
    rest,
    original,
    loss_arrays,
    loc_arrays,
    opt_state,
    lat,
    context,
    c,
    prepared,
    key,
    t,
    distance,
):
    """One Adam step of the generator's parameters. -> (params, opt_state, objective, dist)."""
    sp = plan.space
    loss = _losses.merge_static(plan.loss, loss_arrays)
    n = lat.shape[0]
    tx = _optimizer()
    loc_lat = loc_ctx = old_imgs = None
    if plan.locality is not None:
        m = plan.samples
        k = jax.random.fold_in(key, t)
        old_gen = nnx.merge(plan.graphdef, original, rest)
        cs = None if c is None else jnp.repeat(c, m, axis=0)
        s = _space.sample_latents(old_gen, sp, k, n * m, plan.psi, cs, lat.dtype)
        piv = jnp.repeat(lat, m, axis=0)
        if sp.kind == "style" and s.ndim == 2:
            s = _space.ws_of(dataclasses.replace(sp, space="w"), s)
        if sp.kind == "cond" and sp.space == "cond":
            s = s.at[:, sp.z_dim :].set(piv[:, sp.z_dim :])
        loc_lat = piv + distance.astype(piv.dtype) * _morph(sp, piv, s)
        loc_ctx = None if context is None else jnp.repeat(context, m, axis=0)
        old_imgs = jax.lax.stop_gradient(
            _space.render(old_gen, sp, loc_lat, loc_ctx, noise_mode="none")
        )

    def objective(p):
        gen = nnx.merge(plan.graphdef, p, rest)
        dist = _losses.distance_prepared(loss, _space.render(gen, sp, lat, context), prepared)
        total = jnp.mean(dist)
        if plan.locality is not None and loc_lat is not None:
            loc = _losses.merge_static(plan.locality, loc_arrays)
            new_imgs = _space.render(gen, sp, loc_lat, loc_ctx, noise_mode="none")
            total = total + jnp.mean(loc.distance(new_imgs, old_imgs))
        return total, dist

    (total, dist), grads = jax.value_and_grad(objective, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, total, dist


def _optimizer() -> optax.GradientTransformation:
    """``optax.adam``; its learning rate lives in the state (set by `_tune_init`), so one
    compiled step serves every rate."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=0.0)


@jax.jit
def _tune_init(params, lr):
    """(a copy of ``params`` that the steps may donate, strongly typed as the steps' outputs,
    and Adam's state at rate ``lr``)."""
    params = jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype), params)
    state = cast(Any, _optimizer().init(params))
    hyper = dict(state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(lr, hyper["learning_rate"].dtype)
    return params, state._replace(hyperparams=hyper)


#: the jitted kernels (``jax.jit`` wrappers), read by `compiled_programs`
_JITTED: dict[str, Any] = {
    "tune_step": _tune_step,
    "tune_init": _tune_init,
    "tune_prepare": _tune_prepare,
}


def _pivots(gen, ws, sp_kw, sampling, n, dt):
    """(Space, pivots ``[N, *shape]``, context, class vectors) from ``ws`` (an array or a
    `ProjectionResult`)."""
    kind = _space.kind_of(gen)
    if isinstance(ws, ProjectionResult):
        space, lat, ctx = ws.space, ws.latents, ws.context
        if ws.noise:
            raise ValueError(
                "this projection optimized the noise inputs: tune ws.with_noise(gen) with "
                "ws.ws (PTI tunes around the latent with the generator's own noise)"
            )
    else:
        check_finite("ws", ws)
        lat = jnp.asarray(ws, dt)
        ctx = None
        if kind == "style":
            space = "wplus" if lat.ndim == 3 else "w"
        else:
            space = "cond" if lat.ndim == 2 and lat.shape[1] == gen.latent_dim("cond") else "z"
    sp = _space.make_space(gen, space, **sp_kw)
    lat = jnp.asarray(lat, dt)
    if tuple(lat.shape) != (n,) + sp.shape:
        raise ValueError(
            f"ws must have shape [N, {', '.join(map(str, sp.shape))}] with N = {n} images, got "
            f"{tuple(lat.shape)}"
        )
    c = check_class_vectors(
        gen,
        sampling.c,
        n,
        required=gen.uses_class
        and not (kind == "cond" and (sp.space == "cond" or ctx is not None)),
    )
    if kind == "cond" and sp.space == "z" and ctx is None:
        ctx = gen.embed(jnp.asarray(c, dt), dtype=dt, precision=sp.precision)
    if kind == "style" and sp.space == "w":  # tune (and regularize) in W+, as PTI
        lat = _space.ws_of(sp, lat)
        sp = _space.make_space(gen, "wplus", **sp_kw)
    return sp, lat, None if ctx is None else jnp.asarray(ctx, dt), c


def pivotal_tune(
    gen,
    images,
    ws,
    *,
    steps: int = PTI_STEPS,
    lr: float = PTI_LEARNING_RATE,
    loss: Any = None,
    locality: Locality | None = None,
    sampling=None,
    compute=None,
    seed: int = 0,
    progress: bool = True,
):
    """Fine-tune ``gen`` so that the pivots ``ws`` reproduce ``images`` (PTI).

    Args:
      gen: the generator (not changed).
      images: target images ``[N, R, R, C]`` in [-1, 1] (as `project` takes them).
      ws: the pivots: a `ProjectionResult` of these images, or W generators' ws
        ``[N, num_ws, w_dim]`` (or w ``[N, w_dim]``), BigGAN's z ``[N, z_dim]`` (with
        ``sampling.c``) or cond ``[N, 2 * z_dim]``.
      steps: Adam steps (PTI: 350).
      lr: Adam's learning rate (PTI: 3e-4).
      loss: the image loss (`jaxedit.projection.default_tune_loss`: PTI's ``L2 + LPIPS``).
      locality: `Locality` to keep the generator unchanged away from the pivots (None: off).
      sampling: `jaxedit.Sampling`: class vectors ``c``, BigGAN's ``truncation_psi``,
        ``noise_mode`` (``"const"`` or ``"none"``).
      compute: `jaxedit.Compute`: ``dtype`` and ``precision``.
      seed: seeds the locality samples.
      progress: show a progress bar.

    Returns:
      a new generator of the same class with the tuned parameters (render the pivots with it:
      ``new.synthesis(result.ws)``).

    Raises:
      ValueError: bad images or pivots (shape, non-finite), a non-positive ``lr``.
      TypeError: a loss or option of the wrong type.
    """
    steps = check_steps(steps)
    lr = finite_scalar("lr", lr)
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    locality = None if locality is None else as_option(locality, Locality, "locality")
    sampling = as_sampling(sampling)
    compute = as_compute(compute)
    dt = compute.resolved_dtype
    targets = check_images(gen, images, dtype=dt)
    n = int(targets.shape[0])
    loss = _losses.check_loss(_losses.default_tune_loss() if loss is None else loss)
    kind = _space.kind_of(gen)
    if sampling.noise_mode == "random":
        raise ValueError("noise_mode='random' cannot be tuned against; use 'const' or 'none'")
    truncation = gen.check_truncation(sampling.truncation_psi) if kind == "cond" else 1.0
    sp_kw = dict(noise_mode=sampling.noise_mode, truncation=truncation, precision=compute.precision)
    sp, lat, context, c = _pivots(gen, ws, sp_kw, sampling, n, dt)

    distance = 0.0
    loc_static, loc_arrays = None, []
    if locality is not None:
        loc_static, loc_arrays = _losses.split_static(locality.loss, "locality.loss")
        distance = locality.distance
        if distance is None:
            distance = (
                PTI_LOCALITY_DISTANCE
                if kind == "style"
                else float(_space.start_stats(gen, sp, c, 1, dt)[1][0])
            )
    loss_static, loss_arrays = _losses.split_static(loss)
    graphdef, params, rest = nnx.split(gen, nnx.Param, ...)
    plan = _TunePlan(
        graphdef=graphdef,
        space=sp,
        loss=loss_static,
        locality=loc_static,
        samples=locality.samples if locality is not None else 0,
        psi=locality.psi if locality is not None else 0.0,
    )
    prepared = _tune_prepare(loss_static, loss_arrays, targets)
    original = params
    params, opt_state = _tune_init(params, lr)  # a copy: the steps donate it, gen keeps its own
    # the steps' outputs live where the generator does: start there too (one compiled program)
    where = jax.tree.leaves(original)[0].sharding
    params, opt_state = jax.device_put((params, opt_state), where)
    key = as_key(int(seed))
    distance = jnp.asarray(distance, dt)
    c_arr = None if c is None else jnp.asarray(c, dt)

    from .._io import progress as progress_bar

    every = max(1, steps // 100)
    with progress_bar(steps, "pivotal tune", enabled=progress) as bar:
        for t in range(steps):
            params, opt_state, total, _ = _tune_step(
                plan,
                params,
                rest,
                original,
                loss_arrays,
                loc_arrays,
                opt_state,
                lat,
                context,
                c_arr,
                prepared,
                key,
                jnp.asarray(t, jnp.int32),
                distance,
            )
            if progress and (t % every == 0 or t == steps - 1):
                bar.set_postfix(loss=f"{float(total):.5g}", refresh=False)
            bar.update(1)
    return nnx.merge(graphdef, params, rest, copy=True)


__all__ = ["PTI_LEARNING_RATE", "PTI_STEPS", "Locality", "pivotal_tune"]
