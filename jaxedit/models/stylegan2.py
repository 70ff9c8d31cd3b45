"""StyleGAN2 generator as Flax NNX modules, numerically equal to NVIDIA stylegan2-ada-pytorch.

Layout conventions (the converters write exactly this):

* activations NHWC, conv kernels HWIO ``[k, k, C_in, C_out]``, dense kernels ``[in, out]``;
* parameters are stored *raw* (as in the reference state dict) and the equalized-learning-rate
  gains are applied at run time, so a converted checkpoint round-trips bit for bit;
* ``synthesis.b4.const`` is ``[4, 4, C]``; ``noise_const`` is ``[R, R]``; the affine biases already
  contain the ``+1`` of ``bias_init=1``.

Public entry point is `StyleGAN2Generator`; its methods take NumPy or JAX arrays and return
JAX arrays. They run under ``jax.jit`` by default over an explicit ``(graphdef, state)`` split of
the module (parameters are traced arguments, never compile-time constants); ``jit=False`` runs
the same code eagerly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from .. import _ops
from .._checks import check_finite, finite_scalar
from .._ops import Precision
from .._typing import (
    Features,
    Images,
    Labels,
    LayerOutput,
    SeedLatent,
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
from ._stylegan2_layers import (
    ARCHITECTURES as ARCHITECTURES,
    NOISE_MODES as NOISE_MODES,
    SPACES as SPACES,
    FullyConnected as FullyConnected,
    MappingNetwork as MappingNetwork,
    SkipUp as SkipUp,
    StyleGAN2Config as StyleGAN2Config,
    SynthesisBlock as SynthesisBlock,
    SynthesisLayer as SynthesisLayer,
    SynthesisNetwork as SynthesisNetwork,
    ToRGB as ToRGB,
)


@struct.dataclass
class SynthesisState:
    """Synthesis paused after a conv layer (see `StyleGAN2Generator.synthesis_split`).

    Attributes:
      x: [N, R, R, C] features after ``layer`` (editable).
      img: [N, R', R', img_ch] skip image accumulated *before* the current block's ToRGB, or None.
      residual: ResNet shortcut pending inside the block, or None.
      layer: name of the last conv layer run (static).
    """

    x: jax.Array
    img: jax.Array | None
    residual: jax.Array | None
    layer: str = struct.field(pytree_node=False)


class StyleGAN2Generator(nnx.Module, AbstractGenerator):
    """StyleGAN2 generator (mapping + synthesis) equal to NVIDIA stylegan2-ada-pytorch.

    Shapes: z ``[N, z_dim]``, c ``[N, c_dim]`` (or None), ws ``[N, num_ws, w_dim]``, images
    ``[N, H, W, img_channels]`` (NHWC, roughly in [-1, 1]).

    Every method takes ``dtype`` (compute dtype; default float64 when ``jax_enable_x64`` is on,
    else float32), ``precision`` (``"highest"`` default, ``"default"`` for TF32 on GPUs) and
    ``jit`` (default True).

    Noise: ``noise_mode="const"`` (default here; the stored per-layer noise), ``"random"`` (needs
    ``key``; each layer folds its index into it) or ``"none"``. NVIDIA's default is ``"random"``.
    """

    family = "stylegan2"
    display_name = "StyleGAN2"
    has_styles = True
    has_noise = True
    truncation_kind = "psi"
    default_space = "w"

    def __init__(self, config: StyleGAN2Config, *, rngs: nnx.Rngs | None = None):
        rngs = rngs if rngs is not None else nnx.Rngs(0)
        self.config = config
        self.mapping_net = MappingNetwork(config, rngs=rngs)
        self.synthesis_net = SynthesisNetwork(config, rngs=rngs)

    # ---- static facts -------------------------------------------------------------------------
    z_dim = property(lambda self: self.config.z_dim)
    c_dim = property(lambda self: self.config.c_dim)
    w_dim = property(lambda self: self.config.w_dim)
    num_ws = property(lambda self: self.config.num_ws)
    resolution = property(lambda self: self.config.img_resolution)
    img_channels = property(lambda self: self.config.img_channels)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Every style-consuming layer in W+ slot order (``b4.conv1``, ``b4.torgb``, ``b8.conv0``...)."""
        return tuple(name for name, _ in self._style_layers())

    @property
    def conv_layer_names(self) -> tuple[str, ...]:
        """The split points: every synthesis conv layer in order."""
        return tuple(n for n, _ in self._style_layers() if not n.endswith(".torgb"))

    # ---- generator protocol (models.AbstractGenerator) ----------------------------------------
    class_dim = property(lambda self: self.config.c_dim)  # c_dim (0: unconditional)

    @property
    def spaces(self) -> tuple[str, ...]:
        """``("w", "wplus", "z", "s")``, without ``"z"`` when the generator has no z input."""
        return tuple(sp for sp in SPACES if sp != "z" or self.z_dim > 0)

    def latent_dim(self, space: str) -> int:
        """D of ``space``: w_dim, num_ws * w_dim (wplus), z_dim, the summed style widths (s).

        Raises:
          ValueError: unknown ``space``, or ``"z"`` on a generator without z input.
        """
        if space == "z" and self.z_dim <= 0:
            raise ValueError("this generator has no z input")
        dims = {"w": self.w_dim, "wplus": self.num_ws * self.w_dim, "z": self.z_dim}
        if space == "s":
            return sum(self._layer(n).affine.weight.shape[1] for n in self.layer_names)
        if space not in dims:
            raise ValueError(f"space must be one of {SPACES}, got {space!r}")
        return dims[space]

    def check_truncation(self, truncation: float) -> float:
        """``truncation`` (psi) as a float. Raises ValueError if it is not finite."""
        return finite_scalar("truncation_psi", truncation)

    @property
    def feature_layers(self) -> tuple[str, ...]:
        """The split points, `conv_layer_names`."""
        return self.conv_layer_names

    def resolve_layer(self, layer: str | int) -> str:
        """A conv layer by name or by the reference's genforce index L (5: b16.conv1 at 1024 px)."""
        return self.feature_layers[layer_position(layer, self.feature_layers, "generator")]

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
    ) -> LayerFeatures:
        """ws ``[N, num_ws, w_dim]`` -> the output of conv layer ``layer`` ``[N, R, R, C]`` (see
        `AbstractGenerator.features_at`; `synthesis_split` underneath). ``c`` and
        ``truncation`` belong in the mapping that made the ws: pass None and 1.0."""
        if c is not None:
            raise ValueError("c applies to BigGAN; StyleGAN2 latents (ws) already include it")
        if float(truncation) != 1.0:
            raise ValueError("truncation applies to BigGAN; StyleGAN2 ws already include it")
        name = self.resolve_layer(layer)
        state = self.synthesis_split(
            latents, name, noise_mode=noise_mode, key=key, dtype=dtype, precision=precision
        )
        ws = self._check_ws(latents, state.x.dtype)
        ctx = {"ws": ws, "img": state.img, "residual": state.residual, "key": key}
        return LayerFeatures(
            x=state.x,
            context=ctx,
            layer=name,
            options=(("noise_mode", noise_mode), ("precision", precision)),
        )

    def resume_at(self, state: LayerFeatures, x: Features | None = None) -> Images:
        """Images ``[N, H, W, C]`` from (possibly edited) features at ``state.layer``."""
        x = self._resume_input(state, x)
        ctx = state.context
        split = SynthesisState(x=x, img=ctx["img"], residual=ctx["residual"], layer=state.layer)
        return self.synthesis_resume(
            ctx["ws"],
            split,
            noise_mode=state.option("noise_mode"),
            key=ctx["key"],
            dtype=ctx["ws"].dtype,
            precision=state.option("precision"),
        )

    # ---- style layers and feature geometry (protocol) ------------------------------------------
    has_skip_image = True

    def feature_shape(self, layer: str) -> tuple[int, int, int]:
        """``(R, R, C_out)`` of conv layer ``layer`` (``"b16.conv1"``)."""
        name = self.resolve_layer(layer)
        res = int(name.split(".")[0][1:])
        return res, res, int(self._layer(name).weight.shape[-1])

    def layer_summary(self) -> list[dict[str, Any]]:
        """Per style layer: ``name``, ``slot``, ``size`` (output resolution), ``in_channels``,
        ``out_channels``, ``style`` (the affine's width)."""
        rows = []
        for name, slot in self._style_layers():
            lay = self._layer(name)
            _, _, cin, cout = lay.weight.shape
            res = int(name.split(".")[0][1:])
            style = int(lay.affine.weight.shape[1])
            rows.append(
                dict(name=name, slot=slot, size=res, in_channels=int(cin), out_channels=int(cout),
                     style=style, torgb=name.endswith(".torgb"))
            )  # fmt: skip
        return rows

    @property
    def slot_layers(self) -> tuple[str, ...]:
        """The conv layer at each W+ slot ``0 .. num_ws - 2`` and the *final* ToRGB for the last
        slot (the intermediate ToRGBs share their slot with the next conv)."""
        by_slot = {slot: name for name, slot in self._style_layers() if not name.endswith(".torgb")}
        by_slot[self.num_ws - 1] = [n for n in self.layer_names if n.endswith(".torgb")][-1]
        return tuple(by_slot[s] for s in range(self.num_ws))

    def style_weight(self, name: str) -> np.ndarray:
        """The stored modulation affine ``[w_dim, C_in]`` of style layer ``name``."""
        if name not in self.layer_names:
            raise ValueError(
                f"unknown style layer {name!r}; choose one of {list(self.layer_names)}"
            )
        return np.asarray(self._layer(name).affine.weight[...])

    def style_dim(self, name: str) -> int:
        """``C_in`` of style layer ``name``."""
        if name not in self.layer_names:
            raise ValueError(
                f"unknown style layer {name!r}; choose one of {list(self.layer_names)}"
            )
        return int(self._layer(name).affine.weight.shape[1])

    @property
    def modulated_layers(self) -> tuple[str, ...]:
        """Every style layer (each style scales the input channels of a modulated conv)."""
        return self.layer_names

    def style_input(self, name: str) -> str:
        """``bR.conv0`` reads the previous block's ``conv1``, ``bR.conv1`` its ``conv0``, a
        ToRGB its block's ``conv1``; the first block's ``conv1`` the learned ``"const"``."""
        if name not in self.layer_names:
            raise ValueError(
                f"unknown style layer {name!r}; choose one of {list(self.layer_names)}"
            )
        blocks = list(self.synthesis_net.block_names)
        block, kind = name.split(".")
        if block == blocks[0] and kind == "conv1":
            return "const"
        if kind == "conv0":
            return f"{blocks[blocks.index(block) - 1]}.conv1"
        if kind == "conv1":
            return f"{block}.conv0"
        return f"{block}.conv1"  # torgb

    def style_inputs(self, feats, layers, n: int, dtype) -> dict[str, jax.Array]:
        """The input of each style layer from a `features` pass (the constant broadcast)."""
        out = {}
        for name in layers:
            src = self.style_input(name)
            if src == "const":
                first = getattr(self.synthesis_net, self.synthesis_net.block_names[0])
                const = jnp.asarray(first.const[...], dtype)
                out[name] = jnp.broadcast_to(const[None], (n,) + const.shape)
            else:
                out[name] = feats[src]
        return out

    def _style_layers(self) -> list[tuple[str, int]]:
        """(layer name, W+ slot) for every layer that has an affine."""
        out = []
        for bname in self.synthesis_net.block_names:
            block = getattr(self.synthesis_net, bname)
            k = int(math.log2(block.resolution))
            if block.is_first:
                out.append((f"{bname}.conv1", 0))
            else:
                out.append((f"{bname}.conv0", 2 * k - 5))
                out.append((f"{bname}.conv1", 2 * k - 4))
            if block.has_torgb:
                out.append((f"{bname}.torgb", 1 if block.is_first else 2 * k - 3))
        return out

    def _layer(self, name: str) -> SynthesisLayer | ToRGB:
        bname, lname = name.split(".")
        return getattr(getattr(self.synthesis_net, bname), lname)

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
        Non-finite z, c or psi raise ValueError (checked on concrete inputs, not under a trace).
        """
        dt = self._dtype(dtype)
        if self.z_dim > 0:
            check_finite("z", z)
        check_finite("c", c)
        finite_scalar("truncation_psi", truncation_psi)
        z = jnp.asarray(z, dt) if self.z_dim > 0 else None
        if z is not None and (z.ndim != 2 or z.shape[1] != self.z_dim):
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {tuple(z.shape)}")
        if self.c_dim > 0:
            if c is None:
                raise ValueError(
                    f"this generator is conditional: pass c of shape [N, {self.c_dim}]"
                )
            c = jnp.asarray(c, dt)
            if c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"c must have shape [N, {self.c_dim}], got {tuple(c.shape)}")
        else:
            c = None
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
            z,
            c,
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

        For ToRGB layers this is before the ``1/sqrt(C_in)`` weight gain, as the reference's
        ``affine`` output. Keys follow `layer_names`.
        """
        out = self._styles(self._check_ws(ws, self._dtype(dtype)), precision=precision, jit=jit)
        return {name: out[name] for name in self.layer_names}  # jit sorts dict keys

    @_jit_method(static_argnames=("precision",))
    def _styles(self, ws, *, precision):
        return {
            name: self._layer(name).affine(ws[:, slot], precision)
            for name, slot in self._style_layers()
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
            c_in = self._layer(n).affine.weight.shape[1]
            if s.ndim != 2 or s.shape[1] != c_in:
                raise ValueError(f"styles[{n!r}] must have shape [N, {c_in}], got {tuple(s.shape)}")
            out[n] = s
        return out

    # ---- synthesis -----------------------------------------------------------------------------
    def _noise(self, layer: SynthesisLayer, index: int, n: int, dt, noise_mode, key):
        if not layer.use_noise or noise_mode == "none":
            return None
        r = layer.resolution
        if noise_mode == "const":
            return jnp.broadcast_to(_cast(layer.noise_const, dt)[None, :, :, None], (n, r, r, 1))
        return jax.random.normal(jax.random.fold_in(key, index), (n, r, r, 1), dt)

    def _ops_list(self) -> list[tuple[str, str]]:
        """The synthesis program: ("b8.conv0", "conv") ... ("b8", "tail") per block."""
        ops = []
        for bname in self.synthesis_net.block_names:
            block = getattr(self.synthesis_net, bname)
            if not block.is_first:
                ops.append((f"{bname}.conv0", "conv"))
            ops.append((f"{bname}.conv1", "conv"))
            ops.append((bname, "tail"))
        return ops

    def _run(
        self,
        styles,
        state: dict,
        start: int,
        stop: int,
        noise_mode,
        key,
        precision,
        collect: bool = False,
    ):
        conv_index = {n: i for i, n in enumerate(self.conv_layer_names)}
        feats = {}
        for name, kind in self._ops_list()[start:stop]:
            if kind == "tail":
                block = getattr(self.synthesis_net, name)
                if state["img"] is not None:
                    state["img"] = _ops.upsample2d(state["img"], self.config.resample_kernel)
                if block.has_torgb:
                    y = block.torgb(state["x"], styles[f"{name}.torgb"], precision=precision)
                    state["img"] = y if state["img"] is None else state["img"] + y
                continue
            bname, lname = name.split(".")
            block = getattr(self.synthesis_net, bname)
            layer = getattr(block, lname)
            s = styles[name]
            n, dt = s.shape[0], s.dtype
            if block.is_first:
                state["x"] = jnp.broadcast_to(
                    _cast(block.const, dt)[None], (n,) + block.const.shape
                )
            noise = self._noise(layer, conv_index[name], n, dt, noise_mode, key)
            if block.architecture == "resnet" and lname == "conv0":
                state["residual"] = block.skip(state["x"], precision=precision)
            gain = (
                math.sqrt(0.5)
                if (block.architecture == "resnet" and lname == "conv1" and not block.is_first)
                else 1.0
            )
            state["x"] = layer(state["x"], s, noise, gain=gain, precision=precision)
            if gain != 1.0:
                state["x"] = state["residual"] + state["x"]
                state["residual"] = None
            if collect:
                feats[name] = state["x"]
        return state, feats

    def _op_index_after(self, layer: str) -> int:
        names = [n for n, _ in self._ops_list()]
        if layer not in self.conv_layer_names:
            raise ValueError(
                f"unknown split layer {layer!r}; choose one of {self.conv_layer_names}"
            )
        return names.index(layer) + 1

    def _prepare(self, ws, styles, dtype, noise_mode, key):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if noise_mode == "random" and key is None:
            raise ValueError("noise_mode='random' needs an explicit PRNG key (key=...)")
        dt = self._dtype(dtype)
        if (ws is None) == (styles is None):
            raise ValueError("pass exactly one of ws or styles")
        if styles is None:
            return self._check_ws(ws, dt), None
        return None, self._check_styles(styles, dt)

    @_jit_method(static_argnames=("start", "stop", "noise_mode", "precision", "collect"))
    def _program(self, ws, styles, state, key, *, start, stop, noise_mode, precision, collect):
        if styles is None:
            styles = self._styles(ws, precision=precision, jit=False)
        state = dict(state)
        return self._run(styles, state, start, stop, noise_mode, key, precision, collect)

    def synthesis(
        self,
        ws: WPlus | None = None,
        *,
        styles: Mapping[str, Style] | None = None,
        noise_mode: str = "const",
        key=None,
        dtype=None,
        precision: Precision = "highest",
        jit: bool = True,
    ) -> Images:
        """ws: [N, num_ws, w_dim] (or ``styles`` from `styles`) -> images [N, H, W, C]."""
        ws, styles = self._prepare(ws, styles, dtype, noise_mode, key)
        state, _ = self._program(
            ws,
            styles,
            {"x": None, "img": None, "residual": None},
            key,
            start=0,
            stop=len(self._ops_list()),
            noise_mode=noise_mode,
            precision=precision,
            collect=False,
            jit=jit,
        )
        return state["img"]

    def synthesis_from_styles(self, styles: Mapping[str, Style], **kw) -> Images:
        """Synthesis from (possibly edited) per-layer styles ``{layer: [N, C_in]}``."""
        return self.synthesis(styles=styles, **kw)

    def features(
        self,
        ws: WPlus | None = None,
        *,
        styles: Mapping[str, Style] | None = None,
        noise_mode: str = "const",
        key=None,
        dtype=None,
        precision: Precision = "highest",
        jit: bool = True,
    ) -> tuple[Images, dict[str, LayerOutput]]:
        """Images and every conv layer's output features ``{layer: [N, R, R, C]}`` in one pass."""
        ws, styles = self._prepare(ws, styles, dtype, noise_mode, key)
        state, feats = self._program(
            ws,
            styles,
            {"x": None, "img": None, "residual": None},
            key,
            start=0,
            stop=len(self._ops_list()),
            noise_mode=noise_mode,
            precision=precision,
            collect=True,
            jit=jit,
        )
        return state["img"], {name: feats[name] for name in self.conv_layer_names}

    def synthesis_split(
        self,
        ws: WPlus | None = None,
        layer: str = "b4.conv1",
        *,
        styles: Mapping[str, Style] | None = None,
        noise_mode: str = "const",
        key=None,
        dtype=None,
        precision: Precision = "highest",
        jit: bool = True,
    ) -> SynthesisState:
        """Run synthesis up to and including conv layer ``layer``; returns a `SynthesisState`.

        The state carries the features *and* the skip image so that
        `synthesis_resume` of an unedited state equals `synthesis`.
        """
        ws, styles = self._prepare(ws, styles, dtype, noise_mode, key)
        stop = self._op_index_after(layer)
        state, _ = self._program(
            ws,
            styles,
            {"x": None, "img": None, "residual": None},
            key,
            start=0,
            stop=stop,
            noise_mode=noise_mode,
            precision=precision,
            collect=False,
            jit=jit,
        )
        return SynthesisState(
            x=state["x"], img=state["img"], residual=state["residual"], layer=layer
        )

    def synthesis_resume(
        self,
        ws: WPlus | None = None,
        state: SynthesisState | None = None,
        *,
        styles: Mapping[str, Style] | None = None,
        noise_mode: str = "const",
        key=None,
        dtype=None,
        precision: Precision = "highest",
        jit: bool = True,
    ) -> Images:
        """Continue synthesis from ``state`` (features possibly edited) -> images [N, H, W, C]."""
        if not isinstance(state, SynthesisState):
            raise TypeError(f"state must be a SynthesisState, got {type(state).__name__}")
        ws, styles = self._prepare(ws, styles, dtype, noise_mode, key)
        dt = ws.dtype if ws is not None else next(iter((styles or {}).values())).dtype
        start = self._op_index_after(state.layer)
        for part in ("x", "img", "residual"):
            check_finite(f"state.{part}", getattr(state, part))
        feats = {
            "x": jnp.asarray(state.x, dt),
            "img": None if state.img is None else jnp.asarray(state.img, dt),
            "residual": None if state.residual is None else jnp.asarray(state.residual, dt),
        }
        out, _ = self._program(
            ws,
            styles,
            feats,
            key,
            start=start,
            stop=len(self._ops_list()),
            noise_mode=noise_mode,
            precision=precision,
            collect=False,
            jit=jit,
        )
        return out["img"]

    def __call__(
        self,
        z: ZLatents | None,
        c: Labels | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        *,
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
            ws, noise_mode=noise_mode, key=key, dtype=dtype, precision=precision, jit=jit
        )


def seed_to_z(seed: int, z_dim: int) -> SeedLatent:
    """NVIDIA ``generate.py``'s latent for a seed: ``RandomState(seed).randn(1, z_dim)``. -> [1, z_dim]."""
    return np.random.RandomState(int(seed)).randn(1, z_dim)


__all__ = ["SPACES", "StyleGAN2Config", "StyleGAN2Generator", "SynthesisState", "seed_to_z"]
