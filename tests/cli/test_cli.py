"""The jaxedit command line, end to end on the fixtures and the embedded default."""

import argparse
import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxedit.cli import main
from jaxedit.cli._common import parse_alphas, parse_int_list


def test_parse_int_list():
    assert parse_int_list("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_int_list("5") == [5]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_int_list("3-1")


def test_convert_inspect_synth(tmp_path, ada_pkl, capsys):
    out = tmp_path / "ckpt"
    assert main(["convert", str(ada_pkl), str(out)]) == 0
    assert main(["inspect", str(ada_pkl)]) == 0
    text = capsys.readouterr().out
    assert "nvidia-pkl" in text and "synthesis.b8.conv0.weight" in text and "[64, 64, 3, 3]" in text
    assert main(["inspect", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["family"] == "stylegan2"
    png = tmp_path / "grid.png"
    assert main(["synth", str(out), "--seeds", "0-3", "--psi", "0.7", "--out", str(png)]) == 0
    img = np.asarray(Image.open(png))
    assert img.shape == (32, 128, 3) and img.std() > 1


def test_cli_errors_are_reported(tmp_path, capsys):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"garbage")
    assert main(["inspect", str(bad)]) == 2
    assert "bad.pkl" in capsys.readouterr().err
    assert main(["convert", str(bad), str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_parse_alphas():
    assert parse_alphas("-10:10:7") == list(np.linspace(-10, 10, 7))
    assert parse_alphas("-2,0,2.5") == [-2.0, 0.0, 2.5]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_alphas("1:2")


def test_resefa_workflow(tmp_path, ada_pkl, capsys):
    J, dirs = tmp_path / "J.npz", tmp_path / "dirs.npz"
    assert (
        main(
            [
                "jacobian",
                str(ada_pkl),
                "--seeds",
                "0-1",
                "--space",
                "w",
                "--resize",
                "16",
                "--channels",
                "sum",
                "--x64",
                "--out",
                str(J),
            ]
        )
        == 0
    )
    data = np.load(J)
    assert data["jacobian"].shape == (2, 16, 16, 1, 32) and str(data["space"]) == "w"
    assert (
        main(["resefa", "--jacobian", str(J), "--region", "eyes", "--k", "4", "--out", str(dirs)])
        == 0
    )
    d = np.load(dirs)
    assert d["directions"].shape == (2, 4, 32)
    assert (
        d["mask"].shape == (16, 16) and d["mask"].sum() == 3 * 8
    )  # eyes: rows 110..130, cols 71..186 of 256 -> 6..9, 4..12
    assert (
        main(
            [
                "resefa",
                "--jacobian",
                str(J),
                "--region",
                "2,2,8,8",
                "--k",
                "3",
                "--solver",
                "matrix_free",
                "--tol",
                "1e-8",
                "--sample",
                "0",
                "--x64",
                "--out",
                str(dirs),
                "--force",
            ]
        )
        == 0
    )
    saved = np.load(dirs)
    cond = saved["condition_number"]  # the matrix-free lower bound
    assert np.all(np.isfinite(cond)) and np.all(cond > 1)
    assert str(saved["condition_method"]) == "lower bound" and saved["converged"].all()
    assert np.all(saved["max_residual"] <= 1e-8) and np.all(saved["iterations"] > 0)
    assert (
        main(
            [
                "resefa",
                "--jacobian",
                str(J),
                "--region",
                "2,2,8,8",
                "--k",
                "3",
                "--aggregate",
                "mean",
                "--solver",
                "woodbury",
                "--out",
                str(dirs),
                "--force",
            ]
        )
        == 0
    )
    assert np.load(dirs)["directions"].shape == (1, 3, 32)
    png = tmp_path / "edit.png"
    assert (
        main(
            [
                "edit",
                str(ada_pkl),
                "--directions",
                str(dirs),
                "--index",
                "1",
                "--seeds",
                "0-2",
                "--slots",
                "2-5",
                "--alphas",
                "-2:2:5",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(png)).shape == (3 * 32, 5 * 32, 3)
    capsys.readouterr()
    out = tmp_path / "m.json"
    assert (
        main(
            [
                "evaluate",
                str(ada_pkl),
                "--directions",
                str(dirs),
                "--seeds",
                "0-3",
                "--random",
                "2",
                "--alpha",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "ROIR" in capsys.readouterr().out
    m = json.loads(out.read_text())
    assert m["samples"] == 4 and len(m["random"]) == 2
    # the ROIR recomputed here: reference latents (psi 0.7, 8 slots), the W direction on the
    # reference slots 4-7, the file's mask on the image grid
    d = np.load(dirs)
    want = _manual_roir(ada_pkl, range(4), d["directions"][0, 0], (4, 5, 6, 7), 1.0, d["mask"])
    assert m["direction"]["roir"] == pytest.approx(want, rel=1e-6)


def _manual_roir(ckpt, seeds, direction, slots, alpha, mask):
    """mean_n ‖Δ_n outside‖ / ‖Δ_n inside‖ for ws + alpha * d on ``slots`` (d a W direction
    [w_dim] or a slot-major W+ direction [num_ws * w_dim]); written out with NumPy."""
    import jaxedit

    gen = jaxedit.load_generator(ckpt)
    z = np.concatenate([jaxedit.seed_to_z(s, gen.z_dim) for s in seeds])
    ws = np.asarray(gen.mapping(z, None, 0.7, 8), np.float64)
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    step = (
        np.broadcast_to(d, (gen.num_ws, gen.w_dim))
        if d.size == gen.w_dim
        else d.reshape(gen.num_ws, gen.w_dim)
    )
    edited = ws.copy()
    edited[:, list(slots)] += alpha * step[list(slots)]
    delta = np.asarray(gen.synthesis(edited)) - np.asarray(gen.synthesis(ws))
    m = jaxedit.region_mask(mask, delta.shape[1:3])[None, :, :, None]
    inside = np.sqrt((delta**2 * m).sum(axis=(1, 2, 3)))
    outside = np.sqrt((delta**2 * ~m).sum(axis=(1, 2, 3)))
    return float(np.mean(outside / inside))


def test_wplus_directions_edit_every_slot_by_default(tmp_path, ada_pkl):
    """A slot-major W+ direction has a block per slot: edit/evaluate move all of them unless
    --slots says otherwise."""
    import jaxedit

    gen = jaxedit.load_generator(ada_pkl)
    d = np.random.default_rng(0).standard_normal((1, 2, gen.num_ws * gen.w_dim))
    mask = jaxedit.region_mask((8, 8, 20, 24), 32)
    path = tmp_path / "wplus.npz"
    np.savez(path, directions=d, space="wplus", mask=mask)
    out = tmp_path / "m.json"
    assert (
        main(
            [
                "evaluate",
                str(ada_pkl),
                "--directions",
                str(path),
                "--seeds",
                "0-1",
                "--random",
                "0",
                "--alpha",
                "2",
                "--x64",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    got = json.loads(out.read_text())["direction"]["roir"]
    assert got == pytest.approx(
        _manual_roir(ada_pkl, range(2), d[0, 0], range(gen.num_ws), 2.0, mask), rel=1e-6
    )
    assert (
        main(
            [
                "evaluate",
                str(ada_pkl),
                "--directions",
                str(path),
                "--seeds",
                "0-1",
                "--random",
                "0",
                "--alpha",
                "2",
                "--slots",
                "4-7",
                "--x64",
                "--out",
                str(out),
                "--force",
            ]
        )
        == 0
    )
    got = json.loads(out.read_text())["direction"]["roir"]
    assert got == pytest.approx(
        _manual_roir(ada_pkl, range(2), d[0, 0], range(4, 8), 2.0, mask), rel=1e-6
    )


def test_workflow_errors(tmp_path, ada_pkl, capsys):
    bad = tmp_path / "x.npz"
    np.savez(bad, foo=np.zeros(3))
    assert main(["resefa", "--jacobian", str(bad), "--region", "eyes"]) == 2
    assert "missing key(s) ['jacobian', 'space']" in capsys.readouterr().err
    assert main(["resefa", "--jacobian", str(tmp_path / "nope.npz"), "--region", "eyes"]) == 2
    assert main(["edit", str(ada_pkl), "--directions", str(bad)]) == 2
    assert not (tmp_path / "dirs.npz").exists()


def test_demo(tmp_path):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--seeds", "0-3"]) == 0
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["roundtrip_max_abs_error"] == 0.0
    assert np.asarray(Image.open(tmp_path / "demo" / "grid.png")).shape == (128, 256, 3)
    assert report["jacobian"]["shape"] == [4, 64, 64, 3, 32]
    for region in ("eyes", "mouth"):
        png = tmp_path / "demo" / f"edit_{region}.png"
        assert np.asarray(Image.open(png)).shape == (4 * 64, 7 * 64, 3)
        roir = report["regions"][f"toyfaces/{region}"]["roir"]
        assert len(roir["random"]) == 20
        assert roir["resefa_top"] < 0.5 * roir["random_median"]


# ---- listing commands, version, python -m, pipes --------------------------------------------------


def test_regions_lists_every_preset(capsys):
    from jaxedit import regions

    assert main(["regions"]) == 0
    out = capsys.readouterr().out
    names = regions.preset_names()
    assert names and all(n in out for n in names)
    assert "110,71,130,186" in out  # ffhq/eyes on the 256 grid (resefa coordinate.py)


def test_layers_table(ada_pkl, capsys):
    assert main(["layers", str(ada_pkl)]) == 0
    out = capsys.readouterr().out
    assert "8 W+ slots" in out
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if ln.startswith("b")}
    # name: resolution, in, out, style, W+ slot (stylegan2-ada: b32.conv0 is 64 -> 32 at 32 px)
    assert rows["b4.conv1"] == ["4", "64", "64", "64", "0"]
    assert rows["b32.conv0"] == ["32", "64", "32", "64", "5"]
    assert rows["b32.torgb"] == ["32", "32", "3", "32", "7"]
    assert "coarse = 0,1" in out and "fine = 6,7" in out


def _run_module(*args, **kw):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run(
        [sys.executable, "-m", "jaxedit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def test_python_m_jaxedit_version_and_usage_error():
    import jaxedit

    r = _run_module("--version")
    assert r.returncode == 0 and r.stdout.startswith(f"jaxedit {jaxedit.__version__}")
    r = _run_module("synth", "x", "--cols", "0")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        "jaxedit synth: error: argument --cols: must be a positive "
        "integer (>= 1), got '0' (see 'jaxedit synth --help')"
    ]


def test_broken_pipe_is_quiet():
    """`jaxedit regions | head -0`: the reader is gone before the first write."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    p = subprocess.Popen(
        [sys.executable, "-m", "jaxedit", "regions"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 141, err
    assert err == ""


def test_broken_pipe_in_process(monkeypatch, capsys):
    import io

    class Closed(io.StringIO):
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise io.UnsupportedOperation

    monkeypatch.setattr("sys.stdout", Closed())
    assert main(["regions"]) == 141
    assert capsys.readouterr().err == ""


# ---- synth: batches, one file per seed, symlinks, non-finite ---------------------------------------


def test_synth_batched_equals_unbatched(tmp_path, ada_pkl):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert (
        main(
            [
                "synth",
                str(ada_pkl),
                "--seeds",
                "0-4",
                "--batch",
                "2",
                "--cols",
                "3",
                "--out",
                str(a),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "synth",
                str(ada_pkl),
                "--seeds",
                "0-4",
                "--batch",
                "5",
                "--cols",
                "3",
                "--out",
                str(b),
            ]
        )
        == 0
    )
    ia, ib = np.asarray(Image.open(a)).astype(int), np.asarray(Image.open(b)).astype(int)
    assert ia.shape == (64, 96, 3)
    assert np.abs(ia - ib).max() <= 1 and (ia != ib).mean() < 1e-3  # float rounding only
    assert ia[32:, 64:].max() == 0  # empty 6th tile
    outdir = tmp_path / "imgs"
    assert (
        main(["synth", str(ada_pkl), "--seeds", "0-4", "--batch", "2", "--outdir", str(outdir)])
        == 0
    )
    assert sorted(os.listdir(outdir)) == [f"seed{s:04d}.png" for s in range(5)]
    one = np.asarray(Image.open(outdir / "seed0004.png")).astype(int)
    assert np.abs(one - ia[32:, 32:64]).max() <= 1
    assert main(["synth", str(ada_pkl), "--seeds", "3", "--outdir", str(outdir)]) == 2
    assert main(["synth", str(ada_pkl), "--seeds", "3", "--outdir", str(outdir), "--force"]) == 0


def test_synth_random_noise_and_psi(tmp_path, ada_pkl):
    out = tmp_path / "n.png"
    assert (
        main(
            [
                "synth",
                str(ada_pkl),
                "--seeds",
                "0-1",
                "--noise-mode",
                "random",
                "--noise-seed",
                "3",
                "--psi",
                "0.5",
                "--cutoff",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(out)).shape == (32, 64, 3)


def test_evaluate_reports_non_finite_images(tmp_path, ada_pkl, capsys):
    """A huge alpha overflows the latents: reported as non-finite, exit 2, no NaN printed."""
    d = tmp_path / "d.npz"
    np.savez(d, directions=np.ones((1, 32)), space="w", mask=np.eye(8, dtype=bool) | True)
    m = np.zeros((8, 8), bool)
    m[2:5, 2:5] = True
    np.savez(d, directions=np.ones((1, 32)), space="w", mask=m)
    capsys.readouterr()
    rc = main(
        [
            "evaluate",
            str(ada_pkl),
            "--directions",
            str(d),
            "--seeds",
            "0",
            "--random",
            "0",
            "--alpha",
            "1e308",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 2 and "nan" not in out.lower()
    assert "non-finite" in err.splitlines()[-1]


def test_one_dimensional_direction_file(tmp_path, ada_pkl):
    d = tmp_path / "one.npz"
    np.savez(d, directions=np.linspace(-1, 1, 32), space="w")
    png = tmp_path / "e.png"
    assert (
        main(
            [
                "edit",
                str(ada_pkl),
                "--directions",
                str(d),
                "--seeds",
                "0",
                "--alphas=-1,0,1",
                "--out",
                str(png),
                "--slots",
                "0-7",
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(png)).shape == (32, 96, 3)


# ---- generators without files: conditional StyleGAN2, BigGAN shapes, plugins ----------------------


def test_conditional_generator_needs_a_valid_class(
    tmp_path, make_small_generator, monkeypatch, capsys
):
    from jaxedit.cli import _generators

    gen = make_small_generator(c_dim=3)
    monkeypatch.setattr(_generators, "load_generator", lambda path, which=None: gen)
    out = tmp_path / "c.png"
    assert main(["synth", "default", "--seeds", "0-1", "--out", str(out)]) == 2
    assert "conditional: pass --class (0..2)" in capsys.readouterr().err
    assert main(["synth", "default", "--seeds", "0-1", "--class", "3", "--out", str(out)]) == 2
    assert "--class 3 out of range: this generator has 3 classes" in capsys.readouterr().err
    assert main(["synth", "default", "--seeds", "0-1", "--class", "2", "--out", str(out)]) == 0
    assert np.asarray(Image.open(out)).shape == (16, 32, 3)
    J = tmp_path / "J.npz"  # ws from seeds go through the mapping with the class
    assert main(["jacobian", "default", "--seeds", "0", "--class", "1", "--out", str(J)]) == 0
    assert np.load(J)["jacobian"].shape == (1, 16, 16, 1, 8)


def test_layers_biggan(monkeypatch, capsys):
    from jaxedit.checkpoint import abstract_generator
    from jaxedit.cli import _generators
    from jaxedit.models.biggan import BigGANConfig

    cfg = BigGANConfig.preset(128, z_dim=8, class_embed_dim=8, channel_width=8, num_classes=10)
    gen = abstract_generator("biggan", cfg)  # shapes only: nothing computed
    monkeypatch.setattr(_generators, "load_generator", lambda path, which=None: gen)
    assert main(["layers", "default"]) == 0
    out = capsys.readouterr().out
    rows = {
        ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if ln.startswith(("block", "conv"))
    }
    assert "BigGAN-deep 128px" in out and rows["conv_to_rgb"][0] == "128"
    assert rows["block0.conv_0"] == ["4", "128", "32"]  # 16 * 8 channels, bottleneck / 4
    assert rows["conv_to_rgb"] == ["128", "8", "3"]
    from jaxedit.spectra import layer_spectrum

    with pytest.raises(ValueError, match="choose one of") as e:
        layer_spectrum(gen, "nope")
    assert all(name in str(e.value) for name in rows if name.startswith("block"))


def test_grid_size_is_bounded(monkeypatch, ada_pkl, tmp_path, capsys):
    from jaxedit.cli import _generators

    monkeypatch.setattr(_generators, "MAX_GRID_BYTES", 10 * 32 * 32 * 3)
    assert main(["synth", str(ada_pkl), "--seeds", "0-10", "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert "11 images of 32x32" in err and "--outdir" in err and not (tmp_path / "g.png").exists()


def test_plugin_subcommands_share_the_layer(monkeypatch, tmp_path, capsys):
    """A command module (COMMANDS) gets one-line errors, --debug, defaults in help and the
    output options without doing anything special."""
    import types

    from jaxedit import cli
    from jaxedit._io import save_json
    from jaxedit.cli import _common as cc

    mod = types.ModuleType("jaxedit_test_plugin")

    def _cmd(args):
        cc.check_output(args.out, args.force)
        if args.k > 3:
            raise cc.CLIError(f"--k {args.k} is too large for this model")
        save_json(args.out, {"k": args.k}, overwrite=args.force)
        return 0

    def register(sub):
        p = sub.add_parser("toy", help="a plugin", epilog=cc.examples("jaxedit toy --k 2"))
        p.add_argument("--k", type=cc.positive_int, default=2, help="directions")
        cc.add_output_args(p, "toy.json", "the result (JSON)")
        p.set_defaults(fn=_cmd)

    mod.register = register
    monkeypatch.setattr(cli, "COMMANDS", (mod,))
    out = tmp_path / "t.json"
    assert main(["toy", "--out", str(out)]) == 0 and out.exists()
    assert main(["toy", "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["toy", "--k", "0"]) == 2
    assert "argument --k: must be a positive integer" in capsys.readouterr().err
    assert main(["toy", "--k", "5", "--out", str(out), "--force", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("--k 5 is too large for this model")
    assert main(["toy", "--help"]) == 0
    assert "directions (default: 2)" in capsys.readouterr().out


@pytest.mark.float32
def test_cli_workflow_float32(tmp_path, ada_pkl, capsys):
    """The users' default (x64 off): the CLI computes and stores float32, end to end."""
    J, dirs, png = tmp_path / "J.npz", tmp_path / "d.npz", tmp_path / "e.png"
    assert main(["jacobian", str(ada_pkl), "--seeds", "0-1", "--resize", "8", "--out", str(J)]) == 0
    assert np.load(J)["jacobian"].dtype == np.float32
    assert (
        main(
            [
                "resefa",
                "--jacobian",
                str(J),
                "--region",
                "2,2,6,6",
                "--k",
                "3",
                "--aggregate",
                "mean",
                "--out",
                str(dirs),
            ]
        )
        == 0
    )
    assert np.isfinite(np.load(dirs)["directions"]).all()
    assert (
        main(
            [
                "edit",
                str(ada_pkl),
                "--directions",
                str(dirs),
                "--seeds",
                "0",
                "--alphas",
                "-2:2:3",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(png)).shape == (32, 96, 3)
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                str(ada_pkl),
                "--directions",
                str(dirs),
                "--seeds",
                "0-1",
                "--random",
                "1",
                "--alpha",
                "2",
            ]
        )
        == 0
    )
    assert "nan" not in capsys.readouterr().out.lower()
    assert main(["edit", str(ada_pkl), "--directions", str(dirs), "--alphas", "nan,1"]) == 2


def test_resefa_solver_options_and_non_convergence(tmp_path, capsys):
    """--tol/--maxiter reach MatrixFree; a run that stops above its tolerance still writes the
    directions, with converged=False in the file and the warning on stderr; the options are refused
    for the direct solvers (one line, exit 2)."""
    rng = np.random.default_rng(0)
    J = rng.standard_normal((1, 24, 24, 1, 96)) * np.exp(-np.linspace(0, 4, 96))  # cond(M_b) 4.6e3
    jpath, out = tmp_path / "J.npz", tmp_path / "d.npz"
    np.savez(jpath, jacobian=J, space="w")
    args = [
        "resefa",
        "--jacobian",
        str(jpath),
        "--region",
        "6,6,14,16",
        "--k",
        "4",
        "--x64",
        "--out",
        str(out),
    ]
    assert main(args + ["--solver", "matrix_free", "--maxiter", "3"]) == 0
    saved = np.load(out)
    assert not saved["converged"].any() and saved["iterations"].tolist() == [3]
    assert saved["max_residual"][0] > 1e-6
    err = capsys.readouterr().err
    assert "warning: the matrix-free solver stopped after 3 iterations" in err
    assert main(args + ["--solver", "dense", "--tol", "1e-6", "--force"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tol and --maxiter apply to --solver matrix_free" in err[0]
