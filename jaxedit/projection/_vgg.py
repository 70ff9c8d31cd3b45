"""VGG16 ``features`` up to relu5_3 as a pure function of its parameters (the LPIPS trunk).

Layout: NHWC images, HWIO kernels (as ``converters.lpips`` reads them). The five taps are the
outputs of relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3; each block after the first starts with
torch's ``MaxPool2d(2, 2)`` (floor on odd sizes: ``VALID`` windows).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from converters.lpips import BLOCKS, CONV_CHANNELS

from .._ops import Precision, conv2d

#: Smallest input side: relu5_3 sits after four 2x poolings.
MIN_SIZE = 16


def max_pool2(x: jax.Array) -> jax.Array:
    """torch ``MaxPool2d(2, 2)`` on ``[N, H, W, C]`` (odd sizes drop the last row / column)."""
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def vgg16_taps(
    convs: list[dict[str, jax.Array]], x: jax.Array, precision: Precision = "highest"
) -> list[jax.Array]:
    """The five LPIPS taps of VGG16 ``features``.

    Args:
      convs: 13 ``{"w": [3, 3, I, O], "b": [O]}`` (conv1_1 .. conv5_3).
      x: ``[N, H, W, 3]`` already normalized as the trunk expects.
      precision: conv precision.

    Returns:
      ``[relu1_2, relu2_2, relu3_3, relu4_3, relu5_3]``, each ``[N, h, w, C]``.
    """
    if len(convs) != len(CONV_CHANNELS):
        raise ValueError(f"VGG16 needs {len(CONV_CHANNELS)} convolutions, got {len(convs)}")
    taps = []
    j = 0
    for block, n in enumerate(BLOCKS):
        if block:
            x = max_pool2(x)
        for _ in range(n):
            x = jax.nn.relu(conv2d(x, convs[j]["w"], 1, precision) + convs[j]["b"])
            j += 1
        taps.append(x)
    return taps
