"""`OnPolicy` phases: rollouts of the agent's sampling policy, each followed by one on-policy
update (PPO's epochs × minibatches in one compiled call) on the last ``keep_batches``
rollouts.

Per env step the executor makes one env step and one compiled call (normalise the next
observations and rewards with the running statistics in the agent state, and sample the next
actions); per rollout one ``prepare`` (log-probs and values under the current parameters,
GAE) and one ``update``. The agent functions used (`hybridrl.agents.ppo`'s API):
``normalize_observations``, ``apply_observation_norm``, ``normalize_rewards``,
``sample_actions``, ``prepare``, ``update``; with PROPS also ``update_behaviour``. An agent
that declares ``needs_offline_rows`` (HNPG) gets ``update(state, batch, key, offline)``: a
fresh uniform sample of ``phase.offline_rows(B)`` dataset transitions per update (the key of
that draw is split from the run key only for such agents, so other agents' runs are
unchanged).

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
import jax.numpy as jnp
import numpy as np

from hybridrl.agents import agent_spec, get_agent
from hybridrl.data.replay import replay_sample
from hybridrl.data.rollout import Rollout, concatenate, keep_last
from hybridrl.training.context import Counters, RunContext, derived_seed
from hybridrl.training.phases import Learner, OnPolicy
from hybridrl.types import HybridRLError


@cache
def _compiled(agent: ModuleType, discrete: bool) -> dict[str, Any]:
    """The agent's functions composed into one compiled call per env step, jitted once per
    agent module and action kind.

    ``step`` takes the env's answer to the previous actions and, on the device: normalises
    the next observations (the statistics learn them) and the true final ones of ended
    episodes (normalised, not learned: SB3 VecNormalize does not count terminal
    observations), scales the rewards, writes the transition into the rollout being
    collected (donated, so in place), splits the key and samples the next actions. The host
    makes one call and one transfer (the env actions) per env step.
    """

    def sample(state: Any, obs_n: jax.Array, key: jax.Array) -> tuple[jax.Array, ...]:
        key, k = jax.random.split(key)
        actions, _ = agent.sample_actions(state, obs_n, k)
        env_actions = actions if discrete else jnp.clip(actions, -1.0, 1.0)
        return actions, env_actions, key

    fields = agent_spec(agent).running_stats

    def changed(state: Any) -> dict[str, Any]:
        return {name: getattr(state, name) for name in fields}

    def first(state: Any, obs: jax.Array, key: jax.Array) -> tuple[Any, ...]:
        state, obs_n = agent.normalize_observations(state, obs)
        return (changed(state), obs_n, *sample(state, obs_n, key))

    def step(
        state: Any,
        cols: Rollout,
        t: jax.Array,
        obs_n: jax.Array,
        actions: jax.Array,
        next_obs: jax.Array,
        finals: jax.Array,
        ended: jax.Array,
        rewards: jax.Array,
        terminated: jax.Array,
        discounted: jax.Array,
        key: jax.Array,
    ) -> tuple[Any, ...]:
        state, next_n = agent.normalize_observations(state, next_obs)
        finals_n = agent.apply_observation_norm(state, finals)
        final_n = jnp.where(ended[:, None], finals_n, next_n)
        state, discounted, scaled = agent.normalize_rewards(state, discounted, rewards, terminated)
        row = Rollout(
            observations=obs_n,
            actions=actions.astype(cols.actions.dtype),
            rewards=scaled,
            terminals=terminated.astype(jnp.float32),
            timeouts=(ended & ~terminated).astype(jnp.float32),
            next_observations=final_n,
        )
        cols = jax.tree_util.tree_map(lambda col, x: col.at[t].set(x), cols, row)
        return (changed(state), cols, next_n, discounted, *sample(state, next_n, key))

    spec = agent_spec(agent)
    extra = {}
    if hasattr(agent, "update_behaviour"):  # plan_run checked it against the spec
        extra["behaviour"] = jax.jit(agent.update_behaviour)
    if spec.sampling_error:
        extra["sampling_error"] = jax.jit(agent.sampling_error)
    return extra | {
        "first": jax.jit(first),
        "step": jax.jit(step, donate_argnums=(1,)),
        "sample": jax.jit(sample),
        "prepare": jax.jit(agent.prepare),
        "update": jax.jit(agent.update),
        "offline_sample": jax.jit(replay_sample, static_argnums=2),
    }


def with_phase_schedule(phase: OnPolicy, learner: Learner, num_envs: int) -> Learner:
    """The learner as ``phase`` runs it: with ``anneal_lr``, the agent config's
    ``anneal_iterations`` set to the phase's number of updates (rollouts of
    ``rollout_steps × num_envs`` env steps, the last one possibly shorter). Applied at the
    start of the phase (and again on resume); `hybridrl.training.restore` applies it too, so a
    restored state has the run's static structure."""
    if not phase.anneal_lr:
        return learner
    batch = phase.rollout_steps * num_envs
    config = dataclasses.replace(learner.state.config, anneal_iterations=-(-phase.steps // batch))
    return dataclasses.replace(learner, state=dataclasses.replace(learner.state, config=config))


def run_on_policy_phase(
    ctx: RunContext,
    phase: OnPolicy,
    learner: Learner,
    key: jax.Array,
    c: Counters,
    envs: gym.vector.VectorEnv,
) -> tuple[Learner, jax.Array]:
    """Run the rest of ``phase`` (from ``c.phase_progress``, a rollout boundary)."""
    learner = with_phase_schedule(phase, learner, ctx.settings.num_envs)
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
    fn = _compiled(get_agent(learner.agent_name), data.discrete)
    obs, _ = envs.reset(seed=[derived_seed(s.seed, c.env_step, i) for i in range(n)])  # type: ignore[arg-type]
    stats, obs_n, actions, env_actions, key = fn["first"](learner.state, data.normalize(obs), key)
    state = dataclasses.replace(learner.state, **stats)
    discounted = jnp.zeros(n, jnp.float32)
    episodes = _Episodes(n)
    every = int(agent_spec(learner.agent_name).behaviour_interval(state.config))
    behaviour_metrics: dict[str, Any] = {}
    interval = s.checkpoint_interval
    next_checkpoint = (c.env_step // interval + 1) * interval
    while True:
        steps = min(phase.rollout_steps, (phase.steps - c.phase_progress) // n)
        start_step = c.env_step
        last_rollout = start_step + steps * n >= next_checkpoint or (
            c.phase_progress + steps * n >= phase.steps
        )
        cols = _empty_rollout(steps, obs_n, actions)
        after_update = False
        for t in range(steps):
            next_obs, rewards, terminated, truncated, info = envs.step(np.asarray(env_actions))
            terminated = np.asarray(terminated, bool)
            env_truncated = np.asarray(truncated, bool)
            cut = last_rollout and t == steps - 1
            ended = terminated | env_truncated | cut
            next_x = data.normalize(next_obs)
            finals = next_x
            if "_final_obs" in info and np.any(info["_final_obs"]):
                finals = next_x.copy()
                for j in np.flatnonzero(info["_final_obs"]):
                    finals[j] = data.normalize(info["final_obs"][j][None])[0]
            stats, cols, obs_n, discounted, actions, env_actions, key = fn["step"](
                state,
                cols,
                np.int32(t),
                obs_n,
                actions,
                next_x,
                finals,
                ended,
                np.asarray(rewards, np.float32),
                terminated,
                discounted,
                key,
            )
            state = dataclasses.replace(state, **stats)
            c.phase_progress += n
            c.env_step += n
            due = every and c.env_step // every > (c.env_step - n) // every
            # On a rollout's last step the behaviour update waits for the target update (as
            # PPOROS: phi is then copied from the new theta, and the rollout the update
            # evicts is no longer in its data).
            after_update = bool(due) and t == steps - 1
            if due and not after_update:
                buffer, valid = _behaviour_buffer(learner.rollouts, phase.keep_batches, cols, t + 1)
                key, k_behaviour = jax.random.split(key)
                state, behaviour_metrics = fn["behaviour"](state, buffer, valid, k_behaviour)
                # the next actions come from the adapted behaviour policy
                actions, env_actions, key = fn["sample"](state, obs_n, key)
            for i, ret, length in episodes.step(np.asarray(rewards, np.float64), ended):
                natural = bool(terminated[i] or env_truncated[i])
                ctx.log_episode(phase, c, ret, length, cut=not natural)
            bar.update(n)
        kept = keep_last(learner.rollouts, cols, phase.keep_batches)
        measure = phase.sampling_error_interval
        sampling_error = None
        if measure and c.update % measure == 0:
            key, k_error = jax.random.split(key)
            sampling_error = fn["sampling_error"](state, kept, k_error)
        key, k_update = jax.random.split(key)
        batch = fn["prepare"](state, kept)
        if agent_spec(learner.agent_name).needs_offline_rows(state.config):
            if learner.offline is None:  # plan_run and Recipe.validate refuse this first
                raise HybridRLError(f"phase '{phase.label}': the agent needs dataset rows")
            key, k_offline = jax.random.split(key)
            rows = phase.offline_rows(kept.num_steps * kept.num_envs)
            offline = fn["offline_sample"](learner.offline, k_offline, rows)
            state, metrics = fn["update"](state, batch, k_update, offline)
        else:
            state, metrics = fn["update"](state, batch, k_update)
        if sampling_error is not None:
            metrics = {**metrics, "sampling_error": sampling_error}
        if behaviour_metrics:
            metrics = {**metrics, **{f"behaviour_{k}": v for k, v in behaviour_metrics.items()}}
        c.update += 1
        learner = dataclasses.replace(
            learner, state=state, rollouts=kept if phase.keep_batches > 1 else None
        )
        ctx.log_train(phase, metrics, c)
        if after_update:
            # the data of the next target update so far: the kept rollouts but the oldest
            buffer, valid = _behaviour_buffer(kept, phase.keep_batches, _zeros_like(cols), 0)
            key, k_behaviour = jax.random.split(key)
            state, behaviour_metrics = fn["behaviour"](state, buffer, valid, k_behaviour)
            learner = dataclasses.replace(learner, state=state)
        crossed = c.env_step // s.eval_interval > start_step // s.eval_interval
        if crossed and c.phase_progress < phase.steps:
            bar.set_postfix_str("evaluating")
            score = ctx.evaluate(phase, learner, c)
            bar.set_postfix(score=f"{score:.1f}")
        if last_rollout:
            return learner, key
        # The policy changed: the next rollout's first actions come from the new one.
        actions, env_actions, key = fn["sample"](state, obs_n, key)


def _behaviour_buffer(
    kept: Rollout | None, keep: int, cols: Rollout, filled: int
) -> tuple[Rollout, np.ndarray]:
    """The data of a behaviour update: the kept rollouts without the oldest (the next
    update evicts it) joined with the rollout being collected, and which rows are filled."""
    steps = cols.num_steps
    parts = [cols]
    if kept is not None and keep > 1:
        old = jax.tree_util.tree_map(lambda x: x[-(keep - 1) * steps :], kept)
        parts.insert(0, old)
    buffer = concatenate(parts) if len(parts) > 1 else cols
    valid = np.ones((buffer.num_steps, cols.num_envs), bool)
    valid[buffer.num_steps - steps + filled :] = False
    return buffer, valid


def _zeros_like(rollout: Rollout) -> Rollout:
    return jax.tree_util.tree_map(jnp.zeros_like, rollout)


def _empty_rollout(steps: int, obs_n: jax.Array, actions: jax.Array) -> Rollout:
    """Zeros for a rollout of ``steps`` vector steps, filled by the compiled step."""
    n = obs_n.shape[0]
    obs = jnp.zeros((steps, *obs_n.shape), jnp.float32)
    return Rollout(
        observations=obs,
        actions=jnp.zeros((steps, *actions.shape), actions.dtype),
        rewards=jnp.zeros((steps, n), jnp.float32),
        terminals=jnp.zeros((steps, n), jnp.float32),
        timeouts=jnp.zeros((steps, n), jnp.float32),
        next_observations=jnp.zeros_like(obs),
    )


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
