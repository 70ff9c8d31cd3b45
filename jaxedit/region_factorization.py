"""ReSeFa: region-based semantic factorization (Zhu et al., ICML 2022) on Jacobians.

For a Jacobian ``J [H, W, C, D]`` (rows = pixels x channels) and a region mask ``M [H, W]``::

    M_f = J_fᵀJ_f / n_f,   M_b = J_bᵀJ_b / n_b (+ regularization * trace(M_b) * I)

(n = number of rows inside / outside the region, the reference's per-row means), and the
directions maximize the generalized Rayleigh quotient ``nᵀM_f n / nᵀM_b n``. The reference
solves ``eig(inv(M_b) @ M_f)`` and keeps real parts; here the pencil is solved as what it is,
symmetric-definite, by the solver chosen with an options object of :mod:`jaxedit.solvers`.

Every solve goes through one of three internal routes, each returning the same diagnostics
(:class:`~jaxedit.solvers.SolverStats`):

* :func:`solve_moments` - from ``(M_f, M_b)`` (``Dense``, ``ReferenceEig``, ``MatrixFree`` with
  matrix products);
* the rows of an array J (``Woodbury``; ``MatrixFree`` with products ``J V``, ``Jᵀ U``);
* a :class:`~jaxedit.JacobianOperator` (``MatrixFree`` with JVPs / VJPs of the generator).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _ops, rayleigh
from ._lobpcg import hutchpp_trace, lobpcg_top, nystrom_preconditioner
from .jacobians import JacobianOperator, _basis_chunk
from .regions import RegionLike, region_mask
from .solvers import (
    ComplexEigenpairsWarning,
    ConvergenceWarning,
    Dense,
    MatrixFree,
    ReferenceEig,
    SingularBackgroundWarning,
    SolverLike,
    SolverStats,
    Woodbury,
    as_solver,
)

SOLVERS = ("auto", "dense", "woodbury", "matrix_free", "reference")
_HP = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class ResefaResult:
    """Directions of a region.

    Attributes:
      directions: ``[k, D]`` (or ``[N, k, D]`` per sample), unit L2 rows, canonical sign
        (``reference``: numpy's vectors, real parts, arbitrary sign).
      eigenvalues: ``[k]`` (or ``[N, k]``): the generalized Rayleigh quotients
        ``nᵀM_f n / nᵀM_b n`` (reference normalization), descending.
      solver: the name of the solver that ran (``"dense"``, ``"woodbury"``, ``"matrix_free"``,
        ``"reference"``).
      stats: :class:`~jaxedit.solvers.SolverStats` (converged, iterations, residuals,
        condition number and how it was obtained, the trace of M_b used for the ridge).
      max_imag: ``reference`` only: largest |Im λ| / max |λ| among the kept eigenvalues.
      mask: ``[H, W]`` bool region on the Jacobian grid.
      n_foreground, n_background: row counts (pixels x channels).
      regularization: the ``tau`` in ``tau * trace(M_b) * I``.
      singular: M_b's condition number (exact, or the matrix-free lower bound) exceeds
        ``1e-2 / eps`` of the dtype (a :class:`SingularBackgroundWarning` was issued).
    """

    directions: Any
    eigenvalues: Any
    solver: str
    stats: SolverStats
    mask: np.ndarray
    n_foreground: int
    n_background: int
    regularization: float
    singular: bool
    max_imag: float | None = None

    @property
    def condition_number(self):
        """``stats.condition_number`` (see ``stats.condition_method``)."""
        return self.stats.condition_number

    @property
    def residuals(self):
        """``stats.residuals``."""
        return self.stats.residuals

    @property
    def iterations(self):
        """``stats.iterations``."""
        return self.stats.iterations

    @property
    def converged(self):
        """``stats.converged``."""
        return self.stats.converged


def _sing_threshold(dtype) -> float:
    return 1e-2 / float(jnp.finfo(dtype).eps)


@jax.jit
def _moments(j2, wf, wb):
    """j2 [rows, D], weights [rows] -> (J2ᵀ diag(wf) J2, J2ᵀ diag(wb) J2)."""
    mf = jnp.matmul(j2.T * wf[None, :], j2, precision=_HP)
    mb = jnp.matmul(j2.T * wb[None, :], j2, precision=_HP)
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
    af = jnp.matmul(dirs, mf, precision=_HP)
    bf = jnp.matmul(dirs, mb, precision=_HP)
    return jnp.linalg.norm(af - lam[..., None] * bf, axis=-1) / jnp.linalg.norm(af, axis=-1)


@jax.jit
def _rows_residuals(jf, jb, a, lam, dirs):
    """Residuals with ``M_f = jfᵀjf``, ``M_b = jbᵀjb + a I`` from the rows (no D x D matrix)."""
    af = jnp.matmul(jnp.matmul(dirs, jf.T, precision=_HP), jf, precision=_HP)
    bf = jnp.matmul(jnp.matmul(dirs, jb.T, precision=_HP), jb, precision=_HP) + a * dirs
    return jnp.linalg.norm(af - lam[..., None] * bf, axis=-1) / jnp.linalg.norm(af, axis=-1)


def _check_k(k: int, d: int) -> int:
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= d:
        raise ValueError(f"k must be an integer in [1, D={d}], got {k!r}")
    return int(k)


def _check_regularization(regularization) -> float:
    try:
        tau = float(regularization)
    except (TypeError, ValueError):
        raise ValueError(f"regularization must be a number >= 0, got {regularization!r}") from None
    if not math.isfinite(tau) or tau < 0:
        raise ValueError(f"regularization must be a finite number >= 0, got {regularization!r}")
    return tau


class _Solution(NamedTuple):
    """One direction set: eigenvalues [k], directions [k, D] (numpy) and its diagnostics."""

    eigenvalues: np.ndarray
    directions: np.ndarray
    stats: dict
    max_imag: float | None = None


def _direct_stats(lam, dirs, res, cond, method, tau, trace) -> dict:
    finite = bool(np.all(np.isfinite(np.asarray(dirs))) and np.all(np.isfinite(np.asarray(lam))))
    res = np.asarray(res)
    return dict(converged=finite, iterations=0, residuals=res,
                max_residual=float(np.max(res)) if res.size else float("nan"),
                condition_number=float(cond), condition_method=method, tol=None,
                trace=None if not tau else float(trace), trace_stderr=None if not tau else 0.0,
                trace_method=None if not tau else "exact")


# ------------------------------------------------------------------------------------------------
# Route 1: from the moments (M_f, M_b)
# ------------------------------------------------------------------------------------------------
def solve_moments(mf, mb, *, k: int, regularization: float = 0.0,
                  solver: SolverLike = "dense") -> _Solution:
    """Top-k of the pencil ``(M_f, M_b + regularization * trace(M_b) * I)`` from the moments.

    The internal route every moment-based solve takes (``resefa`` on a Jacobian array with
    ``Dense`` / ``ReferenceEig``; precomputed moments).

    Args:
      mf, mb: [D, D] symmetric, M_b unregularized.
      k: number of directions.
      regularization: tau.
      solver: ``Dense``, ``ReferenceEig`` or ``MatrixFree`` (products with the matrices).
    Returns:
      ``_Solution(eigenvalues [k], directions [k, D], stats dict, max_imag)``.
    """
    opts = as_solver(solver)
    mf, mb = jnp.asarray(mf), jnp.asarray(mb)
    for name, m in (("M_f", mf), ("M_b", mb)):
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape != mf.shape:
            raise ValueError(f"M_f and M_b must both be [D, D], got {tuple(mf.shape)} and "
                             f"{tuple(mb.shape)}")
        if not jnp.issubdtype(m.dtype, jnp.floating):
            raise ValueError(f"{name} must be a float array, got {m.dtype}")
        if not bool(jnp.all(jnp.isfinite(m))):
            raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    d = mf.shape[-1]
    k = _check_k(k, d)
    tau = _check_regularization(regularization)
    trace = float(jnp.trace(mb)) if tau else None
    if isinstance(opts, ReferenceEig):
        lam, dirs, imag, breg = rayleigh.reference_eig(np.asarray(mf), np.asarray(mb), k=k,
                                                       regularization=tau)
        cond = np.linalg.cond(breg)
        cond = float(cond) if np.isfinite(cond) else float("inf")
        with np.errstate(all="ignore"):
            res = (np.linalg.norm(dirs @ np.asarray(mf) - lam[:, None] * (dirs @ breg), axis=1)
                   / np.linalg.norm(dirs @ np.asarray(mf), axis=1))
        return _Solution(lam, dirs, _direct_stats(lam, dirs, res, cond, "exact", tau, trace), imag)
    if isinstance(opts, Dense):
        mbr = rayleigh.regularize(mb, tau) if tau else mb
        lam, dirs, cond = rayleigh.generalized_eigh(mf, mbr, k=k, precision=opts.precision)
        res = _residuals(mf, mbr, lam, dirs)
        return _Solution(np.asarray(lam), np.asarray(dirs),
                         _direct_stats(lam, dirs, res, cond, "exact", tau, trace))
    if isinstance(opts, MatrixFree):
        plan = _plan(opts, d, k, mf.dtype)
        a = jnp.asarray(tau * (trace or 0.0), mf.dtype)
        r, lo, hi = _moments_lobpcg(mf, mb, a, plan.x0, plan.omega, plan.tol, plan.maxiter, k=k,
                                    sketch=plan.p, precision=opts.precision)
        return _lobpcg_solution(r, lo, hi, k, plan.tol, tau, trace, 0.0)
    raise ValueError(f"{type(opts).__name__} needs the rows of J (a Jacobian array), not "
                     f"precomputed moments; use Dense(), MatrixFree() or ReferenceEig()")


# ------------------------------------------------------------------------------------------------
# The matrix-free plan (block, sketch, tolerance, random start) and its three product routes
# ------------------------------------------------------------------------------------------------
class _Plan(NamedTuple):
    m: int
    p: int
    tol: float
    maxiter: int
    x0: jax.Array
    omega: jax.Array
    probe_key: jax.Array


def _plan(opts: MatrixFree, d: int, k: int, dtype) -> _Plan:
    m = opts.block_size if opts.block_size is not None else min(max(2 * k, k + 4), d // 3)
    if m < k or 3 * m > d:
        raise ValueError(
            f"MatrixFree needs k <= block_size and 3 * block_size <= D (k={k}, block_size={m}, "
            f"D={d}); use the Dense solver for small D")
    p = min(d // 2, max(8 * k, 64)) if opts.sketch_size is None else int(opts.sketch_size)
    if not 0 <= p < d:
        raise ValueError(f"MatrixFree(sketch_size=...) must be in [0, D={d}), got {p}")
    dt = jnp.dtype(dtype)
    tol = opts.tol if opts.tol is not None else (1e-6 if dt == jnp.float64 else 1e-3)
    k_x, k_s, k_t = jax.random.split(opts.prng_key(), 3)
    x0 = jax.random.normal(k_x, (d, m), dt)
    omega = jax.random.normal(k_s, (d, max(p, 1)), dt)
    return _Plan(m, p, float(tol), int(opts.maxiter), x0, omega, k_t)


def _lobpcg_core(apply_fb, apply_b, a, x0, omega, tol, maxiter, *, k, sketch, precision,
                 q=None, bq=None):
    """LOBPCG on ``(M_f, M_b + a I)`` with a Nyström preconditioner from ``sketch`` products.

    ``apply_fb: V -> (M_f V, M_b V)`` and ``apply_b: V -> M_b V`` (unregularized). ``q, bq``: a
    sketch already computed (e.g. by Hutch++). Returns (LobpcgResult, B-Ritz min, B-Ritz max)
    over the sketch and the search spaces (of the regularized M_b).
    """
    prec = _ops.as_precision(precision)

    def apply(v):
        af, bf = apply_fb(v)
        return af, bf + a * v

    pc = None
    lo = jnp.asarray(jnp.inf, x0.dtype)
    hi = -lo
    if sketch:
        if q is None:
            q = jnp.linalg.qr(omega)[0]
            bq = apply_b(q)
        pc = nystrom_preconditioner(q, bq, shift=a, precision=prec)
        ev = jnp.linalg.eigvalsh(rayleigh._sym(jnp.matmul(q.T, bq, precision=prec))) + a
        lo, hi = ev[0], ev[-1]
    r = lobpcg_top(apply, x0, k=k, maxiter=maxiter, tol=tol, precondition=pc, precision=prec)
    return r, jnp.minimum(lo, r.b_ritz_min), jnp.maximum(hi, r.b_ritz_max)


_LOBPCG_STATIC = ("k", "sketch", "precision")


def _moments_lobpcg_impl(mf, mb, a, x0, omega, tol, maxiter, *, k, sketch, precision):
    prec = _ops.as_precision(precision)

    def apply_fb(v):
        return jnp.matmul(mf, v, precision=prec), jnp.matmul(mb, v, precision=prec)

    return _lobpcg_core(apply_fb, lambda v: apply_fb(v)[1], a, x0, omega, tol, maxiter, k=k,
                        sketch=sketch, precision=precision)


def _rows_lobpcg_impl(rows, wf, wb, a, x0, omega, tol, maxiter, *, k, sketch, precision):
    prec = _ops.as_precision(precision)

    def apply_b(v):
        jv = jnp.matmul(rows, v, precision=prec)
        return jnp.matmul(rows.T, jv * wb[:, None], precision=prec)

    def apply_fb(v):
        jv = jnp.matmul(rows, v, precision=prec)
        return (jnp.matmul(rows.T, jv * wf[:, None], precision=prec),
                jnp.matmul(rows.T, jv * wb[:, None], precision=prec))

    return _lobpcg_core(apply_fb, apply_b, a, x0, omega, tol, maxiter, k=k, sketch=sketch,
                        precision=precision)


# module-level jits: one compilation per shape / static option set (tests guard this)
_moments_lobpcg = jax.jit(_moments_lobpcg_impl, static_argnames=_LOBPCG_STATIC)
_rows_lobpcg = jax.jit(_rows_lobpcg_impl, static_argnames=_LOBPCG_STATIC)


def _lobpcg_solution(r, lo, hi, k, tol, tau, trace, trace_stderr, trace_method="exact"
                     ) -> _Solution:
    lam = np.asarray(r.eigenvalues[:k])
    dirs = np.asarray(rayleigh.canonical_rows(r.vectors[:, :k].T))
    res = np.asarray(r.residuals[:k])
    lo, hi = float(lo), float(hi)
    cond = hi / lo if lo > 0 and np.isfinite(hi) else float("inf")
    stats = dict(converged=bool(r.converged) and bool(np.all(np.isfinite(dirs))),
                 iterations=int(r.iterations), residuals=res, max_residual=float(np.max(res)),
                 condition_number=cond, condition_method="lower bound", tol=float(tol),
                 trace=None if not tau else float(trace),
                 trace_stderr=None if not tau else float(trace_stderr),
                 trace_method=None if not tau else trace_method)
    return _Solution(lam, dirs, stats)


def rows_lobpcg(rows, wf, wb, *, k: int, regularization: float = 0.0,
                solver: MatrixFree = MatrixFree()) -> _Solution:
    """Matrix-free top-k of ``(Rᵀ diag(wf) R, Rᵀ diag(wb) R + tau trace(·) I)`` from products with
    the rows ``R [n, D]`` only (jitted once per shape; the trace is exact, a sum of squares).

    Returns:
      ``_Solution(eigenvalues [k], directions [k, D], stats dict)``.
    """
    rows = jnp.asarray(rows)
    d = rows.shape[1]
    k = _check_k(k, d)
    tau = _check_regularization(regularization)
    wf, wb = jnp.asarray(wf, rows.dtype), jnp.asarray(wb, rows.dtype)
    trace = float(jnp.sum(jnp.square(rows) * wb[:, None])) if tau else None
    plan = _plan(solver, d, k, rows.dtype)
    a = jnp.asarray(tau * (trace or 0.0), rows.dtype)
    r, lo, hi = _rows_lobpcg(rows, wf, wb, a, plan.x0, plan.omega, plan.tol, plan.maxiter, k=k,
                             sketch=plan.p, precision=solver.precision)
    return _lobpcg_solution(r, lo, hi, k, plan.tol, tau, trace, 0.0)


# ------------------------------------------------------------------------------------------------
# resefa
# ------------------------------------------------------------------------------------------------
def resefa(J, region: RegionLike | None = None, *, k: int = 10, regularization: float = 0.0,
           solver: SolverLike = "auto", aggregate: str = "none", warn: bool = True
           ) -> ResefaResult:
    """ReSeFa directions for a region.

    Args:
      J: Jacobian ``[H, W, C, D]`` or ``[N, H, W, C, D]`` (from :func:`jaxedit.jacobian`; a
        ``[H, W, D]`` array is read as C = 1), or a :class:`~jaxedit.JacobianOperator` (one
        sample, matrix-free), or :class:`~jaxedit.Moments` (many samples, from
        :func:`jaxedit.region_moments`; the region is optional, or names the entry of a dict of
        them; solved by :func:`jaxedit.moments.resefa_moments`).
      region: bool mask ``[H, W]`` (any size; resampled), a :class:`~jaxedit.regions.Box`, a
        preset name, or ``(y0, x0, y1, x1)`` on the Jacobian grid.
      k: number of directions.
      regularization: ``tau`` of ``M_b += tau * trace(M_b) * I`` (reference: off; 1e-3 when on).
      solver: an options object - :class:`~jaxedit.Dense` (Cholesky whitening + eigh),
        :class:`~jaxedit.Woodbury` (SVD of J_b + Sherman-Morrison-Woodbury),
        :class:`~jaxedit.MatrixFree` (block LOBPCG on products), :class:`~jaxedit.ReferenceEig`
        (numpy inv + eig, as the reference) - or its name (``"dense"``, ``"woodbury"``,
        ``"matrix_free"``, ``"reference"``: the defaults), or ``"auto"`` (``MatrixFree()`` for an
        operator, else ``Dense()``).
      aggregate: ``"none"`` (one set per sample) or ``"mean"`` (M_f and M_b averaged over samples).
      warn: issue :class:`SingularBackgroundWarning` (M_b numerically singular),
        :class:`ConvergenceWarning` (the iteration stopped above its tolerance) and
        :class:`ComplexEigenpairsWarning` (reference); each says what to do.

    Returns:
      :class:`ResefaResult` (``.stats`` holds the diagnostics).

    Raises:
      ValueError: bad arguments, a non-finite Jacobian, a solver that does not fit the input.
      numpy.linalg.LinAlgError: M_b is singular and a direct solver produced no directions.
    """
    from . import moments as _moments   # many-sample moments (issue 16); lazy, a one-line hook
    if _moments.is_moments(J):
        return _moments.resefa_moments(J, region, k=k, regularization=regularization,
                                       solver=solver, aggregate=aggregate, warn=warn)
    if region is None:
        raise TypeError("resefa() needs a region for a Jacobian")
    if aggregate not in ("none", "mean"):
        raise ValueError(f"aggregate must be 'none' or 'mean', got {aggregate!r}")
    tau = _check_regularization(regularization)
    if isinstance(J, JacobianOperator):
        opts = as_solver(solver, operator=True)
        if not isinstance(opts, MatrixFree):
            raise ValueError(
                f"a JacobianOperator is solved matrix-free (solver='matrix_free' or "
                f"jaxedit.MatrixFree(...)); {type(opts).__name__} needs the Jacobian array "
                f"(jaxedit.jacobian(...))")
        if aggregate != "none":
            raise ValueError("aggregate='mean' needs a batch of Jacobians, not one operator")
        return _resefa_operator(J, region, tau, k, opts, warn)
    opts = as_solver(solver, operator=False)
    J = jnp.asarray(J)
    if not jnp.issubdtype(J.dtype, jnp.floating):
        raise ValueError(f"J must be a float array, got {J.dtype}")
    if J.ndim == 3:
        J = J[..., None, :]
    if J.ndim == 4:
        single = True
        J = J[None]
    elif J.ndim == 5:
        single = False
    else:
        raise ValueError(f"J must be [H, W, C, D] or [N, H, W, C, D], got shape {tuple(J.shape)}")
    if not bool(jnp.all(jnp.isfinite(J))):
        bad = int(jnp.sum(~jnp.isfinite(J)))
        raise ValueError(f"J contains {bad} non-finite value(s) (NaN or inf): the Jacobian is not "
                         f"usable (check the generator output and latents)")
    n, h, w, c, d = J.shape
    k = _check_k(k, d)
    _, wf, wb, mask, n_f, n_b = _rows(J[0], region)
    j2 = J.reshape(n, h * w * c, d)
    groups = [j2] if aggregate == "mean" else [j2[i:i + 1] for i in range(n)]
    outs = [_solve_group(g, wf, wb, n_f, n_b, tau, k, opts) for g in groups]
    squeeze = single or aggregate == "mean"
    return _finish(outs, opts, squeeze, mask, n_f, n_b, tau, d, J.dtype, warn)


def _solve_group(j2s, wf, wb, n_f, n_b, tau, k, opts) -> _Solution:
    """One solve for the rows of one or several samples j2s [G, rows, D] (moments averaged)."""
    g, rows, d = j2s.shape
    if isinstance(opts, Woodbury):
        idx_f, idx_b = np.nonzero(np.asarray(wf))[0], np.nonzero(np.asarray(wb))[0]
        jf = (j2s[:, idx_f] / math.sqrt(n_f * g)).reshape(-1, d)
        jb = (j2s[:, idx_b] / math.sqrt(n_b * g)).reshape(-1, d)
        r_full = min(jb.shape[0], d)
        r = r_full if opts.rank is None else min(int(opts.rank), r_full)
        if tau == 0 and r < d:
            raise ValueError(
                f"Woodbury with rank {r} < D={d} needs regularization > 0 (M_b would be "
                f"singular)")
        trace = float(jnp.sum(jb * jb)) if tau else None
        a = jnp.asarray(tau * (trace or 0.0), jf.dtype)
        lam, dirs, cond = rayleigh.woodbury_eigh(jf, jb, a, k=k, rank=opts.rank, form=opts.form,
                                                 precision=opts.precision)
        res = _rows_residuals(jf, jb, a, lam, dirs)
        method = "exact" if r == r_full else f"exact, of the rank-{r} approximation of M_b"
        return _Solution(np.asarray(lam), np.asarray(dirs),
                         _direct_stats(lam, dirs, res, cond, method, tau, trace))
    if isinstance(opts, MatrixFree):
        # products J V and Jᵀ U only: neither M_f nor M_b is formed
        jall = j2s.reshape(g * rows, d)
        return rows_lobpcg(jall, jnp.tile(wf, g) / g, jnp.tile(wb, g) / g, k=k,
                           regularization=tau, solver=opts)
    mfs, mbs = jax.vmap(lambda j: _moments(j, wf, wb))(j2s)
    return solve_moments(mfs.mean(0), mbs.mean(0), k=k, regularization=tau, solver=opts)


def _stack_stats(stats: list[dict], squeeze: bool) -> SolverStats:
    def pick(key, as_array=True):
        vals = [s[key] for s in stats]
        if squeeze:
            return vals[0]
        if vals[0] is None:
            return None
        return np.asarray(vals) if as_array else vals

    return SolverStats(
        converged=pick("converged"), iterations=pick("iterations"), residuals=pick("residuals"),
        max_residual=pick("max_residual"), condition_number=pick("condition_number"),
        condition_method=stats[0]["condition_method"], tol=stats[0]["tol"], trace=pick("trace"),
        trace_stderr=pick("trace_stderr"), trace_method=stats[0]["trace_method"])


def _finish(outs: list[_Solution], opts, squeeze, mask, n_f, n_b, tau, d, dtype, warn,
            operator: bool = False) -> ResefaResult:
    dirs = np.stack([o.directions for o in outs])
    lams = np.stack([o.eigenvalues for o in outs])
    stats = _stack_stats([o.stats for o in outs], squeeze)
    conds = np.array([o.stats["condition_number"] for o in outs], float)
    imag = None if not isinstance(opts, ReferenceEig) else float(max(o.max_imag for o in outs))
    eps = float(jnp.finfo(dtype).eps)
    singular = bool(np.any(np.isinf(conds)) or np.any(conds > _sing_threshold(dtype)))
    bound = " (a lower bound)" if isinstance(opts, MatrixFree) else ""
    advice = ("pass regularization > 0 (the reference's full_rank option uses 1e-3)"
              + ("" if dtype == jnp.float64 else " or compute in float64 (jax_enable_x64)"))
    if warn and singular:
        warnings.warn(
            f"M_b (background of the region, {n_b} rows, D={d}) is numerically singular in "
            f"{jnp.dtype(dtype).name}: condition number {np.max(conds):.3g}{bound} exceeds "
            f"1e-2/eps = {1e-2 / eps:.3g}; the directions are unreliable - {advice}",
            SingularBackgroundWarning, stacklevel=3)
    if not np.all(np.isfinite(dirs)):
        if operator:
            raise ValueError(
                "the matrix-free solver produced non-finite directions: the JacobianOperator's "
                "products are not finite (check the generator output at this latent)")
        if isinstance(opts, MatrixFree):
            raise np.linalg.LinAlgError(
                f"the matrix-free solver broke down (non-finite directions; M_b condition number "
                f">= {np.max(conds):.3g}); {advice}")
        raise np.linalg.LinAlgError(
            f"solver {opts.name!r} produced non-finite directions: M_b is singular "
            f"(condition number {np.max(conds):.3g}); {advice}")
    if warn and isinstance(opts, MatrixFree) and not np.all(stats.converged):
        worst = float(np.max(stats.max_residual))
        warnings.warn(
            f"the matrix-free solver stopped after {np.max(stats.iterations)} iterations with "
            f"max residual {worst:.3g} > tol {stats.tol:.3g}: the directions are not converged - "
            f"raise MatrixFree(maxiter=...) or sketch_size (a better preconditioner), pass "
            f"regularization > 0 (M_b condition number >= {np.max(conds):.3g})"
            + ("" if dtype == jnp.float64 else ", or compute in float64 (jax_enable_x64); "
               "float32 residuals cannot go much below eps * cond(M_b)"),
            ConvergenceWarning, stacklevel=3)
    if warn and imag is not None and imag > 1e3 * eps:
        warnings.warn(
            f"the reference eig(inv(M_b) @ M_f) returned complex eigenvalues (max |Im|/|λ| = "
            f"{imag:.3g}); their real parts were kept as the reference does - use a symmetric "
            f"solver ('dense') or regularization", ComplexEigenpairsWarning, stacklevel=3)
    return ResefaResult(
        directions=dirs[0] if squeeze else dirs, eigenvalues=lams[0] if squeeze else lams,
        solver=opts.name, stats=stats, mask=mask, n_foreground=n_f, n_background=n_b,
        regularization=float(tau), singular=singular, max_imag=imag)


# ------------------------------------------------------------------------------------------------
# Route 3: a JacobianOperator
# ------------------------------------------------------------------------------------------------
def _trace_method(opts: MatrixFree, d: int, p: int) -> str:
    if opts.trace == "exact":
        return "exact"
    if opts.trace == "hutchpp":
        return "hutch++"
    # Hutch++ costs the sketch's 2p products of M_b (each a JVP and a VJP) + trace_probes JVPs;
    # the preconditioner needs p of those anyway, so its extra cost is ~ 2p + probes JVPs. The
    # exact trace costs D JVPs.
    return "exact" if d <= 2 * p + opts.trace_probes else "hutch++"


def _resefa_operator(op: JacobianOperator, region, tau, k, opts: MatrixFree, warn
                     ) -> ResefaResult:
    h, w, c = op.out_shape
    d = op.dim
    k = _check_k(k, d)
    mask = region_mask(region, (h, w))
    rowmask = np.repeat(mask.reshape(-1), c)
    n_f, n_b = int(rowmask.sum()), int((~rowmask).sum())
    wf = jnp.asarray(rowmask / n_f, op.dtype)
    wb = jnp.asarray(~rowmask / n_b, op.dtype)
    plan = _plan(opts, d, k, op.dtype)
    method = _trace_method(opts, d, plan.p) if tau else None
    if method == "hutch++" and plan.p == 0:
        raise ValueError("the Hutch++ trace needs a sketch: MatrixFree(sketch_size > 0) or "
                         "trace='exact'")
    r, lo, hi, trace, stderr = _operator_lobpcg(
        op, op.arrays(), wf, wb, jnp.asarray(tau, op.dtype), plan.x0, plan.omega,
        plan.probe_key, plan.tol, plan.maxiter, k=k, probes=int(opts.trace_probes),
        sketch=plan.p, trace=method, precision=opts.precision)
    sol = _lobpcg_solution(r, lo, hi, k, plan.tol, tau, trace, stderr, method)
    return _finish([sol], opts, True, mask, n_f, n_b, tau, d, op.dtype, warn, operator=True)


def _operator_lobpcg_impl(op, arrays, wf, wb, tau, x0, omega, key, tol, maxiter, *, k, probes,
                          sketch, trace, precision):
    prec = _ops.as_precision(precision)
    mv, rmv = op.pure(arrays)

    def apply_b(v):  # unregularized M_b v, v [D, n]
        return rmv(mv(v.T) * wb[None]).T

    def quad_b(v):   # diag(vᵀ M_b v) from JVPs only, v [D, n] -> [n]
        jv = mv(v.T)
        return jnp.sum(jv * jv * wb[None], axis=1)

    zero = jnp.zeros((), op.dtype)
    tr, stderr, q, bq = zero, zero, None, None
    if trace == "exact":     # Σ_j e_jᵀ M_b e_j, chunk basis vectors at a time
        n = -(-op.dim // op.chunk)
        tr = jnp.sum(jax.lax.map(
            lambda i: jnp.sum(quad_b(_basis_chunk(i, op.chunk, op.dim, op.dtype).T)),
            jnp.arange(n)))
    elif trace == "hutch++":
        g = jax.random.rademacher(key, (op.dim, probes), dtype=op.dtype)
        tr, stderr, q, bq = hutchpp_trace(apply_b, omega, g, quad=quad_b, precision=prec)
    a = tau * tr

    def apply_fb(v):  # v [D, m] -> (M_f v, M_b v): one JVP and one stacked VJP
        jv = mv(v.T)                                                  # [m, rows]
        both = rmv(jnp.concatenate([jv * wf[None], jv * wb[None]]))   # [2m, D]
        m = v.shape[1]
        return both[:m].T, both[m:].T

    r, lo, hi = _lobpcg_core(apply_fb, apply_b, a, x0, omega, tol, maxiter, k=k, sketch=sketch,
                             precision=precision, q=q, bq=bq)
    return r, lo, hi, tr, stderr


_OPERATOR_STATIC = ("op", "k", "probes", "sketch", "trace", "precision")
_operator_lobpcg = jax.jit(_operator_lobpcg_impl, static_argnames=_OPERATOR_STATIC)


__all__ = ["ComplexEigenpairsWarning", "ConvergenceWarning", "ResefaResult", "SOLVERS",
           "SingularBackgroundWarning", "region_moments", "resefa", "rows_lobpcg",
           "solve_moments"]
