"""ReSeFa (region-based semantic factorization): directions from Jacobians, Jacobian operators
or many-sample region moments.

* `resefa` - the directions of a region (`ResefaResult`); `jacobian_moments` - ``(M_f, M_b)``
  of one Jacobian.
* `region_moments` - streaming, sharded moments over many samples (`Moments`, mergeable, saved
  to ``.npz`` by `save_moments`, read by `load_moments` / `read_moments`).
"""

from ._moments import (
    FORMAT as FORMAT,
    VERSION as VERSION,
    Moments as Moments,
    MomentSettings as MomentSettings,
    is_moments as is_moments,
    load_moments as load_moments,
    merge_moments as merge_moments,
    pack_mask as pack_mask,
    read_moments as read_moments,
    save_moments as save_moments,
)
from ._resefa import (
    PencilInput as PencilInput,
    ResefaResult as ResefaResult,
    as_pencil as as_pencil,
    jacobian_moments as jacobian_moments,
    resefa as resefa,
    resefa_moments as resefa_moments,
)
from ._stream import (
    GRAMS as GRAMS,
    compiled_programs as compiled_programs,
    default_mesh as default_mesh,
    generator_fingerprint as generator_fingerprint,
    moment_settings as moment_settings,
    region_moments as region_moments,
)

__all__ = [
    "FORMAT",
    "GRAMS",
    "MomentSettings",
    "Moments",
    "PencilInput",
    "ResefaResult",
    "VERSION",
    "as_pencil",
    "compiled_programs",
    "default_mesh",
    "generator_fingerprint",
    "is_moments",
    "jacobian_moments",
    "load_moments",
    "merge_moments",
    "moment_settings",
    "pack_mask",
    "read_moments",
    "region_moments",
    "resefa",
    "resefa_moments",
    "save_moments",
]
