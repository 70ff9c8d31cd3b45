"""The features each style acts on: where every style layer's modulated conv reads its
input (`input_source`, `input_resolution`), those inputs (`layer_inputs`) and the batched
feature pass that the catalog and the contributions share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from ..._typing import LayerInput, WLatents
from ...sampling import Compute, Sampling
from ._common import _as_ws, _check_gen, _crop, _options


def input_source(gen, layer: str) -> str:
    """Where style layer ``layer``'s modulated conv reads its input: a layer name whose
    *output* it is, or ``"const"`` (StyleGAN2's ``b4.conv1``)."""
    _check_gen(gen)
    names = list(gen.modulated_layers)
    if layer not in names:
        raise ValueError(f"unknown style layer {layer!r}; choose one of {names}")
    return gen.style_input(layer)


def input_resolution(gen, layer: str) -> int:
    """Side of the feature map that style layer ``layer`` modulates (R/2 for StyleGAN2's
    ``bR.conv0``), inside the image (StyleGAN3's margins cut off)."""
    src = input_source(gen, layer)
    if src == "const":
        n = 1
        const = gen.style_inputs({}, [layer], n, jnp.float32)[layer]
        return int(const.shape[1])
    return int(gen.feature_shape(src)[0] - 2 * gen.feature_margin(src))


def _inputs_from_features(gen, feats: Mapping[str, jax.Array], layers, n: int, dt):
    """The inputs of ``layers`` from a (margin-cropped) `features` pass."""
    return gen.style_inputs(feats, layers, n, dt)


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
      gen: a StyleGAN2 or StyleGAN3 generator.
      latents: ws ``[N, num_ws, w_dim]`` or w ``[N, w_dim]``.
      layers: style layers (default ``gen.modulated_layers``: every style layer but
        StyleGAN3's input layer).
      sampling: a `jaxedit.Sampling`; only ``noise_mode`` is read (the latents are used as
        given). None: ``Sampling()``.
      compute: a `jaxedit.Compute`; ``dtype`` and ``precision`` are read (one generator call
        for all N samples). None: the EiS default.
      key: PRNG key for ``noise_mode="random"``.
      jit: jit the generator pass.

    Returns:
      ``{layer: [N, R, R, C_in]}`` (R = `input_resolution`; StyleGAN3's margins cut off);
      derived from one ``gen.features`` pass plus StyleGAN2's learned constant.

    Raises:
      TypeError: ``sampling`` / ``compute`` of the wrong type.
      ValueError: not a StyleGAN2 generator, bad latents, or an unknown layer.
    """
    _check_gen(gen)
    sampling, compute = _options(sampling, compute, "layer_inputs", has_key=True)
    ws = _as_ws(gen, latents, dtype=compute.dtype)
    layers = tuple(gen.modulated_layers if layers is None else layers)
    for name in layers:
        input_source(gen, name)
    _, feats = gen.features(
        ws,
        noise_mode=sampling.noise_mode,
        key=key,
        dtype=compute.dtype,
        precision=compute.precision,
        jit=jit,
    )
    feats = _crop(gen, feats)
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
        yield lo, hi, _crop(gen, feats)
