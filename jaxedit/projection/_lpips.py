"""LPIPS (VGG16, v0.1), the perceptual distance of GAN inversion, as a pure JAX function.

What the ``lpips`` package (``lpips.LPIPS(net="vgg")``, v0.1) computes, for images ``x, y`` in
``[-1, 1]``::

    s(x)   = (x - shift) / scale          shift = (-.030, -.088, -.188), scale = (.458, .448, .450)
    f_k(x) = tap k of VGG16 features(s(x))   relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    u_k(x) = f_k / (sqrt(sum_c f_k^2) + 1e-10)          unit-normalized over channels
    d(x,y) = sum_k mean_hw sum_c w_k[c] (u_k(x) - u_k(y))^2

(``shift``/``scale`` are torchvision's ImageNet mean/std moved to ``[-1, 1]``.) NVIDIA's
``vgg16.pt`` (stylegan2-ada-pytorch's projector) holds the same network with the lin weights
``w_k`` folded in: with ``return_lpips=True`` it returns the concatenated
``u_k * sqrt(w_k / (h_k w_k))``, whose squared Euclidean distance is ``d``; `LPIPS.features` is
that vector, so a projector can compute the target's features once. It takes ``[0, 255]``
inputs (the projector feeds ``(x + 1) * 127.5``); here every input is a jaxedit image in
``[-1, 1]``, which is the same computation. The projector first shrinks images larger than 256
to 256 x 256 by area averaging (``F.interpolate(mode="area")``): ``resize_to=256``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from converters import lpips as _conv

from .._checks import is_tracer
from .._ops import Precision, as_precision
from .._resample import area_matrix
from ._vgg import MIN_SIZE, vgg16_taps

#: The ``lpips`` package's ScalingLayer (v0.1): ``(x - SHIFT) / SCALE``.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
_HIGHEST = lax.Precision.HIGHEST


# ---------------------------------------------------------------------------------------------
# Pure functions of the params pytree.
# ---------------------------------------------------------------------------------------------
def _unit(f: jax.Array) -> jax.Array:
    """``f / (||f||_channels + eps)``; the norm's gradient is taken as 0 where ``f = 0`` (torch's
    would be NaN there)."""
    s = jnp.sum(f * f, axis=-1, keepdims=True)
    pos = s > 0
    norm = jnp.where(pos, jnp.sqrt(jnp.where(pos, s, 1)), 0)
    return f / (norm + EPS)


def _prepare(x: jax.Array, dtype, resize_to: int | None) -> jax.Array:
    x = x.astype(dtype)
    h, w = x.shape[1], x.shape[2]
    if resize_to is not None and (h > resize_to or w > resize_to):
        ph = jnp.asarray(area_matrix(h, resize_to), dtype)
        pw = jnp.asarray(area_matrix(w, resize_to), dtype)
        x = jnp.einsum("hH,nHWc,wW->nhwc", ph, x, pw, precision=_HIGHEST)
    shift = jnp.asarray(SHIFT, dtype)
    scale = jnp.asarray(SCALE, dtype)
    return (x - shift) / scale


def _cast(params: dict, dtype) -> dict:
    return jax.tree.map(lambda a: jnp.asarray(a).astype(dtype), params)


def _units(params: dict, x: jax.Array, dtype, resize_to, precision) -> list[jax.Array]:
    p = _cast(params, dtype)
    return [_unit(f) for f in vgg16_taps(p["conv"], _prepare(x, dtype, resize_to), precision)]


@functools.partial(jax.jit, static_argnames=("resize_to", "precision"))
def lpips_distance(
    params: dict,
    x: jax.Array,
    y: jax.Array,
    *,
    resize_to: int | None = None,
    precision: Precision = "highest",
) -> jax.Array:
    """LPIPS distances ``[N]`` of images ``x [N, H, W, 3]`` and ``y [N or 1, H, W, 3]``.

    The pure function under `LPIPS.__call__` (no input checks); ``params`` is `LPIPS.params`.
    Computed in the promoted floating dtype of ``x`` and ``y``.
    """
    dtype = jnp.promote_types(jnp.result_type(x, y), jnp.float32)
    ux = _units(params, x, dtype, resize_to, precision)
    uy = _units(params, y, dtype, resize_to, precision)
    lins = _cast(params["lin"], dtype)
    total = jnp.zeros((), dtype)
    for a, b, w in zip(ux, uy, lins):
        d = jnp.square(a - b)
        hw = d.shape[1] * d.shape[2]
        total = total + jnp.einsum("nhwc,c->n", d, w, precision=as_precision(_HIGHEST)) / hw
    return total


@functools.partial(jax.jit, static_argnames=("resize_to", "precision"))
def lpips_features(
    params: dict,
    x: jax.Array,
    *,
    resize_to: int | None = None,
    precision: Precision = "highest",
) -> jax.Array:
    """Feature vectors ``[N, D]`` whose squared Euclidean distance is the LPIPS distance
    (NVIDIA ``vgg16.pt``'s ``return_lpips=True``); lin weights below 0 count as 0 here."""
    dtype = jnp.promote_types(jnp.result_type(x), jnp.float32)
    lins = _cast(params["lin"], dtype)
    parts = []
    for u, w in zip(_units(params, x, dtype, resize_to, precision), lins):
        hw = u.shape[1] * u.shape[2]
        parts.append((u * jnp.sqrt(jnp.maximum(w, 0) / hw)).reshape(u.shape[0], -1))
    return jnp.concatenate(parts, axis=1)


def compiled_programs() -> dict[str, int]:
    """Programs compiled so far by the LPIPS kernels (``{"lpips_distance": n, ...}``), for the
    recompile guard of `jaxedit.debug`: new values of the same shapes compile nothing new."""
    fns: dict[str, Any] = {"lpips_distance": lpips_distance, "lpips_features": lpips_features}
    return {name: int(fn._cache_size()) for name, fn in fns.items()}


# ---------------------------------------------------------------------------------------------
# The public object.
# ---------------------------------------------------------------------------------------------
def _check_images(name: str, x: Any, resize_to: int | None) -> jax.Array:
    if not is_tracer(x):
        x = jnp.asarray(x)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{name} must be RGB images [N, H, W, 3] in [-1, 1], got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be floating images in [-1, 1], got dtype {x.dtype}")
    h, w = x.shape[1], x.shape[2]
    if resize_to is not None and (h > resize_to or w > resize_to):
        h = w = resize_to
    if min(h, w) < MIN_SIZE:
        raise ValueError(
            f"{name}: LPIPS-VGG16 needs images of at least {MIN_SIZE} x {MIN_SIZE} "
            f"(relu5_3 is 16x smaller), got {x.shape[1]} x {x.shape[2]}"
        )
    return x


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=["params"], meta_fields=["resize_to", "source"]
)
@dataclasses.dataclass(frozen=True)
class LPIPS:
    """The LPIPS-VGG16 distance (v0.1) with its weights, a pytree (pass it into ``jax.jit``).

    ``lpips(x, y)`` -> ``[N]`` distances of jaxedit images (``[N, H, W, 3]`` in ``[-1, 1]``);
    ``y`` may have batch 1 (one target for every ``x``). Differentiable in both images.

    Attributes:
      params: ``{"conv": [{"w": [3, 3, I, O], "b": [O]}] * 13, "lin": [[C]] * 5}`` (the VGG16
        ``features`` convolutions conv1_1 .. conv5_3 and the lin weights of the taps relu1_2,
        relu2_2, relu3_3, relu4_3, relu5_3; C = 64, 128, 256, 512, 512).
      resize_to: images higher or wider than this are first area-averaged to
        ``resize_to x resize_to`` (NVIDIA's projector: 256); None never resizes.
      source: where the weights came from (a file format or ``"random"``), for display.
    """

    params: dict
    resize_to: int | None = None
    source: str = "random"

    def __call__(self, x: Any, y: Any, *, precision: Precision = "highest") -> jax.Array:
        """LPIPS distances ``[N]`` of ``x [N, H, W, 3]`` and ``y [N | 1, H, W, 3]`` in ``[-1, 1]``.

        Computed in the promoted dtype of the inputs (float64 inputs under x64: float64).
        """
        x = _check_images("x", x, self.resize_to)
        y = _check_images("y", y, self.resize_to)
        if x.shape[1:] != y.shape[1:] or y.shape[0] not in (1, x.shape[0]):
            raise ValueError(
                f"y must have x's shape {tuple(x.shape)} (or batch 1), got {tuple(y.shape)}"
            )
        return lpips_distance(
            self.params, x, y, resize_to=self.resize_to, precision=as_precision(precision)
        )

    def distance(self, x: Any, y: Any) -> jax.Array:
        """The `jaxedit.projection.ImageLoss` protocol (``loss=`` of `jaxedit.project`): the
        same as calling the object, ``[N, H, W, 3]`` x2 -> ``[N]``."""
        return self(x, y)

    def features(self, x: Any, *, precision: Precision = "highest") -> jax.Array:
        """``[N, D]`` features whose squared distance ``sum((f(x) - f(y))**2, -1)`` is the LPIPS
        distance (NVIDIA ``vgg16.pt``'s ``return_lpips=True``; exact when every lin weight is
        >= 0, as in the published weights). Compute a target's features once, then compare.
        Only distances are meaningful: the order of the D coordinates is not NVIDIA's."""
        x = _check_images("x", x, self.resize_to)
        return lpips_features(
            self.params, x, resize_to=self.resize_to, precision=as_precision(precision)
        )

    @classmethod
    def random(cls, key: Any = None, *, resize_to: int | None = None, dtype: Any = np.float32):
        """Random weights (He-normal convolutions, small biases, lin weights in [0, 1)), for
        tests and examples.

        Args:
          key: an int seed, a ``jax.random`` key (a seed is drawn from it), or None (seed 0).
          resize_to: see `LPIPS`.
          dtype: the parameters' dtype.
        """
        if key is None or isinstance(key, (int, np.integer)):
            seed = 0 if key is None else int(key)
        else:
            seed = int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))
        rng = np.random.default_rng(seed)
        conv = []
        for cin, cout in _conv.CONV_CHANNELS:
            w = rng.standard_normal((3, 3, cin, cout)) * np.sqrt(2.0 / (9 * cin))
            b = 0.01 * rng.standard_normal(cout)
            conv.append({"w": jnp.asarray(w.astype(dtype)), "b": jnp.asarray(b.astype(dtype))})
        lin = [jnp.asarray(rng.uniform(0, 1, c).astype(dtype)) for c in _conv.TAP_CHANNELS]
        return cls({"conv": conv, "lin": lin}, _check_resize_to(resize_to), "random")

    @classmethod
    def from_weights(cls, weights: _conv.LpipsWeights, *, resize_to: int | None = None):
        """Build from `converters.lpips.LpipsWeights` (what the readers return)."""
        conv = [
            {"w": jnp.asarray(w), "b": jnp.asarray(b)}
            for w, b in zip(weights.conv_weights, weights.conv_biases)
        ]
        lin = [jnp.asarray(w) for w in weights.lin_weights]
        return cls({"conv": conv, "lin": lin}, _check_resize_to(resize_to), weights.source_format)


def _check_resize_to(resize_to: Any) -> int | None:
    if resize_to is None:
        return None
    if isinstance(resize_to, bool) or not isinstance(resize_to, (int, np.integer)):
        raise ValueError(f"resize_to must be an int or None, got {resize_to!r}")
    if int(resize_to) < MIN_SIZE:
        raise ValueError(f"resize_to must be at least {MIN_SIZE}, got {resize_to}")
    return int(resize_to)


def load_lpips(
    path: str | os.PathLike | None = None,
    *,
    lin: str | os.PathLike | None = None,
    backbone: str | os.PathLike | None = None,
    resize_to: int | None = None,
    allow_nonfinite: bool = False,
) -> LPIPS:
    """Load LPIPS-VGG16 weights from local files (nothing is downloaded, no code is run).

    Either NVIDIA's TorchScript ``vgg16.pt`` (stylegan2-ada-pytorch's projector)::

        lpips = load_lpips("vgg16.pt", resize_to=256)      # as the projector resizes

    or the ``lpips`` package's lin weights with torchvision's VGG16::

        lpips = load_lpips(lin="vgg.pth", backbone="vgg16-397923af.pth")

    Args:
      path: NVIDIA's ``vgg16.pt`` (a TorchScript zip; only its tensors are read).
      lin: ``lpips/weights/v0.1/vgg.pth`` (``lin0.model.1.weight`` ...).
      backbone: torchvision's ``vgg16-397923af.pth`` (``features.0.weight`` ...).
      resize_to: see `LPIPS` (None: never resize).
      allow_nonfinite: accept weights holding NaN or infinity.

    Returns:
      an `LPIPS`.

    Raises:
      TypeError: neither ``path`` nor both ``lin`` and ``backbone``, or both kinds.
      UnsupportedFormatError: not a file of either kind (one line naming it and, when the
        file is of the other kind, the call that reads it).
      UnsafePickleError: the archive's pickle names a global outside the allowlist.
      KeyMismatchError: a tensor is missing (named).
      ShapeMismatchError: a tensor has the wrong shape (named).
      CorruptCheckpointError: a file is damaged (NonFiniteParameterError: NaN / infinity).
      FileNotFoundError: a file does not exist.
    """
    if path is not None and (lin is not None or backbone is not None):
        raise TypeError("load_lpips takes either path (vgg16.pt) or lin= and backbone=, not both")
    if path is not None:
        weights = _conv.read_torchscript(path, allow_nonfinite=allow_nonfinite)
    elif lin is not None and backbone is not None:
        weights = _conv.read_state_dicts(lin, backbone, allow_nonfinite=allow_nonfinite)
    else:
        missing = "backbone=" if lin is not None else "lin=" if backbone is not None else "path"
        raise TypeError(
            f"load_lpips needs {missing}: pass NVIDIA's vgg16.pt as path, or the lpips "
            "package's vgg.pth as lin= with torchvision's vgg16-397923af.pth as backbone="
        )
    return LPIPS.from_weights(weights, resize_to=resize_to)
