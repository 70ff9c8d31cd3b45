"""The benchmark suites. Each ``suite_*(ctx)`` returns a list of :class:`harness.Row`.

Sizes come from ``ctx.smoke``: full = the real architectures (1024px config-f StyleGAN2,
BigGAN-deep 256, D up to 9216, 512-channel convs at 64x64); smoke = toy sizes that run on a CPU
in seconds (CI executes them; those numbers are not results).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time

import numpy as np

from .harness import Row, measure, stats, timed_row

TARGETS = {
    ("forward", 8, "fp32"): "≥ 1.5× (anchor 87 img/s)",
    ("forward", 32, "fp32"): "≥ 1.5× (anchor 21 img/s)",
    ("forward", 32, "fast"): "≥ 1.5× (anchor 171 img/s fp16-mixed)",
    "jacobian_fp32": "≤ 5 s, top-5 |cos| ≥ 0.999",
    "jacobian_fast": "≥ 3× torch.func, top-5 |cos| ≥ 0.99",
    "wplus": "≤ 30 s",
    "dense9216": "≤ 1 s",
    "sefa": "≤ 20 ms",
    "spectrum": "≤ 2 s",
    "biggan": "≥ 1.5×",
    "panda": "≥ 10× faster to the same loss",
    "moments_rss": "peak RSS flat in N (8 vs 64 samples)",
}


@dataclasses.dataclass
class Context:
    smoke: bool
    repeats: int
    torch_device: str
    log: callable = print


def _set_torch_precision(torch, fast: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = fast
    torch.backends.cudnn.allow_tf32 = fast


def _jax_prec(fast: bool) -> str:
    return "default" if fast else "highest"


def _sg2_config(smoke: bool):
    from jaxedit.models.stylegan2 import StyleGAN2Config

    if smoke:
        return StyleGAN2Config.create(
            {4: 16, 8: 16, 16: 8, 32: 8},
            z_dim=16,
            w_dim=16,
            c_dim=0,
            img_resolution=32,
            mapping_layers=2,
        )
    return StyleGAN2Config.from_channel_base(
        32768, 512, 1024, z_dim=512, w_dim=512, c_dim=0, mapping_layers=8
    )


def _sg2_pair(ctx: Context):
    """(jaxedit generator, torch params, config) with the same random weights."""
    import torch
    from flax import nnx

    from jaxedit.models.stylegan2 import StyleGAN2Generator

    from .torch_ref.stylegan2 import params_from_jaxedit

    cfg = _sg2_config(ctx.smoke)
    gen = StyleGAN2Generator(cfg, rngs=nnx.Rngs(0))
    return gen, params_from_jaxedit(gen, device=ctx.torch_device, dtype=torch.float32), cfg


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _abs_cos_min(x, y) -> float:
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    return float(np.min(np.abs(np.sum(x * y, axis=-1))))


# ------------------------------------------------------------------------------------------------
def suite_forward(ctx: Context) -> list[Row]:
    import jax.numpy as jnp
    import torch

    from .torch_ref import stylegan2 as tr

    gen, p, cfg = _sg2_pair(ctx)
    rows = []
    batches = (2, 4) if ctx.smoke else (8, 32)
    for n in batches:
        z = np.random.RandomState(n).randn(n, cfg.z_dim).astype(np.float32)
        ws = np.asarray(gen.mapping(z, dtype=jnp.float32))
        ws_t = torch.tensor(ws, device=ctx.torch_device)
        ref = None
        for fast in (False, True):
            prec = "fast" if fast else "fp32"
            _set_torch_precision(torch, fast)
            with torch.no_grad():
                row_t, out_t = timed_row(
                    "forward",
                    f"synthesis {cfg.img_resolution}px batch {n}",
                    "pytorch",
                    prec,
                    lambda: tr.synthesis(p, cfg, ws_t),
                    repeats=ctx.repeats,
                    backend="torch",
                )
            row_j, out_j = timed_row(
                "forward",
                f"synthesis {cfg.img_resolution}px batch {n}",
                "jaxedit",
                prec,
                lambda: gen.synthesis(ws, dtype=jnp.float32, precision=_jax_prec(fast)),
                repeats=ctx.repeats,
            )
            if ref is None:
                ref = out_t.cpu().numpy().transpose(0, 2, 3, 1)  # torch fp32, TF32 off
            for row, out in ((row_t, out_t.cpu().numpy().transpose(0, 2, 3, 1)), (row_j, out_j)):
                row.accuracy = _rel(out, ref)
                row.accuracy_metric = "max rel. err. vs torch fp32"
                row.params = {"batch": n, "img_per_s": n / row.median_s}
                row.target = TARGETS.get(("forward", n, prec), "")
            rows += [row_t, row_j]
    _set_torch_precision(torch, False)
    return rows


# ------------------------------------------------------------------------------------------------
def _jacobian_setup(ctx):
    import jax.numpy as jnp

    gen, p, cfg = _sg2_pair(ctx)
    z = np.random.RandomState(4).randn(1, cfg.z_dim).astype(np.float32)
    ws = np.asarray(gen.mapping(z, dtype=jnp.float32))
    resize = 8 if ctx.smoke else 256
    return gen, p, cfg, ws, resize


def _torch_rows_fn(p, cfg, resize):
    import torch.nn.functional as F

    from .torch_ref import stylegan2 as tr

    def f(w):  # w [w_dim] tied to every slot -> [resize, resize] (nearest, channel sum)
        ws = w[None, None].expand(1, cfg.num_ws, -1)
        img = tr.synthesis(p, cfg, ws)
        if img.shape[-1] > resize:
            img = F.interpolate(img, scale_factor=resize / img.shape[-1])
        return img.sum(1)[0]

    return f


def suite_jacobian(ctx: Context) -> list[Row]:
    """W-space Jacobian, nearest resize, channel sum, one sample: three ways."""
    import jax.numpy as jnp
    import torch

    import jaxedit

    gen, p, cfg, ws, resize = _jacobian_setup(ctx)
    wt = torch.tensor(ws[0, 0], device=ctx.torch_device)
    f = _torch_rows_fn(p, cfg, resize)
    rows_total = resize * resize
    chunk = 8 if ctx.smoke else 32
    box = jaxedit.preset("ffhq/eyes")
    out: list[Row] = []

    # reference quality: jaxedit fp32 HIGHEST
    out_sum = jaxedit.OutputSpec(resize, channels="sum")
    ref_j = np.asarray(
        jaxedit.jacobian(
            gen, ws, space="w", output=out_sum, compute=jaxedit.Compute(jnp.float32, chunk=chunk)
        )[0]
    )
    ref_dirs = jaxedit.resefa(ref_j.astype(np.float64), box, k=5).directions

    def acc(J):
        J = np.asarray(J, np.float64).reshape(resize, resize, 1, -1)
        return _abs_cos_min(jaxedit.resefa(J, box, k=5).directions, ref_dirs)

    # 1. the reference's row loop (autograd, one backward per output pixel): K rows, extrapolated
    k_rows = 4 if ctx.smoke else 128
    _set_torch_precision(torch, False)
    w_req = wt.clone().requires_grad_(True)

    def row_loop():
        y = f(w_req).reshape(-1)
        g = [torch.autograd.grad(y[r], w_req, retain_graph=True)[0] for r in range(k_rows)]
        return torch.stack(g)

    times, _ = measure(row_loop, repeats=1 if not ctx.smoke else ctx.repeats)
    est = [t * rows_total / k_rows for t in times]
    out.append(
        Row(
            "jacobian",
            "W Jacobian (1 sample)",
            "pytorch-reference-rowloop",
            "fp32",
            **stats(est),
            notes=f"timed {k_rows} of {rows_total} rows, extrapolated",
            target="",
        )
    )

    # 2. torch.func forward mode in chunks of `chunk` tangents; 3. jaxedit
    for fast in (False, True):
        prec = "fast" if fast else "fp32"
        _set_torch_precision(torch, fast)
        d = wt.shape[0]

        def torch_func():
            cols = []
            eye = torch.eye(d, device=wt.device)
            for i in range(0, d, chunk):
                tang = eye[i : i + chunk]
                cols.append(torch.func.vmap(lambda t: torch.func.jvp(f, (wt,), (t,))[1])(tang))
            return torch.cat(cols).permute(1, 2, 0)

        with torch.no_grad():
            row_t, jt = timed_row(
                "jacobian",
                "W Jacobian (1 sample)",
                "pytorch-torch.func",
                prec,
                torch_func,
                repeats=ctx.repeats,
                backend="torch",
            )
        row_t.accuracy, row_t.accuracy_metric = acc(jt.cpu().numpy()), "top-5 |cos| vs jaxedit fp32"
        row_j, jj = timed_row(
            "jacobian",
            "W Jacobian (1 sample)",
            "jaxedit",
            prec,
            lambda: jaxedit.jacobian(
                gen,
                ws,
                space="w",
                output=out_sum,
                compute=jaxedit.Compute(jnp.float32, _jax_prec(fast), chunk=chunk),
            ),
            repeats=ctx.repeats,
        )
        row_j.accuracy, row_j.accuracy_metric = acc(jj[0]), "top-5 |cos| vs jaxedit fp32"
        row_j.target = TARGETS["jacobian_fast" if fast else "jacobian_fp32"]
        out += [row_t, row_j]
    _set_torch_precision(torch, False)
    return out


def _wplus_rows(
    ctx: Context, gen, p, cfg, ws, resize, *, k, box, label, tau=1e-3, torch_chunk=32, suite="wplus"
) -> list[Row]:
    """W+ top-k directions of one sample, three ways, each with |cos| to a float64 dense solution.

    * ``pytorch-torch.func-full``: the full W+ Jacobian by forward mode in chunks + Cholesky /
      eigh (fp32);
    * ``jaxedit-dense``: ``jaxedit.jacobian(space="wplus")`` + ``resefa(solver=Dense())`` (fp32);
    * ``jaxedit-matrix_free``: ``JacobianOperator`` + ``resefa(solver=MatrixFree())`` (fp32):
      iterations, residuals, convergence, the condition-number lower bound and the trace
      (exact or Hutch++ with its standard error) go into ``params``.

    The reference is the float64 dense solve of jaxedit's fp32 Jacobian (solver error only).
    """
    import jax
    import jax.numpy as jnp
    import torch
    import torch.nn.functional as F

    import jaxedit

    from .torch_ref import stylegan2 as tr

    mask = jaxedit.region_mask(box, resize)
    d = cfg.num_ws * cfg.w_dim
    wst = torch.tensor(ws[0], device=ctx.torch_device)

    def f(x):
        img = tr.synthesis(p, cfg, (wst + x.reshape(wst.shape))[None])
        if img.shape[-1] > resize:
            img = F.interpolate(img, scale_factor=resize / img.shape[-1])
        return img.sum(1)[0]

    m = torch.tensor(mask.reshape(-1), device=ctx.torch_device)

    def torch_full():
        x0 = torch.zeros(d, device=wst.device)
        eye = torch.eye(d, device=wst.device)
        cols = [
            torch.func.vmap(lambda t: torch.func.jvp(f, (x0,), (t,))[1].reshape(-1))(
                eye[i : i + torch_chunk]
            )
            for i in range(0, d, torch_chunk)
        ]
        J = torch.cat(cols).T  # [rows, D]
        jf, jb = J[m], J[~m]
        a = jf.T @ jf / jf.shape[0]
        b = jb.T @ jb / jb.shape[0]
        b = b + tau * torch.trace(b) * torch.eye(d, device=b.device)
        lc = torch.linalg.cholesky(b)
        kmat = torch.linalg.solve_triangular(
            lc, torch.linalg.solve_triangular(lc, a, upper=False).T, upper=False
        )
        _, u = torch.linalg.eigh((kmat + kmat.T) / 2)
        v = torch.linalg.solve_triangular(lc.T, u[:, -k:].flip(1), upper=True)
        return (v / v.norm(dim=0)).T

    reps = 1 if not ctx.smoke else ctx.repeats
    chunk = 16 if ctx.smoke else 32
    workload = f"W+ top-{k} ({d}-d), {label}"

    def jx_dense():
        J = jaxedit.jacobian(
            gen,
            ws,
            space="wplus",
            output=jaxedit.OutputSpec(resize, channels="sum"),
            compute=jaxedit.Compute(jnp.float32, chunk=chunk),
        )
        return J, jaxedit.resefa(J[0], mask, k=k, regularization=tau, solver=jaxedit.Dense())

    row_d, (J32, res_d) = timed_row(
        suite, workload, "jaxedit-dense", "fp32", jx_dense, repeats=reps
    )
    with jax.enable_x64(True):  # the reference: float64 solve of the same Jacobian
        ref = jaxedit.resefa(
            np.asarray(J32[0], np.float64), mask, k=k, regularization=tau, solver=jaxedit.Dense()
        )
    ref_dirs = ref.directions
    rows = []
    _set_torch_precision(torch, False)
    with torch.no_grad():
        row_t, dt_ = timed_row(
            suite,
            workload,
            "pytorch-torch.func-full",
            "fp32",
            torch_full,
            repeats=reps,
            backend="torch",
        )
    row_t.accuracy = _abs_cos_min(dt_.cpu().numpy(), ref_dirs)
    rows.append(row_t)
    row_d.accuracy = _abs_cos_min(res_d.directions, ref_dirs)
    row_d.params = {
        "condition_number": res_d.stats.condition_number,
        "max_residual": res_d.stats.max_residual,
    }
    row_d.notes = "Jacobian + Cholesky/eigh"
    rows.append(row_d)

    def jx_mf():
        op = jaxedit.JacobianOperator(
            gen,
            ws[0],
            space="wplus",
            output=jaxedit.OutputSpec(resize, channels="sum"),
            compute=jaxedit.Compute(jnp.float32),
        )
        return jaxedit.resefa(
            op, mask, k=k, regularization=tau, solver=jaxedit.MatrixFree(), warn=False
        )

    row_m, res_m = timed_row(suite, workload, "jaxedit-matrix_free", "fp32", jx_mf, repeats=reps)
    st = res_m.stats
    cos = np.abs(
        np.sum(
            res_m.directions / np.linalg.norm(res_m.directions, axis=1, keepdims=True) * ref_dirs, 1
        )
    )
    row_m.accuracy = float(np.min(cos))
    row_m.params = {
        "iterations": st.iterations,
        "converged": st.converged,
        "tol": st.tol,
        "max_residual": st.max_residual,
        "residuals": [float(r) for r in st.residuals],
        "abs_cos": [float(c) for c in cos],
        "condition_lower_bound": st.condition_number,
        "condition_exact_dense": float(ref.stats.condition_number),
        "trace_method": st.trace_method,
        "trace": st.trace,
        "trace_stderr": st.trace_stderr,
        "trace_exact": float(ref.stats.trace),
    }
    row_m.notes = _wplus_mf_notes(row_m.params)
    row_m.target = TARGETS["wplus"] if "1024" in label else ""
    rows.append(row_m)
    for r in rows:
        r.accuracy_metric = f"top-{k} min |cos| vs float64 dense"
    return rows


def _wplus_mf_notes(pm: dict) -> str:
    """The matrix-free row's diagnostics in one line (from its ``params``)."""
    out = (
        f"LOBPCG {pm['iterations']} it, {'converged' if pm['converged'] else 'NOT converged'}, "
        f"max residual {pm['max_residual']:.2g} (tol {pm['tol']:g}); cond(M_b) >= "
        f"{pm['condition_lower_bound']:.3g} (exact {pm['condition_exact_dense']:.3g})"
    )
    if pm.get("trace_method"):
        se = f" ± {pm['trace_stderr']:.2g}" if pm["trace_method"] == "hutch++" else ""
        out += (
            f"; trace(M_b) {pm['trace']:.6g}{se} by {pm['trace_method']} "
            f"(exact {pm['trace_exact']:.6g})"
        )
    return out


def suite_wplus(ctx: Context) -> list[Row]:
    """W+ top-10 directions at 1024 px (a GPU row: the Jacobian has 65,536 x 9,216 entries)."""
    import jaxedit

    gen, p, cfg, ws, resize = _jacobian_setup(ctx)
    return _wplus_rows(
        ctx,
        gen,
        p,
        cfg,
        ws,
        resize,
        k=3 if ctx.smoke else 10,
        box=jaxedit.preset("ffhq/eyes"),
        label=f"{cfg.img_resolution}px random weights",
    )


def suite_wplus_embedded(ctx: Context) -> list[Row]:
    """W+ top-10 directions on the embedded default generator (``jaxedit.default_generator()``,
    64 px, D = num_ws * w_dim) at full resolution: a size that runs on a CPU."""
    import jax.numpy as jnp
    import torch

    import jaxedit

    from .torch_ref.stylegan2 import params_from_jaxedit

    if ctx.smoke:
        gen, p, cfg = _sg2_pair(ctx)
        label = f"{cfg.img_resolution}px toy"
    else:
        gen = jaxedit.default_generator()
        cfg = gen.config
        p = params_from_jaxedit(gen, device=ctx.torch_device, dtype=torch.float32)
        label = f"jaxedit.default_generator() {cfg.img_resolution}px"
    z = np.random.RandomState(4).randn(1, cfg.z_dim).astype(np.float32)
    ws = np.asarray(gen.mapping(z, dtype=jnp.float32))
    return _wplus_rows(
        ctx,
        gen,
        p,
        cfg,
        ws,
        cfg.img_resolution,
        k=3 if ctx.smoke else 10,
        box=jaxedit.preset("ffhq/eyes"),
        label=label,
        suite="wplus_embedded",
    )


# ------------------------------------------------------------------------------------------------
def _pencil(d: int, k: int, seed: int = 0):
    """A ReSeFa-like pencil: n_f = max(D/8, 4k) foreground rows, 2D decaying background rows,
    the reference's 1e-3 ridge."""
    rng = np.random.default_rng(seed)
    n_b = 2 * d
    jb = rng.standard_normal((n_b, d)).astype(np.float32) * np.exp(-np.linspace(0, 3, d)).astype(
        np.float32
    )
    jf = rng.standard_normal((max(d // 8, 4 * k), d)).astype(np.float32)
    a = jf.T @ jf / jf.shape[0]
    b = jb.T @ jb / n_b
    ridge = 1e-3 * float(np.trace(b))
    b += ridge * np.eye(d, dtype=np.float32)
    return jf, jb, a, b, ridge


def suite_solvers(ctx: Context) -> list[Row]:
    import jax
    import jax.numpy as jnp
    import scipy.linalg as sl
    import torch

    from jaxedit import linalg

    sizes = (32, 64) if ctx.smoke else (512, 2048, 9216)
    k = 5 if ctx.smoke else 10
    rows = []
    for d in sizes:
        jf, jb, a, b, ridge = _pencil(d, k)
        on_host = d == sizes[0]  # the others: float64 on the device (9216 is slow in SciPy)
        w_ref = "float64 eigh (scipy)" if on_host else "float64 jaxedit dense"
        if on_host:
            _, v = sl.eigh(a.astype(np.float64), b.astype(np.float64))
            ref = v[:, ::-1][:, :k].T
        else:
            with jax.enable_x64(True):
                ref = np.asarray(
                    linalg.generalized_eigh(
                        jnp.asarray(a, jnp.float64), jnp.asarray(b, jnp.float64), k=k
                    )[1]
                )
        name = f"generalized eig, D = {d}"
        reps = ctx.repeats if (ctx.smoke or d <= 2048) else 1
        row, (_, dirs, _, _) = timed_row(
            "solvers",
            name,
            "numpy-reference",
            "fp32",
            lambda: linalg.reference_eig(a, b, k=k),
            repeats=reps,
            backend="none",
        )
        row.accuracy, row.accuracy_metric = _abs_cos_min(dirs, ref), f"top-{k} |cos| vs {w_ref}"
        rows.append(row)
        at = torch.tensor(a, device=ctx.torch_device)
        bt = torch.tensor(b, device=ctx.torch_device)

        def torch_chol():
            lc = torch.linalg.cholesky(bt)
            km = torch.linalg.solve_triangular(
                lc, torch.linalg.solve_triangular(lc, at, upper=False).T, upper=False
            )
            _, u = torch.linalg.eigh((km + km.T) / 2)
            return torch.linalg.solve_triangular(lc.T, u[:, -k:].flip(1), upper=True).T

        _set_torch_precision(torch, False)
        row, dt_ = timed_row(
            "solvers",
            name,
            "pytorch-cholesky-eigh",
            "fp32",
            torch_chol,
            repeats=ctx.repeats,
            backend="torch",
        )
        row.accuracy, row.accuracy_metric = (
            _abs_cos_min(dt_.cpu().numpy(), ref),
            f"top-{k} |cos| vs {w_ref}",
        )
        rows.append(row)
        aj, bj = jnp.asarray(a), jnp.asarray(b)
        row, out = timed_row(
            "solvers",
            name,
            "jaxedit",
            "fp32",
            lambda: linalg.generalized_eigh(aj, bj, k=k),
            repeats=ctx.repeats,
        )
        row.accuracy, row.accuracy_metric = _abs_cos_min(out[1], ref), f"top-{k} |cos| vs {w_ref}"
        row.notes = "dense: Cholesky whitening + eigh"
        if d == 9216:
            row.target = TARGETS["dense9216"]
        rows.append(row)
        jfs, jbs = jnp.asarray(jf / math.sqrt(len(jf))), jnp.asarray(jb / math.sqrt(len(jb)))
        row, out = timed_row(
            "solvers",
            name,
            "jaxedit-woodbury",
            "fp32",
            lambda: linalg.woodbury_eigh(jfs, jbs, ridge, k=k),
            repeats=ctx.repeats,
        )
        row.accuracy, row.accuracy_metric = _abs_cos_min(out[1], ref), f"top-{k} |cos| vs {w_ref}"
        row.notes = "SVD of J_b + Sherman-Morrison-Woodbury (n_f x n_f form)"
        rows.append(row)
        rows_all = jnp.concatenate([jfs, jbs])
        wf = jnp.concatenate([jnp.ones(len(jfs)), jnp.zeros(len(jbs))])
        tau = ridge / float(np.trace(b - ridge * np.eye(d, dtype=np.float32)))
        row, out = timed_row(
            "solvers",
            name,
            "jaxedit-matrix_free",
            "fp32",
            lambda: linalg.pencil_eigh(
                linalg.RowPencil(rows_all, wf, 1.0 - wf),
                k,
                regularization=tau,
                solver=linalg.MatrixFree(),
            ),
            repeats=ctx.repeats,
        )
        row.accuracy, row.accuracy_metric = (
            _abs_cos_min(out.directions, ref),
            f"top-{k} |cos| vs {w_ref}",
        )
        row.params = {
            "iterations": out.stats.iterations,
            "max_residual": out.stats.max_residual,
            "converged": out.stats.converged,
        }
        row.notes = (
            f"preconditioned block LOBPCG on products with the rows: {out.stats.iterations} it"
        )
        rows.append(row)
    return rows


def suite_sefa(ctx: Context) -> list[Row]:
    import jax.numpy as jnp

    from jaxedit.methods.sefa import factorize, weight_blocks

    gen, _, cfg = _sg2_pair(ctx)
    blocks, _ = weight_blocks(gen, "all")
    w = np.concatenate(blocks, axis=1).astype(np.float32)

    def numpy_ref():
        x = w / np.linalg.norm(w, axis=0, keepdims=True)
        val, vec = np.linalg.eig(x @ x.T)
        return vec.real.T[np.argsort(-val.real)][:5]

    row_n, ref = timed_row(
        "sefa",
        f"SeFa, {cfg.img_resolution}px ({w.shape[0]} x {w.shape[1]})",
        "numpy-reference",
        "fp32",
        numpy_ref,
        repeats=ctx.repeats,
        backend="none",
    )
    wj = jnp.asarray(w)
    row_j, out = timed_row(
        "sefa",
        f"SeFa, {cfg.img_resolution}px ({w.shape[0]} x {w.shape[1]})",
        "jaxedit",
        "fp32",
        lambda: factorize(wj, k=5),
        repeats=ctx.repeats,
    )
    row_j.accuracy, row_j.accuracy_metric = _abs_cos_min(out[1], ref), "top-5 |cos| vs numpy"
    row_j.target = TARGETS["sefa"]
    row_j.notes = "weights already on device; jaxedit.sefa(gen) adds the host gather"
    return [row_n, row_j]


def suite_spectra(ctx: Context) -> list[Row]:
    import jax.numpy as jnp

    import jaxedit

    c, n = (16, 8) if ctx.smoke else (512, 64)
    rng = np.random.default_rng(0)
    k = rng.standard_normal((3, 3, c, c)).astype(np.float32) / math.sqrt(9 * c)
    kj = jnp.asarray(k)
    row_j, sj = timed_row(
        "spectra",
        f"all singular values, {c}->{c} 3x3 at {n}x{n}",
        "jaxedit",
        "fp32",
        lambda: jaxedit.conv_singular_values(kj, (n, n)),
        repeats=ctx.repeats,
    )
    row_j.target = TARGETS["spectrum"]
    # NumPy (CPU): the Sedghi two-liner; at full size time n_np x n_np and scale by the count
    n_np = n if ctx.smoke else 16
    t0 = time.perf_counter()
    s_np = np.linalg.svd(np.fft.fft2(k, (n_np, n_np), axes=(0, 1)), compute_uv=False)
    t_np = (time.perf_counter() - t0) * (n * n) / (n_np * n_np)
    row_n = Row(
        "spectra",
        f"all singular values, {c}->{c} 3x3 at {n}x{n}",
        "numpy-cpu",
        "fp32",
        t_np,
        t_np,
        t_np,
        1,
        notes="" if n_np == n else f"timed at {n_np}x{n_np}, scaled by frequency count",
    )
    if n_np == n:
        row_j.accuracy = _rel(np.sort(np.asarray(sj))[::-1], np.sort(s_np.reshape(-1))[::-1])
        row_j.accuracy_metric = "max rel. err. vs numpy"
    return [row_n, row_j]


def suite_biggan(ctx: Context) -> list[Row]:
    import os

    import jax.numpy as jnp
    import torch
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    import jaxedit

    if ctx.smoke:
        kw = dict(
            output_dim=32,
            z_dim=8,
            class_embed_dim=8,
            channel_width=8,
            num_classes=10,
            layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
            attention_layer_position=3,
        )
        n = 2
    else:
        from jaxedit.models.biggan import PRESET_LAYERS

        kw = dict(output_dim=256, layers=[list(x) for x in PRESET_LAYERS[256]])
        n = 32
    torch.manual_seed(0)
    cfg = BigGANConfig(**kw)
    model = BigGAN(cfg)
    with torch.no_grad():  # the final BN's weight / bias are torch.Tensor(n): uninitialized memory
        model.generator.bn.weight.fill_(1.0)
        model.generator.bn.bias.zero_()
    with torch.no_grad():  # a few train-mode passes converge the spectral-norm u, v
        zc = torch.randn(2, cfg.z_dim), torch.softmax(torch.randn(2, cfg.num_classes), 1)
        for _ in range(3 if not ctx.smoke else 10):
            model(*zc, 0.4)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(model.state_dict(), os.path.join(tmp, "pytorch_model.bin"))
        with open(os.path.join(tmp, "config.json"), "w") as fh:
            fh.write(cfg.to_json_string())
        gen = jaxedit.load_generator(tmp)
    model = model.to(ctx.torch_device)
    z = jaxedit.truncated_noise_sample(n, cfg.z_dim, 0.4, seed=0)
    c = jaxedit.one_hot(np.arange(n) % cfg.num_classes, cfg.num_classes)
    zt, ct = torch.tensor(z, device=ctx.torch_device), torch.tensor(c, device=ctx.torch_device)
    rows, ref = [], None
    for fast in (False, True):
        prec = "fast" if fast else "fp32"
        _set_torch_precision(torch, fast)
        with torch.no_grad():
            row_t, out_t = timed_row(
                "biggan",
                f"BigGAN-deep {cfg.output_dim}px batch {n}",
                "pytorch",
                prec,
                lambda: model(zt, ct, 0.4),
                repeats=ctx.repeats,
                backend="torch",
            )
        row_j, out_j = timed_row(
            "biggan",
            f"BigGAN-deep {cfg.output_dim}px batch {n}",
            "jaxedit",
            prec,
            lambda: gen(z, c, 0.4, dtype=jnp.float32, precision=_jax_prec(fast)),
            repeats=ctx.repeats,
        )
        if ref is None:
            ref = out_t.cpu().numpy().transpose(0, 2, 3, 1)
        for row, out in ((row_t, out_t.cpu().numpy().transpose(0, 2, 3, 1)), (row_j, out_j)):
            row.accuracy, row.accuracy_metric = _rel(out, ref), "max rel. err. vs torch fp32"
        row_j.target = TARGETS["biggan"]
        rows += [row_t, row_j]
    _set_torch_precision(torch, False)
    return rows


# ------------------------------------------------------------------------------------------------
def _panda_features(ctx: Context):
    """Features [N, H, W, C] (float32) from a random StyleGAN2 (NVIDIA seeds 0..N-1), + a label.

    Full: a 64 px StyleGAN2 with 512 channels at 16x16 (64 at 4x4 and 8x8, so that b16.conv1 is
    a real 512 -> 512 modulated conv), w_dim 512, 8 mapping layers, N = 512; smoke: 8x8x32, N = 16.
    """
    import jax.numpy as jnp
    from flax import nnx

    from jaxedit.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator, seed_to_z

    if ctx.smoke:
        cfg = StyleGAN2Config.create(
            {4: 16, 8: 32}, z_dim=16, w_dim=16, c_dim=0, img_resolution=8, mapping_layers=2
        )
        layer, n = "b8.conv1", 16
    else:
        cfg = StyleGAN2Config.create(
            {4: 64, 8: 64, 16: 512, 32: 64, 64: 32},
            z_dim=512,
            w_dim=512,
            c_dim=0,
            img_resolution=64,
            mapping_layers=8,
        )
        layer, n = "b16.conv1", 512
    gen = StyleGAN2Generator(cfg, rngs=nnx.Rngs(0))
    out = []
    for i in range(0, n, 32):
        z = np.concatenate([seed_to_z(s, cfg.z_dim) for s in range(i, min(i + 32, n))])
        ws = gen.mapping(z.astype(np.float32), dtype=jnp.float32)
        out.append(np.asarray(gen.synthesis_split(ws, layer, dtype=jnp.float32).x))
    return np.concatenate(out), f"random {cfg.img_resolution}px StyleGAN2 {layer}, seeds 0-{n - 1}"


def _panda_pool_loss(feats: np.ndarray, a, p) -> float:
    """Mean relative loss over the pool, float64: (‖Z‖² − 2‖AᵀZP‖² + ⟨PᵀP, (AK)ᵀAK⟩) / mean ‖Z‖²."""
    n, h, w, c = feats.shape
    a = np.asarray(a, np.float64)
    p = np.asarray(p, np.float64).reshape(h * w, -1)
    gp = p.T @ p
    tot = en = 0.0
    for i in range(0, n, 64):
        x = feats[i : i + 64].reshape(-1, h * w, c).astype(np.float64)  # [B, S, C] = Zᵀ
        k = np.einsum("sr,bsc,cq->brq", p, x, a, optimize=True)
        ak = np.einsum("brq,cq->brc", k, a)
        e = float((x**2).sum())
        tot += e - 2 * float((k**2).sum()) + float(np.einsum("rt,btc,brc->", gp, ak, ak))
        en += e
    return tot / en


def _timed_cpu(fn, repeats: int, warmup: int = 1):
    """:func:`harness.measure` that also records the process CPU time of every run (wall times
    on a shared, loaded machine depend on the load; CPU seconds much less so).
    -> (wall [repeats], cpu [repeats], last output)."""
    from .harness import _block

    out = None
    for _ in range(warmup):
        out = _block(fn())
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = _block(fn())
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu, out


def suite_panda(ctx: Context) -> list[Row]:
    """Time to reach the reference PGD's loss after 10,000 reference-style steps (batch 1: one
    pool sample per step; its learning rate tuned on a grid), 16x16x512 layer, ranks (512, 8).

    The target comes from jaxedit's ``"pgd"`` mode (the reference's update rule, tested equal to
    the NumPy and PyTorch reference loops step by step); the PyTorch reference loop is timed on a
    stated number of steps with the same samples, checked against jaxedit's iterates, and
    extrapolated to 10,000 steps. All runs start from the same HOSVD appearances and U(0, 0.01)
    parts (their cost is not timed).
    """
    import os
    import warnings

    import jax
    import torch

    from jaxedit import panda

    from .torch_ref import panda as tp

    load0 = [round(v, 2) for v in os.getloadavg()]
    feats, desc = _panda_features(ctx)
    n, h, w, c = feats.shape
    s = h * w
    ranks = (c, 4) if ctx.smoke else (512, 8)
    ref_steps = 40 if ctx.smoke else 10_000
    reassoc_steps = 4 if ctx.smoke else 200
    literal_steps = 4 if ctx.smoke else 20
    pilot_steps = 40 if ctx.smoke else 500
    ladder = (10, 20, 40, 80) if ctx.smoke else (25, 50, 100, 200, 400, 800, 1600, 3200)
    grid = (1e-3, 1e-4, 1e-5) if ctx.smoke else tuple(10.0**-k for k in range(3, 11))
    a0 = np.asarray(panda.hosvd(feats, ranks[0]), np.float32)
    p0 = np.random.RandomState(0).uniform(0, 0.01, (s, ranks[1])).astype(np.float32)
    metric = f"rel. loss on the {n}-sample pool"
    work = f"PandA to the reference's {ref_steps}-step loss, {h}x{w}x{c}, ranks {ranks}"

    def rel(res):
        return _panda_pool_loss(feats, res.appearance, res.parts)

    def pgd(lr, steps):
        return panda.fit(feats, ranks, steps, "pgd", lr, a0, p0, minibatch_size=1)

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", panda.PandaConvergenceWarning)
        # 1. the reference's learning rate, tuned as its users must: best pool loss after a pilot
        best = None
        for lr in grid:
            res = pgd(lr, pilot_steps)
            if np.all(np.isfinite(res.losses)) and np.all(res.parts.max(axis=(0, 1)) > 0):
                r = rel(res)
                if np.isfinite(r) and (best is None or r < best[1]):
                    best = (lr, r)
        lr = best[0]
        # 2. the reference algorithm for ref_steps (jaxedit "pgd", timed): its loss is the target
        while True:
            wall, cpu, res = _timed_cpu(
                lambda: pgd(lr, ref_steps), repeats=1 if not ctx.smoke else ctx.repeats
            )
            row = Row("panda", work, "jaxedit-pgd", "fp32", **stats(wall))
            target = rel(res)
            if np.isfinite(target) and np.all(res.parts.max(axis=(0, 1)) > 0):
                break
            lr /= 10  # the long run diverged: the next lower rate
        common = dict(
            ranks=list(ranks),
            features=desc,
            pool=n,
            ref_steps=ref_steps,
            ref_lr=lr,
            loadavg_start=load0,
        )
        metric = f"{metric} (target {target:.5f})"
        row.accuracy, row.accuracy_metric = target, metric
        row.params = {**common, "cpu_s": float(np.median(cpu))}
        row.notes = (
            f"the reference's update rule (panda.fit optimizer='pgd'), batch 1, "
            f"lr {lr:g} = best of a {pilot_steps}-step pilot over "
            f"{grid[0]:g}..{grid[-1]:g}; its final loss is the target; "
            f"CPU {np.median(cpu):.3g} s"
        )
        rows.append(row)
        # 3. PyTorch reference loop on the same samples (jaxedit's draws: fit splits its key into
        #    (init, data) and draws step t's sample from fold_in(data, t))
        _, k_data = jax.random.split(jax.random.key(0))
        order = [
            int(jax.random.choice(jax.random.fold_in(k_data, t), n, (1,), replace=False)[0])
            for t in range(reassoc_steps)
        ]
        zt = torch.tensor(
            np.ascontiguousarray(feats.reshape(n, s, c).transpose(0, 2, 1)), device=ctx.torch_device
        )  # [N, C, S]
        at, pt = torch.tensor(a0, device=zt.device), torch.tensor(p0, device=zt.device)
        # One intra-op thread on a CPU: on a shared, loaded 2-core machine torch's OpenMP barriers
        # made this loop 20-50x slower with 2 threads (measured); on a GPU it does not matter.
        threads = torch.get_num_threads()
        if zt.device.type == "cpu":
            torch.set_num_threads(1)
        for impl, grads, k in (
            ("pytorch-reference-reassociated", "reassociated", reassoc_steps),
            ("pytorch-reference", "literal", literal_steps),
        ):
            with torch.no_grad():
                times, cpu, (a_t, p_t, _) = _timed_cpu(
                    lambda: tp.decompose(lambda t: zt[order[t]][None], at, pt, lr, k, grads),
                    repeats=1,
                    warmup=0,
                )
            check = pgd(lr, k)
            diff = max(
                float(
                    np.abs(a_t.cpu().numpy() - check.appearance).max()
                    / np.abs(check.appearance).max()
                ),
                float(
                    np.abs(p_t.cpu().numpy() - check.parts_matrix()).max()
                    / np.abs(check.parts_matrix()).max()
                ),
            )
            agree = f"its {k}-step iterates equal jaxedit-pgd's to {diff:.1e} (max rel.)"
            est = [t * ref_steps / k for t in times]
            what = (
                "hand-written gradients evaluated as written (the reference's cost)"
                if grads == "literal"
                else "the same gradients through Y = ZP, K = AᵀY (cheap algebra, same numbers)"
            )
            rows.append(
                Row(
                    "panda",
                    work,
                    impl,
                    "fp32",
                    **stats(est),
                    notes=f"the reference loop, {what}: timed {k} of {ref_steps} steps, "
                    f"extrapolated; {agree}; torch threads "
                    f"{torch.get_num_threads()}; CPU "
                    f"{np.median(cpu) * ref_steps / k:.3g} s (extrapolated)",
                    params={**common, "cpu_s": float(np.median(cpu)) * ref_steps / k},
                )
            )
        torch.set_num_threads(threads)
        # 4. jaxedit default Adam, mini-batches: the fewest steps (ladder) reaching the target
        batch = min(16, n)
        reached = None
        for steps in ladder:
            res = panda.fit(
                feats, ranks, steps, init_appearance=a0, init_parts=p0, minibatch_size=batch
            )
            if rel(res) <= target:
                reached = steps
                break
        wall, cpu, res = _timed_cpu(
            lambda: panda.fit(
                feats, ranks, steps, init_appearance=a0, init_parts=p0, minibatch_size=batch
            ),
            repeats=3 if not ctx.smoke else ctx.repeats,
        )
        row = Row("panda", work, "jaxedit", "fp32", **stats(wall))
    row.accuracy, row.accuracy_metric = rel(res), metric
    row.target = TARGETS["panda"]
    row.notes = (
        f"panda.fit defaults (Adam, peak lr 0.05 in natural units), batch {batch}, "
        f"{steps} steps: the fewest of {ladder} reaching the target"
        if reached
        else f"panda.fit defaults, batch {batch}, {steps} steps: did NOT reach the target"
    )
    cpu_j = float(np.median(cpu))
    ratios = ", ".join(f"{r.impl} {r.params['cpu_s'] / cpu_j:.3g}×" for r in rows)
    row.notes += f"; CPU {cpu_j:.3g} s (CPU-time ratios: {ratios})"
    row.params = {
        **common,
        "steps": steps,
        "batch": batch,
        "reached": reached is not None,
        "cpu_s": float(np.median(cpu)),
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    rows.append(row)
    return rows


def _worker(args: list[str], timeout: float = 1800) -> dict:
    """Run ``benchmarks.moments_worker`` in a fresh process (its own device count)."""
    import json
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("XLA_FLAGS", None)
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.moments_worker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
    )
    if r.returncode != 0:
        raise RuntimeError(f"moments_worker {args} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _moments_kw(output, chunk: int) -> dict:
    """Options of the moments workload: float32, ``chunk`` tangents per pass."""
    import jax.numpy as jnp

    import jaxedit

    return dict(output=output, compute=jaxedit.Compute(jnp.float32, chunk=chunk))


def suite_moments(ctx: Context) -> list[Row]:
    """Many-sample region moments (issue 16): samples/s of ``region_moments`` against the
    in-memory path (every sample's Jacobian, then the moments), 1 -> 4 CPU devices, and peak RSS
    at 8 vs 64 samples.

    Model: GPU full = 1024 px config-f (W, nearest 256², channel sum, 3 regions); CPU full = the
    embedded default generator (its full resolution, D = its w_dim, RGB rows); smoke = a 32 px
    toy.
    """
    import jax
    import jax.numpy as jnp

    import jaxedit
    from jaxedit.methods.resefa import jacobian_moments as dense_moments

    gpu = jax.devices()[0].platform != "cpu"
    names = ("eyes", "mouth", "nose")
    if ctx.smoke:
        from flax import nnx

        from jaxedit.models.stylegan2 import StyleGAN2Generator

        gen = StyleGAN2Generator(_sg2_config(True), rngs=nnx.Rngs(0))
        kw, n, label = _moments_kw(jaxedit.OutputSpec(8, channels="sum"), 8), 4, "toy 32 px"
    elif gpu:
        from flax import nnx

        from jaxedit.models.stylegan2 import StyleGAN2Generator

        gen = StyleGAN2Generator(_sg2_config(False), rngs=nnx.Rngs(0))
        kw, n, label = (
            _moments_kw(jaxedit.OutputSpec(256, channels="sum"), 32),
            16,
            "1024 px config-f",
        )
    else:
        gen = jaxedit.default_generator()
        kw, n, label = (
            _moments_kw(jaxedit.OutputSpec(None, channels="rgb"), 32),
            16,
            f"CPU: default {gen.resolution} px",
        )
    # FFHQ boxes on the random StyleGAN2s, the toy model's part masks on the embedded one
    rset = "ffhq" if ctx.smoke or gpu else "toyfaces"
    regions = {r: f"{rset}/{r}" for r in names}
    seeds = list(range(n))
    f32 = jnp.float32
    name = f"region_moments, {label}, W, {n} samples, 3 regions"
    reps = max(1, min(ctx.repeats, 3))
    rows = []

    def baseline():  # the in-memory path: every Jacobian, then per-sample moments, averaged
        z = np.concatenate([jaxedit.seed_to_z(s, gen.z_dim) for s in seeds])
        J = jaxedit.jacobian(gen, gen.mapping(z, dtype=f32), space="w", **kw)
        out = {}
        for r in regions:
            mf, mb = zip(*(dense_moments(j, regions[r]) for j in J))
            out[r] = (np.mean(np.stack(mf), 0), np.mean(np.stack(mb), 0))
        return out

    row_b, ref = timed_row(
        "moments", name, "jaxedit.jacobian-in-memory", "fp32", baseline, repeats=reps
    )
    row_b.params = {"samples": n, "samples_per_s": n / row_b.median_s}
    row_b.notes = "all N Jacobians in memory, then resefa's per-sample moments"

    def ours():
        return jaxedit.region_moments(gen, seeds, regions, space="w", **kw)

    row_j, m = timed_row("moments", name, "jaxedit", "fp32", ours, repeats=reps)
    row_j.accuracy = max(max(_rel(m[r].M_f, ref[r][0]), _rel(m[r].M_b, ref[r][1])) for r in regions)
    row_j.accuracy_metric = "max rel. err. of M_f, M_b vs in-memory"
    row_j.params = {
        "samples": n,
        "samples_per_s": n / row_j.median_s,
        "devices": jax.device_count(),
    }
    row_j.notes = (
        f"{jax.device_count()} device(s), batch 1 per device, one psum per step"
        + ("" if gpu or ctx.smoke else "; CPU row (no GPU lent)")
        + f"; host load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    rows += [row_b, row_j]

    # scaling over fake CPU devices (subprocesses): the same seeds, the same model. Full: one
    # process per device count (1, 2, 4). Smoke: one 2-device process that also times a mesh of
    # its first device (the 1-device baseline without another JAX start-up and compile)
    smoke = ["--smoke"] if ctx.smoke else []
    n_scale = 4 if ctx.smoke else 16
    base = None
    label = f"region_moments scaling, CPU fake devices, {n_scale} samples"

    def scaling_row(k, times, out, how):
        row = Row(
            "moments", f"{label}, {out['resolution']} px", f"jaxedit-{k}dev", "fp32", **stats(times)
        )
        row.params = {
            "devices": k,
            "samples_per_s": n_scale / row.median_s,
            "speedup_vs_1": None if base is None else base / row.median_s,
        }
        row.notes = f"{how}, {os.cpu_count()} host cores, load average {os.getloadavg()[0]:.1f}"
        return row

    for k in (2,) if ctx.smoke else (1, 2, 4):
        out = _worker(
            [
                "scaling",
                "--devices",
                str(k),
                "--samples",
                str(n_scale),
                "--repeats",
                str(reps),
                *smoke,
                *(["--one"] if ctx.smoke else []),
            ]
        )
        flag = f"XLA_FLAGS=--xla_force_host_platform_device_count={k}"
        if "times_1dev" in out:
            base = stats(out["times_1dev"])["median_s"]
            rows.append(
                scaling_row(
                    1, out["times_1dev"], out, f"{flag}, a mesh of its first device (same process)"
                )
            )
        if k == 1:
            base = stats(out["times"])["median_s"]
        rows.append(scaling_row(k, out["times"], out, flag))

    # peak RSS at few vs many samples (fresh process each): streaming vs in-memory
    runs = (
        [("moments", 2)]
        if ctx.smoke
        else [(i, k) for i in ("moments", "jacobian") for k in (8, 64)]
    )
    for impl, n_rss in runs:
        out = _worker(["rss", "--samples", str(n_rss), "--impl", impl, *smoke])
        row = Row(
            "moments",
            f"peak RSS, {out['resolution']} px, W, RGB rows, {n_rss} samples",
            "jaxedit" if impl == "moments" else "jaxedit.jacobian-in-memory",
            "fp32",
            out["seconds"],
            out["seconds"],
            out["seconds"],
            1,
            peak_mem_bytes=out["peak_rss_bytes"],
        )
        row.params = {
            "samples": n_rss,
            "peak_rss_mib": out["peak_rss_bytes"] / 2**20,
            "growth_mib": out["growth_bytes"] / 2**20,
            "rss_before_mib": out["rss_before_bytes"] / 2**20,
        }
        row.notes = (
            f"{n_rss} samples, after a 1-sample warm-up (compiled); peak mem = peak "
            f"process RSS during the run, growth over the RSS before it "
            f"{out['growth_bytes'] / 2**20:.0f} MiB; one run"
        )
        if impl == "moments":
            row.target = TARGETS["moments_rss"]
        rows.append(row)
    return rows


VALIDITY_PARTS = ("eyes", "left_eye", "right_eye", "eyebrows", "nose", "mouth", "hair")
VALIDITY_ALPHAS = (-0.2, -0.1, 0.1, 0.2)
VALIDITY_DELTAS = (-1.0, -0.5, 0.5, 1.0)
VALIDITY_SEED = 4242
VALIDITY_PANDA = ("b16.conv1", (64, 16), 300, 128)  # layer, ranks, Adam steps, latents
VALIDITY_PANDA_STEPS = (-2.0, -1.0, 1.0, 2.0)  # x the appearance's std in the part
VALIDITY_EIS = {"rho": 1.0, "eps": 20.0, "mode": "ratio"}


def suite_validity(ctx: Context) -> list[Row]:
    """Directions of the embedded toy-face generator against its ground truth (issue 12).

    Per part region (``toyfaces/<part>``) and method: ROIR and masked MSE of the top direction
    (median over the seeds, mean over the alphas), and the agreement of the top-k directions
    (k = the part's number of factors) with the part's ground-truth factor directions, measured
    by principal angles between image-change subspaces (``jaxedit.toyfaces.validity``). Methods:
    ReSeFa per sample with every solver, ReSeFa with moments averaged over the seeds, SeFa
    (global), random directions, PandA, Editing in Style, and the ground truth itself (factor W
    directions; exact factor z edits). Times: seconds to compute one sample's (or the averaged)
    directions.

    PandA (not a W direction, so no subspace overlap): parts and appearances learned once at
    ``VALIDITY_PANDA`` on other latents; per region the part, or union of two, whose map best
    matches the region's preset (:func:`jaxedit.panda.part_iou`), with the appearance most
    present there (largest mean ``|Aᵀ Z|`` over the seeds in the part's cells), added at
    ``VALIDITY_PANDA_STEPS`` x that coordinate's standard deviation there. Editing in Style:
    contributions from the renderer's exact part masks on other latents (the catalog is the
    ground truth, so this measures the transfer, not the clustering), seed i's part taken from
    seed i - 1 (``VALIDITY_EIS`` query).
    """

    import jaxedit
    from jaxedit import resefa, toyfaces
    from jaxedit.regions import preset
    from jaxedit.toyfaces import validity

    n = 4 if ctx.smoke else 32
    parts = ("eyes", "mouth") if ctx.smoke else VALIDITY_PARTS
    solvers = (
        ("dense", "matrix_free") if ctx.smoke else ("dense", "woodbury", "matrix_free", "reference")
    )
    gen = jaxedit.default_generator()
    z = np.asarray(toyfaces.sample_z(VALIDITY_SEED, n, np.float32))
    ws = np.asarray(gen.mapping(z))
    base = np.asarray(gen.synthesis(ws))
    t0 = time.perf_counter()
    J = np.asarray(
        jaxedit.jacobian(
            gen,
            ws,
            space="w",
            output=jaxedit.OutputSpec(channels="rgb"),
            compute=jaxedit.Compute(batch_size=min(n, 8)),
        )
    )
    t_jac = time.perf_counter() - t0
    rng = np.random.default_rng(VALIDITY_SEED)
    rows = []
    panda_fit, eis_contribs = _validity_panda_eis(gen, ctx.smoke, parts)

    def add(
        part,
        impl,
        dirs,
        seconds,
        region,
        gt,
        note="",
        per_sample=True,
        loc=None,
        steps=VALIDITY_ALPHAS,
    ):
        """dirs: [N, k, D] (per sample), [k, D] or None; loc: a locality dict already measured
        (else the top direction's at the alphas)."""
        if loc is None:
            top = dirs[:, 0] if per_sample else dirs[0]
            loc = validity.direction_locality(gen, ws, top, region, steps, base=base)
        per_seed = np.mean(np.asarray(loc["roir_per_sample"], np.float64), axis=0)  # [N]
        changed = ~np.isnan(per_seed)  # NaN: the edit changed no pixel of that seed
        if not changed.all():
            note = (f"{note}; " if note else "") + (
                f"{int((~changed).sum())} of {n} seeds unchanged (ROIR over the others)"
                if changed.any()
                else "no pixel changed in any seed"
            )
        per_seed = per_seed[changed]
        params = {
            "roir_median": float(np.median(per_seed)) if per_seed.size else None,
            "roir_mean": float(np.mean(per_seed)) if per_seed.size else None,
            "mse_inside": float(np.mean(loc["mse_inside"])),
            "mse_outside": float(np.mean(loc["mse_outside"])),
            "seeds": n,
            "steps": list(steps),
        }
        if dirs is not None:
            agree = validity.subspace_agreement(
                J, dirs[:, : gt.shape[1]] if per_sample else dirs[: gt.shape[1]], gt
            )
            params.update(
                overlap=agree["overlap"], top_cosine=agree["top_cosine"], k=int(gt.shape[1])
            )
        seconds = max(float(seconds), 1e-9)
        rows.append(
            Row(
                "validity",
                f"toyfaces/{part}",
                impl,
                "fp32",
                seconds,
                seconds,
                seconds,
                1,
                accuracy=params["roir_median"],
                accuracy_metric=f"ROIR, median over {n} seeds",
                notes=note,
                params=params,
            )
        )

    for part in parts:
        name = f"toyfaces/{part}"
        region = preset(name)
        factors = toyfaces.factors_of_part(part)
        k = len(factors)
        t0 = time.perf_counter()
        gt = validity.factor_w_directions(gen, z, factors)  # [N, k, D]
        t_gt = (time.perf_counter() - t0) / n
        for solver in solvers:
            t0 = time.perf_counter()
            res = resefa(J, region, k=k, solver=solver, warn=False)
            dirs = np.asarray(res.directions)
            add(
                part,
                f"resefa-{solver} (per sample)",
                dirs,
                (time.perf_counter() - t0) / n,
                region,
                gt,
                note=f"k={k}",
            )
        t0 = time.perf_counter()
        res = resefa(J, region, k=k, aggregate="mean", warn=False)
        add(
            part,
            "resefa-dense (moments averaged)",
            np.asarray(res.directions),
            time.perf_counter() - t0,
            region,
            gt,
            per_sample=False,
            note=f"k={k}",
        )
        t0 = time.perf_counter()
        sefa_dirs = np.asarray(jaxedit.sefa(gen, "all", k=k).directions)
        add(
            part,
            "sefa (global, all layers)",
            sefa_dirs,
            time.perf_counter() - t0,
            region,
            gt,
            per_sample=False,
            note="region-blind",
        )
        t0 = time.perf_counter()
        rand = rng.standard_normal((n, k, gen.w_dim))
        rand /= np.linalg.norm(rand, axis=-1, keepdims=True)
        add(
            part,
            "random",
            rand,
            (time.perf_counter() - t0) / n,
            region,
            gt,
            note="Gaussian directions, one set per seed",
        )
        # ground truth: each factor's own W direction; the row reports the most local factor
        best = None
        for j in range(len(factors)):
            loc = validity.direction_locality(gen, ws, gt[:, j], region, VALIDITY_ALPHAS, base=base)
            med = float(np.median(np.mean(np.asarray(loc["roir_per_sample"]), axis=0)))
            if best is None or med < best[0]:
                best = (med, j, loc)
        order = [best[1]] + [j for j in range(k) if j != best[1]]
        add(
            part,
            "ground truth: factor W directions",
            gt[:, order],
            t_gt,
            region,
            gt,
            note=f"top = {factors[best[1]]} (its most local factor); dw/du through the mapping",
            loc=best[2],
        )
        for impl, loc, seconds, note, steps in _validity_panda_eis_rows(
            gen, ws, base, part, region, panda_fit, eis_contribs
        ):
            add(part, impl, None, seconds, region, gt, note=note, loc=loc, steps=steps)
        for f in factors:
            t0 = time.perf_counter()
            loc = validity.factor_z_edits(gen, z, f, region, VALIDITY_DELTAS, base=base)
            seconds = (time.perf_counter() - t0) / n
            fid = validity.factor_edit_fidelity(gen, z, f, 1.0)
            add(
                part,
                f"ground truth: {f} (z edit)",
                None,
                seconds,
                region,
                gt,
                note=f"exact factor edit in z, every other factor fixed; vs the renderer's edit: "
                f"cos {fid['cosine']:.3f}, energy ratio {fid['energy_ratio']:.3f}",
                loc=loc,
                steps=VALIDITY_DELTAS,
            )
            rows[-1].params.update(
                fidelity_cosine=fid["cosine"], fidelity_energy_ratio=fid["energy_ratio"]
            )
    for r in rows:
        r.params["jacobian_seconds"] = round(t_jac, 2)
    return rows


def _validity_panda_eis(gen, smoke: bool, parts):
    """PandA factors and Editing-in-Style contributions for :func:`suite_validity`, learned on
    latents other than the evaluation seeds.

    Returns ``((panda result, seconds), (contributions, seconds))``."""
    from jaxedit import eis, panda, toyfaces

    layer, ranks, steps, n_fit = VALIDITY_PANDA
    if smoke:
        ranks, steps, n_fit = (16, 8), 20, 16
    z = np.asarray(toyfaces.sample_z(VALIDITY_SEED + 1, n_fit, np.float32))
    ws = np.asarray(gen.mapping(z))
    t0 = time.perf_counter()
    res = panda.fit_generator(gen, layer, ranks, steps, latents=ws)
    t_panda = time.perf_counter() - t0
    n_eis = 8 if smoke else 32
    masks = toyfaces.part_masks(toyfaces.factors_from_z(z[:n_eis]))
    stacked = np.stack(
        [
            np.any(
                np.stack([np.asarray(masks[q], bool) for q in toyfaces.GROUPS.get(p, (p,))]), axis=0
            )
            for p in parts
        ],
        axis=1,
    ).astype(np.float32)  # [N, P, 64, 64]
    t0 = time.perf_counter()
    contribs = eis.contributions(gen, ws[:n_eis], stacked, names=list(parts))
    return (res, t_panda), (contribs, time.perf_counter() - t0)


def _validity_panda_eis_rows(gen, ws, base, part, region, panda_fit, eis_contribs):
    """The PandA and Editing-in-Style rows of one region: ``[(impl, locality, seconds, note,
    steps)]`` with locality as :func:`jaxedit.toyfaces.validity.direction_locality` returns it."""
    from jaxedit import eis, panda
    from jaxedit.metrics import locality
    from jaxedit.regions import region_mask

    res, t_fit = panda_fit
    mask = region_mask(region, base.shape[1:3])
    match = panda.part_iou(res, {part: mask}, max_parts=2)[part]
    ks = [int(k) for k in match["parts"]]
    cells = panda.part_region(res, ks)  # [h, w]
    sal = np.asarray(panda.saliency(res, gen.synthesis_split(ws, res.layer).x))[:, cells]
    c = int(np.argmax(np.abs(sal).mean(axis=(0, 1))))
    sigma = float(sal[..., c].std())
    strengths = [s * sigma for s in VALIDITY_PANDA_STEPS]
    t0 = time.perf_counter()
    rows_ = [
        panda.evaluate_edit(gen, ws, res, [ks], [c], [lam], region=region) for lam in strengths
    ]
    t_edit = (time.perf_counter() - t0) / len(ws)
    loc = {
        "roir_per_sample": [r["roir_per_sample"] for r in rows_],
        "mse_inside": [r["mse_inside"] for r in rows_],
        "mse_outside": [r["mse_outside"] for r in rows_],
    }
    layer, ranks = res.layer, res.ranks
    out = [
        (
            f"panda ({layer}, ranks {ranks[0]}x{ranks[1]})",
            loc,
            t_fit + t_edit,
            f"parts {ks} (IoU {match['union_iou']:.2f} with the preset), appearance {c}, "
            f"strengths {list(VALIDITY_PANDA_STEPS)} x {sigma:.3g}; time = fit + one edit",
            VALIDITY_PANDA_STEPS,
        )
    ]
    contribs, t_contrib = eis_contribs
    q = eis.label_queries(
        contribs, part, VALIDITY_EIS["rho"], VALIDITY_EIS["eps"], VALIDITY_EIS["mode"]
    )
    n_sel = int(sum(np.sum(np.asarray(v) > 0) for v in q.values()))
    ref = np.roll(ws, 1, axis=0)
    t0 = time.perf_counter()
    edited = np.asarray(eis.transfer(gen, ws, ref, contribs, part, **VALIDITY_EIS))
    t_transfer = (time.perf_counter() - t0) / len(ws)
    r = locality(base, edited, region)
    loc = {
        "roir_per_sample": [r["roir_per_sample"]],
        "mse_inside": [r["mse_inside"]],
        "mse_outside": [r["mse_outside"]],
    }
    out.append(
        (
            "editing in style (ground-truth masks)",
            loc,
            t_contrib + t_transfer,
            f"seed i's {part} from seed i-1; query {VALIDITY_EIS} selects {n_sel} style "
            f"channels; time = contributions + one transfer",
            (1.0,),
        )
    )
    return out


def suite_stylegan3(ctx: Context) -> list[Row]:
    """StyleGAN3-T synthesis (batch 1, 8) and the W Jacobian of one sample: jaxedit against the
    PyTorch port of NVIDIA's generator, same weights (``suite_stylegan3.py``)."""
    from .suite_stylegan3 import run

    return run(ctx)


SUITES = {
    "forward": suite_forward,
    "jacobian": suite_jacobian,
    "wplus": suite_wplus,
    "wplus_embedded": suite_wplus_embedded,
    "solvers": suite_solvers,
    "sefa": suite_sefa,
    "spectra": suite_spectra,
    "biggan": suite_biggan,
    "validity": suite_validity,
    "panda": suite_panda,
    "moments": suite_moments,
    "stylegan3": suite_stylegan3,
}
