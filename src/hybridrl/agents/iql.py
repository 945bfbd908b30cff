"""Implicit Q-Learning (Kostrikov, Nair & Levine, "Offline Reinforcement Learning with Implicit
Q-Learning", ICLR 2022).

IQL never evaluates the critic at actions outside the dataset. For a minibatch (s, a, r, s', d)
with d = ``terminals``, Q̄ = min of the two Polyak target critics:

- value (Eq. 5):   ``L_V(ψ) = E[ L_2^τ(Q̄(s, a) - V_ψ(s)) ]``, ``L_2^τ(u) = |τ - 1(u < 0)| u²``
  (`losses.expectile_loss`): with τ > 0.5, V tracks an upper expectile of Q over the dataset's
  actions, an in-sample approximation of max_a Q;
- critics (Eq. 6): ``L_Q(θ_i) = E[(r + γ (1 - d) V_ψ(s') - Q_θi(s, a))²]`` for i = 1, 2;
- policy extraction by advantage-weighted regression (Eq. 7):
  ``L_π(φ) = -E[ min(exp(β (Q̄(s, a) - V_ψ(s))), 100) log π_φ(a|s) ]``
  (`losses.awr_weights`, `losses.awr_actor_loss`), β the inverse temperature;
  with a deterministic actor the log-likelihood becomes a weighted squared error,
  ``L_π = E[ w ||π_φ(s) - a||² ]``;
- target critics: ``θ̄ ← τ_p θ + (1 - τ_p) θ̄`` (`TargetTrainState.update_target`).

Order within one update, as in the official code (``ikostrikov/implicit_q_learning``,
``learner._update_jit``): all three losses use the *same* minibatch; first the value step;
then the actor step, whose advantages use the *updated* V and the (not yet updated) target
critics; then the critic step, whose TD target uses the updated V(s'); finally the Polyak
update of the target critics.

Actor (``Config.actor``): "gaussian" is the official ``NormalTanhPolicy(...,
state_dependent_std=False, tanh_squash_distribution=False)``, i.e. `networks.GaussianActor`:
N(tanh(μ(s)), σ²) with a learned state-independent log σ clipped to [-5, 2]; its samples are
clipped to [-1, 1] when acting, and evaluation acts with the mean (the official
``temperature=0`` sampling). "deterministic" is `networks.DeterministicActor` with the weighted
MSE above.

Options of the official code: a cosine decay of the actor learning rate over the whole run
(``opt_decay_schedule="cosine"``; here ``actor_lr_decay_steps``, which must be the total number
of updates) and actor dropout (``dropout_rate``; the official Kitchen/Adroit setting is 0.1).

Reward scaling is a data transform, not part of the agent: for D4RL MuJoCo the official code
multiplies rewards by ``1000 / (max episode return - min episode return)``, e.g.
``r = ds.episode_returns(); ds = ds.transform_rewards(scale=1000 / (r.max() - r.min()))``;
for AntMaze it subtracts 1 (``ds.transform_rewards(shift=-1.0)``).

Robust options (RIQL, Yang et al., "Towards Robust Offline Reinforcement Learning under Diverse
Data Corruption", ICLR 2024; official code YangRui2015/RIQL @ cc07d81, ``RIQL.py``), all off by
default so that the defaults are the IQL above, bit for bit:

- ``num_qs``: K critics in the ensemble (RIQL: 5, 3 in some settings);
- ``value_quantile``: the V target (and the advantages) use the α-quantile of the K target
  critics, `losses.ensemble_quantile`, instead of their min (RIQL: α = 0.25);
- ``huber_delta``: the critic loss is `losses.huber_loss` with δ (RIQL: δ = 1/σ²) instead of
  the squared error;
- ``critic_reduction``: "sum" over critics of the batch mean (IQL) or "mean" over critics and
  batch (RIQL's ``.mean()`` of the (K, B) loss);
- ``target_clip``: the TD target is clipped to ``(lo, hi)`` (RIQL: (-100, 1000));
- ``update_order="riql"``: V(s') and the advantages are computed with the V of *before* the
  step; then the V step, the critic step, the actor step (``ImplicitQLearning.train``, L568-577).
  Every step then reads the networks as they were at the start of the update.

On a batch with a ``corrupted`` extra (rows marked by `hybridrl.data.corrupt`), `update` also
logs `corruption_metrics` on the marked and the clean rows, as RIQL does.

`docs/agents/riql.md` has the equations, constants and deviations; the ``riql`` recipe
(`hybridrl.training.riql`) sets them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from hybridrl.agents.spec import AgentSpec, init_only
from hybridrl.core import losses
from hybridrl.core.optim import adam
from hybridrl.core.train_state import TargetTrainState, TrainState
from hybridrl.data.transitions import Transitions
from hybridrl.networks import DeterministicActor, EnsembleCritic, GaussianActor, StateValue

Metrics = dict[str, jax.Array]

ACTORS = ("gaussian", "deterministic")
CRITIC_REDUCTIONS = ("sum", "mean")
UPDATE_ORDERS = ("iql", "riql")


@struct.dataclass
class Config:
    """IQL hyperparameters; defaults are the official D4RL MuJoCo ones
    (``configs/mujoco_config.py``). Structural fields and learning rates are static; the
    numeric ones are traced leaves, so sweeping ``expectile``/``temperature`` reuses the
    compiled update.

    Attributes:
        hidden_dims: hidden layer sizes of actor, critics and value network.
        actor: "gaussian" (AWR log-likelihood) or "deterministic" (weighted MSE).
        dropout_rate: dropout in the actor's hidden layers (official option; None for none).
        actor_lr, critic_lr, value_lr: Adam learning rates.
        actor_lr_decay_steps: if set, the actor learning rate follows a cosine decay from
            ``actor_lr`` to 0 over this many updates (official ``opt_decay_schedule="cosine"``;
            set it to the total number of updates). None keeps it constant.
        discount: γ.
        tau: Polyak rate of the target critics.
        expectile: τ of the expectile value loss (0.7 MuJoCo, 0.9 AntMaze).
        temperature: inverse temperature β of the AWR weights (3.0 MuJoCo, 10.0 AntMaze,
            0.5 Kitchen/Adroit).
        max_weight: clip of the AWR weights (100 in the official code).
        num_qs: ensemble size K of the critics (2 in IQL, 5 in RIQL).
        value_quantile: None: the V target and the advantages use the min of the target
            critics (IQL); α in [0, 1]: their α-quantile (RIQL's quantile target, 0.25).
        huber_delta: None: squared-error critic loss (IQL); δ > 0: RIQL's Huber loss with
            threshold δ (RIQL: δ = 1/σ²).
        critic_reduction: "sum" over critics of the batch mean (IQL) or "mean" over critics
            and batch (RIQL).
        target_clip: None, or ``(lo, hi)``: the TD target is clipped to it (RIQL:
            (-100, 1000)).
        update_order: "iql" (V step; actor and critic steps read the updated V) or "riql"
            (V(s') and the advantages from the V before the step; V, critic, actor steps).
    """

    hidden_dims: Sequence[int] = init_only((256, 256))
    actor: str = init_only("gaussian")
    dropout_rate: float | None = init_only(None)
    actor_lr: float = init_only(3e-4)
    critic_lr: float = init_only(3e-4)
    value_lr: float = init_only(3e-4)
    actor_lr_decay_steps: int | None = init_only(None)
    discount: float = 0.99
    tau: float = 0.005
    expectile: float = 0.7
    temperature: float = 3.0
    max_weight: float = 100.0
    num_qs: int = init_only(2)
    value_quantile: float | None = None
    huber_delta: float | None = None
    critic_reduction: str = struct.field(pytree_node=False, default="sum")
    target_clip: tuple[float, float] | None = None
    update_order: str = struct.field(pytree_node=False, default="iql")


@struct.dataclass
class State:
    """Everything IQL carries between updates (a pytree)."""

    actor: TrainState
    critic: TargetTrainState
    value: TrainState
    config: Config


def actor_optimizer(learning_rate: float, decay_steps: int | None) -> optax.GradientTransformation:
    """Adam, with the official cosine decay of the learning rate to 0 over ``decay_steps``."""
    if decay_steps is not None and decay_steps <= 0:
        raise ValueError(f"actor_lr_decay_steps must be positive, got {decay_steps}")
    return adam(learning_rate, decay_steps)


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """Fresh networks and optimizers for ``observation_dim`` inputs and ``action_dim`` actions."""
    if config.actor not in ACTORS:
        raise ValueError(f"actor must be one of {ACTORS}, got {config.actor!r}")
    if config.critic_reduction not in CRITIC_REDUCTIONS:
        raise ValueError(
            f"critic_reduction must be one of {CRITIC_REDUCTIONS}, got {config.critic_reduction!r}"
        )
    if config.update_order not in UPDATE_ORDERS:
        raise ValueError(
            f"update_order must be one of {UPDATE_ORDERS}, got {config.update_order!r}"
        )
    if config.num_qs < 1:
        raise ValueError(f"num_qs must be at least 1, got {config.num_qs}")
    if config.target_clip is not None and len(config.target_clip) != 2:
        raise ValueError(f"target_clip must be (lo, hi) or None, got {config.target_clip!r}")
    k_actor, k_critic, k_value = jax.random.split(key, 3)
    obs = jnp.zeros((1, observation_dim), jnp.float32)
    act = jnp.zeros((1, action_dim), jnp.float32)
    hidden = tuple(config.hidden_dims)
    actor_net: GaussianActor | DeterministicActor
    if config.actor == "gaussian":
        actor_net = GaussianActor(hidden, action_dim, dropout_rate=config.dropout_rate)
    else:
        actor_net = DeterministicActor(hidden, action_dim, dropout_rate=config.dropout_rate)
    critic_net = EnsembleCritic(hidden_dims=hidden, num_qs=config.num_qs)
    value_net = StateValue(hidden_dims=hidden)
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
        value=TrainState.create(
            apply_fn=value_net.apply,
            params=value_net.init(k_value, obs)["params"],
            tx=adam(config.value_lr),
        ),
        config=config,
    )


# ----------------------------------------------------------------------------- shared pieces
def critic_regression_step(
    critic: TargetTrainState,
    batch: Transitions,
    target: jax.Array,
    tau: jax.Array | float | None,
    huber_delta: jax.Array | float | None = None,
    reduction: str = "sum",
) -> tuple[TargetTrainState, Metrics]:
    """One step of every critic towards a fixed target y, ``sum_i E[(Q_i(s, a) - y)²]``, then
    the Polyak update of the target critics with rate ``tau`` (None: no target update).
    Shared by IQL (y from V) and AWAC (y from π). ``huber_delta``: `losses.huber_loss` with
    that δ instead of the squared error; ``reduction="mean"``: the mean over critics instead
    of the sum (RIQL)."""
    target = jax.lax.stop_gradient(target)

    def loss_fn(params: Any) -> tuple[jax.Array, Metrics]:
        qs = critic.apply_fn({"params": params}, batch.observations, batch.actions)
        if huber_delta is None and reduction == "sum":
            loss = ((qs - target[None]) ** 2).mean(axis=1).sum()
        else:
            if huber_delta is None:
                loss = jnp.mean(jnp.square(qs - target[None]))
            else:
                loss = losses.huber_loss(target[None] - qs, huber_delta)
            if reduction == "sum":
                loss = loss * qs.shape[0]
        return loss, {"critic_loss": loss, "q_mean": qs.mean(), "target_mean": target.mean()}

    grads, metrics = jax.grad(loss_fn, has_aux=True)(critic.params)
    critic = critic.apply_gradients(grads=grads)
    return (critic if tau is None else critic.update_target(tau)), metrics


def weighted_regression_loss(
    dist_or_actions: Any, actions: jax.Array, weights: jax.Array
) -> jax.Array:
    """AWR policy loss ``-E[w log π(a|s)]`` for a distribution, or the weighted squared error
    ``E[w ||π(s) - a||²]`` (summed over action dimensions) for deterministic actions."""
    if isinstance(dist_or_actions, jax.Array):
        log_likelihood = -jnp.sum(jnp.square(dist_or_actions - actions), axis=-1)
    else:
        log_likelihood = dist_or_actions.log_prob(actions)
    return losses.awr_actor_loss(log_likelihood, weights)


def policy_actions(
    actor: TrainState, observations: jax.Array, key: jax.Array, deterministic: bool
) -> jax.Array:
    """Actions in [-1, 1] of a `GaussianActor` (mean, or a sample clipped to [-1, 1]) or of a
    `DeterministicActor` (its output, with or without ``deterministic``)."""
    out = actor.apply_fn({"params": actor.params}, observations)
    if isinstance(out, jax.Array):
        return out
    return out.mode() if deterministic else jnp.clip(out.sample(key), -1.0, 1.0)


# ----------------------------------------------------------------------------- IQL updates
def _target_qs(state: State, batch: Transitions) -> jax.Array:
    """The K target critics at the dataset's (s, a), (K, B), no gradient."""
    qs = state.critic.apply_fn(
        {"params": state.critic.target_params}, batch.observations, batch.actions
    )
    return jax.lax.stop_gradient(qs)


def reduce_target(config: Config, qs: jax.Array) -> jax.Array:
    """Q̄(s, a) from the target critics (K, B): their min (IQL), or their ``value_quantile``
    (RIQL, `losses.ensemble_quantile`)."""
    if config.value_quantile is None:
        return jnp.min(qs, axis=0)
    return losses.ensemble_quantile(qs, config.value_quantile)


def _target_q(state: State, batch: Transitions) -> jax.Array:
    return reduce_target(state.config, _target_qs(state, batch))


def _value(state: State, params: Any, observations: jax.Array) -> jax.Array:
    return state.value.apply_fn({"params": params}, observations)


def update_value(state: State, batch: Transitions) -> tuple[State, Metrics]:
    """One expectile-regression step of V towards min of the target critics (Eq. 5)."""
    q = _target_q(state, batch)

    def loss_fn(params: Any) -> tuple[jax.Array, jax.Array]:
        v = _value(state, params, batch.observations)
        return losses.expectile_loss(q - v, state.config.expectile), v

    (loss, v), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.value.params)
    value = state.value.apply_gradients(grads=grads)
    return dataclasses.replace(state, value=value), {"value_loss": loss, "v_mean": v.mean()}


def advantages(state: State, batch: Transitions) -> jax.Array:
    """``Q̄(s, a) - V(s)`` with the target critics and the current V (no gradient)."""
    v = _value(state, state.value.params, batch.observations)
    return jax.lax.stop_gradient(_target_q(state, batch) - v)


def update_actor(
    state: State, batch: Transitions, key: jax.Array, adv: jax.Array | None = None
) -> tuple[State, Metrics]:
    """One advantage-weighted regression step of the actor (Eq. 7); ``adv``: the advantages
    to weight with (default: `advantages` of ``state``)."""
    cfg = state.config
    adv = advantages(state, batch) if adv is None else adv
    weights = losses.awr_weights(adv, cfg.temperature, cfg.max_weight)
    training = cfg.dropout_rate is not None
    rngs = {"dropout": key} if training else None

    def loss_fn(params: Any) -> jax.Array:
        out = state.actor.apply_fn(
            {"params": params}, batch.observations, training=training, rngs=rngs
        )
        return weighted_regression_loss(out, batch.actions, weights)

    loss, grads = jax.value_and_grad(loss_fn)(state.actor.params)
    actor = state.actor.apply_gradients(grads=grads)
    metrics = {"actor_loss": loss, "adv_mean": adv.mean(), "weight_mean": weights.mean()}
    return dataclasses.replace(state, actor=actor), metrics


def update_critic(
    state: State, batch: Transitions, next_v: jax.Array | None = None
) -> tuple[State, Metrics]:
    """One step of the critics towards ``r + γ (1 - d) V(s')`` (Eq. 6; clipped to
    ``target_clip`` when set), then Polyak; ``next_v``: V(s') to use (default: the current
    V's)."""
    cfg = state.config
    if next_v is None:
        next_v = _value(state, state.value.params, batch.next_observations)
    target = losses.td_target(batch.rewards, batch.terminals, next_v, cfg.discount)
    if cfg.target_clip is not None:
        target = jnp.clip(target, cfg.target_clip[0], cfg.target_clip[1])
    critic, metrics = critic_regression_step(
        state.critic, batch, target, cfg.tau, cfg.huber_delta, cfg.critic_reduction
    )
    return dataclasses.replace(state, critic=critic), metrics


def _masked_means(name: str, x: jax.Array, marks: jax.Array) -> Metrics:
    hit = jnp.sum(marks)
    return {
        f"corrupted_{name}": jnp.sum(x * marks) / jnp.maximum(hit, 1.0),
        f"clean_{name}": jnp.sum(x * (1.0 - marks)) / jnp.maximum(marks.shape[0] - hit, 1.0),
    }


def corruption_metrics(state: State, batch: Transitions, marks: jax.Array) -> Metrics:
    """Statistics of the rows ``marks`` (1.0: corrupted) flags and of the others, from the
    networks before the update, as RIQL logs them (``RIQL.py`` L489-495): the std over the
    target critics (unbiased, as ``torch.std``), the gap between their mean and Q̄ (the min
    or the quantile), and the TD error ``|y - mean_k Q_k(s, a)|``. A batch without such rows
    reports 0 for them."""
    qs = _target_qs(state, batch)
    std = jnp.std(qs, axis=0, ddof=1) if qs.shape[0] > 1 else jnp.zeros(qs.shape[1:])
    gap = jnp.mean(qs, axis=0) - reduce_target(state.config, qs)
    next_v = _value(state, state.value.params, batch.next_observations)
    y = losses.td_target(batch.rewards, batch.terminals, next_v, state.config.discount)
    if state.config.target_clip is not None:
        y = jnp.clip(y, state.config.target_clip[0], state.config.target_clip[1])
    q = state.critic.apply_fn({"params": state.critic.params}, batch.observations, batch.actions)
    td = jnp.abs(y - jnp.mean(q, axis=0))
    return {
        **_masked_means("target_q_std", std, marks),
        **_masked_means("target_q_gap", gap, marks),
        **_masked_means("td_error", td, marks),
    }


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One IQL update on one minibatch. ``update_order="iql"``: value, then actor (updated
    V, target critics), then critics (updated V) and their Polyak targets, the order of the
    official IQL code. ``"riql"``: V(s') and the advantages first, from the V before the
    step; then value, critics (and Polyak), actor, as the official RIQL code. Pure."""
    marks = batch.extras.get("corrupted")
    extra = {} if marks is None else corruption_metrics(state, batch, marks)
    if state.config.update_order == "riql":
        next_v = _value(state, state.value.params, batch.next_observations)
        adv = advantages(state, batch)
        state, value_metrics = update_value(state, batch)
        state, critic_metrics = update_critic(state, batch, next_v)
        state, actor_metrics = update_actor(state, batch, key, adv)
    else:
        state, value_metrics = update_value(state, batch)
        state, actor_metrics = update_actor(state, batch, key)
        state, critic_metrics = update_critic(state, batch)
    return state, {**value_metrics, **actor_metrics, **critic_metrics, **extra}


def act(
    state: State, observations: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Actions in [-1, 1]: the Gaussian's mean tanh(μ(s)) when ``deterministic`` (the official
    evaluation), else a sample clipped to [-1, 1]; a deterministic actor always returns π(s)."""
    return policy_actions(state.actor, observations, key, deterministic)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(q_probe=True, corruption_metrics=True)
