"""RO2O = SAC-N + value smoothness + OOD penalty (critic) + policy smoothness (actor): the
SAC hook is inert when unused, the regularisers are the core terms on fresh perturbations,
the α_u schedule reads the state, zero weights reduce to SAC-N, and the switch to SAC."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import ro2o, sac
from hybridrl.core import losses
from hybridrl.data.transitions import Transitions
from hybridrl.evaluation.robustness import METRIC_NAMES
from hybridrl.training.phases import DropOfflineData, Learner, Offline, Online, SwitchAgent, Warmup
from hybridrl.training.recipes import Recipe, get_recipe
from hybridrl.training.runner import run
from hybridrl.types import HybridRLError
from tests.helpers import pendulum_dataset, random_batch

OBS_DIM, ACT_DIM, B = 4, 2, 8


def _batch(key: jax.Array, n: int = B) -> Transitions:
    return random_batch(key, n, OBS_DIM, ACT_DIM, terminal_every=3)


def _state(**overrides: Any) -> ro2o.State:
    config = ro2o.Config(hidden_dims=(16, 16), num_qs=3, num_perturb=4, **overrides)
    return ro2o.init(config, jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)


def _leaves_equal(a: Any, b: Any) -> None:
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _update_actor_before_the_hook(state: sac.State, batch: Transitions, key: jax.Array):
    """`sac.update_actor` as it was before ``actor_regularizer`` existed (a frozen copy)."""
    alpha = state.temperature.apply_fn({"params": state.temperature.params})
    k_pi, k_drop = jax.random.split(key)

    def loss_fn(params):
        dist = state.actor.apply_fn({"params": params}, batch.observations)
        actions, log_probs = dist.sample_and_log_prob(k_pi)
        qs = sac.critic_apply(state, state.critic.params, batch.observations, actions, k_drop)
        q = qs.mean(axis=0) if state.config.actor_q == "mean" else qs.min(axis=0)
        return losses.sac_actor_loss(log_probs, q, alpha), log_probs

    (actor_loss, log_probs), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.actor.params)
    actor = state.actor.apply_gradients(grads=grads)

    def temp_loss_fn(params):
        a = state.temperature.apply_fn({"params": params})
        return losses.temperature_loss(a, log_probs, state.target_entropy)

    temp_loss, temp_grads = jax.value_and_grad(temp_loss_fn)(state.temperature.params)
    temperature = state.temperature.apply_gradients(grads=temp_grads)
    metrics = {
        "actor_loss": actor_loss,
        "entropy": -log_probs.mean(),
        "temperature": alpha,
        "temperature_loss": temp_loss,
    }
    return dataclasses.replace(state, actor=actor, temperature=temperature), metrics


@pytest.mark.parametrize("actor_q", ["mean", "min"])
def test_sac_without_actor_regularizer_is_bit_identical_to_before_the_hook(actor_q):
    config = sac.Config(hidden_dims=(16, 16), num_qs=3, actor_q=actor_q)
    state = sac.init(config, jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    batch, key = _batch(jax.random.PRNGKey(1)), jax.random.PRNGKey(2)
    new, metrics = jax.jit(sac.update_actor)(state, batch, key)
    old, old_metrics = jax.jit(_update_actor_before_the_hook)(state, batch, key)
    _leaves_equal(new, old)
    assert set(metrics) == set(old_metrics)
    for k in metrics:
        np.testing.assert_array_equal(metrics[k], old_metrics[k])


def test_actor_regularizer_adds_its_loss_and_keeps_the_sac_noise():
    state = sac.init(
        sac.Config(hidden_dims=(16, 16), num_qs=2), jax.random.PRNGKey(0), OBS_DIM, ACT_DIM
    )
    batch, key = _batch(jax.random.PRNGKey(1)), jax.random.PRNGKey(2)
    seen: dict[str, Any] = {}

    def reg(s, params, b, k):
        seen["key"] = k
        # pulls the mean head's bias towards 5: a gradient the SAC loss alone does not have
        w = params["mean"]["bias"]
        loss = jnp.sum((w - 5.0) ** 2)
        return loss, {"my_term": loss}

    plain, m_plain = sac.update_actor(state, batch, key)
    hooked, m_hooked = sac.update_actor(state, batch, key, reg)
    # the SAC part is computed with the same samples: the reported actor_loss is identical
    np.testing.assert_array_equal(m_plain["actor_loss"], m_hooked["actor_loss"])
    assert "my_term" in m_hooked and "my_term" not in m_plain
    assert not np.array_equal(seen["key"], key)  # its own key
    # the hook's gradient moved the bias towards 5 further than SAC alone
    before = np.asarray(state.actor.params["mean"]["bias"])
    d_plain = np.asarray(plain.actor.params["mean"]["bias"]) - before
    d_hooked = np.asarray(hooked.actor.params["mean"]["bias"]) - before
    assert np.all(d_hooked > d_plain)
    # temperature step is unchanged (it reads log π of the SAC samples only)
    _leaves_equal(plain.temperature, hooked.temperature)


def test_critic_regularizer_is_the_core_terms_on_its_perturbations():
    state = _state(beta_qsmooth=0.3, beta_ood=0.7)
    batch, key = _batch(jax.random.PRNGKey(1)), jax.random.PRNGKey(5)
    total, metrics = ro2o.critic_regularizer(state, state.critic.params, batch, key)
    np.testing.assert_allclose(
        total, 0.3 * metrics["q_smooth_loss"] + 0.7 * metrics["ood_loss"], rtol=1e-6
    )
    assert float(metrics["q_smooth_loss"]) > 0 and float(metrics["ood_loss"]) > 0
    # α_u = ood_reg_init at critic step 0
    np.testing.assert_allclose(metrics["ood_weight"], 1.0)
    # a different key, different perturbations
    other, _ = ro2o.critic_regularizer(state, state.critic.params, batch, jax.random.PRNGKey(6))
    assert not np.allclose(total, other)
    # differentiable in the critic params, with gradient in every layer
    grads = jax.grad(lambda p: ro2o.critic_regularizer(state, p, batch, key)[0])(
        state.critic.params
    )
    assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree_util.tree_leaves(grads))


def test_actor_regularizer_is_zero_for_a_state_independent_policy():
    state = _state(beta_policy=2.0)
    batch, key = _batch(jax.random.PRNGKey(1)), jax.random.PRNGKey(5)
    loss, metrics = ro2o.actor_regularizer(state, state.actor.params, batch, key)
    assert float(loss) > 0
    np.testing.assert_allclose(loss, 2.0 * metrics["policy_smooth_loss"], rtol=1e-6)
    # zero every kernel: the Gaussian no longer depends on s, so every KL is exactly 0
    flat = jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.zeros_like(x) if "kernel" in jax.tree_util.keystr(path) else x,
        state.actor.params,
    )
    loss0, _ = ro2o.actor_regularizer(state, flat, batch, key)
    np.testing.assert_allclose(loss0, 0.0, atol=1e-7)


def test_ood_weight_follows_the_critic_step_count():
    state = _state(ood_reg_init=1.0, ood_reg_decay=0.2, ood_reg_min=0.3, utd_ratio=2)
    step = jax.jit(ro2o.update)
    rows = []
    for i in range(3):
        state, metrics = step(state, _batch(jax.random.PRNGKey(i), 2 * B), jax.random.PRNGKey(i))
        rows.append(float(metrics["ood_weight"]))
    # two critic steps per update (UTD 2), metrics averaged over them:
    # update 0: steps 0, 1 -> (1.0 + 0.8) / 2; update 1: 0.6, 0.4 -> 0.5; update 2: 0.3, 0.3
    np.testing.assert_allclose(rows, [0.9, 0.5, 0.3], atol=1e-6)
    assert int(state.critic.step) == 6


def test_zero_weights_reduce_to_sac_n():
    zero = _state(beta_qsmooth=0.0, beta_ood=0.0, beta_policy=0.0)
    base = sac.Config(
        **{f.name: getattr(zero.config, f.name) for f in dataclasses.fields(sac.Config)}
    )
    sac_state = dataclasses.replace(zero, config=base)
    batch, key = _batch(jax.random.PRNGKey(1)), jax.random.PRNGKey(2)
    a, ma = jax.jit(ro2o.update)(zero, batch, key)
    b, mb = jax.jit(sac.update)(sac_state, batch, key)
    for x, y in zip(
        jax.tree_util.tree_leaves(a.actor.params),
        jax.tree_util.tree_leaves(b.actor.params),
        strict=True,
    ):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    for x, y in zip(
        jax.tree_util.tree_leaves(a.critic.params),
        jax.tree_util.tree_leaves(b.critic.params),
        strict=True,
    ):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ma["critic_loss"], mb["critic_loss"], rtol=1e-6)


def test_weights_are_traced_and_num_perturb_static():
    state = _state()
    batch, key = _batch(jax.random.PRNGKey(1)), jax.random.PRNGKey(2)
    step = jax.jit(ro2o.update)
    step(state, batch, key)
    size = step._cache_size()
    cfg = dataclasses.replace(state.config, beta_ood=0.3, eps_q=0.05, ood_reg_decay=1e-3)
    step(dataclasses.replace(state, config=cfg), batch, key)
    assert step._cache_size() == size
    assert "num_perturb" not in {
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(state.config)
    }


def test_switch_to_sac_removes_exactly_the_ro2o_fields():
    state = _state()
    learner = Learner(agent_name="ro2o", state=state, offline=None, online=None)
    assert SwitchAgent("sac").apply(learner).agent_name == "sac"
    assert set(ro2o.RO2O_FIELDS) == {f.name for f in dataclasses.fields(ro2o.Config)} - {
        f.name for f in dataclasses.fields(sac.Config)
    }


def test_init_refuses_bad_configs():
    with pytest.raises(HybridRLError, match="at least 2 critics"):
        ro2o.init(ro2o.Config(hidden_dims=(8,), num_qs=1), jax.random.PRNGKey(0), 3, 1)
    with pytest.raises(HybridRLError, match=r"ro2o\.Config"):
        ro2o.init(sac.Config(), jax.random.PRNGKey(0), 3, 1)
    with pytest.raises(HybridRLError, match="num_perturb"):
        ro2o.init(ro2o.Config(hidden_dims=(8,), num_perturb=0), jax.random.PRNGKey(0), 3, 1)


# ----------------------------------------------------------------------------- recipes
@pytest.fixture(scope="module")
def tiny_pendulum() -> object:
    return pendulum_dataset(400, "ro2o-tiny")


TINY = {"hidden_dims": (8,), "num_qs": 3, "num_perturb": 2}
SETTINGS = {"eval_episodes": 1, "log_interval": 2, "chunk_size": 2, "progress": False}


def test_recipe_is_the_official_schedule_and_switches_to_sac_n() -> None:
    recipe = get_recipe("ro2o")
    pretrain, warmup, finetune = recipe.phases
    assert isinstance(pretrain, Offline) and pretrain.updates == 2_500_000
    assert pretrain.batch_size == 256 and recipe.normalize_observations
    assert isinstance(warmup, Warmup) and warmup.steps == 2500 and warmup.policy == "frozen"
    assert any(isinstance(h, DropOfflineData) for h in warmup.hooks)
    assert isinstance(finetune, Online) and finetune.steps == 250_000
    assert finetune.offline_ratio == 0.0 and finetune.updates_per_step == 1.0
    assert finetune.hooks == (SwitchAgent("sac"),)
    assert get_recipe("offline:ro2o").normalize_observations
    assert Recipe.from_dict(recipe.to_dict()) == recipe


def test_ro2o_recipe_runs_and_logs_robustness(tiny_pendulum: object, tmp_path: Path) -> None:
    recipe = (
        get_recipe("ro2o")
        .with_budget(offline_updates=4, warmup_steps=4, online_steps=6)
        .with_config(**TINY)
    )
    result = run(
        recipe,
        "Pendulum-v1",
        dataset=tiny_pendulum,
        run_dir=tmp_path / "r",
        robustness_eps=0.05,
        eval_interval=2,
        **SETTINGS,
    )
    assert result.learner.agent_name == "sac"  # online is SAC-N
    assert int(result.state.critic.step) == 4 + 6
    evals = [r for r in result_records(tmp_path / "r") if r["kind"] == "eval"]
    assert evals and all(np.isfinite(r[name]) for r in evals for name in METRIC_NAMES)
    # and not without the setting
    plain = run(
        recipe.with_budget(offline_updates=2, warmup_steps=2, online_steps=2),
        "Pendulum-v1",
        dataset=tiny_pendulum,
        run_dir=tmp_path / "p",
        **SETTINGS,
    )
    assert plain.learner.agent_name == "sac"
    assert not any("policy_sensitivity" in r for r in result_records(tmp_path / "p"))


def result_records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # ~15 s alone, ~45 s on a loaded 2-core machine (the update compiles)
def test_the_regularisers_make_the_agent_smoother() -> None:
    """Behaviour: from the same start and data, strong smoothness weights leave a policy and
    critics less sensitive to perturbations of the radius they were trained on than zero
    weights do (the same K-sample metric the runner logs)."""
    from hybridrl.data.replay import from_dataset
    from hybridrl.evaluation.robustness import agent_robustness
    from hybridrl.training.updates import scan_updates

    data = from_dataset(_batch(jax.random.PRNGKey(7), 256))
    obs, acts = data.data.observations[:64], data.data.actions[:64]
    eps = 0.5
    out = {}
    # weights large enough to dominate the TD and SAC losses on random data (the squared
    # value gaps are ~1e-4 here, so the value term needs a much larger weight)
    for name, w_pi, w_q in (("off", 0.0, 0.0), ("on", 100.0, 1e4)):
        state = _state(beta_policy=w_pi, beta_qsmooth=w_q, beta_ood=0.0, eps_q=eps, eps_policy=eps)
        state, _ = scan_updates(
            ro2o.update, state, data, jax.random.PRNGKey(1), num_updates=30, batch_size=32
        )
        out[name] = agent_robustness(ro2o, state, obs, acts, jax.random.PRNGKey(2), eps)
    assert out["on"]["policy_sensitivity"] < 0.8 * out["off"]["policy_sensitivity"], out
    assert out["on"]["value_sensitivity"] < 0.9 * out["off"]["value_sensitivity"], out
