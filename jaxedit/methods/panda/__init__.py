"""PandA (Oldfield et al., ICLR 2023): parts and appearances of one layer's feature maps.

For feature maps ``Z_i`` of N samples at one layer (``C`` channels, ``S = H·W`` positions, the
reference's ``C x S`` unfolding), PandA learns *appearances* ``A [C, R_C]`` and non-negative
*parts* ``P [S, R_S]`` minimizing::

    L(A, P) = Σ_i ‖Z_i − A Aᵀ Z_i P Pᵀ‖²_F        subject to  P ≥ 0

(the sample core ``Aᵀ Z_i P`` is a projection, never stored). Columns of ``P`` reshaped to
``[H, W]`` are soft part masks shared by all samples; columns of ``A`` are channel directions.
A *local edit* adds ``λ · a_j ⊗ minmax01(Σ_{k∈parts} P[:, k])`` to one sample's features and
resumes the generator from that layer.

Conventions (jaxedit): features are NHWC ``[N, H, W, C]`` as `StyleGAN2Generator.features`
returns them; ``Z_i = features[i].reshape(S, C).T`` (row-major over ``H, W``, as the reference's
``Z.view(C, H*W)``); parts are returned as ``[H, W, R_S]``.

Optimization (`fit`):

* ``optimizer="pgd"`` is the reference's solver exactly: per step, the gradient of the loss
  **summed** over the batch, ``P ← max(P − lr·∇_P, 0)``, then ``A ← A − lr·∇_A`` evaluated at the
  new ``P``. Its learning rate is in units of 1 / feature-scale² and has to be retuned for every
  layer and checkpoint (the reference uses 1e-8 … 1e-6).
* the default, ``optax.adam``, and any ``optax.GradientTransformation`` take the same
  alternating steps (one optimizer state per factor; ``P`` projected onto ``P ≥ 0`` after each of
  its updates) on a problem put in natural units, which is what makes one learning rate work on
  every layer:

  - the loss is divided by the mean feature energy ``E = mean_i ‖Z_i‖²_F`` of the data (fixed
    before the first step, stored as `PandaResult.feature_energy`) and averaged over the
    batch: it is the fraction of the feature energy left unexplained (1 at ``P = 0``), whatever
    the layer's or the checkpoint's activation scale;
  - the optimizer updates ``A / σ_A`` and ``P / σ_P`` with ``σ_A = 1/sqrt(C)`` (the entry scale of
    unit-norm columns) and ``σ_P = sqrt(R_S / (H·W))`` (the entry scale of parts with
    ``PᵀP ≈ I`` and near-disjoint supports), so a step of ``lr`` moves each entry by about
    ``lr`` times its natural size on any layer (`natural_scales`).

  - the appearance updates are scaled by 0.1 (`APPEARANCE_RATE`): ``A`` starts at the
    near-optimal HOSVD solution, and full-rate appearance steps make Adam oscillate.

  The default Adam uses a peak learning rate of 0.05 (`DEFAULT_LEARNING_RATE`) with a
  linear warm-up over the first 5 % of the steps and a cosine decay to 1 % of the peak at the
  last step (measured on 8x8 … 64x64 layers of random and fixture StyleGAN2s: peak rates up to
  0.1 converge, 0.2 and above can drive parts to zero, where they stay).
* ``losses[t]`` is the **raw** mean over step t's batch of ``‖Z_i − A AᵀZ_iPPᵀ‖²_F`` before step
  t's updates, in every mode (``relative_losses`` divides by ``E``).

The loss is evaluated as ``Z − A K Pᵀ`` with ``K = (Aᵀ Z) P`` formed as ``(Pᵀ Zᵀ) A``: its
cost per sample is ``O(R_S · S · C + R_S · C · R_C)``, against ``O(S · C · R_C + S² · C)`` for the
reference's hand-written gradients. ``jax.grad`` of it equals those gradients (tested).
"""

from ..._resample import (
    lanczos_upsample,
)
from ...errors import PandaConvergenceWarning
from ._checks import (
    APPEARANCE_RATE,
    DEFAULT_LEARNING_RATE,
    REFERENCE_LEARNING_RATE,
)
from ._debug import (
    compiled_programs,
)
from ._edit import (
    edit,
    edit_direction,
    part_map,
)
from ._evaluate import (
    evaluate_edit,
    part_iou,
    part_region,
)
from ._features import (
    fit_generator,
    reference_z,
    resolve_layer,
)
from ._fit import (
    fit,
    refine,
)
from ._loss import (
    hosvd,
    loss,
)
from ._result import (
    PandaResult,
    load,
    save,
)
from ._saliency import (
    saliency,
    saliency_masks,
    saliency_thresholds,
)
from ._steps import (
    natural_scales,
)

__all__ = [
    "APPEARANCE_RATE",
    "DEFAULT_LEARNING_RATE",
    "PandaConvergenceWarning",
    "PandaResult",
    "REFERENCE_LEARNING_RATE",
    "edit",
    "edit_direction",
    "evaluate_edit",
    "fit",
    "fit_generator",
    "hosvd",
    "compiled_programs",
    "lanczos_upsample",
    "load",
    "loss",
    "natural_scales",
    "part_iou",
    "part_map",
    "part_region",
    "reference_z",
    "refine",
    "resolve_layer",
    "saliency",
    "saliency_masks",
    "saliency_thresholds",
    "save",
]
