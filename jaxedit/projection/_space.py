"""The latent space a projection optimizes, for any generator of the protocol.

Two kinds, told apart by the generator's `spaces` (never by its family string):

* ``"style"``: generators with W spaces (``"w"`` and ``"wplus"`` in ``gen.spaces``: StyleGAN2,
  later StyleGAN3). Latents are w ``[w_dim]`` (broadcast to every W+ slot) or W+
  ``[num_ws, w_dim]``; images come from ``gen.synthesis(ws, noise_mode=...)``. The start and
  noise scale are NVIDIA's: the mean ``w_avg`` of ``mapping(z)`` over 10,000 z drawn with
  ``RandomState(123)`` and ``w_std = sqrt(sum ||w - w_avg||^2 / n)``.
* ``"cond"``: class-conditional generators with a ``"cond"`` space (BigGAN-deep). Latents are
  z ``[z_dim]`` with the class embedding of the given class vectors fixed, or the whole
  conditioning vector ``[z, embed]`` ``[2 z_dim]`` (the class embedding optimized too, starting
  from the given class's or from the mean class embedding). Images come from
  ``gen.synthesis_from_cond(cond, truncation)``; the start is the mean of truncated-normal z
  samples (scaled by the truncation) and the scale their spread, as for W.

Everything here runs on the host except `render` and `sample_latents`, which are pure and run
inside the jitted steps of `jaxedit.project` / `jaxedit.pivotal_tune`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._ops import Precision

#: NVIDIA's projector: ``w_avg`` and ``w_std`` from this many mapped z (``RandomState(123)``).
STAT_SAMPLES = 10_000
STAT_SEED = 123


@dataclasses.dataclass(frozen=True)
class Space:
    """Static description of the optimized latent (hashable: a jit static argument).

    Attributes:
      kind: ``"style"`` or ``"cond"`` (see the module text).
      space: ``"w"``, ``"wplus"`` (style) or ``"z"``, ``"cond"`` (cond).
      shape: one sample's latent shape.
      num_ws: W+ slots (style; 0 otherwise).
      z_dim: z length (cond; 0 otherwise).
      noise_mode: ``"const"`` or ``"none"`` (style).
      truncation: BigGAN's static truncation (cond; 1.0 otherwise).
      precision: matmul / conv precision.
      offset_scale: ``"wplus"``: W+ is optimized as one w plus per-slot offsets,
        ``ws = w + offset_scale * offsets`` (see `compose`); 0 elsewhere.
    """

    kind: str
    space: str
    shape: tuple[int, ...]
    num_ws: int = 0
    z_dim: int = 0
    noise_mode: str = "const"
    truncation: float = 1.0
    precision: Precision = "highest"
    offset_scale: float = 0.0

    @property
    def base_shape(self) -> tuple[int, ...]:
        """The shape of one sample's shared part: w ``[w_dim]`` for both W spaces."""
        return self.shape[1:] if self.space == "wplus" else self.shape


def kind_of(gen) -> str:
    """``"style"`` for generators with W spaces, ``"cond"`` for those with a ``"cond"`` space.

    Raises:
      ValueError: neither (a generator the projection does not know how to drive).
    """
    spaces = tuple(gen.spaces)
    if "w" in spaces and "wplus" in spaces:
        return "style"
    if "cond" in spaces and "z" in spaces:
        return "cond"
    raise ValueError(
        f"cannot project into {gen.display_name}: it has neither W spaces ('w', 'wplus') nor a "
        f"conditioning space ('z', 'cond'); its spaces are {spaces}"
    )


def spaces_of(gen) -> tuple[str, ...]:
    """The spaces `jaxedit.project` accepts for ``gen``."""
    return ("w", "wplus") if kind_of(gen) == "style" else ("z", "cond")


def make_space(
    gen,
    space: str | None,
    *,
    noise_mode: str,
    truncation: float,
    precision,
    offset_scale: float = 0.0,
) -> Space:
    """The `Space` of ``gen`` for ``space`` (None: ``"w"`` / ``"z"``).

    Raises:
      ValueError: ``space`` is not one the projection accepts for ``gen``.
    """
    kind = kind_of(gen)
    allowed = spaces_of(gen)
    space = allowed[0] if space is None else space
    if space not in allowed:
        raise ValueError(
            f"space must be one of {allowed} to project into {gen.display_name}, got {space!r}"
        )
    if kind == "style":
        w_dim = gen.latent_dim("w")
        num_ws = gen.latent_dim("wplus") // w_dim
        shape = (w_dim,) if space == "w" else (num_ws, w_dim)
        return Space(
            kind,
            space,
            shape,
            num_ws=num_ws,
            noise_mode=noise_mode,
            precision=precision,
            offset_scale=float(offset_scale) if space == "wplus" else 0.0,
        )
    z_dim = gen.latent_dim("z")
    shape = (z_dim,) if space == "z" else (gen.latent_dim("cond"),)
    return Space(kind, space, shape, z_dim=z_dim, truncation=float(truncation), precision=precision)


# ---- host side: where the optimization starts ------------------------------------------------------
def _style_stats(gen, c, dt) -> tuple[np.ndarray, np.ndarray]:
    """w_avg ``[N or 1, w_dim]`` and w_std ``[N or 1]`` as NVIDIA's projector computes them."""
    z = np.random.RandomState(STAT_SEED).randn(STAT_SAMPLES, gen.latent_dim("z"))
    rows = [None] if c is None else list(np.asarray(c))
    avg, std = [], []
    for ci in rows:
        cc = None if ci is None else np.broadcast_to(ci, (STAT_SAMPLES, ci.shape[0]))
        w = np.asarray(gen.mapping(z, cc, dtype=dt)[:, 0], np.float64)
        a = w.mean(axis=0)
        avg.append(a)
        std.append(np.sqrt(np.sum((w - a) ** 2) / STAT_SAMPLES))
    return np.stack(avg), np.asarray(std)


def _truncnorm(key, shape, truncation: float, dt) -> jax.Array:
    return truncation * jax.random.truncated_normal(key, -2.0, 2.0, shape, dt)


def start_stats(gen, sp: Space, c, n: int, dt) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """The start ``[N, *base_shape]``, the noise scale ``[N]`` and the fixed per-image context
    (cond kind, space ``"z"``: the class embeddings ``[N, z_dim]``; else None)."""
    if sp.kind == "style":
        avg, std = _style_stats(gen, c, dt)
        avg = np.broadcast_to(avg, (n, avg.shape[1]))
        std = np.broadcast_to(std, (n,))
        return jnp.asarray(avg, dt), jnp.asarray(std, dt), None
    z = _truncnorm(jax.random.key(STAT_SEED), (STAT_SAMPLES, sp.z_dim), sp.truncation, dt)
    z_mean = jnp.mean(z, axis=0)
    std = jnp.sqrt(jnp.sum(jnp.square(z - z_mean)) / STAT_SAMPLES)
    if c is None:  # the mean class embedding
        k = gen.class_dim
        emb = gen.embed(jnp.full((1, k), 1.0 / k, dt), dtype=dt, precision=sp.precision)
        emb = jnp.broadcast_to(emb, (n, sp.z_dim))
    else:
        emb = gen.embed(jnp.asarray(c, dt), dtype=dt, precision=sp.precision)
    zs = jnp.broadcast_to(z_mean, (n, sp.z_dim))
    std = jnp.broadcast_to(std, (n,))
    if sp.space == "cond":
        return jnp.concatenate([zs, emb], axis=1), std, None
    return zs, std, emb


def restart_points(
    gen, sp: Space, key, count: int, psi: float, center: jax.Array, c, dt
) -> jax.Array:
    """Starting points ``[N, count, *base_shape]``: the center first, then ``count - 1`` seeded
    samples pulled toward it (``center + psi * (sample - center)``; W: mapped z, cond: truncated
    normal z). The samples depend on ``key`` and the restart index only (not on the image), so an
    image's projection does not depend on its batch."""
    n = center.shape[0]
    if count == 1:
        return center[:, None]
    extra = count - 1
    if sp.kind == "style":
        z = jax.random.normal(key, (extra, gen.latent_dim("z")), dt)
        ws = []
        for i in range(n):
            ci = None if c is None else jnp.broadcast_to(jnp.asarray(c, dt)[i], (extra, c.shape[1]))
            w = gen.mapping(z, ci, dtype=dt, precision=sp.precision)[:, 0]  # [extra, w_dim]
            ws.append(w)
        w = jnp.stack(ws)  # [N, extra, w_dim]
    else:
        z = _truncnorm(key, (extra, sp.z_dim), sp.truncation, dt)
        w = jnp.broadcast_to(z, (n, extra, sp.z_dim))
        if sp.space == "cond":
            w = jnp.concatenate([w, jnp.broadcast_to(center[:, None, sp.z_dim :], w.shape)], -1)
    samples = center[:, None] + psi * (w - center[:, None])
    return jnp.concatenate([center[:, None], samples], axis=1)


# ---- traced: latents -> images ---------------------------------------------------------------------
def compose(sp: Space, base: jax.Array, offsets: jax.Array | None) -> jax.Array:
    """The latents ``[B, *shape]`` from the optimized parameters: ``"wplus"``: ``w[:, None] +
    offset_scale * offsets`` (``offsets`` ``[B, num_ws, w_dim]``); elsewhere ``base`` itself.

    One w shared by the slots plus scaled per-slot offsets: Adam moves every coordinate at
    about the learning rate, so optimizing the ``num_ws * w_dim`` coordinates of W+ directly
    moves the image much more per step than W does; the shared w keeps W's steps, and the
    offsets add the per-slot freedom at ``offset_scale`` of that rate.
    """
    if sp.space != "wplus":
        return base
    ws = jnp.broadcast_to(base[:, None, :], (base.shape[0],) + sp.shape)
    return ws if offsets is None else ws + sp.offset_scale * offsets


def ws_of(sp: Space, lat: jax.Array) -> jax.Array:
    """style: ``[B, *shape]`` -> ws ``[B, num_ws, w_dim]``."""
    if sp.space == "w":
        return jnp.broadcast_to(lat[:, None, :], (lat.shape[0], sp.num_ws, lat.shape[-1]))
    return lat


def render(gen, sp: Space, lat: jax.Array, context: Any = None, noise_mode=None) -> jax.Array:
    """Images ``[B, H, W, C]`` of latents ``[B, *shape]`` (``context``: the fixed class
    embeddings ``[B, z_dim]`` of the cond kind's ``"z"`` space). Pure; runs under a trace."""
    if sp.kind == "style":
        return gen.synthesis(
            ws_of(sp, lat),
            noise_mode=sp.noise_mode if noise_mode is None else noise_mode,
            dtype=lat.dtype,
            precision=sp.precision,
            jit=False,
        )
    cond = lat if sp.space == "cond" else jnp.concatenate([lat, context], axis=1)
    return gen.synthesis_from_cond(
        cond, sp.truncation, dtype=lat.dtype, precision=sp.precision, jit=False
    )


def sample_latents(gen, sp: Space, key, n: int, psi: float, c, dtype) -> jax.Array:
    """``n`` random latents ``[n, *shape]`` of the generator's prior, truncated by ``psi``
    (style: ``w_avg + psi (w - w_avg)`` through the mapping; cond: ``psi``-scaled truncated
    normal z; the ``"cond"`` space keeps the embedding part zero: callers add theirs). Pure."""
    if sp.kind == "style":
        z = jax.random.normal(key, (n, gen.latent_dim("z")), dtype)
        ws = gen.mapping(z, c, truncation_psi=psi, dtype=dtype, precision=sp.precision, jit=False)
        return ws[:, 0] if sp.space == "w" else ws
    z = _truncnorm(key, (n, sp.z_dim), sp.truncation * psi, dtype)
    if sp.space == "cond":
        z = jnp.concatenate([z, jnp.zeros_like(z)], axis=1)
    return z


__all__ = [
    "STAT_SAMPLES",
    "Space",
    "kind_of",
    "make_space",
    "render",
    "restart_points",
    "sample_latents",
    "spaces_of",
    "start_stats",
    "ws_of",
]
