"""Ground floor of Editing in Style: constants, label / cluster-id checks and the generator and
latent checks that every other module of the package shares."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..._checks import check_finite, float_dtype
from ...sampling import Compute, Sampling, as_compute, as_sampling

QUERY_MODES = ("reference", "ratio", "simultaneous")
CATALOG_FORMAT = "jaxedit.eis.catalog/1"
_HIGHEST = lax.Precision.HIGHEST
_LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
# ``compute=None`` in EiS: 8 samples per feature pass (the old ``batch_size=8`` default).
DEFAULT_COMPUTE = Compute()  # batch_size None: 8 samples per feature pass (_feature_batches)


def _options(sampling, compute, where: str, *, has_key: bool) -> tuple[Sampling, Compute]:
    """Checked ``(sampling, compute)``; None -> ``Sampling()`` / ``DEFAULT_COMPUTE``. A feature
    pass that takes no noise key (``has_key=False``) refuses ``noise_mode="random"``."""
    s = as_sampling(sampling, "sampling")
    c = DEFAULT_COMPUTE if compute is None else as_compute(compute, "compute")
    if not has_key and s.noise_mode == "random":
        raise ValueError(
            f"sampling.noise_mode='random' needs a noise key, which {where} does not "
            "take: use 'const' or 'none'"
        )
    return s, c


def _check_gen(gen) -> None:
    from ...models import AbstractGenerator

    if not isinstance(gen, AbstractGenerator) or not gen.has_styles:
        raise ValueError(
            f"Editing in Style needs a generator with per-layer styles (StyleGAN2, StyleGAN3), "
            f"got {getattr(gen, 'display_name', type(gen).__name__)}"
        )


def _crop(gen, feats):
    """Every feature map of a `features` pass cut to the image region (StyleGAN3's margins)."""
    out = {}
    for name, x in feats.items():
        m = gen.feature_margin(name)
        out[name] = x[:, m : x.shape[1] - m, m : x.shape[2] - m] if m else x
    return out


def _as_ws(gen, latents, name: str = "latents", dtype=None) -> jax.Array:
    """``[N, w_dim]`` or ``[N, num_ws, w_dim]`` -> ``[N, num_ws, w_dim]`` (finite, checked)."""
    lat = jnp.asarray(latents, dtype or float_dtype())
    if lat.ndim == 2 and lat.shape[1] == gen.w_dim:
        lat = jnp.broadcast_to(lat[:, None], (lat.shape[0], gen.num_ws, gen.w_dim))
    if lat.ndim != 3 or lat.shape[1:] != (gen.num_ws, gen.w_dim):
        raise ValueError(
            f"{name} must be ws [N, {gen.num_ws}, {gen.w_dim}] or w [N, {gen.w_dim}], "
            f"got shape {tuple(lat.shape)}"
        )
    if lat.shape[0] == 0:
        raise ValueError(f"{name} is empty (N = 0)")
    return check_finite(name, lat)


def _normalize_rows(x: jax.Array) -> jax.Array:
    n = jnp.linalg.norm(x, axis=-1, keepdims=True)
    return x / jnp.where(n > 0, n, 1)


def _check_label(name) -> str:
    if not isinstance(name, str) or not _LABEL_RE.match(name):
        raise ValueError(
            "a label must start with a letter or '_' and contain only letters, "
            f"digits, '_', '-', '.', got {name!r}"
        )
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
