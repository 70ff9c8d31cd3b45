"""BigGAN-deep as Flax NNX modules, equal to ``pytorch_pretrained_biggan`` (model.py) in eval mode.

Layouts: activations NHWC, conv kernels HWIO, dense kernels ``[in, out]``. Spectral norm is folded
into the weights at conversion (``weight_orig / σ`` with the stored u, v), so there is no power
iteration here.

Conditional batch norm uses the *stored* statistics of ``n_stats`` truncation values. For a
truncation t the reference does ``coef, idx = math.modf(t / (1 / (n_stats - 1)))`` in Python
floats and, if ``coef != 0``, ``stats[idx] * coef + stats[idx + 1] * (1 - coef)`` (the weights are
reversed with respect to a lerp, and float artefacts such as ``0.14 / 0.02 = 7.000000000000001``
matter). `stat_weights` reproduces this exactly on the host; ``truncation`` is therefore a
static Python float everywhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .. import _ops
from .._checks import check_finite, finite_scalar
from .._ops import Precision
from .._typing import (
    ClassVectorsBigGAN,
    Cond,
    CondArray,
    Features,
    FeaturesArray,
    OneHot,
    RGBImages,
    TruncatedNoise,
    Upsampled,
    ZArray,
    ZLatents,
)
from . import _biggan_split
from ._base import AbstractGenerator, LayerFeatures
from ._common import Buffer, ConfigIO, _cast, _jit_method

PRESET_LAYERS: dict[int, tuple[tuple[bool, int, int], ...]] = {
    128: (
        (False, 16, 16),
        (True, 16, 16),
        (False, 16, 16),
        (True, 16, 8),
        (False, 8, 8),
        (True, 8, 4),
        (False, 4, 4),
        (True, 4, 2),
        (False, 2, 2),
        (True, 2, 1),
    ),
}
PRESET_LAYERS[256] = PRESET_LAYERS[128][:5] + ((True, 8, 8), (False, 8, 8)) + PRESET_LAYERS[128][5:]
PRESET_LAYERS[512] = PRESET_LAYERS[256] + ((False, 1, 1), (True, 1, 1))
SPACES = ("z", "embed", "cond")


@dataclasses.dataclass(frozen=True)
class BigGANConfig(ConfigIO):
    """The fields of ``pytorch_pretrained_biggan``'s ``config.json``.

    ``layers``: ``((up, in_mult, out_mult), ...)`` (channels = ``channel_width * mult``);
    self-attention runs before layer ``attention_layer_position``.
    """

    output_dim: int = 128
    z_dim: int = 128
    class_embed_dim: int = 128
    channel_width: int = 128
    num_classes: int = 1000
    layers: tuple[tuple[bool, int, int], ...] = PRESET_LAYERS[128]
    attention_layer_position: int = 8
    eps: float = 1e-4
    n_stats: int = 51

    def __post_init__(self):
        layers = tuple((bool(u), int(i), int(o)) for u, i, o in self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise ValueError("BigGAN config: 'layers' is empty")
        if layers[0][1] != 16:
            raise ValueError(
                f"BigGAN config: the first layer's in_mult must be 16 (gen_z makes "
                f"4x4x16*channel_width), got {layers[0][1]}"
            )
        for k, (_, i, o) in enumerate(layers):
            if o not in (i, i // 2) or (o != i and i % 2):
                raise ValueError(
                    f"BigGAN config: layer {k} maps {i} -> {o} channel multiples; the "
                    f"shortcut only keeps or halves channels"
                )
            if k and layers[k - 1][2] != i:
                raise ValueError(
                    f"BigGAN config: layer {k} in_mult {i} != previous out_mult {layers[k - 1][2]}"
                )
        if layers[-1][2] != 1:
            raise ValueError("BigGAN config: the last layer must output channel_width (out_mult 1)")
        res = 4 * 2 ** sum(u for u, _, _ in layers)
        if res != self.output_dim:
            raise ValueError(
                f"BigGAN config: the layers upsample 4 -> {res}, but output_dim is "
                f"{self.output_dim}"
            )
        if not 0 <= self.attention_layer_position <= len(layers):
            raise ValueError(
                f"BigGAN config: attention_layer_position "
                f"{self.attention_layer_position} outside 0..{len(layers)}"
            )
        if self.n_stats < 2:
            raise ValueError(f"BigGAN config: n_stats must be >= 2, got {self.n_stats}")
        if self.channel_width * self.attention_channels_mult % 8:
            raise ValueError("BigGAN config: attention channels must be divisible by 8")

    @property
    def attention_channels_mult(self) -> int:
        pos = self.attention_layer_position
        return self.layers[pos][1] if pos < len(self.layers) else 8

    @property
    def cond_dim(self) -> int:
        """Length of the conditioning vector ``[z, class embedding]`` (the embedding has z_dim)."""
        return 2 * self.z_dim

    @classmethod
    def preset(cls, output_dim: int, **kw) -> BigGANConfig:
        """The published BigGAN-deep 128 / 256 / 512 architecture."""
        if output_dim not in PRESET_LAYERS:
            raise ValueError(f"no BigGAN-deep preset for {output_dim}px; choose 128, 256 or 512")
        return cls(output_dim=output_dim, layers=PRESET_LAYERS[output_dim], **kw)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = [list(x) for x in self.layers]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BigGANConfig:
        unknown = cls.unknown_fields(d)
        if unknown:
            raise ValueError(f"BigGAN config: unknown field(s) {unknown}")
        kw: dict[str, Any] = {
            k: (tuple(tuple(x) for x in v) if k == "layers" else v) for k, v in d.items()
        }
        return cls(**kw)


def stat_weights(truncation: float, n_stats: int) -> tuple[int, float, float]:
    """``(idx, w_idx, w_next)`` with stats = ``w_idx * stats[idx] + w_next * stats[idx + 1]``,
    exactly as ``BigGANBatchNorm.forward`` (reversed weights, Python-float ``modf``)."""
    t = float(truncation)
    if not 0.0 < t <= 1.0:
        raise ValueError(f"truncation must be in (0, 1], got {truncation!r}")
    step = 1.0 / (n_stats - 1)
    coef, idx = math.modf(t / step)
    idx = int(idx)
    if coef != 0.0:
        return idx, coef, 1.0 - coef
    return idx, 1.0, 0.0


def bn_statistics(
    means: nnx.Variable, variances: nnx.Variable, truncation: float, dt
) -> tuple[jax.Array, jax.Array]:
    """The stored BN statistics at ``truncation`` (mixed as `stat_weights`).

    Args:
      means, variances: ``[n_stats, C]`` stored statistics.
      truncation: static Python float in (0, 1].
      dt: dtype of the result.
    Returns:
      ``(mean, var)``, each ``[C]``.
    """
    idx, a, b = stat_weights(truncation, means.shape[0])
    m, v = _cast(means, dt), _cast(variances, dt)
    if b == 0.0:
        return m[idx], v[idx]
    return m[idx] * a + m[idx + 1] * b, v[idx] * a + v[idx + 1] * b


class Dense(nnx.Module):
    """``x @ kernel (+ bias)``; kernel [in, out] (spectral norm already folded)."""

    def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs, bias: bool = True):
        self.kernel = nnx.Param(
            jax.random.normal(rngs.params(), (in_features, out_features)) / math.sqrt(in_features)
        )
        self.bias = nnx.Param(jnp.zeros((out_features,))) if bias else None

    def __call__(self, x, precision: Precision = "highest"):
        y = jnp.matmul(x, _cast(self.kernel, x.dtype), precision=_ops.as_precision(precision))
        return y if self.bias is None else y + _cast(self.bias, x.dtype)


class Conv(nnx.Module):
    """Stride-1 correlation with 'same' padding; kernel [k, k, in, out], bias [out]."""

    def __init__(self, in_ch: int, out_ch: int, k: int, *, rngs: nnx.Rngs):
        self.kernel = nnx.Param(
            jax.random.normal(rngs.params(), (k, k, in_ch, out_ch)) / math.sqrt(in_ch * k * k)
        )
        self.bias = nnx.Param(jnp.zeros((out_ch,)))

    def __call__(self, x, precision: Precision = "highest", out_channels: int | None = None):
        w, b = _cast(self.kernel, x.dtype), _cast(self.bias, x.dtype)
        if out_channels is not None:
            w, b = w[..., :out_channels], b[:out_channels]
        return _ops.conv2d(x, w, w.shape[0] // 2, precision) + b


class ConditionalBatchNorm(nnx.Module):
    """Stored-statistics BN with a conditional gain ``1 + cond @ scale`` and bias ``cond @ offset``."""

    def __init__(self, channels: int, cond_dim: int, n_stats: int, eps: float, *, rngs: nnx.Rngs):
        self.eps = float(eps)
        self.running_means = Buffer(jnp.zeros((n_stats, channels)))
        self.running_vars = Buffer(jnp.ones((n_stats, channels)))
        self.scale = Dense(cond_dim, channels, bias=False, rngs=rngs)
        self.offset = Dense(cond_dim, channels, bias=False, rngs=rngs)

    def __call__(self, x, cond, truncation: float, precision: Precision = "highest"):
        mean, var = bn_statistics(self.running_means, self.running_vars, truncation, x.dtype)
        gain = 1.0 + self.scale(cond, precision)[:, None, None, :]
        bias = self.offset(cond, precision)[:, None, None, :]
        return (x - mean) / jnp.sqrt(var + self.eps) * gain + bias


class BatchNorm(nnx.Module):
    """Unconditional stored-statistics BN (``F.batch_norm`` in eval mode)."""

    def __init__(self, channels: int, n_stats: int, eps: float):
        self.eps = float(eps)
        self.running_means = Buffer(jnp.zeros((n_stats, channels)))
        self.running_vars = Buffer(jnp.ones((n_stats, channels)))
        self.weight = nnx.Param(jnp.ones((channels,)))
        self.bias = nnx.Param(jnp.zeros((channels,)))

    def __call__(self, x, truncation: float):
        mean, var = bn_statistics(self.running_means, self.running_vars, truncation, x.dtype)
        return (x - mean) / jnp.sqrt(var + self.eps) * _cast(self.weight, x.dtype) + _cast(
            self.bias, x.dtype
        )


def upsample_nearest2x(x: FeaturesArray) -> Upsampled:
    """Nearest-neighbour x2 upsampling: ``[N, H, W, C]`` -> ``[N, 2H, 2W, C]``."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _maxpool2(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class GenBlock(nnx.Module):
    """bn→relu→1×1→bn→relu→[up]→3×3→bn→relu→3×3→bn→relu→1×1, plus the channel-dropping shortcut."""

    def __init__(self, in_ch: int, out_ch: int, up: bool, cfg: BigGANConfig, *, rngs: nnx.Rngs):
        mid = in_ch // 4
        self.up = bool(up)
        self.in_ch, self.out_ch = in_ch, out_ch
        args = (cfg.cond_dim, cfg.n_stats, cfg.eps)
        self.bn_0 = ConditionalBatchNorm(in_ch, *args, rngs=rngs)
        self.conv_0 = Conv(in_ch, mid, 1, rngs=rngs)
        self.bn_1 = ConditionalBatchNorm(mid, *args, rngs=rngs)
        self.conv_1 = Conv(mid, mid, 3, rngs=rngs)
        self.bn_2 = ConditionalBatchNorm(mid, *args, rngs=rngs)
        self.conv_2 = Conv(mid, mid, 3, rngs=rngs)
        self.bn_3 = ConditionalBatchNorm(mid, *args, rngs=rngs)
        self.conv_3 = Conv(mid, out_ch, 1, rngs=rngs)

    def __call__(self, x, cond, truncation: float, precision: Precision = "highest"):
        x0 = x
        x = self.conv_0(jax.nn.relu(self.bn_0(x, cond, truncation, precision)), precision)
        x = jax.nn.relu(self.bn_1(x, cond, truncation, precision))
        if self.up:
            x = upsample_nearest2x(x)
        x = self.conv_1(x, precision)
        x = self.conv_2(jax.nn.relu(self.bn_2(x, cond, truncation, precision)), precision)
        x = self.conv_3(jax.nn.relu(self.bn_3(x, cond, truncation, precision)), precision)
        if self.in_ch != self.out_ch:
            x0 = x0[..., : self.in_ch // 2]
        if self.up:
            x0 = upsample_nearest2x(x0)
        return x + x0


class SelfAttention(nnx.Module):
    """SAGAN attention: θ (C→C/8), max-pooled φ (C→C/8) and g (C→C/2), softmax over φ positions,
    o_conv (C/2→C), ``x + gamma * o``. The 1×1 convs are dense kernels [in, out], no bias."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.theta = Dense(channels, channels // 8, bias=False, rngs=rngs)
        self.phi = Dense(channels, channels // 8, bias=False, rngs=rngs)
        self.g = Dense(channels, channels // 2, bias=False, rngs=rngs)
        self.o_conv = Dense(channels // 2, channels, bias=False, rngs=rngs)
        self.gamma = nnx.Param(jnp.zeros((1,)))

    def __call__(self, x, precision: Precision = "highest"):
        n, h, w, c = x.shape
        prec = _ops.as_precision(precision)
        theta = self.theta(x, precision).reshape(n, h * w, c // 8)
        phi = _maxpool2(self.phi(x, precision)).reshape(n, h * w // 4, c // 8)
        g = _maxpool2(self.g(x, precision)).reshape(n, h * w // 4, c // 2)
        attn = jax.nn.softmax(jnp.einsum("npc,nqc->npq", theta, phi, precision=prec), axis=-1)
        o = jnp.einsum("npq,nqc->npc", attn, g, precision=prec).reshape(n, h, w, c // 2)
        return x + _cast(self.gamma, x.dtype) * self.o_conv(o, precision)


class BigGANGenerator(nnx.Module, AbstractGenerator):
    """BigGAN-deep generator.

    Shapes: z ``[N, z_dim]``, class vectors ``[N, num_classes]`` (one-hot or soft), embeddings
    ``[N, z_dim]``, cond ``[N, 2 * z_dim]`` = ``[z, embed]``, images ``[N, H, W, 3]`` in [-1, 1].
    ``truncation`` is a static Python float in (0, 1] that picks the BN statistics (the caller
    also scales z, e.g. with `truncated_noise_sample`).
    """

    family = "biggan"
    display_name = "BigGAN"
    has_styles = False
    has_noise = False
    truncation_kind = "stats"
    default_space = "z"

    def __init__(self, config: BigGANConfig, *, rngs: nnx.Rngs | None = None):
        rngs = rngs if rngs is not None else nnx.Rngs(0)
        self.config = config
        ch = config.channel_width
        self.embeddings = Dense(config.num_classes, config.z_dim, bias=False, rngs=rngs)
        self.gen_z = Dense(config.cond_dim, 4 * 4 * 16 * ch, rngs=rngs)
        has_attn = config.attention_layer_position < len(config.layers)
        self.attention = (
            SelfAttention(ch * config.attention_channels_mult, rngs=rngs) if has_attn else None
        )  # the reference inserts it before that layer only
        for i, (up, a, b) in enumerate(config.layers):
            setattr(self, f"block{i}", GenBlock(ch * a, ch * b, up, config, rngs=rngs))
        self.bn = BatchNorm(ch, config.n_stats, config.eps)
        self.conv_to_rgb = Conv(ch, ch, 3, rngs=rngs)

    z_dim = property(lambda self: self.config.z_dim)
    num_classes = property(lambda self: self.config.num_classes)
    cond_dim = property(lambda self: self.config.cond_dim)
    resolution = property(lambda self: self.config.output_dim)
    img_channels = 3

    # ---- generator protocol (models.AbstractGenerator) ----------------------------------------
    class_dim = property(
        lambda self: self.config.num_classes, doc="Length of the class vectors (``num_classes``)."
    )

    @property
    def spaces(self) -> tuple[str, ...]:
        """BigGAN's latent spaces: ``z``, ``embed``, ``cond``."""
        return SPACES

    def latent_dim(self, space: str) -> int:
        """D of ``space``: ``"z"`` and ``"embed"`` z_dim, ``"cond"`` 2 * z_dim.

        Raises:
          ValueError: ``space`` is not one of ``("z", "embed", "cond")``.
        """
        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES} for BigGAN, got {space!r}")
        return self.cond_dim if space == "cond" else self.z_dim

    def check_truncation(self, truncation: float) -> float:
        """``truncation`` as a float in (0, 1] (it picks the BN statistics).

        Raises:
          ValueError: outside (0, 1].
        """
        stat_weights(truncation, self.config.n_stats)
        return float(truncation)

    @property
    def feature_layers(self) -> tuple[str, ...]:
        """The reference's ``generator.layers``: ``block0`` ... with ``attention`` before block
        ``attention_layer_position``."""
        return _biggan_split.layer_names(self)

    def resolve_layer(self, layer: str | int) -> str:
        """A feature layer by name or by the reference's index L -> its name."""
        return self.feature_layers[_biggan_split.resolve(self, layer)]

    def features_at(
        self,
        latents: ZLatents,
        layer: str | int,
        *,
        c: ClassVectorsBigGAN | None = None,
        truncation: float = 1.0,
        noise_mode: str = "const",
        key=None,
        dtype=None,
        precision: Precision = "highest",
    ) -> LayerFeatures:
        """z ``[N, z_dim]`` and class vectors c ``[N, num_classes]`` -> the output of ``layer``
        ``[N, H, W, C]`` (see `AbstractGenerator.features_at`; no noise inputs: ``noise_mode``
        must stay ``"const"`` and ``key`` None)."""
        if c is None:
            raise ValueError(f"BigGAN needs class vectors: pass c of shape [N, {self.num_classes}]")
        if noise_mode != "const" or key is not None:
            raise ValueError("noise_mode and key apply to StyleGAN2 (BigGAN has no noise inputs)")
        truncation = self.check_truncation(truncation)
        name = self.resolve_layer(layer)
        x, cond = _biggan_split.split(
            self, latents, c, name, truncation, dtype=dtype, precision=precision
        )
        return LayerFeatures(
            x=x,
            context={"cond": cond},
            layer=name,
            options=(("truncation", truncation), ("precision", precision)),
        )

    def resume_at(self, state: LayerFeatures, x: Features | None = None) -> RGBImages:
        """Images ``[N, H, W, 3]`` from (possibly edited) features at ``state.layer``."""
        x = self._resume_input(state, x)
        return _biggan_split.resume(
            self,
            x,
            state.context["cond"],
            state.layer,
            state.option("truncation"),
            precision=state.option("precision"),
        )

    def _dtype(self, dtype):
        return jnp.dtype(dtype) if dtype is not None else _ops.default_float_dtype()

    def _check(self, name: str, x, width: int, dt):
        check_finite(name, x)
        x = jnp.asarray(x, dt)
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"{name} must have shape [N, {width}], got {tuple(x.shape)}")
        return x

    def embed(
        self, class_vector: ClassVectorsBigGAN, *, dtype=None, precision: Precision = "highest"
    ) -> ZArray:
        """class vectors [N, num_classes] -> embeddings [N, z_dim] (linear, no bias)."""
        dt = self._dtype(dtype)
        cv = self._check("class_vector", class_vector, self.num_classes, dt)
        return self.embeddings(cv, precision)

    def cond(
        self,
        z: ZLatents,
        class_vector: ClassVectorsBigGAN,
        *,
        dtype=None,
        precision: Precision = "highest",
    ) -> CondArray:
        """``[z, embed(class_vector)]``: [N, 2 * z_dim]."""
        dt = self._dtype(dtype)
        z = self._check("z", z, self.z_dim, dt)
        e = self.embed(class_vector, dtype=dt, precision=precision)
        if e.shape[0] != z.shape[0]:
            raise ValueError(f"z has {z.shape[0]} rows but class_vector has {e.shape[0]}")
        return jnp.concatenate([z, e], axis=1)

    def synthesis_from_cond(
        self,
        cond: Cond,
        truncation: float = 1.0,
        *,
        dtype=None,
        precision: Precision = "highest",
        jit: bool = True,
    ) -> RGBImages:
        """cond [N, 2 * z_dim] -> images [N, H, W, 3]."""
        dt = self._dtype(dtype)
        cond = self._check("cond", cond, self.cond_dim, dt)
        stat_weights(truncation, self.config.n_stats)  # validates
        return self._synthesis(cond, truncation=float(truncation), precision=precision, jit=jit)

    @_jit_method(static_argnames=("truncation", "precision"))
    def _synthesis(self, cond, *, truncation, precision):
        cfg = self.config
        n = cond.shape[0]
        x = self.gen_z(cond, precision).reshape(n, 4, 4, 16 * cfg.channel_width)
        for i in range(len(cfg.layers)):
            if i == cfg.attention_layer_position and self.attention is not None:
                x = self.attention(x, precision)
            x = getattr(self, f"block{i}")(x, cond, truncation, precision)
        x = jax.nn.relu(self.bn(x, truncation))
        return jnp.tanh(self.conv_to_rgb(x, precision, out_channels=3))

    def __call__(
        self,
        z: ZLatents,
        class_vector: ClassVectorsBigGAN,
        truncation: float = 1.0,
        *,
        dtype=None,
        precision: Precision = "highest",
        jit: bool = True,
    ) -> RGBImages:
        """z [N, z_dim], class_vector [N, num_classes] -> images [N, H, W, 3] (NHWC)."""
        cond = self.cond(z, class_vector, dtype=dtype, precision=precision)
        return self.synthesis_from_cond(cond, truncation, dtype=dtype, precision=precision, jit=jit)


def truncated_noise_sample(
    batch_size: int = 1, z_dim: int = 128, truncation: float = 1.0, seed: int | None = None
) -> TruncatedNoise:
    """``truncation * truncnorm(-2, 2)`` as the reference's ``utils.truncated_noise_sample``
    (``scipy.stats.truncnorm.rvs`` with ``RandomState(seed)``; float32). [batch_size, z_dim].

    Needs scipy (the reference's own dependency); without it, a NumPy rejection sampler with the
    same distribution (not the same numbers) is used.
    """
    truncation = finite_scalar("truncation", truncation)
    state = np.random.RandomState(seed)
    try:
        from scipy.stats import truncnorm
    except ImportError:  # pragma: no cover - scipy is a test extra
        values = state.standard_normal((batch_size, z_dim))
        bad = np.abs(values) > 2
        while bad.any():
            values[bad] = state.standard_normal(int(bad.sum()))
            bad = np.abs(values) > 2
    else:
        values = truncnorm.rvs(-2, 2, size=(batch_size, z_dim), random_state=state)
    return truncation * np.asarray(values).astype(np.float32)


def one_hot(classes: Sequence[int], num_classes: int = 1000) -> OneHot:
    """Class indices -> one-hot class vectors [N, num_classes] (float32)."""
    idx = np.asarray(list(classes), int)
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(f"class indices must be in [0, {num_classes}), got {idx.tolist()}")
    out = np.zeros((idx.size, num_classes), np.float32)
    out[np.arange(idx.size), idx] = 1.0
    return out


__all__ = [
    "PRESET_LAYERS",
    "SPACES",
    "BigGANConfig",
    "BigGANGenerator",
    "bn_statistics",
    "one_hot",
    "stat_weights",
    "truncated_noise_sample",
    "upsample_nearest2x",
]
