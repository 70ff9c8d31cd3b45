"""pytorch-pretrained-BigGAN checkpoints: ``pytorch_model.bin`` (a ``torch.save`` state dict, legacy
or zip format) + ``config.json``.

Spectral norm is folded exactly as the reference's eval mode computes it: ``W = weight_orig / σ``
with ``σ = uᵀ (W_mat v)`` from the stored ``weight_u`` / ``weight_v`` (``W_mat`` = weight_orig
reshaped to ``[out, -1]``); no power iteration. Self-attention sits at torch index
``attention_layer_position`` of ``generator.layers``; the GenBlocks after it shift by one.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from . import _pickle
from ._common import ConvertedCheckpoint, apply_table, describe, sha256_file, typed_int, typed_real
from .errors import CorruptCheckpointError, UnsupportedFormatError

FORMAT = "biggan-bin"
WEIGHTS_NAME = "pytorch_model.bin"
CONFIG_NAME = "config.json"
CONFIG_FIELDS = (
    "output_dim",
    "z_dim",
    "class_embed_dim",
    "channel_width",
    "num_classes",
    "layers",
    "attention_layer_position",
    "eps",
    "n_stats",
)


def is_biggan(obj: Any) -> bool:
    return isinstance(obj, dict) and "generator.gen_z.weight_orig" in obj


def resolve(path: str | os.PathLike) -> tuple[str, str]:
    """(weights file, config file) from a directory or a weights file path."""
    path = os.fspath(path)
    weights = os.path.join(path, WEIGHTS_NAME) if os.path.isdir(path) else path
    config = os.path.join(os.path.dirname(os.path.abspath(weights)), CONFIG_NAME)
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{weights}: no such BigGAN weights file")
    if not os.path.isfile(config):
        raise UnsupportedFormatError(
            f"{weights}: a BigGAN state dict needs its {CONFIG_NAME} in the same directory "
            f"(the architecture's upsampling pattern is not recoverable from shapes)"
        )
    return weights, config


def read_config(config_path: str) -> dict[str, Any]:
    """The fields of a BigGAN ``config.json``, each of the right type and in range."""
    try:
        if os.path.getsize(config_path) > 1 << 20:
            raise CorruptCheckpointError(f"{config_path}: larger than 1 MiB; not a BigGAN config")
        with open(config_path, encoding="utf-8") as f:
            raw = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise CorruptCheckpointError(f"{config_path}: not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise CorruptCheckpointError(f"{config_path}: expected a JSON object")
    missing = [k for k in CONFIG_FIELDS if k not in raw]
    if missing:
        raise CorruptCheckpointError(f"{config_path}: missing field(s) {missing}")
    at = f"{config_path}: "
    cfg: dict[str, Any] = {
        "output_dim": typed_int(raw, "output_dim", at, lo=4, hi=1 << 13),
        "z_dim": typed_int(raw, "z_dim", at, lo=1, hi=1 << 16),
        "class_embed_dim": typed_int(raw, "class_embed_dim", at, lo=0, hi=1 << 16),
        "channel_width": typed_int(raw, "channel_width", at, lo=1, hi=1 << 12),
        "num_classes": typed_int(raw, "num_classes", at, lo=1, hi=1 << 20),
        "attention_layer_position": typed_int(raw, "attention_layer_position", at, lo=0, hi=64),
        "eps": typed_real(raw, "eps", at, lo=0.0, hi=1.0),
        "n_stats": typed_int(raw, "n_stats", at, lo=2, hi=1 << 12),
    }
    layers = raw["layers"]
    if not isinstance(layers, list) or not 1 <= len(layers) <= 64:
        raise CorruptCheckpointError(
            f"{at}layers is {describe(layers)}, expected a list of [up, in_mult, out_mult]"
        )
    cfg["layers"] = []
    for k, layer in enumerate(layers):
        if (
            not isinstance(layer, list)
            or len(layer) != 3
            or not isinstance(layer[0], bool)
            or any(
                isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 1 << 10
                for m in layer[1:]
            )
        ):
            raise CorruptCheckpointError(
                f"{at}layers[{k}] is {describe(layer)}, expected [true|false, in_mult, out_mult]"
            )
        cfg["layers"].append([layer[0], layer[1], layer[2]])
    return {k: cfg[k] for k in CONFIG_FIELDS}


def _fold(source: str, prefix: str):
    """Transform (weight_orig, u, v) -> W / σ as float64-computed, source-dtype array."""

    def fold(w, u, v):
        wm = np.asarray(w, np.float64).reshape(w.shape[0], -1)
        if u.shape != (wm.shape[0],) or v.shape != (wm.shape[1],):
            raise CorruptCheckpointError(
                f"{source}: {prefix}.weight_u {u.shape} / weight_v {v.shape} do not fit "
                f"{prefix}.weight_orig {w.shape}"
            )
        sigma = float(np.asarray(u, np.float64) @ (wm @ np.asarray(v, np.float64)))
        if not np.isfinite(sigma) or sigma == 0:
            # the reference divides by whatever u, v give (a negative σ only flips the sign);
            # zero or non-finite cannot be reproduced
            raise CorruptCheckpointError(
                f"{source}: {prefix}: spectral norm σ = {sigma} from the "
                f"stored weight_u / weight_v is zero or not finite"
            )
        return np.asarray(w, np.float64) / sigma

    return fold


def _dense(fold):
    return lambda w, u, v: fold(w, u, v).reshape(w.shape[0], -1).T


def _conv(fold):
    return lambda w, u, v: fold(w, u, v).transpose(2, 3, 1, 0)


def _same(a):
    return a


def build_table(cfg: dict, source: str) -> dict:
    table: dict = {}

    def sn(dst: str, src: str, kind: str):
        keys = (f"{src}.weight_orig", f"{src}.weight_u", f"{src}.weight_v")
        fold = _fold(source, src)
        table[f"{dst}/kernel"] = (keys, _dense(fold) if kind == "dense" else _conv(fold))

    table["embeddings/kernel"] = ("embeddings.weight", lambda a: a.T)
    sn("gen_z", "generator.gen_z", "dense")
    table["gen_z/bias"] = ("generator.gen_z.bias", _same)
    pos = cfg["attention_layer_position"]
    n = len(cfg["layers"])
    for i in range(n):
        t = i if i < pos else i + 1
        for k in range(4):
            src, dst = f"generator.layers.{t}.bn_{k}", f"block{i}/bn_{k}"
            table[f"{dst}/running_means"] = (f"{src}.running_means", _same)
            table[f"{dst}/running_vars"] = (f"{src}.running_vars", _same)
            sn(f"{dst}/scale", f"{src}.scale", "dense")
            sn(f"{dst}/offset", f"{src}.offset", "dense")
            sn(f"block{i}/conv_{k}", f"generator.layers.{t}.conv_{k}", "conv")
            table[f"block{i}/conv_{k}/bias"] = (f"generator.layers.{t}.conv_{k}.bias", _same)
    if pos < n:
        for name in ("theta", "phi", "g", "o_conv"):
            sn(f"attention/{name}", f"generator.layers.{pos}.snconv1x1_{name}", "dense")
        table["attention/gamma"] = (f"generator.layers.{pos}.gamma", _same)
    for k in ("running_means", "running_vars", "weight", "bias"):
        table[f"bn/{k}"] = (f"generator.bn.{k}", _same)
    sn("conv_to_rgb", "generator.conv_to_rgb", "conv")
    table["conv_to_rgb/bias"] = ("generator.conv_to_rgb.bias", _same)
    return table


def read(path: str | os.PathLike, which: str | None = None, obj: Any = None) -> ConvertedCheckpoint:
    """Read ``DIR`` (with ``pytorch_model.bin`` + ``config.json``) or ``.../pytorch_model.bin``."""
    if which not in (None, "G", "generator"):
        raise UnsupportedFormatError(
            f"{os.fspath(path)}: a BigGAN file holds one generator; "
            f"--which {which!r} does not apply"
        )
    weights, config_path = resolve(path)
    sd = _pickle.load_torch_file(weights) if obj is None else obj
    if not is_biggan(sd):
        raise UnsupportedFormatError(
            f"{weights}: not a pytorch-pretrained-BigGAN state dict "
            f"(no generator.gen_z.weight_orig)"
        )
    for k, v in sd.items():
        if not isinstance(k, str) or not isinstance(v, np.ndarray):
            raise CorruptCheckpointError(
                f"{weights}: {k!s:.80} is a {type(v).__name__}, not a tensor"
            )
    cfg = read_config(config_path)
    params, sources = apply_table(weights, sd, build_table(cfg, weights), {})
    return ConvertedCheckpoint(
        family="biggan",
        config=cfg,
        params=params,
        sources=sources,
        source_format=FORMAT,
        source_path=weights,
        source_sha256=sha256_file(weights),
        which=None,
        source_tensors={k: tuple(v.shape) for k, v in sd.items()},
    )
