"""NVIDIA TensorFlow StyleGAN2 pickles and Hammer / ReSeFa .pth checkpoints against the fixtures.

References (tests/fixtures): ``stylegan2_tf_tiny_ref.npz`` (the TF pickle converted by
stylegan2-ada-pytorch's legacy.py) and ``stylegan2_hammer_tiny_ref.npz`` (ReSeFa's own generator
in float64). Hostile or damaged variants are built here by re-pickling the fixtures' structure.
"""

import io
import os
import pickle
import shutil
import sys
import types
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fixture_path

import converters
import jaxedit
from converters import _pickle
from converters.errors import (
    CheckpointError,
    CorruptCheckpointError,
    KeyMismatchError,
    ShapeMismatchError,
    UnsafePickleError,
    UnsupportedFormatError,
)
from converters.stylegan2 import hammer, nvidia_tf


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return np.abs(a - b).max() / np.abs(b).max()


def nhwc(x):
    return np.asarray(x).transpose(0, 2, 3, 1)


@pytest.fixture(scope="module")
def tf_pkl():
    return fixture_path("stylegan2_tf_tiny.pkl")


@pytest.fixture(scope="module")
def tf_ref():
    return dict(np.load(fixture_path("stylegan2_tf_tiny_ref.npz")))


@pytest.fixture(scope="module")
def hm_pth():
    return fixture_path("stylegan2_hammer_tiny.pth")


@pytest.fixture(scope="module")
def hm_ref():
    return dict(np.load(fixture_path("stylegan2_hammer_tiny_ref.npz")))


@pytest.fixture(scope="module")
def tf_gen(tf_pkl):
    return jaxedit.load_generator(tf_pkl)


@pytest.fixture(scope="module")
def hm_gen(hm_pth):
    return jaxedit.load_generator(hm_pth)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ---- format detection ---------------------------------------------------------------------------
def test_detect_format_by_content_not_suffix(tmp_path, tf_pkl, hm_pth):
    assert converters.detect_format(tf_pkl) == nvidia_tf.FORMAT == "nvidia-tf-pkl"
    assert converters.detect_format(hm_pth) == hammer.FORMAT == "hammer-pth"
    assert {"nvidia-tf-pkl", "hammer-pth"} <= set(converters.FORMATS)
    a, b = tmp_path / "looks_like_hammer.pth", tmp_path / "looks_like_tf.pkl"
    shutil.copy(tf_pkl, a)
    shutil.copy(hm_pth, b)
    assert converters.detect_format(a) == "nvidia-tf-pkl"
    assert converters.detect_format(b) == "hammer-pth"
    assert converters.read_checkpoint(a).which == "Gs"
    assert converters.read_checkpoint(b).which == "generator_smooth"


# ---- TF pickle: parity --------------------------------------------------------------------------
def test_tf_config(tf_pkl, tf_gen):
    conv = converters.read_checkpoint(tf_pkl)
    assert conv.source_format == "nvidia-tf-pkl" and conv.which == "Gs"
    cfg = conv.config
    # legacy.py: channel_base = 2 * fmap_base = 512, channel_max = fmap_max = 64
    assert cfg["channels"] == {"4": 64, "8": 64, "16": 32, "32": 16}
    assert {r: min(512 // int(r), 64) for r in cfg["channels"]} == {
        r: c for r, c in cfg["channels"].items()
    }
    assert (cfg["z_dim"], cfg["w_dim"], cfg["c_dim"], cfg["mapping_layers"]) == (32, 32, 0, 2)
    assert cfg["architecture"] == "skip" and cfg["mapping_lr_multiplier"] == 0.01
    assert cfg["resample_kernel"] == [1.0, 3.0, 3.0, 1.0] and cfg["conv_clamp"] is None
    assert tf_gen.num_ws == 8 and tf_gen.resolution == 32


@pytest.mark.parametrize("psi,key", [(1.0, "10"), (0.7, "7")])
def test_tf_mapping_and_images(tf_gen, tf_ref, psi, key):
    ws = tf_gen.mapping(tf_ref["z"], None, truncation_psi=psi, truncation_cutoff=None)
    assert ws.dtype == jnp.float64
    assert rel(ws, tf_ref[f"ws_psi{key}"]) < 1e-6
    img = tf_gen.synthesis(tf_ref[f"ws_psi{key}"], noise_mode="const")
    assert img.shape == (4, 32, 32, 3)
    assert rel(img, nhwc(tf_ref[f"img_psi{key}"])) < 1e-6
    assert rel(tf_gen(tf_ref["z"], None, psi), nhwc(tf_ref[f"img_psi{key}"])) < 1e-6


def test_tf_eager_equals_jit_and_no_recompile(tf_gen, tf_ref):
    ws = tf_ref["ws_psi7"][:2]
    np.testing.assert_allclose(
        tf_gen.mapping(tf_ref["z"], None, 0.7, jit=False),
        tf_gen.mapping(tf_ref["z"], None, 0.7),
        atol=1e-14,
    )
    tf_gen.synthesis(ws)
    before = jaxedit.debug.compiled_programs()
    assert before["models.StyleGAN2Generator._program"] >= 1
    tf_gen.synthesis(ws + 0.25)
    assert jaxedit.debug.compiled_programs() == before


@pytest.mark.slow  # op-by-op compilation of the eager synthesis: ~20 s on a loaded 2-core machine
def test_tf_eager_synthesis_equals_reference(tf_gen, tf_ref):
    ws = tf_ref["ws_psi7"][:2]
    img = tf_gen.synthesis(ws, jit=False)
    np.testing.assert_allclose(img, tf_gen.synthesis(ws), atol=1e-12)
    assert rel(img, nhwc(tf_ref["img_psi7"][:2])) < 1e-6


def test_tf_runtime_conventions_matter(tf_pkl, tf_ref):
    """The converted values are TF's with the flip and +1 applied, and each convention matters."""
    G, D, Gs = _pickle.load_pickle(tf_pkl)
    syn = dict(Gs.state["components"]["synthesis"].state["variables"])
    own = dict(Gs.state["variables"])
    conv = converters.read_checkpoint(tf_pkl)
    p = conv.params
    np.testing.assert_array_equal(
        p["synthesis_net/b8/conv0/weight"], syn["8x8/Conv0_up/weight"][::-1, ::-1]
    )
    np.testing.assert_array_equal(p["synthesis_net/b8/conv1/weight"], syn["8x8/Conv1/weight"])
    np.testing.assert_array_equal(
        p["synthesis_net/b16/torgb/affine/bias"], syn["16x16/ToRGB/mod_bias"] + 1
    )
    np.testing.assert_array_equal(p["synthesis_net/b32/conv0/noise_const"], syn["noise5"][0, 0])
    np.testing.assert_array_equal(p["synthesis_net/b32/conv1/noise_const"], syn["noise6"][0, 0])
    np.testing.assert_array_equal(p["mapping_net/w_avg"], own["dlatent_avg"])
    assert p["synthesis_net/b4/conv1/noise_strength"].shape == ()
    # Without the flip or the +1 the images are far from the reference.
    from jaxedit.checkpoint import generator_from_arrays

    for key, undo in (
        ("synthesis_net/b16/conv0/weight", lambda a: a[::-1, ::-1]),
        ("synthesis_net/b8/conv1/affine/bias", lambda a: a - 1),
    ):
        bad = dict(p, **{key: undo(p[key])})
        gen = generator_from_arrays("stylegan2", conv.config, bad)
        assert rel(gen.synthesis(tf_ref["ws_psi10"]), nhwc(tf_ref["img_psi10"])) > 1e-3, key


def test_tf_which_selects_G_or_Gs(tf_pkl, tf_ref):
    G, _, Gs = _pickle.load_pickle(tf_pkl)
    g = converters.read_checkpoint(tf_pkl, which="G")
    assert g.which == "G"
    np.testing.assert_array_equal(
        g.params["mapping_net/w_avg"], dict(G.state["variables"])["dlatent_avg"]
    )
    assert converters.read_checkpoint(tf_pkl, which="G_ema").which == "Gs"
    gen_g = jaxedit.load_generator(tf_pkl, which="G")
    assert rel(gen_g.synthesis(tf_ref["ws_psi10"]), nhwc(tf_ref["img_psi10"])) > 1e-3
    with pytest.raises(UnsupportedFormatError, match="discriminator"):
        converters.read_checkpoint(tf_pkl, which="D")
    with pytest.raises(UnsupportedFormatError, match="'Gs'"):
        converters.read_checkpoint(tf_pkl, which="generator")


# ---- Hammer: parity ------------------------------------------------------------------------------
def test_hammer_config(hm_pth, hm_gen):
    conv = converters.read_checkpoint(hm_pth)
    assert conv.source_format == "hammer-pth" and conv.which == "generator_smooth"
    assert conv.config["channels"] == {"4": 32, "8": 32, "16": 32, "32": 16}
    assert conv.sources["synthesis_net/b8/conv0/weight"] == "synthesis.layer1.weight"
    assert conv.sources["synthesis_net/b8/conv1/weight"] == "synthesis.layer2.weight"
    assert conv.sources["synthesis_net/b8/torgb/weight"] == "synthesis.output1.weight"
    assert hm_gen.num_ws == 8


def test_hammer_mapping_and_z_normalization(hm_gen, hm_ref):
    from jaxedit import _ops

    assert rel(_ops.normalize_2nd_moment(jnp.asarray(hm_ref["z"])), hm_ref["z_normalized"]) < 1e-12
    ws = hm_gen.mapping(hm_ref["z"])
    assert rel(ws[:, 0], hm_ref["w"]) < 1e-6
    assert rel(ws, hm_ref["wp_psi10"]) < 1e-6


@pytest.mark.parametrize(
    "key,trunc_psi,trunc_layers", [("psi10", None, None), ("psi7", 0.7, 8), ("psi7_cut4", 0.7, 4)]
)
def test_hammer_truncation_and_images(hm_gen, hm_ref, key, trunc_psi, trunc_layers):
    psi, cutoff = hammer.truncation_args(trunc_psi, trunc_layers)
    ws = hm_gen.mapping(hm_ref["z"], None, truncation_psi=psi, truncation_cutoff=cutoff)
    assert rel(ws, hm_ref[f"wp_{key}"]) < 1e-6
    assert rel(hm_gen.synthesis(ws, noise_mode="const"), nhwc(hm_ref[f"img_{key}"])) < 1e-6
    assert rel(hm_gen.synthesis(hm_ref[f"wp_{key}"]), nhwc(hm_ref[f"img_{key}"])) < 1e-6


def test_hammer_truncation_rule(hm_gen, hm_ref):
    """wp[:, :L] = w_avg + psi (wp[:, :L] - w_avg) only if psi < 1 and L > 0."""
    ta = hammer.truncation_args
    assert ta(None, None) == (1.0, None)
    assert ta(0.7, None) == (1.0, None)  # trunc_psi alone does nothing in Hammer
    assert ta(0.7, 0) == (1.0, None)
    assert ta(1.3, 8) == (1.0, None)  # psi >= 1: no truncation (jaxedit would extrapolate)
    assert ta(0.7, 4) == (0.7, 4) and ta(0.5, 20) == (0.5, 20)
    with pytest.raises(ValueError, match="trunc_psi"):
        ta(float("nan"), 4)
    # The fixture's cut4 codes: slots < 4 truncated toward w_avg, slots >= 4 untouched (= w).
    ref = hm_ref["wp_psi7_cut4"]
    np.testing.assert_allclose(
        ref[:, 4:], np.broadcast_to(hm_ref["w"][:, None], (4, 4, 32)), atol=1e-12
    )
    w_avg = np.asarray(hm_gen.mapping_net.w_avg[...], np.float64)
    want = w_avg + 0.7 * (hm_ref["w"][:, None] - w_avg)
    np.testing.assert_allclose(ref[:, :4], np.broadcast_to(want, (4, 4, 32)), atol=1e-6)
    assert rel(hm_gen.mapping(hm_ref["z"], None, 0.7, 4), ref) < 1e-6
    assert rel(hm_gen.mapping(hm_ref["z"], None, 0.7, None), ref) > 1e-3  # NVIDIA-style: all slots


def test_hammer_jacobian_probes(hm_gen, hm_ref):
    w0 = hm_ref["jacobian_w_point"]  # [1, 32]
    ws = np.broadcast_to(w0[:, None], (1, hm_gen.num_ws, 32))
    J = np.asarray(jaxedit.jacobian(hm_gen, ws, space="w"))  # [1, H, W, C, D]
    assert J.shape == (1, 32, 32, 3, 32)
    Jm = J[0].transpose(2, 0, 1, 3).reshape(3 * 32 * 32, 32)  # rows (C, H, W)
    assert rel(Jm @ hm_ref["probe_V_w"], hm_ref["probe_JV_w"]) < 1e-6

    # Independent path: JVPs of the (un-jitted) synthesis along the probe tangents.
    def f(w):
        img = hm_gen.synthesis(jnp.broadcast_to(w[:, None], (1, hm_gen.num_ws, 32)), jit=False)
        return img[0].transpose(2, 0, 1).reshape(-1)

    V = jnp.asarray(hm_ref["probe_V_w"].T[:, None])  # [4, 1, 32]
    jv = jax.jit(jax.vmap(lambda v: jax.jvp(f, (jnp.asarray(w0),), (v,))[1]))(V)
    assert rel(np.asarray(jv).T, hm_ref["probe_JV_w"]) < 1e-6


def test_hammer_which_and_fallback(tmp_path, hm_pth, hm_ref):
    torch = pytest.importorskip("torch")
    g = jaxedit.load_generator(hm_pth, which="generator")
    assert rel(g.synthesis(hm_ref["wp_psi10"]), nhwc(hm_ref["img_psi10"])) > 1e-3
    with pytest.raises(UnsupportedFormatError, match="discriminator"):
        converters.read_checkpoint(hm_pth, which="discriminator")
    with pytest.raises(UnsupportedFormatError, match="generator_smooth"):
        converters.read_checkpoint(hm_pth, which="G_ema")
    obj = torch.load(hm_pth, map_location="cpu", weights_only=False)
    del obj["models"]["generator_smooth"]
    path = tmp_path / "no_smooth.pth"
    torch.save(obj, path)
    conv = converters.read_checkpoint(path)
    assert conv.which == "generator"
    ref = converters.read_checkpoint(hm_pth, which="generator")
    for k in ref.params:
        np.testing.assert_array_equal(conv.params[k], ref.params[k])
    del obj["model_kwargs_init"]  # no kwargs: the configuration comes from the shapes
    torch.save(obj, path)
    assert converters.read_checkpoint(path).config == ref.config


def test_hammer_strides_are_honoured(hm_pth):
    torch = pytest.importorskip("torch")
    sd = torch.load(hm_pth, map_location="cpu", weights_only=False)["models"]["generator_smooth"]
    w = sd["synthesis.layer3.weight"]
    assert not w.is_contiguous()  # the fixture stores permuted views
    conv = converters.read_checkpoint(hm_pth)
    np.testing.assert_array_equal(
        conv.params["synthesis_net/b16/conv0/weight"], w.numpy().transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(
        conv.params["mapping_net/fc1/weight"], sd["mapping.dense1.weight"].numpy().T
    )


# ---- hostile / damaged variants: Hammer ----------------------------------------------------------
class _Rebuild:
    """Stands for a pickled ``torch._utils._rebuild_tensor_v2(...)`` call; re-pickles as one."""

    def __init__(self, *args):
        self.args = list(args)

    def __reduce__(self):
        import torch

        return (torch._utils._rebuild_tensor_v2, tuple(self.args))


class _Pid:
    def __init__(self, pid):
        self.pid = pid


def _rewrite_hammer_pickle(src, dst, edit):
    """Re-pickle the zip's data.pkl with ``edit(obj)`` applied to its structure (tensors as
    :class:`_Rebuild` records), keeping every storage file."""
    pytest.importorskip("torch")

    class U(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return _Rebuild
            return super().find_class(module, name)

        def persistent_load(self, pid):
            return _Pid(pid)

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return obj.pid if isinstance(obj, _Pid) else None

    with zipfile.ZipFile(src) as zin:
        name = next(n for n in zin.namelist() if n.endswith("data.pkl"))
        obj = U(io.BytesIO(zin.read(name))).load()
        edit(obj)
        buf = io.BytesIO()
        P(buf, protocol=2).dump(obj)
        with zipfile.ZipFile(dst, "w") as zout:
            for item in zin.infolist():
                zout.writestr(item, buf.getvalue() if item.filename == name else zin.read(item))
    return dst


def _tensor(obj, key, net="generator_smooth"):
    return obj["models"][net][key]


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda t: t.args.__setitem__(3, (1, 100000)), "overruns storage"),  # stride
        (lambda t: t.args.__setitem__(1, 10**6), "overruns storage"),  # offset
        (lambda t: t.args.__setitem__(3, (-1, 32)), "stride"),
        (lambda t: t.args.__setitem__(3, (1,)), "stride"),
    ],
)
def test_hammer_stride_corruption_is_typed(tmp_path, hm_pth, edit, match):
    path = _rewrite_hammer_pickle(
        hm_pth, tmp_path / "bad.pth", lambda o: edit(_tensor(o, "mapping.dense0.weight"))
    )
    with pytest.raises(CorruptCheckpointError, match=match):
        jaxedit.load_generator(path)


def test_hammer_rewritten_strides_follow_torch(tmp_path, hm_pth):
    """A legal but different stride: the reader gives exactly what torch.load gives."""
    torch = pytest.importorskip("torch")

    def edit(o):
        _tensor(o, "mapping.dense0.weight").args[3] = (32, 1)  # the transpose of what was saved

    path = _rewrite_hammer_pickle(hm_pth, tmp_path / "t.pth", edit)
    want = torch.load(path, map_location="cpu", weights_only=False)["models"]["generator_smooth"]
    got = converters.read_checkpoint(path).params["mapping_net/fc0/weight"]
    np.testing.assert_array_equal(got, want["mapping.dense0.weight"].numpy().T)
    orig = converters.read_checkpoint(hm_pth).params["mapping_net/fc0/weight"]
    np.testing.assert_array_equal(got, orig.T)


def test_hammer_truncated_and_short_storage(tmp_path, hm_pth):
    data = hm_pth.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pth"):
        jaxedit.load_generator(cut)
    short = tmp_path / "short.pth"
    with zipfile.ZipFile(hm_pth) as src, zipfile.ZipFile(short, "w") as dst:
        for item in src.infolist():
            raw = src.read(item)
            dst.writestr(item, raw[:10] if item.filename.endswith("/data/3") else raw)
    with pytest.raises(CorruptCheckpointError, match="data/3"):
        jaxedit.load_generator(short)


def _edited_hammer(tmp_path, hm_pth, edit, name="edited.pth"):
    torch = pytest.importorskip("torch")
    obj = torch.load(hm_pth, map_location="cpu", weights_only=False)
    edit(obj, torch)
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _sd(obj):
    return obj["models"]["generator_smooth"]


def _kw(obj):
    return obj["model_kwargs_init"]["generator_smooth"]


@pytest.mark.parametrize(
    "edit,err,match",
    [
        (
            lambda o, t: _sd(o).__setitem__("synthesis.layer3.style.weight", t.zeros(32, 31)),
            ShapeMismatchError,
            r"synthesis\.layer3\.style\.weight",
        ),
        (
            lambda o, t: _sd(o).__setitem__("synthesis.layer4.weight", t.zeros(24, 32, 3, 3)),
            ShapeMismatchError,
            "fmaps_base",
        ),
        (lambda o, t: _kw(o).__setitem__("z_dim", 64), ShapeMismatchError, "z_dim=64"),
        (lambda o, t: _kw(o).__setitem__("resolution", 64), ShapeMismatchError, "resolution=64"),
        (
            lambda o, t: _sd(o).pop("synthesis.layer2.noise"),
            KeyMismatchError,
            r"synthesis\.layer2\.noise",
        ),
        (
            lambda o, t: _sd(o).__setitem__("synthesis.extra", t.zeros(3)),
            KeyMismatchError,
            r"synthesis\.extra",
        ),
        (
            lambda o, t: _sd(o).pop("synthesis.output1.bias"),
            KeyMismatchError,
            r"synthesis\.output1\.bias",
        ),
        (
            lambda o, t: _kw(o).__setitem__("architecture", "resnet"),
            KeyMismatchError,
            "architecture",
        ),
        (lambda o, t: _kw(o).__setitem__("final_tanh", True), UnsupportedFormatError, "final_tanh"),
        (lambda o, t: _kw(o).__setitem__("repeat_w", False), UnsupportedFormatError, "repeat_w"),
        (lambda o, t: _kw(o).__setitem__("lr_mul", 0.5), UnsupportedFormatError, "lr_mul"),
        (
            lambda o, t: _kw(o).__setitem__("model_type", "StyleGAN3Generator"),
            UnsupportedFormatError,
            "StyleGAN3Generator",
        ),
        (lambda o, t: _kw(o).__setitem__("shiny", 1), UnsupportedFormatError, "shiny"),
        (
            lambda o, t: _sd(o).__setitem__("synthesis.layer1.filter", t.ones(4, 4) / 16),
            UnsupportedFormatError,
            r"synthesis\.layer1\.filter",
        ),
        (
            lambda o, t: _sd(o).__setitem__("truncation.w_avg", t.zeros(32)),
            UnsupportedFormatError,
            "genforce",
        ),
        (
            lambda o, t: _sd(o)["synthesis.layer0.bias"].__setitem__(0, float("nan")),
            CorruptCheckpointError,
            "non-finite",
        ),
        (
            lambda o, t: _sd(o).__setitem__("w_avg", t.zeros(32, dtype=t.int64)),
            CorruptCheckpointError,
            "dtype",
        ),
    ],
)
def test_hammer_bad_variants_are_typed(tmp_path, hm_pth, edit, err, match):
    path = _edited_hammer(tmp_path, hm_pth, edit)
    with pytest.raises(err, match=match):
        jaxedit.load_generator(path)


def test_hammer_payload_in_state_dict_never_runs(tmp_path, hm_pth):
    for where in ("state", "kwargs"):
        marker = tmp_path / f"pwned_{where}"

        def edit(o, t, marker=marker, where=where):
            if where == "state":
                _sd(o)["synthesis.layer0.bias"] = _Evil(marker)
            else:
                _kw(o)["architecture"] = _Evil(marker)

        path = _edited_hammer(tmp_path, hm_pth, edit, name=f"evil_{where}.pth")
        with pytest.raises(UnsafePickleError, match="system"):
            jaxedit.load_generator(path)
        assert not marker.exists()


# ---- hostile / damaged variants: TF pickle -------------------------------------------------------
class _TFNet:
    """Test-side stand-in used to re-pickle the fixture's structure as dnnlib.tflib.network.Network."""


_TFNet.__module__, _TFNet.__name__, _TFNet.__qualname__ = (
    "dnnlib.tflib.network",
    "Network",
    "Network",
)


@pytest.fixture
def tf_variant(tmp_path, tf_pkl, monkeypatch):
    """``make(edit) -> path``: the TF fixture with ``edit(G, D, Gs)`` applied to its states."""
    for name in ("dnnlib", "dnnlib.tflib"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    mod = types.ModuleType("dnnlib.tflib.network")
    mod.Network = _TFNet
    monkeypatch.setitem(sys.modules, "dnnlib.tflib.network", mod)

    class U(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("dnnlib.tflib.network", "Network"):
                return _TFNet
            return super().find_class(module, name)

    def make(edit, name="variant.pkl", protocol=3):
        with open(tf_pkl, "rb") as f:
            nets = U(f).load()
        edit(*nets)
        path = tmp_path / name
        path.write_bytes(pickle.dumps(nets, protocol=protocol))
        return path

    return make


def _vars(net, comp=None):
    st = net.__dict__ if comp is None else net.__dict__["components"][comp].__dict__
    return st["variables"]


def _set_var(net, comp, name, value):
    vs = _vars(net, comp)
    for i, (n, _) in enumerate(vs):
        if n == name:
            vs[i] = (n, value)
            return
    vs.append((name, value))


def _del_var(net, comp, name):
    vs = _vars(net, comp)
    vs[:] = [(n, v) for n, v in vs if n != name]


def test_tf_repickled_fixture_still_matches(tf_variant, tf_ref):
    """numpy-2 re-pickles (numpy._core globals, protocol 4) read the same as the numpy-1.x file."""
    path = tf_variant(lambda G, D, Gs: None, protocol=4)
    gen = jaxedit.load_generator(path)
    assert rel(gen.synthesis(tf_ref["ws_psi7"]), nhwc(tf_ref["img_psi7"])) < 1e-6


def test_tf_build_module_src_never_runs(tmp_path, tf_variant, tf_ref):
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('ran')\nimport os; os.system('touch {marker}')\n"

    def edit(G, D, Gs):
        for net in (
            G,
            D,
            Gs,
            Gs.__dict__["components"]["synthesis"],
            Gs.__dict__["components"]["mapping"],
        ):
            net.__dict__["build_module_src"] = code

    gen = jaxedit.load_generator(tf_variant(edit))
    assert not marker.exists()
    assert rel(gen.synthesis(tf_ref["ws_psi10"]), nhwc(tf_ref["img_psi10"])) < 1e-6


@pytest.mark.parametrize("where", ["variable", "static_kwargs", "top"])
def test_tf_payload_objects_are_refused(tmp_path, tf_variant, where):
    marker = tmp_path / "pwned"

    def edit(G, D, Gs):
        if where == "variable":
            _set_var(Gs, "synthesis", "4x4/Conv/bias", _Evil(marker))
        elif where == "static_kwargs":
            Gs.__dict__["static_kwargs"]["fmap_max"] = _Evil(marker)
        else:
            Gs.__dict__["extra"] = _Evil(marker)

    path = tf_variant(edit)
    with pytest.raises(UnsafePickleError, match="system"):
        jaxedit.load_generator(path)
    assert not marker.exists()


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.97])
def test_tf_truncated_pickle(tmp_path, tf_pkl, fraction):
    data = tf_pkl.read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: int(len(data) * fraction)])
    assert converters.detect_format(path) == "nvidia-tf-pkl"
    with pytest.raises(CorruptCheckpointError, match="cut.pkl"):
        jaxedit.load_generator(path)


def _setkw(net, key, value):
    """Set a static kwarg as TF does: on the generator and both components."""
    comps = net.__dict__["components"]
    for n in (net, comps["mapping"], comps["synthesis"]):
        n.__dict__["static_kwargs"][key] = value


@pytest.mark.parametrize(
    "edit,err,match",
    [
        (
            lambda G, D, Gs: _set_var(
                Gs, "synthesis", "8x8/Conv1/weight", np.zeros((3, 3, 64, 48), np.float32)
            ),
            ShapeMismatchError,
            "fmap_base",
        ),
        (
            lambda G, D, Gs: _set_var(
                Gs, "synthesis", "16x16/Conv0_up/mod_weight", np.zeros((32, 60), np.float32)
            ),
            ShapeMismatchError,
            "16x16/Conv0_up/mod_weight",
        ),
        (lambda G, D, Gs: _setkw(Gs, "latent_size", 64), ShapeMismatchError, "latent_size=64"),
        (lambda G, D, Gs: _setkw(Gs, "resolution", 64), ShapeMismatchError, "resolution=64"),
        (lambda G, D, Gs: _setkw(Gs, "mapping_layers", 8), ShapeMismatchError, "mapping_layers=8"),
        (
            lambda G, D, Gs: _del_var(Gs, "synthesis", "8x8/ToRGB/bias"),
            KeyMismatchError,
            "8x8/ToRGB/bias",
        ),
        (lambda G, D, Gs: _del_var(Gs, "synthesis", "noise3"), KeyMismatchError, "noise3"),
        (
            lambda G, D, Gs: _set_var(Gs, "synthesis", "8x8/Extra/weight", np.zeros(3, np.float32)),
            KeyMismatchError,
            "8x8/Extra/weight",
        ),
        (lambda G, D, Gs: _setkw(Gs, "architecture", "resnet"), KeyMismatchError, "architecture"),
        (lambda G, D, Gs: _setkw(Gs, "fancy_option", 1), UnsupportedFormatError, "fancy_option"),
        (
            lambda G, D, Gs: _setkw(Gs, "normalize_latents", False),
            UnsupportedFormatError,
            "normalize_latents",
        ),
        (
            lambda G, D, Gs: _setkw(Gs, "nonlinearity", "relu"),
            UnsupportedFormatError,
            "nonlinearity",
        ),
        (lambda G, D, Gs: _setkw(Gs, "fmap_base", 512), ShapeMismatchError, "fmap"),
        (
            lambda G, D, Gs: (
                Gs.__dict__["components"]["mapping"]
                .__dict__["static_kwargs"]
                .__setitem__("dlatent_size", 16)
            ),
            CorruptCheckpointError,
            "dlatent_size",
        ),
        (
            lambda G, D, Gs: _set_var(Gs, None, "dlatent_avg", np.full(32, np.inf, np.float32)),
            CorruptCheckpointError,
            "non-finite",
        ),
        (
            lambda G, D, Gs: _set_var(Gs, "mapping", "Dense0/bias", "not an array"),
            CorruptCheckpointError,
            "Dense0/bias",
        ),
        (
            lambda G, D, Gs: Gs.__dict__.__setitem__("version", 3),
            UnsupportedFormatError,
            "version 3",
        ),
        (
            lambda G, D, Gs: Gs.__dict__.__setitem__("variables", {}),
            CorruptCheckpointError,
            "variables",
        ),
    ],
)
def test_tf_bad_variants_are_typed(tf_variant, edit, err, match):
    with pytest.raises(err, match=match):
        jaxedit.load_generator(tf_variant(edit))


def test_tf_unsupported_configs(tf_variant):
    def lod(G, D, Gs):
        vs = _vars(Gs, "synthesis")
        vs[:] = [(n.replace("32x32/ToRGB/", "ToRGB_lod0/"), v) for n, v in vs]
        Gs.__dict__["components"]["synthesis"].__dict__["build_func_name"] = (
            "G_synthesis_stylegan_revised"
        )

    with pytest.raises(UnsupportedFormatError, match="configs A-D"):
        jaxedit.load_generator(tf_variant(lod))

    def concat(G, D, Gs):
        _set_var(Gs, "mapping", "LabelConcat/weight", np.zeros((10, 32), np.float32))
        _setkw(Gs, "label_size", 10)

    with pytest.raises(UnsupportedFormatError, match="LabelConcat"):
        jaxedit.load_generator(tf_variant(concat))
    with pytest.raises(UnsupportedFormatError, match="G_style"):
        jaxedit.load_generator(
            tf_variant(lambda G, D, Gs: Gs.__dict__.__setitem__("build_func_name", "G_style"))
        )


def test_tf_other_architectures_and_label_embedding(tf_variant):
    rng = np.random.default_rng(0)

    def orig(G, D, Gs):
        for r in (4, 8, 16):
            for p in ("weight", "bias", "mod_weight", "mod_bias"):
                _del_var(Gs, "synthesis", f"{r}x{r}/ToRGB/{p}")
        _setkw(Gs, "architecture", "orig")

    gen = jaxedit.load_generator(tf_variant(orig))  # strict key/shape check of the NNX tree
    assert gen.config.architecture == "orig"
    assert not hasattr(gen.synthesis_net.b16, "torgb") and hasattr(gen.synthesis_net.b32, "torgb")

    def resnet(G, D, Gs):
        orig(G, D, Gs)
        _setkw(Gs, "architecture", "resnet")
        chans = {4: 64, 8: 64, 16: 32, 32: 16}
        for r in (8, 16, 32):
            w = rng.standard_normal((1, 1, chans[r // 2], chans[r])).astype(np.float32)
            _set_var(Gs, "synthesis", f"{r}x{r}/Skip/weight", w)

    conv = converters.read_checkpoint(tf_variant(resnet, name="resnet.pkl"))
    assert (
        conv.config["architecture"] == "resnet" and "synthesis_net/b16/skip/weight" in conv.params
    )
    gen = jaxedit.load_generator(conv.source_path)
    assert np.isfinite(np.asarray(gen.synthesis(np.zeros((1, 8, 32))))).all()

    def labels(G, D, Gs):
        _setkw(Gs, "label_size", 5)
        _set_var(
            Gs, "mapping", "LabelEmbed/weight", rng.standard_normal((5, 32)).astype(np.float32)
        )
        _set_var(Gs, "mapping", "LabelEmbed/bias", np.zeros(32, np.float32))
        _set_var(Gs, "mapping", "Dense0/weight", rng.standard_normal((64, 32)).astype(np.float32))

    conv = converters.read_checkpoint(tf_variant(labels, name="cond.pkl"))
    assert (conv.config["c_dim"], conv.config["embed_features"], conv.config["z_dim"]) == (
        5,
        32,
        32,
    )
    gen = jaxedit.load_generator(conv.source_path)
    assert gen.mapping(np.ones((2, 32)), np.eye(5)[:2]).shape == (2, 8, 32)


def test_empty_tf_network_is_corrupt(tmp_path):
    path = tmp_path / "tf.pkl"
    path.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01}q\x02b.")
    with pytest.raises(CorruptCheckpointError, match="version"):
        converters.read_checkpoint(path)
    path.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\nq\x00K\x01\x85R.")  # Network(1)
    with pytest.raises(CorruptCheckpointError):
        converters.read_checkpoint(path)


# ---- CLI and converted checkpoints ---------------------------------------------------------------
def test_cli_inspect_and_convert(tmp_path, tf_pkl, hm_pth, hm_ref, capsys):
    from jaxedit.cli import main

    assert main(["inspect", str(tf_pkl)]) == 0
    out = capsys.readouterr().out
    assert "nvidia-tf-pkl" in out and "synthesis/8x8/Conv0_up/weight" in out and "Gs" in out
    assert main(["inspect", str(hm_pth), "--which", "generator"]) == 0
    out = capsys.readouterr().out
    assert "hammer-pth" in out and "synthesis.layer1.weight" in out and "generator" in out
    ckpt = tmp_path / "ckpt"
    assert main(["convert", str(hm_pth), str(ckpt)]) == 0
    meta = jaxedit.read_config(ckpt)
    assert (
        meta["source"]["format"] == "hammer-pth" and meta["source"]["which"] == "generator_smooth"
    )
    gen = jaxedit.load_generator(ckpt)
    assert rel(gen.synthesis(hm_ref["wp_psi7"]), nhwc(hm_ref["img_psi7"])) < 1e-6
    assert main(["convert", str(tf_pkl), str(tmp_path / "tf"), "--which", "D"]) == 2
    assert "discriminator" in capsys.readouterr().err
    assert not (tmp_path / "tf").exists()


# ---- ReSeFa .npy directions ----------------------------------------------------------------------
def test_load_directions_npy_and_npz(tmp_path):
    d = np.random.default_rng(0).standard_normal(32).astype(np.float32)
    d /= np.linalg.norm(d)
    for shape in [(1, 32), (32,), (3, 32)]:
        p = tmp_path / f"d{len(shape)}{shape[0]}.npy"
        np.save(p, np.broadcast_to(d, shape))
        ds = jaxedit.load_directions(p)
        assert ds.space == "w" and ds.kind == "npy" and ds.mask is None and ds.slots is None
        assert ds.directions.shape == (1, shape[0] if len(shape) == 2 else 1, 32)
        np.testing.assert_array_equal(ds.pick(0), d)
    p = tmp_path / "dirs.npz"
    np.savez(
        p,
        directions=np.stack([d, -d])[None],
        space="w",
        slots=np.asarray([2, 3]),
        mask=np.ones((4, 4), bool),
    )
    ds = jaxedit.load_directions(p)
    assert ds.kind == "jaxedit-npz" and ds.slots == (2, 3) and ds.mask.shape == (4, 4)
    np.testing.assert_array_equal(ds.pick(1), -d)
    with pytest.raises(ValueError, match="index 2 out of range"):
        ds.pick(2)
    with pytest.raises(ValueError, match="set 1 out of range"):
        ds.pick(0, 1)


@pytest.mark.parametrize(
    "value,match",
    [
        (np.zeros((2, 3, 32), np.float32), r"\[D\] or \[K, D\]"),
        (np.full((1, 32), np.nan, np.float32), "non-finite"),
        (np.zeros((1, 0), np.float32), "empty"),
        (np.asarray(["a", "b"]), "dtype"),
        (np.asarray([{"x": 1}], dtype=object), "need pickle"),
    ],
)
def test_load_directions_errors(tmp_path, value, match):
    p = tmp_path / "bad.npy"
    np.save(p, value, allow_pickle=True)
    with pytest.raises(ValueError, match=match):
        jaxedit.load_directions(p)


def test_edit_with_resefa_npy(tmp_path, hm_pth, hm_gen, capsys):
    from PIL import Image

    from jaxedit import editing
    from jaxedit.cli import main

    rng = np.random.default_rng(1)
    d = rng.standard_normal((1, 32)).astype(np.float32)
    d /= np.linalg.norm(d)
    npy = tmp_path / "eyesize.npy"
    np.save(npy, d)
    png = tmp_path / "edit.png"
    assert (
        main(
            [
                "edit",
                str(hm_pth),
                "--directions",
                str(npy),
                "--seeds",
                "0-1",
                "--alphas",
                "-2:2:3",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(png)).shape == (2 * 32, 3 * 32, 3)
    # What the command renders: ReSeFa manipulate.py (psi 0.7 on slots < 8, W+ slots 4-7).
    z = np.concatenate([jaxedit.seed_to_z(s, 32) for s in (0, 1)])
    ws = np.asarray(hm_gen.mapping(z, None, *hammer.truncation_args(0.7, 8)))
    imgs = editing.render_edits(hm_gen, ws, d[0], [-2.0, 2.0], slots=[4, 5, 6, 7])
    manual = ws.copy()
    manual[:, 4:8] += 2.0 * d[0]
    assert rel(imgs[1], hm_gen.synthesis(manual)) < 1e-12
    bad = tmp_path / "bad.npy"
    np.save(bad, np.ones((1, 16), np.float32))
    capsys.readouterr()
    assert (
        main(["edit", str(hm_pth), "--directions", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    )
    assert "has 32" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


# ---- float32 session (the users' default) --------------------------------------------------------
@pytest.mark.float32
def test_public_defaults_float32(tf_pkl, tf_ref, hm_pth, hm_ref):
    tf = jaxedit.load_generator(tf_pkl)
    ws = tf.mapping(tf_ref["z"], None, 0.7)
    assert ws.dtype == jnp.float32
    assert rel(ws, tf_ref["ws_psi7"]) < 1e-4
    assert rel(tf.synthesis(ws), nhwc(tf_ref["img_psi7"])) < 1e-4
    hm = jaxedit.load_generator(hm_pth)
    for key, args in (("psi10", (None, None)), ("psi7", (0.7, 8)), ("psi7_cut4", (0.7, 4))):
        ws = hm.mapping(hm_ref["z"], None, *hammer.truncation_args(*args))
        assert ws.dtype == jnp.float32 and rel(ws, hm_ref[f"wp_{key}"]) < 1e-4
        img = hm.synthesis(ws)
        assert img.dtype == jnp.float32 and rel(img, nhwc(hm_ref[f"img_{key}"])) < 1e-4
    w0 = hm_ref["jacobian_w_point"]
    J = np.asarray(jaxedit.jacobian(hm, np.broadcast_to(w0[:, None], (1, 8, 32)), space="w"))
    assert J.dtype == np.float32
    Jm = J[0].transpose(2, 0, 1, 3).reshape(3072, 32).astype(np.float64)
    assert rel(Jm @ hm_ref["probe_V_w"], hm_ref["probe_JV_w"]) < 1e-4
