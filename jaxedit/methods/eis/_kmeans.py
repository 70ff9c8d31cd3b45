"""Spherical k-means (Editing in Style's part catalog): k-means++ seeding, full-batch Lloyd or
mini-batch updates on unit rows, several restarts; deterministic for a key, one compilation."""

from __future__ import annotations

import dataclasses
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..._checks import as_float_array, as_key, check_finite
from ..._typing import Rows
from ...errors import KMeansConvergenceWarning
from ._common import _HIGHEST, _normalize_rows


@dataclasses.dataclass(frozen=True)
class SphericalKMeansResult:
    """Result of `spherical_kmeans`.

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


def _cos(x: jax.Array, c: jax.Array) -> jax.Array:
    """[M, C] x [k, C] -> [M, k] cosines of unit rows."""
    return jnp.dot(x, c.T, precision=_HIGHEST)


def _kmeanspp(X: jax.Array, k: int, key: jax.Array, n_trials: int) -> jax.Array:
    """Greedy k-means++ (as scikit-learn: ``n_trials`` candidates per centre, D² sampling with
    D² = ‖x − c‖² = 2 − 2 cos on unit rows). X: [M, C] unit rows -> [k, C]."""
    m = X.shape[0]
    key, sub = jax.random.split(key)
    first = jax.random.randint(sub, (), 0, m, dtype=jnp.int32)  # same draw with x64 on or off
    centers = jnp.zeros((k, X.shape[1]), X.dtype).at[0].set(X[first])
    d2 = jnp.maximum(2 - 2 * _cos(X, X[first][None])[:, 0], 0)

    def body(j, carry):
        centers, d2, key = carry
        key, sub = jax.random.split(key)
        total = d2.sum()
        logits = jnp.where(total > 0, jnp.log(jnp.where(d2 > 0, d2, 0)), 0.0)
        cand = jax.random.categorical(sub, logits, shape=(n_trials,))
        cd2 = jnp.maximum(2 - 2 * _cos(X, X[cand]), 0)  # [M, T]
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

    init = dict(
        C=C0,
        lab=jnp.full((n,), -1, jnp.int32),
        obj=jnp.asarray(jnp.inf, X.dtype),
        it=jnp.asarray(0, jnp.int32),
        done=jnp.asarray(False),
    )
    s = lax.while_loop(cond, body, init)
    return s["C"], s["it"], s["done"]


def _minibatch(
    X: jax.Array,
    C0: jax.Array,
    key: jax.Array,
    *,
    batch_size: int,
    max_steps: int,
    max_no_improvement: int,
    reassignment_ratio: float,
    tol,
):
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
        idx = jax.random.randint(k_batch, (batch_size,), 0, n, dtype=jnp.int32)
        xb = X[idx]
        C, mean, counts = s["C"], s["mean"], s["counts"]
        lab, best = _assign(xb, C)
        batch_obj = jnp.mean(1 - best)
        # reassignment of nearly empty clusters (uniformly chosen batch rows, no repeats)
        do_re = ((s["it"] + 1) % (10 + jnp.min(counts).astype(jnp.int32)) == 0) & (
            reassignment_ratio > 0
        )
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
        return dict(
            C=newC,
            mean=mean,
            counts=new_counts,
            key=key,
            it=s["it"] + 1,
            ewa=ewa,
            ewa_min=jnp.minimum(ewa, s["ewa_min"]),
            no_imp=no_imp,
            done=done,
        )

    init = dict(
        C=C0,
        mean=C0,
        counts=jnp.zeros((k,), X.dtype),
        key=key,
        it=jnp.asarray(0, jnp.int32),
        ewa=jnp.asarray(0, X.dtype),
        ewa_min=jnp.asarray(jnp.inf, X.dtype),
        no_imp=jnp.asarray(0, jnp.int32),
        done=jnp.asarray(False),
    )
    s = lax.while_loop(lambda s: (~s["done"]) & (s["it"] < max_steps), body, init)
    return s["C"], s["it"], s["done"]


def _kmeans_restart_impl(
    X,
    key,
    tol,
    C_init=None,
    *,
    k: int,
    batch_size: int | None,
    max_iter: int,
    init_size: int,
    n_trials: int,
    max_no_improvement: int,
    reassignment_ratio: float,
):
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
        C, it, conv = _minibatch(
            X,
            C0,
            k_run,
            batch_size=batch_size,
            max_steps=steps,
            max_no_improvement=max_no_improvement,
            reassignment_ratio=reassignment_ratio,
            tol=tol,
        )
    _, best = _assign(X, C)
    return C, jnp.sum(1 - best), it, conv


_KMEANS_STATIC = (
    "k",
    "batch_size",
    "max_iter",
    "init_size",
    "n_trials",
    "max_no_improvement",
    "reassignment_ratio",
)
_kmeans_restart = jax.jit(_kmeans_restart_impl, static_argnames=_KMEANS_STATIC)


@jax.jit
def _prepare_rows(X):
    norms = jnp.linalg.norm(X, axis=1)
    return _normalize_rows(X), jnp.sum(norms == 0)


@jax.jit
def _labels_of(X, C):
    return _assign(X, C)[0]


def spherical_kmeans(
    X: Rows,
    k: int,
    key=None,
    *,
    n_init: int = 3,
    batch_size: int | None = None,
    max_iter: int = 100,
    tol: float = 0.0,
    init="k-means++",
    init_size: int | None = None,
    max_no_improvement: int = 10,
    reassignment_ratio: float = 0.01,
    progress: bool = False,
) -> SphericalKMeansResult:
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
      `SphericalKMeansResult` (``.centroids [k, C]``, ``.labels [N]``, ``.objective``,
      ``.converged``). A `KMeansConvergenceWarning` is issued when the kept restart hit
      ``max_iter`` first (raise ``max_iter``).
    """
    X = as_float_array(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array [N, C], got shape {tuple(X.shape)}")
    n = X.shape[0]
    if int(k) != k or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, N={n}], got {k!r}")
    k = int(k)
    for name, v, lo in (
        ("n_init", n_init, 1),
        ("max_iter", max_iter, 1),
        ("max_no_improvement", max_no_improvement, 1),
    ):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"batch_size must be None or a positive integer, got {batch_size!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    if not (0 <= reassignment_ratio <= 1):
        raise ValueError(f"reassignment_ratio must be in [0, 1], got {reassignment_ratio!r}")
    check_finite("X", X)
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
            raise ValueError(
                f"init centroids must have shape [{k}, {X.shape[1]}], got {tuple(C_init.shape)}"
            )
        check_finite("init", C_init)
        C_init, zc = _prepare_rows(C_init)
        if int(zc):
            raise ValueError("init has all-zero centroids")
        n_init = 1
    keys = jax.random.split(as_key(key), int(n_init))
    static = dict(
        k=k,
        batch_size=batch_size,
        max_iter=int(max_iter),
        init_size=init_size,
        n_trials=2 + int(math.log(k)),
        max_no_improvement=int(max_no_improvement),
        reassignment_ratio=float(reassignment_ratio),
    )
    tol_arr = jnp.asarray(tol, Xn.dtype)
    best = None
    objs = []
    from ..._io import progress as _progress

    with _progress(int(n_init), "spherical k-means", enabled=progress, unit="restart") as bar:
        for i in range(int(n_init)):
            C, obj, it, conv = _kmeans_restart(Xn, keys[i], tol_arr, C_init, **static)
            objs.append(float(obj))
            if best is None or objs[-1] < best[1]:
                best = (C, objs[-1], int(it), bool(conv))
            bar.update(1)
    assert best is not None  # n_init >= 1 was checked
    C, obj, it, conv = best
    if not conv:
        warnings.warn(
            f"spherical k-means stopped at max_iter={max_iter} before converging "
            f"(objective {obj:.6g}); raise max_iter",
            KMeansConvergenceWarning,
            stacklevel=2,
        )
    return SphericalKMeansResult(
        centroids=C,
        labels=_labels_of(Xn, C),
        objective=obj,
        n_iter=it,
        converged=conv,
        restart_objectives=np.asarray(objs),
    )
