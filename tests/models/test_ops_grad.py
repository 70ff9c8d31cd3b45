"""conv2d_up2's custom JVP (weight derivatives as GEMMs): values and derivatives in x and w equal
the plain lhs-dilated convolution (float64) and central finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxedit import _ops

KERNEL = (1.0, 3.0, 3.0, 1.0)


def plain_up2(x, w):
    """The reference formulation: one lhs-dilated conv (autodiff'd by JAX itself), then the FIR."""
    kh, kw = w.shape[:2]
    px0, px1, py0, py1, pxt, pyt = _ops._up2_pads(kh, kw, len(KERNEL), 1)
    y = lax.conv_general_dilated(
        x,
        w[::-1, ::-1],
        (1, 1),
        ((kh - 1 - pyt,) * 2, (kw - 1 - pxt,) * 2),
        lhs_dilation=(2, 2),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=lax.Precision.HIGHEST,
    )
    return _ops.upfirdn2d(y, KERNEL, up=1, pad=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=4)


@pytest.fixture(scope="module")
def xw():
    kx, kw = jax.random.split(jax.random.key(3))
    return (
        jax.random.normal(kx, (2, 5, 6, 3), jnp.float64),
        jax.random.normal(kw, (3, 3, 3, 4), jnp.float64),
    )


def loss(f):
    return lambda x, w: jnp.sum(
        jnp.sin(f(x, w)) * jnp.arange(1.0, 1.0 + 2 * 10 * 12 * 4).reshape(2, 10, 12, 4)
    )


@pytest.mark.parametrize("jit", [False, True])
def test_values_and_gradients_match_plain_conv(xw, jit):
    x, w = xw
    up2 = lambda x, w: _ops.conv2d_up2(x, w, KERNEL, 1)  # noqa: E731
    grad = jax.grad(loss(up2), argnums=(0, 1))
    if jit:
        grad = jax.jit(grad)
    np.testing.assert_allclose(up2(x, w), plain_up2(x, w), rtol=0, atol=1e-13)
    for got, want in zip(grad(x, w), jax.grad(loss(plain_up2), argnums=(0, 1))(x, w)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-10)


def test_weight_gradient_matches_finite_differences(xw):
    x, w = xw
    f = loss(lambda x, w: _ops.conv2d_up2(x, w, KERNEL, 1))
    g = np.asarray(jax.grad(f, argnums=1)(x, w))
    d = np.asarray(jax.random.normal(jax.random.key(9), w.shape, jnp.float64))
    eps = 1e-6
    fd = (f(x, w + eps * d) - f(x, w - eps * d)) / (2 * eps)
    np.testing.assert_allclose(np.sum(g * d), fd, rtol=1e-7)


def test_forward_mode_in_x_and_w(xw):
    x, w = xw
    up2 = lambda x, w: _ops.conv2d_up2(x, w, KERNEL, 1)  # noqa: E731
    dx, dw = jnp.cos(x), jnp.sin(w)
    got = jax.jvp(up2, (x, w), (dx, dw))[1]
    want = jax.jvp(plain_up2, (x, w), (dx, dw))[1]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # tangent in x only (the Jacobian path): the weight term is skipped, value unchanged
    got_x = jax.jvp(lambda x: up2(x, w), (x,), (dx,))[1]
    np.testing.assert_allclose(
        got_x, jax.jvp(lambda x: plain_up2(x, w), (x,), (dx,))[1], rtol=0, atol=1e-12
    )


@pytest.mark.float32
def test_gradients_float32():
    """The users' default dtype (x64 off; the training path): the custom weight gradient equals
    the plain convolution's to float32 accuracy, with precision HIGHEST on both sides."""
    kx, kw = jax.random.split(jax.random.key(3))
    x = jax.random.normal(kx, (2, 5, 6, 3), jnp.float32)
    w = jax.random.normal(kw, (3, 3, 3, 4), jnp.float32)
    up2 = lambda x, w: _ops.conv2d_up2(x, w, KERNEL, 1)  # noqa: E731
    got = jax.jit(jax.grad(loss(up2), argnums=(0, 1)))(x, w)
    want = jax.grad(loss(plain_up2), argnums=(0, 1))(x, w)
    for g, r in zip(got, want):
        assert g.dtype == jnp.float32
        np.testing.assert_allclose(g, r, rtol=2e-4, atol=2e-4 * float(jnp.abs(r).max()))
