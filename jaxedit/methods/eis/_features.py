"""The features each StyleGAN2 style acts on: where every style layer's modulated conv reads its
input (`input_source`, `input_resolution`), those inputs (`layer_inputs`) and the batched
feature pass that the catalog and the contributions share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from ..._typing import LayerInput, WLatents
from ...sampling import Compute, Sampling
from ._common import _as_ws, _check_gen, _options


def _first_block(gen):
    return getattr(gen.synthesis_net, gen.synthesis_net.block_names[0])


def input_source(gen, layer: str) -> str:
    """Where style layer ``layer``'s modulated conv reads its input: a conv layer name whose
    *output* it is, or ``"const"`` (``b4.conv1``)."""
    names = list(gen.layer_names)
    if layer not in names:
        raise ValueError(f"unknown style layer {layer!r}; choose one of {names}")
    block, kind = layer.split(".")
    if block == gen.synthesis_net.block_names[0] and kind == "conv1":
        return "const"
    if kind == "conv0":
        blocks = list(gen.synthesis_net.block_names)
        return f"{blocks[blocks.index(block) - 1]}.conv1"
    if kind == "conv1":
        return f"{block}.conv0"
    return f"{block}.conv1"  # torgb


def input_resolution(gen, layer: str) -> int:
    """Side of the feature map that style layer ``layer`` modulates (R/2 for ``bR.conv0``)."""
    src = input_source(gen, layer)
    if src == "const":
        return int(_first_block(gen).resolution)
    return int(src.split(".")[0][1:])


def _inputs_from_features(gen, feats: Mapping[str, jax.Array], layers, n: int, dt):
    out = {}
    for name in layers:
        src = input_source(gen, name)
        if src == "const":
            const = jnp.asarray(_first_block(gen).const[...], dt)
            out[name] = jnp.broadcast_to(const[None], (n,) + const.shape)
        else:
            out[name] = feats[src]
    return out


def layer_inputs(
    gen,
    latents: WLatents,
    *,
    layers: Sequence[str] | None = None,
    sampling=None,
    compute=None,
    key=None,
    jit: bool = True,
) -> dict[str, LayerInput]:
    """The input feature map of every style layer's modulated conv (what its style scales).

    Args:
      gen: a StyleGAN2 generator.
      latents: ws ``[N, num_ws, w_dim]`` or w ``[N, w_dim]``.
      layers: style layers (default ``gen.layer_names``).
      sampling: a `jaxedit.Sampling`; only ``noise_mode`` is read (the latents are used as
        given). None: ``Sampling()``.
      compute: a `jaxedit.Compute`; ``dtype`` and ``precision`` are read (one generator call
        for all N samples). None: the EiS default.
      key: PRNG key for ``noise_mode="random"``.
      jit: jit the generator pass.

    Returns:
      ``{layer: [N, R, R, C_in]}`` (R = `input_resolution`); derived from one
      ``gen.features`` pass plus the learned constant.

    Raises:
      TypeError: ``sampling`` / ``compute`` of the wrong type.
      ValueError: not a StyleGAN2 generator, bad latents, or an unknown layer.
    """
    _check_gen(gen)
    sampling, compute = _options(sampling, compute, "layer_inputs", has_key=True)
    ws = _as_ws(gen, latents, dtype=compute.dtype)
    layers = tuple(gen.layer_names if layers is None else layers)
    _, feats = gen.features(
        ws,
        noise_mode=sampling.noise_mode,
        key=key,
        dtype=compute.dtype,
        precision=compute.precision,
        jit=jit,
    )
    return _inputs_from_features(gen, feats, layers, ws.shape[0], next(iter(feats.values())).dtype)


def _feature_batches(gen, ws: jax.Array, sampling: Sampling, compute: Compute):
    """``gen.features`` over batches of ``compute.batch_size`` samples (noise, dtype and
    precision from ``sampling`` / ``compute``); the last batch is padded (with its last sample)
    to the same size so every call reuses one compilation. Yields ``(lo, hi, feats)`` where only
    the first ``hi - lo`` rows of ``feats`` are real."""
    n = ws.shape[0]
    b = min(compute.batch_size_or(8), n)
    for lo in range(0, n, b):
        hi = min(n, lo + b)
        x = ws[lo:hi]
        if hi - lo < b:
            x = jnp.concatenate([x, jnp.broadcast_to(x[-1:], (b - (hi - lo),) + x.shape[1:])])
        _, feats = gen.features(
            x, noise_mode=sampling.noise_mode, dtype=compute.dtype, precision=compute.precision
        )
        yield lo, hi, feats
