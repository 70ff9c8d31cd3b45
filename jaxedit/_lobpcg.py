"""Block LOBPCG for the top eigenpairs of a symmetric-definite pencil ``A x = lambda B x``.

Matrix-free: the caller supplies ``apply(V [D, m]) -> (A V, B V)`` (one call gives both, so a
Jacobian-based pencil shares one forward product). No ``B^{-1}`` is ever applied.

Each iteration does a Rayleigh-Ritz step on ``S = [X, R, X_prev]`` (``span(X, X_prev)`` equals
LOBPCG's ``span(X, P)``), using only stored products, so one iteration costs ``m`` new products
(those of the residual block R). The small pencil ``(SᵀAS, SᵀBS)`` is solved by eigen-whitening
of ``SᵀBS`` with near-null directions dropped, which keeps the step stable when ``X`` and
``X_prev`` become nearly parallel near convergence. Fixed shapes, ``lax.while_loop``: jittable.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class LobpcgResult(NamedTuple):
    eigenvalues: jax.Array  # [m], descending
    vectors: jax.Array      # [D, m], B-orthonormal
    residuals: jax.Array    # [m], ||A x - lambda B x|| / ||A x||
    iterations: jax.Array   # []


def _dot(a, b, precision):
    return jnp.matmul(a, b, precision=precision)


def _rayleigh_ritz(S, AS, BS, m: int, precision):
    dt = S.dtype
    norms = jnp.linalg.norm(S, axis=0)
    scale = jnp.where(norms > 0, 1.0 / jnp.where(norms > 0, norms, 1.0), 0.0)
    S, AS, BS = S * scale, AS * scale, BS * scale
    ga = _dot(S.T, AS, precision)
    gb = _dot(S.T, BS, precision)
    ga, gb = (ga + ga.T) / 2, (gb + gb.T) / 2
    eb, vb = jnp.linalg.eigh(gb)
    keep = eb > eb[-1] * (1e3 * jnp.finfo(dt).eps)
    w = vb * jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, eb, 1.0)), 0.0)
    k = _dot(w.T, _dot(ga, w, precision), precision)
    ek, vk = jnp.linalg.eigh((k + k.T) / 2)
    c = _dot(w, vk[:, ::-1][:, :m], precision)
    return _dot(S, c, precision), _dot(AS, c, precision), _dot(BS, c, precision), ek[::-1][:m]


def nystrom_preconditioner(omega: jax.Array, y: jax.Array, precision=jax.lax.Precision.HIGHEST
                           ) -> Callable:
    """Randomized Nyström preconditioner ``T ≈ B⁻¹`` from a sketch ``Y = B Ω`` (Frangella,
    Tropp & Udell 2023, stabilized with a shift): with ``B ≈ U Λ Uᵀ`` (rank p),
    ``T = U Λ⁻¹ Uᵀ + (I - U Uᵀ) / λ_p``.

    Args:
      omega: [D, p] orthonormal test matrix.
      y: [D, p] ``B @ omega``.
    Returns:
      ``R [D, m] -> T R``.
    """
    nu = jnp.finfo(y.dtype).eps * jnp.linalg.norm(y)
    y = y + nu * omega
    g = _dot(omega.T, y, precision)
    c = jnp.linalg.cholesky((g + g.T) / 2)
    b = jax.scipy.linalg.solve_triangular(c, y.T, lower=True).T      # Y C⁻ᵀ
    u, s, _ = jnp.linalg.svd(b, full_matrices=False)
    lam = jnp.maximum(s ** 2 - nu, jnp.finfo(y.dtype).tiny)
    lam_p = lam[-1]

    def precond(r):
        ur = _dot(u.T, r, precision)
        return _dot(u, ur / lam[:, None], precision) + (r - _dot(u, ur, precision)) / lam_p

    return precond


def hutchpp_trace(apply_b: Callable, sketch: jax.Array, probes: jax.Array,
                  precision=jax.lax.Precision.HIGHEST):
    """Hutch++ (Meyer, Musco, Musco & Woodruff 2021) estimate of ``trace(B)`` for PSD B.

    Args:
      apply_b: ``V [D, p] -> B V``.
      sketch: [D, p] Gaussian; ``Q = orth(B S)`` captures the top of the spectrum exactly.
      probes: [D, g] Rademacher vectors for the remainder ``(I - QQᵀ) B (I - QQᵀ)``.
    Returns:
      (estimate, Q [D, p], B Q [D, p]) - the last two are reusable (e.g. for a Nyström sketch).
    """
    q = jnp.linalg.qr(apply_b(sketch))[0]
    bq = apply_b(q)
    g = probes - _dot(q, _dot(q.T, probes, precision), precision)
    rest = jnp.sum(g * apply_b(g)) / probes.shape[1]
    return jnp.sum(q * bq) + rest, q, bq


def lobpcg_top(apply: Callable, x0: jax.Array, *, k: int, maxiter: int, tol: float,
               precondition: Callable | None = None,
               precision=jax.lax.Precision.HIGHEST) -> LobpcgResult:
    """Top-``m`` eigenpairs (``m = x0.shape[1]``); stops when the top ``k`` residuals are < tol.

    Args:
      apply: ``V [D, m'] -> (A V, B V)``, A symmetric PSD, B symmetric positive definite.
      x0: [D, m] initial block (random is fine); m >= k, 3m <= D recommended.
      precondition: ``R -> T R`` with T ≈ B⁻¹ symmetric positive definite (optional).
    """
    m = x0.shape[1]
    tiny = jnp.finfo(x0.dtype).tiny

    def residual(X, AX, BX, lam):
        R = AX - BX * lam[None, :]
        res = jnp.linalg.norm(R, axis=0) / jnp.maximum(jnp.linalg.norm(AX, axis=0), tiny)
        return R, res

    X = jnp.linalg.qr(x0)[0]
    AX, BX = apply(X)
    X, AX, BX, lam = _rayleigh_ritz(X, AX, BX, m, precision)
    _, res = residual(X, AX, BX, lam)
    zeros = jnp.zeros_like(X)
    init = (jnp.asarray(0), X, AX, BX, lam, zeros, zeros, zeros, res)

    def cond(st):
        return (st[0] < maxiter) & (jnp.max(st[8][:k]) > tol)

    def body(st):
        i, X, AX, BX, lam, Xp, AXp, BXp, _ = st
        R, _ = residual(X, AX, BX, lam)
        if precondition is not None:
            R = precondition(R)
        rn = jnp.linalg.norm(R, axis=0)
        R = R / jnp.where(rn > 0, rn, 1.0)
        AR, BR = apply(R)
        S = jnp.concatenate([X, R, Xp], axis=1)
        AS = jnp.concatenate([AX, AR, AXp], axis=1)
        BS = jnp.concatenate([BX, BR, BXp], axis=1)
        Xn, AXn, BXn, lamn = _rayleigh_ritz(S, AS, BS, m, precision)
        _, res = residual(Xn, AXn, BXn, lamn)
        return (i + 1, Xn, AXn, BXn, lamn, X, AX, BX, res)

    i, X, AX, BX, lam, _, _, _, res = jax.lax.while_loop(cond, body, init)
    return LobpcgResult(lam, X, res, i)
