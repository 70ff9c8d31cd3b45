"""Deprecated location: moved to ``jaxedit.toyfaces.default`` (beside the weights it loads).

``jaxedit.default_generator`` and ``jaxedit.random_generator`` stay the public names; this alias
module is kept only while ``jaxedit.cli`` / ``jaxedit.demo`` still import from it.
"""

from .toyfaces.default import (  # noqa: F401
    RANDOM_SEED,
    WEIGHTS_DIR,
    default_generator,
    random_config,
    random_generator,
)
