"""`Warmup` and `Online` phases: collect env steps in segments into the online buffer and,
in online phases, take replay updates (offline and online data mixed at the phase's ratio).

A segment starts with every vector env reset from a seed derived from (seed, env step, env
index) and ends on a checkpoint boundary or the phase's end, where the last transition of
every unfinished episode is marked a time-out: the state at a boundary is complete without
the environments' internal state (see `hybridrl.training.runner`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from hybridrl.agents import agent_spec, get_agent
from hybridrl.data.transitions import Transitions
from hybridrl.evaluation.rollout import jitted_act
from hybridrl.training.context import Counters, RunContext, derived_seed
from hybridrl.training.phases import Learner, Online, Phase, Warmup
from hybridrl.training.run_data import (
    add,
    add_rows,
    episode_with_mc,
    mixed_sampler,
    sample_buffer,
    with_extras,
)
from hybridrl.training.updates import scan_updates
from hybridrl.types import HybridRLError


def run_replay_phase(
    ctx: RunContext,
    phase: Phase,
    learner: Learner,
    key: jax.Array,
    c: Counters,
    envs: gym.vector.VectorEnv,
) -> tuple[Learner, jax.Array]:
    """Run the rest of a warm-up or online ``phase`` (from ``c.phase_progress``)."""
    s = ctx.settings
    total = phase.env_steps
    if learner.online is None:  # pragma: no cover - an env phase always has a buffer
        raise HybridRLError("internal: env phase without an online buffer")
    with ctx.bar(phase, total, c.phase_progress, "step") as bar:
        while c.phase_progress < total:
            # One segment: fresh env resets, ends on a checkpoint boundary or phase end.
            to_boundary = s.checkpoint_interval - c.env_step % s.checkpoint_interval
            seg_end = min(total, c.phase_progress + to_boundary)
            learner, key = _segment(ctx, phase, learner, key, c, envs, seg_end, bar)
            if c.phase_progress < total and c.env_step % s.checkpoint_interval == 0:
                ctx.checkpoint(learner, key, c)
    return learner, key


def _segment(
    ctx: RunContext,
    phase: Phase,
    learner: Learner,
    key: jax.Array,
    c: Counters,
    envs: gym.vector.VectorEnv,
    seg_end: int,
    bar: Any,
) -> tuple[Learner, jax.Array]:
    s, data, n = ctx.settings, ctx.data, ctx.settings.num_envs
    seeds = [derived_seed(s.seed, c.env_step, i) for i in range(n)]
    obs, _ = envs.reset(seed=seeds)  # type: ignore[arg-type]
    ep_return = np.zeros(n)
    ep_length = np.zeros(n, np.int64)
    pending: list[list[Transitions]] = [[] for _ in range(n)]
    mc = "mc_returns" in ctx.plan.online_extras
    gamma = float(np.asarray(learner.state.config.discount))
    while c.phase_progress < seg_end:
        agent = get_agent(learner.agent_name)
        key, k_act, k_update = jax.random.split(key, 3)
        x = data.normalize(obs)
        random = (isinstance(phase, Warmup) and phase.policy == "random") or (
            isinstance(phase, Online) and c.phase_progress < phase.random_steps
        )
        if random:
            actions = np.asarray(jax.random.uniform(k_act, (n, data.act_dim), minval=-1.0))
        else:
            deterministic = isinstance(phase, Warmup) and phase.policy.endswith("deterministic")
            actions = np.asarray(jitted_act(agent)(learner.state, x, k_act, deterministic))
        next_obs, rewards, terminated, truncated, info = envs.step(actions)
        final_obs = np.array(next_obs, copy=True)
        if "_final_obs" in info:
            for i in np.flatnonzero(info["_final_obs"]):
                final_obs[i] = info["final_obs"][i]
        c.phase_progress += n
        c.env_step += n
        cut = c.phase_progress >= seg_end
        terminated = np.asarray(terminated, bool)
        env_truncated = np.asarray(truncated, bool)
        truncated = env_truncated | cut
        rows = Transitions(
            observations=x,
            actions=actions.astype(np.float32),
            rewards=np.asarray(rewards, np.float32),
            next_observations=data.normalize(final_obs),
            terminals=terminated.astype(np.float32),
            timeouts=(truncated & ~terminated).astype(np.float32),
        )
        rows = data.scaled(rows)
        online = learner.online
        assert online is not None
        if mc:
            for j in range(n):
                pending[j].append(jax.tree_util.tree_map(lambda v, j=j: v[j], rows))
                if terminated[j] or truncated[j]:
                    online = add_rows(online, episode_with_mc(pending[j], gamma, s))
                    pending[j] = []
        else:
            online = add(online, rows)
        learner = dataclasses.replace(learner, online=online)
        ep_return += np.asarray(rewards, np.float64)
        ep_length += 1
        for i in np.flatnonzero(terminated | truncated):
            natural = bool(terminated[i] or env_truncated[i])
            ctx.log_episode(phase, c, float(ep_return[i]), int(ep_length[i]), cut=not natural)
            ep_return[i] = 0.0
            ep_length[i] = 0
        obs = next_obs
        if isinstance(phase, Online) and c.phase_progress > phase.update_after:
            learner = _updates(ctx, phase, learner, k_update, c)
        bar.update(n)
        scheduled = c.env_step % s.eval_interval < n or c.env_step == ctx.dip_eval_step
        due = scheduled and c.phase_progress < phase.env_steps
        if due and c.last_eval_update != c.update:
            bar.set_postfix_str("evaluating")
            score = ctx.evaluate(phase, learner, c)
            bar.set_postfix(score=f"{score:.1f}")
    return learner, key


def _updates(
    ctx: RunContext, phase: Online, learner: Learner, k_update: jax.Array, c: Counters
) -> Learner:
    """The updates one batch of env steps earns (``updates_per_step`` each, fractional
    credit carried over)."""
    c.update_credit += phase.updates_per_step * ctx.settings.num_envs
    num = int(c.update_credit + 1e-9)
    if num == 0:
        return learner
    online = learner.online
    assert online is not None
    ratio = phase.offline_ratio
    mixing = ratio > 0 and learner.offline is not None
    if not mixing and int(online.size) == 0:
        return learner  # the credit stays: these updates run once data arrives
    c.update_credit -= num
    data: Any
    sample_fn: Any
    if mixing:
        assert learner.offline is not None
        if ratio >= 1.0:
            data, sample_fn = learner.offline, sample_buffer
        else:
            offline = with_extras(learner.offline, set(online.data.extras))
            data = (offline, online, jnp.asarray(ratio, jnp.float32))
            groups = agent_spec(learner.agent_name).minibatches_per_update(learner.state.config)
            sample_fn = mixed_sampler(int(groups))
    else:
        data, sample_fn = online, sample_buffer
    agent = get_agent(learner.agent_name)
    state, metrics = scan_updates(
        agent.update,
        learner.state,
        data,
        k_update,
        num_updates=num,
        batch_size=phase.batch_size,
        sample_fn=sample_fn,
    )
    before = c.update
    c.update += num
    interval = ctx.settings.log_interval
    if c.update // interval > before // interval:
        ctx.log_train(phase, metrics, c)
    return dataclasses.replace(learner, state=state)
