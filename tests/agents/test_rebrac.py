"""ReBRAC (`hybridrl.agents.rebrac`, recipes in `hybridrl.training.rebrac`): the critic loss
with the target penalty and the actor loss against numpy, λ's stop-gradient, the β_a decay,
next actions at episode boundaries, and the recipes run through `run`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import rebrac, td3
from hybridrl.core import losses
from hybridrl.core.schedules import linear_decay
from hybridrl.data.transitions import Transitions, next_actions
from hybridrl.training.phases import Learner, Online, SetConfig, SwitchAgent
from hybridrl.training.recipes import get_recipe, offline_recipe
from hybridrl.training.runner import run
from hybridrl.types import DatasetError, HybridRLError
from tests.helpers import pendulum_dataset, random_batch

OBS, ACT, B = 3, 2, 8


def _state(**kw: object) -> td3.State:
    config = rebrac.Config(hidden_dims=(8, 8), **kw)  # type: ignore[arg-type]
    return rebrac.init(config, jax.random.PRNGKey(0), OBS, ACT)


def _batch() -> Transitions:
    batch = random_batch(jax.random.PRNGKey(3), B, OBS, ACT, terminal_every=3, next_actions=True)
    has = np.asarray(batch.extras["has_next_action"]).copy()
    has[4] = 0.0  # a time-out row: no recorded next action, the target still bootstraps
    return batch.replace(extras={**batch.extras, "has_next_action": jnp.asarray(has)})


def test_critic_loss_with_target_penalty_matches_numpy() -> None:
    state, batch, key = _state(critic_bc_coef=0.7), _batch(), jax.random.PRNGKey(5)
    _, metrics = jax.jit(rebrac.update)(state, batch, key)
    cfg = state.config
    # By hand: the smoothed target action, the penalty, the clipped double-Q target.
    a_next = np.asarray(
        state.actor.apply_fn({"params": state.actor.target_params}, batch.next_observations)
    )
    noise = np.clip(0.2 * np.asarray(jax.random.normal(key, a_next.shape)), -0.5, 0.5)
    a_next = np.clip(a_next + noise, -1.0, 1.0)
    q_next = np.asarray(
        state.critic.apply_fn(
            {"params": state.critic.target_params}, batch.next_observations, a_next
        )
    ).min(axis=0)
    dist = ((a_next - np.asarray(batch.extras["next_actions"])) ** 2).sum(axis=1)
    dist = dist * np.asarray(batch.extras["has_next_action"])
    d = np.asarray(batch.terminals)
    y = np.asarray(batch.rewards) + 0.99 * (1 - d) * (q_next - 0.7 * dist)
    qs = np.asarray(
        state.critic.apply_fn({"params": state.critic.params}, batch.observations, batch.actions)
    )
    expected = ((qs - y[None]) ** 2).mean(axis=1).sum()
    assert float(metrics["critic_loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["critic_bc_mse"]) == pytest.approx(dist.mean(), rel=1e-5)
    assert float(metrics["target_mean"]) == pytest.approx(y.mean(), rel=1e-5)
    assert float(cfg.critic_bc_coef) == pytest.approx(0.7)


def test_actor_loss_matches_numpy_with_min_q() -> None:
    state, batch = _state(actor_bc_coef=0.3), _batch()
    new, metrics = jax.jit(rebrac.update)(state, batch, jax.random.PRNGKey(5))
    assert int(new.actor.step) == 1  # the first update steps the actor (td3's delay)
    # The actor loss is evaluated with the pre-step actor and the post-step critic.
    pi = np.asarray(state.actor.apply_fn({"params": state.actor.params}, batch.observations))
    qs = np.asarray(new.critic.apply_fn({"params": new.critic.params}, batch.observations, pi))
    q = qs.min(axis=0)  # min over both critics, not Q_1 as in TD3+BC
    bc = ((pi - np.asarray(batch.actions)) ** 2).sum(axis=1)
    lam = 1.0 / np.abs(q).mean()
    expected = (0.3 * bc - lam * q).mean()
    assert float(metrics["actor_loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["bc_mse"]) == pytest.approx(bc.mean(), rel=1e-5)
    assert float(metrics["lambda"]) == pytest.approx(lam, rel=1e-5)


def test_rebrac_actor_loss_golden_and_lambda_is_stop_gradded() -> None:
    q = jnp.array([2.0, -4.0])
    pi = jnp.array([[0.5, -0.5], [0.0, 1.0]])
    a = jnp.array([[0.0, 0.0], [1.0, 1.0]])
    # bc = [0.5, 1.0]; lambda = 1 / 3; loss = mean(0.2 * bc - q / 3)
    expected = np.mean(0.2 * np.array([0.5, 1.0]) - np.array([2.0, -4.0]) / 3.0)
    assert float(losses.rebrac_actor_loss(q, pi, a, 0.2)) == pytest.approx(expected)
    # λ constant: dL/dq_i = -λ / B exactly; through λ the gradient would differ.
    grad_q = jax.grad(lambda x: losses.rebrac_actor_loss(x, pi, a, 0.2))(q)
    np.testing.assert_allclose(grad_q, [-1.0 / 6.0, -1.0 / 6.0], rtol=1e-6)
    grad_pi = jax.grad(lambda x: losses.rebrac_actor_loss(q, x, a, 0.2))(pi)
    np.testing.assert_allclose(grad_pi, 2 * 0.2 * (pi - a) / 2, rtol=1e-6)


def test_linear_decay_is_a_pure_function_of_the_step() -> None:
    steps = jnp.array([0, 9, 10, 11, 15, 20, 30])
    got = np.asarray(linear_decay(steps, 10, 10, 0.0))
    np.testing.assert_allclose(got, [1, 1, 1, 0.9, 0.5, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(linear_decay(steps, 10, 10, 0.25)[-2:], [0.25, 0.25])
    np.testing.assert_allclose(linear_decay(steps, 10, 0, 0.0), np.ones(7))  # no decay
    # The official formula: max(min, (N_on + N_off - i) / N_on) for i >= N_off.
    n_off, n_on = 10, 10
    official = [max(0.0, (n_on + n_off - i) / n_on) for i in range(n_off, n_off + n_on)]
    np.testing.assert_allclose(
        linear_decay(jnp.arange(n_off, n_off + n_on), n_off, n_on), official, rtol=1e-6
    )


def test_actor_bc_coef_follows_the_update_counter() -> None:
    state = _state(actor_bc_coef=0.5, actor_bc_decay_start=2, actor_bc_decay_updates=4)
    batch = _batch()
    update = jax.jit(rebrac.update)
    seen = []
    for i in range(7):
        state, metrics = update(state, batch, jax.random.PRNGKey(i))
        seen.append(float(metrics["actor_bc_coef"]))
    np.testing.assert_allclose(seen, [0.5, 0.5, 0.5, 0.375, 0.25, 0.125, 0.0], atol=1e-7)


def _flags(n: int, terminals: list[int], timeouts: list[int]) -> Transitions:
    obs = np.arange(n, dtype=np.float32)[:, None]
    nxt = obs + 1.0
    for i in terminals + timeouts:
        nxt[i] = 100.0 + i  # the next row starts another episode
    term, tout = np.zeros(n, np.float32), np.zeros(n, np.float32)
    term[terminals], tout[timeouts] = 1.0, 1.0
    actions = np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float32) / 10
    return Transitions(obs, actions, np.zeros(n, np.float32), nxt, term, tout)


def test_next_actions_at_terminal_timeout_and_last_row() -> None:
    t = _flags(7, terminals=[1], timeouts=[4])
    na, has = next_actions(t)
    np.testing.assert_array_equal(has, [1, 0, 1, 1, 0, 1, 0])
    for i in (0, 2, 3, 5):
        np.testing.assert_array_equal(na[i], t.actions[i + 1])
    for i in (1, 4, 6):  # terminal, time-out, last row: zeros, masked
        np.testing.assert_array_equal(na[i], [0.0, 0.0])
    # A cut the flags do not mark is refused, never guessed.
    bad = t.replace(next_observations=t.next_observations.copy())
    bad.next_observations[2] = 55.0
    with pytest.raises(DatasetError, match="no end flag"):
        next_actions(bad)


def test_missing_next_actions_is_refused_unless_the_critic_penalty_is_off() -> None:
    batch = random_batch(jax.random.PRNGKey(1), B, OBS, ACT)
    with pytest.raises(HybridRLError, match="next actions"):
        rebrac.update(_state(), batch, jax.random.PRNGKey(0))
    _, metrics = jax.jit(rebrac.update)(_state(), batch, jax.random.PRNGKey(0))
    assert np.isnan(float(metrics["critic_loss"]))  # traced β_c ≠ 0: poisoned, not ignored
    _, metrics = jax.jit(rebrac.update)(_state(critic_bc_coef=0.0), batch, jax.random.PRNGKey(0))
    assert np.isfinite(float(metrics["critic_loss"]))


def test_switch_to_td3_carries_the_network_options_and_drops_the_penalties() -> None:
    learner = SwitchAgent("td3").apply(Learner("rebrac", _state(), None, None))
    assert learner.agent_name == "td3"
    assert learner.state.config.critic_layer_norm and learner.state.config.actor_q == "min"


def test_finetune_recipe_sets_the_official_switch_and_follows_the_budget() -> None:
    recipe = get_recipe("rebrac_finetune").with_budget(offline_updates=6, online_steps=10)
    online = recipe.phases[1]
    assert isinstance(online, Online) and online.offline_ratio == 0.5 and online.batch_size == 256
    (hook,) = online.hooks
    assert isinstance(hook, SetConfig)
    assert dict(hook.values) == {
        "critic_bc_coef": 0.0,
        "actor_bc_decay_start": 6.0,
        "actor_bc_decay_updates": 10.0,
    }
    assert recipe.agent_config().actor_lr == 3e-4
    assert offline_recipe("rebrac", 5).phases[0].batch_size == 1024  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def tiny_pendulum() -> object:
    return pendulum_dataset(400, "rebrac-tiny")


SETTINGS = {"eval_episodes": 1, "log_interval": 2, "chunk_size": 2, "progress": False}


def test_rebrac_offline_recipe_runs(tiny_pendulum: object, tmp_path: Path) -> None:
    recipe = get_recipe("rebrac").with_budget(offline_updates=4).with_config(hidden_dims=(8,))
    result = run(recipe, "Pendulum-v1", dataset=tiny_pendulum, run_dir=tmp_path / "r", **SETTINGS)
    assert int(result.state.critic.step) == 4
    assert np.isfinite(result.summary["final_score"])


def test_rebrac_finetune_recipe_runs_and_decays(tiny_pendulum: object, tmp_path: Path) -> None:
    recipe = (
        get_recipe("rebrac_finetune")
        .with_budget(offline_updates=4, online_steps=8)
        .with_config(hidden_dims=(8,))
    )
    result = run(
        recipe, "Pendulum-v1", dataset=tiny_pendulum, run_dir=tmp_path / "r", num_envs=2, **SETTINGS
    )
    state = result.state
    assert int(state.critic.step) == 12
    assert float(state.config.critic_bc_coef) == 0.0
    # β_a at the last update (count 11): 0.01 * (1 - 7/8)
    assert float(rebrac.actor_bc_coef(state.config, jnp.asarray(11))) == pytest.approx(0.01 / 8)


def test_an_online_phase_with_the_critic_penalty_is_refused(
    tiny_pendulum: object, tmp_path: Path
) -> None:
    recipe = get_recipe("rebrac_finetune").with_budget(offline_updates=2, online_steps=4)
    online = recipe.phases[1]
    recipe = dataclasses.replace(
        recipe, phases=(recipe.phases[0], dataclasses.replace(online, hooks=()))
    ).with_config(hidden_dims=(8,))
    with pytest.raises(HybridRLError, match="next actions"):
        run(recipe, "Pendulum-v1", dataset=tiny_pendulum, run_dir=tmp_path / "r", **SETTINGS)
