"""Deprecated alias of the solver options (for one release): use `jaxedit.linalg` (or the
top-level `jaxedit.Dense`, `Woodbury`, `MatrixFree`, `ReferenceEig`, `SolverStats`)."""

import warnings

from .errors import ComplexEigenpairsWarning, ConvergenceWarning, SingularBackgroundWarning
from .linalg import (
    Auto,
    Dense,
    MatrixFree,
    ReferenceEig,
    SolverLike,
    SolverStats,
    Woodbury,
    as_solver as _as_solver,
)

warnings.warn(
    "jaxedit.solvers is deprecated: import the solvers from jaxedit.linalg (or jaxedit)",
    DeprecationWarning,
    stacklevel=2,
)

SHORTCUTS = {
    "dense": Dense,
    "woodbury": Woodbury,
    "matrix_free": MatrixFree,
    "reference": ReferenceEig,
}


def as_solver(solver: SolverLike, *, operator: bool = False):
    """Options object for a solver or its name (``"auto"``: `MatrixFree` for an operator,
    `Dense` otherwise); see `jaxedit.linalg.solver_from_name`."""
    s = _as_solver(solver)
    if isinstance(s, Auto):
        return MatrixFree() if operator else Dense()
    return s


__all__ = [
    "ComplexEigenpairsWarning",
    "ConvergenceWarning",
    "Dense",
    "MatrixFree",
    "ReferenceEig",
    "SingularBackgroundWarning",
    "SolverLike",
    "SolverStats",
    "Woodbury",
    "as_solver",
]
