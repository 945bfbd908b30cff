"""RO2O (Wen, Yu, Yang, Chen, Bai, Wang, 2024: "Towards Robust Offline-to-Online Reinforcement
Learning via Uncertainty and Smoothness", arXiv 2309.16973).

RO2O is SAC-N (`hybridrl.agents.edac.sac_n_config`: N critics, min over all N in the target
and the actor) plus three regularisers on states perturbed by δ_k ~ U[-ε, ε]^D, k = 1..K.
Each loss call draws its own K perturbations, shared by every state of the batch
(`hybridrl.core.perturbations`), and the "adversarial" one is the max over those K::

    L_Q = sum_i E_D[(Q_i(s, a) - y)^2]                                    (SAC-N's TD loss)
          + η1 · E_s max_k mean_i ℓ_τ(Q_i(s + δ_k, a) - Q_i(s, a))          value smoothness
          + η2 · mean_{i, s, k} (Q_i(ŝ, â) - sg[Q_i(ŝ, â) - α_u std_j Q_j(ŝ, â)])^2   OOD
    L_π = E[α log π(ã|s) - min_i Q_i(s, ã)]                               (SAC-N's actor)
          + η3 · E_s max_k [KL(π(s) ‖ π(s + δ_k)) + KL(π(s + δ_k) ‖ π(s))]   policy smoothness

with ``ℓ_τ(Δ) = (1 - τ) max(Δ, 0)^2 + τ min(Δ, 0)^2`` (τ = 0.2: upward deviations cost more),
ŝ = s + δ_k for every k with its own draw, â ~ π(·|ŝ), std the unbiased standard deviation
over the N heads, the KL between the actor's Gaussians before the tanh, and α_u falling by
``ood_reg_decay`` per critic update from ``ood_reg_init`` to ``ood_reg_min``
(`hybridrl.core.schedules.linear_anneal`; the step is the critic optimizer's count, saved in
every checkpoint, so a resumed run continues the schedule exactly). The terms are in
`hybridrl.core.losses` (`value_smoothness_loss`, `ood_uncertainty_loss`,
`policy_smoothness_loss`).

This module is a thin layer over SAC, as EDAC is: `Config` extends `sac.Config` with the
traced weights, radii and schedule constants and the static ``num_perturb``; `init`, `act`
and `State` are SAC's; `update` is `sac.update` with `critic_regularizer` (value smoothness +
OOD) and `actor_regularizer` (policy smoothness).

Facts checked in the official code, BattleWen/RO2O @ d066702
(``algorithms/offline/ro2o_mujoco.py``, a CORL SAC-N fork). Deviations, all in
docs/agents/ro2o.md:

- order of the updates: SAC's here (critics, then actor and α on the updated critics); the
  official ``update`` steps α, then the actor, then the critics (EDAC's order);
- α's loss is written in α rather than log α (same fixed point; `losses.temperature_loss`);
- networks use Flax/Xavier initialisation instead of the EDAC one (hidden biases 0.1, last
  layers U(±3e-3) and U(±1e-3));
- the OOD term uses the actor's parameters at the time of the critic step, as the official
  code does, but as constants (the official code lets gradient reach the actor's ``.grad``,
  which its next ``zero_grad`` discards: the same update).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from hybridrl.agents import sac
from hybridrl.agents.sac import Metrics
from hybridrl.agents.spec import AgentSpec, utd_minibatches
from hybridrl.core import losses
from hybridrl.core.perturbations import perturb, repeat_rows, uniform_perturbations
from hybridrl.core.schedules import linear_anneal
from hybridrl.data.transitions import Transitions
from hybridrl.types import HybridRLError

State = sac.State
act = sac.act

# Fields RO2O adds to sac.Config: they go at a switch to SAC (`SwitchAgent`), which is what
# the official online phase trains (the terms are computed there but not applied).
RO2O_FIELDS = (
    "num_perturb",
    "beta_qsmooth",
    "beta_ood",
    "beta_policy",
    "eps_q",
    "eps_ood",
    "eps_policy",
    "q_smooth_tau",
    "ood_reg_init",
    "ood_reg_min",
    "ood_reg_decay",
)


@struct.dataclass
class Config(sac.Config):
    """RO2O hyperparameters: SAC-N's (`hybridrl.agents.edac.sac_n_config`: 3x256, N = 10, min
    over all N, log σ in [-5, 2], Adam 3e-4, γ 0.99, τ 5e-3, α from 1 towards -|A|; every
    `sac.Config` field applies) and the regularisers'. Defaults: the official MuJoCo command
    (README; ``ro2o_mujoco.py`` ``TrainConfig`` at d066702).

    Attributes:
        num_perturb: K, perturbations per state (``sample_size``, 20); static (a shape).
        beta_qsmooth: η1, weight of the value smoothness (1e-4, hard-coded in
            ``get_qf_loss``; the README's ``beta_Qsmooth``).
        beta_ood: η2, weight of the OOD penalty (``beta_ood``, 0.1 on MuJoCo).
        beta_policy: η3, weight of the policy smoothness (``beta_policy``, 1.0).
        eps_q, eps_ood, eps_policy: ε of the perturbations of each term (``q_smooth_eps``,
            ``ood_smooth_eps``, ``policy_smooth_eps``: 0.01 each), in the units of the
            observations the agent sees (standardised ones in the ``ro2o`` recipe).
        q_smooth_tau: τ of the asymmetric smoothness (0.2, hard-coded in ``get_qf_loss``).
        ood_reg_init, ood_reg_min, ood_reg_decay: α_u starts at ``ood_reg_init`` (1.0) and
            falls by ``ood_reg_decay`` (5e-7) per critic update to ``ood_reg_min`` (0.1).
    """

    hidden_dims: Sequence[int] = struct.field(pytree_node=False, default=(256, 256, 256))
    num_qs: int = struct.field(pytree_node=False, default=10)
    actor_q: str = struct.field(pytree_node=False, default="min")
    actor_log_std_min: float = struct.field(pytree_node=False, default=-5.0)
    num_perturb: int = struct.field(pytree_node=False, default=20)
    beta_qsmooth: float = 1e-4
    beta_ood: float = 0.1
    beta_policy: float = 1.0
    eps_q: float = 0.01
    eps_ood: float = 0.01
    eps_policy: float = 0.01
    q_smooth_tau: float = 0.2
    ood_reg_init: float = 1.0
    ood_reg_min: float = 0.1
    ood_reg_decay: float = 5e-7

    SWITCH_REMOVES: ClassVar[tuple[str, ...]] = RO2O_FIELDS


def _config(state: State) -> Config:
    config = state.config
    if not isinstance(config, Config):
        raise HybridRLError(f"RO2O needs a state built from ro2o.Config, got {type(config)}")
    return config


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """SAC's networks and optimizers for an RO2O config (at least 2 critics: the OOD term
    needs an ensemble standard deviation)."""
    if not isinstance(config, Config):
        raise HybridRLError(f"ro2o.init needs an ro2o.Config, got {type(config).__name__}")
    if config.num_qs < 2:
        raise HybridRLError(f"RO2O needs at least 2 critics, got num_qs={config.num_qs}")
    if config.num_perturb < 1:
        raise HybridRLError(f"num_perturb must be positive, got {config.num_perturb}")
    return sac.init(config, key, observation_dim, action_dim)


def ood_weight(state: State) -> jax.Array:
    """α_u at this update: ``max(ood_reg_init - ood_reg_decay * t, ood_reg_min)`` with t the
    critic updates taken so far (a pure function of the state)."""
    cfg = _config(state)
    return linear_anneal(state.critic.step, cfg.ood_reg_init, cfg.ood_reg_decay, cfg.ood_reg_min)


def critic_regularizer(
    state: State, params: Any, batch: Transitions, key: jax.Array
) -> tuple[jax.Array, Metrics]:
    """η1 · value smoothness + η2 · OOD penalty (a `sac.CriticRegularizer`), differentiable in
    the critic ``params``; two fresh perturbation sets, one per term."""
    cfg = _config(state)
    obs, actions = batch.observations, batch.actions
    b, d = obs.shape
    k = cfg.num_perturb
    k_q, k_ood, k_pi, k_drop = jax.random.split(jax.random.fold_in(key, 0x520), 4)

    # Value smoothness at the dataset actions.
    noised = perturb(obs, uniform_perturbations(k_q, k, d, cfg.eps_q)).reshape(b * k, d)
    q_noised = sac.critic_apply(state, params, noised, repeat_rows(actions, k), k_drop)
    q_clean = sac.critic_apply(state, params, obs, actions, k_drop)
    smooth = losses.value_smoothness_loss(q_clean, q_noised.reshape(-1, b, k), cfg.q_smooth_tau)

    # OOD penalty at the policy's actions in perturbed states (actor held constant).
    ood_obs = perturb(obs, uniform_perturbations(k_ood, k, d, cfg.eps_ood)).reshape(b * k, d)
    dist = state.actor.apply_fn({"params": state.actor.params}, ood_obs)
    ood_actions = jax.lax.stop_gradient(dist.sample(k_pi))
    q_ood = sac.critic_apply(state, params, ood_obs, ood_actions, k_drop)
    alpha_u = ood_weight(state)
    ood = losses.ood_uncertainty_loss(q_ood, alpha_u)

    metrics = {
        "q_smooth_loss": smooth,
        "ood_loss": ood,
        "ood_weight": alpha_u,
        "q_ood_std": jnp.mean(jnp.std(q_ood, axis=0, ddof=1)),
    }
    return cfg.beta_qsmooth * smooth + cfg.beta_ood * ood, metrics


def actor_regularizer(
    state: State, params: Any, batch: Transitions, key: jax.Array
) -> tuple[jax.Array, Metrics]:
    """η3 · policy smoothness (a `sac.ActorRegularizer`), differentiable in the actor
    ``params``: the symmetric KL between the pre-tanh Gaussians at s and s + δ_k, max over k."""
    cfg = _config(state)
    obs = batch.observations
    b, d = obs.shape
    k = cfg.num_perturb
    noised = perturb(obs, uniform_perturbations(key, k, d, cfg.eps_policy)).reshape(b * k, d)
    clean = state.actor.apply_fn({"params": params}, obs)
    pert = state.actor.apply_fn({"params": params}, noised)
    a = clean.mean.shape[-1]
    kl = losses.policy_smoothness_loss(
        clean.mean,
        clean.log_std,
        pert.mean.reshape(b, k, a),
        jnp.broadcast_to(pert.log_std, pert.mean.shape).reshape(b, k, a),
    )
    return cfg.beta_policy * kl, {"policy_smooth_loss": kl}


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One RO2O update: `sac.update` with the critic and actor regularisers hooked in."""
    _config(state)
    return sac.update(
        state,
        batch,
        key,
        critic_regularizer=critic_regularizer,
        actor_regularizer=actor_regularizer,
    )


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(q_probe=True, robustness_probe=True, minibatches_per_update=utd_minibatches)
