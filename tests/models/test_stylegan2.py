"""Generator behaviour: split/resume, features, styles, jit vs eager, architectures, recompiles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxedit
from jaxedit.models.stylegan2 import StyleGAN2Generator


@pytest.fixture(scope="module", params=["skip", "orig", "resnet"])
def arch_gen(request, make_small_generator):
    return make_small_generator(request.param)


def test_split_resume_equals_full_pass_every_layer(ada_gen, ada_ref):
    ws = ada_ref["ws_psi10"]
    full = np.asarray(ada_gen.synthesis(ws))
    _, feats = ada_gen.features(ws)
    for layer in ada_gen.conv_layer_names:
        state = ada_gen.synthesis_split(ws, layer)
        np.testing.assert_allclose(state.x, feats[layer], rtol=0, atol=1e-10)
        np.testing.assert_allclose(ada_gen.synthesis_resume(ws, state), full, rtol=0, atol=1e-10)


def test_split_resume_all_architectures(arch_gen):
    ws = arch_gen.mapping(np.random.RandomState(0).randn(2, 8))
    full = np.asarray(arch_gen.synthesis(ws))
    for layer in arch_gen.conv_layer_names:
        state = arch_gen.synthesis_split(ws, layer)
        np.testing.assert_allclose(arch_gen.synthesis_resume(ws, state), full, atol=1e-12)


def test_edited_split_changes_output_and_keeps_skip_image(ada_gen, ada_ref):
    ws = ada_ref["ws_psi10"]
    state = ada_gen.synthesis_split(ws, "b16.conv1")
    assert state.img is not None and state.img.shape == (4, 8, 8, 3)
    edited = ada_gen.synthesis_resume(ws, state.replace(x=state.x * 0))
    dropped = ada_gen.synthesis_resume(ws, state.replace(x=state.x * 0, img=state.img * 0))
    assert not np.allclose(edited, ada_gen.synthesis(ws))
    assert not np.allclose(edited, dropped)  # the skip image carries information


def test_styles_round_trip(ada_gen, ada_ref):
    ws = ada_ref["ws_psi7"]
    styles = ada_gen.styles(ws)
    assert tuple(styles) == ada_gen.layer_names
    np.testing.assert_allclose(
        ada_gen.synthesis_from_styles(styles), ada_gen.synthesis(ws), atol=1e-12
    )
    styles["b8.conv1"] = styles["b8.conv1"] + 0.5
    assert not np.allclose(ada_gen.synthesis_from_styles(styles), ada_gen.synthesis(ws))


def test_jit_equals_eager(ada_gen, ada_ref):
    ws = ada_ref["ws_psi10"][:2]
    np.testing.assert_allclose(ada_gen.synthesis(ws, jit=False), ada_gen.synthesis(ws), atol=1e-12)
    np.testing.assert_allclose(
        ada_gen.mapping(ada_ref["z"], None, 0.7, jit=False),
        ada_gen.mapping(ada_ref["z"], None, 0.7),
        atol=1e-14,
    )


def test_no_recompile_for_new_values(small_gen):
    gen = small_gen
    fn = StyleGAN2Generator._program.jitted
    ws = gen.mapping(np.zeros((2, 8)))
    gen.synthesis(ws)
    n = fn._cache_size()
    gen.synthesis(ws + 1.0)
    gen.synthesis(np.asarray(ws) * 2)
    assert fn._cache_size() == n
    m = StyleGAN2Generator._mapping.jitted
    gen.mapping(np.ones((2, 8)), None, 0.7)
    k = m._cache_size()
    gen.mapping(np.ones((2, 8)), None, 0.5)  # psi is traced
    assert m._cache_size() == k


def test_params_are_arguments_not_constants(small_gen):
    gen = small_gen
    ws = gen.mapping(np.zeros((1, 8)))
    graphdef, state = nnx.split(gen)
    jaxpr = jax.make_jaxpr(lambda s, w: nnx.merge(graphdef, s).synthesis(w, jit=False))(state, ws)
    biggest_const = max((np.size(c) for c in jaxpr.consts), default=0)
    assert biggest_const < 16 * 16  # no weight tensor baked into the program


def test_noise_modes(make_small_generator):
    gen = make_small_generator()  # its own generator: the noise strengths are changed below
    ws = gen.mapping(np.zeros((1, 8)))
    for layer in ("b4.conv1", "b8.conv0"):
        gen._layer(layer).noise_strength[...] = jnp.asarray(0.5)
    with pytest.raises(ValueError, match="key"):
        gen.synthesis(ws, noise_mode="random")
    with pytest.raises(ValueError, match="noise_mode"):
        gen.synthesis(ws, noise_mode="bogus")
    a = gen.synthesis(ws, noise_mode="random", key=jax.random.key(0))
    b = gen.synthesis(ws, noise_mode="random", key=jax.random.key(0))
    c = gen.synthesis(ws, noise_mode="random", key=jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(
        gen.synthesis(ws, noise_mode="none"), gen.synthesis(ws, noise_mode="const")
    )


def test_conditional_mapping_and_clamp(make_small_generator):
    gen = make_small_generator(c_dim=3, conv_clamp=0.05)
    z = np.random.RandomState(0).randn(2, 8)
    with pytest.raises(ValueError, match="conditional"):
        gen.mapping(z)
    ws0 = gen.mapping(z, np.eye(3)[[0, 0]])
    ws1 = gen.mapping(z, np.eye(3)[[1, 1]])
    assert ws0.shape == (2, gen.num_ws, 8) and not np.allclose(ws0, ws1)
    img = gen.synthesis(ws0)
    assert float(jnp.abs(img).max()) <= 0.05 * 3 + 1e-9  # torgb clamp 0.05 per block, 3 blocks


def test_input_validation(ada_gen):
    with pytest.raises(ValueError, match=r"z must have shape \[N, 32\]"):
        ada_gen.mapping(np.zeros((2, 31)))
    with pytest.raises(ValueError, match=r"ws must have shape \[N, 8, 32\]"):
        ada_gen.synthesis(np.zeros((2, 7, 32)))
    with pytest.raises(ValueError, match="unknown split layer"):
        ada_gen.synthesis_split(np.zeros((1, 8, 32)), "b8.torgb")
    with pytest.raises(ValueError, match="styles keys"):
        ada_gen.synthesis_from_styles({"b4.conv1": np.zeros((1, 64))})


def test_truncation_without_w_avg_is_an_error(make_small_generator):
    gen = make_small_generator()
    gen.config = gen.config.__class__(**{**gen.config.__dict__, "has_w_avg": False})
    with pytest.raises(ValueError, match="w_avg"):
        gen.mapping(np.zeros((1, 8)), None, 0.7)
    gen.set_w_avg(gen.estimate_w_avg(jax.random.key(0), 64))
    assert gen.mapping(np.zeros((1, 8)), None, 0.7).shape == (1, gen.num_ws, 8)


def test_random_generator_is_deterministic():
    a = jaxedit.random_generator()
    b = jaxedit.random_generator()
    z = jaxedit.seed_to_z(3, a.z_dim)
    for x, y in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # same weights, bit for bit
    np.testing.assert_allclose(a(z), b(z), rtol=0, atol=1e-10)  # GPU reductions may reorder
    img = np.asarray(a(z))
    assert img.shape == (1, 64, 64, 3) and 0.05 < img.std() < 2.0


def test_seed_to_z_matches_nvidia_generate():
    np.testing.assert_array_equal(jaxedit.seed_to_z(5, 7), np.random.RandomState(5).randn(1, 7))
