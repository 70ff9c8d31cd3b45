"""StyleGAN2 parity against outputs of the reference implementations (tests/fixtures)."""

import jax.numpy as jnp
import numpy as np
import pytest


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return np.abs(a - b).max() / np.abs(b).max()


def nhwc(x):
    return np.asarray(x).transpose(0, 2, 3, 1)


@pytest.mark.parametrize(
    "psi,cutoff,key", [(1.0, None, "ws_psi10"), (0.7, None, "ws_psi7"), (0.5, 2, "ws_psi5_cut2")]
)
def test_nvidia_mapping(ada_gen, ada_ref, psi, cutoff, key):
    ws = ada_gen.mapping(ada_ref["z"], None, psi, cutoff)
    assert ws.dtype == jnp.float64
    assert rel(ws, ada_ref[key]) < 1e-6


def test_nvidia_styles(ada_gen, ada_ref):
    styles = ada_gen.styles(ada_ref["ws_psi10"])
    names = [k[len("style_") : -len(".affine")] for k in ada_ref if k.startswith("style_")]
    assert sorted(styles) == sorted(names)
    for name in names:
        assert rel(styles[name], ada_ref[f"style_{name}.affine"]) < 1e-6, name


@pytest.mark.parametrize("psi", ["10", "7"])
def test_nvidia_images_float64(ada_gen, ada_ref, psi):
    img = ada_gen.synthesis(ada_ref[f"ws_psi{psi}"], noise_mode="const")
    assert img.dtype == jnp.float64 and img.shape == (4, 32, 32, 3)
    assert rel(img, nhwc(ada_ref[f"img_psi{psi}"])) < 1e-6


def test_nvidia_end_to_end_from_z(ada_gen, ada_ref):
    img = ada_gen(ada_ref["z"], None, 0.7)
    assert rel(img, nhwc(ada_ref["img_psi7"])) < 1e-6


def test_nvidia_float32_path(ada_gen, ada_ref):
    ws = ada_gen.mapping(ada_ref["z"], None, dtype=jnp.float32)
    img = ada_gen.synthesis(ws, dtype=jnp.float32)
    assert ws.dtype == jnp.float32 and img.dtype == jnp.float32
    assert rel(img, nhwc(ada_ref["img_psi10"])) < 1e-4


def test_rosinality_images(ros_gen, ros_ref):
    assert ros_gen.resolution == 32 and ros_gen.num_ws == 8
    assert rel(ros_gen(ros_ref["z"]), nhwc(ros_ref["img"])) < 1e-6
    assert rel(ros_gen.mapping(ros_ref["z"], None, 0.6), ros_ref["latent_trunc06"]) < 1e-6
    assert rel(ros_gen(ros_ref["z"], None, 0.6), nhwc(ros_ref["img_trunc06"])) < 1e-6
    assert rel(ros_gen(ros_ref["z"], dtype=jnp.float32), nhwc(ros_ref["img"])) < 1e-4


def test_rosinality_w_avg_is_latent_avg(ros_gen, ros_ref):
    np.testing.assert_array_equal(np.asarray(ros_gen.mapping_net.w_avg[...]), ros_ref["latent_avg"])


def test_parity_is_sensitive(ada_gen, ada_ref):
    """Guard: the tolerance would catch a wrong noise mode or a perturbed latent."""
    img = ada_gen.synthesis(ada_ref["ws_psi10"], noise_mode="none")
    assert rel(img, nhwc(ada_ref["img_psi10"])) > 1e-3
    img = ada_gen.synthesis(ada_ref["ws_psi10"] * (1 + 1e-4))
    assert rel(img, nhwc(ada_ref["img_psi10"])) > 1e-6


@pytest.mark.float32
@pytest.mark.parametrize(
    "pkl,ref,img_key", [("ada_pkl", "ada_ref", "img_psi7"), ("ros_pt", "ros_ref", "img_trunc06")]
)
def test_public_defaults_float32(request, pkl, ref, img_key):
    """x64 off (the users' default): load, map and synthesize with no dtype argument."""
    import jaxedit

    gen = jaxedit.load_generator(request.getfixturevalue(pkl))
    r = request.getfixturevalue(ref)
    img = gen(r["z"], None, 0.7 if pkl == "ada_pkl" else 0.6)
    assert img.dtype == jnp.float32
    assert rel(img, nhwc(r[img_key])) < 1e-4
