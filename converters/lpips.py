"""LPIPS (VGG16) weights, torch-free and code-free: NVIDIA's TorchScript ``vgg16.pt`` or the
``lpips`` package's ``vgg.pth`` plus a torchvision VGG16 state dict.

Two sources of the same network (the VGG16 ``features`` conv stack up to relu5_3 and five 1x1
"lin" weights, one per tap relu1_2, relu2_2, relu3_3, relu4_3, relu5_3):

* ``read_torchscript(path)``: NVIDIA's ``vgg16.pt`` (stylegan2-ada-pytorch's projector and PPL
  metric). A TorchScript archive is a zip: ``<prefix>/data.pkl`` (the module tree as a pickle:
  each module a ``__torch__.*`` class built by ``NEWOBJ`` and given its attribute dict by
  ``BUILD``; tensors are ``torch._utils._rebuild_tensor_v2`` of persistent-id storages),
  ``<prefix>/data/<key>`` (raw storages), ``<prefix>/code/`` (the TorchScript source),
  ``constants.pkl``, ``version``. Only ``data.pkl`` and ``data/`` are read, through the
  restricted unpickler of `converters._pickle`: every ``__torch__`` class becomes an inert record
  of its attributes, any other global is refused as in every reader, and ``code/`` is never
  opened. Tensor names (as ``state_dict()`` spells them): ``layers.conv1 .. layers.conv13``
  (``.weight`` [O, I, 3, 3], ``.bias`` [O]) and ``lpips0 .. lpips4`` (the lin weights, [C, 1, 1]);
  ``layers.fc1 .. fc3`` (the classifier) are read with the file and ignored.
* ``read_state_dicts(lin, backbone)``: the ``lpips`` package's ``weights/v0.1/vgg.pth``
  (``lin{k}.model.1.weight`` [1, C, 1, 1]; ``lin{k}.model.0.weight`` when trained without
  dropout) and torchvision's ``vgg16-397923af.pth`` (``features.{0,2,5,7,10,12,14,17,19,21,24,
  26,28}.weight/bias``; ``classifier.*`` ignored). Either file may also be a full ``lpips.LPIPS``
  state dict (``net.slice{s}.{i}.weight``, ``lin{k}.model.1.weight``, ``scaling_layer.*``).

Both return `LpipsWeights`: conv kernels in jaxedit's layout ``[3, 3, I, O]`` (HWIO), biases
``[O]``, lin weights ``[C]``, as stored (float32). Wrong files raise `UnsupportedFormatError`,
missing tensors `KeyMismatchError`, wrong shapes `ShapeMismatchError`, NaN / infinite values
`NonFiniteParameterError`; sizes are checked before anything is allocated (the limits of
`converters._pickle`).
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickletools
import re
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _pickle
from ._common import check_finite, describe
from ._pickle._standins import _Record
from ._pickle._torch import _zip_entries
from .errors import (
    CorruptCheckpointError,
    KeyMismatchError,
    ShapeMismatchError,
    UnsafePickleError,
    UnsupportedFormatError,
)

FORMAT_TORCHSCRIPT = "nvidia-vgg16-pt"
FORMAT_STATE_DICTS = "lpips-vgg-pth"

#: (in, out) channels of the 13 convolutions of VGG16 ``features`` (relu5_3 is the last tap).
CONV_CHANNELS: tuple[tuple[int, int], ...] = (
    (3, 64), (64, 64),
    (64, 128), (128, 128),
    (128, 256), (256, 256), (256, 256),
    (256, 512), (512, 512), (512, 512),
    (512, 512), (512, 512), (512, 512),
)  # fmt: skip
#: convolutions per block; each block ends in a tap (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).
BLOCKS: tuple[int, ...] = (2, 2, 3, 3, 3)
#: channels of the five taps (the lin weights' lengths).
TAP_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)
#: index of each convolution in torchvision's ``vgg16().features`` Sequential.
TORCHVISION_INDEX: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# the lpips package's slices of ``features``: slice s holds indices [start_s, end_s)
_LPIPS_SLICES = ((1, 0, 4), (2, 4, 9), (3, 9, 16), (4, 16, 23), (5, 23, 30))

_MAX_DATA_PKL = 64 << 20  # a module tree's pickle is a few KiB; larger is not a VGG16
_ZIPINFO_BYTES = 1024


@dataclasses.dataclass
class LpipsWeights:
    """LPIPS-VGG16 weights read from a file, in jaxedit's layout (NumPy, float32 as stored).

    Attributes:
      conv_weights: 13 kernels ``[3, 3, I, O]`` (HWIO) of VGG16 ``features`` up to conv5_3.
      conv_biases: 13 biases ``[O]``.
      lin_weights: 5 lin weights ``[C]`` (C = 64, 128, 256, 512, 512), one per tap.
      source_format: ``"nvidia-vgg16-pt"`` or ``"lpips-vgg-pth"``.
      source_paths: the file(s) read.
      sources: ``{"conv3/weight": "layers.conv4.weight", ...}``: where each array came from.
    """

    conv_weights: list[np.ndarray]
    conv_biases: list[np.ndarray]
    lin_weights: list[np.ndarray]
    source_format: str
    source_paths: tuple[str, ...]
    sources: dict[str, str]


# ---------------------------------------------------------------------------------------------
# Key tables: (source key of conv j's weight / bias, of lin k) per naming scheme.
# ---------------------------------------------------------------------------------------------
def _nvidia_conv(j: int) -> str:
    return f"layers.conv{j + 1}"


def _torchvision_conv(j: int) -> str:
    return f"features.{TORCHVISION_INDEX[j]}"


def _lpips_conv(j: int) -> str:
    i = TORCHVISION_INDEX[j]
    s = next(s for s, a, b in _LPIPS_SLICES if a <= i < b)
    return f"net.slice{s}.{i}"


def _lin_key(state: Mapping[str, Any], k: int) -> str:
    """``lin{k}.model.1.weight`` (trained with dropout, the published weights) or ``.model.0``."""
    for key in (f"lin{k}.model.1.weight", f"lin{k}.model.0.weight"):
        if key in state:
            return key
    return f"lin{k}.model.1.weight"


# ---------------------------------------------------------------------------------------------
# Shape checks and the assembly of LpipsWeights.
# ---------------------------------------------------------------------------------------------
def _array(source: str, key: str, v: Any) -> np.ndarray:
    if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
        raise CorruptCheckpointError(f"{source}: {key} is {describe(v)}, not a float tensor")
    return v


def _conv(source: str, key: str, w: Any, b: Any, cin: int, cout: int):
    w = _array(source, f"{key}.weight", w)
    b = _array(source, f"{key}.bias", b)
    if w.shape != (cout, cin, 3, 3):
        raise ShapeMismatchError(
            f"{source}: {key}.weight has shape {tuple(w.shape)}, expected {(cout, cin, 3, 3)} "
            "(VGG16 features)"
        )
    if b.shape != (cout,):
        raise ShapeMismatchError(
            f"{source}: {key}.bias has shape {tuple(b.shape)}, expected {(cout,)}"
        )
    return np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0))), np.array(b)


def _lin(source: str, key: str, w: Any, c: int) -> np.ndarray:
    w = _array(source, key, w)
    if w.size != c or any(d not in (1, c) for d in w.shape):
        raise ShapeMismatchError(
            f"{source}: {key} has shape {tuple(w.shape)}, expected {c} weights "
            f"([1, {c}, 1, 1], [{c}, 1, 1] or [{c}])"
        )
    return np.array(w.reshape(c))


def _missing(source: str, state: Mapping[str, Any], wanted: list[str], hint: str) -> None:
    missing = [k for k in wanted if k not in state]
    if missing:
        shown = missing if len(missing) <= 8 else [*missing[:8], f"... ({len(missing)} in all)"]
        raise KeyMismatchError(f"{source}: missing keys {shown} ({hint})")


def _convs_from(source: str, state: Mapping[str, Any], name, sources: dict[str, str]):
    wanted = [f"{name(j)}.{p}" for j in range(len(CONV_CHANNELS)) for p in ("weight", "bias")]
    _missing(source, state, wanted, "the 13 convolutions of VGG16 features")
    ws, bs = [], []
    for j, (cin, cout) in enumerate(CONV_CHANNELS):
        key = name(j)
        w, b = _conv(source, key, state[f"{key}.weight"], state[f"{key}.bias"], cin, cout)
        ws.append(w)
        bs.append(b)
        sources[f"conv{j}/weight"] = f"{key}.weight"
        sources[f"conv{j}/bias"] = f"{key}.bias"
    return ws, bs


def _lins_from(source: str, state: Mapping[str, Any], key_of, sources: dict[str, str]):
    keys = [key_of(k) for k in range(len(TAP_CHANNELS))]
    _missing(source, state, keys, "the five LPIPS lin weights")
    lins = []
    for k, (key, c) in enumerate(zip(keys, TAP_CHANNELS)):
        lins.append(_lin(source, key, state[key], c))
        sources[f"lin{k}/weight"] = key
    return lins


def _finish(weights: LpipsWeights, allow_nonfinite: bool) -> LpipsWeights:
    if not allow_nonfinite:
        params = {f"conv{j}/weight": w for j, w in enumerate(weights.conv_weights)}
        params.update({f"conv{j}/bias": b for j, b in enumerate(weights.conv_biases)})
        params.update({f"lin{k}/weight": w for k, w in enumerate(weights.lin_weights)})
        check_finite(" + ".join(weights.source_paths), params, weights.sources)
    return weights


# ---------------------------------------------------------------------------------------------
# TorchScript archives (NVIDIA's vgg16.pt).
# ---------------------------------------------------------------------------------------------
class TorchScriptObject(_Record):
    """Stand-in for a ``__torch__.*`` class of a TorchScript archive: only its attributes
    (submodules, parameters, buffers, flags) are kept, as data. Nothing of the archive's code
    is read, compiled or run."""

    qualname = ""


def _typed_list(data: Any) -> Any:
    """``torch.jit._pickle.build_{int,double,bool,tensor}list``: the list itself."""
    if not isinstance(data, list):
        raise CorruptCheckpointError(f"a TorchScript typed list is {describe(data)}")
    return data


def _restore_type_tag(value: Any, type_str: Any = None) -> Any:
    """``torch.jit._pickle.restore_type_tag``: the value (the static type is not needed)."""
    return value


def _tensor_from_id(data: Any) -> None:
    """``torch.jit._pickle.build_tensor_from_id``: a reference into a table this reader does
    not keep (None)."""
    return None


_JIT_PICKLE: dict[tuple[str, str], Any] = {
    **{
        ("torch.jit._pickle", f"build_{t}list"): _typed_list
        for t in ("int", "double", "bool", "tensor")
    },
    ("torch.jit._pickle", "restore_type_tag"): _restore_type_tag,
    ("torch.jit._pickle", "build_tensor_from_id"): _tensor_from_id,
}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _torchscript_globals(source: str) -> tuple[str, dict[tuple[str, str], type]]:
    """The ``__torch__`` classes that ``data.pkl`` names (read by opcodes only), each mapped
    to an inert `TorchScriptObject` subclass; and the archive's prefix."""
    size = os.path.getsize(source)
    try:
        n_entries = _zip_entries(source)
        if n_entries * _ZIPINFO_BYTES > 4 * size + (1 << 20):
            raise CorruptCheckpointError(
                f"{source}: the zip archive declares {n_entries} members for {size} bytes"
            )
        with zipfile.ZipFile(source) as zf:
            names = zf.namelist()
            pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                raise UnsupportedFormatError(f"{source}: zip archive has no single data.pkl")
            prefix = pkl[0][: -len("data.pkl")]
            if not any(n.startswith(prefix + "code/") for n in names):
                raise UnsupportedFormatError(
                    f"{source}: a torch.save archive, not a TorchScript one (no code/ folder); "
                    "for the lpips package's vgg.pth and torchvision's VGG16 state dict pass "
                    "load_lpips(lin=..., backbone=...)"
                )
            info = zf.getinfo(pkl[0])
            if info.file_size > _MAX_DATA_PKL:
                raise CorruptCheckpointError(
                    f"{source}: {pkl[0]} declares {info.file_size} bytes; a VGG16 module tree "
                    "is a few KiB"
                )
            with zf.open(info) as fh:
                data = fh.read(info.file_size)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as e:
        if isinstance(e, (CorruptCheckpointError, UnsupportedFormatError)):
            raise
        text = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise CorruptCheckpointError(f"{source}: damaged zip archive ({text})") from None
    try:  # pickletools only parses (nothing is built or called)
        args = [arg for op, arg, _ in pickletools.genops(io.BytesIO(data)) if op.name == "GLOBAL"]
    except (ValueError, EOFError) as e:
        text = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise CorruptCheckpointError(f"{source}: {pkl[0]}: corrupt pickle ({text})") from None
    found: dict[tuple[str, str], type] = {}
    for raw in args:
        arg = str(raw)
        module, _, name = arg.partition(" ")
        if module != "__torch__" and not module.startswith("__torch__."):
            continue  # any other global meets the allowlist of the restricted unpickler
        if len(arg) > 512 or not all(_IDENT.fullmatch(p) for p in [*module.split("."), name]):
            raise UnsafePickleError(
                f"{source}: refusing the TorchScript global {describe(arg)}: not a class "
                "name; nothing in this file was executed"
            )
        if (module, name) not in found:
            found[(module, name)] = type(
                name, (TorchScriptObject,), {"qualname": f"{module}.{name}"}
            )
    return prefix, found


def _flatten_module(root: Any, source: str) -> dict[str, Any]:
    """``{"layers.conv1.weight": array, ...}`` from a tree of `TorchScriptObject` records, as
    ``state_dict()`` names it (iterative; the tree was depth-checked by the reader)."""
    out: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("", root)]
    seen: set[int] = set()
    while stack:
        prefix, obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        for name, value in vars(obj).items():
            if not isinstance(name, str):
                continue
            key = f"{prefix}{name}"
            if isinstance(value, TorchScriptObject):
                stack.append((key + ".", value))
            elif isinstance(value, np.ndarray):
                out[key] = value
    if not out:
        raise UnsupportedFormatError(f"{source}: the TorchScript module holds no tensors")
    return out


def read_torchscript(
    path: str | os.PathLike,
    *,
    allow_nonfinite: bool = False,
    limits: _pickle.Limits | None = None,
) -> LpipsWeights:
    """Read NVIDIA's ``vgg16.pt`` (a TorchScript archive; its code is never read or run).

    Also reads a TorchScript of ``lpips.LPIPS(net="vgg")`` (the ``net.slice*`` / ``lin*`` names).

    Args:
      path: the archive.
      allow_nonfinite: accept NaN / infinite weights.
      limits: resource limits (`converters.Limits`).

    Raises:
      UnsupportedFormatError: not a zip, or a zip but not a TorchScript archive (a plain
        ``torch.save`` state dict names the other reader).
      UnsafePickleError: ``data.pkl`` names a global outside the allowlist.
      KeyMismatchError, ShapeMismatchError, CorruptCheckpointError: one line naming the tensor.
      FileNotFoundError: no such file.
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(f"{source}: no such file")
    kind = _pickle.sniff(source)
    if kind != "zip":
        hint = (
            " (a legacy torch.save file: pass it as load_lpips(lin=..., backbone=...))"
            if kind == "pickle"
            else ""
        )
        raise UnsupportedFormatError(f"{source}: not a TorchScript archive (zip){hint}")
    _prefix, classes = _torchscript_globals(source)
    root = _pickle.load_torch_file(source, extra_allow={**_JIT_PICKLE, **classes}, limits=limits)
    if not isinstance(root, TorchScriptObject):
        raise UnsupportedFormatError(
            f"{source}: data.pkl holds {describe(root)}, not a TorchScript module"
        )
    state = _flatten_module(root, source)
    sources: dict[str, str] = {}
    if "layers.conv1.weight" in state or "lpips0" in state:
        convs = _convs_from(source, state, _nvidia_conv, sources)
        lins = _lins_from(source, state, lambda k: f"lpips{k}", sources)
    elif any(k.startswith("net.slice") for k in state):
        convs = _convs_from(source, state, _lpips_conv, sources)
        lins = _lins_from(source, state, lambda k: _lin_key(state, k), sources)
    else:
        shown = sorted(state)[:8]
        raise KeyMismatchError(
            f"{source}: a TorchScript module without the tensors of an LPIPS VGG16 "
            f"(layers.conv1..13 + lpips0..4 as in NVIDIA's vgg16.pt); it holds {shown}"
        )
    weights = LpipsWeights(convs[0], convs[1], lins, FORMAT_TORCHSCRIPT, (source,), sources)
    return _finish(weights, allow_nonfinite)


# ---------------------------------------------------------------------------------------------
# State dicts (lpips vgg.pth + torchvision vgg16-397923af.pth).
# ---------------------------------------------------------------------------------------------
def _state_dict(path: str | os.PathLike, what: str, limits) -> tuple[str, dict[str, Any]]:
    source = os.fspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(f"{source}: no such file ({what})")
    if _pickle.sniff(source) == "unknown":
        raise UnsupportedFormatError(f"{source}: not a torch.save file ({what})")
    obj = _pickle.load_torch_file(source, limits=limits)
    if isinstance(obj, TorchScriptObject):  # pragma: no cover - extra_allow is not passed
        raise UnsupportedFormatError(f"{source}: a TorchScript archive")
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise UnsupportedFormatError(f"{source}: holds {describe(obj)}, not a state dict ({what})")
    return source, obj


def _is_torchscript(source: str) -> bool:
    """A zip whose members include ``<prefix>/code/`` (False for anything unreadable: the
    reader then reports the damage)."""
    try:
        if not os.path.isfile(source) or _pickle.sniff(source) != "zip":
            return False
        n = _zip_entries(source)
        if n * _ZIPINFO_BYTES > 4 * os.path.getsize(source) + (1 << 20):
            return False
        with zipfile.ZipFile(source) as zf:
            return any("/code/" in name for name in zf.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        return False


def read_state_dicts(
    lin: str | os.PathLike,
    backbone: str | os.PathLike,
    *,
    allow_nonfinite: bool = False,
    limits: _pickle.Limits | None = None,
) -> LpipsWeights:
    """Read the ``lpips`` package's lin weights and a torchvision VGG16 state dict.

    Args:
      lin: ``lpips/weights/v0.1/vgg.pth`` (``lin{k}.model.1.weight``), or a full
        ``lpips.LPIPS(net="vgg")`` state dict.
      backbone: torchvision's ``vgg16-397923af.pth`` (``features.N.weight/bias``), or a full
        ``lpips.LPIPS`` state dict (``net.slice*``).
      allow_nonfinite: accept NaN / infinite weights.
      limits: resource limits (`converters.Limits`), per file.

    Raises:
      UnsupportedFormatError: a file is not a ``torch.save`` state dict (a TorchScript archive
        names the other reader).
      KeyMismatchError, ShapeMismatchError, CorruptCheckpointError: one line naming the file
        and the tensor.
      FileNotFoundError: no such file.
    """
    for path, what in ((lin, "the LPIPS lin weights"), (backbone, "the VGG16 backbone")):
        if _is_torchscript(os.fspath(path)):
            raise UnsupportedFormatError(
                f"{os.fspath(path)}: a TorchScript archive, not a state dict ({what}); "
                "NVIDIA's vgg16.pt is read by load_lpips(path)"
            )
    lin_source, lin_state = _state_dict(lin, "the LPIPS lin weights", limits)
    bb_source, bb_state = _state_dict(backbone, "the VGG16 backbone", limits)
    sources: dict[str, str] = {}
    if any(k.startswith("net.slice") for k in bb_state):
        convs = _convs_from(bb_source, bb_state, _lpips_conv, sources)
    elif any(k.startswith("features.") for k in bb_state):
        convs = _convs_from(bb_source, bb_state, _torchvision_conv, sources)
    elif any(re.fullmatch(r"lin\d\.model\.\d\.weight", k) for k in bb_state):
        raise UnsupportedFormatError(
            f"{bb_source}: holds LPIPS lin weights, not a VGG16 backbone (are lin= and "
            "backbone= swapped?)"
        )
    else:
        raise KeyMismatchError(
            f"{bb_source}: no VGG16 features (features.0.weight ... features.28.bias as in "
            f"torchvision's vgg16-397923af.pth); it holds {sorted(bb_state)[:8]}"
        )
    if not any(k.startswith("lin") for k in lin_state) and any(
        k.startswith("features.") for k in lin_state
    ):
        raise UnsupportedFormatError(
            f"{lin_source}: holds VGG16 features, not LPIPS lin weights (are lin= and "
            "backbone= swapped?)"
        )
    lins = _lins_from(lin_source, lin_state, lambda k: _lin_key(lin_state, k), sources)
    weights = LpipsWeights(
        convs[0], convs[1], lins, FORMAT_STATE_DICTS, (lin_source, bb_source), sources
    )
    return _finish(weights, allow_nonfinite)


__all__ = [
    "BLOCKS",
    "CONV_CHANNELS",
    "FORMAT_STATE_DICTS",
    "FORMAT_TORCHSCRIPT",
    "TAP_CHANNELS",
    "TORCHVISION_INDEX",
    "LpipsWeights",
    "TorchScriptObject",
    "read_state_dicts",
    "read_torchscript",
]
