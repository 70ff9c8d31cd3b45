"""The allowlist: the callables a pickle may name, the base table, and the refusal text.

The ground floor that the pre-scan (which refuses a GLOBAL that is not allowlisted before
anything is unpickled) and the restricted unpickler (whose ``find_class`` looks globals up here)
both read. Nothing outside the table is ever imported or called.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any, cast

import numpy as np

from ..errors import CorruptCheckpointError, UnsafePickleError
from ._limits import _ctx, _describe
from ._standins import (
    _NDARRAY,
    EasyDict,
    Namespace,
    PersistentObject,
    TFNetwork,
    _GuardedArray,
    _PickledDtype,
    _plain_dtype,
    _StorageType,
    _TensorRef,
    _TorchDtype,
)

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


def _numpy_reconstruct(cls, shape=None, dtype_code=None):
    if cls is not _NDARRAY and cls is not np.ndarray:
        raise UnsafePickleError(
            f"{_ctx().source}: numpy _reconstruct of {_describe(cls)} is not accepted"
        )
    return np.ndarray.__new__(_GuardedArray, (0,), np.uint8)


def _numpy_scalar(dtype, data=None):
    dtype = _plain_dtype(dtype, "numpy scalar")
    if data is None:
        return dtype.type(0)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise CorruptCheckpointError(
            f"{_ctx().source}: numpy scalar of {dtype} holds {_describe(data)}"
        )
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *rest):
    return _TensorRef(storage, offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *rest):
    if not isinstance(data, _TensorRef):
        raise CorruptCheckpointError(
            f"{_ctx().source}: a parameter wraps {_describe(data)}, not a tensor"
        )
    return data


def _copyreg_reconstructor(cls, base, state):
    if cls not in (Namespace, EasyDict) or base not in (object, dict):
        raise UnsafePickleError(f"copyreg._reconstructor of {_describe(cls)} is not accepted")
    return cast(Any, cls).__new__(cls)  # pyright cannot call __new__ on the type union


def _codecs_encode(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: latin-1 only (other codecs
    can decompress), charged against the budget (a memoized string may be encoded many times)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(
            f"{_ctx().source}: _codecs.encode is accepted only for latin-1 "
            "text (bytes in protocol-2 pickles)"
        )
    _ctx().budget.charge(33 + len(text), "bytes decoded from a protocol-2 string")
    return text.encode("latin1")


def _torch_size(*args):
    if not args:
        return ()
    if not isinstance(args[0], (tuple, list)):
        raise CorruptCheckpointError(f"torch.Size of {_describe(args[0])}")
    return tuple(args[0])


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
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "dtype"): _PickledDtype,
    ("numpy", "ndarray"): _NDARRAY,
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
_BASE_ALLOW.update({("torch", k): _TorchDtype(k, v) for k, v in _TORCH_DTYPES.items()})


_KNOWN_UNSUPPORTED: dict[tuple[str, str], str] = {}


def _refusal(source: str, module: str, name: str) -> str:
    return (
        f"{source}: refusing to load global '{module[:100]}.{name[:100]}': it is not on the "
        "allowlist of checkpoint types, so nothing in this file was executed"
    )


def _allow(extra_allow: Mapping[tuple[str, str], Any] | None) -> dict:
    allow = dict(_BASE_ALLOW)
    if extra_allow:
        allow.update(extra_allow)
    return allow
