"""BigGAN-deep against pytorch-pretrained-biggan (random small models saved in both torch formats)."""

import json
import os

import jax
import numpy as np
import pytest

import jaxedit
from jaxedit.models.biggan import PRESET_LAYERS, BigGANConfig, BigGANGenerator, stat_weights

torch = pytest.importorskip("torch")
ppb = pytest.importorskip("pytorch_pretrained_biggan")

CONFIGS = {
    "attn3_zip": (
        dict(
            output_dim=32,
            z_dim=8,
            class_embed_dim=8,
            channel_width=8,
            num_classes=10,
            layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
            attention_layer_position=3,
            n_stats=51,
        ),
        True,
    ),
    "attn1_legacy": (
        dict(
            output_dim=32,
            z_dim=6,
            class_embed_dim=6,
            channel_width=4,
            num_classes=7,
            layers=[(True, 16, 16), (True, 16, 8), (False, 8, 4), (True, 4, 2), (False, 2, 1)],
            attention_layer_position=1,
            n_stats=11,
        ),
        False,
    ),
}


def _build(out_dir, cfg_kw, zip_format, seed=0):
    """A random model whose u/v have converged (train-mode forwards) and whose image is not
    saturated, saved as pytorch_model.bin + config.json; returns the eval-mode float64 model."""
    torch.manual_seed(seed)
    cfg = ppb.BigGANConfig(**cfg_kw)
    m = ppb.BigGAN(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in m.named_buffers():
            if name.endswith("running_means"):
                buf.copy_(0.1 * torch.randn(buf.shape, generator=g))
            elif name.endswith("running_vars"):
                buf.copy_(0.5 + torch.rand(buf.shape, generator=g))
        for name, p in m.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.7)
            elif name == "generator.bn.weight":
                p.copy_(torch.randn(p.shape, generator=g))
            elif name == "generator.bn.bias":
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
        m.train()  # power iterations converge u, v (random u/v would make σ meaningless)
        z = torch.randn(2, cfg.z_dim, generator=g)
        c = torch.softmax(torch.randn(2, cfg.num_classes, generator=g), 1)
        for _ in range(30):
            m(z, c, 0.5)
        m.eval()
        bn_w = m.generator.bn.weight
        for _ in range(20):  # scale the final BN so that tanh is informative, not saturated
            out = m(z, c, 0.5)
            if out.abs().max() > 0.9:
                bn_w.mul_(0.7)
            elif out.std() < 0.1:
                bn_w.mul_(1.5)
            else:
                break
    os.makedirs(out_dir, exist_ok=True)
    torch.save(
        m.state_dict(),
        os.path.join(out_dir, "pytorch_model.bin"),
        _use_new_zipfile_serialization=zip_format,
    )
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(cfg.to_json_string())
    return m.double()


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def pair(request, tmp_path_factory):
    kw, zip_format = CONFIGS[request.param]
    d = tmp_path_factory.mktemp(request.param)
    ref = _build(str(d), kw, zip_format)
    return d, ref, jaxedit.load_generator(d), kw


@pytest.fixture(scope="module")
def small_biggan(tmp_path_factory):
    kw, zip_format = CONFIGS["attn3_zip"]
    d = tmp_path_factory.mktemp("jac")
    _build(str(d), kw, zip_format)
    return jaxedit.load_generator(d), kw


def _ref_images(ref, z, c, t):
    with torch.no_grad():
        return ref(torch.tensor(z), torch.tensor(c), t).numpy().transpose(0, 2, 3, 1)


def _inputs(kw, n=3, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, kw["z_dim"]))
    c = np.eye(kw["num_classes"])[rng.integers(0, kw["num_classes"], n)]
    c[-1] = rng.dirichlet(np.ones(kw["num_classes"]))  # one soft class mix
    return z, c


def _rel(a, b):
    return np.abs(np.asarray(a) - b).max() / np.abs(b).max()


@pytest.mark.parametrize("t", [0.4, 0.555, 1.0, 0.14])
def test_float64_parity(pair, t):
    _, ref, gen, kw = pair
    z, c = _inputs(kw)
    want = _ref_images(ref, z, c, t)
    assert 0.05 < want.std() and np.abs(want).max() < 0.99  # informative, not saturated
    img = gen(z, c, truncation=t)
    assert img.shape == (3, 32, 32, 3) and img.dtype == np.float64
    assert _rel(img, want) < 1e-6


def test_float32_and_sensitivity(pair):
    _, ref, gen, kw = pair
    z, c = _inputs(kw, seed=1)
    want = _ref_images(ref, z, c, 0.555)
    assert _rel(gen(z, c, 0.555, dtype=np.float32), want) < 1e-4
    # a plain lerp of the stats (not the reference's reversed weights) would be visibly off
    assert _rel(gen(z, c, 0.545), want) > 1e-4
    assert _rel(_ref_images(ref, z, c, 0.545), want) > 1e-4


def test_stat_weights_reproduce_reference_quirks():
    assert stat_weights(0.4, 51) == (20, 1.0, 0.0)
    idx, a, b = stat_weights(0.555, 51)
    assert idx == 27 and a == pytest.approx(0.75) and b == pytest.approx(0.25)  # reversed
    idx, a, b = stat_weights(0.14, 51)  # 0.14 / 0.02 = 7.000000000000001
    assert idx == 7 and b == pytest.approx(1.0) and 0 < a < 1e-12
    idx, a, b = stat_weights(0.58, 51)  # 28.999999999999996
    assert idx == 28 and a == pytest.approx(1.0)
    with pytest.raises(ValueError, match="truncation"):
        stat_weights(0.0, 51)


def test_truncated_noise_matches_reference():
    from pytorch_pretrained_biggan.utils import truncated_noise_sample as ref

    got = jaxedit.truncated_noise_sample(3, 16, truncation=0.4, seed=7)
    np.testing.assert_array_equal(got, ref(batch_size=3, dim_z=16, truncation=0.4, seed=7))
    assert got.dtype == np.float32 and np.abs(got).max() <= 0.8


def test_presets_match_reference_and_param_counts():
    from flax import nnx

    assert PRESET_LAYERS[128] == tuple(tuple(x) for x in ppb.BigGANConfig().layers)
    for res, count in ((128, 50_388_609), (256, 55_880_833), (512, 56_163_905)):
        cfg = BigGANConfig.preset(res)
        abstract = nnx.eval_shape(lambda: BigGANGenerator(cfg, rngs=nnx.Rngs(0)))
        n = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
        assert n == count, res


def test_checkpoint_round_trip_and_convert(pair, tmp_path):
    d, _, gen, kw = pair
    out = jaxedit.convert_checkpoint(d, tmp_path / "ckpt")
    meta = jaxedit.read_config(out)
    assert meta["family"] == "biggan" and meta["source"]["format"] == "biggan-bin"
    again = jaxedit.load_generator(out)
    z, c = _inputs(kw)
    np.testing.assert_array_equal(again(z, c, 0.4), gen(z, c, 0.4))
    also = jaxedit.load_generator(d / "pytorch_model.bin")
    np.testing.assert_array_equal(also(z, c, 0.4), gen(z, c, 0.4))


def test_converter_errors(tmp_path, pair):
    import converters

    d, _, _, _ = pair
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "pytorch_model.bin").write_bytes((d / "pytorch_model.bin").read_bytes())
    with pytest.raises(converters.UnsupportedFormatError, match="config.json"):
        jaxedit.load_generator(lone)
    sd = torch.load(d / "pytorch_model.bin")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((d / "config.json").read_text())
    sd2 = dict(sd)
    del sd2["generator.bn.weight"]
    torch.save(sd2, bad / "pytorch_model.bin")
    with pytest.raises(converters.KeyMismatchError, match="generator.bn.weight"):
        jaxedit.load_generator(bad)
    sd3 = dict(sd)
    sd3["generator.gen_z.weight_u"] = torch.zeros_like(sd["generator.gen_z.weight_u"])
    torch.save(sd3, bad / "pytorch_model.bin")
    with pytest.raises(converters.CorruptCheckpointError, match="gen_z"):
        jaxedit.load_generator(bad)
    cfg = json.loads((d / "config.json").read_text())
    cfg["output_dim"] = 64
    (bad / "config.json").write_text(json.dumps(cfg))
    torch.save(sd, bad / "pytorch_model.bin")
    with pytest.raises(ValueError, match="output_dim"):
        jaxedit.load_generator(bad)


def test_jacobian_spaces_and_resefa(small_biggan):
    gen, kw = small_biggan
    z, c = _inputs(kw, n=2)
    opts = dict(
        sampling=jaxedit.Sampling(c=c, truncation_psi=0.4),
        output=jaxedit.OutputSpec(channels="sum"),
    )
    Jz = jaxedit.jacobian(gen, z, space="z", **opts)
    Jc = jaxedit.jacobian(gen, z, space="cond", **opts)
    Je = jaxedit.jacobian(gen, z, space="embed", **opts)
    zd = kw["z_dim"]
    assert Jz.shape == (2, 32, 32, 1, zd) and Jc.shape == (2, 32, 32, 1, 2 * zd)
    np.testing.assert_allclose(Jc[..., :zd], Jz, atol=1e-12)
    np.testing.assert_allclose(Jc[..., zd:], Je, atol=1e-12)

    def f(x):
        return gen(x[None], c[:1], 0.4, jit=False)[0].sum(-1, keepdims=True)

    ref = jax.jit(jax.jacrev(f))(z[0])
    np.testing.assert_allclose(Jz[0], ref, atol=1e-11 * float(np.abs(ref).max()))
    res = jaxedit.resefa(Jc[0], "biggan/center0", k=3)
    assert res.directions.shape == (3, 2 * zd) and np.all(res.residuals < 1e-8)
    imgs = jaxedit.render_edits(
        gen,
        z,
        res.directions[0],
        [0.0, 1.0],
        space="cond",
        sampling=jaxedit.Sampling(c=c, truncation_psi=0.4),
    )
    np.testing.assert_allclose(imgs[0], gen(z, c, 0.4), atol=1e-12)
    with pytest.raises(ValueError, match="class vectors"):
        jaxedit.jacobian(gen, z, space="z")
    with pytest.raises(ValueError, match="space"):
        jaxedit.jacobian(gen, z, space="w", sampling=jaxedit.Sampling(c=c))


def test_cli_synth_biggan(pair, tmp_path):
    from PIL import Image

    from jaxedit.cli import main

    d, _, _, _ = pair
    png = tmp_path / "s.png"
    assert (
        main(
            [
                "synth",
                str(d),
                "--class",
                "3",
                "--truncation",
                "0.4",
                "--seeds",
                "0-1",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(png)).shape == (32, 64, 3)
    assert (
        main(["synth", str(d), "--seeds", "0", "--out", str(tmp_path / "x.png")]) == 2
    )  # needs --class
    assert main(["inspect", str(d)]) == 0
    assert main(["convert", str(d), str(tmp_path / "ck")]) == 0
    assert main(["synth", str(tmp_path / "ck"), "--class", "1", "--out", str(png), "--force"]) == 0


def test_sefa_and_chain_factorization(small_biggan):
    from jaxedit.methods import spectra

    gen, kw = small_biggan
    zd = kw["z_dim"]
    kz = np.asarray(gen.gen_z.kernel[...], np.float64)[:zd]
    raw = jaxedit.sefa(gen, layers="gen_z", k=3, normalize=None, dtype=np.float64)
    w, v = np.linalg.eigh(kz @ kz.T)
    np.testing.assert_allclose(raw.eigenvalues, w[::-1][:3], rtol=1e-9)
    np.testing.assert_allclose(
        np.abs(np.sum(raw.directions * v[:, ::-1][:, :3].T, 1)), 1, atol=1e-9
    )
    full = jaxedit.sefa(gen, layers="all", k=3)
    assert full.directions.shape == (3, zd) and len(full.slots) == 1 + 5 * 4 * 2
    chain = spectra.layer_factorization(gen, "gen_z", k=3)
    np.testing.assert_allclose(chain.eigenvalues, raw.eigenvalues, rtol=1e-9)
    conv0 = spectra.layer_factorization(
        gen, "block0.conv_0", k=3, sampling=jaxedit.Sampling(truncation_psi=0.4)
    )
    _, var = (
        np.asarray(gen.block0.bn_0.running_means[...], np.float64),
        np.asarray(gen.block0.bn_0.running_vars[...], np.float64),
    )
    x = kz.reshape(zd, 4, 4, -1) / np.sqrt(var[20] + 1e-4)  # truncation 0.4 -> stats[20]
    lin = np.einsum("zhwc,co->hwoz", x, np.asarray(gen.block0.conv_0.kernel[...], np.float64)[0, 0])
    w2 = np.linalg.eigvalsh(lin.reshape(-1, zd).T @ lin.reshape(-1, zd))
    np.testing.assert_allclose(conv0.eigenvalues, w2[::-1][:3], rtol=1e-9)
    conv1 = spectra.layer_factorization(
        gen, "block0.conv_1", k=2, sampling=jaxedit.Sampling(truncation_psi=0.4)
    )
    assert conv1.directions.shape == (2, zd) and np.all(np.isfinite(conv1.eigenvalues))
    with pytest.raises(ValueError, match="sampling.truncation_cutoff applies to StyleGAN2"):
        spectra.layer_factorization(
            gen, "block0.conv_0", k=3, sampling=jaxedit.Sampling(truncation_cutoff=4)
        )
    with pytest.raises(TypeError, match="sampling must be a jaxedit.Sampling, got float"):
        spectra.layer_factorization(gen, "block0.conv_0", k=3, sampling=0.4)
    with pytest.raises(ValueError, match="BigGAN layers"):
        jaxedit.sefa(gen, layers=[0, 1])
