"""Typed errors raised while reading or converting checkpoints.

Every error names the file and, where there is one, the key or shape involved, so a user can see
what is wrong with their checkpoint without a debugger.
"""

from __future__ import annotations


class CheckpointError(ValueError):
    """Base class: a checkpoint file could not be read or converted."""


class UnsafePickleError(CheckpointError):
    """The pickle asks for a global that is not on the allowlist; nothing was executed."""


class CorruptCheckpointError(CheckpointError):
    """The file is truncated, damaged or internally inconsistent."""

    #: the underlying library error, where one was wrapped (for debugging).
    original_error: BaseException | None = None


class NonFiniteParameterError(CorruptCheckpointError):
    """A parameter holds NaN or infinite values (``allow_nonfinite=True`` accepts them)."""


class UnsupportedFormatError(CheckpointError):
    """The file is readable but is not a format (or network) jaxedit can convert."""


class KeyMismatchError(CheckpointError):
    """Keys are missing from, or unexpected in, a state dict or parameter tree."""


class ShapeMismatchError(CheckpointError):
    """A tensor has a shape other than the architecture requires."""
