"""A plain online training loop: act, step one Gymnasium env, store, update.

This is the imperative shell around an agent's pure functions: the environment, the progress
bar and evaluation live here; acting and "add to buffer + update" are each one jitted call per
environment step. Agents see actions in [-1, 1]; the env is wrapped with Gymnasium's
``RescaleAction`` so the agent never needs the bounds. The phased offline-to-online runner is
built on the same pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from hybridrl.data.replay import ReplayBuffer, replay_add, replay_init, replay_sample
from hybridrl.data.transitions import Transitions
from hybridrl.envs.make import make_unit_action_env, make_vector_env
from hybridrl.evaluation.rollout import evaluate_vector, jitted_act
from hybridrl.training.updates import batch_size_per_update


@dataclass
class OnlineResult:
    """The trained agent state, its buffer and the evaluation curve ``(step, mean return)``."""

    state: Any
    buffer: ReplayBuffer
    evaluations: list[tuple[int, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def evaluate(
    agent: ModuleType,
    state: Any,
    env_id: str,
    num_episodes: int,
    seed: int,
    obs_stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Undiscounted returns of the agent's deterministic policy over ``num_episodes``.

    ``obs_stats = (mean, std)`` standardizes observations as the agent saw them in training.
    """

    def normalize(obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, np.float32)
        return x if obs_stats is None else ((x - obs_stats[0]) / obs_stats[1]).astype(np.float32)

    envs = make_vector_env(env_id, 1)  # one env, episodes in turn: batch-1 acting
    try:
        returns = [
            float(evaluate_vector(agent, state, envs, seed=seed + i, normalize=normalize)[0])
            for i in range(num_episodes)
        ]
    finally:
        envs.close()
    return np.asarray(returns)


@partial(jax.jit, static_argnames=("agent_update", "batch_size"))
def _store_and_update(
    agent_update: Any,
    state: Any,
    buffer: ReplayBuffer,
    transition: Transitions,
    key: jax.Array,
    batch_size: int,
) -> tuple[Any, ReplayBuffer, dict[str, jax.Array]]:
    buffer = replay_add(buffer, transition)
    k_sample, k_update = jax.random.split(key)
    batch = replay_sample(buffer, k_sample, batch_size_per_update(state, batch_size))
    state, metrics = agent_update(state, batch, k_update)
    return state, buffer, metrics


_store = jax.jit(replay_add)


def train_online(
    agent: ModuleType,
    config: Any,
    env_id: str,
    *,
    total_steps: int,
    start_steps: int = 1000,
    batch_size: int = 256,
    buffer_capacity: int = 1_000_000,
    seed: int = 0,
    eval_interval: int | None = None,
    eval_episodes: int = 5,
    progress: bool = True,
) -> OnlineResult:
    """Train ``agent`` (a module with ``init/update/act``) online from scratch.

    The first ``start_steps`` actions are uniform random (no updates); afterwards each env step
    is followed by one agent update (``utd_ratio`` critic steps for SAC-style agents).
    """
    env = make_unit_action_env(env_id)
    obs_dim = int(np.prod(env.observation_space.shape or ()))
    act_dim = int(np.prod(env.action_space.shape or ()))
    key = jax.random.PRNGKey(seed)
    key, k_init = jax.random.split(key)
    state = agent.init(config, k_init, obs_dim, act_dim)
    example = Transitions(
        observations=np.zeros((1, obs_dim), np.float32),
        actions=np.zeros((1, act_dim), np.float32),
        rewards=np.zeros(1, np.float32),
        next_observations=np.zeros((1, obs_dim), np.float32),
        terminals=np.zeros(1, np.float32),
        timeouts=np.zeros(1, np.float32),
    )
    buffer = replay_init(example, min(buffer_capacity, total_steps))
    act = jitted_act(agent)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    result = OnlineResult(state=state, buffer=buffer)
    metrics: dict[str, jax.Array] = {}
    episode_return, recent = 0.0, []
    with tqdm(total=total_steps, disable=not progress, desc=f"online {env_id}") as bar:
        for step in range(total_steps):
            key, k_act, k_update = jax.random.split(key, 3)
            if step < start_steps:
                action = rng.uniform(-1.0, 1.0, size=act_dim).astype(np.float32)
            else:
                action = np.asarray(act(state, obs[None].astype(np.float32), k_act, False)[0])
            next_obs, reward, terminated, truncated, _ = env.step(action)
            transition = Transitions(
                observations=obs[None].astype(np.float32),
                actions=action[None],
                rewards=np.asarray([reward], np.float32),
                next_observations=next_obs[None].astype(np.float32),
                terminals=np.asarray([terminated], np.float32),
                timeouts=np.asarray([truncated and not terminated], np.float32),
            )
            if step + 1 >= start_steps:
                state, buffer, metrics = _store_and_update(
                    agent.update, state, buffer, transition, k_update, batch_size
                )
            else:
                buffer = _store(buffer, transition)
            episode_return += float(reward)
            if terminated or truncated:
                recent.append(episode_return)
                episode_return = 0.0
                obs, _ = env.reset()
                bar.set_postfix(ret=f"{np.mean(recent[-5:]):.1f}")
            else:
                obs = next_obs
            bar.update(1)
            if eval_interval and (step + 1) % eval_interval == 0:
                score = float(evaluate(agent, state, env_id, eval_episodes, seed + 10_000).mean())
                result.evaluations.append((step + 1, score))
    env.close()
    result.state, result.buffer = state, buffer
    result.metrics = {k: float(v) for k, v in metrics.items()}
    return result
