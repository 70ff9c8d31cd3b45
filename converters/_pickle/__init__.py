"""Restricted, torch-free, resource-bounded readers for pickles and ``torch.save`` files.

Nothing here imports torch or executes code taken from a file. Every global a pickle asks for is
looked up in an explicit allowlist; anything else raises `UnsafePickleError` before it is
called. Tensors come back as NumPy arrays (copied out of their storages).

Every read is bounded **before** anything is allocated (see `Limits`):

* each pickle is pre-scanned opcode by opcode (`pickletools`, nothing is built) before the
  real unpickler runs: declared lengths must fit in the bytes that remain, containers may not
  nest deeper than ``max_depth`` (deep tuples would crash CPython's hash), memo indices and the
  estimated memory of the objects the pickle builds are charged against the file's budget;
* storages are charged against the budget from their declared sizes before they are read; the
  declared size must fit in the rest of the file (legacy and embedded storages) or equal the zip
  member's declared size, which is read with a bounded read (a zip bomb is never inflated);
* a tensor may not have more elements than its storage (stride-0 / overlapping views cannot make
  a small file expand), and its copy is charged against the budget before it is made;
* after unpickling, an iterative walk (no recursion) bounds the nesting depth again (memo tricks
  can hide it from the pre-scan) and refuses reference cycles.

The budget of a file is ``max_expansion * file size + slack_bytes``: a hostile file costs a small
multiple of its own size, whatever it declares. Each violation is a
`CorruptCheckpointError` naming the file and the key (or byte offset).

Formats handled:

* ``torch.save`` zip archives (torch >= 1.6): ``<prefix>/data.pkl`` plus ``<prefix>/data/<key>``
  raw storages;
* legacy (non-zip) ``torch.save`` files: magic number, protocol, sys-info, the object pickle,
  the storage-key list, then ``int64 numel`` + raw bytes for each storage;
* plain pickles whose storages are embedded as legacy blobs through
  ``torch.storage._load_from_bytes`` (NVIDIA ``torch_utils.persistence`` snapshots), and plain
  pickles of NumPy arrays (``numpy.core.multiarray._reconstruct``).

Readers of other pickle formats reuse this machinery: pass their stand-in classes as
``extra_allow`` to `load_pickle` / `load_torch_file` and every limit applies.

The package, by concern (each module reads only the ones above it in this list):
``_limits`` (Limits, the per-load budget, the load context and its ContextVar), ``_streams``
(bounded input streams), ``_standins`` (what a pickle may build), ``_allowlist`` (the callables
and table a pickle may name, the refusal text), ``_opcodes`` and ``_prescan`` (the pre-scan),
``_unpickler`` (the restricted unpickler), ``_walk`` (the materializing walk) and ``_torch``
(the torch.save readers and the entry points).
"""

from __future__ import annotations

from ._limits import DEFAULT_LIMITS, Limits, _describe as describe
from ._standins import EasyDict, Namespace, PersistentObject, TFNetwork
from ._torch import load_pickle, load_torch_file, sniff

__all__ = [
    "DEFAULT_LIMITS",
    "EasyDict",
    "Limits",
    "Namespace",
    "PersistentObject",
    "TFNetwork",
    "describe",
    "load_pickle",
    "load_torch_file",
    "sniff",
]
