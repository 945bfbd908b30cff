"""Datasets hybridrl did not write: D4RL-layout HDF5 and plain npz files, as users have them,
through `hybridrl run` and `hybridrl.training.runner.run`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from hybridrl.cli import app
from hybridrl.data import load_dataset
from hybridrl.data.io import save_npz
from hybridrl.training.offline import unit_actions
from hybridrl.training.recipes import get_recipe
from hybridrl.training.runner import Runner, RunSettings, run
from hybridrl.types import HybridRLError, SpaceSpec

cli = CliRunner()
TINY = [
    "--offline-updates",
    "20",
    "--set",
    "hidden_dims=[8,8]",
    "--eval-episodes",
    "1",
    "--no-progress",
]


def pendulum_arrays(episodes: int = 3, length: int = 40, seed: int = 0) -> dict[str, np.ndarray]:
    """Random-action Pendulum-v1 rollouts in D4RL's layout: float64, bool flags, every episode
    ending with a time-out, as a D4RL file has them."""
    env = gym.make("Pendulum-v1")
    env.action_space.seed(seed)
    rows: dict[str, list] = {
        k: [] for k in ("observations", "actions", "rewards", "next_observations")
    }
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        for _ in range(length):
            act = env.action_space.sample()
            nxt, rew, *_ = env.step(act)
            for key, value in zip(rows, (obs, act, rew, nxt), strict=True):
                rows[key].append(value)
            obs = nxt
    env.close()
    out = {k: np.asarray(v, np.float64) for k, v in rows.items()}
    n = episodes * length
    out["terminals"] = np.zeros(n, bool)
    out["timeouts"] = (np.arange(n) % length) == length - 1
    return out


def write_d4rl(path: Path, arrays: dict[str, np.ndarray], infos: bool = False) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
        if infos:
            f.create_dataset("infos/qpos", data=arrays["observations"][:, :2])
    return path


def _files(tmp_path: Path) -> dict[str, Path]:
    a = pendulum_arrays()
    no_next = {k: v.astype(np.float32) for k, v in a.items() if k != "next_observations"}
    no_next["terminals"], no_next["timeouts"] = a["terminals"], a["timeouts"]
    np.savez(tmp_path / "plain.npz", **a)
    np.savez(tmp_path / "plain-nonext.npz", **no_next)
    return {
        "hdf5-next-f64-infos": write_d4rl(tmp_path / "d4rl.hdf5", a, infos=True),
        "hdf5-no-next-f32": write_d4rl(tmp_path / "d4rl-nonext.h5", no_next),
        "npz": tmp_path / "plain.npz",
        "npz-no-next-f32": tmp_path / "plain-nonext.npz",
    }


@pytest.mark.parametrize(
    "kind", ["hdf5-next-f64-infos", "hdf5-no-next-f32", "npz", "npz-no-next-f32"]
)
def test_a_plain_file_takes_the_env_spaces(kind, tmp_path):
    ds = load_dataset(str(_files(tmp_path)[kind]))
    assert not np.isfinite(ds.metadata.action_space.low_array).any()  # loaded without the env
    recipe = get_recipe("offline:bc")
    runner = Runner(recipe, RunSettings("Pendulum-v1", eval_episodes=1), ds, tmp_path / "r")
    env = gym.make("Pendulum-v1")
    # unit_actions maps with the metadata's bounds: they must be the env's
    assert runner.dataset is not None
    assert runner.dataset.metadata.action_space == SpaceSpec.from_gym(env.action_space)
    assert runner.dataset.metadata.observation_space == SpaceSpec.from_gym(env.observation_space)
    if "no-next" in kind:  # D4RL's conversion: the last row of each episode is dropped
        assert len(ds) == 3 * 39 and ds.num_episodes == 3
    unit = np.asarray(unit_actions(runner.dataset).actions)
    np.testing.assert_allclose(unit, np.asarray(ds.transitions.actions) / 2.0, atol=1e-6)


def test_cli_runs_on_a_plain_d4rl_file(tmp_path):
    path, out = _files(tmp_path)["hdf5-next-f64-infos"], tmp_path / "run"
    args = ["run", "offline:bc", "--env", "Pendulum-v1", "--dataset", str(path), "--out", str(out)]
    result = cli.invoke(app, [*args, *TINY], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["total_updates"] == 20


def test_python_run_on_a_plain_npz(tmp_path):
    ds = load_dataset(str(_files(tmp_path)["npz"]))
    recipe = get_recipe("offline:bc").with_budget(offline_updates=20)
    recipe = recipe.with_config(hidden_dims=[8, 8])
    result = run(
        recipe, "Pendulum-v1", dataset=ds, run_dir=tmp_path / "r", progress=False, eval_episodes=1
    )
    assert result.summary["total_updates"] == 20


def test_an_out_of_bounds_action_names_the_field_and_row(tmp_path):
    a = pendulum_arrays()
    a["actions"][37] = 3.5  # Pendulum's torque is in [-2, 2]
    path = write_d4rl(tmp_path / "bad.hdf5", a)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hybridrl.cli",
            "run",
            "offline:bc",
            "--env",
            "Pendulum-v1",
            "--dataset",
            str(path),
            "--out",
            str(tmp_path / "run"),
            *TINY,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "field 'actions'" in line and "row 37" in line and str(path) in line
    assert "does not match" not in line
    assert not (tmp_path / "run").exists()


def test_metadata_bounds_that_differ_from_the_env_are_refused(tmp_path):
    a = pendulum_arrays()
    ds = load_dataset(str(write_d4rl(tmp_path / "d.hdf5", a)))
    from dataclasses import replace

    narrow = SpaceSpec.from_gym(gym.spaces.Box(-3.0, 3.0, (1,)))
    ds = replace(ds, metadata=replace(ds.metadata, action_space=narrow))
    path = save_npz(ds, tmp_path / "narrow.npz")
    args = ["run", "offline:bc", "--env", "Pendulum-v1", "--dataset", str(path)]
    result = cli.invoke(app, [*args, "--out", str(tmp_path / "run"), *TINY])
    assert isinstance(result.exception, HybridRLError)
    assert "does not match" in str(result.exception)
