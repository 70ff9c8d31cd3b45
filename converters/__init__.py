"""Torch-free, code-free readers of pretrained GAN checkpoints into jaxedit's layout.

``read_checkpoint(path)`` detects the format from the file's contents and returns a
`ConvertedCheckpoint` of plain NumPy arrays. Nothing here imports torch or executes code
from a file: pickles go through an allowlisting unpickler.

Formats: NVIDIA stylegan2-ada-pytorch / stylegan3-repo ``.pkl``, StyleGAN2 or StyleGAN3 (T, R)
(``"nvidia-pkl"``),
NVIDIA's TensorFlow StyleGAN2 ``.pkl`` (the official config-f releases; ``"nvidia-tf-pkl"``),
rosinality/stylegan2-pytorch ``.pt`` (``"rosinality-pt"``), Hammer / ReSeFa StyleGAN2 or
StyleGAN3 ``.pth`` (``"hammer-pth"``) and pytorch-pretrained-BigGAN ``pytorch_model.bin`` + ``config.json``
(``"biggan-bin"``; pass the directory or the .bin).
"""

from __future__ import annotations

import os

from . import biggan
from ._common import ConvertedCheckpoint, check_finite, sha256_file
from ._pickle import DEFAULT_LIMITS, Limits, load_pickle, load_torch_file, sniff
from .errors import (
    CheckpointError,
    CorruptCheckpointError,
    KeyMismatchError,
    NonFiniteParameterError,
    ShapeMismatchError,
    UnsafePickleError,
    UnsupportedFormatError,
)
from .stylegan2 import hammer, nvidia, nvidia_tf, rosinality
from .stylegan3 import hammer as hammer3, nvidia as nvidia3

FORMATS = (nvidia.FORMAT, nvidia_tf.FORMAT, rosinality.FORMAT, hammer.FORMAT, biggan.FORMAT)


def _classify(path: str | os.PathLike) -> tuple[str, object | None]:
    """(format, the loaded torch object or None) from a file's contents (not its suffix)."""
    source = os.fspath(path)
    if os.path.isdir(source):
        if not os.path.isfile(os.path.join(source, biggan.WEIGHTS_NAME)):
            has_cfg = os.path.isfile(os.path.join(source, "config.json"))
            has_params = os.path.isdir(os.path.join(source, "params"))
            if has_cfg and has_params:
                raise UnsupportedFormatError(
                    f"{source}: this is a converted jaxedit checkpoint, not a source checkpoint "
                    "file (load it with jaxedit.load_generator)"
                )
            raise UnsupportedFormatError(
                f"{source}: a directory, but not a jaxedit checkpoint (no config.json + params/) "
                f"nor a BigGAN one (no {biggan.WEIGHTS_NAME})"
            )
        source = os.path.join(source, biggan.WEIGHTS_NAME)
    if not os.path.exists(source):
        raise FileNotFoundError(f"{source}: no such checkpoint file")
    if not os.path.isfile(source):
        raise UnsupportedFormatError(f"{source}: not a regular file")
    kind = sniff(source)
    if kind == "pickle":
        with open(source, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        if nvidia.sniff(head):  # a plain pickle, not a legacy torch.save stream
            if nvidia_tf.sniff(head):
                return nvidia_tf.FORMAT, None
            return nvidia.FORMAT, None
    elif kind != "zip":
        raise UnsupportedFormatError(
            f"{source}: unrecognized file (neither a pickle nor a torch.save archive)"
        )
    obj = load_torch_file(source)
    if rosinality.sniff(obj):
        return rosinality.FORMAT, obj
    if hammer.sniff(obj):
        return hammer.FORMAT, obj
    if biggan.is_biggan(obj):
        return biggan.FORMAT, obj
    raise UnsupportedFormatError(f"{source}: a torch.save file, but not a known GAN checkpoint")


_SNIFF_BYTES = 1024  # a TF network pickle names its class within its first bytes


def detect_format(path: str | os.PathLike) -> str:
    """Return the format name of a checkpoint file, from its contents (not its suffix)."""
    return _classify(path)[0]


# What a malformed (but safely loaded) object tree can still provoke in a format reader; turned
# into one CorruptCheckpointError line naming the file. The readers check types and shapes
# explicitly first, with better messages; this is the net under them.
_MALFORMED = (
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    ValueError,
    OverflowError,
    ZeroDivisionError,
    RecursionError,
)


def read_checkpoint(
    path: str | os.PathLike, which: str | None = None, *, allow_nonfinite: bool = False
) -> ConvertedCheckpoint:
    """Read a checkpoint file into jaxedit's layout.

    Args:
      path: NVIDIA ``.pkl`` (PyTorch or TensorFlow), rosinality ``.pt``, Hammer ``.pth``, or a
        BigGAN ``pytorch_model.bin`` (or its directory; ``config.json`` must sit beside it).
      which: the network to take from a multi-network file (NVIDIA ``G_ema`` default / ``G``;
        TF ``Gs`` default / ``G``; rosinality ``g_ema`` default / ``g``; Hammer
        ``generator_smooth`` if present, else ``generator``).
      allow_nonfinite: accept parameters holding NaN or infinity (refused by default).

    Raises:
      UnsafePickleError, CorruptCheckpointError (NonFiniteParameterError), KeyMismatchError,
      ShapeMismatchError, UnsupportedFormatError: one line naming the file and the key.
      FileNotFoundError: no such file.
    """
    try:
        fmt, obj = _classify(path)
        if fmt == nvidia.FORMAT:
            obj = load_pickle(os.fspath(path))
            net, _ = nvidia.select_network(obj, os.fspath(path), which)
            if nvidia3.is_stylegan3(nvidia.flatten_network(net, os.fspath(path))[1]):
                conv = nvidia3.read(path, which, obj=obj)
            else:
                conv = nvidia.read(path, which, obj=obj)
        elif fmt == nvidia_tf.FORMAT:
            conv = nvidia_tf.read(path, which)
        elif fmt == hammer.FORMAT and hammer3.sniff(obj):
            conv = hammer3.read(path, which, obj=obj)
        elif fmt == hammer.FORMAT:
            conv = hammer.read(path, which, obj=obj)
        elif fmt == biggan.FORMAT:
            conv = biggan.read(path, which, obj=obj)
        else:
            conv = rosinality.read(path, which, obj=obj)
    except CheckpointError:
        raise
    except _MALFORMED as e:
        text = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise CorruptCheckpointError(
            f"{os.fspath(path)}: malformed checkpoint ({type(e).__name__}: {text})"
        ) from e
    if not allow_nonfinite:
        check_finite(conv.source_path, conv.params, conv.sources)
    return conv


__all__ = [
    "FORMATS",
    "CheckpointError",
    "ConvertedCheckpoint",
    "CorruptCheckpointError",
    "DEFAULT_LIMITS",
    "KeyMismatchError",
    "Limits",
    "NonFiniteParameterError",
    "ShapeMismatchError",
    "UnsafePickleError",
    "UnsupportedFormatError",
    "detect_format",
    "load_pickle",
    "load_torch_file",
    "read_checkpoint",
    "sha256_file",
]
