"""SeFa (Shen & Zhou, CVPR 2021): closed-form directions from the generator's first linear maps.

For weight blocks ``A_l`` (``latent_dim x units``) concatenated along columns, the directions are
the top eigenvectors of ``A Aᵀ`` (they maximize ``Σ ‖A_lᵀ n‖²`` over unit n). ``normalize="column"``
gives every column (style channel) unit length first, as ``genforce/sefa``'s
``factorize_weight``; ``None`` keeps raw weights (rosinality's ``closed_form_factorization``).
The reference's general ``eig`` is replaced by ``eigh``, sorted descending with canonical signs.
``genforce`` does not sort: its ``boundaries[i]`` is the i-th eigenvector in LAPACK ``geev``'s
order, which is usually but not always descending - compare by eigenvalue, not by index.

Precision: the Gram and ``eigh`` run in float64 under ``jax_enable_x64`` (else float32);
``dtype=np.float32`` reproduces genforce's float32 computation explicitly.

StyleGAN2 blocks: the modulation affine of the conv layer at each W+ slot ``0 .. num_ws - 2`` and
the *final* ToRGB affine for slot ``num_ws - 1`` (the reference never uses intermediate ToRGBs),
each the raw stored ``[w_dim, C_in]`` weight (runtime gains are per-layer scalars that column
normalization cancels).

StyleGAN3 blocks: the affine of layer ``slot`` (slot 0 the input layer, the last the ToRGB),
``[w_dim, C_in]`` raw. The presets (``"all"``, ``"coarse"``...) leave out the input layer's
``[w_dim, 4]`` affine: it maps w to a rotation angle and a translation of the Fourier features,
not to channel scales, and its 4 columns would count as much as 4 channels of a conv after
column normalization; name slot 0 explicitly to include it (genforce's SeFa has no StyleGAN3;
ReSeFa edits StyleGAN3 in W on slots 4-7, which no preset band misses).

BigGAN blocks: the z rows of the (spectrally normalized) ``gen_z`` kernel (``"gen_z"``), optionally
stacked with the z rows of every conditional-BN scale / offset kernel (``"all"``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _ops
from .._typing import SefaDirections, SefaEigenvalues, SefaWeight
from ..linalg import canonical_rows


@dataclasses.dataclass(frozen=True)
class SefaResult:
    """``directions [k, D]`` (unit rows, canonical sign), ``eigenvalues [k]`` (of ``A Aᵀ``,
    descending), ``slots`` (StyleGAN2 W+ slots the directions belong to, for editing) or the
    BigGAN layer names used."""

    directions: Any
    eigenvalues: Any
    slots: tuple


def stylegan2_presets(num_ws: int) -> dict[str, tuple[int, ...]]:
    """Layer bands relative to ``num_ws``: coarse = slots 0-1, middle = 2-5, fine = 6..num_ws-1.

    The SeFa notebook's ``'0-1', '2-5', '6-13'`` are these bands for a 256 px model (14 slots).
    """
    return {
        "all": tuple(range(num_ws)),
        "coarse": (0, 1),
        "middle": tuple(range(2, min(6, num_ws))),
        "fine": tuple(range(6, num_ws)),
    }


def _style_blocks(gen, layers) -> tuple[list[np.ndarray], tuple[int, ...]]:
    presets = style_presets(gen)
    if isinstance(layers, str):
        if layers not in presets:
            raise ValueError(
                f"layers must be one of {sorted(presets)} or a list of W+ slots, got {layers!r}"
            )
        slots = presets[layers]
    else:
        slots = tuple(sorted({int(s) for s in layers}))
    if not slots or min(slots) < 0 or max(slots) >= gen.num_ws:
        raise ValueError(f"W+ slots must be in [0, {gen.num_ws}), got {list(slots)}")
    by_slot = gen.slot_layers
    blocks = [gen.style_weight(by_slot[s]) for s in slots]
    if any(b.shape[0] != gen.w_dim for b in blocks):
        raise ValueError("every style affine must read w (w_dim rows)")
    return blocks, slots


def style_presets(gen) -> dict[str, tuple[int, ...]]:
    """`stylegan2_presets` of ``gen.num_ws``, without the slots whose style is not a channel
    scale (StyleGAN3's input layer, slot 0: its 4-d affine is a rotation / translation of the
    Fourier features; it is still selectable by slot number)."""
    skip = {i for i, n in enumerate(gen.slot_layers) if n not in gen.modulated_layers}
    presets = stylegan2_presets(gen.num_ws)
    return {k: tuple(s for s in v if s not in skip) for k, v in presets.items()}


def _biggan_blocks(gen, layers) -> tuple[list[np.ndarray], tuple[str, ...]]:
    if layers not in ("gen_z", "all"):
        raise ValueError("BigGAN layers must be 'gen_z' or 'all' (gen_z + conditional BN linears)")
    zd = gen.z_dim
    blocks, names = [np.asarray(gen.gen_z.kernel[...])[:zd]], ["gen_z"]
    if layers == "all":
        for i in range(len(gen.config.layers)):
            block = getattr(gen, f"block{i}")
            for k in range(4):
                bn = getattr(block, f"bn_{k}")
                for part in ("scale", "offset"):
                    blocks.append(np.asarray(getattr(bn, part).kernel[...])[:zd])
                    names.append(f"block{i}.bn_{k}.{part}")
    return blocks, tuple(names)


def weight_blocks(
    gen, layers: str | Sequence[int] = "all"
) -> tuple[list[np.ndarray], tuple[int, ...]]:
    """The style-affine weight blocks SeFa factorizes, for a StyleGAN2 or StyleGAN3.

    Args:
      gen: a StyleGAN2 or StyleGAN3 generator.
      layers: a preset name of `style_presets` (``"all"``, ``"coarse"``, ...) or W+ slots.

    Returns:
      (blocks, slots): the affine weights ``[w_dim, C_in]`` of each selected layer (their
      concatenation along axis 1 is SeFa's ``[D, units]`` matrix) and the W+ slots they read.
    """
    return _style_blocks(gen, layers)


@functools.partial(jax.jit, static_argnames=("k", "normalize"))
def factorize(
    weight: SefaWeight, *, k: int, normalize: str | None = "column"
) -> tuple[SefaEigenvalues, SefaDirections]:
    """weight [D, units] -> (eigenvalues [k], directions [k, D]) of ``W Wᵀ`` (HIGHEST precision)."""
    w = weight
    if normalize == "column":
        w = w / jnp.linalg.norm(w, axis=0, keepdims=True)
    elif normalize is not None:
        raise ValueError(f"normalize must be 'column' or None, got {normalize!r}")
    gram = jnp.matmul(w, w.T, precision=jax.lax.Precision.HIGHEST)
    lam, vec = jnp.linalg.eigh((gram + gram.T) / 2)
    return lam[::-1][:k], canonical_rows(vec[:, ::-1][:, :k].T)


def sefa(
    gen,
    layers: str | Sequence[int] = "all",
    k: int = 5,
    normalize: str | None = "column",
    dtype=None,
) -> SefaResult:
    """SeFa directions of a generator.

    Args:
      gen: StyleGAN2, StyleGAN3 or BigGAN generator.
      layers: StyleGAN2 / StyleGAN3: ``"all"``, ``"coarse"``, ``"middle"``, ``"fine"``
        (`style_presets`: `stylegan2_presets` without StyleGAN3's input layer) or a list of W+
        slots; BigGAN: ``"gen_z"`` or ``"all"`` (gen_z + conditional BN linears).
      k: number of directions.
      normalize: ``"column"`` (reference) or None.
      dtype: compute dtype (default: float64 under x64, else float32); ``np.float32`` is the
        genforce reference's precision.
    Returns:
      `SefaResult` with ``directions [k, w_dim]`` (BigGAN: ``[k, z_dim]``).
    """
    if not gen.has_styles:
        blocks, slots = _biggan_blocks(gen, layers if isinstance(layers, str) else None)
    else:
        blocks, slots = _style_blocks(gen, layers)
    w = np.concatenate(blocks, axis=1)
    if not 1 <= k <= w.shape[0]:
        raise ValueError(f"k must be in [1, {w.shape[0]}], got {k}")
    dt = jnp.dtype(dtype) if dtype is not None else _ops.default_float_dtype()
    lam, dirs = factorize(jnp.asarray(w, dt), k=int(k), normalize=normalize)
    return SefaResult(directions=np.asarray(dirs), eigenvalues=np.asarray(lam), slots=slots)


__all__ = [
    "SefaResult",
    "factorize",
    "sefa",
    "style_presets",
    "stylegan2_presets",
    "weight_blocks",
]
