"""The embedded default generator: the StyleGAN2 trained on the toy faces, shipped in the package.

`default_generator` loads ``jaxedit/toyfaces/weights`` (a `jaxedit.save_generator`
directory; nothing is downloaded) - a 64 px StyleGAN2 with ``G(z) ~ toyfaces.render(
toyfaces.factors_from_z(z))``, see `jaxedit.toyfaces`. `random_generator` is the old
untrained builder (weights a pure function of a seed), for code that needs an arbitrary
architecture.
"""

from __future__ import annotations

import os
from typing import cast

import jax
import jax.numpy as jnp
from flax import nnx

from ..errors import CheckpointError
from ..models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
RANDOM_SEED = 2024


def default_generator() -> StyleGAN2Generator:
    """The trained toy-face StyleGAN2 (64 px, z_dim = ``toyfaces.Z_DIM``, c_dim = 0, no noise
    inputs), loaded from the package's shipped weights. Every call returns a fresh module."""
    from ..checkpoint import load_generator

    if not os.path.isdir(WEIGHTS_DIR):
        raise CheckpointError(
            f"the shipped toy-face weights are missing ({WEIGHTS_DIR}); "
            f"reinstall jaxedit or run `python -m jaxedit.toyfaces export`"
        )
    gen = cast(StyleGAN2Generator, load_generator(WEIGHTS_DIR))  # the shipped StyleGAN2
    setattr(gen, "region_set", "toyfaces")  # noqa: B010 (pyright: not a declared attribute)
    return gen


def random_config() -> StyleGAN2Config:
    """64px, z = w = 64, 64 channels at 4..32 and 32 at 64, 4 mapping layers, skip architecture."""
    return StyleGAN2Config.create(
        {4: 64, 8: 64, 16: 64, 32: 64, 64: 32},
        z_dim=64,
        w_dim=64,
        c_dim=0,
        img_resolution=64,
        mapping_layers=4,
    )


def random_generator(seed: int = RANDOM_SEED) -> StyleGAN2Generator:
    """An untrained StyleGAN2 (`random_config`) whose weights are a pure function of
    ``seed``: noise strengths and biases are set non-zero so that every parameter matters, ToRGB
    weights are scaled so images are not saturated, and ``w_avg`` is the mean of 4096 mapped
    latents."""
    gen = StyleGAN2Generator(random_config(), rngs=nnx.Rngs(seed))
    key = jax.random.key(seed + 1)
    graphdef, state = nnx.split(gen)
    for path, var in nnx.to_flat_state(state):
        name = path[-1]
        key, sub = jax.random.split(key)
        if name == "noise_strength":
            var.set_value(jnp.full(var.shape, 0.1))
        elif name == "bias" and path[-2] != "affine":
            var.set_value(0.1 * jax.random.normal(sub, var.shape))
        elif name == "weight" and path[-2] == "torgb":
            var.set_value(var.get_value() * 0.15)  # keep the untrained image roughly in [-1, 1]
    gen = nnx.merge(graphdef, state)
    gen.set_w_avg(gen.estimate_w_avg(jax.random.key(seed + 2), 4096))
    return gen
