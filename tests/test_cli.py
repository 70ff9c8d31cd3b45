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
    assert np.isnan(np.load(dirs)["condition_number"])
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
    assert m["samples"] == 4 and len(m["random"]) == 2 and m["direction"]["roir"] > 0


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
