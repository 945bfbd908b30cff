"""A run is data: a list of phases, each with the hooks applied when it starts.

Four phase kinds cover the offline-to-online and on-policy literature:

- `Offline`: ``updates`` agent updates on minibatches of the dataset; no environment.
- `Warmup`: ``steps`` environment steps with a frozen policy (the pretrained one, or uniform
  random actions) and **no** updates; the transitions go to the online buffer (WSRL's warm-up,
  Zhou et al., 2024).
- `Online`: ``steps`` environment steps; after each batch of N vector-env steps the agent takes
  ``updates_per_step × N`` updates on batches drawn from the online buffer and, with
  ``offline_ratio > 0``, from the dataset at that ratio (RLPD's symmetric sampling is 0.5).
- `OnPolicy`: ``steps`` environment steps in rollouts of ``rollout_steps`` per env, each
  followed by one on-policy update (PPO's epochs × minibatches) on the last ``keep_batches``
  rollouts (PPO, PPO with reused data, PROPS); with ``offline_ratio > 0``, each update also
  gets a fresh uniform sample of dataset rows (HNPG's hybrid critic and policy step).

Hooks transform the run's `Learner` (agent state, buffers) at the start of a phase — the
"switch" is nothing more than the hooks of the first phase after pretraining:

- `SetConfig`: change agent config values (CQL α, IQL temperature, utd_ratio, ...);
- `ResetOptimizers`: fresh optimizer state (Adam moments) for some or all networks;
- `SwitchAgent`: update and act with another agent module from now on (WSRL: Cal-QL → SAC);
- `DisableCalibration`: Cal-QL → CQL (the calibration bound off, no Monte-Carlo returns needed);
- `DropOfflineData`: release the dataset; later phases cannot sample it (WSRL);
- `SeedBuffer`: copy the dataset into the online buffer ("naive" fine-tuning appends the
  offline data to the replay buffer).

Phases and hooks are frozen dataclasses with ``to_dict``/``from_dict``, so a recipe can be
written in TOML/JSON, stored in ``run.json`` and compared on ``--resume``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jax
import numpy as np

from hybridrl.agents.spec import init_only_fields
from hybridrl.data.replay import ReplayBuffer, replay_add
from hybridrl.types import HybridRLError


# ------------------------------------------------------------------------------ learner
@dataclass
class Learner:
    """What hooks act on: the agent in effect, its state and the two buffers.

    Attributes:
        agent_name: registry name of the agent whose ``update``/``act`` run now.
        state: the agent state pytree.
        offline: the dataset as a full replay buffer, or None (no dataset, or dropped).
        online: the buffer that environment transitions go to, or None (offline-only runs).
        rollouts: on-policy phases that reuse data: the rollouts kept for the next update,
            joined in time order (a `hybridrl.data.rollout.Rollout`), or None.
    """

    agent_name: str
    state: Any
    offline: ReplayBuffer | None
    online: ReplayBuffer | None
    rollouts: Any = None


# -------------------------------------------------------------------------------- hooks
@dataclass(frozen=True)
class Hook(ABC):
    """Base of the switch hooks; subclasses implement `apply`."""

    kind: ClassVar[str] = "hook"

    @abstractmethod
    def apply(self, learner: Learner) -> Learner:
        """The learner after the hook (a new value; the argument is not changed)."""

    def to_dict(self) -> dict[str, Any]:
        return {"hook": self.kind, **_jsonable(dataclasses.asdict(self))}


@dataclass(frozen=True)
class SetConfig(Hook):
    """Replace agent config fields, e.g. ``SetConfig({"cql_alpha": 0.0})``.

    Numeric (traced) fields change without recompiling; structural ones (``utd_ratio``,
    ``backup_entropy``) recompile the update once. Unknown names raise `HybridRLError`, and
    so does a change of an init-only field (`hybridrl.agents.spec.init_only`: learning
    rates, network sizes), which the already-built networks and optimizers would ignore.
    """

    values: Mapping[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "set_config"

    def apply(self, learner: Learner) -> Learner:
        config = learner.state.config
        names = {f.name for f in dataclasses.fields(config)}
        unknown = sorted(set(self.values) - names)
        if unknown:
            raise HybridRLError(
                f"set_config: {type(config).__module__}.Config has no field(s) "
                f"{', '.join(unknown)}; fields: {', '.join(sorted(names))}"
            )
        init_only = init_only_fields(config)
        fixed = sorted(
            k
            for k, v in self.values.items()
            if k in init_only and (tuple(v) if isinstance(v, list) else v) != getattr(config, k)
        )
        if fixed:
            raise HybridRLError(
                f"set_config: {type(config).__module__}.Config field(s) {', '.join(fixed)} are "
                "read only when the agent state is built (networks, optimizers), so changing "
                "them at a switch would be ignored; set them in the recipe's config instead"
            )
        # What is left of them restates the value in effect: keep the config's own (a TOML
        # list for a tuple field would otherwise replace a hashable static field).
        changes = {k: v for k, v in self.values.items() if k not in init_only}
        new_config = dataclasses.replace(config, **changes)
        state = dataclasses.replace(learner.state, config=new_config)
        return dataclasses.replace(learner, state=state)


@dataclass(frozen=True)
class ResetOptimizers(Hook):
    """Re-initialise optimizer states (Adam moments and step counts) of the named networks
    (``("actor", "critic")``...) or of every network when ``networks`` is empty."""

    networks: tuple[str, ...] = ()
    kind: ClassVar[str] = "reset_optimizers"

    def apply(self, learner: Learner) -> Learner:
        state = learner.state
        trainable = {
            f.name: getattr(state, f.name)
            for f in dataclasses.fields(state)
            if hasattr(getattr(state, f.name), "opt_state")
        }
        wanted = self.networks or tuple(trainable)
        missing = sorted(set(wanted) - set(trainable))
        if missing:
            raise HybridRLError(
                f"reset_optimizers: the agent state has no network(s) {', '.join(missing)}; "
                f"networks: {', '.join(sorted(trainable))}"
            )
        changes = {
            name: trainable[name].replace(opt_state=trainable[name].tx.init(trainable[name].params))
            for name in wanted
        }
        return dataclasses.replace(learner, state=dataclasses.replace(state, **changes))


@dataclass(frozen=True)
class SwitchAgent(Hook):
    """Update and act with agent ``name`` from now on; its ``State`` must be a base class of
    the current state's (e.g. ``cql``/``calql`` → ``sac``: a CQL state *is* a SAC state).

    No config field is ignored silently: every field of the current config must be one the
    new agent's ``Config`` has (carried and honoured, e.g. ``max_target_backup``), or one
    the current config names in its ``SWITCH_REMOVES`` (the terms that define it on top of
    the new agent, e.g. CQL's penalty); any other field is refused (`HybridRLError`)."""

    name: str = "sac"
    kind: ClassVar[str] = "switch_agent"

    def apply(self, learner: Learner) -> Learner:
        from hybridrl.agents import get_agent

        module = get_agent(self.name)
        if not isinstance(learner.state, module.State):
            raise HybridRLError(
                f"switch_agent: a {type(learner.state).__module__} state cannot be updated by "
                f"'{self.name}' (its State is not a base of the current one)"
            )
        config = learner.state.config
        kept = {f.name for f in dataclasses.fields(module.Config)}
        removed = set(getattr(type(config), "SWITCH_REMOVES", ()))
        ignored = sorted(f.name for f in dataclasses.fields(config) if f.name not in kept | removed)
        if ignored:
            raise HybridRLError(
                f"switch_agent: '{self.name}' does not implement the "
                f"{type(config).__module__}.Config field(s) {', '.join(ignored)}, which would "
                "be ignored silently after the switch"
            )
        return dataclasses.replace(learner, agent_name=self.name)


@dataclass(frozen=True)
class DisableCalibration(Hook):
    """Turn Cal-QL's calibration off: ``enable_calql=False`` and Cal-QL → CQL, which does not
    need Monte-Carlo returns in the batches."""

    kind: ClassVar[str] = "disable_calibration"

    def apply(self, learner: Learner) -> Learner:
        if not hasattr(learner.state.config, "enable_calql"):
            raise HybridRLError(
                f"disable_calibration: agent '{learner.agent_name}' has no calibration"
            )
        learner = SetConfig({"enable_calql": False}).apply(learner)
        if learner.agent_name == "calql":
            learner = dataclasses.replace(learner, agent_name="cql")
        return learner


@dataclass(frozen=True)
class DropOfflineData(Hook):
    """Release the dataset: later phases sample only online data (WSRL retains none)."""

    kind: ClassVar[str] = "drop_offline_data"

    def apply(self, learner: Learner) -> Learner:
        return dataclasses.replace(learner, offline=None)


@dataclass(frozen=True)
class SeedBuffer(Hook):
    """Append the whole dataset to the online buffer (naive fine-tuning of IQL/AWAC/CQL)."""

    kind: ClassVar[str] = "seed_buffer"

    def apply(self, learner: Learner) -> Learner:
        if learner.offline is None or learner.online is None:
            raise HybridRLError("seed_buffer needs a dataset and an online phase")
        keys = set(learner.online.data.extras)
        rows = learner.offline.data
        rows = rows.replace(extras={k: v for k, v in rows.extras.items() if k in keys})
        size = int(learner.offline.size)
        rows = jax.tree_util.tree_map(lambda x: x[:size], rows)
        return dataclasses.replace(learner, online=replay_add(learner.online, rows))


HOOKS: dict[str, type[Hook]] = {
    h.kind: h
    for h in (
        SetConfig,
        ResetOptimizers,
        SwitchAgent,
        DisableCalibration,
        DropOfflineData,
        SeedBuffer,
    )
}


def hook_from_dict(data: Mapping[str, Any]) -> Hook:
    """A hook from ``{"hook": kind, **fields}`` (the inverse of `Hook.to_dict`)."""
    data = dict(data)
    kind = data.pop("hook", None)
    if kind not in HOOKS:
        raise HybridRLError(f"unknown hook '{kind}'; available: {', '.join(sorted(HOOKS))}")
    cls = HOOKS[kind]
    if "networks" in data:
        data["networks"] = tuple(data["networks"])
    return _construct(cls, data, f"hook '{kind}'")


# ------------------------------------------------------------------------------- phases
@dataclass(frozen=True)
class Phase:
    """Base of the phase kinds. ``hooks`` run, in order, when the phase starts."""

    name: str = ""
    hooks: tuple[Hook, ...] = ()
    kind: ClassVar[str] = "phase"

    @property
    def label(self) -> str:
        return self.name or self.kind

    @property
    def env_steps(self) -> int:
        return 0

    def to_dict(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["hooks"] = [h.to_dict() for h in self.hooks]
        return {"phase": self.kind, **_jsonable(fields)}

    def validate(self) -> None:
        pass


SAMPLERS = ("uniform", "return", "advantage")


@dataclass(frozen=True)
class Offline(Phase):
    """``updates`` updates on minibatches of ``batch_size`` dataset transitions.

    Attributes:
        updates: agent updates.
        batch_size: transitions per minibatch.
        sampler: how dataset rows are drawn: "uniform", or trajectory weighting (Hong et al.,
            ICLR 2023) by episode return ("return", RW) or by advantage over a linear V(s0)
            ("advantage", AW); see `hybridrl.training.weighting`.
        sampler_temperature: the softmax temperature α of RW/AW (the paper's 0.1).
    """

    updates: int = 0
    batch_size: int = 256
    sampler: str = "uniform"
    sampler_temperature: float = 0.1
    kind: ClassVar[str] = "offline"

    def validate(self) -> None:
        _positive(self, "updates", self.updates, allow_zero=True)
        _positive(self, "batch_size", self.batch_size)
        _check_sampler(self, self.sampler, self.sampler_temperature)


@dataclass(frozen=True)
class Warmup(Phase):
    """``steps`` env steps with a frozen policy and no updates.

    ``policy``: "frozen" (the current agent's stochastic policy), "frozen_deterministic" or
    "random" (uniform actions).
    """

    steps: int = 0
    policy: str = "frozen"
    kind: ClassVar[str] = "warmup"

    @property
    def env_steps(self) -> int:
        return self.steps

    def validate(self) -> None:
        _positive(self, "steps", self.steps, allow_zero=True)
        if self.policy not in ("frozen", "frozen_deterministic", "random"):
            raise HybridRLError(
                f"phase '{self.label}': policy must be frozen, frozen_deterministic or random, "
                f"got {self.policy!r}"
            )


@dataclass(frozen=True)
class Online(Phase):
    """``steps`` env steps with ``updates_per_step`` agent updates per env step.

    Attributes:
        steps: environment steps (summed over the vector envs).
        updates_per_step: agent updates per environment step (may be fractional). The
            update-to-data ratio of critic steps is this times the agent's ``utd_ratio``.
        offline_ratio: fraction of each batch drawn from the dataset (0: online buffer only;
            0.5: RLPD's symmetric sampling; 1: dataset only). Traced: no recompiles.
        batch_size: transitions per minibatch.
        random_steps: the phase's first env steps use uniform random actions (SAC's
            "start steps", RLPD from scratch).
        update_after: no updates during the phase's first env steps.
        sampler, sampler_temperature: how the dataset's share of each batch is drawn (as in
            `Offline`); a weighted sampler needs ``offline_ratio > 0``. Online rows are
            always uniform.
    """

    steps: int = 0
    updates_per_step: float = 1.0
    offline_ratio: float = 0.0
    batch_size: int = 256
    random_steps: int = 0
    update_after: int = 0
    sampler: str = "uniform"
    sampler_temperature: float = 0.1
    kind: ClassVar[str] = "online"

    @property
    def env_steps(self) -> int:
        return self.steps

    def validate(self) -> None:
        _positive(self, "steps", self.steps, allow_zero=True)
        _positive(self, "batch_size", self.batch_size)
        if not 0.0 <= self.offline_ratio <= 1.0:
            raise HybridRLError(
                f"phase '{self.label}': offline_ratio must be in [0, 1], got {self.offline_ratio}"
            )
        if self.updates_per_step < 0:
            raise HybridRLError(f"phase '{self.label}': updates_per_step must be >= 0")
        _check_sampler(self, self.sampler, self.sampler_temperature)
        if self.sampler != "uniform" and self.offline_ratio == 0:
            raise HybridRLError(
                f"phase '{self.label}': sampler {self.sampler!r} weights dataset rows, but "
                "the phase samples none (offline_ratio is 0)"
            )


@dataclass(frozen=True)
class OnPolicy(Phase):
    """``steps`` env steps of on-policy learning (PPO and its family): rollouts of
    ``rollout_steps`` steps per vector env, each followed by one agent update on the last
    ``keep_batches`` rollouts (1: plain PPO; b > 1: PPO with reused data, PROPS).

    The update's epochs and minibatches are the agent's (``update_epochs``,
    ``num_minibatches`` in its config; a `SetConfig` hook changes them per phase). Checkpoints
    fall on the first rollout boundary at or after each multiple of ``checkpoint_interval``
    env steps; a phase whose steps are not a whole number of rollouts ends with a shorter
    one.

    Attributes:
        steps: environment steps (summed over the vector envs).
        rollout_steps: env steps per vector env between updates (CleanRL's ``num_steps``).
        keep_batches: rollouts each update learns from, the newest last (b).
        anneal_lr: decay the agent's learning rate linearly to 0 over this phase's updates
            (CleanRL's ``anneal_lr``): sets the agent config's ``anneal_iterations`` to the
            phase's number of rollouts, counted from the agent's first update.
        sampling_error_interval: log the agent's sampling error of the kept data (the PROPS
            paper's metric) before every this many updates; 0: never. Its cost is a
            maximum-likelihood fit per measurement.
        offline_ratio: the dataset's share of the rows of each update, for agents that
            declare ``needs_offline_rows`` (HNPG): with B rollout rows, the runner samples
            ``round(B r / (1 - r))`` dataset transitions uniformly (with replacement, fresh
            for every update) and passes them to ``update(state, batch, key, offline)``.
            0.5: as many offline rows as online ones (HNPG's official batch). 0: none, and
            an agent that needs them is refused; > 0 with an agent that does not is refused
            too. Must be below 1.
    """

    steps: int = 0
    rollout_steps: int = 2048
    keep_batches: int = 1
    anneal_lr: bool = False
    sampling_error_interval: int = 0
    offline_ratio: float = 0.0
    kind: ClassVar[str] = "on_policy"

    @property
    def env_steps(self) -> int:
        return self.steps

    def validate(self) -> None:
        _positive(self, "steps", self.steps, allow_zero=True)
        _positive(self, "rollout_steps", self.rollout_steps)
        _positive(self, "keep_batches", self.keep_batches)
        _positive(self, "sampling_error_interval", self.sampling_error_interval, allow_zero=True)
        if not 0.0 <= self.offline_ratio < 1.0:
            raise HybridRLError(
                f"phase '{self.label}': offline_ratio must be in [0, 1), got {self.offline_ratio}"
            )

    def offline_rows(self, online_rows: int) -> int:
        """Dataset rows to add to ``online_rows`` rollout rows (``offline_ratio``)."""
        r = self.offline_ratio
        return round(online_rows * r / (1.0 - r)) if r > 0 else 0


PHASES: dict[str, type[Phase]] = {p.kind: p for p in (Offline, Warmup, Online, OnPolicy)}


def phase_from_dict(data: Mapping[str, Any]) -> Phase:
    """A phase from ``{"phase": kind, **fields, "hooks": [...]}`` (inverse of `to_dict`)."""
    data = dict(data)
    kind = data.pop("phase", None)
    if kind not in PHASES:
        raise HybridRLError(f"unknown phase kind '{kind}'; available: {', '.join(PHASES)}")
    data["hooks"] = tuple(hook_from_dict(h) for h in data.get("hooks", ()))
    phase = _construct(PHASES[kind], data, f"phase '{kind}'")
    phase.validate()
    return phase


# ------------------------------------------------------------------------------ helpers
def _construct(cls: type, data: dict[str, Any], what: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise HybridRLError(
            f"{what}: unknown field(s) {', '.join(unknown)}; fields: {', '.join(sorted(names))}"
        )
    return cls(**data)


def _positive(phase: Phase, name: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise HybridRLError(f"phase '{phase.label}': {name} must be positive, got {value}")


def _check_sampler(phase: Phase, sampler: str, temperature: float) -> None:
    if sampler not in SAMPLERS:
        raise HybridRLError(
            f"phase '{phase.label}': unknown sampler {sampler!r}; one of {', '.join(SAMPLERS)}"
        )
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise HybridRLError(
            f"phase '{phase.label}': sampler_temperature must be a number, got {temperature!r}"
        )
    if not (temperature > 0 and np.isfinite(temperature)):
        raise HybridRLError(
            f"phase '{phase.label}': sampler_temperature must be > 0, got {temperature}"
        )


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x
