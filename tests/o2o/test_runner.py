"""The phased runner end to end on Pendulum: phase transitions, sampler ratios, warm-up,
resume after SIGKILL, bad input, and the files a report reads."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from hybridrl.agents import agent_spec, get_agent
from hybridrl.data.dataset import Dataset
from hybridrl.evaluation.report import write_report
from hybridrl.training.checkpoint import load_checkpoint
from hybridrl.training.phases import Offline, Online, SeedBuffer, SetConfig, Warmup
from hybridrl.training.recipes import Recipe, get_recipe
from hybridrl.training.runner import CHECKPOINT, run
from hybridrl.types import HybridRLError, SpaceSpec
from tests.o2o import resume_job

FAST = {
    "num_envs": 2,
    "eval_episodes": 2,
    "eval_interval": 1000,
    "offline_eval_interval": 1000,
    "checkpoint_interval": 40,
    "log_interval": 1,
    "chunk_size": 5,
    "progress": False,
}
ROOT = Path(__file__).resolve().parents[2]


def _train(records, phase):
    return [r for r in records if r["kind"] == "train" and r["phase"] == phase]


def test_phases_sample_at_their_ratio_and_warmup_does_not_update(probe, positive_rewards, tmp_path):
    recipe = Recipe(
        "probe_mix",
        "probe",
        (
            Offline(name="pre", updates=10, batch_size=64),
            Warmup(name="warm", steps=20, policy="random"),
            Online(name="mix", steps=60, offline_ratio=0.25, batch_size=64),
            Online(name="own", steps=40, updates_per_step=0.5, batch_size=64),
        ),
    )
    result = run(recipe, "Pendulum-v1", dataset=positive_rewards, run_dir=tmp_path, **FAST)
    records = result.records
    # stratified mixing: exactly 16 of 64 rows are offline at ratio 0.25, none at 0, all offline
    assert {r["offline_fraction"] for r in _train(records, "pre")} == {1.0}
    assert {r["offline_fraction"] for r in _train(records, "mix")} == {0.25}
    assert {r["offline_fraction"] for r in _train(records, "own")} == {0.0}
    # update counts: 10 offline, none while warming up, 1 per env step, then 0.5 per env step
    assert int(result.state.updates) == 10 + 0 + 60 + 20
    assert result.summary["total_updates"] == 90
    assert not [r for r in records if r["kind"] == "train" and r["phase"] == "warm"]
    assert int(result.learner.online.size) == 20 + 60 + 40
    assert result.summary["total_env_steps"] == 120
    # the runner never stores +1 rewards online: only Pendulum's own rewards arrive there
    online_rewards = np.asarray(result.learner.online.data.rewards[:120])
    assert np.all(online_rewards <= 0)


def test_seed_buffer_and_hooks_apply_at_the_switch(probe, positive_rewards, tmp_path):
    recipe = Recipe(
        "probe_seed",
        "probe",
        (
            Offline(updates=4, batch_size=8),
            Online(steps=20, batch_size=8, hooks=(SeedBuffer(), SetConfig({"discount": 0.5}))),
        ),
    )
    result = run(recipe, "Pendulum-v1", dataset=positive_rewards, run_dir=tmp_path, **FAST)
    assert int(result.learner.online.size) == len(positive_rewards) + 20
    assert float(result.state.config.discount) == 0.5
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["switch_step"] == 0
    assert [p["kind"] for p in info["phases"]] == ["offline", "online"]


def test_wsrl_switches_agents_and_drops_the_dataset(pendulum_small, tmp_path):
    recipe = (
        get_recipe("wsrl")
        .with_budget(offline_updates=10, warmup_steps=20, online_steps=20)
        .with_config(hidden_dims=(8, 8), num_samples=2, num_qs=2)
    )
    result = run(recipe, "Pendulum-v1", dataset=pendulum_small, run_dir=tmp_path, **FAST)
    assert result.learner.agent_name == "sac"
    assert result.learner.offline is None
    assert result.state.config.utd_ratio == 4
    assert int(result.learner.online.size) == 40  # warm-up + online, no offline rows
    phases = [r["phase"] for r in result.records if r["kind"] == "eval"]
    # no evaluation in the warm-up (it does not change the policy); in fine-tuning, one at the
    # end of the dip window (env step 20 + 0.25 x 20 = 25 -> 24) and one at the end
    evals = [(r["phase"], r["env_step"]) for r in result.records if r["kind"] == "eval"]
    assert evals == [("pretrain", 0), ("finetune", 24), ("finetune", 40)]
    assert phases == ["pretrain", "finetune", "finetune"]


def test_resume_after_sigkill_reproduces_the_uninterrupted_run(tmp_path):
    reference = resume_job.main(tmp_path / "reference")

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.o2o.resume_job", str(killed)], cwd=ROOT, env=env
    )
    ckpt = killed / CHECKPOINT
    deadline = time.time() + 300
    try:  # kill once the run is past its first online checkpoint
        while time.time() < deadline:
            if ckpt.exists() and _checkpoint_step(ckpt) >= 300:
                break
            assert child.poll() is None, "the run finished before it could be killed"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert not (killed / "summary.json").exists()

    resumed = resume_job.main(killed, resume=True)

    def strip(records):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in records]

    assert strip(resumed.records) == strip(reference.records)
    assert resumed.summary["final_score"] == reference.summary["final_score"]
    for a, b in zip(
        jax.tree_util.tree_leaves(resumed.state),
        jax.tree_util.tree_leaves(reference.state),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    report = write_report([reference.run_dir, resumed.run_dir], tmp_path / "report")
    assert "resume_test" in report["table"]
    assert (tmp_path / "report" / "curves.png").read_bytes()[:4] == b"\x89PNG"


def _checkpoint_step(path: Path) -> int:
    from hybridrl.training.resume import read_meta

    try:
        return int(read_meta(path)["counters"]["env_step"])
    except HybridRLError:  # caught between the rename and the read: never half-written
        raise


def test_bad_input_fails_before_any_work(pendulum_small, tmp_path):
    recipe = get_recipe("iql_finetune").with_budget(offline_updates=2, online_steps=4)
    with pytest.raises(HybridRLError, match="observations"):
        run(
            recipe,
            "MountainCarContinuous-v0",
            dataset=pendulum_small,
            run_dir=tmp_path / "a",
            **FAST,
        )
    assert not (tmp_path / "a").exists()
    # same shapes, other action bounds: the agent would see two action scales
    t = pendulum_small.transitions
    unit_box = SpaceSpec("box", (1,), "float32", (-1.0,), (1.0,))
    rescaled = Dataset.create(
        t.replace(actions=np.clip(np.asarray(t.actions), -1, 1)),
        dataclasses.replace(pendulum_small.metadata, action_space=unit_box),
    )
    with pytest.raises(HybridRLError, match=r"action space .* does not match Pendulum-v1"):
        run(recipe, "Pendulum-v1", dataset=rescaled, run_dir=tmp_path / "a2", **FAST)
    with pytest.raises(HybridRLError, match="needs a dataset"):
        run(recipe, "Pendulum-v1", run_dir=tmp_path / "b", **FAST)
    with pytest.raises(HybridRLError, match="multiple of num_envs"):
        run(
            recipe,
            "Pendulum-v1",
            dataset=pendulum_small,
            run_dir=tmp_path / "c",
            **{**FAST, "num_envs": 3},
        )
    with pytest.raises(HybridRLError, match=r"unknown run setting.*num_env"):
        run(recipe, "Pendulum-v1", dataset=pendulum_small, run_dir=tmp_path / "d", num_env=2)
    with pytest.raises(HybridRLError, match="no run to resume"):
        run(
            recipe,
            "Pendulum-v1",
            dataset=pendulum_small,
            run_dir=tmp_path / "e",
            resume=True,
            **FAST,
        )


def test_resume_with_a_larger_last_phase_continues_a_finished_run(tmp_path):
    # 500 online steps end at env step 600, an evaluation and checkpoint boundary; continued
    # to 800 the run matches one planned for 800 from the start, record for record.
    reference = resume_job.main(tmp_path / "reference")
    short = resume_job.main(tmp_path / "extended", online_steps=500)
    assert short.summary["total_env_steps"] == 600
    extended = resume_job.main(tmp_path / "extended", resume=True)

    def strip(records):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in records]

    assert strip(extended.records) == strip(reference.records)
    for a, b in zip(
        jax.tree_util.tree_leaves(extended.state),
        jax.tree_util.tree_leaves(reference.state),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # shrinking is not an extension
    with pytest.raises(HybridRLError, match="only the last phase's budget may grow"):
        resume_job.main(tmp_path / "extended", resume=True, online_steps=700)


def test_resume_refuses_another_configuration(pendulum_small, tmp_path):
    recipe = (
        get_recipe("iql_finetune")
        .with_budget(offline_updates=4, online_steps=8)
        .with_config(hidden_dims=(8,))
    )
    first = run(recipe, "Pendulum-v1", dataset=pendulum_small, run_dir=tmp_path, **FAST)
    with pytest.raises(HybridRLError, match="already holds a run"):
        run(recipe, "Pendulum-v1", dataset=pendulum_small, run_dir=tmp_path, **FAST)
    with pytest.raises(HybridRLError, match=r"another configuration.*settings\.seed"):
        run(
            recipe,
            "Pendulum-v1",
            dataset=pendulum_small,
            run_dir=tmp_path,
            resume=True,
            **{**FAST, "seed": 1},
        )
    bigger = recipe.with_config(hidden_dims=(16,))
    with pytest.raises(HybridRLError, match=r"recipe.config.hidden_dims"):
        run(bigger, "Pendulum-v1", dataset=pendulum_small, run_dir=tmp_path, resume=True, **FAST)
    # a truncated checkpoint file is named in the error
    ckpt = tmp_path / CHECKPOINT
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(HybridRLError, match=r"latest\.ckpt"):
        load_checkpoint({}, ckpt)
    # killed before its first checkpoint: --resume starts over, to the same numbers
    ckpt.unlink()
    again = run(
        recipe, "Pendulum-v1", dataset=pendulum_small, run_dir=tmp_path, resume=True, **FAST
    )
    assert again.summary["final_score"] == first.summary["final_score"]


def test_optional_loggers_are_never_required(tmp_path, monkeypatch):
    from hybridrl.training import metrics_log
    from hybridrl.training.metrics_log import RunLogger

    monkeypatch.setattr(metrics_log, "_has", lambda module: False)  # neither is installed
    RunLogger(tmp_path, []).close()  # default: TensorBoard only when installed
    with pytest.raises(HybridRLError, match="tensorboardX"):
        RunLogger(tmp_path, [], tensorboard=True)
    with pytest.raises(HybridRLError, match="wandb"):
        RunLogger(tmp_path, [], wandb_project="p")
    logger = RunLogger(tmp_path, [{"kind": "eval", "env_step": 0, "score": 1.0}])
    logger.log({"kind": "episode", "env_step": 5, "return": -3.0})
    logger.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["kind"] for x in lines] == ["eval", "episode"]
    assert (tmp_path / "evaluations.csv").read_text().count("\n") == 2  # header + one eval


@pytest.mark.parametrize(
    "name",
    [
        # the sparse presets differ from their dense recipes in constants only, and
        # tests/unit/test_sparse_presets.py runs one end to end: slow tier here
        pytest.param(n, marks=pytest.mark.slow) if n.endswith("_sparse") else n
        for n in sorted(__import__("hybridrl.training.recipes").training.recipes.RECIPES)
    ]
    + ["offline:td3_bc"],
)
def test_every_registered_recipe_runs_at_a_tiny_budget(name, pendulum_small, tmp_path):
    recipe = (
        get_recipe(name)
        .with_budget(offline_updates=4, warmup_steps=8, online_steps=8, on_policy_steps=8)
        .with_config(hidden_dims=(8,))
    )
    if agent_spec(recipe.agent).on_policy:  # rollouts of 4 steps, minibatches that fit
        phases = tuple(dataclasses.replace(p, rollout_steps=4) for p in recipe.phases)
        recipe = dataclasses.replace(recipe, phases=phases)
        if _has_field(recipe, "num_minibatches"):  # PPO's family (NPG takes whole batches)
            recipe = recipe.with_config(num_minibatches=2)
    if "num_qs" in recipe.config:  # keep the ensembles but make them cheap
        recipe = recipe.with_config(num_qs=3)
    if recipe.agent in ("cql", "calql"):
        recipe = recipe.with_config(num_samples=2)
    dataset = pendulum_small if recipe.needs_dataset or name != "sac" else None
    result = run(recipe, "Pendulum-v1", dataset=dataset, run_dir=tmp_path, **FAST)
    assert result.summary["total_env_steps"] == recipe.env_steps
    assert result.summary["final_score"] is not None
    if name.startswith("offline:"):
        assert result.summary["pretrain_score"] is None and result.summary["total_updates"] == 4
    params = (result.state.actor.params, result.state.critic.params)  # (config holds ±inf)
    # (PPO's critic is its value net: the same attribute)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(params))


def test_mixed_batches_are_mixed_in_every_critic_minibatch():
    """UTD agents split a batch into utd_ratio consecutive minibatches; each must hold the
    ratio (RLPD: every critic step sees both halves)."""
    from hybridrl.data.replay import from_dataset
    from hybridrl.training.run_data import mixed_sampler
    from tests.conftest import make_chain_dataset

    t = make_chain_dataset(episode_lengths=(5, 5), ends=("timeout", "timeout")).transitions
    offline = from_dataset(t.replace(rewards=np.ones(10, np.float32)))
    online = from_dataset(t.replace(rewards=np.zeros(10, np.float32)))
    ratio = jax.numpy.asarray(0.5)
    batch = jax.jit(mixed_sampler(4), static_argnums=2)(
        (offline, online, ratio), jax.random.PRNGKey(0), 64
    )
    per_minibatch = np.asarray(batch.rewards).reshape(4, 16).mean(axis=1)
    np.testing.assert_array_equal(per_minibatch, [0.5, 0.5, 0.5, 0.5])


def test_monte_carlo_returns_follow_the_agent_in_effect(pendulum_small):
    from hybridrl.training.runner import Runner, RunSettings

    def extras(name):
        recipe = get_recipe(name).with_budget(offline_updates=2, warmup_steps=2, online_steps=2)
        runner = Runner(recipe, RunSettings("Pendulum-v1"), pendulum_small, "unused")
        return runner.plan.online_extras

    assert extras("calql") == {"mc_returns"}  # Cal-QL keeps calibrating online
    assert extras("wsrl") == set()  # SAC fine-tuning: online rows enter the buffer at once
    recipe = Recipe(
        "cql_calibrated",
        "cql",
        (Online(steps=4, hooks=(SetConfig({"enable_calql": True}),)),),
    )
    runner = Runner(recipe, RunSettings("Pendulum-v1", num_envs=2), None, "unused")
    assert runner.plan.online_extras == {"mc_returns"}


def test_zero_length_env_phases_are_skipped(pendulum_small, tmp_path):
    recipe = (
        get_recipe("iql_finetune")
        .with_budget(offline_updates=4, online_steps=0)
        .with_config(hidden_dims=(8,))
    )
    result = run(recipe, "Pendulum-v1", dataset=pendulum_small, run_dir=tmp_path, **FAST)
    assert result.summary["total_env_steps"] == 0 and result.summary["total_updates"] == 4


def test_a_checkpoint_interval_shorter_than_an_episode_is_warned_about(pendulum_small, tmp_path):
    offline_only = (
        get_recipe("iql_finetune")
        .with_budget(offline_updates=4, online_steps=0)
        .with_config(hidden_dims=(8,))
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(offline_only, "Pendulum-v1", dataset=pendulum_small, run_dir=tmp_path / "a", **FAST)
    assert not [w for w in caught if "cut at a checkpoint" in str(w.message)]
    online = get_recipe("sac").with_budget(online_steps=40).with_config(hidden_dims=(8,))
    # Pendulum's episodes last 200 steps; 2 envs need 400 env steps between checkpoints
    with pytest.warns(UserWarning, match="cut at a checkpoint.*at least 400"):
        run(online, "Pendulum-v1", run_dir=tmp_path / "b", **FAST)


def test_subprocess_vector_envs_give_the_same_run(tmp_path):
    recipe = get_recipe("sac").with_budget(online_steps=40).with_config(hidden_dims=(8,))
    settings = {**FAST, "eval_interval": 20, "checkpoint_interval": 20}
    sync = run(recipe, "Pendulum-v1", run_dir=tmp_path / "sync", **settings)
    spawned = run(recipe, "Pendulum-v1", run_dir=tmp_path / "async", asynchronous=True, **settings)
    assert spawned.evaluations() == sync.evaluations()


def test_return_range_reward_normalization(pendulum_small, positive_rewards):
    """IQL's MuJoCo rewards: r * 1000 / (max - min episode return), then scale and bias."""
    from hybridrl.training.runner import Runner, RunSettings

    recipe = dataclasses.replace(
        get_recipe("offline:iql"),
        reward_normalization="return_range",
        reward_scale=2.0,
        reward_bias=0.5,
    )
    runner = Runner(recipe, RunSettings("Pendulum-v1"), pendulum_small, "unused")
    returns = pendulum_small.episode_returns()
    factor = 1000.0 / (returns.max() - returns.min())
    raw = np.asarray(pendulum_small.transitions.rewards)
    learned = np.asarray(runner.data.offline_transitions(mc_returns=False, discount=0.99).rewards)
    np.testing.assert_allclose(learned, raw * 2.0 * factor + 0.5, rtol=1e-5)
    assert runner.run_info()["reward_transform"]["scale"] == pytest.approx(2.0 * factor)
    assert get_recipe("offline:iql").to_dict()["reward_normalization"] == "auto"
    # Every episode the same return: no spread to divide by.
    with pytest.raises(HybridRLError, match=r"pendulum-small.*different returns"):
        Runner(recipe, RunSettings("Pendulum-v1"), positive_rewards, "unused")
    with pytest.raises(HybridRLError, match="computed from a dataset"):
        Recipe("sac_rn", "sac", (Online(steps=4),), reward_normalization="return_range").validate()
    with pytest.raises(HybridRLError, match="unknown reward_normalization 'max'"):
        dataclasses.replace(recipe, reward_normalization="max").validate()


def _has_field(recipe: Recipe, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(get_agent(recipe.agent).Config))
