"""The continuous Comblock (hybridrl.envs.comblock) against the facts of the official
``lock_continuous.py`` (YifeiZhou02/HNPG @ 7d7ace1)."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrl.envs.comblock import (
    DEAD,
    ComblockEnv,
    ComblockOptimalPolicy,
    collect_offline,
    comblock_id,
    observation_dim,
    optimal_action_vector,
)
from hybridrl.envs.make import make_env


def _sure(env: ComblockEnv, k: int) -> np.ndarray:
    """+1 on k, -1 elsewhere: a logit gap of 20, so k is drawn w.p. 1 - 9e^-20."""
    a = np.full(env.action_dim, -1.0, np.float32)
    a[k] = 1.0
    return a


def test_observation_dim_and_hadamard():
    assert observation_dim(5) == 16 and observation_dim(10) == 16 and observation_dim(50) == 64
    env = ComblockEnv(horizon=10)
    m = env.rotation
    assert m.shape == (16, 16)
    np.testing.assert_array_equal(m @ m.T, 16 * np.eye(16))
    obs, info = env.reset(seed=0)
    assert obs.shape == (16,) and obs.dtype == np.float32
    # undoing the rotation gives the noisy one-hots of the latent and of h = 0, zero padding
    x = m.T @ obs.astype(np.float64) / 16
    assert abs(x[info["latent"]] - 1) < 0.5 and abs(x[3] - 1) < 0.5
    np.testing.assert_allclose(x[3 + 10 :], 0.0, atol=1e-5)


def test_optimal_actions_open_the_lock_and_get_reward_one():
    env = ComblockEnv(horizon=6, lock_seed=3)
    for seed in range(20):
        env.reset(seed=seed)
        total, steps, done = 0.0, 0, False
        while not done:
            assert env.latent != DEAD
            k = env.correct_action(env.latent, env.h)
            _, r, done, truncated, info = env.step(_sure(env, k))
            assert not truncated and info["discrete_action"] == k
            total, steps = total + r, steps + 1
            if not done:
                assert r == 0.0
        assert steps == 6 and total == 1.0


def test_a_wrong_action_leads_to_the_dead_state_forever():
    env = ComblockEnv(horizon=5, lock_seed=1)
    anti = 0
    for seed in range(40):
        env.reset(seed=seed)
        wrong = (env.correct_action(env.latent, 0) + 1) % env.action_dim
        _, r, done, _, info = env.step(_sure(env, wrong))
        assert info["latent"] == DEAD and r == 0.0 and not done
        rewards = []
        for h in range(1, 5):
            # even the action that would be correct from A or B keeps C dead
            _, r, done, _, info = env.step(_sure(env, int(env.opt_a[h])))
            assert info["latent"] == DEAD
            rewards.append(r)
        assert done and all(r == 0 for r in rewards[:-1]) and rewards[-1] in (0.0, 0.1)
        anti += rewards[-1] == 0.1
    assert 8 <= anti <= 32  # the anti-reward comes with probability ½


def test_switching_between_a_and_b():
    env = ComblockEnv(horizon=50)
    env.reset(seed=0)
    seen = []
    for _ in range(49):
        env.step(_sure(env, env.correct_action(env.latent, env.h)))
        seen.append(env.latent)
    assert set(seen) == {0, 1}


def test_softmax_temperature_of_the_discrete_action():
    env = ComblockEnv(horizon=3)
    rng = np.random.default_rng(0)
    a = np.zeros(env.action_dim)
    a[4] = 0.1  # logit gap 1: P(4) = e / (e + 9)
    draws = np.array([env.discrete_action(a, rng) for _ in range(20_000)])
    assert abs(np.mean(draws == 4) - np.e / (np.e + 9)) < 0.01


def test_seeding_is_deterministic_and_the_lock_is_fixed_by_its_seed():
    def episode(seed: int) -> list[np.ndarray]:
        env = make_env(comblock_id(5))
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for _ in range(5):
            obs, *_ = env.step(np.full(10, 0.3, np.float32))
            out.append(obs)
        return out

    for x, y in zip(episode(7), episode(7), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(episode(7)[1], episode(8)[1])
    a, b = ComblockEnv(horizon=10), ComblockEnv(horizon=10)
    np.testing.assert_array_equal(a.opt_a, b.opt_a)
    assert not np.array_equal(a.opt_a, ComblockEnv(horizon=10, lock_seed=1).opt_a)


def test_any_horizon_id_is_made_on_first_use():
    env = make_env("hybridrl/Comblock-H7-v0")
    assert env.unwrapped.horizon == 7 and env.observation_space.shape == (16,)


def test_decoding_policy_is_optimal():
    env = ComblockEnv(horizon=10)
    policy = ComblockOptimalPolicy(env)
    rng = np.random.default_rng(0)
    wins = 0
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            a = policy.act(obs[None], deterministic=True, rng=rng)[0]
            obs, r, done, _, _ = env.step(a)
        wins += r == 1.0
    assert wins >= 29  # each step is correct with probability e^10 / (e^10 + 9)


@pytest.mark.parametrize("horizon", [3, 10])
def test_offline_data_from_eps_greedy(horizon: int):
    ds = collect_offline(horizon, 300, seed=4)
    t = ds.transitions
    assert len(ds) == 300 * horizon and ds.num_episodes == 300
    assert ds.metadata.env_id == comblock_id(horizon)
    terminals = np.asarray(t.terminals).reshape(300, horizon)
    np.testing.assert_array_equal(terminals[:, -1], 1.0)
    np.testing.assert_array_equal(terminals[:, :-1], 0.0)
    np.testing.assert_array_equal(np.asarray(t.timeouts), 0.0)
    # consecutive rows chain within an episode
    obs = np.asarray(t.observations).reshape(300, horizon, -1)
    nxt = np.asarray(t.next_observations).reshape(300, horizon, -1)
    np.testing.assert_array_equal(obs[:, 1:], nxt[:, :-1])
    # ε = 1/H: a step is correct w.p. (1 - ε) + ε·(≈0.1): P(open) ≈ that to the power H
    eps = 1.0 / horizon
    p_open = ((1 - eps) * 0.9996 + eps * 0.1) ** horizon
    assert abs(np.mean(ds.episode_returns() >= 1.0) - p_open) < 0.1
    # greedy actions are one-hot, ε-actions uniform in [0, 1]
    acts = np.asarray(t.actions)
    assert acts.min() >= 0.0 and acts.max() <= 1.0
    onehot = np.isclose(acts.sum(1), 1.0) & (acts.max(1) == 1.0)
    assert abs(np.mean(~onehot) - eps) < 0.05
    again = collect_offline(horizon, 300, seed=4)
    assert again.content_hash() == ds.content_hash()


def test_optimal_action_vector_is_one_hot():
    env = ComblockEnv(horizon=4)
    v = optimal_action_vector(env, 1, 2)
    assert v.sum() == 1.0 and v[env.opt_b[2]] == 1.0
