"""Pieces both generator families share: the buffer variable, parameter casts, the jitted-method
decorator and the JSON side of the frozen config dataclasses."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
from flax import nnx


class Buffer(nnx.Variable):
    """A non-trainable array stored with the model (``w_avg``, ``noise_const``, BN statistics)."""


def _cast(v: nnx.Variable, dtype) -> jax.Array:
    """The value of a variable (any shape) as an array of ``dtype``."""
    return jnp.asarray(v[...], dtype)


#: every generator method's jitted program, by ``Class.method`` (read by `compiled_programs`)
_JITTED: dict[str, Any] = {}


def compiled_programs() -> dict[str, int]:
    """How many programs each jitted generator method has compiled so far (a recompile guard).

    Returns:
      ``{"StyleGAN2Generator.mapping": n, ...}``: one entry per jitted method of each family
      (one program per input shape, dtype and static option set: new values must add none).
    """
    return {name: int(fn._cache_size()) for name, fn in sorted(_JITTED.items())}


def _jit_method(
    static_argnames: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run a generator method under ``jax.jit`` with the module split into (graphdef, state)."""

    def deco(fn):
        def pure(graphdef, state, *args, **kwargs):
            return fn(nnx.merge(graphdef, state), *args, **kwargs)

        jitted = jax.jit(pure, static_argnums=(0,), static_argnames=tuple(static_argnames))

        @functools.wraps(fn)
        def wrapper(self, *args, jit: bool = True, **kwargs):
            if not jit:
                return fn(self, *args, **kwargs)
            graphdef, state = nnx.split(self)
            return jitted(graphdef, state, *args, **kwargs)

        cast(Any, wrapper).jitted = jitted
        _JITTED[fn.__qualname__] = jitted
        return wrapper

    return deco


class ConfigIO:
    """JSON mixin of the frozen config dataclasses (each defines ``to_dict``/``from_dict``)."""

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every config overrides it
        raise NotImplementedError

    def to_json(self) -> str:
        """The config as a JSON object with sorted keys (the ``config`` of ``config.json``)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def unknown_fields(cls, d: Mapping[str, Any]) -> list[str]:
        """The keys of ``d`` that are not fields of this config, sorted."""
        names = {f.name for f in dataclasses.fields(cast(Any, cls))}  # a dataclass subclass
        return sorted(set(d) - names)
