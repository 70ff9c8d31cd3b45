"""The jaxedit command line, end to end on the fixtures and the embedded default."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxedit.cli import main, parse_int_list


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


def test_demo(tmp_path):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--seeds", "0-3"]) == 0
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["roundtrip_max_abs_error"] == 0.0
    assert np.asarray(Image.open(tmp_path / "demo" / "grid.png")).shape == (128, 256, 3)
