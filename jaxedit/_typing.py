"""Shape-annotated array types of the public API (jaxtyping; documentation and static checks).

The dimension names are the ones docstrings use: ``N`` samples, ``H``/``W`` rows and columns,
``C`` channels, ``D`` latent coordinates, ``K`` directions, ``S`` W+ slots (``num_ws``).
Annotations are not checked at run time (no jaxtyping import hook): the entry points validate
their inputs themselves and raise errors that name the argument.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, UInt8

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

# ---- per-family shapes (dimension names as the models' docstrings write them) ------------------
#: StyleGAN2 W+ latents exactly ``[N, num_ws, w_dim]`` (synthesis, styles, feature passes).
WPlus = Float[ArrayLike, "N num_ws w_dim"]
#: W+ latents as the mapping returns them: ``[N, num_ws, w_dim]``.
WPlusArray = Float[Array, "N num_ws w_dim"]
#: StyleGAN2 conditioning labels ``[N, c_dim]``.
Labels = Float[ArrayLike, "N c_dim"]
#: One w vector ``[w_dim]`` (``w_avg``).
WVector = Float[ArrayLike, "w_dim"]
WVectorArray = Float[Array, "w_dim"]
#: NVIDIA ``generate.py``'s latent of one seed, NumPy ``[1, z_dim]``.
SeedLatent = Float[np.ndarray, "1 z_dim"]
#: Per-layer style vectors (S space), the affine outputs ``[N, C_in]``.
Style = Float[ArrayLike, "N C_in"]
StyleArray = Float[Array, "N C_in"]
#: StyleGAN2 conv layer output features ``[N, R, R, C]``.
LayerOutput = Float[Array, "N R R C"]
#: Feature maps of any generator layer, NHWC ``[N, H, W, C]``.
Features = Float[ArrayLike, "N H W C"]
FeaturesArray = Float[Array, "N H W C"]
#: BigGAN class vectors ``[N, num_classes]`` (one-hot or soft).
ClassVectorsBigGAN = Float[ArrayLike, "N num_classes"]
#: Class vectors of the generator protocol ``[N, class_dim]``.
ClassDimVectors = Float[ArrayLike, "N class_dim"]
#: BigGAN z latents or class embeddings as jax arrays ``[N, z_dim]``.
ZArray = Float[Array, "N z_dim"]
#: BigGAN conditioning vectors ``[z, embed]``: ``[N, 2 * z_dim]``.
Cond = Float[ArrayLike, "N 2*z_dim"]
CondArray = Float[Array, "N 2*z_dim"]
#: RGB images (BigGAN, Editing in Style): ``[N, H, W, 3]``.
RGBImages = Float[Array, "N H W 3"]
#: A boolean mask as NumPy ``[H, W]`` (what `jaxedit.regions` returns).
MaskArray = Bool[np.ndarray, "H W"]
#: Correlation kernels, HWIO ``[k, k, C_in, C_out]``.
ConvKernel = Float[ArrayLike, "k k C_in C_out"]
#: uint8 images ``[N, H, W, C]``.
Uint8Images = UInt8[ArrayLike, "N H W C"]

__all__ += ["ClassDimVectors", "ClassVectorsBigGAN", "Cond", "CondArray", "ConvKernel",
            "Features", "FeaturesArray", "Labels", "LayerOutput", "MaskArray", "RGBImages",
            "SeedLatent", "Style", "StyleArray", "Uint8Images", "WPlus", "WPlusArray", "WVector",
            "WVectorArray", "ZArray"]
