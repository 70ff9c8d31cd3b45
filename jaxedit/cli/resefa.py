"""``jaxedit resefa``: ReSeFa directions for a region, from Jacobians (``--jacobian``, written
by ``jaxedit jacobian``) or from many-sample moments (``--moments``, by ``jaxedit moments``).

Solver names (``--solver``) are turned into solvers in one place, `solver_from_name`."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from ..linalg import SOLVERS
from ._common import (
    CLIError,
    add_output_args,
    check_output,
    examples,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    setup_x64,
)
from ._generators import region_preference, slug

#: The ``--solver`` names (the generalized eigensolvers of `jaxedit.resefa`).
SOLVER_NAMES = tuple(SOLVERS)


def solver_from_name(name: str, *, tol: float | None = None, maxiter: int | None = None):
    """The solver `jaxedit.resefa` gets for ``--solver NAME`` (with ``--tol`` / ``--maxiter``).

    The one place the command line turns a solver name into a solver.

    Args:
        name: one of `SOLVER_NAMES`.
        tol: ``--tol``: the matrix-free residual tolerance (None: the solver's default).
        maxiter: ``--maxiter``: the matrix-free LOBPCG iteration limit (None: the default).

    Returns:
        the solver object (`jaxedit.linalg.solver_from_name`), a `MatrixFree` carrying
        ``tol`` / ``maxiter`` when they are given.

    Raises:
        CLIError: ``tol`` or ``maxiter`` given with a solver other than ``matrix_free``.
    """
    from ..linalg import solver_from_name as parse

    if tol is None and maxiter is None:
        return parse(name)
    if name != "matrix_free":
        raise CLIError(
            "--tol and --maxiter apply to --solver matrix_free only (the other solvers are direct)"
        )
    options = {"tol": tol} if tol is not None else {}
    if maxiter is not None:
        options["maxiter"] = maxiter
    return parse(name, **options)


def _region_label(region) -> str:
    """``"toyfaces/eyes"`` for a named mask, ``"box 120,70,140,186 on 256"`` for a box."""
    name = getattr(region, "name", None)
    if name:
        return str(name)
    y0, x0, y1, x1 = region.as_tuple()
    return f"box {y0},{x0},{y1},{x1} on {region.grid}"


def _cmd_resefa(args) -> int:
    setup_x64(args)
    from .._io import load_npz, save_npz
    from ..methods.resefa import resefa
    from ..regions import parse_region

    solver = solver_from_name(args.solver, tol=args.tol, maxiter=args.maxiter)
    if args.moments is not None:  # many-sample moments from 'jaxedit moments' (issue 16)
        return _cmd_resefa_moments(args, solver)
    data = load_npz(args.jacobian, ("jacobian", "space"), "Jacobian")
    # a short name ("eyes") resolves by the generator the Jacobian came from (toy model:
    # toyfaces/eyes; FFHQ StyleGAN: ffhq/eyes), recorded by 'jaxedit jacobian'
    prefer = str(data["region_set"]) if "region_set" in data else None
    if not prefer and "checkpoint" in data:
        prefer = region_preference(str(data["checkpoint"]))
    region = parse_region(args.region, prefer=prefer or None)
    if args.out is None:
        args.out = f"resefa_{slug(args.region)}.npz"
    check_output(args.out, args.force)
    J = data["jacobian"]
    if J.ndim != 5 or J.dtype.kind != "f" or 0 in J.shape:
        raise CLIError(
            f"{args.jacobian}: 'jacobian' must be a float array [N, H, W, C, D], got "
            f"{list(J.shape)} {J.dtype}"
        )
    bad = int(J.size - np.isfinite(J).sum())
    if bad:
        raise ValueError(
            f"{args.jacobian}: the Jacobian contains {bad} non-finite value(s) (NaN or inf)"
        )
    if args.sample is not None:
        if not 0 <= args.sample < J.shape[0]:
            raise CLIError(
                f"--sample {args.sample} out of range: {args.jacobian} has "
                f"{J.shape[0]} sample(s) (0..{J.shape[0] - 1})"
            )
        J = J[args.sample : args.sample + 1]
    if args.k > J.shape[-1]:
        raise CLIError(
            f"--k {args.k} is more than the {J.shape[-1]} latent dimensions of {args.jacobian}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        res = resefa(
            J,
            region,
            regularization=args.regularization,
            k=args.k,
            solver=solver,
            aggregate=args.aggregate,
        )
    dirs = np.asarray(res.directions)
    lams = np.asarray(res.eigenvalues)
    if dirs.ndim == 2:
        dirs, lams = dirs[None], lams[None]
    if not (np.isfinite(dirs).all() and np.isfinite(lams).all()):
        raise ValueError(
            "the solver returned non-finite directions or eigenvalues; nothing "
            "written (try --regularization 1e-3 or --x64)"
        )
    for i, row in enumerate(lams):
        print(f"set {i}: eigenvalues " + " ".join(f"{v:.4g}" for v in row))
    st = res.stats
    out = save_npz(
        args.out,
        overwrite=args.force,
        directions=dirs,
        eigenvalues=lams,
        space=str(data["space"]),
        mask=res.mask,
        region=args.region,
        region_resolved=_region_label(region),
        solver=res.solver,
        condition_number=np.asarray(
            np.nan if res.condition_number is None else res.condition_number, np.float64
        ),
        regularization=res.regularization,
        jacobian=os.path.abspath(args.jacobian),
        aggregate=args.aggregate,
        converged=np.asarray(st.converged, bool),
        iterations=np.asarray(st.iterations, np.int64),
        max_residual=np.asarray(st.max_residual, np.float64),
        condition_method=st.condition_method,
    )
    print(
        f"wrote {out}: directions {list(dirs.shape)} (space {str(data['space'])!r}, "
        f"solver {res.solver}"
        + (
            ""
            if res.condition_number is None
            else f", cond(M_b) {np.max(res.condition_number):.3g}"
        )
        + ")"
    )
    return 0


def _cmd_resefa_moments(args, solver) -> int:
    """``jaxedit resefa --moments FILE --region NAME``: directions from stored moments
    (``solver``: what `solver_from_name` returned)."""
    from .._io import save_npz
    from ..methods.resefa import read_moments, resefa

    if args.sample is not None:
        raise CLIError("--sample needs --jacobian: moments are already averaged over samples")
    if args.out is None:
        args.out = f"resefa_{slug(args.region)}.npz"
    out = check_output(args.out, args.force)
    setup_x64(args)
    moments, data = read_moments(args.moments)
    if args.region not in moments:
        raise CLIError(
            f"{args.moments} has no region {args.region!r}; it holds "
            f"{sorted(moments)} (--region names one of them)"
        )
    m = moments[args.region]
    if args.k > m.dim:
        raise CLIError(f"--k {args.k} is more than the {m.dim} latent dimensions of {args.moments}")
    if "run_complete" in data and not bool(data["run_complete"]):
        print(
            f"note: {args.moments} is a partial run ({m.n_samples} of "
            f"{int(data['run_samples'])} samples)",
            file=sys.stderr,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        res = resefa(m, regularization=args.regularization, k=args.k, solver=solver)
    dirs, lams = np.asarray(res.directions)[None], np.asarray(res.eigenvalues)[None]
    if not (np.isfinite(dirs).all() and np.isfinite(lams).all()):
        raise ValueError(
            "the solver returned non-finite directions or eigenvalues; nothing "
            "written (try --regularization 1e-3 or --x64)"
        )
    print("eigenvalues " + " ".join(f"{v:.4g}" for v in lams[0]))
    cond, st = res.condition_number, res.stats
    out = save_npz(
        out,
        overwrite=args.force,
        directions=dirs,
        eigenvalues=lams,
        space=m.settings.space,
        mask=res.mask,
        region=args.region,
        solver=res.solver,
        condition_number=np.asarray(np.nan if cond is None else cond, np.float64),
        regularization=res.regularization,
        moments=os.path.abspath(args.moments),
        aggregate="mean",
        n_samples=np.int64(m.n_samples),
        converged=np.asarray(st.converged, bool),
        iterations=np.asarray(st.iterations, np.int64),
        max_residual=np.asarray(st.max_residual, np.float64),
        condition_method=st.condition_method,
    )
    print(
        f"wrote {out}: directions {list(dirs.shape)} (space {m.settings.space!r}, "
        f"{m.n_samples} samples, solver {res.solver}"
        + ("" if cond is None else f", cond(M_b) {cond:.3g}")
        + ")"
    )
    return 0


def register(sub) -> None:
    """Add the command(s) of this module to the ``jaxedit`` subparsers ``sub``."""
    r = sub.add_parser(
        "resefa",
        help="ReSeFa directions for a region from jacobian.npz -> resefa_<region>.npz",
        epilog=examples(
            "jaxedit resefa --jacobian jacobian.npz --region eyes --k 10",
            "jaxedit resefa --jacobian jacobian.npz --region 100,60,140,200 --aggregate mean",
            "jaxedit resefa --moments moments.npz --region eyes   # from 'jaxedit moments'",
            "jaxedit regions            # the presets",
        ),
    )
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--jacobian", default=None, metavar="FILE", help="a file written by 'jaxedit jacobian'"
    )
    src.add_argument(
        "--moments",
        default=None,
        metavar="FILE",
        help="instead of --jacobian: a file written by 'jaxedit moments' (many samples; "
        "--region names one of its regions; solver auto, dense, matrix_free or "
        "reference)",
    )
    r.add_argument(
        "--region",
        required=True,
        help="preset (eyes, ffhq/mouth, biggan/head0, ...: see 'jaxedit regions') or "
        "y0,x0,y1,x1 on the Jacobian grid",
    )
    r.add_argument("--k", type=positive_int, default=10, help="number of directions")
    r.add_argument(
        "--solver",
        choices=SOLVER_NAMES,
        default="auto",
        help="generalized eigensolver (auto: dense)",
    )
    r.add_argument(
        "--tol",
        type=positive_float,
        default=None,
        help="matrix_free: residual tolerance (default: 1e-6 in float64, 1e-3 in float32)",
    )
    r.add_argument(
        "--maxiter",
        type=positive_int,
        default=None,
        help="matrix_free: LOBPCG iteration limit (default: 500)",
    )
    r.add_argument(
        "--regularization",
        type=nonneg_float,
        default=0.0,
        help="tau of tau*trace(M_b)*I (the reference's full_rank: 1e-3)",
    )
    r.add_argument(
        "--aggregate",
        choices=("none", "mean"),
        default="none",
        help="none: one direction set per sample; mean: average M_f, M_b over samples",
    )
    r.add_argument(
        "--sample", type=nonneg_int, default=None, help="use one sample of J only (default: all)"
    )
    r.add_argument("--x64", action="store_true", help="solve in float64")
    add_output_args(r, None, "the directions (.npz; default: resefa_<region>.npz)")
    r.set_defaults(fn=_cmd_resefa)
