"""Generator architectures (Flax NNX) and the generator protocol they share.

``FAMILIES`` maps the ``family`` string of a converted checkpoint's ``config.json`` to its
``(config class, generator class)``.
"""

from ._base import AbstractGenerator as AbstractGenerator, LayerFeatures as LayerFeatures
from .biggan import (
    BigGANConfig as BigGANConfig,
    BigGANGenerator as BigGANGenerator,
    one_hot as one_hot,
    truncated_noise_sample as truncated_noise_sample,
)
from .stylegan2 import (
    StyleGAN2Config as StyleGAN2Config,
    StyleGAN2Generator as StyleGAN2Generator,
    SynthesisState as SynthesisState,
    seed_to_z as seed_to_z,
)
from .stylegan3 import (
    StyleGAN3Config as StyleGAN3Config,
    StyleGAN3Generator as StyleGAN3Generator,
    make_transform as make_transform,
)

FAMILIES: dict[
    str, tuple[type, type[StyleGAN2Generator] | type[StyleGAN3Generator] | type[BigGANGenerator]]
] = {
    cls.family: (cfg, cls)
    for cfg, cls in (
        (StyleGAN2Config, StyleGAN2Generator),
        (StyleGAN3Config, StyleGAN3Generator),
        (BigGANConfig, BigGANGenerator),
    )
}

__all__ = [
    "FAMILIES",
    "AbstractGenerator",
    "BigGANConfig",
    "BigGANGenerator",
    "LayerFeatures",
    "StyleGAN2Config",
    "StyleGAN2Generator",
    "StyleGAN3Config",
    "StyleGAN3Generator",
    "SynthesisState",
    "make_transform",
    "one_hot",
    "seed_to_z",
    "truncated_noise_sample",
]
