"""``jaxedit edit`` (render a direction over an alpha grid -> PNG) and ``jaxedit evaluate``
(ROIR / masked MSE of a direction over seeds, against random directions)."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import numpy as np

from .. import editing
from ..sampling import Sampling
from . import _generators
from ._common import (
    CLIError,
    add_output_args,
    check_output,
    examples,
    finite_float,
    nonneg_int,
    parse_alphas,
    parse_int_list,
    setup_x64,
)
from ._generators import (
    CKPT_HELP,
    add_latent_args,
    add_truncation_args,
    base_latents,
    check_family_options,
    check_grid,
    class_vectors,
    psi_of,
    slug,
    truncation_of,
)

#: Default edit strengths on the embedded toy-face model (as ``jaxedit demo``).
TOY_ALPHAS = (-1.2, -0.8, -0.4, 0.0, 0.4, 0.8, 1.2)

_ALPHAS_HELP = (
    "edit strengths: START:STOP:COUNT (linspace, e.g. -10:10:7) or a comma list (e.g. "
    "-2,0,2); finite values"
)


def _load_direction(path, index: int, set_index: int):
    try:  # jaxedit .npz or a ReSeFa / LowRankGAN .npy of W directions
        ds = editing.load_directions(path)
    except ValueError as e:
        raise CLIError(str(e)) from None
    if not 0 <= set_index < ds.directions.shape[0]:
        raise CLIError(
            f"--set {set_index} out of range: {path} has {ds.directions.shape[0]} set(s)"
        )
    if not 0 <= index < ds.directions.shape[1]:
        raise CLIError(
            f"--index {index} out of range: {path} has {ds.directions.shape[1]} direction(s)"
        )
    d = np.asarray(ds.pick(index, set_index), np.float64)
    if not np.any(d):
        raise CLIError(f"{path}: direction {index} is all zeros")
    return d, ds.space, ds.mask, list(ds.slots) if ds.slots else None


def _edit_inputs(args):
    from ..jacobians import latent_dim

    d, space, mask, file_slots = _load_direction(args.directions, args.index, args.set)
    gen = _generators.load_generator(args.ckpt)
    check_family_options(gen, args)
    try:
        want = latent_dim(gen, space)
    except ValueError:
        raise CLIError(
            f"{args.directions}: space {space!r} does not apply to this "
            f"{gen.display_name} generator"
        ) from None
    if d.size != want:
        raise CLIError(
            f"{args.directions}: the direction has {d.size} dimensions but space "
            f"{space!r} of this generator has {want}: was it made for another generator?"
        )
    psi = psi_of(args, editing.REFERENCE_PSI)
    cutoff = (
        args.cutoff
        if args.cutoff is not None
        else min(editing.REFERENCE_CUTOFF, gen.num_ws if gen.truncation_kind == "psi" else 0)
    )
    lat, z, _ = base_latents(gen, args, "w" if space in ("w", "wplus", "s") else space, psi, cutoff)
    if not gen.has_styles:
        if args.slots is not None:
            raise CLIError("--slots applies to StyleGAN2 W / W+ directions only")
        kw: dict[str, Any] = dict(
            sampling=Sampling(
                c=class_vectors(gen, args, len(lat)), truncation_psi=truncation_of(args)
            )
        )
        return gen, d, space, mask, lat, None, kw
    if space == "s":
        from ..editing import flatten_styles

        lat = np.asarray(flatten_styles(gen, gen.styles(lat)))
    if args.slots is not None and space not in ("w", "wplus"):
        raise CLIError(
            f"--slots applies to W / W+ directions only; {args.directions} is in space {space!r}"
        )
    if args.slots is not None:
        slots = args.slots
    elif space == "wplus":
        slots = None  # a slot-major W+ direction has a block for every slot: edit all of them
    elif _generators.region_preference(args.ckpt, gen) == "toyfaces":
        slots = file_slots  # the toy model's W directions come from W Jacobians: every slot
    else:
        slots = file_slots or list(editing.REFERENCE_SLOTS)
    slots = slots if space in ("w", "wplus") else None
    if slots is not None and max(slots) >= gen.num_ws:
        raise CLIError(
            f"--slots {','.join(map(str, slots))} out of range: the generator has "
            f"{gen.num_ws} W+ slots (0..{gen.num_ws - 1})"
        )
    c = class_vectors(gen, args, len(lat)) if space == "z" else None
    kw = dict(sampling=Sampling(c=c, truncation_psi=psi, truncation_cutoff=cutoff))
    return gen, d, space, mask, lat, slots, kw


def _cmd_edit(args) -> int:
    setup_x64(args)
    from ..editing import render_edits, save_edit_grid

    if args.out is None:
        stem = os.path.splitext(os.path.basename(args.directions))[0]
        args.out = f"edit_{slug(stem)}_{args.index}.png"
    check_output(args.out, args.force)
    gen, d, space, mask, lat, slots, kw = _edit_inputs(args)
    if args.alphas is None:  # ReSeFa's strengths suit FFHQ; the toy model's W is smaller
        toy = _generators.region_preference(args.ckpt, gen) == "toyfaces"
        args.alphas = list(TOY_ALPHAS if toy else editing.REFERENCE_ALPHAS)
    check_grid(
        len(lat) * len(args.alphas),
        gen.resolution,
        gen.img_channels,
        "edit",
        "use fewer --seeds or --alphas",
    )
    imgs = render_edits(gen, lat, d, args.alphas, space=space, slots=slots, **kw)
    out = save_edit_grid(
        imgs, args.out, region=mask if args.draw_region else None, overwrite=args.force
    )
    print(f"wrote {out}: rows = samples, columns = alphas {[round(a, 3) for a in args.alphas]}")
    return 0


def _cmd_evaluate(args) -> int:
    setup_x64(args)
    from .._io import progress, save_json
    from ..metrics import evaluate_direction

    if args.alpha == 0:
        raise CLIError("--alpha must be non-zero (an edit of size 0 changes nothing)")
    region = None
    if args.region is not None:
        from ..regions import parse_region

        region = parse_region(args.region, prefer=_generators.region_preference(args.ckpt))
    if args.out is not None:
        check_output(args.out, args.force)
    gen, d, space, mask, lat, slots, kw = _edit_inputs(args)
    if region is not None:
        mask = region
    if mask is None:
        raise CLIError(f"{args.directions} stores no region mask: pass --region")
    kw: dict[str, Any] = dict(alpha=args.alpha, space=space, slots=slots, **kw)
    rng = np.random.default_rng(args.random_seed)
    rand = []
    with progress(args.random + 1, "evaluate", unit="direction") as bar:
        res = evaluate_direction(gen, lat, d, mask, **kw)
        bar.update(1)
        for _ in range(args.random):
            rand.append(evaluate_direction(gen, lat, rng.standard_normal(d.shape), mask, **kw))
            bar.update(1)
    if not np.isfinite(res["roir"]):
        raise ValueError(
            f"ROIR is {res['roir']}: direction {args.index} does not change the "
            f"pixels inside the region at --alpha {args.alpha:g}"
            + (f" on W+ slots {slots}" if slots else "")
            + "; nothing to compare"
        )
    print(f"{'direction':<18} {'ROIR':>8} {'MSE inside':>12} {'MSE outside':>12}")
    print(
        f"{'index ' + str(args.index):<18} {res['roir']:8.4f} {res['mse_inside']:12.4g} "
        f"{res['mse_outside']:12.4g}"
    )
    if rand:
        rr = [r["roir"] for r in rand]
        finite = [v for v in rr if np.isfinite(v)]
        print(
            f"{'random (mean of ' + str(len(finite)) + ')':<18} "
            f"{np.mean(finite) if finite else float('nan'):8.4f} "
            f"{np.mean([r['mse_inside'] for r in rand]):12.4g} "
            f"{np.mean([r['mse_outside'] for r in rand]):12.4g}"
        )
        if len(finite) < len(rr):
            print(
                f"warning: {len(rr) - len(finite)} random direction(s) left the region "
                "unchanged (ROIR undefined) and are not in the mean",
                file=sys.stderr,
            )
    if args.out:
        report = {"direction": res, "random": rand, "samples": int(len(lat))}
        print(f"wrote {save_json(args.out, _json_safe(report), overwrite=args.force)}")
    return 0


def _json_safe(obj):
    """Non-finite floats as strings ("inf", "nan"): strict JSON has no NaN / Infinity."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    return obj


def register(sub) -> None:
    """Add the command(s) of this module to the ``jaxedit`` subparsers ``sub``."""
    for name, fn, helptext in (
        ("edit", _cmd_edit, "render a direction over an alpha grid -> PNG"),
        ("evaluate", _cmd_evaluate, "ROIR / masked MSE of a direction over seeds"),
    ):
        if name == "edit":
            ex = examples(
                "jaxedit edit ckpt/ --directions resefa_eyes.npz --index 0 --alphas -10:10:7",
                "jaxedit edit ckpt/ --directions sefa.npz --alphas=-3,0,3 --seeds 0-3",
                "(--alphas is START:STOP:COUNT or a comma list)",
            )
        else:
            ex = examples(
                "jaxedit evaluate ckpt/ --directions resefa_eyes.npz --seeds 0-99 --alpha 3",
                "jaxedit evaluate ckpt/ --directions sefa.npz --region ffhq/mouth --out m.json",
            )
        e = sub.add_parser(name, help=helptext, epilog=ex)
        e.add_argument("ckpt", help=CKPT_HELP)
        e.add_argument(
            "--directions",
            required=True,
            metavar="FILE",
            help="directions (.npz) from 'jaxedit resefa' or 'jaxedit sefa', or a .npy "
            "of W directions [D] / [K, D] (ReSeFa's shipped files)",
        )
        e.add_argument("--index", type=nonneg_int, default=0, help="direction index (0 = top)")
        e.add_argument("--set", type=nonneg_int, default=0, help="direction set (sample) index")
        add_latent_args(e)
        e.add_argument(
            "--slots",
            type=parse_int_list,
            default=None,
            help="W+ slots to edit (default: every slot for a W+ direction, else "
            "the file's SeFa slots, else every slot on the embedded toy-face model and the "
            "ReSeFa reference 4-7 on others; 8-11 for eyebrows/lipstick)",
        )
        add_truncation_args(
            e,
            f"{editing.REFERENCE_PSI}, the reference",
            f"{editing.REFERENCE_CUTOFF}, the reference",
        )
        if name == "edit":
            # let "--alphas -10:10:7" parse: such values count as negative numbers, not options
            e._negative_number_matcher = re.compile(r"^-\d[\d.:,eE+-]*$|^-\.\d[\d.:,eE+-]*$")
            e.add_argument(
                "--alphas",
                type=parse_alphas,
                default=None,
                help=_ALPHAS_HELP + " (default: -10:10:7, ReSeFa's, for FFHQ-scale models; "
                "-1.2:1.2:7 on the embedded toy-face model)",
            )
            e.add_argument(
                "--no-region",
                dest="draw_region",
                action="store_false",
                help="do not draw the direction file's region box",
            )
            add_output_args(e, None, "the grid (PNG; default: edit_<directions file>_<index>.png)")
        else:
            e.add_argument(
                "--alpha",
                type=finite_float,
                default=3.0,
                help="edit strength along the unit-norm direction",
            )
            e.add_argument(
                "--random", type=nonneg_int, default=8, help="random directions for a baseline"
            )
            e.add_argument(
                "--random-seed", type=nonneg_int, default=0, help="seed of the random directions"
            )
            e.add_argument(
                "--region",
                default=None,
                help="preset or y0,x0,y1,x1 on the image (default: the file's mask)",
            )
            add_output_args(e, None, "the metrics as JSON (default: print only)")
        e.set_defaults(fn=fn)
