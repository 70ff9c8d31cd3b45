"""Many-sample region moments: against full Jacobians + NumPy sums, ReSeFa from moments against
``aggregate="mean"``, merging, files, the CLI with an interrupted + resumed run, 4 devices and
2 processes (subprocesses with fake CPU devices / gloo collectives)."""

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxedit
from jaxedit.methods import resefa as mm

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
R8 = jaxedit.OutputSpec(8)  # Jacobian rows on an 8 x 8 grid


@pytest.fixture(scope="module")
def gen(make_small_generator):
    """A fresh tiny generator: the subprocess workers build the same one (the session's shared
    ``small_gen`` may have been modified by other tests)."""
    return make_small_generator()


def _mask(h=16, w=16):
    m = np.zeros((h, w), bool)
    m[4:9, 3:12] = True
    return m


def _numpy_moments(J, mask):
    """M_f, M_b from full Jacobians [N, H, W, C, D] and a mask [H, W]: explicit NumPy sums."""
    J = np.asarray(J, np.float64)
    n, h, w, c, d = J.shape
    rows = np.repeat(mask.reshape(-1), c)
    J2 = J.reshape(n, h * w * c, d)
    mf = sum(j[rows].T @ j[rows] for j in J2) / (rows.sum() * n)
    mb = sum(j[~rows].T @ j[~rows] for j in J2) / ((~rows).sum() * n)
    return mf, mb


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _abs_cos(a, b):
    a = np.asarray(a) / np.linalg.norm(a, axis=-1, keepdims=True)
    b = np.asarray(b) / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.abs(np.sum(a * b, axis=-1))


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "space,resize,channels,batch,gram",
    [
        ("w", 8, "rgb", 2, "dense"),
        ("w", 8, "rgb", 2, "stream"),
        pytest.param("s", None, "sum", 3, "dense", marks=pytest.mark.slow),
    ],
)
def test_matches_full_jacobians(gen, space, resize, channels, batch, gram):
    ws = np.asarray(gen.mapping(np.random.RandomState(0).randn(5, 8)))
    regions = {"box": _mask(), "eyes": "ffhq/eyes"}
    out = jaxedit.OutputSpec(resize, channels=channels)
    m = jaxedit.region_moments(
        gen,
        ws,
        regions,
        space=space,
        output=out,
        compute=jaxedit.Compute(batch_size=batch, chunk=3),
        gram=gram,
    )
    J = jaxedit.jacobian(gen, ws, space=space, output=out)
    grid = J.shape[1:3]
    for name, region in regions.items():
        mask = jaxedit.region_mask(region, grid)
        mf, mb = _numpy_moments(J, mask)
        r = m[name]
        assert r.M_f.shape == r.M_b.shape == (J.shape[-1],) * 2
        assert r.n_samples == 5 and r.n_f == mask.sum() * J.shape[3]
        assert r.n_b == (~mask).sum() * J.shape[3] and r.M_f.dtype == np.float64
        assert _rel(r.M_f, mf) < 1e-12 and _rel(r.M_b, mb) < 1e-12
        np.testing.assert_array_equal(r.mask, mask)
    # sensitive: another region gives other moments
    assert _rel(m["box"].M_f, m["eyes"].M_f) > 0.01


def test_seeds_equal_their_latents(gen):
    z = np.concatenate([jaxedit.seed_to_z(s, 8) for s in (3, 7, 11)])
    ws = np.asarray(gen.mapping(z, None, 0.7))
    a = jaxedit.region_moments(
        gen, [3, 7, 11], ["eyes"], output=R8, sampling=jaxedit.Sampling(truncation_psi=0.7)
    )["eyes"]
    b = jaxedit.region_moments(gen, ws, ["eyes"], output=R8)["eyes"]
    assert a.seeds == (3, 7, 11) and b.seeds is None
    assert _rel(a.M_f, b.M_f) < 1e-13 and _rel(a.M_b, b.M_b) < 1e-13
    assert a.settings.truncation_psi == 0.7


@pytest.mark.parametrize("solver", ["auto", "reference"])
def test_resefa_from_moments_equals_mean_aggregate(gen, solver):
    ws = np.asarray(gen.mapping(np.random.RandomState(1).randn(4, 8)))
    mask = _mask()
    m = jaxedit.region_moments(gen, ws, {"r": mask}, space="w")
    J = jaxedit.jacobian(gen, ws, space="w")
    ours = jaxedit.resefa(m["r"], k=4, solver=solver)
    ref = jaxedit.resefa(J, mask, aggregate="mean", k=4, solver=solver)
    np.testing.assert_allclose(ours.eigenvalues, ref.eigenvalues, rtol=1e-10)
    assert np.all(_abs_cos(ours.directions, ref.directions) > 1 - 1e-10)
    if solver == "auto":
        np.testing.assert_allclose(ours.directions, ref.directions, atol=1e-10)  # canonical sign
        assert ours.condition_number == pytest.approx(ref.condition_number, rel=1e-6)
    assert (ours.n_foreground, ours.n_background) == (ref.n_foreground, ref.n_background)
    np.testing.assert_array_equal(ours.mask, mask)
    # regularization as in resefa(J): M_b + tau trace(M_b) I
    reg = jaxedit.resefa(m["r"], k=2, regularization=1e-3)
    np.testing.assert_allclose(
        reg.eigenvalues,
        jaxedit.resefa(J, mask, aggregate="mean", k=2, regularization=1e-3).eigenvalues,
        rtol=1e-10,
    )
    # the dict form, the region checked against the stored mask
    np.testing.assert_allclose(jaxedit.resefa(m, "r", k=4).eigenvalues, ours.eigenvalues)
    np.testing.assert_allclose(jaxedit.resefa(m["r"], mask, k=4).eigenvalues, ours.eigenvalues)
    with pytest.raises(ValueError, match="not the region"):
        jaxedit.resefa(m["r"], (0, 0, 4, 4), k=4)
    with pytest.raises(ValueError, match="one of"):
        jaxedit.resefa(m, "nose", k=4)
    with pytest.raises(ValueError, match="Jacobian rows"):
        jaxedit.resefa(m["r"], k=2, solver="woodbury")
    # matrix-free (products with M_f, M_b) against the dense solve on the Jacobians
    mfree = jaxedit.resefa(m["r"], k=2, solver=jaxedit.MatrixFree(block_size=2, tol=1e-10))
    assert mfree.solver == "matrix_free" and bool(np.all(mfree.stats.converged))
    np.testing.assert_allclose(mfree.eigenvalues, ref.eigenvalues[:2], rtol=1e-8)
    assert np.all(_abs_cos(mfree.directions, ref.directions[:2]) > 1 - 1e-8)
    with pytest.raises(TypeError, match="needs a region"):
        jaxedit.resefa(J)


def test_merge_and_initial(gen):
    full = jaxedit.region_moments(gen, range(4), ["eyes", "mouth"], output=R8)
    a = jaxedit.region_moments(gen, [0, 1], ["eyes", "mouth"], output=R8)
    b = jaxedit.region_moments(gen, [2, 3], ["eyes", "mouth"], output=R8)
    merged = mm.merge_moments(a, b)
    for name in full:
        s = a[name] + b[name]
        assert s.n_samples == 4 and s.seeds == (0, 1, 2, 3)
        assert _rel(s.M_f, full[name].M_f) < 1e-14 and _rel(s.M_b, full[name].M_b) < 1e-14
        assert _rel(sum([a[name], b[name]]).M_b, full[name].M_b) < 1e-14
        assert _rel(merged[name].M_f, full[name].M_f) < 1e-14
    # the pytree leaves are the additive sums (same metadata: latents, no seeds)
    ws = np.asarray(gen.mapping(np.concatenate([jaxedit.seed_to_z(s, 8) for s in range(4)])))
    la, lb = (jaxedit.region_moments(gen, w, ["eyes"], output=R8)["eyes"] for w in (ws[:2], ws[2:]))
    t = jax.tree.map(lambda x, y: x + y, la, lb)
    assert t.n_samples == 4 and _rel(t.M_f, full["eyes"].M_f) < 1e-14
    # continuing from a checkpoint reproduces one pass bit for bit
    cont = jaxedit.region_moments(gen, [2, 3], ["eyes", "mouth"], output=R8, initial=a)
    for name in full:
        np.testing.assert_array_equal(cont[name].gram_f, full[name].gram_f)
        np.testing.assert_array_equal(cont[name].gram_b, full[name].gram_b)
        assert cont[name].seeds == (0, 1, 2, 3)
    with pytest.raises(ValueError, match="summed in both"):
        a["eyes"] + full["eyes"]
    with pytest.raises(ValueError, match="already in the initial"):
        jaxedit.region_moments(gen, [1, 2], ["eyes", "mouth"], output=R8, initial=a)
    e = b["eyes"]
    other = dataclasses.replace(e, settings=dataclasses.replace(e.settings, space="wplus"))
    with pytest.raises(ValueError, match=r"different settings: space 'w' vs 'wplus'"):
        a["eyes"] + other
    with pytest.raises(ValueError, match="other settings"):
        jaxedit.region_moments(gen, [5], ["eyes"], output=R8, initial={"eyes": other})
    with pytest.raises(ValueError, match="different masks"):
        a["eyes"] + dataclasses.replace(b["mouth"], name="eyes")
    with pytest.raises(ValueError, match="regions"):
        mm.merge_moments(a, {"eyes": e})


def test_save_load_roundtrip_and_bad_files(gen, tmp_path):
    m = jaxedit.region_moments(gen, [4, 5], {"eyes": "eyes", "box": (1, 2, 9, 7)}, output=R8)
    path = jaxedit.save_moments(tmp_path / "m.npz", m)
    back = jaxedit.load_moments(path)
    assert list(back) == ["eyes", "box"]
    for name in m:
        np.testing.assert_array_equal(back[name].gram_f, m[name].gram_f)
        np.testing.assert_array_equal(back[name].mask, m[name].mask)
        assert back[name].settings == m[name].settings and back[name].seeds == (4, 5)
        assert (back[name].n_f, back[name].n_b) == (m[name].n_f, m[name].n_b)
    # the generator's identity is part of the settings
    other_gen = jaxedit.StyleGAN2Generator(gen.config, rngs=__import__("flax").nnx.Rngs(7))
    o = jaxedit.region_moments(other_gen, [6], {"eyes": "eyes"}, output=R8)
    with pytest.raises(ValueError, match="generator"):
        back["eyes"] + o["eyes"]
    data = dict(np.load(path))
    for key, value, msg in [
        ("gram_f", data["gram_f"][:, :3], "gram_f"),
        ("masks", data["masks"][:, :4], "masks"),
        ("n_f", data["n_f"] + 1, "n_f"),
        ("n_b", data["n_b"][:0], "n_b.*shape"),
        ("format", np.asarray("other"), "format"),
    ]:
        bad = dict(data, **{key: value})
        np.savez(tmp_path / "bad.npz", **bad)
        with pytest.raises(ValueError, match=f"bad.npz.*{msg}"):
            jaxedit.load_moments(tmp_path / "bad.npz")
    g = data["gram_b"].copy()
    g[0, 0, 0] = np.nan
    np.savez(tmp_path / "bad.npz", **dict(data, gram_b=g))
    with pytest.raises(ValueError, match="non-finite"):
        jaxedit.load_moments(tmp_path / "bad.npz")
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in data.items() if k != "seeds"})
    with pytest.raises(ValueError, match=r"missing key\(s\) \['seeds'\]"):
        jaxedit.load_moments(tmp_path / "bad.npz")


def test_compiles_once_per_step_shape(gen):
    jaxedit.region_moments(gen, range(3), ["eyes"], output=R8)
    before = mm.compiled_programs()
    other = jaxedit.StyleGAN2Generator(gen.config, rngs=__import__("flax").nnx.Rngs(3))
    jaxedit.region_moments(other, range(10, 15), ["mouth"], output=R8)
    ws = np.asarray(gen.mapping(np.random.RandomState(0).randn(2, 8)))
    jaxedit.region_moments(gen, ws, {"r": _mask()}, output=R8)
    # other N, weights, regions (same count), seeds or latents: the same program
    assert mm.compiled_programs() == before


def test_errors(gen):
    ws = np.asarray(gen.mapping(np.random.RandomState(0).randn(2, 8)))
    bad = ws.copy()
    bad[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"latents contain non-finite values \(sample 1\)"):
        jaxedit.region_moments(gen, bad, ["eyes"])
    with pytest.raises(ValueError, match="duplicates"):
        jaxedit.region_moments(gen, [1, 1], ["eyes"])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        jaxedit.region_moments(gen, ws, ["eyes"], compute=jaxedit.Compute(batch_size=0))
    with pytest.raises(ValueError, match="mesh"):
        jaxedit.region_moments(gen, ws, ["eyes"], mesh="cpu")
    with pytest.raises(ValueError, match="empty"):
        jaxedit.region_moments(gen, ws, {"r": np.zeros((16, 16), bool)})
    with pytest.raises(ValueError, match="given twice"):
        jaxedit.region_moments(gen, ws, ["eyes", "eyes"])
    with pytest.raises(ValueError, match=r"ws of shape \[N, 6, 8\]"):
        jaxedit.region_moments(gen, ws[:, :3], ["eyes"])
    with pytest.raises(ValueError, match="space"):
        jaxedit.region_moments(gen, ws, ["eyes"], space="q")
    with pytest.raises(ValueError, match="gram"):
        jaxedit.region_moments(gen, ws, ["eyes"], gram="sparse")


@pytest.mark.float32
def test_float32_defaults(gen):
    ws = np.asarray(gen.mapping(np.random.RandomState(2).randn(3, 8)))
    mask = _mask()
    m = jaxedit.region_moments(gen, ws, {"r": mask})
    assert m["r"].gram_f.dtype == np.float32
    J = jaxedit.jacobian(gen, ws)
    mf, mb = _numpy_moments(J, mask)
    assert _rel(m["r"].M_f, mf) < 1e-5 and _rel(m["r"].M_b, mb) < 1e-5
    ours = jaxedit.resefa(m["r"], k=3)
    ref = jaxedit.resefa(J, mask, aggregate="mean", k=3)
    np.testing.assert_allclose(ours.eigenvalues, ref.eigenvalues, rtol=1e-3)
    assert np.all(_abs_cos(ours.directions, ref.directions) > 0.999)


# ------------------------------------------------------------------------------------------------
# the command line
def _cli(*argv):
    from jaxedit.cli import main

    return main([str(a) for a in argv])


def test_cli_interrupted_run_resumes_to_the_same_file(tmp_path, ada_pkl, monkeypatch, capsys):
    import jaxedit.methods.resefa as resefa_pkg

    base = [ada_pkl, "--regions", "eyes,box=2:2:8:8", "--x64", "--no-progress"]
    common = base + ["--seeds", "0-4", "--resize", "8"]
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    assert _cli("moments", *common, "--out", full) == 0
    assert _cli("moments", *common, "--out", full) == 2  # exists: neither --resume nor --force
    assert "or --resume" in capsys.readouterr().err

    region_moments = resefa_pkg.region_moments

    def stop_after_two(*args, callback, **kwargs):  # Ctrl-C right after the checkpoint of 2 samples
        def checkpoint(done, total, partial):
            callback(done, total, partial)  # the command's own callback writes --out
            if done == 2:
                raise KeyboardInterrupt

        return region_moments(*args, callback=checkpoint, **kwargs)

    monkeypatch.setattr(resefa_pkg, "region_moments", stop_after_two)
    assert _cli("moments", *common, "--out", part, "--checkpoint-every", "0") == 130
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(resefa_pkg, "region_moments", region_moments)
    partial = np.load(part)
    assert int(partial["n_samples"]) == 2 and not bool(partial["run_complete"])
    # other settings are refused, the partial file is left alone
    assert _cli("moments", *base, "--seeds", "0-4", "--resize", "4", "--out", part, "--resume") == 2
    assert "other settings" in capsys.readouterr().err
    assert _cli("moments", *base, "--seeds", "0-5", "--resize", "8", "--out", part, "--resume") == 2
    assert "seeds" in capsys.readouterr().err
    assert int(np.load(part)["n_samples"]) == 2
    assert _cli("moments", *common, "--out", part, "--resume") == 0
    a, b = np.load(full), np.load(part)
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert bool(b["run_complete"]) and int(b["n_samples"]) == 5
    assert _cli("moments", *common, "--out", part, "--resume") == 0
    assert "nothing to do" in capsys.readouterr().out
    # resefa from the file equals resefa on the full Jacobians of the same seeds
    dirs = tmp_path / "dirs.npz"
    assert (
        _cli("resefa", "--moments", full, "--region", "eyes", "--k", "3", "--x64", "--out", dirs)
        == 0
    )
    gen = jaxedit.load_generator(ada_pkl)
    ws = gen.mapping(np.concatenate([jaxedit.seed_to_z(s, 32) for s in range(5)]))
    J = jaxedit.jacobian(gen, ws, output=jaxedit.OutputSpec(8, channels="sum"))
    ref = jaxedit.resefa(J, "ffhq/eyes", aggregate="mean", k=3)
    d = np.load(dirs)
    assert d["directions"].shape == (1, 3, 32) and int(d["n_samples"]) == 5
    assert bool(d["converged"]) and str(d["solver"]) == "dense"
    np.testing.assert_allclose(d["eigenvalues"][0], ref.eigenvalues, rtol=1e-9)
    # the matrix-free solver on the stored moments, --tol reaching it
    mfree = tmp_path / "dirs_mf.npz"
    assert (
        _cli(
            "resefa",
            "--moments",
            full,
            "--region",
            "eyes",
            "--k",
            "3",
            "--x64",
            "--solver",
            "matrix_free",
            "--tol",
            "1e-9",
            "--out",
            mfree,
        )
        == 0
    )
    e = np.load(mfree)
    assert str(e["solver"]) == "matrix_free" and bool(e["converged"])
    np.testing.assert_allclose(e["eigenvalues"][0], ref.eigenvalues, rtol=1e-7)
    assert (
        _cli("resefa", "--moments", full, "--region", "nose", "--out", tmp_path / "nose.npz") == 2
    )
    assert "no region 'nose'" in capsys.readouterr().err
    assert _cli("resefa", "--region", "eyes", "--out", dirs) == 2


def test_cli_merge_and_validation(tmp_path, ada_pkl, capsys):
    common = [ada_pkl, "--regions", "mouth", "--resize", "4", "--x64", "--no-progress"]
    for name, seeds in (("a", "0-1"), ("b", "2"), ("all", "0-2")):
        assert _cli("moments", *common, "--seeds", seeds, "--out", tmp_path / f"{name}.npz") == 0
    out = tmp_path / "m.npz"
    assert _cli("moments-merge", tmp_path / "a.npz", tmp_path / "b.npz", "--out", out) == 0
    m, ref = jaxedit.load_moments(out)["mouth"], jaxedit.load_moments(tmp_path / "all.npz")["mouth"]
    assert m.seeds == (0, 1, 2) and _rel(m.M_f, ref.M_f) < 1e-14
    assert (
        _cli("moments-merge", tmp_path / "a.npz", tmp_path / "all.npz", "--out", tmp_path / "x.npz")
        == 2
    )
    assert "summed in both" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()
    for argv, msg in [
        (["--batch", "0"], "positive integer"),
        (["--regions", "nope"], "unknown region"),
        (["--checkpoint-every", "-1"], ">= 0"),
        (["--resume", "--force"], "give one of them"),
    ]:
        assert _cli("moments", ada_pkl, "--seeds", "0", "--regions", "eyes", *argv) == 2
        assert msg in capsys.readouterr().err
    assert _cli("moments", *common, "--seeds", "0", "--out", tmp_path / "none.npz", "--resume") == 2
    assert (
        _cli(
            "moments", *common, "--seeds", "0", "--coordinator", "h:1", "--out", tmp_path / "y.npz"
        )
        == 2
    )
    assert "--distributed" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# several devices, several processes (subprocesses: the device count is fixed at jax start-up)
_WORKER = r"""
import os, sys, json
sys.path[:0] = [{root!r}, {tests!r}]
import jax
mode = sys.argv[1]
if mode != "devices":   # devices: XLA_FLAGS=--xla_force_host_platform_device_count=4
    pid, port = int(sys.argv[2]), sys.argv[3]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_num_cpu_devices", 2)
    jax.distributed.initialize(coordinator_address="127.0.0.1:" + port, num_processes=2,
                               process_id=pid, initialization_timeout=60)
jax.config.update("jax_enable_x64", True)
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from conftest import _small_generator
import jaxedit
gen = _small_generator()
regions = {{"eyes": "eyes", "box": (2, 3, 9, 12)}}
R8 = jaxedit.OutputSpec(8)
out = sys.argv[-1]
if mode == "devices":
    assert jax.device_count() == 4
    ws = np.asarray(gen.mapping(np.random.RandomState(0).randn(5, 8)))
    m4 = jaxedit.region_moments(gen, ws, regions, output=R8)     # default mesh: the 4 devices
    mesh = jax.make_mesh((4,), ("s",))
    sharded = jax.device_put(ws[:4], NamedSharding(mesh, P("s")))
    J = jaxedit.jacobian(gen, sharded, output=R8)
    moments = {{f"{{n}}_{{k}}": np.asarray(getattr(m4[n], k)) for n in m4 for k in ("M_f", "M_b")}}
    np.savez(out, **moments,
             J=np.asarray(J), spec=str(J.sharding.spec),
             n_shards=len({{s.device for s in J.addressable_shards}}))
else:
    assert jax.process_count() == 2 and jax.device_count() == 4
    m = jaxedit.region_moments(gen, range(5), regions, output=R8)
    if jax.process_index() == 0:
        jaxedit.save_moments(out, m)
    jax.distributed.shutdown()
"""


def _worker(tmp_path, devices: int | None = None):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(root=str(ROOT), tests=str(TESTS)))
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env["JAX_PLATFORMS"] = "cpu"
    if devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return script, env


def test_four_devices_equal_one_device_and_full_jacobians(gen, tmp_path):
    script, env = _worker(tmp_path, devices=4)
    out = tmp_path / "dev.npz"
    r = subprocess.run(
        [sys.executable, str(script), "devices", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    d = np.load(out)
    ws = np.asarray(gen.mapping(np.random.RandomState(0).randn(5, 8)))
    regions = {"eyes": "ffhq/eyes", "box": (2, 3, 9, 12)}
    one = jaxedit.region_moments(
        gen,
        ws,
        regions,
        output=R8,  # this process: 1 device
        compute=jaxedit.Compute(batch_size=2),
    )
    assert len(jax.devices()) == 1
    J = jaxedit.jacobian(gen, ws, output=R8)
    for name, region in regions.items():
        mf, mb = _numpy_moments(J, jaxedit.region_mask(region, 8))
        assert _rel(d[f"{name}_M_f"], one[name].M_f) < 1e-13
        assert _rel(d[f"{name}_M_b"], one[name].M_b) < 1e-13
        assert _rel(d[f"{name}_M_f"], mf) < 1e-12 and _rel(d[f"{name}_M_b"], mb) < 1e-12
    # jaxedit.jacobian on sample-sharded latents: sharded output, same values
    assert str(d["spec"]).startswith("P('s',") and int(d["n_shards"]) == 4
    assert _rel(d["J"], J[:4]) < 1e-12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process(gen, tmp_path):
    script, env = _worker(tmp_path)
    out = tmp_path / "mp.npz"
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), "procs", str(i), port, str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    errs = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=300)
            errs.append(err)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(e[-2000:] for e in errs)
    got = jaxedit.load_moments(out)
    ref = jaxedit.region_moments(gen, range(5), {"eyes": "eyes", "box": (2, 3, 9, 12)}, output=R8)
    for name in ref:
        assert got[name].seeds == (0, 1, 2, 3, 4) and got[name].n_samples == 5
        assert got[name].settings == ref[name].settings
        assert _rel(got[name].M_f, ref[name].M_f) < 1e-13
        assert _rel(got[name].M_b, ref[name].M_b) < 1e-13


@pytest.mark.slow
def test_cli_killed_run_resumes_to_the_same_file(tmp_path, ada_pkl):
    """A real interruption: SIGKILL right after the first checkpoint appears."""
    import time

    common = [
        ada_pkl,
        "--seeds",
        "0-23",
        "--regions",
        "eyes",
        "--resize",
        "8",
        "--x64",
        "--no-progress",
    ]
    part = tmp_path / "part.npz"
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jaxedit.cli",
            "moments",
            *map(str, common),
            "--checkpoint-every",
            "0",
            "--out",
            str(part),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        t0 = time.time()
        while not part.exists() and proc.poll() is None and time.time() - t0 < 600:
            time.sleep(0.02)
        proc.kill()
    finally:
        proc.wait(timeout=60)
    done = int(np.load(part)["n_samples"])
    assert 1 <= done < 24, "the run was not interrupted"
    assert _cli("moments", *common, "--out", part, "--resume") == 0
    full = tmp_path / "full.npz"
    assert _cli("moments", *common, "--out", full) == 0
    a, b = np.load(full), np.load(part)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
