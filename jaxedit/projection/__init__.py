"""Real-image editing: project images into a generator's latent space, then tune the generator
around the projection (Pivotal Tuning Inversion).

```python
res = jaxedit.project(gen, images)                          # images [N, R, R, 3] in [-1, 1]
res.ws, res.loss, res.losses                                # [N, num_ws, w_dim], [N], [steps, N]
res = jaxedit.project(gen, images, mode="reference")        # NVIDIA's projector.py exactly
res = jaxedit.project(gen, images, space="wplus",
                      restarts=jaxedit.projection.Restarts(count=8))
tuned = jaxedit.pivotal_tune(gen, images, res)              # a new generator (PTI)
```

Losses follow a small protocol (`ImageLoss`: a pytree with ``distance(x, y) -> [N]``): `MSE`,
`Weighted` sums, `Resized` (area downsampling to at most 256 px, as the projector feeds VGG16),
and the LPIPS network (`LPIPS`, from weight files you have: `load_lpips` reads NVIDIA's
``vgg16.pt`` or the ``lpips`` package's ``vgg.pth`` + torchvision's VGG16, without torch; nothing
is downloaded, so the default loss is MSE)::

    lpips = jaxedit.projection.load_lpips("vgg16.pt")
    res = jaxedit.project(gen, images, loss=jaxedit.projection.Resized(lpips, 256))
"""

from __future__ import annotations

from ._losses import (
    MSE,
    ImageLoss,
    Resized,
    Weighted,
    area_downsample,
    default_loss,
    default_tune_loss,
)
from ._lpips import LPIPS, load_lpips
from ._options import NoiseInputs, Restarts, Schedule
from ._project import MODES, ProjectionResult, noise_regularization, project
from ._pti import Locality, pivotal_tune


def compiled_programs() -> dict[str, int]:
    """How many programs each jitted kernel of the projection has compiled so far (a recompile
    guard: projecting or tuning new images of the same shapes, dtypes and settings adds none).

    Returns:
      ``{"project_step": n, "project_init": n, "project_prepare": n, "project_evaluate": n,
      "tune_step": n, "tune_init": n, "tune_prepare": n, "lpips_distance": n, "lpips_features": n}``
      (process-wide; the counts only grow).
    """
    from ._lpips import compiled_programs as lpips_programs
    from ._project import _JITTED as project_jitted
    from ._pti import _JITTED as tune_jitted

    return {
        **{
            name: int(fn._cache_size())
            for name, fn in (*project_jitted.items(), *tune_jitted.items())
        },
        **lpips_programs(),
    }


__all__ = [
    "LPIPS",
    "MODES",
    "MSE",
    "ImageLoss",
    "Locality",
    "NoiseInputs",
    "ProjectionResult",
    "Resized",
    "Restarts",
    "Schedule",
    "Weighted",
    "area_downsample",
    "compiled_programs",
    "default_loss",
    "default_tune_loss",
    "load_lpips",
    "noise_regularization",
    "pivotal_tune",
    "project",
]
