"""The `Offline` phase: ``updates`` agent updates on minibatches of the dataset, in compiled
chunks that end on log, evaluation and checkpoint boundaries (so a resumed run replays the
same chunks).

`run_offline_phase_seeds` runs the same phase for K runs that differ only in their seed as one
vmapped program per chunk (`hybridrl.training.seeds.scan_updates_seeds`): the same chunks,
each seed's key split exactly as its own run splits it, the dataset shared; logging,
evaluation and checkpoints stay per run, on the host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from hybridrl.agents import get_agent
from hybridrl.training.checkpoint import like_template
from hybridrl.training.context import Counters, RunContext, RunSettings
from hybridrl.training.phases import Learner, Offline
from hybridrl.training.run_data import offline_source
from hybridrl.training.seeds import scan_updates_seeds, select_seed
from hybridrl.training.updates import scan_updates
from hybridrl.types import HybridRLError


def _chunk(s: RunSettings, phase: Offline, c: Counters) -> int:
    """Updates in the next compiled call: up to the next log, checkpoint or evaluation."""
    done = c.phase_progress
    return min(
        s.chunk_size - done % s.chunk_size,
        s.log_interval - c.update % s.log_interval,
        s.checkpoint_interval - done % s.checkpoint_interval,
        s.offline_eval_interval - done % s.offline_eval_interval,
        phase.updates - done,
    )


def run_offline_phase(
    ctx: RunContext, phase: Offline, learner: Learner, key: jax.Array, c: Counters
) -> tuple[Learner, jax.Array]:
    """Run the rest of ``phase`` (from ``c.phase_progress``)."""
    if learner.offline is None:
        raise HybridRLError(f"phase '{phase.label}' needs the dataset, which was dropped")
    agent = get_agent(learner.agent_name)
    s = ctx.settings
    data, sample_fn = offline_source(learner.offline, ctx.plan.offline_cdf(phase))
    with ctx.bar(phase, phase.updates, c.phase_progress, "upd") as bar:
        while c.phase_progress < phase.updates:
            n = _chunk(s, phase, c)
            key, k = jax.random.split(key)
            state, metrics = scan_updates(
                agent.update,
                learner.state,
                data,
                k,
                num_updates=n,
                batch_size=phase.batch_size,
                sample_fn=sample_fn,
            )
            learner = dataclasses.replace(learner, state=state)
            c.phase_progress += n
            c.update += n
            bar.update(n)
            if c.update % s.log_interval == 0:
                ctx.log_train(phase, metrics, c)
            if c.phase_progress % s.offline_eval_interval == 0 and (
                c.phase_progress < phase.updates
            ):
                bar.set_postfix_str("evaluating")  # else the bar looks stalled
                score = ctx.evaluate(phase, learner, c)
                bar.set_postfix(score=f"{score:.1f}")
            if c.phase_progress % s.checkpoint_interval == 0:
                ctx.checkpoint(learner, key, c)
    return learner, key


def stack_states(states: Sequence[Any]) -> Any:
    """K states of one structure as one state whose leaves have a leading seed axis."""
    try:
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)
    except ValueError as exc:  # another tree structure: static parts differ
        raise HybridRLError(
            f"--vmap-seeds: the seeds' agent states differ in structure, so they cannot run as "
            f"one program ({exc})"
        ) from None


def unstack_state(states: Any, index: int, template: Any) -> Any:
    """Seed ``index`` of stacked ``states``, with each leaf of ``template``'s kind (Python
    scalars where its run holds them), as its own run holds it."""
    return like_template(template, select_seed(states, index))


def run_offline_phase_seeds(
    ctxs: Sequence[RunContext],
    phase: Offline,
    learners: Sequence[Learner],
    keys: Sequence[jax.Array],
    counters: Sequence[Counters],
) -> tuple[list[Learner], list[jax.Array]]:
    """`run_offline_phase` for K runs at the same position that differ only in their seed:
    one ``scan_updates_seeds`` call per chunk for all of them. Run ``i`` gets the key, the
    chunks and hence the minibatches and noise of its own run, so its numbers equal the run
    alone up to floating-point reassociation in batched kernels."""
    if any(learner.offline is None for learner in learners):
        raise HybridRLError(f"phase '{phase.label}' needs the dataset, which was dropped")
    names = {learner.agent_name for learner in learners}
    if len(names) != 1:
        raise HybridRLError(f"--vmap-seeds: the seeds' agents differ ({', '.join(sorted(names))})")
    agent = get_agent(learners[0].agent_name)
    s, c0 = ctxs[0].settings, counters[0]
    templates = [learner.state for learner in learners]
    states = stack_states(templates)
    stacked_keys = jnp.stack(list(keys))
    offline = learners[0].offline  # the same rows for every seed (one prepared dataset)
    assert offline is not None
    data, sample_fn = offline_source(offline, ctxs[0].plan.offline_cdf(phase))
    split = jax.vmap(jax.random.split)

    def learner_of(i: int) -> Learner:
        state = unstack_state(states, i, templates[i])
        return dataclasses.replace(learners[i], state=state)

    with ctxs[0].bar(phase, phase.updates, c0.phase_progress, "upd") as bar:
        while c0.phase_progress < phase.updates:
            n = _chunk(s, phase, c0)
            pairs = split(stacked_keys)  # (K, 2, ...): each seed's `key, k = split(key)`
            stacked_keys, ks = pairs[:, 0], pairs[:, 1]
            states, metrics = scan_updates_seeds(
                agent.update,
                states,
                data,
                ks,
                num_updates=n,
                batch_size=phase.batch_size,
                sample_fn=sample_fn,
            )
            for c in counters:
                c.phase_progress += n
                c.update += n
            bar.update(n)
            log = c0.update % s.log_interval == 0
            evaluate = c0.phase_progress % s.offline_eval_interval == 0 and (
                c0.phase_progress < phase.updates
            )
            checkpoint = c0.phase_progress % s.checkpoint_interval == 0
            if log:
                host = jax.device_get(metrics)
                for i, ctx in enumerate(ctxs):
                    ctx.log_train(phase, {k: v[i] for k, v in host.items()}, counters[i])
            if evaluate or checkpoint:
                bar.set_postfix_str("evaluating" if evaluate else "checkpoint")
                for i, ctx in enumerate(ctxs):
                    learner = learner_of(i)
                    if evaluate:
                        ctx.evaluate(phase, learner, counters[i])
                    if checkpoint:
                        ctx.checkpoint(learner, stacked_keys[i], counters[i])
                bar.set_postfix_str("")
    return [learner_of(i) for i in range(len(learners))], [
        stacked_keys[i] for i in range(len(learners))
    ]
