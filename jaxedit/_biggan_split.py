"""Deprecated location: moved to ``jaxedit.models._biggan_split``; use the generator protocol
(``gen.feature_layers``, ``gen.resolve_layer``, ``gen.features_at``, ``gen.resume_at``).

Kept only until ``panda`` switches to the protocol; remove then.
"""

from .models._biggan_split import layer_names, resolve, resume, split  # noqa: F401


def is_biggan(gen) -> bool:
    """Whether ``gen`` is a BigGAN (the protocol's ``family``)."""
    return getattr(gen, "family", None) == "biggan"
