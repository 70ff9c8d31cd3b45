"""`project`: real images -> latents of a pretrained generator, by optimization.

NVIDIA's ``projector.py`` (stylegan2-ada-pytorch) in JAX, batched over images and starting
points. Per step (``t = step / steps``), for every image and start at once:

1. latent noise ``eps ~ N(0, 1) * w_std * noise_factor(t)`` (`Schedule.noise_factors`);
2. images of ``latent + eps`` (w broadcast to every W+ slot) with the constant noise inputs;
3. ``dist = loss.distance(images, targets)`` ``[B]``, plus, when the noise inputs are optimized,
   ``weight * reg`` (the autocorrelation penalty of every noise buffer at every scale down to
   8x8);
4. one Adam step (``optax.adam``, betas (0.9, 0.999), eps 1e-8) on the summed loss at the
   learning rate of `Schedule.learning_rates` (step 0 has rate 0, as in the reference);
5. each noise buffer renormalized to zero mean and unit variance.

The images and starts are independent problems: Adam is elementwise, so the batched run gives
each the same steps it would get alone. The whole batch runs as one compiled step (a new
program only for new shapes, dtypes or static settings; `jaxedit.debug.compiled_programs`
counts them).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from .._checks import as_key, check_finite
from ..sampling import as_compute, as_sampling
from . import _losses, _space
from ._options import NoiseInputs, Restarts, Schedule, as_option, check_steps

MODES = ("default", "reference")
DEFAULT_STEPS = 1000
NOISE_KEY = "noise_const"  # the reference's buffer name (``'noise_const' in name``)


@struct.dataclass
class ProjectionResult:
    """What `project` returns (a pytree; the settings are static).

    Attributes:
      latents: the optimized latents in ``space``: w ``[N, w_dim]``, W+ ``[N, num_ws, w_dim]``,
        BigGAN z ``[N, z_dim]`` or cond ``[N, 2 * z_dim]``.
      ws: W-space generators: the synthesis input ``[N, num_ws, w_dim]``; None otherwise.
      images: the reconstructions ``[N, H, W, C]`` (with the optimized noise inputs when they
        were optimized).
      loss: the final per-image distance ``[N]`` (the loss, without latent noise or the noise
        regularization), of the start kept.
      losses: the distance at every step ``[steps, N]`` (before the step's update, with that
        step's latent noise, as the reference logs it), of the start kept.
      restart: the start kept per image ``[N]`` (0: the reference's start). W+: starts
        ``0..R-1`` are the W+ runs, ``R..2R-1`` the W runs from the same points (every W+
        projection also runs its W projection and keeps it where it is better).
      restart_losses: the final distance of every start ``[N, starts]`` (W+: ``[N, 2R]``).
      context: BigGAN ``"z"`` space: the fixed class embeddings ``[N, z_dim]``; else None.
      noise: the optimized noise inputs ``{buffer path: [N, R, R]}`` of the start kept, or None
        when they were not optimized (`NoiseInputs`); `with_noise` puts them in a generator.
      space: the projected space (static).
      mode: ``"default"`` or ``"reference"`` (static).
    """

    latents: jax.Array
    ws: jax.Array | None
    images: jax.Array
    loss: jax.Array
    losses: jax.Array
    restart: jax.Array
    restart_losses: jax.Array
    context: jax.Array | None = None
    noise: dict[str, jax.Array] | None = None
    space: str = struct.field(pytree_node=False, default="w")
    mode: str = struct.field(pytree_node=False, default="default")

    def with_noise(self, gen, index: int = 0):
        """A copy of ``gen`` whose noise buffers are image ``index``'s optimized ones (``gen``
        itself is not changed); ``gen`` itself (a copy) when no noise was optimized.

        Raises:
          IndexError: ``index`` out of range.
        """
        n = int(self.loss.shape[0])
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} projected images")
        graphdef, state = nnx.split(gen)
        noise = self.noise or {}

        def put(path, v):
            name = _path_name(path)
            return jnp.asarray(noise[name][index], v.dtype) if name in noise else v

        return nnx.merge(graphdef, jax.tree_util.tree_map_with_path(put, state))


def _path_name(path) -> str:
    parts = []
    for p in path:
        key = getattr(p, "key", getattr(p, "name", p))
        if key == "value":
            continue
        parts.append(str(key))
    return ".".join(parts)


# ---- static description of the compiled step --------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Plan:
    """Everything static about one projection (hashable: the jitted step's static argument)."""

    graphdef: Any
    noise_def: Any  # treedef of the noise buffers' state, or None when they are not optimized
    space: _space.Space
    loss: Any  # _losses.split_static's static half
    noise_weight: float


def _merge(plan: _Plan, gen_state, noise_leaves):
    """The generator module, with one row's noise buffers when they are optimized."""
    if plan.noise_def is None:
        return nnx.merge(plan.graphdef, gen_state)
    noise_state = jax.tree_util.tree_unflatten(plan.noise_def, noise_leaves)
    return nnx.merge(plan.graphdef, noise_state, gen_state)


def _images(plan: _Plan, gen_state, lat, noise, context):
    """Rows' images ``[B, H, W, C]``; per-row noise buffers through ``vmap``."""
    sp = plan.space
    if plan.noise_def is None:
        return _space.render(_merge(plan, gen_state, None), sp, lat, context)

    def one(lat_i, noise_i, ctx_i):
        gen = _merge(plan, gen_state, noise_i)
        ctx = None if ctx_i is None else ctx_i[None]
        return _space.render(gen, sp, lat_i[None], ctx)[0]

    return jax.vmap(one)(lat, noise, context)


def noise_regularization(bufs) -> jax.Array:
    """NVIDIA's noise penalty per row: for each buffer ``[B, R, R]``, at every scale down to
    8x8 (2x2 average pooling), the squared means of its products with itself shifted by one
    pixel along each axis (circularly). -> ``[B]``."""
    total = 0.0
    for v in bufs:
        x = v
        while True:
            total = total + jnp.mean(x * jnp.roll(x, 1, axis=2), axis=(1, 2)) ** 2
            total = total + jnp.mean(x * jnp.roll(x, 1, axis=1), axis=(1, 2)) ** 2
            if x.shape[1] <= 8:
                break
            b, r = x.shape[0], x.shape[1]
            x = x.reshape(b, r // 2, 2, r // 2, 2).mean(axis=(2, 4))
    return jnp.asarray(total)


def _renormalize(bufs):
    out = []
    for v in bufs:
        v = v - jnp.mean(v, axis=(1, 2), keepdims=True)
        out.append(v * jax.lax.rsqrt(jnp.mean(jnp.square(v), axis=(1, 2), keepdims=True)))
    return out


def _optimizer() -> optax.GradientTransformation:
    """``optax.adam`` (torch's defaults), its learning rate set at every step from the host's
    `Schedule.learning_rates` (so one compiled step serves every number of steps)."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=0.0, b1=0.9, b2=0.999, eps=1e-8)


@jax.jit
def _init(params):
    """(a copy of ``params`` that the steps may donate, Adam's state)."""
    params = jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype), params)  # strong types
    return params, _optimizer().init(params)


@functools.partial(jax.jit, static_argnames=("loss",))
def _prepare(loss, loss_arrays, targets):
    loss = _losses.merge_static(loss, loss_arrays)
    return _losses.prepare(loss, targets)


@functools.partial(jax.jit, static_argnames=("plan",), donate_argnames=("params", "opt_state"))
def _step(
    plan: _Plan,
    gen_state,
    loss_arrays,
    params,
    opt_state,
    prepared,
    scale,
    context,
    key,
    t,
    lr,
    factor,
    gate,
):
    """Step ``t`` of every row at learning rate ``lr`` and latent noise ``factor * scale``
    (``gate`` ``[B]``: W+ rows 1, rows that keep their offsets at 0 (W) 0; None outside W+).
    -> (params, opt_state, dist ``[B]``)."""
    loss = _losses.merge_static(plan.loss, loss_arrays)
    lat0 = params["latent"]  # [B, *base_shape]
    eps = jax.random.normal(jax.random.fold_in(key, t), lat0.shape[1:], lat0.dtype)
    shift = eps[None] * (scale * factor).astype(lat0.dtype).reshape((-1,) + (1,) * eps.ndim)

    def objective(p):
        off = None if gate is None else p["offsets"] * gate.reshape(-1, 1, 1)
        lat = _space.compose(plan.space, p["latent"] + shift, off)
        imgs = _images(plan, gen_state, lat, p["noise"], context)
        dist = _losses.distance_prepared(loss, imgs, prepared)
        total = dist
        if plan.noise_def is not None and plan.noise_weight:
            total = total + plan.noise_weight * noise_regularization(p["noise"])
        return jnp.sum(total), dist

    (_, dist), grads = jax.value_and_grad(objective, has_aux=True)(params)
    hyper = dict(opt_state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(lr, hyper["learning_rate"].dtype)
    opt_state = opt_state._replace(hyperparams=hyper)
    updates, opt_state = _optimizer().update(grads, opt_state, params)
    params = cast(dict, optax.apply_updates(params, updates))
    if plan.noise_def is not None:
        params = {**params, "noise": _renormalize(params["noise"])}
    return params, opt_state, dist


@functools.partial(jax.jit, static_argnames=("plan",))
def _evaluate(plan: _Plan, gen_state, loss_arrays, params, prepared, context, gate):
    loss = _losses.merge_static(plan.loss, loss_arrays)
    off = None if gate is None else params["offsets"] * gate.reshape(-1, 1, 1)
    lat = _space.compose(plan.space, params["latent"], off)
    imgs = _images(plan, gen_state, lat, params["noise"], context)
    return _losses.distance_prepared(loss, imgs, prepared), imgs


#: the jitted kernels (``jax.jit`` wrappers), read by `compiled_programs`
_JITTED: dict[str, Any] = {
    "project_step": _step,
    "project_init": _init,
    "project_prepare": _prepare,
    "project_evaluate": _evaluate,
}


# ---- input checks ----------------------------------------------------------------------------------
def check_images(gen, images, name: str = "images", dtype=None) -> jax.Array:
    """``images`` as a float array ``[N, R, R, C]`` at the generator's resolution, finite and in
    [-1, 1].

    Raises:
      TypeError: not a real numeric array.
      ValueError: wrong shape, no images, non-finite values or values outside [-1, 1].
    """
    try:
        a = np.asarray(images)
    except Exception as e:  # noqa: BLE001 - anything np.asarray refuses
        raise TypeError(
            f"{name} must be an array of images [N, H, W, C], got {type(images).__name__}"
        ) from e
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    r, ch = gen.resolution, gen.img_channels
    if a.ndim != 4 or a.shape[1:] != (r, r, ch):
        raise ValueError(
            f"{name} must have shape [N, {r}, {r}, {ch}] (NHWC at the generator's resolution), "
            f"got {a.shape}"
        )
    if a.shape[0] == 0:
        raise ValueError(f"{name} holds no images (N = 0)")
    check_finite(name, a)
    lo, hi = float(a.min()), float(a.max())
    if lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6:
        raise ValueError(
            f"{name} must lie in [-1, 1] (uint8 images: x / 127.5 - 1), got values in "
            f"[{lo:.4g}, {hi:.4g}]"
        )
    return jnp.asarray(np.clip(a, -1.0, 1.0), dtype)


def check_class_vectors(gen, c, n: int, *, required: bool) -> np.ndarray | None:
    """Class vectors ``[N, class_dim]`` (a single row is broadcast), or None.

    Raises:
      ValueError: missing where required, given to an unconditional generator, or of the wrong
        shape.
    """
    if c is None:
        if required:
            raise ValueError(
                f"this {gen.display_name} is conditional: pass class vectors with "
                f"sampling=jaxedit.Sampling(c=...) of shape [N, {gen.class_dim}]"
            )
        return None
    if not gen.uses_class:
        raise ValueError(f"this {gen.display_name} is unconditional: pass no class vectors (c)")
    c = np.asarray(c, np.float64)
    if c.ndim == 1:
        c = c[None]
    if c.ndim != 2 or c.shape[1] != gen.class_dim or c.shape[0] not in (1, n):
        raise ValueError(
            f"c must have shape [N, {gen.class_dim}] (N = {n} images) or [1, {gen.class_dim}], "
            f"got {c.shape}"
        )
    return np.broadcast_to(c, (n, c.shape[1]))


def _mode_options(mode, gen, space, steps, schedule, restarts, noise):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    steps = DEFAULT_STEPS if steps is None else check_steps(steps)
    if mode == "default":
        return (
            space,
            steps,
            as_option(schedule, Schedule, "schedule"),
            as_option(restarts, Restarts, "restarts"),
            as_option(noise, NoiseInputs, "noise"),
        )
    fixed = [n for n, v in (("schedule", schedule), ("restarts", restarts), ("noise", noise)) if v]
    if fixed:
        raise ValueError(
            f"mode='reference' fixes the projector's settings; do not pass {', '.join(fixed)} "
            f"(use mode='default' to change them)"
        )
    if _space.kind_of(gen) != "style":
        raise ValueError(
            f"mode='reference' is NVIDIA's W projector; {gen.display_name} has no W space "
            f"(use mode='default')"
        )
    if space not in (None, "w"):
        raise ValueError(f"mode='reference' projects into W only, got space={space!r}")
    return "w", steps, Schedule(), Restarts(count=1), NoiseInputs(optimize=True)


# ---- the entry point -------------------------------------------------------------------------------
def project(
    gen,
    images,
    *,
    space: str | None = None,
    loss: Any = None,
    steps: int | None = None,
    mode: str = "default",
    schedule: Schedule | None = None,
    restarts: Restarts | None = None,
    noise: NoiseInputs | None = None,
    sampling=None,
    compute=None,
    seed: int = 0,
    progress: bool = True,
) -> ProjectionResult:
    """Project images into a generator's latent space by optimization (NVIDIA's projector,
    batched; see the module text for the step).

    Args:
      gen: a generator of the protocol: StyleGAN2 (any loaded format) or BigGAN-deep.
      images: target images ``[N, R, R, C]`` (NHWC, float in [-1, 1], at the generator's
        resolution ``R``).
      space: W generators: ``"w"`` (default, as the reference) or ``"wplus"``; BigGAN: ``"z"``
        (default; the class vectors ``sampling.c`` are fixed) or ``"cond"`` (z and the class
        embedding; it starts from ``sampling.c``'s embedding, or the mean one without c).
      loss: an image loss (`jaxedit.projection.ImageLoss`: ``distance(x, y) -> [N]``; see
        `jaxedit.projection.default_loss`).
      steps: optimization steps (default 1000).
      mode: ``"default"``: `Restarts` (4 starts) and the latent only; ``"reference"``: the
        projector exactly (W, one start at ``w_avg``, `Schedule()`, the noise inputs optimized
        with weight 1e5 where the generator has them). ``schedule``, ``restarts`` and ``noise``
        apply in the default mode only.
      schedule: `Schedule` (learning rate and latent noise).
      restarts: `Restarts` (starting points per image).
      noise: `NoiseInputs` (optimize the noise buffers; default: no).
      sampling: `jaxedit.Sampling`: ``c`` (class vectors, for conditional generators), BigGAN's
        ``truncation_psi``, and ``noise_mode`` (``"const"`` or ``"none"``).
      compute: `jaxedit.Compute`: ``dtype`` and ``precision``.
      seed: seeds the latent noise, the extra starts and the noise buffers' initial values
        (same seed and inputs: the same result, bit for bit on CPU).
      progress: show a progress bar.

    Returns:
      `ProjectionResult` (``latents``, ``ws``, ``images``, ``loss`` ``[N]``, ``losses``
      ``[steps, N]``, ``restart`` ``[N]``, ...).

    Raises:
      TypeError: ``images`` not numeric, or an option of the wrong type.
      ValueError: bad images (shape, N = 0, non-finite, outside [-1, 1]), unknown ``space`` or
        ``mode``, options that ``mode="reference"`` fixes, missing or extra class vectors.
    """
    space, steps, schedule, restarts, noise = _mode_options(
        mode, gen, space, steps, schedule, restarts, noise
    )
    sampling = as_sampling(sampling)
    compute = as_compute(compute)
    dt = compute.resolved_dtype
    targets = check_images(gen, images, dtype=dt)
    n = int(targets.shape[0])
    loss = _losses.check_loss(_losses.default_loss() if loss is None else loss)
    kind = _space.kind_of(gen)
    if sampling.noise_mode == "random":
        raise ValueError("noise_mode='random' cannot be projected into; use 'const' or 'none'")
    if kind == "style" and sampling.truncation_psi != 1.0:
        raise ValueError(
            "truncation_psi does not apply to a W projection (the latent is optimized directly)"
        )
    truncation = gen.check_truncation(sampling.truncation_psi) if kind == "cond" else 1.0
    sp = _space.make_space(
        gen,
        space,
        noise_mode=sampling.noise_mode,
        truncation=truncation,
        precision=compute.precision,
        offset_scale=schedule.offset_rate,
    )
    c = check_class_vectors(
        gen, sampling.c, n, required=gen.uses_class and not (kind == "cond" and sp.space == "cond")
    )

    key = as_key(int(seed))
    k_restart, k_step, k_bufs = jax.random.split(key, 3)
    center, scale, context = _space.start_stats(gen, sp, c, n, dt)
    starts = _space.restart_points(gen, sp, k_restart, restarts.count, restarts.psi, center, c, dt)
    r = restarts.count
    gate = None
    if sp.space == "wplus":  # every start also runs as a W projection (offsets gated off)
        starts = jnp.concatenate([starts, starts], axis=1)
        gate = jnp.asarray(np.tile(np.repeat([1.0, 0.0], r), n), dt)
        r = 2 * r
    b = n * r
    lat = starts.reshape((b,) + sp.base_shape)
    scale_b = jnp.repeat(scale, r)
    context_b = None if context is None else jnp.repeat(context, r, axis=0)

    optimize_noise = (
        noise.optimize and gen.has_noise and sp.kind == "style" and sp.noise_mode == "const"
    )
    noise_def, noise_names, bufs = None, [], []
    if optimize_noise:
        graphdef, noise_state, gen_state = nnx.split(gen, nnx.PathContains(NOISE_KEY), ...)
        with_path, noise_def = jax.tree_util.tree_flatten_with_path(noise_state)
        if not with_path:
            optimize_noise, noise_def = False, None
        else:
            noise_names = [_path_name(p) for p, _ in with_path]
            keys = jax.random.split(k_bufs, len(with_path))
            # N(0, 1) re-initialization, as the reference; the same for every image and start
            bufs = [
                jnp.broadcast_to(jax.random.normal(kk, v.shape, dt), (b,) + v.shape)
                for kk, (_, v) in zip(keys, with_path)
            ]
    if not optimize_noise:
        graphdef, gen_state = nnx.split(gen)

    loss_static, loss_arrays = _losses.split_static(loss)
    plan = _Plan(
        graphdef=graphdef,
        noise_def=noise_def,
        space=sp,
        loss=loss_static,
        noise_weight=noise.weight if optimize_noise else 0.0,
    )
    prepared = _prepare(loss_static, loss_arrays, jnp.repeat(targets, r, axis=0))
    offsets = jnp.zeros((b,) + sp.shape, dt) if sp.space == "wplus" else None
    params, opt_state = _init({"latent": lat, "offsets": offsets, "noise": bufs})
    # the steps' outputs live where the generator does: start there too (one compiled program)
    where = jax.tree.leaves(gen_state)[0].sharding
    params, opt_state = jax.device_put((params, opt_state), where)
    lrs = np.asarray(schedule.learning_rates(steps)(np.arange(steps)))
    factors = np.asarray(schedule.noise_factors(steps)(np.arange(steps)))

    from .._io import progress as progress_bar

    history = []
    every = max(1, steps // 100)
    with progress_bar(steps, "project", enabled=progress) as bar:
        for t in range(steps):
            params, opt_state, dist = _step(
                plan,
                gen_state,
                loss_arrays,
                params,
                opt_state,
                prepared,
                scale_b,
                context_b,
                k_step,
                jnp.asarray(t, jnp.int32),
                jnp.asarray(lrs[t], dt),
                jnp.asarray(factors[t], dt),
                gate,
            )
            history.append(dist)
            if progress and (t % every == 0 or t == steps - 1):
                bar.set_postfix(loss=f"{float(jnp.min(dist)):.5g}", refresh=False)
            bar.update(1)

    final, imgs = _evaluate(plan, gen_state, loss_arrays, params, prepared, context_b, gate)
    return _result(
        sp, mode, n, r, final, imgs, jnp.stack(history), params, noise_names, context, gate
    )


def _result(sp, mode, n, r, final, imgs, history, params, noise_names, context, gate):
    per_start = final.reshape(n, r)
    best = jnp.argmin(per_start, axis=1)  # ties: the lowest start (0 = the reference's)
    rows = jnp.arange(n) * r + best
    off = None if gate is None else params["offsets"] * gate.reshape(-1, 1, 1)
    latents = _space.compose(sp, params["latent"], off)[rows]
    ws = _space.ws_of(sp, latents) if sp.kind == "style" else None
    noise = None
    if noise_names:
        noise = {name: v[rows] for name, v in zip(noise_names, params["noise"])}
    return ProjectionResult(
        latents=latents,
        ws=ws,
        images=imgs[rows],
        loss=final[rows],
        losses=history[:, rows],
        restart=best,
        restart_losses=per_start,
        context=context,
        noise=noise,
        space=sp.space,
        mode=mode,
    )


__all__ = [
    "DEFAULT_STEPS",
    "MODES",
    "ProjectionResult",
    "check_class_vectors",
    "check_images",
    "noise_regularization",
    "project",
]
