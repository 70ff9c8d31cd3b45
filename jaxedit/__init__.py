"""jaxedit: local semantic directions in pretrained GANs, in JAX.

Public API::

    gen = jaxedit.load_generator(path)   # converted dir, NVIDIA .pkl, rosinality .pt
    ws  = gen.mapping(z, c, truncation_psi=0.7)          # [N, num_ws, w_dim]
    img = gen.synthesis(ws, noise_mode="const")          # [N, H, W, 3]
"""

from converters.errors import (
    CheckpointError,
    CorruptCheckpointError,
    KeyMismatchError,
    ShapeMismatchError,
    UnsafePickleError,
    UnsupportedFormatError,
)

from .checkpoint import convert_checkpoint, load_generator, read_config, save_generator
from .default import default_generator
from .images import save_image_grid, to_uint8
from .models.stylegan2 import StyleGAN2Config, StyleGAN2Generator, SynthesisState, seed_to_z

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "CorruptCheckpointError",
    "KeyMismatchError",
    "ShapeMismatchError",
    "StyleGAN2Config",
    "StyleGAN2Generator",
    "SynthesisState",
    "UnsafePickleError",
    "UnsupportedFormatError",
    "convert_checkpoint",
    "default_generator",
    "load_generator",
    "read_config",
    "save_generator",
    "save_image_grid",
    "seed_to_z",
    "to_uint8",
]
