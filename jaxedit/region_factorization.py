"""ReSeFa: region-based semantic factorization (Zhu et al., ICML 2022) on Jacobians.

For a Jacobian ``J [H, W, C, D]`` (rows = pixels x channels) and a region mask ``M [H, W]``::

    M_f = J_fᵀJ_f / n_f,   M_b = J_bᵀJ_b / n_b (+ regularization * trace(M_b) * I)

(n = number of rows inside / outside the region, the reference's per-row means), and the
directions maximize the generalized Rayleigh quotient ``nᵀM_f n / nᵀM_b n``. The reference
solves ``eig(inv(M_b) @ M_f)`` and keeps real parts; here the pencil is solved as what it is,
symmetric-definite, by one of the solvers of :mod:`jaxedit.rayleigh`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _ops, rayleigh
from ._lobpcg import hutchpp_trace, lobpcg_top, nystrom_preconditioner
from .jacobians import JacobianOperator
from .regions import RegionLike, region_mask

SOLVERS = ("auto", "dense", "woodbury", "matrix_free", "reference")


class SingularBackgroundWarning(UserWarning):
    """M_b is (numerically) singular: directions are unreliable without regularization."""


class ComplexEigenpairsWarning(UserWarning):
    """The reference ``eig(inv(M_b) @ M_f)`` returned complex eigenpairs (real parts were kept)."""


@dataclasses.dataclass(frozen=True)
class ResefaResult:
    """Directions of a region.

    Attributes:
      directions: ``[k, D]`` (or ``[N, k, D]`` per sample), unit L2 rows, canonical sign
        (``reference``: numpy's vectors, real parts, arbitrary sign).
      eigenvalues: ``[k]`` (or ``[N, k]``): the generalized Rayleigh quotients
        ``nᵀM_f n / nᵀM_b n`` (reference normalization), descending.
      solver: the solver that ran.
      condition_number: of the (regularized) M_b, per sample (estimate for ``dense``; None for
        ``matrix_free``, which never forms M_b).
      residuals: ``‖M_f n − λ M_b n‖ / ‖M_f n‖`` per direction (None where M_f, M_b are not formed
        and the solver did not report them).
      singular: M_b was numerically singular (a :class:`SingularBackgroundWarning` was issued).
      max_imag: ``reference`` only: largest |Im λ| / max |λ| among the kept eigenvalues.
      mask: ``[H, W]`` bool region on the Jacobian grid.
      n_foreground, n_background: row counts (pixels x channels).
      regularization: the ``tau`` in ``tau * trace(M_b) * I``.
      iterations: ``matrix_free`` only.
    """

    directions: Any
    eigenvalues: Any
    solver: str
    condition_number: Any
    residuals: Any
    singular: bool
    max_imag: float | None
    mask: np.ndarray
    n_foreground: int
    n_background: int
    regularization: float
    iterations: Any = None


def _sing_threshold(dtype) -> float:
    return 1e-2 / float(jnp.finfo(dtype).eps)


@jax.jit
def _moments(j2, wf, wb):
    """j2 [rows, D], weights [rows] -> (J2ᵀ diag(wf) J2, J2ᵀ diag(wb) J2)."""
    hp = jax.lax.Precision.HIGHEST
    mf = jnp.matmul(j2.T * wf[None, :], j2, precision=hp)
    mb = jnp.matmul(j2.T * wb[None, :], j2, precision=hp)
    return (mf + mf.T) / 2, (mb + mb.T) / 2


def region_moments(J, region: RegionLike) -> tuple[jax.Array, jax.Array]:
    """``(M_f, M_b)`` ``[D, D]`` of a Jacobian ``[H, W, C, D]`` and a region (no regularization)."""
    J = jnp.asarray(J)
    j2, wf, wb, _, _, _ = _rows(J, region)
    return _moments(j2, wf, wb)


def _rows(J, region):
    h, w, c, d = J.shape
    mask = region_mask(region, (h, w))
    rowmask = np.repeat(mask.reshape(-1), c)
    n_f, n_b = int(rowmask.sum()), int((~rowmask).sum())
    wf = jnp.asarray(rowmask / n_f, J.dtype)
    wb = jnp.asarray(~rowmask / n_b, J.dtype)
    return J.reshape(h * w * c, d), wf, wb, mask, n_f, n_b


@jax.jit
def _residuals(mf, mb, lam, dirs):
    hp = jax.lax.Precision.HIGHEST
    af = jnp.matmul(dirs, mf, precision=hp)
    bf = jnp.matmul(dirs, mb, precision=hp)
    return jnp.linalg.norm(af - lam[..., None] * bf, axis=-1) / jnp.linalg.norm(af, axis=-1)


def _check_k(k: int, d: int) -> int:
    if int(k) != k or not 1 <= k <= d:
        raise ValueError(f"k must be an integer in [1, D={d}], got {k!r}")
    return int(k)


def resefa(J, region: RegionLike | None = None, *, regularization: float = 0.0, k: int = 10,
           solver: str = "auto", aggregate: str = "none", rank: int | None = None,
           block_size: int | None = None, maxiter: int = 300, tol: float | None = None,
           sketch_size: int | None = None,
           trace_probes: int = 64, key: jax.Array | None = None,
           precision: _ops.Precision = "highest", warn: bool = True) -> ResefaResult:
    """ReSeFa directions for a region.

    Args:
      J: Jacobian ``[H, W, C, D]`` or ``[N, H, W, C, D]`` (from :func:`jaxedit.jacobian`; a
        ``[H, W, D]`` array is read as C = 1), or a :class:`~jaxedit.JacobianOperator` (one
        sample, matrix-free; solver ``"matrix_free"``), or :class:`~jaxedit.Moments` (many
        samples, from :func:`jaxedit.region_moments`; the region is optional, or names the entry
        of a dict of them; see :func:`jaxedit.moments.resefa_moments`).
      region: bool mask ``[H, W]`` (any size; resampled), a :class:`~jaxedit.regions.Box`, a
        preset name, or ``(y0, x0, y1, x1)`` on the Jacobian grid.
      regularization: ``tau`` of ``M_b += tau * trace(M_b) * I`` (reference: off; 1e-3 when on).
      k: number of directions.
      solver: ``"dense"`` (Cholesky whitening + eigh), ``"woodbury"`` (SVD of J_b +
        Sherman-Morrison-Woodbury; ``rank`` truncates the SVD), ``"matrix_free"`` (LOBPCG on
        products with J; ``block_size``, ``maxiter``, ``tol``; ``sketch_size`` products build a
        randomized Nyström preconditioner for M_b, 0 disables it), ``"reference"`` (numpy inv + eig,
        as the reference) or ``"auto"`` (``matrix_free`` for an operator, else ``dense``).
      aggregate: ``"none"`` (one set per sample) or ``"mean"`` (M_f and M_b averaged over samples).
      trace_probes, key: Rademacher probes of the Hutch++ estimate of trace(M_b) (a regularized
        operator only; the top of the spectrum is captured exactly by the sketch), and the PRNG
        key of every random start / sketch (default ``jax.random.key(0)``: deterministic).
      precision: matmul precision of the solvers.
      warn: issue :class:`SingularBackgroundWarning` / :class:`ComplexEigenpairsWarning`.

    Returns:
      :class:`ResefaResult`.
    """
    from . import moments as _moments   # many-sample moments (issue 16); lazy, a one-line hook
    if _moments.is_moments(J):
        return _moments.resefa_moments(J, region, regularization=regularization, k=k,
                                       solver=solver, aggregate=aggregate, precision=precision,
                                       warn=warn)
    if region is None:
        raise TypeError("resefa() needs a region for a Jacobian")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if aggregate not in ("none", "mean"):
        raise ValueError(f"aggregate must be 'none' or 'mean', got {aggregate!r}")
    if regularization < 0:
        raise ValueError(f"regularization must be >= 0, got {regularization}")
    if isinstance(J, JacobianOperator):
        if solver not in ("auto", "matrix_free"):
            raise ValueError(f"a JacobianOperator needs solver='matrix_free', got {solver!r}")
        return _resefa_operator(J, region, regularization, k, block_size, maxiter, tol,
                                sketch_size, trace_probes, key)
    J = jnp.asarray(J)
    if J.ndim == 3:
        J = J[..., None, :]
    if J.ndim == 4:
        single = True
        J = J[None]
    elif J.ndim == 5:
        single = False
    else:
        raise ValueError(f"J must be [H, W, C, D] or [N, H, W, C, D], got shape {tuple(J.shape)}")
    if not jnp.issubdtype(J.dtype, jnp.floating):
        raise ValueError(f"J must be a float array, got {J.dtype}")
    n, h, w, c, d = J.shape
    k = _check_k(k, d)
    solver = "dense" if solver == "auto" else solver
    _, wf, wb, mask, n_f, n_b = _rows(J[0], region)
    j2 = J.reshape(n, h * w * c, d)
    if aggregate == "mean":
        groups = [j2]
    else:
        groups = [j2[i:i + 1] for i in range(n)]
    outs = [_solve_group(g, wf, wb, n_f, n_b, regularization, k, solver, rank, block_size,
                         maxiter, tol, sketch_size, key, precision) for g in groups]
    dirs = np.stack([o["directions"] for o in outs])
    lams = np.stack([o["eigenvalues"] for o in outs])
    cond = np.array([o["cond"] for o in outs])
    res = None if outs[0]["residuals"] is None else np.stack([o["residuals"] for o in outs])
    iters = None if outs[0].get("iterations") is None else np.array([o["iterations"] for o in outs])
    imag = None if solver != "reference" else float(max(o["imag"] for o in outs))
    singular = bool(np.any(np.isinf(cond)) or np.any(cond > _sing_threshold(J.dtype)))
    if warn and singular:
        warnings.warn(
            f"M_b (background of the region, {n_b} rows, D={d}) is numerically singular "
            f"(condition number {np.max(cond):.3g}); the directions are unreliable - pass "
            f"regularization > 0 (the reference's full_rank option uses 1e-3)",
            SingularBackgroundWarning, stacklevel=2)
    if not np.all(np.isfinite(dirs)):
        raise np.linalg.LinAlgError(
            f"solver {solver!r} produced non-finite directions: M_b is singular "
            f"(condition number {np.max(cond):.3g}); pass regularization > 0")
    if warn and imag is not None and imag > 1e3 * float(jnp.finfo(J.dtype).eps):
        warnings.warn(
            f"the reference eig(inv(M_b) @ M_f) returned complex eigenvalues (max |Im|/|λ| = "
            f"{imag:.3g}); their real parts were kept as the reference does - use a symmetric "
            f"solver ('dense') or regularization", ComplexEigenpairsWarning, stacklevel=2)
    squeeze = single or aggregate == "mean"
    return ResefaResult(
        directions=dirs[0] if squeeze else dirs, eigenvalues=lams[0] if squeeze else lams,
        solver=solver,
        condition_number=None if np.all(np.isnan(cond)) else (float(cond[0]) if squeeze else cond),
        residuals=None if res is None else (res[0] if squeeze else res), singular=singular,
        max_imag=imag, mask=mask, n_foreground=n_f, n_background=n_b,
        regularization=float(regularization),
        iterations=None if iters is None else (int(iters[0]) if squeeze else iters))


def _solve_group(j2s, wf, wb, n_f, n_b, tau, k, solver, rank, block_size, maxiter, tol, sketch,
                 key, precision) -> dict:
    """One solve for rows of one or several samples j2s [G, rows, D] (moments averaged)."""
    g, rows, d = j2s.shape
    if solver == "woodbury":
        idx_f, idx_b = np.nonzero(np.asarray(wf))[0], np.nonzero(np.asarray(wb))[0]
        jf = (j2s[:, idx_f] / math.sqrt(n_f * g)).reshape(-1, d)
        jb = (j2s[:, idx_b] / math.sqrt(n_b * g)).reshape(-1, d)
        r_full = min(jb.shape[0], d)
        if tau == 0 and (rank is not None and rank < d or r_full < d):
            raise ValueError(
                f"woodbury with rank {rank if rank is not None else r_full} < D={d} needs "
                f"regularization > 0 (M_b would be singular)")
        a = tau * jnp.sum(jb * jb)
        lam, dirs, cond = rayleigh.woodbury_eigh(jf, jb, a, k=k, rank=rank, precision=precision)
        mf = jnp.matmul(jf.T, jf, precision=jax.lax.Precision.HIGHEST)
        mb = rayleigh.regularize(jnp.matmul(jb.T, jb, precision=jax.lax.Precision.HIGHEST), tau)
        return dict(directions=np.asarray(dirs), eigenvalues=np.asarray(lam), cond=float(cond),
                    residuals=np.asarray(_residuals(mf, mb, lam, dirs)))
    if solver == "matrix_free":
        # products J V and Jᵀ U only: neither M_f nor M_b is formed (the condition number is
        # therefore not reported; residuals come from the iteration itself)
        jall = j2s.reshape(g * rows, d)
        wb_all = jnp.tile(wb, g) / g
        a = tau * jnp.sum(jnp.square(jall) * wb_all[:, None])     # tau * trace(M_b)
        out = rows_lobpcg(jall, jnp.tile(wf, g) / g, wb_all, a, k=k, block_size=block_size,
                          maxiter=maxiter, tol=tol, sketch_size=sketch, key=key,
                          precision=precision)
        out["cond"] = float("nan")
        return out
    mfs, mbs = jax.vmap(lambda j: _moments(j, wf, wb))(j2s)
    mf, mb = mfs.mean(0), rayleigh.regularize(mbs.mean(0), tau)
    if solver == "reference":
        lam, dirs, imag = rayleigh.reference_eig(np.asarray(mf), np.asarray(mb), k=k)
        cond = float(np.linalg.cond(np.asarray(mb)))
        return dict(directions=dirs, eigenvalues=lam, cond=cond, imag=imag,
                    residuals=np.asarray(_residuals(mf, mb, jnp.asarray(lam), jnp.asarray(dirs))))
    lam, dirs, cond = rayleigh.generalized_eigh(mf, mb, k=k, precision=precision)   # dense
    return dict(directions=np.asarray(dirs), eigenvalues=np.asarray(lam), cond=float(cond),
                residuals=np.asarray(_residuals(mf, mb, lam, dirs)))


def _block(k: int, d: int, block_size: int | None) -> int:
    m = block_size if block_size is not None else min(max(2 * k, k + 4), d // 3)
    if m < k or 3 * m > d:
        raise ValueError(
            f"matrix_free needs k <= block_size and 3 * block_size <= D (k={k}, "
            f"block_size={m}, D={d}); use solver='dense' for small D")
    return m


def _sketch(d: int, k: int, sketch: int | None) -> int:
    p = min(d // 4, 8 * k) if sketch is None else int(sketch)
    if not 0 <= p < d:
        raise ValueError(f"sketch_size must be in [0, D={d}), got {sketch}")
    return p


def _lobpcg_defaults(d, k, block_size, tol, sketch, key, dtype):
    m = _block(k, d, block_size)
    tol = tol if tol is not None else (1e-6 if jnp.dtype(dtype) == jnp.float64 else 1e-3)
    key = key if key is not None else jax.random.key(0)
    k_x, k_s, k_t = jax.random.split(key, 3)
    p = _sketch(d, k, sketch)
    x0 = jax.random.normal(k_x, (d, m), dtype)
    omega = jax.random.normal(k_s, (d, max(p, 1)), dtype)
    return x0, omega, p, float(tol), k_t


@functools.partial(jax.jit, static_argnames=("k", "maxiter", "tol", "sketch", "precision"))
def _rows_lobpcg(rows, wf, wb, a, x0, omega, *, k, maxiter, tol, sketch, precision):
    prec = _ops.as_precision(precision)

    def apply_b(v):
        jv = jnp.matmul(rows, v, precision=prec)
        return jnp.matmul(rows.T, jv * wb[:, None], precision=prec) + a * v

    def apply(v):
        jv = jnp.matmul(rows, v, precision=prec)
        av = jnp.matmul(rows.T, jv * wf[:, None], precision=prec)
        return av, jnp.matmul(rows.T, jv * wb[:, None], precision=prec) + a * v

    pc = None
    if sketch:
        om = jnp.linalg.qr(omega)[0]
        pc = nystrom_preconditioner(om, apply_b(om))
    return lobpcg_top(apply, x0, k=k, maxiter=maxiter, tol=tol, precondition=pc)


def rows_lobpcg(rows, wf, wb, a, *, k: int, block_size: int | None = None, maxiter: int = 300,
                tol: float | None = None, sketch_size: int | None = None, key=None,
                precision: _ops.Precision = "highest") -> dict:
    """Matrix-free top-k of ``(Rᵀ diag(wf) R, Rᵀ diag(wb) R + a I)`` from products with the rows
    ``R [n, D]`` only (jitted once per shape). -> dict(directions [k, D], eigenvalues [k],
    iterations, residuals [k])."""
    d = rows.shape[1]
    x0, omega, p, tol, _ = _lobpcg_defaults(d, k, block_size, tol, sketch_size, key, rows.dtype)
    r = _rows_lobpcg(rows, jnp.asarray(wf, rows.dtype), jnp.asarray(wb, rows.dtype),
                     jnp.asarray(a, rows.dtype), x0, omega, k=k, maxiter=int(maxiter), tol=tol,
                     sketch=p, precision=precision)
    return dict(directions=np.asarray(rayleigh.canonical_rows(r.vectors[:, :k].T)),
                eigenvalues=np.asarray(r.eigenvalues[:k]), iterations=int(r.iterations),
                residuals=np.asarray(r.residuals[:k]))


def _resefa_operator(op: JacobianOperator, region, tau, k, block_size, maxiter, tol, sketch,
                     probes, key) -> ResefaResult:
    h, w, c = op.out_shape
    d = op.dim
    k = _check_k(k, d)
    mask = region_mask(region, (h, w))
    rowmask = np.repeat(mask.reshape(-1), c)
    n_f, n_b = int(rowmask.sum()), int((~rowmask).sum())
    wf = jnp.asarray(rowmask / n_f, op.dtype)
    wb = jnp.asarray(~rowmask / n_b, op.dtype)
    x0, omega, p, tol, k_t = _lobpcg_defaults(d, k, block_size, tol, sketch, key, op.dtype)
    r, a = _operator_lobpcg(op, op.arrays(), wf, wb, x0, omega, k_t, tau=float(tau), k=k,
                            maxiter=int(maxiter), tol=tol, probes=int(probes), sketch=p)
    dirs = np.asarray(rayleigh.canonical_rows(r.vectors[:, :k].T))
    res = np.asarray(r.residuals[:k])
    return ResefaResult(directions=dirs, eigenvalues=np.asarray(r.eigenvalues[:k]),
                        solver="matrix_free", condition_number=None, residuals=res,
                        singular=False, max_imag=None, mask=mask, n_foreground=n_f,
                        n_background=n_b, regularization=float(tau),
                        iterations=int(r.iterations))


def _operator_lobpcg_impl(op, arrays, wf, wb, x0, omega, key, *, tau, k, maxiter, tol, probes,
                          sketch):
    mv, rmv = op.pure(arrays)

    def apply_mb(v):  # unregularized M_b v, v [D, m]
        return rmv(mv(v.T) * wb[None]).T

    a = jnp.zeros((), op.dtype)
    q = bq = None
    if tau > 0:  # the ridge needs trace(M_b): Hutch++, exact on the sketched top of the spectrum
        g = jax.random.rademacher(key, (op.dim, probes), dtype=op.dtype)
        trace, q, bq = hutchpp_trace(apply_mb, omega, g)
        a = tau * trace
    pc = None
    if sketch:
        if q is None:
            q = jnp.linalg.qr(omega)[0]
            bq = apply_mb(q)
        pc = nystrom_preconditioner(q, bq + a * q)

    def apply(v):  # v [D, m] -> (M_f v, (M_b + a I) v), one JVP and one stacked VJP
        jv = mv(v.T)                                                  # [m, rows]
        both = rmv(jnp.concatenate([jv * wf[None], jv * wb[None]]))   # [2m, D]
        m = v.shape[1]
        return both[:m].T, both[m:].T + a * v

    return lobpcg_top(apply, x0, k=k, maxiter=maxiter, tol=tol, precondition=pc), a


_operator_lobpcg = jax.jit(_operator_lobpcg_impl, static_argnames=(
    "op", "tau", "k", "maxiter", "tol", "probes", "sketch"))


__all__ = ["ComplexEigenpairsWarning", "ResefaResult", "SOLVERS", "SingularBackgroundWarning",
           "region_moments", "resefa"]
