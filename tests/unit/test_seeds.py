"""Many seeds at once (`hybridrl.training.seeds`): each vmapped seed is the seed run alone,
seeds differ, and no two seeds share noise."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import sac
from hybridrl.data.replay import from_dataset
from hybridrl.data.transitions import Transitions
from hybridrl.training import seeds
from hybridrl.training.updates import scan_updates
from hybridrl.types import HybridRLError

OBS_DIM, ACT_DIM, K = 3, 2, 3
CONFIG = sac.Config(hidden_dims=(8,), num_qs=3, num_min_qs=2, utd_ratio=2)


def _buffer(n: int = 128):
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(42), 4)
    return from_dataset(
        Transitions(
            observations=jax.random.normal(k1, (n, OBS_DIM)),
            actions=jax.random.uniform(k2, (n, ACT_DIM), minval=-1, maxval=1),
            rewards=jax.random.normal(k3, (n,)),
            next_observations=jax.random.normal(k4, (n, OBS_DIM)),
            terminals=(jnp.arange(n) % 9 == 0).astype(jnp.float32),
            timeouts=jnp.zeros(n),
        )
    )


def _leaves_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_each_vmapped_seed_equals_that_seed_alone():
    init_keys = jax.random.split(jax.random.PRNGKey(0), K)
    update_keys = jax.random.split(jax.random.PRNGKey(1), K)
    buffer = _buffer()
    states = seeds.init_seeds(sac, CONFIG, init_keys, OBS_DIM, ACT_DIM)
    assert seeds.num_seeds(states) == K
    assert states.config.discount.shape == (K,)  # traced hyperparameters get the seed axis
    states, metrics = seeds.scan_updates_seeds(
        sac.update, states, buffer, update_keys, num_updates=2, batch_size=8
    )
    assert all(v.shape == (K,) for v in metrics.values())
    obs = jax.random.normal(jax.random.PRNGKey(2), (5, OBS_DIM))
    act_keys = jax.random.split(jax.random.PRNGKey(3), K)
    actions = seeds.act_seeds(sac, states, obs, act_keys, deterministic=False)
    assert actions.shape == (K, 5, ACT_DIM)
    for i in range(K):
        alone = sac.init(CONFIG, init_keys[i], OBS_DIM, ACT_DIM)
        alone, m = scan_updates(
            sac.update, alone, buffer, update_keys[i], num_updates=2, batch_size=8
        )
        _leaves_close(seeds.select_seed(states, i), alone)
        for name, value in m.items():
            np.testing.assert_allclose(metrics[name][i], value, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            actions[i], sac.act(alone, obs, act_keys[i], False), rtol=1e-5, atol=1e-6
        )


def test_seeds_differ():
    states = seeds.init_seeds(sac, CONFIG, jax.random.split(jax.random.PRNGKey(0), K), 3, 2)
    states, _ = seeds.scan_updates_seeds(
        sac.update,
        states,
        _buffer(),
        jax.random.split(jax.random.PRNGKey(1), K),
        num_updates=2,
        batch_size=8,
    )
    obs = jax.random.normal(jax.random.PRNGKey(2), (5, OBS_DIM))
    acts = np.asarray(
        seeds.act_seeds(sac, states, obs, jax.random.split(jax.random.PRNGKey(3), K), True)
    )
    for i in range(K):
        for j in range(i + 1, K):
            assert not np.allclose(acts[i], acts[j])
            assert not np.allclose(
                states.critic.params["ensemble"]["members"]["MLP_0"]["Dense_0"]["kernel"][i],
                states.critic.params["ensemble"]["members"]["MLP_0"]["Dense_0"]["kernel"][j],
            )


def test_keys_are_split_no_shared_noise():
    """Each seed samples its own minibatches and its own update noise."""

    def probe(state, batch, key):
        # record which rows were sampled (their observations) and the update's noise
        return state, {
            "row_sum": batch.observations[:, 0].sum(),
            "noise": jax.random.normal(key),
        }

    states = seeds.init_seeds(sac, CONFIG, jax.random.split(jax.random.PRNGKey(0), K), 3, 2)
    _, m = seeds.scan_updates_seeds(
        probe,
        states,
        _buffer(),
        jax.random.split(jax.random.PRNGKey(5), K),
        num_updates=2,
        batch_size=8,
    )
    for name in ("row_sum", "noise"):
        values = np.asarray(m[name])
        assert len(set(values.round(6).tolist())) == K, (name, values)


def test_per_seed_hyperparameters_and_observations():
    states = seeds.init_seeds(sac, CONFIG, jax.random.split(jax.random.PRNGKey(0), K), 3, 2)
    taus = jnp.array([0.0, 0.005, 1.0])
    states = dataclasses.replace(states, config=dataclasses.replace(states.config, tau=taus))
    states, _ = seeds.scan_updates_seeds(
        sac.update,
        states,
        _buffer(),
        jax.random.split(jax.random.PRNGKey(1), K),
        num_updates=2,
        batch_size=8,
    )
    first = lambda tree: jax.tree_util.tree_leaves(tree)[0]  # noqa: E731
    online, target = first(states.critic.params), first(states.critic.target_params)
    assert not np.allclose(online[0], target[0])  # tau = 0: the target did not move
    np.testing.assert_allclose(online[2], target[2])  # tau = 1: the target is a copy
    obs = jax.random.normal(jax.random.PRNGKey(2), (K, 4, OBS_DIM))
    keys = jax.random.split(jax.random.PRNGKey(3), K)
    acts = seeds.act_seeds(sac, states, obs, keys, True, per_seed_observations=True)
    assert acts.shape == (K, 4, ACT_DIM)
    np.testing.assert_allclose(
        acts[1], sac.act(seeds.select_seed(states, 1), obs[1], keys[1], True), rtol=1e-6
    )


def test_mismatched_keys_are_refused():
    states = seeds.init_seeds(sac, CONFIG, jax.random.split(jax.random.PRNGKey(0), K), 3, 2)
    with pytest.raises(HybridRLError, match="2 keys for 3 seeds"):
        seeds.scan_updates_seeds(
            sac.update,
            states,
            _buffer(),
            jax.random.split(jax.random.PRNGKey(1), 2),
            num_updates=2,
            batch_size=8,
        )
    with pytest.raises(HybridRLError, match="leading seed axis"):
        seeds.init_seeds(sac, CONFIG, jax.random.PRNGKey(0), 3, 2)  # one key, not K
