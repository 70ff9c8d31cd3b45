"""Hammer / ReSeFa StyleGAN2 checkpoints (``torch.save`` of ``{'models': ..., 'model_kwargs_init': ...}``).

The format of bytedance/Hammer (``converters/base_converter.py:save_target``) that
zhujiapeng/resefa reads (``models/stylegan2_generator.py`` ``StyleGAN2Generator``)::

    {'models': {'generator_smooth': state_dict, 'generator': state_dict, 'discriminator': ...},
     'model_kwargs_init': {'generator_smooth': kwargs, ...}}

Network selection follows ReSeFa's rule: ``generator_smooth`` (the moving average) if present,
else ``generator``; ``which=`` picks either explicitly. The file is read with the restricted
torch-free reader; tensors are materialized honouring their stored size, **stride and storage
offset** (Hammer's converter saves ``torch.from_numpy(tf_array).permute(...)`` views, so most
weights are non-contiguous: ignoring strides would silently transpose them).

Key mapping into jaxedit's layout (weights raw, gains applied at run time, as in Hammer):

* ``w_avg`` [w_dim] -> ``mapping_net/w_avg`` (the truncation centre);
* ``mapping.dense{i}.weight`` [out, in] -> ``mapping_net/fc{i}/weight`` (transposed);
  ``mapping.embedding.*`` -> ``mapping_net/embed/*`` (class conditioning);
* ``synthesis.early_layer.const`` [1, C, 4, 4] -> ``b4/const`` [4, 4, C];
* ``synthesis.layer0`` -> ``b4.conv1``; for block ``b >= 1`` (``R = 4 * 2^b``)
  ``layer{2b-1}`` -> ``bR.conv0`` (the up-conv, already flipped as ``legacy.py`` does) and
  ``layer{2b}`` -> ``bR.conv1``; ``output{b}`` -> ``bR.torgb``; ``residual{b}`` -> ``bR.skip``;
* ``style.weight`` / ``style.bias`` -> ``affine`` (the stored bias **already includes the +1**);
* ``noise`` [1, 1, R, R] -> ``noise_const`` [R, R]; ``noise_strength`` as is;
* ``filter`` buffers are checked to be the normalized FIR of ``filter_kernel``, not stored.

z is pixel-normalized before the mapping (``normalize_z=True``, eps 1e-8), as jaxedit's mapping
does. The configuration comes from ``model_kwargs_init`` (Hammer's constructor kwargs) and the
tensor shapes; a disagreement is a `ShapeMismatchError`, an option jaxedit cannot
reproduce (``repeat_w=False``, ``final_tanh``, ``init_res != 4``, ``lr_mul != 1``...) an
`UnsupportedFormatError` naming it.

Truncation (Hammer / ReSeFa ``forward(..., trunc_psi, trunc_layers)``)::

    wp[:, :L] = w_avg + psi * (wp[:, :L] - w_avg)      only if psi < 1 and L > 0

(``trunc_psi=None`` means 1, ``trunc_layers=None`` means 0: passing ``trunc_psi`` alone does
nothing). jaxedit's ``gen.mapping(z, c, truncation_psi, truncation_cutoff)`` truncates slots
``< truncation_cutoff`` (None = all) whenever ``psi != 1``, so ReSeFa's ``(trunc_psi,
trunc_layers)`` is ``gen.mapping(z, None, *truncation_args(trunc_psi, trunc_layers))``, i.e.
``truncation_psi=trunc_psi, truncation_cutoff=trunc_layers`` when ``psi < 1`` and ``L > 0``,
and no truncation (``truncation_psi=1``) otherwise. ReSeFa's ``synthesis.py`` /
``manipulate.py`` defaults ``--trunc_psi 0.7 --trunc_layers 8`` are ``truncation_psi=0.7,
truncation_cutoff=8`` (jaxedit's ``edit`` / ``evaluate`` defaults).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np

from .. import _pickle
from .._common import ConvertedCheckpoint, apply_table, check_fir, sha256_file
from ..errors import (
    CorruptCheckpointError,
    KeyMismatchError,
    ShapeMismatchError,
    UnsupportedFormatError,
)
from . import _layout as L

FORMAT = "hammer-pth"
GENERATORS = ("generator_smooth", "generator")

# Hammer StyleGAN2Generator constructor kwargs -> the value jaxedit reproduces (None: read from
# the shapes / carried into the config).
_REQUIRED_VALUES: dict[str, Any] = {
    "repeat_w": True,
    "normalize_z": True,
    "mapping_use_wscale": True,
    "mapping_wscale_gain": 1.0,
    "init_res": 4,
    "final_tanh": False,
    "const_input": True,
    "demodulate": True,
    "use_wscale": True,
    "wscale_gain": 1.0,
    "lr_mul": 1.0,
    "eps": 1e-8,
}
_EMBEDDING_VALUES: dict[str, Any] = {
    "embedding_use_wscale": True,
    "embedding_wscale_gian": 1.0,
    "embedding_wscale_gain": 1.0,
    "embedding_lr_mul": 1.0,
    "normalize_embedding": True,
    "normalize_embedding_latent": False,
}
_SHAPE_KWARGS = (
    "resolution",
    "z_dim",
    "w_dim",
    "mapping_layers",
    "mapping_fmaps",
    "label_dim",
    "embedding_dim",
    "embedding_bias",
    "image_channels",
    "fmaps_base",
    "fmaps_max",
)
_OTHER_KWARGS = (
    "model_type",
    "mapping_lr_mul",
    "architecture",
    "noise_type",
    "filter_kernel",
    "conv_clamp",
)
KNOWN_KWARGS = frozenset(
    set(_REQUIRED_VALUES) | set(_EMBEDDING_VALUES) | set(_SHAPE_KWARGS) | set(_OTHER_KWARGS)
)
_ARCHITECTURES = {"skip": "skip", "resnet": "resnet", "origin": "orig"}


def truncation_args(
    trunc_psi: float | None = None, trunc_layers: int | None = None
) -> tuple[float, int | None]:
    """Hammer/ReSeFa ``(trunc_psi, trunc_layers)`` -> jaxedit ``(truncation_psi, truncation_cutoff)``.

    Hammer truncates ``wp[:, :trunc_layers]`` toward ``w_avg`` only if ``trunc_psi < 1`` and
    ``trunc_layers > 0`` (None means 1 and 0); otherwise nothing happens. jaxedit truncates
    slots ``< truncation_cutoff`` whenever ``truncation_psi != 1``. Use as
    ``gen.mapping(z, None, *truncation_args(0.7, 8))``.
    """
    psi = 1.0 if trunc_psi is None else float(trunc_psi)
    layers = 0 if trunc_layers is None else int(trunc_layers)
    if not math.isfinite(psi):
        raise ValueError(f"trunc_psi must be finite, got {trunc_psi!r}")
    if psi < 1.0 and layers > 0:
        return psi, layers
    return 1.0, None


def sniff(obj: Any) -> bool:
    """A loaded torch object that looks like a Hammer checkpoint (``models`` of state dicts)."""
    models = obj.get("models") if isinstance(obj, dict) else None
    return isinstance(models, dict) and any(
        isinstance(models.get(k), dict) for k in GENERATORS + ("discriminator",)
    )


def select_generator(obj: dict, source: str, which: str | None) -> tuple[dict, dict | None, str]:
    """ReSeFa's rule: ``generator_smooth`` if present, else ``generator`` (or ``which``)."""
    models = obj["models"]
    nets = sorted(str(k) for k, v in models.items() if isinstance(v, dict))
    if which is None:
        which = next((k for k in GENERATORS if isinstance(models.get(k), dict)), None)
        if which is None:
            raise UnsupportedFormatError(
                f"{source}: a Hammer checkpoint without a generator; its models are {nets}"
            )
    if which == "discriminator":
        raise UnsupportedFormatError(
            f"{source}: 'discriminator' is not a generator; choose one of "
            f"{[k for k in GENERATORS if k in models]}"
        )
    sd = models.get(which)
    if not isinstance(sd, dict):
        raise UnsupportedFormatError(f"{source}: no network {which!r}; the checkpoint holds {nets}")
    kwargs_all = obj.get("model_kwargs_init")
    kw = kwargs_all.get(which) if isinstance(kwargs_all, dict) else None
    if kw is not None and not isinstance(kw, dict):
        raise CorruptCheckpointError(
            f"{source}: model_kwargs_init[{which!r}] is a {type(kw).__name__}, not a dict"
        )
    return sd, kw, which


def _check_tensors(sd: dict, source: str, which: str) -> None:
    for k, v in sd.items():
        if not isinstance(k, str):
            raise CorruptCheckpointError(f"{source}: {which} has a non-string key {k!r}")
        if not isinstance(v, np.ndarray):
            raise CorruptCheckpointError(
                f"{source}: {which}.{k} is a {type(v).__name__}, not a tensor"
            )
        if v.dtype.kind != "f":
            raise CorruptCheckpointError(
                f"{source}: {which}.{k} has dtype {v.dtype}, expected floating point"
            )
        if not np.all(np.isfinite(v)):
            raise CorruptCheckpointError(f"{source}: {which}.{k} has non-finite values")


def _kw_equal(a, b) -> bool:
    if isinstance(b, bool) or isinstance(a, bool):
        return bool(a) == bool(b) and isinstance(a, (bool, int, np.bool_))
    if isinstance(b, float):
        try:
            return math.isclose(float(a), b, rel_tol=1e-9, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return a == b


def _shape_check(source: str, key: str, kw: dict, actual: int, what: str) -> None:
    if key in kw and kw[key] is not None:
        try:
            ok = int(kw[key]) == int(actual)
        except (TypeError, ValueError):
            raise CorruptCheckpointError(
                f"{source}: model_kwargs_init {key}={kw[key]!r} is not an integer"
            ) from None
        if not ok:
            raise ShapeMismatchError(
                f"{source}: model_kwargs_init {key}={kw[key]!r} disagrees with the state dict: "
                f"{what} gives {actual}"
            )


def infer_config(sd: dict, kw: dict, source: str, which: str) -> dict[str, Any]:
    """jaxedit StyleGAN2 config from the state dict, validated against ``model_kwargs_init``."""
    genforce = [
        k
        for k in sd
        if k.startswith("truncation.")
        or re.match(r"mapping\.dense\d+\.fc\.", k)
        or k == "synthesis.lod"
    ]
    if genforce:
        raise UnsupportedFormatError(
            f"{source}: {which} uses the older genforce layout (keys like {genforce[0]!r}); only "
            "Hammer (bytedance/Hammer, zhujiapeng/resefa) StyleGAN2 checkpoints are supported"
        )
    model_type = kw.get("model_type", "StyleGAN2Generator")
    if model_type != "StyleGAN2Generator":
        raise UnsupportedFormatError(
            f"{source}: {which} is a Hammer {model_type!r}; only 'StyleGAN2Generator' is supported"
        )
    unknown = sorted(str(k) for k in kw if k not in KNOWN_KWARGS)
    if unknown:
        raise UnsupportedFormatError(
            f"{source}: unknown Hammer generator kwarg(s) {unknown} in model_kwargs_init[{which!r}]; "
            "jaxedit cannot tell what they change"
        )
    for key, want in _REQUIRED_VALUES.items():
        if key in kw and not _kw_equal(kw[key], want):
            raise UnsupportedFormatError(
                f"{source}: model_kwargs_init {key}={kw[key]!r} is not supported (jaxedit "
                f"reproduces {key}={want!r})"
            )
    arch_kw = str(kw.get("architecture", "skip")).lower()
    if arch_kw not in _ARCHITECTURES:
        raise UnsupportedFormatError(
            f"{source}: architecture {kw['architecture']!r} is not supported"
        )
    noise_type = str(kw.get("noise_type", "spatial")).lower()
    if noise_type not in ("spatial", "none"):
        raise UnsupportedFormatError(
            f"{source}: noise_type={kw['noise_type']!r} is not supported ('spatial' or 'none')"
        )

    def need(key: str) -> np.ndarray:
        if key not in sd:
            raise KeyMismatchError(f"{source}: {which}.{key} is missing")
        return sd[key]

    # --- mapping
    n_map = 0
    while f"mapping.dense{n_map}.weight" in sd:
        n_map += 1
    if n_map == 0:
        raise KeyMismatchError(f"{source}: {which}.mapping.dense0.weight is missing")
    _shape_check(source, "mapping_layers", kw, n_map, "the number of mapping.dense* layers")
    dense = [need(f"mapping.dense{i}.weight") for i in range(n_map)]
    for i, w in enumerate(dense):
        if w.ndim != 2:
            raise ShapeMismatchError(
                f"{source}: {which}.mapping.dense{i}.weight has shape {w.shape}, expected [out, in]"
            )
    w_dim = int(dense[-1].shape[0])
    _shape_check(
        source, "w_dim", kw, w_dim, f"mapping.dense{n_map - 1}.weight {list(dense[-1].shape)}"
    )
    w_avg = need("w_avg")
    if w_avg.shape != (w_dim,):
        raise ShapeMismatchError(
            f"{source}: {which}.w_avg has shape {w_avg.shape}, expected [{w_dim}] (repeat_w=True)"
        )
    label_dim = int(kw.get("label_dim") or 0)
    embed = 0
    if "mapping.embedding.weight" in sd:
        e = need("mapping.embedding.weight")
        if e.ndim != 2:
            raise ShapeMismatchError(
                f"{source}: {which}.mapping.embedding.weight has shape {e.shape}"
            )
        embed, c_dim = int(e.shape[0]), int(e.shape[1])
        _shape_check(source, "label_dim", kw, c_dim, "mapping.embedding.weight")
        _shape_check(source, "embedding_dim", kw, embed, "mapping.embedding.weight")
        for key, want in _EMBEDDING_VALUES.items():
            if key in kw and not _kw_equal(kw[key], want):
                raise UnsupportedFormatError(
                    f"{source}: model_kwargs_init {key}={kw[key]!r} is not supported for a "
                    f"conditional generator (jaxedit reproduces {key}={want!r})"
                )
    elif label_dim:
        raise KeyMismatchError(
            f"{source}: label_dim={label_dim} but {which}.mapping.embedding.weight is missing"
        )
    else:
        c_dim = 0
    z_dim = int(dense[0].shape[1]) - embed
    _shape_check(source, "z_dim", kw, z_dim, f"mapping.dense0.weight {list(dense[0].shape)}")
    layer_features = int(dense[0].shape[0]) if n_map > 1 else w_dim
    if n_map > 1:
        _shape_check(source, "mapping_fmaps", kw, layer_features, "mapping.dense0.weight")

    # --- synthesis
    const = need("synthesis.early_layer.const")
    if const.ndim != 4 or const.shape[0] != 1 or const.shape[2:] != (4, 4):
        raise ShapeMismatchError(
            f"{source}: {which}.synthesis.early_layer.const has shape {const.shape}, expected [1, C, 4, 4]"
        )
    n_layers = 0
    while f"synthesis.layer{n_layers}.weight" in sd:
        n_layers += 1
    if n_layers % 2 == 0:
        raise KeyMismatchError(
            f"{source}: {which} has synthesis.layer0..layer{n_layers - 1}: an odd number of conv "
            "layers (one 4x4 conv plus two per block) is expected"
        )
    n_blocks = (n_layers + 1) // 2
    res = 4 * 2 ** (n_blocks - 1)
    _shape_check(source, "resolution", kw, res, f"{n_layers} synthesis.layer* convs")
    channels = {}
    for b in range(n_blocks):
        key = f"synthesis.layer{2 * b}.weight"
        w = need(key)
        if w.ndim != 4:
            raise ShapeMismatchError(
                f"{source}: {which}.{key} has shape {w.shape}, expected [out, in, 3, 3]"
            )
        channels[4 * 2**b] = int(w.shape[0])
    if any(k in kw for k in ("fmaps_base", "fmaps_max")):
        base, fmax = int(kw.get("fmaps_base", 32 << 10)), int(kw.get("fmaps_max", 512))
        for r, c in channels.items():
            if min(base // r, fmax) != c:
                raise ShapeMismatchError(
                    f"{source}: model_kwargs_init fmaps_base={base}, fmaps_max={fmax} give "
                    f"{min(base // r, fmax)} channels at {r}x{r}, the state dict has {c}"
                )
    outputs = [b for b in range(n_blocks) if f"synthesis.output{b}.weight" in sd]
    residuals = [b for b in range(1, n_blocks) if f"synthesis.residual{b}.weight" in sd]
    arch = L.architecture(
        torgb_everywhere=outputs == list(range(n_blocks)), any_skip=bool(residuals)
    )
    if _ARCHITECTURES[arch_kw] != arch:
        raise KeyMismatchError(
            f"{source}: model_kwargs_init architecture={kw.get('architecture', 'skip')!r} but the "
            f"state dict (output layers {outputs}, residual layers {residuals}) is that of "
            f"{arch!r}"
        )
    rgb = need(f"synthesis.output{n_blocks - 1}.weight")
    if rgb.ndim != 4:
        raise ShapeMismatchError(
            f"{source}: {which}.synthesis.output{n_blocks - 1}.weight has shape {rgb.shape}"
        )
    img_channels = int(rgb.shape[0])
    _shape_check(
        source, "image_channels", kw, img_channels, f"synthesis.output{n_blocks - 1}.weight"
    )
    use_noise = "synthesis.layer0.noise_strength" in sd
    if (noise_type == "spatial") != use_noise:
        raise KeyMismatchError(
            f"{source}: noise_type={noise_type!r} but noise parameters are "
            f"{'present' if use_noise else 'absent'}"
        )
    kernel = kw.get("filter_kernel", (1, 3, 3, 1))
    try:
        kernel = [float(t) for t in np.asarray(kernel, np.float64).reshape(-1)]
    except (TypeError, ValueError):
        raise UnsupportedFormatError(
            f"{source}: filter_kernel={kernel!r} is not a list of numbers"
        ) from None
    if not kernel or sum(kernel) == 0 or not all(math.isfinite(t) for t in kernel):
        raise UnsupportedFormatError(f"{source}: filter_kernel={kernel!r} is not a usable FIR")
    try:
        lr = float(kw.get("mapping_lr_mul", 0.01))
        clamp = kw.get("conv_clamp")
        clamp = None if clamp is None else float(clamp)
    except (TypeError, ValueError):
        raise CorruptCheckpointError(
            f"{source}: mapping_lr_mul / conv_clamp are not numbers"
        ) from None
    if not (math.isfinite(lr) and lr > 0):
        raise CorruptCheckpointError(f"{source}: mapping_lr_mul={lr} is not a positive number")
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
        resample_kernel=kernel,
        use_noise=use_noise,
        has_w_avg=True,
        num_fp16_res=0,
    )


# Transforms pass an array of an unexpected shape through unchanged, so that the strict shape
# check of ``jaxedit.checkpoint.generator_from_arrays`` reports it with both key names.
def _t(a):
    return a.T if a.ndim == 2 else a


def _oihw_to_hwio(a):
    return a.transpose(2, 3, 1, 0) if a.ndim == 4 else a


def key_table(cfg: dict, source: str, sd: dict):
    """``{jaxedit key: (Hammer key, transform)}`` and the FIR buffers to check."""
    table: dict = {}
    ignored: dict = {}
    kernel = cfg["resample_kernel"]
    for i in range(cfg["mapping_layers"]):
        table[f"{L.fc(i)}/weight"] = (f"mapping.dense{i}.weight", _t)
        table[f"{L.fc(i)}/bias"] = (f"mapping.dense{i}.bias", L.same)
    if cfg["c_dim"] > 0:
        table[f"{L.EMBED}/weight"] = ("mapping.embedding.weight", _t)
        if "mapping.embedding.bias" in sd:
            table[f"{L.EMBED}/bias"] = ("mapping.embedding.bias", L.same)
    table[L.W_AVG] = ("w_avg", L.same)
    table[L.CONST] = ("synthesis.early_layer.const", L.const_nchw)

    def styled(dst: str, src: str):
        table[f"{dst}/weight"] = (f"{src}.weight", _oihw_to_hwio)
        table[f"{dst}/bias"] = (f"{src}.bias", L.same)
        table[f"{dst}/affine/weight"] = (f"{src}.style.weight", _t)
        table[f"{dst}/affine/bias"] = (f"{src}.style.bias", L.same)

    for b, r in enumerate(L.block_resolutions(cfg["img_resolution"])):
        tb = L.block(r)
        convs = [("conv1", 0)] if b == 0 else [("conv0", 2 * b - 1), ("conv1", 2 * b)]
        for ln, idx in convs:
            src = f"synthesis.layer{idx}"
            styled(f"{tb}/{ln}", src)
            if cfg["use_noise"]:
                table[f"{tb}/{ln}/noise_strength"] = (f"{src}.noise_strength", L.scalar)
                table[f"{tb}/{ln}/noise_const"] = (f"{src}.noise", L.noise_11hw)
            if ln == "conv0":
                ignored[f"{src}.filter"] = check_fir(kernel, source, f"{src}.filter")
        if L.has_torgb(cfg, r):
            styled(f"{tb}/torgb", f"synthesis.output{b}")
        if L.has_skip(cfg, r):
            table[f"{tb}/skip/weight"] = (f"synthesis.residual{b}.weight", _oihw_to_hwio)
            ignored[f"synthesis.residual{b}.filter"] = check_fir(
                kernel, source, f"synthesis.residual{b}.filter"
            )
    if cfg["architecture"] == "skip":
        ignored["synthesis.filter"] = check_fir(kernel, source, "synthesis.filter")
    return table, ignored


def read(path: str | os.PathLike, which: str | None = None, obj: Any = None) -> ConvertedCheckpoint:
    """Read a Hammer ``.pth`` into jaxedit's layout.

    Args:
      path: the ``torch.save`` file.
      which: ``"generator_smooth"`` / ``"generator"``; default ReSeFa's rule (smooth if present).
      obj: the already loaded file (``converters.read_checkpoint`` passes it).

    Raises:
      UnsafePickleError: the pickle names a global outside the allowlist (nothing ran).
      UnsupportedFormatError: not a Hammer StyleGAN2 generator, or options jaxedit cannot
        reproduce (named).
      KeyMismatchError / ShapeMismatchError: missing / unexpected keys, shapes that disagree
        with ``model_kwargs_init`` or the architecture.
      CorruptCheckpointError: truncated file, storages that overrun, non-finite values.
    """
    source = os.fspath(path)
    top = _pickle.load_torch_file(source) if obj is None else obj
    if not sniff(top):
        raise UnsupportedFormatError(f"{source}: not a Hammer checkpoint (no 'models' state dicts)")
    sd, kw, which = select_generator(top, source, which)
    _check_tensors(sd, source, which)
    cfg = infer_config(sd, kw or {}, source, which)
    table, ignored = key_table(cfg, source, sd)
    params, sources = apply_table(f"{source} [{which}]", sd, table, ignored)
    if cfg["c_dim"] > 0 and f"{L.EMBED}/bias" not in params:  # embedding_bias=False
        params[f"{L.EMBED}/bias"] = np.zeros((cfg["embed_features"],), np.float32)
        sources[f"{L.EMBED}/bias"] = "(none: embedding_bias=False)"
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
