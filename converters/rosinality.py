"""rosinality/stylegan2-pytorch checkpoints (``torch.save`` of ``{g_ema, latent_avg, args, ...}``).

Converted into NVIDIA's parametrization exactly: the ``1/sqrt(fan_in)`` scale that rosinality
applies to demodulated conv weights is folded into them (demodulation then sees the same
numbers), ToRGB weights stay raw (NVIDIA scales their styles instead), ``latent_avg`` becomes
``w_avg``. Every shape is read from the state dict; ``args`` (an ``argparse.Namespace``) is only
data, and optional.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np

from . import _unpickle
from ._common import ConvertedCheckpoint, apply_table, check_fir, kernel_1d_from_2d, sha256_file
from .errors import CorruptCheckpointError, UnsupportedFormatError

FORMAT = "rosinality-pt"


def is_rosinality(obj: Any) -> bool:
    return isinstance(obj, dict) and any(
        isinstance(obj.get(k), dict) and "input.input" in obj[k] for k in ("g_ema", "g"))


def infer_config(sd: dict, top: dict, source: str) -> dict[str, Any]:
    args = top.get("args")
    args = vars(args) if isinstance(args, _unpickle.Namespace) else (args if isinstance(args, dict) else {})
    n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
    if n_mlp == 0 or "style.1.weight" not in sd:
        raise CorruptCheckpointError(f"{source}: no mapping layers (style.1.weight) in g_ema")
    n_rgbs = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    res = 2 ** (n_rgbs + 2)
    if "size" in args and int(args["size"]) != res:
        raise CorruptCheckpointError(
            f"{source}: args.size={args['size']} but the state dict has {n_rgbs} to_rgbs ({res}px)")
    w_dim = int(sd["style.1.weight"].shape[1])
    z_dim = w_dim
    layer_features = int(sd["style.1.weight"].shape[0]) if n_mlp > 1 else w_dim
    last = sd.get(f"style.{n_mlp}.weight")
    if last is None:
        raise CorruptCheckpointError(f"{source}: style.{n_mlp}.weight is missing")
    channels = {4: int(sd["input.input"].shape[1])}
    for j in range(n_rgbs):
        key = f"convs.{2 * j + 1}.conv.weight"
        if key not in sd:
            raise CorruptCheckpointError(f"{source}: {key} is missing")
        channels[2 ** (j + 3)] = int(sd[key].shape[1])
    kern_key = "convs.0.conv.blur.kernel" if n_rgbs else None
    kernel = (kernel_1d_from_2d(sd[kern_key], source, kern_key, scale=4.0)
              if kern_key in sd else [1.0, 3.0, 3.0, 1.0])
    img_channels = int(sd["to_rgb1.conv.weight"].shape[1])
    return {
        "z_dim": z_dim, "c_dim": 0, "w_dim": int(last.shape[0]), "img_resolution": res,
        "img_channels": img_channels, "channels": {str(r): c for r, c in channels.items()},
        "mapping_layers": n_mlp, "mapping_lr_multiplier": float(args.get("lr_mlp", 0.01)),
        "embed_features": 0, "layer_features": layer_features, "architecture": "skip",
        "conv_clamp": None, "resample_kernel": kernel, "use_noise": True,
        "has_w_avg": isinstance(top.get("latent_avg"), np.ndarray), "num_fp16_res": 0,
    }


def _t(a):
    return a.T


def _same(a):
    return a


def _scalar(a):
    return a.reshape(())


def _const(a):
    return a[0].transpose(1, 2, 0)


def _conv_scaled(a):
    w = a[0]  # [O, I, k, k]
    return (w * (1.0 / math.sqrt(w.shape[1] * w.shape[2] * w.shape[3]))).transpose(2, 3, 1, 0).astype(a.dtype)


def _torgb_weight(a):
    return a[0].transpose(2, 3, 1, 0)


def _rgb_bias(a):
    return a.reshape(-1)


def _noise(a):
    return a.reshape(a.shape[-2], a.shape[-1])


def build_table(cfg: dict, source: str):
    table: dict = {}
    ignored: dict = {}
    kernel = cfg["resample_kernel"]
    for i in range(1, cfg["mapping_layers"] + 1):
        table[f"mapping_net/fc{i - 1}/weight"] = (f"style.{i}.weight", _t)
        table[f"mapping_net/fc{i - 1}/bias"] = (f"style.{i}.bias", _same)
    table["synthesis_net/b4/const"] = ("input.input", _const)

    def styled(dst: str, src: str, noise_key: str):
        table[f"{dst}/weight"] = (f"{src}.conv.weight", _conv_scaled)
        table[f"{dst}/affine/weight"] = (f"{src}.conv.modulation.weight", _t)
        table[f"{dst}/affine/bias"] = (f"{src}.conv.modulation.bias", _same)
        table[f"{dst}/noise_strength"] = (f"{src}.noise.weight", _scalar)
        table[f"{dst}/bias"] = (f"{src}.activate.bias", _same)
        table[f"{dst}/noise_const"] = (noise_key, _noise)

    def to_rgb(dst: str, src: str):
        table[f"{dst}/weight"] = (f"{src}.conv.weight", _torgb_weight)
        table[f"{dst}/affine/weight"] = (f"{src}.conv.modulation.weight", _t)
        table[f"{dst}/affine/bias"] = (f"{src}.conv.modulation.bias", _same)
        table[f"{dst}/bias"] = (f"{src}.bias", _rgb_bias)

    styled("synthesis_net/b4/conv1", "conv1", "noises.noise_0")
    to_rgb("synthesis_net/b4/torgb", "to_rgb1")
    n_blocks = int(math.log2(cfg["img_resolution"])) - 2
    for j in range(n_blocks):
        r = 2 ** (j + 3)
        styled(f"synthesis_net/b{r}/conv0", f"convs.{2 * j}", f"noises.noise_{2 * j + 1}")
        styled(f"synthesis_net/b{r}/conv1", f"convs.{2 * j + 1}", f"noises.noise_{2 * j + 2}")
        to_rgb(f"synthesis_net/b{r}/torgb", f"to_rgbs.{j}")
        ignored[f"convs.{2 * j}.conv.blur.kernel"] = check_fir(
            kernel, source, f"convs.{2 * j}.conv.blur.kernel", scale=4.0)
        ignored[f"to_rgbs.{j}.upsample.kernel"] = check_fir(
            kernel, source, f"to_rgbs.{j}.upsample.kernel", scale=4.0)
    return table, ignored


def read(path: str | os.PathLike, which: str | None = None, obj: Any = None) -> ConvertedCheckpoint:
    """Read a rosinality ``.pt`` (``which`` defaults to ``g_ema``) into jaxedit's layout."""
    source = os.fspath(path)
    top = _unpickle.load_torch_file(source) if obj is None else obj
    if not is_rosinality(top):
        raise UnsupportedFormatError(f"{source}: not a rosinality/stylegan2-pytorch checkpoint")
    which = which or "g_ema"
    sd = top.get(which)
    if not isinstance(sd, dict):
        nets = [k for k, v in top.items() if isinstance(v, dict)]
        raise UnsupportedFormatError(f"{source}: no state dict {which!r}; it holds {sorted(nets)}")
    for k, v in sd.items():
        if not isinstance(v, np.ndarray):
            raise CorruptCheckpointError(f"{source}: {which}.{k} is a {type(v).__name__}, not a tensor")
    cfg = infer_config(sd, top, source)
    table, ignored = build_table(cfg, source)
    params, sources = apply_table(source, sd, table, ignored)
    if cfg["has_w_avg"]:
        params["mapping_net/w_avg"] = np.asarray(top["latent_avg"], np.float32).reshape(-1)
        sources["mapping_net/w_avg"] = "latent_avg"
    else:
        params["mapping_net/w_avg"] = np.zeros((cfg["w_dim"],), np.float32)
        sources["mapping_net/w_avg"] = "(none: no latent_avg in the file)"
    return ConvertedCheckpoint(
        family="stylegan2", config=cfg, params=params, sources=sources, source_format=FORMAT,
        source_path=source, source_sha256=sha256_file(source), which=which,
        source_tensors={k: tuple(v.shape) for k, v in sd.items()})
