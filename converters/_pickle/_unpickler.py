"""The restricted unpickler: globals come from the allowlist only, after a pre-scan."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import CorruptCheckpointError, UnsafePickleError, UnsupportedFormatError
from ._allowlist import _KNOWN_UNSUPPORTED, _refusal
from ._limits import _CURRENT, _Ctx, _describe, _first_line
from ._prescan import prescan


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(
        self,
        file,
        source: str,
        allow: Mapping[tuple[str, str], Any],
        persistent: Callable[[Any], Any] | None = None,
    ):
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
            raise CorruptCheckpointError(
                f"{self._source}: unexpected persistent id {_describe(pid)}"
            )
        return self._persistent(pid)


_UNPICKLE_ERRORS = (
    EOFError,
    pickle.UnpicklingError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    struct.error,
    OverflowError,
    UnicodeError,
    MemoryError,
    RecursionError,
)


def _safe_load(stream, ctx: _Ctx, allow, persistent=None, what: str = "pickle") -> Any:
    """Pre-scan, then unpickle, the pickle at the stream's position (typed errors only)."""
    prescan(stream, ctx, allow, what)
    token = _CURRENT.set(ctx)
    try:
        return _RestrictedUnpickler(stream, ctx.source, allow, persistent).load()
    except (UnsafePickleError, CorruptCheckpointError, UnsupportedFormatError):
        raise
    except _UNPICKLE_ERRORS as e:
        raise CorruptCheckpointError(
            f"{ctx.source}: {what}: truncated or corrupt pickle ({type(e).__name__}: "
            f"{_first_line(e)})"
        ) from None
    finally:
        _CURRENT.reset(token)
