"""Spectra of convolutional layers and the generalized closed form (ICME 2022), done right.

**Singular values** (Sedghi, Gupta & Long, ICLR 2019). A stride-1 2-D convolution with circular
padding on an ``n x n`` input is block-diagonalized by the 2-D DFT: its singular values are those
of the ``C_in x C_out`` blocks ``P(u, v) = FFT2_n(K)[u, v]``, one batched SVD over ``n²``
frequencies. Variants reduce to that form by polyphase decomposition (``s`` = stride / factor).

``input_shape`` is always the layer's **input** grid ``(n, n)``; the output grid follows:

====================================== ============ ======================================
layer                                  output grid  per-frequency blocks
====================================== ============ ======================================
stride 1                               n            ``[n, n, C_in, C_out]``
stride s (s divides n)                 n / s        ``[n/s, n/s, C_in s², C_out]``
transposed, stride s                   s n          ``[n, n, C_out s², C_in]``
``upsample="nearest"`` / ``"zeros"``   s n          ``[n, n, C_in, C_out s²]``
====================================== ============ ======================================

* stride s: input phases stacked on ``C_in`` (space-to-depth of the input);
* transposed conv with stride s (input n, output s·n, kernel ``[k, k, C_in, C_out]`` scattered
  as ``y[s i + a] += x[i] K[a]``): the adjoint of the stride-s conv from C_out to C_in on the
  s·n grid, whose blocks live on the n grid - same singular values;
* ``upsample="nearest"`` then conv, and ``upsample="zeros"`` (zero insertion, i.e. a transposed
  conv) then conv: output phases stacked on ``C_out``;
* StyleGAN2's up-conv (`stylegan2_upconv_kernel`): zero insertion, the flipped kernel, then
  the separable FIR with gain 4, folded into one kernel on the upsampled grid.

Kernels larger than the grid are wrapped (taps summed modulo n), not cropped as
``fft2(s=...)`` would. Everything is correlation (torch / ``lax.conv``) with circular padding;
circular shifts do not change singular values, so padding offsets do not matter.

**The generalized closed form** (Wang, Wang & Zhang, ICME 2022, Algorithm 1 as published):
FFT of each kernel padded to the input size, reshape to ``A (C_out·H·W, C_in)``, eigendecompose
``AᵀA``. A is complex: with the plain transpose the Gram collapses to the corner tap
(``Σ_f P(f)ᵀP(f) = HW Σ_t K_tᵀ K_{-t}``). With the conjugate transpose, Parseval gives
``AᴴA = HW · K̃ᵀK̃`` for the spatially unrolled (and wrapped) kernel ``K̃ (k·k·C_out, C_in)``,
so no FFT is needed for the Gram at all. That Gram is the spatial trace of ``TᵀT`` for the
layer's operator T: ``Σ_p T_pᵀT_p`` over the input pixels p, ``T_p`` the response to
unit activations at p. Upsampling layers use their polyphase kernels (``upsample=``), so a
StyleGAN2 up-conv is factorized with its zero insertion and FIR.
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
from .._typing import ComplexGram, ConvKernel, ConvKernelArray, Gram, StyleAffine
from ..linalg import canonical_rows
from ..models.biggan import BigGANGenerator, bn_statistics, upsample_nearest2x
from ..sampling import Sampling, as_sampling


def _wrap(kernel: jax.Array, n0: int, n1: int | None = None) -> jax.Array:
    """[k0, k1, I, O] -> [n0, n1, I, O] with taps summed modulo the grid (exact for circular
    convolution; ``fft2(s=...)`` would crop instead)."""
    n1 = n0 if n1 is None else n1
    k0, k1 = kernel.shape[:2]
    if k0 <= n0 and k1 <= n1:
        return jnp.pad(kernel, ((0, n0 - k0), (0, n1 - k1), (0, 0), (0, 0)))
    out = jnp.zeros((n0, n1) + kernel.shape[2:], kernel.dtype)
    idx = jnp.arange(k0) % n0
    jdx = jnp.arange(k1) % n1
    return out.at[idx[:, None], jdx[None, :]].add(kernel)


def _blocks(kernel: jax.Array, n: int) -> jax.Array:
    """Per-frequency blocks ``[n, n, I, O]`` (complex) of a stride-1 circular correlation.

    For correlation ``y[i] = Σ_a K[a] x[i + a]`` the transfer matrix at frequency f is the DFT
    of the kernel with the conjugate phase; singular values are the same either way.
    """
    return jnp.fft.fft2(_wrap(kernel, n), axes=(0, 1))


def _pad_to_multiple(kernel, s: int):
    k0, k1 = kernel.shape[:2]
    p0, p1 = (-k0) % s, (-k1) % s
    return jnp.pad(kernel, ((0, p0), (0, p1), (0, 0), (0, 0)))


def _stride_phases(kernel, s: int):
    """Stride-s correlation -> stride-1 kernel on input phases: [k/s, k/s, I s², O]."""
    kp = _pad_to_multiple(kernel, s)
    phases = [kp[r::s, q::s] for r in range(s) for q in range(s)]
    return jnp.concatenate(phases, axis=2)


def _upsample_phases(kernel, s: int, mode: str):
    """Upsample-by-s then stride-1 correlation -> per-output-phase kernels: [Q, Q, I, O s²].

    Output pixel ``s i + p`` reads the upsampled input at ``s i + p + a`` for tap a, i.e. the
    low-res pixel ``i + (p + a) // s`` - always for ``"nearest"``, only when ``s`` divides
    ``p + a`` for ``"zeros"`` (zero insertion).
    """
    if mode not in ("nearest", "zeros"):
        raise ValueError(f"upsample must be None, 'nearest' or 'zeros', got {mode!r}")
    k0, k1 = kernel.shape[:2]
    q = (max(k0, k1) + s - 1) // s + 1
    out = []
    for p0 in range(s):
        for p1 in range(s):
            kp = jnp.zeros((q, q) + kernel.shape[2:], kernel.dtype)
            for a in range(k0):
                for b in range(k1):
                    if mode == "zeros" and ((p0 + a) % s or (p1 + b) % s):
                        continue
                    kp = kp.at[(p0 + a) // s, (p1 + b) // s].add(kernel[a, b])
            out.append(kp)
    return jnp.concatenate(out, axis=3)


def conv_blocks(
    kernel_hwio: ConvKernel,
    input_shape: Sequence[int],
    stride: int = 1,
    *,
    transpose: bool = False,
    upsample: str | None = None,
    factor: int = 2,
) -> jax.Array:
    """Per-frequency blocks ``[n', n', rows, cols]`` whose singular values are the layer's.

    ``input_shape`` is the layer's input grid for every variant (see the module docstring for
    the output grids). See `conv_singular_values` for the arguments.
    """
    k = jnp.asarray(kernel_hwio)
    if k.ndim != 4 or k.shape[0] != k.shape[1]:
        raise ValueError(f"kernel must be [k, k, C_in, C_out] (HWIO), got shape {tuple(k.shape)}")
    n0, n1 = (int(v) for v in input_shape)
    if n0 != n1 or n0 < 1:
        raise ValueError(f"square inputs only, got input_shape {tuple(input_shape)}")
    n = n0
    if upsample is not None:
        if stride != 1 or transpose:
            raise ValueError("upsample combines with stride=1, transpose=False only")
        return _blocks(_upsample_phases(k, int(factor), upsample), n)
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    stride = int(stride)
    if transpose:
        # input n -> output s n: the adjoint of the stride-s conv C_out -> C_in on the s n grid,
        # whose polyphase blocks live on the n grid
        kt = jnp.swapaxes(k, 2, 3)
        return _blocks(kt if stride == 1 else _stride_phases(kt, stride), n)
    if n % stride:
        raise ValueError(f"the input size {n} must be divisible by stride {stride}")
    if stride == 1:
        return _blocks(k, n)
    return _blocks(_stride_phases(k, stride), n // stride)


@functools.partial(jax.jit, static_argnames=("top_k",))
def _svals(blocks, top_k):
    s = jnp.linalg.svd(blocks, compute_uv=False).reshape(-1)
    s = jnp.sort(s)[::-1]
    return s if top_k is None else s[:top_k]


def conv_singular_values(
    kernel_hwio: ConvKernel,
    input_shape: Sequence[int],
    stride: int = 1,
    *,
    transpose: bool = False,
    upsample: str | None = None,
    factor: int = 2,
    top_k: int | None = None,
) -> jax.Array:
    """Every singular value (descending) of a circular 2-D convolution layer.

    Args:
      kernel_hwio: [k, k, C_in, C_out] correlation kernel (torch Conv2d OIHW ->
        ``transpose(2, 3, 1, 0)``; torch ConvTranspose2d IOHW -> ``transpose(2, 3, 0, 1)``).
      input_shape: (n, n), the layer's **input** grid (for every variant).
      stride: stride s: a conv (n divisible by s; output n / s) or, with ``transpose=True``, a
        transposed conv (output s·n).
      transpose: a transposed conv with this stride (the adjoint of a strided conv: same
        singular values).
      upsample: ``"nearest"`` or ``"zeros"``: upsample the n x n input by ``factor`` first
        (output factor·n).
      top_k: keep the k largest (still computed per frequency).
    Returns:
      ``[min(C_in·n_in², C_out·n_out²)]`` or ``[top_k]`` singular values.
    """
    return _svals(
        conv_blocks(
            kernel_hwio, input_shape, stride, transpose=transpose, upsample=upsample, factor=factor
        ),
        top_k,
    )


def stylegan2_upconv_kernel(
    weight_hwio: ConvKernel, resample_kernel: Sequence[float] = (1, 3, 3, 1)
) -> ConvKernelArray:
    """StyleGAN2's up-conv as one kernel on the zero-inserted grid: ``flip(W)`` followed by the
    separable FIR with gain 4 (``[k + len(f) - 1]²`` taps). Use with ``upsample="zeros"``."""
    w = jnp.asarray(weight_hwio)[::-1, ::-1]
    f = jnp.asarray(resample_kernel, w.dtype)
    f2 = jnp.outer(f, f)
    f2 = f2 / f2.sum() * 4.0
    k, t = w.shape[0], f2.shape[0]
    out = jnp.zeros((k + t - 1, k + t - 1) + w.shape[2:], w.dtype)
    for a in range(t):
        for b in range(t):
            out = out.at[a : a + k, b : b + k].add(f2[a, b] * w)
    return out


# ------------------------------------------------------------------------------------------------
# The generalized closed form
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ConvFactorization:
    """``directions [k, D]`` (unit, canonical sign), ``eigenvalues [k]`` of the Gram (descending),
    ``gram [D, D]`` (real), ``imag_max``: largest |imaginary part| of the complex Gram before
    ``.real`` (0 for ``parseval``)."""

    directions: Any
    eigenvalues: Any
    gram: Any
    imag_max: float


def _closed_form_kernel(kernel_hwio, upsample, factor):
    """The stride-1 kernel of the layer on its input grid: ``[k, k, C_in, C_out']`` (the
    polyphase kernel, C_out' = C_out·factor², when the layer upsamples)."""
    k = jnp.asarray(kernel_hwio)
    if k.ndim != 4:
        raise ValueError(f"kernel must be [k, k, C_in, C_out] (HWIO), got shape {tuple(k.shape)}")
    return k if upsample is None else _upsample_phases(k, int(factor), upsample)


def fft_gram(
    kernel_hwio: ConvKernel,
    input_shape: Sequence[int],
    transpose: str = "conjugate",
    *,
    upsample: str | None = None,
    factor: int = 2,
) -> ComplexGram:
    """The paper's Gram: ``A = FFT2(K wrapped to n0 x n1)`` reshaped to ``(C_out·n0·n1, C_in)``
    (C_in moved last first), ``AᴴA`` (``"conjugate"``) or ``AᵀA`` (``"plain"``, as published).
    Complex ``[C_in, C_in]``. Kernels larger than the grid are wrapped (exact for circular
    convolution). ``upsample``: the layer upsamples its input first (polyphase kernel)."""
    n0, n1 = (int(v) for v in input_shape)
    k = _closed_form_kernel(kernel_hwio, upsample, factor)
    f = jnp.fft.fft2(_wrap(k, n0, n1), axes=(0, 1))
    a = jnp.transpose(f, (3, 0, 1, 2)).reshape(-1, k.shape[2])  # (O, H, W, I) -> (O·H·W, I)
    hp = jax.lax.Precision.HIGHEST
    if transpose == "conjugate":
        return jnp.matmul(a.conj().T, a, precision=hp)
    if transpose == "plain":
        return jnp.matmul(a.T, a, precision=hp)
    raise ValueError(f"transpose must be 'conjugate' or 'plain', got {transpose!r}")


def parseval_gram(
    kernel_hwio: ConvKernel,
    input_shape: Sequence[int],
    *,
    upsample: str | None = None,
    factor: int = 2,
) -> Gram:
    """``n0·n1 · K̃ᵀK̃`` with ``K̃`` the kernel wrapped to the grid (taps summed modulo n, as the
    FFT path does for kernels larger than the grid) and reshaped to ``(k·k·C_out, C_in)``: equals
    the conjugate FFT Gram, in real arithmetic and without an FFT."""
    n0, n1 = (int(v) for v in input_shape)
    k = _closed_form_kernel(kernel_hwio, upsample, factor)
    if k.shape[0] > n0 or k.shape[1] > n1:
        k = _wrap(k, n0, n1)
    kt = jnp.transpose(k, (0, 1, 3, 2)).reshape(-1, k.shape[2])
    return n0 * n1 * jnp.matmul(kt.T, kt, precision=jax.lax.Precision.HIGHEST)


def conv_factorization(
    kernel_hwio: ConvKernel,
    input_shape: Sequence[int],
    *,
    k: int = 5,
    transpose: str = "conjugate",
    method: str = "fft",
    affine: StyleAffine | None = None,
    upsample: str | None = None,
    factor: int = 2,
) -> ConvFactorization:
    """Closed-form directions of a conv layer (ICME 2022, Algorithm 1), optionally pulled back
    through the style affine that feeds it.

    Linearization: the conv's input channels are treated as unit activations scaled by the
    layer's style ``s = affine_wᵀ w`` (StyleGAN2 modulation; demodulation, noise and the
    nonlinearity are ignored), so the map w -> output is ``K̃ · affineᵀ`` and its Gram is
    ``affine · G · affineᵀ`` with G the conv Gram. Without ``affine`` the directions live in the
    conv's input-channel space.

    Args:
      kernel_hwio: [k, k, C_in, C_out].
      input_shape: (H, W) of the conv's input.
      transpose: ``"conjugate"`` (correct, default) or ``"plain"`` (as published, for reproduction:
        it collapses to the corner tap).
      method: ``"fft"`` (the paper's route) or ``"parseval"`` (same Gram for ``"conjugate"``).
      affine: optional ``[D, C_in]`` style affine (jaxedit layout: w_dim x C_in).
      upsample, factor: the layer upsamples its input by ``factor`` first (``"zeros"``: zero
        insertion, e.g. with `stylegan2_upconv_kernel`; ``"nearest"``).
    """
    if method == "parseval":
        if transpose != "conjugate":
            raise ValueError("method='parseval' is the conjugate-transpose Gram")
        g, imag = parseval_gram(kernel_hwio, input_shape, upsample=upsample, factor=factor), 0.0
    elif method == "fft":
        gc = fft_gram(kernel_hwio, input_shape, transpose, upsample=upsample, factor=factor)
        imag = float(jnp.max(jnp.abs(gc.imag)))
        g = gc.real
    else:
        raise ValueError(f"method must be 'fft' or 'parseval', got {method!r}")
    if affine is not None:
        m = jnp.asarray(affine, g.dtype)
        g = jnp.matmul(
            jnp.matmul(m, g, precision=jax.lax.Precision.HIGHEST),
            m.T,
            precision=jax.lax.Precision.HIGHEST,
        )
    g = (g + g.T) / 2
    lam, vec = jnp.linalg.eigh(g)
    return ConvFactorization(
        directions=np.asarray(canonical_rows(vec[:, ::-1][:, :k].T)),
        eigenvalues=np.asarray(lam[::-1][:k]),
        gram=np.asarray(g),
        imag_max=imag,
    )


def _check_family(gen, what: str) -> None:
    """Conv spectra model StyleGAN2's (up-)convs and BigGAN's convs; a generator with an input
    transform (StyleGAN3: upsampling, a filtered activation and downsampling around every conv)
    is refused with one ValueError."""
    if gen.has_transform:
        raise ValueError(
            f"{what}: conv spectra are for StyleGAN2 and BigGAN; {gen.display_name}'s layers "
            "filter, upsample and downsample around the activation (not modelled here)"
        )


def layer_spectrum(gen, layer: str, *, top_k: int | None = None) -> jax.Array:
    """Singular values of a StyleGAN2 conv layer's (unmodulated) weight at its input size
    (computed in float64 under x64, else float32).

    ``b8.conv0`` (up-conv) uses the StyleGAN2 up-conv kernel with the generator's FIR; other
    convs are stride 1 at their resolution. BigGAN: ``"block{i}.conv_{k}"`` / ``"conv_to_rgb"``.

    Raises:
      ValueError: a StyleGAN3 generator (see `_check_family`), or an unknown layer.
    """
    _check_family(gen, "layer_spectrum")
    if isinstance(gen, BigGANGenerator):
        res = 4
        mods = {}
        for i, (up, _, _) in enumerate(gen.config.layers):
            for kk in range(4):
                mods[f"block{i}.conv_{kk}"] = (
                    getattr(getattr(gen, f"block{i}"), f"conv_{kk}"),
                    res * (2 if (up and kk >= 1) else 1),
                )
            res *= 2 if up else 1
        mods["conv_to_rgb"] = (gen.conv_to_rgb, res)
        if layer not in mods:
            raise ValueError(f"unknown BigGAN conv {layer!r}; choose one of {sorted(mods)}")
        mod, n = mods[layer]
        kern = jnp.asarray(mod.kernel[...], _ops.default_float_dtype())
        return conv_singular_values(kern, (n, n), top_k=top_k)
    if layer not in gen.conv_layer_names:
        raise ValueError(f"unknown conv layer {layer!r}; choose one of {gen.conv_layer_names}")
    lay = gen._layer(layer)
    w = jnp.asarray(lay.weight[...], _ops.default_float_dtype())
    if lay.up > 1:
        n = lay.resolution // 2
        kern = stylegan2_upconv_kernel(w, gen.config.resample_kernel)
        return conv_singular_values(kern, (n, n), upsample="zeros", factor=2, top_k=top_k)
    return conv_singular_values(w, (lay.resolution, lay.resolution), top_k=top_k)


def layer_factorization(
    gen,
    layer: str,
    *,
    k: int = 5,
    sampling: Sampling | None = None,
    transpose: str = "conjugate",
    method: str = "fft",
) -> ConvFactorization:
    """Closed-form directions of one generator conv layer, in the generator's latent space.

    StyleGAN2 (``layer`` a conv name, e.g. ``"b16.conv1"``): `conv_factorization` of the
    layer's weight at its input size composed with its style affine -> directions in w. An
    up-conv (``"b16.conv0"``) is factorized as what it computes: zero insertion, the flipped
    kernel and the FIR (`stylegan2_upconv_kernel`), i.e. its polyphase kernel on the input
    grid. The Gram is ``Σ_p J_pᵀJ_p`` over input pixels p, ``J_p`` the Jacobian in w of the
    layer's (unnormalized) output for unit activations at p.

    BigGAN (``layer`` one of ``"gen_z"``, ``"block0.conv_0"``, ``"block0.conv_1"``): the linear
    chain z -> ``gen_z`` (z columns) -> block0's BN normalization at
    ``sampling.truncation_psi`` (the class-conditional gain taken at its neutral value 1 and
    offsets dropped) -> ReLU taken as identity -> the 1x1 ``conv_0`` -> (for ``conv_1``: BN
    normalization, nearest upsampling if the block upsamples, the 3x3 ``conv_1`` with its zero
    padding). That map is linear in z; its Gram ``LᵀL`` is formed exactly (no circular
    approximation) -> directions in z.

    Args:
      gen: a StyleGAN2 or BigGAN generator.
      layer: the conv layer's name.
      k: number of directions.
      sampling: a `jaxedit.Sampling` (None: ``Sampling()``); BigGAN reads its
        ``truncation_psi`` (the truncation that picks the BN statistics); StyleGAN2 reads
        nothing (the factorization does not depend on the latent).
      transpose, method: as `conv_factorization`.

    Returns:
      `ConvFactorization` with directions in w (StyleGAN2) or z (BigGAN).

    Raises:
      TypeError: ``sampling`` is not a `jaxedit.Sampling`.
      ValueError: an unknown layer, or for BigGAN a ``sampling.truncation_cutoff`` (a
        StyleGAN2 option) or a ``sampling.truncation_psi`` outside (0, 1].
    """
    sampling = as_sampling(sampling)
    _check_family(gen, "layer_factorization")
    if isinstance(gen, BigGANGenerator):
        if sampling.truncation_cutoff is not None:
            raise ValueError(
                f"layer_factorization: sampling.truncation_cutoff applies to "
                f"StyleGAN2 only, got {sampling.truncation_cutoff!r} for BigGAN"
            )
        return _biggan_chain_factorization(gen, layer, k, sampling.truncation_psi)
    if layer not in gen.conv_layer_names:
        raise ValueError(f"unknown conv layer {layer!r}; choose one of {gen.conv_layer_names}")
    lay = gen._layer(layer)
    dt = _ops.default_float_dtype()
    n = lay.resolution // lay.up
    w = jnp.asarray(lay.weight[...], dt)
    kw: dict[str, Any] = {}
    if lay.up > 1:  # zero insertion, flipped kernel, FIR: the up-conv's polyphase kernel
        w = stylegan2_upconv_kernel(w, gen.config.resample_kernel)
        kw = dict(upsample="zeros", factor=lay.up)
    return conv_factorization(
        w,
        (n, n),
        k=k,
        transpose=transpose,
        method=method,
        affine=jnp.asarray(lay.affine.weight[...], dt),
        **kw,
    )


def _biggan_chain_factorization(gen, layer, k, truncation) -> ConvFactorization:
    names = ("gen_z", "block0.conv_0", "block0.conv_1")
    if layer not in names:
        raise ValueError(f"BigGAN layer must be one of {names}, got {layer!r}")
    dt = _ops.default_float_dtype()
    zd, ch = gen.z_dim, gen.config.channel_width
    blk = gen.block0
    hp = jax.lax.Precision.HIGHEST

    def bn_scale(bn, x):
        _, var = bn_statistics(bn.running_means, bn.running_vars, truncation, dt)
        return x / jnp.sqrt(var + bn.eps)

    def chain(z):
        x = jnp.matmul(z, jnp.asarray(gen.gen_z.kernel[...], dt)[:zd], precision=hp)
        x = x.reshape(4, 4, 16 * ch)
        if layer == "gen_z":
            return x
        x = bn_scale(blk.bn_0, x)
        x = jnp.einsum(
            "hwc,co->hwo", x, jnp.asarray(blk.conv_0.kernel[...], dt)[0, 0], precision=hp
        )
        if layer == "block0.conv_0":
            return x
        x = bn_scale(blk.bn_1, x)
        if blk.up:
            x = upsample_nearest2x(x[None])[0]
        return _ops.conv2d(x[None], jnp.asarray(blk.conv_1.kernel[...], dt), 1, hp)[0]

    lin = jax.jacfwd(chain)(jnp.zeros((zd,), dt)).reshape(-1, zd)
    g = jnp.matmul(lin.T, lin, precision=hp)
    g = (g + g.T) / 2
    lam, vec = jnp.linalg.eigh(g)
    return ConvFactorization(
        directions=np.asarray(canonical_rows(vec[:, ::-1][:, :k].T)),
        eigenvalues=np.asarray(lam[::-1][:k]),
        gram=np.asarray(g),
        imag_max=0.0,
    )


__all__ = [
    "ConvFactorization",
    "conv_blocks",
    "conv_factorization",
    "conv_singular_values",
    "fft_gram",
    "layer_factorization",
    "layer_spectrum",
    "parseval_gram",
    "stylegan2_upconv_kernel",
]
