"""Local PandA edits: `part_map`, `edit_direction` and `edit` (split the synthesis at the
factors' layer, add the direction, resume)."""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..._typing import EditDirection, Latents, PartMap, Parts
from ...sampling import Compute, Sampling, as_compute
from ._checks import _check_finite
from ._features import (
    _BigGANFeatures,
    _class_rows,
    _require_generator,
    _sampling_for,
    resolve_layer,
)
from ._result import PandaResult, _check_result


def _edit_spec(parts, appearances, strengths, r_s: int, r_c: int):
    """-> list of (part indices, appearance index, strength)."""

    def as_list(v):
        return list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]

    if isinstance(parts, (int, np.integer)):
        parts = [[parts]]
    parts = [sorted({int(k) for k in as_list(ps)}) for ps in as_list(parts)]
    apps = [int(j) for j in as_list(appearances)]
    lams = [float(s) for s in as_list(strengths)]
    if not (len(parts) == len(apps) == len(lams)) or not parts:
        raise ValueError(
            f"parts, appearances and strengths need one entry per edit, got "
            f"{len(parts)}, {len(apps)} and {len(lams)}"
        )
    for ps in parts:
        if not ps or min(ps) < 0 or max(ps) >= r_s:
            raise ValueError(f"part indices must be in [0, R_S = {r_s}), got {ps}")
    for j in apps:
        if not 0 <= j < r_c:
            raise ValueError(f"appearance indices must be in [0, R_C = {r_c}), got {j}")
    for lam in lams:
        if not math.isfinite(lam):
            raise ValueError(f"strengths must be finite, got {lam}")
    return list(zip(parts, apps, lams))


def part_map(parts_factors: Parts, parts) -> PartMap:
    """``minmax01(Σ_{k∈parts} P[..., k])``: ``[H, W, R_S]`` (or ``[N, H, W, R_S]``) -> ``[H, W]``
    (``[N, H, W]``), each map rescaled to [0, 1] (the reference's ``mapRange``)."""
    pf = np.asarray(parts_factors, np.float64)
    idx = [int(k) for k in ([parts] if isinstance(parts, (int, np.integer)) else parts)]
    m = pf[..., idx].sum(axis=-1)
    lo = m.min(axis=(-2, -1), keepdims=True)
    hi = m.max(axis=(-2, -1), keepdims=True)
    if np.any(hi <= lo):
        raise ValueError(
            f"part(s) {idx} are constant over the feature map (all zero?): there is "
            f"no region to edit; choose other parts"
        )
    return (m - lo) / (hi - lo)


def edit_direction(
    result: PandaResult, parts, appearances, strengths, *, parts_factors: Parts | None = None
) -> EditDirection:
    """The feature-space edit ``Σ_i λ_i · a_{app_i} ⊗ minmax01(Σ_{k∈parts_i} P[:, k])``.

    Args:
      parts: one entry per edit, each a part index or a list of part indices (summed), e.g.
        ``[[0, 1], [2]]``; a bare int is one edit.
      appearances: one appearance index per edit; strengths: one λ per edit.
      parts_factors: parts to use instead of ``result.parts``: ``[H, W, R_S]`` or refined
        per-sample parts ``[N, H, W, R_S]`` (from `refine`).
    Returns:
      ``[H, W, C]`` (``[N, H, W, C]`` for per-sample parts), in the appearance's dtype.
    """
    _check_result(result)
    pf = np.asarray(result.parts if parts_factors is None else parts_factors)
    h, w, c = result.feature_shape
    if pf.ndim not in (3, 4) or pf.shape[-3:] != (h, w, result.ranks[1]):
        raise ValueError(
            f"parts_factors must be [{h}, {w}, {result.ranks[1]}] or "
            f"[N, {h}, {w}, {result.ranks[1]}], got {pf.shape}"
        )
    _check_finite(pf, "parts_factors")
    spec = _edit_spec(parts, appearances, strengths, result.ranks[1], result.ranks[0])
    a = jnp.asarray(result.appearance)
    d: Any = 0  # an array from the first edit on (spec has one edit or more)
    for ps, j, lam in spec:
        m = jnp.asarray(part_map(pf, ps), a.dtype)
        d = d + lam * m[..., None] * a[:, j]
    return d


def _resume_dropping_skip(gen, ws, state, x, noise_mode, key, dtype, precision):
    """StyleGAN2 (``has_skip_image``) with the reference's dropped skip image."""
    # The reference's genforce port restarts the skip image at the split: every ToRGB output of
    # the convs before the split is dropped, including the current block's when the split is its
    # conv1 (that ToRGB ran with the *first* pass). Resume after the block's tail with no image.
    ws, _ = gen._prepare(ws, None, dtype, noise_mode, key)
    start = gen._op_index_after(state.layer)
    if state.layer.endswith(".conv1"):
        start += 1
    n_ops = len(gen._ops_list())
    if start >= n_ops:
        raise ValueError(
            f"drop_skip=True at the last block ({state.layer}) leaves no ToRGB "
            "after the split: the image would be empty"
        )
    out, _ = gen._program(
        ws,
        None,
        {"x": jnp.asarray(x, ws.dtype), "img": None, "residual": state.context["residual"]},
        key,
        start=start,
        stop=n_ops,
        noise_mode=noise_mode,
        precision=precision,
        collect=False,
    )
    return out["img"]


def edit(
    gen,
    latents: Latents,
    result: PandaResult,
    parts,
    appearances,
    strengths,
    *,
    parts_factors: Parts | None = None,
    layer: str | None = None,
    drop_skip: bool = False,
    sampling: Sampling | None = None,
    compute: Compute | None = None,
    key=None,
    return_original: bool = False,
):
    """Local PandA edit: split the synthesis at the factors' layer, add `edit_direction` to
    the features, resume.

    StyleGAN2: the skip image accumulated before the split is carried across it (so zero
    strength returns the unedited image, equal to ``gen.synthesis(latents)``).
    ``drop_skip=True`` reproduces the reference (genforce port), which restarts the skip image
    at the split in both the original and the edited image (every ToRGB contribution of the
    layers before the split is lost). BigGAN-deep: the remaining layers and the output head run
    with the same conditioning vector (zero strength returns ``gen(z, c, truncation_psi)``).

    Args:
      gen: a StyleGAN2, StyleGAN3 or BigGAN-deep generator. latents: StyleGAN2 / 3 ws
        ``[N, num_ws, w_dim]``;
        BigGAN z ``[N, z_dim]``.
      parts, appearances, strengths, parts_factors: as `edit_direction`.
      layer: override ``result.layer``.
      sampling: a `jaxedit.Sampling` (None = ``Sampling()``). StyleGAN2: ``noise_mode`` is
        read (``"random"`` needs ``key``); ws already carry the class and the truncation, so
        ``truncation_psi`` and ``truncation_cutoff`` are not read and ``c`` is refused.
        BigGAN: ``c`` (class vectors ``[num_classes]`` or ``[N, num_classes]``, required) and
        ``truncation_psi`` (BigGAN's truncation in (0, 1]); ``truncation_cutoff`` is refused.
      compute: a `jaxedit.Compute` (None = ``Compute()``): ``dtype`` and ``precision`` are read;
        all N latents run in one pass.
      key: PRNG key for ``sampling.noise_mode="random"`` (StyleGAN2).
    Returns:
      edited images ``[N, H, W, 3]``; with ``return_original``, ``(original, edited)`` computed
      the same way.
    Raises:
      TypeError: ``sampling`` or ``compute`` is not a `jaxedit.Sampling` / `jaxedit.Compute`.
      ValueError: no layer, features that do not match the factors, bad edit indices, or a
        ``sampling`` field this generator cannot use.
    """
    _check_result(result)
    _require_generator(gen, "edit")
    sampling = _sampling_for(gen, sampling, "edit")
    compute = as_compute(compute, "compute")
    dtype, precision = compute.dtype, compute.precision
    name = layer if layer is not None else result.layer
    if name is None:
        raise ValueError("the factors record no layer: pass layer=...")
    name = resolve_layer(gen, name)
    if drop_skip and not gen.has_skip_image:
        raise ValueError(f"drop_skip applies to StyleGAN2 ({gen.display_name} has no skip image)")
    ws, noise_mode = None, sampling.noise_mode
    if gen.truncation_kind == "stats":  # BigGAN: z latents, class vectors
        bf = _BigGANFeatures(gen, name, sampling, compute)
        paused = gen.features_at(
            bf.check_latents(latents),
            name,
            c=_class_rows(gen, sampling.c, np.shape(latents)[0]),
            truncation=bf.truncation,
            dtype=dtype,
            precision=precision,
        )
    else:  # StyleGAN2 / 3: ws already carry the class and the truncation
        if sampling.c is not None:
            raise ValueError(
                f"sampling.c applies to BigGAN; {gen.display_name} latents (ws) already include it"
            )
        ws = jnp.asarray(latents)
        paused = gen.features_at(
            ws, name, noise_mode=noise_mode, key=key, dtype=dtype, precision=precision
        )
    x = paused.x

    def resume(feats):
        if drop_skip:
            return _resume_dropping_skip(gen, ws, paused, feats, noise_mode, key, dtype, precision)
        return gen.resume_at(paused, feats)

    if tuple(x.shape[1:]) != result.feature_shape:
        raise ValueError(
            f"layer {name} has features [H, W, C] = {tuple(x.shape[1:])} but "
            f"the factors were learned on {result.feature_shape}"
        )
    d = edit_direction(result, parts, appearances, strengths, parts_factors=parts_factors)
    if d.ndim == 4 and d.shape[0] != x.shape[0]:
        raise ValueError(
            f"per-sample parts_factors are for {d.shape[0]} samples, latents for {x.shape[0]}"
        )
    edited = resume(x + jnp.asarray(d, x.dtype))
    if not return_original:
        return edited
    return resume(x), edited
