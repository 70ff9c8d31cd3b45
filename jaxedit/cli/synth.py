"""``jaxedit synth``: a PNG grid (or one PNG per seed) from seeds."""

from __future__ import annotations

import os

import numpy as np

from . import _generators
from ._common import (
    CLIError,
    add_output_args,
    check_output,
    examples,
    finite_float,
    nonneg_int,
    positive_int,
    seed_list,
)
from ._generators import (
    CKPT_HELP,
    add_class_arg,
    add_truncation_args,
    biggan_z,
    check_family_options,
    check_grid,
    class_vectors,
    psi_of,
    seed_latents,
    truncation_of,
)


def _cmd_synth(args) -> int:
    import jax

    from .._io import progress
    from ..images import image_grid, save_png, to_uint8

    seeds = list(args.seeds)
    if args.outdir is not None:
        if os.path.exists(args.outdir) and not os.path.isdir(args.outdir):
            raise CLIError(f"--outdir {args.outdir} exists and is not a directory")
        parent = os.path.dirname(os.path.abspath(args.outdir))
        if not os.path.isdir(parent):
            raise CLIError(f"--outdir {args.outdir}: the directory {parent} does not exist")
        outs = [os.path.join(args.outdir, f"seed{s:04d}.png") for s in seeds]
        if os.path.isdir(args.outdir):
            for o in outs:
                check_output(o, args.force)
    else:
        check_output(args.out, args.force)
    gen = _generators.load_generator(args.ckpt, which=args.which)
    check_family_options(gen, args)
    transform = None
    if args.translate is not None or args.rotate is not None:
        if not gen.has_transform:
            raise CLIError(
                f"--translate / --rotate apply to StyleGAN3 (a {gen.display_name} generator "
                "has no input transform)"
            )
        from ..models.stylegan3 import make_transform

        transform = make_transform(args.translate or (0.0, 0.0), args.rotate or 0.0)
    if args.outdir is None:
        check_grid(
            len(seeds),
            gen.resolution,
            gen.img_channels,
            "synth",
            "pass --outdir DIR for one PNG per seed, or fewer --seeds",
        )
        if args.cols is not None and args.cols > len(seeds):
            raise CLIError(f"--cols {args.cols} is more than the {len(seeds)} image(s)")
    else:
        os.makedirs(args.outdir, exist_ok=True)
        for o in outs:
            check_output(o, args.force)
    key = None
    if gen.has_noise and args.noise_mode == "random":
        key = jax.random.key(0 if args.noise_seed is None else args.noise_seed)
    tiles = []
    batches = range(0, len(seeds), args.batch)
    with progress(len(seeds), "synth", unit="img", enabled=len(batches) > 1) as bar:
        for lo in batches:
            part = seeds[lo : lo + args.batch]
            if gen.truncation_kind == "stats":
                z = biggan_z(gen, part, truncation_of(args))
                imgs = gen(z, class_vectors(gen, args, len(z)), truncation_of(args))
            else:
                z = seed_latents(gen, part)
                imgs = gen(
                    z,
                    class_vectors(gen, args, len(z)),
                    psi_of(args),
                    args.cutoff,
                    noise_mode=args.noise_mode or "const",
                    key=None if key is None else jax.random.fold_in(key, lo),
                    **({} if transform is None else {"transform": transform}),
                )
            try:
                u8 = to_uint8(imgs)
            except ValueError as e:
                raise ValueError(f"seeds {part[0]}..{part[-1]}: {e}") from None
            if args.outdir is None:
                tiles.append(u8)
            else:
                for _, img, o in zip(part, u8, outs[lo : lo + args.batch]):
                    save_png(img, o, overwrite=args.force)
            bar.update(len(part))
    if args.outdir is None:
        n = len(seeds)
        cols = args.cols or (n if n <= 16 else int(np.ceil(np.sqrt(n))))
        print(
            f"wrote {save_png(image_grid(np.concatenate(tiles), cols), args.out, overwrite=args.force)}"
        )
    else:
        print(f"wrote {len(seeds)} PNG(s) to {os.path.abspath(args.outdir)}")
    return 0


def _translation(text: str) -> tuple[float, float]:
    """``"tx,ty"`` -> two finite floats (argparse type)."""
    import argparse

    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        tx, ty = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TX,TY (two numbers), got {text!r}") from None
    if not (np.isfinite(tx) and np.isfinite(ty)):
        raise argparse.ArgumentTypeError(f"translation must be finite, got {text!r}")
    return tx, ty


def register(sub) -> None:
    """Add the command(s) of this module to the ``jaxedit`` subparsers ``sub``."""
    s = sub.add_parser(
        "synth",
        help="synthesize a PNG grid (or one PNG per seed) from seeds",
        epilog=examples(
            "jaxedit synth ckpt/ --seeds 0-7 --psi 0.7 --out synth.png",
            "jaxedit synth ckpt/ --seeds 0-9999 --outdir images/   # seed0000.png ...",
            "jaxedit synth biggan-deep-256/ --class 207 --truncation 0.4 --seeds 0-7",
            "jaxedit synth stylegan3-t.pkl --seeds 0-3 --translate 0.1,0 --rotate 10",
        ),
    )
    s.add_argument("ckpt", help=CKPT_HELP)
    s.add_argument(
        "--seeds",
        type=seed_list,
        default="0-7",
        help="seeds (NVIDIA generate.py latents; BigGAN: truncated-normal z)",
    )
    add_truncation_args(s, "1.0", "none: all slots")
    add_class_arg(s)
    s.add_argument(
        "--noise-mode",
        choices=("const", "random", "none"),
        default=None,
        help="StyleGAN2 noise inputs (default: const; random images depend on --batch)",
    )
    s.add_argument(
        "--noise-seed",
        type=nonneg_int,
        default=None,
        help="PRNG seed for --noise-mode random (default: 0)",
    )
    s.add_argument(
        "--translate",
        type=_translation,
        default=None,
        metavar="TX,TY",
        help="StyleGAN3 only: translate the image as gen_images.py --translate (the image "
        "spans about 1 unit; default 0,0)",
    )
    s.add_argument(
        "--rotate",
        type=finite_float,
        default=None,
        metavar="DEG",
        help="StyleGAN3 only: rotate the image by DEG degrees, as gen_images.py --rotate",
    )
    s.add_argument("--which", default=None, help="network in a source file (G_ema by default)")
    s.add_argument(
        "--cols",
        type=positive_int,
        default=None,
        help="grid columns (default: one row of up to 16 images, else a square grid)",
    )
    s.add_argument(
        "--batch", type=positive_int, default=16, help="images rendered per call (bounds memory)"
    )
    where = s.add_mutually_exclusive_group()
    add_output_args(s, "synth.png", "the image grid (PNG)", group=where)
    where.add_argument(
        "--outdir",
        default=None,
        metavar="DIR",
        help="instead of a grid, write DIR/seed0000.png ... (created if missing)",
    )
    s.set_defaults(fn=_cmd_synth)
