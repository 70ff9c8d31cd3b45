"""Subprocess worker of the ``moments`` suite (the device count is fixed when JAX starts).

``python -m benchmarks.moments_worker scaling --devices K --samples N --repeats R [--one] [--smoke]``
    region_moments over N seeds on K (fake CPU) devices: one warm-up run, then R timed runs;
    ``--one``: also R runs on a mesh of the first device only, in the same process (the
    1-device baseline without another JAX start-up).
``python -m benchmarks.moments_worker rss --samples N --impl moments|jacobian [--smoke]``
    a 1-sample warm-up (compilation), then one run over N samples with the process's resident
    memory sampled every 2 ms: peak during the run and its growth over the RSS before it.
    ``moments`` streams, ``jacobian`` is the in-memory path (every sample's Jacobian, then the
    moments).

Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import threading
import time


def _setup(devices: int) -> None:
    flags = [
        f
        for f in os.environ.get("XLA_FLAGS", "").split()
        if not f.startswith("--xla_force_host_platform_device_count")
    ]
    flags.append(f"--xla_force_host_platform_device_count={devices}")
    os.environ["XLA_FLAGS"] = " ".join(flags)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _model(smoke: bool):
    import jaxedit

    if smoke:  # the suite's toy model (32 px)
        from flax import nnx

        from jaxedit.models.stylegan2 import StyleGAN2Generator

        from .workloads import _sg2_config

        return StyleGAN2Generator(_sg2_config(True), rngs=nnx.Rngs(0))
    return jaxedit.default_generator()


REGIONS = ("eyes", "mouth", "nose")


def _regions(smoke: bool) -> dict:
    """FFHQ boxes on the random smoke generator, the part masks on the embedded toy model."""
    rset = "ffhq" if smoke else "toyfaces"
    return {r: f"{rset}/{r}" for r in REGIONS}


def _rss() -> int:
    """Current resident set size in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRSS:
    """Peak current RSS while the block runs (sampled every 2 ms by a thread)."""

    def __enter__(self):
        self.value, self._stop = _rss(), threading.Event()

        def watch():
            while not self._stop.is_set():
                self.value = max(self.value, _rss())
                time.sleep(0.002)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.value = max(self.value, _rss())
        return False


def _settings(jaxedit) -> dict:
    """The options of every timed run (the W space, full-resolution RGB rows, 32 tangents)."""
    return dict(
        space="w", output=jaxedit.OutputSpec(channels="rgb"), compute=jaxedit.Compute(chunk=32)
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.moments_worker")
    p.add_argument("mode", choices=("scaling", "rss"))
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--impl", choices=("moments", "jacobian"), default="moments")
    p.add_argument("--one", action="store_true", help="scaling: also time a 1-device mesh")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    _setup(args.devices)
    import jax
    import numpy as np

    import jaxedit
    from jaxedit.methods.resefa import jacobian_moments as dense_moments

    SETTINGS = _settings(jaxedit)

    gen = _model(args.smoke)
    seeds = list(range(args.samples))
    out: dict = {
        "mode": args.mode,
        "devices": jax.device_count(),
        "samples": args.samples,
        "impl": args.impl,
        "resolution": gen.resolution,
        "dim": gen.w_dim,
    }
    if args.mode == "scaling":
        from jax.sharding import Mesh

        def timed(mesh):
            def run():
                m = jaxedit.region_moments(gen, seeds, _regions(args.smoke), mesh=mesh, **SETTINGS)
                return jax.block_until_ready(m["eyes"].gram_f)

            run()
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
            return times

        out["times"] = timed(None)
        if args.one:
            out["times_1dev"] = timed(Mesh(np.asarray(jax.devices()[:1]), ("samples",)))
    else:

        def run(n):
            if args.impl == "moments":
                m = jaxedit.region_moments(gen, seeds[:n], _regions(args.smoke), **SETTINGS)
                np.asarray(m["eyes"].M_f)
                return
            z = np.concatenate([jaxedit.seed_to_z(s, gen.z_dim) for s in seeds[:n]])
            J = jaxedit.jacobian(gen, gen.mapping(z), **SETTINGS)
            for r in _regions(args.smoke).values():
                mf, mb = zip(*(dense_moments(j, r) for j in J))
                np.asarray(sum(mf))

        run(1)  # compile first: its memory is not what is measured
        gc.collect()
        before = _rss()
        with _PeakRSS() as peak:
            t0 = time.perf_counter()
            run(args.samples)
            out["seconds"] = time.perf_counter() - t0
        out["rss_before_bytes"] = before
        out["peak_rss_bytes"] = peak.value
        out["growth_bytes"] = peak.value - before
        out["lifetime_max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
