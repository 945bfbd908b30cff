"""MiniGrid tasks end to end through an observation adapter named in the env id
(`hybridrl.envs.minigrid`): the adapters against minigrid's own wrappers, the one-line
refusals, then collect -> inspect -> PPO -> export -> eval on MiniGrid-Empty-5x5-v0, and a
learning check (slow). Skipped without the ``minigrid`` extra."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("minigrid")

from minigrid.wrappers import ImgObsWrapper, OneHotPartialObsWrapper

from hybridrl.cli import app
from hybridrl.data import load_dataset
from hybridrl.envs.make import env_spaces, make_env, make_vector_env, recorded_env_options
from hybridrl.envs.minigrid import adapter_id
from hybridrl.training.phases import OnPolicy
from hybridrl.training.recipes import get_recipe
from hybridrl.training.runner import run
from hybridrl.types import HybridRLError

TASK = "MiniGrid-Empty-5x5-v0"
ONEHOT, IMAGE = adapter_id(TASK, "onehot"), adapter_id(TASK, "image")


def _cli(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _ppo(steps: int, rollout_steps: int, **config):
    recipe = get_recipe("ppo_discrete").with_budget(on_policy_steps=steps)
    phases = tuple(
        dataclasses.replace(p, rollout_steps=rollout_steps, anneal_lr=False)
        for p in recipe.phases
        if isinstance(p, OnPolicy)
    )
    return dataclasses.replace(recipe, phases=phases).with_config(**config)


# ------------------------------------------------------------------------ adapters
def test_adapters_match_minigrids_own_wrappers():
    """DoorKey (a key, a door with its states) so that every kind of code is exercised."""
    base = "MiniGrid-DoorKey-5x5-v0"
    onehot, image = make_env(adapter_id(base, "onehot")), make_env(adapter_id(base, "image"))
    ref_onehot = OneHotPartialObsWrapper(gym.make(base))
    ref_image = ImgObsWrapper(gym.make(base))
    assert onehot.observation_space.shape == (7 * 7 * 20 + 4,)
    assert image.observation_space.shape == (7 * 7 * 3,)
    assert onehot.action_space == image.action_space == gym.spaces.Discrete(7)
    obs = [e.reset(seed=5)[0] for e in (onehot, image, ref_onehot, ref_image)]
    actions = np.random.default_rng(0).integers(0, 7, 60)
    for t, a in enumerate(actions):
        got_onehot, got_image, ref, ref_img = obs
        direction = np.eye(4, dtype=np.float32)[ref["direction"]]
        expected = np.concatenate([ref["image"].ravel().astype(np.float32), direction])
        np.testing.assert_array_equal(got_onehot, expected, err_msg=f"step {t}")
        np.testing.assert_array_equal(got_image, ref_img.ravel().astype(np.float32))
        assert onehot.observation_space.contains(got_onehot)
        assert image.observation_space.contains(got_image)
        steps = [e.step(int(a)) for e in (onehot, image, ref_onehot, ref_image)]
        obs = [s[0] for s in steps]
        if steps[2][2] or steps[2][3]:
            obs = [e.reset(seed=t)[0] for e in (onehot, image, ref_onehot, ref_image)]
    for e in (onehot, image, ref_onehot, ref_image):
        e.close()


def test_plain_and_misspelt_ids_are_refused_in_one_line():
    with pytest.raises(HybridRLError) as exc:
        make_env(TASK)
    assert str(exc.value) == (
        f"{TASK} has Dict observations (image, direction, mission), which hybridrl does not "
        f"take; name an observation adapter in the env id: '{ONEHOT}' (one-hot partial view + "
        f"direction) or '{IMAGE}' (minigrid's ImgObsWrapper, flattened)"
    )
    with pytest.raises(HybridRLError, match=r"unknown MiniGrid observation adapter 'rgb'"):
        make_env(f"minigrid-rgb/{TASK}")
    with pytest.raises(HybridRLError, match=r"did you mean minigrid-onehot/MiniGrid-Empty-5x5"):
        make_env("minigrid-onehot/MiniGrid-Empty-5x4-v0")
    with pytest.raises(HybridRLError, match=r"^CartPole-v1 has Dict|^minigrid-onehot/Cart"):
        make_env("minigrid-onehot/CartPole-v1")  # only MiniGrid tasks take an adapter
    with pytest.raises(HybridRLError, match=r"Discrete\(7\) action space; agent 'sac' acts"):
        make_vector_env(ONEHOT, 1, agent="sac")


def test_kwargs_and_subprocess_envs_reach_the_adapted_task():
    env = make_env(ONEHOT, size=6, render_mode="rgb_array")
    env.reset(seed=0)
    assert env.unwrapped.width == 6 and env.render().ndim == 3
    env.close()
    envs = make_vector_env(IMAGE, 1, asynchronous=True, action_kinds=("discrete",))
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (1, 147) and obs.dtype == np.float32
    envs.close()


def test_a_datasets_recorded_options_are_read_before_the_id_is_registered(monkeypatch):
    """A run on a Minari dataset reads the recorded env spec before it makes any env: the
    adapter id must resolve there too, or constructor arguments such as ``size`` are lost."""
    monkeypatch.delitem(gym.registry, IMAGE, raising=False)  # as in a fresh process
    kwargs = {"base_id": TASK, "adapter": "image", "size": 6, "render_mode": None}
    spec = {"id": IMAGE, "max_episode_steps": None, "kwargs": kwargs}
    assert recorded_env_options(IMAGE, {"env_spec": spec}) == (None, {"size": 6})


# ------------------------------------------------------------------------ end to end
def test_collect_and_inspect_a_random_dataset(tmp_path):
    data = tmp_path / "random.npz"
    _cli(["collect", ONEHOT, "-o", str(data), "--steps", "120", "--ref-episodes", "0"])
    ds = load_dataset(data)
    assert ds.metadata.env_id == ONEHOT
    assert ds.transitions.observations.shape == (120, 984) and ds.metadata.action_space.n == 7
    assert ds.transitions.actions.dtype == np.int64
    counts = np.bincount(ds.transitions.actions, minlength=7)
    assert counts.sum() == 120 and (counts > 0).all()  # the random policy uses all 7 actions
    report = _cli(["inspect", str(data)])
    assert all(f"{a}: {counts[a]} (" in report for a in range(7)), report


@pytest.mark.slow
def test_ppo_run_export_eval(tmp_path):
    """Slow tier: the PPO programs compile for 984 inputs and 7 actions, ~20 s of CPU time
    (the same chain on CartPole runs in the default tier, tests/integration/test_export_eval.py);
    what is MiniGrid's here is that run.json's env id rebuilds the adapted env."""
    recipe = _ppo(32, 8, hidden_dims=(8,), num_minibatches=2, update_epochs=1)
    run_dir = tmp_path / "ppo"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # episodes cut by the tiny budget
        result = run(recipe, ONEHOT, run_dir=run_dir, num_envs=2, eval_episodes=2,
                     eval_interval=10**6, checkpoint_interval=10**6, progress=False)  # fmt: skip
    assert json.loads((run_dir / "run.json").read_text())["env_id"] == ONEHOT
    assert result.summary["total_env_steps"] == 32
    policy = tmp_path / "policy.npz"
    assert "wrote the categorical policy of ppo" in _cli(
        ["export", str(run_dir), "-o", str(policy)]
    )
    last = [r for r in result.records if r["kind"] == "eval"][-1]
    from hybridrl.training.context import derived_seed

    seed = derived_seed(0, 10**9)  # the runner's evaluation seeds
    printed = _cli(["eval", str(policy), "--env", ONEHOT, "--episodes", "2", "--seed", str(seed)])
    assert f"return: {last['return_mean']:.2f} ± " in printed
    # the run directory's env id rebuilds the adapted env by itself
    assert (
        _cli(["eval", str(run_dir), "--episodes", "2", "--seed", str(seed)]).splitlines()[1:]
        == printed.splitlines()[1:]
    )
    assert env_spaces(ONEHOT)[0].shape == (984,)


@pytest.mark.slow
def test_ppo_learns_empty_5x5(tmp_path):
    """The argmax policy of an untrained net turns in place (return 0) and a random policy
    averages about 0.21 (docs/results.md); PPO reaches the 5-step optimum 1 - 0.9 * 5/100 =
    0.955 after ~3k env steps."""
    recipe = _ppo(4096, 32, learning_rate=3e-3, hidden_dims=(64,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(recipe, ONEHOT, run_dir=Path(tmp_path), num_envs=8, eval_episodes=5,
                     eval_interval=1024, checkpoint_interval=10**7, progress=False)  # fmt: skip
    evals = [r["return_mean"] for r in result.records if r["kind"] == "eval"]
    episodes = [r["return"] for r in result.records if r["kind"] == "episode" and not r["cut"]]
    assert np.mean(episodes[:16]) < 0.6 and evals[-1] >= 0.9, (episodes[:16], evals)
