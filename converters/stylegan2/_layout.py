"""jaxedit's side of every StyleGAN2 reader: its parameter key names and layer counting.

The four readers map their own names onto one layout (``jaxedit.models.stylegan2``):

- ``mapping_net/fc{i}/{weight,bias}``, ``mapping_net/embed/{weight,bias}`` (conditional
  models), ``mapping_net/w_avg``;
- per synthesis block ``b{r}`` (``r`` = 4, 8, ..., ``img_resolution``): ``const`` (``b4``
  only), the modulated convs ``conv0`` (not in ``b4``) and ``conv1``, each with ``weight``,
  ``bias``, ``affine/{weight,bias}`` and (with noise) ``noise_strength``, ``noise_const``;
  ``torgb`` (same fields but noise; in every block for ``skip``, else in the last one) and
  ``skip/weight`` (``resnet``, not in ``b4``).

Each reader still builds its table in its own order (the order of ``params`` is kept), from
these names and counts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

W_AVG = "mapping_net/w_avg"
EMBED = "mapping_net/embed"
CONST = "synthesis_net/b4/const"


def fc(i: int) -> str:
    """The jaxedit prefix of mapping layer ``i`` (``mapping_net/fc{i}``)."""
    return f"mapping_net/fc{i}"


def block(r: int) -> str:
    """The jaxedit prefix of the synthesis block at resolution ``r`` (``synthesis_net/b{r}``)."""
    return f"synthesis_net/b{r}"


def block_resolutions(img_resolution: int) -> list[int]:
    """The synthesis blocks' resolutions: ``[4, 8, ..., img_resolution]`` (a power of two)."""
    return [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]


def num_ws(img_resolution: int) -> int:
    """How many ``w`` vectors the synthesis network takes: two per block, one for ``b4``'s conv
    and one for the last ``torgb``: ``2 * log2(img_resolution) - 2``."""
    return 2 * int(math.log2(img_resolution)) - 2


def block_convs(r: int) -> list[str]:
    """The modulated convs of block ``r``: ``["conv1"]`` at 4x4, else ``["conv0", "conv1"]``."""
    return ["conv1"] if r == 4 else ["conv0", "conv1"]


def has_torgb(cfg: dict, r: int) -> bool:
    """Whether block ``r`` has a ``torgb`` layer (every block for ``skip``, else the last)."""
    return r == cfg["img_resolution"] or cfg["architecture"] == "skip"


def has_skip(cfg: dict, r: int) -> bool:
    """Whether block ``r`` has a residual ``skip`` conv (``resnet``, not at 4x4)."""
    return cfg["architecture"] == "resnet" and r > 4


def architecture(torgb_everywhere: bool, any_skip: bool) -> str:
    """The architecture the layers present show: ``resnet`` if any block has a residual conv,
    ``skip`` if every block has a ``torgb``, else ``orig``."""
    if any_skip:
        return "resnet"
    if torgb_everywhere:
        return "skip"
    return "orig"


def config(
    *,
    z_dim: int,
    c_dim: int,
    w_dim: int,
    img_resolution: int,
    img_channels: int,
    channels: dict[int, int],
    mapping_layers: int,
    mapping_lr_multiplier: float,
    embed_features: int,
    layer_features: int,
    architecture: str,
    conv_clamp: float | None,
    resample_kernel: list[float],
    use_noise: bool,
    has_w_avg: bool,
    num_fp16_res: int,
) -> dict[str, Any]:
    """The StyleGAN2 config record every reader returns, in one key order.

    Args:
      channels: ``{resolution: channels}`` of the synthesis blocks (stored with string keys).
      Others: the fields of the same name (see `ConvertedCheckpoint.config`).

    Returns:
      The JSON-serializable config dict.
    """
    return {
        "z_dim": z_dim,
        "c_dim": c_dim,
        "w_dim": w_dim,
        "img_resolution": img_resolution,
        "img_channels": img_channels,
        "channels": {str(r): c for r, c in channels.items()},
        "mapping_layers": mapping_layers,
        "mapping_lr_multiplier": mapping_lr_multiplier,
        "embed_features": embed_features,
        "layer_features": layer_features,
        "architecture": architecture,
        "conv_clamp": conv_clamp,
        "resample_kernel": resample_kernel,
        "use_noise": use_noise,
        "has_w_avg": has_w_avg,
        "num_fp16_res": num_fp16_res,
    }


# Transforms shared by several readers. Those that take a shape pass an array of an unexpected
# shape through unchanged, so that the strict shape check of
# ``jaxedit.checkpoint.generator_from_arrays`` reports it with both key names.
def same(a: np.ndarray) -> np.ndarray:
    return a


def const_nchw(a: np.ndarray) -> np.ndarray:
    """``[1, C, 4, 4]`` -> ``[4, 4, C]``."""
    return a[0].transpose(1, 2, 0) if a.ndim == 4 and a.shape[0] == 1 else a


def noise_11hw(a: np.ndarray) -> np.ndarray:
    """``[1, 1, H, W]`` -> ``[H, W]``."""
    return a[0, 0] if a.ndim == 4 and a.shape[:2] == (1, 1) else a


def scalar(a: np.ndarray) -> np.ndarray:
    """A one-element array -> a 0-d array."""
    return a.reshape(()) if a.size == 1 else a
