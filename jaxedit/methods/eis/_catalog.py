"""The part catalog: spherical k-means clusters of one layer's per-pixel features, their names,
heatmaps / label masks of new samples, and the ``.npz`` file."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import as_key, check_finite
from ..._resample import resize_masks
from ..._typing import (
    CatalogFeatures,
    Heatmaps,
    HeatmapsLike,
    LabelMasks,
    LabelMasksResized,
    WLatents,
)
from ...sampling import Sampling
from ._common import (
    _HIGHEST,
    CATALOG_FORMAT,
    _as_ws,
    _check_gen,
    _check_ids,
    _check_label,
    _normalize_rows,
    _options,
)
from ._features import _feature_batches, input_resolution
from ._kmeans import spherical_kmeans


@functools.partial(jax.jit, static_argnames=("soft",))
def _heatmaps(features, centroids, temperature, *, soft: bool):
    """features [N, H, W, C], unit centroids [K, C] -> [N, K, H, W] one-hot (or softmax)."""
    x = _normalize_rows(features)
    s = jnp.einsum("nhwc,kc->nkhw", x, centroids.astype(x.dtype), precision=_HIGHEST)
    if soft:
        return jax.nn.softmax(s / temperature, axis=1)
    return jax.nn.one_hot(jnp.argmax(s, axis=1), centroids.shape[0], axis=1, dtype=x.dtype)


def _seed_ws(gen, seeds, sampling: Sampling, dtype):
    from ...models.stylegan2 import seed_to_z

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty")
    if any(s < 0 or s >= 2**32 for s in seeds):
        raise ValueError("seeds must be integers in [0, 2**32)")
    z = np.concatenate([seed_to_z(s, gen.z_dim) for s in seeds])
    return gen.mapping(
        z, sampling.c, sampling.truncation_psi, sampling.truncation_cutoff, dtype=dtype
    )


def _layer_size(gen, layer: str) -> tuple[int, int]:
    """(side inside the image, channels) of a feature layer's output (margins cut off)."""
    h, _, ch = gen.feature_shape(layer)
    return int(h - 2 * gen.feature_margin(layer)), int(ch)


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
        (the default samples of `contributions`), or None.
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
        return (
            f"Catalog(layer={self.layer!r}, k={self.k}, resolution={self.resolution}, "
            f"annotations={dict(self.annotations)})"
        )

    # ---- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        gen,
        layer: str,
        k: int,
        seeds: Sequence[int] | None = None,
        latents: WLatents | None = None,
        *,
        key=None,
        sampling=None,
        compute=None,
        pixels_per_sample: int | None = None,
        max_points_bytes: int = 2**31,
        n_init: int = 3,
        kmeans_batch_size: int | None = None,
        max_iter: int = 100,
        tol: float = 0.0,
        progress: bool = False,
    ) -> Catalog:
        """Cluster every pixel of every sample's ``layer`` output (``[N·H·W, C]`` rows).

        Args:
          gen: a StyleGAN2 or StyleGAN3 generator.
          layer: a feature layer (``gen.feature_layers``), e.g. ``"b32.conv1"`` (the reference
            clusters the 32x32 block); StyleGAN3 (``"L3_36_512"``): the pixels inside the image
            (the margins are cut off, so heatmaps line up with the image).
          k: clusters.
          seeds: NVIDIA ``generate.py`` seeds (z = ``RandomState(seed).randn``), mapped with
            ``sampling`` (``c``, ``truncation_psi``, ``truncation_cutoff``); or ``latents``:
            ws ``[N, num_ws, w_dim]`` / w ``[N, w_dim]``, used as given. Exactly one of the two.
          key: k-means key or int seed (None = 0).
          sampling: a `jaxedit.Sampling` (None: ``Sampling()``): the class vectors ``c``
            ``[N, c_dim]`` and truncation for ``seeds``, and the ``noise_mode`` of the feature
            pass (``"const"`` or ``"none"``: the pass takes no noise key).
          compute: a `jaxedit.Compute` (None: ``Compute()``; a ``batch_size`` of None
          means 8 samples per feature pass): ``dtype`` (also of
            the clustered rows), ``precision`` and ``batch_size`` (samples per generator call,
            the memory bound of the feature pass).
          pixels_per_sample: cluster only this many random pixels per sample (None = all).
          max_points_bytes: refuse (ValueError) when the ``[N·H·W, C]`` rows would take more.
          n_init, kmeans_batch_size, max_iter, tol: `spherical_kmeans` (``n_init``,
            ``batch_size``: its own mini-batch of rows, ``max_iter``, ``tol``).
          progress: progress bars for the feature pass and the restarts.

        Returns:
          a `Catalog` with no annotations yet (``info`` records the seeds' ``psi`` and
          ``cutoff`` under those keys, as the file format has them).

        Raises:
          TypeError: ``sampling`` / ``compute`` of the wrong type.
          ValueError: an unknown layer, not exactly one of seeds / latents, bad seeds or
            latents, ``sampling.noise_mode="random"``, a bad ``pixels_per_sample``, or rows
            over ``max_points_bytes``.
        """
        _check_gen(gen)
        if layer not in gen.feature_layers:
            raise ValueError(
                f"unknown layer {layer!r}; choose a feature layer of {list(gen.feature_layers)}"
            )
        if (seeds is None) == (latents is None):
            raise ValueError("pass exactly one of seeds or latents")
        sampling, compute = _options(sampling, compute, "Catalog.fit", has_key=False)
        info: dict[str, Any] = {}
        dt = compute.resolved_dtype
        if seeds is not None:
            ws = _seed_ws(gen, seeds, sampling, dt)
            cutoff = sampling.truncation_cutoff
            info.update(
                seeds=[int(s) for s in seeds],
                psi=sampling.truncation_psi,
                cutoff=None if cutoff is None else int(cutoff),
            )
        else:
            ws = _as_ws(gen, latents, dtype=dt)
        n = ws.shape[0]
        res, ch = _layer_size(gen, layer)
        per = res * res if pixels_per_sample is None else int(pixels_per_sample)
        if not 1 <= per <= res * res:
            raise ValueError(
                f"pixels_per_sample must be in [1, {res * res}], got {pixels_per_sample!r}"
            )
        itemsize = jnp.dtype(dt).itemsize
        need = n * per * ch * itemsize
        if need > max_points_bytes:
            raise ValueError(
                f"clustering {n} samples x {per} pixels x {ch} channels needs "
                f"{need / 2**30:.2f} GiB "
                f"(> max_points_bytes = {max_points_bytes / 2**30:.2f} GiB): use fewer seeds or "
                f"pixels_per_sample"
            )
        key = as_key(key)
        key, k_pix = jax.random.split(key)
        rows = np.empty((n * per, ch), np.dtype(dt))
        from ..._io import progress as _progress

        with _progress(n, f"features {layer}", enabled=progress, unit="sample") as bar:
            for lo, hi, feats in _feature_batches(gen, ws, sampling, compute):
                f = np.asarray(feats[layer][: hi - lo]).reshape(hi - lo, res * res, ch)
                if per < res * res:
                    sel = np.stack(
                        [
                            np.asarray(
                                jax.random.choice(
                                    jax.random.fold_in(k_pix, i), res * res, (per,), replace=False
                                )
                            )
                            for i in range(lo, hi)
                        ]
                    )
                    f = np.take_along_axis(f, sel[:, :, None], axis=1)
                rows[lo * per : hi * per] = f.reshape(-1, ch)
                bar.update(hi - lo)
        check_finite(f"features of {layer}", rows)
        km = spherical_kmeans(
            rows,
            k,
            key,
            n_init=n_init,
            batch_size=kmeans_batch_size,
            max_iter=max_iter,
            tol=tol,
            progress=progress,
        )
        info.update(
            objective=km.objective,
            converged=km.converged,
            n_iter=km.n_iter,
            restart_objectives=[float(v) for v in km.restart_objectives],
            n_samples=int(n),
            pixels_per_sample=int(per),
            n_init=int(n_init),
            kmeans_batch_size=kmeans_batch_size,
            max_iter=int(max_iter),
            tol=float(tol),
            noise_mode=sampling.noise_mode,
            generator=gen.config.to_dict(),
        )
        return cls(
            layer=layer,
            centroids=np.asarray(km.centroids),
            resolution=res,
            annotations={},
            latents=_compact_ws(np.asarray(ws)),
            info=info,
        )

    # ---- using ---------------------------------------------------------------------------------
    def check_generator(self, gen) -> None:
        """ValueError unless ``gen`` has this catalog's layer with the same channels and size."""
        _check_gen(gen)
        if self.layer not in gen.feature_layers:
            raise ValueError(
                f"the catalog's layer {self.layer!r} is not a feature layer of this "
                f"generator ({list(gen.feature_layers)})"
            )
        res, ch = _layer_size(gen, self.layer)
        if res != self.resolution:
            raise ValueError(
                f"the catalog's layer {self.layer} is {self.resolution} px, the generator's "
                f"{res} px: it was fitted on another generator"
            )
        if ch != self.centroids.shape[1]:
            raise ValueError(
                f"the catalog has {self.centroids.shape[1]} channels at {self.layer}, "
                f"the generator {ch}: it was fitted on another generator"
            )

    def predict_features(
        self, features: CatalogFeatures, *, soft: bool = False, temperature: float = 0.1
    ) -> Heatmaps:
        """features ``[N, R, R, C]`` of `layer` -> heatmaps ``[N, K, R, R]``: one-hot of the
        most similar centroid (cosine), or ``softmax(cos / temperature)`` over K with ``soft``."""
        f = jnp.asarray(features)
        if f.ndim != 4 or f.shape[-1] != self.centroids.shape[1]:
            raise ValueError(
                f"features must be [N, H, W, {self.centroids.shape[1]}], got {tuple(f.shape)}"
            )
        if soft and not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        return _heatmaps(
            f, jnp.asarray(self.centroids), jnp.asarray(temperature, f.dtype), soft=bool(soft)
        )

    def predict(
        self,
        gen,
        latents: WLatents,
        *,
        soft: bool = False,
        temperature: float = 0.1,
        sampling=None,
        compute=None,
        progress: bool = False,
    ) -> Heatmaps:
        """Heatmaps of new samples (see `predict_features`).

        Args:
          gen: the generator the catalog was fitted on.
          latents: ws ``[N, num_ws, w_dim]`` or w ``[N, w_dim]`` (used as given).
          soft, temperature: softmax heatmaps instead of one-hot (`predict_features`).
          sampling: a `jaxedit.Sampling`; only ``noise_mode`` is read (``"const"`` or
            ``"none"``: the feature pass takes no noise key). None: ``Sampling()``.
          compute: a `jaxedit.Compute` (None: ``Compute()``; a ``batch_size`` of None
          means 8 samples per feature pass): ``dtype``,
            ``precision`` and ``batch_size`` (samples per generator call).
          progress: a progress bar over the samples.

        Returns:
          heatmaps ``[N, K, R, R]``.

        Raises:
          TypeError: ``sampling`` / ``compute`` of the wrong type.
          ValueError: another generator, bad latents or ``sampling.noise_mode="random"``.
        """
        self.check_generator(gen)
        sampling, compute = _options(sampling, compute, "Catalog.predict", has_key=False)
        ws = _as_ws(gen, latents, dtype=compute.dtype)
        out = []
        from ..._io import progress as _progress

        with _progress(ws.shape[0], "heatmaps", enabled=progress, unit="sample") as bar:
            for lo, hi, feats in _feature_batches(gen, ws, sampling, compute):
                out.append(
                    self.predict_features(feats[self.layer], soft=soft, temperature=temperature)[
                        : hi - lo
                    ]
                )
                bar.update(hi - lo)
        return jnp.concatenate(out)

    def _label_ids(self, labels) -> list[tuple[int, ...]]:
        names = (
            self.labels
            if labels is None
            else ([labels] if isinstance(labels, str) else list(labels))
        )
        out = []
        for name in names:
            if name not in self.annotations:
                raise ValueError(
                    f"unknown label {name!r}; the catalog has {list(self.labels)} "
                    f"(name clusters with annotate)"
                )
            out.append(tuple(self.annotations[name]))
        if not out:
            raise ValueError("the catalog has no annotations: name clusters with annotate first")
        return out

    def label_masks(
        self, heatmaps: HeatmapsLike, labels: str | Sequence[str] | None = None
    ) -> LabelMasks:
        """heatmaps ``[N, K, H, W]`` -> ``[N, L, H, W]``: per label, the sum of its clusters'
        heatmaps (labels: a name, a list, or None for all annotated labels in order)."""
        h = jnp.asarray(heatmaps)
        if h.ndim != 4 or h.shape[1] != self.k:
            raise ValueError(f"heatmaps must be [N, {self.k}, H, W], got {tuple(h.shape)}")
        sel = np.zeros((len(ids := self._label_ids(labels)), self.k))
        for i, cl in enumerate(ids):
            sel[i, list(cl)] = 1.0
        return jnp.einsum("lk,nkhw->nlhw", jnp.asarray(sel, h.dtype), h, precision=_HIGHEST)

    def masks(
        self,
        gen,
        latents: WLatents,
        labels: str | Sequence[str] | None = None,
        size=None,
        *,
        resize: str = "nearest",
        soft: bool = False,
        **kw,
    ) -> LabelMasksResized:
        """Label masks of samples at any resolution: ``[N, L, h, w]``.

        ``size``: None (the catalog layer's), an int / (h, w), or a style layer name (that
        layer's *input* resolution, as `contributions` uses). ``resize``: ``"nearest"``
        (reference) or ``"area"``.
        """
        m = self.label_masks(self.predict(gen, latents, soft=soft, **kw), labels)
        if size is None:
            return m
        if isinstance(size, str):
            size = input_resolution(gen, size)
        return resize_masks(m, size, resize)

    def annotate(
        self, annotations: Mapping[str, Sequence[int] | int], *, replace: bool = False
    ) -> Catalog:
        """A copy with named labels: ``{"eyes": [3, 7], "mouth": 5}`` (several clusters may form
        one label; a name given again is overwritten; ``replace=True`` drops the old names)."""
        if not isinstance(annotations, Mapping):
            raise ValueError("annotations must be a mapping {label: cluster ids}")
        new = {} if replace else {k: tuple(v) for k, v in self.annotations.items()}
        for name, ids in annotations.items():
            new[_check_label(name)] = _check_ids(ids, self.k, name)
        return dataclasses.replace(self, annotations=new)

    def without(self, *labels: str) -> Catalog:
        """A copy without the given labels (ValueError for unknown ones)."""
        missing = [n for n in labels if n not in self.annotations]
        if missing:
            raise ValueError(f"unknown label(s) {missing}; the catalog has {list(self.labels)}")
        return dataclasses.replace(
            self, annotations={k: v for k, v in self.annotations.items() if k not in labels}
        )

    # ---- files ---------------------------------------------------------------------------------
    def save(self, path, *, overwrite: bool = True) -> str:
        """Write ``.npz`` (centroids, latents) with the metadata as an embedded JSON string,
        atomically (``overwrite=False`` refuses an existing file). Returns the path written."""
        from ..._io import save_npz

        meta = dict(
            format=CATALOG_FORMAT,
            layer=self.layer,
            resolution=int(self.resolution),
            annotations={k: [int(i) for i in v] for k, v in self.annotations.items()},
            info=dict(self.info),
        )
        arrays = dict(centroids=np.asarray(self.centroids), meta=json.dumps(meta, sort_keys=True))
        if self.latents is not None:
            arrays["latents"] = np.asarray(self.latents)
        return save_npz(path, overwrite=overwrite, **arrays)

    @classmethod
    def load(cls, path) -> Catalog:
        """Read a catalog written by `save`; every problem is a ValueError naming the file
        and key (no pickles are read)."""
        from ..._io import load_npz

        data = load_npz(path, ("centroids", "meta"), "Editing in Style catalog")
        where = os.fspath(path)
        try:
            meta = json.loads(str(data["meta"]))
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: key 'meta' is not valid JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != CATALOG_FORMAT:
            raise ValueError(f"{where}: key 'meta' is not a {CATALOG_FORMAT} header")
        C = data["centroids"]
        if (
            C.ndim != 2
            or C.shape[0] < 1
            or C.shape[1] < 1
            or not np.issubdtype(C.dtype, np.floating)
        ):
            raise ValueError(
                f"{where}: key 'centroids' must be a float [K, C] array, got {C.dtype} {C.shape}"
            )
        if not np.all(np.isfinite(C)):
            raise ValueError(f"{where}: key 'centroids' has non-finite values")
        if not np.allclose(np.linalg.norm(C, axis=1), 1, atol=1e-3):
            raise ValueError(f"{where}: key 'centroids' rows are not unit vectors")
        layer, res = meta.get("layer"), meta.get("resolution")
        if not isinstance(layer, str) or not re.fullmatch(
            r"b\d+\.conv[01]|input|L\d+_\d+_\d+", layer
        ):
            raise ValueError(f"{where}: meta 'layer' must be a feature layer name, got {layer!r}")
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
            if (
                lat.ndim not in (2, 3)
                or lat.shape[0] < 1
                or not np.issubdtype(lat.dtype, np.floating)
            ):
                raise ValueError(
                    f"{where}: key 'latents' must be float [N, w_dim] or "
                    f"[N, num_ws, w_dim], got {lat.dtype} {lat.shape}"
                )
            if not np.all(np.isfinite(lat)):
                raise ValueError(f"{where}: key 'latents' has non-finite values")
        info = meta.get("info", {})
        return cls(
            layer=layer,
            centroids=C,
            resolution=res,
            annotations=ann,
            latents=lat,
            info=info if isinstance(info, dict) else {},
        )
