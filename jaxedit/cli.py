"""The ``jaxedit`` command line: convert, inspect, synth, demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def parse_int_list(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]`` (inclusive ranges, order kept, duplicates dropped)."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else part[1:].split("-", 1)
                a, b = int(a), int(b)
                if b < a:
                    raise ValueError
                vals = range(a, b + 1)
            else:
                vals = [int(part)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer list: {text!r} (e.g. 0-7 or 1,4,9)") from None
        out.extend(v for v in vals if v not in out)
    if not out:
        raise argparse.ArgumentTypeError(f"empty integer list: {text!r}")
    return out


def _cmd_convert(args) -> int:
    from .checkpoint import convert_checkpoint

    out = convert_checkpoint(args.src, args.out, which=args.which, overwrite=args.force)
    print(f"wrote {out}")
    return 0


def _cmd_inspect(args) -> int:
    import converters

    from .checkpoint import read_config

    if os.path.isdir(args.src):
        meta = read_config(args.src)
        print(json.dumps(meta, indent=2, sort_keys=True))
        return 0
    conv = converters.read_checkpoint(args.src, args.which)
    print(f"format:  {conv.source_format}")
    print(f"network: {conv.which}")
    print(f"sha256:  {conv.source_sha256}")
    print("config:  " + json.dumps(conv.config, sort_keys=True))
    inverse = {s: t for t, s in conv.sources.items()}
    width = max(len(k) for k in conv.source_tensors)
    print(f"\n{'source key':<{width}}  {'shape':<20}  jaxedit key")
    for k, shape in conv.source_tensors.items():
        print(f"{k:<{width}}  {str(list(shape)):<20}  {inverse.get(k, '(checked buffer)')}")
    print(f"\n{len(conv.source_tensors)} tensors, "
          f"{sum(int(np.prod(v.shape)) for v in conv.params.values()):,} values converted")
    return 0


def _cmd_synth(args) -> int:
    import jax

    from .checkpoint import load_generator
    from .images import save_image_grid
    from .models.stylegan2 import seed_to_z

    gen = load_generator(args.ckpt, which=args.which)
    z = np.concatenate([seed_to_z(s, gen.z_dim) for s in args.seeds])
    c = None
    if gen.c_dim > 0:
        if args.class_idx is None:
            print(f"error: this generator is conditional; pass --class (0..{gen.c_dim - 1})",
                  file=sys.stderr)
            return 2
        c = np.zeros((len(z), gen.c_dim))
        c[:, args.class_idx] = 1
    key = jax.random.key(args.noise_seed) if args.noise_mode == "random" else None
    imgs = gen(z, c, args.psi, args.cutoff, noise_mode=args.noise_mode, key=key)
    print(f"wrote {save_image_grid(imgs, args.out, cols=args.cols)}")
    return 0


def _cmd_demo(args) -> int:
    from . import demo

    return demo.run(args.out, seeds=args.seeds)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxedit", description="Local semantic directions in GANs, in JAX.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("convert", help="convert an NVIDIA .pkl / rosinality .pt to a jaxedit checkpoint")
    c.add_argument("src")
    c.add_argument("out")
    c.add_argument("--which", default=None, help="network in the file (G_ema by default; G; g_ema; g)")
    c.add_argument("--force", action="store_true", help="replace OUT if it exists")
    c.set_defaults(fn=_cmd_convert)

    i = sub.add_parser("inspect", help="print a checkpoint's format, config and key/shape table")
    i.add_argument("src")
    i.add_argument("--which", default=None)
    i.set_defaults(fn=_cmd_inspect)

    s = sub.add_parser("synth", help="synthesize a PNG grid from seeds (NVIDIA generate.py latents)")
    s.add_argument("ckpt")
    s.add_argument("--seeds", type=parse_int_list, default=parse_int_list("0-7"))
    s.add_argument("--psi", type=float, default=1.0)
    s.add_argument("--cutoff", type=int, default=None)
    s.add_argument("--class", dest="class_idx", type=int, default=None)
    s.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    s.add_argument("--noise-seed", type=int, default=0, help="PRNG seed for --noise-mode random")
    s.add_argument("--which", default=None)
    s.add_argument("--cols", type=int, default=None)
    s.add_argument("--out", default="grid.png")
    s.set_defaults(fn=_cmd_synth)

    d = sub.add_parser("demo", help="run the main workflow on the embedded default generator")
    d.add_argument("--out", default="jaxedit_demo")
    d.add_argument("--seeds", type=parse_int_list, default=parse_int_list("0-7"))
    d.set_defaults(fn=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    from converters.errors import CheckpointError

    args = build_parser().parse_args(argv)
    t0 = time.time()
    try:
        rc = args.fn(args)
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if os.environ.get("JAXEDIT_TIMING"):
        print(f"({time.time() - t0:.1f} s)", file=sys.stderr)
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
