"""Option objects shared by every function that draws or computes generator outputs.

Two small frozen values replace the flat keyword clusters that many entry points repeated
(``c`` / ``truncation_psi`` / ``truncation_cutoff`` / ``noise_mode`` and ``dtype`` /
``precision`` / ``chunk`` / ``batch_size``), in the spirit of diffrax's ``SaveAt``: each
validates itself when it is built, so a bad value is refused where it is written, with the
argument's name, and functions only read the fields they need.

```python
sampling = jaxedit.Sampling(truncation_psi=0.7, truncation_cutoff=8)
compute = jaxedit.Compute(precision="highest", chunk=16, batch_size=4)
J = jaxedit.jacobian(gen, ws, sampling=sampling, compute=compute)
```
"""

from __future__ import annotations

import dataclasses
import math
import operator
from typing import Any

import jax.numpy as jnp
import numpy as np

from . import _ops
from ._checks import check_finite

NOISE_MODES = ("const", "random", "none")


@dataclasses.dataclass(frozen=True, eq=False)
class Sampling:
    """How latents become images: class vectors, truncation and noise.

    Attributes:
      c: class vectors ``[N, c_dim]`` for a conditional StyleGAN2, ``[N, num_classes]`` for
        BigGAN (one-hot or soft), or None for an unconditional generator.
      truncation_psi: truncation strength. StyleGAN2: the mapping network's psi (1 = none).
        BigGAN: the static truncation in (0, 1] that also picks the batch-norm statistics.
      truncation_cutoff: StyleGAN2 only: truncate only the first ``cutoff`` W+ slots
        (None = all).
      noise_mode: ``"const"`` (the reference's fixed buffers), ``"random"`` (needs a key where
        it is used) or ``"none"``.

    Raises:
      ValueError: a non-finite ``truncation_psi`` or ``c``, a negative or non-integer
        ``truncation_cutoff``, or an unknown ``noise_mode``.
    """

    c: Any = None
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    noise_mode: str = "const"

    def __post_init__(self):
        try:
            psi = float(self.truncation_psi)
        except (TypeError, ValueError):
            raise ValueError(
                f"truncation_psi must be a real number, got {self.truncation_psi!r}"
            ) from None
        if not math.isfinite(psi):
            raise ValueError(f"truncation_psi must be finite, got {self.truncation_psi!r}")
        object.__setattr__(self, "truncation_psi", psi)
        cut = self.truncation_cutoff
        if cut is not None:
            if isinstance(cut, bool) or not _is_int(cut) or int(cut) < 0:
                raise ValueError(
                    f"truncation_cutoff must be a non-negative integer or None, got {cut!r}"
                )
            object.__setattr__(self, "truncation_cutoff", int(cut))
        if self.noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {self.noise_mode!r}")
        if self.c is not None:
            kind = getattr(np.asarray(self.c), "dtype", np.dtype(object)).kind
            if kind not in "fiub":
                raise ValueError(
                    f"c must be numeric class vectors (a float, int or bool array), "
                    f"got {type(self.c).__name__} of dtype kind {kind!r}"
                )
        check_finite("c", self.c)

    def replace(self, **changes) -> Sampling:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Compute:
    """How outputs are computed: dtype, matmul/conv precision and work sizes (hashable).

    Attributes:
      dtype: compute dtype, a floating dtype or None for the default (float64 when
        ``jax_enable_x64`` is on, else float32).
      precision: ``"highest"`` (default: no TF32 on GPUs), ``"high"``, ``"default"`` or a
        ``jax.lax.Precision``.
      chunk: Jacobian-vector products per pass (bounds memory: about ``chunk`` generator
        activations at a time).
      batch_size: samples per jitted step, or None for the using function's own default
        (`batch_size_or`): 1 for `jaxedit.jacobian` / `jaxedit.region_moments`, 8 for Editing
        in Style's feature passes, 32 for PandA's.

    Raises:
      ValueError: a non-floating ``dtype``, an unknown ``precision``, or a ``chunk`` or
        ``batch_size`` that is not a positive integer.
    """

    dtype: Any = None
    precision: _ops.Precision = "highest"
    chunk: int = 32
    batch_size: int | None = None

    def __post_init__(self):
        if self.dtype is not None:
            try:
                dt = jnp.dtype(self.dtype)
            except TypeError:
                raise ValueError(
                    f"dtype must be a floating dtype or None, got {self.dtype!r}"
                ) from None
            if not jnp.issubdtype(dt, jnp.floating):
                raise ValueError(f"dtype must be a floating dtype or None, got {self.dtype!r}")
            object.__setattr__(self, "dtype", np.dtype(dt))
        _ops.as_precision(self.precision)
        for name in ("chunk", "batch_size"):
            v: Any = getattr(self, name)
            if v is None and name == "batch_size":
                continue
            if v is None or isinstance(v, bool) or not _is_int(v) or int(v) < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
            object.__setattr__(self, name, int(v))

    def batch_size_or(self, default: int) -> int:
        """``batch_size``, or ``default`` (the using function's own) when it is None."""
        return int(default) if self.batch_size is None else self.batch_size

    @property
    def resolved_dtype(self) -> jnp.dtype:
        """``dtype``, or the default float dtype when it is None."""
        return jnp.dtype(self.dtype) if self.dtype is not None else _ops.default_float_dtype()

    def replace(self, **changes) -> Compute:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _is_int(v) -> bool:
    try:
        operator.index(v)
        return True
    except TypeError:
        return isinstance(v, (float, np.floating)) and float(v).is_integer()


def as_sampling(sampling: Sampling | None, name: str = "sampling") -> Sampling:
    """``sampling``, or ``Sampling()`` for None; TypeError naming ``name`` for anything else."""
    if sampling is None:
        return Sampling()
    if not isinstance(sampling, Sampling):
        raise TypeError(f"{name} must be a jaxedit.Sampling, got {type(sampling).__name__}")
    return sampling


def as_compute(compute: Compute | None, name: str = "compute") -> Compute:
    """``compute``, or ``Compute()`` for None; TypeError naming ``name`` for anything else."""
    if compute is None:
        return Compute()
    if not isinstance(compute, Compute):
        raise TypeError(f"{name} must be a jaxedit.Compute, got {type(compute).__name__}")
    return compute


__all__ = ["Compute", "NOISE_MODES", "Sampling", "as_compute", "as_sampling"]
