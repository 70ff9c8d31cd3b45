"""Editing in Style (jaxedit.eis): spherical k-means, catalogs, contributions, queries, transfer,
CIELAB error, the CLI. References are written out here (NumPy / plain Python / scikit-learn)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxedit
from jaxedit import eis
from jaxedit.sampling import Compute, Sampling

# ------------------------------------------------------------------------------------------------
# helpers (independent references)
# ------------------------------------------------------------------------------------------------


def _vmf_data(seed, k=5, d=16, kappa=200.0, per=120, scale=True):
    from scipy.stats import vonmises_fisher

    rng = np.random.default_rng(seed)
    mus = rng.standard_normal((k, d))
    mus /= np.linalg.norm(mus, axis=1, keepdims=True)
    X = np.concatenate(
        [vonmises_fisher(mus[j], kappa).rvs(per, random_state=rng) for j in range(k)]
    )
    labels = np.repeat(np.arange(k), per)
    if scale:  # row norms must not matter
        X = X * rng.uniform(0.5, 3.0, (len(X), 1))
    perm = rng.permutation(len(X))
    return X[perm], labels[perm], mus


def _spherical_objective(Xn, labels, k):
    """Best spherical objective of a partition: Σ_i (1 − x_i·ĉ_l) with ĉ the normalized member
    sums, = N − Σ_k ‖Σ_{i∈k} x_i‖."""
    return float(len(Xn) - sum(np.linalg.norm(Xn[labels == j].sum(0)) for j in range(k)))


def _reference_query(m, rho, eps):
    """The reference's StyleInterpolator._get_q, written out with NumPy."""
    order = np.argsort(-m, kind="stable")
    cost = np.cumsum(1 - m[order])
    q = np.zeros_like(m)
    q[order[cost < eps]] = 1
    q *= m > rho
    return q


def _lab_scalar(rgb, transposed):
    """CIELAB of one sRGB colour in [0, 1], plain Python, shifted as the reference (L·2.55,
    a + 128, b + 128). ``transposed``: the reference's ``rgb @ M`` (row vector times the matrix)."""
    M = [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
    lin = [100 * (((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92) for c in rgb]
    if transposed:
        xyz = [sum(lin[i] * M[i][j] for i in range(3)) for j in range(3)]
    else:
        xyz = [sum(M[j][i] * lin[i] for i in range(3)) for j in range(3)]
    xyz = [xyz[0] / 95.047, xyz[1] / 100.0, xyz[2] / 108.883]
    f = [v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in xyz]
    return (2.55 * (116 * f[1] - 16), 500 * (f[0] - f[1]) + 128, 200 * (f[1] - f[2]) + 128)


# ------------------------------------------------------------------------------------------------
# spherical k-means
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [None, 64])
def test_kmeans_recovers_vmf_clusters(batch_size):
    from sklearn.metrics import adjusted_rand_score

    X, truth, mus = _vmf_data(0)
    res = eis.spherical_kmeans(X, 5, jax.random.key(1), batch_size=batch_size)
    assert res.centroids.shape == (5, 16) and res.labels.shape == (len(X),)
    assert adjusted_rand_score(truth, np.asarray(res.labels)) >= 0.95
    C = np.asarray(res.centroids)
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1, atol=1e-12)
    # every true mean direction is matched by a centroid
    assert np.min(np.max(mus @ C.T, axis=1)) > 0.99
    # labels are the most similar centroid, objective is Σ (1 − cos)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = Xn @ C.T
    np.testing.assert_array_equal(np.asarray(res.labels), cos.argmax(1))
    np.testing.assert_allclose(res.objective, np.sum(1 - cos.max(1)), rtol=1e-10)
    assert res.converged


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kmeans_objective_not_worse_than_sklearn(seed):
    from sklearn.cluster import KMeans

    X, _, _ = _vmf_data(seed, k=6, d=8, kappa=100.0, per=100)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    sk = KMeans(6, n_init=3, random_state=seed).fit(Xn)
    sk_obj = _spherical_objective(Xn, sk.labels_, 6)
    ours = eis.spherical_kmeans(X, 6, jax.random.key(seed))
    assert ours.objective <= sk_obj * (1 + 1e-9)
    # started from scikit-learn's (normalized) centroids, spherical Lloyd can only improve them,
    # even on heavily overlapping clusters
    Xh, _, _ = _vmf_data(seed, k=6, d=8, kappa=8.0, per=100)
    Xhn = Xh / np.linalg.norm(Xh, axis=1, keepdims=True)
    skh = KMeans(6, n_init=3, random_state=seed).fit(Xhn)
    polished = eis.spherical_kmeans(Xh, 6, init=skh.cluster_centers_)
    assert polished.objective <= _spherical_objective(Xhn, skh.labels_, 6) * (1 + 1e-9)


def test_minibatch_close_to_full_batch_on_diffuse_clusters():
    """Diffuse clusters (rows' cosine to their mean ~0.35): mini-batch steps must still move the
    centroids to the full-batch solution. (Re-normalizing the running mean itself, as the
    reference does, over-weights the old centroid and ends 2-4 % worse with centroids off by
    up to 45 degrees on these data.)"""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        mus = rng.standard_normal((5, 64))
        mus /= np.linalg.norm(mus, axis=1, keepdims=True)
        X = mus[rng.integers(0, 5, 6000)] * 3.0 + rng.standard_normal((6000, 64))
        full = eis.spherical_kmeans(X, 5, 0)
        mb = eis.spherical_kmeans(X, 5, 0, batch_size=100)
        assert mb.objective <= full.objective * 1.005
        cos = np.asarray(mb.centroids) @ np.asarray(full.centroids).T
        assert cos.max(1).min() >= 0.98


def test_import_spellings_and_one_home():
    """``jaxedit.eis`` is the package ``jaxedit.methods.eis``, reachable under both spellings;
    the CIELAB metrics live in ``jaxedit.metrics`` and the resampling in ``jaxedit._resample``."""
    import importlib

    import jaxedit.eis
    import jaxedit.methods.eis
    from jaxedit import _resample, metrics
    from jaxedit.eis import Catalog, resize_masks

    assert jaxedit.eis is eis is jaxedit.methods.eis is importlib.import_module("jaxedit.eis")
    assert Catalog is eis.Catalog and resize_masks is _resample.resize_masks
    for name in ("rgb_to_lab", "lab_squared_error", "in_out_mse", "lab_locality"):
        assert getattr(eis, name) is getattr(metrics, name)
    assert eis.KMeansConvergenceWarning is jaxedit.errors.KMeansConvergenceWarning
    assert all(hasattr(eis, n) for n in eis.__all__)


def test_kmeans_deterministic_no_recompile(monkeypatch):
    X, _, _ = _vmf_data(3, per=40)
    a = eis.spherical_kmeans(X, 5, jax.random.key(7), n_init=2)
    b = eis.spherical_kmeans(X, 5, jax.random.key(7), n_init=2)
    np.testing.assert_array_equal(np.asarray(a.centroids), np.asarray(b.centroids))
    np.testing.assert_array_equal(np.asarray(a.labels), np.asarray(b.labels))
    assert a.objective == b.objective
    assert len(a.restart_objectives) == 2 and a.objective == min(a.restart_objectives)
    # restarts and calls with new keys / new data of the same shape compile the core once
    eis.spherical_kmeans(X, 5, jax.random.key(0), n_init=3)
    size = eis.compiled_programs()["kmeans_restart"]
    assert size >= 1
    eis.spherical_kmeans(X[::-1] * 2, 5, jax.random.key(1), n_init=3)
    eis.spherical_kmeans(X + 0.01, 5, 5, n_init=3)
    eis.spherical_kmeans(X - 0.01, 5, 6, n_init=3)
    assert eis.compiled_programs()["kmeans_restart"] == size


def test_kmeans_bad_input():
    X, _, _ = _vmf_data(0, per=10)
    Xbad = X.copy()
    Xbad[3, 2] = np.nan
    with pytest.raises(ValueError, match="X contains 1 non-finite"):
        eis.spherical_kmeans(Xbad, 3)
    Xz = X.copy()
    Xz[4] = 0
    with pytest.raises(ValueError, match="all-zero row"):
        eis.spherical_kmeans(Xz, 3)
    with pytest.raises(ValueError, match="k must be"):
        eis.spherical_kmeans(X, len(X) + 1)
    with pytest.raises(ValueError, match="batch_size"):
        eis.spherical_kmeans(X, 3, batch_size=0)
    with pytest.raises(ValueError, match="2-D"):
        eis.spherical_kmeans(X[0], 3)
    with pytest.raises(ValueError, match="init centroids"):
        eis.spherical_kmeans(X, 3, init=np.ones((2, X.shape[1])))


def test_kmeans_reports_nonconvergence():
    X, _, _ = _vmf_data(5, k=6, d=8, kappa=5.0, per=60)
    with pytest.warns(eis.KMeansConvergenceWarning, match="max_iter"):
        res = eis.spherical_kmeans(X, 6, jax.random.key(0), max_iter=1, n_init=1)
    assert not res.converged


# ------------------------------------------------------------------------------------------------
# query
# ------------------------------------------------------------------------------------------------


def test_query_matches_reference_rule():
    rng = np.random.default_rng(0)
    for rho, eps in [(0.3, 5.0), (0.0, 1e9), (0.5, 0.8), (0.9, 30.0)]:
        m = rng.uniform(0, 1, 64)
        q = np.asarray(eis.query(m, rho, eps, mode="reference"))
        np.testing.assert_array_equal(q, _reference_query(m, rho, eps))
        # jitted (m traced) gives the same
        qj = jax.jit(lambda v: eis.query(v, rho, eps))(m)
        np.testing.assert_array_equal(np.asarray(qj), q)
        # ratio mode: rho is the in/out ratio M / (1 − M)
        r = np.asarray(eis.query(m, rho, eps, mode="ratio"))
        ref = _reference_query(m, -np.inf, eps) * (m / (1 - m) > rho)
        np.testing.assert_array_equal(r, ref)
        np.testing.assert_array_equal(r, _reference_query(m, rho / (1 + rho), eps))
    m = rng.uniform(0, 1, 32)
    s = np.asarray(eis.query(m, mode="simultaneous", lam=2.5))
    np.testing.assert_allclose(s, np.minimum(1, 2.5 * m), rtol=0, atol=0)
    assert set(np.unique(q)) <= {0.0, 1.0}


def test_query_per_layer():
    rng = np.random.default_rng(1)
    ms = {"a": rng.uniform(0, 1, 16), "b": rng.uniform(0, 1, 8), "c": rng.uniform(0, 1, 24)}
    rhos, epss = [0.1, 0.5, 0.3], [4.0, 1.0, 9.0]
    out = eis.query(ms, rhos, epss)
    for (name, m), rho, eps in zip(ms.items(), rhos, epss):
        np.testing.assert_array_equal(np.asarray(out[name]), _reference_query(m, rho, eps))
    as_map = eis.query(ms, {"a": 0.1, "b": 0.5, "c": 0.3}, 4.0)
    for name, rho in zip(ms, rhos):
        np.testing.assert_array_equal(
            np.asarray(as_map[name]), _reference_query(ms[name], rho, 4.0)
        )
    as_list = eis.query(list(ms.values()), 0.2, epss)
    for m, eps, q in zip(ms.values(), epss, as_list):
        np.testing.assert_array_equal(np.asarray(q), _reference_query(m, 0.2, eps))
    lam = eis.query(ms, mode="simultaneous", lam=[1.0, 2.0, 3.0])
    for (name, m), l in zip(ms.items(), [1.0, 2.0, 3.0]):
        np.testing.assert_allclose(np.asarray(lam[name]), np.minimum(1, l * m))
    with pytest.raises(ValueError, match="rho has 2 values for 3 layers"):
        eis.query(ms, [0.1, 0.2], 1.0)
    with pytest.raises(ValueError, match="needs eps"):
        eis.query(ms["a"], 0.1)
    with pytest.raises(ValueError, match="m contains 1 non-finite"):
        eis.query(np.array([0.1, np.nan]), 0.1, 1.0)
    with pytest.raises(ValueError, match="mode must be"):
        eis.query(ms["a"], 0.1, 1.0, mode="greedy")


# ------------------------------------------------------------------------------------------------
# contributions
# ------------------------------------------------------------------------------------------------


def _hand_case():
    A = np.zeros((1, 2, 2, 3))
    A[0, :, :, 0] = [[1, 2], [3, 4]]
    A[0, :, :, 1] = [[0, 1], [1, 0]]  # channel 2 stays 0: no energy
    U0 = np.zeros((4, 4))
    U0[:, 1] = 1  # column 1 of a 4x4 grid
    masks = np.stack([U0, 1 - U0])[None]  # [1, 2, 4, 4], covers the image
    return A, masks


def test_contributions_by_hand():
    A, masks = _hand_case()
    # nearest 4 -> 2 reads rows/columns 0 and 2: U0 vanishes, U1 is all ones
    M = eis.contributions_from_features({"l": A}, masks)["l"]
    np.testing.assert_allclose(np.asarray(M), [[0, 0, 0], [1, 1, 0]], atol=1e-15)
    # area averages 2x2 blocks: U0 = [[.5, 0], [.5, 0]], U1 = [[.5, 1], [.5, 1]]
    # channel 0: energies 1, 4, 9, 16 (sum 30) -> M0 = (.5 + 4.5) / 30, M1 = (.5 + 4 + 4.5 + 16) / 30
    # channel 1: energies 0, 1, 1, 0 (sum 2)   -> M0 = .5 / 2,          M1 = (1 + .5) / 2
    Ma = eis.contributions_from_features({"l": A}, masks, resize="area")["l"]
    np.testing.assert_allclose(np.asarray(Ma), [[1 / 6, 1 / 4, 0], [5 / 6, 3 / 4, 0]], atol=1e-15)
    np.testing.assert_allclose(np.asarray(Ma)[:, :2].sum(0), 1, atol=1e-15)
    # two samples: sums over samples before the ratio
    A2 = np.concatenate([A, 2 * A[:, ::-1]])  # second sample: rows flipped, energy x4
    m2 = np.concatenate([masks, masks])
    Mb = eis.contributions_from_features({"l": A2}, m2, resize="area")["l"]
    # flipped rows do not change the column masks' shares; energies add up
    np.testing.assert_allclose(np.asarray(Mb), np.asarray(Ma), atol=1e-15)
    with pytest.raises(ValueError, match="masks must be"):
        eis.contributions_from_features({"l": A}, masks[0])
    with pytest.raises(ValueError, match=r"features\['l'\]"):
        eis.contributions_from_features({"l": A[0]}, masks)
    with pytest.raises(ValueError, match="resize"):
        eis.contributions_from_features({"l": A}, masks, resize="bilinear")


def test_resize_masks_matches_torch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    m = rng.uniform(0, 1, (2, 3, 8, 8))
    for size in (4, 2, 16, 32):
        ref = F.interpolate(torch.from_numpy(m), size=(size, size), mode="nearest").numpy()
        np.testing.assert_array_equal(np.asarray(eis.resize_masks(m, size)), ref)
    for size in (4, 2, 1, 16):
        ref = F.interpolate(torch.from_numpy(m), size=(size, size), mode="area").numpy()
        np.testing.assert_allclose(np.asarray(eis.resize_masks(m, size, "area")), ref, atol=1e-14)


def test_layer_inputs_are_what_each_style_modulates(small_gen):
    """Each conv layer applied to its claimed input reproduces its output; the last ToRGB applied
    to its input completes the image."""
    from jaxedit import _ops

    gen = small_gen
    ws = gen.mapping(np.random.default_rng(0).standard_normal((2, gen.z_dim)))
    inputs = eis.layer_inputs(gen, ws, sampling=Sampling(noise_mode="none"))
    styles = gen.styles(ws)
    img, feats = gen.features(ws, noise_mode="none")
    assert list(inputs) == list(gen.layer_names)
    for name in gen.conv_layer_names:
        out = gen._layer(name)(inputs[name], styles[name], None)
        np.testing.assert_allclose(np.asarray(out), np.asarray(feats[name]), atol=1e-12)
        assert inputs[name].shape[1] == eis.input_resolution(gen, name)
    last = gen.layer_names[-1]
    state = gen.synthesis_split(ws, gen.conv_layer_names[-1], noise_mode="none")
    rgb = gen._layer(last)(inputs[last], styles[last])
    full = _ops.upsample2d(state.img, gen.config.resample_kernel) + rgb
    np.testing.assert_allclose(np.asarray(full), np.asarray(img), atol=1e-12)
    assert eis.input_source(gen, "b8.conv0") == "b4.conv1"
    assert eis.input_source(gen, "b4.conv1") == "const"


def test_contributions_on_generator(small_gen):
    """contributions() over batches (with a padded last batch) equals the formula in NumPy."""
    gen = small_gen
    rng = np.random.default_rng(1)
    ws = gen.mapping(rng.standard_normal((3, gen.z_dim)))
    masks = (rng.uniform(0, 1, (3, 3, 16, 16)) > 0.6).astype(float)
    res = eis.contributions(
        gen, ws, masks, names=["a", "b", "c"], compute=Compute(batch_size=2)
    )  # padded batch
    assert res.rows == ("a", "b", "c") and list(res) == list(gen.layer_names)
    first, last = eis.layer_inputs(gen, ws[:2]), eis.layer_inputs(gen, ws[1:])
    for name in gen.layer_names:
        A = np.concatenate([np.asarray(first[name]), np.asarray(last[name])[1:]]).astype(np.float64)
        r = A.shape[1]
        idx = np.arange(r) * 16 // r
        U = masks[:, :, idx][:, :, :, idx]
        num = np.einsum("nhwc,nkhw->kc", A**2, U)
        den = np.sum(A**2, axis=(0, 1, 2))
        np.testing.assert_allclose(np.asarray(res[name]), num / den, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        np.asarray(res.label("b")["b8.conv0"]), np.asarray(res["b8.conv0"][1])
    )


# ------------------------------------------------------------------------------------------------
# catalog
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_catalog(small_gen):
    return eis.Catalog.fit(
        small_gen, "b8.conv1", 4, seeds=range(6), key=0, compute=Compute(batch_size=2)
    )


def test_catalog_fit_predict(small_gen, small_catalog):
    gen, cat = small_gen, small_catalog
    assert cat.k == 4 and cat.resolution == 8 and cat.centroids.shape == (4, 16)
    assert cat.latents.shape == (6, gen.w_dim)  # no truncation: one w per sample
    heat = np.asarray(cat.predict(gen, cat.latents, compute=Compute(batch_size=2)))
    assert heat.shape == (6, 4, 8, 8)
    np.testing.assert_array_equal(heat.sum(1), 1)
    # the prediction is the nearest unit centroid of each pixel's feature (NumPy)
    F = np.concatenate(
        [
            np.asarray(gen.features(eis._as_ws(gen, cat.latents[i : i + 2]))[1]["b8.conv1"])
            for i in (0, 2, 4)
        ]
    ).reshape(-1, 16)
    Fn = F / np.linalg.norm(F, axis=1, keepdims=True)
    lab = (Fn @ cat.centroids.T).argmax(1).reshape(6, 8, 8)
    np.testing.assert_array_equal(heat.argmax(1), lab)
    soft = np.asarray(
        cat.predict(
            gen, cat.latents[:2], soft=True, temperature=0.05, compute=Compute(batch_size=2)
        )
    )
    np.testing.assert_allclose(soft.sum(1), 1, rtol=1e-12)
    # the k-means objective recorded equals the clustered rows' objective
    np.testing.assert_allclose(
        cat.info["objective"], np.sum(1 - (Fn @ cat.centroids.T).max(1)), rtol=1e-8
    )
    ann = cat.annotate({"top": [0, 2], "rest": 1})
    masks = np.asarray(ann.masks(gen, cat.latents[:2]))
    np.testing.assert_array_equal(masks[:, 0], heat[:2, 0] + heat[:2, 2])
    up = np.asarray(ann.masks(gen, cat.latents[:2], "top", size=16))
    np.testing.assert_array_equal(up[:, 0], masks[:, 0].repeat(2, 1).repeat(2, 2))
    down = np.asarray(ann.masks(gen, cat.latents[:2], ["rest"], size=4, resize="area"))
    np.testing.assert_allclose(down[:, 0], masks[:, 1].reshape(2, 4, 2, 4, 2).mean((2, 4)))
    # size by style layer: b8.conv0's input is 4x4
    assert ann.masks(gen, cat.latents[:2], size="b8.conv0").shape == (2, 2, 4, 4)


def test_catalog_annotate_validation(small_catalog):
    cat = small_catalog.annotate({"eyes": [3, 1, 3]})
    assert cat.annotations == {"eyes": (3, 1)} and small_catalog.annotations == {}
    assert cat.annotate({"mouth": 0}, replace=True).labels == ("mouth",)
    assert cat.without("eyes").labels == ()
    with pytest.raises(ValueError, match=r"out of range \[0, 4\)"):
        cat.annotate({"x": [4]})
    with pytest.raises(ValueError, match="label must start"):
        cat.annotate({"3": [1]})
    with pytest.raises(ValueError, match="no cluster ids"):
        cat.annotate({"x": []})
    with pytest.raises(ValueError, match="unknown label"):
        cat.without("nose")
    with pytest.raises(ValueError, match="unknown label 'nose'"):
        cat.label_masks(np.zeros((1, 4, 8, 8)), "nose")


@pytest.mark.parametrize("cutoff", [None, 2])
def test_catalog_fit_sampling_truncation(small_gen, cutoff):
    """sampling=Sampling(truncation_psi=0.7[, truncation_cutoff]) fits on the ws that NVIDIA's
    seeds map to with that truncation (z and ws computed here, not through the catalog)."""
    gen = small_gen
    sampling = Sampling(truncation_psi=0.7, truncation_cutoff=cutoff)
    cat = eis.Catalog.fit(
        gen, "b8.conv1", 3, seeds=[3, 5, 9], key=0, sampling=sampling, compute=Compute(batch_size=2)
    )
    z = np.concatenate([np.random.RandomState(s).randn(1, gen.z_dim) for s in (3, 5, 9)])
    ws = np.asarray(gen.mapping(z, None, truncation_psi=0.7, truncation_cutoff=cutoff))
    assert not np.allclose(ws, np.asarray(gen.mapping(z)))  # the truncation did something
    if cutoff is None:
        np.testing.assert_array_equal(cat.latents, ws[:, 0])  # one w per sample
        np.testing.assert_array_equal(ws, ws[:, :1].repeat(gen.num_ws, 1))
    else:
        np.testing.assert_array_equal(cat.latents, ws)
    assert cat.info["psi"] == 0.7 and cat.info["cutoff"] == cutoff
    assert cat.info["seeds"] == [3, 5, 9] and cat.info["noise_mode"] == "const"
    # the same rows are clustered as from those ws given directly (same k-means key)
    direct = eis.Catalog.fit(gen, "b8.conv1", 3, latents=ws, key=0, compute=Compute(batch_size=2))
    np.testing.assert_array_equal(direct.centroids, cat.centroids)


def test_option_objects_checked(small_gen, small_catalog):
    """sampling / compute of another type are a TypeError naming the argument; a feature pass
    without a noise key refuses noise_mode='random' (naming sampling)."""
    gen, cat = small_gen, small_catalog
    ws = cat.latents[:2]
    calls = {
        "fit": lambda **kw: eis.Catalog.fit(gen, "b8.conv1", 2, seeds=[0], **kw),
        "predict": lambda **kw: cat.predict(gen, ws, **kw),
        "masks": lambda **kw: cat.annotate({"a": 0}).masks(gen, ws, **kw),
        "contributions": lambda **kw: eis.contributions(gen, ws, cat, **kw),
        "layer_inputs": lambda **kw: eis.layer_inputs(gen, ws, **kw),
        "transfer": lambda **kw: eis.transfer(gen, ws, ws, {}, **kw),
    }
    for call in calls.values():
        with pytest.raises(TypeError, match=r"^compute must be a jaxedit.Compute, got dict$"):
            call(compute={"batch_size": 2})
        with pytest.raises(TypeError, match=r"^sampling must be a jaxedit.Sampling, got dict"):
            call(sampling={"truncation_psi": 0.7})
        with pytest.raises(TypeError, match=r"^compute must be a jaxedit.Compute, got Sampling"):
            call(compute=Sampling())
    with pytest.raises(TypeError, match=r"^compute must be a jaxedit.Compute, got dict$"):
        eis.transfer_styles(gen, ws, ws, {}, compute={"batch_size": 2})
    for name in ("fit", "predict", "masks", "contributions"):
        with pytest.raises(ValueError, match=r"sampling.noise_mode='random' needs a noise key"):
            calls[name](sampling=Sampling(noise_mode="random"))
    with pytest.raises(ValueError, match=r"sampling.noise_mode='random' needs a noise key"):
        eis.transfer(
            gen,
            ws,
            ws,
            cat.annotate({"a": 0}),
            "a",
            0.1,
            1.0,
            sampling=Sampling(noise_mode="random"),
            key=jax.random.key(0),
        )
    # where a key is taken, noise_mode and key reach the generator
    key = jax.random.key(0)
    rnd = eis.layer_inputs(gen, ws, sampling=Sampling(noise_mode="random"), key=key)
    feats = gen.features(eis._as_ws(gen, ws), noise_mode="random", key=key)[1]
    np.testing.assert_array_equal(np.asarray(rnd["b16.conv1"]), np.asarray(feats["b16.conv0"]))
    img = eis.transfer(gen, ws, ws, {}, sampling=Sampling(noise_mode="random"), key=key)
    np.testing.assert_array_equal(
        np.asarray(img),
        np.asarray(gen.synthesis(eis._as_ws(gen, ws), noise_mode="random", key=key)),
    )


def test_option_defaults_unchanged(small_gen, small_catalog):
    """compute=None is Compute(batch_size=8) (the old default) and sampling=None Sampling();
    dtype / precision reach the generator."""
    gen, cat = small_gen, small_catalog
    ws = np.concatenate([cat.latents] * 2)  # 12 samples: 8 + 4
    np.testing.assert_array_equal(
        np.asarray(cat.predict(gen, ws)),
        np.asarray(cat.predict(gen, ws, sampling=Sampling(), compute=Compute(batch_size=8))),
    )
    a = eis.contributions(gen, ws, cat)
    b = eis.contributions(gen, ws, cat, sampling=Sampling(), compute=Compute(batch_size=8))
    for name in gen.layer_names:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]))
    f32 = eis.layer_inputs(gen, ws[:2], compute=Compute(dtype=jnp.float32, precision="default"))
    assert all(v.dtype == jnp.float32 for v in f32.values())
    styles = eis.transfer_styles(gen, ws[:2], ws[:2], {}, compute=Compute(dtype=jnp.float32))
    assert all(v.dtype == jnp.float32 for v in styles.values())


def test_catalog_save_load_roundtrip(tmp_path, small_catalog):
    cat = small_catalog.annotate({"eyes": [3, 1], "mouth": [0]})
    path = tmp_path / "cat.npz"
    cat.save(path)
    back = eis.Catalog.load(path)
    assert back.layer == cat.layer and back.resolution == cat.resolution
    assert back.annotations == cat.annotations
    np.testing.assert_array_equal(back.centroids, cat.centroids)
    np.testing.assert_array_equal(back.latents, cat.latents)
    assert back.info["seeds"] == list(range(6)) and back.info["objective"] == cat.info["objective"]
    # damaged files: one ValueError naming the file and the key
    data = dict(np.load(path))
    for key, value, msg in [
        ("centroids", data["centroids"] * 2, "unit vectors"),
        ("meta", "not json", "not valid JSON"),
        ("latents", data["latents"] * np.nan, "non-finite"),
    ]:
        bad = tmp_path / f"bad_{key}.npz"
        np.savez(bad, **{**data, key: value})
        with pytest.raises(ValueError, match=f"bad_{key}.npz.*{msg}"):
            eis.Catalog.load(bad)
    meta = json.loads(str(data["meta"]))
    meta["annotations"] = {"eyes": [9]}
    np.savez(tmp_path / "bad_ann.npz", **{**data, "meta": json.dumps(meta)})
    with pytest.raises(ValueError, match="bad_ann.npz.*annotations.*out of range"):
        eis.Catalog.load(tmp_path / "bad_ann.npz")
    np.savez(tmp_path / "nokey.npz", centroids=data["centroids"])
    with pytest.raises(ValueError, match="nokey.npz.*missing key.*meta"):
        eis.Catalog.load(tmp_path / "nokey.npz")


def test_catalog_checks(small_gen, ada_gen, small_catalog):
    with pytest.raises(ValueError, match="unknown layer"):
        eis.Catalog.fit(small_gen, "b8.torgb", 3, seeds=[0])
    with pytest.raises(ValueError, match="exactly one of seeds or latents"):
        eis.Catalog.fit(small_gen, "b8.conv1", 3)
    with pytest.raises(ValueError, match="max_points_bytes"):
        eis.Catalog.fit(small_gen, "b16.conv1", 3, seeds=range(4), max_points_bytes=1000)
    with pytest.raises(ValueError, match="another generator"):
        small_catalog.predict(ada_gen, np.zeros((1, ada_gen.w_dim)))
    with pytest.raises(ValueError, match="latents must be ws"):
        small_catalog.predict(small_gen, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="latents contains .* non-finite"):
        small_catalog.predict(small_gen, np.full((1, small_gen.w_dim), np.nan))


# ------------------------------------------------------------------------------------------------
# transfer
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [True, False])
def test_transfer_endpoints_exact(small_gen, jit):
    gen = small_gen
    rng = np.random.default_rng(2)
    ws_t = gen.mapping(rng.standard_normal((2, gen.z_dim)))
    ws_r = gen.mapping(rng.standard_normal((2, gen.z_dim)))
    C = {n: gen.styles(ws_t)[n].shape[1] for n in gen.layer_names}
    zero = {n: np.zeros(c) for n, c in C.items()}
    one = {n: np.ones(c) for n, c in C.items()}
    out0 = eis.transfer(gen, ws_t, ws_r, zero, jit=jit)
    out1 = eis.transfer(gen, ws_t, ws_r, one, jit=jit)
    assert out0.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(
        np.asarray(out0), np.asarray(gen.synthesis_from_styles(gen.styles(ws_t), jit=jit))
    )
    np.testing.assert_array_equal(
        np.asarray(out1), np.asarray(gen.synthesis_from_styles(gen.styles(ws_r), jit=jit))
    )
    np.testing.assert_allclose(np.asarray(out0), np.asarray(gen.synthesis(ws_t)), atol=1e-12)
    np.testing.assert_allclose(np.asarray(out1), np.asarray(gen.synthesis(ws_r)), atol=1e-12)
    assert not np.allclose(np.asarray(out0), np.asarray(out1))
    # one reference broadcast over all targets; image i mixes target i with the reference
    b = eis.transfer(gen, ws_t, ws_r[1:2], one, jit=jit)
    np.testing.assert_array_equal(np.asarray(b), np.repeat(np.asarray(out1[1:2]), 2, axis=0))


def test_transfer_styles_mixes_only_selected_channels(small_gen):
    gen = small_gen
    rng = np.random.default_rng(3)
    ws_t = gen.mapping(rng.standard_normal((2, gen.z_dim)))
    ws_r = gen.mapping(rng.standard_normal((2, gen.z_dim)))
    q = np.zeros(16)
    q[[1, 5]] = 1
    q[7] = 0.25
    s = eis.transfer_styles(gen, ws_t, ws_r, {"b8.conv1": q})
    st, sr = gen.styles(ws_t), gen.styles(ws_r)
    for name in gen.layer_names:
        want = (
            np.asarray(st[name])
            if name != "b8.conv1"
            else ((1 - q) * np.asarray(st[name]) + q * np.asarray(sr[name]))
        )
        np.testing.assert_allclose(np.asarray(s[name]), want, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="unknown layers"):
        eis.transfer(gen, ws_t, ws_r, {"b9.conv1": q})
    with pytest.raises(ValueError, match=r"qs\['b8.conv1'\] must be \[16\]"):
        eis.transfer(gen, ws_t, ws_r, {"b8.conv1": q[:4]})
    with pytest.raises(ValueError, match="equal N"):
        eis.transfer(gen, ws_t, np.concatenate([ws_r, ws_r, ws_r]), {"b8.conv1": q})


def test_transfer_from_catalog_and_contributions(small_gen, small_catalog):
    gen = small_gen
    cat = small_catalog.annotate({"part": [0, 1]})
    contribs = eis.contributions(gen, None, cat, compute=Compute(batch_size=2))
    # per-cluster rows cover the image; a label is the sum of its clusters' rows
    for name in gen.layer_names:
        np.testing.assert_allclose(
            np.asarray(contribs[name]).sum(0)[np.asarray(contribs[name]).sum(0) > 0], 1, rtol=1e-12
        )
    by_label = eis.contributions(gen, None, cat, labels="part", compute=Compute(batch_size=2))
    for name in gen.layer_names:
        np.testing.assert_allclose(
            np.asarray(by_label[name][0]), np.asarray(contribs.label("part")[name]), atol=1e-13
        )
    rng = np.random.default_rng(4)
    ws_t = gen.mapping(rng.standard_normal((2, gen.z_dim)))
    ws_r = gen.mapping(rng.standard_normal((2, gen.z_dim)))
    qs = eis.label_queries(contribs, "part", 0.2, 6.0, layers=["b8.conv1", "b16.conv0"])
    assert set(qs) == {"b8.conv1", "b16.conv0"}
    a = eis.transfer(gen, ws_t, ws_r, contribs, "part", 0.2, 6.0, layers=["b8.conv1", "b16.conv0"])
    np.testing.assert_array_equal(np.asarray(a), np.asarray(eis.transfer(gen, ws_t, ws_r, qs)))
    b = eis.transfer(gen, ws_t, ws_r, cat, "part", mode="simultaneous", lam=1.5)  # its own M
    c = eis.transfer(gen, ws_t, ws_r, contribs, "part", mode="simultaneous", lam=1.5)
    np.testing.assert_allclose(np.asarray(b), np.asarray(c), atol=1e-12)
    with pytest.raises(ValueError, match="needs a label"):
        eis.transfer(gen, ws_t, ws_r, contribs)


# ------------------------------------------------------------------------------------------------
# CIELAB error and In/Out-MSE
# ------------------------------------------------------------------------------------------------

COLOURS = [
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
    (1.0, 1.0, 1.0),
    (0.0, 0.0, 0.0),
    (0.5, 0.5, 0.5),
    (0.2, 0.6, 0.9),
    (0.03, 0.01, 0.02),
]
# published sRGB (D65) -> CIELAB values (L, a, b) for the first six colours
PUBLISHED = [
    (53.24, 80.09, 67.20),
    (87.73, -86.18, 83.18),
    (32.30, 79.19, -107.86),
    (100.0, 0.0, 0.0),
    (0.0, 0.0, 0.0),
    (53.39, 0.0, 0.0),
]


@pytest.mark.parametrize("parity", [False, True])
def test_lab_hand_checked_colours(parity):
    rgb = np.asarray(COLOURS)
    lab = np.asarray(eis.rgb_to_lab(rgb, parity=parity, value_range=(0, 1)))
    want = np.asarray([_lab_scalar(c, transposed=parity) for c in COLOURS])
    np.testing.assert_allclose(lab, want, rtol=0, atol=1e-9)
    if not parity:
        unshift = np.asarray(PUBLISHED) * [2.55, 1, 1] + [0, 128, 128]
        np.testing.assert_allclose(lab[:6], unshift, rtol=0, atol=0.05 * 2.55)
    else:  # the transposed matrix tints pure colours and keeps white only approximately white
        assert abs(lab[0, 1] - 128 - 80.09) > 20
    # error map: mean over L, a, b of (Δ / 255)²; [-1, 1] input by default
    a = rgb.reshape(2, 2, 2, 3) * 2 - 1
    b = a[::-1]
    err = np.asarray(eis.lab_squared_error(a, b, parity))
    wa = want.reshape(2, 2, 2, 3)
    np.testing.assert_allclose(err, (((wa - wa[::-1]) / 255) ** 2).sum(-1) / 3, atol=1e-12)
    assert err.shape == (2, 2, 2)


def test_in_out_mse_by_hand():
    e = np.array([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [8.0, 0.0]]])
    region = np.array([[True, False], [False, False]])
    r = eis.in_out_mse(e, region)
    assert r["in_mse"] == pytest.approx((1 + 0) / 2)
    assert r["out_mse"] == pytest.approx((2 + 3 + 4 + 8) / 6)
    assert r["in_per_sample"] == pytest.approx([1.0, 0.0])
    assert r["out_per_sample"] == pytest.approx([3.0, 8 / 3])
    up = eis.in_out_mse(np.repeat(np.repeat(e, 2, 1), 2, 2), region)  # region resized
    assert up["in_mse"] == pytest.approx(r["in_mse"]) and up["out_mse"] == pytest.approx(
        r["out_mse"]
    )
    with pytest.raises(ValueError, match="empty"):
        eis.in_out_mse(e, np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="a contains 12 non-finite"):
        eis.lab_squared_error(np.full((1, 2, 2, 3), np.nan), np.zeros((1, 2, 2, 3)))


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


def test_cli_catalog_annotate_transfer(tmp_path, ada_pkl, capsys, monkeypatch):
    from PIL import Image

    from jaxedit.cli import main

    monkeypatch.chdir(tmp_path)
    # default output names say what they hold
    args = [
        "eis",
        "catalog",
        str(ada_pkl),
        "--layer",
        "b16.conv1",
        "--k",
        "3",
        "--seeds",
        "0-3",
        "--n-init",
        "1",
        "--batch-size",
        "2",
        "--preview-samples",
        "2",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    cat, png = (
        tmp_path / "eis_catalog_b16.conv1_k3.npz",
        tmp_path / "eis_catalog_b16.conv1_k3_clusters.png",
    )
    assert "objective" in out and cat.exists() and png.exists()
    sheet = np.asarray(Image.open(png))
    assert sheet.shape == (4 * 64, 64 + 2 * 64, 3)  # 32 px cells shown at 64 px
    before = cat.read_bytes()
    assert main(args) == 2  # no overwrite without --force
    assert "already exists" in capsys.readouterr().err and cat.read_bytes() == before
    # an existing preview alone also blocks the run, before any work, and nothing is written
    other = tmp_path / "c2.npz"
    (tmp_path / "c2_clusters.png").write_bytes(b"keep")
    assert main(args + ["--out", str(other)]) == 2
    assert not other.exists() and (tmp_path / "c2_clusters.png").read_bytes() == b"keep"
    assert main(args + ["--kmeans-seed", "1", "--force"]) == 0  # --force replaces both
    capsys.readouterr()
    assert png.read_bytes() != b"" and eis.Catalog.load(cat).k == 3
    assert main(["eis", "annotate", str(cat), "eyes=0,2", "mouth=1"]) == 0
    assert eis.Catalog.load(cat).annotations == {"eyes": (0, 2), "mouth": (1,)}
    other = tmp_path / "other.npz"
    assert main(["eis", "annotate", str(cat), "--remove", "mouth", "--out", str(other)]) == 0
    assert eis.Catalog.load(other).labels == ("eyes",)
    assert eis.Catalog.load(cat).labels == ("eyes", "mouth")
    assert main(["eis", "annotate", str(cat), "nose=1", "--out", str(other)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["eis", "annotate", str(cat), "nose=7"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["eis", "annotate", str(cat)]) == 0  # lists the labels
    assert "eyes = 0,2" in capsys.readouterr().out
    js = tmp_path / "m.json"
    assert (
        main(
            [
                "eis",
                "transfer",
                str(ada_pkl),
                "--catalog",
                str(cat),
                "--label",
                "eyes",
                "--target-seeds",
                "0-1",
                "--reference-seeds",
                "5",
                "--batch-size",
                "2",
                "--eps",
                "20",
                "--json",
                str(js),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "In-MSE" in out and "Out-MSE" in out
    grid = tmp_path / "eis_transfer_eyes.png"
    img = np.asarray(Image.open(grid))
    assert img.shape == (3 * 32, 2 * 32, 3)
    doc = json.loads(js.read_text())
    assert len(doc["pairs"]) == 2 and doc["label"] == "eyes"
    assert (
        main(
            [
                "eis",
                "transfer",
                str(ada_pkl),
                "--catalog",
                str(cat),
                "--label",
                "hair",
                "--out",
                str(tmp_path / "g2.png"),
            ]
        )
        == 2
    )
    assert "hair" in capsys.readouterr().err
    assert (
        main(
            [
                "eis",
                "catalog",
                str(ada_pkl),
                "--layer",
                "b16.torgb",
                "--out",
                str(tmp_path / "c3.npz"),
            ]
        )
        == 2
    )
    assert "conv layer" in capsys.readouterr().err


def test_cli_eis_help(capsys):
    from jaxedit.cli import build_parser

    p = build_parser()
    for cmd in ("catalog", "annotate", "transfer"):
        with pytest.raises(SystemExit):
            p.parse_args(["eis", cmd, "--help"])
        text = capsys.readouterr().out
        assert "--" in text
    sub = [a for a in p._actions if a.dest == "command"][0].choices["eis"]
    for parser in [a for a in sub._actions if a.dest == "eis_command"][0].choices.values():
        for action in parser._actions:
            if action.dest != "help":
                assert action.help, f"{parser.prog} {action.dest} has no help text"


# ------------------------------------------------------------------------------------------------
# float32 session: the public defaults
# ------------------------------------------------------------------------------------------------


@pytest.mark.float32
def test_float32_defaults(small_gen):
    from sklearn.metrics import adjusted_rand_score

    X, truth, _ = _vmf_data(0)
    res = eis.spherical_kmeans(X.astype(np.float32), 5, jax.random.key(1))
    assert res.centroids.dtype == jnp.float32
    assert adjusted_rand_score(truth, np.asarray(res.labels)) >= 0.95
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    C = np.asarray(res.centroids, np.float64)
    np.testing.assert_allclose(res.objective, np.sum(1 - (Xn @ C.T).max(1)), rtol=1e-4)
    m = np.random.default_rng(0).uniform(0, 1, 64).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(eis.query(m, 0.3, 5.0)), _reference_query(m, 0.3, 5.0))
    A, masks = _hand_case()
    M = eis.contributions_from_features(
        {"l": A.astype(np.float32)}, masks.astype(np.float32), resize="area"
    )["l"]
    np.testing.assert_allclose(np.asarray(M), [[1 / 6, 1 / 4, 0], [5 / 6, 3 / 4, 0]], atol=1e-6)
    gen = small_gen
    rng = np.random.default_rng(2)
    ws_t = gen.mapping(rng.standard_normal((2, gen.z_dim)))
    ws_r = gen.mapping(rng.standard_normal((2, gen.z_dim)))
    one = {n: np.ones(s.shape[1], np.float32) for n, s in gen.styles(ws_t).items()}
    out1 = eis.transfer(gen, ws_t, ws_r, one)
    assert out1.dtype == jnp.float32
    np.testing.assert_array_equal(
        np.asarray(out1), np.asarray(gen.synthesis_from_styles(gen.styles(ws_r)))
    )
    rgb = np.asarray(COLOURS, np.float32)
    lab = np.asarray(eis.rgb_to_lab(rgb, value_range=(0, 1)))
    want = np.asarray([_lab_scalar(c, transposed=False) for c in COLOURS])
    np.testing.assert_allclose(lab, want, atol=2e-3)
    cat = eis.Catalog.fit(gen, "b8.conv1", 3, seeds=range(3), key=0, compute=Compute(batch_size=3))
    heat = np.asarray(cat.predict(gen, cat.latents))
    np.testing.assert_array_equal(heat.sum(1), 1)
    contribs = eis.contributions(gen, None, cat, compute=Compute(batch_size=3))
    tot = np.asarray(contribs["b8.conv1"]).sum(0)
    np.testing.assert_allclose(tot, 1, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# toyfaces (the trained 64 px model with known part masks; runs once jaxedit.toyfaces exists)
# ------------------------------------------------------------------------------------------------


def _toyfaces_setup(n):
    """The toyfaces model, n latents, their ws and the ground-truth eyes mask ``[n, 1, 64, 64]``
    (``eyes`` = the union of the parts in ``toyfaces.GROUPS["eyes"]``: left_eye, right_eye)."""
    tf = pytest.importorskip("jaxedit.toyfaces")
    gen = jaxedit.default_generator()
    z = np.asarray(tf.sample_z(0, n))
    ws = gen.mapping(z)
    parts = tf.part_masks(tf.factors_from_z(z))  # {part: [N, 64, 64] bool}
    eyes = np.any(np.stack([np.asarray(parts[p], bool) for p in tf.GROUPS["eyes"]]), axis=0)
    return tf, gen, ws, ["eyes"], eyes[:, None].astype(np.float64)


def _eyes_locality(gen, ws, masks, names, qs_source, **query):
    i_eyes = names.index("eyes")
    t, r = ws[:8], ws[8:16]
    edited = eis.transfer(gen, t, r, qs_source, "eyes", **query)
    original = gen.synthesis(t)
    region = np.maximum(masks[:8, i_eyes], masks[8:16, i_eyes])  # eyes of target or reference
    return eis.lab_locality(original, edited, region)


def _ground_truth_eyes_check():
    tf, gen, ws, names, masks = _toyfaces_setup(48)
    contribs = eis.contributions(gen, ws[16:], masks[16:], names=names)
    res = _eyes_locality(gen, ws, masks, names, contribs, rho=1.0, eps=20.0, mode="ratio")
    assert res["in_mse"] > 0, f"no channel was transferred: {res}"
    assert res["out_mse"] / res["in_mse"] <= 0.2, res


def test_toyfaces_eyes_transfer_is_local_ground_truth_masks():
    """Contributions from the ground-truth part masks (catalog = the renderer's parts): the
    eyes of reference i moved onto target i change the eyes region (of either) far more than the
    rest (CIELAB Out-MSE / In-MSE <= 0.2)."""
    _ground_truth_eyes_check()


@pytest.mark.float32
def test_toyfaces_eyes_transfer_is_local_float32():
    """The same with the users' default dtype (x64 off)."""
    _ground_truth_eyes_check()


@pytest.mark.slow
def test_toyfaces_eyes_transfer_is_local_kmeans_catalog():
    """Catalog from spherical k-means at b32.conv1; clusters annotated 'eyes' when most of their
    pixels fall inside the ground-truth eyes mask."""
    tf, gen, ws, names, masks = _toyfaces_setup(48)
    cat = eis.Catalog.fit(gen, "b32.conv1", 12, latents=ws[16:], key=0)
    heat = np.asarray(cat.predict(gen, ws[16:]))  # [N, K, 32, 32]
    eyes = np.asarray(eis.resize_masks(masks[16:, names.index("eyes")], 32, "area"))
    inside = (heat * eyes[:, None]).sum((0, 2, 3)) / np.maximum(heat.sum((0, 2, 3)), 1)
    ids = [int(i) for i in np.nonzero(inside > 0.5)[0]]
    assert ids, f"no cluster lies mostly inside the eyes: {inside}"
    cat = cat.annotate({"eyes": ids})
    res = _eyes_locality(
        gen, ws, masks, names, eis.contributions(gen, None, cat), rho=1.0, eps=20.0, mode="ratio"
    )
    assert res["in_mse"] > 0, f"no channel was transferred: {res}"
    assert res["out_mse"] / res["in_mse"] <= 0.2, res
