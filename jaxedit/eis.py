"""Editing in Style (Collins et al., CVPR 2020) on StyleGAN2: local style transfer between images.

Pipeline (``IVRL/GANLocalEditing``, StyleGAN1 there; reimplemented, not ported):

1. **Catalog.** Every pixel of every sample's feature map at one conv layer (``[N·H·W, C]``) is
   clustered with :func:`spherical_kmeans` (rows L2-normalized, unit centroids). Each cluster is a
   part (eyes, mouth...); :meth:`Catalog.annotate` names groups of clusters.
2. **Contributions.** For every style layer l and part k,
   ``M_l[k, c] = Σ_{n,h,w} A²[n,h,w,c]·U_k[n,h,w] / Σ_{n,h,w} A²[n,h,w,c]``: the share of channel
   c's energy that falls inside part k. ``A`` is the **input** of the modulated conv that style
   ``s_l`` scales, ``U_k`` the part mask resized to A's resolution (nearest, as the reference;
   ``"area"`` averages instead). Rows sum to 1 over parts that cover the image.
3. **Query.** Per layer, which channels to transfer: :func:`query` (the reference's sequential
   rule, the paper's in/out ratio reading of rho, or the simultaneous ``min(1, λM)``).
4. **Transfer.** ``s_l = (1 − q_l)·s_T + q_l·s_R`` per style layer (exact at q = 0 and q = 1),
   then synthesis from the mixed styles.
5. **Locality.** :func:`lab_squared_error` (the reference's CIELAB error) and :func:`in_out_mse`.

What changes for StyleGAN2 (the reference is StyleGAN1-only):

* A StyleGAN2 style ``s_l`` (``gen.styles``) multiplies the **input** channels of layer l's
  modulated 3x3 conv (or ToRGB 1x1 conv), then the weights are demodulated. So the features
  whose energy defines ``M_l`` are the conv's *input*: for ``bR.conv0`` (the upsampling conv) the
  previous block's output at R/2, for ``bR.conv1`` the output of ``bR.conv0``, for ``bR.torgb``
  the output of ``bR.conv1``, for ``b4.conv1`` the learned constant (see :func:`layer_inputs`).
* There is no instance norm, so channel energies are not unit: ``M`` divides by ``Σ A²``
  explicitly (the paper's ``1/(NHW)`` normalization relies on AdaIN's unit variance).
* ToRGB layers have styles too; they are interpolated like the others (``layers=`` restricts).
* Styles are one vector per layer (no separate AdaIN bias), so the whole vector is interpolated,
  as the reference does for 2-D styles.

Shapes: ws ``[N, num_ws, w_dim]`` (``[N, w_dim]`` is broadcast to all slots), images
``[N, H, W, 3]`` in [-1, 1], features NHWC, masks / heatmaps ``[N, K, H, W]``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _ops
from ._checks import check_finite

QUERY_MODES = ("reference", "ratio", "simultaneous")
RESIZE_MODES = ("nearest", "area")
CATALOG_FORMAT = "jaxedit.eis.catalog/1"
_HIGHEST = lax.Precision.HIGHEST
_LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


from .errors import KMeansConvergenceWarning


# ------------------------------------------------------------------------------------------------
# Validation helpers
# ------------------------------------------------------------------------------------------------
def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_finite(x, name: str):
    """Raise ValueError naming ``name`` when a concrete array has NaN/inf entries (tracers pass)."""
    return check_finite(name, x)


def _float_dtype(x=None):
    if x is not None and jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating):
        return jnp.asarray(x).dtype
    return _ops.default_float_dtype()


def _as_key(key):
    if key is None:
        return jax.random.key(0)
    if isinstance(key, (int, np.integer)):
        return jax.random.key(int(key))
    return key


def _check_gen(gen) -> None:
    if not (hasattr(gen, "styles") and hasattr(gen, "synthesis_from_styles")
            and hasattr(gen, "features")):
        raise ValueError(f"Editing in Style needs a StyleGAN2 generator (styles / features), got "
                         f"{type(gen).__name__}")


def _as_ws(gen, latents, name: str = "latents", dtype=None) -> jax.Array:
    """``[N, w_dim]`` or ``[N, num_ws, w_dim]`` -> ``[N, num_ws, w_dim]`` (finite, checked)."""
    lat = jnp.asarray(latents, dtype or _float_dtype())
    if lat.ndim == 2 and lat.shape[1] == gen.w_dim:
        lat = jnp.broadcast_to(lat[:, None], (lat.shape[0], gen.num_ws, gen.w_dim))
    if lat.ndim != 3 or lat.shape[1:] != (gen.num_ws, gen.w_dim):
        raise ValueError(f"{name} must be ws [N, {gen.num_ws}, {gen.w_dim}] or w [N, {gen.w_dim}], "
                         f"got shape {tuple(lat.shape)}")
    if lat.shape[0] == 0:
        raise ValueError(f"{name} is empty (N = 0)")
    return _check_finite(lat, name)


def _pair(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def _check_resize(resize: str) -> str:
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    return resize


# ------------------------------------------------------------------------------------------------
# Spherical k-means
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SphericalKMeansResult:
    """Result of :func:`spherical_kmeans`.

    Attributes:
      centroids: ``[k, C]`` unit vectors.
      labels: ``[N]`` int32, each row's most similar centroid (largest cosine).
      objective: ``Σ_i (1 − cos(x_i, c_{labels_i}))`` over all N rows (lower is better; half the
        squared Euclidean inertia of the unit rows to the unit centroids).
      n_iter: Lloyd iterations (full batch) or mini-batch steps of the kept restart.
      converged: whether the kept restart met its stopping rule before ``max_iter``.
      restart_objectives: ``[n_init]`` objective of every restart (the minimum is kept).
    """

    centroids: jax.Array
    labels: jax.Array
    objective: float
    n_iter: int
    converged: bool
    restart_objectives: np.ndarray


def _normalize_rows(x: jax.Array) -> jax.Array:
    n = jnp.linalg.norm(x, axis=-1, keepdims=True)
    return x / jnp.where(n > 0, n, 1)


def _cos(x: jax.Array, c: jax.Array) -> jax.Array:
    """[M, C] x [k, C] -> [M, k] cosines of unit rows."""
    return jnp.dot(x, c.T, precision=_HIGHEST)


def _kmeanspp(X: jax.Array, k: int, key: jax.Array, n_trials: int) -> jax.Array:
    """Greedy k-means++ (as scikit-learn: ``n_trials`` candidates per centre, D² sampling with
    D² = ‖x − c‖² = 2 − 2 cos on unit rows). X: [M, C] unit rows -> [k, C]."""
    m = X.shape[0]
    key, sub = jax.random.split(key)
    first = jax.random.randint(sub, (), 0, m)
    centers = jnp.zeros((k, X.shape[1]), X.dtype).at[0].set(X[first])
    d2 = jnp.maximum(2 - 2 * _cos(X, X[first][None])[:, 0], 0)

    def body(j, carry):
        centers, d2, key = carry
        key, sub = jax.random.split(key)
        total = d2.sum()
        logits = jnp.where(total > 0, jnp.log(jnp.where(d2 > 0, d2, 0)), 0.0)
        cand = jax.random.categorical(sub, logits, shape=(n_trials,))
        cd2 = jnp.maximum(2 - 2 * _cos(X, X[cand]), 0)               # [M, T]
        new = jnp.minimum(d2[:, None], cd2)
        best = jnp.argmin(new.sum(axis=0))
        return centers.at[j].set(X[cand[best]]), new[:, best], key

    centers, _, _ = lax.fori_loop(1, k, body, (centers, d2, key))
    return centers


def _assign(X: jax.Array, C: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Unit rows X [M, C], centroids [k, C] -> (labels [M] int32, best cosine [M])."""
    s = _cos(X, C)
    return jnp.argmax(s, axis=1).astype(jnp.int32), jnp.max(s, axis=1)


def _lloyd(X: jax.Array, C0: jax.Array, max_iter: int, tol):
    """Full-batch spherical Lloyd: assign by cosine, centroid = normalized member sum. Empty
    clusters move to the rows farthest from their centroids. Stops when the labels repeat (or the
    relative objective decrease is <= tol)."""
    k = C0.shape[0]
    n = X.shape[0]

    def step(C):
        lab, best = _assign(X, C)
        sums = jax.ops.segment_sum(X, lab, num_segments=k)
        counts = jnp.bincount(lab, length=k)
        empty = counts == 0
        far = lax.top_k(1 - best, k)[1]
        rank = jnp.clip(jnp.cumsum(empty) - 1, 0, k - 1)
        newC = jnp.where(empty[:, None], X[far[rank]], _normalize_rows(sums))
        return newC, lab, jnp.sum(1 - best), jnp.any(empty)

    def cond(s):
        return (~s["done"]) & (s["it"] < max_iter)

    def body(s):
        newC, lab, obj, any_empty = step(s["C"])
        same = jnp.all(lab == s["lab"]) & ~any_empty
        small = (s["obj"] - obj) <= tol * jnp.abs(obj)
        done = same | (small & (s["it"] > 0) & ~any_empty)
        return dict(C=jnp.where(same, s["C"], newC), lab=lab, obj=obj, it=s["it"] + 1, done=done)

    init = dict(C=C0, lab=jnp.full((n,), -1, jnp.int32), obj=jnp.asarray(jnp.inf, X.dtype),
                it=jnp.asarray(0, jnp.int32), done=jnp.asarray(False))
    s = lax.while_loop(cond, body, init)
    return s["C"], s["it"], s["done"]


def _minibatch(X: jax.Array, C0: jax.Array, key: jax.Array, *, batch_size: int, max_steps: int,
               max_no_improvement: int, reassignment_ratio: float, tol):
    """Mini-batch spherical k-means (scikit-learn's MiniBatchKMeans step on unit rows): per step a
    uniform batch is assigned to the most similar unit centroid; each cluster keeps the
    count-weighted running mean of its rows and its centroid is that mean re-normalized after
    every update. Low-count clusters are moved to batch rows every ``10 + min(count)`` steps;
    early stop when the exponentially weighted batch objective has not improved for
    ``max_no_improvement`` steps (or the centroid shift <= tol).

    The running mean is kept un-normalized: the reference re-normalizes the mean itself and
    weights it by the count, which over-weights the old centroid by ``1 / ‖mean‖`` (slow or stuck
    updates on diffuse clusters)."""
    k = C0.shape[0]
    n = X.shape[0]
    alpha = min(1.0, 2.0 * batch_size / (n + 1))

    def body(s):
        key, k_batch, k_re = jax.random.split(s["key"], 3)
        idx = jax.random.randint(k_batch, (batch_size,), 0, n)
        xb = X[idx]
        C, mean, counts = s["C"], s["mean"], s["counts"]
        lab, best = _assign(xb, C)
        batch_obj = jnp.mean(1 - best)
        # reassignment of nearly empty clusters (uniformly chosen batch rows, no repeats)
        do_re = ((s["it"] + 1) % (10 + jnp.min(counts).astype(jnp.int32)) == 0) & (reassignment_ratio > 0)
        low = (counts < reassignment_ratio * jnp.max(counts)) & do_re
        rank_low = jnp.argsort(jnp.argsort(counts, stable=True), stable=True)
        low = low & (rank_low < batch_size // 2)
        perm = jax.random.permutation(k_re, batch_size)
        rank = jnp.clip(jnp.cumsum(low) - 1, 0, batch_size - 1)
        mean = jnp.where(low[:, None], xb[perm[rank % batch_size]], mean)
        keep_min = jnp.min(jnp.where(low, jnp.inf, counts))
        counts = jnp.where(low, jnp.where(jnp.isfinite(keep_min), keep_min, 0), counts)
        # count-weighted running mean; the centroid is its direction
        sums = jax.ops.segment_sum(xb, lab, num_segments=k)
        nb = jnp.bincount(lab, length=k).astype(X.dtype)
        new_counts = counts + nb
        upd = (mean * counts[:, None] + sums) / jnp.where(new_counts > 0, new_counts, 1)[:, None]
        mean = jnp.where((nb > 0)[:, None], upd, mean)
        newC = jnp.where((jnp.linalg.norm(mean, axis=1) > 0)[:, None], _normalize_rows(mean), C)
        shift = jnp.sum((newC - C) ** 2)
        ewa = jnp.where(s["it"] == 0, batch_obj, s["ewa"] * (1 - alpha) + batch_obj * alpha)
        improved = ewa < s["ewa_min"]
        no_imp = jnp.where(improved, 0, s["no_imp"] + 1)
        done = (no_imp >= max_no_improvement) | ((tol > 0) & (shift <= tol) & (s["it"] > 0))
        return dict(C=newC, mean=mean, counts=new_counts, key=key, it=s["it"] + 1, ewa=ewa,
                    ewa_min=jnp.minimum(ewa, s["ewa_min"]), no_imp=no_imp, done=done)

    init = dict(C=C0, mean=C0, counts=jnp.zeros((k,), X.dtype), key=key,
                it=jnp.asarray(0, jnp.int32), ewa=jnp.asarray(0, X.dtype),
                ewa_min=jnp.asarray(jnp.inf, X.dtype), no_imp=jnp.asarray(0, jnp.int32),
                done=jnp.asarray(False))
    s = lax.while_loop(lambda s: (~s["done"]) & (s["it"] < max_steps), body, init)
    return s["C"], s["it"], s["done"]


def _kmeans_restart_impl(X, key, tol, C_init=None, *, k: int, batch_size: int | None,
                         max_iter: int, init_size: int, n_trials: int, max_no_improvement: int,
                         reassignment_ratio: float):
    """One restart on unit rows X [N, C]: k-means++ (on ``init_size`` random rows) or the given
    unit ``C_init`` [k, C], then full-batch Lloyd (``batch_size=None``) or mini-batch updates;
    returns (centroids, objective, iterations, converged)."""
    n = X.shape[0]
    k_init, k_sub, k_run = jax.random.split(key, 3)
    if C_init is None:
        Xi = X if init_size >= n else X[jax.random.choice(k_sub, n, (init_size,), replace=False)]
        C0 = _kmeanspp(Xi, k, k_init, n_trials)
    else:
        C0 = C_init
    if batch_size is None:
        C, it, conv = _lloyd(X, C0, max_iter, tol)
    else:
        steps = max_iter * (-(-n // batch_size))
        C, it, conv = _minibatch(X, C0, k_run, batch_size=batch_size, max_steps=steps,
                                 max_no_improvement=max_no_improvement,
                                 reassignment_ratio=reassignment_ratio, tol=tol)
    _, best = _assign(X, C)
    return C, jnp.sum(1 - best), it, conv


_KMEANS_STATIC = ("k", "batch_size", "max_iter", "init_size", "n_trials", "max_no_improvement",
                  "reassignment_ratio")
_kmeans_restart = jax.jit(_kmeans_restart_impl, static_argnames=_KMEANS_STATIC)


@jax.jit
def _prepare_rows(X):
    norms = jnp.linalg.norm(X, axis=1)
    return _normalize_rows(X), jnp.sum(norms == 0)


@jax.jit
def _labels_of(X, C):
    return _assign(X, C)[0]


def spherical_kmeans(X, k: int, key=None, *, n_init: int = 3, batch_size: int | None = None,
                     max_iter: int = 100, tol: float = 0.0, init="k-means++",
                     init_size: int | None = None,
                     max_no_improvement: int = 10, reassignment_ratio: float = 0.01,
                     progress: bool = False) -> SphericalKMeansResult:
    """Spherical k-means: cluster the directions of the rows of ``X``.

    Rows are L2-normalized; centroids are unit vectors (re-normalized after every update) and a
    row belongs to the centroid with the largest cosine. Initialization is greedy k-means++
    (``2 + int(log k)`` candidates per centre); ``n_init`` restarts run from independent
    sub-keys and the one with the lowest objective over *all* rows is kept. Deterministic for a
    ``key``; every restart and call with the same shapes and options reuses one compilation.

    Args:
      X: ``[N, C]`` finite rows, none all-zero.
      k: number of clusters, ``1 <= k <= N``.
      key: a ``jax.random`` key or an int seed (None = ``jax.random.key(0)``).
      n_init: restarts (the reference: 3).
      batch_size: None for full-batch Lloyd iterations (the default: exact, and the whole
        ``[N, C]`` array is on the device anyway), or rows per mini-batch step (the reference's
        scikit-learn MiniBatchKMeans uses 100).
      max_iter: Lloyd iterations, or mini-batch epochs (``max_iter · ceil(N / batch_size)``
        steps, as scikit-learn).
      tol: full batch: stop when the objective's relative decrease is <= tol (0: only when the
        labels repeat); mini-batch: stop when the summed squared centroid shift is <= tol (0: off).
      init: ``"k-means++"`` or initial centroids ``[k, C]`` (normalized; then a single run:
        ``n_init`` is ignored).
      init_size: rows used by k-means++ (default: all rows for full batch, ``3 · batch_size``
        (at least ``3k``) for mini-batch, as scikit-learn).
      max_no_improvement: mini-batch early stop (steps without a better smoothed objective).
      reassignment_ratio: mini-batch: centroids whose count is below this fraction of the largest
        are moved to random batch rows now and then (0: never).
      progress: show a progress bar over the restarts.

    Returns:
      :class:`SphericalKMeansResult` (``.centroids [k, C]``, ``.labels [N]``, ``.objective``,
      ``.converged``). A :class:`KMeansConvergenceWarning` is issued when the kept restart hit
      ``max_iter`` first (raise ``max_iter``).
    """
    X = jnp.asarray(X)
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(_ops.default_float_dtype())
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array [N, C], got shape {tuple(X.shape)}")
    n = X.shape[0]
    if int(k) != k or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, N={n}], got {k!r}")
    k = int(k)
    for name, v, lo in (("n_init", n_init, 1), ("max_iter", max_iter, 1),
                        ("max_no_improvement", max_no_improvement, 1)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"batch_size must be None or a positive integer, got {batch_size!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    if not (0 <= reassignment_ratio <= 1):
        raise ValueError(f"reassignment_ratio must be in [0, 1], got {reassignment_ratio!r}")
    _check_finite(X, "X")
    Xn, zeros = _prepare_rows(X)
    if int(zeros):
        raise ValueError(f"X has {int(zeros)} all-zero row(s): their direction is undefined")
    if batch_size is not None:
        batch_size = min(int(batch_size), n)
    if init_size is None:
        init_size = n if batch_size is None else max(3 * batch_size, 3 * k)
    if int(init_size) != init_size or init_size < k:
        raise ValueError(f"init_size must be an integer >= k={k}, got {init_size!r}")
    init_size = min(int(init_size), n)
    C_init = None
    if isinstance(init, str):
        if init != "k-means++":
            raise ValueError(f"init must be 'k-means++' or centroids [k, C], got {init!r}")
    else:
        C_init = jnp.asarray(init, Xn.dtype)
        if C_init.shape != (k, X.shape[1]):
            raise ValueError(f"init centroids must have shape [{k}, {X.shape[1]}], got "
                             f"{tuple(C_init.shape)}")
        _check_finite(C_init, "init")
        C_init, zc = _prepare_rows(C_init)
        if int(zc):
            raise ValueError("init has all-zero centroids")
        n_init = 1
    keys = jax.random.split(_as_key(key), int(n_init))
    static = dict(k=k, batch_size=batch_size, max_iter=int(max_iter), init_size=init_size,
                  n_trials=2 + int(math.log(k)), max_no_improvement=int(max_no_improvement),
                  reassignment_ratio=float(reassignment_ratio))
    tol_arr = jnp.asarray(tol, Xn.dtype)
    best = None
    objs = []
    from ._io import progress as _progress

    with _progress(int(n_init), "spherical k-means", enabled=progress, unit="restart") as bar:
        for i in range(int(n_init)):
            C, obj, it, conv = _kmeans_restart(Xn, keys[i], tol_arr, C_init, **static)
            objs.append(float(obj))
            if best is None or objs[-1] < best[1]:
                best = (C, objs[-1], int(it), bool(conv))
            bar.update(1)
    C, obj, it, conv = best
    if not conv:
        warnings.warn(f"spherical k-means stopped at max_iter={max_iter} before converging "
                      f"(objective {obj:.6g}); raise max_iter", KMeansConvergenceWarning,
                      stacklevel=2)
    return SphericalKMeansResult(centroids=C, labels=_labels_of(Xn, C), objective=obj, n_iter=it,
                                 converged=conv, restart_objectives=np.asarray(objs))


# ------------------------------------------------------------------------------------------------
# Masks at other resolutions
# ------------------------------------------------------------------------------------------------
def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """torch ``F.interpolate(mode="nearest")``: output i reads input ``floor(i · n_in / n_out)``."""
    return (np.arange(n_out) * n_in) // n_out


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Adaptive average pooling ``[n_out, n_in]`` (torch ``adaptive_avg_pool``/``mode="area"``):
    output i averages inputs ``floor(i·n_in/n_out) .. ceil((i+1)·n_in/n_out) − 1``."""
    P = np.zeros((n_out, n_in))
    for i in range(n_out):
        a, b = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        P[i, a:b] = 1.0 / (b - a)
    return P


def resize_masks(masks, size, mode: str = "nearest") -> jax.Array:
    """Resample masks / heatmaps to another grid.

    Args:
      masks: ``[..., H0, W0]``.
      size: ``h`` or ``(h, w)``.
      mode: ``"nearest"`` (the reference's ``F.interpolate(mode="nearest")``, up and down: output
        pixel i reads input ``floor(i·H0/h)``, so a down-sampled mask *samples* pixels) or
        ``"area"`` (average of the covered input pixels; equal to nearest when up-sampling by an
        integer factor).
    Returns:
      ``[..., h, w]``.
    """
    _check_resize(mode)
    masks = jnp.asarray(masks)
    if masks.ndim < 2:
        raise ValueError(f"masks must be [..., H, W], got shape {tuple(masks.shape)}")
    h, w = _pair(size)
    H0, W0 = masks.shape[-2:]
    if (h, w) == (H0, W0):
        return masks
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {(h, w)}")
    if mode == "nearest":
        return masks[..., _nearest_index(H0, h)[:, None], _nearest_index(W0, w)[None, :]]
    m = masks if jnp.issubdtype(masks.dtype, jnp.floating) else masks.astype(_float_dtype())
    Ph = jnp.asarray(_area_matrix(H0, h), m.dtype)
    Pw = jnp.asarray(_area_matrix(W0, w), m.dtype)
    return jnp.einsum("hH,...HW,wW->...hw", Ph, m, Pw, precision=_HIGHEST)


# ------------------------------------------------------------------------------------------------
# The features each style acts on
# ------------------------------------------------------------------------------------------------
def _first_block(gen):
    return getattr(gen.synthesis_net, gen.synthesis_net.block_names[0])


def input_source(gen, layer: str) -> str:
    """Where style layer ``layer``'s modulated conv reads its input: a conv layer name whose
    *output* it is, or ``"const"`` (``b4.conv1``)."""
    names = list(gen.layer_names)
    if layer not in names:
        raise ValueError(f"unknown style layer {layer!r}; choose one of {names}")
    block, kind = layer.split(".")
    if block == gen.synthesis_net.block_names[0] and kind == "conv1":
        return "const"
    if kind == "conv0":
        blocks = list(gen.synthesis_net.block_names)
        return f"{blocks[blocks.index(block) - 1]}.conv1"
    if kind == "conv1":
        return f"{block}.conv0"
    return f"{block}.conv1"                                              # torgb


def input_resolution(gen, layer: str) -> int:
    """Side of the feature map that style layer ``layer`` modulates (R/2 for ``bR.conv0``)."""
    src = input_source(gen, layer)
    if src == "const":
        return int(_first_block(gen).resolution)
    return int(src.split(".")[0][1:])


def _inputs_from_features(gen, feats: Mapping[str, jax.Array], layers, n: int, dt):
    out = {}
    for name in layers:
        src = input_source(gen, name)
        if src == "const":
            const = jnp.asarray(_first_block(gen).const[...], dt)
            out[name] = jnp.broadcast_to(const[None], (n,) + const.shape)
        else:
            out[name] = feats[src]
    return out


def layer_inputs(gen, latents, *, layers: Sequence[str] | None = None, noise_mode: str = "const",
                 key=None, dtype=None, precision: _ops.Precision = "highest", jit: bool = True
                 ) -> dict[str, jax.Array]:
    """The input feature map of every style layer's modulated conv (what its style scales).

    Args:
      latents: ws ``[N, num_ws, w_dim]`` or w ``[N, w_dim]``.
      layers: style layers (default ``gen.layer_names``).
    Returns:
      ``{layer: [N, R, R, C_in]}`` (R = :func:`input_resolution`); derived from one
      ``gen.features`` pass plus the learned constant.
    """
    _check_gen(gen)
    ws = _as_ws(gen, latents, dtype=dtype)
    layers = tuple(gen.layer_names if layers is None else layers)
    _, feats = gen.features(ws, noise_mode=noise_mode, key=key, dtype=dtype, precision=precision,
                            jit=jit)
    return _inputs_from_features(gen, feats, layers, ws.shape[0], next(iter(feats.values())).dtype)


# ------------------------------------------------------------------------------------------------
# Catalog
# ------------------------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("soft",))
def _heatmaps(features, centroids, temperature, *, soft: bool):
    """features [N, H, W, C], unit centroids [K, C] -> [N, K, H, W] one-hot (or softmax)."""
    x = _normalize_rows(features)
    s = jnp.einsum("nhwc,kc->nkhw", x, centroids.astype(x.dtype), precision=_HIGHEST)
    if soft:
        return jax.nn.softmax(s / temperature, axis=1)
    return jax.nn.one_hot(jnp.argmax(s, axis=1), centroids.shape[0], axis=1, dtype=x.dtype)


def _feature_batches(gen, ws: jax.Array, batch_size: int, **kw):
    """``gen.features`` over batches of ``batch_size`` samples; the last batch is padded (with
    its last sample) to the same size so every call reuses one compilation. Yields
    ``(lo, hi, feats)`` where only the first ``hi - lo`` rows of ``feats`` are real."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = ws.shape[0]
    b = min(int(batch_size), n)
    for lo in range(0, n, b):
        hi = min(n, lo + b)
        x = ws[lo:hi]
        if hi - lo < b:
            x = jnp.concatenate([x, jnp.broadcast_to(x[-1:], (b - (hi - lo),) + x.shape[1:])])
        _, feats = gen.features(x, **kw)
        yield lo, hi, feats


def _seed_ws(gen, seeds, psi, cutoff, c, dtype):
    from .models.stylegan2 import seed_to_z

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty")
    if any(s < 0 or s >= 2**32 for s in seeds):
        raise ValueError("seeds must be integers in [0, 2**32)")
    z = np.concatenate([seed_to_z(s, gen.z_dim) for s in seeds])
    return gen.mapping(z, c, psi, cutoff, dtype=dtype)


def _compact_ws(ws: np.ndarray) -> np.ndarray:
    """Store ``[N, w_dim]`` when every W+ slot is the same (no per-slot truncation)."""
    return ws[:, 0] if np.all(ws == ws[:, :1]) else ws


@dataclasses.dataclass(frozen=True)
class Catalog:
    """Spherical k-means clusters of one layer's per-pixel features, with names for them.

    Attributes:
      layer: the conv layer whose *output* features were clustered (e.g. ``"b32.conv1"``).
      centroids: ``[K, C]`` unit centroids.
      resolution: side of that layer's feature map (heatmaps are ``[N, K, R, R]``).
      annotations: ``{label: (cluster ids...)}``; a label's mask is the sum of its clusters'.
      latents: the samples the catalog was fitted on, ws ``[N, num_ws, w_dim]`` or ``[N, w_dim]``
        (the default samples of :func:`contributions`), or None.
      info: JSON-serializable facts (objective, convergence, seeds, psi, k-means options...).
    """

    layer: str
    centroids: np.ndarray
    resolution: int
    annotations: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    latents: np.ndarray | None = None
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.annotations)

    def __repr__(self) -> str:
        return (f"Catalog(layer={self.layer!r}, k={self.k}, resolution={self.resolution}, "
                f"annotations={dict(self.annotations)})")

    # ---- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(cls, gen, layer: str, k: int, seeds: Sequence[int] | None = None, latents=None, *,
            key=None, psi: float = 1.0, cutoff: int | None = None, c=None,
            batch_size: int = 8, pixels_per_sample: int | None = None,
            max_points_bytes: int = 2**31, n_init: int = 3, kmeans_batch_size: int | None = None,
            max_iter: int = 100, tol: float = 0.0, noise_mode: str = "const", dtype=None,
            precision: _ops.Precision = "highest", progress: bool = False) -> "Catalog":
        """Cluster every pixel of every sample's ``layer`` output (``[N·H·W, C]`` rows).

        Args:
          gen: a StyleGAN2 generator.
          layer: a conv layer (``gen.conv_layer_names``), e.g. ``"b32.conv1"`` (the reference
            clusters the 32x32 block).
          k: clusters.
          seeds: NVIDIA ``generate.py`` seeds (z = ``RandomState(seed).randn``), mapped with
            ``psi``/``cutoff`` (and ``c``); or ``latents``: ws ``[N, num_ws, w_dim]`` / w
            ``[N, w_dim]``. Exactly one of the two.
          key: k-means key or int seed (None = 0).
          batch_size: samples per generator call (memory bound of the feature pass).
          pixels_per_sample: cluster only this many random pixels per sample (None = all).
          max_points_bytes: refuse (ValueError) when the ``[N·H·W, C]`` rows would take more.
          n_init, kmeans_batch_size, max_iter, tol: :func:`spherical_kmeans` (``n_init``,
            ``batch_size``, ``max_iter``, ``tol``).
          progress: progress bars for the feature pass and the restarts.
        Returns:
          a :class:`Catalog` with no annotations yet.
        """
        _check_gen(gen)
        if layer not in gen.conv_layer_names:
            raise ValueError(f"unknown layer {layer!r}; choose a conv layer of "
                             f"{list(gen.conv_layer_names)}")
        if (seeds is None) == (latents is None):
            raise ValueError("pass exactly one of seeds or latents")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        info: dict[str, Any] = {}
        dt = dtype or _ops.default_float_dtype()
        if seeds is not None:
            ws = _seed_ws(gen, seeds, psi, cutoff, c, dt)
            info.update(seeds=[int(s) for s in seeds], psi=float(psi),
                        cutoff=None if cutoff is None else int(cutoff))
        else:
            ws = _as_ws(gen, latents, dtype=dt)
        n = ws.shape[0]
        res = int(layer.split(".")[0][1:])
        ch = int(gen._layer(layer).weight.shape[-1])
        per = res * res if pixels_per_sample is None else int(pixels_per_sample)
        if not 1 <= per <= res * res:
            raise ValueError(f"pixels_per_sample must be in [1, {res * res}], got {pixels_per_sample!r}")
        itemsize = jnp.dtype(dt).itemsize
        need = n * per * ch * itemsize
        if need > max_points_bytes:
            raise ValueError(
                f"clustering {n} samples x {per} pixels x {ch} channels needs {need / 2**30:.2f} GiB "
                f"(> max_points_bytes = {max_points_bytes / 2**30:.2f} GiB): use fewer seeds or "
                f"pixels_per_sample")
        key = _as_key(key)
        key, k_pix = jax.random.split(key)
        rows = np.empty((n * per, ch), np.dtype(dt))
        from ._io import progress as _progress

        with _progress(n, f"features {layer}", enabled=progress, unit="sample") as bar:
            for lo, hi, feats in _feature_batches(gen, ws, batch_size, noise_mode=noise_mode,
                                                  dtype=dtype, precision=precision):
                f = np.asarray(feats[layer][:hi - lo]).reshape(hi - lo, res * res, ch)
                if per < res * res:
                    sel = np.stack([np.asarray(jax.random.choice(
                        jax.random.fold_in(k_pix, i), res * res, (per,), replace=False))
                        for i in range(lo, hi)])
                    f = np.take_along_axis(f, sel[:, :, None], axis=1)
                rows[lo * per:hi * per] = f.reshape(-1, ch)
                bar.update(hi - lo)
        _check_finite(rows, f"features of {layer}")
        km = spherical_kmeans(rows, k, key, n_init=n_init, batch_size=kmeans_batch_size,
                              max_iter=max_iter, tol=tol, progress=progress)
        info.update(objective=km.objective, converged=km.converged, n_iter=km.n_iter,
                    restart_objectives=[float(v) for v in km.restart_objectives],
                    n_samples=int(n), pixels_per_sample=int(per), n_init=int(n_init),
                    kmeans_batch_size=kmeans_batch_size, max_iter=int(max_iter), tol=float(tol),
                    noise_mode=noise_mode, generator=gen.config.to_dict())
        return cls(layer=layer, centroids=np.asarray(km.centroids), resolution=res,
                   annotations={}, latents=_compact_ws(np.asarray(ws)), info=info)

    # ---- using ---------------------------------------------------------------------------------
    def check_generator(self, gen) -> None:
        """ValueError unless ``gen`` has this catalog's layer with the same channels and size."""
        _check_gen(gen)
        if self.layer not in gen.conv_layer_names:
            raise ValueError(f"the catalog's layer {self.layer!r} is not a conv layer of this "
                             f"generator ({list(gen.conv_layer_names)})")
        ch = int(gen._layer(self.layer).weight.shape[-1])
        if ch != self.centroids.shape[1]:
            raise ValueError(f"the catalog has {self.centroids.shape[1]} channels at {self.layer}, "
                             f"the generator {ch}: it was fitted on another generator")

    def predict_features(self, features, *, soft: bool = False, temperature: float = 0.1) -> jax.Array:
        """features ``[N, R, R, C]`` of :attr:`layer` -> heatmaps ``[N, K, R, R]``: one-hot of the
        most similar centroid (cosine), or ``softmax(cos / temperature)`` over K with ``soft``."""
        f = jnp.asarray(features)
        if f.ndim != 4 or f.shape[-1] != self.centroids.shape[1]:
            raise ValueError(f"features must be [N, H, W, {self.centroids.shape[1]}], got "
                             f"{tuple(f.shape)}")
        if soft and not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        return _heatmaps(f, jnp.asarray(self.centroids), jnp.asarray(temperature, f.dtype),
                         soft=bool(soft))

    def predict(self, gen, latents, *, soft: bool = False, temperature: float = 0.1,
                batch_size: int = 8, noise_mode: str = "const", dtype=None,
                precision: _ops.Precision = "highest", progress: bool = False) -> jax.Array:
        """Heatmaps of new samples: ws ``[N, num_ws, w_dim]`` (or w ``[N, w_dim]``) ->
        ``[N, K, R, R]`` (see :meth:`predict_features`)."""
        self.check_generator(gen)
        ws = _as_ws(gen, latents, dtype=dtype)
        out = []
        from ._io import progress as _progress

        with _progress(ws.shape[0], "heatmaps", enabled=progress, unit="sample") as bar:
            for lo, hi, feats in _feature_batches(gen, ws, batch_size, noise_mode=noise_mode,
                                                  dtype=dtype, precision=precision):
                out.append(self.predict_features(feats[self.layer], soft=soft,
                                                 temperature=temperature)[:hi - lo])
                bar.update(hi - lo)
        return jnp.concatenate(out)

    def _label_ids(self, labels) -> list[tuple[int, ...]]:
        names = self.labels if labels is None else (
            [labels] if isinstance(labels, str) else list(labels))
        out = []
        for name in names:
            if name not in self.annotations:
                raise ValueError(f"unknown label {name!r}; the catalog has {list(self.labels)} "
                                 f"(name clusters with annotate)")
            out.append(tuple(self.annotations[name]))
        if not out:
            raise ValueError("the catalog has no annotations: name clusters with annotate first")
        return out

    def label_masks(self, heatmaps, labels: str | Sequence[str] | None = None) -> jax.Array:
        """heatmaps ``[N, K, H, W]`` -> ``[N, L, H, W]``: per label, the sum of its clusters'
        heatmaps (labels: a name, a list, or None for all annotated labels in order)."""
        h = jnp.asarray(heatmaps)
        if h.ndim != 4 or h.shape[1] != self.k:
            raise ValueError(f"heatmaps must be [N, {self.k}, H, W], got {tuple(h.shape)}")
        sel = np.zeros((len(ids := self._label_ids(labels)), self.k))
        for i, cl in enumerate(ids):
            sel[i, list(cl)] = 1.0
        return jnp.einsum("lk,nkhw->nlhw", jnp.asarray(sel, h.dtype), h, precision=_HIGHEST)

    def masks(self, gen, latents, labels: str | Sequence[str] | None = None, size=None, *,
              resize: str = "nearest", soft: bool = False, **kw) -> jax.Array:
        """Label masks of samples at any resolution: ``[N, L, h, w]``.

        ``size``: None (the catalog layer's), an int / (h, w), or a style layer name (that
        layer's *input* resolution, as :func:`contributions` uses). ``resize``: ``"nearest"``
        (reference) or ``"area"``.
        """
        m = self.label_masks(self.predict(gen, latents, soft=soft, **kw), labels)
        if size is None:
            return m
        if isinstance(size, str):
            size = input_resolution(gen, size)
        return resize_masks(m, size, resize)

    def annotate(self, annotations: Mapping[str, Sequence[int] | int], *,
                 replace: bool = False) -> "Catalog":
        """A copy with named labels: ``{"eyes": [3, 7], "mouth": 5}`` (several clusters may form
        one label; a name given again is overwritten; ``replace=True`` drops the old names)."""
        if not isinstance(annotations, Mapping):
            raise ValueError("annotations must be a mapping {label: cluster ids}")
        new = {} if replace else {k: tuple(v) for k, v in self.annotations.items()}
        for name, ids in annotations.items():
            new[_check_label(name)] = _check_ids(ids, self.k, name)
        return dataclasses.replace(self, annotations=new)

    def without(self, *labels: str) -> "Catalog":
        """A copy without the given labels (ValueError for unknown ones)."""
        missing = [n for n in labels if n not in self.annotations]
        if missing:
            raise ValueError(f"unknown label(s) {missing}; the catalog has {list(self.labels)}")
        return dataclasses.replace(self, annotations={k: v for k, v in self.annotations.items()
                                                      if k not in labels})

    # ---- files ---------------------------------------------------------------------------------
    def save(self, path, *, overwrite: bool = True) -> str:
        """Write ``.npz`` (centroids, latents) with the metadata as an embedded JSON string,
        atomically (``overwrite=False`` refuses an existing file). Returns the path written."""
        from ._io import save_npz

        meta = dict(format=CATALOG_FORMAT, layer=self.layer, resolution=int(self.resolution),
                    annotations={k: [int(i) for i in v] for k, v in self.annotations.items()},
                    info=dict(self.info))
        arrays = dict(centroids=np.asarray(self.centroids), meta=json.dumps(meta, sort_keys=True))
        if self.latents is not None:
            arrays["latents"] = np.asarray(self.latents)
        return save_npz(path, overwrite=overwrite, **arrays)

    @classmethod
    def load(cls, path) -> "Catalog":
        """Read a catalog written by :meth:`save`; every problem is a ValueError naming the file
        and key (no pickles are read)."""
        from ._io import load_npz

        data = load_npz(path, ("centroids", "meta"), "Editing in Style catalog")
        where = os.fspath(path)
        try:
            meta = json.loads(str(data["meta"]))
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: key 'meta' is not valid JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != CATALOG_FORMAT:
            raise ValueError(f"{where}: key 'meta' is not a {CATALOG_FORMAT} header")
        C = data["centroids"]
        if C.ndim != 2 or C.shape[0] < 1 or C.shape[1] < 1 or not np.issubdtype(C.dtype, np.floating):
            raise ValueError(f"{where}: key 'centroids' must be a float [K, C] array, got "
                             f"{C.dtype} {C.shape}")
        if not np.all(np.isfinite(C)):
            raise ValueError(f"{where}: key 'centroids' has non-finite values")
        if not np.allclose(np.linalg.norm(C, axis=1), 1, atol=1e-3):
            raise ValueError(f"{where}: key 'centroids' rows are not unit vectors")
        layer, res = meta.get("layer"), meta.get("resolution")
        if not isinstance(layer, str) or not re.fullmatch(r"b\d+\.conv[01]", layer):
            raise ValueError(f"{where}: meta 'layer' must be a conv layer name, got {layer!r}")
        if not isinstance(res, int) or res < 1:
            raise ValueError(f"{where}: meta 'resolution' must be a positive integer, got {res!r}")
        ann = meta.get("annotations", {})
        if not isinstance(ann, dict):
            raise ValueError(f"{where}: meta 'annotations' must be a mapping")
        try:
            ann = {_check_label(k): _check_ids(v, C.shape[0], k) for k, v in ann.items()}
        except ValueError as e:
            raise ValueError(f"{where}: meta 'annotations': {e}") from None
        lat = data.get("latents")
        if lat is not None:
            if lat.ndim not in (2, 3) or lat.shape[0] < 1 or not np.issubdtype(lat.dtype, np.floating):
                raise ValueError(f"{where}: key 'latents' must be float [N, w_dim] or "
                                 f"[N, num_ws, w_dim], got {lat.dtype} {lat.shape}")
            if not np.all(np.isfinite(lat)):
                raise ValueError(f"{where}: key 'latents' has non-finite values")
        info = meta.get("info", {})
        return cls(layer=layer, centroids=C, resolution=res, annotations=ann, latents=lat,
                   info=info if isinstance(info, dict) else {})


def _check_label(name) -> str:
    if not isinstance(name, str) or not _LABEL_RE.match(name):
        raise ValueError(f"a label must start with a letter or '_' and contain only letters, digits, '_', '-', '.', got {name!r}")
    return name


def _check_ids(ids, k: int, name) -> tuple[int, ...]:
    if isinstance(ids, (int, np.integer)):
        ids = [ids]
    try:
        vals = [int(i) for i in ids]
        if any(int(i) != i for i in ids):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"label {name!r}: cluster ids must be integers, got {ids!r}") from None
    if not vals:
        raise ValueError(f"label {name!r}: no cluster ids")
    bad = [i for i in vals if not 0 <= i < k]
    if bad:
        raise ValueError(f"label {name!r}: cluster ids {bad} out of range [0, {k})")
    return tuple(dict.fromkeys(vals))


# ------------------------------------------------------------------------------------------------
# Contributions
# ------------------------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("resize",))
def _contribution_sums(features: dict, masks, weights, *, resize: str):
    """Numerators ``Σ A²U`` [K, C] and denominators ``Σ A²`` [C] per layer; ``weights`` [N]
    (1 = sample counts, 0 = padding)."""
    num, den = {}, {}
    for name, a in features.items():
        u = resize_masks(masks, a.shape[1:3], resize).astype(a.dtype)
        a2 = a * a * weights.astype(a.dtype)[:, None, None, None]
        num[name] = jnp.einsum("nhwc,nkhw->kc", a2, u, precision=_HIGHEST)
        den[name] = jnp.sum(a2, axis=(0, 1, 2))
    return num, den


def _ratio(num, den):
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1), 0)


def _check_features_masks(features, masks):
    if not isinstance(features, Mapping) or not features:
        raise ValueError("features must be a non-empty dict {layer: [N, H, W, C]}")
    m = jnp.asarray(masks)
    if not jnp.issubdtype(m.dtype, jnp.floating):
        m = m.astype(_float_dtype())
    if m.ndim != 4:
        raise ValueError(f"masks must be [N, K, H0, W0], got shape {tuple(m.shape)}")
    _check_finite(m, "masks")
    feats = {}
    for name, a in features.items():
        a = jnp.asarray(a)
        if a.ndim != 4 or a.shape[0] != m.shape[0]:
            raise ValueError(f"features[{name!r}] must be [N={m.shape[0]}, H, W, C], got "
                             f"{tuple(a.shape)}")
        feats[name] = _check_finite(a.astype(jnp.result_type(a.dtype, m.dtype)), f"features[{name!r}]")
    return feats, m


def contributions_from_features(features: Mapping[str, Any], masks, resize: str = "nearest"
                                ) -> dict[str, jax.Array]:
    """Channel contributions of parts, from feature maps and masks given directly (pure core).

    ``M_l[k, c] = Σ_{n,h,w} A_l²[n,h,w,c]·U_k[n,h,w] / Σ_{n,h,w} A_l²[n,h,w,c]`` with ``U_k`` the
    masks resized to A_l's grid (:func:`resize_masks`); a channel with no energy gets 0.

    Args:
      features: ``{layer: [N, H_l, W_l, C_l]}``: for Editing in Style, the *input* of each styled
        layer (:func:`layer_inputs`).
      masks: ``[N, K, H0, W0]`` part masks (0/1 or soft).
      resize: ``"nearest"`` (reference) or ``"area"``.
    Returns:
      ``{layer: [K, C_l]}``; rows sum to 1 over parts that cover every pixel.
    """
    _check_resize(resize)
    feats, m = _check_features_masks(features, masks)
    num, den = _contribution_sums(feats, m, jnp.ones((m.shape[0],), m.dtype), resize=resize)
    return {name: _ratio(num[name], den[name]) for name in feats}


class Contributions(Mapping):
    """Per style layer ``M_l`` ``[K, C_l]`` (a read-only mapping layer -> array, in generator
    order), with the row names and, when the rows are catalog clusters, the catalog's labels.

    Attributes:
      rows: name of each row (cluster ids as strings, or label names).
      annotations: ``{label: cluster ids}`` used by :meth:`label` when rows are clusters.
    """

    def __init__(self, matrices: Mapping[str, jax.Array], rows: Sequence[str],
                 annotations: Mapping[str, Sequence[int]] | None = None, resize: str = "nearest"):
        self._m = dict(matrices)
        self.rows = tuple(rows)
        self.annotations = {k: tuple(v) for k, v in (annotations or {}).items()}
        self.resize = resize
        for name, M in self._m.items():
            if M.ndim != 2 or M.shape[0] != len(self.rows):
                raise ValueError(f"contributions[{name!r}] must be [{len(self.rows)}, C], got "
                                 f"{tuple(M.shape)}")

    def __getitem__(self, layer: str) -> jax.Array:
        return self._m[layer]

    def __iter__(self):
        return iter(self._m)

    def __len__(self) -> int:
        return len(self._m)

    def __repr__(self) -> str:
        return f"Contributions(rows={list(self.rows)}, layers={list(self._m)})"

    def label(self, name: str) -> dict[str, jax.Array]:
        """``{layer: [C_l]}`` for a label: its row, or the sum of its clusters' rows (M is linear
        in the mask, so this equals M of the label's summed mask)."""
        if name in self.rows:
            i = self.rows.index(name)
            return {k: M[i] for k, M in self._m.items()}
        if name in self.annotations:
            ids = [self.rows.index(str(i)) for i in self.annotations[name]]
            return {k: jnp.sum(M[jnp.asarray(ids)], axis=0) for k, M in self._m.items()}
        raise ValueError(f"unknown label {name!r}; rows {list(self.rows)}, annotated labels "
                         f"{list(self.annotations)}")


def contributions(gen, latents, catalog, labels: str | Sequence[str] | None = None, *,
                  names: Sequence[str] | None = None, resize: str = "nearest", soft: bool = False,
                  temperature: float = 0.1, layers: Sequence[str] | None = None,
                  batch_size: int = 8, noise_mode: str = "const", dtype=None,
                  precision: _ops.Precision = "highest", progress: bool = False) -> Contributions:
    """``M_l`` ``[K, C_l]`` for every style layer l, accumulated over samples in batches.

    ``A_l`` is the input of layer l's modulated conv (:func:`layer_inputs`), ``U_k`` the part
    mask resized to A_l's grid (``resize``: ``"nearest"``, the reference, or ``"area"``).

    Args:
      latents: ws ``[N, num_ws, w_dim]`` / w ``[N, w_dim]``; None with a :class:`Catalog` uses
        the samples it was fitted on.
      catalog: a :class:`Catalog` (masks predicted per sample at its layer; rows = its K clusters,
        or with ``labels`` the named labels) or an array of masks ``[N, K, H0, W0]`` for the same
        samples (rows named by ``names``, default ``"0".."K-1"``).
      soft, temperature: soft heatmaps (:meth:`Catalog.predict_features`).
      layers: style layers (default ``gen.layer_names``).
      batch_size: samples per generator call.
    Returns:
      :class:`Contributions` (``{layer: [K, C_l]}`` with row names).
    """
    _check_gen(gen)
    _check_resize(resize)
    layers = tuple(gen.layer_names if layers is None else layers)
    for name in layers:
        input_source(gen, name)
    if isinstance(catalog, Catalog):
        catalog.check_generator(gen)
        if latents is None:
            if catalog.latents is None:
                raise ValueError("the catalog stores no samples: pass latents")
            latents = catalog.latents
        ids = None if labels is None else catalog._label_ids(labels)
        rows = ([str(i) for i in range(catalog.k)] if labels is None else
                ([labels] if isinstance(labels, str) else list(labels)))
        annotations = catalog.annotations if labels is None else {}
        given = None
    else:
        given = jnp.asarray(catalog)
        if given.ndim != 4:
            raise ValueError(f"catalog must be a Catalog or masks [N, K, H0, W0], got shape "
                             f"{tuple(given.shape)}")
        if latents is None:
            raise ValueError("pass the latents the masks belong to")
        rows = [str(i) for i in range(given.shape[1])] if names is None else [str(n) for n in names]
        if len(rows) != given.shape[1]:
            raise ValueError(f"names has {len(rows)} entries for {given.shape[1]} masks")
        annotations, ids = {}, None
    ws = _as_ws(gen, latents, dtype=dtype)
    n = ws.shape[0]
    if given is not None and given.shape[0] != n:
        raise ValueError(f"masks are for {given.shape[0]} samples, latents for {n}")
    num = den = None
    from ._io import progress as _progress

    with _progress(n, "contributions", enabled=progress, unit="sample") as bar:
        for lo, hi, feats in _feature_batches(gen, ws, batch_size, noise_mode=noise_mode,
                                              dtype=dtype, precision=precision):
            dt = next(iter(feats.values())).dtype
            b = next(iter(feats.values())).shape[0]
            if given is None:
                m = catalog.predict_features(feats[catalog.layer], soft=soft,
                                             temperature=temperature)
                if ids is not None:
                    m = catalog.label_masks(m, labels)
            else:
                m = given[lo:hi]
                if hi - lo < b:
                    m = jnp.concatenate([m, jnp.zeros((b - (hi - lo),) + m.shape[1:], m.dtype)])
            feats_in = _inputs_from_features(gen, feats, layers, b, dt)
            f, m = _check_features_masks(feats_in, m)
            w = (jnp.arange(b) < hi - lo).astype(m.dtype)
            nb, db = _contribution_sums(f, m, w, resize=resize)
            num = nb if num is None else {k: num[k] + nb[k] for k in num}
            den = db if den is None else {k: den[k] + db[k] for k in den}
            bar.update(hi - lo)
    return Contributions({k: _ratio(num[k], den[k]) for k in layers}, rows, annotations, resize)


# ------------------------------------------------------------------------------------------------
# Query
# ------------------------------------------------------------------------------------------------
def _query_core(m, rho, eps, lam, mode: str):
    if mode == "simultaneous":
        return jnp.minimum(1, lam * m).astype(m.dtype)
    order = jnp.argsort(-m, stable=True)
    cost = jnp.cumsum(1 - m[order])
    q = jnp.zeros_like(m).at[order].set((cost < eps).astype(m.dtype))
    if mode == "reference":
        keep = m > rho
    else:  # ratio: in/out = M / (1 - M) > rho (M >= 1 counts as an infinite ratio)
        ratio = jnp.where(m < 1, m / jnp.where(m < 1, 1 - m, 1), jnp.inf)
        keep = ratio > rho
    return q * keep.astype(m.dtype)


def _per_layer(value, names: Sequence[str], argname: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        extra = [k for k in value if k not in names]
        if missing or extra:
            raise ValueError(f"{argname} per layer: missing {missing}, unexpected {extra}")
        return {n: value[n] for n in names}
    if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1:
        if len(value) != len(names):
            raise ValueError(f"{argname} has {len(value)} values for {len(names)} layers "
                             f"({list(names)})")
        return dict(zip(names, value))
    return {n: value for n in names}


def _check_scalar(v, argname: str, mode: str):
    if v is None:
        raise ValueError(f"query mode {mode!r} needs {argname}")
    if np.ndim(v) != 0:
        raise ValueError(f"{argname} must be a scalar per layer, got shape {np.shape(v)}")
    if not _is_tracer(v) and not np.isfinite(float(v)):
        raise ValueError(f"{argname} must be finite, got {v!r}")
    return v


def query(m, rho=None, eps=None, mode: str = "reference", *, lam=None):
    """Which channels of a layer to transfer for a part, from its contributions.

    Args:
      m: ``M_l[k]`` ``[C]`` (contributions of one part at one layer); or a mapping
        ``{layer: [C_l]}`` / a sequence of ``[C_l]`` to query every layer at once.
      rho, eps: scalars, or per layer (a sequence aligned with ``m``'s layers, or a mapping).
      mode:
        * ``"reference"``: the reference's sequential rule: sort channels by decreasing M;
          ``q = 1`` where the running sum of ``1 − M`` (out-of-part mass) is ``< eps``, and only
          where ``M > rho``.
        * ``"ratio"``: the same, with rho read as the paper's in/out ratio: ``M / (1 − M) > rho``
          (equivalently ``M > rho / (1 + rho)``).
        * ``"simultaneous"``: ``q = min(1, lam · M)`` (rho, eps unused).
      lam: the simultaneous scale (scalar or per layer).
    Returns:
      ``q`` ``[C]`` (0/1 for the sequential modes), or a dict / list like ``m``.
    """
    if mode not in QUERY_MODES:
        raise ValueError(f"mode must be one of {QUERY_MODES}, got {mode!r}")
    if isinstance(m, Mapping) or (isinstance(m, (list, tuple)) and m and np.ndim(m[0]) == 1):
        names = list(m) if isinstance(m, Mapping) else list(range(len(m)))
        vals = m if isinstance(m, Mapping) else dict(zip(names, m))
        r = _per_layer(rho, names, "rho")
        e = _per_layer(eps, names, "eps")
        lm = _per_layer(lam, names, "lam")
        out = {n: query(vals[n], r[n], e[n], mode, lam=lm[n]) for n in names}
        return out if isinstance(m, Mapping) else [out[n] for n in names]
    m = jnp.asarray(m)
    if not jnp.issubdtype(m.dtype, jnp.floating):
        m = m.astype(_float_dtype())
    if m.ndim != 1:
        raise ValueError(f"m must be [C] (one part at one layer), got shape {tuple(m.shape)}")
    _check_finite(m, "m")
    if mode == "simultaneous":
        lam = _check_scalar(lam, "lam", mode)
        return _query_core(m, None, None, jnp.asarray(lam, m.dtype), mode)
    rho = _check_scalar(rho, "rho", mode)
    eps = _check_scalar(eps, "eps", mode)
    return _query_core(m, jnp.asarray(rho, m.dtype), jnp.asarray(eps, m.dtype), None, mode)


def label_queries(contribs: Contributions, label: str, rho=None, eps=None,
                  mode: str = "reference", *, lam=None, layers: Sequence[str] | None = None
                  ) -> dict[str, jax.Array]:
    """``{layer: q_l [C_l]}`` for one label: :func:`query` of :meth:`Contributions.label` on
    every layer (``layers`` restricts them; rho/eps/lam per layer follow that order)."""
    if not isinstance(contribs, Contributions):
        raise ValueError(f"contribs must be Contributions, got {type(contribs).__name__}")
    ms = contribs.label(label)
    if layers is not None:
        unknown = [n for n in layers if n not in ms]
        if unknown:
            raise ValueError(f"unknown layers {unknown}; contributions have {list(ms)}")
        ms = {n: ms[n] for n in layers}
    return query(ms, rho, eps, mode, lam=lam)


# ------------------------------------------------------------------------------------------------
# Transfer
# ------------------------------------------------------------------------------------------------
def _pair_ws(gen, ws_target, ws_reference, dtype):
    t = _as_ws(gen, ws_target, "ws_target", dtype)
    r = _as_ws(gen, ws_reference, "ws_reference", dtype)
    nt, nr = t.shape[0], r.shape[0]
    if nt != nr and 1 not in (nt, nr):
        raise ValueError(f"target i is paired with reference i: need equal N or one of them 1, got "
                         f"{nt} targets and {nr} references")
    n = max(nt, nr)
    return (jnp.broadcast_to(t, (n,) + t.shape[1:]), jnp.broadcast_to(r, (n,) + r.shape[1:]))


def _check_qs(gen, qs: Mapping[str, Any], n: int, dt) -> dict[str, jax.Array]:
    names = list(gen.layer_names)
    unknown = [k for k in qs if k not in names]
    if unknown:
        raise ValueError(f"qs has unknown layers {unknown}; style layers are {names}")
    out = {}
    for name, q in qs.items():
        c = int(gen._layer(name).affine.weight.shape[1])
        q = jnp.asarray(q, dt)
        if q.shape not in ((c,), (1, c), (n, c)):
            raise ValueError(f"qs[{name!r}] must be [{c}] or [N={n}, {c}], got {tuple(q.shape)}")
        out[name] = _check_finite(q, f"qs[{name!r}]")
    return out


def transfer_styles(gen, ws_target, ws_reference, qs: Mapping[str, Any], *, dtype=None,
                    precision: _ops.Precision = "highest", jit: bool = True) -> dict[str, jax.Array]:
    """Mixed styles ``s_l = (1 − q_l)·s_T + q_l·s_R`` (exactly s_T at q = 0 and s_R at q = 1).

    Args:
      ws_target, ws_reference: ws ``[N, num_ws, w_dim]`` (or w ``[N, w_dim]``); target i is
        paired with reference i (equal N, or one side has N = 1 and is broadcast).
      qs: ``{layer: [C_l] or [N, C_l]}``; layers not given keep the target's style.
    Returns:
      ``{layer: [N, C_l]}`` for every style layer (``gen.synthesis_from_styles`` input).
    """
    _check_gen(gen)
    t, r = _pair_ws(gen, ws_target, ws_reference, dtype)
    if not isinstance(qs, Mapping):
        raise ValueError("qs must be a dict {style layer: q [C_l]}")
    s_t = gen.styles(t, dtype=dtype, precision=precision, jit=jit)
    s_r = gen.styles(r, dtype=dtype, precision=precision, jit=jit)
    dt = next(iter(s_t.values())).dtype
    q = _check_qs(gen, qs, t.shape[0], dt)
    return {name: (1 - q[name]) * s_t[name] + q[name] * s_r[name] if name in q else s_t[name]
            for name in gen.layer_names}


def transfer(gen, ws_target, ws_reference, qs, label: str | None = None, rho=None, eps=None,
             mode: str = "reference", *, lam=None, layers: Sequence[str] | None = None,
             contribution_latents=None, resize: str = "nearest", noise_mode: str = "const",
             key=None, dtype=None, precision: _ops.Precision = "highest", jit: bool = True
             ) -> jax.Array:
    """Local style transfer: the ``label`` part of reference i's appearance onto target i.

    Args:
      ws_target, ws_reference: ws ``[N, num_ws, w_dim]`` / w ``[N, w_dim]``, paired by index
        (equal N, or one side N = 1, broadcast).
      qs: either the explicit ``{layer: q_l [C_l]}`` (then label/rho/eps/mode are unused), or a
        :class:`Contributions` / :class:`Catalog` with ``label`` and the query parameters
        (:func:`query`; rho/eps/lam scalar or per layer). A catalog's contributions are computed
        on ``contribution_latents`` (default: the catalog's own samples) with ``resize``.
      layers: style layers that may change (default all, ToRGB included).
    Returns:
      images ``[N, H, W, 3]``.
    """
    if isinstance(qs, Catalog):
        qs = contributions(gen, contribution_latents, qs, resize=resize, noise_mode=noise_mode,
                           dtype=dtype, precision=precision)
    if isinstance(qs, Contributions):
        if label is None:
            raise ValueError("transfer with contributions or a catalog needs a label")
        qs = label_queries(qs, label, rho, eps, mode, lam=lam, layers=layers)
    elif not isinstance(qs, Mapping):
        raise ValueError(f"qs must be a dict of per-layer q, Contributions or a Catalog, got "
                         f"{type(qs).__name__}")
    elif layers is not None:
        qs = {k: v for k, v in qs.items() if k in layers}
    styles = transfer_styles(gen, ws_target, ws_reference, qs, dtype=dtype, precision=precision,
                             jit=jit)
    return gen.synthesis_from_styles(styles, noise_mode=noise_mode, key=key, dtype=dtype,
                                     precision=precision, jit=jit)


# ------------------------------------------------------------------------------------------------
# CIELAB error and locality
# ------------------------------------------------------------------------------------------------
# sRGB (D65) -> XYZ, rows X, Y, Z (IEC 61966-2-1 primaries as printed in the reference).
SRGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                        [0.212671, 0.715160, 0.072169],
                        [0.019334, 0.119193, 0.950227]])
D65_WHITE = (95.047, 100.0, 108.883)


def rgb_to_lab(rgb, *, parity: bool = False, value_range=(-1.0, 1.0), shift: bool = True) -> jax.Array:
    """sRGB ``[..., 3]`` -> CIELAB ``[..., 3]`` (L, a, b) as the reference's ``rgb2lab``.

    ``value_range`` maps the input to [0, 1] (jaxedit images are in [-1, 1]); values are then
    clipped to [0, 1]. sRGB is linearized (threshold 0.04045, exponent 2.4), ×100, taken to XYZ,
    divided by the D65 white (95.047, 100, 108.883) and mapped with the Lab function (0.008856,
    7.787, 16/116). ``parity=True`` multiplies the row vector by the matrix itself (the
    reference's ``rgb @ M``, i.e. the transposed transform); False uses the correct ``M @ rgb``.
    ``shift``: L ×2.55 and a, b +128 (the reference's 0..255 scale).
    """
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}")
    x = jnp.asarray(rgb)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(_float_dtype())
    if x.shape[-1:] != (3,):
        raise ValueError(f"rgb must be [..., 3], got shape {tuple(x.shape)}")
    x = jnp.clip((x - lo) / (hi - lo), 0, 1)
    lin = jnp.where(x > 0.04045, ((jnp.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92) * 100
    M = jnp.asarray(SRGB_TO_XYZ, x.dtype)
    xyz = jnp.dot(lin, M if parity else M.T, precision=_HIGHEST)
    xyz = xyz / jnp.asarray(D65_WHITE, x.dtype)
    f = jnp.where(xyz > 0.008856, jnp.cbrt(jnp.maximum(xyz, 0.008856)), 7.787 * xyz + 16 / 116)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    if shift:
        L, a, b = L * 2.55, a + 128, b + 128
    return jnp.stack([L, a, b], axis=-1)


def lab_squared_error(a, b, parity: bool = False, *, value_range=(-1.0, 1.0)) -> jax.Array:
    """Per-pixel CIELAB error of the reference: images ``[..., H, W, 3]`` -> ``[..., H, W]`` =
    mean over (L, a, b) of ``(Δ / 255)²`` on the shifted 0..255 scale (see :func:`rgb_to_lab`
    for ``parity`` and ``value_range``)."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    _check_finite(a, "a")
    _check_finite(b, "b")
    d = (rgb_to_lab(a, parity=parity, value_range=value_range)
         - rgb_to_lab(b, parity=parity, value_range=value_range)) / 255
    return jnp.sum(d * d, axis=-1) / 3


def in_out_mse(error, region, *, resize: str = "nearest") -> dict[str, Any]:
    """In-MSE / Out-MSE of a per-pixel error map over a region.

    Args:
      error: ``[N, H, W]`` (e.g. :func:`lab_squared_error` of target and edited).
      region: ``[H', W']`` or ``[N, H', W']`` weights in [0, 1] (bool or soft), resized to H x W
        with ``resize`` if needed.
    Returns:
      ``{"in_mse", "out_mse", "ratio"}`` (pooled over all samples: ``Σ m·e / Σ m`` and
      ``Σ (1−m)·e / Σ (1−m)``; ratio = out / in, NaN when in is 0) plus per-sample lists
      ``"in_per_sample"``, ``"out_per_sample"`` (NaN where a sample's region or its complement is
      empty).
    """
    e = np.asarray(_check_finite(error, "error"), np.float64)
    if e.ndim != 3:
        raise ValueError(f"error must be [N, H, W], got shape {e.shape}")
    m = jnp.asarray(region)
    if m.ndim not in (2, 3) or (m.ndim == 3 and m.shape[0] not in (1, e.shape[0])):
        raise ValueError(f"region must be [H, W] or [N={e.shape[0]}, H, W], got {tuple(m.shape)}")
    m = np.asarray(resize_masks(m.astype(jnp.float32) if m.dtype == bool else m, e.shape[1:],
                                resize), np.float64)
    if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
        raise ValueError("region weights must be finite and in [0, 1]")
    m = np.broadcast_to(m, e.shape)
    w_in, w_out = m.sum(), (1 - m).sum()
    if w_in == 0:
        raise ValueError("the region is empty on every sample")
    if w_out == 0:
        raise ValueError("the region covers every pixel: there is no outside")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_in = (m * e).sum(axis=(1, 2)) / m.sum(axis=(1, 2))
        per_out = ((1 - m) * e).sum(axis=(1, 2)) / (1 - m).sum(axis=(1, 2))
    i, o = float((m * e).sum() / w_in), float(((1 - m) * e).sum() / w_out)
    return {"in_mse": i, "out_mse": o, "ratio": o / i if i > 0 else float("nan"),
            "in_per_sample": per_in.tolist(), "out_per_sample": per_out.tolist()}


def lab_locality(original, edited, region, *, parity: bool = False, value_range=(-1.0, 1.0),
                 resize: str = "nearest") -> dict[str, Any]:
    """:func:`in_out_mse` of :func:`lab_squared_error` between images ``[N, H, W, 3]``."""
    return in_out_mse(lab_squared_error(original, edited, parity, value_range=value_range), region,
                      resize=resize)


__all__ = [
    "CATALOG_FORMAT",
    "Catalog",
    "Contributions",
    "KMeansConvergenceWarning",
    "QUERY_MODES",
    "RESIZE_MODES",
    "SphericalKMeansResult",
    "contributions",
    "contributions_from_features",
    "in_out_mse",
    "input_resolution",
    "input_source",
    "lab_locality",
    "lab_squared_error",
    "label_queries",
    "layer_inputs",
    "query",
    "resize_masks",
    "rgb_to_lab",
    "spherical_kmeans",
    "transfer",
    "transfer_styles",
]
