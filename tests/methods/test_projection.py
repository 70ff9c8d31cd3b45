"""jaxedit.project / jaxedit.pivotal_tune on the embedded toy-face generator (64 px, no noise
inputs), a tiny random StyleGAN2 with noise buffers and a tiny BigGAN.

The quality tests project images the generator made from known latents (clipped to [-1, 1]),
in float32 compute to keep the x64 session fast; the reference schedule and the noise penalty
are checked against NumPy re-computations of projector.py's formulas, in float64.
"""

from __future__ import annotations

import math
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx, struct

import jaxedit
from jaxedit import projection

F32 = jaxedit.Compute(dtype="float32")
STEPS = 60


# ---- independent references --------------------------------------------------------------------
def np_projector_lr(step: int, num_steps: int, lr0=0.1, rampdown=0.25, rampup=0.05) -> float:
    """projector.py's learning rate, as written there (NumPy / Python floats)."""
    t = step / num_steps
    lr_ramp = min(1.0, (1.0 - t) / rampdown)
    lr_ramp = 0.5 - 0.5 * np.cos(lr_ramp * np.pi)
    lr_ramp = lr_ramp * min(1.0, t / rampup)
    return float(lr0 * lr_ramp)


def np_projector_noise(step: int, num_steps: int, factor=0.05, ramp=0.75) -> float:
    """projector.py's ``w_noise_scale / w_std``."""
    t = step / num_steps
    return factor * max(0.0, 1.0 - t / ramp) ** 2


def np_noise_reg(bufs: list[np.ndarray]) -> float:
    """projector.py's noise regularization of one image's buffers ``[R, R]`` (F.avg_pool2d(2))."""
    reg = 0.0
    for v in bufs:
        noise = v
        while True:
            reg += np.mean(noise * np.roll(noise, 1, axis=1)) ** 2
            reg += np.mean(noise * np.roll(noise, 1, axis=0)) ** 2
            if noise.shape[0] <= 8:
                break
            r = noise.shape[0] // 2
            noise = noise.reshape(r, 2, r, 2).mean(axis=(1, 3))
    return float(reg)


# ---- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy():
    return jaxedit.default_generator()


@pytest.fixture(scope="module")
def targets(toy):
    """Two toy faces from known z (the generator's range slightly exceeds [-1, 1]: clipped)."""
    z = np.random.RandomState(5).randn(2, toy.z_dim)
    return np.clip(np.asarray(toy.synthesis(toy.mapping(z))), -1.0, 1.0)


@pytest.fixture(scope="module")
def proj_w(toy, targets):
    return jaxedit.project(
        toy, targets, steps=STEPS, restarts=projection.Restarts(2), compute=F32, progress=False
    )


def mse(a, b) -> np.ndarray:
    return np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2, axis=(1, 2, 3))


# ---- schedule and regularizer against projector.py's formulas ---------------------------------
@pytest.mark.parametrize("num_steps", [1000, 37, 7])
def test_reference_schedule_matches_projector_formulas(num_steps):
    sched = projection.Schedule()
    steps = np.arange(num_steps)
    lrs = np.asarray(sched.learning_rates(num_steps)(steps), np.float64)
    want = np.array([np_projector_lr(s, num_steps) for s in steps])
    np.testing.assert_allclose(lrs, want, rtol=1e-12, atol=1e-15)
    assert lrs[0] == 0.0  # the reference's first step does not move
    noise = np.asarray(sched.noise_factors(num_steps)(steps), np.float64)
    want = np.array([np_projector_noise(s, num_steps) for s in steps])
    np.testing.assert_allclose(noise, want, rtol=1e-12, atol=1e-15)


def test_reference_schedule_at_named_steps():
    """Values read off projector.py's formulas by hand at 1000 steps."""
    f = projection.Schedule().learning_rates(1000)
    assert float(np.asarray(f(25))) == pytest.approx(0.05, rel=1e-12)  # half-way up the warm-up
    assert float(np.asarray(f(50))) == pytest.approx(0.1, rel=1e-12)
    assert float(np.asarray(f(750))) == pytest.approx(0.1, rel=1e-12)
    assert float(np.asarray(f(875))) == pytest.approx(0.05, rel=1e-9)  # half-way down the cosine
    g = projection.Schedule().noise_factors(1000)
    assert float(np.asarray(g(375))) == pytest.approx(0.05 * 0.25, rel=1e-12)
    assert float(np.asarray(g(750))) == 0.0 and float(np.asarray(g(999))) == 0.0


def test_noise_regularization_matches_numpy():
    rng = np.random.default_rng(0)
    bufs = [rng.standard_normal((3, r, r)) for r in (4, 8, 16, 32)]
    got = np.asarray(projection.noise_regularization([jnp.asarray(b) for b in bufs]))
    want = [np_noise_reg([b[i] for b in bufs]) for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    smooth = np.ones((1, 16, 16))  # perfectly correlated: 2 terms of 1 per scale (16 and 8)
    assert float(projection.noise_regularization([jnp.asarray(smooth)])[0]) == pytest.approx(4.0)


# ---- losses -----------------------------------------------------------------------------------
def test_losses_against_numpy():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, (2, 2, 8, 8, 3))
    d = np.mean((x - y) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(projection.MSE().distance(jnp.asarray(x), jnp.asarray(y)), d)
    w = projection.Weighted((projection.MSE(), projection.MSE()), (0.5, 2.0))
    np.testing.assert_allclose(w.distance(jnp.asarray(x), jnp.asarray(y)), 2.5 * d)
    r = projection.Resized(projection.MSE(), 4)
    xs = x.reshape(2, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    ys = y.reshape(2, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(
        r.distance(jnp.asarray(x), jnp.asarray(y)), np.mean((xs - ys) ** 2, axis=(1, 2, 3))
    )
    assert projection.Resized(projection.MSE(), 8).distance(x, y) == pytest.approx(d)
    assert isinstance(projection.MSE(), projection.ImageLoss)


def test_loss_errors():
    with pytest.raises(ValueError, match="weights"):
        projection.Weighted((projection.MSE(),), (1.0, 2.0))
    with pytest.raises(ValueError, match="weights\\[0\\]"):
        projection.Weighted((projection.MSE(),), (math.nan,))
    with pytest.raises(TypeError, match="losses\\[1\\]"):
        projection.Weighted((projection.MSE(), object()))
    with pytest.raises(ValueError, match="size"):
        projection.Resized(projection.MSE(), 0)
    with pytest.raises(ValueError, match="multiple"):
        projection.area_downsample(jnp.zeros((1, 12, 12, 3)), 8)


# ---- input and option checks -------------------------------------------------------------------
def test_option_objects_validate():
    with pytest.raises(ValueError, match="learning_rate"):
        projection.Schedule(learning_rate=0)
    with pytest.raises(ValueError, match="overlap"):
        projection.Schedule(lr_rampup=0.5, lr_rampdown=0.6)
    with pytest.raises(ValueError, match="noise_ramp"):
        projection.Schedule(noise_ramp=0)
    with pytest.raises(ValueError, match="count"):
        projection.Restarts(count=0)
    with pytest.raises(ValueError, match="psi"):
        projection.Restarts(psi=1.5)
    with pytest.raises(ValueError, match="weight"):
        projection.NoiseInputs(weight=-1)
    with pytest.raises(ValueError, match="samples"):
        projection.Locality(samples=0)
    with pytest.raises(ValueError, match="distance"):
        projection.Locality(distance=-1.0)


def test_project_refuses_bad_input(toy, targets):
    def call(images=targets, **kw):
        return jaxedit.project(toy, images, steps=2, progress=False, **kw)

    with pytest.raises(ValueError, match=r"images must have shape \[N, 64, 64, 3\]"):
        call(targets[:, :32])
    with pytest.raises(ValueError, match="images must have shape"):
        call(targets[0])
    with pytest.raises(ValueError, match="N = 0"):
        call(targets[:0])
    bad = targets.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="images contains 1 non-finite"):
        call(bad)
    with pytest.raises(ValueError, match=r"images must lie in \[-1, 1\]"):
        call(targets * 2.0)
    with pytest.raises(TypeError, match="images must be a real numeric array"):
        call(np.full(targets.shape, "x"))
    with pytest.raises(ValueError, match="space must be one of"):
        call(space="z")
    with pytest.raises(ValueError, match="mode must be one of"):
        call(mode="fast")
    with pytest.raises(ValueError, match="fixes the projector's settings; do not pass restarts"):
        call(mode="reference", restarts=projection.Restarts(2))
    with pytest.raises(ValueError, match="W only"):
        call(mode="reference", space="wplus")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        jaxedit.project(toy, targets, steps=0)
    with pytest.raises(TypeError, match="restarts must be a jaxedit.projection.Restarts"):
        call(restarts=3)
    with pytest.raises(TypeError, match="loss must be an image loss"):
        call(loss=lambda x, y: 0.0)
    with pytest.raises(ValueError, match="unconditional"):
        call(sampling=jaxedit.Sampling(c=np.ones((2, 3))))
    with pytest.raises(ValueError, match="truncation_psi does not apply"):
        call(sampling=jaxedit.Sampling(truncation_psi=0.7))
    with pytest.raises(ValueError, match="noise_mode='random'"):
        call(sampling=jaxedit.Sampling(noise_mode="random"))


def test_pivotal_tune_refuses_bad_input(toy, targets):
    ws = np.zeros((2, toy.num_ws, toy.w_dim))
    with pytest.raises(ValueError, match=r"ws must have shape \[N, 10, 32\]"):
        jaxedit.pivotal_tune(toy, targets, ws[:1], steps=1, progress=False)
    with pytest.raises(ValueError, match="lr must be positive"):
        jaxedit.pivotal_tune(toy, targets, ws, lr=0.0, steps=1, progress=False)
    with pytest.raises(ValueError, match="ws contains"):
        jaxedit.pivotal_tune(toy, targets, ws * np.nan, steps=1, progress=False)
    with pytest.raises(TypeError, match="locality must be"):
        jaxedit.pivotal_tune(toy, targets, ws, locality=cast(Any, True), steps=1, progress=False)


# ---- projection quality on the toy faces --------------------------------------------------------
def test_project_reconstructs_generated_faces(toy, targets, proj_w):
    res = proj_w
    assert res.ws.shape == (2, toy.num_ws, toy.w_dim) and res.latents.shape == (2, toy.w_dim)
    assert res.losses.shape == (STEPS, 2) and res.restart_losses.shape == (2, 2)
    assert res.mode == "default" and res.space == "w" and res.noise is None
    first, last = np.asarray(res.losses[0]), np.asarray(res.loss)
    assert np.all(last < 0.1 * first), (first, last)
    assert np.all(last < 0.01), last
    # the reported loss is the MSE of the returned images, which are gen.synthesis(ws)
    np.testing.assert_allclose(mse(res.images, targets), last, rtol=1e-4)
    np.testing.assert_allclose(
        mse(toy.synthesis(res.ws, dtype="float32"), targets), last, rtol=1e-4
    )


def test_restarts_never_worse_than_a_single_start(toy, targets, proj_w):
    # one start per image on [a, a, b, b] runs the same compiled step as 2 starts on [a, b]
    single = jaxedit.project(
        toy,
        np.repeat(targets, 2, axis=0),
        steps=STEPS,
        restarts=projection.Restarts(1),
        compute=F32,
        progress=False,
    )
    one = np.asarray(single.loss)[::2]
    np.testing.assert_allclose(np.asarray(proj_w.restart_losses[:, 0]), one, rtol=1e-5)
    assert np.all(np.asarray(proj_w.loss) <= one + 1e-9)
    best = np.asarray(proj_w.restart_losses).min(axis=1)
    np.testing.assert_array_equal(np.asarray(proj_w.loss), best)


def test_wplus_is_no_worse_than_w(toy, targets, proj_w):
    res = jaxedit.project(
        toy,
        targets,
        space="wplus",
        steps=STEPS,
        restarts=projection.Restarts(2),
        compute=F32,
        progress=False,
    )
    assert res.latents.shape == (2, toy.num_ws, toy.w_dim) and res.ws is not None
    np.testing.assert_array_equal(res.ws, res.latents)
    # starts 2, 3 are the W runs of starts 0, 1 inside the W+ batch: they are the W projection
    # (another float32 program: equal to rounding, which 60 steps amplify to ~0.2 %)
    assert res.restart_losses.shape == (2, 4)
    np.testing.assert_allclose(
        np.asarray(res.restart_losses[:, 2:]), np.asarray(proj_w.restart_losses), rtol=1e-2
    )
    assert np.all(np.asarray(res.loss) <= np.asarray(proj_w.loss) * (1 + 1e-2))
    # on these W-made faces the W+ runs themselves end no worse than W
    w_plus = np.asarray(res.restart_losses[:, :2]).min(axis=1)
    assert np.all(w_plus <= np.asarray(proj_w.loss) * 1.05), (w_plus, proj_w.loss)
    wp = res.ws[np.asarray(res.restart) < 2]
    assert wp.shape[0] == 0 or float(jnp.max(jnp.std(wp, axis=1))) > 0  # the slots differ


def test_project_is_deterministic_and_compiles_one_step(toy, targets, proj_w):
    before = jaxedit.debug.compiled_programs()
    again = jaxedit.project(
        toy, targets, steps=STEPS, restarts=projection.Restarts(2), compute=F32, progress=False
    )
    for a, b in zip(jax.tree.leaves(proj_w), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # other images, seed and number of steps: the same compiled programs
    other = jaxedit.project(
        toy,
        targets[::-1],
        steps=5,
        seed=1,
        restarts=projection.Restarts(2),
        compute=F32,
        progress=False,
    )
    assert jaxedit.debug.compiled_programs() == before
    assert before["projection.project_step"] >= 1
    assert not np.array_equal(np.asarray(other.restart_losses), np.asarray(proj_w.restart_losses))


def test_reference_mode_without_noise_buffers(toy, targets, proj_w):
    """The toy generator has no noise inputs: the reference mode is the W projection from w_avg
    alone (here on [a, a, b, b]: the restarts test's compiled step)."""
    res = jaxedit.project(
        toy,
        np.repeat(targets, 2, axis=0),
        mode="reference",
        steps=STEPS,
        compute=F32,
        progress=False,
    )
    assert res.noise is None and res.mode == "reference"
    np.testing.assert_array_equal(np.asarray(res.restart), 0)
    np.testing.assert_allclose(
        np.asarray(res.loss)[::2], np.asarray(proj_w.restart_losses[:, 0]), rtol=1e-5
    )


# ---- the reference mode with noise buffers (tiny random StyleGAN2, float64) -------------------
@pytest.fixture(scope="module")
def noisy(make_small_generator):
    gen = make_small_generator()
    graphdef, state = nnx.split(gen)
    for path, var in nnx.to_flat_state(state):
        if path[-1] == "noise_strength":  # 0 at init: make the noise inputs matter
            var.set_value(jnp.full(var.shape, 0.3))
    gen = nnx.merge(graphdef, state)
    z = np.random.RandomState(1).randn(2, gen.z_dim)
    images = np.clip(np.asarray(gen.synthesis(gen.mapping(z))), -1.0, 1.0)
    return gen, images


def test_reference_mode_first_step_and_noise_buffers(noisy):
    gen, images = noisy
    # step 0 has learning rate 0: one step leaves w at w_avg (NumPy mean of the 10,000 mapped
    # RandomState(123) samples, as projector.py)
    z = np.random.RandomState(123).randn(10_000, gen.z_dim)
    w_avg = np.asarray(gen.mapping(z))[:, 0].mean(axis=0)
    one = jaxedit.project(gen, images, mode="reference", steps=1, progress=False)
    np.testing.assert_allclose(np.asarray(one.latents), np.broadcast_to(w_avg, (2, w_avg.size)))
    res = jaxedit.project(gen, images, mode="reference", steps=4, progress=False)
    assert res.noise is not None and len(res.noise) == 5  # b4.conv1, b8.conv0/1, b16.conv0/1
    for name, v in res.noise.items():
        assert name.endswith("noise_const") and v.shape[0] == 2
        v = np.asarray(v)
        np.testing.assert_allclose(v.mean(axis=(1, 2)), 0.0, atol=1e-12)  # renormalized
        np.testing.assert_allclose((v**2).mean(axis=(1, 2)), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(np.asarray(res.losses)))
    # the returned images use the optimized buffers; with_noise puts them in a copy of gen
    assert res.ws is not None
    for i in range(2):
        img = res.with_noise(gen, i).synthesis(res.ws[i : i + 1])
        np.testing.assert_allclose(np.asarray(img[0]), np.asarray(res.images[i]), atol=1e-10)
    assert not np.allclose(np.asarray(gen.synthesis(res.ws)), np.asarray(res.images))


# ---- a stand-in feature loss: arrays traced, not baked in ----------------------------------------
@struct.dataclass
class FeatureLoss:
    """A fixed random 1x1 "network": squared distance of tanh(x @ W) features per image."""

    kernel: jax.Array

    def distance(self, x, y):
        fx = jnp.tanh(jnp.einsum("nhwc,cd->nhwd", x, self.kernel.astype(x.dtype)))
        fy = jnp.tanh(jnp.einsum("nhwc,cd->nhwd", y, self.kernel.astype(x.dtype)))
        return jnp.mean(jnp.square(fx - fy), axis=(1, 2, 3))


def test_split_static_traces_array_leaves():
    from jaxedit.projection._losses import merge_static, split_static

    k = jnp.ones((3, 8))
    static, arrays = split_static(FeatureLoss(k))
    assert len(arrays) == 1 and arrays[0] is k
    static2, _ = split_static(FeatureLoss(2 * k))
    assert static == static2 and hash(static) == hash(static2)  # one jit cache entry
    assert isinstance(merge_static(static, [k]), FeatureLoss)
    w = projection.Weighted((projection.MSE(), FeatureLoss(k)), (1.0, 0.5))
    static, arrays = split_static(w)
    assert len(arrays) == 1
    assert merge_static(static, arrays).weights == (1.0, 0.5)


@pytest.mark.slow
def test_project_with_a_feature_loss_traces_its_weights(toy, targets):
    rng = np.random.default_rng(0)
    loss_a = FeatureLoss(jnp.asarray(rng.standard_normal((3, 8)), jnp.float32))
    res = jaxedit.project(
        toy,
        targets,
        loss=loss_a,
        steps=30,
        restarts=projection.Restarts(2),
        compute=F32,
        progress=False,
    )
    assert np.all(np.asarray(res.loss) < 0.5 * np.asarray(res.losses[0]))
    before = jaxedit.debug.compiled_programs()
    loss_b = FeatureLoss(jnp.asarray(rng.standard_normal((3, 8)), jnp.float32))
    jaxedit.project(
        toy,
        targets,
        loss=loss_b,
        steps=3,
        restarts=projection.Restarts(2),
        compute=F32,
        progress=False,
    )
    assert jaxedit.debug.compiled_programs() == before  # new weights: no new program


# ---- pivotal tuning -------------------------------------------------------------------------------
def test_pivotal_tune_improves_and_leaves_the_original(toy, targets, proj_w):
    _, state = nnx.split(toy)
    saved = [np.array(v) for v in jax.tree.leaves(state)]
    tuned = jaxedit.pivotal_tune(toy, targets, proj_w, steps=15, compute=F32, progress=False)
    assert type(tuned) is type(toy) and tuned is not toy
    before = mse(toy.synthesis(proj_w.ws, dtype="float32"), targets)
    after = mse(tuned.synthesis(proj_w.ws, dtype="float32"), targets)
    assert np.all(after < 0.8 * before), (before, after)
    _, state = nnx.split(toy)
    for a, b in zip(saved, jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, np.asarray(b))
    # buffers are not tuned
    np.testing.assert_array_equal(
        np.asarray(tuned.mapping_net.w_avg[...]), np.asarray(toy.mapping_net.w_avg[...])
    )


@pytest.mark.slow
def test_pivotal_tune_locality_keeps_far_images(toy, targets, proj_w):
    loc = projection.Locality(samples=2, distance=3.0)
    free = jaxedit.pivotal_tune(
        toy, targets, proj_w, steps=40, lr=3e-3, compute=F32, progress=False
    )
    kept = jaxedit.pivotal_tune(
        toy, targets, proj_w, steps=40, lr=3e-3, compute=F32, progress=False, locality=loc
    )
    z = np.random.RandomState(9).randn(8, toy.z_dim)
    far = toy.mapping(z, truncation_psi=0.7)
    ref = toy.synthesis(far, dtype="float32")
    drift_free = mse(free.synthesis(far, dtype="float32"), ref).mean()
    drift_kept = mse(kept.synthesis(far, dtype="float32"), ref).mean()
    assert drift_kept < drift_free, (drift_kept, drift_free)


# ---- BigGAN --------------------------------------------------------------------------------------
def test_project_biggan_z_with_known_class(tiny_biggan):
    gen = tiny_biggan
    c = jaxedit.one_hot([1, 3], gen.num_classes)
    z = jaxedit.truncated_noise_sample(2, gen.z_dim, 0.5, seed=0)
    images = np.clip(np.asarray(gen(z, c, 0.5)), -1.0, 1.0)
    sampling = jaxedit.Sampling(c=c, truncation_psi=0.5)
    res = jaxedit.project(
        gen,
        images,
        steps=30,
        sampling=sampling,
        restarts=projection.Restarts(2),
        compute=F32,
        progress=False,
    )
    assert res.space == "z" and res.ws is None and res.latents.shape == (2, gen.z_dim)
    assert np.all(np.asarray(res.loss) < 0.2 * np.asarray(res.losses[0]))
    np.testing.assert_allclose(
        mse(gen(res.latents, c, 0.5, dtype="float32"), images), np.asarray(res.loss), rtol=1e-4
    )
    with pytest.raises(ValueError, match="conditional"):
        jaxedit.project(gen, images, steps=2, progress=False)
    with pytest.raises(ValueError, match="no W space"):
        jaxedit.project(gen, images, mode="reference", sampling=sampling, progress=False)


@pytest.mark.slow
def test_project_and_tune_biggan_cond_without_class(tiny_biggan):
    gen = tiny_biggan
    c = jaxedit.one_hot([2, 7], gen.num_classes)
    z = jaxedit.truncated_noise_sample(2, gen.z_dim, 0.5, seed=1)
    images = np.clip(np.asarray(gen(z, c, 0.5)), -1.0, 1.0)
    sampling = jaxedit.Sampling(truncation_psi=0.5)
    res = jaxedit.project(
        gen, images, space="cond", steps=60, sampling=sampling, compute=F32, progress=False
    )
    assert res.latents.shape == (2, 2 * gen.z_dim)
    assert np.all(np.asarray(res.loss) < 0.2 * np.asarray(res.losses[0]))
    tuned = jaxedit.pivotal_tune(
        gen,
        images,
        res,
        steps=10,
        sampling=sampling,
        compute=F32,
        locality=projection.Locality(),
        progress=False,
    )
    before = mse(gen.synthesis_from_cond(res.latents, 0.5, dtype="float32"), images)
    after = mse(tuned.synthesis_from_cond(res.latents, 0.5, dtype="float32"), images)
    assert np.all(after < before)


# ---- float32: the public defaults -----------------------------------------------------------------
@pytest.mark.float32
def test_float32_defaults(toy, targets):
    res = jaxedit.project(toy, targets, steps=40, progress=False)  # 4 restarts, W, MSE
    assert res.ws is not None and res.ws.dtype == jnp.float32 and res.restart_losses.shape == (2, 4)
    assert np.all(np.asarray(res.loss) < 0.1 * np.asarray(res.losses[0]))
    assert np.all(np.asarray(res.loss) < 0.02)
    tuned = jaxedit.pivotal_tune(toy, targets, res, steps=10, progress=False)
    after = mse(tuned.synthesis(res.ws), targets)
    assert np.all(after < mse(toy.synthesis(res.ws), targets))


# ---- other StyleGAN2s: a conditional one, a loaded NVIDIA pickle ----------------------------------
@pytest.mark.slow
def test_project_conditional_stylegan2(make_small_generator):
    gen = make_small_generator(c_dim=3)
    c = np.eye(3)[[0, 2]]
    z = np.random.RandomState(2).randn(2, gen.z_dim)
    images = np.clip(np.asarray(gen.synthesis(gen.mapping(z, c))), -1.0, 1.0)
    with pytest.raises(ValueError, match="conditional"):
        jaxedit.project(gen, images, steps=2, progress=False)
    sampling = jaxedit.Sampling(c=c)
    res = jaxedit.project(gen, images, steps=40, sampling=sampling, compute=F32, progress=False)
    assert np.all(np.asarray(res.loss) < 0.5 * np.asarray(res.losses[0]))
    tuned = jaxedit.pivotal_tune(
        gen,
        images,
        res,
        steps=5,
        sampling=sampling,
        locality=projection.Locality(),
        compute=F32,
        progress=False,
    )
    assert np.all(np.isfinite(np.asarray(tuned.synthesis(res.ws))))


@pytest.mark.slow
def test_project_reference_mode_on_a_loaded_nvidia_pickle(ada_gen):
    z = np.random.RandomState(0).randn(1, ada_gen.z_dim)
    images = np.clip(np.asarray(ada_gen.synthesis(ada_gen.mapping(z, None))), -1.0, 1.0)
    res = jaxedit.project(ada_gen, images, mode="reference", steps=30, progress=False)
    assert res.noise is not None  # NVIDIA's generators have noise buffers
    assert float(res.loss[0]) < float(res.losses[0, 0])


@pytest.mark.slow
def test_project_with_lpips_loss(toy, targets):
    """The LPIPS network (random VGG16 weights here) is a loss like any other: its weights go
    into the compiled step, and the LPIPS distance to the targets falls."""
    lpips = projection.LPIPS.random(0)
    loss = projection.Resized(lpips, 256)
    res = jaxedit.project(toy, targets, loss=loss, steps=8, compute=F32, progress=False)
    assert res.ws.shape == (2, toy.num_ws, toy.w_dim)
    first, last = np.asarray(res.losses)[0], np.asarray(res.loss)
    assert np.all(np.isfinite(last)) and np.all(last < first)
    again = np.asarray(lpips(np.asarray(toy.synthesis(res.ws), np.float32), targets))
    np.testing.assert_allclose(again, last, rtol=1e-3, atol=1e-6)
