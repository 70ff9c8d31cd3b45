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

from .. import _pickle
from .._common import (
    ConvertedCheckpoint,
    apply_table,
    check_fir,
    kernel_1d_from_2d,
    sha256_file,
    typed_int,
    typed_real,
)
from ..errors import (
    CorruptCheckpointError,
    KeyMismatchError,
    ShapeMismatchError,
    UnsupportedFormatError,
)
from . import _layout as L

FORMAT = "rosinality-pt"


def sniff(obj: Any) -> bool:
    """A loaded torch object that looks like a rosinality checkpoint (``g_ema`` / ``g`` with
    ``input.input``)."""
    return isinstance(obj, dict) and any(
        isinstance(obj.get(k), dict) and "input.input" in obj[k] for k in ("g_ema", "g")
    )


def _shape(sd: dict, key: str, ndim: int, source: str) -> tuple[int, ...]:
    if key not in sd:
        raise KeyMismatchError(f"{source}: missing keys [{key!r}]")
    shape = tuple(sd[key].shape)
    if len(shape) != ndim:
        raise ShapeMismatchError(f"{source}: {key} has shape {shape}, expected {ndim} dimensions")
    return shape


def infer_config(sd: dict, top: dict, source: str) -> dict[str, Any]:
    args = top.get("args")
    if isinstance(args, _pickle.Namespace):
        args = vars(args)
    elif not isinstance(args, dict):
        args = {}
    at = f"{source}: args."
    n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
    if n_mlp == 0 or "style.1.weight" not in sd:
        raise KeyMismatchError(f"{source}: no mapping layers (style.1.weight) in g_ema")
    n_rgbs = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    if n_rgbs > 11:
        raise CorruptCheckpointError(f"{source}: {n_rgbs} to_rgbs layers ({2 ** (n_rgbs + 2)} px)")
    res = 2 ** (n_rgbs + 2)
    size = typed_int(args, "size", at, lo=4, hi=1 << 13, default=None)
    if size is not None and size != res:
        raise CorruptCheckpointError(
            f"{source}: args.size = {size} but the state dict has {n_rgbs} to_rgbs ({res}px)"
        )
    n_mlp_arg = typed_int(args, "n_mlp", at, lo=1, hi=64, default=None)
    if n_mlp_arg is not None and n_mlp_arg != n_mlp:
        raise CorruptCheckpointError(
            f"{source}: args.n_mlp = {n_mlp_arg} but the state dict has {n_mlp} style layers"
        )
    w_dim = _shape(sd, "style.1.weight", 2, source)[1]
    z_dim = w_dim
    latent = typed_int(args, "latent", at, lo=1, hi=1 << 16, default=None)
    if latent is not None and latent != w_dim:
        raise CorruptCheckpointError(
            f"{source}: args.latent = {latent} but style.1.weight has {w_dim} inputs"
        )
    typed_int(args, "channel_multiplier", at, lo=1, hi=1 << 10, default=None)
    layer_features = _shape(sd, "style.1.weight", 2, source)[0] if n_mlp > 1 else w_dim
    last = _shape(sd, f"style.{n_mlp}.weight", 2, source)
    channels = {4: _shape(sd, "input.input", 4, source)[1]}
    for j in range(n_rgbs):
        channels[2 ** (j + 3)] = _shape(sd, f"convs.{2 * j + 1}.conv.weight", 5, source)[1]
    kern_key = "convs.0.conv.blur.kernel"
    kernel = (
        kernel_1d_from_2d(sd[kern_key], source, kern_key, scale=4.0)
        if n_rgbs and kern_key in sd
        else [1.0, 3.0, 3.0, 1.0]
    )
    img_channels = _shape(sd, "to_rgb1.conv.weight", 5, source)[1]
    lr_mlp = typed_real(args, "lr_mlp", at, lo=1e-8, hi=1e4, default=0.01)
    latent_avg = top.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, np.ndarray):
        raise CorruptCheckpointError(
            f"{source}: latent_avg is a {type(latent_avg).__name__}, not a tensor"
        )
    if isinstance(latent_avg, np.ndarray) and latent_avg.size != last[0]:
        raise ShapeMismatchError(
            f"{source}: latent_avg has shape {latent_avg.shape}, w_dim is {last[0]}"
        )
    return L.config(
        z_dim=z_dim,
        c_dim=0,
        w_dim=int(last[0]),
        img_resolution=res,
        img_channels=img_channels,
        channels=channels,
        mapping_layers=n_mlp,
        mapping_lr_multiplier=lr_mlp,
        embed_features=0,
        layer_features=layer_features,
        architecture="skip",
        conv_clamp=None,
        resample_kernel=kernel,
        use_noise=True,
        has_w_avg=isinstance(latent_avg, np.ndarray),
        num_fp16_res=0,
    )


def _t(a):
    return a.T


def _scalar(a):
    return a.reshape(())


def _const(a):
    return a[0].transpose(1, 2, 0)


def _conv_scaled(a):
    w = a[0]  # [O, I, k, k]
    return (
        (w * (1.0 / math.sqrt(w.shape[1] * w.shape[2] * w.shape[3])))
        .transpose(2, 3, 1, 0)
        .astype(a.dtype)
    )


def _torgb_weight(a):
    return a[0].transpose(2, 3, 1, 0)


def _rgb_bias(a):
    return a.reshape(-1)


def _noise(a):
    return a.reshape(a.shape[-2], a.shape[-1])


def key_table(cfg: dict, source: str):
    """``{jaxedit key: (rosinality key, transform)}`` and the FIR buffers to check."""
    table: dict = {}
    ignored: dict = {}
    kernel = cfg["resample_kernel"]
    for i in range(1, cfg["mapping_layers"] + 1):
        table[f"{L.fc(i - 1)}/weight"] = (f"style.{i}.weight", _t)
        table[f"{L.fc(i - 1)}/bias"] = (f"style.{i}.bias", L.same)
    table[L.CONST] = ("input.input", _const)

    def styled(dst: str, src: str, noise_key: str):
        table[f"{dst}/weight"] = (f"{src}.conv.weight", _conv_scaled)
        table[f"{dst}/affine/weight"] = (f"{src}.conv.modulation.weight", _t)
        table[f"{dst}/affine/bias"] = (f"{src}.conv.modulation.bias", L.same)
        table[f"{dst}/noise_strength"] = (f"{src}.noise.weight", _scalar)
        table[f"{dst}/bias"] = (f"{src}.activate.bias", L.same)
        table[f"{dst}/noise_const"] = (noise_key, _noise)

    def to_rgb(dst: str, src: str):
        table[f"{dst}/weight"] = (f"{src}.conv.weight", _torgb_weight)
        table[f"{dst}/affine/weight"] = (f"{src}.conv.modulation.weight", _t)
        table[f"{dst}/affine/bias"] = (f"{src}.conv.modulation.bias", L.same)
        table[f"{dst}/bias"] = (f"{src}.bias", _rgb_bias)

    styled(f"{L.block(4)}/conv1", "conv1", "noises.noise_0")
    to_rgb(f"{L.block(4)}/torgb", "to_rgb1")
    for j, r in enumerate(L.block_resolutions(cfg["img_resolution"])[1:]):  # 8, 16, ...
        styled(f"{L.block(r)}/conv0", f"convs.{2 * j}", f"noises.noise_{2 * j + 1}")
        styled(f"{L.block(r)}/conv1", f"convs.{2 * j + 1}", f"noises.noise_{2 * j + 2}")
        to_rgb(f"{L.block(r)}/torgb", f"to_rgbs.{j}")
        ignored[f"convs.{2 * j}.conv.blur.kernel"] = check_fir(
            kernel, source, f"convs.{2 * j}.conv.blur.kernel", scale=4.0
        )
        ignored[f"to_rgbs.{j}.upsample.kernel"] = check_fir(
            kernel, source, f"to_rgbs.{j}.upsample.kernel", scale=4.0
        )
    return table, ignored


def read(path: str | os.PathLike, which: str | None = None, obj: Any = None) -> ConvertedCheckpoint:
    """Read a rosinality ``.pt`` (``which`` defaults to ``g_ema``) into jaxedit's layout."""
    source = os.fspath(path)
    top = _pickle.load_torch_file(source) if obj is None else obj
    if not sniff(top):
        raise UnsupportedFormatError(f"{source}: not a rosinality/stylegan2-pytorch checkpoint")
    which = which or "g_ema"
    sd = top.get(which)
    if not isinstance(sd, dict):
        nets = [str(k)[:80] for k, v in top.items() if isinstance(v, dict)]
        raise UnsupportedFormatError(f"{source}: no state dict {which!r}; it holds {sorted(nets)}")
    for k, v in sd.items():
        if not isinstance(k, str) or not isinstance(v, np.ndarray):
            raise CorruptCheckpointError(
                f"{source}: {which}.{k!s:.80} is a {type(v).__name__}, not a tensor"
            )
    cfg = infer_config(sd, top, source)
    table, ignored = key_table(cfg, source)
    params, sources = apply_table(source, sd, table, ignored)
    if cfg["has_w_avg"]:
        params[L.W_AVG] = np.asarray(top["latent_avg"], np.float32).reshape(-1)
        sources[L.W_AVG] = "latent_avg"
    else:
        params[L.W_AVG] = np.zeros((cfg["w_dim"],), np.float32)
        sources[L.W_AVG] = "(none: no latent_avg in the file)"
    return ConvertedCheckpoint(
        family="stylegan2",
        config=cfg,
        params=params,
        sources=sources,
        source_format=FORMAT,
        source_path=source,
        source_sha256=sha256_file(source),
        which=which,
        source_tensors={k: tuple(v.shape) for k, v in sd.items()},
    )
