"""Host-side I/O helpers: atomic file output (temp file + ``os.replace``), checked .npz reading, a progress bar."""

from __future__ import annotations

import json
import os
import sys
import tempfile

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_file(tmp: str, path: str) -> None:
    """Give a finished temp file the usual permissions (0666 & ~umask) and move it to ``path``."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def save_npz(path, **arrays) -> str:
    """Write ``arrays`` to ``path`` (.npz) atomically; non-array metadata goes in as 0-d strings."""
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=os.path.dirname(path))
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        replace_file(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def load_npz(path, required: tuple[str, ...], what: str) -> dict:
    """Read an .npz written by jaxedit; missing keys raise ValueError naming the file and key.

    No pickles are loaded (``allow_pickle=False``).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable {what} .npz ({e})") from None
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"{path}: not a jaxedit {what} file, missing key(s) {missing}")
    return data


def save_json(path, obj) -> str:
    """Write ``obj`` as indented JSON atomically."""
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
        replace_file(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


class _LineStream:
    """A file-like wrapper for tqdm when stderr is not a terminal: every refresh becomes one
    plain line (no carriage returns piling up in a log)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self._stream.write(text + "\n")

    def flush(self) -> None:
        self._stream.flush()


def progress(total: int | None, desc: str, *, enabled: bool = True, unit: str = "it"):
    """A progress bar on stderr (``tqdm``): use as ``with progress(n, "fit") as bar: bar.update(1)``.

    On a terminal it is tqdm's live bar; otherwise (logs, CI, pipes) it prints one line at most
    every 10 s plus a final line. ``enabled=False`` gives a silent bar with the same interface.
    """
    from tqdm.auto import tqdm

    tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=True,
                file=sys.stderr if tty else _LineStream(sys.stderr),
                mininterval=0.1 if tty else 10.0, dynamic_ncols=tty, ascii=not tty)


def progress_printer(label: str):
    """Callback form of :func:`progress`: returns ``show(done, total)`` (closes at ``done == total``)."""
    state: dict = {}

    def show(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = progress(total, label)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return show
