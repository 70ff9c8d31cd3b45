"""Resource limits, the per-load budget and the load context (the ground floor of ``_pickle``).

Every read is bounded before anything is allocated: a `_Budget` of
``max_expansion * file size + slack_bytes`` is charged by the pre-scan, the storages, the tensor
copies and the NumPy stand-ins. The stand-ins find the current load's `_Ctx` (its source name,
budget and limits) through a ContextVar that `_safe_load` sets around each unpickling, so that
concurrent loads (threads, async tasks) never share a budget.
"""

from __future__ import annotations

import contextvars
import dataclasses
from typing import Any

import numpy as np

from ..errors import CorruptCheckpointError


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
    if (
        isinstance(v, (tuple, list))
        and len(v) <= 8
        and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in v)
    ):
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
                "this was refused before allocating it"
            )
        self.used += nbytes


@dataclasses.dataclass
class _Ctx:
    source: str
    budget: _Budget
    limits: Limits


_CURRENT: contextvars.ContextVar[_Ctx | None] = contextvars.ContextVar(
    "jaxedit_unpickle_ctx", default=None
)


def _ctx() -> _Ctx:
    ctx = _CURRENT.get()
    if ctx is None:  # pragma: no cover - only reachable by calling a stand-in by hand
        raise CorruptCheckpointError("restricted unpickler stand-in used outside a load")
    return ctx


def _open_ctx(source: str, size: int, limits: Limits | None) -> _Ctx:
    limits = limits or DEFAULT_LIMITS
    return _Ctx(source, _Budget(source, size, limits), limits)


def _first_line(e: BaseException, limit: int = 200) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:limit] + ("..." if len(text) > limit else "")
