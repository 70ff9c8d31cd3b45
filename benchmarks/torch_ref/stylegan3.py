"""A PyTorch StyleGAN3 generator (NVIDIA ``training/networks_stylegan3.py``) for benchmarking.

Pure functions of a parameter dict keyed exactly as NVIDIA's ``G_ema.state_dict()``
(``mapping.fc0.weight``, ``synthesis.input.freqs``, ``synthesis.L0_36_512.up_filter``, ...,
buffers included) and of an :class:`Arch` (the generator's init kwargs and every layer's derived
attributes: sizes, sampling rates, up/down factors, paddings). ``torch.func`` transforms apply.

What it computes is NVIDIA's forward pass with the *reference* ops (``impl='ref'``):

* mapping: z normalised, ``num_layers`` FC + lrelu(0.2)·√2 (weights x lr/√in, biases x lr),
  broadcast to ``num_ws`` slots, ``w_avg.lerp(w, psi)`` on the first ``cutoff`` slots;
* ``SynthesisInput``: the affine's (r_c, r_s, t_x, t_y), normalised by |(r_c, r_s)|, gives an
  inverse rotation and translation applied before the user ``transform`` buffer; the Fourier
  features ``sin(2π(grid·f' + φ'))`` (out-of-band frequencies damped), then a C x C mixing;
* ``SynthesisLayer``: styles from the affine (ToRGB: x 1/√(C_in k²)), the modulated conv with the
  weight and the styles pre-normalised (the styles over the *whole batch*, as NVIDIA does), the
  demodulation (eps 1e-8), the input gain ``magnitude_ema^-1/2``, padding ``k - 1``; then
  ``filtered_lrelu`` as its reference path: bias -> upfirdn2d up (gain up², padding) ->
  lrelu(slope)·gain with clamp -> upfirdn2d down (ToRGB: linear, gain 1, clamp only);
* the image times ``output_scale``. NCHW throughout.

The modulated conv is computed as scale-conv-scale (one conv for the batch; mathematically the
same as NVIDIA's grouped conv), the FIR filters as depthwise convs, and the down-sampling as the
stride of the last filter pass (the same values as NVIDIA's filter-then-subsample).

The low-pass filters are designed here as ``SynthesisNetwork.__init__`` designs them (Kaiser
``firwin`` and the radial jinc filter), in NumPy + a quadrature of Bessel's integral for J1, no SciPy.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------------
# architecture


@dataclasses.dataclass(frozen=True)
class Layer:
    """One ``SynthesisLayer``'s attributes (sizes are (width, height))."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    in_channels: int
    out_channels: int
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    in_sampling_rate: float
    out_sampling_rate: float
    tmp_sampling_rate: float
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    up_taps: int
    down_factor: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]  # x0, x1, y0, y1
    conv_clamp: float | None


@dataclasses.dataclass(frozen=True)
class Arch:
    """The generator's shape and every layer's derived attributes."""

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    mapping_layers: int
    mapping_lr: float
    output_scale: float
    input_channels: int
    input_size: tuple[int, int]
    input_sampling_rate: float
    input_bandwidth: float
    layers: tuple[Layer, ...]
    init_kwargs: dict = dataclasses.field(default_factory=dict, compare=False)


#: Generator init kwargs as NVIDIA's ``train.py`` builds them (``--cfg stylegan3-t/-r``).
def config(
    cfg: str = "t",
    resolution: int = 1024,
    *,
    z_dim: int = 512,
    w_dim: int = 512,
    channel_base: int = 32768,
    channel_max: int = 512,
    mapping_layers: int = 2,
    c_dim: int = 0,
    **extra,
) -> dict:
    """Generator ``_init_kwargs`` of a StyleGAN3-T (``cfg='t'``) or -R (``'r'``): R doubles the
    channel base and max, uses 1x1 convs and radial down-sampling filters (as ``train.py``)."""
    kw: dict[str, Any] = dict(
        z_dim=z_dim,
        c_dim=c_dim,
        w_dim=w_dim,
        img_resolution=resolution,
        img_channels=3,
        mapping_kwargs={"num_layers": mapping_layers},
        channel_base=channel_base,
        channel_max=channel_max,
        num_fp16_res=4,
        conv_clamp=256,
        magnitude_ema_beta=0.5 ** (32 / 20000),
    )
    if cfg == "r":
        kw.update(
            channel_base=2 * channel_base,
            channel_max=2 * channel_max,
            conv_kernel=1,
            use_radial_filters=True,
        )
    elif cfg != "t":
        raise ValueError(f"cfg must be 't' or 'r', got {cfg!r}")
    kw.update(extra)
    return kw


def design_arch(init_kwargs: dict) -> Arch:
    """``Generator(**init_kwargs)``'s attributes, derived as NVIDIA's ``SynthesisNetwork`` and
    ``SynthesisLayer`` constructors derive them."""
    kw = dict(init_kwargs)
    res = int(kw["img_resolution"])
    n_layers = int(kw.get("num_layers", 14))
    n_crit = int(kw.get("num_critical", 2))
    first_cutoff = kw.get("first_cutoff", 2)
    first_stopband = kw.get("first_stopband", 2**2.1)
    last_stopband_rel = kw.get("last_stopband_rel", 2**0.3)
    margin = int(kw.get("margin_size", 10))
    kernel = int(kw.get("conv_kernel", 3))
    filter_size = int(kw.get("filter_size", 6))
    lrelu_up = int(kw.get("lrelu_upsampling", 2))
    radial = bool(kw.get("use_radial_filters", False))
    clamp = kw.get("conv_clamp", 256)

    last_cutoff = res / 2
    last_stopband = last_cutoff * last_stopband_rel
    e = np.minimum(np.arange(n_layers + 1) / (n_layers - n_crit), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** e
    stopbands = first_stopband * (last_stopband / first_stopband) ** e
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin * 2
    sizes[-2:] = res
    channels = np.rint(
        np.minimum((kw.get("channel_base", 32768) / 2) / cutoffs, kw.get("channel_max", 512))
    )
    channels[-1] = kw.get("img_channels", 3)

    layers = []
    for i in range(n_layers + 1):
        prev = max(i - 1, 0)
        torgb = i == n_layers
        crit = i >= n_layers - n_crit
        in_rate, out_rate = int(rates[prev]), int(rates[i])
        tmp_rate = max(in_rate, out_rate) * (1 if torgb else lrelu_up)
        k = 1 if torgb else kernel
        up = int(np.rint(tmp_rate / in_rate))
        down = int(np.rint(tmp_rate / out_rate))
        up_taps = filter_size * up if up > 1 and not torgb else 1
        down_taps = filter_size * down if down > 1 and not torgb else 1
        in_size, out_size = int(sizes[prev]), int(sizes[i])
        total = (out_size - 1) * down + 1 - (in_size + k - 1) * up + up_taps + down_taps - 2
        lo = (total + up) // 2
        hi = total - lo
        out_ch = int(channels[i])
        layers.append(
            Layer(
                name=f"L{i}_{out_size}_{out_ch}",
                is_torgb=torgb,
                is_critically_sampled=crit,
                in_channels=int(channels[prev]),
                out_channels=out_ch,
                in_size=(in_size, in_size),
                out_size=(out_size, out_size),
                in_sampling_rate=in_rate,
                out_sampling_rate=out_rate,
                tmp_sampling_rate=tmp_rate,
                in_cutoff=float(cutoffs[prev]),
                out_cutoff=float(cutoffs[i]),
                in_half_width=float(half_widths[prev]),
                out_half_width=float(half_widths[i]),
                conv_kernel=k,
                up_factor=up,
                up_taps=up_taps,
                down_factor=down,
                down_taps=down_taps,
                down_radial=radial and not crit,
                padding=(lo, hi, lo, hi),
                conv_clamp=clamp,
            )
        )
    return Arch(
        z_dim=int(kw["z_dim"]),
        c_dim=int(kw.get("c_dim", 0)),
        w_dim=int(kw["w_dim"]),
        num_ws=n_layers + 2,
        img_resolution=res,
        img_channels=int(kw.get("img_channels", 3)),
        mapping_layers=int(kw.get("mapping_kwargs", {}).get("num_layers", 2)),
        mapping_lr=float(kw.get("mapping_kwargs", {}).get("lr_multiplier", 0.01)),
        output_scale=float(kw.get("output_scale", 0.25)),
        input_channels=int(channels[0]),
        input_size=(int(sizes[0]), int(sizes[0])),
        input_sampling_rate=float(rates[0]),
        input_bandwidth=float(cutoffs[0]),
        layers=tuple(layers),
        init_kwargs=kw,
    )


# ------------------------------------------------------------------------------------------------
# filter design (NVIDIA SynthesisLayer.design_lowpass_filter, without SciPy)


def _kaiser_beta(numtaps: int, width: float, fs: float) -> float:
    """SciPy's ``kaiser_beta(kaiser_atten(numtaps, width / (fs / 2)))``."""
    a = 2.285 * (numtaps - 1) * math.pi * (width / (fs / 2)) + 7.95
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def bessel_j1(x: np.ndarray, points: int = 256) -> np.ndarray:
    """The Bessel function J1 (float64) by Bessel's integral ``(1/2π) ∫ cos(τ - x sin τ) dτ``
    over one period, on ``points`` equispaced nodes: the trapezoid rule converges
    exponentially for this periodic integrand (machine precision for |x| < ~100 at 256 nodes;
    ``torch.special.bessel_j1`` is only ~4e-7 accurate)."""
    x = np.asarray(x, np.float64)
    if np.abs(x).max(initial=0.0) > 100:
        raise ValueError("bessel_j1: |x| > 100 needs more nodes")
    tau = 2 * np.pi * np.arange(points) / points
    return np.cos(tau - x[..., None] * np.sin(tau)).mean(-1)


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> np.ndarray | None:
    """The low-pass FIR filter NVIDIA's layers hold as ``up_filter`` / ``down_filter`` (float64;
    NVIDIA stores it as float32): ``None`` for one tap; a separable 1-D Kaiser-windowed sinc
    (``scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)``: a symmetric Kaiser window, the
    sum normalised to 1); or, ``radial``, the 2-D jinc ``J1(2π f_c r) / (π r)`` windowed by the
    outer product of the same Kaiser window and normalised to sum 1."""
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    beta = _kaiser_beta(numtaps, width, fs)
    win = np.kaiser(numtaps, beta)
    if not radial:
        c = cutoff / (fs / 2)  # firwin: cutoff relative to Nyquist
        m = np.arange(numtaps) - (numtaps - 1) / 2
        h = c * np.sinc(c * m) * win
        return h / h.sum()
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    j1 = bessel_j1(2 * cutoff * np.pi * r)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(r > 0, j1 / (np.pi * r), cutoff)  # limit J1(2πcr)/(πr) -> c at r = 0
    f = f * np.outer(win, win)
    return f / f.sum()


# ------------------------------------------------------------------------------------------------
# parameters


def random_generator(
    init_kwargs: dict, seed: int = 0, device="cpu", dtype=torch.float32
) -> tuple[dict[str, torch.Tensor], Arch]:
    """A random generator: ({NVIDIA state-dict key: tensor}, :class:`Arch`), deterministic in
    ``seed``. Parameters are drawn around NVIDIA's init and moved off it (biases, the input
    affine, ``magnitude_ema``, ``w_avg`` non-trivial); the filter buffers are designed exactly as
    NVIDIA's constructor designs them (rounded to float32, as its buffers are)."""
    arch = design_arch(init_kwargs)
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}
    w_dim = arch.w_dim

    def fc(name, n_in, n_out, lr=1.0, bias=0.0, wstd=1.0):
        sd[f"{name}.weight"] = rng.standard_normal((n_out, n_in)) * (wstd / lr)
        sd[f"{name}.bias"] = (bias + 0.1 * rng.standard_normal(n_out)) / lr

    if arch.c_dim:
        fc("mapping.embed", arch.c_dim, w_dim)
    feats = [arch.z_dim + (w_dim if arch.c_dim else 0)] + [w_dim] * arch.mapping_layers
    for i in range(arch.mapping_layers):
        fc(f"mapping.fc{i}", feats[i], feats[i + 1], lr=arch.mapping_lr)
    sd["mapping.w_avg"] = 0.3 * rng.standard_normal(w_dim)

    c0 = arch.input_channels
    freqs = rng.standard_normal((c0, 2))
    radii = np.sqrt(np.sum(freqs**2, axis=1, keepdims=True))
    freqs /= radii * np.exp(radii**2) ** 0.25
    sd["synthesis.input.weight"] = rng.standard_normal((c0, c0))
    sd["synthesis.input.affine.weight"] = 0.2 * rng.standard_normal((4, w_dim))
    sd["synthesis.input.affine.bias"] = np.array([1.0, 0, 0, 0]) + 0.1 * rng.standard_normal(4)
    sd["synthesis.input.transform"] = np.eye(3)
    sd["synthesis.input.freqs"] = freqs * arch.input_bandwidth
    sd["synthesis.input.phases"] = rng.uniform(size=c0) - 0.5
    for ly in arch.layers:
        p = f"synthesis.{ly.name}"
        k = ly.conv_kernel
        sd[f"{p}.weight"] = rng.standard_normal((ly.out_channels, ly.in_channels, k, k))
        sd[f"{p}.bias"] = 0.1 * rng.standard_normal(ly.out_channels)
        sd[f"{p}.magnitude_ema"] = np.asarray(rng.uniform(0.5, 2.0))
        fu = design_lowpass_filter(
            ly.up_taps, ly.in_cutoff, ly.in_half_width * 2, ly.tmp_sampling_rate
        )
        fd = design_lowpass_filter(
            ly.down_taps, ly.out_cutoff, ly.out_half_width * 2, ly.tmp_sampling_rate, ly.down_radial
        )
        if fu is not None:
            sd[f"{p}.up_filter"] = fu.astype(np.float32)
        if fd is not None:
            sd[f"{p}.down_filter"] = fd.astype(np.float32)
        fc(f"{p}.affine", w_dim, ly.in_channels, bias=1.0)
    params = {
        k: torch.tensor(np.asarray(v, np.float32), dtype=dtype, device=device)
        for k, v in sd.items()
    }
    return params, arch


def _arch_from_attrs(attrs: dict, tensors: dict, source: str) -> Arch:
    """:class:`Arch` from the module attributes of a flattened NVIDIA pickle."""
    top, syn, inp = attrs[""], attrs["synthesis."], attrs["synthesis.input."]
    if top.get("__class__") != "Generator" or syn.get("__class__") != "SynthesisNetwork":
        raise ValueError(f"{source}: not a StyleGAN3 generator ({top.get('__class__')!r})")

    def wh(v):
        a = np.broadcast_to(np.asarray(v), [2])
        return int(a[0]), int(a[1])

    layers = []
    for name in syn["layer_names"]:
        a = attrs[f"synthesis.{name}."]
        layers.append(
            Layer(
                name=name,
                is_torgb=bool(a["is_torgb"]),
                is_critically_sampled=bool(a["is_critically_sampled"]),
                in_channels=int(a["in_channels"]),
                out_channels=int(a["out_channels"]),
                in_size=wh(a["in_size"]),
                out_size=wh(a["out_size"]),
                in_sampling_rate=float(a["in_sampling_rate"]),
                out_sampling_rate=float(a["out_sampling_rate"]),
                tmp_sampling_rate=float(a["tmp_sampling_rate"]),
                in_cutoff=float(a["in_cutoff"]),
                out_cutoff=float(a["out_cutoff"]),
                in_half_width=float(a["in_half_width"]),
                out_half_width=float(a["out_half_width"]),
                conv_kernel=int(a["conv_kernel"]),
                up_factor=int(a["up_factor"]),
                up_taps=int(a["up_taps"]),
                down_factor=int(a["down_factor"]),
                down_taps=int(a["down_taps"]),
                down_radial=bool(a["down_radial"]),
                padding=tuple(int(v) for v in a["padding"]),  # type: ignore[arg-type]
                conv_clamp=None if a.get("conv_clamp") is None else float(a["conv_clamp"]),
            )
        )
    n_map = attrs["mapping."]["num_layers"]
    return Arch(
        z_dim=int(top["z_dim"]),
        c_dim=int(top["c_dim"]),
        w_dim=int(top["w_dim"]),
        num_ws=int(top["num_ws"]),
        img_resolution=int(top["img_resolution"]),
        img_channels=int(top["img_channels"]),
        mapping_layers=int(n_map),
        mapping_lr=float(attrs["mapping.fc0."]["bias_gain"]),
        output_scale=float(syn["output_scale"]),
        input_channels=int(inp["channels"]),
        input_size=wh(inp["size"]),
        input_sampling_rate=float(inp["sampling_rate"]),
        input_bandwidth=float(inp["bandwidth"]),
        layers=tuple(layers),
        init_kwargs=dict(top.get("_init_kwargs") or {}),
    )


def load_nvidia_pickle(
    path: str | os.PathLike, device="cpu", dtype=torch.float32, which: str = "G_ema"
) -> tuple[dict[str, torch.Tensor], Arch]:
    """An NVIDIA StyleGAN3 ``.pkl`` -> (state dict of ``which``, :class:`Arch`), read with
    jaxedit's restricted unpickler (nothing in the file is executed)."""
    from converters import _pickle
    from converters.stylegan2.nvidia import flatten_network, select_network

    source = os.fspath(path)
    net, _ = select_network(_pickle.load_pickle(source), source, which)
    tensors, attrs = flatten_network(net, source)
    arch = _arch_from_attrs(attrs, tensors, source)
    params = {k: torch.tensor(np.asarray(v), device=device).to(dtype) for k, v in tensors.items()}
    return params, arch


def state_dict_numpy(params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The state dict as float32 NumPy arrays (what NVIDIA's pickles hold)."""
    return {k: v.detach().cpu().to(torch.float32).numpy() for k, v in params.items()}


# ------------------------------------------------------------------------------------------------
# forward


def _fc(p, name, x, lr=1.0, act="linear"):
    w = p[f"{name}.weight"]
    x = F.linear(x, w * (lr / math.sqrt(w.shape[1])), p[f"{name}.bias"] * lr)
    return F.leaky_relu(x, 0.2) * math.sqrt(2) if act == "lrelu" else x


def _norm(x):
    return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()


def mapping(p, arch: Arch, z, c=None, psi: float = 1.0, cutoff: int | None = None):
    """z [N, z_dim] (c [N, c_dim]) -> ws [N, num_ws, w_dim], truncated toward ``mapping.w_avg``
    by ``psi`` on the first ``cutoff`` slots (None: all)."""
    x = _norm(z)
    if arch.c_dim:
        x = torch.cat([x, _norm(_fc(p, "mapping.embed", c))], dim=1)
    for i in range(arch.mapping_layers):
        x = _fc(p, f"mapping.fc{i}", x, arch.mapping_lr, "lrelu")
    ws = x[:, None].expand(-1, arch.num_ws, -1)
    if psi != 1:
        n = arch.num_ws if cutoff is None else cutoff
        w_avg = p["mapping.w_avg"]
        ws = torch.cat([w_avg + psi * (ws[:, :n] - w_avg), ws[:, n:]], dim=1)
    return ws


def synthesis_input(p, arch: Arch, w, transform=None):
    """The Fourier-feature input [N, C, H, W] of w [N, w_dim]; ``transform`` [3, 3] overrides the
    ``synthesis.input.transform`` buffer (the inverse of the user transform of the image)."""
    t = _fc(p, "synthesis.input.affine", w)  # (r_c, r_s, t_x, t_y)
    t = t / t[:, :2].norm(dim=1, keepdim=True)
    one, zero = torch.ones_like(t[:, 0]), torch.zeros_like(t[:, 0])
    m_r = torch.stack(
        [
            torch.stack([t[:, 0], -t[:, 1], zero], 1),
            torch.stack([t[:, 1], t[:, 0], zero], 1),
            torch.stack([zero, zero, one], 1),
        ],
        1,
    )
    m_t = torch.stack(
        [
            torch.stack([one, zero, -t[:, 2]], 1),
            torch.stack([zero, one, -t[:, 3]], 1),
            torch.stack([zero, zero, one], 1),
        ],
        1,
    )
    user = p["synthesis.input.transform"] if transform is None else transform
    tr = m_r @ m_t @ user.to(w.dtype)  # [N, 3, 3]
    freqs0 = p["synthesis.input.freqs"]  # [C, 2]
    phases = p["synthesis.input.phases"] + (freqs0 @ tr[:, :2, 2:]).squeeze(2)  # [N, C]
    freqs = freqs0 @ tr[:, :2, :2]  # [N, C, 2]
    bw, sr = arch.input_bandwidth, arch.input_sampling_rate
    amp = (1 - (freqs.norm(dim=2) - bw) / (sr / 2 - bw)).clamp(0, 1)
    sw, sh = arch.input_size
    # affine_grid(align_corners=False) of diag(0.5 W / sr, 0.5 H / sr): pixel centres
    gx = (torch.arange(sw, dtype=w.dtype, device=w.device) * 2 + 1 - sw) / (2 * sr)
    gy = (torch.arange(sh, dtype=w.dtype, device=w.device) * 2 + 1 - sh) / (2 * sr)
    x = (
        gx[None, None, :, None] * freqs[:, None, None, :, 0]
        + gy[None, :, None, None] * freqs[:, None, None, :, 1]
        + phases[:, None, None, :]
    )  # [N, H, W, C]
    x = torch.sin(x * (2 * math.pi)) * amp[:, None, None, :]
    weight = p["synthesis.input.weight"]
    x = x @ (weight / math.sqrt(arch.input_channels)).T
    return x.permute(0, 3, 1, 2)


def _fir(x, f, gain: float, down: int = 1):
    """Depthwise convolution of NCHW ``x`` (already padded) with the FIR ``f`` (1-D separable or
    2-D) times ``gain``, keeping every ``down``-th output: NVIDIA's upfirdn2d filter step.

    A grouped conv; in float64 the channels are folded into the batch instead (one conv with a
    single filter), because CPU PyTorch runs a float64 grouped conv one group at a time."""
    n, c = x.shape[:2]
    f = f.to(x.dtype).flip(list(range(f.ndim)))
    fold = x.dtype == torch.float64
    if fold:
        x, c = x.reshape(n * c, 1, *x.shape[2:]), 1
    if f.ndim == 2:
        x = F.conv2d(x, (f * gain)[None, None].expand(c, 1, -1, -1), stride=down, groups=c)
    else:
        f = f * math.sqrt(gain)
        x = F.conv2d(x, f[None, None, None, :].expand(c, 1, 1, -1), stride=(1, down), groups=c)
        x = F.conv2d(x, f[None, None, :, None].expand(c, 1, -1, 1), stride=(down, 1), groups=c)
    return x.reshape(n, -1, *x.shape[2:]) if fold else x


def _up_fir(x, f, up: int, padding):
    """NVIDIA ``upfirdn2d(x, f, up=up, padding=padding, gain=up**2)`` (zero insertion, pad,
    convolve) computed polyphase, as a strided transposed depthwise conv (the inserted zeros are
    never multiplied): along one axis, with ``T = conv_transpose(x, f, stride=up)`` of length
    ``(n - 1) up + K``, the result is ``T`` padded by ``(p0 - K + 1, up + p1 - K)`` (negative =
    cropped). 1-D filters run as one pass per axis (W, then H)."""
    c = x.shape[1]
    px0, px1, py0, py1 = padding
    f = f.to(x.dtype)
    k = f.shape[-1]
    if f.ndim == 2:
        x = F.conv_transpose2d(x, (f * up**2)[None, None].expand(c, 1, -1, -1), stride=up, groups=c)
        return F.pad(x, [px0 - k + 1, up + px1 - k, py0 - k + 1, up + py1 - k])
    f = f * up
    x = F.conv_transpose2d(x, f[None, None, None, :].expand(c, 1, 1, -1), stride=(1, up), groups=c)
    x = F.pad(x, [px0 - k + 1, up + px1 - k])
    x = F.conv_transpose2d(x, f[None, None, :, None].expand(c, 1, -1, 1), stride=(up, 1), groups=c)
    return F.pad(x, [0, 0, py0 - k + 1, up + py1 - k])


def filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp):
    """NVIDIA ``filtered_lrelu``: the values of its reference path (``_filtered_lrelu_ref``:
    bias, upfirdn2d up with gain up², lrelu·gain, clamp, upfirdn2d down), the up-sampling
    polyphase and the down-sampling strided."""
    x = x + b[None, :, None, None]
    if fu is not None:
        x = _up_fir(x, fu, up, padding)
    else:  # no up filter: up == 1 (ToRGB), only the padding
        if up != 1:
            raise ValueError("an up-sampling layer needs an up filter")
        x = F.pad(x, list(padding))
    x = F.leaky_relu(x, slope) if slope != 1 else x
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    if fd is not None:
        x = _fir(x, fd, 1.0, down)
    elif down > 1:
        x = x[:, :, ::down, ::down]
    return x


def synthesis_layer(p, ly: Layer, x, w):
    """One ``SynthesisLayer`` (modulated conv + filtered lrelu) of x [N, C_in, H, W], w [N, w_dim]."""
    pre = f"synthesis.{ly.name}"
    weight = p[f"{pre}.weight"]
    s = _fc(p, f"{pre}.affine", w)
    gain_in = p[f"{pre}.magnitude_ema"].rsqrt()
    if ly.is_torgb:
        s = s * (1 / math.sqrt(ly.in_channels * ly.conv_kernel**2))
        y = F.conv2d(x * (s * gain_in)[:, :, None, None], weight, padding=ly.conv_kernel - 1)
    else:
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()  # over the whole batch, as NVIDIA does
        y = F.conv2d(x * (s * gain_in)[:, :, None, None], weight, padding=ly.conv_kernel - 1)
        d = (s.square() @ weight.square().sum((2, 3)).T + 1e-8).rsqrt()  # [N, O]
        y = y * d[:, :, None, None]
    return filtered_lrelu(
        y,
        p.get(f"{pre}.up_filter"),
        p.get(f"{pre}.down_filter"),
        p[f"{pre}.bias"],
        ly.up_factor,
        ly.down_factor,
        ly.padding,
        1.0 if ly.is_torgb else math.sqrt(2),
        1.0 if ly.is_torgb else 0.2,
        ly.conv_clamp,
    )


def synthesis_activations(p, arch: Arch, ws, transform=None):
    """ws [N, num_ws, w_dim] -> (image [N, C, H, W] x ``output_scale``, ``{'input': ...,
    layer name: ...}``: every layer's output, the last one before the output scale)."""
    x = synthesis_input(p, arch, ws[:, 0], transform)
    acts = {"input": x}
    for i, ly in enumerate(arch.layers):
        x = synthesis_layer(p, ly, x, ws[:, i + 1])
        acts[ly.name] = x
    return x * arch.output_scale if arch.output_scale != 1 else x, acts


def synthesis(p, arch: Arch, ws, transform=None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] -> image [N, C, H, W] (x ``output_scale``); ``transform`` [3, 3]
    overrides the ``synthesis.input.transform`` buffer."""
    x = synthesis_input(p, arch, ws[:, 0], transform)
    for i, ly in enumerate(arch.layers):
        x = synthesis_layer(p, ly, x, ws[:, i + 1])
    return x * arch.output_scale if arch.output_scale != 1 else x


def generate(p, arch: Arch, z, c=None, psi: float = 1.0, cutoff: int | None = None, transform=None):
    """z [N, z_dim] -> image [N, C, H, W] (``G(z, c, truncation_psi, truncation_cutoff)``)."""
    return synthesis(p, arch, mapping(p, arch, z, c, psi, cutoff), transform)


def styles(p, arch: Arch, ws) -> dict[str, torch.Tensor]:
    """Every layer's raw affine output (``style_<name>.affine`` of the fixtures)."""
    out = {"input": _fc(p, "synthesis.input.affine", ws[:, 0])}
    for i, ly in enumerate(arch.layers):
        out[ly.name] = _fc(p, f"synthesis.{ly.name}.affine", ws[:, i + 1])
    return out
