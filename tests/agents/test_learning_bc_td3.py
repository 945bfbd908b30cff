"""BC, TD3 and TD3+BC: mechanics (delayed updates, the TD3+BC hook, BC variants) and learning
tests on Pendulum with tiny networks.

Offline threshold: the `behaviour_level` fixture (tests/agents/conftest.py), the data's
behaviour policy evaluated on the same evaluation episodes (-184.7; the data's own mean of
-175 is over easier start states). Measured: BC nll -179.5 / -179.6, BC mse -179.7 / -179.7,
TD3+BC -179.8 / -179.8 (seeds 0 / 1); the noise-free controller scores -180.5 there.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import bc, td3, td3_bc
from hybridrl.training.phases import Online
from hybridrl.training.recipes import Recipe, offline_recipe
from tests.agents.conftest import eval_returns, train
from tests.helpers import random_batch, same_tree

_batch = random_batch


_same = same_tree


# ----------------------------------------------------------------------------- mechanics
def test_td3_delays_actor_and_target_updates():
    state = td3.init(td3.Config(hidden_dims=(8, 8)), jax.random.PRNGKey(0), 3, 1)
    update = jax.jit(td3.update)
    batch, key = _batch(jax.random.PRNGKey(1)), jax.random.PRNGKey(2)
    s1, m1 = update(state, batch, key)  # critic step 0: actor step + targets
    s2, m2 = update(s1, batch, key)  # critic step 1: critic only
    s3, _ = update(s2, batch, key)  # critic step 2: actor step + targets again
    assert int(s3.critic.step) == 3 and int(s3.actor.step) == 2
    assert not _same(state.actor.params, s1.actor.params)
    assert not _same(state.critic.target_params, s1.critic.target_params)
    assert not _same(s1.critic.params, s2.critic.params)
    assert _same(s1.actor.params, s2.actor.params)
    assert _same(s1.actor.target_params, s2.actor.target_params)
    assert _same(s1.critic.target_params, s2.critic.target_params)
    assert not _same(s2.actor.params, s3.actor.params)
    # actor_loss is reported (evaluated) on the skipped step as well
    assert np.isfinite(float(m2["actor_loss"])) and set(m1) == set(m2)


def test_td3_bc_changes_only_the_actor_objective():
    cfg = td3_bc.Config(hidden_dims=(8, 8), alpha=2.5)
    state = td3_bc.init(cfg, jax.random.PRNGKey(0), 3, 1)
    plain = td3.init(td3.Config(hidden_dims=(8, 8)), jax.random.PRNGKey(0), 3, 1)
    assert _same(state.actor.params, plain.actor.params)
    batch, key = _batch(jax.random.PRNGKey(1)), jax.random.PRNGKey(2)
    a, ma = jax.jit(td3_bc.update)(state, batch, key)
    b, _ = jax.jit(td3.update)(plain, batch, key)
    assert _same(a.critic.params, b.critic.params)  # same critic step (critic updated first)
    assert not _same(a.actor.params, b.actor.params)
    assert {"bc_mse", "lambda"} <= set(ma)
    with pytest.raises(TypeError, match=r"td3_bc\.Config"):
        td3_bc.init(td3.Config(), jax.random.PRNGKey(0), 3, 1)  # type: ignore[arg-type]


def test_td3_exploration_noise_is_clipped_and_deterministic_is_the_actor():
    state = td3.init(td3.Config(hidden_dims=(8, 8)), jax.random.PRNGKey(0), 3, 1)
    obs = jax.random.normal(jax.random.PRNGKey(1), (1000, 3))
    mean = td3.act(state, obs, jax.random.PRNGKey(2), True)
    noisy = td3.act(state, obs, jax.random.PRNGKey(2), False)
    assert bool(jnp.all(jnp.abs(noisy) <= 1.0))
    # untrained actor outputs ~0, so the noise std is ~exploration_noise (0.1)
    np.testing.assert_allclose(float(jnp.std(noisy - mean)), 0.1, atol=0.01)


@pytest.mark.parametrize(
    "kwargs",
    [dict(loss="mse"), dict(loss="nll"), dict(loss="nll", nll_actor="tanh_gaussian")],
)
def test_bc_variants_update_and_act_in_bounds(kwargs):
    state = bc.init(bc.Config(hidden_dims=(8, 8), **kwargs), jax.random.PRNGKey(0), 3, 2)
    batch = _batch(jax.random.PRNGKey(1), act_dim=2).replace(
        actions=jnp.sign(jax.random.normal(jax.random.PRNGKey(3), (32, 2)))  # all at +-1
    )
    new, metrics = jax.jit(bc.update)(state, batch, jax.random.PRNGKey(2))
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert not _same(state.actor.params, new.actor.params)
    obs = 10.0 * jax.random.normal(jax.random.PRNGKey(4), (64, 3))
    for deterministic in (True, False):
        a = bc.act(new, obs, jax.random.PRNGKey(5), deterministic)
        assert a.shape == (64, 2) and bool(jnp.all(jnp.abs(a) <= 1.0))
    with pytest.raises(ValueError, match="loss"):
        bc.init(bc.Config(loss="l1"), jax.random.PRNGKey(0), 3, 2)


# ----------------------------------------------------------------------------- learning
def test_td3_learns_pendulum_online(tmp_path, record_property):
    # The original paper's learning rate 1e-3 (the authors' current code uses 3e-4, which
    # needs more than 6000 steps here: -461 and -664 at 6000 steps, seeds 1 and 2, measured
    # on the former training loop).
    recipe = Recipe(
        name="td3",
        agent="td3",
        config={"hidden_dims": (64, 64), "actor_lr": 1e-3, "critic_lr": 1e-3},
        phases=(
            Online(name="online", steps=6000, random_steps=500, update_after=500, batch_size=128),
        ),
    )
    untrained = td3.init(recipe.agent_config(), jax.random.PRNGKey(0), 3, 1)
    assert eval_returns(td3, untrained, episodes=3).mean() < -900
    result = train(recipe, tmp_path / "run", seed=1, eval_episodes=5)
    step, score = result.evaluations()[-1]
    record_property("score", float(score))
    # measured: -254 (seed 1) after 6000 steps (the former training loop: -260 / -234 for
    # seeds 1 / 2); random play gives ~-1200
    assert step == 6000 and score > -500


@pytest.mark.parametrize(
    ("loss", "num_updates"),
    # measured (seed 0): nll -179.5 after 3000 updates, mse -179.6 after 5000 (the former
    # training loop: mse -191.7 / -204.2 after 2000, seeds 0 / 1)
    [("nll", 3000), ("mse", 5000)],
)
def test_bc_reaches_behaviour_level_offline(
    pendulum_offline, behaviour_level, tmp_path, record_property, loss, num_updates
):
    recipe = offline_recipe("bc", num_updates).with_config(hidden_dims=(64, 64), loss=loss)
    untrained = bc.init(recipe.agent_config(), jax.random.PRNGKey(0), 3, 1)
    assert eval_returns(bc, untrained, episodes=3).mean() < -900
    result = train(recipe, tmp_path / "run", pendulum_offline)
    score = eval_returns(bc, result.state).mean()
    record_property("score", float(score))
    assert score >= behaviour_level


def test_td3_bc_reaches_behaviour_level_offline(
    pendulum_offline, behaviour_level, tmp_path, record_property
):
    recipe = offline_recipe("td3_bc", 8000).with_config(hidden_dims=(64, 64))
    assert recipe.normalize_observations  # as the paper does
    untrained = td3_bc.init(recipe.agent_config(), jax.random.PRNGKey(0), 3, 1)
    assert eval_returns(td3_bc, untrained, episodes=3).mean() < -900
    result = train(recipe, tmp_path / "run", pendulum_offline)
    # measured: -179.8 after 8000 updates (seed 0; the former training loop: -179.8 / -179.8
    # for seeds 0 / 1, -183.2 / -183.8 after 5000)
    score = eval_returns(td3_bc, result.state, obs_stats=result.obs_stats).mean()
    record_property("score", float(score))
    assert score >= behaviour_level
