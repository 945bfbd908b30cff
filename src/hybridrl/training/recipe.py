"""`Recipe`: how to train, as data: an agent, its config overrides and a list of phases
(`hybridrl.training.phases`), with the reward and observation transforms the run applies, the
budget rescaling (`Recipe.with_budget` and its `BUDGET_RULES`) and the dict/TOML/JSON round
trip. The registered presets are in `hybridrl.training.recipes`.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hybridrl.agents import get_agent
from hybridrl.training.phases import (
    DropOfflineData,
    Offline,
    Online,
    OnPolicy,
    Phase,
    SeedBuffer,
    Warmup,
    phase_from_dict,
)
from hybridrl.training.sparse import REWARD_KINDS
from hybridrl.types import HybridRLError

REWARD_NORMALIZATIONS = ("none", "return_range", "auto")
OBSERVATION_STATS = ("observations", "observations_and_next")
# Datasets whose official IQL reward scaling is "return_range" (ikostrikov/implicit_q_learning
# @ 09d7002 train_offline.py L72-74: halfcheetah, walker2d and hopper, i.e. MuJoCo locomotion).
LOCOMOTION_TASKS = ("halfcheetah", "walker2d", "hopper")


def resolve_reward_normalization(setting: str, env_id: str | None, name: str | None) -> str:
    """The normalization in effect: ``setting``, or for "auto" "return_range" when the
    dataset's env id or name (its metadata) names a locomotion task, else "none"."""
    if setting != "auto":
        return setting
    text = f"{env_id or ''} {name or ''}".lower()
    return "return_range" if any(t in text for t in LOCOMOTION_TASKS) else "none"


@dataclass(frozen=True)
class Recipe:
    """How to train: an agent, config overrides and phases.

    Attributes:
        name: label of the recipe (groups runs in reports).
        agent: registry name of the agent initialised at the start (`hybridrl.agents`).
        config: overrides of the agent's ``Config`` fields.
        phases: the phases, run in order.
        normalize_observations: standardise observations with the dataset's mean/std (frozen
            at the start; online observations use the same statistics).
        observation_stats: how those statistics are computed: "observations" (the default:
            over the observations, std floored at 1e-3) or "observations_and_next" (RIQL:
            over observations and next observations together, std + 1e-3).
        reward_scale, reward_bias: ``r' = scale * r + bias`` for every transition the agent
            learns from (offline and online); scores are always reported on the env's reward.
        reward_normalization: a data-dependent factor applied before ``reward_scale``:
            "none", or "return_range", ``r * 1000 / (max_i R_i - min_i R_i)`` over the
            dataset's episode returns ``R_i``: IQL's MuJoCo setting (Kostrikov et al., 2022,
            appendix B; the official ``train_offline.py`` L72-74), which keeps the
            advantages in ``exp(beta * A)`` on one scale across tasks; or "auto" (the IQL
            presets' default): "return_range" when the dataset's metadata (env id or name)
            names halfcheetah, walker2d or hopper, as the official script decides from the
            env name, else "none" (`resolve_reward_normalization`; ``run.json`` records the
            choice in ``reward_transform``).
        reward_kind: the kind of rewards the recipe is for: "dense" (the default), "sparse"
            (the recipe is a sparse-reward configuration: Cal-QL's sparse Monte-Carlo rule is
            on; with a ``sparse_variant``, that variant runs instead), or "auto": the
            ``sparse_variant`` when the dataset's metadata and rewards say sparse
            (`hybridrl.training.sparse.dataset_reward_kind`), else this recipe. ``run.json``
            records the choice and its reason (``reward_kind``).
        sparse_variant: the recipe to run on sparse-reward data (its own ``reward_kind`` is
            "sparse"), or None.
        budget_rules: names of `BUDGET_RULES` that `with_budget` applies after changing
            the phase lengths, for config values computed from them (``rebrac_actor_bc_decay``:
            ReBRAC's online β_a decay spans the online phase). Data, so a recipe read back from
            TOML or ``run.json`` re-syncs them as the preset does.
        description: one line for ``hybridrl recipes``.
    """

    name: str
    agent: str
    phases: tuple[Phase, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    normalize_observations: bool = False
    observation_stats: str = "observations"
    reward_scale: float = 1.0
    reward_bias: float = 0.0
    reward_normalization: str = "none"
    reward_kind: str = "dense"
    sparse_variant: Recipe | None = None
    budget_rules: tuple[str, ...] = ()
    description: str = ""

    def validate(self) -> None:
        """Check names and phases before any work starts (`HybridRLError` otherwise)."""
        module = get_agent(self.agent)
        names = {f.name for f in dataclasses.fields(module.Config)}
        unknown = sorted(set(self.config) - names)
        if unknown:
            raise HybridRLError(
                f"recipe '{self.name}': {self.agent}.Config has no field(s) {', '.join(unknown)}"
            )
        if not self.phases:
            raise HybridRLError(f"recipe '{self.name}' has no phases")
        for label in ("reward_scale", "reward_bias"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise HybridRLError(
                    f"recipe '{self.name}': {label} must be a number, got {value!r}"
                )
            if not math.isfinite(value):
                raise HybridRLError(f"recipe '{self.name}': {label} must be finite, got {value}")
        if self.reward_normalization not in REWARD_NORMALIZATIONS:
            raise HybridRLError(
                f"recipe '{self.name}': unknown reward_normalization "
                f"{self.reward_normalization!r}; one of {', '.join(REWARD_NORMALIZATIONS)}"
            )
        if self.reward_normalization == "return_range" and not self.needs_dataset:
            raise HybridRLError(
                f"recipe '{self.name}': reward_normalization={self.reward_normalization!r} "
                "is computed from a dataset, and the recipe uses none"
            )
        unknown_rules = sorted(set(self.budget_rules) - set(BUDGET_RULES))
        if unknown_rules:
            raise HybridRLError(
                f"recipe '{self.name}': unknown budget_rules {', '.join(unknown_rules)}; "
                f"known: {', '.join(sorted(BUDGET_RULES))}"
            )
        if self.observation_stats not in OBSERVATION_STATS:
            raise HybridRLError(
                f"recipe '{self.name}': unknown observation_stats {self.observation_stats!r}; "
                f"one of {', '.join(OBSERVATION_STATS)}"
            )
        if self.reward_kind not in REWARD_KINDS:
            raise HybridRLError(
                f"recipe '{self.name}': unknown reward_kind {self.reward_kind!r}; one of "
                f"{', '.join(REWARD_KINDS)}"
            )
        variant = self.sparse_variant
        if variant is not None:
            if variant.reward_kind != "sparse" or variant.sparse_variant is not None:
                raise HybridRLError(
                    f"recipe '{self.name}': its sparse_variant must have reward_kind 'sparse' "
                    "and no sparse_variant of its own"
                )
            variant.validate()
        dropped = False
        for phase in self.phases:
            phase.validate()
            for hook in phase.hooks:
                if dropped and isinstance(hook, SeedBuffer):
                    raise HybridRLError(
                        f"recipe '{self.name}': phase '{phase.label}' seeds the buffer with "
                        "the dataset after drop_offline_data"
                    )
                dropped = dropped or isinstance(hook, DropOfflineData)
            uses_data = isinstance(phase, Offline) or (
                isinstance(phase, Online | OnPolicy) and phase.offline_ratio > 0
            )
            if dropped and uses_data:
                raise HybridRLError(
                    f"recipe '{self.name}': phase '{phase.label}' trains on the dataset "
                    "after drop_offline_data"
                )

    @property
    def needs_dataset(self) -> bool:
        return any(
            isinstance(p, Offline)
            or (isinstance(p, Online | OnPolicy) and p.offline_ratio > 0)
            or any(isinstance(h, SeedBuffer) for h in p.hooks)
            for p in self.phases
        )

    @property
    def env_steps(self) -> int:
        return sum(p.env_steps for p in self.phases)

    def for_reward_kind(self, kind: str) -> Recipe:
        """The recipe that runs on data of reward kind ``kind`` ("dense" or "sparse"): the
        ``sparse_variant`` for "sparse" when there is one, else this recipe with ``kind``."""
        if kind not in ("dense", "sparse"):
            raise HybridRLError(f"reward kind must be 'dense' or 'sparse', got {kind!r}")
        if kind == "sparse" and self.sparse_variant is not None:
            return self.sparse_variant
        return dataclasses.replace(self, reward_kind=kind, sparse_variant=None)

    def with_reward_kind(self, setting: str) -> Recipe:
        """The recipe with ``reward_kind`` set ("auto", "dense" or "sparse"; checked)."""
        recipe = dataclasses.replace(self, reward_kind=setting)
        recipe.validate()
        return recipe

    def agent_config(self) -> Any:
        """The agent's ``Config`` with this recipe's overrides."""
        module = get_agent(self.agent)
        overrides = {
            k: tuple(v) if isinstance(v, list) else v for k, v in dict(self.config).items()
        }
        return module.Config(**overrides)

    def with_budget(
        self,
        *,
        offline_updates: int | None = None,
        warmup_steps: int | None = None,
        online_steps: int | None = None,
        random_steps: int | None = None,
        on_policy_steps: int | None = None,
    ) -> Recipe:
        """The recipe with every offline/warm-up/online/on-policy phase's length replaced
        (the random and no-update prefixes of online phases are capped at the new length).

        ``random_steps`` replaces those prefixes where a phase has one (RLPD's 5,000 random
        steps before any update): a short budget would otherwise be all prefix. A config's
        ``actor_lr_decay_steps`` equal to the recipe's offline updates (a schedule over the
        offline training, as ``riql`` sets) follows ``offline_updates``."""
        config = dict(self.config)
        offline = [p for p in self.phases if isinstance(p, Offline)]
        total = sum(p.updates for p in offline)
        if offline_updates is not None and total and config.get("actor_lr_decay_steps") == total:
            config["actor_lr_decay_steps"] = offline_updates * len(offline)
        phases = []
        for p in self.phases:
            if isinstance(p, Offline) and offline_updates is not None:
                p = dataclasses.replace(p, updates=offline_updates)
            elif isinstance(p, Warmup) and warmup_steps is not None:
                p = dataclasses.replace(p, steps=warmup_steps)
            elif isinstance(p, OnPolicy) and on_policy_steps is not None:
                p = dataclasses.replace(p, steps=on_policy_steps)
            elif isinstance(p, Online):
                if random_steps is not None:
                    p = dataclasses.replace(
                        p,
                        random_steps=random_steps if p.random_steps else 0,
                        update_after=random_steps if p.update_after else 0,
                    )
                steps = p.steps if online_steps is None else online_steps
                p = dataclasses.replace(
                    p,
                    steps=steps,
                    random_steps=min(p.random_steps, steps),
                    update_after=min(p.update_after, steps),
                )
            phases.append(p)
        variant = self.sparse_variant
        if variant is not None:
            variant = variant.with_budget(
                offline_updates=offline_updates,
                warmup_steps=warmup_steps,
                online_steps=online_steps,
                random_steps=random_steps,
                on_policy_steps=on_policy_steps,
            )
        recipe = dataclasses.replace(
            self, phases=tuple(phases), config=config, sparse_variant=variant
        )
        for rule in self.budget_rules:
            recipe = budget_rule(rule)(recipe)
        return recipe

    def with_config(self, **overrides: Any) -> Recipe:
        """The recipe with agent config overrides (its sparse variant's too: an explicit
        value wins over the preset's on either kind of data)."""
        variant = self.sparse_variant
        return dataclasses.replace(
            self,
            config={**dict(self.config), **overrides},
            sparse_variant=None if variant is None else variant.with_config(**overrides),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "agent": self.agent,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in self.config.items()},
            "normalize_observations": self.normalize_observations,
            "observation_stats": self.observation_stats,
            # float(): a NumPy scalar (a scale computed from data) is not JSON.
            "reward_scale": float(self.reward_scale),
            "reward_bias": float(self.reward_bias),
            "reward_normalization": self.reward_normalization,
            "reward_kind": self.reward_kind,
            "budget_rules": list(self.budget_rules),
            "description": self.description,
            "phases": [p.to_dict() for p in self.phases],
        }
        if self.sparse_variant is not None:
            out["sparse_variant"] = self.sparse_variant.to_dict()
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any], *, source: str = "recipe") -> Recipe:
        data = dict(data)
        try:
            phases = tuple(phase_from_dict(p) for p in data.pop("phases"))
            name, agent = data.pop("name"), data.pop("agent")
        except KeyError as exc:
            raise HybridRLError(f"{source}: missing field {exc.args[0]!r}") from None
        names = {f.name for f in dataclasses.fields(Recipe)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise HybridRLError(f"{source}: unknown field(s) {', '.join(unknown)}")
        if data.get("sparse_variant") is not None:
            data["sparse_variant"] = Recipe.from_dict(
                data["sparse_variant"], source=f"{source} (sparse_variant)"
            )
        if "budget_rules" in data:
            rules = data["budget_rules"]
            if isinstance(rules, str) or not all(isinstance(r, str) for r in rules):
                raise HybridRLError(f"{source}: budget_rules must be a list of names")
            data["budget_rules"] = tuple(rules)
        recipe = Recipe(name=name, agent=agent, phases=phases, **data)
        recipe.validate()
        return recipe


# The rules a recipe's ``budget_rules`` may name: ``module:function`` of a ``Recipe ->
# Recipe``, imported when used (the modules import `Recipe` from this one).
BUDGET_RULES: dict[str, str] = {
    "rebrac_actor_bc_decay": "hybridrl.training.rebrac:sync_decay",
}


def budget_rule(name: str) -> Callable[[Recipe], Recipe]:
    """The function a ``budget_rules`` name stands for."""
    module, _, function = BUDGET_RULES[name].partition(":")
    rule: Callable[[Recipe], Recipe] = getattr(importlib.import_module(module), function)
    return rule
