"""Advantage-Weighted Actor-Critic (Nair, Gupta, Dalal & Levine, "AWAC: Accelerating Online
Reinforcement Learning with Offline Datasets", arXiv:2006.09359, 2020).

An off-policy actor-critic whose policy improvement is a KL-constrained projection, solved in
closed form as advantage-weighted maximum likelihood on the buffer's (offline, then online)
actions, so the same update serves offline pre-training and online fine-tuning. For a
minibatch (s, a, r, s', d) with d = ``terminals``, twin critics Q_1, Q_2, targets Q̄_i:

- critics (Eq. 3): ``L_Q(θ_i) = E[(r + γ (1 - d) min_j Q̄_j(s', a') - Q_θi(s, a))²]``,
  ``a' ~ π(·|s')`` — a plain TD target, **no entropy term** (the CORL implementation and the
  official rlkit AWAC configurations, which set α = 0);
- actor (Eq. 9 without the partition function):
  ``L_π(φ) = -E[ w(s, a) log π_φ(a|s) ]``, ``w = min(exp(A(s, a) / λ), 100)``,
  ``A(s, a) = Q(s, a) - V(s)``, ``V(s) = Q(s, a_π)`` with one ``a_π ~ π(·|s)`` (the one-sample
  estimate of E_{a'~π} Q(s, a') used by CORL and rlkit), ``Q = min(Q_1, Q_2)`` of the *current*
  critics (CORL), after their update; weights from `losses.awr_weights` with β = 1/λ;
- target critics: Polyak with rate ``tau`` after both steps.

Order within one update, as CORL's ``AdvantageWeightedActorCritic.update``: critic step, actor
step (with the updated critics), Polyak update — all on the same minibatch.

``normalize_weights=True`` replaces the clipped exponential by the official rlkit default
(``normalize_over_batch=True``): ``w = B · softmax_batch(A / λ)``, weights with batch mean 1.

The actor is `networks.GaussianActor`: N(tanh(μ(s)), σ²) with a state-independent log σ, the
policy class of rlkit's AWAC (tanh-bounded mean, ``std_architecture="values"``) and of CORL
(state-independent log σ, but an unbounded mean). Policy samples (for a', a_π and stochastic
acting) are clipped to [-1, 1] as CORL clamps them; evaluation uses the mean. The critic
target and V(s) reuse `hybridrl.agents.iql` pieces (`critic_regression_step`,
`weighted_regression_loss`, `policy_actions`, and `actor_optimizer` for the optional cosine
decay of the actor learning rate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from hybridrl.agents.iql import (
    actor_optimizer,
    critic_regression_step,
    policy_actions,
    weighted_regression_loss,
)
from hybridrl.agents.spec import AgentSpec, init_only
from hybridrl.core import losses
from hybridrl.core.optim import adam
from hybridrl.core.train_state import TargetTrainState, TrainState
from hybridrl.data.transitions import Transitions
from hybridrl.networks import EnsembleCritic, GaussianActor

Metrics = dict[str, jax.Array]


@struct.dataclass
class Config:
    """AWAC hyperparameters; defaults from CORL (``algorithms/offline/awac.py``: 3 hidden layers
    of 256, Adam 3e-4, γ = 0.99, τ = 5e-3, λ = 1, weights clipped at 100). CORL's D4RL presets
    use λ = 1/3 for MuJoCo and 0.1 for AntMaze; the paper uses λ = 1 (MuJoCo) and 0.3
    (dexterous manipulation). Structural fields are static, numeric ones traced.

    Attributes:
        hidden_dims: hidden layer sizes of actor and critics.
        log_std_min, log_std_max: clip of the actor's state-independent log σ (rlkit AWAC:
            [-6, 0]; CORL: [-20, 2]).
        normalize_weights: batch-softmax weights (rlkit default) instead of clipped exp.
        actor_lr, critic_lr: Adam learning rates.
        actor_lr_decay_steps: if set, a cosine decay of the actor learning rate to 0 over this
            many updates (IQL's option, `hybridrl.agents.iql.actor_optimizer`; not in AWAC's
            official code or CORL). None keeps it constant.
        discount: γ.
        tau: Polyak rate of the target critics.
        awac_lambda: λ, the temperature of the weights exp(A / λ).
        max_weight: clip of the weights (CORL ``exp_adv_max = 100``).
    """

    hidden_dims: Sequence[int] = init_only((256, 256, 256))
    log_std_min: float = init_only(-6.0)
    log_std_max: float = init_only(0.0)
    normalize_weights: bool = struct.field(pytree_node=False, default=False)
    actor_lr: float = init_only(3e-4)
    critic_lr: float = init_only(3e-4)
    actor_lr_decay_steps: int | None = init_only(None)
    discount: float = 0.99
    tau: float = 0.005
    awac_lambda: float = 1.0
    max_weight: float = 100.0


@struct.dataclass
class State:
    """Everything AWAC carries between updates (a pytree)."""

    actor: TrainState
    critic: TargetTrainState
    config: Config


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """Fresh networks and optimizers for ``observation_dim`` inputs and ``action_dim`` actions."""
    k_actor, k_critic = jax.random.split(key)
    obs = jnp.zeros((1, observation_dim), jnp.float32)
    act = jnp.zeros((1, action_dim), jnp.float32)
    hidden = tuple(config.hidden_dims)
    actor_net = GaussianActor(
        hidden, action_dim, log_std_min=config.log_std_min, log_std_max=config.log_std_max
    )
    critic_net = EnsembleCritic(hidden_dims=hidden, num_qs=2)
    return State(
        actor=TrainState.create(
            apply_fn=actor_net.apply,
            params=actor_net.init(k_actor, obs)["params"],
            tx=actor_optimizer(config.actor_lr, config.actor_lr_decay_steps),
        ),
        critic=TargetTrainState.create(
            apply_fn=critic_net.apply,
            params=critic_net.init(k_critic, obs, act)["params"],
            tx=adam(config.critic_lr),
        ),
        config=config,
    )


def update_critic(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One step of both critics towards ``r + γ (1 - d) min_j Q̄_j(s', a')``, a' ~ π(·|s')."""
    next_actions = policy_actions(state.actor, batch.next_observations, key, False)
    next_qs = state.critic.apply_fn(
        {"params": state.critic.target_params}, batch.next_observations, next_actions
    )
    target = losses.td_target(
        batch.rewards, batch.terminals, jnp.min(next_qs, axis=0), state.config.discount
    )
    # The Polyak update follows the actor step (CORL's order), in `update`.
    critic, metrics = critic_regression_step(state.critic, batch, target, None)
    return dataclasses.replace(state, critic=critic), metrics


def advantage_weights(state: State, batch: Transitions, key: jax.Array) -> tuple[jax.Array, ...]:
    """``(A, w)``: A(s, a) = min_i Q_i(s, a) - min_i Q_i(s, a_π), a_π ~ π(·|s), and its
    weights (clipped exp(A/λ), or B · softmax(A/λ) with ``normalize_weights``); constants."""
    cfg = state.config
    pi_actions = policy_actions(state.actor, batch.observations, key, False)
    params = {"params": state.critic.params}
    q = jnp.min(state.critic.apply_fn(params, batch.observations, batch.actions), axis=0)
    v = jnp.min(state.critic.apply_fn(params, batch.observations, pi_actions), axis=0)
    adv = jax.lax.stop_gradient(q - v)
    if cfg.normalize_weights:
        weights = adv.shape[0] * jax.nn.softmax(adv / cfg.awac_lambda)
    else:
        weights = losses.awr_weights(adv, 1.0 / cfg.awac_lambda, cfg.max_weight)
    return adv, jax.lax.stop_gradient(weights)


def update_actor(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One advantage-weighted maximum-likelihood step of the actor."""
    adv, weights = advantage_weights(state, batch, key)

    def loss_fn(params: Any) -> jax.Array:
        dist = state.actor.apply_fn({"params": params}, batch.observations)
        return weighted_regression_loss(dist, batch.actions, weights)

    loss, grads = jax.value_and_grad(loss_fn)(state.actor.params)
    actor = state.actor.apply_gradients(grads=grads)
    metrics = {"actor_loss": loss, "adv_mean": adv.mean(), "weight_mean": weights.mean()}
    return dataclasses.replace(state, actor=actor), metrics


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One AWAC update on one minibatch: critics, actor (updated critics), Polyak. Pure."""
    k_critic, k_actor = jax.random.split(key)
    state, critic_metrics = update_critic(state, batch, k_critic)
    state, actor_metrics = update_actor(state, batch, k_actor)
    critic = state.critic.update_target(state.config.tau)
    return dataclasses.replace(state, critic=critic), {**critic_metrics, **actor_metrics}


def act(
    state: State, observations: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Actions in [-1, 1]: a policy sample clipped to [-1, 1] (AWAC explores with its
    stochastic policy online), or the mean tanh(μ(s)) when ``deterministic``."""
    return policy_actions(state.actor, observations, key, deterministic)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(q_probe=True)
