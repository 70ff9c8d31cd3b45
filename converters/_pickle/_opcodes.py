"""The pickle opcodes the pre-scan knows and its cost model (estimated sizes of what the
unpickler would build), plus `_Cell`, what the pre-scan knows of one stack item."""

from __future__ import annotations

import struct


class _Cell:
    """What the pre-scan knows of one stack item: nesting depth, item count, tuple children,
    and whether it is a global (a class or function of the allowlist, shared by every load)."""

    __slots__ = ("depth", "n", "kids", "is_global")

    def __init__(
        self, depth: int = 1, n: int = 0, kids: list | None = None, is_global: bool = False
    ):
        self.depth, self.n, self.kids, self.is_global = depth, n, kids, is_global


_ATOM = _Cell(0)

# Opcodes by byte: (name, how the argument is encoded). The argument kinds:
#   None: no argument; "u1"/"u2"/"u4"/"i4"/"u8"/"f8": fixed little-endian; "line": up to a newline;
#   "line2": two lines (GLOBAL, INST); "len1"/"len4s"/"len4u"/"len8u": a length, then that many
#   payload bytes (skipped by the pre-scan, never read into memory).
# tests/converters/test_hostile.py checks this table against pickletools.opcodes.
_OPCODES: dict[int, tuple[str, str | None]] = {
    ord(k) if isinstance(k, str) else k: v
    for k, v in {
        "(": ("MARK", None),
        ".": ("STOP", None),
        "0": ("POP", None),
        "1": ("POP_MARK", None),
        "2": ("DUP", None),
        "F": ("FLOAT", "line"),
        "I": ("INT", "line"),
        "J": ("BININT", "i4"),
        "K": ("BININT1", "u1"),
        "L": ("LONG", "line"),
        "M": ("BININT2", "u2"),
        "N": ("NONE", None),
        "P": ("PERSID", "line"),
        "Q": ("BINPERSID", None),
        "R": ("REDUCE", None),
        "S": ("STRING", "line"),
        "T": ("BINSTRING", "len4s"),
        "U": ("SHORT_BINSTRING", "len1"),
        "V": ("UNICODE", "line"),
        "X": ("BINUNICODE", "len4u"),
        "a": ("APPEND", None),
        "b": ("BUILD", None),
        "c": ("GLOBAL", "line2"),
        "d": ("DICT", None),
        "}": ("EMPTY_DICT", None),
        "e": ("APPENDS", None),
        "g": ("GET", "line"),
        "h": ("BINGET", "u1"),
        "i": ("INST", "line2"),
        "j": ("LONG_BINGET", "u4"),
        "l": ("LIST", None),
        "]": ("EMPTY_LIST", None),
        "o": ("OBJ", None),
        "p": ("PUT", "line"),
        "q": ("BINPUT", "u1"),
        "r": ("LONG_BINPUT", "u4"),
        "s": ("SETITEM", None),
        "t": ("TUPLE", None),
        ")": ("EMPTY_TUPLE", None),
        "u": ("SETITEMS", None),
        "G": ("BINFLOAT", "f8"),
        "B": ("BINBYTES", "len4u"),
        "C": ("SHORT_BINBYTES", "len1"),
        0x80: ("PROTO", "u1"),
        0x81: ("NEWOBJ", None),
        0x82: ("EXT1", "u1"),
        0x83: ("EXT2", "u2"),
        0x84: ("EXT4", "i4"),
        0x85: ("TUPLE1", None),
        0x86: ("TUPLE2", None),
        0x87: ("TUPLE3", None),
        0x88: ("NEWTRUE", None),
        0x89: ("NEWFALSE", None),
        0x8A: ("LONG1", "len1"),
        0x8B: ("LONG4", "len4s"),
        0x8C: ("SHORT_BINUNICODE", "len1"),
        0x8D: ("BINUNICODE8", "len8u"),
        0x8E: ("BINBYTES8", "len8u"),
        0x8F: ("EMPTY_SET", None),
        0x90: ("ADDITEMS", None),
        0x91: ("FROZENSET", None),
        0x92: ("NEWOBJ_EX", None),
        0x93: ("STACK_GLOBAL", None),
        0x94: ("MEMOIZE", None),
        0x95: ("FRAME", "u8"),
        0x96: ("BYTEARRAY8", "len8u"),
        0x97: ("NEXT_BUFFER", None),
        0x98: ("READONLY_BUFFER", None),
    }.items()
}
_FIXED = {
    "u1": struct.Struct("<B"),
    "u2": struct.Struct("<H"),
    "u4": struct.Struct("<I"),
    "i4": struct.Struct("<i"),
    "u8": struct.Struct("<Q"),
    "f8": struct.Struct("<d"),
}
_LENGTHS = {
    "len1": _FIXED["u1"],
    "len4s": _FIXED["i4"],
    "len4u": _FIXED["u4"],
    "len8u": _FIXED["u8"],
}

# Estimated CPython sizes (bytes) of what the unpickler creates; every push also costs a slot.
_SLOT = 16
_PAYLOAD_BASE = {
    "BINSTRING": 49,
    "SHORT_BINSTRING": 49,
    "BINUNICODE": 49,
    "SHORT_BINUNICODE": 49,
    "BINUNICODE8": 49,
    "BINBYTES": 33,
    "SHORT_BINBYTES": 33,
    "BINBYTES8": 33,
    "BYTEARRAY8": 57,
    "LONG1": 32,
    "LONG4": 32,
}  # + the payload length (UTF-8 length bounds a str's own size)
_LINE_SCALARS = {"INT": 32, "LONG": 32, "FLOAT": 24, "STRING": 49, "PERSID": 49}
_FIXED_SCALARS = {
    "BININT": 32,
    "BININT1": 0,
    "BININT2": 32,
    "BINFLOAT": 24,
    "NONE": 0,
    "NEWTRUE": 0,
    "NEWFALSE": 0,
}
_EMPTY = {"EMPTY_LIST": 56, "EMPTY_DICT": 64, "EMPTY_SET": 216, "EMPTY_TUPLE": 0}
_FROM_MARK = {"TUPLE": (40, 8), "LIST": (56, 8), "DICT": (64, 24), "FROZENSET": (216, 40)}
_ADD_MARK = {"APPENDS": 8, "SETITEMS": 24, "ADDITEMS": 40}
_OBJECT = 128  # a REDUCE / NEWOBJ / INST / OBJ result (a stand-in with a __dict__)
_COPY_PER_ITEM = 48  # what a constructor copying a container costs per item (OrderedDict(...))
_CHUNK = 1 << 16
_MAX_LINE = 1 << 20  # text arguments (GLOBAL names, protocol-0 numbers) are short


def _int_or_none(text: bytes) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
