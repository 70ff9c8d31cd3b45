"""`AbstractPencilSolver`: what every solver implements (lineax's `AbstractLinearSolver`)."""

from __future__ import annotations

import abc
from typing import Any

from ..._ops import as_precision
from .._pencil import AbstractPencil
from .._solution import PencilSolution


def compiled(fn: Any) -> int:
    """Number of programs a ``jax.jit``-wrapped function has compiled."""
    return int(fn._cache_size())


def check_precision(precision) -> None:
    """ValueError unless ``precision`` is a matmul precision `jaxedit` accepts."""
    as_precision(precision)


class AbstractPencilSolver(abc.ABC):
    """A solver for the top-k eigenpairs of a pencil ``(A, B + regularization * trace(B) * I)``.

    Subclasses are frozen dataclasses of options; they say which pencils they take
    (`accepts`), why they refuse the others (`refusal`) and solve (`solve`).
    """

    name: str = ""

    def select_solver(self, pencil: AbstractPencil) -> AbstractPencilSolver:
        """The solver that runs on ``pencil``: this one (`Auto` picks one)."""
        return self

    def accepts(self, pencil: AbstractPencil) -> bool:
        """Whether `solve` can take this pencil."""
        return self.refusal(pencil) is None

    def refusal(self, pencil: AbstractPencil) -> str | None:
        """Why this solver cannot take ``pencil``, naming the solver(s) to use (None: it can)."""
        return None

    def check(self, pencil: AbstractPencil) -> None:
        """Raise unless this solver takes ``pencil``.

        Args:
          pencil: any pencil.

        Raises:
          ValueError: naming the solver(s) to use instead.
        """
        why = self.refusal(pencil)
        if why is not None:
            raise ValueError(f"{type(self).__name__} cannot solve a {type(pencil).__name__}: {why}")

    @abc.abstractmethod
    def solve(self, pencil: AbstractPencil, *, k: int, regularization: float) -> PencilSolution:
        """Top-k eigenpairs.

        Args:
          pencil: an accepted pencil.
          k: number of eigenpairs (checked).
          regularization: ``tau`` of the ridge ``tau * trace(B) * I`` (checked).

        Returns:
          `PencilSolution` (eigenvalues ``[k]``, directions ``[k, D]``, stats).

        Raises:
          ValueError: an unsuitable pencil (see `check`) or bad ``k`` / ``regularization``.
        """
