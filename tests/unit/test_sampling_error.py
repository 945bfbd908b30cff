"""The sampling-error metric of PROPS: exact discrete forms against hand-computed values and
their known expectation, the fitted form against the closed-form Gaussian KL."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.evaluation.sampling_error import (
    empirical_policy_params,
    exact_sampling_error,
    exact_sampling_error_per_state,
    fit_sampling_error,
    trainable_mask,
)
from hybridrl.types import HybridRLError


# ----------------------------------------------------------------------------- bandit
def test_bandit_against_the_closed_form():
    # empirical frequencies equal to the policy: no error
    assert float(exact_sampling_error(np.array([0, 0, 1, 2]), np.array([0.5, 0.25, 0.25]))) == (
        pytest.approx(0.0, abs=1e-7)
    )
    # pi_D = (3/4, 1/4, 0) against uniform: 0.75 log(2.25) + 0.25 log(0.75); the unseen action
    # adds 0 log 0 = 0
    se = exact_sampling_error(np.array([0, 0, 0, 1]), np.full(3, 1 / 3))
    assert float(se) == pytest.approx(0.75 * np.log(2.25) + 0.25 * np.log(0.75), rel=1e-6)
    # a sampled action of probability 0 is infinitely surprising
    assert np.isinf(float(exact_sampling_error(np.array([0, 1]), np.array([1.0, 0.0]))))


def test_bandit_expectation_is_arms_minus_one_over_two_n():
    """E[KL(pi_D || pi)] = (|A| - 1) / (2 n) + O(n^-2) for n i.i.d. samples from pi.

    4000 draws put the mean within about 1.5% of its expectation: 5% tolerance fails a formula
    with |A| for |A| - 1 (33% off), the reverse KL (infinite) or a missing 1/2 (100% off)."""
    probs = np.array([0.4, 0.3, 0.2, 0.1])
    n, draws = 1000, 4000
    rng = np.random.default_rng(0)
    actions = rng.choice(4, size=(draws, n), p=probs)
    values = np.asarray(jax.jit(jax.vmap(exact_sampling_error, (0, None)))(actions, probs))
    assert values.min() >= -1e-7
    assert values.mean() == pytest.approx((4 - 1) / (2 * n), rel=0.05)


def test_tabular_is_the_visit_weighted_bandit_kl():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    states = np.array([0, 0, 0, 0, 1, 1, 2])  # state 2 once; no state unvisited here
    actions = np.array([0, 0, 0, 1, 1, 1, 1])
    expected = (
        4 / 7 * float(exact_sampling_error(actions[:4], probs[0]))
        + 2 / 7 * float(exact_sampling_error(actions[4:6], probs[1]))
        + 1 / 7 * float(exact_sampling_error(actions[6:], probs[2]))
    )
    se = exact_sampling_error_per_state(states, actions, probs)
    assert float(se) == pytest.approx(expected, rel=1e-6)
    # by hand: state 0 has pi_D = (3/4, 1/4), state 1 (0, 1), state 2 (0, 1)
    by_hand = (
        3 / 7 * np.log(0.75 / 0.5) + 1 / 7 * np.log(0.25 / 0.5) + 2 / 7 * np.log(1 / 0.1)
    ) + 1 / 7 * np.log(1 / 0.8)
    assert float(se) == pytest.approx(by_hand, rel=1e-6)


@pytest.mark.parametrize(
    ("actions", "probs", "message"),
    [
        (np.array([0, 3]), np.full(3, 1 / 3), r"in \[0, 3\)"),
        (np.array([-1, 0]), np.full(3, 1 / 3), r"in \[0, 3\)"),
        (np.array([0.0, 1.0]), np.full(3, 1 / 3), "integer array"),
        (np.array([], np.int64), np.full(3, 1 / 3), "empty"),
        (np.array([0, 1]), np.array([0.5, 0.6]), "sum to 1"),
    ],
)
def test_bad_bandit_inputs_are_refused(actions, probs, message):
    with pytest.raises(HybridRLError, match=message):
        exact_sampling_error(actions, probs)


# ----------------------------------------------------------------------------- fitted
def gaussian_log_prob(params, observations, actions):
    """A state-free 1-D Gaussian policy N(mu, exp(log_std))."""
    z = (actions[:, 0] - params["mu"]) / jnp.exp(params["log_std"])
    return -0.5 * z**2 - params["log_std"] - 0.5 * jnp.log(2 * jnp.pi)


def gaussian_kl(mu_p, sigma_p, mu_q, sigma_q):
    """KL(N(mu_p, sigma_p) || N(mu_q, sigma_q))."""
    return np.log(sigma_q / sigma_p) + (sigma_p**2 + (mu_p - mu_q) ** 2) / (2 * sigma_q**2) - 0.5


TARGET = {"mu": jnp.float32(0.0), "log_std": jnp.float32(0.0)}


def test_fitted_gaussian_recovers_the_closed_form_kl():
    rng = np.random.default_rng(1)
    data = rng.normal(0.5, 0.7, size=(20_000, 1)).astype(np.float32)
    obs = np.zeros((len(data), 1), np.float32)
    se = float(
        fit_sampling_error(
            gaussian_log_prob,
            TARGET,
            obs,
            data,
            jax.random.PRNGKey(0),
            epochs=600,
            learning_rate=1e-2,
        )
    )
    # with the MLE pi_D = N(mean, std) of the sample, eq. (1) *is* this KL exactly
    sample = gaussian_kl(data.mean(), data.std(), 0.0, 1.0)
    assert se == pytest.approx(sample, rel=2e-3)
    # and the sample's KL is the population's up to sampling noise
    assert se == pytest.approx(gaussian_kl(0.5, 0.7, 0.0, 1.0), rel=0.03)


def test_on_policy_samples_give_a_small_error_that_falls_with_n():
    """Samples from pi itself: the fitted 2-parameter pi_D is off only by sampling noise, so
    E[SE] ~ 2 / (2 n) = 1 / n."""
    means = []
    for n in (100, 1000, 10_000):
        values = []
        for seed in range(6):
            data = np.random.default_rng(seed).normal(0.0, 1.0, size=(n, 1)).astype(np.float32)
            se = fit_sampling_error(
                gaussian_log_prob,
                TARGET,
                np.zeros((n, 1), np.float32),
                data,
                jax.random.PRNGKey(seed),
                epochs=600,
                learning_rate=1e-2,
            )
            values.append(float(se))
        assert min(values) > -1e-4  # an MLE fits its data at least as well as pi does
        means.append(np.mean(values))
    assert means[0] > means[1] > means[2]
    for n, mean in zip((100, 1000, 10_000), means, strict=True):
        assert 0.2 / n < mean < 5.0 / n


def tabular_log_prob(params, observations, actions):
    logits = params["logits"][observations[:, 0]]
    return jnp.take_along_axis(jax.nn.log_softmax(logits), actions[:, None], axis=1)[:, 0]


def test_fitted_tabular_softmax_matches_the_exact_per_state_error():
    rng = np.random.default_rng(2)
    probs = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], np.float32)
    states = rng.integers(0, 2, size=400)
    actions = np.array([rng.choice(3, p=probs[s]) for s in states])
    params = {"logits": jnp.log(jnp.asarray(probs))}
    exact = float(exact_sampling_error_per_state(states, actions, probs))
    for batch_size in (None, 100):  # full batch (2025) and shuffled minibatches (PPOROS)
        fitted = fit_sampling_error(
            tabular_log_prob,
            params,
            states[:, None],
            actions,
            jax.random.PRNGKey(0),
            epochs=200 if batch_size is None else 100,
            learning_rate=5e-2 if batch_size is None else 1e-2,  # minibatch noise needs less
            batch_size=batch_size,
        )
        assert float(fitted) == pytest.approx(exact, rel=0.02, abs=1e-4)


def mlp_log_prob(params, observations, actions):
    h = jnp.tanh(observations @ params["hidden"]["w"] + params["hidden"]["b"])
    mean = h @ params["out"]["w"] + params["out"]["b"]
    z = (actions - mean) / jnp.exp(params["log_std"])
    return jnp.sum(-0.5 * z**2 - params["log_std"] - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def test_frozen_parameters_never_move_and_weights_scale_the_average():
    rng = np.random.default_rng(3)  # numpy data: no eager jax ops to compile
    params = {
        "hidden": {"w": rng.normal(size=(2, 8)).astype(np.float32), "b": np.zeros(8, np.float32)},
        "out": {
            "w": 0.1 * rng.normal(size=(8, 1)).astype(np.float32),
            "b": np.zeros(1, np.float32),
        },
        "log_std": np.zeros(1, np.float32),
    }
    obs = rng.normal(size=(256, 2)).astype(np.float32)
    actions = (0.3 + 0.5 * rng.normal(size=(256, 1))).astype(np.float32)

    def last_layer(path):  # the 2025 choice: only the output layer and log-std are fitted
        return path[0] != "hidden"

    mask = trainable_mask(params, last_layer)
    assert float(mask["hidden"]["w"]) == 0.0 and float(mask["out"]["w"]) == 1.0
    # PPOROS-style minibatches; one configuration, so one compilation for the whole test
    kwargs = dict(trainable=last_layer, epochs=200, learning_rate=1e-2, batch_size=64)
    fitted = empirical_policy_params(
        mlp_log_prob, params, obs, actions, jax.random.PRNGKey(0), **kwargs
    )
    np.testing.assert_array_equal(fitted["hidden"]["w"], params["hidden"]["w"])
    np.testing.assert_array_equal(fitted["hidden"]["b"], params["hidden"]["b"])
    assert not np.allclose(fitted["out"]["b"], params["out"]["b"])
    se = fit_sampling_error(mlp_log_prob, params, obs, actions, jax.random.PRNGKey(0), **kwargs)
    doubled = fit_sampling_error(
        mlp_log_prob,
        params,
        obs,
        actions,
        jax.random.PRNGKey(0),
        weights=np.full(256, 2.0, np.float32),
        **kwargs,
    )
    assert float(se) > 0 and float(doubled) == pytest.approx(2 * float(se), rel=1e-5)
    with pytest.raises(HybridRLError, match="batch_size must be in"):
        fit_sampling_error(
            mlp_log_prob, params, obs, actions, jax.random.PRNGKey(0), batch_size=512
        )
    with pytest.raises(HybridRLError, match="share a leading dimension"):
        fit_sampling_error(mlp_log_prob, params, obs[:10], actions, jax.random.PRNGKey(0))
