"""Sparse-reward tasks take the official Cal-QL / RLPD / WSRL sparse settings (issue #18 §2).

The official code runs AntMaze (reward 1 at the goal, 0 elsewhere) with other settings than
locomotion, chosen from the env name (constants and line citations in
``hybridrl/training/sparse.py``):

- nakamotoo/Cal-QL @ ac6eafe ``scripts/run_antmaze.sh`` L13-15, L25-26: rewards x10 - 5,
  ``cql_lagrange=True``, ``cql_target_action_gap=0.8``, ``cql_min_q_weight=5``; no entropy
  backup and the max backup are its defaults (``conservative_sac.py`` L28, L39).
- ikostrikov/rlpd @ c90fd4b ``README.md`` L33-40, ``train_finetuning.py`` L135-136, L192-193:
  rewards - 1, ``backup_entropy=False``, ``hidden_dims=(256, 256, 256)``, ``num_min_qs=1``.
- zhouzypaul/wsrl @ 891ee35 ``experiments/configs/train_config.py`` L35-36, L73 and the
  AntMaze launch scripts: rewards x10 - 5, Lagrange CQL (the multiplier alone, initialised at
  1, learnt at 3e-4) with gap 0.8 in pretraining, SAC with ``max_target_backup=True``.

The presets pick them from the dataset's metadata (``reward_kind="auto"``), record the choice
in ``run.json``, and keep today's settings on locomotion data.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from hybridrl.agents import cql, sac
from hybridrl.data.dataset import Dataset
from hybridrl.training.context import RunSettings
from hybridrl.training.phases import SetConfig, SwitchAgent
from hybridrl.training.recipes import Recipe, get_recipe
from hybridrl.training.sparse import dataset_reward_kind, select_reward_kind
from hybridrl.types import HybridRLError
from tests.conftest import make_chain_dataset

MAZE = "hybridrl/PointMaze-UMaze-v0"
PRESETS = ("calql", "rlpd", "wsrl", "wsrl_cql")
# The presets' configs before issue #18 §2's sparse settings (what locomotion keeps).
ENSEMBLE = {"num_qs": 10, "num_min_qs": 2, "critic_layer_norm": True}
WSRL_DENSE = {
    **ENSEMBLE,
    "actor_layer_norm": True,
    "actor_log_std_offset": 0.0,
    "actor_lr": 1e-4,
    "temperature_lr": 1e-4,
    "max_target_backup": True,
}
DENSE_CONFIG: dict[str, dict[str, Any]] = {
    "calql": {},
    "rlpd": {**ENSEMBLE, "utd_ratio": 20, "target_entropy_scale": 0.5},
    "wsrl": WSRL_DENSE,
    "wsrl_cql": WSRL_DENSE,
}


def maze_dataset(
    name: str | None = "pointmaze-umaze-v0",
    rewards: tuple[float, ...] = (0.0, 1.0, 0.0),
    env_id: str | None = MAZE,
) -> Dataset:
    """Three cut episodes of constant 0/1 rewards (the first and last never reach a goal), in
    PointMaze-UMaze's spaces, named as the suite's maze set."""
    ds = make_chain_dataset(
        episode_lengths=(6, 5, 4),
        ends=("timeout",) * 3,
        obs_dim=6,
        act_dim=2,
        episode_rewards=rewards,
    )
    return ds.with_metadata(env_id=env_id, name=name)


def finetune_values(recipe: Recipe) -> dict[str, Any]:
    [hook] = [h for p in recipe.phases for h in p.hooks if isinstance(h, SetConfig)]
    return dict(hook.values)


@pytest.mark.parametrize(
    ("env_id", "name", "rewards", "want"),
    [
        (MAZE, "pointmaze-umaze-v0", [0.0, 1.0, 0.0], "sparse"),
        ("AntMaze_UMaze-v4", "D4RL/antmaze/umaze-v1", [0.0, 1.0], "sparse"),
        (None, "antmaze-large-diverse-v2", [0.0, 0.0], "sparse"),
        ("PointMaze_UMazeDense-v3", "D4RL/pointmaze/umaze-dense-v2", [0.0, 1.0], "dense"),
        (MAZE, "pointmaze-umaze-v0", [0.5, 1.0], "dense"),  # not the 0/1 goal reward
        ("Hopper-v5", "hopper-medium-v0", [0.0, 1.0], "dense"),
        ("Pendulum-v1", None, [-1.0], "dense"),
        (None, None, [0.0, 1.0], "dense"),
    ],
)
def test_the_reward_kind_comes_from_the_dataset_metadata_and_rewards(env_id, name, rewards, want):
    kind, reason = dataset_reward_kind(env_id, name, np.asarray(rewards, np.float32))
    assert kind == want
    assert reason


def test_the_presets_carry_the_official_sparse_settings():
    calql = get_recipe("calql")
    assert calql.reward_kind == "auto"
    v = calql.sparse_variant
    assert v is not None and v.name == "calql_sparse" and v.reward_kind == "sparse"
    assert (v.reward_scale, v.reward_bias) == (10.0, -5.0)
    c = v.agent_config()
    assert c.lagrange is True and c.target_action_gap == 0.8 and c.cql_alpha == 5.0
    assert c.backup_entropy is False and c.max_target_backup is True and c.enable_calql
    assert (c.init_alpha_prime, c.lagrange_lr) == (pytest.approx(np.e), 3e-4)  # JaxCQL's
    assert v.phases == calql.phases  # budgets and 50/50 mixing as the dense preset

    rlpd = get_recipe("rlpd").sparse_variant
    assert rlpd is not None and rlpd.name == "rlpd_sparse"
    assert (rlpd.reward_scale, rlpd.reward_bias) == (1.0, -1.0)
    c = rlpd.agent_config()
    assert c.backup_entropy is False and tuple(c.hidden_dims) == (256, 256, 256)
    assert (c.num_qs, c.num_min_qs, c.utd_ratio, c.target_entropy_scale) == (10, 1, 20, 0.5)
    assert c.critic_layer_norm and rlpd.phases == get_recipe("rlpd").phases

    for name in ("wsrl", "wsrl_cql"):
        dense = get_recipe(name)
        v = dense.sparse_variant
        assert v is not None and v.name == f"{name}_sparse"
        assert (v.reward_scale, v.reward_bias) == (10.0, -5.0)
        c = v.agent_config()
        assert c.lagrange is True and c.target_action_gap == 0.8
        # WSRL's Lagrange weight is the multiplier alone, initialised at 1, Adam 3e-4
        assert (c.cql_alpha, c.init_alpha_prime, c.lagrange_lr) == (1.0, 1.0, 3e-4)
        assert c.backup_entropy is False and c.max_target_backup is True
        assert finetune_values(v) == {"utd_ratio": 4, "max_target_backup": True}
        assert finetune_values(dense) == {"utd_ratio": 4, "max_target_backup": False}

    # registered on their own too, equal to the variants
    for name in PRESETS:
        variant = get_recipe(name).sparse_variant
        assert variant is not None
        assert get_recipe(f"{name}_sparse").to_dict() == variant.to_dict()


@pytest.mark.parametrize("name", PRESETS)
def test_locomotion_data_keeps_todays_settings(name):
    hopper = make_chain_dataset().with_metadata(env_id="Hopper-v5", name="hopper-medium-v0")
    recipe, record = select_reward_kind(get_recipe(name), hopper)
    assert record["setting"] == "auto" and record["in_effect"] == "dense"
    assert "no sparse-reward task" in record["reason"]
    assert recipe.name == name and recipe.reward_kind == "dense"
    assert recipe.sparse_variant is None and "sparse_variant" not in recipe.to_dict()
    assert (recipe.reward_scale, recipe.reward_bias) == (1.0, 0.0)
    assert dict(recipe.config) == DENSE_CONFIG[name]


@pytest.fixture(scope="module")
def maze() -> Dataset:
    return maze_dataset()


def test_run_json_records_the_sparse_settings_and_why(maze):
    from hybridrl.training.runner import Runner

    runner = Runner(get_recipe("calql"), RunSettings(MAZE), maze, "unused")
    info = runner.run_info()
    assert info["name"] == "calql_sparse"
    record = info["reward_kind"]
    assert record["setting"] == "auto" and record["in_effect"] == "sparse"
    assert record["requested"] == "calql" and "pointmaze" in record["reason"]
    assert info["reward_transform"] == {"scale": 10.0, "bias": -5.0, "normalization": "none"}
    recipe = info["fingerprint"]["recipe"]
    assert recipe["reward_kind"] == "sparse" and recipe["config"]["lagrange"] is True
    assert recipe["config"]["target_action_gap"] == 0.8
    # Cal-QL's sparse Monte-Carlo rule is on: a failed episode is worth failing forever
    assert info["fingerprint"]["settings"]["mc_sparse_reward"] is True
    mc = np.asarray(
        runner.data.offline_transitions(mc_returns=True, discount=0.99).extras["mc_returns"]
    )
    np.testing.assert_allclose(mc[:6], -5.0 / (1 - 0.99), rtol=1e-6)
    np.testing.assert_allclose(mc[11:], -5.0 / (1 - 0.99), rtol=1e-6)
    np.testing.assert_allclose(mc[10], 5.0, rtol=1e-6)  # the last step of the goal episode


def test_explicit_choices_win(maze):
    hopper = make_chain_dataset().with_metadata(env_id="Hopper-v5", name="hopper-medium-v0")
    dense, record = select_reward_kind(get_recipe("calql").with_reward_kind("dense"), maze)
    assert dense.name == "calql" and dense.reward_kind == "dense"
    assert not dense.agent_config().lagrange and dense.reward_scale == 1.0
    assert record["in_effect"] == "dense" and "'dense'" in record["reason"]
    forced, record = select_reward_kind(get_recipe("rlpd").with_reward_kind("sparse"), hopper)
    assert forced.name == "rlpd_sparse" and forced.reward_bias == -1.0
    assert record == {
        "setting": "sparse",
        "in_effect": "sparse",
        "reason": "the recipe's reward_kind is 'sparse'",
        "requested": "rlpd",
    }
    assert select_reward_kind(get_recipe("wsrl_sparse"), hopper)[0].name == "wsrl_sparse"
    # a config override reaches the variant: it wins on sparse data too
    overridden, _ = select_reward_kind(get_recipe("calql").with_config(target_action_gap=1.0), maze)
    assert overridden.agent_config().target_action_gap == 1.0 and overridden.agent_config().lagrange
    # a recipe without a variant, forced sparse, is itself the sparse configuration
    plain, _ = select_reward_kind(get_recipe("cql_finetune").with_reward_kind("sparse"), hopper)
    assert plain.name == "cql_finetune" and plain.reward_kind == "sparse"
    with pytest.raises(HybridRLError, match="unknown reward_kind 'sometimes'"):
        get_recipe("calql").with_reward_kind("sometimes")
    bad = dataclasses.replace(get_recipe("calql"), sparse_variant=get_recipe("rlpd"))
    with pytest.raises(HybridRLError, match="sparse_variant must have reward_kind 'sparse'"):
        bad.validate()


def test_the_variant_round_trips_and_scales_with_the_budget():
    recipe = get_recipe("wsrl").with_budget(offline_updates=8, warmup_steps=4, online_steps=16)
    again = Recipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
    assert again.to_dict() == recipe.to_dict() and again.sparse_variant is not None
    variant = recipe.sparse_variant
    assert variant is not None
    assert [p.env_steps for p in variant.phases] == [0, 4, 16]
    assert variant.phases[0].updates == 8  # type: ignore[attr-defined]


def test_the_sparse_wsrl_switch_keeps_the_max_backup_and_removes_only_the_penalty(maze):
    """SAC honours max_target_backup (carried, official AntMaze fine-tuning: True); the
    Lagrange fields go with the penalty (declared in SWITCH_REMOVES); nothing else is
    dropped silently."""
    from hybridrl.training.runner import Runner

    for name in ("wsrl", "wsrl_cql"):
        runner = Runner(get_recipe(name), RunSettings(MAZE), maze, "unused")
        (a0, pretrain), _, (a2, finetune) = runner.plan.agent_chain
        assert (a0, a2) == ({"wsrl": "calql", "wsrl_cql": "cql"}[name], "sac")
        assert pretrain.lagrange and pretrain.max_target_backup
        assert finetune.max_target_backup is True and finetune.utd_ratio == 4
        assert finetune.backup_entropy is False
        variant = get_recipe(name).sparse_variant
        assert variant is not None
        kept = {f.name for f in dataclasses.fields(sac.Config)}
        removed = set(cql.Config.SWITCH_REMOVES)
        assert set(variant.config) <= kept | removed
        assert {"lagrange", "target_action_gap", "cql_alpha", "init_alpha_prime"} <= removed
        assert any(isinstance(h, SwitchAgent) for p in variant.phases for h in p.hooks)


def test_a_run_writes_the_choice_to_run_json_and_resumes_consistently(maze, tmp_path):
    from hybridrl.training.resume import check_fingerprint
    from hybridrl.training.runner import Runner, run

    recipe = (
        get_recipe("rlpd")
        .with_budget(online_steps=4, random_steps=2)
        .with_config(hidden_dims=(8,), num_qs=2, utd_ratio=2)
    )
    settings = {
        "eval_episodes": 1,
        "eval_interval": 4,
        "checkpoint_interval": 4,
        "log_interval": 2,
        "max_episode_steps": 10,  # short evaluation episodes
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # checkpoints cut every episode at this size
        result = run(recipe, MAZE, dataset=maze, run_dir=tmp_path, progress=False, **settings)
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["name"] == "rlpd_sparse" and info["reward_kind"]["in_effect"] == "sparse"
    assert info["reward_transform"]["bias"] == -1.0
    config = info["fingerprint"]["recipe"]["config"]
    assert config["backup_entropy"] is False and config["num_min_qs"] == 1
    assert result.state.config.backup_entropy is False
    # the same command resumes; a forced dense one is another configuration
    again = Runner(recipe, RunSettings(MAZE, **settings), maze, tmp_path)
    assert check_fingerprint(tmp_path / "run.json", again.fingerprint(), tmp_path) is None
    dense = Runner(recipe.with_reward_kind("dense"), RunSettings(MAZE, **settings), maze, tmp_path)
    with pytest.raises(HybridRLError, match="another configuration"):
        check_fingerprint(tmp_path / "run.json", dense.fingerprint(), tmp_path)


def test_an_older_dense_run_json_still_resumes(tmp_path):
    """Runs written before reward_kind and budget_rules existed have no such keys: they
    count as dense and without budget rules."""
    from hybridrl.training.resume import check_fingerprint

    recipe = get_recipe("calql").for_reward_kind("dense")
    fingerprint = {"recipe": recipe.to_dict(), "settings": {}, "dataset": None}
    old = json.loads(json.dumps(fingerprint))
    del old["recipe"]["reward_kind"]
    del old["recipe"]["budget_rules"]
    (tmp_path / "run.json").write_text(json.dumps({"fingerprint": old}))
    assert check_fingerprint(tmp_path / "run.json", fingerprint, tmp_path) is None


def test_the_cli_forces_a_reward_kind(monkeypatch, tmp_path):
    import hybridrl.training.runner
    from hybridrl.cli import app

    calls: list[Recipe] = []

    def fake_run(recipe: Recipe, env_id: str, **kwargs: Any) -> Any:
        calls.append(recipe)
        return SimpleNamespace(summary={}, run_dir=kwargs.get("run_dir"))

    monkeypatch.setattr(hybridrl.training.runner, "run", fake_run)
    base = ["run", "calql", "--env", "Pendulum-v1", "--out", str(Path(tmp_path) / "r")]
    result = CliRunner().invoke(app, [*base, "--reward-kind", "sparse"])
    assert result.exit_code == 0, result.output
    assert calls[-1].reward_kind == "sparse"
    assert select_reward_kind(calls[-1], None)[0].name == "calql_sparse"
    result = CliRunner().invoke(app, base)
    assert result.exit_code == 0, result.output
    assert calls[-1].reward_kind == "auto"
    result = CliRunner().invoke(app, [*base, "--reward-kind", "maybe"])
    assert isinstance(result.exception, HybridRLError)
    assert "unknown reward_kind 'maybe'" in str(result.exception)
