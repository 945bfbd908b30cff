"""Offline-to-online learning on Pendulum: fine-tuning must lift a weak pretrained policy.

The dataset mixes the swing-up controller with 50% uniform random actions (the demo's data);
a short Cal-QL pretraining leaves the policy well below the controller, and WSRL's online
phase must close most of the gap. Untrained policies score about 0-20 here.
"""

from __future__ import annotations

import pytest

from hybridrl.data.collect import NoiseConfig, collect, evaluate_policy
from hybridrl.policies import PendulumSwingUp
from hybridrl.training.recipes import get_recipe
from hybridrl.training.runner import run


@pytest.fixture(scope="module")
def mixed_data():
    expert = float(evaluate_policy("Pendulum-v1", PendulumSwingUp(), 10, seed=1).mean())
    return collect(
        "Pendulum-v1",
        PendulumSwingUp(),
        num_steps=6000,
        seed=0,
        noise=NoiseConfig(random_action_prob=0.5),
        ref_max_score=expert,
        random_reference_episodes=5,
        progress=False,
        name="pendulum-mixed",
    )


def test_wsrl_fine_tuning_beats_its_pretraining(mixed_data, tmp_path):
    recipe = (
        get_recipe("wsrl")
        .with_budget(offline_updates=500, warmup_steps=400, online_steps=2600)
        .with_config(hidden_dims=(64, 64), num_qs=2, num_samples=4)
    )
    result = run(
        recipe,
        "Pendulum-v1",
        dataset=mixed_data,
        run_dir=tmp_path,
        seed=0,
        eval_interval=1000,
        offline_eval_interval=500,
        checkpoint_interval=1000,
        eval_episodes=5,
        progress=False,
    )
    s = result.summary
    assert s["final_score"] > 80, s
    assert s["final_score"] > s["pretrain_score"] + 20, s
