"""Restricted, torch-free readers for pickles and ``torch.save`` files.

Nothing here imports torch or executes code taken from a file. Every global a pickle asks for is
looked up in an explicit allowlist; anything else raises :class:`UnsafePickleError` before it is
called. Tensors come back as NumPy arrays (copied out of their storages).

Formats handled:

* ``torch.save`` zip archives (torch >= 1.6): ``<prefix>/data.pkl`` plus ``<prefix>/data/<key>``
  raw storages;
* legacy (non-zip) ``torch.save`` files: magic number, protocol, sys-info, the object pickle,
  the storage-key list, then ``int64 numel`` + raw bytes for each storage;
* plain pickles whose storages are embedded as legacy blobs through
  ``torch.storage._load_from_bytes`` (NVIDIA ``torch_utils.persistence`` snapshots).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Callable, Mapping

import numpy as np

from .errors import CorruptCheckpointError, UnsafePickleError, UnsupportedFormatError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES: dict[str, Any] = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_TORCH_DTYPES: dict[str, Any] = {
    "float64": np.float64,
    "float32": np.float32,
    "float16": np.float16,
    "bfloat16": "bfloat16",
    "int64": np.int64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
}


# --------------------------------------------------------------------------------------------
# Plain-data stand-ins for the objects a checkpoint pickles.
# --------------------------------------------------------------------------------------------
class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict, nothing more."""


class Namespace:
    """Stand-in for ``argparse.Namespace``: its attributes, kept as data."""

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"Namespace({vars(self)!r})"


class PersistentObject:
    """What ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` stood for.

    Attributes:
      class_name: the pickled class's name (e.g. ``"Generator"``).
      state: the module's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, attributes).
      version: the persistence format version.
    The embedded ``module_src`` is dropped unread.
    """

    def __init__(self, meta: Mapping[str, Any]):
        if not isinstance(meta, Mapping) or meta.get("type") != "class":
            raise CorruptCheckpointError(
                f"persistent object metadata is not a class record: {type(meta).__name__}"
            )
        self.class_name = str(meta.get("class_name"))
        self.version = meta.get("version")
        self.state = meta.get("state") or {}

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"PersistentObject({self.class_name})"


class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network`` (NVIDIA's TensorFlow network pickles).

    The real class's ``__setstate__`` stores the pickled state and rebuilds the TF graph by
    executing ``build_module_src``; this stand-in only keeps the state dict as data
    (``version``, ``name``, ``static_kwargs``, ``components``, ``build_module_src``,
    ``build_func_name``, ``variables``). Nothing in it is executed or imported.
    """

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise CorruptCheckpointError(
                f"TensorFlow network state is a {type(state).__name__}, not a dict")
        self.state = state

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"TFNetwork({self.state.get('name') if hasattr(self, 'state') else '?'})"


class _StorageType:
    def __init__(self, name: str, dtype: Any):
        self.name, self.dtype = name, dtype


class _Storage:
    """A 1-D storage: its dtype, element count and (once read) its data."""

    def __init__(self, key: str, dtype: Any, numel: int):
        self.key, self.dtype, self.numel = key, dtype, int(numel)
        self.data: np.ndarray | None = None
        self.view_of: tuple[_Storage, int] | None = None

    def array(self) -> np.ndarray:
        if self.view_of is not None:
            root, offset = self.view_of
            return root.array()[offset : offset + self.numel]
        if self.data is None:
            raise CorruptCheckpointError(f"storage {self.key!r} was never written in the file")
        return self.data


class _TensorRef:
    """A tensor whose storage may not be read yet; materialized after unpickling."""

    def __init__(self, storage: Any, offset: int, size: tuple, stride: tuple, dtype: Any = None):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.dtype = dtype

    def materialize(self) -> np.ndarray:
        if not isinstance(self.storage, _Storage):
            raise CorruptCheckpointError(
                f"tensor rebuilt from {type(self.storage).__name__}, not from a storage"
            )
        base = self.storage.array()
        size = tuple(int(s) for s in self.size)
        stride = tuple(int(s) for s in self.stride)
        offset = int(self.offset)
        if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
            raise CorruptCheckpointError(
                f"tensor on storage {self.storage.key!r} has size {size} and stride {stride}"
            )
        if 0 in size:
            return np.zeros(size, dtype=base.dtype)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if offset < 0 or last >= base.size:
            raise CorruptCheckpointError(
                f"tensor of size {size} at offset {offset} overruns storage {self.storage.key!r} "
                f"of {base.size} elements"
            )
        view = np.lib.stride_tricks.as_strided(
            base[offset:], shape=size, strides=tuple(s * base.itemsize for s in stride)
        )
        return np.array(view, copy=True)


def _bytes_to_array(raw: bytes | memoryview, dtype: Any, numel: int, what: str) -> np.ndarray:
    itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
    if len(raw) < numel * itemsize:
        raise CorruptCheckpointError(
            f"{what}: expected {numel * itemsize} bytes for {numel} elements, found {len(raw)}"
        )
    if dtype == "bfloat16":
        bits = np.frombuffer(raw, dtype="<u2", count=numel).astype(np.uint32) << 16
        return bits.view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"), count=numel).astype(
        np.dtype(dtype).newbyteorder("=")
    )


# --------------------------------------------------------------------------------------------
# Allowlisted callables.
# --------------------------------------------------------------------------------------------
def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *rest):
    return _TensorRef(storage, offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *rest):
    return data


def _numpy_scalar(dtype, data=None):
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise UnsafePickleError("numpy object scalars are not accepted")
    if data is None:
        return dtype.type(0)
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_reconstruct(cls, shape, dtype_code):
    if cls is not np.ndarray:
        raise UnsafePickleError(f"numpy _reconstruct of {cls!r} is not accepted")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _copyreg_reconstructor(cls, base, state):
    if cls not in (Namespace, EasyDict) or base not in (object, dict):
        raise UnsafePickleError(f"copyreg._reconstructor of {cls!r} is not accepted")
    return cls.__new__(cls)


def _torch_size(*args):
    return tuple(args[0]) if args else ()


_BASE_ALLOW: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _torch_size,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("argparse", "Namespace"): Namespace,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentObject,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
}
_BASE_ALLOW.update({("torch", k): _StorageType(k, v) for k, v in _STORAGE_DTYPES.items()})
_BASE_ALLOW.update({("torch", k): v for k, v in _TORCH_DTYPES.items()})


_KNOWN_UNSUPPORTED: dict[tuple[str, str], str] = {}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(
        self,
        file: io.BufferedIOBase,
        source: str,
        allow: Mapping[tuple[str, str], Any],
        persistent: Callable[[Any], Any] | None = None,
    ):
        super().__init__(file)
        self._source, self._allow, self._persistent = source, allow, persistent

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _KNOWN_UNSUPPORTED:
            raise UnsupportedFormatError(f"{self._source}: {_KNOWN_UNSUPPORTED[(module, name)]}")
        try:
            return self._allow[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refusing to load global '{module}.{name}': it is not on the "
                "allowlist of checkpoint types, so nothing in this file was executed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise CorruptCheckpointError(f"{self._source}: unexpected persistent id {pid!r}")
        return self._persistent(pid)


def _storage_from_pid(pid: Any, source: str) -> tuple[_Storage, tuple | None]:
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise CorruptCheckpointError(f"{source}: unexpected persistent id {pid!r}")
    stype, key, _location, numel = pid[1:5]
    dtype = stype.dtype if isinstance(stype, _StorageType) else None
    if dtype is None:
        raise CorruptCheckpointError(f"{source}: storage {key!r} has an unknown type {stype!r}")
    view = pid[5] if len(pid) > 5 else None
    return _Storage(str(key), dtype, int(numel)), view


def _safe_load(file, source: str, allow, persistent=None) -> Any:
    try:
        return _RestrictedUnpickler(file, source, allow, persistent).load()
    except (UnsafePickleError, CorruptCheckpointError, UnsupportedFormatError):
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError,
            KeyError, AttributeError, struct.error, MemoryError, RecursionError) as e:
        raise CorruptCheckpointError(
            f"{source}: truncated or corrupt pickle ({type(e).__name__}: {e})"
        ) from e


def _materialize(obj: Any, _seen: dict | None = None) -> Any:
    """Replace every _TensorRef below ``obj`` (dicts, lists, tuples, stand-ins) by an array."""
    seen = {} if _seen is None else _seen
    oid = id(obj)
    if oid in seen:
        return seen[oid]
    if isinstance(obj, _TensorRef):
        out = obj.materialize()
    elif isinstance(obj, dict):
        seen[oid] = obj
        for k in list(obj.keys()):
            obj[k] = _materialize(obj[k], seen)
        out = obj
    elif isinstance(obj, list):
        seen[oid] = obj
        obj[:] = [_materialize(v, seen) for v in obj]
        out = obj
    elif isinstance(obj, tuple):
        out = tuple(_materialize(v, seen) for v in obj)
    elif isinstance(obj, (PersistentObject, Namespace)):
        seen[oid] = obj
        for k, v in vars(obj).items():
            setattr(obj, k, _materialize(v, seen))
        out = obj
    else:
        out = obj
    seen[oid] = out
    return out


# --------------------------------------------------------------------------------------------
# Legacy (non-zip) torch.save streams.
# --------------------------------------------------------------------------------------------
def _read_legacy_stream(f: io.BufferedIOBase, source: str, allow) -> Any:
    scalar_allow: dict = {}
    magic = _safe_load(f, source, scalar_allow)
    if magic != LEGACY_MAGIC:
        raise UnsupportedFormatError(f"{source}: not a torch.save file (no legacy magic number)")
    protocol = _safe_load(f, source, scalar_allow)
    if protocol != LEGACY_PROTOCOL:
        raise UnsupportedFormatError(f"{source}: unsupported torch.save protocol {protocol!r}")
    sys_info = _safe_load(f, source, scalar_allow)
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise UnsupportedFormatError(f"{source}: big-endian torch.save files are not supported")

    storages: dict[str, _Storage] = {}

    def persistent(pid):
        st, view = _storage_from_pid(pid, source)
        root = storages.setdefault(st.key, st)
        if view is None:
            return root
        view_key, offset, size = view
        if view_key not in storages:
            v = _Storage(str(view_key), root.dtype, int(size))
            v.view_of = (root, int(offset))
            storages[str(view_key)] = v
        return storages[str(view_key)]

    obj = _safe_load(f, source, allow, persistent)
    keys = _safe_load(f, source, scalar_allow)
    if not isinstance(keys, list):
        raise CorruptCheckpointError(f"{source}: storage key list is missing")
    for key in keys:
        st = storages.get(str(key))
        if st is None:
            raise CorruptCheckpointError(f"{source}: storage {key!r} is not referenced")
        header = f.read(8)
        if len(header) != 8:
            raise CorruptCheckpointError(f"{source}: file ends before storage {key!r}")
        (numel,) = struct.unpack("<q", header)
        itemsize = 2 if st.dtype == "bfloat16" else np.dtype(st.dtype).itemsize
        if numel < 0 or numel > 1 << 40:
            raise CorruptCheckpointError(f"{source}: storage {key!r} has a bad size {numel}")
        raw = f.read(numel * itemsize)
        st.data = _bytes_to_array(raw, st.dtype, numel, f"{source}: storage {key!r}")
        st.numel = numel
    return obj


def _load_from_bytes_factory(source: str) -> Callable[[bytes], _Storage]:
    def load_from_bytes(blob: bytes) -> _Storage:
        obj = _read_legacy_stream(io.BytesIO(blob), source + " (embedded storage)", _BASE_ALLOW)
        if not isinstance(obj, _Storage):
            raise CorruptCheckpointError(f"{source}: embedded storage blob holds {type(obj)}")
        return obj

    return load_from_bytes


# --------------------------------------------------------------------------------------------
# Public entry points.
# --------------------------------------------------------------------------------------------
def sniff(path: str | os.PathLike) -> str:
    """Return ``"zip"``, ``"pickle"`` or ``"unknown"`` from a file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def load_torch_file(path: str | os.PathLike) -> Any:
    """Load a ``torch.save`` file (zip or legacy) without torch; tensors become NumPy arrays.

    Raises:
      UnsafePickleError: the pickle names a global that is not allowlisted.
      CorruptCheckpointError: the file is truncated or inconsistent.
      UnsupportedFormatError: the file is not a ``torch.save`` file.
    """
    source = os.fspath(path)
    kind = sniff(path)
    if kind == "zip":
        return _load_torch_zip(source)
    if kind == "pickle":
        with open(path, "rb") as f:
            return _materialize(_read_legacy_stream(f, source, _BASE_ALLOW))
    raise UnsupportedFormatError(f"{source}: not a torch.save file (unknown header)")


def _load_torch_zip(source: str) -> Any:
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as e:
        raise CorruptCheckpointError(f"{source}: damaged zip archive ({e})") from e
    with zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise UnsupportedFormatError(f"{source}: zip archive has no single data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        order = prefix + "byteorder"
        if order in names and zf.read(order).strip() not in (b"little", b""):
            raise UnsupportedFormatError(f"{source}: big-endian torch archives are unsupported")
        storages: dict[str, _Storage] = {}

        def persistent(pid):
            st, _ = _storage_from_pid(pid, source)
            if st.key not in storages:
                member = f"{prefix}data/{st.key}"
                try:
                    raw = zf.read(member)
                except KeyError:
                    raise CorruptCheckpointError(
                        f"{source}: storage {member!r} is missing from the archive"
                    ) from None
                except (zipfile.BadZipFile, OSError, EOFError) as e:
                    raise CorruptCheckpointError(f"{source}: storage {member!r}: {e}") from e
                st.data = _bytes_to_array(raw, st.dtype, st.numel, f"{source}: {member}")
                storages[st.key] = st
            return storages[st.key]

        try:
            data = zf.read(pkl[0])
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise CorruptCheckpointError(f"{source}: {pkl[0]}: {e}") from e
        obj = _safe_load(io.BytesIO(data), source, _BASE_ALLOW, persistent)
    return _materialize(obj)


def load_pickle(path: str | os.PathLike) -> Any:
    """Load a plain pickle (e.g. an NVIDIA network snapshot) with the restricted allowlist.

    Storages embedded through ``torch.storage._load_from_bytes`` are parsed as legacy torch
    blobs; persistent objects become :class:`PersistentObject` records. No code runs.
    """
    source = os.fspath(path)
    allow = dict(_BASE_ALLOW)
    allow[("torch.storage", "_load_from_bytes")] = _load_from_bytes_factory(source)
    with open(path, "rb") as f:
        return _materialize(_safe_load(f, source, allow))


__all__ = [
    "EasyDict",
    "Namespace",
    "PersistentObject",
    "TFNetwork",
    "load_pickle",
    "load_torch_file",
    "sniff",
]
