"""StyleGAN3 (T, R; NVIDIA and Hammer checkpoints) against the reference implementations' outputs.

References (tests/fixtures, README there): ``stylegan3_{t,r}_tiny_ref.npz`` (NVIDIA's
networks_stylegan3.py with its reference ops, float64) and ``stylegan3_hammer_t_tiny_ref.npz``
(ReSeFa's generator, float64). The resampling ops are also checked against a direct NumPy
zero-insert / pad / full 2-D convolution written here.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fixture_path

import jaxedit
from converters import _pickle
from converters.stylegan2 import nvidia as sg2_nvidia
from converters.stylegan3 import design
from jaxedit.models import (
    StyleGAN3Config,
    StyleGAN3Generator,
    _stylegan3_ops as ops,
    make_transform,
)

F64_TOL = 1e-6


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / np.abs(b).max())


def nchw(x):
    return np.transpose(np.asarray(x), (0, 3, 1, 2))


@pytest.fixture(scope="module")
def t_ref():
    return dict(np.load(fixture_path("stylegan3_t_tiny_ref.npz")))


@pytest.fixture(scope="module")
def r_ref():
    return dict(np.load(fixture_path("stylegan3_r_tiny_ref.npz")))


@pytest.fixture(scope="module")
def h_ref():
    return dict(np.load(fixture_path("stylegan3_hammer_t_tiny_ref.npz")))


@pytest.fixture(scope="module")
def t_gen():
    return jaxedit.load_generator(fixture_path("stylegan3_t_tiny.pkl"))


@pytest.fixture(scope="module")
def r_gen():
    return jaxedit.load_generator(fixture_path("stylegan3_r_tiny.pkl"))


@pytest.fixture(scope="module")
def h_gen():
    return jaxedit.load_generator(fixture_path("stylegan3_hammer_t_tiny.pth"))


# ---- ops against a direct NumPy implementation ---------------------------------------------------
def _upfirdn_numpy(x, f, up, down, pad, gain):
    """Zero insertion, pad/crop, full 2-D convolution with the (outer product of the) filter."""
    n, h, w, c = x.shape
    px0, px1, py0, py1 = pad
    u = np.zeros((n, h * up, w * up, c))
    u[:, ::up, ::up] = x
    u = np.pad(u, ((0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0)), (0, 0)))
    u = u[:, max(-py0, 0) : u.shape[1] - max(-py1, 0), max(-px0, 0) : u.shape[2] - max(-px1, 0)]
    f2 = (np.outer(f, f) if f.ndim == 1 else f) * gain
    g = f2[::-1, ::-1]
    kh, kw = g.shape
    ho, wo = u.shape[1] - kh + 1, u.shape[2] - kw + 1
    out = np.zeros((n, ho, wo, c))
    for i in range(kh):
        for j in range(kw):
            out += g[i, j] * u[:, i : i + ho, j : j + wo]
    return out[:, ::down, ::down]


@pytest.mark.parametrize(
    "size,taps,up,down,pad,gain",
    [
        (36, 12, 2, 1, (9, 8, 9, 8), 4),  # L0 of the T fixture
        (36, 24, 4, 1, (-6, -9, -6, -9), 16),  # the sampling-rate doubling layer
        (52, 12, 2, 1, (-11, -12, -11, -12), 4),  # the cropping last layer
        (73, 12, 1, 2, (0, 0, 0, 0), 1),  # a down pass
        (29, (6, 6), 1, 2, (0, 0, 0, 0), 1),  # a radial-like (2-D) down pass
        (20, 5, 3, 2, (1, 2, 3, 0), 2),  # odd taps, up and down at once
        (20, 7, 2, 3, (-1, 2, 3, -2), 1),
        (20, (4, 5), 1, 1, (1, 2, 3, -2), 1),
        (20, (4, 4), 2, 2, (1, 2, 3, -2), 1),
    ],
)
def test_upfirdn2d_equals_direct_convolution(size, taps, up, down, pad, gain):
    rng = np.random.default_rng(size + up + down)
    f = rng.random(taps)
    x = rng.standard_normal((2, size, size + 3, 3))
    got = ops.upfirdn2d(jnp.asarray(x), f, up, down, pad, gain)
    assert rel(got, _upfirdn_numpy(x, f, up, down, pad, gain)) < 1e-13


def test_filtered_lrelu_equals_its_definition():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 12, 12, 4)) * 3
    b = rng.standard_normal(4)
    fu, fd = rng.random(8), rng.random((4, 4))
    got = ops.filtered_lrelu(
        jnp.asarray(x), fu, fd, jnp.asarray(b), up=2, down=2, padding=(5, 4, 5, 4), clamp=2.5
    )
    u = _upfirdn_numpy(x + b, fu, 2, 1, (5, 4, 5, 4), 4)
    u = np.clip(np.where(u >= 0, u, 0.2 * u) * np.sqrt(2), -2.5, 2.5)
    assert rel(got, _upfirdn_numpy(u, fd, 1, 2, (0, 0, 0, 0), 1)) < 1e-13


def test_filter_design_is_bit_exact_against_the_pickled_buffers():
    scipy_special = pytest.importorskip("scipy.special")
    x = np.linspace(0, 80, 2001)
    assert np.abs(design._j1(x) - scipy_special.j1(x)).max() < 1e-14
    for name, kw in (("t", {}), ("r", {"conv_kernel": 1, "use_radial_filters": True})):
        snap = _pickle.load_pickle(fixture_path(f"stylegan3_{name}_tiny.pkl"))
        tensors, _ = sg2_nvidia.flatten_network(snap["G_ema"])
        geo = design.layer_geometry(
            img_resolution=32, img_channels=3, channel_base=512, channel_max=32, **kw
        )
        for lay in geo["layers"]:
            for key, f in zip(("up_filter", "down_filter"), design.layer_filters(lay)):
                stored = tensors.get(f"synthesis.{lay['name']}.{key}")
                assert (f is None) == (stored is None)
                if f is not None:
                    np.testing.assert_array_equal(f, stored)


# ---- the transform helper ------------------------------------------------------------------------
def test_make_transform_is_the_inverse_gen_images_writes(t_ref, h_ref):
    np.testing.assert_array_equal(make_transform((0.1, -0.05), 10), t_ref["transform_inv"])
    np.testing.assert_array_equal(make_transform((0.1, -0.05), 10), h_ref["transform"])
    np.testing.assert_array_equal(make_transform(), np.eye(3))
    # gen_images.py's own matrix, written out, times ours is the identity
    a = np.deg2rad(30.0)
    m = np.array([[np.cos(a), np.sin(a), 0.3], [-np.sin(a), np.cos(a), -0.2], [0, 0, 1]])
    np.testing.assert_allclose(m @ make_transform((0.3, -0.2), 30.0), np.eye(3), atol=1e-15)
    batch = make_transform([[0.1, -0.05], [0.0, 0.0]], [10.0, 0.0])
    assert batch.shape == (2, 3, 3)
    np.testing.assert_array_equal(batch[0], t_ref["transform_inv"])
    assert make_transform((0, 0), [1.0, 2.0, 3.0]).shape == (3, 3, 3)
    with pytest.raises(ValueError, match="translate must be"):
        make_transform((1, 2, 3), 0)
    with pytest.raises(ValueError, match="finite"):
        make_transform((0, np.nan), 0)


# ---- the generator protocol -----------------------------------------------------------------------
def test_protocol_members(t_gen):
    g = t_gen
    assert isinstance(g, StyleGAN3Generator) and isinstance(g.config, StyleGAN3Config)
    assert (g.family, g.has_styles, g.has_noise, g.truncation_kind) == (
        "stylegan3",
        True,
        False,
        "psi",
    )
    assert g.num_ws == 16 and g.spaces == ("w", "wplus", "z", "s")
    assert g.latent_dim("wplus") == 16 * 32 and g.latent_dim("w") == 32
    assert g.latent_dim("s") == 4 + 32 * 10 + 27 + 23 + 19 + 16 + 16
    assert g.layer_names[0] == "input" and g.layer_names[-1] == "L14_32_3"
    assert g.feature_layers == g.layer_names[:-1]
    assert g.resolve_layer(1) == "input" and g.resolve_layer(5) == "L3_36_32"
    assert g.resolve_layer("L3_36_32") == "L3_36_32"
    assert g.layer("L10_52_23").affine.weight.shape == (32, 27)  # for SeFa
    assert g.config.config_name == "T" and g.config.layers[5]["up_factor"] == 4
    with pytest.raises(ValueError, match="unknown layer"):
        g.resolve_layer("L99")
    with pytest.raises(ValueError, match="ws must have shape"):
        g.synthesis(np.zeros((1, 15, 32)))
    with pytest.raises(ValueError, match="transform must have shape"):
        g.synthesis(np.zeros((2, 16, 32)), transform=np.eye(3)[None].repeat(3, 0))


def test_conditional_config_and_mapping():
    cfg = StyleGAN3Config(
        z_dim=8, c_dim=3, w_dim=8, img_resolution=16, embed_features=8, layer_features=8,
        channel_base=64, channel_max=8, num_layers=4, num_critical=1, margin_size=2,
    )  # fmt: skip
    assert StyleGAN3Config.from_dict(cfg.to_dict()) == cfg
    gen = StyleGAN3Generator(cfg)
    assert gen.uses_class and gen.num_ws == 6 and len(gen.layer_names) == 6
    c = jaxedit.one_hot([0, 2], 3)
    ws = gen.mapping(np.ones((2, 8)), c)
    assert ws.shape == (2, 6, 8) and not np.allclose(ws[0], ws[1])
    with pytest.raises(ValueError, match="conditional"):
        gen.mapping(np.ones((2, 8)))
    with pytest.raises(ValueError, match="unknown StyleGAN3 config fields"):
        StyleGAN3Config.from_dict({**cfg.to_dict(), "bogus": 1})


# ---- parity with the references (float64) ----------------------------------------------------------
@pytest.mark.parametrize("name", ["t", "r"])
def test_mapping_and_styles_parity(name, request):
    gen, ref = request.getfixturevalue(f"{name}_gen"), request.getfixturevalue(f"{name}_ref")
    z = ref["z"]
    assert rel(gen.mapping(z), ref["ws_psi10"]) < F64_TOL
    assert rel(gen.mapping(z, None, 0.7), ref["ws_psi7"]) < F64_TOL
    assert rel(gen.mapping(z, None, 0.5, 2), ref["ws_psi5_cut2"]) < F64_TOL
    styles = gen.styles(ref["ws_psi10"])
    assert tuple(styles) == gen.layer_names
    for layer, s in styles.items():
        assert rel(s, ref[f"style_{layer}.affine"]) < F64_TOL, layer


def _image_checks(gen, ref):
    ws10, ws7 = ref["ws_psi10"], ref["ws_psi7"]
    assert rel(nchw(gen.synthesis(ws10)), ref["img_psi10"]) < F64_TOL
    assert rel(nchw(gen.synthesis(ws7)), ref["img_psi7"]) < F64_TOL
    moved = nchw(gen.synthesis(ws10, transform=ref["transform_inv"]))
    assert rel(moved, ref["img_psi10_transformed"]) < F64_TOL
    # a batch of transforms: sample 1 moved, the others not
    batch = np.stack([np.eye(3), ref["transform_inv"], np.eye(3)])
    mixed = nchw(gen.synthesis(ws10, transform=batch))
    assert rel(mixed[[0, 2]], ref["img_psi10"][[0, 2]]) < F64_TOL
    assert rel(mixed[1], ref["img_psi10_transformed"][1]) < F64_TOL


def test_images_and_transforms_parity_t(t_gen, t_ref):
    _image_checks(t_gen, t_ref)


@pytest.mark.slow
def test_images_and_transforms_parity_r(r_gen, r_ref):
    _image_checks(r_gen, r_ref)


def _activation_checks(gen, ref):
    img, feats = gen.features(ref["ws_psi10"][:1])
    assert list(ref["layer_names"]) == list(gen.layer_names[1:])
    for layer in gen.layer_names:  # the references are float32 copies of float64 values
        assert rel(nchw(feats[layer]), ref[f"act_{layer}"]) < 2e-7, layer
    assert rel(nchw(img), ref["img_psi10"][:1]) < F64_TOL


def _probe_checks(gen, point, vs, jvs):
    for v, jv in zip(vs, jvs):
        _, out = jax.jvp(lambda w: gen.synthesis(w), (point,), (v[None],))
        assert rel(nchw(out)[0], jv) < F64_TOL


@pytest.mark.slow
def test_layer_activations_parity_t(t_gen, t_ref):
    _activation_checks(t_gen, t_ref)


@pytest.mark.slow
def test_wplus_jvp_probes_t(t_gen, t_ref):
    _probe_checks(t_gen, t_ref["ws_psi10"][:1], t_ref["probe_V_wplus"], t_ref["probe_JV_wplus"])


@pytest.mark.slow
def test_layer_activations_and_probes_r(r_gen, r_ref):
    _activation_checks(r_gen, r_ref)
    _probe_checks(r_gen, r_ref["ws_psi10"][:1], r_ref["probe_V_wplus"], r_ref["probe_JV_wplus"])


@pytest.mark.slow
def test_hammer_parity(h_gen, h_ref):
    """Hammer keeps its sampling grid as a float32 buffer computed in float32 (off the exact grid
    by up to 3e-8); jaxedit computes the exact grid, hence ~3e-7 here (1e-11 for NVIDIA's)."""
    z = h_ref["z"]
    assert rel(h_gen.mapping(z)[:, 0], h_ref["w"]) < F64_TOL
    assert rel(h_gen.mapping(z, None, 0.7), h_ref["wp_psi7"]) < F64_TOL
    assert rel(h_gen.mapping(z, None, 0.7, 8), h_ref["wp_psi7_cut8"]) < F64_TOL
    styles = h_gen.styles(h_ref["wp_psi10"])
    for i, layer in enumerate(h_gen.layer_names[1:]):
        assert rel(styles[layer], h_ref[f"style{i}_psi10"]) < F64_TOL, layer
    for key in ("psi10", "psi7", "psi7_cut8"):
        assert rel(nchw(h_gen.synthesis(h_ref[f"wp_{key}"])), h_ref[f"img_{key}"]) < F64_TOL
    moved = h_gen.synthesis(h_ref["wp_psi7_cut8"], transform=h_ref["transform"])
    assert rel(nchw(moved), h_ref["img_psi7_cut8_transformed"]) < F64_TOL
    single = h_gen.synthesis(h_ref["wp_psi10"][:1])  # batch independence
    assert rel(nchw(single), h_ref["img_psi10_single0"]) < F64_TOL


@pytest.mark.slow
def test_hammer_jvp_probes(h_gen, h_ref):
    _probe_checks(
        h_gen, h_ref["probe_point_wplus"], h_ref["probe_V_wplus"], h_ref["probe_JV_wplus"]
    )

    def from_w(w):
        return h_gen.synthesis(jnp.broadcast_to(w[:, None], (1, h_gen.num_ws, h_gen.w_dim)))

    for v, jv in zip(h_ref["probe_V_w"], h_ref["probe_JV_w"]):
        _, out = jax.jvp(from_w, (h_ref["probe_point_w"],), (v[None],))
        assert rel(nchw(out)[0], jv) < F64_TOL


# ---- derivatives, jit, recompiles, split/resume ---------------------------------------------------
@pytest.mark.slow
def test_jvp_against_central_differences(t_gen, t_ref):
    """Forward mode against float64 central differences, in W (all slots moved together).

    Leaky ReLU has kinks: steps of 1e-5 / 1e-6 straddle some (max errors 1e-3 / 3e-4 at this
    point); 1e-7 is clear of them, with rounding ~1e-9 relative (measured 6e-9)."""
    w0 = t_ref["ws_psi10"][:1]
    v = np.random.default_rng(0).standard_normal((1, 16, 32))
    _, jv = jax.jvp(lambda w: t_gen.synthesis(w), (w0,), (v,))
    eps = 1e-7
    fd = np.asarray(t_gen.synthesis(w0 + eps * v)) - np.asarray(t_gen.synthesis(w0 - eps * v))
    assert rel(jv, fd / (2 * eps)) < 1e-6


def test_split_resume_jit_eager_and_no_recompiles(t_gen, t_ref):
    ws = t_ref["ws_psi10"]
    full = np.asarray(t_gen.synthesis(ws))
    before = jaxedit.debug.compiled_programs()
    t_gen.synthesis(ws * 0.9)  # new values, same shapes: no new program
    t_gen.synthesis(ws, transform=t_ref["transform_inv"])  # given vs stored transform: same program
    t_gen.synthesis(ws, transform=np.stack([np.eye(3)] * 3))
    assert jaxedit.debug.compiled_programs() == before
    state = t_gen.features_at(ws, "L3_36_32")
    assert state.x.shape == (3, 36, 36, 32)
    np.testing.assert_allclose(t_gen.resume_at(state), full, rtol=0, atol=1e-12)
    assert not np.allclose(t_gen.resume_at(state, state.x * 0.5), full)


@pytest.mark.slow
def test_jit_equals_eager(t_gen, t_ref):
    ws = t_ref["ws_psi10"][:1]
    np.testing.assert_allclose(t_gen.synthesis(ws, jit=False), t_gen.synthesis(ws), atol=1e-12)
    np.testing.assert_allclose(t_gen.mapping(t_ref["z"], jit=False), t_gen.mapping(t_ref["z"]))


@pytest.mark.slow
def test_split_resume_every_layer(r_gen, r_ref):
    ws = r_ref["ws_psi10"][:1]
    full = np.asarray(r_gen.synthesis(ws))
    for layer in ("input", "L4_36_32", "L5_52_32", "L13_32_16"):  # one program per layer
        np.testing.assert_allclose(r_gen.resume_at(r_gen.features_at(ws, layer)), full, atol=1e-12)


def test_styles_round_trip_and_edit(t_gen, t_ref):
    ws = t_ref["ws_psi10"]
    styles = t_gen.styles(ws)
    np.testing.assert_allclose(t_gen.synthesis_from_styles(styles), t_gen.synthesis(ws), atol=1e-12)
    styles["L2_36_32"] = styles["L2_36_32"] + 0.5
    assert not np.allclose(t_gen.synthesis_from_styles(styles), t_gen.synthesis(ws))


def test_converted_checkpoint_round_trip(tmp_path, t_gen, t_ref):
    out = jaxedit.convert_checkpoint(fixture_path("stylegan3_t_tiny.pkl"), tmp_path / "ck")
    back = jaxedit.load_generator(out)
    assert isinstance(back, StyleGAN3Generator) and back.config == t_gen.config
    ws = t_ref["ws_psi10"]
    np.testing.assert_array_equal(back.synthesis(ws), t_gen.synthesis(ws))
    info = jaxedit.inspect_checkpoint(out)
    assert info.family == "stylegan3" and info.kind == "converted"


# ---- float32, the users' default -----------------------------------------------------------------
@pytest.mark.float32
def test_float32_default_parity(t_gen, t_ref):
    """float32 against the float64 reference: the reference's own float32 run differs by 1.3e-6;
    jaxedit's by a few 1e-6 (relative to the largest |value|)."""
    img = t_gen.synthesis(t_ref["ws_psi10"])
    assert img.dtype == jnp.float32
    assert rel(nchw(img), t_ref["img_psi10"]) < 1e-5  # measured 1.4e-6
    ws = t_gen.mapping(t_ref["z"], None, 0.7)
    assert rel(ws, t_ref["ws_psi7"]) < 1e-5
    moved = t_gen.synthesis(t_ref["ws_psi10"], transform=t_ref["transform_inv"])
    assert rel(nchw(moved), t_ref["img_psi10_transformed"]) < 1e-5
