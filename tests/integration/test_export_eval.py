"""A trained policy you can use: ``hybridrl export``, ``hybridrl eval`` and ``collect --policy
RUN_DIR`` on a tiny IQL run, and their errors (one line naming the file, exit status 2)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from hybridrl import cli
from hybridrl.agents import get_agent
from hybridrl.data.collect import NoiseConfig, collect
from hybridrl.policies import MLPPolicy, PendulumSwingUp, load_policy
from hybridrl.training.phases import Online, OnPolicy, SetConfig, SwitchAgent
from hybridrl.training.recipes import Recipe, get_recipe
from hybridrl.training.restore import restore_run
from hybridrl.training.runner import run
from hybridrl.types import HybridRLError, SpaceSpec

runner = CliRunner()
PENDULUM_ACTIONS = SpaceSpec("box", (1,), "float32", (-2.0,), (2.0,))


def _ok(args: list[str]) -> str:
    result = runner.invoke(cli.app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _fails(args: list[str], monkeypatch, capsys) -> str:
    """``hybridrl ARGS`` through the real entry point: exit status 2 and one line on stderr."""
    monkeypatch.setattr(sys, "argv", ["hybridrl", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def dataset():
    return collect(
        "Pendulum-v1",
        PendulumSwingUp(),
        num_steps=400,
        seed=0,
        noise=NoiseConfig(gaussian_std=0.3),
        ref_min_score=-1200.0,
        ref_max_score=-150.0,
        random_reference_episodes=0,
        progress=False,
        name="pendulum-tiny",
    )


@pytest.fixture(scope="module")
def iql_run(dataset, tmp_path_factory):
    """offline:iql (observations normalized), 20 updates, 8x8 networks."""
    recipe = get_recipe("offline:iql").with_budget(offline_updates=20)
    recipe = recipe.with_config(hidden_dims=(8, 8))
    run_dir = tmp_path_factory.mktemp("runs") / "iql"
    result = run(
        recipe, "Pendulum-v1", dataset=dataset, run_dir=run_dir, eval_episodes=1, progress=False
    )
    return run_dir, result


def _agent_actions(agent_name: str, state, obs_stats, obs: np.ndarray) -> np.ndarray:
    x = obs if obs_stats is None else (obs - obs_stats[0]) / obs_stats[1]
    unit = get_agent(agent_name).act(state, x.astype(np.float32), jax.random.PRNGKey(0), True)
    return PENDULUM_ACTIONS.low_array + (np.asarray(unit) + 1) * 0.5 * 4.0


def _observations() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)


def test_export_writes_the_runs_final_policy(iql_run, tmp_path):
    run_dir, result = iql_run
    assert result.obs_stats is not None  # the recipe normalizes: the export must too
    out = tmp_path / "policy.npz"
    assert "policy of iql" in _ok(["export", str(run_dir), "-o", str(out)])
    policy = MLPPolicy.load(out)
    got = policy.act(_observations(), deterministic=True, rng=np.random.default_rng(0))
    expected = _agent_actions("iql", result.state, result.obs_stats, _observations())
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    info = policy.info
    assert info["run_dir"] == str(run_dir.resolve()) and info["recipe"] == "iql_offline"
    assert (info["agent"], info["env_id"], info["update"]) == ("iql", "Pendulum-v1", 20)
    assert info["reference_returns"] == [-1200.0, -150.0]
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["policy_io"]["observation_dim"] == 3


def test_eval_a_run_dir_and_a_policy_file(iql_run, tmp_path):
    run_dir, _ = iql_run
    out = _ok(["eval", str(run_dir), "--episodes", "2", "--seed", "3"])
    assert "on Pendulum-v1: 2 episode(s), deterministic" in out
    assert "episode   2" in out and "return: " in out and "±" in out
    assert "normalized score" in out and "the run's reference returns" in out
    policy = tmp_path / "p.npz"
    _ok(["export", str(run_dir), "-o", str(policy)])
    same = _ok(["eval", str(policy), "--episodes", "2", "--seed", "3"])
    # the same policy, the same episodes, the same reference returns (from the header)
    assert same.splitlines()[1:-1] == out.splitlines()[1:-1]
    assert same.splitlines()[-1].split("from")[0] == out.splitlines()[-1].split("from")[0]
    raw = _ok(["eval", str(policy), "--env", "Pendulum-v1", "--episodes", "1", "--stochastic"])
    assert "stochastic" in raw
    manual = _ok(
        ["eval", str(policy), "--episodes", "1", "--ref-random", "-1000", "--ref-expert", "0"]
    )
    assert "from --ref-random/--ref-expert" in manual


def test_eval_says_raw_returns_without_references(tmp_path):
    policy = MLPPolicy(
        kernels=[np.zeros((2, 1), np.float32)],
        biases=[np.zeros(1, np.float32)],
        kind="deterministic",
        action_low=np.array([-1.0], np.float32),
        action_high=np.array([1.0], np.float32),
        info={"env_id": "MountainCarContinuous-v0"},
    ).save(tmp_path / "car.npz")
    out = _ok(["eval", str(policy), "--episodes", "1"])
    assert "on MountainCarContinuous-v0" in out and "raw returns" in out


def test_collect_accepts_a_run_dir(iql_run, tmp_path):
    run_dir, result = iql_run
    out = tmp_path / "d.npz"
    args = ["collect", "Pendulum-v1", "--policy", str(run_dir), "--deterministic"]
    _ok([*args, "--steps", "30", "--ref-episodes", "0", "--out", str(out)])
    from hybridrl.data import load_dataset

    ds = load_dataset(str(out))
    assert ds.metadata.provenance["policy"]["agent"] == "iql"
    obs = np.asarray(ds.transitions.observations)
    expected = _agent_actions("iql", result.state, result.obs_stats, obs)
    np.testing.assert_allclose(np.asarray(ds.transitions.actions), expected, atol=1e-5)
    loaded = load_policy(str(run_dir), PENDULUM_ACTIONS, observation_dim=3)
    assert isinstance(loaded, MLPPolicy) and loaded.info["agent"] == "iql"


def test_bad_input_is_one_line_and_exit_2(iql_run, tmp_path, monkeypatch, capsys):
    run_dir, _ = iql_run
    empty = tmp_path / "no-ckpt"
    empty.mkdir()
    shutil.copy(run_dir / "run.json", empty / "run.json")
    err = _fails(["export", str(empty), "-o", str(tmp_path / "x.npz")], monkeypatch, capsys)
    assert str(empty) in err and "no checkpoint" in err
    assert not (tmp_path / "x.npz").exists()

    err = _fails(["export", str(tmp_path), "-o", str(tmp_path / "x.npz")], monkeypatch, capsys)
    assert "not a run directory" in err

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    err = _fails(["eval", str(foreign)], monkeypatch, capsys)
    assert str(foreign) in err and "not a hybridrl policy" in err

    # Pendulum's policy on MountainCarContinuous (2-dim observations): refused, not crashed.
    args = ["eval", str(run_dir), "--env", "MountainCarContinuous-v0", "--episodes", "1"]
    err = _fails(args, monkeypatch, capsys)
    assert str(run_dir) in err and "3-dim observations" in err
    args = ["collect", "MountainCarContinuous-v0", "--policy", str(run_dir), "--steps", "5"]
    err = _fails([*args, "--out", str(tmp_path / "c.npz")], monkeypatch, capsys)
    assert "3-dim observations" in err


def test_old_run_without_observation_stats(iql_run, dataset, tmp_path, monkeypatch, capsys):
    """A run written before run.json kept its statistics: a clear error, and --dataset."""
    run_dir, result = iql_run
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    info = json.loads((old / "run.json").read_text())
    del info["policy_io"]
    (old / "run.json").write_text(json.dumps(info))
    err = _fails(["export", str(old), "-o", str(tmp_path / "p.npz")], monkeypatch, capsys)
    assert "run.json" in err and "normalizes observations" in err and "--dataset" in err
    npz = tmp_path / "data.npz"
    from hybridrl.data import save_dataset

    save_dataset(dataset, str(npz))
    _ok(["export", str(old), "-o", str(tmp_path / "p.npz"), "--dataset", str(npz)])
    policy = MLPPolicy.load(tmp_path / "p.npz")
    expected = _agent_actions("iql", result.state, result.obs_stats, _observations())
    got = policy.act(_observations(), deterministic=True, rng=np.random.default_rng(0))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_restore_replays_the_switch_hooks(tmp_path):
    """TD3+BC, then TD3 with another (static) policy_freq from the second phase on: the
    restored state is the one in effect at the end (agent switched, config changed), and the
    exported policy acts as the run's agent."""
    recipe = Recipe(
        name="td3bc_to_td3",
        agent="td3_bc",
        config={"hidden_dims": (8, 8)},
        phases=(
            Online(name="collect", steps=4, updates_per_step=0.0),
            Online(
                name="finetune",
                steps=4,
                batch_size=8,
                hooks=(SwitchAgent("td3"), SetConfig({"policy_freq": 1})),
            ),
        ),
    )
    result = run(recipe, "Pendulum-v1", run_dir=tmp_path / "run", eval_episodes=1, progress=False)
    restored = restore_run(tmp_path / "run")
    assert restored.agent_name == "td3" and restored.state.config.policy_freq == 1
    assert restored.counters["env_step"] == 8
    jax.tree_util.tree_map(np.testing.assert_array_equal, restored.state, result.state)
    policy = load_policy(str(tmp_path / "run"), PENDULUM_ACTIONS)
    got = policy.act(_observations(), deterministic=True, rng=np.random.default_rng(0))
    expected = _agent_actions("td3", result.state, None, _observations())
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert policy.info["agent"] == "td3" and policy.info["env_step"] == 8


def test_eval_records_a_video(iql_run, tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="the 'video' extra is not installed")
    pytest.importorskip("pygame", reason="Pendulum renders with pygame (the 'video' extra)")
    run_dir, _ = iql_run
    video = tmp_path / "episodes.mp4"
    out = _ok(["eval", str(run_dir), "--episodes", "1", "--video", str(video)])
    assert f"wrote {video}" in out
    assert video.stat().st_size > 1000
    assert not list(Path(tmp_path).glob(".episodes.mp4.*"))  # no temporary file left


def test_video_without_the_extra_names_it(iql_run, tmp_path, monkeypatch):
    run_dir, _ = iql_run
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if not installed
    with pytest.raises(HybridRLError, match=r"hybridrl\[video\]"):
        runner.invoke(
            cli.app,
            ["eval", str(run_dir), "--episodes", "1", "--video", str(tmp_path / "v.mp4")],
            catch_exceptions=False,
        )
    assert not (tmp_path / "v.mp4").exists()


# ----------------------------------------------------------------------------- on-policy
def _tiny_on_policy(recipe_name: str) -> Recipe:
    """2 envs x 8 steps x 2 rollouts, one epoch of 2 minibatches, an 8-unit trunk; the
    recipe's own anneal_lr (a static config change the restore must replay)."""
    recipe = get_recipe(recipe_name).with_budget(on_policy_steps=32)
    phases = tuple(
        dataclasses.replace(p, rollout_steps=8) if isinstance(p, OnPolicy) else p
        for p in recipe.phases
    )
    recipe = dataclasses.replace(recipe, phases=phases)
    return recipe.with_config(hidden_dims=(8,), num_minibatches=2, update_epochs=1)


@pytest.fixture(scope="module", params=[("ppo_discrete", "CartPole-v1"), ("ppo", "Pendulum-v1")])
def ppo_run(request, tmp_path_factory):
    recipe_name, env_id = request.param
    run_dir = tmp_path_factory.mktemp("runs") / recipe_name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # episodes cut by the tiny budget
        result = run(
            _tiny_on_policy(recipe_name),
            env_id,
            run_dir=run_dir,
            num_envs=2,
            eval_episodes=3,
            eval_interval=10**6,
            checkpoint_interval=10**6,
            progress=False,
        )
    return run_dir, env_id, result


def test_ppo_export_and_eval_reproduce_the_runs_last_evaluation(ppo_run, tmp_path):
    """The exported file is the run's final PPO policy (its running observation statistics
    included: the Pendulum recipe normalizes, CartPole's does not) and, rolled out by
    ``hybridrl eval`` from the runner's evaluation seeds, scores the runner's last evaluation."""
    from hybridrl.evaluation.policy_eval import load_policy_source, run_episodes
    from hybridrl.training.context import derived_seed

    run_dir, env_id, result = ppo_run
    discrete = env_id == "CartPole-v1"
    restored = restore_run(run_dir)
    assert restored.obs_stats is None  # PPO normalizes inside act, not with run statistics
    assert restored.state.discrete == discrete
    jax.tree_util.tree_map(np.testing.assert_array_equal, restored.state, result.state)

    out = tmp_path / "policy.npz"
    kind = "categorical" if discrete else "linear_gaussian"
    assert f"wrote the {kind} policy of ppo" in _ok(["export", str(run_dir), "-o", str(out)])
    policy = MLPPolicy.load(out)
    assert (policy.obs_clip is not None) == (not discrete)
    raw = np.random.default_rng(0).normal(size=(32, policy.observation_dim)).astype(np.float32)
    got = policy.act(raw, deterministic=True, rng=np.random.default_rng(0))
    unit = np.asarray(get_agent("ppo").act(result.state, raw, jax.random.PRNGKey(0), True))
    if discrete:
        np.testing.assert_array_equal(got, unit)
    else:
        np.testing.assert_allclose(got, unit * 2.0, rtol=1e-5, atol=1e-5)  # Pendulum: ±2

    last_eval = [r for r in result.records if r["kind"] == "eval"][-1]
    assert last_eval["env_step"] == 32
    seed = derived_seed(0, 10**9)  # the runner's evaluation episodes: reset(seed + i)
    returns = run_episodes(load_policy_source(str(out)), env_id, 3, seed=seed)
    np.testing.assert_allclose(returns.mean(), last_eval["return_mean"], rtol=1e-5)
    np.testing.assert_allclose(returns.std(), last_eval["return_std"], rtol=1e-4, atol=1e-4)
    printed = _ok(["eval", str(out), "--episodes", "3", "--seed", str(seed)])
    assert f"return: {last_eval['return_mean']:.2f} ± " in printed
    assert (
        _ok(["eval", str(run_dir), "--episodes", "3", "--seed", str(seed)]).splitlines()[1:]
        == printed.splitlines()[1:]
    )
    stochastic = _ok(["eval", str(out), "--episodes", "1", "--stochastic"])
    assert "stochastic" in stochastic
