"""A Minari dataset's env spec (time limit, constructor arguments) makes the run's envs."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import minari
import numpy as np
import pytest

from hybridrl.agents import AGENTS
from hybridrl.data import load_dataset
from hybridrl.envs.make import recorded_env_options
from hybridrl.training.phases import Warmup
from hybridrl.training.recipes import Recipe
from hybridrl.training.runner import Runner, RunSettings, run
from tests.o2o import probe_agent

DATASET = "hybridrl-test/pendulum-short-v0"
# Random-action collection by the probe agent (no networks): seconds, not a minute of compiles.
RECIPE = Recipe(
    name="collect", agent="probe", phases=(Warmup(name="collect", steps=100, policy="random"),)
)


@pytest.fixture(autouse=True)
def _probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(AGENTS, "probe", probe_agent)


def _minari_pendulum(steps: int = 150) -> None:
    """A dataset recorded by Minari itself on Pendulum-v1 with a 50-step limit and g=9."""
    env = minari.DataCollector(gym.make("Pendulum-v1", max_episode_steps=50, g=9.0))
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari nags about empty optional fields
        env.create_dataset(DATASET, algorithm_name="random", author="test", description="t")
    env.close()


def test_online_and_eval_episodes_follow_the_recorded_spec(tmp_path):
    _minari_pendulum()
    ds = load_dataset(f"minari:{DATASET}")
    assert recorded_env_options("Pendulum-v1", ds.metadata.provenance) == (50, {"g": 9.0})
    assert recorded_env_options("Hopper-v5", ds.metadata.provenance) == (None, None)
    recipe = RECIPE
    settings = {"eval_episodes": 1, "eval_interval": 100, "checkpoint_interval": 100}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(recipe, "Pendulum-v1", dataset=ds, run_dir=tmp_path / "r", progress=False, **settings)
    # the horizon the checkpoint warning uses is the recorded one (50 <= 100 per env)
    assert not [w for w in caught if "checkpoint_interval" in str(w.message)]
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").open()]
    episodes = [r for r in records if r["kind"] == "episode"]
    assert [(r["length"], r["cut"]) for r in episodes] == [(50, False), (50, False)]
    saved = json.loads((tmp_path / "r" / "run.json").read_text())["fingerprint"]["settings"]
    assert saved["max_episode_steps"] == 50 and saved["env_kwargs"] == {"g": 9.0}
    # the evaluation envs too: one episode is 50 steps of an env with g = 9
    runner = Runner(recipe, RunSettings("Pendulum-v1", **settings), ds, tmp_path / "r")
    envs = runner._make_envs(1)
    envs.reset(seed=0)
    assert envs.envs[0].unwrapped.g == 9.0  # type: ignore[attr-defined]
    steps = 1
    while not any(envs.step(np.zeros((1, 1), np.float32))[3]):
        steps += 1
    envs.close()
    assert steps == 50
    # a resume rebuilds the same settings from the same dataset: accepted
    run(
        recipe,
        "Pendulum-v1",
        dataset=ds,
        run_dir=tmp_path / "r",
        progress=False,
        resume=True,
        **settings,
    )


def test_given_options_win_and_defaults_keep_old_fingerprints(tmp_path):
    _minari_pendulum(60)
    ds = load_dataset(f"minari:{DATASET}")
    recipe = RECIPE
    given = RunSettings("Pendulum-v1", max_episode_steps=20, env_kwargs={"g": 10.0})
    runner = Runner(recipe, given, ds, tmp_path / "r")
    assert (runner.settings.max_episode_steps, runner.settings.env_kwargs) == (20, {"g": 10.0})
    # runs written before these settings existed have no such keys in their fingerprint
    assert "max_episode_steps" not in RunSettings("Pendulum-v1").fingerprint()
    assert (
        "env_kwargs"
        not in Runner(recipe, RunSettings("Pendulum-v1"), None, tmp_path).fingerprint()["settings"]
    )
