"""Split a BigGAN-deep forward pass at a named layer and resume it (behind
``BigGANGenerator.features_at`` / ``resume_at``).

The layers are those of the reference's ``generator.layers`` list (pytorch-pretrained-biggan,
which PandA's genforce-style port indexes): ``block0 .. block{L-1}`` with ``attention`` inserted
before block ``attention_layer_position``. The features "at" a layer are that layer's output,
NHWC ``[N, H, W, C]``; resuming runs the remaining layers and the output head
(BN, ReLU, conv, tanh) with the same conditioning vector, so a resume of the unchanged features
equals the full forward pass.

Pure functions of the generator's parameters: ``nnx.split`` once per call, the state passed to
one jitted program per (graph, layer span) -- no parameters are closed over.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from .. import _ops
from .._ops import Precision
from ._base import layer_position


def layer_names(gen) -> tuple[str, ...]:
    """Names of ``generator.layers`` in order: ``block0``, ..., ``attention``, ...
    (attention before block ``attention_layer_position``)."""
    cfg = gen.config
    names = []
    for i in range(len(cfg.layers)):
        if i == cfg.attention_layer_position:
            names.append("attention")
        names.append(f"block{i}")
    return tuple(names)


def resolve(gen, layer) -> int:
    """A layer name or the reference's index L (the output of layers 0..L-1) -> the position of
    that layer in `layer_names`."""
    return layer_position(layer, layer_names(gen), "BigGAN")


def _apply(gen, j: int, x, cond, truncation: float, precision):
    """Layer j of `layer_names` on x [N, H, W, C]."""
    name = layer_names(gen)[j]
    if name == "attention":
        return gen.attention(x, precision)
    return getattr(gen, name)(x, cond, truncation, precision)


@functools.partial(
    jax.jit, static_argnums=(0,), static_argnames=("stop", "truncation", "precision")
)
def _head(graphdef, state, cond, *, stop, truncation, precision):
    """cond [N, 2·z_dim] -> the output of layers 0..stop."""
    gen = nnx.merge(graphdef, state)
    n = cond.shape[0]
    x = gen.gen_z(cond, precision).reshape(n, 4, 4, 16 * gen.config.channel_width)
    for j in range(stop + 1):
        x = _apply(gen, j, x, cond, truncation, precision)
    return x


@functools.partial(
    jax.jit, static_argnums=(0,), static_argnames=("start", "truncation", "precision")
)
def _tail(graphdef, state, x, cond, *, start, truncation, precision):
    """x = the output of layer ``start - 1`` -> images [N, H, W, 3]."""
    gen = nnx.merge(graphdef, state)
    for j in range(start, len(layer_names(gen))):
        x = _apply(gen, j, x, cond, truncation, precision)
    x = jax.nn.relu(gen.bn(x, truncation))
    return jnp.tanh(gen.conv_to_rgb(x, precision, out_channels=3))


def split(
    gen,
    z,
    class_vector,
    layer,
    truncation: float = 1.0,
    *,
    dtype=None,
    precision: Precision = "highest",
):
    """-> (features [N, H, W, C] at ``layer``, cond [N, 2·z_dim])."""
    cond = gen.cond(z, class_vector, dtype=dtype, precision=precision)
    graphdef, state = nnx.split(gen)
    x = _head(
        graphdef,
        state,
        cond,
        stop=resolve(gen, layer),
        truncation=float(truncation),
        precision=_ops.as_precision(precision),
    )
    return x, cond


def resume(gen, x, cond, layer, truncation: float = 1.0, *, precision: Precision = "highest"):
    """Features at ``layer`` (as `split` returns them) -> images [N, H, W, 3]."""
    graphdef, state = nnx.split(gen)
    return _tail(
        graphdef,
        state,
        jnp.asarray(x, cond.dtype),
        cond,
        start=resolve(gen, layer) + 1,
        truncation=float(truncation),
        precision=_ops.as_precision(precision),
    )
