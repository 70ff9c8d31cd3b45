"""Region moments over many samples: streaming, sharded over devices and hosts (`region_moments`).

ReSeFa's ``aggregate="mean"`` needs, per region, only the ``D x D`` moments

    M_f = mean over samples of J_fᵀJ_f / n_f,      M_b = mean over samples of J_bᵀJ_b / n_b

(``n_f``, ``n_b``: rows inside / outside the region per sample, the reference's per-row means).
:func:`region_moments` accumulates them sample batch by sample batch: each step computes one batch
of Jacobians (the forward-mode machinery of :mod:`jaxedit.jacobians`), forms every region's two
Grams ``Σ J_fᵀJ_f`` and ``Σ J_bᵀJ_b`` (``precision=HIGHEST``; accumulated in float64 when x64 is
on) and drops the Jacobians. Several regions share one Jacobian pass.

Memory per device: the forward-mode working set of ``batch x chunk`` tangents, ``regions x 2 x
D²`` accumulators and, by default (``gram="dense"``, fastest), the step's ``batch`` Jacobians
``[H', W', C', D]``; ``gram="stream"`` never forms a Jacobian (``Jᵀ W J_c`` for blocks ``J_c`` of
``chunk`` columns, by transposed products: O(batch x H' W' C' x chunk), at the cost of 2 x regions
VJPs per column). Either way independent of the number of samples.

Devices and hosts: samples are sharded over a :class:`jax.sharding.Mesh` (default: every device,
``jax.devices()``, which spans all processes after ``jax.distributed.initialize``) with
``jax.shard_map``; each step ends with one all-reduce (``psum``) of the ``[2R, D, D]`` Grams.
Every process calls :func:`region_moments` with the same arguments (the same seed list or the
same host latents) and prepares only the samples that its own devices hold; the result is
replicated on every process.

The result is ``{name: Moments}`` (see `_moments`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ... import _io, _ops, jacobians
from ...jacobians import OutputSpec, as_output
from ...linalg import basis_chunk
from ...regions import RegionLike, generator_preset_set, preset, region_mask
from ...sampling import Compute, Sampling, as_compute, as_sampling
from ._moments import Moments, MomentSettings, check_run, is_moments, pack_mask


# ---------------------------------------------------------------------------------------------
# Generator fingerprint
# ---------------------------------------------------------------------------------------------
def generator_fingerprint(gen) -> str:
    """sha256 (hex, 16 chars) of the generator's config, parameter paths, shapes, dtypes and
    values: the identity recorded in (and checked by) moment files."""
    h = hashlib.sha256()
    cfg = getattr(gen, "config", None)
    to_json = getattr(cfg, "to_json", None)
    h.update(str(to_json() if callable(to_json) else repr(cfg)).encode())
    state = nnx.state(gen)
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        a = np.asarray(leaf)
        h.update(jax.tree_util.keystr(path).encode())
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# The sharded step
# ---------------------------------------------------------------------------------------------
GRAMS = ("dense", "stream")


def _grams_dense(gen, opts, chunk: int, base, x0, valid, weights, acc_dtype):
    """Σ_samples Jᵀ diag(weights_k) J from the batch's full Jacobians: [2R, D, D]."""
    J = jax.vmap(lambda b, x: jacobians.sample_jacobian(gen, opts, chunk, b, x))(base, x0)
    d = J.shape[-1]
    J2 = (J * valid.astype(J.dtype).reshape((-1,) + (1,) * (J.ndim - 1))).reshape(-1, d)
    nrows = weights.shape[1]
    hp = jax.lax.Precision.HIGHEST
    grams = []
    for k in range(weights.shape[0]):
        w = jnp.tile(weights[k].astype(J.dtype), J2.shape[0] // nrows)
        grams.append(
            jax.lax.dot_general(
                J2 * w[:, None],
                J2,
                (((0,), (0,)), ((), ())),
                precision=hp,
                preferred_element_type=acc_dtype,
            )
        )
    return jnp.stack(grams).astype(acc_dtype)


def _grams_stream_one(gen, opts, chunk: int, base, x0, weights):
    """One sample's ``[2R, D, D]`` Grams without its Jacobian: for each block of ``chunk``
    columns ``J_c = J E_c`` (JVPs), ``Jᵀ diag(w_k) J_c`` by transposed products (VJPs) - memory
    O(rows x chunk), at the cost of 2R VJPs per column."""

    def f(x):
        return jacobians.render_rows(gen, opts, base, x).reshape(-1)

    _, f_lin = jax.linearize(f, x0)
    f_t = jax.linear_transpose(f_lin, x0)
    d = x0.shape[0]
    n_chunks = -(-d // chunk)

    def block(i):
        jc = jax.vmap(f_lin)(basis_chunk(i, chunk, d, x0.dtype))  # [chunk, rows]
        return jax.lax.map(
            lambda w: jax.vmap(lambda u: f_t(u)[0])(jc * w[None]), weights.astype(x0.dtype)
        )  # [2R, chunk, D]

    cols = jax.lax.map(block, jnp.arange(n_chunks))  # [n_chunks, 2R, chunk, D]
    g = jnp.moveaxis(cols, 1, 0).reshape(weights.shape[0], n_chunks * chunk, d)[:, :d]
    return g  # row j of G_k = (Jᵀ W_k J e_j)ᵀ, G_k symmetric


def _grams_stream(gen, opts, chunk: int, base, x0, valid, weights, acc_dtype):
    g = jax.vmap(lambda b, x: _grams_stream_one(gen, opts, chunk, b, x, weights))(base, x0)
    return jnp.einsum(
        "n,nkde->kde", valid.astype(g.dtype), g, precision=jax.lax.Precision.HIGHEST
    ).astype(acc_dtype)


def _step_body(
    graphdef,
    opts,
    chunk: int,
    gram: str,
    axes: tuple,
    acc_dtype,
    state,
    base,
    x0,
    valid,
    weights,
    acc,
):
    """One device's part of a step.

    base, x0: this device's samples ([b, ...], [b, D]); valid [b] (0 for padding);
    weights [2R, rows] (region / background indicators); acc [2R, D, D] (replicated).
    Returns acc + psum over the mesh of Σ_samples Jᵀ diag(weights_k) J.
    """
    gen = nnx.merge(graphdef, state)
    fn = _grams_dense if gram == "dense" else _grams_stream
    g = fn(gen, opts, chunk, base, x0, valid, weights, acc_dtype)
    return acc + jax.lax.psum(g, axes)


_STEPS: dict = {}  # (graphdef, opts, chunk, gram, mesh, acc_dtype, donate) -> jitted step
_MAX_STEPS = 32


def _step_fn(graphdef, opts, chunk: int, gram: str, mesh: Mesh, acc_dtype: str, donate: bool):
    key = (graphdef, opts, chunk, gram, mesh, acc_dtype, donate)
    fn = _STEPS.get(key)
    if fn is None:
        if len(_STEPS) >= _MAX_STEPS:
            _STEPS.pop(next(iter(_STEPS)))
        fn = _STEPS[key] = _make_step(*key)
    return fn


def compiled_programs() -> int:
    """How many step programs `region_moments` has compiled so far (a recompile guard: another
    generator of the same structure, other samples, weights or regions of the same count reuse
    the program of a step shape).

    Returns:
      The number of compiled programs over the cached steps.
    """
    return sum(fn._cache_size() for fn in _STEPS.values())


def _make_step(graphdef, opts, chunk: int, gram: str, mesh: Mesh, acc_dtype: str, donate: bool):
    axes = tuple(mesh.axis_names)
    body = functools.partial(_step_body, graphdef, opts, chunk, gram, axes, jnp.dtype(acc_dtype))
    spec = P(axes)
    sm = jax.shard_map(
        body, mesh=mesh, in_specs=(P(), spec, spec, spec, P(), P()), out_specs=P(), check_vma=False
    )
    return jax.jit(sm, donate_argnums=(5,) if donate else ())


def default_mesh() -> Mesh:
    """A 1-D mesh ``("samples",)`` over every device (all processes' devices when distributed)."""
    return Mesh(np.asarray(jax.devices()), ("samples",))


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def _is_seed_list(x) -> bool:
    if isinstance(x, range):
        return True
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in x
        )
    if isinstance(x, np.ndarray):
        return x.ndim == 1 and np.issubdtype(x.dtype, np.integer)
    return False


class _Source:
    """Latents of samples ``idx`` (host numpy), from seeds or from a latent array."""

    def __init__(self, gen, samples, space, sampling: Sampling, dtype, precision):
        self.gen, self.space, self.dtype, self.precision = gen, space, dtype, precision
        self.psi, self.cutoff = sampling.truncation_psi, sampling.truncation_cutoff
        c = sampling.c
        self.biggan = jacobians.is_biggan(gen)
        if _is_seed_list(samples):
            seeds = [int(s) for s in samples]
            if len(set(seeds)) != len(seeds):
                raise ValueError("seeds contain duplicates: each sample may count once")
            if any(s < 0 or s >= 2**32 for s in seeds):
                raise ValueError("seeds must be in [0, 2**32)")
            self.seeds, self.latents = tuple(seeds), None
            self.n = len(seeds)
        else:
            if isinstance(samples, jax.Array) and not samples.is_fully_addressable:
                raise ValueError(
                    "latents spread over several processes are not supported: pass "
                    "the same host array (or seeds) to every process"
                )
            lat = np.asarray(samples)
            if lat.dtype == object or not np.issubdtype(lat.dtype, np.number):
                raise ValueError(
                    f"latents must be a float array (or a list of integer seeds), "
                    f"got dtype {lat.dtype}"
                )
            if lat.ndim < 2 or lat.shape[0] == 0:
                raise ValueError(f"latents must be [N, ...] with N >= 1, got shape {lat.shape}")
            if not np.all(np.isfinite(lat)):
                bad = int(np.nonzero(~np.isfinite(lat.reshape(lat.shape[0], -1)).all(1))[0][0])
                raise ValueError(f"latents contain non-finite values (sample {bad})")
            self.seeds, self.latents, self.n = None, lat, lat.shape[0]
        self.c = None
        if c is not None:
            c = np.asarray(c)
            if not np.all(np.isfinite(c)):
                raise ValueError("c contains non-finite values")
            if c.ndim == 1:
                c = np.broadcast_to(c[None], (self.n, c.shape[0]))
            if c.ndim != 2 or c.shape[0] != self.n:
                raise ValueError(f"c must be [N={self.n}, classes] or [classes], got {c.shape}")
            self.c = c

    def latents_of(self, idx: np.ndarray):
        """(latents for ``_prepare``, c or None) of samples ``idx``."""
        c = None if self.c is None else self.c[idx]
        if self.latents is not None:
            return self.latents[idx], c
        gen = self.gen
        assert self.seeds is not None  # a source holds latents or seeds
        seeds = [self.seeds[i] for i in idx]
        if self.biggan:
            from ...models.biggan import truncated_noise_sample

            z = np.concatenate(
                [truncated_noise_sample(1, gen.z_dim, self.psi, seed=s) for s in seeds]
            )
            return z, c
        from ...models.stylegan2 import seed_to_z

        z = np.concatenate([seed_to_z(s, gen.z_dim) for s in seeds])
        if self.space == "z":
            return z, c
        ws = gen.mapping(z, c, self.psi, self.cutoff, dtype=self.dtype, precision=self.precision)
        return np.asarray(ws), None


def _normalize_regions(regions) -> dict[str, RegionLike]:
    if isinstance(regions, str):
        regions = [r for r in regions.split(",") if r.strip()]
    if isinstance(regions, Mapping):
        items = list(regions.items())
    elif isinstance(regions, (list, tuple)) and all(isinstance(r, str) for r in regions):
        items = [(r.strip(), r.strip()) for r in regions]
    else:
        raise ValueError(
            "regions must be a dict {name: mask | Box | preset | (y0, x0, y1, x1)} "
            "or a list of preset names"
        )
    if not items:
        raise ValueError("regions is empty")
    out: dict[str, RegionLike] = {}
    for name, reg in items:
        if not isinstance(name, str) or not name:
            raise ValueError(f"region names must be non-empty strings, got {name!r}")
        if name in out:
            raise ValueError(f"region {name!r} given twice")
        out[name] = reg
    return out


# ---------------------------------------------------------------------------------------------
# region_moments
# ---------------------------------------------------------------------------------------------
def region_moments(
    gen,
    samples,
    regions,
    *,
    space: str = "w",
    output: OutputSpec | None = None,
    sampling: Sampling | None = None,
    compute: Compute | None = None,
    gram: str = "dense",
    mesh: Mesh | None = None,
    progress: bool | Callable = False,
    callback: Callable | None = None,
    initial: Mapping[str, Moments] | None = None,
) -> dict[str, Moments]:
    """Per-region ReSeFa moments over many samples, without keeping their Jacobians.

    Args:
      gen: a StyleGAN2 or BigGAN generator (as for :func:`jaxedit.jacobian`).
      samples: latents (as :func:`jaxedit.jacobian`: ws ``[N, num_ws, w_dim]`` or w ``[N, w_dim]``
        for spaces w / wplus / s; z ``[N, z_dim]`` for z and BigGAN), or seeds (a list / range /
        1-D integer array): NVIDIA's ``RandomState(seed).randn`` z, mapped with
        ``truncation_psi`` / ``truncation_cutoff`` for spaces w / wplus / s (BigGAN:
        ``truncated_noise_sample(seed=...)`` at ``truncation_psi``). Latents are produced batch by
        batch, so seeds cost no memory.
      regions: ``{name: region}`` (a bool mask ``[H, W]`` of any size, a :class:`~jaxedit.Box`, a
        preset name or ``(y0, x0, y1, x1)`` on the Jacobian grid), or a list of preset names.
      space, output: as :func:`jaxedit.jacobian`.
      sampling: a `jaxedit.Sampling` as for :func:`jaxedit.jacobian` (None: ``Sampling()``);
        ``c`` is ``[N, classes]`` or one ``[classes]`` vector for every sample.
      compute: a `jaxedit.Compute` (None: ``Compute()``): ``dtype`` and ``precision`` as for
        :func:`jaxedit.jacobian`; ``batch_size``: samples per device per step (a step processes
        ``batch_size x devices`` samples; the last one is padded with zero-weight samples, so
        every step has the same shape); ``chunk``: tangents per ``vmap`` in the forward-mode
        Jacobian (memory bound).
      gram: ``"dense"`` (default: the step's Jacobians ``[batch, H', W', C', D]`` are formed,
        then the Grams by matmuls - fastest) or ``"stream"`` (no Jacobian is formed: for each
        block of ``chunk`` columns, ``Jᵀ W J_c`` by transposed products; memory
        O(batch x H' W' C' x chunk), for grids where one Jacobian does not fit, at the cost of
        2 x regions VJPs per column).
      mesh: a :class:`jax.sharding.Mesh`; samples are sharded over all its axes. Default: every
        device (:func:`default_mesh`). Under ``jax.distributed`` every process passes the same
        ``samples`` and prepares only the rows its devices hold.
      progress: True for a progress bar (process 0), or a callable ``(done, total)``.
      callback: called after every step as ``callback(done, total, partial)`` where ``partial()``
        returns the moments so far (``{name: Moments}``; a host transfer, call it only when
        needed, e.g. to checkpoint).
      initial: moments to continue from (``{name: Moments}``, e.g. a checkpoint of this run):
        their sums seed the accumulator, so resuming at a step boundary reproduces an
        uninterrupted run bit for bit. Settings and masks must match; seed sets must be disjoint.
      ``progress`` / ``callback`` count only the new samples.

    Returns:
      ``{name: Moments}`` with ``M_f``, ``M_b`` ``[D, D]``, ``n_f``, ``n_b``, ``n_samples``.

    Memory per device: the forward-mode working set of ``batch_size x chunk`` tangents, ``2 x
    regions x D²`` accumulators, and with ``gram="dense"`` the step's ``batch_size`` Jacobians
    ``[H', W', C', D]`` (``"stream"``: ``batch_size x chunk`` Jacobian columns instead) -
    independent of N.

    Raises:
      TypeError: ``output`` / ``sampling`` / ``compute`` of the wrong type.
      ValueError: bad samples, regions, class vectors or options, ``initial`` moments of
        another run, or non-finite Jacobians.
    """
    sampling = as_sampling(sampling)
    compute = as_compute(compute)
    settings, masks, opts = moment_settings(
        gen, regions, space=space, output=output, sampling=sampling, compute=compute
    )
    batch, chunk = compute.batch_size_or(1), compute.chunk
    precision = compute.precision
    if gram not in GRAMS:
        raise ValueError(f"gram must be one of {GRAMS}, got {gram!r}")
    mesh = default_mesh() if mesh is None else mesh
    if not isinstance(mesh, Mesh):
        raise ValueError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    dt = compute.resolved_dtype  # a floating dtype (checked by Compute)
    acc_dtype = jnp.dtype(_ops.default_float_dtype())  # float64 whenever x64 is on
    src = _Source(gen, samples, space, sampling, dt, precision)
    if src.c is None and (jacobians.is_biggan(gen) or (space == "z" and gen.uses_class)):
        raise ValueError(
            "this generator is conditional: pass sampling=jaxedit.Sampling(c=...) "
            "([N, classes] or [classes])"
        )
    if src.seeds is None:  # shape errors now, not after a compile
        lat, c0 = src.latents_of(np.arange(1))
        jacobians.prepare_latents(gen, lat, space, c0, compute)
    d = settings.dim
    chunk = min(chunk, d)
    weights = []  # [2R, rows]: region / background row indicators
    for m in masks.values():
        rowmask = np.repeat(m.reshape(-1), settings.grid[2])
        weights += [rowmask, ~rowmask]
    weights = np.stack(weights).astype(dt)
    acc0 = np.zeros((len(weights), d, d), acc_dtype)
    n0, seeds0 = 0, ()
    if initial is not None:
        acc0, n0, seeds0 = _initial(initial, settings, masks, src.seeds, acc_dtype)

    graphdef, state = nnx.split(gen)
    repl = NamedSharding(mesh, P())
    rows_sh = NamedSharding(mesh, P(tuple(mesh.axis_names)))
    state = jax.device_put(state, repl)
    w_dev = jax.device_put(weights, repl)
    acc = jax.device_put(acc0, repl)
    platform = mesh.devices.flat[0].platform
    step = _step_fn(graphdef, opts, chunk, gram, mesh, acc_dtype.name, platform != "cpu")

    n_dev = mesh.devices.size
    gbatch = batch * n_dev
    n = src.n
    local = _local_rows(rows_sh, gbatch)
    if local.size == 0:
        raise ValueError(
            f"process {jax.process_index()} holds no device of the mesh: under "
            f"jax.distributed the mesh must span every process"
        )
    show = None
    bar = None
    if progress is True:
        bar = _io.progress(n, "moments", enabled=jax.process_index() == 0, unit="sample")
    elif callable(progress):
        show = progress

    def partial(done, acc_now):
        host = np.asarray(acc_now)
        seeds = None if src.seeds is None or seeds0 is None else seeds0 + src.seeds[:done]
        return _build(host, masks, settings, n0 + done, seeds)

    try:
        for lo in range(0, n, gbatch):
            idx = np.minimum(np.arange(lo, lo + gbatch), n - 1)
            valid = (np.arange(lo, lo + gbatch) < n).astype(dt)
            lat, cc = src.latents_of(idx[local])
            base, x0 = jacobians.prepare_latents(gen, lat, space, cc, compute)
            args = [_global(a, local, gbatch, rows_sh) for a in (base, x0, valid[local])]
            acc = step(state, *args, w_dev, acc)
            jax.block_until_ready(acc)
            done = min(n, lo + gbatch)
            if bar is not None:
                bar.update(done - bar.n)
            if show is not None:
                show(done, n)
            if callback is not None:
                callback(done, n, functools.partial(partial, done, acc))
    finally:
        if bar is not None:
            bar.close()
    return partial(n, acc)


def moment_settings(
    gen,
    regions,
    *,
    space: str = "w",
    output: OutputSpec | None = None,
    sampling: Sampling | None = None,
    compute: Compute | None = None,
) -> tuple[MomentSettings, dict[str, np.ndarray], Any]:
    """Validate the options: ``(settings, {name: mask [H', W']}, jacobian render options)``.

    Args:
      gen: the generator.
      regions: as `region_moments`.
      space, output: as `region_moments`.
      sampling: a `jaxedit.Sampling`; ``noise_mode``, ``truncation_psi`` and
        ``truncation_cutoff`` are read (``c`` is not part of the settings).
      compute: a `jaxedit.Compute`; ``precision`` is read.

    Returns:
      ``(MomentSettings, {name: mask [H', W']}, render options)``.

    Raises:
      TypeError: an option object of the wrong type.
      ValueError: bad regions or options.
    """
    out = as_output(output)
    sampling = as_sampling(sampling)
    opts = jacobians.render_options(gen, space, out, sampling, as_compute(compute))
    d = jacobians.latent_dim(gen, space)
    gh, gw, gc = (int(v) for v in opts.out.out_shape(gen.resolution, gen.img_channels))
    grid = (gh, gw, gc)
    prefer = generator_preset_set(gen)  # a short name ("eyes") resolves by the generator
    masks = {
        n: region_mask(
            preset(r, prefer=prefer) if isinstance(r, str) and "," not in r else r, grid[:2]
        )
        for n, r in _normalize_regions(regions).items()
    }
    cutoff = sampling.truncation_cutoff
    settings = MomentSettings(
        space,
        None if grid[0] == gen.resolution or out.resize is None else int(out.resize),
        opts.out.mode,
        opts.out.channels,
        sampling.noise_mode,
        float(sampling.truncation_psi),
        None if cutoff is None else int(cutoff),
        grid,
        int(d),
        generator_fingerprint(gen),
    )
    return settings, masks, opts


def _initial(initial, settings, masks, seeds, acc_dtype):
    """(accumulator [2R, D, D], n_samples, seeds or None) from moments to continue from."""
    if not is_moments(initial) or isinstance(initial, Moments):
        raise ValueError("initial must be a dict {name: Moments} (e.g. load_moments(checkpoint))")
    if sorted(initial) != sorted(masks):
        raise ValueError(f"initial has regions {sorted(initial)}, this run {sorted(masks)}")
    first = check_run(initial)
    diff = first.settings.differences(settings)
    if diff:
        raise ValueError("initial moments were made with other settings: " + "; ".join(diff))
    acc = []
    for name, m in masks.items():
        if initial[name].mask_bits != pack_mask(m):
            raise ValueError(f"initial moments of region {name!r} have another mask")
        acc += [np.asarray(initial[name].gram_f), np.asarray(initial[name].gram_b)]
    old = first.seeds
    if old is not None and seeds is not None:
        both = set(old) & set(seeds)
        if both:
            raise ValueError(
                f"{len(both)} seed(s) are already in the initial moments (e.g. {sorted(both)[:5]})"
            )
    return np.stack(acc).astype(acc_dtype), int(first.n_samples), old


def _local_rows(sharding: NamedSharding, gbatch: int) -> np.ndarray:
    """Sorted rows of a ``[gbatch]`` array that this process's devices hold."""
    rows = set()
    for idx in sharding.addressable_devices_indices_map((gbatch,)).values():
        assert idx is not None  # a sample-sharded array: every device holds a slice
        rows.update(range(*idx[0].indices(gbatch)))
    return np.asarray(sorted(rows), np.int64)


def _global(tree, local: np.ndarray, gbatch: int, sharding: NamedSharding):
    """Host/process-local leaves holding rows ``local`` -> global arrays ``[gbatch, ...]``."""

    def one(a):
        a = np.asarray(a)
        full = np.zeros((gbatch,) + a.shape[1:], a.dtype)
        full[local] = a
        return jax.make_array_from_callback(full.shape, sharding, lambda i: full[i])

    return jax.tree.map(one, tree)


def _build(
    acc: np.ndarray, masks: dict, settings: MomentSettings, n_samples: int, seeds
) -> dict[str, Moments]:
    if not np.all(np.isfinite(acc)):
        raise ValueError(
            "the Jacobians contain non-finite values (check the generator and the "
            "latents; a float32 overflow can also cause this - try compute=jaxedit.Compute(dtype=jnp.float64) with jax_enable_x64)"
        )
    c = settings.grid[2]
    out = {}
    for i, (name, m) in enumerate(masks.items()):
        n_f = int(m.sum()) * c
        n_b = int((~m).sum()) * c
        out[name] = Moments(
            acc[2 * i],
            acc[2 * i + 1],
            int(n_samples),
            name,
            n_f,
            n_b,
            settings,
            pack_mask(m),
            None if seeds is None else tuple(seeds),
        )
    return out


__all__ = [
    "GRAMS",
    "compiled_programs",
    "default_mesh",
    "generator_fingerprint",
    "moment_settings",
    "region_moments",
]
