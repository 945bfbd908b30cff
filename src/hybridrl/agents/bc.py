"""Behaviour cloning: supervised regression of the dataset actions on the states.

Two objectives (``Config.loss``, static):

- ``"nll"``: maximum likelihood of a stochastic policy, ``L = -E_{(s,a)~D}[log π(a|s)]``
  (`hybridrl.core.losses.bc_nll_loss`). The policy is chosen by ``Config.nll_actor``:

  * ``"gaussian"`` (default): `hybridrl.networks.GaussianActor`, N(tanh(μ(s)), σ²) with a
    state-independent σ (log σ clipped to [-5, 2]), IQL's actor. Its log-density of a dataset
    action is a plain Gaussian one, so actions at the bounds ±1 (frequent once data are clipped
    to the action space, as in the Pendulum swing-up data) are just points the mean moves
    towards; samples are clipped to [-1, 1] when acting.
  * ``"tanh_gaussian"``: `hybridrl.networks.TanhGaussianActor` (SAC's policy), useful to
    pre-train an actor that SAC-style agents then fine-tune. ``TanhNormal.log_prob`` clips
    dataset actions to ±(1 − 1e-6) before ``atanh``; with many actions at ±1 the likelihood
    rewards pushing the pre-tanh mean towards atanh(1 − 1e-6) ≈ 7.25 and shrinking σ, which is
    why ``log_std_min`` is -5 here (EDAC/CORL's bound) rather than SAC's -20.

- ``"mse"``: a deterministic policy π(s) = tanh(f(s)) (`hybridrl.networks.DeterministicActor`)
  with ``L = E[(π(s) - a)²]`` (`hybridrl.core.losses.bc_mse_loss`; CORL's BC).

Acting: ``deterministic=True`` gives the mode (tanh(μ(s)) for both stochastic actors, π(s) for
mse); ``deterministic=False`` samples from the stochastic policy (clipped to [-1, 1]) and is
the same deterministic action for ``"mse"``.

**%BC** (Chen et al., 2021, Decision Transformer; Emmons et al., 2022, RvS): BC on the
fraction of episodes with the highest returns. Filter the dataset first,
``run(offline_recipe("bc"), env_id, dataset=dataset.filter_top_episodes(0.1), run_dir=...)``
for 10%BC; `hybridrl.data.dataset.Dataset.filter_top_episodes` keeps whole episodes and marks
the cuts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from hybridrl.agents.spec import AgentSpec, init_only
from hybridrl.core import losses
from hybridrl.core.optim import adam
from hybridrl.core.train_state import TrainState
from hybridrl.data.transitions import Transitions
from hybridrl.networks import DeterministicActor, GaussianActor, TanhGaussianActor

Metrics = dict[str, jax.Array]

LOSSES = ("nll", "mse")
NLL_ACTORS = ("gaussian", "tanh_gaussian")


@struct.dataclass
class Config:
    """BC hyperparameters (all structural: BC has no numeric hyperparameter to trace).

    Attributes:
        hidden_dims: hidden layer sizes of the actor.
        loss: "nll" (stochastic policy, log-likelihood) or "mse" (deterministic policy).
        nll_actor: the stochastic policy for "nll": "gaussian" or "tanh_gaussian".
        log_std_min, log_std_max: clip bounds of the stochastic policy's log σ.
        actor_lr: Adam learning rate.
    """

    hidden_dims: Sequence[int] = init_only((256, 256))
    loss: str = struct.field(pytree_node=False, default="nll")
    nll_actor: str = init_only("gaussian")
    log_std_min: float = init_only(-5.0)
    log_std_max: float = init_only(2.0)
    actor_lr: float = init_only(3e-4)


@struct.dataclass
class State:
    """The actor and the config."""

    actor: TrainState
    config: Config


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """A fresh actor of the kind ``config.loss`` (and ``nll_actor``) asks for."""
    if config.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {config.loss!r}")
    if config.nll_actor not in NLL_ACTORS:
        raise ValueError(f"nll_actor must be one of {NLL_ACTORS}, got {config.nll_actor!r}")
    hidden = tuple(config.hidden_dims)
    net: Any
    if config.loss == "mse":
        net = DeterministicActor(hidden_dims=hidden, action_dim=action_dim)
    else:
        cls = GaussianActor if config.nll_actor == "gaussian" else TanhGaussianActor
        net = cls(
            hidden_dims=hidden,
            action_dim=action_dim,
            log_std_min=config.log_std_min,
            log_std_max=config.log_std_max,
        )
    params = net.init(key, jnp.zeros((1, observation_dim), jnp.float32))["params"]
    actor = TrainState.create(apply_fn=net.apply, params=params, tx=adam(config.actor_lr))
    return State(actor=actor, config=config)


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One gradient step on the BC loss over the batch (``key`` is unused: no noise)."""
    del key
    mse = state.config.loss == "mse"

    def loss_fn(params: Any) -> tuple[jax.Array, Metrics]:
        out = state.actor.apply_fn({"params": params}, batch.observations)
        if mse:
            loss = losses.bc_mse_loss(out, batch.actions)
            return loss, {"actor_loss": loss, "mse": loss}
        loss = losses.bc_nll_loss(out.log_prob(batch.actions))
        mode_mse = losses.bc_mse_loss(out.mode(), batch.actions)
        return loss, {"actor_loss": loss, "mse": mode_mse, "log_std": out.log_std.mean()}

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.actor.params)
    return dataclasses.replace(state, actor=state.actor.apply_gradients(grads=grads)), metrics


def act(
    state: State, observations: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Actions in [-1, 1]: the mode if ``deterministic`` (or for "mse"), else a sample."""
    out = state.actor.apply_fn({"params": state.actor.params}, observations)
    if state.config.loss == "mse":
        return out
    actions = out.mode() if deterministic else out.sample(key)
    return jnp.clip(actions, -1.0, 1.0)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec()
