"""The hostile-file corpus (tests/helpers/hostile_files.py): each file ends in one typed error line that
names the file and the key, nothing in it ever runs, and the bombs cost a small multiple of the
file's size in memory (measured in a subprocess)."""

import json
import os
import pickle
import pickletools
import re
import subprocess
import sys
import zipfile
import zlib

import hostile_files as H
import numpy as np
import pytest

import converters
from converters import _pickle
from converters._pickle import _limits, _opcodes, _prescan, _standins, _streams
from converters.errors import (
    CheckpointError,
    CorruptCheckpointError,
    NonFiniteParameterError,
    ShapeMismatchError,
    UnsafePickleError,
)

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helpers")
REPO = os.path.dirname(os.path.dirname(HERE))
MAKERS = {m.__name__[len("make_") :]: m for m in H.MAKERS}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("hostile"))
    return {c.name: c for c in H.make_all(d)}


def _assert_one_line(err: BaseException, path: str) -> str:
    text = str(err)
    assert "\n" not in text, text
    assert os.path.basename(path.rstrip("/")) in text, text
    assert len(text) < 600, text
    return text


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_hostile_file_gets_one_typed_error(corpus, name):
    case = corpus[name]
    with pytest.raises(CheckpointError) as info:
        converters.read_checkpoint(case.path)
    assert isinstance(info.value, case.error), (type(info.value), str(info.value))
    text = _assert_one_line(info.value, case.path)
    assert re.search(case.match, text), text
    if case.marker:
        assert not os.path.exists(case.marker), "the payload ran"


def test_payloads_never_run_through_every_entry_point(corpus, capsys):
    from jaxedit import inspect_checkpoint, load_generator
    from jaxedit.cli import main

    for case in corpus.values():
        if not case.marker:
            continue
        for call in (
            lambda p: load_generator(p),
            lambda p: inspect_checkpoint(p),
            lambda p: _pickle.load_pickle(p) if os.path.isfile(p) else None,
        ):
            try:
                call(case.path)
            except CheckpointError:
                pass
        assert main(["inspect", case.path]) == 2
        assert not os.path.exists(case.marker), case.name
    capsys.readouterr()


@pytest.mark.parametrize(
    "name",
    [
        "zip_bomb",
        "pkl_stride0",
        "legacy_storage_2e39",
        "biggan_storage_2e39",
        "pkl_deep_tuple_key",
        "payload_os_system",
    ],
)
def test_cli_reports_hostile_files_in_one_line(corpus, name, tmp_path, capsys):
    from jaxedit.cli import main

    case = corpus[name]
    out = tmp_path / "out"
    for argv in (["inspect", case.path], ["convert", case.path, str(out)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and os.path.basename(case.path) in err, err
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == []


def test_bombs_cost_a_small_multiple_of_their_size(corpus):
    """Every bomb, read in its own forked child: RSS growth < 10x the file + 8 MiB.

    The fixed allowance covers what RSS counts besides the read's own allocations: a forked
    child faults in the pages of shared libraries (NumPy's, libpython's) that the code path
    touches first, 2-4.5 MB depending on the installation (measured: 2.1 MB in one venv, 4.4 MB
    in a fresh CI venv for a 128-byte file). ``test_bombs_traced_peak`` bounds the Python
    allocations themselves with a 2 MiB allowance."""
    bombs = [c for c in corpus.values() if c.bomb]
    assert len(bombs) >= 25
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "measure_peak.py")] + [c.path for c in bombs],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(bombs)
    for case, r in zip(bombs, results):
        assert "crash" not in r, (case.name, r)
        assert r["error"] == case.error.__name__, (case.name, r["error"], r["message"])
        assert r["rss_growth"] < 10 * r["size"] + (8 << 20), (case.name, r)


@pytest.mark.slow
def test_bombs_traced_peak(corpus):
    """The same bombs under tracemalloc (Python and NumPy allocations): < 10x + 2 MiB."""
    bombs = [c for c in corpus.values() if c.bomb]
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "measure_peak.py"), "--traced"]
        + [c.path for c in bombs],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for case, line in zip(bombs, proc.stdout.splitlines()):
        r = json.loads(line)
        assert r["traced_peak"] < 10 * r["size"] + (2 << 20), (case.name, r)


@pytest.mark.slow
def test_crc_of_the_gigabyte_of_zeros():
    crc, block = 0, bytes(1 << 20)
    for _ in range(1024):
        crc = zlib.crc32(block, crc)
    assert crc == H.CRC32_OF_1GIB_ZEROS


def test_zip_bomb_is_a_real_bomb(corpus):
    """The zip bomb is a valid archive whose member does inflate (checked on its first MiB)."""
    with zipfile.ZipFile(corpus["zip_bomb"].path) as zf:
        info = zf.getinfo("archive/data/0")
        assert info.file_size == H.GiB and info.compress_size < 2 << 20
        with zf.open(info) as f:
            assert f.read(1 << 20) == bytes(1 << 20)


# ---- the pre-scanner ------------------------------------------------------------------------
def test_opcode_table_matches_pickletools():
    codes = {ord(op.code): op for op in pickletools.opcodes}
    assert set(codes) == set(_opcodes._OPCODES)
    for code, op in codes.items():
        name, kind = _opcodes._OPCODES[code]
        assert name == op.name
        assert (kind is None) == (op.arg is None), name


_VALUES = [
    None,
    True,
    7,
    -3,
    300,
    70000,
    1 << 40,
    -(1 << 70),
    1.5,
    "",
    "a" * 300,
    "é✓𝄞",
    b"",
    b"x" * 70000,
    bytearray(b"abc"),
    (),
    (1,),
    (1, 2),
    (1, 2, 3),
    tuple(range(9)),
    [],
    [1, [2, [3]]],
    {},
    {"a": {"b": [1, 2, (3, 4)]}},
    {1, 2},
    frozenset({3}),
    list(range(2000)),
    {str(i): i for i in range(1500)},
    [[]] * 3,
]


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_prescan_accepts_every_ordinary_pickle(protocol):
    """What pickle itself writes, at every protocol, passes the pre-scan, which leaves the
    stream where it found it (a desynchronised scanner would reject these)."""
    for value in _VALUES:
        data = pickle.dumps(value, protocol=protocol)
        allow = {
            tuple(arg.split(" ", 1)): None
            for op, arg, _ in pickletools.genops(data)
            if op.name == "GLOBAL"
        }
        ctx = _limits._open_ctx("mem", len(data), None)
        stream = _streams._MemStream(data + b"trailing")
        _prescan.prescan(stream, ctx, allow, "test")
        assert stream.tell() == 0


def test_prescan_depth_is_exact_for_nesting():
    limits = _pickle.Limits(max_depth=20)
    for depth, ok in ((20, True), (21, False)):
        value = []
        for _ in range(depth - 1):
            value = [value]
        data = pickle.dumps(value, protocol=2)
        ctx = _limits._Ctx("mem", _limits._Budget("mem", len(data), limits), limits)
        if ok:
            _prescan.prescan(_streams._MemStream(data), ctx, {}, "t")
        else:
            with pytest.raises(CorruptCheckpointError, match="nested more than 20"):
                _prescan.prescan(_streams._MemStream(data), ctx, {}, "t")


def test_limits_are_configurable(tmp_path):
    """A genuine file over a tightened budget is refused; the default budget accepts it."""
    path = tmp_path / "t.pt"
    ros = H.torch_zip(
        str(path),
        H._state_dict_pkl(H.op_tensor(H.op_persid_storage("0", 1 << 16), (1 << 16,), (1,))),
        {"0": H.stored("", H.floats(1 << 16))},
    )
    assert _pickle.load_torch_file(ros)["g_ema"]["style.1.weight"].shape == (1 << 16,)
    tight = _pickle.Limits(max_expansion=1.5, slack_bytes=0)
    with pytest.raises(CorruptCheckpointError, match="t.pt: tensor g_ema/style.1.weight needs"):
        _pickle.load_torch_file(ros, limits=tight)


def test_shared_machinery_for_other_readers(tmp_path):
    """A reader of another pickle format passes its stand-ins as extra_allow; the limits apply."""

    class Stub(_standins._Record):
        pass

    body = H.op_global("some.pkg", "Thing") + b")" + b"\x81" + H.op_dict(x=H.op_int(3)) + b"b"
    path = tmp_path / "stub.pkl"
    path.write_bytes(H.pickle_of(body))
    with pytest.raises(UnsafePickleError, match="some.pkg.Thing"):
        _pickle.load_pickle(path)
    obj = _pickle.load_pickle(path, extra_allow={("some.pkg", "Thing"): Stub})
    assert isinstance(obj, Stub) and obj.x == 3
    deep = tmp_path / "deep.pkl"
    deep.write_bytes(
        H.pickle_of(
            H.op_global("some.pkg", "Thing") + b")" + b"\x81" + b"(" * 1000 + b"l" * 1000 + b"b"
        )
    )
    with pytest.raises(CorruptCheckpointError, match="nested more than"):
        _pickle.load_pickle(deep, extra_allow={("some.pkg", "Thing"): Stub})


def test_numpy_arrays_in_plain_pickles(tmp_path):
    """Plain numeric NumPy arrays load (as numpy 1.x and 2.x pickle them); memo reuse of their
    data is charged per array."""
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    for proto in (2, 3, 4):
        path = tmp_path / f"np{proto}.pkl"
        path.write_bytes(
            pickle.dumps(
                {"a": a, "t": a.T, "s": np.float32(2.5), "i": np.int64(-3)}, protocol=proto
            )
        )
        got = _pickle.load_pickle(path)
        np.testing.assert_array_equal(got["a"], a)
        np.testing.assert_array_equal(got["t"], a.T)
        assert type(got["a"]) is np.ndarray and got["s"] == np.float32(2.5) and got["i"] == -3


# ---- truncations --------------------------------------------------------------------------
def _truncation_sources(tmp_path, ada_pkl, ros_pt):
    out = [str(ada_pkl), str(ros_pt)]
    hammer = os.path.join(os.path.dirname(str(ada_pkl)), "stylegan2_hammer_tiny.pth")
    if os.path.exists(hammer):
        out.append(hammer)
    return out


def test_truncations_at_many_points(tmp_path, ada_pkl, ros_pt):
    for src in _truncation_sources(tmp_path, ada_pkl, ros_pt):
        for path in H.truncations(src, str(tmp_path)):
            with pytest.raises(CheckpointError) as info:
                converters.read_checkpoint(path)
            _assert_one_line(info.value, path)


def test_truncated_legacy_torch_file(tmp_path, ros_pt):
    torch = pytest.importorskip("torch")
    legacy = tmp_path / "legacy.pt"
    torch.save(
        torch.load(ros_pt, map_location="cpu", weights_only=False),
        legacy,
        _use_new_zipfile_serialization=False,
    )
    for path in H.truncations(str(legacy), str(tmp_path)):
        with pytest.raises(CheckpointError) as info:
            converters.read_checkpoint(path)
        _assert_one_line(info.value, path)


def test_random_byte_flips_give_typed_errors_or_valid_results(tmp_path, ros_pt):
    """Fuzz: flipped bytes in a zip .pt and in a legacy-format NVIDIA-style pickle never escape
    as anything but a CheckpointError (or a successful read)."""
    rng = np.random.default_rng(0)
    small = tmp_path / "small.pkl"
    small.write_bytes(
        H.op_nvidia_snapshot(
            H._nvidia_params(
                weight=H.op_tensor(H.op_embedded_storage(6, H.floats(6)), (2, 3), (3, 1))
            )
        )
    )
    for src in (str(ros_pt), str(small)):
        data = np.frombuffer(open(src, "rb").read(), np.uint8)
        for k in range(25):
            bad = data.copy()
            idx = rng.integers(0, len(bad), size=int(rng.integers(1, 6)))
            bad[idx] ^= rng.integers(1, 256, size=len(idx)).astype(np.uint8)
            path = tmp_path / f"flip{k}{os.path.splitext(src)[1]}"
            path.write_bytes(bad.tobytes())
            try:
                converters.read_checkpoint(path)
            except CheckpointError as e:
                _assert_one_line(e, str(path))


# ---- values and metadata of otherwise valid networks ---------------------------------------
@pytest.fixture(scope="module")
def torch_mod():
    return pytest.importorskip("torch")


def _nv(tmp_path, ada_pkl, edit, name="variant.pkl", **kw):
    return H.nvidia_variant(str(ada_pkl), str(tmp_path / name), edit, **kw)


def test_module_src_with_code_converts_without_running_it(torch_mod, tmp_path, ada_pkl):
    marker = tmp_path / "PWNED"
    src = f"open({str(marker)!r}, 'w').close()\nimport os\nos.system('touch {marker}')\n"
    path = _nv(tmp_path, ada_pkl, lambda nets: None, module_src=src)
    assert src.encode() in path_bytes(path)
    conv = converters.read_checkpoint(path)
    ref = converters.read_checkpoint(ada_pkl)
    for k in ref.params:
        np.testing.assert_array_equal(conv.params[k], ref.params[k])
    assert not marker.exists()


def path_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def test_nonfinite_weights_are_refused_unless_allowed(torch_mod, tmp_path, ada_pkl, capsys):
    from jaxedit import convert_checkpoint, inspect_checkpoint
    from jaxedit.cli import main

    def edit(nets):
        w = H.module_state(nets, "synthesis.b8.conv0")["_parameters"]["weight"]
        w[0, 0, 0, 0], w[1, 0, 0, 0] = np.nan, np.inf

    path = _nv(tmp_path, ada_pkl, edit)
    with pytest.raises(
        NonFiniteParameterError, match=r"synthesis\.b8\.conv0\.weight .*1 NaN and 1 infinite"
    ) as info:
        converters.read_checkpoint(path)
    _assert_one_line(info.value, path)
    with pytest.raises(NonFiniteParameterError):
        inspect_checkpoint(path)
    assert main(["inspect", path]) == 2
    assert main(["convert", path, str(tmp_path / "ck")]) == 2
    assert "--allow-nonfinite" in capsys.readouterr().err and not (tmp_path / "ck").exists()
    conv = converters.read_checkpoint(path, allow_nonfinite=True)
    assert np.isnan(conv.params["synthesis_net/b8/conv0/weight"]).sum() == 1
    assert main(["inspect", path, "--allow-nonfinite"]) == 0
    assert main(["convert", path, str(tmp_path / "ck"), "--allow-nonfinite"]) == 0
    capsys.readouterr()
    with pytest.raises(NonFiniteParameterError):
        convert_checkpoint(path, tmp_path / "ck2")


def test_inspect_rejects_what_convert_rejects(torch_mod, tmp_path, ada_pkl, capsys):
    """A shape-altered tensor passes the key mapping but not the architecture: inspect (library
    and CLI) fails exactly as convert does."""
    from jaxedit import convert_checkpoint, inspect_checkpoint
    from jaxedit.cli import main

    def edit(nets):
        p = H.module_state(nets, "synthesis.b8.conv0.affine")["_parameters"]
        p["weight"] = np.zeros((p["weight"].shape[0] + 1, p["weight"].shape[1]), np.float32)

    path = _nv(tmp_path, ada_pkl, edit)
    converters.read_checkpoint(path)  # the key mapping alone does not see it
    for fn in (inspect_checkpoint, lambda p: convert_checkpoint(p, tmp_path / "ck")):
        with pytest.raises(ShapeMismatchError, match=r"synthesis\.b8\.conv0\.affine\.weight"):
            fn(path)
    assert main(["inspect", path]) == 2 and main(["convert", path, str(tmp_path / "ck")]) == 2
    capsys.readouterr()
    info = inspect_checkpoint(ada_pkl)
    assert info.kind == "source" and info.num_values > 0


_LIES = {
    "img_resolution_2e20": (
        lambda top: top["_init_kwargs"].__setitem__("img_resolution", 1 << 20),
        r"_init_kwargs\.img_resolution = 1048576 disagrees",
    ),
    "z_dim_str_kwarg": (
        lambda top: top["_init_kwargs"].__setitem__("z_dim", "32"),
        r"_init_kwargs\.z_dim is '32', not an integer",
    ),
    "z_dim_str_attr": (lambda top: top.__setitem__("z_dim", "32"), r"G_ema\.z_dim is '32'"),
    "w_dim_bool": (lambda top: top.__setitem__("w_dim", True), r"G_ema\.w_dim is True"),
    "res_attr_2e20": (
        lambda top: top.__setitem__("img_resolution", 1 << 20),
        r"img_resolution = 1048576 is outside",
    ),
    "res_not_pow2": (lambda top: top.__setitem__("img_resolution", 48), r"not a power of two"),
    "z_dim_vs_shape": (
        lambda top: (top.__setitem__("z_dim", 64), top["_init_kwargs"].__setitem__("z_dim", 64)),
        r"mapping\.fc0\.weight .*but z_dim = 64",
    ),
    "channels_in_kwargs": (
        lambda top: top["_init_kwargs"]["synthesis_kwargs"].__setitem__("channel_base", 4096),
        r"channel_base = 4096.*give channels",
    ),
    "num_layers": (
        lambda top: top["_init_kwargs"]["mapping_kwargs"].__setitem__("num_layers", 8),
        r"num_layers = 8 but the network has 2",
    ),
    "conv_clamp_str": (
        lambda top: top["_init_kwargs"]["synthesis_kwargs"].__setitem__("conv_clamp", "x"),
        r"conv_clamp is 'x', not a number",
    ),
    "lr_nan": (
        lambda top: top["_init_kwargs"]["mapping_kwargs"].__setitem__(
            "lr_multiplier", float("nan")
        ),
        r"lr_multiplier = nan is outside",
    ),
    "kwargs_not_dict": (
        lambda top: top.__setitem__("_init_kwargs", [1, 2]),
        r"_init_kwargs is \[1, 2\], not a dict",
    ),
    "architecture": (
        lambda top: top["_init_kwargs"]["synthesis_kwargs"].__setitem__("architecture", "bogus"),
        r"architecture is 'bogus'",
    ),
    "c_dim_negative": (lambda top: top.__setitem__("c_dim", -1), r"c_dim = -1 is outside"),
}


@pytest.mark.parametrize("lie", sorted(_LIES))
def test_init_kwargs_lies_are_refused(torch_mod, tmp_path, ada_pkl, lie):
    edit_top, match = _LIES[lie]
    path = _nv(tmp_path, ada_pkl, lambda nets: edit_top(H.module_state(nets, "")))
    with pytest.raises(CheckpointError, match=match) as info:
        converters.read_checkpoint(path)
    _assert_one_line(info.value, path)


def test_nvidia_variant_roundtrip_is_faithful(torch_mod, tmp_path, ada_pkl):
    """The variant writer itself changes nothing (so the cases above test only their edit)."""
    path = _nv(tmp_path, ada_pkl, lambda nets: None)
    a, b = converters.read_checkpoint(ada_pkl), converters.read_checkpoint(path)
    assert a.config == b.config
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_rosinality_values_and_args(torch_mod, tmp_path, ros_pt):
    def nan(obj):
        obj["g_ema"]["convs.1.conv.weight"][0, 0, 0, 0, 0] = float("nan")

    path = H.rosinality_variant(str(ros_pt), str(tmp_path / "nan.pt"), nan)
    with pytest.raises(NonFiniteParameterError, match=r"convs\.1\.conv\.weight"):
        converters.read_checkpoint(path)
    converters.read_checkpoint(path, allow_nonfinite=True)

    def size_str(obj):
        obj["args"].size = "32"

    path = H.rosinality_variant(str(ros_pt), str(tmp_path / "args.pt"), size_str)
    with pytest.raises(CorruptCheckpointError, match=r"args\.size is '32'"):
        converters.read_checkpoint(path)

    def latent_avg_nan(obj):
        obj["latent_avg"][3] = float("inf")

    path = H.rosinality_variant(str(ros_pt), str(tmp_path / "lavg.pt"), latent_avg_nan)
    with pytest.raises(NonFiniteParameterError, match=r"latent_avg"):
        converters.read_checkpoint(path)


_BIGGAN_CONFIG_LIES = {
    "output_dim": ('"output_dim": 32', '"output_dim": "32"', r"output_dim is '32'"),
    "layers_int_flag": ("[false, 16, 16]", "[0, 16, 16]", r"layers\[0\] is"),
    "n_stats": ('"n_stats": 51', '"n_stats": -1', r"n_stats = -1 is outside"),
    "eps_nan": ('"eps": 0.0001', '"eps": NaN', r"eps = nan is outside"),
    "z_dim_float": ('"z_dim": 8', '"z_dim": 8.0', r"z_dim is 8.0, not an integer"),
    "not_json": ("{", "{{", r"not valid JSON"),
}


@pytest.mark.parametrize("lie", sorted(_BIGGAN_CONFIG_LIES))
def test_biggan_config_lies_are_refused(tmp_path, lie):
    old, new, match = _BIGGAN_CONFIG_LIES[lie]
    assert old in H.BIGGAN_CONFIG
    key = "generator.gen_z.weight_orig"
    root = H.pickle_of(
        H.op_dict_items([(H.op_str(key), H.op_tensor(H.op_persid_storage("1", 4), (2, 2), (2, 1)))])
    )
    d = H._biggan_dir(
        str(tmp_path),
        "bg",
        H.legacy_stream(root, [("1", 4, H.floats(4))]),
        H.BIGGAN_CONFIG.replace(old, new, 1),
    )
    with pytest.raises(CorruptCheckpointError, match=match) as info:
        converters.read_checkpoint(d)
    _assert_one_line(info.value, os.path.join(d, "config.json"))


def test_biggan_nonfinite(torch_mod, tmp_path):
    ppb = pytest.importorskip("pytorch_pretrained_biggan")
    cfg = ppb.BigGANConfig(
        output_dim=32,
        z_dim=8,
        class_embed_dim=8,
        channel_width=8,
        num_classes=10,
        layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
        attention_layer_position=3,
        n_stats=51,
    )
    torch_mod.manual_seed(0)
    sd = ppb.BigGAN(cfg).state_dict()
    sd["generator.layers.1.bn_0.running_vars"][3, 2] = float("nan")
    d = tmp_path / "bg"
    d.mkdir()
    torch_mod.save(sd, d / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    (d / "config.json").write_text(cfg.to_json_string())
    with pytest.raises(NonFiniteParameterError, match=r"generator\.layers\.1\.bn_0\.running_vars"):
        converters.read_checkpoint(d)


def test_shared_machinery_reads_the_tf_and_hammer_fixtures(ada_pkl):
    """The readers of issue 15 reuse this machinery: the TF pickle loads with a stand-in passed
    as extra_allow (NumPy arrays come back plain), the Hammer .pth with its non-contiguous
    views honoured, both under the same limits."""
    fixtures = os.path.dirname(str(ada_pkl))
    tf = os.path.join(fixtures, "stylegan2_tf_tiny.pkl")
    hammer = os.path.join(fixtures, "stylegan2_hammer_tiny.pth")
    if not (os.path.exists(tf) and os.path.exists(hammer)):
        pytest.skip("TF / Hammer fixtures not available")

    class Network(_standins._Record):
        pass

    _, _, gs = _pickle.load_pickle(tf, extra_allow={("dnnlib.tflib.network", "Network"): Network})
    syn = gs.components["synthesis"]
    assert gs.static_kwargs["resolution"] == 32
    assert all(type(v) in (np.ndarray, np.float32) for _, v in syn.variables)
    with pytest.raises(CorruptCheckpointError, match="needs"):
        _pickle.load_pickle(
            tf,
            extra_allow={("dnnlib.tflib.network", "Network"): Network},
            limits=_pickle.Limits(max_expansion=0.5, slack_bytes=0),
        )
    sd = _pickle.load_torch_file(hammer)["models"]["generator_smooth"]
    torch = pytest.importorskip("torch")
    ref = torch.load(hammer, map_location="cpu", weights_only=False)["models"]["generator_smooth"]
    for k, v in ref.items():
        np.testing.assert_array_equal(sd[k], v.numpy())
