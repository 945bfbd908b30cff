"""Discrete action spaces end to end: env construction, collection, every file format, the
validation of bad values, inspection, replay and evaluation."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from hybridrl.cli import app
from hybridrl.data import load_dataset, save_dataset
from hybridrl.data.collect import NoiseConfig, collect
from hybridrl.data.d4rl import save_hdf5
from hybridrl.data.dataset import Dataset, with_env_spaces
from hybridrl.data.inspect import format_report, inspect_dataset
from hybridrl.data.io import save_npz
from hybridrl.data.replay import from_dataset
from hybridrl.data.transitions import make_transitions
from hybridrl.envs.make import (
    check_action_kind,
    env_actions,
    env_spaces,
    make_unit_action_env,
    make_vector_env,
)
from hybridrl.evaluation.policy_eval import PolicySource, run_episodes
from hybridrl.evaluation.rollout import evaluate_vector
from hybridrl.policies import CallablePolicy
from hybridrl.types import DatasetError, HybridRLError, SpaceSpec

BOX_AND_DISCRETE = ("box", "discrete")


@pytest.fixture(scope="module")
def cartpole() -> Dataset:
    return collect(
        "CartPole-v1", num_steps=300, seed=0, random_reference_episodes=0, progress=False
    )


# ------------------------------------------------------------------------ envs
def test_discrete_actions_pass_through_and_box_actions_are_rescaled():
    env = make_unit_action_env("CartPole-v1", action_kinds=BOX_AND_DISCRETE)
    assert env.action_space == gym.spaces.Discrete(2)
    assert not isinstance(env, gym.wrappers.RescaleAction)
    env.close()
    box = make_unit_action_env("Pendulum-v1", action_kinds=BOX_AND_DISCRETE)
    assert isinstance(box, gym.wrappers.RescaleAction)
    np.testing.assert_array_equal(box.action_space.high, [1.0])
    box.close()
    envs = make_vector_env("CartPole-v1", 3, action_kinds=("discrete",))
    assert envs.single_action_space == gym.spaces.Discrete(2)
    envs.reset(seed=0)
    envs.step(np.array([0, 1, 1]))
    envs.close()


def test_a_box_only_agent_is_refused_on_cartpole_with_one_line():
    expected = "CartPole-v1 has a Discrete(2) action space; agent 'sac' acts only in box spaces"
    with pytest.raises(HybridRLError) as exc:
        make_unit_action_env("CartPole-v1", action_kinds=("box",), agent="sac")
    assert str(exc.value) == expected
    with pytest.raises(HybridRLError) as exc:
        make_vector_env("CartPole-v1", 2, agent="sac")  # Box only is the default
    assert str(exc.value) == expected
    with pytest.raises(
        HybridRLError, match=r"^CartPole-v1 has a Discrete\(2\) action space; the agent"
    ):
        make_unit_action_env("CartPole-v1")
    _, act_space = env_spaces("Pendulum-v1")
    with pytest.raises(HybridRLError) as exc:
        check_action_kind("Pendulum-v1", act_space, ("discrete",), agent="dqn")
    assert str(exc.value) == (
        "Pendulum-v1 has a Box(-2, 2, (1,), float32) action space; agent 'dqn' acts only in "
        "discrete spaces"
    )
    with pytest.raises(HybridRLError, match="action_kinds must be"):
        make_unit_action_env("CartPole-v1", action_kinds=("multi_binary",))


def test_env_actions_take_integers_in_range_only():
    space = gym.spaces.Discrete(3)
    out = env_actions(jnp.array([[2], [0]], jnp.int32), space, 2)
    assert out.dtype == np.int64 and out.tolist() == [2, 0]
    for bad in (np.array([0.0, 1.0]), np.array([0, 3]), np.array([-1, 0]), np.array([0, 1, 2])):
        with pytest.raises(HybridRLError, match=r"Discrete\(3\) action space takes integer"):
            env_actions(bad, space, 2)
    box = np.array([[0.5]], np.float32)
    assert env_actions(box, gym.spaces.Box(-1, 1, (1,)), 1) is not None


def _constant_agent(action: int) -> types.ModuleType:
    """An agent module whose deterministic policy always plays ``action``."""
    agent = types.ModuleType(f"constant_discrete_agent_{action}")

    def act(state: Any, obs: Any, key: Any, deterministic: bool = False) -> Any:
        return jnp.full((obs.shape[0],), action, jnp.int32)

    agent.act = act  # type: ignore[attr-defined]
    return agent


def test_evaluate_vector_steps_a_discrete_env_with_int_actions():
    envs = make_vector_env("CartPole-v1", 2, action_kinds=BOX_AND_DISCRETE)
    try:
        returns = evaluate_vector(_constant_agent(1), None, envs, seed=0)
    finally:
        envs.close()
    # always pushing right topples the pole in about ten steps
    assert returns.shape == (2,) and np.all((returns >= 5) & (returns <= 20))


class _IntPolicy:
    """A duck-typed saved policy acting in a Discrete space (no `MLPPolicy` head does yet)."""

    def act(self, observations: np.ndarray, *, deterministic: bool, rng: Any) -> np.ndarray:
        return (observations[:, 2] > 0).astype(np.int64)  # push towards the pole's lean

    def check_spaces(self, observation_dim: int | None, action_space: SpaceSpec, **_: Any) -> None:
        assert action_space.kind == "discrete"


def test_policy_eval_runs_episodes_with_int_actions():
    source = PolicySource(policy=_IntPolicy(), where="test", env_id="CartPole-v1")  # type: ignore[arg-type]
    returns = run_episodes(source, "CartPole-v1", 2, seed=0)
    assert returns.shape == (2,) and np.all(returns > 25)  # random play scores about 20


# ------------------------------------------------------------------------ collection
def test_collect_cartpole_with_the_random_policy(cartpole):
    t, meta = cartpole.transitions, cartpole.metadata
    assert len(cartpole) == 300 and cartpole.num_episodes >= 10
    assert t.actions.dtype == np.int64 and t.actions.shape == (300,)
    assert meta.action_space == SpaceSpec(kind="discrete", shape=(), dtype="int64", n=2)
    assert meta.action_space.to_json() == {
        "kind": "discrete",
        "shape": [],
        "dtype": "int64",
        "n": 2,
    }
    assert 0.4 < t.actions.mean() < 0.6
    np.testing.assert_allclose(t.extras["behavior_log_probs"], -np.log(2), rtol=1e-6)
    again = collect(
        "CartPole-v1", num_steps=300, seed=0, random_reference_episodes=0, progress=False
    )
    assert again.content_hash() == cartpole.content_hash()


def test_collect_discrete_noise_and_bad_policy_actions():
    ds = collect(
        "CartPole-v1",
        CallablePolicy(lambda obs: 0, name="left"),
        num_steps=50,
        noise=NoiseConfig(random_action_prob=0.5),
        random_reference_episodes=0,
        progress=False,
    )
    assert 0 < ds.transitions.actions.sum() < 50  # epsilon-random actions among the lefts
    with pytest.raises(HybridRLError, match="Gaussian action noise needs a Box"):
        collect("CartPole-v1", num_steps=5, noise=NoiseConfig(gaussian_std=0.1), progress=False)
    for bad in (0.0, 2, -1):
        with pytest.raises(HybridRLError, match=r"for a Discrete\(2\) action space"):
            collect(
                "CartPole-v1",
                CallablePolicy(lambda obs, b=bad: b),
                num_steps=5,
                random_reference_episodes=0,
                progress=False,
            )


# ------------------------------------------------------------------------ files
@pytest.mark.parametrize("fmt", ["npz", "hdf5", "minari"])
def test_discrete_round_trip_through_every_format(cartpole, tmp_path, fmt):
    spec = (
        f"minari:hybridrl-test/cartpole-{fmt}-v0" if fmt == "minari" else str(tmp_path / f"d.{fmt}")
    )
    save_dataset(cartpole, spec)
    back = load_dataset(spec)
    assert back.metadata.action_space == cartpole.metadata.action_space
    assert back.transitions.actions.dtype == np.int64 and back.transitions.actions.shape == (300,)
    assert back.content_hash() == cartpole.content_hash()


def test_files_without_metadata_take_the_env_spaces(cartpole, tmp_path):
    t = cartpole.transitions
    plain = {k: np.asarray(getattr(t, k)) for k in ("observations", "actions", "rewards")}
    with h5py.File(tmp_path / "plain.hdf5", "w") as f:
        for k, v in {**plain, "terminals": t.terminals, "timeouts": t.timeouts}.items():
            f[k] = v
    back = load_dataset(tmp_path / "plain.hdf5", env_id="CartPole-v1")
    assert back.metadata.action_space.kind == "discrete" and back.metadata.action_space.n == 2
    np.savez(
        tmp_path / "plain.npz",
        **plain,
        next_observations=t.next_observations,
        terminals=t.terminals,
        timeouts=t.timeouts,
    )
    loose = load_dataset(tmp_path / "plain.npz")
    adopted = with_env_spaces(loose, *env_spaces("CartPole-v1"), "CartPole-v1")
    assert adopted.metadata.action_space.n == 2
    assert adopted.transitions.actions.dtype == np.int64


@pytest.mark.parametrize("fmt", ["npz", "hdf5"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: np.where(np.arange(a.size) == 7, -1, a), r"outside \[0, 2\).*row 7: -1"),
        (lambda a: np.where(np.arange(a.size) == 9, 2, a), r"outside \[0, 2\).*row 9: 2"),
        (lambda a: a.astype(np.float32), r"holds float32 values.*integer actions in \[0, 2\)"),
        (lambda a: a[:, None], r"has shape \(300, 1\).*flatten it to \(N,\)"),
    ],
    ids=["negative", "n", "float", "column"],
)
def test_bad_discrete_actions_are_refused_naming_file_and_field(
    cartpole, tmp_path, fmt, change, message
):
    bad = Dataset(
        cartpole.transitions.replace(actions=change(cartpole.transitions.actions)),
        cartpole.metadata,
    )
    path = tmp_path / f"bad.{fmt}"
    (save_npz if fmt == "npz" else save_hdf5)(bad, path)
    with pytest.raises(DatasetError, match=message) as exc:
        load_dataset(path)
    assert f"[file {path}, field 'actions']" in str(exc.value)


def test_make_transitions_stores_integer_actions_as_int64():
    t = make_transitions(
        np.zeros((3, 2)), np.array([0, 1, 2], np.int32), np.zeros(3), np.zeros((3, 2)), np.zeros(3)
    )
    assert t.actions.dtype == np.int64


# ------------------------------------------------------------------------ inspect, replay
def test_inspect_reports_the_action_histogram(cartpole, tmp_path):
    report = inspect_dataset(cartpole)
    counts = np.bincount(cartpole.transitions.actions, minlength=2)
    assert report["actions"]["counts"] == counts.tolist()
    np.testing.assert_allclose(report["actions"]["fractions"], counts / 300)
    assert f"0: {counts[0]} ({100 * counts[0] / 300:.1f}%)" in format_report(report)
    path = save_npz(cartpole, tmp_path / "c.npz")
    result = CliRunner().invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert f"1: {counts[1]}" in result.output


def test_replay_keeps_integer_actions(cartpole):
    buffer = from_dataset(cartpole)
    assert buffer.data.actions.shape == (300,)
    assert jnp.issubdtype(buffer.data.actions.dtype, jnp.integer)
    np.testing.assert_array_equal(np.asarray(buffer.data.actions), cartpole.transitions.actions)


def test_a_discrete_dataset_is_not_written_as_a_box(cartpole, tmp_path):
    path = Path(save_npz(cartpole, tmp_path / "d.npz"))
    with np.load(path) as f:
        assert f["actions"].dtype == np.int64 and f["actions"].shape == (300,)


def test_a_discrete_space_not_starting_at_zero_is_refused():
    with pytest.raises(HybridRLError, match=r"Discrete spaces that start at 0"):
        SpaceSpec.from_gym(gym.spaces.Discrete(3, start=1))
