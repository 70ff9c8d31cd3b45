"""Deprecated alias (for one release): ReSeFa lives in `jaxedit.methods.resefa` (``resefa``,
``ResefaResult``, ``jacobian_moments``, the former ``region_moments(J, region)``), the solve
engine in `jaxedit.linalg` (``pencil_eigh`` on a ``MomentPencil`` / ``RowPencil``)."""

import warnings

from .errors import ComplexEigenpairsWarning, ConvergenceWarning, SingularBackgroundWarning
from .linalg import SOLVERS as _SOLVERS, MatrixFree, MomentPencil, RowPencil, pencil_eigh
from .methods.resefa import ResefaResult, jacobian_moments as region_moments, resefa

warnings.warn(
    "jaxedit.region_factorization is deprecated: import from jaxedit.methods.resefa "
    "(region_moments(J, region) is now jacobian_moments) or jaxedit.linalg",
    DeprecationWarning,
    stacklevel=2,
)

SOLVERS = tuple(_SOLVERS)


def solve_moments(mf, mb, *, k: int, regularization: float = 0.0, solver="dense"):
    """``pencil_eigh(MomentPencil(mf, mb), k, ...)`` (deprecated)."""
    return pencil_eigh(MomentPencil(mf, mb), k, regularization=regularization, solver=solver)


def rows_lobpcg(
    rows, wf, wb, *, k: int, regularization: float = 0.0, solver: MatrixFree = MatrixFree()
):
    """``pencil_eigh(RowPencil(rows, wf, wb), k, solver=MatrixFree(...))`` (deprecated)."""
    return pencil_eigh(RowPencil(rows, wf, wb), k, regularization=regularization, solver=solver)


__all__ = [
    "ComplexEigenpairsWarning",
    "ConvergenceWarning",
    "ResefaResult",
    "SOLVERS",
    "SingularBackgroundWarning",
    "region_moments",
    "resefa",
    "rows_lobpcg",
    "solve_moments",
]
