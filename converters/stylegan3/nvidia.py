"""NVIDIA StyleGAN3 network pickles (``.pkl`` of the stylegan3 repository; configs T and R).

The pickle is read with the restricted unpickler (nothing executes). `from_state_dict` maps an
NVIDIA-named state dict (``G_ema.state_dict()`` keys, buffers included) plus the Generator's
init kwargs into jaxedit's layout; `read` does the same for a ``.pkl`` and additionally checks
the pickled modules' attributes (sizes, sampling rates, cutoffs, paddings, factors, clamp)
against the geometry the kwargs give. Every kwarg must be of the right type (an ``int``
dimension, not ``'32'`` or ``True``), in range and agree with the tensors, or the file is
refused with a typed error naming the key.

Official configs run their highest-resolution layers in float16 on CUDA (``num_fp16_res``); the
converted generator runs every layer in float32 (or float64); ``num_fp16_res`` is kept in the
config for information only.
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
    describe,
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
from ..stylegan2 import nvidia as sg2
from . import _layout as L, design

FORMAT = "nvidia-pkl"
MAX_RESOLUTION = 1 << 13

_SYN_INT = {  # synthesis / layer kwarg -> (lo, hi)
    "channel_max": (1, 1 << 20),
    "num_layers": (1, 64),
    "num_critical": (0, 64),
    "margin_size": (0, 1 << 12),
    "num_fp16_res": (0, 64),
    "conv_kernel": (1, 15),
    "filter_size": (1, 64),
    "lrelu_upsampling": (1, 16),
}
_SYN_REAL = {
    "channel_base": (1.0, float(1 << 30)),
    "first_cutoff": (1e-6, 1e6),
    "first_stopband": (1e-6, 1e6),
    "last_stopband_rel": (1e-6, 1e6),
    "output_scale": (-1e6, 1e6),
    "magnitude_ema_beta": (0.0, 1.0),
}
KNOWN_KWARGS = frozenset(
    {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs"}
    | set(_SYN_INT)
    | set(_SYN_REAL)
    | {"use_radial_filters", "conv_clamp"}
)
_MAPPING_KWARGS = frozenset({"num_layers", "lr_multiplier", "w_avg_beta"})


def is_stylegan3(attrs: dict[str, dict]) -> bool:
    """Whether a flattened NVIDIA network is a StyleGAN3 generator (a ``synthesis.input``)."""
    return "synthesis.input." in attrs or any(
        p.startswith("synthesis.L") and p.count(".") == 2 for p in attrs
    )


def _kwargs(kwargs: Any, source: str) -> tuple[dict, dict]:
    if not isinstance(kwargs, dict):
        raise CorruptCheckpointError(
            f"{source}: the init kwargs are {describe(kwargs)}, not a dict"
        )
    bad = sorted(describe(k) for k in kwargs if not isinstance(k, str))
    unknown = sorted(str(k) for k in kwargs if isinstance(k, str) and k not in KNOWN_KWARGS)
    if bad or unknown:
        raise UnsupportedFormatError(
            f"{source}: unknown StyleGAN3 Generator kwarg(s) {bad + unknown}; jaxedit cannot "
            "tell what they change"
        )
    mk = kwargs.get("mapping_kwargs") or {}
    if not isinstance(mk, dict):
        raise CorruptCheckpointError(f"{source}: mapping_kwargs is {describe(mk)}, not a dict")
    unknown = sorted(str(k) for k in mk if k not in _MAPPING_KWARGS)
    if unknown:
        raise UnsupportedFormatError(f"{source}: unknown mapping_kwargs {unknown}")
    return kwargs, mk


def _shape(state: dict, key: str, ndim: int, source: str) -> tuple[int, ...]:
    if key not in state:
        raise KeyMismatchError(f"{source}: {key} is missing")
    a = state[key]
    if not isinstance(a, np.ndarray):
        raise CorruptCheckpointError(f"{source}: {key} is {describe(a)}, not a tensor")
    if a.ndim != ndim:
        raise ShapeMismatchError(
            f"{source}: {key} has shape {tuple(a.shape)}, expected {ndim} dimensions"
        )
    return tuple(int(s) for s in a.shape)


def infer_config(state: dict, kwargs: Any, source: str) -> dict[str, Any]:
    """The jaxedit StyleGAN3 config from the init kwargs (NVIDIA's defaults for those absent),
    typed and cross-checked against the tensor shapes."""
    kw, mk = _kwargs(kwargs, source)
    at = f"{source}: init kwargs "
    res = typed_int(kw, "img_resolution", at, lo=1, hi=MAX_RESOLUTION)
    z_dim = typed_int(kw, "z_dim", at, hi=1 << 16)
    c_dim = typed_int(kw, "c_dim", at, hi=1 << 20)
    w_dim = typed_int(kw, "w_dim", at, lo=1, hi=1 << 16)
    img_channels = typed_int(kw, "img_channels", at, lo=1, hi=64)
    f: dict[str, Any] = {}
    for k, (lo, hi) in _SYN_INT.items():
        f[k] = typed_int(kw, k, at, lo=lo, hi=hi, default=L.DEFAULTS.get(k))
    for k, (lo, hi) in _SYN_REAL.items():
        f[k] = typed_real(kw, k, at, lo=lo, hi=hi, default=L.DEFAULTS.get(k, 0.999))
    f.pop("magnitude_ema_beta")  # training only
    if isinstance(f["channel_base"], float) and f["channel_base"].is_integer():
        f["channel_base"] = int(f["channel_base"])
    radial = kw.get("use_radial_filters", False)
    if not isinstance(radial, (bool, np.bool_)):
        raise CorruptCheckpointError(f"{at}use_radial_filters is {describe(radial)}, not a bool")
    clamp = typed_real(kw, "conv_clamp", at, lo=0.0, default=256.0, allow_none=True)
    mat = f"{source}: mapping_kwargs "
    n_map = typed_int(mk, "num_layers", mat, lo=1, hi=64, default=2)
    lr = typed_real(mk, "lr_multiplier", mat, lo=1e-8, hi=1e4, default=0.01)

    # mapping tensors
    found = 0
    while f"mapping.fc{found}.weight" in state:
        found += 1
    if found != n_map:
        raise KeyMismatchError(
            f"{source}: mapping_kwargs num_layers = {n_map} but the network has {found} "
            "mapping.fc* layers"
        )
    embed = 0
    if c_dim > 0:
        e_out, e_in = _shape(state, "mapping.embed.weight", 2, source)
        L.expect_shape(
            source,
            "mapping.embed.weight",
            state["mapping.embed.weight"],
            (w_dim, c_dim),
            "[w_dim, c_dim]",
        )
        embed = e_out
    elif "mapping.embed.weight" in state:
        raise KeyMismatchError(f"{source}: c_dim = 0 but the network has mapping.embed")
    for i in range(n_map):
        out_f = w_dim
        in_f = z_dim + embed if i == 0 else w_dim
        _shape(state, f"mapping.fc{i}.weight", 2, source)
        L.expect_shape(
            source, f"mapping.fc{i}.weight", state[f"mapping.fc{i}.weight"], (out_f, in_f),
            f"z_dim {z_dim}, c_dim {c_dim}, w_dim {w_dim}",
        )  # fmt: skip
    cfg = L.config(
        z_dim=z_dim,
        c_dim=c_dim,
        w_dim=w_dim,
        img_resolution=res,
        img_channels=img_channels,
        mapping_layers=n_map,
        mapping_lr_multiplier=lr,
        embed_features=embed,
        layer_features=w_dim,
        channel_base=f["channel_base"],
        channel_max=f["channel_max"],
        num_layers=f["num_layers"],
        num_critical=f["num_critical"],
        first_cutoff=f["first_cutoff"],
        first_stopband=f["first_stopband"],
        last_stopband_rel=f["last_stopband_rel"],
        margin_size=f["margin_size"],
        output_scale=f["output_scale"],
        conv_kernel=f["conv_kernel"],
        filter_size=f["filter_size"],
        lrelu_upsampling=f["lrelu_upsampling"],
        use_radial_filters=bool(radial),
        conv_clamp=clamp,
        num_fp16_res=f["num_fp16_res"],
        has_w_avg=True,
    )
    try:
        geo = L.geometry(cfg)
    except (ValueError, ZeroDivisionError, OverflowError) as e:
        raise CorruptCheckpointError(
            f"{source}: the init kwargs give no valid geometry ({e})"
        ) from None
    names = [g["name"] for g in geo["layers"]]
    present = sorted({k.split(".")[1] for k in state if k.startswith("synthesis.L")})
    if sorted(names) != present:
        raise KeyMismatchError(
            f"{source}: the init kwargs give the layers {names}, but the network has {present} "
            "(channel_base / channel_max / num_layers / margin_size disagree with the tensors)"
        )
    return cfg


def key_table(cfg: dict[str, Any], state: dict, source: str):
    """``{jaxedit key: (NVIDIA key, transform)}`` with every shape checked against the geometry,
    and the filter buffers to check."""
    geo = L.geometry(cfg)
    w_dim = cfg["w_dim"]
    table: dict = {}
    ignored: dict = {}
    for i in range(cfg["mapping_layers"]):
        table[f"{L.fc(i)}/weight"] = (f"mapping.fc{i}.weight", L.t)
        table[f"{L.fc(i)}/bias"] = (f"mapping.fc{i}.bias", L.same)
    if cfg["c_dim"] > 0:
        table[f"{L.EMBED}/weight"] = ("mapping.embed.weight", L.t)
        table[f"{L.EMBED}/bias"] = ("mapping.embed.bias", L.same)
    table[L.W_AVG] = ("mapping.w_avg", L.same)
    c0 = geo["input"]["channels"]
    inp = "synthesis.input"
    shapes = {
        f"{inp}.weight": (c0, c0),
        f"{inp}.freqs": (c0, 2),
        f"{inp}.phases": (c0,),
        f"{inp}.transform": (3, 3),
        f"{inp}.affine.weight": (4, w_dim),
        f"{inp}.affine.bias": (4,),
        "mapping.w_avg": (w_dim,),
    }
    table[f"{L.INPUT}/weight"] = (f"{inp}.weight", L.t)
    for k in ("freqs", "phases", "transform"):
        table[f"{L.INPUT}/{k}"] = (f"{inp}.{k}", L.same)
    table[f"{L.INPUT}/affine/weight"] = (f"{inp}.affine.weight", L.t)
    table[f"{L.INPUT}/affine/bias"] = (f"{inp}.affine.bias", L.same)
    for lay in geo["layers"]:
        src, dst = f"synthesis.{lay['name']}", L.layer(lay["name"])
        k, cin, cout = lay["conv_kernel"], lay["in_channels"], lay["out_channels"]
        shapes.update(
            {
                f"{src}.weight": (cout, cin, k, k),
                f"{src}.bias": (cout,),
                f"{src}.magnitude_ema": (),
                f"{src}.affine.weight": (cin, w_dim),
                f"{src}.affine.bias": (cin,),
            }
        )
        table[f"{dst}/weight"] = (f"{src}.weight", L.oihw_to_hwio)
        table[f"{dst}/bias"] = (f"{src}.bias", L.same)
        table[f"{dst}/magnitude_ema"] = (f"{src}.magnitude_ema", L.scalar)
        table[f"{dst}/affine/weight"] = (f"{src}.affine.weight", L.t)
        table[f"{dst}/affine/bias"] = (f"{src}.affine.bias", L.same)
        up, down = design.layer_filters(lay)
        for name, want in (("up_filter", up), ("down_filter", down)):
            key = f"{src}.{name}"
            if want is not None and key not in state:
                raise KeyMismatchError(f"{source}: {key} is missing")
            ignored[key] = L.check_filter(source, key, want)
    for key, shape in shapes.items():
        if key in state:
            L.expect_shape(source, key, state[key], shape, "from the config's geometry")
    return table, ignored


def from_state_dict(
    state: dict[str, np.ndarray], init_kwargs: dict, source: str = "<memory>"
) -> ConvertedCheckpoint:
    """An NVIDIA-named StyleGAN3 Generator state dict + its init kwargs -> jaxedit's layout.

    Args:
      state: ``{key: array}`` exactly as torch's ``G.state_dict()`` (``mapping.fc0.weight``,
        ``synthesis.input.freqs``, ``synthesis.L0_36_512.affine.weight``, buffers included).
      init_kwargs: the Generator's constructor kwargs (``G.init_kwargs``: z_dim, c_dim, w_dim,
        img_resolution, img_channels, mapping_kwargs, channel_base, ...; absent ones take
        NVIDIA's defaults).
      source: a name for error messages.
    Raises:
      KeyMismatchError, ShapeMismatchError, CorruptCheckpointError, UnsupportedFormatError.
    """
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CorruptCheckpointError(f"{source}: the state dict must map str keys to arrays")
    state = {k: np.asarray(v) for k, v in state.items()}
    cfg = infer_config(state, init_kwargs, source)
    table, ignored = key_table(cfg, state, source)
    params, sources = apply_table(source, state, table, ignored)
    return ConvertedCheckpoint(
        family="stylegan3",
        config=cfg,
        params=params,
        sources=sources,
        source_format=FORMAT,
        source_path=source,
        source_sha256="",
        which=None,
        source_tensors={k: tuple(v.shape) for k, v in state.items()},
    )


_ATTR_CHECKS = (
    "in_channels out_channels in_sampling_rate out_sampling_rate tmp_sampling_rate in_cutoff "
    "out_cutoff in_half_width out_half_width conv_kernel up_factor up_taps down_factor "
    "down_taps down_radial is_torgb is_critically_sampled padding in_size out_size"
).split()


def _same_value(got: Any, want: Any) -> bool:
    """Whether a pickled attribute equals the geometry's value (lists element-wise)."""
    if isinstance(want, list):
        if not isinstance(got, (np.ndarray, list, tuple)):
            return False
        flat = np.asarray(got, dtype=object).reshape(-1).tolist()
        return len(flat) == len(want) and all(_same_value(g, w) for g, w in zip(flat, want))
    if isinstance(want, bool) or isinstance(got, (bool, np.bool_)):
        return isinstance(got, (bool, np.bool_)) and isinstance(want, bool) and bool(got) == want
    if not isinstance(got, (int, float, np.integer, np.floating)):
        return False
    return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-12)


def check_attributes(attrs: dict[str, dict], cfg: dict[str, Any], source: str, which: str) -> None:
    """The pickled modules' own attributes (geometry, clamp, gains) must agree with ``cfg``."""
    geo = L.geometry(cfg)
    for lay in geo["layers"]:
        at = attrs.get(f"synthesis.{lay['name']}.", {})
        for k in _ATTR_CHECKS:
            if k not in at:
                continue
            want = lay[k]
            if k in ("in_size", "out_size"):
                want = [want, want]
            if not _same_value(at[k], want):
                raise CorruptCheckpointError(
                    f"{source}: {which}.synthesis.{lay['name']}.{k} = {describe(at[k])} disagrees "
                    f"with the geometry of the init kwargs ({want})"
                )
        if "conv_clamp" in at:
            got = typed_real(
                at, "conv_clamp", f"{source}: {which}.synthesis.{lay['name']}.", allow_none=True
            )
            if got != cfg["conv_clamp"]:
                raise CorruptCheckpointError(
                    f"{source}: {which}.synthesis.{lay['name']}.conv_clamp = {got} disagrees with "
                    f"the init kwargs' conv_clamp = {cfg['conv_clamp']}"
                )
    syn = attrs.get("synthesis.", {})
    for k in ("num_layers", "num_critical", "margin_size", "output_scale", "img_resolution"):
        if k in syn and not _same_value(syn[k], cfg[k]):
            raise CorruptCheckpointError(
                f"{source}: {which}.synthesis.{k} = {describe(syn[k])} disagrees with the init "
                f"kwargs ({cfg[k]})"
            )
    for i in range(cfg["mapping_layers"]):
        at = attrs.get(f"mapping.fc{i}.", {})
        if "bias_gain" in at and not _same_value(at["bias_gain"], cfg["mapping_lr_multiplier"]):
            raise CorruptCheckpointError(
                f"{source}: {which}.mapping.fc{i}.bias_gain = {describe(at['bias_gain'])} "
                f"disagrees with mapping_kwargs lr_multiplier = {cfg['mapping_lr_multiplier']}"
            )
        if at.get("activation", "lrelu") != "lrelu":
            raise UnsupportedFormatError(
                f"{source}: mapping.fc{i} activation {describe(at.get('activation'))} is unsupported"
            )


def read(path: str | os.PathLike, which: str | None = None, obj: Any = None) -> ConvertedCheckpoint:
    """Read an NVIDIA StyleGAN3 ``.pkl`` into jaxedit's layout (``which`` defaults to ``G_ema``).

    Args:
      obj: the already unpickled file (``converters.read_checkpoint`` passes it).
    """
    source = os.fspath(path)
    if obj is None:
        obj = _pickle.load_pickle(source)
    net, which = sg2.select_network(obj, source, which)
    tensors, attrs = sg2.flatten_network(net, source)
    if attrs[""].get("__class__") != "Generator" or not is_stylegan3(attrs):
        raise UnsupportedFormatError(
            f"{source}: {which} is {describe(attrs[''].get('__class__'))}, not a StyleGAN3 Generator"
        )
    kwargs = attrs[""].get("_init_kwargs")
    if kwargs is None:
        raise CorruptCheckpointError(f"{source}: {which} has no _init_kwargs")
    at = f"{source}: {which}."
    top = attrs[""]
    for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        if k in top and isinstance(kwargs, dict) and k in kwargs:
            if typed_int(top, k, at, hi=1 << 20) != typed_int(
                kwargs, k, f"{at}_init_kwargs.", hi=1 << 20
            ):
                raise CorruptCheckpointError(
                    f"{at}_init_kwargs.{k} = {describe(kwargs[k])} disagrees with the module "
                    f"attribute {k} = {describe(top[k])}"
                )
    cfg = infer_config(tensors, kwargs, f"{source} [{which}]")
    check_attributes(attrs, cfg, source, which)
    table, ignored = key_table(cfg, tensors, f"{source} [{which}]")
    params, sources = apply_table(f"{source} [{which}]", tensors, table, ignored)
    return ConvertedCheckpoint(
        family="stylegan3",
        config=cfg,
        params=params,
        sources=sources,
        source_format=FORMAT,
        source_path=source,
        source_sha256=sha256_file(source),
        which=which,
        source_tensors={k: tuple(v.shape) for k, v in tensors.items()},
    )
