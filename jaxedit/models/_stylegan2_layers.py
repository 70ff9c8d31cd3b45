"""StyleGAN2's configuration and layers (Flax NNX), the pieces `StyleGAN2Generator` is built from.

Conventions as in `jaxedit.models.stylegan2`: NHWC activations, HWIO conv kernels, raw
(reference) parameters with the equalized-learning-rate gains applied at run time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from .. import _ops
from .._ops import Precision
from ._common import Buffer, ConfigIO, _cast

ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("const", "random", "none")
SPACES = ("w", "wplus", "z", "s")


# ---- Configuration -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StyleGAN2Config(ConfigIO):
    """Every architecture field of a StyleGAN2 generator (hashable, JSON-serializable).

    Attributes:
      z_dim, c_dim, w_dim: latent, conditioning and intermediate latent sizes.
      img_resolution: output side (power of two, 4..1024 or larger).
      img_channels: output channels (3 for RGB).
      channels: ``((res, C_res), ...)`` for every block resolution 4..img_resolution, read from
        the checkpoint (never from a hard-coded table).
      mapping_layers: number of mapping FC layers.
      mapping_lr_multiplier: equalized-lr multiplier of the mapping FCs (0.01 in NVIDIA's code).
      embed_features: width of the class embedding (0 when ``c_dim == 0``).
      layer_features: width of the hidden mapping layers.
      architecture: ``"skip"`` (default), ``"orig"`` or ``"resnet"``.
      conv_clamp: clamp of conv/ToRGB outputs (``None`` = off); applies in float32 too.
      resample_kernel: 1-D taps of the separable FIR (``[1, 3, 3, 1]``).
      use_noise: whether synthesis layers have noise inputs.
      has_w_avg: whether ``w_avg`` is meaningful (truncation needs it).
      num_fp16_res: informational; jaxedit chooses its own compute dtype.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    channels: tuple[tuple[int, int], ...]
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    embed_features: int = 0
    layer_features: int = 0
    architecture: str = "skip"
    conv_clamp: float | None = None
    resample_kernel: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)
    use_noise: bool = True
    has_w_avg: bool = True
    num_fp16_res: int = 0

    def __post_init__(self):
        r = self.img_resolution
        if r < 4 or r & (r - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {r}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        chans = dict(self.channels)
        missing = [res for res in self.block_resolutions if res not in chans]
        if missing:
            raise ValueError(f"channels has no entry for resolutions {missing}")
        if self.mapping_layers < 1:
            raise ValueError(f"mapping_layers must be >= 1, got {self.mapping_layers}")
        if self.c_dim > 0 and self.embed_features <= 0:
            raise ValueError("a conditional generator (c_dim > 0) needs embed_features > 0")
        if self.z_dim <= 0 and self.c_dim <= 0:
            raise ValueError("z_dim and c_dim cannot both be 0")

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(2, int(math.log2(self.img_resolution)) + 1))

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.img_resolution)) - 2

    def channels_at(self, res: int) -> int:
        return dict(self.channels)[res]

    @classmethod
    def create(
        cls, channels: Mapping[int, int] | Sequence[tuple[int, int]], **kw
    ) -> StyleGAN2Config:
        """Build a config from a ``{res: channels}`` mapping (the rest as keyword fields)."""
        items = channels.items() if isinstance(channels, Mapping) else channels
        kw.setdefault("embed_features", kw.get("w_dim", 0) if kw.get("c_dim", 0) else 0)
        kw.setdefault("layer_features", kw.get("w_dim", 0))
        if kw.get("resample_kernel") is not None:
            kw["resample_kernel"] = tuple(float(t) for t in kw["resample_kernel"])
        return cls(channels=tuple(sorted((int(r), int(c)) for r, c in items)), **kw)

    @classmethod
    def from_channel_base(cls, channel_base: int, channel_max: int, img_resolution: int, **kw):
        """NVIDIA's table: ``C_R = min(channel_base // R, channel_max)``."""
        res = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        return cls.create(
            {r: min(channel_base // r, channel_max) for r in res},
            img_resolution=img_resolution,
            **kw,
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channels"] = {str(r): c for r, c in self.channels}
        d["resample_kernel"] = list(self.resample_kernel)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StyleGAN2Config:
        unknown = cls.unknown_fields(d)
        if unknown:
            raise ValueError(f"unknown StyleGAN2 config fields: {unknown}")
        d = dict(d)
        channels = {int(k): int(v) for k, v in dict(d.pop("channels")).items()}
        return cls.create(channels, **d)


# ---- Layers --------------------------------------------------------------------------------------
class FullyConnected(nnx.Module):
    """Equalized-lr dense layer: ``act(x @ (W * lr/sqrt(in)) + b * lr)``.

    weight: [in, out] (stored as ``randn / lr``), bias: [out].
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rngs: nnx.Rngs,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        activation: str = "linear",
    ):
        self.lr_multiplier = float(lr_multiplier)
        self.activation = activation
        self.weight = nnx.Param(
            jax.random.normal(rngs.params(), (in_features, out_features)) / lr_multiplier
        )
        self.bias = nnx.Param(jnp.full((out_features,), float(bias_init)))

    def __call__(self, x: jax.Array, precision: Precision = "highest") -> jax.Array:
        """x: [N, in] -> [N, out]."""
        dt = x.dtype
        gain = self.lr_multiplier / math.sqrt(self.weight.shape[0])
        y = jnp.dot(x, _cast(self.weight, dt) * gain, precision=_ops.as_precision(precision))
        return _ops.bias_act(
            y,
            _cast(self.bias, dt) * self.lr_multiplier,
            self.activation,
            gain=math.sqrt(2) if self.activation == "lrelu" else 1.0,
        )


class SynthesisLayer(nnx.Module):
    """Modulated 3x3 conv + noise + bias + lrelu·√2 (+ clamp). weight: [3, 3, C_in, C_out]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        up: int,
        cfg: StyleGAN2Config,
        rngs: nnx.Rngs,
    ):
        self.up, self.resolution = up, resolution
        self.conv_clamp = cfg.conv_clamp
        self.use_noise = cfg.use_noise
        self.kernel_1d = cfg.resample_kernel
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0, rngs=rngs)
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (3, 3, in_channels, out_channels)))
        self.bias = nnx.Param(jnp.zeros((out_channels,)))
        if self.use_noise:
            self.noise_strength = nnx.Param(jnp.zeros(()))
            self.noise_const = Buffer(jax.random.normal(rngs.params(), (resolution, resolution)))

    def __call__(
        self,
        x: jax.Array,
        style: jax.Array,
        noise: jax.Array | None,
        *,
        gain: float = 1.0,
        precision: Precision = "highest",
    ) -> jax.Array:
        """x: [N, H, W, C_in], style: [N, C_in] (affine output), noise: [N, R, R, 1] or None."""
        dt = x.dtype
        x = _ops.modulated_conv2d(
            x,
            _cast(self.weight, dt),
            style,
            demodulate=True,
            up=self.up,
            padding=1,
            kernel_1d=self.kernel_1d,
            precision=precision,
        )
        if noise is not None:
            x = x + noise.astype(dt) * _cast(self.noise_strength, dt)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return _ops.bias_act(
            x, _cast(self.bias, dt), "lrelu", gain=math.sqrt(2) * gain, clamp=clamp
        )


class ToRGB(nnx.Module):
    """Modulated 1x1 conv without demodulation + bias (+ clamp). weight: [1, 1, C_in, img_ch]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        *,
        cfg: StyleGAN2Config,
        rngs: nnx.Rngs,
    ):
        self.conv_clamp = cfg.conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0, rngs=rngs)
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (1, 1, in_channels, out_channels)))
        self.bias = nnx.Param(jnp.zeros((out_channels,)))

    def __call__(self, x: jax.Array, style: jax.Array, *, precision: Precision = "highest"):
        """x: [N, H, W, C_in], style: [N, C_in] raw affine output (the 1/sqrt(C_in) gain is applied here)."""
        dt = x.dtype
        s = style * (1.0 / math.sqrt(self.weight.shape[2]))
        x = _ops.modulated_conv2d(
            x, _cast(self.weight, dt), s, demodulate=False, precision=precision
        )
        return _ops.bias_act(x, _cast(self.bias, dt), "linear", clamp=self.conv_clamp)


class SkipUp(nnx.Module):
    """ResNet-architecture shortcut: 1x1 conv (no bias), FIR ×2 upsample, gain √0.5."""

    def __init__(
        self, in_channels: int, out_channels: int, *, cfg: StyleGAN2Config, rngs: nnx.Rngs
    ):
        self.conv_clamp = cfg.conv_clamp
        self.kernel_1d = cfg.resample_kernel
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (1, 1, in_channels, out_channels)))

    def __call__(self, x: jax.Array, *, precision: Precision = "highest") -> jax.Array:
        dt = x.dtype
        gain = math.sqrt(0.5)
        w = _cast(self.weight, dt) * (1.0 / math.sqrt(self.weight.shape[2]))
        y = _ops.upsample2d(_ops.conv2d(x, w, 0, precision), self.kernel_1d)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return _ops.bias_act(y, None, "linear", gain=gain, clamp=clamp)


class SynthesisBlock(nnx.Module):
    """One resolution: [const] / conv0 (up) / conv1 / [torgb] / [skip]."""

    def __init__(self, in_channels: int, resolution: int, *, cfg: StyleGAN2Config, rngs: nnx.Rngs):
        out_channels = cfg.channels_at(resolution)
        self.resolution = resolution
        self.is_first = in_channels == 0
        self.is_last = resolution == cfg.img_resolution
        self.architecture = cfg.architecture
        self.has_torgb = self.is_last or cfg.architecture == "skip"
        if self.is_first:
            self.const = nnx.Param(jax.random.normal(rngs.params(), (4, 4, out_channels)))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, cfg.w_dim, resolution, up=2, cfg=cfg, rngs=rngs
            )
            if cfg.architecture == "resnet":
                self.skip = SkipUp(in_channels, out_channels, cfg=cfg, rngs=rngs)
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, cfg.w_dim, resolution, up=1, cfg=cfg, rngs=rngs
        )
        if self.has_torgb:
            self.torgb = ToRGB(out_channels, cfg.img_channels, cfg.w_dim, cfg=cfg, rngs=rngs)


class MappingNetwork(nnx.Module):
    """z (and c) -> w: normalize_2nd_moment, [embed], FC stack with lrelu, ``w_avg`` buffer."""

    def __init__(self, cfg: StyleGAN2Config, *, rngs: nnx.Rngs):
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.num_layers = cfg.mapping_layers
        if cfg.c_dim > 0:
            self.embed = FullyConnected(cfg.c_dim, cfg.embed_features, rngs=rngs)
        in_f = cfg.z_dim + (cfg.embed_features if cfg.c_dim > 0 else 0)
        feats = [in_f] + [cfg.layer_features] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        for i in range(cfg.mapping_layers):
            setattr(
                self,
                f"fc{i}",
                FullyConnected(
                    feats[i],
                    feats[i + 1],
                    lr_multiplier=cfg.mapping_lr_multiplier,
                    activation="lrelu",
                    rngs=rngs,
                ),
            )
        self.w_avg = Buffer(jnp.zeros((cfg.w_dim,)))

    def __call__(
        self, z: jax.Array | None, c: jax.Array | None, *, precision: Precision = "highest"
    ):
        """z: [N, z_dim], c: [N, c_dim] -> w: [N, w_dim]."""
        parts = []
        if self.z_dim > 0:
            parts.append(_ops.normalize_2nd_moment(jnp.asarray(z)))  # mapping() checked z
        if self.c_dim > 0:
            parts.append(_ops.normalize_2nd_moment(self.embed(jnp.asarray(c), precision)))
        x = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x, precision)
        return x


class SynthesisNetwork(nnx.Module):
    """Blocks ``b4 .. b{img_resolution}``."""

    def __init__(self, cfg: StyleGAN2Config, *, rngs: nnx.Rngs):
        self.block_names = tuple(f"b{r}" for r in cfg.block_resolutions)
        in_ch = 0
        for r in cfg.block_resolutions:
            setattr(self, f"b{r}", SynthesisBlock(in_ch, r, cfg=cfg, rngs=rngs))
            in_ch = cfg.channels_at(r)
