"""Shared data for agent tests: a small Pendulum dataset from a decent, noisy controller, and
the learning tests' way to train (`train`: the runner, as users train) and to score a policy on
fixed episodes (`eval_returns`)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from hybridrl.data.collect import NoiseConfig, collect
from hybridrl.data.dataset import Dataset
from hybridrl.envs.make import make_vector_env
from hybridrl.evaluation.rollout import evaluate_vector
from hybridrl.policies import PendulumSwingUp
from hybridrl.training.context import RunResult
from hybridrl.training.recipes import Recipe
from hybridrl.training.runner import run


@pytest.fixture(scope="session")
def pendulum_offline() -> Dataset:
    """20k transitions (100 episodes) of the swing-up controller with Gaussian noise 0.3.

    Its behaviour level (mean episode return) is -175 (measured); random play gives about -1200.
    """
    return collect(
        "Pendulum-v1",
        PendulumSwingUp(),
        num_steps=20_000,
        seed=0,
        noise=NoiseConfig(gaussian_std=0.3),
        random_reference_episodes=0,
        progress=False,
    )


EVAL_SEED, EVAL_EPISODES = 123, 10


def train(
    recipe: Recipe, run_dir: Path, dataset: Dataset | None = None, **settings: Any
) -> RunResult:
    """``recipe`` on Pendulum-v1 through `hybridrl.training.runner.run` (no progress bar)."""
    return run(recipe, "Pendulum-v1", dataset=dataset, run_dir=run_dir, progress=False, **settings)


def eval_returns(
    agent: ModuleType,
    state: Any,
    episodes: int = EVAL_EPISODES,
    seed: int = EVAL_SEED,
    obs_stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Returns of ``agent``'s deterministic policy on Pendulum-v1 episodes reset with seeds
    ``seed .. seed + episodes - 1`` (the episodes `behaviour_level` is measured on);
    ``obs_stats = (mean, std)`` standardises observations as in training."""

    def normalize(obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, np.float32)
        return x if obs_stats is None else ((x - obs_stats[0]) / obs_stats[1]).astype(np.float32)

    envs = make_vector_env("Pendulum-v1", episodes)
    try:
        return evaluate_vector(agent, state, envs, seed=seed, normalize=normalize)
    finally:
        envs.close()


def behaviour_return_on_eval_episodes(noise_std: float = 0.3, noise_seeds: int = 5) -> float:
    """Mean return of the data's behaviour policy (controller + Gaussian noise 0.3) on the
    evaluation episodes (reset seeds ``EVAL_SEED + i``), averaged over ``noise_seeds`` noise
    draws: the "behaviour level" offline learners must reach.

    The data's own mean (-175) is over easier start states; on the evaluation episodes the
    behaviour policy scores -184.7 (noise draws: -180.1, -179.4, -179.0, -192.3, -192.9) and
    the noise-free controller -180.5.
    """
    import gymnasium as gym
    import numpy as np

    from hybridrl.data.collect import apply_noise
    from hybridrl.types import SpaceSpec

    env = gym.make("Pendulum-v1")
    space = SpaceSpec.from_gym(env.action_space)
    policy, totals = PendulumSwingUp(), []
    for noise_seed in range(noise_seeds):
        rng = np.random.default_rng(noise_seed)
        for episode in range(EVAL_EPISODES):
            obs, _ = env.reset(seed=EVAL_SEED + episode)
            total, done = 0.0, False
            while not done:
                action = policy.act(obs[None], deterministic=True, rng=rng)[0]
                action = apply_noise(action, space, NoiseConfig(gaussian_std=noise_std), rng)
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            totals.append(total)
    env.close()
    return float(np.mean(totals))


@pytest.fixture(scope="session")
def behaviour_level() -> float:
    level = behaviour_return_on_eval_episodes()
    assert -190.0 < level < -180.0  # measured: -184.7
    return level
