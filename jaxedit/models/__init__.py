"""Generator architectures (Flax NNX)."""

from .stylegan2 import StyleGAN2Config, StyleGAN2Generator, SynthesisState, seed_to_z

__all__ = ["StyleGAN2Config", "StyleGAN2Generator", "SynthesisState", "seed_to_z"]
