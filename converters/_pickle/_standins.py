"""Plain-data stand-ins for the objects a checkpoint pickles.

Records and sealed objects, storages and tensor references (materialized and checked after
unpickling), and the NumPy stand-ins whose pickled dtypes and arrays are checked before numpy
sees their state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import CorruptCheckpointError, UnsafePickleError
from ._limits import _Ctx, _ctx, _describe


class _Record:
    """Base of the stand-ins a pickle may build: a BUILD may only set plain attributes (no
    dunder names, so no ``__class__`` swap), from a dict of string keys."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:
            state, slots = state
            if slots:
                raise UnsafePickleError(
                    f"{_ctx().source}: slot state on a {type(self).__name__} is refused"
                )
        if state is None:
            return
        if not isinstance(state, dict) or any(
            not isinstance(k, str) or k.startswith("__") for k in state
        ):
            raise UnsafePickleError(
                f"{_ctx().source}: the state of a {type(self).__name__} "
                f"must be a dict of plain attribute names, not "
                f"{_describe(state)}"
            )
        self.__dict__.update(state)


class _Sealed:
    """Base of objects whose state a pickle may not set at all."""

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(
            f"{_ctx().source}: the pickle sets the state of a {type(self).__name__}; refused"
        )


class EasyDict(_Record, dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict, nothing more."""


class Namespace(_Record):
    """Stand-in for ``argparse.Namespace``: its attributes, kept as data."""

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"Namespace({sorted(vars(self))})"


class PersistentObject(_Sealed):
    """What ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` stood for.

    Attributes:
      class_name: the pickled class's name (e.g. ``"Generator"``).
      state: the module's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, attributes).
      version: the persistence format version.
    The embedded ``module_src`` is dropped unread.
    """

    class_name: str | None = None  # what an instance made without __init__ (NEWOBJ) holds
    state: Any = None
    version: Any = None

    def __init__(self, meta: Mapping[str, Any]):
        if not isinstance(meta, Mapping) or meta.get("type") != "class":
            raise CorruptCheckpointError(
                f"persistent object metadata is not a class record: {type(meta).__name__}"
            )
        name = meta.get("class_name")
        if not isinstance(name, str) or len(name) > 256:
            raise CorruptCheckpointError(
                f"persistent object class_name is {_describe(name)}, not a class name"
            )
        state = meta.get("state")
        if state is None:
            state = {}
        if not isinstance(state, dict):
            raise CorruptCheckpointError(
                f"persistent object {name!r} has a state of type {type(state).__name__}, not a dict"
            )
        self.class_name = name
        self.version = meta.get("version")
        self.state = state

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
                f"TensorFlow network state is a {type(state).__name__}, not a dict"
            )
        self.state = state

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"TFNetwork({self.state.get('name') if hasattr(self, 'state') else '?'})"


class _StorageType(_Sealed):
    def __init__(self, name: str, dtype: Any):
        self.name, self.dtype = name, dtype


class _TorchDtype(_Sealed):
    """Marker for ``torch.float32`` etc. (only ever an argument, never called)."""

    def __init__(self, name: str, dtype: Any):
        self.name, self.dtype = name, dtype


def _itemsize(dtype: Any) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


class _Storage(_Sealed):
    """A 1-D storage: its dtype, element count and (once read) its data."""

    def __init__(self, key: str, dtype: Any, numel: int):
        self.key, self.dtype, self.numel = key, dtype, int(numel)
        self.data: np.ndarray | None = None
        self.view_of: tuple[_Storage, int] | None = None

    def array(self, source: str) -> np.ndarray:
        if self.view_of is not None:
            root, offset = self.view_of
            base = root.array(source)
            if offset < 0 or offset + self.numel > base.size:
                raise CorruptCheckpointError(
                    f"{source}: storage view {self.key!r} ({self.numel} elements at offset "
                    f"{offset}) runs past its root storage {root.key!r} of {base.size} elements"
                )
            return base[offset : offset + self.numel]
        if not isinstance(self.data, np.ndarray) or self.data.ndim != 1:
            raise CorruptCheckpointError(
                f"{source}: storage {self.key!r} was never written in the file"
            )
        return self.data


def _as_index(v: Any, what: str, source: str, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise CorruptCheckpointError(
            f"{source}: tensor {path}: {what} is {_describe(v)}, not an integer"
        )
    v = int(v)
    if not 0 <= v < 1 << 62:
        raise CorruptCheckpointError(
            f"{source}: tensor {path}: {what} {_describe(v)} is out of range"
        )
    return v


class _TensorRef(_Sealed):
    """A tensor whose storage may not be read yet; materialized (and checked) after unpickling."""

    storage: Any = None  # what an instance made without __init__ holds
    offset: Any = None
    size: Any = None
    stride: Any = None
    dtype: Any = None

    def __init__(self, storage: Any, offset: Any, size: Any, stride: Any, dtype: Any = None):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.dtype = dtype

    def materialize(self, ctx: _Ctx, path: str) -> np.ndarray:
        source, limits = ctx.source, ctx.limits
        if not isinstance(self.storage, _Storage):
            raise CorruptCheckpointError(
                f"{source}: tensor {path} is rebuilt from {type(self.storage).__name__}, not "
                "from a storage"
            )
        st = self.storage
        if not isinstance(self.size, (tuple, list)) or not isinstance(self.stride, (tuple, list)):
            raise CorruptCheckpointError(f"{source}: tensor {path}: size/stride are not tuples")
        if len(self.size) != len(self.stride) or len(self.size) > limits.max_dims:
            raise CorruptCheckpointError(
                f"{source}: tensor {path} has {len(self.size)} sizes and {len(self.stride)} "
                f"strides (at most {limits.max_dims} dimensions)"
            )
        size = tuple(_as_index(s, "a size", source, path) for s in self.size)
        stride = tuple(_as_index(s, "a stride", source, path) for s in self.stride)
        offset = _as_index(self.offset, "the storage offset", source, path)
        numel = 1
        for s in size:
            numel *= s
        dtype = np.float32 if st.dtype == "bfloat16" else st.dtype
        if numel == 0:
            return np.zeros(size, dtype=dtype)
        if numel > st.numel:
            raise CorruptCheckpointError(
                f"{source}: tensor {path} of size {_describe(size)} has {numel} elements but its "
                f"storage {st.key!r} holds {st.numel}: a tensor may not be larger than its "
                "storage (stride-0 or overlapping views are refused)"
            )
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= st.numel:
            raise CorruptCheckpointError(
                f"{source}: tensor {path} of size {_describe(size)}, stride {_describe(stride)} "
                f"at offset {offset} overruns storage {st.key!r} of {st.numel} elements"
            )
        base = st.array(source)
        if last >= base.size:  # the data read is shorter than declared (checked on read too)
            raise CorruptCheckpointError(
                f"{source}: tensor {path} overruns storage {st.key!r} of {base.size} elements"
            )
        ctx.budget.charge(numel * base.itemsize, f"tensor {path}")
        view = np.lib.stride_tricks.as_strided(
            base[offset:], shape=size, strides=tuple(s * base.itemsize for s in stride)
        )
        return np.array(view, copy=True)


def _bytes_to_array(raw, dtype: Any, numel: int, what: str) -> np.ndarray:
    """View raw little-endian bytes as a 1-D array (no copy when the platform is little-endian)."""
    itemsize = _itemsize(dtype)
    if len(raw) != numel * itemsize:
        raise CorruptCheckpointError(
            f"{what}: expected {numel * itemsize} bytes for {numel} elements, found {len(raw)}"
        )
    if dtype == "bfloat16":
        bits = np.frombuffer(raw, dtype="<u2", count=numel).astype(np.uint32) << 16
        return bits.view(np.float32)
    dt = np.dtype(dtype)
    return np.frombuffer(raw, dtype=dt.newbyteorder("<"), count=numel).astype(
        dt.newbyteorder("="), copy=False
    )


# --------------------------------------------------------------------------------------------
# NumPy stand-ins: pickled dtypes and arrays are checked before numpy sees their state.
# --------------------------------------------------------------------------------------------
_PLAIN_KINDS = "biufc"


def _plain_dtype(dt: Any, what: str) -> np.dtype:
    if isinstance(dt, _PickledDtype):
        dt = dt.dtype
    if (
        not isinstance(dt, np.dtype)
        or dt.kind not in _PLAIN_KINDS
        or dt.hasobject
        or dt.fields is not None
        or dt.subdtype is not None
    ):
        raise UnsafePickleError(
            f"{_ctx().source}: {what}: only plain numeric dtypes are accepted, not {_describe(dt)}"
        )
    return dt


class _PickledDtype:
    """Stand-in for ``numpy.dtype``: a plain numeric dtype; its pickled state may only set the
    byte order (numpy's own ``__setstate__`` would accept fields, object members...)."""

    def __init__(self, spec: Any, align: Any = False, copy: Any = True):
        if not isinstance(spec, str) or not re.fullmatch(r"[<>|=]?[biufc]\d{1,2}", spec):
            raise UnsafePickleError(
                f"{_ctx().source}: numpy dtype {_describe(spec)} is not a plain numeric dtype"
            )
        self.dtype = _plain_dtype(np.dtype(spec), "numpy dtype")

    def __setstate__(self, state: Any) -> None:
        if (
            not isinstance(state, tuple)
            or len(state) not in (8, 9)
            or any(x is not None for x in state[2:5])
        ):
            raise UnsafePickleError(
                f"{_ctx().source}: a pickled numpy dtype state sets fields "
                "or a subarray; only plain numeric dtypes are accepted"
            )
        order = state[1]
        if order not in ("<", ">", "|", "="):
            raise CorruptCheckpointError(
                f"{_ctx().source}: numpy dtype byte order {_describe(order)}"
            )
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)


class _GuardedArray(np.ndarray):
    """What ``numpy.core.multiarray._reconstruct`` returns here: an empty array whose
    ``__setstate__`` checks shape, dtype and data length, and charges the budget, before numpy
    copies the data in. Plain ndarrays replace these after unpickling."""

    def __setstate__(self, state: Any) -> None:
        ctx = _ctx()
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise CorruptCheckpointError(f"{ctx.source}: numpy array state is {_describe(state)}")
        shape, dtype, fortran, raw = state[-4:]
        dtype = _plain_dtype(dtype, "numpy array")
        if not isinstance(shape, tuple) or len(shape) > ctx.limits.max_dims:
            raise CorruptCheckpointError(f"{ctx.source}: numpy array shape {_describe(shape)}")
        dims = [_as_index(s, "a numpy array dimension", ctx.source, "(numpy array)") for s in shape]
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickleError(
                f"{ctx.source}: numpy array data is a {type(raw).__name__}, "
                "not bytes (object arrays are refused)"
            )
        numel = 1
        for d in dims:
            numel *= d
        if numel * dtype.itemsize != len(raw):
            raise CorruptCheckpointError(
                f"{ctx.source}: numpy array of shape {_describe(tuple(dims))} {dtype} needs "
                f"{numel * dtype.itemsize} bytes, the pickle holds {len(raw)}"
            )
        ctx.budget.charge(len(raw), f"a numpy array of shape {_describe(tuple(dims))}")
        # numpy also takes the 4-tuple (shape, dtype, is_fortran, data) its stub leaves out
        state = (tuple(dims), dtype, bool(fortran), raw)
        np.ndarray.__setstate__(self, state)  # pyright: ignore[reportArgumentType]


class _NumpyClass(_Sealed):
    """Marker for the global ``numpy.ndarray``: usable only as ``_reconstruct``'s class
    argument (calling ``numpy.ndarray(shape)`` from a pickle would allocate any size)."""


_NDARRAY = _NumpyClass()
