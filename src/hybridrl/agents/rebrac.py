"""ReBRAC (Tarasov, Kurenkov, Nikulin & Kolesnikov, 2023, "Revisiting the Minimalist Approach
to Offline Reinforcement Learning", NeurIPS): TD3+BC with decoupled actor and critic BC
penalties, LayerNorm critics, deeper networks and larger batches.

Everything but two terms is `hybridrl.agents.td3` (target policy smoothing, clipped double Q,
the sum of the two critics' MSEs, the delayed actor and Polyak steps, acting); this module
passes two hooks to ``td3.update``. For a minibatch (s, a, r, s', d) with the dataset's next
action a'_D (the ``next_actions`` extra, `hybridrl.data.transitions.next_actions`):

- critic target (``target_penalty``):
  ``y = r + γ (1 - d) [min_i Q_θ'i(s', ã') - β_c m ||ã' - a'_D||²]``, ã' the smoothed target
  action and m the ``has_next_action`` mask (0 where the data records no next action: at
  time-outs, where the official D4RL loader drops the row instead);
- actor, every ``policy_freq`` critic steps (``actor_loss``,
  `hybridrl.core.losses.rebrac_actor_loss`):
  ``L_π = mean(β_a ||π(s) - a||² - λ min_i Q_θi(s, π(s)))``, λ = 1 / mean|min_i Q_θi| (no
  gradient), with squared distances summed over action dimensions and no α = 2.5.

β_a decays online as a pure function of the update counter (`hybridrl.core.schedules`):
``β_a(c) = actor_bc_coef · max(min_decay_coef, 1 - (c - actor_bc_decay_start) /
actor_bc_decay_updates)`` for ``c`` ≥ the start (``c`` = ``state.critic.step``, the update
count, saved in checkpoints), so a resumed run decays exactly as an uninterrupted one.

Defaults: the official offline code, DT6A/ReBRAC @785aea7 ``src/algorithms/rebrac.py``
(``Config``; 3×256 networks, critic LayerNorm, actor none, lr 1e-3 both, γ 0.99, τ 0.005,
σ 0.2, c 0.5, d 2, batch 1024 in the recipe). β_a, β_c per dataset: `SETTINGS`;
docs/agents/rebrac.md lists every deviation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hybridrl.agents import td3
from hybridrl.agents.spec import AgentSpec, init_only
from hybridrl.core import losses
from hybridrl.core.schedules import linear_decay
from hybridrl.data.transitions import Transitions
from hybridrl.types import Array, HybridRLError

Metrics = dict[str, jax.Array]
State = td3.State
act = td3.act

# (β_a, β_c) of the official per-dataset configs, DT6A/ReBRAC @785aea7
# configs/rebrac/<task>/<task>_<dataset>.yaml (actor_bc_coef, critic_bc_coef).
SETTINGS: dict[str, tuple[float, float]] = {
    "hopper-medium": (0.01, 0.01),
    "hopper-medium-replay": (0.05, 0.5),
    "hopper-medium-expert": (0.1, 0.01),
    "halfcheetah-medium": (0.001, 0.01),
    "halfcheetah-medium-replay": (0.01, 0.001),
    "halfcheetah-medium-expert": (0.01, 0.1),
    "walker2d-medium": (0.05, 0.1),
    "walker2d-medium-replay": (0.05, 0.01),
    "walker2d-medium-expert": (0.01, 0.01),
}
# The generic default: the median of each column above (the official Config's 1.0 is a
# placeholder every shipped config overrides).
DEFAULT_ACTOR_BC, DEFAULT_CRITIC_BC = 0.01, 0.01


def setting(dataset: str) -> dict[str, float]:
    """The ``Config`` overrides (``actor_bc_coef``, ``critic_bc_coef``) of the official config
    for ``dataset``: a D4RL-style name such as "hopper-medium-replay-v2" or a Minari id that
    contains one (e.g. "mujoco/hopper/medium-replay-v0"); `HybridRLError` for other data."""
    text = dataset.lower().replace("/", "-").replace("_", "-")
    for name in sorted(SETTINGS, key=len, reverse=True):  # medium-replay before medium
        task, kind = name.split("-", 1)
        if task in text and kind in text:
            actor, critic = SETTINGS[name]
            return {"actor_bc_coef": actor, "critic_bc_coef": critic}
    raise HybridRLError(
        f"ReBRAC has no official setting for dataset {dataset!r}; known: "
        f"{', '.join(SETTINGS)} (use the generic default or --set actor_bc_coef=...)"
    )


@struct.dataclass
class Config(td3.Config):
    """TD3's fields (`hybridrl.agents.td3.Config`) with ReBRAC's defaults, plus the two
    penalties and the decay of β_a. All new fields are traced leaves (no recompiles).

    Attributes:
        actor_bc_coef: β_a, weight of the actor's ||π(s) - a||² (summed over action dims).
        critic_bc_coef: β_c, weight of ||ã' - a'_D||² inside the critic target; 0 turns the
            term off and the batches then need no ``next_actions``.
        actor_bc_decay_start: the update count at which β_a starts to decay (the number of
            offline updates in ``rebrac_finetune``).
        actor_bc_decay_updates: updates over which β_a falls linearly to
            ``min_decay_coef`` × β_a; 0: no decay.
        min_decay_coef: the floor of the decay factor (official default 0.0).
    """

    hidden_dims: Sequence[int] = init_only((256, 256, 256))
    actor_lr: float = init_only(1e-3)
    critic_lr: float = init_only(1e-3)
    critic_layer_norm: bool = init_only(True)
    actor_q: str = struct.field(pytree_node=False, default="min")
    # rebrac_finetune.py's expl_noise (the offline code does not act).
    exploration_noise: float = 0.03
    actor_bc_coef: float = DEFAULT_ACTOR_BC
    critic_bc_coef: float = DEFAULT_CRITIC_BC
    actor_bc_decay_start: float = 0.0
    actor_bc_decay_updates: float = 0.0
    min_decay_coef: float = 0.0

    # The penalties go at a switch to TD3 (`hybridrl.training.phases.SwitchAgent`); the
    # network options (critic LayerNorm, min-Q actor) are TD3 fields and are carried.
    SWITCH_REMOVES: ClassVar[tuple[str, ...]] = (
        "actor_bc_coef",
        "critic_bc_coef",
        "actor_bc_decay_start",
        "actor_bc_decay_updates",
        "min_decay_coef",
    )


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """TD3's networks and optimizers with this `Config` (LayerNorm critics, 3×256)."""
    if not isinstance(config, Config):
        raise TypeError(f"rebrac.init needs a rebrac.Config, got {type(config).__name__}")
    return td3.init(config, key, observation_dim, action_dim)


def actor_bc_coef(config: Any, step: Array) -> jax.Array:
    """β_a in effect at update count ``step`` (the linear decay of `Config`)."""
    factor = linear_decay(
        step, config.actor_bc_decay_start, config.actor_bc_decay_updates, config.min_decay_coef
    )
    return config.actor_bc_coef * factor


def critic_bc_penalty(
    config: Config, next_actions: jax.Array, batch: Transitions
) -> tuple[jax.Array, Metrics]:
    """``β_c · m · ||ã' - a'_D||²`` per row (td3's ``target_penalty`` hook).

    A batch without the ``next_actions`` extra (online rows: the runner refuses an online
    phase with β_c ≠ 0) has no penalty when β_c = 0. With β_c ≠ 0 it raises when β_c is a
    Python or NumPy number, and under ``jit`` (β_c traced) the target becomes NaN, so a
    missing column is never ignored silently.
    """
    beta = config.critic_bc_coef
    if "next_actions" not in batch.extras:
        if not isinstance(beta, jax.core.Tracer) and bool(np.any(np.asarray(beta) != 0)):
            raise HybridRLError(
                "ReBRAC's critic penalty (critic_bc_coef != 0) needs the dataset's next actions "
                "in batch.extras['next_actions'] (Dataset.with_next_actions)"
            )
        zero = jnp.zeros_like(batch.rewards)
        poison = jnp.where(beta != 0, jnp.nan, 0.0)
        return zero + poison, {"critic_bc_mse": zero.mean()}
    dist = losses.squared_action_distance(next_actions, batch.extras["next_actions"])
    dist = dist * batch.extras["has_next_action"]
    return beta * dist, {"critic_bc_mse": dist.mean()}


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One TD3 update with ReBRAC's critic-target penalty and actor loss (see
    `hybridrl.agents.td3.update`); β_a is the decayed coefficient at ``state.critic.step``."""
    beta_a = actor_bc_coef(state.config, state.critic.step)

    def actor_loss(
        config: Config, q_pi: jax.Array, pi_actions: jax.Array, b: Transitions
    ) -> tuple[jax.Array, Metrics]:
        loss = losses.rebrac_actor_loss(q_pi, pi_actions, b.actions, beta_a)
        bc = losses.squared_action_distance(pi_actions, b.actions).mean()
        lam = 1.0 / jnp.maximum(jax.lax.stop_gradient(jnp.abs(q_pi).mean()), 1e-6)
        return loss, {"bc_mse": bc, "lambda": lam, "actor_bc_coef": beta_a}

    return td3.update(state, batch, key, actor_loss=actor_loss, target_penalty=critic_bc_penalty)


def _needs_next_actions(config: Config) -> bool:
    return bool(np.any(np.asarray(config.critic_bc_coef) != 0))


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(q_probe=True, needs_next_actions=_needs_next_actions)
