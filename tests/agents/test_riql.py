"""RIQL (robust IQL) as options of `hybridrl.agents.iql` and the ``riql`` recipe.

Official code: github.com/YangRui2015/RIQL at commit cc07d81 (``RIQL.py``: ``huber_loss``
L261-266, ``asymmetric_l2_loss`` L268-269, ``ImplicitQLearning._update_v`` L482-508,
``_update_q`` L510-533, ``_update_policy`` L535-554, ``train`` L556-578; ``compute_mean_std``
L94-97 with the statistics over observations and next observations at L626). The reference
below rewrites one update of it in numpy (float64, hand-written backpropagation, the helpers of
`tests.agents.numpy_reference`):

1. V(s') from the V before the step (L568-569);
2. value step: ``Q̄ = quantile_α(target critics)`` (``torch.quantile``, linear interpolation),
   ``u = Q̄ - V(s)`` with the V before the step, expectile loss ``mean(|τ - 1(u<0)| u²)``; the
   advantages for the actor are this ``u``;
3. critic step: ``y = clip(r + γ (1 - d) V(s'), -100, 1000)``, loss ``mean`` over (K, B) of
   ``l_δ(y - Q_k)``, δ = 1/σ²; then Polyak of the target critics;
4. actor step: deterministic tanh actor, ``mean(min(exp(β u), 100) · ||π(s) - a||²)``, Adam
   with the cosine schedule (``CosineAnnealingLR`` = optax's ``cosine_decay_schedule``).

Not covered: the official EDAC-style critic init (bias 0.1, last layer U(±3e-3)); both sides
start from the same drawn parameters (docs/agents/riql.md lists the deviation).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from hybridrl.agents import iql
from hybridrl.cli import app
from hybridrl.core import losses
from hybridrl.data.corrupt import corrupt_dataset
from hybridrl.data.io import save_npz
from hybridrl.data.transitions import Transitions
from hybridrl.training import riql as riql_preset
from hybridrl.training.prepared import observation_stats
from hybridrl.training.recipes import get_recipe
from hybridrl.training.runner import run
from tests.agents.numpy_reference import (
    Adam,
    Params,
    assert_close,
    dense_stack,
    mlp_backward,
    mlp_forward,
    polyak,
    randomized,
    recorded,
)
from tests.helpers import pendulum_dataset

OBS, ACT, B = 3, 2, 16
CLIP = (-100.0, 1000.0)


# ----------------------------------------------------------------------------- golden losses
def test_huber_loss_golden() -> None:
    # δ = 0.5: 0.2 inside (0.2²/(2·0.5) = 0.04); 0.5 on the edge, -3 and 1 outside (|u| - 0.25)
    diff = jnp.array([0.2, 0.5, -3.0, 1.0])
    expected = (0.04 + 0.25 + 2.75 + 0.75) / 4
    np.testing.assert_allclose(float(losses.huber_loss(diff, 0.5)), expected, rtol=1e-6)
    # δ = 1 (σ = 1): 0.5²/2 = 0.125 and 3 - 0.5 = 2.5
    np.testing.assert_allclose(
        float(jax.jit(losses.huber_loss)(jnp.array([0.5, -3.0]), 1.0)), 1.3125, rtol=1e-6
    )


@pytest.mark.parametrize("delta", [1.0, 1.0 / 9.0, 100.0])
def test_huber_gradient_bounded_outside_and_mse_over_delta_inside(delta: float) -> None:
    xs = np.linspace(-5 * delta, 5 * delta, 41)
    grad = jax.vmap(jax.grad(lambda x: losses.huber_loss(x, delta)))(jnp.asarray(xs))
    grad = np.asarray(grad, np.float64)
    outside, inside = np.abs(xs) > delta, np.abs(xs) < delta
    np.testing.assert_allclose(grad[outside], np.sign(xs[outside]), rtol=1e-6)
    assert np.all(np.abs(grad) <= 1.0 + 1e-6)
    mse_grad = xs[inside]  # d/dx x²/2
    np.testing.assert_allclose(grad[inside], mse_grad / delta, rtol=1e-5, atol=1e-7)


def test_ensemble_quantile_golden() -> None:
    q = jnp.array([[1.0, 5.0], [2.0, 0.0], [4.0, 3.0], [3.0, 1.0], [10.0, 2.0]])
    # sorted columns (1, 2, 3, 4, 10) and (0, 1, 2, 3, 5); h = α (N - 1)
    quantile = jax.jit(losses.ensemble_quantile)
    np.testing.assert_allclose(quantile(q, 0.25), [2.0, 1.0])
    np.testing.assert_allclose(quantile(q, 0.1), [1.4, 0.4], rtol=1e-6)  # h = 0.4
    np.testing.assert_allclose(quantile(q, 0.5), [3.0, 2.0])
    np.testing.assert_allclose(quantile(q, 0.0), q.min(axis=0))
    np.testing.assert_allclose(quantile(q, 1.0), q.max(axis=0))
    np.testing.assert_allclose(quantile(q, 0.6), [3.4, 2.4], rtol=1e-6)  # h = 2.4


def test_quantile_025_lies_between_min_and_mean() -> None:
    """Always above the min; below the mean for ensembles symmetric about their mean (a
    skewed one, (0, 10, 10, 10, 10), has its 0.25-quantile above the mean)."""
    rng = np.random.default_rng(0)
    for k in (3, 5, 10):
        half = np.abs(rng.normal(size=(k // 2, 64)))
        centre = rng.normal(size=(1, 64))
        middle = centre if k % 2 else np.zeros((0, 64))
        q = jnp.asarray(np.concatenate([centre - half, middle, centre + half]), jnp.float32)
        q25 = losses.ensemble_quantile(q, 0.25)
        assert bool(jnp.all(q.min(axis=0) <= q25 + 1e-6))
        assert bool(jnp.all(q25 <= q.mean(axis=0) + 1e-6))
    skewed = jnp.array([[0.0], [10.0], [10.0], [10.0], [10.0]])
    assert float(losses.ensemble_quantile(skewed, 0.25)[0]) > float(skewed.mean())


# ----------------------------------------------------------------------------- reference
@dataclasses.dataclass
class Nets:
    actor: Params
    critic: list[Params]
    target_critic: list[Params]
    value: Params


def _q(theta: Params, s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Any]:
    out, cache = mlp_forward(theta, np.concatenate([s, a], axis=-1))
    return out[:, 0], cache


def _v(theta: Params, s: np.ndarray) -> tuple[np.ndarray, Any]:
    out, cache = mlp_forward(theta, s)
    return out[:, 0], cache


class OfficialRIQL:
    """``ImplicitQLearning.train`` of RIQL.py reduced to numpy: K critics, V, tanh actor."""

    def __init__(self, nets: Nets, cfg: iql.Config, sigma: float) -> None:
        self.nets, self.cfg, self.delta = nets, cfg, 1.0 / sigma**2
        self.opt_actor = Adam(nets.actor)
        self.opt_critic = Adam([p for c in nets.critic for p in c])
        self.opt_value = Adam(nets.value)

    def actor_lr(self) -> float:
        t, steps = self.opt_actor.t, self.cfg.actor_lr_decay_steps
        assert steps is not None
        return self.cfg.actor_lr * 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))

    def update(self, s, a, r, s2, done) -> dict[str, Any]:
        cfg, n, k = self.cfg, self.nets, len(self.nets.critic)
        expectile, beta, gamma = float(cfg.expectile), float(cfg.temperature), float(cfg.discount)
        next_v = _v(n.value, s2)[0]  # before the V step
        # value step
        target_all = np.stack([_q(c, s, a)[0] for c in n.target_critic])
        target_q = np.quantile(target_all, float(cfg.value_quantile), axis=0)
        v, v_cache = _v(n.value, s)
        adv = target_q - v
        w_v = np.abs(expectile - (adv < 0))
        v_loss = float(np.mean(w_v * adv**2))
        v_grads, _ = mlp_backward(n.value, v_cache, (-2.0 * w_v * adv / B)[:, None])
        new_value = self.opt_value.step(n.value, v_grads, cfg.value_lr)
        # critic step
        y = np.clip(r + (1.0 - done) * gamma * next_v, *CLIP)
        q_loss, q_grads = 0.0, []
        for theta in n.critic:
            q, cache = _q(theta, s, a)
            diff = y - q
            inside = np.abs(diff) < self.delta
            q_loss += np.mean(
                np.where(inside, 0.5 * diff**2 / self.delta, np.abs(diff) - 0.5 * self.delta)
            )
            g_diff = np.where(inside, diff / self.delta, np.sign(diff)) / (k * B)
            q_grads.append(mlp_backward(theta, cache, -g_diff[:, None])[0])
        q_loss /= k
        flat = self.opt_critic.step(
            [p for c in n.critic for p in c], [g for c in q_grads for g in c], cfg.critic_lr
        )
        size = len(flat) // k
        new_critic = [flat[i * size : (i + 1) * size] for i in range(k)]
        new_target = [
            polyak(t, c, float(cfg.tau)) for t, c in zip(n.target_critic, new_critic, strict=True)
        ]
        # actor step, with the advantages of the value step
        weights = np.minimum(np.exp(beta * adv), 100.0)
        z, a_cache = mlp_forward(n.actor, s)
        pi = np.tanh(z)
        bc = np.sum((pi - a) ** 2, axis=-1)
        a_loss = float(np.mean(weights * bc))
        g_pi = 2.0 * weights[:, None] * (pi - a) / B
        a_grads, _ = mlp_backward(n.actor, a_cache, g_pi * (1 - pi**2))
        new_actor = self.opt_actor.step(n.actor, a_grads, self.actor_lr())
        self.nets = Nets(new_actor, new_critic, new_target, new_value)
        return {
            "value_loss": v_loss,
            "value_grads": v_grads,
            "critic_loss": q_loss,
            "critic_grads": q_grads,
            "actor_loss": a_loss,
            "actor_grads": a_grads,
            "weights": weights,
            "targets": y,
        }


def _critics(tree: Any, k: int) -> list[Params]:
    members = tree["ensemble"]["members"]
    return [dense_stack(members, "MLP_0", "Dense_0", member=i) for i in range(k)]


def _nets(state: iql.State) -> Nets:
    k = state.config.num_qs
    return Nets(
        actor=dense_stack(state.actor.params, "MLP_0", "Dense_0"),
        critic=_critics(state.critic.params, k),
        target_critic=_critics(state.critic.target_params, k),
        value=dense_stack(state.value.params, "MLP_0", "Dense_0"),
    )


def _batch() -> Transitions:
    rng = np.random.default_rng(7)
    f32 = np.float32
    rewards = rng.normal(size=B)
    rewards[:2] = (1500.0, -300.0)  # targets beyond the clip (-100, 1000)
    return Transitions(
        observations=jnp.asarray(rng.normal(size=(B, OBS)), f32),
        actions=jnp.asarray(rng.uniform(-0.95, 0.95, size=(B, ACT)), f32),
        rewards=jnp.asarray(rewards, f32),
        next_observations=jnp.asarray(rng.normal(size=(B, OBS)), f32),
        terminals=jnp.asarray(np.arange(B) % 4 == 3, f32),
        timeouts=jnp.asarray(np.arange(B) % 8 == 5, f32),
    )


def _riql_config(k: int, sigma: float, alpha: float, **kw: Any) -> iql.Config:
    recipe = get_recipe("riql").with_budget(offline_updates=4)
    cfg = recipe.with_config(
        hidden_dims=(8, 8), num_qs=k, huber_delta=1.0 / sigma**2, value_quantile=alpha, **kw
    ).agent_config()
    return cfg


def _state(cfg: iql.Config) -> iql.State:
    state = iql.init(cfg, jax.random.PRNGKey(0), OBS, ACT)
    critic = recorded(state.critic, randomized(state.critic.params, seed=2))
    return dataclasses.replace(
        state,
        actor=recorded(state.actor, randomized(state.actor.params, seed=1)),
        critic=critic.replace(
            target_params=randomized(state.critic.params, seed=3, out_scale=2.0, out_bias=0.8)
        ),
        value=recorded(state.value, randomized(state.value.params, seed=4)),
    )


def _reference_batch(batch: Transitions) -> tuple[np.ndarray, ...]:
    f64 = np.float64
    return tuple(
        np.asarray(x, f64)
        for x in (
            batch.observations,
            batch.actions,
            batch.rewards,
            batch.next_observations,
            batch.terminals,
        )
    )


# ----------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize(
    ("k", "sigma", "alpha"),
    [(5, 1.0, 0.25), (3, 3.0, 0.5)],  # clean-data default; random dynamics, hopper-like
    ids=["K5-sigma1-q25", "K3-sigma3-q50"],
)
def test_riql_update_matches_official(k: int, sigma: float, alpha: float) -> None:
    cfg = _riql_config(k, sigma, alpha)
    state = _state(cfg)
    batch = _batch()
    ref_batch = _reference_batch(batch)
    official = OfficialRIQL(_nets(state), cfg, sigma)
    update = jax.jit(iql.update)
    for step in range(2):
        state, metrics = update(state, batch, jax.random.PRNGKey(10 + step))
        ref = official.update(*ref_batch)
        where = f"update {step}"
        for name in ("value_loss", "actor_loss", "critic_loss"):
            np.testing.assert_allclose(
                float(metrics[name]), ref[name], rtol=1e-5, atol=1e-5, err_msg=f"{where}: {name}"
            )
        np.testing.assert_allclose(
            float(metrics["target_mean"]), ref["targets"].mean(), rtol=1e-5, atol=1e-5
        )
        assert_close(
            dense_stack(state.value.opt_state[0], "MLP_0", "Dense_0"), ref["value_grads"], "dV"
        )
        assert_close(
            dense_stack(state.actor.opt_state[0], "MLP_0", "Dense_0"), ref["actor_grads"], "dπ"
        )
        for i in range(k):
            assert_close(
                _critics(state.critic.opt_state[0], k)[i], ref["critic_grads"][i], f"dQ{i}"
            )
        after = _nets(state)
        assert_close(after.value, official.nets.value, f"{where} V", atol=1e-6)
        assert_close(after.actor, official.nets.actor, f"{where} π", atol=1e-6)
        for i in range(k):
            assert_close(after.critic[i], official.nets.critic[i], f"{where} Q{i}", atol=1e-6)
            assert_close(
                after.target_critic[i], official.nets.target_critic[i], f"{where} Q̄{i}", atol=1e-6
            )
    # the clip and both Huber regions were exercised
    assert ref["targets"].max() == CLIP[1] and ref["targets"].min() == CLIP[0]


def test_the_reference_tells_the_riql_order_apart() -> None:
    """IQL's order (actor and critics read the updated V) moves the actor loss, the
    advantages and the TD targets by more than the tolerance above, so the equivalence test
    pins RIQL's order (the critic loss alone would not: with δ = 1 most rows of this batch
    are in Huber's linear region)."""
    cfg = _riql_config(5, 1.0, 0.25)
    batch = _batch()
    _, riql_metrics = jax.jit(iql.update)(_state(cfg), batch, jax.random.PRNGKey(0))
    iql_cfg = dataclasses.replace(cfg, update_order="iql")
    _, iql_metrics = jax.jit(iql.update)(_state(iql_cfg), batch, jax.random.PRNGKey(0))
    for name in ("actor_loss", "adv_mean", "target_mean"):  # target_mean: V(s') old or new
        x, y = float(riql_metrics[name]), float(iql_metrics[name])
        assert abs(x - y) > 2 * (1e-5 + 1e-5 * abs(x)), name  # twice the tolerance above
    np.testing.assert_allclose(riql_metrics["value_loss"], iql_metrics["value_loss"])


def test_corruption_metrics_split_marked_and_clean_rows() -> None:
    """With a ``corrupted`` extra in the batch, the update logs RIQL's statistics on the
    marked rows and on the others, from the networks before the update."""
    cfg = _riql_config(5, 1.0, 0.25)
    state = _state(cfg)
    batch = _batch()
    marks = np.arange(B) % 3 == 0
    marked = batch.replace(extras={"corrupted": jnp.asarray(marks, jnp.float32)})
    _, metrics = jax.jit(iql.update)(state, marked, jax.random.PRNGKey(0))
    _, plain = jax.jit(iql.update)(state, batch, jax.random.PRNGKey(0))
    assert not any("corrupted" in k for k in plain)
    for name in plain:  # the update itself does not change
        np.testing.assert_allclose(metrics[name], plain[name], rtol=1e-6, err_msg=name)
    nets = _nets(state)
    s, a, r, s2, done = _reference_batch(batch)
    target_all = np.stack([_q(c, s, a)[0] for c in nets.target_critic])
    std = target_all.std(axis=0, ddof=1)
    gap = target_all.mean(axis=0) - np.quantile(target_all, 0.25, axis=0)
    y = np.clip(r + 0.99 * (1 - done) * _v(nets.value, s2)[0], *CLIP)
    td = np.abs(y - np.mean([_q(c, s, a)[0] for c in nets.critic], axis=0))
    for name, x in (("target_q_std", std), ("target_q_gap", gap), ("td_error", td)):
        for prefix, rows in (("corrupted", marks), ("clean", ~marks)):
            np.testing.assert_allclose(
                float(metrics[f"{prefix}_{name}"]), x[rows].mean(), rtol=1e-5, atol=1e-6
            )


# ----------------------------------------------------------------------------- defaults


# ----------------------------------------------------------------------------- defaults
def test_defaults_are_iql() -> None:
    """The default config is IQL's: two critics, min target, squared error summed over
    critics, no clip, IQL's order; and no new traced leaves (old checkpoints still load)."""
    cfg = iql.Config()
    assert (cfg.num_qs, cfg.value_quantile, cfg.huber_delta) == (2, None, None)
    assert (cfg.critic_reduction, cfg.target_clip, cfg.update_order) == ("sum", None, "iql")
    assert len(jax.tree_util.tree_leaves(cfg)) == 5  # discount, tau, expectile, β, max_weight


def test_quantile_zero_is_the_min_target() -> None:
    """α = 0 gives IQL's target (the min of the target critics), for V and the advantages."""
    cfg = iql.Config(hidden_dims=(8,))
    state, batch = _state(cfg), _batch()
    quantile_state = dataclasses.replace(state, config=dataclasses.replace(cfg, value_quantile=0.0))
    qs = jnp.asarray(np.random.default_rng(0).normal(size=(2, B)), jnp.float32)
    np.testing.assert_array_equal(iql.reduce_target(quantile_state.config, qs), qs.min(axis=0))
    np.testing.assert_allclose(
        jax.jit(iql.advantages)(quantile_state, batch),
        jax.jit(iql.advantages)(state, batch),
        rtol=1e-6,
    )


def test_bad_options_are_refused() -> None:
    for bad in (
        {"critic_reduction": "max"},
        {"update_order": "parallel"},
        {"num_qs": 0},
        {"target_clip": (1.0,)},
    ):
        with pytest.raises(ValueError):
            iql.init(iql.Config(hidden_dims=(8,), **bad), jax.random.PRNGKey(0), 3, 1)


# ----------------------------------------------------------------------------- recipe
def test_riql_recipe_constants() -> None:
    recipe = get_recipe("riql")
    cfg = recipe.agent_config()
    assert recipe.agent == "iql" and recipe.phases[0].updates == 3_000_000
    assert (cfg.num_qs, cfg.value_quantile, cfg.huber_delta) == (5, 0.25, 1.0)
    assert cfg.actor == "deterministic" and cfg.target_clip == CLIP
    assert cfg.actor_lr_decay_steps == 3_000_000 and cfg.update_order == "riql"
    assert recipe.normalize_observations and recipe.observation_stats == "observations_and_next"
    assert recipe.reward_normalization == "none"
    # the cosine schedule follows --offline-updates
    assert recipe.with_budget(offline_updates=7).agent_config().actor_lr_decay_steps == 7
    # RIQL_config.py: random dynamics, walker2d: K 3, σ 1, α 0.25; rewards, halfcheetah: σ 3
    assert riql_preset.setting("walker2d-medium-replay", "dynamics") == {
        "num_qs": 3,
        "huber_delta": 1.0,
        "value_quantile": 0.25,
    }
    assert riql_preset.setting("halfcheetah", "rewards")["huber_delta"] == pytest.approx(1 / 9)
    with pytest.raises(Exception, match="no official setting"):
        riql_preset.setting("pendulum", "rewards")


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    ds = pendulum_dataset(400, "pendulum-riql")
    return corrupt_dataset(ds, "dynamics", rate=0.3, seed=0)


def test_observation_stats_over_observations_and_next(corrupted) -> None:
    t = corrupted.transitions
    rows = np.concatenate([np.asarray(t.observations), np.asarray(t.next_observations)])
    mean, std = observation_stats(corrupted, "observations_and_next")
    np.testing.assert_allclose(mean, rows.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(std, rows.std(axis=0) + 1e-3, rtol=1e-5)
    default = observation_stats(corrupted)
    np.testing.assert_array_equal(default[0], corrupted.observation_stats()[0])


def test_riql_runs_end_to_end(corrupted, tmp_path) -> None:
    recipe = get_recipe("riql").with_budget(offline_updates=4).with_config(hidden_dims=(8,))
    result = run(
        recipe,
        "Pendulum-v1",
        dataset=corrupted,
        run_dir=tmp_path / "run",
        eval_episodes=1,
        log_interval=2,
        progress=False,
    )
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    records = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    train = [json.loads(line) for line in records if '"train"' in line]
    assert train and all("corrupted_td_error" in rec and "clean_td_error" in rec for rec in train)
    assert info["fingerprint"]["recipe"]["observation_stats"] == "observations_and_next"
    _, std = observation_stats(corrupted, "observations_and_next")
    np.testing.assert_allclose(info["policy_io"]["observation_stats"]["std"], std, rtol=1e-6)
    assert result.state.config.num_qs == 5
    assert result.state.critic.params["ensemble"]["members"]["Dense_0"]["kernel"].shape[0] == 5


def test_riql_from_the_cli(corrupted, tmp_path) -> None:
    path = save_npz(corrupted, tmp_path / "pendulum.npz")
    args = ["run", "riql", "--env", "Pendulum-v1", "--dataset", str(path)]
    args += ["--out", str(tmp_path / "cli"), "--offline-updates", "3", "--eval-episodes", "1"]
    args += ["--set", "hidden_dims=[8]", "--set", "num_qs=3", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "cli" / "run.json").read_text())
    assert info["fingerprint"]["recipe"]["config"]["num_qs"] == 3
    assert info["fingerprint"]["recipe"]["config"]["actor_lr_decay_steps"] == 3
