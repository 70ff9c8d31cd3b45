"""`Woodbury`: the top-k of ``(J_fᵀJ_f, J_bᵀJ_b + a I)`` from the rows, never factoring B.

With ``J_b = U S Vᵀ`` (rank r) and ``s² = diag(S)²``, Sherman-Morrison-Woodbury gives

    B⁻¹    = V diag(1 / (s² + a)) Vᵀ + (I - V Vᵀ) / a,
    B^-1/2 = V diag(1 / sqrt(s² + a)) Vᵀ + (I - V Vᵀ) / sqrt(a),

(the ``1/a`` multiplies the projector *and* enters each ``1/(s² + a)``; the ``(I - VVᵀ)`` term
vanishes when r = D, so a = 0 is allowed then). ``form="d"`` solves ``eigh(B^-1/2 A B^-1/2)``
(D x D). ``form="rows"`` uses that the non-zero eigenpairs of ``GᵀG`` with ``G = J_f B^-1/2``
are those of ``G Gᵀ = J_f B⁻¹ J_fᵀ`` (n_f x n_f): for ``J_f B⁻¹ J_fᵀ y = λ y`` the direction
``n = B⁻¹ J_fᵀ y`` satisfies ``A n = J_fᵀ (J_f B⁻¹ J_fᵀ y) = λ J_fᵀ y = λ B n``.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ... import _ops
from .._common import HP, canonical_rows, check_k, check_regularization, sym
from .._pencil import RowPencil
from .._solution import PencilSolution, direct_stats
from .base import AbstractPencilSolver, check_precision


def _wb_apply(v, s2, a, y, power: float, precision):
    """(V diag((s²+a)^-power) Vᵀ + (I - VVᵀ) a^-power) y for y [D, m]; V [D, r]."""
    vy = jnp.matmul(v.T, y, precision=precision)
    low = jnp.matmul(v, vy * ((s2 + a) ** -power)[:, None], precision=precision)
    if v.shape[1] == v.shape[0]:
        return low
    perp = y - jnp.matmul(v, vy, precision=precision)
    return low + perp * jnp.where(a > 0, a, jnp.inf) ** -power


@functools.partial(jax.jit, static_argnames=("k", "rank", "form", "precision"))
def woodbury_eigh(
    jf: jax.Array,
    jb: jax.Array,
    a,
    *,
    k: int,
    rank: int | None = None,
    form: str = "auto",
    precision: _ops.Precision = "highest",
):
    """Top-k of ``(J_fᵀJ_f, J_bᵀJ_b + a I)`` from the rows, via Sherman-Morrison-Woodbury.

    Args:
      jf: [n_f, D] foreground rows (pre-scaled, e.g. by 1/sqrt(n_f)).
      jb: [n_b, D] background rows (pre-scaled, e.g. by 1/sqrt(n_b)).
      a: the ridge ``regularization * trace(M_b)`` (0 allowed only if J_b has rank D).
      k: number of pairs.
      rank: keep the top ``rank`` singular triplets of J_b (None: all, which is exact).
      form: ``"d"`` (D x D), ``"rows"`` (n_f x n_f, needs k <= n_f) or ``"auto"`` (rows if
        k <= n_f < D).
      precision: matmul precision.

    Returns:
      (eigenvalues [k], directions [k, D], condition number of B).
    """
    prec = _ops.as_precision(precision)
    d = jf.shape[1]
    _, s, vt = jnp.linalg.svd(jb, full_matrices=False)
    r = s.shape[0] if rank is None else min(int(rank), s.shape[0])
    v, s2 = vt[:r].T, s[:r] ** 2
    a = jnp.asarray(a, jf.dtype)
    if form == "auto":
        form = "rows" if k <= jf.shape[0] < d else "d"
    if form == "rows" and k > jf.shape[0]:
        raise ValueError(f"form='rows' gives at most n_f = {jf.shape[0]} directions, k = {k}")
    if form == "rows":
        z = _wb_apply(v, s2, a, jf.T, 1.0, prec)  # B⁻¹ J_fᵀ [D, n_f]
        small = sym(jnp.matmul(jf, z, precision=prec))
        lam, y = jnp.linalg.eigh(small)
        lam, y = lam[::-1][:k], y[:, ::-1][:, :k]
        dirs = jnp.matmul(z, y, precision=prec).T
    elif form == "d":
        w_half = _wb_apply(v, s2, a, jnp.eye(d, dtype=jf.dtype), 0.5, prec)  # B^-1/2
        g = jnp.matmul(jf, w_half, precision=prec)
        lam, u = jnp.linalg.eigh(sym(jnp.matmul(g.T, g, precision=prec)))
        lam, u = lam[::-1][:k], u[:, ::-1][:, :k]
        dirs = jnp.matmul(w_half, u, precision=prec).T
    else:
        raise ValueError(f"form must be 'auto', 'd' or 'rows', got {form!r}")
    smin = jnp.where(r < d, 0.0, s2[-1]) + a
    cond = jnp.where(smin > 0, (s2[0] + a) / jnp.where(smin > 0, smin, 1.0), jnp.inf)
    return lam, canonical_rows(dirs), cond


@jax.jit
def rows_residuals(jf, jb, a, lam, dirs):
    """Residuals with ``M_f = jfᵀjf``, ``M_b = jbᵀjb + a I`` from the rows (no D x D matrix)."""
    af = jnp.matmul(jnp.matmul(dirs, jf.T, precision=HP), jf, precision=HP)
    bf = jnp.matmul(jnp.matmul(dirs, jb.T, precision=HP), jb, precision=HP) + a * dirs
    return jnp.linalg.norm(af - lam[..., None] * bf, axis=-1) / jnp.linalg.norm(af, axis=-1)


def _scaled_rows(rows, w):
    """Rows ``[G, n, D]`` with weight ``w [n]`` -> ``[G m, D]`` of the rows with ``w > 0``, each
    scaled by ``sqrt(w / G)`` (so that their Gram is the mean weighted Gram)."""
    g, _, d = rows.shape
    w = np.asarray(w, np.float64)
    idx = np.nonzero(w)[0]
    count = idx.size
    vals = w[idx]
    if count and np.all(vals == vals[0]) and np.float32(vals[0]) == np.float32(1 / count):
        return (rows[:, idx] / math.sqrt(count * g)).reshape(-1, d)  # indicator mean: 1/sqrt(n g)
    scale = jnp.asarray(np.sqrt(vals / g), rows.dtype)
    return (rows[:, idx] * scale[None, :, None]).reshape(-1, d)


@dataclasses.dataclass(frozen=True)
class Woodbury(AbstractPencilSolver):
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
            raise ValueError(
                f"Woodbury(rank=...) must be a positive integer or None, got {self.rank!r}"
            )
        if self.form not in ("auto", "d", "rows"):
            raise ValueError(f"Woodbury(form=...) must be 'auto', 'd' or 'rows', got {self.form!r}")
        check_precision(self.precision)

    def refusal(self, pencil):
        if isinstance(pencil, RowPencil):
            return None
        return (
            f"Woodbury needs the rows of the pencil (a RowPencil), not a "
            f"{type(pencil).__name__}: use Dense() or ReferenceEig() (matrices) or "
            f"MatrixFree() (products)"
        )

    def solve(self, pencil, *, k, regularization=0.0):
        self.check(pencil)
        assert isinstance(pencil, RowPencil)
        d = pencil.dim
        k = check_k(k, d)
        tau = check_regularization(regularization)
        jf = _scaled_rows(pencil.rows, pencil.wf)
        jb = _scaled_rows(pencil.rows, pencil.wb)
        r_full = min(jb.shape[0], d)
        r = r_full if self.rank is None else min(int(self.rank), r_full)
        if tau == 0 and r < d:
            raise ValueError(
                f"Woodbury with rank {r} < D={d} needs regularization > 0 (M_b would be singular)"
            )
        trace = float(jnp.sum(jb * jb)) if tau else None
        a = jnp.asarray(tau * (trace or 0.0), jf.dtype)
        lam, dirs, cond = woodbury_eigh(
            jf, jb, a, k=k, rank=self.rank, form=self.form, precision=self.precision
        )
        res = rows_residuals(jf, jb, a, lam, dirs)
        method = "exact" if r == r_full else f"exact, of the rank-{r} approximation of M_b"
        return PencilSolution(
            np.asarray(lam),
            np.asarray(dirs),
            direct_stats(lam, dirs, res, cond, method, tau, trace),
            self.name,
        )
