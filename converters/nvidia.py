"""NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 network pickles (``.pkl``).

The pickle is read with the restricted unpickler (nothing executes, ``module_src`` is dropped).
The architecture comes from the state-dict shapes and the modules' attributes (``conv_clamp``,
``architecture``, FC ``bias_gain``), cross-checked against ``_init_kwargs``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from . import _unpickle
from ._common import ConvertedCheckpoint, apply_table, check_fir, kernel_1d_from_2d, sha256_file
from .errors import CorruptCheckpointError, UnsupportedFormatError

FORMAT = "nvidia-pkl"


def _walk(obj: _unpickle.PersistentObject, prefix: str, tensors: dict, attrs: dict) -> None:
    st = obj.state
    attrs[prefix] = {k: v for k, v in st.items() if not k.startswith("_") and k != "training"}
    attrs[prefix]["__class__"] = obj.class_name
    for group in ("_parameters", "_buffers"):
        for k, v in (st.get(group) or {}).items():
            if v is None:
                continue
            if not isinstance(v, np.ndarray):
                raise CorruptCheckpointError(f"{prefix}{k} is a {type(v).__name__}, not a tensor")
            tensors[prefix + k] = v
    for k, v in (st.get("_modules") or {}).items():
        if v is None:
            continue
        if not isinstance(v, _unpickle.PersistentObject):
            raise UnsupportedFormatError(
                f"module {prefix}{k} is a {type(v).__name__}, not a persistent network module")
        _walk(v, f"{prefix}{k}.", tensors, attrs)


def flatten_network(net: _unpickle.PersistentObject) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """A persistent network -> (``{dotted key: array}``, ``{module prefix: attributes}``)."""
    tensors: dict[str, np.ndarray] = {}
    attrs: dict[str, dict] = {}
    _walk(net, "", tensors, attrs)
    return tensors, attrs


def select_network(obj: Any, source: str, which: str | None) -> tuple[_unpickle.PersistentObject, str]:
    """Pick ``which`` (default ``G_ema``) from a snapshot dict, or accept a bare network."""
    if isinstance(obj, _unpickle.PersistentObject):
        return obj, which or obj.class_name
    if not isinstance(obj, dict):
        raise UnsupportedFormatError(
            f"{source}: not an NVIDIA network snapshot (top level is {type(obj).__name__})")
    which = which or "G_ema"
    nets = [k for k, v in obj.items() if isinstance(v, _unpickle.PersistentObject)]
    if which not in obj:
        raise UnsupportedFormatError(
            f"{source}: no network {which!r} in this snapshot; it holds {sorted(map(str, nets))}")
    net = obj[which]
    if not isinstance(net, _unpickle.PersistentObject):
        raise UnsupportedFormatError(f"{source}: {which!r} is {type(net).__name__}, not a network")
    return net, which


def _kw(d: Any, key: str, default=None):
    return d.get(key, default) if isinstance(d, dict) else default


def infer_config(tensors: dict, attrs: dict, source: str) -> dict[str, Any]:
    top = attrs[""]
    if top.get("__class__") != "Generator":
        raise UnsupportedFormatError(
            f"{source}: network class is {top.get('__class__')!r}, expected a StyleGAN2 'Generator'")
    syn_mods = {p.split(".")[1] for p in attrs if p.startswith("synthesis.") and p.count(".") >= 2}
    if "input" in syn_mods or any(m.startswith("L") and m[1:2].isdigit() for m in syn_mods):
        raise UnsupportedFormatError(
            f"{source}: this is a StyleGAN3 (alias-free) network; jaxedit supports StyleGAN2 "
            "networks (stylegan2-ada-pytorch, or the stylegan3 repo's StyleGAN2 configs)")
    kwargs = top.get("_init_kwargs") or {}
    map_kw = _kw(kwargs, "mapping_kwargs", {}) or {}
    syn_kw = _kw(kwargs, "synthesis_kwargs", None)
    if syn_kw is None:  # stylegan3 repo: synthesis kwargs are flattened into the Generator kwargs
        syn_kw = kwargs
    try:
        res = int(top["img_resolution"])
        z_dim, c_dim, w_dim = int(top["z_dim"]), int(top["c_dim"]), int(top["w_dim"])
        img_channels = int(top["img_channels"])
    except KeyError as e:
        raise CorruptCheckpointError(f"{source}: Generator attribute {e} is missing") from None
    for name, val in (("z_dim", z_dim), ("c_dim", c_dim), ("w_dim", w_dim),
                      ("img_resolution", res), ("img_channels", img_channels)):
        if name in kwargs and int(kwargs[name]) != val:
            raise CorruptCheckpointError(
                f"{source}: _init_kwargs[{name!r}]={kwargs[name]} disagrees with the module ({val})")

    n_map = 0
    while f"mapping.fc{n_map}.weight" in tensors:
        n_map += 1
    if n_map == 0:
        raise CorruptCheckpointError(f"{source}: no mapping.fc0.weight in the network")
    fc0 = attrs.get("mapping.fc0.", {})
    lr = float(fc0.get("bias_gain", _kw(map_kw, "lr_multiplier", 0.01)))
    for i in range(n_map):
        act = attrs.get(f"mapping.fc{i}.", {}).get("activation", "lrelu")
        if act != "lrelu":
            raise UnsupportedFormatError(f"{source}: mapping.fc{i} activation {act!r} is unsupported")
    embed = int(tensors["mapping.embed.weight"].shape[0]) if "mapping.embed.weight" in tensors else 0
    layer_features = int(tensors["mapping.fc0.weight"].shape[0]) if n_map > 1 else w_dim

    blocks = [2**i for i in range(2, int(math.log2(res)) + 1)]
    channels = {}
    for r in blocks:
        key = f"synthesis.b{r}.conv1.weight"
        if key not in tensors:
            raise CorruptCheckpointError(f"{source}: {key} is missing")
        channels[r] = int(tensors[key].shape[0])
    archs = {attrs[f"synthesis.b{r}."].get("architecture", "skip") for r in blocks
             if f"synthesis.b{r}." in attrs}
    if len(archs) != 1:
        raise UnsupportedFormatError(f"{source}: blocks disagree on the architecture: {sorted(archs)}")
    clamps = set()
    for p, a in attrs.items():
        if p.startswith("synthesis.") and "conv_clamp" in a:
            clamps.add(a["conv_clamp"])
        if p.startswith("synthesis.") and a.get("__class__") == "SynthesisLayer":
            if a.get("activation", "lrelu") != "lrelu":
                raise UnsupportedFormatError(f"{source}: {p[:-1]} activation {a['activation']!r}")
    if len(clamps) > 1:
        raise UnsupportedFormatError(f"{source}: layers disagree on conv_clamp: {sorted(map(str, clamps))}")
    conv_clamp = clamps.pop() if clamps else _kw(syn_kw, "conv_clamp", None)
    kernel = kernel_1d_from_2d(tensors["synthesis.b4.resample_filter"], source,
                               "synthesis.b4.resample_filter")
    return {
        "z_dim": z_dim, "c_dim": c_dim, "w_dim": w_dim, "img_resolution": res,
        "img_channels": img_channels, "channels": {str(r): c for r, c in channels.items()},
        "mapping_layers": n_map, "mapping_lr_multiplier": lr, "embed_features": embed,
        "layer_features": layer_features, "architecture": archs.pop(),
        "conv_clamp": None if conv_clamp is None else float(conv_clamp),
        "resample_kernel": kernel,
        "use_noise": "synthesis.b4.conv1.noise_const" in tensors,
        "has_w_avg": True,
        "num_fp16_res": int(_kw(syn_kw, "num_fp16_res", 0) or 0),
    }


def _oihw_to_hwio(a: np.ndarray) -> np.ndarray:
    return a.transpose(2, 3, 1, 0)


def _t(a: np.ndarray) -> np.ndarray:
    return a.T


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _chw_to_hwc(a: np.ndarray) -> np.ndarray:
    return a.transpose(1, 2, 0)


def build_table(cfg: dict, source: str):
    """``{jaxedit key: (NVIDIA key, transform)}`` and the recomputable buffers to check."""
    table: dict = {}
    kernel = cfg["resample_kernel"]
    ignored: dict = {}
    for i in range(cfg["mapping_layers"]):
        table[f"mapping_net/fc{i}/weight"] = (f"mapping.fc{i}.weight", _t)
        table[f"mapping_net/fc{i}/bias"] = (f"mapping.fc{i}.bias", _same)
    if cfg["c_dim"] > 0:
        table["mapping_net/embed/weight"] = ("mapping.embed.weight", _t)
        table["mapping_net/embed/bias"] = ("mapping.embed.bias", _same)
    table["mapping_net/w_avg"] = ("mapping.w_avg", _same)
    res = cfg["img_resolution"]
    blocks = [2**i for i in range(2, int(math.log2(res)) + 1)]
    for r in blocks:
        b, tb = f"synthesis.b{r}", f"synthesis_net/b{r}"
        ignored[f"{b}.resample_filter"] = check_fir(kernel, source, f"{b}.resample_filter")
        layers = ["conv1"] if r == 4 else ["conv0", "conv1"]
        if r == 4:
            table[f"{tb}/const"] = (f"{b}.const", _chw_to_hwc)
        for ln in layers:
            table[f"{tb}/{ln}/weight"] = (f"{b}.{ln}.weight", _oihw_to_hwio)
            table[f"{tb}/{ln}/bias"] = (f"{b}.{ln}.bias", _same)
            table[f"{tb}/{ln}/affine/weight"] = (f"{b}.{ln}.affine.weight", _t)
            table[f"{tb}/{ln}/affine/bias"] = (f"{b}.{ln}.affine.bias", _same)
            if cfg["use_noise"]:
                table[f"{tb}/{ln}/noise_strength"] = (f"{b}.{ln}.noise_strength", _same)
                table[f"{tb}/{ln}/noise_const"] = (f"{b}.{ln}.noise_const", _same)
            ignored[f"{b}.{ln}.resample_filter"] = check_fir(kernel, source, f"{b}.{ln}.resample_filter")
        if r == res or cfg["architecture"] == "skip":
            table[f"{tb}/torgb/weight"] = (f"{b}.torgb.weight", _oihw_to_hwio)
            table[f"{tb}/torgb/bias"] = (f"{b}.torgb.bias", _same)
            table[f"{tb}/torgb/affine/weight"] = (f"{b}.torgb.affine.weight", _t)
            table[f"{tb}/torgb/affine/bias"] = (f"{b}.torgb.affine.bias", _same)
        if cfg["architecture"] == "resnet" and r > 4:
            table[f"{tb}/skip/weight"] = (f"{b}.skip.weight", _oihw_to_hwio)
            ignored[f"{b}.skip.resample_filter"] = check_fir(kernel, source, f"{b}.skip.resample_filter")
    return table, ignored


def read(path: str | os.PathLike, which: str | None = None) -> ConvertedCheckpoint:
    """Read an NVIDIA StyleGAN2 ``.pkl`` into jaxedit's layout (``which`` defaults to ``G_ema``)."""
    source = os.fspath(path)
    obj = _unpickle.load_pickle(source)
    net, which = select_network(obj, source, which)
    tensors, attrs = flatten_network(net)
    cfg = infer_config(tensors, attrs, source)
    table, ignored = build_table(cfg, source)
    params, sources = apply_table(source, tensors, table, ignored)
    return ConvertedCheckpoint(
        family="stylegan2", config=cfg, params=params, sources=sources, source_format=FORMAT,
        source_path=source, source_sha256=sha256_file(source), which=which,
        source_tensors={k: tuple(v.shape) for k, v in tensors.items()})
