"""StyleGAN3 (configs T and R) readers over one jaxedit-side layout.

- `nvidia`: NVIDIA stylegan3-repo ``.pkl`` (``"nvidia-pkl"``; also `nvidia.from_state_dict`
  for an NVIDIA-named state dict plus init kwargs);
- `hammer`: Hammer / ReSeFa StyleGAN3 ``.pth`` (``"hammer-pth"``);
- `design`: the layer geometry and low-pass filter design both readers check against.
"""

from __future__ import annotations

from . import design, hammer, nvidia

__all__ = ["design", "hammer", "nvidia"]
