"""Offline-to-online recipes: an agent, its config and a list of phases (presets, not code).

Every recipe is a `Recipe` value (`hybridrl.training.recipe`, re-exported here) built from
the same phases and hooks users have (`hybridrl.training.phases`), so composing a new one
needs no library edits: build a `Recipe` in Python, or write it in TOML/JSON and pass the file
to ``hybridrl run --recipe FILE``.

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

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hybridrl.training.phases import (
    DropOfflineData,
    Offline,
    Online,
    OnPolicy,
    SeedBuffer,
    SetConfig,
    SwitchAgent,
    Warmup,
)
from hybridrl.training.recipe import (
    BUDGET_RULES,
    LOCOMOTION_TASKS,
    OBSERVATION_STATS,
    REWARD_NORMALIZATIONS,
    Recipe,
    budget_rule,
    resolve_reward_normalization,
)
from hybridrl.training.sparse import (
    CALQL,
    RLPD,
    WSRL,
    sparse_variant,
    with_sparse_variant,
)
from hybridrl.types import HybridRLError

__all__ = [
    "BUDGET_RULES",
    "LOCOMOTION_TASKS",
    "OBSERVATION_STATS",
    "RECIPES",
    "REWARD_NORMALIZATIONS",
    "Recipe",
    "budget_rule",
    "get_recipe",
    "offline_recipe",
    "resolve_reward_normalization",
]


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
