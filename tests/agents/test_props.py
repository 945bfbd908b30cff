"""PROPS (`hybridrl.agents.props`): the behaviour loss against hand-computed numbers, what a
behaviour update does to over-represented actions, masking of rows not collected yet, the
approx-KL early stop, the sampling error of on-policy samples, and runs through `run`."""

from __future__ import annotations

import dataclasses
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import ppo, props
from hybridrl.core.distributions import Categorical, Normal
from hybridrl.data.rollout import Rollout
from hybridrl.training.phases import OnPolicy
from hybridrl.training.recipes import get_recipe
from hybridrl.training.runner import run

OBS_DIM, T, N = 3, 16, 2


def test_behaviour_loss_matches_hand_computed_values():
    # r = 0.5 (clipped from below: max(0.5, 0.7) = 0.7, no gradient), 1.0, 1.5 (max = r)
    target = jnp.log(jnp.array([0.4, 0.2, 0.1]))
    log_probs = target + jnp.log(jnp.array([0.5, 1.0, 1.5]))
    kl = jnp.array([0.1, 0.2, 0.3])
    loss, m = props.behaviour_loss(log_probs, target, kl, 0.3, 0.5)
    assert float(loss) == pytest.approx((0.7 + 1.0 + 1.5) / 3 + 0.5 * 0.2, rel=1e-6)
    assert float(m["policy_loss"]) == pytest.approx(3.2 / 3, rel=1e-6)
    assert float(m["kl"]) == pytest.approx(0.2, rel=1e-6)
    approx = ((0.5 - 1 - math.log(0.5)) + 0 + (1.5 - 1 - math.log(1.5))) / 3
    assert float(m["approx_kl"]) == pytest.approx(approx, rel=1e-5)
    assert float(m["clipfrac"]) == pytest.approx(2 / 3)
    # d loss / d log pi_phi = r / 3 where the unclipped ratio is the max, 0 where clipped
    grad = jax.grad(lambda lp: props.behaviour_loss(lp, target, kl, 0.3, 0.5)[0])(log_probs)
    np.testing.assert_allclose(grad, [0.0, 1.0 / 3, 0.5], rtol=1e-6, atol=1e-7)
    # a mask averages over its rows only; weights (AW-PROPS) scale the ratio term
    loss_m, _ = props.behaviour_loss(log_probs, target, kl, 0.3, 0.5, jnp.array([1, 1, 0]))
    assert float(loss_m) == pytest.approx((0.7 + 1.0) / 2 + 0.5 * 0.15, rel=1e-6)
    loss_w, _ = props.behaviour_loss(
        log_probs, target, kl, 0.3, 0.0, weights=jnp.array([2.0, 0.0, 1.0])
    )
    assert float(loss_w) == pytest.approx((1.4 + 0.0 + 1.5) / 3, rel=1e-6)


def test_kl_terms_match_closed_forms():
    # Gaussian KL(N(0, 1) || N(1, 2^2)) = log 2 + (1 + 1) / 8 - 1/2 in dim 0, 0 in dim 1,
    # averaged over the dimensions as PPOROS does
    phi = Normal(jnp.array([[0.0, 0.3]]), jnp.array([[0.0, -0.2]]))
    theta = Normal(jnp.array([[1.0, 0.3]]), jnp.array([[math.log(2.0), -0.2]]))
    expected = (math.log(2.0) + 0.25 - 0.5) / 2
    assert float(props._kl(phi, theta, False)[0]) == pytest.approx(expected, rel=1e-5)
    # Categorical KL([1/2, 1/2] || [1/4, 3/4]) = 1/2 log 2 + 1/2 log(2/3)
    p = Categorical(jnp.log(jnp.array([[0.5, 0.5]])))
    q = Categorical(jnp.log(jnp.array([[0.25, 0.75]])))
    expected = 0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0)
    assert float(props._kl(p, q, True)[0]) == pytest.approx(expected, rel=1e-5)


def _tiny(**overrides):
    base = dict(
        hidden_dims=(8, 8),
        props_num_steps=8,
        props_num_minibatches=4,
        props_update_epochs=4,
        props_learning_rate=1e-2,
        props_target_kl=None,
    )
    return props.Config(**{**base, **overrides})


def _buffer(discrete: bool, action: float | int) -> Rollout:
    obs = jax.random.normal(jax.random.PRNGKey(1), (T, N, OBS_DIM))
    if discrete:
        actions = jnp.full((T, N), action, jnp.int32)
    else:
        actions = jnp.full((T, N, 1), action, jnp.float32)
    z = jnp.zeros((T, N))
    return Rollout(obs, actions, z, z, z, obs)


_update_behaviour = jax.jit(props.update_behaviour)


def _behaviour_log_prob(state, obs, actions):
    return state.behaviour.apply_fn({"params": state.behaviour.params}, obs).log_prob(actions)


@pytest.mark.parametrize("discrete", [True, False], ids=["discrete", "box"])
def test_update_behaviour_lowers_over_represented_actions_and_ignores_invalid_rows(discrete):
    state = props.init(_tiny(), jax.random.PRNGKey(0), OBS_DIM, 3 if discrete else 1,
                       discrete=discrete)  # fmt: skip
    buffer = _buffer(discrete, 0 if discrete else 0.5)
    valid = np.ones((T, N), bool)
    valid[12:] = False  # the last 4 steps are not collected yet
    new, metrics = _update_behaviour(state, buffer, valid, jax.random.PRNGKey(3))
    # 24 valid rows in minibatches of (32 - 8) // 4 = 6: 4 per epoch
    assert float(metrics["minibatches"]) == 4 * 4
    assert all(np.isfinite(float(v)) for v in metrics.values())
    obs, act = buffer.observations[:12], buffer.actions[:12]
    target, _, _ = props.evaluate_actions(new, obs, act)
    behaviour = _behaviour_log_prob(new, obs, act)
    assert float(jnp.mean(behaviour - target)) < -0.05  # every row holds the same action
    # the target and its statistics are untouched
    for a, b in zip(jax.tree.leaves(state.actor), jax.tree.leaves(new.actor), strict=True):
        np.testing.assert_array_equal(a, b)
    # rows not collected yet have no effect, whatever they hold
    garbage = jax.tree_util.tree_map(
        lambda x: x.at[12:].set(jnp.asarray(2 if x.dtype == jnp.int32 else jnp.nan, x.dtype)),
        buffer,
    )
    other, _ = _update_behaviour(state, garbage, valid, jax.random.PRNGKey(3))
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(other), strict=True):
        np.testing.assert_array_equal(a, b)
    # sampling uses the behaviour policy; act (evaluation) the target
    lp_sample = props.sample_actions(new, obs[0], jax.random.PRNGKey(5))[1]
    a_sample = props.sample_actions(new, obs[0], jax.random.PRNGKey(5))[0]
    np.testing.assert_allclose(lp_sample, _behaviour_log_prob(new, obs[0], a_sample), rtol=1e-6)
    np.testing.assert_array_equal(
        props.act(new, obs[0], jax.random.PRNGKey(6), True),
        ppo.act(state, obs[0], jax.random.PRNGKey(6), True),
    )


def test_update_behaviour_stops_at_the_first_minibatch_over_the_target_kl():
    state = props.init(_tiny(props_target_kl=1e-9), jax.random.PRNGKey(0), OBS_DIM, 3,
                       discrete=True)  # fmt: skip
    buffer = _buffer(True, 1)
    valid = np.ones((T, N), bool)
    _, metrics = _update_behaviour(state, buffer, valid, jax.random.PRNGKey(3))
    # minibatch 1 starts at phi = theta (approx-KL 0) and steps; minibatch 2 sees KL > 1e-9
    assert float(metrics["minibatches"]) == 1 and float(metrics["epochs"]) == 1
    free = dataclasses.replace(state, config=dataclasses.replace(state.config,
                                                                 props_target_kl=None))  # fmt: skip
    _, metrics = _update_behaviour(free, buffer, valid, jax.random.PRNGKey(3))
    # 32 rows, minibatches of (32 - 8) // 4 = 6: 6 slots per epoch (the last of 2 rows)
    assert float(metrics["minibatches"]) == 4 * 6 and float(metrics["epochs"]) == 4


def test_sampling_error_falls_with_more_on_policy_samples():
    state = ppo.init(ppo.Config(hidden_dims=(8, 8)), jax.random.PRNGKey(0), OBS_DIM, 3,
                     discrete=True)  # fmt: skip
    measure = jax.jit(ppo.sampling_error)

    def error(rows: int, seed: int) -> float:
        k_obs, k_act = jax.random.split(jax.random.PRNGKey(seed))
        obs = jax.random.normal(k_obs, (rows, 1, OBS_DIM))
        actions, _ = ppo.sample_actions(state, obs, k_act)
        z = jnp.zeros((rows, 1))
        return float(measure(state, Rollout(obs, actions, z, z, z, obs), k_obs))

    small = np.mean([error(128, s) for s in range(2)])
    large = np.mean([error(2048, s) for s in range(2)])
    assert 0 <= large < small / 4, (small, large)


@pytest.mark.parametrize(
    "env_id",
    # ~60 s / ~40 s on 2 shared cores at load 5.6 (compiles); Pendulum in the slow tier
    ["CartPole-v1", pytest.param("Pendulum-v1", marks=pytest.mark.slow)],
)
def test_props_recipe_runs_end_to_end_with_behaviour_and_sampling_error_metrics(env_id, tmp_path):
    recipe = get_recipe("props").with_budget(on_policy_steps=64)
    phases = tuple(
        dataclasses.replace(p, rollout_steps=16, sampling_error_interval=1)
        for p in recipe.phases
        if isinstance(p, OnPolicy)
    )
    recipe = dataclasses.replace(recipe, phases=phases).with_config(
        hidden_dims=(8,),
        num_minibatches=2,
        update_epochs=2,
        props_num_steps=8,
        props_update_epochs=2,
        props_num_minibatches=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(
            recipe,
            env_id,
            run_dir=tmp_path,
            num_envs=2,
            eval_interval=10**6,
            checkpoint_interval=10**6,
            progress=False,
            eval_episodes=1,
        )
    train = [r for r in result.records if r["kind"] == "train"]
    assert len(train) == 64 // (2 * 16)
    for record in train:
        assert np.isfinite(record["sampling_error"]) and record["sampling_error"] >= -1e-3
        assert record["behaviour_minibatches"] >= 1
        assert {"behaviour_policy_loss", "behaviour_kl", "behaviour_approx_kl"} <= set(record)
