"""Evaluation of learned parts and edits: `part_region`, `evaluate_edit` (ROIR / masked MSE) and
`part_iou` against ground-truth part masks."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._resample import lanczos_upsample, nearest_centres as _nearest
from ..._typing import Latents, PartRegion, Parts
from ._edit import _edit_spec, edit, part_map
from ._result import PandaResult, _check_result


def part_region(
    result: PandaResult,
    parts,
    threshold: float = 0.5,
    *,
    parts_factors: Parts | None = None,
    gen=None,
) -> PartRegion:
    """A region from learned parts: ``minmax01(Σ_{k∈parts} P[:, :, k]) >= threshold``, ``[H, W]``
    bool at the feature resolution (``[N, H, W]`` for per-sample ``parts_factors``); regions
    are resampled to the image by nearest neighbour wherever jaxedit uses them.

    ``gen``: the generator of ``result.layer``; with it the region is cut to the image
    (StyleGAN3's feature maps have margins, ``gen.feature_margin``), so it lines up with the
    image when resampled. Without it the region covers the whole feature grid."""
    _check_result(result)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    pf = result.parts if parts_factors is None else parts_factors
    idx = [parts] if isinstance(parts, (int, np.integer)) else list(parts)
    _edit_spec([idx], [0], [0.0], result.ranks[1], result.ranks[0])
    region = part_map(pf, idx) >= threshold
    m = 0 if gen is None or result.layer is None else gen.feature_margin(result.layer)
    return region[..., m : region.shape[-2] - m, m : region.shape[-1] - m] if m else region


def evaluate_edit(
    gen,
    latents: Latents,
    result: PandaResult,
    parts,
    appearances,
    strengths,
    region=None,
    *,
    threshold: float = 0.5,
    **edit_kw,
) -> dict:
    """ROIR and masked MSE (`jaxedit.metrics.locality`) of a PandA edit against the same
    latents unedited (both through `edit`).

    ``region``: any region `jaxedit.regions.region_mask` accepts (bool mask, Box, preset,
    4-tuple) or None: the learned parts of the edit, `part_region` (union of every edit's
    parts) at ``threshold``. The result records the region's provenance under ``"region"``.
    ``edit_kw`` go to `edit` (``sampling=``, ``compute=``, ``key=``, ``drop_skip=`` ...).
    """
    from ...metrics import locality

    spec = _edit_spec(parts, appearances, strengths, result.ranks[1], result.ranks[0])
    if region is None:
        union = sorted({k for ps, _, _ in spec for k in ps})
        region = part_region(result, union, threshold, gen=gen)
        how = f"panda parts {union} >= {threshold:g} (minmax-scaled, feature grid in the image)"
    else:
        how = region if isinstance(region, str) else f"given {type(region).__name__}"
    x0, x1 = edit(
        gen, latents, result, parts, appearances, strengths, return_original=True, **edit_kw
    )
    out: dict[str, Any] = locality(np.asarray(x0), np.asarray(x1), region)
    out["region"] = how
    out["edits"] = [{"parts": ps, "appearance": j, "strength": lam} for ps, j, lam in spec]
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = np.logical_and(a, b).sum(axis=(-2, -1))
    union = np.logical_or(a, b).sum(axis=(-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def part_iou(
    result: PandaResult,
    ground_truth,
    threshold: float = 0.5,
    *,
    parts_factors: Parts | None = None,
    resample: str = "lanczos",
    max_parts: int = 1,
) -> dict[str, dict]:
    """IoU of the best-matching learned part for every ground-truth part mask.

    Each learned part k, ``minmax01(P_k)`` (`part_map`), is brought to the ground truth's
    grid and thresholded ``>= threshold``: ``resample="lanczos"`` (default) upsamples the soft
    map with `lanczos_upsample` first, as the reference's saliency masks do;
    ``"nearest"`` thresholds at the feature grid (`part_region`) and resamples the binary
    mask by nearest neighbour. With per-sample masks ``[N, H', W']`` (or per-sample
    ``parts_factors [N, H, W, R_S]`` from `refine`) the IoU is averaged over the samples.

    ``max_parts > 1`` also searches unions of up to that many parts for each mask (a region made
    of several parts, e.g. both eyes): greedily, starting from the best part, adding the part
    that raises the IoU of the union of the thresholded masks most, while it rises.

    Args:
      ground_truth: ``{name: [H', W'] or [N, H', W'] bool}`` (e.g. ``toyfaces.part_masks``).
    Returns:
      ``{name: {"part": best k, "iou": its IoU, "ious": [R_S] every part's IoU}}``; with
      ``max_parts > 1`` also ``"parts"`` (the chosen union) and ``"union_iou"``.
    """
    _check_result(result)
    if isinstance(max_parts, bool) or not isinstance(max_parts, (int, np.integer)) or max_parts < 1:
        raise ValueError(f"max_parts must be a positive integer, got {max_parts!r}")
    if resample not in ("lanczos", "nearest"):
        raise ValueError(f"resample must be 'lanczos' or 'nearest', got {resample!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    pf = np.asarray(result.parts if parts_factors is None else parts_factors)
    r_s = result.ranks[1]
    maps = []
    for k in range(r_s):
        try:
            maps.append(part_map(pf, [k]))
        except ValueError:  # an all-zero part covers nothing
            maps.append(None)
    out = {}
    cache: dict[tuple[int, int], list] = {}
    for name, gt in dict(ground_truth).items():
        g = np.asarray(gt).astype(bool)
        if g.ndim not in (2, 3):
            raise ValueError(f"ground_truth[{name!r}] must be [H, W] or [N, H, W], got {g.shape}")
        hh, ww = g.shape[-2:]
        if (hh, ww) not in cache:
            masks = []
            for m in maps:
                if m is None:
                    masks.append(np.zeros(pf.shape[:-3] + (hh, ww), bool))
                elif resample == "lanczos":
                    masks.append(lanczos_upsample(m, (hh, ww)) >= threshold)
                else:
                    masks.append(_nearest(m >= threshold, hh, ww))
            cache[(hh, ww)] = masks
        masks = cache[(hh, ww)]
        ious = [float(np.mean(_iou(m, g))) for m in masks]
        best = int(np.argmax(ious))
        out[name] = {"part": best, "iou": ious[best], "ious": ious}
        if max_parts > 1:
            chosen, union, val = [best], masks[best], ious[best]
            while len(chosen) < min(max_parts, r_s):
                cand = [
                    (float(np.mean(_iou(union | masks[k], g))), k)
                    for k in range(r_s)
                    if k not in chosen
                ]
                v, k = max(cand)
                if v <= val:
                    break
                chosen, union, val = chosen + [k], union | masks[k], v
            out[name].update(parts=chosen, union_iou=val)
    return out
