"""Rollouts, GAE and the running mean/variance (PPO's data side), against NumPy loops."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.core.running_norm import RunningMeanStd
from hybridrl.data.rollout import Rollout, concatenate, gae, keep_last
from hybridrl.types import HybridRLError


def gae_loop(r, v, nv, term, tout, gamma, lam):
    """GAE by the textbook backward loop, one env column at a time."""
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        next_adv = 0.0
        for t in reversed(range(T)):
            delta = r[t, n] + gamma * (1 - term[t, n]) * nv[t, n] - v[t, n]
            end = max(term[t, n], tout[t, n])
            next_adv = delta + gamma * lam * (1 - end) * next_adv
            adv[t, n] = next_adv
    return adv, adv + v


def _example():
    rng = np.random.default_rng(0)
    T, N = 5, 2
    r = rng.normal(size=(T, N))
    v = rng.normal(size=(T, N))
    nv = rng.normal(size=(T, N))
    term = np.zeros((T, N))
    tout = np.zeros((T, N))
    term[1, 0] = 1  # a terminal
    tout[3, 0] = 1  # a timeout
    term[2, 1] = tout[2, 1] = 1  # both
    return r, v, nv, term, tout


@pytest.mark.parametrize("gamma,lam", [(0.9, 0.8), (1.0, 1.0), (0.99, 1.0), (1.0, 0.0)])
def test_gae_matches_numpy_loop(gamma, lam):
    r, v, nv, term, tout = _example()
    adv, ret = gae(r, v, nv, term, tout, gamma, lam)
    want_adv, want_ret = gae_loop(r, v, nv, term, tout, gamma, lam)
    np.testing.assert_allclose(adv, want_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, want_ret, rtol=1e-5, atol=1e-5)


def test_gae_by_hand_on_one_env():
    # T=3, γ=0.5, λ=1: r=[1,1,1], V(s)=0, V(s')=[0, 0, 4], no end: δ=[1, 1, 1 + 0.5*4 = 3]
    # A_2 = 3, A_1 = 1 + 0.5*3 = 2.5, A_0 = 1 + 0.5*2.5 = 2.25
    r = np.ones((3, 1))
    zero = np.zeros((3, 1))
    nv = np.array([[0.0], [0.0], [4.0]])
    adv, _ = gae(r, zero, nv, zero, zero, 0.5, 1.0)
    np.testing.assert_allclose(adv[:, 0], [2.25, 2.5, 3.0])
    # a timeout at t=1 bootstraps V(s'_1)=2 but cuts the recursion: A_1 = 1 + 0.5*2 = 2
    nv2 = np.array([[0.0], [2.0], [4.0]])
    tout = np.array([[0.0], [1.0], [0.0]])
    adv, _ = gae(r, zero, nv2, zero, tout, 0.5, 1.0)
    np.testing.assert_allclose(adv[:, 0], [1.0 + 0.5 * 2.0, 2.0, 3.0])
    # a terminal at t=1 does not bootstrap: A_1 = 1
    adv, _ = gae(r, zero, nv2, tout, zero, 0.5, 1.0)
    np.testing.assert_allclose(adv[:, 0], [1.5, 1.0, 3.0])


def test_gae_lambda_one_gamma_one_is_monte_carlo_return_minus_value():
    r, v, nv, term, tout = _example()
    term[:] = 0
    tout[:] = 0
    term[-1] = 1  # every episode ends at T-1: A_t + V_t = sum of the remaining rewards
    nv[:-1] = v[1:]  # consecutive steps: V(s'_t) = V(s_{t+1}), so the values telescope
    _, ret = gae(r, v, nv, term, tout, 1.0, 1.0)
    np.testing.assert_allclose(ret, np.cumsum(r[::-1], axis=0)[::-1], rtol=1e-5, atol=1e-5)


def _rollout(T, N, start=0.0):
    x = start + jnp.arange(T * N, dtype=jnp.float32).reshape(T, N)
    return Rollout(
        observations=x[..., None].repeat(3, -1),
        actions=x.astype(jnp.int32),
        rewards=x,
        terminals=jnp.zeros((T, N)),
        timeouts=jnp.zeros((T, N)),
        next_observations=x[..., None].repeat(3, -1) + 1,
    )


def test_concatenate_and_keep_last_keep_time_order():
    a, b, c = _rollout(2, 3, 0), _rollout(2, 3, 100), _rollout(2, 3, 200)
    joined = concatenate([a, b])
    assert joined.num_steps == 4 and joined.num_envs == 3
    np.testing.assert_array_equal(joined.rewards[2:], b.rewards)
    buf = keep_last(None, a, 2)
    buf = keep_last(buf, b, 2)
    assert buf.num_steps == 4
    buf = keep_last(buf, c, 2)
    assert buf.num_steps == 4
    np.testing.assert_array_equal(buf.rewards, jnp.concatenate([b.rewards, c.rewards]))
    np.testing.assert_array_equal(buf.actions[-2:], c.actions)
    with pytest.raises(HybridRLError, match="different numbers"):
        concatenate([a, _rollout(2, 4)])
    with pytest.raises(HybridRLError):
        keep_last(None, a, 0)


# ----------------------------------------------------------------------------- RunningMeanStd
def gym_rms(batches, eps=1e-4):
    """gymnasium v0.29.1 RunningMeanStd (float64), re-implemented."""
    mean, var, count = np.zeros(batches[0].shape[1:]), np.ones(batches[0].shape[1:]), eps
    for x in batches:
        bm, bv, bc = x.mean(0), x.var(0), x.shape[0]
        delta = bm - mean
        tot = count + bc
        mean = mean + delta * bc / tot
        var = (var * count + bv * bc + delta**2 * count * bc / tot) / tot
        count = tot
    return mean, var, count


def test_running_mean_std_matches_numpy_over_concatenated_batches():
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (1, 7, 30, 2)]
    rms = RunningMeanStd.create((4,))
    for x in batches:
        rms = rms.update(jnp.asarray(x))
    allx = np.concatenate(batches)
    # the 1e-4 pseudo-count (mean 0, var 1) moves the result by about 1e-4 relative
    np.testing.assert_allclose(rms.mean, allx.mean(0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(rms.var, allx.var(0), rtol=1e-3)
    mean, var, count = gym_rms(batches)
    np.testing.assert_allclose(rms.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(rms.var, var, rtol=1e-5)
    np.testing.assert_allclose(rms.count, count, rtol=1e-6)
    x = jnp.asarray(batches[0])
    np.testing.assert_allclose(rms.normalize(x), (x - mean) / np.sqrt(var + 1e-8), rtol=1e-5)


def test_running_mean_std_is_a_jittable_pytree():
    rms = RunningMeanStd.create(())
    out = jax.jit(lambda r, x: r.update(x))(rms, jnp.array([1.0, 3.0]))
    # count 1e-4 + 2, mean ≈ 2, var ≈ 1 (batch var 1; prior var 1 with weight 1e-4)
    np.testing.assert_allclose(out.mean, 2.0, rtol=1e-4)
    np.testing.assert_allclose(out.var, 1.0, rtol=1e-3)
    assert float(rms.count) == pytest.approx(1e-4)  # the input was not mutated
