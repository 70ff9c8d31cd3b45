"""The generator protocol (jaxedit.models.AbstractGenerator): both families satisfy it, its
latent sizes match the real latent shapes, and every feature layer splits and resumes to the
full forward pass."""

import numpy as np
import pytest

import jaxedit
from jaxedit.models import (
    FAMILIES,
    AbstractGenerator,
    BigGANConfig,
    BigGANGenerator,
    LayerFeatures,
    StyleGAN2Generator,
    one_hot,
)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)


def test_families_registry():
    assert FAMILIES == {
        "stylegan2": (jaxedit.StyleGAN2Config, StyleGAN2Generator),
        "stylegan3": (jaxedit.StyleGAN3Config, jaxedit.StyleGAN3Generator),
        "biggan": (BigGANConfig, BigGANGenerator),
    }
    for name, (_, cls) in FAMILIES.items():
        assert issubclass(cls, AbstractGenerator) and cls.family == name
        assert not getattr(cls, "__abstractmethods__", None)
        assert cls.truncation_kind in ("psi", "stats")
        assert cls.default_space in ("w", "z")


def test_stylegan2_protocol(make_small_generator):
    for c_dim in (0, 3):
        gen = make_small_generator(c_dim=c_dim)
        assert isinstance(gen, AbstractGenerator)
        assert gen.class_dim == gen.c_dim == c_dim and gen.uses_class == (c_dim > 0)
        assert gen.has_styles and gen.has_noise and gen.truncation_kind == "psi"
        assert gen.spaces == ("w", "wplus", "z", "s") and gen.default_space in gen.spaces
        z = np.random.default_rng(0).standard_normal((2, gen.z_dim))
        c = one_hot([0, 2], c_dim) if c_dim else None
        ws = gen.mapping(z, c)
        styles = gen.styles(ws)
        assert gen.latent_dim("z") == z.shape[1]
        assert gen.latent_dim("w") == ws.shape[2]
        assert gen.latent_dim("wplus") == ws.shape[1] * ws.shape[2]
        assert gen.latent_dim("s") == sum(s.shape[1] for s in styles.values())
        with pytest.raises(ValueError, match="space must be one of"):
            gen.latent_dim("cond")
        assert gen.feature_layers == gen.conv_layer_names
        assert gen.check_truncation(0.7) == 0.7
        with pytest.raises(ValueError, match="truncation_psi"):
            gen.check_truncation(float("nan"))


def test_biggan_protocol(tiny_biggan):
    gen = tiny_biggan
    assert isinstance(gen, AbstractGenerator)
    assert gen.class_dim == gen.num_classes == 10 and gen.uses_class
    assert not gen.has_styles and not gen.has_noise and gen.truncation_kind == "stats"
    assert gen.spaces == ("z", "embed", "cond") and gen.default_space in gen.spaces
    z = np.random.default_rng(0).standard_normal((2, gen.z_dim))
    c = one_hot([1, 4], gen.num_classes)
    cond = gen.cond(z, c)
    assert gen.latent_dim("z") == z.shape[1]
    assert gen.latent_dim("embed") == gen.embed(c).shape[1]
    assert gen.latent_dim("cond") == cond.shape[1]
    with pytest.raises(ValueError, match="for BigGAN"):
        gen.latent_dim("w")
    assert gen.feature_layers == ("block0", "block1", "block2", "attention", "block3", "block4")
    assert gen.check_truncation(0.5) == 0.5
    with pytest.raises(ValueError, match=r"truncation must be in \(0, 1\]"):
        gen.check_truncation(1.5)


def test_stylegan2_split_resume_every_layer(make_small_generator):
    for arch in ("skip", "resnet", "orig"):
        gen = make_small_generator(arch=arch)
        ws = gen.mapping(np.random.default_rng(1).standard_normal((2, gen.z_dim)))
        img = gen.synthesis(ws)
        _, feats = gen.features(ws)
        assert gen.feature_layers
        for i, name in enumerate(gen.feature_layers):
            st = gen.features_at(ws, name)
            assert isinstance(st, LayerFeatures) and st.layer == name
            np.testing.assert_allclose(st.x, feats[name], rtol=0, atol=1e-12)
            assert _rel(gen.resume_at(st), img) < 1e-12
            assert gen.resolve_layer(i + 1) == name
            assert gen.features_at(ws, i + 1).layer == name
        edited = gen.resume_at(st, st.x * 1.5)
        assert _rel(edited, img) > 1e-6


def test_biggan_split_resume_every_layer(tiny_biggan):
    gen = tiny_biggan
    z = np.random.default_rng(2).standard_normal((2, gen.z_dim)) * 0.5
    c = one_hot([3, 7], gen.num_classes)
    img = gen(z, c, 0.5)
    for i, name in enumerate(gen.feature_layers):
        st = gen.features_at(z, name, c=c, truncation=0.5)
        assert isinstance(st, LayerFeatures) and st.layer == name and st.x.ndim == 4
        assert _rel(gen.resume_at(st), img) < 1e-12
        assert gen.resolve_layer(i + 1) == name
    assert _rel(gen.resume_at(st, st.x * 1.5), img) > 1e-6


def test_protocol_errors(make_small_generator, tiny_biggan):
    gen = make_small_generator()
    ws = gen.mapping(np.zeros((1, gen.z_dim)))
    n = len(gen.feature_layers)
    with pytest.raises(ValueError, match="unknown layer 'b4.torgb'"):
        gen.features_at(ws, "b4.torgb")
    with pytest.raises(ValueError, match=f"index {n + 1} out of range.*1..{n} for this generator"):
        gen.resolve_layer(n + 1)
    with pytest.raises(ValueError, match="c applies to BigGAN"):
        gen.features_at(ws, "b8.conv0", c=np.ones((1, 3)))
    with pytest.raises(ValueError, match="truncation applies to BigGAN"):
        gen.features_at(ws, "b8.conv0", truncation=0.5)
    st = gen.features_at(ws, "b8.conv0")
    with pytest.raises(ValueError, match="shape of the features at b8.conv0"):
        gen.resume_at(st, st.x[:, :-1])
    with pytest.raises(TypeError, match="LayerFeatures"):
        gen.resume_at(gen.synthesis_split(ws, "b8.conv0"))
    big = tiny_biggan
    z = np.zeros((1, big.z_dim))
    with pytest.raises(ValueError, match="BigGAN needs class vectors"):
        big.features_at(z, "block1")
    with pytest.raises(ValueError, match="for this BigGAN"):
        big.resolve_layer(0)
    with pytest.raises(ValueError, match="no noise inputs"):
        big.features_at(z, "block1", c=one_hot([0], 10), noise_mode="random")


@pytest.mark.float32
def test_split_resume_float32(make_small_generator, tiny_biggan):
    gen = make_small_generator()
    ws = gen.mapping(np.random.default_rng(1).standard_normal((2, gen.z_dim)))
    st = gen.features_at(ws, "b8.conv1")
    assert st.x.dtype == np.float32
    assert _rel(gen.resume_at(st), gen.synthesis(ws)) < 1e-5
    z = np.random.default_rng(2).standard_normal((2, tiny_biggan.z_dim)) * 0.5
    c = one_hot([3, 7], 10)
    st = tiny_biggan.features_at(z, "attention", c=c, truncation=0.5)
    assert st.x.dtype == np.float32
    assert _rel(tiny_biggan.resume_at(st), tiny_biggan(z, c, 0.5)) < 1e-5
