"""Image helpers: float NHWC in [-1, 1] -> uint8, grids, PNG files (written under the output
policy of `jaxedit._io`: atomically, symlinks followed, special files refused), and image files
read back into [-1, 1] (`load_images`, for projecting real images)."""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Sequence

import numpy as np

from ._typing import ImageBatch, ImagesLike, Uint8Array, Uint8Grid, Uint8Image, Uint8Images
from .errors import ImageFileError


def to_uint8(img: ImagesLike) -> Uint8Array:
    """[..., H, W, C] floats in [-1, 1] -> uint8 as NVIDIA's ``generate.py`` (``x*127.5+128``).

    Raises ValueError if any value is NaN or infinite (it would silently become black).
    """
    x = np.asarray(img, np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(
            f"the images contain {int(bad.sum())} non-finite value(s) (NaN or inf) "
            f"out of {x.size}: the generator's output is invalid (non-finite inputs "
            "or weights?)"
        )
    return np.clip(x * 127.5 + 128, 0, 255).astype(np.uint8)


def image_grid(imgs: Uint8Images, cols: int | None = None) -> Uint8Grid:
    """[N, H, W, C] uint8 -> one [rows*H, cols*W, C] image (``cols`` defaults to N)."""
    imgs = np.asarray(imgs)
    if imgs.ndim != 4 or imgs.shape[0] == 0:
        raise ValueError(f"images must be [N, H, W, C] with N >= 1, got shape {imgs.shape}")
    n, h, w, c = imgs.shape
    cols = int(n) if cols is None else int(cols)
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, c), imgs.dtype)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * h : (r + 1) * h, q * w : (q + 1) * w] = imgs[i]
    return grid


def save_png(image: Uint8Image, path: str | os.PathLike, *, overwrite: bool = True) -> str:
    """Write a [H, W, 3|1] uint8 image to ``path`` (atomically; ``overwrite=False`` refuses an
    existing file). Returns the path written (a symlink's target)."""
    from PIL import Image

    from ._io import atomic_output

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] not in (1, 3) or img.dtype != np.uint8:
        raise ValueError(f"save_png needs a [H, W, 1|3] uint8 image, got {img.shape} {img.dtype}")
    if img.shape[-1] == 1:
        img = img[..., 0]
    pil = Image.fromarray(img)
    with atomic_output(path, overwrite=overwrite, suffix=".png") as f:
        pil.save(f, format="PNG")
    return os.path.realpath(os.fspath(path))


def save_image_grid(
    imgs: ImageBatch, path: str | os.PathLike, cols: int | None = None, *, overwrite: bool = True
) -> str:
    """[N, H, W, C] floats in [-1, 1] -> a PNG grid at ``path``."""
    return save_png(image_grid(to_uint8(imgs), cols), path, overwrite=overwrite)


# ------------------------------------------------------------------------------------------------
# Reading images (real-image editing: the targets of a projection).
# ------------------------------------------------------------------------------------------------
#: The Pillow formats `load_images` opens (others are refused before decoding).
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
#: `load_images`' default pixel limit (width x height, checked from the header before decoding).
MAX_PIXELS = 1 << 26  # 8192 x 8192
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_PLAIN_MODES = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr")
_HIGH_BIT_GRAY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _png_header_size(path: str) -> tuple[int, int] | None:
    """(width, height) a PNG's IHDR declares, or None for other files."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) == 24 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
        w, h = struct.unpack(">II", head[16:24])
        return w, h
    return None


def _check_size(path: str, w: int, h: int, max_pixels: int) -> None:
    if w <= 0 or h <= 0:
        raise ImageFileError(f"{path}: a zero-size image ({w} x {h} pixels)")
    if w * h > max_pixels:
        raise ImageFileError(
            f"{path}: {w} x {h} = {w * h} pixels is more than max_pixels={max_pixels}; "
            "refusing to decode it (a decompression bomb?); raise max_pixels to read it"
        )


def _open_image(path: str, max_pixels: int):
    """Open lazily (the header only), check the declared size, then decode the first frame."""
    from PIL import Image, UnidentifiedImageError

    size = os.path.getsize(path)
    if size == 0:
        raise ImageFileError(f"{path}: empty file (0 bytes), not an image")
    declared = _png_header_size(path)
    if declared is not None:
        _check_size(path, *declared, max_pixels)
    with warnings.catch_warnings():
        # the pixel limit below is this function's own; Pillow's warning would only repeat it
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path, formats=IMAGE_FORMATS)
        except Image.DecompressionBombError:
            raise ImageFileError(
                f"{path}: declares more pixels than Pillow's decompression-bomb limit "
                f"(2 x PIL.Image.MAX_IMAGE_PIXELS = {2 * (Image.MAX_IMAGE_PIXELS or 0)}); "
                "refusing to decode it"
            ) from None
        except UnidentifiedImageError:
            raise ImageFileError(
                f"{path}: not an image file of a supported format ({', '.join(IMAGE_FORMATS)})"
            ) from None
        except (OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
            raise ImageFileError(f"{path}: damaged image ({type(e).__name__}: {e})") from None
        try:
            _check_size(path, *im.size, max_pixels)
            im.seek(0)
            im.load()
        except ImageFileError:
            im.close()
            raise
        except (OSError, SyntaxError, ValueError, struct.error, EOFError, MemoryError) as e:
            im.close()
            text = str(e).splitlines()[0][:200] if str(e) else ""
            raise ImageFileError(f"{path}: damaged image ({type(e).__name__}: {text})") from None
    return im


def _to_float_image(im, path: str, channels: int):
    """A decoded Pillow image -> a Pillow image of 8-bit RGB / L, or 32-bit float ``F``
    (16-bit grayscale, values in [0, 255]) per the conversion rules of `load_images`."""
    from PIL import Image, ImageOps

    im = ImageOps.exif_transpose(im)
    mode = im.mode
    if mode in _HIGH_BIT_GRAY:
        a = np.asarray(im, dtype=np.float64)
        scale = 255.0 / 65535.0
        return Image.fromarray((np.clip(a, 0, 65535) * scale).astype(np.float32), mode="F")
    if mode in _ALPHA_MODES or (mode in _PLAIN_MODES and im.has_transparency_data):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    elif mode not in _PLAIN_MODES:
        bands = len(im.getbands())
        raise ImageFileError(
            f"{path}: pixel mode {mode!r} ({bands} channel(s)) cannot be read as "
            f"{'RGB' if channels == 3 else 'grayscale'}; load_images reads 8-bit grayscale, "
            "palette, RGB, CMYK and YCbCr images (with or without alpha) and 16-bit grayscale"
        )
    return im.convert("RGB" if channels == 3 else "L")


def load_images(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    resolution: int,
    *,
    mode: str = "crop",
    channels: int = 3,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Read image files into float images ``[N, R, R, C]`` in ``[-1, 1]`` (float32, NumPy), the
    targets of a projection into a generator of resolution ``R``.

    The rules, per file:

    * formats: PNG, JPEG, WebP, BMP, GIF and TIFF (`IMAGE_FORMATS`), read with Pillow; the
      first frame of an animation; the EXIF orientation of a photo is applied.
    * size: the width x height the header declares is checked before any pixel is decoded
      (``max_pixels``, default 8192 x 8192; Pillow's own decompression-bomb limit also applies).
    * colour: grayscale, palette, CMYK and YCbCr become RGB (Pillow's conversions); an image with
      transparency (an alpha channel, or a transparent palette / colour key) is **composited
      on white**; 16-bit grayscale is scaled by 255 / 65535 (no rounding to 8 bits);
      ``channels=1`` gives Pillow's luma ``L`` (ITU-R 601-2) instead.
    * geometry: ``mode="crop"`` cuts the largest centred square (offsets rounded down), then
      resizes it to ``R x R`` with Lanczos (Pillow ``LANCZOS``, the filter of NVIDIA's
      ``dataset_tool.py``); ``mode="resize"`` resizes the whole image to ``R x R`` (the aspect
      ratio is not kept). An image already ``R x R`` is not resampled.
    * values: ``u / 127.5 - 1`` for ``u`` in [0, 255] (the inverse of NVIDIA's projector's
      ``(x + 1) * 127.5``).

    Faces are not aligned (FFHQ-trained generators expect FFHQ's alignment).

    Args:
      paths: one path or a sequence of paths.
      resolution: R, the generator's output resolution.
      mode: ``"crop"`` or ``"resize"``.
      channels: 3 (RGB) or 1 (grayscale), the generator's image channels.
      max_pixels: the largest width x height accepted.

    Returns:
      ``[N, R, R, channels]`` float32 in ``[-1, 1]``.

    Raises:
      ImageFileError: a file is empty, not an image of a supported format, damaged, of zero
        size, larger than ``max_pixels``, or of a pixel mode that cannot be converted (one line
        naming the file).
      FileNotFoundError: a file does not exist.
      ValueError: a bad argument (named).
    """
    from PIL import Image

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("paths is empty: give at least one image file")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise ValueError(f"resolution must be an int, got {resolution!r}")
    if not 1 <= int(resolution) <= 1 << 14:
        raise ValueError(f"resolution must be in 1..16384, got {resolution}")
    if mode not in ("crop", "resize"):
        raise ValueError(f"mode must be 'crop' or 'resize', got {mode!r}")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
        raise ValueError(f"max_pixels must be an int, got {max_pixels!r}")
    r = int(resolution)
    out = np.empty((len(paths), r, r, channels), np.float32)
    for i, path in enumerate(paths):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such image file")
        if not os.path.isfile(path):
            raise ImageFileError(f"{path}: not a regular file")
        with _open_image(path, int(max_pixels)) as im:
            img = _to_float_image(im, path, channels)
        w, h = img.size
        if mode == "crop" and w != h:
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            img = img.crop((left, top, left + s, top + s))  # nothing outside it is resampled
        if img.size != (r, r):
            img = img.resize((r, r), Image.Resampling.LANCZOS)
        a = np.asarray(img, dtype=np.float32)
        out[i] = (a if a.ndim == 3 else a[..., None]) / np.float32(127.5) - 1
    return out
