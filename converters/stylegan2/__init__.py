"""StyleGAN2 readers, one per source format, over one jaxedit-side layout.

Each reader module has ``FORMAT`` (its format name), ``sniff`` (whether a file's first bytes,
or the loaded torch object for ``torch.save`` formats, are of that format; ``converters``'
dispatcher asks them in order), ``infer_config`` (the architecture from the tensors and the
file's own records), ``key_table`` (``{jaxedit key: (source key, transform)}`` and the
recomputable buffers to check) and ``read`` (a file into a ``ConvertedCheckpoint``); ``_layout``
holds the jaxedit-side key names and layer counting they share.

- `nvidia`: NVIDIA stylegan2-ada-pytorch / stylegan3-repo ``.pkl`` (``"nvidia-pkl"``);
- `nvidia_tf`: NVIDIA's TensorFlow StyleGAN2 ``.pkl`` (``"nvidia-tf-pkl"``);
- `rosinality`: rosinality/stylegan2-pytorch ``.pt`` (``"rosinality-pt"``);
- `hammer`: Hammer / ReSeFa ``.pth`` (``"hammer-pth"``).
"""

from __future__ import annotations

from . import hammer, nvidia, nvidia_tf, rosinality

__all__ = ["hammer", "nvidia", "nvidia_tf", "rosinality"]
