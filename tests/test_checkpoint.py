"""Converted checkpoints: SHA-256 per parameter file verified on load, orbax failures as one
typed line, and ``--force`` that replaces only a jaxedit checkpoint (never a user's files)."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import converters
import jaxedit
from jaxedit import checkpoint as ck
from jaxedit.cli import main


def _tree(root: pathlib.Path) -> dict:
    """Every path below root with its bytes (directories as None): to prove 'untouched'."""
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = None if p.is_dir() else p.read_bytes()
    return out


def _user_dir(root: pathlib.Path) -> pathlib.Path:
    (root / "chapter1").mkdir(parents=True)
    (root / "thesis.tex").write_text("\\chapter{Years of work}")
    (root / "chapter1" / "figure.png").write_bytes(b"\x89PNG fake")
    return root


@pytest.fixture(scope="module")
def saved(tmp_path_factory, make_small_generator):
    """A small checkpoint written by save_generator (fast), and its generator."""
    gen = make_small_generator()
    d = tmp_path_factory.mktemp("saved") / "ck"
    jaxedit.save_generator(gen, d, source={"format": "test"})
    return d, gen


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _largest_param_file(d: pathlib.Path) -> pathlib.Path:
    files = [p for p in (d / "params").rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)


# ---- checksums ------------------------------------------------------------------------------
def test_config_records_a_sha256_per_parameter_file(saved):
    d, gen = saved
    meta = jaxedit.read_config(d)
    files = sorted(str(p.relative_to(d)) for p in (d / "params").rglob("*") if p.is_file())
    assert sorted(meta["param_files"]) == files and len(files) >= 3
    for rel, digest in meta["param_files"].items():
        assert digest == converters.sha256_file(d / rel)
    assert meta["format_version"] == 2 and len(meta["config_sha256"]) == 64
    jaxedit.verify_checkpoint(d)
    _assert_same_params(jaxedit.load_generator(d), gen)


def _assert_same_params(a, b):
    import jax
    from flax import nnx

    la, lb = jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_flipped_bytes_are_caught(saved, tmp_path, capsys):
    d = _copy(saved[0], tmp_path / "ck")
    victim = _largest_param_file(d)
    data = bytearray(victim.read_bytes())
    for i in range(min(2000, len(data))):
        data[i] ^= 0xFF
    victim.write_bytes(bytes(data))
    rel = str(victim.relative_to(d))
    for fn in (jaxedit.load_generator, jaxedit.verify_checkpoint, jaxedit.inspect_checkpoint):
        with pytest.raises(jaxedit.CorruptCheckpointError, match=rf"{rel}: SHA-256 .* differs"):
            fn(d)
    assert main(["inspect", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "SHA-256" in err
    # verify=False skips the check: orbax then either reads garbage or fails, in one typed line
    try:
        jaxedit.load_generator(d, verify=False)
    except jaxedit.CheckpointError as e:
        text = str(e)
        assert "\n" not in text and len(text) < 600 and "tensorstore_spec" not in text
        assert "strict=False" not in text


def test_added_or_removed_files_are_caught(saved, tmp_path):
    d = _copy(saved[0], tmp_path / "ck")
    (d / "params" / "extra.bin").write_bytes(b"x")
    with pytest.raises(jaxedit.CorruptCheckpointError, match=r"unexpected \['params/extra\.bin'\]"):
        jaxedit.load_generator(d)
    (d / "params" / "extra.bin").unlink()
    victim = _largest_param_file(d)
    victim.unlink()
    with pytest.raises(jaxedit.CorruptCheckpointError, match="missing"):
        jaxedit.load_generator(d)


def test_edited_architecture_is_caught(saved, tmp_path):
    d = _copy(saved[0], tmp_path / "ck")
    meta = json.loads((d / "config.json").read_text())
    meta["config"]["channels"]["16"] = 4
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(jaxedit.CorruptCheckpointError, match="edited after conversion"):
        jaxedit.load_generator(d)
    # without verification the stored tree is still compared with the architecture: one line,
    # naming the key, without orbax's advice about strict=False
    with pytest.raises(jaxedit.ShapeMismatchError, match=r"synthesis_net/b16") as info:
        jaxedit.load_generator(d, verify=False)
    assert "strict" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(jaxedit.ShapeMismatchError):
        jaxedit.inspect_checkpoint(d, verify=False)


def test_damaged_orbax_metadata_is_one_typed_line(saved, tmp_path):
    d = _copy(saved[0], tmp_path / "ck")
    meta_file = d / "params" / "_METADATA"
    meta_file.write_bytes(meta_file.read_bytes()[:100])
    with pytest.raises(jaxedit.CorruptCheckpointError, match="SHA-256"):
        jaxedit.load_generator(d)
    with pytest.raises(jaxedit.CheckpointError) as info:
        jaxedit.load_generator(d, verify=False)
    text = str(info.value)
    assert "\n" not in text and len(text) < 600 and "params" in text


def test_orbax_reason_is_short():
    long = (
        'DATA_LOSS: Error opening "zarr" driver: Error reading "x". To enable it, set '
        "`strict=False` in `ArrayRestoreArgs` for any array in v0 API or "
        "`enable_padding_and_truncation=True` in `ArrayOptions.Loading` in v1 API. "
        "[tensorstore_spec='" + "{" * 7000 + "']"
    )
    text = ck._orbax_reason(ValueError(long))
    assert len(text) <= 303 and "strict" not in text and "tensorstore_spec" not in text
    assert text.startswith("DATA_LOSS")


def test_format_version_1_loads_with_a_warning(saved, tmp_path):
    d = _copy(saved[0], tmp_path / "ck")
    meta = json.loads((d / "config.json").read_text())
    for k in ("param_files", "config_sha256"):
        meta.pop(k)
    meta["format_version"] = 1
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="without checksums"):
        jaxedit.load_generator(d)
    assert ck.is_jaxedit_checkpoint(d) == (True, "")


def test_directory_without_config_is_not_a_checkpoint(tmp_path, capsys):
    d = _user_dir(tmp_path / "stuff")
    for fn in (jaxedit.load_generator, jaxedit.inspect_checkpoint, converters.read_checkpoint):
        with pytest.raises(jaxedit.CheckpointError, match="not a jaxedit checkpoint"):
            fn(d)
    assert main(["inspect", str(d)]) == 2
    err = capsys.readouterr().err
    assert "not a jaxedit checkpoint" in err and "no such checkpoint file" not in err
    (d / "params").mkdir()
    with pytest.raises(jaxedit.CheckpointError, match="params/ but no config.json"):
        jaxedit.load_generator(d)


# ---- --force / overwrite --------------------------------------------------------------------
def test_overwrite_replaces_a_jaxedit_checkpoint(saved, tmp_path, make_small_generator):
    d = _copy(saved[0], tmp_path / "ck")
    gen2 = make_small_generator(seed=7)
    with pytest.raises(FileExistsError, match="already exists"):
        jaxedit.save_generator(gen2, d)
    jaxedit.save_generator(gen2, d, source={"format": "second"}, overwrite=True)
    assert jaxedit.read_config(d)["source"] == {"format": "second"}
    assert sorted(os.listdir(tmp_path)) == ["ck"]  # no temporary directory left
    _assert_same_params(jaxedit.load_generator(d), gen2)


@pytest.mark.parametrize(
    "what",
    ["user_dir", "file", "checkpoint_plus_file", "foreign_params", "empty_dir", "symlinked_params"],
)
def test_overwrite_refuses_anything_else_untouched(saved, tmp_path, what, make_small_generator):
    root = tmp_path / "root"
    root.mkdir()
    target = root / "out"
    if what == "user_dir":
        _user_dir(target)
    elif what == "file":
        target.write_text("my notes")
    elif what == "checkpoint_plus_file":
        _copy(saved[0], target)
        (target / "notes.txt").write_text("keep me")
    elif what == "foreign_params":
        _copy(saved[0], target)
        (target / "params" / "my_data.csv").write_text("1,2,3")
    elif what == "empty_dir":
        target.mkdir()
    elif what == "symlinked_params":
        _copy(saved[0], target)
        shutil.move(str(target / "params"), str(root / "elsewhere"))
        os.symlink(root / "elsewhere", target / "params")
    before = _tree(root)
    with pytest.raises(FileExistsError, match="refusing to replace it.*nothing was changed"):
        jaxedit.save_generator(make_small_generator(), target, overwrite=True)
    assert _tree(root) == before


def test_cli_force_onto_user_data_dot_and_files(ada_pkl, tmp_path, monkeypatch, capsys):
    work = _user_dir(tmp_path / "work")
    before = _tree(tmp_path)
    monkeypatch.chdir(work)
    for out in (".", str(work), "thesis.tex", "chapter1"):
        assert main(["convert", str(ada_pkl), out, "--force"]) == 2
        err = capsys.readouterr().err.strip()
        assert "refusing to replace" in err and err.count("\n") == 0, err
        assert main(["convert", str(ada_pkl), out]) == 2  # without --force: exists
        capsys.readouterr()
    assert _tree(tmp_path) == before
    # a genuine checkpoint is replaced; being inside it (cwd) is refused
    assert main(["convert", str(ada_pkl), "ck"]) == 0
    assert main(["convert", str(ada_pkl), "ck", "--force", "--which", "G"]) == 0
    assert jaxedit.read_config(work / "ck")["source"]["which"] == "G"
    monkeypatch.chdir(work / "ck")
    assert main(["convert", str(ada_pkl), ".", "--force"]) == 2
    assert "working directory" in capsys.readouterr().err
    assert sorted(os.listdir(work)) == ["chapter1", "ck", "thesis.tex"]


def test_overwrite_follows_a_symlink_to_a_checkpoint(saved, tmp_path, make_small_generator):
    real = _copy(saved[0], tmp_path / "real")
    link = tmp_path / "link"
    os.symlink(real, link)
    jaxedit.save_generator(
        make_small_generator(seed=3), link, source={"format": "via link"}, overwrite=True
    )
    assert os.path.islink(link) and jaxedit.read_config(real)["source"]["format"] == "via link"
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    with pytest.raises(FileExistsError, match="broken symbolic link"):
        jaxedit.save_generator(make_small_generator(), tmp_path / "dangling", overwrite=True)


def test_failed_write_keeps_the_old_checkpoint(saved, tmp_path, monkeypatch, make_small_generator):
    d = _copy(saved[0], tmp_path / "ck")
    before = _tree(tmp_path)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "_config_digest", boom)
    with pytest.raises(OSError, match="disk full"):
        jaxedit.save_generator(make_small_generator(seed=5), d, overwrite=True)
    assert _tree(tmp_path) == before


# Parsed in a child interpreter: CPython 3.11's ast module can raise "SystemError: AST constructor
# recursion depth mismatch" once other code in the process (here torch.jit.script in the benchmark
# tests) has moved its recursion counters, which made this check fail only in the full session.
_RMTREE_SCAN = r"""
import ast, json, pathlib, sys
calls = []
for root in sys.argv[1:]:
    for path in sorted(pathlib.Path(root).rglob("*.py")):
        tree = ast.parse(path.read_text())
        made = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call) and getattr(node.value.func, "attr", "")
                == "mkdtemp" for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "rmtree":
                arg = node.args[0]
                calls.append([str(path), getattr(arg, "id", None), ast.dump(arg),
                              isinstance(arg, ast.Name) and arg.id in made])
print(json.dumps(calls))
"""


def test_the_library_removes_only_its_own_temporary_directories():
    """Every shutil.rmtree in jaxedit/ and converters/ removes a directory the library made
    with tempfile.mkdtemp (checked on the source: the argument names such a variable)."""
    root = pathlib.Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", _RMTREE_SCAN, str(root / "jaxedit"), str(root / "converters")],
        capture_output=True,
        text=True,
        check=True,
    )
    calls = json.loads(out.stdout)
    assert calls, "expected the temporary-directory removals in checkpoint.py"
    for path, _, dump, from_mkdtemp in calls:
        assert from_mkdtemp, (path, dump)


@pytest.mark.float32
def test_checksummed_roundtrip_float32(tmp_path, make_small_generator):
    """The users' default (x64 off): save, verify, load, inspect."""
    gen = make_small_generator(seed=2)
    d = jaxedit.save_generator(gen, tmp_path / "ck")
    jaxedit.verify_checkpoint(d)
    info = jaxedit.inspect_checkpoint(d)
    assert info.kind == "converted" and info.verified and info.num_values > 0
    _assert_same_params(jaxedit.load_generator(d), gen)
