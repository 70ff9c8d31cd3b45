"""LPIPS-VGG16: parity with a plain-torch reference (float64 and float32), the torch-free readers
of NVIDIA's TorchScript ``vgg16.pt`` and of the lpips ``vgg.pth`` + torchvision VGG16 state dicts
(written here with torch in the exact formats), hostile archives, and the distance's properties."""

from __future__ import annotations

import copy
import os
import pickle
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from converters.errors import (
    CorruptCheckpointError,
    KeyMismatchError,
    NonFiniteParameterError,
    ShapeMismatchError,
    UnsafePickleError,
    UnsupportedFormatError,
)
from jaxedit.projection import LPIPS, load_lpips

torch = pytest.importorskip("torch")
import lpips_torch as T  # noqa: E402  # pyright: ignore[reportMissingImports]  (tests/helpers)

SHAPE = (2, 40, 36, 3)  # odd pooled sizes (40 -> 20 -> 10 -> 5 -> 2; 36 -> ... -> 4 -> 2)


def _images(seed: int, shape=SHAPE, dtype: Any = np.float64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, shape).astype(dtype)


def _nchw(x: np.ndarray) -> Any:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


@pytest.fixture(scope="module")
def lp() -> LPIPS:
    return LPIPS.random(jax.random.key(7))


@pytest.fixture(scope="module")
def ref(lp):
    return T.set_from_jax(T.TorchLPIPS(), lp.params)


def _ref_distance(ref, x, y) -> np.ndarray:
    with torch.no_grad():
        return ref.double()(_nchw(x).double(), _nchw(y).double()).numpy()


# ---------------------------------------------------------------------------------------------
# Parity with the torch reference.
# ---------------------------------------------------------------------------------------------
def test_parity_float64(lp, ref):
    x, y = _images(0), _images(1)
    want = _ref_distance(ref, x, y)
    got = np.asarray(lp(x, y))
    assert got.dtype == np.float64 and got.shape == (2,)
    assert np.abs(got - want).max() <= 1e-10 * np.abs(want).max(), (got, want)  # ~1e-16 seen
    # the features' squared distance is the same number (NVIDIA's return_lpips=True form)
    fx, fy = lp.features(x), lp.features(y)
    np.testing.assert_allclose(np.sum((fx - fy) ** 2, -1), want, rtol=1e-6)


@pytest.mark.float32
def test_parity_float32(lp, ref):
    x, y = _images(0, dtype=np.float32), _images(1, dtype=np.float32)
    want = _ref_distance(ref, x, y)
    got = np.asarray(lp(x, y))
    assert got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), (got, want)


def test_resize_to_is_area_averaging(lp, ref):
    """resize_to=16 on 32 x 32 images: the 2 x 2 block means (torch mode="area")."""
    x, y = _images(4, (2, 32, 32, 3)), _images(5, (2, 32, 32, 3))

    def area(a):
        return a.reshape(2, 16, 2, 16, 2, 3).mean((2, 4))

    want = _ref_distance(ref, area(x), area(y))
    np.testing.assert_allclose(LPIPS(lp.params, resize_to=16)(x, y), want, rtol=1e-6)


def test_jit_broadcast_target_and_gradient(lp, ref):
    """The LPIPS pytree passed into jax.jit; one target for a batch; finite gradients, also at
    a black image (every relu tap zero at many pixels) and at d = 0."""
    shape = (16, 20, 3)  # the smallest input: relu5_3 is 1 x 1
    y = _images(8, (1, *shape))
    x = np.stack([_images(9, shape), np.full(shape, -1.0), y[0]])
    f = jax.jit(jax.value_and_grad(lambda m, a, b: m(a, b).sum(), argnums=1))
    v, g = f(lp, jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(v, _ref_distance(ref, x, np.repeat(y, 3, 0)).sum(), rtol=1e-6)
    assert bool(jnp.isfinite(g).all())
    assert float(jnp.abs(g[0]).max()) > 0 and float(jnp.abs(g[1]).max()) > 0


# ---------------------------------------------------------------------------------------------
# Properties.
# ---------------------------------------------------------------------------------------------
def test_properties(lp):
    from jaxedit.projection._lpips import compiled_programs

    x, y = _images(6), _images(7)
    lp(x, y)
    before = compiled_programs()
    np.testing.assert_array_equal(lp(x, x), 0.0)
    np.testing.assert_allclose(lp(x, y), lp(y, x), rtol=1e-12)
    assert (np.asarray(lp(x, y)) > 0).all()
    assert (np.asarray(lp(x, x + 0.01)) > 0).all()
    assert compiled_programs() == before  # new values, same shapes: nothing recompiled


def test_bad_inputs(lp):
    x = _images(0)
    with pytest.raises(ValueError, match=r"x must be RGB images \[N, H, W, 3\]"):
        lp(x[..., :1], x)
    with pytest.raises(ValueError, match="y must have x's shape"):
        lp(x, x[:, :32])
    with pytest.raises(ValueError, match="at least 16 x 16"):
        lp(x[:, :8, :8], x[:, :8, :8])
    with pytest.raises(ValueError, match="floating"):
        lp(x.astype(np.int32), x)
    with pytest.raises(ValueError, match="resize_to must be at least 16"):
        LPIPS.random(0, resize_to=8)


# ---------------------------------------------------------------------------------------------
# Readers: files written in the exact formats.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory, lp, ref):
    d = tmp_path_factory.mktemp("lpips")
    ref = copy.deepcopy(ref).float()
    backbone = {f"features.{k[len('vgg.features.'):]}": v for k, v in ref.state_dict().items()
                if k.startswith("vgg.features.")}  # fmt: skip
    backbone["classifier.0.weight"] = torch.zeros(4, 8)  # torchvision's file has a classifier
    torch.save(backbone, d / "vgg16-397923af.pth", _use_new_zipfile_serialization=False)
    torch.save(backbone, d / "vgg16_zip.pth")
    # the lpips package's vgg.pth is a legacy torch.save stream of the five lin weights
    torch.save(ref.lin_state_dict(), d / "vgg.pth", _use_new_zipfile_serialization=False)
    nv = T.nvidia_from_jax(lp.params)
    torch.jit.script(nv).save(str(d / "vgg16.pt"))
    return d, nv


def test_state_dicts_round_trip(files, lp, ref):
    d, _ = files
    x, y = _images(10), _images(11)
    want = _ref_distance(ref, x, y)
    for bb in ("vgg16-397923af.pth", "vgg16_zip.pth"):
        got = load_lpips(lin=d / "vgg.pth", backbone=d / bb)
        assert got.source == "lpips-vgg-pth"
        for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(lp.params)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(got(x, y), want, rtol=1e-6)


def test_torchscript_round_trip(files, lp, ref):
    """NVIDIA's layout, scripted by torch.jit: the JAX distance equals the scripted module's
    ``(f(x) - f(y))**2`` summed, on [0, 255] inputs, and the reference LPIPS."""
    d, nv = files
    got = load_lpips(d / "vgg16.pt")
    assert got.source == "nvidia-vgg16-pt"
    for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(lp.params)):
        np.testing.assert_array_equal(a, b)
    x, y = _images(12), _images(13)
    with torch.no_grad():
        nv = nv.double()
        fx = nv(_nchw((x + 1) * 127.5), resize_images=False, return_lpips=True)
        fy = nv(_nchw((y + 1) * 127.5), resize_images=False, return_lpips=True)
        want = (fx - fy).square().sum(1).numpy()
    np.testing.assert_allclose(want, _ref_distance(ref, x, y), rtol=1e-6)  # the two references
    np.testing.assert_allclose(got(x, y), want, rtol=1e-6)
    assert got.features(x).shape == fx.shape


def _rewrite_zip(src, dst, replace: dict[str, bytes]):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            name = info.filename
            data = replace.get(name.split("/", 1)[1], None) if "/" in name else None
            zout.writestr(info, zin.read(name) if data is None else data)


def test_torchscript_code_is_never_run(files, tmp_path, lp):
    d, _ = files
    marker = tmp_path / "ran"
    payload = f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(1)\n".encode()
    _rewrite_zip(d / "vgg16.pt", tmp_path / "v.pt", {"code/__torch__.py": payload})
    got = load_lpips(tmp_path / "v.pt")
    np.testing.assert_array_equal(got.params["lin"][0], lp.params["lin"][0])
    assert not marker.exists()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_torchscript_refused(files, tmp_path):
    d, _ = files
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Evil(marker), protocol=2)
    _rewrite_zip(d / "vgg16.pt", tmp_path / "evil.pt", {"data.pkl": evil})
    with pytest.raises(UnsafePickleError, match=r"evil\.pt: refusing to load global '(posix|os)"):
        load_lpips(tmp_path / "evil.pt")
    assert not marker.exists()
    # a __torch__ "class" whose name is not an identifier
    bad = b"\x80\x02c__torch__.a;b\nX\n)\x81}b."
    _rewrite_zip(d / "vgg16.pt", tmp_path / "bad.pt", {"data.pkl": bad})
    with pytest.raises(UnsafePickleError, match="not a class name"):
        load_lpips(tmp_path / "bad.pt")


def test_damaged_and_oversized_archives(files, tmp_path):
    d, _ = files
    data = (d / "vgg16.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match=r"cut\.pt: damaged zip archive"):
        load_lpips(tmp_path / "cut.pt")
    # a data.pkl that inflates past 64 MiB is refused from its declared size (never inflated)
    with zipfile.ZipFile(tmp_path / "big.pt", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("vgg16/data.pkl", bytes(65 << 20))
        z.writestr("vgg16/code/__torch__.py", b"")
    with pytest.raises(CorruptCheckpointError, match=r"big\.pt: vgg16/data\.pkl declares 68157440"):
        load_lpips(tmp_path / "big.pt")


def test_reader_errors(files, tmp_path):
    d, _ = files
    sd = torch.load(d / "vgg16-397923af.pth", weights_only=True)
    lins = torch.load(d / "vgg.pth", weights_only=True)
    text = tmp_path / "notes.txt"
    text.write_text("not weights")

    def save(obj, name):
        torch.save(obj, tmp_path / name)
        return tmp_path / name

    with pytest.raises(UnsupportedFormatError, match=r"notes\.txt: not a TorchScript archive"):
        load_lpips(text)
    with pytest.raises(UnsupportedFormatError, match="not a TorchScript one.*lin=.*backbone="):
        load_lpips(d / "vgg16_zip.pth")
    with pytest.raises(UnsupportedFormatError, match=r"legacy torch\.save file"):
        load_lpips(d / "vgg.pth")
    with pytest.raises(UnsupportedFormatError, match="TorchScript archive, not a state dict"):
        load_lpips(lin=d / "vgg16.pt", backbone=d / "vgg16_zip.pth")
    with pytest.raises(UnsupportedFormatError, match="swapped"):
        load_lpips(lin=d / "vgg16_zip.pth", backbone=d / "vgg.pth")
    with pytest.raises(UnsupportedFormatError, match="not a torch.save file"):
        load_lpips(lin=text, backbone=d / "vgg16_zip.pth")
    missing = save({k: v for k, v in sd.items() if k != "features.28.bias"}, "m.pth")
    with pytest.raises(KeyMismatchError, match=r"m\.pth: missing keys \['features\.28\.bias'\]"):
        load_lpips(lin=d / "vgg.pth", backbone=missing)
    no_lin = save({k: v for k, v in lins.items() if not k.startswith("lin3")}, "l.pth")
    with pytest.raises(KeyMismatchError, match=r"l\.pth: missing keys \['lin3\.model\.1\.weight"):
        load_lpips(lin=no_lin, backbone=d / "vgg16_zip.pth")
    wrong = save({**sd, "features.7.weight": torch.zeros(128, 128, 5, 5)}, "w.pth")
    with pytest.raises(ShapeMismatchError, match=r"w\.pth: features\.7\.weight has shape"):
        load_lpips(lin=d / "vgg.pth", backbone=wrong)
    wrong_lin = save({**lins, "lin2.model.1.weight": torch.zeros(1, 128, 1, 1)}, "wl.pth")
    with pytest.raises(ShapeMismatchError, match=r"lin2\.model\.1\.weight has shape"):
        load_lpips(lin=wrong_lin, backbone=d / "vgg16_zip.pth")
    nan = save({**sd, "features.0.bias": torch.full((64,), float("nan"))}, "n.pth")
    with pytest.raises(NonFiniteParameterError, match=r"features\.0\.bias"):
        load_lpips(lin=d / "vgg.pth", backbone=nan)
    assert load_lpips(lin=d / "vgg.pth", backbone=nan, allow_nonfinite=True) is not None
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_lpips(tmp_path / "nothing.pt")
    with pytest.raises(TypeError, match="needs backbone="):
        load_lpips(lin=d / "vgg.pth")
    with pytest.raises(TypeError, match="not both"):
        load_lpips(d / "vgg16.pt", lin=d / "vgg.pth")
    with pytest.raises(TypeError, match="needs path"):
        load_lpips()


def test_torchscript_missing_and_misshapen(tmp_path, lp):
    nv = T.nvidia_from_jax(lp.params)
    nv.lpips4 = torch.nn.Parameter(torch.ones(256, 1, 1))
    torch.jit.script(nv).save(str(tmp_path / "shape.pt"))
    with pytest.raises(ShapeMismatchError, match=r"shape\.pt: lpips4 has shape \(256, 1, 1\)"):
        load_lpips(tmp_path / "shape.pt")

    class Other(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x)

    torch.jit.script(Other()).save(str(tmp_path / "other.pt"))
    with pytest.raises(KeyMismatchError, match=r"other\.pt: a TorchScript module without"):
        load_lpips(tmp_path / "other.pt")
