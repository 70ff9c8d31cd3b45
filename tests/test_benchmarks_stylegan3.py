"""The PyTorch StyleGAN3 baseline of the benchmarks (``benchmarks/torch_ref/stylegan3.py``)
against NVIDIA's own outputs (the ``stylegan3_{t,r}_tiny`` fixtures, float64), its filter
design against the buffers NVIDIA's constructor stored and against SciPy, and the
``--suite stylegan3`` smoke run."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root holds benchmarks/

from conftest import fixture_path  # noqa: E402

from benchmarks.torch_ref import stylegan3 as tr3  # noqa: E402

KINDS = ("t", "r")


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module", params=KINDS)
def nvidia(request):
    """(kind, float64 params, arch, reference outputs) of one fixture."""
    kind = request.param
    pkl = fixture_path(f"stylegan3_{kind}_tiny.pkl")
    ref = dict(np.load(fixture_path(f"stylegan3_{kind}_tiny_ref.npz")))
    p, arch = tr3.load_nvidia_pickle(pkl, dtype=torch.float64)
    return kind, p, arch, ref


# ------------------------------------------------------------------------------------------------
# architecture and filter design


def test_design_matches_the_pickled_attributes_and_filter_buffers(nvidia):
    """design_arch(init kwargs) gives every layer attribute NVIDIA's constructor stored, and
    random_generator's designed filters equal the pickle's up/down_filter buffers bit for bit
    (float32), radial (R) and separable (T) alike."""
    kind, p, arch, _ = nvidia
    assert tr3.design_arch(arch.init_kwargs) == arch
    assert [ly.name for ly in arch.layers][-1] == "L14_32_3"
    rand, rarch = tr3.random_generator(arch.init_kwargs, seed=3, dtype=torch.float64)
    assert rarch == arch
    assert set(rand) == set(p)  # the same state-dict keys, buffers included
    n_filters = n_radial = 0
    for k, v in p.items():
        assert tuple(rand[k].shape) == tuple(v.shape), k
        if k.endswith("_filter"):
            n_filters += 1
            n_radial += v.ndim == 2
            np.testing.assert_array_equal(rand[k].numpy(), v.numpy(), err_msg=k)
    assert n_filters == 2 * 14
    assert n_radial == (12 if kind == "r" else 0)


def test_filter_design_against_scipy():
    """The NumPy Kaiser firwin and jinc design against SciPy's (the functions NVIDIA calls), at
    the 1024 px T and R configs."""
    signal = pytest.importorskip("scipy.signal")
    special = pytest.importorskip("scipy.special")

    def nvidia_design(numtaps, cutoff, width, fs, radial):
        if numtaps == 1:
            return None
        if not radial:
            return signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
        r = np.hypot(*np.meshgrid(x, x))
        f = special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
        beta = signal.kaiser_beta(signal.kaiser_atten(numtaps, width / (fs / 2)))
        f *= np.outer(np.kaiser(numtaps, beta), np.kaiser(numtaps, beta))
        return f / np.sum(f)

    x = np.linspace(-90, 90, 4001)
    np.testing.assert_allclose(tr3.bessel_j1(x), special.j1(x), rtol=0, atol=1e-14)
    checked = 0
    for kind in KINDS:
        for ly in tr3.design_arch(tr3.config(kind, 1024)).layers:
            for args in (
                (ly.up_taps, ly.in_cutoff, 2 * ly.in_half_width, ly.tmp_sampling_rate, False),
                (
                    ly.down_taps,
                    ly.out_cutoff,
                    2 * ly.out_half_width,
                    ly.tmp_sampling_rate,
                    ly.down_radial,
                ),
            ):
                ours, ref = tr3.design_lowpass_filter(*args), nvidia_design(*args)
                if ref is None or ours is None:
                    assert ours is None and ref is None
                    continue
                np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-13 * np.abs(ref).max())
                checked += 1
    assert checked == 2 * 2 * 14


def test_random_generator_is_deterministic_and_off_init():
    cfg = tr3.config("t", 64, z_dim=16, w_dim=16, channel_base=1024, channel_max=32)
    a, arch = tr3.random_generator(cfg, seed=1)
    b, _ = tr3.random_generator(cfg, seed=1)
    c, _ = tr3.random_generator(cfg, seed=2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["mapping.fc0.weight"], c["mapping.fc0.weight"])
    assert arch.num_ws == 16 and arch.layers[-1].out_size == (64, 64)
    assert float(a["synthesis.input.affine.weight"].abs().max()) > 0  # the rotation depends on w
    img = tr3.generate(a, arch, torch.randn(2, 16), psi=0.7)
    assert img.shape == (2, 3, 64, 64) and bool(torch.isfinite(img).all())


# ------------------------------------------------------------------------------------------------
# parity with NVIDIA's outputs (float64)


def test_mapping_and_styles_equal_nvidia(nvidia):
    _, p, arch, ref = nvidia
    z = torch.tensor(ref["z"])
    for key, psi, cutoff in (
        ("ws_psi10", 1.0, None),
        ("ws_psi7", 0.7, None),
        ("ws_psi5_cut2", 0.5, 2),
    ):
        assert _rel(tr3.mapping(p, arch, z, psi=psi, cutoff=cutoff), ref[key]) < 1e-12, key
    for name, s in tr3.styles(p, arch, torch.tensor(ref["ws_psi10"])).items():
        assert _rel(s, ref[f"style_{name}.affine"]) < 1e-12, name


@pytest.mark.slow  # float64 convs on a CPU: ~10-30 s each
def test_synthesis_equals_nvidia(nvidia):
    """Images at psi 1 and 0.7 and every layer's activation (the fixture keeps float32 copies
    of those: 1e-6 of the float64 value's scale is their rounding)."""
    _, p, arch, ref = nvidia
    img, acts = tr3.synthesis_activations(p, arch, torch.tensor(ref["ws_psi10"]))
    assert _rel(img, ref["img_psi10"]) < 1e-6
    assert _rel(tr3.synthesis(p, arch, torch.tensor(ref["ws_psi7"])), ref["img_psi7"]) < 1e-6
    assert list(acts) == ["input", *ref["layer_names"]]
    for name, a in acts.items():
        assert _rel(a[:1], ref[f"act_{name}"]) < 1e-6, name
    assert float(np.abs(ref["img_psi10"]).max()) > 1e-2  # a real signal


@pytest.mark.slow  # float64 convs on a CPU: ~10-30 s each
def test_user_transform_equals_nvidia(nvidia):
    """gen_images.py's --translate/--rotate: the input's transform buffer set to the inverse."""
    _, p, arch, ref = nvidia
    ws = torch.tensor(ref["ws_psi10"])
    out = tr3.synthesis(p, arch, ws, transform=torch.tensor(ref["transform_inv"]))
    assert _rel(out, ref["img_psi10_transformed"]) < 1e-6
    assert _rel(ref["img_psi10"], ref["img_psi10_transformed"]) > 1e-2  # it does move the image


@pytest.mark.slow  # float64 convs on a CPU: ~10-30 s each
def test_forward_mode_equals_nvidia_wplus_jvps(nvidia):
    """torch.func.jvp of the baseline (what the Jacobian benchmark times) against NVIDIA's own
    float64 forward-mode W+ JVPs."""
    _, p, arch, ref = nvidia
    ws0 = torch.tensor(ref["ws_psi10"][:1])
    jv = torch.func.vmap(
        lambda v: torch.func.jvp(lambda w: tr3.synthesis(p, arch, w), (ws0,), (v[None],))[1][0]
    )(torch.tensor(ref["probe_V_wplus"]))
    assert _rel(jv, ref["probe_JV_wplus"]) < 1e-6


@pytest.mark.float32
def test_float32_baseline_close_to_nvidia_float64(nvidia):
    _, _, _, ref = nvidia
    kind = nvidia[0]
    p, arch = tr3.load_nvidia_pickle(fixture_path(f"stylegan3_{kind}_tiny.pkl"))
    img = tr3.generate(p, arch, torch.tensor(ref["z"], dtype=torch.float32), psi=0.7)
    assert img.dtype == torch.float32
    assert _rel(img, ref["img_psi7"]) < 2e-5


# ------------------------------------------------------------------------------------------------
# the benchmark suite


@pytest.mark.slow  # jit of a 16-layer generator + torch.func on a CPU: minutes on 2 cores
# (test_benchmarks' all-suites smoke run leaves this suite to this test)
def test_stylegan3_suite_runs_at_toy_size(tmp_path):
    """``--suite stylegan3 --smoke``: forward (batch 1, 8) and W-Jacobian rows for both
    frameworks from the same weights, each with its max relative error against torch fp32."""
    pytest.importorskip("converters.stylegan3.nvidia")
    import json

    from benchmarks import __main__ as bench_main

    out = tmp_path / "smoke.json"
    argv = ["run", "--suite", "stylegan3", "--smoke", "--repeats", "1", "--out", str(out)]
    assert bench_main.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["meta"]["smoke"] and not doc["meta"]["failures"]
    rows = doc["rows"]
    assert {r["suite"] for r in rows} == {"stylegan3"}
    kinds = {(r["workload"].split(" ")[0], r["impl"]) for r in rows}
    assert kinds == {
        ("synthesis", "pytorch"),
        ("synthesis", "jaxedit"),
        ("W", "pytorch-torch.func"),
        ("W", "jaxedit"),
    }
    assert sorted(r["params"].get("batch") for r in rows if r["workload"].startswith("syn")) == [
        1,
        1,
        8,
        8,
    ]
    for r in rows:
        assert r["median_s"] > 0 and r["accuracy_metric"] == "max rel. err. vs torch fp32"
        assert r["accuracy"] < 1e-4, r  # the same function in both frameworks (float32)


@pytest.mark.slow  # float64 jit of two generators
def test_jaxedit_stylegan3_equals_the_torch_baseline_in_float64():
    """The benchmark's two sides compute the same function: jaxedit's generator built from the
    baseline's random NVIDIA state dict (the suite's conversion path) against the baseline, T and
    R, mapping with truncation and synthesis, float64. One sample: equal to rounding. Several:
    NVIDIA normalises the styles by their RMS over the whole batch before demodulating, jaxedit
    per sample, which demodulation cancels up to its eps (1e-8): ~1e-9 relative."""
    pytest.importorskip("converters.stylegan3.nvidia")
    import jax.numpy as jnp

    from benchmarks.suite_stylegan3 import SIZES, stylegan3_pair

    for kind in KINDS:
        gen, p, arch = stylegan3_pair(dict(SIZES["smoke"], cfg=kind), "cpu", seed=5)
        p64 = {k: v.double() for k, v in p.items()}
        z = np.random.RandomState(0).randn(3, arch.z_dim)
        ws = np.asarray(gen.mapping(z, None, 0.7, 3, dtype=jnp.float64))
        want = tr3.mapping(p64, arch, torch.tensor(z), psi=0.7, cutoff=3).numpy()
        np.testing.assert_allclose(ws, want, rtol=0, atol=1e-12)
        img = np.asarray(gen.synthesis(ws, dtype=jnp.float64))
        for n, tol in ((1, 1e-12), (3, 1e-8)):
            ref = tr3.synthesis(p64, arch, torch.tensor(ws[:n])).numpy().transpose(0, 2, 3, 1)
            assert _rel(img[:n], ref) < tol, (kind, n)
