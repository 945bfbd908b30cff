"""Robustness metrics of a Gaussian actor and a Q-ensemble under small state perturbations.

Pure functions, for any agent whose actor gives a diagonal Gaussian (``mean``, ``log_std``;
the pre-tanh one of a tanh-Gaussian) and whose critic gives one value per ensemble member.
They measure what RO2O (Wen et al., 2024) regularises, so that its claim ("smoother policy
and value under perturbed states") and any other agent's can be checked on the same scale:

- policy sensitivity ``E_s max_k KL(π(·|s) ‖ π(·|s + δ_k))``: how far the worst of K random
  perturbations moves the action distribution (one direction of the KL; RO2O's loss uses
  the symmetric sum);
- value sensitivity ``E_{s,k,i} |Q_i(s + δ_k, a) - Q_i(s, a)|`` at the dataset action a;
- ensemble disagreement: ``E_s std_i Q_i(s, a)`` at the dataset actions and at the
  policy's deterministic actions (RO2O logs the latter as ``q_values_std``, with sampled
  actions); ``std`` is the unbiased (N - 1) one, as ``torch.std``'s default.

δ_k ~ U[-ε, ε]^D, K per call, shared by every state (`hybridrl.core.perturbations`), in the
units of the observations the agent sees (standardised ones when the recipe normalises).
`agent_robustness` evaluates all four for an agent that declares ``robustness_probe`` in its
`AgentSpec`; the runner logs them at every evaluation when the run setting
``robustness_eps`` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp

from hybridrl.core.losses import gaussian_kl
from hybridrl.core.perturbations import perturb, repeat_rows, uniform_perturbations
from hybridrl.types import Array, HybridRLError

# K of the metrics: RO2O's number of perturbations per state (``sample_size``).
NUM_PERTURB = 20
METRIC_NAMES = ("policy_sensitivity", "value_sensitivity", "q_std_data", "q_std_policy")


def policy_sensitivity(
    mean: Array, log_std: Array, mean_perturbed: Array, log_std_perturbed: Array
) -> jax.Array:
    """``mean_b max_k KL(N(mean_b, σ_b) ‖ N(mean_bk, σ_bk))`` (KL summed over actions).

    Args:
        mean, log_std: the Gaussian at the clean states, (B, A).
        mean_perturbed, log_std_perturbed: at the perturbed states, (B, K, A).
    """
    kl = gaussian_kl(mean[:, None], log_std[:, None], mean_perturbed, log_std_perturbed)
    return jnp.mean(jnp.max(kl, axis=-1))


def value_sensitivity(q_clean: Array, q_perturbed: Array) -> jax.Array:
    """``mean |Q_i(s + δ_k, a) - Q_i(s, a)|`` over members, states and perturbations.

    Args:
        q_clean: (N, B); q_perturbed: (N, B, K).
    """
    return jnp.mean(jnp.abs(jnp.asarray(q_perturbed) - jnp.asarray(q_clean)[..., None]))


def ensemble_std(q_values: Array) -> jax.Array:
    """``mean_b std_i Q_i(s_b, a_b)``, the unbiased std over the N members (N >= 2), (N, B)."""
    q_values = jnp.asarray(q_values)
    if q_values.shape[0] < 2:
        raise HybridRLError(f"an ensemble std needs at least 2 members, got {q_values.shape[0]}")
    return jnp.mean(jnp.std(q_values, axis=0, ddof=1))


def robustness_metrics(
    actor: Callable[[jax.Array], Any],
    critic: Callable[[jax.Array, jax.Array], jax.Array],
    observations: Array,
    actions: Array,
    key: jax.Array,
    epsilon: float | Array,
    num_perturb: int = NUM_PERTURB,
) -> dict[str, jax.Array]:
    """The four metrics of this module on one batch.

    Args:
        actor: observations (M, D) -> a distribution with ``mean`` and ``log_std`` (M, A)
            (pre-tanh for a tanh-Gaussian) and ``mode()`` (the deterministic action).
        critic: (observations, actions) -> Q per member, (N, M).
        observations, actions: dataset states and actions, (B, D) and (B, A).
        key: draws the K perturbations (one set, shared by every state).
        epsilon: ε of U[-ε, ε]; may be traced.
        num_perturb: K (static).
    """
    obs, acts = jnp.asarray(observations), jnp.asarray(actions)
    b, d = obs.shape
    k = num_perturb
    noised = perturb(obs, uniform_perturbations(key, k, d, epsilon)).reshape(b * k, d)
    clean, pert = actor(obs), actor(noised)
    a = clean.mean.shape[-1]
    q_clean = critic(obs, acts)
    q_noised = critic(noised, repeat_rows(acts, k)).reshape(-1, b, k)
    return {
        "policy_sensitivity": policy_sensitivity(
            clean.mean,
            jnp.broadcast_to(clean.log_std, clean.mean.shape),
            pert.mean.reshape(b, k, a),
            jnp.broadcast_to(pert.log_std, pert.mean.shape).reshape(b, k, a),
        ),
        "value_sensitivity": value_sensitivity(q_clean, q_noised),
        "q_std_data": ensemble_std(q_clean),
        "q_std_policy": ensemble_std(critic(obs, clean.mode())),
    }


@cache
def _agent_fn(agent: ModuleType, num_perturb: int) -> Any:
    def metrics(
        state: Any, obs: jax.Array, acts: jax.Array, key: jax.Array, eps: jax.Array
    ) -> dict[str, jax.Array]:
        def actor(o: jax.Array) -> Any:
            return state.actor.apply_fn({"params": state.actor.params}, o)

        def critic(o: jax.Array, a: jax.Array) -> jax.Array:
            return state.critic.apply_fn({"params": state.critic.params}, o, a)

        return robustness_metrics(actor, critic, obs, acts, key, eps, num_perturb)

    return jax.jit(metrics)


def agent_robustness(
    agent: ModuleType,
    state: Any,
    observations: Array,
    actions: Array,
    key: jax.Array,
    epsilon: float,
    num_perturb: int = NUM_PERTURB,
) -> dict[str, float]:
    """`robustness_metrics` of an agent module's state (its ``SPEC.robustness_probe`` says
    that ``state.actor`` and ``state.critic`` have the shapes these need), as floats. One
    compiled program per agent module and K; ε is traced."""
    spec = getattr(agent, "SPEC", None)
    if spec is None or not getattr(spec, "robustness_probe", False):
        raise HybridRLError(
            f"agent module {agent.__name__} does not declare robustness_probe in its SPEC"
        )
    out = _agent_fn(agent, num_perturb)(
        state,
        jnp.asarray(observations, jnp.float32),
        jnp.asarray(actions, jnp.float32),
        key,
        jnp.float32(epsilon),
    )
    return {name: float(v) for name, v in out.items()}
