"""Editing in Style (Collins et al., CVPR 2020) on StyleGAN2 / 3: local style transfer between images.

Pipeline (``IVRL/GANLocalEditing``, StyleGAN1 there; reimplemented, not ported):

1. **Catalog.** Every pixel of every sample's feature map at one conv layer (``[N·H·W, C]``) is
   clustered with `spherical_kmeans` (rows L2-normalized, unit centroids). Each cluster is a
   part (eyes, mouth...); `Catalog.annotate` names groups of clusters.
2. **Contributions.** For every style layer l and part k,
   ``M_l[k, c] = Σ_{n,h,w} A²[n,h,w,c]·U_k[n,h,w] / Σ_{n,h,w} A²[n,h,w,c]``: the share of channel
   c's energy that falls inside part k. ``A`` is the **input** of the modulated conv that style
   ``s_l`` scales, ``U_k`` the part mask resized to A's resolution (nearest, as the reference;
   ``"area"`` averages instead). Rows sum to 1 over parts that cover the image.
3. **Query.** Per layer, which channels to transfer: `query` (the reference's sequential
   rule, the paper's in/out ratio reading of rho, or the simultaneous ``min(1, λM)``).
4. **Transfer.** ``s_l = (1 − q_l)·s_T + q_l·s_R`` per style layer (exact at q = 0 and q = 1),
   then synthesis from the mixed styles.
5. **Locality.** `lab_squared_error` (the reference's CIELAB error) and `in_out_mse`.

What changes for StyleGAN2 (the reference is StyleGAN1-only):

* A StyleGAN2 style ``s_l`` (``gen.styles``) multiplies the **input** channels of layer l's
  modulated 3x3 conv (or ToRGB 1x1 conv), then the weights are demodulated. So the features
  whose energy defines ``M_l`` are the conv's *input*: for ``bR.conv0`` (the upsampling conv) the
  previous block's output at R/2, for ``bR.conv1`` the output of ``bR.conv0``, for ``bR.torgb``
  the output of ``bR.conv1``, for ``b4.conv1`` the learned constant (see `layer_inputs`).
* There is no instance norm, so channel energies are not unit: ``M`` divides by ``Σ A²``
  explicitly (the paper's ``1/(NHW)`` normalization relies on AdaIN's unit variance).
* ToRGB layers have styles too; they are interpolated like the others (``layers=`` restricts).
* Styles are one vector per layer (no separate AdaIN bias), so the whole vector is interpolated,
  as the reference does for 2-D styles.

StyleGAN3: the style of layer ``L{i}_..`` scales the input of its modulated conv, the previous
layer's output (``gen.style_input``). The input layer's 4-d style rotates / translates the
Fourier features and scales no channel: it has no contributions and keeps the target's value
unless ``qs`` names it. Feature maps are cut to the image region (StyleGAN3 keeps 10 px margins
around it, ``gen.feature_margin``), so catalog heatmaps and masks line up with the image.

Shapes: ws ``[N, num_ws, w_dim]`` (``[N, w_dim]`` is broadcast to all slots), images
``[N, H, W, 3]`` in [-1, 1], features NHWC, masks / heatmaps ``[N, K, H, W]``.
"""

from ..._resample import RESIZE_MODES as RESIZE_MODES, resize_masks as resize_masks
from ...errors import KMeansConvergenceWarning as KMeansConvergenceWarning
from ...metrics import (
    D65_WHITE as D65_WHITE,
    SRGB_TO_XYZ as SRGB_TO_XYZ,
    in_out_mse as in_out_mse,
    lab_locality as lab_locality,
    lab_squared_error as lab_squared_error,
    rgb_to_lab as rgb_to_lab,
)
from ._catalog import Catalog as Catalog
from ._common import (
    CATALOG_FORMAT as CATALOG_FORMAT,
    QUERY_MODES as QUERY_MODES,
    _as_ws as _as_ws,  # used by the CLI (jaxedit eis catalog)
)
from ._contributions import (
    Contributions as Contributions,
    contributions as contributions,
    contributions_from_features as contributions_from_features,
)
from ._debug import compiled_programs as compiled_programs
from ._features import (
    input_resolution as input_resolution,
    input_source as input_source,
    layer_inputs as layer_inputs,
)
from ._kmeans import (
    SphericalKMeansResult as SphericalKMeansResult,
    spherical_kmeans as spherical_kmeans,
)
from ._transfer import (
    label_queries as label_queries,
    query as query,
    transfer as transfer,
    transfer_styles as transfer_styles,
)

__all__ = [
    "compiled_programs",
    "CATALOG_FORMAT",
    "Catalog",
    "Contributions",
    "KMeansConvergenceWarning",
    "QUERY_MODES",
    "RESIZE_MODES",
    "SphericalKMeansResult",
    "contributions",
    "contributions_from_features",
    "in_out_mse",
    "input_resolution",
    "input_source",
    "lab_locality",
    "lab_squared_error",
    "label_queries",
    "layer_inputs",
    "query",
    "resize_masks",
    "rgb_to_lab",
    "spherical_kmeans",
    "transfer",
    "transfer_styles",
]
