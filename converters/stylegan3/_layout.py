"""jaxedit's side of the StyleGAN3 readers: parameter key names, the config record, and the
checks of what the readers map (shapes against the geometry, filters against the design).

The layout (``jaxedit.models.stylegan3``):

- ``mapping_net/fc{i}/{weight [in, out], bias}``, ``mapping_net/embed/{weight, bias}``
  (conditional models), ``mapping_net/w_avg``;
- ``synthesis_net/input/{weight [C, C] (in, out), freqs [C, 2], phases [C], transform [3, 3],
  affine/{weight [w_dim, 4], bias [4]}}``;
- per layer ``synthesis_net/L{i}_{size}_{channels}/{weight [k, k, C_in, C_out], bias,
  magnitude_ema [], affine/{weight [w_dim, C_in], bias}}``.

The low-pass filters are not parameters: `check_filter` compares each stored filter with the
design of `converters.stylegan3.design` for the config (bit-exact for the reference's own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import CorruptCheckpointError, ShapeMismatchError, UnsupportedFormatError
from . import design

W_AVG = "mapping_net/w_avg"
EMBED = "mapping_net/embed"
INPUT = "synthesis_net/input"

#: NVIDIA's defaults of every StyleGAN3 architecture field (``training/networks_stylegan3.py``).
DEFAULTS: dict[str, Any] = {
    "img_channels": 3,
    "mapping_layers": 2,
    "mapping_lr_multiplier": 0.01,
    "channel_base": 32768,
    "channel_max": 512,
    "num_layers": 14,
    "num_critical": 2,
    "first_cutoff": 2.0,
    "first_stopband": 2**2.1,
    "last_stopband_rel": 2**0.3,
    "margin_size": 10,
    "output_scale": 0.25,
    "conv_kernel": 3,
    "filter_size": 6,
    "lrelu_upsampling": 2,
    "use_radial_filters": False,
    "conv_clamp": 256.0,
    "num_fp16_res": 4,
}


def fc(i: int) -> str:
    """The jaxedit prefix of mapping layer ``i``."""
    return f"mapping_net/fc{i}"


def layer(name: str) -> str:
    """The jaxedit prefix of synthesis layer ``name`` (``L3_36_512``)."""
    return f"synthesis_net/{name}"


def geometry(cfg: dict[str, Any]) -> dict[str, Any]:
    """`design.layer_geometry` of a config record."""
    keys = (
        "img_resolution img_channels channel_base channel_max num_layers num_critical "
        "first_cutoff first_stopband last_stopband_rel margin_size conv_kernel filter_size "
        "lrelu_upsampling use_radial_filters num_fp16_res"
    ).split()
    return design.layer_geometry(**{k: cfg[k] for k in keys})


def config(**fields: Any) -> dict[str, Any]:
    """The StyleGAN3 config record (the fields of ``jaxedit.StyleGAN3Config``) in one key order."""
    order = (
        "z_dim c_dim w_dim img_resolution img_channels mapping_layers mapping_lr_multiplier "
        "embed_features layer_features channel_base channel_max num_layers num_critical "
        "first_cutoff first_stopband last_stopband_rel margin_size output_scale conv_kernel "
        "filter_size lrelu_upsampling use_radial_filters conv_clamp num_fp16_res has_w_avg"
    ).split()
    missing = [k for k in order if k not in fields]
    extra = sorted(set(fields) - set(order))
    if missing or extra:
        raise TypeError(f"config fields: missing {missing}, unexpected {extra}")
    return {k: fields[k] for k in order}


def expect_shape(source: str, key: str, arr: np.ndarray, shape: tuple[int, ...], why: str) -> None:
    """Raise ShapeMismatchError naming ``key`` if ``arr`` is not of ``shape``."""
    if tuple(arr.shape) != tuple(shape):
        raise ShapeMismatchError(
            f"{source}: {key} has shape {tuple(arr.shape)}, the architecture needs "
            f"{tuple(shape)} ({why})"
        )


def check_filter(source: str, key: str, want: np.ndarray | None) -> Callable[[np.ndarray], None]:
    """A check that the stored filter ``key`` is the config's designed low-pass ``want``."""

    def check(arr: np.ndarray) -> None:
        a = np.asarray(arr, np.float64)
        if want is None:
            raise CorruptCheckpointError(f"{source}: {key} is stored, but the layer has no filter")
        if a.shape != want.shape:
            raise ShapeMismatchError(
                f"{source}: {key} has shape {a.shape}, the config's filter has {want.shape}"
            )
        if not np.isfinite(a).all():
            raise CorruptCheckpointError(f"{source}: {key} holds NaN or infinite values")
        tol = 1e-6 * float(np.abs(want).max()) + 1e-9
        if float(np.abs(a - want).max()) > tol:
            raise UnsupportedFormatError(
                f"{source}: {key} differs from the low-pass filter its config designs (max "
                f"difference {float(np.abs(a - want).max()):.3g}); jaxedit computes the filters "
                "from the config, so a checkpoint with other filters cannot be converted"
            )

    return check


def scalar(a: np.ndarray) -> np.ndarray:
    """A one-element array -> a 0-d array (other shapes pass, for the strict shape check)."""
    return a.reshape(()) if a.size == 1 else a


def same(a: np.ndarray) -> np.ndarray:
    return a


def t(a: np.ndarray) -> np.ndarray:
    """``[out, in]`` -> ``[in, out]``."""
    return a.T if a.ndim == 2 else a


def oihw_to_hwio(a: np.ndarray) -> np.ndarray:
    return a.transpose(2, 3, 1, 0) if a.ndim == 4 else a
