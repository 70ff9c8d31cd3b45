"""The option objects validate themselves and are hashable where they are jit statics."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import X64

from jaxedit.sampling import Compute, Sampling, as_compute, as_sampling


def test_sampling_defaults_and_normalisation():
    s = Sampling()
    assert (s.c, s.truncation_psi, s.truncation_cutoff, s.noise_mode) == (None, 1.0, None, "const")
    s = Sampling(truncation_psi=np.float32(0.5), truncation_cutoff=np.int64(8))
    assert type(s.truncation_psi) is float and s.truncation_psi == 0.5
    assert type(s.truncation_cutoff) is int and s.truncation_cutoff == 8
    assert s.replace(noise_mode="none").noise_mode == "none"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.truncation_psi = 0.7


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(truncation_psi=float("nan")), "truncation_psi"),
        (dict(truncation_psi="a"), "truncation_psi"),
        (dict(truncation_cutoff=-1), "truncation_cutoff"),
        (dict(truncation_cutoff=1.5), "truncation_cutoff"),
        (dict(truncation_cutoff=True), "truncation_cutoff"),
        (dict(noise_mode="randn"), "noise_mode"),
        (dict(c="abc"), "c must be numeric"),
        (dict(c=[{"a": 1}]), "c must be numeric"),
        (dict(c=np.array([[0.0, np.inf]])), "c contains 1 non-finite"),
    ],
)
def test_sampling_refuses(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Sampling(**kwargs)
    with pytest.raises(ValueError, match=match):  # replace() validates again
        Sampling().replace(**kwargs)


def test_compute_defaults_hash_and_dtype():
    c = Compute()
    assert (c.dtype, c.precision, c.chunk, c.batch_size) == (None, "highest", 32, None)
    # batch_size None: each function's own default (a dtype or precision alone keeps it)
    assert Compute(precision="high").batch_size_or(8) == 8 and Compute().batch_size_or(1) == 1
    assert Compute(batch_size=3).batch_size_or(32) == 3
    assert hash(c) == hash(Compute()) and c == Compute()
    assert c.resolved_dtype == (jnp.float64 if X64 else jnp.float32)
    c = Compute(dtype=jnp.float32, chunk=np.int32(4), batch_size=2.0)
    assert c.dtype == np.float32 and type(c.chunk) is int and c.batch_size == 2
    assert c.resolved_dtype == jnp.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dtype="int32"), "dtype"),
        (dict(dtype="nonsense"), "dtype"),
        (dict(precision="fastest"), "precision"),
        (dict(chunk=0), "chunk"),
        (dict(batch_size=-2), "batch_size"),
        (dict(batch_size=True), "batch_size"),
        (dict(chunk=2.5), "chunk"),
    ],
)
def test_compute_refuses(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Compute(**kwargs)


def test_as_helpers():
    assert isinstance(as_sampling(None), Sampling) and isinstance(as_compute(None), Compute)
    s, c = Sampling(truncation_psi=0.5), Compute(chunk=3)
    assert as_sampling(s) is s and as_compute(c) is c
    with pytest.raises(TypeError, match="sampling must be a jaxedit.Sampling, got dict"):
        as_sampling({"truncation_psi": 0.5})
    with pytest.raises(TypeError, match="compute must be a jaxedit.Compute, got Sampling"):
        as_compute(s)
