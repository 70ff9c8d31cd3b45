"""The output policy (jaxedit._io.prepare_output and the writers built on it) and the shared
command-line validators (jaxedit.cli._common)."""

import argparse
import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

import jaxedit
from jaxedit._checks import check_finite, finite_scalar
from jaxedit._io import (
    OutputError,
    OutputExistsError,
    load_array,
    load_npz,
    prepare_output,
    save_json,
    save_npz,
)
from jaxedit.cli import _common as cc
from jaxedit.images import save_png

IMG = np.full((4, 4, 3), 7, np.uint8)


def _writers(path, overwrite):
    return [
        lambda: save_npz(path, overwrite=overwrite, a=np.arange(3)),
        lambda: save_json(path, {"a": 1}, overwrite=overwrite),
        lambda: save_png(IMG, path, overwrite=overwrite),
    ]


def _leftovers(d):
    return [n for n in os.listdir(d) if n.startswith(".jaxedit-")]


@pytest.mark.parametrize("which", range(3))
def test_new_file_and_overwrite_policy(tmp_path, which):
    p = tmp_path / "out.bin"
    _writers(p, False)[which]()
    assert p.is_file()
    before = p.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists"):
        _writers(p, False)[which]()
    assert p.read_bytes() == before
    _writers(p, True)[which]()  # explicit overwrite replaces a regular file
    assert _leftovers(tmp_path) == []


def test_symlink_is_followed_not_replaced(tmp_path):
    target = tmp_path / "real.npz"
    target.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    with pytest.raises(OutputExistsError):
        save_npz(link, overwrite=False, a=np.arange(2))
    assert target.read_bytes() == b"old"
    written = save_npz(link, overwrite=True, a=np.arange(2))
    assert written == str(target)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(np.load(link)["a"], np.arange(2))
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "made.json")
    save_json(dangling, [1], overwrite=False)
    assert dangling.is_symlink() and json.loads((tmp_path / "made.json").read_text()) == [1]


@pytest.mark.parametrize("overwrite", [False, True])
def test_special_files_and_directories_refused(tmp_path, overwrite):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "to_fifo"
    link.symlink_to(fifo)
    for target in (fifo, link):
        for write in _writers(target, overwrite):
            with pytest.raises(OutputError, match="FIFO, not a regular file"):
                write()
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    d = tmp_path / "dir"
    d.mkdir()
    (d / "keep.txt").write_text("thesis")
    for target in (d, str(d) + "/", str(tmp_path / "missing_dir") + "/"):
        with pytest.raises(OutputError, match="is a directory"):
            save_npz(target, overwrite=overwrite, a=np.arange(2))
    assert (d / "keep.txt").read_text() == "thesis"
    assert _leftovers(tmp_path) == [] and _leftovers(d) == []


def test_missing_parent_and_permission(tmp_path, monkeypatch):
    with pytest.raises(OutputError, match="does not exist"):
        save_png(IMG, tmp_path / "nope" / "a.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is not a directory"):
        save_png(IMG, tmp_path / "file" / "a.png")
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
        try:
            with pytest.raises(OutputError, match="permission denied"):
                save_npz(ro / "x.npz", a=np.arange(1))
        finally:
            ro.chmod(0o755)
    # as root the directory stays writable: simulate the kernel refusing the temp file
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match=r"cannot write .*x\.npz: permission denied"):
        save_npz(ro / "x.npz", a=np.arange(1))


def test_failure_leaves_target_and_no_temp(tmp_path):
    p = tmp_path / "keep.png"
    p.write_bytes(b"precious")
    with pytest.raises(ValueError):
        save_png(np.zeros((4, 4, 3), np.float32), p, overwrite=True)  # not uint8
    with pytest.raises(TypeError):
        save_json(p, {"x": object()}, overwrite=True)  # not serializable
    assert p.read_bytes() == b"precious" and _leftovers(tmp_path) == []


def test_mode_kept_on_overwrite(tmp_path):
    p = tmp_path / "m.json"
    p.write_text("{}")
    p.chmod(0o640)
    save_json(p, {"a": 2}, overwrite=True)
    assert stat.S_IMODE(p.stat().st_mode) == 0o640 and json.loads(p.read_text()) == {"a": 2}


def test_no_clobber_race(tmp_path, monkeypatch):
    """A file appearing between the check and the rename is not clobbered without overwrite."""
    import jaxedit._io as io

    p = tmp_path / "race.npz"
    real_prepare = io.prepare_output
    calls = []

    def prepare(path, *, overwrite):
        calls.append(path)
        out = real_prepare(path, overwrite=overwrite)
        if len(calls) == 2:  # the re-check just before the rename: someone else wins
            p.write_bytes(b"theirs")
            return out
        return out

    monkeypatch.setattr(io, "prepare_output", prepare)
    with pytest.raises(OutputExistsError):
        save_npz(p, overwrite=False, a=np.arange(2))
    assert p.read_bytes() == b"theirs" and _leftovers(tmp_path) == []


def test_prepare_output_returns_real_path(tmp_path):
    t = tmp_path / "t.png"
    link = tmp_path / "l.png"
    link.symlink_to(t)
    assert prepare_output(link, overwrite=False) == str(t)
    with pytest.raises(OutputError, match="empty"):
        prepare_output("", overwrite=True)


def test_loaders(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((2, 3)))
    assert load_array(tmp_path / "a.npy", "latents").shape == (2, 3)
    np.save(tmp_path / "o.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="o.npy: holds Python objects .* need pickle"):
        load_array(tmp_path / "o.npy", "latents")
    with pytest.raises(ValueError, match="is a directory"):
        load_array(tmp_path, "latents")
    with pytest.raises(FileNotFoundError, match="latents file not found"):
        load_array(tmp_path / "missing.npy", "latents")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="junk.npz: a damaged zip archive"):
        load_npz(tmp_path / "junk.npz", ("jacobian",), "Jacobian")
    with pytest.raises(ValueError, match="a single .npy array"):
        load_npz(tmp_path / "a.npy", ("jacobian",), "Jacobian")


def test_npz_reading_says_what_a_wrong_file_is_and_never_suggests_pickle(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "e.npz").write_bytes(b"")
    (tmp_path / "p.pkl").write_bytes(b"\x80\x04N.")
    for name, what in (("a.png", "a PNG image"), ("e.npz", "an empty file"), ("p.pkl", "a pickle")):
        for fn in (
            lambda p: load_array(p, "latents"),
            lambda p: load_npz(p, ("jacobian",), "Jacobian"),
            jaxedit.load_directions,
        ):
            with pytest.raises(ValueError) as e:
                fn(tmp_path / name)
            msg = str(e.value)
            assert f"it is {what}" in msg and "allow_pickle" not in msg, msg
    np.savez(tmp_path / "x.npz", directions=np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError) as e:
        jaxedit.load_directions(tmp_path / "x.npz")
    assert "need pickle" in str(e.value) and "allow_pickle" not in str(e.value)
    np.savez(tmp_path / "ok.npz", jacobian=np.ones((2, 3), np.float32), space="w")
    d = load_npz(tmp_path / "ok.npz", ("jacobian",), "Jacobian")
    assert d["jacobian"].dtype == np.float32 and d["jacobian"].shape == (2, 3)
    assert str(d["space"]) == "w"
    np.savez(tmp_path / "f.npz", a=np.asfortranarray(np.arange(6.0).reshape(2, 3)))
    np.testing.assert_array_equal(load_array(tmp_path / "f.npz", "x"), np.arange(6.0).reshape(2, 3))


def _npz_with_header(path, shape, payload: bytes, compress=True):
    """An .npz whose single member declares ``shape`` (float64) but holds ``payload``."""
    import zipfile

    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        zf.writestr("jacobian.npy", buf.getvalue() + payload)


def test_npz_bombs_are_refused_before_inflating(tmp_path):
    from jaxedit._npz import read_arrays

    # a member that really inflates to 256 MiB from a ~260 KiB file: over 10 x + the budget given
    big = tmp_path / "bomb.npz"
    _npz_with_header(big, (1 << 25,), bytes(8 << 25))
    assert big.stat().st_size < 1 << 20
    with pytest.raises(ValueError, match="refused before reading"):
        read_arrays(big, "Jacobian", max_bytes=64 << 20)
    # a header that promises more than the member holds (a lie, or a truncated member)
    liar = tmp_path / "liar.npz"
    _npz_with_header(liar, (1 << 40,), bytes(64))
    with pytest.raises(ValueError, match="refused before reading|truncated or altered"):
        load_npz(liar, ("jacobian",), "Jacobian")
    short = tmp_path / "short.npz"
    _npz_with_header(short, (100,), bytes(80), compress=False)
    with pytest.raises(ValueError, match="truncated or altered"):
        load_npz(short, ("jacobian",), "Jacobian")


def test_check_finite():
    import jax
    import jax.numpy as jnp

    check_finite("z", np.zeros(3))
    check_finite("idx", np.arange(3))
    with pytest.raises(
        ValueError, match=r"^z contains 2 non-finite value\(s\) \(NaN or inf\) out of 4"
    ):
        check_finite("z", np.array([np.nan, 1, np.inf, 0]))
    with pytest.raises(ValueError, match="^ws contains 1 non-finite"):
        check_finite("ws", jnp.array([0.0, jnp.nan]))
    # traced values are not inspected (the checks are host-side only)
    assert jax.jit(lambda x: check_finite("x", x) * 2)(jnp.array([jnp.nan])).shape == (1,)
    assert finite_scalar("psi", "0.5") == 0.5
    for bad in (float("nan"), float("inf"), "x", None):
        with pytest.raises(ValueError, match="^psi must be"):
            finite_scalar("psi", bad)


# ---- validators -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn, good, bad",
    [
        (cc.positive_int, [("1", 1), ("12", 12)], ["0", "-3", "1.5", "x", ""]),
        (cc.nonneg_int, [("0", 0), ("7", 7)], ["-1", "nan", "2.0"]),
        (cc.finite_float, [("-2.5", -2.5), ("1e3", 1000.0)], ["nan", "inf", "-inf", "x"]),
        (cc.positive_float, [("0.1", 0.1)], ["0", "-1", "nan"]),
        (cc.nonneg_float, [("0", 0.0), ("1e-3", 1e-3)], ["-5", "nan", "inf"]),
        (cc.probability, [("0", 0.0), ("1", 1.0), ("0.3", 0.3)], ["1.01", "-0.1", "nan"]),
        (cc.truncation, [("1", 1.0), ("0.4", 0.4)], ["0", "1.5", "nan"]),
    ],
)
def test_scalar_validators(fn, good, bad):
    for text, want in good:
        assert fn(text) == want
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            fn(text)


def test_list_validators():
    assert cc.parse_int_list("0-3,7") == [0, 1, 2, 3, 7]
    assert cc.parse_int_list("5,5,4-6") == [5, 4, 6]
    for bad in ("3-1", "-3", "a", "", ",", "1--2"):
        with pytest.raises(argparse.ArgumentTypeError):
            cc.parse_int_list(bad)
    assert cc.seed_list(f"{cc.MAX_SEED}") == [cc.MAX_SEED]
    with pytest.raises(argparse.ArgumentTypeError, match="larger than"):
        cc.seed_list(f"{cc.MAX_SEED + 1}")
    assert len(cc.seed_list("0-100000")) == 100001  # linear time, not quadratic
    with pytest.raises(argparse.ArgumentTypeError, match="more than"):
        cc.seed_list("0-999999999")  # refused before allocating
    assert cc.parse_alphas("-10:10:7") == list(np.linspace(-10, 10, 7))
    assert cc.parse_alphas("-2,0,2.5") == [-2.0, 0.0, 2.5]
    for bad in ("1:2", "nan,inf", "0:inf:3", "1:2:0", "a,b", "", "0:1:100000"):
        with pytest.raises(argparse.ArgumentTypeError):
            cc.parse_alphas(bad)
    layers = cc.name_or_int_list(("all", "fine"))
    assert layers("all") == "all" and layers("2-4") == [2, 3, 4]
    with pytest.raises(argparse.ArgumentTypeError, match="all, fine or integers"):
        layers("bogus")


def test_parser_one_line_errors_and_defaults(capsys):
    p = cc.ArgumentParser(prog="tool")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("run", help="run")
    s.add_argument("--n", type=cc.positive_int, default=3, help="count")
    s.add_argument("--opt", default=None, help="optional (default: computed)")
    cc.add_output_args(s, "run.npz", "results")
    with pytest.raises(SystemExit) as e:
        p.parse_args(["run", "--n", "0"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "tool run: error: argument --n: must be a positive integer" in err
    )
    text = s.format_help()
    assert "count (default: 3)" in text and "(default: run.npz)" in text
    assert "computed) (default" not in text and "--force, --overwrite" in text
    assert p.parse_args(["run", "--overwrite"]).force is True


def test_run_error_lines(capsys):
    p = cc.ArgumentParser(prog="tool")
    sub = p.add_subparsers(dest="cmd", required=True)

    def boom(exc):
        def fn(args):
            raise exc

        return fn

    for name, exc in [
        ("value", ValueError("bad value\nsecond line")),
        ("os", PermissionError(13, "Permission denied", "/x/y")),
        ("bug", TypeError("oops")),
        ("mem", MemoryError()),
        ("out", OutputExistsError("o.png already exists")),
    ]:
        sub.add_parser(name).set_defaults(fn=boom(exc))
    assert cc.run(p, ["value"]) == 2
    assert capsys.readouterr().err == "tool value: error: bad value [...]\n"
    assert cc.run(p, ["os"]) == 2
    assert capsys.readouterr().err == "tool os: error: /x/y: Permission denied\n"
    assert cc.run(p, ["bug"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (TypeError: oops); rerun with --debug" in err
    assert cc.run(p, ["mem"]) == 2
    assert capsys.readouterr().err.startswith("tool mem: error: out of memory")
    assert cc.run(p, ["out"]) == 2
    assert capsys.readouterr().err == "tool out: error: o.png already exists\n"
    # --debug before or after the command: the traceback too
    for argv in (["--debug", "value"], ["value", "--debug"]):
        assert cc.run(p, argv) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and err.endswith(
            "tool value: error: bad value [...]\n"
        )


def test_run_broken_pipe(monkeypatch, capsys):
    p = cc.ArgumentParser(prog="tool")
    sub = p.add_subparsers(dest="cmd", required=True)

    def talk(args):
        raise BrokenPipeError(32, "Broken pipe")

    sub.add_parser("talk").set_defaults(fn=talk)
    silenced = []
    monkeypatch.setattr(cc, "_silence_stdout", lambda: silenced.append(1))
    assert cc.run(p, ["talk"]) == 141
    assert silenced == [1] and capsys.readouterr().err == ""


def test_warnings_are_one_line(capsys):
    import warnings

    p = cc.ArgumentParser(prog="tool")
    sub = p.add_subparsers(dest="cmd", required=True)

    def warn(args):
        warnings.warn("M_b is singular\npass regularization", RuntimeWarning, stacklevel=2)
        return 0

    sub.add_parser("w").set_defaults(fn=warn)
    assert cc.run(p, ["w"]) == 0
    assert capsys.readouterr().err == "warning: M_b is singular [...]\n"


def test_png_written(tmp_path):
    out = save_png(IMG, tmp_path / "a.png", overwrite=False)
    assert np.asarray(Image.open(out)).shape == (4, 4, 3)
