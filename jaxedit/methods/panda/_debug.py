"""A debug hook on PandA's compilation: how many compiled variants each jitted function holds."""

from __future__ import annotations

from typing import Any

from ._loss import _hosvd_from_scatter, _loss_jit, _scatter
from ._saliency import _coords
from ._steps import _fit_scan, _init_states, _refine_jit, _stream_step

#: the jitted functions (``jax.jit`` wrappers: ``_cache_size`` is theirs, not in the stubs).
_JITTED: dict[str, Any] = {
    "fit_scan": _fit_scan,
    "stream_step": _stream_step,
    "init_states": _init_states,
    "refine": _refine_jit,
    "loss": _loss_jit,
    "scatter": _scatter,
    "hosvd": _hosvd_from_scatter,
    "saliency": _coords,
}


def compiled_programs() -> dict[str, int]:
    """How many programs each of PandA's jitted functions has compiled so far (a recompile guard).

    Calling `fit`, `refine`, `loss`, `hosvd` or `saliency` again with new values of the same
    shapes, dtypes and static settings (the same optimizer object, number of steps, minibatch
    size and precision) must not add a variant; compare the counts before and after a call to
    check that a workload does not recompile. The counts are process-wide and only grow.

    Returns:
      ``{name: count}`` for ``"fit_scan"`` (the scanned full-data steps of `fit`),
      ``"stream_step"`` (one step of a streamed `fit` / `fit_generator`), ``"init_states"``,
      ``"refine"``, ``"loss"``, ``"scatter"`` and ``"hosvd"`` (the HOSVD init) and
      ``"saliency"``.
    """
    return {name: int(fn._cache_size()) for name, fn in _JITTED.items()}
