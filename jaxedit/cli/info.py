"""``jaxedit layers`` (a generator's layers, resolutions, channels and W+ slots) and
``jaxedit regions`` (the region presets)."""

from __future__ import annotations

from . import _generators
from ._common import examples
from ._generators import CKPT_HELP


def _biggan_layers(gen) -> list[tuple[str, int, int, int]]:
    """(name, input resolution, in channels, out channels) of every BigGAN conv (as
    `jaxedit.spectra.layer_spectrum` names them)."""
    rows, res = [], 4
    for i, (up, _, _) in enumerate(gen.config.layers):
        block = getattr(gen, f"block{i}")
        for k in range(4):
            conv = getattr(block, f"conv_{k}")
            kh, kw, cin, cout = conv.kernel.shape
            rows.append((f"block{i}.conv_{k}", res * (2 if (up and k >= 1) else 1), cin, cout))
        res *= 2 if up else 1
    kh, kw, cin, cout = gen.conv_to_rgb.kernel.shape
    rows.append(("conv_to_rgb", res, cin, 3))
    return rows


def _cmd_layers(args) -> int:
    gen = _generators.load_generator(args.ckpt, which=args.which)
    if not gen.has_styles:  # BigGAN-deep: walks its blocks
        print(
            f"BigGAN-deep {gen.resolution}px: z_dim {gen.z_dim}, {gen.num_classes} classes, "
            f"cond [z, embed] {gen.cond_dim}"
        )
        print(f"\n{'layer':<16} {'resolution':>10} {'in':>6} {'out':>6}")
        print(f"{'gen_z':<16} {4:>10} {gen.cond_dim:>6} {gen.gen_z.kernel.shape[1]:>6}")
        for name, res, cin, cout in _biggan_layers(gen):
            print(f"{name:<16} {res:>10} {cin:>6} {cout:>6}")
        print("\nsefa --layers: all | gen_z; edit/jacobian spaces: z, embed, cond")
        return 0
    from ..methods.sefa import style_presets

    print(
        f"{gen.display_name} {gen.resolution}px: z_dim {gen.z_dim}, w_dim {gen.w_dim}, c_dim "
        f"{gen.c_dim}, {gen.num_ws} W+ slots"
    )
    rows = gen.layer_summary()
    rate = all("sampling_rate" in r for r in rows)  # StyleGAN3: sampling rate and margin
    head = f"{'layer':<12} {'resolution':>10} {'in':>6} {'out':>6} {'style':>6} {'W+ slot':>8}"
    print("\n" + head + (f" {'rate':>6} {'margin':>6}" if rate else ""))
    for r in rows:
        line = (
            f"{r['name']:<12} {r['size']:>10} {r['in_channels']:>6} {r['out_channels']:>6} "
            f"{r['style']:>6} {r['slot']:>8}"
        )
        if rate:
            line += f" {r['sampling_rate']:>6g} {r['margin']:>6}"
        print(line)
    if rate:
        print(
            "\nresolution: the side of the layer's output, margins included (the image spans "
            "'rate' pixels of it); the input layer's 4-d style is a rotation / translation"
        )
    print("\nfeature layers (panda, eis catalog): " + ", ".join(gen.feature_layers))
    bands = style_presets(gen)
    print(
        "sefa --layers presets: "
        + "; ".join(f"{k} = {','.join(map(str, v)) if v else '(none)'}" for k, v in bands.items())
    )
    return 0


def _cmd_regions(args) -> int:
    from .. import regions

    print(f"{'preset':<24} {'box y0,x0,y1,x1':<20} grid")
    for name in regions.preset_names():
        r = regions.preset(name)
        if isinstance(r, regions.Box):
            box = ",".join(map(str, r.as_tuple()))
            print(f"{name:<24} {box:<20} {r.grid or 'any'}")
        else:
            shape = "x".join(map(str, r.frequency.shape))
            print(f"{name:<24} {'(mask)':<20} {shape}")
    print(
        "\nA region is a preset or a box y0,x0,y1,x1 in pixels of the grid it is used on "
        "(end-exclusive). A short name works when one set has it ('head0' = 'biggan/head0'); "
        "'eyes', 'mouth', 'nose' are both FFHQ boxes and toy-face masks, so the command's "
        "generator decides ('default': toyfaces/..., other StyleGAN checkpoints: ffhq/...). "
        "Every region is resampled to the Jacobian's or the image's grid."
    )
    return 0


def register(sub) -> None:
    """Add the command(s) of this module to the ``jaxedit`` subparsers ``sub``."""
    ly = sub.add_parser(
        "layers",
        help="list a generator's layers: resolutions, channels, W+ slots",
        epilog=examples("jaxedit layers ckpt/", "jaxedit layers default"),
    )
    ly.add_argument("ckpt", help=CKPT_HELP)
    ly.add_argument("--which", default=None, help="network in a source file (G_ema by default)")
    ly.set_defaults(fn=_cmd_layers)

    rg = sub.add_parser(
        "regions", help="list the region presets (for --region)", epilog=examples("jaxedit regions")
    )
    rg.set_defaults(fn=_cmd_regions)
