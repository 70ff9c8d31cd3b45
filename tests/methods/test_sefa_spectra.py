"""SeFa against genforce's factorize_weight (written out, unsorted eig) and a NumPy SVD; conv
spectra and the ICME closed form against dense matrices built here; layer_factorization against a
finite-difference Jacobian of the generator's own layer op."""

import jax
import numpy as np
import pytest

import jaxedit
from jaxedit import _ops
from jaxedit.methods import spectra


def _abs_cos(x, y):
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    return np.abs(np.sum(x * y, axis=-1))


def _genforce_factorize_weight(weights, dtype=np.float32):
    """genforce/sefa utils.factorize_weight, written out: float32, column normalization, general
    ``np.linalg.eig``, boundaries = eigenvectors.T, **not sorted** (LAPACK geev order)."""
    w = np.concatenate(weights, axis=1).astype(dtype)
    w = w / np.linalg.norm(w, axis=0, keepdims=True)
    eigen_values, eigen_vectors = np.linalg.eig(w.dot(w.T))
    return eigen_vectors.T, eigen_values


def _by_eigenvalue(boundaries, values, k):
    """genforce's output re-ordered by descending eigenvalue (its index i is not the i-th largest)."""
    order = np.argsort(-np.real(values))[:k]
    return np.real(boundaries[order]), np.real(values[order])


def _sefa_weights(gen, slots):
    # the reference's layer list: conv layers by W+ slot, the final ToRGB for the last slot
    names = list(gen.conv_layer_names) + [[n for n in gen.layer_names if n.endswith("torgb")][-1]]
    return [np.asarray(gen._layer(names[s]).affine.weight[...]) for s in slots]


@pytest.mark.parametrize("layers", ["all", [2, 3, 4, 5], "coarse", "fine"])
def test_sefa_matches_genforce(ada_gen, layers):
    res = jaxedit.sefa(ada_gen, layers=layers, k=3)
    assert res.directions.dtype == np.float64  # x64 session: float64
    weights = _sefa_weights(ada_gen, res.slots)
    # genforce's semantics in float64 (the arithmetic jaxedit does under x64)
    bnd, val = _by_eigenvalue(*_genforce_factorize_weight(weights, np.float64), 3)
    assert res.directions.shape == (3, 32) and res.eigenvalues.shape == (3,)
    np.testing.assert_allclose(res.eigenvalues, val, rtol=1e-10)
    np.testing.assert_allclose(_abs_cos(res.directions, bnd), 1, atol=1e-10)
    assert np.all(np.diff(res.eigenvalues) <= 0)
    # genforce's own float32 path, as an explicit option
    r32 = jaxedit.sefa(ada_gen, layers=layers, k=3, dtype=np.float32)
    b32, v32 = _by_eigenvalue(*_genforce_factorize_weight(weights), 3)
    assert r32.directions.dtype == np.float32
    np.testing.assert_allclose(r32.eigenvalues, v32, rtol=1e-4)
    np.testing.assert_allclose(_abs_cos(r32.directions, b32), 1, atol=1e-4)


@pytest.mark.float32
def test_sefa_float32_default_matches_genforce(ada_gen):
    res = jaxedit.sefa(ada_gen, layers="all", k=4)
    assert res.directions.dtype == np.float32
    bnd, val = _by_eigenvalue(*_genforce_factorize_weight(_sefa_weights(ada_gen, res.slots)), 4)
    np.testing.assert_allclose(res.eigenvalues, val, rtol=1e-4)
    np.testing.assert_allclose(_abs_cos(res.directions, bnd), 1, atol=1e-4)


def test_sefa_slots_and_raw_weights(ada_gen):
    assert jaxedit.sefa(ada_gen, "all", k=2).slots == tuple(range(8))
    assert jaxedit.sefa(ada_gen, [5, 2, 2], k=2).slots == (2, 5)
    # normalize=None: top left singular vectors of the raw concatenated weights (rosinality's
    # closed_form_factorization takes the SVD of the raw modulation weights)
    raw = jaxedit.sefa(ada_gen, "all", k=3, normalize=None)
    u, s, _ = np.linalg.svd(
        np.concatenate(_sefa_weights(ada_gen, raw.slots), axis=1).astype(np.float64)
    )
    np.testing.assert_allclose(raw.eigenvalues, s[:3] ** 2, rtol=1e-10)
    np.testing.assert_allclose(_abs_cos(raw.directions, u[:, :3].T), 1, atol=1e-10)
    with pytest.raises(ValueError, match="slots"):
        jaxedit.sefa(ada_gen, [8])
    with pytest.raises(ValueError, match="layers"):
        jaxedit.sefa(ada_gen, "upper")


# ---- dense references for circular convolutions ---------------------------------------------
def _corr(x, k, s=1):
    """Circular correlation y[i,j,o] = Σ K[a,b,c,o] x[(s i + a) % n, (s j + b) % n, c]."""
    n = x.shape[0]
    m = n // s
    y = np.zeros((m, m, k.shape[3]))
    for a in range(k.shape[0]):
        for b in range(k.shape[1]):
            xs = np.roll(np.roll(x, -a, 0), -b, 1)[::s, ::s]
            y += xs @ k[a, b]
    return y


def _conv_transpose(x, k, s):
    """Circular transposed conv, scatter form: y[(s i + a) % sn, (s j + b) % sn] += x[i, j] K[a, b]
    (input n -> output s n, K [k, k, C_in, C_out])."""
    n = x.shape[0]
    y = np.zeros((s * n, s * n, k.shape[3]))
    for i in range(n):
        for j in range(n):
            for a in range(k.shape[0]):
                for b in range(k.shape[1]):
                    y[(s * i + a) % (s * n), (s * j + b) % (s * n)] += x[i, j] @ k[a, b]
    return y


def _dense(op, n, c_in):
    cols = []
    for idx in range(n * n * c_in):
        e = np.zeros(n * n * c_in)
        e[idx] = 1
        cols.append(op(e.reshape(n, n, c_in)).reshape(-1))
    return np.stack(cols, 1)


def _svals(m):
    return np.sort(np.linalg.svd(m, compute_uv=False))[::-1]


def _kernel(k=3, i=2, o=3, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal((k, k, i, o)).astype(dtype)


def _pixel_trace_gram(op, n, c_in):
    """``Σ_p T_pᵀ T_p`` [C_in, C_in] over input pixels p of a dense operator (T_p: unit inputs at p)."""
    t = _dense(op, n, c_in).reshape(-1, n, n, c_in)
    return np.einsum("rpqc,rpqd->cd", t, t)


@pytest.mark.parametrize("n,k", [(6, 3), (4, 1), (3, 5)])
def test_stride1_against_dense(n, k):
    K = _kernel(k)
    want = _svals(_dense(lambda x: _corr(x, K), n, 2))
    got = np.asarray(jaxedit.conv_singular_values(K, (n, n)))
    assert got.shape == (n * n * 2,)
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_stride2_and_topk_against_dense():
    K = _kernel(3, seed=1)
    want = _svals(_dense(lambda x: _corr(x, K, 2), 8, 2))  # input 8 -> output 4
    got = np.asarray(jaxedit.conv_singular_values(K, (8, 8), stride=2))
    assert got.shape == want.shape == (min(8 * 8 * 2, 4 * 4 * 3),)
    np.testing.assert_allclose(got, want, atol=1e-10)
    top = np.asarray(jaxedit.conv_singular_values(K, (8, 8), stride=2, top_k=5))
    np.testing.assert_allclose(top, want[:5], atol=1e-10)


@pytest.mark.parametrize("n,s,k", [(4, 2, 3), (3, 2, 4), (2, 3, 3)])
def test_transposed_conv_input_shape_is_the_input_grid(n, s, k):
    """A transposed conv C_in -> C_out with stride s on an n x n input (output s n)."""
    K = _kernel(k, i=2, o=3, seed=2)
    dense = _dense(lambda x: _conv_transpose(x, K, s), n, 2)
    assert dense.shape == ((s * n) ** 2 * 3, n * n * 2)
    want = _svals(dense)
    got = np.asarray(jaxedit.conv_singular_values(K, (n, n), stride=s, transpose=True))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-10)


@pytest.mark.parametrize("mode", ["nearest", "zeros"])
def test_upsample_then_conv_against_dense(mode):
    K = _kernel(3, seed=2)
    n = 4

    def op(x):
        if mode == "nearest":
            u = np.repeat(np.repeat(x, 2, 0), 2, 1)
        else:
            u = np.zeros((2 * n, 2 * n, x.shape[2]))
            u[::2, ::2] = x
        return _corr(u, K)

    want = _svals(_dense(op, n, 2))
    got = np.asarray(jaxedit.conv_singular_values(K, (n, n), upsample=mode))
    np.testing.assert_allclose(got[: len(want)], want, atol=1e-10)


def _upconv_dense_op(W, fir=(1.0, 3.0, 3.0, 1.0)):
    f = np.asarray(fir)
    f2 = np.outer(f, f) / np.outer(f, f).sum() * 4

    def op(x):
        n = x.shape[0]
        u = np.zeros((2 * n, 2 * n, x.shape[2]))
        u[::2, ::2] = x
        y = _corr(u, W[::-1, ::-1])  # zero insertion, flip
        c = W.shape[3]
        return _corr(y, f2[:, :, None, None] * np.eye(c)[None, None])  # FIR, gain 4

    return op


def test_stylegan2_upconv_against_dense():
    W = _kernel(3, seed=3)
    n = 4
    want = _svals(_dense(_upconv_dense_op(W), n, 2))
    kern = spectra.stylegan2_upconv_kernel(W, (1, 3, 3, 1))
    got = np.asarray(jaxedit.conv_singular_values(kern, (n, n), upsample="zeros"))
    np.testing.assert_allclose(got[: len(want)], want, atol=1e-10)


@pytest.mark.parametrize("layer", ["b8.conv1", "b8.conv0"])
def test_layer_spectrum_against_a_dense_operator(small_gen, layer):
    lay = small_gen._layer(layer)
    W = np.asarray(lay.weight[...], np.float64)
    if lay.up == 1:
        n = lay.resolution
        dense = _dense(lambda x: _corr(x, W), n, W.shape[2])
    else:
        n = lay.resolution // 2
        dense = _dense(_upconv_dense_op(W, small_gen.config.resample_kernel), n, W.shape[2])
    want = _svals(dense)
    got = np.asarray(spectra.layer_spectrum(small_gen, layer))
    np.testing.assert_allclose(got[: len(want)], want, rtol=1e-9, atol=1e-9 * want[0])
    top = np.asarray(spectra.layer_spectrum(small_gen, layer, top_k=4))
    np.testing.assert_allclose(top, want[:4], rtol=1e-9)
    with pytest.raises(ValueError, match="unknown conv"):
        spectra.layer_spectrum(small_gen, "b8.torgb")


def test_plain_transpose_collapses_to_the_corner_tap():
    K = _kernel(3, i=4, o=5, seed=4)
    n = 8
    plain = np.asarray(spectra.fft_gram(K, (n, n), "plain"))
    assert np.abs(plain.imag).max() < 1e-10  # looks real: the bug is silent
    np.testing.assert_allclose(plain.real, n * n * K[0, 0] @ K[0, 0].T, atol=1e-9)
    conj = np.asarray(spectra.fft_gram(K, (n, n), "conjugate"))
    dense = _pixel_trace_gram(lambda x: _corr(x, K), n, 4)
    np.testing.assert_allclose(conj.real, dense, atol=1e-9)  # Parseval
    np.testing.assert_allclose(spectra.parseval_gram(K, (n, n)), dense, atol=1e-9)
    assert np.abs(conj.imag).max() < 1e-9


@pytest.mark.parametrize("n,k", [(3, 5), (2, 3), (4, 4)])
def test_parseval_matches_wrapped_kernels(n, k):
    """Kernels larger than the grid: the FFT path wraps them, and so does ``parseval`` - both equal
    the dense circular operator's pixel-trace Gram."""
    K = _kernel(k, i=3, o=2, seed=5)
    dense = _pixel_trace_gram(lambda x: _corr(x, K), n, 3)
    np.testing.assert_allclose(spectra.parseval_gram(K, (n, n)), dense, atol=1e-9)
    np.testing.assert_allclose(np.asarray(spectra.fft_gram(K, (n, n))).real, dense, atol=1e-9)
    a = jaxedit.conv_factorization(K, (n, n), k=2, method="parseval")
    b = jaxedit.conv_factorization(K, (n, n), k=2, method="fft")
    w, v = np.linalg.eigh(dense)
    np.testing.assert_allclose(a.eigenvalues, w[::-1][:2], rtol=1e-9)
    np.testing.assert_allclose(b.eigenvalues, w[::-1][:2], rtol=1e-9)
    np.testing.assert_allclose(_abs_cos(a.directions, v[:, ::-1][:, :2].T), 1, atol=1e-9)


def test_upsampled_closed_form_against_dense():
    W = _kernel(3, i=3, o=2, seed=6)
    n = 4
    dense = _pixel_trace_gram(_upconv_dense_op(W), n, 3)
    kern = spectra.stylegan2_upconv_kernel(W, (1, 3, 3, 1))
    for method in ("fft", "parseval"):
        g = jaxedit.conv_factorization(kern, (n, n), k=2, method=method, upsample="zeros").gram
        np.testing.assert_allclose(g, dense, atol=1e-9)


def test_conv_factorization_with_affine():
    K = _kernel(3, i=4, o=5, seed=5)
    M = np.random.default_rng(6).standard_normal((6, 4))  # w_dim 6 -> C_in 4
    a = jaxedit.conv_factorization(K, (8, 8), k=3, affine=M)
    b = jaxedit.conv_factorization(K, (8, 8), k=3, affine=M, method="parseval")
    kt = K.transpose(0, 1, 3, 2).reshape(-1, 4)
    L = kt @ M.T  # w -> unrolled conv output
    w, v = np.linalg.eigh(L.T @ L)
    np.testing.assert_allclose(a.eigenvalues, 64 * w[::-1][:3], rtol=1e-9)
    np.testing.assert_allclose(_abs_cos(a.directions, v[:, ::-1][:, :3].T), 1, atol=1e-9)
    np.testing.assert_allclose(a.directions, b.directions, atol=1e-9)
    plain = jaxedit.conv_factorization(K, (8, 8), k=3, transpose="plain", affine=M)
    np.testing.assert_allclose(plain.gram, M @ (64 * K[0, 0] @ K[0, 0].T) @ M.T, atol=1e-8)
    with pytest.raises(ValueError, match="transpose"):
        jaxedit.conv_factorization(K, (8, 8), transpose="hermitian")


def _fd_layer_gram(gen, layer, n_in, h=1.0):
    """``J_pᵀJ_p`` for unit activations at one interior input pixel p, J_p the finite-difference
    Jacobian in w of the generator's own layer op (``lay.affine`` + ``modulated_conv2d`` without
    demodulation; linear in w, so central differences are exact up to rounding)."""
    lay = gen._layer(layer)
    w_dim, c_in = lay.affine.weight.shape
    dt = np.float64 if jax.config.jax_enable_x64 else np.float32  # float32 session: no casts
    W = np.asarray(lay.weight[...], dt)
    steps = (np.concatenate([np.eye(w_dim), -np.eye(w_dim)]) * h).astype(dt)  # [2 w_dim, w_dim]
    x = np.zeros((2 * w_dim, n_in, n_in, c_in), dt)
    x[:, n_in // 2, n_in // 2] = 1.0
    s = lay.affine(steps)  # batched: one call
    y = np.asarray(
        _ops.modulated_conv2d(
            x, W, s, demodulate=False, up=lay.up, padding=1, kernel_1d=lay.kernel_1d
        )
    ).reshape(2 * w_dim, -1)
    J = ((y[:w_dim] - y[w_dim:]) / (2 * h)).T  # [outputs, w_dim]
    return J.T @ J, 1.0 / w_dim  # and the affine's runtime gain², which the Gram omits


@pytest.mark.parametrize("layer,n_in", [("b16.conv1", 12), ("b8.conv0", 8), ("b32.conv0", 8)])
def test_layer_factorization_against_a_finite_difference_jacobian(ada_gen, layer, n_in):
    """The closed-form Gram is ``Σ_p J_pᵀJ_p`` over the layer's input grid; every interior p has
    the same ``J_pᵀJ_p`` (translation), so Gram = n² J_pᵀJ_p / gain². For an up-conv this
    includes the zero insertion and the FIR."""
    lay = ada_gen._layer(layer)
    n = lay.resolution // lay.up
    fd, gain2 = _fd_layer_gram(ada_gen, layer, n_in)
    w, v = np.linalg.eigh(fd)
    for method in ("fft", "parseval"):
        got = spectra.layer_factorization(ada_gen, layer, k=4, method=method)
        np.testing.assert_allclose(
            got.gram, n * n * fd / gain2, rtol=1e-7, atol=1e-9 * np.abs(got.gram).max()
        )
        np.testing.assert_allclose(_abs_cos(got.directions, v[:, ::-1][:, :4].T), 1, atol=1e-8)
        assert got.directions.shape == (4, 32)


@pytest.mark.float32
def test_spectra_float32_defaults(ada_gen):
    """x64 off: float32 in and out, against float64 dense / finite-difference references."""
    K = _kernel(3, seed=8)
    want = _svals(_dense(lambda x: _corr(x, K), 6, 2))
    got = jaxedit.conv_singular_values(K.astype(np.float32), (6, 6))
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5 * want[0])
    fd, _ = _fd_layer_gram(ada_gen, "b8.conv0", 8)  # float32 here: loose but independent
    w, v = np.linalg.eigh(fd.astype(np.float64))
    got = spectra.layer_factorization(ada_gen, "b8.conv0", k=3)
    assert got.directions.dtype == np.float32
    np.testing.assert_allclose(_abs_cos(got.directions, v[:, ::-1][:, :3].T), 1, atol=1e-3)


def test_cli_sefa_edit_spectrum(tmp_path, ada_pkl, capsys):
    from PIL import Image

    from jaxedit.cli import main

    dirs = tmp_path / "s.npz"
    assert main(["sefa", str(ada_pkl), "--layers", "2-5", "--k", "4", "--out", str(dirs)]) == 0
    data = np.load(dirs)
    assert data["directions"].shape == (1, 4, 32) and data["slots"].tolist() == [2, 3, 4, 5]
    png = tmp_path / "e.png"
    assert (
        main(
            [
                "edit",
                str(ada_pkl),
                "--directions",
                str(dirs),
                "--seeds",
                "0-1",
                "--alphas",
                "-3:3:3",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(png)).shape == (64, 96, 3)
    capsys.readouterr()
    assert main(["spectrum", str(ada_pkl), "--layer", "b16.conv1", "--top-k", "5"]) == 0
    assert "5 singular values" in capsys.readouterr().out
    assert main(["evaluate", str(ada_pkl), "--directions", str(dirs), "--seeds", "0-1"]) == 2
    assert "--region" in capsys.readouterr().err


def test_no_recompile_for_a_new_kernel():
    K = _kernel(3, i=4, o=4, seed=7)
    jaxedit.conv_singular_values(K, (8, 8))
    n = spectra._svals._cache_size()
    jaxedit.conv_singular_values(K * 2, (8, 8))
    assert spectra._svals._cache_size() == n
    jax.block_until_ready(jaxedit.conv_singular_values(K, (8, 8), top_k=3))
