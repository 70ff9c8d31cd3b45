"""NVIDIA's TensorFlow StyleGAN2 network pickles (the official ``stylegan2-*-config-f.pkl`` files).

The file is ``pickle.dump((G, D, Gs))`` of ``dnnlib.tflib.network.Network`` objects. It is read
with the restricted unpickler: no TensorFlow, no torch, and the TF source code that every
network carries (``build_module_src``) is never executed, imported or even parsed. Each
network's state is plain data: ``static_kwargs``, ``components`` (``mapping`` and
``synthesis`` sub-networks) and ``variables`` (``[(TF name, numpy array)]``; numpy-1.x array
pickles and 0-d numpy scalars for ``noise_strength`` / ``lod``).

``Gs`` (the moving average, what NVIDIA and ``legacy.py`` use as ``G_ema``) is read by default;
``which="G"`` takes the training copy. ``D`` is refused (a discriminator).

Every variable is mapped to jaxedit's StyleGAN2 layout (HWIO convs, ``[in, out]`` dense kernels,
raw weights with the equalized-lr gains applied at run time) with TF's runtime conventions
reproduced exactly as stylegan2-ada-pytorch's ``legacy.py`` does:

* ``Conv0_up`` (and resnet ``Skip``) weights are flipped spatially (``w[::-1, ::-1]``): TF's
  ``upsample_conv_2d`` is a transposed convolution;
* ``mod_bias + 1`` (TF adds the 1 at run time; jaxedit's affine biases hold it);
* weights stay raw: the ``1/sqrt(fan_in)`` gains, the mapping ``mapping_lrmul`` (0.01) on
  weights and biases, and ToRGB's ``1/sqrt(C_in)`` style gain are applied by the NNX module at
  run time, as TF and stylegan2-ada-pytorch do;
* ``noise{j}`` buffers become each layer's ``noise_const`` (``4x4/Conv`` uses ``noise0``; at
  ``R = 2^k`` ``Conv0_up`` uses ``noise(2k-5)`` and ``Conv1`` ``noise(2k-4)``);
* ``dlatent_avg`` becomes ``w_avg``, the truncation centre.

One documented difference from TF itself (not from ``legacy.py``): TF demodulates the weight
*after* its ``1/sqrt(fan_in)`` gain, jaxedit and stylegan2-ada-pytorch before it, which changes
only the effect of the 1e-8 epsilon.

Truncation: TF's ``G_main`` computes ``dlatent_avg + psi * (w - dlatent_avg)`` on slots
``< truncation_cutoff`` (None = all) and defaults to ``psi = 0.5`` when the caller passes none;
``gen.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)`` is the same computation,
with jaxedit's default ``psi = 1`` (as ``legacy.py``). ``truncation_psi`` / ``truncation_cutoff``
static kwargs, if a pickle has them, are ignored, as ``legacy.py`` ignores them.

Supported: configs E and F of the StyleGAN2 paper (``G_synthesis_stylegan2``, architecture
``skip`` / ``resnet`` / ``orig`` as the variables say) and stylegan2-ada's TF networks
(``G_synthesis``, ``LabelEmbed`` class conditioning, ``conv_clamp``). Refused with an
`UnsupportedFormatError` naming the reason: progressive-growing configs A-D
(``ToRGB_lod*`` variables), StyleGAN (v1) ``G_style`` networks, the original StyleGAN2 TF
``LabelConcat`` conditioning (it normalizes ``[z, embed]`` jointly, which the NNX mapping does
not express), ``normalize_latents=False``, non-``lrelu`` activations and a ``fmap_const`` that
differs from the 4x4 channel count.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np

from .. import _pickle
from .._common import ConvertedCheckpoint, apply_table, sha256_file
from ..errors import (
    CorruptCheckpointError,
    KeyMismatchError,
    ShapeMismatchError,
    UnsupportedFormatError,
)
from . import _layout as L

FORMAT = "nvidia-tf-pkl"
TF_NETWORK_MODULE = b"dnnlib.tflib.network"
NETWORK_NAMES = ("G", "D", "Gs")

# Static kwargs of G_main / G_mapping / G_synthesis(_stylegan2) that this reader understands.
# Runtime-only or training-only ones are accepted and ignored.
_SHAPE_KWARGS = (
    "latent_size",
    "label_size",
    "dlatent_size",
    "resolution",
    "num_channels",
    "mapping_layers",
    "mapping_fmaps",
    "label_fmaps",
    "fmap_base",
    "fmap_decay",
    "fmap_min",
    "fmap_max",
    "fmap_const",
)
_CONFIG_KWARGS = (
    "mapping_lrmul",
    "mapping_nonlinearity",
    "nonlinearity",
    "normalize_latents",
    "architecture",
    "resample_kernel",
    "use_noise",
    "conv_clamp",
    "num_fp16_res",
    "dlatent_broadcast",
)
_IGNORED_KWARGS = (
    "truncation_psi",
    "truncation_cutoff",
    "truncation_psi_val",
    "truncation_cutoff_val",
    "dlatent_avg_beta",
    "w_avg_beta",
    "style_mixing_prob",
    "structure",
    "randomize_noise",
    "fused_modconv",
    "dtype",
    "is_training",
    "is_validation",
    "return_dlatents",
    "is_template_graph",
    "force_clean_graph",
    "mapping_func",
    "synthesis_func",
    "conditioning",
)
KNOWN_KWARGS = frozenset(_SHAPE_KWARGS + _CONFIG_KWARGS + _IGNORED_KWARGS)

_SYNTHESIS_FUNCS = ("G_synthesis_stylegan2", "G_synthesis")
_MAX_DEPTH = 4  # G -> {mapping, synthesis}; nothing deeper exists in real files


def sniff(head: bytes) -> bool:
    """True if a pickle's first bytes name ``dnnlib.tflib.network`` (its first global).

    ``pickle.dump((G, D, Gs))`` starts with the ``Network`` class reference (GLOBAL for
    protocols 2-3, SHORT_BINUNICODE + STACK_GLOBAL for 4-5), so the first few hundred bytes
    decide; nothing is unpickled.
    """
    return TF_NETWORK_MODULE in head


# ------------------------------------------------------------------------------------------------
# Network records
# ------------------------------------------------------------------------------------------------
def _state(net: Any, where: str, source: str) -> dict:
    if not isinstance(net, _pickle.TFNetwork) or not hasattr(net, "state"):
        raise CorruptCheckpointError(
            f"{source}: {where} is a {type(net).__name__}, not a TF network"
        )
    st = net.state
    version = st.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptCheckpointError(f"{source}: {where} has no integer 'version' ({version!r})")
    if version < 4:
        raise UnsupportedFormatError(
            f"{source}: {where} is a TF network pickle of version {version}; only version >= 4 "
            "(StyleGAN2 era) files are supported"
        )
    for key, typ in (("static_kwargs", dict), ("components", dict), ("variables", list)):
        if not isinstance(st.get(key), typ):
            raise CorruptCheckpointError(
                f"{source}: {where}.{key} is {type(st.get(key)).__name__}, expected {typ.__name__}"
            )
    for key in ("name", "build_func_name"):
        if not isinstance(st.get(key), str):
            raise CorruptCheckpointError(f"{source}: {where}.{key} is missing or not a string")
    return st


def select_network(obj: Any, source: str, which: str | None) -> tuple[Any, str]:
    """Pick ``which`` (default ``Gs``; ``G`` the training copy) from ``(G, D, Gs)``."""
    if isinstance(obj, _pickle.TFNetwork):  # a bare network pickle
        name = _state(obj, "network", source)["name"]
        if which not in (None, name):
            raise UnsupportedFormatError(
                f"{source}: holds a single TF network {name!r}, not {which!r}"
            )
        return obj, name
    if not (
        isinstance(obj, tuple)
        and len(obj) == 3
        and all(isinstance(n, _pickle.TFNetwork) for n in obj)
    ):
        kind = f"a tuple of {len(obj)}" if isinstance(obj, tuple) else type(obj).__name__
        raise UnsupportedFormatError(
            f"{source}: not an NVIDIA TF network pickle (expected a tuple (G, D, Gs) of "
            f"dnnlib.tflib.network.Network, found {kind})"
        )
    wanted = {"G": 0, "D": 1, "Gs": 2, "G_ema": 2}
    which = which or "Gs"
    if which not in wanted:
        raise UnsupportedFormatError(
            f"{source}: no network {which!r} in a TF pickle; choose 'Gs' (default, moving "
            "average) or 'G' (training copy)"
        )
    if which == "D":
        raise UnsupportedFormatError(f"{source}: 'D' is the discriminator; choose 'Gs' or 'G'")
    net = obj[wanted[which]]
    return net, NETWORK_NAMES[wanted[which]]


def collect_variables(
    net: Any, source: str, where: str = "", _depth: int = 0, _seen: set | None = None
) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """A TF network -> (``{"synthesis/4x4/Conv/weight": array}``, ``{prefix: state}``).

    Names are flattened as ``legacy.py`` does (component name + ``/`` + variable name). Every
    value must be a finite floating numpy array or 0-d scalar; duplicates, cycles and deeper
    nesting than G -> components are corrupt.
    """
    seen = set() if _seen is None else _seen
    if id(net) in seen or _depth > _MAX_DEPTH:
        raise CorruptCheckpointError(f"{source}: TF network components nest cyclically or too deep")
    seen.add(id(net))
    st = _state(net, where.rstrip("/") or "network", source)
    tensors: dict[str, np.ndarray] = {}
    states: dict[str, dict] = {where: st}
    for i, item in enumerate(st["variables"]):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise CorruptCheckpointError(
                f"{source}: {where or 'network '}variables[{i}] is not a (name, value) pair"
            )
        name, value = where + item[0], item[1]
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray):
            raise CorruptCheckpointError(
                f"{source}: TF variable {name!r} is a {type(value).__name__}, not a numpy array"
            )
        if value.dtype.kind != "f":
            raise CorruptCheckpointError(
                f"{source}: TF variable {name!r} has dtype {value.dtype}, expected floating point"
            )
        if not np.all(np.isfinite(value)):
            raise CorruptCheckpointError(f"{source}: TF variable {name!r} has non-finite values")
        if name in tensors:
            raise CorruptCheckpointError(f"{source}: TF variable {name!r} appears twice")
        tensors[name] = value
    for cname, comp in st["components"].items():
        if not isinstance(cname, str) or "/" in cname:
            raise CorruptCheckpointError(f"{source}: bad component name {cname!r}")
        sub_t, sub_s = collect_variables(comp, source, f"{where}{cname}/", _depth + 1, seen)
        for k, v in sub_t.items():
            if k in tensors:
                raise CorruptCheckpointError(f"{source}: TF variable {k!r} appears twice")
            tensors[k] = v
        states.update(sub_s)
    return tensors, states


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
def _nf(stage: int, kw: dict) -> int:
    base = float(kw.get("fmap_base", 16 << 10))
    decay = float(kw.get("fmap_decay", 1.0))
    lo, hi = int(kw.get("fmap_min", 1)), int(kw.get("fmap_max", 512))
    return int(np.clip(int(base / (2.0 ** (stage * decay))), lo, hi))


def _int_kwarg(kw: dict, key: str, source: str) -> int | None:
    if key not in kw or kw[key] is None:
        return None
    v = kw[key]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise CorruptCheckpointError(f"{source}: static kwarg {key}={v!r} is not an integer")
    return int(v)


def _check(source: str, key: str, kw_value, actual: int, what: str) -> None:
    if kw_value is not None and int(kw_value) != int(actual):
        raise ShapeMismatchError(
            f"{source}: static kwarg {key}={kw_value} disagrees with the variables: {what} "
            f"gives {actual}"
        )


def _kernel(kw: dict, source: str) -> list[float]:
    k = kw.get("resample_kernel", [1, 3, 3, 1])
    if k is None:  # TF: None means a box filter of the upsampling factor
        return [1.0, 1.0]
    try:
        taps = [float(t) for t in np.asarray(k, np.float64).reshape(-1)]
    except (TypeError, ValueError):
        raise UnsupportedFormatError(
            f"{source}: resample_kernel={k!r} is not a list of numbers"
        ) from None
    if not taps or not all(math.isfinite(t) for t in taps) or sum(taps) == 0:
        raise UnsupportedFormatError(f"{source}: resample_kernel={k!r} is not a usable FIR")
    return taps


def static_kwargs(states: dict[str, dict], source: str) -> dict[str, Any]:
    """The generator's static kwargs (top level), checked against its components'.

    Unknown kwargs raise UnsupportedFormatError (as ``legacy.py``); a component that
    disagrees with the top level on a shared kwarg is corrupt.
    """
    top = dict(states[""]["static_kwargs"])
    for prefix, st in states.items():
        kw = st["static_kwargs"]
        unknown = sorted(str(k) for k in kw if k not in KNOWN_KWARGS)
        if unknown:
            raise UnsupportedFormatError(
                f"{source}: unknown TensorFlow static kwarg(s) {unknown} in "
                f"{prefix.rstrip('/') or 'the generator'}; jaxedit cannot tell what they change"
            )
        for k, v in kw.items():
            if k == "dlatent_broadcast":
                continue
            if k in top and not _same_value(top[k], v):
                raise CorruptCheckpointError(
                    f"{source}: static kwarg {k} is {top[k]!r} in the generator but {v!r} in "
                    f"{prefix.rstrip('/')}"
                )
            top.setdefault(k, v)
    return top


def _same_value(a, b) -> bool:
    try:
        return bool(np.all(np.asarray(a) == np.asarray(b))) and np.shape(a) == np.shape(b)
    except (TypeError, ValueError):  # pragma: no cover - exotic values
        return a is b


def infer_config(
    tensors: dict[str, np.ndarray], states: dict[str, dict], source: str
) -> dict[str, Any]:
    """jaxedit StyleGAN2 config fields from the variables, validated against the static kwargs."""
    top = states[""]
    if top["build_func_name"] != "G_main" or set(top["components"]) != {"mapping", "synthesis"}:
        what = (
            "a StyleGAN (v1) generator (G_style)"
            if top["build_func_name"] == "G_style"
            else f"build function {top['build_func_name']!r} with components "
            f"{sorted(map(str, top['components']))}"
        )
        raise UnsupportedFormatError(
            f"{source}: {what}; jaxedit reads StyleGAN2 generators (G_main with mapping and "
            "synthesis components)"
        )
    lods = sorted(k for k in tensors if re.search(r"(^|/)ToRGB_lod\d+/", k))
    syn_func = states["synthesis/"]["build_func_name"]
    if lods or syn_func == "G_synthesis_stylegan_revised":
        raise UnsupportedFormatError(
            f"{source}: a progressive-growing network (synthesis {syn_func!r}, variables like "
            f"{lods[:1] or ['ToRGB_lod*']}): StyleGAN2 configs A-D are not supported, only "
            "configs E/F and stylegan2-ada networks"
        )
    if syn_func not in _SYNTHESIS_FUNCS:
        raise UnsupportedFormatError(
            f"{source}: synthesis build function {syn_func!r} is not supported (expected one of "
            f"{list(_SYNTHESIS_FUNCS)})"
        )
    if states["mapping/"]["build_func_name"] != "G_mapping":
        raise UnsupportedFormatError(
            f"{source}: mapping build function {states['mapping/']['build_func_name']!r} is not "
            "supported (expected 'G_mapping')"
        )
    kw = static_kwargs(states, source)
    for key in ("mapping_nonlinearity", "nonlinearity"):
        if kw.get(key, "lrelu") != "lrelu":
            raise UnsupportedFormatError(f"{source}: {key}={kw[key]!r}; only 'lrelu' is supported")
    if not kw.get("normalize_latents", True):
        raise UnsupportedFormatError(
            f"{source}: normalize_latents=False; jaxedit's mapping always normalizes z"
        )
    if any(k.startswith("mapping/LabelConcat/") for k in tensors):
        raise UnsupportedFormatError(
            f"{source}: conditional mapping with 'LabelConcat' (original StyleGAN2 TF: z and the "
            "label embedding normalized together) is not supported; stylegan2-ada's "
            "'LabelEmbed' is"
        )

    def need(name: str) -> np.ndarray:
        if name not in tensors:
            raise KeyMismatchError(f"{source}: TF variable {name!r} is missing")
        return tensors[name]

    # --- mapping
    n_map = 0
    while f"mapping/Dense{n_map}/weight" in tensors:
        n_map += 1
    if n_map == 0:
        raise KeyMismatchError(f"{source}: TF variable 'mapping/Dense0/weight' is missing")
    _check(
        source,
        "mapping_layers",
        _int_kwarg(kw, "mapping_layers", source) or 8,
        n_map,
        "the number of mapping/Dense* layers",
    )
    dense = [need(f"mapping/Dense{i}/weight") for i in range(n_map)]
    for i, w in enumerate(dense):
        if w.ndim != 2:
            raise ShapeMismatchError(
                f"{source}: mapping/Dense{i}/weight has shape {w.shape}, expected [in, out]"
            )
    w_dim = int(dense[-1].shape[1])
    _check(
        source,
        "dlatent_size",
        _int_kwarg(kw, "dlatent_size", source) or 512,
        w_dim,
        f"mapping/Dense{n_map - 1}/weight {list(dense[-1].shape)}",
    )
    label_size = _int_kwarg(kw, "label_size", source) or 0
    embed = 0
    if "mapping/LabelEmbed/weight" in tensors:
        e = need("mapping/LabelEmbed/weight")
        if e.ndim != 2:
            raise ShapeMismatchError(f"{source}: mapping/LabelEmbed/weight has shape {e.shape}")
        _check(source, "label_size", label_size, int(e.shape[0]), "mapping/LabelEmbed/weight")
        c_dim, embed = int(e.shape[0]), int(e.shape[1])
        _check(
            source,
            "label_fmaps",
            _int_kwarg(kw, "label_fmaps", source),
            embed,
            "mapping/LabelEmbed/weight",
        )
    elif label_size:
        raise KeyMismatchError(
            f"{source}: label_size={label_size} but there is no mapping/LabelEmbed/weight"
        )
    else:
        c_dim = 0
    z_dim = int(dense[0].shape[0]) - embed
    _check(
        source,
        "latent_size",
        _int_kwarg(kw, "latent_size", source) or 512,
        z_dim,
        f"mapping/Dense0/weight {list(dense[0].shape)} minus the label embedding",
    )
    layer_features = int(dense[0].shape[1]) if n_map > 1 else w_dim
    if n_map > 1:
        _check(
            source,
            "mapping_fmaps",
            _int_kwarg(kw, "mapping_fmaps", source),
            layer_features,
            "mapping/Dense0/weight",
        )

    # --- synthesis
    res = _int_kwarg(kw, "resolution", source) or 1024
    if res < 4 or res & (res - 1):
        raise UnsupportedFormatError(f"{source}: resolution={res} is not a power of two >= 4")
    blocks = L.block_resolutions(res)
    present = sorted(
        {int(m.group(1)) for k in tensors if (m := re.match(r"synthesis/(\d+)x\1/", k))}
    )
    if present != blocks:
        raise ShapeMismatchError(
            f"{source}: static kwarg resolution={res} needs blocks {blocks}, the variables have "
            f"{present}"
        )
    channels = {}
    for r in blocks:
        conv = f"synthesis/{r}x{r}/" + ("Conv" if r == 4 else "Conv1") + "/weight"
        w = need(conv)
        if w.ndim != 4:
            raise ShapeMismatchError(
                f"{source}: {conv} has shape {w.shape}, expected [kh, kw, in, out]"
            )
        channels[r] = int(w.shape[3])
        stage = int(math.log2(r)) - 1
        if any(k in kw for k in ("fmap_base", "fmap_max", "fmap_min", "fmap_decay")):
            _check(
                source,
                "fmap_base/fmap_decay/fmap_min/fmap_max",
                _nf(stage, kw),
                channels[r],
                f"{conv} (output channels at {r}x{r})",
            )
    const = need("synthesis/4x4/Const/const")
    if const.ndim != 4 or const.shape[0] != 1 or const.shape[2:] != (4, 4):
        raise ShapeMismatchError(
            f"{source}: synthesis/4x4/Const/const has shape {const.shape}, expected [1, C, 4, 4]"
        )
    if int(const.shape[1]) != channels[4]:
        raise UnsupportedFormatError(
            f"{source}: the constant input has {const.shape[1]} channels but 4x4/Conv has "
            f"{channels[4]} (fmap_const); jaxedit needs them equal"
        )
    skip = any(f"synthesis/{r}x{r}/Skip/weight" in tensors for r in blocks[1:])
    torgbs = [r for r in blocks if f"synthesis/{r}x{r}/ToRGB/weight" in tensors]
    arch = L.architecture(torgb_everywhere=torgbs == blocks, any_skip=skip)
    if "architecture" in kw and kw["architecture"] != arch:
        raise KeyMismatchError(
            f"{source}: static kwarg architecture={kw['architecture']!r} but the variables "
            f"(ToRGB at {torgbs}, Skip: {skip}) are those of {arch!r}"
        )
    rgb = need(f"synthesis/{res}x{res}/ToRGB/weight")
    if rgb.ndim != 4:
        raise ShapeMismatchError(
            f"{source}: synthesis/{res}x{res}/ToRGB/weight has shape {rgb.shape}"
        )
    img_channels = int(rgb.shape[3])
    _check(
        source,
        "num_channels",
        _int_kwarg(kw, "num_channels", source) or 3,
        img_channels,
        f"synthesis/{res}x{res}/ToRGB/weight",
    )
    use_noise = "synthesis/noise0" in tensors
    if "use_noise" in kw and bool(kw["use_noise"]) != use_noise:
        raise KeyMismatchError(
            f"{source}: static kwarg use_noise={kw['use_noise']!r} but noise variables are "
            f"{'present' if use_noise else 'absent'}"
        )
    num_ws = L.num_ws(res)
    bc = _int_kwarg(states["mapping/"]["static_kwargs"], "dlatent_broadcast", source)
    _check(source, "dlatent_broadcast", bc, num_ws, f"resolution {res}")
    lr = kw.get("mapping_lrmul", 0.01)
    clamp = kw.get("conv_clamp")
    try:
        lr = float(lr)
        clamp = None if clamp is None else float(clamp)
        fp16 = int(kw.get("num_fp16_res") or 0)
    except (TypeError, ValueError):
        raise CorruptCheckpointError(
            f"{source}: mapping_lrmul / conv_clamp / num_fp16_res are not numbers"
        ) from None
    if not (math.isfinite(lr) and lr > 0):
        raise CorruptCheckpointError(f"{source}: mapping_lrmul={lr} is not a positive number")
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
        architecture=arch,
        conv_clamp=clamp,
        resample_kernel=_kernel(kw, source),
        use_noise=use_noise,
        has_w_avg=True,
        num_fp16_res=fp16,
    )


# ------------------------------------------------------------------------------------------------
# Key mapping
# ------------------------------------------------------------------------------------------------
# Transforms pass an array of an unexpected shape through unchanged, so that the strict shape
# check of ``jaxedit.checkpoint.generator_from_arrays`` reports it with both key names.
def _flip_hw(a: np.ndarray) -> np.ndarray:
    """TF transposed-conv kernels [kh, kw, in, out] -> jaxedit's true-convolution HWIO."""
    return np.ascontiguousarray(a[::-1, ::-1]) if a.ndim == 4 else a


def _plus_one(a: np.ndarray) -> np.ndarray:
    return a + np.asarray(1, a.dtype)


def _check_scalar(name: str, source: str):
    def check(a: np.ndarray) -> None:
        if a.size != 1:
            raise ShapeMismatchError(f"{source}: {name} has shape {a.shape}, expected a scalar")

    return check


def key_table(cfg: dict, source: str):
    """``{jaxedit key: (TF variable name, transform)}`` and the unused variables to check."""
    table: dict = {}
    for i in range(cfg["mapping_layers"]):
        table[f"{L.fc(i)}/weight"] = (f"mapping/Dense{i}/weight", L.same)
        table[f"{L.fc(i)}/bias"] = (f"mapping/Dense{i}/bias", L.same)
    if cfg["c_dim"] > 0:
        table[f"{L.EMBED}/weight"] = ("mapping/LabelEmbed/weight", L.same)
        table[f"{L.EMBED}/bias"] = ("mapping/LabelEmbed/bias", L.same)
    table[L.W_AVG] = ("dlatent_avg", L.same)
    for r in L.block_resolutions(cfg["img_resolution"]):
        k = int(math.log2(r))
        tb, src = L.block(r), f"synthesis/{r}x{r}"
        if r == 4:
            table[L.CONST] = (f"{src}/Const/const", L.const_nchw)
            layers = [("conv1", "Conv", 0)]
        else:
            layers = [("conv0", "Conv0_up", 2 * k - 5), ("conv1", "Conv1", 2 * k - 4)]
        for ln, tf_name, noise_idx in layers:
            s = f"{src}/{tf_name}"
            table[f"{tb}/{ln}/weight"] = (f"{s}/weight", _flip_hw if ln == "conv0" else L.same)
            table[f"{tb}/{ln}/bias"] = (f"{s}/bias", L.same)
            table[f"{tb}/{ln}/affine/weight"] = (f"{s}/mod_weight", L.same)
            table[f"{tb}/{ln}/affine/bias"] = (f"{s}/mod_bias", _plus_one)
            if cfg["use_noise"]:
                table[f"{tb}/{ln}/noise_strength"] = (f"{s}/noise_strength", L.scalar)
                table[f"{tb}/{ln}/noise_const"] = (f"synthesis/noise{noise_idx}", L.noise_11hw)
        if L.has_torgb(cfg, r):
            table[f"{tb}/torgb/weight"] = (f"{src}/ToRGB/weight", L.same)
            table[f"{tb}/torgb/bias"] = (f"{src}/ToRGB/bias", L.same)
            table[f"{tb}/torgb/affine/weight"] = (f"{src}/ToRGB/mod_weight", L.same)
            table[f"{tb}/torgb/affine/bias"] = (f"{src}/ToRGB/mod_bias", _plus_one)
        if L.has_skip(cfg, r):
            table[f"{tb}/skip/weight"] = (f"{src}/Skip/weight", _flip_hw)
    ignored = {
        "lod": _check_scalar("lod", source),
        "synthesis/lod": _check_scalar("synthesis/lod", source),
    }
    return table, ignored


def read(path: str | os.PathLike, which: str | None = None) -> ConvertedCheckpoint:
    """Read an NVIDIA TensorFlow StyleGAN2 pickle into jaxedit's layout.

    Args:
      path: the ``.pkl`` (``pickle.dump((G, D, Gs))`` of ``dnnlib.tflib.network.Network``).
      which: ``"Gs"`` (default; ``"G_ema"`` is accepted as an alias) or ``"G"``.

    Raises:
      UnsafePickleError: the pickle names a global outside the allowlist (nothing ran).
      UnsupportedFormatError: not a TF StyleGAN2 generator pickle, or an unsupported config.
      KeyMismatchError / ShapeMismatchError: variables missing, unexpected, or of a shape the
        static kwargs / the architecture do not allow.
      CorruptCheckpointError: truncated file, malformed network records, non-finite values.
    """
    source = os.fspath(path)
    obj = _pickle.load_pickle(source)
    net, which = select_network(obj, source, which)
    tensors, states = collect_variables(net, source)
    if "synthesis/" not in states or "mapping/" not in states:
        raise UnsupportedFormatError(
            f"{source}: network {which!r} has components {sorted(map(str, states[''].get('components', {})))}"
            ", not a StyleGAN2 generator (mapping + synthesis)"
        )
    cfg = infer_config(tensors, states, source)
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
