"""What a pencil solve returns: `PencilSolution` and its diagnostics `SolverStats`."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class SolverStats:
    """What a solver reports about its result (per direction set: arrays with a leading N when
    :func:`~jaxedit.resefa` returns one set per sample).

    Attributes:
      converged: the result can be used as computed: for ``MatrixFree``, every top-k residual
        (from fresh products) is <= ``tol``; for the direct solvers, the factorization gave finite
        numbers.
      iterations: LOBPCG iterations (0 for the direct solvers).
      residuals: ``[k]``: ``‖M_f n − λ M_b n‖ / ‖M_f n‖`` per direction (M_b regularized).
      max_residual: the largest of ``residuals``.
      condition_number: of the (regularized) M_b; ``inf`` when it is singular.
      condition_method: how it was obtained: ``"exact"`` (eigenvalues of M_b, singular values of
        J_b, or ``numpy.linalg.cond``) or ``"lower bound"`` (``MatrixFree``: the ratio of the
        extreme eigenvalues of ``QᵀM_bQ`` over the Euclidean orthonormal bases Q of the Nyström
        sketch and every LOBPCG search space; by Cauchy interlacing they lie inside
        ``[λ_min, λ_max]``, so the true condition number is at least this).
      tol: the residual tolerance (``MatrixFree`` only, else None).
      trace: ``trace(M_b)`` used for the ridge ``regularization * trace`` (None without
        regularization).
      trace_stderr: standard error of ``trace`` (0 when exact).
      trace_method: ``"exact"`` or ``"hutch++"`` (None without regularization).
    """

    converged: Any
    iterations: Any
    residuals: Any
    max_residual: Any
    condition_number: Any
    condition_method: str
    tol: float | None = None
    trace: Any = None
    trace_stderr: Any = None
    trace_method: str | None = None


@dataclasses.dataclass(frozen=True)
class PencilSolution:
    """The top-k eigenpairs of one pencil ``(A, B + a I)``.

    Attributes:
      eigenvalues: ``[k]`` descending (NumPy).
      directions: ``[k, D]`` (NumPy): unit L2 rows with a canonical sign (``ReferenceEig``:
        numpy's vectors, real parts, arbitrary sign).
      stats: `SolverStats`.
      solver: the name of the solver that ran (``"dense"``, ``"woodbury"``, ``"matrix_free"``,
        ``"reference"``).
      max_imag: ``ReferenceEig`` only: largest |Im λ| / max |λ| among the kept eigenvalues.
    """

    eigenvalues: np.ndarray
    directions: np.ndarray
    stats: SolverStats
    solver: str = ""
    max_imag: float | None = None


def direct_stats(lam, dirs, res, cond, method, tau, trace) -> SolverStats:
    """`SolverStats` of a direct (non-iterative) solve."""
    finite = bool(np.all(np.isfinite(np.asarray(dirs))) and np.all(np.isfinite(np.asarray(lam))))
    res = np.asarray(res)
    return SolverStats(
        converged=finite,
        iterations=0,
        residuals=res,
        max_residual=float(np.max(res)) if res.size else float("nan"),
        condition_number=float(cond),
        condition_method=method,
        tol=None,
        trace=None if not tau else float(trace),
        trace_stderr=None if not tau else 0.0,
        trace_method=None if not tau else "exact",
    )


def stack_stats(stats: list[SolverStats], squeeze: bool) -> SolverStats:
    """One `SolverStats` for several solves (per-solve fields stacked along a leading N), or
    the first one when ``squeeze``."""
    if squeeze:
        return stats[0]

    def pick(key):
        vals = [getattr(s, key) for s in stats]
        return None if vals[0] is None else np.asarray(vals)

    first = stats[0]
    return SolverStats(
        converged=pick("converged"),
        iterations=pick("iterations"),
        residuals=pick("residuals"),
        max_residual=pick("max_residual"),
        condition_number=pick("condition_number"),
        condition_method=first.condition_method,
        tol=first.tol,
        trace=pick("trace"),
        trace_stderr=pick("trace_stderr"),
        trace_method=first.trace_method,
    )
