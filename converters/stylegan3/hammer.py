"""Hammer / ReSeFa StyleGAN3 checkpoints (``torch.save`` of ``{'models': ..., 'model_kwargs_init':
...}``, zhujiapeng/resefa ``models/stylegan3_generator.py`` ``StyleGAN3Generator``).

Network selection follows ReSeFa: ``generator_smooth`` if present, else ``generator``
(``which=`` picks either). The file is read with the restricted torch-free reader.

Key mapping into jaxedit's layout (weights raw, gains applied at run time, as in Hammer):

* ``w_avg`` -> ``mapping_net/w_avg``; ``mapping.dense{i}.*`` -> ``mapping_net/fc{i}/*``
  (weights transposed); ``mapping.embedding.*`` -> ``mapping_net/embed/*``;
* ``synthesis.early_layer.{weight, frequency, phase, transform, affine.*}`` -> ``input/{weight,
  freqs, phases, transform, affine/*}``; its ``grid`` buffer is checked (it is the sampling grid
  jaxedit computes), not stored;
* ``synthesis.layer{i}.{conv.weight, conv.style.*, filter.bias, magnitude_ema}`` -> the layer
  ``L{i}_{size}_{channels}`` (``weight``, ``affine/*``, ``bias``, ``magnitude_ema``); its
  ``filter.up_filter`` / ``filter.down_filter`` are checked against the config's design.

The configuration comes from ``model_kwargs_init`` (Hammer's defaults for absent kwargs, e.g.
``kernel_size=1``) cross-checked against every tensor shape; options jaxedit does not reproduce
(``repeat_w=False``, ``normalize_z=False``, ``final_tanh``, another ``eps``...) are refused by
name.

Differences from Hammer's forward that matter to a user:

* Truncation: Hammer truncates ``wp[:, :trunc_layers]`` only if ``trunc_psi < 1`` and
  ``trunc_layers > 0``; jaxedit's ``mapping(z, c, truncation_psi, truncation_cutoff)`` whenever
  psi != 1 (cutoff None = all slots). ``converters.stylegan2.hammer.truncation_args`` converts.
* Hammer pre-normalises the styles by their RMS over the whole batch tensor; jaxedit per sample
  (the two differ only through the demodulation's 1e-8, ~1e-10 relative).
* The transform ``manipulate.py --tx --ty --rotate`` sets is ``jaxedit.make_transform((tx, ty),
  rotate)`` (Hammer's ``make_transform`` docstring shows ``-sin`` in the first row, but its code
  writes the same matrix as NVIDIA's gen_images.py).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .. import _pickle
from .._common import ConvertedCheckpoint, apply_table, describe, sha256_file
from ..errors import (
    CorruptCheckpointError,
    KeyMismatchError,
    UnsupportedFormatError,
)
from ..stylegan2 import hammer as sg2
from . import _layout as L, design

FORMAT = "hammer-pth"
GENERATORS = sg2.GENERATORS

#: Hammer StyleGAN3Generator defaults (its constructor), for kwargs a file leaves out.
HAMMER_DEFAULTS: dict[str, Any] = {
    "z_dim": 512,
    "w_dim": 512,
    "repeat_w": True,
    "normalize_z": True,
    "mapping_layers": 2,
    "mapping_fmaps": 512,
    "mapping_lr_mul": 0.01,
    "label_dim": 0,
    "embedding_dim": 512,
    "embedding_bias": True,
    "embedding_lr_mul": 1.0,
    "normalize_embedding": True,
    "normalize_embedding_latent": False,
    "image_channels": 3,
    "final_tanh": False,
    "output_scale": 0.25,
    "num_layers": 14,
    "num_critical": 2,
    "fmaps_base": 32 << 10,
    "fmaps_max": 512,
    "kernel_size": 1,
    "conv_clamp": 256,
    "first_cutoff": 2,
    "first_stopband": 2**2.1,
    "last_stopband_rel": 2**0.3,
    "margin_size": 10,
    "filter_size": 6,
    "act_upsampling": 2,
    "use_radial_filter": False,
    "eps": 1e-8,
}
_REQUIRED = {
    "repeat_w": True,
    "normalize_z": True,
    "embedding_lr_mul": 1.0,
    "normalize_embedding": True,
    "normalize_embedding_latent": False,
    "final_tanh": False,
    "eps": 1e-8,
}
_INTS = {
    "z_dim": (0, 1 << 16),
    "w_dim": (1, 1 << 16),
    "mapping_layers": (1, 64),
    "mapping_fmaps": (1, 1 << 16),
    "label_dim": (0, 1 << 20),
    "embedding_dim": (1, 1 << 16),
    "resolution": (1, 1 << 13),
    "image_channels": (1, 64),
    "num_layers": (1, 64),
    "num_critical": (0, 64),
    "fmaps_max": (1, 1 << 20),
    "kernel_size": (1, 15),
    "margin_size": (0, 1 << 12),
    "filter_size": (1, 64),
    "act_upsampling": (1, 16),
}
_REALS = {
    "mapping_lr_mul": (1e-8, 1e4),
    "output_scale": (-1e6, 1e6),
    "fmaps_base": (1.0, float(1 << 30)),
    "first_cutoff": (1e-6, 1e6),
    "first_stopband": (1e-6, 1e6),
    "last_stopband_rel": (1e-6, 1e6),
}
KNOWN_KWARGS = frozenset(set(HAMMER_DEFAULTS) | {"model_type", "resolution"})


def sniff(obj: Any) -> bool:
    """A loaded Hammer checkpoint whose generator state dict is a StyleGAN3's (it has
    ``synthesis.early_layer.frequency``; ``model_type`` alone is not trusted)."""
    models = obj.get("models") if isinstance(obj, dict) else None
    if not isinstance(models, dict):
        return False
    return any(
        isinstance(models.get(k), dict) and "synthesis.early_layer.frequency" in models[k]
        for k in GENERATORS
    )


def _typed(kw: dict, source: str) -> dict[str, Any]:
    at = f"{source}: model_kwargs_init "
    unknown = sorted(str(k) for k in kw if k not in KNOWN_KWARGS)
    if unknown:
        raise UnsupportedFormatError(
            f"{at}has unknown Hammer StyleGAN3 kwarg(s) {unknown}; jaxedit cannot tell what "
            "they change"
        )
    if kw.get("model_type", "StyleGAN3Generator") != "StyleGAN3Generator":
        raise UnsupportedFormatError(
            f"{at}model_type is {describe(kw.get('model_type'))}, not 'StyleGAN3Generator'"
        )
    if "resolution" not in kw:
        raise CorruptCheckpointError(f"{at}has no resolution")
    out: dict[str, Any] = {}
    for k, (lo, hi) in _INTS.items():
        v = kw.get(k, HAMMER_DEFAULTS.get(k))
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise CorruptCheckpointError(f"{at}{k} = {describe(v)} is not an integer in {lo}..{hi}")
        out[k] = int(v)
    for k, (lo, hi) in _REALS.items():
        v = kw.get(k, HAMMER_DEFAULTS[k])
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise CorruptCheckpointError(f"{at}{k} = {describe(v)} is not a number")
        if not (math.isfinite(float(v)) and lo <= float(v) <= hi):
            raise CorruptCheckpointError(f"{at}{k} = {describe(v)} is outside {lo:g}..{hi:g}")
        out[k] = float(v)
    for k, want in _REQUIRED.items():
        v = kw.get(k, HAMMER_DEFAULTS[k])
        ok = (
            isinstance(v, (bool, np.bool_)) and bool(v) == want
            if isinstance(want, bool)
            else isinstance(v, (int, float)) and not isinstance(v, bool) and float(v) == want
        )
        if not ok:
            raise UnsupportedFormatError(
                f"{at}{k} = {describe(v)} is not supported (jaxedit reproduces {k} = {want!r})"
            )
    for k in ("use_radial_filter", "embedding_bias"):
        v = kw.get(k, HAMMER_DEFAULTS[k])
        if not isinstance(v, (bool, np.bool_)):
            raise CorruptCheckpointError(f"{at}{k} = {describe(v)} is not a bool")
        out[k] = bool(v)
    clamp = kw.get("conv_clamp", 256)
    if clamp is not None and (
        isinstance(clamp, bool)
        or not isinstance(clamp, (int, float))
        or not (math.isfinite(clamp) and clamp >= 0)
    ):
        raise CorruptCheckpointError(f"{at}conv_clamp = {describe(clamp)} is not a number >= 0")
    out["conv_clamp"] = None if clamp is None else float(clamp)
    return out


def infer_config(sd: dict, kw: dict, source: str) -> dict[str, Any]:
    """The jaxedit StyleGAN3 config from ``model_kwargs_init`` (typed), cross-checked against
    the state dict's shapes."""
    k = _typed(kw, source)
    base = k["fmaps_base"]
    cfg = L.config(
        z_dim=k["z_dim"],
        c_dim=k["label_dim"],
        w_dim=k["w_dim"],
        img_resolution=k["resolution"],
        img_channels=k["image_channels"],
        mapping_layers=k["mapping_layers"],
        mapping_lr_multiplier=k["mapping_lr_mul"],
        embed_features=k["embedding_dim"] if k["label_dim"] > 0 else 0,
        layer_features=k["mapping_fmaps"],
        channel_base=int(base) if float(base).is_integer() else base,
        channel_max=k["fmaps_max"],
        num_layers=k["num_layers"],
        num_critical=k["num_critical"],
        first_cutoff=k["first_cutoff"],
        first_stopband=k["first_stopband"],
        last_stopband_rel=k["last_stopband_rel"],
        margin_size=k["margin_size"],
        output_scale=k["output_scale"],
        conv_kernel=k["kernel_size"],
        filter_size=k["filter_size"],
        lrelu_upsampling=k["act_upsampling"],
        use_radial_filters=k["use_radial_filter"],
        conv_clamp=k["conv_clamp"],
        num_fp16_res=0,
        has_w_avg=True,
    )
    try:
        L.geometry(cfg)
    except (ValueError, ZeroDivisionError, OverflowError) as e:
        raise CorruptCheckpointError(
            f"{source}: model_kwargs_init give no valid geometry ({e})"
        ) from None
    n_map = 0
    while f"mapping.dense{n_map}.weight" in sd:
        n_map += 1
    if n_map != cfg["mapping_layers"]:
        raise KeyMismatchError(
            f"{source}: mapping_layers = {cfg['mapping_layers']} but the state dict has {n_map} "
            "mapping.dense* layers"
        )
    n_syn = 0
    while f"synthesis.layer{n_syn}.conv.weight" in sd:
        n_syn += 1
    if n_syn != cfg["num_layers"] + 1:
        raise KeyMismatchError(
            f"{source}: num_layers = {cfg['num_layers']} but the state dict has {n_syn} "
            "synthesis.layer* (the ToRGB included)"
        )
    if (cfg["c_dim"] > 0) != ("mapping.embedding.weight" in sd):
        raise KeyMismatchError(
            f"{source}: label_dim = {cfg['c_dim']} but mapping.embedding.weight is "
            f"{'present' if 'mapping.embedding.weight' in sd else 'missing'}"
        )
    return cfg


def _grid(size: int, rate: float) -> np.ndarray:
    c = ((2 * np.arange(size) + 1) / size - 1) * (0.5 * size / rate)
    gx, gy = np.meshgrid(c, c)
    return np.stack([gx, gy], axis=-1)[None]


def key_table(cfg: dict[str, Any], sd: dict, source: str, embedding_bias: bool):
    """``{jaxedit key: (Hammer key, transform)}`` with every shape checked against the geometry,
    and the buffers to check (filters, sampling grid)."""
    geo = L.geometry(cfg)
    w_dim = cfg["w_dim"]
    table: dict = {}
    ignored: dict = {}
    shapes: dict = {"w_avg": (w_dim,)}
    feats = [cfg["z_dim"] + cfg["embed_features"]]
    feats += [cfg["layer_features"]] * (cfg["mapping_layers"] - 1) + [w_dim]
    for i in range(cfg["mapping_layers"]):
        table[f"{L.fc(i)}/weight"] = (f"mapping.dense{i}.weight", L.t)
        table[f"{L.fc(i)}/bias"] = (f"mapping.dense{i}.bias", L.same)
        shapes[f"mapping.dense{i}.weight"] = (feats[i + 1], feats[i])
        shapes[f"mapping.dense{i}.bias"] = (feats[i + 1],)
    if cfg["c_dim"] > 0:
        table[f"{L.EMBED}/weight"] = ("mapping.embedding.weight", L.t)
        shapes["mapping.embedding.weight"] = (cfg["embed_features"], cfg["c_dim"])
        if embedding_bias:
            table[f"{L.EMBED}/bias"] = ("mapping.embedding.bias", L.same)
    table[L.W_AVG] = ("w_avg", L.same)
    c0, e = geo["input"]["channels"], "synthesis.early_layer"
    for dst, src, fn, shape in (
        ("weight", "weight", L.t, (c0, c0)),
        ("freqs", "frequency", L.same, (c0, 2)),
        ("phases", "phase", L.same, (c0,)),
        ("transform", "transform", L.same, (3, 3)),
        ("affine/weight", "affine.weight", L.t, (4, w_dim)),
        ("affine/bias", "affine.bias", L.same, (4,)),
    ):
        table[f"{L.INPUT}/{dst}"] = (f"{e}.{src}", fn)
        shapes[f"{e}.{src}"] = shape
    grid = _grid(geo["input"]["size"], geo["input"]["sampling_rate"])

    def check_grid(a: np.ndarray) -> None:
        if a.shape != grid.shape or not np.allclose(a, grid, rtol=0, atol=1e-6):
            raise UnsupportedFormatError(
                f"{source}: {e}.grid (shape {a.shape}) is not the sampling grid of the config"
            )

    ignored[f"{e}.grid"] = check_grid
    for i, lay in enumerate(geo["layers"]):
        src, dst = f"synthesis.layer{i}", L.layer(lay["name"])
        k, cin, cout = lay["conv_kernel"], lay["in_channels"], lay["out_channels"]
        for d, s_, fn, shape in (
            ("weight", "conv.weight", L.oihw_to_hwio, (cout, cin, k, k)),
            ("bias", "filter.bias", L.same, (cout,)),
            ("magnitude_ema", "magnitude_ema", L.scalar, ()),
            ("affine/weight", "conv.style.weight", L.t, (cin, w_dim)),
            ("affine/bias", "conv.style.bias", L.same, (cin,)),
        ):
            table[f"{dst}/{d}"] = (f"{src}.{s_}", fn)
            shapes[f"{src}.{s_}"] = shape
        up, down = design.layer_filters(lay)
        for name, want in (("up_filter", up), ("down_filter", down)):
            key = f"{src}.filter.{name}"
            if want is not None and key not in sd:
                raise KeyMismatchError(f"{source}: {key} is missing")
            ignored[key] = L.check_filter(source, key, want)
    for key, shape in shapes.items():
        if key in sd:
            L.expect_shape(source, key, sd[key], shape, "from model_kwargs_init")
    return table, ignored


def read(path: str | os.PathLike, which: str | None = None, obj: Any = None) -> ConvertedCheckpoint:
    """Read a Hammer StyleGAN3 ``.pth`` into jaxedit's layout.

    Args:
      which: ``"generator_smooth"`` / ``"generator"``; default ReSeFa's rule (smooth if present).
      obj: the already loaded file (``converters.read_checkpoint`` passes it).
    Raises:
      UnsafePickleError, UnsupportedFormatError, KeyMismatchError, ShapeMismatchError,
      CorruptCheckpointError (one line naming the file and the key).
    """
    source = os.fspath(path)
    top = _pickle.load_torch_file(source) if obj is None else obj
    if not sniff(top):
        raise UnsupportedFormatError(f"{source}: not a Hammer StyleGAN3 checkpoint")
    sd, kw, which = sg2.select_generator(top, source, which)
    if kw is None:
        raise CorruptCheckpointError(
            f"{source}: model_kwargs_init[{which!r}] is missing; the StyleGAN3 geometry cannot "
            "be read from the tensors alone"
        )
    for k, v in sd.items():
        if not isinstance(k, str) or not isinstance(v, np.ndarray) or v.dtype.kind != "f":
            raise CorruptCheckpointError(
                f"{source}: {which}.{describe(k)} is {describe(v)}, not a floating-point tensor"
            )
    where = f"{source} [{which}]"
    cfg = infer_config(sd, kw, where)
    bias = bool(kw.get("embedding_bias", True))
    table, ignored = key_table(cfg, sd, where, bias)
    params, sources = apply_table(where, sd, table, ignored)
    if cfg["c_dim"] > 0 and not bias:
        params[f"{L.EMBED}/bias"] = np.zeros((cfg["embed_features"],), np.float32)
        sources[f"{L.EMBED}/bias"] = "(none: embedding_bias=False)"
    return ConvertedCheckpoint(
        family="stylegan3",
        config=cfg,
        params=params,
        sources=sources,
        source_format=FORMAT,
        source_path=source,
        source_sha256=sha256_file(source),
        which=which,
        source_tensors={k: tuple(v.shape) for k, v in sd.items()},
    )


__all__ = ["FORMAT", "HAMMER_DEFAULTS", "infer_config", "key_table", "read", "sniff"]
