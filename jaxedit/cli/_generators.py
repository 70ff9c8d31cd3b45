"""The generator-side helpers every command shares: the checkpoint argument (``default`` = the
embedded generator), family checks of the sampling options, class vectors, latents from seeds or
a file, the sampling / latent / class option adders, output-name slugs and the grid-size bound.

Below every command module (and above `_common` only), so that no command imports another.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from ._common import CLIError, finite_float, nonneg_int, seed_list, truncation

#: Checkpoint argument naming the embedded default generator (when no such file exists).
DEFAULT_CHECKPOINT = "default"
#: Largest PNG grid a command renders in memory (bytes of uint8 pixels).
MAX_GRID_BYTES = 2 << 30

CKPT_HELP = (
    "checkpoint: a directory written by 'jaxedit convert', an NVIDIA .pkl, a rosinality "
    ".pt, a BigGAN directory (pytorch_model.bin + config.json), or 'default' (the "
    "embedded default generator: the trained 64 px toy-face StyleGAN2)"
)


# ---- generators, latents, classes --------------------------------------------------------------


def load_generator(path: str, which: str | None = None) -> Any:
    """A generator from a checkpoint argument ('default' = the embedded default generator).

    Commands call it as ``_generators.load_generator`` (looked up at call time, so a test can
    substitute a generator).

    Args:
        path: the checkpoint argument (see `CKPT_HELP`).
        which: the network in a source file (``--which``; None: the format's default).

    Returns:
        the generator, an `jaxedit.models.AbstractGenerator` (typed ``Any``: commands read
        family members such as ``num_ws`` or ``synthesis`` after checking the protocol).

    Raises:
        CLIError: ``which`` given for the embedded default generator.
    """
    if path == DEFAULT_CHECKPOINT and not os.path.exists(path):
        if which is not None:
            raise CLIError("--which does not apply to the embedded default generator")
        from ..toyfaces.default import default_generator

        return default_generator()
    from ..checkpoint import load_generator as load_checkpoint

    return load_checkpoint(path, which=which)


def region_preference(ckpt: str, gen: Any = None) -> str | None:
    """The preset set that short region names (``--region eyes``) resolve to for a checkpoint
    argument: ``"toyfaces"`` for ``default`` and saved copies of it, ``"biggan"`` for BigGAN,
    ``"ffhq"`` for other StyleGAN checkpoints, None when it cannot be told (an ambiguous name is
    then refused with its candidates). ``gen``: the loaded generator, if any (its family).
    Cheap: reads at most a converted checkpoint's ``config.json``.
    """
    from ..regions import preset_set

    if ckpt == DEFAULT_CHECKPOINT and not os.path.exists(ckpt):
        return "toyfaces"
    source_format = None
    family = getattr(gen, "family", None)
    try:
        if os.path.isdir(ckpt) and os.path.isfile(os.path.join(ckpt, "config.json")):
            from ..checkpoint import read_config

            meta = read_config(ckpt)
            family = family or meta.get("family")
            source = meta.get("source")
            source_format = source.get("format") if isinstance(source, dict) else None
        elif family is None and os.path.exists(ckpt):
            # a source file or BigGAN folder: BigGAN-deep comes as pytorch_model.bin (+ its
            # config.json); every other supported source format holds a StyleGAN
            from converters.biggan import WEIGHTS_NAME

            biggan = os.path.basename(os.path.normpath(ckpt)) == WEIGHTS_NAME or (
                os.path.isdir(ckpt) and os.path.isfile(os.path.join(ckpt, WEIGHTS_NAME))
            )
            family = "biggan" if biggan else "stylegan2"
    except (OSError, ValueError, _checkpoint_error()):
        return None
    return preset_set(str(family), source_format=source_format) if family else None


def _checkpoint_error() -> type[Exception]:
    from converters.errors import CheckpointError

    return CheckpointError


def resolve_regions(regions: dict, prefer: str | None) -> dict:
    """``{name: region}`` from `jaxedit.cli.moments.parse_regions`-style dicts with names still
    unresolved (strings) resolved against ``prefer`` (see `region_preference`)."""
    from ..regions import preset

    return {k: preset(v, prefer=prefer) if isinstance(v, str) else v for k, v in regions.items()}


def ckpt_label(path: str) -> str:
    """The checkpoint as recorded in output files: ``default`` or the absolute path."""
    return (
        path if path == DEFAULT_CHECKPOINT and not os.path.exists(path) else os.path.abspath(path)
    )


def check_family_options(gen, args) -> None:
    """Refuse options that do not apply to the loaded generator (instead of ignoring them).

    Told apart by the generator protocol: ``--psi`` / ``--cutoff`` need ``truncation_kind``
    ``"psi"``, ``--noise-mode`` / ``--noise-seed`` need ``has_noise``, ``--truncation`` needs
    ``"stats"``, ``--class`` needs ``class_dim > 0``.
    """
    psi_kind = gen.truncation_kind == "psi"
    applies = {
        "psi": psi_kind,
        "cutoff": psi_kind,
        "noise_mode": gen.has_noise,
        "noise_seed": gen.has_noise,
    }
    for opt, ok in applies.items():
        if not ok and getattr(args, opt, None) is not None:
            raise CLIError(
                f"--{opt.replace('_', '-')} applies to StyleGAN2 only; this is a "
                f"{gen.display_name} generator (use --truncation)"
            )
    if psi_kind:
        if getattr(args, "truncation", None) is not None:
            raise CLIError(
                "--truncation applies to BigGAN only; for StyleGAN2 use --psi (and --cutoff)"
            )
        cutoff = getattr(args, "cutoff", None)
        if cutoff is not None and cutoff > gen.num_ws:
            raise CLIError(
                f"--cutoff {cutoff} out of range: this generator has {gen.num_ws} "
                f"W+ slots (0..{gen.num_ws})"
            )
    classes = gen.class_dim
    cls = getattr(args, "class_idx", None)
    if cls is not None and classes == 0:
        raise CLIError(f"--class {cls}: this generator is unconditional (it has no classes)")
    if cls is not None and cls >= classes:
        raise CLIError(
            f"--class {cls} out of range: this generator has {classes} classes (0..{classes - 1})"
        )
    if cls is None and classes > 0 and hasattr(args, "class_idx"):
        raise CLIError(f"this generator is conditional: pass --class (0..{classes - 1})")


def psi_of(args, default: float = 1.0) -> float:
    """``--psi`` (StyleGAN2 truncation), ``default`` when not given."""
    return default if getattr(args, "psi", None) is None else args.psi


def truncation_of(args) -> float:
    """``--truncation`` (BigGAN), 1.0 when not given."""
    return 1.0 if getattr(args, "truncation", None) is None else args.truncation


def class_vectors(gen, args, n: int):
    """One-hot class vectors [n, classes] from --class (BigGAN / conditional StyleGAN2), else None."""
    classes = gen.class_dim
    if classes == 0:
        return None
    if args.class_idx is None:
        raise CLIError(f"this generator is conditional: pass --class (0..{classes - 1})")
    from ..models.biggan import one_hot

    return np.repeat(one_hot([args.class_idx], classes), n, axis=0)


def seed_latents(gen, seeds):
    """``[N, z_dim]`` z of NVIDIA generate.py for each seed."""
    from ..models.stylegan2 import seed_to_z

    return np.concatenate([seed_to_z(s, gen.z_dim) for s in seeds])


def biggan_z(gen, seeds, trunc: float):
    """``[N, z_dim]`` truncated-normal BigGAN z for each seed, scaled by ``trunc``."""
    from ..models.biggan import truncated_noise_sample

    return np.concatenate([truncated_noise_sample(1, gen.z_dim, trunc, seed=s) for s in seeds])


def read_latents(gen, path: str, space: str) -> np.ndarray:
    """--latents FILE checked against the generator: z [N, z_dim], w [N, w_dim] or ws [N, num_ws, w_dim]."""
    from .._checks import check_finite
    from .._io import load_array

    lat = load_array(path, "latents")
    if space == "z" or gen.default_space == "z":
        want, ok = f"z [N, {gen.z_dim}]", lat.ndim == 2 and lat.shape[1] == gen.z_dim
    else:
        want = f"ws [N, {gen.num_ws}, {gen.w_dim}] or w [N, {gen.w_dim}]"
        ok = (lat.ndim == 2 and lat.shape[1] == gen.w_dim) or (
            lat.ndim == 3 and lat.shape[1:] == (gen.num_ws, gen.w_dim)
        )
    if not ok or lat.shape[0] == 0:
        raise CLIError(
            f"--latents {path}: expected {want} for this generator"
            f"{' (space z)' if space == 'z' and gen.default_space != 'z' else ''}, "
            f"got shape {list(lat.shape)}"
        )
    check_finite(f"--latents {path}", lat)
    return np.asarray(lat, np.float64)


def base_latents(gen, args, space: str, psi: float, cutoff):
    """(latents for ``space``, z or None, description) from --latents FILE or --seeds."""
    if gen.truncation_kind == "stats":
        if getattr(args, "latents", None):
            z = read_latents(gen, args.latents, "z")
            return z, z, f"z from {args.latents}"
        z = biggan_z(gen, args.seeds, truncation_of(args))
        return z, z, f"z = {truncation_of(args):g} * truncnorm(seed)"
    if getattr(args, "latents", None):
        lat = read_latents(gen, args.latents, space)
        if space == "z":
            return lat, lat, f"z from {args.latents}"
        if lat.ndim == 2:
            lat = np.broadcast_to(lat[:, None], (lat.shape[0], gen.num_ws, lat.shape[1]))
        return lat, None, f"ws from {args.latents}"
    z = seed_latents(gen, args.seeds)
    if space == "z":
        return z, z, "z from seeds"
    c = class_vectors(gen, args, len(z))
    return np.asarray(gen.mapping(z, c, psi, cutoff)), z, "ws = mapping(seed z)"


def check_grid(n: int, res: int, channels: int, what: str, hint: str) -> None:
    """Refuse a grid of ``n`` images of ``res`` x ``res`` x ``channels`` over `MAX_GRID_BYTES`.

    Raises:
        CLIError: the grid is too large (``what``: the command, ``hint``: what to do instead).
    """
    size = n * res * res * channels
    if size > MAX_GRID_BYTES:
        raise CLIError(
            f"{what}: {n} images of {res}x{res} make a {size / 2**30:.1f} GiB grid "
            f"(limit {MAX_GRID_BYTES / 2**30:.0f} GiB); {hint}"
        )


def slug(text: str) -> str:
    """``text`` as a file-name part (runs of other characters than ``A-Za-z0-9_.`` -> ``-``)."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", str(text)).strip("-.") or "region"


# ---- option adders ---------------------------------------------------------------------------


def add_class_arg(p) -> None:
    """``--class INDEX`` on the parser ``p``."""
    p.add_argument(
        "--class",
        dest="class_idx",
        type=nonneg_int,
        default=None,
        metavar="INDEX",
        help="class index (BigGAN, conditional StyleGAN2; required for those, refused "
        "for unconditional generators)",
    )


def add_truncation_args(p, psi_default: str, cutoff_default: str) -> None:
    """``--psi``, ``--cutoff`` (StyleGAN2) and ``--truncation`` (BigGAN) on the parser ``p``."""
    p.add_argument(
        "--psi",
        type=finite_float,
        default=None,
        help=f"StyleGAN2 truncation psi: w_avg + psi * (w - w_avg) (default: {psi_default})",
    )
    p.add_argument(
        "--cutoff",
        type=nonneg_int,
        default=None,
        help=f"StyleGAN2: truncate only the first CUTOFF W+ slots (default: {cutoff_default})",
    )
    p.add_argument(
        "--truncation",
        type=truncation,
        default=None,
        help="BigGAN truncation in (0, 1]: scales the truncated-normal z and picks the "
        "BN statistics (default: 1.0)",
    )


def add_latent_args(p, seeds_default: str = "0-4") -> None:
    """``--seeds`` or ``--latents FILE``, ``--x64`` and ``--class`` on the parser ``p``."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--seeds",
        type=seed_list,
        default=seeds_default,
        help="seeds (NVIDIA generate.py latents; BigGAN: truncated-normal z), e.g. 0-7 or 1,5,9",
    )
    g.add_argument(
        "--latents",
        default=None,
        metavar="FILE",
        help="a .npy of ws [N, num_ws, w_dim] / w [N, w_dim] (or z [N, z_dim] for "
        "space z and BigGAN) instead of --seeds",
    )
    p.add_argument("--x64", action="store_true", help="compute in float64")
    add_class_arg(p)
