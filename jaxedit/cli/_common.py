"""The shared layer of the ``jaxedit`` command line: argument validators, the parser class (one-line
usage errors, defaults shown in ``--help``), output options under the `jaxedit._io` output
policy, and the error handling of `run` (every error one line on stderr, exit code 2;
tracebacks only with ``--debug``; SIGPIPE-safe).

Command modules (``jaxedit/cli/<command>.py``, listed in ``jaxedit.cli.COMMANDS``) use it as::

    from ._common import CLIError, add_output_args, check_output, positive_int, alphas

    def register(sub):
        p = sub.add_parser("panda", help="...", epilog=examples("jaxedit panda ckpt/ --k 5"))
        p.add_argument("--k", type=positive_int, default=5, help="number of directions")
        add_output_args(p, "panda.npz", "the directions (.npz)")
        p.set_defaults(fn=_cmd_panda)

    def _cmd_panda(args):
        out = check_output(args.out, args.force)       # before any expensive work
        ...
        save_npz(out, overwrite=args.force, ...)

``type=`` validators raise `argparse.ArgumentTypeError` with a message that says what is
expected; errors found after parsing are `CLIError` (a ValueError) or any typed library
error (ValueError, OSError, ``CheckpointError``): `run` prints each as one line.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
import warnings

#: Longest integer list / alpha list accepted on the command line (bounds memory and time).
MAX_LIST = 1_000_000
MAX_ALPHAS = 1_000
#: NVIDIA generate.py seeds go through ``np.random.RandomState(seed)``: 0 <= seed < 2**32.
MAX_SEED = 2**32 - 1


class CLIError(ValueError):
    """A command-line mistake found after parsing (bad combination of options, out of range for
    the loaded generator, ...). Printed as one line, exit code 2."""


# ---- argparse type= validators --------------------------------------------------------------


def _named(name: str):
    def deco(fn):
        fn.__name__ = name  # argparse names the type in its fallback messages
        return fn

    return deco


def _int(text) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _float(text) -> float:
    try:
        v = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


@_named("positive integer")
def positive_int(text) -> int:
    """An integer >= 1."""
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (>= 1), got {text!r}")
    return v


@_named("non-negative integer")
def nonneg_int(text) -> int:
    """An integer >= 0."""
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer (>= 0), got {text!r}")
    return v


@_named("finite number")
def finite_float(text) -> float:
    """Any finite float (NaN and inf refused)."""
    return _float(text)


@_named("positive number")
def positive_float(text) -> float:
    """A finite float > 0."""
    v = _float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number (> 0), got {text!r}")
    return v


@_named("non-negative number")
def nonneg_float(text) -> float:
    """A finite float >= 0."""
    v = _float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number (>= 0), got {text!r}")
    return v


@_named("probability")
def probability(text) -> float:
    """A float in [0, 1]."""
    v = _float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text!r}")
    return v


@_named("truncation")
def truncation(text) -> float:
    """A float in (0, 1] (BigGAN's truncation)."""
    v = _float(text)
    if not 0.0 < v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return v


def int_list(text, *, max_value: int | None = None, max_len: int = MAX_LIST) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``: non-negative integers and inclusive ranges, order
    kept, duplicates dropped; at most ``max_len`` values, each <= ``max_value``."""
    out: dict[int, None] = {}
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a list of non-negative integers: {text!r} (e.g. 0-7 or 1,4,9)"
            ) from None
        if a < 0 or b < 0:
            raise argparse.ArgumentTypeError(f"negative value in {text!r}: use integers >= 0")
        if b < a:
            raise argparse.ArgumentTypeError(
                f"descending range {part!r} in {text!r} (write {b}-{a})"
            )
        if max_value is not None and b > max_value:
            raise argparse.ArgumentTypeError(f"{b} in {text!r} is larger than {max_value}")
        if b - a + 1 > max_len:
            raise argparse.ArgumentTypeError(f"{text!r} lists more than {max_len:,} values")
        out.update(dict.fromkeys(range(a, b + 1)))
        if len(out) > max_len:
            raise argparse.ArgumentTypeError(f"{text!r} lists more than {max_len:,} values")
    if not out:
        raise argparse.ArgumentTypeError(f"empty integer list: {text!r}")
    return list(out)


@_named("integer list")
def parse_int_list(text) -> list[int]:
    """``type=`` form of `int_list` (W+ slots, indices)."""
    return int_list(text)


@_named("seed list")
def seed_list(text) -> list[int]:
    """Seeds for ``np.random.RandomState``: `int_list` with values below 2**32."""
    return int_list(text, max_value=MAX_SEED)


@_named("alphas")
def parse_alphas(text) -> list[float]:
    """``"-10:10:7"`` -> ``linspace(-10, 10, 7)``; ``"-2,0,2"`` -> that list. Finite values,
    at most `MAX_ALPHAS`."""
    text = str(text)
    usage = f"alphas must be START:STOP:COUNT (e.g. -10:10:7) or a comma list (e.g. -2,0,2), got {text!r}"
    try:
        if ":" in text:
            a, b, n = text.split(":")
            lo, hi, count = float(a), float(b), int(n)
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise argparse.ArgumentTypeError(f"alphas must be finite, got {text!r}")
            if not 1 <= count <= MAX_ALPHAS:
                raise argparse.ArgumentTypeError(
                    f"alpha COUNT must be in [1, {MAX_ALPHAS}], got {n!r}"
                )
            import numpy as np

            return [float(v) for v in np.linspace(lo, hi, count)]
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(usage) from None
    if not vals:
        raise argparse.ArgumentTypeError(usage)
    if not all(math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"alphas must be finite, got {text!r}")
    if len(vals) > MAX_ALPHAS:
        raise argparse.ArgumentTypeError(f"at most {MAX_ALPHAS} alphas, got {len(vals)}")
    return vals


def name_or_int_list(names: tuple[str, ...]):
    """A ``type=`` for "one of ``names`` or an integer list" (e.g. SeFa's ``--layers``)."""

    @_named("name or integer list")
    def parse(text):
        if text in names:
            return text
        try:
            return int_list(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"must be one of {', '.join(names)} or integers like 2-5 or 0,3, got {text!r}"
            ) from None

    return parse


# ---- parser -----------------------------------------------------------------------------------


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults appended to every option's help (unless None/False, an on/off flag, or the help
    names one);
    descriptions and epilogs kept as written (for examples)."""

    def _get_help_string(self, action):
        help_ = action.help or ""
        if "%(default)" in help_ or "(default" in help_:
            return help_
        if action.default in (None, False, argparse.SUPPRESS) or isinstance(
            action,
            (
                argparse._HelpAction,
                argparse._VersionAction,
                argparse._StoreTrueAction,
                argparse._StoreFalseAction,
            ),
        ):
            return help_
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return help_ + " (default: %(default)s)"
        return help_


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with `HelpFormatter` and one-line usage errors (exit 2).

    Subparsers created through ``add_subparsers`` inherit the class, so plugin subcommands get
    the same behaviour without doing anything."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def examples(*lines: str) -> str:
    """An epilog listing example command lines."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_output_args(p, default: str | None, what: str, *, flag: str = "--out", group=None) -> None:
    """``--out PATH`` (default ``default``) and ``--force``/``--overwrite`` (replace an existing
    file). Pass the value through `check_output` before computing anything. ``group``: a
    mutually exclusive group of ``p`` to put ``--out`` in (e.g. beside an ``--outdir``)."""
    (group or p).add_argument(
        flag,
        default=default,
        metavar="PATH",
        help=f"write {what} here (a symlink is followed; an existing file is kept unless --force)",
    )
    p.add_argument(
        "--force",
        "--overwrite",
        dest="force",
        action="store_true",
        help="replace an existing output file (never a directory or special file)",
    )


def setup_x64(args) -> None:
    """The one x64 switch: enable float64 in JAX when the command has ``--x64`` and it is given.

    Args:
        args: the parsed command line (an ``argparse.Namespace``; ``x64`` may be absent).
    """
    if getattr(args, "x64", False):
        import jax

        jax.config.update("jax_enable_x64", True)


def check_output(path, force: bool) -> str:
    """`jaxedit._io.prepare_output` for a command-line output (raises OutputError)."""
    from .._io import prepare_output

    return prepare_output(path, overwrite=bool(force))


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def add_global_flags(parser: argparse.ArgumentParser) -> None:
    """``--debug`` on the parser and on every subcommand at any depth (``panda fit``, ``eis
    catalog``, plugins included); each subcommand also records its ``prog`` (``"jaxedit panda
    fit"``) so that `run` prefixes its errors as argparse prefixes usage errors."""
    debug_help = "show the full traceback of an error"
    if "--debug" not in parser._option_string_actions:
        parser.add_argument("--debug", action="store_true", help=debug_help)
    for _, sp in _subparsers(parser):
        if "--debug" not in sp._option_string_actions:
            # SUPPRESS: an absent sub-option must not reset a --debug given before the command
            sp.add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help
            )
        # the deepest subcommand parsed sets it last, so its prog wins
        sp.set_defaults(_prog=sp.prog)
        add_global_flags(sp)


# ---- inputs before outputs --------------------------------------------------------------------

#: Argument names that hold an input checkpoint (``default``: the embedded generator).
CHECKPOINT_ARGS = ("ckpt", "src")
#: Argument names that hold an input array file, and the kind of file each expects.
ARRAY_ARGS = {
    "jacobian": ("Jacobian", ".npz"),
    "moments": ("moments", ".npz"),
    "factors": ("PandA factors", ".npz"),
    "catalog": ("catalog", ".npz"),
    "inputs": ("moments", ".npz"),
    "latents": ("latents", ".npz or .npy"),
    "directions": ("directions", ".npz or .npy"),
}
_CHECKPOINT_EXPECTED = (
    "expected a checkpoint: an NVIDIA .pkl, a PyTorch .pt / .pth / .bin, a BigGAN or "
    "jaxedit checkpoint folder, or 'default'"
)


def _head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(16)


def _check_checkpoint_arg(flag: str, path: str) -> None:
    from .._npz import describe_head

    if path == "default" and not os.path.exists(path):
        return
    if not os.path.exists(path):
        raise CLIError(f"{flag}{path}: no such checkpoint file or folder")
    if os.path.isdir(path):
        return
    if not os.access(path, os.R_OK):
        raise CLIError(f"{flag}{path}: cannot read the checkpoint: permission denied")
    head = _head(path)
    if head[:1] == b"\x80":
        return
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return  # the reader names the damage
        if names and all(n.endswith(".npy") for n in names):
            raise CLIError(
                f"{flag}{path}: a NumPy .npz archive of arrays, not a checkpoint; "
                + _CHECKPOINT_EXPECTED
            )
        return
    raise CLIError(
        f"{flag}{path}: not a checkpoint: it is {describe_head(head)}; {_CHECKPOINT_EXPECTED}"
    )


def _check_array_arg(flag: str, path: str, what: str, expected: str) -> None:
    from .._npz import describe_head

    if not os.path.exists(path):
        raise CLIError(f"{what} file not found: {flag}{path}")
    if os.path.isdir(path):
        raise CLIError(f"{flag}{path} is a directory, not a {what} file ({expected})")
    if not os.access(path, os.R_OK):
        raise CLIError(f"{flag}{path}: cannot read the {what} file: permission denied")
    head = _head(path)
    ok = head.startswith((b"PK\x03\x04", b"PK\x05\x06"))
    ok = ok or (".npy" in expected and head.startswith(b"\x93NUMPY"))
    if not ok:
        raise CLIError(
            f"{flag}{path}: not a {what} file: it is {describe_head(head)}, expected a "
            f"{expected} (as jaxedit writes them)"
        )


def check_inputs(args) -> None:
    """Check every input file of a parsed command before anything else (`run` calls it before
    the command, so an existing output never hides a missing or wrong input): checkpoints
    (`CHECKPOINT_ARGS`) exist and look like checkpoints, array files (`ARRAY_ARGS`) exist and
    are ``.npz`` / ``.npy`` files. Cheap: at most the first bytes and a zip index are read.

    Raises:
        CLIError: naming the argument, the path and what the file is instead.
    """
    ns = vars(args)
    for name in CHECKPOINT_ARGS:
        if isinstance(ns.get(name), str):
            _check_checkpoint_arg("", ns[name])
    for name, (what, expected) in ARRAY_ARGS.items():
        value = ns.get(name)
        paths = value if isinstance(value, list) else [value]
        for path in paths:
            if isinstance(path, (str, os.PathLike)):
                flag = "" if name in ("inputs", "catalog") else f"--{name} "
                _check_array_arg(flag, os.fspath(path), what, expected)


# ---- running a command --------------------------------------------------------------------------


def _one_line(text: object, limit: int = 600) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[0]
    if len(line) > limit:
        line = line[:limit] + "..."
    if len(lines) > 1:
        line += " [...]"
    return line


def _expected_types() -> tuple[type, ...]:
    from converters.errors import CheckpointError

    return (CheckpointError, OSError, ValueError, MemoryError, RecursionError)


def format_error(e: BaseException) -> str:
    """One line for an exception: typed errors as their message, anything else as an
    internal error that points at ``--debug``."""
    if isinstance(e, OSError) and e.filename and e.strerror and len(e.args) >= 2:
        msg = f"{e.filename}: {e.strerror}"
    elif isinstance(e, MemoryError):
        msg = (
            "out of memory"
            + (f" ({_one_line(e)})" if str(e) else "")
            + ": use fewer samples, a smaller --batch / --chunk or --resize"
        )
    elif isinstance(e, RecursionError):
        msg = f"input nested too deeply ({_one_line(e)})"
    elif isinstance(e, _expected_types()):
        msg = _one_line(e) or type(e).__name__
    elif type(e).__name__ in ("XlaRuntimeError", "JaxRuntimeError"):
        text = _one_line(e)
        if "RESOURCE_EXHAUSTED" in str(e) or "out of memory" in str(e).lower():
            return f"out of device memory ({text}): use fewer samples, a smaller --batch / --chunk or --resize"
        return f"runtime error in the computation: {text}"
    else:
        return (
            f"internal error ({type(e).__name__}: {_one_line(e)}); "
            "rerun with --debug for the traceback and please report it"
        )
    return msg


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {_one_line(message, 1000)}", file=sys.stderr if file is None else file)


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command: its return code, 2 for any error (one line on
    stderr, ``"<prog> <command>: error: ..."`` as argparse's usage errors, the traceback too
    with ``--debug``), 130 on Ctrl-C, 141 when stdout is a closed pipe.
    """
    import time

    add_global_flags(parser)
    try:
        args = parser.parse_args(argv)
        sys.stdout.flush()
    except SystemExit as e:  # --help, --version, usage errors (already printed)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except BrokenPipeError:  # --help | head
        _silence_stdout()
        return 141
    debug = bool(getattr(args, "debug", False))
    prefix = f"{getattr(args, '_prog', parser.prog)}: error: "
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            check_inputs(args)
            rc = args.fn(args)
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            return 141
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception as e:
            if debug:
                traceback.print_exc()
            print(prefix + format_error(e), file=sys.stderr)
            return 2
    if os.environ.get("JAXEDIT_TIMING"):
        print(f"({time.time() - t0:.1f} s)", file=sys.stderr)
    return 0 if rc is None else int(rc)


__all__ = [
    "ArgumentParser",
    "CLIError",
    "HelpFormatter",
    "MAX_ALPHAS",
    "MAX_LIST",
    "MAX_SEED",
    "add_global_flags",
    "add_output_args",
    "check_inputs",
    "check_output",
    "examples",
    "finite_float",
    "format_error",
    "int_list",
    "name_or_int_list",
    "nonneg_float",
    "nonneg_int",
    "parse_alphas",
    "parse_int_list",
    "positive_float",
    "positive_int",
    "probability",
    "run",
    "seed_list",
    "setup_x64",
    "truncation",
]
