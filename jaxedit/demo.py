"""``jaxedit demo``: the main workflow on the embedded default generator, offline.

For now (foundation issue): build the default StyleGAN2, synthesize a seed grid at psi 1.0 and
0.7, save it with the checkpoint round-trip verified, and write ``report.json``. The ReSeFa issue
extends this to Jacobian -> directions -> edit grid.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np


def run(out_dir: str, seeds=(0, 1, 2, 3, 4, 5, 6, 7)) -> int:
    from .checkpoint import load_generator, save_generator
    from .default import default_generator
    from .images import save_image_grid
    from .models.stylegan2 import seed_to_z

    t0 = time.time()
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    gen = default_generator()
    print(f"default generator: {gen.resolution}px, z_dim={gen.z_dim}, num_ws={gen.num_ws}")
    z = np.concatenate([seed_to_z(s, gen.z_dim) for s in seeds])
    imgs = np.concatenate([np.asarray(gen(z, None, psi)) for psi in (1.0, 0.7)])
    grid = save_image_grid(imgs, os.path.join(out_dir, "grid.png"), cols=len(seeds))
    print(f"wrote {grid} (top row psi=1.0, bottom row psi=0.7)")
    ckpt = save_generator(gen, os.path.join(out_dir, "default_ckpt"), source={"format": "default"},
                          overwrite=True)
    again = np.asarray(load_generator(ckpt)(z, None, 1.0))
    err = float(np.abs(again - imgs[: len(seeds)]).max())
    report = {"grid": grid, "checkpoint": ckpt, "seeds": list(seeds),
              "roundtrip_max_abs_error": err, "seconds": round(time.time() - t0, 2)}
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"checkpoint round trip max |diff| = {err:.3g}; report: {out_dir}/report.json")
    return 0 if err == 0.0 else 1
