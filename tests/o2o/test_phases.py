"""Phases, hooks and recipes as data: each hook's effect, validation and round trips."""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest

from hybridrl.agents import calql, iql, sac
from hybridrl.data.replay import from_dataset, replay_init
from hybridrl.training.phases import (
    DisableCalibration,
    DropOfflineData,
    Learner,
    Offline,
    Online,
    ResetOptimizers,
    SeedBuffer,
    SetConfig,
    SwitchAgent,
    Warmup,
    hook_from_dict,
    phase_from_dict,
)
from hybridrl.training.recipes import RECIPES, Recipe, get_recipe
from hybridrl.types import HybridRLError
from tests.conftest import make_chain_dataset
from tests.helpers import random_batch


def _calql_learner(with_buffers: bool = False) -> Learner:
    state = calql.init(calql.Config(hidden_dims=(8, 8)), jax.random.PRNGKey(0), 3, 2)
    offline = online = None
    if with_buffers:
        ds = make_chain_dataset()  # 9 transitions, obs 3, act 2
        offline = from_dataset(ds.transitions.replace(extras={}))
        online = replay_init(ds.transitions.replace(extras={}), 20)
    return Learner("calql", state, offline, online)


def test_set_config_changes_values_and_names_unknown_fields():
    learner = SetConfig({"cql_alpha": 0.5, "utd_ratio": 4}).apply(_calql_learner())
    assert float(learner.state.config.cql_alpha) == 0.5
    assert learner.state.config.utd_ratio == 4
    with pytest.raises(HybridRLError, match=r"no field.*cql_alfa"):
        SetConfig({"cql_alfa": 1.0}).apply(learner)


def test_set_config_refuses_init_only_fields_it_could_not_honour():
    learner = _calql_learner()
    # The Adam built at init keeps its learning rate: changing the field would be a no-op.
    with pytest.raises(HybridRLError, match=r"calql\.Config field\(s\) actor_lr, hidden_dims"):
        SetConfig({"actor_lr": 1.0, "hidden_dims": (4,), "cql_alpha": 0.5}).apply(learner)
    # calql redefines actor_lr; sac declares critic_lr: both count through the inheritance
    with pytest.raises(HybridRLError, match=r"critic_lr"):
        SetConfig({"critic_lr": 1.0}).apply(learner)
    # restating the value in effect changes nothing, so it is allowed
    same = SetConfig({"actor_lr": learner.state.config.actor_lr}).apply(learner)
    assert same.state.config == learner.state.config


def test_reset_optimizers_restores_fresh_adam_moments():
    state = sac.init(sac.Config(hidden_dims=(8,)), jax.random.PRNGKey(0), 3, 2)
    state, _ = jax.jit(sac.update)(
        state, random_batch(jax.random.PRNGKey(2), 16, 3, 2), jax.random.PRNGKey(1)
    )
    learner = Learner("sac", state, None, None)
    reset = ResetOptimizers(("critic",)).apply(learner).state
    fresh = reset.critic.tx.init(reset.critic.params)
    for a, b in zip(
        jax.tree_util.tree_leaves(reset.critic.opt_state),
        jax.tree_util.tree_leaves(fresh),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    # the actor's moments were not touched, and the parameters never are
    moved = jax.tree_util.tree_leaves(reset.actor.opt_state)
    assert any(np.any(np.asarray(x) != 0) for x in moved if np.ndim(x) > 0)
    np.testing.assert_array_equal(
        jax.tree_util.tree_leaves(reset.critic.params)[0],
        jax.tree_util.tree_leaves(state.critic.params)[0],
    )
    with pytest.raises(HybridRLError, match=r"no network.*value"):
        ResetOptimizers(("value",)).apply(learner)


def test_switch_agent_and_disable_calibration():
    learner = _calql_learner()
    assert SwitchAgent("sac").apply(learner).agent_name == "sac"
    off = DisableCalibration().apply(learner)
    assert off.agent_name == "cql" and not bool(off.state.config.enable_calql)
    iql_state = iql.init(iql.Config(hidden_dims=(8,)), jax.random.PRNGKey(0), 3, 2)
    with pytest.raises(HybridRLError, match="cannot be updated by 'sac'"):
        SwitchAgent("sac").apply(Learner("iql", iql_state, None, None))
    with pytest.raises(HybridRLError, match="unknown agent 'sacc'"):
        SwitchAgent("sacc").apply(learner)
    with pytest.raises(HybridRLError, match="no calibration"):
        DisableCalibration().apply(Learner("iql", iql_state, None, None))


def test_seed_buffer_copies_the_dataset_and_drop_releases_it():
    learner = _calql_learner(with_buffers=True)
    seeded = SeedBuffer().apply(learner)
    assert int(seeded.online.size) == 9
    np.testing.assert_array_equal(
        np.asarray(seeded.online.data.observations[:9]),
        np.asarray(learner.offline.data.observations),
    )
    assert DropOfflineData().apply(learner).offline is None
    with pytest.raises(HybridRLError, match="needs a dataset"):
        SeedBuffer().apply(DropOfflineData().apply(learner))


def test_phases_and_hooks_round_trip_through_dicts():
    for name in RECIPES:
        recipe = get_recipe(name)
        again = Recipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
        assert type(recipe) is Recipe  # presets are data: nothing is lost on the way
        assert again == dataclasses.replace(recipe, config=again.config)
        assert again.to_dict() == recipe.to_dict()
    # a budget rule survives the trip: the copy re-syncs ReBRAC's decay as the preset does
    finetune = get_recipe("rebrac_finetune")
    copy = Recipe.from_dict(json.loads(json.dumps(finetune.to_dict())))
    for budget in ({"online_steps": 1000}, {"offline_updates": 500, "online_steps": 200}):
        assert copy.with_budget(**budget) == finetune.with_budget(**budget)
    switch = copy.with_budget(offline_updates=500, online_steps=200).phases[1].hooks[0]
    assert switch.values["actor_bc_decay_start"] == 500.0
    assert switch.values["actor_bc_decay_updates"] == 200.0
    with pytest.raises(HybridRLError, match="unknown budget_rules nope"):
        Recipe.from_dict({**finetune.to_dict(), "budget_rules": ["nope"]})
    with pytest.raises(HybridRLError, match="unknown hook 'reset'"):
        hook_from_dict({"hook": "reset"})
    with pytest.raises(HybridRLError, match="unknown phase kind 'pretrain'"):
        phase_from_dict({"phase": "pretrain"})
    with pytest.raises(HybridRLError, match=r"unknown field.*update"):
        phase_from_dict({"phase": "offline", "update": 3})
    with pytest.raises(HybridRLError, match="offline_ratio must be in"):
        phase_from_dict({"phase": "online", "steps": 3, "offline_ratio": 1.5})


def test_recipe_validation_and_lookup(tmp_path):
    with pytest.raises(HybridRLError, match=r"unknown recipe 'wsrll'.*wsrl"):
        get_recipe("wsrll")
    with pytest.raises(HybridRLError, match=r"has no field.*alpha"):
        get_recipe("rlpd").with_config(alpha=1.0).validate()
    bad = Recipe(
        "bad",
        "sac",
        (Warmup(steps=2, hooks=(DropOfflineData(),)), Online(steps=2, offline_ratio=0.5)),
    )
    with pytest.raises(HybridRLError, match="after drop_offline_data"):
        bad.validate()
    for late in (Offline(updates=2), Online(steps=2, hooks=(SeedBuffer(),))):
        with pytest.raises(HybridRLError, match="after drop_offline_data"):
            Recipe("bad", "sac", (Warmup(steps=2, hooks=(DropOfflineData(),)), late)).validate()
    for bad_scale in (float("nan"), "2", True):
        with pytest.raises(HybridRLError, match="reward_scale must be"):
            dataclasses.replace(get_recipe("offline:iql"), reward_scale=bad_scale).validate()
    # A scale computed from data is a NumPy scalar; the recipe still serialises to JSON.
    from_data = dataclasses.replace(get_recipe("offline:iql"), reward_scale=np.float32(1.5))
    from_data.validate()
    assert json.loads(json.dumps(from_data.to_dict()))["reward_scale"] == 1.5
    scaled = get_recipe("wsrl").with_budget(offline_updates=7, warmup_steps=3, online_steps=5)
    assert [p.env_steps for p in scaled.phases] == [0, 3, 5]
    assert isinstance(scaled.phases[0], Offline) and scaled.phases[0].updates == 7
    assert get_recipe("rlpd").with_budget(online_steps=100).phases[0].random_steps == 100


def test_a_user_recipe_from_toml(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        """
name = "iql_then_sac"
agent = "iql"
normalize_observations = true
config = { expectile = 0.8, hidden_dims = [32, 32] }

[[phases]]
phase = "offline"
updates = 100

[[phases]]
phase = "online"
steps = 50
offline_ratio = 0.25
hooks = [{ hook = "set_config", values = { temperature = 1.0 } },
         { hook = "reset_optimizers", networks = ["actor"] }]
"""
    )
    recipe = get_recipe(str(path))
    assert recipe.agent_config().hidden_dims == (32, 32)
    assert recipe.phases[1].hooks == (SetConfig({"temperature": 1.0}), ResetOptimizers(("actor",)))
    broken = tmp_path / "broken.toml"
    broken.write_text("name = ")
    with pytest.raises(HybridRLError, match=r"broken.toml"):
        get_recipe(str(broken))
    with pytest.raises(HybridRLError, match="missing field 'agent'"):
        Recipe.from_dict({"name": "x", "phases": []})


def test_offline_only_recipes():
    recipe = get_recipe("offline:td3_bc")
    assert recipe.name == "td3_bc_offline" and recipe.normalize_observations
    assert [p.kind for p in recipe.phases] == ["offline"] and recipe.env_steps == 0
    assert not get_recipe("offline:cql").normalize_observations
    with pytest.raises(HybridRLError, match="unknown agent 'td4'"):
        get_recipe("offline:td4")


def test_budgets_rescale_phases_and_the_random_prefix():
    short = get_recipe("rlpd").with_budget(online_steps=3000)
    online = short.phases[0]
    assert isinstance(online, Online)
    # the 5000-step prefix is capped at the phase: no update would ever run
    assert (online.steps, online.random_steps, online.update_after) == (3000, 3000, 3000)
    fixed = get_recipe("rlpd").with_budget(online_steps=3000, random_steps=1000).phases[0]
    assert isinstance(fixed, Online)
    assert (fixed.steps, fixed.random_steps, fixed.update_after) == (3000, 1000, 1000)
    # phases without a prefix keep none; offline and warm-up lengths are replaced
    wsrl = get_recipe("wsrl").with_budget(
        offline_updates=20, warmup_steps=10, online_steps=30, random_steps=7
    )
    pretrain, warmup, finetune = wsrl.phases
    assert isinstance(pretrain, Offline) and pretrain.updates == 20
    assert isinstance(warmup, Warmup) and warmup.steps == 10
    assert isinstance(finetune, Online)
    assert (finetune.steps, finetune.random_steps, finetune.update_after) == (30, 0, 0)
