"""Cal-QL: Calibrated Offline RL Pre-Training for Efficient Online Fine-Tuning
(Nakamoto et al., NeurIPS 2023) — a preset of `hybridrl.agents.cql`.

Cal-QL is CQL whose regularizer pushes down Q at the policy's actions only as far as a
reference value V^μ(s) (Eq. 5 of the paper)::

    gap_i = E_s[ log( Σ_{a ~ U} exp(Q_i(s, a) - log μ(a))
                      + Σ_{a ~ π} exp(max(Q_i(s, a), V^μ(s)) - log π(a)) )
                 - Q_i(s, a_data) ]

with V^μ(s) the Monte-Carlo return of the dataset trajectory from s, read from
``batch.extras["mc_returns"]`` (`hybridrl.data.Dataset.with_mc_returns(gamma)`; for sparse
rewards pass ``sparse_reward=True``, as the official code does for AntMaze/Adroit). The bound
applies to the π(·|s) and π(·|s') columns, not the uniform ones, before log π is subtracted
(`hybridrl.core.losses.calql_bound`). Everything else is `cql`: this module only changes the
defaults and refuses batches without Monte-Carlo returns.

``enable_calql`` is a traced leaf of the config: ``dataclasses.replace(state,
config=dataclasses.replace(state.config, enable_calql=False))`` turns the calibration off
(plain CQL) without recompiling the update. The official code keeps it on during online
fine-tuning and computes Monte-Carlo returns for each collected trajectory before adding it
to the replay buffer, so online transitions need ``extras["mc_returns"]`` too (or a
placeholder with calibration switched off).
"""

from __future__ import annotations

import jax
from flax import struct

from hybridrl.agents import cql
from hybridrl.agents.cql import Metrics, State, act, init
from hybridrl.agents.spec import AgentSpec, init_only, utd_minibatches
from hybridrl.data.transitions import Transitions
from hybridrl.types import HybridRLError

__all__ = ["Config", "State", "act", "init", "update"]


@struct.dataclass
class Config(cql.Config):
    """`cql.Config` with Cal-QL's defaults (nakamotoo/Cal-QL ``ConservativeSAC``):
    calibration on, the max-target backup over ``num_samples`` next actions, and the actor
    and temperature learning rate 1e-4 (CQL's JaxCQL MuJoCo default is 3e-4).
    The official scripts use ``cql_alpha=5`` with ``lagrange=True, target_action_gap=0.8``
    on AntMaze and ``cql_alpha=1`` on Adroit/Kitchen."""

    max_target_backup: bool = struct.field(pytree_node=False, default=True)
    # nakamotoo/Cal-QL @ ac6eafe JaxCQL/conservative_sac.py L30: policy_lr 1e-4 (actor, log α)
    actor_lr: float = init_only(1e-4)
    temperature_lr: float = init_only(1e-4)
    enable_calql: bool = True


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """`cql.update`; the batch must carry ``extras["mc_returns"]``."""
    if "mc_returns" not in batch.extras:
        raise HybridRLError(
            "Cal-QL needs Monte-Carlo returns in batch.extras['mc_returns'] "
            "(use Dataset.with_mc_returns(gamma) for offline data)"
        )
    return cql.update(state, batch, key)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(
    q_probe=True,
    robustness_probe=True,
    needs_mc_returns=lambda config: True,
    minibatches_per_update=utd_minibatches,
)
