"""`Auto`: picks a solver for the pencil (lineax's `AutoLinearSolver`)."""

from __future__ import annotations

import dataclasses

from .._pencil import AbstractPencil, FunctionPencil
from .base import AbstractPencilSolver
from .dense import Dense
from .matrix_free import MatrixFree


@dataclasses.dataclass(frozen=True)
class Auto(AbstractPencilSolver):
    """`MatrixFree` with its defaults for a `FunctionPencil` (products only), `Dense` with its
    defaults otherwise (the ``"auto"`` solver name)."""

    name = "auto"

    def select_solver(self, pencil: AbstractPencil) -> AbstractPencilSolver:
        """The solver `Auto` runs on ``pencil``.

        Args:
          pencil: any pencil.

        Returns:
          ``MatrixFree()`` or ``Dense()``.
        """
        return MatrixFree() if isinstance(pencil, FunctionPencil) else Dense()

    def solve(self, pencil, *, k, regularization=0.0):
        return self.select_solver(pencil).solve(pencil, k=k, regularization=regularization)
