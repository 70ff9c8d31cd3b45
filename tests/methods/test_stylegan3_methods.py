"""Every method on StyleGAN3 (the tiny NVIDIA config-T pickle, 32 px, w_dim 32, 16 W+ slots),
against independent references: the checkpoint's own tensors (SeFa, in NumPy), central finite
differences of the synthesis and the fixture's W+ JVP probes (Jacobians), SciPy's ``eigh(A, B)``
on moments summed here in NumPy (ReSeFa, region moments), hand-moved W+ slots (editing),
margins cut by hand (Editing in Style, PandA).

One generator for the module; few samples on an 8 x 8 Jacobian grid (each new XLA program of the
StyleGAN3 synthesis compiles in tens of seconds on a loaded CPU).
"""

import numpy as np
import pytest
import scipy.linalg as sl
from conftest import fixture_path

import jaxedit
from converters import _pickle
from converters.stylegan2 import nvidia as sg2_nvidia
from jaxedit import eis, panda
from jaxedit.methods import sefa as sefa_mod

R8 = jaxedit.OutputSpec(8)  # Jacobian rows on an 8 x 8 grid (nearest: pixel 4i, 4j)
EYES = "ffhq/eyes"


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _abs_cos(a, b):
    a = np.asarray(a) / np.linalg.norm(a, axis=-1, keepdims=True)
    b = np.asarray(b) / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.abs(np.sum(a * b, axis=-1))


@pytest.fixture(scope="module")
def gen():
    return jaxedit.load_generator(fixture_path("stylegan3_t_tiny.pkl"))


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(fixture_path("stylegan3_t_tiny_ref.npz")))


@pytest.fixture(scope="module")
def tensors():
    """The pickle's tensors by NVIDIA name (torch layouts), read without the model code."""
    snap = _pickle.load_pickle(fixture_path("stylegan3_t_tiny.pkl"))
    return sg2_nvidia.flatten_network(snap["G_ema"])[0]


@pytest.fixture(scope="module")
def ws(ref):
    return np.asarray(ref["ws_psi10"][:2])


@pytest.fixture(scope="module")
def J(gen, ws):
    """W Jacobians of both samples on the 8 x 8 grid: [2, 8, 8, 3, 32]."""
    return np.asarray(jaxedit.jacobian(gen, ws, space="w", output=R8))


def _moments_np(J, mask):
    """M_f, M_b of Jacobians [N, H, W, C, D] and a mask [H, W]: explicit NumPy sums."""
    n, h, w, c, d = J.shape
    rows = np.repeat(mask.reshape(-1), c)
    J2 = J.reshape(n, h * w * c, d)
    mf = sum(j[rows].T @ j[rows] for j in J2) / (rows.sum() * n)
    mb = sum(j[~rows].T @ j[~rows] for j in J2) / ((~rows).sum() * n)
    return mf, mb


def _scipy_top(a, b, k):
    w, v = sl.eigh(a, b)
    return w[::-1][:k], v[:, ::-1][:, :k].T


# ---- the protocol members the methods use -------------------------------------------------------
def test_protocol_members(gen, tensors):
    names = gen.layer_names
    assert gen.slot_layers == names and len(names) == gen.num_ws == 16
    assert gen.modulated_layers == names[1:]
    assert gen.style_input("L0_36_32") == "input" and gen.style_input("L14_32_3") == "L13_32_16"
    with pytest.raises(ValueError, match="scales no channels"):
        gen.style_input("input")
    # margins: the image spans `sampling_rate` pixels (16 of 36 at rate 16, 32 of 52 at rate 32)
    assert gen.feature_margin("input") == 10 and gen.feature_margin("L5_52_32") == 10
    assert gen.feature_margin("L13_32_16") == 0
    assert gen.feature_shape("L9_52_27") == (52, 52, 27)
    assert gen.feature_shape("input") == (36, 36, 32)
    for name in names:  # the raw affine, [w_dim, C_in] = the pickle's [C_in, w_dim] transposed
        np.testing.assert_array_equal(
            gen.style_weight(name), tensors[f"synthesis.{name}.affine.weight"].T
        )
        assert gen.style_dim(name) == tensors[f"synthesis.{name}.affine.weight"].shape[0]
    assert not gen.has_skip_image and gen.has_transform
    rows = gen.layer_summary()
    assert [r["name"] for r in rows] == list(names) and [r["torgb"] for r in rows][-2:] == [
        False,
        True,
    ]
    assert gen.latent_dim("s") == sum(gen.style_dim(n) for n in names)


# ---- SeFa ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layers", ["all", "fine", [0, 3, 15]])
def test_sefa_equals_numpy_eigenvectors_of_the_stacked_affines(gen, tensors, layers):
    res = jaxedit.sefa(gen, layers, k=4)
    presets = sefa_mod.stylegan2_presets(gen.num_ws)
    slots = presets[layers] if isinstance(layers, str) else tuple(layers)
    slots = tuple(s for s in slots if s != 0) if isinstance(layers, str) else slots
    assert res.slots == slots
    names = gen.layer_names
    A = np.concatenate([tensors[f"synthesis.{names[s]}.affine.weight"].T for s in slots], axis=1)
    A = A.astype(np.float64) / np.linalg.norm(A.astype(np.float64), axis=0, keepdims=True)
    w, v = np.linalg.eigh(A @ A.T)
    np.testing.assert_allclose(res.eigenvalues, w[::-1][:4], rtol=1e-10)
    assert np.all(_abs_cos(res.directions, v[:, ::-1][:, :4].T) > 1 - 1e-10)


def test_sefa_presets_leave_out_the_input_layer(gen):
    p = sefa_mod.style_presets(gen)
    assert p["all"] == tuple(range(1, 16)) and p["coarse"] == (1,) and 0 not in p["middle"]
    blocks, slots = sefa_mod.weight_blocks(gen, [0])
    assert slots == (0,) and blocks[0].shape == (32, 4)


# ---- Jacobians ----------------------------------------------------------------------------------
def test_jacobian_w_equals_central_differences(gen, ws, J):
    assert J.shape == (2, 8, 8, 3, 32)
    v = np.random.RandomState(0).randn(32)
    h = 1e-6  # small: the filtered leaky ReLUs have kinks; float64 rounding stays ~1e-10
    pts = np.concatenate([ws + h * v, ws - h * v])  # v added to every W+ slot (space "w")
    img = np.asarray(gen.synthesis(pts))[:, ::4, ::4, :]
    fd = (img[:2] - img[2:]) / (2 * h)
    # O(h) from the kinks of the filtered leaky ReLUs (7e-3 at h = 1e-4, 4e-6 at 1e-6); the
    # slow W+ test below checks the Jacobian to 1e-6 against NVIDIA's own forward-mode JVPs
    assert _rel(J @ v, fd) < 5e-5


@pytest.mark.slow
def test_jacobian_wplus_equals_the_fixture_jvp_probes(gen, ref):
    """NVIDIA's float64 forward-mode W+ JVPs at sample 0 (tests/fixtures/README.md)."""
    Jp = np.asarray(jaxedit.jacobian(gen, ref["ws_psi10"][:1], space="wplus"))[0]
    assert Jp.shape == (32, 32, 3, 16 * 32)
    for v, jv in zip(ref["probe_V_wplus"], ref["probe_JV_wplus"]):
        assert _rel(Jp @ v.reshape(-1), np.transpose(jv, (1, 2, 0))) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("space", ["z", "s"])
def test_jacobian_z_and_s_equal_central_differences(gen, ref, space):
    rs = np.random.RandomState(1)
    if space == "z":
        x0 = ref["z"][:1]
        lat = x0
        J = np.asarray(jaxedit.jacobian(gen, lat, space="z", output=R8))[0]

        def f(x):
            return np.asarray(gen(x))
    else:
        styles = gen.styles(ref["ws_psi10"][:1])
        x0 = np.asarray(jaxedit.editing.flatten_styles(gen, styles))
        J = np.asarray(jaxedit.jacobian(gen, ref["ws_psi10"][:1], space="s", output=R8))[0]

        def f(x):
            return np.asarray(gen.synthesis(styles=jaxedit.editing._split_styles(gen, x)))

    v = rs.randn(J.shape[-1])
    h = 1e-6
    img = f(np.concatenate([x0 + h * v, x0 - h * v]))[:, ::4, ::4, :]
    assert _rel(J @ v, (img[0] - img[1]) / (2 * h)) < 5e-5


# ---- ReSeFa: every solver, the operator, region moments ------------------------------------------
def test_ffhq_boxes_resample_to_32_px_and_8_px():
    for size in (8, 32):
        m = jaxedit.region_mask(EYES, size)
        assert m.shape == (size, size) and 0 < m.sum() < size * size


@pytest.mark.parametrize("solver", ["dense", "woodbury", "matrix_free", "reference"])
def test_resefa_every_solver_equals_scipy(J, solver):
    mask = jaxedit.region_mask(EYES, 8)
    a, b = _moments_np(J[:1], mask)
    w, v = _scipy_top(a, b, 3)
    res = jaxedit.resefa(J[0], EYES, k=3, solver=solver)
    tol = 1e-6 if solver == "matrix_free" else 1e-8
    np.testing.assert_allclose(res.eigenvalues, w, rtol=tol)
    assert np.all(_abs_cos(res.directions, v) > 1 - tol)
    np.testing.assert_array_equal(res.mask, mask)


@pytest.mark.slow
def test_jacobian_operator_matrix_free_equals_scipy(gen, ws, J):
    op = jaxedit.JacobianOperator(gen, ws[0], space="w", output=R8)
    mask = jaxedit.region_mask(EYES, 8)
    w, v = _scipy_top(*_moments_np(J[:1], mask), 3)
    res = jaxedit.resefa(op, EYES, k=3, solver="matrix_free")
    np.testing.assert_allclose(res.eigenvalues, w, rtol=1e-6)
    assert np.all(_abs_cos(res.directions, v) > 1 - 1e-6)


@pytest.mark.slow
def test_region_moments_equal_numpy_sums_and_resefa_mean(gen, ws, J):
    """The streaming (sample-sharded, here on one CPU device) moments of both samples."""
    mask = jaxedit.region_mask(EYES, 8)
    m = jaxedit.region_moments(
        gen, ws, {"eyes": EYES}, output=R8, compute=jaxedit.Compute(batch_size=2)
    )["eyes"]
    mf, mb = _moments_np(J, mask)
    assert _rel(m.M_f, mf) < 1e-10 and _rel(m.M_b, mb) < 1e-10
    w, v = _scipy_top(mf, mb, 3)
    res = jaxedit.resefa(m, k=3)
    np.testing.assert_allclose(res.eigenvalues, w, rtol=1e-8)
    assert np.all(_abs_cos(res.directions, v) > 1 - 1e-8)


# ---- editing, directions files, metrics ----------------------------------------------------------
def test_resefa_npy_directions_edit_slots_4_to_7(gen, ws, tmp_path):
    """ReSeFa's manipulate.py on StyleGAN3: a W direction added to W+ slots 4-7 (its
    --mani_layers default; slot 0 is the input layer in both ReSeFa's Hammer model and here)."""
    d = np.random.RandomState(2).randn(3, 32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    np.save(tmp_path / "eyes-r.npy", d.astype(np.float32))
    ds = jaxedit.load_directions(tmp_path / "eyes-r.npy")
    assert ds.space == "w" and ds.directions.shape == (1, 3, 32) and ds.slots is None
    alphas = [-2.0, 3.0]
    slots = jaxedit.editing.REFERENCE_SLOTS
    grid = jaxedit.render_edits(gen, ws, ds.pick(1), alphas, slots=slots)
    assert grid.shape == (2, 2, 32, 32, 3)
    moved = np.repeat(ws[None], 2, axis=0)
    for i, a in enumerate(alphas):
        moved[i, :, 4:8] += a * np.float64(np.float32(d[1]))  # by hand: slots 4, 5, 6, 7
    want = np.asarray(gen.synthesis(moved.reshape(4, 16, 32))).reshape(grid.shape)
    assert _rel(grid, want) < 1e-12
    assert np.abs(grid[0] - grid[1]).max() > 1e-3  # the edit changes the image


def test_evaluate_direction(gen, ws):
    d = np.zeros(32)
    d[3] = 1.0
    r = jaxedit.evaluate_direction(gen, ws, d, EYES, alpha=2.0, slots=[4, 5, 6, 7])
    assert r["alpha"] == 2.0 and np.isfinite(r["roir"]) and r["mse_inside"] > 0


# ---- Editing in Style ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalog(gen, ws):
    return eis.Catalog.fit(gen, "L3_36_32", 3, latents=ws, key=0)


def test_eis_catalog_on_the_image_region(gen, ws, catalog):
    assert catalog.resolution == 16  # 36 px with 10 px margins at sampling rate 16
    _, feats = gen.features(ws)
    x = np.asarray(feats["L3_36_32"])[:, 10:26, 10:26]  # the image region, by hand
    xn = x / np.linalg.norm(x, axis=-1, keepdims=True)
    want = np.argmax(np.einsum("nhwc,kc->nkhw", xn, catalog.centroids), axis=1)
    heat = np.asarray(catalog.predict(gen, ws))
    assert heat.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(np.argmax(heat, axis=1), want)


def test_eis_contributions_by_hand(gen, ws, catalog):
    res = eis.contributions(gen, ws, catalog)
    assert list(res) == list(gen.modulated_layers)  # the input layer has none
    _, feats = gen.features(ws)
    masks = np.asarray(catalog.predict(gen, ws))  # [N, K, 16, 16]
    # L4 modulates L3's output (16 px in the image); L6 modulates L5's (32 px: masks x2 nearest)
    for layer, src, up in (("L4_36_32", "L3_36_32", 1), ("L6_52_32", "L5_52_32", 2)):
        f = np.asarray(feats[src])[:, 10:-10, 10:-10]
        u = masks.repeat(up, axis=2).repeat(up, axis=3)
        num = np.einsum("nhwc,nkhw->kc", f**2, u)
        want = num / (f**2).sum(axis=(0, 1, 2))
        assert _rel(res[layer], want) < 1e-10


@pytest.mark.slow
def test_eis_transfer(gen, ws):
    t, r = ws[:1], ws[1:]
    qs = {name: np.ones(gen.style_dim(name)) for name in gen.modulated_layers}
    st, sr = gen.styles(t), gen.styles(r)
    want = dict(sr, input=st["input"])  # every channel style from r, the input layer's from t
    got = eis.transfer(gen, t, r, qs)
    assert _rel(got, gen.synthesis(styles=want)) < 1e-12
    same = eis.transfer(gen, t, r, {})
    assert _rel(same, gen.synthesis(t)) < 1e-12


# ---- PandA --------------------------------------------------------------------------------------
def test_panda_fit_edit_and_regions(gen, ws):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", panda.PandaConvergenceWarning)
        res = panda.fit_generator(gen, "L3_36_32", (4, 2), 3, latents=ws)
    assert res.layer == "L3_36_32" and res.feature_shape == (36, 36, 32)
    assert panda.resolve_layer(gen, 5) == "L3_36_32"  # index L: the output of layers 0..L-1
    x0, x1 = panda.edit(gen, ws, res, [0], [0], [0.0], return_original=True)
    assert _rel(x0, gen.synthesis(ws)) < 1e-12 and _rel(x1, x0) < 1e-12
    x2 = panda.edit(gen, ws, res, [0], [1], [5.0])
    assert np.abs(np.asarray(x2) - np.asarray(x0)).max() > 1e-4
    full = panda.part_region(res, [0, 1], 0.3)
    cut = panda.part_region(res, [0, 1], 0.3, gen=gen)
    assert full.shape == (36, 36) and cut.shape == (16, 16)
    np.testing.assert_array_equal(cut, full[10:26, 10:26])
    with pytest.raises(ValueError, match="no skip image"):
        panda.edit(gen, ws, res, [0], [0], [1.0], drop_skip=True)


@pytest.mark.slow
def test_panda_resume_at_every_layer(gen, ws):
    img = np.asarray(gen.synthesis(ws))
    for layer in ("input", "L5_52_32", "L13_32_16"):
        st = gen.features_at(ws, layer)
        assert _rel(gen.resume_at(st), img) < 1e-12
        assert st.x.shape[1:] == gen.feature_shape(layer)


def test_conv_spectra_refuse_stylegan3(gen):
    with pytest.raises(ValueError, match="conv spectra are for StyleGAN2 and BigGAN"):
        jaxedit.spectra.layer_spectrum(gen, "L3_36_32")
    with pytest.raises(ValueError, match="conv spectra are for StyleGAN2 and BigGAN"):
        jaxedit.spectra.layer_factorization(gen, "L3_36_32", k=2)
