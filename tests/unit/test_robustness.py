"""Robustness metrics (hybridrl.evaluation.robustness) on hand-computed cases."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import bc, ro2o, sac
from hybridrl.core.distributions import Normal
from hybridrl.core.perturbations import uniform_perturbations
from hybridrl.evaluation.robustness import (
    METRIC_NAMES,
    agent_robustness,
    ensemble_std,
    policy_sensitivity,
    robustness_metrics,
    value_sensitivity,
)
from hybridrl.types import HybridRLError


def test_policy_sensitivity_by_hand() -> None:
    mean, log_std = jnp.zeros((2, 1)), jnp.zeros((2, 1))
    pm = jnp.array([[[1.0], [0.0]], [[0.0], [2.0]]])  # (B, K, A)
    pl = jnp.array([[[math.log(2.0)], [0.0]], [[0.0], [0.0]]])
    # row 0: KL(N(0,1) ‖ N(1,4)) = ln 2 + 2/8 - 1/2 = 0.4431472 (k = 1 gives 0)
    # row 1: KL(N(0,1) ‖ N(2,1)) = 4/2 = 2;  mean of the maxima: 1.2215736
    np.testing.assert_allclose(policy_sensitivity(mean, log_std, pm, pl), 1.2215736, rtol=1e-6)


def test_value_sensitivity_and_ensemble_std_by_hand() -> None:
    q_clean = jnp.array([[1.0], [2.0]])  # (N = 2, B = 1)
    q_pert = jnp.array([[[2.0, 0.0]], [[2.0, 3.0]]])  # (N, B, K = 2)
    # |Δ| = [1, 1] and [0, 1]: mean 0.75
    np.testing.assert_allclose(value_sensitivity(q_clean, q_pert), 0.75)
    # columns {1, 3} (unbiased std sqrt 2) and {0, 0} (0): mean 0.7071068
    np.testing.assert_allclose(ensemble_std(jnp.array([[1.0, 0.0], [3.0, 0.0]])), 0.7071068)
    with pytest.raises(HybridRLError, match="at least 2 members"):
        ensemble_std(jnp.ones((1, 3)))


def test_robustness_metrics_on_linear_models() -> None:
    # actor: N(2 s_0, 1) in each of 1 action dim; critic i: w_i s_0 + c_i + a_0, w = [1, -3]
    w, c = jnp.array([1.0, -3.0]), jnp.array([0.0, 1.0])

    def actor(o: jax.Array) -> Normal:
        return Normal(2.0 * o[:, :1], jnp.zeros((o.shape[0], 1)))

    def critic(o: jax.Array, a: jax.Array) -> jax.Array:
        return w[:, None] * o[None, :, 0] + c[:, None] + a[None, :, 0]

    obs = jnp.array([[0.5, 1.0, -1.0], [-0.2, 0.0, 2.0]])
    acts = jnp.array([[0.3], [-0.4]])
    key, eps, k = jax.random.PRNGKey(3), 0.1, 7
    out = robustness_metrics(actor, critic, obs, acts, key, eps, k)
    assert set(out) == set(METRIC_NAMES)
    deltas = np.asarray(uniform_perturbations(key, k, 3, eps))  # the same draw
    # KL(N(μ,1) ‖ N(μ + 2δ_0, 1)) = (2δ_0)^2 / 2 = 2 δ_0^2, the same max for every state
    np.testing.assert_allclose(out["policy_sensitivity"], 2 * np.max(deltas[:, 0] ** 2), rtol=1e-5)
    # |Q_i(s + δ) - Q_i(s)| = |w_i δ_0|: mean over i, k = mean|w| · mean_k |δ_0|
    np.testing.assert_allclose(
        out["value_sensitivity"], 2.0 * np.mean(np.abs(deltas[:, 0])), rtol=1e-5
    )
    # std over 2 members of (w_i s_0 + c_i + a): |Δ| / sqrt 2 with Δ = 4 s_0 - 1 (a cancels)
    by_hand = np.mean(np.abs(4 * np.asarray(obs[:, 0]) - 1.0)) / math.sqrt(2.0)
    np.testing.assert_allclose(out["q_std_data"], by_hand, rtol=1e-5)
    np.testing.assert_allclose(out["q_std_policy"], by_hand, rtol=1e-5)
    # ε = 0: nothing moves
    zero = robustness_metrics(actor, critic, obs, acts, key, 0.0, k)
    np.testing.assert_allclose(zero["policy_sensitivity"], 0.0, atol=1e-7)
    np.testing.assert_allclose(zero["value_sensitivity"], 0.0, atol=1e-7)


@pytest.mark.parametrize("module", [sac, ro2o])
def test_agent_robustness_reads_the_state_the_spec_declares(module) -> None:
    config = module.Config(hidden_dims=(8,), num_qs=3)
    state = module.init(config, jax.random.PRNGKey(0), 3, 2)
    obs = jax.random.normal(jax.random.PRNGKey(1), (16, 3))
    acts = jnp.clip(jax.random.normal(jax.random.PRNGKey(2), (16, 2)), -1, 1)
    out = agent_robustness(module, state, obs, acts, jax.random.PRNGKey(4), 0.05)
    assert set(out) == set(METRIC_NAMES)
    assert all(math.isfinite(v) and v >= 0 for v in out.values())
    assert out["policy_sensitivity"] > 0 and out["value_sensitivity"] > 0
    zero = agent_robustness(module, state, obs, acts, jax.random.PRNGKey(4), 0.0)
    assert zero["policy_sensitivity"] == pytest.approx(0.0, abs=1e-7)
    assert zero["q_std_data"] == pytest.approx(out["q_std_data"], rel=1e-6)


def test_agent_robustness_refuses_an_agent_without_the_declaration() -> None:
    state = bc.init(bc.Config(hidden_dims=(8,)), jax.random.PRNGKey(0), 3, 2)
    with pytest.raises(HybridRLError, match="robustness_probe"):
        agent_robustness(
            bc, state, jnp.zeros((2, 3)), jnp.zeros((2, 2)), jax.random.PRNGKey(0), 0.1
        )


def test_run_setting_is_checked_and_absent_from_old_fingerprints() -> None:
    from hybridrl.training.context import RunSettings
    from hybridrl.training.recipes import get_recipe

    recipe = get_recipe("offline:ro2o")
    with pytest.raises(HybridRLError, match="robustness_eps"):
        RunSettings(env_id="Pendulum-v1", robustness_eps=-0.1).validate(recipe)
    # runs written before the setting existed resume: None is left out of the fingerprint
    assert "robustness_eps" not in RunSettings(env_id="Pendulum-v1").fingerprint()
    assert RunSettings(env_id="Pendulum-v1", robustness_eps=0.01).fingerprint()[
        "robustness_eps"
    ] == pytest.approx(0.01)


def test_a_d3rlpy_trial_asking_for_robustness_metrics_is_refused() -> None:
    from hybridrl.sweep.d3rlpy_trial import check_trial
    from hybridrl.training.recipes import offline_recipe

    recipe = offline_recipe("cql", 10)
    check_trial(recipe, {"dataset": "d.npz"}, {})  # the same trial without it is fine
    with pytest.raises(HybridRLError, match="robustness_eps does not apply"):
        check_trial(recipe, {"dataset": "d.npz", "robustness_eps": 0.01}, {})
