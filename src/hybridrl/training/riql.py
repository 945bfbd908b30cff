"""The ``riql`` recipe: RIQL (Yang, Zhong, Xu, Zhang, Zhang, Han & Zhang, "Towards Robust Offline
Reinforcement Learning under Diverse Data Corruption", ICLR 2024), offline training only.

RIQL is IQL with four changes, each an option of `hybridrl.agents.iql` (no fork):
observation standardisation over observations and next observations, a critic ensemble whose
α-quantile is the value target, a Huber critic loss with a clipped TD target, and a
deterministic actor. The constants below are read from the official code, YangRui2015/RIQL at
commit cc07d81 (``RIQL.py`` ``TrainConfig`` and ``ImplicitQLearning``; ``RIQL_config.py`` for the
per-setting σ, α and K); `docs/agents/riql.md` lists them with their lines and the deviations.
"""

from __future__ import annotations

from typing import Any

from hybridrl.training.phases import Offline
from hybridrl.training.recipes import Recipe
from hybridrl.types import HybridRLError

# RIQL.py TrainConfig: num_epochs 3000 x num_updates_on_epoch 1000 (L49-50) = max_timesteps
# 3e6 (L53), the length of the actor's cosine schedule (L473, L685).
UPDATES = 3_000_000
# RIQL.py TrainConfig L74 (sigma 1.0), L76 (num_critics 5), L77 (quantile 0.25); RIQL_config.py
# L3 sets num_critics = 5 for every setting before the per-setting table.
DEFAULT_SIGMA, DEFAULT_QUANTILE, DEFAULT_NUM_QS = 1.0, 0.25, 5

# RIQL_config.py L6-107: (mode, corrupted kind, task) -> (num_critics K, sigma, quantile α).
# hybridrl's corruption kinds (`hybridrl.data.corrupt`): observations, actions, rewards,
# dynamics.
_TASKS = ("halfcheetah", "walker2d", "hopper")


def _table(sigmas: tuple[float, ...], quantiles: tuple[float, ...], k3: str | None) -> dict:
    return {
        task: (3 if task == k3 else DEFAULT_NUM_QS, sigma, alpha)
        for task, sigma, alpha in zip(_TASKS, sigmas, quantiles, strict=True)
    }


SETTINGS: dict[tuple[str, str], dict[str, tuple[int, float, float]]] = {
    ("random", "observations"): _table((0.1, 0.1, 0.1), (0.1, 0.25, 0.25), "hopper"),
    ("random", "actions"): _table((0.5, 0.5, 0.1), (0.25, 0.1, 0.25), "halfcheetah"),
    ("random", "rewards"): _table((3.0, 3.0, 1.0), (0.25, 0.1, 0.25), "hopper"),
    ("random", "dynamics"): _table((3.0, 1.0, 1.0), (0.25, 0.25, 0.5), "walker2d"),
    ("adversarial", "observations"): _table((0.1, 1.0, 1.0), (0.1, 0.25, 0.25), None),
    ("adversarial", "actions"): _table((1.0, 1.0, 1.0), (0.1, 0.1, 0.25), None),
    ("adversarial", "rewards"): _table((1.0, 3.0, 0.1), (0.1, 0.1, 0.25), None),
    ("adversarial", "dynamics"): _table((1.0, 1.0, 1.0), (0.1, 0.25, 0.5), None),
}


def huber_delta(sigma: float) -> float:
    """RIQL's Huber threshold δ = 1/σ² (``RIQL.py`` L261-262)."""
    return 1.0 / sigma**2


def setting(task: str, kind: str | None = None, mode: str = "random") -> dict[str, Any]:
    """The ``iql.Config`` overrides (``num_qs``, ``huber_delta``, ``value_quantile``) of the
    official per-setting table for ``task`` (halfcheetah, walker2d or hopper, or a dataset
    name that contains one) under corruption ``kind`` in ``mode``; ``kind=None``: clean data
    (the defaults K = 5, σ = 1, α = 0.25)."""
    if kind is None:
        k, sigma, alpha = DEFAULT_NUM_QS, DEFAULT_SIGMA, DEFAULT_QUANTILE
    else:
        table = SETTINGS.get((mode, kind))
        name = next((t for t in _TASKS if t in task.lower()), None)
        if table is None or name is None:
            raise HybridRLError(
                f"RIQL has no official setting for task {task!r}, corruption {kind!r}, mode "
                f"{mode!r}; tasks: {', '.join(_TASKS)}; kinds: observations, actions, "
                "rewards, dynamics; modes: random, adversarial"
            )
        k, sigma, alpha = table[name]
    return {"num_qs": k, "huber_delta": huber_delta(sigma), "value_quantile": alpha}


def riql(updates: int = UPDATES) -> Recipe:
    """RIQL offline with the official MuJoCo defaults (clean-data setting; `setting` gives
    the per-corruption σ, α and K as ``--set`` overrides)."""
    config = {
        # RIQL.py L64 iql_deterministic=True (README "Note"; the cc07d81 fix)
        "actor": "deterministic",
        **setting("", None),
        # L524: targets clamped to [-100, 1000]; L525: huber(...).mean() over (K, B)
        "target_clip": (-100.0, 1000.0),
        "critic_reduction": "mean",
        # L568-577: V(s') and the advantages before the V step; then V, Q, actor
        "update_order": "riql",
        # L473: CosineAnnealingLR over max_steps = max_timesteps on the actor only
        "actor_lr_decay_steps": updates,
        # lr 3e-4 (L61), γ 0.99 (L59), Polyak 5e-3 (L60), β 3 (L62), expectile 0.7 (L63),
        # exp-advantage clip 100 (L27), 2 x 256 networks (L373-374, L404-405, L438): the
        # iql.Config defaults.
    }
    recipe = Recipe(
        name="riql",
        agent="iql",
        config=config,
        # L65 normalize=True; L626: statistics over observations and next observations,
        # eps=1e-3 added to the std (L94-97). No reward scaling (train(), L608-648).
        normalize_observations=True,
        observation_stats="observations_and_next",
        reward_normalization="none",
        # batch 256 (L58): the Offline phase's default
        phases=(Offline(name="offline", updates=updates),),
        description="RIQL offline: IQL with a 5-critic quantile value target, Huber critic "
        "loss, deterministic actor (Yang et al., 2024)",
    )
    recipe.validate()
    return recipe
