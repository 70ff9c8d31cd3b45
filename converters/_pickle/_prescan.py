"""Pre-scan: simulate the pickle machine on opcodes only (no object is built, nothing is called).

`prescan` walks a pickle's opcodes before the real unpickler runs (the opcode table and the
cost model are in `_opcodes`): one handler per opcode family updates the simulated stack, marks
and memo and returns what the opcode costs.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import CorruptCheckpointError, UnsafePickleError
from ._allowlist import _KNOWN_UNSUPPORTED, _refusal
from ._limits import _Ctx, _describe, _fmt_bytes
from ._opcodes import (
    _ADD_MARK,
    _ATOM,
    _CHUNK,
    _COPY_PER_ITEM,
    _EMPTY,
    _FIXED,
    _FIXED_SCALARS,
    _FROM_MARK,
    _LENGTHS,
    _LINE_SCALARS,
    _MAX_LINE,
    _OBJECT,
    _OPCODES,
    _PAYLOAD_BASE,
    _SLOT,
    _Cell,
    _int_or_none,
)


def _maxdepth(items) -> int:
    return max((c.depth for c in items), default=0)


def _copy_cost(cell: _Cell) -> int:
    return _COPY_PER_ITEM * (cell.n + sum(k.n for k in cell.kids or ()))


class _Scan:
    """One pre-scan: the read position in the stream, the simulated stack, marks and memo, and
    the object bytes not yet charged to the budget (``pending``).

    The ``op_*`` handlers take ``(name, arg)`` and return what the opcode costs (charged in
    batches by `run`), or None for the memo opcodes, which charge ``pending`` themselves.
    """

    def __init__(self, stream, ctx: _Ctx, allow: Mapping[tuple[str, str], Any], what: str):
        self.stream, self.ctx, self.allow, self.what = stream, ctx, allow, what
        self.source, self.max_depth = ctx.source, ctx.limits.max_depth
        self.start = self.pos = stream.tell()
        self.buf, self.i, self.base = b"", 0, self.start  # buf[0] is at stream offset base
        self.stack: list = []
        self.marks: list[int] = []
        self.memo: dict[int, _Cell] = {}
        self.memo_cap = 0
        self.pending = 0

    # ---- reading the opcodes and their arguments --------------------------------------------
    def fail(self, msg: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(
            f"{self.source}: {self.what}: {msg} (pickle byte {self.pos - self.start})"
        )

    def truncated(self) -> CorruptCheckpointError:
        return self.fail("the data ends in the middle of the pickle (truncated)")

    def need(self, n: int) -> None:
        buf, i = self.buf, self.i
        if len(buf) - i >= n:
            return
        more = self.stream.read(max(_CHUNK, n - (len(buf) - i)))
        self.buf, self.base, self.i = buf[i:] + more, self.base + i, 0
        if len(self.buf) < n:
            raise self.truncated()

    def skip(self, n: int) -> None:
        stream = self.stream
        avail = len(self.buf) - self.i
        if n <= avail:
            self.i += n
            return
        rest = n - avail
        if rest > stream.remaining():
            raise self.fail(
                f"a payload declares {_fmt_bytes(n)} but only "
                f"{_fmt_bytes(avail + stream.remaining())} of the data remain "
                "(truncated or hostile)"
            )
        stream.seek(stream.tell() + rest)
        self.buf, self.i, self.base = b"", 0, stream.tell()

    def line(self) -> bytes:
        while True:
            buf, i = self.buf, self.i
            j = buf.find(b"\n", i)
            if j >= 0:
                self.i = j + 1
                return buf[i:j]
            if len(buf) - i > _MAX_LINE:
                raise self.fail(
                    f"a text argument runs over {_fmt_bytes(_MAX_LINE)} without a newline"
                )
            more = self.stream.read(_CHUNK)
            if not more:
                raise self.truncated()
            self.buf, self.base, self.i = buf[i:] + more, self.base + i, 0

    def argument(self, name: str, kind: str) -> Any:
        """Decode the argument of the opcode just read; payloads are skipped, not read."""
        st = _FIXED.get(kind)
        if st is not None:
            if len(self.buf) - self.i < st.size:
                self.need(st.size)
            (arg,) = st.unpack_from(self.buf, self.i)
            self.i += st.size
            return arg
        st = _LENGTHS.get(kind)
        if st is not None:
            if len(self.buf) - self.i < st.size:
                self.need(st.size)
            (arg,) = st.unpack_from(self.buf, self.i)
            self.i += st.size
            if arg < 0:
                raise self.fail(f"{name} declares a negative length {arg}")
            if arg <= len(self.buf) - self.i:
                self.i += arg
            else:
                self.skip(arg)
            return arg
        if kind == "line":
            return self.line()
        return (self.line(), self.line())

    # ---- the simulated stack ----------------------------------------------------------------
    def deep(self, depth: int) -> None:
        if depth > self.max_depth:
            raise self.fail(
                f"containers nested more than {self.max_depth} deep; refusing to unpickle"
            )

    def floor(self) -> int:
        return self.marks[-1] if self.marks else 0

    def pop_mark(self) -> list:
        if not self.marks:
            raise self.fail("an opcode needs a MARK but there is none")
        k = self.marks.pop()
        items = self.stack[k:]
        del self.stack[k:]
        return items

    def pop(self, n: int) -> list:
        stack = self.stack
        if len(stack) - self.floor() < n:
            raise self.fail("the pickle stack underflows")
        items = stack[len(stack) - n :]
        del stack[len(stack) - n :]
        return items

    def target(self, name: str) -> _Cell:
        """The container / object below the popped items, which the opcode mutates."""
        stack = self.stack
        if len(stack) <= self.floor():
            raise self.fail(f"{name} without a container")
        if stack[-1] is _ATOM:  # a scalar: the unpickler will fail; never mutate the shared cell
            stack[-1] = _Cell(0)
        return stack[-1]

    # ---- the memo (charged as it grows; no periodic charge) ---------------------------------
    def op_get(self, name: str, arg: Any) -> None:  # GET, BINGET, LONG_BINGET
        key = arg if name != "GET" else _int_or_none(arg)
        cell = None if key is None else self.memo.get(key)
        if cell is None:
            raise self.fail(f"memo key {_describe(arg)} was never stored")
        self.stack.append(cell)
        self.pending += _SLOT

    def op_put(self, name: str, arg: Any) -> None:  # MEMOIZE, PUT, BINPUT, LONG_BINPUT
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise self.fail("memoizing an empty stack")
        idx = len(self.memo) if name == "MEMOIZE" else (arg if name != "PUT" else _int_or_none(arg))
        if idx is None or idx < 0:
            raise self.fail(f"memo index {_describe(arg)} is not a valid index")
        if idx >= self.memo_cap:  # the C unpickler's memo is an array indexed by the key
            grown = max(2 * (idx + 1), 64)
            self.ctx.budget.charge(
                self.pending + 8 * (grown - self.memo_cap),
                f"{self.what}: a memo of {idx + 1} entries",
            )
            self.pending, self.memo_cap = 0, grown
        self.memo[idx] = self.stack[-1]
        self.pending += 8

    # ---- scalars ----------------------------------------------------------------------------
    def op_fixed_scalar(self, name: str, arg: Any) -> int:  # BININT*, BINFLOAT, NONE, bools
        self.stack.append(_ATOM)
        return _SLOT + _FIXED_SCALARS[name]

    def op_payload(self, name: str, arg: Any) -> int:  # strings, bytes, LONG1/LONG4
        self.stack.append(_ATOM)
        return _SLOT + _PAYLOAD_BASE[name] + arg

    def op_line_scalar(self, name: str, arg: Any) -> int:  # INT, LONG, FLOAT, STRING, PERSID
        self.stack.append(_Cell(1) if name == "PERSID" else _ATOM)
        return _SLOT + _LINE_SCALARS[name] + len(arg)

    def op_unicode(self, name: str, arg: Any) -> int:
        self.stack.append(_ATOM)
        return _SLOT + 49 + 4 * len(arg)

    # ---- containers -------------------------------------------------------------------------
    def op_empty(self, name: str, arg: Any) -> int:  # EMPTY_LIST/DICT/SET/TUPLE
        self.stack.append(_Cell(1, 0, [] if name == "EMPTY_TUPLE" else None))
        return _SLOT + _EMPTY[name]

    def op_mark(self, name: str, arg: Any) -> int:
        self.marks.append(len(self.stack))
        self.deep(len(self.marks))
        return _SLOT

    def op_tuple_n(self, name: str, arg: Any) -> int:  # TUPLE1, TUPLE2, TUPLE3
        items = self.pop(int(name[-1]))
        cell = _Cell(1 + _maxdepth(items), len(items), items)
        self.deep(cell.depth)
        self.stack.append(cell)
        return _SLOT + 40 + 8 * len(items)

    def op_from_mark(self, name: str, arg: Any) -> int:  # TUPLE, LIST, DICT, FROZENSET
        items = self.pop_mark()
        cell = _Cell(
            1 + _maxdepth(items),
            len(items) // (2 if name == "DICT" else 1),
            items if name == "TUPLE" else None,
        )
        self.deep(cell.depth)
        head, per = _FROM_MARK[name]
        self.stack.append(cell)
        return _SLOT + head + per * len(items)

    def op_add_mark(self, name: str, arg: Any) -> int:  # APPENDS, SETITEMS, ADDITEMS
        items = self.pop_mark()
        box = self.target(name)
        box.depth = max(box.depth, 1 + _maxdepth(items))
        box.n += len(items) // (2 if name == "SETITEMS" else 1)
        self.deep(box.depth)
        return _SLOT + _ADD_MARK[name] * len(items)

    def op_add_one(self, name: str, arg: Any) -> int:  # APPEND, SETITEM
        items = self.pop(1 if name == "APPEND" else 2)
        box = self.target(name)
        box.depth = max(box.depth, 1 + _maxdepth(items))
        box.n += 1
        self.deep(box.depth)
        return _SLOT + (8 if name == "APPEND" else 24)

    # ---- stack manipulation -----------------------------------------------------------------
    def op_pop(self, name: str, arg: Any) -> int:
        if self.marks and self.marks[-1] == len(self.stack):
            self.marks.pop()
        else:
            self.pop(1)
        return _SLOT

    def op_pop_mark(self, name: str, arg: Any) -> int:
        self.pop_mark()
        return _SLOT

    def op_dup(self, name: str, arg: Any) -> int:
        self.stack.extend(self.pop(1))
        self.stack.append(self.stack[-1])
        return _SLOT

    # ---- globals and objects ----------------------------------------------------------------
    def op_global(self, name: str, arg: Any) -> int:  # GLOBAL, INST: checked on the allowlist
        module, gname = (x.decode("utf-8", "replace") for x in arg)
        if (module, gname) not in self.allow and (module, gname) not in _KNOWN_UNSUPPORTED:
            raise UnsafePickleError(_refusal(self.source, module, gname))
        if name == "GLOBAL":
            self.stack.append(_Cell(0, is_global=True))
            return _SLOT
        return self.op_obj(name, arg)

    def op_stack_global(self, name: str, arg: Any) -> int:
        self.pop(2)
        self.stack.append(_Cell(0, is_global=True))
        return _SLOT

    def op_ext(self, name: str, arg: Any) -> int:  # EXT1, EXT2, EXT4
        self.stack.append(_Cell(0, is_global=True))
        return _SLOT

    def op_obj(self, name: str, arg: Any) -> int:  # OBJ (and INST once its global is checked)
        items = self.pop_mark()
        cell = _Cell(1 + _maxdepth(items), len(items))
        self.deep(cell.depth)
        self.stack.append(cell)
        return _SLOT + _OBJECT + _COPY_PER_ITEM * len(items)

    def op_reduce(self, name: str, arg: Any) -> int:  # REDUCE, NEWOBJ, NEWOBJ_EX
        args = self.pop(3 if name == "NEWOBJ_EX" else 2)[1:]
        cost = _SLOT + _OBJECT + sum(_copy_cost(a) for a in args)
        cell = _Cell(
            max(1, _maxdepth(args)), sum(a.n + sum(k.n for k in a.kids or ()) for a in args)
        )
        self.deep(cell.depth)
        self.stack.append(cell)
        return cost

    def op_build(self, name: str, arg: Any) -> int:
        (state,) = self.pop(1)
        obj = self.target("BUILD")
        if obj.is_global:
            raise UnsafePickleError(
                f"{self.source}: {self.what}: the pickle sets the state of a "
                f"global class or function (byte {self.pos - self.start}); "
                "refused, nothing was executed"
            )
        obj.depth = max(obj.depth, 1 + state.depth)
        obj.n += state.n
        self.deep(obj.depth)
        return _SLOT + _copy_cost(state)

    def op_binpersid(self, name: str, arg: Any) -> int:
        self.pop(1)
        self.stack.append(_Cell(1))
        return _SLOT

    # ---- framing and protocol ---------------------------------------------------------------
    def op_frame(self, name: str, arg: Any) -> int:
        if arg > (len(self.buf) - self.i) + self.stream.remaining():
            raise self.fail(f"a frame of {_fmt_bytes(arg)} runs past the end of the data")
        return _SLOT

    def op_proto(self, name: str, arg: Any) -> int:
        if arg > pickle.HIGHEST_PROTOCOL:
            raise self.fail(f"unsupported pickle protocol {arg}")
        return _SLOT

    def op_buffer(self, name: str, arg: Any) -> int:  # NEXT_BUFFER, READONLY_BUFFER
        raise self.fail("out-of-band buffers (pickle protocol 5) are not supported")

    def run(self) -> None:
        """Scan to STOP, charging the objects' estimated memory to the budget in batches."""
        dispatch, fixed, budget, what = _DISPATCH, _FIXED, self.ctx.budget, self.what
        while True:
            buf, i = self.buf, self.i
            self.pos = self.base + i
            if i >= len(buf):
                self.need(1)
                buf, i = self.buf, self.i
            entry = dispatch.get(buf[i])
            if entry is None:
                raise self.fail(
                    f"unknown opcode byte 0x{buf[i]:02x} (not a pickle, or a damaged one)"
                )
            name, kind, handler = entry
            i += 1
            self.i = i
            if kind is None:
                arg = None
            elif kind in fixed and len(buf) - i >= fixed[kind].size:  # the common case
                st = fixed[kind]
                (arg,) = st.unpack_from(buf, i)
                self.i = i + st.size
            else:
                arg = self.argument(name, kind)
            if handler is None:  # STOP
                break
            cost = handler(self, name, arg)
            if cost is None:  # a memo opcode
                continue
            self.pending += cost
            if self.pending > 1 << 16:
                budget.charge(self.pending, f"{what}: objects")
                self.pending = 0
        budget.charge(self.pending, f"{what}: objects")


_HANDLERS: dict[str, Callable[[_Scan, str, Any], int | None]] = {
    **dict.fromkeys(("GET", "BINGET", "LONG_BINGET"), _Scan.op_get),
    **dict.fromkeys(("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"), _Scan.op_put),
    **dict.fromkeys(_FIXED_SCALARS, _Scan.op_fixed_scalar),
    **dict.fromkeys(_PAYLOAD_BASE, _Scan.op_payload),
    **dict.fromkeys(_LINE_SCALARS, _Scan.op_line_scalar),
    "UNICODE": _Scan.op_unicode,
    **dict.fromkeys(_EMPTY, _Scan.op_empty),
    "MARK": _Scan.op_mark,
    **dict.fromkeys(("TUPLE1", "TUPLE2", "TUPLE3"), _Scan.op_tuple_n),
    **dict.fromkeys(_FROM_MARK, _Scan.op_from_mark),
    **dict.fromkeys(_ADD_MARK, _Scan.op_add_mark),
    **dict.fromkeys(("APPEND", "SETITEM"), _Scan.op_add_one),
    "POP": _Scan.op_pop,
    "POP_MARK": _Scan.op_pop_mark,
    "DUP": _Scan.op_dup,
    **dict.fromkeys(("GLOBAL", "INST"), _Scan.op_global),
    "STACK_GLOBAL": _Scan.op_stack_global,
    **dict.fromkeys(("EXT1", "EXT2", "EXT4"), _Scan.op_ext),
    "OBJ": _Scan.op_obj,
    **dict.fromkeys(("REDUCE", "NEWOBJ", "NEWOBJ_EX"), _Scan.op_reduce),
    "BUILD": _Scan.op_build,
    "BINPERSID": _Scan.op_binpersid,
    "FRAME": _Scan.op_frame,
    "PROTO": _Scan.op_proto,
    **dict.fromkeys(("NEXT_BUFFER", "READONLY_BUFFER"), _Scan.op_buffer),
}
# Every opcode but STOP (which ends the scan) has exactly one handler.
assert set(_HANDLERS) == {name for name, _ in _OPCODES.values()} - {"STOP"}
_DISPATCH = {code: (name, kind, _HANDLERS.get(name)) for code, (name, kind) in _OPCODES.items()}


def prescan(stream, ctx: _Ctx, allow: Mapping[tuple[str, str], Any], what: str) -> None:
    """Walk the opcodes of the pickle at the stream's position; seek back to it afterwards.

    Simulates the pickle machine's stack on opcodes only: nothing is built, nothing is called,
    payloads (bytes, strings) are skipped without being read. Raises CorruptCheckpointError for
    truncation, a length past the end of the data, nesting deeper than ``limits.max_depth``, an
    unknown memo key, memo indices or object counts beyond the budget, and UnsafePickleError for
    a GLOBAL that is not allowlisted or a BUILD on a global (before anything is unpickled).
    """
    start = stream.tell()
    _Scan(stream, ctx, allow, what).run()
    stream.seek(start)
