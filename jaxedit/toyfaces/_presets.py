"""Region presets of the toy faces: per-part frequency maps of a fixed sample of the data set.

``part_frequency()`` renders the part masks of ``PRESET_SAMPLES`` latents
(``sample_z(PRESET_SEED, PRESET_SAMPLES)``) and returns, per part and group, the fraction of
faces whose part covers each pixel. The shipped ``part_frequency.npz`` holds these counts
(written by ``python -m jaxedit.toyfaces presets``); `jaxedit.regions` reads it with NumPy
only and thresholds it at `jaxedit.regions.TOYFACES_THRESHOLD`.
"""

from __future__ import annotations

import os

import numpy as np

from ._latent import factors_from_z, sample_z
from ._render import GROUPS, PARTS, part_masks

PRESET_SEED = 7
PRESET_SAMPLES = 4096
PRESET_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "part_frequency.npz")


def part_counts(
    n: int = PRESET_SAMPLES, seed: int = PRESET_SEED, chunk: int = 512
) -> dict[str, np.ndarray]:
    """``{part or group: [64, 64] int}``: in how many of the ``n`` faces the part covers a pixel."""
    counts = None
    z_all = np.asarray(sample_z(seed, n, np.float32))
    for i in range(0, n, chunk):
        m = part_masks(factors_from_z(z_all[i : i + chunk]))
        for g, members in GROUPS.items():
            m[g] = np.logical_or.reduce([m[p] for p in members])
        c = {k: v.sum(0).astype(np.int64) for k, v in m.items()}
        counts = c if counts is None else {k: counts[k] + c[k] for k in counts}
    if counts is None:
        raise ValueError(f"n must be >= 1, got {n}")
    return counts


def write_presets(path: str = PRESET_FILE, n: int = PRESET_SAMPLES, seed: int = PRESET_SEED) -> str:
    """Write the counts of `part_counts` (uint16, with ``n`` and ``seed``) to ``path``."""
    from .._io import save_npz

    counts = part_counts(n, seed)
    names = list(PARTS) + list(GROUPS)
    return save_npz(
        path,
        names=np.asarray(names),
        counts=np.stack([counts[k] for k in names]).astype(np.uint16),
        n=np.int64(n),
        seed=np.int64(seed),
    )
