"""Toy faces: a procedural face renderer with known parts, and the StyleGAN2 trained on it.

``render(factors)`` draws anti-aliased 64x64 faces from named factors (`FACTORS`: name,
part, range), ``part_masks(factors)`` gives the exact pixels of every part, and
``factors_from_z(z)`` is the fixed map from a latent to factors that the embedded generator
(`jaxedit.default_generator`) was trained to reproduce: ``G(z) ~ render(factors_from_z(z))``.
Training: ``python -m jaxedit.toyfaces train --out DIR``.
"""

from ._latent import (
    NUM_FACTORS,
    Z_DIM,
    edit_factor,
    factors_from_z,
    normalize,
    sample_z,
    z_from_factors,
)
from ._render import (
    FACTORS,
    GROUPS,
    PARTS,
    SIZE,
    Factor,
    factor_index,
    factors_of_part,
    part_masks,
    render,
)

__all__ = [
    "FACTORS",
    "GROUPS",
    "NUM_FACTORS",
    "PARTS",
    "SIZE",
    "Z_DIM",
    "Factor",
    "edit_factor",
    "factor_index",
    "factors_from_z",
    "factors_of_part",
    "normalize",
    "part_masks",
    "render",
    "sample_z",
    "z_from_factors",
]
