"""IQL's official reward scaling on locomotion datasets is the default (issue #18 §2).

ikostrikov/implicit_q_learning @ 09d7002, ``train_offline.py`` L68-74: on halfcheetah, walker2d
and hopper datasets the rewards are multiplied by 1000 / (max - min episode return)
(``normalize``, L35); the script decides from the env name. hybridrl's IQL presets
(``offline:iql``, ``iql_finetune``) default to ``reward_normalization="auto"``, resolved from
the dataset's metadata (env id or name), and ``run.json`` records the choice.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hybridrl.data.dataset import Dataset
from hybridrl.training.recipes import get_recipe, resolve_reward_normalization
from tests.helpers import pendulum_dataset


@pytest.fixture(scope="module")
def small() -> Dataset:
    return pendulum_dataset(600, "pendulum-tiny")


@pytest.mark.parametrize(
    ("env_id", "name", "want"),
    [
        ("HalfCheetah-v4", None, "return_range"),
        (None, "hopper-medium-v2", "return_range"),
        ("Walker2d-v4", "mujoco/walker2d/medium-v0", "return_range"),
        ("Pendulum-v1", "pendulum-tiny", "none"),
        (None, "antmaze-large-diverse-v2", "none"),
        (None, None, "none"),
    ],
)
def test_auto_resolves_from_the_dataset_metadata(env_id, name, want):
    assert resolve_reward_normalization("auto", env_id, name) == want
    # explicit settings are kept as they are
    assert resolve_reward_normalization("none", "HalfCheetah-v4", None) == "none"
    assert resolve_reward_normalization("return_range", "Pendulum-v1", None) == "return_range"


def test_iql_presets_default_to_the_official_scaling():
    """Before issue #18 §2 the scaling was an opt-in ("none" by default)."""
    assert get_recipe("offline:iql").reward_normalization == "auto"
    assert get_recipe("iql_finetune").reward_normalization == "auto"
    assert get_recipe("offline:iql").name == "iql_offline"
    # other agents are unchanged
    assert get_recipe("offline:cql").reward_normalization == "none"
    assert get_recipe("cql_finetune").reward_normalization == "none"


def test_run_json_records_the_chosen_normalization(small):
    """The same data named as a locomotion set gets IQL's factor; ``run.json``'s
    ``reward_transform`` says which normalization was chosen."""
    from hybridrl.training.runner import Runner, RunSettings

    recipe = get_recipe("offline:iql")
    plain = Runner(recipe, RunSettings("Pendulum-v1"), small, "unused")
    assert plain.run_info()["reward_transform"] == {
        "scale": 1.0,
        "bias": 0.0,
        "normalization": "none",
    }
    renamed = dataclasses.replace(
        small, metadata=dataclasses.replace(small.metadata, name="hopper-medium-v2")
    )
    loco = Runner(recipe, RunSettings("Pendulum-v1"), renamed, "unused")
    returns = small.episode_returns()
    factor = 1000.0 / (returns.max() - returns.min())
    info = loco.run_info()["reward_transform"]
    assert info["normalization"] == "return_range"
    assert info["scale"] == pytest.approx(factor)
    raw = np.asarray(small.transitions.rewards)
    learned = np.asarray(loco.data.offline_transitions(mc_returns=False, discount=0.99).rewards)
    np.testing.assert_allclose(learned, raw * factor, rtol=1e-5)
