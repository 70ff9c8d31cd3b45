"""The README's and the docs pages' examples run as written, on the bundled fixtures.

Scanned: ``README.md`` and ``docs/**/*.md``.

- Every ``jaxedit ...`` command in a ```bash block is parsed by ``jaxedit.cli.build_parser()``
  (commands behind an environment assignment, ``srun`` or ``&``, e.g. the multi-process and
  SLURM lines, are parsed only). The default run executes the cheap ones (no rendering, no
  compilation of the generator), each page's in order in a fresh folder; the slow test runs all of
  them, in order per page.
- The ```python blocks of each page run in order in one fresh namespace, verbatim, in a fresh
  folder holding the files the pages name (``network-snapshot.pkl``: a tiny NVIDIA snapshot,
  ``stylegan2-ffhq-config-f.pkl``: a tiny NVIDIA TF pickle, ``stylegan3-t-tiny.pkl``: a tiny
  NVIDIA StyleGAN3-T pickle, ``biggan-deep-256/``: a tiny
  BigGAN-deep). An HTML comment on the line before a block changes that:
  ``<!-- docs-test: slow -->`` (this block and the rest of the page run only in the slow test) and
  ``<!-- docs-test: skip (reason) -->`` (the block cannot run here, e.g. it needs a real
  multi-GB checkpoint; counted and reported, and only ``MAX_SKIPPED`` are allowed).
- ``mkdocs build --strict`` of the site, when mkdocs is installed (the ``docs`` extra).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))

#: Commands cheap enough for the default run (no rendering, no compilation of the generator).
FAST = ("convert", "inspect", "layers", "regions", "sefa")
#: At most this many python blocks may be marked ``skip`` over all pages.
MAX_SKIPPED = 5

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)
_MARK = re.compile(r"<!--\s*docs-test:\s*(?P<kind>slow|skip)\b\s*(?:\((?P<reason>[^)]*)\))?\s*-->")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Block:
    page: str  # path relative to the repository root
    line: int  # line of the opening fence (1-based)
    lang: str
    code: str
    mark: str | None = None  # None | "slow" | "skip"
    reason: str = ""


@dataclass(frozen=True)
class Command:
    page: str
    line: int
    argv: tuple[str, ...]  # after the program name
    runnable: bool  # False: behind an environment assignment, srun or '&' (parsed only)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def page_blocks(path: Path) -> list[Block]:
    """Fenced code blocks of a markdown file, with the docs-test mark of the line before each."""
    text = path.read_text()
    out = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").splitlines()
        mark = _MARK.fullmatch(before[-1].strip()) if before else None
        indent = len(m["indent"])
        code = "\n".join(line[indent:] for line in m["body"].splitlines()) + "\n"
        out.append(
            Block(
                _rel(path),
                text.count("\n", 0, m.start()) + 1,
                m["lang"],
                code,
                mark["kind"] if mark else None,
                (mark["reason"] or "").strip() if mark else "",
            )
        )
    return out


def page_commands(path: Path) -> list[Command]:
    """Each ``jaxedit`` command of a page's ```bash blocks, in order."""
    cmds = []
    for block in page_blocks(path):
        if block.lang != "bash":
            continue
        for i, line in enumerate(block.code.splitlines()):
            words = shlex.split(line, comments=True)
            segment: list[str] = []
            for w in words + [";"]:
                if w not in ("&&", ";", "||", "&", "|"):
                    segment.append(w)
                    continue
                runnable = w != "&"
                while segment and (_ENV.match(segment[0]) or segment[0] == "srun"):
                    segment, runnable = segment[1:], False
                if segment and segment[0] == "jaxedit":
                    cmds.append(
                        Command(block.page, block.line + 1 + i, tuple(segment[1:]), runnable)
                    )
                segment = []
    return cmds


def all_commands() -> list[Command]:
    return [c for p in PAGES for c in page_commands(p)]


def python_pages() -> list[Path]:
    return [p for p in PAGES if any(b.lang == "python" for b in page_blocks(p))]


def command_pages() -> list[Path]:
    return [p for p in PAGES if page_commands(p)]


def fast_command_pages() -> list[Path]:
    """Pages with a command cheap enough for the default run."""
    return [p for p in PAGES if any(c.runnable and c.argv[0] in FAST for c in page_commands(p))]


def _default_blocks(page: Path) -> list[Block]:
    """The python blocks the default run executes: those before the first slow one."""
    out = []
    for b in page_blocks(page):
        if b.lang == "python" and b.mark == "slow":
            break
        if b.lang == "python" and b.mark != "skip":
            out.append(b)
    return out


def fast_python_pages() -> list[Path]:
    return [p for p in python_pages() if _default_blocks(p)]


def runnable_python_pages() -> list[Path]:
    """Pages with a python block that is not marked skip."""
    return [
        p
        for p in python_pages()
        if any(b.mark != "skip" for b in page_blocks(p) if b.lang == "python")
    ]


def _ids(paths):
    return [_rel(p) for p in paths]


def _workspace(tmp_path, monkeypatch, ada_pkl, biggan=True):
    """The files the pages' examples name: NVIDIA snapshots (PyTorch and TF) and a BigGAN
    directory, in a fresh folder that becomes the working directory."""
    from conftest import fixture_path
    from flax import nnx

    import jaxedit

    shutil.copy(ada_pkl, tmp_path / "network-snapshot.pkl")
    shutil.copy(fixture_path("stylegan2_tf_tiny.pkl"), tmp_path / "stylegan2-ffhq-config-f.pkl")
    shutil.copy(fixture_path("stylegan3_t_tiny.pkl"), tmp_path / "stylegan3-t-tiny.pkl")
    monkeypatch.chdir(tmp_path)
    if not biggan:
        return
    cfg = jaxedit.BigGANConfig(
        output_dim=32,
        z_dim=8,
        class_embed_dim=8,
        channel_width=4,
        num_classes=1000,
        layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
        attention_layer_position=3,
        n_stats=51,
    )
    jaxedit.save_generator(
        jaxedit.BigGANGenerator(cfg, rngs=nnx.Rngs(0)), tmp_path / "biggan-deep-256"
    )


def _needs_biggan(path: Path) -> bool:
    return "biggan-deep-256" in path.read_text()


def _run_python(path: Path, slow: bool) -> tuple[int, list[Block]]:
    """Run a page's python blocks in order in one fresh namespace (the working directory is the
    workspace). Without ``slow``: up to the first block marked slow. Returns (blocks run,
    blocks skipped)."""
    ns: dict = {"__name__": "__docs__"}
    ran, skipped = 0, []
    for block in page_blocks(path):
        if block.lang != "python":
            continue
        if block.mark == "slow" and not slow:
            break
        if block.mark == "skip":
            skipped.append(block)
            continue
        try:
            exec(compile(block.code, f"{block.page}:{block.line}", "exec"), ns)
        except Exception as e:
            raise AssertionError(
                f"{block.page}, python block at line {block.line}: {type(e).__name__}: {e}"
            ) from e
        ran += 1
    return ran, skipped


# ---- the pages hold what they should ------------------------------------------------------------


def test_docs_have_the_commands():
    cmds = all_commands()
    names = {c.argv[0] for c in cmds if c.argv}
    assert {
        "convert",
        "inspect",
        "layers",
        "regions",
        "synth",
        "jacobian",
        "resefa",
        "edit",
        "evaluate",
        "sefa",
        "spectrum",
        "demo",
        "moments",
        "moments-merge",
        "panda",
        "eis",
    } <= names
    assert all(c.argv and not c.argv[0].startswith("-") for c in cmds)
    assert any(not c.runnable for c in cmds)  # the multi-process / SLURM lines are parsed too
    readme = [c.argv for c in page_commands(ROOT / "README.md")]
    assert ("demo",) in readme


def test_docs_commands_parse():
    """Every command of README.md and docs/ is accepted by the parser as written."""
    from jaxedit.cli import build_parser

    for c in all_commands():
        try:
            args = build_parser().parse_args(list(c.argv))
        except SystemExit as e:
            raise AssertionError(f"{c.page}:{c.line}: jaxedit {shlex.join(c.argv)}") from e
        assert callable(args.fn), (c.page, c.line, c.argv)


def test_docs_marks_are_valid():
    """Every docs-test comment sits right before a python block (a typo would silently run an
    expensive block by default, or skip nothing)."""
    for p in PAGES:
        text = p.read_text()
        marks = len(re.findall(r"^\s*<!--\s*docs-test", text, re.M))
        marked = [b for b in page_blocks(p) if b.mark]
        assert marks == len(marked), f"{_rel(p)}: a docs-test comment is not before a block"
        for b in marked:
            assert b.lang == "python", f"{b.page}:{b.line}: docs-test marks python blocks only"
            assert b.mark != "skip" or b.reason, f"{b.page}:{b.line}: skip needs a (reason)"


def test_skipped_python_blocks(capsys):
    """Blocks that cannot run here are counted and reported; only a handful are allowed."""
    skipped = [b for p in PAGES for b in page_blocks(p) if b.mark == "skip"]
    with capsys.disabled():
        for b in skipped:
            print(f"\n  docs python block skipped: {b.page}:{b.line} ({b.reason})", end="")
    assert len(skipped) <= MAX_SKIPPED, [f"{b.page}:{b.line}" for b in skipped]


# ---- the default run: cheap commands, python up to the first slow block -------------------------


@pytest.mark.parametrize("page", fast_command_pages(), ids=_ids(fast_command_pages()))
def test_docs_fast_commands_run(page, tmp_path, monkeypatch, ada_pkl, capsys):
    from jaxedit.cli import main

    fast = [c for c in page_commands(page) if c.runnable and c.argv[0] in FAST]
    _workspace(tmp_path, monkeypatch, ada_pkl, biggan=False)
    for c in fast:
        rc = main(list(c.argv))
        assert rc == 0, (c.page, c.line, c.argv, capsys.readouterr().err)
    if _rel(page) == "docs/cli.md":
        assert (tmp_path / "ckpt" / "config.json").exists()
        assert np.load(tmp_path / "sefa.npz")["directions"].shape == (1, 10, 32)


@pytest.mark.parametrize("page", fast_python_pages(), ids=_ids(fast_python_pages()))
def test_docs_python_fast(page, tmp_path, monkeypatch, ada_pkl):
    _workspace(tmp_path, monkeypatch, ada_pkl, biggan=_needs_biggan(page))
    ran, _ = _run_python(page, slow=False)
    assert ran >= 1


# ---- the slow run: everything, in order per page -------------------------------------------------

#: Files the commands of a page must have written (relative to its workspace).
EXPECTED_FILES = {
    "README.md": ("jaxedit_demo/report.json",),
    "docs/getting-started.md": ("jaxedit_demo/report.json",),
    "docs/cli.md": (
        "ckpt/config.json",
        "synth.png",
        "synth_ckpt.png",
        "dogs.png",
        "jacobian.npz",
        "jacobian_ckpt.npz",
        "edit_ffhq.png",
        "resefa_eyes.npz",
        "edit_resefa_eyes_0.png",
        "sefa.npz",
        "edit_sefa_1.png",
        "moments_eyes-mouth.npz",
        "resefa_eyes_16.npz",
        "panda_b16.conv1.npz",
        "panda_parts.png",
    ),
    "docs/methods/many-samples.md": ("moments.npz", "resefa_eyes_moments.npz", "moments_eyes.npz"),
    "docs/models/stylegan3.md": ("rot.png", "sefa3.npz", "edit3.png", "panda3.npz"),
    "docs/methods/eis.md": ("cat.npz", "cat_clusters.png", "grid.png", "grid2.png", "m.json"),
}


@pytest.mark.slow
@pytest.mark.parametrize("page", command_pages(), ids=_ids(command_pages()))
def test_docs_commands_run(page, tmp_path, monkeypatch, ada_pkl, capsys):
    """All of a page's commands, in order (minutes on 2 CPU cores: demo, default generator,
    BigGAN init)."""
    from jaxedit.cli import main

    _workspace(tmp_path, monkeypatch, ada_pkl, biggan=_needs_biggan(page))
    for c in page_commands(page):
        if not c.runnable:
            continue
        rc = main(list(c.argv))
        _, err = capsys.readouterr()
        assert rc == 0, (c.page, c.line, c.argv, err)
    for name in EXPECTED_FILES.get(_rel(page), ()):
        assert (tmp_path / name).exists(), (_rel(page), name)
    if _rel(page) == "docs/cli.md":
        assert np.load(tmp_path / "jacobian_ckpt.npz")["jacobian"].shape == (5, 16, 16, 1, 32)
        assert np.load(tmp_path / "jacobian.npz")["jacobian"].shape == (4, 64, 64, 1, 32)


@pytest.mark.slow
@pytest.mark.parametrize("page", runnable_python_pages(), ids=_ids(runnable_python_pages()))
def test_docs_python_run(page, tmp_path, monkeypatch, ada_pkl):
    _workspace(tmp_path, monkeypatch, ada_pkl, biggan=_needs_biggan(page))
    ran, skipped = _run_python(page, slow=True)
    assert ran + len(skipped) == sum(b.lang == "python" for b in page_blocks(page))


# ---- the site builds ----------------------------------------------------------------------------


def _missing_docs_tools() -> list[str]:
    missing = []
    for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def test_mkdocs_build_strict(tmp_path):
    """``mkdocs build --strict`` (warnings are errors: broken links, unknown API names); about
    10 s."""
    missing = _missing_docs_tools()
    if missing:
        pytest.skip(
            f"the docs extra is not installed ({', '.join(missing)}): pip install -e .[docs]"
        )
    site = tmp_path / "site"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert (site / "api" / "resefa" / "index.html").exists()
    assert (site / "_static" / "toyfaces_edit_eyes.png").exists()
