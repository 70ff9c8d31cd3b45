"""``jaxedit eis ...``: Editing in Style catalogs, annotation and local style transfer.

    jaxedit eis catalog CKPT --layer b32.conv1 --k 12 --seeds 0-99 --out cat.npz
    jaxedit eis annotate cat.npz eyes=3,7 mouth=5
    jaxedit eis transfer CKPT --catalog cat.npz --label eyes --target-seeds 0-3 \\
        --reference-seeds 10-13 --out grid.png

Every command writes only its declared outputs, atomically, and refuses to replace an existing
file without ``--force`` (``annotate`` rewrites its catalog in place unless ``--out`` is given:
that file is its declared output).
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np

# ---- small local validators (the shared CLI validators will replace these at merge) -----------


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return v


def _per_layer_floats(text: str):
    """``0.1`` or ``0.1,0.2,...`` (one value per style layer, in generator order)."""
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"empty value: {text!r}")
    vals = [_finite_float(p) for p in parts]
    return vals[0] if len(vals) == 1 else vals


def _check_outputs(paths, force: bool) -> None:
    """Refuse to replace existing files without --force, and never replace a directory."""
    for p in paths:
        if p is None:
            continue
        if os.path.isdir(p):
            raise ValueError(f"output {p} is a directory")
        if os.path.exists(p) and not force:
            raise FileExistsError(f"{p} exists: pass --force to replace it")


def _int_list(text: str) -> list[int]:
    from .cli import parse_int_list

    return parse_int_list(text)


# ---- helpers ------------------------------------------------------------------------------------


def _load_stylegan2(path: str):
    from .checkpoint import load_generator

    gen = load_generator(path)
    if getattr(gen, "family", None) == "biggan" or not hasattr(gen, "styles"):
        raise ValueError(f"{path}: Editing in Style needs a StyleGAN2 generator")
    return gen


def _seed_ws(gen, seeds, psi, cutoff):
    from .models.stylegan2 import seed_to_z

    if any(s < 0 or s >= 2**32 for s in seeds):
        raise ValueError("seeds must be in [0, 2**32)")
    z = np.concatenate([seed_to_z(s, gen.z_dim) for s in seeds])
    return gen.mapping(z, None, psi, cutoff)


def _cell(imgs_u8: np.ndarray, size: int) -> np.ndarray:
    """[N, R, R, 3] uint8 -> [N, size, size, 3] (block average when size divides R)."""
    r = imgs_u8.shape[1]
    if size >= r:
        up = max(1, min(size, 64) // r)                     # small models: enlarge to >= 64 px
        return imgs_u8.repeat(up, axis=1).repeat(up, axis=2)
    s = r // size
    x = imgs_u8[:, :size * s, :size * s].astype(np.float64)
    x = x.reshape(x.shape[0], size, s, size, s, x.shape[-1]).mean(axis=(2, 4))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _text_column(labels, cell: int, width: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    col = Image.new("RGB", (width, cell * len(labels)), (255, 255, 255))
    draw = ImageDraw.Draw(col)
    for i, text in enumerate(labels):
        draw.text((2, i * cell + max(0, cell // 2 - 5)), text, fill=(0, 0, 0))
    return np.asarray(col)


def _heatmap_sheet(images, heatmaps, cell: int) -> np.ndarray:
    """Row 0: the samples; row 1 + k: each sample dimmed outside cluster k. A left column names
    the rows (cluster ids)."""
    from .eis import resize_masks
    from .images import image_grid, to_uint8

    imgs = _cell(to_uint8(images), cell)                                # [N, c, c, 3]
    n, k = heatmaps.shape[:2]
    masks = np.asarray(resize_masks(heatmaps, imgs.shape[1], "nearest"))  # [N, K, c, c]
    rows = [imgs]
    for j in range(k):
        w = 0.2 + 0.8 * masks[:, j, :, :, None]
        rows.append(np.clip(imgs * w, 0, 255).astype(np.uint8))
    grid = image_grid(np.concatenate(rows), cols=n)
    fr = np.asarray([(masks[:, j].mean()) for j in range(k)])
    names = ["sample"] + [f"{j} ({100 * fr[j]:.0f}%)" for j in range(k)]
    return np.concatenate([_text_column(names, imgs.shape[1], 64), grid], axis=1)


# ---- commands -----------------------------------------------------------------------------------


def _cmd_catalog(args) -> int:
    from .cli import _setup_x64

    _setup_x64(args)
    from . import eis
    from .images import save_png

    preview = args.preview or os.path.splitext(args.out)[0] + ".png"
    if os.path.abspath(preview) == os.path.abspath(args.out):
        raise ValueError("--preview must differ from --out")
    _check_outputs([args.out, preview], args.force)
    gen = _load_stylegan2(args.ckpt)
    if args.layer not in gen.conv_layer_names:
        raise ValueError(f"--layer {args.layer!r} is not a conv layer of {args.ckpt}; choose one "
                         f"of {', '.join(gen.conv_layer_names)}")
    if args.latents:
        try:
            lat = np.load(args.latents, allow_pickle=False)
        except (OSError, ValueError) as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise ValueError(f"--latents {args.latents}: not a readable .npy array ({e})") from None
        kw = dict(latents=lat)
        src = f"{len(lat)} latents from {args.latents}"
    else:
        kw = dict(seeds=args.seeds, psi=args.psi, cutoff=args.cutoff)
        src = f"{len(args.seeds)} seeds"
    print(f"clustering {args.layer} of {src} into k={args.k}")
    cat = eis.Catalog.fit(gen, args.layer, args.k, key=args.kmeans_seed, batch_size=args.batch_size,
                          pixels_per_sample=args.pixels_per_sample, n_init=args.n_init,
                          kmeans_batch_size=args.kmeans_batch_size, max_iter=args.max_iter,
                          progress=True, **kw)
    cat = _with_info(cat, checkpoint=os.path.abspath(args.ckpt))
    n_prev = min(args.preview_samples, len(cat.latents))
    ws_prev = np.asarray(cat.latents[:n_prev])
    heat = np.asarray(cat.predict(gen, ws_prev))
    images = np.asarray(gen.synthesis(eis._as_ws(gen, ws_prev)))
    out = cat.save(args.out)
    png = save_png(_heatmap_sheet(images, heat, args.preview_size), preview)
    info = cat.info
    print(f"objective {info['objective']:.6g} ({'converged' if info['converged'] else 'NOT converged'}"
          f" after {info['n_iter']} iterations; restarts "
          + ", ".join(f"{v:.6g}" for v in info["restart_objectives"]) + ")")
    share = heat.mean(axis=(0, 2, 3))
    print("cluster share of the preview pixels: "
          + ", ".join(f"{j}: {100 * s:.1f}%" for j, s in enumerate(share)))
    print(f"wrote {out}")
    print(f"wrote {png}: row 0 = samples, row 1+k = cluster k (name them with "
          f"'jaxedit eis annotate {args.out} NAME=IDS')")
    return 0


def _transfer_pairs(gen, pt, pr, qs, batch_size: int) -> np.ndarray:
    """eis.transfer over pairs in batches (the last one padded: one compilation)."""
    import jax.numpy as jnp

    from . import eis

    n = pt.shape[0]
    b = min(batch_size, n)
    out = []
    for lo in range(0, n, b):
        t, r = pt[lo:lo + b], pr[lo:lo + b]
        m = t.shape[0]
        if m < b:
            t = jnp.concatenate([t, jnp.repeat(t[-1:], b - m, axis=0)])
            r = jnp.concatenate([r, jnp.repeat(r[-1:], b - m, axis=0)])
        out.append(np.asarray(eis.transfer(gen, t, r, qs))[:m])
    return np.concatenate(out)


def _with_info(cat, **extra):
    """A copy of the catalog with ``extra`` added to its info."""
    import dataclasses

    return dataclasses.replace(cat, info={**dict(cat.info), **extra})


def _parse_assignment(text: str) -> tuple[str, list[int]]:
    if "=" not in text:
        raise ValueError(f"annotation {text!r} must be NAME=IDS, e.g. eyes=3,7")
    name, ids = text.split("=", 1)
    try:
        vals = _int_list(ids)
    except argparse.ArgumentTypeError as e:
        raise ValueError(f"annotation {text!r}: {e}") from None
    return name.strip(), vals


def _cmd_annotate(args) -> int:
    from .eis import Catalog

    cat = Catalog.load(args.catalog)
    pairs = [_parse_assignment(a) for a in args.assignments]
    names = [n for n, _ in pairs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"label(s) {dup} given more than once")
    if not pairs and not args.remove and not args.replace:
        print(f"{args.catalog}: layer {cat.layer}, k = {cat.k}")
        for name, ids in cat.annotations.items():
            print(f"  {name} = {','.join(map(str, ids))}")
        if not cat.annotations:
            print("  (no labels)")
        return 0
    if args.remove:
        cat = cat.without(*args.remove)
    cat = cat.annotate(dict(pairs), replace=args.replace)
    out = args.out or args.catalog
    if args.out and os.path.abspath(args.out) != os.path.abspath(args.catalog):
        _check_outputs([args.out], args.force)
    path = cat.save(out)
    for name, ids in cat.annotations.items():
        print(f"  {name} = {','.join(map(str, ids))}")
    print(f"wrote {path}")
    return 0


def _cmd_transfer(args) -> int:
    from .cli import _setup_x64

    _setup_x64(args)
    import jax.numpy as jnp

    from . import eis
    from ._io import save_json
    from .images import image_grid, save_png, to_uint8

    _check_outputs([args.out, args.json], args.force)
    cat = eis.Catalog.load(args.catalog)
    if args.label not in cat.annotations:
        raise ValueError(f"--label {args.label!r} is not in {args.catalog} (labels: "
                         f"{list(cat.annotations) or 'none; run eis annotate first'})")
    gen = _load_stylegan2(args.ckpt)
    cat.check_generator(gen)
    layers = None
    if args.layers not in (None, "all"):
        layers = list(gen.layer_names) if args.layers == "no-torgb" else args.layers.split(",")
        if args.layers == "no-torgb":
            layers = [n for n in layers if not n.endswith(".torgb")]
        unknown = [n for n in layers if n not in gen.layer_names]
        if unknown:
            raise ValueError(f"--layers: unknown style layers {unknown}; choose from "
                             f"{', '.join(gen.layer_names)}")
    psi = args.psi if args.psi is not None else float(cat.info.get("psi", 1.0))
    cutoff = args.cutoff if args.cutoff is not None else cat.info.get("cutoff")
    if args.contribution_seeds is not None:
        lat_c = _seed_ws(gen, args.contribution_seeds, psi, cutoff)
        how = f"{len(args.contribution_seeds)} seeds"
    elif cat.latents is not None:
        lat_c, how = cat.latents, f"the catalog's {len(cat.latents)} samples"
    else:
        raise ValueError(f"{args.catalog} stores no samples: pass --contribution-seeds")
    print(f"contributions of {args.label!r} on {how} (masks resized {args.resize})")
    contribs = eis.contributions(gen, lat_c, cat, resize=args.resize, batch_size=args.batch_size,
                                 progress=True)
    mode = args.mode
    rho = args.rho if args.rho is not None else (0.25 if mode == "ratio" else 0.1)
    names = layers or list(gen.layer_names)
    for argname, val in (("rho", rho), ("eps", args.eps), ("lam", args.lam)):
        if isinstance(val, list) and len(val) != len(names):
            raise ValueError(f"--{argname} has {len(val)} values for {len(names)} layers "
                             f"({', '.join(names)})")
    qs = eis.label_queries(contribs, args.label, rho, args.eps, mode, lam=args.lam, layers=layers)
    print("channels transferred: " + ", ".join(
        f"{k} {int(np.sum(np.asarray(v) > 0))}/{v.shape[0]}" for k, v in qs.items()))
    ws_t = _seed_ws(gen, args.target_seeds, psi, cutoff)
    ws_r = _seed_ws(gen, args.reference_seeds, psi, cutoff)
    nt, nr = len(args.target_seeds), len(args.reference_seeds)
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
    err = eis.lab_squared_error(np.repeat(img_t, nr, axis=0), edited, args.lab_parity)
    rows = []
    print(f"{'target':>8} {'reference':>9} {'In-MSE':>10} {'Out-MSE':>10} {'Out/In':>8}")
    for i, ts in enumerate(args.target_seeds):
        for j, rs in enumerate(args.reference_seeds):
            p = i * nr + j
            if region[p].sum() == 0 or region[p].sum() == region[p].size:
                print(f"{ts:>8} {rs:>9}  (the {args.label!r} region is "
                      f"{'empty' if region[p].sum() == 0 else 'the whole image'})")
                rows.append(dict(target=ts, reference=rs, in_mse=None, out_mse=None))
                continue
            r = eis.in_out_mse(err[p:p + 1], region[p])
            rows.append(dict(target=ts, reference=rs, in_mse=r["in_mse"], out_mse=r["out_mse"]))
            print(f"{ts:>8} {rs:>9} {r['in_mse']:10.4g} {r['out_mse']:10.4g} {r['ratio']:8.3f}")
    total = None
    if region.sum() > 0 and region.sum() < region.size:
        total = eis.in_out_mse(err, region)
        print(f"{'all':>8} {'':>9} {total['in_mse']:10.4g} {total['out_mse']:10.4g} "
              f"{total['ratio']:8.3f}")
    blank = np.full_like(img_t[:1], -1.0)
    cells = [blank, img_r]
    for i in range(nt):
        cells += [img_t[i:i + 1], edited[i * nr:(i + 1) * nr]]
    grid = image_grid(to_uint8(np.concatenate(cells)), cols=nr + 1)
    png = save_png(grid, args.out)
    print(f"wrote {png}: row 0 = references, column 0 = targets, cell (i, j) = target i with "
          f"reference j's {args.label!r}")
    if args.json:
        doc = dict(label=args.label, mode=mode, rho=rho, eps=args.eps, lam=args.lam,
                   resize=args.resize, region=args.region, lab_parity=args.lab_parity,
                   catalog=os.path.abspath(args.catalog), checkpoint=os.path.abspath(args.ckpt),
                   channels={k: int(np.sum(np.asarray(v) > 0)) for k, v in qs.items()},
                   pairs=rows, mean=None if total is None else
                   dict(in_mse=total["in_mse"], out_mse=total["out_mse"], ratio=total["ratio"]))
        print(f"wrote {save_json(args.json, doc)}")
    return 0


# ---- parsers ------------------------------------------------------------------------------------


def register(subparsers) -> None:
    """Add the ``eis`` command group (catalog / annotate / transfer)."""
    g = subparsers.add_parser(
        "eis", help="Editing in Style: k-means part catalogs and local style transfer (StyleGAN2)",
        description="Editing in Style (Collins et al. 2020) on StyleGAN2: cluster a layer's "
                    "features into parts, name them, and transfer a part's appearance.")
    sub = g.add_subparsers(dest="eis_command", required=True)

    c = sub.add_parser("catalog", help="spherical k-means of one layer's per-pixel features -> "
                                       "catalog .npz + a heatmap PNG to name the clusters")
    c.add_argument("ckpt", help="StyleGAN2 checkpoint (converted dir, NVIDIA .pkl, rosinality .pt)")
    c.add_argument("--layer", required=True,
                   help="conv layer whose output is clustered, e.g. b32.conv1 (the reference "
                        "uses the 32x32 block)")
    c.add_argument("--k", type=_positive_int, default=12, help="number of clusters (default 12)")
    c.add_argument("--seeds", type=_int_list, default=_int_list("0-99"),
                   help="samples to cluster, as NVIDIA generate.py seeds (default 0-99)")
    c.add_argument("--latents", default=None,
                   help=".npy of ws [N, num_ws, w_dim] or w [N, w_dim] instead of --seeds")
    c.add_argument("--psi", type=_finite_float, default=1.0, help="truncation psi for the seeds (default 1)")
    c.add_argument("--cutoff", type=_positive_int, default=None,
                   help="truncate only the first CUTOFF W+ slots (default: all)")
    c.add_argument("--n-init", type=_positive_int, default=3,
                   help="k-means restarts, the best objective is kept (default 3, as the reference)")
    c.add_argument("--max-iter", type=_positive_int, default=100,
                   help="Lloyd iterations, or mini-batch epochs (default 100)")
    c.add_argument("--kmeans-batch-size", type=_positive_int, default=None,
                   help="rows per mini-batch k-means step (default: full batch; the reference's "
                        "scikit-learn MiniBatchKMeans used 100)")
    c.add_argument("--pixels-per-sample", type=_positive_int, default=None,
                   help="cluster this many random pixels per sample (default: all; bounds memory)")
    c.add_argument("--batch-size", type=_positive_int, default=8,
                   help="samples per generator call (default 8)")
    c.add_argument("--kmeans-seed", type=int, default=0, help="PRNG seed of k-means (default 0)")
    c.add_argument("--preview", default=None,
                   help="heatmap PNG (default: OUT with .png): row 0 samples, row 1+k cluster k")
    c.add_argument("--preview-samples", type=_positive_int, default=8,
                   help="samples shown in the preview (default 8)")
    c.add_argument("--preview-size", type=_positive_int, default=128,
                   help="largest cell side in the preview, pixels (default 128)")
    c.add_argument("--out", required=True, help="catalog file to write (.npz)")
    c.add_argument("--force", action="store_true", help="replace OUT / the preview if they exist")
    c.add_argument("--x64", action="store_true", help="compute in float64")
    c.set_defaults(fn=_cmd_catalog)

    a = sub.add_parser("annotate", help="name catalog clusters: NAME=IDS (e.g. eyes=3,7 mouth=5); "
                                        "rewrites the catalog in place unless --out")
    a.add_argument("catalog", help="catalog .npz from 'eis catalog'")
    a.add_argument("assignments", nargs="*",
                   help="NAME=IDS with IDS a list like 3,7 or 2-4, given before the options (a "
                        "name given again is replaced); with none, print the labels")
    a.add_argument("--remove", action="append", default=[], metavar="NAME",
                   help="drop a label (repeatable)")
    a.add_argument("--replace", action="store_true", help="drop every existing label first")
    a.add_argument("--out", default=None,
                   help="write the annotated catalog here instead of rewriting CATALOG")
    a.add_argument("--force", action="store_true", help="replace --out if it exists")
    a.set_defaults(fn=_cmd_annotate)

    t = sub.add_parser("transfer", help="transfer a labelled part from reference to target "
                                        "images -> PNG grid (targets x references), In/Out-MSE")
    t.add_argument("ckpt", help="StyleGAN2 checkpoint the catalog was made with")
    t.add_argument("--catalog", required=True, help="annotated catalog .npz")
    t.add_argument("--label", required=True, help="part to transfer (a catalog label)")
    t.add_argument("--target-seeds", type=_int_list, default=_int_list("0-3"),
                   help="target images (seeds, default 0-3)")
    t.add_argument("--reference-seeds", type=_int_list, default=_int_list("10-13"),
                   help="reference images (seeds, default 10-13)")
    t.add_argument("--psi", type=_finite_float, default=None,
                   help="truncation psi (default: the catalog's, else 1)")
    t.add_argument("--cutoff", type=_positive_int, default=None,
                   help="truncate only the first CUTOFF W+ slots (default: the catalog's)")
    t.add_argument("--mode", choices=("reference", "ratio", "simultaneous"), default="reference",
                   help="channel query: reference (M > rho and running out-mass < eps), ratio "
                        "(M/(1-M) > rho and running out-mass < eps), simultaneous (q = min(1, lam M))")
    t.add_argument("--rho", type=_per_layer_floats, default=None,
                   help="threshold, one value or one per style layer (default 0.1; ratio mode 0.25). "
                        "Untuned starting points: tune per model")
    t.add_argument("--eps", type=_per_layer_floats, default=10.0,
                   help="budget of summed out-of-part mass 1-M (default 10), one value or per layer")
    t.add_argument("--lam", type=_per_layer_floats, default=2.0,
                   help="simultaneous mode scale lam (default 2), one value or per layer")
    t.add_argument("--layers", default=None,
                   help="style layers that may change: all (default), no-torgb, or a comma list")
    t.add_argument("--resize", choices=("nearest", "area"), default="nearest",
                   help="mask resizing to each layer's input grid (default nearest, as the reference)")
    t.add_argument("--contribution-seeds", type=_int_list, default=None,
                   help="samples for the contributions M (default: the catalog's own samples)")
    t.add_argument("--region", choices=("target", "union"), default="target",
                   help="In/Out-MSE region: the target's label mask (default) or its union with "
                        "the reference's")
    t.add_argument("--lab-parity", action="store_true",
                   help="CIELAB with the reference's transposed sRGB->XYZ matrix (default: correct)")
    t.add_argument("--batch-size", type=_positive_int, default=8,
                   help="samples per generator call (default 8)")
    t.add_argument("--out", required=True, help="PNG grid to write")
    t.add_argument("--json", default=None, help="also write the metrics as JSON here")
    t.add_argument("--force", action="store_true", help="replace existing outputs")
    t.add_argument("--x64", action="store_true", help="compute in float64")
    t.set_defaults(fn=_cmd_transfer)
