"""`pencil_eigh`: the one entry point of the solvers, and `solver_from_name`: the one place
where solver names are parsed."""

from __future__ import annotations

from ._common import check_regularization
from ._pencil import AbstractPencil
from ._solution import PencilSolution
from ._solver.auto import Auto
from ._solver.base import AbstractPencilSolver, compiled
from ._solver.dense import Dense, generalized_eigh
from ._solver.matrix_free import MatrixFree, compiled_programs as _matrix_free_programs
from ._solver.reference import ReferenceEig
from ._solver.woodbury import Woodbury, woodbury_eigh

SOLVERS: dict[str, type[AbstractPencilSolver]] = {
    "auto": Auto,
    "dense": Dense,
    "woodbury": Woodbury,
    "matrix_free": MatrixFree,
    "reference": ReferenceEig,
}
"""Solver names (``--solver`` of the CLI, strings accepted by `jaxedit.resefa`)."""

SolverLike = AbstractPencilSolver | str


def solver_from_name(name: str, **options) -> AbstractPencilSolver:
    """The solver called ``name`` with ``options`` (its dataclass fields).

    Args:
      name: ``"auto"``, ``"dense"``, ``"woodbury"``, ``"matrix_free"`` or ``"reference"``.
      **options: fields of that solver, e.g. ``tol=1e-6`` for ``"matrix_free"``.

    Returns:
      The solver object, e.g. ``MatrixFree(tol=1e-6)``.

    Raises:
      ValueError: an unknown name, or an option the solver does not have.
    """
    if not isinstance(name, str) or name not in SOLVERS:
        raise ValueError(
            f"solver must be 'auto', one of "
            f"{sorted(n for n in SOLVERS if n != 'auto')} or an options object "
            f"(jaxedit.Dense(), Woodbury(), MatrixFree(), ReferenceEig()), "
            f"got {name!r}"
        )
    cls = SOLVERS[name]
    fields = set(getattr(cls, "__dataclass_fields__", {}))
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"solver {name!r} has no option(s) {unknown}; it has {sorted(fields)}")
    return cls(**options)


def as_solver(solver: SolverLike) -> AbstractPencilSolver:
    """A solver object from a solver, its class or its name (see `solver_from_name`).

    Args:
      solver: an `AbstractPencilSolver`, a subclass of it, or a name.

    Returns:
      The solver object (a class: built with its defaults).

    Raises:
      ValueError: anything else.
    """
    if isinstance(solver, AbstractPencilSolver):
        return solver
    if isinstance(solver, type) and solver in SOLVERS.values():
        return solver()
    return solver_from_name(solver)


def resolve_solver(solver: SolverLike, pencil: AbstractPencil) -> AbstractPencilSolver:
    """The concrete solver that runs on ``pencil`` (`Auto` resolved); not checked against it."""
    solver = as_solver(solver)
    return solver.select_solver(pencil)


def pencil_eigh(
    pencil: AbstractPencil, k: int, *, regularization: float = 0.0, solver: SolverLike = Auto()
) -> PencilSolution:
    """Top-k eigenpairs of ``(A, B + regularization * trace(B) * I)``.

    Args:
      pencil: `MomentPencil`, `RowPencil` or `FunctionPencil` (D = ``pencil.dim``).
      k: number of eigenpairs, in ``[1, D]``.
      regularization: ``tau`` >= 0 of the ridge (``trace(B)`` of the unregularized B).
      solver: a solver object or its name (default `Auto`).

    Returns:
      `PencilSolution`: eigenvalues ``[k]`` descending, directions ``[k, D]``, stats.

    Raises:
      ValueError: bad arguments, or a solver that cannot take this pencil (the message names the
        solver(s) to use).
    """
    solver = resolve_solver(solver, pencil)
    solver.check(pencil)
    return solver.solve(pencil, k=k, regularization=check_regularization(regularization))


def compiled_programs() -> dict[str, int]:
    """How many programs each jitted solver kernel has compiled so far (a recompile guard).

    Returns:
      ``{"dense", "woodbury", "matrix_free_moments", "matrix_free_rows",
      "matrix_free_function"}`` -> number of compiled programs (one per shape and static
      option set; new values must not add any).
    """
    out = {"dense": compiled(generalized_eigh), "woodbury": compiled(woodbury_eigh)}
    out.update({f"matrix_free_{k}": v for k, v in _matrix_free_programs().items()})
    return out
