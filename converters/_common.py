"""Helpers shared by the converters: hashing, the conversion record, table-driven key mapping."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any, Callable, Mapping

import numpy as np

from .errors import KeyMismatchError, UnsupportedFormatError

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
        return {"format": self.source_format, "path": os.path.basename(self.source_path),
                "sha256": self.source_sha256, "which": self.which}


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
    params = {t: np.asarray(fn(*(np.asarray(state[k]) for k in keys(s))))
              for t, (s, fn) in table.items()}
    return params, {t: "+".join(keys(s)) for t, (s, _) in table.items()}


def kernel_1d_from_2d(f2d: np.ndarray, source: str, key: str, scale: float = 1.0) -> list[float]:
    """Recover the separable 1-D taps ``a`` of a stored FIR ``scale * outer(a, a) / sum(a)**2``.

    Taps are returned scaled so that the smallest is 1 (``[1, 3, 3, 1]``).
    """
    f = np.asarray(f2d, np.float64) / scale
    if f.ndim != 2 or f.shape[0] != f.shape[1]:
        raise UnsupportedFormatError(f"{source}: {key} has shape {f.shape}, expected a square FIR")
    a = f.sum(axis=1)
    if not np.isclose(a.sum(), 1.0, atol=1e-5) or not np.allclose(np.outer(a, a), f, atol=1e-6):
        raise UnsupportedFormatError(
            f"{source}: {key} is not a normalized separable FIR filter (times {scale})")
    taps = a / a.min() if a.min() > 0 else a / np.abs(a).max()
    return [float(round(t, 6)) for t in taps]


def check_fir(expected_1d, source: str, key: str, scale: float = 1.0) -> Callable[[np.ndarray], None]:
    """A check that a stored 2-D FIR buffer equals ``scale * outer(k, k) / sum(k)**2``."""
    k = np.asarray(expected_1d, np.float64)
    want = np.outer(k, k) / k.sum() ** 2 * scale

    def check(arr: np.ndarray) -> None:
        if arr.shape != want.shape or not np.allclose(arr, want, rtol=1e-5, atol=1e-7):
            raise UnsupportedFormatError(
                f"{source}: {key} differs from the FIR of the other layers ({list(expected_1d)})")

    return check
