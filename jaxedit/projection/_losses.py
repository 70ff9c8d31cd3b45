"""Image losses of the projection: the protocol every loss satisfies, and the simple ones.

A loss is a JAX pytree (its arrays, e.g. network weights, are the leaves; its settings static
auxiliary data) with a *pure* method::

    loss.distance(x, y) -> [N]      x, y: images [N, H, W, C] (NHWC, in [-1, 1])

It may also split the target side off, so that work on the fixed target images (e.g. their
network features) is done once per projection instead of once per step::

    prepared = loss.prepare(y)                  # any pytree
    loss.distance_prepared(x, prepared) -> [N]  # == loss.distance(x, y)

`jaxedit.project` and `jaxedit.pivotal_tune` pass the loss's array leaves into their jitted
steps as arguments (never as compile-time constants) and keep the rest static, so a loss object
must flatten into arrays plus hashable static data (a ``flax.struct`` dataclass, an
``nnx.Module``, ...). A flax ``nnx.Module`` such as the LPIPS network qualifies as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from flax import struct

from .._checks import finite_scalar


@runtime_checkable
class ImageLoss(Protocol):
    """What `jaxedit.project` and `jaxedit.pivotal_tune` ask of a loss (see the module text).

    ``distance(x, y)``: images ``[N, H, W, C]`` and ``[N, H, W, C]`` -> per-image distances
    ``[N]``, pure in the loss's array leaves. Optional: ``prepare(y)`` and
    ``distance_prepared(x, prepared)`` (the target-side work done once).
    """

    def distance(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """Per-image distance of images ``x`` ``[N, H, W, C]`` to ``y`` ``[N, H, W, C]`` -> ``[N]``."""
        ...


@struct.dataclass
class MSE:
    """Mean squared difference per image: ``mean((x - y)**2)`` over ``H, W, C`` -> ``[N]``.

    PTI's ``l2_loss`` (``torch.nn.MSELoss``, mean reduction) for one image; on images in
    [-1, 1].
    """

    def distance(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """``[N, H, W, C]``, ``[N, H, W, C]`` -> ``[N]``."""
        return jnp.mean(jnp.square(x - y), axis=tuple(range(1, x.ndim)))

    def prepare(self, y: jax.Array) -> jax.Array:
        """The target as it is (nothing to precompute)."""
        return y

    def distance_prepared(self, x: jax.Array, prepared: jax.Array) -> jax.Array:
        """`distance` to a `prepare`-d target."""
        return self.distance(x, prepared)


@struct.dataclass
class Weighted:
    """A weighted sum of losses: ``sum_k weights[k] * losses[k].distance(x, y)`` -> ``[N]``.

    PTI's objective is ``Weighted((MSE(), lpips), (1.0, 1.0))``; its locality term
    ``Weighted((MSE(), lpips), (0.1, 0.1))``.

    Attributes:
      losses: the terms (any `ImageLoss`).
      weights: one finite float per term (static).

    Raises:
      ValueError: no terms, a weight count that differs from the loss count, or a non-finite
        weight.
      TypeError: a term without ``distance``.
    """

    losses: tuple[Any, ...]
    weights: tuple[float, ...] = struct.field(pytree_node=False, default=())

    def __post_init__(self):
        losses = tuple(self.losses)
        weights = tuple(self.weights) if self.weights else (1.0,) * len(losses)
        if not losses:
            raise ValueError("Weighted needs at least one loss")
        if len(weights) != len(losses):
            raise ValueError(
                f"Weighted: {len(weights)} weights for {len(losses)} losses (give one each)"
            )
        for k, term in enumerate(losses):
            check_loss(term, f"losses[{k}]")
        weights = tuple(finite_scalar(f"weights[{k}]", w) for k, w in enumerate(weights))
        object.__setattr__(self, "losses", losses)
        object.__setattr__(self, "weights", weights)

    def distance(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """``[N, H, W, C]``, ``[N, H, W, C]`` -> ``[N]``."""
        return self.distance_prepared(x, self.prepare(y))

    def prepare(self, y: jax.Array) -> tuple:
        """Each term's prepared target."""
        return tuple(prepare(term, y) for term in self.losses)

    def distance_prepared(self, x: jax.Array, prepared: Sequence) -> jax.Array:
        """`distance` to a `prepare`-d target."""
        total = None
        for w, term, p in zip(self.weights, self.losses, prepared):
            d = w * distance_prepared(term, x, p)
            total = d if total is None else total + d
        assert total is not None
        return total


@struct.dataclass
class Resized:
    """A loss evaluated on images area-downsampled to ``size`` pixels when they are larger.

    NVIDIA's projector feeds VGG16 images of at most 256 px: ``F.interpolate(..., size=256,
    mode="area")`` when the generator's output is larger (an integer factor for the
    power-of-two resolutions: the mean of each ``s x s`` block). Smaller images pass unchanged.

    Attributes:
      loss: the wrapped `ImageLoss`.
      size: the largest side passed to ``loss`` (static).

    Raises:
      ValueError: ``size`` is not a positive integer.
      TypeError: ``loss`` has no ``distance``.
    """

    loss: Any
    size: int = struct.field(pytree_node=False, default=256)

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be a positive integer, got {self.size!r}")
        check_loss(self.loss, "loss")

    def _shrink(self, x: jax.Array) -> jax.Array:
        return area_downsample(x, self.size)

    def distance(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """``[N, H, W, C]``, ``[N, H, W, C]`` -> ``[N]``."""
        return distance(self.loss, self._shrink(x), self._shrink(y))

    def prepare(self, y: jax.Array) -> Any:
        """The wrapped loss's prepared target, from the downsampled target."""
        return prepare(self.loss, self._shrink(y))

    def distance_prepared(self, x: jax.Array, prepared: Any) -> jax.Array:
        """`distance` to a `prepare`-d target."""
        return distance_prepared(self.loss, self._shrink(x), prepared)


def area_downsample(x: jax.Array, size: int) -> jax.Array:
    """``[N, H, W, C]`` -> ``[N, size, size, C]`` by block means when ``H > size`` (torch's
    ``mode="area"`` for an integer factor); unchanged when ``H <= size``.

    Raises:
      ValueError: ``H`` is larger than ``size`` but not a multiple of it, or not square.
    """
    n, h, w, c = x.shape
    if h <= size and w <= size:
        return x
    if h != w or h % size:
        raise ValueError(
            f"area downsampling needs square images whose side is a multiple of {size}, got {h}x{w}"
        )
    s = h // size
    return x.reshape(n, size, s, size, s, c).mean(axis=(2, 4))


def check_loss(loss: Any, name: str = "loss") -> Any:
    """``loss`` if it has a callable ``distance`` (the `ImageLoss` protocol), else TypeError."""
    if not callable(getattr(loss, "distance", None)):
        raise TypeError(
            f"{name} must be an image loss with a distance(x, y) -> [N] method (e.g. "
            f"jaxedit.projection.MSE()), got {type(loss).__name__}"
        )
    return loss


def prepare(loss: Any, y: jax.Array) -> Any:
    """``loss.prepare(y)`` when the loss has it, else ``y`` itself."""
    fn = getattr(loss, "prepare", None)
    return fn(y) if callable(fn) and callable(getattr(loss, "distance_prepared", None)) else y


def distance_prepared(loss: Any, x: jax.Array, prepared: Any) -> jax.Array:
    """``loss.distance_prepared(x, prepared)``, or ``loss.distance(x, prepared)`` for a loss
    without the optional pair (its prepared target is the target itself)."""
    has_pair = callable(getattr(loss, "prepare", None)) and callable(
        getattr(loss, "distance_prepared", None)
    )
    return loss.distance_prepared(x, prepared) if has_pair else loss.distance(x, prepared)


def distance(loss: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    """``loss.distance(x, y)`` -> ``[N]``."""
    return loss.distance(x, y)


def default_loss() -> Any:
    """The loss `jaxedit.project` uses when none is given.

    The reference projector's distance is LPIPS (VGG16) on images of at most 256 px, i.e.
    ``Resized(lpips, 256)``; until the LPIPS weights are part of this build, the default is
    `MSE` (pass ``loss=`` for any other).
    """
    return MSE()


def default_tune_loss() -> Any:
    """The loss `jaxedit.pivotal_tune` uses when none is given: PTI's ``L2 + LPIPS`` once
    LPIPS is part of this build; `MSE` until then."""
    return MSE()


# ---- static / traced halves of a loss (for jitted steps) -----------------------------------------
class _Static:
    """The hashable static half of a pytree: its treedef and non-array leaves."""

    def __init__(self, treedef, statics: tuple):
        self.treedef = treedef
        self.statics = statics
        self._hash = hash((treedef, statics))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, _Static)
            and self.treedef == other.treedef
            and self.statics == other.statics
        )


def _is_array(v) -> bool:
    return isinstance(v, (jax.Array, jnp.ndarray)) or hasattr(v, "__array__")


def split_static(tree: Any, name: str = "loss") -> tuple[_Static, list]:
    """``tree`` -> (hashable static half, list of array leaves) for a jitted function.

    Raises:
      TypeError: a non-array leaf that is not hashable (it would have to be traced).
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    arrays, statics = [], []
    for leaf in leaves:
        if _is_array(leaf):
            arrays.append(leaf)
            statics.append(None)
        else:
            try:
                hash(leaf)
            except TypeError:
                raise TypeError(
                    f"{name}: a leaf of type {type(leaf).__name__} is neither an array nor "
                    f"hashable; make it a pytree of arrays and static settings"
                ) from None
            statics.append(("static", leaf))
    return _Static(treedef, tuple(statics)), arrays


def merge_static(static: _Static, arrays: Sequence) -> Any:
    """The inverse of `split_static`."""
    it = iter(arrays)
    leaves = [next(it) if s is None else s[1] for s in static.statics]
    return jax.tree_util.tree_unflatten(static.treedef, leaves)


__all__ = [
    "MSE",
    "ImageLoss",
    "Resized",
    "Weighted",
    "area_downsample",
    "check_loss",
    "default_loss",
    "default_tune_loss",
    "distance_prepared",
    "merge_static",
    "prepare",
    "split_static",
]
