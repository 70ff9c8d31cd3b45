"""The StyleGAN3 readers (NVIDIA .pkl, Hammer .pth): dispatch, config, from_state_dict, inspect,
and hostile or damaged variants (payloads, truncations, altered shapes and kwargs) built from
the fixtures with the shared machinery of tests/helpers/hostile_files.py."""

import os

import hostile_files as H
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
from converters.stylegan2 import nvidia as sg2_nvidia
from converters.stylegan3 import hammer, nvidia


@pytest.fixture(scope="module")
def t_pkl():
    return str(fixture_path("stylegan3_t_tiny.pkl"))


@pytest.fixture(scope="module")
def r_pkl():
    return str(fixture_path("stylegan3_r_tiny.pkl"))


@pytest.fixture(scope="module")
def h_pth():
    return str(fixture_path("stylegan3_hammer_t_tiny.pth"))


@pytest.fixture(scope="module")
def torch_mod():
    return pytest.importorskip("torch")


def _one_line(err: BaseException, path: str) -> None:
    text = str(err)
    assert "\n" not in text and os.fspath(path) in text, text


def test_dispatch_and_configs(t_pkl, r_pkl, h_pth):
    t, r, h = (converters.read_checkpoint(p) for p in (t_pkl, r_pkl, h_pth))
    assert (t.family, r.family, h.family) == ("stylegan3",) * 3
    assert t.source_format == r.source_format == "nvidia-pkl" and h.source_format == "hammer-pth"
    assert t.which == "G_ema" and h.which == "generator_smooth"
    assert t.config["conv_kernel"] == 3 and not t.config["use_radial_filters"]
    assert r.config["conv_kernel"] == 1 and r.config["use_radial_filters"]
    assert t.config["num_fp16_res"] == 4 and t.config["conv_clamp"] == 256.0
    assert h.config["layer_features"] == 32 and h.config["num_fp16_res"] == 0
    assert t.params["synthesis_net/L5_52_32/weight"].shape == (3, 3, 32, 32)
    assert r.params["synthesis_net/L9_52_27/weight"].shape == (1, 1, 32, 27)
    # the StyleGAN2 reader, asked directly, still refuses a StyleGAN3 network
    with pytest.raises(UnsupportedFormatError, match="StyleGAN3"):
        sg2_nvidia.read(t_pkl)


def test_which_selects_the_network(t_pkl, h_pth):
    g = converters.read_checkpoint(t_pkl, "G")
    e = converters.read_checkpoint(t_pkl)
    assert not np.array_equal(
        g.params["synthesis_net/L3_36_32/weight"], e.params["synthesis_net/L3_36_32/weight"]
    )
    with pytest.raises(UnsupportedFormatError):
        converters.read_checkpoint(t_pkl, "D")
    with pytest.raises(UnsupportedFormatError, match="no network"):
        converters.read_checkpoint(t_pkl, "nope")
    assert converters.read_checkpoint(h_pth, "generator").which == "generator"


def test_from_state_dict_equals_the_pickle_reader(t_pkl, r_pkl):
    for path in (t_pkl, r_pkl):
        snap = _pickle.load_pickle(path)
        tensors, attrs = sg2_nvidia.flatten_network(snap["G_ema"])
        conv = nvidia.from_state_dict(tensors, attrs[""]["_init_kwargs"], "sd")
        ref = converters.read_checkpoint(path)
        assert conv.config == ref.config and set(conv.params) == set(ref.params)
        for k, v in ref.params.items():
            np.testing.assert_array_equal(conv.params[k], v)


def test_from_state_dict_refuses_what_does_not_fit(t_pkl):
    snap = _pickle.load_pickle(t_pkl)
    tensors, attrs = sg2_nvidia.flatten_network(snap["G_ema"])
    kw = dict(attrs[""]["_init_kwargs"])
    with pytest.raises(KeyMismatchError, match="init kwargs give the layers"):
        nvidia.from_state_dict(tensors, {**kw, "channel_base": 1024})
    with pytest.raises(CorruptCheckpointError, match="use_radial_filters"):
        nvidia.from_state_dict(tensors, {**kw, "use_radial_filters": "yes"})
    with pytest.raises(UnsupportedFormatError, match="bogus"):
        nvidia.from_state_dict(tensors, {**kw, "bogus": 1})
    with pytest.raises(CorruptCheckpointError, match="w_dim"):
        nvidia.from_state_dict(tensors, {**kw, "w_dim": "32"})
    bad = dict(tensors)
    bad["synthesis.L3_36_32.affine.weight"] = np.zeros((33, 32), np.float32)
    with pytest.raises(ShapeMismatchError, match=r"L3_36_32\.affine\.weight"):
        nvidia.from_state_dict(bad, kw)
    bad = dict(tensors)
    bad["synthesis.L2_36_32.down_filter"] = bad["synthesis.L2_36_32.down_filter"] * 1.01
    with pytest.raises(UnsupportedFormatError, match="down_filter differs"):
        nvidia.from_state_dict(bad, kw)
    bad = dict(tensors)
    del bad["synthesis.input.freqs"]
    with pytest.raises(KeyMismatchError, match="input.freqs"):
        nvidia.from_state_dict(bad, kw)


def test_inspect_shows_the_layers(t_pkl, capsys):
    info = jaxedit.inspect_checkpoint(t_pkl)
    assert info.family == "stylegan3" and info.layers is not None
    names = [r["name"] for r in info.layers]
    assert names[0] == "input" and names[-1] == "L14_32_3" and len(names) == 16
    row = info.layers[6]
    assert (row["name"], row["slot"], row["size"], row["sampling_rate"], row["up"]) == (
        "L5_52_32", 6, 52, 32, 4,
    )  # fmt: skip
    assert any("float16" in n for n in info.notes)
    from jaxedit.cli import main

    assert main(["inspect", t_pkl]) == 0
    out = capsys.readouterr().out
    assert "L5_52_32" in out and "stylegan3" in out and "float32" in out


# ---- hostile and damaged variants -------------------------------------------------------------------
def test_truncated_files_give_typed_errors(tmp_path, t_pkl, h_pth):
    for src in (t_pkl, h_pth):
        for path in H.truncations(src, str(tmp_path), fractions=(0.003, 0.2, 0.6, 0.999)):
            with pytest.raises(CheckpointError) as info:
                converters.read_checkpoint(path)
            _one_line(info.value, path)


def test_payload_global_is_refused_and_never_runs(torch_mod, tmp_path, t_pkl):
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    def edit(nets):
        H.module_state(nets, "synthesis.L3_36_32")["evil"] = Payload()

    path = H.nvidia_variant(t_pkl, str(tmp_path / "evil.pkl"), edit)
    with pytest.raises(UnsafePickleError) as info:
        converters.read_checkpoint(path)
    _one_line(info.value, path)
    with pytest.raises(UnsafePickleError):
        jaxedit.load_generator(path)
    assert not marker.exists()


def test_module_src_code_is_never_run(torch_mod, tmp_path, t_pkl):
    marker = tmp_path / "PWNED"
    src = f"open({str(marker)!r}, 'w').close()\n"
    path = H.nvidia_variant(t_pkl, str(tmp_path / "src.pkl"), lambda nets: None, module_src=src)
    conv, ref = converters.read_checkpoint(path), converters.read_checkpoint(t_pkl)
    for k, v in ref.params.items():
        np.testing.assert_array_equal(conv.params[k], v)
    assert not marker.exists()


_NV_EDITS = {
    "affine_shape": (
        lambda nets: H.module_state(nets, "synthesis.L3_36_32.affine")["_parameters"].__setitem__(
            "weight", np.zeros((33, 32), np.float32)
        ),
        ShapeMismatchError,
        r"L3_36_32\.affine\.weight has shape \(33, 32\)",
    ),
    "freqs_shape": (
        lambda nets: H.module_state(nets, "synthesis.input")["_buffers"].__setitem__(
            "freqs", np.zeros((32, 3), np.float32)
        ),
        ShapeMismatchError,
        r"input\.freqs has shape",
    ),
    "padding_lie": (
        lambda nets: H.module_state(nets, "synthesis.L1_36_32").__setitem__(
            "padding", [1, 2, 3, 4]
        ),
        CorruptCheckpointError,
        r"L1_36_32\.padding",
    ),
    "kwargs_channel_base": (
        lambda nets: H.module_state(nets, "")["_init_kwargs"].__setitem__("channel_base", 2048),
        KeyMismatchError,
        r"init kwargs give the layers",
    ),
    "kwargs_radial": (
        lambda nets: H.module_state(nets, "")["_init_kwargs"].__setitem__(
            "use_radial_filters", True
        ),
        CorruptCheckpointError,
        r"L0_36_32\.down_radial = False disagrees",
    ),
}


@pytest.mark.parametrize("case", sorted(_NV_EDITS))
def test_altered_nvidia_variants_give_typed_errors(torch_mod, tmp_path, t_pkl, case):
    edit, err, match = _NV_EDITS[case]
    path = H.nvidia_variant(t_pkl, str(tmp_path / f"{case}.pkl"), edit)
    with pytest.raises(err, match=match) as info:
        converters.read_checkpoint(path)
    _one_line(info.value, path)


_HAMMER_EDITS = {
    "kernel_size": (
        lambda o: o["model_kwargs_init"]["generator_smooth"].__setitem__("kernel_size", 1),
        ShapeMismatchError,
        r"conv\.weight has shape",
    ),
    "eps": (
        lambda o: o["model_kwargs_init"]["generator_smooth"].__setitem__("eps", 1e-6),
        UnsupportedFormatError,
        r"eps = 1e-06 is not supported",
    ),
    "grid": (
        lambda o: o["models"]["generator_smooth"]["synthesis.early_layer.grid"].mul_(1.5),
        UnsupportedFormatError,
        r"grid",
    ),
    "style_shape": (
        lambda o: o["models"]["generator_smooth"].__setitem__(
            "synthesis.layer4.conv.style.weight", __import__("torch").zeros(31, 32)
        ),
        ShapeMismatchError,
        r"layer4\.conv\.style\.weight",
    ),
}


@pytest.mark.parametrize("case", sorted(_HAMMER_EDITS))
def test_altered_hammer_variants_give_typed_errors(torch_mod, tmp_path, h_pth, case):
    edit, err, match = _HAMMER_EDITS[case]
    path = H.rosinality_variant(h_pth, str(tmp_path / f"{case}.pth"), edit)
    with pytest.raises(err, match=match) as info:
        converters.read_checkpoint(path)
    _one_line(info.value, path)


def test_hammer_sniff_and_reader(h_pth):
    obj = _pickle.load_torch_file(h_pth)
    assert hammer.sniff(obj)
    conv = hammer.read(h_pth, obj=obj)
    assert conv.params["synthesis_net/input/freqs"].shape == (32, 2)
    assert "synthesis.early_layer.grid" not in conv.sources.values()
