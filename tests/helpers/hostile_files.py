"""A corpus of hostile checkpoint files, generated on demand (no binary blob is committed).

Every ``make_*`` function writes one file (or a BigGAN directory) into ``out_dir`` and returns a
:class:`Case`: the path to load, the typed error it must end in, a regular expression its
one-line message must match (the key / offset it names), whether it is a resource bomb (its peak
memory is measured in a subprocess) and, for payloads, the marker file the payload would create
if it ever ran.

The files are assembled opcode by opcode (``op_*`` helpers), so that each one is exactly the
hostile structure it names: the NVIDIA ``.pkl`` path (plain pickle, storages embedded as legacy
``torch.save`` blobs), the rosinality / zip ``.pt`` path (``torch.save`` zip, written by a small
zip writer that can lie about sizes), the legacy ``.pt`` path and the BigGAN ``.bin`` path. Cases
that need a valid network (NaN weights, altered shapes, ``_init_kwargs`` lies, a ``module_src``
that would run code) are derived from the shared fixtures by :func:`nvidia_variant` /
:func:`rosinality_variant` (they need torch, a test-only dependency).

Run ``python tests/helpers/hostile_files.py DIR`` to write the whole torch-free corpus into DIR.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import struct
import sys
import types
import zlib
from collections.abc import Callable

from converters.errors import (
    CorruptCheckpointError,
    UnsafePickleError,
)

GiB = 1 << 30
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {
    "protocol_version": 1001,
    "little_endian": True,
    "type_sizes": {"short": 2, "int": 4, "long": 4},
}
# CRC-32 of 2**30 zero bytes (zlib.crc32(bytes(1 << 30)); checked by a slow test).
CRC32_OF_1GIB_ZEROS = 0x5B64C2B0


@dataclasses.dataclass
class Case:
    name: str
    path: str
    error: type
    match: str
    bomb: bool = False
    marker: str | None = None


# ---------------------------------------------------------------------------------------------
# Opcode assembler (protocol 2 opcodes; the pickle machine accepts them under any PROTO).
# ---------------------------------------------------------------------------------------------
PROTO2 = b"\x80\x02"
STOP = b"."
MARK = b"("
NONE = b"N"
FALSE = b"\x89"
TRUE = b"\x88"


def op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_stack_global(module: str, name: str) -> bytes:
    return op_str(module) + op_str(name) + b"\x93"


def op_str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def op_bytes(b: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(b)) + b


def op_int(n: int) -> bytes:
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if -(1 << 31) <= n < (1 << 31):
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def op_float(x: float) -> bytes:
    return b"G" + struct.pack(">d", x)


def op_tuple(*items: bytes) -> bytes:
    return MARK + b"".join(items) + b"t"


def op_list(*items: bytes) -> bytes:
    return b"]" + (MARK + b"".join(items) + b"e" if items else b"")


def op_dict(**items: bytes) -> bytes:
    return op_dict_items([(op_str(k), v) for k, v in items.items()])


def op_dict_items(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"}" + (MARK + b"".join(k + v for k, v in pairs) + b"u" if pairs else b"")


def op_call(func: bytes, *args: bytes) -> bytes:
    return func + op_tuple(*args) + b"R"


def pickle_of(*body: bytes) -> bytes:
    return PROTO2 + b"".join(body) + STOP


def op_tensor(storage: bytes, size: tuple, stride: tuple, offset: int = 0) -> bytes:
    return op_call(
        op_global("torch._utils", "_rebuild_tensor_v2"),
        storage,
        op_int(offset),
        op_tuple(*map(op_int, size)),
        op_tuple(*map(op_int, stride)),
        FALSE,
        op_call(op_global("collections", "OrderedDict")),
    )


def op_persid_storage(key: str, numel: int, stype: str = "FloatStorage") -> bytes:
    """A ``torch.save`` storage reference (zip and legacy formats): BINPERSID of its id."""
    return (
        op_tuple(
            op_str("storage"), op_global("torch", stype), op_str(key), op_str("cpu"), op_int(numel)
        )
        + b"Q"
    )


def legacy_stream(root_pickle: bytes, storages: list[tuple[str, int, bytes]]) -> bytes:
    """A legacy (non-zip) ``torch.save`` stream: magic, protocol, sys-info, the object pickle,
    the storage keys, then ``int64 numel`` + raw bytes per storage (``numel`` as declared)."""
    out = [
        pickle.dumps(LEGACY_MAGIC, 2),
        pickle.dumps(1001, 2),
        pickle.dumps(SYS_INFO, 2),
        root_pickle,
        pickle.dumps([k for k, _, _ in storages], 2),
    ]
    for _, numel, data in storages:
        out += [struct.pack("<q", numel), data]
    return b"".join(out)


def legacy_storage_blob(
    numel: int, data: bytes, key: str = "0", header_numel: int | None = None
) -> bytes:
    """What ``torch.storage._load_from_bytes`` receives in an NVIDIA pickle: a legacy stream
    whose root is one storage."""
    root = pickle_of(op_persid_storage(key, numel))
    return legacy_stream(root, [(key, numel if header_numel is None else header_numel, data)])


def op_embedded_storage(numel: int, data: bytes, header_numel: int | None = None) -> bytes:
    return op_call(
        op_global("torch.storage", "_load_from_bytes"),
        op_bytes(legacy_storage_blob(numel, data, header_numel=header_numel)),
    )


def floats(n: int, value: float = 0.5) -> bytes:
    return struct.pack(f"<{n}f", *([value] * n))


def op_nvidia_snapshot(
    params: bytes,
    class_name: str = "Generator",
    module_src: str = "# placeholder",
    extra_state: bytes = b"",
) -> bytes:
    """``{'G_ema': _reconstruct_persistent_obj(meta)}`` with ``params`` as ``_parameters``."""
    state = op_dict_items([(op_str("_parameters"), params)]) if not extra_state else extra_state
    meta = op_dict(
        type=op_str("class"),
        version=op_int(6),
        module_src=op_str(module_src),
        class_name=op_str(class_name),
        state=state,
    )
    net = op_call(op_global("torch_utils.persistence", "_reconstruct_persistent_obj"), meta)
    return pickle_of(op_dict_items([(op_str("G_ema"), net)]))


# ---------------------------------------------------------------------------------------------
# A zip writer that can lie (declared sizes, CRCs) and store pre-compressed data.
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Member:
    name: str
    data: bytes  # the bytes stored in the archive (compressed if method == 8)
    file_size: int  # the declared uncompressed size
    crc: int
    method: int = 0  # 0 stored, 8 deflated


def stored(name: str, data: bytes) -> Member:
    return Member(name, data, len(data), zlib.crc32(data))


def write_zip(path: str, members: list[Member]) -> str:
    local, central, offset = [], [], 0
    for m in members:
        name = m.name.encode()
        head = (
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                20,
                0,
                m.method,
                0,
                0x21,
                m.crc,
                len(m.data),
                m.file_size,
                len(name),
                0,
            )
            + name
        )
        local.append(head + m.data)
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                m.method,
                0,
                0x21,
                m.crc,
                len(m.data),
                m.file_size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
        offset += len(head) + len(m.data)
    cd = b"".join(central)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(cd), offset, 0)
    with open(path, "wb") as f:
        f.write(b"".join(local) + cd + end)
    return path


def torch_zip(
    path: str,
    data_pkl: bytes,
    storages: dict[str, Member] | None = None,
    byteorder: Member | None = None,
) -> str:
    members = [
        stored("archive/data.pkl", data_pkl),
        byteorder or stored("archive/byteorder", b"little"),
    ]
    for key, m in (storages or {}).items():
        m.name = f"archive/data/{key}"
        members.append(m)
    members.append(stored("archive/version", b"3\n"))
    return write_zip(path, members)


def deflated_zeros(n_mib: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``n_mib`` MiB of zeros, built from one compressed MiB repeated
    (full flushes make the pieces independent), and its CRC (known for 1 GiB)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = CRC32_OF_1GIB_ZEROS if n_mib == 1024 else zlib.crc32(bytes(n_mib << 20))
    return piece * n_mib + end, crc


def _write(out_dir: str, name: str, data: bytes) -> str:
    path = os.path.join(out_dir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------------------------------------
# Payloads: a global that would run code. The marker exists only if the payload ran.
# ---------------------------------------------------------------------------------------------
def _marker(out_dir: str, name: str) -> str:
    return os.path.join(out_dir, f"PWNED-{name}")


def make_payload_os_system(out_dir: str) -> Case:
    marker = _marker(out_dir, "os_system")
    body = op_call(op_global("os", "system"), op_str(f"touch {marker}"))
    path = _write(
        out_dir, "payload_os_system.pkl", pickle_of(op_dict_items([(op_str("G_ema"), body)]))
    )
    return Case("payload_os_system", path, UnsafePickleError, r"os\.system", marker=marker)


def make_payload_posix_system_stack_global(out_dir: str) -> Case:
    marker = _marker(out_dir, "posix_system")
    body = op_stack_global("posix", "system") + op_tuple(op_str(f"touch {marker}")) + b"R"
    path = _write(out_dir, "payload_stack_global.pkl", pickle_of(body))
    return Case(
        "payload_posix_system_stack_global",
        path,
        UnsafePickleError,
        r"posix\.system",
        marker=marker,
    )


def make_payload_eval(out_dir: str) -> Case:
    marker = _marker(out_dir, "eval")
    code = f"open({marker!r}, 'w').close()"
    path = _write(
        out_dir, "payload_eval.pkl", pickle_of(op_call(op_global("builtins", "eval"), op_str(code)))
    )
    return Case("payload_eval", path, UnsafePickleError, r"builtins\.eval", marker=marker)


def make_payload_exec_inst(out_dir: str) -> Case:
    """Protocol-0 INST opcode calling builtins.exec."""
    marker = _marker(out_dir, "exec_inst")
    code = f"open({marker!r}, 'w').close()"
    path = _write(
        out_dir, "payload_exec_inst.pkl", PROTO2 + MARK + op_str(code) + b"ibuiltins\nexec\n" + STOP
    )
    return Case("payload_exec_inst", path, UnsafePickleError, r"builtins\.exec", marker=marker)


def make_payload_getattr_chain(out_dir: str) -> Case:
    """getattr(OrderedDict, '__class__') ... the classic escape from an allowlisted class."""
    marker = _marker(out_dir, "getattr")
    body = op_call(
        op_global("builtins", "getattr"),
        op_global("collections", "OrderedDict"),
        op_str("__class__"),
    )
    path = _write(out_dir, "payload_getattr.pkl", pickle_of(body))
    return Case(
        "payload_getattr_chain", path, UnsafePickleError, r"builtins\.getattr", marker=marker
    )


def make_payload_module_src_exec(out_dir: str) -> Case:
    """An NVIDIA persistent object whose module_src would create the marker if exec'd (the
    network is otherwise empty, so reading stops at the missing generator attributes)."""
    marker = _marker(out_dir, "module_src")
    src = f"open({marker!r}, 'w').close()\nimport os\nos.system('touch {marker}')\n"
    path = _write(
        out_dir, "payload_module_src.pkl", op_nvidia_snapshot(op_dict_items([]), module_src=src)
    )
    return Case(
        "payload_module_src_exec", path, CorruptCheckpointError, r"img_resolution", marker=marker
    )


def make_payload_zip_data_pkl(out_dir: str) -> Case:
    marker = _marker(out_dir, "zip")
    pkl = pickle_of(
        op_dict_items(
            [(op_str("g_ema"), op_call(op_global("subprocess", "call"), op_str(f"touch {marker}")))]
        )
    )
    path = torch_zip(os.path.join(out_dir, "payload.pt"), pkl)
    return Case("payload_zip_data_pkl", path, UnsafePickleError, r"subprocess\.call", marker=marker)


def make_payload_legacy_magic(out_dir: str) -> Case:
    """The first pickle of a legacy torch.save stream (the magic number) is a payload."""
    marker = _marker(out_dir, "legacy")
    first = pickle_of(op_call(op_global("os", "system"), op_str(f"touch {marker}")))
    path = _write(out_dir, "payload_legacy.pt", first + pickle.dumps(1001, 2))
    return Case("payload_legacy_magic", path, UnsafePickleError, r"os\.system", marker=marker)


def make_build_on_global(out_dir: str) -> Case:
    """BUILD on an allowlisted function: would rewrite its __defaults__ for the whole process."""
    body = (
        op_global("torch._utils", "_rebuild_tensor_v2")
        + op_tuple(NONE, op_dict(__defaults__=op_tuple(NONE)))
        + b"b"
    )
    path = _write(out_dir, "build_on_global.pkl", pickle_of(body))
    return Case("build_on_global", path, UnsafePickleError, r"state of a global")


def make_class_swap(out_dir: str) -> Case:
    """Slot state assigning __class__ on a Namespace stand-in (made as protocol 2 makes it)."""
    ns = op_global("argparse", "Namespace") + b")" + b"\x81"  # NEWOBJ
    body = ns + op_tuple(NONE, op_dict(__class__=op_global("collections", "OrderedDict"))) + b"b"
    path = _write(out_dir, "class_swap.pkl", pickle_of(body))
    return Case("class_swap", path, UnsafePickleError, r"slot state on a Namespace")


def make_dunder_state(out_dir: str) -> Case:
    """A plain state dict setting a dunder attribute on a Namespace stand-in."""
    ns = op_global("argparse", "Namespace") + b")" + b"\x81"
    body = ns + op_dict(__reduce_ex__=op_str("x")) + b"b"
    path = _write(out_dir, "dunder_state.pkl", pickle_of(body))
    return Case("dunder_state", path, UnsafePickleError, r"plain attribute names")


def make_numpy_object_dtype(out_dir: str) -> Case:
    body = op_call(op_global("numpy", "dtype"), op_str("O8"), FALSE, TRUE)
    path = _write(out_dir, "numpy_object_dtype.pkl", pickle_of(body))
    return Case("numpy_object_dtype", path, UnsafePickleError, r"numpy dtype")


def make_numpy_dtype_fields(out_dir: str) -> Case:
    """A float32 dtype whose pickled state adds an object field (numpy itself accepts it)."""
    dt = op_call(op_global("numpy", "dtype"), op_str("f4"), FALSE, TRUE)
    state = op_tuple(
        op_int(3),
        op_str("<"),
        NONE,
        op_tuple(op_str("a")),
        op_dict(
            a=op_tuple(op_call(op_global("numpy", "dtype"), op_str("f8"), FALSE, TRUE), op_int(0))
        ),
        op_int(4),
        op_int(1),
        op_int(0),
    )
    path = _write(out_dir, "numpy_dtype_fields.pkl", pickle_of(dt + state + b"b"))
    return Case("numpy_dtype_fields", path, UnsafePickleError, r"plain numeric dtype")


def make_numpy_ndarray_call(out_dir: str) -> Case:
    """numpy.ndarray((2**40,)) called directly: 1 TiB uninitialized."""
    body = op_call(op_global("numpy", "ndarray"), op_tuple(op_int(1 << 40)))
    path = _write(out_dir, "numpy_ndarray_call.pkl", pickle_of(body))
    return Case("numpy_ndarray_call", path, CorruptCheckpointError, r"corrupt pickle", bomb=True)


def make_numpy_array_bomb(out_dir: str) -> Case:
    """A numpy array pickle whose shape claims 2**38 float32 for 16 bytes of data."""
    arr = op_call(
        op_global("numpy.core.multiarray", "_reconstruct"),
        op_global("numpy", "ndarray"),
        op_tuple(op_int(0)),
        op_bytes(b"b"),
    )
    dt = op_call(op_global("numpy", "dtype"), op_str("f4"), FALSE, TRUE)
    state = op_tuple(op_int(1), op_tuple(op_int(1 << 38)), dt, FALSE, op_bytes(bytes(16)))
    path = _write(out_dir, "numpy_array_bomb.pkl", pickle_of(arr + state + b"b"))
    return Case(
        "numpy_array_bomb", path, CorruptCheckpointError, r"needs 1099511627776 bytes", bomb=True
    )


# ---------------------------------------------------------------------------------------------
# NVIDIA .pkl bombs (embedded legacy storages).
# ---------------------------------------------------------------------------------------------
def _nvidia_params(**tensors: bytes) -> bytes:
    return op_dict_items([(op_str(k), v) for k, v in tensors.items()])


def make_pkl_stride0(out_dir: str) -> Case:
    t = op_tensor(op_embedded_storage(1, floats(1)), (1 << 20, 1 << 20), (0, 0))
    path = _write(out_dir, "stride0.pkl", op_nvidia_snapshot(_nvidia_params(weight=t)))
    return Case(
        "pkl_stride0",
        path,
        CorruptCheckpointError,
        r"_parameters/weight.*larger than its storage",
        bomb=True,
    )


def make_pkl_overlap(out_dir: str) -> Case:
    t = op_tensor(op_embedded_storage(100, floats(100)), (1000, 1000), (1, 1))
    path = _write(out_dir, "overlap.pkl", op_nvidia_snapshot(_nvidia_params(weight=t)))
    return Case(
        "pkl_overlap", path, CorruptCheckpointError, r"_parameters/weight.*larger than", bomb=True
    )


def make_pkl_tensor_4tib(out_dir: str) -> Case:
    t = op_tensor(op_embedded_storage(4, floats(4)), (1 << 40,), (1,))
    path = _write(out_dir, "tensor_4tib.pkl", op_nvidia_snapshot(_nvidia_params(weight=t)))
    return Case(
        "pkl_tensor_4tib",
        path,
        CorruptCheckpointError,
        r"_parameters/weight.*1099511627776 elements",
        bomb=True,
    )


def make_pkl_storage_2e39(out_dir: str) -> Case:
    """An embedded storage blob declaring 2**39 float32 (2 TiB) with 16 bytes behind it."""
    t = op_tensor(op_embedded_storage(1 << 39, floats(4)), (4,), (1,))
    path = _write(out_dir, "storage_2e39.pkl", op_nvidia_snapshot(_nvidia_params(weight=t)))
    return Case(
        "pkl_storage_2e39",
        path,
        CorruptCheckpointError,
        r"storage '0' declares 549755813888 elements",
        bomb=True,
    )


def make_pkl_blob_memo_reuse(out_dir: str) -> Case:
    """One 256 KiB storage blob, memoized once and parsed again 1000 times as new tensors (each
    parse and each tensor copy is charged)."""
    blob = legacy_storage_blob(1 << 16, floats(1 << 16))
    first = op_bytes(blob) + b"q\x01"  # BINPUT 1
    ld = op_global("torch.storage", "_load_from_bytes")
    items = [op_tensor(ld + op_tuple(first) + b"R", (1 << 16,), (1,))]
    items += [op_tensor(ld + op_tuple(b"h\x01") + b"R", (1 << 16,), (1,)) for _ in range(1000)]
    path = _write(out_dir, "blob_memo_reuse.pkl", pickle_of(op_list(*items)))
    return Case(
        "pkl_blob_memo_reuse",
        path,
        CorruptCheckpointError,
        r"needs .* more than reading",
        bomb=True,
    )


def make_pkl_tensor_reuse(out_dir: str) -> Case:
    """One 1 MiB storage viewed by 1000 tensors (each copy is charged: 1 GiB in all)."""
    st = op_embedded_storage(1 << 18, floats(1 << 18)) + b"q\x01"
    items = [op_tensor(st, (1 << 18,), (1,))]
    items += [op_tensor(b"h\x01", (1 << 18,), (1,)) for _ in range(1000)]
    path = _write(out_dir, "tensor_reuse.pkl", pickle_of(op_list(*items)))
    return Case(
        "pkl_tensor_reuse", path, CorruptCheckpointError, r"tensor \d+ needs 1 MiB", bomb=True
    )


def make_pkl_deep_list(out_dir: str, depth: int = 300_000) -> Case:
    path = _write(out_dir, "deep_list.pkl", PROTO2 + MARK * depth + b"l" * depth + STOP)
    return Case(
        "pkl_deep_list", path, CorruptCheckpointError, r"nested more than \d+ deep", bomb=True
    )


def make_pkl_deep_tuple_key(out_dir: str, depth: int = 300_000) -> Case:
    """A 300,000-deep tuple used as a dict key: hashing it would crash CPython (SIGSEGV)."""
    tup = b")" + b"\x85" * depth
    path = _write(out_dir, "deep_tuple.pkl", pickle_of(b"}" + tup + op_int(1) + b"s"))
    return Case(
        "pkl_deep_tuple_key", path, CorruptCheckpointError, r"nested more than \d+ deep", bomb=True
    )


def make_pkl_deep_memo_lists(out_dir: str, depth: int = 10_000) -> Case:
    """Deep nesting that the stack never shows: each list is appended to the previous one
    fetched back from the memo (depth grows while the stack stays 2 deep). The pre-scan cannot
    see it; the walk after unpickling refuses it. (300,000 levels exceed the object budget.)"""
    body = [b"]", b"r" + struct.pack("<I", 0)]  # L0, memo 0
    for k in range(1, depth):
        body += [b"j" + struct.pack("<I", k - 1), b"]", b"r" + struct.pack("<I", k), b"a", b"0"]
    path = _write(out_dir, "deep_memo_lists.pkl", pickle_of(*body))
    return Case(
        "pkl_deep_memo_lists", path, CorruptCheckpointError, r"nested more than \d+ deep", bomb=True
    )


def make_pkl_deep_dict(out_dir: str, depth: int = 5_000) -> Case:
    """{k: {k: {...}}} built with SETITEM, no MARKs."""
    body = (b"}" + op_str("k")) * depth + b"}" + b"s" * depth
    path = _write(out_dir, "deep_dict.pkl", pickle_of(body))
    return Case(
        "pkl_deep_dict", path, CorruptCheckpointError, r"nested more than \d+ deep", bomb=True
    )


def make_pkl_memo_index(out_dir: str) -> Case:
    """LONG_BINPUT 2**31 - 1: the C unpickler would grow its memo array to 32 GiB."""
    path = _write(
        out_dir, "memo_index.pkl", pickle_of(NONE + b"r" + struct.pack("<I", (1 << 31) - 1))
    )
    return Case(
        "pkl_memo_index", path, CorruptCheckpointError, r"memo of 2147483648 entries", bomb=True
    )


def make_pkl_dict_spam(out_dir: str, n: int = 200_000) -> Case:
    """200 kB of EMPTY_DICT opcodes: ~80 bytes of objects per byte of file."""
    path = _write(out_dir, "dict_spam.pkl", pickle_of(b"]" + MARK + b"}" * n + b"e"))
    return Case("pkl_dict_spam", path, CorruptCheckpointError, r"objects needs", bomb=True)


def make_pkl_binbytes8(out_dir: str) -> Case:
    path = _write(
        out_dir, "binbytes8.pkl", PROTO2 + b"\x8e" + struct.pack("<Q", 1 << 40) + b"x" * 64 + STOP
    )
    return Case("pkl_binbytes8", path, CorruptCheckpointError, r"payload declares 1 TiB", bomb=True)


def make_pkl_frame(out_dir: str) -> Case:
    path = _write(out_dir, "frame.pkl", b"\x80\x04\x95" + struct.pack("<Q", 1 << 62) + NONE + STOP)
    return Case("pkl_frame", path, CorruptCheckpointError, r"frame of", bomb=True)


def make_pkl_endless_line(out_dir: str) -> Case:
    """A GLOBAL whose module name never ends (2 MiB without a newline)."""
    path = _write(out_dir, "endless_line.pkl", PROTO2 + b"c" + b"a" * (2 << 20))
    return Case("pkl_endless_line", path, CorruptCheckpointError, r"without a newline", bomb=True)


def make_pkl_long4(out_dir: str) -> Case:
    path = _write(out_dir, "long4.pkl", PROTO2 + b"\x8b" + struct.pack("<i", (1 << 31) - 1) + STOP)
    return Case("pkl_long4", path, CorruptCheckpointError, r"payload declares", bomb=True)


# ---------------------------------------------------------------------------------------------
# rosinality / zip .pt bombs.
# ---------------------------------------------------------------------------------------------
def _state_dict_pkl(tensor: bytes, key: str = "style.1.weight") -> bytes:
    return pickle_of(op_dict_items([(op_str("g_ema"), op_dict_items([(op_str(key), tensor)]))]))


def make_zip_bomb(out_dir: str) -> Case:
    """A ~1 MB .pt whose storage member is 1 GiB of deflated zeros, consistently declared."""
    numel = GiB // 4
    data, crc = deflated_zeros(1024)
    pkl = _state_dict_pkl(op_tensor(op_persid_storage("0", numel), (numel,), (1,)))
    path = torch_zip(
        os.path.join(out_dir, "zip_bomb.pt"), pkl, {"0": Member("", data, GiB, crc, method=8)}
    )
    return Case(
        "zip_bomb",
        path,
        CorruptCheckpointError,
        r"storage '0' \('archive/data/0'\) needs 1 GiB",
        bomb=True,
    )


def make_zip_bomb_size_mismatch(out_dir: str) -> Case:
    """The pickle declares 16 floats; the member declares 1 GiB (deflated zeros)."""
    data, crc = deflated_zeros(1024)
    pkl = _state_dict_pkl(op_tensor(op_persid_storage("0", 16), (16,), (1,)))
    path = torch_zip(
        os.path.join(out_dir, "zip_bomb_mismatch.pt"),
        pkl,
        {"0": Member("", data, GiB, crc, method=8)},
    )
    return Case(
        "zip_bomb_size_mismatch",
        path,
        CorruptCheckpointError,
        r"archive/data/0.*1073741824 bytes in the archive but 64",
        bomb=True,
    )


def make_zip_bomb_lying_header(out_dir: str) -> Case:
    """Member declares 64 bytes (matching the pickle) but its deflate stream inflates to 1 GiB."""
    data, _ = deflated_zeros(1024)
    pkl = _state_dict_pkl(op_tensor(op_persid_storage("0", 16), (16,), (1,)))
    path = torch_zip(
        os.path.join(out_dir, "zip_bomb_lying.pt"),
        pkl,
        {"0": Member("", data, 64, zlib.crc32(bytes(64)) ^ 1, method=8)},
    )
    return Case(
        "zip_bomb_lying_header", path, CorruptCheckpointError, r"archive/data/0.*damaged", bomb=True
    )


def make_zip_data_pkl_bomb(out_dir: str) -> Case:
    """data.pkl itself is a 1 GiB deflate bomb."""
    data, crc = deflated_zeros(1024)
    members = [
        Member("archive/data.pkl", data, GiB, crc, method=8),
        stored("archive/version", b"3\n"),
    ]
    path = write_zip(os.path.join(out_dir, "zip_pkl_bomb.pt"), members)
    return Case(
        "zip_data_pkl_bomb", path, CorruptCheckpointError, r"data\.pkl.*needs 1 GiB", bomb=True
    )


def make_zip_byteorder_bomb(out_dir: str) -> Case:
    data, crc = deflated_zeros(64)
    pkl = _state_dict_pkl(op_tensor(op_persid_storage("0", 4), (4,), (1,)))
    path = torch_zip(
        os.path.join(out_dir, "zip_byteorder_bomb.pt"),
        pkl,
        {"0": stored("", floats(4))},
        byteorder=Member("archive/byteorder", data, 64 << 20, crc, method=8),
    )
    return Case("zip_byteorder_bomb", path, CorruptCheckpointError, r"byteorder", bomb=True)


def make_zip_stride0(out_dir: str) -> Case:
    """The issue's 646-byte file: a 1-element storage viewed as 2**20 x 2**20."""
    pkl = _state_dict_pkl(op_tensor(op_persid_storage("0", 1), (1 << 20, 1 << 20), (0, 0)))
    path = torch_zip(os.path.join(out_dir, "zip_stride0.pt"), pkl, {"0": stored("", floats(1))})
    return Case(
        "zip_stride0",
        path,
        CorruptCheckpointError,
        r"g_ema/style\.1\.weight.*larger than its storage",
        bomb=True,
    )


def make_zip_tensor_4tib(out_dir: str) -> Case:
    """A storage declaring 2**40 float32 (4 TiB) behind a 16-byte member."""
    pkl = _state_dict_pkl(op_tensor(op_persid_storage("0", 1 << 40), (1 << 40,), (1,)))
    path = torch_zip(os.path.join(out_dir, "zip_4tib.pt"), pkl, {"0": stored("", floats(4))})
    return Case(
        "zip_tensor_4tib",
        path,
        CorruptCheckpointError,
        r"archive/data/0.*16 bytes in the archive but 4398046511104",
        bomb=True,
    )


def make_zip_member_spam(out_dir: str, n: int = 50_000) -> Case:
    """50,000 empty members: the archive index alone would cost ~10x the file in ZipInfos."""
    pkl = _state_dict_pkl(op_tensor(op_persid_storage("0", 1), (1,), (1,)))
    members = [stored("archive/data.pkl", pkl), stored("archive/data/0", floats(1))]
    members += [stored(f"archive/x{k}", b"") for k in range(n)]
    path = write_zip(os.path.join(out_dir, "zip_spam.pt"), members)
    return Case(
        "zip_member_spam", path, CorruptCheckpointError, r"index of 50002 zip members", bomb=True
    )


def make_zip_missing_storage(out_dir: str) -> Case:
    pkl = _state_dict_pkl(op_tensor(op_persid_storage("7", 4), (4,), (1,)))
    path = torch_zip(os.path.join(out_dir, "zip_missing.pt"), pkl)
    return Case("zip_missing_storage", path, CorruptCheckpointError, r"archive/data/7.*missing")


def make_zip_deep(out_dir: str) -> Case:
    path = torch_zip(
        os.path.join(out_dir, "zip_deep.pt"), PROTO2 + MARK * 100_000 + b"l" * 100_000 + STOP
    )
    return Case("zip_deep", path, CorruptCheckpointError, r"data\.pkl.*nested more than", bomb=True)


# ---------------------------------------------------------------------------------------------
# Legacy .pt bombs.
# ---------------------------------------------------------------------------------------------
def make_legacy_storage_2e39(out_dir: str) -> Case:
    root = _state_dict_pkl(op_tensor(op_persid_storage("1", 1 << 39), (4,), (1,)))
    path = _write(out_dir, "legacy_2e39.pt", legacy_stream(root, [("1", 1 << 39, floats(4))]))
    return Case(
        "legacy_storage_2e39",
        path,
        CorruptCheckpointError,
        r"storage '1' declares 549755813888 elements",
        bomb=True,
    )


def make_legacy_header_mismatch(out_dir: str) -> Case:
    root = _state_dict_pkl(op_tensor(op_persid_storage("1", 4), (4,), (1,)))
    path = _write(out_dir, "legacy_mismatch.pt", legacy_stream(root, [("1", 1 << 39, floats(4))]))
    return Case(
        "legacy_header_mismatch",
        path,
        CorruptCheckpointError,
        r"storage '1' is declared with 4 elements but its data header says 549755813888",
        bomb=True,
    )


def make_legacy_deep_sysinfo(out_dir: str) -> Case:
    deep = PROTO2 + b")" + b"\x85" * 100_000 + STOP
    path = _write(
        out_dir, "legacy_deep.pt", pickle.dumps(LEGACY_MAGIC, 2) + pickle.dumps(1001, 2) + deep
    )
    return Case(
        "legacy_deep_sysinfo",
        path,
        CorruptCheckpointError,
        r"system info.*nested more than",
        bomb=True,
    )


# ---------------------------------------------------------------------------------------------
# BigGAN .bin (a directory with config.json + pytorch_model.bin).
# ---------------------------------------------------------------------------------------------
BIGGAN_CONFIG = (
    '{"output_dim": 32, "z_dim": 8, "class_embed_dim": 8, "channel_width": 8, '
    '"num_classes": 10, "layers": [[false, 16, 16], [true, 16, 8], [true, 8, 4], '
    '[false, 4, 2], [true, 2, 1]], "attention_layer_position": 3, "eps": 0.0001, '
    '"n_stats": 51}'
)


def _biggan_dir(out_dir: str, name: str, weights: bytes, config: str = BIGGAN_CONFIG) -> str:
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    _write(d, "pytorch_model.bin", weights)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(config)
    return d


def make_biggan_storage_2e39(out_dir: str) -> Case:
    key = "generator.gen_z.weight_orig"
    root = pickle_of(
        op_dict_items([(op_str(key), op_tensor(op_persid_storage("1", 1 << 39), (4,), (1,)))])
    )
    d = _biggan_dir(out_dir, "biggan_2e39", legacy_stream(root, [("1", 1 << 39, floats(4))]))
    return Case(
        "biggan_storage_2e39",
        d,
        CorruptCheckpointError,
        r"pytorch_model\.bin: storage '1' declares 549755813888",
        bomb=True,
    )


def make_biggan_stride0(out_dir: str) -> Case:
    key = "generator.gen_z.weight_orig"
    root = pickle_of(
        op_dict_items(
            [(op_str(key), op_tensor(op_persid_storage("1", 1), (1 << 20, 1 << 20), (0, 0)))]
        )
    )
    d = _biggan_dir(out_dir, "biggan_stride0", legacy_stream(root, [("1", 1, floats(1))]))
    return Case(
        "biggan_stride0",
        d,
        CorruptCheckpointError,
        r"generator\.gen_z\.weight_orig.*larger than its storage",
        bomb=True,
    )


def make_biggan_payload(out_dir: str) -> Case:
    marker = _marker(out_dir, "biggan")
    root = pickle_of(op_call(op_global("os", "system"), op_str(f"touch {marker}")))
    d = _biggan_dir(out_dir, "biggan_payload", legacy_stream(root, []))
    return Case("biggan_payload", d, UnsafePickleError, r"os\.system", marker=marker)


# ---------------------------------------------------------------------------------------------
# Truncations.
# ---------------------------------------------------------------------------------------------
def truncations(src: str, out_dir: str, fractions=(0.0005, 0.003, 0.02, 0.2, 0.5, 0.9, 0.999)):
    """Copies of ``src`` cut at several points (header, pickle, storage data, trailer)."""
    with open(src, "rb") as f:
        data = f.read()
    base, ext = os.path.splitext(os.path.basename(src))
    out = []
    for frac in fractions:
        n = max(1, int(len(data) * frac))
        out.append(_write(out_dir, f"{base}_cut{n}{ext}", data[:n]))
    out.append(_write(out_dir, f"{base}_cutlast{ext}", data[:-1]))
    return out


# ---------------------------------------------------------------------------------------------
# Variants of the fixtures through torch (NaN weights, altered shapes, _init_kwargs lies).
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _fake_modules():
    """``torch_utils.persistence`` and ``dnnlib.util`` stand-ins so that stand-in objects pickle
    under the names a real NVIDIA snapshot uses (jaxedit never calls them)."""
    saved = {
        k: sys.modules.get(k)
        for k in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
    }
    tu, tp = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")
    dn, du = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - never called
        raise AssertionError("the pickled reconstructor must never be called")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    tp._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    du.EasyDict = EasyDict
    sys.modules.update(
        {"torch_utils": tu, "torch_utils.persistence": tp, "dnnlib": dn, "dnnlib.util": du}
    )
    try:
        yield tp, EasyDict
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def nvidia_variant(
    src: str, path: str, edit: Callable[[dict], None], module_src: str | None = None
) -> str:
    """Re-pickle the NVIDIA fixture ``src`` after ``edit(networks)``.

    ``networks`` maps ``G_ema`` / ``G`` / ``D`` to nested dicts ``{"class_name", "state"}`` whose
    tensors are NumPy arrays; they are written back as persistent objects with torch tensors,
    pickled as the NVIDIA code pickles them.
    """
    import numpy as np
    import torch

    from converters import _pickle

    snap = _pickle.load_pickle(src)

    def to_plain(obj):
        if isinstance(obj, _pickle.PersistentObject):
            return {
                "__persistent__": True,
                "class_name": obj.class_name,
                "state": to_plain(obj.state),
            }
        if isinstance(obj, _pickle.EasyDict):
            return {"__easydict__": True, **{k: to_plain(v) for k, v in obj.items()}}
        if isinstance(obj, dict):
            return type(obj)((k, to_plain(v)) for k, v in obj.items())
        if isinstance(obj, list):
            return [to_plain(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(to_plain(v) for v in obj)
        return obj

    nets = {k: to_plain(v) for k, v in snap.items()}
    edit(nets)
    with _fake_modules() as (tp, EasyDict):

        class Persistent:
            def __init__(self, class_name, state):
                self.meta = {
                    "type": "class",
                    "version": 6,
                    "module_src": module_src or "# source removed",
                    "class_name": class_name,
                    "state": state,
                }

            def __reduce__(self):
                return (tp._reconstruct_persistent_obj, (self.meta,))

        def back(obj):
            if isinstance(obj, dict) and obj.get("__persistent__"):
                return Persistent(obj["class_name"], back(obj["state"]))
            if isinstance(obj, dict) and obj.get("__easydict__"):
                return EasyDict((k, back(v)) for k, v in obj.items() if k != "__easydict__")
            if isinstance(obj, dict):
                return type(obj)((k, back(v)) for k, v in obj.items())
            if isinstance(obj, list):
                return [back(v) for v in obj]
            if isinstance(obj, tuple):
                return tuple(back(v) for v in obj)
            if isinstance(obj, np.ndarray):
                return torch.from_numpy(np.array(obj))
            return obj

        with open(path, "wb") as f:
            pickle.dump({k: back(v) for k, v in nets.items()}, f, protocol=4)
    return path


def module_state(nets: dict, dotted: str, net: str = "G_ema") -> dict:
    """The state dict of module ``dotted`` ("" = the network, "synthesis.b8") of ``net``."""
    node = nets[net]
    for part in [p for p in dotted.split(".") if p]:
        node = node["state"]["_modules"][part]
    return node["state"]


def rosinality_variant(src: str, path: str, edit: Callable[[dict], None]) -> str:
    import torch

    obj = torch.load(src, map_location="cpu", weights_only=False)
    edit(obj)
    torch.save(obj, path)
    return path


# ---------------------------------------------------------------------------------------------
MAKERS: list[Callable[[str], Case]] = [
    v for k, v in sorted(globals().items()) if k.startswith("make_") and callable(v)
]


def make_all(out_dir: str) -> list[Case]:
    os.makedirs(out_dir, exist_ok=True)
    return [m(out_dir) for m in MAKERS]


if __name__ == "__main__":  # pragma: no cover - a convenience for inspecting the corpus
    for case in make_all(sys.argv[1] if len(sys.argv) > 1 else "hostile_corpus"):
        size = os.path.getsize(case.path) if os.path.isfile(case.path) else 0
        print(f"{case.name:32s} {size:>10,d} bytes  -> {case.error.__name__}")
