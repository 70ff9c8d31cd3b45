"""StyleGAN3 (alias-free; configs T and R) as Flax NNX modules, numerically equal to NVIDIA's
``training/networks_stylegan3.py`` (reference ops).

Layout conventions (the converters write exactly this): NHWC activations, HWIO conv kernels,
dense kernels ``[in, out]``, raw (reference) parameters with the equalized-learning-rate gains
applied at run time, affine biases including the ``+1`` of ``bias_init=1``. The input layer's
``freqs``, ``phases`` and ``transform``, the ``w_avg`` and every layer's ``magnitude_ema`` are
buffers; the low-pass filters and the layer geometry follow from the config (see
`StyleGAN3Config`). The official configs run their highest-resolution layers in float16 on
CUDA (``num_fp16_res``); here every layer runs in the compute dtype (float32 by default).

W+ slots: slot 0 drives the input layer's affine (rotation / translation of the Fourier
features), slot ``i + 1`` the layer ``L{i}_..``; the last slot the ToRGB layer.

The user transform (``synthesis(..., transform=M)``) is the matrix NVIDIA keeps in the buffer
``synthesis.input.transform``: the *inverse* of the image transform. `make_transform` builds it
from a translation and a rotation exactly as ``gen_images.py --translate --rotate`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from flax import nnx
from jaxtyping import ArrayLike, Float

from .. import _ops
from .._checks import check_finite, finite_scalar
from .._ops import Precision
from .._typing import (
    Features,
    Images,
    Labels,
    Style,
    StyleArray,
    WPlus,
    WPlusArray,
    WVector,
    WVectorArray,
    ZLatents,
)
from ._base import AbstractGenerator, LayerFeatures, layer_position
from ._common import _cast, _jit_method
from ._stylegan3_layers import (
    SPACES as SPACES,
    StyleGAN3Config as StyleGAN3Config,
    SynthesisInput as SynthesisInput,
    SynthesisLayer as SynthesisLayer,
    SynthesisNetwork as SynthesisNetwork,
    mapping_network,
)

#: One 3x3 transform or one per sample: ``[3, 3]`` / ``[N, 3, 3]``.
Transform = Float[ArrayLike, "*N 3 3"]

INPUT = "input"


def make_transform(
    translate: npt.ArrayLike = (0.0, 0.0), rotate: npt.ArrayLike = 0.0
) -> np.ndarray:
    """The matrix ``gen_images.py --translate tx,ty --rotate deg`` writes into StyleGAN3's
    ``synthesis.input.transform`` buffer: ``inv(make_transform(translate, angle))`` of
    gen_images.py, where its ``make_transform`` is ``[[c, s, tx], [-s, c, ty], [0, 0, 1]]`` with
    ``c, s = cos, sin(deg)``. Pass the result as ``synthesis(ws, transform=...)``.

    The buffer holds the *inverse* of the image transform (NVIDIA: "user-specified inverse
    transform wrt. resulting image"); ReSeFa's ``manipulate.py --tx --ty --rotate`` builds the
    same matrix. Identity for ``(0, 0), 0``.

    Args:
      translate: ``(tx, ty)`` as gen_images.py's ``--translate`` (``[2]``, or ``[N, 2]`` for a
        batch); the Fourier features' coordinates span about ``[-0.5, 0.5]`` over the image.
      rotate: degrees (scalar, or ``[N]``).
    Returns:
      float64 ``[3, 3]`` (or ``[N, 3, 3]`` if either argument is batched).
    """
    t = np.asarray(translate, np.float64)
    a = np.asarray(rotate, np.float64)
    if t.shape[-1:] != (2,) or t.ndim > 2 or a.ndim > 1:
        raise ValueError(
            f"translate must be [2] or [N, 2] and rotate a scalar or [N], got shapes "
            f"{t.shape} and {a.shape}"
        )
    if not (np.isfinite(t).all() and np.isfinite(a).all()):
        raise ValueError("translate and rotate must be finite")
    batched = t.ndim == 2 or a.ndim == 1
    n = np.broadcast_shapes(t.shape[:-1], a.shape)
    t = np.broadcast_to(t, n + (2,))
    a = np.broadcast_to(a, n)
    s, c = np.sin(a / 360.0 * np.pi * 2), np.cos(a / 360.0 * np.pi * 2)
    m = np.zeros(n + (3, 3))
    m[..., 0, 0], m[..., 0, 1], m[..., 0, 2] = c, s, t[..., 0]
    m[..., 1, 0], m[..., 1, 1], m[..., 1, 2] = -s, c, t[..., 1]
    m[..., 2, 2] = 1.0
    inv = np.linalg.inv(m)
    return inv if batched else inv.reshape(3, 3)


class StyleGAN3Generator(nnx.Module, AbstractGenerator):
    """StyleGAN3 generator (mapping + synthesis), configs T and R, equal to NVIDIA's.

    Shapes: z ``[N, z_dim]``, c ``[N, c_dim]`` (or None), ws ``[N, num_ws, w_dim]``, images
    ``[N, H, W, img_channels]`` (NHWC, roughly in [-1, 1]). Every method takes ``dtype``
    (default float64 when ``jax_enable_x64`` is on, else float32), ``precision`` (``"highest"``
    default) and ``jit`` (default True). StyleGAN3 has no noise inputs.

    Layers: ``"input"`` (Fourier features, ``[N, S0, S0, C0]`` with margins) and the reference's
    ``L{i}_{size}_{channels}``; the last one is the ToRGB. `layer_names` are all of them (the
    style layers, in W+ slot order); `feature_layers` all but the ToRGB.
    """

    family = "stylegan3"
    display_name = "StyleGAN3"
    has_styles = True
    has_noise = False
    truncation_kind = "psi"
    default_space = "w"
    has_transform = True

    def __init__(self, config: StyleGAN3Config, *, rngs: nnx.Rngs | None = None):
        rngs = rngs if rngs is not None else nnx.Rngs(0)
        self.config = config
        self.mapping_net = mapping_network(config, rngs=rngs)
        self.synthesis_net = SynthesisNetwork(config, rngs=rngs)

    # ---- static facts -------------------------------------------------------------------------
    z_dim = property(lambda self: self.config.z_dim)
    c_dim = property(lambda self: self.config.c_dim)
    w_dim = property(lambda self: self.config.w_dim)
    num_ws = property(lambda self: self.config.num_ws)
    resolution = property(lambda self: self.config.img_resolution)
    img_channels = property(lambda self: self.config.img_channels)
    class_dim = property(lambda self: self.config.c_dim)  # c_dim (0: unconditional)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Every style-consuming layer in W+ slot order: ``("input", "L0_..", ..., ToRGB)``."""
        return (INPUT,) + self.config.layer_names

    @property
    def spaces(self) -> tuple[str, ...]:
        """``("w", "wplus", "z", "s")``, without ``"z"`` when the generator has no z input."""
        return tuple(sp for sp in SPACES if sp != "z" or self.z_dim > 0)

    def latent_dim(self, space: str) -> int:
        """D of ``space``: w_dim, num_ws * w_dim (wplus), z_dim, the summed style widths (s,
        the input's 4 included).

        Raises:
          ValueError: unknown ``space``, or ``"z"`` on a generator without z input.
        """
        if space == "z" and self.z_dim <= 0:
            raise ValueError("this generator has no z input")
        if space == "s":
            return sum(self.layer(n).affine.weight.shape[1] for n in self.layer_names)
        dims = {"w": self.w_dim, "wplus": self.num_ws * self.w_dim, "z": self.z_dim}
        if space not in dims:
            raise ValueError(f"space must be one of {SPACES}, got {space!r}")
        return dims[space]

    def check_truncation(self, truncation: float) -> float:
        """``truncation`` (psi) as a float. Raises ValueError if it is not finite."""
        return finite_scalar("truncation_psi", truncation)

    @property
    def feature_layers(self) -> tuple[str, ...]:
        """``("input", "L0_..", ..., "L{num_layers-1}_..")``: every layer but the ToRGB."""
        return self.layer_names[:-1]

    def resolve_layer(self, layer: str | int) -> str:
        """A feature layer by name or by index L (the output of layers ``0..L-1``; 1 = input)."""
        return self.feature_layers[layer_position(layer, self.feature_layers, "generator")]

    def layer(self, name: str) -> SynthesisInput | SynthesisLayer:
        """The module of a layer (``"input"`` or ``"L3_36_512"``); its ``affine.weight``
        ``[w_dim, C_in]`` maps a w to the layer's style (for SeFa)."""
        if name not in self.layer_names:
            raise ValueError(f"unknown layer {name!r}; choose one of {list(self.layer_names)}")
        return getattr(self.synthesis_net, name)

    # ---- style layers and feature geometry (protocol) ------------------------------------------
    def _row(self, layer: str) -> dict[str, Any]:
        rows = {r["name"]: r for r in self.config.layer_summary()}
        if layer not in rows:
            raise ValueError(f"unknown layer {layer!r}; choose one of {list(self.layer_names)}")
        return rows[layer]

    def feature_shape(self, layer: str) -> tuple[int, int, int]:
        """``(size, size, C_out)`` of any layer's output (margins included; the ToRGB's too)."""
        row = self._row(layer)
        return int(row["size"]), int(row["size"]), int(row["out_channels"])

    def feature_margin(self, layer: str) -> int:
        """``(size - sampling_rate) / 2``: the image spans ``sampling_rate`` pixels of a layer's
        map (10 px margins in the official configs; 0 in the last layers)."""
        row = self._row(layer)
        return int(round((row["size"] - row["sampling_rate"]) / 2))

    def layer_summary(self) -> list[dict[str, Any]]:
        """`StyleGAN3Config.layer_summary` with each layer's ``style`` width and ``margin``."""
        return [
            dict(
                row,
                style=self.style_dim(row["name"]),
                margin=self.feature_margin(row["name"]),
                torgb=row["name"] == self.layer_names[-1],
            )
            for row in self.config.layer_summary()
        ]

    @property
    def slot_layers(self) -> tuple[str, ...]:
        """`layer_names`: slot i drives exactly layer i (slot 0 the input layer)."""
        return self.layer_names

    def style_weight(self, name: str) -> np.ndarray:
        """The stored affine ``[w_dim, C_in]`` (``[w_dim, 4]`` for ``"input"``)."""
        return np.asarray(self.layer(name).affine.weight[...])

    def style_dim(self, name: str) -> int:
        """``C_in`` of layer ``name`` (4 for ``"input"``)."""
        return int(self.layer(name).affine.weight.shape[1])

    @property
    def modulated_layers(self) -> tuple[str, ...]:
        """``L0_..`` .. ToRGB: the input layer's 4-d style is a rotation / translation of the
        Fourier features, not a channel scale."""
        return self.layer_names[1:]

    def style_input(self, name: str) -> str:
        """The previous layer (``"input"`` for ``L0_..``)."""
        if name == INPUT:
            raise ValueError(
                "the input layer's style (rotation / translation) scales no channels; choose "
                f"one of {list(self.modulated_layers)}"
            )
        names = self.layer_names
        if name not in names:
            raise ValueError(f"unknown layer {name!r}; choose one of {list(names)}")
        return names[names.index(name) - 1]

    def style_inputs(self, feats, layers, n: int, dtype) -> dict[str, jax.Array]:
        """The input of each layer: the previous layer's output in ``feats``."""
        del n, dtype
        return {name: feats[self.style_input(name)] for name in layers}

    def _dtype(self, dtype) -> jnp.dtype:
        return jnp.dtype(dtype) if dtype is not None else _ops.default_float_dtype()

    # ---- mapping -------------------------------------------------------------------------------
    def mapping(
        self,
        z: ZLatents | None,
        c: Labels | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        *,
        dtype=None,
        precision: Precision = "highest",
        jit: bool = True,
    ) -> WPlusArray:
        """z: [N, z_dim], c: [N, c_dim] or None -> ws: [N, num_ws, w_dim].

        Truncation ``w_avg + psi * (w - w_avg)`` on all slots, or on ``ws[:, :truncation_cutoff]``.
        """
        dt = self._dtype(dtype)
        if self.z_dim > 0:
            check_finite("z", z)
        check_finite("c", c)
        finite_scalar("truncation_psi", truncation_psi)
        zz = jnp.asarray(z, dt) if self.z_dim > 0 else None
        if zz is not None and (zz.ndim != 2 or zz.shape[1] != self.z_dim):
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {tuple(zz.shape)}")
        cc = None
        if self.c_dim > 0:
            if c is None:
                raise ValueError(
                    f"this generator is conditional: pass c of shape [N, {self.c_dim}]"
                )
            cc = jnp.asarray(c, dt)
            if cc.ndim != 2 or cc.shape[1] != self.c_dim:
                raise ValueError(f"c must have shape [N, {self.c_dim}], got {tuple(cc.shape)}")
        truncate = float(truncation_psi) != 1.0
        if truncate and not self.config.has_w_avg:
            raise ValueError(
                "this checkpoint stores no w_avg, so truncation is undefined; set one "
                "with gen.set_w_avg(gen.estimate_w_avg(key)) first"
            )
        if truncation_cutoff is not None:
            truncation_cutoff = int(truncation_cutoff)
            if truncation_cutoff < 0:
                raise ValueError(
                    f"truncation_cutoff must be >= 0 (or None), got {truncation_cutoff}"
                )
        return self._mapping(
            zz,
            cc,
            jnp.asarray(truncation_psi, dt),
            truncate=truncate,
            truncation_cutoff=truncation_cutoff,
            precision=precision,
            jit=jit,
        )

    @_jit_method(static_argnames=("truncate", "truncation_cutoff", "precision"))
    def _mapping(self, z, c, psi, *, truncate, truncation_cutoff, precision):
        w = self.mapping_net(z, c, precision=precision)
        ws = jnp.broadcast_to(w[:, None, :], (w.shape[0], self.num_ws, self.w_dim))
        if truncate:
            w_avg = _cast(self.mapping_net.w_avg, w.dtype)
            tr = w_avg + psi * (ws - w_avg)
            if truncation_cutoff is None:
                ws = tr
            else:
                slot = jnp.arange(self.num_ws)[None, :, None]
                ws = jnp.where(slot < truncation_cutoff, tr, ws)
        return ws

    def estimate_w_avg(
        self, key: jax.Array, num_samples: int = 10000, c: Labels | None = None
    ) -> WVectorArray:
        """Mean of ``mapping(z)`` over ``num_samples`` normal z (for checkpoints without w_avg)."""
        z = jax.random.normal(key, (num_samples, self.z_dim))
        return jnp.mean(self.mapping(z, c)[:, 0], axis=0)

    def set_w_avg(self, w_avg: WVector) -> None:
        """Replace ``w_avg`` ([w_dim]) and mark it valid for truncation."""
        check_finite("w_avg", w_avg)
        w_avg = jnp.asarray(w_avg, jnp.float32)
        if w_avg.shape != (self.w_dim,):
            raise ValueError(f"w_avg must have shape [{self.w_dim}], got {tuple(w_avg.shape)}")
        self.mapping_net.w_avg[...] = w_avg
        self.config = dataclasses.replace(self.config, has_w_avg=True)

    # ---- styles --------------------------------------------------------------------------------
    def _check_ws(self, ws, dt) -> jax.Array:
        check_finite("ws", ws)
        ws = jnp.asarray(ws, dt)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}"
            )
        return ws

    def styles(
        self, ws: WPlus, *, dtype=None, precision: Precision = "highest", jit: bool = True
    ) -> dict[str, StyleArray]:
        """Per-layer style vectors ("S space"): raw affine outputs ``{layer: [N, C_in]}``.

        ``"input"`` is the 4-vector ``(r_c, r_s, t_x, t_y)`` before its normalisation; the ToRGB
        style is before its ``1/sqrt(C_in)`` weight gain (the reference's ``affine`` outputs).
        Keys follow `layer_names`.
        """
        out = self._styles(self._check_ws(ws, self._dtype(dtype)), precision=precision, jit=jit)
        return {name: out[name] for name in self.layer_names}  # jit sorts dict keys

    @_jit_method(static_argnames=("precision",))
    def _styles(self, ws, *, precision):
        return {
            name: self.layer(name).affine(ws[:, slot], precision)
            for slot, name in enumerate(self.layer_names)
        }

    def _check_styles(self, styles: Mapping[str, Any], dt) -> dict[str, jax.Array]:
        names = self.layer_names
        if set(styles) != set(names):
            missing, extra = sorted(set(names) - set(styles)), sorted(set(styles) - set(names))
            raise ValueError(
                f"styles keys do not match the layers: missing {missing}, unexpected {extra}"
            )
        out = {}
        for n in names:
            check_finite(f"styles[{n!r}]", styles[n])
            s = jnp.asarray(styles[n], dt)
            c_in = self.layer(n).affine.weight.shape[1]
            if s.ndim != 2 or s.shape[1] != c_in:
                raise ValueError(f"styles[{n!r}] must have shape [N, {c_in}], got {tuple(s.shape)}")
            out[n] = s
        return out

    # ---- synthesis -----------------------------------------------------------------------------
    def _transform(self, transform, n: int, dt) -> jax.Array:
        """The user transform as ``[N, 3, 3]`` (the stored buffer when None)."""
        if transform is None:
            t = _cast(self.synthesis_net.input.transform, dt)
        else:
            check_finite("transform", transform)
            t = jnp.asarray(transform, dt)
            if t.shape not in ((3, 3), (n, 3, 3)):
                raise ValueError(
                    f"transform must have shape [3, 3] or [N, 3, 3] with N = {n}, got "
                    f"{tuple(t.shape)}"
                )
        return jnp.broadcast_to(t, (n, 3, 3))

    def _prepare(self, ws, styles, dtype, transform):
        dt = self._dtype(dtype)
        if (ws is None) == (styles is None):
            raise ValueError("pass exactly one of ws or styles")
        if styles is None:
            ws = self._check_ws(ws, dt)
            n = ws.shape[0]
        else:
            styles = self._check_styles(styles, dt)
            n = styles[INPUT].shape[0]
            if any(s.shape[0] != n for s in styles.values()):
                raise ValueError("every styles[...] must have the same batch size N")
        return ws, styles, self._transform(transform, n, dt)

    def _run(self, styles, x, transform, start, stop, precision, collect):
        names = self.layer_names
        feats = {}
        for name in names[start:stop]:
            if name == INPUT:
                x = self.synthesis_net.input(styles[INPUT], transform, precision=precision)
            else:
                x = self.layer(name)(x, styles[name], precision=precision)
            if collect:
                feats[name] = x
        return x, feats

    @_jit_method(static_argnames=("start", "stop", "precision", "collect"))
    def _program(self, ws, styles, x, transform, *, start, stop, precision, collect):
        if styles is None:
            styles = self._styles(ws, precision=precision, jit=False)
        x, feats = self._run(styles, x, transform, start, stop, precision, collect)
        if stop == len(self.layer_names):
            x = x * jnp.asarray(self.config.output_scale, x.dtype)
        return x, feats

    def synthesis(
        self,
        ws: WPlus | None = None,
        *,
        styles: Mapping[str, Style] | None = None,
        transform: Transform | None = None,
        noise_mode: str = "const",
        key=None,
        dtype=None,
        precision: Precision = "highest",
        jit: bool = True,
    ) -> Images:
        """ws ``[N, num_ws, w_dim]`` (or ``styles`` from `styles`) -> images ``[N, H, W, C]``.

        Args:
          transform: the user transform ``[3, 3]`` or per sample ``[N, 3, 3]``, in the buffer's
            convention (the inverse of the image transform; see `make_transform`). None: the
            stored ``synthesis.input.transform`` (the identity in released pickles).
          noise_mode, key: accepted for a common signature; StyleGAN3 has no noise (ignored).
        """
        _check_noise(noise_mode)
        ws, styles, tr = self._prepare(ws, styles, dtype, transform)
        img, _ = self._program(
            ws, styles, None, tr, start=0, stop=len(self.layer_names),
            precision=precision, collect=False, jit=jit,
        )  # fmt: skip
        return img

    def synthesis_from_styles(self, styles: Mapping[str, Style], **kw) -> Images:
        """Synthesis from (possibly edited) per-layer styles ``{layer: [N, C_in]}``."""
        return self.synthesis(styles=styles, **kw)

    def features(
        self,
        ws: WPlus | None = None,
        *,
        styles: Mapping[str, Style] | None = None,
        transform: Transform | None = None,
        noise_mode: str = "const",
        key=None,
        dtype=None,
        precision: Precision = "highest",
        jit: bool = True,
    ) -> tuple[Images, dict[str, Features]]:
        """Images and every layer's output ``{layer: [N, size, size, C]}`` (all `layer_names`;
        the ToRGB's before the ``output_scale``) in one pass. ``noise_mode`` and ``key`` as in
        `synthesis` (no noise: accepted for a common signature)."""
        _check_noise(noise_mode)
        ws, styles, tr = self._prepare(ws, styles, dtype, transform)
        img, feats = self._program(
            ws, styles, None, tr, start=0, stop=len(self.layer_names),
            precision=precision, collect=True, jit=jit,
        )  # fmt: skip
        return img, {name: feats[name] for name in self.layer_names}

    def features_at(
        self,
        latents: WPlus,
        layer: str | int,
        *,
        c=None,
        truncation: float = 1.0,
        noise_mode: str = "const",
        key=None,
        dtype=None,
        precision: Precision = "highest",
        transform: Transform | None = None,
    ) -> LayerFeatures:
        """ws ``[N, num_ws, w_dim]`` -> the output of ``layer`` ``[N, size, size, C]`` (see
        `AbstractGenerator.features_at`). ``c`` and ``truncation`` belong in the mapping that
        made the ws: pass None and 1.0. ``transform`` as in `synthesis`."""
        if c is not None:
            raise ValueError("c applies to BigGAN; StyleGAN3 latents (ws) already include it")
        if float(truncation) != 1.0:
            raise ValueError("truncation applies to BigGAN; StyleGAN3 ws already include it")
        _check_noise(noise_mode)
        name = self.resolve_layer(layer)
        ws, _, tr = self._prepare(latents, None, dtype, transform)
        stop = self.layer_names.index(name) + 1
        x, _ = self._program(
            ws, None, None, tr, start=0, stop=stop, precision=precision, collect=False
        )
        return LayerFeatures(
            x=x,
            context={"ws": ws, "transform": tr},
            layer=name,
            options=(("precision", precision),),
        )

    def resume_at(self, state: LayerFeatures, x: Features | None = None) -> Images:
        """Images ``[N, H, W, C]`` from (possibly edited) features at ``state.layer``."""
        x = self._resume_input(state, x)
        ctx = state.context
        ws = ctx["ws"]
        check_finite("x", x)
        start = self.layer_names.index(state.layer) + 1
        img, _ = self._program(
            ws,
            None,
            jnp.asarray(x, ws.dtype),
            ctx["transform"],
            start=start,
            stop=len(self.layer_names),
            precision=state.option("precision"),
            collect=False,
        )
        return img

    def __call__(
        self,
        z: ZLatents | None,
        c: Labels | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        *,
        transform: Transform | None = None,
        noise_mode: str = "const",
        key=None,
        dtype=None,
        precision: Precision = "highest",
        jit: bool = True,
    ) -> Images:
        """z: [N, z_dim] -> images [N, H, W, C] (mapping then synthesis)."""
        ws = self.mapping(
            z, c, truncation_psi, truncation_cutoff, dtype=dtype, precision=precision, jit=jit
        )
        return self.synthesis(
            ws, transform=transform, noise_mode=noise_mode, dtype=dtype, precision=precision,
            jit=jit,
        )  # fmt: skip


def _check_noise(noise_mode: str) -> None:
    if noise_mode not in ("const", "random", "none"):
        raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")


__all__ = ["SPACES", "StyleGAN3Config", "StyleGAN3Generator", "Transform", "make_transform"]
