"""The `Moments` pytree of one region over many samples: settings, exact merging, ``.npz`` files.

:class:`Moments` stores the *sums* (exact merging: ``a + b``, ``sum([...])``), exposes the
reference's means as ``M_f`` / ``M_b``, records the settings and the region mask (merging checks
them, and refuses overlapping seed sets), and saves to / loads from ``.npz``
(:func:`save_moments`, :func:`load_moments`). ``jaxedit.resefa(moments, k=...)`` solves from them
(this module never solves; the streaming computation is in `_stream`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ... import _io

# the file-format tag "jaxedit.moments" (a format name, not a module: spelled so that the
# import-graph check does not read it as a reference to the deprecated jaxedit/moments.py)
FORMAT = ".".join(("jaxedit", "moments"))
VERSION = 1


# ---------------------------------------------------------------------------------------------
# Settings and the Moments pytree
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MomentSettings:
    """What the moments were computed from (hashable; merging and resuming require equality).

    Attributes:
      space, resize, resize_mode, channels, noise_mode, truncation_psi, truncation_cutoff: the
        :func:`jaxedit.jacobian` options.
      grid: ``(H', W', C')`` of the Jacobian rows.
      dim: D.
      generator: fingerprint of the generator (sha256 of its structure and parameters).
    """

    space: str
    resize: int | None
    resize_mode: str
    channels: str
    noise_mode: str
    truncation_psi: float
    truncation_cutoff: int | None
    grid: tuple[int, int, int]
    dim: int
    generator: str

    def differences(self, other: MomentSettings) -> list[str]:
        """Human-readable ``field: a vs b`` for every differing field."""
        out = []
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a != b:
                out.append(f"{f.name} {a!r} vs {b!r}")
        return out


def pack_mask(mask: np.ndarray) -> bytes:
    """A bool mask ``[H, W]`` packed as `Moments` stores it (``Moments.mask_bits``)."""
    return np.packbits(np.asarray(mask, bool).reshape(-1)).tobytes()


@dataclasses.dataclass(frozen=True, repr=False)
class Moments:
    """Second moments of one region's Jacobian rows over ``n_samples`` samples (a pytree).

    Leaves (additive, so ``jax.tree.map(jnp.add, a, b)`` merges when the metadata agree):
      gram_f: ``[D, D]`` Σ over samples of ``J_fᵀJ_f`` (region rows).
      gram_b: ``[D, D]`` Σ over samples of ``J_bᵀJ_b`` (background rows).
      n_samples: number of samples summed.

    Metadata (static):
      name: the region's name.
      n_f, n_b: rows inside / outside the region per sample (pixels x channels).
      settings: :class:`MomentSettings`.
      mask_bits: the region mask on the Jacobian grid, packed (see :attr:`mask`).
      seeds: the seeds summed, in order, when the samples came from seeds (else None).

    ``M_f = gram_f / (n_f n_samples)`` and ``M_b = gram_b / (n_b n_samples)`` are the reference's
    per-row means, averaged over samples (symmetrized), as ``resefa(J, mask, aggregate="mean")``.
    """

    gram_f: Any
    gram_b: Any
    n_samples: Any
    name: str = dataclasses.field(metadata=dict(static=True))
    n_f: int = dataclasses.field(metadata=dict(static=True))
    n_b: int = dataclasses.field(metadata=dict(static=True))
    settings: MomentSettings = dataclasses.field(metadata=dict(static=True))
    mask_bits: bytes = dataclasses.field(metadata=dict(static=True), repr=False)
    seeds: tuple[int, ...] | None = dataclasses.field(
        default=None, metadata=dict(static=True), repr=False
    )

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"Moments(name={self.name!r}, D={s.dim}, n_samples={self.n_samples}, "
            f"n_f={self.n_f}, n_b={self.n_b}, space={s.space!r}, grid={s.grid}, "
            f"generator={s.generator!r})"
        )

    # -- derived -------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """D."""
        return self.settings.dim

    @property
    def mask(self) -> np.ndarray:
        """``[H', W']`` bool region on the Jacobian grid."""
        h, w, _ = self.settings.grid
        bits = np.frombuffer(self.mask_bits, np.uint8)
        return np.unpackbits(bits, count=h * w).astype(bool).reshape(h, w)

    @property
    def M_f(self) -> jax.Array:  # noqa: N802 - the paper's name
        """``[D, D]`` mean over samples of ``J_fᵀJ_f / n_f``."""
        return _mean(self.gram_f, self.n_f, self.n_samples)

    @property
    def M_b(self) -> jax.Array:  # noqa: N802
        """``[D, D]`` mean over samples of ``J_bᵀJ_b / n_b`` (unregularized)."""
        return _mean(self.gram_b, self.n_b, self.n_samples)

    # -- merging -------------------------------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, int) and other == 0:  # sum([...]) starts from 0
            return self
        if not isinstance(other, Moments):
            return NotImplemented
        diff = self.settings.differences(other.settings)
        if diff:
            raise ValueError(
                "cannot merge moments made with different settings: " + "; ".join(diff)
            )
        if self.mask_bits != other.mask_bits or (self.n_f, self.n_b) != (other.n_f, other.n_b):
            raise ValueError(
                f"cannot merge moments of different regions ({self.name!r} and "
                f"{other.name!r} have different masks)"
            )
        seeds = None
        if self.seeds is not None and other.seeds is not None:
            both = set(self.seeds) & set(other.seeds)
            if both:
                shown = sorted(both)[:5]
                raise ValueError(
                    f"cannot merge moments of region {self.name!r}: {len(both)} "
                    f"seed(s) were summed in both (e.g. {shown}); each sample may "
                    f"count once"
                )
            seeds = self.seeds + other.seeds
        return Moments(
            _add(self.gram_f, other.gram_f),
            _add(self.gram_b, other.gram_b),
            int(self.n_samples) + int(other.n_samples),
            self.name,
            self.n_f,
            self.n_b,
            self.settings,
            self.mask_bits,
            seeds,
        )

    __radd__ = __add__

    def save(self, path, *, overwrite: bool = True) -> str:
        """Write this region alone to ``path`` (.npz, atomically); see :func:`save_moments`."""
        return save_moments(path, {self.name: self}, overwrite=overwrite)


jax.tree_util.register_dataclass(
    Moments,
    data_fields=["gram_f", "gram_b", "n_samples"],
    meta_fields=["name", "n_f", "n_b", "settings", "mask_bits", "seeds"],
)


def _add(a, b):
    dt = jnp.promote_types(a.dtype, b.dtype)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.astype(dt) + b.astype(dt)
    return jnp.asarray(a, dt) + jnp.asarray(b, dt)


def _mean(gram, rows: int, n_samples) -> jax.Array:
    g = jnp.asarray(gram)
    return (g + g.T) / (2 * rows * n_samples)


def is_moments(x) -> bool:
    """A :class:`Moments` or a non-empty dict of them (what :func:`jaxedit.resefa` accepts)."""
    if isinstance(x, Moments):
        return True
    return isinstance(x, Mapping) and len(x) > 0 and all(isinstance(v, Moments) for v in x.values())


def merge_moments(*parts: Mapping[str, Moments]) -> dict[str, Moments]:
    """Merge several ``{region: Moments}`` results (e.g. shards of a study) region by region.

    Every part must have the same regions and settings; seed sets must be disjoint.
    """
    if not parts:
        raise ValueError("merge_moments needs at least one part")
    names = list(parts[0])
    for i, p in enumerate(parts[1:], 1):
        if sorted(p) != sorted(names):
            raise ValueError(
                f"cannot merge: part 0 has regions {sorted(names)}, part {i} has {sorted(p)}"
            )
    return {n: sum((p[n] for p in parts[1:]), parts[0][n]) for n in names}


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def check_run(moments: Mapping[str, Moments]) -> Moments:
    """The first of ``{name: Moments}`` of one run (same settings, samples, seeds), checked."""
    if not is_moments(moments) or isinstance(moments, Moments):
        raise ValueError("expected a non-empty dict {name: Moments}")
    first = next(iter(moments.values()))
    for name, m in moments.items():
        if name != m.name:
            raise ValueError(f"dict key {name!r} differs from the region name {m.name!r}")
        diff = first.settings.differences(m.settings)
        if diff or m.n_samples != first.n_samples or m.seeds != first.seeds:
            raise ValueError(
                f"regions {first.name!r} and {name!r} come from different runs "
                f"({'; '.join(diff) or 'samples differ'}): save them separately"
            )
    return first


def save_moments(path, moments: Mapping[str, Moments], *, overwrite: bool = True, **extra) -> str:
    """Write ``{name: Moments}`` (one run: same settings and samples) to ``path`` atomically.

    ``overwrite``: replace an existing file (else :class:`~jaxedit.OutputExistsError`).
    ``extra``: further arrays / strings stored alongside (e.g. a run's bookkeeping); keys must
    not collide with the format's own. Returns the absolute path.
    """
    first = check_run(moments)
    s = first.settings
    arrays = dict(
        format=FORMAT,
        version=VERSION,
        regions=np.asarray(list(moments)),
        gram_f=np.stack([np.asarray(m.gram_f) for m in moments.values()]),
        gram_b=np.stack([np.asarray(m.gram_b) for m in moments.values()]),
        masks=np.stack([m.mask for m in moments.values()]),
        n_f=np.asarray([m.n_f for m in moments.values()], np.int64),
        n_b=np.asarray([m.n_b for m in moments.values()], np.int64),
        n_samples=np.int64(first.n_samples),
        seeds=np.asarray(first.seeds if first.seeds is not None else [], np.int64),
        seeds_known=first.seeds is not None,
        space=s.space,
        resize=-1 if s.resize is None else s.resize,
        resize_mode=s.resize_mode,
        channels=s.channels,
        noise_mode=s.noise_mode,
        truncation_psi=s.truncation_psi,
        truncation_cutoff=-1 if s.truncation_cutoff is None else s.truncation_cutoff,
        grid=np.asarray(s.grid, np.int64),
        dim=s.dim,
        generator=s.generator,
    )
    clash = sorted(set(extra) & set(arrays))
    if clash:
        raise ValueError(f"extra keys {clash} collide with the moments format")
    return _io.save_npz(path, overwrite=overwrite, **arrays, **extra)


_REQUIRED = (
    "format",
    "version",
    "regions",
    "gram_f",
    "gram_b",
    "masks",
    "n_f",
    "n_b",
    "n_samples",
    "seeds",
    "seeds_known",
    "space",
    "resize",
    "resize_mode",
    "channels",
    "noise_mode",
    "truncation_psi",
    "truncation_cutoff",
    "grid",
    "dim",
    "generator",
)


def read_moments(path) -> tuple[dict[str, Moments], dict]:
    """``(moments, everything in the file)``; see :func:`load_moments`."""
    data = _io.load_npz(path, _REQUIRED, "moments")

    def bad(key, why):
        return ValueError(f"{path}: key {key!r} {why}")

    if str(data["format"]) != FORMAT:
        raise bad("format", f"is {str(data['format'])!r}, not {FORMAT!r}")
    if int(data["version"]) != VERSION:
        raise bad("version", f"is {int(data['version'])}; this jaxedit reads version {VERSION}")
    names = [str(v) for v in np.atleast_1d(data["regions"])]
    r = len(names)
    grid = tuple(int(v) for v in data["grid"])
    d = int(data["dim"])
    if len(grid) != 3 or min(grid) < 1:
        raise bad("grid", f"must be 3 positive integers, got {grid}")
    for key in ("gram_f", "gram_b"):
        a = data[key]
        if a.shape != (r, d, d) or not np.issubdtype(a.dtype, np.floating):
            raise bad(key, f"must be a float array [{r}, {d}, {d}], got {a.dtype} {a.shape}")
        if not np.all(np.isfinite(a)):
            raise bad(key, "contains non-finite values")
    masks = data["masks"]
    if masks.shape != (r,) + grid[:2] or masks.dtype != bool:
        raise bad(
            "masks", f"must be bool [{r}, {grid[0]}, {grid[1]}], got {masks.dtype} {masks.shape}"
        )
    n_f, n_b = data["n_f"], data["n_b"]
    for key, a in (("n_f", n_f), ("n_b", n_b)):
        if a.shape != (r,):
            raise bad(key, f"must have shape [{r}] (one count per region), got {a.shape}")
    for i, m in enumerate(masks):
        if int(n_f[i]) != int(m.sum()) * grid[2] or int(n_b[i]) != int((~m).sum()) * grid[2]:
            raise bad("n_f", f"does not match region {names[i]!r}'s mask")
    n_samples = int(data["n_samples"])
    if n_samples < 0:
        raise bad("n_samples", f"must be >= 0, got {n_samples}")
    seeds = None
    if bool(data["seeds_known"]):
        seeds = tuple(int(s) for s in data["seeds"])
        if len(seeds) != n_samples:
            raise bad("seeds", f"has {len(seeds)} entries for {n_samples} samples")
    resize, cutoff = int(data["resize"]), int(data["truncation_cutoff"])
    settings = MomentSettings(
        str(data["space"]),
        None if resize < 0 else resize,
        str(data["resize_mode"]),
        str(data["channels"]),
        str(data["noise_mode"]),
        float(data["truncation_psi"]),
        None if cutoff < 0 else cutoff,
        grid,
        d,
        str(data["generator"]),
    )
    out = {
        name: Moments(
            data["gram_f"][i],
            data["gram_b"][i],
            n_samples,
            name,
            int(n_f[i]),
            int(n_b[i]),
            settings,
            pack_mask(masks[i]),
            seeds,
        )
        for i, name in enumerate(names)
    }
    return out, data


def load_moments(path) -> dict[str, Moments]:
    """Read a file written by :func:`save_moments` (or ``jaxedit moments``): ``{name: Moments}``.

    Every key is checked (shapes, dtypes, finiteness, masks against row counts); a bad file
    raises ``ValueError`` naming the file and key.
    """
    return read_moments(path)[0]


_pack_mask = pack_mask  # the name the CLI imports

__all__ = [
    "FORMAT",
    "VERSION",
    "MomentSettings",
    "Moments",
    "check_run",
    "is_moments",
    "load_moments",
    "merge_moments",
    "pack_mask",
    "read_moments",
    "save_moments",
]
