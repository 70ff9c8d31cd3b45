"""Generator checkpoints: orbax parameters + ``config.json``; loading from any supported source.

A converted checkpoint is a directory::

    OUT/config.json   {"family": "stylegan2", "config": {...}, "format_version": 2,
                       "source": {format, path, sha256, which},
                       "param_files": {"params/<file>": sha256, ...}, "config_sha256": ...}
    OUT/params/       orbax StandardCheckpointer tree of the module state (float32)

It is written to a temporary sibling and renamed into place, so a failed conversion never leaves
a partial ``OUT``. Loading verifies every parameter file against its recorded SHA-256 (and the
architecture fields against ``config_sha256``) before orbax reads anything (``verify=False``
skips this); orbax / TensorStore failures become one-line `CorruptCheckpointError` s.
Replacing (``overwrite=True`` / ``--force``) is allowed only for a directory that is itself a
jaxedit checkpoint (``config.json`` + ``params/`` and nothing else): the new checkpoint is
written beside it, the old one is renamed to a temporary sibling, the new one renamed into place,
and only then is that temporary sibling removed. Nothing else is ever deleted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import converters
from converters.errors import (
    CheckpointError,
    CorruptCheckpointError,
    KeyMismatchError,
    ShapeMismatchError,
)

from .models import FAMILIES, AbstractGenerator, BigGANGenerator, StyleGAN2Generator
from .models.stylegan3 import StyleGAN3Generator

FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
PARAMS_DIR = "params"
CHECKSUMS_KEY = "param_files"
CONFIG_DIGEST_KEY = "config_sha256"
_HEX64 = re.compile(r"[0-9a-f]{64}")
# What orbax's StandardCheckpointer writes at the top of params/ (for format_version 1
# checkpoints, which recorded no file list).
_ORBAX_TOP = re.compile(
    r"_METADATA|_CHECKPOINT_METADATA|_sharding|manifest\.ocdbt|"
    r"commit_success\.txt|descriptor|array_metadatas|d|ocdbt\.process_\d+"
)


def _family(name: str):
    try:
        return FAMILIES[name]
    except KeyError:
        raise CheckpointError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}") from None


def abstract_generator(
    family: str, config: Mapping[str, Any], origin: str = "config"
) -> nnx.Module:
    """The generator of ``config`` with shapes only (no weights computed).

    Raises CorruptCheckpointError (naming ``origin``) when ``config`` is not a valid config.
    """
    cfg_cls, gen_cls = _family(family)
    try:
        cfg: Any = config if isinstance(config, cfg_cls) else cfg_cls.from_dict(config)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
        raise CorruptCheckpointError(f"{origin}: invalid {family} config ({e})") from None
    return nnx.eval_shape(lambda: gen_cls(cfg, rngs=nnx.Rngs(0)))


def _flat_state(module: nnx.Module) -> dict[str, Any]:
    pure = nnx.to_pure_dict(nnx.state(module))
    return {"/".join(map(str, k)): v for k, v in _flatten(pure)}


def _flatten(tree, prefix=()):
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            yield from _flatten(v, prefix + (k,))
    else:
        yield prefix, tree


def _unflatten(flat: Mapping[str, Any]) -> dict:
    out: dict = {}
    for key, v in flat.items():
        node = out
        *parents, leaf = key.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def validate_arrays(
    family: str,
    config: Mapping[str, Any],
    params: Mapping[str, Any],
    sources: Mapping[str, str] | None = None,
    origin: str = "checkpoint",
) -> nnx.Module:
    """Check flat ``{"a/b/c": array}`` params against the architecture of ``config``.

    Returns the abstract (shape-only) generator. Raises KeyMismatchError / ShapeMismatchError
    naming the jaxedit key and its source key, CorruptCheckpointError for an invalid config.
    """
    abstract = abstract_generator(family, config, origin)
    want = _flat_state(abstract)
    sources = sources or {}

    def name(k):
        return f"{k} (source key {sources[k]!r})" if k in sources else k

    missing = sorted(set(want) - set(params))
    unexpected = sorted(set(params) - set(want))
    if missing or unexpected:
        raise KeyMismatchError(
            f"{origin}: parameter keys do not match the {family} architecture: "
            f"missing {[name(k) for k in missing]}, unexpected {[name(k) for k in unexpected]}"
        )
    for k, spec in want.items():
        if tuple(np.shape(params[k])) != tuple(spec.shape):
            raise ShapeMismatchError(
                f"{origin}: {name(k)} has shape {tuple(np.shape(params[k]))}, the architecture "
                f"needs {tuple(spec.shape)}"
            )
    return abstract


def generator_from_arrays(
    family: str,
    config: Mapping[str, Any],
    params: Mapping[str, np.ndarray],
    sources: Mapping[str, str] | None = None,
    origin: str = "checkpoint",
) -> nnx.Module:
    """Build a generator from flat ``{"a/b/c": array}`` params with strict key and shape checks.

    Raises KeyMismatchError / ShapeMismatchError naming the jaxedit key and its source key.
    """
    abstract = validate_arrays(family, config, params, sources, origin)
    want = _flat_state(abstract)
    state = nnx.state(abstract)
    nnx.replace_by_pure_dict(
        state, _unflatten({k: jnp.asarray(np.asarray(params[k]), jnp.float32) for k in want})
    )
    graphdef = nnx.graphdef(abstract)
    return nnx.merge(graphdef, state)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _list_files(ckpt_dir: str) -> list[str]:
    """``params/...`` paths (``/``-separated) of every file below ``ckpt_dir/params``.

    Raises CorruptCheckpointError for symbolic links and special files (none are written).
    """
    out = []
    params = os.path.join(ckpt_dir, PARAMS_DIR)
    for root, dirs, files in os.walk(params):
        for name in dirs + files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, ckpt_dir).replace(os.sep, "/")
            if os.path.islink(full):
                raise CorruptCheckpointError(
                    f"{ckpt_dir}: {rel} is a symbolic link; jaxedit "
                    "checkpoints hold only regular files"
                )
            if name in files:
                if not os.path.isfile(full):
                    raise CorruptCheckpointError(f"{ckpt_dir}: {rel} is not a regular file")
                out.append(rel)
    return sorted(out)


def _config_digest(meta: Mapping[str, Any]) -> str:
    core = {k: meta.get(k) for k in ("family", "config", "format_version", CHECKSUMS_KEY)}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()


def verify_checkpoint(ckpt_dir: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> None:
    """Check every parameter file of a converted checkpoint against its recorded SHA-256.

    Also checks that no file was added or removed under ``params/`` and that the architecture
    fields of ``config.json`` are those written at conversion (``config_sha256``). Checkpoints
    of format_version 1 recorded no checksums: they pass with a warning.

    Raises:
      CorruptCheckpointError: naming the file that differs, is missing or was added.
    """
    ckpt_dir = os.path.abspath(os.fspath(ckpt_dir))
    meta = read_config(ckpt_dir) if meta is None else meta
    recorded = meta.get(CHECKSUMS_KEY)
    cfg_path = os.path.join(ckpt_dir, CONFIG_FILE)
    if recorded is None and meta.get("format_version", 1) == 1:
        warnings.warn(
            f"{ckpt_dir}: written by an older jaxedit without checksums; its parameter "
            "files cannot be verified (convert the source again to get them)",
            stacklevel=3,
        )
        return
    if not isinstance(recorded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _HEX64.fullmatch(v)
        for k, v in recorded.items()
    ):
        raise CorruptCheckpointError(
            f"{cfg_path}: {CHECKSUMS_KEY!r} is missing or malformed; "
            "cannot verify the parameter files"
        )
    if meta.get(CONFIG_DIGEST_KEY) != _config_digest(meta):
        raise CorruptCheckpointError(
            f"{cfg_path}: the architecture fields were edited after conversion (their "
            f"{CONFIG_DIGEST_KEY} no longer matches); convert the source again, or pass "
            "verify=False to load it as it is"
        )
    actual = _list_files(ckpt_dir)
    missing = sorted(set(recorded) - set(actual))
    extra = sorted(set(actual) - set(recorded))
    if missing or extra:
        raise CorruptCheckpointError(
            f"{ckpt_dir}: parameter files differ from those recorded in {CONFIG_FILE}: "
            f"missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for rel in actual:
        got = _sha256(os.path.join(ckpt_dir, rel))
        if got != recorded[rel]:
            raise CorruptCheckpointError(
                f"{ckpt_dir}/{rel}: SHA-256 {got[:16]}... differs from the "
                f"{recorded[rel][:16]}... recorded in {CONFIG_FILE}: the parameter file was "
                "modified or damaged (pass verify=False to load it anyway)"
            )


def is_jaxedit_checkpoint(path: str | os.PathLike) -> tuple[bool, str]:
    """(whether ``path`` is a directory holding a jaxedit checkpoint and nothing else, why not).

    Holding nothing else means: exactly ``config.json`` (a jaxedit config) and ``params/``,
    whose files are the ones recorded in ``config.json`` (format_version 2) or only orbax's
    (format_version 1); no symbolic links anywhere.
    """
    path = os.fspath(path)
    if os.path.islink(path):
        return False, "it is a symbolic link"
    if not os.path.isdir(path):
        return False, "it is not a directory"
    entries = sorted(os.listdir(path))
    if entries != sorted([CONFIG_FILE, PARAMS_DIR]):
        others = [e for e in entries if e not in (CONFIG_FILE, PARAMS_DIR)]
        if others:
            return False, f"it holds other files ({others[:5]})"
        return False, f"it has no {CONFIG_FILE} + {PARAMS_DIR}/"
    cfg, params = os.path.join(path, CONFIG_FILE), os.path.join(path, PARAMS_DIR)
    if (
        os.path.islink(cfg)
        or not os.path.isfile(cfg)
        or os.path.islink(params)
        or not os.path.isdir(params)
    ):
        return False, f"its {CONFIG_FILE} / {PARAMS_DIR} are not a file and a directory"
    try:
        meta = read_config(path)
        files = _list_files(path)
    except (CheckpointError, OSError) as e:
        return False, str(e)
    if meta.get("family") not in FAMILIES:
        return False, f"its {CONFIG_FILE} names no jaxedit model family"
    recorded = meta.get(CHECKSUMS_KEY)
    if isinstance(recorded, dict):
        if sorted(recorded) != files:
            return False, f"its {PARAMS_DIR}/ holds files that jaxedit did not write"
    elif meta.get("format_version", 1) == 1:
        tops = {f.split("/")[1] for f in files}
        if not tops or not all(_ORBAX_TOP.fullmatch(t) for t in tops):
            return False, f"its {PARAMS_DIR}/ holds files that are not an orbax checkpoint"
    else:
        return False, f"its {CONFIG_FILE} has no {CHECKSUMS_KEY}"
    return True, ""


def _refuse(out: str, why: str) -> FileExistsError:
    return FileExistsError(
        f"{out}: refusing to replace it: {why}. --force / overwrite=True only replaces a "
        f"directory that is itself a jaxedit checkpoint ({CONFIG_FILE} + {PARAMS_DIR}/ and "
        "nothing else); nothing was changed"
    )


def save_generator(
    gen: nnx.Module,
    out_dir: str | os.PathLike,
    *,
    source: Mapping | None = None,
    overwrite: bool = False,
) -> str:
    """Write ``gen`` as ``OUT/config.json`` + ``OUT/params`` (orbax), atomically. Returns OUT.

    An existing ``OUT`` is an error unless ``overwrite=True``, and even then it is replaced only
    if it is itself a jaxedit checkpoint and neither the working directory nor one of its
    ancestors (anything else raises FileExistsError and is left untouched). A symbolic link is
    followed to its target.
    """
    import orbax.checkpoint as ocp

    out = os.path.abspath(os.fspath(out_dir))
    if os.path.islink(out):
        if not os.path.exists(out):
            raise _refuse(out, "it is a broken symbolic link")
        out = os.path.realpath(out)
    if os.path.lexists(out):
        if not overwrite:
            raise FileExistsError(
                f"{out} already exists (pass overwrite=True / --force to "
                "replace a jaxedit checkpoint)"
            )
        cwd = os.path.realpath(os.getcwd())
        real = os.path.realpath(out)
        if cwd == real or cwd.startswith(real.rstrip(os.sep) + os.sep):
            raise _refuse(out, "it is the current working directory or one of its parents")
        ok, why = is_jaxedit_checkpoint(out)
        if not ok:
            raise _refuse(out, why)
    family = _family_of(gen)
    assert isinstance(gen, (StyleGAN2Generator, StyleGAN3Generator, BigGANGenerator))
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".jaxedit-new-", dir=parent)
    try:
        state = nnx.to_pure_dict(nnx.state(gen))
        ckptr = ocp.StandardCheckpointer()
        ckptr.save(os.path.join(tmp, PARAMS_DIR), state)
        ckptr.wait_until_finished()
        ckptr.close()
        meta = {
            "family": family,
            "format_version": FORMAT_VERSION,
            "config": gen.config.to_dict(),
            "source": dict(source or {}),
        }
        meta[CHECKSUMS_KEY] = {rel: _sha256(os.path.join(tmp, rel)) for rel in _list_files(tmp)}
        meta = json.loads(json.dumps(meta))  # the digest covers what a reader will see
        meta[CONFIG_DIGEST_KEY] = _config_digest(meta)
        with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
        if os.path.lexists(out):
            _swap_in(tmp, out, parent)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary directory
        raise
    return out


def _swap_in(new: str, out: str, parent: str) -> None:
    """Replace the (verified) jaxedit checkpoint ``out`` by ``new``: rename the old one to a
    temporary sibling, rename the new one into place, then remove that temporary sibling."""
    old = tempfile.mkdtemp(prefix=".jaxedit-old-", dir=parent)
    os.rename(out, old)  # replaces the empty directory just made
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old, out)  # put the original back
        raise
    ok, why = is_jaxedit_checkpoint(old)
    if not ok:  # changed between the check and the rename: keep it, never delete user data
        warnings.warn(
            f"the checkpoint replaced at {out} changed while it was being replaced "
            f"({why}); it was kept at {old}",
            stacklevel=3,
        )
        return
    shutil.rmtree(old)  # the temporary directory made above, holding the replaced checkpoint


def _family_of(gen: nnx.Module) -> str:
    if isinstance(gen, AbstractGenerator) and isinstance(
        gen, FAMILIES.get(gen.family, ((), ()))[1]
    ):
        return gen.family
    raise TypeError(f"not a jaxedit generator: {type(gen).__name__}")


def read_config(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a converted checkpoint directory.

    Raises CheckpointError ("not a jaxedit checkpoint") when the directory has no config.json,
    CorruptCheckpointError when it is not a jaxedit config.
    """
    ckpt_dir = os.fspath(ckpt_dir)
    path = os.path.join(ckpt_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise CheckpointError(f"{ckpt_dir}: not a jaxedit checkpoint (no {CONFIG_FILE})")
    try:
        if os.path.getsize(path) > 16 << 20:
            raise CorruptCheckpointError(f"{path}: larger than 16 MiB; not a jaxedit config")
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise CorruptCheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CorruptCheckpointError(f"{path}: not a JSON object")
    for key in ("family", "config"):
        if key not in meta:
            raise CorruptCheckpointError(f"{path}: missing field {key!r}")
    if not isinstance(meta["config"], dict) or meta["family"] not in FAMILIES:
        raise CorruptCheckpointError(
            f"{path}: not a jaxedit config (family {str(meta['family'])[:40]!r})"
        )
    return meta


def _orbax_reason(e: BaseException) -> str:
    """One short line from an orbax / TensorStore error (no spec dump, no option advice)."""
    text = str(e).split("[tensorstore_spec")[0].strip() or type(e).__name__
    text = " ".join(text.split())
    sentences = [
        t
        for t in re.split(r"(?<=\.)\s+", text)
        if not re.search(
            r"strict=False|ArrayRestoreArgs|enable_padding_and_truncation|"
            r"v[01] API",
            t,
        )
    ]
    text = " ".join(sentences)
    return text[:300] + ("..." if len(text) > 300 else "")


def _stored_tree(params_dir: str) -> dict[str, Any] | None:
    """``{"a/b/c": (shape, dtype)}`` of what params/ holds (from orbax's metadata), or None."""
    import orbax.checkpoint as ocp

    ckptr = ocp.StandardCheckpointer()
    try:
        item = ckptr.metadata(params_dir).item_metadata
        if item is None:
            raise ValueError("no item metadata")
        tree = item.tree
    except Exception as e:  # orbax raises many types; reported as one line
        raise CorruptCheckpointError(
            f"{params_dir}: cannot read the checkpoint metadata ({_orbax_reason(e)})"
        ) from None
    finally:
        ckptr.close()
    if not isinstance(tree, Mapping):
        return None
    return {
        "/".join(map(str, k)): (tuple(getattr(v, "shape", ())), getattr(v, "dtype", None))
        for k, v in _flatten(tree)
    }


def _restore_dir(ckpt_dir: str, verify: bool = True) -> nnx.Module:
    import orbax.checkpoint as ocp

    ckpt_dir = os.path.abspath(ckpt_dir)
    meta = read_config(ckpt_dir)
    params_dir = os.path.join(ckpt_dir, PARAMS_DIR)
    if not os.path.isdir(params_dir):
        raise CorruptCheckpointError(
            f"{ckpt_dir}: has a {CONFIG_FILE} but no {PARAMS_DIR}/ "
            "directory (an incomplete jaxedit checkpoint)"
        )
    abstract = abstract_generator(meta["family"], meta["config"], f"{ckpt_dir}/{CONFIG_FILE}")
    if verify:
        verify_checkpoint(ckpt_dir, meta)
    graphdef, state = nnx.split(abstract)
    want = {k: tuple(v.shape) for k, v in _flat_state(abstract).items()}
    stored = _stored_tree(params_dir)
    if stored is not None:
        missing = sorted(set(want) - set(stored))
        unexpected = sorted(set(stored) - set(want))
        if missing or unexpected:
            raise KeyMismatchError(
                f"{params_dir}: the stored parameters do not match the architecture in "
                f"{CONFIG_FILE}: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        for k, shape in want.items():
            if stored[k][0] != shape:
                raise ShapeMismatchError(
                    f"{params_dir}: {k} is stored with shape {stored[k][0]}, the architecture "
                    f"in {CONFIG_FILE} needs {shape}"
                )
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), nnx.to_pure_dict(state)
    )
    ckptr = ocp.StandardCheckpointer()
    try:
        restored = ckptr.restore(params_dir, target)
    except Exception as e:  # orbax / TensorStore raise many types, with multi-KB messages
        err = CorruptCheckpointError(
            f"{params_dir}: cannot restore the parameters ({_orbax_reason(e)})"
        )
        err.original_error = e  # the full orbax error, for debugging
        raise err from None
    finally:
        ckptr.close()
    nnx.replace_by_pure_dict(state, restored)
    return nnx.merge(graphdef, state)


def _is_converted_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.path.isfile(
        os.path.join(path, converters.biggan.WEIGHTS_NAME)
    )


def _not_a_checkpoint_dir(path: str) -> CheckpointError:
    has_cfg = os.path.isfile(os.path.join(path, CONFIG_FILE))
    has_params = os.path.isdir(os.path.join(path, PARAMS_DIR))
    if has_params and not has_cfg:
        return CorruptCheckpointError(
            f"{path}: not a jaxedit checkpoint: it has {PARAMS_DIR}/ but no {CONFIG_FILE}"
        )
    return CheckpointError(
        f"{path}: not a jaxedit checkpoint (no {CONFIG_FILE} + {PARAMS_DIR}/) "
        f"nor a BigGAN one (no {converters.biggan.WEIGHTS_NAME})"
    )


def load_generator(
    path: str | os.PathLike,
    which: str | None = None,
    *,
    verify: bool = True,
    allow_nonfinite: bool = False,
) -> nnx.Module:
    """Load a generator from a converted directory or a source checkpoint file.

    Args:
      path: a directory written by ``jaxedit convert`` / `save_generator`, an NVIDIA
        StyleGAN2 ``.pkl`` (stylegan2-ada-pytorch, or the official TensorFlow releases), a
        rosinality ``.pt``, a Hammer / ReSeFa ``.pth``, or a pytorch-pretrained-BigGAN directory
        (``pytorch_model.bin`` + ``config.json``) (converted in memory; nothing executed).
      which: network to take from a multi-network source file (``G_ema`` by default; ``Gs``
        for TF pickles; ``generator_smooth`` if present for Hammer files).
      verify: check a converted directory's files against their recorded SHA-256 first
        (``False`` skips it, for speed).
      allow_nonfinite: accept a source file whose parameters hold NaN or infinity.
    """
    path = os.fspath(path)
    if _is_converted_dir(path):
        if os.path.isfile(os.path.join(path, CONFIG_FILE)):
            return _restore_dir(path, verify=verify)
        raise _not_a_checkpoint_dir(path)
    conv = converters.read_checkpoint(path, which, allow_nonfinite=allow_nonfinite)
    return generator_from_converted(conv)


def generator_from_converted(conv: converters.ConvertedCheckpoint) -> nnx.Module:
    """Build the generator of a `converters.ConvertedCheckpoint`."""
    return generator_from_arrays(
        conv.family, conv.config, conv.params, conv.sources, origin=conv.source_path
    )


def convert_checkpoint(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    which: str | None = None,
    overwrite: bool = False,
    *,
    allow_nonfinite: bool = False,
) -> str:
    """Convert a source checkpoint file into a jaxedit checkpoint directory. Returns OUT.

    ``overwrite=True`` replaces ``out_dir`` only if it is itself a jaxedit checkpoint (see
    `save_generator`); ``allow_nonfinite=True`` accepts NaN / infinite parameters.
    """
    conv = converters.read_checkpoint(src, which, allow_nonfinite=allow_nonfinite)
    gen = generator_from_converted(conv)
    return save_generator(gen, out_dir, source=conv.source_info(), overwrite=overwrite)


@dataclasses.dataclass
class CheckpointInfo:
    """What `inspect_checkpoint` found; every check that converting / loading makes passed.

    Attributes:
      path: the checkpoint inspected.
      kind: ``"source"`` (a file to convert) or ``"converted"`` (a jaxedit directory).
      family: ``"stylegan2"`` or ``"biggan"``.
      config: the architecture fields.
      num_values: number of parameter values.
      converted: the source's `converters.ConvertedCheckpoint` (``kind == "source"``).
      meta: the directory's ``config.json`` (``kind == "converted"``).
      verified: whether parameter files were checked against recorded SHA-256 sums.
      layers, notes: StyleGAN3 only: ``StyleGAN3Config.layer_summary()`` and ``.notes()``.
    """

    path: str
    kind: str
    family: str
    config: dict[str, Any]
    num_values: int
    converted: converters.ConvertedCheckpoint | None = None
    meta: dict[str, Any] | None = None
    verified: bool = False
    layers: list[dict[str, Any]] | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def inspect_checkpoint(
    path: str | os.PathLike,
    which: str | None = None,
    *,
    allow_nonfinite: bool = False,
    verify: bool = True,
) -> CheckpointInfo:
    """Validate a checkpoint exactly as converting / loading it would, without building weights.

    A source file is read (restricted unpickler, resource limits), its keys mapped with strict
    coverage, its values checked finite (unless ``allow_nonfinite``) and every shape checked
    against the generator its config describes. A converted directory has its config validated,
    its parameter files checked against their SHA-256 (unless ``verify=False``) and the stored
    tree's keys and shapes checked against the architecture.

    Raises the same typed errors as `convert_checkpoint` / `load_generator`.
    """
    path = os.fspath(path)
    if _is_converted_dir(path):
        if not os.path.isfile(os.path.join(path, CONFIG_FILE)):
            raise _not_a_checkpoint_dir(path)
        ckpt_dir = os.path.abspath(path)
        meta = read_config(ckpt_dir)
        params_dir = os.path.join(ckpt_dir, PARAMS_DIR)
        if not os.path.isdir(params_dir):
            raise CorruptCheckpointError(
                f"{ckpt_dir}: has a {CONFIG_FILE} but no {PARAMS_DIR}/ "
                "directory (an incomplete jaxedit checkpoint)"
            )
        abstract = abstract_generator(meta["family"], meta["config"], f"{ckpt_dir}/{CONFIG_FILE}")
        verified = False
        if verify:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                verify_checkpoint(ckpt_dir, meta)
            verified = not caught
            for w in caught:
                warnings.warn(w.message, stacklevel=2)
        want = {k: tuple(v.shape) for k, v in _flat_state(abstract).items()}
        stored = _stored_tree(params_dir)
        if stored is not None and {k: v[0] for k, v in stored.items()} != want:
            bad = sorted(set(want) ^ set(stored)) or sorted(
                k for k in want if stored[k][0] != want[k]
            )
            raise ShapeMismatchError(
                f"{params_dir}: the stored parameters do not match the "
                f"architecture in {CONFIG_FILE} (first: {bad[:3]})"
            )
        return CheckpointInfo(
            path=ckpt_dir,
            kind="converted",
            family=meta["family"],
            config=meta["config"],
            num_values=sum(int(np.prod(s)) for s in want.values()),
            meta=meta,
            verified=verified,
            **_layer_info(abstract),
        )
    conv = converters.read_checkpoint(path, which, allow_nonfinite=allow_nonfinite)
    abstract = validate_arrays(
        conv.family, conv.config, conv.params, conv.sources, origin=conv.source_path
    )
    return CheckpointInfo(
        path=conv.source_path,
        kind="source",
        family=conv.family,
        config=conv.config,
        num_values=sum(int(np.prod(np.shape(v))) for v in conv.params.values()),
        converted=conv,
        **_layer_info(abstract),
    )


def _layer_info(gen: nnx.Module) -> dict[str, Any]:  # CheckpointInfo's layers, notes
    if not isinstance(gen, StyleGAN3Generator):
        return {}
    return {"layers": gen.config.layer_summary(), "notes": gen.config.notes()}
