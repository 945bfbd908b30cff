"""Evaluation during a run: deterministic episodes on separate envs, the normalised score,
and the Q probe (the mean Q of the policy's actions on fixed dataset states, for agents that
declare a critic)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from types import ModuleType
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from hybridrl.agents import agent_spec, get_agent
from hybridrl.evaluation.rollout import evaluate_vector
from hybridrl.training.context import PROBE_SIZE, Counters, derived_seed
from hybridrl.training.metrics_log import RunLogger
from hybridrl.training.phases import Learner, Phase
from hybridrl.training.prepared import PreparedData


@cache
def _q_probe_fn(agent: ModuleType) -> Any:
    def q_probe(state: Any, obs: jax.Array) -> jax.Array:
        actions = agent.act(state, obs, jax.random.PRNGKey(0), deterministic=True)
        qs = state.critic.apply_fn({"params": state.critic.params}, obs, actions)
        return jnp.mean(qs)

    return jax.jit(q_probe)


def probe_observations(learner: Learner, seed: int) -> np.ndarray | None:
    """``PROBE_SIZE`` fixed dataset states (chosen by ``seed``), or None without a dataset.
    Taken before a hook may drop the dataset, so a resumed run probes the same states."""
    if learner.offline is None:
        return None
    size = int(learner.offline.size)
    rows = np.random.default_rng(seed).permutation(size)[:PROBE_SIZE]
    return np.asarray(learner.offline.data.observations)[np.sort(rows)]


class Evaluator:
    """Evaluates a learner and logs an ``eval`` record (see `evaluate`)."""

    def __init__(
        self,
        data: PreparedData,
        envs: gym.vector.VectorEnv,
        probe: np.ndarray | None,
        logger: RunLogger,
        clock: Callable[[], float],
        on_record: Callable[[Learner, dict[str, Any]], None] | None = None,
    ):
        self.data, self.envs, self.probe = data, envs, probe
        self.logger, self.clock, self.on_record = logger, clock, on_record

    def q_probe(self, learner: Learner) -> float | None:
        if self.probe is None or not agent_spec(learner.agent_name).q_probe:
            return None
        agent = get_agent(learner.agent_name)
        return float(_q_probe_fn(agent)(learner.state, self.probe))

    def evaluate(self, phase: Phase, learner: Learner, c: Counters) -> float:
        """``eval_episodes`` deterministic episodes (the same start seeds every time); logs
        the record and returns the score."""
        data = self.data
        returns = evaluate_vector(
            get_agent(learner.agent_name),
            learner.state,
            self.envs,
            seed=derived_seed(data.settings.seed, 10**9),
            normalize=data.normalize,
        )
        mean = float(returns.mean())
        c.last_eval_update = c.update
        self.logger.log(
            {
                "kind": "eval",
                "phase": phase.label,
                "phase_index": c.phase_index,
                "env_step": c.env_step,
                "update": c.update,
                "score": data.score(mean),
                "return_mean": mean,
                "return_std": float(returns.std()),
                "q_probe": self.q_probe(learner),
                "time_s": round(self.clock(), 3),
            }
        )
        if self.on_record is not None:
            self.on_record(learner, self.logger.records[-1])
        return data.score(mean)
