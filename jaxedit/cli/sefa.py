"""``jaxedit sefa`` (SeFa closed-form directions -> sefa.npz) and ``jaxedit spectrum``
(singular values of a conv layer)."""

from __future__ import annotations

import numpy as np

from . import _generators
from ._common import (
    CLIError,
    add_output_args,
    check_output,
    examples,
    name_or_int_list,
    positive_int,
)
from ._generators import CKPT_HELP, ckpt_label

_SEFA_LAYERS = ("all", "coarse", "middle", "fine", "gen_z")


def _cmd_sefa(args) -> int:
    from .._io import save_npz
    from ..methods.sefa import sefa

    check_output(args.out, args.force)
    gen = _generators.load_generator(args.ckpt)
    layers = args.layers
    if not gen.has_styles and layers not in ("all", "gen_z"):
        raise CLIError(
            f"--layers {layers if isinstance(layers, str) else 'W+ slots'}: a "
            f"{gen.display_name} generator takes 'all' or 'gen_z'"
        )
    if gen.has_styles and layers == "gen_z":
        raise CLIError(
            f"--layers gen_z is for BigGAN; {gen.display_name} takes all, coarse, middle, fine "
            "or W+ slots"
        )
    if isinstance(layers, list) and max(layers) >= gen.num_ws:
        raise CLIError(
            f"--layers: W+ slot {max(layers)} out of range: the generator has "
            f"{gen.num_ws} slots (0..{gen.num_ws - 1})"
        )
    res = sefa(gen, layers=layers, k=args.k, normalize=None if args.no_normalize else "column")
    space = gen.default_space
    slots = list(res.slots) if gen.has_styles else []
    print("eigenvalues " + " ".join(f"{v:.4g}" for v in res.eigenvalues))
    label = layers if isinstance(layers, str) else ",".join(map(str, layers))
    out = save_npz(
        args.out,
        overwrite=args.force,
        directions=res.directions[None],
        eigenvalues=res.eigenvalues[None],
        space=space,
        slots=np.asarray(slots, np.int64),
        solver="sefa",
        layers=label,
        checkpoint=ckpt_label(args.ckpt),
    )
    print(
        f"wrote {out}: directions [1, {args.k}, {res.directions.shape[1]}] (space {space!r}"
        + (f", W+ slots {slots})" if slots else ")")
    )
    return 0


def _cmd_spectrum(args) -> int:
    from ..methods.spectra import layer_spectrum

    if args.out is not None:
        check_output(args.out, args.force)
    gen = _generators.load_generator(args.ckpt)
    s = np.asarray(layer_spectrum(gen, args.layer, top_k=args.top_k))
    print(f"{args.layer}: {s.size} singular values, max {s[0]:.6g}, min {s[-1]:.6g}")
    print("top: " + " ".join(f"{v:.5g}" for v in s[:10]))
    if args.out:
        from .._io import save_npz

        print(
            f"wrote {save_npz(args.out, overwrite=args.force, singular_values=s, layer=args.layer)}"
        )
    return 0


def register(sub) -> None:
    """Add the command(s) of this module to the ``jaxedit`` subparsers ``sub``."""
    sf = sub.add_parser(
        "sefa",
        help="SeFa closed-form directions -> sefa.npz (render with edit)",
        epilog=examples(
            "jaxedit sefa ckpt/ --layers all --k 10",
            "jaxedit sefa ckpt/ --layers 2-5 --out sefa_middle.npz",
            "jaxedit layers ckpt/        # W+ slots and presets",
        ),
    )
    sf.add_argument("ckpt", help=CKPT_HELP)
    sf.add_argument(
        "--layers",
        type=name_or_int_list(_SEFA_LAYERS),
        default="all",
        help="all | coarse | middle | fine | W+ slots like 2-5 (BigGAN: all | gen_z)",
    )
    sf.add_argument("--k", type=positive_int, default=10, help="number of directions")
    sf.add_argument(
        "--no-normalize", action="store_true", help="raw weights (rosinality's variant)"
    )
    add_output_args(sf, "sefa.npz", "the directions (.npz)")
    sf.set_defaults(fn=_cmd_sefa)

    sp = sub.add_parser(
        "spectrum",
        help="singular values of a conv layer (circular padding, FFT)",
        epilog=examples(
            "jaxedit spectrum ckpt/ --layer b16.conv1 --top-k 10",
            "jaxedit layers ckpt/        # the layer names",
        ),
    )
    sp.add_argument("ckpt", help=CKPT_HELP)
    sp.add_argument(
        "--layer",
        required=True,
        help="conv layer, e.g. b16.conv1 (BigGAN: block3.conv_1); see 'jaxedit layers'",
    )
    sp.add_argument(
        "--top-k", type=positive_int, default=None, help="keep the largest K values (default: all)"
    )
    add_output_args(sp, None, "the values (.npz; default: print only)")
    sp.set_defaults(fn=_cmd_spectrum)
