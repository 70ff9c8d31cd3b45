"""ReSeFa solvers against independent references: SciPy's eigh(A, B) on dense matrices built in
NumPy, NumPy's inv + eig (the reference), the dense float64 solution for float32 runs, and the
exact trace for Hutch++."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sl

import jaxedit
from jaxedit import linalg
from jaxedit.errors import (
    ComplexEigenpairsWarning,
    ConvergenceWarning,
    SingularBackgroundWarning,
)
from jaxedit.methods.resefa import jacobian_moments


def _problem(d=24, n_f=10, n_b=400, seed=0, decay=3.0):
    rng = np.random.default_rng(seed)
    jf = rng.standard_normal((n_f, d))
    jb = rng.standard_normal((n_b, d)) * np.exp(-np.linspace(0, decay, d))
    return jf, jb


def _scipy_top(a, b, k):
    w, v = sl.eigh(np.asarray(a, np.float64), np.asarray(b, np.float64))
    v = v[:, ::-1][:, :k]
    return w[::-1][:k], (v / np.linalg.norm(v, axis=0)).T


def _abs_cos(x, y):
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    return np.abs(np.sum(x * y, axis=-1))


def _jacobian_like(seed=0, h=12, w=12, c=1, d=24, decay=2.0, rotate=False):
    """Random rows with graded columns (``exp(-decay * t)``); ``rotate`` mixes the columns by a
    random orthogonal matrix (an ill-conditioning that is not a diagonal scaling)."""
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((h, w, c, d)) * np.exp(-np.linspace(0, decay, d))
    if rotate:
        q = np.linalg.qr(np.random.default_rng(seed + 100).standard_normal((d, d)))[0]
        J = J @ q.T
    return J


def _moments_np(J, box):
    """(M_f, M_b) in float64 NumPy, the reference's per-row means."""
    h, w, c, d = J.shape
    rows = np.asarray(J, np.float64).reshape(-1, d)
    rm = np.repeat(jaxedit.region_mask(box, (h, w)).reshape(-1), c)
    return rows[rm].T @ rows[rm] / rm.sum(), rows[~rm].T @ rows[~rm] / (~rm).sum()


# The issue's synthetic pencils: 24x24 grid, D = 96, k = 4, no regularization;
# decay 2 / 4 / 5 gives cond(M_b) = 1.0e2 / 4.6e3 / 3.3e4.
PENCIL_BOX = (6, 6, 14, 16)
PENCILS = [(2.0, 1.0e2), (4.0, 4.6e3), (5.0, 3.3e4)]


def _pencil(decay, rotate=False):
    return _jacobian_like(h=24, w=24, d=96, decay=decay, rotate=rotate)


def test_synthetic_pencils_have_the_stated_conditioning():
    for decay, cond in PENCILS:
        _, b = _moments_np(_pencil(decay), PENCIL_BOX)
        assert np.linalg.cond(b) == pytest.approx(cond, rel=0.02)


# ---- dense solvers -------------------------------------------------------------------------
@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_dense_matches_scipy(seed, jit):
    jf, jb = _problem(seed=seed, decay=8.0)
    a, b = jf.T @ jf / len(jf), jb.T @ jb / len(jb)
    assert np.linalg.cond(b) > 1e6  # not an easy matrix
    w, v = _scipy_top(a, b, 5)
    if jit:
        lam, dirs, cond = linalg.generalized_eigh(a, b, k=5)
    else:
        with jax.disable_jit():
            lam, dirs, cond = linalg.generalized_eigh(a, b, k=5)
    np.testing.assert_allclose(lam, w, rtol=1e-9)
    np.testing.assert_allclose(_abs_cos(dirs, v), 1, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1, atol=1e-12)
    assert np.all(np.abs(dirs).max(1) == dirs.max(1))  # canonical sign
    # exact condition number (eigenvalues), not an estimate
    assert float(cond) == pytest.approx(np.linalg.cond(b), rel=1e-6)


def test_condition_number_of_an_indefinite_matrix_is_inf():
    assert float(linalg.condition_number(np.diag([1.0, 2.0, -1e-9]))) == np.inf
    assert float(linalg.condition_number(np.diag([1.0, 4.0]))) == pytest.approx(4.0, rel=1e-14)


def test_rank_deficient_background_with_regularization():
    jf, jb = _problem(d=30, n_b=12)  # rank(M_b) = 12 < 30
    a, b = jf.T @ jf / 10, jb.T @ jb / 12
    tau = 1e-3
    breg = b + tau * np.trace(b) * np.eye(30)
    w, v = _scipy_top(a, breg, 4)
    lam, dirs, _ = linalg.generalized_eigh(a, linalg.regularize(b, tau), k=4)
    np.testing.assert_allclose(lam, w, rtol=1e-9)
    np.testing.assert_allclose(_abs_cos(dirs, v), 1, atol=1e-9)
    for form in ("d", "rows"):
        lw, dw, cw = linalg.woodbury_eigh(
            jf / np.sqrt(10), jb / np.sqrt(12), tau * np.trace(b), k=4, form=form
        )
        np.testing.assert_allclose(lw, w, rtol=1e-9)
        np.testing.assert_allclose(_abs_cos(dw, v), 1, atol=1e-9)
        assert cw == pytest.approx(np.linalg.cond(breg), rel=1e-6)


@pytest.mark.parametrize("form", ["d", "rows"])
def test_woodbury_equals_dense_full_rank(form):
    jf, jb = _problem(d=20, n_f=8, n_b=300, seed=3)
    w, v = _scipy_top(jf.T @ jf, jb.T @ jb, 6)
    lw, dw, _ = linalg.woodbury_eigh(jf, jb, 0.0, k=6, form=form)
    np.testing.assert_allclose(lw, w, rtol=1e-9)
    np.testing.assert_allclose(_abs_cos(dw, v), 1, atol=1e-9)


def test_woodbury_truncation_solves_the_truncated_pencil():
    """A rank-r Woodbury is exact for ``B_r = V_r S_r² V_rᵀ + a I`` (built here with NumPy)."""
    jf, jb = _problem(d=20, n_f=8, n_b=300, seed=3, decay=6.0)
    tau, r = 1e-2, 12
    a = tau * np.trace(jb.T @ jb)
    _, s, vt = np.linalg.svd(jb, full_matrices=False)
    b_r = vt[:r].T @ np.diag(s[:r] ** 2) @ vt[:r] + a * np.eye(20)
    w, v = _scipy_top(jf.T @ jf, b_r, 3)
    for form in ("d", "rows"):
        lt, dt, cond = linalg.woodbury_eigh(jf, jb, a, k=3, rank=r, form=form)
        np.testing.assert_allclose(lt, w, rtol=1e-9)
        np.testing.assert_allclose(_abs_cos(dt, v), 1, atol=1e-9)
        assert cond == pytest.approx(np.linalg.cond(b_r), rel=1e-8)


def test_reference_eig_is_numpy_inv_eig():
    jf, jb = _problem(seed=4)
    a, b = jf.T @ jf / 10, jb.T @ jb / 400
    lam, dirs, imag, _ = linalg.reference_eig(a, b, k=5)
    val, vec = np.linalg.eig(np.linalg.inv(b) @ a)
    order = np.argsort(-val.real)[:5]
    np.testing.assert_array_equal(lam, val.real[order])
    np.testing.assert_array_equal(dirs, vec.real.T[order])
    assert imag < 1e-8
    w, v = _scipy_top(a, b, 5)
    np.testing.assert_allclose(lam, w, rtol=1e-8)
    np.testing.assert_allclose(_abs_cos(dirs, v), 1, atol=1e-8)


def test_reference_promotes_to_float64_with_regularization_as_the_original():
    """compute_direction.py: ``M_b += tao * np.trace(M_b) * np.eye(D)`` (float64 eye)."""
    J = _jacobian_like(seed=3).astype(np.float32)
    box = (2, 2, 6, 8)
    off = jaxedit.resefa(J, box, k=3, solver="reference")
    assert off.directions.dtype == np.float32  # no full_rank: stays float32
    on = jaxedit.resefa(J, box, k=3, solver=jaxedit.ReferenceEig(), regularization=1e-3)
    assert on.directions.dtype == np.float64
    mf, mb = (np.asarray(m) for m in jacobian_moments(J, box))  # float32, as the original's
    assert mf.dtype == np.float32
    mb = mb + 1e-3 * np.trace(mb) * np.eye(24)  # written out: float64
    val, vec = np.linalg.eig(np.linalg.inv(mb) @ mf)
    order = np.argsort(-val.real)[:3]
    # (the float32 moments themselves may round differently from ours: float32 tolerances)
    np.testing.assert_allclose(on.eigenvalues, val.real[order], rtol=1e-5)
    np.testing.assert_allclose(_abs_cos(on.directions, vec.real.T[order]), 1, atol=1e-6)
    assert on.stats.trace_method == "exact" and on.stats.condition_method == "exact"


# ---- resefa on arrays: every solver, every diagnostic ---------------------------------------
@pytest.mark.parametrize("solver", ["dense", "woodbury", "reference", "matrix_free"])
def test_resefa_solvers_agree(solver):
    J = _jacobian_like(c=3)
    box = (3, 2, 7, 9)
    a, b = _moments_np(J, box)
    w, v = _scipy_top(a, b, 4)
    res = jaxedit.resefa(J, box, k=4, solver=solver)
    assert res.solver == solver and res.directions.shape == (4, 24)
    assert res.n_foreground == 28 * 3 and res.n_background == (144 - 28) * 3
    tol = 1e-6 if solver == "matrix_free" else 1e-9
    np.testing.assert_allclose(res.eigenvalues, w, rtol=tol)
    np.testing.assert_allclose(_abs_cos(res.directions, v), 1, atol=tol)
    st = res.stats
    assert st.converged is True and st.max_residual == pytest.approx(np.max(st.residuals))
    # residuals, recomputed here from the dense matrices
    d = np.asarray(res.directions, np.float64)
    want = np.linalg.norm(d @ a - res.eigenvalues[:, None] * (d @ b), axis=1) / np.linalg.norm(
        d @ a, axis=1
    )
    np.testing.assert_allclose(st.residuals, want, rtol=1e-3, atol=1e-14)
    if solver == "matrix_free":
        assert st.condition_method == "lower bound" and st.tol == 1e-6
        assert 0 < st.iterations < 500 and np.all(st.residuals <= 1e-6)
        assert 1 < st.condition_number <= np.linalg.cond(b) * (1 + 1e-9)
    else:
        assert st.condition_method == "exact" and st.iterations == 0 and st.tol is None
        assert st.condition_number == pytest.approx(np.linalg.cond(b), rel=1e-6)
    assert st.trace is None and st.trace_method is None  # no regularization, no trace


@pytest.mark.parametrize(
    "solver", [jaxedit.Dense(), jaxedit.Woodbury(rank=10), jaxedit.MatrixFree(tol=1e-8, key=3)]
)
def test_regularized_solvers_against_scipy(solver):
    J = _jacobian_like(seed=5, h=16, w=16, d=60)
    box = (4, 4, 10, 12)
    a, b = _moments_np(J, box)
    tau = 1e-3
    breg = b + tau * np.trace(b) * np.eye(60)
    if isinstance(solver, jaxedit.Woodbury):  # rank 10: the pencil it solves exactly
        rows = J.reshape(-1, 60)[~np.repeat(jaxedit.region_mask(box, 16).reshape(-1), 1)]
        _, s, vt = np.linalg.svd(rows / np.sqrt(len(rows)), full_matrices=False)
        breg = vt[:10].T @ np.diag(s[:10] ** 2) @ vt[:10] + tau * np.trace(b) * np.eye(60)
    w, v = _scipy_top(a, breg, 5)
    res = jaxedit.resefa(J, box, k=5, regularization=tau, solver=solver)
    np.testing.assert_allclose(res.eigenvalues, w, rtol=1e-8)
    np.testing.assert_allclose(_abs_cos(res.directions, v), 1, atol=1e-8)
    assert res.stats.trace == pytest.approx(np.trace(b), rel=1e-12)
    assert res.stats.trace_method == "exact" and res.stats.trace_stderr == 0.0


def test_batch_and_aggregate():
    J = np.stack([_jacobian_like(seed=s) for s in range(3)])
    per = jaxedit.resefa(J, (2, 2, 6, 6), k=3)
    assert per.directions.shape == (3, 3, 24) and per.eigenvalues.shape == (3, 3)
    assert per.stats.condition_number.shape == (3,) and per.stats.residuals.shape == (3, 3)
    for i in range(3):
        w, v = _scipy_top(*_moments_np(J[i], (2, 2, 6, 6)), 3)
        np.testing.assert_allclose(_abs_cos(per.directions[i], v), 1, atol=1e-9)
    agg = jaxedit.resefa(J, (2, 2, 6, 6), k=3, aggregate="mean")
    mf, mb = zip(*(_moments_np(j, (2, 2, 6, 6)) for j in J))
    w, v = _scipy_top(np.mean(mf, 0), np.mean(mb, 0), 3)
    np.testing.assert_allclose(agg.eigenvalues, w, rtol=1e-9)
    np.testing.assert_allclose(_abs_cos(agg.directions, v), 1, atol=1e-9)
    for solver in ("woodbury", "matrix_free"):
        r = jaxedit.resefa(J, (2, 2, 6, 6), k=3, aggregate="mean", solver=solver)
        np.testing.assert_allclose(r.eigenvalues, w, rtol=1e-6)


def test_solve_moments_route():
    """The (M_f, M_b) route (for precomputed moments) against SciPy, with each solver it takes."""
    jf, jb = _problem(d=30, seed=7)
    a, b = jf.T @ jf / 10, jb.T @ jb / 400
    w, v = _scipy_top(a, b + 1e-3 * np.trace(b) * np.eye(30), 3)
    for solver in ("dense", "reference", jaxedit.MatrixFree(tol=1e-9)):
        sol = linalg.pencil_eigh(linalg.MomentPencil(a, b), 3, regularization=1e-3, solver=solver)
        np.testing.assert_allclose(sol.eigenvalues, w, rtol=1e-7)
        np.testing.assert_allclose(_abs_cos(sol.directions, v), 1, atol=1e-7)
    with pytest.raises(ValueError, match=r"Woodbury cannot solve a MomentPencil.*use Dense"):
        linalg.pencil_eigh(linalg.MomentPencil(a, b), 3, solver="woodbury")


# ---- the matrix-free solver on the issue's pencils ------------------------------------------
@pytest.mark.parametrize("decay,cond", PENCILS)
def test_matrix_free_float64_converges_on_ill_conditioned_pencils(decay, cond):
    J = _pencil(decay)
    w, v = _scipy_top(*_moments_np(J, PENCIL_BOX), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = jaxedit.resefa(J, PENCIL_BOX, k=4, solver="matrix_free")
    assert res.stats.converged and res.stats.max_residual <= 1e-6
    np.testing.assert_allclose(_abs_cos(res.directions, v), 1, atol=1e-8)
    np.testing.assert_allclose(res.eigenvalues, w, rtol=1e-9)
    assert cond / 30 < res.stats.condition_number <= cond * 1.02  # a lower bound, not vacuous


def _match_or_warn(J, box, k, **kw):
    """min |cos| against the float64 SciPy solution and the warnings issued."""
    _, v = _scipy_top(*_moments_np(J, box), k)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = jaxedit.resefa(J, box, k=k, **kw)
    kinds = {type(r.message) for r in rec} & {ConvergenceWarning, SingularBackgroundWarning}
    return float(np.min(_abs_cos(res.directions, v))), kinds, res


@pytest.mark.float32
@pytest.mark.parametrize("decay,cond", PENCILS)
@pytest.mark.parametrize("rotate", [False, True])
def test_matrix_free_float32_matches_float64_on_the_issue_pencils(decay, cond, rotate):
    """The users' default dtype, no regularization: |cos| >= 0.99 up to cond ~ 5e3 (here the
    solver also matches at 3.3e4)."""
    J = _pencil(decay, rotate).astype(np.float32)
    cos, kinds, res = _match_or_warn(J, PENCIL_BOX, 4, solver="matrix_free")
    assert res.directions.dtype == np.float32 and res.stats.tol == 1e-3
    if cond < 5e3:
        assert cos >= 0.99 and not kinds and res.stats.converged
    else:
        assert cos >= 0.99 or kinds


@pytest.mark.float32
@pytest.mark.parametrize("decay", [6.0, 7.0, 9.0])
def test_matrix_free_float32_beyond_5e3_matches_or_warns(decay):
    """cond(M_b) 2.4e5 / 1.7e6 / 9e7 with mixed (rotated) columns: a float32 result either agrees
    with the float64 solution or comes with a warning."""
    J = _pencil(decay, rotate=True).astype(np.float32)
    cos, kinds, res = _match_or_warn(J, PENCIL_BOX, 4, solver=jaxedit.MatrixFree(maxiter=300))
    assert cos >= 0.99 or kinds, (cos, res.stats)


@pytest.mark.float32
def test_float32_defaults_dense_and_matrix_free():
    """Public defaults with x64 off: dtype float32 in and out, against a float64 NumPy solution."""
    J = _jacobian_like(c=3).astype(np.float32)
    box = (3, 2, 7, 9)
    w, v = _scipy_top(*_moments_np(J, box), 4)
    for solver in ("auto", "matrix_free", "woodbury"):
        res = jaxedit.resefa(J, box, k=4, solver=solver)
        assert res.directions.dtype == np.float32
        np.testing.assert_allclose(_abs_cos(res.directions, v), 1, atol=1e-4)
        np.testing.assert_allclose(res.eigenvalues, w, rtol=1e-3)
        assert res.stats.converged
    ref = jaxedit.resefa(J, box, k=4, solver="reference")
    np.testing.assert_allclose(_abs_cos(ref.directions, v), 1, atol=1e-4)


def _check_non_convergence(dtype):
    J = _pencil(4.0).astype(dtype)
    with pytest.warns(ConvergenceWarning, match=r"maxiter.*regularization") as rec:
        res = jaxedit.resefa(J, PENCIL_BOX, k=4, solver=jaxedit.MatrixFree(maxiter=3))
    assert ("float64" in str(rec[0].message)) == (dtype == np.float32)
    assert res.stats.converged is False and res.stats.iterations == 3
    assert res.stats.max_residual > res.stats.tol
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jaxedit.resefa(J, PENCIL_BOX, k=4, solver=jaxedit.MatrixFree(maxiter=3), warn=False)


def test_non_convergence_warns_and_says_what_to_do():
    _check_non_convergence(np.float64)


@pytest.mark.float32
def test_non_convergence_warns_in_float32():
    _check_non_convergence(np.float32)


def test_lobpcg_explicit_matrices_and_soft_locking():
    """LOBPCG on a pencil with a known spectrum: A = diag, B = I; eigenvalues exact, the block
    keeps working when the top pairs lock at different times."""
    d = 60
    lam = np.linspace(10.0, 1.0, d) ** 2
    a, b = jnp.asarray(np.diag(lam)), jnp.eye(d)

    def apply(v):
        return a @ v, b @ v

    x0 = jax.random.normal(jax.random.key(0), (d, 8), a.dtype)
    r = jax.jit(lambda x: linalg.lobpcg_top(apply, x, k=5, maxiter=500, tol=1e-7))(x0)
    assert bool(r.converged) and int(r.iterations) < 500
    np.testing.assert_allclose(r.eigenvalues[:5], lam[:5], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(r.vectors.T @ r.vectors)[:5, :5], np.eye(5), atol=1e-9)
    assert float(r.b_ritz_min) == pytest.approx(1.0) and float(r.b_ritz_max) == pytest.approx(1.0)
    # jitted and eager agree (a few iterations: the eager loop runs op by op)
    r5 = jax.jit(lambda x: linalg.lobpcg_top(apply, x, k=5, maxiter=4, tol=1e-7))(x0)
    with jax.disable_jit():
        e5 = linalg.lobpcg_top(apply, x0, k=5, maxiter=4, tol=1e-7)
    assert int(e5.iterations) == int(r5.iterations) == 4
    np.testing.assert_allclose(e5.eigenvalues, r5.eigenvalues, rtol=1e-10)
    np.testing.assert_allclose(e5.residuals, r5.residuals, rtol=1e-6)


def test_singular_background_warns_and_raises():
    J = _jacobian_like(h=6, w=6, d=40)  # 36 rows < D = 40: M_b is singular
    with pytest.warns(SingularBackgroundWarning, match="regularization"):
        with pytest.raises(np.linalg.LinAlgError, match="singular"):
            jaxedit.resefa(J, (0, 0, 2, 2), k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = jaxedit.resefa(J, (0, 0, 2, 2), k=3, regularization=1e-3)
    assert not ok.singular and np.isfinite(ok.condition_number)
    # the condition number is bounded by the ridge: cond <= (1 + tau) / tau
    assert ok.condition_number <= (1 + 1e-3) / 1e-3
    with pytest.raises(ValueError, match="regularization"):
        jaxedit.resefa(J, (0, 0, 2, 2), k=3, solver="woodbury")


def test_matrix_free_on_a_singular_background_warns():
    J = _jacobian_like(h=6, w=6, d=60, seed=2)  # 32 background rows < D = 60
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = jaxedit.resefa(J, (0, 0, 2, 2), k=3, solver="matrix_free")
    kinds = {type(r.message) for r in rec}
    assert SingularBackgroundWarning in kinds and res.singular
    assert res.stats.condition_number > 1e-2 / np.finfo(np.float64).eps


def test_reference_complex_eigenpairs_warn():
    """inv(M_b) @ M_f with a singular M_b: the reference keeps real parts of complex pairs."""
    J = _jacobian_like(h=6, w=6, d=40)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = jaxedit.resefa(J, (0, 0, 2, 2), k=3, solver="reference")
    kinds = {type(r.message) for r in rec}
    assert kinds == {SingularBackgroundWarning, ComplexEigenpairsWarning}
    assert res.max_imag > 1e-3 and res.singular


def test_resefa_input_errors():
    J = _jacobian_like()
    with pytest.raises(ValueError, match="solver"):
        jaxedit.resefa(J, (0, 0, 2, 2), solver="eig")
    with pytest.raises(ValueError, match="k must"):
        jaxedit.resefa(J, (0, 0, 2, 2), k=25)
    with pytest.raises(ValueError, match="empty"):
        jaxedit.resefa(J, np.zeros((12, 12), bool))
    with pytest.raises(ValueError, match="whole"):
        jaxedit.resefa(J, np.ones((12, 12), bool))
    with pytest.raises(ValueError, match="shape"):
        jaxedit.resefa(J[0, 0], (0, 0, 2, 2))
    with pytest.raises(ValueError, match="block_size"):
        jaxedit.resefa(J, (0, 0, 2, 2), k=10, solver="matrix_free")
    with pytest.raises(ValueError, match="regularization"):
        jaxedit.resefa(J, (0, 0, 2, 2), regularization=float("nan"))
    bad = J.copy()
    bad[3, 4, 0, 5] = np.nan
    with pytest.raises(ValueError, match="J contains 1 non-finite"):
        jaxedit.resefa(bad, (0, 0, 2, 2))
    for make, match in (
        (lambda: jaxedit.MatrixFree(tol=0), "tol"),
        (lambda: jaxedit.MatrixFree(trace="guess"), "trace"),
        (lambda: jaxedit.MatrixFree(precision="bogus"), "precision"),
        (lambda: jaxedit.Woodbury(rank=0), "rank"),
        (lambda: jaxedit.Dense(precision="fp8"), "precision"),
    ):
        with pytest.raises(ValueError, match=match):
            make()


# ---- recompiles -----------------------------------------------------------------------------
def test_dense_solver_compiles_once():
    before = linalg.compiled_programs()["dense"]
    J = _jacobian_like()
    jaxedit.resefa(J, (0, 0, 4, 4), k=3)
    assert linalg.compiled_programs()["dense"] <= before + 1
    once = linalg.compiled_programs()["dense"]
    jaxedit.resefa(J * 2, (1, 1, 5, 6), k=3, regularization=1e-3)
    assert linalg.compiled_programs()["dense"] == once


def test_matrix_free_solver_compiles_once():
    before = linalg.compiled_programs()["matrix_free_rows"]
    J = _jacobian_like(d=30)
    a = jaxedit.resefa(J, (0, 0, 4, 4), k=3, solver="matrix_free")
    assert linalg.compiled_programs()["matrix_free_rows"] <= before + 1
    once = linalg.compiled_programs()["matrix_free_rows"]
    # new values, region, ridge, tolerance, iteration limit and key: no new trace
    b = jaxedit.resefa(
        J * 2,
        (1, 1, 5, 6),
        k=3,
        regularization=1e-3,
        solver=jaxedit.MatrixFree(tol=1e-7, maxiter=200, key=5),
    )
    assert a.stats.converged and b.stats.converged
    assert linalg.compiled_programs()["matrix_free_rows"] == once


# ---- the operator path ----------------------------------------------------------------------
def _op_and_dense(gen, space="wplus", seed=0):
    ws = gen.mapping(np.random.RandomState(seed).randn(1, gen.z_dim))
    out = jaxedit.OutputSpec(channels="sum")
    J = np.asarray(jaxedit.jacobian(gen, ws, space=space, output=out))[0]
    op = jaxedit.JacobianOperator(gen, ws[0], space=space, output=out)
    return op, J


def test_operator_matrix_free_matches_dense_and_reports(small_gen):
    op, J = _op_and_dense(small_gen)  # 16 px, W+ D = 48
    box = (4, 4, 10, 12)
    a, b = _moments_np(J, box)
    tau = 1e-3
    w, v = _scipy_top(a, b + tau * np.trace(b) * np.eye(48), 3)
    before = linalg.compiled_programs()["matrix_free_function"]
    res = jaxedit.resefa(op, box, k=3, regularization=tau)
    assert linalg.compiled_programs()["matrix_free_function"] <= before + 1
    once = linalg.compiled_programs()["matrix_free_function"]
    assert res.solver == "matrix_free" and res.stats.converged
    np.testing.assert_allclose(res.eigenvalues, w, rtol=1e-8)
    np.testing.assert_allclose(_abs_cos(res.directions, v), 1, atol=1e-8)
    st = res.stats
    assert st.trace_method == "exact" and st.trace == pytest.approx(np.trace(b), rel=1e-10)
    assert st.condition_method == "lower bound"
    assert st.condition_number <= np.linalg.cond(b + tau * np.trace(b) * np.eye(48)) * (1 + 1e-8)
    # another sample reuses the compiled solver (operators hash by structure)
    op2, _ = _op_and_dense(small_gen, seed=1)
    assert op2 == op and hash(op2) == hash(op)
    jaxedit.resefa(op2, box, k=3, regularization=2e-3)
    assert linalg.compiled_programs()["matrix_free_function"] == once


@pytest.mark.slow  # a second compilation of the operator solver; Hutch++ itself is tested above
def test_operator_hutchpp_trace_against_the_exact_trace(small_gen):
    op, J = _op_and_dense(small_gen)
    box = (4, 4, 10, 12)
    _, b = _moments_np(J, box)
    res = jaxedit.resefa(
        op,
        box,
        k=3,
        regularization=1e-3,
        solver=jaxedit.MatrixFree(trace="hutchpp", sketch_size=6, trace_probes=32),
    )
    st = res.stats
    assert st.trace_method == "hutch++" and st.trace_stderr > 0
    assert abs(st.trace - np.trace(b)) < 4 * st.trace_stderr
    assert abs(st.trace - np.trace(b)) < 0.05 * np.trace(b)


def test_operator_rejects_what_it_cannot_honour(small_gen):
    op, _ = _op_and_dense(small_gen)
    for solver in ("dense", jaxedit.Woodbury(rank=8), "reference"):
        with pytest.raises(ValueError, match="matrix-free"):
            jaxedit.resefa(op, (4, 4, 10, 12), k=3, solver=solver)
    with pytest.raises(ValueError, match="aggregate"):
        jaxedit.resefa(op, (4, 4, 10, 12), k=3, aggregate="mean")
    # (regularized like the test above: the same compiled solver)
    with pytest.warns(ConvergenceWarning):
        jaxedit.resefa(
            op, (4, 4, 10, 12), k=3, regularization=1e-3, solver=jaxedit.MatrixFree(maxiter=1)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = jaxedit.resefa(
            op,
            (4, 4, 10, 12),
            k=3,
            regularization=1e-3,
            solver=jaxedit.MatrixFree(maxiter=1),
            warn=False,
        )
    assert not r.stats.converged and r.stats.iterations == 1


@pytest.mark.float32
def test_operator_float32_default(small_gen):
    op, J = _op_and_dense(small_gen)
    assert op.dtype == jnp.float32
    box = (4, 4, 10, 12)
    a, b = _moments_np(J, box)
    _, v = _scipy_top(a, b + 1e-3 * np.trace(b) * np.eye(48), 3)
    res = jaxedit.resefa(op, box, k=3, regularization=1e-3)
    assert res.directions.dtype == np.float32 and res.stats.converged
    assert np.min(_abs_cos(res.directions, v)) > 0.999


# ---- Hutch++ --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_hutchpp_accuracy_against_the_exact_trace(seed):
    d = 200
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    lam = np.exp(-np.linspace(0, 6, d))
    b = jnp.asarray(q @ np.diag(lam) @ q.T)
    key = jax.random.key(seed)
    k1, k2 = jax.random.split(key)
    sketch = jax.random.normal(k1, (d, 20), b.dtype)
    probes = jax.random.rademacher(k2, (d, 40), dtype=b.dtype)
    est, se, qq, bq = linalg.hutchpp_trace(lambda v: b @ v, sketch, probes)
    exact = lam.sum()
    assert 0 < float(se) < 0.02 * exact
    assert abs(float(est) - exact) < 4 * float(se)
    np.testing.assert_allclose(np.asarray(bq), np.asarray(b @ qq), rtol=1e-12)


def test_trace_rule_exact_when_it_costs_no_more():
    mf = jaxedit.MatrixFree()
    assert mf.trace_method(96, 48) == "exact"  # D <= 2p + probes
    assert mf.trace_method(512, 80) == "hutch++"  # 2p + probes = 224 < 512
    assert jaxedit.MatrixFree(trace="exact").trace_method(9216, 80) == "exact"


# ---- on a real generator ----------------------------------------------------------------------
def test_fixture_top_direction_is_more_local_than_random(ada_gen, ada_ref):
    ws = ada_ref["ws_psi10"]
    box = (8, 8, 20, 24)
    J = jaxedit.jacobian(ada_gen, ws[:1], space="w", output=jaxedit.OutputSpec(channels="sum"))
    res = jaxedit.resefa(J[0], box, k=3)
    top = jaxedit.evaluate_direction(ada_gen, ws, res.directions[0], box, alpha=0.5)["roir"]
    rng = np.random.default_rng(0)
    rand = [
        jaxedit.evaluate_direction(ada_gen, ws, rng.standard_normal(32), box, alpha=0.5)["roir"]
        for _ in range(6)
    ]
    assert top < min(rand), (top, rand)
