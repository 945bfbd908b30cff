"""Gaussian and tanh-Gaussian distributions against scipy and numeric integration."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from hybridrl.core.distributions import (
    Normal,
    TanhNormal,
    gaussian_log_prob,
    tanh_log_det_jacobian,
)

MEAN = np.array([0.1, -0.2], np.float32)
LOG_STD = np.log(np.array([0.5, 1.5], np.float32))


def test_gaussian_log_prob_matches_scipy_and_hand_value() -> None:
    x = np.array([[0.3, -0.7], [0.0, 2.0]], np.float32)
    got = gaussian_log_prob(jnp.asarray(MEAN), jnp.asarray(LOG_STD), jnp.asarray(x))
    want = stats.norm.logpdf(x, MEAN, np.exp(LOG_STD)).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # Standard normal at 0 in 1-D: -log(2 pi) / 2 = -0.9189385.
    one = gaussian_log_prob(jnp.zeros(1), jnp.zeros(1), jnp.zeros(1))
    np.testing.assert_allclose(one, -0.9189385, rtol=1e-6)


def test_tanh_log_det_jacobian_stable_form() -> None:
    u = jnp.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])
    naive = jnp.sum(jnp.log(1.0 - jnp.tanh(u) ** 2), -1)
    np.testing.assert_allclose(tanh_log_det_jacobian(u), naive, rtol=1e-4)
    # tanh(20) rounds to 1 in float32, so the naive form gives -inf; the exact value is
    # log(1 - tanh(20)^2) = log(4) - 40 - 2 log(1 + e^-40) ~ -38.6137.
    big = tanh_log_det_jacobian(jnp.array([[20.0]]))
    np.testing.assert_allclose(big, math.log(4.0) - 40.0, rtol=1e-5)


def test_tanh_normal_log_prob_golden() -> None:
    dist = TanhNormal(jnp.asarray(MEAN), jnp.asarray(LOG_STD))
    a = np.array([0.3, -0.7], np.float32)
    # log pi(a) = sum_i [log N(atanh(a_i); mu_i, sigma_i) - log(1 - a_i^2)]
    u = np.arctanh(a.astype(np.float64))
    want = np.sum(stats.norm.logpdf(u, MEAN, np.exp(LOG_STD)) - np.log(1.0 - a**2))
    np.testing.assert_allclose(dist.log_prob(jnp.asarray(a)), want, rtol=1e-5)
    # Hand value, 1-D, mean 0, std 1, a = 0: log N(0) - log(1) = -0.9189385.
    unit = TanhNormal(jnp.zeros(1), jnp.zeros(1))
    np.testing.assert_allclose(unit.log_prob(jnp.zeros(1)), -0.9189385, rtol=1e-6)


def test_tanh_normal_log_prob_finite_at_bounds() -> None:
    dist = TanhNormal(jnp.zeros(2), jnp.zeros(2))
    lp = dist.log_prob(jnp.array([1.0, -1.0]))
    assert np.isfinite(float(lp))


def test_tanh_normal_density_integrates_to_one() -> None:
    dist = TanhNormal(jnp.array([0.3]), jnp.array([math.log(0.8)]))
    grid = np.linspace(-1.0, 1.0, 20001)[1:-1].astype(np.float32)
    dens = np.exp(np.asarray(jax.vmap(lambda a: dist.log_prob(a[None]))(jnp.asarray(grid))))
    total = np.trapezoid(dens, grid)
    np.testing.assert_allclose(total, 1.0, atol=1e-3)
    # Monte-Carlo mean of samples matches the numeric first moment.
    samples = dist.sample(jax.random.key(0), (40000,))
    np.testing.assert_allclose(float(samples.mean()), np.trapezoid(grid * dens, grid), atol=0.01)


def test_sample_and_log_prob_consistent_with_log_prob() -> None:
    dist = TanhNormal(jnp.asarray(MEAN), jnp.asarray(LOG_STD))
    a, lp = dist.sample_and_log_prob(jax.random.key(1), (5, 3))
    assert a.shape == (5, 3, 2) and lp.shape == (5, 3)
    assert np.all(np.abs(np.asarray(a)) < 1.0)
    np.testing.assert_allclose(lp, dist.log_prob(a), rtol=1e-3, atol=1e-3)


def test_tanh_normal_mode_and_reparameterized_gradient() -> None:
    dist = TanhNormal(jnp.asarray(MEAN), jnp.asarray(LOG_STD))
    np.testing.assert_allclose(dist.mode(), np.tanh(MEAN), rtol=1e-6)

    def f(mean: jax.Array) -> jax.Array:
        return TanhNormal(mean, jnp.asarray(LOG_STD)).sample(jax.random.key(2)).sum()

    grad = jax.grad(f)(jnp.asarray(MEAN))
    assert np.all(np.asarray(grad) > 0)  # d tanh(mean + std eps) / d mean = 1 - tanh^2 > 0


def test_normal_sampling_statistics_and_log_prob() -> None:
    dist = Normal(jnp.asarray(MEAN), jnp.asarray(LOG_STD))
    x = dist.sample(jax.random.key(3), (20000,))
    assert x.shape == (20000, 2)
    np.testing.assert_allclose(x.mean(0), MEAN, atol=0.05)
    np.testing.assert_allclose(x.std(0), np.exp(LOG_STD), rtol=0.05)
    point = jnp.array([0.3, -0.7])
    want = stats.norm.logpdf(np.asarray(point), MEAN, np.exp(LOG_STD)).sum()
    np.testing.assert_allclose(dist.log_prob(point), want, rtol=1e-5)
    np.testing.assert_allclose(dist.mode(), MEAN)


@pytest.mark.parametrize("cls", [Normal, TanhNormal])
def test_distributions_are_pytrees_under_jit(cls: type) -> None:
    @jax.jit
    def make(mean: jax.Array) -> Normal | TanhNormal:
        return cls(mean, jnp.zeros_like(mean))

    dist = make(jnp.zeros((4, 2)))
    assert isinstance(dist, cls)
    assert dist.log_prob(jnp.zeros((4, 2))).shape == (4,)
