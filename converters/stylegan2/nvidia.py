"""NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 network pickles (``.pkl``).

The pickle is read with the restricted unpickler (nothing executes, ``module_src`` is dropped).
The architecture comes from the state-dict shapes and the modules' attributes (``conv_clamp``,
``architecture``, FC ``bias_gain``), cross-checked against ``_init_kwargs``: every value either
states must be of the right type (an ``int`` dimension, not ``'32'`` or ``True``), in range, and
agree with the other and with the tensor shapes, or the file is refused.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .. import _pickle
from .._common import (
    ConvertedCheckpoint,
    apply_table,
    check_fir,
    describe,
    kernel_1d_from_2d,
    sha256_file,
    typed_int,
    typed_real,
    typed_str,
)
from ..errors import (
    CorruptCheckpointError,
    KeyMismatchError,
    ShapeMismatchError,
    UnsupportedFormatError,
)
from . import _layout as L

FORMAT = "nvidia-pkl"


MAX_RESOLUTION = 1 << 13
_ARCHITECTURES = ("orig", "skip", "resnet")
_INIT = "_init_kwargs"
_LEGACY_MAGIC_BYTES = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # pickled legacy torch.save magic


def sniff(head: bytes) -> bool:
    """True if a file's first bytes are a plain pickle, not a legacy ``torch.save`` stream.

    NVIDIA's TensorFlow pickles are plain pickles too: ask `nvidia_tf.sniff` first.
    """
    return head[:1] == b"\x80" and _LEGACY_MAGIC_BYTES not in head[:64]


def _walk(
    obj: _pickle.PersistentObject, prefix: str, tensors: dict, attrs: dict, source: str
) -> None:
    st = obj.state
    where = prefix[:-1] or "the network"
    if not isinstance(st, dict) or not isinstance(obj.class_name, str):
        raise CorruptCheckpointError(f"{source}: module {where} has no state dict")
    if any(not isinstance(k, str) for k in st):
        raise CorruptCheckpointError(f"{source}: module {where} has non-string attribute names")
    attrs[prefix] = {k: v for k, v in st.items() if not k.startswith("_") and k != "training"}
    attrs[prefix]["__class__"] = obj.class_name
    attrs[prefix][_INIT] = st.get(_INIT)
    for group in ("_parameters", "_buffers", "_modules"):
        if not isinstance(st.get(group) or {}, dict):
            raise CorruptCheckpointError(
                f"{source}: {where}.{group} is a {type(st.get(group)).__name__}, not a dict"
            )
    for group in ("_parameters", "_buffers"):
        for k, v in (st.get(group) or {}).items():
            if v is None:
                continue
            if not isinstance(k, str) or not isinstance(v, np.ndarray):
                raise CorruptCheckpointError(
                    f"{source}: {prefix}{describe(k)} is a {type(v).__name__}, not a tensor"
                )
            tensors[prefix + k] = v
    for k, v in (st.get("_modules") or {}).items():
        if v is None:
            continue
        if not isinstance(k, str) or not isinstance(v, _pickle.PersistentObject):
            raise UnsupportedFormatError(
                f"{source}: module {prefix}{describe(k)} is a {type(v).__name__}, not a "
                "persistent network module"
            )
        _walk(v, f"{prefix}{k}.", tensors, attrs, source)


def flatten_network(
    net: _pickle.PersistentObject, source: str = "checkpoint"
) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """A persistent network -> (``{dotted key: array}``, ``{module prefix: attributes}``).

    Module attributes keep ``_init_kwargs`` (for the cross-check) and drop the other private
    ``_``-names; the loader has already refused cycles and nesting deeper than its limit.
    """
    tensors: dict[str, np.ndarray] = {}
    attrs: dict[str, dict] = {}
    _walk(net, "", tensors, attrs, source)
    return tensors, attrs


def select_network(
    obj: Any, source: str, which: str | None
) -> tuple[_pickle.PersistentObject, str]:
    """Pick ``which`` (default ``G_ema``) from a snapshot dict, or accept a bare network."""
    if isinstance(obj, _pickle.PersistentObject):
        return obj, which or str(obj.class_name)
    if not isinstance(obj, dict):
        raise UnsupportedFormatError(
            f"{source}: not an NVIDIA network snapshot (top level is {type(obj).__name__})"
        )
    which = which or "G_ema"
    nets = [k for k, v in obj.items() if isinstance(v, _pickle.PersistentObject)]
    if which not in obj:
        raise UnsupportedFormatError(
            f"{source}: no network {which!r} in this snapshot; it holds "
            f"{sorted(describe(k) for k in nets)}"
        )
    net = obj[which]
    if not isinstance(net, _pickle.PersistentObject):
        raise UnsupportedFormatError(f"{source}: {which!r} is {type(net).__name__}, not a network")
    return net, which


def _kwargs(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CorruptCheckpointError(f"{where} is {describe(value)}, not a dict")
    return value


def _shape(tensors: dict, key: str, ndim: int, source: str) -> tuple[int, ...]:
    if key not in tensors:
        raise KeyMismatchError(f"{source}: {key} is missing")
    shape = tuple(tensors[key].shape)
    if len(shape) != ndim:
        raise ShapeMismatchError(f"{source}: {key} has shape {shape}, expected {ndim} dimensions")
    return shape


def infer_config(tensors: dict, attrs: dict, source: str, which: str = "G_ema") -> dict[str, Any]:
    """The jaxedit config from tensor shapes and module attributes, cross-checked (types, ranges,
    agreement with the tensors) against the pickled ``_init_kwargs``."""
    top = attrs[""]
    if top.get("__class__") != "Generator":
        raise UnsupportedFormatError(
            f"{source}: network class is {describe(top.get('__class__'))}, expected a StyleGAN2 "
            "'Generator'"
        )
    syn_mods = {p.split(".")[1] for p in attrs if p.startswith("synthesis.") and p.count(".") >= 2}
    if "input" in syn_mods or any(m.startswith("L") and m[1:2].isdigit() for m in syn_mods):
        raise UnsupportedFormatError(
            f"{source}: this is a StyleGAN3 (alias-free) network; jaxedit supports StyleGAN2 "
            "networks (stylegan2-ada-pytorch, or the stylegan3 repo's StyleGAN2 configs)"
        )
    at = f"{source}: {which}."
    res = typed_int(top, "img_resolution", at, lo=4, hi=MAX_RESOLUTION)
    if res & (res - 1):
        raise CorruptCheckpointError(f"{at}img_resolution = {res} is not a power of two")
    z_dim = typed_int(top, "z_dim", at, hi=1 << 16)
    c_dim = typed_int(top, "c_dim", at, hi=1 << 20)
    w_dim = typed_int(top, "w_dim", at, lo=1, hi=1 << 16)
    img_channels = typed_int(top, "img_channels", at, lo=1, hi=64)
    typed_int(top, "num_ws", at, lo=L.num_ws(res), hi=L.num_ws(res), default=None)

    # _init_kwargs: every value it states must have the right type and agree with the module.
    kw_at = f"{at}{_INIT}."
    kwargs = _kwargs(top.get(_INIT), f"{at}{_INIT}")
    module_vals = {
        "z_dim": z_dim,
        "c_dim": c_dim,
        "w_dim": w_dim,
        "img_resolution": res,
        "img_channels": img_channels,
    }
    for name, val in module_vals.items():
        got = typed_int(kwargs, name, kw_at, lo=0, hi=1 << 20, default=None)
        if got is not None and got != val:
            raise CorruptCheckpointError(
                f"{kw_at}{name} = {got} disagrees with the module attribute {name} = {val}"
            )
    map_kw = _kwargs(kwargs.get("mapping_kwargs"), f"{kw_at}mapping_kwargs")
    syn_kw = kwargs.get("synthesis_kwargs")
    syn_at = f"{kw_at}synthesis_kwargs."
    if syn_kw is None:  # stylegan3 repo: synthesis kwargs are flattened into the Generator kwargs
        syn_kw, syn_at = kwargs, kw_at
    syn_kw = _kwargs(syn_kw, syn_at[:-1])
    map_at = f"{kw_at}mapping_kwargs."

    n_map = 0
    while f"mapping.fc{n_map}.weight" in tensors:
        n_map += 1
    if n_map == 0:
        raise KeyMismatchError(f"{source}: no mapping.fc0.weight in the network")
    want_layers = typed_int(map_kw, "num_layers", map_at, lo=1, hi=64, default=None)
    if want_layers is not None and want_layers != n_map:
        raise CorruptCheckpointError(
            f"{map_at}num_layers = {want_layers} but the network has {n_map} mapping layers"
        )
    fc0 = attrs.get("mapping.fc0.", {})
    lr_kw = typed_real(map_kw, "lr_multiplier", map_at, lo=1e-8, hi=1e4, default=None)
    lr = typed_real(
        fc0,
        "bias_gain",
        f"{at}mapping.fc0.",
        lo=1e-8,
        hi=1e4,
        default=0.01 if lr_kw is None else lr_kw,
    )
    if lr_kw is not None and not math.isclose(lr, lr_kw, rel_tol=1e-6):
        raise CorruptCheckpointError(
            f"{map_at}lr_multiplier = {lr_kw} disagrees with mapping.fc0.bias_gain = {lr}"
        )
    for i in range(n_map):
        act = typed_str(
            attrs.get(f"mapping.fc{i}.", {}),
            "activation",
            f"{at}mapping.fc{i}.",
            ("lrelu", "linear", "relu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"),
            default="lrelu",
        )
        if act != "lrelu":
            raise UnsupportedFormatError(
                f"{source}: mapping.fc{i} activation {act!r} is unsupported"
            )
    embed = 0
    if c_dim > 0:
        e_out, e_in = _shape(tensors, "mapping.embed.weight", 2, source)
        if e_in != c_dim:
            raise ShapeMismatchError(
                f"{source}: mapping.embed.weight has shape {(e_out, e_in)} but c_dim = {c_dim}"
            )
        embed = e_out
    elif "mapping.embed.weight" in tensors:
        raise CorruptCheckpointError(f"{source}: c_dim = 0 but the network has mapping.embed")
    fc0_out, fc0_in = _shape(tensors, "mapping.fc0.weight", 2, source)
    if fc0_in != z_dim + embed:
        raise ShapeMismatchError(
            f"{source}: mapping.fc0.weight has shape {(fc0_out, fc0_in)}: {fc0_in} inputs, but "
            f"z_dim = {z_dim}" + (f" + embed_features = {embed}" if embed else "")
        )
    last_out = _shape(tensors, f"mapping.fc{n_map - 1}.weight", 2, source)[0]
    if last_out != w_dim:
        raise ShapeMismatchError(
            f"{source}: mapping.fc{n_map - 1}.weight has {last_out} outputs but w_dim = {w_dim}"
        )
    layer_features = fc0_out if n_map > 1 else w_dim

    blocks = L.block_resolutions(res)
    if f"synthesis.b{2 * res}.conv1.weight" in tensors:
        raise CorruptCheckpointError(
            f"{source}: img_resolution = {res} but the network has a synthesis.b{2 * res} block"
        )
    channels = {}
    for r in blocks:
        channels[r] = _shape(tensors, f"synthesis.b{r}.conv1.weight", 4, source)[0]
    rgb = _shape(tensors, f"synthesis.b{res}.torgb.weight", 4, source)[0]
    if rgb != img_channels:
        raise ShapeMismatchError(
            f"{source}: synthesis.b{res}.torgb.weight has {rgb} outputs but "
            f"img_channels = {img_channels}"
        )
    base = typed_int(syn_kw, "channel_base", syn_at, lo=1, hi=1 << 30, default=None)
    cmax = typed_int(syn_kw, "channel_max", syn_at, lo=1, hi=1 << 20, default=None)
    if base is not None and cmax is not None:
        want = {r: min(base // r, cmax) for r in blocks}
        if want != channels:
            raise CorruptCheckpointError(
                f"{syn_at}channel_base = {base}, channel_max = {cmax} give channels {want}, but "
                f"the tensors have {channels}"
            )
    archs = set()
    for r in blocks:
        if f"synthesis.b{r}." in attrs:
            archs.add(
                typed_str(
                    attrs[f"synthesis.b{r}."],
                    "architecture",
                    f"{at}synthesis.b{r}.",
                    _ARCHITECTURES,
                    default="skip",
                )
            )
    arch_kw = typed_str(syn_kw, "architecture", syn_at, _ARCHITECTURES, default=None)
    if arch_kw is not None:
        archs.add(arch_kw)
    if len(archs) > 1:
        raise UnsupportedFormatError(
            f"{source}: blocks / _init_kwargs disagree on the architecture: {sorted(archs)}"
        )
    clamps = set()
    for p, a in attrs.items():
        if p.startswith("synthesis.") and "conv_clamp" in a:
            clamps.add(typed_real(a, "conv_clamp", f"{at}{p}", lo=0.0, allow_none=True))
        if p.startswith("synthesis.") and a.get("__class__") == "SynthesisLayer":
            act = typed_str(
                a,
                "activation",
                f"{at}{p}",
                ("lrelu", "linear", "relu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"),
                default="lrelu",
            )
            if act != "lrelu":
                raise UnsupportedFormatError(f"{source}: {p[:-1]} activation {act!r}")
    if "conv_clamp" in syn_kw:
        clamps.add(typed_real(syn_kw, "conv_clamp", syn_at, lo=0.0, allow_none=True))
    if len(clamps) > 1:
        raise UnsupportedFormatError(
            f"{source}: layers / _init_kwargs disagree on conv_clamp: {sorted(map(str, clamps))}"
        )
    conv_clamp = clamps.pop() if clamps else None
    num_fp16_res = typed_int(syn_kw, "num_fp16_res", syn_at, lo=0, hi=64, default=0)
    if "synthesis.b4.resample_filter" not in tensors:
        raise KeyMismatchError(f"{source}: synthesis.b4.resample_filter is missing")
    kernel = kernel_1d_from_2d(
        tensors["synthesis.b4.resample_filter"], source, "synthesis.b4.resample_filter"
    )
    w_avg = _shape(tensors, "mapping.w_avg", 1, source)
    if w_avg != (w_dim,):
        raise ShapeMismatchError(f"{source}: mapping.w_avg has shape {w_avg}, w_dim = {w_dim}")
    return L.config(
        z_dim=z_dim,
        c_dim=c_dim,
        w_dim=w_dim,
        img_resolution=res,
        img_channels=img_channels,
        channels=channels,
        mapping_layers=n_map,
        mapping_lr_multiplier=lr,
        embed_features=embed,
        layer_features=layer_features,
        architecture=archs.pop() if archs else "skip",
        conv_clamp=conv_clamp,
        resample_kernel=kernel,
        use_noise="synthesis.b4.conv1.noise_const" in tensors,
        has_w_avg=True,
        num_fp16_res=num_fp16_res,
    )


def _oihw_to_hwio(a: np.ndarray) -> np.ndarray:
    return a.transpose(2, 3, 1, 0)


def _t(a: np.ndarray) -> np.ndarray:
    return a.T


def _chw_to_hwc(a: np.ndarray) -> np.ndarray:
    return a.transpose(1, 2, 0)


def key_table(cfg: dict, source: str):
    """``{jaxedit key: (NVIDIA key, transform)}`` and the recomputable buffers to check."""
    table: dict = {}
    kernel = cfg["resample_kernel"]
    ignored: dict = {}
    for i in range(cfg["mapping_layers"]):
        table[f"{L.fc(i)}/weight"] = (f"mapping.fc{i}.weight", _t)
        table[f"{L.fc(i)}/bias"] = (f"mapping.fc{i}.bias", L.same)
    if cfg["c_dim"] > 0:
        table[f"{L.EMBED}/weight"] = ("mapping.embed.weight", _t)
        table[f"{L.EMBED}/bias"] = ("mapping.embed.bias", L.same)
    table[L.W_AVG] = ("mapping.w_avg", L.same)
    for r in L.block_resolutions(cfg["img_resolution"]):
        b, tb = f"synthesis.b{r}", L.block(r)
        ignored[f"{b}.resample_filter"] = check_fir(kernel, source, f"{b}.resample_filter")
        if r == 4:
            table[L.CONST] = (f"{b}.const", _chw_to_hwc)
        for ln in L.block_convs(r):
            table[f"{tb}/{ln}/weight"] = (f"{b}.{ln}.weight", _oihw_to_hwio)
            table[f"{tb}/{ln}/bias"] = (f"{b}.{ln}.bias", L.same)
            table[f"{tb}/{ln}/affine/weight"] = (f"{b}.{ln}.affine.weight", _t)
            table[f"{tb}/{ln}/affine/bias"] = (f"{b}.{ln}.affine.bias", L.same)
            if cfg["use_noise"]:
                table[f"{tb}/{ln}/noise_strength"] = (f"{b}.{ln}.noise_strength", L.same)
                table[f"{tb}/{ln}/noise_const"] = (f"{b}.{ln}.noise_const", L.same)
            ignored[f"{b}.{ln}.resample_filter"] = check_fir(
                kernel, source, f"{b}.{ln}.resample_filter"
            )
        if L.has_torgb(cfg, r):
            table[f"{tb}/torgb/weight"] = (f"{b}.torgb.weight", _oihw_to_hwio)
            table[f"{tb}/torgb/bias"] = (f"{b}.torgb.bias", L.same)
            table[f"{tb}/torgb/affine/weight"] = (f"{b}.torgb.affine.weight", _t)
            table[f"{tb}/torgb/affine/bias"] = (f"{b}.torgb.affine.bias", L.same)
        if L.has_skip(cfg, r):
            table[f"{tb}/skip/weight"] = (f"{b}.skip.weight", _oihw_to_hwio)
            ignored[f"{b}.skip.resample_filter"] = check_fir(
                kernel, source, f"{b}.skip.resample_filter"
            )
    return table, ignored


def read(path: str | os.PathLike, which: str | None = None, obj: Any = None) -> ConvertedCheckpoint:
    """Read an NVIDIA StyleGAN2 ``.pkl`` into jaxedit's layout (``which`` defaults to ``G_ema``;
    ``obj``: the already unpickled file, as ``converters.read_checkpoint`` passes it)."""
    source = os.fspath(path)
    if obj is None:
        obj = _pickle.load_pickle(source)
    net, which = select_network(obj, source, which)
    tensors, attrs = flatten_network(net, source)
    cfg = infer_config(tensors, attrs, source, which)
    table, ignored = key_table(cfg, source)
    params, sources = apply_table(source, tensors, table, ignored)
    return ConvertedCheckpoint(
        family="stylegan2",
        config=cfg,
        params=params,
        sources=sources,
        source_format=FORMAT,
        source_path=source,
        source_sha256=sha256_file(source),
        which=which,
        source_tensors={k: tuple(v.shape) for k, v in tensors.items()},
    )
