"""``jaxedit demo``: the main workflow on the embedded toy-face generator, offline.

default generator (a StyleGAN2 trained on `jaxedit.toyfaces`, shipped in the package) ->
sample grid (generator above, renderer below) + checkpoint round trip -> W-space Jacobians of the
seeds (forward mode) -> ReSeFa directions for ``toyfaces/eyes`` and ``toyfaces/mouth`` (M_f, M_b
averaged over the seeds) -> one edit grid per region with the region drawn -> ``report.json``
with, per region, the ROIR (lower = more local) of the top ReSeFa direction, of 20 random
directions (median), of the top SeFa direction, and of the ground truth: each of the part's
factors moved in z with every other factor fixed (`jaxedit.toyfaces.edit_factor`).

W edits move every W+ slot by ``alpha * d`` (unit d) at the edit grid's alphas
(`DEMO_ALPHAS`); ROIR is measured at each non-zero alpha and averaged. Ground-truth edits
move the factor's normal score by `GT_DELTAS`.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ._common import examples, seed_list

DEMO_REGIONS = ("toyfaces/eyes", "toyfaces/mouth")
DEMO_ALPHAS = (-1.2, -0.8, -0.4, 0.0, 0.4, 0.8, 1.2)
GT_DELTAS = (-1.5, -1.0, -0.5, 0.5, 1.0, 1.5)
NUM_RANDOM = 20


def run(out_dir: str, seeds=(0, 1, 2, 3, 4, 5, 6, 7), *, num_random: int = NUM_RANDOM) -> int:
    """Run the demo workflow and write its files to ``out_dir``.

    Args:
        out_dir: output directory (created if missing).
        seeds: seeds of the samples (NVIDIA generate.py latents).
        num_random: random W directions of the ROIR baseline.

    Returns:
        0 when the checkpoint round trip is exact, else 1 (the exit code of ``jaxedit demo``).
    """
    from .. import toyfaces
    from .._io import save_json
    from ..checkpoint import load_generator, save_generator
    from ..editing import render_edits, save_edit_grid
    from ..errors import OutputError
    from ..images import save_image_grid
    from ..jacobians import OutputSpec, jacobian
    from ..methods.resefa import resefa
    from ..methods.sefa import sefa
    from ..models.stylegan2 import seed_to_z
    from ..regions import preset
    from ..sampling import Compute
    from ..toyfaces import validity
    from ..toyfaces.default import WEIGHTS_DIR, default_generator

    t0 = time.time()
    given = out_dir
    out_dir = os.path.abspath(out_dir)
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise OutputError(
            f"--out {given} exists and is not a directory: the demo writes a folder (grid.png, "
            "edit_*.png, report.json, default_ckpt/); name a new or existing folder"
        )
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise OutputError(f"--out {given}: cannot create the folder ({e.strerror or e})") from None
    gen = default_generator()
    print(
        f"default generator (toy faces): {gen.resolution}px, z_dim={gen.z_dim}, "
        f"w_dim={gen.w_dim}, num_ws={gen.num_ws}"
    )
    z = np.concatenate([seed_to_z(s, gen.z_dim) for s in seeds])
    imgs = np.asarray(gen(z))
    truth = np.asarray(toyfaces.render(toyfaces.factors_from_z(z)))
    mae = float(np.abs(imgs - truth).mean())
    grid = save_image_grid(
        np.concatenate([imgs, truth]), os.path.join(out_dir, "grid.png"), cols=len(seeds)
    )
    print(f"wrote {grid} (top: generator, bottom: renderer; mean |G(z) - render| = {mae:.4f})")
    ckpt = save_generator(
        gen,
        os.path.join(out_dir, "default_ckpt"),
        source={"format": "toyfaces", "path": WEIGHTS_DIR},
        overwrite=True,
    )
    again = np.asarray(load_generator(ckpt)(z))
    err = float(np.abs(again - imgs).max())
    print(f"checkpoint round trip max |diff| = {err:.3g}")

    ws = np.asarray(gen.mapping(z))
    t1 = time.time()
    J = jacobian(
        gen,
        ws,
        space="w",
        output=OutputSpec(channels="rgb"),
        compute=Compute(batch_size=len(seeds)),
    )
    t_jac = time.time() - t1
    print(f"W Jacobians {list(J.shape)} in {t_jac:.1f}s")
    sefa_top = sefa(gen, "all", k=1).directions[0]
    rng = np.random.default_rng(0)
    random_dirs = rng.standard_normal((num_random, gen.w_dim))
    regions = {}
    for name in DEMO_REGIONS:
        region = preset(name)
        res = resefa(J, region, k=5, aggregate="mean")
        top = np.asarray(res.directions[0])
        edits = render_edits(gen, ws, top, DEMO_ALPHAS)
        png = save_edit_grid(
            edits, os.path.join(out_dir, f"edit_{name.split('/')[1]}.png"), region=region
        )
        loc = validity.direction_locality(gen, ws, top, region, DEMO_ALPHAS, base=imgs)
        loc_sefa = validity.direction_locality(gen, ws, sefa_top, region, DEMO_ALPHAS, base=imgs)
        rand = [
            validity.direction_locality(gen, ws, d, region, DEMO_ALPHAS, base=imgs)["roir_mean"]
            for d in random_dirs
        ]
        part = name.split("/")[1]
        gt = {
            f: validity.factor_z_edits(gen, z, f, region, GT_DELTAS, base=imgs)
            for f in toyfaces.factors_of_part(part)
        }
        gt_median = float(np.median([g["roir_mean"] for g in gt.values()]))
        entry = {
            "edit_grid": png,
            "mask_pixels": int(res.mask.sum()),
            "eigenvalues": [round(float(v), 4) for v in np.asarray(res.eigenvalues)],
            "solver": res.solver,
            "condition_number_M_b": res.condition_number,
            "roir": {
                "resefa_top": loc["roir_mean"],
                "resefa_top_per_alpha": loc["roir"],
                "random_median": float(np.median(rand)),
                "random": rand,
                "sefa_top": loc_sefa["roir_mean"],
                "sefa_top_per_alpha": loc_sefa["roir"],
                "ground_truth_median": gt_median,
                "ground_truth": {f: g["roir_mean"] for f, g in gt.items()},
            },
            "mse_inside_resefa_top": float(np.mean(loc["mse_inside"])),
            "mse_outside_resefa_top": float(np.mean(loc["mse_outside"])),
        }
        r = entry["roir"]
        r["resefa_over_random"] = r["resefa_top"] / r["random_median"]
        r["resefa_over_ground_truth"] = r["resefa_top"] / gt_median
        regions[name] = entry
        print(
            f"{name}: wrote {png} (rows = seeds, columns = alpha {DEMO_ALPHAS[0]:g}.."
            f"{DEMO_ALPHAS[-1]:g})"
        )
        print(
            f"  ROIR (lower = more local): ReSeFa top {r['resefa_top']:.3f}, random median "
            f"{r['random_median']:.3f} ({r['resefa_over_random']:.2f}x), SeFa top "
            f"{r['sefa_top']:.3f}, ground-truth factor edits {gt_median:.3f} (median of "
            f"{', '.join(f'{f} {v:.3f}' for f, v in r['ground_truth'].items())})"
        )
    report = {
        "generator": {
            "weights": WEIGHTS_DIR,
            "z_dim": gen.z_dim,
            "w_dim": gen.w_dim,
            "num_ws": gen.num_ws,
            "mae_vs_renderer": mae,
        },
        "grid": grid,
        "checkpoint": ckpt,
        "seeds": list(seeds),
        "roundtrip_max_abs_error": err,
        "jacobian": {
            "shape": list(J.shape),
            "space": "w",
            "channels": "rgb",
            "seconds": round(t_jac, 2),
        },
        "alphas": list(DEMO_ALPHAS),
        "edited_slots": "all",
        "ground_truth_deltas": list(GT_DELTAS),
        "roir_definition": "mean over seeds of ||(1-M)*d|| / ||M*d||, d = edited - original, "
        "averaged over the non-zero alphas (ground truth: deltas)",
        "regions": regions,
        "seconds": round(time.time() - t0, 2),
    }
    path = save_json(os.path.join(out_dir, "report.json"), report)
    print(f"report: {path} ({report['seconds']} s)")
    return 0 if err == 0.0 else 1


def _cmd_demo(args) -> int:
    return run(args.out, seeds=args.seeds)


def register(sub) -> None:
    """Add ``demo`` to the ``jaxedit`` subparsers ``sub``."""
    d = sub.add_parser(
        "demo",
        help="run the main workflow on the embedded default generator",
        epilog=examples("jaxedit demo", "jaxedit demo --out demo_run --seeds 0-3"),
    )
    d.add_argument(
        "--out",
        default="jaxedit_demo",
        help="output directory (created if missing); a rerun replaces only the demo's "
        "own files in it (grid.png, edit_*.png, report.json, and default_ckpt/ "
        "only if it is a jaxedit checkpoint), atomically, and nothing else",
    )
    d.add_argument("--seeds", type=seed_list, default="0-7", help="seeds of the samples")
    d.set_defaults(fn=_cmd_demo)
