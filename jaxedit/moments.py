"""Region moments over many samples: streaming, sharded over devices and hosts, mergeable.

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

:class:`Moments` stores the *sums* (exact merging: ``a + b``, ``sum([...])``), exposes the
reference's means as ``M_f`` / ``M_b``, records the settings and the region mask (merging checks
them, and refuses overlapping seed sets), and saves to / loads from ``.npz``
(:func:`save_moments`, :func:`load_moments`). ``jaxedit.resefa(moments, k=...)`` solves from them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from . import _io, _ops, jacobians
from .regions import RegionLike, region_mask

FORMAT = "jaxedit.moments"
VERSION = 1


# ---------------------------------------------------------------------------------------------
# Settings and the Moments pytree
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MomentSettings:
    """What the moments were computed from (hashable; merging and resuming require equality).

    Attributes:
      space, resize, resize_mode, channels, noise_mode, truncation_psi, truncation_cutoff: the
        :func:`jaxedit.jacobian` options.
      grid: ``(H', W', C')`` of the Jacobian rows.
      dim: D.
      generator: fingerprint of the generator (sha256 of its structure and parameters).
    """

    space: str
    resize: int | None
    resize_mode: str
    channels: str
    noise_mode: str
    truncation_psi: float
    truncation_cutoff: int | None
    grid: tuple[int, int, int]
    dim: int
    generator: str

    def differences(self, other: "MomentSettings") -> list[str]:
        """Human-readable ``field: a vs b`` for every differing field."""
        out = []
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a != b:
                out.append(f"{f.name} {a!r} vs {b!r}")
        return out


def _pack_mask(mask: np.ndarray) -> bytes:
    return np.packbits(np.asarray(mask, bool).reshape(-1)).tobytes()


@dataclasses.dataclass(frozen=True, repr=False)
class Moments:
    """Second moments of one region's Jacobian rows over ``n_samples`` samples (a pytree).

    Leaves (additive, so ``jax.tree.map(jnp.add, a, b)`` merges when the metadata agree):
      gram_f: ``[D, D]`` Σ over samples of ``J_fᵀJ_f`` (region rows).
      gram_b: ``[D, D]`` Σ over samples of ``J_bᵀJ_b`` (background rows).
      n_samples: number of samples summed.

    Metadata (static):
      name: the region's name.
      n_f, n_b: rows inside / outside the region per sample (pixels x channels).
      settings: :class:`MomentSettings`.
      mask_bits: the region mask on the Jacobian grid, packed (see :attr:`mask`).
      seeds: the seeds summed, in order, when the samples came from seeds (else None).

    ``M_f = gram_f / (n_f n_samples)`` and ``M_b = gram_b / (n_b n_samples)`` are the reference's
    per-row means, averaged over samples (symmetrized), as ``resefa(J, mask, aggregate="mean")``.
    """

    gram_f: Any
    gram_b: Any
    n_samples: Any
    name: str = dataclasses.field(metadata=dict(static=True))
    n_f: int = dataclasses.field(metadata=dict(static=True))
    n_b: int = dataclasses.field(metadata=dict(static=True))
    settings: MomentSettings = dataclasses.field(metadata=dict(static=True))
    mask_bits: bytes = dataclasses.field(metadata=dict(static=True), repr=False)
    seeds: tuple[int, ...] | None = dataclasses.field(default=None, metadata=dict(static=True),
                                                      repr=False)

    def __repr__(self) -> str:
        s = self.settings
        return (f"Moments(name={self.name!r}, D={s.dim}, n_samples={self.n_samples}, "
                f"n_f={self.n_f}, n_b={self.n_b}, space={s.space!r}, grid={s.grid}, "
                f"generator={s.generator!r})")

    # -- derived -------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """D."""
        return self.settings.dim

    @property
    def mask(self) -> np.ndarray:
        """``[H', W']`` bool region on the Jacobian grid."""
        h, w, _ = self.settings.grid
        bits = np.frombuffer(self.mask_bits, np.uint8)
        return np.unpackbits(bits, count=h * w).astype(bool).reshape(h, w)

    @property
    def M_f(self) -> jax.Array:  # noqa: N802 - the paper's name
        """``[D, D]`` mean over samples of ``J_fᵀJ_f / n_f``."""
        return _mean(self.gram_f, self.n_f, self.n_samples)

    @property
    def M_b(self) -> jax.Array:  # noqa: N802
        """``[D, D]`` mean over samples of ``J_bᵀJ_b / n_b`` (unregularized)."""
        return _mean(self.gram_b, self.n_b, self.n_samples)

    # -- merging -------------------------------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, int) and other == 0:       # sum([...]) starts from 0
            return self
        if not isinstance(other, Moments):
            return NotImplemented
        diff = self.settings.differences(other.settings)
        if diff:
            raise ValueError("cannot merge moments made with different settings: "
                             + "; ".join(diff))
        if self.mask_bits != other.mask_bits or (self.n_f, self.n_b) != (other.n_f, other.n_b):
            raise ValueError(f"cannot merge moments of different regions ({self.name!r} and "
                             f"{other.name!r} have different masks)")
        seeds = None
        if self.seeds is not None and other.seeds is not None:
            both = set(self.seeds) & set(other.seeds)
            if both:
                shown = sorted(both)[:5]
                raise ValueError(f"cannot merge moments of region {self.name!r}: {len(both)} "
                                 f"seed(s) were summed in both (e.g. {shown}); each sample may "
                                 f"count once")
            seeds = self.seeds + other.seeds
        return Moments(_add(self.gram_f, other.gram_f), _add(self.gram_b, other.gram_b),
                       int(self.n_samples) + int(other.n_samples), self.name, self.n_f, self.n_b,
                       self.settings, self.mask_bits, seeds)

    __radd__ = __add__

    def save(self, path, *, overwrite: bool = True) -> str:
        """Write this region alone to ``path`` (.npz, atomically); see :func:`save_moments`."""
        return save_moments(path, {self.name: self}, overwrite=overwrite)


jax.tree_util.register_dataclass(
    Moments, data_fields=["gram_f", "gram_b", "n_samples"],
    meta_fields=["name", "n_f", "n_b", "settings", "mask_bits", "seeds"])


def _add(a, b):
    dt = jnp.promote_types(a.dtype, b.dtype)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.astype(dt) + b.astype(dt)
    return jnp.asarray(a, dt) + jnp.asarray(b, dt)


def _mean(gram, rows: int, n_samples) -> jax.Array:
    g = jnp.asarray(gram)
    return (g + g.T) / (2 * rows * n_samples)


def is_moments(x) -> bool:
    """A :class:`Moments` or a non-empty dict of them (what :func:`jaxedit.resefa` accepts)."""
    if isinstance(x, Moments):
        return True
    return isinstance(x, Mapping) and len(x) > 0 and all(isinstance(v, Moments) for v in x.values())


def merge_moments(*parts: Mapping[str, Moments]) -> dict[str, Moments]:
    """Merge several ``{region: Moments}`` results (e.g. shards of a study) region by region.

    Every part must have the same regions and settings; seed sets must be disjoint.
    """
    if not parts:
        raise ValueError("merge_moments needs at least one part")
    names = list(parts[0])
    for i, p in enumerate(parts[1:], 1):
        if sorted(p) != sorted(names):
            raise ValueError(f"cannot merge: part 0 has regions {sorted(names)}, part {i} has "
                             f"{sorted(p)}")
    return {n: sum((p[n] for p in parts[1:]), parts[0][n]) for n in names}


# ---------------------------------------------------------------------------------------------
# Generator fingerprint
# ---------------------------------------------------------------------------------------------
def generator_fingerprint(gen) -> str:
    """sha256 (hex, 16 chars) of the generator's config, parameter paths, shapes, dtypes and
    values: the identity recorded in (and checked by) moment files."""
    h = hashlib.sha256()
    cfg = getattr(gen, "config", None)
    to_json = getattr(cfg, "to_json", None)
    h.update((to_json() if callable(to_json) else repr(cfg)).encode())
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
TRACES = {"step": 0}   # incremented when the step is traced (tests guard against recompiles)


GRAMS = ("dense", "stream")


def _grams_dense(gen, opts, chunk: int, base, x0, valid, weights, acc_dtype):
    """Σ_samples Jᵀ diag(weights_k) J from the batch's full Jacobians: [2R, D, D]."""
    J = jax.vmap(lambda b, x: jacobians._jacobian_one(gen, opts, chunk, b, x))(base, x0)
    d = J.shape[-1]
    J2 = (J * valid.astype(J.dtype).reshape((-1,) + (1,) * (J.ndim - 1))).reshape(-1, d)
    nrows = weights.shape[1]
    hp = jax.lax.Precision.HIGHEST
    grams = []
    for k in range(weights.shape[0]):
        w = jnp.tile(weights[k].astype(J.dtype), J2.shape[0] // nrows)
        grams.append(jax.lax.dot_general(J2 * w[:, None], J2, (((0,), (0,)), ((), ())),
                                         precision=hp, preferred_element_type=acc_dtype))
    return jnp.stack(grams).astype(acc_dtype)


def _grams_stream_one(gen, opts, chunk: int, base, x0, weights):
    """One sample's ``[2R, D, D]`` Grams without its Jacobian: for each block of ``chunk``
    columns ``J_c = J E_c`` (JVPs), ``Jᵀ diag(w_k) J_c`` by transposed products (VJPs) - memory
    O(rows x chunk), at the cost of 2R VJPs per column."""
    def f(x):
        return jacobians._render(gen, opts, base, x).reshape(-1)

    _, f_lin = jax.linearize(f, x0)
    f_t = jax.linear_transpose(f_lin, x0)
    d = x0.shape[0]
    n_chunks = -(-d // chunk)

    def block(i):
        jc = jax.vmap(f_lin)(jacobians._basis_chunk(i, chunk, d, x0.dtype))   # [chunk, rows]
        return jax.lax.map(lambda w: jax.vmap(lambda u: f_t(u)[0])(jc * w[None]),
                           weights.astype(x0.dtype))                          # [2R, chunk, D]

    cols = jax.lax.map(block, jnp.arange(n_chunks))                # [n_chunks, 2R, chunk, D]
    g = jnp.moveaxis(cols, 1, 0).reshape(weights.shape[0], n_chunks * chunk, d)[:, :d]
    return g                                    # row j of G_k = (Jᵀ W_k J e_j)ᵀ, G_k symmetric


def _grams_stream(gen, opts, chunk: int, base, x0, valid, weights, acc_dtype):
    g = jax.vmap(lambda b, x: _grams_stream_one(gen, opts, chunk, b, x, weights))(base, x0)
    return jnp.einsum("n,nkde->kde", valid.astype(g.dtype), g,
                      precision=jax.lax.Precision.HIGHEST).astype(acc_dtype)


def _step_body(graphdef, opts, chunk: int, gram: str, axes: tuple, acc_dtype, state, base, x0,
               valid, weights, acc):
    """One device's part of a step.

    base, x0: this device's samples ([b, ...], [b, D]); valid [b] (0 for padding);
    weights [2R, rows] (region / background indicators); acc [2R, D, D] (replicated).
    Returns acc + psum over the mesh of Σ_samples Jᵀ diag(weights_k) J.
    """
    TRACES["step"] += 1
    gen = nnx.merge(graphdef, state)
    fn = _grams_dense if gram == "dense" else _grams_stream
    g = fn(gen, opts, chunk, base, x0, valid, weights, acc_dtype)
    return acc + jax.lax.psum(g, axes)


@functools.lru_cache(maxsize=32)
def _step_fn(graphdef, opts, chunk: int, gram: str, mesh: Mesh, acc_dtype: str, donate: bool):
    axes = tuple(mesh.axis_names)
    body = functools.partial(_step_body, graphdef, opts, chunk, gram, axes, jnp.dtype(acc_dtype))
    spec = P(axes)
    sm = jax.shard_map(body, mesh=mesh, in_specs=(P(), spec, spec, spec, P(), P()),
                       out_specs=P(), check_vma=False)
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
        return len(x) > 0 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  for v in x)
    if isinstance(x, np.ndarray):
        return x.ndim == 1 and np.issubdtype(x.dtype, np.integer)
    return False


class _Source:
    """Latents of samples ``idx`` (host numpy), from seeds or from a latent array."""

    def __init__(self, gen, samples, space, c, truncation_psi, truncation_cutoff, dtype,
                 precision):
        self.gen, self.space, self.dtype, self.precision = gen, space, dtype, precision
        self.psi, self.cutoff = truncation_psi, truncation_cutoff
        self.biggan = jacobians._is_biggan(gen)
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
                raise ValueError("latents spread over several processes are not supported: pass "
                                 "the same host array (or seeds) to every process")
            lat = np.asarray(samples)
            if lat.dtype == object or not np.issubdtype(lat.dtype, np.number):
                raise ValueError(f"latents must be a float array (or a list of integer seeds), "
                                 f"got dtype {lat.dtype}")
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
        seeds = [self.seeds[i] for i in idx]
        if self.biggan:
            from .models.biggan import truncated_noise_sample

            z = np.concatenate([truncated_noise_sample(1, gen.z_dim, self.psi, seed=s)
                                for s in seeds])
            return z, c
        from .models.stylegan2 import seed_to_z

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
        raise ValueError("regions must be a dict {name: mask | Box | preset | (y0, x0, y1, x1)} "
                         "or a list of preset names")
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
def region_moments(gen, samples, regions, *, space: str = "w", resize: int | None = None,
                   resize_mode: str = "nearest", channels: str = "rgb", batch: int = 1,
                   chunk: int = 32, gram: str = "dense", mesh: Mesh | None = None, c=None,
                   truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                   noise_mode: str = "const", dtype=None,
                   precision: _ops.Precision = "highest", progress: bool | Callable = False,
                   callback: Callable | None = None,
                   initial: Mapping[str, Moments] | None = None) -> dict[str, Moments]:
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
      space, resize, resize_mode, channels, c, truncation_psi, truncation_cutoff, noise_mode,
        dtype, precision: as :func:`jaxedit.jacobian` (``c``: ``[N, classes]`` or one
        ``[classes]`` vector for every sample).
      batch: samples per device per step; a step processes ``batch x devices`` samples (the last
        one is padded with zero-weight samples, so every step has the same shape).
      chunk: tangents per ``vmap`` in the forward-mode Jacobian (memory bound).
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

    Memory per device: the forward-mode working set of ``batch x chunk`` tangents, ``2 x
    regions x D²`` accumulators, and with ``gram="dense"`` the step's ``batch`` Jacobians
    ``[H', W', C', D]`` (``"stream"``: ``batch x chunk`` Jacobian columns instead) - independent
    of N.
    """
    settings, masks, opts = moment_settings(
        gen, regions, space=space, resize=resize, resize_mode=resize_mode, channels=channels,
        noise_mode=noise_mode, truncation_psi=truncation_psi,
        truncation_cutoff=truncation_cutoff, precision=precision)
    if int(batch) != batch or batch < 1 or int(chunk) != chunk or chunk < 1:
        raise ValueError(f"batch and chunk must be integers >= 1, got batch={batch}, chunk={chunk}")
    batch, chunk = int(batch), int(chunk)
    if gram not in GRAMS:
        raise ValueError(f"gram must be one of {GRAMS}, got {gram!r}")
    mesh = default_mesh() if mesh is None else mesh
    if not isinstance(mesh, Mesh):
        raise ValueError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    dt = jnp.dtype(dtype) if dtype is not None else _ops.default_float_dtype()
    acc_dtype = jnp.dtype(_ops.default_float_dtype())   # float64 whenever x64 is on
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"dtype must be a float dtype, got {dt}")
    src = _Source(gen, samples, space, c, truncation_psi, truncation_cutoff, dt, precision)
    if src.c is None and (jacobians._is_biggan(gen)
                          or (space == "z" and getattr(gen, "c_dim", 0) > 0)):
        raise ValueError("this generator is conditional: pass c ([N, classes] or [classes])")
    if src.seeds is None:   # shape errors now, not after a compile
        lat, c0 = src.latents_of(np.arange(1))
        jacobians._prepare(gen, lat, space, c0, dt, precision, truncation_psi, truncation_cutoff)
    d = settings.dim
    chunk = min(chunk, d)
    weights = []   # [2R, rows]: region / background row indicators
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
        raise ValueError(f"process {jax.process_index()} holds no device of the mesh: under "
                         f"jax.distributed the mesh must span every process")
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
            base, x0 = jacobians._prepare(gen, lat, space, cc, dt, precision, truncation_psi,
                                          truncation_cutoff)
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


def moment_settings(gen, regions, *, space: str = "w", resize: int | None = None,
                    resize_mode: str = "nearest", channels: str = "rgb",
                    noise_mode: str = "const", truncation_psi: float = 1.0,
                    truncation_cutoff: int | None = None, precision: _ops.Precision = "highest"
                    ) -> tuple[MomentSettings, dict[str, np.ndarray], Any]:
    """Validate the options: ``(settings, {name: mask [H', W']}, jacobian render options)``."""
    opts = jacobians._options(gen, space, resize, resize_mode, channels, noise_mode, precision,
                              truncation_psi, truncation_cutoff)
    d = jacobians.latent_dim(gen, space)
    grid = tuple(int(v) for v in opts.out.out_shape(gen.resolution, gen.img_channels))
    masks = {n: region_mask(r, grid[:2]) for n, r in _normalize_regions(regions).items()}
    settings = MomentSettings(space, None if grid[0] == gen.resolution else int(resize),
                              opts.out.mode, opts.out.channels, noise_mode,
                              float(truncation_psi),
                              None if truncation_cutoff is None else int(truncation_cutoff),
                              grid, int(d), generator_fingerprint(gen))
    return settings, masks, opts


def _initial(initial, settings, masks, seeds, acc_dtype):
    """(accumulator [2R, D, D], n_samples, seeds or None) from moments to continue from."""
    if not is_moments(initial) or isinstance(initial, Moments):
        raise ValueError("initial must be a dict {name: Moments} (e.g. load_moments(checkpoint))")
    if sorted(initial) != sorted(masks):
        raise ValueError(f"initial has regions {sorted(initial)}, this run {sorted(masks)}")
    first = _common(initial)
    diff = first.settings.differences(settings)
    if diff:
        raise ValueError("initial moments were made with other settings: " + "; ".join(diff))
    acc = []
    for name, m in masks.items():
        if initial[name].mask_bits != _pack_mask(m):
            raise ValueError(f"initial moments of region {name!r} have another mask")
        acc += [np.asarray(initial[name].gram_f), np.asarray(initial[name].gram_b)]
    old = first.seeds
    if old is not None and seeds is not None:
        both = set(old) & set(seeds)
        if both:
            raise ValueError(f"{len(both)} seed(s) are already in the initial moments "
                             f"(e.g. {sorted(both)[:5]})")
    return np.stack(acc).astype(acc_dtype), int(first.n_samples), old


def _local_rows(sharding: NamedSharding, gbatch: int) -> np.ndarray:
    """Sorted rows of a ``[gbatch]`` array that this process's devices hold."""
    rows = set()
    for idx in sharding.addressable_devices_indices_map((gbatch,)).values():
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


def _build(acc: np.ndarray, masks: dict, settings: MomentSettings, n_samples: int,
           seeds) -> dict[str, Moments]:
    if not np.all(np.isfinite(acc)):
        raise ValueError("the Jacobians contain non-finite values (check the generator and the "
                         "latents; a float32 overflow can also cause this - try dtype=float64)")
    c = settings.grid[2]
    out = {}
    for i, (name, m) in enumerate(masks.items()):
        n_f = int(m.sum()) * c
        n_b = int((~m).sum()) * c
        out[name] = Moments(acc[2 * i], acc[2 * i + 1], int(n_samples), name, n_f, n_b, settings,
                            _pack_mask(m), None if seeds is None else tuple(seeds))
    return out


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def _common(moments: Mapping[str, Moments]) -> Moments:
    if not is_moments(moments) or isinstance(moments, Moments):
        raise ValueError("expected a non-empty dict {name: Moments}")
    first = next(iter(moments.values()))
    for name, m in moments.items():
        if name != m.name:
            raise ValueError(f"dict key {name!r} differs from the region name {m.name!r}")
        diff = first.settings.differences(m.settings)
        if diff or m.n_samples != first.n_samples or m.seeds != first.seeds:
            raise ValueError(f"regions {first.name!r} and {name!r} come from different runs "
                             f"({'; '.join(diff) or 'samples differ'}): save them separately")
    return first


def save_moments(path, moments: Mapping[str, Moments], *, overwrite: bool = True,
                 **extra) -> str:
    """Write ``{name: Moments}`` (one run: same settings and samples) to ``path`` atomically.

    ``overwrite``: replace an existing file (else :class:`~jaxedit.OutputExistsError`).
    ``extra``: further arrays / strings stored alongside (e.g. a run's bookkeeping); keys must
    not collide with the format's own. Returns the absolute path.
    """
    first = _common(moments)
    s = first.settings
    arrays = dict(
        format=FORMAT, version=VERSION, regions=np.asarray(list(moments)),
        gram_f=np.stack([np.asarray(m.gram_f) for m in moments.values()]),
        gram_b=np.stack([np.asarray(m.gram_b) for m in moments.values()]),
        masks=np.stack([m.mask for m in moments.values()]),
        n_f=np.asarray([m.n_f for m in moments.values()], np.int64),
        n_b=np.asarray([m.n_b for m in moments.values()], np.int64),
        n_samples=np.int64(first.n_samples),
        seeds=np.asarray(first.seeds if first.seeds is not None else [], np.int64),
        seeds_known=first.seeds is not None,
        space=s.space, resize=-1 if s.resize is None else s.resize, resize_mode=s.resize_mode,
        channels=s.channels, noise_mode=s.noise_mode, truncation_psi=s.truncation_psi,
        truncation_cutoff=-1 if s.truncation_cutoff is None else s.truncation_cutoff,
        grid=np.asarray(s.grid, np.int64), dim=s.dim, generator=s.generator)
    clash = sorted(set(extra) & set(arrays))
    if clash:
        raise ValueError(f"extra keys {clash} collide with the moments format")
    return _io.save_npz(path, overwrite=overwrite, **arrays, **extra)


_REQUIRED = ("format", "version", "regions", "gram_f", "gram_b", "masks", "n_f", "n_b",
             "n_samples", "seeds", "seeds_known", "space", "resize", "resize_mode", "channels",
             "noise_mode", "truncation_psi", "truncation_cutoff", "grid", "dim", "generator")


def read_moments(path) -> tuple[dict[str, Moments], dict]:
    """``(moments, everything in the file)``; see :func:`load_moments`."""
    data = _io.load_npz(path, _REQUIRED, "moments")

    def bad(key, why):
        return ValueError(f"{path}: key {key!r} {why}")

    if str(data["format"]) != FORMAT:
        raise bad("format", f"is {str(data['format'])!r}, not {FORMAT!r}")
    if int(data["version"]) != VERSION:
        raise bad("version", f"is {int(data['version'])}; this jaxedit reads version {VERSION}")
    names = [str(v) for v in np.atleast_1d(data["regions"])]
    r = len(names)
    grid = tuple(int(v) for v in data["grid"])
    d = int(data["dim"])
    if len(grid) != 3 or min(grid) < 1:
        raise bad("grid", f"must be 3 positive integers, got {grid}")
    for key in ("gram_f", "gram_b"):
        a = data[key]
        if a.shape != (r, d, d) or not np.issubdtype(a.dtype, np.floating):
            raise bad(key, f"must be a float array [{r}, {d}, {d}], got {a.dtype} {a.shape}")
        if not np.all(np.isfinite(a)):
            raise bad(key, "contains non-finite values")
    masks = data["masks"]
    if masks.shape != (r,) + grid[:2] or masks.dtype != bool:
        raise bad("masks", f"must be bool [{r}, {grid[0]}, {grid[1]}], got {masks.dtype} "
                           f"{masks.shape}")
    n_f, n_b = data["n_f"], data["n_b"]
    for key, a in (("n_f", n_f), ("n_b", n_b)):
        if a.shape != (r,):
            raise bad(key, f"must have shape [{r}] (one count per region), got {a.shape}")
    for i, m in enumerate(masks):
        if int(n_f[i]) != int(m.sum()) * grid[2] or int(n_b[i]) != int((~m).sum()) * grid[2]:
            raise bad("n_f", f"does not match region {names[i]!r}'s mask")
    n_samples = int(data["n_samples"])
    if n_samples < 0:
        raise bad("n_samples", f"must be >= 0, got {n_samples}")
    seeds = None
    if bool(data["seeds_known"]):
        seeds = tuple(int(s) for s in data["seeds"])
        if len(seeds) != n_samples:
            raise bad("seeds", f"has {len(seeds)} entries for {n_samples} samples")
    resize, cutoff = int(data["resize"]), int(data["truncation_cutoff"])
    settings = MomentSettings(str(data["space"]), None if resize < 0 else resize,
                              str(data["resize_mode"]), str(data["channels"]),
                              str(data["noise_mode"]), float(data["truncation_psi"]),
                              None if cutoff < 0 else cutoff, grid, d, str(data["generator"]))
    out = {name: Moments(data["gram_f"][i], data["gram_b"][i], n_samples, name, int(n_f[i]),
                         int(n_b[i]), settings, _pack_mask(masks[i]), seeds)
           for i, name in enumerate(names)}
    return out, data


def load_moments(path) -> dict[str, Moments]:
    """Read a file written by :func:`save_moments` (or ``jaxedit moments``): ``{name: Moments}``.

    Every key is checked (shapes, dtypes, finiteness, masks against row counts); a bad file
    raises ``ValueError`` naming the file and key.
    """
    return read_moments(path)[0]


# ---------------------------------------------------------------------------------------------
# ReSeFa from moments (dispatched to by jaxedit.resefa)
# ---------------------------------------------------------------------------------------------
def resefa_moments(moments, region=None, *, k: int = 10, regularization: float = 0.0,
                   solver="auto", aggregate: str = "mean", warn: bool = True):
    """ReSeFa directions from :class:`Moments` (what ``jaxedit.resefa(moments, ...)`` runs).

    The moments are already averaged over their samples, so this equals
    ``resefa(J, mask, aggregate="mean")`` on the same samples (``aggregate`` is accepted and
    ignored). ``moments`` may be a dict of moments, with ``region`` naming the entry; with a
    single :class:`Moments`, ``region`` is optional and, if given, must resolve to the stored
    mask. Solvers: ``Dense`` (``"auto"``), ``ReferenceEig`` and ``MatrixFree`` (products with
    M_f, M_b); ``Woodbury`` needs the Jacobian rows. The solve is
    :func:`jaxedit.region_factorization.solve_moments`, with the same diagnostics and warnings
    as ``resefa`` on a Jacobian.
    """
    from . import region_factorization as rf
    from .solvers import Woodbury, as_solver

    if isinstance(moments, Mapping):
        if region is None and len(moments) == 1:
            region = next(iter(moments))
        if not isinstance(region, str) or region not in moments:
            raise ValueError(f"pick a region of the moments by name: one of {sorted(moments)}, "
                             f"got {region!r}")
        m = moments[region]
    else:
        m = moments
        if region is not None:
            if not (isinstance(region, str) and region == m.name):
                want = region_mask(region, m.settings.grid[:2])
                if not np.array_equal(want, m.mask):
                    raise ValueError(f"region {region!r} is not the region these moments were "
                                     f"computed for ({m.name!r}, {int(m.mask.sum())} pixels)")
    if aggregate not in ("none", "mean"):   # moments are averaged over their samples already
        raise ValueError(f"aggregate must be 'none' or 'mean', got {aggregate!r}")
    opts = as_solver(solver, operator=False)
    if isinstance(opts, Woodbury):
        raise ValueError("moments hold M_f and M_b only: Woodbury needs the Jacobian rows; use "
                         "Dense() ('auto'), ReferenceEig() or MatrixFree()")
    if int(m.n_samples) < 1:
        raise ValueError(f"the moments of region {m.name!r} hold no samples")
    tau = rf._check_regularization(regularization)
    mf = m.M_f
    sol = rf.solve_moments(mf, m.M_b, k=k, regularization=tau, solver=opts)
    return rf._finish([sol], opts, True, m.mask, m.n_f, m.n_b, tau, m.dim, mf.dtype, warn)


__all__ = ["MomentSettings", "Moments", "default_mesh", "generator_fingerprint", "is_moments",
           "load_moments", "merge_moments", "read_moments", "region_moments", "resefa_moments",
           "save_moments"]
