"""``jaxedit demo``: the main workflow on the embedded default generator, offline.

default generator -> seed grid (+ checkpoint round trip) -> W-space Jacobians of the seeds
(forward mode) -> ReSeFa directions for a reference box (M_f, M_b averaged over the seeds) ->
edit grid PNG with the box drawn -> ``report.json`` with the ROIR of the top direction against
random directions. The default generator is untrained, so "nose" is only a box position.
"""

from __future__ import annotations

import os
import time

import numpy as np

DEMO_REGION = "ffhq/nose"       # the reference box, scaled from its 256 grid to the image
DEMO_ALPHAS = tuple(np.linspace(-3.0, 3.0, 7))
DEMO_EVAL_ALPHA = 0.5


def run(out_dir: str, seeds=(0, 1, 2, 3, 4, 5, 6, 7), *, num_random: int = 8) -> int:
    from ._io import save_json
    from .checkpoint import load_generator, save_generator
    from .default import default_generator
    from .editing import render_edits, save_edit_grid
    from .images import save_image_grid
    from .jacobians import jacobian
    from .metrics import evaluate_direction
    from .models.stylegan2 import seed_to_z
    from .region_factorization import resefa
    from .regions import preset

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
    print(f"checkpoint round trip max |diff| = {err:.3g}")

    # ReSeFa: W space tied to every slot, RGB summed, full resolution, moments averaged.
    ws = np.asarray(gen.mapping(z))
    t1 = time.time()
    J = jacobian(gen, ws, space="w", channels="sum", batch=len(seeds))
    t_jac = time.time() - t1
    box = preset(DEMO_REGION)
    res = resefa(J, box, k=5, aggregate="mean")
    lams = [round(float(v), 4) for v in np.asarray(res.eigenvalues)]
    print(f"Jacobians {list(J.shape)} in {t_jac:.1f}s; ReSeFa for {DEMO_REGION!r}: "
          f"eigenvalues {lams}")
    edits = render_edits(gen, ws, res.directions[0], DEMO_ALPHAS)
    edit_png = save_edit_grid(edits, os.path.join(out_dir, "edit_grid.png"), region=box)
    print(f"wrote {edit_png} (rows = seeds, columns = alpha {DEMO_ALPHAS[0]:g}..{DEMO_ALPHAS[-1]:g})")

    top = evaluate_direction(gen, ws, res.directions[0], box, alpha=DEMO_EVAL_ALPHA)
    rng = np.random.default_rng(0)
    rand = [evaluate_direction(gen, ws, rng.standard_normal(gen.w_dim), box,
                               alpha=DEMO_EVAL_ALPHA)["roir"] for _ in range(num_random)]
    print(f"ROIR (lower = more local), alpha {DEMO_EVAL_ALPHA:g} over {len(seeds)} seeds: "
          f"top direction {top['roir']:.3f}, random directions {np.mean(rand):.3f} "
          f"(min {np.min(rand):.3f})")
    report = {
        "grid": grid, "checkpoint": ckpt, "seeds": list(seeds), "roundtrip_max_abs_error": err,
        "jacobian": {"shape": list(J.shape), "space": "w", "channels": "sum", "seconds": round(t_jac, 2)},
        "resefa": {"region": DEMO_REGION, "box_on_image": list(box.scaled(gen.resolution).as_tuple()),
                   "aggregate": "mean", "eigenvalues": lams, "solver": res.solver,
                   "condition_number_M_b": res.condition_number},
        "edit_grid": edit_png, "alphas": [float(a) for a in DEMO_ALPHAS], "edited_slots": "all",
        "roir": {"alpha": DEMO_EVAL_ALPHA, "top_direction": top["roir"],
                 "top_direction_mse_inside": top["mse_inside"],
                 "top_direction_mse_outside": top["mse_outside"],
                 "random_directions": rand, "random_mean": float(np.mean(rand))},
        "seconds": round(time.time() - t0, 2),
    }
    path = save_json(os.path.join(out_dir, "report.json"), report)
    print(f"report: {path} ({report['seconds']} s)")
    return 0 if err == 0.0 else 1
