"""ReSeFa: region-based semantic factorization (Zhu et al., ICML 2022) on Jacobians.

For a Jacobian ``J [H, W, C, D]`` (rows = pixels x channels) and a region mask ``M [H, W]``::

    M_f = J_fᵀJ_f / n_f,   M_b = J_bᵀJ_b / n_b (+ regularization * trace(M_b) * I)

(n = number of rows inside / outside the region, the reference's per-row means), and the
directions maximize the generalized Rayleigh quotient ``nᵀM_f n / nᵀM_b n``. The reference
solves ``eig(inv(M_b) @ M_f)`` and keeps real parts; here the pencil is solved as what it is,
symmetric-definite, by a solver of `jaxedit.linalg`.

`resefa` turns its input into pencil(s) once (`as_pencil`): a Jacobian array into
`RowPencil` (one per sample, or one for the mean), a `JacobianOperator` into a
`FunctionPencil`, `Moments` into a `MomentPencil`; then calls `jaxedit.linalg.pencil_eigh` and
issues the warnings once.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._typing import Jacobian
from ...errors import ComplexEigenpairsWarning, ConvergenceWarning, SingularBackgroundWarning
from ...jacobians import JacobianOperator
from ...linalg import (
    AbstractPencil,
    AbstractPencilSolver,
    MomentPencil,
    PencilSolution,
    RowPencil,
    SolverLike,
    SolverStats,
    check_k,
    check_regularization,
    pencil_eigh,
    resolve_solver,
    stack_stats,
)
from ...regions import RegionLike, region_mask
from ._moments import Moments, is_moments


@dataclasses.dataclass(frozen=True)
class ResefaResult:
    """Directions of a region.

    Attributes:
      directions: ``[k, D]`` (or ``[N, k, D]`` per sample), unit L2 rows, canonical sign
        (``reference``: numpy's vectors, real parts, arbitrary sign).
      eigenvalues: ``[k]`` (or ``[N, k]``): the generalized Rayleigh quotients
        ``nᵀM_f n / nᵀM_b n`` (reference normalization), descending.
      solver: the name of the solver that ran (``"dense"``, ``"woodbury"``, ``"matrix_free"``,
        ``"reference"``).
      stats: :class:`~jaxedit.solvers.SolverStats` (converged, iterations, residuals,
        condition number and how it was obtained, the trace of M_b used for the ridge).
      max_imag: ``reference`` only: largest |Im λ| / max |λ| among the kept eigenvalues.
      mask: ``[H, W]`` bool region on the Jacobian grid.
      n_foreground, n_background: row counts (pixels x channels).
      regularization: the ``tau`` in ``tau * trace(M_b) * I``.
      singular: M_b's condition number (exact, or the matrix-free lower bound) exceeds
        ``1e-2 / eps`` of the dtype (a :class:`SingularBackgroundWarning` was issued).
    """

    directions: Any
    eigenvalues: Any
    solver: str
    stats: SolverStats
    mask: np.ndarray
    n_foreground: int
    n_background: int
    regularization: float
    singular: bool
    max_imag: float | None = None

    @property
    def condition_number(self):
        """``stats.condition_number`` (see ``stats.condition_method``)."""
        return self.stats.condition_number

    @property
    def residuals(self):
        """``stats.residuals``."""
        return self.stats.residuals

    @property
    def iterations(self):
        """``stats.iterations``."""
        return self.stats.iterations

    @property
    def converged(self):
        """``stats.converged``."""
        return self.stats.converged


def _sing_threshold(dtype) -> float:
    return 1e-2 / float(jnp.finfo(dtype).eps)


def _row_weights(mask: np.ndarray, c: int, dtype):
    rowmask = np.repeat(mask.reshape(-1), c)
    n_f, n_b = int(rowmask.sum()), int((~rowmask).sum())
    return (jnp.asarray(rowmask / n_f, dtype), jnp.asarray(~rowmask / n_b, dtype), n_f, n_b)


def jacobian_moments(J, region: RegionLike) -> tuple[jax.Array, jax.Array]:
    """``(M_f, M_b)`` of a Jacobian and a region (no regularization).

    Args:
      J: Jacobian ``[H, W, C, D]``.
      region: bool mask ``[H, W]`` (any size; resampled), a Box, a preset name or
        ``(y0, x0, y1, x1)`` on the Jacobian grid.

    Returns:
      ``(M_f [D, D], M_b [D, D])``: the reference's per-row means.
    """
    J = jnp.asarray(J)
    h, w, c, d = J.shape
    wf, wb, _, _ = _row_weights(region_mask(region, (h, w)), c, J.dtype)
    return RowPencil(J.reshape(h * w * c, d), wf, wb).as_matrices()


@dataclasses.dataclass(frozen=True)
class PencilInput:
    """What `as_pencil` made of a `resefa` input.

    Attributes:
      pencils: one pencil per direction set.
      mask: ``[H, W]`` bool region on the Jacobian grid.
      n_f, n_b: rows inside / outside the region (per sample).
      squeeze: one direction set is returned without a leading N.
      dtype: the dtype of the products.
      source: ``"array"``, ``"operator"`` or ``"moments"``.
    """

    pencils: list[AbstractPencil]
    mask: np.ndarray
    n_f: int
    n_b: int
    squeeze: bool
    dtype: Any
    source: str


def _pick_moments(moments, region) -> Moments:
    if isinstance(moments, Mapping):
        if region is None and len(moments) == 1:
            region = next(iter(moments))
        if not isinstance(region, str) or region not in moments:
            raise ValueError(
                f"pick a region of the moments by name: one of {sorted(moments)}, got {region!r}"
            )
        return moments[region]
    m = moments
    if region is not None:
        if not (isinstance(region, str) and region == m.name):
            want = region_mask(region, m.settings.grid[:2])
            if not np.array_equal(want, m.mask):
                raise ValueError(
                    f"region {region!r} is not the region these moments were "
                    f"computed for ({m.name!r}, {int(m.mask.sum())} pixels)"
                )
    return m


def as_pencil(x, region: RegionLike | None = None, aggregate: str = "none") -> PencilInput:
    """The pencil(s) of a `resefa` input, with its checks.

    Args:
      x: Jacobian ``[H, W, C, D]``, ``[N, H, W, C, D]`` or ``[H, W, D]``; a `JacobianOperator`;
        `Moments` or a dict of them.
      region: as `resefa` (optional for moments).
      aggregate: ``"none"`` or ``"mean"``.

    Returns:
      `PencilInput`.

    Raises:
      TypeError: no region for a Jacobian.
      ValueError: bad arguments or a non-finite Jacobian.
    """
    if is_moments(x):
        m = _pick_moments(x, region)
        if aggregate not in ("none", "mean"):  # moments are averaged over their samples already
            raise ValueError(f"aggregate must be 'none' or 'mean', got {aggregate!r}")
        if int(m.n_samples) < 1:
            raise ValueError(f"the moments of region {m.name!r} hold no samples")
        p = MomentPencil(m.M_f, m.M_b)
        return PencilInput([p], m.mask, m.n_f, m.n_b, True, p.dtype, "moments")
    if region is None:
        raise TypeError("resefa() needs a region for a Jacobian")
    if aggregate not in ("none", "mean"):
        raise ValueError(f"aggregate must be 'none' or 'mean', got {aggregate!r}")
    if isinstance(x, JacobianOperator):
        if aggregate != "none":
            raise ValueError("aggregate='mean' needs a batch of Jacobians, not one operator")
        h, w, c = x.out_shape
        mask = region_mask(region, (h, w))
        wf, wb, n_f, n_b = _row_weights(mask, c, x.dtype)
        return PencilInput([x.pencil(wf, wb)], mask, n_f, n_b, True, x.dtype, "operator")
    J = jnp.asarray(x)
    if not jnp.issubdtype(J.dtype, jnp.floating):
        raise ValueError(f"J must be a float array, got {J.dtype}")
    if J.ndim == 3:
        J = J[..., None, :]
    if J.ndim == 4:
        single = True
        J = J[None]
    elif J.ndim == 5:
        single = False
    else:
        raise ValueError(f"J must be [H, W, C, D] or [N, H, W, C, D], got shape {tuple(J.shape)}")
    if not bool(jnp.all(jnp.isfinite(J))):
        bad = int(jnp.sum(~jnp.isfinite(J)))
        raise ValueError(
            f"J contains {bad} non-finite value(s) (NaN or inf): the Jacobian is not "
            f"usable (check the generator output and latents)"
        )
    n, h, w, c, d = J.shape
    mask = region_mask(region, (h, w))
    wf, wb, n_f, n_b = _row_weights(mask, c, J.dtype)
    j2 = J.reshape(n, h * w * c, d)
    groups = [j2] if aggregate == "mean" else [j2[i : i + 1] for i in range(n)]
    return PencilInput(
        [RowPencil(g, wf, wb) for g in groups],
        mask,
        n_f,
        n_b,
        single or aggregate == "mean",
        J.dtype,
        "array",
    )


def _refusal(source: str, solver: AbstractPencilSolver, why: str) -> str:
    name = type(solver).__name__
    if source == "operator":
        return (
            f"a JacobianOperator is solved matrix-free (solver='matrix_free' or "
            f"jaxedit.MatrixFree(...)); {name} needs the Jacobian array "
            f"(jaxedit.jacobian(...))"
        )
    if source == "moments":
        return (
            f"moments hold M_f and M_b only: {name} needs the Jacobian rows; use "
            f"Dense() ('auto'), ReferenceEig() or MatrixFree()"
        )
    return f"{name} cannot solve a {source} input: {why}"


def resefa(
    J: Jacobian | JacobianOperator | Moments | Mapping[str, Moments],
    region: RegionLike | None = None,
    *,
    k: int = 10,
    regularization: float = 0.0,
    solver: SolverLike = "auto",
    aggregate: str = "none",
    warn: bool = True,
) -> ResefaResult:
    """ReSeFa directions for a region.

    Args:
      J: Jacobian ``[H, W, C, D]`` or ``[N, H, W, C, D]`` (from :func:`jaxedit.jacobian`; a
        ``[H, W, D]`` array is read as C = 1), or a :class:`~jaxedit.JacobianOperator` (one
        sample, matrix-free), or :class:`~jaxedit.Moments` (many samples, from
        :func:`jaxedit.region_moments`; the region is optional, or names the entry of a dict of
        them; they are already averaged over their samples, so this equals
        ``resefa(J, mask, aggregate="mean")`` on the same samples).
      region: bool mask ``[H, W]`` (any size; resampled), a :class:`~jaxedit.regions.Box`, a
        preset name, or ``(y0, x0, y1, x1)`` on the Jacobian grid.
      k: number of directions.
      regularization: ``tau`` of ``M_b += tau * trace(M_b) * I`` (reference: off; 1e-3 when on).
      solver: an options object - :class:`~jaxedit.Dense` (Cholesky whitening + eigh),
        :class:`~jaxedit.Woodbury` (SVD of J_b + Sherman-Morrison-Woodbury),
        :class:`~jaxedit.MatrixFree` (block LOBPCG on products), :class:`~jaxedit.ReferenceEig`
        (numpy inv + eig, as the reference) - or its name (``"dense"``, ``"woodbury"``,
        ``"matrix_free"``, ``"reference"``: the defaults), or ``"auto"`` (``MatrixFree()`` for an
        operator, else ``Dense()``).
      aggregate: ``"none"`` (one set per sample) or ``"mean"`` (M_f and M_b averaged over samples;
        accepted and ignored for moments).
      warn: issue :class:`SingularBackgroundWarning` (M_b numerically singular),
        :class:`ConvergenceWarning` (the iteration stopped above its tolerance) and
        :class:`ComplexEigenpairsWarning` (reference); each says what to do.

    Returns:
      :class:`ResefaResult` (``.stats`` holds the diagnostics).

    Raises:
      ValueError: bad arguments, a non-finite Jacobian, a solver that does not fit the input.
      numpy.linalg.LinAlgError: M_b is singular and a direct solver produced no directions.
    """
    src = as_pencil(J, region, aggregate)
    tau = check_regularization(regularization)
    first = src.pencils[0]
    opts = resolve_solver(solver, first)
    why = opts.refusal(first)
    if why is not None:
        raise ValueError(_refusal(src.source, opts, why))
    k = check_k(k, first.dim)
    outs = [pencil_eigh(p, k, regularization=tau, solver=opts) for p in src.pencils]
    return _finish(outs, opts.name, src, tau, warn)


def resefa_moments(
    moments,
    region=None,
    *,
    k: int = 10,
    regularization: float = 0.0,
    solver: SolverLike = "auto",
    aggregate: str = "mean",
    warn: bool = True,
) -> ResefaResult:
    """`resefa` on `Moments` (``jaxedit.resefa(moments, ...)`` does the same).

    Args:
      moments: `Moments` or a dict of them (``region`` names the entry).
      region: optional; if given, must resolve to the stored mask.
      k: number of directions.
      regularization: tau.
      solver: ``Dense`` (``"auto"``), ``ReferenceEig`` or ``MatrixFree``; ``Woodbury`` needs the
        Jacobian rows.
      aggregate: accepted and ignored (the moments are averaged already).
      warn: as `resefa`.

    Returns:
      `ResefaResult`.
    """
    if not is_moments(moments):
        raise ValueError("resefa_moments needs Moments or a dict of them")
    return resefa(
        moments,
        region,
        k=k,
        regularization=regularization,
        solver=solver,
        aggregate=aggregate,
        warn=warn,
    )


def _finish(
    outs: list[PencilSolution], name: str, src: PencilInput, tau: float, warn: bool
) -> ResefaResult:
    """`ResefaResult` of the solutions, and the three warnings (once)."""
    squeeze, dtype, n_b, d = src.squeeze, src.dtype, src.n_b, src.pencils[0].dim
    dirs = np.stack([o.directions for o in outs])
    lams = np.stack([o.eigenvalues for o in outs])
    stats = stack_stats([o.stats for o in outs], squeeze)
    conds = np.array([o.stats.condition_number for o in outs], float)
    imag = None if outs[0].max_imag is None else max(float(o.max_imag or 0.0) for o in outs)
    iterative = outs[0].stats.tol is not None
    eps = float(jnp.finfo(dtype).eps)
    singular = bool(np.any(np.isinf(conds)) or np.any(conds > _sing_threshold(dtype)))
    bound = " (a lower bound)" if outs[0].stats.condition_method == "lower bound" else ""
    advice = "pass regularization > 0 (the reference's full_rank option uses 1e-3)" + (
        "" if dtype == jnp.float64 else " or compute in float64 (jax_enable_x64)"
    )
    if warn and singular:
        warnings.warn(
            f"M_b (background of the region, {n_b} rows, D={d}) is numerically singular in "
            f"{jnp.dtype(dtype).name}: condition number {np.max(conds):.3g}{bound} exceeds "
            f"1e-2/eps = {1e-2 / eps:.3g}; the directions are unreliable - {advice}",
            SingularBackgroundWarning,
            stacklevel=3,
        )
    if not np.all(np.isfinite(dirs)):
        if src.source == "operator":
            raise ValueError(
                "the matrix-free solver produced non-finite directions: the JacobianOperator's "
                "products are not finite (check the generator output at this latent)"
            )
        if iterative:
            raise np.linalg.LinAlgError(
                f"the matrix-free solver broke down (non-finite directions; M_b condition number "
                f">= {np.max(conds):.3g}); {advice}"
            )
        raise np.linalg.LinAlgError(
            f"solver {name!r} produced non-finite directions: M_b is singular "
            f"(condition number {np.max(conds):.3g}); {advice}"
        )
    if warn and iterative and not np.all(stats.converged):
        worst = float(np.max(stats.max_residual))
        warnings.warn(
            f"the matrix-free solver stopped after {np.max(stats.iterations)} iterations with "
            f"max residual {worst:.3g} > tol {stats.tol:.3g}: the directions are not converged - "
            f"raise MatrixFree(maxiter=...) or sketch_size (a better preconditioner), pass "
            f"regularization > 0 (M_b condition number >= {np.max(conds):.3g})"
            + (
                ""
                if dtype == jnp.float64
                else ", or compute in float64 (jax_enable_x64); "
                "float32 residuals cannot go much below eps * cond(M_b)"
            ),
            ConvergenceWarning,
            stacklevel=3,
        )
    if warn and imag is not None and imag > 1e3 * eps:
        warnings.warn(
            f"the reference eig(inv(M_b) @ M_f) returned complex eigenvalues (max |Im|/|λ| = "
            f"{imag:.3g}); their real parts were kept as the reference does - use a symmetric "
            f"solver ('dense') or regularization",
            ComplexEigenpairsWarning,
            stacklevel=3,
        )
    return ResefaResult(
        directions=dirs[0] if squeeze else dirs,
        eigenvalues=lams[0] if squeeze else lams,
        solver=name,
        stats=stats,
        mask=src.mask,
        n_foreground=src.n_f,
        n_background=src.n_b,
        regularization=float(tau),
        singular=singular,
        max_imag=imag,
    )


__all__ = [
    "PencilInput",
    "ResefaResult",
    "as_pencil",
    "jacobian_moments",
    "resefa",
    "resefa_moments",
]
