"""`Warmup` and `Online` phases: collect env steps in segments into the online buffer and,
in online phases, take replay updates (offline and online data mixed at the phase's ratio).

A segment starts with every vector env reset from a seed derived from (seed, env step, env
index) and ends on a checkpoint boundary or the phase's end, where the last transition of
every unfinished episode is marked a time-out: the state at a boundary is complete without
the environments' internal state (see `hybridrl.training.runner`).

One compiled call per env step (as the on-policy executor, `executors.on_policy`): it writes
the step's transitions into the online buffer (the buffer and the agent state are donated, so
both are updated in place rather than copied into fresh allocations each step), runs the
updates the step earned (`scan_updates`: sampling, mixed at the phase's
ratio, and ``agent.update``), splits the key and chooses the next actions (uniform during a
random prefix, else ``agent.act``). The host steps the envs, builds the rows (observation
normalisation and reward scaling, in numpy as before), keeps the counters and reads back only
the actions; metrics are read at ``log_interval`` only, and while the device computes the host
logs the episodes of the step. The PRNG stream is the one of the unfused loop (per env step
``key, k_act, k_update = split(key, 3)``; the split for step t+1 runs at the end of step t's
call and is skipped after a segment's last step), so the numbers do not change. Agents whose
online rows carry Monte-Carlo returns (Cal-QL) add whole episodes from the host, as before,
and the call then only updates and acts.
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
from hybridrl.data.replay import ReplayBuffer, replay_add
from hybridrl.data.transitions import Transitions
from hybridrl.training.context import Counters, RunContext, derived_seed
from hybridrl.training.phases import Learner, Online, Phase, Warmup
from hybridrl.training.run_data import (
    add_rows,
    episode_with_mc,
    mixed_sampler,
    offline_source,
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


@cache
def _programs(agent: ModuleType) -> dict[str, Any]:
    """``first`` (split the key, choose a segment's first actions) and ``step`` (insert,
    update, split, choose the next actions) for ``agent``, jitted once per agent module.

    Static: the action size, deterministic acting (frozen warm-ups), whether the call inserts
    (not with Monte-Carlo returns), the number of updates (0 compiles no update), the batch
    size, where batches come from and the mixed sampler's minibatch count. Traced: whether the
    next actions are uniform (a random prefix ends inside a phase without recompiling) and
    whether the key advances (not after a segment's last step)."""

    def choose(
        state: Any, x: jax.Array, key: jax.Array, random: jax.Array, act_dim: int, det: bool
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        key, k_act, k_update = jax.random.split(key, 3)
        uniform = jax.random.uniform(k_act, (x.shape[0], act_dim), minval=-1.0)
        policy = agent.act(state, x, k_act, det)
        return key, k_update, jnp.where(random, uniform, policy.astype(uniform.dtype))

    def first(
        state: Any, x: jax.Array, key: jax.Array, random: jax.Array, *, act_dim: int, det: bool
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        return choose(state, x, key, random, act_dim, det)

    def step(
        state: Any,
        online: ReplayBuffer,
        offline: ReplayBuffer | None,
        ratio: jax.Array,
        cdf: jax.Array | None,
        rows: Transitions,
        k_update: jax.Array,
        key: jax.Array,
        next_x: jax.Array,
        random: jax.Array,
        advance: jax.Array,
        *,
        act_dim: int,
        det: bool,
        insert: bool,
        num_updates: int,
        batch_size: int,
        source: str,
        groups: int,
    ) -> tuple[Any, ...]:
        if insert:
            online = replay_add(online, rows)
        metrics: dict[str, jax.Array] = {}
        if num_updates:
            data: Any = online
            sample_fn: Any = sample_buffer
            if source == "offline":
                assert offline is not None
                data, sample_fn = offline_source(offline, cdf)
            elif source == "mixed":
                assert offline is not None
                data = (with_extras(offline, set(online.data.extras)), online, ratio)
                if cdf is not None:  # the dataset's rows trajectory-weighted
                    data = (*data, cdf)
                sample_fn = mixed_sampler(groups)
            state, metrics = scan_updates(
                agent.update,
                state,
                data,
                k_update,
                num_updates=num_updates,
                batch_size=batch_size,
                sample_fn=sample_fn,
            )
        new_key, k_next, actions = choose(state, next_x, key, random, act_dim, det)
        key = jnp.where(advance, new_key, key)
        return state, online, key, k_next, actions, metrics

    static = ("act_dim", "det")
    return {
        "first": jax.jit(first, static_argnames=static),
        "step": jax.jit(
            step,
            static_argnames=(*static, "insert", "num_updates", "batch_size", "source", "groups"),
            donate_argnames=("state", "online"),
        ),
    }


def _random(phase: Phase, progress: int) -> bool:
    """Whether the env step at ``progress`` of ``phase`` takes uniform random actions."""
    if isinstance(phase, Warmup):
        return phase.policy == "random"
    return isinstance(phase, Online) and progress < phase.random_steps


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
    agent = get_agent(learner.agent_name)
    fn = _programs(agent)
    state, online, offline = learner.state, learner.online, learner.offline
    assert online is not None
    seen: set[int] = set()
    state = _distinct_buffers(state, seen)
    online = _distinct_buffers(online, seen)
    seeds = [derived_seed(s.seed, c.env_step, i) for i in range(n)]
    obs, _ = envs.reset(seed=seeds)  # type: ignore[arg-type]
    ep_return = np.zeros(n)
    ep_length = np.zeros(n, np.int64)
    pending: list[list[Transitions]] = [[] for _ in range(n)]
    mc = "mc_returns" in ctx.plan.online_extras
    gamma = float(np.asarray(state.config.discount))
    det = isinstance(phase, Warmup) and phase.policy.endswith("deterministic")
    static: dict[str, Any] = {"act_dim": data.act_dim, "det": det, "insert": not mc}
    # Where update batches come from (fixed for the phase: hooks ran before it).
    ratio = phase.offline_ratio if isinstance(phase, Online) else 0.0
    mixing = ratio > 0 and offline is not None
    static["source"] = "online" if not mixing else "offline" if ratio >= 1.0 else "mixed"
    static["groups"] = (
        int(agent_spec(agent).minibatches_per_update(state.config))
        if static["source"] == "mixed"
        else 1
    )
    static["batch_size"] = phase.batch_size if isinstance(phase, Online) else 0
    ratio_arr = jnp.asarray(ratio, jnp.float32)
    cdf = ctx.plan.offline_cdf(phase) if mixing else None
    has_rows = mixing or int(online.size) > 0  # one read per segment: no update on no data
    x = data.normalize(obs)
    key, k_update, actions = fn["first"](
        state, x, key, _random(phase, c.phase_progress), act_dim=data.act_dim, det=det
    )
    while c.phase_progress < seg_end:
        host_actions = np.asarray(actions)  # the one read the env step needs
        next_obs, rewards, terminated, truncated, info = envs.step(host_actions)
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
            actions=host_actions.astype(np.float32),
            rewards=np.asarray(rewards, np.float32),
            next_observations=data.normalize(final_obs),
            terminals=terminated.astype(np.float32),
            timeouts=(truncated & ~terminated).astype(np.float32),
        )
        rows = data.scaled(rows)
        ended = terminated | truncated
        if mc:
            for j in range(n):
                pending[j].append(jax.tree_util.tree_map(lambda v, j=j: v[j], rows))
                if ended[j]:
                    online = add_rows(online, episode_with_mc(pending[j], gamma, s))
                    pending[j] = []
                    has_rows = True
        else:
            has_rows = True
        num = 0
        if isinstance(phase, Online) and c.phase_progress > phase.update_after:
            num = _earned(phase, c, n, has_rows)
        x = data.normalize(next_obs)
        state, online, key, k_update, actions, metrics = fn["step"](
            state,
            online,
            offline,
            ratio_arr,
            cdf,
            rows,
            k_update,
            key,
            x,
            _random(phase, c.phase_progress),
            not cut,
            num_updates=num,
            **static,
        )
        # host work while the device computes
        ep_return += np.asarray(rewards, np.float64)
        ep_length += 1
        for i in np.flatnonzero(ended):
            natural = bool(terminated[i] or env_truncated[i])
            ctx.log_episode(phase, c, float(ep_return[i]), int(ep_length[i]), cut=not natural)
            ep_return[i] = 0.0
            ep_length[i] = 0
        if num:
            before = c.update
            c.update += num
            if c.update // s.log_interval > before // s.log_interval:
                ctx.log_train(phase, metrics, c)
        bar.update(n)
        scheduled = c.env_step % s.eval_interval < n or c.env_step == ctx.dip_eval_step
        due = scheduled and c.phase_progress < phase.env_steps
        if due and c.last_eval_update != c.update:
            bar.set_postfix_str("evaluating")
            current = dataclasses.replace(learner, state=state, online=online)
            score = ctx.evaluate(phase, current, c)
            bar.set_postfix(score=f"{score:.1f}")
    return dataclasses.replace(learner, state=state, online=online), key


def _earned(phase: Online, c: Counters, n: int, has_rows: bool) -> int:
    """The updates one batch of ``n`` env steps earns (``updates_per_step`` each, fractional
    credit carried over); none while there is nothing to sample (the credit then stays, and
    these updates run once data arrives)."""
    c.update_credit += phase.updates_per_step * n
    num = int(c.update_credit + 1e-9)
    if num == 0 or not has_rows:
        return 0
    c.update_credit -= num
    return num


def _distinct_buffers(tree: Any, seen: set[int]) -> Any:
    """``tree`` with no device buffer shared by two of its array leaves, nor with a buffer
    already in ``seen`` (copies of the repeats; ``seen`` grows).

    The compiled step donates the agent state and the online buffer, and XLA refuses to donate
    one device buffer twice: an agent's target networks start as the very arrays of its online
    networks, and a restored checkpoint can hold equal leaves as one array (``insert_index``
    and ``size`` of a buffer that has not wrapped). Runs once per segment, on the host.
    """

    def own(x: Any) -> Any:
        if not isinstance(x, jax.Array):
            return x  # Python scalars of a config are not donated
        ptr = x.unsafe_buffer_pointer()
        if ptr in seen:
            return jnp.array(x, copy=True)
        seen.add(ptr)
        return x

    return jax.tree_util.tree_map(own, tree)
