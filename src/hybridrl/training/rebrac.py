"""The ``rebrac`` and ``rebrac_finetune`` recipes: ReBRAC (Tarasov et al., 2023) offline, and
offline-to-online as the authors' fine-tuning script does it.

The agent is `hybridrl.agents.rebrac`. Constants come from the official code, DT6A/ReBRAC:
the offline script at the paper-era commit 785aea7 (``src/algorithms/rebrac.py``), and the
fine-tuning script, which first appears at 91e7914 (``src/algorithms/rebrac_finetune.py``).
The Monte-Carlo lower bound on the target that entered with 11fdf2d ("Calibration") is not
part of the paper and is **not** implemented: in 91e7914 it is commented out anyway.
docs/agents/rebrac.md lists the deviations.
"""

from __future__ import annotations

import dataclasses

from hybridrl.training.phases import Offline, Online, SetConfig
from hybridrl.training.recipes import Recipe

# rebrac.py Config: num_epochs 1000 x num_updates_on_epoch 1000; batch_size 1024.
UPDATES, BATCH = 1_000_000, 1024
# rebrac_finetune.py Config: num_offline_updates = num_online_updates = 1M, batch_size 256
# (offline and online alike), mixing_ratio 0.5, actor and critic lr 3e-4, expl_noise 0.03,
# min_decay_coef 0.0.
FT_UPDATES, FT_STEPS, FT_BATCH, FT_RATIO, FT_LR = 1_000_000, 1_000_000, 256, 0.5, 3e-4
DECAY_KEYS = ("actor_bc_decay_start", "actor_bc_decay_updates")


def rebrac(updates: int = UPDATES) -> Recipe:
    """ReBRAC offline with the official defaults (generic β_a = β_c = 0.01;
    `hybridrl.agents.rebrac.setting` gives the per-dataset ones as ``--set`` overrides)."""
    recipe = Recipe(
        name="rebrac",
        agent="rebrac",
        # normalize_states False, normalize_reward False (rebrac.py Config)
        phases=(Offline(name="offline", updates=updates, batch_size=BATCH),),
        description="ReBRAC offline: TD3+BC with LayerNorm critics, 3x256, batch 1024 and "
        "actor and critic BC penalties (Tarasov et al., 2023)",
    )
    recipe.validate()
    return recipe


def sync_decay(recipe: Recipe) -> Recipe:
    """``recipe`` with every online phase's decay hook set from the phase lengths: the decay
    starts at the update count the phase starts at and lasts its ``steps ×
    updates_per_step`` updates. The budget rule ``rebrac_actor_bc_decay``
    (`hybridrl.training.recipes.BUDGET_RULES`), so `Recipe.with_budget` re-syncs it."""
    phases, count = [], 0.0
    for p in recipe.phases:
        if isinstance(p, Online):
            length = float(p.steps * p.updates_per_step)
            hooks = tuple(
                SetConfig(
                    {
                        **dict(h.values),
                        "actor_bc_decay_start": count,
                        "actor_bc_decay_updates": length,
                    }
                )
                if isinstance(h, SetConfig) and any(k in h.values for k in DECAY_KEYS)
                else h
                for h in p.hooks
            )
            p = dataclasses.replace(p, hooks=hooks)
            count += length
        elif isinstance(p, Offline):
            count += p.updates
        phases.append(p)
    return dataclasses.replace(recipe, phases=tuple(phases))


def rebrac_finetune(offline_updates: int = FT_UPDATES, online_steps: int = FT_STEPS) -> Recipe:
    """ReBRAC offline-to-online (rebrac_finetune.py): pretraining and fine-tuning with batch
    256 and lr 3e-4; online, one update per env step on 50/50 offline/online batches, β_c = 0
    and β_a decaying linearly to ``min_decay_coef`` (0) over the online updates."""
    switch = SetConfig(
        {
            # rebrac_finetune.py: critic_bc_coef *= 0 online
            "critic_bc_coef": 0.0,
            "actor_bc_decay_start": 0.0,  # set by sync_decay
            "actor_bc_decay_updates": 0.0,
        }
    )
    base = Recipe(
        name="rebrac_finetune",
        agent="rebrac",
        config={"actor_lr": FT_LR, "critic_lr": FT_LR, "exploration_noise": 0.03},
        phases=(
            Offline(name="offline", updates=offline_updates, batch_size=FT_BATCH),
            Online(
                name="online",
                steps=online_steps,
                updates_per_step=1.0,
                offline_ratio=FT_RATIO,
                batch_size=FT_BATCH,
                hooks=(switch,),
            ),
        ),
        # --offline-updates/--online-steps recompute the decay's start and length
        budget_rules=("rebrac_actor_bc_decay",),
        description="ReBRAC fine-tuning: 50/50 offline/online batches, critic penalty off "
        "online, actor penalty decaying linearly to 0 (Tarasov et al., 2023)",
    )
    recipe = sync_decay(base)
    recipe.validate()
    return recipe
