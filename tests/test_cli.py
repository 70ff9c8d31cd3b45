"""The jaxedit command line, end to end on the fixtures and the embedded default."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxedit.cli import main, parse_alphas, parse_int_list


def test_parse_int_list():
    assert parse_int_list("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_int_list("5") == [5]
    with pytest.raises(Exception):
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
    with pytest.raises(Exception):
        parse_alphas("1:2")


def test_resefa_workflow(tmp_path, ada_pkl, capsys):
    J, dirs = tmp_path / "J.npz", tmp_path / "dirs.npz"
    assert main(["jacobian", str(ada_pkl), "--seeds", "0-1", "--space", "w", "--resize", "16",
                 "--channels", "sum", "--x64", "--out", str(J)]) == 0
    data = np.load(J)
    assert data["jacobian"].shape == (2, 16, 16, 1, 32) and str(data["space"]) == "w"
    assert main(["resefa", "--jacobian", str(J), "--region", "eyes", "--k", "4",
                 "--out", str(dirs)]) == 0
    d = np.load(dirs)
    assert d["directions"].shape == (2, 4, 32)
    assert d["mask"].shape == (16, 16) and d["mask"].sum() == 3 * 8   # eyes: rows 110..130, cols 71..186 of 256 -> 6..9, 4..12
    assert main(["resefa", "--jacobian", str(J), "--region", "2,2,8,8", "--k", "3",
                 "--solver", "matrix_free", "--sample", "0", "--x64", "--out", str(dirs)]) == 0
    cond = np.load(dirs)["condition_number"]            # the matrix-free lower bound
    assert np.all(np.isfinite(cond)) and np.all(cond > 1)
    assert main(["resefa", "--jacobian", str(J), "--region", "2,2,8,8", "--k", "3",
                 "--aggregate", "mean", "--solver", "woodbury", "--out", str(dirs)]) == 0
    assert np.load(dirs)["directions"].shape == (1, 3, 32)
    png = tmp_path / "edit.png"
    assert main(["edit", str(ada_pkl), "--directions", str(dirs), "--index", "1", "--seeds",
                 "0-2", "--slots", "2-5", "--alphas", "-2:2:5", "--out", str(png)]) == 0
    assert np.asarray(Image.open(png)).shape == (3 * 32, 5 * 32, 3)
    capsys.readouterr()
    out = tmp_path / "m.json"
    assert main(["evaluate", str(ada_pkl), "--directions", str(dirs), "--seeds", "0-3",
                 "--random", "2", "--alpha", "1", "--out", str(out)]) == 0
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
    step = np.broadcast_to(d, (gen.num_ws, gen.w_dim)) if d.size == gen.w_dim else \
        d.reshape(gen.num_ws, gen.w_dim)
    edited = ws.copy()
    edited[:, list(slots)] += alpha * step[list(slots)]
    delta = np.asarray(gen.synthesis(edited)) - np.asarray(gen.synthesis(ws))
    m = jaxedit.region_mask(mask, delta.shape[1:3])[None, :, :, None]
    inside = np.sqrt((delta ** 2 * m).sum(axis=(1, 2, 3)))
    outside = np.sqrt((delta ** 2 * ~m).sum(axis=(1, 2, 3)))
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
    assert main(["evaluate", str(ada_pkl), "--directions", str(path), "--seeds", "0-1",
                 "--random", "0", "--alpha", "2", "--x64", "--out", str(out)]) == 0
    got = json.loads(out.read_text())["direction"]["roir"]
    assert got == pytest.approx(_manual_roir(ada_pkl, range(2), d[0, 0], range(gen.num_ws), 2.0,
                                             mask), rel=1e-6)
    assert main(["evaluate", str(ada_pkl), "--directions", str(path), "--seeds", "0-1",
                 "--random", "0", "--alpha", "2", "--slots", "4-7", "--x64",
                 "--out", str(out)]) == 0
    got = json.loads(out.read_text())["direction"]["roir"]
    assert got == pytest.approx(_manual_roir(ada_pkl, range(2), d[0, 0], range(4, 8), 2.0, mask),
                                rel=1e-6)


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
    assert np.asarray(Image.open(tmp_path / "demo" / "edit_grid.png")).shape == (4 * 64, 7 * 64, 3)
    assert report["jacobian"]["shape"] == [4, 64, 64, 1, 64]
    roir = report["roir"]
    assert len(roir["random_directions"]) == 8
    assert roir["top_direction"] < roir["random_mean"]
