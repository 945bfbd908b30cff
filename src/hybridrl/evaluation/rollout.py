"""Rolling out an agent's policy: the one jitted ``act`` per agent module, and deterministic
evaluation episodes on a Gymnasium vector env (one episode per sub-env).

Actions reach the env in its own form: floats in [-1, 1] for a Box space (the env made by
`hybridrl.envs.make.make_vector_env` rescales them), integers in ``[0, n)`` for a Discrete one.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from hybridrl.envs.make import env_actions


@cache
def jitted_act(agent: ModuleType) -> Any:
    """``jax.jit(agent.act)``, compiled once per agent module."""
    return jax.jit(agent.act, static_argnames=("deterministic",))


def evaluate_vector(
    agent: ModuleType,
    state: Any,
    envs: gym.vector.VectorEnv,
    *,
    seed: int,
    normalize: Any = None,
) -> np.ndarray:
    """One episode per sub-env of ``envs`` with the deterministic policy; undiscounted returns.

    Sub-env i starts from ``reset(seed=seed + i)``; finished envs keep stepping (autoreset)
    but their rewards no longer count.
    """
    n = envs.num_envs
    obs, _ = envs.reset(seed=[seed + i for i in range(n)])  # type: ignore[arg-type]
    act = jitted_act(agent)
    key = jax.random.PRNGKey(0)  # unused by deterministic acting
    returns = np.zeros(n)
    running = np.ones(n, bool)
    while running.any():
        x = normalize(obs) if normalize else np.asarray(obs, np.float32)
        actions = env_actions(act(state, x, key, True), envs.single_action_space, n)
        obs, rewards, terminated, truncated, _ = envs.step(actions)
        returns += np.where(running, rewards, 0.0)
        running &= ~(np.asarray(terminated) | np.asarray(truncated))
    return returns
