"""Sampling throughput of the device samplers versus a host-side numpy baseline.

Usage::

    .venv/bin/python benchmarks/sampling_throughput.py [--size 1000000] [--batch 256]

Builds a ``--size``-transition dataset (17-dim observations, 6-dim actions, float32, episodes of
1000 steps; the shapes of MuJoCo HalfCheetah) directly on the default jax device, then measures
samples per second for uniform, mixed 50/50 (offline + a second, equally large online buffer)
and return-weighted (Hong et al., 2023; inverse-CDF) sampling. Each jax measurement is
``--batches`` batches drawn inside one jitted ``lax.scan``, reduced to a checksum per batch so
that every sampled element is read; warm-up (compilation) is excluded and the best of
``--repeats`` calls is kept. The baseline draws indices with ``rng.integers`` (or
``searchsorted`` on a float64 CDF for the weighted case) and fancy-indexes every field, one
batch at a time, as per-sample host-side replay buffers do; it is not charged for a checksum.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from hybridrl.data.replay import ReplayBuffer
from hybridrl.data.samplers import (
    probabilities_to_cdf,
    sample_mixed,
    sample_uniform,
    sample_weighted,
    trajectory_weights,
)
from hybridrl.data.transitions import Transitions

OBS_DIM, ACT_DIM, EPISODE_LEN = 17, 6, 1000


def make_buffer(key: jax.Array, size: int) -> ReplayBuffer:
    """A full buffer of random transitions, generated on the device."""
    k_obs, k_next, k_act, k_rew = jax.random.split(key, 4)
    steps = jnp.arange(size)
    data = Transitions(
        observations=jax.random.normal(k_obs, (size, OBS_DIM), jnp.float32),
        actions=jax.random.uniform(k_act, (size, ACT_DIM), jnp.float32, -1.0, 1.0),
        # Per-episode offsets make the return-weighted distribution far from uniform.
        rewards=jax.random.normal(k_rew, (size,), jnp.float32) + (steps // EPISODE_LEN) % 7,
        next_observations=jax.random.normal(k_next, (size, OBS_DIM), jnp.float32),
        terminals=jnp.zeros((size,), jnp.float32),
        timeouts=((steps + 1) % EPISODE_LEN == 0).astype(jnp.float32),
    )
    n = jnp.asarray(size, jnp.int32)
    return ReplayBuffer(data=data, insert_index=jnp.zeros((), jnp.int32), size=n)


def checksum(batch: Transitions) -> jax.Array:
    return sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree_util.tree_leaves(batch))


def scan_sampler(
    sample: Callable[[jax.Array], Transitions], n_batches: int
) -> Callable[[jax.Array], jax.Array]:
    """A jitted function drawing ``n_batches`` batches in one ``lax.scan``."""

    @jax.jit
    def run(key: jax.Array) -> jax.Array:
        def body(carry: jax.Array, k: jax.Array) -> tuple[jax.Array, None]:
            return carry + checksum(sample(k)), None

        total, _ = jax.lax.scan(body, jnp.zeros(()), jax.random.split(key, n_batches))
        return total

    return run


def time_best(fn: Callable[[int], object], repeats: int) -> float:
    fn(-1)  # warm-up: compilation / caches
    best = float("inf")
    for i in range(repeats):
        start = time.perf_counter()
        out = fn(i)
        jax.block_until_ready(out)
        best = min(best, time.perf_counter() - start)
    return best


def numpy_fields(buf: ReplayBuffer) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(buf.data)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=1000, help="batches per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--compare-categorical",
        action="store_true",
        help="also time jax.random.categorical for the weighted case (slow: B x N Gumbels)",
    )
    args = parser.parse_args()
    n, b, nb = args.size, args.batch, args.batches

    t0 = time.perf_counter()
    offline = make_buffer(jax.random.key(0), n)
    online = make_buffer(jax.random.key(1), n)
    jax.block_until_ready((offline, online))
    host_t = offline.data.map(np.asarray)
    probs = trajectory_weights(host_t, "return", temperature=0.1)
    cdf = probabilities_to_cdf(probs)
    setup_s = time.perf_counter() - t0

    samplers: dict[str, Callable[[jax.Array], Transitions]] = {
        "uniform": functools.partial(sample_uniform, offline, batch_size=b),
        "mixed 50/50": lambda k: sample_mixed(offline, online, k, b, 0.5),
        "weighted (RW, α=0.1)": lambda k: sample_weighted(offline, cdf, k, b),
    }

    # Host baseline: the same data as numpy arrays, one batch per Python call.
    off_np, on_np = numpy_fields(offline), numpy_fields(online)
    cdf_np = np.cumsum(probs)
    rng = np.random.default_rng(0)

    def np_uniform() -> list[np.ndarray]:
        idx = rng.integers(0, n, b)
        return [x[idx] for x in off_np]

    def np_mixed() -> list[np.ndarray]:
        k = int(np.floor(0.5 * b) + (rng.random() < 0.5 * b - np.floor(0.5 * b)))
        i_off, i_on = rng.integers(0, n, k), rng.integers(0, n, b - k)
        return [np.concatenate([x[i_off], y[i_on]]) for x, y in zip(off_np, on_np, strict=True)]

    def np_weighted() -> list[np.ndarray]:
        idx = np.minimum(np.searchsorted(cdf_np, rng.random(b) * cdf_np[-1], side="right"), n - 1)
        return [x[idx] for x in off_np]

    baselines = {
        "uniform": np_uniform,
        "mixed 50/50": np_mixed,
        "weighted (RW, α=0.1)": np_weighted,
    }

    rows = []
    for name, sample in samplers.items():
        run = scan_sampler(sample, nb)
        jax_s = time_best(lambda i, run=run: run(jax.random.key(i + 10)), args.repeats)
        base = baselines[name]
        np_s = time_best(lambda _i, base=base: [base() for _ in range(nb)], args.repeats)
        rows.append((name, nb * b / jax_s, nb * b / np_s))

    device = jax.devices()[0]
    print(
        f"\n{n:,} transitions ({OBS_DIM}-dim obs, {ACT_DIM}-dim actions, float32), batch {b}, "
        f"{nb} batches per jitted scan, best of {args.repeats}; device: {device.platform} "
        f"({device.device_kind}); setup {setup_s:.1f} s\n"
    )
    print("| sampler | jax (samples/s) | numpy baseline (samples/s) | jax / numpy |")
    print("|---|---:|---:|---:|")
    for name, jax_rate, np_rate in rows:
        print(f"| {name} | {jax_rate:,.0f} | {np_rate:,.0f} | {jax_rate / np_rate:.1f}x |")

    if args.compare_categorical:
        logits = jnp.log(jnp.asarray(probs, jnp.float32))
        cat = jax.jit(lambda k: jax.random.categorical(k, logits, shape=(b,)))
        cat_s = time_best(lambda i: cat(jax.random.key(i + 10)), 1)
        ss = jax.jit(lambda k: sample_weighted(offline, cdf, k, b))
        ss_s = time_best(lambda i: ss(jax.random.key(i + 10)), args.repeats)
        print(
            f"\nweighted index draw, one batch: jax.random.categorical {cat_s * 1e3:.1f} ms, "
            f"inverse CDF (searchsorted + gather) {ss_s * 1e3:.3f} ms"
        )


if __name__ == "__main__":
    main()
