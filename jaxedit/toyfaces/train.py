"""Fitting a StyleGAN2 to the toy-face renderer: ``G(z) ~ render(factors_from_z(z))``.

Regression, not a GAN: every step draws fresh latents ``z ~ N(0, I)`` (``jax.random.fold_in`` of
the run's key and the step number, so a resumed run sees the same stream), renders the targets
inside the same jitted program, and takes one optax Adam step on the L1 image error (the metric
the run is judged by: the mean absolute pixel error, images in [-1, 1]), in which the pixels of
the eyes, eyebrows, nose and mouth presets weigh ``1 + part_weight`` (`loss_weights`). The
generator is this package's `StyleGAN2Generator` (c_dim 0, no
noise inputs); its parameters are split once (``nnx.split``) and passed to the jitted step as an
explicit pytree.

Outputs in ``out_dir``: ``log.jsonl`` (one line per logged step: loss, learning rate, wall and
process CPU seconds, held-out MAE where evaluated), ``state.npz`` (parameters + optimizer state +
step, for ``--resume``), ``generator/`` (the final generator, `jaxedit.save_generator`
format), ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .._io import load_npz, progress, save_json, save_npz
from ..models.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from ._latent import Z_DIM, _factors_from_z, sample_z
from ._render import _render_batch

EVAL_SEED = 20240917  # held-out latents: sample_z(EVAL_SEED, 256); training keys never use it
EVAL_SIZE = 256
LOG_FILE = "log.jsonl"
STATE_FILE = "state.npz"
SUMMARY_FILE = "summary.json"
GENERATOR_DIR = "generator"
LOSSES = ("l1", "l1+l2")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every choice of a training run (stored in ``summary.json``; a resumed run must match).

    Attributes:
      steps: optimizer steps; batch: latents per step.
      lr: peak Adam learning rate; warmup: linear warm-up steps; the rest is a cosine decay to
        ``lr * final_lr_fraction``. b1, b2: Adam moments; clip: global gradient-norm clip.
      seed: initialization and latent stream.
      channels: ``((resolution, channels), ...)`` of the synthesis network (64 px).
      w_dim, mapping_layers, mapping_lr_multiplier: the mapping network.
      eval_every, save_every, log_every: in steps.
      loss: ``"l1"`` (mean absolute error) or ``"l1+l2"`` (plus the mean squared error).
      part_weight: pixels of the local parts' presets (eyes, eyebrows, nose, mouth) weigh
        ``1 + part_weight`` in the loss (normalized to mean weight 1): their factors change few
        pixels, so without it the fit spends its capacity on the global ones.
    """

    steps: int = 12000
    batch: int = 16
    lr: float = 1e-2
    warmup: int = 100
    final_lr_fraction: float = 0.02
    b1: float = 0.9
    b2: float = 0.99
    clip: float = 1.0
    seed: int = 0
    channels: tuple[tuple[int, int], ...] = ((4, 128), (8, 128), (16, 64), (32, 32), (64, 16))
    w_dim: int = 32
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 1.0
    eval_every: int = 500
    save_every: int = 250
    log_every: int = 50
    loss: str = "l1"
    part_weight: float = 4.0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"steps and batch must be >= 1, got {self.steps}, {self.batch}")
        if not (math.isfinite(self.part_weight) and self.part_weight >= 0):
            raise ValueError(f"part_weight must be finite and >= 0, got {self.part_weight}")

    def model_config(self) -> StyleGAN2Config:
        return StyleGAN2Config.create(
            dict(self.channels),
            z_dim=Z_DIM,
            w_dim=self.w_dim,
            c_dim=0,
            img_resolution=64,
            mapping_layers=self.mapping_layers,
            mapping_lr_multiplier=self.mapping_lr_multiplier,
            use_noise=False,
        )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channels"] = [list(c) for c in self.channels]
        return d

    @classmethod
    def from_dict(cls, d) -> TrainConfig:
        d = dict(d)
        d["channels"] = tuple((int(r), int(c)) for r, c in d["channels"])
        return cls(**d)


def init_generator(tc: TrainConfig) -> StyleGAN2Generator:
    """The untrained generator of ``tc`` (deterministic in ``tc.seed``)."""
    return StyleGAN2Generator(tc.model_config(), rngs=nnx.Rngs(tc.seed))


def _schedule(tc: TrainConfig) -> optax.Schedule:
    return optax.warmup_cosine_decay_schedule(
        0.0, tc.lr, tc.warmup, max(tc.steps, tc.warmup + 1), end_value=tc.lr * tc.final_lr_fraction
    )


def optimizer(tc: TrainConfig) -> optax.GradientTransformation:
    """Adam with a linear warm-up and cosine decay, after global-norm clipping."""
    return optax.chain(
        optax.clip_by_global_norm(tc.clip), optax.adam(_schedule(tc), b1=tc.b1, b2=tc.b2)
    )


def schedule_value(tc: TrainConfig, step: int) -> float:
    return float(np.asarray(_schedule(tc)(step)))


def forward(graphdef, params, rest, z):
    """Pure generator: z [N, Z_DIM] -> images [N, 64, 64, 3] (float32, psi 1, no noise)."""
    gen = nnx.merge(graphdef, params, rest)
    w = gen.mapping_net(z, None, precision="default")
    ws = jnp.broadcast_to(w[:, None, :], (w.shape[0], gen.num_ws, gen.w_dim))
    return gen.synthesis(ws, dtype=jnp.float32, precision="default", jit=False)


def target(z):
    """The renderer's image of z: [N, Z_DIM] -> [N, 64, 64, 3]."""
    return _render_batch(_factors_from_z(z))


LOCAL_PARTS = ("eyes", "eyebrows", "nose", "mouth")


def loss_weights(part_weight: float) -> np.ndarray:
    """[64, 64, 1] pixel weights: ``1 + part_weight`` inside the union of the local parts'
    region presets, 1 elsewhere, scaled to mean 1."""
    from ..regions import region_mask

    m = np.zeros((64, 64), bool)
    for p in LOCAL_PARTS:
        m |= region_mask(f"toyfaces/{p}", 64)
    w = 1.0 + float(part_weight) * m
    return (w / w.mean())[:, :, None].astype(np.float32)


def make_step(
    graphdef,
    tx: optax.GradientTransformation,
    batch: int,
    loss: str = "l1",
    part_weight: float = 0.0,
):
    """The jitted training step ``(params, rest, opt_state, key) -> (params, opt_state, loss)``;
    the loss is the (optionally ``"l1+l2"``) image error weighted by `loss_weights`."""
    weights = jnp.asarray(loss_weights(part_weight))

    def loss_fn(params, rest, z):
        err = forward(graphdef, params, rest, z) - target(z)
        out = jnp.mean(weights * jnp.abs(err))
        if loss == "l1+l2":
            out = out + jnp.mean(weights * jnp.square(err))
        return out

    @jax.jit
    def step(params, rest, opt_state, key):
        z = jax.random.normal(key, (batch, Z_DIM), jnp.float32)
        loss, grads = jax.value_and_grad(loss_fn)(params, rest, z)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def make_eval(graphdef):
    """Jitted ``(params, rest, z) -> per-sample mean absolute error [N]``."""

    @jax.jit
    def mae(params, rest, z):
        return jnp.mean(jnp.abs(forward(graphdef, params, rest, z) - target(z)), axis=(1, 2, 3))

    return mae


def eval_latents(n: int = EVAL_SIZE) -> jax.Array:
    """The held-out latents ``[n, Z_DIM]`` (float32; never drawn by a training step)."""
    return sample_z(EVAL_SEED, n, jnp.float32)


def step_key(seed: int, step: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), step)


def _flat(tree) -> dict[str, np.ndarray]:
    return {f"leaf{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(tree))}


def _save_state(out_dir, step, params, opt_state, tc):
    leaves: dict[str, Any] = _flat((params, opt_state))
    save_npz(
        os.path.join(out_dir, STATE_FILE),
        step=np.int64(step),
        config=np.asarray(json.dumps(tc.to_dict(), sort_keys=True)),
        **leaves,
    )


def _load_state(out_dir, template, tc):
    path = os.path.join(out_dir, STATE_FILE)
    data = load_npz(path, ("step", "config"), "toyfaces training state")
    saved = json.loads(str(data["config"]))
    if saved != json.loads(json.dumps(tc.to_dict(), sort_keys=True)):
        raise ValueError(
            f"{path}: saved by a run with a different configuration; use another "
            f"--out, or the same options ({saved})"
        )
    leaves, treedef = jax.tree.flatten(template)
    new = []
    for i, ref in enumerate(leaves):
        arr = data.get(f"leaf{i:05d}")
        if arr is None or arr.shape != np.shape(ref):
            raise ValueError(f"{path}: leaf {i} missing or of the wrong shape")
        new.append(jnp.asarray(arr, jnp.asarray(ref).dtype))
    return int(data["step"]), jax.tree.unflatten(treedef, new)


def _read_log(out_dir, upto: int) -> list[dict]:
    path = os.path.join(out_dir, LOG_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r["step"] <= upto]


def train(
    out_dir: str,
    tc: TrainConfig = TrainConfig(),
    *,
    resume: bool = False,
    show_progress: bool = True,
    max_steps_this_call: int | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run into ``out_dir``; returns the summary (also ``summary.json``).

    ``resume=True`` continues from ``out_dir/state.npz`` (same options required); without it an
    existing ``state.npz`` is an error. ``max_steps_this_call`` stops early (for tests)
    without writing the final generator.
    """
    from ..checkpoint import save_generator

    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    gen = init_generator(tc)
    graphdef, params, rest = nnx.split(gen, nnx.Param, ...)
    tx = optimizer(tc)
    opt_state = tx.init(params)
    start = 0
    state_path = os.path.join(out_dir, STATE_FILE)
    prior_wall = prior_cpu = 0.0
    log_rows: list[dict] = []
    if os.path.exists(state_path):
        if not resume:
            raise FileExistsError(
                f"{state_path} exists: pass --resume to continue that run, or choose another --out"
            )
        start, (params, opt_state) = _load_state(out_dir, (params, opt_state), tc)
        log_rows = _read_log(out_dir, start)
        if log_rows:
            prior_wall, prior_cpu = log_rows[-1]["wall_s"], log_rows[-1]["cpu_s"]
    step_fn = make_step(graphdef, tx, tc.batch, tc.loss, tc.part_weight)
    mae_fn = make_eval(graphdef)
    z_eval = eval_latents()
    stop = tc.steps if max_steps_this_call is None else min(tc.steps, start + max_steps_this_call)
    t_wall, t_cpu = time.perf_counter(), time.process_time()

    def clock():
        return (prior_wall + time.perf_counter() - t_wall, prior_cpu + time.process_time() - t_cpu)

    def write_log():
        tmp_rows = "".join(json.dumps(r) + "\n" for r in log_rows)
        path = os.path.join(out_dir, LOG_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(tmp_rows)
        os.replace(tmp, path)

    losses = []
    with progress(stop - start, "toyfaces train", enabled=show_progress, unit="step") as bar:
        for t in range(start, stop):
            params, opt_state, loss = step_fn(params, rest, opt_state, step_key(tc.seed, t))
            losses.append(loss)
            done = t + 1
            if done % tc.log_every == 0 or done == stop:
                vals = np.asarray(jnp.stack(losses))
                losses = []
                wall, cpu = clock()
                row = {
                    "step": done,
                    "loss": float(vals.mean()),
                    "lr": schedule_value(tc, t),
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                }
                if done % tc.eval_every == 0 or done == tc.steps:
                    row["eval_mae"] = float(np.mean(np.asarray(mae_fn(params, rest, z_eval))))
                log_rows.append(row)
                extra: dict[str, Any] = (
                    {"mae": f"{row['eval_mae']:.4f}"} if "eval_mae" in row else {}
                )
                bar.set_postfix(loss=f"{row['loss']:.4f}", **extra)
                write_log()
            if done % tc.save_every == 0 or done == stop:
                _save_state(out_dir, done, params, opt_state, tc)
            bar.update(1)
    wall, cpu = clock()
    summary = {
        "config": tc.to_dict(),
        "steps_done": stop,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "final_loss": log_rows[-1]["loss"] if log_rows else None,
    }
    if stop == tc.steps:
        per = np.asarray(mae_fn(params, rest, z_eval))
        summary["eval_mae"] = float(per.mean())
        summary["eval_mae_max"] = float(per.max())
        summary["eval"] = {"seed": EVAL_SEED, "n": EVAL_SIZE}
        gen = nnx.merge(graphdef, params, rest)
        gen.set_w_avg(gen.estimate_w_avg(jax.random.key(tc.seed + 1), 10000))
        summary["generator"] = save_generator(
            gen,
            os.path.join(out_dir, GENERATOR_DIR),
            overwrite=True,
            source={
                "format": "toyfaces",
                "train_config": tc.to_dict(),
                "eval_mae": summary["eval_mae"],
            },
        )
    save_json(os.path.join(out_dir, SUMMARY_FILE), summary)
    return summary


def fmt_minutes(s: float) -> str:
    return f"{s / 60:.1f} min" if math.isfinite(s) else "?"


def generator_from_state(out_dir: str) -> StyleGAN2Generator:
    """The generator saved in ``out_dir/state.npz`` by a (possibly unfinished) run, with
    ``w_avg`` estimated as at the end of a run (for inspecting a run while it trains)."""
    path = os.path.join(os.path.abspath(out_dir), STATE_FILE)
    data = load_npz(path, ("step", "config"), "toyfaces training state")
    tc = TrainConfig.from_dict(json.loads(str(data["config"])))
    gen = init_generator(tc)
    graphdef, params, rest = nnx.split(gen, nnx.Param, ...)
    tx = optimizer(tc)
    _, (params, _) = _load_state(out_dir, (params, tx.init(params)), tc)
    gen = nnx.merge(graphdef, params, rest)
    gen.set_w_avg(gen.estimate_w_avg(jax.random.key(tc.seed + 1), 10000))
    return gen
