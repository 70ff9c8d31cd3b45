"""StyleGAN3's layer geometry and low-pass filter design, in NumPy (no SciPy, no torch).

The formulas of NVIDIA ``training/networks_stylegan3.py`` (``SynthesisNetwork.__init__`` and
``SynthesisLayer.design_lowpass_filter``), which Hammer's ``models/stylegan3_generator.py``
repeats: one place for the readers' cross-checks and for `jaxedit.StyleGAN3Config`.

* `layer_geometry`: every synthesis layer's sizes, channels, sampling rates, cutoffs,
  transition half-widths, up/down factors, filter taps and paddings, computed in float64 in the
  reference's order (so ``L5_52_32``-style names come out identical).
* `design_lowpass_filter`: the separable Kaiser low-pass (``scipy.signal.firwin`` with a
  ``width``) or the radially symmetric jinc filter, as float32 like the reference's buffers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _kaiser_atten(numtaps: int, width: float) -> float:
    """``scipy.signal.kaiser_atten``: attenuation (dB) of a Kaiser FIR of ``numtaps`` taps whose
    transition width is ``width`` (relative to Nyquist)."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def _kaiser_beta(a: float) -> float:
    """``scipy.signal.kaiser_beta``: the Kaiser window's beta for attenuation ``a`` dB."""
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def _j1(x: np.ndarray) -> np.ndarray:
    """Bessel function of the first kind of order 1 (``scipy.special.j1``) to ~1e-15.

    Bessel's integral ``J1(x) = (1/pi) int_0^pi cos(t - x sin t) dt``; the integrand is even and
    2 pi-periodic, so the trapezoidal rule converges geometrically (512 nodes are exact to
    rounding for ``|x| < 200``, far beyond the filters' arguments).
    """
    x = np.asarray(x, np.float64)
    if np.abs(x).max(initial=0.0) > 200:
        raise ValueError("_j1 is accurate only for |x| <= 200")
    n = 512
    t = np.arange(n + 1) * (math.pi / n)
    w = np.full(n + 1, 1.0)
    w[0] = w[-1] = 0.5
    vals = np.cos(t[None, :] - x.reshape(-1, 1) * np.sin(t)[None, :])
    return ((vals @ w) / n).reshape(x.shape)


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> np.ndarray | None:
    """The reference's low-pass filter: ``None`` for 1 tap (identity), ``[numtaps]`` Kaiser
    (separable) or ``[numtaps, numtaps]`` jinc (radial), as float32, normalised to unit DC gain.

    Args:
      numtaps: filter length (``filter_size * factor``).
      cutoff: cutoff frequency f_c; width: transition band width (2 f_h); fs: sampling rate.
      radial: the radially symmetric 2-D filter (StyleGAN3-R's down filters).
    """
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    nyq = fs / 2
    beta = _kaiser_beta(_kaiser_atten(numtaps, width / nyq))
    window = np.kaiser(numtaps, beta)
    if not radial:  # scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs), pass_zero
        c = cutoff / nyq
        m = np.arange(numtaps) - 0.5 * (numtaps - 1)
        h = c * np.sinc(c * m)
        h = h * window
        h = h / np.sum(h)
        return h.astype(np.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = _j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    f = f * np.outer(window, window)
    f = f / np.sum(f)
    return f.astype(np.float32)


def layer_geometry(
    *,
    img_resolution: int,
    img_channels: int,
    channel_base: float,
    channel_max: int,
    num_layers: int = 14,
    num_critical: int = 2,
    first_cutoff: float = 2.0,
    first_stopband: float = 2**2.1,
    last_stopband_rel: float = 2**0.3,
    margin_size: int = 10,
    conv_kernel: int = 3,
    filter_size: int = 6,
    lrelu_upsampling: int = 2,
    use_radial_filters: bool = False,
    num_fp16_res: int = 0,
) -> dict[str, Any]:
    """Every synthesis layer's geometry, as the reference computes it.

    Returns:
      ``{"input": {...}, "layers": [{...}, ...]}``: the input's ``channels``, ``size``,
      ``sampling_rate``, ``bandwidth``; per layer (``L0_..`` to the ToRGB ``L{num_layers}_..``)
      ``name``, ``is_torgb``, ``is_critically_sampled``, ``use_fp16`` (the official fp16
      flag), ``in_channels``, ``out_channels``, ``in_size``, ``out_size``, ``in_sampling_rate``,
      ``out_sampling_rate``, ``tmp_sampling_rate``, ``in_cutoff``, ``out_cutoff``,
      ``in_half_width``, ``out_half_width``, ``conv_kernel``, ``up_factor``, ``up_taps``,
      ``down_factor``, ``down_taps``, ``down_radial`` and ``padding`` ``[x0, x1, y0, y1]``.
    Raises:
      ValueError: a combination the reference's asserts refuse (non-integer resampling factor).
    """
    if num_layers - num_critical <= 0:
        raise ValueError(f"num_layers ({num_layers}) must exceed num_critical ({num_critical})")
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        is_torgb = idx == num_layers
        critical = idx >= num_layers - num_critical
        in_rate, out_rate = int(rates[prev]), int(rates[idx])
        tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else lrelu_upsampling)
        kernel = 1 if is_torgb else conv_kernel
        up = int(np.rint(tmp_rate / in_rate))
        down = int(np.rint(tmp_rate / out_rate))
        if in_rate * up != tmp_rate or out_rate * down != tmp_rate:
            raise ValueError(f"layer {idx}: sampling rates {in_rate} -> {out_rate} via {tmp_rate}")
        up_taps = filter_size * up if up > 1 and not is_torgb else 1
        down_taps = filter_size * down if down > 1 and not is_torgb else 1
        in_size, out_size = int(sizes[prev]), int(sizes[idx])
        pad_total = (out_size - 1) * down + 1
        pad_total -= (in_size + kernel - 1) * up
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        out_ch = int(channels[idx])
        layers.append(
            {
                "name": f"L{idx}_{out_size}_{out_ch}",
                "is_torgb": is_torgb,
                "is_critically_sampled": bool(critical),
                "use_fp16": bool(rates[idx] * (2**num_fp16_res) > img_resolution),
                "in_channels": int(channels[prev]),
                "out_channels": out_ch,
                "in_size": in_size,
                "out_size": out_size,
                "in_sampling_rate": in_rate,
                "out_sampling_rate": out_rate,
                "tmp_sampling_rate": tmp_rate,
                "in_cutoff": float(cutoffs[prev]),
                "out_cutoff": float(cutoffs[idx]),
                "in_half_width": float(half_widths[prev]),
                "out_half_width": float(half_widths[idx]),
                "conv_kernel": kernel,
                "up_factor": up,
                "up_taps": up_taps,
                "down_factor": down,
                "down_taps": down_taps,
                "down_radial": bool(use_radial_filters and not critical),
                "padding": [int(pad_lo), int(pad_hi), int(pad_lo), int(pad_hi)],
            }
        )
    return {
        "input": {
            "channels": int(channels[0]),
            "size": int(sizes[0]),
            "sampling_rate": float(rates[0]),
            "bandwidth": float(cutoffs[0]),
        },
        "layers": layers,
    }


def layer_filters(layer: dict[str, Any]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The ``(up_filter, down_filter)`` the reference designs for one `layer_geometry` entry."""
    fs = layer["tmp_sampling_rate"]
    up = design_lowpass_filter(layer["up_taps"], layer["in_cutoff"], layer["in_half_width"] * 2, fs)
    down = design_lowpass_filter(
        layer["down_taps"],
        layer["out_cutoff"],
        layer["out_half_width"] * 2,
        fs,
        radial=layer["down_radial"],
    )
    return up, down


__all__ = ["design_lowpass_filter", "layer_filters", "layer_geometry"]
