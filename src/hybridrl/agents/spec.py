"""What an agent declares to the runner, instead of the runner guessing from names or
``getattr`` (GUIDE: "an agent's needs are declared by the agent").

Every agent module defines ``SPEC = AgentSpec(...)``; `hybridrl.agents.agent_spec` reads it and
refuses a module without one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INIT_ONLY = "init_only"


def init_only(default: Any) -> Any:
    """A config field that is read once, when ``init`` builds the state: network sizes, the
    optimizers' learning rates, initial values. Static (not a traced leaf), and a
    `hybridrl.training.phases.SetConfig` hook refuses to change it, since the built networks
    and optimizers would silently keep the old value."""
    return dataclasses.field(default=default, metadata={"pytree_node": False, INIT_ONLY: True})


def init_only_fields(config: Any) -> frozenset[str]:
    """Names of the `init_only` fields of ``config`` (an instance or a Config class). A field
    is init-only when any Config class it inherits from declares it so: a subclass that
    redefines only a default keeps the base's declaration."""
    cls = config if isinstance(config, type) else type(config)
    names: set[str] = set()
    for base in cls.__mro__:
        if dataclasses.is_dataclass(base):
            names.update(f.name for f in dataclasses.fields(base) if f.metadata.get(INIT_ONLY))
    return frozenset(names)


def _never(config: Any) -> bool:
    return False


def _one(config: Any) -> int:
    return 1


def _zero(config: Any) -> int:
    return 0


@dataclass(frozen=True)
class AgentSpec:
    """An agent's needs and abilities.

    Attributes:
        on_policy: updates from rollouts of its own policy (`OnPolicy` phases), not from
            minibatches of a replay buffer (`Offline`/`Online` phases).
        action_kinds: the action spaces it can act in: ``"box"`` (actions in [-1, 1]) and/or
            ``"discrete"``. A run on another kind is refused before it starts.
        q_probe: its state has ``critic`` applied as ``critic(obs, actions) -> Q per critic``,
            so the runner can log the mean Q of the policy's actions on fixed states.
        robustness_probe: its state's ``actor`` applied to observations returns a diagonal
            Gaussian with ``mean`` and ``log_std`` (`hybridrl.core.distributions.Normal`, or
            `TanhNormal`'s pre-tanh one) and its ``critic`` is an ensemble as for
            ``q_probe``, so the runner can log the robustness metrics of
            `hybridrl.evaluation.robustness` (run setting ``robustness_eps``).
        needs_mc_returns: ``config -> bool``, whether its updates read the ``mc_returns``
            extra (Cal-QL's Monte-Carlo returns) under that config.
        needs_next_actions: ``config -> bool``, whether its updates read the dataset's next
            actions (the ``next_actions`` and ``has_next_action`` extras,
            `hybridrl.data.transitions.next_actions`; ReBRAC's critic penalty) under that
            config. Only offline data has them: a run refuses an online phase whose agent
            declares this.
        minibatches_per_update: ``config -> int``, how many minibatches one update splits its
            batch into (the update-to-data ratio G of RLPD-style agents): the mixed sampler
            mixes offline and online data in each of them.
        running_stats: the state fields that collecting changes (on-policy agents' running
            observation and return statistics): the compiled env step returns only these, not
            the whole state, which would cost a copy of every parameter per env step.
        behaviour_interval: ``config -> int``, env steps (summed over the vector envs)
            between calls of the agent's ``update_behaviour(state, buffer, valid, key) ->
            (state, metrics)`` during collection (PROPS adapts its behaviour policy); 0: none.
            ``buffer`` is the kept rollouts (without the oldest, which the next update
            evicts) joined with the rollout being collected; ``valid`` marks its rows
            collected so far.
        corruption_metrics: its update logs statistics separately on the rows a batch's
            ``corrupted`` extra marks (1.0 for a row that a ``corrupted_<kind>`` extra of
            `hybridrl.data.corrupt` marks) and on the others, when the batch carries it; an
            offline-only run keeps that column for it.
        needs_offline_rows: ``config -> bool``, whether its on-policy ``update`` takes dataset
            rows besides the rollout, as ``update(state, batch, key, offline)`` with
            ``offline`` a `Transitions` batch the runner samples uniformly from the dataset
            (HNPG: fitted-Q targets and offline advantages). An `OnPolicy` phase feeds them at
            its ``offline_ratio``, which must be > 0 exactly when this is true.
        sampling_error: the agent has ``sampling_error(state, rollout, key) -> scalar``, the
            PROPS paper's metric of how far the data are from the current policy; an
            `OnPolicy` phase with ``sampling_error_interval`` logs it.
    """

    on_policy: bool = False
    action_kinds: tuple[str, ...] = ("box",)
    q_probe: bool = False
    robustness_probe: bool = False
    needs_mc_returns: Callable[[Any], bool] = _never
    needs_next_actions: Callable[[Any], bool] = _never
    minibatches_per_update: Callable[[Any], int] = _one
    running_stats: tuple[str, ...] = ()
    behaviour_interval: Callable[[Any], int] = _zero
    sampling_error: bool = False
    corruption_metrics: bool = False
    needs_offline_rows: Callable[[Any], bool] = _never


def utd_minibatches(config: Any) -> int:
    """``config.utd_ratio``: for the agents whose update splits its batch into that many
    minibatches (SAC, CQL, Cal-QL)."""
    return int(config.utd_ratio)
