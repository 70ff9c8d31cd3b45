"""A newcomer's mistakes (issue 28): the real mistake is named first, in one line with one prefix,
never hidden by an existing output and never answered with advice to unpickle."""

import re

import numpy as np
import pytest
from PIL import Image

from jaxedit.cli import build_parser, main

PREFIX = re.compile(r"^jaxedit [a-z-]+( [a-z-]+)?: error: ")


def _err(capsys, argv) -> str:
    rc = main(argv)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, (argv, rc, out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert PREFIX.match(lines[0]), lines[0]
    return lines[0]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save("a.png")
    np.savez("x.npz", a=np.zeros(3))
    for name in ("synth.png", "jacobian.npz", "resefa_eyes.npz", "outfile"):
        (tmp_path / name).write_bytes(b"exists")
    return tmp_path


def test_inputs_are_checked_before_outputs(folder, capsys):
    # synth.png exists, but the missing checkpoint is the real mistake
    line = _err(capsys, ["synth", "missing.pkl"])
    assert "missing.pkl: no such checkpoint" in line and "already exists" not in line
    line = _err(capsys, ["jacobian", "a.png", "--seeds", "0"])
    assert "a.png: not a checkpoint: it is a PNG image" in line
    line = _err(capsys, ["resefa", "--jacobian", "missing.npz", "--region", "eyes"])
    assert "Jacobian file not found" in line
    # a good input, then the existing output is named
    line = _err(capsys, ["synth", "default", "--seeds", "0"])
    assert "synth.png already exists" in line
    assert (folder / "synth.png").read_bytes() == b"exists"


def test_wrong_files_are_named_without_pickle_advice(folder, capsys):
    for argv, want in (
        (["resefa", "--jacobian", "a.png", "--region", "eyes"], "not a Jacobian file: it is a PNG"),
        (["jacobian", "default", "--latents", "a.png", "--out", "j2.npz"], "it is a PNG image"),
        (["edit", "default", "--directions", "a.png"], "not a directions file: it is a PNG"),
        (["synth", "x.npz", "--out", "s2.png"], "x.npz: a NumPy .npz archive of arrays, not a"),
        (["inspect", "x.npz"], "not a checkpoint"),
        (["convert", "x.npz", "out_ckpt"], "not a checkpoint"),
    ):
        line = _err(capsys, argv)
        assert want in line and "allow_pickle" not in line, (argv, line)
    assert not (folder / "j2.npz").exists() and not (folder / "out_ckpt").exists()


def test_demo_out_existing_file(folder, capsys):
    line = _err(capsys, ["demo", "--out", "outfile"])
    assert "--out outfile exists and is not a directory" in line
    assert (folder / "outfile").read_bytes() == b"exists"


def test_debug_is_accepted_after_every_subcommand(folder, capsys):
    p = build_parser()
    for argv in (
        ["panda", "fit", "default", "--layer", "b16.conv1", "--debug"],
        ["eis", "catalog", "default", "--layer", "b32.conv1", "--debug"],
        ["eis", "annotate", "cat.npz", "--debug"],
        ["synth", "default", "--debug"],
        ["--debug", "panda", "fit", "default", "--layer", "b16.conv1"],
    ):
        assert p.parse_args(argv).debug is True, argv
    # the usage error and the runtime error of a sub-subcommand share the prefix
    line = _err(capsys, ["panda", "fit", "default", "--debug"])
    assert line.startswith("jaxedit panda fit: error: ")
    line = _err(capsys, ["panda", "fit", "missing.pkl", "--layer", "b16.conv1"])
    assert line.startswith("jaxedit panda fit: error: ") and "no such checkpoint" in line


def test_unknown_region_suggests_nearest_names(folder, capsys):
    line = _err(capsys, ["moments", "default", "--seeds", "0", "--regions", "eys"])
    assert "did you mean 'eyes'" in line and "toyfaces/left_eye, " not in line


def test_flags_do_not_show_a_default(capsys):
    p = build_parser()
    for argv in (["edit", "--help"], ["moments", "--help"]):
        with pytest.raises(SystemExit):
            p.parse_args(argv)
        text = capsys.readouterr().out
        assert "(default: True)" not in text and "(default: False)" not in text
    with pytest.raises(SystemExit):
        p.parse_args(["jacobian", "--help"])
    assert "OutputSpec keeps 'rgb'" in " ".join(capsys.readouterr().out.split())


@pytest.mark.slow
def test_short_region_resolves_by_the_generator(tmp_path, monkeypatch, capsys):
    """`--region eyes` on the toy model's Jacobian means toyfaces/eyes (not the FFHQ box)."""
    monkeypatch.chdir(tmp_path)
    assert main(["jacobian", "default", "--seeds", "0", "--resize", "16", "--out", "J.npz"]) == 0
    assert main(["resefa", "--jacobian", "J.npz", "--region", "eyes", "--k", "3"]) == 0
    with np.load(tmp_path / "resefa_eyes.npz") as d:
        assert str(d["region_resolved"]) == "toyfaces/eyes"
    capsys.readouterr()


def test_region_preference_of_checkpoint_arguments(tmp_path, ada_pkl):
    from jaxedit.cli._generators import region_preference
    from jaxedit.toyfaces.default import WEIGHTS_DIR

    assert region_preference("default") == "toyfaces"
    assert region_preference(WEIGHTS_DIR) == "toyfaces"  # a saved copy of the toy model
    assert region_preference(str(ada_pkl)) == "ffhq"  # a StyleGAN source file
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "pytorch_model.bin").write_bytes(b"")
    assert region_preference(str(tmp_path / "big")) == "biggan"
    assert region_preference(str(tmp_path / "gone.pkl")) is None
