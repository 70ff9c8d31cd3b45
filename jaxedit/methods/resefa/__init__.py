"""ReSeFa (region-based semantic factorization): directions from Jacobians, Jacobian operators
or many-sample region moments.

* `resefa` - the directions of a region (`ResefaResult`); `jacobian_moments` - ``(M_f, M_b)``
  of one Jacobian.
* `region_moments` - streaming, sharded moments over many samples (`Moments`, mergeable, saved
  to ``.npz`` by `save_moments`, read by `load_moments` / `read_moments`).
"""

from ._moments import FORMAT as FORMAT
from ._moments import VERSION as VERSION
from ._moments import Moments as Moments
from ._moments import MomentSettings as MomentSettings
from ._moments import is_moments as is_moments
from ._moments import load_moments as load_moments
from ._moments import merge_moments as merge_moments
from ._moments import pack_mask as pack_mask
from ._moments import read_moments as read_moments
from ._moments import save_moments as save_moments
from ._resefa import PencilInput as PencilInput
from ._resefa import ResefaResult as ResefaResult
from ._resefa import as_pencil as as_pencil
from ._resefa import jacobian_moments as jacobian_moments
from ._resefa import resefa as resefa
from ._resefa import resefa_moments as resefa_moments
from ._stream import GRAMS as GRAMS
from ._stream import compiled_programs as compiled_programs
from ._stream import default_mesh as default_mesh
from ._stream import generator_fingerprint as generator_fingerprint
from ._stream import moment_settings as moment_settings
from ._stream import region_moments as region_moments

__all__ = ["FORMAT", "GRAMS", "MomentSettings", "Moments", "PencilInput", "ResefaResult",
           "VERSION", "as_pencil", "compiled_programs", "default_mesh", "generator_fingerprint",
           "is_moments", "jacobian_moments", "load_moments", "merge_moments", "moment_settings",
           "pack_mask", "read_moments", "region_moments", "resefa", "resefa_moments",
           "save_moments"]
