"""The public recompile guard: `jaxedit.debug.compiled_programs` counts compiled programs of every
jitted kernel, grows when a new shape compiles and stays put when only values change."""

import numpy as np

import jaxedit


def test_compiled_programs_counts_new_shapes_not_new_values(small_gen):
    rng = np.random.default_rng(0)
    ws = small_gen.mapping(rng.standard_normal((2, small_gen.z_dim)), None)
    jaxedit.jacobian(small_gen, ws[:1])
    before = jaxedit.debug.compiled_programs()
    assert before["jacobians.jacobian"] >= 1
    assert set(before) >= {
        "models.StyleGAN2Generator._mapping",
        "linalg.dense",
        "panda.fit_scan",
        "moments.region_moments",
    }
    jaxedit.jacobian(small_gen, ws[1:] + 0.5)  # new values, same shapes
    assert jaxedit.debug.compiled_programs() == before
    small_gen.synthesis(np.concatenate([ws, ws]))  # a new batch size: one new program
    after = jaxedit.debug.compiled_programs()
    assert after["models.StyleGAN2Generator._program"] == (
        before["models.StyleGAN2Generator._program"] + 1
    )
    assert all(after[k] >= v for k, v in before.items())
