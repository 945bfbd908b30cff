"""scan_updates: one compiled program per chunk; numeric hyperparameters never recompile."""

from __future__ import annotations

import jax
import numpy as np

from hybridrl.agents import sac
from hybridrl.data.replay import from_dataset
from hybridrl.data.transitions import Transitions
from hybridrl.training.updates import scan_updates


def _buffer(n: int = 128):
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    return from_dataset(
        Transitions(
            observations=jax.random.normal(k[0], (n, 3)),
            actions=jax.random.uniform(k[1], (n, 1), minval=-1, maxval=1),
            rewards=jax.random.normal(k[2], (n,)),
            next_observations=jax.random.normal(k[3], (n, 3)),
            terminals=np.zeros(n, np.float32),
            timeouts=np.zeros(n, np.float32),
        )
    )


def test_changing_tau_and_discount_reuses_the_compiled_chunk():
    buffer = _buffer()
    state = sac.init(sac.Config(hidden_dims=(8,)), jax.random.PRNGKey(0), 3, 1)
    scan_updates(sac.update, state, buffer, jax.random.PRNGKey(1), num_updates=2, batch_size=8)
    size = scan_updates._cache_size()
    swept = state.replace(config=state.config.replace(tau=0.05, discount=0.9))
    new, _ = scan_updates(
        sac.update, swept, buffer, jax.random.PRNGKey(1), num_updates=2, batch_size=8
    )
    assert scan_updates._cache_size() == size
    # and the traced values are really used: a different tau moves the targets differently
    old, _ = scan_updates(
        sac.update, state, buffer, jax.random.PRNGKey(1), num_updates=2, batch_size=8
    )
    diff = jax.tree_util.tree_map(
        lambda a, b: float(np.abs(a - b).max()), old.critic.target_params, new.critic.target_params
    )
    assert max(jax.tree_util.tree_leaves(diff)) > 0
