"""Generator checkpoints: orbax parameters + ``config.json``; loading from any supported source.

A converted checkpoint is a directory::

    OUT/config.json   {"family": "stylegan2", "config": {...}, "source": {format, path, sha256, which},
                       "format_version": 1}
    OUT/params/       orbax StandardCheckpointer tree of the module state (float32)

It is written to a temporary sibling and renamed into place, so a failed conversion never leaves
a partial ``OUT``. Restores go against an abstract target carrying a sharding.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import converters
from converters.errors import CheckpointError, KeyMismatchError, ShapeMismatchError

from .models.biggan import BigGANConfig, BigGANGenerator
from .models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
PARAMS_DIR = "params"

_FAMILIES = {"stylegan2": (StyleGAN2Config, StyleGAN2Generator),
             "biggan": (BigGANConfig, BigGANGenerator)}


def _family(name: str):
    try:
        return _FAMILIES[name]
    except KeyError:
        raise CheckpointError(f"unknown model family {name!r}; known: {sorted(_FAMILIES)}") from None


def abstract_generator(family: str, config: Mapping[str, Any]) -> nnx.Module:
    """The generator of ``config`` with shapes only (no weights computed)."""
    cfg_cls, gen_cls = _family(family)
    cfg = config if isinstance(config, cfg_cls) else cfg_cls.from_dict(config)
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
    abstract = abstract_generator(family, config)
    want = _flat_state(abstract)
    sources = sources or {}

    def name(k):
        return f"{k} (source key {sources[k]!r})" if k in sources else k

    missing = sorted(set(want) - set(params))
    unexpected = sorted(set(params) - set(want))
    if missing or unexpected:
        raise KeyMismatchError(
            f"{origin}: parameter keys do not match the {family} architecture: "
            f"missing {[name(k) for k in missing]}, unexpected {[name(k) for k in unexpected]}")
    for k, spec in want.items():
        if tuple(np.shape(params[k])) != tuple(spec.shape):
            raise ShapeMismatchError(
                f"{origin}: {name(k)} has shape {tuple(np.shape(params[k]))}, the architecture "
                f"needs {tuple(spec.shape)}")
    state = nnx.state(abstract)
    nnx.replace_by_pure_dict(
        state, _unflatten({k: jnp.asarray(np.asarray(params[k]), jnp.float32) for k in want}))
    graphdef = nnx.graphdef(abstract)
    return nnx.merge(graphdef, state)


def save_generator(gen: nnx.Module, out_dir: str | os.PathLike, *, source: Mapping | None = None,
                   overwrite: bool = False) -> str:
    """Write ``gen`` as ``OUT/config.json`` + ``OUT/params`` (orbax), atomically. Returns OUT."""
    import orbax.checkpoint as ocp

    out = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True / --force to replace it)")
    family = _family_of(gen)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".jaxedit-tmp-", dir=parent)
    try:
        state = nnx.to_pure_dict(nnx.state(gen))
        ckptr = ocp.StandardCheckpointer()
        ckptr.save(os.path.join(tmp, PARAMS_DIR), state)
        ckptr.wait_until_finished()
        ckptr.close()
        meta = {"family": family, "format_version": FORMAT_VERSION,
                "config": gen.config.to_dict(), "source": dict(source or {})}
        with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _family_of(gen: nnx.Module) -> str:
    for name, (_, cls) in _FAMILIES.items():
        if isinstance(gen, cls):
            return name
    raise TypeError(f"not a jaxedit generator: {type(gen).__name__}")


def read_config(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a converted checkpoint directory."""
    path = os.path.join(os.fspath(ckpt_dir), CONFIG_FILE)
    try:
        with open(path) as f:
            meta = json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    for key in ("family", "config"):
        if key not in meta:
            raise CheckpointError(f"{path}: missing field {key!r}")
    return meta


def _restore_dir(ckpt_dir: str) -> nnx.Module:
    import orbax.checkpoint as ocp

    ckpt_dir = os.path.abspath(ckpt_dir)
    meta = read_config(ckpt_dir)
    try:
        abstract = abstract_generator(meta["family"], meta["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{ckpt_dir}/{CONFIG_FILE}: invalid config ({e})") from e
    graphdef, state = nnx.split(abstract)
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
                          nnx.to_pure_dict(state))
    params_dir = os.path.join(ckpt_dir, PARAMS_DIR)
    if not os.path.isdir(params_dir):
        raise CheckpointError(f"{ckpt_dir}: no {PARAMS_DIR}/ directory")
    ckptr = ocp.StandardCheckpointer()
    try:
        restored = ckptr.restore(params_dir, target)
    except (ValueError, KeyError, FileNotFoundError) as e:
        raise CheckpointError(f"{params_dir}: cannot restore parameters ({e})") from e
    finally:
        ckptr.close()
    nnx.replace_by_pure_dict(state, restored)
    return nnx.merge(graphdef, state)


def load_generator(path: str | os.PathLike, which: str | None = None) -> nnx.Module:
    """Load a generator from a converted directory or a source checkpoint file.

    Args:
      path: a directory written by ``jaxedit convert`` / :func:`save_generator`, an NVIDIA
        StyleGAN2 ``.pkl`` (stylegan2-ada-pytorch, or the official TensorFlow releases), a
        rosinality ``.pt``, a Hammer / ReSeFa ``.pth``, or a pytorch-pretrained-BigGAN directory
        (``pytorch_model.bin`` + ``config.json``) (converted in memory; nothing executed).
      which: network to take from a multi-network source file (``G_ema`` by default; ``Gs``
        for TF pickles; ``generator_smooth`` if present for Hammer files).
    """
    path = os.fspath(path)
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, converters.biggan.WEIGHTS_NAME)):
        if os.path.isfile(os.path.join(path, CONFIG_FILE)) and os.path.isdir(
                os.path.join(path, PARAMS_DIR)):
            return _restore_dir(path)
        raise CheckpointError(f"{path}: not a jaxedit checkpoint directory (no {CONFIG_FILE} + "
                              f"{PARAMS_DIR}/) nor a BigGAN one (no {converters.biggan.WEIGHTS_NAME})")
    conv = converters.read_checkpoint(path, which)
    return generator_from_converted(conv)


def generator_from_converted(conv: converters.ConvertedCheckpoint) -> nnx.Module:
    """Build the generator of a :class:`converters.ConvertedCheckpoint`."""
    return generator_from_arrays(conv.family, conv.config, conv.params, conv.sources,
                                 origin=conv.source_path)


def convert_checkpoint(src: str | os.PathLike, out_dir: str | os.PathLike, which: str | None = None,
                       overwrite: bool = False) -> str:
    """Convert a source checkpoint file into a jaxedit checkpoint directory. Returns OUT."""
    conv = converters.read_checkpoint(src, which)
    gen = generator_from_converted(conv)
    return save_generator(gen, out_dir, source=conv.source_info(), overwrite=overwrite)
