"""EDAC = SAC-N + η·ES: the critic loss, the η = 0 reduction, presets and traced η."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import edac, sac
from hybridrl.core import losses
from hybridrl.data.transitions import Transitions
from hybridrl.types import HybridRLError
from tests.helpers import random_batch

OBS_DIM, ACT_DIM, B = 4, 3, 8


def _batch(key: jax.Array, n: int = B) -> Transitions:
    return random_batch(key, n, OBS_DIM, ACT_DIM, terminal_every=3)


def _state(eta: float = 0.7, num_qs: int = 4) -> edac.State:
    config = edac.Config(hidden_dims=(16, 16), num_qs=num_qs, eta=eta)
    return edac.init(config, jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)


def test_critic_loss_is_sac_loss_plus_eta_times_es():
    state = _state(eta=0.7)
    batch = _batch(jax.random.PRNGKey(1))
    params = state.critic.params
    key = jax.random.PRNGKey(2)
    target = sac.critic_target(state, batch, jax.random.PRNGKey(3))

    total, metrics = edac.critic_loss(state, params, batch, target, key)
    td, _ = sac.critic_loss(state, params, batch, target, key)

    # ES computed independently: per-sample, per-critic gradients wrt the DATA actions by
    # jax.grad of one scalar Q_i(s_b, a_b) at a time, then the shared diversity loss.
    def q_single(i, s, a):
        return state.critic.apply_fn({"params": params}, s[None], a[None])[i, 0]

    grads = jnp.stack(
        [
            jax.vmap(jax.grad(lambda a, s, i=i: q_single(i, s, a)))(
                batch.actions, batch.observations
            )
            for i in range(4)
        ]
    )
    assert grads.shape == (4, B, ACT_DIM)
    es = losses.edac_diversity_loss(grads)
    # and by hand: cosine similarities over ordered pairs i != j, / (N - 1), batch mean
    unit = np.asarray(grads) / (np.linalg.norm(grads, axis=-1, keepdims=True) + 1e-10)
    by_hand = np.mean(
        [
            sum(unit[i, b] @ unit[j, b] for i in range(4) for j in range(4) if i != j) / 3
            for b in range(B)
        ]
    )
    np.testing.assert_allclose(es, by_hand, rtol=1e-5)
    assert abs(float(es)) > 1e-3  # a non-trivial value, so the test can see η·ES

    np.testing.assert_allclose(total, td + 0.7 * es, rtol=1e-6)
    np.testing.assert_allclose(metrics["critic_loss"], td, rtol=1e-6)
    np.testing.assert_allclose(metrics["diversity_loss"], es, rtol=1e-6)

    # gradients: d(total)/dθ = d(td)/dθ + η d(ES)/dθ (ES is differentiated through θ)
    g_total = jax.grad(lambda p: edac.critic_loss(state, p, batch, target, key)[0])(params)
    g_td = jax.grad(lambda p: sac.critic_loss(state, p, batch, target, key)[0])(params)
    g_es = jax.grad(lambda p: edac.diversity_loss(state, p, batch, key))(params)
    for a, b, c in zip(*map(jax.tree_util.tree_leaves, (g_total, g_td, g_es)), strict=True):
        np.testing.assert_allclose(a, b + 0.7 * c, rtol=1e-4, atol=1e-7)
    assert any(float(jnp.abs(c).max()) > 0 for c in jax.tree_util.tree_leaves(g_es))


def test_eta_zero_is_sac_n():
    config = edac.Config(hidden_dims=(16, 16), num_qs=3, eta=0.0)
    key = jax.random.PRNGKey(4)
    s_edac = edac.init(config, key, OBS_DIM, ACT_DIM)
    s_sac = sac.init(edac.sac_n(config), key, OBS_DIM, ACT_DIM)
    batch, k = _batch(jax.random.PRNGKey(5)), jax.random.PRNGKey(6)
    for _ in range(3):
        s_edac, m_edac = jax.jit(edac.update)(s_edac, batch, k)
        s_sac, m_sac = jax.jit(sac.update)(s_sac, batch, k)
    assert "diversity_loss" in m_edac and "diversity_loss" not in m_sac
    for a, b in zip(
        jax.tree_util.tree_leaves(s_edac.actor.params),
        jax.tree_util.tree_leaves(s_sac.actor.params),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(
        jax.tree_util.tree_leaves(s_edac.critic.params),
        jax.tree_util.tree_leaves(s_sac.critic.params),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_positive_eta_changes_the_critic_update_and_lowers_es():
    state = _state(eta=50.0)
    batch = _batch(jax.random.PRNGKey(7), 64)
    no_eta = dataclasses.replace(state, config=dataclasses.replace(state.config, eta=0.0))
    es0 = edac.diversity_loss(state, state.critic.params, batch, jax.random.PRNGKey(0))
    update = jax.jit(edac.update)
    s, s0 = state, no_eta
    for i in range(20):
        s, _ = update(s, batch, jax.random.PRNGKey(i))
        s0, _ = update(s0, batch, jax.random.PRNGKey(i))
    es = edac.diversity_loss(s, s.critic.params, batch, jax.random.PRNGKey(0))
    es_plain = edac.diversity_loss(s0, s0.critic.params, batch, jax.random.PRNGKey(0))
    assert float(es) < float(es0) and float(es) < float(es_plain)


def test_eta_is_traced_no_recompile():
    state = _state(eta=1.0)
    batch = _batch(jax.random.PRNGKey(8))
    update = jax.jit(edac.update)
    update(state, batch, jax.random.PRNGKey(0))
    compiled = update._cache_size()
    other = dataclasses.replace(state, config=dataclasses.replace(state.config, eta=5.0))
    update(other, batch, jax.random.PRNGKey(0))
    assert update._cache_size() == compiled


def test_presets_follow_the_paper():
    c = edac.sac_n_config(num_qs=50, utd_ratio=2)
    assert isinstance(c, sac.Config) and not isinstance(c, edac.Config)
    assert (c.num_qs, c.num_min_qs, c.actor_q, c.utd_ratio) == (50, None, "min", 2)
    assert (c.actor_log_std_min, c.actor_log_std_max) == (-5.0, 2.0)
    assert tuple(c.hidden_dims) == (256, 256, 256)
    assert (c.actor_lr, c.critic_lr, c.temperature_lr, c.tau, c.discount) == (
        3e-4,
        3e-4,
        3e-4,
        5e-3,
        0.99,
    )
    e = edac.Config()
    assert (e.num_qs, e.eta, e.actor_q, e.actor_log_std_min, e.num_min_qs) == (
        10,
        1.0,
        "min",
        -5.0,
        None,
    )
    assert edac.sac_n(e) == edac.sac_n_config()
    # SAC itself keeps its defaults
    assert (sac.Config().actor_log_std_min, sac.Config().actor_q) == (-20.0, "mean")


def test_log_std_bounds_reach_the_actor():
    config = edac.Config(hidden_dims=(8,), num_qs=2)
    state = edac.init(config, jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    # push the log-std head far below -5: the distribution must clip it at -5
    params = jax.tree_util.tree_map(lambda x: x, state.actor.params)
    params["log_std"]["bias"] = jnp.full_like(params["log_std"]["bias"], -50.0)
    dist = state.actor.apply_fn({"params": params}, jnp.zeros((2, OBS_DIM)))
    np.testing.assert_allclose(dist.log_std, -5.0)


def test_bad_configs_are_refused():
    with pytest.raises(HybridRLError, match="at least 2 critics"):
        edac.init(edac.Config(hidden_dims=(8,), num_qs=1), jax.random.PRNGKey(0), 3, 1)
    with pytest.raises(HybridRLError, match=r"edac\.Config"):
        edac.init(sac.Config(hidden_dims=(8,)), jax.random.PRNGKey(0), 3, 1)  # type: ignore[arg-type]
    s = sac.init(sac.Config(hidden_dims=(8,)), jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    with pytest.raises(HybridRLError, match=r"edac\.Config"):
        edac.update(s, _batch(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
