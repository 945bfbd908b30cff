"""NPG / HNPG (hybridrl.agents.npg): the hybrid update, the trust region in the agent, the
engine's offline rows, and learning on a tiny Comblock."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import agent_spec, npg
from hybridrl.data.rollout import Rollout
from hybridrl.data.transitions import Transitions
from hybridrl.envs.comblock import collect_offline, comblock_id
from hybridrl.training.phases import OnPolicy
from hybridrl.training.recipes import get_recipe
from hybridrl.training.runner import run
from hybridrl.types import HybridRLError

OBS, ACT, T, N = 6, 3, 10, 2
TINY = dict(hidden_dims=(8, 8), critic_hidden_dims=(16, 16))


def _rollout(key: jax.Array) -> Rollout:
    k1, k2, k3, k4 = jax.random.split(key, 4)
    obs = jax.random.normal(k1, (T, N, OBS))
    return Rollout(
        observations=obs,
        actions=jax.random.normal(k2, (T, N, ACT)),
        rewards=jax.random.uniform(k3, (T, N)),
        terminals=jnp.zeros((T, N)).at[4].set(1.0).at[9].set(1.0),
        timeouts=jnp.zeros((T, N)),
        next_observations=jax.random.normal(k4, (T, N, OBS)),
    )


def _offline(key: jax.Array, n: int = 20) -> Transitions:
    k1, k2, k3 = jax.random.split(key, 3)
    return Transitions(
        observations=jax.random.normal(k1, (n, OBS)),
        actions=jax.random.uniform(k2, (n, ACT)),
        rewards=jnp.zeros(n).at[::5].set(1.0),
        next_observations=jax.random.normal(k3, (n, OBS)),
        terminals=jnp.zeros(n).at[::5].set(1.0),
        timeouts=jnp.zeros(n),
    )


def test_hybrid_update_uses_offline_rows_and_respects_the_trust_region():
    state = npg.init(npg.Config(**TINY), jax.random.PRNGKey(0), OBS, ACT)
    new, m = jax.jit(npg.update)(
        state,
        _rollout(jax.random.PRNGKey(1)),
        jax.random.PRNGKey(2),
        _offline(jax.random.PRNGKey(3)),
    )
    assert all(np.isfinite(float(v)) for v in m.values())
    assert float(m["critic_loss_offline"]) > 0 and float(m["offline_advantage_abs"]) > 0
    # the accepted step's KL is within the trust region (the quadratic model hits max_kl at
    # the full step; the true KL is close to it for a small step)
    assert float(m["accepted"]) == 1.0
    assert 0 < float(m["kl"]) <= 1.5 * 0.01
    assert not np.array_equal(
        np.asarray(jax.tree_util.tree_leaves(new.actor.params)[0]),
        np.asarray(jax.tree_util.tree_leaves(state.actor.params)[0]),
    )
    # the offline rows change the fit: NPG (no offline term) fits another critic
    base = npg.init(npg.Config(hybrid=False, **TINY), jax.random.PRNGKey(0), OBS, ACT)
    other, m0 = jax.jit(npg.update)(base, _rollout(jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
    assert float(m0["critic_loss_offline"]) == 0.0
    a = jax.tree_util.tree_leaves(new.critic.params)
    b = jax.tree_util.tree_leaves(other.critic.params)
    assert not all(np.allclose(x, y) for x, y in zip(a, b, strict=True))


def test_the_hybrid_flag_and_the_offline_rows_must_agree():
    hybrid = npg.init(npg.Config(**TINY), jax.random.PRNGKey(0), OBS, ACT)
    with pytest.raises(ValueError, match="needs offline rows"):
        npg.update(hybrid, _rollout(jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
    plain = npg.init(npg.Config(hybrid=False, **TINY), jax.random.PRNGKey(0), OBS, ACT)
    with pytest.raises(ValueError, match="takes no offline rows"):
        npg.update(
            plain,
            _rollout(jax.random.PRNGKey(1)),
            jax.random.PRNGKey(2),
            _offline(jax.random.PRNGKey(3)),
        )
    assert agent_spec("npg").needs_offline_rows(npg.Config()) is True
    assert agent_spec("npg").needs_offline_rows(npg.Config(hybrid=False)) is False
    assert agent_spec("ppo").needs_offline_rows(None) is False


def test_fitted_q_targets_by_hand():
    state = npg.init(npg.Config(discount=0.5, **TINY), jax.random.PRNGKey(0), OBS, ACT)
    off = _offline(jax.random.PRNGKey(3), 10)
    key = jax.random.PRNGKey(4)
    y = npg.fitted_q_targets(state, state.critic.params, off, key)
    a_next = npg._policy(state, off.next_observations).sample(key)
    q_next = state.critic.apply_fn({"params": state.critic.params}, off.next_observations, a_next)
    expected = off.rewards + 0.5 * (1 - off.terminals) * q_next
    np.testing.assert_allclose(np.asarray(y), np.asarray(expected), rtol=1e-6)


def test_offline_rows_per_update():
    assert OnPolicy(steps=1, offline_ratio=0.5).offline_rows(1000) == 1000
    assert OnPolicy(steps=1, offline_ratio=0.2).offline_rows(1000) == 250
    assert OnPolicy(steps=1).offline_rows(1000) == 0
    with pytest.raises(HybridRLError, match="offline_ratio must be in"):
        OnPolicy(steps=1, offline_ratio=1.0).validate()


@pytest.fixture(scope="module")
def comblock3():
    return collect_offline(3, 300, seed=0)


def test_the_runner_refuses_a_mismatched_offline_ratio(comblock3, tmp_path):
    hnpg = get_recipe("hnpg").with_budget(on_policy_steps=30)
    no_rows = dataclasses.replace(
        hnpg, phases=(dataclasses.replace(hnpg.phases[0], offline_ratio=0.0),)
    )
    with pytest.raises(HybridRLError, match="offline_ratio > 0"):
        run(no_rows, comblock_id(3), dataset=comblock3, run_dir=tmp_path / "a", progress=False)
    plain = get_recipe("npg").with_budget(on_policy_steps=30)
    rows = dataclasses.replace(
        plain, phases=(dataclasses.replace(plain.phases[0], offline_ratio=0.5),)
    )
    with pytest.raises(HybridRLError, match="offline_ratio to 0"):
        run(rows, comblock_id(3), dataset=comblock3, run_dir=tmp_path / "b", progress=False)
    with pytest.raises(HybridRLError, match="needs a dataset"):
        run(hnpg, comblock_id(3), run_dir=tmp_path / "c", progress=False)


def _p_open(run_dir: Path, last: int) -> float:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    returns = [r["return"] for r in map(json.loads, lines) if r["kind"] == "episode"]
    return float(np.mean(np.asarray(returns[-last:]) >= 1.0))


@pytest.mark.slow
def test_hnpg_learns_comblock_h3(comblock3, tmp_path):
    """A random policy opens the H = 3 lock w.p. ~1e-3 per episode; HNPG with the official
    constants, fed the ε-greedy data, opens it in most episodes after 45 iterations of 1,000
    steps (docs/results.md, section 13: seed 0 crosses 0.5 at ~35k steps). About a minute."""
    recipe = get_recipe("hnpg").with_budget(on_policy_steps=45_000)
    recipe = dataclasses.replace(
        recipe, phases=(dataclasses.replace(recipe.phases[0], rollout_steps=100),)
    )
    run(
        recipe,
        comblock_id(3),
        dataset=comblock3,
        run_dir=tmp_path / "run",
        progress=False,
        num_envs=10,
        eval_interval=10**9,
        checkpoint_interval=10**9,
    )
    assert _p_open(tmp_path / "run", 500) > 0.5
