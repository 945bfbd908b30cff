"""TD3+BC (Fujimoto & Gu, 2021, "A Minimalist Approach to Offline Reinforcement Learning",
NeurIPS): TD3 whose actor also regresses onto the dataset actions.

Everything but the actor loss is `hybridrl.agents.td3` (critic update, target policy
smoothing, delayed actor/target updates, state, acting); this module only swaps the actor
objective through ``td3.update(..., actor_loss=...)``. The actor minimizes (Eq. 3)

    L_π = -λ E[Q_θ1(s, π(s))] + E[(π(s) - a)²],   λ = α / E|Q_θ1(s, π(s))|  (constant),

`hybridrl.core.losses.td3_bc_actor_loss`, with α = ``alpha`` (2.5, a traced leaf). As in the
official code the normalizer is taken over Q at the *policy's* actions and the BC term is a
mean over batch and action dimensions.

The recipe also standardizes states with the dataset mean and std (Sec. 5; official code
``std + 1e-3``): ``offline_recipe("td3_bc")`` sets ``normalize_observations``, and `run`
evaluates with those statistics and returns them (``RunResult.obs_stats``). hybridrl floors
the std at 1e-3 (``Dataset.observation_stats``) instead of adding 1e-3, which differs only for
dimensions whose std is near 1e-3.

Defaults are TD3's (the official TD3+BC code uses TD3's 256-256 networks, 3e-4 learning rates,
σ 0.2, c 0.5, d 2, batch 256) and 1M updates in the paper.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from hybridrl.agents import td3
from hybridrl.agents.spec import AgentSpec
from hybridrl.core import losses
from hybridrl.data.transitions import Transitions

Metrics = dict[str, jax.Array]
State = td3.State
act = td3.act


@struct.dataclass
class Config(td3.Config):
    """TD3's hyperparameters (`hybridrl.agents.td3.Config`) plus the BC trade-off.

    Attributes:
        alpha: α in λ = α / E|Q|; larger values trust the critic more (2.5 in the paper).
    """

    alpha: float = 2.5

    # The BC term goes at a switch to TD3 (`hybridrl.training.phases.SwitchAgent`).
    SWITCH_REMOVES: ClassVar[tuple[str, ...]] = ("alpha",)


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """TD3's networks and optimizers; the state carries this `Config` (with ``alpha``)."""
    if not isinstance(config, Config):
        raise TypeError(f"td3_bc.init needs a td3_bc.Config, got {type(config).__name__}")
    return td3.init(config, key, observation_dim, action_dim)


def td3_bc_actor_loss(
    config: Config, q_pi: jax.Array, pi_actions: jax.Array, batch: Transitions
) -> tuple[jax.Array, Metrics]:
    """The TD3+BC objective, reporting the BC term and λ as metrics."""
    loss = losses.td3_bc_actor_loss(q_pi, pi_actions, batch.actions, config.alpha)
    bc = losses.bc_mse_loss(pi_actions, batch.actions)
    lam = config.alpha / jnp.maximum(jax.lax.stop_gradient(jnp.abs(q_pi).mean()), 1e-6)
    return loss, {"bc_mse": bc, "lambda": lam}


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One TD3 update with the TD3+BC actor loss (see `hybridrl.agents.td3.update`)."""
    return td3.update(state, batch, key, actor_loss=td3_bc_actor_loss)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(q_probe=True)
