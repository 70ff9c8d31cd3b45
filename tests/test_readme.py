"""README's command-line examples run as written, on the bundled fixtures.

Every ``jaxedit ...`` command in README's bash blocks is extracted. The default run parses all
of them and runs the cheap ones (no image rendering); the slow test runs every one in order (in
process, in a temporary directory holding the files the README names).
"""

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from jaxedit.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[list[str]]:
    """Each ``jaxedit`` command (argv after the program name) of README's ```bash blocks."""
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            segment: list[str] = []
            for w in words + ["&&"]:
                if w in ("&&", ";", "||"):
                    if segment and segment[0] == "jaxedit":
                        cmds.append(segment[1:])
                    segment = []
                else:
                    segment.append(w)
    return cmds


#: Commands cheap enough for the default run (no rendering, no compilation of the generator).
FAST = ("convert", "inspect", "layers", "regions", "sefa")


def _workspace(tmp_path, monkeypatch, ada_pkl, biggan=True):
    """The files the README's examples name: NVIDIA snapshots (PyTorch and TF) and a BigGAN
    directory."""
    from flax import nnx

    from conftest import fixture_path
    from jaxedit.checkpoint import save_generator
    from jaxedit.models.biggan import BigGANConfig, BigGANGenerator

    shutil.copy(ada_pkl, tmp_path / "network-snapshot.pkl")
    shutil.copy(fixture_path("stylegan2_tf_tiny.pkl"), tmp_path / "stylegan2-ffhq-config-f.pkl")
    monkeypatch.chdir(tmp_path)
    if not biggan:
        return
    cfg = BigGANConfig(output_dim=32, z_dim=8, class_embed_dim=8, channel_width=4, num_classes=1000,
                       layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2),
                               (True, 2, 1)], attention_layer_position=3, n_stats=51)
    save_generator(BigGANGenerator(cfg, rngs=nnx.Rngs(0)), tmp_path / "biggan-deep-256")


def test_readme_has_the_commands():
    cmds = readme_commands()
    names = {c[0] for c in cmds}
    assert {"convert", "inspect", "layers", "regions", "synth", "jacobian", "resefa", "edit",
            "evaluate", "sefa", "spectrum", "demo"} <= names
    assert all(c and not c[0].startswith("-") for c in cmds)


def test_readme_commands_parse():
    """Every README command is accepted by the parser as written (options and values)."""
    from jaxedit.cli import build_parser

    for argv in readme_commands():
        args = build_parser().parse_args(argv)
        assert callable(args.fn), argv


def test_readme_fast_examples_run(tmp_path, monkeypatch, ada_pkl, capsys):
    _workspace(tmp_path, monkeypatch, ada_pkl, biggan=False)
    ran = 0
    for argv in readme_commands():
        if argv[0] in FAST:
            rc = main(argv)
            assert rc == 0, (argv, capsys.readouterr().err)
            ran += 1
    assert ran >= 5 and (tmp_path / "ckpt" / "config.json").exists()
    assert np.load(tmp_path / "sefa.npz")["directions"].shape == (1, 10, 32)


@pytest.mark.slow
def test_readme_examples_run(tmp_path, monkeypatch, ada_pkl, capsys):
    """All of them, in order (minutes on 2 CPU cores: demo, default generator, BigGAN init)."""
    _workspace(tmp_path, monkeypatch, ada_pkl)
    for argv in readme_commands():
        rc = main(argv)
        out, err = capsys.readouterr()
        assert rc == 0, (argv, err)
    for name in ("ckpt/config.json", "synth.png", "default.png", "dogs.png", "jacobian.npz",
                 "resefa_eyes.npz", "edit_resefa_eyes_0.png", "sefa.npz", "edit_sefa_1.png",
                 "jaxedit_demo/report.json"):
        assert (tmp_path / name).exists(), name
    assert np.load(tmp_path / "jacobian.npz")["jacobian"].shape == (5, 16, 16, 1, 32)
