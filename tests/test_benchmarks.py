"""The benchmark harness: the PyTorch StyleGAN2 baseline equals jaxedit, every suite runs at toy size."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_pretrained_biggan")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root holds benchmarks/

from benchmarks import __main__ as bench_main, workloads
from benchmarks.torch_ref import stylegan2 as torch_sg2


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_torch_baseline_equals_jaxedit(ada_gen, psi):
    p = torch_sg2.params_from_jaxedit(ada_gen, dtype=torch.float64)
    z = np.random.RandomState(0).randn(3, 32)
    ws = torch_sg2.mapping(p, ada_gen.config, torch.tensor(z), psi)
    np.testing.assert_allclose(ws.numpy(), ada_gen.mapping(z, None, psi), rtol=0, atol=1e-12)
    img = torch_sg2.synthesis(p, ada_gen.config, ws).numpy().transpose(0, 2, 3, 1)
    ref = np.asarray(ada_gen.synthesis(ws.numpy()))
    assert np.abs(img - ref).max() / np.abs(ref).max() < 1e-12


def test_torch_baseline_forward_mode_against_jaxedit_finite_differences(ada_gen):
    """The baseline's torch.func.jvp (what the Jacobian benchmarks time) against central finite
    differences of jaxedit's synthesis (an independent implementation of the same function)."""
    p = torch_sg2.params_from_jaxedit(ada_gen, dtype=torch.float64)
    ws = np.asarray(ada_gen.mapping(np.random.RandomState(1).randn(1, 32)), np.float64)
    v = np.random.RandomState(2).randn(*ws.shape)
    _, jv = torch.func.jvp(
        lambda w: torch_sg2.synthesis(p, ada_gen.config, w), (torch.tensor(ws),), (torch.tensor(v),)
    )
    eps = 1e-6  # small: a larger step crosses a leaky-ReLU kink for this latent (FD error 4e-2)
    fd = (
        np.asarray(ada_gen.synthesis(ws + eps * v)) - np.asarray(ada_gen.synthesis(ws - eps * v))
    ) / (2 * eps)
    jv = jv.numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(jv, fd, rtol=0, atol=1e-6 * np.abs(fd).max())
    assert np.abs(fd).max() > 1e-2  # a real signal


#: Suites whose smoke run has a slow test of its own (minutes of compilation on 2 cores).
OWN_SLOW_TEST = ("stylegan3",)  # tests/test_benchmarks_stylegan3.py


def test_every_suite_runs_at_toy_size(tmp_path):
    out = tmp_path / "smoke.json"
    names = [s for s in workloads.SUITES if s not in OWN_SLOW_TEST]
    argv = ["run", "--suite", ",".join(names), "--smoke", "--repeats", "1", "--out", str(out)]
    assert bench_main.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["meta"]["smoke"] and not doc["meta"]["failures"]
    suites = {r["suite"] for r in doc["rows"]}
    assert suites == set(names)
    for r in doc["rows"]:
        assert r["median_s"] > 0 and r["min_s"] <= r["median_s"] <= r["max_s"]
        if r["impl"] == "jaxedit" and r["accuracy"] is not None and "cos" in r["accuracy_metric"]:
            assert r["accuracy"] > 0.99, r
    # the validity suite measures every method the library has (issue 12), PandA and EiS included
    impls = {
        r["impl"].split(" (")[0].split("-")[0] for r in doc["rows"] if r["suite"] == "validity"
    }
    assert {"resefa", "sefa", "random", "panda", "editing in style"} <= impls, impls
    assert (
        bench_main.main(
            [
                "render",
                "--results",
                str(tmp_path),
                "--include-smoke",
                "--out",
                str(tmp_path / "README.md"),
            ]
        )
        == 0
    )
    text = (tmp_path / "README.md").read_text()
    assert "### jacobian: W Jacobian (1 sample)" in text and "×" in text


def test_torch_baseline_on_a_model_without_noise_inputs():
    """The embedded toy-face generator has no noise inputs (use_noise=False): the PyTorch
    baseline of the wplus_embedded suite must render it equal to jaxedit."""
    import jax.numpy as jnp
    import torch

    import jaxedit

    gen = jaxedit.default_generator()
    assert not gen.config.use_noise
    p = torch_sg2.params_from_jaxedit(gen, device="cpu", dtype=torch.float64)
    z = np.random.RandomState(4).randn(2, gen.z_dim)
    ws = np.asarray(gen.mapping(z, dtype=jnp.float64))
    ref = np.asarray(gen.synthesis(ws, dtype=jnp.float64))
    out = torch_sg2.synthesis(p, gen.config, torch.from_numpy(ws.copy())).numpy()
    out = out.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(out, ref, atol=1e-9 * np.abs(ref).max(), rtol=0)
