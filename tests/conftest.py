import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)

FIXTURES = Path(os.environ.get("JAXEDIT_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))


def fixture_path(name: str) -> Path:
    p = FIXTURES / name
    if not p.exists():
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
    cfg = StyleGAN2Config.create({4: 16, 8: 16, 16: 8}, z_dim=8, w_dim=8, c_dim=c_dim,
                                 img_resolution=16, mapping_layers=2, architecture=arch,
                                 conv_clamp=conv_clamp)
    return StyleGAN2Generator(cfg, rngs=nnx.Rngs(seed))


@pytest.fixture(scope="session")
def make_small_generator():
    return _small_generator


@pytest.fixture(scope="session")
def small_gen():
    return _small_generator()
