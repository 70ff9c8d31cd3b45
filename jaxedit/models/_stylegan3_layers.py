"""StyleGAN3's configuration and layers (Flax NNX), the pieces `StyleGAN3Generator` is built from.

Conventions as in `jaxedit.models.stylegan2`: NHWC activations, HWIO conv kernels, dense kernels
``[in, out]``, raw (reference) parameters with the equalized-learning-rate gains applied at run
time. The layer geometry and the low-pass filters are not parameters: they follow from the
config (`converters.stylegan3.design`, NVIDIA's formulas, bit-exact in float32; the readers
check the stored filters against them).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from converters.stylegan3 import design

from .._ops import Precision, as_precision
from . import _stylegan3_ops as ops
from ._common import Buffer, ConfigIO, _cast
from ._stylegan2_layers import FullyConnected, MappingNetwork

SPACES = ("w", "wplus", "z", "s")


@dataclasses.dataclass(frozen=True)
class StyleGAN3Config(ConfigIO):
    """Every architecture field of a StyleGAN3 (T or R) generator (hashable, JSON-serializable).

    The per-layer geometry (sizes, channels, sampling rates, cutoffs, filters, paddings) follows
    from these fields exactly as in NVIDIA's ``SynthesisNetwork`` (see `layers`).

    Attributes:
      z_dim, c_dim, w_dim: latent, conditioning and intermediate latent sizes.
      img_resolution, img_channels: output side and channels.
      mapping_layers: mapping FC layers (2 in the official configs).
      mapping_lr_multiplier: equalized-lr multiplier of the mapping FCs (0.01).
      embed_features: width of the class embedding (``w_dim`` in NVIDIA's code; 0 if c_dim 0).
      layer_features: width of the hidden mapping layers (``w_dim`` in NVIDIA's code).
      channel_base, channel_max: channels ``rint(min(channel_base / 2 / cutoff, channel_max))``.
      num_layers, num_critical: synthesis layers (without input and ToRGB), critically sampled ones.
      first_cutoff, first_stopband, last_stopband_rel: the frequency progression.
      margin_size: extra pixels around the image in the intermediate layers.
      output_scale: factor on the ToRGB output (0.25).
      conv_kernel: 3 (config T) or 1 (config R).
      filter_size, lrelu_upsampling: low-pass taps per factor (6) and activation oversampling (2).
      use_radial_filters: 2-D jinc down filters in the non-critical layers (config R).
      conv_clamp: clamp of every layer's output (``None`` = off).
      num_fp16_res: informational (the official fp16 layers run in float32 here).
      has_w_avg: whether ``w_avg`` is meaningful (truncation needs it).
    """

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int = 3
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    embed_features: int = 0
    layer_features: int = 0
    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14
    num_critical: int = 2
    first_cutoff: float = 2.0
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3
    margin_size: int = 10
    output_scale: float = 0.25
    conv_kernel: int = 3
    filter_size: int = 6
    lrelu_upsampling: int = 2
    use_radial_filters: bool = False
    conv_clamp: float | None = 256.0
    num_fp16_res: int = 0
    has_w_avg: bool = True

    def __post_init__(self):
        if self.img_resolution < 1 or self.img_channels < 1 or self.w_dim < 1:
            raise ValueError("img_resolution, img_channels and w_dim must be positive")
        if self.z_dim < 0 or self.c_dim < 0 or (self.z_dim == 0 and self.c_dim == 0):
            raise ValueError("z_dim and c_dim must be >= 0 and not both 0")
        if self.mapping_layers < 1:
            raise ValueError(f"mapping_layers must be >= 1, got {self.mapping_layers}")
        if self.c_dim > 0 and self.embed_features <= 0:
            raise ValueError("a conditional generator (c_dim > 0) needs embed_features > 0")
        if self.mapping_layers > 1 and self.layer_features <= 0:
            raise ValueError("layer_features must be > 0 with more than one mapping layer")
        if self.conv_kernel < 1 or self.filter_size < 1 or self.lrelu_upsampling < 1:
            raise ValueError("conv_kernel, filter_size and lrelu_upsampling must be >= 1")
        _ = self.layers  # the geometry must exist (raises ValueError otherwise)

    @property
    def num_ws(self) -> int:
        """W+ slots: the input, ``num_layers`` layers and the ToRGB."""
        return self.num_layers + 2

    @property
    def config_name(self) -> str:
        """``"R"`` (radial filters) or ``"T"``."""
        return "R" if self.use_radial_filters else "T"

    @property
    def geometry(self) -> dict[str, Any]:
        """`converters.stylegan3.design.layer_geometry` of this config (``input`` + ``layers``)."""
        return _geometry(
            self.img_resolution,
            self.img_channels,
            self.channel_base,
            self.channel_max,
            self.num_layers,
            self.num_critical,
            self.first_cutoff,
            self.first_stopband,
            self.last_stopband_rel,
            self.margin_size,
            self.conv_kernel,
            self.filter_size,
            self.lrelu_upsampling,
            self.use_radial_filters,
            self.num_fp16_res,
        )

    @property
    def layers(self) -> list[dict[str, Any]]:
        """Per synthesis layer (``L0_..`` .. ToRGB): name, sizes, channels, rates, cutoffs, taps."""
        return self.geometry["layers"]

    @property
    def layer_names(self) -> tuple[str, ...]:
        """``("L0_36_512", ..., "L14_1024_3")``: the reference's layer names."""
        return tuple(layer["name"] for layer in self.layers)

    def layer_summary(self) -> list[dict[str, Any]]:
        """One row per layer, in W+ slot order: ``name``, ``slot``, ``size``, ``in_channels``,
        ``out_channels``, ``sampling_rate``, ``cutoff`` and (not for the input) ``up``,
        ``down``, ``up_taps``, ``down_taps``, ``down_radial``, ``critically_sampled``,
        ``official_fp16`` (whether NVIDIA's config runs the layer in float16 on CUDA)."""
        g = self.geometry
        rows: list[dict[str, Any]] = [
            {
                "name": "input",
                "slot": 0,
                "size": g["input"]["size"],
                "in_channels": 4,
                "out_channels": g["input"]["channels"],
                "sampling_rate": g["input"]["sampling_rate"],
                "cutoff": g["input"]["bandwidth"],
            }
        ]
        for i, lay in enumerate(g["layers"]):
            rows.append(
                {
                    "name": lay["name"],
                    "slot": i + 1,
                    "size": lay["out_size"],
                    "in_channels": lay["in_channels"],
                    "out_channels": lay["out_channels"],
                    "sampling_rate": lay["out_sampling_rate"],
                    "cutoff": lay["out_cutoff"],
                    "up": lay["up_factor"],
                    "down": lay["down_factor"],
                    "up_taps": lay["up_taps"],
                    "down_taps": lay["down_taps"],
                    "down_radial": lay["down_radial"],
                    "critically_sampled": lay["is_critically_sampled"],
                    "official_fp16": lay["use_fp16"],
                }
            )
        return rows

    def notes(self) -> list[str]:
        """What ``inspect`` says about running this config in jaxedit (W+ slots, fp16 layers)."""
        out = [f"StyleGAN3-{self.config_name}: {self.num_ws} W+ slots (slot 0: the input layer)"]
        fp16 = [r["name"] for r in self.layers if r["use_fp16"]]
        if fp16 and self.num_fp16_res:
            out.append(
                f"the official config runs {', '.join(fp16)} in float16 (num_fp16_res="
                f"{self.num_fp16_res}); jaxedit runs every layer in float32 (or float64)"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StyleGAN3Config:
        unknown = cls.unknown_fields(d)
        if unknown:
            raise ValueError(f"unknown StyleGAN3 config fields: {unknown}")
        return cls(**dict(d))


@functools.lru_cache(maxsize=64)
def _geometry(*args) -> dict[str, Any]:
    names = (
        "img_resolution img_channels channel_base channel_max num_layers num_critical "
        "first_cutoff first_stopband last_stopband_rel margin_size conv_kernel filter_size "
        "lrelu_upsampling use_radial_filters num_fp16_res"
    ).split()
    return design.layer_geometry(**dict(zip(names, args)))


@functools.lru_cache(maxsize=256)
def _filters(key: tuple) -> tuple[np.ndarray | None, np.ndarray | None]:
    return design.layer_filters(dict(key))


class SynthesisInput(nnx.Module):
    """Fourier features: ``sin(2 pi (freqs . (T grid) + phases))``, damped out of band, then a
    1x1 mapping. ``T`` = rotation and translation from the affine (w) and the user transform.

    weight: ``[C, C]`` (``[in, out]``), freqs ``[C, 2]``, phases ``[C]``, transform ``[3, 3]``
    (buffers), affine: w_dim -> 4 ``(r_c, r_s, t_x, t_y)``.
    """

    def __init__(self, cfg: StyleGAN3Config, *, rngs: nnx.Rngs):
        g = cfg.geometry["input"]
        c = g["channels"]
        self.channels, self.size = c, g["size"]
        self.sampling_rate, self.bandwidth = g["sampling_rate"], g["bandwidth"]
        self.affine = FullyConnected(cfg.w_dim, 4, rngs=rngs)
        self.affine.weight[...] = jnp.zeros((cfg.w_dim, 4))
        self.affine.bias[...] = jnp.asarray([1.0, 0.0, 0.0, 0.0])
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (c, c)))
        freqs = jax.random.normal(rngs.params(), (c, 2))
        radii = jnp.sqrt(jnp.sum(jnp.square(freqs), axis=1, keepdims=True))
        freqs = freqs / (radii * jnp.exp(jnp.square(radii)) ** 0.25) * self.bandwidth
        self.freqs = Buffer(freqs)
        self.phases = Buffer(jax.random.uniform(rngs.params(), (c,)) - 0.5)
        self.transform = Buffer(jnp.eye(3))

    def __call__(
        self, t: jax.Array, transform: jax.Array, *, precision: Precision = "highest"
    ) -> jax.Array:
        """t: ``[N, 4]`` raw affine output; transform ``[N, 3, 3]`` -> ``[N, size, size, C]``."""
        dt = t.dtype
        prec = as_precision(precision)
        t = t / jnp.sqrt(jnp.sum(jnp.square(t[:, :2]), axis=1, keepdims=True))
        n = t.shape[0]
        zero, one = jnp.zeros((n,), dt), jnp.ones((n,), dt)
        m_r = jnp.stack(
            [
                jnp.stack([t[:, 0], -t[:, 1], zero], -1),
                jnp.stack([t[:, 1], t[:, 0], zero], -1),
                jnp.stack([zero, zero, one], -1),
            ],
            axis=1,
        )
        m_t = jnp.stack(
            [
                jnp.stack([one, zero, -t[:, 2]], -1),
                jnp.stack([zero, one, -t[:, 3]], -1),
                jnp.stack([zero, zero, one], -1),
            ],
            axis=1,
        )
        tr = jnp.matmul(jnp.matmul(m_r, m_t, precision=prec), transform, precision=prec)
        freqs0 = _cast(self.freqs, dt)
        phases = _cast(self.phases, dt)[None] + jnp.einsum(
            "cj,nj->nc", freqs0, tr[:, :2, 2], precision=prec
        )
        freqs = jnp.einsum("cj,njk->nck", freqs0, tr[:, :2, :2], precision=prec)  # [N, C, 2]
        norm = jnp.sqrt(jnp.sum(jnp.square(freqs), axis=2))
        amp = jnp.clip(
            1 - (norm - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth), 0, 1
        )
        # torch affine_grid (align_corners=False): pixel centres at (2i+1)/S - 1, times theta
        coords = ((2 * np.arange(self.size) + 1) / self.size - 1) * (
            0.5 * self.size / self.sampling_rate
        )
        g = jnp.asarray(coords, dt)
        x = (
            g[None, None, :, None] * freqs[:, None, None, :, 0]
            + g[None, :, None, None] * freqs[:, None, None, :, 1]
            + phases[:, None, None, :]
        )
        x = jnp.sin(x * (2 * np.pi)) * amp[:, None, None, :]
        w = _cast(self.weight, dt) * (1 / math.sqrt(self.channels))
        return jnp.einsum("nhwi,io->nhwo", x, w, precision=prec)


class SynthesisLayer(nnx.Module):
    """Modulated conv (``input_gain = rsqrt(magnitude_ema)``) + filtered leaky ReLU (+ clamp).

    weight ``[k, k, C_in, C_out]``, bias ``[C_out]``, magnitude_ema ``[]`` (buffer), affine
    w_dim -> C_in (bias init 1). The ToRGB (last) layer: 1x1, no demodulation, style times
    ``1/sqrt(C_in)``, linear, no resampling.
    """

    def __init__(self, layer: dict[str, Any], cfg: StyleGAN3Config, *, rngs: nnx.Rngs):
        self.name = layer["name"]
        self.is_torgb = bool(layer["is_torgb"])
        self.up, self.down = int(layer["up_factor"]), int(layer["down_factor"])
        self.padding = tuple(int(p) for p in layer["padding"])
        self.conv_clamp = cfg.conv_clamp
        self.filter_key = tuple(sorted((k, _hashable(v)) for k, v in layer.items()))
        k, cin, cout = layer["conv_kernel"], layer["in_channels"], layer["out_channels"]
        self.affine = FullyConnected(cfg.w_dim, cin, bias_init=1.0, rngs=rngs)
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (k, k, cin, cout)))
        self.bias = nnx.Param(jnp.zeros((cout,)))
        self.magnitude_ema = Buffer(jnp.ones(()))

    def filters(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The static ``(up_filter, down_filter)`` of this layer (float32, as the reference's)."""
        return _filters(self.filter_key)

    def __call__(
        self, x: jax.Array, style: jax.Array, *, precision: Precision = "highest"
    ) -> jax.Array:
        """x ``[N, in_size, in_size, C_in]``, style ``[N, C_in]`` raw affine output."""
        dt = x.dtype
        w = _cast(self.weight, dt)
        s = style
        if self.is_torgb:
            s = s * (1 / math.sqrt(w.shape[2] * w.shape[0] * w.shape[1]))
        gain = jax.lax.rsqrt(_cast(self.magnitude_ema, dt))
        x = ops.modulated_conv2d(
            x,
            w,
            s,
            demodulate=not self.is_torgb,
            padding=w.shape[0] - 1,
            input_gain=gain,
            precision=precision,
        )
        fu, fd = self.filters()
        return ops.filtered_lrelu(
            x,
            fu,
            fd,
            _cast(self.bias, dt),
            up=self.up,
            down=self.down,
            padding=cast(Any, self.padding),
            gain=1.0 if self.is_torgb else math.sqrt(2),
            slope=1.0 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
            precision=precision,
        )


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


class SynthesisNetwork(nnx.Module):
    """``input`` then the layers ``L0_..`` .. ``L{num_layers}_..`` (ToRGB), as attributes."""

    def __init__(self, cfg: StyleGAN3Config, *, rngs: nnx.Rngs):
        self.input = SynthesisInput(cfg, rngs=rngs)
        self.layer_names = cfg.layer_names
        for layer in cfg.layers:
            setattr(self, layer["name"], SynthesisLayer(layer, cfg, rngs=rngs))


def mapping_network(cfg: StyleGAN3Config, *, rngs: nnx.Rngs) -> MappingNetwork:
    """StyleGAN2's mapping network (the same computation in NVIDIA's StyleGAN3 code)."""
    return MappingNetwork(cast(Any, cfg), rngs=rngs)


__all__ = ["SPACES", "StyleGAN3Config", "SynthesisInput", "SynthesisLayer", "SynthesisNetwork"]
