"""Low-level array ops shared by the generators (NHWC activations, HWIO kernels).

All ops are pure functions of arrays; ``precision`` is passed to every conv and dot explicitly so
that parity runs can ask for ``HIGHEST`` (no TF32 on GPUs) and fast runs for ``DEFAULT``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

Precision = lax.Precision | str | None

_PRECISIONS = {
    "highest": lax.Precision.HIGHEST,
    "float32": lax.Precision.HIGHEST,
    "high": lax.Precision.HIGH,
    "default": lax.Precision.DEFAULT,
    "fast": lax.Precision.DEFAULT,
    "tensorfloat32": lax.Precision.DEFAULT,
}


def as_precision(precision: Precision) -> lax.Precision | None:
    """Map ``"highest" | "high" | "default" | "fast" | Precision | None`` to a ``lax.Precision``."""
    if precision is None or isinstance(precision, lax.Precision):
        return precision
    try:
        return _PRECISIONS[str(precision).lower()]
    except KeyError:
        raise ValueError(
            f"precision must be one of {sorted(_PRECISIONS)} or a jax.lax.Precision, "
            f"got {precision!r}"
        ) from None


def default_float_dtype() -> jnp.dtype:
    """float64 when ``jax_enable_x64`` is on, else float32."""
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``x / sqrt(mean(x**2, -1) + eps)`` over the last axis. x: [N, D] -> [N, D]."""
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def bias_act(
    x: jax.Array,
    b: jax.Array | None,
    act: str = "linear",
    gain: float = 1.0,
    clamp: float | None = None,
    alpha: float = 0.2,
) -> jax.Array:
    """NVIDIA ``bias_act``: add bias on the last axis, activate, scale by ``gain``, clamp.

    x: [..., C]; b: [C] or None. act: ``"linear"`` or ``"lrelu"`` (slope ``alpha``).
    """
    if b is not None:
        x = x + b
    if act == "lrelu":
        x = jnp.where(x >= 0, x, x * alpha)
    elif act != "linear":
        raise ValueError(f"unsupported activation {act!r} (expected 'linear' or 'lrelu')")
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = jnp.clip(x, -clamp, clamp)
    return x


def _fir_axis(u: jax.Array, taps: Sequence[float], axis: int) -> jax.Array:
    """Valid correlation of ``u`` with 1-D ``taps`` along ``axis`` (a fused sum of slices)."""
    k = len(taps)
    out_len = u.shape[axis] - k + 1
    acc = lax.slice_in_dim(u, 0, out_len, axis=axis) * taps[0]
    for i in range(1, k):
        acc = acc + lax.slice_in_dim(u, i, i + out_len, axis=axis) * taps[i]
    return acc


def upfirdn2d(
    x: jax.Array,
    kernel_1d: Sequence[float],
    up: int = 1,
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> jax.Array:
    """NVIDIA ``upfirdn2d`` (down=1) with a separable FIR, NHWC.

    Zero-inserts ``up - 1`` samples after each pixel, pads by ``pad = (x0, x1, y0, y1)`` pixels of
    the upsampled grid (negative pads crop), then convolves with the normalized outer product of
    ``kernel_1d`` scaled by ``gain``.

    x: [N, H, W, C] -> [N, H*up + y0 + y1 - k + 1, W*up + x0 + x1 - k + 1, C].
    """
    taps = [float(t) for t in kernel_1d]
    s = sum(taps)
    # True convolution flips the filter; gain is split evenly between the two separable passes.
    taps = [t / s * math.sqrt(gain) for t in reversed(taps)]
    px0, px1, py0, py1 = pad
    zero = jnp.zeros((), x.dtype)
    u = lax.pad(
        x,
        zero,
        [(0, 0, 0), (py0, py1 + up - 1, up - 1), (px0, px1 + up - 1, up - 1), (0, 0, 0)],
    )
    u = _fir_axis(u, taps, axis=1)
    return _fir_axis(u, taps, axis=2)


def upsample2d(x: jax.Array, kernel_1d: Sequence[float], up: int = 2) -> jax.Array:
    """NVIDIA ``upsample2d``: FIR upsampling by ``up``. x: [N, H, W, C] -> [N, up*H, up*W, C]."""
    k = len(kernel_1d)
    p0, p1 = (k + up - 1) // 2, (k - up) // 2
    return upfirdn2d(x, kernel_1d, up=up, pad=(p0, p1, p0, p1), gain=up * up)


def conv2d(x: jax.Array, w: jax.Array, padding: int, precision: Precision = "highest") -> jax.Array:
    """Stride-1 correlation (torch ``conv2d``). x: [N, H, W, I], w: [kh, kw, I, O] -> [N, H', W', O]."""
    return lax.conv_general_dilated(
        x,
        w,
        window_strides=(1, 1),
        padding=((padding, padding), (padding, padding)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=as_precision(precision),
    )


def _up2_pads(kh: int, kw: int, f: int, padding: int, up: int = 2):
    """The reference's upfirdn2d pads after the transposed conv, and the part of them folded
    into the conv itself (``pxt``, ``pyt``: negative pads cropped there instead)."""
    px0 = padding + (f + up - 1) // 2 - (kw - 1)
    px1 = padding + (f - up) // 2 - (kw - up)
    py0 = padding + (f + up - 1) // 2 - (kh - 1)
    py1 = padding + (f - up) // 2 - (kh - up)
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    return px0, px1, py0, py1, pxt, pyt


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _transposed_conv2(x, w, crop: tuple[int, int], precision: Precision):
    """Stride-2 transposed conv: the true convolution of the zero-inserted ``x`` with ``w``.

    x: [N, h, w, I], w: [kh, kw, I, O] -> [N, 2h + kh - 2 - 2*pyt, 2w + kw - 2 - 2*pxt, O]
    with ``crop = (pyt, pxt)``. Its JVP (hence its VJP) in ``w`` is written as ``kh * kw`` dense
    products placed on the strided output grid, so that weight gradients transpose to GEMMs;
    XLA's CPU weight gradient of an lhs-dilated conv is several times slower. Values and
    x-derivatives are XLA's conv itself.
    """
    kh, kw = w.shape[0], w.shape[1]
    pyt, pxt = crop
    return lax.conv_general_dilated(
        x,
        w[::-1, ::-1],
        window_strides=(1, 1),
        padding=((kh - 1 - pyt, kh - 1 - pyt), (kw - 1 - pxt, kw - 1 - pxt)),
        lhs_dilation=(2, 2),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=as_precision(precision),
    )


def _transposed_conv2_in_w(x, w_dot, crop, precision):
    """``_transposed_conv2(x, w_dot)`` as a sum over taps of ``x @ w_dot[ky, kx]`` placed at
    output rows ``2b + ky - pyt`` / columns ``2c + kx - pxt`` (linear in ``w_dot``)."""
    kh, kw = w_dot.shape[0], w_dot.shape[1]
    pyt, pxt = crop
    n, h, wd, _ = x.shape
    h_out, w_out = 2 * h + kh - 2 - 2 * pyt, 2 * wd + kw - 2 - 2 * pxt
    zero = jnp.zeros((), x.dtype)
    out = None
    for ky in range(kh):
        for kx in range(kw):
            t = lax.dot_general(
                x, w_dot[ky, kx], (((3,), (0,)), ((), ())), precision=as_precision(precision)
            )  # [N, h, w, O]
            oy, ox = ky - pyt, kx - pxt
            placed = lax.pad(
                t,
                zero,
                [
                    (0, 0, 0),
                    (oy, h_out - (2 * h - 1) - oy, 1),
                    (ox, w_out - (2 * wd - 1) - ox, 1),
                    (0, 0, 0),
                ],
            )
            out = placed if out is None else out + placed
    return out


def _transposed_conv2_jvp(crop, precision, primals, tangents):
    x, w = primals
    x_dot, w_dot = tangents
    y = _transposed_conv2(x, w, crop, precision)
    parts = []
    if not isinstance(x_dot, SymbolicZero):
        parts.append(_transposed_conv2(x_dot, w, crop, precision))
    if not isinstance(w_dot, SymbolicZero):
        parts.append(_transposed_conv2_in_w(x, w_dot, crop, precision))
    if not parts:
        return y, jnp.zeros_like(y)
    return y, parts[0] if len(parts) == 1 else parts[0] + parts[1]


_transposed_conv2.defjvp(_transposed_conv2_jvp, symbolic_zeros=True)


def conv2d_up2(
    x: jax.Array,
    w: jax.Array,
    kernel_1d: Sequence[float],
    padding: int,
    precision: Precision = "highest",
) -> jax.Array:
    """NVIDIA ``conv2d_resample(up=2)``: transposed stride-2 conv with ``w`` then the FIR.

    Equals ``conv_transpose2d(x, w.transpose(0, 1), stride=2)`` (no flip) followed by
    ``upfirdn2d`` with the padding the reference computes, i.e. a true convolution of the
    zero-inserted input with ``w``. x: [N, H, W, I], w: [k, k, I, O] -> [N, 2H, 2W, O]
    (for the 3x3, padding-1 layers of StyleGAN2).
    """
    kh, kw = w.shape[0], w.shape[1]
    px0, px1, py0, py1, pxt, pyt = _up2_pads(kh, kw, len(kernel_1d), padding)
    y = _transposed_conv2(x, w, (pyt, pxt), precision)
    return upfirdn2d(y, kernel_1d, up=1, pad=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=4)


def modulated_conv2d(
    x: jax.Array,
    w: jax.Array,
    styles: jax.Array,
    *,
    demodulate: bool = True,
    up: int = 1,
    padding: int = 0,
    kernel_1d: Sequence[float] = (1, 3, 3, 1),
    precision: Precision = "highest",
) -> jax.Array:
    """StyleGAN2 modulated convolution without grouped convs (scale in, conv, scale out).

    x: [N, H, W, I]; w: [k, k, I, O]; styles: [N, I]. Returns [N, H*up, W*up, O].
    Demodulation uses ``d = rsqrt(sum_{k,k,I} (w * s)^2 + 1e-8)`` exactly as the reference.
    """
    x = x * styles[:, None, None, :].astype(x.dtype)
    if up == 1:
        y = conv2d(x, w, padding, precision)
    elif up == 2:
        y = conv2d_up2(x, w, kernel_1d, padding, precision)
    else:
        raise ValueError(f"up must be 1 or 2, got {up}")
    if demodulate:
        wsq = jnp.sum(jnp.square(w), axis=(0, 1))  # [I, O]
        d = lax.rsqrt(
            jnp.dot(jnp.square(styles), wsq, precision=as_precision(precision)) + 1e-8
        )  # [N, O]
        y = y * d[:, None, None, :].astype(y.dtype)
    return y
