"""The ``jaxedit`` command line: convert, inspect, layers, regions, synth, jacobian, resefa, sefa,
spectrum, edit, evaluate, demo.

Every error is one line on stderr with exit code 2 (``--debug`` adds the traceback); outputs
follow the :mod:`jaxedit._io` policy (existing files kept unless ``--force``, symlinks followed,
directories and special files refused). The shared pieces (validators, parser class, output
options, error handling) live in :mod:`jaxedit._cli_common`.
"""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np

from . import editing
from ._cli_common import (
    ArgumentParser,
    CLIError,
    add_output_args,
    check_output,
    examples,
    finite_float,
    name_or_int_list,
    nonneg_float,
    nonneg_int,
    parse_alphas,
    parse_int_list,
    positive_float,
    positive_int,
    run,
    seed_list,
    truncation,
)

# Subcommand groups that live in their own modules (one concept per module): each module has
# ``register(subparsers)`` adding its parsers with ``set_defaults(fn=...)``.
PLUGIN_MODULES: tuple[str, ...] = (
    "jaxedit._cli_panda",
    "jaxedit._cli_moments",
    "jaxedit._cli_eis",
)

#: Checkpoint argument naming the embedded default generator (when no such file exists).
DEFAULT_CHECKPOINT = "default"
#: Largest PNG grid a command renders in memory (bytes of uint8 pixels).
MAX_GRID_BYTES = 2 << 30

_CKPT_HELP = ("checkpoint: a directory written by 'jaxedit convert', an NVIDIA .pkl, a rosinality "
              ".pt, a BigGAN directory (pytorch_model.bin + config.json), or 'default' (the "
              "embedded default generator: the trained 64 px toy-face StyleGAN2)")


# ---- generators, latents, classes --------------------------------------------------------------

def _setup_x64(args) -> None:
    if getattr(args, "x64", False):
        import jax

        jax.config.update("jax_enable_x64", True)


def _load_generator(path: str, which: str | None = None):
    """A generator from a checkpoint argument ('default' = the embedded default generator)."""
    if path == DEFAULT_CHECKPOINT and not os.path.exists(path):
        if which is not None:
            raise CLIError("--which does not apply to the embedded default generator")
        from .default import default_generator

        return default_generator()
    from .checkpoint import load_generator

    return load_generator(path, which=which)


def _ckpt_label(path: str) -> str:
    return path if path == DEFAULT_CHECKPOINT and not os.path.exists(path) else os.path.abspath(path)


def _is_biggan(gen) -> bool:
    return getattr(gen, "family", None) == "biggan"


def _num_classes(gen) -> int:
    return gen.num_classes if _is_biggan(gen) else gen.c_dim


def _check_family_options(gen, args) -> None:
    """Refuse options that do not apply to the loaded generator (instead of ignoring them)."""
    if _is_biggan(gen):
        for opt in ("psi", "cutoff", "noise_mode", "noise_seed"):
            if getattr(args, opt, None) is not None:
                raise CLIError(f"--{opt.replace('_', '-')} applies to StyleGAN2 only; this is a "
                               "BigGAN generator (use --truncation)")
    else:
        if getattr(args, "truncation", None) is not None:
            raise CLIError("--truncation applies to BigGAN only; for StyleGAN2 use --psi "
                           "(and --cutoff)")
        cutoff = getattr(args, "cutoff", None)
        if cutoff is not None and cutoff > gen.num_ws:
            raise CLIError(f"--cutoff {cutoff} out of range: this generator has {gen.num_ws} "
                           f"W+ slots (0..{gen.num_ws})")
    classes = _num_classes(gen)
    cls = getattr(args, "class_idx", None)
    if cls is not None and classes == 0:
        raise CLIError(f"--class {cls}: this generator is unconditional (it has no classes)")
    if cls is not None and cls >= classes:
        raise CLIError(f"--class {cls} out of range: this generator has {classes} classes "
                       f"(0..{classes - 1})")
    if cls is None and classes > 0 and hasattr(args, "class_idx"):
        raise CLIError(f"this generator is conditional: pass --class (0..{classes - 1})")


def _psi(args, default: float = 1.0) -> float:
    return default if getattr(args, "psi", None) is None else args.psi


def _truncation(args) -> float:
    return 1.0 if getattr(args, "truncation", None) is None else args.truncation


def _class_vectors(gen, args, n: int):
    """One-hot class vectors [n, classes] from --class (BigGAN / conditional StyleGAN2), else None."""
    classes = _num_classes(gen)
    if classes == 0:
        return None
    if args.class_idx is None:
        raise CLIError(f"this generator is conditional: pass --class (0..{classes - 1})")
    from .models.biggan import one_hot

    return np.repeat(one_hot([args.class_idx], classes), n, axis=0)


def _seed_latents(gen, seeds):
    from .models.stylegan2 import seed_to_z

    return np.concatenate([seed_to_z(s, gen.z_dim) for s in seeds])


def _biggan_z(gen, seeds, trunc: float):
    from .models.biggan import truncated_noise_sample

    return np.concatenate([truncated_noise_sample(1, gen.z_dim, trunc, seed=s) for s in seeds])


def _read_latents(gen, path: str, space: str) -> np.ndarray:
    """--latents FILE checked against the generator: z [N, z_dim], w [N, w_dim] or ws [N, num_ws, w_dim]."""
    from ._checks import check_finite
    from ._io import load_array

    lat = load_array(path, "latents")
    if _is_biggan(gen) or space == "z":
        want, ok = f"z [N, {gen.z_dim}]", lat.ndim == 2 and lat.shape[1] == gen.z_dim
    else:
        want = f"ws [N, {gen.num_ws}, {gen.w_dim}] or w [N, {gen.w_dim}]"
        ok = (lat.ndim == 2 and lat.shape[1] == gen.w_dim) or (
            lat.ndim == 3 and lat.shape[1:] == (gen.num_ws, gen.w_dim))
    if not ok or lat.shape[0] == 0:
        raise CLIError(f"--latents {path}: expected {want} for this generator"
                       f"{' (space z)' if space == 'z' and not _is_biggan(gen) else ''}, "
                       f"got shape {list(lat.shape)}")
    check_finite(f"--latents {path}", lat)
    return np.asarray(lat, np.float64)


def _base_latents(gen, args, space: str, psi: float, cutoff):
    """(latents for ``space``, z or None, description) from --latents FILE or --seeds."""
    if _is_biggan(gen):
        if getattr(args, "latents", None):
            z = _read_latents(gen, args.latents, "z")
            return z, z, f"z from {args.latents}"
        z = _biggan_z(gen, args.seeds, _truncation(args))
        return z, z, f"z = {_truncation(args):g} * truncnorm(seed)"
    if getattr(args, "latents", None):
        lat = _read_latents(gen, args.latents, space)
        if space == "z":
            return lat, lat, f"z from {args.latents}"
        if lat.ndim == 2:
            lat = np.broadcast_to(lat[:, None], (lat.shape[0], gen.num_ws, lat.shape[1]))
        return lat, None, f"ws from {args.latents}"
    z = _seed_latents(gen, args.seeds)
    if space == "z":
        return z, z, "z from seeds"
    c = _class_vectors(gen, args, len(z))
    return np.asarray(gen.mapping(z, c, psi, cutoff)), z, "ws = mapping(seed z)"


def _check_grid(n: int, res: int, channels: int, what: str, hint: str) -> None:
    size = n * res * res * channels
    if size > MAX_GRID_BYTES:
        raise CLIError(f"{what}: {n} images of {res}x{res} make a {size / 2**30:.1f} GiB grid "
                       f"(limit {MAX_GRID_BYTES / 2**30:.0f} GiB); {hint}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", str(text)).strip("-.") or "region"


# ---- synth -----------------------------------------------------------------------------------

def _cmd_synth(args) -> int:
    import jax

    from ._io import progress
    from .images import image_grid, save_png, to_uint8

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
    gen = _load_generator(args.ckpt, which=args.which)
    _check_family_options(gen, args)
    if args.outdir is None:
        _check_grid(len(seeds), gen.resolution, gen.img_channels, "synth",
                    "pass --outdir DIR for one PNG per seed, or fewer --seeds")
        if args.cols is not None and args.cols > len(seeds):
            raise CLIError(f"--cols {args.cols} is more than the {len(seeds)} image(s)")
    else:
        os.makedirs(args.outdir, exist_ok=True)
        for o in outs:
            check_output(o, args.force)
    key = None
    if not _is_biggan(gen) and args.noise_mode == "random":
        key = jax.random.key(0 if args.noise_seed is None else args.noise_seed)
    tiles = []
    batches = range(0, len(seeds), args.batch)
    with progress(len(seeds), "synth", unit="img", enabled=len(batches) > 1) as bar:
        for lo in batches:
            part = seeds[lo:lo + args.batch]
            if _is_biggan(gen):
                z = _biggan_z(gen, part, _truncation(args))
                imgs = gen(z, _class_vectors(gen, args, len(z)), _truncation(args))
            else:
                z = _seed_latents(gen, part)
                imgs = gen(z, _class_vectors(gen, args, len(z)), _psi(args), args.cutoff,
                           noise_mode=args.noise_mode or "const",
                           key=None if key is None else jax.random.fold_in(key, lo))
            try:
                u8 = to_uint8(imgs)
            except ValueError as e:
                raise ValueError(f"seeds {part[0]}..{part[-1]}: {e}") from None
            if args.outdir is None:
                tiles.append(u8)
            else:
                for s, img, o in zip(part, u8, outs[lo:lo + args.batch]):
                    save_png(img, o, overwrite=args.force)
            bar.update(len(part))
    if args.outdir is None:
        n = len(seeds)
        cols = args.cols or (n if n <= 16 else int(np.ceil(np.sqrt(n))))
        print(f"wrote {save_png(image_grid(np.concatenate(tiles), cols), args.out, overwrite=args.force)}")
    else:
        print(f"wrote {len(seeds)} PNG(s) to {os.path.abspath(args.outdir)}")
    return 0


# ---- jacobian / resefa -------------------------------------------------------------------------

def _cmd_jacobian(args) -> int:
    _setup_x64(args)
    from ._io import save_npz
    from .jacobians import OutputSpec, jacobian, latent_dim

    check_output(args.out, args.force)
    gen = _load_generator(args.ckpt)
    _check_family_options(gen, args)
    args.space = args.space or ("z" if _is_biggan(gen) else "w")
    d = latent_dim(gen, args.space)
    h, w, ch = OutputSpec(args.resize, args.resize_mode, args.channels).out_shape(
        gen.resolution, gen.img_channels)

    def check_size(n):
        gib = n * h * w * ch * d * (8 if args.x64 else 4) / 2**30
        if gib > args.max_gib:
            raise CLIError(f"the Jacobian [{n}, {h}, {w}, {ch}, {d}] would take {gib:.1f} GiB "
                           f"(--max-gib {args.max_gib:g}): use --resize, --channels sum, fewer "
                           "samples, or raise --max-gib")

    if not args.latents:
        check_size(len(args.seeds))          # before mapping the seeds
    lat, z, how = _base_latents(gen, args, args.space, _psi(args), args.cutoff)
    n = lat.shape[0]
    check_size(n)
    print(f"{how}: {n} sample(s), space {args.space!r}")
    c = _class_vectors(gen, args, n) if (_is_biggan(gen) or args.space == "z") else None
    J = jacobian(gen, lat, space=args.space, resize=args.resize, resize_mode=args.resize_mode,
                 channels=args.channels, chunk=args.chunk, c=c,
                 truncation_psi=_truncation(args) if _is_biggan(gen) else _psi(args),
                 truncation_cutoff=args.cutoff, precision=args.precision, progress=True)
    J = np.asarray(J)
    bad = int(J.size - np.isfinite(J).sum())
    if bad:
        raise ValueError(f"the Jacobian contains {bad} non-finite value(s) (NaN or inf): the "
                         "generator is not finite at these latents; nothing written")
    out = save_npz(args.out, overwrite=args.force, jacobian=J, latents=lat,
                   seeds=np.asarray(args.seeds if not args.latents else [], np.int64),
                   space=args.space, resize=-1 if args.resize is None else args.resize,
                   resize_mode=args.resize_mode, channels=args.channels,
                   checkpoint=_ckpt_label(args.ckpt), psi=_psi(args),
                   cutoff=-1 if args.cutoff is None else args.cutoff)
    print(f"wrote {out}: J {list(J.shape)} ({J.dtype})")
    return 0


def _cmd_resefa(args) -> int:
    _setup_x64(args)
    import warnings

    from ._io import load_npz, save_npz
    from .region_factorization import resefa
    from .regions import parse_region

    solver = args.solver
    if args.tol is not None or args.maxiter is not None:
        if solver != "matrix_free":
            raise CLIError("--tol and --maxiter apply to --solver matrix_free only (the other "
                           "solvers are direct)")
        from .solvers import MatrixFree

        solver = MatrixFree(tol=args.tol, maxiter=args.maxiter or MatrixFree.maxiter)
    if args.moments is not None:     # many-sample moments from 'jaxedit moments' (issue 16)
        from ._cli_moments import cmd_resefa_moments

        return cmd_resefa_moments(args, solver)
    region = parse_region(args.region)      # syntax errors before any loading
    if args.out is None:
        args.out = f"resefa_{_slug(args.region)}.npz"
    check_output(args.out, args.force)
    data = load_npz(args.jacobian, ("jacobian", "space"), "Jacobian")
    J = data["jacobian"]
    if J.ndim != 5 or J.dtype.kind != "f" or 0 in J.shape:
        raise CLIError(f"{args.jacobian}: 'jacobian' must be a float array [N, H, W, C, D], got "
                       f"{list(J.shape)} {J.dtype}")
    bad = int(J.size - np.isfinite(J).sum())
    if bad:
        raise ValueError(f"{args.jacobian}: the Jacobian contains {bad} non-finite value(s) "
                         "(NaN or inf)")
    if args.sample is not None:
        if not 0 <= args.sample < J.shape[0]:
            raise CLIError(f"--sample {args.sample} out of range: {args.jacobian} has "
                           f"{J.shape[0]} sample(s) (0..{J.shape[0] - 1})")
        J = J[args.sample:args.sample + 1]
    if args.k > J.shape[-1]:
        raise CLIError(f"--k {args.k} is more than the {J.shape[-1]} latent dimensions of "
                       f"{args.jacobian}")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        res = resefa(J, region, regularization=args.regularization, k=args.k, solver=solver,
                     aggregate=args.aggregate)
    dirs = np.asarray(res.directions)
    lams = np.asarray(res.eigenvalues)
    if dirs.ndim == 2:
        dirs, lams = dirs[None], lams[None]
    if not (np.isfinite(dirs).all() and np.isfinite(lams).all()):
        raise ValueError("the solver returned non-finite directions or eigenvalues; nothing "
                         "written (try --regularization 1e-3 or --x64)")
    for i, row in enumerate(lams):
        print(f"set {i}: eigenvalues " + " ".join(f"{v:.4g}" for v in row))
    st = res.stats
    out = save_npz(args.out, overwrite=args.force, directions=dirs, eigenvalues=lams,
                   space=str(data["space"]), mask=res.mask, region=args.region, solver=res.solver,
                   condition_number=np.asarray(np.nan if res.condition_number is None
                                               else res.condition_number, np.float64),
                   regularization=res.regularization, jacobian=os.path.abspath(args.jacobian),
                   aggregate=args.aggregate, converged=np.asarray(st.converged, bool),
                   iterations=np.asarray(st.iterations, np.int64),
                   max_residual=np.asarray(st.max_residual, np.float64),
                   condition_method=st.condition_method)
    print(f"wrote {out}: directions {list(dirs.shape)} (space {str(data['space'])!r}, "
          f"solver {res.solver}" + ("" if res.condition_number is None else
                                    f", cond(M_b) {np.max(res.condition_number):.3g}") + ")")
    return 0


# ---- edit / evaluate -------------------------------------------------------------------------

def _load_direction(path, index: int, set_index: int):
    try:  # jaxedit .npz or a ReSeFa / LowRankGAN .npy of W directions
        ds = editing.load_directions(path)
    except ValueError as e:
        raise CLIError(str(e)) from None
    if not 0 <= set_index < ds.directions.shape[0]:
        raise CLIError(f"--set {set_index} out of range: {path} has {ds.directions.shape[0]} set(s)")
    if not 0 <= index < ds.directions.shape[1]:
        raise CLIError(f"--index {index} out of range: {path} has {ds.directions.shape[1]} "
                       f"direction(s)")
    d = np.asarray(ds.pick(index, set_index), np.float64)
    if not np.any(d):
        raise CLIError(f"{path}: direction {index} is all zeros")
    return d, ds.space, ds.mask, list(ds.slots) if ds.slots else None


def _edit_inputs(args):
    from .jacobians import latent_dim

    d, space, mask, file_slots = _load_direction(args.directions, args.index, args.set)
    gen = _load_generator(args.ckpt)
    _check_family_options(gen, args)
    try:
        want = latent_dim(gen, space)
    except ValueError:
        raise CLIError(f"{args.directions}: space {space!r} does not apply to this "
                       f"{'BigGAN' if _is_biggan(gen) else 'StyleGAN2'} generator") from None
    if d.size != want:
        raise CLIError(f"{args.directions}: the direction has {d.size} dimensions but space "
                       f"{space!r} of this generator has {want}: was it made for another generator?")
    psi = _psi(args, editing.REFERENCE_PSI)
    cutoff = args.cutoff if args.cutoff is not None else min(editing.REFERENCE_CUTOFF,
                                                             getattr(gen, "num_ws", 0))
    lat, z, _ = _base_latents(gen, args, "w" if space in ("w", "wplus", "s") else space,
                              psi, cutoff)
    if _is_biggan(gen):
        if args.slots is not None:
            raise CLIError("--slots applies to StyleGAN2 W / W+ directions only")
        kw = dict(c=_class_vectors(gen, args, len(lat)), truncation_psi=_truncation(args))
        return gen, d, space, mask, lat, None, kw
    if space == "s":
        from .editing import flatten_styles

        lat = np.asarray(flatten_styles(gen, gen.styles(lat)))
    if args.slots is not None and space not in ("w", "wplus"):
        raise CLIError(f"--slots applies to W / W+ directions only; {args.directions} is in "
                       f"space {space!r}")
    if args.slots is not None:
        slots = args.slots
    elif space == "wplus":
        slots = None     # a slot-major W+ direction has a block for every slot: edit all of them
    else:
        slots = file_slots or list(editing.REFERENCE_SLOTS)
    slots = slots if space in ("w", "wplus") else None
    if slots is not None and max(slots) >= gen.num_ws:
        raise CLIError(f"--slots {','.join(map(str, slots))} out of range: the generator has "
                       f"{gen.num_ws} W+ slots (0..{gen.num_ws - 1})")
    c = _class_vectors(gen, args, len(lat)) if space == "z" else None
    return gen, d, space, mask, lat, slots, dict(c=c, truncation_psi=psi,
                                                 truncation_cutoff=cutoff)


def _cmd_edit(args) -> int:
    _setup_x64(args)
    from .editing import render_edits, save_edit_grid

    if args.out is None:
        stem = os.path.splitext(os.path.basename(args.directions))[0]
        args.out = f"edit_{_slug(stem)}_{args.index}.png"
    check_output(args.out, args.force)
    gen, d, space, mask, lat, slots, kw = _edit_inputs(args)
    _check_grid(len(lat) * len(args.alphas), gen.resolution, gen.img_channels, "edit",
                "use fewer --seeds or --alphas")
    imgs = render_edits(gen, lat, d, args.alphas, space=space, slots=slots, **kw)
    out = save_edit_grid(imgs, args.out, region=mask if args.draw_region else None,
                         overwrite=args.force)
    print(f"wrote {out}: rows = samples, columns = alphas {[round(a, 3) for a in args.alphas]}")
    return 0


def _cmd_evaluate(args) -> int:
    _setup_x64(args)
    from ._io import progress, save_json
    from .metrics import evaluate_direction

    if args.alpha == 0:
        raise CLIError("--alpha must be non-zero (an edit of size 0 changes nothing)")
    region = None
    if args.region is not None:
        from .regions import parse_region

        region = parse_region(args.region)
    if args.out is not None:
        check_output(args.out, args.force)
    gen, d, space, mask, lat, slots, kw = _edit_inputs(args)
    if region is not None:
        mask = region
    if mask is None:
        raise CLIError(f"{args.directions} stores no region mask: pass --region")
    kw = dict(alpha=args.alpha, space=space, slots=slots, **kw)
    rng = np.random.default_rng(args.random_seed)
    rand = []
    with progress(args.random + 1, "evaluate", unit="direction") as bar:
        res = evaluate_direction(gen, lat, d, mask, **kw)
        bar.update(1)
        for _ in range(args.random):
            rand.append(evaluate_direction(gen, lat, rng.standard_normal(d.shape), mask, **kw))
            bar.update(1)
    if not np.isfinite(res["roir"]):
        raise ValueError(f"ROIR is {res['roir']}: direction {args.index} does not change the "
                         f"pixels inside the region at --alpha {args.alpha:g}"
                         + (f" on W+ slots {slots}" if slots else "") + "; nothing to compare")
    print(f"{'direction':<18} {'ROIR':>8} {'MSE inside':>12} {'MSE outside':>12}")
    print(f"{'index ' + str(args.index):<18} {res['roir']:8.4f} {res['mse_inside']:12.4g} "
          f"{res['mse_outside']:12.4g}")
    if rand:
        rr = [r["roir"] for r in rand]
        finite = [v for v in rr if np.isfinite(v)]
        print(f"{'random (mean of ' + str(len(finite)) + ')':<18} "
              f"{np.mean(finite) if finite else float('nan'):8.4f} "
              f"{np.mean([r['mse_inside'] for r in rand]):12.4g} "
              f"{np.mean([r['mse_outside'] for r in rand]):12.4g}")
        if len(finite) < len(rr):
            print(f"warning: {len(rr) - len(finite)} random direction(s) left the region "
                  "unchanged (ROIR undefined) and are not in the mean", file=sys.stderr)
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


# ---- sefa / spectrum / layers / regions ---------------------------------------------------------

_SEFA_LAYERS = ("all", "coarse", "middle", "fine", "gen_z")


def _cmd_sefa(args) -> int:
    from ._io import save_npz
    from .sefa import sefa

    check_output(args.out, args.force)
    gen = _load_generator(args.ckpt)
    layers = args.layers
    if _is_biggan(gen) and layers not in ("all", "gen_z"):
        raise CLIError(f"--layers {layers if isinstance(layers, str) else 'W+ slots'}: a BigGAN "
                       "generator takes 'all' or 'gen_z'")
    if not _is_biggan(gen) and layers == "gen_z":
        raise CLIError("--layers gen_z is for BigGAN; StyleGAN2 takes all, coarse, middle, fine "
                       "or W+ slots")
    if isinstance(layers, list) and max(layers) >= gen.num_ws:
        raise CLIError(f"--layers: W+ slot {max(layers)} out of range: the generator has "
                       f"{gen.num_ws} slots (0..{gen.num_ws - 1})")
    res = sefa(gen, layers=layers, k=args.k, normalize=None if args.no_normalize else "column")
    space = "z" if _is_biggan(gen) else "w"
    slots = [] if _is_biggan(gen) else list(res.slots)
    print("eigenvalues " + " ".join(f"{v:.4g}" for v in res.eigenvalues))
    label = layers if isinstance(layers, str) else ",".join(map(str, layers))
    out = save_npz(args.out, overwrite=args.force, directions=res.directions[None],
                   eigenvalues=res.eigenvalues[None], space=space,
                   slots=np.asarray(slots, np.int64), solver="sefa", layers=label,
                   checkpoint=_ckpt_label(args.ckpt))
    print(f"wrote {out}: directions [1, {args.k}, {res.directions.shape[1]}] (space {space!r}"
          + (f", W+ slots {slots})" if slots else ")"))
    return 0


def _cmd_spectrum(args) -> int:
    from .spectra import layer_spectrum

    if args.out is not None:
        check_output(args.out, args.force)
    gen = _load_generator(args.ckpt)
    s = np.asarray(layer_spectrum(gen, args.layer, top_k=args.top_k))
    print(f"{args.layer}: {s.size} singular values, max {s[0]:.6g}, min {s[-1]:.6g}")
    print("top: " + " ".join(f"{v:.5g}" for v in s[:10]))
    if args.out:
        from ._io import save_npz

        print(f"wrote {save_npz(args.out, overwrite=args.force, singular_values=s, layer=args.layer)}")
    return 0


def _biggan_layers(gen) -> list[tuple[str, int, int, int]]:
    """(name, input resolution, in channels, out channels) of every BigGAN conv (as
    :func:`jaxedit.spectra.layer_spectrum` names them)."""
    rows, res = [], 4
    for i, (up, _, _) in enumerate(gen.config.layers):
        block = getattr(gen, f"block{i}")
        for k in range(4):
            conv = getattr(block, f"conv_{k}")
            kh, kw, cin, cout = conv.kernel.shape
            rows.append((f"block{i}.conv_{k}", res * (2 if (up and k >= 1) else 1), cin, cout))
        res *= 2 if up else 1
    kh, kw, cin, cout = gen.conv_to_rgb.kernel.shape
    rows.append(("conv_to_rgb", res, cin, 3))
    return rows


def _cmd_layers(args) -> int:
    gen = _load_generator(args.ckpt, which=args.which)
    if _is_biggan(gen):
        print(f"BigGAN-deep {gen.resolution}px: z_dim {gen.z_dim}, {gen.num_classes} classes, "
              f"cond [z, embed] {gen.cond_dim}")
        print(f"\n{'layer':<16} {'resolution':>10} {'in':>6} {'out':>6}")
        print(f"{'gen_z':<16} {4:>10} {gen.cond_dim:>6} {gen.gen_z.kernel.shape[1]:>6}")
        for name, res, cin, cout in _biggan_layers(gen):
            print(f"{name:<16} {res:>10} {cin:>6} {cout:>6}")
        print("\nsefa --layers: all | gen_z; edit/jacobian spaces: z, embed, cond")
        return 0
    from .sefa import stylegan2_presets

    print(f"StyleGAN2 {gen.resolution}px: z_dim {gen.z_dim}, w_dim {gen.w_dim}, c_dim "
          f"{gen.c_dim}, {gen.num_ws} W+ slots")
    print(f"\n{'layer':<12} {'resolution':>10} {'in':>6} {'out':>6} {'style':>6} {'W+ slot':>8}")
    for name, slot in gen._style_layers():
        lay = gen._layer(name)
        kh, kw, cin, cout = lay.weight.shape
        res = int(name.split(".")[0][1:])
        print(f"{name:<12} {res:>10} {cin:>6} {cout:>6} {lay.affine.weight.shape[1]:>6} {slot:>8}")
    print("\nconv layers (spectrum --layer): " + ", ".join(gen.conv_layer_names))
    bands = stylegan2_presets(gen.num_ws)
    print("sefa --layers presets: " + "; ".join(
        f"{k} = {','.join(map(str, v)) if v else '(none)'}" for k, v in bands.items()))
    return 0


def _cmd_regions(args) -> int:
    from . import regions

    print(f"{'preset':<24} {'box y0,x0,y1,x1':<20} grid")
    for name in regions.preset_names():
        r = regions.preset(name)
        if isinstance(r, regions.Box):
            box = ",".join(map(str, r.as_tuple()))
            print(f"{name:<24} {box:<20} {r.grid or 'any'}")
        else:
            shape = "x".join(map(str, np.shape(r)))
            print(f"{name:<24} {'(mask)':<20} {shape}")
    print("\nA region is a preset (the short name works when it is unique, e.g. 'eyes' = "
          "'ffhq/eyes') or a box y0,x0,y1,x1 in pixels of the grid it is used on "
          "(end-exclusive). Every region is resampled to the Jacobian's or the image's grid.")
    return 0


# ---- convert / inspect / demo ------------------------------------------------------------------

def _cmd_convert(args) -> int:
    from .checkpoint import convert_checkpoint

    out = convert_checkpoint(args.src, args.out, which=args.which, overwrite=args.force,
                             allow_nonfinite=args.allow_nonfinite)
    print(f"wrote {out}")
    return 0


def _cmd_inspect(args) -> int:
    from .checkpoint import inspect_checkpoint

    info = inspect_checkpoint(args.src, args.which, allow_nonfinite=args.allow_nonfinite)
    if info.kind == "converted":
        print(json.dumps(info.meta, indent=2, sort_keys=True))
        return 0
    conv = info.converted
    print(f"format:  {conv.source_format}")
    print(f"network: {conv.which}")
    print(f"sha256:  {conv.source_sha256}")
    print("config:  " + json.dumps(conv.config, sort_keys=True))
    inverse = {part: t for t, s in conv.sources.items() for part in s.split("+")}
    width = max(len(k) for k in conv.source_tensors)
    print(f"\n{'source key':<{width}}  {'shape':<20}  jaxedit key")
    for k, shape in conv.source_tensors.items():
        print(f"{k:<{width}}  {str(list(shape)):<20}  {inverse.get(k, '(checked buffer)')}")
    print(f"\n{len(conv.source_tensors)} tensors, {info.num_values:,} values converted; "
          "every check of convert passed")
    return 0


def _cmd_demo(args) -> int:
    from . import demo

    return demo.run(args.out, seeds=args.seeds)


# ---- parser --------------------------------------------------------------------------------------

def _class_arg(p) -> None:
    p.add_argument("--class", dest="class_idx", type=nonneg_int, default=None, metavar="INDEX",
                   help="class index (BigGAN, conditional StyleGAN2; required for those, refused "
                        "for unconditional generators)")


def _truncation_args(p, psi_default: str, cutoff_default: str) -> None:
    p.add_argument("--psi", type=finite_float, default=None,
                   help=f"StyleGAN2 truncation psi: w_avg + psi * (w - w_avg) (default: {psi_default})")
    p.add_argument("--cutoff", type=nonneg_int, default=None,
                   help=f"StyleGAN2: truncate only the first CUTOFF W+ slots (default: {cutoff_default})")
    p.add_argument("--truncation", type=truncation, default=None,
                   help="BigGAN truncation in (0, 1]: scales the truncated-normal z and picks the "
                        "BN statistics (default: 1.0)")


def _latent_args(p, seeds_default: str = "0-4") -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seeds", type=seed_list, default=seeds_default,
                   help="seeds (NVIDIA generate.py latents; BigGAN: truncated-normal z), e.g. 0-7 "
                        "or 1,5,9")
    g.add_argument("--latents", default=None, metavar="FILE",
                   help="a .npy of ws [N, num_ws, w_dim] / w [N, w_dim] (or z [N, z_dim] for "
                        "space z and BigGAN) instead of --seeds")
    p.add_argument("--x64", action="store_true", help="compute in float64")
    _class_arg(p)


_ALPHAS_HELP = ("edit strengths: START:STOP:COUNT (linspace, e.g. -10:10:7) or a comma list (e.g. "
                "-2,0,2); finite values")


def build_parser() -> ArgumentParser:
    import flax
    import jax

    from . import __version__

    p = ArgumentParser(
        prog="jaxedit", description="Local semantic directions in GANs, in JAX.",
        epilog=examples(
            "jaxedit synth default --seeds 0-7              # the embedded default generator",
            "jaxedit convert network-snapshot.pkl ckpt/",
            "jaxedit jacobian ckpt/ --seeds 0-4 --out jacobian.npz",
            "jaxedit resefa --jacobian jacobian.npz --region eyes      # -> resefa_eyes.npz",
            "jaxedit edit ckpt/ --directions resefa_eyes.npz --alphas -10:10:7",
            "jaxedit regions | jaxedit layers ckpt/         # what can be named",
            "",
            "Every error is one line on stderr with exit code 2 (--debug shows the traceback).",
            "Outputs are never overwritten without --force."))
    p.add_argument("--version", action="version", version=f"jaxedit {__version__} (jax {jax.__version__}, flax {flax.__version__})")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("convert", help="convert an NVIDIA .pkl (PyTorch or TensorFlow) / rosinality .pt / "
                                       "Hammer (ReSeFa) .pth / BigGAN to a jaxedit checkpoint",
                       epilog=examples("jaxedit convert network-snapshot.pkl ckpt/",
                                       "jaxedit convert network-snapshot.pkl ckpt/ --which G --force"))
    c.add_argument("src", help="source checkpoint file (or BigGAN directory)")
    c.add_argument("out", help="output checkpoint directory (config.json + params/)")
    c.add_argument("--which", default=None,
                   help="network in the file: G_ema (default) / G; TF pickles Gs (default) / G; "
                        "g_ema / g; Hammer generator_smooth (default) / generator")
    c.add_argument("--force", action="store_true",
                   help="replace OUT if it is itself a jaxedit checkpoint (config.json + params/ "
                        "and nothing else); anything else is refused and left untouched")
    c.add_argument("--allow-nonfinite", action="store_true",
                   help="convert even if parameters hold NaN or infinity (refused by default)")
    c.set_defaults(fn=_cmd_convert)

    i = sub.add_parser("inspect", help="print a checkpoint's format, config and key/shape table",
                       epilog=examples("jaxedit inspect network-snapshot.pkl", "jaxedit inspect ckpt/"))
    i.add_argument("src", help="source checkpoint file or converted directory")
    i.add_argument("--which", default=None, help="network in the file (G_ema by default)")
    i.add_argument("--allow-nonfinite", action="store_true",
                   help="accept parameters holding NaN or infinity, as convert --allow-nonfinite")
    i.set_defaults(fn=_cmd_inspect)

    ly = sub.add_parser("layers", help="list a generator's layers: resolutions, channels, W+ slots",
                        epilog=examples("jaxedit layers ckpt/", "jaxedit layers default"))
    ly.add_argument("ckpt", help=_CKPT_HELP)
    ly.add_argument("--which", default=None, help="network in a source file (G_ema by default)")
    ly.set_defaults(fn=_cmd_layers)

    rg = sub.add_parser("regions", help="list the region presets (for --region)",
                        epilog=examples("jaxedit regions"))
    rg.set_defaults(fn=_cmd_regions)

    s = sub.add_parser("synth", help="synthesize a PNG grid (or one PNG per seed) from seeds",
                       epilog=examples(
                           "jaxedit synth ckpt/ --seeds 0-7 --psi 0.7 --out synth.png",
                           "jaxedit synth ckpt/ --seeds 0-9999 --outdir images/   # seed0000.png ...",
                           "jaxedit synth biggan-deep-256/ --class 207 --truncation 0.4 --seeds 0-7"))
    s.add_argument("ckpt", help=_CKPT_HELP)
    s.add_argument("--seeds", type=seed_list, default="0-7",
                   help="seeds (NVIDIA generate.py latents; BigGAN: truncated-normal z)")
    _truncation_args(s, "1.0", "none: all slots")
    _class_arg(s)
    s.add_argument("--noise-mode", choices=("const", "random", "none"), default=None,
                   help="StyleGAN2 noise inputs (default: const; random images depend on --batch)")
    s.add_argument("--noise-seed", type=nonneg_int, default=None,
                   help="PRNG seed for --noise-mode random (default: 0)")
    s.add_argument("--which", default=None, help="network in a source file (G_ema by default)")
    s.add_argument("--cols", type=positive_int, default=None,
                   help="grid columns (default: one row of up to 16 images, else a square grid)")
    s.add_argument("--batch", type=positive_int, default=16,
                   help="images rendered per call (bounds memory)")
    where = s.add_mutually_exclusive_group()
    add_output_args(s, "synth.png", "the image grid (PNG)", group=where)
    where.add_argument("--outdir", default=None, metavar="DIR",
                   help="instead of a grid, write DIR/seed0000.png ... (created if missing)")
    s.set_defaults(fn=_cmd_synth)

    j = sub.add_parser("jacobian", help="region Jacobians (forward mode) of seeds -> jacobian.npz",
                       epilog=examples(
                           "jaxedit jacobian ckpt/ --seeds 0-4 --space w --resize 256 --channels sum",
                           "jaxedit jacobian ckpt/ --latents ws.npy --space wplus --out J_wplus.npz"))
    j.add_argument("ckpt", help=_CKPT_HELP)
    _latent_args(j)
    j.add_argument("--space", choices=editing.SPACES, default=None,
                   help="latent space: StyleGAN2 w (default), wplus, z, s; BigGAN z (default), "
                        "embed, cond")
    j.add_argument("--resize", type=positive_int, default=None,
                   help="output side in pixels, dividing the image size (default: full resolution)")
    j.add_argument("--resize-mode", choices=("nearest", "area"), default="nearest",
                   help="nearest = pixel (s*i, s*j) as the reference; area = block mean")
    j.add_argument("--channels", choices=("rgb", "sum", "mean"), default="sum",
                   help="keep RGB rows, or sum (ReSeFa) / average (LowRankGAN) them")
    j.add_argument("--chunk", type=positive_int, default=32, help="tangents per vmap (bounds memory)")
    _truncation_args(j, "1.0, the reference", "none: all slots")
    j.add_argument("--precision", choices=("highest", "default"), default="highest",
                   help="matmul/conv precision (default = TF32 on GPUs)")
    j.add_argument("--max-gib", type=positive_float, default=16.0,
                   help="refuse to compute a Jacobian larger than this many GiB")
    add_output_args(j, "jacobian.npz", "the Jacobians (.npz)")
    j.set_defaults(fn=_cmd_jacobian)

    r = sub.add_parser("resefa", help="ReSeFa directions for a region from jacobian.npz -> resefa_<region>.npz",
                       epilog=examples(
                           "jaxedit resefa --jacobian jacobian.npz --region eyes --k 10",
                           "jaxedit resefa --jacobian jacobian.npz --region 100,60,140,200 --aggregate mean",
                           "jaxedit resefa --moments moments.npz --region eyes   # from 'jaxedit moments'",
                           "jaxedit regions            # the presets"))
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--jacobian", default=None, metavar="FILE", help="a file written by 'jaxedit jacobian'")
    src.add_argument("--moments", default=None, metavar="FILE",
                   help="instead of --jacobian: a file written by 'jaxedit moments' (many samples; "
                        "--region names one of its regions; solver auto, dense, matrix_free or "
                        "reference)")
    r.add_argument("--region", required=True,
                   help="preset (eyes, ffhq/mouth, biggan/head0, ...: see 'jaxedit regions') or "
                        "y0,x0,y1,x1 on the Jacobian grid")
    r.add_argument("--k", type=positive_int, default=10, help="number of directions")
    r.add_argument("--solver", choices=("auto", "dense", "woodbury", "matrix_free", "reference"),
                   default="auto", help="generalized eigensolver (auto: dense)")
    r.add_argument("--tol", type=positive_float, default=None,
                   help="matrix_free: residual tolerance (default: 1e-6 in float64, 1e-3 in "
                        "float32)")
    r.add_argument("--maxiter", type=positive_int, default=None,
                   help="matrix_free: LOBPCG iteration limit (default: 500)")
    r.add_argument("--regularization", type=nonneg_float, default=0.0,
                   help="tau of tau*trace(M_b)*I (the reference's full_rank: 1e-3)")
    r.add_argument("--aggregate", choices=("none", "mean"), default="none",
                   help="none: one direction set per sample; mean: average M_f, M_b over samples")
    r.add_argument("--sample", type=nonneg_int, default=None, help="use one sample of J only (default: all)")
    r.add_argument("--x64", action="store_true", help="solve in float64")
    add_output_args(r, None, "the directions (.npz; default: resefa_<region>.npz)")
    r.set_defaults(fn=_cmd_resefa)

    for name, fn, helptext in (("edit", _cmd_edit, "render a direction over an alpha grid -> PNG"),
                               ("evaluate", _cmd_evaluate, "ROIR / masked MSE of a direction over seeds")):
        if name == "edit":
            ex = examples("jaxedit edit ckpt/ --directions resefa_eyes.npz --index 0 --alphas -10:10:7",
                          "jaxedit edit ckpt/ --directions sefa.npz --alphas=-3,0,3 --seeds 0-3",
                          "(--alphas is START:STOP:COUNT or a comma list)")
        else:
            ex = examples("jaxedit evaluate ckpt/ --directions resefa_eyes.npz --seeds 0-99 --alpha 3",
                          "jaxedit evaluate ckpt/ --directions sefa.npz --region ffhq/mouth --out m.json")
        e = sub.add_parser(name, help=helptext, epilog=ex)
        e.add_argument("ckpt", help=_CKPT_HELP)
        e.add_argument("--directions", required=True, metavar="FILE",
                       help="directions (.npz) from 'jaxedit resefa' or 'jaxedit sefa', or a .npy "
                            "of W directions [D] / [K, D] (ReSeFa's shipped files)")
        e.add_argument("--index", type=nonneg_int, default=0, help="direction index (0 = top)")
        e.add_argument("--set", type=nonneg_int, default=0, help="direction set (sample) index")
        _latent_args(e)
        e.add_argument("--slots", type=parse_int_list, default=None,
                       help="W+ slots to edit (default: every slot for a W+ direction, else "
                            "the file's SeFa slots, else the ReSeFa reference 4-7; 8-11 for "
                            "eyebrows/lipstick)")
        _truncation_args(e, f"{editing.REFERENCE_PSI}, the reference",
                         f"{editing.REFERENCE_CUTOFF}, the reference")
        if name == "edit":
            # let "--alphas -10:10:7" parse: such values count as negative numbers, not options
            e._negative_number_matcher = re.compile(r"^-\d[\d.:,eE+-]*$|^-\.\d[\d.:,eE+-]*$")
            e.add_argument("--alphas", type=parse_alphas,
                           default=":".join(["-10", "10", str(len(editing.REFERENCE_ALPHAS))]),
                           help=_ALPHAS_HELP)
            e.add_argument("--no-region", dest="draw_region", action="store_false",
                           help="do not draw the direction file's region box")
            add_output_args(e, None, "the grid (PNG; default: edit_<directions file>_<index>.png)")
        else:
            e.add_argument("--alpha", type=finite_float, default=3.0,
                           help="edit strength along the unit-norm direction")
            e.add_argument("--random", type=nonneg_int, default=8,
                           help="random directions for a baseline")
            e.add_argument("--random-seed", type=nonneg_int, default=0,
                           help="seed of the random directions")
            e.add_argument("--region", default=None,
                           help="preset or y0,x0,y1,x1 on the image (default: the file's mask)")
            add_output_args(e, None, "the metrics as JSON (default: print only)")
        e.set_defaults(fn=fn)

    sf = sub.add_parser("sefa", help="SeFa closed-form directions -> sefa.npz (render with edit)",
                        epilog=examples("jaxedit sefa ckpt/ --layers all --k 10",
                                        "jaxedit sefa ckpt/ --layers 2-5 --out sefa_middle.npz",
                                        "jaxedit layers ckpt/        # W+ slots and presets"))
    sf.add_argument("ckpt", help=_CKPT_HELP)
    sf.add_argument("--layers", type=name_or_int_list(_SEFA_LAYERS), default="all",
                    help="all | coarse | middle | fine | W+ slots like 2-5 (BigGAN: all | gen_z)")
    sf.add_argument("--k", type=positive_int, default=10, help="number of directions")
    sf.add_argument("--no-normalize", action="store_true", help="raw weights (rosinality's variant)")
    add_output_args(sf, "sefa.npz", "the directions (.npz)")
    sf.set_defaults(fn=_cmd_sefa)

    sp = sub.add_parser("spectrum", help="singular values of a conv layer (circular padding, FFT)",
                        epilog=examples("jaxedit spectrum ckpt/ --layer b16.conv1 --top-k 10",
                                        "jaxedit layers ckpt/        # the layer names"))
    sp.add_argument("ckpt", help=_CKPT_HELP)
    sp.add_argument("--layer", required=True,
                    help="conv layer, e.g. b16.conv1 (BigGAN: block3.conv_1); see 'jaxedit layers'")
    sp.add_argument("--top-k", type=positive_int, default=None,
                    help="keep the largest K values (default: all)")
    add_output_args(sp, None, "the values (.npz; default: print only)")
    sp.set_defaults(fn=_cmd_spectrum)

    d = sub.add_parser("demo", help="run the main workflow on the embedded default generator",
                       epilog=examples("jaxedit demo", "jaxedit demo --out demo_run --seeds 0-3"))
    d.add_argument("--out", default="jaxedit_demo",
                   help="output directory (created if missing); a rerun replaces only the demo's "
                        "own files in it (grid.png, edit_*.png, report.json, and default_ckpt/ "
                        "only if it is a jaxedit checkpoint), atomically, and nothing else")
    d.add_argument("--seeds", type=seed_list, default="0-7", help="seeds of the samples")
    d.set_defaults(fn=_cmd_demo)

    import importlib

    for mod in PLUGIN_MODULES:
        importlib.import_module(mod).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 any error: one line on stderr)."""
    return run(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
