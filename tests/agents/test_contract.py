"""The contract every registered agent passes (GUIDE: contract tier).

init; update gives finite metrics and changes parameters; act stays in [-1, 1]; save/restore
gives identical actions; the same seed gives the same result and different seeds differ.
Each agent registers a tiny config in ``TINY_CONFIGS`` (a new agent without one fails here).

Off-policy agents update from minibatches of a replay buffer (`scan_updates`); on-policy agents
(``SPEC.on_policy``) are run through their rollout API instead (``normalize_observations``,
``sample_actions``, ``normalize_rewards``, ``prepare``, ``update``), for every action kind they
declare.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import AGENTS, agent_spec, get_agent
from hybridrl.data.rollout import Rollout
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
    "rebrac": lambda m: m.Config(hidden_dims=(16, 16)),
    "iql": lambda m: m.Config(hidden_dims=(16, 16), dropout_rate=0.1, actor_lr_decay_steps=100),
    "awac": lambda m: m.Config(hidden_dims=(16, 16)),
    "cql": lambda m: m.Config(hidden_dims=(16, 16), num_samples=3, lagrange=True, utd_ratio=2),
    "calql": lambda m: m.Config(hidden_dims=(16, 16), num_samples=3),
    "edac": lambda m: m.Config(hidden_dims=(16, 16), num_qs=3),
    "ro2o": lambda m: m.Config(hidden_dims=(16, 16), num_qs=3, num_perturb=3, utd_ratio=2),
    "famo2o": lambda m: m.Config(hidden_dims=(16, 16), beta_min=1.0, beta_max=5.0),
    "ppo": lambda m: m.Config(hidden_dims=(16, 16), update_epochs=2, num_minibatches=4),
    "npg": lambda m: m.Config(hidden_dims=(8, 8), critic_hidden_dims=(16, 16), hybrid=False),
    "props": lambda m: m.Config(
        hidden_dims=(16, 16), update_epochs=2, num_minibatches=4, props_update_epochs=2
    ),
}

OFF_POLICY = sorted(n for n in AGENTS if not agent_spec(n).on_policy)
ON_POLICY_CASES = [
    (n, kind)
    for n in sorted(AGENTS)
    if agent_spec(n).on_policy
    for kind in agent_spec(n).action_kinds
]


def _batch(key: jax.Array, n: int) -> Transitions:
    return random_batch(
        key, n, OBS_DIM, ACT_DIM, terminal_every=7, mc_returns=True, next_actions=True
    )


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


@pytest.mark.parametrize("name", OFF_POLICY)
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


@pytest.mark.parametrize("name", OFF_POLICY)
def test_act_in_bounds_and_deterministic_mode(name):
    agent, state = _setup(name, 0)
    obs = 10.0 * jax.random.normal(jax.random.PRNGKey(3), (64, OBS_DIM))
    for deterministic in (False, True):
        a = agent.act(state, obs, jax.random.PRNGKey(4), deterministic)
        assert a.shape == (64, ACT_DIM) and bool(jnp.all(jnp.abs(a) <= 1.0))
    d1 = agent.act(state, obs, jax.random.PRNGKey(5), True)
    d2 = agent.act(state, obs, jax.random.PRNGKey(6), True)
    np.testing.assert_array_equal(d1, d2)


@pytest.mark.parametrize("name", OFF_POLICY)
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


@pytest.mark.parametrize("name", OFF_POLICY)
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


# ----------------------------------------------------------------------------- on-policy
NUM_ACTIONS, T, N = 3, 8, 2


def _setup_on_policy(name: str, kind: str, seed: int):
    agent = get_agent(name)
    discrete = kind == "discrete"
    act_dim = NUM_ACTIONS if discrete else ACT_DIM
    state = agent.init(
        TINY_CONFIGS[name](agent), jax.random.PRNGKey(seed), OBS_DIM, act_dim, discrete=discrete
    )
    return agent, state


@partial(jax.jit, static_argnums=0)
def _rollout(agent, state, key: jax.Array):
    """A T x N rollout of random 'environment' observations and rewards, acted on by the
    agent through its rollout API (normalisation statistics updated as a runner would)."""
    k_obs, k_rew, k_act = jax.random.split(key, 3)
    raw = 3.0 + 2.0 * jax.random.normal(k_obs, (T + 1, N, OBS_DIM))
    rewards = jax.random.normal(k_rew, (T, N))
    terminals = jnp.zeros((T, N)).at[3, 0].set(1.0)
    timeouts = jnp.zeros((T, N)).at[5, 1].set(1.0)
    state, first = agent.normalize_observations(state, raw[0])

    def step(carry, xs):
        state, obs, discounted = carry
        raw_next, reward, terminal, k = xs
        actions, _ = agent.sample_actions(state, obs, k)
        state, discounted, scaled = agent.normalize_rewards(state, discounted, reward, terminal)
        state, next_obs = agent.normalize_observations(state, raw_next)
        return (state, next_obs, discounted), (obs, actions, scaled, next_obs)

    keys = jax.random.split(k_act, T)
    carry = (state, first, jnp.zeros(N))
    (state, _, _), (obs, actions, scaled, next_obs) = jax.lax.scan(
        step, carry, (raw[1:], rewards, terminals, keys)
    )
    rollout = Rollout(
        observations=obs,
        actions=actions,
        rewards=scaled,
        terminals=terminals,
        timeouts=timeouts,
        next_observations=next_obs,
    )
    return state, rollout


@partial(jax.jit, static_argnums=0)
def _iteration(agent, state, key: jax.Array):
    k_roll, k_upd = jax.random.split(key)
    state, rollout = _rollout(agent, state, k_roll)
    return agent.update(state, agent.prepare(state, rollout), k_upd)


def _train_on_policy(agent, state, seed: int, iterations: int = 2):
    key = jax.random.PRNGKey(seed)
    metrics = {}
    for i in range(iterations):
        state, metrics = _iteration(agent, state, jax.random.fold_in(key, i))
    return state, metrics


def _check_actions(agent, state, kind: str, obs: jax.Array, key: jax.Array) -> None:
    for deterministic in (False, True):
        a = agent.act(state, obs, key, deterministic)
        if kind == "discrete":
            assert a.shape == (obs.shape[0],) and a.dtype == jnp.int32
            assert bool(jnp.all((a >= 0) & (a < NUM_ACTIONS)))
        else:
            assert a.shape == (obs.shape[0], ACT_DIM) and bool(jnp.all(jnp.abs(a) <= 1.0))


@pytest.mark.parametrize("name,kind", ON_POLICY_CASES)
def test_on_policy_update_changes_params_with_finite_metrics(name, kind):
    agent, state = _setup_on_policy(name, kind, 0)
    new_state, metrics = _iteration(agent, state, jax.random.PRNGKey(1))
    assert metrics and all(np.isfinite(float(v)) for v in metrics.values())
    for net in ("actor", "critic"):
        before = jax.tree_util.tree_leaves(getattr(state, net).params)
        after = jax.tree_util.tree_leaves(getattr(new_state, net).params)
        assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)), net


@pytest.mark.parametrize("name,kind", ON_POLICY_CASES)
def test_on_policy_act_in_bounds_and_deterministic_mode(name, kind):
    agent, state = _setup_on_policy(name, kind, 0)
    state, _ = _train_on_policy(agent, state, 0, iterations=1)
    obs = 10.0 * jax.random.normal(jax.random.PRNGKey(3), (64, OBS_DIM))
    _check_actions(agent, state, kind, obs, jax.random.PRNGKey(4))
    act = jax.jit(agent.act, static_argnames=("deterministic",))
    d1 = act(state, obs, jax.random.PRNGKey(5), deterministic=True)
    d2 = act(state, obs, jax.random.PRNGKey(6), deterministic=True)
    np.testing.assert_array_equal(d1, d2)


@pytest.mark.parametrize("name,kind", ON_POLICY_CASES)
def test_on_policy_save_restore_gives_identical_actions(name, kind, tmp_path):
    agent, state = _setup_on_policy(name, kind, 0)
    state, _ = _train_on_policy(agent, state, 0)
    path = save_pytree(state, tmp_path / "state.msgpack")
    _, template = _setup_on_policy(name, kind, 123)
    restored = load_pytree(template, path)
    obs = jax.random.normal(jax.random.PRNGKey(7), (8, OBS_DIM))
    key = jax.random.PRNGKey(8)
    for deterministic in (False, True):
        np.testing.assert_array_equal(
            agent.act(state, obs, key, deterministic), agent.act(restored, obs, key, deterministic)
        )
    a, _ = _train_on_policy(agent, state, 9)
    b, _ = _train_on_policy(agent, restored, 9)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name,kind", ON_POLICY_CASES)
def test_on_policy_same_seed_same_result_different_seed_differs(name, kind):
    agent, _ = _setup_on_policy(name, kind, 0)
    runs = [_train_on_policy(agent, _setup_on_policy(name, kind, s)[1], s)[0] for s in (0, 0, 1)]
    leaves = [jax.tree_util.tree_leaves(r) for r in runs]
    for x, y in zip(leaves[0], leaves[1], strict=True):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(leaves[0], leaves[2], strict=True))
