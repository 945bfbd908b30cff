"""`OnPolicy` phases: rollouts of the agent's sampling policy, each followed by one on-policy
update (PPO's epochs × minibatches in one compiled call) on the last ``keep_batches``
rollouts.

Per env step the executor makes two compiled calls (sample actions; normalise the next
observations and rewards with the running statistics in the agent state) and one env step;
per rollout one ``prepare`` (log-probs and values under the current parameters, GAE) and one
``update``. The agent's functions (`hybridrl.agents.ppo`'s API): ``normalize_observations``,
``normalize_rewards``, ``sample_actions``, ``prepare``, ``update``.

Segments and resume: as in the replay executor, a segment starts with every env reset from a
seed derived from (seed, env step, env index); it ends at the first rollout boundary at or
after a multiple of ``checkpoint_interval`` env steps (or the phase's end), where unfinished
episodes are cut (time-outs, which bootstrap) and the checkpoint is written after the update.
The checkpoint holds the agent state (with its running statistics) and the kept rollouts, so
a resumed run continues exactly. The per-env discounted return of the reward normalisation
restarts at zero with the envs.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from types import ModuleType
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from hybridrl.agents import get_agent
from hybridrl.data.rollout import Rollout, keep_last
from hybridrl.training.context import Counters, RunContext, derived_seed
from hybridrl.training.phases import Learner, OnPolicy


@cache
def _compiled(agent: ModuleType) -> dict[str, Any]:
    """The agent's functions, jitted once per agent module."""
    return {
        "sample": jax.jit(agent.sample_actions),
        "observe": jax.jit(agent.normalize_observations),
        "reward": jax.jit(agent.normalize_rewards),
        "prepare": jax.jit(agent.prepare),
        "update": jax.jit(agent.update),
    }


def run_on_policy_phase(
    ctx: RunContext,
    phase: OnPolicy,
    learner: Learner,
    key: jax.Array,
    c: Counters,
    envs: gym.vector.VectorEnv,
) -> tuple[Learner, jax.Array]:
    """Run the rest of ``phase`` (from ``c.phase_progress``, a rollout boundary)."""
    if phase.anneal_lr:
        batch = phase.rollout_steps * ctx.settings.num_envs
        config = dataclasses.replace(
            learner.state.config, anneal_iterations=-(-phase.steps // batch)
        )
        learner = dataclasses.replace(
            learner, state=dataclasses.replace(learner.state, config=config)
        )
    with ctx.bar(phase, phase.steps, c.phase_progress, "step") as bar:
        while c.phase_progress < phase.steps:
            learner, key = _segment(ctx, phase, learner, key, c, envs, bar)
            if c.phase_progress < phase.steps:
                ctx.checkpoint(learner, key, c)
    return learner, key


def _segment(
    ctx: RunContext,
    phase: OnPolicy,
    learner: Learner,
    key: jax.Array,
    c: Counters,
    envs: gym.vector.VectorEnv,
    bar: Any,
) -> tuple[Learner, jax.Array]:
    s, data, n = ctx.settings, ctx.data, ctx.settings.num_envs
    agent = get_agent(learner.agent_name)
    fn = _compiled(agent)
    obs, _ = envs.reset(seed=[derived_seed(s.seed, c.env_step, i) for i in range(n)])  # type: ignore[arg-type]
    state, obs_n = fn["observe"](learner.state, data.normalize(obs))
    discounted = np.zeros(n, np.float32)
    episodes = _Episodes(n)
    interval = s.checkpoint_interval
    next_checkpoint = (c.env_step // interval + 1) * interval
    while True:
        steps = min(phase.rollout_steps, (phase.steps - c.phase_progress) // n)
        start_step = c.env_step
        last_rollout = start_step + steps * n >= next_checkpoint or (
            c.phase_progress + steps * n >= phase.steps
        )
        cols: dict[str, list[Any]] = {k: [] for k in Rollout.__dataclass_fields__}
        for t in range(steps):
            key, k_act = jax.random.split(key)
            actions, _ = fn["sample"](state, obs_n, k_act)
            actions = np.asarray(actions)
            env_actions = actions if data.discrete else np.clip(actions, -1.0, 1.0)
            next_obs, rewards, terminated, truncated, info = envs.step(env_actions)
            terminated = np.asarray(terminated, bool)
            env_truncated = np.asarray(truncated, bool)
            cut = last_rollout and t == steps - 1
            ended = terminated | env_truncated | cut
            state, next_n = fn["observe"](state, data.normalize(next_obs))
            next_n = np.asarray(next_n)
            final_n = next_n.copy()
            if "_final_obs" in info and np.any(info["_final_obs"]):
                # The true last observation of an ended episode, normalised but not kept in
                # the statistics (SB3 VecNormalize does not count terminal observations).
                mask = np.asarray(info["_final_obs"], bool)
                finals = np.array(next_obs, copy=True)
                for i in np.flatnonzero(mask):
                    finals[i] = info["final_obs"][i]
                _, finals_n = fn["observe"](state, data.normalize(finals))
                final_n[mask] = np.asarray(finals_n)[mask]
            state, discounted, scaled = fn["reward"](
                state, discounted, np.asarray(rewards, np.float32), terminated
            )
            cols["observations"].append(np.asarray(obs_n))
            cols["actions"].append(actions)
            cols["rewards"].append(np.asarray(scaled))
            cols["terminals"].append(terminated.astype(np.float32))
            cols["timeouts"].append((ended & ~terminated).astype(np.float32))
            cols["next_observations"].append(final_n)
            c.phase_progress += n
            c.env_step += n
            for i, ret, length in episodes.step(np.asarray(rewards, np.float64), ended):
                natural = bool(terminated[i] or env_truncated[i])
                ctx.log_episode(phase, c, ret, length, cut=not natural)
            obs_n = next_n
            bar.update(n)
        rollout = Rollout(**{k: jax.numpy.asarray(np.stack(v)) for k, v in cols.items()})
        kept = keep_last(learner.rollouts, rollout, phase.keep_batches)
        key, k_update = jax.random.split(key)
        batch = fn["prepare"](state, kept)
        state, metrics = fn["update"](state, batch, k_update)
        c.update += 1
        learner = dataclasses.replace(
            learner, state=state, rollouts=kept if phase.keep_batches > 1 else None
        )
        ctx.log_train(phase, metrics, c)
        crossed = c.env_step // s.eval_interval > start_step // s.eval_interval
        if crossed and c.phase_progress < phase.steps:
            bar.set_postfix_str("evaluating")
            score = ctx.evaluate(phase, learner, c)
            bar.set_postfix(score=f"{score:.1f}")
        if last_rollout:
            return learner, key


class _Episodes:
    """Undiscounted returns and lengths of the running episodes of ``n`` envs."""

    def __init__(self, n: int):
        self.ret = np.zeros(n)
        self.length = np.zeros(n, np.int64)

    def step(self, rewards: np.ndarray, ended: np.ndarray) -> list[tuple[int, float, int]]:
        self.ret += rewards
        self.length += 1
        out = [(int(i), float(self.ret[i]), int(self.length[i])) for i in np.flatnonzero(ended)]
        self.ret[ended] = 0.0
        self.length[ended] = 0
        return out
