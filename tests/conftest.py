import os
from pathlib import Path

import jax
import pytest

# Two sessions (both run by .ci/run):
#   default               x64 on: parity against the references in float64; tests marked
#                         ``float32`` are deselected (they run in the other session).
#   JAXEDIT_TEST_X64=0    x64 off (the users' default): only tests marked ``float32`` run, so the
#                         public defaults are exercised in float32 with their own tolerances.
X64 = os.environ.get("JAXEDIT_TEST_X64", "1") != "0"
jax.config.update("jax_enable_x64", X64)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "float32: runs only in the float32 session (JAXEDIT_TEST_X64=0, x64 off)"
    )


def pytest_collection_modifyitems(config, items):
    """Each session deselects the other session's tests (reported as deselected, not skipped:
    they do run, in the other session)."""
    keep, other = [], []
    for item in items:
        f32 = item.get_closest_marker("float32") is not None
        (other if f32 == X64 else keep).append(item)
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``CI=true`` a skipped test is a failure: CI installs everything (torch, the docs
    tools; the fixtures are in the repository), so a skip there means something is missing."""
    outcome = yield
    rep = outcome.get_result()
    if os.environ.get("CI") and rep.skipped and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[-1] if isinstance(rep.longrepr, tuple) else rep.longrepr
        rep.outcome = "failed"
        rep.longrepr = f"skipped in CI ({reason}): CI must run every test"


#: Reference checkpoints and outputs of the original implementations, kept in the repository
#: (tests/fixtures/README.md says how each was made); JAXEDIT_FIXTURES points elsewhere.
FIXTURES = Path(os.environ.get("JAXEDIT_FIXTURES", Path(__file__).resolve().parent / "fixtures"))


def fixture_path(name: str) -> Path:
    p = FIXTURES / name
    if not p.exists():
        if os.environ.get("CI"):  # a fixture missing in CI is a failure, not a skip
            pytest.fail(f"reference fixture {p} is missing")
        pytest.skip(f"reference fixture {p} not available")
    return p


@pytest.fixture(scope="session")
def ada_pkl():
    return fixture_path("stylegan2_ada_tiny.pkl")


@pytest.fixture(scope="session")
def ada_ref():
    import numpy as np

    return dict(np.load(fixture_path("stylegan2_ada_tiny_ref.npz")))


@pytest.fixture(scope="session")
def ros_pt():
    return fixture_path("rosinality_tiny.pt")


@pytest.fixture(scope="session")
def ros_ref():
    import numpy as np

    return dict(np.load(fixture_path("rosinality_tiny_ref.npz")))


@pytest.fixture(scope="session")
def ada_gen(ada_pkl):
    import jaxedit

    return jaxedit.load_generator(ada_pkl)


@pytest.fixture(scope="session")
def ros_gen(ros_pt):
    import jaxedit

    return jaxedit.load_generator(ros_pt)


def _small_generator(arch: str = "skip", c_dim: int = 0, conv_clamp=None, seed: int = 1):
    """A tiny random StyleGAN2: 16 px, z = w = 8, 6 W+ slots."""
    from flax import nnx

    from jaxedit.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

    cfg = StyleGAN2Config.create(
        {4: 16, 8: 16, 16: 8},
        z_dim=8,
        w_dim=8,
        c_dim=c_dim,
        img_resolution=16,
        mapping_layers=2,
        architecture=arch,
        conv_clamp=conv_clamp,
    )
    return StyleGAN2Generator(cfg, rngs=nnx.Rngs(seed))


@pytest.fixture(scope="session")
def make_small_generator():
    return _small_generator


@pytest.fixture(scope="session")
def small_gen():
    return _small_generator()


def _tiny_biggan():
    """A tiny BigGAN-deep: 32 px, z = 8, 10 classes; random NumPy weights (much faster to build
    than the module's own init), BN variances positive."""
    import numpy as np

    from jaxedit.checkpoint import _flat_state, abstract_generator, generator_from_arrays
    from jaxedit.models.biggan import BigGANConfig

    cfg = BigGANConfig(
        output_dim=32,
        z_dim=8,
        class_embed_dim=8,
        channel_width=4,
        num_classes=10,
        layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
        attention_layer_position=3,
        n_stats=51,
    )
    rng = np.random.default_rng(0)
    arrays = {}
    for k, v in _flat_state(abstract_generator("biggan", cfg)).items():
        if k.endswith("running_vars"):
            arrays[k] = rng.uniform(0.5, 1.5, v.shape)
        elif k.endswith("running_means"):
            arrays[k] = 0.1 * rng.standard_normal(v.shape)
        else:
            fan_in = int(np.prod(v.shape[:-1])) if len(v.shape) > 1 else 1
            arrays[k] = rng.standard_normal(v.shape) / np.sqrt(fan_in)
    return generator_from_arrays("biggan", cfg, arrays)


@pytest.fixture(scope="session")
def tiny_biggan():
    return _tiny_biggan()
