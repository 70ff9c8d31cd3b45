"""jaxedit.load_images: image files -> [N, R, R, C] floats in [-1, 1] (the rules of its docstring:
colour conversion, transparency on white, centre crop then Lanczos, 16-bit grayscale) and one
typed error line per bad file (empty, not an image, zero size, too large, damaged, unsupported
pixel mode)."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image

from jaxedit import load_images
from jaxedit.errors import ImageFileError


def _u(a) -> np.ndarray:
    """uint8 values -> the expected floats."""
    return np.asarray(a, np.float32) / np.float32(127.5) - 1


def _png_header_only(path, w: int, h: int) -> None:
    """A PNG whose IHDR declares w x h, with no pixel data (a decoder would fail on it)."""

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def _bmp_header_only(path, w: int, h: int) -> None:
    """A 24-bit BMP whose header declares w x h, with no pixel data."""
    dib = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    path.write_bytes(b"BM" + struct.pack("<IHHI", 14 + 40, 0, 0, 14 + 40) + dib)


def test_exact_values_and_batch(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    x = load_images([tmp_path / "a.png", str(tmp_path / "b.png")], 16)
    assert x.shape == (2, 16, 16, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], _u(a))  # already R x R: not resampled
    np.testing.assert_array_equal(x[1], _u(b))
    np.testing.assert_array_equal(load_images(tmp_path / "a.png", 16)[0], _u(a))  # one path
    assert x.min() >= -1 and x.max() <= 1


def test_centre_crop_then_lanczos(tmp_path):
    # 60 wide x 40 high: a 40 x 40 centre of one colour between a red and a blue margin
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :10] = (255, 0, 0)
    img[:, 50:] = (0, 0, 255)
    img[:, 10:50] = (200, 100, 50)
    img[5, 30] = (0, 255, 0)  # one marker inside the square
    Image.fromarray(img).save(tmp_path / "wide.png")
    x = load_images(tmp_path / "wide.png", 40)
    np.testing.assert_array_equal(x[0], _u(img[:, 10:50]))  # the crop alone, exactly
    # downsampled: the margins never bleed in; the Lanczos filter of Pillow
    y = load_images(tmp_path / "wide.png", 20)[0]
    want = Image.fromarray(img[:, 10:50]).resize((20, 20), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(y, _u(np.asarray(want)))
    assert np.abs(y[:, :, 2] - _u(50)).max() < 0.2 and np.abs(y[15:, :, 0] - _u(200)).max() == 0
    # odd margins round the offset down: 41 wide -> columns 0..39 of a 40-high image
    odd = np.arange(40 * 41 * 3, dtype=np.uint32).reshape(40, 41, 3) % 251
    Image.fromarray(odd.astype(np.uint8)).save(tmp_path / "odd.png")
    np.testing.assert_array_equal(load_images(tmp_path / "odd.png", 40)[0], _u(odd[:, :40]))


def test_resize_mode_keeps_everything(tmp_path):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :10] = (255, 0, 0)
    Image.fromarray(img).save(tmp_path / "wide.png")
    x = load_images(tmp_path / "wide.png", 30, mode="resize")[0]
    want = Image.fromarray(img).resize((30, 30), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(x, _u(np.asarray(want)))
    assert x[:, 0, 0].min() > 0.9  # the red margin is in


def test_colour_conversions(tmp_path):
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(g, "L").save(tmp_path / "gray.png")
    x = load_images(tmp_path / "gray.png", 16)[0]
    for c in range(3):
        np.testing.assert_array_equal(x[..., c], _u(g))
    one = load_images(tmp_path / "gray.png", 16, channels=1)
    assert one.shape == (1, 16, 16, 1)
    np.testing.assert_array_equal(one[0, ..., 0], _u(g))
    # RGB -> luma for channels=1 (Pillow's ITU-R 601-2 L conversion)
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "red.png")
    np.testing.assert_allclose(load_images(tmp_path / "red.png", 16, channels=1), _u(76), atol=0)
    # 16-bit grayscale: scaled by 255 / 65535, not rounded to 8 bits
    g16 = np.full((16, 16), 0, np.uint16)
    g16[:, 8:] = 65535
    g16[0, 0] = 32768
    Image.fromarray(g16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    x = load_images(tmp_path / "g16.png", 16)[0]
    assert x[1, 1, 0] == -1 and x[1, 9, 1] == 1
    np.testing.assert_allclose(x[0, 0], 32768 * 255 / 65535 / 127.5 - 1, atol=1e-6)
    # CMYK JPEG -> RGB
    Image.new("CMYK", (16, 16), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    np.testing.assert_allclose(load_images(tmp_path / "cmyk.jpg", 16), 1.0, atol=0.02)


def test_transparency_composited_on_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:8, :, 3] = 255  # opaque top half
    rgba[8:, :8, 3] = 0  # transparent
    rgba[8:, 8:, 3] = 128  # half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    x = load_images(tmp_path / "rgba.png", 16)[0]
    np.testing.assert_array_equal(x[:8], np.broadcast_to(_u([10, 20, 30]), (8, 16, 3)))
    np.testing.assert_array_equal(x[8:, :8], 1.0)
    half = (np.array([10, 20, 30]) * 128 + 255 * 127) / 255
    np.testing.assert_allclose(x[8:, 8:], np.broadcast_to(_u(half), (8, 8, 3)), atol=1.5 / 127.5)
    # gray + alpha
    la = np.stack([np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8)], -1)
    la[:8, :, 1] = 255
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    x = load_images(tmp_path / "la.png", 16)[0]
    assert (x[:8] == -1).all() and (x[8:] == 1).all()
    # palette with a transparent index
    p = Image.new("P", (16, 16), 1)
    p.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    p.paste(0, (0, 0, 16, 8))
    p.save(tmp_path / "pal.png", transparency=0)
    x = load_images(tmp_path / "pal.png", 16)[0]
    assert (x[:8] == 1).all()
    np.testing.assert_array_equal(x[8:], np.broadcast_to(_u([200, 0, 0]), (8, 16, 3)))


def test_jpeg_and_exif_orientation(tmp_path):
    img = np.zeros((10, 20, 3), np.uint8)
    img[:, 10:] = 255  # stored: left half black, right half white
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the left half goes on top
    Image.fromarray(img).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    x = load_images(tmp_path / "rot.jpg", 10, mode="resize")[0]
    assert x[:4].mean() < -0.9 and x[-4:].mean() > 0.9


def test_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, not an image")
    with pytest.raises(ImageFileError, match=r"notes\.txt: not an image file of a supported"):
        load_images(tmp_path / "notes.txt", 16)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageFileError, match=r"empty\.png: empty file \(0 bytes\)"):
        load_images(tmp_path / "empty.png", 16)
    _png_header_only(tmp_path / "zero.png", 0, 12)
    with pytest.raises(ImageFileError, match=r"zero\.png: a zero-size image \(0 x 12 pixels\)"):
        load_images(tmp_path / "zero.png", 16)
    # too large: refused from the header (the file has no pixel data to decode at all)
    _png_header_only(tmp_path / "big.png", 10000, 10000)
    with pytest.raises(ImageFileError, match=r"big\.png: 10000 x 10000 = 100000000 pixels is more"):
        load_images(tmp_path / "big.png", 16)
    _png_header_only(tmp_path / "bomb.png", 100000, 100000)
    with pytest.raises(ImageFileError, match=r"bomb\.png: 100000 x 100000 .* max_pixels=67108864"):
        load_images(tmp_path / "bomb.png", 16)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "small.bmp")
    with pytest.raises(ImageFileError, match=r"small\.bmp: 16 x 16 = 256 .*max_pixels=100"):
        load_images(tmp_path / "small.bmp", 16, max_pixels=100)
    # BMP headers (read lazily by Pillow): 9000 x 9000 is over max_pixels, 20000 x 20000 over
    # Pillow's own decompression-bomb limit; neither file holds pixel data
    for name, side, match in (
        ("big.bmp", 9000, "9000 x 9000 = 81000000 pixels is more than max_pixels"),
        ("bomb.bmp", 20000, "decompression-bomb limit"),
    ):
        _bmp_header_only(tmp_path / name, side, side)
        with pytest.raises(ImageFileError, match=rf"{name}: .*{match}"):
            load_images(tmp_path / name, 16)
    # damaged: a valid PNG cut short
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        tmp_path / "full.png"
    )
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageFileError, match=r"cut\.png: damaged image"):
        load_images(tmp_path / "cut.png", 16)
    # a pixel mode with no RGB reading (32-bit float TIFF)
    Image.fromarray(np.zeros((16, 16), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ImageFileError, match=r"f\.tif: pixel mode 'F' \(1 channel\(s\)\)"):
        load_images(tmp_path / "f.tif", 16)
    with pytest.raises(FileNotFoundError, match=r"missing\.png: no such image file"):
        load_images(tmp_path / "missing.png", 16)
    with pytest.raises(ImageFileError, match="not a regular file"):
        load_images(tmp_path, 16)
    # the first bad file of a batch is named
    with pytest.raises(ImageFileError, match=r"empty\.png"):
        load_images([tmp_path / "small.bmp", tmp_path / "empty.png"], 16)


def test_bad_arguments(tmp_path):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"resolution": 0}, "resolution must be in"),
        ({"resolution": 16.0}, "resolution must be an int"),
        ({"resolution": 16, "mode": "pad"}, "mode must be 'crop' or 'resize'"),
        ({"resolution": 16, "channels": 4}, "channels must be 1 or 3"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            load_images(tmp_path / "a.png", **kwargs)
    with pytest.raises(ValueError, match="paths is empty"):
        load_images([], 16)
