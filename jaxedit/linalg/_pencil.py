"""Pencils ``(A, B)`` of symmetric positive semi-definite matrices, in three concrete forms.

* `MomentPencil` - the matrices themselves, ``[D, D]`` (precomputed moments).
* `RowPencil` - weighted Grams of rows: ``A = mean_g Rgᵀ diag(wf) Rg``,
  ``B = mean_g Rgᵀ diag(wb) Rg`` for rows ``R [G, n, D]`` (or ``[n, D]``, G = 1).
* `FunctionPencil` - the same Grams from products with an implicit row matrix only
  (``mv: V [m, D] -> [m, n]``, ``rmv: U [m, n] -> [m, D]``), e.g. a Jacobian operator.

B is always the unregularized one: solvers add the ridge ``regularization * trace(B) * I``.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._common import HP


def basis_chunk(i, chunk: int, d: int, dt) -> jax.Array:
    """Rows ``i*chunk .. i*chunk+chunk-1`` of the D x D identity (rows past D are zero).

    Args:
      i: chunk index (may be traced).
      chunk: rows per chunk.
      d: D.
      dt: dtype.

    Returns:
      ``[chunk, D]``.
    """
    rows = i * chunk + jnp.arange(chunk)
    return (rows[:, None] == jnp.arange(d)[None, :]).astype(dt)


@jax.jit
def _row_moments(j2, wf, wb):
    """j2 [rows, D], weights [rows] -> (J2ᵀ diag(wf) J2, J2ᵀ diag(wb) J2)."""
    mf = jnp.matmul(j2.T * wf[None, :], j2, precision=HP)
    mb = jnp.matmul(j2.T * wb[None, :], j2, precision=HP)
    return (mf + mf.T) / 2, (mb + mb.T) / 2


def check_matrices(mf, mb) -> tuple[jax.Array, jax.Array]:
    """``(M_f, M_b)`` as arrays, checked: both ``[D, D]``, float, finite (else ValueError)."""
    mf, mb = jnp.asarray(mf), jnp.asarray(mb)
    for name, m in (("M_f", mf), ("M_b", mb)):
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape != mf.shape:
            raise ValueError(
                f"M_f and M_b must both be [D, D], got {tuple(mf.shape)} and {tuple(mb.shape)}"
            )
        if not jnp.issubdtype(m.dtype, jnp.floating):
            raise ValueError(f"{name} must be a float array, got {m.dtype}")
        if not bool(jnp.all(jnp.isfinite(m))):
            raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return mf, mb


class AbstractPencil(abc.ABC):
    """A symmetric pencil ``(A, B)`` of ``[D, D]`` positive semi-definite matrices.

    Attributes:
      dim: D.
      dtype: the dtype of the products.
    """

    dim: int
    dtype: Any

    @abc.abstractmethod
    def apply(self, v: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(A V, B V)`` for ``V [D, m]``."""

    def apply_b(self, v: jax.Array) -> jax.Array:
        """``B V`` for ``V [D, m]`` (unregularized)."""
        return self.apply(v)[1]

    @abc.abstractmethod
    def as_matrices(self) -> tuple[jax.Array, jax.Array]:
        """``(A, B)`` as ``[D, D]`` arrays."""

    def trace_b(self) -> float:
        """``trace(B)``, exact."""
        return float(jnp.trace(self.as_matrices()[1]))


class MomentPencil(AbstractPencil):
    """``(A, B) = (M_f, M_b)`` given as matrices.

    Args:
      mf: ``[D, D]`` symmetric.
      mb: ``[D, D]`` symmetric, unregularized.

    Raises:
      ValueError: not both ``[D, D]``, not float, or not finite.
    """

    def __init__(self, mf, mb):
        self.mf, self.mb = check_matrices(mf, mb)
        self.dim = int(self.mf.shape[0])
        self.dtype = self.mf.dtype

    def apply(self, v):
        return (jnp.matmul(self.mf, v, precision=HP), jnp.matmul(self.mb, v, precision=HP))

    def as_matrices(self):
        return self.mf, self.mb

    def __repr__(self) -> str:
        return f"MomentPencil(D={self.dim}, dtype={jnp.dtype(self.dtype).name})"


class RowPencil(AbstractPencil):
    """Weighted Grams of rows, averaged over a leading group axis.

    ``A = mean_g Rgᵀ diag(wf) Rg``, ``B = mean_g Rgᵀ diag(wb) Rg``. With indicator weights
    ``mask / n_f`` and ``~mask / n_b`` these are ReSeFa's per-row means ``M_f``, ``M_b``.

    Args:
      rows: ``[n, D]`` or ``[G, n, D]`` (G samples sharing the weights).
      wf: ``[n]`` weights of A (>= 0).
      wb: ``[n]`` weights of B (>= 0).
    """

    def __init__(self, rows, wf, wb):
        rows = jnp.asarray(rows)
        if rows.ndim == 2:
            rows = rows[None]
        if rows.ndim != 3:
            raise ValueError(f"rows must be [n, D] or [G, n, D], got shape {tuple(rows.shape)}")
        self.rows = rows
        self.wf = jnp.asarray(wf, rows.dtype).reshape(-1)
        self.wb = jnp.asarray(wb, rows.dtype).reshape(-1)
        if self.wf.shape[0] != rows.shape[1] or self.wb.shape[0] != rows.shape[1]:
            raise ValueError(
                f"wf and wb must be [n={rows.shape[1]}], got {self.wf.shape} and {self.wb.shape}"
            )
        self.groups = int(rows.shape[0])
        self.dim = int(rows.shape[2])
        self.dtype = rows.dtype

    def flat(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(rows [G n, D], wf [G n], wb [G n])`` with the weights divided by G."""
        g, n, d = self.rows.shape
        return (self.rows.reshape(g * n, d), jnp.tile(self.wf, g) / g, jnp.tile(self.wb, g) / g)

    def apply(self, v):
        rows, wf, wb = self.flat()
        jv = jnp.matmul(rows, v, precision=HP)
        return (
            jnp.matmul(rows.T, jv * wf[:, None], precision=HP),
            jnp.matmul(rows.T, jv * wb[:, None], precision=HP),
        )

    def as_matrices(self):
        if self.groups == 1:
            mf, mb = _row_moments(self.rows[0], self.wf, self.wb)
            return mf, mb
        return self.mean_matrices()

    def mean_matrices(self):
        """``(A, B)`` exactly as ``jax.vmap`` over the groups + ``mean(0)`` (what `Dense` uses)."""
        mfs, mbs = jax.vmap(lambda j: _row_moments(j, self.wf, self.wb))(self.rows)
        return mfs.mean(0), mbs.mean(0)

    def trace_b(self) -> float:
        rows, _, wb = self.flat()
        return float(jnp.sum(jnp.square(rows) * wb[:, None]))

    def __repr__(self) -> str:
        g, n, d = self.rows.shape
        return f"RowPencil(G={g}, n={n}, D={d}, dtype={jnp.dtype(self.dtype).name})"


class FunctionPencil(AbstractPencil):
    """Weighted Grams of an implicit row matrix ``J [n, D]``, from products only.

    ``A = Jᵀ diag(wf) J``, ``B = Jᵀ diag(wb) J``. The products come from
    ``pure(operands) -> (mv, rmv)`` (called inside a trace), with ``mv: V [m, D] -> [m, n]`` and
    ``rmv: U [m, n] -> [m, D]``; ``pure`` must be hashable (a static argument of the jitted
    solvers: equal ``pure`` share one compiled program) and ``operands`` a pytree of arrays.
    ``JacobianOperator.pencil(wf, wb)`` builds one.

    Args:
      pure: ``operands -> (mv, rmv)``.
      operands: pytree of arrays passed to ``pure``.
      wf: ``[n]`` weights of A.
      wb: ``[n]`` weights of B.
      dim: D.
      dtype: dtype of the products.
      chunk: basis vectors per product when a solver needs ``B e_j`` for all j (exact trace).
    """

    def __init__(self, pure: Callable, operands, wf, wb, *, dim: int, dtype, chunk: int = 32):
        self.pure = pure
        self.operands = operands
        self.dtype = jnp.dtype(dtype)
        self.wf = jnp.asarray(wf, self.dtype).reshape(-1)
        self.wb = jnp.asarray(wb, self.dtype).reshape(-1)
        self.dim = int(dim)
        self.chunk = int(chunk)

    def apply(self, v):
        return _function_apply(self.pure, self.operands, self.wf, self.wb, v)

    def as_matrices(self):
        return self.apply(jnp.eye(self.dim, dtype=self.dtype))

    def __repr__(self) -> str:
        return f"FunctionPencil(n={self.wf.shape[0]}, D={self.dim}, dtype={self.dtype.name})"


@functools.partial(jax.jit, static_argnames=("pure",))
def _function_apply(pure, operands, wf, wb, v):
    mv, rmv = pure(operands)
    jv = mv(v.T)
    both = rmv(jnp.concatenate([jv * wf[None], jv * wb[None]]))
    m = v.shape[1]
    return both[:m].T, both[m:].T
