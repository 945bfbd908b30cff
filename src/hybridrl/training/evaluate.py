"""Evaluation during a run: deterministic episodes on separate envs, the normalised score,
the Q probe (the mean Q of the policy's actions on fixed dataset states, for agents that
declare a critic) and, with the run setting ``robustness_eps``, the robustness metrics on
the same states (for agents that declare ``robustness_probe``)."""

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
from hybridrl.evaluation.robustness import agent_robustness
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


def _probe_rows(learner: Learner, seed: int) -> np.ndarray | None:
    if learner.offline is None:
        return None
    size = int(learner.offline.size)
    return np.sort(np.random.default_rng(seed).permutation(size)[:PROBE_SIZE])


def probe_observations(learner: Learner, seed: int) -> np.ndarray | None:
    """``PROBE_SIZE`` fixed dataset states (chosen by ``seed``), or None without a dataset.
    Taken before a hook may drop the dataset, so a resumed run probes the same states."""
    rows = _probe_rows(learner, seed)
    if rows is None or learner.offline is None:
        return None
    return np.asarray(learner.offline.data.observations)[rows]


def probe_actions(learner: Learner, seed: int) -> np.ndarray | None:
    """The dataset actions of the `probe_observations` rows (the robustness metrics' value
    sensitivity and ensemble std at dataset actions), or None without a dataset."""
    rows = _probe_rows(learner, seed)
    if rows is None or learner.offline is None:
        return None
    return np.asarray(learner.offline.data.actions)[rows]


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
        probe_actions: np.ndarray | None = None,
    ):
        self.data, self.envs, self.probe = data, envs, probe
        self.logger, self.clock, self.on_record = logger, clock, on_record
        self.probe_actions = probe_actions

    def robustness(self, learner: Learner) -> dict[str, float]:
        """The robustness metrics (`hybridrl.evaluation.robustness`) on the probe states
        when the run setting ``robustness_eps`` is set and the agent declares
        ``robustness_probe``; else none. The perturbations are drawn from the run's seed,
        the same at every evaluation, so the curve compares like with like."""
        eps = self.data.settings.robustness_eps
        if (
            eps is None
            or self.probe is None
            or self.probe_actions is None
            or not agent_spec(learner.agent_name).robustness_probe
        ):
            return {}
        key = jax.random.PRNGKey(derived_seed(self.data.settings.seed, 10**9 + 1))
        return agent_robustness(
            get_agent(learner.agent_name), learner.state, self.probe, self.probe_actions, key, eps
        )

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
                **self.robustness(learner),
                "time_s": round(self.clock(), 3),
            }
        )
        if self.on_record is not None:
            self.on_record(learner, self.logger.records[-1])
        return data.score(mean)
