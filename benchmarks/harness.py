"""Timing, memory and result plumbing shared by the benchmark suites.

Every row records: workload, implementation (``jaxedit`` / ``pytorch`` / ``numpy``), precision
class (``fp32`` = JAX ``precision=HIGHEST`` and torch TF32 off; ``fast`` = TF32 on both), the
median / min / max seconds over ``repeats`` runs after ``warmup`` runs, peak device memory, an
accuracy figure with its definition, and free-form notes (e.g. "extrapolated from 128 rows").
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass
class Row:
    suite: str
    workload: str
    impl: str
    precision: str
    median_s: float | None
    min_s: float | None
    max_s: float | None
    repeats: int
    peak_mem_bytes: int | None = None
    accuracy: float | None = None
    accuracy_metric: str = ""
    target: str = ""
    notes: str = ""
    params: dict = dataclasses.field(default_factory=dict)


def _block(x):
    """Wait for asynchronous JAX / torch work hidden in ``x``."""
    try:
        import jax

        jax.block_until_ready(x)
    except Exception:  # noqa: BLE001 - not a JAX pytree
        pass
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:
        pass
    return x


def measure(fn: Callable[[], Any], *, repeats: int, warmup: int = 1) -> tuple[list[float], Any]:
    """Run ``fn`` ``warmup`` times, then time ``repeats`` runs (each synchronized). -> (times, last)."""
    out = None
    for _ in range(warmup):
        out = _block(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = _block(fn())
        times.append(time.perf_counter() - t0)
    return times, out


def stats(times: list[float]) -> dict:
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": len(times),
    }


class PeakMemory:
    """Peak device memory of a block: ``"jax"`` (``memory_stats``, None on CPU), ``"torch"`` (CUDA
    allocator, reset first) or ``"none"`` (host-only code)."""

    def __init__(self, backend: str):
        self.backend = backend
        self.peak: int | None = None

    def __enter__(self):
        if self.backend == "torch":
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc):
        if self.backend == "none":
            return False
        if self.backend == "torch":
            import torch

            if torch.cuda.is_available():
                self.peak = int(torch.cuda.max_memory_allocated())
        else:
            import jax

            st = jax.devices()[0].memory_stats() or {}
            self.peak = st.get("peak_bytes_in_use")
        return False


def timed_row(
    suite: str,
    workload: str,
    impl: str,
    precision: str,
    fn: Callable[[], Any],
    *,
    repeats: int,
    warmup: int = 1,
    backend: str = "jax",
    **fields,
) -> tuple[Row, Any]:
    with PeakMemory(backend) as mem:
        times, out = measure(fn, repeats=repeats, warmup=warmup)
    return Row(
        suite=suite,
        workload=workload,
        impl=impl,
        precision=precision,
        peak_mem_bytes=mem.peak,
        **stats(times),
        **fields,
    ), out


def device_info() -> dict:
    import jax

    info = {
        "jax": jax.__version__,
        "jax_device": str(jax.devices()[0].device_kind),
        "jax_platform": jax.devices()[0].platform,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import flax

        info["flax"] = flax.__version__
    except ImportError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["torch"] = None
    return info


def write_results(path: str, rows: list[Row], meta: dict) -> str:
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    doc = {"meta": meta, "rows": [dataclasses.asdict(r) for r in rows]}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2, default=float)
    os.replace(tmp, path)
    return path


def _fmt_s(v):
    if v is None:
        return "-"
    return f"{v * 1e3:.2f} ms" if v < 1 else f"{v:.2f} s"


def _fmt_load(v):
    return "-" if not v else "/".join(f"{x:.1f}" for x in v)


def _fmt_mem(v):
    return "-" if v is None else f"{v / 2**30:.2f} GiB"


def render_markdown(docs: list[tuple[str, dict]]) -> str:
    """One table per (file, suite, workload) with the jaxedit / PyTorch (or NumPy) ratio."""
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks render`; one section per results file. Times are "
        "medians over the repeats after warm-up; `ratio` = baseline median / jaxedit median "
        "in the same precision class (> 1: jaxedit faster; the fastest jaxedit variant where "
        "a workload has several).",
        "",
    ]
    for name, doc in docs:
        meta = doc.get("meta", {})
        dev = meta.get("device", {})
        lines += [
            f"## {name}",
            "",
            f"Device: {dev.get('torch_cuda') or dev.get('jax_device')} "
            f"(jax {dev.get('jax')}, torch {dev.get('torch')}), date {meta.get('date')}, "
            f"mode {'smoke (toy sizes, not a result)' if meta.get('smoke') else 'full'}."
            + (
                f" Load average (1/5/15 min) {_fmt_load(meta['loadavg_start'])} at the start, "
                f"{_fmt_load(meta.get('loadavg_end'))} at the end, on "
                f"{dev.get('cpu_count')} CPU(s)."
                if meta.get("loadavg_start")
                else ""
            )
            + (f" {meta['notes']}" if meta.get("notes") else ""),
            "",
        ]
        groups: dict = {}
        for r in doc["rows"]:
            groups.setdefault((r["suite"], r["workload"]), []).append(r)
        for (suite, workload), rows in groups.items():
            if suite == "validity":
                lines += _validity_table(workload, rows)
                continue
            lines += [
                f"### {suite}: {workload}",
                "",
                "| impl | precision | median | min | max | peak mem | ratio | accuracy | target | notes |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            jx = {r["precision"]: r["median_s"] for r in rows if r["impl"] == "jaxedit"}
            for r in rows:  # no plain "jaxedit" row: the fastest jaxedit-* variant is the base
                if (
                    r["impl"].startswith("jaxedit")
                    and r["median_s"]
                    and not any(q["impl"] == "jaxedit" for q in rows)
                ):
                    jx[r["precision"]] = min(jx.get(r["precision"], r["median_s"]), r["median_s"])
            for r in rows:
                ratio = "-"
                base = jx.get(r["precision"])
                if not r["impl"].startswith("jaxedit") and base and r["median_s"]:
                    ratio = f"{r['median_s'] / base:.2f}×"
                acc = (
                    "-"
                    if r["accuracy"] is None
                    else (
                        f"{r['accuracy']:.{7 if 'cos' in r['accuracy_metric'] else 3}g} "
                        f"({r['accuracy_metric']})"
                    )
                )
                cells = [
                    r["impl"],
                    r["precision"],
                    _fmt_s(r["median_s"]),
                    _fmt_s(r["min_s"]),
                    _fmt_s(r["max_s"]),
                    _fmt_mem(r["peak_mem_bytes"]),
                    ratio,
                    acc,
                    r.get("target") or "-",
                    r.get("notes") or "",
                ]
                lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


def _validity_table(workload: str, rows: list[dict]) -> list[str]:
    """Locality and ground-truth agreement of each method for one region (suite ``validity``)."""

    def f(v, fmt=".3f"):
        return "-" if v is None else format(v, fmt)

    p0 = rows[0].get("params", {})
    lines = [
        f"### validity: {workload}",
        "",
        f"{p0.get('seeds')} seeds; ROIR of the top direction at alphas {p0.get('steps')} "
        f"(W units; z edits: normal-score deltas; PandA: feature steps in units of the "
        f"appearance's std in the part; Editing in Style: one transfer), median over seeds; "
        f"overlap = mean cos² "
        f"of the principal angles between the image-change subspaces of the top-k "
        f"directions and of the part's k factor directions (1 = same subspace).",
        "",
        "| method | ROIR median | ROIR mean | MSE inside | MSE outside | overlap (k) | "
        "top cos | time | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r.get("params", {})
        ov = "-" if p.get("overlap") is None else f"{p['overlap']:.3f} ({p.get('k')})"
        lines.append(
            f"| {r['impl']} | {f(p.get('roir_median'))} | {f(p.get('roir_mean'))} | "
            f"{f(p.get('mse_inside'), '.3g')} | {f(p.get('mse_outside'), '.3g')} | {ov} | "
            f"{f(p.get('top_cosine'))} | {_fmt_s(r['median_s'])} | {r.get('notes') or ''} |"
        )
    return lines + [""]


def today() -> str:
    return datetime.date.today().isoformat()
