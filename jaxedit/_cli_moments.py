"""``jaxedit moments`` (streaming region moments over many seeds, checkpointed, resumable),
``jaxedit moments-merge`` (combine shards) and the ``--moments`` input of ``jaxedit resefa``."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

import numpy as np

# Test hook: called as ``_after_checkpoint(done, total)`` after every checkpoint write.
_after_checkpoint = None

_RUN_KEYS = ("run_samples", "run_seeds", "run_latents_sha256", "run_complete", "run_checkpoint",
             "run_step_samples", "run_class")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return v


def _finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return v


def parse_regions(text: str) -> dict:
    """``"eyes,mouth"`` (presets) and / or ``"box=y0:x0:y1:x1"`` (named boxes on the Jacobian
    grid) -> ``{name: region}``."""
    from .regions import Box, preset

    out: dict = {}
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if "=" in part:
            name, spec = (s.strip() for s in part.split("=", 1))
            try:
                region = Box(*(int(v) for v in spec.split(":")))
            except (TypeError, ValueError) as e:
                raise argparse.ArgumentTypeError(
                    f"region {part!r}: expected NAME=y0:x0:y1:x1 ({e})") from None
        else:
            name = part
            try:
                region = preset(part)
            except ValueError as e:
                raise argparse.ArgumentTypeError(str(e)) from None
        if not name or name in out:
            raise argparse.ArgumentTypeError(f"region name {name!r} is empty or given twice")
        out[name] = region
    if not out:
        raise argparse.ArgumentTypeError(f"no regions in {text!r}")
    return out


def register(sub) -> None:
    from .cli import parse_int_list

    p = sub.add_parser(
        "moments", help="ReSeFa region moments M_f, M_b over many seeds (streaming, sharded over "
                        "all devices, checkpointed, --resume) -> moments.npz",
        description="Accumulate the per-region moments M_f, M_b of the generator's Jacobian "
                    "over many samples without keeping any Jacobian beyond the current batch. "
                    "Samples are sharded over every device (and every process with "
                    "--distributed). The partial sums are written to --out atomically every "
                    "--checkpoint-every seconds; --resume continues from them. Solve with "
                    "'jaxedit resefa --moments OUT --region NAME'.")
    p.add_argument("ckpt", help="generator checkpoint (jaxedit dir, NVIDIA .pkl, rosinality .pt)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--seeds", type=parse_int_list,
                     help="seeds, e.g. 0-9999 or 1,5,9 (NVIDIA generate.py z per seed)")
    src.add_argument("--latents", default=None,
                     help=".npy of ws [N, num_ws, w_dim] / w [N, w_dim] (z [N, z_dim] for space z "
                          "and BigGAN) instead of seeds")
    p.add_argument("--regions", type=parse_regions, required=True,
                   help="comma list of presets (eyes, mouth, nose, ffhq/chin, biggan/head0 ...) "
                        "and/or named boxes NAME=y0:x0:y1:x1 on the Jacobian grid")
    p.add_argument("--space", choices=("w", "wplus", "z", "s", "embed", "cond"), default=None,
                   help="StyleGAN2: w (default), wplus, z, s; BigGAN: z (default), embed, cond")
    p.add_argument("--resize", type=_positive_int, default=None,
                   help="Jacobian grid side (e.g. 256; must divide the image size; default: full)")
    p.add_argument("--resize-mode", choices=("nearest", "area"), default="nearest",
                   help="nearest (reference: pixel s*i, s*j) or area (s x s mean)")
    p.add_argument("--channels", choices=("rgb", "sum", "mean"), default="sum",
                   help="rows per pixel: rgb (3), sum (reference), mean (LowRankGAN)")
    p.add_argument("--psi", type=_finite_float, default=1.0,
                   help="truncation of the seeds' latents (reference: 1.0, none)")
    p.add_argument("--cutoff", type=_positive_int, default=None,
                   help="truncate only the first CUTOFF W+ slots")
    p.add_argument("--class", dest="class_idx", type=int, default=None,
                   help="class index (BigGAN, conditional StyleGAN2)")
    p.add_argument("--truncation", type=_finite_float, default=1.0,
                   help="BigGAN truncation in (0, 1]: scales the truncated-normal z and picks "
                        "the BN statistics")
    p.add_argument("--batch", type=_positive_int, default=1,
                   help="samples per device per step (memory: batch Jacobians per device)")
    p.add_argument("--chunk", type=_positive_int, default=32,
                   help="tangents per vmap in the forward-mode Jacobian (memory bound)")
    p.add_argument("--gram", choices=("dense", "stream"), default="dense",
                   help="dense (fastest: forms each step's Jacobians) or stream (never forms a "
                        "Jacobian: memory batch x rows x chunk, 2 x regions VJPs per column)")
    p.add_argument("--precision", choices=("highest", "default"), default="highest",
                   help="generator matmul precision (default: TF32 on GPUs)")
    p.add_argument("--x64", action="store_true", help="compute in float64")
    p.add_argument("--out", default="moments.npz", help="output .npz (default: moments.npz)")
    p.add_argument("--checkpoint-every", type=_nonneg_float, default=300.0, metavar="SECONDS",
                   help="write the partial sums to --out at most every SECONDS (default 300; "
                        "0: after every step); an interrupted run loses at most one interval")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the partial run in --out (refused if it was made with other "
                           "settings, seeds or checkpoint)")
    mode.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--distributed", action="store_true",
                   help="multi-process run: call jax.distributed.initialize() (auto-detects "
                        "SLURM / Open MPI; or give --coordinator, --num-processes, --process-id)")
    p.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (--distributed)")
    p.add_argument("--num-processes", type=_positive_int, default=None,
                   help="number of processes (--distributed)")
    p.add_argument("--process-id", type=int, default=None, help="this process (--distributed)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    p.set_defaults(fn=cmd_moments)

    m = sub.add_parser("moments-merge",
                       help="merge moment files of one study (e.g. shards over seed ranges)")
    m.add_argument("inputs", nargs="+", help="moment .npz files (same settings, disjoint seeds)")
    m.add_argument("--out", required=True, help="merged .npz")
    m.add_argument("--force", action="store_true", help="replace an existing --out")
    m.set_defaults(fn=cmd_merge)


# ---------------------------------------------------------------------------------------------
def _distributed(args) -> None:
    given = [args.coordinator, args.num_processes, args.process_id]
    if not args.distributed:
        if any(v is not None for v in given):
            raise ValueError("--coordinator / --num-processes / --process-id need --distributed")
        return
    import jax

    if any(v is None for v in given) and any(v is not None for v in given):
        raise ValueError("give all of --coordinator, --num-processes, --process-id, or none "
                         "(auto-detection from SLURM / Open MPI)")
    if args.process_id is not None and not 0 <= args.process_id < args.num_processes:
        raise ValueError(f"--process-id must be in [0, {args.num_processes}), got "
                         f"{args.process_id}")
    kw = {}
    if args.coordinator is not None:
        kw = dict(coordinator_address=args.coordinator, num_processes=args.num_processes,
                  process_id=args.process_id)
    jax.distributed.initialize(**kw)


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cmd_moments(args) -> int:
    _distributed(args)
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    from .checkpoint import load_generator
    from .moments import moment_settings, read_moments, region_moments, save_moments

    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        raise ValueError(f"--out {args.out} is a directory")
    if os.path.exists(out) and not (args.resume or args.force):
        raise FileExistsError(f"{args.out} exists: pass --resume to continue it or --force to "
                              f"replace it")
    if args.resume and not os.path.exists(out):
        raise FileNotFoundError(f"--resume: {args.out} does not exist (start without --resume)")
    gen = load_generator(args.ckpt)
    biggan = getattr(gen, "family", None) == "biggan"
    space = args.space or ("z" if biggan else "w")
    if args.latents is not None:
        if not os.path.isfile(args.latents):
            raise FileNotFoundError(f"--latents file not found: {args.latents}")
        try:
            samples = np.load(args.latents, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"--latents {args.latents}: not a readable .npy ({e})") from None
        if not isinstance(samples, np.ndarray) or samples.ndim < 2:
            raise ValueError(f"--latents {args.latents}: expected an array [N, ...]")
        lat_sha = _file_sha256(args.latents)
        n_total = samples.shape[0]
    else:
        samples, lat_sha, n_total = list(args.seeds), "", len(args.seeds)
    c = None
    classes = gen.num_classes if biggan else gen.c_dim
    if classes:
        if args.class_idx is None:
            raise ValueError(f"this generator is conditional: pass --class (0..{classes - 1})")
        if not 0 <= args.class_idx < classes:
            raise ValueError(f"--class must be in [0, {classes}), got {args.class_idx}")
        from .models.biggan import one_hot

        c = one_hot([args.class_idx], classes)[0]
    psi = args.truncation if biggan else args.psi
    kw = dict(space=space, resize=args.resize, resize_mode=args.resize_mode,
              channels=args.channels, truncation_psi=psi,
              truncation_cutoff=None if biggan else args.cutoff, precision=args.precision)
    settings, masks, _ = moment_settings(gen, args.regions, **kw)
    run = dict(run_samples=np.int64(n_total),
               run_seeds=np.asarray(samples if args.latents is None else [], np.int64),
               run_latents_sha256=lat_sha, run_checkpoint=os.path.abspath(args.ckpt),
               run_class=np.int64(-1 if args.class_idx is None else args.class_idx))
    initial, done0 = None, 0
    if args.resume:
        initial, data = read_moments(out)
        _check_resume(args.out, data, initial, settings, masks, run)
        done0 = int(next(iter(initial.values())).n_samples)
        if done0 == n_total:
            if not bool(data["run_complete"]) and jax.process_index() == 0:
                save_moments(out, initial, **run, run_complete=True,
                             run_step_samples=np.int64(data["run_step_samples"]))
            print(f"{args.out} is complete ({n_total} samples): nothing to do")
            return 0
        print(f"resuming {args.out}: {done0} of {n_total} samples done")
    leader = jax.process_index() == 0
    n_dev = jax.device_count()
    step_samples = args.batch * n_dev
    if leader:
        print(f"{n_total} sample(s), space {space!r}, grid {settings.grid}, D={settings.dim}, "
              f"regions {list(masks)}; {n_dev} device(s) in {jax.process_count()} process(es), "
              f"{step_samples} samples per step")
    state = {"t": time.monotonic()}

    def write(moments, complete: bool) -> None:
        if leader:
            save_moments(out, moments, **run, run_complete=complete,
                         run_step_samples=np.int64(step_samples))

    def checkpoint(done, total, partial):
        now = time.monotonic()
        if done < total and now - state["t"] < args.checkpoint_every:
            return
        parts = partial()
        if done < total:      # the final write (complete) happens below
            write(parts, False)
            state["t"] = now
            if _after_checkpoint is not None:
                _after_checkpoint(done0 + done, n_total)

    rest = samples[done0:]
    res = region_moments(gen, rest, args.regions, c=c, batch=args.batch, chunk=args.chunk,
                         gram=args.gram, progress=args.progress, callback=checkpoint,
                         initial=initial, **kw)
    write(res, True)
    if leader:
        first = next(iter(res.values()))
        print(f"wrote {out}: {len(res)} region(s), {first.n_samples} samples, "
              f"M_f / M_b [{settings.dim}, {settings.dim}]")
    return 0


def _check_resume(name, data, initial, settings, masks, run) -> None:
    missing = [k for k in _RUN_KEYS if k not in data]
    if missing:
        raise ValueError(f"--resume: {name} was not written by 'jaxedit moments' (missing "
                         f"{missing})")
    first = next(iter(initial.values()))
    problems = first.settings.differences(settings)
    if sorted(initial) != sorted(masks):
        problems.append(f"regions {sorted(initial)} vs {sorted(masks)}")
    else:
        from .moments import _pack_mask

        problems += [f"region {n!r} mask" for n, m in masks.items()
                     if initial[n].mask_bits != _pack_mask(m)]
    if int(data["run_samples"]) != int(run["run_samples"]) or not np.array_equal(
            data["run_seeds"], run["run_seeds"]):
        problems.append("seeds / number of samples")
    if str(data["run_latents_sha256"]) != run["run_latents_sha256"]:
        problems.append("--latents file contents")
    if int(data["run_class"]) != int(run["run_class"]):
        problems.append("--class")
    if problems:
        raise ValueError(f"--resume: {name} was made with other settings ("
                         + "; ".join(problems) + "); use another --out or --force")
    done = int(first.n_samples)
    if done > int(run["run_samples"]):
        raise ValueError(f"--resume: {name} holds {done} samples, more than the run's "
                         f"{int(run['run_samples'])}")
    if first.seeds is not None and tuple(run["run_seeds"][:done]) != first.seeds:
        raise ValueError(f"--resume: the seeds in {name} are not the first {done} of --seeds")


def cmd_merge(args) -> int:
    from .moments import merge_moments, read_moments, save_moments

    out = os.path.abspath(args.out)
    if os.path.exists(out) and not args.force:
        raise FileExistsError(f"{args.out} exists: pass --force to replace it")
    if out in {os.path.abspath(p) for p in args.inputs}:
        raise ValueError("--out must not be one of the inputs")
    parts = []
    for p in args.inputs:
        moments, data = read_moments(p)
        if "run_complete" in data and not bool(data["run_complete"]):
            print(f"note: {p} is a partial run ({next(iter(moments.values())).n_samples} of "
                  f"{int(data['run_samples'])} samples)", file=sys.stderr)
        parts.append(moments)
    try:
        merged = merge_moments(*parts)
    except ValueError as e:
        raise ValueError(f"cannot merge {', '.join(args.inputs)}: {e}") from None
    save_moments(out, merged)
    first = next(iter(merged.values()))
    print(f"wrote {out}: {len(merged)} region(s), {first.n_samples} samples from "
          f"{len(parts)} file(s)")
    return 0


# ---------------------------------------------------------------------------------------------
def cmd_resefa_moments(args) -> int:
    """``jaxedit resefa --moments FILE --region NAME``: directions from stored moments."""
    import warnings

    from ._io import save_npz
    from .moments import read_moments
    from .region_factorization import resefa

    if args.jacobian is not None:
        raise ValueError("give either --jacobian or --moments, not both")
    if args.sample is not None:
        raise ValueError("--sample needs --jacobian: moments are already averaged over samples")
    moments, data = read_moments(args.moments)
    if args.region not in moments:
        raise ValueError(f"{args.moments} has no region {args.region!r}; it holds "
                         f"{sorted(moments)}")
    m = moments[args.region]
    if "run_complete" in data and not bool(data["run_complete"]):
        print(f"note: {args.moments} is a partial run ({m.n_samples} of "
              f"{int(data['run_samples'])} samples)", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        res = resefa(m, regularization=args.regularization, k=args.k, solver=args.solver)
    print("eigenvalues " + " ".join(f"{v:.4g}" for v in np.asarray(res.eigenvalues)))
    out = save_npz(args.out, directions=np.asarray(res.directions)[None],
                   eigenvalues=np.asarray(res.eigenvalues)[None], space=m.settings.space,
                   mask=res.mask, region=args.region, solver=res.solver,
                   condition_number=np.asarray(res.condition_number, np.float64),
                   regularization=res.regularization, moments=os.path.abspath(args.moments),
                   aggregate="mean", n_samples=np.int64(m.n_samples))
    print(f"wrote {out}: directions [1, {res.directions.shape[0]}, {res.directions.shape[1]}] "
          f"(space {m.settings.space!r}, {m.n_samples} samples, solver {res.solver}, "
          f"cond(M_b) {res.condition_number:.3g})")
    return 0
