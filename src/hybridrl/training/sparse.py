"""The official sparse-reward settings of the Cal-QL, RLPD and WSRL presets, and how a run
picks them from its dataset.

The official code runs goal-reaching tasks with sparse rewards (AntMaze: 1 at the goal, 0
elsewhere; here PointMaze, the same 0/1 reward) with other settings than MuJoCo locomotion:
the rewards shifted (and scaled), no entropy term in the TD backup, and CQL's Lagrange form
with its target gap. The presets ``calql``, ``rlpd``, ``wsrl`` and ``wsrl_cql`` carry these as
their ``sparse_variant`` (registered on their own as ``calql_sparse``, ``rlpd_sparse``,
``wsrl_sparse``, ``wsrl_cql_sparse``) and have ``reward_kind="auto"``: a run uses the variant
when its dataset is of a sparse-reward kind (`dataset_reward_kind`: the dataset's env id or
name names antmaze, pointmaze or maze2d, as the official code decides from the env name, and
its rewards are the 0/1 goal rewards the settings assume), the preset itself otherwise.
``reward_kind="dense"`` or ``"sparse"`` forces the choice (``hybridrl run --reward-kind``).
``run.json`` records the choice and its reason under ``reward_kind``; the recipe in effect
(with its reward transform and config) is the one in its fingerprint.

A recipe whose reward kind in effect is "sparse" also turns on Cal-QL's sparse Monte-Carlo
rule (`RunSettings.mc_sparse_reward`): both official codes give a failed trajectory the
value of failing forever (nakamotoo/Cal-QL @ ac6eafe ``JaxCQL/replay_buffer.py`` L109-110,
L279-288; zhouzypaul/wsrl @ 891ee35 ``wsrl/envs/env_common.py`` L85-107, L194-201).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridrl.training.phases import SetConfig
from hybridrl.types import HybridRLError

if TYPE_CHECKING:
    from hybridrl.data.dataset import Dataset
    from hybridrl.training.recipes import Recipe

REWARD_KINDS = ("auto", "dense", "sparse")
# Tasks whose official configs are the sparse ones (WSRL env_common.py L85-107: "antmaze";
# Cal-QL replay_buffer.py L109: "antmaze"; RLPD train_finetuning.py L135, L192: "antmaze"),
# with the PointMaze/maze2d family, whose sparse reward is the same 0/1 goal reward.
SPARSE_TASKS = ("antmaze", "pointmaze", "maze2d")


@dataclass(frozen=True)
class SparseSettings:
    """What a preset changes on sparse-reward data.

    Attributes:
        reward_scale, reward_bias: ``r' = scale * r + bias`` (the official ``reward_scale``
            and ``reward_bias`` flags; RLPD's ``rewards -= 1``).
        config: agent config values from the start (pretraining).
        finetune: values the fine-tuning phase's `SetConfig` states (WSRL's SAC).
        summary: one line for the variant's description.
    """

    reward_scale: float = 1.0
    reward_bias: float = 0.0
    config: Mapping[str, Any] = field(default_factory=dict)
    finetune: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""


# nakamotoo/Cal-QL @ ac6eafe scripts/run_antmaze.sh L13-15, L25-26: cql_min_q_weight 5,
# cql_target_action_gap 0.8, cql_lagrange True, reward_scale 10, reward_bias -5;
# JaxCQL/conservative_sac.py L28, L39: backup_entropy False, cql_max_target_backup True (the
# defaults, stated so that the preset does not follow a change of ours).
CALQL = SparseSettings(
    reward_scale=10.0,
    reward_bias=-5.0,
    config={
        "lagrange": True,
        "target_action_gap": 0.8,
        "cql_alpha": 5.0,
        "backup_entropy": False,
        "max_target_backup": True,
    },
    summary="Cal-QL's AntMaze settings: rewards x10 - 5, Lagrange CQL with gap 0.8",
)

# ikostrikov/rlpd @ c90fd4b README.md L33-40 (AntMaze): --config.backup_entropy=False,
# --config.hidden_dims="(256, 256, 256)", --config.num_min_qs=1 (UTD 20, start_training 5000
# as the preset); train_finetuning.py L135-136, L192-193: rewards - 1 on every batch.
RLPD = SparseSettings(
    reward_bias=-1.0,
    # hidden_dims as a list: the form a recipe's config takes after a JSON/TOML round trip
    config={"backup_entropy": False, "hidden_dims": [256, 256, 256], "num_min_qs": 1},
    summary="RLPD's AntMaze settings: rewards - 1, no entropy backup, 3x256, target min "
    "over 1 critic",
)

# zhouzypaul/wsrl @ 891ee35, AntMaze. Pretraining (README.md L71-72, Cal-QL with --use_redq;
# scripts/antmaze/launch_calql_finetune.sh L7, L10-11; configs/train_config.py L35-36):
# reward_scale 10, reward_bias -5, cql_autotune_alpha True, cql_target_action_gap 0.8. Its
# Lagrange weight is the multiplier alone (wsrl/agents/cql.py L259-261, L270: td + λ (gap -
# τ); cql_alpha unused), λ initialised at 1.0 and learnt at 3e-4 (configs/cql_config.py
# L15-20): here cql_alpha 1, init_alpha_prime 1, lagrange_lr 3e-4. No entropy backup
# (configs/sac_config.py L7). Fine-tuning (scripts/antmaze/launch_wsrl_finetune.sh L9-10;
# configs/train_config.py L73): the same rewards and max_target_backup True.
WSRL = SparseSettings(
    reward_scale=10.0,
    reward_bias=-5.0,
    config={
        "lagrange": True,
        "target_action_gap": 0.8,
        "cql_alpha": 1.0,
        "init_alpha_prime": 1.0,
        "lagrange_lr": 3e-4,
        "backup_entropy": False,
    },
    finetune={"max_target_backup": True},
    summary="WSRL's AntMaze settings: rewards x10 - 5, Lagrange CQL with gap 0.8, SAC with "
    "the max-over-10-samples backup",
)


def sparse_variant(recipe: Recipe, settings: SparseSettings) -> Recipe:
    """``recipe`` with ``settings`` applied: the config values merged in, the reward transform
    replaced, the ``finetune`` values merged into the phases' `SetConfig` hooks; named
    ``<name>_sparse`` and with ``reward_kind="sparse"``."""
    phases = []
    found = False
    for phase in recipe.phases:
        hooks = []
        for hook in phase.hooks:
            if isinstance(hook, SetConfig) and settings.finetune:
                hook, found = SetConfig({**dict(hook.values), **settings.finetune}), True
            hooks.append(hook)
        phases.append(dataclasses.replace(phase, hooks=tuple(hooks)))
    if settings.finetune and not found:
        raise HybridRLError(f"recipe '{recipe.name}' has no set_config hook to change")
    return dataclasses.replace(
        recipe,
        name=f"{recipe.name}_sparse",
        config={**dict(recipe.config), **settings.config},
        phases=tuple(phases),
        reward_scale=settings.reward_scale,
        reward_bias=settings.reward_bias,
        reward_kind="sparse",
        sparse_variant=None,
        description=f"{recipe.description}; {settings.summary}",
    )


def with_sparse_variant(recipe: Recipe, settings: SparseSettings) -> Recipe:
    """``recipe`` choosing its sparse variant from the dataset (``reward_kind="auto"``)."""
    return dataclasses.replace(
        recipe, reward_kind="auto", sparse_variant=sparse_variant(recipe, settings)
    )


def dataset_reward_kind(
    env_id: str | None, name: str | None, rewards: np.ndarray
) -> tuple[str, str]:
    """``("sparse" | "dense", reason)`` for a dataset: sparse when its env id or name (its
    metadata) names a sparse-reward task (`SPARSE_TASKS`, not a "dense" variant) and its
    rewards are all 0 or 1 (the goal reward the official sparse settings assume: WSRL
    env_common.py L113-117, Cal-QL replay_buffer.py L6-10)."""
    text = f"{env_id or ''} {name or ''}".lower()
    label = " / ".join(repr(x) for x in (env_id, name) if x) or "none"
    task = next((t for t in SPARSE_TASKS if t in text), None)
    if task is None:
        return "dense", (
            f"the dataset's env id / name ({label}) names no sparse-reward task "
            f"({', '.join(SPARSE_TASKS)})"
        )
    if "dense" in text:
        return "dense", f"the dataset's env id / name ({label}) names a dense-reward {task} task"
    r = np.asarray(rewards)
    if r.size == 0 or not np.all((r == 0) | (r == 1)):
        return "dense", (
            f"the dataset's env id / name ({label}) names a {task} task, but its rewards are "
            "not the 0/1 goal rewards the sparse settings assume"
        )
    return "sparse", (
        f"the dataset's env id / name ({label}) names a sparse-reward {task} task and its "
        "rewards are 0 or 1"
    )


def select_reward_kind(recipe: Recipe, dataset: Dataset | None) -> tuple[Recipe, dict[str, Any]]:
    """The recipe in effect for ``dataset`` and the record of the choice for ``run.json``:
    ``{"setting", "in_effect", "reason", "requested"}`` (``requested``: the recipe's name
    before the choice)."""
    setting = recipe.reward_kind
    if setting != "auto":
        kind, reason = setting, f"the recipe's reward_kind is {setting!r}"
    elif dataset is None:
        kind, reason = "dense", "no dataset"
    else:
        m = dataset.metadata
        kind, reason = dataset_reward_kind(m.env_id, m.name, dataset.transitions.rewards)
    record = {"setting": setting, "in_effect": kind, "reason": reason, "requested": recipe.name}
    return recipe.for_reward_kind(kind), record
