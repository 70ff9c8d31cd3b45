"""Symmetric-definite pencils and their top-k eigensolvers (lineax-shaped).

Knows nothing of generators, regions or files::

    from jaxedit import linalg
    sol = linalg.pencil_eigh(linalg.MomentPencil(mf, mb), k=10, regularization=1e-3)
    sol = linalg.pencil_eigh(linalg.RowPencil(rows, wf, wb), 10, solver=linalg.Woodbury())
    sol.eigenvalues, sol.directions, sol.stats

=============== ================================ ============================================
solver          pencils                          condition number of B
=============== ================================ ============================================
``Dense``       MomentPencil, RowPencil          exact (eigenvalues of B)
``Woodbury``    RowPencil                        exact (singular values of the B rows)
``MatrixFree``  all three                        a lower bound (Ritz values of B)
``ReferenceEig`` MomentPencil, RowPencil         exact (``numpy.linalg.cond``)
``Auto``        all: MatrixFree for a FunctionPencil, else Dense
=============== ================================ ============================================
"""

from ._common import (
    canonical_rows as canonical_rows,
    check_k as check_k,
    check_regularization as check_regularization,
)
from ._pencil import (
    AbstractPencil as AbstractPencil,
    FunctionPencil as FunctionPencil,
    MomentPencil as MomentPencil,
    RowPencil as RowPencil,
    basis_chunk as basis_chunk,
)
from ._solution import (
    PencilSolution as PencilSolution,
    SolverStats as SolverStats,
    stack_stats as stack_stats,
)
from ._solve import (
    SOLVERS as SOLVERS,
    SolverLike as SolverLike,
    as_solver as as_solver,
    compiled_programs as compiled_programs,
    pencil_eigh as pencil_eigh,
    resolve_solver as resolve_solver,
    solver_from_name as solver_from_name,
)
from ._solver._lobpcg import hutchpp_trace as hutchpp_trace, lobpcg_top as lobpcg_top
from ._solver.auto import Auto as Auto
from ._solver.base import AbstractPencilSolver as AbstractPencilSolver
from ._solver.dense import (
    Dense as Dense,
    condition_number as condition_number,
    generalized_eigh as generalized_eigh,
    regularize as regularize,
)
from ._solver.matrix_free import MatrixFree as MatrixFree
from ._solver.reference import ReferenceEig as ReferenceEig, reference_eig as reference_eig
from ._solver.woodbury import Woodbury as Woodbury, woodbury_eigh as woodbury_eigh

__all__ = [
    "AbstractPencil",
    "AbstractPencilSolver",
    "Auto",
    "Dense",
    "FunctionPencil",
    "MatrixFree",
    "MomentPencil",
    "PencilSolution",
    "ReferenceEig",
    "RowPencil",
    "SOLVERS",
    "SolverLike",
    "SolverStats",
    "Woodbury",
    "as_solver",
    "basis_chunk",
    "canonical_rows",
    "check_k",
    "check_regularization",
    "compiled_programs",
    "condition_number",
    "generalized_eigh",
    "hutchpp_trace",
    "lobpcg_top",
    "pencil_eigh",
    "reference_eig",
    "regularize",
    "resolve_solver",
    "solver_from_name",
    "stack_stats",
    "woodbury_eigh",
]
