"""Deprecated alias (for one release): the generalized Rayleigh quotient solvers live in
`jaxedit.linalg` (``canonical_rows``, ``generalized_eigh``, ``woodbury_eigh``, ...).

No warning on import yet: ``sefa.py`` and ``spectra.py`` still import ``canonical_rows`` from
here; once they import it from `jaxedit.linalg`, delete this module.
"""

from .linalg import (
    canonical_rows,
    condition_number,
    generalized_eigh,
    reference_eig,
    regularize,
    woodbury_eigh,
)

__all__ = ["canonical_rows", "condition_number", "generalized_eigh", "reference_eig", "regularize",
           "woodbury_eigh"]
