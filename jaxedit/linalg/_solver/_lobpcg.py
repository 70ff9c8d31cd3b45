"""Block LOBPCG for the top eigenpairs of a symmetric-definite pencil ``A x = λ B x``.

Matrix-free: the caller supplies ``apply(V [D, n]) -> (A V, B V)`` (one call gives both, so a
Jacobian pencil shares one forward product). ``B⁻¹`` is never applied; an optional preconditioner
``T ≈ B⁻¹`` acts on residuals.

The iteration is Knyazev's (2001) LOBPCG with an explicit search direction block ``P`` and the
basis handling of Duersch, Shao, Yang & Gu (2018), "A robust and efficient implementation of
LOBPCG" (SIAM J. Sci. Comput. 40(5)):

* The Rayleigh-Ritz basis is ``[X̂, Z]``: ``X̂`` spans the current Ritz vectors, ``Z`` is the
  block ``[W, P]`` (preconditioned residuals and previous search directions) made Euclidean
  orthonormal *and* orthogonal to ``X̂`` by two rounds of projection + SVQB (Stathopoulos & Wu
  2002). SVQB eigendecomposes the Euclidean Gram of unit columns and drops the directions whose
  Gram eigenvalue is below ``drop * max``: a test of *linear dependence*, independent of B.
  (Dropping by ``xᵀBx``, i.e. by B's spectrum, would discard exactly the small-``xᵀBx``
  directions that carry the largest pencil eigenvalues.)
* The small pencil ``(QᵀAQ, QᵀBQ)`` is solved by eigen-whitening of ``QᵀBQ`` (all of it: Q is
  Euclidean orthonormal, so ``QᵀBQ`` is as well conditioned as B on that subspace). Dropped
  columns are kept as zero columns with a spurious negative eigenvalue (fixed shapes).
* The next search direction is ``P = Z Y_Z``, the part of the new Ritz vectors outside
  ``span(X)``, formed from the basis coefficients, never as a difference ``X_new - X_old``
  (which loses everything to cancellation near convergence).
* Soft locking: a column whose residual is below ``tol`` contributes no new residual or search
  direction but stays in the Rayleigh-Ritz basis.
* Products of every basis block are carried along (``A Q = (A S) C``), so one iteration costs the
  ``n_active`` products of the residual block only; the final residuals are recomputed from
  fresh products so that they are honest about the drift.

By Cauchy interlacing, the eigenvalues of ``QᵀBQ`` for a Euclidean orthonormal Q lie in
``[λ_min(B), λ_max(B)]``: their running extremes give a *lower bound* on ``cond(B)`` on the
subspaces the iteration visited (reported as ``b_ritz_min`` / ``b_ritz_max``).

Fixed shapes, ``lax.while_loop``: jittable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class LobpcgResult(NamedTuple):
    """Output of :func:`lobpcg_top`.

    Attributes:
      eigenvalues: [m], descending.
      vectors: [D, m], B-orthonormal Ritz vectors.
      residuals: [m], ``‖A x − λ B x‖ / ‖A x‖`` from fresh products.
      iterations: [] number of iterations run.
      converged: [] bool: the top ``k`` residuals are below ``tol``.
      b_ritz_min, b_ritz_max: [] extreme eigenvalues of ``QᵀBQ`` over the visited subspaces
        (``λ_min(B) <= b_ritz_min``, ``b_ritz_max <= λ_max(B)``).
    """

    eigenvalues: jax.Array
    vectors: jax.Array
    residuals: jax.Array
    iterations: jax.Array
    converged: jax.Array
    b_ritz_min: jax.Array
    b_ritz_max: jax.Array


def _mm(a, b, precision):
    return jnp.matmul(a, b, precision=precision)


def _sym(m):
    return (m + m.T) / 2


def _unit_columns(v, keep):
    """Columns scaled to unit norm (zero where ``keep`` is False or the column is zero). -> scale [n]."""
    n = jnp.linalg.norm(v, axis=0)
    ok = keep & (n > 0) & jnp.isfinite(n)
    return jnp.where(ok, 1.0 / jnp.where(ok, n, 1.0), 0.0).astype(v.dtype)


def svqb(s, a_s, b_s, keep, drop: float, precision):
    """Euclidean SVQB with a linear-dependence drop tolerance, fixed shapes.

    Args:
      s, a_s, b_s: [D, n] a block and its A / B products.
      keep: [n] bool, columns to use (the others are treated as zero).
      drop: relative threshold on the eigenvalues of the Gram of the unit columns.
    Returns:
      (Q, AQ, BQ, kept [n] bool): ``Q = S C`` Euclidean orthonormal on its kept columns, zero on
      the others; ``AQ``, ``BQ`` the same combinations of the products.
    """
    sc = _unit_columns(s, keep)
    s, a_s, b_s = s * sc, a_s * sc, b_s * sc
    g = _sym(_mm(s.T, s, precision))
    th, u = jnp.linalg.eigh(g)
    kept = th > drop * jnp.maximum(th[-1], jnp.finfo(s.dtype).tiny)
    c = u * jnp.where(kept, jax.lax.rsqrt(jnp.where(kept, th, 1.0)), 0.0)
    return _mm(s, c, precision), _mm(a_s, c, precision), _mm(b_s, c, precision), kept


def _project_out(xh, axh, bxh, z, az, bz, keep, drop: float, precision):
    """Remove the span of the Euclidean orthonormal ``xh`` from z (and the same from its products).

    A column that keeps less than a fraction ``sqrt(drop)`` of its norm is dropped from
    ``keep``: its products, differences of nearly equal vectors, would carry a relative error
    ``eps / sqrt(drop)`` (the same bound as SVQB's).
    """
    coef = _mm(xh.T, z, precision)
    before = jnp.linalg.norm(z, axis=0)
    z = z - _mm(xh, coef, precision)
    after = jnp.linalg.norm(z, axis=0)
    keep = keep & (after * after > drop * before * before)
    return z, az - _mm(axh, coef, precision), bz - _mm(bxh, coef, precision), keep


def _rayleigh_ritz(q, aq, bq, kept, m: int, precision):
    """Top m Ritz pairs of (A, B) on the columns of q (Euclidean orthonormal where ``kept``).

    Returns:
      (Y [n, m] coefficients, λ [m] descending, extreme eigenvalues of QᵀBQ on the kept block).
    """
    ga = _sym(_mm(q.T, aq, precision))
    gb = _sym(_mm(q.T, bq, precision))
    both = kept[:, None] & kept[None, :]
    ga, gb = jnp.where(both, ga, 0.0), jnp.where(both, gb, 0.0)
    d_b, d_a = jnp.diagonal(gb), jnp.diagonal(ga)
    c = jnp.max(jnp.where(kept, d_b, -jnp.inf))  # within [min, max] of the kept block
    rq = jnp.where(kept, d_a / jnp.where(kept & (d_b > 0), d_b, 1.0), -jnp.inf)
    # below every genuine eigenvalue (>= 0), on the scale of the largest (<= max rq <= λ_max)
    spurious = -2.0 * jnp.maximum(jnp.abs(jnp.max(rq)), jnp.finfo(q.dtype).tiny)
    eye = jnp.eye(q.shape[1], dtype=q.dtype)
    gb = gb + jnp.where(kept, 0.0, c)[:, None] * eye
    ga = ga + jnp.where(kept, 0.0, spurious * c)[:, None] * eye
    eb, vb = jnp.linalg.eigh(gb)
    b_lo, b_hi = eb[0], eb[-1]
    floor = jnp.finfo(q.dtype).eps * eb[-1]
    wb = vb * jax.lax.rsqrt(jnp.maximum(eb, floor))
    k = _sym(_mm(wb.T, _mm(ga, wb, precision), precision))
    lam, u = jnp.linalg.eigh(k)
    y = _mm(wb, u[:, ::-1][:, :m], precision)
    return y, lam[::-1][:m], b_lo, b_hi


def _residuals(ax, bx, lam):
    r = ax - bx * lam[None, :]
    den = jnp.linalg.norm(ax, axis=0)
    tiny = jnp.finfo(ax.dtype).tiny
    return r, jnp.linalg.norm(r, axis=0) / jnp.maximum(den, tiny)


def lobpcg_top(
    apply: Callable,
    x0: jax.Array,
    *,
    k: int,
    maxiter,
    tol,
    precondition: Callable | None = None,
    drop: float | None = None,
    precision: jax.lax.Precision | None = jax.lax.Precision.HIGHEST,
) -> LobpcgResult:
    """Top ``m = x0.shape[1]`` eigenpairs of ``A x = λ B x``; stops when the top ``k`` residuals
    ``‖A x − λ B x‖ / ‖A x‖`` are all at most ``tol`` (or after ``maxiter`` iterations).

    The products carried through the iteration drift from the true ``A x``, ``B x`` by rounding;
    when the carried residuals pass the test (and at ``maxiter``) the products of X are
    recomputed and the test is repeated on those, so the reported residuals and ``converged``
    are those of fresh products. Every pass of the loop costs one ``apply`` of m columns.

    Args:
      apply: ``V [D, n] -> (A V, B V)``; A symmetric positive semi-definite, B symmetric
        positive definite.
      x0: [D, m] initial block (random is fine); ``k <= m`` and ``3 m <= D``.
      k: number of wanted pairs (the other ``m - k`` columns are guard vectors).
      maxiter: iteration limit (may be traced).
      tol: residual tolerance (may be traced).
      precondition: ``R [D, n] -> T R`` with ``T ≈ B⁻¹`` symmetric positive definite (optional).
      drop: linear-dependence tolerance: a direction whose squared norm outside the others is
        below ``drop`` (relative) is dropped (default ``eps^(1/3)``: 6e-6 in float64, 5e-3 in
        float32). Basis updates amplify the rounding of the carried products by at most
        ``drop^(-1/2)``; smaller tolerances let that inconsistency feed back through P and
        the iteration diverges once the residuals reach the rounding floor.
      precision: matmul precision of every Gram and basis update.
    Returns:
      :class:`LobpcgResult`.
    """
    dt = x0.dtype
    d, m = x0.shape
    drop_tol = float(jnp.finfo(dt).eps) ** (1 / 3) if drop is None else float(drop)
    ones = jnp.ones((m,), bool)
    x = jnp.linalg.qr(x0)[0]
    zeros = jnp.zeros_like(x)
    inf = jnp.asarray(jnp.inf, dt)
    # state: i, X, AX, BX, λ, res, P, AP, BP, P valid, B-Ritz min / max, products fresh,
    #        best X so far (by its carried top-k residual) and that residual
    init = (
        jnp.asarray(0, jnp.int32),
        x,
        zeros,
        zeros,
        jnp.zeros((m,), dt),
        jnp.full((m,), inf),
        zeros,
        zeros,
        zeros,
        jnp.zeros((m,), bool),
        inf,
        -inf,
        jnp.asarray(False),
        x,
        inf,
    )

    def done(st):
        return jnp.all(st[5][:k] <= tol) | (st[0] >= maxiter)

    def cond(st):
        return ~(st[12] & done(st))

    def body(st):
        i, x, ax, bx, lam, res, p, ap, bp, p_ok, b_lo, b_hi, fresh, x_best, best = st
        refresh = ~fresh & (done(st) | (i == 0))
        # at the iteration limit without convergence, finish on the best iterate seen
        x = jnp.where(refresh & (i >= maxiter) & (jnp.max(res[:k]) > best), x_best, x)
        active = res > tol
        r = ax - bx * lam[None, :]
        w = precondition(r) if precondition is not None else r
        w = w * _unit_columns(w, active)
        av, bv = apply(jnp.where(refresh, x, w))

        def refreshed(_):
            lam_f = jnp.sum(x * av, axis=0) / jnp.sum(x * bv, axis=0)
            _, res_f = _residuals(av, bv, lam_f)
            return (
                i,
                x,
                av,
                bv,
                lam_f,
                res_f,
                p,
                ap,
                bp,
                p_ok,
                b_lo,
                b_hi,
                jnp.asarray(True),
                x_best,
                best,
            )

        def iterate(_):
            xh, axh, bxh, _ = svqb(x, ax, bx, ones, drop_tol, precision)
            z = jnp.concatenate([w, p], axis=1)
            az = jnp.concatenate([av, ap], axis=1)
            bz = jnp.concatenate([bv, bp], axis=1)
            zk = jnp.concatenate([active, p_ok & active])
            for _ in range(2):
                z, az, bz, zk = _project_out(xh, axh, bxh, z, az, bz, zk, drop_tol, precision)
                z, az, bz, zk = svqb(z, az, bz, zk, drop_tol, precision)
            q = jnp.concatenate([xh, z], axis=1)
            aq = jnp.concatenate([axh, az], axis=1)
            bq = jnp.concatenate([bxh, bz], axis=1)
            y, lam_n, lo, hi = _rayleigh_ritz(q, aq, bq, jnp.concatenate([ones, zk]), m, precision)
            x_n, ax_n, bx_n = _mm(q, y, precision), _mm(aq, y, precision), _mm(bq, y, precision)
            yz = y[m:]
            p_n, ap_n, bp_n = _mm(z, yz, precision), _mm(az, yz, precision), _mm(bz, yz, precision)
            ps = _unit_columns(p_n, ones)
            _, res_n = _residuals(ax_n, bx_n, lam_n)
            score = jnp.max(res_n[:k])
            better = score < best
            return (
                i + 1,
                x_n,
                ax_n,
                bx_n,
                lam_n,
                res_n,
                p_n * ps,
                ap_n * ps,
                bp_n * ps,
                ps > 0,
                jnp.minimum(b_lo, lo),
                jnp.maximum(b_hi, hi),
                jnp.asarray(False),
                jnp.where(better, x_n, x_best),
                jnp.where(better, score, best),
            )

        return jax.lax.cond(refresh, refreshed, iterate, None)

    i, x, _, _, lam, res, _, _, _, _, b_lo, b_hi, _, _, _ = jax.lax.while_loop(cond, body, init)
    order = jnp.argsort(-lam)  # Rayleigh quotients of fresh products: re-sort
    lam, x, res = lam[order], x[:, order], res[order]
    return LobpcgResult(lam, x, res, i, jnp.all(res[:k] <= tol), b_lo, b_hi)


# ------------------------------------------------------------------------------------------------
# Preconditioner and trace estimation
# ------------------------------------------------------------------------------------------------
def nystrom_preconditioner(
    q: jax.Array,
    bq: jax.Array,
    shift=0.0,
    precision: jax.lax.Precision | None = jax.lax.Precision.HIGHEST,
) -> Callable:
    """Randomized Nyström preconditioner ``T ≈ (B + shift I)⁻¹`` (Frangella, Tropp & Udell 2023).

    From ``Y = B Q`` on an orthonormal ``Q [D, p]``: the stabilized Nyström approximation
    ``B ≈ U Λ Uᵀ`` (rank p, eigenvalues ``Λ`` descending) and

        T = U (Λ + μ)⁻¹ Uᵀ + (I − U Uᵀ) / (λ_p + μ),     μ = shift,

    i.e. exact inverse on the captured top of the spectrum and the smallest captured eigenvalue
    for the rest. ``T`` is symmetric positive definite whatever B's conditioning: nothing is
    inverted below ``λ_p + μ``.

    Args:
      q: [D, p] orthonormal test matrix.
      bq: [D, p] ``B @ q`` (without the shift).
      shift: μ >= 0, e.g. a ridge already added to B.
    Returns:
      ``R [D, n] -> T R``.
    """
    dt = bq.dtype
    nu = jnp.sqrt(float(q.shape[0])) * jnp.finfo(dt).eps * jnp.linalg.norm(bq)  # stabilizing shift
    y = bq + nu * q
    g = _sym(_mm(q.T, y, precision))
    c = jnp.linalg.cholesky(g)
    ok = jnp.all(jnp.isfinite(c))
    c = jnp.where(ok, c, jnp.eye(c.shape[0], dtype=dt))
    b = jax.scipy.linalg.solve_triangular(c, y.T, lower=True).T  # Y C⁻ᵀ
    u, s, _ = jnp.linalg.svd(b, full_matrices=False)
    lam = jnp.maximum(s**2 - nu, 0.0) + shift
    lam = jnp.maximum(lam, jnp.finfo(dt).tiny)
    lam_p = lam[-1]

    def precond(r):
        ur = _mm(u.T, r, precision)
        t = _mm(u, ur / lam[:, None], precision) + (r - _mm(u, ur, precision)) / lam_p
        return jnp.where(ok, t, r)  # no preconditioner if the sketch broke down

    return precond


def hutchpp_trace(
    apply_b: Callable,
    sketch: jax.Array,
    probes: jax.Array,
    quad: Callable | None = None,
    precision: jax.lax.Precision | None = jax.lax.Precision.HIGHEST,
):
    """Hutch++ (Meyer, Musco, Musco & Woodruff 2021) estimate of ``trace(B)`` for PSD B.

    ``trace(B) = trace(QᵀBQ) + trace((I − QQᵀ) B (I − QQᵀ))``: the first term is exact for
    ``Q = orth(B S)``, the second is Hutchinson's estimate with ``g`` Rademacher probes projected
    off Q.

    Args:
      apply_b: ``V [D, n] -> B V``.
      sketch: [D, p] Gaussian.
      probes: [D, g] Rademacher vectors.
      quad: optional ``V [D, n] -> diag(VᵀBV) [n]`` (cheaper than ``apply_b`` when B = JᵀWJ:
        forward products only).
    Returns:
      (estimate, its standard error (the sample standard deviation of the g Hutchinson terms
      / sqrt(g); the Q part is exact), Q [D, p], B Q [D, p]).
    """
    q = jnp.linalg.qr(apply_b(sketch))[0]
    bq = apply_b(q)
    g = probes - _mm(q, _mm(q.T, probes, precision), precision)
    vals = quad(g) if quad is not None else jnp.sum(g * apply_b(g), axis=0)  # [g]
    n = vals.shape[0]
    stderr = jnp.std(vals, ddof=1) / jnp.sqrt(n)
    return jnp.sum(q * bq) + jnp.mean(vals), stderr, q, bq
