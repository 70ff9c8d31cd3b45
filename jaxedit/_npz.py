"""Checked reading of ``.npz`` / ``.npy`` files: nothing pickled, nothing allocated unchecked.

Before any array is read, the file's first bytes say what it is (a PNG, a pickle or a checkpoint
passed where an ``.npz`` belongs is named as such), and every member's header (dtype and shape)
is parsed: object arrays are refused (they would need pickle), and the sizes the headers declare
must agree with the archive's and stay within a bound (``10 x`` the file size ``+ 1 GiB`` unless
the caller gives one), so a small archive whose members inflate to gigabytes is refused before
it is inflated.
"""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP = b"PK\x05\x06"

#: ``(magic prefix, what the file is)``, checked in order.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x80", "a pickle (or a PyTorch / NVIDIA checkpoint)"),
    (b"{", "a JSON text"),
    (b"%PDF", "a PDF document"),
)


def describe_head(head: bytes) -> str:
    """What a file is, from its first bytes (``"a PNG image"``, ``"an empty file"``...)."""
    if not head:
        return "an empty file"
    if head.startswith(_NPY_MAGIC):
        return "a .npy array"
    if head.startswith((_ZIP_MAGIC, _EMPTY_ZIP)):
        return "a zip archive"
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file of an unknown kind"
    return "a text file"


def _default_limit(path: str) -> int:
    return 10 * os.path.getsize(path) + (1 << 30)


def _header(f, where: str) -> tuple[np.dtype, tuple[int, ...], bool]:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except Exception as e:  # ValueError, EOFError, SyntaxError from a damaged header
        raise ValueError(f"{where}: a damaged .npy header ({_short(e)})") from None
    if dtype.hasobject:
        raise ValueError(
            f"{where}: holds Python objects (dtype {dtype}), which need pickle; jaxedit reads "
            "only plain numeric arrays"
        )
    return dtype, tuple(int(s) for s in shape), bool(fortran)


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:200]


def _nbytes(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    return int(math.prod(shape)) * int(dtype.itemsize)


def _read_one(f, where: str, dtype, shape, fortran) -> np.ndarray:
    n = _nbytes(dtype, shape)
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            break
        got += k
    if got != n:
        raise ValueError(f"{where}: truncated (expected {n} bytes of data, got {got})")
    return np.frombuffer(buf, dtype).reshape(shape, order="F" if fortran else "C")


def _open_checked(path, what: str) -> tuple[str, bytes]:
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a {what} file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"cannot read {what} file {path}: permission denied")
    with open(path, "rb") as f:
        head = f.read(16)
    return path, head


def read_arrays(
    path, what: str, *, max_bytes: int | None = None, allow_npy: bool = False
) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (or of a ``.npy`` as ``{"": array}`` when ``allow_npy``).

    Args:
        path: the file.
        what: what the file should hold, for messages (``"Jacobian"``, ``"latents"``...).
        max_bytes: the most bytes the arrays may take once read (None: 10 x the file size +
            1 GiB).
        allow_npy: accept a single ``.npy`` array too.

    Returns:
        ``{name: array}`` (names without the ``.npy`` suffix).

    Raises:
        FileNotFoundError, PermissionError: a missing or unreadable file.
        ValueError: not an ``.npz`` (saying what the file is instead), a damaged archive or
            header, object arrays, or sizes beyond the bound; each names the file.
    """
    path, head = _open_checked(path, what)
    expected = ".npz or .npy" if allow_npy else ".npz"
    limit = _default_limit(path) if max_bytes is None else int(max_bytes)
    if head.startswith(_NPY_MAGIC):
        if not allow_npy:
            raise ValueError(
                f"{path}: a single .npy array, but a {what} .npz archive (written by jaxedit) "
                "is expected here"
            )
        with open(path, "rb") as f:
            dtype, shape, fortran = _header(f, path)
            _check_size(path, "", dtype, shape, limit, os.path.getsize(path))
            return {"": _read_one(f, path, dtype, shape, fortran)}
    if not head.startswith((_ZIP_MAGIC, _EMPTY_ZIP)):
        raise ValueError(
            f"{path}: not a {what} file: it is {describe_head(head)}, expected a {expected} "
            "(as jaxedit writes them)"
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ValueError(
            f"{path}: a damaged zip archive ({_short(e)}), not a {what} .npz"
        ) from None
    out: dict[str, np.ndarray] = {}
    with zf:
        infos = zf.infolist()
        if not infos:
            raise ValueError(f"{path}: an empty archive, not a {what} .npz")
        total = 0
        plan = []
        for info in infos:
            where = f"{path}: member {info.filename!r}"
            if not info.filename.endswith(".npy"):
                raise ValueError(
                    f"{where} is not a .npy array: a zip archive, but not a {what} .npz "
                    "(a checkpoint or another archive?)"
                )
            try:
                with zf.open(info) as f:
                    dtype, shape, fortran = _header(f, where)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
                raise ValueError(f"{where}: damaged ({_short(e)})") from None
            n = _check_size(path, info.filename, dtype, shape, limit - total, info.file_size)
            total += n
            plan.append((info, dtype, shape, fortran))
        for info, dtype, shape, fortran in plan:
            where = f"{path}: member {info.filename!r}"
            try:
                with zf.open(info) as f:
                    _header(f, where)
                    out[info.filename[:-4]] = _read_one(f, where, dtype, shape, fortran)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ValueError(f"{where}: damaged ({_short(e)})") from None
    return out


def _check_size(path, name, dtype, shape, budget: int, stored: int) -> int:
    where = f"{path}: member {name!r}" if name else path
    if any(s < 0 for s in shape):
        raise ValueError(f"{where}: a negative dimension in shape {shape}")
    n = _nbytes(dtype, shape)
    if n > budget:
        raise ValueError(
            f"{where}: declares {n:,} bytes ({dtype}, shape {shape}), more than the "
            f"{max(budget, 0):,} this file may hold once read (10 x its size + 1 GiB): refused "
            "before reading"
        )
    if n > stored:  # the header promises more data than the member holds
        raise ValueError(
            f"{where}: truncated or altered (its header declares {n:,} bytes of data, "
            f"the member holds {stored:,})"
        )
    return n
