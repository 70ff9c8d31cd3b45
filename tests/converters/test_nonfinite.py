"""Non-finite inputs raise ValueError naming the argument (host-side checks; traced code is not
inspected), and non-finite images / metrics are reported, never rendered black or printed as nan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxedit
from jaxedit import editing, metrics, regions
from jaxedit.images import to_uint8
from jaxedit.models.biggan import BigGANConfig, truncated_noise_sample
from jaxedit.sampling import Sampling

NAN, INF = float("nan"), float("inf")


def _with(shape, value, at=0):
    a = np.zeros(shape)
    a.flat[at] = value
    return a


@pytest.fixture(scope="module")
def tiny_biggan():
    """Constant weights (0.01; much faster to build than a random init): finite outputs."""
    from jaxedit.checkpoint import _flat_state, abstract_generator, generator_from_arrays

    cfg = BigGANConfig(
        output_dim=32,
        z_dim=8,
        class_embed_dim=8,
        channel_width=8,
        num_classes=10,
        layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
        attention_layer_position=3,
        n_stats=51,
    )
    shapes = _flat_state(abstract_generator("biggan", cfg))
    return generator_from_arrays(
        "biggan", cfg, {k: np.full(v.shape, 0.01) for k, v in shapes.items()}
    )


def test_stylegan2_mapping_and_synthesis(small_gen, make_small_generator):
    g = small_gen
    z = np.random.default_rng(0).standard_normal((2, g.z_dim))
    for bad in (NAN, INF, -INF):
        with pytest.raises(ValueError, match=r"^z contains 1 non-finite value\(s\)"):
            g.mapping(_with(z.shape, bad, 3) + z)
    with pytest.raises(ValueError, match="^z contains"):
        g.mapping(jnp.asarray(_with(z.shape, NAN)))  # jax arrays too
    for psi in (NAN, INF):
        with pytest.raises(ValueError, match="^truncation_psi must be finite"):
            g.mapping(z, None, psi)
    with pytest.raises(ValueError, match="truncation_cutoff must be >= 0"):
        g.mapping(z, None, 0.7, -5)
    cond = make_small_generator(c_dim=3)
    with pytest.raises(ValueError, match="^c contains 1 non-finite"):
        cond.mapping(z, _with((2, 3), NAN))
    ws = np.asarray(g.mapping(z))
    with pytest.raises(ValueError, match="^ws contains 1 non-finite"):
        g.synthesis(ws + _with(ws.shape, NAN, 5))
    styles = {k: np.array(v) for k, v in g.styles(ws).items()}
    styles[g.layer_names[2]][0, 0] = NAN
    with pytest.raises(ValueError, match=rf"^styles\['{g.layer_names[2]}'\] contains"):
        g.synthesis(styles=styles)
    with pytest.raises(ValueError, match="^w_avg contains"):
        g.set_w_avg(np.full(g.w_dim, NAN))
    state = g.synthesis_split(ws, "b8.conv0")
    bad_state = state.replace(x=state.x.at[0, 0, 0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="^state.x contains"):
        g.synthesis_resume(ws, bad_state)
    # the checks skip traced values: mapping/synthesis still run inside jit and linearize
    f = jax.jit(lambda zz: g.synthesis(g.mapping(zz, jit=False), jit=False))
    np.testing.assert_allclose(f(jnp.asarray(z)), g.synthesis(ws), atol=1e-5)


@pytest.mark.float32
def test_stylegan2_mapping_float32(small_gen):
    z = np.ones((1, small_gen.z_dim), np.float32)
    assert small_gen.mapping(z).dtype == jnp.float32
    with pytest.raises(ValueError, match="^z contains"):
        small_gen.mapping(_with(z.shape, NAN).astype(np.float32))
    with pytest.raises(ValueError, match="^latents contains"):
        jaxedit.jacobian(small_gen, np.full((1, small_gen.w_dim), NAN, np.float32))


def test_biggan_inputs(tiny_biggan):
    g = tiny_biggan
    z = truncated_noise_sample(2, g.z_dim, 0.5, seed=0)
    c = jaxedit.one_hot([1, 2], g.num_classes)
    assert np.isfinite(np.asarray(g.cond(z, c))).all()  # valid inputs pass (no compile)
    with pytest.raises(ValueError, match="^z contains 1 non-finite"):
        g(_with(z.shape, NAN) + z, c, 0.5)
    with pytest.raises(ValueError, match="^class_vector contains"):
        g(z, _with(c.shape, INF) + c, 0.5)
    with pytest.raises(ValueError, match=r"^truncation must be in \(0, 1\], got nan"):
        g(z, c, NAN)
    with pytest.raises(ValueError, match="^cond contains"):
        g.synthesis_from_cond(np.full((1, g.cond_dim), NAN), 0.5)
    with pytest.raises(ValueError, match="^truncation must be finite"):
        truncated_noise_sample(1, 8, NAN, seed=0)
    with pytest.raises(ValueError, match="^direction contains"):
        editing.render_edits(
            g,
            z,
            np.full(g.z_dim, NAN),
            [1.0],
            space="z",
            sampling=Sampling(c=c, truncation_psi=0.5),
        )
    with pytest.raises(ValueError, match="^alphas contains"):
        editing.render_edits(
            g,
            z,
            np.ones(g.z_dim),
            [0.0, INF],
            space="z",
            sampling=Sampling(c=c, truncation_psi=0.5),
        )


def test_editing_and_metrics(small_gen):
    g = small_gen
    ws = np.asarray(g.mapping(np.random.default_rng(1).standard_normal((2, g.z_dim))))
    d = np.ones(g.w_dim)
    for kw, name in (
        (dict(latents=ws + _with(ws.shape, NAN)), "latents"),
        (dict(direction=_with(d.shape, INF) + d), "direction"),
        (dict(alphas=[0.0, NAN]), "alphas"),
    ):
        args = dict(latents=ws, direction=d, alphas=[0.0, 1.0]) | kw
        with pytest.raises(ValueError, match=f"^{name} contains"):
            editing.edit_latents(args["latents"], args["direction"], args["alphas"])
        with pytest.raises(ValueError, match=f"^{name} contains"):
            editing.render_edits(g, args["latents"], args["direction"], args["alphas"])
    box = (2, 2, 8, 8)
    with pytest.raises(ValueError, match="^direction contains"):
        metrics.evaluate_direction(g, ws, _with(d.shape, NAN), box)
    with pytest.raises(ValueError, match="^direction is all zeros"):
        metrics.evaluate_direction(g, ws, np.zeros_like(d), box)
    with pytest.raises(ValueError, match="^alpha must be finite"):
        metrics.evaluate_direction(g, ws, d, box, alpha=INF)
    img = np.zeros((1, 16, 16, 3))
    with pytest.raises(ValueError, match="^the edited images contain 1 non-finite"):
        metrics.locality(img, _with(img.shape, NAN), box)
    with pytest.raises(ValueError, match="^the original images contain"):
        metrics.locality(_with(img.shape, INF), img, box)
    # an edit that leaves the region unchanged: ROIR is inf (documented), not a silent number
    edited = img.copy()
    edited[0, 0, 0] = 1.0
    assert metrics.locality(img, edited, box)["roir"] == INF
    res = metrics.evaluate_direction(g, ws, d, box, alpha=1.0)
    assert np.isfinite(res["roir"]) and res["roir"] > 0


def test_regions():
    for bad in ((NAN, 0, 4, 4), (0, 0, INF, 4), (0.5, 0, 4, 4)):
        with pytest.raises(ValueError, match="box coordinates must be finite integers"):
            regions.Box(*bad)
        with pytest.raises(ValueError, match="box coordinates must be finite integers"):
            regions.region_mask(bad, 8)
    assert regions.Box(1.0, 2, 3, 4).as_tuple() == (1, 2, 3, 4)
    with pytest.raises(ValueError, match=r"the box \(y0, x0, y1, x1\) = \(0, 0, 0, 0\) is empty"):
        regions.Box(0, 0, 0, 0)
    with pytest.raises(ValueError, match="the box '0,0,0,0' is empty: y0,x0,y1,x1 needs y1 > y0"):
        regions.parse_region("0,0,0,0")
    with pytest.raises(ValueError, match="4 integers"):
        regions.parse_region("nan,0,4,4")
    with pytest.raises(ValueError, match="center box values must be finite"):
        regions.center_box(NAN, 10, 4, 4)
    m = np.zeros((8, 8))
    m[2:4, 2:4] = 1
    m[0, 0] = NAN
    with pytest.raises(ValueError, match="region mask contains non-finite"):
        regions.region_mask(m, 8)


def test_jacobian_inputs(small_gen):
    g = small_gen
    ws = np.zeros((1, g.num_ws, g.w_dim))
    with pytest.raises(ValueError, match="^latents contains 1 non-finite"):
        jaxedit.jacobian(g, ws + _with(ws.shape, NAN))
    with pytest.raises(ValueError, match="^latents contains"):
        jaxedit.JacobianOperator(g, np.full((g.num_ws, g.w_dim), INF))
    with pytest.raises(ValueError, match="^truncation_psi must be finite"):
        jaxedit.jacobian(
            g, np.zeros((1, g.z_dim)), space="z", sampling=Sampling(truncation_psi=NAN)
        )


def test_images():
    with pytest.raises(ValueError, match=r"^the images contain 1 non-finite value\(s\)"):
        to_uint8(_with((2, 2, 3), NAN))
    assert to_uint8(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]
