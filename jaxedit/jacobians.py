"""Generator Jacobians in forward mode: d(image rows) / d(latent), chunked and jitted.

ReSeFa's reference takes one backward pass per output pixel (65,536 per 256x256 sample). With
D latent dimensions and many more pixels, forward mode needs only D Jacobian-vector products:
the generator is linearized once per sample (``jax.linearize``) and the linear map is ``vmap``-ed
over ``chunk`` basis tangents at a time inside a ``lax.map``, so memory is bounded by ``chunk``.

Latent spaces (``D`` = the Jacobian's last axis):

* ``"w"``: one w offset tied to every W+ slot (the reference's ``repeat(w, num_ws)``); D = w_dim.
* ``"wplus"``: every slot separately, flattened slot-major; D = num_ws * w_dim.
* ``"z"``: through the mapping network (with the given truncation); D = z_dim.
* ``"s"``: all per-layer style vectors (raw affine outputs), concatenated in
  ``gen.layer_names`` order; D = sum of the layers' input channels.

BigGAN (latents z ``[N, z_dim]`` with class vectors ``sampling.c``; ``sampling.truncation_psi``
is BigGAN's static truncation that picks the BN statistics): ``"z"`` (D = z_dim), ``"embed"``
(the class embedding, D = z_dim) and ``"cond"`` (the concatenated ``[z, embed]``, D = 2 * z_dim).

Output rows (`OutputSpec`): the NHWC image, optionally reduced to ``resize`` pixels per side
(``"nearest"`` picks pixel (s*i, s*j) as torch's default ``F.interpolate``; ``"area"`` averages
s x s blocks), and the channels kept (``"rgb"``), summed (``"sum"``, ReSeFa) or averaged
(``"mean"``, LowRankGAN). The reference applies both only when the image is larger than 256 px
(a 256 px model gives RGB rows); here they are explicit options, so
``OutputSpec(256, channels="sum")`` reproduces its 1024 px setting and
``OutputSpec(channels="rgb")`` its 256 px one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from . import _io, _ops
from ._checks import check_finite, finite_scalar
from ._typing import JacobianArray, Latents
from .linalg import FunctionPencil, basis_chunk
from .sampling import Compute, Sampling, as_compute, as_sampling

SPACES = ("w", "wplus", "z", "s")
BIGGAN_SPACES = ("z", "embed", "cond")
RESIZE_MODES = ("nearest", "area")
CHANNEL_MODES = ("rgb", "sum", "mean")


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """How images become Jacobian rows (static; hashable).

    Attributes:
      resize: target side length, or None for the full resolution. Must divide the image size.
      mode: ``"nearest"`` | ``"area"``.
      channels: ``"rgb"`` | ``"sum"`` | ``"mean"`` (default ``"rgb"``; the command line's
        ``--channels`` defaults to ``"sum"``, three times smaller, as ReSeFa does).

    Raises:
      ValueError: an unknown ``mode`` or ``channels``, or a ``resize`` that is not a positive
        integer (a ``resize`` that does not fit the generator is refused where it is used).
    """

    resize: int | None = None
    mode: str = "nearest"
    channels: str = "rgb"

    def __post_init__(self):
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {self.mode!r}")
        if self.channels not in CHANNEL_MODES:
            raise ValueError(f"channels must be one of {CHANNEL_MODES}, got {self.channels!r}")
        if self.resize is not None and (int(self.resize) != self.resize or self.resize < 1):
            raise ValueError(f"resize must be a positive integer or None, got {self.resize!r}")

    def out_shape(self, resolution: int, img_channels: int) -> tuple[int, int, int]:
        """(H', W', C') of the rows for a ``resolution``-pixel image."""
        size = self._size(resolution)
        return size, size, img_channels if self.channels == "rgb" else 1

    def _size(self, resolution: int) -> int:
        if self.resize is None or self.resize >= resolution:
            if self.resize is not None and self.resize > resolution:
                raise ValueError(f"resize={self.resize} is larger than the image ({resolution} px)")
            return resolution
        if resolution % self.resize:
            raise ValueError(f"resize={self.resize} must divide the image size {resolution}")
        return int(self.resize)

    def apply(self, img: jax.Array) -> jax.Array:
        """img: [..., H, W, C] -> [..., H', W', C']."""
        h = img.shape[-3]
        size = self._size(h)
        if size != h:
            s = h // size
            if self.mode == "nearest":
                img = img[..., ::s, ::s, :]
            else:
                img = img.reshape(img.shape[:-3] + (size, s, size, s, img.shape[-1]))
                img = img.mean(axis=(-4, -2))
        if self.channels == "sum":
            img = img.sum(axis=-1, keepdims=True)
        elif self.channels == "mean":
            img = img.mean(axis=-1, keepdims=True)
        return img


def as_output(output: OutputSpec | None, name: str = "output") -> OutputSpec:
    """``output``, or ``OutputSpec()`` for None; TypeError naming ``name`` for anything else."""
    if output is None:
        return OutputSpec()
    if not isinstance(output, OutputSpec):
        raise TypeError(f"{name} must be a jaxedit.OutputSpec, got {type(output).__name__}")
    return output


def is_biggan(gen) -> bool:
    """Whether ``gen`` is a BigGAN-deep generator: its Jacobians run through BigGAN's own
    ``cond`` / ``synthesis_from_cond`` (family internals, not the generator protocol)."""
    from .models.biggan import BigGANGenerator

    return isinstance(gen, BigGANGenerator)


def latent_dim(gen, space: str) -> int:
    """D, the number of latent coordinates for ``space`` (the generator protocol's
    ``latent_dim``)."""
    return gen.latent_dim(space)


@dataclasses.dataclass(frozen=True)
class _Render:
    """Static options of the per-sample image function (hashable, a jit static argument)."""

    space: str
    out: OutputSpec
    noise_mode: str
    precision: Any
    truncation_psi: float
    truncation_cutoff: int | None


def render_rows(gen, opts: _Render, base: dict, x: jax.Array) -> jax.Array:
    """One sample: latent coordinates x [D] around ``base`` -> rows [H', W', C']."""
    if is_biggan(gen):
        if opts.space == "z":
            cond = jnp.concatenate([x, base["cond"][gen.z_dim :]])
        elif opts.space == "embed":
            cond = base["cond"] + jnp.concatenate([jnp.zeros_like(x), x])
        else:
            cond = base["cond"] + x
        img = gen._synthesis(
            cond[None], truncation=opts.truncation_psi, precision=opts.precision, jit=False
        )
        return opts.out.apply(img[0])
    if opts.space == "z":
        c = base.get("c")  # one sample's class vector [c_dim] (or absent)
        ws = gen.mapping(
            x[None],
            None if c is None else c[None],
            opts.truncation_psi,
            opts.truncation_cutoff,
            dtype=x.dtype,
            precision=opts.precision,
            jit=False,
        )
        img = gen.synthesis(
            ws, noise_mode=opts.noise_mode, dtype=x.dtype, precision=opts.precision, jit=False
        )
    elif opts.space == "s":
        styles, off = {}, 0
        for name in gen.layer_names:
            s = base["styles"][name]
            styles[name] = (s + x[off : off + s.shape[0]])[None]
            off += s.shape[0]
        img = gen.synthesis(
            styles=styles,
            noise_mode=opts.noise_mode,
            dtype=x.dtype,
            precision=opts.precision,
            jit=False,
        )
    else:
        ws = base["ws"]
        delta = x[None, :] if opts.space == "w" else x.reshape(ws.shape)
        img = gen.synthesis(
            (ws + delta)[None],
            noise_mode=opts.noise_mode,
            dtype=x.dtype,
            precision=opts.precision,
            jit=False,
        )
    return opts.out.apply(img[0])


def prepare_latents(
    gen, latents, space: str, c=None, compute: Compute | None = None
) -> tuple[dict, jax.Array]:
    """Batched linearization points (checks the latents and class vectors).

    Args:
      gen: the generator.
      latents: as `jacobian` (``[N, ...]``).
      space: the latent space.
      c: class vectors ``[N, classes]`` or None.
      compute: a `jaxedit.Compute`; ``dtype`` and ``precision`` are read (None: ``Compute()``).

    Returns:
      ``(base pytree with leading N, x0 [N, D])``.
    """
    compute = as_compute(compute)
    dtype, precision = compute.dtype, compute.precision
    dt = jnp.dtype(dtype) if dtype is not None else _ops.default_float_dtype()
    check_finite("latents", latents)
    check_finite("c", c)
    lat = jnp.asarray(latents, dt)
    if is_biggan(gen):
        if c is None:
            raise ValueError(
                f"BigGAN needs class vectors: pass sampling=jaxedit.Sampling(c=...) of shape "
                f"[N, {gen.num_classes}]"
            )
        cond = gen.cond(lat, c, dtype=dt, precision=precision)
        x0 = lat if space == "z" else jnp.zeros((lat.shape[0], latent_dim(gen, space)), dt)
        return {"cond": cond}, x0
    if space == "z":
        if lat.ndim != 2 or lat.shape[1] != gen.z_dim:
            raise ValueError(f"space='z' needs z of shape [N, {gen.z_dim}], got {tuple(lat.shape)}")
        base = {}
        if gen.c_dim > 0:
            if c is None:
                raise ValueError(
                    f"this generator is conditional: pass sampling=jaxedit.Sampling(c=...) of "
                    f"shape [N, {gen.c_dim}]"
                )
            base["c"] = jnp.asarray(c, dt)
        return base, lat
    if lat.ndim == 2 and lat.shape[1] == gen.w_dim:
        lat = jnp.broadcast_to(lat[:, None], (lat.shape[0], gen.num_ws, gen.w_dim))
    if lat.ndim != 3 or lat.shape[1:] != (gen.num_ws, gen.w_dim):
        raise ValueError(
            f"space={space!r} needs ws of shape [N, {gen.num_ws}, {gen.w_dim}] "
            f"(or w [N, {gen.w_dim}]), got {tuple(lat.shape)}"
        )
    n = lat.shape[0]
    d = latent_dim(gen, space)
    if space == "s":
        styles = gen.styles(lat, dtype=dt, precision=precision)
        return {"styles": styles}, jnp.zeros((n, d), dt)
    return {"ws": lat}, jnp.zeros((n, d), dt)


def sample_jacobian(gen, opts: _Render, chunk: int, base, x0):
    """Unbatched core: ``[H', W', C', D]`` for one linearization point (``base`` and
    ``x0 [D]`` of one sample of `prepare_latents`; forward mode, ``chunk`` tangents at a time)."""
    _, f_lin = jax.linearize(lambda x: render_rows(gen, opts, base, x), x0)
    d = x0.shape[0]
    n_chunks = -(-d // chunk)
    cols = jax.lax.map(
        lambda i: jax.vmap(f_lin)(basis_chunk(i, chunk, d, x0.dtype)), jnp.arange(n_chunks)
    )  # [n_chunks, chunk, H', W', C']
    cols = cols.reshape((n_chunks * chunk,) + cols.shape[2:])[:d]
    return jnp.moveaxis(cols, 0, -1)


@functools.partial(jax.jit, static_argnames=("graphdef", "opts", "chunk"))
def _jacobian_batch(graphdef, state, base, x0, *, opts: _Render, chunk: int):
    gen = nnx.merge(graphdef, state)
    return jax.vmap(lambda b, x: sample_jacobian(gen, opts, chunk, b, x))(base, x0)


def _sample_sharding(latents) -> NamedSharding | None:
    """The sharding of ``latents`` if its first (sample) axis is split over several devices."""
    sh = getattr(latents, "sharding", None)
    if (
        isinstance(sh, NamedSharding)
        and len(sh.device_set) > 1
        and len(sh.spec) > 0
        and sh.spec[0] is not None
    ):
        return sh
    return None


@functools.lru_cache(maxsize=16)
def _jacobian_sharded_fn(graphdef, opts: _Render, chunk: int, batch: int, mesh, spec):
    def local(state, base, x0):  # this device's samples, ``batch`` at a time
        gen = nnx.merge(graphdef, state)
        return jax.lax.map(
            lambda bx: sample_jacobian(gen, opts, chunk, *bx), (base, x0), batch_size=batch
        )

    return jax.jit(
        jax.shard_map(local, mesh=mesh, in_specs=(P(), spec, spec), out_specs=spec, check_vma=False)
    )


def _jacobian_sharded(graphdef, state, base, x0, sharding: NamedSharding, opts, chunk, batch):
    """J of sample-sharded linearization points, sharded like them over samples."""
    mesh, spec = sharding.mesh, P(sharding.spec[0])
    base, x0 = jax.device_put((base, x0), NamedSharding(mesh, spec))
    state = jax.device_put(state, NamedSharding(mesh, P()))
    return _jacobian_sharded_fn(graphdef, opts, chunk, batch, mesh, spec)(state, base, x0)


def _slice(tree, lo: int, hi: int):
    return jax.tree.map(lambda a: a[lo:hi], tree)


def render_options(
    gen,
    space: str,
    output: OutputSpec | None = None,
    sampling: Sampling | None = None,
    compute: Compute | None = None,
) -> _Render:
    """The static, hashable options of `render_rows` (validated as `jacobian` validates them).

    Args:
      gen: the generator.
      space: the latent space.
      output: a `jaxedit.OutputSpec` (None: ``OutputSpec()``).
      sampling: a `jaxedit.Sampling`; ``truncation_psi``, ``truncation_cutoff`` and
        ``noise_mode`` are read (None: ``Sampling()``).
      compute: a `jaxedit.Compute`; ``precision`` is read (None: ``Compute()``).

    Returns:
      The options (a jit static argument).

    Raises:
      TypeError: an option object of the wrong type.
      ValueError: an unknown space, a resize that does not fit the generator, a BigGAN
        truncation outside (0, 1], or ``sampling.noise_mode="random"``.
    """
    out = as_output(output)
    sampling = as_sampling(sampling)
    compute = as_compute(compute)
    truncation_psi = sampling.truncation_psi
    if is_biggan(gen):
        latent_dim(gen, space)
        from .models.biggan import stat_weights

        stat_weights(truncation_psi, gen.config.n_stats)
    elif space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    else:
        finite_scalar("truncation_psi", truncation_psi)
    out.out_shape(gen.resolution, gen.img_channels)  # validates resize against the generator
    noise_mode = sampling.noise_mode
    if noise_mode not in ("const", "none"):
        raise ValueError(
            f"sampling.noise_mode must be 'const' or 'none' for a Jacobian, got {noise_mode!r}"
        )
    _ops.as_precision(compute.precision)
    return _Render(
        space, out, noise_mode, compute.precision, float(truncation_psi), sampling.truncation_cutoff
    )


def jacobian(
    gen,
    latents: Latents,
    *,
    space: str = "w",
    output: OutputSpec | None = None,
    sampling: Sampling | None = None,
    compute: Compute | None = None,
    progress: bool | Callable = False,
) -> JacobianArray:
    """Jacobian of the generator's output rows with respect to a latent space, in forward mode.

    Args:
      gen: a :class:`~jaxedit.StyleGAN2Generator` or :class:`~jaxedit.BigGANGenerator`.
      latents: ws ``[N, num_ws, w_dim]`` (or w ``[N, w_dim]``, broadcast to every slot) for spaces
        ``"w"``, ``"wplus"``, ``"s"``; z ``[N, z_dim]`` for ``"z"`` and for every BigGAN space.
      space: ``"w"`` | ``"wplus"`` | ``"z"`` | ``"s"``; BigGAN: ``"z"`` | ``"embed"`` | ``"cond"``.
      output: a `jaxedit.OutputSpec`: ``resize`` (output side length, None = full resolution),
        ``mode`` (``"nearest"`` | ``"area"``) and ``channels`` (``"rgb"`` | ``"sum"`` |
        ``"mean"``). None: ``OutputSpec()``.
      sampling: a `jaxedit.Sampling` (None: ``Sampling()``): ``c``, class labels ``[N, c_dim]``
        (space ``"z"`` of a conditional StyleGAN2) or BigGAN class vectors ``[N, num_classes]``
        (required); ``truncation_psi`` / ``truncation_cutoff``, the mapping truncation (space
        ``"z"`` only; for BigGAN the truncation in (0, 1], static); ``noise_mode``
        ``"const"`` (reference) or ``"none"``.
      compute: a `jaxedit.Compute` (None: ``Compute()``): ``dtype`` (float64 under x64) and
        ``precision`` (matmul/conv), ``chunk`` (tangents per ``vmap``; bounds memory: about
        ``chunk`` generator activations) and ``batch_size`` (samples per jitted call,
        ``vmap``-ed together).
      progress: True for a progress bar on stderr, or a callable ``(done, total)``.

    Latents sharded over samples (a ``jax.Array`` with a ``NamedSharding`` whose first axis is
    split over several devices) are computed where they live (``shard_map``,
    ``compute.batch_size`` samples per device at a time) and J comes back sharded the same way
    over samples.

    Returns:
      J ``[N, H', W', C', D]``, rows in NHWC order, D as :func:`latent_dim`.

    Raises:
      TypeError: ``output`` / ``sampling`` / ``compute`` is not a `jaxedit.OutputSpec` /
        `jaxedit.Sampling` / `jaxedit.Compute`.
      ValueError: bad latents or class vectors, an unknown space, a resize that does not fit,
        or ``sampling.noise_mode="random"``.
    """
    sampling = as_sampling(sampling)
    compute = as_compute(compute)
    opts = render_options(gen, space, output, sampling, compute)
    base, x0 = prepare_latents(gen, latents, space, sampling.c, compute)
    chunk = int(min(compute.chunk, x0.shape[1]))
    batch = compute.batch_size_or(1)
    graphdef, state = nnx.split(gen)
    n = x0.shape[0]
    show = _io.progress_printer("jacobian") if progress is True else (progress or None)
    sharding = _sample_sharding(latents)
    if sharding is not None:
        out = _jacobian_sharded(graphdef, state, base, x0, sharding, opts, chunk, batch)
        if show:
            jax.block_until_ready(out)
            show(n, n)
        return out
    parts = []
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        parts.append(
            _jacobian_batch(
                graphdef, state, _slice(base, lo, hi), x0[lo:hi], opts=opts, chunk=chunk
            )
        )
        if show:
            jax.block_until_ready(parts[-1])
            show(hi, n)
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts)


class JacobianOperator:
    """Matrix-free Jacobian of one sample: products with J ``[rows, D]`` without forming it.

    ``rows = H' * W' * C'`` in NHWC order (as :func:`jacobian`'s reshaped output). The generator is
    linearized inside each jitted call; the linearization is not kept between calls.

    Use :meth:`pure` to get ``(mv, rmv)`` closures for use *inside* one jitted function (what the
    matrix-free ReSeFa solver does), or the convenience methods :meth:`mv` / :meth:`rmv` /
    :meth:`gram_mv` for one-off products. Blocks of vectors are processed ``chunk`` at a time
    (``vmap`` inside ``lax.map``), so memory stays bounded for any block size.
    """

    def __init__(
        self,
        gen,
        latent,
        *,
        space: str = "w",
        output: OutputSpec | None = None,
        sampling: Sampling | None = None,
        compute: Compute | None = None,
    ):
        """Linearization point and options of the operator.

        Args:
          gen: the generator (as `jacobian`).
          latent: one sample's latent: ws ``[num_ws, w_dim]`` or w ``[w_dim]`` (spaces w /
            wplus / s), z ``[z_dim]`` (space z and BigGAN).
          space: as `jacobian`.
          output: a `jaxedit.OutputSpec` (None: ``OutputSpec()``).
          sampling: a `jaxedit.Sampling` (None: ``Sampling()``); its ``c`` is this sample's
            class vector ``[classes]``.
          compute: a `jaxedit.Compute` (None: ``Compute()``): ``dtype``, ``precision`` and
            ``chunk`` (vectors per ``vmap``); ``batch_size`` is not used.

        Raises:
          TypeError: an option object of the wrong type.
          ValueError: as `jacobian`.
        """
        sampling = as_sampling(sampling)
        compute = as_compute(compute)
        self.chunk = compute.chunk
        self.opts = render_options(gen, space, output, sampling, compute)
        lat = jnp.asarray(latent)
        c = sampling.c
        base, x0 = prepare_latents(
            gen, lat[None], space, None if c is None else jnp.asarray(c)[None], compute
        )
        self.base = jax.tree.map(lambda a: a[0], base)
        self.x0 = x0[0]
        self.graphdef, self.state = nnx.split(gen)
        self.out_shape = self.opts.out.out_shape(gen.resolution, gen.img_channels)
        self.dim = int(self.x0.shape[0])
        self.rows = int(np.prod(self.out_shape))
        self.dtype = self.x0.dtype

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, D) of the implicit matrix."""
        return self.rows, self.dim

    # Operators of the same generator structure and options share compiled programs: they are
    # static arguments of jitted functions, and only these static parts enter hash / equality
    # (the arrays travel separately through :meth:`arrays`).
    def _static_key(self):
        return (self.graphdef, self.opts, self.dim, self.out_shape, str(self.dtype), self.chunk)

    def __hash__(self):
        return hash(self._static_key())

    def __eq__(self, other):
        return isinstance(other, JacobianOperator) and self._static_key() == other._static_key()

    def arrays(self) -> dict:
        """The traced inputs (pass them through ``jax.jit`` and into :meth:`pure`)."""
        return {"state": self.state, "base": self.base, "x0": self.x0}

    def pure(self, arrays: dict) -> tuple[Callable, Callable]:
        """Inside a trace: ``(mv, rmv)`` with mv: V [m, D] -> [m, rows], rmv: U [m, rows] -> [m, D]."""
        gen = nnx.merge(self.graphdef, arrays["state"])
        opts, base = self.opts, arrays["base"]

        def f(x):
            return render_rows(gen, opts, base, x).reshape(-1)

        _, f_lin = jax.linearize(f, arrays["x0"])
        f_t = jax.linear_transpose(f_lin, arrays["x0"])
        return (_chunked(f_lin, self.chunk), _chunked(lambda u: f_t(u)[0], self.chunk))

    def pencil(self, wf, wb) -> FunctionPencil:
        """The pencil ``(Jᵀ diag(wf) J, Jᵀ diag(wb) J)`` of this operator, for
        `jaxedit.linalg.pencil_eigh` (matrix-free: JVPs and VJPs of the generator).

        Args:
          wf: ``[rows]`` weights of A (e.g. region rows / n_f).
          wb: ``[rows]`` weights of B (e.g. background rows / n_b).

        Returns:
          `jaxedit.linalg.FunctionPencil` (operators of one structure share compiled solvers).
        """
        return FunctionPencil(
            _Products(self), self.arrays(), wf, wb, dim=self.dim, dtype=self.dtype, chunk=self.chunk
        )

    def mv(self, v) -> jax.Array:
        """J v: v [D] or [m, D] -> [rows] or [m, rows]."""
        v = jnp.asarray(v, self.dtype)
        out = _op_call(self, "mv", self.arrays(), jnp.atleast_2d(v))
        return out[0] if v.ndim == 1 else out

    def rmv(self, u) -> jax.Array:
        """Jᵀ u: u [rows] or [m, rows] -> [D] or [m, D]."""
        u = jnp.asarray(u, self.dtype)
        out = _op_call(self, "rmv", self.arrays(), jnp.atleast_2d(u))
        return out[0] if u.ndim == 1 else out

    def gram_mv(self, v, weights) -> jax.Array:
        """Jᵀ diag(weights) J v, weights [rows] (e.g. a region mask / n_rows): v [m, D] -> [m, D]."""
        v = jnp.asarray(v, self.dtype)
        out = _op_call(
            self,
            "gram",
            self.arrays(),
            jnp.atleast_2d(v),
            jnp.asarray(weights, self.dtype).reshape(-1),
        )
        return out[0] if v.ndim == 1 else out


@dataclasses.dataclass(frozen=True)
class _Products:
    """``op.pure`` as a static argument that hashes and compares as the operator does (a bound
    method compares its ``__self__`` by identity, which would recompile for every operator)."""

    op: JacobianOperator

    def __call__(self, arrays: dict) -> tuple[Callable, Callable]:
        return self.op.pure(arrays)


def _chunked(fn: Callable, chunk: int) -> Callable:
    """``X [m, ...] -> stack([fn(x) for x in X])``, vmapped ``chunk`` rows at a time."""

    def apply(x):
        m = x.shape[0]
        if m <= chunk:
            return jax.vmap(fn)(x)
        n = -(-m // chunk)
        xp = jnp.concatenate([x, jnp.zeros((n * chunk - m,) + x.shape[1:], x.dtype)])
        out = jax.lax.map(jax.vmap(fn), xp.reshape((n, chunk) + x.shape[1:]))
        return out.reshape((n * chunk,) + out.shape[2:])[:m]

    return apply


@functools.partial(jax.jit, static_argnames=("op", "kind"))
def _op_call(op: JacobianOperator, kind: str, arrays, v, weights=None):
    mv, rmv = op.pure(arrays)
    if kind == "mv":
        return mv(v)
    if kind == "rmv":
        return rmv(v)
    assert weights is not None  # kind "gram" always passes the weights
    return rmv(mv(v) * weights[None, :])


def compiled_programs() -> dict[str, int]:
    """How many programs the jitted Jacobian kernels have compiled so far (a recompile guard).

    Returns:
      ``{"jacobian": ..., "operator": ...}``: programs of `jacobian`'s batch kernel and of
      `JacobianOperator`'s products (one per shape and static option set).
    """
    jitted: dict[str, Any] = {"jacobian": _jacobian_batch, "operator": _op_call}
    return {name: int(fn._cache_size()) for name, fn in jitted.items()}


__all__ = [
    "CHANNEL_MODES",
    "JacobianOperator",
    "OutputSpec",
    "RESIZE_MODES",
    "SPACES",
    "as_output",
    "compiled_programs",
    "is_biggan",
    "jacobian",
    "latent_dim",
    "prepare_latents",
    "render_options",
    "render_rows",
    "sample_jacobian",
]
