"""The ``ro2o`` and ``offline:ro2o`` recipes: RO2O (Wen et al., 2024) offline-to-online as
the authors' scripts run it, and its offline pretraining alone.

The agent is `hybridrl.agents.ro2o`. Facts from the official code, BattleWen/RO2O:
``algorithms/offline/ro2o_mujoco.py`` @ d066702 (2,500 epochs × 1,000 updates, batch 256,
states standardised with the dataset's mean and std + 1e-3, rewards unchanged) and
``algorithms/finetune/ro2o_ft_mujoco.py`` @ 26ad528, the repository's newest version of it
(the offline checkpoint loaded, **no** offline data in the online buffer, ``train_starts =
2500`` steps of the pretrained stochastic policy before any update, then 250,000 env steps
at one update per step on a 250k-row FIFO buffer). Online, that update computes the three
regularisers but applies only the plain SAC-N losses (``loss = critic_loss1``, ``loss =
q_loss``; the first version, a8ce433, applied them, with the trainer class's defaults
rather than the script's: docs/agents/ro2o.md). The online
phase here *is* SAC-N, reached by `SwitchAgent("sac")` (a `ro2o.State` is a `sac.State`; the
switch refuses any field that RO2O does not list as its own, `ro2o.Config.SWITCH_REMOVES`),
which also skips the regularisers' cost (≈ 18× a SAC-10 update) instead of computing and
discarding them.

Budgets: the defaults are the paper's (2.5M offline updates, 250k online steps), GPU
budgets: a 3×256, N = 10, K = 20 RO2O update is 95 GFLOP, 21× SAC-10 (0.64 updates/s on the
2-core CPU of docs/results.md section 13). `CPU_CONFIG` is the reduced configuration of
docs/agents/ro2o.md (N = 5, K = 5, 2×64), as ``--set`` values::

    hybridrl run ro2o --dataset data/pendulum.npz --offline-updates 2000 \
        --warmup-steps 2500 --online-steps 10000 --buffer-capacity 250000 \
        --set num_qs=5 --set num_perturb=5 --set 'hidden_dims=[64,64]' -o runs/ro2o-cpu

The buffer capacity is a run setting (``--buffer-capacity``), not part of a recipe: pass
250000 for the official FIFO size (hybridrl's default is 1M).
"""

from __future__ import annotations

from typing import Any

from hybridrl.training.phases import DropOfflineData, Offline, Online, SwitchAgent, Warmup
from hybridrl.training.recipes import Recipe

# ro2o_mujoco.py TrainConfig: num_epochs 2500 x num_updates_on_epoch 1000, batch_size 256.
OFFLINE_UPDATES, BATCH = 2_500_000, 256
# ro2o_ft_mujoco.py: train_starts 2500, max_steps 250_000, buffer 250k, UTD 1.
WARMUP_STEPS, ONLINE_STEPS, ONLINE_BUFFER = 2_500, 250_000, 250_000
# The reduced CPU configuration (official-code-notes "CPU validation"): N = 5 critics, K = 5
# perturbations, 2x64 networks.
CPU_CONFIG: dict[str, Any] = {"num_qs": 5, "num_perturb": 5, "hidden_dims": (64, 64)}


def ro2o_offline(updates: int = OFFLINE_UPDATES) -> Recipe:
    """RO2O pretraining only (``offline:ro2o``): the official offline script."""
    recipe = Recipe(
        name="ro2o_offline",
        agent="ro2o",
        normalize_observations=True,
        phases=(Offline(name="offline", updates=updates, batch_size=BATCH),),
        description="RO2O offline: SAC-N (10 critics, 3x256) with value smoothness, an OOD "
        "uncertainty penalty and policy smoothness on perturbed states (Wen et al., 2024)",
    )
    recipe.validate()
    return recipe


def ro2o(
    offline_updates: int = OFFLINE_UPDATES,
    warmup_steps: int = WARMUP_STEPS,
    online_steps: int = ONLINE_STEPS,
) -> Recipe:
    """RO2O offline-to-online: RO2O pretraining, ``warmup_steps`` env steps of the frozen
    pretrained (stochastic) policy with the dataset released, then SAC-N online at one
    update per env step on online data only."""
    recipe = Recipe(
        name="ro2o",
        agent="ro2o",
        normalize_observations=True,
        phases=(
            Offline(name="pretrain", updates=offline_updates, batch_size=BATCH),
            Warmup(name="warmup", steps=warmup_steps, policy="frozen", hooks=(DropOfflineData(),)),
            Online(
                name="finetune",
                steps=online_steps,
                updates_per_step=1.0,
                offline_ratio=0.0,
                batch_size=BATCH,
                hooks=(SwitchAgent("sac"),),
            ),
        ),
        description="RO2O: smooth, uncertainty-penalised SAC-N pretraining, frozen-policy "
        "warm-up without the dataset, SAC-N fine-tuning (Wen et al., 2024)",
    )
    recipe.validate()
    return recipe
