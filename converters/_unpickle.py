"""Restricted, torch-free, resource-bounded readers for pickles and ``torch.save`` files.

Nothing here imports torch or executes code taken from a file. Every global a pickle asks for is
looked up in an explicit allowlist; anything else raises :class:`UnsafePickleError` before it is
called. Tensors come back as NumPy arrays (copied out of their storages).

Every read is bounded **before** anything is allocated (see :class:`Limits`):

* each pickle is pre-scanned opcode by opcode (:mod:`pickletools`, nothing is built) before the
  real unpickler runs: declared lengths must fit in the bytes that remain, containers may not
  nest deeper than ``max_depth`` (deep tuples would crash CPython's hash), memo indices and the
  estimated memory of the objects the pickle builds are charged against the file's budget;
* storages are charged against the budget from their declared sizes before they are read; the
  declared size must fit in the rest of the file (legacy and embedded storages) or equal the zip
  member's declared size, which is read with a bounded read (a zip bomb is never inflated);
* a tensor may not have more elements than its storage (stride-0 / overlapping views cannot make
  a small file expand), and its copy is charged against the budget before it is made;
* after unpickling, an iterative walk (no recursion) bounds the nesting depth again (memo tricks
  can hide it from the pre-scan) and refuses reference cycles.

The budget of a file is ``max_expansion * file size + slack_bytes``: a hostile file costs a small
multiple of its own size, whatever it declares. Each violation is a
:class:`CorruptCheckpointError` naming the file and the key (or byte offset).

Formats handled:

* ``torch.save`` zip archives (torch >= 1.6): ``<prefix>/data.pkl`` plus ``<prefix>/data/<key>``
  raw storages;
* legacy (non-zip) ``torch.save`` files: magic number, protocol, sys-info, the object pickle,
  the storage-key list, then ``int64 numel`` + raw bytes for each storage;
* plain pickles whose storages are embedded as legacy blobs through
  ``torch.storage._load_from_bytes`` (NVIDIA ``torch_utils.persistence`` snapshots), and plain
  pickles of NumPy arrays (``numpy.core.multiarray._reconstruct``).

Readers of other pickle formats reuse this machinery: pass their stand-in classes as
``extra_allow`` to :func:`load_pickle` / :func:`load_torch_file` and every limit applies.
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import os
import pickle
import re
import struct
import zipfile
import zlib
try:  # optional in some Python builds
    from lzma import LZMAError as _LZMAError
except ImportError:  # pragma: no cover
    _LZMAError = OSError
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
# Limits and the per-file budget.
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits for reading one checkpoint file; all are checked before allocating.

    Attributes:
      max_expansion: bytes of arrays and unpickled objects allowed per byte of the file
        (storages and the tensors copied out of them both count, so a genuine uncompressed
        checkpoint needs about 2).
      slack_bytes: a fixed allowance on top, so that tiny files are not held to a few bytes.
      max_depth: the deepest nesting of containers a pickle may build.
      max_dims: the most dimensions a tensor or array may have.
    """

    max_expansion: float = 4.0
    slack_bytes: int = 1 << 20
    max_depth: int = 256
    max_dims: int = 32


DEFAULT_LIMITS = Limits()


def _fmt_bytes(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _describe(v: Any, limit: int = 60) -> str:
    """A short, safe description of an untrusted value (no huge reprs, no int->str blowups)."""
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, int):
        return repr(v) if v.bit_length() <= 128 else f"<{v.bit_length()}-bit integer>"
    if isinstance(v, (str, bytes)):
        r = repr(v[:limit])
        return r + ("..." if len(v) > limit else "")
    if isinstance(v, (float, np.generic)):
        return repr(v)
    if isinstance(v, (tuple, list)) and len(v) <= 8 and all(
            isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in v):
        inner = ", ".join(_describe(int(x)) for x in v)
        if isinstance(v, list):
            return f"[{inner}]"
        return f"({inner}{',' if len(v) == 1 else ''})"
    return f"a {type(v).__name__}"


class _Budget:
    """Bytes a read may still allocate: ``max_expansion * file size + slack``."""

    def __init__(self, source: str, file_size: int, limits: Limits):
        self.source, self.file_size, self.limits = source, int(file_size), limits
        self.limit = int(limits.max_expansion * self.file_size) + int(limits.slack_bytes)
        self.used = 0

    def charge(self, nbytes: int, what: str) -> None:
        if nbytes < 0 or self.used + nbytes > self.limit:
            after = f" (after {_fmt_bytes(self.used)} already)" if self.used else ""
            raise CorruptCheckpointError(
                f"{self.source}: {what} needs {_fmt_bytes(nbytes)}{after}, more than reading this "
                f"{_fmt_bytes(self.file_size)} file may take ({_fmt_bytes(self.limit)}: "
                f"{self.limits.max_expansion:g}x its size + "
                f"{_fmt_bytes(self.limits.slack_bytes)}); the file is corrupt or hostile, and "
                "this was refused before allocating it")
        self.used += nbytes


@dataclasses.dataclass
class _Ctx:
    source: str
    budget: _Budget
    limits: Limits


_CURRENT: contextvars.ContextVar[_Ctx | None] = contextvars.ContextVar("jaxedit_unpickle_ctx",
                                                                       default=None)


def _ctx() -> _Ctx:
    ctx = _CURRENT.get()
    if ctx is None:  # pragma: no cover - only reachable by calling a stand-in by hand
        raise CorruptCheckpointError("restricted unpickler stand-in used outside a load")
    return ctx


# --------------------------------------------------------------------------------------------
# Bounded input streams (what the pre-scan and the C unpickler read from).
# --------------------------------------------------------------------------------------------
class _FileStream:
    """A binary file that never reads past its end: a declared length larger than what is left
    gets a short read (so the caller sees a truncation), never a huge allocation."""

    copies = True  # read_view allocates what it returns

    def __init__(self, f, end: int):
        self._f, self._end, self._pos = f, int(end), f.tell()

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int) -> None:
        self._pos = self._f.seek(pos)

    def remaining(self) -> int:
        return max(0, self._end - self._pos)

    def read(self, n: int = -1) -> bytes:
        r = self._end - self._pos
        data = self._f.read(r if n is None or n < 0 or n > r else n)
        self._pos += len(data)
        return data

    read_view = read

    def readinto(self, b) -> int:
        mv = memoryview(b).cast("B")
        r = self._end - self._pos
        got = self._f.readinto(mv[:max(r, 0)] if len(mv) > r else mv) or 0
        self._pos += got
        return got

    def readline(self, limit: int = -1) -> bytes:
        r = self._end - self._pos
        data = self._f.readline(r if limit is None or limit < 0 or limit > r else limit)
        self._pos += len(data)
        return data

    def peek(self, n: int = 1) -> bytes:
        r = self._end - self._pos
        if r <= 0:
            return b""
        return self._f.peek(min(max(n, 1), r))[:r]


class _MemStream:
    """The same interface over bytes in memory; ``read_view`` slices without copying."""

    copies = False  # read_view is a view of bytes the budget already paid for

    def __init__(self, data: bytes | bytearray):
        self._data = data
        self._mv = memoryview(data).cast("B")
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int) -> None:
        self._pos = int(pos)

    def remaining(self) -> int:
        return max(0, len(self._mv) - self._pos)

    def read_view(self, n: int):
        n = self.remaining() if n is None or n < 0 else min(n, self.remaining())
        out = self._mv[self._pos:self._pos + n]
        self._pos += n
        return out

    def read(self, n: int = -1) -> bytes:
        return bytes(self.read_view(n))

    def readinto(self, b) -> int:
        mv = memoryview(b).cast("B")
        chunk = self.read_view(len(mv))
        mv[:len(chunk)] = chunk
        return len(chunk)

    def readline(self, limit: int = -1) -> bytes:
        end = self._data.find(b"\n", self._pos)
        end = len(self._mv) if end < 0 else end + 1
        if limit is not None and limit >= 0:
            end = min(end, self._pos + limit)
        return self.read(end - self._pos)

    def peek(self, n: int = 1) -> bytes:
        return bytes(self._mv[self._pos:self._pos + max(n, 1)])


# --------------------------------------------------------------------------------------------
# Pre-scan: simulate the pickle machine on opcodes only (no object is built, nothing is called).
# --------------------------------------------------------------------------------------------
class _Cell:
    """What the pre-scan knows of one stack item: nesting depth, item count, tuple children,
    and whether it is a global (a class or function of the allowlist, shared by every load)."""

    __slots__ = ("depth", "n", "kids", "is_global")

    def __init__(self, depth: int = 1, n: int = 0, kids: list | None = None,
                 is_global: bool = False):
        self.depth, self.n, self.kids, self.is_global = depth, n, kids, is_global


_ATOM = _Cell(0)
_MARK = object()

# Opcodes by byte: (name, how the argument is encoded). The argument kinds:
#   None: no argument; "u1"/"u2"/"u4"/"i4"/"u8"/"f8": fixed little-endian; "line": up to a newline;
#   "line2": two lines (GLOBAL, INST); "len1"/"len4s"/"len4u"/"len8u": a length, then that many
#   payload bytes (skipped by the pre-scan, never read into memory).
# tests/test_hostile.py checks this table against pickletools.opcodes.
_OPCODES: dict[int, tuple[str, str | None]] = {ord(k) if isinstance(k, str) else k: v for k, v in {
    "(": ("MARK", None), ".": ("STOP", None), "0": ("POP", None), "1": ("POP_MARK", None),
    "2": ("DUP", None), "F": ("FLOAT", "line"), "I": ("INT", "line"), "J": ("BININT", "i4"),
    "K": ("BININT1", "u1"), "L": ("LONG", "line"), "M": ("BININT2", "u2"), "N": ("NONE", None),
    "P": ("PERSID", "line"), "Q": ("BINPERSID", None), "R": ("REDUCE", None),
    "S": ("STRING", "line"), "T": ("BINSTRING", "len4s"), "U": ("SHORT_BINSTRING", "len1"),
    "V": ("UNICODE", "line"), "X": ("BINUNICODE", "len4u"), "a": ("APPEND", None),
    "b": ("BUILD", None), "c": ("GLOBAL", "line2"), "d": ("DICT", None),
    "}": ("EMPTY_DICT", None), "e": ("APPENDS", None), "g": ("GET", "line"),
    "h": ("BINGET", "u1"), "i": ("INST", "line2"), "j": ("LONG_BINGET", "u4"),
    "l": ("LIST", None), "]": ("EMPTY_LIST", None), "o": ("OBJ", None), "p": ("PUT", "line"),
    "q": ("BINPUT", "u1"), "r": ("LONG_BINPUT", "u4"), "s": ("SETITEM", None),
    "t": ("TUPLE", None), ")": ("EMPTY_TUPLE", None), "u": ("SETITEMS", None),
    "G": ("BINFLOAT", "f8"), "B": ("BINBYTES", "len4u"), "C": ("SHORT_BINBYTES", "len1"),
    0x80: ("PROTO", "u1"), 0x81: ("NEWOBJ", None), 0x82: ("EXT1", "u1"), 0x83: ("EXT2", "u2"),
    0x84: ("EXT4", "i4"), 0x85: ("TUPLE1", None), 0x86: ("TUPLE2", None),
    0x87: ("TUPLE3", None), 0x88: ("NEWTRUE", None), 0x89: ("NEWFALSE", None),
    0x8A: ("LONG1", "len1"), 0x8B: ("LONG4", "len4s"), 0x8C: ("SHORT_BINUNICODE", "len1"),
    0x8D: ("BINUNICODE8", "len8u"), 0x8E: ("BINBYTES8", "len8u"), 0x8F: ("EMPTY_SET", None),
    0x90: ("ADDITEMS", None), 0x91: ("FROZENSET", None), 0x92: ("NEWOBJ_EX", None),
    0x93: ("STACK_GLOBAL", None), 0x94: ("MEMOIZE", None), 0x95: ("FRAME", "u8"),
    0x96: ("BYTEARRAY8", "len8u"), 0x97: ("NEXT_BUFFER", None), 0x98: ("READONLY_BUFFER", None),
}.items()}
_FIXED = {"u1": struct.Struct("<B"), "u2": struct.Struct("<H"), "u4": struct.Struct("<I"),
          "i4": struct.Struct("<i"), "u8": struct.Struct("<Q"), "f8": struct.Struct("<d")}
_LENGTHS = {"len1": _FIXED["u1"], "len4s": _FIXED["i4"], "len4u": _FIXED["u4"],
            "len8u": _FIXED["u8"]}

# Estimated CPython sizes (bytes) of what the unpickler creates; every push also costs a slot.
_SLOT = 16
_PAYLOAD_BASE = {"BINSTRING": 49, "SHORT_BINSTRING": 49, "BINUNICODE": 49,
                 "SHORT_BINUNICODE": 49, "BINUNICODE8": 49, "BINBYTES": 33,
                 "SHORT_BINBYTES": 33, "BINBYTES8": 33, "BYTEARRAY8": 57, "LONG1": 32,
                 "LONG4": 32}  # + the payload length (UTF-8 length bounds a str's own size)
_LINE_SCALARS = {"INT": 32, "LONG": 32, "FLOAT": 24, "STRING": 49, "PERSID": 49}
_FIXED_SCALARS = {"BININT": 32, "BININT1": 0, "BININT2": 32, "BINFLOAT": 24, "NONE": 0,
                  "NEWTRUE": 0, "NEWFALSE": 0}
_EMPTY = {"EMPTY_LIST": 56, "EMPTY_DICT": 64, "EMPTY_SET": 216, "EMPTY_TUPLE": 0}
_FROM_MARK = {"TUPLE": (40, 8), "LIST": (56, 8), "DICT": (64, 24), "FROZENSET": (216, 40)}
_ADD_MARK = {"APPENDS": 8, "SETITEMS": 24, "ADDITEMS": 40}
_OBJECT = 128          # a REDUCE / NEWOBJ / INST / OBJ result (a stand-in with a __dict__)
_COPY_PER_ITEM = 48    # what a constructor copying a container costs per item (OrderedDict(...))
_CHUNK = 1 << 16
_MAX_LINE = 1 << 20    # text arguments (GLOBAL names, protocol-0 numbers) are short


def _int_or_none(text: bytes) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _prescan(stream, ctx: _Ctx, allow: Mapping[tuple[str, str], Any], what: str) -> None:
    """Walk the opcodes of the pickle at the stream's position; seek back to it afterwards.

    Simulates the pickle machine's stack on opcodes only: nothing is built, nothing is called,
    payloads (bytes, strings) are skipped without being read. Raises CorruptCheckpointError for
    truncation, a length past the end of the data, nesting deeper than ``limits.max_depth``, an
    unknown memo key, memo indices or object counts beyond the budget, and UnsafePickleError for
    a GLOBAL that is not allowlisted or a BUILD on a global (before anything is unpickled).
    """
    source, max_depth = ctx.source, ctx.limits.max_depth
    start = stream.tell()
    buf, i, base = b"", 0, start  # buf[0] is at stream offset base
    stack: list = []
    marks: list[int] = []
    memo: dict[int, _Cell] = {}
    memo_cap = 0
    pending = 0
    pos = start

    def fail(msg: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{source}: {what}: {msg} (pickle byte {pos - start})")

    def truncated() -> CorruptCheckpointError:
        return fail("the data ends in the middle of the pickle (truncated)")

    def need(n: int) -> None:
        nonlocal buf, i, base
        if len(buf) - i >= n:
            return
        more = stream.read(max(_CHUNK, n - (len(buf) - i)))
        buf, base, i = buf[i:] + more, base + i, 0
        if len(buf) < n:
            raise truncated()

    def skip(n: int) -> None:
        nonlocal buf, i, base
        avail = len(buf) - i
        if n <= avail:
            i += n
            return
        rest = n - avail
        if rest > stream.remaining():
            raise fail(f"a payload declares {_fmt_bytes(n)} but only "
                       f"{_fmt_bytes(avail + stream.remaining())} of the data remain (truncated "
                       "or hostile)")
        stream.seek(stream.tell() + rest)
        buf, i, base = b"", 0, stream.tell()

    def line() -> bytes:
        nonlocal buf, i, base
        while True:
            j = buf.find(b"\n", i)
            if j >= 0:
                out = buf[i:j]
                i = j + 1
                return out
            if len(buf) - i > _MAX_LINE:
                raise fail(f"a text argument runs over {_fmt_bytes(_MAX_LINE)} without a newline")
            more = stream.read(_CHUNK)
            if not more:
                raise truncated()
            buf, base, i = buf[i:] + more, base + i, 0

    def deep(depth: int) -> None:
        if depth > max_depth:
            raise fail(f"containers nested more than {max_depth} deep; refusing to unpickle")

    def floor() -> int:
        return marks[-1] if marks else 0

    def pop_mark() -> list:
        if not marks:
            raise fail("an opcode needs a MARK but there is none")
        k = marks.pop()
        items = stack[k:]
        del stack[k:]
        return items

    def pop(n: int) -> list:
        if len(stack) - floor() < n:
            raise fail("the pickle stack underflows")
        items = stack[len(stack) - n:]
        del stack[len(stack) - n:]
        return items

    def target(name: str) -> _Cell:
        """The container / object below the popped items, which the opcode mutates."""
        if len(stack) <= floor():
            raise fail(f"{name} without a container")
        if stack[-1] is _ATOM:  # a scalar: the unpickler will fail; never mutate the shared cell
            stack[-1] = _Cell(0)
        return stack[-1]

    def maxdepth(items) -> int:
        return max((c.depth for c in items), default=0)

    def copy_cost(cell: _Cell) -> int:
        return _COPY_PER_ITEM * (cell.n + sum(k.n for k in cell.kids or ()))

    opcodes, fixed, lengths = _OPCODES, _FIXED, _LENGTHS
    payload_base, fixed_scalars, line_scalars = _PAYLOAD_BASE, _FIXED_SCALARS, _LINE_SCALARS
    while True:
        pos = base + i
        if i >= len(buf):
            need(1)
        entry = opcodes.get(buf[i])
        if entry is None:
            raise fail(f"unknown opcode byte 0x{buf[i]:02x} (not a pickle, or a damaged one)")
        i += 1
        name, kind = entry
        arg: Any = None
        if kind is not None:
            st = fixed.get(kind)
            if st is not None:
                if len(buf) - i < st.size:
                    need(st.size)
                (arg,) = st.unpack_from(buf, i)
                i += st.size
            elif kind in lengths:
                st = lengths[kind]
                if len(buf) - i < st.size:
                    need(st.size)
                (arg,) = st.unpack_from(buf, i)
                i += st.size
                if arg < 0:
                    raise fail(f"{name} declares a negative length {arg}")
                if arg <= len(buf) - i:
                    i += arg
                else:
                    skip(arg)
            elif kind == "line":
                arg = line()
            else:
                arg = (line(), line())
        # the most frequent opcodes first
        if name == "BINGET" or name == "LONG_BINGET" or name == "GET":
            cell = memo.get(arg if name != "GET" else _int_or_none(arg))
            if cell is None:
                raise fail(f"memo key {_describe(arg)} was never stored")
            stack.append(cell)
            pending += _SLOT
            continue
        if name == "MEMOIZE" or name == "BINPUT" or name == "LONG_BINPUT" or name == "PUT":
            if len(stack) <= (marks[-1] if marks else 0):
                raise fail("memoizing an empty stack")
            idx = len(memo) if name == "MEMOIZE" else (
                arg if name != "PUT" else _int_or_none(arg))
            if idx is None or idx < 0:
                raise fail(f"memo index {_describe(arg)} is not a valid index")
            if idx >= memo_cap:  # the C unpickler's memo is an array indexed by the key
                grown = max(2 * (idx + 1), 64)
                ctx.budget.charge(pending + 8 * (grown - memo_cap),
                                  f"{what}: a memo of {idx + 1} entries")
                pending, memo_cap = 0, grown
            memo[idx] = stack[-1]
            pending += 8
            continue
        cost = _SLOT
        if name in fixed_scalars:
            cost += fixed_scalars[name]
            stack.append(_ATOM)
        elif name in payload_base:
            cost += payload_base[name] + arg
            stack.append(_ATOM)
        elif name == "REDUCE" or name == "NEWOBJ" or name == "NEWOBJ_EX":
            args = pop(3 if name == "NEWOBJ_EX" else 2)[1:]
            cost += _OBJECT + sum(copy_cost(a) for a in args)
            cell = _Cell(max(1, maxdepth(args)),
                         sum(a.n + sum(k.n for k in a.kids or ()) for a in args))
            deep(cell.depth)
            stack.append(cell)
        elif name in _EMPTY:
            cost += _EMPTY[name]
            stack.append(_Cell(1, 0, [] if name == "EMPTY_TUPLE" else None))
        elif name == "MARK":
            marks.append(len(stack))
            deep(len(marks))
        elif name == "TUPLE1" or name == "TUPLE2" or name == "TUPLE3":
            items = pop(int(name[-1]))
            cell = _Cell(1 + maxdepth(items), len(items), items)
            deep(cell.depth)
            cost += 40 + 8 * len(items)
            stack.append(cell)
        elif name in _FROM_MARK:
            items = pop_mark()
            cell = _Cell(1 + maxdepth(items), len(items) // (2 if name == "DICT" else 1),
                         items if name == "TUPLE" else None)
            deep(cell.depth)
            head, per = _FROM_MARK[name]
            cost += head + per * len(items)
            stack.append(cell)
        elif name in _ADD_MARK:
            items = pop_mark()
            box = target(name)
            box.depth = max(box.depth, 1 + maxdepth(items))
            box.n += len(items) // (2 if name == "SETITEMS" else 1)
            deep(box.depth)
            cost += _ADD_MARK[name] * len(items)
        elif name == "APPEND" or name == "SETITEM":
            items = pop(1 if name == "APPEND" else 2)
            box = target(name)
            box.depth = max(box.depth, 1 + maxdepth(items))
            box.n += 1
            deep(box.depth)
            cost += 8 if name == "APPEND" else 24
        elif name in line_scalars:
            cost += line_scalars[name] + len(arg)
            stack.append(_Cell(1) if name == "PERSID" else _ATOM)
        elif name == "UNICODE":
            cost += 49 + 4 * len(arg)
            stack.append(_ATOM)
        elif name == "POP":
            if marks and marks[-1] == len(stack):
                marks.pop()
            else:
                pop(1)
        elif name == "POP_MARK":
            pop_mark()
        elif name == "DUP":
            stack.extend(pop(1))
            stack.append(stack[-1])
        elif name == "GLOBAL" or name == "INST":
            module, gname = (x.decode("utf-8", "replace") for x in arg)
            if (module, gname) not in allow and (module, gname) not in _KNOWN_UNSUPPORTED:
                raise UnsafePickleError(_refusal(source, module, gname))
            if name == "GLOBAL":
                stack.append(_Cell(0, is_global=True))
            else:
                items = pop_mark()
                cell = _Cell(1 + maxdepth(items), len(items))
                deep(cell.depth)
                cost += _OBJECT + _COPY_PER_ITEM * len(items)
                stack.append(cell)
        elif name == "STACK_GLOBAL":
            pop(2)
            stack.append(_Cell(0, is_global=True))
        elif name == "EXT1" or name == "EXT2" or name == "EXT4":
            stack.append(_Cell(0, is_global=True))
        elif name == "OBJ":
            items = pop_mark()
            cell = _Cell(1 + maxdepth(items), len(items))
            deep(cell.depth)
            cost += _OBJECT + _COPY_PER_ITEM * len(items)
            stack.append(cell)
        elif name == "BUILD":
            (state,) = pop(1)
            obj = target("BUILD")
            if obj.is_global:
                raise UnsafePickleError(f"{source}: {what}: the pickle sets the state of a "
                                        f"global class or function (byte {pos - start}); "
                                        "refused, nothing was executed")
            obj.depth = max(obj.depth, 1 + state.depth)
            obj.n += state.n
            deep(obj.depth)
            cost += copy_cost(state)
        elif name == "BINPERSID":
            pop(1)
            stack.append(_Cell(1))
        elif name == "FRAME":
            if arg > (len(buf) - i) + stream.remaining():
                raise fail(f"a frame of {_fmt_bytes(arg)} runs past the end of the data")
        elif name == "PROTO":
            if arg > pickle.HIGHEST_PROTOCOL:
                raise fail(f"unsupported pickle protocol {arg}")
        elif name == "STOP":
            break
        else:  # NEXT_BUFFER, READONLY_BUFFER
            raise fail("out-of-band buffers (pickle protocol 5) are not supported")
        pending += cost
        if pending > 1 << 16:
            ctx.budget.charge(pending, f"{what}: objects")
            pending = 0
    ctx.budget.charge(pending, f"{what}: objects")
    stream.seek(start)


def _first_line(e: BaseException, limit: int = 200) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:limit] + ("..." if len(text) > limit else "")


# --------------------------------------------------------------------------------------------
# Plain-data stand-ins for the objects a checkpoint pickles.
# --------------------------------------------------------------------------------------------
class _Record:
    """Base of the stand-ins a pickle may build: a BUILD may only set plain attributes (no
    dunder names, so no ``__class__`` swap), from a dict of string keys."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:
            state, slots = state
            if slots:
                raise UnsafePickleError(f"{_ctx().source}: slot state on a "
                                        f"{type(self).__name__} is refused")
        if state is None:
            return
        if not isinstance(state, dict) or any(
                not isinstance(k, str) or k.startswith("__") for k in state):
            raise UnsafePickleError(f"{_ctx().source}: the state of a {type(self).__name__} "
                                    f"must be a dict of plain attribute names, not "
                                    f"{_describe(state)}")
        self.__dict__.update(state)


class _Sealed:
    """Base of objects whose state a pickle may not set at all."""

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(f"{_ctx().source}: the pickle sets the state of a "
                                f"{type(self).__name__}; refused")


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
                f"persistent object metadata is not a class record: {type(meta).__name__}")
        name = meta.get("class_name")
        if not isinstance(name, str) or len(name) > 256:
            raise CorruptCheckpointError(
                f"persistent object class_name is {_describe(name)}, not a class name")
        state = meta.get("state")
        if state is None:
            state = {}
        if not isinstance(state, dict):
            raise CorruptCheckpointError(
                f"persistent object {name!r} has a state of type {type(state).__name__}, "
                "not a dict")
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
                f"TensorFlow network state is a {type(state).__name__}, not a dict")
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
                    f"{offset}) runs past its root storage {root.key!r} of {base.size} elements")
            return base[offset:offset + self.numel]
        if not isinstance(self.data, np.ndarray) or self.data.ndim != 1:
            raise CorruptCheckpointError(f"{source}: storage {self.key!r} was never written in "
                                         "the file")
        return self.data


def _as_index(v: Any, what: str, source: str, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise CorruptCheckpointError(f"{source}: tensor {path}: {what} is {_describe(v)}, not an "
                                     "integer")
    v = int(v)
    if not 0 <= v < 1 << 62:
        raise CorruptCheckpointError(f"{source}: tensor {path}: {what} {_describe(v)} is out of "
                                     "range")
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
                "from a storage")
        st = self.storage
        if not isinstance(self.size, (tuple, list)) or not isinstance(self.stride, (tuple, list)):
            raise CorruptCheckpointError(f"{source}: tensor {path}: size/stride are not tuples")
        if len(self.size) != len(self.stride) or len(self.size) > limits.max_dims:
            raise CorruptCheckpointError(
                f"{source}: tensor {path} has {len(self.size)} sizes and {len(self.stride)} "
                f"strides (at most {limits.max_dims} dimensions)")
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
                "storage (stride-0 or overlapping views are refused)")
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= st.numel:
            raise CorruptCheckpointError(
                f"{source}: tensor {path} of size {_describe(size)}, stride {_describe(stride)} "
                f"at offset {offset} overruns storage {st.key!r} of {st.numel} elements")
        base = st.array(source)
        if last >= base.size:  # the data read is shorter than declared (checked on read too)
            raise CorruptCheckpointError(
                f"{source}: tensor {path} overruns storage {st.key!r} of {base.size} elements")
        ctx.budget.charge(numel * base.itemsize, f"tensor {path}")
        view = np.lib.stride_tricks.as_strided(
            base[offset:], shape=size, strides=tuple(s * base.itemsize for s in stride))
        return np.array(view, copy=True)


def _bytes_to_array(raw, dtype: Any, numel: int, what: str) -> np.ndarray:
    """View raw little-endian bytes as a 1-D array (no copy when the platform is little-endian)."""
    itemsize = _itemsize(dtype)
    if len(raw) != numel * itemsize:
        raise CorruptCheckpointError(
            f"{what}: expected {numel * itemsize} bytes for {numel} elements, found {len(raw)}")
    if dtype == "bfloat16":
        bits = np.frombuffer(raw, dtype="<u2", count=numel).astype(np.uint32) << 16
        return bits.view(np.float32)
    dt = np.dtype(dtype)
    return np.frombuffer(raw, dtype=dt.newbyteorder("<"), count=numel).astype(
        dt.newbyteorder("="), copy=False)


# --------------------------------------------------------------------------------------------
# NumPy stand-ins: pickled dtypes and arrays are checked before numpy sees their state.
# --------------------------------------------------------------------------------------------
_PLAIN_KINDS = "biufc"


def _plain_dtype(dt: Any, what: str) -> np.dtype:
    if isinstance(dt, _PickledDtype):
        dt = dt.dtype
    if (not isinstance(dt, np.dtype) or dt.kind not in _PLAIN_KINDS or dt.hasobject
            or dt.fields is not None or dt.subdtype is not None):
        raise UnsafePickleError(f"{_ctx().source}: {what}: only plain numeric dtypes are "
                                f"accepted, not {_describe(dt)}")
    return dt


class _PickledDtype:
    """Stand-in for ``numpy.dtype``: a plain numeric dtype; its pickled state may only set the
    byte order (numpy's own ``__setstate__`` would accept fields, object members...)."""

    def __init__(self, spec: Any, align: Any = False, copy: Any = True):
        if not isinstance(spec, str) or not re.fullmatch(r"[<>|=]?[biufc]\d{1,2}", spec):
            raise UnsafePickleError(f"{_ctx().source}: numpy dtype {_describe(spec)} is not a "
                                    "plain numeric dtype")
        self.dtype = _plain_dtype(np.dtype(spec), "numpy dtype")

    def __setstate__(self, state: Any) -> None:
        if (not isinstance(state, tuple) or len(state) not in (8, 9)
                or any(x is not None for x in state[2:5])):
            raise UnsafePickleError(f"{_ctx().source}: a pickled numpy dtype state sets fields "
                                    "or a subarray; only plain numeric dtypes are accepted")
        order = state[1]
        if order not in ("<", ">", "|", "="):
            raise CorruptCheckpointError(f"{_ctx().source}: numpy dtype byte order "
                                         f"{_describe(order)}")
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
        dims = [_as_index(s, "a numpy array dimension", ctx.source, "(numpy array)")
                for s in shape]
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickleError(f"{ctx.source}: numpy array data is a {type(raw).__name__}, "
                                    "not bytes (object arrays are refused)")
        numel = 1
        for d in dims:
            numel *= d
        if numel * dtype.itemsize != len(raw):
            raise CorruptCheckpointError(
                f"{ctx.source}: numpy array of shape {_describe(tuple(dims))} {dtype} needs "
                f"{numel * dtype.itemsize} bytes, the pickle holds {len(raw)}")
        ctx.budget.charge(len(raw), f"a numpy array of shape {_describe(tuple(dims))}")
        np.ndarray.__setstate__(self, (tuple(dims), dtype, bool(fortran), raw))


class _NumpyClass(_Sealed):
    """Marker for the global ``numpy.ndarray``: usable only as ``_reconstruct``'s class
    argument (calling ``numpy.ndarray(shape)`` from a pickle would allocate any size)."""


_NDARRAY = _NumpyClass()


def _numpy_reconstruct(cls, shape=None, dtype_code=None):
    if cls is not _NDARRAY and cls is not np.ndarray:
        raise UnsafePickleError(f"{_ctx().source}: numpy _reconstruct of {_describe(cls)} is "
                                "not accepted")
    return np.ndarray.__new__(_GuardedArray, (0,), np.uint8)


def _numpy_scalar(dtype, data=None):
    dtype = _plain_dtype(dtype, "numpy scalar")
    if data is None:
        return dtype.type(0)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise CorruptCheckpointError(f"{_ctx().source}: numpy scalar of {dtype} holds "
                                     f"{_describe(data)}")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


# --------------------------------------------------------------------------------------------
# Allowlisted callables.
# --------------------------------------------------------------------------------------------
def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *rest):
    return _TensorRef(storage, offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *rest):
    if not isinstance(data, _TensorRef):
        raise CorruptCheckpointError(f"{_ctx().source}: a parameter wraps "
                                     f"{_describe(data)}, not a tensor")
    return data


def _copyreg_reconstructor(cls, base, state):
    if cls not in (Namespace, EasyDict) or base not in (object, dict):
        raise UnsafePickleError(f"copyreg._reconstructor of {_describe(cls)} is not accepted")
    return cls.__new__(cls)


def _codecs_encode(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: latin-1 only (other codecs
    can decompress), charged against the budget (a memoized string may be encoded many times)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"{_ctx().source}: _codecs.encode is accepted only for latin-1 "
                                "text (bytes in protocol-2 pickles)")
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
    return (f"{source}: refusing to load global '{module[:100]}.{name[:100]}': it is not on the "
            "allowlist of checkpoint types, so nothing in this file was executed")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str, allow: Mapping[tuple[str, str], Any],
                 persistent: Callable[[Any], Any] | None = None):
        super().__init__(file)
        self._source, self._allow, self._persistent = source, allow, persistent

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._allow:
            return self._allow[key]
        if key in _KNOWN_UNSUPPORTED:
            raise UnsupportedFormatError(f"{self._source}: {_KNOWN_UNSUPPORTED[key]}")
        raise UnsafePickleError(_refusal(self._source, str(module), str(name)))

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise CorruptCheckpointError(f"{self._source}: unexpected persistent id "
                                         f"{_describe(pid)}")
        return self._persistent(pid)


_UNPICKLE_ERRORS = (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError,
                    KeyError, AttributeError, struct.error, OverflowError, UnicodeError,
                    MemoryError, RecursionError)


def _safe_load(stream, ctx: _Ctx, allow, persistent=None, what: str = "pickle") -> Any:
    """Pre-scan, then unpickle, the pickle at the stream's position (typed errors only)."""
    _prescan(stream, ctx, allow, what)
    token = _CURRENT.set(ctx)
    try:
        return _RestrictedUnpickler(stream, ctx.source, allow, persistent).load()
    except (UnsafePickleError, CorruptCheckpointError, UnsupportedFormatError):
        raise
    except _UNPICKLE_ERRORS as e:
        raise CorruptCheckpointError(
            f"{ctx.source}: {what}: truncated or corrupt pickle ({type(e).__name__}: "
            f"{_first_line(e)})") from None
    finally:
        _CURRENT.reset(token)


# --------------------------------------------------------------------------------------------
# After unpickling: an iterative walk that materializes tensors and bounds depth / cycles.
# --------------------------------------------------------------------------------------------
def _children(obj: Any):
    """(keys, getter, setter) for a container the walk descends into, else None."""
    if isinstance(obj, dict):
        return list(obj.keys()), obj.__getitem__, obj.__setitem__
    if isinstance(obj, list):
        return list(range(len(obj))), obj.__getitem__, obj.__setitem__
    if isinstance(obj, tuple):
        return list(range(len(obj))), obj.__getitem__, None
    if isinstance(obj, (_Sealed, _PickledDtype, type)) and not isinstance(obj, PersistentObject):
        return None
    if callable(obj):
        return None
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict) and not isinstance(obj, (np.ndarray, np.generic, np.dtype)):
        return list(d.keys()), d.__getitem__, d.__setitem__
    return None


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key[:80]
    return _describe(key, 40)


def _materialize(root: Any, ctx: _Ctx) -> Any:
    """Replace every tensor reference below ``root`` by an array; refuse depth and cycles.

    Iterative (no Python recursion), visits each object once (shared objects stay shared).
    """
    max_depth = ctx.limits.max_depth
    done: dict[int, Any] = {}
    keep: list = []  # originals stay alive so that their ids are not reused during the walk
    on_path: set[int] = set()

    def leaf(obj: Any, path: str):
        if isinstance(obj, _TensorRef):
            return True, obj.materialize(ctx, path or "(top level)")
        if isinstance(obj, _GuardedArray):
            return True, obj.view(np.ndarray)
        if isinstance(obj, _PickledDtype):
            return True, obj.dtype
        return False, obj

    is_leaf, value = leaf(root, "")
    if is_leaf:
        return value
    kids = _children(root)
    if kids is None:
        return root
    stack = [[root, "", 0, kids, 0, [] if isinstance(root, tuple) else None]]
    on_path.add(id(root))
    result = root
    while stack:
        frame = stack[-1]
        obj, path, depth, (keys, get, put), i, acc = frame
        if i < len(keys):
            frame[4] = i + 1
            key = keys[i]
            child = get(key)
            cpath = f"{path}/{_key_text(key)}" if path else _key_text(key)
            cid = id(child)
            if cid in done:
                value = done[cid]
            else:
                is_leaf, value = leaf(child, cpath)
                if is_leaf:
                    done[cid] = value
                    keep.append(child)
                else:
                    ck = _children(child)
                    if ck is not None:
                        if cid in on_path:
                            raise CorruptCheckpointError(
                                f"{ctx.source}: the object at {cpath[-160:]} contains itself "
                                "(a reference cycle); checkpoints hold trees of data")
                        if depth + 1 > max_depth:
                            where = cpath if len(cpath) < 160 else (
                                f"{cpath[:60]}/.../{cpath[-60:]}")
                            raise CorruptCheckpointError(
                                f"{ctx.source}: containers nested more than {max_depth} deep "
                                f"at {where}")
                        on_path.add(cid)
                        stack.append([child, cpath, depth + 1, ck, 0,
                                      [] if isinstance(child, tuple) else None])
                        continue
            if acc is not None:
                acc.append(value)
            elif value is not child:
                put(key, value)
            continue
        stack.pop()
        on_path.discard(id(obj))
        value = tuple(acc) if acc is not None else obj
        done[id(obj)] = value
        keep.append(obj)
        if stack:
            parent = stack[-1]
            pkeys, pget, pput = parent[3]
            pkey = pkeys[parent[4] - 1]
            if parent[5] is not None:
                parent[5].append(value)
            elif value is not obj:
                pput(pkey, value)
        else:
            result = value
    return result


# --------------------------------------------------------------------------------------------
# Legacy (non-zip) torch.save streams.
# --------------------------------------------------------------------------------------------
def _check_storage_id(pid: Any, ctx: _Ctx) -> tuple[_StorageType, str, int, Any]:
    source = ctx.source
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise CorruptCheckpointError(f"{source}: unexpected persistent id {_describe(pid)}")
    stype, key, _location, numel = pid[1:5]
    if not isinstance(stype, _StorageType):
        raise CorruptCheckpointError(f"{source}: storage {_describe(key)} has an unknown type "
                                     f"{_describe(stype)}")
    if not isinstance(key, str) or not 0 < len(key) <= 256:
        raise CorruptCheckpointError(f"{source}: storage key {_describe(key)} is not a name")
    if isinstance(numel, bool) or not isinstance(numel, int) or not 0 <= numel < 1 << 60:
        raise CorruptCheckpointError(f"{source}: storage {key!r} declares {_describe(numel)} "
                                     "elements")
    return stype, key, numel, (pid[5] if len(pid) > 5 else None)


def _read_legacy_stream(stream, ctx: _Ctx, allow, what: str = "legacy torch.save data") -> Any:
    source = ctx.source
    scalar_allow: dict = {}
    magic = _safe_load(stream, ctx, scalar_allow, what=f"{what} (magic number)")
    if magic != LEGACY_MAGIC:
        raise UnsupportedFormatError(f"{source}: not a torch.save file (no legacy magic number)")
    protocol = _safe_load(stream, ctx, scalar_allow, what=f"{what} (protocol)")
    if protocol != LEGACY_PROTOCOL:
        raise UnsupportedFormatError(f"{source}: unsupported torch.save protocol "
                                     f"{_describe(protocol)}")
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
            raise CorruptCheckpointError(f"{source}: storage {key!r} is declared twice with "
                                         "different types or sizes")
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)):
            raise CorruptCheckpointError(f"{source}: storage {key!r} has a malformed view "
                                         f"{_describe(view)}")
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
            raise CorruptCheckpointError(f"{source}: storage {key!r} is listed but never "
                                         "referenced")
        if st.data is not None:
            raise CorruptCheckpointError(f"{source}: storage {key!r} is written twice")
        header = stream.read(8)
        if len(header) != 8:
            raise CorruptCheckpointError(f"{source}: the file ends before storage {key!r} "
                                         "(truncated)")
        (numel,) = struct.unpack("<q", header)
        itemsize = _itemsize(st.dtype)
        if numel != st.numel:
            raise CorruptCheckpointError(
                f"{source}: storage {key!r} is declared with {st.numel} elements but its data "
                f"header says {numel}")
        nbytes = numel * itemsize
        if nbytes > stream.remaining():
            raise CorruptCheckpointError(
                f"{source}: storage {key!r} declares {numel} elements ({_fmt_bytes(nbytes)}) "
                f"but only {_fmt_bytes(stream.remaining())} of the file remain (truncated or "
                "hostile); nothing was allocated")
        ctx.budget.charge(nbytes * ((2 if st.dtype == "bfloat16" else 0) + stream.copies),
                          f"storage {key!r}")
        raw = stream.read_view(nbytes)
        st.data = _bytes_to_array(raw, st.dtype, numel, f"{source}: storage {key!r}")
    return obj


def _load_from_bytes_factory(ctx: _Ctx) -> Callable[[bytes], _Storage]:
    def load_from_bytes(blob: Any) -> _Storage:
        if not isinstance(blob, (bytes, bytearray)):
            raise CorruptCheckpointError(f"{ctx.source}: embedded storage is a "
                                         f"{type(blob).__name__}, not bytes")
        obj = _read_legacy_stream(_MemStream(blob), ctx, _BASE_ALLOW, what="embedded storage")
        if not isinstance(obj, _Storage):
            raise CorruptCheckpointError(f"{ctx.source}: an embedded storage blob holds a "
                                         f"{type(obj).__name__}, not a storage")
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


def _allow(extra_allow: Mapping[tuple[str, str], Any] | None) -> dict:
    allow = dict(_BASE_ALLOW)
    if extra_allow:
        allow.update(extra_allow)
    return allow


def _open_ctx(source: str, size: int, limits: Limits | None) -> _Ctx:
    limits = limits or DEFAULT_LIMITS
    return _Ctx(source, _Budget(source, size, limits), limits)


def load_torch_file(path: str | os.PathLike, *, extra_allow: Mapping | None = None,
                    limits: Limits | None = None) -> Any:
    """Load a ``torch.save`` file (zip or legacy) without torch; tensors become NumPy arrays.

    Args:
      path: the file.
      extra_allow: more ``{(module, name): stand-in}`` globals to accept (format readers).
      limits: resource limits (:class:`Limits`; the defaults bound memory to ~4x the file).

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
            obj = _read_legacy_stream(_FileStream(f, ctx.budget.file_size), ctx,
                                      _allow(extra_allow))
        return _materialize(obj, ctx)
    raise UnsupportedFormatError(f"{source}: not a torch.save file (unknown header)")


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
               NotImplementedError, RuntimeError, ValueError, struct.error, _LZMAError)
_ZIPINFO_BYTES = 1024  # what zipfile keeps per archive member (ZipInfo), charged up front


def _zip_entries(source: str) -> int:
    """The member count the archive's end record declares (zip64 aware), without parsing the
    central directory (which zipfile would turn into one object per entry)."""
    with open(source, "rb") as f:
        end = zipfile._EndRecData(f)  # noqa: SLF001 - the stdlib's own end-record reader
    if end is None:
        raise CorruptCheckpointError(f"{source}: damaged zip archive (no end record)")
    return int(end[zipfile._ECD_ENTRIES_TOTAL])  # noqa: SLF001


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
            raise UnsupportedFormatError(f"{source}: zip archive has no single data.pkl")
        prefix = pkl[0][: -len("data.pkl")]

        def read_member(name: str, nbytes: int | None, what: str, cap: int | None = None):
            info = infos.get(name)
            if info is None:
                raise CorruptCheckpointError(f"{source}: {what} ({name!r}) is missing from the "
                                             "archive")
            if nbytes is not None and info.file_size != nbytes:
                raise CorruptCheckpointError(
                    f"{source}: {what} ({name!r}) is {info.file_size} bytes in the archive but "
                    f"{nbytes} bytes are declared for it")
            if cap is not None and info.file_size > cap:
                raise CorruptCheckpointError(f"{source}: {what} ({name!r}) declares "
                                             f"{_fmt_bytes(info.file_size)}")
            ctx.budget.charge(info.file_size, f"{what} ({name!r})")
            try:
                with zf.open(info) as fh:  # never reads more than the declared size
                    data = fh.read(info.file_size)
            except _ZIP_ERRORS as e:
                raise CorruptCheckpointError(f"{source}: {what} ({name!r}) is damaged "
                                             f"({_first_line(e)})") from None
            if len(data) != info.file_size:
                raise CorruptCheckpointError(f"{source}: {what} ({name!r}) is truncated")
            return data

        order = prefix + "byteorder"
        if order in infos:
            if read_member(order, None, "byteorder", cap=16).strip() not in (b"little", b""):
                raise UnsupportedFormatError(f"{source}: big-endian torch archives are "
                                             "unsupported")
        storages: dict[str, _Storage] = {}

        def persistent(pid):
            stype, key, numel, _ = _check_storage_id(pid, ctx)
            st = storages.get(key)
            if st is not None:
                if st.dtype != stype.dtype or st.numel != numel:
                    raise CorruptCheckpointError(f"{source}: storage {key!r} is declared twice "
                                                 "with different types or sizes")
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


def load_pickle(path: str | os.PathLike, *, extra_allow: Mapping | None = None,
                limits: Limits | None = None) -> Any:
    """Load a plain pickle (e.g. an NVIDIA network snapshot) with the restricted allowlist.

    Storages embedded through ``torch.storage._load_from_bytes`` are parsed as legacy torch
    blobs; persistent objects become :class:`PersistentObject` records; NumPy arrays of plain
    numeric dtypes are accepted. No code runs. ``extra_allow`` and ``limits`` as in
    :func:`load_torch_file`.
    """
    source = _regular_file(path)
    with open(source, "rb") as f:
        ctx = _open_ctx(source, os.fstat(f.fileno()).st_size, limits)
        allow = _allow(extra_allow)
        allow[("torch.storage", "_load_from_bytes")] = _load_from_bytes_factory(ctx)
        obj = _safe_load(_FileStream(f, ctx.budget.file_size), ctx, allow)
    return _materialize(obj, ctx)


__all__ = [
    "DEFAULT_LIMITS",
    "EasyDict",
    "Limits",
    "Namespace",
    "PersistentObject",
    "TFNetwork",
    "load_pickle",
    "load_torch_file",
    "sniff",
]
