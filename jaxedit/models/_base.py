"""The generator protocol: what the rest of jaxedit may ask of any generator family.

Code outside ``jaxedit.models`` tells the families apart through these members, never through
the family string or ``hasattr`` probes:

========================  ==================================================================
``family``                ``"stylegan2"`` / ``"biggan"`` (the ``family`` of ``config.json``)
``display_name``          ``"StyleGAN2"`` / ``"BigGAN"`` (for messages)
``class_dim``             length of the class / conditioning vector, 0 when unconditional
                          (StyleGAN2 ``c_dim``, BigGAN ``num_classes``)
``uses_class``            ``class_dim > 0``: every call needs class vectors
``spaces``                the latent spaces a Jacobian or an edit may use
``default_space``         the space the CLI and the editing functions start from
``latent_dim(space)``     D, the number of latent coordinates of ``space``
``has_styles``            per-layer style vectors (S space: ``styles``, ``synthesis_from_styles``,
                          ``features``, ``layer_names`` as style layers)
``has_noise``             noise inputs (``noise_mode`` applies)
``truncation_kind``       ``"psi"``: ``w_avg + psi (w - w_avg)`` in the mapping (any finite psi,
                          optional cutoff); ``"stats"``: a static float in (0, 1] that picks
                          stored BN statistics (the caller scales z)
``feature_layers``        the layers whose output features can be read and resumed from
``resolve_layer(layer)``  a feature layer by name or by the reference's index L -> its name
``features_at(...)``      the forward pass paused after a layer -> `LayerFeatures`
``resume_at(state, x)``   the rest of the forward pass from (possibly edited) features -> images
``check_truncation(t)``   validates a truncation value of this family's kind
``has_transform``         ``synthesis(..., transform=M)`` takes a user transform of the input
                          (StyleGAN3's translation / rotation, `make_transform`)
``has_skip_image``        the image is a sum of per-block ToRGB outputs (StyleGAN2's skips)
``feature_margin(layer)`` pixels of a feature map outside the image on each side (StyleGAN3's
                          margins; 0 elsewhere)
``feature_shape(layer)``  ``(H, W, C)`` of a feature map, margins included
``layer_summary()``       one row per style layer for ``jaxedit layers`` (name, slot, size,
                          channels, style width, torgb; StyleGAN3 also rate and margin)
========================  ==================================================================

Style members (families with ``has_styles``; the others raise ValueError):

========================  ==================================================================
``slot_layers``           the style layer each W+ slot drives, for SeFa (``num_ws`` names)
``style_weight(name)``    the raw affine weight ``[w_dim, C_in]`` that maps w to the style
``style_dim(name)``       ``C_in``, the length of the layer's style vector
``modulated_layers``      the layers whose style scales input channels (Editing in Style)
``style_input(name)``     the `features` key whose value that layer's style scales
                          (``"const"``: StyleGAN2's learned constant)
``style_inputs(...)``     those inputs from one `features` pass ``{name: [N, H, W, C_in]}``
========================  ==================================================================

The member names are new where today's names already mean something else on StyleGAN2
(``layer_names`` are its style layers, ``features`` returns every conv layer's features).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import jax
import numpy as np
from flax import struct

from .._ops import Precision
from .._typing import ClassDimVectors, Features, FeaturesArray, Images, Latents


@struct.dataclass
class LayerFeatures:
    """A forward pass paused after a feature layer (see `AbstractGenerator.features_at`).

    Attributes:
      x: ``[N, H, W, C]`` the output features of ``layer`` (edit them, then `resume_at`).
      context: what the rest of the pass needs (family-specific pytree of arrays).
      layer: the feature layer's name (static).
      options: static ``(name, value)`` pairs of the pass (truncation, noise mode, precision).
    """

    x: FeaturesArray
    context: Any
    layer: str = struct.field(pytree_node=False)
    options: tuple = struct.field(pytree_node=False, default=())

    def option(self, name: str, default: Any = None) -> Any:
        """The value of a static option of the paused pass (``default`` if it has none)."""
        return dict(self.options).get(name, default)


class AbstractGenerator(abc.ABC):
    """The generator protocol, an ABC mixed into each family's ``nnx.Module``.

    Class attributes every family sets: ``family``, ``display_name``, ``has_styles``,
    ``has_noise``, ``truncation_kind``, ``default_space``. Arrays: latents ``[N, D]`` (StyleGAN2
    feature passes take ws ``[N, num_ws, w_dim]``), class vectors ``[N, class_dim]``, features
    ``[N, H, W, C]``, images ``[N, resolution, resolution, img_channels]`` (NHWC).
    """

    family: ClassVar[str]
    display_name: ClassVar[str]
    has_styles: ClassVar[bool]
    has_noise: ClassVar[bool]
    truncation_kind: ClassVar[str]
    default_space: ClassVar[str]

    # ---- conditioning and latent spaces -------------------------------------------------------
    @property
    @abc.abstractmethod
    def class_dim(self) -> int:
        """Length of the class vectors (0: unconditional, pass no class vectors)."""

    @property
    def uses_class(self) -> bool:
        """Whether every sample needs a class vector ``[class_dim]``."""
        return self.class_dim > 0

    @property
    @abc.abstractmethod
    def spaces(self) -> tuple[str, ...]:
        """The latent spaces of this generator (names as ``jaxedit.jacobian``'s ``space``)."""

    @abc.abstractmethod
    def latent_dim(self, space: str) -> int:
        """D, the number of latent coordinates of ``space``.

        Raises:
          ValueError: ``space`` is not one of `spaces`.
        """

    @abc.abstractmethod
    def check_truncation(self, truncation: float) -> float:
        """``truncation`` as a float, validated for this family's `truncation_kind`.

        Raises:
          ValueError: not finite, or (``"stats"``) outside (0, 1].
        """

    # ---- feature layers -------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def feature_layers(self) -> tuple[str, ...]:
        """The layers, in forward order, whose output features `features_at` reads."""

    @abc.abstractmethod
    def resolve_layer(self, layer: str | int) -> str:
        """A feature layer by name or by the reference's index L (the output of layers
        ``0..L-1``, ``1 <= L <= len(feature_layers)``) -> its name.

        Raises:
          ValueError: unknown name or index out of range.
        """

    @abc.abstractmethod
    def features_at(
        self,
        latents: Latents,
        layer: str | int,
        *,
        c: ClassDimVectors | None = None,
        truncation: float = 1.0,
        noise_mode: str = "const",
        key=None,
        dtype=None,
        precision: Precision = "highest",
    ) -> LayerFeatures:
        """Run the forward pass up to and including ``layer``.

        Args:
          latents: StyleGAN2: ws ``[N, num_ws, w_dim]`` (truncation already applied); BigGAN:
            z ``[N, z_dim]``.
          layer: a `feature_layers` name or the reference's index L.
          c: class vectors ``[N, class_dim]`` (BigGAN; StyleGAN2's ws already include c).
          truncation: BigGAN's truncation (``"stats"``); must stay 1.0 for StyleGAN2.
          noise_mode, key: StyleGAN2 noise (``"const"``, ``"random"`` with ``key``, ``"none"``).
          dtype, precision: compute dtype and matmul precision.
        Returns:
          `LayerFeatures` with ``x`` ``[N, H, W, C]``.
        Raises:
          ValueError: bad shapes, unknown layer, or an option the family does not have.
        """

    @abc.abstractmethod
    def resume_at(self, state: LayerFeatures, x: Features | None = None) -> Images:
        """The rest of the pass from ``state`` -> images ``[N, H, W, img_channels]``.

        Args:
          state: as `features_at` returns it.
          x: replacement features ``[N, H, W, C]`` (default ``state.x``); resuming the
            unchanged features equals the full forward pass.
        Raises:
          TypeError: ``state`` is not a `LayerFeatures`.
          ValueError: ``x`` has another shape than ``state.x``.
        """

    # ---- geometry of the features -------------------------------------------------------------
    has_skip_image: ClassVar[bool] = False
    has_transform: ClassVar[bool] = False

    def feature_margin(self, layer: str) -> int:
        """Pixels of ``layer``'s feature map outside the image on each side (StyleGAN3 keeps a
        margin around the image in its intermediate layers; 0 for the other families). The
        image region of a map ``[H, W]`` is ``[m:H-m, m:W-m]``."""
        del layer
        return 0

    def feature_shape(self, layer: str) -> tuple[int, int, int]:
        """``(H, W, C)`` of ``layer``'s output features, margins included.

        Raises:
          ValueError: unknown layer, or a family that does not say (call `features_at`).
        """
        raise ValueError(f"{self.display_name} does not list its feature shapes")

    def layer_summary(self) -> list[dict[str, Any]]:
        """One row per style layer in W+ slot order: ``name``, ``slot``, ``size``,
        ``in_channels``, ``out_channels``, ``style``, ``torgb`` (and family extras)."""
        raise self._no_styles("layer_summary")

    # ---- style layers (has_styles) -------------------------------------------------------------
    def _no_styles(self, what: str):
        return ValueError(f"{what}: {self.display_name} has no per-layer styles")

    @property
    def slot_layers(self) -> tuple[str, ...]:
        """The style layer each W+ slot drives (``num_ws`` names; SeFa's blocks)."""
        raise self._no_styles("slot_layers")

    def style_weight(self, name: str) -> np.ndarray:
        """The raw stored affine weight ``[w_dim, C_in]`` of style layer ``name`` (float32)."""
        raise self._no_styles("style_weight")

    def style_dim(self, name: str) -> int:
        """``C_in``: the length of style layer ``name``'s style vector."""
        return int(self.style_weight(name).shape[1])

    @property
    def modulated_layers(self) -> tuple[str, ...]:
        """The style layers whose style scales the input channels of a (modulated) conv."""
        raise self._no_styles("modulated_layers")

    def style_input(self, name: str) -> str:
        """The `features` key whose value the style of ``name`` scales (``"const"``: a learned
        constant input)."""
        raise self._no_styles("style_input")

    def style_inputs(self, feats, layers, n: int, dtype) -> dict[str, jax.Array]:
        """``{layer: [N, H, W, C_in]}``: the input of every layer in ``layers`` (each a
        `modulated_layers` name) from one `features` pass ``feats``; a constant input is
        broadcast to ``n`` samples in ``dtype``."""
        del feats, layers, n, dtype
        raise self._no_styles("style_inputs")

    @staticmethod
    def _resume_input(state: LayerFeatures, x) -> jax.Array:
        """Checks for `resume_at`: the features to continue from."""
        if not isinstance(state, LayerFeatures):
            raise TypeError(f"state must be a LayerFeatures, got {type(state).__name__}")
        if x is None:
            return state.x
        if tuple(getattr(x, "shape", ())) != tuple(state.x.shape):
            raise ValueError(
                f"x must have the shape of the features at {state.layer}, "
                f"{tuple(state.x.shape)}, got {tuple(getattr(x, 'shape', ()))}"
            )
        return x


def layer_position(layer, names: tuple[str, ...], what: str) -> int:
    """The position in ``names`` of a layer given by name or by the reference's index L
    (position ``L - 1``); ``what`` names the generator in the range message.

    Raises:
      ValueError: unknown name, or L outside ``1..len(names)``.
    """
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not 1 <= layer <= len(names):
            raise ValueError(
                f"layer index {layer} out of range: the reference's index L runs "
                f"1..{len(names)} for this {what} ({names[0]} .. {names[-1]})"
            )
        return int(layer) - 1
    if layer not in names:
        raise ValueError(
            f"unknown layer {layer!r}; choose one of {list(names)} (or the "
            f"reference's index 1..{len(names)})"
        )
    return names.index(layer)


__all__ = ["AbstractGenerator", "LayerFeatures"]
