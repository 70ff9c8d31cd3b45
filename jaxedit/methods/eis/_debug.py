"""A recompile guard over Editing in Style's jitted kernels."""

from __future__ import annotations

from typing import Any

from ._catalog import _heatmaps
from ._contributions import _contribution_sums
from ._kmeans import _kmeans_restart, _labels_of, _prepare_rows

_JITTED: dict[str, Any] = {
    "kmeans_restart": _kmeans_restart,
    "kmeans_prepare": _prepare_rows,
    "kmeans_labels": _labels_of,
    "heatmaps": _heatmaps,
    "contribution_sums": _contribution_sums,
}


def compiled_programs() -> dict[str, int]:
    """How many programs each of EiS's jitted kernels has compiled so far (a recompile guard).

    New keys or new data of the same shapes must not add a program: compare the counts before
    and after a call. The counts are process-wide and only grow.

    Returns:
      ``{name: count}`` for ``"kmeans_restart"`` (one spherical k-means restart),
      ``"kmeans_prepare"``, ``"kmeans_labels"``, ``"heatmaps"`` (`Catalog.predict`) and
      ``"contribution_sums"`` (`contributions`).
    """
    return {name: int(fn._cache_size()) for name, fn in _JITTED.items()}
