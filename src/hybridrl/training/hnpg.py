"""The HNPG recipes (Zhou, Sekhari, Song, Sun, ICLR 2024; YifeiZhou02/HNPG @ 7d7ace1): NPG
from scratch on rollouts of about 1,000 env steps per iteration (``--batch-size 1000``), and
HNPG, the same with half of every update's rows drawn from the dataset (the official offline
batch per step h is |online batch| / H, so offline rows = online rows in total).

A rollout of ``rollout_steps = 1000`` steps of one env holds whole Comblock episodes when H
divides 1,000 (H = 5, 10, 20, 50); the official loop collects whole episodes until at least
1,000 steps. Budget: 1,500 iterations in the official ``main.py``; 1.5M env steps here.
"""

from __future__ import annotations

from hybridrl.training.phases import OnPolicy
from hybridrl.training.recipes import Recipe

ROLLOUT_STEPS = 1000
STEPS = 1_500_000


def hnpg() -> Recipe:
    return Recipe(
        name="hnpg",
        agent="npg",
        config={"hybrid": True},
        phases=(
            OnPolicy(name="online", steps=STEPS, rollout_steps=ROLLOUT_STEPS, offline_ratio=0.5),
        ),
        description="Hybrid NPG: trust-region natural gradient on online and offline "
        "advantages, critic fitted on online returns and fitted-Q targets (Zhou et al., 2024)",
    )


def npg() -> Recipe:
    return Recipe(
        name="npg",
        agent="npg",
        config={"hybrid": False},
        phases=(OnPolicy(name="online", steps=STEPS, rollout_steps=ROLLOUT_STEPS),),
        description="NPG with a trust region from scratch, no data (HNPG's HYBRID = False "
        "baseline)",
    )
