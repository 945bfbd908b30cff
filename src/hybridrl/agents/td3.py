"""Twin Delayed DDPG, TD3 (Fujimoto, van Hoof & Meger, 2018, "Addressing Function
Approximation Error in Actor-Critic Methods", ICML).

A deterministic actor π_φ(s) ∈ [-1, 1]^A, two critics Q_θ1, Q_θ2 and target copies of all
three. For a minibatch (s, a, r, s', d), d = ``terminals``:

- target policy smoothing: ``ã = clip(π_φ'(s') + clip(ε, -c, c), -1, 1)``, ε ~ N(0, σ²),
  σ = ``policy_noise`` (0.2), c = ``noise_clip`` (0.5);
- clipped double-Q target: ``y = r + γ (1 - d) min_{i=1,2} Q_θ'i(s', ã)`` (no gradient);
- critics: ``L_Q = Σ_i E[(Q_θi(s, a) - y)²]`` (the official code's sum of two MSEs);
- delayed policy update, every ``policy_freq`` (2) critic updates:
  ``L_π = -E[Q_θ1(s, π_φ(s))]`` (the first critic only, as in the paper and official code),
  then Polyak ``θ'_i ← τ θ_i + (1 - τ) θ'_i`` and ``φ' ← τ φ + (1 - τ) φ'``. The target
  networks move only on these delayed steps, as in the paper's Algorithm 1.

Acting: ``act(..., deterministic=True)`` is π_φ(s); ``deterministic=False`` adds exploration
noise N(0, ``exploration_noise``²) (0.1) and clips to [-1, 1]. The official code's
``start_timesteps`` of uniform random actions is the online loop's ``start_steps``.

**Pure delay.** The update counter is the critic's optimizer step ``state.critic.step`` (part of
the state, saved in checkpoints). `update` does one critic step, then a ``jax.lax.cond`` on
``critic.step % policy_freq == 0`` (counted *before* this call's critic step) picks either the
actor step plus both Polyak updates, or an evaluation of the actor loss only (a forward pass,
so ``actor_loss`` is reported on every update and its chunk mean is not diluted by zeros).
Under ``vmap`` (many seeds) the cond becomes a select that evaluates both branches, which is
still correct. Counting before the increment puts the first actor step on the first call (the
official code increments first and updates on the 2nd, 4th, ... call); the schedule, one
actor step per ``policy_freq`` critic steps, is the same.

**Hooks (TD3+BC, ReBRAC).** ``update(..., actor_loss=f)`` takes the actor objective as a
function ``f(config, q_pi, pi_actions, batch) -> (loss, metrics)`` (default `td3_actor_loss`),
the same pattern as SAC's ``critic_regularizer``; `hybridrl.agents.td3_bc` passes the TD3+BC
loss and reuses everything else. ``update(..., target_penalty=g)`` subtracts a per-row penalty
``g(config, ã, batch) -> (penalty (B,), metrics)`` of the smoothed target action ã from the
bootstrapped value: ``y = r + γ (1 - d) [min_i Q_θ'i(s', ã) - g]`` (ReBRAC's critic BC term,
`hybridrl.agents.rebrac`).

Two structural options serve ReBRAC and default to TD3: ``critic_layer_norm`` (LayerNorm in
the critics' hidden layers) and ``actor_q`` ("first": Q_θ1 in the actor loss, TD3; "min":
min_i Q_θi, ReBRAC).

Defaults follow the authors' current code (github.com/sfujim/TD3): 256-256 ReLU MLPs (the
paper's 400-300 was replaced there), Adam 3e-4 for both, batch 256, γ 0.99, τ 0.005.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from hybridrl.agents.spec import AgentSpec, init_only
from hybridrl.core import losses
from hybridrl.core.optim import adam
from hybridrl.core.train_state import TargetTrainState
from hybridrl.data.transitions import Transitions
from hybridrl.networks import DeterministicActor, EnsembleCritic

Metrics = dict[str, jax.Array]


@struct.dataclass
class Config:
    """TD3 hyperparameters. Sizes, learning rates and ``policy_freq`` are static; the numeric
    ones are traced leaves (sweeping them reuses the compiled update).

    Attributes:
        hidden_dims: hidden layer sizes of actor and critics.
        actor_lr, critic_lr: Adam learning rates.
        policy_freq: critic updates per actor (and target) update, d in the paper.
        discount: γ.
        tau: Polyak rate of the target actor and critics.
        policy_noise: σ of the target policy smoothing noise (actions in [-1, 1]).
        noise_clip: c, the smoothing noise is clipped to [-c, c].
        exploration_noise: σ of the Gaussian noise of ``act(..., deterministic=False)``.
        critic_layer_norm: LayerNorm in the critics' hidden layers (ReBRAC; off in TD3).
        actor_q: the Q the actor loss sees: "first" (Q_θ1, TD3 and TD3+BC) or "min"
            (min over both critics, ReBRAC).
    """

    hidden_dims: Sequence[int] = init_only((256, 256))
    actor_lr: float = init_only(3e-4)
    critic_lr: float = init_only(3e-4)
    policy_freq: int = struct.field(pytree_node=False, default=2)
    discount: float = 0.99
    tau: float = 0.005
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    exploration_noise: float = 0.1
    critic_layer_norm: bool = init_only(False)
    actor_q: str = struct.field(pytree_node=False, default="first")


@struct.dataclass
class State:
    """Everything TD3 carries between updates: actor and critics with their targets."""

    actor: TargetTrainState
    critic: TargetTrainState
    config: Config


ActorLoss = Callable[[Any, jax.Array, jax.Array, Transitions], tuple[jax.Array, Metrics]]
TargetPenalty = Callable[[Any, jax.Array, Transitions], tuple[jax.Array, Metrics]]


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """Fresh actor, twin critics, their targets (copies) and Adam optimizers."""
    if config.policy_freq < 1:
        raise ValueError(f"policy_freq must be >= 1, got {config.policy_freq}")
    if config.actor_q not in ("first", "min"):
        raise ValueError(f"actor_q must be 'first' or 'min', got {config.actor_q!r}")
    k_actor, k_critic = jax.random.split(key)
    obs = jnp.zeros((1, observation_dim), jnp.float32)
    act = jnp.zeros((1, action_dim), jnp.float32)
    actor_net = DeterministicActor(hidden_dims=tuple(config.hidden_dims), action_dim=action_dim)
    critic_net = EnsembleCritic(
        hidden_dims=tuple(config.hidden_dims), num_qs=2, layer_norm=config.critic_layer_norm
    )
    return State(
        actor=TargetTrainState.create(
            apply_fn=actor_net.apply,
            params=actor_net.init(k_actor, obs)["params"],
            tx=adam(config.actor_lr),
        ),
        critic=TargetTrainState.create(
            apply_fn=critic_net.apply,
            params=critic_net.init(k_critic, obs, act)["params"],
            tx=adam(config.critic_lr),
        ),
        config=config,
    )


def critic_target(
    state: State,
    batch: Transitions,
    key: jax.Array,
    target_penalty: TargetPenalty | None = None,
) -> jax.Array:
    """Clipped double-Q target with target policy smoothing (no gradient flows through it),
    minus ``target_penalty``'s per-row value inside the bracket when given."""
    return _critic_target(state, batch, key, target_penalty)[0]


def _critic_target(
    state: State, batch: Transitions, key: jax.Array, target_penalty: TargetPenalty | None
) -> tuple[jax.Array, Metrics]:
    cfg = state.config
    next_actions = state.actor.apply_fn(
        {"params": state.actor.target_params}, batch.next_observations
    )
    noise = cfg.policy_noise * jax.random.normal(key, next_actions.shape, next_actions.dtype)
    noise = jnp.clip(noise, -cfg.noise_clip, cfg.noise_clip)
    next_actions = jnp.clip(next_actions + noise, -1.0, 1.0)
    next_qs = state.critic.apply_fn(
        {"params": state.critic.target_params}, batch.next_observations, next_actions
    )
    next_v = next_qs.min(axis=0)
    metrics: Metrics = {}
    if target_penalty is not None:
        penalty, metrics = target_penalty(cfg, next_actions, batch)
        next_v = next_v - penalty
    target = losses.td_target(batch.rewards, batch.terminals, next_v, cfg.discount)
    return jax.lax.stop_gradient(target), metrics


def update_critic(
    state: State,
    batch: Transitions,
    key: jax.Array,
    target_penalty: TargetPenalty | None = None,
) -> tuple[State, Metrics]:
    """One gradient step of both critics towards the smoothed clipped double-Q target (the
    targets are not moved here; see `update`)."""
    target, penalty_metrics = _critic_target(state, batch, key, target_penalty)

    def loss_fn(params: Any) -> tuple[jax.Array, Metrics]:
        qs = state.critic.apply_fn({"params": params}, batch.observations, batch.actions)
        loss = ((qs - target[None]) ** 2).mean(axis=1).sum()
        return loss, {"critic_loss": loss, "q_mean": qs.mean(), "target_mean": target.mean()}

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.critic.params)
    state = dataclasses.replace(state, critic=state.critic.apply_gradients(grads=grads))
    return state, {**metrics, **penalty_metrics}


def td3_actor_loss(
    config: Any, q_pi: jax.Array, pi_actions: jax.Array, batch: Transitions
) -> tuple[jax.Array, Metrics]:
    """TD3's deterministic policy gradient objective ``-E[Q_θ1(s, π(s))]``."""
    del config, pi_actions, batch
    return -q_pi.mean(), {}


def _actor_objective(
    state: State, params: Any, batch: Transitions, actor_loss: ActorLoss
) -> tuple[jax.Array, Metrics]:
    pi_actions = state.actor.apply_fn({"params": params}, batch.observations)
    qs = state.critic.apply_fn({"params": state.critic.params}, batch.observations, pi_actions)
    q_pi = qs.min(axis=0) if state.config.actor_q == "min" else qs[0]
    loss, extra = actor_loss(state.config, q_pi, pi_actions, batch)
    return loss, {"actor_loss": loss, "q_pi": q_pi.mean(), **extra}


def update_actor_and_targets(
    state: State, batch: Transitions, actor_loss: ActorLoss = td3_actor_loss
) -> tuple[State, Metrics]:
    """The delayed step: one actor gradient step, then Polyak of target actor and critics."""
    grads, metrics = jax.grad(
        lambda p: _actor_objective(state, p, batch, actor_loss), has_aux=True
    )(state.actor.params)
    tau = state.config.tau
    actor = state.actor.apply_gradients(grads=grads).update_target(tau)
    critic = state.critic.update_target(tau)
    return dataclasses.replace(state, actor=actor, critic=critic), metrics


def update(
    state: State,
    batch: Transitions,
    key: jax.Array,
    actor_loss: ActorLoss = td3_actor_loss,
    target_penalty: TargetPenalty | None = None,
) -> tuple[State, Metrics]:
    """One TD3 update from B transitions: a critic step every call; an actor step and target
    updates every ``policy_freq`` calls (a ``lax.cond`` on the step counter). Pure; jit it, or
    run many with `hybridrl.training.scan_updates`.

    ``actor_loss(config, q_pi, pi_actions, batch) -> (loss, extra_metrics)`` (optional, the
    hook TD3+BC uses) replaces TD3's ``-E[Q_θ1(s, π(s))]``: it receives ``q_pi = Q_θ1(s, π(s))``
    (min_i Q_θi with ``actor_q='min'``) (B,) and ``pi_actions = π(s)`` (B, A) and must return
    the same metric keys on every call
    (both branches of the ``lax.cond`` report them). ``target_penalty(config, ã, batch) ->
    (penalty, metrics)`` (optional, ReBRAC's hook) is subtracted from min_i Q_θ'i(s', ã) in
    the critic target (see `critic_target`); ã is the smoothed target action (B, A).
    """
    do_actor = state.critic.step % state.config.policy_freq == 0
    state, critic_metrics = update_critic(state, batch, key, target_penalty)

    def skip(s: State) -> tuple[State, Metrics]:
        _, metrics = _actor_objective(s, s.actor.params, batch, actor_loss)
        return s, metrics

    state, actor_metrics = jax.lax.cond(
        do_actor, lambda s: update_actor_and_targets(s, batch, actor_loss), skip, state
    )
    return state, {**critic_metrics, **actor_metrics}


def act(
    state: State, observations: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """π(s), plus clipped Gaussian exploration noise (σ = ``exploration_noise``) unless
    ``deterministic``; always in [-1, 1]."""
    actions = state.actor.apply_fn({"params": state.actor.params}, observations)
    if deterministic:
        return actions
    noise = state.config.exploration_noise * jax.random.normal(key, actions.shape, actions.dtype)
    return jnp.clip(actions + noise, -1.0, 1.0)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(q_probe=True)
