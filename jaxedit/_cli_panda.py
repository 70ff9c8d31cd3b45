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

import numpy as np

# Local validators (the shared ones in jaxedit.cli / jaxedit._io are being written on another
# branch; these are swapped for them at merge).


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be finite and > 0, got {text!r}")
    return v


def _psi(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return v


def _ranks(text: str) -> tuple[int | None, int]:
    """``"64,8"`` -> (64, 8); ``"all,8"`` -> (None, 8) (R_C = C)."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"ranks must be R_C,R_S (e.g. 64,8 or all,8), got {text!r}")
    try:
        r_c = None if parts[0] == "all" else int(parts[0])
        r_s = int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"ranks must be R_C,R_S integers (R_C may be 'all'), got "
                                         f"{text!r}") from None
    if (r_c is not None and r_c < 1) or r_s < 1:
        raise argparse.ArgumentTypeError(f"ranks must be positive, got {text!r}")
    return r_c, r_s


def _index_list(text: str) -> list[int]:
    """``"3"`` / ``"1,8"`` -> part indices (summed into one region)."""
    try:
        vals = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of part indices: {text!r} (e.g. 3 or 1,8)") from None
    if not vals or min(vals) < 0:
        raise argparse.ArgumentTypeError(f"part indices must be >= 0, got {text!r}")
    return vals


def _strengths(text: str) -> list[float]:
    from .cli import parse_alphas

    vals = parse_alphas(text)
    if not all(np.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"strengths must be finite, got {text!r}")
    return vals


def _out(path: str, force: bool, suffix: str) -> str:
    """Check an output path: the right suffix, and no silent overwrite."""
    if not str(path).lower().endswith(suffix):
        raise ValueError(f"--out {path!r} must end in {suffix}")
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path} exists: pass --force to replace it")
    if os.path.isdir(path):
        raise ValueError(f"--out {path!r} is a directory")
    return path


def _seeds_arg(p, default: str | None, helptext: str) -> None:
    from .cli import parse_int_list

    p.add_argument("--seeds", type=parse_int_list,
                   default=None if default is None else parse_int_list(default), help=helptext)


def _setup_x64(args) -> None:
    if getattr(args, "x64", False):
        import jax

        jax.config.update("jax_enable_x64", True)


def _load_gen(path: str):
    from .checkpoint import load_generator

    gen = load_generator(path)
    if not hasattr(gen, "synthesis_split"):
        raise ValueError(f"{path}: PandA in jaxedit supports StyleGAN2 checkpoints (split points "
                         f"b4.conv1 .. ); this one is a {type(gen).__name__}")
    return gen


def _ws(gen, seeds, psi: float):
    from .models.stylegan2 import seed_to_z

    z = np.concatenate([seed_to_z(s, gen.z_dim) for s in seeds])
    return np.asarray(gen.mapping(z, None, psi))


def _load_factors(path: str):
    from . import panda

    return panda.load(path)


def _palette(n: int) -> np.ndarray:
    """n distinct colours (uint8 [n, 3]): evenly spaced hues, alternating brightness."""
    cols = [colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.85, 1.0 if i % 2 == 0 else 0.75)
            for i in range(n)]
    return (np.asarray(cols) * 255).round().astype(np.uint8)


def _resize_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """[..., h, w] floats in [0, 1] -> [..., size, size] (bilinear, PIL)."""
    from PIL import Image

    m = np.asarray(maps, np.float32)
    flat = m.reshape((-1,) + m.shape[-2:])
    bil = getattr(Image, "Resampling", Image).BILINEAR
    out = np.stack([np.asarray(Image.fromarray(f, mode="F").resize((size, size), bil)) for f in flat])
    return np.clip(out.reshape(m.shape[:-2] + (size, size)), 0.0, 1.0)


def parts_overlay(images_u8: np.ndarray, parts: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    """Colour every pixel by its strongest part: images [N, H, W, 3] uint8, parts [h, w, R_S] (or
    per sample [N, h, w, R_S]) -> [N, H, W, 3] uint8, opacity ``alpha · max_k minmax01(P_k)``."""
    from .panda import part_map

    n, size = images_u8.shape[0], images_u8.shape[1]
    r_s = parts.shape[-1]
    maps = []
    for k in range(r_s):
        try:
            maps.append(part_map(parts, [k]))
        except ValueError:                       # an all-zero part: nothing to draw
            maps.append(np.zeros(parts.shape[:-1]))
    m = _resize_maps(np.stack(maps, axis=-3), size)          # [(N,) R_S, H, W]
    if m.ndim == 3:
        m = np.broadcast_to(m[None], (n,) + m.shape)
    label = np.argmax(m, axis=1)                             # [N, H, W]
    strength = np.max(m, axis=1)[..., None] * alpha
    col = _palette(r_s)[label].astype(np.float64)
    out = images_u8.astype(np.float64) * (1 - strength) + col * strength
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def _tint(images_u8: np.ndarray, mask: np.ndarray, color=(255, 0, 0), alpha: float = 0.5):
    """Blend ``color`` into images [N, H, W, 3] where mask [N, H, W] (float in [0, 1] or bool)."""
    m = np.asarray(mask, np.float64)[..., None] * alpha
    out = images_u8.astype(np.float64) * (1 - m) + np.asarray(color, np.float64) * m
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def _save_grid(columns: list[np.ndarray], path: str) -> str:
    """columns: each [N, H, W, 3] uint8 -> PNG with one row per sample."""
    from .images import image_grid, save_png

    stack = np.stack(columns, axis=1)                        # [N, cols, H, W, 3]
    n, cols = stack.shape[:2]
    return save_png(image_grid(stack.reshape((n * cols,) + stack.shape[2:]), cols), path)


# ------------------------------------------------------------------------------------------------
def _cmd_fit(args) -> int:
    _setup_x64(args)
    import jax

    from . import panda

    out = _out(args.out, args.force, ".npz")
    gen = _load_gen(args.ckpt)
    layer = panda.resolve_layer(gen, args.layer)
    c = gen.config.channels_at(int(layer.split(".")[0][1:]))
    r_c, r_s = args.ranks
    r_c = c if r_c is None else r_c
    if args.latents is not None and args.seeds is not None:
        raise ValueError("pass --seeds or --latents, not both")
    latents = None
    if args.latents is not None:
        latents = np.load(args.latents, allow_pickle=False)
        if latents.ndim == 2:
            latents = np.broadcast_to(latents[:, None], (latents.shape[0], gen.num_ws, latents.shape[1]))
    optimizer = args.optimizer
    if optimizer == "pgd" and args.lr is None:
        raise ValueError("--optimizer pgd needs --lr (the reference uses 1e-8 .. 1e-6, tuned per layer)")
    how = (f"seeds {args.seeds[0]}..{args.seeds[-1]} ({len(args.seeds)})" if args.seeds is not None
           else f"latents from {args.latents}" if latents is not None
           else "a fresh reference-style sample batch every step")
    print(f"PandA at {layer}: ranks R_C={r_c}, R_S={r_s}, {args.steps} steps ({optimizer}), {how}")
    res = panda.fit_generator(
        gen, layer, (r_c, r_s), args.steps, seeds=args.seeds, latents=latents,
        batch_size=args.batch_size, truncation_psi=args.psi, optimizer=optimizer,
        learning_rate=args.lr, init_appearance=args.init, hosvd_samples=args.hosvd_samples,
        key=jax.random.key(args.key), progress=True, max_cache_bytes=int(args.max_cache_gib * 2**30))
    import dataclasses

    res = dataclasses.replace(res, settings={**res.settings, "checkpoint": os.path.abspath(args.ckpt)})
    rel = res.relative_losses
    final = float(np.mean(rel[-max(len(rel) // 20, 1):]))
    print(f"loss {res.losses[0]:.6g} -> {res.losses[-1]:.6g}; unexplained feature energy "
          f"{rel[0]:.4f} -> {final:.4f} (mean of the last 5% of steps)"
          + ("" if res.converged else "  [not converged: see the warning]"))
    print(f"wrote {panda.save(res, out)}: appearance {list(res.appearance.shape)}, parts "
          f"{list(res.parts.shape)}")
    return 0


def _cmd_edit(args) -> int:
    _setup_x64(args)
    from . import panda
    from .images import to_uint8

    out = _out(args.out, args.force, ".png")
    res = _load_factors(args.factors)
    panda.edit_direction(res, [args.parts], [args.appearance], [0.0])   # index checks, early
    gen = _load_gen(args.ckpt)
    ws = _ws(gen, args.seeds, args.psi)
    parts_factors = None
    if args.refine_steps:
        feats = gen.synthesis_split(ws, res.layer).x
        parts_factors = panda.refine(res, feats, steps=args.refine_steps)
    cols = []
    orig = None
    for lam in args.strength:
        x0, x1 = panda.edit(gen, ws, res, [args.parts], [args.appearance], [lam],
                            parts_factors=parts_factors, drop_skip=args.drop_skip,
                            return_original=True)
        orig = to_uint8(x0) if orig is None else orig
        cols.append(to_uint8(x1))
    columns = ([orig] if not args.no_original else []) + cols
    if not args.no_part:
        pf = res.parts if parts_factors is None else np.asarray(parts_factors)
        m = panda.part_map(pf, args.parts)
        m = _resize_maps(m if m.ndim == 3 else np.broadcast_to(m, (len(ws),) + m.shape), orig.shape[1])
        columns.append(_tint(orig, m, alpha=0.6))
    path = _save_grid(columns, out)
    print(f"wrote {path}: rows = seeds {args.seeds}, columns = "
          + ("original, " if not args.no_original else "")
          + f"strengths {args.strength}" + ("" if args.no_part else ", part region"))
    return 0


def _cmd_parts(args) -> int:
    _setup_x64(args)
    from .images import to_uint8

    out = _out(args.out, args.force, ".png")
    res = _load_factors(args.factors)
    ckpt = args.ckpt or res.settings.get("checkpoint")
    pal = _palette(res.ranks[1])
    if ckpt and os.path.exists(ckpt):
        gen = _load_gen(ckpt)
        imgs = to_uint8(gen.synthesis(_ws(gen, args.seeds, args.psi)))
        path = _save_grid([imgs, parts_overlay(imgs, res.parts)], out)
        what = f"rows = seeds {args.seeds}, columns = image, parts overlay"
    else:
        if ckpt:
            print(f"note: checkpoint {ckpt} not found; drawing the parts alone")
        blank = np.zeros((1, args.size, args.size, 3), np.uint8)
        path = _save_grid([parts_overlay(blank, res.parts, alpha=1.0)], out)
        what = "the parts alone (no checkpoint: pass --ckpt to overlay them on samples)"
    print(f"wrote {path}: {what}")
    for k in range(res.ranks[1]):
        print(f"  part {k}: rgb{tuple(int(v) for v in pal[k])}")
    return 0


def _cmd_saliency(args) -> int:
    _setup_x64(args)
    from . import panda
    from .images import to_uint8

    out = _out(args.out, args.force, ".png")
    masks_out = _out(args.masks_out, args.force, ".npz") if args.masks_out else None
    res = _load_factors(args.factors)
    if not 0 <= args.concept < res.ranks[0]:
        raise ValueError(f"--concept {args.concept} out of range: the factors have R_C = "
                         f"{res.ranks[0]} appearances")
    gen = _load_gen(args.ckpt)
    ws = _ws(gen, args.seeds, args.psi)
    state = gen.synthesis_split(ws, res.layer)
    imgs = to_uint8(gen.synthesis_resume(ws, state))
    thr_seeds = args.threshold_seeds or args.seeds
    if args.threshold_seeds:
        feats_t = gen.synthesis_split(_ws(gen, thr_seeds, args.psi), res.layer).x
        coords_t = np.asarray(panda.saliency(res, feats_t))[..., args.concept]
    else:
        coords_t = np.asarray(panda.saliency(res, state.x))[..., args.concept]
    thr = np.asarray([coords_t.mean()])
    lo, hi = float(coords_t.min()), float(coords_t.max())
    size = imgs.shape[1]
    masks = panda.saliency_masks(res, state.x, size, [args.concept], thresholds=thr)[..., 0]
    coords = np.asarray(panda.saliency(res, state.x))[..., args.concept]
    heat = panda.lanczos_upsample((coords - lo) / max(hi - lo, 1e-30), size)
    heat_u8 = np.repeat(np.clip(heat * 255, 0, 255).round().astype(np.uint8)[..., None], 3, axis=-1)
    path = _save_grid([imgs, heat_u8, _tint(imgs, masks, alpha=0.55)], out)
    print(f"wrote {path}: rows = seeds {args.seeds}, columns = image, saliency of appearance "
          f"{args.concept} (min/max over {len(thr_seeds)} samples), mask >= {thr[0]:.5g} (mean "
          f"over {len(thr_seeds)} samples)")
    if masks_out:
        from ._io import save_npz

        print(f"wrote {save_npz(masks_out, masks=masks, threshold=thr[0], concept=args.concept, seeds=np.asarray(args.seeds), factors=os.path.abspath(args.factors))}")
    return 0


# ------------------------------------------------------------------------------------------------
def register(subparsers) -> None:
    """Add ``panda fit | edit | parts | saliency`` to the ``jaxedit`` parser."""
    top = subparsers.add_parser("panda", help="PandA: non-negative parts x appearances of one "
                                "layer's features, local edits, saliency masks")
    sub = top.add_subparsers(dest="panda_command", required=True)

    f = sub.add_parser("fit", help="learn PandA factors at one StyleGAN2 layer -> factors.npz")
    f.add_argument("ckpt", help="generator checkpoint (converted dir, NVIDIA .pkl, rosinality .pt)")
    f.add_argument("--layer", required=True,
                   help="split layer: a conv name like b16.conv1, or the reference's index L "
                        "(features after convs 0..L-1)")
    f.add_argument("--ranks", type=_ranks, default=_ranks("all,8"),
                   help="R_C,R_S: appearances (or 'all' = C) and parts (default all,8; the "
                        "reference uses 512,8 or 512,16)")
    f.add_argument("--steps", type=_positive_int, default=1000, help="optimizer steps (default 1000)")
    _seeds_arg(f, None, "pool of NVIDIA seeds, e.g. 0-999 (default: a fresh reference-style "
                        "batch every step, z = RandomState(step).randn(B, z_dim))")
    f.add_argument("--latents", default=None, help=".npy of ws [N, num_ws, w_dim] or w [N, w_dim] "
                                                   "instead of seeds")
    f.add_argument("--batch-size", type=_positive_int, default=None,
                   help="samples per step (default: the whole pool, i.e. full gradient; 1 in "
                        "the fresh-batch mode)")
    f.add_argument("--optimizer", choices=("adam", "pgd"), default="adam",
                   help="adam (default: no tuning, peak lr 0.05 in natural units) or pgd (the "
                        "reference's projected gradient descent on the summed loss; needs --lr)")
    f.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (adam: relative peak, default 0.05; pgd: required, "
                        "raw, e.g. 1e-6)")
    f.add_argument("--init", choices=("hosvd", "random"), default="hosvd",
                   help="appearance init: HOSVD of the channel scatter (reference) or random")
    f.add_argument("--hosvd-samples", type=_positive_int, default=1000,
                   help="samples for the HOSVD init when streaming (default 1000, as the reference)")
    f.add_argument("--psi", type=_psi, default=1.0, help="truncation psi (reference: 1.0)")
    f.add_argument("--key", type=_nonneg_int, default=0, help="PRNG seed for the parts init and "
                                                              "mini-batches")
    f.add_argument("--max-cache-gib", type=_positive_float, default=1.0,
                   help="keep the pool's features in memory up to this size, else stream them "
                        "(default 1 GiB)")
    f.add_argument("--x64", action="store_true", help="compute in float64")
    f.add_argument("--out", required=True, help="output factors (.npz)")
    f.add_argument("--force", action="store_true", help="replace --out if it exists")
    f.set_defaults(fn=_cmd_fit)

    e = sub.add_parser("edit", help="local edits with learned factors -> PNG grid")
    e.add_argument("ckpt", help="the generator the factors were learned on")
    e.add_argument("--factors", required=True, help="factors .npz from 'panda fit'")
    e.add_argument("--parts", type=_index_list, required=True,
                   help="part index, or several summed into one region (e.g. 3 or 1,8)")
    e.add_argument("--appearance", type=_nonneg_int, required=True, help="appearance index")
    # let "--strength -30,30" parse: such values count as negative numbers, not options
    e._negative_number_matcher = re.compile(r"^-\d[\d.:,eE+-]*$|^-\.\d[\d.:,eE+-]*$")
    e.add_argument("--strength", type=_strengths, required=True,
                   help="λ: one value, a comma list or START:STOP:COUNT (one column each)")
    _seeds_arg(e, "0-7", "NVIDIA seeds to edit (default 0-7)")
    e.add_argument("--psi", type=_psi, default=1.0, help="truncation psi (reference: 1.0)")
    e.add_argument("--drop-skip", action="store_true",
                   help="restart the skip image at the layer, as the reference's genforce port "
                        "(default: keep it, so strength 0 is the unedited image)")
    e.add_argument("--refine-steps", type=_nonneg_int, default=0,
                   help="refine the parts per sample first (default Adam, this many steps; 0 = off)")
    e.add_argument("--no-original", action="store_true", help="omit the original-image column")
    e.add_argument("--no-part", action="store_true", help="omit the part-region column")
    e.add_argument("--x64", action="store_true", help="compute in float64")
    e.add_argument("--out", required=True, help="output grid (.png)")
    e.add_argument("--force", action="store_true", help="replace --out if it exists")
    e.set_defaults(fn=_cmd_edit)

    p = sub.add_parser("parts", help="draw the learned parts as a coloured overlay -> PNG")
    p.add_argument("--factors", required=True, help="factors .npz from 'panda fit'")
    p.add_argument("--ckpt", default=None,
                   help="generator for the sample images (default: the one recorded in the factors)")
    _seeds_arg(p, "0-3", "NVIDIA seeds of the sample images (default 0-3)")
    p.add_argument("--psi", type=_psi, default=1.0, help="truncation psi")
    p.add_argument("--size", type=_positive_int, default=128,
                   help="image side when there is no checkpoint (default 128)")
    p.add_argument("--x64", action="store_true", help="compute in float64")
    p.add_argument("--out", required=True, help="output image (.png)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(fn=_cmd_parts)

    s = sub.add_parser("saliency", help="saliency map and mask of one appearance -> PNG")
    s.add_argument("ckpt", help="the generator the factors were learned on")
    s.add_argument("--factors", required=True, help="factors .npz from 'panda fit'")
    s.add_argument("--concept", type=_nonneg_int, required=True,
                   help="appearance index k (the map is (Aᵀ Z)[k])")
    _seeds_arg(s, "0-7", "NVIDIA seeds to show (default 0-7)")
    from .cli import parse_int_list

    s.add_argument("--threshold-seeds", type=parse_int_list, default=None,
                   help="seeds whose mean coordinate sets the mask threshold (the reference uses "
                        "500: 0-499; default: the shown seeds)")
    s.add_argument("--psi", type=_psi, default=1.0, help="truncation psi")
    s.add_argument("--masks-out", default=None, help="also write the masks (.npz)")
    s.add_argument("--x64", action="store_true", help="compute in float64")
    s.add_argument("--out", required=True, help="output grid (.png)")
    s.add_argument("--force", action="store_true", help="replace existing outputs")
    s.set_defaults(fn=_cmd_saliency)
