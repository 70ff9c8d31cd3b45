"""Host-side I/O helpers: one output policy for every file jaxedit writes, checked .npz / .npy
reading, a progress bar.

Output policy (`prepare_output`, used by `save_npz`, `save_json`,
`jaxedit.images.save_png` and the command line):

* a symlink is followed: its target is written, the link stays a link;
* only a regular file (or a missing path) is ever replaced; a directory, device, FIFO or socket
  is refused with `OutputError` (``--out /dev/null`` never replaces the device node);
* an existing file is replaced only with ``overwrite=True`` (the command line's ``--force``),
  else `OutputExistsError`;
* the parent directory must exist and be writable (one clear `OutputError` otherwise);
* the data goes to a temporary file in the target's directory, which is then renamed onto the
  target (atomic: a reader sees the old file or the new one, never a partial one; a failure leaves
  the target untouched and no temporary file behind). Without ``overwrite`` the rename cannot
  clobber a file that appeared meanwhile (hard link + unlink where the filesystem allows it).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from .errors import OutputError, OutputExistsError


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "directory"),
    ):
        if test(mode):
            return name
    return "special file"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _target_mode(real: str) -> int:
    """Permissions for the new file: the replaced file's, else ``0666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def prepare_output(path, *, overwrite: bool) -> str:
    """Check that ``path`` may be written under the output policy; return the path to write.

    Call it before any expensive work (the command line does), and the writers call it again
    just before writing. Symlinks are resolved: the returned path is the link's final target.

    Raises:
      OutputExistsError: ``path`` is an existing regular file and ``overwrite`` is False.
      OutputError: ``path`` is (or points to) a directory or a special file, its parent
        directory is missing or not a directory, or it is not writable.
    """
    given = os.fspath(path)
    if not given:
        raise OutputError("empty output path")
    if given.endswith(("/", os.sep)) or os.path.isdir(given):
        raise OutputError(f"{given} is a directory: give a file name for the output")
    real = os.path.realpath(given)
    try:
        st = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as e:  # symlink loop, name too long, ...
        raise OutputError(f"cannot write {given}: {e.strerror or e}") from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(
                f"{given} is a {_kind(st.st_mode)}, not a regular file: refusing to "
                "replace it (give a file name for the output)"
            )
        if not overwrite:
            raise OutputExistsError(
                f"{given} already exists (pass --force / overwrite=True to replace it)"
            )
    parent = os.path.dirname(real)
    if not os.path.isdir(parent):
        what = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise OutputError(f"cannot write {given}: the directory {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {given}: permission denied (directory {parent})")
    return real


def _commit(tmp: str, real: str, given: str, overwrite: bool) -> None:
    """Move the finished temp file onto ``real`` under the policy (re-checked now)."""
    prepare_output(real, overwrite=overwrite)
    os.chmod(tmp, _target_mode(real))
    if overwrite:
        os.replace(tmp, real)
        return
    try:  # no-clobber: link fails if the target appeared meanwhile
        os.link(tmp, real)
    except FileExistsError:
        raise OutputExistsError(
            f"{given} already exists (pass --force / overwrite=True to replace it)"
        ) from None
    except OSError as e:  # filesystem without hard links: checked rename
        if e.errno not in (
            errno.EPERM,
            errno.ENOTSUP,
            errno.EOPNOTSUPP,
            errno.EXDEV,
            errno.EMLINK,
            errno.ENOSYS,
        ):
            raise
        os.replace(tmp, real)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(
    path, *, overwrite: bool, suffix: str = "", text: bool = False
) -> Iterator[IO[Any]]:
    """``with atomic_output(path, overwrite=...) as f: f.write(...)``: write a file under the
    output policy (temp file in the target's directory, renamed on success). Yields a binary
    (or text) file object; the final path is ``f.jaxedit_path`` after the block."""
    given = os.fspath(path)
    real = prepare_output(given, overwrite=overwrite)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=".jaxedit-", suffix=suffix + ".part", dir=os.path.dirname(real)
        )
    except PermissionError:
        raise OutputError(
            f"cannot write {given}: permission denied (directory {os.path.dirname(real)})"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _commit(tmp, real, given, overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_npz(path, *, overwrite: bool = True, **arrays) -> str:
    """Write ``arrays`` to ``path`` (.npz) under the output policy; non-array metadata goes in as
    0-d strings. ``overwrite=False`` refuses an existing file. Returns the path written (a
    symlink's target)."""
    with atomic_output(path, overwrite=overwrite, suffix=".npz") as f:
        named: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
        np.savez(f, **named)
    return os.path.realpath(os.fspath(path))


def save_json(path, obj, *, overwrite: bool = True) -> str:
    """Write ``obj`` as indented JSON under the output policy. Returns the path written."""
    text = json.dumps(obj, indent=2)
    with atomic_output(path, overwrite=overwrite, suffix=".json", text=True) as f:
        f.write(text + "\n")
    return os.path.realpath(os.fspath(path))


def load_npz(path, required: tuple[str, ...], what: str) -> dict:
    """Read an .npz written by jaxedit; missing keys raise ValueError naming the file and key.

    Checked before anything is read (`jaxedit._npz.read_arrays`): the file must be an .npz (else
    the message says what it is), no pickles or object arrays, sizes bounded.
    """
    from ._npz import read_arrays

    data = read_arrays(path, what)
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(
            f"{os.fspath(path)}: not a jaxedit {what} file, missing key(s) {missing} "
            f"(it holds {sorted(data)})"
        )
    return data


def load_array(path, what: str) -> np.ndarray:
    """Read one numeric array from a ``.npy`` (or a single-array ``.npz``); no pickles."""
    from ._npz import read_arrays

    data = read_arrays(path, what, allow_npy=True)
    if len(data) != 1:
        raise ValueError(
            f"{os.fspath(path)}: an .npz with {len(data)} arrays {sorted(data)}; "
            f"pass a .npy or an .npz holding one {what} array"
        )
    (arr,) = data.values()
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{os.fspath(path)}: {what} must be a real numeric array, got dtype {arr.dtype}"
        )
    return arr


class _LineStream:
    """A file-like wrapper for tqdm when stderr is not a terminal: every refresh becomes one
    plain line (no carriage returns piling up in a log)."""

    def __init__(self, stream):
        self._stream = stream
        self._last = None

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text and text != self._last:  # close() repeats the last refresh: print it once
            self._stream.write(text + "\n")
            self._last = text

    def flush(self) -> None:
        self._stream.flush()


def progress(total: int | None, desc: str, *, enabled: bool = True, unit: str = "it"):
    """A progress bar on stderr (``tqdm``): use as ``with progress(n, "fit") as bar: bar.update(1)``.

    On a terminal it is tqdm's live bar; otherwise (logs, CI, pipes) it prints one line at most
    every 10 s plus a final line. ``enabled=False`` gives a silent bar with the same interface.
    """
    from tqdm.auto import tqdm

    tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not enabled,
        leave=True,
        file=sys.stderr if tty else _LineStream(sys.stderr),
        mininterval=0.1 if tty else 10.0,
        dynamic_ncols=tty,
        ascii=not tty,
    )


def progress_printer(label: str):
    """Callback form of `progress`: returns ``show(done, total)`` (closes at ``done == total``)."""
    state: dict = {}

    def show(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = progress(total, label)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return show
