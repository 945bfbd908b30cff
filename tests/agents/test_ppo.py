"""PPO (`hybridrl.agents.ppo`): distributions, heads, normalisation against gymnasium's
wrappers, the update against an independent re-implementation of CleanRL's minibatch loop,
target-KL early stopping, the learning-rate anneal, and two small learning tests."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import ppo
from hybridrl.core.distributions import Categorical, Normal
from hybridrl.data.rollout import Rollout, RolloutBatch
from hybridrl.networks import PPOCategoricalActor, PPOGaussianActor, PPOStateValue

LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------- pieces
def test_categorical_and_normal_entropy_by_hand():
    d = Categorical(jnp.log(jnp.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])))
    # -(0.5 log 0.5 + 2 * 0.25 log 0.25) = 1.5 log 2; a point mass has entropy 0
    np.testing.assert_allclose(d.entropy(), [1.5 * math.log(2), 0.0], atol=1e-6)
    np.testing.assert_allclose(d.log_prob(jnp.array([1, 0])), [math.log(0.25), 0.0], atol=1e-6)
    np.testing.assert_array_equal(d.mode(), [0, 0])
    samples = Categorical(jnp.log(jnp.array([0.2, 0.8]))).sample(jax.random.PRNGKey(0), (4000,))
    assert samples.dtype == jnp.int32 and abs(float(samples.mean()) - 0.8) < 0.03
    # N(0, e^{2 log σ}) per dim: log σ + (1 + log 2π) / 2; summed over 2 dims
    n = Normal(jnp.zeros((1, 2)), jnp.array([[0.0, math.log(2.0)]]))
    np.testing.assert_allclose(n.entropy(), [math.log(2.0) + 1.0 + LOG_2PI], rtol=1e-6)


def test_ppo_heads_use_cleanrl_orthogonal_gains():
    obs = jnp.zeros((1, 4))
    actor = PPOGaussianActor(hidden_dims=(16, 16), action_dim=2, log_std_init=-0.5)
    params = actor.init(jax.random.PRNGKey(0), obs)["params"]

    def gram(kernel):  # orthogonal columns scaled by the gain: K^T K = gain^2 I
        return np.asarray(kernel.T @ kernel)

    np.testing.assert_allclose(gram(params["mean"]["kernel"]), 1e-4 * np.eye(2), atol=1e-9)
    np.testing.assert_allclose(
        gram(params["MLP_0"]["Dense_1"]["kernel"]), 2 * np.eye(16), atol=1e-5
    )
    np.testing.assert_array_equal(params["log_std"], [-0.5, -0.5])
    assert not np.any(np.asarray(params["mean"]["bias"]))
    value = PPOStateValue(hidden_dims=(16, 16))
    vparams = value.init(jax.random.PRNGKey(1), obs)["params"]
    np.testing.assert_allclose(gram(vparams["value"]["kernel"]), [[1.0]], atol=1e-6)
    cat = PPOCategoricalActor(hidden_dims=(16,), num_actions=3)
    cparams = cat.init(jax.random.PRNGKey(2), obs)["params"]
    np.testing.assert_allclose(gram(cparams["logits"]["kernel"]), 1e-4 * np.eye(3), atol=1e-9)
    # tanh trunk: the output is bounded by the output layer's weights however large the input
    x = 1e6 * jax.random.normal(jax.random.PRNGKey(3), (5, 4))
    bound = np.abs(np.asarray(params["mean"]["kernel"])).sum(0)
    assert np.all(np.abs(np.asarray(actor.apply({"params": params}, x).mean)) <= bound + 1e-6)


def _numpy_normalize_reward(rewards, terminateds, gamma, clip):
    """gymnasium v0.29.1 NormalizeReward on a vector env, then CleanRL's clip, in float64."""
    n = rewards.shape[1]
    returns = np.zeros(n)
    mean, var, count = 0.0, 1.0, 1e-4
    out = []
    for r, term in zip(rewards, terminateds, strict=True):
        returns = returns * gamma * (1 - term) + r
        bm, bv, bc = returns.mean(), returns.var(), n
        delta = bm - mean
        tot = count + bc
        mean = mean + delta * bc / tot
        var = (var * count + bv * bc + delta**2 * count * bc / tot) / tot
        count = tot
        out.append(np.clip(r / np.sqrt(var + 1e-8), -clip, clip))
    return np.array(out), returns


def test_normalize_rewards_matches_gymnasium_normalize_reward():
    rng = np.random.default_rng(0)
    steps, n = 20, 3
    rewards = rng.normal(2.0, 3.0, size=(steps, n))
    terms = (rng.random((steps, n)) < 0.2).astype(np.float64)
    cfg = ppo.Config(hidden_dims=(4,), discount=0.9, reward_clip=1.0)
    state = ppo.init(cfg, jax.random.PRNGKey(0), 2, 1)
    step = jax.jit(ppo.normalize_rewards)
    discounted = jnp.zeros(n)
    got = []
    for t in range(steps):
        state, discounted, scaled = step(state, discounted, rewards[t], terms[t])
        got.append(np.asarray(scaled))
    want, want_returns = _numpy_normalize_reward(rewards, terms, 0.9, 1.0)
    np.testing.assert_allclose(np.array(got), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(discounted, want_returns, rtol=1e-5)
    assert np.abs(np.array(got)).max() == pytest.approx(1.0)  # the clip was hit
    # off: rewards come back unchanged and nothing is updated
    off = ppo.init(dataclasses.replace(cfg, normalize_rewards=False), jax.random.PRNGKey(0), 2, 1)
    s2, d2, r2 = ppo.normalize_rewards(off, jnp.zeros(n), rewards[0], terms[0])
    np.testing.assert_allclose(r2, rewards[0].astype(np.float32))
    np.testing.assert_array_equal(d2, jnp.zeros(n))
    assert float(s2.return_norm.count) == pytest.approx(1e-4)


def test_normalize_observations_updates_first_then_clips_and_act_uses_the_stats():
    cfg = ppo.Config(hidden_dims=(8,), observation_clip=1.5)
    state = ppo.init(cfg, jax.random.PRNGKey(0), 2, 2)
    obs = jnp.array([[0.0, 10.0], [2.0, 10.0], [4.0, 40.0]])
    state, obs_n = ppo.normalize_observations(state, obs)
    mean, var = np.asarray(state.obs_norm.mean), np.asarray(state.obs_norm.var)
    np.testing.assert_allclose(mean, [2.0, 20.0], rtol=1e-3)  # updated with this batch first
    want = np.clip((np.asarray(obs) - mean) / np.sqrt(var + 1e-8), -1.5, 1.5)
    np.testing.assert_allclose(obs_n, want, rtol=1e-5)
    # act on RAW observations = the policy's mean on the normalised ones (stats not updated)
    dist = state.actor.apply_fn({"params": state.actor.params}, jnp.asarray(want))
    np.testing.assert_allclose(
        ppo.act(state, obs, jax.random.PRNGKey(1), True), np.clip(dist.mean, -1, 1), rtol=1e-5
    )
    off = ppo.init(
        dataclasses.replace(cfg, normalize_observations=False), jax.random.PRNGKey(0), 2, 2
    )
    s2, o2 = ppo.normalize_observations(off, obs.astype(jnp.int32))
    assert o2.dtype == jnp.float32 and float(s2.obs_norm.count) == pytest.approx(1e-4)


# ----------------------------------------------------------------------------- update
T, N, OBS = 8, 4, 3


def _setup(discrete: bool, seed: int = 0, **overrides):
    kwargs = {"hidden_dims": (16, 16), "update_epochs": 3, "num_minibatches": 4, **overrides}
    cfg = ppo.Config(**kwargs)
    state = ppo.init(cfg, jax.random.PRNGKey(seed), OBS, 3 if discrete else 2, discrete=discrete)
    k_obs, k_act, k_rew = jax.random.split(jax.random.PRNGKey(100 + seed), 3)
    obs = jax.random.normal(k_obs, (T + 1, N, OBS))
    actions, _ = ppo.sample_actions(state, obs[:-1], k_act)
    rollout = Rollout(
        observations=obs[:-1],
        actions=actions,
        rewards=jax.random.normal(k_rew, (T, N)),
        terminals=jnp.zeros((T, N)).at[2, 1].set(1.0),
        timeouts=jnp.zeros((T, N)).at[5, 3].set(1.0),
        next_observations=obs[1:],
    )
    return state, rollout


def test_prepare_recomputes_log_probs_values_and_flattens_row_major():
    state, rollout = _setup(False)
    k = jax.random.PRNGKey(5)
    actions, log_probs = ppo.sample_actions(state, rollout.observations, k)
    rollout = dataclasses.replace(rollout, actions=actions)
    batch = jax.jit(ppo.prepare)(state, rollout)
    np.testing.assert_allclose(batch.log_probs, log_probs.reshape(-1), rtol=1e-5, atol=1e-6)
    _, _, values = ppo.evaluate_actions(state, rollout.observations, rollout.actions)
    np.testing.assert_allclose(batch.values, values.reshape(-1), rtol=1e-6)
    np.testing.assert_allclose(batch.returns - batch.advantages, batch.values, atol=1e-5)
    # row t*N + n is step t of env n
    np.testing.assert_array_equal(batch.observations[1 * N + 2], rollout.observations[1, 2])
    assert batch.actions.shape == (T * N, 2)


def _reference_epoch(state, batch: RolloutBatch, key, lr):
    """CleanRL's minibatch loop for one epoch, written independently: its losses, torch's
    clip_grad_norm_ over both networks, and Adam by hand (torch/optax formula)."""
    cfg = state.config
    params = {"actor": state.actor.params, "critic": state.critic.params}
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    rows = batch.log_probs.shape[0]
    size = rows // cfg.num_minibatches
    order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 0), rows))

    def loss_fn(p, mb):
        dist = state.actor.apply_fn({"params": p["actor"]}, mb.observations)
        newlogprob = dist.log_prob(mb.actions)
        newvalue = state.critic.apply_fn({"params": p["critic"]}, mb.observations)
        logratio = newlogprob - mb.log_probs
        ratio = jnp.exp(logratio)
        adv = mb.advantages
        adv = (adv - adv.mean()) / (jnp.std(adv, ddof=1) + 1e-8)
        pg = jnp.maximum(-adv * ratio, -adv * jnp.clip(ratio, 0.8, 1.2)).mean()
        unclipped = (newvalue - mb.returns) ** 2
        vclip = mb.values + jnp.clip(newvalue - mb.values, -0.2, 0.2)
        vl = 0.5 * jnp.maximum(unclipped, (vclip - mb.returns) ** 2).mean()
        ent = dist.entropy().mean()
        kl = ((ratio - 1) - logratio).mean()
        return pg - cfg.ent_coef * ent + 0.5 * vl, (pg, vl, kl)

    grad_fn = jax.jit(jax.grad(loss_fn, has_aux=True))
    aux = None
    for i in range(cfg.num_minibatches):
        idx = order[i * size : (i + 1) * size]
        mb = jax.tree_util.tree_map(lambda x, idx=idx: x[idx], batch)
        g, aux = grad_fn(params, mb)
        total = math.sqrt(sum(float(jnp.sum(x**2)) for x in jax.tree_util.tree_leaves(g)))
        coef = min(1.0, 0.5 / (total + 1e-6))
        t = i + 1
        m = jax.tree_util.tree_map(lambda a, b, c=coef: 0.9 * a + 0.1 * b * c, m, g)
        v = jax.tree_util.tree_map(lambda a, b, c=coef: 0.999 * a + 0.001 * (b * c) ** 2, v, g)
        params = jax.tree_util.tree_map(
            lambda p, a, b, t=t: (
                p - lr * (a / (1 - 0.9**t)) / (jnp.sqrt(b / (1 - 0.999**t)) + 1e-5)
            ),
            params,
            m,
            v,
        )
    return params, aux


@pytest.mark.parametrize("discrete", [False, True])
def test_one_epoch_equals_cleanrl_minibatch_loop(discrete):
    state, rollout = _setup(discrete, update_epochs=1, ent_coef=0.01, anneal_iterations=4)
    state = dataclasses.replace(state, iteration=jnp.asarray(1, jnp.int32))  # lr = 0.75 lr0
    batch = ppo.prepare(state, rollout)
    key = jax.random.PRNGKey(7)
    new_state, metrics = jax.jit(ppo.update)(state, batch, key)
    want, (pg, vl, kl) = _reference_epoch(state, batch, key, 0.75 * 3e-4)
    got = {"actor": new_state.actor.params, "critic": new_state.critic.params}
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # the update moved the parameters well beyond the tolerance
    before = jax.tree_util.tree_leaves(state.actor.params)[0]
    assert np.abs(np.asarray(before) - np.asarray(jax.tree_util.tree_leaves(got)[0])).max() > 1e-4
    np.testing.assert_allclose(metrics["policy_loss"], pg, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(metrics["value_loss"], vl, rtol=1e-4)
    np.testing.assert_allclose(metrics["approx_kl"], kl, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(metrics["learning_rate"], 0.75 * 3e-4, rtol=1e-6)
    assert float(metrics["epochs_run"]) == 1 and int(new_state.iteration) == 2


def test_target_kl_stops_early_and_later_epochs_change_nothing():
    state, rollout = _setup(False, update_epochs=5, target_kl=1e-7)
    batch = ppo.prepare(state, rollout)
    key = jax.random.PRNGKey(3)
    stopped, metrics = jax.jit(ppo.update)(state, batch, key)
    epochs = int(metrics["epochs_run"])
    assert 1 <= epochs < 5
    short_cfg = dataclasses.replace(state.config, update_epochs=epochs, target_kl=None)
    short, short_metrics = jax.jit(ppo.update)(
        dataclasses.replace(state, config=short_cfg), batch, key
    )
    for a, b in zip(
        jax.tree_util.tree_leaves((stopped.actor, stopped.critic)),
        jax.tree_util.tree_leaves((short.actor, short.critic)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for name in ("policy_loss", "value_loss", "approx_kl", "clipfrac"):
        np.testing.assert_allclose(metrics[name], short_metrics[name], rtol=1e-5, atol=1e-7)
    assert float(metrics["approx_kl"]) > 1e-7
    # a loose target never stops
    loose = dataclasses.replace(state.config, update_epochs=5, target_kl=1e3)
    _, m = jax.jit(ppo.update)(dataclasses.replace(state, config=loose), batch, key)
    assert int(m["epochs_run"]) == 5


def test_learning_rate_anneals_linearly_to_zero():
    state, rollout = _setup(True, update_epochs=1, anneal_iterations=4)
    cfg = state.config
    lrs = [float(ppo.learning_rate(cfg, jnp.asarray(i))) for i in range(6)]
    np.testing.assert_allclose(lrs, [3e-4, 2.25e-4, 1.5e-4, 0.75e-4, 0.0, 0.0], rtol=1e-6)
    # at the end of the anneal the optimizer really takes no step
    done = dataclasses.replace(state, iteration=jnp.asarray(4, jnp.int32))
    new, _ = jax.jit(ppo.update)(done, ppo.prepare(done, rollout), jax.random.PRNGKey(0))
    for a, b in zip(
        jax.tree_util.tree_leaves(done.actor.params),
        jax.tree_util.tree_leaves(new.actor.params),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- learning
# A tiny on-policy loop of the test's own (the runner's loop is tested elsewhere): per vector
# step normalise -> sample -> env.step -> scale rewards; per iteration prepare -> update.
@jax.jit
def _target(obs_raw):
    return 0.5 + 0.25 * obs_raw[..., :1]


@jax.jit
def _bandit_iteration(state, key):
    """One iteration on a one-step task: s ~ U(-1, 1)^2, reward -(a - (0.5 + s_0 / 4))^2,
    every step terminal; T=4 steps of N=64 envs, rewards and observations normalised."""
    k_obs, k_act, k_upd = jax.random.split(key, 3)
    raw = jax.random.uniform(k_obs, (5, 64, 2), minval=-1.0, maxval=1.0)

    def step(carry, xs):
        state, discounted = carry
        obs_raw, k = xs
        state, obs_n = ppo.normalize_observations(state, obs_raw)
        actions, _ = ppo.sample_actions(state, obs_n, k)
        reward = -jnp.sum((jnp.clip(actions, -1.0, 1.0) - _target(obs_raw)) ** 2, axis=-1)
        ones = jnp.ones(64)
        state, discounted, scaled = ppo.normalize_rewards(state, discounted, reward, ones)
        return (state, discounted), (obs_n, actions, scaled)

    keys = jax.random.split(k_act, 4)
    (state, _), (obs, actions, rewards) = jax.lax.scan(
        step, (state, jnp.zeros(64)), (raw[:4], keys)
    )
    rollout = Rollout(
        observations=obs,
        actions=actions,
        rewards=rewards,
        terminals=jnp.ones((4, 64)),
        timeouts=jnp.zeros((4, 64)),
        next_observations=obs,  # never used: every step is terminal
    )
    return ppo.update(state, ppo.prepare(state, rollout), k_upd)


def _bandit_error(state):
    obs = jax.random.uniform(jax.random.PRNGKey(99), (256, 2), minval=-1.0, maxval=1.0)
    a = ppo.act(state, obs, jax.random.PRNGKey(0), deterministic=True)
    return float(jnp.mean((a - _target(obs)) ** 2))


def test_ppo_learns_a_continuous_one_step_task():
    cfg = ppo.Config(hidden_dims=(32, 32), learning_rate=1e-3, num_minibatches=4)
    state = ppo.init(cfg, jax.random.PRNGKey(0), 2, 1)
    before = _bandit_error(state)
    for i in range(40):  # 10k steps; the error falls below 0.01 after about 25 iterations
        state, _ = _bandit_iteration(state, jax.random.PRNGKey(i))
    after = _bandit_error(state)
    # a uniform random policy scores E[(a - a*)^2] = 1/3 + E[a*^2] ~ 0.59; the untrained mean ~0.26
    assert before > 0.2 and after < 0.01, (before, after)
