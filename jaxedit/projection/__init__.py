"""Real-image editing building blocks: the LPIPS perceptual distance (VGG16), for projecting
images into a generator's latent space.

Public names: `LPIPS` (the distance and its weights, a pytree), `load_lpips` (NVIDIA's
``vgg16.pt`` or the ``lpips`` package's ``vgg.pth`` + torchvision's VGG16, read without torch).
"""

from ._lpips import LPIPS, load_lpips

__all__ = ["LPIPS", "load_lpips"]
