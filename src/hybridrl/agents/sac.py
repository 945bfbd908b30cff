"""Soft Actor-Critic (Haarnoja et al., 2018) with the ensemble and update-to-data options of
REDQ (Chen et al., 2021) and RLPD (Ball et al., 2023).

Losses, for a minibatch (s, a, r, s', d) with d = ``terminals``:

- critic i:  ``L_Q = E[(Q_i(s, a) - y)^2]``,
  ``y = r + γ (1 - d) (min_{j ∈ K} Q̄_j(s', a') - β α log π(a'|s'))``, ``a' ~ π(·|s')``,
  where K is a random subset of ``num_min_qs`` of the ``num_qs`` target critics (all of them
  by default) and β = 1 if ``backup_entropy`` else 0;
- actor:     ``L_π = E[α log π(ã|s) - mean_i Q_i(s, ã)]``, ``ã ~ π(·|s)`` (the ensemble mean,
  as REDQ/RLPD; with 2 critics the classic SAC uses the min — set ``actor_q="min"``);
- temperature: ``L_α = E[-α (log π(ã|s) + H̄)]`` with target entropy H̄ (default ``-|A|``).

Update-to-data: `update` receives ``utd_ratio * B`` transitions, split into G = ``utd_ratio``
minibatches; the critic takes G steps in a ``lax.scan`` and the actor and temperature one step
on the last minibatch, as in RLPD. Actions live in [-1, 1]; rescale outside the agent.

Extension hooks: `update` (and `update_critic`, `critic_loss`) accept an optional
``critic_regularizer(state, params, batch, key) -> (loss, metrics)`` whose loss is added to
the critic loss; EDAC (`hybridrl.agents.edac`) is SAC-N plus such a term. `update` (and
`update_actor`) accept an optional ``actor_regularizer(state, actor_params, batch, key) ->
(loss, metrics)`` whose loss is added to the actor loss (RO2O's policy smoothness,
`hybridrl.agents.ro2o`); with neither hook the update is SAC's, bit for bit. SAC-N (An et al.,
2021) is this module with ``num_qs=N, num_min_qs=None, actor_q="min"``; see
`hybridrl.agents.edac.sac_n_config` for the paper's defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from hybridrl.agents.spec import AgentSpec, init_only, utd_minibatches
from hybridrl.core import losses
from hybridrl.core.optim import adam
from hybridrl.core.train_state import TargetTrainState, TrainState
from hybridrl.data.transitions import Transitions
from hybridrl.networks import EnsembleCritic, TanhGaussianActor, Temperature
from hybridrl.networks.ensemble import subsample_ensemble_min
from hybridrl.types import HybridRLError

Metrics = dict[str, jax.Array]
# (state, critic params, minibatch, dropout key) -> (extra critic loss, metrics)
CriticRegularizer = Callable[["State", Any, Transitions, jax.Array], tuple[jax.Array, Metrics]]
# (state, actor params, minibatch, key) -> (extra actor loss, metrics)
ActorRegularizer = Callable[["State", Any, Transitions, jax.Array], tuple[jax.Array, Metrics]]


@struct.dataclass
class Config:
    """SAC hyperparameters. Structural fields are static; numeric ones are traced leaves, so
    sweeping ``discount``/``tau`` reuses the compiled update.

    Attributes:
        hidden_dims: hidden layer sizes of actor and critics.
        num_qs: critics in the ensemble (2 for SAC, 10 for RLPD/WSRL).
        num_min_qs: size of the random target subset (REDQ/RLPD: 2); None uses all critics.
        critic_layer_norm: LayerNorm in the critics (RLPD's key stabiliser).
        actor_layer_norm: LayerNorm in the actor's trunk (off in SAC/RLPD; on in WSRL, both
            phases: zhouzypaul/wsrl @ 891ee35 ``experiments/configs/wsrl_config.py`` L12 and
            ``ensemble_config.py`` L8).
        critic_dropout: dropout rate in the critics (DroQ); None for none.
        utd_ratio: critic updates per actor update (update-to-data ratio G).
        backup_entropy: include the entropy bonus in the TD target.
        max_target_backup: back up ``max_k min_{j ∈ K} Q̄_j(s', a'_k)`` over ``num_samples``
            next actions a'_k ~ π(·|s') instead of one sample (the official SAC agent of WSRL
            has it, ``wsrl/agents/sac.py`` L179-216, default off; on in its AntMaze config;
            Cal-QL/CQL pretrain with it). Refused together with ``backup_entropy``: the
            official codes disagree on where the entropy term goes (see `critic_target`).
        num_samples: next actions per state for ``max_target_backup`` (official ``n_actions``,
            10); CQL also uses it for the penalty's sampled actions.
        actor_q: how the actor aggregates the critics: "mean" or "min".
        actor_log_std_min, actor_log_std_max: clip bounds of the actor's log std (SAC code:
            [-20, 2]; SAC-N/EDAC: [-5, 2]).
        actor_log_std_offset: added to the bias of the actor's log σ head at initialisation
            (0: none; CQL/Cal-QL: -1, the official ``log_std_offset``, so the initial σ is
            e^-1 times the un-shifted one). Initialisation only.
        actor_lr, critic_lr, temperature_lr: Adam learning rates.
        init_temperature: initial α.
        target_entropy: H̄; None means ``-target_entropy_scale * |A|``.
        discount: γ.
        tau: Polyak rate of the target critics.
    """

    hidden_dims: Sequence[int] = init_only((256, 256))
    num_qs: int = init_only(2)
    num_min_qs: int | None = struct.field(pytree_node=False, default=None)
    critic_layer_norm: bool = init_only(False)
    actor_layer_norm: bool = init_only(False)
    critic_dropout: float | None = init_only(None)
    utd_ratio: int = struct.field(pytree_node=False, default=1)
    backup_entropy: bool = struct.field(pytree_node=False, default=True)
    max_target_backup: bool = struct.field(pytree_node=False, default=False)
    num_samples: int = struct.field(pytree_node=False, default=10)
    actor_q: str = struct.field(pytree_node=False, default="mean")
    actor_log_std_min: float = init_only(-20.0)
    actor_log_std_max: float = init_only(2.0)
    actor_log_std_offset: float = init_only(0.0)
    actor_lr: float = init_only(3e-4)
    critic_lr: float = init_only(3e-4)
    temperature_lr: float = init_only(3e-4)
    init_temperature: float = init_only(1.0)
    target_entropy: float | None = init_only(None)
    target_entropy_scale: float = init_only(1.0)
    discount: float = 0.99
    tau: float = 0.005


@struct.dataclass
class State:
    """Everything SAC carries between updates (a pytree)."""

    actor: TrainState
    critic: TargetTrainState
    temperature: TrainState
    config: Config
    target_entropy: jax.Array


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """Fresh networks and optimizers for ``observation_dim`` inputs and ``action_dim`` actions."""
    if config.actor_q not in ("mean", "min"):
        raise ValueError(f"actor_q must be 'mean' or 'min', got {config.actor_q!r}")
    check_config(config)
    k_actor, k_critic, k_temp = jax.random.split(key, 3)
    obs = jnp.zeros((1, observation_dim), jnp.float32)
    act = jnp.zeros((1, action_dim), jnp.float32)
    actor_net = TanhGaussianActor(
        hidden_dims=tuple(config.hidden_dims),
        action_dim=action_dim,
        log_std_min=config.actor_log_std_min,
        log_std_max=config.actor_log_std_max,
        layer_norm=config.actor_layer_norm,
    )
    critic_net = EnsembleCritic(
        hidden_dims=tuple(config.hidden_dims),
        num_qs=config.num_qs,
        layer_norm=config.critic_layer_norm,
        dropout_rate=config.critic_dropout,
    )
    temp_net = Temperature(initial=config.init_temperature)
    target_entropy = (
        config.target_entropy
        if config.target_entropy is not None
        else losses.default_target_entropy(action_dim, config.target_entropy_scale)
    )
    actor_params = actor_net.init(k_actor, obs)["params"]
    if config.actor_log_std_offset:
        head = {**actor_params["log_std"]}
        head["bias"] = head["bias"] + config.actor_log_std_offset
        actor_params = {**actor_params, "log_std": head}
    return State(
        actor=TrainState.create(
            apply_fn=actor_net.apply,
            params=actor_params,
            tx=adam(config.actor_lr),
        ),
        critic=TargetTrainState.create(
            apply_fn=critic_net.apply,
            params=critic_net.init(k_critic, obs, act)["params"],
            tx=adam(config.critic_lr),
        ),
        temperature=TrainState.create(
            apply_fn=temp_net.apply,
            params=temp_net.init(k_temp)["params"],
            tx=adam(config.temperature_lr),
        ),
        config=config,
        target_entropy=jnp.asarray(target_entropy, jnp.float32),
    )


def _alpha(state: State) -> jax.Array:
    return state.temperature.apply_fn({"params": state.temperature.params})


def critic_apply(
    state: State, params: Any, obs: jax.Array, act: jax.Array, key: jax.Array
) -> jax.Array:
    """Q_i(s, a) of every critic, shape (N, B), with ``params`` (online or target); ``key``
    drives the dropout masks when ``critic_dropout`` is set."""
    training = state.config.critic_dropout is not None
    rngs = {"dropout": key} if training else None
    return state.critic.apply_fn({"params": params}, obs, act, training=training, rngs=rngs)


_critic_apply = critic_apply  # the former private name, kept for existing callers


def repeat_states(observations: jax.Array, m: int) -> jax.Array:
    """(B, D) -> (B, m, D): each state once per sampled action."""
    return jnp.broadcast_to(
        observations[:, None], (observations.shape[0], m, *observations.shape[1:])
    )


def policy_samples(
    state: State, observations: jax.Array, key: jax.Array, m: int
) -> tuple[jax.Array, jax.Array]:
    """m actions per state from π(·|s) and their log-densities: (B, m, A), (B, m)."""
    dist = state.actor.apply_fn({"params": state.actor.params}, observations)
    actions, log_probs = dist.sample_and_log_prob(key, (m,))
    return jnp.swapaxes(actions, 0, 1), jnp.swapaxes(log_probs, 0, 1)


def check_config(config: Config) -> None:
    """Refuse combinations that would silently ignore a field (`HybridRLError`)."""
    if config.max_target_backup and config.backup_entropy:
        raise HybridRLError(
            "max_target_backup=True with backup_entropy=True: the official codes disagree on "
            "the entropy term of a max backup (JaxCQL subtracts it after the max, WSRL's "
            "SACAgent before it); set backup_entropy=False"
        )
    if config.num_samples < 1:
        raise HybridRLError(f"num_samples must be positive, got {config.num_samples}")


def critic_target(state: State, batch: Transitions, key: jax.Array) -> jax.Array:
    """The TD target y (no gradient flows through it).

    One next action: ``r + γ (1 - d) (min_{j ∈ K} Q̄_j(s', a') - β α log π(a'|s'))``. With
    ``max_target_backup``: ``r + γ (1 - d) max_k min_{j ∈ K} Q̄_j(s', a'_k)`` over
    ``num_samples`` actions a'_k ~ π(·|s'), min over the subset first and max second, as
    zhouzypaul/wsrl @ 891ee35 ``wsrl/agents/sac.py`` L229-251 and L206-216 (and JaxCQL).
    """
    cfg = state.config
    check_config(cfg)
    k_pi, k_sub, k_drop = jax.random.split(key, 3)
    k = cfg.num_min_qs if cfg.num_min_qs is not None else cfg.num_qs
    if cfg.max_target_backup:
        m = cfg.num_samples
        next_actions, _ = policy_samples(state, batch.next_observations, k_pi, m)
        next_obs = repeat_states(batch.next_observations, m)
        next_qs = critic_apply(state, state.critic.target_params, next_obs, next_actions, k_drop)
        next_q = subsample_ensemble_min(next_qs, k_sub, k).max(axis=-1)  # (B,)
    else:
        dist = state.actor.apply_fn({"params": state.actor.params}, batch.next_observations)
        next_actions, next_log_probs = dist.sample_and_log_prob(k_pi)
        next_qs = critic_apply(
            state, state.critic.target_params, batch.next_observations, next_actions, k_drop
        )
        next_q = subsample_ensemble_min(next_qs, k_sub, k)
        if cfg.backup_entropy:
            next_q = next_q - _alpha(state) * next_log_probs
    return jax.lax.stop_gradient(
        losses.td_target(batch.rewards, batch.terminals, next_q, cfg.discount)
    )


def critic_loss(
    state: State,
    params: Any,
    batch: Transitions,
    target: jax.Array,
    key: jax.Array,
    regularizer: CriticRegularizer | None = None,
) -> tuple[jax.Array, Metrics]:
    """``sum_i E[(Q_i(s, a) - y)^2]`` (+ ``regularizer``'s loss), and metrics.

    The TD part is summed over critics and averaged over the batch, as the official SAC-N/EDAC
    code does; its value is reported as ``critic_loss`` even when a regularizer is added (whose
    own metrics are merged in).
    """
    qs = critic_apply(state, params, batch.observations, batch.actions, key)
    loss = ((qs - target[None]) ** 2).mean(axis=1).sum()
    metrics = {"critic_loss": loss, "q_mean": qs.mean(), "target_mean": target.mean()}
    if regularizer is not None:
        extra, extra_metrics = regularizer(state, params, batch, key)
        loss = loss + extra
        metrics = {**metrics, **extra_metrics}
    return loss, metrics


def update_critic(
    state: State,
    batch: Transitions,
    key: jax.Array,
    regularizer: CriticRegularizer | None = None,
) -> tuple[State, Metrics]:
    """One gradient step of every critic towards the soft TD target, then Polyak.

    ``regularizer`` (optional) adds a term to the critic loss (see `critic_loss`).
    """
    k_target, k_drop = jax.random.split(key)
    target = critic_target(state, batch, k_target)

    def loss_fn(params: Any) -> tuple[jax.Array, Metrics]:
        return critic_loss(state, params, batch, target, k_drop, regularizer)

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.critic.params)
    critic = state.critic.apply_gradients(grads=grads).update_target(state.config.tau)
    return dataclasses.replace(state, critic=critic), metrics


def update_actor(
    state: State,
    batch: Transitions,
    key: jax.Array,
    regularizer: ActorRegularizer | None = None,
) -> tuple[State, Metrics]:
    """One step of the actor (max E[Q - α log π]) and of the temperature.

    ``regularizer`` (optional) adds a term to the actor loss; ``actor_loss`` still reports
    the SAC part alone and the regularizer's metrics are merged in (as `critic_loss` does).
    It gets its own key, folded from ``key``, so the SAC part draws the same noise with or
    without it.
    """
    alpha = _alpha(state)
    k_pi, k_drop = jax.random.split(key)

    def loss_fn(params: Any) -> tuple[jax.Array, tuple[jax.Array, jax.Array, Metrics]]:
        dist = state.actor.apply_fn({"params": params}, batch.observations)
        actions, log_probs = dist.sample_and_log_prob(k_pi)
        qs = critic_apply(state, state.critic.params, batch.observations, actions, k_drop)
        q = qs.mean(axis=0) if state.config.actor_q == "mean" else qs.min(axis=0)
        sac_loss = losses.sac_actor_loss(log_probs, q, alpha)
        if regularizer is None:
            return sac_loss, (sac_loss, log_probs, {})
        extra, extra_metrics = regularizer(state, params, batch, jax.random.fold_in(key, 1))
        return sac_loss + extra, (sac_loss, log_probs, extra_metrics)

    (_, (actor_loss, log_probs, extra_metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.actor.params
    )
    actor = state.actor.apply_gradients(grads=grads)

    def temp_loss_fn(params: Any) -> jax.Array:
        a = state.temperature.apply_fn({"params": params})
        return losses.temperature_loss(a, log_probs, state.target_entropy)

    temp_loss, temp_grads = jax.value_and_grad(temp_loss_fn)(state.temperature.params)
    temperature = state.temperature.apply_gradients(grads=temp_grads)
    metrics = {
        "actor_loss": actor_loss,
        "entropy": -log_probs.mean(),
        "temperature": alpha,
        "temperature_loss": temp_loss,
        **extra_metrics,
    }
    return dataclasses.replace(state, actor=actor, temperature=temperature), metrics


def utd_update(
    state: Any,
    batch: Transitions,
    key: jax.Array,
    critic_update: Callable[[Any, Transitions, jax.Array], tuple[Any, Metrics]],
    actor_regularizer: ActorRegularizer | None = None,
) -> tuple[Any, Metrics]:
    """The update-to-data skeleton shared by SAC-family agents (SAC, EDAC, CQL, Cal-QL, RO2O).

    Splits ``utd_ratio * B`` transitions into ``utd_ratio`` minibatches (as RLPD does), runs
    ``critic_update`` on each inside a ``lax.scan``, then one actor and temperature step
    (`update_actor`, with ``actor_regularizer``) on the last minibatch; critic metrics are
    averaged over the scan.
    """
    g = state.config.utd_ratio
    n = batch.rewards.shape[0]
    if n % g:
        raise ValueError(f"batch of {n} does not split into utd_ratio={g} minibatches")
    minibatches = jax.tree_util.tree_map(lambda x: x.reshape(g, n // g, *x.shape[1:]), batch)
    k_critic, k_actor = jax.random.split(key)
    keys = jax.random.split(k_critic, g)

    def critic_step(s: Any, xs: tuple[Transitions, jax.Array]) -> tuple[Any, Metrics]:
        return critic_update(s, xs[0], xs[1])

    state, critic_metrics = jax.lax.scan(critic_step, state, (minibatches, keys))
    last = jax.tree_util.tree_map(lambda x: x[-1], minibatches)
    state, actor_metrics = update_actor(state, last, k_actor, actor_regularizer)
    metrics = {k: v.mean() for k, v in critic_metrics.items()}
    return state, {**metrics, **actor_metrics}


def update(
    state: State,
    batch: Transitions,
    key: jax.Array,
    critic_regularizer: CriticRegularizer | None = None,
    actor_regularizer: ActorRegularizer | None = None,
) -> tuple[State, Metrics]:
    """One SAC update from ``utd_ratio * B`` transitions (see `utd_update`).

    Pure; jit it, or run many with `hybridrl.training.scan_updates`. ``critic_regularizer``
    (optional, for agents built on SAC such as EDAC) adds a term to every critic step's loss;
    ``actor_regularizer`` (optional, RO2O) one to the actor step's loss.
    """
    return utd_update(
        state,
        batch,
        key,
        lambda s, b, k: update_critic(s, b, k, critic_regularizer),
        actor_regularizer,
    )


def act(
    state: State, observations: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Actions in [-1, 1] for a batch of observations (``tanh(mean)`` when deterministic)."""
    dist = state.actor.apply_fn({"params": state.actor.params}, observations)
    return dist.mode() if deterministic else dist.sample(key)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(q_probe=True, robustness_probe=True, minibatches_per_update=utd_minibatches)
