"""Shape-annotated array types of the public API (jaxtyping; documentation and static checks).

The dimension names are the ones docstrings use: ``N`` samples, ``H``/``W`` rows and columns,
``C`` channels, ``D`` latent coordinates, ``K`` directions, ``S`` W+ slots (``num_ws``).
Annotations are not checked at run time (no jaxtyping import hook): the entry points validate
their inputs themselves and raise errors that name the argument.
"""

from __future__ import annotations

from jaxtyping import Array, ArrayLike, Bool, Float, Int

#: z latents ``[N, z_dim]``.
ZLatents = Float[ArrayLike, "N z_dim"]
#: W+ latents ``[N, S, w_dim]`` (or w ``[N, w_dim]`` where it is broadcast to every slot).
WLatents = Float[ArrayLike, "N *S w_dim"]
#: Latents of any space (z, w, W+, S, BigGAN z): ``[N, ...]``.
Latents = Float[ArrayLike, "N ..."]
#: Class vectors ``[N, C]`` (one-hot or soft), or None for an unconditional generator.
ClassVectors = Float[ArrayLike, "N classes"]
#: Images, NHWC, in about ``[-1, 1]``: ``[N, H, W, C]``.
Images = Float[Array, "N H W C"]
#: Forward-mode Jacobians of output rows: ``[N, H, W, C, D]`` (one sample: ``[H, W, C, D]``).
Jacobian = Float[ArrayLike, "*N H W C D"]
#: A region mask ``[H, W]`` (bool or weights in [0, 1]).
Mask = Bool[ArrayLike, "H W"] | Float[ArrayLike, "H W"]
#: Directions, one per row: ``[K, D]``.
Directions = Float[ArrayLike, "K D"]
#: Unit vectors or eigenvalues ``[K]``.
Vector = Float[ArrayLike, "K"]
#: Integer seeds ``[N]``.
Seeds = Int[ArrayLike, "N"]

__all__ = ["ClassVectors", "Directions", "Images", "Jacobian", "Latents", "Mask",
           "Seeds", "Vector", "WLatents", "ZLatents"]
