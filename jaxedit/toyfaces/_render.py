"""The toy-face renderer: named factors -> anti-aliased 64x64 RGB faces and exact part masks.

Every shape is an implicit function turned into a (first-order) signed distance ``sdf`` in
pixels; its coverage is a cubic smoothstep of ``sdf`` over `EDGE` pixels, exactly 0 at
``sdf >= EDGE / 2`` and exactly 1 at ``sdf <= -EDGE / 2``, so a part's mask ("coverage > 0") is
the set of pixels it can colour, and the image is a smooth function of the factors. Layers are
composited back to front (``over``); coordinates are pixel centres ``(i + 0.5)`` with x to the
right and y down. Everything is a pure ``jnp`` function of one factor vector, vmapped and jitted.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._typing import ToyFactors, ToyImages, ToyPartMasks

SIZE = 64
EDGE = 2.0  # anti-aliasing ramp width in pixels


class Factor(NamedTuple):
    """One generative factor: ``name``, the ``part`` that owns it, its value range ``[lo, hi]``,
    and what it does."""

    name: str
    part: str
    lo: float
    hi: float
    doc: str


# The order is the order of the factor vector and of the z coordinates (see factors_from_z).
FACTORS: tuple[Factor, ...] = (
    Factor("background_colour", "background", 0.0, 1.0, "palette: blue -> green -> pink"),
    Factor("face_width", "face", 17.5, 22.0, "half-width of the face ellipse (px)"),
    Factor("skin_tone", "face", 0.0, 1.0, "palette: light -> dark (the nose is a darker skin)"),
    Factor("hair_colour", "hair", 0.0, 1.0, "palette: black -> brown -> blond -> red"),
    Factor("hair_length", "hair", 24.0, 50.0, "lowest row the hair reaches (px)"),
    Factor("left_eye_open", "left_eye", 0.0, 1.0, "eye half-height 1 -> 3.5 px"),
    Factor("left_iris_colour", "left_eye", 0.0, 1.0, "palette: brown -> green -> blue"),
    Factor("right_eye_open", "right_eye", 0.0, 1.0, "eye half-height 1 -> 3.5 px"),
    Factor("right_iris_colour", "right_eye", 0.0, 1.0, "palette: brown -> green -> blue"),
    Factor("brow_raise", "eyebrows", 0.0, 2.5, "both brows moved up (px)"),
    Factor("brow_tilt", "eyebrows", -0.35, 0.35, "brow angle (rad; > 0: inner ends down)"),
    Factor("nose_length", "nose", 5.0, 10.0, "nose length (px)"),
    Factor("nose_width", "nose", 2.0, 4.0, "nose half-width (px)"),
    Factor("mouth_width", "mouth", 5.0, 9.0, "mouth half-width (px)"),
    Factor("mouth_open", "mouth", 0.0, 1.0, "opening: lips thicken and a dark inside appears"),
    Factor("mouth_smile", "mouth", -1.0, 1.0, "corner curvature: frown -> smile"),
    Factor("lip_colour", "mouth", 0.0, 1.0, "palette: pale pink -> red -> plum"),
)

# Parts, back to front (the order of compositing; "face" includes the features drawn on it).
PARTS: tuple[str, ...] = (
    "background",
    "hair",
    "face",
    "nose",
    "mouth",
    "left_eye",
    "right_eye",
    "eyebrows",
)

# Named unions of parts (region presets beyond the single parts).
GROUPS: dict[str, tuple[str, ...]] = {"eyes": ("left_eye", "right_eye")}

_INDEX = {f.name: i for i, f in enumerate(FACTORS)}

# Fixed geometry (pixels).
FACE_CENTER = (32.0, 35.0)  # (x, y)
FACE_HALF_HEIGHT = 23.0
HAIR_CENTER_Y = 31.0
HAIR_HALF_HEIGHT = 26.0
HAIR_EXTRA_WIDTH = 4.5
EYE_CENTERS = ((23.0, 29.0), (41.0, 29.0))  # left (image left), right
EYE_HALF_WIDTH = 5.0
IRIS_RADIUS = 2.6
BROW_CENTERS = ((23.0, 21.0), (41.0, 21.0))
BROW_HALF_LENGTH = 4.5
BROW_RADIUS = 1.1
NOSE_TOP = 32.0
MOUTH_CENTER = (32.0, 48.5)

# Colours in [0, 1] RGB; palettes are piecewise linear in the factor.
PALETTES = {
    "background": ((0.55, 0.70, 0.92), (0.60, 0.85, 0.60), (0.95, 0.75, 0.80)),
    "skin": ((0.97, 0.84, 0.72), (0.80, 0.60, 0.45), (0.45, 0.30, 0.20)),
    "hair": ((0.10, 0.08, 0.07), (0.45, 0.28, 0.12), (0.92, 0.80, 0.45), (0.75, 0.25, 0.10)),
    "iris": ((0.42, 0.24, 0.10), (0.25, 0.58, 0.30), (0.20, 0.45, 0.90)),
    "lip": ((0.90, 0.55, 0.55), (0.78, 0.10, 0.15), (0.50, 0.15, 0.38)),
}
EYE_WHITE = (0.97, 0.97, 0.97)
BROW_COLOUR = (0.22, 0.14, 0.10)
MOUTH_INSIDE = (0.30, 0.05, 0.08)
NOSE_SHADE = 0.62


@dataclasses.dataclass(frozen=True)
class _Layer:
    part: str
    alpha: jax.Array  # [H, W] coverage in [0, 1]
    colour: jax.Array  # [3] or [H, W, 3]


def _palette(name: str, t):
    """t in [0, 1] -> [3] RGB, piecewise linear through the palette's stops."""
    stops = jnp.asarray(PALETTES[name], t.dtype)
    n = stops.shape[0] - 1
    s = jnp.clip(t, 0.0, 1.0) * n
    i = jnp.clip(jnp.floor(s), 0, n - 1).astype(jnp.int32)
    f = s - i
    return stops[i] * (1 - f) + stops[i + 1] * f


def _coverage(sdf):
    """Smoothstep coverage: 1 inside, 0 outside, cubic across [-EDGE/2, EDGE/2]."""
    t = jnp.clip(0.5 - sdf / EDGE, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ellipse_sdf(x, y, cx, cy, a, b):
    """First-order signed distance to an axis-aligned ellipse: f / |grad f| with
    f = sqrt((dx/a)^2 + (dy/b)^2) - 1 (exact on the axes, a distance to within a few percent
    near the boundary for the aspect ratios used here)."""
    dx, dy = x - cx, y - cy
    r = jnp.sqrt((dx / a) ** 2 + (dy / b) ** 2 + 1e-12)
    g = jnp.sqrt((dx / a**2) ** 2 + (dy / b**2) ** 2 + 1e-12) / r
    return (r - 1.0) / g


def _capsule_sdf(x, y, cx, cy, half_len, angle, radius):
    """Exact signed distance to a segment of half-length ``half_len`` at ``angle`` (rad), thickened."""
    ux, uy = jnp.cos(angle), jnp.sin(angle)
    dx, dy = x - cx, y - cy
    t = jnp.clip(dx * ux + dy * uy, -half_len, half_len)
    return jnp.sqrt((dx - t * ux) ** 2 + (dy - t * uy) ** 2 + 1e-12) - radius


def _bent_ellipse_sdf(x, y, cx, cy, a, b, bend):
    """Ellipse whose centre line is the parabola ``y = cy - bend * ((x - cx) / a)^2``; first-order
    distance from the analytic gradient of ``f = (dx/a)^2 + (dy'/b)^2 - 1``."""
    dx = x - cx
    u = dx / a
    dyp = (y - cy) + bend * u * u
    f = u * u + (dyp / b) ** 2 - 1.0
    fx = 2 * u / a + 2 * (dyp / b**2) * (2 * bend * u / a)
    fy = 2 * dyp / b**2
    return f / jnp.sqrt(fx * fx + fy * fy + 1e-6)


def _layers(f, x, y):
    """One factor vector [K] -> compositing layers, back to front."""
    g = {fac.name: f[i] for i, fac in enumerate(FACTORS)}
    dt = f.dtype
    c = lambda v: jnp.asarray(v, dt)  # noqa: E731
    fx, fy = FACE_CENTER
    skin = _palette("skin", g["skin_tone"])
    layers = [
        _Layer("background", jnp.ones_like(x), _palette("background", g["background_colour"]))
    ]

    hair_sdf = jnp.maximum(
        _ellipse_sdf(x, y, fx, HAIR_CENTER_Y, g["face_width"] + HAIR_EXTRA_WIDTH, HAIR_HALF_HEIGHT),
        y - g["hair_length"],
    )
    layers.append(_Layer("hair", _coverage(hair_sdf), _palette("hair", g["hair_colour"])))
    layers.append(
        _Layer(
            "face", _coverage(_ellipse_sdf(x, y, fx, fy, g["face_width"], FACE_HALF_HEIGHT)), skin
        )
    )

    half_len = g["nose_length"] / 2
    nose = _ellipse_sdf(x, y, fx, NOSE_TOP + half_len, g["nose_width"], half_len)
    layers.append(_Layer("nose", _coverage(nose), skin * NOSE_SHADE))

    mx, my = MOUTH_CENTER
    mw, op, sm = g["mouth_width"], g["mouth_open"], g["mouth_smile"]
    lips = _bent_ellipse_sdf(x, y, mx, my, mw, 1.6 + 1.8 * op, 3.0 * sm)
    inside = _bent_ellipse_sdf(x, y, mx, my, 0.8 * mw, 1e-3 + 1.6 * op, 3.0 * sm)
    layers.append(_Layer("mouth", _coverage(lips), _palette("lip", g["lip_colour"])))
    layers.append(_Layer("mouth", _coverage(inside) * _coverage(lips), c(MOUTH_INSIDE)))

    for side, (ex, ey) in zip(("left", "right"), EYE_CENTERS):
        half_h = 1.0 + 2.5 * g[f"{side}_eye_open"]
        white = _coverage(_ellipse_sdf(x, y, ex, ey, EYE_HALF_WIDTH, half_h))
        iris = _coverage(jnp.sqrt((x - ex) ** 2 + (y - ey) ** 2 + 1e-12) - IRIS_RADIUS)
        layers.append(_Layer(f"{side}_eye", white, c(EYE_WHITE)))
        layers.append(
            _Layer(f"{side}_eye", white * iris, _palette("iris", g[f"{side}_iris_colour"]))
        )

    for sign, (bx, by) in zip((1.0, -1.0), BROW_CENTERS):
        # left brow: inner end is its right end; tilt > 0 turns the inner ends down
        sdf = _capsule_sdf(
            x, y, bx, by - g["brow_raise"], BROW_HALF_LENGTH, sign * g["brow_tilt"], BROW_RADIUS
        )
        layers.append(_Layer("eyebrows", _coverage(sdf), c(BROW_COLOUR)))
    return layers


def _grid(dtype):
    r = jnp.arange(SIZE, dtype=dtype) + 0.5
    y, x = jnp.meshgrid(r, r, indexing="ij")
    return x, y


def _render_one(f):
    """[K] -> [H, W, 3] in [0, 1]."""
    x, y = _grid(f.dtype)
    img = jnp.zeros((SIZE, SIZE, 3), f.dtype)
    for layer in _layers(f, x, y):
        a = layer.alpha[..., None]
        img = img * (1 - a) + a * jnp.broadcast_to(layer.colour, img.shape)
    return img


def _visibility_one(f):
    """[K] -> {part: [H, W] float}: how much of each pixel's final colour comes from that part's
    layers (``face``: the face ellipse's coverage, features included)."""
    x, y = _grid(f.dtype)
    layers = _layers(f, x, y)
    vis = {p: jnp.zeros((SIZE, SIZE), f.dtype) for p in PARTS}
    for i, layer in enumerate(layers):
        above = jnp.ones((SIZE, SIZE), f.dtype)
        for other in layers[i + 1 :]:
            if other.part != layer.part:
                above = above * (1 - other.alpha)
        vis[layer.part] = jnp.maximum(vis[layer.part], layer.alpha * above)
    vis["face"] = layers[2].alpha
    return vis


@jax.jit
def _render_batch(factors):
    return jax.vmap(_render_one)(factors) * 2.0 - 1.0


@jax.jit
def _visibility_batch(factors):
    return jax.vmap(_visibility_one)(factors)


def _check_factors(factors, name: str = "factors"):
    f = jnp.asarray(factors)
    if not jnp.issubdtype(f.dtype, jnp.floating):
        f = f.astype(jax.dtypes.canonicalize_dtype(jnp.float64))
    if f.ndim != 2 or f.shape[1] != len(FACTORS):
        raise ValueError(
            f"{name} must have shape [N, {len(FACTORS)}] (one column per "
            f"toyfaces.FACTORS entry), got {tuple(f.shape)}"
        )
    if not bool(jnp.all(jnp.isfinite(f))):
        raise ValueError(f"{name} contains non-finite values")
    return f


def render(factors: ToyFactors) -> ToyImages:
    """Factor vectors ``[N, K]`` (K = ``len(FACTORS)``, columns in ``FACTORS`` order, values in
    each factor's range) -> images ``[N, 64, 64, 3]`` in [-1, 1] (the input's float dtype)."""
    return _render_batch(_check_factors(factors))


def part_masks(factors: ToyFactors) -> dict[str, ToyPartMasks]:
    """Factor vectors ``[N, K]`` -> ``{part: [N, 64, 64] bool}`` for every part in `PARTS`.

    A pixel belongs to a part when the part's layers contribute to its final colour (coverage
    > 0 and not fully covered by another part). ``face`` is the whole face ellipse, features
    included (the skin tone also shades the nose). A factor of part P changes only pixels in the
    union of P's masks before and after the change.
    """
    vis = _visibility_batch(_check_factors(factors))
    return {p: np.asarray(vis[p]) > 0 for p in PARTS}


def factor_index(name: str) -> int:
    """Column of the factor called ``name`` in the factor vector."""
    try:
        return _INDEX[name]
    except KeyError:
        raise ValueError(f"unknown toyfaces factor {name!r}; known: {list(_INDEX)}") from None


def factors_of_part(part: str) -> tuple[str, ...]:
    """Names of the factors owned by ``part`` (a part of `PARTS` or a group like ``eyes``)."""
    parts = GROUPS.get(part, (part,))
    for p in parts:
        if p not in PARTS:
            raise ValueError(f"unknown toyfaces part {part!r}; known: {list(PARTS) + list(GROUPS)}")
    return tuple(f.name for f in FACTORS if f.part in parts)
