"""The ``famo2o`` recipe: FamO2O over IQL (Wang et al., NeurIPS 2023), offline pretraining of
the whole family of policies, then online fine-tuning with the balance model choosing β.

A value, not code: IQL's naive fine-tuning (``iql_finetune``) with the agent ``famo2o`` and
one more hook. Offline, the universal actor trains on β ~ U[β_min, β_max]; at the switch the
dataset is appended to the replay buffer (`SeedBuffer`, the official
``replay_buffer.initialize_with_dataset``) and ``SetConfig(random_beta=False)`` makes the
actor train on β from the balance model, the official ``random_hierarchical_coefficients =
(i < 1)`` (LeapLabTHU/FamO2O @ ea9cb01, ``jax_iql/family_train_finetune.py``). The flag is a
traced leaf: the switch does not recompile the update.

Budgets: the defaults are the paper's, 1M pretraining updates and 1M online steps at one
update per step, batch 256 (official ``num_pretraining_steps`` and ``max_steps``): GPU
budgets. A reduced CPU run (under a minute on two cores, 64 x 64 networks)::

    hybridrl run famo2o --env Pendulum-v1 --dataset DATA.npz -o runs/famo2o \
        --offline-updates 2000 --online-steps 5000 --set 'hidden_dims=[64,64]' \
        --set beta_min=1.0 --set beta_max=5.0

with ``beta_min``/``beta_max`` set for the task's advantage scale (the defaults [8, 14] are
the official AntMaze range, around IQL's β = 10 there, with rewards shifted by −1).
``docs/agents/famo2o.md`` has the details and
``benchmarks/famo2o_validation.py`` the CPU validation.
"""

from __future__ import annotations

from hybridrl.training.phases import Offline, Online, SeedBuffer, SetConfig
from hybridrl.training.recipes import Recipe

# family_train_finetune.py: num_pretraining_steps 1e6, max_steps 1e6 (one update per env step)
OFFLINE_UPDATES = 1_000_000
ONLINE_STEPS = 1_000_000


def famo2o(offline_updates: int = OFFLINE_UPDATES, online_steps: int = ONLINE_STEPS) -> Recipe:
    """FamO2O-IQL: ``Offline`` (random β) → ``Online`` (dataset in the buffer, β from π_b).
    Observation and reward handling are ``iql_finetune``'s, so the two compare at equal
    budgets with the same data transforms."""
    recipe = Recipe(
        name="famo2o",
        agent="famo2o",
        config={},
        normalize_observations=True,
        reward_normalization="auto",
        phases=(
            Offline(name="pretrain", updates=offline_updates),
            Online(
                name="finetune",
                steps=online_steps,
                hooks=(SeedBuffer(), SetConfig({"random_beta": False})),
            ),
        ),
        description="FamO2O over IQL: a family of AWR policies conditioned on β offline, "
        "a state-wise balance model choosing β online (Wang et al., 2023)",
    )
    recipe.validate()
    return recipe
