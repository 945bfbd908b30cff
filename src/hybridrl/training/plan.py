"""What a recipe means before it runs: the agent in effect in each phase, the phases' env-step
bounds, the switch step, which phases read Monte-Carlo returns, and the run's first learner.

Computed once from the recipe and the prepared data (`plan_run`); the runner, the executors
and the resume code read it and never re-derive it from names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from hybridrl.agents import agent_spec, get_agent
from hybridrl.data.replay import ReplayBuffer, from_dataset, replay_init
from hybridrl.data.transitions import Transitions
from hybridrl.evaluation.stats import finetune_step
from hybridrl.training.phases import Learner, Offline, Online, OnPolicy, Phase
from hybridrl.training.prepared import PreparedData
from hybridrl.training.recipes import Recipe
from hybridrl.training.weighting import SamplerKey, phase_sampler, sampler_cdfs
from hybridrl.types import HybridRLError


@dataclass(frozen=True)
class RunPlan:
    """The recipe, resolved.

    Attributes:
        agent_chain: ``(agent name, config)`` in effect in each phase (after its hooks).
        phase_bounds: ``(first, end)`` env steps of each phase.
        needs_mc: per phase, whether its updates read Monte-Carlo returns.
        online_extras: extra columns of the online buffer (``{"mc_returns"}`` or empty).
        switch_step: the env step of the offline-to-online switch, or None.
        finetune_step: the first env step at which the fine-tuned policy can differ from the
            pretrained one (see `hybridrl.evaluation.stats.finetune_step`).
        sampler_cdfs: the device CDF of each weighted sampler setting ``(sampler,
            temperature)`` the phases use (`hybridrl.training.weighting`); empty when every
            phase samples uniformly.
        sampler_records: what ``run.json`` records of each weighted phase's sampler.
    """

    agent_chain: list[tuple[str, Any]]
    phase_bounds: list[tuple[int, int]]
    needs_mc: list[bool]
    online_extras: frozenset[str]
    switch_step: int | None
    finetune_step: int | None
    sampler_cdfs: dict[SamplerKey, jax.Array] = dataclasses.field(default_factory=dict)
    sampler_records: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def offline_cdf(self, phase: Phase) -> jax.Array | None:
        """The CDF the phase draws dataset rows with, or None (uniform)."""
        key = phase_sampler(phase)
        return None if key is None else self.sampler_cdfs[key]

    def phase_records(self, recipe: Recipe) -> list[dict[str, Any]]:
        return [
            {"name": p.label, "kind": p.kind, "start_step": a, "end_step": b}
            for p, (a, b) in zip(recipe.phases, self.phase_bounds, strict=True)
        ]


def plan_run(recipe: Recipe, data: PreparedData, seed: int) -> RunPlan:
    """Resolve ``recipe`` on ``data``: a dry run of its hooks on a tiny state gives the agent
    chain; the rest follows from the phases."""
    _check_action_kind(recipe.agent, data)  # before its init below
    chain = _agent_chain(recipe, data, seed)
    _check_agents(recipe, data, chain)
    needs_mc = [
        _updates(p) and bool(agent_spec(agent).needs_mc_returns(config))
        for p, (agent, config) in zip(recipe.phases, chain, strict=True)
    ]
    online_mc = any(
        m for p, m in zip(recipe.phases, needs_mc, strict=True) if isinstance(p, Online)
    )
    bounds, step = [], 0
    for p in recipe.phases:
        bounds.append((step, step + p.env_steps))
        step += p.env_steps
    switch = _switch_step(recipe.phases, bounds)
    cdfs, sampler_records = sampler_cdfs(recipe.phases, data.dataset)
    records = [
        {"name": p.label, "kind": p.kind, "start_step": a, "end_step": b}
        for p, (a, b) in zip(recipe.phases, bounds, strict=True)
    ]
    return RunPlan(
        agent_chain=chain,
        phase_bounds=bounds,
        needs_mc=needs_mc,
        online_extras=frozenset({"mc_returns"} if online_mc else ()),
        switch_step=switch,
        finetune_step=finetune_step(records, switch),
        sampler_cdfs=cdfs,
        sampler_records=sampler_records,
    )


def initial_learner(
    recipe: Recipe,
    data: PreparedData,
    plan: RunPlan | None,
    seed: int,
    *,
    structure_only: bool = False,
) -> Learner:
    """The learner before the first phase; ``structure_only``: tiny networks and no
    buffers, for dry runs of the hooks (the agent chain needs the state's type and config,
    not its size)."""
    key = jax.random.PRNGKey(seed)
    config = recipe.agent_config()
    module = get_agent(recipe.agent)
    if structure_only and any(f.name == "hidden_dims" for f in dataclasses.fields(config)):
        config = dataclasses.replace(config, hidden_dims=(1,))
    kwargs = {"discrete": True} if data.discrete else {}
    state = module.init(config, jax.random.fold_in(key, 1), data.obs_dim, data.act_dim, **kwargs)
    if structure_only or plan is None:
        return Learner(recipe.agent, state, None, None)
    needs_mc = "mc_returns" in plan.online_extras or any(
        m for p, m in zip(recipe.phases, plan.needs_mc, strict=True) if isinstance(p, Offline)
    )
    # Only agents that read Monte-Carlo returns need a discount (BC has none).
    discount = float(np.asarray(recipe.agent_config().discount)) if needs_mc else 1.0
    # Rows marked as corrupted, for agents that log them apart: offline-only recipes (an
    # online buffer would have to carry the same column).
    marks = agent_spec(recipe.agent).corruption_metrics and all(
        isinstance(p, Offline) and not p.hooks for p in recipe.phases
    )
    # The dataset's next actions (ReBRAC), for offline phases whose agent reads them (an
    # online phase that would is refused in `_check_agents`).
    next_actions = any(
        isinstance(p, Offline) and _updates(p) and agent_spec(agent).needs_next_actions(config)
        for p, (agent, config) in zip(recipe.phases, plan.agent_chain, strict=True)
    )
    t = data.offline_transitions(
        mc_returns=needs_mc,
        discount=discount,
        corruption_marks=marks,
        next_actions=bool(next_actions),
    )
    offline = from_dataset(t) if t is not None else None
    online = _online_buffer(recipe, data, plan, t)
    return Learner(recipe.agent, state, offline, online)


def _updates(p: Phase) -> bool:
    if isinstance(p, Offline):
        return p.updates > 0
    if isinstance(p, Online):
        return p.updates_per_step > 0 and p.steps > 0
    return False


def _agent_chain(recipe: Recipe, data: PreparedData, seed: int) -> list[tuple[str, Any]]:
    learner = initial_learner(recipe, data, None, seed, structure_only=True)
    chain = []
    for phase in recipe.phases:
        for hook in phase.hooks:
            if hook.kind not in ("seed_buffer", "drop_offline_data"):  # need real buffers
                learner = hook.apply(learner)
        chain.append((learner.agent_name, learner.state.config))
    return chain


def _check_agents(recipe: Recipe, data: PreparedData, chain: list[tuple[str, Any]]) -> None:
    """Refuse, before any work, an agent that cannot act in the env's action space or a
    phase kind the agent in effect cannot run."""
    for phase, (agent, config) in zip(recipe.phases, chain, strict=True):
        spec = agent_spec(agent)
        _check_action_kind(agent, data)
        if isinstance(phase, Online) and _updates(phase) and spec.needs_next_actions(config):
            raise HybridRLError(
                f"phase '{phase.label}': agent '{agent}' reads the dataset's next actions "
                "under this config, and online transitions have none (ReBRAC: set "
                "critic_bc_coef to 0 for online phases, as rebrac_finetune does)"
            )
        if isinstance(phase, OnPolicy) and not spec.on_policy:
            raise HybridRLError(
                f"phase '{phase.label}' is on-policy, but agent '{agent}' learns from replay "
                "(use online/offline phases)"
            )
        if isinstance(phase, OnPolicy) and spec.needs_offline_rows(config) != (
            phase.offline_ratio > 0
        ):
            raise HybridRLError(
                f"phase '{phase.label}': agent '{agent}' "
                + (
                    "learns from dataset rows under this config: give the phase an "
                    "offline_ratio > 0 (hnpg: 0.5)"
                    if spec.needs_offline_rows(config)
                    else "takes no dataset rows under this config: set the phase's "
                    "offline_ratio to 0 (npg with hybrid=true takes them)"
                )
            )
        if (
            isinstance(phase, OnPolicy)
            and phase.sampling_error_interval
            and not spec.sampling_error
        ):
            raise HybridRLError(
                f"phase '{phase.label}': sampling_error_interval needs an agent that measures "
                f"its sampling error; '{agent}' does not"
            )
        if spec.behaviour_interval(config) and not hasattr(get_agent(agent), "update_behaviour"):
            raise HybridRLError(
                f"agent '{agent}' declares a behaviour interval but has no update_behaviour"
            )
        if isinstance(phase, OnPolicy) and phase.anneal_lr:
            if not hasattr(config, "anneal_iterations"):
                raise HybridRLError(
                    f"phase '{phase.label}': anneal_lr needs an agent with a learning-rate "
                    f"schedule (anneal_iterations); '{agent}' has none"
                )
            if config.anneal_iterations:
                raise HybridRLError(
                    f"phase '{phase.label}': anneal_lr sets anneal_iterations, which the "
                    f"config also sets ({config.anneal_iterations}); keep one of the two"
                )
        if isinstance(phase, Offline | Online) and spec.on_policy and _updates(phase):
            raise HybridRLError(
                f"phase '{phase.label}' updates from replay, but agent '{agent}' is on-policy "
                "(use an on_policy phase)"
            )


def _check_action_kind(agent: str, data: PreparedData) -> None:
    kinds = agent_spec(agent).action_kinds
    if data.act_space.kind not in kinds:
        raise HybridRLError(
            f"{data.settings.env_id} has a {data.act_space.describe()} action space; agent "
            f"'{agent}' acts only in {' or '.join(kinds)} spaces"
        )


def _switch_step(phases: Sequence[Phase], bounds: list[tuple[int, int]]) -> int | None:
    pretrained = False
    for p, (start, _) in zip(phases, bounds, strict=True):
        if isinstance(p, Offline) and p.updates > 0:
            pretrained = True
        elif p.env_steps > 0 and pretrained:
            return start
    return None


def _online_buffer(
    recipe: Recipe, data: PreparedData, plan: RunPlan, offline: Transitions | None
) -> ReplayBuffer | None:
    if all(isinstance(p, Offline | OnPolicy) for p in recipe.phases):
        return None
    seeds = any(any(h.kind == "seed_buffer" for h in p.hooks) for p in recipe.phases)
    extra_rows = len(offline) if (seeds and offline is not None) else 0
    # A seeded dataset always fits whole (`SeedBuffer` appends all of it); the online rows
    # are capped by buffer_capacity and overwrite the oldest online rows first only once the
    # buffer is full.
    replay_steps = sum(p.env_steps for p in recipe.phases if not isinstance(p, OnPolicy))
    online_rows = min(data.settings.buffer_capacity, replay_steps)
    capacity = max(1, online_rows + extra_rows)
    example = Transitions(
        observations=np.zeros((1, data.obs_dim), np.float32),
        actions=np.zeros((1, data.act_dim), np.float32),
        rewards=np.zeros(1, np.float32),
        next_observations=np.zeros((1, data.obs_dim), np.float32),
        terminals=np.zeros(1, np.float32),
        timeouts=np.zeros(1, np.float32),
        extras={k: np.zeros(1, np.float32) for k in sorted(plan.online_extras)},
    )
    return replay_init(example, capacity)
