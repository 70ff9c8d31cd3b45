"""Deprecated alias (for one release): many-sample region moments live in
`jaxedit.methods.resefa` (``region_moments``, ``Moments``, ``save_moments``, ...)."""

import warnings

from .methods.resefa import (
    FORMAT,
    GRAMS,
    VERSION,
    Moments,
    MomentSettings,
    default_mesh,
    generator_fingerprint,
    is_moments,
    load_moments,
    merge_moments,
    moment_settings,
    pack_mask as _pack_mask,  # noqa: F401  (the CLI imports it)
    read_moments,
    region_moments,
    resefa_moments,
    save_moments,
)

warnings.warn(
    "jaxedit.moments is deprecated: import from jaxedit.methods.resefa (or jaxedit)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "FORMAT",
    "GRAMS",
    "VERSION",
    "MomentSettings",
    "Moments",
    "default_mesh",
    "generator_fingerprint",
    "is_moments",
    "load_moments",
    "merge_moments",
    "moment_settings",
    "read_moments",
    "region_moments",
    "resefa_moments",
    "save_moments",
]
