"""`ReferenceEig`: the ReSeFa reference exactly, ``numpy.linalg.eig(inv(B) @ A)``."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .._common import check_k, check_regularization
from .._solution import PencilSolution, direct_stats
from .base import AbstractPencilSolver
from .dense import matrices_of, matrix_refusal


def reference_eig(a, b, *, k: int | None = None, regularization: float = 0.0):
    """The ReSeFa reference, exactly: ``eig(inv(B) @ A)``, real parts, sorted descending.

    NumPy in the inputs' dtype. ``regularization > 0`` adds the reference's full-rank term as it
    does, ``B + tau * np.trace(B) * np.eye(D)``: ``np.eye`` is float64, so float32 inputs are
    promoted to float64 (the reference's ``--full_rank`` runs in float64). Directions are
    numpy's unit eigenvectors with their imaginary parts dropped (not renormalized, arbitrary
    sign).

    Args:
      a: ``[D, D]``.
      b: ``[D, D]``.
      k: number of pairs (None: all).
      regularization: tau.

    Returns:
      (eigenvalues [k], directions [k, D], largest |imaginary part| among the kept eigenvalues
      relative to the largest |eigenvalue|, the (regularized) B that was inverted).
    """
    a, b = np.asarray(a), np.asarray(b)
    if regularization:
        b = b + regularization * np.trace(b) * np.eye(b.shape[0])
    t = np.linalg.inv(b) @ a
    val, vec = np.linalg.eig(t)
    order = np.argsort(-np.real(val))
    if k is not None:
        order = order[:k]
    imag = float(
        np.max(np.abs(np.imag(val[order])), initial=0.0)
        / max(float(np.max(np.abs(val))), np.finfo(float).tiny)
    )
    return np.real(val)[order], np.real(vec).T[order], imag, b


@dataclasses.dataclass(frozen=True)
class ReferenceEig(AbstractPencilSolver):
    """The ReSeFa reference exactly: ``numpy.linalg.eig(inv(M_b) @ M_f)``, real parts, sorted.

    NumPy, in the input's dtype; with ``regularization > 0`` the ridge is added as the original
    does (``M_b + tau * trace(M_b) * np.eye(D)``), which promotes float32 to float64.
    """

    name = "reference"

    def refusal(self, pencil):
        return matrix_refusal("ReferenceEig", pencil)

    def solve(self, pencil, *, k, regularization=0.0):
        self.check(pencil)
        mf, mb = matrices_of(pencil)
        k = check_k(k, mf.shape[-1])
        tau = check_regularization(regularization)
        trace = float(jnp.trace(mb)) if tau else None
        lam, dirs, imag, breg = reference_eig(
            np.asarray(mf), np.asarray(mb), k=k, regularization=tau
        )
        cond = np.linalg.cond(breg)
        cond = float(cond) if np.isfinite(cond) else float("inf")
        with np.errstate(all="ignore"):
            res = np.linalg.norm(
                dirs @ np.asarray(mf) - lam[:, None] * (dirs @ breg), axis=1
            ) / np.linalg.norm(dirs @ np.asarray(mf), axis=1)
        return PencilSolution(
            lam, dirs, direct_stats(lam, dirs, res, cond, "exact", tau, trace), self.name, imag
        )
