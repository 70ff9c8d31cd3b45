"""Generalized Rayleigh quotient solvers: top-k of ``nᵀA n / nᵀB n`` for symmetric A >= 0, B > 0.

Pure, jittable functions on matrices (except :func:`reference_eig`, which is NumPy on purpose).

* :func:`generalized_eigh` - dense: ``B = L Lᵀ``, ``K = L⁻¹ A L⁻ᵀ``, ``eigh(K)``, ``n = L⁻ᵀ u``.
* :func:`woodbury_eigh` - from the rows of ``J_f`` and a (truncated) SVD of ``J_b`` with
  ``A = J_fᵀJ_f``, ``B = J_bᵀJ_b + a I``. With ``J_b = U S Vᵀ`` (rank r) and ``s² = diag(S)²``,
  Sherman-Morrison-Woodbury gives

      B⁻¹    = V diag(1 / (s² + a)) Vᵀ + (I - V Vᵀ) / a,
      B^-1/2 = V diag(1 / sqrt(s² + a)) Vᵀ + (I - V Vᵀ) / sqrt(a),

  (the ``1/a`` multiplies the projector *and* enters each ``1/(s² + a)``; the ``(I - VVᵀ)`` term
  vanishes when r = D, so a = 0 is allowed then). ``form="d"`` solves ``eigh(B^-1/2 A B^-1/2)``
  (D x D). ``form="rows"`` uses that the non-zero eigenpairs of ``GᵀG`` with ``G = J_f B^-1/2``
  are those of ``G Gᵀ = J_f B⁻¹ J_fᵀ`` (n_f x n_f): for ``J_f B⁻¹ J_fᵀ y = λ y`` the direction
  ``n = B⁻¹ J_fᵀ y`` satisfies ``A n = J_fᵀ (J_f B⁻¹ J_fᵀ y) = λ J_fᵀ y = λ B n``.
* :func:`jaxedit._lobpcg.lobpcg_top` - matrix-free top-k from products.
* :func:`reference_eig` - ``np.linalg.eig(inv(B) @ A)``, real parts, as the ReSeFa code.

:func:`condition_number` is exact (eigenvalues), used by the dense path.

Directions are returned as rows ``[k, D]`` of unit L2 norm with a canonical sign (the entry of
largest magnitude positive), eigenvalues descending.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from . import _ops


def canonical_rows(v: jax.Array) -> jax.Array:
    """Rows [k, D] -> unit L2 norm, the largest-magnitude entry of each row positive."""
    v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
    idx = jnp.argmax(jnp.abs(v), axis=-1)
    sign = jnp.sign(jnp.take_along_axis(v, idx[..., None], axis=-1))
    return v * jnp.where(sign == 0, 1.0, sign)


def regularize(b: jax.Array, regularization) -> jax.Array:
    """ReSeFa's full-rank term: ``B + regularization * trace(B) * I``."""
    return b + regularization * jnp.trace(b) * jnp.eye(b.shape[-1], dtype=b.dtype)


def _sym(m):
    return (m + m.T) / 2


@functools.partial(jax.jit, static_argnames=("k", "precision"))
def generalized_eigh(a: jax.Array, b: jax.Array, *, k: int, precision: _ops.Precision = "highest"):
    """Dense top-k of the pencil (A, B) by Cholesky whitening + ``eigh``.

    Args:
      a, b: [D, D] symmetric; B positive definite (regularize first if it is not).
      k: number of pairs.
      precision: accepted for a uniform interface (Cholesky, triangular solves and ``eigh`` have
        no precision setting).
    Returns:
      (eigenvalues [k] descending, directions [k, D] unit-norm canonical, the exact condition
      number of B from its eigenvalues (``inf`` when the smallest is <= 0); the directions are
      NaN when the Cholesky factorization fails).
    """
    _ops.as_precision(precision)     # validated; this path has triangular solves, no matmuls
    a, b = _sym(a), _sym(b)
    l_chol = jnp.linalg.cholesky(b)
    x = solve_triangular(l_chol, a, lower=True)                 # L⁻¹ A
    kmat = _sym(solve_triangular(l_chol, x.T, lower=True))      # L⁻¹ A L⁻ᵀ
    lam, u = jnp.linalg.eigh(kmat)
    lam, u = lam[::-1][:k], u[:, ::-1][:, :k]
    dirs = solve_triangular(l_chol.T, u, lower=False).T         # rows L⁻ᵀ u
    return lam, canonical_rows(dirs), condition_number(b)


def condition_number(b: jax.Array) -> jax.Array:
    """Exact 2-norm condition number of a symmetric [D, D] matrix from its eigenvalues
    (``inf`` unless it is positive definite)."""
    ev = jnp.linalg.eigvalsh(_sym(b))
    return jnp.where(ev[0] > 0, ev[-1] / jnp.where(ev[0] > 0, ev[0], 1.0), jnp.inf)


def reference_eig(a, b, *, k: int | None = None, regularization: float = 0.0):
    """The ReSeFa reference, exactly: ``eig(inv(B) @ A)``, real parts, sorted descending.

    NumPy in the inputs' dtype. ``regularization > 0`` adds the reference's full-rank term as it
    does, ``B + tau * np.trace(B) * np.eye(D)``: ``np.eye`` is float64, so float32 inputs are
    promoted to float64 (the reference's ``--full_rank`` runs in float64). Directions are
    numpy's unit eigenvectors with their imaginary parts dropped (not renormalized, arbitrary
    sign).

    Returns:
      (eigenvalues [k], directions [k, D], largest |imaginary part| among the kept eigenvalues
      relative to the largest |eigenvalue|, the (regularized) B that was inverted).
    """
    a, b = np.asarray(a), np.asarray(b)
    if regularization:
        b = b + regularization * np.trace(b) * np.eye(b.shape[0])
    t = np.linalg.inv(b) @ a
    val, vec = np.linalg.eig(t)
    order = np.argsort(-np.real(val))
    if k is not None:
        order = order[:k]
    imag = float(np.max(np.abs(np.imag(val[order])), initial=0.0)
                 / max(float(np.max(np.abs(val))), np.finfo(float).tiny))
    return np.real(val)[order], np.real(vec).T[order], imag, b


def _wb_apply(v, s2, a, y, power: float, precision):
    """(V diag((s²+a)^-power) Vᵀ + (I - VVᵀ) a^-power) y for y [D, m]; V [D, r]."""
    vy = jnp.matmul(v.T, y, precision=precision)
    low = jnp.matmul(v, vy * ((s2 + a) ** -power)[:, None], precision=precision)
    if v.shape[1] == v.shape[0]:
        return low
    perp = y - jnp.matmul(v, vy, precision=precision)
    return low + perp * jnp.where(a > 0, a, jnp.inf) ** -power


@functools.partial(jax.jit, static_argnames=("k", "rank", "form", "precision"))
def woodbury_eigh(jf: jax.Array, jb: jax.Array, a, *, k: int, rank: int | None = None,
                  form: str = "auto", precision: _ops.Precision = "highest"):
    """Top-k of ``(J_fᵀJ_f, J_bᵀJ_b + a I)`` from the rows, via Sherman-Morrison-Woodbury.

    Args:
      jf: [n_f, D] foreground rows (pre-scaled, e.g. by 1/sqrt(n_f)).
      jb: [n_b, D] background rows (pre-scaled, e.g. by 1/sqrt(n_b)).
      a: the ridge ``regularization * trace(M_b)`` (0 allowed only if J_b has rank D).
      rank: keep the top ``rank`` singular triplets of J_b (None: all, which is exact).
      form: ``"d"`` (D x D), ``"rows"`` (n_f x n_f, needs k <= n_f) or ``"auto"`` (rows if
        k <= n_f < D).
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
        z = _wb_apply(v, s2, a, jf.T, 1.0, prec)                        # B⁻¹ J_fᵀ [D, n_f]
        small = _sym(jnp.matmul(jf, z, precision=prec))
        lam, y = jnp.linalg.eigh(small)
        lam, y = lam[::-1][:k], y[:, ::-1][:, :k]
        dirs = jnp.matmul(z, y, precision=prec).T
    elif form == "d":
        w_half = _wb_apply(v, s2, a, jnp.eye(d, dtype=jf.dtype), 0.5, prec)  # B^-1/2
        g = jnp.matmul(jf, w_half, precision=prec)
        lam, u = jnp.linalg.eigh(_sym(jnp.matmul(g.T, g, precision=prec)))
        lam, u = lam[::-1][:k], u[:, ::-1][:, :k]
        dirs = jnp.matmul(w_half, u, precision=prec).T
    else:
        raise ValueError(f"form must be 'auto', 'd' or 'rows', got {form!r}")
    smin = jnp.where(r < d, 0.0, s2[-1]) + a
    cond = jnp.where(smin > 0, (s2[0] + a) / jnp.where(smin > 0, smin, 1.0), jnp.inf)
    return lam, canonical_rows(dirs), cond


__all__ = ["canonical_rows", "condition_number", "generalized_eigh", "reference_eig", "regularize",
           "woodbury_eigh"]
