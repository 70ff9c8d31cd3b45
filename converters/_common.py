"""Helpers shared by the converters: hashing, the conversion record, table-driven key mapping."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal, overload

import numpy as np

from .errors import (
    CorruptCheckpointError,
    KeyMismatchError,
    NonFiniteParameterError,
    ShapeMismatchError,
    UnsupportedFormatError,
)

Transform = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass
class ConvertedCheckpoint:
    """A checkpoint read into jaxedit's layout (plain NumPy, no JAX, no torch).

    Attributes:
      family: model family (``"stylegan2"``).
      config: architecture fields, JSON-serializable (keys of the family's config class).
      params: flat ``{"mapping_net/fc0/weight": array}`` in jaxedit's layout.
      sources: ``{target key: source key}`` for error messages and ``inspect``.
      source_format: ``"nvidia-pkl"`` or ``"rosinality-pt"``.
      source_path, source_sha256: the file read and its SHA-256.
      which: the network taken from a multi-network file (``"G_ema"``, ``"g_ema"``...).
      source_tensors: ``{source key: shape}`` of every tensor of that network.
    """

    family: str
    config: dict[str, Any]
    params: dict[str, np.ndarray]
    sources: dict[str, str]
    source_format: str
    source_path: str
    source_sha256: str
    which: str | None
    source_tensors: dict[str, tuple[int, ...]]

    def source_info(self) -> dict[str, Any]:
        return {
            "format": self.source_format,
            "path": os.path.basename(self.source_path),
            "sha256": self.source_sha256,
            "which": self.which,
        }


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def apply_table(
    source: str,
    state: Mapping[str, np.ndarray],
    table: Mapping[str, tuple[str | tuple[str, ...], Callable[..., np.ndarray]]],
    ignored: Mapping[str, Callable[[np.ndarray], None]],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Map a flat source state dict through ``table`` with strict coverage.

    ``table``: ``{target: (source key, transform)}`` or ``{target: ((key, key, ...), transform)}``
    (the transform then gets one array per key); ``ignored``: ``{source key: check}`` for
    tensors that carry no parameters (recomputable buffers), each validated by its check.
    Raises KeyMismatchError naming every missing and unexpected source key.
    """

    def keys(src):
        return (src,) if isinstance(src, str) else tuple(src)

    wanted = {k for src, _ in table.values() for k in keys(src)}
    missing = sorted(k for k in wanted if k not in state)
    unexpected = sorted(k for k in state if k not in wanted and k not in ignored)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        raise KeyMismatchError(f"{source}: " + "; ".join(parts))
    for key, check in ignored.items():
        if key in state:
            check(state[key])
    params = {}
    for t, (s, fn) in table.items():
        args = [np.asarray(state[k]) for k in keys(s)]
        try:
            params[t] = np.asarray(fn(*args))
        except (ValueError, IndexError, TypeError) as e:
            if isinstance(e, CorruptCheckpointError):
                raise
            shapes = ", ".join(f"{k} {tuple(a.shape)}" for k, a in zip(keys(s), args))
            raise ShapeMismatchError(
                f"{source}: {shapes} cannot be converted to {t} ({e})"
            ) from None
    return params, {t: "+".join(keys(s)) for t, (s, _) in table.items()}


def check_finite(source: str, params: Mapping[str, np.ndarray], sources: Mapping[str, str]) -> None:
    """Raise NonFiniteParameterError naming the first parameter that holds NaN or infinity."""
    for target, a in params.items():
        a = np.asarray(a)
        if a.dtype.kind not in "fc" or np.isfinite(a).all():
            continue
        n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        src = sources.get(target, target)
        raise NonFiniteParameterError(
            f"{source}: {src} (jaxedit {target}, shape {tuple(a.shape)}) holds {n_nan} NaN and "
            f"{n_inf} infinite values; pass allow_nonfinite=True (CLI: --allow-nonfinite) to "
            "convert it anyway"
        )


_MISSING = object()


def typed_int(
    d: Mapping[str, Any],
    key: str,
    where: str,
    *,
    lo: int = 0,
    hi: int = 1 << 20,
    default: Any = _MISSING,
) -> int:
    """``d[key]`` as an int (a real int, not a bool, a float or a string) within [lo, hi]."""
    v = d.get(key, _MISSING) if isinstance(d, Mapping) else _MISSING
    if v is _MISSING:
        if default is _MISSING:
            raise CorruptCheckpointError(f"{where}{key} is missing")
        return default
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise CorruptCheckpointError(f"{where}{key} is {describe(v)}, not an integer")
    if not lo <= int(v) <= hi:
        raise CorruptCheckpointError(f"{where}{key} = {describe(v)} is outside {lo}..{hi}")
    return int(v)


@overload
def typed_real(
    d: Mapping[str, Any],
    key: str,
    where: str,
    *,
    lo: float = ...,
    hi: float = ...,
    default: float = ...,
    allow_none: Literal[False] = ...,
) -> float: ...


@overload
def typed_real(
    d: Mapping[str, Any],
    key: str,
    where: str,
    *,
    lo: float = ...,
    hi: float = ...,
    default: Any = ...,
    allow_none: bool = ...,
) -> float | None: ...


def typed_real(
    d: Mapping[str, Any],
    key: str,
    where: str,
    *,
    lo: float = 0.0,
    hi: float = 1e30,
    default: Any = _MISSING,
    allow_none: bool = False,
):
    """``d[key]`` as a finite real number within [lo, hi] (or None when allowed)."""
    v = d.get(key, _MISSING) if isinstance(d, Mapping) else _MISSING
    if v is _MISSING:
        if default is _MISSING:
            raise CorruptCheckpointError(f"{where}{key} is missing")
        return default
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise CorruptCheckpointError(f"{where}{key} is {describe(v)}, not a number")
    if not (np.isfinite(float(v)) and lo <= float(v) <= hi):
        raise CorruptCheckpointError(f"{where}{key} = {describe(v)} is outside {lo:g}..{hi:g}")
    return float(v)


def typed_str(
    d: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...], default: Any = _MISSING
):
    v = d.get(key, _MISSING) if isinstance(d, Mapping) else _MISSING
    if v is _MISSING:
        if default is _MISSING:
            raise CorruptCheckpointError(f"{where}{key} is missing")
        return default
    if not isinstance(v, str) or v not in choices:
        raise CorruptCheckpointError(f"{where}{key} is {describe(v)}, expected one of {choices}")
    return v


def describe(v: Any) -> str:
    """A short, safe description of an untrusted value for error messages."""
    from ._pickle import describe as _describe

    return _describe(v)


def kernel_1d_from_2d(f2d: np.ndarray, source: str, key: str, scale: float = 1.0) -> list[float]:
    """Recover the separable 1-D taps ``a`` of a stored FIR ``scale * outer(a, a) / sum(a)**2``.

    Taps are returned scaled so that the smallest is 1 (``[1, 3, 3, 1]``).
    """
    f = np.asarray(f2d, np.float64) / scale
    if not np.isfinite(f).all():
        raise CorruptCheckpointError(f"{source}: {key} holds NaN or infinite values")
    if f.ndim != 2 or f.shape[0] != f.shape[1] or f.shape[0] > 64:
        raise UnsupportedFormatError(f"{source}: {key} has shape {f.shape}, expected a square FIR")
    a = f.sum(axis=1)
    if not np.isclose(a.sum(), 1.0, atol=1e-5) or not np.allclose(np.outer(a, a), f, atol=1e-6):
        raise UnsupportedFormatError(
            f"{source}: {key} is not a normalized separable FIR filter (times {scale})"
        )
    taps = a / a.min() if a.min() > 0 else a / np.abs(a).max()
    return [float(round(t, 6)) for t in taps]


def check_fir(
    expected_1d, source: str, key: str, scale: float = 1.0
) -> Callable[[np.ndarray], None]:
    """A check that a stored 2-D FIR buffer equals ``scale * outer(k, k) / sum(k)**2``."""
    k = np.asarray(expected_1d, np.float64)
    want = np.outer(k, k) / k.sum() ** 2 * scale

    def check(arr: np.ndarray) -> None:
        if not np.isfinite(np.asarray(arr, np.float64)).all():
            raise CorruptCheckpointError(f"{source}: {key} holds NaN or infinite values")
        if arr.shape != want.shape or not np.allclose(arr, want, rtol=1e-5, atol=1e-7):
            raise UnsupportedFormatError(
                f"{source}: {key} differs from the FIR of the other layers ({list(expected_1d)})"
            )

    return check
