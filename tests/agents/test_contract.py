"""The contract every registered agent passes (GUIDE: contract tier).

init; update gives finite metrics and changes parameters; act stays in [-1, 1]; save/restore
gives identical actions; the same seed gives the same result and different seeds differ.
Each agent registers a tiny config in ``TINY_CONFIGS`` (a new agent without one fails here).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import AGENTS, get_agent
from hybridrl.data.transitions import Transitions
from hybridrl.training.checkpoint import load_pytree, save_pytree
from hybridrl.training.updates import batch_size_per_update, scan_updates
from hybridrl.types import HybridRLError
from tests.helpers import random_batch

OBS_DIM, ACT_DIM, BATCH = 5, 2, 16

TINY_CONFIGS = {
    "sac": lambda m: m.Config(hidden_dims=(16, 16), num_qs=4, num_min_qs=2, utd_ratio=2),
    "bc": lambda m: m.Config(hidden_dims=(16, 16)),
    "td3": lambda m: m.Config(hidden_dims=(16, 16)),
    "td3_bc": lambda m: m.Config(hidden_dims=(16, 16)),
    "iql": lambda m: m.Config(hidden_dims=(16, 16), dropout_rate=0.1, actor_lr_decay_steps=100),
    "awac": lambda m: m.Config(hidden_dims=(16, 16)),
    "cql": lambda m: m.Config(hidden_dims=(16, 16), num_samples=3, lagrange=True, utd_ratio=2),
    "calql": lambda m: m.Config(hidden_dims=(16, 16), num_samples=3),
    "edac": lambda m: m.Config(hidden_dims=(16, 16), num_qs=3),
}


def _batch(key: jax.Array, n: int) -> Transitions:
    return random_batch(key, n, OBS_DIM, ACT_DIM, terminal_every=7, mc_returns=True)


def _setup(name: str, seed: int):
    agent = get_agent(name)
    state = agent.init(TINY_CONFIGS[name](agent), jax.random.PRNGKey(seed), OBS_DIM, ACT_DIM)
    return agent, state


def _train(agent, state, seed: int, steps: int = 3):
    data = _batch(jax.random.PRNGKey(100), 256)
    from hybridrl.data.replay import from_dataset

    buffer = from_dataset(data)
    return scan_updates(
        agent.update, state, buffer, jax.random.PRNGKey(seed), num_updates=steps, batch_size=BATCH
    )


def test_every_agent_has_a_tiny_config():
    assert set(AGENTS) <= set(TINY_CONFIGS)
    with pytest.raises(HybridRLError, match="unknown agent"):
        get_agent("no-such-agent")


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_update_changes_params_with_finite_metrics(name):
    agent, state = _setup(name, 0)
    n = batch_size_per_update(state, BATCH)
    new_state, metrics = jax.jit(agent.update)(
        state, _batch(jax.random.PRNGKey(1), n), jax.random.PRNGKey(2)
    )
    assert metrics and all(np.isfinite(float(v)) for v in metrics.values())
    before = jax.tree_util.tree_leaves(state)
    after = jax.tree_util.tree_leaves(new_state)
    changed = [not np.array_equal(a, b) for a, b in zip(before, after, strict=True)]
    assert sum(changed) > len(changed) // 3


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_act_in_bounds_and_deterministic_mode(name):
    agent, state = _setup(name, 0)
    obs = 10.0 * jax.random.normal(jax.random.PRNGKey(3), (64, OBS_DIM))
    for deterministic in (False, True):
        a = agent.act(state, obs, jax.random.PRNGKey(4), deterministic)
        assert a.shape == (64, ACT_DIM) and bool(jnp.all(jnp.abs(a) <= 1.0))
    d1 = agent.act(state, obs, jax.random.PRNGKey(5), True)
    d2 = agent.act(state, obs, jax.random.PRNGKey(6), True)
    np.testing.assert_array_equal(d1, d2)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_save_restore_gives_identical_actions(name, tmp_path):
    agent, state = _setup(name, 0)
    state, _ = _train(agent, state, 0)
    path = save_pytree(state, tmp_path / "state.msgpack")
    _, template = _setup(name, 123)
    restored = load_pytree(template, path)
    obs = jax.random.normal(jax.random.PRNGKey(7), (8, OBS_DIM))
    key = jax.random.PRNGKey(8)
    np.testing.assert_array_equal(
        agent.act(state, obs, key, False), agent.act(restored, obs, key, False)
    )
    # and training continues identically
    a, _ = _train(agent, state, 9)
    b, _ = _train(agent, restored, 9)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_same_seed_same_result_different_seed_differs(name):
    agent, _ = _setup(name, 0)
    runs = [_train(agent, _setup(name, s)[1], s)[0] for s in (0, 0, 1)]
    obs = jax.random.normal(jax.random.PRNGKey(7), (8, OBS_DIM))
    acts = [np.asarray(agent.act(r, obs, jax.random.PRNGKey(0), True)) for r in runs]
    np.testing.assert_array_equal(acts[0], acts[1])
    assert not np.allclose(acts[0], acts[2])


def test_checkpoint_from_another_config_is_refused(tmp_path):
    agent, state = _setup("sac", 0)
    path = save_pytree(state, tmp_path / "s.msgpack")
    other = agent.init(agent.Config(hidden_dims=(8, 8)), jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    with pytest.raises(HybridRLError, match="does not match"):
        load_pytree(other, path)
