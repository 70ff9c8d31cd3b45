"""``python -m benchmarks run --suite all --out benchmarks/results/<date>-<device>.json``
``python -m benchmarks render [--results benchmarks/results]`` -> ``benchmarks/results/README.md``.

``--smoke`` runs every suite at toy sizes on whatever device is present (CI does, on a CPU).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import traceback

from . import harness, workloads

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


#: Suites that compare jaxedit with NumPy or with itself only: they run without PyTorch.
TORCH_FREE = ("validity", "moments")


def _run(args) -> int:
    import jax

    names = list(workloads.SUITES) if args.suite == "all" else args.suite.split(",")
    unknown = [n for n in names if n not in workloads.SUITES]
    if unknown:
        print(
            f"unknown suite(s) {unknown}; choose from {list(workloads.SUITES)} or all",
            file=sys.stderr,
        )
        return 2
    try:
        import torch
    except ImportError:
        need = [n for n in names if n not in TORCH_FREE]
        if need:
            print(
                f"error: suite(s) {', '.join(need)} compare against PyTorch, which is not "
                "installed: pip install torch==2.13.0 -e .[bench] (suites without torch: "
                f"{', '.join(TORCH_FREE)})",
                file=sys.stderr,
            )
            return 2
        torch = None
    dev = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    ctx = workloads.Context(
        smoke=args.smoke, repeats=args.repeats or (2 if args.smoke else 10), torch_device=dev
    )
    info = harness.device_info()
    if jax.devices()[0].platform == "cpu" and not args.smoke:
        print(
            "warning: no GPU visible to JAX; full-size suites on a CPU take very long",
            file=sys.stderr,
        )
    out = args.out or os.path.join(
        RESULTS,
        f"{harness.today()}-{(info.get('torch_cuda') or info['jax_device']).replace(' ', '_')}"
        f"{'-smoke' if args.smoke else ''}.json",
    )
    rows, failures = [], {}
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    for name in names:
        print(f"== {name}", flush=True)
        try:
            new = workloads.SUITES[name](ctx)
        except Exception as e:  # noqa: BLE001 - record and continue with the other suites
            failures[name] = "".join(traceback.format_exception_only(type(e), e)).strip()
            traceback.print_exc()
            continue
        for r in new:
            print(
                f"   {r.workload:<45} {r.impl:<28} {r.precision:<5} "
                f"{harness._fmt_s(r.median_s):>10}  acc {r.accuracy}",
                flush=True,
            )
        rows += new
    meta = {
        "date": harness.today(),
        "device": info,
        "smoke": args.smoke,
        "suites": names,
        "repeats": ctx.repeats,
        "failures": failures,
        # other processes on a shared machine slow every row: say how busy it was
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    print(f"wrote {harness.write_results(out, rows, meta)}")
    return 1 if failures else 0


def _render(args) -> int:
    files = sorted(glob.glob(os.path.join(args.results, "*.json")))
    docs = []
    for f in files:
        with open(f) as fh:
            docs.append((os.path.basename(f), json.load(fh)))
    if not args.include_smoke:
        docs = [(n, d) for n, d in docs if not d.get("meta", {}).get("smoke")]
    text = (
        harness.render_markdown(docs)
        if docs
        else (
            "# Benchmark results\n\nNo full-size results yet: run `python -m benchmarks run --suite all` "
            "on a GPU machine, then `python -m benchmarks render`.\n"
        )
    )
    out = args.out or os.path.join(args.results, "README.md")
    with open(out, "w") as fh:
        fh.write(text)
    print(f"wrote {out} ({len(docs)} result file(s))")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument(
        "--suite", default="all", help=f"all or a comma list of {list(workloads.SUITES)}"
    )
    r.add_argument("--out", default=None)
    r.add_argument("--smoke", action="store_true", help="toy sizes (CPU, seconds)")
    r.add_argument("--repeats", type=int, default=None)
    r.set_defaults(fn=_run)
    d = sub.add_parser("render")
    d.add_argument("--results", default=RESULTS)
    d.add_argument("--out", default=None)
    d.add_argument("--include-smoke", action="store_true")
    d.set_defaults(fn=_render)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
