"""ReSeFa solvers against SciPy's eigh(A, B), each other, and the reference's inv + eig."""

import warnings

import jax
import numpy as np
import pytest
import scipy.linalg as sl

import jaxedit
from jaxedit import rayleigh
from jaxedit.region_factorization import ComplexEigenpairsWarning, SingularBackgroundWarning


def _problem(d=24, n_f=10, n_b=400, seed=0, decay=3.0):
    rng = np.random.default_rng(seed)
    jf = rng.standard_normal((n_f, d))
    jb = rng.standard_normal((n_b, d)) * np.exp(-np.linspace(0, decay, d))
    return jf, jb


def _scipy_top(a, b, k):
    w, v = sl.eigh(a, b)
    v = v[:, ::-1][:, :k]
    return w[::-1][:k], (v / np.linalg.norm(v, axis=0)).T


def _abs_cos(x, y):
    x = np.asarray(x) / np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.asarray(y) / np.linalg.norm(y, axis=-1, keepdims=True)
    return np.abs(np.sum(x * y, axis=-1))


def _principal_cosines(x, y):
    qx, qy = np.linalg.qr(np.asarray(x).T)[0], np.linalg.qr(np.asarray(y).T)[0]
    return np.linalg.svd(qx.T @ qy, compute_uv=False)


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_dense_matches_scipy(seed, jit):
    jf, jb = _problem(seed=seed)
    a, b = jf.T @ jf / len(jf), jb.T @ jb / len(jb)
    w, v = _scipy_top(a, b, 5)
    if jit:
        lam, dirs, cond = rayleigh.generalized_eigh(a, b, k=5)
    else:
        with jax.disable_jit():
            lam, dirs, cond = rayleigh.generalized_eigh(a, b, k=5)
    np.testing.assert_allclose(lam, w, rtol=1e-10)
    np.testing.assert_allclose(_abs_cos(dirs, v), 1, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1, atol=1e-12)
    assert np.all(np.abs(dirs).max(1) == dirs.max(1))  # canonical sign
    assert cond == pytest.approx(np.linalg.cond(b), rel=0.1)


def test_rank_deficient_background_with_regularization():
    jf, jb = _problem(d=30, n_b=12)              # rank(M_b) = 12 < 30
    a, b = jf.T @ jf / 10, jb.T @ jb / 12
    tau = 1e-3
    breg = b + tau * np.trace(b) * np.eye(30)
    w, v = _scipy_top(a, breg, 4)
    lam, dirs, _ = rayleigh.generalized_eigh(a, rayleigh.regularize(b, tau), k=4)
    np.testing.assert_allclose(lam, w, rtol=1e-9)
    np.testing.assert_allclose(_abs_cos(dirs, v), 1, atol=1e-9)
    for form in ("d", "rows"):
        lw, dw, cw = rayleigh.woodbury_eigh(jf / np.sqrt(10), jb / np.sqrt(12),
                                            tau * np.trace(b), k=4, form=form)
        np.testing.assert_allclose(lw, w, rtol=1e-9)
        np.testing.assert_allclose(_abs_cos(dw, v), 1, atol=1e-9)
        assert cw == pytest.approx(np.linalg.cond(breg), rel=1e-6)


@pytest.mark.parametrize("form", ["d", "rows"])
def test_woodbury_equals_dense_full_rank(form):
    jf, jb = _problem(d=20, n_f=8, n_b=300, seed=3)
    lam, dirs, _ = rayleigh.generalized_eigh(jf.T @ jf, jb.T @ jb, k=6)
    lw, dw, _ = rayleigh.woodbury_eigh(jf, jb, 0.0, k=6, form=form)
    np.testing.assert_allclose(lw, lam, rtol=1e-9)
    np.testing.assert_allclose(dw, dirs, atol=1e-9)  # same canonical signs


def test_woodbury_truncation_is_an_approximation():
    jf, jb = _problem(d=20, n_f=8, n_b=300, seed=3, decay=6.0)
    a, b = jf.T @ jf, jb.T @ jb
    tau = 1e-2
    lam, dirs, _ = rayleigh.generalized_eigh(a, rayleigh.regularize(b, tau), k=3)
    lt, dt, _ = rayleigh.woodbury_eigh(jf, jb, tau * np.trace(b), k=3, rank=12)
    assert np.all(np.abs(lt - lam) / lam < 0.05)      # close but not equal
    assert not np.allclose(lt, lam, rtol=1e-9)


def test_reference_eig_is_numpy_inv_eig():
    jf, jb = _problem(seed=4)
    a, b = jf.T @ jf / 10, jb.T @ jb / 400
    lam, dirs, imag = rayleigh.reference_eig(a, b, k=5)
    val, vec = np.linalg.eig(np.linalg.inv(b) @ a)
    order = np.argsort(-val.real)[:5]
    np.testing.assert_array_equal(lam, val.real[order])
    np.testing.assert_array_equal(dirs, vec.real.T[order])
    assert imag < 1e-8
    w, v = _scipy_top(a, b, 5)
    np.testing.assert_allclose(lam, w, rtol=1e-8)
    np.testing.assert_allclose(_abs_cos(dirs, v), 1, atol=1e-8)


def _jacobian_like(seed=0, h=12, w=12, c=1, d=24):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((h, w, c, d)) * np.exp(-np.linspace(0, 2, d))


@pytest.mark.parametrize("solver", ["dense", "woodbury", "reference", "matrix_free"])
def test_resefa_solvers_agree(solver):
    J = _jacobian_like(c=3)
    box = (3, 2, 7, 9)
    mask = jaxedit.region_mask(box, 12)
    rows = J.reshape(-1, 24)
    rm = np.repeat(mask.reshape(-1), 3)
    a = rows[rm].T @ rows[rm] / rm.sum()
    b = rows[~rm].T @ rows[~rm] / (~rm).sum()
    w, v = _scipy_top(a, b, 4)
    res = jaxedit.resefa(J, box, k=4, solver=solver)
    assert res.solver == solver and res.directions.shape == (4, 24)
    assert (res.condition_number is None) == (solver == "matrix_free")   # it never forms M_b
    assert res.n_foreground == 28 * 3 and res.n_background == (144 - 28) * 3
    tol = 1e-6 if solver == "matrix_free" else 1e-9
    np.testing.assert_allclose(res.eigenvalues, w, rtol=tol)
    np.testing.assert_allclose(_abs_cos(res.directions, v), 1, atol=tol)
    assert np.all(res.residuals < 1e-5)


def test_matrix_free_subspace_matches_dense_with_regularization():
    J = _jacobian_like(seed=5, h=16, w=16, d=60)
    dense = jaxedit.resefa(J, (4, 4, 10, 12), k=5, regularization=1e-3, solver="dense")
    mf = jaxedit.resefa(J, (4, 4, 10, 12), k=5, regularization=1e-3, solver="matrix_free")
    np.testing.assert_allclose(_principal_cosines(mf.directions, dense.directions), 1, atol=1e-8)
    np.testing.assert_allclose(mf.eigenvalues, dense.eigenvalues, rtol=1e-8)
    assert mf.iterations < 300
    from jaxedit import region_factorization as rf
    size = rf._rows_lobpcg._cache_size()
    jaxedit.resefa(J * 2, (2, 3, 9, 12), k=5, regularization=1e-3, solver="matrix_free")
    assert rf._rows_lobpcg._cache_size() == size          # new values and region: no recompile


def test_batch_and_aggregate():
    J = np.stack([_jacobian_like(seed=s) for s in range(3)])
    per = jaxedit.resefa(J, (2, 2, 6, 6), k=3)
    assert per.directions.shape == (3, 3, 24) and per.eigenvalues.shape == (3, 3)
    one = jaxedit.resefa(J[1], (2, 2, 6, 6), k=3)
    np.testing.assert_allclose(per.directions[1], one.directions, atol=1e-12)
    agg = jaxedit.resefa(J, (2, 2, 6, 6), k=3, aggregate="mean")
    mf, mb = zip(*(jaxedit.region_factorization.region_moments(j, (2, 2, 6, 6)) for j in J))
    w, v = _scipy_top(np.mean(mf, 0), np.mean(mb, 0), 3)
    np.testing.assert_allclose(agg.eigenvalues, w, rtol=1e-9)
    np.testing.assert_allclose(_abs_cos(agg.directions, v), 1, atol=1e-9)
    wb = jaxedit.resefa(J, (2, 2, 6, 6), k=3, aggregate="mean", solver="woodbury")
    np.testing.assert_allclose(wb.eigenvalues, w, rtol=1e-9)


def test_singular_background_warns_and_raises():
    J = _jacobian_like(h=6, w=6, d=40)          # 36 rows < D = 40: M_b is singular
    with pytest.warns(SingularBackgroundWarning, match="regularization"):
        with pytest.raises(np.linalg.LinAlgError, match="singular"):
            jaxedit.resefa(J, (0, 0, 2, 2), k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = jaxedit.resefa(J, (0, 0, 2, 2), k=3, regularization=1e-3)
    assert not ok.singular and np.isfinite(ok.condition_number)
    with pytest.raises(ValueError, match="regularization"):
        jaxedit.resefa(J, (0, 0, 2, 2), k=3, solver="woodbury")


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


def test_solver_does_not_recompile():
    J = _jacobian_like()
    jaxedit.resefa(J, (0, 0, 4, 4), k=3)
    size = rayleigh.generalized_eigh._cache_size()
    jaxedit.resefa(J * 2, (1, 1, 5, 6), k=3)
    assert rayleigh.generalized_eigh._cache_size() == size


def test_float32_dense():
    J = _jacobian_like().astype(np.float32)
    r32 = jaxedit.resefa(J, (2, 2, 6, 8), k=3)
    r64 = jaxedit.resefa(J.astype(np.float64), (2, 2, 6, 8), k=3)
    assert r32.directions.dtype == np.float32
    np.testing.assert_allclose(_abs_cos(r32.directions, r64.directions), 1, atol=1e-4)
    np.testing.assert_allclose(r32.eigenvalues, r64.eigenvalues, rtol=1e-4)


def test_fixture_top_direction_is_more_local_than_random(ada_gen, ada_ref):
    ws = ada_ref["ws_psi10"]
    box = (8, 8, 20, 24)
    J = jaxedit.jacobian(ada_gen, ws[:1], space="w", channels="sum")
    res = jaxedit.resefa(J[0], box, k=3)
    top = jaxedit.evaluate_direction(ada_gen, ws, res.directions[0], box, alpha=0.5)["roir"]
    rng = np.random.default_rng(0)
    rand = [jaxedit.evaluate_direction(ada_gen, ws, rng.standard_normal(32), box, alpha=0.5)["roir"]
            for _ in range(6)]
    assert top < min(rand), (top, rand)


def test_operator_matrix_free_matches_dense(ada_gen, ada_ref):
    ws = ada_ref["ws_psi10"][0]
    box = (8, 8, 20, 24)
    J = jaxedit.jacobian(ada_gen, ws[None], space="w", channels="sum", resize=16)
    dense = jaxedit.resefa(J[0], box, k=3)
    op = jaxedit.JacobianOperator(ada_gen, ws, space="w", channels="sum", resize=16)
    mf = jaxedit.resefa(op, box, k=3)
    assert mf.solver == "matrix_free"
    np.testing.assert_allclose(mf.eigenvalues, dense.eigenvalues, rtol=1e-7)
    np.testing.assert_allclose(_abs_cos(mf.directions, dense.directions), 1, atol=1e-8)
    # another sample's operator reuses the compiled solver (operators hash by structure)
    from jaxedit import region_factorization as rf
    size = rf._operator_lobpcg._cache_size()
    op2 = jaxedit.JacobianOperator(ada_gen, ada_ref["ws_psi10"][1], space="w", channels="sum",
                                   resize=16)
    assert op2 == op and hash(op2) == hash(op)
    jaxedit.resefa(op2, box, k=3)
    assert rf._operator_lobpcg._cache_size() == size
