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
