"""Collection from Gymnasium envs and the behaviour-policy formats."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrl.data.collect import NoiseConfig, collect, evaluate_policy
from hybridrl.data.transitions import find_discontinuities
from hybridrl.policies import (
    CallablePolicy,
    MLPPolicy,
    PendulumSwingUp,
    RandomPolicy,
    load_policy,
)
from hybridrl.types import HybridRLError, SpaceSpec


def test_collect_steps_boundaries_and_determinism():
    ds = collect("Pendulum-v1", num_steps=450, seed=3, random_reference_episodes=0, progress=False)
    t = ds.transitions
    assert len(ds) == 450
    # Pendulum never terminates; its 200-step limit gives time-outs at 199 and 399,
    # and the step budget cuts the third episode explicitly at 449.
    np.testing.assert_array_equal(np.flatnonzero(t.timeouts), [199, 399, 449])
    assert t.terminals.sum() == 0 and ds.metadata.provenance["final_episode_cut"]
    assert find_discontinuities(t).size == 0
    again = collect(
        "Pendulum-v1", num_steps=450, seed=3, random_reference_episodes=0, progress=False
    )
    other = collect(
        "Pendulum-v1", num_steps=450, seed=4, random_reference_episodes=0, progress=False
    )
    assert again.content_hash() == ds.content_hash()
    assert other.content_hash() != ds.content_hash()


def test_collect_terminals_from_terminating_env():
    ds = collect("Hopper-v5", num_episodes=5, seed=0, random_reference_episodes=0, progress=False)
    t = ds.transitions
    assert ds.num_episodes == 5 and t.terminals.sum() == 5 and t.timeouts.sum() == 0
    assert not ds.metadata.provenance["final_episode_cut"]
    assert ds.metadata.env_id == "Hopper-v5" and ds.metadata.observation_space.shape == (11,)


def test_collect_reference_and_noise_metadata():
    ds = collect(
        "Pendulum-v1",
        PendulumSwingUp(),
        num_episodes=2,
        seed=0,
        noise=NoiseConfig(gaussian_std=0.3),
        random_reference_episodes=2,
        ref_max_score=-150.0,
        progress=False,
    )
    assert ds.metadata.ref_min_score < -700  # random Pendulum play is poor
    assert ds.metadata.ref_max_score == -150.0
    assert ds.metadata.provenance["gaussian_std"] == 0.3
    assert np.all(np.abs(ds.transitions.actions) <= 2.0)


def test_scripted_controller_beats_random_by_far():
    good = evaluate_policy("Pendulum-v1", PendulumSwingUp(), 4, seed=0).mean()
    space = SpaceSpec.from_gym(__import__("gymnasium").spaces.Box(-2, 2, (1,)))
    bad = evaluate_policy("Pendulum-v1", RandomPolicy(space), 4, seed=0, deterministic=False).mean()
    assert good > -400 and bad < -800


def test_collect_bad_budget():
    with pytest.raises(HybridRLError, match="exactly one"):
        collect("Pendulum-v1", num_steps=5, num_episodes=1, progress=False)
    with pytest.raises(HybridRLError, match="positive"):
        collect("Pendulum-v1", num_steps=0, progress=False)
    with pytest.raises(HybridRLError, match="unknown environment"):
        collect("NoSuchEnv-v9", num_steps=5, progress=False)
    with pytest.raises(HybridRLError, match="noise"):
        NoiseConfig(gaussian_std=-1)


def _mlp(kind: str, out_dim: int) -> MLPPolicy:
    rng = np.random.default_rng(0)
    return MLPPolicy(
        kernels=[
            rng.normal(size=(3, 8)).astype(np.float32),
            rng.normal(size=(8, out_dim)).astype(np.float32),
        ],
        biases=[np.zeros(8, np.float32), np.zeros(out_dim, np.float32)],
        kind=kind,
        action_low=np.array([-2.0], np.float32),
        action_high=np.array([2.0], np.float32),
        obs_mean=np.zeros(3, np.float32),
        obs_std=np.ones(3, np.float32),
        info={"trained_by": "test"},
    )


@pytest.mark.parametrize(("kind", "out_dim"), [("deterministic", 1), ("tanh_gaussian", 2)])
def test_saved_policy_round_trip(tmp_path, kind, out_dim):
    pol = _mlp(kind, out_dim)
    path = pol.save(tmp_path / "p.npz")
    back = load_policy(
        str(path), SpaceSpec.from_gym(__import__("gymnasium").spaces.Box(-2, 2, (1,)))
    )
    obs = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    for deterministic in (True, False):
        a = pol.act(obs, deterministic=deterministic, rng=np.random.default_rng(7))
        b = back.act(obs, deterministic=deterministic, rng=np.random.default_rng(7))
        np.testing.assert_array_equal(a, b)
        assert np.all(np.abs(a) <= 2.0)
    ds = collect(
        "Pendulum-v1", back, num_steps=20, seed=0, random_reference_episodes=0, progress=False
    )
    assert ds.metadata.provenance["policy"]["trained_by"] == "test"


def test_load_policy_errors(tmp_path):
    space = SpaceSpec.from_gym(__import__("gymnasium").spaces.Box(-1, 1, (1,)))
    with pytest.raises(HybridRLError, match="unknown policy"):
        load_policy("nonsense", space)
    with pytest.raises(HybridRLError, match="cannot import"):
        load_policy("no_such_module_xyz:fn", space)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(2))
    with pytest.raises(HybridRLError, match="not a hybridrl policy"):
        load_policy(str(bad), space)


def test_callable_policy_single_and_batched():
    obs = np.ones((4, 3), np.float32)
    single = CallablePolicy(lambda o: np.array([o.sum()]))
    batched = CallablePolicy(lambda o: o.sum(axis=1, keepdims=True), batched=True)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(single.act(obs, deterministic=True, rng=rng), [[3.0]] * 4)
    np.testing.assert_array_equal(batched.act(obs, deterministic=True, rng=rng), [[3.0]] * 4)


def test_behavior_log_probs_recorded_only_when_exact():
    ds = collect("Pendulum-v1", num_steps=30, seed=0, random_reference_episodes=0, progress=False)
    np.testing.assert_allclose(ds.transitions.extras["behavior_log_probs"], -np.log(4.0))
    noisy = collect(
        "Pendulum-v1",
        num_steps=30,
        seed=0,
        noise=NoiseConfig(gaussian_std=0.1),
        random_reference_episodes=0,
        progress=False,
    )
    assert "behavior_log_probs" not in noisy.transitions.extras
    det = collect(
        "Pendulum-v1",
        _mlp("deterministic", 1),
        num_steps=30,
        seed=0,
        random_reference_episodes=0,
        progress=False,
    )
    assert "behavior_log_probs" not in det.transitions.extras


def test_tanh_gaussian_log_prob_is_a_density_over_the_action_range():
    pol = _mlp("tanh_gaussian", 2)
    obs = np.random.default_rng(2).normal(size=(1, 3)).astype(np.float32)
    grid = np.linspace(-2.0, 2.0, 200_001)[1:-1]
    dens = np.exp(pol.log_prob(np.repeat(obs, grid.size, 0), grid[:, None]).astype(np.float64))
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=2e-3)
    sampled = collect(
        "Pendulum-v1", pol, num_steps=5, seed=0, random_reference_episodes=0, progress=False
    ).transitions
    recomputed = pol.log_prob(sampled.observations, sampled.actions)
    np.testing.assert_allclose(sampled.extras["behavior_log_probs"], recomputed, rtol=1e-5)
