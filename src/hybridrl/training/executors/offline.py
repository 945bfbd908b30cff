"""The `Offline` phase: ``updates`` agent updates on minibatches of the dataset, in compiled
chunks that end on log, evaluation and checkpoint boundaries (so a resumed run replays the
same chunks)."""

from __future__ import annotations

import dataclasses

import jax

from hybridrl.agents import get_agent
from hybridrl.training.context import Counters, RunContext
from hybridrl.training.phases import Learner, Offline
from hybridrl.training.run_data import sample_buffer
from hybridrl.training.updates import scan_updates
from hybridrl.types import HybridRLError


def run_offline_phase(
    ctx: RunContext, phase: Offline, learner: Learner, key: jax.Array, c: Counters
) -> tuple[Learner, jax.Array]:
    """Run the rest of ``phase`` (from ``c.phase_progress``)."""
    if learner.offline is None:
        raise HybridRLError(f"phase '{phase.label}' needs the dataset, which was dropped")
    agent = get_agent(learner.agent_name)
    s = ctx.settings
    with ctx.bar(phase, phase.updates, c.phase_progress, "upd") as bar:
        while c.phase_progress < phase.updates:
            done = c.phase_progress
            n = min(
                s.chunk_size - done % s.chunk_size,
                s.log_interval - c.update % s.log_interval,
                s.checkpoint_interval - done % s.checkpoint_interval,
                s.offline_eval_interval - done % s.offline_eval_interval,
                phase.updates - done,
            )
            key, k = jax.random.split(key)
            state, metrics = scan_updates(
                agent.update,
                learner.state,
                learner.offline,
                k,
                num_updates=n,
                batch_size=phase.batch_size,
                sample_fn=sample_buffer,
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
