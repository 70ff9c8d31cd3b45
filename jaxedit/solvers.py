"""Solver options for :func:`jaxedit.resefa` (one small frozen dataclass per solver, as lineax
does) and the diagnostics every solver reports (:class:`SolverStats`).

::

    jaxedit.resefa(J, "ffhq/eyes", solver=jaxedit.Dense())
    jaxedit.resefa(J, "ffhq/eyes", solver=jaxedit.Woodbury(rank=256), regularization=1e-3)
    jaxedit.resefa(op, "ffhq/eyes", solver=jaxedit.MatrixFree(tol=1e-6, maxiter=300))
    jaxedit.resefa(J, "ffhq/eyes", solver="reference")   # strings: the defaults of each class

=============== ================================ ============================================
solver          what it needs                    condition number of M_b
=============== ================================ ============================================
``Dense``       a Jacobian array (or M_f, M_b)   exact (eigenvalues of M_b)
``Woodbury``    a Jacobian array (its rows)      exact (singular values of J_b)
``MatrixFree``  an array or a JacobianOperator   a lower bound (Ritz values of M_b, below)
``ReferenceEig`` a Jacobian array (or M_f, M_b)  exact (``numpy.linalg.cond``)
=============== ================================ ============================================
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from . import _ops


from .errors import ComplexEigenpairsWarning, ConvergenceWarning, SingularBackgroundWarning


def _check_precision(precision):
    _ops.as_precision(precision)


@dataclasses.dataclass(frozen=True)
class Dense:
    """Cholesky whitening of M_b + ``eigh`` (``O(D³)``; the default for Jacobian arrays).

    Attributes:
      precision: matmul precision of the products and residuals (``"highest"``: no TF32).
    """

    precision: _ops.Precision = "highest"
    name = "dense"

    def __post_init__(self):
        _check_precision(self.precision)


@dataclasses.dataclass(frozen=True)
class Woodbury:
    """SVD of the background rows J_b + Sherman-Morrison-Woodbury (no D x D factorization of M_b).

    Attributes:
      rank: keep the top ``rank`` singular triplets of J_b (None: all, exact). A truncated SVD
        needs ``regularization > 0`` (the dropped part of M_b is replaced by the ridge).
      form: ``"d"`` (D x D eigenproblem), ``"rows"`` (n_f x n_f, needs k <= n_f) or ``"auto"``
        (rows when k <= n_f < D).
      precision: matmul precision.
    """

    rank: int | None = None
    form: str = "auto"
    precision: _ops.Precision = "highest"
    name = "woodbury"

    def __post_init__(self):
        if self.rank is not None and (int(self.rank) != self.rank or self.rank < 1):
            raise ValueError(f"Woodbury(rank=...) must be a positive integer or None, got {self.rank!r}")
        if self.form not in ("auto", "d", "rows"):
            raise ValueError(f"Woodbury(form=...) must be 'auto', 'd' or 'rows', got {self.form!r}")
        _check_precision(self.precision)


@dataclasses.dataclass(frozen=True)
class MatrixFree:
    """Block LOBPCG on products with J (or with M_f, M_b), never forming the D x D matrices.

    Attributes:
      tol: residual tolerance ``‖M_f n − λ M_b n‖ / ‖M_f n‖`` of the top k (None: 1e-6 in
        float64, 1e-3 in float32).
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
            raise ValueError(f"MatrixFree(maxiter=...) must be a positive integer, got {self.maxiter!r}")
        if self.block_size is not None and (int(self.block_size) != self.block_size
                                            or self.block_size < 1):
            raise ValueError(f"MatrixFree(block_size=...) must be a positive integer, got "
                             f"{self.block_size!r}")
        if self.sketch_size is not None and (int(self.sketch_size) != self.sketch_size
                                             or self.sketch_size < 0):
            raise ValueError(f"MatrixFree(sketch_size=...) must be an integer >= 0, got "
                             f"{self.sketch_size!r}")
        if self.trace not in ("auto", "exact", "hutchpp"):
            raise ValueError(f"MatrixFree(trace=...) must be 'auto', 'exact' or 'hutchpp', got "
                             f"{self.trace!r}")
        if int(self.trace_probes) != self.trace_probes or self.trace_probes < 2:
            raise ValueError(f"MatrixFree(trace_probes=...) must be an integer >= 2, got "
                             f"{self.trace_probes!r}")
        _check_precision(self.precision)

    def prng_key(self) -> jax.Array:
        """The PRNG key (``jax.random.key(seed)`` for an integer seed)."""
        if isinstance(self.key, (int, np.integer)):
            return jax.random.key(int(self.key))
        return self.key


@dataclasses.dataclass(frozen=True)
class ReferenceEig:
    """The ReSeFa reference exactly: ``numpy.linalg.eig(inv(M_b) @ M_f)``, real parts, sorted.

    NumPy, in the input's dtype; with ``regularization > 0`` the ridge is added as the original
    does (``M_b + tau * trace(M_b) * np.eye(D)``), which promotes float32 to float64.
    """

    name = "reference"


SolverLike = Dense | Woodbury | MatrixFree | ReferenceEig | str

SHORTCUTS = {"dense": Dense, "woodbury": Woodbury, "matrix_free": MatrixFree,
             "reference": ReferenceEig}


def as_solver(solver: SolverLike, *, operator: bool = False):
    """Options object for a solver or its string shortcut (``"auto"``: :class:`MatrixFree` for an
    operator, :class:`Dense` otherwise)."""
    if isinstance(solver, (Dense, Woodbury, MatrixFree, ReferenceEig)):
        return solver
    if isinstance(solver, type) and solver in SHORTCUTS.values():
        return solver()
    if solver == "auto":
        return MatrixFree() if operator else Dense()
    if isinstance(solver, str) and solver in SHORTCUTS:
        return SHORTCUTS[solver]()
    raise ValueError(f"solver must be 'auto', one of {sorted(SHORTCUTS)} or an options object "
                     f"(jaxedit.Dense(), Woodbury(), MatrixFree(), ReferenceEig()), got {solver!r}")


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


__all__ = ["ComplexEigenpairsWarning", "ConvergenceWarning", "Dense", "MatrixFree",
           "ReferenceEig", "SingularBackgroundWarning", "SolverLike", "SolverStats", "Woodbury",
           "as_solver"]
