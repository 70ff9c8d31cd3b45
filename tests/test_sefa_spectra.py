"""SeFa vs a NumPy factorize_weight; conv spectra and the ICME closed form vs dense matrices."""

import numpy as np
import pytest

import jaxedit
from jaxedit import spectra


def _abs_cos(x, y):
    x = np.asarray(x) / np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.asarray(y) / np.linalg.norm(y, axis=-1, keepdims=True)
    return np.abs(np.sum(x * y, axis=-1))


def _factorize_weight_reference(weights):
    """genforce/sefa utils.factorize_weight semantics (NumPy, general eig, float32 inputs)."""
    w = np.concatenate(weights, axis=1).astype(np.float32)
    w = w / np.linalg.norm(w, axis=0, keepdims=True)
    val, vec = np.linalg.eig(w.dot(w.T))
    order = np.argsort(-val.real)
    return val.real[order], vec.real.T[order]


@pytest.mark.parametrize("layers", ["all", [2, 3, 4, 5], "coarse", "fine"])
def test_sefa_matches_reference(ada_gen, layers):
    res = jaxedit.sefa(ada_gen, layers=layers, k=3)
    slots = res.slots
    # the reference's layer list: conv layers by W+ slot, the final ToRGB for the last slot
    names = list(ada_gen.conv_layer_names) + ["b32.torgb"]
    weights = [np.asarray(ada_gen._layer(names[s]).affine.weight[...]) for s in slots]
    val, vec = _factorize_weight_reference(weights)
    assert res.directions.shape == (3, 32) and res.eigenvalues.shape == (3,)
    np.testing.assert_allclose(res.eigenvalues, val[:3], rtol=1e-4)
    np.testing.assert_allclose(_abs_cos(res.directions, vec[:3]), 1, atol=1e-4)
    assert np.all(np.diff(res.eigenvalues) <= 0)


def test_sefa_slots_and_options(ada_gen):
    assert jaxedit.sefa(ada_gen, "all", k=2).slots == tuple(range(8))
    assert jaxedit.sefa(ada_gen, [5, 2, 2], k=2).slots == (2, 5)
    raw = jaxedit.sefa(ada_gen, "all", k=2, normalize=None)
    col = jaxedit.sefa(ada_gen, "all", k=2)
    assert not np.allclose(_abs_cos(raw.directions, col.directions), 1, atol=1e-3)
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


@pytest.mark.parametrize("n,k", [(6, 3), (4, 1), (3, 5)])
def test_stride1_against_dense(n, k):
    K = _kernel(k)
    want = _svals(_dense(lambda x: _corr(x, K), n, 2))
    got = np.asarray(jaxedit.conv_singular_values(K, (n, n)))
    assert got.shape == (n * n * 2,)
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_stride_transpose_and_topk():
    K = _kernel(3, seed=1)
    want = _svals(_dense(lambda x: _corr(x, K, 2), 8, 2))
    got = np.asarray(jaxedit.conv_singular_values(K, (8, 8), stride=2))
    np.testing.assert_allclose(got[:len(want)], want, atol=1e-10)
    # transposed conv C_in -> C_out (stride 2) is the adjoint of the stride-2 conv C_out -> C_in
    Kt = np.swapaxes(K, 2, 3)
    dense_t = _dense(lambda x: _corr(x, Kt, 2), 8, 3).T
    np.testing.assert_allclose(
        np.asarray(jaxedit.conv_singular_values(K, (8, 8), stride=2, transpose=True))[:dense_t.shape[1]],
        _svals(dense_t), atol=1e-10)
    top = np.asarray(jaxedit.conv_singular_values(K, (8, 8), stride=2, top_k=5))
    np.testing.assert_allclose(top, want[:5], atol=1e-10)


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
    np.testing.assert_allclose(got[:len(want)], want, atol=1e-10)


def test_stylegan2_upconv_against_dense():
    W = _kernel(3, seed=3)
    n = 4
    f = np.array([1.0, 3.0, 3.0, 1.0])
    f2 = np.outer(f, f) / np.outer(f, f).sum() * 4

    def op(x):
        u = np.zeros((2 * n, 2 * n, x.shape[2]))
        u[::2, ::2] = x
        y = _corr(u, W[::-1, ::-1])                             # lhs-dilated conv, flipped kernel
        return _corr(y, f2[:, :, None, None] * np.eye(3)[None, None])   # FIR, gain 4

    want = _svals(_dense(op, n, 2))
    kern = spectra.stylegan2_upconv_kernel(W, (1, 3, 3, 1))
    got = np.asarray(jaxedit.conv_singular_values(kern, (n, n), upsample="zeros"))
    np.testing.assert_allclose(got[:len(want)], want, atol=1e-10)


def test_layer_spectrum_of_a_generator(ada_gen):
    s = np.asarray(spectra.layer_spectrum(ada_gen, "b8.conv1"))
    w = np.asarray(ada_gen._layer("b8.conv1").weight[...], np.float64)
    np.testing.assert_allclose(s, np.asarray(jaxedit.conv_singular_values(w, (8, 8))), rtol=1e-6)
    up = np.asarray(spectra.layer_spectrum(ada_gen, "b8.conv0", top_k=4))
    assert up.shape == (4,) and np.all(np.diff(up) <= 0)
    with pytest.raises(ValueError, match="unknown conv"):
        spectra.layer_spectrum(ada_gen, "b8.torgb")


def test_plain_transpose_collapses_to_the_corner_tap():
    K = _kernel(3, i=4, o=5, seed=4)
    n = 8
    plain = np.asarray(spectra.fft_gram(K, (n, n), "plain"))
    assert np.abs(plain.imag).max() < 1e-10                  # looks real: the bug is silent
    np.testing.assert_allclose(plain.real, n * n * K[0, 0] @ K[0, 0].T, atol=1e-9)
    conj = np.asarray(spectra.fft_gram(K, (n, n), "conjugate"))
    kt = K.transpose(0, 1, 3, 2).reshape(-1, 4)
    np.testing.assert_allclose(conj.real, n * n * kt.T @ kt, atol=1e-9)     # Parseval
    np.testing.assert_allclose(spectra.parseval_gram(K, (n, n)), conj.real, atol=1e-9)
    assert np.abs(conj.imag).max() < 1e-9


def test_conv_factorization_with_affine():
    K = _kernel(3, i=4, o=5, seed=5)
    M = np.random.default_rng(6).standard_normal((6, 4))       # w_dim 6 -> C_in 4
    a = jaxedit.conv_factorization(K, (8, 8), k=3, affine=M)
    b = jaxedit.conv_factorization(K, (8, 8), k=3, affine=M, method="parseval")
    kt = K.transpose(0, 1, 3, 2).reshape(-1, 4)
    L = kt @ M.T                                               # w -> unrolled conv output
    w, v = np.linalg.eigh(L.T @ L)
    np.testing.assert_allclose(a.eigenvalues, 64 * w[::-1][:3], rtol=1e-9)
    np.testing.assert_allclose(_abs_cos(a.directions, v[:, ::-1][:, :3].T), 1, atol=1e-9)
    np.testing.assert_allclose(a.directions, b.directions, atol=1e-9)
    plain = jaxedit.conv_factorization(K, (8, 8), k=3, transpose="plain")
    right = jaxedit.conv_factorization(K, (8, 8), k=3)
    assert np.min(_abs_cos(plain.directions, right.directions)) < 0.99
    with pytest.raises(ValueError, match="transpose"):
        jaxedit.conv_factorization(K, (8, 8), transpose="hermitian")


def test_stylegan2_layer_factorization(ada_gen):
    lay = ada_gen._layer("b16.conv1")
    got = spectra.layer_factorization(ada_gen, "b16.conv1", k=4)
    w = np.asarray(lay.weight[...], np.float64)
    m = np.asarray(lay.affine.weight[...], np.float64)
    want = jaxedit.conv_factorization(w, (16, 16), k=4, affine=m, method="parseval")
    np.testing.assert_allclose(got.eigenvalues, want.eigenvalues, rtol=1e-9)
    np.testing.assert_allclose(got.directions, want.directions, atol=1e-9)
    assert got.directions.shape == (4, 32)


def test_cli_sefa_edit_spectrum(tmp_path, ada_pkl, capsys):
    from PIL import Image

    from jaxedit.cli import main
    dirs = tmp_path / "s.npz"
    assert main(["sefa", str(ada_pkl), "--layers", "2-5", "--k", "4", "--out", str(dirs)]) == 0
    data = np.load(dirs)
    assert data["directions"].shape == (1, 4, 32) and data["slots"].tolist() == [2, 3, 4, 5]
    png = tmp_path / "e.png"
    assert main(["edit", str(ada_pkl), "--directions", str(dirs), "--seeds", "0-1",
                 "--alphas", "-3:3:3", "--out", str(png)]) == 0
    assert np.asarray(Image.open(png)).shape == (64, 96, 3)
    capsys.readouterr()
    assert main(["spectrum", str(ada_pkl), "--layer", "b16.conv1", "--top-k", "5"]) == 0
    assert "5 singular values" in capsys.readouterr().out
    assert main(["evaluate", str(ada_pkl), "--directions", str(dirs), "--seeds", "0-1"]) == 2
    assert "--region" in capsys.readouterr().err
