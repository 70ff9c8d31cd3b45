"""Image regions for local editing: boolean masks, boxes and the ReSeFa reference presets.

Conventions:

* A `Box` is ``(y0, x0, y1, x1)`` in pixels of a ``grid``-pixel square image, end-exclusive.
* The reference (zhujiapeng/resefa ``coordinate.py``) writes boxes as
  ``[center_row, center_col, height, width]`` on a 256 grid, with the top-left corner at
  ``(center_row - height // 2, center_col - width // 2)``; `center_box` converts.
* Every region is resampled to the grid it is used on (the Jacobian's ``H' x W'``, or the image):
  boxes scale their corners (start rounded down, end rounded up), masks are resampled by nearest
  neighbour at pixel centres.
* ``toyfaces/<part>`` presets (``toyfaces/eyes``, ``toyfaces/mouth``, ...) are masks of the
  embedded toy-face model (`jaxedit.toyfaces`): the pixels covered by the part in at least
  `TOYFACES_THRESHOLD` of a fixed sample of 4096 faces (the shipped
  ``toyfaces/part_frequency.npz``, read with NumPy only). On another grid a cell belongs to the
  region when at least half of its area does (exact box-filter resampling, any ``H x W``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os

import numpy as np

from ._resample import coverage_matrix
from ._typing import BoxMask, Frequency, MaskArray
from .errors import AmbiguousRegionError

REFERENCE_GRID = 256

# [center_row, center_col, height, width] on the 256 grid (resefa coordinate.py).
PRESETS: dict[str, dict[str, tuple[int, int, int, int]]] = {
    "ffhq": {
        "left_eye": (120, 95, 20, 38),
        "right_eye": (120, 159, 20, 38),
        "eyes": (120, 128, 20, 115),
        "nose": (142, 131, 40, 46),
        "mouth": (184, 127, 30, 70),
        "chin": (217, 130, 42, 110),
        "eyebrow": (126, 105, 15, 118),
    },
    "ffhqu": {
        "eyesr2": (134, 116, 30, 115),
        "eyesr3": (64, 128, 26, 115),
        "eyest0": (70, 88, 30, 115),
        "eyest3": (108, 142, 26, 115),
    },
    "biggan": {
        "center0": (120, 120, 80, 80),
        "center1": (120, 120, 130, 130),
        "center2": (120, 120, 200, 200),
        "left_side": (128, 64, 256, 128),
        "top_side": (64, 128, 128, 256),
        "head0": (89, 115, 49, 70),
        "head1": (93, 110, 48, 70),
    },
}


TOYFACES = "toyfaces"
TOYFACES_THRESHOLD = 0.05
_TOYFACES_FILE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "toyfaces", "part_frequency.npz"
)


@dataclasses.dataclass(frozen=True)
class Box:
    """Axis-aligned box ``[y0, y1) x [x0, x1)`` on a ``grid x grid`` image."""

    y0: int
    x0: int
    y1: int
    x1: int
    grid: int | None = None  # None: the grid of whatever it is applied to

    def __post_init__(self):
        for field in ("y0", "x0", "y1", "x1", "grid"):
            v = getattr(self, field)
            if field == "grid" and v is None:
                continue
            try:
                ok = float(v).is_integer()  # False for NaN / inf / 2.5
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"box coordinates must be finite integers, got {field}={v!r}")
            object.__setattr__(self, field, int(v))
        if not (self.y1 > self.y0 and self.x1 > self.x0):
            raise ValueError(
                f"the box (y0, x0, y1, x1) = {self.as_tuple()} is empty: it needs "
                "y1 > y0 and x1 > x0 (end-exclusive)"
            )
        if self.grid is not None and self.grid < 1:
            raise ValueError(f"grid must be positive, got {self.grid}")

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.y0, self.x0, self.y1, self.x1

    def scaled(self, size: int) -> Box:
        """The same box on a ``size`` grid (corners scaled; start down, end up)."""
        g = self.grid if self.grid is not None else size
        f = size / g
        return Box(
            math.floor(self.y0 * f + 1e-9),
            math.floor(self.x0 * f + 1e-9),
            math.ceil(self.y1 * f - 1e-9),
            math.ceil(self.x1 * f - 1e-9),
            size,
        )

    def mask(self, size: int) -> BoxMask:
        """[size, size] bool (clipped to the image)."""
        b = self.scaled(size)
        m = np.zeros((size, size), bool)
        m[max(b.y0, 0) : max(b.y1, 0), max(b.x0, 0) : max(b.x1, 0)] = True
        return m


@dataclasses.dataclass(frozen=True, eq=False)
class MaskPreset:
    """A named mask region on a ``grid x grid`` image (the ``toyfaces/...`` presets).

    Attributes:
      name: ``"toyfaces/eyes"``...
      frequency: ``[grid, grid]`` float, fraction of the sample covered by the part per pixel.
      threshold: pixels with ``frequency >= threshold`` form the region.
    """

    name: str
    frequency: Frequency
    threshold: float

    @property
    def grid(self) -> int:
        return int(self.frequency.shape[0])

    def mask(self, size: int | tuple[int, int]) -> MaskArray:
        """``[H, W]`` bool on a ``size`` grid: cells at least half covered by the region."""
        h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
        m = (self.frequency >= self.threshold).astype(np.float64)
        if m.shape == (h, w):
            return m > 0.5
        frac = coverage_matrix(m.shape[0], h) @ m @ coverage_matrix(m.shape[1], w).T
        return frac >= 0.5 - 1e-9


@functools.cache
def _toyfaces_table() -> dict[str, np.ndarray]:
    try:
        with np.load(_TOYFACES_FILE, allow_pickle=False) as d:
            names, counts, n = [str(x) for x in d["names"]], d["counts"], int(d["n"])
    except (OSError, KeyError, ValueError) as e:
        raise RuntimeError(
            f"the toyfaces region presets ({_TOYFACES_FILE}) are missing or "
            f"unreadable ({e}); reinstall jaxedit"
        ) from None
    return {name: counts[i].astype(np.float64) / n for i, name in enumerate(names)}


def toyfaces_preset(region: str) -> MaskPreset:
    """The ``toyfaces/<region>`` preset (``region``: a part or ``eyes``)."""
    table = _toyfaces_table()
    if region not in table:
        raise ValueError(_unknown(f"{TOYFACES}/{region}"))
    return MaskPreset(f"{TOYFACES}/{region}", table[region], TOYFACES_THRESHOLD)


def center_box(
    center_row: int, center_col: int, height: int, width: int, grid: int = REFERENCE_GRID
) -> Box:
    """The reference's ``[center_row, center_col, height, width]`` box as a `Box`."""
    vals = (center_row, center_col, height, width)
    if not all(np.isfinite(float(v)) for v in vals):
        raise ValueError(f"center box values must be finite, got {vals}")
    y0, x0 = int(center_row) - int(height) // 2, int(center_col) - int(width) // 2
    return Box(y0, x0, y0 + int(height), x0 + int(width), grid)


def preset(name: str, *, prefer: str | None = None) -> Box | MaskPreset:
    """A preset region by name: a reference box (``"ffhq/eyes"``, ``"biggan/head0"`` ... on the
    256 grid) or a toy-face mask (``"toyfaces/eyes"``, ``"toyfaces/mouth"`` ...).

    A short name (``"nose"``) works when one data set has it. ``"eyes"`` and ``"mouth"`` are
    both FFHQ boxes and toy-face masks: ``prefer`` (the generator's preset set, e.g.
    ``"toyfaces"`` for the embedded model; see `preset_set`) decides, else the name is refused
    with its candidates. An unknown name is refused with the nearest known names.

    Raises:
      AmbiguousRegionError: a short name of several sets and no ``prefer`` among them.
      ValueError: an unknown name.
    """
    name = str(name)
    if "/" in name:
        data, region = name.split("/", 1)
        if data == TOYFACES and region in _toyfaces_names():
            return toyfaces_preset(region)
        table = PRESETS.get(data)
        if table is None or region not in table:
            raise ValueError(_unknown(name))
        return center_box(*table[region])
    hits = [f"{d}/{name}" for d, t in PRESETS.items() if name in t]
    if name in _toyfaces_names():
        hits.append(f"{TOYFACES}/{name}")
    if len(hits) > 1:
        chosen = [h for h in hits if h.split("/", 1)[0] == prefer]
        if len(chosen) != 1:
            raise AmbiguousRegionError(
                f"region {name!r} is ambiguous: {' or '.join(repr(h) for h in hits)}; name "
                f"one in full (the embedded toy-face model uses '{TOYFACES}/...', FFHQ models "
                "'ffhq/...')"
            )
        hits = chosen
    if not hits:
        raise ValueError(_unknown(name))
    return preset(hits[0])


def _toyfaces_names() -> tuple[str, ...]:
    try:
        return tuple(_toyfaces_table())
    except RuntimeError:
        return ()


def _unknown(name: str) -> str:
    import difflib

    names = preset_names()
    candidates = names + sorted({n.split("/", 1)[1] for n in names})
    near = difflib.get_close_matches(name, candidates, n=4, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(n) for n in near)}? " if near else ""
    return (
        f"unknown region preset {name!r}; {hint}({len(names)} presets: 'jaxedit regions' lists "
        "them; or give a box y0,x0,y1,x1)"
    )


def generator_preset_set(gen) -> str | None:
    """The preset set of a generator object: its ``region_set`` attribute if it has one (the
    embedded toy-face model: ``"toyfaces"``), else `preset_set` of its family."""
    tagged = getattr(gen, "region_set", None)
    return tagged if isinstance(tagged, str) else preset_set(str(getattr(gen, "family", "")))


def preset_set(family: str, *, source_format: str | None = None) -> str | None:
    """The preset set that short region names of a generator resolve to.

    Args:
      family: the generator's family (``"stylegan2"``, ``"biggan"``...).
      source_format: where its weights came from (``"toyfaces"`` for the embedded model and
        its saved copies; a converted checkpoint records it in ``config.json``).

    Returns:
      ``"toyfaces"``, ``"biggan"``, ``"ffhq"`` (other StyleGAN2 / StyleGAN3 faces) or None.
    """
    if source_format == TOYFACES:
        return TOYFACES
    if family == "biggan":
        return "biggan"
    if family in ("stylegan2", "stylegan3"):
        return "ffhq"
    return None


def preset_names() -> list[str]:
    """Every preset as ``"data/region"`` (boxes, then the ``toyfaces/...`` masks)."""
    names = [f"{d}/{r}" for d, t in PRESETS.items() for r in t]
    try:
        names += [f"{TOYFACES}/{r}" for r in _toyfaces_table()]
    except RuntimeError:
        pass
    return names


RegionLike = np.ndarray | Box | MaskPreset | str | tuple | list


def parse_region(text: str, *, prefer: str | None = None) -> Box | MaskPreset:
    """CLI form: a preset name or ``"y0,x0,y1,x1"`` (on the grid it is applied to); ``prefer``
    resolves an ambiguous short name (see `preset`)."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) == 4:
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"a box region is 4 integers y0,x0,y1,x1, got {text!r}") from None
        if not (vals[2] > vals[0] and vals[3] > vals[1]):
            raise ValueError(
                f"the box {text!r} is empty: y0,x0,y1,x1 needs y1 > y0 and x1 > x0 (end-exclusive)"
            )
        return Box(*vals)
    if len(parts) == 1:
        return preset(parts[0], prefer=prefer)
    raise ValueError(
        f"region must be a preset name ('jaxedit regions' lists them) or 'y0,x0,y1,x1', "
        f"got {text!r}"
    )


def region_mask(region: RegionLike, size: int | tuple[int, int]) -> MaskArray:
    """Resolve any region to a boolean mask ``[H, W]`` on a ``size`` grid.

    ``region``: a bool array ``[h, w]`` (resampled by nearest neighbour), a `Box`, a
    `MaskPreset`, a preset name (``"ffhq/eyes"``, ``"toyfaces/eyes"``...), or a 4-tuple
    ``(y0, x0, y1, x1)`` in pixels of the target grid.
    """
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if isinstance(region, str):
        region = parse_region(region)
    if (
        isinstance(region, (tuple, list))
        and len(region) == 4
        and not isinstance(region[0], (list, tuple, np.ndarray))
    ):
        region = Box(*region)
    if isinstance(region, Box):
        if h != w:
            raise ValueError(f"boxes apply to square grids, got {h}x{w}")
        m = region.mask(h)
    elif isinstance(region, MaskPreset):
        m = region.mask((h, w))
    else:
        m = np.asarray(region)
        if m.ndim != 2:
            raise ValueError(f"a region mask must be 2-D [H, W], got shape {m.shape}")
        if m.dtype.kind in "fc" and not np.isfinite(m).all():
            raise ValueError("the region mask contains non-finite values (NaN or inf)")
        if m.dtype != bool:
            if not np.isin(m, (0, 1)).all():
                raise ValueError("a region mask must be boolean (or 0/1)")
            m = m.astype(bool)
        if m.shape != (h, w):
            rows = (np.arange(h) + 0.5) * m.shape[0] / h
            cols = (np.arange(w) + 0.5) * m.shape[1] / w
            m = m[np.floor(rows).astype(int)][:, np.floor(cols).astype(int)]
    if not m.any():
        raise ValueError(f"the region is empty on the {h}x{w} grid")
    if m.all():
        raise ValueError(f"the region covers the whole {h}x{w} grid: there is no background")
    return m


def mask_box(mask: MaskArray) -> Box:
    """Bounding box of a boolean mask (for drawing)."""
    rows, cols = np.nonzero(np.asarray(mask))
    return Box(
        int(rows.min()),
        int(cols.min()),
        int(rows.max()) + 1,
        int(cols.max()) + 1,
        int(mask.shape[0]),
    )


__all__ = [
    "generator_preset_set",
    "Box",
    "MaskPreset",
    "PRESETS",
    "REFERENCE_GRID",
    "TOYFACES_THRESHOLD",
    "center_box",
    "mask_box",
    "parse_region",
    "preset",
    "preset_names",
    "region_mask",
    "toyfaces_preset",
]
