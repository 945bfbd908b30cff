"""IQL against the official update rule, written out independently in numpy (float64).

Official code: github.com/ikostrikov/implicit_q_learning at commit
09d700248117881a75cb21f0adb95c6c8a694cb2 (files ``learner.py``, ``critic.py``, ``actor.py``,
``value_net.py``, ``policy.py``, ``common.py``, ``configs/mujoco_config.py``). What the
reference below reproduces from it:

- one update (``learner._update_jit``) on ONE minibatch, in this order:
  1. value step: expectile loss ``mean(w · (Q̄(s,a) - V(s))²)``, ``w = τ`` where
     ``Q̄ - V > 0`` else ``1 - τ`` (``critic.loss``: the weight at exactly 0 does not matter,
     the squared error is 0 there), Q̄ = min of the two **target** critics;
  2. actor step with the **updated** V and the (not yet updated) **target** critics:
     ``-mean(min(exp(β (Q̄ - V)), 100) · log π(a|s))``;
  3. critic step towards ``r + γ · mask · V(s')`` with the **updated** V, the loss
     ``mean((Q1 - y)² + (Q2 - y)²)``, ``mask = 1 - terminal``;
  4. target critics ``θ̄ ← τ_p θ + (1 - τ_p) θ̄`` with the **updated** critics;
- the policy ``NormalTanhPolicy(state_dependent_std=False, tanh_squash_distribution=False,
  log_std_min=-5)``: a diagonal Gaussian N(tanh(μ(s)), exp(clip(log σ, -5, 2))²), log σ a free
  vector; MLPs with ReLU between layers and a linear output;
- optimizers: Adam (optax defaults) for all three networks; the actor's rate follows
  ``cosine_decay_schedule`` (``opt_decay_schedule="cosine"``, the official default).

hybridrl runs its fused `iql.update` (jit) twice from the same parameters, batch and key; the
test compares, after each update, the three losses, the gradient of each loss w.r.t. its own
network (taken from the optimizer, see `numpy_reference.recording`), and the parameters after
the step (value, actor, critics, target critics), to rtol = atol = 1e-5.

Not covered: dropout (off in the official MuJoCo config; its masks are random draws of each
framework), and the official orthogonal init, a documented deviation (docs/agents/iql.md):
both sides start from the same drawn parameters instead.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import iql
from hybridrl.data.transitions import Transitions
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

OBS, ACT, B = 3, 2, 16
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # the official actor's clip (log_std_min=-5, jaxrl max 2)
MAX_WEIGHT = 100.0  # the official clip of exp(β A)


# ----------------------------------------------------------------------------- reference
@dataclasses.dataclass
class Nets:
    """The official learner's four models as float64 arrays (actor: MLP arrays + log σ)."""

    actor: Params
    critic: list[Params]
    target_critic: list[Params]
    value: Params


@dataclasses.dataclass
class Batch:
    s: np.ndarray
    a: np.ndarray
    r: np.ndarray
    s2: np.ndarray
    mask: np.ndarray


def _q(theta: Params, s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Any]:
    out, cache = mlp_forward(theta, np.concatenate([s, a], axis=-1))
    return out[:, 0], cache


def _v(theta: Params, s: np.ndarray) -> tuple[np.ndarray, Any]:
    out, cache = mlp_forward(theta, s)
    return out[:, 0], cache


def min_q(critics: list[Params], s: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.minimum(_q(critics[0], s, a)[0], _q(critics[1], s, a)[0])


def value_loss(
    value: Params, target_critic: list[Params], b: Batch, expectile: float
) -> tuple[float, Params]:
    """``critic.update_v``: expectile regression of V(s) on min of the target critics."""
    q = min_q(target_critic, b.s, b.a)
    v, cache = _v(value, b.s)
    diff = q - v
    weight = np.where(diff > 0, expectile, 1 - expectile)
    loss = np.mean(weight * diff**2)
    g_v = -2.0 * weight * diff / len(v)
    grads, _ = mlp_backward(value, cache, g_v[:, None])
    return float(loss), grads


def awr_weights(
    target_critic: list[Params], value: Params, b: Batch, temperature: float
) -> np.ndarray:
    q = min_q(target_critic, b.s, b.a)
    v = _v(value, b.s)[0]
    return np.minimum(np.exp((q - v) * temperature), MAX_WEIGHT)


def actor_loss(actor: Params, weights: np.ndarray, b: Batch) -> tuple[float, Params]:
    """``actor.update``: ``-mean(w log N(a; tanh μ(s), σ²))`` and its gradient."""
    mlp, log_std = actor[:-1], actor[-1]
    z, cache = mlp_forward(mlp, b.s)
    mean = np.tanh(z)
    ls = np.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)
    std = np.exp(ls)
    diff = b.a - mean
    log_prob = np.sum(-0.5 * (diff / std) ** 2 - ls - 0.5 * math.log(2 * math.pi), axis=-1)
    loss = -np.mean(weights * log_prob)
    g_logp = -weights / len(weights)  # dL / d log π(a_b|s_b)
    g_mean = g_logp[:, None] * diff / std**2
    g_z = g_mean * (1 - mean**2)
    inside = (log_std > LOG_STD_MIN) & (log_std < LOG_STD_MAX)
    g_log_std = np.sum(g_logp[:, None] * ((diff / std) ** 2 - 1), axis=0) * inside
    grads, _ = mlp_backward(mlp, cache, g_z)
    return float(loss), [*grads, g_log_std]


def critic_loss(
    critic: list[Params], value: Params, b: Batch, discount: float
) -> tuple[float, list[Params]]:
    """``critic.update_q``: both critics towards ``r + γ mask V(s')``."""
    next_v = _v(value, b.s2)[0]
    target = b.r + discount * b.mask * next_v
    (q1, c1), (q2, c2) = _q(critic[0], b.s, b.a), _q(critic[1], b.s, b.a)
    loss = np.mean((q1 - target) ** 2 + (q2 - target) ** 2)
    grads = [
        mlp_backward(theta, cache, (2.0 * (q - target) / len(q))[:, None])[0]
        for theta, cache, q in ((critic[0], c1, q1), (critic[1], c2, q2))
    ]
    return float(loss), grads


class OfficialIQL:
    """``learner.Learner`` reduced to its update: models, Adam states, the schedule."""

    def __init__(self, nets: Nets, cfg: iql.Config) -> None:
        self.nets, self.cfg = nets, cfg
        self.opt_actor = Adam(nets.actor)
        self.opt_critic = Adam([p for c in nets.critic for p in c])
        self.opt_value = Adam(nets.value)

    def actor_lr(self) -> float:
        # optax.cosine_decay_schedule(lr, T) at the actor optimizer's count t: lr·½(1 + cos πt/T)
        t, steps = self.opt_actor.t, self.cfg.actor_lr_decay_steps
        if steps is None:
            return self.cfg.actor_lr
        return self.cfg.actor_lr * 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))

    def update(self, b: Batch) -> dict[str, Any]:
        cfg, n = self.cfg, self.nets
        # 1. value, against the target critics
        v_loss, v_grads = value_loss(n.value, n.target_critic, b, float(cfg.expectile))
        new_value = self.opt_value.step(n.value, v_grads, cfg.value_lr)
        # 2. actor: target critics and the *new* value
        weights = awr_weights(n.target_critic, new_value, b, float(cfg.temperature))
        a_loss, a_grads = actor_loss(n.actor, weights, b)
        new_actor = self.opt_actor.step(n.actor, a_grads, self.actor_lr())
        # 3. critics towards the *new* value's V(s')
        q_loss, q_grads = critic_loss(n.critic, new_value, b, float(cfg.discount))
        flat = self.opt_critic.step(
            [p for c in n.critic for p in c], [g for c in q_grads for g in c], cfg.critic_lr
        )
        half = len(flat) // 2
        new_critic = [flat[:half], flat[half:]]
        # 4. targets follow the *new* critics
        new_target = [
            polyak(t, c, float(cfg.tau)) for t, c in zip(n.target_critic, new_critic, strict=True)
        ]
        self.nets = Nets(new_actor, new_critic, new_target, new_value)
        return {
            "value_loss": v_loss,
            "value_grads": v_grads,
            "actor_loss": a_loss,
            "actor_grads": a_grads,
            "weights": weights,
            "critic_loss": q_loss,
            "critic_grads": q_grads,
        }


# ----------------------------------------------------------------------------- hybridrl side
def _actor_list(tree: Any) -> Params:
    return [*dense_stack(tree, "MLP_0", "mean"), np.asarray(tree["log_std"], np.float64)]


def _critic_lists(tree: Any) -> list[Params]:
    members = tree["ensemble"]["members"]
    return [dense_stack(members, "MLP_0", "Dense_0", member=i) for i in range(2)]


def _value_list(tree: Any) -> Params:
    return dense_stack(tree, "MLP_0", "Dense_0")


def _nets(state: iql.State) -> Nets:
    return Nets(
        actor=_actor_list(state.actor.params),
        critic=_critic_lists(state.critic.params),
        target_critic=_critic_lists(state.critic.target_params),
        value=_value_list(state.value.params),
    )


def _batch() -> Transitions:
    rng = np.random.default_rng(7)
    f32 = np.float32
    return Transitions(
        observations=jnp.asarray(rng.normal(size=(B, OBS)), f32),
        actions=jnp.asarray(rng.uniform(-0.95, 0.95, size=(B, ACT)), f32),
        rewards=jnp.asarray(rng.normal(size=B), f32),
        next_observations=jnp.asarray(rng.normal(size=(B, OBS)), f32),
        terminals=jnp.asarray(np.arange(B) % 4 == 3, f32),
        timeouts=jnp.asarray(np.arange(B) % 8 == 5, f32),  # time-outs still bootstrap
    )


def _reference_batch(batch: Transitions) -> Batch:
    f64 = np.float64
    return Batch(
        s=np.asarray(batch.observations, f64),
        a=np.asarray(batch.actions, f64),
        r=np.asarray(batch.rewards, f64),
        s2=np.asarray(batch.next_observations, f64),
        mask=1.0 - np.asarray(batch.terminals, f64),
    )


def _state(cfg: iql.Config) -> iql.State:
    """hybridrl's state with drawn parameters (target critics differ from the critics, so the
    test sees which of the two each step reads; they are shifted up so that some advantages
    are positive and β = 10 reaches the weight clip) and gradient-recording optimizers."""
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


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize(
    ("expectile", "temperature"),
    [(0.7, 3.0), (0.9, 10.0)],  # official MuJoCo; official AntMaze (weights hit the clip)
    ids=["mujoco", "antmaze"],
)
def test_iql_update_matches_official(expectile: float, temperature: float) -> None:
    cfg = iql.Config(
        hidden_dims=(8, 8), expectile=expectile, temperature=temperature, actor_lr_decay_steps=4
    )
    state = _state(cfg)
    batch = _batch()
    ref_batch = _reference_batch(batch)
    official = OfficialIQL(_nets(state), cfg)
    update = jax.jit(iql.update)

    # two updates: the second one exercises the Adam moments and the decayed actor rate
    for step in range(2):
        state, metrics = update(state, batch, jax.random.PRNGKey(10 + step))
        ref = official.update(ref_batch)
        where = f"update {step}"
        for name in ("value_loss", "actor_loss", "critic_loss"):
            np.testing.assert_allclose(
                float(metrics[name]), ref[name], rtol=1e-5, atol=1e-5, err_msg=f"{where}: {name}"
            )
        np.testing.assert_allclose(
            float(metrics["weight_mean"]), ref["weights"].mean(), rtol=1e-5, atol=1e-5
        )
        assert_close(_value_list(state.value.opt_state[0]), ref["value_grads"], f"{where} dV")
        assert_close(_actor_list(state.actor.opt_state[0]), ref["actor_grads"], f"{where} dπ")
        for i in range(2):
            assert_close(
                _critic_lists(state.critic.opt_state[0])[i],
                ref["critic_grads"][i],
                f"{where} dQ{i + 1}",
            )
        after = _nets(state)
        assert_close(after.value, official.nets.value, f"{where} V params", atol=1e-6)
        assert_close(after.actor, official.nets.actor, f"{where} π params", atol=1e-6)
        for i in range(2):
            assert_close(
                after.critic[i], official.nets.critic[i], f"{where} Q{i + 1} params", atol=1e-6
            )
            assert_close(
                after.target_critic[i],
                official.nets.target_critic[i],
                f"{where} Q̄{i + 1} params",
                atol=1e-6,
            )
        if temperature == 10.0:
            # the clip of exp(β A) at 100 is exercised, and so are rows below it
            assert (ref["weights"] == MAX_WEIGHT).any() and (ref["weights"] < MAX_WEIGHT).any()


def test_reference_tells_the_official_order_apart() -> None:
    """The comparison above is sharp enough to see the order of operations: the alternatives
    (actor advantages with the *old* V, value regressed on the *online* critics, critic
    target from the old V) change the losses by far more than the 1e-5 tolerance."""
    cfg = iql.Config(hidden_dims=(8, 8))
    state = _state(cfg)
    b = _reference_batch(_batch())
    official = OfficialIQL(_nets(state), cfg)
    old = official.nets
    ref = official.update(b)
    new_value = official.nets.value

    beta, expectile, gamma = float(cfg.temperature), float(cfg.expectile), float(cfg.discount)
    old_v_weights = awr_weights(old.target_critic, old.value, b, beta)
    assert abs(actor_loss(old.actor, old_v_weights, b)[0] - ref["actor_loss"]) > 1e-3
    online_weights = awr_weights(old.critic, new_value, b, beta)
    assert abs(actor_loss(old.actor, online_weights, b)[0] - ref["actor_loss"]) > 1e-3
    assert abs(value_loss(old.value, old.critic, b, expectile)[0] - ref["value_loss"]) > 1e-3
    assert abs(critic_loss(old.critic, old.value, b, gamma)[0] - ref["critic_loss"]) > 1e-4
