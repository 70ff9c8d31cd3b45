"""The ``jaxedit`` command line: convert, inspect, synth, jacobian, resefa, sefa, spectrum, edit,
evaluate, demo."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

import numpy as np

from . import editing

# Subcommand groups that live in their own modules (one concept per module): each module has
# ``register(subparsers)`` adding its parsers with ``set_defaults(fn=...)``.
PLUGIN_MODULES: tuple[str, ...] = (
    "jaxedit._cli_moments",
)


def parse_int_list(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]`` (inclusive ranges, order kept, duplicates dropped)."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else part[1:].split("-", 1)
                a, b = int(a), int(b)
                if b < a:
                    raise ValueError
                vals = range(a, b + 1)
            else:
                vals = [int(part)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer list: {text!r} (e.g. 0-7 or 1,4,9)") from None
        out.extend(v for v in vals if v not in out)
    if not out:
        raise argparse.ArgumentTypeError(f"empty integer list: {text!r}")
    return out


def parse_alphas(text: str) -> list[float]:
    """``"-10:10:7"`` -> ``linspace(-10, 10, 7)``; ``"-2,0,2"`` -> that list."""
    try:
        if ":" in text:
            a, b, n = text.split(":")
            if int(n) < 1:
                raise ValueError
            return [float(v) for v in np.linspace(float(a), float(b), int(n))]
        vals = [float(v) for v in text.split(",") if v.strip()]
        if not vals:
            raise ValueError
        return vals
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"alphas must be START:STOP:COUNT or a comma list, got {text!r}") from None


def _setup_x64(args) -> None:
    if getattr(args, "x64", False):
        import jax

        jax.config.update("jax_enable_x64", True)


def _seed_latents(gen, seeds):
    from .models.stylegan2 import seed_to_z

    return np.concatenate([seed_to_z(s, gen.z_dim) for s in seeds])


def _is_biggan(gen) -> bool:
    return getattr(gen, "family", None) == "biggan"


def _class_vectors(gen, args, n: int):
    """One-hot class vectors [n, classes] from --class (BigGAN / conditional StyleGAN2), else None."""
    classes = gen.num_classes if _is_biggan(gen) else gen.c_dim
    if classes == 0:
        return None
    if args.class_idx is None:
        raise ValueError(f"this generator is conditional: pass --class (0..{classes - 1})")
    from .models.biggan import one_hot

    return np.repeat(one_hot([args.class_idx], classes), n, axis=0)


def _biggan_z(gen, seeds, truncation: float):
    from .models.biggan import truncated_noise_sample

    return np.concatenate([truncated_noise_sample(1, gen.z_dim, truncation, seed=s) for s in seeds])


def _base_latents(gen, args, space: str, psi: float, cutoff):
    """(latents for ``space``, z or None, description) from --latents FILE or --seeds."""
    if _is_biggan(gen):
        if getattr(args, "latents", None):
            z = np.load(args.latents, allow_pickle=False)
            return z, z, f"z from {args.latents}"
        z = _biggan_z(gen, args.seeds, args.truncation)
        return z, z, f"z = {args.truncation:g} * truncnorm(seed)"
    if getattr(args, "latents", None):
        lat = np.load(args.latents, allow_pickle=False)
        if space == "z":
            return lat, lat, f"z from {args.latents}"
        if lat.ndim == 2:
            lat = np.broadcast_to(lat[:, None], (lat.shape[0], gen.num_ws, lat.shape[1]))
        return lat, None, f"ws from {args.latents}"
    z = _seed_latents(gen, args.seeds)
    if space == "z":
        return z, z, "z from seeds"
    return np.asarray(gen.mapping(z, None, psi, cutoff)), z, "ws = mapping(seed z)"


def _cmd_jacobian(args) -> int:
    _setup_x64(args)
    from ._io import save_npz
    from .checkpoint import load_generator
    from .jacobians import jacobian

    gen = load_generator(args.ckpt)
    args.space = args.space or ("z" if _is_biggan(gen) else "w")
    lat, z, how = _base_latents(gen, args, args.space, args.psi, args.cutoff)
    print(f"{how}: {lat.shape[0]} sample(s), space {args.space!r}")
    c = _class_vectors(gen, args, len(lat)) if (_is_biggan(gen) or args.space == "z") else None
    J = jacobian(gen, lat, space=args.space, resize=args.resize, resize_mode=args.resize_mode,
                 channels=args.channels, chunk=args.chunk, c=c,
                 truncation_psi=args.truncation if _is_biggan(gen) else args.psi,
                 truncation_cutoff=args.cutoff, precision=args.precision, progress=True)
    out = save_npz(args.out, jacobian=np.asarray(J), latents=lat,
                   seeds=np.asarray(args.seeds if not args.latents else [], np.int64),
                   space=args.space, resize=-1 if args.resize is None else args.resize,
                   resize_mode=args.resize_mode, channels=args.channels,
                   checkpoint=os.path.abspath(args.ckpt), psi=args.psi,
                   cutoff=-1 if args.cutoff is None else args.cutoff)
    print(f"wrote {out}: J {list(J.shape)} ({J.dtype})")
    return 0


def _cmd_resefa(args) -> int:
    _setup_x64(args)
    import warnings

    from ._io import load_npz, save_npz
    from .region_factorization import resefa
    from .regions import parse_region

    if args.moments is not None or args.jacobian is None:   # many-sample moments (issue 16)
        if args.moments is None:
            raise ValueError("give --jacobian J.npz or --moments moments.npz")
        from ._cli_moments import cmd_resefa_moments

        return cmd_resefa_moments(args)
    data = load_npz(args.jacobian, ("jacobian", "space"), "Jacobian")
    J = data["jacobian"]
    if J.ndim != 5:
        raise ValueError(f"{args.jacobian}: 'jacobian' must be [N, H, W, C, D], got {J.shape}")
    if args.sample is not None:
        if not 0 <= args.sample < J.shape[0]:
            raise ValueError(f"--sample {args.sample} out of range: the file has {J.shape[0]} samples")
        J = J[args.sample:args.sample + 1]
    region = parse_region(args.region)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        res = resefa(J, region, regularization=args.regularization, k=args.k, solver=args.solver,
                     aggregate=args.aggregate)
    dirs = np.asarray(res.directions)
    lams = np.asarray(res.eigenvalues)
    if dirs.ndim == 2:
        dirs, lams = dirs[None], lams[None]
    for i, row in enumerate(lams):
        print(f"set {i}: eigenvalues " + " ".join(f"{v:.4g}" for v in row))
    out = save_npz(args.out, directions=dirs, eigenvalues=lams, space=str(data["space"]),
                   mask=res.mask, region=args.region, solver=res.solver,
                   condition_number=np.asarray(np.nan if res.condition_number is None
                                               else res.condition_number, np.float64),
                   regularization=res.regularization, jacobian=os.path.abspath(args.jacobian),
                   aggregate=args.aggregate)
    print(f"wrote {out}: directions {list(dirs.shape)} (space {str(data['space'])!r}, "
          f"solver {res.solver}" + ("" if res.condition_number is None else
                                    f", cond(M_b) {np.max(res.condition_number):.3g}") + ")")
    return 0


def _load_direction(path, index: int, set_index: int):
    from ._io import load_npz

    data = load_npz(path, ("directions", "space"), "directions")
    dirs = data["directions"]
    if dirs.ndim == 2:
        dirs = dirs[None]
    if not 0 <= set_index < dirs.shape[0]:
        raise ValueError(f"--set {set_index} out of range: {path} has {dirs.shape[0]} set(s)")
    if not 0 <= index < dirs.shape[1]:
        raise ValueError(f"--index {index} out of range: {path} has {dirs.shape[1]} directions")
    slots = [int(v) for v in data["slots"]] if "slots" in data and data["slots"].size else None
    return dirs[set_index, index], str(data["space"]), data.get("mask"), slots


def _edit_inputs(args):
    from .checkpoint import load_generator

    gen = load_generator(args.ckpt)
    d, space, mask, file_slots = _load_direction(args.directions, args.index, args.set)
    lat, z, _ = _base_latents(gen, args, "w" if space in ("w", "wplus", "s") else space,
                              args.psi, args.cutoff)
    if _is_biggan(gen):
        kw = dict(c=_class_vectors(gen, args, len(lat)), truncation_psi=args.truncation)
        return gen, d, space, mask, lat, None, kw
    if space == "s":
        from .editing import flatten_styles

        lat = np.asarray(flatten_styles(gen, gen.styles(lat)))
    slots = args.slots if args.slots is not None else (file_slots or list(editing.REFERENCE_SLOTS))
    slots = slots if space in ("w", "wplus") else None
    if slots is not None and max(slots) >= gen.num_ws:
        raise ValueError(f"--slots {slots} out of range: the generator has {gen.num_ws} W+ slots")
    c = _class_vectors(gen, args, len(lat)) if space == "z" else None
    return gen, d, space, mask, lat, slots, dict(c=c, truncation_psi=args.psi,
                                                 truncation_cutoff=args.cutoff)


def _cmd_edit(args) -> int:
    _setup_x64(args)
    from .editing import render_edits, save_edit_grid

    gen, d, space, mask, lat, slots, kw = _edit_inputs(args)
    imgs = render_edits(gen, lat, d, args.alphas, space=space, slots=slots, **kw)
    out = save_edit_grid(imgs, args.out, region=mask if args.draw_region else None)
    print(f"wrote {out}: rows = samples, columns = alphas {[round(a, 3) for a in args.alphas]}")
    return 0


def _cmd_evaluate(args) -> int:
    _setup_x64(args)
    from ._io import save_json
    from .metrics import evaluate_direction

    gen, d, space, mask, lat, slots, kw = _edit_inputs(args)
    if args.region is not None:
        from .regions import parse_region

        mask = parse_region(args.region)
    if mask is None:
        raise ValueError(f"{args.directions} stores no region mask: pass --region")
    kw = dict(alpha=args.alpha, space=space, slots=slots, **kw)
    res = evaluate_direction(gen, lat, d, mask, **kw)
    rng = np.random.default_rng(args.random_seed)
    from ._io import progress_printer

    show = progress_printer("evaluate")
    show(1, args.random + 1)
    rand = []
    for i in range(args.random):
        rand.append(evaluate_direction(gen, lat, rng.standard_normal(d.shape), mask, **kw))
        show(i + 2, args.random + 1)
    print(f"{'direction':<18} {'ROIR':>8} {'MSE inside':>12} {'MSE outside':>12}")
    print(f"{'index ' + str(args.index):<18} {res['roir']:8.4f} {res['mse_inside']:12.4g} "
          f"{res['mse_outside']:12.4g}")
    if rand:
        print(f"{'random (mean of ' + str(len(rand)) + ')':<18} "
              f"{np.mean([r['roir'] for r in rand]):8.4f} "
              f"{np.mean([r['mse_inside'] for r in rand]):12.4g} "
              f"{np.mean([r['mse_outside'] for r in rand]):12.4g}")
    if args.out:
        print(f"wrote {save_json(args.out, {'direction': res, 'random': rand, 'samples': len(lat)})}")
    return 0


def _cmd_sefa(args) -> int:
    from ._io import save_npz
    from .checkpoint import load_generator
    from .sefa import sefa

    gen = load_generator(args.ckpt)
    layers = args.layers
    if layers is None:
        layers = "all"
    elif layers not in ("all", "coarse", "middle", "fine", "gen_z"):
        layers = parse_int_list(layers)
    res = sefa(gen, layers=layers, k=args.k, normalize=None if args.no_normalize else "column")
    space = "z" if _is_biggan(gen) else "w"
    slots = [] if _is_biggan(gen) else list(res.slots)
    print("eigenvalues " + " ".join(f"{v:.4g}" for v in res.eigenvalues))
    out = save_npz(args.out, directions=res.directions[None], eigenvalues=res.eigenvalues[None],
                   space=space, slots=np.asarray(slots, np.int64), solver="sefa",
                   layers=str(args.layers or "all"), checkpoint=os.path.abspath(args.ckpt))
    print(f"wrote {out}: directions [1, {args.k}, {res.directions.shape[1]}] (space {space!r}"
          + (f", W+ slots {slots})" if slots else ")"))
    return 0


def _cmd_spectrum(args) -> int:
    from .checkpoint import load_generator
    from .spectra import layer_spectrum

    gen = load_generator(args.ckpt)
    s = np.asarray(layer_spectrum(gen, args.layer, top_k=args.top_k))
    print(f"{args.layer}: {s.size} singular values, max {s[0]:.6g}, min {s[-1]:.6g}")
    print("top: " + " ".join(f"{v:.5g}" for v in s[:10]))
    if args.out:
        from ._io import save_npz

        print(f"wrote {save_npz(args.out, singular_values=s, layer=args.layer)}")
    return 0


def _cmd_convert(args) -> int:
    from .checkpoint import convert_checkpoint

    out = convert_checkpoint(args.src, args.out, which=args.which, overwrite=args.force)
    print(f"wrote {out}")
    return 0


def _cmd_inspect(args) -> int:
    import converters

    from .checkpoint import read_config

    if os.path.isdir(args.src) and os.path.isdir(os.path.join(args.src, "params")):
        meta = read_config(args.src)
        print(json.dumps(meta, indent=2, sort_keys=True))
        return 0
    conv = converters.read_checkpoint(args.src, args.which)
    print(f"format:  {conv.source_format}")
    print(f"network: {conv.which}")
    print(f"sha256:  {conv.source_sha256}")
    print("config:  " + json.dumps(conv.config, sort_keys=True))
    inverse = {part: t for t, s in conv.sources.items() for part in s.split("+")}
    width = max(len(k) for k in conv.source_tensors)
    print(f"\n{'source key':<{width}}  {'shape':<20}  jaxedit key")
    for k, shape in conv.source_tensors.items():
        print(f"{k:<{width}}  {str(list(shape)):<20}  {inverse.get(k, '(checked buffer)')}")
    print(f"\n{len(conv.source_tensors)} tensors, "
          f"{sum(int(np.prod(v.shape)) for v in conv.params.values()):,} values converted")
    return 0


def _cmd_synth(args) -> int:
    import jax

    from .checkpoint import load_generator
    from .images import save_image_grid
    from .models.stylegan2 import seed_to_z

    gen = load_generator(args.ckpt, which=args.which)
    if _is_biggan(gen):
        z = _biggan_z(gen, args.seeds, args.truncation)
        imgs = gen(z, _class_vectors(gen, args, len(z)), args.truncation)
    else:
        z = np.concatenate([seed_to_z(s, gen.z_dim) for s in args.seeds])
        c = _class_vectors(gen, args, len(z))
        key = jax.random.key(args.noise_seed) if args.noise_mode == "random" else None
        imgs = gen(z, c, args.psi, args.cutoff, noise_mode=args.noise_mode, key=key)
    print(f"wrote {save_image_grid(imgs, args.out, cols=args.cols)}")
    return 0


def _cmd_demo(args) -> int:
    from . import demo

    return demo.run(args.out, seeds=args.seeds)


def _latent_args(p) -> None:
    p.add_argument("--seeds", type=parse_int_list, default=parse_int_list("0-4"))
    p.add_argument("--latents", default=None,
                   help=".npy of ws [N, num_ws, w_dim] / w [N, w_dim] (or z for space z) instead of seeds")
    p.add_argument("--x64", action="store_true", help="compute in float64")
    p.add_argument("--class", dest="class_idx", type=int, default=None,
                   help="class index (BigGAN, conditional StyleGAN2)")
    p.add_argument("--truncation", type=float, default=1.0,
                   help="BigGAN truncation in (0, 1]: scales the truncated-normal z and picks the BN statistics")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxedit", description="Local semantic directions in GANs, in JAX.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("convert", help="convert an NVIDIA .pkl / rosinality .pt to a jaxedit checkpoint")
    c.add_argument("src")
    c.add_argument("out")
    c.add_argument("--which", default=None, help="network in the file (G_ema by default; G; g_ema; g)")
    c.add_argument("--force", action="store_true", help="replace OUT if it exists")
    c.set_defaults(fn=_cmd_convert)

    i = sub.add_parser("inspect", help="print a checkpoint's format, config and key/shape table")
    i.add_argument("src")
    i.add_argument("--which", default=None)
    i.set_defaults(fn=_cmd_inspect)

    s = sub.add_parser("synth", help="synthesize a PNG grid from seeds (NVIDIA generate.py latents)")
    s.add_argument("ckpt")
    s.add_argument("--seeds", type=parse_int_list, default=parse_int_list("0-7"))
    s.add_argument("--psi", type=float, default=1.0)
    s.add_argument("--cutoff", type=int, default=None)
    s.add_argument("--class", dest="class_idx", type=int, default=None,
                   help="class index (BigGAN, conditional StyleGAN2)")
    s.add_argument("--truncation", type=float, default=1.0,
                   help="BigGAN truncation in (0, 1] (z = truncation * truncnorm(-2, 2), BN stats)")
    s.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    s.add_argument("--noise-seed", type=int, default=0, help="PRNG seed for --noise-mode random")
    s.add_argument("--which", default=None)
    s.add_argument("--cols", type=int, default=None)
    s.add_argument("--out", default="grid.png")
    s.set_defaults(fn=_cmd_synth)

    j = sub.add_parser("jacobian", help="region Jacobians (forward mode) for seeds -> J.npz")
    j.add_argument("ckpt")
    _latent_args(j)
    j.add_argument("--space", choices=("w", "wplus", "z", "s", "embed", "cond"), default=None,
                   help="StyleGAN2: w (default), wplus, z, s; BigGAN: z (default), embed, cond")
    j.add_argument("--resize", type=int, default=None, help="output side (e.g. 256)")
    j.add_argument("--resize-mode", choices=("nearest", "area"), default="nearest")
    j.add_argument("--channels", choices=("rgb", "sum", "mean"), default="sum")
    j.add_argument("--chunk", type=int, default=32, help="tangents per vmap (memory bound)")
    j.add_argument("--psi", type=float, default=1.0, help="truncation of the latents (ref.: 1.0)")
    j.add_argument("--cutoff", type=int, default=None)
    j.add_argument("--precision", choices=("highest", "default"), default="highest")
    j.add_argument("--out", default="J.npz")
    j.set_defaults(fn=_cmd_jacobian)

    r = sub.add_parser("resefa", help="ReSeFa directions for a region from J.npz (or from "
                                      "moments.npz of 'jaxedit moments') -> dirs.npz")
    r.add_argument("--jacobian", default=None, help="J.npz from 'jaxedit jacobian'")
    r.add_argument("--moments", default=None,
                   help="moments.npz from 'jaxedit moments' (--region names one of its regions; "
                        "solver dense or reference)")
    r.add_argument("--region", required=True, help="preset (eyes, ffhq/mouth, biggan/head0...) or y0,x0,y1,x1 on the Jacobian grid")
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--solver", choices=("auto", "dense", "woodbury", "matrix_free", "reference"), default="auto")
    r.add_argument("--regularization", type=float, default=0.0, help="tau of tau*trace(M_b)*I (ref. full_rank: 1e-3)")
    r.add_argument("--aggregate", choices=("none", "mean"), default="none")
    r.add_argument("--sample", type=int, default=None, help="use one sample of J only")
    r.add_argument("--x64", action="store_true", help="solve in float64")
    r.add_argument("--out", default="dirs.npz")
    r.set_defaults(fn=_cmd_resefa)

    for name, fn, helptext in (("edit", _cmd_edit, "render a direction over an alpha grid -> PNG"),
                               ("evaluate", _cmd_evaluate, "ROIR / masked MSE of a direction over seeds")):
        e = sub.add_parser(name, help=helptext)
        e.add_argument("ckpt")
        e.add_argument("--directions", required=True)
        e.add_argument("--index", type=int, default=0, help="direction index (0 = top)")
        e.add_argument("--set", type=int, default=0, help="direction set (sample) index")
        _latent_args(e)
        e.add_argument("--slots", type=parse_int_list, default=None,
                       help="W+ slots to edit (default: the file's SeFa slots, else the ReSeFa "
                            "reference 4-7; 8-11 for eyebrows/lipstick)")
        e.add_argument("--psi", type=float, default=editing.REFERENCE_PSI,
                       help="truncation (reference: 0.7)")
        e.add_argument("--cutoff", type=int, default=editing.REFERENCE_CUTOFF,
                       help="truncated slots (reference: 8)")
        if name == "edit":
            # let "--alphas -10:10:7" parse: such values count as negative numbers, not options
            e._negative_number_matcher = re.compile(r"^-\d[\d.:,eE+-]*$|^-\.\d[\d.:,eE+-]*$")
            e.add_argument("--alphas", type=parse_alphas, default=list(editing.REFERENCE_ALPHAS))
            e.add_argument("--no-region", dest="draw_region", action="store_false")
            e.add_argument("--out", default="edit.png")
        else:
            e.add_argument("--alpha", type=float, default=3.0)
            e.add_argument("--random", type=int, default=8, help="random directions for a baseline")
            e.add_argument("--random-seed", type=int, default=0)
            e.add_argument("--region", default=None,
                           help="preset or y0,x0,y1,x1 on the image (default: the file's mask)")
            e.add_argument("--out", default=None, help="write the metrics as JSON")
        e.set_defaults(fn=fn)

    sf = sub.add_parser("sefa", help="SeFa closed-form directions -> dirs.npz (render with edit)")
    sf.add_argument("ckpt")
    sf.add_argument("--layers", default=None,
                    help="all | coarse | middle | fine | W+ slots like 2-5 (BigGAN: all | gen_z)")
    sf.add_argument("--k", type=int, default=10)
    sf.add_argument("--no-normalize", action="store_true", help="raw weights (rosinality's variant)")
    sf.add_argument("--out", default="dirs.npz")
    sf.set_defaults(fn=_cmd_sefa)

    sp = sub.add_parser("spectrum", help="singular values of a conv layer (circular padding, FFT)")
    sp.add_argument("ckpt")
    sp.add_argument("--layer", required=True, help="e.g. b16.conv1 (BigGAN: block3.conv_1)")
    sp.add_argument("--top-k", type=int, default=None)
    sp.add_argument("--out", default=None, help="save the values (.npz)")
    sp.set_defaults(fn=_cmd_spectrum)

    d = sub.add_parser("demo", help="run the main workflow on the embedded default generator")
    d.add_argument("--out", default="jaxedit_demo")
    d.add_argument("--seeds", type=parse_int_list, default=parse_int_list("0-7"))
    d.set_defaults(fn=_cmd_demo)

    import importlib

    for mod in PLUGIN_MODULES:
        importlib.import_module(mod).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from converters.errors import CheckpointError

    args = build_parser().parse_args(argv)
    t0 = time.time()
    try:
        rc = args.fn(args)
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if os.environ.get("JAXEDIT_TIMING"):
        print(f"({time.time() - t0:.1f} s)", file=sys.stderr)
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
