"""Golden tests of the NPG/TRPO pieces (hybridrl.core.natural_gradient) and of the HNPG loss
terms (hybridrl.core.losses), against matrices and numbers computed by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.core import losses
from hybridrl.core import natural_gradient as ng


def test_conjugate_gradient_solves_a_small_spd_system():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(5, 5))
    a = m @ m.T + 0.5 * np.eye(5)
    b = rng.normal(size=5)
    x = ng.conjugate_gradient(
        lambda v: jnp.asarray(a, jnp.float32) @ v, jnp.asarray(b, jnp.float32), 10
    )
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), rtol=1e-3, atol=1e-3)
    # two iterations on a 2x2 system are exact
    a2 = np.array([[4.0, 1.0], [1.0, 3.0]], np.float32)
    x2 = ng.conjugate_gradient(lambda v: jnp.asarray(a2) @ v, jnp.array([1.0, 2.0]), 2)
    np.testing.assert_allclose(np.asarray(x2), [1 / 11, 7 / 11], rtol=1e-5)


def test_conjugate_gradient_stops_at_a_zero_residual():
    x = ng.conjugate_gradient(lambda v: 2.0 * v, jnp.zeros(3), 10)
    np.testing.assert_array_equal(np.asarray(x), 0.0)
    # converged after one step on a multiple of the identity; later steps change nothing
    x = ng.conjugate_gradient(lambda v: 2.0 * v, jnp.array([2.0, 4.0]), 10)
    np.testing.assert_allclose(np.asarray(x), [1.0, 2.0])


# A tiny Gaussian policy: mean = s W (W: 3x2), log σ = ℓ (2,), θ = [W.ravel(), ℓ] (8 numbers).
S = jnp.array([[1.0, 0.5, -1.0], [0.2, -0.3, 2.0], [-1.5, 1.0, 0.0], [0.3, 0.3, 0.3]])


def _mean_log_std(theta: jax.Array) -> tuple[jax.Array, jax.Array]:
    w, log_std = theta[:6].reshape(3, 2), theta[6:]
    return S @ w, jnp.broadcast_to(log_std, (S.shape[0], 2))


THETA = jnp.array([0.3, -0.2, 0.1, 0.4, -0.5, 0.2, -0.3, 0.1])


def _kl_fn(theta: jax.Array) -> jax.Array:
    m0, l0 = jax.lax.stop_gradient(_mean_log_std(THETA))
    m1, l1 = _mean_log_std(theta)
    return jnp.mean(losses.gaussian_kl(m0, l0, m1, l1))


def _explicit_fisher(theta: jax.Array) -> np.ndarray:
    """F = mean_s [J_μᵀ diag(σ⁻²) J_μ + J_ℓᵀ diag(2) J_ℓ]: the Gaussian's Fisher information
    in (μ, log σ) pulled back through the parameterisation (no autodiff of the KL)."""
    j_mu = np.asarray(jax.jacobian(lambda t: _mean_log_std(t)[0])(theta))  # (B, 2, 8)
    j_ls = np.asarray(jax.jacobian(lambda t: _mean_log_std(t)[1])(theta))
    _, log_std = _mean_log_std(theta)
    inv_var = np.exp(-2.0 * np.asarray(log_std))
    f = np.zeros((8, 8))
    for b in range(S.shape[0]):
        f += j_mu[b].T @ np.diag(inv_var[b]) @ j_mu[b] + j_ls[b].T @ (2.0 * j_ls[b])
    return f / S.shape[0]


def test_fisher_vector_product_equals_the_explicit_fisher_matrix():
    fisher = _explicit_fisher(THETA)
    v = jnp.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0, 0.7, 0.2])
    got = ng.fisher_vector_product(_kl_fn, THETA, v, 0.1)
    np.testing.assert_allclose(
        np.asarray(got), fisher @ np.asarray(v) + 0.1 * np.asarray(v), rtol=1e-4, atol=1e-5
    )


def test_trust_region_step_hits_max_kl():
    grad = jnp.array([0.5, -0.1, 0.2, 0.3, -0.4, 0.05, 0.1, -0.2])

    def fvp(v: jax.Array) -> jax.Array:
        return ng.fisher_vector_product(_kl_fn, THETA, v, 0.1)

    x = ng.conjugate_gradient(fvp, -grad, 10)
    step, expected = ng.trust_region_step(grad, x, fvp(x), 0.01)
    # the quadratic model of the KL (damped, as the official code) at the full step
    assert float(0.5 * step @ fvp(step)) == pytest.approx(0.01, rel=1e-4)
    assert float(expected) == pytest.approx(float(-grad @ step), rel=1e-5)
    assert float(expected) > 0
    # without damping and with only the mean moving, the KL is exactly quadratic: the true KL
    # at the full step is max_kl
    mask = jnp.concatenate([jnp.ones(6), jnp.zeros(2)])

    def fvp_mean(v: jax.Array) -> jax.Array:
        return mask * ng.fisher_vector_product(_kl_fn, THETA, mask * v, 0.0) + (1 - mask) * v

    x = ng.conjugate_gradient(fvp_mean, -grad * mask, 10)
    step, _ = ng.trust_region_step(grad * mask, x, fvp_mean(x), 0.01)
    assert float(_kl_fn(THETA + step)) == pytest.approx(0.01, rel=1e-3)


def test_zero_gradient_gives_a_zero_step():
    step, expected = ng.trust_region_step(jnp.zeros(3), jnp.zeros(3), jnp.zeros(3), 0.01)
    np.testing.assert_array_equal(np.asarray(step), 0.0)
    assert float(expected) == 0.0


def test_line_search_takes_the_first_acceptable_fraction():
    def loss(t: jax.Array) -> jax.Array:
        return jnp.sum(jnp.square(t - 3.0))

    theta, step = jnp.array([0.0]), jnp.array([10.0])
    # predicted improvement per unit fraction: -g·step = 6 · 10 = 60
    new, m = ng.line_search(loss, theta, step, jnp.asarray(60.0))
    # fraction 1: 9 → 49, worse; ½: 9 → 4, actual 5 / predicted 30 = 0.17 > 0.1: taken
    assert float(new[0]) == pytest.approx(5.0)
    assert float(m["step_fraction"]) == 0.5 and float(m["accepted"]) == 1.0
    assert float(m["loss_before"]) == 9.0 and float(m["loss_after"]) == pytest.approx(4.0)
    # a higher acceptance ratio skips ½ (0.17) and ¼ (actual 9 - 0.25 = 8.75 / 15 = 0.58):
    new, m = ng.line_search(loss, theta, step, jnp.asarray(60.0), accept_ratio=0.5)
    assert float(m["step_fraction"]) == 0.25 and float(new[0]) == pytest.approx(2.5)
    # a step uphill is never accepted: θ unchanged
    new, m = ng.line_search(loss, theta, -step, jnp.asarray(60.0))
    assert float(new[0]) == 0.0 and float(m["accepted"]) == 0.0
    assert float(m["loss_after"]) == 9.0


def test_gaussian_kl_by_hand():
    # dim 1: log 2 - 0 + (1 + 1) / (2·4) - ½ = log 2 - ¼; dim 2: 0 + (1 + 0) / 2 - ½ = 0
    kl = losses.gaussian_kl(
        jnp.array([0.0, 1.0]),
        jnp.array([0.0, 0.0]),
        jnp.array([1.0, 1.0]),
        jnp.log(jnp.array([2.0, 1.0])),
    )
    assert float(kl) == pytest.approx(np.log(2.0) - 0.25, rel=1e-6)


def test_importance_surrogate_by_hand():
    logp = jnp.log(jnp.array([0.5, 0.2]))
    old = jnp.log(jnp.array([0.25, 0.4]))
    adv = jnp.array([1.0, -2.0])
    # -(1·2 + (-2)·0.5) / 2 = -0.5; gradient wrt log π: -A·ratio / B = [-1, 0.5]
    assert float(losses.importance_surrogate_loss(logp, old, adv)) == pytest.approx(-0.5)
    g = jax.grad(lambda lp: losses.importance_surrogate_loss(lp, old, adv))(logp)
    np.testing.assert_allclose(np.asarray(g), [-1.0, 0.5], rtol=1e-6)


def test_hybrid_critic_loss_by_hand():
    q_on, r_on = jnp.array([1.0, 2.0, 0.0]), jnp.array([0.0, 2.0, 3.0])
    q_off, y_off = jnp.array([0.5, -1.0]), jnp.array([1.5, 1.0])
    # online: (1 + 0 + 9) / 3 = 10/3; offline: (1 + 4) / 2 = 2.5
    loss, on, off = losses.hybrid_critic_loss(q_on, r_on, q_off, y_off)
    assert float(on) == pytest.approx(10 / 3) and float(off) == pytest.approx(2.5)
    assert float(loss) == pytest.approx(10 / 3 + 2.5)
    loss0, _, _ = losses.hybrid_critic_loss(q_on, r_on, q_off, y_off, 0.0)
    assert float(loss0) == pytest.approx(10 / 3)
    # targets are constants
    g = jax.grad(lambda y: losses.hybrid_critic_loss(q_on, r_on, q_off, y)[0])(y_off)
    np.testing.assert_array_equal(np.asarray(g), 0.0)
