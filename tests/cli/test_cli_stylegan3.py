"""Every command on StyleGAN3: the tiny NVIDIA config-T pickle (32 px, 16 W+ slots) and a
converted copy of it. ``synth --translate / --rotate`` against NVIDIA's gen_images.py transform
(the fixture's transformed images), the ``layers`` table, and the workflows (Jacobian -> ReSeFa
-> edit / evaluate, moments, SeFa, PandA, Editing in Style) end to end."""

import json

import numpy as np
import pytest
from conftest import fixture_path
from PIL import Image

import jaxedit
from jaxedit.cli import main


@pytest.fixture(scope="module")
def pkl():
    return str(fixture_path("stylegan3_t_tiny.pkl"))


@pytest.fixture(scope="module")
def gen(pkl):
    return jaxedit.load_generator(pkl)


def _png(path):
    return np.asarray(Image.open(path))


def test_synth_translate_rotate_is_gen_images_transform(tmp_path, pkl, gen, capsys):
    out = tmp_path / "t.png"
    args = ["synth", pkl, "--seeds", "0,1", "--translate", "0.1,-0.05", "--rotate", "10"]
    assert main(args + ["--out", str(out)]) == 0
    z = np.concatenate([jaxedit.seed_to_z(s, gen.z_dim) for s in (0, 1)])
    m = jaxedit.make_transform((0.1, -0.05), 10)
    want = jaxedit.to_uint8(gen(z, transform=m))
    np.testing.assert_array_equal(_png(out), np.concatenate(list(want), axis=1))
    plain = tmp_path / "p.png"
    assert main(["synth", pkl, "--seeds", "0,1", "--out", str(plain)]) == 0
    assert np.abs(_png(plain).astype(int) - _png(out)).max() > 10  # the transform moved it
    capsys.readouterr()


def test_translate_refused_on_other_families(tmp_path, ada_pkl, capsys):
    out = tmp_path / "x.png"
    assert main(["synth", str(ada_pkl), "--translate", "0.1,0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apply to StyleGAN3" in err[0] and "StyleGAN2" in err[0]
    assert main(["synth", str(ada_pkl), "--rotate", "5", "--out", str(out)]) == 2
    assert "apply to StyleGAN3" in capsys.readouterr().err and not out.exists()
    assert main(["synth", str(ada_pkl), "--translate", "0.1", "--out", str(out)]) == 2
    assert "TX,TY" in capsys.readouterr().err


def test_layers_table(pkl, capsys):
    assert main(["layers", pkl]) == 0
    out = capsys.readouterr().out
    assert "StyleGAN3 32px" in out and "16 W+ slots" in out and "rate" in out
    rows = {
        ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if ln.startswith(("input ", "L"))
    }
    # name: size (margins included), in, out, style, W+ slot, sampling rate, margin
    assert rows["input"] == ["36", "4", "32", "4", "0", "16", "10"]
    assert rows["L5_52_32"] == ["52", "32", "32", "32", "6", "32", "10"]
    assert rows["L14_32_3"] == ["32", "16", "3", "16", "15", "32", "0"]
    assert "all = 1,2,3" in out and "coarse = 1;" in out


def test_sefa(tmp_path, pkl, gen):
    out = tmp_path / "sefa.npz"
    assert main(["sefa", pkl, "--layers", "all", "--k", "4", "--out", str(out)]) == 0
    d = np.load(out)
    assert d["directions"].shape == (1, 4, 32) and list(d["slots"]) == list(range(1, 16))
    ref = jaxedit.sefa(gen, "all", k=4)
    np.testing.assert_allclose(d["directions"][0], ref.directions, atol=1e-6)
    assert main(["sefa", pkl, "--layers", "0,4", "--k", "2", "--out", str(out), "--force"]) == 0
    assert list(np.load(out)["slots"]) == [0, 4]


@pytest.mark.slow
def test_jacobian_resefa_edit_evaluate(tmp_path, pkl, capsys):
    J, dirs = tmp_path / "J.npz", tmp_path / "dirs.npz"
    common = ["--seeds", "0-1", "--resize", "8", "--x64"]
    assert main(["jacobian", pkl, *common, "--out", str(J)]) == 0
    assert np.load(J)["jacobian"].shape == (2, 8, 8, 1, 32)
    assert (
        main(["resefa", "--jacobian", str(J), "--region", "eyes", "--k", "3", "--out", str(dirs)])
        == 0
    )
    d = np.load(dirs)
    assert d["directions"].shape == (2, 3, 32) and d["mask"].sum() > 0  # ffhq/eyes on 8 px
    png = tmp_path / "edit.png"
    assert main(["edit", pkl, "--directions", str(dirs), "--seeds", "0", "--out", str(png)]) == 0
    assert _png(png).shape[0] == 32
    capsys.readouterr()
    ev = ["evaluate", pkl, "--directions", str(dirs), "--seeds", "0-1", "--alpha", "2"]
    assert main(ev + ["--random", "1"]) == 0
    assert "ROIR" in capsys.readouterr().out


@pytest.mark.slow
def test_moments_and_resefa(tmp_path, pkl):
    m = tmp_path / "m.npz"
    args = ["moments", pkl, "--seeds", "0-1", "--regions", "eyes", "--resize", "8", "--out", str(m)]
    assert main(args) == 0
    out = tmp_path / "r.npz"
    assert (
        main(["resefa", "--moments", str(m), "--region", "eyes", "--k", "3", "--out", str(out)])
        == 0
    )
    assert np.load(out)["directions"].shape[-2:] == (3, 32)


@pytest.mark.slow
def test_panda_fit_edit_parts(tmp_path, pkl, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fit = ["panda", "fit", pkl, "--layer", "L3_36_32", "--ranks", "8,3", "--steps", "4"]
    assert main(fit + ["--seeds", "0-3"]) == 0
    f = tmp_path / "panda_L3_36_32.npz"
    res = jaxedit.panda.load(f)
    assert res.layer == "L3_36_32" and res.parts.shape == (36, 36, 3)
    edit = ["panda", "edit", pkl, "--factors", str(f), "--parts", "0", "--appearance", "1"]
    assert main(edit + ["--seeds", "0-1", "--strength", "0,3"]) == 0
    grid = _png(tmp_path / "panda_edit_p0_a1.png")
    assert grid.shape == (2 * 32, 4 * 32, 3)  # original, 2 strengths, the part region
    assert main(["panda", "parts", "--factors", str(f), "--seeds", "0"]) == 0
    capsys.readouterr()


@pytest.mark.slow
def test_eis_catalog_transfer(tmp_path, pkl, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cat_args = ["eis", "catalog", pkl, "--layer", "L3_36_32", "--k", "3", "--seeds", "0-3"]
    assert main(cat_args + ["--n-init", "1", "--batch-size", "2"]) == 0
    cat = tmp_path / "eis_catalog_L3_36_32_k3.npz"
    c = jaxedit.eis.Catalog.load(cat)
    assert c.resolution == 16 and c.layer == "L3_36_32"
    assert main(["eis", "annotate", str(cat), "eyes=0,1"]) == 0
    js = tmp_path / "t.json"
    transfer = ["eis", "transfer", pkl, "--catalog", str(cat), "--label", "eyes"]
    assert (
        main(transfer + ["--target-seeds", "0", "--reference-seeds", "5", "--json", str(js)]) == 0
    )
    assert json.loads(js.read_text())["label"] == "eyes"
    assert _png(tmp_path / "eis_transfer_eyes.png").shape == (2 * 32, 2 * 32, 3)
    capsys.readouterr()


@pytest.mark.slow
def test_converted_checkpoint_dir(tmp_path, pkl, capsys):
    ckpt = tmp_path / "ckpt"
    assert main(["convert", pkl, str(ckpt)]) == 0
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["synth", pkl, "--seeds", "0", "--rotate", "30", "--out", str(a)]) == 0
    assert main(["synth", str(ckpt), "--seeds", "0", "--rotate", "30", "--out", str(b)]) == 0
    np.testing.assert_array_equal(_png(a), _png(b))
    assert main(["layers", str(ckpt)]) == 0
    assert "L14_32_3" in capsys.readouterr().out
    out = tmp_path / "s.npz"
    assert main(["sefa", str(ckpt), "--k", "3", "--out", str(out)]) == 0
