"""Applying directions: latent edits over an alpha grid, rendered as PNG grids with the region drawn.

Reference defaults (zhujiapeng/resefa ``manipulate.py``): ws from ``mapping(z)`` truncated with
psi 0.7 on the first 8 slots, the direction added to W+ slots 4-7, alphas ``linspace(-10, 10, 7)``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_finite
from ._typing import Alphas, DirectionVector, EditGrid, Latents
from .images import save_png, to_uint8
from .models.biggan import BigGANGenerator
from .regions import RegionLike, mask_box, region_mask
from .sampling import Compute, Sampling, as_compute, as_sampling

REFERENCE_SLOTS = (4, 5, 6, 7)
REFERENCE_ALPHAS = tuple(np.linspace(-10.0, 10.0, 7))
REFERENCE_PSI = 0.7
REFERENCE_CUTOFF = 8

# every latent space a direction can live in (StyleGAN2 w/wplus/z/s, BigGAN z/embed/cond)
SPACES = ("w", "wplus", "z", "s", "embed", "cond")


def _slots(num_ws: int, slots: Sequence[int] | None) -> np.ndarray:
    if slots is None:
        return np.arange(num_ws)
    s = np.asarray(list(slots), int)
    if s.size == 0 or s.min() < 0 or s.max() >= num_ws:
        raise ValueError(f"slots must be W+ indices in [0, {num_ws}), got {list(slots)}")
    return s


def edit_latents(
    latents,
    direction,
    alphas,
    *,
    space: str = "w",
    num_ws: int | None = None,
    slots: Sequence[int] | None = None,
) -> jax.Array:
    """Latents moved along a direction for every alpha.

    Args:
      latents: ws ``[N, num_ws, w_dim]`` (spaces ``"w"``, ``"wplus"``) or ``[N, D]`` (``"z"``,
        ``"s"`` flattened styles).
      direction: ``[w_dim]`` (``"w"``), ``[num_ws * w_dim]`` slot-major (``"wplus"``) or ``[D]``.
      alphas: ``[A]`` step sizes.
      slots: W+ slots that move (``"w"``/``"wplus"``; None = all).
    Returns:
      ``[A, *latents.shape]``.

    Non-finite latents, direction or alphas raise ValueError naming the argument.
    """
    check_finite("latents", latents)
    check_finite("direction", direction)
    check_finite("alphas", alphas)
    lat = jnp.asarray(latents)
    d = jnp.asarray(direction, lat.dtype)
    a = jnp.asarray(alphas, lat.dtype).reshape(-1)
    if space in ("w", "wplus"):
        if lat.ndim != 3:
            raise ValueError(f"space={space!r} edits ws [N, num_ws, w_dim], got {tuple(lat.shape)}")
        n_ws, w_dim = lat.shape[1:]
        if space == "w":
            if d.shape != (w_dim,):
                raise ValueError(f"a W direction must have shape [{w_dim}], got {tuple(d.shape)}")
            full = jnp.broadcast_to(d, (n_ws, w_dim))
        else:
            if d.shape != (n_ws * w_dim,):
                raise ValueError(
                    f"a W+ direction must have shape [{n_ws * w_dim}] "
                    f"(num_ws * w_dim), got {tuple(d.shape)}"
                )
            full = d.reshape(n_ws, w_dim)
        sel = np.zeros((n_ws, 1))
        sel[_slots(n_ws, slots)] = 1.0
        full = full * jnp.asarray(sel, lat.dtype)
        return lat[None] + a[:, None, None, None] * full[None, None]
    if space in ("z", "s"):
        if lat.ndim != 2 or d.shape != (lat.shape[1],):
            raise ValueError(
                f"space={space!r}: latents [N, D] and direction [D] expected, got "
                f"{tuple(lat.shape)} and {tuple(d.shape)}"
            )
        if slots is not None:
            raise ValueError(f"slots do not apply to space={space!r}")
        return lat[None] + a[:, None, None] * d[None, None]
    raise ValueError(f"space must be 'w', 'wplus', 'z' or 's', got {space!r}")


def _split_styles(gen, flat):
    out, off = {}, 0
    for name in gen.layer_names:
        c = gen.style_dim(name)
        out[name] = flat[..., off : off + c]
        off += c
    return out


def flatten_styles(gen, styles) -> jax.Array:
    """``{layer: [N, C_in]}`` -> ``[N, D_s]`` in ``gen.layer_names`` order (the ``"s"`` space)."""
    return jnp.concatenate([jnp.asarray(styles[n]) for n in gen.layer_names], axis=-1)


def render_edits(
    gen,
    latents: Latents,
    direction: DirectionVector,
    alphas: Alphas | Sequence[float],
    *,
    space: str = "w",
    slots: Sequence[int] | None = None,
    sampling: Sampling | None = None,
    compute: Compute | None = None,
) -> EditGrid:
    """Images ``[A, N, H, W, C]`` for every alpha (row a) and sample (column n).

    ``latents`` as `edit_latents`; space ``"z"`` maps the edited z with the given
    truncation, space ``"s"`` takes flattened styles ``[N, D_s]`` (see `flatten_styles`).

    BigGAN: ``latents`` are z ``[N, z_dim]``, ``sampling.c`` the class vectors
    ``[N, num_classes]``, ``sampling.truncation_psi`` the (static) truncation, and ``space``
    ``"z"`` | ``"embed"`` | ``"cond"`` says which part of the conditioning vector ``[z, embed]``
    the direction moves.

    Args:
      gen: a StyleGAN2 or BigGAN generator.
      latents: as `edit_latents` (BigGAN: z ``[N, z_dim]``).
      direction: ``[D]`` (as `edit_latents`).
      alphas: ``[A]`` step sizes.
      space: the latent space of the direction.
      slots: W+ slots that move (``"w"``/``"wplus"``; None = all).
      sampling: a `jaxedit.Sampling` (None: ``Sampling()``): ``c`` (space ``"z"`` of a
        conditional StyleGAN2, BigGAN), ``truncation_psi`` / ``truncation_cutoff`` (space
        ``"z"``; BigGAN's truncation) and ``noise_mode``.
      compute: a `jaxedit.Compute` (None: ``Compute()``); ``dtype`` and ``precision`` are read.

    Returns:
      ``[A, N, H, W, C]`` images.

    Raises:
      TypeError: ``sampling`` / ``compute`` of the wrong type.
      ValueError: non-finite inputs, shapes that do not fit, missing BigGAN class vectors.
    """
    sampling = as_sampling(sampling)
    compute = as_compute(compute)
    c, noise_mode = sampling.c, sampling.noise_mode
    dtype, precision = compute.dtype, compute.precision
    if isinstance(gen, BigGANGenerator):
        return _render_biggan(
            gen, latents, direction, alphas, space, c, sampling.truncation_psi, dtype, precision
        )
    edited = edit_latents(latents, direction, alphas, space=space, slots=slots)
    out = []
    for lat in edited:
        if space == "z":
            img = gen(
                lat,
                c,
                sampling.truncation_psi,
                sampling.truncation_cutoff,
                noise_mode=noise_mode,
                dtype=dtype,
                precision=precision,
            )
        elif space == "s":
            img = gen.synthesis(
                styles=_split_styles(gen, lat),
                noise_mode=noise_mode,
                dtype=dtype,
                precision=precision,
            )
        else:
            img = gen.synthesis(lat, noise_mode=noise_mode, dtype=dtype, precision=precision)
        out.append(np.asarray(img))
    return np.stack(out)


def _render_biggan(gen, z, direction, alphas, space, c, truncation, dtype, precision):
    check_finite("direction", direction)
    check_finite("alphas", alphas)
    if c is None:
        raise ValueError(
            f"BigGAN needs class vectors: pass sampling=jaxedit.Sampling(c=...) of shape "
            f"[N, {gen.num_classes}]"
        )
    cond = gen.cond(z, c, dtype=dtype, precision=precision)
    d = jnp.asarray(direction, cond.dtype)
    zd = gen.z_dim
    want = {"z": zd, "embed": zd, "cond": 2 * zd}.get(space)
    if want is None:
        raise ValueError(f"BigGAN edits space 'z', 'embed' or 'cond', got {space!r}")
    if d.shape != (want,):
        raise ValueError(
            f"a BigGAN {space!r} direction must have shape [{want}], got {tuple(d.shape)}"
        )
    if space == "z":
        d = jnp.concatenate([d, jnp.zeros(zd, d.dtype)])
    elif space == "embed":
        d = jnp.concatenate([jnp.zeros(zd, d.dtype), d])
    return np.stack(
        [
            np.asarray(
                gen.synthesis_from_cond(
                    cond + float(a) * d[None], truncation, dtype=dtype, precision=precision
                )
            )
            for a in np.asarray(alphas, np.float64).reshape(-1)
        ]
    )


def draw_box(images_u8: np.ndarray, region: RegionLike | None, color=(255, 0, 0)) -> np.ndarray:
    """Outline a region's bounding box on uint8 images ``[..., H, W, 3]`` (a copy)."""
    img = np.array(images_u8, copy=True)
    if region is None:
        return img
    h = img.shape[-3]
    b = mask_box(region_mask(region, (h, img.shape[-2])))
    t = max(1, h // 128)
    col = np.asarray(color, img.dtype)[: img.shape[-1]]
    y0, x0, y1, x1 = b.y0, b.x0, b.y1, b.x1
    img[..., y0 : y0 + t, x0:x1, :] = col
    img[..., max(y1 - t, y0) : y1, x0:x1, :] = col
    img[..., y0:y1, x0 : x0 + t, :] = col
    img[..., y0:y1, max(x1 - t, x0) : x1, :] = col
    return img


def save_edit_grid(
    images, path, region: RegionLike | None = None, *, overwrite: bool = True
) -> str:
    """``[A, N, H, W, C]`` floats in [-1, 1] -> PNG, one row per sample, one column per alpha
    (written as `jaxedit.images.save_png`; ``overwrite=False`` refuses an existing file)."""
    from .images import image_grid

    images = np.asarray(images)
    if images.ndim != 5:
        raise ValueError(f"edit images must be [A, N, H, W, C], got shape {images.shape}")
    a, n = images.shape[:2]
    u8 = draw_box(to_uint8(images), region)
    return save_png(
        image_grid(u8.transpose(1, 0, 2, 3, 4).reshape((n * a,) + u8.shape[2:]), a),
        path,
        overwrite=overwrite,
    )


@dataclasses.dataclass(frozen=True)
class DirectionSet:
    """Directions read by `load_directions`.

    Attributes:
      directions: ``[S, K, D]`` float array: S sets (one per Jacobian sample) of K directions.
      space: the latent space they live in (``"w"``, ``"wplus"``, ``"z"``, ``"s"``...).
      mask: ``[H, W]`` region mask stored with them, or None.
      slots: W+ slots stored with them (SeFa), or None.
      path: the file read.
      kind: ``"jaxedit-npz"`` or ``"npy"`` (ReSeFa / LowRankGAN direction files).
    """

    directions: np.ndarray
    space: str
    mask: np.ndarray | None
    slots: tuple[int, ...] | None
    path: str
    kind: str

    def pick(self, index: int = 0, set_index: int = 0) -> np.ndarray:
        """Direction ``index`` of set ``set_index`` -> ``[D]``; out-of-range raises ValueError."""
        s, k = self.directions.shape[:2]
        if not 0 <= int(set_index) < s:
            raise ValueError(f"direction set {set_index} out of range: {self.path} has {s} set(s)")
        if not 0 <= int(index) < k:
            raise ValueError(
                f"direction index {index} out of range: {self.path} has {k} directions"
            )
        return self.directions[int(set_index), int(index)]


def _check_directions(d: np.ndarray, path: str) -> np.ndarray:
    if d.dtype.kind not in "fiu" or d.dtype == np.bool_:
        raise ValueError(f"{path}: directions have dtype {d.dtype}, expected real numbers")
    if d.size == 0:
        raise ValueError(f"{path}: directions are empty (shape {d.shape})")
    d = np.asarray(d, np.float64 if d.dtype == np.float64 else np.float32)
    if not np.all(np.isfinite(d)):
        raise ValueError(f"{path}: directions contain non-finite values")
    return d


def load_directions(path) -> DirectionSet:
    """Read directions for editing from jaxedit's ``.npz`` or a ``.npy`` of W directions.

    * jaxedit ``.npz`` (``jaxedit resefa`` / ``sefa``): ``directions`` ``[S, K, D]`` or
      ``[K, D]``, ``space``, optional ``mask`` and ``slots``.
    * ``.npy`` (ReSeFa's shipped ``directions/ffhq/stylegan2/*.npy``, LowRankGAN's files, or
      ReSeFa's full ``[512, 512]`` output): ``[D]`` or ``[K, D]`` rows of **W** directions
      (space ``"w"``); one set. Apply them on W+ slots 4-7 (8-11 for eyebrows / lipstick)
      with psi 0.7 on the first 8 slots, ReSeFa's ``manipulate.py`` defaults.

    The format is told from the file's contents (not its suffix); nothing is unpickled.
    Shapes, dtype and finiteness are checked; the direction length is checked against the
    generator when it is applied (`edit_latents`).

    Raises:
      FileNotFoundError: no such file.
      ValueError: an unreadable file, missing keys, a bad shape or dtype, non-finite values.
    """
    from ._npz import read_arrays

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"directions file not found: {path}")
    data = read_arrays(path, "directions", allow_npy=True)
    if "" in data:  # a .npy
        d = data[""]
        if d.ndim == 1:
            d = d[None]
        if d.ndim != 2:
            raise ValueError(
                f"{path}: a .npy of directions must be [D] or [K, D], got shape {d.shape}"
            )
        return DirectionSet(_check_directions(d, path)[None], "w", None, None, path, "npy")

    if "jacobian" in data and "directions" not in data:
        raise ValueError(
            f"{path} holds a Jacobian, not directions: make them with 'jaxedit "
            f"resefa --jacobian {path} --region ...'"
        )
    missing = [k for k in ("directions", "space") if k not in data]
    if missing:
        raise ValueError(f"{path}: not a jaxedit directions file, missing key(s) {missing}")
    d = data["directions"]
    if d.ndim == 1:
        d = d[None]
    if d.ndim == 2:
        d = d[None]
    if d.ndim != 3:
        raise ValueError(
            f"{path}: 'directions' must be [D], [K, D] or [S, K, D], got shape {d.shape}"
        )
    space = str(data["space"])
    if space not in SPACES:
        raise ValueError(f"{path}: unknown space {space!r} (expected one of {', '.join(SPACES)})")
    mask = data.get("mask")
    if mask is not None and (mask.ndim != 2 or mask.size == 0 or mask.dtype.kind not in "biu"):
        raise ValueError(
            f"{path}: 'mask' must be a 2-D boolean array [H, W], got shape "
            f"{mask.shape} {mask.dtype}"
        )
    slots = None
    if "slots" in data and data["slots"].size:
        if data["slots"].dtype.kind not in "iu" or data["slots"].ndim != 1:
            raise ValueError(f"{path}: 'slots' must be a 1-D integer array")
        slots = tuple(int(v) for v in data["slots"])
    return DirectionSet(_check_directions(d, path), space, mask, slots, path, "jaxedit-npz")


__all__ = [
    "REFERENCE_ALPHAS",
    "REFERENCE_CUTOFF",
    "REFERENCE_PSI",
    "REFERENCE_SLOTS",
    "DirectionSet",
    "draw_box",
    "edit_latents",
    "flatten_styles",
    "load_directions",
    "render_edits",
    "save_edit_grid",
]
