"""``jaxedit convert`` (a source checkpoint -> a jaxedit checkpoint directory) and
``jaxedit inspect`` (format, config and key/shape table of a checkpoint)."""

from __future__ import annotations

import json

from ._common import examples


def _cmd_convert(args) -> int:
    from ..checkpoint import convert_checkpoint

    out = convert_checkpoint(
        args.src,
        args.out,
        which=args.which,
        overwrite=args.force,
        allow_nonfinite=args.allow_nonfinite,
    )
    print(f"wrote {out}")
    return 0


def _cmd_inspect(args) -> int:
    from ..checkpoint import inspect_checkpoint

    info = inspect_checkpoint(args.src, args.which, allow_nonfinite=args.allow_nonfinite)
    if info.kind == "converted":
        print(json.dumps(info.meta, indent=2, sort_keys=True))
        _print_layers(info)
        return 0
    conv = info.converted
    assert conv is not None  # kind == "source": inspect_checkpoint sets the conversion
    print(f"format:  {conv.source_format}")
    print(f"network: {conv.which}")
    print(f"sha256:  {conv.source_sha256}")
    print("config:  " + json.dumps(conv.config, sort_keys=True))
    _print_layers(info)
    inverse = {part: t for t, s in conv.sources.items() for part in s.split("+")}
    width = max(len(k) for k in conv.source_tensors)
    print(f"\n{'source key':<{width}}  {'shape':<20}  jaxedit key")
    for k, shape in conv.source_tensors.items():
        print(f"{k:<{width}}  {str(list(shape)):<20}  {inverse.get(k, '(checked buffer)')}")
    print(
        f"\n{len(conv.source_tensors)} tensors, {info.num_values:,} values converted; "
        "every check of convert passed"
    )
    return 0


def _print_layers(info) -> None:
    """StyleGAN3: the per-layer table (sizes, channels, sampling rates, cutoffs, W+ slots)."""
    if not info.layers:
        return
    print(f"family:  {info.family}")
    for note in info.notes:
        print(f"note:    {note}")
    print(
        f"\n{'layer':<14} {'slot':>4} {'size':>5} {'in':>5} {'out':>5} {'rate':>6} {'cutoff':>8} "
        f"{'up':>3} {'down':>4} {'taps':>9} fp16*"
    )
    for r in info.layers:
        taps = f"{r.get('up_taps', '-')}/{r.get('down_taps', '-')}" + (
            "r" if r.get("down_radial") else ""
        )
        print(
            f"{r['name']:<14} {r['slot']:>4} {r['size']:>5} {r['in_channels']:>5} "
            f"{r['out_channels']:>5} {r['sampling_rate']:>6g} {r['cutoff']:>8.3f} "
            f"{r.get('up', '-'):>3} {r.get('down', '-'):>4} {taps:>9} "
            f"{'yes' if r.get('official_fp16') else ''}"
        )
    print("(* fp16 in the official config; jaxedit runs every layer in float32 / float64)")


def register(sub) -> None:
    """Add the command(s) of this module to the ``jaxedit`` subparsers ``sub``."""
    c = sub.add_parser(
        "convert",
        help="convert an NVIDIA .pkl (PyTorch or TensorFlow) / rosinality .pt / "
        "Hammer (ReSeFa) .pth / BigGAN to a jaxedit checkpoint",
        epilog=examples(
            "jaxedit convert network-snapshot.pkl ckpt/",
            "jaxedit convert network-snapshot.pkl ckpt/ --which G --force",
        ),
    )
    c.add_argument("src", help="source checkpoint file (or BigGAN directory)")
    c.add_argument("out", help="output checkpoint directory (config.json + params/)")
    c.add_argument(
        "--which",
        default=None,
        help="network in the file: G_ema (default) / G; TF pickles Gs (default) / G; "
        "g_ema / g; Hammer generator_smooth (default) / generator",
    )
    c.add_argument(
        "--force",
        action="store_true",
        help="replace OUT if it is itself a jaxedit checkpoint (config.json + params/ "
        "and nothing else); anything else is refused and left untouched",
    )
    c.add_argument(
        "--allow-nonfinite",
        action="store_true",
        help="convert even if parameters hold NaN or infinity (refused by default)",
    )
    c.set_defaults(fn=_cmd_convert)

    i = sub.add_parser(
        "inspect",
        help="print a checkpoint's format, config and key/shape table",
        epilog=examples("jaxedit inspect network-snapshot.pkl", "jaxedit inspect ckpt/"),
    )
    i.add_argument("src", help="source checkpoint file or converted directory")
    i.add_argument("--which", default=None, help="network in the file (G_ema by default)")
    i.add_argument(
        "--allow-nonfinite",
        action="store_true",
        help="accept parameters holding NaN or infinity, as convert --allow-nonfinite",
    )
    i.set_defaults(fn=_cmd_inspect)
