"""jaxedit-only StyleGAN2 synthesis throughput probe (not the issue-6 harness: no PyTorch side).

Random 1024px config-f weights, float32, precision "highest" and "default" (TF32 on GPUs),
batches 8 and 32; prints compile time and the median of 5 timed runs.

    python benchmarks/forward_probe.py [--resolution 1024] [--repeats 5]
"""

import argparse
import time

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxedit.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--resolution", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", default="8,32")
    a = p.parse_args()
    cfg = StyleGAN2Config.from_channel_base(32768, 512, a.resolution, z_dim=512, w_dim=512,
                                            c_dim=0, mapping_layers=8)
    gen = StyleGAN2Generator(cfg, rngs=nnx.Rngs(0))
    for prec in ("highest", "default"):
        for n in map(int, a.batches.split(",")):
            z = np.random.RandomState(0).randn(n, 512).astype(np.float32)
            ws = gen.mapping(z, dtype=jnp.float32)

            def run():
                gen.synthesis(ws, dtype=jnp.float32, precision=prec).block_until_ready()

            t = time.perf_counter()
            run()
            compile_s = time.perf_counter() - t
            times = []
            for _ in range(a.repeats):
                t = time.perf_counter()
                run()
                times.append(time.perf_counter() - t)
            med = float(np.median(times))
            print(f"{a.resolution}px fp32 precision={prec} batch={n}: compile {compile_s:.1f}s "
                  f"median {med * 1e3:.1f} ms -> {n / med:.1f} img/s", flush=True)


if __name__ == "__main__":
    main()
