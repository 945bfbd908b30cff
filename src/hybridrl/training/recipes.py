"""Offline-to-online recipes: an agent, its config and a list of phases (presets, not code).

Every recipe is a `Recipe` value built from the same phases and hooks users have
(`hybridrl.training.phases`), so composing a new one needs no library edits: build a `Recipe`
in Python, or write it in TOML/JSON and pass the file to ``hybridrl run --recipe FILE``.

The registered presets, with the paper each follows and our deviations:

- ``iql_finetune``, ``awac_finetune``, ``cql_finetune`` — "naive" fine-tuning: pretrain
  offline, append the dataset to the replay buffer (`SeedBuffer`) and keep training the same
  agent online on uniform batches of that buffer (IQL: Kostrikov et al., 2022, §5.3; AWAC:
  Nair et al., 2020; CQL as fine-tuned in the Cal-QL paper's baselines).
- ``calql`` — Cal-QL (Nakamoto et al., 2023): Cal-QL pretraining, then online with 50/50
  batches of offline and online data, the calibration kept on (online Monte-Carlo returns are
  computed per episode, as the official code does).
- ``rlpd`` — RLPD (Ball et al., 2023): no pretraining; SAC with 10 LayerNorm critics, a random
  subset of 2 in the target, update-to-data ratio 20, symmetric (50/50) sampling of offline and
  online data, random actions for the first steps.
- ``wsrl`` — WSRL (Zhou et al., 2024): Cal-QL pretraining with 10 LayerNorm critics (subset 2;
  the conservative penalty on a random subset of 2 per step) and a LayerNorm actor, K warm-up
  steps with the frozen pretrained policy, then SAC fine-tuning with **no** offline data
  retained, UTD 4 and a single-sample target backup (official scripts: ``--utd 4
  --batch_size 1024 --warmup_steps 5000``; the official AntMaze config backs up the max over
  10 samples instead). ``wsrl_cql`` pretrains with CQL instead, as the official scripts do
  on MuJoCo locomotion (Monte-Carlo returns are hard to estimate there).
- ``sac`` — online SAC from scratch (a baseline with no data).
- ``riql`` — RIQL (Yang et al., 2024), robust IQL under data corruption, offline only:
  `hybridrl.training.riql`.
- ``rebrac`` (also ``offline:rebrac``) and ``rebrac_finetune`` — ReBRAC (Tarasov et al.,
  2023) offline and offline-to-online: `hybridrl.training.rebrac`.
- ``ro2o`` (and ``offline:ro2o``) — RO2O (Wen et al., 2024): smooth, uncertainty-penalised
  SAC-N pretraining, frozen-policy warm-up without the dataset, SAC-N fine-tuning:
  `hybridrl.training.ro2o`.
- ``famo2o`` — FamO2O over IQL (Wang et al., 2023): a β-conditioned family offline, a
  balance model choosing β per state online: `hybridrl.training.famo2o`.

``calql``, ``rlpd``, ``wsrl`` and ``wsrl_cql`` take the official sparse-reward (AntMaze)
settings on a sparse-reward dataset (``reward_kind="auto"``; their ``sparse_variant``, also
registered as ``calql_sparse``, ``rlpd_sparse``, ``wsrl_sparse``, ``wsrl_cql_sparse``): see
`hybridrl.training.sparse`.

Budgets: the presets carry the papers' step counts for MuJoCo (1M pretraining updates, ...);
`Recipe.with_budget` rescales the phases (the CLI's ``--offline-updates``, ``--warmup-steps``,
``--online-steps``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import numbers
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridrl.agents import get_agent
from hybridrl.training.phases import (
    DropOfflineData,
    Offline,
    Online,
    OnPolicy,
    Phase,
    SeedBuffer,
    SetConfig,
    SwitchAgent,
    Warmup,
    phase_from_dict,
)
from hybridrl.training.sparse import (
    CALQL,
    REWARD_KINDS,
    RLPD,
    WSRL,
    sparse_variant,
    with_sparse_variant,
)
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


# ------------------------------------------------------------------------------- presets
ENSEMBLE_10 = {"num_qs": 10, "num_min_qs": 2, "critic_layer_norm": True}


def _naive(agent: str, description: str, **config: Any) -> Recipe:
    return Recipe(
        name=f"{agent}_finetune",
        agent=agent,
        config=config,
        normalize_observations=agent in ("iql", "awac"),
        reward_normalization="auto" if agent == "iql" else "none",
        phases=(
            Offline(name="pretrain", updates=1_000_000),
            Online(name="finetune", steps=1_000_000, hooks=(SeedBuffer(),)),
        ),
        description=description,
    )


def calql() -> Recipe:
    return Recipe(
        name="calql",
        agent="calql",
        phases=(
            Offline(name="pretrain", updates=1_000_000),
            Online(name="finetune", steps=1_000_000, offline_ratio=0.5),
        ),
        description="Cal-QL pretraining, online with 50/50 offline/online batches "
        "(Nakamoto et al., 2023)",
    )


def rlpd() -> Recipe:
    return Recipe(
        name="rlpd",
        agent="sac",
        # RLPD's SACLearner: target entropy -|A|/2; train_finetuning.py: --start_training
        # 5000 (random actions and no updates before it)
        config={**ENSEMBLE_10, "utd_ratio": 20, "target_entropy_scale": 0.5},
        phases=(
            Online(
                name="online",
                steps=1_000_000,
                offline_ratio=0.5,
                random_steps=5000,
                update_after=5000,
            ),
        ),
        description="RLPD: SAC, 10 LayerNorm critics (subset 2), UTD 20, symmetric sampling, "
        "no pretraining (Ball et al., 2023)",
    )


# WSRL (zhouzypaul/wsrl @ 891ee35): pretraining with --use_redq (ensemble_config.py L4-12) and
# fine-tuning (wsrl_config.py L9-13) both use 10 LayerNorm critics with subsets of 2 and a
# LayerNorm actor. The fine-tuning SACAgent's max_target_backup is set by the task's config,
# not carried from pretraining (train_config.py: True in antmaze_wsrl L73, default False,
# sac.py L480, for adroit, kitchen and locomotion): the switch states it explicitly.
# Its agents' policies have no log-std offset and learn at 1e-4 (sac_config.py L37-51).
WSRL_ENSEMBLE = {
    **ENSEMBLE_10,
    "actor_layer_norm": True,
    "actor_log_std_offset": 0.0,
    "actor_lr": 1e-4,
    "temperature_lr": 1e-4,
}


def _wsrl(pretrain_agent: str) -> Recipe:
    return Recipe(
        name="wsrl" if pretrain_agent == "calql" else f"wsrl_{pretrain_agent}",
        agent=pretrain_agent,
        # CQL pretraining backs up the max over 10 samples (wsrl cql_config.py L12; Cal-QL's
        # default already does)
        config={**WSRL_ENSEMBLE, "max_target_backup": True},
        phases=(
            Offline(name="pretrain", updates=1_000_000),
            Warmup(name="warmup", steps=5000, hooks=(DropOfflineData(),)),
            Online(
                name="finetune",
                steps=1_000_000,
                hooks=(
                    SwitchAgent("sac"),
                    SetConfig({"utd_ratio": 4, "max_target_backup": False}),
                ),
            ),
        ),
        description=f"WSRL: {pretrain_agent} pretraining, frozen-policy warm-up, SAC "
        "fine-tuning without offline data (Zhou et al., 2024)",
    )


def sac_scratch() -> Recipe:
    return Recipe(
        name="sac",
        agent="sac",
        # classic SAC (Haarnoja et al., 2018): the actor maximises the min of its 2 critics
        config={"actor_q": "min"},
        phases=(Online(name="online", steps=1_000_000, random_steps=5000),),
        description="online SAC from scratch (no data)",
    )


def ppo() -> Recipe:
    return Recipe(
        name="ppo",
        agent="ppo",
        phases=(OnPolicy(name="online", steps=1_000_000, rollout_steps=2048, anneal_lr=True),),
        description="PPO from scratch, CleanRL's ppo_continuous_action.py defaults (Schulman "
        "et al., 2017)",
    )


def ppo_discrete() -> Recipe:
    # CleanRL ppo.py: 4 envs x 128 steps (pass --num-envs 4), 500k steps, lr 2.5e-4 annealed,
    # 4 epochs x 4 minibatches, entropy 0.01, no normalisation.
    return Recipe(
        name="ppo_discrete",
        agent="ppo",
        config={
            "learning_rate": 2.5e-4,
            "update_epochs": 4,
            "num_minibatches": 4,
            "ent_coef": 0.01,
            "normalize_observations": False,
            "normalize_rewards": False,
        },
        phases=(OnPolicy(name="online", steps=500_000, rollout_steps=128, anneal_lr=True),),
        description="PPO from scratch, CleanRL's ppo.py defaults for discrete classic control "
        "(use --num-envs 4 as CleanRL does)",
    )


# PROPS (Corrado & Hanna, arXiv 2311.08290), NicholasCorrado/PPOROS @ a0c8708
# (PROPS/ppo_props_continuous.py argparse): PPO lr 1e-4 annealed, entropy 0.01, target-KL 0.03,
# n = 2048 steps, b = 2 kept rollouts, 1M steps. Sampling error every 16 updates: PPOROS's
# se_freq = num_updates // 30 (30 measurements per run), each a 2,000-step fit of an output
# layer on frozen features (about 2 s on a CPU for 4,096 rows; docs/agents/props.md).
_PPOROS_TARGET = {"learning_rate": 1e-4, "ent_coef": 0.01, "target_kl": 0.03}


def _ppo_reuse_phase() -> OnPolicy:
    return OnPolicy(
        name="online",
        steps=1_000_000,
        rollout_steps=2048,
        keep_batches=2,
        anneal_lr=True,
        sampling_error_interval=16,
    )


def ppo_buffer() -> Recipe:
    return Recipe(
        name="ppo_buffer",
        agent="ppo",
        config=dict(_PPOROS_TARGET),
        phases=(_ppo_reuse_phase(),),
        description="PPO on the last 2 rollouts, on-policy sampling (the PROPS paper's "
        "PPO-Buffer baseline, PPOROS defaults)",
    )


def props() -> Recipe:
    return Recipe(
        name="props",
        agent="props",
        phases=(_ppo_reuse_phase(),),
        description="PPO on the last 2 rollouts collected by PROPS's adaptive behaviour "
        "policy (Corrado & Hanna, 2024; PPOROS defaults)",
    )


RECIPES: dict[str, Callable[[], Recipe]] = {
    "iql_finetune": lambda: _naive(
        "iql", "IQL pretraining, then online with the dataset in the replay buffer"
    ),
    "awac_finetune": lambda: _naive(
        "awac", "AWAC pretraining, then online with the dataset in the replay buffer"
    ),
    "cql_finetune": lambda: _naive(
        "cql", "CQL pretraining, then online with the dataset in the replay buffer"
    ),
    "calql": lambda: with_sparse_variant(calql(), CALQL),
    "calql_sparse": lambda: sparse_variant(calql(), CALQL),
    "rlpd": lambda: with_sparse_variant(rlpd(), RLPD),
    "rlpd_sparse": lambda: sparse_variant(rlpd(), RLPD),
    "wsrl": lambda: with_sparse_variant(_wsrl("calql"), WSRL),
    "wsrl_sparse": lambda: sparse_variant(_wsrl("calql"), WSRL),
    # The official WSRL pretrains with Cal-QL on AntMaze; its AntMaze CQL config (the same
    # train_config.py antmaze_cql, used by its CQL baseline) with WSRL's fine-tuning.
    "wsrl_cql": lambda: with_sparse_variant(_wsrl("cql"), WSRL),
    "wsrl_cql_sparse": lambda: sparse_variant(_wsrl("cql"), WSRL),
    "sac": sac_scratch,
    "ppo": ppo,
    "ppo_discrete": ppo_discrete,
    "ppo_buffer": ppo_buffer,
    "props": props,
    "npg": lambda: _hnpg("npg"),
    "hnpg": lambda: _hnpg("hnpg"),
    "riql": lambda: _riql(),
    "rebrac": lambda: _rebrac("rebrac"),
    "rebrac_finetune": lambda: _rebrac("rebrac_finetune"),
    "ro2o": lambda: _ro2o("ro2o"),
    "famo2o": lambda: _famo2o(),
}


def _famo2o() -> Recipe:
    from hybridrl.training.famo2o import famo2o  # that module imports Recipe from this one

    return famo2o()

def _hnpg(name: str) -> Recipe:
    from hybridrl.training import hnpg  # that module imports Recipe from this one

    return hnpg.hnpg() if name == "hnpg" else hnpg.npg()


def _riql() -> Recipe:
    from hybridrl.training.riql import riql  # that module imports Recipe from this one

    return riql()


def _rebrac(name: str, **kwargs: Any) -> Recipe:
    from hybridrl.training import rebrac  # that module imports Recipe from this one

    return getattr(rebrac, name)(**kwargs)  # type: ignore[no-any-return]


def _ro2o(name: str, **kwargs: Any) -> Recipe:
    from hybridrl.training import ro2o  # that module imports Recipe from this one

    return getattr(ro2o, name)(**kwargs)  # type: ignore[no-any-return]


def offline_recipe(
    agent: str, updates: int = 1_000_000, reward_normalization: str | None = None
) -> Recipe:
    """Offline training only (``offline:AGENT`` on the command line): the validation runs of
    offline RL. TD3+BC, IQL and AWAC standardise observations, as their papers do (IQL and
    AWAC for stability on Pendulum-like tasks). ``reward_normalization`` defaults to "auto"
    for IQL (the official scaling on locomotion datasets, chosen from the dataset's metadata)
    and "none" otherwise; an explicit "return_range" is IQL's MuJoCo reward scaling on any
    dataset (see `Recipe`) and adds ``_rn`` to the name so that reports keep the two apart."""
    if agent == "rebrac" and reward_normalization in (None, "none"):
        return _rebrac("rebrac", updates=updates)  # its official batch of 1024
    if agent == "ro2o" and reward_normalization in (None, "none"):
        return _ro2o("ro2o_offline", updates=updates)  # standardised states, as official
    if reward_normalization is None:
        reward_normalization = "auto" if agent == "iql" else "none"
    suffix = "_rn" if reward_normalization == "return_range" else ""
    recipe = Recipe(
        name=f"{agent}_offline{suffix}",
        agent=agent,
        phases=(Offline(name="offline", updates=updates),),
        normalize_observations=agent in ("td3_bc", "iql", "awac"),
        reward_normalization=reward_normalization,
        description=f"{agent} offline only",
    )
    recipe.validate()
    return recipe


def get_recipe(name_or_path: str) -> Recipe:
    """A registered recipe by name, ``offline:AGENT`` (offline training only), or a recipe read
    from a ``.toml``/``.json`` file."""
    if name_or_path.startswith("offline:"):
        return offline_recipe(name_or_path.split(":", 1)[1])
    path = Path(name_or_path)
    if path.suffix in (".toml", ".json"):
        if not path.exists():
            raise HybridRLError(f"recipe file {path} does not exist")
        try:
            text = path.read_text()
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise HybridRLError(f"recipe file {path}: {exc}") from exc
        return Recipe.from_dict(data, source=f"recipe file {path}")
    if name_or_path not in RECIPES:
        raise HybridRLError(
            f"unknown recipe '{name_or_path}'; available: {', '.join(sorted(RECIPES))}, "
            "offline:AGENT, or a .toml/.json recipe file"
        )
    recipe = RECIPES[name_or_path]()
    recipe.validate()
    return recipe
