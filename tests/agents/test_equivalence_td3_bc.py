"""TD3+BC against the official update rule, written out independently in numpy (float64).

Official code: github.com/sfujim/TD3_BC at commit 8791ad7d7656cb8396f1b3ac8c37f170b2a2dd5f
(``TD3_BC.py``, ``TD3_BC.train``; ``utils.py`` for ``not_done = 1 - terminal``). What the
reference below reproduces from it, in its order:

1. target policy smoothing: ``ε' = clip(σ ε, -c, c)``, ``ã = clip(π'(s') + ε', -1, 1)``
   (``max_action = 1``: hybridrl's actions live in [-1, 1]);
2. ``y = r + not_done · γ · min(Q'_1, Q'_2)(s', ã)`` with the **target** actor and critics;
3. critic step on ``mse(Q_1, y) + mse(Q_2, y)`` (a sum of two batch means), Adam 3e-4;
4. every ``policy_freq`` calls, with the **just-updated** critic:
   ``π = π(s)``, ``Q = Q_1(s, π)`` (first critic only), ``λ = α / mean|Q|`` detached,
   loss ``-λ mean(Q) + mean((π - a)²)`` (the mse is a mean over batch *and* action
   dimensions), Adam 3e-4; then Polyak ``τ = 0.005`` of both target critics (from the updated
   critics) and of the target actor (from the updated actor); on the other calls nothing but
   the critic moves.

The ε draws are hybridrl's own: `td3.critic_target` draws ``jax.random.normal(key, (B, A))``
from the key passed to ``update``, unsplit; the test draws the same array from the same key
and feeds it to the reference.

Phase of the delay: the official code increments its counter first and steps the actor on the
2nd, 4th, ... call; hybridrl reads its counter before incrementing and steps the actor on the
1st, 3rd, ... call, a documented deviation (docs/agents/td3.md, "Phase of the delay"; same
frequency). The reference keeps the official test ``total_it % policy_freq == 0`` and starts
its counter at ``policy_freq`` instead of 1, which is hybridrl's documented phase.

hybridrl runs its fused `td3_bc.update` (jit) three times (actor step, critic-only step, actor
step) from the same parameters, batch and keys; after each call the test compares the critic
loss and its gradient, the actor loss (evaluated on every call), λ, the actor gradient on
actor steps, and all parameters after the step: critics, actor and the three targets.

Not covered: the official PyTorch default init (a documented deviation; both sides start from
the same drawn parameters) and the state normalization, which is outside the agent.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import td3_bc
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


# ----------------------------------------------------------------------------- reference
@dataclasses.dataclass
class Nets:
    actor: Params
    actor_target: Params
    critic: list[Params]
    critic_target: list[Params]


@dataclasses.dataclass
class Batch:
    s: np.ndarray
    a: np.ndarray
    r: np.ndarray
    s2: np.ndarray
    not_done: np.ndarray


def policy(theta: Params, s: np.ndarray) -> tuple[np.ndarray, Any]:
    """``max_action · tanh(l3(relu(l2(relu(l1(s))))))`` with ``max_action = 1``."""
    z, cache = mlp_forward(theta, s)
    return np.tanh(z), cache


def q_value(theta: Params, s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Any]:
    out, cache = mlp_forward(theta, np.concatenate([s, a], axis=-1))
    return out[:, 0], cache


def critic_target(
    nets: Nets, b: Batch, eps: np.ndarray, cfg: td3_bc.Config
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    noise = np.clip(eps * cfg.policy_noise, -cfg.noise_clip, cfg.noise_clip)
    unclipped = policy(nets.actor_target, b.s2)[0] + noise
    next_action = np.clip(unclipped, -1.0, 1.0)
    target_q = np.minimum(
        q_value(nets.critic_target[0], b.s2, next_action)[0],
        q_value(nets.critic_target[1], b.s2, next_action)[0],
    )
    y = b.r + b.not_done * cfg.discount * target_q
    return y, {"noise": noise, "unclipped_next_action": unclipped}


def critic_loss(critic: list[Params], b: Batch, y: np.ndarray) -> tuple[float, list[Params]]:
    (q1, c1), (q2, c2) = q_value(critic[0], b.s, b.a), q_value(critic[1], b.s, b.a)
    loss = np.mean((q1 - y) ** 2) + np.mean((q2 - y) ** 2)
    grads = [
        mlp_backward(theta, cache, (2.0 * (q - y) / len(q))[:, None])[0]
        for theta, cache, q in ((critic[0], c1, q1), (critic[1], c2, q2))
    ]
    return float(loss), grads


def actor_loss(
    actor: Params, critic1: Params, b: Batch, alpha: float, detach_lambda: bool = True
) -> tuple[float, Params, float]:
    """``-λ mean(Q_1(s, π(s))) + mean((π(s) - a)²)``, its actor gradient, and λ.

    ``detach_lambda=False`` differentiates through λ's normaliser too (the variant the
    official ``.detach()`` rules out), for the sensitivity test only.
    """
    pi, a_cache = policy(actor, b.s)
    q, q_cache = q_value(critic1, b.s, pi)
    norm = np.mean(np.abs(q))
    lmbda = alpha / norm
    loss = -lmbda * np.mean(q) + np.mean((pi - b.a) ** 2)
    n = len(q)
    g_q = np.full(n, -lmbda / n)
    if not detach_lambda:
        g_q += alpha * np.mean(q) * np.sign(q) / (n * norm**2)
    _, g_in = mlp_backward(critic1, q_cache, g_q[:, None])
    g_pi = g_in[:, OBS:] + 2.0 * (pi - b.a) / pi.size
    grads, _ = mlp_backward(actor, a_cache, g_pi * (1 - pi**2))
    return float(loss), grads, float(lmbda)


class OfficialTD3BC:
    """``TD3_BC.TD3_BC`` reduced to ``train``: models, Adam states and the counter."""

    def __init__(self, nets: Nets, cfg: td3_bc.Config) -> None:
        self.nets, self.cfg = nets, cfg
        self.actor_opt = Adam(nets.actor)
        self.critic_opt = Adam([p for c in nets.critic for p in c])
        # hybridrl's documented phase (see the module doc): the official counter, started at
        # policy_freq - 1 so that its first increment makes an actor step
        self.total_it = cfg.policy_freq - 1

    def train(self, b: Batch, eps: np.ndarray) -> dict[str, Any]:
        cfg, n = self.cfg, self.nets
        self.total_it += 1
        y, smoothing = critic_target(n, b, eps, cfg)
        q_loss, q_grads = critic_loss(n.critic, b, y)
        flat = self.critic_opt.step(
            [p for c in n.critic for p in c], [g for c in q_grads for g in c], cfg.critic_lr
        )
        half = len(flat) // 2
        critic = [flat[:half], flat[half:]]
        out = {"critic_loss": q_loss, "critic_grads": q_grads, "y": y, **smoothing}
        # the actor loss with the updated critic, evaluated on every call (hybridrl reports
        # it on every call; the official code computes it on actor steps only)
        a_loss, a_grads, lmbda = actor_loss(n.actor, critic[0], b, float(cfg.alpha))
        out.update(actor_loss=a_loss, actor_grads=a_grads, lmbda=lmbda)
        actor, actor_target, critic_target_ = n.actor, n.actor_target, n.critic_target
        out["actor_step"] = self.total_it % cfg.policy_freq == 0
        if out["actor_step"]:
            actor = self.actor_opt.step(n.actor, a_grads, cfg.actor_lr)
            tau = float(cfg.tau)
            critic_target_ = [
                polyak(t, c, tau) for t, c in zip(n.critic_target, critic, strict=True)
            ]
            actor_target = polyak(n.actor_target, actor, tau)
        self.nets = Nets(actor, actor_target, critic, critic_target_)
        return out


# ----------------------------------------------------------------------------- hybridrl side
def _actor_list(tree: Any) -> Params:
    return dense_stack(tree, "MLP_0", "Dense_0")


def _critic_lists(tree: Any) -> list[Params]:
    members = tree["ensemble"]["members"]
    return [dense_stack(members, "MLP_0", "Dense_0", member=i) for i in range(2)]


def _nets(state: td3_bc.State) -> Nets:
    return Nets(
        actor=_actor_list(state.actor.params),
        actor_target=_actor_list(state.actor.target_params),
        critic=_critic_lists(state.critic.params),
        critic_target=_critic_lists(state.critic.target_params),
    )


def _batch() -> Transitions:
    rng = np.random.default_rng(11)
    f32 = np.float32
    return Transitions(
        observations=jnp.asarray(rng.normal(size=(B, OBS)), f32),
        actions=jnp.asarray(rng.uniform(-1.0, 1.0, size=(B, ACT)), f32),
        rewards=jnp.asarray(rng.normal(size=B), f32),
        next_observations=jnp.asarray(rng.normal(size=(B, OBS)), f32),
        terminals=jnp.asarray(np.arange(B) % 4 == 1, f32),
        timeouts=jnp.asarray(np.arange(B) % 8 == 6, f32),  # time-outs still bootstrap
    )


def _reference_batch(batch: Transitions) -> Batch:
    f64 = np.float64
    return Batch(
        s=np.asarray(batch.observations, f64),
        a=np.asarray(batch.actions, f64),
        r=np.asarray(batch.rewards, f64),
        s2=np.asarray(batch.next_observations, f64),
        not_done=1.0 - np.asarray(batch.terminals, f64),
    )


def _state(cfg: td3_bc.Config) -> td3_bc.State:
    """hybridrl's state with drawn parameters, targets different from the online networks
    (so the test sees which one each term reads), and gradient-recording optimizers. The
    target actor's outputs are scaled up (near ±1 on some rows) so that π'(s') + noise
    leaves [-1, 1] and the action clip of the smoothing is exercised."""
    state = td3_bc.init(cfg, jax.random.PRNGKey(0), OBS, ACT)
    actor = recorded(state.actor, randomized(state.actor.params, seed=1, out_scale=2.0))
    critic = recorded(state.critic, randomized(state.critic.params, seed=2))
    return dataclasses.replace(
        state,
        actor=actor.replace(target_params=randomized(state.actor.params, seed=5, out_scale=6.0)),
        critic=critic.replace(target_params=randomized(state.critic.params, seed=3)),
    )


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize(
    ("policy_noise", "noise_clip"),
    [(0.2, 0.5), (0.6, 0.5)],  # official; wider noise, so that the noise clip binds
    ids=["official", "noise-clipped"],
)
def test_td3_bc_updates_match_official(policy_noise: float, noise_clip: float) -> None:
    cfg = td3_bc.Config(hidden_dims=(8, 8), policy_noise=policy_noise, noise_clip=noise_clip)
    state = _state(cfg)
    batch = _batch()
    ref_batch = _reference_batch(batch)
    official = OfficialTD3BC(_nets(state), cfg)
    update = jax.jit(td3_bc.update)

    for call in range(3):
        key = jax.random.PRNGKey(100 + call)
        # hybridrl's draw (td3.critic_target: normal(key, (B, A)), the key unsplit)
        eps = np.asarray(jax.random.normal(key, (B, ACT), jnp.float32), np.float64)
        before = _nets(state)
        state, metrics = update(state, batch, key)
        ref = official.train(ref_batch, eps)
        where = f"call {call + 1}"

        assert ref["actor_step"] == (call % 2 == 0)  # hybridrl's phase: calls 1 and 3
        assert int(state.actor.step) == (call + 2) // 2
        np.testing.assert_allclose(
            float(metrics["target_mean"]), ref["y"].mean(), rtol=1e-5, atol=1e-5, err_msg=where
        )
        for name, ref_name in (
            ("critic_loss", "critic_loss"),
            ("actor_loss", "actor_loss"),
            ("lambda", "lmbda"),
        ):
            np.testing.assert_allclose(
                float(metrics[name]), ref[ref_name], rtol=1e-5, atol=1e-5, err_msg=f"{where} {name}"
            )
        for i in range(2):
            assert_close(
                _critic_lists(state.critic.opt_state[0])[i],
                ref["critic_grads"][i],
                f"{where} dQ{i + 1}",
            )
        if ref["actor_step"]:
            assert_close(_actor_list(state.actor.opt_state[0]), ref["actor_grads"], f"{where} dπ")

        after, expected = _nets(state), official.nets
        assert_close(after.actor, expected.actor, f"{where} π params", atol=1e-6)
        assert_close(after.actor_target, expected.actor_target, f"{where} π' params", atol=1e-6)
        for i in range(2):
            assert_close(after.critic[i], expected.critic[i], f"{where} Q{i + 1}", atol=1e-6)
            assert_close(
                after.critic_target[i], expected.critic_target[i], f"{where} Q'{i + 1}", atol=1e-6
            )
        if not ref["actor_step"]:  # the delayed step leaves the actor and all targets alone
            assert_close(after.actor, before.actor, f"{where} frozen π", atol=0.0)
            assert_close(after.actor_target, before.actor_target, f"{where} frozen π'", atol=0.0)
            for i in range(2):
                assert_close(
                    after.critic_target[i], before.critic_target[i], f"{where} Q'", atol=0.0
                )

        # both clips of the smoothing are exercised (the action clip in every case, the noise
        # clip where σ is wide)
        assert (np.abs(ref["unclipped_next_action"]) > 1.0).any()
        if policy_noise > 0.2:
            assert (np.abs(ref["noise"]) == noise_clip).any()


def test_reference_tells_the_official_choices_apart() -> None:
    """The comparison above is sharp enough to see the choices the official code makes: a λ
    that is not detached, the actor step on the pre-update critic, or Q̄ from the online
    critics for the target change the actor gradient or the critic loss by far more than the
    tolerance."""
    cfg = td3_bc.Config(hidden_dims=(8, 8))
    state = _state(cfg)
    batch = _reference_batch(_batch())
    eps = np.asarray(jax.random.normal(jax.random.PRNGKey(100), (B, ACT)), np.float64)
    official = OfficialTD3BC(_nets(state), cfg)
    old = official.nets
    ref = official.train(batch, eps)
    new_critic1 = official.nets.critic[0]
    alpha = float(cfg.alpha)

    def gap(grads: Params) -> float:
        return max(
            float(np.abs(g - r).max()) for g, r in zip(grads, ref["actor_grads"], strict=True)
        )

    assert gap(actor_loss(old.actor, new_critic1, batch, alpha, detach_lambda=False)[1]) > 1e-3
    assert gap(actor_loss(old.actor, old.critic[0], batch, alpha)[1]) > 1e-4
    online = dataclasses.replace(old, critic_target=old.critic, actor_target=old.actor)
    y_online, _ = critic_target(online, batch, eps, cfg)
    assert abs(critic_loss(old.critic, batch, y_online)[0] - ref["critic_loss"]) > 1e-3
