"""FamO2O over IQL (Wang, Liu, Wang, Xu, Song & Huang, "Train Once, Get a Family:
State-Adaptive Balances for Offline-to-Online Reinforcement Learning", NeurIPS 2023).

IQL's AWR extracts one policy for one inverse temperature β: a large β follows the advantage
(improvement), a small one the data (constraint). FamO2O trains a *family* of policies at
once and lets a second network pick a member per state:

- universal actor π_u(a | s, φ(β)): IQL's Gaussian actor conditioned on the sinusoidal code
  φ(β) of its own AWR coefficient (`networks.ConditionedActor`,
  `networks.sinusoidal_code`, d = 6, n = 10⁴). Its loss is IQL's Eq. 7 with a per-sample β:
  ``L_u = -E[min(exp(β (Q̄(s, a) - V(s))), 100) log π_u(a | s, φ(β))]``
  (`losses.awr_weights` with an array β, `losses.awr_actor_loss`);
- balance model π_b(β | s): a tanh-Gaussian on [-1, 1] with a state-independent std
  (`networks.TanhGaussianActor`, one dimension), mapped linearly onto [β_min, β_max]; its
  loss is SAC's actor loss over β, through the frozen universal actor and the target critics:
  ``L_b = E[α_b log π_b(b | s) - min_i Q̄_i(s, ã)]``, b ~ π_b(s) reparameterised,
  β = β_min + (b + 1)(β_max - β_min)/2, ã ~ π_u(·|s, φ(β)) reparameterised
  (`losses.sac_actor_loss`): the gradient reaches b through φ(β) and the actor's mean;
- balance temperature α_b (init 1.0): SAC's automatic tuning towards the target entropy
  −0.5, ``L(α_b) = α_b (H(π_b) - H_target)`` with H = −E[log π_b]
  (`losses.temperature_loss`, which is this loss);
- V and Q: plain IQL (`iql.update_value`, `iql.update_critic`, reused, not copied).

Which β trains the universal actor is the one switch between the phases: offline,
β ~ U[β_min, β_max] per sample (every member of the family is trained); online, β ~ π_b(·|s)
with no gradient. ``Config.random_beta`` is a traced flag, so the `SetConfig` hook of the
``famo2o`` recipe flips it without recompiling the update. The balance model and its
temperature train in both phases. Acting: β = mode of π_b(s) (tanh of its mean, mapped), then
π_u(·|s, φ(β)): its mean when deterministic (evaluation), else a sample clipped to [-1, 1]
(collection), as the official ``sample_actions``.

Order within one update, as the official ``_family_update_jit``, all on one minibatch:
V → balance model (target critics, the not-yet-updated actor) → its temperature (with the
entropy measured in the balance step) → universal actor (target critics, the *updated* V,
β from the balance model *before* its step) → critics (updated V) → Polyak.

Facts checked against the official code, LeapLabTHU/FamO2O at commit
ea9cb01c86ca7d8cbd782b21cab5d7e1614bc6d7 (``jax_iql/family_learner.py``, ``family_actor.py``,
``family_temperature.py``, ``family_utils.py``, ``configs/family_antmaze_finetune_config.py``);
`docs/agents/famo2o.md` lists the constants and every deviation. The one that matters: the
official actor loss multiplies a (B, 1) column of coefficients by a (B,) row of advantages,
so each sample's log-likelihood is weighted by ``mean_j min(exp(β_j A_i), 100)``, the
average over the batch's coefficients, not by its own β. ``beta_weighting="batch_mean"``
reproduces that; the default, "per_sample", is the paper's equation.

Learning rates are traced too (`optax.inject_hyperparams`, written into the optimizer state at
every update), so a `SetConfig` of one takes effect; the fields only ``init`` reads are declared
`hybridrl.agents.spec.init_only`, and `SetConfig` refuses to change them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from hybridrl.agents import iql
from hybridrl.agents.spec import AgentSpec, init_only
from hybridrl.core import losses
from hybridrl.core.distributions import Normal, TanhNormal
from hybridrl.core.train_state import TargetTrainState, TrainState
from hybridrl.data.transitions import Transitions
from hybridrl.networks import (
    ConditionedActor,
    EnsembleCritic,
    GaussianActor,
    StateValue,
    TanhGaussianActor,
    Temperature,
    sinusoidal_code,
)

Metrics = dict[str, jax.Array]

BETA_WEIGHTINGS = ("per_sample", "batch_mean")


@struct.dataclass
class Config:
    """FamO2O-IQL hyperparameters; defaults are the official AntMaze fine-tuning config
    (``configs/family_antmaze_finetune_config.py``), the only IQL setting it ships.
    Shapes are static; every number, the learning rates and ``random_beta`` included, is a
    traced leaf (no recompiles when a sweep or a `SetConfig` changes it).

    Attributes:
        hidden_dims: hidden layers of every network (2 x 256).
        beta_encoding_dim: d, the width of the code φ(β) appended to the actor's input (6).
        beta_weighting: "per_sample" (each sample's AWR weight uses its own β: the paper) or
            "batch_mean" (the official code's broadcast: the mean weight over the batch's β).
        actor_lr, critic_lr, value_lr: Adam learning rates of π_u, Q and V (3e-4).
        balance_lr: Adam learning rate of π_b (the official code reuses ``actor_lr``).
        balance_temperature_lr: Adam learning rate of α_b (``hierarchical_temp_lr`` 3e-4).
        discount: γ (0.99). tau: Polyak rate of the target critics (0.005).
        expectile: τ of IQL's value loss (0.9, AntMaze).
        max_weight: clip of the AWR weights (100).
        beta_min, beta_max: the range of β (AntMaze: [8, 14], around IQL's β = 10).
        beta_encoding_n: n, the base of φ (10⁴).
        balance_target_entropy: H_target of π_b (−0.5).
        balance_init_temperature: α_b at init (1.0; read only by ``init``).
        random_beta: True: the universal actor trains on β ~ U[β_min, β_max] (offline);
            False: on β ~ π_b(s) (online).
    """

    hidden_dims: Sequence[int] = init_only((256, 256))
    beta_encoding_dim: int = init_only(6)
    beta_weighting: str = struct.field(pytree_node=False, default="per_sample")
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    balance_lr: float = 3e-4
    balance_temperature_lr: float = 3e-4
    discount: float = 0.99
    tau: float = 0.005
    expectile: float = 0.9
    max_weight: float = 100.0
    beta_min: float = 8.0
    beta_max: float = 14.0
    beta_encoding_n: float = 1e4
    balance_target_entropy: float = -0.5
    # read only by `init`; static, so a sweep over it recompiles (as any init-only field)
    balance_init_temperature: float = init_only(1.0)
    random_beta: bool = True


@struct.dataclass
class State:
    """Everything FamO2O carries between updates (a pytree)."""

    actor: TrainState  # π_u: ConditionedActor(GaussianActor), input concat(s, φ(β))
    critic: TargetTrainState
    value: TrainState
    balance: TrainState  # π_b: one-dimensional TanhGaussianActor
    balance_temperature: TrainState
    config: Config


# One optimizer object for every network: the learning rate lives in its state and is
# overwritten from the config at each update (`_at_learning_rate`), so it is traced.
_ADAM = optax.inject_hyperparams(optax.adam)(learning_rate=3e-4)


def _at_learning_rate(ts: Any, learning_rate: Any) -> Any:
    opt_state = ts.opt_state
    hyper = {**opt_state.hyperparams, "learning_rate": jnp.asarray(learning_rate, jnp.float32)}
    return ts.replace(opt_state=opt_state._replace(hyperparams=hyper))


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """Fresh networks and optimizers for ``observation_dim`` inputs and ``action_dim`` actions."""
    if config.beta_weighting not in BETA_WEIGHTINGS:
        raise ValueError(
            f"beta_weighting must be one of {BETA_WEIGHTINGS}, got {config.beta_weighting!r}"
        )
    if config.beta_encoding_dim <= 0 or config.beta_encoding_dim % 2:
        raise ValueError(
            f"beta_encoding_dim must be positive and even, got {config.beta_encoding_dim}"
        )
    if not float(config.beta_min) < float(config.beta_max):
        raise ValueError(
            f"beta_min must be below beta_max, got [{config.beta_min}, {config.beta_max}]"
        )
    k_actor, k_critic, k_value, k_balance = jax.random.split(key, 4)
    obs = jnp.zeros((1, observation_dim), jnp.float32)
    act = jnp.zeros((1, action_dim), jnp.float32)
    code = jnp.zeros((1, config.beta_encoding_dim), jnp.float32)
    hidden = tuple(config.hidden_dims)
    actor_net = ConditionedActor(GaussianActor(hidden, action_dim))
    critic_net = EnsembleCritic(hidden_dims=hidden, num_qs=2)
    value_net = StateValue(hidden_dims=hidden)
    # The official balance model: tanh-squashed, state-independent std, log-std in [-10, 2]
    # (``policy.NormalTanhPolicy`` defaults).
    balance_net = TanhGaussianActor(
        hidden, 1, log_std_min=-10.0, log_std_max=2.0, state_dependent_std=False
    )
    temperature_net = Temperature(initial=float(config.balance_init_temperature))

    def create(cls: Any, net: Any, params: Any, learning_rate: float) -> Any:
        ts = cls.create(apply_fn=net.apply, params=params, tx=_ADAM)
        return _at_learning_rate(ts, learning_rate)

    return State(
        actor=create(
            TrainState, actor_net, actor_net.init(k_actor, obs, code)["params"], config.actor_lr
        ),
        critic=create(
            TargetTrainState,
            critic_net,
            critic_net.init(k_critic, obs, act)["params"],
            config.critic_lr,
        ),
        value=create(
            TrainState, value_net, value_net.init(k_value, obs)["params"], config.value_lr
        ),
        balance=create(
            TrainState, balance_net, balance_net.init(k_balance, obs)["params"], config.balance_lr
        ),
        balance_temperature=create(
            TrainState,
            temperature_net,
            temperature_net.init(k_balance)["params"],  # no random parameter: any key
            config.balance_temperature_lr,
        ),
        config=config,
    )


# ----------------------------------------------------------------------------- pieces
def coefficients(config: Config, unit: jax.Array) -> jax.Array:
    """β = β_min + (b + 1)(β_max − β_min)/2: the balance model's b ∈ [−1, 1] onto the range."""
    return config.beta_min + (unit + 1.0) * 0.5 * (config.beta_max - config.beta_min)


def beta_code(config: Config, beta: jax.Array) -> jax.Array:
    """φ(β), shape ``beta.shape + (beta_encoding_dim,)`` (`networks.sinusoidal_code`)."""
    return sinusoidal_code(beta, config.beta_encoding_dim, config.beta_encoding_n)


def universal_policy(
    state: State, observations: jax.Array, beta: jax.Array, params: Any = None
) -> Normal:
    """π_u(·|s, φ(β)) for observations (..., S) and coefficients (...) or one scalar."""
    params = state.actor.params if params is None else params
    code = beta_code(state.config, jnp.asarray(beta, jnp.float32))
    return state.actor.apply_fn({"params": params}, observations, code)  # type: ignore[no-any-return]


def balance_policy(state: State, observations: jax.Array, params: Any = None) -> TanhNormal:
    """π_b(·|s) on [−1, 1], event shape (1,)."""
    params = state.balance.params if params is None else params
    return state.balance.apply_fn({"params": params}, observations)  # type: ignore[no-any-return]


def balance_coefficients(state: State, observations: jax.Array) -> jax.Array:
    """The β each state acts with: the mode of π_b(s), mapped onto the range; shape (...)."""
    return coefficients(state.config, balance_policy(state, observations).mode()[..., 0])


def training_coefficients(state: State, observations: jax.Array, key: jax.Array) -> jax.Array:
    """The β the universal actor trains on, (B,): U[β_min, β_max] while ``random_beta``, else
    a sample of π_b(s) (no gradient). Both are drawn; the traced flag selects one."""
    cfg = state.config
    k_uniform, k_balance = jax.random.split(key)
    shape = observations.shape[:-1]
    uniform = jax.random.uniform(k_uniform, shape, minval=cfg.beta_min, maxval=cfg.beta_max)
    sampled = coefficients(cfg, balance_policy(state, observations).sample(k_balance)[..., 0])
    return jnp.where(cfg.random_beta, uniform, jax.lax.stop_gradient(sampled))


def family_weights(config: Config, adv: jax.Array, beta: jax.Array) -> jax.Array:
    """AWR weights of the universal actor, (B,): ``min(exp(β_i A_i), max_weight)`` for
    "per_sample"; ``mean_j min(exp(β_j A_i), max_weight)`` for "batch_mean" (the official
    (B, 1) × (B,) broadcast, see the module doc). No gradient."""
    if config.beta_weighting == "batch_mean":
        return losses.awr_weights(adv[None, :], beta[:, None], config.max_weight).mean(axis=0)
    return losses.awr_weights(adv, beta, config.max_weight)


def _iql_view(state: State) -> iql.State:
    """The IQL state that `iql.update_value`/`iql.update_critic`/`iql.advantages` read: the
    shared networks and an `iql.Config` with FamO2O's values (IQL's other options at their
    defaults, i.e. plain IQL)."""
    cfg = state.config
    view_config = iql.Config(
        hidden_dims=tuple(cfg.hidden_dims),
        discount=cfg.discount,
        tau=cfg.tau,
        expectile=cfg.expectile,
        max_weight=cfg.max_weight,
    )
    return iql.State(actor=state.actor, critic=state.critic, value=state.value, config=view_config)


def _target_min_q(state: State, observations: jax.Array, actions: jax.Array) -> jax.Array:
    qs = state.critic.apply_fn({"params": state.critic.target_params}, observations, actions)
    return jnp.min(qs, axis=0)


# ----------------------------------------------------------------------------- updates
def update_balance(
    state: State, batch: Transitions, key: jax.Array
) -> tuple[State, jax.Array, Metrics]:
    """One step of π_b on ``E[α_b log π_b(b|s) − min Q̄(s, ã)]`` (module doc); returns the
    new state, the log-densities of the sampled b (for the temperature step) and metrics."""
    cfg = state.config
    k_beta, k_action = jax.random.split(key)
    alpha = state.balance_temperature.apply_fn({"params": state.balance_temperature.params})

    def loss_fn(params: Any) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        unit, log_probs = balance_policy(state, batch.observations, params).sample_and_log_prob(
            k_beta
        )
        beta = coefficients(cfg, unit[..., 0])
        # the actor's parameters are constants here; β reaches the loss through φ(β)
        dist = universal_policy(state, batch.observations, beta)
        actions = dist.sample(k_action)
        q = _target_min_q(state, batch.observations, actions)
        return losses.sac_actor_loss(log_probs, q, alpha), (log_probs, beta)

    (loss, (log_probs, beta)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.balance.params
    )
    balance = state.balance.apply_gradients(grads=grads)
    metrics = {
        "balance_loss": loss,
        "balance_entropy": -log_probs.mean(),
        "balance_beta_mean": beta.mean(),
        "balance_beta_std": beta.std(),
    }
    return dataclasses.replace(state, balance=balance), log_probs, metrics


def update_balance_temperature(state: State, log_probs: jax.Array) -> tuple[State, Metrics]:
    """One step of α_b on ``α_b (H − H_target)``, H = −mean(log π_b) of the balance step."""
    temp = state.balance_temperature
    target = state.config.balance_target_entropy

    def loss_fn(params: Any) -> tuple[jax.Array, jax.Array]:
        alpha = temp.apply_fn({"params": params})
        return losses.temperature_loss(alpha, log_probs, target), alpha

    (loss, alpha), grads = jax.value_and_grad(loss_fn, has_aux=True)(temp.params)
    temp = temp.apply_gradients(grads=grads)
    metrics = {"balance_temperature": alpha, "balance_temperature_loss": loss}
    return dataclasses.replace(state, balance_temperature=temp), metrics


def update_actor(state: State, batch: Transitions, beta: jax.Array) -> tuple[State, Metrics]:
    """One β-weighted AWR step of π_u with the coefficients ``beta`` (B,), advantages from
    the target critics and the current V (`iql.advantages`)."""
    adv = iql.advantages(_iql_view(state), batch)
    weights = family_weights(state.config, adv, beta)

    def loss_fn(params: Any) -> jax.Array:
        dist = universal_policy(state, batch.observations, beta, params)
        return iql.weighted_regression_loss(dist, batch.actions, weights)

    loss, grads = jax.value_and_grad(loss_fn)(state.actor.params)
    actor = state.actor.apply_gradients(grads=grads)
    metrics = {
        "actor_loss": loss,
        "adv_mean": adv.mean(),
        "weight_mean": weights.mean(),
        "actor_beta_mean": beta.mean(),
    }
    return dataclasses.replace(state, actor=actor), metrics


def _with_learning_rates(state: State) -> State:
    cfg = state.config
    return dataclasses.replace(
        state,
        actor=_at_learning_rate(state.actor, cfg.actor_lr),
        critic=_at_learning_rate(state.critic, cfg.critic_lr),
        value=_at_learning_rate(state.value, cfg.value_lr),
        balance=_at_learning_rate(state.balance, cfg.balance_lr),
        balance_temperature=_at_learning_rate(
            state.balance_temperature, cfg.balance_temperature_lr
        ),
    )


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One FamO2O update on one minibatch, in the official order (module doc). Pure."""
    k_balance, k_beta = jax.random.split(key)
    state = _with_learning_rates(state)
    view, value_metrics = iql.update_value(_iql_view(state), batch)
    state = dataclasses.replace(state, value=view.value)
    # the actor's β comes from π_b as it was before its step (official: the old model)
    beta = training_coefficients(state, batch.observations, k_beta)
    state, log_probs, balance_metrics = update_balance(state, batch, k_balance)
    state, temperature_metrics = update_balance_temperature(state, log_probs)
    state, actor_metrics = update_actor(state, batch, beta)
    view, critic_metrics = iql.update_critic(_iql_view(state), batch)
    state = dataclasses.replace(state, critic=view.critic)
    return state, {
        **value_metrics,
        **balance_metrics,
        **temperature_metrics,
        **actor_metrics,
        **critic_metrics,
    }


def act(
    state: State, observations: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Actions in [−1, 1] with β = mode of π_b(s): π_u's mean when ``deterministic``, else a
    sample clipped to [−1, 1]."""
    dist = universal_policy(state, observations, balance_coefficients(state, observations))
    return dist.mode() if deterministic else jnp.clip(dist.sample(key), -1.0, 1.0)


def family_q(state: State, observations: jax.Array, beta: float | jax.Array) -> jax.Array:
    """``min_i Q_i(s, mean π_u(s, φ(β)))`` for each state (B,): how good the family member β
    is by the critics (the monotonicity check of the validation)."""
    beta = jnp.broadcast_to(jnp.asarray(beta, jnp.float32), observations.shape[:-1])
    actions = universal_policy(state, observations, beta).mode()
    qs = state.critic.apply_fn({"params": state.critic.params}, observations, actions)
    return jnp.min(qs, axis=0)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(q_probe=True)
