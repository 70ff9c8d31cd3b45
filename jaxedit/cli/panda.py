"""``jaxedit panda ...``: learn PandA factors, render local edits, draw the parts and saliency masks.

jaxedit panda fit CKPT --layer b16.conv1 --ranks 64,8 --steps 2000 --seeds 0-999 --out factors.npz
jaxedit panda edit CKPT --factors factors.npz --parts 3 --appearance 5 --strength 30 --seeds 0-7 --out grid.png
jaxedit panda parts --factors factors.npz --out parts.png
jaxedit panda saliency CKPT --factors factors.npz --concept 0 --seeds 0-7 --out saliency.png
"""

from __future__ import annotations

import argparse
import colorsys
import os
import re
from typing import Any

import numpy as np

from . import _generators
from ._common import (
    CLIError,
    add_output_args,
    check_output,
    examples,
    finite_float,
    nonneg_int,
    parse_alphas,
    positive_float,
    positive_int,
    seed_list,
    setup_x64,
)
from ._generators import (
    DEFAULT_CHECKPOINT,
    check_grid,
    ckpt_label,
    read_latents,
    seed_latents,
    slug,
)

#: Largest number of part indices ``--parts`` may sum (a region is a handful of parts).
MAX_PARTS = 4096


def _ranks(text: str) -> tuple[int | None, int]:
    """``"64,8"`` -> (64, 8); ``"all,8"`` -> (None, 8) (R_C = C)."""
    parts = [p.strip() for p in str(text).split(",")]
    usage = (
        f"must be R_C,R_S (positive integers; R_C may be 'all'), e.g. 64,8 or all,8, got {text!r}"
    )
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(usage)
    try:
        r_c = None if parts[0] == "all" else int(parts[0])
        r_s = int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(usage) from None
    if (r_c is not None and r_c < 1) or r_s < 1:
        raise argparse.ArgumentTypeError(usage)
    return r_c, r_s


_ranks.__name__ = "ranks"


def _index_list(text: str) -> list[int]:
    """``"3"`` / ``"1,8"`` -> part indices (summed into one region)."""
    try:
        vals = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be part indices like 3 or 1,8, got {text!r}"
        ) from None
    if not vals or min(vals) < 0:
        raise argparse.ArgumentTypeError(f"must be part indices >= 0 like 3 or 1,8, got {text!r}")
    if len(vals) > MAX_PARTS:
        raise argparse.ArgumentTypeError(f"at most {MAX_PARTS} part indices, got {len(vals)}")
    return vals


_index_list.__name__ = "part indices"


def _layer(text: str) -> str | int:
    """A conv layer name (``b16.conv1``) or the reference's index L (an integer >= 1)."""
    t = str(text).strip()
    if not t:
        raise argparse.ArgumentTypeError("must be a layer name like b16.conv1 or an index >= 1")
    if t.lstrip("+-").isdigit():
        v = int(t)
        if v < 1:
            raise argparse.ArgumentTypeError(
                f"the reference's layer index must be >= 1, got {text!r}"
            )
        return v
    return t


_layer.__name__ = "layer"


def _load_gen(path: str):
    """A StyleGAN2 / StyleGAN3 generator from a checkpoint argument (``default`` = the
    embedded one): latents are ws."""
    gen = _generators.load_generator(path)
    if not gen.has_styles:  # the commands draw ws from seeds
        raise CLIError(
            f"{path}: 'jaxedit panda' supports StyleGAN2 / StyleGAN3 checkpoints (split points "
            f"b4.conv1 .. / L0_.. ..); this one is a {gen.display_name} (use "
            "jaxedit.panda.fit_generator in Python)"
        )
    return gen


def _in_image(gen, layer: str, maps, axes: tuple[int, int] = (-2, -1)):
    """Maps on ``layer``'s feature grid cut to the image (StyleGAN3's margins): ``axes`` are
    the grid's (h, w) axes."""
    m = gen.feature_margin(layer)
    if not m:
        return maps
    idx = [slice(None)] * np.ndim(maps)
    for a in axes:
        idx[a] = slice(m, np.shape(maps)[a] - m)
    return maps[tuple(idx)]


def _ws(gen, seeds, psi: float):
    if gen.uses_class:
        raise CLIError(
            "this generator is conditional; 'jaxedit panda' supports unconditional "
            "StyleGAN2 / StyleGAN3s (use jaxedit.panda.fit_generator(..., "
            "sampling=jaxedit.Sampling(c=...)) in Python)"
        )
    return np.asarray(gen.mapping(seed_latents(gen, seeds), None, psi))


def _check_grid(n: int, res: int, what: str, hint: str) -> None:
    check_grid(n, res, 3, what, hint)


def _load_factors(path: str):
    from ..methods import panda

    return panda.load(path)


def _palette(n: int) -> np.ndarray:
    """n distinct colours (uint8 [n, 3]): evenly spaced hues, alternating brightness."""
    cols = [
        colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.85, 1.0 if i % 2 == 0 else 0.75)
        for i in range(n)
    ]
    return (np.asarray(cols) * 255).round().astype(np.uint8)


def _resize_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """[..., h, w] floats in [0, 1] -> [..., size, size] (bilinear, PIL)."""
    from PIL import Image

    m = np.asarray(maps, np.float32)
    flat = m.reshape((-1,) + m.shape[-2:])
    filters: Any = getattr(Image, "Resampling", Image)  # Pillow < 9.1: on Image
    bil = filters.BILINEAR
    out = np.stack(
        [np.asarray(Image.fromarray(f, mode="F").resize((size, size), bil)) for f in flat]
    )
    return np.clip(out.reshape(m.shape[:-2] + (size, size)), 0.0, 1.0)


def parts_overlay(images_u8: np.ndarray, parts: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    """Colour every pixel by its strongest part: images [N, H, W, 3] uint8, parts [h, w, R_S] (or
    per sample [N, h, w, R_S]) -> [N, H, W, 3] uint8, opacity ``alpha · max_k minmax01(P_k)``."""
    from ..methods.panda import part_map

    n, size = images_u8.shape[0], images_u8.shape[1]
    r_s = parts.shape[-1]
    maps = []
    for k in range(r_s):
        try:
            maps.append(part_map(parts, [k]))
        except ValueError:  # an all-zero part: nothing to draw
            maps.append(np.zeros(parts.shape[:-1]))
    m = _resize_maps(np.stack(maps, axis=-3), size)  # [(N,) R_S, H, W]
    if m.ndim == 3:
        m = np.broadcast_to(m[None], (n,) + m.shape)
    label = np.argmax(m, axis=1)  # [N, H, W]
    strength = np.max(m, axis=1)[..., None] * alpha
    col = _palette(r_s)[label].astype(np.float64)
    out = images_u8.astype(np.float64) * (1 - strength) + col * strength
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def _tint(images_u8: np.ndarray, mask: np.ndarray, color=(255, 0, 0), alpha: float = 0.5):
    """Blend ``color`` into images [N, H, W, 3] where mask [N, H, W] (float in [0, 1] or bool)."""
    m = np.asarray(mask, np.float64)[..., None] * alpha
    out = images_u8.astype(np.float64) * (1 - m) + np.asarray(color, np.float64) * m
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def _save_grid(columns: list[np.ndarray], path: str, overwrite: bool) -> str:
    """columns: each [N, H, W, 3] uint8 -> PNG with one row per sample."""
    from ..images import image_grid, save_png

    stack = np.stack(columns, axis=1)  # [N, cols, H, W, 3]
    n, cols = stack.shape[:2]
    return save_png(
        image_grid(stack.reshape((n * cols,) + stack.shape[2:]), cols), path, overwrite=overwrite
    )


# ------------------------------------------------------------------------------------------------
def _cmd_fit(args) -> int:
    setup_x64(args)
    import dataclasses

    import jax

    from ..methods import panda
    from ..sampling import Sampling

    if args.out is not None:
        check_output(args.out, args.force)
    if args.optimizer == "pgd" and args.lr is None:
        raise CLIError(
            "--optimizer pgd needs --lr (plain gradient descent on the summed loss: the "
            "reference uses 1e-8 .. 1e-6, tuned per layer); the default adam needs none"
        )
    gen = _load_gen(args.ckpt)
    try:
        layer = panda.resolve_layer(gen, args.layer)
    except ValueError as e:
        raise CLIError(f"--layer: {e}") from None
    if args.out is None:
        args.out = f"panda_{slug(layer)}.npz"
    out = check_output(args.out, args.force)
    c = gen.feature_shape(layer)[2]
    r_c, r_s = args.ranks
    r_c = c if r_c is None else r_c
    if r_c > c:
        raise CLIError(
            f"--ranks {r_c},{r_s}: R_C = {r_c} is more than the {c} channels of {layer} "
            f"(use 'all' for R_C = C)"
        )
    latents, how = None, "a fresh reference-style sample batch every step"
    if args.latents is not None:
        latents = read_latents(gen, args.latents, "w")
        if latents.ndim == 2:
            latents = np.broadcast_to(
                latents[:, None], (latents.shape[0], gen.num_ws, latents.shape[1])
            )
        how = f"{latents.shape[0]} latents from {args.latents}"
    elif args.seeds is not None:
        how = f"{len(args.seeds)} seeds {args.seeds[0]}..{args.seeds[-1]}"
    n_pool = (
        len(args.seeds)
        if args.seeds is not None
        else (latents.shape[0] if latents is not None else None)
    )
    if args.batch_size is not None and n_pool is not None and args.batch_size > n_pool:
        raise CLIError(f"--batch-size {args.batch_size} is more than the {n_pool} samples")
    if gen.uses_class:
        raise CLIError(
            "this generator is conditional; 'jaxedit panda fit' supports unconditional "
            "StyleGAN2 / StyleGAN3s (use jaxedit.panda.fit_generator(..., "
            "sampling=jaxedit.Sampling(c=...)) in Python)"
        )
    print(
        f"PandA at {layer}: ranks R_C={r_c}, R_S={r_s}, {args.steps} steps ({args.optimizer}), "
        f"{how}"
    )
    res = panda.fit_generator(
        gen,
        layer,
        (r_c, r_s),
        args.steps,
        seeds=args.seeds if latents is None else None,
        latents=latents,
        minibatch_size=args.batch_size,
        sampling=Sampling(truncation_psi=args.psi),
        optimizer=args.optimizer,
        learning_rate=args.lr,
        init_appearance=args.init,
        hosvd_samples=args.hosvd_samples,
        key=jax.random.key(args.key),
        progress=True,
        max_cache_bytes=int(args.max_cache_gib * 2**30),
    )
    res = dataclasses.replace(res, settings={**res.settings, "checkpoint": ckpt_label(args.ckpt)})
    rel = res.relative_losses
    final = float(np.mean(rel[-max(len(rel) // 20, 1) :]))
    print(
        f"loss {res.losses[0]:.6g} -> {res.losses[-1]:.6g}; unexplained feature energy "
        f"{rel[0]:.4f} -> {final:.4f} (mean of the last 5% of steps)"
        + ("" if res.converged else "  [not converged: see the warning]")
    )
    print(
        f"wrote {panda.save(res, out, overwrite=args.force)}: appearance "
        f"{list(res.appearance.shape)}, parts {list(res.parts.shape)}"
    )
    return 0


def _cmd_edit(args) -> int:
    setup_x64(args)
    from ..images import to_uint8
    from ..methods import panda

    if args.out is None:
        args.out = f"panda_edit_p{'-'.join(map(str, args.parts))}_a{args.appearance}.png"
    out = check_output(args.out, args.force)
    res = _load_factors(args.factors)
    if res.layer is None:
        raise CLIError(
            f"{args.factors} records no layer (factors from panda.fit on features): "
            "edit them in Python with panda.edit(..., layer=...)"
        )
    try:
        panda.edit_direction(res, [args.parts], [args.appearance], [0.0])  # index checks, early
    except ValueError as e:
        raise CLIError(f"--parts / --appearance: {e}") from None
    gen = _load_gen(args.ckpt)
    n_cols = len(args.strength) + (0 if args.no_original else 1) + (0 if args.no_part else 1)
    _check_grid(
        len(args.seeds) * n_cols,
        gen.resolution,
        "panda edit",
        "use fewer --seeds or --strength values",
    )
    ws = _ws(gen, args.seeds, args.psi)
    parts_factors = None
    if args.refine_steps:
        feats = gen.features_at(ws, res.layer).x
        parts_factors = panda.refine(res, feats, steps=args.refine_steps)
    cols = []
    orig = None
    for lam in args.strength:
        x0, x1 = panda.edit(
            gen,
            ws,
            res,
            [args.parts],
            [args.appearance],
            [lam],
            parts_factors=parts_factors,
            drop_skip=args.drop_skip,
            return_original=True,
        )
        orig = to_uint8(x0) if orig is None else orig
        cols.append(to_uint8(x1))
    assert orig is not None  # --strength takes one value or more
    columns = ([orig] if not args.no_original else []) + cols
    if not args.no_part:
        pf = res.parts if parts_factors is None else np.asarray(parts_factors)
        m = _in_image(gen, res.layer, panda.part_map(pf, args.parts))
        m = _resize_maps(
            m if m.ndim == 3 else np.broadcast_to(m, (len(ws),) + m.shape), orig.shape[1]
        )
        columns.append(_tint(orig, m, alpha=0.6))
    path = _save_grid(columns, out, args.force)
    print(
        f"wrote {path}: rows = seeds {args.seeds}, columns = "
        + ("original, " if not args.no_original else "")
        + f"strengths {args.strength}"
        + ("" if args.no_part else ", part region")
    )
    return 0


def _cmd_parts(args) -> int:
    setup_x64(args)
    from ..images import to_uint8

    out = check_output(args.out, args.force)
    res = _load_factors(args.factors)
    ckpt = args.ckpt or res.settings.get("checkpoint")
    pal = _palette(res.ranks[1])
    if ckpt and (os.path.exists(ckpt) or ckpt == DEFAULT_CHECKPOINT):
        gen = _load_gen(ckpt)
        if res.layer is not None:
            h, w, c = gen.features_at(_ws(gen, args.seeds[:1], args.psi), res.layer).x.shape[1:]
            if (h, w, c) != res.feature_shape:
                raise CLIError(
                    f"{ckpt}: layer {res.layer} has features {[h, w, c]} but the "
                    f"factors were learned on {list(res.feature_shape)}"
                )
        _check_grid(2 * len(args.seeds), gen.resolution, "panda parts", "use fewer --seeds")
        imgs = to_uint8(gen.synthesis(_ws(gen, args.seeds, args.psi)))
        parts = res.parts if res.layer is None else _in_image(gen, res.layer, res.parts, (0, 1))
        path = _save_grid([imgs, parts_overlay(imgs, parts)], out, args.force)
        what = f"rows = seeds {args.seeds}, columns = image, parts overlay"
    else:
        if args.ckpt:
            raise CLIError(f"--ckpt {args.ckpt}: no such checkpoint")
        if ckpt:
            print(
                f"note: checkpoint {ckpt} (recorded in the factors) not found; drawing the "
                "parts alone"
            )
        blank = np.zeros((1, args.size, args.size, 3), np.uint8)
        path = _save_grid([parts_overlay(blank, res.parts, alpha=1.0)], out, args.force)
        what = "the parts alone (no checkpoint: pass --ckpt to overlay them on samples)"
    print(f"wrote {path}: {what}")
    for k in range(res.ranks[1]):
        print(f"  part {k}: rgb{tuple(int(v) for v in pal[k])}")
    return 0


def _cmd_saliency(args) -> int:
    setup_x64(args)
    from ..images import to_uint8
    from ..methods import panda

    if args.out is None:
        args.out = f"panda_saliency_{args.concept}.png"
    out = check_output(args.out, args.force)
    masks_out = check_output(args.masks_out, args.force) if args.masks_out else None
    if masks_out is not None and os.path.realpath(masks_out) == os.path.realpath(out):
        raise CLIError("--masks-out and --out name the same file")
    res = _load_factors(args.factors)
    if not 0 <= args.concept < res.ranks[0]:
        raise CLIError(
            f"--concept {args.concept} out of range: the factors have R_C = "
            f"{res.ranks[0]} appearances (0..{res.ranks[0] - 1})"
        )
    if res.layer is None:
        raise CLIError(
            f"{args.factors} records no layer (factors from panda.fit on features): "
            "use panda.saliency_masks in Python"
        )
    gen = _load_gen(args.ckpt)
    _check_grid(3 * len(args.seeds), gen.resolution, "panda saliency", "use fewer --seeds")
    ws = _ws(gen, args.seeds, args.psi)
    state = gen.features_at(ws, res.layer)
    if tuple(state.x.shape[1:]) != res.feature_shape:
        raise CLIError(
            f"{args.ckpt}: layer {res.layer} has features {list(state.x.shape[1:])} but "
            f"the factors were learned on {list(res.feature_shape)}"
        )
    imgs = to_uint8(gen.resume_at(state))
    x = _in_image(gen, res.layer, state.x, (1, 2))  # saliency is per pixel: the image's pixels
    thr_seeds = args.threshold_seeds or args.seeds
    if args.threshold_seeds:
        coords_t = []
        for i in range(0, len(thr_seeds), 64):  # bounded memory
            f = gen.features_at(_ws(gen, thr_seeds[i : i + 64], args.psi), res.layer).x
            f = _in_image(gen, res.layer, f, (1, 2))
            coords_t.append(np.asarray(panda.saliency(res, f))[..., args.concept])
        coords_t = np.concatenate(coords_t)
    else:
        coords_t = np.asarray(panda.saliency(res, x))[..., args.concept]
    thr = np.asarray([coords_t.mean()])
    lo, hi = float(coords_t.min()), float(coords_t.max())
    size = imgs.shape[1]
    masks = panda.saliency_masks(res, x, size, [args.concept], thresholds=thr)[..., 0]
    coords = np.asarray(panda.saliency(res, x))[..., args.concept]
    heat = panda.lanczos_upsample((coords - lo) / max(hi - lo, 1e-30), size)
    heat_u8 = np.repeat(np.clip(heat * 255, 0, 255).round().astype(np.uint8)[..., None], 3, axis=-1)
    path = _save_grid([imgs, heat_u8, _tint(imgs, masks, alpha=0.55)], out, args.force)
    print(
        f"wrote {path}: rows = seeds {args.seeds}, columns = image, saliency of appearance "
        f"{args.concept} (min/max over {len(thr_seeds)} samples), mask >= {thr[0]:.5g} (mean "
        f"over {len(thr_seeds)} samples)"
    )
    if masks_out:
        from .._io import save_npz

        written = save_npz(
            masks_out,
            overwrite=args.force,
            masks=masks,
            threshold=thr[0],
            concept=args.concept,
            seeds=np.asarray(args.seeds),
            factors=os.path.abspath(args.factors),
        )
        print(f"wrote {written}: masks {list(masks.shape)}")
    return 0


# ------------------------------------------------------------------------------------------------
_EX_FIT = (
    "jaxedit panda fit ckpt/ --layer b16.conv1 --ranks 64,8 --steps 2000 --seeds 0-999 "
    "--out factors.npz",
    "jaxedit panda fit ckpt/ --layer 5 --optimizer pgd --lr 1e-8 --steps 10000   # the "
    "reference's loop",
)
_EX_EDIT = (
    "jaxedit panda edit ckpt/ --factors factors.npz --parts 3 --appearance 5 --strength 30 "
    "--seeds 0-7 --out grid.png",
    "jaxedit panda edit ckpt/ --factors factors.npz --parts 1,8 --appearance 2 --strength -40:40:5",
)
_EX_PARTS = ("jaxedit panda parts --factors factors.npz --out parts.png",)
_EX_SAL = (
    "jaxedit panda saliency ckpt/ --factors factors.npz --concept 0 --threshold-seeds 0-499",
)


def register(subparsers) -> None:
    """Add ``panda fit | edit | parts | saliency`` to the ``jaxedit`` parser."""
    top = subparsers.add_parser(
        "panda",
        help="PandA: non-negative parts x appearances of one layer's features, local "
        "edits, saliency masks",
        description="PandA (Oldfield et al., ICLR 2023) on StyleGAN2 / StyleGAN3 layers: learn parts and "
        "appearances (fit), render local edits (edit), draw the parts (parts), "
        "saliency maps and masks of an appearance (saliency).",
        epilog=examples(*(_EX_FIT[:1] + _EX_EDIT[:1] + _EX_PARTS + _EX_SAL)),
    )
    sub = top.add_subparsers(
        dest="panda_command", required=True, metavar="{fit,edit,parts,saliency}"
    )

    f = sub.add_parser(
        "fit",
        help="learn PandA factors at one StyleGAN2 / 3 layer -> .npz",
        epilog=examples(*_EX_FIT),
    )
    f.add_argument(
        "ckpt",
        help="generator checkpoint (converted dir, NVIDIA .pkl, rosinality .pt, or 'default')",
    )
    f.add_argument(
        "--layer",
        type=_layer,
        required=True,
        help="split layer: a conv name like b16.conv1 (see 'jaxedit layers'), or the "
        "reference's index L (features after convs 0..L-1)",
    )
    f.add_argument(
        "--ranks",
        type=_ranks,
        default=_ranks("all,8"),
        help="R_C,R_S: appearances (or 'all' = C) and parts (default: all,8; the "
        "reference uses 512,8 or 512,16)",
    )
    f.add_argument("--steps", type=positive_int, default=1000, help="optimizer steps")
    src = f.add_mutually_exclusive_group()
    src.add_argument(
        "--seeds",
        type=seed_list,
        default=None,
        help="pool of NVIDIA seeds, e.g. 0-999 (default: a fresh reference-style "
        "batch every step, z = RandomState(step).randn(B, z_dim))",
    )
    src.add_argument(
        "--latents",
        default=None,
        metavar="NPY",
        help=".npy of ws [N, num_ws, w_dim] or w [N, w_dim] instead of seeds",
    )
    f.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="samples per step (default: the whole pool, i.e. full gradient; 1 in "
        "the fresh-batch mode)",
    )
    f.add_argument(
        "--optimizer",
        choices=("adam", "pgd"),
        default="adam",
        help="adam (no tuning: peak lr 0.05 in natural units) or pgd (the "
        "reference's projected gradient descent on the summed loss; needs --lr)",
    )
    f.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="learning rate (adam: relative peak, default 0.05; pgd: required, raw, e.g. 1e-6)",
    )
    f.add_argument(
        "--init",
        choices=("hosvd", "random"),
        default="hosvd",
        help="appearance init: HOSVD of the channel scatter (reference) or random",
    )
    f.add_argument(
        "--hosvd-samples",
        type=positive_int,
        default=1000,
        help="samples for the HOSVD init when streaming (the reference uses 1000)",
    )
    f.add_argument("--psi", type=finite_float, default=1.0, help="truncation psi (reference: 1.0)")
    f.add_argument(
        "--key",
        type=nonneg_int,
        default=0,
        help="PRNG seed for the parts init and the mini-batches (default: 0)",
    )
    f.add_argument(
        "--max-cache-gib",
        type=positive_float,
        default=1.0,
        help="keep the pool's features in memory up to this size (GiB), else stream them",
    )
    f.add_argument("--x64", action="store_true", help="compute in float64")
    add_output_args(f, None, "the factors (.npz; default panda_<layer>.npz)")
    f.set_defaults(fn=_cmd_fit)

    e = sub.add_parser(
        "edit", help="local edits with learned factors -> PNG grid", epilog=examples(*_EX_EDIT)
    )
    e.add_argument("ckpt", help="the generator the factors were learned on (or 'default')")
    e.add_argument("--factors", required=True, help="factors .npz from 'jaxedit panda fit'")
    e.add_argument(
        "--parts",
        type=_index_list,
        required=True,
        help="part index, or several summed into one region (e.g. 3 or 1,8)",
    )
    e.add_argument("--appearance", type=nonneg_int, required=True, help="appearance index")
    # let "--strength -30,30" parse: such values count as negative numbers, not options
    e._negative_number_matcher = re.compile(r"^-\d[\d.:,eE+-]*$|^-\.\d[\d.:,eE+-]*$")
    e.add_argument(
        "--strength",
        type=parse_alphas,
        required=True,
        help="λ: one value, a comma list or START:STOP:COUNT (one column each)",
    )
    e.add_argument("--seeds", type=seed_list, default=seed_list("0-7"), help="NVIDIA seeds to edit")
    e.add_argument("--psi", type=finite_float, default=1.0, help="truncation psi (reference: 1.0)")
    e.add_argument(
        "--drop-skip",
        action="store_true",
        help="restart the skip image at the layer, as the reference's genforce port "
        "(default: keep it, so strength 0 is the unedited image)",
    )
    e.add_argument(
        "--refine-steps",
        type=nonneg_int,
        default=0,
        help="refine the parts per sample first (default Adam, this many steps; 0 = off)",
    )
    e.add_argument("--no-original", action="store_true", help="omit the original-image column")
    e.add_argument("--no-part", action="store_true", help="omit the part-region column")
    e.add_argument("--x64", action="store_true", help="compute in float64")
    add_output_args(e, None, "the grid (.png; default panda_edit_p<parts>_a<appearance>.png)")
    e.set_defaults(fn=_cmd_edit)

    p = sub.add_parser(
        "parts",
        help="draw the learned parts as a coloured overlay -> PNG",
        epilog=examples(*_EX_PARTS),
    )
    p.add_argument("--factors", required=True, help="factors .npz from 'jaxedit panda fit'")
    p.add_argument(
        "--ckpt",
        default=None,
        help="generator for the sample images (default: the one recorded in the factors)",
    )
    p.add_argument(
        "--seeds",
        type=seed_list,
        default=seed_list("0-3"),
        help="NVIDIA seeds of the sample images",
    )
    p.add_argument("--psi", type=finite_float, default=1.0, help="truncation psi")
    p.add_argument(
        "--size", type=positive_int, default=128, help="image side when there is no checkpoint"
    )
    p.add_argument("--x64", action="store_true", help="compute in float64")
    add_output_args(p, "panda_parts.png", "the overlay grid (.png)")
    p.set_defaults(fn=_cmd_parts)

    s = sub.add_parser(
        "saliency", help="saliency map and mask of one appearance -> PNG", epilog=examples(*_EX_SAL)
    )
    s.add_argument("ckpt", help="the generator the factors were learned on (or 'default')")
    s.add_argument("--factors", required=True, help="factors .npz from 'jaxedit panda fit'")
    s.add_argument(
        "--concept",
        type=nonneg_int,
        required=True,
        help="appearance index k (the map is (Aᵀ Z)[k])",
    )
    s.add_argument("--seeds", type=seed_list, default=seed_list("0-7"), help="NVIDIA seeds to show")
    s.add_argument(
        "--threshold-seeds",
        type=seed_list,
        default=None,
        help="seeds whose mean coordinate sets the mask threshold (the reference uses "
        "500: 0-499; default: the shown seeds)",
    )
    s.add_argument("--psi", type=finite_float, default=1.0, help="truncation psi")
    s.add_argument(
        "--masks-out",
        default=None,
        metavar="PATH",
        help="also write the masks (.npz; kept if it exists, unless --force)",
    )
    s.add_argument("--x64", action="store_true", help="compute in float64")
    add_output_args(s, None, "the grid (.png; default panda_saliency_<concept>.png)")
    s.set_defaults(fn=_cmd_saliency)
