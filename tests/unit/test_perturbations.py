"""Perturbation sets and the α_u schedule (RO2O), by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hybridrl.core.perturbations import perturb, repeat_rows, uniform_perturbations
from hybridrl.core.schedules import linear_anneal


def test_perturbations_are_bounded_and_shared_across_the_batch() -> None:
    deltas = uniform_perturbations(jax.random.PRNGKey(0), 50, 3, 0.01)
    assert deltas.shape == (50, 3)
    assert float(jnp.max(jnp.abs(deltas))) <= 0.01 and float(jnp.std(deltas)) > 0.004
    obs = jnp.arange(12.0).reshape(4, 3)
    noised = perturb(obs, deltas)
    assert noised.shape == (4, 50, 3)
    # the same 50 perturbations for every state (RO2O's get_noised_obs)
    shifts = np.asarray(noised - obs[:, None])
    np.testing.assert_allclose(shifts, np.broadcast_to(np.asarray(deltas), shifts.shape), atol=1e-6)
    # rows of repeat_rows line up with perturb(...).reshape(B * K, D)
    flat = noised.reshape(4 * 50, 3)
    np.testing.assert_allclose(flat - repeat_rows(obs, 50), jnp.tile(deltas, (4, 1)), atol=1e-6)
    # a fresh key, a fresh set
    other = uniform_perturbations(jax.random.PRNGKey(1), 50, 3, 0.01)
    assert not np.allclose(deltas, other)


def test_linear_anneal_is_rO2O_alpha_u_schedule() -> None:
    # max(1 - 5e-7 t, 0.1): 1 at 0, 0.5 at 1M, 0.1 at 1.8M and after
    got = [float(linear_anneal(t, 1.0, 5e-7, 0.1)) for t in (0, 1_000_000, 1_800_000, 2_500_000)]
    np.testing.assert_allclose(got, [1.0, 0.5, 0.1, 0.1], atol=1e-6)
    # traced constants: one compiled function for every value
    f = jax.jit(linear_anneal)
    np.testing.assert_allclose(float(f(jnp.int32(3), 2.0, 0.25, 0.0)), 1.25)
