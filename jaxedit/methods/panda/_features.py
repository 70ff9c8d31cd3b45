"""`fit_generator`: PandA on a generator layer's features (StyleGAN2 and BigGAN-deep), drawn
batch by batch from a sample pool or the reference's stream; `resolve_layer`, `reference_z`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ... import _ops
from ..._typing import Latents, ReferenceZ
from ...sampling import Compute, Sampling, as_compute, as_sampling
from ._checks import (
    APPEARANCE_RATE,
    REFERENCE_RANKS,
    _check_features,
    _check_finite,
    _check_ranks,
    _check_steps,
    _resolve_optimizer,
)
from ._fit import _fit_stream, fit
from ._loss import _hosvd_from_scatter, _scatter
from ._result import PandaResult


def _require_generator(gen, what: str):
    from ...models import AbstractGenerator

    if not isinstance(gen, AbstractGenerator):
        kind = type(gen).__name__
        raise ValueError(
            f"panda.{what} supports StyleGAN2 generators and StyleGAN3 (split at "
            f"gen.feature_layers, e.g. 'b16.conv1' or 'L3_36_512') and BigGAN-deep (split after 'block3', 'attention', ...); got {kind}. "
            f"For other models, compute [N, H, W, C] features yourself and call "
            f"panda.fit(features, ...)"
        )


def resolve_layer(gen, layer) -> str:
    """A split point by name or by the reference's genforce index L (the features after layers
    ``0..L-1``). StyleGAN2: conv names (``"b16.conv1"``; ``L = 5`` is ``b16.conv1`` at 1024 px).
    BigGAN-deep: the reference's ``generator.layers``, ``"block0"`` ... with ``"attention"``
    before block ``attention_layer_position``."""
    _require_generator(gen, "resolve_layer")
    return gen.resolve_layer(layer)


_FEATURE_COMPUTE = Compute()  # batch_size None: 32 samples a step (feature_batch below)


def _sampling_for(gen, sampling, what: str) -> Sampling:
    """``sampling`` checked (TypeError naming it) and refused where a field cannot apply."""
    sampling = as_sampling(sampling, "sampling")
    if gen.truncation_kind == "stats" and sampling.truncation_cutoff is not None:
        raise ValueError(
            f"panda.{what}: sampling.truncation_cutoff applies to StyleGAN2 (W+ "
            f"slots); {gen.display_name} has none, got "
            f"{sampling.truncation_cutoff!r}"
        )
    return sampling


def _class_rows(gen, c, n: int):
    classes = gen.class_dim
    if classes == 0:
        if c is not None:
            raise ValueError("sampling.c was given but this generator is unconditional")
        return None
    if c is None:
        raise ValueError(
            f"this generator is conditional: pass c of shape [{classes}] or "
            f"[N, {classes}] as sampling=Sampling(c=...) (e.g. "
            f"jaxedit.one_hot([k], {classes})[0])"
        )
    c = np.asarray(c, np.float64)
    if c.ndim == 1:
        c = c[None]
    if c.shape[0] == 1:
        c = np.repeat(c, n, axis=0)
    if c.shape != (n, classes):
        raise ValueError(
            f"sampling.c must have shape [{classes}] or [{n}, {classes}], got {c.shape}"
        )
    _check_finite(c, "c")
    return c


class _LayerFeatures:
    """Features of a StyleGAN2 / StyleGAN3 layer for z / ws batches (mapping + features_at)."""

    latents_shape = "ws [N, num_ws, w_dim]"

    def __init__(self, gen, layer, sampling: Sampling, compute: Compute):
        self.gen, self.layer = gen, layer
        self.kw = dict(
            noise_mode=sampling.noise_mode, dtype=compute.dtype, precision=compute.precision
        )
        self.psi, self.cutoff = sampling.truncation_psi, sampling.truncation_cutoff

    def seed_z(self, seed: int) -> np.ndarray:
        """NVIDIA generate.py's z for a seed: [1, z_dim]."""
        from ...models.stylegan2 import seed_to_z

        return seed_to_z(seed, self.gen.z_dim)

    def stream_z(self, t: int, n: int) -> np.ndarray:
        """The reference's z for step t: ``RandomState(t).randn(n, z_dim)``."""
        return reference_z(t, n, self.gen.z_dim)

    def check_latents(self, latents) -> jax.Array:
        ws = jnp.asarray(latents)
        if ws.ndim != 3 or ws.shape[1:] != (self.gen.num_ws, self.gen.w_dim):
            raise ValueError(
                f"latents must be ws [N, {self.gen.num_ws}, {self.gen.w_dim}], got "
                f"{tuple(ws.shape)}"
            )
        _check_finite(ws, "latents")
        return ws

    def from_z(self, z, c=None):
        ws = self.gen.mapping(
            z, c, self.psi, self.cutoff, dtype=self.kw["dtype"], precision=self.kw["precision"]
        )
        return self.from_latents(ws)

    def from_latents(self, ws, c=None):
        return self.gen.features_at(ws, self.layer, **self.kw).x


class _BigGANFeatures:
    """Features of a BigGAN-deep layer for z batches (``truncation · truncnorm`` z, class
    vectors; latents are z)."""

    latents_shape = "z [N, z_dim]"

    def __init__(self, gen, layer, sampling: Sampling, compute: Compute):
        truncation = sampling.truncation_psi
        if not 0 < truncation <= 1:
            raise ValueError(
                f"sampling.truncation_psi (BigGAN's truncation) must be in (0, 1] "
                f"for BigGAN, got {truncation}"
            )
        self.gen, self.layer, self.truncation = gen, layer, float(truncation)
        self.dtype, self.precision = compute.dtype, compute.precision

    def seed_z(self, seed: int) -> np.ndarray:
        """jaxedit synth's BigGAN z for a seed: ``truncated_noise_sample(1, z_dim, truncation,
        seed)``."""
        from ...models.biggan import truncated_noise_sample

        return truncated_noise_sample(1, self.gen.z_dim, self.truncation, seed=int(seed))

    def stream_z(self, t: int, n: int) -> np.ndarray:
        from ...models.biggan import truncated_noise_sample

        return truncated_noise_sample(n, self.gen.z_dim, self.truncation, seed=int(t))

    def check_latents(self, latents) -> jax.Array:
        z = jnp.asarray(latents)
        if z.ndim != 2 or z.shape[1] != self.gen.z_dim:
            raise ValueError(
                f"latents must be z [N, {self.gen.z_dim}] for BigGAN, got {tuple(z.shape)}"
            )
        _check_finite(z, "latents")
        return z

    def from_z(self, z, c=None):
        return self.from_latents(z, c)

    def from_latents(self, z, c=None):
        return self.gen.features_at(
            z,
            self.layer,
            c=c,
            truncation=self.truncation,
            dtype=self.dtype,
            precision=self.precision,
        ).x


def reference_z(seed: int, n: int, z_dim: int) -> ReferenceZ:
    """The reference's latents for step/seed t: ``np.random.seed(t); randn(n, z_dim)``.
    -> [n, z_dim]."""
    return np.random.RandomState(int(seed)).randn(int(n), int(z_dim))


def fit_generator(
    gen,
    layer,
    ranks=REFERENCE_RANKS,
    steps: int = 1000,
    *,
    seeds=None,
    latents: Latents | None = None,
    minibatch_size: int | None = None,
    sampling: Sampling | None = None,
    compute: Compute | None = None,
    optimizer=None,
    learning_rate: float | None = None,
    init_appearance="hosvd",
    init_parts=None,
    hosvd_samples: int = 1000,
    key=None,
    progress: bool = False,
    max_cache_bytes: int = 2**30,
) -> PandaResult:
    """`fit` on a generator layer's features, drawn from the generator batch by batch.

    Generators: StyleGAN2 (layers ``"b16.conv1"`` ...) and BigGAN-deep (``"block3"``,
    ``"attention"`` ...; ``sampling.c`` is required, ``sampling.truncation_psi`` is BigGAN's
    truncation in (0, 1], which scales z and picks the BN statistics); either also by the
    reference's index L (`resolve_layer`).

    Samples:
      * ``seeds`` (StyleGAN2: NVIDIA ``generate.py`` latents, ``RandomState(seed).randn(1,
        z_dim)``; BigGAN: ``truncated_noise_sample(1, z_dim, truncation, seed)`` as ``jaxedit
        synth``) or ``latents`` (StyleGAN2 ws ``[N, num_ws, w_dim]``, BigGAN z ``[N, z_dim]``):
        a fixed pool of N samples. If its features fit in ``max_cache_bytes`` (default 1 GiB)
        they are computed once (``compute.batch_size`` at a time) and fitted as an array
        (``minibatch_size`` None = full gradient); otherwise each step computes the features of
        ``minibatch_size`` pool samples (needs ``minibatch_size``) and the HOSVD init reads the
        pool ``compute.batch_size`` samples at a time until it has at least ``hosvd_samples``.
      * neither: the reference's stochastic mode, a fresh batch every step: step t uses
        ``z = RandomState(t).randn(minibatch_size or 1, z_dim)`` (BigGAN: truncated normal with
        seed t); the HOSVD init uses the reference's 10 samples of seed i for
        ``i < hosvd_samples / 10``.

    Memory is bounded by ``max(max_cache_bytes, compute.batch_size · H·W·C)`` feature values.
    Other arguments as `fit`.

    Args:
      gen: a StyleGAN2 or BigGAN-deep generator.
      layer: a layer name or the reference's index L (`resolve_layer`).
      ranks: ``(R_C, R_S)``. steps: number of alternating steps.
      seeds: a pool of seeds, or None. latents: a pool of latents (see above), or None.
      minibatch_size: PandA's optimizer mini-batch, the samples of one step of the fit (not
        the generator's work size, which is ``compute.batch_size``): None = the whole cached
        pool, or 1 sample per step in the reference's stochastic mode.
      sampling: a `jaxedit.Sampling` applied to every sample (None = ``Sampling()``):
        ``truncation_psi`` (reference: 1.0), ``truncation_cutoff`` (StyleGAN2 only), ``c``
        (conditional StyleGAN2s: ``[c_dim]`` or ``[N, c_dim]``; BigGAN: class vectors
        ``[num_classes]`` or ``[N, num_classes]``) and ``noise_mode`` (StyleGAN2; reference:
        ``"const"``; ``"random"`` is refused: the features must be a fixed function of the
        samples).
      compute: a `jaxedit.Compute`: ``dtype`` and ``precision`` of the generator (and the fit's
        precision) and ``batch_size``, samples per jitted generator step. None =
        ``Compute()``, whose ``batch_size`` of None means 32 samples a step; ``chunk`` is not used.
      optimizer, learning_rate, init_appearance, init_parts, hosvd_samples, key, progress:
        as `fit`.
      max_cache_bytes: largest pool of features computed once and kept in memory.

    Returns:
      A `PandaResult` with ``layer`` set; its ``settings`` record the source of the
      features (``truncation_psi``, ``noise_mode``, ``truncation_cutoff``; BigGAN:
      ``truncation``) and ``batch_size`` (the mini-batch size, the key of the file format).

    Raises:
      TypeError: ``sampling`` or ``compute`` is not a `jaxedit.Sampling` / `jaxedit.Compute`.
      ValueError: an unsupported generator or layer, both ``seeds`` and ``latents``, an empty
        pool, ``sampling.noise_mode="random"``, ``sampling.truncation_cutoff`` for BigGAN, a
        missing or misshapen ``sampling.c``, a bad ``minibatch_size``, or a pool over
        ``max_cache_bytes`` without ``minibatch_size``.
    """
    _require_generator(gen, "fit_generator")
    sampling = _sampling_for(gen, sampling, "fit_generator")
    compute = _FEATURE_COMPUTE if compute is None else as_compute(compute, "compute")
    layer = resolve_layer(gen, layer)
    steps = _check_steps(steps)
    if seeds is not None and latents is not None:
        raise ValueError("pass seeds or latents, not both")
    if sampling.noise_mode == "random":
        raise ValueError(
            "panda.fit_generator: sampling.noise_mode='random' is not supported (the "
            "features must be a fixed function of the samples); use 'const' (the "
            "reference) or 'none'"
        )
    feature_batch = compute.batch_size_or(32)
    precision = compute.precision
    c = sampling.c
    key = jax.random.key(0) if key is None else key
    biggan = gen.truncation_kind == "stats"  # z latents, truncation picks BN statistics
    if biggan:
        lf = _BigGANFeatures(gen, layer, sampling, compute)
        source = dict(layer=layer, truncation=float(sampling.truncation_psi), family=gen.family)
    else:
        lf = _LayerFeatures(gen, layer, sampling, compute)
        source = dict(
            layer=layer,
            truncation_psi=float(sampling.truncation_psi),
            noise_mode=sampling.noise_mode,
            truncation_cutoff=sampling.truncation_cutoff,
        )

    if seeds is None and latents is None:  # the reference's stochastic mode
        b = 1 if minibatch_size is None else int(minibatch_size)
        if b < 1:
            raise ValueError(f"minibatch_size must be >= 1, got {minibatch_size!r}")
        c_one = _class_rows(gen, c, 1)

        def stream(t, _key):
            return lf.from_z(lf.stream_z(t, b), None if c_one is None else np.repeat(c_one, b, 0))

        def hosvd_stream(i, _key):
            return lf.from_z(
                lf.stream_z(i, 10), None if c_one is None else np.repeat(c_one, 10, axis=0)
            )

        source.update(
            samples="reference stream: step t -> "
            + (
                "truncated_noise_sample(B, z_dim, truncation, seed=t)"
                if biggan
                else "RandomState(t).randn(B, z_dim)"
            ),
            batch_size=b,
        )
        return _fit_generator_stream(
            stream,
            hosvd_stream,
            ranks,
            steps,
            optimizer,
            learning_rate,
            init_appearance,
            init_parts,
            hosvd_samples,
            key,
            progress,
            layer,
            precision,
            source,
        )

    if seeds is not None:
        seeds = [int(s) for s in np.asarray(seeds).reshape(-1)]
        if not seeds:
            raise ValueError("seeds is empty")
        n = len(seeds)
        cs = _class_rows(gen, c, n)

        def pool(idx):
            z = np.concatenate([lf.seed_z(seeds[i]) for i in idx])
            return lf.from_z(z, None if cs is None else cs[np.asarray(idx)])

        source.update(samples=f"{n} seeds", seeds=_seed_summary(seeds))
    else:
        lat = lf.check_latents(latents)
        n = lat.shape[0]
        if n == 0:
            raise ValueError("latents is empty")
        cs = _class_rows(gen, c, n) if biggan else None

        def pool(idx):
            return lf.from_latents(
                lat[np.asarray(idx)], None if cs is None else cs[np.asarray(idx)]
            )

        source.update(samples=f"{n} latents")
    x0 = pool([0])
    _, h, w, ch = x0.shape
    itemsize = jnp.dtype(x0.dtype).itemsize
    if n * h * w * ch * itemsize <= max_cache_bytes:
        feats = []
        from ..._io import progress as progress_bar

        with progress_bar(n, "panda features", enabled=progress) as bar:
            for i in range(0, n, feature_batch):
                idx = list(range(i, min(i + feature_batch, n)))
                feats.append(pool(idx))
                bar.update(len(idx))
        x = jnp.concatenate(feats)
        res = fit(
            x,
            ranks,
            steps,
            optimizer,
            learning_rate,
            init_appearance,
            init_parts,
            minibatch_size,
            key,
            progress,
            layer=layer,
            compute=compute,
        )
        return dataclasses.replace(res, settings={**res.settings, **source})
    if minibatch_size is None:
        raise ValueError(
            f"the features of {n} samples ({n * h * w * ch * itemsize / 2**30:.2f} GiB) exceed "
            f"max_cache_bytes = {max_cache_bytes}: pass minibatch_size to stream mini-batches (or "
            f"raise max_cache_bytes)"
        )
    b = int(minibatch_size)
    if not 1 <= b <= n:
        raise ValueError(f"minibatch_size must be in [1, {n}], got {minibatch_size!r}")
    pick_key = jax.random.fold_in(key, 1)

    def stream(t, _key):
        idx = np.asarray(jax.random.choice(jax.random.fold_in(pick_key, t), n, (b,), replace=False))
        return pool(list(idx))

    def hosvd_stream(i, _key):
        lo = (i * feature_batch) % n
        return pool(list(range(lo, min(lo + feature_batch, n))))

    source.update(batch_size=b)
    return _fit_generator_stream(
        stream,
        hosvd_stream,
        ranks,
        steps,
        optimizer,
        learning_rate,
        init_appearance,
        init_parts,
        min(hosvd_samples, n),
        key,
        progress,
        layer,
        precision,
        source,
    )


def _seed_summary(seeds: Sequence[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def _fit_generator_stream(
    stream,
    hosvd_stream,
    ranks,
    steps,
    optimizer,
    learning_rate,
    init_appearance,
    init_parts,
    hosvd_samples,
    key,
    progress,
    layer,
    precision,
    source,
):
    tx, lr, mode, normalized = _resolve_optimizer(optimizer, learning_rate)
    prec = _ops.as_precision(precision)
    x0 = _check_features(stream(0, None), "generator features")
    _, h, w, c = x0.shape
    dtype = x0.dtype
    # HOSVD init and the feature energy from the reference's HOSVD samples.
    scat, count, i = jnp.zeros((c, c), dtype), 0, 0
    need_hosvd = isinstance(init_appearance, str) and init_appearance == "hosvd"
    target = max(int(hosvd_samples), 1) if need_hosvd else 1
    from ..._io import progress as progress_bar

    with progress_bar(target, "panda hosvd", enabled=progress and need_hosvd) as bar:
        while count < target:
            xb = _check_features(hosvd_stream(i, None), "generator features")
            scat = scat + _scatter(xb.reshape(xb.shape[0], h * w, c), precision=prec)
            count += xb.shape[0]
            i += 1
            bar.update(xb.shape[0])
    scat = scat / count
    energy = float(jnp.trace(scat))
    init_a = (
        _hosvd_from_scatter(scat)[:, : _check_ranks(ranks, h * w, c)[0]]
        if need_hosvd
        else init_appearance
    )
    settings = dict(
        optimizer=mode,
        learning_rate=lr,
        steps=steps,
        batch_size=None,
        precision=str(precision),
        ranks=None,
        appearance_rate=APPEARANCE_RATE if normalized else 1.0,
    )
    res = _fit_stream(
        stream,
        ranks,
        steps,
        tx,
        lr,
        mode,
        normalized,
        init_a,
        init_parts,
        key,
        progress,
        layer,
        prec,
        hosvd_samples,
        settings,
        energy=energy,
        first_batch=x0,
    )
    st = {**res.settings, **source}
    if need_hosvd:
        st["init_appearance"] = "hosvd"
    st["hosvd_samples"] = count if need_hosvd else 0
    return dataclasses.replace(res, settings=st)
