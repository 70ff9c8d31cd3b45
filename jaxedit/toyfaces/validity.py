"""Measuring editing directions of the toy-face generator against its ground truth.

The generator was trained so that ``G(z) ~ render(factors_from_z(z))``, so every factor has a
known effect and a known owner part. Three ground-truth objects follow:

* **factor z edits** (`factor_z_edits`): ``z -> edit_factor(z, name, delta)`` moves one
  factor's normal score by ``delta`` with every other factor fixed; its images are the ideal
  local edit of that factor's part, up to the model's fitting error;
* **factor W directions** (`factor_w_directions`): ``dw/du_i`` at each sample, the W-space
  tangent of that edit through the mapping network (one direction per sample and factor);
* **image-change subspaces**: at a sample with W Jacobian ``J_n`` (pixels x w_dim), a set of W
  directions ``D`` changes the image within ``span(J_n Dᵀ)``. `subspace_agreement`
  compares a method's top-k directions with a part's factor directions by the principal angles
  between these pixel-space subspaces. Comparing image changes, not W vectors, is what makes the
  measure meaningful: W directions are not identifiable (W has more dimensions than there are
  factors, and components that the synthesis ignores render nothing), while the image change is
  exactly what an edit does; principal angles are invariant to the basis inside each subspace
  (a method may find "both eyes open" where the factors are "left eye", "right eye").

Every locality figure is `jaxedit.metrics.locality` of the same images (ROIR, masked MSE).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._typing import (
    DirectionSets,
    EditedImages,
    FactorDirections,
    Jacobian,
    ToyZ,
    WDirections,
    WPlus,
)
from ..metrics import locality
from ..regions import RegionLike
from ._latent import NUM_FACTORS, Z_DIM, normalize
from ._render import factor_index


def _edit_u(z, i: int, t):
    """Pure (traceable) `edit_factor`: z [N, Z_DIM], scalar t -> z' [N, Z_DIM]."""
    u = normalize(z)
    u_f = u[:, :NUM_FACTORS].at[:, i].add(t)
    nuis = u[:, NUM_FACTORS:]
    room = Z_DIM - jnp.sum(u_f * u_f, axis=-1, keepdims=True)
    norm = jnp.sqrt(jnp.sum(nuis * nuis, axis=-1, keepdims=True))
    return jnp.concatenate([u_f, nuis * jnp.sqrt(room) / norm], axis=-1)


def _check_representable(z_edited, name: str, delta) -> None:
    if not bool(jnp.all(jnp.isfinite(z_edited))):
        raise ValueError(
            f"moving {name} by {delta} is not representable for some samples (the "
            f"factors would need more than the whole norm of z); use a smaller delta"
        )


def _check_gen(gen):
    if getattr(gen, "z_dim", None) != Z_DIM or getattr(gen, "c_dim", 0) != 0:
        raise ValueError(
            f"expected the toy-face generator (z_dim {Z_DIM}, c_dim 0), got z_dim "
            f"{getattr(gen, 'z_dim', None)}"
        )


def factor_w_directions(gen, z: ToyZ, names: Sequence[str], *, dtype=None) -> FactorDirections:
    """``dw/du`` of each named factor at each sample, unit-normalized.

    z ``[N, Z_DIM]`` -> ``[N, len(names), w_dim]`` (forward-mode derivative of
    ``mapping(edit_factor(z, name, t))`` at ``t = 0``).
    """
    _check_gen(gen)
    z = jnp.asarray(z, dtype or jax.dtypes.canonicalize_dtype(jnp.float64))
    out = []
    for name in names:
        i = factor_index(name)

        def w_of(t, i=i):
            return gen.mapping(_edit_u(z, i, t), dtype=z.dtype)[:, 0]

        _, dw = jax.jvp(w_of, (jnp.zeros((), z.dtype),), (jnp.ones((), z.dtype),))
        dw = np.asarray(dw, np.float64)
        out.append(dw / np.linalg.norm(dw, axis=-1, keepdims=True))
    return np.stack(out, axis=1)


def edited_images(gen, ws: WPlus, directions: WDirections, alphas, *, dtype=None) -> EditedImages:
    """ws ``[N, num_ws, w_dim]`` moved by ``alpha * d`` on every slot, with one direction for all
    samples (``directions [w_dim]``) or one per sample (``[N, w_dim]``; unit-normalized here).
    -> images ``[A, N, H, W, C]``."""
    ws = np.asarray(ws, np.float64)
    d = np.asarray(directions, np.float64)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    d = np.broadcast_to(d, (ws.shape[0], ws.shape[2]))
    return np.stack(
        [
            np.asarray(gen.synthesis(ws + float(a) * d[:, None, :], dtype=dtype))
            for a in np.asarray(alphas, np.float64).reshape(-1)
        ]
    )


def direction_locality(
    gen, ws: WPlus, directions: WDirections, region: RegionLike, alphas, *, base=None, dtype=None
) -> dict:
    """Locality of a W edit at each alpha (``alpha != 0``): ``{"alphas", "roir" [A],
    "mse_inside" [A], "mse_outside" [A], "roir_per_sample" [A, N], "roir_mean"}`` where
    ``roir_mean`` averages over the alphas. ``base``: the unedited images (computed if None)."""
    alphas = [float(a) for a in np.asarray(alphas, np.float64).reshape(-1) if a != 0]
    if base is None:
        base = np.asarray(gen.synthesis(np.asarray(ws), dtype=dtype))
    imgs = edited_images(gen, ws, directions, alphas, dtype=dtype)
    return _collect(base, imgs, region, alphas)


def _collect(base, imgs, region, alphas) -> dict:
    rows = [locality(base, im, region) for im in imgs]
    return {
        "alphas": alphas,
        "roir": [r["roir"] for r in rows],
        "mse_inside": [r["mse_inside"] for r in rows],
        "mse_outside": [r["mse_outside"] for r in rows],
        "roir_per_sample": [r["roir_per_sample"] for r in rows],
        "roir_mean": float(np.mean([r["roir"] for r in rows])),
    }


def factor_z_edits(
    gen, z: ToyZ, name: str, region: RegionLike, deltas, *, base=None, dtype=None
) -> dict:
    """Locality (as `direction_locality`) of the exact ground-truth edit of factor ``name``:
    ``G(edit_factor(z, name, delta))`` against ``G(z)`` for each ``delta != 0`` (normal-score
    units)."""
    _check_gen(gen)
    deltas = [float(a) for a in np.asarray(deltas, np.float64).reshape(-1) if a != 0]
    z = jnp.asarray(z, dtype or jax.dtypes.canonicalize_dtype(jnp.float64))
    if base is None:
        base = np.asarray(gen(z, dtype=dtype))
    i = factor_index(name)
    edited = [_edit_u(z, i, d) for d in deltas]
    for d, e in zip(deltas, edited):
        _check_representable(e, name, d)
    imgs = np.stack([np.asarray(gen(e, dtype=dtype)) for e in edited])
    out = _collect(base, imgs, region, deltas)
    out["deltas"] = out.pop("alphas")
    return out


def factor_edit_fidelity(gen, z: ToyZ, name: str, delta: float = 1.0, *, dtype=None) -> dict:
    """How faithfully the generator reproduces one factor's edit: with ``z' = edit_factor(z,
    name, delta)``, ``d_G = G(z') - G(z)`` and ``d_R = render(z') - render(z)`` (all samples
    together), ``{"cosine": <d_G, d_R> / (|d_G| |d_R|), "energy_ratio": |d_G| / |d_R|}``
    (1 and 1 for a perfect fit)."""
    from ._latent import _factors_from_z
    from ._render import _render_batch

    _check_gen(gen)
    z = jnp.asarray(z, dtype or jax.dtypes.canonicalize_dtype(jnp.float64))
    z1 = _edit_u(z, factor_index(name), float(delta))
    _check_representable(z1, name, delta)
    d_g = np.asarray(gen(z1, dtype=dtype), np.float64) - np.asarray(gen(z, dtype=dtype), np.float64)
    d_r = np.asarray(_render_batch(_factors_from_z(z1)), np.float64) - np.asarray(
        _render_batch(_factors_from_z(z)), np.float64
    )
    ng, nr = np.linalg.norm(d_g), np.linalg.norm(d_r)
    return {
        "cosine": float(np.sum(d_g * d_r) / max(ng * nr, 1e-300)),
        "energy_ratio": float(ng / max(nr, 1e-300)),
    }


def _orth(a: np.ndarray, rtol: float = 1e-8) -> np.ndarray:
    """Orthonormal basis of the column space of a [rows, k] (rank-revealing SVD)."""
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    keep = s > rtol * max(s.max(initial=0.0), 1e-300)
    return u[:, keep]


def subspace_agreement(
    J: Jacobian, directions_a: DirectionSets, directions_b: DirectionSets
) -> dict:
    """Principal angles between the image-change subspaces of two direction sets.

    Args:
      J: W Jacobians ``[N, H, W, C, D]`` (`jaxedit.jacobian`, space ``"w"``).
      directions_a, directions_b: ``[k, D]`` (shared by all samples) or ``[N, k, D]``.
    Returns:
      ``{"cosines": [N, min(k_a, k_b)]`` principal cosines per sample (descending),
      ``"overlap"``: mean over samples of ``Σ cos² / min(k_a, k_b)`` (1: one subspace contains
      the other, 0: orthogonal; the chance level is that of random W directions, well above
      ``k / D`` because ``J`` concentrates image changes on its dominant singular directions),
      ``"top_cosine"``: mean over samples of the largest cosine}.
    """
    J = np.asarray(J, np.float64)
    n, d = J.shape[0], J.shape[-1]
    rows = J.reshape(n, -1, d)
    a = np.broadcast_to(np.asarray(directions_a, np.float64), (n,) + np.shape(directions_a)[-2:])
    b = np.broadcast_to(np.asarray(directions_b, np.float64), (n,) + np.shape(directions_b)[-2:])
    cos = []
    for i in range(n):
        qa, qb = _orth(rows[i] @ a[i].T), _orth(rows[i] @ b[i].T)
        s = np.linalg.svd(qa.T @ qb, compute_uv=False)
        k = min(a.shape[1], b.shape[1])
        cos.append(np.pad(np.clip(s, 0, 1), (0, max(0, k - s.size)))[:k])
    cos = np.stack(cos)
    return {
        "cosines": cos.tolist(),
        "overlap": float(np.mean(np.sum(cos**2, 1) / cos.shape[1])),
        "top_cosine": float(np.mean(cos[:, 0])),
    }


__all__ = [
    "direction_locality",
    "edited_images",
    "factor_edit_fidelity",
    "factor_w_directions",
    "factor_z_edits",
    "subspace_agreement",
]
