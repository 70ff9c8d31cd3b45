"""``--suite stylegan3`` (issue 22): jaxedit's StyleGAN3 against the PyTorch port of NVIDIA's
generator (``torch_ref/stylegan3.py``), from the same random NVIDIA-named state dict.

Rows: synthesis at batch 1 and 8, and the W Jacobian of one sample (every W slot tied, nearest
resize to ``min(256, res)``, channel sum: the ReSeFa protocol of the ``jacobian`` suite) by
forward mode: ``jaxedit.jacobian(space="w")`` vs ``torch.func.vmap(torch.func.jvp)`` over the
``w_dim`` basis in chunks. Each row has the max relative error against the PyTorch fp32 result
(TF32 off) next to its time.

Sizes: with a GPU, the 1024 px StyleGAN3-T (``train.py --cfg stylegan3-t``: z = w = 512,
channel base 32768, max 512), both precision classes; on a CPU, a 256 px T of reduced width
(w = 128, channel base 8192, max 128) for the forward rows and a 64 px one (w = 64, max 64) for
the Jacobian (the full-width Jacobian is hours there), fp32 only (a CPU has no TF32); ``--smoke``:
a 32 px toy. The jaxedit generator is built from the torch state dict by
``converters.stylegan3.nvidia.from_state_dict`` + ``jaxedit.checkpoint.generator_from_converted``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .harness import Row, timed_row
from .workloads import Context, _jax_prec, _rel, _set_torch_precision

#: (label, init kwargs) per size; torch_ref.stylegan3.config builds NVIDIA's train.py kwargs.
SIZES = {
    "smoke": dict(cfg="t", resolution=32, z_dim=16, w_dim=16, channel_base=256, channel_max=16),
    "cpu_forward": dict(
        cfg="t", resolution=256, z_dim=128, w_dim=128, channel_base=8192, channel_max=128
    ),
    "cpu_jacobian": dict(
        cfg="t", resolution=64, z_dim=64, w_dim=64, channel_base=2048, channel_max=64
    ),
    "gpu": dict(cfg="t", resolution=1024),  # the released FFHQ / AFHQ StyleGAN3-T shape
}
SEED = 22


def _label(spec: dict) -> str:
    full = spec.get("channel_base") is None
    width = "" if full else f", w {spec['w_dim']}, ≤{spec['channel_max']} ch"
    return f"StyleGAN3-{spec['cfg'].upper()} {spec['resolution']}px{width}"


def stylegan3_pair(spec: dict, torch_device: str, seed: int = SEED):
    """(jaxedit generator, torch params, torch Arch) with the same random weights: a random
    NVIDIA state dict (``torch_ref.stylegan3.random_generator``) converted by jaxedit's reader."""
    import torch

    from converters.stylegan3.nvidia import from_state_dict
    from jaxedit.checkpoint import generator_from_converted

    from .torch_ref import stylegan3 as tr3

    kw = dict(spec)
    init = tr3.config(kw.pop("cfg"), kw.pop("resolution"), **kw)
    p, arch = tr3.random_generator(init, seed, device=torch_device, dtype=torch.float32)
    gen: Any = generator_from_converted(from_state_dict(tr3.state_dict_numpy(p), arch.init_kwargs))
    return gen, p, arch


def _forward_rows(ctx: Context, spec: dict, precisions) -> list[Row]:
    import jax.numpy as jnp
    import torch

    from .torch_ref import stylegan3 as tr3

    gen, p, arch = stylegan3_pair(spec, ctx.torch_device)
    rows = []
    for n in (1, 8):
        z = np.random.RandomState(n).randn(n, arch.z_dim).astype(np.float32)
        ws = np.asarray(gen.mapping(z, dtype=jnp.float32))
        ws_t = torch.tensor(ws, device=ctx.torch_device)
        workload = f"synthesis {_label(spec)} batch {n}"
        ref = None
        for fast in precisions:
            prec = "fast" if fast else "fp32"
            _set_torch_precision(torch, fast)
            with torch.no_grad():
                row_t, out_t = timed_row(
                    "stylegan3",
                    workload,
                    "pytorch",
                    prec,
                    lambda: tr3.synthesis(p, arch, ws_t),
                    repeats=ctx.repeats,
                    backend="torch",
                )
            row_j, out_j = timed_row(
                "stylegan3",
                workload,
                "jaxedit",
                prec,
                lambda: gen.synthesis(ws, dtype=jnp.float32, precision=_jax_prec(fast)),
                repeats=ctx.repeats,
            )
            img_t = out_t.cpu().numpy().transpose(0, 2, 3, 1)
            if ref is None:
                ref = img_t  # torch fp32, TF32 off
            for row, out in ((row_t, img_t), (row_j, np.asarray(out_j))):
                row.accuracy = _rel(out, ref)
                row.accuracy_metric = "max rel. err. vs torch fp32"
                row.params = {
                    "batch": n,
                    "img_per_s": n / row.median_s if row.median_s else None,
                    "num_ws": arch.num_ws,
                }
            rows += [row_t, row_j]
    _set_torch_precision(torch, False)
    return rows


def _jacobian_rows(ctx: Context, spec: dict, precisions) -> list[Row]:
    import jax.numpy as jnp
    import torch
    import torch.nn.functional as F

    import jaxedit

    from .torch_ref import stylegan3 as tr3

    gen, p, arch = stylegan3_pair(spec, ctx.torch_device)
    z = np.random.RandomState(4).randn(1, arch.z_dim).astype(np.float32)
    ws = np.asarray(gen.mapping(z, dtype=jnp.float32))
    resize = 16 if ctx.smoke else min(256, arch.img_resolution)
    chunk = 8 if ctx.smoke or ctx.torch_device == "cpu" else 32
    wt = torch.tensor(ws[0, 0], device=ctx.torch_device)
    d = arch.w_dim

    def f(w):  # w [w_dim] tied to every slot -> [resize, resize] (nearest, channel sum)
        img = tr3.synthesis(p, arch, w[None, None].expand(1, arch.num_ws, -1))
        if img.shape[-1] > resize:
            img = F.interpolate(img, scale_factor=resize / img.shape[-1])
        return img.sum(1)[0]

    def torch_jac():
        eye = torch.eye(d, device=wt.device)
        cols = [
            torch.func.vmap(lambda t: torch.func.jvp(f, (wt,), (t,))[1])(eye[i : i + chunk])
            for i in range(0, d, chunk)
        ]
        return torch.cat(cols).permute(1, 2, 0)  # [resize, resize, w_dim]

    workload = f"W Jacobian (1 sample, {d} cols, {resize}² ch-sum) {_label(spec)}"
    reps = min(ctx.repeats, 3)
    rows, ref, jac_out = [], None, []
    for fast in precisions:
        prec = "fast" if fast else "fp32"
        _set_torch_precision(torch, fast)
        with torch.no_grad():
            row_t, jt = timed_row(
                "stylegan3",
                workload,
                "pytorch-torch.func",
                prec,
                torch_jac,
                repeats=reps,
                backend="torch",
            )
        row_j, jj = timed_row(
            "stylegan3",
            workload,
            "jaxedit",
            prec,
            lambda: jaxedit.jacobian(
                gen,
                ws,
                space="w",
                output=jaxedit.OutputSpec(resize, channels="sum"),
                compute=jaxedit.Compute(jnp.float32, _jax_prec(fast), chunk=chunk),
            ),
            repeats=reps,
        )
        jt = jt.cpu().numpy()
        if ref is None:
            ref = jt  # torch fp32, TF32 off
        for row, J in ((row_t, jt), (row_j, np.asarray(jj[0]).reshape(jt.shape))):
            jac_out.append(J)
            row.accuracy = _rel(J, ref)
            row.accuracy_metric = "max rel. err. vs torch fp32"
            row.params = {"w_dim": d, "rows": resize * resize, "chunk": chunk}
        row_t.notes = f"vmap(jvp) over the W basis in chunks of {chunk}"
        row_j.notes = f"forward mode, chunk {chunk}"
        rows += [row_t, row_j]
    # the float64 truth on the first columns: fp32 forward mode through 16 normalised layers
    # loses ~1e-3 in both frameworks on random weights, so say which side is closer
    k = min(8, d)
    p64 = {key: v.double() for key, v in p.items()}
    w64 = wt.double()

    def f64(w):
        return tr3.synthesis(p64, arch, w[None, None].expand(1, arch.num_ws, -1)).sum(1)[0]

    with torch.no_grad():
        eye = torch.eye(d, dtype=torch.float64, device=wt.device)[:k]
        if resize < arch.img_resolution:
            fk = lambda w: F.interpolate(  # noqa: E731
                f64(w)[None, None], scale_factor=resize / arch.img_resolution
            )[0, 0]
        else:
            fk = f64
        j64 = torch.func.vmap(lambda t: torch.func.jvp(fk, (w64,), (t,))[1])(eye)
        j64 = j64.permute(1, 2, 0).cpu().numpy()
    for row, J in zip(rows, jac_out):
        err = _rel(J[..., :k], j64)
        row.params["max_rel_err_vs_torch_float64_first_cols"] = err
        row.notes += f"; vs torch float64 on the first {k} columns: {err:.2g}"
    _set_torch_precision(torch, False)
    return rows


def run(ctx: Context) -> list[Row]:
    """The suite's rows (see the module docstring for the sizes)."""
    gpu = ctx.torch_device != "cpu"
    precisions = (False, True) if gpu else (False,)
    if ctx.smoke:
        fwd = jac = SIZES["smoke"]
    elif gpu:
        fwd = jac = SIZES["gpu"]
    else:
        fwd, jac = SIZES["cpu_forward"], SIZES["cpu_jacobian"]
    return _forward_rows(ctx, fwd, precisions) + _jacobian_rows(ctx, jac, precisions)
