"""``jaxedit jacobian``: region Jacobians (forward mode) of seeds or latents -> jacobian.npz."""

from __future__ import annotations

import numpy as np

from .. import editing
from . import _generators
from ._common import (
    CLIError,
    add_output_args,
    check_output,
    examples,
    positive_float,
    positive_int,
    setup_x64,
)
from ._generators import (
    CKPT_HELP,
    add_latent_args,
    add_truncation_args,
    base_latents,
    check_family_options,
    ckpt_label,
    class_vectors,
    psi_of,
    truncation_of,
)


def _cmd_jacobian(args) -> int:
    setup_x64(args)
    from .._io import save_npz
    from ..jacobians import OutputSpec, jacobian, latent_dim
    from ..sampling import Compute, Sampling

    check_output(args.out, args.force)
    gen = _generators.load_generator(args.ckpt)
    check_family_options(gen, args)
    args.space = args.space or gen.default_space
    d = latent_dim(gen, args.space)
    h, w, ch = OutputSpec(args.resize, args.resize_mode, args.channels).out_shape(
        gen.resolution, gen.img_channels
    )

    def check_size(n):
        gib = n * h * w * ch * d * (8 if args.x64 else 4) / 2**30
        if gib > args.max_gib:
            raise CLIError(
                f"the Jacobian [{n}, {h}, {w}, {ch}, {d}] would take {gib:.1f} GiB "
                f"(--max-gib {args.max_gib:g}): use --resize, --channels sum, fewer "
                "samples, or raise --max-gib"
            )

    if not args.latents:
        check_size(len(args.seeds))  # before mapping the seeds
    lat, z, how = base_latents(gen, args, args.space, psi_of(args), args.cutoff)
    n = lat.shape[0]
    check_size(n)
    print(f"{how}: {n} sample(s), space {args.space!r}")
    c = class_vectors(gen, args, n) if (not gen.has_styles or args.space == "z") else None
    psi = truncation_of(args) if gen.truncation_kind == "stats" else psi_of(args)
    J = jacobian(
        gen,
        lat,
        space=args.space,
        output=OutputSpec(args.resize, args.resize_mode, args.channels),
        sampling=Sampling(c=c, truncation_psi=psi, truncation_cutoff=args.cutoff),
        compute=Compute(precision=args.precision, chunk=args.chunk),
        progress=True,
    )
    J = np.asarray(J)
    bad = int(J.size - np.isfinite(J).sum())
    if bad:
        raise ValueError(
            f"the Jacobian contains {bad} non-finite value(s) (NaN or inf): the "
            "generator is not finite at these latents; nothing written"
        )
    out = save_npz(
        args.out,
        overwrite=args.force,
        jacobian=J,
        latents=lat,
        seeds=np.asarray(args.seeds if not args.latents else [], np.int64),
        space=args.space,
        resize=-1 if args.resize is None else args.resize,
        resize_mode=args.resize_mode,
        channels=args.channels,
        checkpoint=ckpt_label(args.ckpt),
        region_set=_generators.region_preference(args.ckpt, gen) or "",
        psi=psi_of(args),
        cutoff=-1 if args.cutoff is None else args.cutoff,
    )
    print(f"wrote {out}: J {list(J.shape)} ({J.dtype})")
    return 0


def register(sub) -> None:
    """Add the command(s) of this module to the ``jaxedit`` subparsers ``sub``."""
    j = sub.add_parser(
        "jacobian",
        help="region Jacobians (forward mode) of seeds -> jacobian.npz",
        epilog=examples(
            "jaxedit jacobian ckpt/ --seeds 0-4 --space w --resize 256 --channels sum",
            "jaxedit jacobian ckpt/ --latents ws.npy --space wplus --out J_wplus.npz",
        ),
    )
    j.add_argument("ckpt", help=CKPT_HELP)
    add_latent_args(j)
    j.add_argument(
        "--space",
        choices=editing.SPACES,
        default=None,
        help="latent space: StyleGAN2 w (default), wplus, z, s; BigGAN z (default), embed, cond",
    )
    j.add_argument(
        "--resize",
        type=positive_int,
        default=None,
        help="output side in pixels, dividing the image size (default: full resolution)",
    )
    j.add_argument(
        "--resize-mode",
        choices=("nearest", "area"),
        default="nearest",
        help="nearest = pixel (s*i, s*j) as the reference; area = block mean",
    )
    j.add_argument(
        "--channels",
        choices=("rgb", "sum", "mean"),
        default="sum",
        help="keep RGB rows, or sum (ReSeFa) / average (LowRankGAN) them; the command line "
        "sums (3x smaller), the Python OutputSpec keeps 'rgb' unless told",
    )
    j.add_argument(
        "--chunk", type=positive_int, default=32, help="tangents per vmap (bounds memory)"
    )
    add_truncation_args(j, "1.0, the reference", "none: all slots")
    j.add_argument(
        "--precision",
        choices=("highest", "default"),
        default="highest",
        help="matmul/conv precision (default = TF32 on GPUs)",
    )
    j.add_argument(
        "--max-gib",
        type=positive_float,
        default=16.0,
        help="refuse to compute a Jacobian larger than this many GiB",
    )
    add_output_args(j, "jacobian.npz", "the Jacobians (.npz)")
    j.set_defaults(fn=_cmd_jacobian)
