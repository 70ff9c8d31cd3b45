"""Query and transfer: which channels of each style layer to take from the reference
(`query`, `label_queries`), and the mixed styles and images (`transfer_styles`, `transfer`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_float_array, check_finite, is_tracer
from ..._typing import MixedStyles, RGBImages, WLatents
from ._catalog import Catalog
from ._common import QUERY_MODES, _as_ws, _check_gen, _options
from ._contributions import Contributions, contributions


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


def _per_layer(value, names: Sequence[Any], argname: str) -> dict[Any, Any]:
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        extra = [k for k in value if k not in names]
        if missing or extra:
            raise ValueError(f"{argname} per layer: missing {missing}, unexpected {extra}")
        return {n: value[n] for n in names}
    if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1:
        if len(value) != len(names):
            raise ValueError(
                f"{argname} has {len(value)} values for {len(names)} layers ({list(names)})"
            )
        return dict(zip(names, value))
    return {n: value for n in names}


def _check_scalar(v, argname: str, mode: str):
    if v is None:
        raise ValueError(f"query mode {mode!r} needs {argname}")
    if np.ndim(v) != 0:
        raise ValueError(f"{argname} must be a scalar per layer, got shape {np.shape(v)}")
    if not is_tracer(v) and not np.isfinite(float(v)):
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
        names: list[Any] = list(m) if isinstance(m, Mapping) else list(range(len(m)))
        vals: Mapping[Any, Any] = m if isinstance(m, Mapping) else dict(zip(names, m))
        r = _per_layer(rho, names, "rho")
        e = _per_layer(eps, names, "eps")
        lm = _per_layer(lam, names, "lam")
        out = {n: query(vals[n], r[n], e[n], mode, lam=lm[n]) for n in names}
        return out if isinstance(m, Mapping) else [out[n] for n in names]
    m = as_float_array(m)
    if m.ndim != 1:
        raise ValueError(f"m must be [C] (one part at one layer), got shape {tuple(m.shape)}")
    check_finite("m", m)
    if mode == "simultaneous":
        lam = _check_scalar(lam, "lam", mode)
        return _query_core(m, None, None, jnp.asarray(lam, m.dtype), mode)
    rho = _check_scalar(rho, "rho", mode)
    eps = _check_scalar(eps, "eps", mode)
    return _query_core(m, jnp.asarray(rho, m.dtype), jnp.asarray(eps, m.dtype), None, mode)


def label_queries(
    contribs: Contributions,
    label: str,
    rho=None,
    eps=None,
    mode: str = "reference",
    *,
    lam=None,
    layers: Sequence[str] | None = None,
) -> dict[str, jax.Array]:
    """``{layer: q_l [C_l]}`` for one label: `query` of `Contributions.label` on
    every layer (``layers`` restricts them; rho/eps/lam per layer follow that order)."""
    if not isinstance(contribs, Contributions):
        raise ValueError(f"contribs must be Contributions, got {type(contribs).__name__}")
    ms = contribs.label(label)
    if layers is not None:
        unknown = [n for n in layers if n not in ms]
        if unknown:
            raise ValueError(f"unknown layers {unknown}; contributions have {list(ms)}")
        ms = {n: ms[n] for n in layers}
    return cast(dict[str, jax.Array], query(ms, rho, eps, mode, lam=lam))


# ------------------------------------------------------------------------------------------------
# Transfer
# ------------------------------------------------------------------------------------------------
def _pair_ws(gen, ws_target, ws_reference, dtype):
    t = _as_ws(gen, ws_target, "ws_target", dtype)
    r = _as_ws(gen, ws_reference, "ws_reference", dtype)
    nt, nr = t.shape[0], r.shape[0]
    if nt != nr and 1 not in (nt, nr):
        raise ValueError(
            f"target i is paired with reference i: need equal N or one of them 1, got "
            f"{nt} targets and {nr} references"
        )
    n = max(nt, nr)
    return (jnp.broadcast_to(t, (n,) + t.shape[1:]), jnp.broadcast_to(r, (n,) + r.shape[1:]))


def _check_qs(gen, qs: Mapping[str, Any], n: int, dt) -> dict[str, jax.Array]:
    names = list(gen.layer_names)
    unknown = [k for k in qs if k not in names]
    if unknown:
        raise ValueError(f"qs has unknown layers {unknown}; style layers are {names}")
    out = {}
    for name, q in qs.items():
        c = gen.style_dim(name)
        q = jnp.asarray(q, dt)
        if q.shape not in ((c,), (1, c), (n, c)):
            raise ValueError(f"qs[{name!r}] must be [{c}] or [N={n}, {c}], got {tuple(q.shape)}")
        out[name] = check_finite(f"qs[{name!r}]", q)
    return out


def transfer_styles(
    gen,
    ws_target: WLatents,
    ws_reference: WLatents,
    qs: Mapping[str, Any],
    *,
    compute=None,
    jit: bool = True,
) -> dict[str, MixedStyles]:
    """Mixed styles ``s_l = (1 − q_l)·s_T + q_l·s_R`` (exactly s_T at q = 0 and s_R at q = 1).

    Args:
      ws_target, ws_reference: ws ``[N, num_ws, w_dim]`` (or w ``[N, w_dim]``); target i is
        paired with reference i (equal N, or one side has N = 1 and is broadcast).
      qs: ``{layer: [C_l] or [N, C_l]}``; layers not given keep the target's style.
      compute: a `jaxedit.Compute`; ``dtype`` and ``precision`` are read (one call for all N
        pairs). None: the default.
      jit: jit the style computation.
    Returns:
      ``{layer: [N, C_l]}`` for every style layer (``gen.synthesis_from_styles`` input).

    Raises:
      TypeError: ``compute`` of the wrong type.
    """
    _check_gen(gen)
    compute = _options(None, compute, "transfer_styles", has_key=True)[1]
    t, r = _pair_ws(gen, ws_target, ws_reference, compute.dtype)
    if not isinstance(qs, Mapping):
        raise ValueError("qs must be a dict {style layer: q [C_l]}")
    s_t = gen.styles(t, dtype=compute.dtype, precision=compute.precision, jit=jit)
    s_r = gen.styles(r, dtype=compute.dtype, precision=compute.precision, jit=jit)
    dt = next(iter(s_t.values())).dtype
    q = _check_qs(gen, qs, t.shape[0], dt)
    return {
        name: (1 - q[name]) * s_t[name] + q[name] * s_r[name] if name in q else s_t[name]
        for name in gen.layer_names
    }


def transfer(
    gen,
    ws_target: WLatents,
    ws_reference: WLatents,
    qs,
    label: str | None = None,
    rho=None,
    eps=None,
    mode: str = "reference",
    *,
    lam=None,
    layers: Sequence[str] | None = None,
    contribution_latents: WLatents | None = None,
    resize: str = "nearest",
    sampling=None,
    compute=None,
    key=None,
    jit: bool = True,
) -> RGBImages:
    """Local style transfer: the ``label`` part of reference i's appearance onto target i.

    Args:
      ws_target, ws_reference: ws ``[N, num_ws, w_dim]`` / w ``[N, w_dim]``, paired by index
        (equal N, or one side N = 1, broadcast).
      qs: either the explicit ``{layer: q_l [C_l]}`` (then label/rho/eps/mode are unused), or a
        `Contributions` / `Catalog` with ``label`` and the query parameters
        (`query`; rho/eps/lam scalar or per layer). A catalog's contributions are computed
        on ``contribution_latents`` (default: the catalog's own samples) with ``resize``.
      layers: style layers that may change (default all, ToRGB included).
      sampling: a `jaxedit.Sampling`; only ``noise_mode`` is read (the latents are used as
        given), by the synthesis and by a catalog's contributions (which refuse
        ``"random"``: they take no noise key). None: ``Sampling()``.
      compute: a `jaxedit.Compute` (None: ``Compute()``; a ``batch_size`` of None
          means 8 samples per feature pass): ``dtype`` and
        ``precision``; ``batch_size`` is the samples per generator call of a catalog's
        contributions (the transfer itself is one call for all N pairs).
      key: PRNG key for ``noise_mode="random"`` in the synthesis.
      jit: jit the styles and the synthesis.
    Returns:
      images ``[N, H, W, 3]``.

    Raises:
      TypeError: ``sampling`` / ``compute`` of the wrong type.
    """
    sampling, compute = _options(sampling, compute, "transfer", has_key=True)
    if isinstance(qs, Catalog):
        qs = contributions(
            gen, contribution_latents, qs, resize=resize, sampling=sampling, compute=compute
        )
    if isinstance(qs, Contributions):
        if label is None:
            raise ValueError("transfer with contributions or a catalog needs a label")
        qs = label_queries(qs, label, rho, eps, mode, lam=lam, layers=layers)
    elif not isinstance(qs, Mapping):
        raise ValueError(
            f"qs must be a dict of per-layer q, Contributions or a Catalog, got {type(qs).__name__}"
        )
    elif layers is not None:
        qs = {k: v for k, v in qs.items() if k in layers}
    styles = transfer_styles(gen, ws_target, ws_reference, qs, compute=compute, jit=jit)
    return gen.synthesis_from_styles(
        styles,
        noise_mode=sampling.noise_mode,
        key=key,
        dtype=compute.dtype,
        precision=compute.precision,
        jit=jit,
    )
