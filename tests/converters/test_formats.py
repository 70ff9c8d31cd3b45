"""Converters: safety (no code runs), typed errors for bad files, torch formats, strict keys."""

import os
import pickle
import shutil
import sys
import types
import zipfile

import numpy as np
import pytest

import converters
import jaxedit
from converters import _pickle
from converters.errors import (
    CorruptCheckpointError,
    KeyMismatchError,
    ShapeMismatchError,
    UnsafePickleError,
    UnsupportedFormatError,
)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(marker)}))
    with pytest.raises(UnsafePickleError, match=r"system"):
        jaxedit.load_generator(path)
    with pytest.raises(UnsafePickleError, match=str(path)):
        converters.read_checkpoint(path)
    assert not marker.exists()


def test_malicious_torch_zip_is_refused(tmp_path, ros_pt):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(ros_pt) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("data.pkl"):
                data = pickle.dumps({"g_ema": _Evil(marker)}, protocol=2)
            dst.writestr(item, data)
    with pytest.raises(UnsafePickleError):
        converters.read_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.97])
def test_truncated_nvidia_pickle(tmp_path, ada_pkl, fraction):
    data = ada_pkl.read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CorruptCheckpointError, match="cut.pkl"):
        converters.read_checkpoint(path)


def test_truncated_rosinality_zip(tmp_path, ros_pt):
    data = ros_pt.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises((CorruptCheckpointError, UnsupportedFormatError), match="cut.pt"):
        converters.read_checkpoint(path)


def test_corrupt_storage_in_zip(tmp_path, ros_pt):
    path = tmp_path / "short.pt"
    with zipfile.ZipFile(ros_pt) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data/0"):
                data = data[:10]
            dst.writestr(item, data)
    with pytest.raises(CorruptCheckpointError, match="data/0"):
        converters.read_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"hello world", b"\x89PNG\r\n\x1a\n" + b"0" * 64])
def test_wrong_format(tmp_path, content):
    path = tmp_path / "thing.pkl"
    path.write_bytes(content)
    with pytest.raises(UnsupportedFormatError, match="thing.pkl"):
        converters.read_checkpoint(path)


def test_plain_pickle_that_is_not_a_network(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(UnsupportedFormatError, match="list.pkl"):
        converters.read_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        converters.read_checkpoint(tmp_path / "nope.pkl")


def test_which_selects_network(ada_pkl, ada_ref):
    g = converters.read_checkpoint(ada_pkl, which="G")
    e = converters.read_checkpoint(ada_pkl)
    assert g.which == "G" and e.which == "G_ema"
    diff = max(np.abs(g.params[k] - e.params[k]).max() for k in e.params)
    assert diff > 0  # G and G_ema differ slightly
    with pytest.raises(UnsupportedFormatError, match="'D'|no network"):
        converters.read_checkpoint(ada_pkl, which="nope")


def test_config_and_provenance(ada_pkl):
    conv = converters.read_checkpoint(ada_pkl)
    assert conv.source_format == "nvidia-pkl"
    assert conv.config["channels"] == {"4": 64, "8": 64, "16": 64, "32": 32}
    assert conv.config["mapping_layers"] == 2 and conv.config["conv_clamp"] is None
    assert len(conv.source_sha256) == 64
    assert conv.sources["synthesis_net/b8/conv0/weight"] == "synthesis.b8.conv0.weight"
    assert conv.params["synthesis_net/b8/conv0/weight"].shape == (3, 3, 64, 64)


def _torch():
    return pytest.importorskip("torch")


def test_rosinality_legacy_torch_format_equals_zip(tmp_path, ros_pt):
    torch = _torch()
    obj = torch.load(ros_pt, map_location="cpu", weights_only=False)
    legacy = tmp_path / "legacy.pt"
    torch.save(obj, legacy, _use_new_zipfile_serialization=False)
    a, b = converters.read_checkpoint(ros_pt), converters.read_checkpoint(legacy)
    assert a.config == b.config
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_torch_reader_matches_torch(tmp_path):
    torch = _torch()
    t = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    obj = {
        "a": t,
        "view": t[:, 1, ::2],
        "half": t.half(),
        "bf": t.bfloat16(),
        "i": t.long(),
        "b": t > 5,
        "nested": [t.double().transpose(0, 2)],
    }
    for zipped in (True, False):
        path = tmp_path / f"t{zipped}.pt"
        torch.save(obj, path, _use_new_zipfile_serialization=zipped)
        got = _pickle.load_torch_file(path)
        for k in ("a", "view", "half", "i", "b"):
            np.testing.assert_array_equal(got[k], obj[k].numpy())
        np.testing.assert_array_equal(got["bf"], obj["bf"].float().numpy())
        np.testing.assert_array_equal(got["nested"][0], obj["nested"][0].numpy())


def _rewrite_rosinality(tmp_path, ros_pt, edit):
    torch = _torch()
    obj = torch.load(ros_pt, map_location="cpu", weights_only=False)
    edit(obj["g_ema"])
    path = tmp_path / "edited.pt"
    torch.save(obj, path)
    return path


def test_missing_key_is_named(tmp_path, ros_pt):
    path = _rewrite_rosinality(tmp_path, ros_pt, lambda sd: sd.pop("convs.2.conv.modulation.bias"))
    with pytest.raises(KeyMismatchError, match=r"convs\.2\.conv\.modulation\.bias"):
        jaxedit.load_generator(path)


def test_unexpected_key_is_named(tmp_path, ros_pt):
    torch = _torch()
    path = _rewrite_rosinality(
        tmp_path, ros_pt, lambda sd: sd.__setitem__("extra.weight", torch.zeros(3))
    )
    with pytest.raises(KeyMismatchError, match=r"extra\.weight"):
        jaxedit.load_generator(path)


def test_wrong_shape_is_named(tmp_path, ros_pt):
    torch = _torch()

    def edit(sd):
        sd["convs.1.conv.modulation.weight"] = torch.zeros(47, 32)

    path = _rewrite_rosinality(tmp_path, ros_pt, edit)
    with pytest.raises(ShapeMismatchError, match=r"convs\.1\.conv\.modulation\.weight"):
        jaxedit.load_generator(path)


# ---- synthetic NVIDIA-format pickles (module source never needed) --------------------------------
def _persistent_module():
    mod = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - never called by jaxedit
        raise AssertionError("jaxedit must not call the pickled reconstructor")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    return mod


class _Persistent:
    def __init__(self, class_name, state):
        self.meta = {
            "type": "class",
            "version": 6,
            "module_src": "import os; os.system('false')",
            "class_name": class_name,
            "state": state,
        }

    def __reduce__(self):
        return (sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (self.meta,))


def test_stylegan3_skeleton_without_kwargs_is_a_typed_error(tmp_path, monkeypatch):
    """A StyleGAN3 network goes to the StyleGAN3 reader (issue 22), which needs _init_kwargs."""
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", _persistent_module())
    syn = _Persistent(
        "SynthesisNetwork",
        {
            "_modules": {
                "input": _Persistent("SynthesisInput", {}),
                "L0_36_512": _Persistent("SynthesisLayer", {}),
            }
        },
    )
    g = _Persistent(
        "Generator",
        {
            "z_dim": 4,
            "c_dim": 0,
            "w_dim": 4,
            "img_resolution": 16,
            "img_channels": 3,
            "_modules": {"synthesis": syn},
        },
    )
    path = tmp_path / "sg3.pkl"
    path.write_bytes(pickle.dumps({"G_ema": g}))
    with pytest.raises(CorruptCheckpointError, match="has no _init_kwargs"):
        converters.read_checkpoint(path)


def test_converted_checkpoint_roundtrip(tmp_path, ada_pkl, ada_ref):
    out = jaxedit.convert_checkpoint(ada_pkl, tmp_path / "ckpt")
    meta = jaxedit.read_config(out)
    assert meta["family"] == "stylegan2" and meta["source"]["format"] == "nvidia-pkl"
    assert meta["source"]["sha256"] == converters.sha256_file(ada_pkl)
    a = jaxedit.load_generator(ada_pkl)
    b = jaxedit.load_generator(out)
    import jax
    from flax import nnx

    for x, y in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    np.testing.assert_allclose(
        a.synthesis(ada_ref["ws_psi10"]), b.synthesis(ada_ref["ws_psi10"]), rtol=0, atol=1e-12
    )  # same weights; GPU reductions may reorder
    with pytest.raises(FileExistsError):
        jaxedit.convert_checkpoint(ada_pkl, out)


def test_failed_conversion_leaves_no_output(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps([1]))
    with pytest.raises(UnsupportedFormatError):
        jaxedit.convert_checkpoint(bad, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["bad.pkl"]


def test_damaged_checkpoint_dir(tmp_path, ada_pkl):
    out = jaxedit.convert_checkpoint(ada_pkl, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    with pytest.raises(jaxedit.CheckpointError, match="config.json"):
        jaxedit.load_generator(out)
    shutil.rmtree(tmp_path / "ckpt" / "params")
    with pytest.raises(jaxedit.CheckpointError):
        jaxedit.load_generator(out)
