"""Every command-line mistake: exit code 2 and exactly one line on stderr, nothing written; outputs
are never overwritten without --force; help text for every option."""

import argparse
import os
import re
import shutil

import numpy as np
import pytest

from jaxedit import cli
from jaxedit.cli import main

PROGRESS = re.compile(r"^(synth|jacobian|evaluate):")


@pytest.fixture(scope="module")
def work(tmp_path_factory, ada_pkl):
    """A converted checkpoint, a Jacobian, directions and latents files (module-scoped)."""
    from jaxedit.checkpoint import convert_checkpoint

    d = tmp_path_factory.mktemp("cli_errors")
    ckpt = convert_checkpoint(ada_pkl, d / "ckpt")
    J = d / "J.npz"
    assert main(["jacobian", ckpt, "--seeds", "0-1", "--resize", "8", "--out", str(J)]) == 0
    dirs = d / "dirs.npz"
    assert (
        main(
            ["resefa", "--jacobian", str(J), "--region", "2,2,6,6", "--k", "3", "--out", str(dirs)]
        )
        == 0
    )
    m0, m1 = d / "m0.npz", d / "m1.npz"  # moments of seeds 0 and 1 ('jaxedit moments')
    for path, seed in ((m0, "0"), (m1, "1")):
        assert (
            main(
                [
                    "moments",
                    ckpt,
                    "--seeds",
                    seed,
                    "--regions",
                    "eyes",
                    "--resize",
                    "4",
                    "--no-progress",
                    "--out",
                    str(path),
                ]
            )
            == 0
        )
    np.savez(d / "dirs64.npz", directions=np.ones((1, 2, 64)), space="w")
    np.savez(d / "dirs4d.npz", directions=np.ones((1, 1, 2, 32)), space="w")
    np.savez(d / "dirs_nan.npz", directions=np.full((1, 2, 32), np.nan), space="w")
    np.savez(d / "dirs_zero.npz", directions=np.zeros((2, 32)), space="w")
    np.savez(d / "dirs1d.npz", directions=np.ones(32), space="w", mask=np.eye(4, dtype=bool))
    np.savez(d / "J_nan.npz", jacobian=np.full((1, 4, 4, 1, 32), np.nan), space="w")
    np.save(d / "ws.npy", np.zeros((2, 8, 32)))
    np.save(d / "ws_nan.npy", np.full((2, 8, 32), np.nan))
    np.save(d / "ws_bad.npy", np.zeros((2, 5, 32)))
    from jaxedit import panda

    parts = np.random.RandomState(0).uniform(size=(8, 8, 3))
    for name, p in (("factors", parts), ("factors4x4", parts[:4, :4])):
        panda.save(
            panda.PandaResult(np.eye(64)[:, :4], p, np.zeros(1), 1.0, layer="b8.conv1"),
            d / f"{name}.npz",
        )
    from jaxedit import eis
    from jaxedit.checkpoint import load_generator

    ch = int(load_generator(ckpt)._layer("b16.conv1").weight.shape[-1])
    for name, c in (("eis_cat.npz", ch), ("eis_cat_other.npz", ch + 1)):  # no stored samples
        eis.Catalog("b16.conv1", np.eye(3, c), 16, {"eyes": (0,)}).save(d / name)
    os.mkfifo(d / "fifo")
    (d / "emptydir").mkdir()
    (d / "ro").mkdir()
    bad_ckpt = d / "corrupt_ckpt"
    shutil.copytree(ckpt, bad_ckpt)
    for root, _, files in os.walk(bad_ckpt / "params"):
        for f in files:
            p = os.path.join(root, f)
            if os.path.getsize(p) > 64 and not f.endswith(".json"):
                with open(p, "r+b") as fh:
                    fh.write(b"\x00garbage\xff" * 8)
    return {
        "ckpt": ckpt,
        "J": str(J),
        "dirs": str(dirs),
        "tmp": str(d),
        "M0": str(m0),
        "M1": str(m1),
    }


def _one_error(capsys, argv, fragment):
    rc = main(argv)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip() and not PROGRESS.match(ln)]
    assert rc == 2, (argv, rc, out, err)
    assert len(lines) == 1, (argv, err)
    assert "Traceback" not in err
    assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


CASES = [
    # argument validation (argparse type= functions): "argument --x: ..."
    (
        ["spectrum", "{ckpt}", "--layer", "b8.conv1", "--top-k", "0"],
        "--top-k: must be a positive integer",
    ),
    (
        ["spectrum", "{ckpt}", "--layer", "b8.conv1", "--top-k", "-3"],
        "--top-k: must be a positive integer",
    ),
    (["sefa", "{ckpt}", "--layers", "bogus"], "--layers: must be one of all, coarse"),
    (["synth", "{ckpt}", "--cutoff", "-5"], "--cutoff: must be a non-negative integer"),
    (["synth", "{ckpt}", "--cols", "0"], "--cols: must be a positive integer"),
    (["synth", "{ckpt}", "--batch", "0"], "--batch: must be a positive integer"),
    (["synth", "{ckpt}", "--psi", "nan"], "--psi: must be a finite number"),
    (["synth", "{ckpt}", "--seeds", "5-1"], "descending range"),
    (["synth", "{ckpt}", "--seeds", "-1"], "--seeds"),
    (["synth", "{ckpt}", "--seeds", "4294967296"], "larger than 4294967295"),
    (
        ["evaluate", "{ckpt}", "--directions", "{dirs}", "--random", "-1"],
        "--random: must be a non-negative integer",
    ),
    (
        ["evaluate", "{ckpt}", "--directions", "{dirs}", "--alpha", "inf"],
        "--alpha: must be a finite",
    ),
    (["edit", "{ckpt}", "--directions", "{dirs}", "--alphas", "nan,inf"], "alphas must be finite"),
    (["edit", "{ckpt}", "--directions", "{dirs}", "--alphas", "1:2"], "START:STOP:COUNT"),
    (
        ["edit", "{ckpt}", "--directions", "{dirs}", "--latents", "{tmp}/ws.npy", "--seeds", "0-3"],
        "not allowed with argument",
    ),
    (
        ["resefa", "--jacobian", "{J}", "--region", "eyes", "--k", "-3"],
        "--k: must be a positive integer",
    ),
    (
        ["resefa", "--jacobian", "{J}", "--region", "eyes", "--regularization", "-1"],
        "--regularization: must be a non-negative",
    ),
    (["resefa", "--region", "eyes"], "one of the arguments --jacobian --moments is required"),
    (
        ["resefa", "--moments", "{M0}", "--jacobian", "{J}", "--region", "eyes"],
        "argument --jacobian: not allowed with argument --moments",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyes", "--batch", "0"],
        "--batch: must be a positive integer",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyz"],
        "--regions: unknown region preset 'eyz'",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyes,b=1:2:3"],
        "--regions: region 'b=1:2:3': expected NAME=y0:x0:y1:x1",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyes", "--checkpoint-every", "nan"],
        "--checkpoint-every: must be a finite number",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyes", "--coordinator", "node0"],
        "--coordinator: expected HOST:PORT",
    ),
    (
        ["moments", "{ckpt}", "--regions", "eyes"],
        "one of the arguments --seeds --latents is required",
    ),
    (["bogus"], "invalid choice: 'bogus'"),
    (["regions", "extra"], "unrecognized arguments: extra"),
    # combinations and ranges checked against the generator / the files
    (["synth", "{ckpt}", "--class", "3"], "--class 3: this generator is unconditional"),
    (["synth", "{ckpt}", "--truncation", "0.5"], "--truncation applies to BigGAN only"),
    (
        ["synth", "{ckpt}", "--cutoff", "50"],
        "--cutoff 50 out of range: this generator has 8 W+ slots",
    ),
    (["synth", "{ckpt}", "--cols", "9", "--seeds", "0-1"], "--cols 9 is more than the 2 image(s)"),
    (["sefa", "{ckpt}", "--layers", "99"], "W+ slot 99 out of range"),
    (["sefa", "{ckpt}", "--layers", "gen_z"], "--layers gen_z is for BigGAN"),
    (["sefa", "{ckpt}", "--k", "500"], "k must be in [1, "),
    (["spectrum", "{ckpt}", "--layer", "bogus"], "unknown conv layer 'bogus'"),
    (["evaluate", "{ckpt}", "--directions", "{dirs}", "--alpha", "0"], "--alpha must be non-zero"),
    (["edit", "{ckpt}", "--directions", "{dirs}", "--index", "99"], "--index 99 out of range"),
    (["edit", "{ckpt}", "--directions", "{dirs}", "--set", "5"], "--set 5 out of range"),
    (["edit", "{ckpt}", "--directions", "{dirs}", "--slots", "40"], "--slots 40 out of range"),
    (
        ["edit", "{ckpt}", "--directions", "{tmp}/dirs64.npz"],
        "the direction has 64 dimensions but space 'w' of this generator has 32",
    ),
    (["edit", "{ckpt}", "--directions", "{tmp}/dirs4d.npz"], "'directions' must be [D], [K, D]"),
    (["edit", "{ckpt}", "--directions", "{tmp}/dirs_nan.npz"], "non-finite"),
    (["edit", "{ckpt}", "--directions", "{tmp}/dirs_zero.npz"], "direction 0 is all zeros"),
    (["edit", "{ckpt}", "--directions", "{J}"], "holds a Jacobian, not directions"),
    (["edit", "{ckpt}", "--directions", "{tmp}/J_nan.npz"], "holds a Jacobian"),
    (
        ["edit", "{ckpt}", "--directions", "{tmp}/ws.npy"],
        "a .npy of directions must be [D] or [K, D]",
    ),
    (
        ["edit", "{ckpt}", "--directions", "{dirs}", "--latents", "{tmp}/ws_nan.npy"],
        "--latents {tmp}/ws_nan.npy contains 512 non-finite value(s)",
    ),
    (
        ["jacobian", "{ckpt}", "--latents", "{tmp}/ws_bad.npy"],
        "expected ws [N, 8, 32] or w [N, 32]",
    ),
    (["jacobian", "{ckpt}", "--latents", "{tmp}/missing.npy"], "latents file not found"),
    (["jacobian", "{ckpt}", "--resize", "64"], "resize=64 is larger than the image (32 px)"),
    (["jacobian", "{ckpt}", "--resize", "5"], "must divide the image size"),
    (["jacobian", "{ckpt}", "--max-gib", "0.00001"], "would take"),
    (["jacobian", "{ckpt}", "--space", "embed"], "space must be one of"),
    (["resefa", "--jacobian", "{J}", "--region", "0,0,0,0"], "the box '0,0,0,0' is empty"),
    (["resefa", "--jacobian", "{J}", "--region", "1,2,x,4"], "4 integers y0,x0,y1,x1"),
    (["resefa", "--jacobian", "{J}", "--region", "eyez"], "unknown region preset 'eyez'"),
    (
        ["resefa", "--jacobian", "{J}", "--region", "eyes", "--k", "500"],
        "--k 500 is more than the 32 latent dimensions",
    ),
    (
        ["resefa", "--jacobian", "{J}", "--region", "eyes", "--sample", "7"],
        "--sample 7 out of range",
    ),
    (["resefa", "--jacobian", "{tmp}/J_nan.npz", "--region", "1,1,3,3"], "non-finite"),
    (["resefa", "--jacobian", "{tmp}", "--region", "eyes"], "is a directory, not a Jacobian file"),
    # panda
    (
        ["panda", "fit", "{ckpt}", "--layer", "b8.conv1", "--ranks", "0,2"],
        "--ranks: must be R_C,R_S",
    ),
    (["panda", "fit", "{ckpt}", "--layer", "b8.conv1", "--ranks", "8"], "--ranks: must be R_C,R_S"),
    (
        ["panda", "fit", "{ckpt}", "--layer", "b8.conv1", "--steps", "0"],
        "--steps: must be a positive integer",
    ),
    (["panda", "fit", "{ckpt}", "--layer", "b8.conv1", "--lr", "nan"], "--lr: must be a finite"),
    (["panda", "fit", "{ckpt}", "--layer", "0"], "layer index must be >= 1"),
    (["panda", "fit", "{ckpt}", "--layer", "b99.conv1"], "--layer: unknown layer 'b99.conv1'"),
    (["panda", "fit", "{ckpt}", "--layer", "9"], "layer index 9 out of range"),
    (
        ["panda", "fit", "{ckpt}", "--layer", "b8.conv1", "--optimizer", "pgd"],
        "--optimizer pgd needs --lr",
    ),
    (
        ["panda", "fit", "{ckpt}", "--layer", "b8.conv1", "--ranks", "99,2"],
        "R_C = 99 is more than the 64 channels of b8.conv1",
    ),
    (
        ["panda", "fit", "{ckpt}", "--layer", "b8.conv1", "--seeds", "0-3", "--batch-size", "9"],
        "--batch-size 9 is more than the 4 samples",
    ),
    (
        ["panda", "fit", "{ckpt}", "--layer", "b8.conv1", "--latents", "{tmp}/ws_nan.npy"],
        "non-finite",
    ),
    (["panda", "fit", "{ckpt}", "--layer", "b8.conv1", "--out", "{tmp}/fifo"], "FIFO"),
    (
        [
            "panda",
            "edit",
            "{ckpt}",
            "--factors",
            "{tmp}/factors.npz",
            "--parts",
            "7",
            "--appearance",
            "0",
            "--strength",
            "1",
        ],
        "part indices must be in [0, R_S = 3)",
    ),
    (
        [
            "panda",
            "edit",
            "{ckpt}",
            "--factors",
            "{tmp}/factors.npz",
            "--parts",
            "0",
            "--appearance",
            "0",
            "--strength",
            "inf",
        ],
        "--strength: alphas must be finite",
    ),
    (
        [
            "panda",
            "edit",
            "{ckpt}",
            "--factors",
            "{J}",
            "--parts",
            "0",
            "--appearance",
            "0",
            "--strength",
            "1",
        ],
        "not a jaxedit PandA factors file",
    ),
    (
        [
            "panda",
            "edit",
            "{ckpt}",
            "--factors",
            "{tmp}/factors4x4.npz",
            "--parts",
            "0",
            "--appearance",
            "0",
            "--strength",
            "1",
            "--seeds",
            "0",
        ],
        "the factors were learned on",
    ),
    (
        ["panda", "saliency", "{ckpt}", "--factors", "{tmp}/factors.npz", "--concept", "9"],
        "--concept 9 out of range",
    ),
    (["panda", "parts", "--factors", "{tmp}/missing.npz"], "PandA factors file not found"),
    (
        ["panda", "parts", "--factors", "{tmp}/factors.npz", "--ckpt", "{tmp}/missing.pkl"],
        "no such checkpoint",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyes", "--num-processes", "2"],
        "--num-processes / --process-id need --distributed",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyes", "--resume", "--force"],
        "--resume continues --out, --force replaces it",
    ),
    (
        [
            "moments",
            "{ckpt}",
            "--seeds",
            "0",
            "--regions",
            "eyes",
            "--resume",
            "--out",
            "{tmp}/none.npz",
        ],
        "--resume: {tmp}/none.npz does not exist",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyes", "--resume", "--out", "{J}"],
        "not a jaxedit moments file, missing key(s)",
    ),
    (
        [
            "moments",
            "{ckpt}",
            "--seeds",
            "0-1",
            "--regions",
            "eyes",
            "--resize",
            "4",
            "--resume",
            "--out",
            "{M0}",
        ],
        "--resume: {M0} was made with other settings (seeds",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyes", "--out", "{M0}"],
        "already exists (pass --force to replace it, or --resume",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyes", "--truncation", "0.5"],
        "--truncation applies to BigGAN only",
    ),
    (
        ["moments", "{ckpt}", "--seeds", "0", "--regions", "eyes", "--resize", "5"],
        "must divide the image size",
    ),
    (
        ["moments", "{ckpt}", "--latents", "{tmp}/ws_bad.npy", "--regions", "eyes"],
        "expected ws [N, 8, 32] or w [N, 32]",
    ),
    (["moments", "{ckpt}", "--latents", "{tmp}/ws_nan.npy", "--regions", "eyes"], "non-finite"),
    (["resefa", "--moments", "{M0}", "--region", "nose"], "has no region 'nose'"),
    (
        ["resefa", "--moments", "{M0}", "--region", "eyes", "--k", "500"],
        "--k 500 is more than the 32 latent dimensions",
    ),
    (
        ["resefa", "--moments", "{M0}", "--region", "eyes", "--sample", "0"],
        "--sample needs --jacobian",
    ),
    (["resefa", "--moments", "{M0}", "--region", "eyes", "--solver", "woodbury"], "Jacobian rows"),
    (["resefa", "--moments", "{J}", "--region", "eyes"], "not a jaxedit moments file"),
    (["moments-merge", "{M0}", "{M0}", "--out", "{tmp}/mm.npz"], "summed in both"),
    (
        ["moments-merge", "{M0}", "{M1}", "--out", "{M1}", "--force"],
        "--out must not be one of the inputs",
    ),
    # Editing in Style
    (
        ["eis", "catalog", "{ckpt}", "--layer", "b16.conv1", "--k", "0"],
        "--k: must be a positive integer",
    ),
    (["eis", "catalog", "{ckpt}", "--layer", "b16.conv1", "--seeds", "3-1"], "descending range"),
    (
        ["eis", "catalog", "{ckpt}", "--layer", "b16.torgb", "--out", "{tmp}/c.npz"],
        "--layer 'b16.torgb' is not a conv layer of this generator",
    ),
    (
        [
            "eis",
            "catalog",
            "{ckpt}",
            "--layer",
            "b16.conv1",
            "--seeds",
            "0-1",
            "--k",
            "9999",
            "--out",
            "{tmp}/c.npz",
        ],
        "--k 9999 is more than the 512 pixels",
    ),
    (
        [
            "eis",
            "catalog",
            "{ckpt}",
            "--layer",
            "b16.conv1",
            "--latents",
            "{tmp}/ws_nan.npy",
            "--out",
            "{tmp}/c.npz",
        ],
        "non-finite",
    ),
    (
        [
            "eis",
            "catalog",
            "{ckpt}",
            "--layer",
            "b16.conv1",
            "--out",
            "{tmp}/c.npz",
            "--preview",
            "{tmp}/c.npz",
        ],
        "--preview must differ from --out",
    ),
    (["eis", "catalog", "{ckpt}", "--layer", "b16.conv1", "--out", "{tmp}/fifo"], "FIFO"),
    (["eis", "annotate", "{tmp}/eis_cat.npz", "eyes"], "must be NAME=IDS"),
    (["eis", "annotate", "{tmp}/eis_cat.npz", "eyes=7"], "cluster ids [7] out of range [0, 3)"),
    (["eis", "annotate", "{J}", "eyes=1"], "not a jaxedit Editing in Style catalog file"),
    (
        [
            "eis",
            "transfer",
            "{ckpt}",
            "--catalog",
            "{tmp}/eis_cat.npz",
            "--label",
            "hair",
            "--out",
            "{tmp}/g.png",
        ],
        "--label 'hair' is not in",
    ),
    (
        [
            "eis",
            "transfer",
            "{ckpt}",
            "--catalog",
            "{tmp}/eis_cat.npz",
            "--label",
            "eyes",
            "--rho",
            "0.1,nan",
        ],
        "--rho: must be a finite number",
    ),
    (
        [
            "eis",
            "transfer",
            "{ckpt}",
            "--catalog",
            "{tmp}/eis_cat.npz",
            "--label",
            "eyes",
            "--mode",
            "simultaneous",
            "--eps",
            "3",
            "--out",
            "{tmp}/g.png",
        ],
        "--rho / --eps apply to",
    ),
    (
        [
            "eis",
            "transfer",
            "{ckpt}",
            "--catalog",
            "{tmp}/eis_cat.npz",
            "--label",
            "eyes",
            "--rho",
            "0.1,0.2",
            "--out",
            "{tmp}/g.png",
        ],
        "--rho has 2 values for 11 style layers",
    ),
    (
        [
            "eis",
            "transfer",
            "{ckpt}",
            "--catalog",
            "{tmp}/eis_cat.npz",
            "--label",
            "eyes",
            "--layers",
            "b99.conv1",
            "--out",
            "{tmp}/g.png",
        ],
        "--layers: unknown style layers",
    ),
    (
        [
            "eis",
            "transfer",
            "{ckpt}",
            "--catalog",
            "{tmp}/eis_cat.npz",
            "--label",
            "eyes",
            "--out",
            "{tmp}/g.png",
        ],
        "stores no samples: pass --contribution-seeds",
    ),
    (
        [
            "eis",
            "transfer",
            "{ckpt}",
            "--catalog",
            "{tmp}/eis_cat_other.npz",
            "--label",
            "eyes",
            "--out",
            "{tmp}/g.png",
        ],
        "fitted on another generator",
    ),
    (
        [
            "eis",
            "transfer",
            "{ckpt}",
            "--catalog",
            "{tmp}/eis_cat.npz",
            "--label",
            "eyes",
            "--out",
            "{tmp}/g.png",
            "--json",
            "{tmp}/g.png",
        ],
        "--json must differ from --out",
    ),
    # checkpoints
    (["synth", "{tmp}/missing.pkl"], "no such checkpoint file"),
    (["synth", "{tmp}/emptydir"], "not a jaxedit checkpoint (no config.json + params/)"),
    (["synth", "{tmp}/corrupt_ckpt"], ""),
    (["layers", "{tmp}/J.npz"], "J.npz"),
    # outputs
    (["synth", "{ckpt}", "--out", "{tmp}"], "is a directory"),
    (["synth", "{ckpt}", "--out", "{tmp}/"], "is a directory"),
    (["synth", "{ckpt}", "--out", "{tmp}/fifo"], "FIFO, not a regular file: refusing"),
    (["synth", "{ckpt}", "--out", "{tmp}/nodir/x.png"], "does not exist"),
    (["sefa", "{ckpt}", "--out", "{tmp}/fifo", "--force"], "FIFO, not a regular file"),
    (["synth", "{ckpt}", "--outdir", "{tmp}/J.npz"], "exists and is not a directory"),
    (
        ["synth", "{ckpt}", "--outdir", "{tmp}/imgs", "--out", "{tmp}/g.png"],
        "argument --out: not allowed with argument --outdir",
    ),
]


@pytest.mark.parametrize(
    "argv, fragment", CASES, ids=[" ".join(c[0][:1] + c[0][2:4]) for c in CASES]
)
def test_mistake_is_one_line_exit_2(work, capsys, argv, fragment):
    argv = [a.format(**work) for a in argv]
    before = set(os.listdir(work["tmp"]))
    _one_error(capsys, argv, fragment.format(**work))
    assert set(os.listdir(work["tmp"])) == before  # nothing written
    assert os.path.exists(os.path.join(work["tmp"], "fifo"))


def test_out_dot_in_cwd(work, capsys, monkeypatch):
    monkeypatch.chdir(work["tmp"])
    _one_error(capsys, ["synth", work["ckpt"], "--out", "."], ". is a directory")
    _one_error(capsys, ["jacobian", work["ckpt"], "--out", ".."], ".. is a directory")


def test_permission_denied_one_line(work, capsys, monkeypatch, tmp_path):
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            _one_error(
                capsys, ["sefa", work["ckpt"], "--out", str(ro / "s.npz")], "permission denied"
            )
        finally:
            ro.chmod(0o755)
    monkeypatch.setattr(tempfile, "mkstemp", denied)  # root can write anywhere: simulate
    line = _one_error(
        capsys, ["sefa", work["ckpt"], "--out", str(tmp_path / "s.npz")], "permission denied"
    )
    assert line.startswith("jaxedit sefa: error: cannot write ")


def test_debug_shows_traceback(work, capsys):
    for argv in (
        ["--debug", "synth", work["tmp"] + "/missing.pkl"],
        ["synth", work["tmp"] + "/missing.pkl", "--debug"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err
        assert (
            err.rstrip().splitlines()[-1].startswith("jaxedit synth: error: ")
            and "no such checkpoint" in err
        )


OUTPUT_COMMANDS = {
    "synth": ["synth", "{ckpt}", "--seeds", "0-1"],
    "sefa": ["sefa", "{ckpt}", "--k", "2"],
    "spectrum": ["spectrum", "{ckpt}", "--layer", "b8.conv1", "--top-k", "3"],
    "resefa": ["resefa", "--jacobian", "{J}", "--region", "2,2,6,6", "--k", "2"],
    "edit": ["edit", "{ckpt}", "--directions", "{dirs}", "--seeds", "0", "--alphas", "-1,1"],
    "evaluate": [
        "evaluate",
        "{ckpt}",
        "--directions",
        "{dirs}",
        "--seeds",
        "0",
        "--random",
        "0",
        "--alpha",
        "1",
    ],
    "jacobian": ["jacobian", "{ckpt}", "--seeds", "0", "--resize", "4"],
    "panda parts": ["panda", "parts", "--factors", "{tmp}/factors.npz", "--size", "16"],
    "moments": [
        "moments",
        "{ckpt}",
        "--seeds",
        "2",
        "--regions",
        "eyes",
        "--resize",
        "4",
        "--no-progress",
    ],
    "moments-merge": ["moments-merge", "{M0}", "{M1}"],
    "resefa-moments": [
        "resefa",
        "--moments",
        "{M0}",
        "--region",
        "eyes",
        "--k",
        "2",
        "--regularization",
        "1e-3",
    ],
}


@pytest.mark.parametrize("name", sorted(OUTPUT_COMMANDS))
def test_existing_output_needs_force(work, capsys, tmp_path, name):
    argv = [a.format(**work) for a in OUTPUT_COMMANDS[name]]
    out = tmp_path / "existing.out"
    out.write_bytes(b"keep me")
    _one_error(capsys, argv + ["--out", str(out)], "already exists (pass --force")
    assert out.read_bytes() == b"keep me"
    assert main(argv + ["--out", str(out), "--force"]) == 0
    assert out.read_bytes() != b"keep me"
    link = tmp_path / "link.out"  # a symlinked output: the target is written
    target = tmp_path / "target.out"
    link.symlink_to(target)
    assert main(argv + ["--out", str(link)]) == 0
    assert link.is_symlink() and target.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".jaxedit-")] == []


def test_default_output_names(work, capsys, tmp_path, monkeypatch):
    """Default outputs say what they hold and never collide (sefa vs resefa)."""
    monkeypatch.chdir(tmp_path)
    assert main(["resefa", "--jacobian", work["J"], "--region", "ffhq/eyes", "--k", "2"]) == 0
    assert main(["resefa", "--jacobian", work["J"], "--region", "2,2,6,6", "--k", "2"]) == 0
    assert main(["sefa", work["ckpt"], "--k", "2"]) == 0
    assert (
        main(
            [
                "edit",
                work["ckpt"],
                "--directions",
                "sefa.npz",
                "--seeds",
                "0",
                "--alphas",
                "-1,1",
                "--index",
                "1",
            ]
        )
        == 0
    )
    assert main(["synth", work["ckpt"], "--seeds", "0"]) == 0
    assert sorted(os.listdir(tmp_path)) == [
        "edit_sefa_1.png",
        "resefa_2-2-6-6.npz",
        "resefa_ffhq-eyes.npz",
        "sefa.npz",
        "synth.png",
    ]
    # a second run keeps the first result and says so
    _one_error(capsys, ["sefa", work["ckpt"], "--k", "2"], "sefa.npz already exists")


def test_moments_default_output_names(work, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "moments",
                work["ckpt"],
                "--seeds",
                "0",
                "--regions",
                "eyes,b=0:0:2:2",
                "--resize",
                "4",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "resefa",
                "--moments",
                "moments_eyes-b.npz",
                "--region",
                "b",
                "--k",
                "2",
                "--regularization",
                "1e-3",
            ]
        )
        == 0
    )
    assert main(["moments-merge", work["M0"], work["M1"]]) == 0
    assert sorted(os.listdir(tmp_path)) == [
        "moments_eyes-b.npz",
        "moments_merged.npz",
        "resefa_b.npz",
    ]
    _one_error(
        capsys, ["moments-merge", work["M0"], work["M1"]], "moments_merged.npz already exists"
    )


def _all_parsers():
    p = cli.build_parser()
    yield "jaxedit", p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def test_every_option_has_help_and_every_command_examples():
    for name, p in _all_parsers():
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help and action.help.strip(), (name, action.dest)
        if name != "jaxedit":
            assert p.epilog and "examples:" in p.epilog and "jaxedit " + name in p.epilog, name
        outs = [a for a in p._actions if "--out" in a.option_strings]
        if outs and name not in ("convert", "demo"):  # file outputs: --force exists
            assert "--force" in p._option_string_actions, name
    edit_help = dict(_all_parsers())["edit"].format_help()
    assert "START:STOP:COUNT" in edit_help and "(default: -10:10:7, ReSeFa" in " ".join(
        edit_help.split()
    )


def test_help_and_version_exit_0(capsys):
    assert main(["--help"]) == 0
    assert "regions" in capsys.readouterr().out
    assert main(["synth", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(default: 0-7)" in out and "(default: 16)" in out and "examples:" in out
    assert main(["--version"]) == 0
    import jaxedit

    assert capsys.readouterr().out.startswith(f"jaxedit {jaxedit.__version__}")
