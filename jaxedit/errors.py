"""Every error and warning jaxedit raises, in one place (the ground floor: imports nothing of
jaxedit's but the NumPy-only ``converters.errors``).

Hierarchy::

    JaxeditWarning (UserWarning)
    ├── ConvergenceWarning          an iterative solver stopped before its tolerance
    ├── SingularBackgroundWarning   M_b is numerically singular
    ├── ComplexEigenpairsWarning    the reference eig returned complex pairs
    ├── KMeansConvergenceWarning    spherical k-means hit max_iter
    └── PandaConvergenceWarning     PandA's loss still falling (or non-finite) at the end

    OutputError (OSError)           an output path jaxedit will not write
    └── OutputExistsError           ... because it exists and overwriting was not asked for

    ImageFileError (ValueError)     an input image file jaxedit will not read (load_images)
    AmbiguousRegionError (ValueError)  a short region name of several preset sets ("eyes")

    CheckpointError (ValueError)    from ``converters.errors``: UnsafePickleError,
                                    CorruptCheckpointError, NonFiniteParameterError,
                                    UnsupportedFormatError, KeyMismatchError, ShapeMismatchError
"""

from __future__ import annotations

from converters.errors import (
    CheckpointError,
    CorruptCheckpointError,
    KeyMismatchError,
    NonFiniteParameterError,
    ShapeMismatchError,
    UnsafePickleError,
    UnsupportedFormatError,
)


class JaxeditWarning(UserWarning):
    """Base class of every warning jaxedit issues (filter them all with this one class)."""


class ConvergenceWarning(JaxeditWarning):
    """An iterative solver stopped before its residuals reached the tolerance."""


class SingularBackgroundWarning(JaxeditWarning):
    """M_b is (numerically) singular: directions are unreliable without regularization."""


class ComplexEigenpairsWarning(JaxeditWarning):
    """The reference ``eig(inv(M_b) @ M_f)`` returned complex eigenpairs (real parts were kept)."""


class KMeansConvergenceWarning(JaxeditWarning):
    """Spherical k-means stopped at ``max_iter`` before its stopping rule was met."""


class PandaConvergenceWarning(JaxeditWarning, RuntimeWarning):
    """The loss was still falling at the end of PandA's ``fit`` (or became non-finite)."""


class AmbiguousRegionError(ValueError):
    """A short region name that several preset sets have (``"eyes"``: ``ffhq/eyes`` and
    ``toyfaces/eyes``) and nothing says which is meant: name it in full."""


class OutputError(OSError):
    """An output path jaxedit will not write: a directory, a special file, a missing or
    unwritable parent directory, or (``OutputExistsError``) an existing file."""


class OutputExistsError(OutputError, FileExistsError):
    """The output file exists and overwriting was not asked for (``overwrite=True`` / ``--force``)."""


class ImageFileError(ValueError):
    """An input image file that `jaxedit.load_images` will not read: empty, not an image of a
    supported format, damaged, of zero size, larger than the pixel limit (a decompression
    bomb), or of a pixel mode it cannot convert. The message names the file."""


__all__ = [
    "AmbiguousRegionError",
    "CheckpointError",
    "ComplexEigenpairsWarning",
    "ConvergenceWarning",
    "CorruptCheckpointError",
    "ImageFileError",
    "JaxeditWarning",
    "KMeansConvergenceWarning",
    "KeyMismatchError",
    "NonFiniteParameterError",
    "OutputError",
    "OutputExistsError",
    "PandaConvergenceWarning",
    "ShapeMismatchError",
    "SingularBackgroundWarning",
    "UnsafePickleError",
    "UnsupportedFormatError",
]
