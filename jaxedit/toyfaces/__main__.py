"""``python -m jaxedit.toyfaces train|export|presets``: train the embedded toy-face generator,
install a trained one as the package's shipped weights, rebuild the region presets."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys


def _train(args) -> int:
    from .train import TrainConfig, fmt_minutes, train

    base = TrainConfig()
    kw = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    tc = dataclasses.replace(base, **kw)
    summary = train(args.out, tc, resume=args.resume, show_progress=not args.quiet)
    mae = summary.get("eval_mae")
    print(
        f"{summary['steps_done']} steps in {fmt_minutes(summary['wall_s'])} wall, "
        f"{summary['cpu_s']:.0f} CPU-s; held-out MAE "
        f"{'-' if mae is None else f'{mae:.4f}'}; outputs in {os.path.abspath(args.out)}"
    )
    return 0


def _export(args) -> int:
    from ..checkpoint import load_generator, read_config, save_generator
    from .default import WEIGHTS_DIR
    from .train import GENERATOR_DIR

    src = (
        os.path.join(args.run, GENERATOR_DIR)
        if os.path.isdir(os.path.join(args.run, GENERATOR_DIR))
        else args.run
    )
    gen = load_generator(src)
    out = args.out or WEIGHTS_DIR
    meta = read_config(src)
    path = save_generator(gen, out, source=meta.get("source", {}), overwrite=True)
    print(f"wrote {path} (from {os.path.abspath(src)})")
    return 0


def _presets(args) -> int:
    from ._presets import PRESET_FILE, write_presets

    print(f"wrote {write_presets(args.out or PRESET_FILE)}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxedit.toyfaces", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="fit the toy-face StyleGAN2 to the renderer (optax)")
    t.add_argument("--out", required=True, help="run directory (log.jsonl, state.npz, generator/)")
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--steps", type=int, help="optimizer steps (default: TrainConfig.steps)")
    t.add_argument("--batch", type=int, help="latents per step")
    t.add_argument("--lr", type=float, help="peak Adam learning rate")
    t.add_argument("--warmup", type=int, help="linear warm-up steps")
    t.add_argument("--seed", type=int, help="initialization and latent-stream seed")
    t.add_argument(
        "--part-weight",
        dest="part_weight",
        type=float,
        help="extra L1 weight of the eyes/eyebrows/nose/mouth pixels (default 4: they weigh 5x)",
    )
    t.add_argument("--eval-every", dest="eval_every", type=int, help="held-out MAE every N steps")
    t.add_argument(
        "--save-every", dest="save_every", type=int, help="resumable state every N steps"
    )
    t.add_argument("--log-every", dest="log_every", type=int, help="log line every N steps")
    t.set_defaults(fn=_train)
    e = sub.add_parser("export", help="install a trained generator as the shipped weights")
    e.add_argument("--run", required=True, help="a training --out directory (or a generator dir)")
    e.add_argument("--out", default=None, help="destination (default: the package's weights)")
    e.set_defaults(fn=_export)
    r = sub.add_parser("presets", help="recompute the toyfaces/<part> region presets")
    r.add_argument("--out", default=None, help="destination (default: the package's file)")
    r.set_defaults(fn=_presets)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
