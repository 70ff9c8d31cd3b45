"""Subprocess worker of the ``moments`` suite (the device count is fixed when JAX starts).

``python -m benchmarks.moments_worker scaling --devices K --samples N --repeats R [--smoke]``
    region_moments over N seeds on K (fake CPU) devices: one warm-up run, then R timed runs.
``python -m benchmarks.moments_worker rss --samples N --impl moments|jacobian [--smoke]``
    one run, then the process's peak resident memory (``ru_maxrss``): ``moments`` streams,
    ``jacobian`` is the in-memory path (every sample's Jacobian, then the moments).

Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def _setup(devices: int) -> None:
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    os.environ["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _model(smoke: bool):
    import jaxedit

    if smoke:   # the suite's toy model (32 px)
        from flax import nnx

        from jaxedit.models.stylegan2 import StyleGAN2Generator

        from .workloads import _sg2_config

        return StyleGAN2Generator(_sg2_config(True), rngs=nnx.Rngs(0))
    return jaxedit.default_generator()


REGIONS = ("eyes", "mouth", "nose")
SETTINGS = dict(space="w", channels="rgb", chunk=32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.moments_worker")
    p.add_argument("mode", choices=("scaling", "rss"))
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--impl", choices=("moments", "jacobian"), default="moments")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    _setup(args.devices)
    import jax
    import numpy as np

    import jaxedit
    from jaxedit.region_factorization import region_moments as dense_moments

    gen = _model(args.smoke)
    seeds = list(range(args.samples))
    out: dict = {"mode": args.mode, "devices": jax.device_count(), "samples": args.samples,
                 "impl": args.impl, "resolution": gen.resolution, "dim": gen.w_dim}
    if args.mode == "scaling":
        def run():
            m = jaxedit.region_moments(gen, seeds, list(REGIONS), **SETTINGS)
            return jax.block_until_ready(m["eyes"].gram_f)

        run()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        out["times"] = times
    else:
        t0 = time.perf_counter()
        if args.impl == "moments":
            m = jaxedit.region_moments(gen, seeds, list(REGIONS), **SETTINGS)
            np.asarray(m["eyes"].M_f)
        else:
            z = np.concatenate([jaxedit.seed_to_z(s, gen.z_dim) for s in seeds])
            J = jaxedit.jacobian(gen, gen.mapping(z), space="w", channels="rgb", chunk=32)
            for r in REGIONS:
                mf, mb = zip(*(dense_moments(j, r) for j in J))
                np.asarray(sum(mf))
        out["seconds"] = time.perf_counter() - t0
        out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
