"""The public array arguments carry jaxtyping shape annotations that match their docstrings.

For each (function, argument) below, ``typing.get_type_hints(f, include_extras=True)`` must
resolve (the aliases of ``jaxedit._typing`` are importable where they are used) and every
jaxtyping array type in the annotation (``X | None``, ``dict[str, X]``, ``tuple[X, Y]`` and
``ArrayLike`` unions included) must have the documented dimension string. ``"return"`` checks
the return annotation. Annotations are documentation and static checks only: no run-time
shape checking.
"""

from __future__ import annotations

import typing

import pytest

import jaxedit
import jaxedit.eis as eis
import jaxedit.panda as panda
import jaxedit.toyfaces as toyfaces
from jaxedit import images, regions
from jaxedit.methods import sefa as sefa_mod, spectra
from jaxedit.models import AbstractGenerator, BigGANGenerator, StyleGAN2Generator, biggan, stylegan2
from jaxedit.toyfaces import validity

SG, BG = StyleGAN2Generator, BigGANGenerator

#: (qualified name for the report, callable, argument or "return", documented dims).
ANNOTATED = [
    # StyleGAN2: z [N, z_dim], c [N, c_dim], ws [N, num_ws, w_dim], images [N, H, W, C]
    ("StyleGAN2Generator.mapping", SG.mapping, "z", "N z_dim"),
    ("StyleGAN2Generator.mapping", SG.mapping, "c", "N c_dim"),
    ("StyleGAN2Generator.mapping", SG.mapping, "return", "N num_ws w_dim"),
    ("StyleGAN2Generator.set_w_avg", SG.set_w_avg, "w_avg", "w_dim"),
    ("StyleGAN2Generator.styles", SG.styles, "ws", "N num_ws w_dim"),
    ("StyleGAN2Generator.styles", SG.styles, "return", "N C_in"),
    ("StyleGAN2Generator.synthesis", SG.synthesis, "ws", "N num_ws w_dim"),
    ("StyleGAN2Generator.synthesis", SG.synthesis, "styles", "N C_in"),
    ("StyleGAN2Generator.synthesis", SG.synthesis, "return", "N H W C"),
    ("StyleGAN2Generator.synthesis_from_styles", SG.synthesis_from_styles, "styles", "N C_in"),
    ("StyleGAN2Generator.features", SG.features, "ws", "N num_ws w_dim"),
    ("StyleGAN2Generator.features", SG.features, "return", {"N H W C", "N R R C"}),
    ("StyleGAN2Generator.synthesis_split", SG.synthesis_split, "ws", "N num_ws w_dim"),
    ("StyleGAN2Generator.synthesis_resume", SG.synthesis_resume, "ws", "N num_ws w_dim"),
    ("StyleGAN2Generator.synthesis_resume", SG.synthesis_resume, "return", "N H W C"),
    ("StyleGAN2Generator.__call__", SG.__call__, "z", "N z_dim"),
    ("StyleGAN2Generator.__call__", SG.__call__, "return", "N H W C"),
    ("StyleGAN2Generator.features_at", SG.features_at, "latents", "N num_ws w_dim"),
    ("StyleGAN2Generator.resume_at", SG.resume_at, "x", "N H W C"),
    ("seed_to_z", stylegan2.seed_to_z, "return", "1 z_dim"),
    # BigGAN: z [N, z_dim], class vectors [N, num_classes], cond [N, 2 * z_dim]
    ("BigGANGenerator.embed", BG.embed, "class_vector", "N num_classes"),
    ("BigGANGenerator.embed", BG.embed, "return", "N z_dim"),
    ("BigGANGenerator.cond", BG.cond, "z", "N z_dim"),
    ("BigGANGenerator.cond", BG.cond, "class_vector", "N num_classes"),
    ("BigGANGenerator.cond", BG.cond, "return", "N 2*z_dim"),
    ("BigGANGenerator.synthesis_from_cond", BG.synthesis_from_cond, "cond", "N 2*z_dim"),
    ("BigGANGenerator.synthesis_from_cond", BG.synthesis_from_cond, "return", "N H W 3"),
    ("BigGANGenerator.__call__", BG.__call__, "z", "N z_dim"),
    ("BigGANGenerator.__call__", BG.__call__, "class_vector", "N num_classes"),
    ("BigGANGenerator.__call__", BG.__call__, "return", "N H W 3"),
    ("BigGANGenerator.features_at", BG.features_at, "latents", "N z_dim"),
    ("BigGANGenerator.features_at", BG.features_at, "c", "N num_classes"),
    ("one_hot", biggan.one_hot, "return", "N num_classes"),
    ("truncated_noise_sample", biggan.truncated_noise_sample, "return", "batch_size z_dim"),
    ("upsample_nearest2x", biggan.upsample_nearest2x, "x", "N H W C"),
    # the generator protocol
    ("AbstractGenerator.features_at", AbstractGenerator.features_at, "latents", "N ..."),
    ("AbstractGenerator.features_at", AbstractGenerator.features_at, "c", "N class_dim"),
    ("AbstractGenerator.resume_at", AbstractGenerator.resume_at, "x", "N H W C"),
    ("AbstractGenerator.resume_at", AbstractGenerator.resume_at, "return", "N H W C"),
    # regions and images
    ("region_mask", regions.region_mask, "return", "H W"),
    ("mask_box", regions.mask_box, "mask", "H W"),
    ("Box.mask", regions.Box.mask, "return", "size size"),
    ("MaskPreset.mask", regions.MaskPreset.mask, "return", "H W"),
    ("to_uint8", images.to_uint8, "img", "*N H W C"),
    ("image_grid", images.image_grid, "imgs", "N H W C"),
    ("save_png", images.save_png, "image", "H W C"),
    ("save_image_grid", images.save_image_grid, "imgs", "N H W C"),
    # SeFa and spectra
    ("sefa.factorize", sefa_mod.factorize, "weight", "D units"),
    ("sefa.factorize", sefa_mod.factorize, "return", {"k", "k D"}),
    ("conv_singular_values", spectra.conv_singular_values, "kernel_hwio", "k k C_in C_out"),
    ("conv_factorization", spectra.conv_factorization, "kernel_hwio", "k k C_in C_out"),
    ("conv_factorization", spectra.conv_factorization, "affine", "D C_in"),
    ("fft_gram", spectra.fft_gram, "return", "C_in C_in"),
    # PandA
    ("panda.fit", panda.fit, "features", "N H W C"),
    ("panda.refine", panda.refine, "features", "*N H W C"),
    ("panda.loss", panda.loss, "features", "N H W C"),
    ("panda.loss", panda.loss, "return", "N"),
    ("panda.hosvd", panda.hosvd, "features", "N H W C"),
    ("panda.hosvd", panda.hosvd, "return", "C rank"),
    ("panda.saliency", panda.saliency, "features", "*N H W C"),
    ("panda.saliency", panda.saliency, "return", "*N H W R_C"),
    ("panda.edit_direction", panda.edit_direction, "parts_factors", "*N H W R_S"),
    ("panda.edit_direction", panda.edit_direction, "return", "*N H W C"),
    ("panda.part_map", panda.part_map, "parts_factors", "*N H W R_S"),
    ("panda.part_region", panda.part_region, "return", "*N H W"),
    ("panda.edit", panda.edit, "latents", "N ..."),
    ("panda.fit_generator", panda.fit_generator, "latents", "N ..."),
    ("panda.reference_z", panda.reference_z, "return", "n z_dim"),
    # Editing in Style
    ("eis.spherical_kmeans", eis.spherical_kmeans, "X", "N C"),
    ("eis.layer_inputs", eis.layer_inputs, "latents", "N *S w_dim"),
    ("eis.layer_inputs", eis.layer_inputs, "return", "N R R C_in"),
    ("eis.contributions_from_features", eis.contributions_from_features, "masks", "N K H0 W0"),
    ("eis.contributions_from_features", eis.contributions_from_features, "return", "K C_l"),
    ("eis.contributions", eis.contributions, "latents", "N *S w_dim"),
    ("eis.transfer_styles", eis.transfer_styles, "ws_target", "N *S w_dim"),
    ("eis.transfer_styles", eis.transfer_styles, "return", "N C_l"),
    ("eis.transfer", eis.transfer, "ws_reference", "N *S w_dim"),
    ("eis.transfer", eis.transfer, "return", "N H W 3"),
    ("Catalog.predict_features", eis.Catalog.predict_features, "features", "N R R C"),
    ("Catalog.predict_features", eis.Catalog.predict_features, "return", "N K R R"),
    ("Catalog.predict", eis.Catalog.predict, "latents", "N *S w_dim"),
    ("Catalog.label_masks", eis.Catalog.label_masks, "heatmaps", "N K H W"),
    # toy faces
    ("toyfaces.factors_from_z", toyfaces.factors_from_z, "z", "N Z_DIM"),
    ("toyfaces.factors_from_z", toyfaces.factors_from_z, "return", "N K"),
    ("toyfaces.z_from_factors", toyfaces.z_from_factors, "nuisance", "N Z_DIM-K"),
    ("toyfaces.edit_factor", toyfaces.edit_factor, "z", "N Z_DIM"),
    ("toyfaces.sample_z", toyfaces.sample_z, "return", "n Z_DIM"),
    ("toyfaces.render", toyfaces.render, "factors", "N K"),
    ("toyfaces.render", toyfaces.render, "return", "N 64 64 3"),
    ("toyfaces.part_masks", toyfaces.part_masks, "return", "N 64 64"),
    ("validity.edited_images", validity.edited_images, "ws", "N num_ws w_dim"),
    ("validity.subspace_agreement", validity.subspace_agreement, "J", "*N H W C D"),
]

#: The entry points of the main workflow (jacobian -> resefa -> render_edits).
WORKFLOW = [
    ("jaxedit.jacobian", jaxedit.jacobian, "latents", "N ..."),
    ("jaxedit.jacobian", jaxedit.jacobian, "return", "N H W C D"),
    ("jaxedit.resefa", jaxedit.resefa, "J", "*N H W C D"),
    ("jaxedit.render_edits", jaxedit.render_edits, "latents", "N ..."),
    ("jaxedit.render_edits", jaxedit.render_edits, "direction", "D"),
    ("jaxedit.render_edits", jaxedit.render_edits, "alphas", "A"),
    ("jaxedit.render_edits", jaxedit.render_edits, "return", "A N H W C"),
]


def _is_jaxtyping(t) -> bool:
    return isinstance(t, type) and hasattr(t, "dim_str") and hasattr(t, "dtypes")


def array_dims(annotation) -> set[str]:
    """The dimension strings of every jaxtyping array type inside ``annotation``."""
    if _is_jaxtyping(annotation):
        return {annotation.dim_str}
    out: set[str] = set()
    for arg in typing.get_args(annotation):
        out |= array_dims(arg)
    return out


def dims_of(fn, arg: str) -> set[str]:
    hints = typing.get_type_hints(fn, include_extras=True)
    assert arg in hints, f"{arg!r} of {fn.__qualname__} has no annotation"
    return array_dims(hints[arg])


def _check(name, fn, arg, want):
    want = {want} if isinstance(want, str) else set(want)
    got = dims_of(fn, arg)
    assert got, f"{name}: {arg!r} is not annotated with a jaxtyping array type"
    assert got == want, f"{name}: {arg!r} has dims {sorted(got)}, documented {sorted(want)}"


@pytest.mark.parametrize(
    "name,fn,arg,want", ANNOTATED, ids=[f"{n}:{a}" for n, _, a, _ in ANNOTATED]
)
def test_shape_annotation(name, fn, arg, want):
    _check(name, fn, arg, want)


@pytest.mark.parametrize("name,fn,arg,want", WORKFLOW, ids=[f"{n}:{a}" for n, _, a, _ in WORKFLOW])
def test_shape_annotation_workflow(name, fn, arg, want):
    _check(name, fn, arg, want)


def test_array_dims_sees_through_unions_and_containers():
    from jaxtyping import Array, ArrayLike, Float

    t = dict[str, Float[ArrayLike, "N C_in"]] | None
    assert array_dims(t) == {"N C_in"}
    assert array_dims(tuple[Float[Array, "k"], Float[Array, "k D"]]) == {"k", "k D"}
    assert array_dims(int | None) == set()
