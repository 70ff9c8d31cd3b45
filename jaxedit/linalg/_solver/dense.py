"""`Dense`: Cholesky whitening of B + ``eigh`` (``O(D³)``).

``B = L Lᵀ``, ``K = L⁻¹ A L⁻ᵀ``, ``eigh(K)``, ``n = L⁻ᵀ u``. The condition number of B is
exact (its eigenvalues).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from ... import _ops
from .._common import HP, canonical_rows, check_k, check_regularization, sym
from .._pencil import AbstractPencil, FunctionPencil, RowPencil, check_matrices
from .._solution import PencilSolution, direct_stats
from .base import AbstractPencilSolver, check_precision


def regularize(b: jax.Array, regularization) -> jax.Array:
    """ReSeFa's full-rank term: ``B + regularization * trace(B) * I``."""
    return b + regularization * jnp.trace(b) * jnp.eye(b.shape[-1], dtype=b.dtype)


@functools.partial(jax.jit, static_argnames=("k", "precision"))
def generalized_eigh(a: jax.Array, b: jax.Array, *, k: int, precision: _ops.Precision = "highest"):
    """Dense top-k of the pencil (A, B) by Cholesky whitening + ``eigh``.

    Args:
      a: ``[D, D]`` symmetric.
      b: ``[D, D]`` symmetric positive definite (regularize first if it is not).
      k: number of pairs.
      precision: accepted for a uniform interface (Cholesky, triangular solves and ``eigh`` have
        no precision setting).

    Returns:
      (eigenvalues [k] descending, directions [k, D] unit-norm canonical, the exact condition
      number of B from its eigenvalues (``inf`` when the smallest is <= 0); the directions are
      NaN when the Cholesky factorization fails).
    """
    _ops.as_precision(precision)  # validated; this path has triangular solves, no matmuls
    a, b = sym(a), sym(b)
    l_chol = jnp.linalg.cholesky(b)
    x = solve_triangular(l_chol, a, lower=True)  # L⁻¹ A
    kmat = sym(solve_triangular(l_chol, x.T, lower=True))  # L⁻¹ A L⁻ᵀ
    lam, u = jnp.linalg.eigh(kmat)
    lam, u = lam[::-1][:k], u[:, ::-1][:, :k]
    dirs = solve_triangular(l_chol.T, u, lower=False).T  # rows L⁻ᵀ u
    return lam, canonical_rows(dirs), condition_number(b)


def condition_number(b: jax.Array) -> jax.Array:
    """Exact 2-norm condition number of a symmetric ``[D, D]`` matrix from its eigenvalues
    (``inf`` unless it is positive definite)."""
    ev = jnp.linalg.eigvalsh(sym(b))
    return jnp.where(ev[0] > 0, ev[-1] / jnp.where(ev[0] > 0, ev[0], 1.0), jnp.inf)


@jax.jit
def residuals(mf, mb, lam, dirs):
    """``‖M_f n − λ M_b n‖ / ‖M_f n‖`` per row n of ``dirs [k, D]``."""
    af = jnp.matmul(dirs, mf, precision=HP)
    bf = jnp.matmul(dirs, mb, precision=HP)
    return jnp.linalg.norm(af - lam[..., None] * bf, axis=-1) / jnp.linalg.norm(af, axis=-1)


def matrices_of(pencil: AbstractPencil):
    """``(A, B)`` checked, for the solvers that need the matrices (a RowPencil's mean over its
    groups, as the per-sample moments are averaged)."""
    if isinstance(pencil, RowPencil):
        return check_matrices(*pencil.mean_matrices())
    return check_matrices(*pencil.as_matrices())


def matrix_refusal(solver: str, pencil: AbstractPencil) -> str | None:
    """The refusal of a solver that needs the matrices: a `FunctionPencil` has products only."""
    if isinstance(pencil, FunctionPencil):
        return (
            f"{solver} needs the matrices or rows of the pencil (a MomentPencil or "
            f"RowPencil); a FunctionPencil has products only: use MatrixFree()"
        )
    return None


@dataclasses.dataclass(frozen=True)
class Dense(AbstractPencilSolver):
    """Cholesky whitening of M_b + ``eigh`` (``O(D³)``; the default for Jacobian arrays).

    Attributes:
      precision: matmul precision of the products and residuals (``"highest"``: no TF32).
    """

    precision: _ops.Precision = "highest"
    name = "dense"

    def __post_init__(self):
        check_precision(self.precision)

    def refusal(self, pencil):
        return matrix_refusal("Dense", pencil)

    def solve(self, pencil, *, k, regularization=0.0):
        self.check(pencil)
        mf, mb = matrices_of(pencil)
        k = check_k(k, mf.shape[-1])
        tau = check_regularization(regularization)
        trace = float(jnp.trace(mb)) if tau else None
        mbr = regularize(mb, tau) if tau else mb
        lam, dirs, cond = generalized_eigh(mf, mbr, k=k, precision=self.precision)
        res = residuals(mf, mbr, lam, dirs)
        return PencilSolution(
            np.asarray(lam),
            np.asarray(dirs),
            direct_stats(lam, dirs, res, cond, "exact", tau, trace),
            self.name,
        )
