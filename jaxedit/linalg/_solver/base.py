"""`AbstractPencilSolver`: what every solver implements (lineax's `AbstractLinearSolver`)."""

from __future__ import annotations

import abc

from ..._ops import as_precision
from .._pencil import AbstractPencil
from .._solution import PencilSolution


def check_precision(precision) -> None:
    """ValueError unless ``precision`` is a matmul precision `jaxedit` accepts."""
    as_precision(precision)


class AbstractPencilSolver(abc.ABC):
    """A solver for the top-k eigenpairs of a pencil ``(A, B + regularization * trace(B) * I)``.

    Subclasses are frozen dataclasses of options; they say which pencils they take
    (`accepts`), why they refuse the others (`refusal`) and solve (`solve`).
    """

    name: str = ""

    def select_solver(self, pencil: AbstractPencil) -> "AbstractPencilSolver":
        """The solver that runs on ``pencil``: this one (`Auto` picks one)."""
        return self

    def accepts(self, pencil: AbstractPencil) -> bool:
        """Whether `solve` can take this pencil."""
        return self.refusal(pencil) is None

    def refusal(self, pencil: AbstractPencil) -> str | None:
        """Why this solver cannot take ``pencil``, naming the solver(s) to use (None: it can)."""
        return None

    @abc.abstractmethod
    def solve(self, pencil: AbstractPencil, *, k: int, regularization: float) -> PencilSolution:
        """Top-k eigenpairs.

        Args:
          pencil: an accepted pencil.
          k: number of eigenpairs (checked).
          regularization: ``tau`` of the ridge ``tau * trace(B) * I`` (checked).

        Returns:
          `PencilSolution` (eigenvalues ``[k]``, directions ``[k, D]``, stats).
        """
