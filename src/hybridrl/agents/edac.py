"""SAC-N and EDAC (An, Moon, Kim, Song, 2021: "Uncertainty-Based Offline Reinforcement Learning
with Diversified Q-Ensemble", NeurIPS).

**SAC-N** is SAC with N critics whose *minimum over all N* enters both the TD target and the
actor objective; with N large enough, the min penalizes actions whose Q-estimates disagree
(out-of-distribution actions), which is all the pessimism the method uses. It is not a separate
agent: it is `hybridrl.agents.sac` with the preset `sac_n_config`.

**EDAC** adds to the critic loss the ensemble gradient diversity term (paper, Eq. 6)::

    L_Q = sum_i E_D[(Q_i(s, a) - y)^2]
          + η · E_D[ 1/(N-1) · sum_{1<=i!=j<=N} <∇_a Q_i(s, a), ∇_a Q_j(s, a)> ]

    y = r + γ (1 - d) (min_{j=1..N} Q̄_j(s', a') - α log π(a'|s')),  a' ~ π(·|s'),

with the gradients taken with respect to the **dataset actions a at the batch states s** (the
official code sets ``requires_grad`` on the batch actions) and normalized to unit length
(`hybridrl.core.losses.edac_diversity_loss`). Diversified gradients let a smaller ensemble
(N = 10 instead of up to 500) reach SAC-N's pessimism. The actor maximizes
``E[min_i Q_i(s, ã) - α log π(ã|s)]`` and α is tuned towards the target entropy -|A|.

This module is a thin layer over SAC: `Config` extends `sac.Config` with the traced weight
``eta`` and the paper's defaults; `init`, `act` and `State` are SAC's; `update` is
`sac.update` with `diversity_regularizer` hooked into the critic loss.

Deviations from the official code (snu-mllab/EDAC), all documented in docs/agents/edac.md:

- the diversity term sums over all N critics, as the paper's Eq. 6 and CORL do; the official
  code's final version evaluates it on a random subset of min(N, |A|) critics;
- order of the updates: SAC's (critic, then actor and α on the updated critic); the official
  code computes the actor, α and critic losses from the same pre-update networks;
- α's loss is written in α rather than log α (same fixed point; see `losses.temperature_loss`);
- networks use Flax/Xavier initialization instead of rlkit's (fan-in uniform, bias 0.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import jax
from flax import struct

from hybridrl.agents import sac
from hybridrl.agents.sac import Metrics
from hybridrl.agents.spec import AgentSpec, init_only, utd_minibatches
from hybridrl.core import losses
from hybridrl.data.transitions import Transitions
from hybridrl.types import HybridRLError

State = sac.State
act = sac.act

# Defaults shared by SAC-N and EDAC in the official code (run_scripts/sac.py, arguments.py,
# trainers/q_learning/sac.py, policies/models/tanh_gaussian_policy.py) and in CORL.
_PAPER_DEFAULTS: dict[str, Any] = {
    "hidden_dims": (256, 256, 256),  # 3 hidden layers of 256 for actor and critics
    "num_qs": 10,  # --num_qs default; the paper tunes N per dataset
    "num_min_qs": None,  # min over all N in the target
    "actor_q": "min",  # the actor also maximizes the min over all N
    "actor_log_std_min": -5.0,  # LOG_SIG_MIN = -5 (not SAC's -20)
    "actor_log_std_max": 2.0,  # LOG_SIG_MAX = 2
    "actor_lr": 3e-4,  # --plr
    "critic_lr": 3e-4,  # --qlr
    "temperature_lr": 3e-4,  # α uses the policy learning rate
    "init_temperature": 1.0,  # log α initialized at 0
    "target_entropy_scale": 1.0,  # H̄ = -|A|
    "backup_entropy": True,  # deterministic_backup=False
    "utd_ratio": 1,
    "discount": 0.99,
    "tau": 5e-3,
}


def sac_n_config(num_qs: int = 10, **overrides: Any) -> sac.Config:
    """A `sac.Config` for SAC-N with the paper's MuJoCo defaults (An et al., 2021).

    N critics, min over all N in the target and in the actor objective, 3x256 networks,
    log-std clipped to [-5, 2], Adam 3e-4 everywhere, γ = 0.99, τ = 5e-3, automatic α with
    target entropy -|A| and initial α = 1. The paper tunes N per dataset (10 to 500 on the
    D4RL MuJoCo tasks); 10 is the official code's default. Use it with `hybridrl.agents.sac`::

        state = sac.init(edac.sac_n_config(num_qs=50), key, obs_dim, act_dim)
    """
    return sac.Config(**{**_PAPER_DEFAULTS, "num_qs": num_qs, **overrides})


@struct.dataclass
class Config(sac.Config):
    """EDAC hyperparameters: SAC-N's (see `sac_n_config`; every `sac.Config` field applies)
    plus the diversity weight ``eta`` (η), a traced leaf (sweeping it does not recompile).

    Defaults: the official code's MuJoCo settings with N = 10 and η = 1.0 (the value the
    paper uses on most D4RL MuJoCo datasets and CORL's default; the paper tunes N and η per
    dataset, and Adroit uses e.g. N = 20, η = 1000 with a 3e-5 policy learning rate).
    """

    hidden_dims: Sequence[int] = init_only((256, 256, 256))
    num_qs: int = init_only(10)
    actor_q: str = struct.field(pytree_node=False, default="min")
    actor_log_std_min: float = init_only(-5.0)
    eta: float = 1.0

    # The diversity term goes at a switch to SAC (`hybridrl.training.phases.SwitchAgent`).
    SWITCH_REMOVES: ClassVar[tuple[str, ...]] = ("eta",)


def sac_n(config: Config) -> sac.Config:
    """The SAC-N configuration underlying an EDAC config (every field but ``eta``)."""
    fields = {k: getattr(config, k) for k in sac.Config.__dataclass_fields__}
    return sac.Config(**fields)


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """SAC's networks and optimizers for an EDAC config (at least 2 critics)."""
    if not isinstance(config, Config):
        raise HybridRLError(f"edac.init needs an edac.Config, got {type(config).__name__}")
    if config.num_qs < 2:
        raise HybridRLError(f"EDAC needs at least 2 critics, got num_qs={config.num_qs}")
    return sac.init(config, key, observation_dim, action_dim)


def diversity_loss(state: State, params: Any, batch: Transitions, key: jax.Array) -> jax.Array:
    """ES: the ensemble gradient similarity of the critics ``params`` at the dataset pairs
    (s, a) of ``batch`` (differentiable in ``params``); ``key`` drives critic dropout."""

    def q_fn(actions: jax.Array) -> jax.Array:
        return sac.critic_apply(state, params, batch.observations, actions, key)

    grads = losses.ensemble_action_gradients(q_fn, batch.actions)
    return losses.edac_diversity_loss(grads)


def diversity_regularizer(
    state: State, params: Any, batch: Transitions, key: jax.Array
) -> tuple[jax.Array, Metrics]:
    """η · ES, the term EDAC adds to SAC's critic loss (a `sac.CriticRegularizer`)."""
    config = state.config
    if not isinstance(config, Config):
        raise HybridRLError(f"EDAC needs a state built from edac.Config, got {type(config)}")
    es = diversity_loss(state, params, batch, key)
    return config.eta * es, {"diversity_loss": es}


def critic_loss(
    state: State, params: Any, batch: Transitions, target: jax.Array, key: jax.Array
) -> tuple[jax.Array, Metrics]:
    """EDAC's critic loss: SAC's TD loss (summed over the N critics) + η · ES."""
    return sac.critic_loss(state, params, batch, target, key, diversity_regularizer)


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One EDAC update: `sac.update` with η · ES added to every critic step's loss."""
    return sac.update(state, batch, key, critic_regularizer=diversity_regularizer)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(q_probe=True, robustness_probe=True, minibatches_per_update=utd_minibatches)
