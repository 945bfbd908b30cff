"""Value and policy heads on top of `MLP`.

Conventions shared by every head:

* Actions live in [-1, 1]^A. Rescaling to an environment's bounds (and back, for dataset
  actions) happens outside the networks, in the agent's acting/data code.
* ``training`` (a static Python bool, default False) enables dropout; it then needs a
  ``'dropout'`` rng: ``module.apply(params, ..., training=True, rngs={'dropout': key})``.
* Final layers use ``default_init(final_init_scale)`` with ``final_init_scale=1e-2`` (jaxrl_m's
  convention): near-zero initial Q/V values and actor outputs. Hidden layers use
  ``default_init()`` (Xavier uniform, see `hybridrl.networks.mlp`).
* Value heads return shape (...,) (the trailing unit axis is dropped); ensembles put the
  member axis first: (N, ...).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from hybridrl.core.distributions import Categorical, Normal, TanhNormal
from hybridrl.networks.ensemble import Ensemble
from hybridrl.networks.mlp import MLP, default_init

Activation = Callable[[jax.Array], jax.Array]

FINAL_INIT_SCALE = 1e-2


def _trunk(head: Any) -> MLP:
    """The activated MLP body of a head (created inside the head's compact method)."""
    return MLP(
        head.hidden_dims,
        activation=head.activation,
        layer_norm=head.layer_norm,
        dropout_rate=head.dropout_rate,
        activate_final=True,
    )


class StateActionValue(nn.Module):
    """Q(s, a) = Dense_1(MLP([s, a])), shape (...,)."""

    hidden_dims: Sequence[int]
    layer_norm: bool = False
    dropout_rate: float | None = None
    activation: Activation = nn.relu
    final_init_scale: float = FINAL_INIT_SCALE

    @nn.compact
    def __call__(
        self, observations: jax.Array, actions: jax.Array, training: bool = False
    ) -> jax.Array:
        x = jnp.concatenate([observations, actions], axis=-1)
        x = _trunk(self)(x, training)
        return nn.Dense(1, kernel_init=default_init(self.final_init_scale))(x)[..., 0]


class StateValue(nn.Module):
    """V(s) = Dense_1(MLP(s)), shape (...,)."""

    hidden_dims: Sequence[int]
    layer_norm: bool = False
    dropout_rate: float | None = None
    activation: Activation = nn.relu
    final_init_scale: float = FINAL_INIT_SCALE

    @nn.compact
    def __call__(self, observations: jax.Array, training: bool = False) -> jax.Array:
        x = _trunk(self)(observations, training)
        return nn.Dense(1, kernel_init=default_init(self.final_init_scale))(x)[..., 0]


class EnsembleCritic(nn.Module):
    """``num_qs`` independent `StateActionValue` critics as one vmapped network: (N, ...).

    ``num_qs=2`` is TD3/SAC's clipped double Q; 10 is RLPD/REDQ; SAC-N/EDAC use 10-500.
    Parameters sit under ``params['ensemble']['members']`` with leading axis N.
    """

    hidden_dims: Sequence[int]
    num_qs: int = 2
    layer_norm: bool = False
    dropout_rate: float | None = None
    activation: Activation = nn.relu
    final_init_scale: float = FINAL_INIT_SCALE

    @nn.compact
    def __call__(
        self, observations: jax.Array, actions: jax.Array, training: bool = False
    ) -> jax.Array:
        member = functools.partial(
            StateActionValue,
            hidden_dims=self.hidden_dims,
            layer_norm=self.layer_norm,
            dropout_rate=self.dropout_rate,
            activation=self.activation,
            final_init_scale=self.final_init_scale,
        )
        return Ensemble(member, num=self.num_qs, name="ensemble")(
            observations, actions, training=training
        )


def _log_std(
    module: nn.Module,
    x: jax.Array,
    mean: jax.Array,
    action_dim: int,
    state_dependent: bool,
    final_init_scale: float,
    low: float,
    high: float,
) -> jax.Array:
    if state_dependent:
        log_std = nn.Dense(action_dim, kernel_init=default_init(final_init_scale), name="log_std")(
            x
        )
    else:
        # One learned log-std per action dimension, shared by all states (IQL's actor).
        log_std = module.param("log_std", nn.initializers.zeros, (action_dim,))
        log_std = jnp.broadcast_to(log_std, mean.shape)
    # Hard clip as in SAC (Haarnoja et al., 2018a code) and RLPD.
    return jnp.clip(log_std, low, high)


def _gaussian_head(
    head: Any, observations: jax.Array, training: bool
) -> tuple[jax.Array, jax.Array]:
    """Trunk, then the mean layer and the clipped log-std of a Gaussian policy head (inside the
    caller's ``nn.compact`` scope, so the parameter names stay ``mean``/``log_std``)."""
    x = _trunk(head)(observations, training)
    mean = nn.Dense(head.action_dim, kernel_init=default_init(head.final_init_scale), name="mean")(
        x
    )
    log_std = _log_std(
        head,
        x,
        mean,
        head.action_dim,
        head.state_dependent_std,
        head.final_init_scale,
        head.log_std_min,
        head.log_std_max,
    )
    return mean, log_std


class TanhGaussianActor(nn.Module):
    """pi(a|s) = tanh(N(mu(s), sigma(s)^2)): SAC, CQL, Cal-QL, SAC-N/EDAC, AWAC, RLPD.

    Returns a `TanhNormal`; actions are in (-1, 1).

    ``log_std`` is clipped to [log_std_min, log_std_max] = [-20, 2] by default: the bounds of
    the original SAC code, RLPD and CORL's CQL. Other references: jaxrl uses [-10, 2]; EDAC and
    CORL's SAC-N/EDAC use [-5, 2] (pass ``log_std_min=-5`` there). The lower bound matters for
    offline BC-like policies whose std collapses: with -20 the log-density of data actions can
    grow very large.

    Attributes:
        hidden_dims, layer_norm, dropout_rate, activation: the trunk `MLP`.
        action_dim: A.
        log_std_min, log_std_max: clip bounds of the log standard deviation.
        state_dependent_std: log_std from a Dense head (True) or a free parameter vector.
        final_init_scale: init scale of the mean and log_std layers.
    """

    hidden_dims: Sequence[int]
    action_dim: int
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    state_dependent_std: bool = True
    layer_norm: bool = False
    dropout_rate: float | None = None
    activation: Activation = nn.relu
    final_init_scale: float = FINAL_INIT_SCALE

    @nn.compact
    def __call__(self, observations: jax.Array, training: bool = False) -> TanhNormal:
        mean, log_std = _gaussian_head(self, observations, training)
        return TanhNormal(mean, log_std)


class GaussianActor(nn.Module):
    """pi(a|s) = N(tanh(mu(s)), sigma^2): the unsquashed Gaussian of IQL's official actor.

    The mean is squashed by tanh, the distribution is not; ``log_prob`` of a dataset action is
    then a plain Gaussian log-density (no change of variables), which keeps the AWR/BC
    objective well behaved at actions near +-1. Samples can leave [-1, 1]: clip them before
    acting (IQL does). By default the std is a free per-dimension parameter, clipped to
    [-5, 2] (IQL's ``log_std_min=-5`` and jaxrl's max); AWAC-style users may set
    ``state_dependent_std=True``.
    """

    hidden_dims: Sequence[int]
    action_dim: int
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    state_dependent_std: bool = False
    layer_norm: bool = False
    dropout_rate: float | None = None
    activation: Activation = nn.relu
    final_init_scale: float = FINAL_INIT_SCALE

    @nn.compact
    def __call__(self, observations: jax.Array, training: bool = False) -> Normal:
        mean, log_std = _gaussian_head(self, observations, training)
        return Normal(jnp.tanh(mean), log_std)


class DeterministicActor(nn.Module):
    """a = tanh(Dense_A(MLP(s))) in [-1, 1]: TD3 / TD3+BC (Fujimoto et al., 2018; 2021)."""

    hidden_dims: Sequence[int]
    action_dim: int
    layer_norm: bool = False
    dropout_rate: float | None = None
    activation: Activation = nn.relu
    final_init_scale: float = FINAL_INIT_SCALE

    @nn.compact
    def __call__(self, observations: jax.Array, training: bool = False) -> jax.Array:
        x = _trunk(self)(observations, training)
        x = nn.Dense(self.action_dim, kernel_init=default_init(self.final_init_scale))(x)
        return jnp.tanh(x)


class Temperature(nn.Module):
    """A positive scalar alpha = exp(log_alpha), learned through its log (SAC's entropy
    temperature; also usable for CQL's Lagrange multiplier alpha').

    The parameter is ``params['log_alpha']`` (a scalar), initialized to ``log(initial)``;
    calling the module returns ``alpha``.
    """

    initial: float = 1.0

    @nn.compact
    def __call__(self) -> jax.Array:
        log_alpha = self.param(
            "log_alpha", lambda _: jnp.full((), math.log(self.initial), jnp.float32)
        )
        return jnp.exp(log_alpha)


# ----------------------------------------------------------------------------- PPO heads
# CleanRL's PPO networks (vwxyzjn/cleanrl, ``ppo.py`` / ``ppo_continuous_action.py``): tanh
# MLPs whose layers are initialised orthogonally with zero biases, gain sqrt(2) for hidden
# layers, 0.01 for the policy output and 1.0 for the value output. They differ on purpose from
# the library convention above (Xavier uniform, ReLU, final scale 1e-2).
PPO_HIDDEN_GAIN = math.sqrt(2.0)
PPO_POLICY_GAIN = 0.01
PPO_VALUE_GAIN = 1.0


def _ppo_trunk(hidden_dims: Sequence[int]) -> MLP:
    return MLP(
        tuple(hidden_dims),
        activation=nn.tanh,
        activate_final=True,
        kernel_init=nn.initializers.orthogonal(PPO_HIDDEN_GAIN),
    )


class PPOGaussianActor(nn.Module):
    """pi(a|s) = N(mu(s), diag(exp(log_std))^2) with a state-independent ``log_std`` parameter
    (CleanRL's ``actor_mean`` + ``actor_logstd``). Returns a `Normal` (no squashing, no clip
    of log_std); samples are unbounded and clipped to [-1, 1] only when sent to the env.

    Attributes:
        hidden_dims: trunk widths (tanh). action_dim: A.
        log_std_init: initial value of every log_std entry (CleanRL: 0).
    """

    hidden_dims: Sequence[int]
    action_dim: int
    log_std_init: float = 0.0

    @nn.compact
    def __call__(self, observations: jax.Array) -> Normal:
        x = _ppo_trunk(self.hidden_dims)(observations)
        mean = nn.Dense(
            self.action_dim, kernel_init=nn.initializers.orthogonal(PPO_POLICY_GAIN), name="mean"
        )(x)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
        )
        return Normal(mean, jnp.broadcast_to(log_std, mean.shape))


class PPOCategoricalActor(nn.Module):
    """pi(a|s) = Categorical(logits(s)) over ``num_actions`` (CleanRL ``ppo.py``'s actor)."""

    hidden_dims: Sequence[int]
    num_actions: int

    @nn.compact
    def __call__(self, observations: jax.Array) -> Categorical:
        x = _ppo_trunk(self.hidden_dims)(observations)
        logits = nn.Dense(
            self.num_actions, kernel_init=nn.initializers.orthogonal(PPO_POLICY_GAIN), name="logits"
        )(x)
        return Categorical(logits)


class PPOStateValue(nn.Module):
    """V(s) of CleanRL's PPO critic (tanh trunk, output gain 1.0), shape (...,)."""

    hidden_dims: Sequence[int]

    @nn.compact
    def __call__(self, observations: jax.Array) -> jax.Array:
        x = _ppo_trunk(self.hidden_dims)(observations)
        v = nn.Dense(1, kernel_init=nn.initializers.orthogonal(PPO_VALUE_GAIN), name="value")(x)
        return v[..., 0]


class TanhStateActionValue(nn.Module):
    """Q(s, a) with a tanh trunk on ``[s, a]`` and a small output layer, shape (...,): HNPG's
    ``QValue`` (2 × 64 tanh, output weights scaled by 0.1 at init, zero bias). Initialised
    with the PPO trunk's orthogonal √2 and gain 0.1 on the output (torch's default uniform
    init × 0.1 in the official code)."""

    hidden_dims: Sequence[int]

    @nn.compact
    def __call__(self, observations: jax.Array, actions: jax.Array) -> jax.Array:
        x = _ppo_trunk(self.hidden_dims)(jnp.concatenate([observations, actions], axis=-1))
        q = nn.Dense(1, kernel_init=nn.initializers.orthogonal(0.1), name="value")(x)
        return q[..., 0]
