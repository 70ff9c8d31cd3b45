"""Option objects of the projection (frozen, validated when built, hashable: jit static data)."""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, cast

import optax

from .._checks import finite_scalar


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool):
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    try:
        i = operator.index(v)
    except TypeError:
        raise ValueError(f"{name} must be a positive integer, got {v!r}") from None
    if i < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(i)


def _fraction(name: str, v, *, low_open: bool = False) -> float:
    f = finite_scalar(name, v)
    if not (0.0 < f <= 1.0 if low_open else 0.0 <= f <= 1.0):
        raise ValueError(f"{name} must be in {'(0, 1]' if low_open else '[0, 1]'}, got {v!r}")
    return f


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The learning-rate and latent-noise schedules of NVIDIA's ``projector.py``.

    With ``t = step / steps``:

    * learning rate ``learning_rate * min(1, t / lr_rampup) * (0.5 - 0.5 cos(pi * min(1,
      (1 - t) / lr_rampdown)))``: a linear ramp-up over the first ``lr_rampup`` of the steps,
      constant, then a cosine ramp-down over the last ``lr_rampdown`` (to 0 at ``t = 1``);
    * latent noise ``latent_noise * max(0, 1 - t / noise_ramp)**2`` times the noise scale
      (``w_std``): added to the latent before each forward pass, gone after ``noise_ramp``.

    Attributes:
      learning_rate: Adam's peak learning rate (0.1).
      lr_rampup: fraction of the steps of the linear warm-up (0.05).
      lr_rampdown: fraction of the steps of the cosine ramp-down (0.25).
      latent_noise: initial latent noise factor (0.05).
      noise_ramp: fraction of the steps over which the latent noise decays to 0 (0.75).
      offset_rate: ``space="wplus"`` optimizes one w plus per-slot offsets scaled by this
        factor (``ws = w + offset_rate * offsets``): the offsets move at this fraction of the
        shared w's rate (0.1; not part of the reference, which projects into W only).

    Raises:
      ValueError: a non-positive learning rate, fractions outside [0, 1] (``noise_ramp`` in
        (0, 1]), ``lr_rampup + lr_rampdown > 1``, a negative ``latent_noise`` or a
        non-positive ``offset_rate``.
    """

    learning_rate: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    latent_noise: float = 0.05
    noise_ramp: float = 0.75
    offset_rate: float = 0.1

    def __post_init__(self):
        lr = finite_scalar("learning_rate", self.learning_rate)
        if lr <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        up = _fraction("lr_rampup", self.lr_rampup)
        down = _fraction("lr_rampdown", self.lr_rampdown)
        if up + down > 1.0:
            raise ValueError(
                f"lr_rampup + lr_rampdown must be <= 1, got {up} + {down} (the ramps would overlap)"
            )
        noise = finite_scalar("latent_noise", self.latent_noise)
        if noise < 0:
            raise ValueError(f"latent_noise must be >= 0, got {self.latent_noise!r}")
        ramp = _fraction("noise_ramp", self.noise_ramp, low_open=True)
        offset = finite_scalar("offset_rate", self.offset_rate)
        if offset <= 0:
            raise ValueError(f"offset_rate must be positive, got {self.offset_rate!r}")
        for name, v in (
            ("learning_rate", lr),
            ("lr_rampup", up),
            ("lr_rampdown", down),
            ("latent_noise", noise),
            ("noise_ramp", ramp),
            ("offset_rate", offset),
        ):
            object.__setattr__(self, name, v)

    def learning_rates(self, steps: int) -> optax.Schedule:
        """The learning rate of each step ``0..steps-1`` (an optax schedule: step -> rate),
        joined from a linear warm-up, a constant and a cosine ramp-down."""
        steps = _positive_int("steps", steps)
        lr = self.learning_rate
        up, down = self.lr_rampup * steps, self.lr_rampdown * steps
        parts: list[optax.Schedule] = []
        bounds: list[float] = []
        if up > 0:
            parts.append(optax.linear_schedule(0.0, lr, cast(Any, up)))
            bounds.append(up)
        parts.append(optax.constant_schedule(lr))
        if down > 0:
            bounds.append(steps - down)
            parts.append(optax.cosine_decay_schedule(lr, cast(Any, down)))
        if len(parts) == 1:
            return parts[0]
        # float boundaries and lengths: the reference's fractions of the steps need not be whole
        return optax.join_schedules(parts, cast(Any, bounds))

    def noise_factors(self, steps: int) -> optax.Schedule:
        """The latent noise factor of each step (times the noise scale ``w_std``): quadratic
        decay from ``latent_noise`` to 0 over the first ``noise_ramp`` of the steps."""
        steps = _positive_int("steps", steps)
        return optax.polynomial_schedule(
            self.latent_noise, 0.0, power=2, transition_steps=cast(Any, self.noise_ramp * steps)
        )

    def replace(self, **changes) -> Schedule:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Restarts:
    """Several starting points per image; the one with the lowest final loss is kept.

    Start 0 is the reference's (``w_avg``, or BigGAN's mean z); starts ``1..count-1`` are
    seeded samples of the generator's prior pulled toward it: ``w_avg + psi (w(z) - w_avg)``
    (truncated-normal z for BigGAN). All starts run together, in one batch, for every step.
    In W+ each start runs twice, as W+ and as W (its offsets held at 0), so a W+ projection is
    never worse than the W projection with the same restarts and seed.

    Attributes:
      count: starting points per image (1 = the reference's single start).
      psi: how far the extra starts lie from the center (0: all at the center, 1: samples of
        the prior).

    Raises:
      ValueError: ``count`` is not a positive integer, ``psi`` outside [0, 1].
    """

    count: int = 4
    psi: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "count", _positive_int("count", self.count))
        object.__setattr__(self, "psi", _fraction("psi", self.psi))


@dataclasses.dataclass(frozen=True)
class NoiseInputs:
    """Whether the generator's constant noise inputs are optimized with the latent.

    NVIDIA's projector optimizes every ``noise_const`` buffer with the latent (reinitialized
    to N(0, 1), renormalized to zero mean and unit variance after each step) and penalizes
    their spatial autocorrelation at every scale down to 8x8 with weight ``weight``. Only for
    generators with noise buffers (``gen.has_noise`` and stored buffers); ignored otherwise.

    Attributes:
      optimize: optimize the buffers (one set per image and start).
      weight: the noise regularization weight (1e5).

    Raises:
      ValueError: a negative or non-finite ``weight``.
    """

    optimize: bool = False
    weight: float = 1e5

    def __post_init__(self):
        w = finite_scalar("weight", self.weight)
        if w < 0:
            raise ValueError(f"weight must be >= 0, got {self.weight!r}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "optimize", bool(self.optimize))


def check_steps(steps) -> int:
    """``steps`` as a positive int (ValueError naming ``steps`` otherwise)."""
    return _positive_int("steps", steps)


def as_option(value, cls, name: str):
    """``value`` (an instance of ``cls``), or ``cls()`` for None; TypeError otherwise."""
    if value is None:
        return cls()
    if not isinstance(value, cls):
        raise TypeError(
            f"{name} must be a jaxedit.projection.{cls.__name__}, got {type(value).__name__}"
        )
    return value


__all__ = ["NoiseInputs", "Restarts", "Schedule", "as_option", "check_steps"]
