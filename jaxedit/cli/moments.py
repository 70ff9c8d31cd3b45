"""``jaxedit moments`` (streaming region moments over many seeds, checkpointed, resumable) and
``jaxedit moments-merge`` (combine shards). ``jaxedit resefa --moments`` solves them
(`jaxedit.cli.resefa`)."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

import numpy as np

from . import _generators
from ._common import (
    CLIError,
    add_output_args,
    check_output,
    examples,
    nonneg_float,
    nonneg_int,
    positive_int,
    seed_list,
    setup_x64,
)
from ._generators import (
    CKPT_HELP,
    add_class_arg,
    add_truncation_args,
    check_family_options,
    ckpt_label,
    class_vectors,
    psi_of,
    read_latents,
    slug,
    truncation_of,
)

_RUN_KEYS = (
    "run_samples",
    "run_seeds",
    "run_latents_sha256",
    "run_complete",
    "run_checkpoint",
    "run_step_samples",
    "run_class",
)


def parse_regions(text: str) -> dict:
    """``"eyes,mouth"`` (presets) and / or ``"box=y0:x0:y1:x1"`` (named boxes on the Jacobian
    grid) -> ``{name: region}``; a short name that several preset sets have stays a string until
    `jaxedit.cli._generators.resolve_regions` resolves it by the loaded generator."""
    from ..errors import AmbiguousRegionError
    from ..regions import Box, preset

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
                    f"region {part!r}: expected NAME=y0:x0:y1:x1 ({e})"
                ) from None
        else:
            name = part
            try:
                region = preset(part)
            except AmbiguousRegionError:
                region = part  # resolved by the generator once it is loaded (resolve_regions)
            except ValueError as e:
                raise argparse.ArgumentTypeError(str(e)) from None
        if not name or name in out:
            raise argparse.ArgumentTypeError(f"region name {name!r} is empty or given twice")
        out[name] = region
    if not out:
        raise argparse.ArgumentTypeError(f"no regions in {text!r}")
    return out


def host_port(text) -> str:
    """``HOST:PORT`` (the coordinator of ``jax.distributed``)."""
    host, sep, port = str(text).strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. node0:12345), got {text!r}")
    return f"{host}:{int(port)}"


def register(sub) -> None:
    """Add ``moments`` and ``moments-merge`` to the ``jaxedit`` subparsers ``sub``."""
    p = sub.add_parser(
        "moments",
        help="ReSeFa region moments M_f, M_b over many seeds (streaming, sharded over "
        "all devices, checkpointed, --resume) -> moments_<regions>.npz",
        description="Accumulate the per-region moments M_f, M_b of the generator's Jacobian "
        "over many samples without keeping any Jacobian beyond the current batch. "
        "Samples are sharded over every device (and every process with "
        "--distributed). The partial sums are written to --out atomically every "
        "--checkpoint-every seconds; --resume continues from them. Solve with "
        "'jaxedit resefa --moments OUT --region NAME'.",
        epilog=examples(
            "jaxedit moments ckpt/ --seeds 0-9999 --regions eyes,mouth,nose --resize 256",
            "jaxedit moments ckpt/ --seeds 0-9999 --regions eyes,mouth,nose --resize 256 --resume",
            "jaxedit moments ckpt/ --seeds 0-99 --regions eyes,box=10:20:30:40 --out m.npz",
            "jaxedit resefa --moments moments_eyes-mouth-nose.npz --region eyes --k 10",
            "jaxedit moments-merge part0.npz part1.npz --out moments_eyes.npz",
        ),
    )
    p.add_argument("ckpt", help=CKPT_HELP)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--seeds",
        type=seed_list,
        help="seeds, e.g. 0-9999 or 1,5,9 (NVIDIA generate.py z per seed; BigGAN: "
        "truncated-normal z)",
    )
    src.add_argument(
        "--latents",
        default=None,
        metavar="FILE",
        help="a .npy of ws [N, num_ws, w_dim] / w [N, w_dim] (z [N, z_dim] for space "
        "z and BigGAN) instead of --seeds",
    )
    p.add_argument(
        "--regions",
        type=parse_regions,
        required=True,
        help="comma list of presets (eyes, mouth, nose, ffhq/chin, biggan/head0 ...: "
        "see 'jaxedit regions') and/or named boxes NAME=y0:x0:y1:x1 on the "
        "Jacobian grid",
    )
    p.add_argument(
        "--space",
        choices=("w", "wplus", "z", "s", "embed", "cond"),
        default=None,
        help="StyleGAN2: w (default), wplus, z, s; BigGAN: z (default), embed, cond",
    )
    p.add_argument(
        "--resize",
        type=positive_int,
        default=None,
        help="Jacobian grid side in pixels, dividing the image size (e.g. 256; "
        "default: full resolution)",
    )
    p.add_argument(
        "--resize-mode",
        choices=("nearest", "area"),
        default="nearest",
        help="nearest = pixel (s*i, s*j) as the reference; area = block mean",
    )
    p.add_argument(
        "--channels",
        choices=("rgb", "sum", "mean"),
        default="sum",
        help="keep RGB rows, or sum (ReSeFa) / average (LowRankGAN) them; the command line "
        "sums (3x smaller), the Python OutputSpec keeps 'rgb' unless told",
    )
    add_truncation_args(p, "1.0, the reference", "none: all slots")
    add_class_arg(p)
    p.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        help="samples per device per step (memory: batch Jacobians per device)",
    )
    p.add_argument(
        "--chunk",
        type=positive_int,
        default=32,
        help="tangents per vmap in the forward-mode Jacobian (bounds memory)",
    )
    p.add_argument(
        "--gram",
        choices=("dense", "stream"),
        default="dense",
        help="dense (fastest: forms each step's Jacobians) or stream (never forms a "
        "Jacobian: memory batch x rows x chunk, 2 x regions VJPs per column)",
    )
    p.add_argument(
        "--precision",
        choices=("highest", "default"),
        default="highest",
        help="matmul/conv precision (default = TF32 on GPUs)",
    )
    p.add_argument("--x64", action="store_true", help="compute in float64")
    add_output_args(
        p,
        None,
        "the moments (.npz; default: moments_<regions>.npz; the partial sums while running)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=nonneg_float,
        default=300.0,
        metavar="SECONDS",
        help="write the partial sums to --out at most every SECONDS (0: after every "
        "step); an interrupted run loses at most one interval",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the partial run in --out (refused if it was made with other "
        "settings, seeds or checkpoint; not with --force)",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="multi-process run: call jax.distributed.initialize() (auto-detects "
        "SLURM / Open MPI; or give --coordinator, --num-processes, --process-id)",
    )
    p.add_argument(
        "--coordinator",
        type=host_port,
        default=None,
        metavar="HOST:PORT",
        help="address of process 0 (--distributed)",
    )
    p.add_argument(
        "--num-processes",
        type=positive_int,
        default=None,
        help="number of processes (--distributed)",
    )
    p.add_argument(
        "--process-id",
        type=nonneg_int,
        default=None,
        help="this process, 0 .. num-processes - 1 (--distributed)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(fn=cmd_moments)

    m = sub.add_parser(
        "moments-merge",
        help="merge moment files of one study (e.g. shards over seed ranges) -> moments_merged.npz",
        epilog=examples("jaxedit moments-merge part0.npz part1.npz --out moments_eyes.npz"),
    )
    m.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE",
        help="files written by 'jaxedit moments' (same settings, disjoint seeds)",
    )
    add_output_args(m, "moments_merged.npz", "the merged moments (.npz)")
    m.set_defaults(fn=cmd_merge)


# ---------------------------------------------------------------------------------------------
def _check_distributed(args) -> None:
    given = [args.coordinator, args.num_processes, args.process_id]
    if not args.distributed:
        if any(v is not None for v in given):
            raise CLIError("--coordinator / --num-processes / --process-id need --distributed")
        return
    if any(v is None for v in given) and any(v is not None for v in given):
        raise CLIError(
            "give all of --coordinator, --num-processes, --process-id, or none "
            "(auto-detection from SLURM / Open MPI)"
        )
    if args.process_id is not None and not args.process_id < args.num_processes:
        raise CLIError(f"--process-id must be in [0, {args.num_processes}), got {args.process_id}")


def _initialize_distributed(args) -> None:
    if not args.distributed:
        return
    import jax

    kw = {}
    if args.coordinator is not None:
        kw = dict(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    jax.distributed.initialize(**kw)


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _default_out(regions) -> str:
    return f"moments_{slug('-'.join(regions))}.npz"


def cmd_moments(args) -> int:
    if args.resume and args.force:
        raise CLIError("--resume continues --out, --force replaces it: give one of them")
    _check_distributed(args)
    if args.out is None:
        args.out = _default_out(args.regions)
    if args.resume:  # the file must be there (it is read and replaced)
        out = check_output(args.out, True)
        if not os.path.isfile(out):
            raise CLIError(f"--resume: {args.out} does not exist (start without --resume)")
    else:
        try:
            out = check_output(args.out, args.force)  # before any expensive work
        except FileExistsError:
            raise CLIError(
                f"{args.out} already exists (pass --force to replace it, or --resume "
                f"to continue the run it holds)"
            ) from None
    _initialize_distributed(args)
    setup_x64(args)
    import jax

    from ..jacobians import OutputSpec
    from ..methods.resefa import moment_settings, read_moments, region_moments, save_moments
    from ..sampling import Compute, Sampling

    gen = _generators.load_generator(args.ckpt)
    check_family_options(gen, args)
    args.regions = _generators.resolve_regions(
        args.regions, _generators.region_preference(args.ckpt, gen)
    )
    stats = gen.truncation_kind == "stats"
    space = args.space or gen.default_space
    if args.latents is not None:
        samples = read_latents(gen, args.latents, space)
        lat_sha = _file_sha256(args.latents)
        n_total = samples.shape[0]
    else:
        samples, lat_sha, n_total = list(args.seeds), "", len(args.seeds)
    c = class_vectors(gen, args, 1)
    c = None if c is None else c[0]
    psi = truncation_of(args) if stats else psi_of(args)
    output = OutputSpec(args.resize, args.resize_mode, args.channels)
    sampling = Sampling(c=c, truncation_psi=psi, truncation_cutoff=None if stats else args.cutoff)
    settings, masks, _ = moment_settings(
        gen,
        args.regions,
        space=space,
        output=output,
        sampling=sampling,
        compute=Compute(precision=args.precision),
    )
    run = dict(
        run_samples=np.int64(n_total),
        run_seeds=np.asarray(samples if args.latents is None else [], np.int64),
        run_latents_sha256=lat_sha,
        run_checkpoint=ckpt_label(args.ckpt),
        run_class=np.int64(-1 if args.class_idx is None else args.class_idx),
    )
    initial, done0 = None, 0
    leader = jax.process_index() == 0
    if args.resume:
        initial, data = read_moments(out)
        _check_resume(args.out, data, initial, settings, masks, run)
        done0 = int(next(iter(initial.values())).n_samples)
        if done0 == n_total:
            if not bool(data["run_complete"]) and leader:
                save_moments(
                    out,
                    initial,
                    overwrite=True,
                    **run,
                    run_complete=True,
                    run_step_samples=np.int64(data["run_step_samples"]),
                )
            print(f"{args.out} is complete ({n_total} samples): nothing to do")
            return 0
        print(f"resuming {args.out}: {done0} of {n_total} samples done")
    n_dev = jax.device_count()
    step_samples = args.batch * n_dev
    if leader:
        print(
            f"{n_total} sample(s), space {space!r}, grid {settings.grid}, D={settings.dim}, "
            f"regions {list(masks)}; {n_dev} device(s) in {jax.process_count()} process(es), "
            f"{step_samples} samples per step"
        )
    state = {"t": time.monotonic(), "ours": False}

    def write(moments, complete: bool) -> None:
        if leader:  # the first write follows the output policy; later ones replace our own file
            save_moments(
                out,
                moments,
                overwrite=state["ours"] or args.force or args.resume,
                **run,
                run_complete=complete,
                run_step_samples=np.int64(step_samples),
            )
            state["ours"] = True

    def checkpoint(done, total, partial):
        now = time.monotonic()
        if done < total and now - state["t"] < args.checkpoint_every:
            return
        if done < total:  # the final write (complete) happens below
            write(partial(), False)
            state["t"] = now

    rest = samples[done0:]
    compute = Compute(precision=args.precision, chunk=args.chunk, batch_size=args.batch)
    res = region_moments(
        gen,
        rest,
        args.regions,
        space=space,
        output=output,
        sampling=sampling,
        compute=compute,
        gram=args.gram,
        progress=args.progress,
        callback=checkpoint,
        initial=initial,
    )
    write(res, True)
    if leader:
        first = next(iter(res.values()))
        print(
            f"wrote {out}: {len(res)} region(s), {first.n_samples} samples, "
            f"M_f / M_b [{settings.dim}, {settings.dim}]"
        )
    return 0


def _check_resume(name, data, initial, settings, masks, run) -> None:
    missing = [k for k in _RUN_KEYS if k not in data]
    if missing:
        raise CLIError(f"--resume: {name} was not written by 'jaxedit moments' (missing {missing})")
    first = next(iter(initial.values()))
    problems = first.settings.differences(settings)
    if sorted(initial) != sorted(masks):
        problems.append(f"regions {sorted(initial)} vs {sorted(masks)}")
    else:
        problems += [
            f"region {n!r} mask"
            for n, m in masks.items()
            if not np.array_equal(initial[n].mask.reshape(-1), np.asarray(m, bool).reshape(-1))
        ]
    if int(data["run_samples"]) != int(run["run_samples"]) or not np.array_equal(
        data["run_seeds"], run["run_seeds"]
    ):
        problems.append("seeds / number of samples")
    if str(data["run_latents_sha256"]) != run["run_latents_sha256"]:
        problems.append("--latents file contents")
    if int(data["run_class"]) != int(run["run_class"]):
        problems.append("--class")
    if problems:
        raise CLIError(
            f"--resume: {name} was made with other settings ("
            + "; ".join(problems)
            + "); use another --out or --force"
        )
    done = int(first.n_samples)
    if done > int(run["run_samples"]):
        raise CLIError(
            f"--resume: {name} holds {done} samples, more than the run's {int(run['run_samples'])}"
        )
    if first.seeds is not None and tuple(run["run_seeds"][:done]) != first.seeds:
        raise CLIError(f"--resume: the seeds in {name} are not the first {done} of --seeds")


def cmd_merge(args) -> int:
    from ..methods.resefa import merge_moments, read_moments, save_moments

    out = check_output(args.out, args.force)
    if out in {os.path.realpath(p) for p in args.inputs}:
        raise CLIError("--out must not be one of the inputs")
    parts = []
    for p in args.inputs:
        moments, data = read_moments(p)
        if "run_complete" in data and not bool(data["run_complete"]):
            print(
                f"note: {p} is a partial run ({next(iter(moments.values())).n_samples} of "
                f"{int(data['run_samples'])} samples)",
                file=sys.stderr,
            )
        parts.append(moments)
    try:
        merged = merge_moments(*parts)
    except ValueError as e:
        raise CLIError(f"cannot merge {', '.join(args.inputs)}: {e}") from None
    save_moments(out, merged, overwrite=args.force)
    first = next(iter(merged.values()))
    print(
        f"wrote {out}: {len(merged)} region(s), {first.n_samples} samples from {len(parts)} file(s)"
    )
    return 0
