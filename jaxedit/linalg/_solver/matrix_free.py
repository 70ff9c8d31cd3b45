"""`MatrixFree`: block LOBPCG on products with the pencil, never forming the D x D matrices.

One jitted program per product route (matrices, rows, functions) and shape / static option set:
new values, regions, ridges, tolerances, iteration limits and keys reuse it (see
`jaxedit.linalg.compiled_programs`).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ... import _ops
from ...errors import ConvergenceWarning
from .._common import canonical_rows, check_k, check_regularization, sym
from .._pencil import FunctionPencil, RowPencil, basis_chunk, check_matrices
from .._solution import PencilSolution, SolverStats
from ._lobpcg import hutchpp_trace, lobpcg_top, nystrom_preconditioner
from .base import AbstractPencilSolver, check_precision, compiled


@dataclasses.dataclass(frozen=True)
class MatrixFree(AbstractPencilSolver):
    """Block LOBPCG on products with J (or with M_f, M_b), never forming the D x D matrices.

    Attributes:
      tol: residual tolerance ``‖M_f n − λ M_b n‖ / ‖M_f n‖`` of the top k (None: 1e-6 in
        float64, 1e-3 in float32). A value below what the dtype can reach (`tol_floor`: 1.2e-4
        in float32) is raised to it, with a `jaxedit.ConvergenceWarning` saying so.
      maxiter: iteration limit; each iteration costs ``block_size`` products.
      block_size: LOBPCG block m (None: ``min(max(2k, k + 4), D // 3)``; needs k <= m, 3m <= D).
      sketch_size: p products of M_b build a randomized Nyström preconditioner (None:
        ``min(D // 2, max(8k, 64))``; 0 disables it).
      trace: how ``trace(M_b)`` for the ridge is obtained on a :class:`~jaxedit.JacobianOperator`:
        ``"exact"`` (D Jacobian-vector products), ``"hutchpp"`` (Hutch++: the sketch's 2p
        products of M_b + ``trace_probes`` JVPs, reported with its standard error) or ``"auto"``
        (exact when D <= 2 * sketch_size + trace_probes, i.e. when it costs no more). On an array
        the trace is always exact (it is a sum of squares of the rows).
      trace_probes: Rademacher probes of the Hutch++ remainder.
      key: PRNG seed (int) or ``jax.random.key`` for the start block, sketch and probes
        (deterministic by default).
      precision: matmul precision of the Grams, basis updates and products on arrays.
    """

    tol: float | None = None
    maxiter: int = 500
    block_size: int | None = None
    sketch_size: int | None = None
    trace: str = "auto"
    trace_probes: int = 64
    key: Any = 0
    precision: _ops.Precision = "highest"
    name = "matrix_free"

    def __post_init__(self):
        if self.tol is not None and not (float(self.tol) > 0):
            raise ValueError(f"MatrixFree(tol=...) must be > 0, got {self.tol!r}")
        if int(self.maxiter) != self.maxiter or self.maxiter < 1:
            raise ValueError(
                f"MatrixFree(maxiter=...) must be a positive integer, got {self.maxiter!r}"
            )
        if self.block_size is not None and (
            int(self.block_size) != self.block_size or self.block_size < 1
        ):
            raise ValueError(
                f"MatrixFree(block_size=...) must be a positive integer, got {self.block_size!r}"
            )
        if self.sketch_size is not None and (
            int(self.sketch_size) != self.sketch_size or self.sketch_size < 0
        ):
            raise ValueError(
                f"MatrixFree(sketch_size=...) must be an integer >= 0, got {self.sketch_size!r}"
            )
        if self.trace not in ("auto", "exact", "hutchpp"):
            raise ValueError(
                f"MatrixFree(trace=...) must be 'auto', 'exact' or 'hutchpp', got {self.trace!r}"
            )
        if int(self.trace_probes) != self.trace_probes or self.trace_probes < 2:
            raise ValueError(
                f"MatrixFree(trace_probes=...) must be an integer >= 2, got {self.trace_probes!r}"
            )
        check_precision(self.precision)

    def prng_key(self) -> jax.Array:
        """The PRNG key (``jax.random.key(seed)`` for an integer seed)."""
        if isinstance(self.key, (int, np.integer)):
            return jax.random.key(int(self.key))
        return self.key

    def trace_method(self, d: int, p: int) -> str:
        """``"exact"`` or ``"hutch++"``: how ``trace(B)`` of a `FunctionPencil` is obtained for
        D = ``d`` and sketch size ``p``."""
        if self.trace == "exact":
            return "exact"
        if self.trace == "hutchpp":
            return "hutch++"
        # Hutch++ costs the sketch's 2p products of M_b (each a JVP and a VJP) + trace_probes
        # JVPs; the preconditioner needs p of those anyway, so its extra cost is ~ 2p + probes
        # JVPs. The exact trace costs D JVPs.
        return "exact" if d <= 2 * p + self.trace_probes else "hutch++"

    def solve(self, pencil, *, k, regularization=0.0):
        self.check(pencil)
        d = pencil.dim
        k = check_k(k, d)
        tau = check_regularization(regularization)
        if isinstance(pencil, FunctionPencil):
            return _solve_function(self, pencil, k, tau)
        if isinstance(pencil, RowPencil):
            rows, wf, wb = pencil.flat()
            trace = float(jnp.sum(jnp.square(rows) * wb[:, None])) if tau else None
            plan = _plan(self, d, k, rows.dtype)
            a = jnp.asarray(tau * (trace or 0.0), rows.dtype)
            r, lo, hi = _rows_lobpcg(
                rows,
                wf,
                wb,
                a,
                plan.x0,
                plan.omega,
                plan.tol,
                plan.maxiter,
                k=k,
                sketch=plan.p,
                precision=self.precision,
            )
            return _lobpcg_solution(r, lo, hi, k, plan.tol, tau, trace, 0.0)
        mf, mb = check_matrices(*pencil.as_matrices())
        trace = float(jnp.trace(mb)) if tau else None
        plan = _plan(self, d, k, mf.dtype)
        a = jnp.asarray(tau * (trace or 0.0), mf.dtype)
        r, lo, hi = _moments_lobpcg(
            mf,
            mb,
            a,
            plan.x0,
            plan.omega,
            plan.tol,
            plan.maxiter,
            k=k,
            sketch=plan.p,
            precision=self.precision,
        )
        return _lobpcg_solution(r, lo, hi, k, plan.tol, tau, trace, 0.0)


# ------------------------------------------------------------------------------------------------
# The plan (block, sketch, tolerance, random start) and the three product routes
# ------------------------------------------------------------------------------------------------
class _Plan(NamedTuple):
    m: int
    p: int
    tol: float
    maxiter: int
    x0: jax.Array
    omega: jax.Array
    probe_key: jax.Array


#: The smallest tolerance `MatrixFree` accepts, in units of the dtype's machine epsilon: the
#: relative residual of a product-based Rayleigh-Ritz step stalls around a few hundred eps
#: (measured on the embedded model's Jacobian: 2-4e-5 in float32), so a lower ``tol`` would
#: only run out ``maxiter``.
TOL_FLOOR_EPS = 1000


def tol_floor(dtype) -> float:
    """The smallest residual tolerance `MatrixFree` uses for ``dtype`` (`TOL_FLOOR_EPS` x
    machine epsilon: 1.2e-4 in float32, 2.2e-13 in float64); a lower ``tol`` is raised to it
    with a `jaxedit.ConvergenceWarning`."""
    return float(TOL_FLOOR_EPS * np.finfo(jnp.dtype(dtype)).eps)


def _plan(opts: MatrixFree, d: int, k: int, dtype) -> _Plan:
    m = opts.block_size if opts.block_size is not None else min(max(2 * k, k + 4), d // 3)
    if m < k or 3 * m > d:
        raise ValueError(
            f"MatrixFree needs k <= block_size and 3 * block_size <= D (k={k}, block_size={m}, "
            f"D={d}); use the Dense solver for small D"
        )
    p = min(d // 2, max(8 * k, 64)) if opts.sketch_size is None else int(opts.sketch_size)
    if not 0 <= p < d:
        raise ValueError(f"MatrixFree(sketch_size=...) must be in [0, D={d}), got {p}")
    dt = jnp.dtype(dtype)
    tol = opts.tol if opts.tol is not None else (1e-6 if dt == jnp.float64 else 1e-3)
    floor = tol_floor(dt)
    if tol < floor:
        warnings.warn(
            f"MatrixFree(tol={tol:g}) is below what {dt.name} residuals can reach (about "
            f"{TOL_FLOOR_EPS} x machine epsilon = {floor:.2g}); using tol={floor:.2g} (compute "
            "in float64 for a tighter tolerance)",
            ConvergenceWarning,
            stacklevel=4,
        )
        tol = floor
    k_x, k_s, k_t = jax.random.split(opts.prng_key(), 3)
    x0 = jax.random.normal(k_x, (d, m), dt)
    omega = jax.random.normal(k_s, (d, max(p, 1)), dt)
    return _Plan(m, p, float(tol), int(opts.maxiter), x0, omega, k_t)


def _lobpcg_core(
    apply_fb, apply_b, a, x0, omega, tol, maxiter, *, k, sketch, precision, q=None, bq=None
):
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
        assert bq is not None  # given with q, or computed above
        pc = nystrom_preconditioner(q, bq, shift=a, precision=prec)
        ev = jnp.linalg.eigvalsh(sym(jnp.matmul(q.T, bq, precision=prec))) + a
        lo, hi = ev[0], ev[-1]
    r = lobpcg_top(apply, x0, k=k, maxiter=maxiter, tol=tol, precondition=pc, precision=prec)
    return r, jnp.minimum(lo, r.b_ritz_min), jnp.maximum(hi, r.b_ritz_max)


_LOBPCG_STATIC = ("k", "sketch", "precision")


def _moments_lobpcg_impl(mf, mb, a, x0, omega, tol, maxiter, *, k, sketch, precision):
    prec = _ops.as_precision(precision)

    def apply_fb(v):
        return jnp.matmul(mf, v, precision=prec), jnp.matmul(mb, v, precision=prec)

    return _lobpcg_core(
        apply_fb,
        lambda v: apply_fb(v)[1],
        a,
        x0,
        omega,
        tol,
        maxiter,
        k=k,
        sketch=sketch,
        precision=precision,
    )


def _rows_lobpcg_impl(rows, wf, wb, a, x0, omega, tol, maxiter, *, k, sketch, precision):
    prec = _ops.as_precision(precision)

    def apply_b(v):
        jv = jnp.matmul(rows, v, precision=prec)
        return jnp.matmul(rows.T, jv * wb[:, None], precision=prec)

    def apply_fb(v):
        jv = jnp.matmul(rows, v, precision=prec)
        return (
            jnp.matmul(rows.T, jv * wf[:, None], precision=prec),
            jnp.matmul(rows.T, jv * wb[:, None], precision=prec),
        )

    return _lobpcg_core(
        apply_fb, apply_b, a, x0, omega, tol, maxiter, k=k, sketch=sketch, precision=precision
    )


# module-level jits: one compilation per shape / static option set (tests guard this)
_moments_lobpcg = jax.jit(_moments_lobpcg_impl, static_argnames=_LOBPCG_STATIC)
_rows_lobpcg = jax.jit(_rows_lobpcg_impl, static_argnames=_LOBPCG_STATIC)


def _lobpcg_solution(
    r, lo, hi, k, tol, tau, trace, trace_stderr, trace_method: str | None = "exact"
) -> PencilSolution:
    lam = np.asarray(r.eigenvalues[:k])
    dirs = np.asarray(canonical_rows(r.vectors[:, :k].T))
    res = np.asarray(r.residuals[:k])
    lo, hi = float(lo), float(hi)
    cond = hi / lo if lo > 0 and np.isfinite(hi) else float("inf")
    stats = SolverStats(
        converged=bool(r.converged) and bool(np.all(np.isfinite(dirs))),
        iterations=int(r.iterations),
        residuals=res,
        max_residual=float(np.max(res)),
        condition_number=cond,
        condition_method="lower bound",
        tol=float(tol),
        trace=None if not tau else float(trace),
        trace_stderr=None if not tau else float(trace_stderr),
        trace_method=None if not tau else trace_method,
    )
    return PencilSolution(lam, dirs, stats, MatrixFree.name)


# ------------------------------------------------------------------------------------------------
# A FunctionPencil (e.g. a JacobianOperator's JVPs / VJPs)
# ------------------------------------------------------------------------------------------------
def _solve_function(opts: MatrixFree, pencil: FunctionPencil, k: int, tau: float) -> PencilSolution:
    d = pencil.dim
    plan = _plan(opts, d, k, pencil.dtype)
    method = opts.trace_method(d, plan.p) if tau else None
    if method == "hutch++" and plan.p == 0:
        raise ValueError(
            "the Hutch++ trace needs a sketch: MatrixFree(sketch_size > 0) or trace='exact'"
        )
    r, lo, hi, trace, stderr = _function_lobpcg(
        pencil.pure,
        pencil.operands,
        pencil.wf,
        pencil.wb,
        jnp.asarray(tau, pencil.dtype),
        plan.x0,
        plan.omega,
        plan.probe_key,
        plan.tol,
        plan.maxiter,
        dim=d,
        chunk=pencil.chunk,
        k=k,
        probes=int(opts.trace_probes),
        sketch=plan.p,
        trace=method,
        precision=opts.precision,
    )
    return _lobpcg_solution(r, lo, hi, k, plan.tol, tau, trace, stderr, method)


def _function_lobpcg_impl(
    pure,
    operands,
    wf,
    wb,
    tau,
    x0,
    omega,
    key,
    tol,
    maxiter,
    *,
    dim,
    chunk,
    k,
    probes,
    sketch,
    trace,
    precision,
):
    prec = _ops.as_precision(precision)
    dtype = x0.dtype
    mv, rmv = pure(operands)

    def apply_b(v):  # unregularized M_b v, v [D, n]
        return rmv(mv(v.T) * wb[None]).T

    def quad_b(v):  # diag(vᵀ M_b v) from JVPs only, v [D, n] -> [n]
        jv = mv(v.T)
        return jnp.sum(jv * jv * wb[None], axis=1)

    zero = jnp.zeros((), dtype)
    tr, stderr, q, bq = zero, zero, None, None
    if trace == "exact":  # Σ_j e_jᵀ M_b e_j, chunk basis vectors at a time
        n = -(-dim // chunk)
        tr = jnp.sum(
            jax.lax.map(
                lambda i: jnp.sum(quad_b(basis_chunk(i, chunk, dim, dtype).T)), jnp.arange(n)
            )
        )
    elif trace == "hutch++":
        g = jax.random.rademacher(key, (dim, probes), dtype=dtype)
        tr, stderr, q, bq = hutchpp_trace(apply_b, omega, g, quad=quad_b, precision=prec)
    a = tau * tr

    def apply_fb(v):  # v [D, m] -> (M_f v, M_b v): one JVP and one stacked VJP
        jv = mv(v.T)  # [m, rows]
        both = rmv(jnp.concatenate([jv * wf[None], jv * wb[None]]))  # [2m, D]
        m = v.shape[1]
        return both[:m].T, both[m:].T

    r, lo, hi = _lobpcg_core(
        apply_fb,
        apply_b,
        a,
        x0,
        omega,
        tol,
        maxiter,
        k=k,
        sketch=sketch,
        precision=precision,
        q=q,
        bq=bq,
    )
    return r, lo, hi, tr, stderr


_FUNCTION_STATIC = ("pure", "dim", "chunk", "k", "probes", "sketch", "trace", "precision")
_function_lobpcg = jax.jit(_function_lobpcg_impl, static_argnames=_FUNCTION_STATIC)


def compiled_programs() -> dict[str, int]:
    """Compiled programs per matrix-free route (``{"moments", "rows", "function"}``)."""
    return {
        "moments": compiled(_moments_lobpcg),
        "rows": compiled(_rows_lobpcg),
        "function": compiled(_function_lobpcg),
    }
