"""Recompile guards: how many programs each jitted kernel of jaxedit has compiled so far.

A workload that runs again with new values of the same shapes, dtypes and static settings must
not compile anything new; compare `compiled_programs` before and after::

    before = jaxedit.debug.compiled_programs()
    jaxedit.jacobian(gen, other_ws)                    # same shapes: no new program
    assert jaxedit.debug.compiled_programs() == before

The counts are process-wide and only grow. Each namespace also has its own hook
(`jaxedit.linalg.compiled_programs`, `jaxedit.panda.compiled_programs`, ...); this one gathers
them under prefixed names. It reads the jitted functions' compilation caches, so it has no
counters of its own and costs nothing when unused.
"""

from __future__ import annotations

from . import jacobians
from .linalg import compiled_programs as _linalg
from .methods import eis, panda
from .methods.resefa import compiled_programs as _moments
from .models._common import compiled_programs as _models
from .projection import compiled_programs as _projection


def compiled_programs() -> dict[str, int]:
    """Compiled programs of every jitted kernel, by ``"<namespace>.<kernel>"``.

    Returns:
      ``{"models.StyleGAN2Generator.mapping": n, "jacobians.jacobian": n, "linalg.dense": n,
      "moments.region_moments": n, "panda.fit_scan": n, "eis.kmeans_restart": n,
      "projection.project_step": n, ...}``.
    """
    out: dict[str, int] = {}
    for prefix, counts in (
        ("models", _models()),
        ("jacobians", jacobians.compiled_programs()),
        ("linalg", _linalg()),
        ("panda", panda.compiled_programs()),
        ("eis", eis.compiled_programs()),
        ("projection", _projection()),
    ):
        out.update({f"{prefix}.{k}": int(v) for k, v in counts.items()})
    out["moments.region_moments"] = int(_moments())
    return out


__all__ = ["compiled_programs"]
