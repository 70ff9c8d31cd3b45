"""The embedded default generator: a small StyleGAN2 built deterministically from a fixed seed.

Nothing is downloaded: the weights are a pure function of ``seed`` (JAX's counter-based PRNG is
the same on every platform), so ``jaxedit demo`` works offline on a fresh machine.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from .models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

DEFAULT_SEED = 2024


def default_config() -> StyleGAN2Config:
    """64px, z = w = 64, 64 channels at 4..32 and 32 at 64, 4 mapping layers, skip architecture."""
    return StyleGAN2Config.create({4: 64, 8: 64, 16: 64, 32: 64, 64: 32}, z_dim=64, w_dim=64,
                                  c_dim=0, img_resolution=64, mapping_layers=4)


def default_generator(seed: int = DEFAULT_SEED) -> StyleGAN2Generator:
    """Build the default generator; noise strengths and biases are set non-zero so that every
    parameter matters, ToRGB weights are scaled so images are not saturated, and ``w_avg`` is the mean of 4096 mapped latents."""
    gen = StyleGAN2Generator(default_config(), rngs=nnx.Rngs(seed))
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
