"""``torch.save`` readers (legacy streams, zip archives) and the public entry points."""

from __future__ import annotations

import os
import struct
import zipfile
import zlib

try:  # optional in some Python builds
    from lzma import LZMAError as _LZMAError
except ImportError:  # pragma: no cover
    _LZMAError = OSError
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import CorruptCheckpointError, UnsupportedFormatError
from ._allowlist import _BASE_ALLOW, _allow
from ._limits import Limits, _Ctx, _describe, _first_line, _fmt_bytes, _open_ctx
from ._standins import _as_index, _bytes_to_array, _itemsize, _Storage, _StorageType
from ._streams import _FileStream, _MemStream
from ._unpickler import _safe_load
from ._walk import _materialize

#: zipfile with its private end-record reader (not in the typeshed stubs).
_zipfile: Any = zipfile

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


# --------------------------------------------------------------------------------------------
# Legacy (non-zip) torch.save streams.
# --------------------------------------------------------------------------------------------
def _check_storage_id(pid: Any, ctx: _Ctx) -> tuple[_StorageType, str, int, Any]:
    source = ctx.source
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise CorruptCheckpointError(f"{source}: unexpected persistent id {_describe(pid)}")
    stype, key, _location, numel = pid[1:5]
    if not isinstance(stype, _StorageType):
        raise CorruptCheckpointError(
            f"{source}: storage {_describe(key)} has an unknown type {_describe(stype)}"
        )
    if not isinstance(key, str) or not 0 < len(key) <= 256:
        raise CorruptCheckpointError(f"{source}: storage key {_describe(key)} is not a name")
    if isinstance(numel, bool) or not isinstance(numel, int) or not 0 <= numel < 1 << 60:
        raise CorruptCheckpointError(
            f"{source}: storage {key!r} declares {_describe(numel)} elements"
        )
    return stype, key, numel, (pid[5] if len(pid) > 5 else None)


def _read_legacy_stream(stream, ctx: _Ctx, allow, what: str = "legacy torch.save data") -> Any:
    source = ctx.source
    scalar_allow: dict = {}
    magic = _safe_load(stream, ctx, scalar_allow, what=f"{what} (magic number)")
    if magic != LEGACY_MAGIC:
        raise UnsupportedFormatError(f"{source}: not a torch.save file (no legacy magic number)")
    protocol = _safe_load(stream, ctx, scalar_allow, what=f"{what} (protocol)")
    if protocol != LEGACY_PROTOCOL:
        raise UnsupportedFormatError(
            f"{source}: unsupported torch.save protocol {_describe(protocol)}"
        )
    sys_info = _safe_load(stream, ctx, scalar_allow, what=f"{what} (system info)")
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise UnsupportedFormatError(f"{source}: big-endian torch.save files are not supported")

    storages: dict[str, _Storage] = {}

    def persistent(pid):
        stype, key, numel, view = _check_storage_id(pid, ctx)
        root = storages.get(key)
        if root is None:
            root = storages[key] = _Storage(key, stype.dtype, numel)
        elif root.dtype != stype.dtype or root.numel != numel:
            raise CorruptCheckpointError(
                f"{source}: storage {key!r} is declared twice with different types or sizes"
            )
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)):
            raise CorruptCheckpointError(
                f"{source}: storage {key!r} has a malformed view {_describe(view)}"
            )
        view_key = view[0]
        offset = _as_index(view[1], "a view offset", source, f"storage {key!r}")
        size = _as_index(view[2], "a view size", source, f"storage {key!r}")
        if view_key not in storages:
            v = _Storage(view_key, root.dtype, size)
            v.view_of = (root, offset)
            storages[view_key] = v
        return storages[view_key]

    obj = _safe_load(stream, ctx, allow, persistent, what=what)
    keys = _safe_load(stream, ctx, scalar_allow, what=f"{what} (storage keys)")
    if not isinstance(keys, list):
        raise CorruptCheckpointError(f"{source}: the storage key list is missing")
    for key in keys:
        if not isinstance(key, str):
            raise CorruptCheckpointError(f"{source}: storage key {_describe(key)} is not a name")
        st = storages.get(key)
        if st is None or st.view_of is not None:
            raise CorruptCheckpointError(
                f"{source}: storage {key!r} is listed but never referenced"
            )
        if st.data is not None:
            raise CorruptCheckpointError(f"{source}: storage {key!r} is written twice")
        header = stream.read(8)
        if len(header) != 8:
            raise CorruptCheckpointError(
                f"{source}: the file ends before storage {key!r} (truncated)"
            )
        (numel,) = struct.unpack("<q", header)
        itemsize = _itemsize(st.dtype)
        if numel != st.numel:
            raise CorruptCheckpointError(
                f"{source}: storage {key!r} is declared with {st.numel} elements but its data "
                f"header says {numel}"
            )
        nbytes = numel * itemsize
        if nbytes > stream.remaining():
            raise CorruptCheckpointError(
                f"{source}: storage {key!r} declares {numel} elements ({_fmt_bytes(nbytes)}) "
                f"but only {_fmt_bytes(stream.remaining())} of the file remain (truncated or "
                "hostile); nothing was allocated"
            )
        ctx.budget.charge(
            nbytes * ((2 if st.dtype == "bfloat16" else 0) + stream.copies), f"storage {key!r}"
        )
        raw = stream.read_view(nbytes)
        st.data = _bytes_to_array(raw, st.dtype, numel, f"{source}: storage {key!r}")
    return obj


def _load_from_bytes_factory(ctx: _Ctx) -> Callable[[bytes], _Storage]:
    def load_from_bytes(blob: Any) -> _Storage:
        if not isinstance(blob, (bytes, bytearray)):
            raise CorruptCheckpointError(
                f"{ctx.source}: embedded storage is a {type(blob).__name__}, not bytes"
            )
        obj = _read_legacy_stream(_MemStream(blob), ctx, _BASE_ALLOW, what="embedded storage")
        if not isinstance(obj, _Storage):
            raise CorruptCheckpointError(
                f"{ctx.source}: an embedded storage blob holds a "
                f"{type(obj).__name__}, not a storage"
            )
        return obj

    return load_from_bytes


# --------------------------------------------------------------------------------------------
# Public entry points.
# --------------------------------------------------------------------------------------------
def _regular_file(path: str | os.PathLike) -> str:
    source = os.fspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(f"{source}: no such checkpoint file")
    if not os.path.isfile(source):  # a FIFO or a device would block or never end
        raise UnsupportedFormatError(f"{source}: not a regular file")
    return source


def sniff(path: str | os.PathLike) -> str:
    """Return ``"zip"``, ``"pickle"`` or ``"unknown"`` from a file's first bytes."""
    with open(_regular_file(path), "rb") as f:
        head = f.read(4)
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def load_torch_file(
    path: str | os.PathLike, *, extra_allow: Mapping | None = None, limits: Limits | None = None
) -> Any:
    """Load a ``torch.save`` file (zip or legacy) without torch; tensors become NumPy arrays.

    Args:
      path: the file.
      extra_allow: more ``{(module, name): stand-in}`` globals to accept (format readers).
      limits: resource limits (`Limits`; the defaults bound memory to ~4x the file).

    Raises:
      UnsafePickleError: the pickle names a global that is not allowlisted.
      CorruptCheckpointError: the file is truncated, inconsistent, or exceeds the limits.
      UnsupportedFormatError: the file is not a ``torch.save`` file.
    """
    source = _regular_file(path)
    kind = sniff(source)
    if kind == "zip":
        return _load_torch_zip(source, _allow(extra_allow), limits)
    if kind == "pickle":
        with open(source, "rb") as f:
            ctx = _open_ctx(source, os.fstat(f.fileno()).st_size, limits)
            obj = _read_legacy_stream(
                _FileStream(f, ctx.budget.file_size), ctx, _allow(extra_allow)
            )
        return _materialize(obj, ctx)
    raise UnsupportedFormatError(f"{source}: not a torch.save file (unknown header)")


_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
    _LZMAError,
)
_ZIPINFO_BYTES = 1024  # what zipfile keeps per archive member (ZipInfo), charged up front


def _zip_entries(source: str) -> int:
    """The member count the archive's end record declares (zip64 aware), without parsing the
    central directory (which zipfile would turn into one object per entry)."""
    with open(source, "rb") as f:
        end = _zipfile._EndRecData(f)  # noqa: SLF001 - the stdlib's own end-record reader
    if end is None:
        raise CorruptCheckpointError(f"{source}: damaged zip archive (no end record)")
    return int(end[_zipfile._ECD_ENTRIES_TOTAL])  # noqa: SLF001


def _load_torch_zip(source: str, allow: dict, limits: Limits | None) -> Any:
    ctx = _open_ctx(source, os.path.getsize(source), limits)
    try:
        n_entries = _zip_entries(source)
        ctx.budget.charge(n_entries * _ZIPINFO_BYTES, f"the index of {n_entries} zip members")
        zf = zipfile.ZipFile(source)
    except _ZIP_ERRORS as e:
        if isinstance(e, CorruptCheckpointError):
            raise
        raise CorruptCheckpointError(f"{source}: damaged zip archive ({_first_line(e)})") from None
    with zf:
        infos = {i.filename: i for i in zf.infolist()}
        pkl = [n for n in infos if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            expected = (
                "expected a checkpoint: an NVIDIA .pkl, a PyTorch .pt / .pth / .bin (a zip "
                "archive holding one data.pkl) or a jaxedit checkpoint folder"
            )
            if infos and all(n.endswith(".npy") for n in infos):
                raise UnsupportedFormatError(
                    f"{source}: a NumPy .npz archive of arrays ({len(infos)} member(s)), not a "
                    f"generator checkpoint; {expected}"
                )
            found = "no data.pkl" if not pkl else f"{len(pkl)} data.pkl files"
            raise UnsupportedFormatError(
                f"{source}: a zip archive with {found}, not a PyTorch checkpoint; {expected}"
            )
        prefix = pkl[0][: -len("data.pkl")]

        def read_member(name: str, nbytes: int | None, what: str, cap: int | None = None):
            info = infos.get(name)
            if info is None:
                raise CorruptCheckpointError(
                    f"{source}: {what} ({name!r}) is missing from the archive"
                )
            if nbytes is not None and info.file_size != nbytes:
                raise CorruptCheckpointError(
                    f"{source}: {what} ({name!r}) is {info.file_size} bytes in the archive but "
                    f"{nbytes} bytes are declared for it"
                )
            if cap is not None and info.file_size > cap:
                raise CorruptCheckpointError(
                    f"{source}: {what} ({name!r}) declares {_fmt_bytes(info.file_size)}"
                )
            ctx.budget.charge(info.file_size, f"{what} ({name!r})")
            try:
                with zf.open(info) as fh:  # never reads more than the declared size
                    data = fh.read(info.file_size)
            except _ZIP_ERRORS as e:
                raise CorruptCheckpointError(
                    f"{source}: {what} ({name!r}) is damaged ({_first_line(e)})"
                ) from None
            if len(data) != info.file_size:
                raise CorruptCheckpointError(f"{source}: {what} ({name!r}) is truncated")
            return data

        order = prefix + "byteorder"
        if order in infos:
            if read_member(order, None, "byteorder", cap=16).strip() not in (b"little", b""):
                raise UnsupportedFormatError(f"{source}: big-endian torch archives are unsupported")
        storages: dict[str, _Storage] = {}

        def persistent(pid):
            stype, key, numel, _ = _check_storage_id(pid, ctx)
            st = storages.get(key)
            if st is not None:
                if st.dtype != stype.dtype or st.numel != numel:
                    raise CorruptCheckpointError(
                        f"{source}: storage {key!r} is declared twice with different types or sizes"
                    )
                return st
            member = f"{prefix}data/{key}"
            nbytes = numel * _itemsize(stype.dtype)
            raw = read_member(member, nbytes, f"storage {key!r}")
            st = _Storage(key, stype.dtype, numel)
            if stype.dtype == "bfloat16":
                ctx.budget.charge(2 * nbytes, f"storage {key!r} (bfloat16 -> float32)")
            st.data = _bytes_to_array(raw, st.dtype, numel, f"{source}: {member}")
            storages[key] = st
            return st

        data = read_member(pkl[0], None, "data.pkl")
        obj = _safe_load(_MemStream(data), ctx, allow, persistent, what=pkl[0])
        del data
    return _materialize(obj, ctx)


def load_pickle(
    path: str | os.PathLike, *, extra_allow: Mapping | None = None, limits: Limits | None = None
) -> Any:
    """Load a plain pickle (e.g. an NVIDIA network snapshot) with the restricted allowlist.

    Storages embedded through ``torch.storage._load_from_bytes`` are parsed as legacy torch
    blobs; persistent objects become `PersistentObject` records; NumPy arrays of plain
    numeric dtypes are accepted. No code runs. ``extra_allow`` and ``limits`` as in
    `load_torch_file`.
    """
    source = _regular_file(path)
    with open(source, "rb") as f:
        ctx = _open_ctx(source, os.fstat(f.fileno()).st_size, limits)
        allow = _allow(extra_allow)
        allow[("torch.storage", "_load_from_bytes")] = _load_from_bytes_factory(ctx)
        obj = _safe_load(_FileStream(f, ctx.budget.file_size), ctx, allow)
    return _materialize(obj, ctx)
