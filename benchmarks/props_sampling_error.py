"""PROPS's cleanest claim, with a FIXED target policy: data collected by PROPS's adaptive
behaviour policy have a lower sampling error than on-policy samples of the same size.

Setup (the paper's fixed-target experiment; PPOROS @ a0c8708 runs it as
``PROPS/ppo_props_continuous.py`` with the target update switched off, ``update_epochs=0``):

- target π_θ: a random-init PPO policy (64-64 tanh), never updated; observations raw (no
  normalisation), one environment;
- on-policy: every action sampled from π_θ;
- PROPS: actions sampled from π_φ, re-fitted every ``m`` env steps by
  `hybridrl.agents.props.update_behaviour` on everything collected so far (no eviction);
- the sampling error of the first n samples, n = 256 .. 8192 (prefixes of one run), by
  `hybridrl.agents.ppo.sampling_error` (the 2025 protocol: output layer and log σ fitted);
- a 3-armed bandit (constant observation) with the exact KL(empirical ‖ π) and its
  on-policy expectation (|A| - 1) / (2n);
- 5 seeds; mean and 95% bootstrap interval (`hybridrl.evaluation.stats`).

Run: ``.venv/bin/python benchmarks/props_sampling_error.py [--seeds 5] [--max-n 8192]``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from hybridrl.agents import ppo, props
from hybridrl.data.rollout import Rollout
from hybridrl.evaluation.sampling_error import exact_sampling_error
from hybridrl.evaluation.stats import stratified_bootstrap_ci

PROPS_SETTINGS: dict[str, Any] = {"props_learning_rate": 1e-3, "props_lambda": 0.1,
                                  "props_target_kl": 0.05}  # fmt: skip


def _config(m: int) -> props.Config:
    return props.Config(
        normalize_observations=False, normalize_rewards=False, props_num_steps=m, **PROPS_SETTINGS
    )


def _buffer(obs: np.ndarray, actions: np.ndarray) -> Rollout:
    z = jnp.zeros((obs.shape[0], 1))
    o = jnp.asarray(obs)[:, None]
    return Rollout(o, jnp.asarray(actions)[:, None], z, z, z, o)


def collect(
    env_id: str, seed: int, method: str, max_n: int, m: int, update: Any, sample: Any
) -> tuple[Any, np.ndarray, np.ndarray]:
    """``max_n`` (obs, action) pairs of one env under the fixed target (``method`` "on"), or
    under PROPS's behaviour policy (``"props"``); returns the state and the data."""
    env = gym.make(env_id)
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    act_dim = int(env.action_space.n) if discrete else int(env.action_space.shape[0])
    obs_dim = int(env.observation_space.shape[0])
    state = props.init(_config(m), jax.random.PRNGKey(seed), obs_dim, act_dim, discrete=discrete)
    high = None if discrete else env.action_space.high
    observations = np.zeros((max_n, obs_dim), np.float32)
    actions = np.zeros(
        (max_n,) if discrete else (max_n, act_dim), np.int32 if discrete else np.float32
    )
    key = jax.random.PRNGKey(10_000 + seed)
    o, _ = env.reset(seed=seed)
    for t in range(max_n):
        key, k = jax.random.split(key)
        a = np.asarray(sample(state, jnp.asarray(o, jnp.float32)[None], k)[0])[0]
        observations[t], actions[t] = o, a
        env_action = a if discrete else np.clip(a, -1, 1) * high
        o, _, terminated, truncated, _ = env.step(env_action)
        if terminated or truncated:
            o, _ = env.reset()
        if method == "props" and (t + 1) % m == 0 and t + 1 < max_n:
            valid = np.zeros((max_n, 1), bool)
            valid[: t + 1] = True
            key, k = jax.random.split(key)
            state, _ = update(state, _buffer(observations, actions), valid, k)
    return state, observations, actions


def sampling_errors(
    state: Any, observations: np.ndarray, actions: np.ndarray, sizes: list[int], measure: Any
) -> list[float]:
    return [
        float(measure(state, _buffer(observations[:n], actions[:n]), jax.random.PRNGKey(0)))
        for n in sizes
    ]


def bandit(seed: int, method: str, max_n: int, m: int, update: Any, sample: Any) -> Any:
    """A 3-armed bandit: the observation is a constant, the SE the exact KL."""
    state = props.init(_config(m), jax.random.PRNGKey(seed), 1, 3, discrete=True)
    obs = np.zeros((max_n, 1), np.float32)
    actions = np.zeros(max_n, np.int32)
    key = jax.random.PRNGKey(10_000 + seed)
    for start in range(0, max_n, m):
        key, k = jax.random.split(key)
        batch = np.asarray(sample(state, jnp.zeros((m, 1)), k)[0])
        actions[start : start + m] = batch
        if method == "props" and start + m < max_n:
            valid = np.zeros((max_n, 1), bool)
            valid[: start + m] = True
            key, k = jax.random.split(key)
            state, _ = update(state, _buffer(obs, actions), valid, k)
    log_probs, _, _ = props.evaluate_actions(state, jnp.zeros((3, 1)), jnp.arange(3))
    probs = np.exp(np.asarray(log_probs, np.float64))
    probs /= probs.sum()
    return probs, actions


def _row(label: str, values: np.ndarray) -> str:
    point, low, high = stratified_bootstrap_ci(values, statistic=np.mean)
    return f"{label} {point:.5f} [{low:.5f}, {high:.5f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-n", type=int, default=8192)
    parser.add_argument("--m", type=int, default=128, help="env steps between behaviour updates")
    parser.add_argument("--props-lr", type=float, default=3e-3)
    parser.add_argument("--props-lambda", type=float, default=0.1)
    parser.add_argument("--props-target-kl", type=float, default=0.05)
    args = parser.parse_args()
    PROPS_SETTINGS.update(
        props_learning_rate=args.props_lr,
        props_lambda=args.props_lambda,
        props_target_kl=args.props_target_kl,
    )
    print(f"PROPS settings: {PROPS_SETTINGS}")
    sizes = [n for n in (256, 512, 1024, 2048, 4096, 8192) if n <= args.max_n]
    update = jax.jit(props.update_behaviour)
    sample = jax.jit(props.sample_actions)
    measure = jax.jit(ppo.sampling_error)
    start = time.time()
    print(f"fixed random-init target, m = {args.m}, {args.seeds} seeds; mean [95% bootstrap CI]")
    for env_id in ("CartPole-v1", "Pendulum-v1"):
        results: dict[str, np.ndarray] = {}
        for method in ("on", "props"):
            runs = []
            for seed in range(args.seeds):
                state, obs, act = collect(env_id, seed, method, args.max_n, args.m, update, sample)
                runs.append(sampling_errors(state, obs, act, sizes, measure))
            results[method] = np.asarray(runs)
        print(f"\n{env_id} (fitted SE, 2,000 full-batch steps)")
        print(f"{'n':>6} | {'on-policy':^34} | {'PROPS':^34}")
        for i, n in enumerate(sizes):
            print(f"{n:>6} | {_row('', results['on'][:, i])} | {_row('', results['props'][:, i])}")
        print(f"[{time.time() - start:.0f} s]")
    results = {}
    for method in ("on", "props"):
        runs = []
        for seed in range(args.seeds):
            probs, act = bandit(seed, method, args.max_n, 128, update, sample)
            runs.append([float(exact_sampling_error(act[:n], probs)) for n in sizes])
        results[method] = np.asarray(runs)
    print("\n3-armed bandit (exact KL; on-policy expectation (|A| - 1) / (2n), m = 128)")
    print(f"{'n':>6} | {'(|A|-1)/2n':>10} | {'on-policy':^34} | {'PROPS':^34}")
    for i, n in enumerate(sizes):
        row_on, row_props = _row("", results["on"][:, i]), _row("", results["props"][:, i])
        print(f"{n:>6} | {2 / (2 * n):>10.5f} | {row_on} | {row_props}")
    print(f"[{time.time() - start:.0f} s]")


if __name__ == "__main__":
    main()
