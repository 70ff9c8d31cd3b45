"""jaxedit: local semantic directions in pretrained GANs, in JAX.

Public API::

    gen = jaxedit.load_generator(path)   # converted dir, NVIDIA .pkl (PyTorch/TF), rosinality .pt, Hammer .pth
    ws  = gen.mapping(z, c, truncation_psi=0.7)          # [N, num_ws, w_dim]
    img = gen.synthesis(ws, noise_mode="const")          # [N, H, W, 3]
    J   = jaxedit.jacobian(gen, ws, space="w")           # [N, H, W, 3, D] (forward mode)
    J   = jaxedit.jacobian(gen, ws, output=jaxedit.OutputSpec(resize=64),
                           compute=jaxedit.Compute(chunk=16, batch_size=4))
    res = jaxedit.resefa(J[0], mask_or_box, k=10)        # .directions [k, D], .eigenvalues [k]
    res = jaxedit.resefa(op, box, solver=jaxedit.MatrixFree(tol=1e-6))   # .stats: SolverStats
    sol = jaxedit.linalg.pencil_eigh(jaxedit.linalg.MomentPencil(mf, mb), k=10)   # the solvers
    m   = jaxedit.region_moments(gen, seeds, {"eyes": box})  # many samples, sharded, mergeable
    res = jaxedit.resefa(m["eyes"], k=10)                # = resefa(J, box, aggregate="mean")

    gen = jaxedit.default_generator()    # the embedded StyleGAN2 trained on jaxedit.toyfaces
    res = jaxedit.resefa(J[0], "toyfaces/eyes")          # region presets of its known parts

    res = jaxedit.project(gen, images)                   # real images -> .ws [N, num_ws, w_dim]
    new = jaxedit.pivotal_tune(gen, images, res)         # PTI: a tuned copy of the generator
"""

import importlib.metadata as _metadata
import sys

from . import debug as debug, linalg as linalg, projection as projection, toyfaces
from .checkpoint import (
    CheckpointInfo,
    convert_checkpoint,
    inspect_checkpoint,
    load_generator,
    read_config,
    save_generator,
    verify_checkpoint,
)
from .editing import DirectionSet, edit_latents, load_directions, render_edits, save_edit_grid
from .errors import (
    AmbiguousRegionError,
    CheckpointError,
    ComplexEigenpairsWarning,
    ConvergenceWarning,
    CorruptCheckpointError,
    ImageFileError,
    JaxeditWarning,
    KeyMismatchError,
    NonFiniteParameterError,
    OutputError,
    OutputExistsError,
    ShapeMismatchError,
    SingularBackgroundWarning,
    UnsafePickleError,
    UnsupportedFormatError,
)
from .images import load_images, save_image_grid, to_uint8
from .jacobians import JacobianOperator, OutputSpec, jacobian
from .linalg import (
    Dense,
    MatrixFree,
    ReferenceEig,
    SolverStats,
    Woodbury,
)
from .methods import eis as eis, panda as panda, sefa as _sefa_module, spectra as spectra
from .methods.resefa import (
    Moments,
    ResefaResult,
    load_moments,
    merge_moments,
    region_moments,
    resefa,
    save_moments,
)
from .methods.sefa import SefaResult, sefa
from .methods.spectra import conv_factorization, conv_singular_values
from .metrics import evaluate_direction, locality
from .models.biggan import BigGANConfig, BigGANGenerator, one_hot, truncated_noise_sample
from .models.stylegan2 import StyleGAN2Config, StyleGAN2Generator, SynthesisState, seed_to_z
from .models.stylegan3 import StyleGAN3Config, StyleGAN3Generator, make_transform
from .projection import ProjectionResult, pivotal_tune, project
from .regions import Box, MaskPreset, center_box, preset, region_mask
from .sampling import Compute, Sampling
from .toyfaces.default import default_generator, random_generator

# The old module paths: ``jaxedit.sefa`` is the function (in __all__), ``jaxedit.spectra`` the
# module; ``from jaxedit.sefa import ...`` / ``import jaxedit.spectra`` still reach the modules.
sys.modules.setdefault(__name__ + ".sefa", _sefa_module)
sys.modules.setdefault(__name__ + ".spectra", spectra)

# `import jaxedit.panda` / `from jaxedit.eis import Catalog` keep working after the move
sys.modules.setdefault("jaxedit.eis", eis)
sys.modules.setdefault("jaxedit.panda", panda)

try:
    __version__ = _metadata.version("jaxedit")
except _metadata.PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0.1.0"

__all__ = [
    "BigGANConfig",
    "BigGANGenerator",
    "Box",
    "CheckpointError",
    "CheckpointInfo",
    "ComplexEigenpairsWarning",
    "Compute",
    "ConvergenceWarning",
    "CorruptCheckpointError",
    "Dense",
    "DirectionSet",
    "ImageFileError",
    "JacobianOperator",
    "JaxeditWarning",
    "KeyMismatchError",
    "MaskPreset",
    "MatrixFree",
    "Moments",
    "NonFiniteParameterError",
    "OutputError",
    "OutputExistsError",
    "AmbiguousRegionError",
    "OutputSpec",
    "ProjectionResult",
    "ReferenceEig",
    "ResefaResult",
    "Sampling",
    "SefaResult",
    "ShapeMismatchError",
    "SingularBackgroundWarning",
    "SolverStats",
    "StyleGAN2Config",
    "StyleGAN2Generator",
    "StyleGAN3Config",
    "StyleGAN3Generator",
    "SynthesisState",
    "UnsafePickleError",
    "UnsupportedFormatError",
    "Woodbury",
    "center_box",
    "conv_factorization",
    "conv_singular_values",
    "convert_checkpoint",
    "make_transform",
    "debug",
    "default_generator",
    "edit_latents",
    "eis",
    "evaluate_direction",
    "inspect_checkpoint",
    "jacobian",
    "linalg",
    "load_directions",
    "load_generator",
    "load_images",
    "load_moments",
    "locality",
    "merge_moments",
    "one_hot",
    "panda",
    "pivotal_tune",
    "preset",
    "project",
    "projection",
    "random_generator",
    "read_config",
    "region_mask",
    "region_moments",
    "render_edits",
    "resefa",
    "save_edit_grid",
    "save_generator",
    "save_image_grid",
    "save_moments",
    "seed_to_z",
    "sefa",
    "to_uint8",
    "toyfaces",
    "truncated_noise_sample",
    "verify_checkpoint",
]
