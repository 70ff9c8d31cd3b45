"""``jaxedit eis ...``: Editing in Style catalogs, annotation and local style transfer.

    jaxedit eis catalog CKPT --layer b32.conv1 --k 12 --seeds 0-99 --out cat.npz
    jaxedit eis annotate cat.npz eyes=3,7 mouth=5
    jaxedit eis transfer CKPT --catalog cat.npz --label eyes --target-seeds 0-3 \\
        --reference-seeds 10-13 --out grid.png

Every option is checked by a `jaxedit.cli._common` validator; outputs are checked
(`check_output`) before any generator is loaded and written atomically, never replacing an
existing file without ``--force`` (``annotate`` rewrites its catalog in place unless ``--out`` is
given: that file is its declared output). Default output names say what they hold
(``eis_catalog_<layer>_k<k>.npz`` + ``..._clusters.png``, ``eis_transfer_<label>.png``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from . import _generators
from ._common import (
    CLIError,
    add_output_args,
    check_output,
    examples,
    finite_float,
    nonneg_float,
    nonneg_int,
    parse_int_list,
    positive_int,
    seed_list,
    setup_x64,
)
from ._eis_sheets import heatmap_sheet
from ._generators import (
    CKPT_HELP,
    add_class_arg,
    check_family_options,
    check_grid,
    ckpt_label,
    class_vectors,
    read_latents,
    seed_latents,
    slug,
)

# ---- validators ---------------------------------------------------------------------------------


def _per_layer(one):
    """A ``type=`` for one value or a comma list (one per style layer), each checked by ``one``."""

    def parse(text):
        parts = [p for p in str(text).split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(
                f"empty value: {text!r} (one number, or one per style layer separated by commas)"
            )
        vals = [one(p) for p in parts]
        return vals[0] if len(vals) == 1 else vals

    parse.__name__ = f"{one.__name__} or per-layer list"
    return parse


def _assignment(text) -> tuple[str, list[int]]:
    """``NAME=IDS`` (``eyes=3,7`` or ``hair=0-2``)."""
    name, sep, ids = str(text).partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"annotation {text!r} must be NAME=IDS, e.g. eyes=3,7")
    try:
        vals = parse_int_list(ids)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"annotation {text!r}: {e}") from None
    return name.strip(), vals


_assignment.__name__ = "NAME=IDS"


# ---- helpers ------------------------------------------------------------------------------------


def _stylegan2(args):
    """The checkpoint argument as a StyleGAN2 / StyleGAN3 generator (``default`` = the embedded one), with
    --psi / --cutoff / --class checked against it."""
    setup_x64(args)
    gen = _generators.load_generator(args.ckpt)
    if not gen.has_styles:
        raise CLIError(
            f"{args.ckpt}: Editing in Style needs per-layer styles (StyleGAN2, StyleGAN3), this "
            f"is {gen.display_name}"
        )
    check_family_options(gen, args)
    return gen


def _seed_ws(gen, args, seeds, psi, cutoff):
    z = seed_latents(gen, seeds)
    return gen.mapping(z, class_vectors(gen, args, len(seeds)), psi, cutoff)


def _check_layer(gen, layer: str) -> None:
    if layer not in gen.feature_layers:
        raise CLIError(
            f"--layer {layer!r} is not a conv layer of this generator; choose one of "
            f"{', '.join(gen.feature_layers)}"
        )


def _layer_size(gen, layer: str) -> tuple[int, int]:
    """(side inside the image, channels) of a feature layer's output."""
    h, _, ch = gen.feature_shape(layer)
    return h - 2 * gen.feature_margin(layer), ch


def _with_info(cat, **extra):
    """A copy of the catalog with ``extra`` added to its info."""
    import dataclasses

    return dataclasses.replace(cat, info={**dict(cat.info), **extra})


def _transfer_pairs(gen, pt, pr, qs, batch_size: int) -> np.ndarray:
    """eis.transfer over pairs in batches (the last one padded: one compilation)."""
    import jax.numpy as jnp

    from .._io import progress
    from ..methods import eis

    n = pt.shape[0]
    b = min(batch_size, n)
    out = []
    with progress(n, "transfer", unit="pair") as bar:
        for lo in range(0, n, b):
            t, r = pt[lo : lo + b], pr[lo : lo + b]
            m = t.shape[0]
            if m < b:
                t = jnp.concatenate([t, jnp.repeat(t[-1:], b - m, axis=0)])
                r = jnp.concatenate([r, jnp.repeat(r[-1:], b - m, axis=0)])
            out.append(np.asarray(eis.transfer(gen, t, r, qs))[:m])
            bar.update(m)
    return np.concatenate(out)


# ---- commands -----------------------------------------------------------------------------------


def _cmd_catalog(args) -> int:
    from ..images import save_png
    from ..methods import eis
    from ..sampling import Compute, Sampling

    if args.out is None:
        args.out = f"eis_catalog_{slug(args.layer)}_k{args.k}.npz"
    preview = args.preview or os.path.splitext(args.out)[0] + "_clusters.png"
    if os.path.realpath(preview) == os.path.realpath(args.out):
        raise CLIError("--preview must differ from --out")
    out = check_output(args.out, args.force)
    check_output(preview, args.force)
    if args.latents and (args.psi is not None or args.cutoff is not None):
        raise CLIError("--psi / --cutoff apply to --seeds (--latents are used as given)")
    gen = _stylegan2(args)
    _check_layer(gen, args.layer)
    res, ch = _layer_size(gen, args.layer)
    if args.pixels_per_sample is not None and args.pixels_per_sample > res * res:
        raise CLIError(
            f"--pixels-per-sample {args.pixels_per_sample} is more than the {res}x{res} "
            f"= {res * res} pixels of {args.layer}"
        )
    if args.latents:
        lat = read_latents(gen, args.latents, "w")
        kw: dict[str, Any] = dict(latents=lat)
        src = f"{len(lat)} latents from {args.latents}"
        n = len(lat)
    else:
        c = class_vectors(gen, args, len(args.seeds)) if gen.uses_class else None
        kw = dict(
            seeds=args.seeds,
            sampling=Sampling(
                c=c,
                truncation_psi=1.0 if args.psi is None else args.psi,
                truncation_cutoff=args.cutoff,
            ),
        )
        src = f"{len(args.seeds)} seeds"
        n = len(args.seeds)
    per = res * res if args.pixels_per_sample is None else args.pixels_per_sample
    if args.k > n * per:
        raise CLIError(f"--k {args.k} is more than the {n * per} pixels to cluster")
    itemsize = 8 if args.x64 else 4
    need = n * per * ch * itemsize
    limit = int(args.max_gib * 2**30)
    if need > limit:
        raise CLIError(
            f"clustering {n} samples x {per} pixels x {ch} channels needs "
            f"{need / 2**30:.2f} GiB (--max-gib {args.max_gib:g}): use fewer --seeds or "
            "--pixels-per-sample"
        )
    n_prev = min(args.preview_samples, n)
    cell = min(args.preview_size, max(gen.resolution, 64))
    check_grid(
        n_prev * (args.k + 1),
        cell,
        3,
        "the preview",
        "use a smaller --k, --preview-samples or --preview-size",
    )
    print(f"clustering {args.layer} of {src} into k={args.k}")
    cat = eis.Catalog.fit(
        gen,
        args.layer,
        args.k,
        key=args.kmeans_seed,
        compute=Compute(batch_size=args.batch_size),
        pixels_per_sample=args.pixels_per_sample,
        n_init=args.n_init,
        kmeans_batch_size=args.kmeans_batch_size,
        max_iter=args.max_iter,
        max_points_bytes=limit,
        progress=True,
        **kw,
    )
    cat = _with_info(cat, checkpoint=ckpt_label(args.ckpt))
    assert cat.latents is not None  # Catalog.fit records the latents it clustered
    ws_prev = np.asarray(cat.latents[:n_prev])
    heat = np.asarray(cat.predict(gen, ws_prev))
    images = np.asarray(gen.synthesis(eis._as_ws(gen, ws_prev)))
    sheet = heatmap_sheet(images, heat, cell)
    path = cat.save(out, overwrite=args.force)
    png = save_png(sheet, preview, overwrite=args.force)
    info = cat.info
    print(
        f"objective {info['objective']:.6g} ({'converged' if info['converged'] else 'NOT converged'}"
        f" after {info['n_iter']} iterations; restarts "
        + ", ".join(f"{v:.6g}" for v in info["restart_objectives"])
        + ")"
    )
    share = heat.mean(axis=(0, 2, 3))
    print(
        "cluster share of the preview pixels: "
        + ", ".join(f"{j}: {100 * s:.1f}%" for j, s in enumerate(share))
    )
    print(f"wrote {path}")
    print(
        f"wrote {png}: row 0 = samples, row 1+k = cluster k (name them with "
        f"'jaxedit eis annotate {args.out} NAME=IDS')"
    )
    return 0


def _cmd_annotate(args) -> int:
    from ..methods.eis import Catalog

    names = [n for n, _ in args.assignments]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CLIError(f"label(s) {dup} given more than once")
    listing = not args.assignments and not args.remove and not args.replace
    if listing and args.out is not None:
        raise CLIError("--out needs NAME=IDS assignments, --remove or --replace (nothing to write)")
    in_place = args.out is None or os.path.realpath(args.out) == os.path.realpath(args.catalog)
    out = (
        None
        if listing
        else check_output(args.catalog if in_place else args.out, True if in_place else args.force)
    )
    cat = Catalog.load(args.catalog)
    if listing:
        print(f"{args.catalog}: layer {cat.layer}, k = {cat.k}")
        for name, ids in cat.annotations.items():
            print(f"  {name} = {','.join(map(str, ids))}")
        if not cat.annotations:
            print("  (no labels)")
        return 0
    if args.remove:
        cat = cat.without(*args.remove)
    cat = cat.annotate(dict(args.assignments), replace=args.replace)
    path = cat.save(out, overwrite=True if in_place else args.force)
    for name, ids in cat.annotations.items():
        print(f"  {name} = {','.join(map(str, ids))}")
    print(f"wrote {path}")
    return 0


def _cmd_transfer(args) -> int:
    import jax.numpy as jnp

    from .._io import save_json
    from ..images import image_grid, save_png, to_uint8
    from ..methods import eis
    from ..sampling import Compute

    if args.out is None:
        args.out = f"eis_transfer_{slug(args.label)}.png"
    out = check_output(args.out, args.force)
    js = None
    if args.json is not None:
        js = check_output(args.json, args.force)
        if js == out:
            raise CLIError("--json must differ from --out")
    cat = eis.Catalog.load(args.catalog)
    if args.label not in cat.annotations:
        raise CLIError(
            f"--label {args.label!r} is not in {args.catalog} (labels: "
            f"{', '.join(cat.annotations) or 'none; run jaxedit eis annotate first'})"
        )
    if args.mode == "simultaneous":
        if args.rho is not None or args.eps is not None:
            raise CLIError(
                "--rho / --eps apply to the reference and ratio modes; simultaneous mode uses --lam"
            )
    elif args.lam is not None:
        raise CLIError("--lam applies to --mode simultaneous only")
    gen = _stylegan2(args)
    cat.check_generator(gen)
    layers = None
    if args.layers not in (None, "all"):
        if args.layers == "no-torgb":
            layers = [r["name"] for r in gen.layer_summary() if not r["torgb"]]
            layers = [n for n in layers if n in gen.modulated_layers]
        else:
            layers = [n.strip() for n in args.layers.split(",") if n.strip()]
            unknown = [n for n in layers if n not in gen.modulated_layers]
            if unknown or not layers:
                raise CLIError(
                    f"--layers: unknown style layers {unknown}; choose all, no-torgb or "
                    f"a comma list of {', '.join(gen.modulated_layers)}"
                )
    names = layers or list(gen.modulated_layers)
    mode = args.mode
    rho = args.rho if args.rho is not None else (0.25 if mode == "ratio" else 0.1)
    eps = args.eps if args.eps is not None else 10.0
    lam = args.lam if args.lam is not None else 2.0
    for argname, val in (("rho", rho), ("eps", eps), ("lam", lam)):
        if isinstance(val, list) and len(val) != len(names):
            raise CLIError(
                f"--{argname} has {len(val)} values for {len(names)} style layers "
                f"({', '.join(names)})"
            )
    nt, nr = len(args.target_seeds), len(args.reference_seeds)
    check_grid(
        (nt + 1) * (nr + 1),
        gen.resolution,
        3,
        "the transfer grid",
        "use fewer --target-seeds or --reference-seeds",
    )
    psi = args.psi if args.psi is not None else float(cat.info.get("psi", 1.0))
    cutoff = args.cutoff if args.cutoff is not None else cat.info.get("cutoff")
    if args.contribution_seeds is not None:
        lat_c = _seed_ws(gen, args, args.contribution_seeds, psi, cutoff)
        how = f"{len(args.contribution_seeds)} seeds"
    elif cat.latents is not None:
        lat_c, how = cat.latents, f"the catalog's {len(cat.latents)} samples"
    else:
        raise CLIError(f"{args.catalog} stores no samples: pass --contribution-seeds")
    print(f"contributions of {args.label!r} on {how} (masks resized {args.resize})")
    contribs = eis.contributions(
        gen,
        lat_c,
        cat,
        resize=args.resize,
        compute=Compute(batch_size=args.batch_size),
        progress=True,
    )
    qs = eis.label_queries(contribs, args.label, rho, eps, mode, lam=lam, layers=layers)
    print(
        "channels transferred: "
        + ", ".join(f"{k} {int(np.sum(np.asarray(v) > 0))}/{v.shape[0]}" for k, v in qs.items())
    )
    ws_t = _seed_ws(gen, args, args.target_seeds, psi, cutoff)
    ws_r = _seed_ws(gen, args, args.reference_seeds, psi, cutoff)
    img_t = np.asarray(gen.synthesis(ws_t))
    img_r = np.asarray(gen.synthesis(ws_r))
    pt = jnp.repeat(ws_t, nr, axis=0)
    pr = jnp.tile(ws_r, (nt, 1, 1))
    edited = _transfer_pairs(gen, pt, pr, qs, args.batch_size)
    res = gen.resolution
    m_t = np.asarray(cat.masks(gen, ws_t, args.label, size=res, resize="nearest"))[:, 0]
    region = np.repeat(m_t, nr, axis=0)
    if args.region == "union":
        m_r = np.asarray(cat.masks(gen, ws_r, args.label, size=res, resize="nearest"))[:, 0]
        region = np.maximum(region, np.tile(m_r, (nt, 1, 1)))
    err = np.asarray(eis.lab_squared_error(np.repeat(img_t, nr, axis=0), edited, args.lab_parity))
    rows = []
    print(f"{'target':>8} {'reference':>9} {'In-MSE':>10} {'Out-MSE':>10} {'Out/In':>8}")
    for i, ts in enumerate(args.target_seeds):
        for j, rs in enumerate(args.reference_seeds):
            p = i * nr + j
            if region[p].sum() == 0 or region[p].sum() == region[p].size:
                print(
                    f"{ts:>8} {rs:>9}  (the {args.label!r} region is "
                    f"{'empty' if region[p].sum() == 0 else 'the whole image'})"
                )
                rows.append(dict(target=ts, reference=rs, in_mse=None, out_mse=None))
                continue
            r = eis.in_out_mse(err[p : p + 1], region[p])
            rows.append(dict(target=ts, reference=rs, in_mse=r["in_mse"], out_mse=r["out_mse"]))
            print(f"{ts:>8} {rs:>9} {r['in_mse']:10.4g} {r['out_mse']:10.4g} {r['ratio']:8.3f}")
    total = None
    if region.sum() > 0 and region.sum() < region.size:
        total = eis.in_out_mse(err, region)
        print(
            f"{'all':>8} {'':>9} {total['in_mse']:10.4g} {total['out_mse']:10.4g} "
            f"{total['ratio']:8.3f}"
        )
    blank = np.full_like(img_t[:1], -1.0)
    cells = [blank, img_r]
    for i in range(nt):
        cells += [img_t[i : i + 1], edited[i * nr : (i + 1) * nr]]
    grid = image_grid(to_uint8(np.concatenate(cells)), cols=nr + 1)
    png = save_png(grid, out, overwrite=args.force)
    print(
        f"wrote {png}: row 0 = references, column 0 = targets, cell (i, j) = target i with "
        f"reference j's {args.label!r}"
    )
    if js is not None:
        doc = dict(
            label=args.label,
            mode=mode,
            rho=rho,
            eps=eps,
            lam=lam,
            resize=args.resize,
            region=args.region,
            lab_parity=args.lab_parity,
            catalog=os.path.abspath(args.catalog),
            checkpoint=ckpt_label(args.ckpt),
            channels={k: int(np.sum(np.asarray(v) > 0)) for k, v in qs.items()},
            pairs=rows,
            mean=None
            if total is None
            else dict(in_mse=total["in_mse"], out_mse=total["out_mse"], ratio=total["ratio"]),
        )
        print(f"wrote {save_json(js, doc, overwrite=args.force)}")
    return 0


# ---- parsers ------------------------------------------------------------------------------------


def _generator_args(p, psi_help: str, cutoff_help: str) -> None:
    p.add_argument("--psi", type=finite_float, default=None, help=psi_help)
    p.add_argument("--cutoff", type=nonneg_int, default=None, help=cutoff_help)
    add_class_arg(p)
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        help="samples per generator call (bounds memory)",
    )
    p.add_argument("--x64", action="store_true", help="compute in float64")


def register(subparsers) -> None:
    """Add the ``eis`` command group (catalog / annotate / transfer)."""
    ex_catalog = "jaxedit eis catalog default --layer b32.conv1 --k 12 --seeds 0-99"
    ex_annotate = "jaxedit eis annotate eis_catalog_b32.conv1_k12.npz eyes=3,7 mouth=5"
    ex_transfer = (
        "jaxedit eis transfer default --catalog eis_catalog_b32.conv1_k12.npz --label eyes "
        "--target-seeds 0-3 --reference-seeds 10-13"
    )
    g = subparsers.add_parser(
        "eis",
        help="Editing in Style: k-means part catalogs and local style transfer (StyleGAN2 / 3)",
        description="Editing in Style (Collins et al. 2020) on StyleGAN2 / StyleGAN3: cluster a layer's "
        "features into parts, name them, and transfer a part's appearance.",
        epilog=examples(ex_catalog, ex_annotate, ex_transfer),
    )
    sub = g.add_subparsers(dest="eis_command", required=True, metavar="{catalog,annotate,transfer}")

    c = sub.add_parser(
        "catalog",
        help="spherical k-means of one layer's per-pixel features -> "
        "catalog .npz + a heatmap PNG to name the clusters",
        epilog=examples(
            ex_catalog,
            "jaxedit eis catalog ckpt/ --layer b32.conv1 --k 8 "
            "--latents ws.npy --pixels-per-sample 256",
        ),
    )
    c.add_argument("ckpt", help=CKPT_HELP)
    c.add_argument(
        "--layer",
        required=True,
        help="conv layer whose output is clustered, e.g. b32.conv1 (the reference "
        "uses the 32x32 block; 'jaxedit layers CKPT' lists them)",
    )
    c.add_argument("--k", type=positive_int, default=12, help="number of clusters")
    src = c.add_mutually_exclusive_group()
    src.add_argument(
        "--seeds",
        type=seed_list,
        default="0-99",
        help="samples to cluster, as NVIDIA generate.py seeds",
    )
    src.add_argument(
        "--latents",
        default=None,
        metavar="FILE",
        help=".npy of ws [N, num_ws, w_dim] or w [N, w_dim] instead of --seeds",
    )
    _generator_args(
        c,
        "truncation psi for the seeds (default: 1)",
        "truncate only the first CUTOFF W+ slots (default: all)",
    )
    c.add_argument(
        "--n-init",
        type=positive_int,
        default=3,
        help="k-means restarts, the lowest objective is kept (the reference: 3)",
    )
    c.add_argument(
        "--max-iter", type=positive_int, default=100, help="Lloyd iterations, or mini-batch epochs"
    )
    c.add_argument(
        "--kmeans-batch-size",
        type=positive_int,
        default=None,
        help="rows per mini-batch k-means step (default: full batch; the reference's "
        "scikit-learn MiniBatchKMeans used 100)",
    )
    c.add_argument(
        "--pixels-per-sample",
        type=positive_int,
        default=None,
        help="cluster this many random pixels per sample (default: all; bounds memory)",
    )
    c.add_argument(
        "--max-gib",
        type=nonneg_float,
        default=2.0,
        help="refuse when the [N*H*W, C] rows to cluster would take more GiB",
    )
    c.add_argument("--kmeans-seed", type=nonneg_int, default=0, help="PRNG seed of k-means")
    c.add_argument(
        "--preview",
        default=None,
        metavar="PATH",
        help="heatmap PNG (default: OUT without .npz + _clusters.png): row 0 samples, "
        "row 1+k the samples dimmed outside cluster k",
    )
    c.add_argument(
        "--preview-samples",
        type=positive_int,
        default=8,
        help="samples shown in the preview (at most the clustered ones)",
    )
    c.add_argument(
        "--preview-size",
        type=positive_int,
        default=128,
        help="largest cell side in the preview, pixels",
    )
    add_output_args(c, None, "the catalog (.npz; default: eis_catalog_<layer>_k<k>.npz)")
    c.set_defaults(fn=_cmd_catalog)

    a = sub.add_parser(
        "annotate",
        help="name catalog clusters: NAME=IDS (e.g. eyes=3,7 mouth=5); "
        "rewrites the catalog in place unless --out",
        epilog=examples(
            ex_annotate,
            "jaxedit eis annotate cat.npz             # list the labels",
            "jaxedit eis annotate cat.npz --remove mouth --out cat2.npz",
        ),
    )
    a.add_argument("catalog", help="catalog .npz from 'jaxedit eis catalog'")
    a.add_argument(
        "assignments",
        nargs="*",
        type=_assignment,
        metavar="NAME=IDS",
        help="NAME=IDS with IDS a list like 3,7 or 2-4, given before the options (a "
        "name given again is replaced); with none, print the labels",
    )
    a.add_argument(
        "--remove", action="append", default=[], metavar="NAME", help="drop a label (repeatable)"
    )
    a.add_argument("--replace", action="store_true", help="drop every existing label first")
    add_output_args(a, None, "the annotated catalog (default: rewrite CATALOG in place)")
    a.set_defaults(fn=_cmd_annotate)

    t = sub.add_parser(
        "transfer",
        help="transfer a labelled part from reference to target "
        "images -> PNG grid (targets x references), In/Out-MSE",
        epilog=examples(
            ex_transfer,
            "jaxedit eis transfer ckpt/ --catalog cat.npz --label eyes "
            "--mode ratio --rho 1 --eps 20 --json m.json",
        ),
    )
    t.add_argument("ckpt", help=CKPT_HELP + "; the one the catalog was made with")
    t.add_argument("--catalog", required=True, metavar="FILE", help="annotated catalog .npz")
    t.add_argument("--label", required=True, help="part to transfer (a catalog label)")
    t.add_argument("--target-seeds", type=seed_list, default="0-3", help="target images (seeds)")
    t.add_argument(
        "--reference-seeds", type=seed_list, default="10-13", help="reference images (seeds)"
    )
    _generator_args(
        t,
        "truncation psi (default: the catalog's, else 1)",
        "truncate only the first CUTOFF W+ slots (default: the catalog's)",
    )
    t.add_argument(
        "--mode",
        choices=("reference", "ratio", "simultaneous"),
        default="reference",
        help="channel query: reference (M > rho and running out-mass < eps), ratio "
        "(M/(1-M) > rho and running out-mass < eps), simultaneous (q = min(1, lam M))",
    )
    t.add_argument(
        "--rho",
        type=_per_layer(finite_float),
        default=None,
        help="threshold, one value or one per style layer (default 0.1; ratio mode "
        "0.25); untuned starting points: tune per model",
    )
    t.add_argument(
        "--eps",
        type=_per_layer(nonneg_float),
        default=None,
        help="budget of summed out-of-part mass 1-M, one value or one per style layer (default 10)",
    )
    t.add_argument(
        "--lam",
        type=_per_layer(nonneg_float),
        default=None,
        help="simultaneous mode scale lam, one value or one per style layer (default 2)",
    )
    t.add_argument(
        "--layers",
        default=None,
        help="style layers that may change: all (default), no-torgb, or a comma list",
    )
    t.add_argument(
        "--resize",
        choices=("nearest", "area"),
        default="nearest",
        help="mask resizing to each layer's input grid (nearest: the reference)",
    )
    t.add_argument(
        "--contribution-seeds",
        type=seed_list,
        default=None,
        help="samples for the contributions M (default: the catalog's own samples)",
    )
    t.add_argument(
        "--region",
        choices=("target", "union"),
        default="target",
        help="In/Out-MSE region: the target's label mask, or its union with the reference's",
    )
    t.add_argument(
        "--lab-parity",
        action="store_true",
        help="CIELAB with the reference's transposed sRGB->XYZ matrix (default: correct)",
    )
    t.add_argument(
        "--json",
        default=None,
        metavar="PATH",
        help="also write the metrics as JSON here (kept unless --force)",
    )
    add_output_args(t, None, "the grid (PNG; default: eis_transfer_<label>.png)")
    t.set_defaults(fn=_cmd_transfer)
