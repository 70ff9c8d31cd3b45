"""`PandaResult` (the learned factors) and its `.npz` file format: `save`, `load`."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import FORMAT_VERSION


@dataclasses.dataclass(frozen=True, eq=False)
class PandaResult:
    """Learned PandA factors.

    Attributes:
      appearance: ``[C, R_C]`` appearance factors ``A`` (columns = channel directions).
      parts: ``[H, W, R_S]`` non-negative parts factors ``P`` (``P[:, :, k]`` = part k).
      losses: ``[steps]`` raw batch-mean loss before each step's updates.
      feature_energy: ``E = mean_i ‖Z_i‖²_F`` of the training features (the loss normalizer).
      layer: the generator layer the features came from (e.g. ``"b16.conv1"``) or None.
      converged: False when the loss was still falling by more than 1 % over the last tenth of
        the steps, or became non-finite (a `PandaConvergenceWarning` says so).
      settings: how the factors were made (optimizer, learning rate, steps, batch size, init,
        precision, and the source of the features when known).
    """

    appearance: np.ndarray
    parts: np.ndarray
    losses: np.ndarray
    feature_energy: float
    layer: str | None = None
    converged: bool = True
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ranks(self) -> tuple[int, int]:
        """``(R_C, R_S)``."""
        return int(self.appearance.shape[1]), int(self.parts.shape[-1])

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of the features the factors apply to."""
        h, w, _ = self.parts.shape
        return int(h), int(w), int(self.appearance.shape[0])

    @property
    def relative_losses(self) -> np.ndarray:
        """``losses / feature_energy``: the fraction of the feature energy left unexplained."""
        return np.asarray(self.losses) / self.feature_energy

    def parts_matrix(self) -> np.ndarray:
        """``P`` as the reference's ``[S, R_S]`` matrix (rows row-major over ``H, W``)."""
        h, w, r = self.parts.shape
        return np.asarray(self.parts).reshape(h * w, r)


def _check_result(result) -> None:
    if not isinstance(result, PandaResult):
        raise ValueError(
            f"expected a PandaResult (from panda.fit / panda.load), got {type(result).__name__}"
        )


# ------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------
def save(result: PandaResult, path, *, overwrite: bool = True) -> str:
    """Write the factors and their settings to ``path`` (.npz, atomically; ``overwrite=False``
    refuses an existing file) -> the path written."""
    from ..._io import save_npz

    _check_result(result)
    return save_npz(
        path,
        overwrite=overwrite,
        format="jaxedit-panda",
        version=np.int64(FORMAT_VERSION),
        appearance=np.asarray(result.appearance),
        parts=np.asarray(result.parts),
        losses=np.asarray(result.losses),
        feature_energy=np.float64(result.feature_energy),
        layer="" if result.layer is None else result.layer,
        converged=np.bool_(result.converged),
        settings=json.dumps(dict(result.settings), default=str, sort_keys=True),
    )


def load(path) -> PandaResult:
    """Read factors written by `save` (no pickles); every key and shape is checked."""
    from ..._io import load_npz

    d = load_npz(
        path,
        ("format", "appearance", "parts", "losses", "feature_energy", "layer", "settings"),
        "PandA factors",
    )
    path = os.fspath(path)
    if str(d["format"]) != "jaxedit-panda":
        raise ValueError(f"{path}: not a jaxedit PandA factors file (format {str(d['format'])!r})")
    a, p = d["appearance"], d["parts"]
    if (
        a.ndim != 2
        or p.ndim != 3
        or not np.issubdtype(a.dtype, np.floating)
        or not np.issubdtype(p.dtype, np.floating)
    ):
        raise ValueError(
            f"{path}: 'appearance' must be float [C, R_C] and 'parts' float "
            f"[H, W, R_S], got {a.shape} {a.dtype} and {p.shape} {p.dtype}"
        )
    if p.shape[2] > p.shape[0] * p.shape[1] or a.shape[1] > a.shape[0]:
        raise ValueError(f"{path}: inconsistent ranks: appearance {a.shape}, parts {p.shape}")
    for k in ("appearance", "parts"):
        if not np.all(np.isfinite(d[k])):
            raise ValueError(f"{path}: '{k}' contains non-finite values")
    if np.any(p < 0):
        raise ValueError(f"{path}: 'parts' has negative entries (PandA parts are non-negative)")
    try:
        settings = json.loads(str(d["settings"]))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: 'settings' is not valid JSON ({e})") from None
    energy = float(d["feature_energy"])
    if not math.isfinite(energy) or energy <= 0:
        raise ValueError(f"{path}: 'feature_energy' must be finite and > 0, got {energy}")
    layer = str(d["layer"]) or None
    return PandaResult(
        appearance=a,
        parts=p,
        losses=np.asarray(d["losses"]),
        feature_energy=energy,
        layer=layer,
        converged=bool(d["converged"]) if "converged" in d else True,
        settings=settings,
    )
