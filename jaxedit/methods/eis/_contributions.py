"""Channel contributions of parts: ``M_l[k, c]``, the share of channel c's energy (at the input
of style layer l's modulated conv) that falls inside part k."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from ..._checks import as_float_array, check_finite, check_resize
from ..._resample import resize_masks
from ..._typing import ContributionRows, LayerInputs, PartMasks, WLatents
from ._catalog import Catalog
from ._common import _HIGHEST, _as_ws, _check_gen, _options
from ._features import _feature_batches, _inputs_from_features, input_source


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
    m = as_float_array(masks)
    if m.ndim != 4:
        raise ValueError(f"masks must be [N, K, H0, W0], got shape {tuple(m.shape)}")
    check_finite("masks", m)
    feats = {}
    for name, a in features.items():
        a = jnp.asarray(a)
        if a.ndim != 4 or a.shape[0] != m.shape[0]:
            raise ValueError(
                f"features[{name!r}] must be [N={m.shape[0]}, H, W, C], got {tuple(a.shape)}"
            )
        feats[name] = check_finite(
            f"features[{name!r}]", a.astype(jnp.result_type(a.dtype, m.dtype))
        )
    return feats, m


def contributions_from_features(
    features: Mapping[str, LayerInputs], masks: PartMasks, resize: str = "nearest"
) -> dict[str, ContributionRows]:
    """Channel contributions of parts, from feature maps and masks given directly (pure core).

    ``M_l[k, c] = Σ_{n,h,w} A_l²[n,h,w,c]·U_k[n,h,w] / Σ_{n,h,w} A_l²[n,h,w,c]`` with ``U_k`` the
    masks resized to A_l's grid (`resize_masks`); a channel with no energy gets 0.

    Args:
      features: ``{layer: [N, H_l, W_l, C_l]}``: for Editing in Style, the *input* of each styled
        layer (`layer_inputs`).
      masks: ``[N, K, H0, W0]`` part masks (0/1 or soft).
      resize: ``"nearest"`` (reference) or ``"area"``.
    Returns:
      ``{layer: [K, C_l]}``; rows sum to 1 over parts that cover every pixel.
    """
    check_resize(resize)
    feats, m = _check_features_masks(features, masks)
    num, den = _contribution_sums(feats, m, jnp.ones((m.shape[0],), m.dtype), resize=resize)
    return {name: _ratio(num[name], den[name]) for name in feats}


class Contributions(Mapping):
    """Per style layer ``M_l`` ``[K, C_l]`` (a read-only mapping layer -> array, in generator
    order), with the row names and, when the rows are catalog clusters, the catalog's labels.

    Attributes:
      rows: name of each row (cluster ids as strings, or label names).
      annotations: ``{label: cluster ids}`` used by `label` when rows are clusters.
    """

    def __init__(
        self,
        matrices: Mapping[str, jax.Array],
        rows: Sequence[str],
        annotations: Mapping[str, Sequence[int]] | None = None,
        resize: str = "nearest",
    ):
        self._m = dict(matrices)
        self.rows = tuple(rows)
        self.annotations = {k: tuple(v) for k, v in (annotations or {}).items()}
        self.resize = resize
        for name, M in self._m.items():
            if M.ndim != 2 or M.shape[0] != len(self.rows):
                raise ValueError(
                    f"contributions[{name!r}] must be [{len(self.rows)}, C], got {tuple(M.shape)}"
                )

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
        raise ValueError(
            f"unknown label {name!r}; rows {list(self.rows)}, annotated labels "
            f"{list(self.annotations)}"
        )


def contributions(
    gen,
    latents: WLatents | None,
    catalog,
    labels: str | Sequence[str] | None = None,
    *,
    names: Sequence[str] | None = None,
    resize: str = "nearest",
    soft: bool = False,
    temperature: float = 0.1,
    layers: Sequence[str] | None = None,
    sampling=None,
    compute=None,
    progress: bool = False,
) -> Contributions:
    """``M_l`` ``[K, C_l]`` for every style layer l, accumulated over samples in batches.

    ``A_l`` is the input of layer l's modulated conv (`layer_inputs`), ``U_k`` the part
    mask resized to A_l's grid (``resize``: ``"nearest"``, the reference, or ``"area"``).

    Args:
      latents: ws ``[N, num_ws, w_dim]`` / w ``[N, w_dim]``; None with a `Catalog` uses
        the samples it was fitted on.
      catalog: a `Catalog` (masks predicted per sample at its layer; rows = its K clusters,
        or with ``labels`` the named labels) or an array of masks ``[N, K, H0, W0]`` for the same
        samples (rows named by ``names``, default ``"0".."K-1"``).
      soft, temperature: soft heatmaps (`Catalog.predict_features`).
      layers: style layers (default ``gen.modulated_layers``: every style layer but
        StyleGAN3's input layer, whose style scales no channels).
      sampling: a `jaxedit.Sampling`; only ``noise_mode`` is read (``"const"`` or ``"none"``:
        the feature pass takes no noise key; the latents are used as given). None:
        ``Sampling()``.
      compute: a `jaxedit.Compute` (None: ``Compute()``; a ``batch_size`` of None
          means 8 samples per feature pass): ``dtype``, ``precision``
        and ``batch_size`` (samples per generator call).
    Returns:
      `Contributions` (``{layer: [K, C_l]}`` with row names).

    Raises:
      TypeError: ``sampling`` / ``compute`` of the wrong type.
    """
    _check_gen(gen)
    check_resize(resize)
    sampling, compute = _options(sampling, compute, "contributions", has_key=False)
    layers = tuple(gen.modulated_layers if layers is None else layers)
    for name in layers:
        input_source(gen, name)
    if isinstance(catalog, Catalog):
        catalog.check_generator(gen)
        if latents is None:
            if catalog.latents is None:
                raise ValueError("the catalog stores no samples: pass latents")
            latents = catalog.latents
        ids = None if labels is None else catalog._label_ids(labels)
        rows = (
            [str(i) for i in range(catalog.k)]
            if labels is None
            else ([labels] if isinstance(labels, str) else list(labels))
        )
        annotations = catalog.annotations if labels is None else {}
        given = None
    else:
        given = jnp.asarray(catalog)
        if given.ndim != 4:
            raise ValueError(
                f"catalog must be a Catalog or masks [N, K, H0, W0], got shape {tuple(given.shape)}"
            )
        if latents is None:
            raise ValueError("pass the latents the masks belong to")
        rows = [str(i) for i in range(given.shape[1])] if names is None else [str(n) for n in names]
        if len(rows) != given.shape[1]:
            raise ValueError(f"names has {len(rows)} entries for {given.shape[1]} masks")
        annotations, ids = {}, None
    ws = _as_ws(gen, latents, dtype=compute.dtype)
    n = ws.shape[0]
    if given is not None and given.shape[0] != n:
        raise ValueError(f"masks are for {given.shape[0]} samples, latents for {n}")
    num = den = None
    from ..._io import progress as _progress

    with _progress(n, "contributions", enabled=progress, unit="sample") as bar:
        for lo, hi, feats in _feature_batches(gen, ws, sampling, compute):
            dt = next(iter(feats.values())).dtype
            b = next(iter(feats.values())).shape[0]
            if given is None:
                m = catalog.predict_features(
                    feats[catalog.layer], soft=soft, temperature=temperature
                )
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
    if num is None or den is None:
        raise ValueError("latents hold no samples: contributions need at least one")
    return Contributions({k: _ratio(num[k], den[k]) for k in layers}, rows, annotations, resize)
