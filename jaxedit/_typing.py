"""Shape-annotated array types of the public API (jaxtyping; documentation and static checks).

The dimension names are the ones docstrings use: ``N`` samples, ``H``/``W`` rows and columns,
``C`` channels, ``D`` latent coordinates, ``K`` directions, ``S`` W+ slots (``num_ws``).
Annotations are not checked at run time (no jaxtyping import hook): the entry points validate
their inputs themselves and raise errors that name the argument.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Int, UInt8

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

__all__ = [
    "ClassVectors",
    "Directions",
    "Images",
    "Jacobian",
    "Latents",
    "Mask",
    "Seeds",
    "Vector",
    "WLatents",
    "ZLatents",
]

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

__all__ += [
    "ClassDimVectors",
    "ClassVectorsBigGAN",
    "Cond",
    "CondArray",
    "ConvKernel",
    "Features",
    "FeaturesArray",
    "Labels",
    "LayerOutput",
    "MaskArray",
    "RGBImages",
    "SeedLatent",
    "Style",
    "StyleArray",
    "Uint8Images",
    "WPlus",
    "WPlusArray",
    "WVector",
    "WVectorArray",
    "ZArray",
]
#: Float images in about [-1, 1]: any leading axes ``[..., H, W, C]``, or a batch ``[N, H, W, C]``.
ImagesLike = Float[ArrayLike, "*N H W C"]
ImageBatch = Float[ArrayLike, "N H W C"]
#: uint8 images as NumPy ``[..., H, W, C]``, one image ``[H, W, C]``, a grid
#: ``[rows*H, cols*W, C]``.
Uint8Array = UInt8[np.ndarray, "*N H W C"]
Uint8Image = UInt8[ArrayLike, "H W C"]
Uint8Grid = UInt8[np.ndarray, "rows*H cols*W C"]
#: Nearest-neighbour x2 upsampled features ``[N, 2H, 2W, C]``.
Upsampled = Float[Array, "N 2*H 2*W C"]
#: NumPy latents: BigGAN truncated noise ``[batch_size, z_dim]``, the PandA reference's z
#: ``[n, z_dim]``.
TruncatedNoise = Float[np.ndarray, "batch_size z_dim"]
ReferenceZ = Float[np.ndarray, "n z_dim"]
#: One-hot class vectors ``[N, num_classes]`` (NumPy).
OneHot = Float[np.ndarray, "N num_classes"]

# ---- regions ------------------------------------------------------------------------------------
#: A `Box` drawn on a ``size`` grid: ``[size, size]`` bool.
BoxMask = Bool[np.ndarray, "size size"]
#: A mask preset's per-pixel part frequency ``[grid, grid]``.
Frequency = Float[np.ndarray, "grid grid"]

# ---- SeFa and convolution spectra ---------------------------------------------------------------
#: SeFa's concatenated weight ``[D, units]``, its eigenvalues ``[k]`` and directions ``[k, D]``.
SefaWeight = Float[Array, "D units"]
SefaEigenvalues = Float[Array, "k"]
SefaDirections = Float[Array, "k D"]
#: A kernel on an upsampled grid ``[k', k', C_in, C_out]`` (taps unchecked).
ConvKernelArray = Float[Array, "_ _ C_in C_out"]
#: Closed-form Grams ``[C_in, C_in]`` (complex for the FFT route).
Gram = Float[Array, "C_in C_in"]
ComplexGram = Complex[Array, "C_in C_in"]
#: A style affine ``[D, C_in]`` (w_dim x C_in).
StyleAffine = Float[ArrayLike, "D C_in"]

# ---- PandA --------------------------------------------------------------------------------------
#: Features of one sample ``[H, W, C]`` or of N samples ``[N, H, W, C]``.
SampleFeatures = Float[ArrayLike, "*N H W C"]
#: Parts ``[H, W, R_S]`` or per-sample parts ``[N, H, W, R_S]``.
Parts = Float[ArrayLike, "*N H W R_S"]
PartsArray = Float[Array, "*N H W R_S"]
#: A part map ``[H, W]`` (``[N, H, W]``) in [0, 1], and a part region (bool).
PartMap = Float[np.ndarray, "*N H W"]
PartRegion = Bool[np.ndarray, "*N H W"]
#: A feature-space edit ``[H, W, C]`` (``[N, H, W, C]``).
EditDirection = Float[Array, "*N H W C"]
#: Saliency maps ``[N, H, W, R_C]`` (``[H, W, R_C]``).
Saliency = Float[Array, "*N H W R_C"]
#: Appearances ``[C, rank]``, per-sample values ``[N]``, losses ``[steps]`` (``[N, steps]``).
Appearance = Float[Array, "C rank"]
PerSample = Float[Array, "N"]
LossHistory = Float[Array, "*N steps"]
#: Saliency thresholds ``[K]`` (NumPy).
Thresholds = Float[np.ndarray, "K"]

# ---- Editing in Style ---------------------------------------------------------------------------
#: Rows to cluster ``[N, C]``.
Rows = Float[ArrayLike, "N C"]
#: Features of the catalog's layer ``[N, R, R, C]``; heatmaps ``[N, K, R, R]``.
CatalogFeatures = Float[ArrayLike, "N R R C"]
Heatmaps = Float[Array, "N K R R"]
HeatmapsLike = Float[ArrayLike, "N K H W"]
#: Label masks ``[N, L, H, W]`` (``[N, L, h, w]`` at a requested size).
LabelMasks = Float[Array, "N L H W"]
LabelMasksResized = Float[Array, "N L h w"]
#: Part masks ``[N, K, H0, W0]``, the inputs of the styled layers ``{layer: [N, H_l, W_l, C_l]}``
#: and of one layer ``[N, R, R, C_in]``.
PartMasks = Float[ArrayLike, "N K H0 W0"]
LayerInputs = Float[ArrayLike, "N H_l W_l C_l"]
LayerInput = Float[Array, "N R R C_in"]
#: Contributions ``[K, C_l]`` and mixed styles ``[N, C_l]`` of one layer.
ContributionRows = Float[Array, "K C_l"]
MixedStyles = Float[Array, "N C_l"]

# ---- toy faces ----------------------------------------------------------------------------------
#: Toy-face latents ``[N, Z_DIM]`` and factors ``[N, K]`` (K = ``NUM_FACTORS``).
ToyZ = Float[ArrayLike, "N Z_DIM"]
ToyZArray = Float[Array, "N Z_DIM"]
ToyZSample = Float[Array, "n Z_DIM"]
ToyFactors = Float[ArrayLike, "N K"]
ToyFactorsArray = Float[Array, "N K"]
#: Nuisance coordinates ``[N, Z_DIM - K]``.
ToyNuisance = Float[ArrayLike, "N Z_DIM-K"]
#: Rendered toy faces ``[N, 64, 64, 3]`` and part masks ``[N, 64, 64]``.
ToyImages = Float[Array, "N 64 64 3"]
ToyPartMasks = Bool[np.ndarray, "N 64 64"]
#: W directions ``[w_dim]`` or ``[N, w_dim]``; direction sets ``[k, D]`` or ``[N, k, D]``.
WDirections = Float[ArrayLike, "*N w_dim"]
DirectionSets = Float[ArrayLike, "*N k D"]
#: Factor directions in w ``[N, len(names), w_dim]``; edited images ``[A, N, H, W, C]``.
FactorDirections = Float[np.ndarray, "N names w_dim"]
EditedImages = Float[np.ndarray, "A N H W C"]

__all__ += [
    "Appearance",
    "BoxMask",
    "CatalogFeatures",
    "ComplexGram",
    "ContributionRows",
    "ImageBatch",
    "ImagesLike",
    "ConvKernelArray",
    "DirectionSets",
    "EditDirection",
    "EditedImages",
    "FactorDirections",
    "Frequency",
    "Gram",
    "Heatmaps",
    "HeatmapsLike",
    "LabelMasks",
    "LabelMasksResized",
    "LayerInput",
    "LayerInputs",
    "LossHistory",
    "MixedStyles",
    "OneHot",
    "PartMap",
    "PartMasks",
    "PartRegion",
    "Parts",
    "PartsArray",
    "PerSample",
    "ReferenceZ",
    "Rows",
    "Saliency",
    "SampleFeatures",
    "SefaDirections",
    "SefaEigenvalues",
    "SefaWeight",
    "StyleAffine",
    "Thresholds",
    "ToyFactors",
    "ToyFactorsArray",
    "ToyImages",
    "ToyNuisance",
    "ToyPartMasks",
    "ToyZ",
    "ToyZArray",
    "ToyZSample",
    "TruncatedNoise",
    "Uint8Array",
    "Uint8Grid",
    "Uint8Image",
    "Upsampled",
    "WDirections",
]

#: Forward-mode Jacobians as `jaxedit.jacobian` returns them: ``[N, H, W, C, D]``.
JacobianArray = Float[Array, "N H W C D"]
#: One direction in a latent space: ``[D]``.
DirectionVector = Float[ArrayLike, "D"]
#: Edit strengths: ``[A]``.
Alphas = Float[ArrayLike, "A"]
#: Edited images, rows = alphas, columns = samples: ``[A, N, H, W, C]``.
EditGrid = Float[np.ndarray, "A N H W C"]

__all__ += ["Alphas", "DirectionVector", "EditGrid", "JacobianArray"]
