"""Paper-level loss terms shared by the agents, each a pure function of arrays.

Conventions:

* Functions named ``*_loss`` return a scalar: the mean over every element (batch, ensemble
  members, samples) unless the docstring says otherwise. Other functions (`td_target`,
  `awr_weights`, `calql_bound`) are elementwise.
* Targets and weights are wrapped in ``stop_gradient`` inside the function where the paper's
  update treats them as constants, so an agent cannot forget it; each docstring says which.
* Numeric hyperparameters (discount, expectile, temperatures, alpha, tau, ...) may be traced
  arrays: nothing here branches on their values in Python, so sweeping them never recompiles.
* Equations use s, a for dataset states/actions, s' for next states, pi for the learned
  policy, N for ensemble size, B for batch size, A for action dimension, M for sampled actions.

`docs/losses.md` lists every term with its equation and source.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from hybridrl.types import Array, HybridRLError

_sg = jax.lax.stop_gradient


# ----------------------------------------------------------------------------- TD learning
def td_target(
    rewards: Array, terminals: Array, next_values: Array, discount: float | Array
) -> jax.Array:
    """One-step TD target ``y = r + gamma * (1 - terminal) * V(s')`` (no gradient).

    Only ``terminals`` stop bootstrapping. A time-out (``Transitions.timeouts``) cuts the
    episode but s' is not terminal: the true return continues past it, so the target must
    still bootstrap (Pardo et al., 2018, "Time Limits in Reinforcement Learning"). Timeouts
    therefore never enter this function.

    Args:
        rewards, terminals: (B,), terminals as 0/1 floats.
        next_values: V(s') or Q(s', a'), (B,) or broadcastable with a leading ensemble axis
            (N, B).
        discount: gamma.
    """
    return _sg(rewards + discount * (1.0 - terminals) * next_values)


def polyak_update(target_params: Array, online_params: Array, tau: float | Array) -> Array:
    """Soft target update ``theta' <- tau * theta + (1 - tau) * theta'`` over a pytree.

    (Lillicrap et al., 2016, DDPG; ``tau=0.005`` in SAC/TD3.) Delegates to
    ``optax.incremental_update``; ``tau`` may be traced.
    """
    return optax.incremental_update(online_params, target_params, tau)


# ----------------------------------------------------------------------------- IQL / AWAC
def expectile_loss(diff: Array, expectile: float | Array) -> jax.Array:
    """Expectile regression ``mean(|tau - 1(u < 0)| * u^2)`` with ``u = Q(s, a) - V(s)``.

    IQL value loss (Kostrikov et al., 2022, Eq. 5): with tau > 0.5, positive errors (Q above
    V) weigh more, so V approaches an upper expectile of Q over dataset actions. ``diff``
    must be Q - V (not V - Q); Q comes from the target critic and should carry no gradient.
    """
    weight = jnp.where(diff < 0, 1.0 - expectile, expectile)
    return jnp.mean(weight * jnp.square(diff))


def awr_weights(
    advantages: Array, inverse_temperature: float | Array, max_weight: float | Array = 100.0
) -> jax.Array:
    """Advantage weights ``min(exp(beta * A), max_weight)`` (no gradient), elementwise.

    IQL policy extraction (Kostrikov et al., 2022, Eq. 7) and AWAC (Nair et al., 2020) weight
    the log-likelihood of dataset actions by ``exp(beta * (Q - V))``. IQL's official code clips
    the weight at 100 to bound the variance; AWAC normalizes by the batch instead (softmax),
    which callers can do with ``max_weight=jnp.inf`` and their own normalization.
    ``exp`` may overflow to inf before the clip: the min still returns ``max_weight``.
    ``inverse_temperature`` may be an array that broadcasts with ``advantages``: FamO2O
    weights each sample with its own β (`hybridrl.agents.famo2o.family_weights`).
    """
    return _sg(jnp.minimum(jnp.exp(inverse_temperature * advantages), max_weight))


def awr_actor_loss(log_probs: Array, weights: Array) -> jax.Array:
    """Weighted behaviour cloning ``-mean(w * log pi(a|s))`` (IQL Eq. 7, AWAC); ``weights``
    from `awr_weights` are constants."""
    return -jnp.mean(_sg(weights) * log_probs)


# ----------------------------------------------------------------------------- RIQL
def huber_loss(diff: Array, delta: float | Array) -> jax.Array:
    """Huber loss in RIQL's scaling, ``mean(l_delta(u))`` with

        l_delta(u) = u^2 / (2 delta)   if |u| < delta,
                     |u| - delta / 2   otherwise,

    i.e. the classical Huber loss divided by delta (PyTorch's ``SmoothL1Loss(beta=delta)``).
    RIQL's critic loss (Yang et al., 2024, Eq. 7; YangRui2015/RIQL @ cc07d81, ``RIQL.py``
    L261-266, where ``delta = 1 / sigma^2``) on ``u = y - Q(s, a)``: quadratic near 0 with
    gradient ``u / delta`` (the MSE gradient ``u`` divided by delta), linear beyond delta with
    gradient ``sign(u)`` (bounded by 1), so heavy-tailed targets from corrupted transitions
    pull the critics with bounded force. ``diff`` carries the gradient the caller wants (the
    target inside it should already be a constant); ``delta`` may be traced.
    """
    absolute = jnp.abs(diff)
    elementwise = jnp.where(
        absolute < delta, 0.5 * jnp.square(diff) / delta, absolute - 0.5 * delta
    )
    return jnp.mean(elementwise)


def ensemble_quantile(q_values: Array, quantile: float | Array) -> jax.Array:
    """The ``quantile``-quantile over the leading ensemble axis, linearly interpolated.

    RIQL's value target (Yang et al., 2024, Eq. 6; YangRui2015/RIQL @ cc07d81, ``RIQL.py``
    L487: ``torch.quantile(target_q_all, quantile, dim=0)``, whose default interpolation is
    "linear", as ``jnp.quantile``'s): with sorted members q_(0) <= ... <= q_(N-1) and
    ``h = quantile * (N - 1)``, the value ``q_(floor h) + (h - floor h) (q_(ceil h) -
    q_(floor h))``. ``quantile = 0`` is the ensemble min, 0.5 the median, 1 the max. Elementwise
    over the remaining axes; no stop-gradient (as `networks.ensemble.ensemble_min`: a caller
    that uses it as a target wraps it). ``quantile`` may be traced.

    Args:
        q_values: (N, ...) values of the N members.
        quantile: alpha in [0, 1].
    """
    return jnp.quantile(q_values, quantile, axis=0)


# ----------------------------------------------------------------------------- CQL / Cal-QL
def cql_random_log_density(action_dim: int) -> float:
    """log-density of U([-1, 1]^A): ``A * log(1/2)`` (CQL Appendix F, official code)."""
    return action_dim * math.log(0.5)


def cql_logsumexp_penalty(
    q_data: Array,
    q_ood: Array,
    log_densities: Array | None = None,
    temperature: float | Array = 1.0,
    clip_diff_min: float | Array = -jnp.inf,
    clip_diff_max: float | Array = jnp.inf,
) -> jax.Array:
    """CQL(H) gap ``mean(clip(T * logsumexp_j((Q(s, a_j) - log mu(a_j|s)) / T) - Q(s, a)))``.

    The regularizer of CQL(H) (Kumar et al., 2020, Eq. 4) is
    ``E_s[log sum_a exp Q(s, a)] - E_{(s,a)~D}[Q(s, a)]``. For continuous actions the
    log-partition is estimated by importance sampling (Appendix F), as the official code does
    with ``cql_importance_sample=True``: per state s, M actions from each of

    1. ``U([-1, 1]^A)``, log mu = `cql_random_log_density` (A log 1/2);
    2. ``pi(.|s)``, log mu = log pi(a|s);
    3. ``pi(.|s')`` (next states' policy actions), log mu = log pi(a'|s'),

    all evaluated by the critic at the *current* state s, concatenated on the last axis
    (M_total = 3 M; ``cql_n_actions = 10`` in the official code). Like the official code we do
    not subtract ``log M_total``: it only shifts the gap by a constant, which matters when the
    gap is compared to a Lagrange ``target_action_gap``. The variant without importance
    sampling (which also concatenates Q(s, a_data)) is not provided.

    Args:
        q_data: Q(s, a) at dataset actions, (..., B); a leading ensemble axis is allowed.
        q_ood: Q(s, a_j) at the sampled actions, (..., B, M_total). For Cal-QL pass the
            policy-action columns through `calql_bound` first.
        log_densities: log mu(a_j | s), broadcastable to ``q_ood``, or None (plain
            logsumexp). Treated as constants (the official code detaches log pi).
        temperature: T (``cql_temp``, 1 in the paper).
        clip_diff_min, clip_diff_max: per-state clip of the gap before averaging
            (``cql_clip_diff_min/max`` of the official code; +-inf by default).

    Returns:
        The scalar gap averaged over states (and ensemble members). Multiply it by the CQL
        weight (alpha, ``cql_min_q_weight``) in the critic loss.
    """
    logits = q_ood if log_densities is None else q_ood - _sg(log_densities)
    ood = temperature * jax.nn.logsumexp(logits / temperature, axis=-1)
    return jnp.mean(jnp.clip(ood - q_data, clip_diff_min, clip_diff_max))


def calql_bound(q_pi: Array, mc_returns: Array, enabled: bool | Array = True) -> jax.Array:
    """Calibrated push-down values ``max(Q(s, a ~ pi), V^mu(s))`` (Cal-QL, Nakamoto et al., 2023).

    Cal-QL replaces Q at the policy's sampled actions in the CQL regularizer with
    ``max(Q, V^mu(s))``, V^mu estimated by the Monte-Carlo return of the dataset trajectory
    (`hybridrl.data.transitions.calql_mc_returns`, ``extras['mc_returns']``): once Q falls to
    the reference value it is no longer pushed down. The official code bounds the
    current-state and next-state policy-action columns, not the uniform random ones, and
    only then subtracts log pi.

    Args:
        q_pi: Q at policy actions, e.g. (B, M) or (N, B, M).
        mc_returns: (B,) Monte-Carlo returns, already shaped to broadcast against ``q_pi``
            (``mc_returns[:, None]`` for (B, M) or (N, B, M)). Constant (no gradient).
        enabled: Cal-QL (True) or plain CQL (False, identity). May be a traced bool, so one
            compiled update serves both.
    """
    return jnp.where(enabled, jnp.maximum(q_pi, _sg(mc_returns)), q_pi)


def cql_alpha_prime(log_alpha_prime: Array) -> jax.Array:
    """alpha' = clip(exp(log alpha'), 0, 1e6), the official code's Lagrange multiplier."""
    return jnp.clip(jnp.exp(log_alpha_prime), 0.0, 1e6)


def cql_alpha_lagrange_loss(
    log_alpha_prime: Array, penalty_gap: Array, target_action_gap: float | Array
) -> jax.Array:
    """Loss of CQL's Lagrange multiplier: ``-alpha' * (gap - target_action_gap)``.

    CQL-Lagrange (Kumar et al., 2020, Appendix F) solves
    ``min_Q max_{alpha' >= 0} alpha' * (gap(Q) - tau) + TD loss``. The critic minimizes
    ``stop_gradient(alpha') * w * (gap - tau)`` (plus its TD loss); this function is the
    multiplier's side: gradient *descent* on ``-alpha' * (gap - tau)`` raises alpha' while
    the gap exceeds the target tau and lowers it otherwise. The gap is a constant here.

    Sign and scale conventions: ``penalty_gap`` is the unweighted `cql_logsumexp_penalty`
    (the JAX CQL/Cal-QL code multiplies ``alpha' * cql_min_q_weight * (gap - tau)`` in the
    critic, and its multiplier loss carries the same factor w: multiply this loss by w to
    match it exactly). The original PyTorch code compares the *weighted* gap ``w * gap`` to tau
    instead; pass ``w * gap`` to reproduce it. With two critics the official loss averages the
    per-critic terms, which equals passing the gap averaged over critics.
    """
    alpha_prime = cql_alpha_prime(log_alpha_prime)
    return -alpha_prime * (_sg(jnp.mean(penalty_gap)) - target_action_gap)


# ----------------------------------------------------------------------------- SAC
def sac_actor_loss(log_probs: Array, q_values: Array, alpha: float | Array) -> jax.Array:
    """SAC policy loss ``mean(alpha * log pi(a~|s) - Q(s, a~))``, a~ ~ pi reparameterized.

    (Haarnoja et al., 2018a/b.) ``alpha`` is a constant here. ``q_values`` is whatever the
    agent uses: min of two critics (SAC), mean of the ensemble (REDQ/RLPD), min of N (SAC-N);
    shapes must broadcast with ``log_probs`` (B,).
    """
    return jnp.mean(_sg(alpha) * log_probs - q_values)


def temperature_loss(alpha: Array, log_probs: Array, target_entropy: float | Array) -> jax.Array:
    """Automatic entropy tuning ``mean(-alpha * (log pi(a|s) + H_target))``, log pi constant.

    (Haarnoja et al., 2018b, "SAC Algorithms and Applications", Sec. 5.) Descending it raises
    alpha when the policy entropy ``-E[log pi]`` is below the target and lowers it otherwise.
    Pass ``alpha = exp(log_alpha)`` (jaxrl/RLPD; the output of
    `hybridrl.networks.heads.Temperature`) or ``log_alpha`` itself (the softlearning / CQL
    code): the loss is linear in its first argument, so both have the same fixed point; the
    gradient with respect to log alpha differs by the factor alpha.
    """
    return -jnp.mean(alpha * (_sg(log_probs) + target_entropy))


def default_target_entropy(action_dim: int, scale: float = 1.0) -> float:
    """Target entropy ``-scale * A``: ``scale=1`` is SAC's heuristic (Haarnoja et al., 2018b);
    RLPD (Ball et al., 2023) and jaxrl use ``scale=0.5``, i.e. ``-A/2``."""
    return -scale * float(action_dim)


# ----------------------------------------------------------------------------- TD3+BC / BC
def td3_bc_actor_loss(
    q_pi: Array, pi_actions: Array, data_actions: Array, alpha: float | Array = 2.5
) -> jax.Array:
    """TD3+BC actor loss ``-lambda * mean(Q(s, pi(s))) + mean((pi(s) - a)^2)``.

    Fujimoto & Gu (2021, Eq. 3) with ``lambda = alpha / mean|Q|``, the normalizer a constant
    (``.detach()``). Following the official code (not the paper's Q(s_i, a_i)), mean|Q| is
    taken over the same Q(s, pi(s)) values as the first term, and the BC term is
    ``F.mse_loss(pi, action)``: a mean over batch *and* action dimensions, not a sum over
    actions. The normalizer is floored at 1e-6 so an all-zero Q cannot produce NaN.
    """
    lam = alpha / jnp.maximum(_sg(jnp.mean(jnp.abs(q_pi))), 1e-6)
    return -lam * jnp.mean(q_pi) + jnp.mean(jnp.square(pi_actions - data_actions))


def squared_action_distance(a: Array, b: Array) -> jax.Array:
    """Per-row ``||a - b||^2``, summed over action dimensions (shape (B,)): ReBRAC's BC
    penalty (Tarasov et al., 2023; DT6A/ReBRAC @785aea7 ``rebrac.py`` ``update_actor`` and
    ``update_critic``: ``((x - y) ** 2).sum(-1)``)."""
    return jnp.sum(jnp.square(a - b), axis=-1)


def rebrac_actor_loss(
    q_pi: Array, pi_actions: Array, data_actions: Array, beta: float | Array
) -> jax.Array:
    """ReBRAC actor loss ``mean(beta * ||pi(s) - a||^2 - lambda * Q(s, pi(s)))``.

    Tarasov et al. (2023, Eq. 2): ``lambda = 1 / mean|Q(s, pi(s))|`` is a constant
    (stop-gradient; the official ``normalize_q``), Q is the minimum over the critics (the
    caller passes it), and the BC term is summed over action dimensions, then averaged over the
    batch. Unlike TD3+BC there is no alpha = 2.5: beta weighs the BC term instead. The
    normalizer is floored at 1e-6 so an all-zero Q cannot produce NaN (the official code has
    no floor).
    """
    lam = 1.0 / jnp.maximum(_sg(jnp.mean(jnp.abs(q_pi))), 1e-6)
    return jnp.mean(beta * squared_action_distance(pi_actions, data_actions) - lam * q_pi)


def bc_mse_loss(pred: Array, target: Array) -> jax.Array:
    """Deterministic behaviour cloning ``mean((pi(s) - a)^2)`` over batch and action dims."""
    return jnp.mean(jnp.square(pred - target))


def bc_nll_loss(log_probs: Array) -> jax.Array:
    """Stochastic behaviour cloning ``-mean(log pi(a|s))`` over dataset pairs."""
    return -jnp.mean(log_probs)


# ----------------------------------------------------------------------------- EDAC
def ensemble_action_gradients(q_fn: Callable[[jax.Array], jax.Array], actions: Array) -> jax.Array:
    """Per-member action gradients ``grad_a Q_i(s_b, a_b)``, shape (N, B, A).

    ``q_fn`` maps actions (B, A) to ensemble values (N, B) (states and parameters closed
    over). Because Q_i(s_b, a_b) depends only on a_b, the Jacobian of the batch sum
    ``sum_b Q_i(s_b, a_b)`` with respect to ``actions`` is exactly the per-sample gradient
    (the same trick as EDAC's ``autograd.grad(qs.sum(), actions)``), at N reverse passes.
    Differentiable again with respect to the parameters (for `edac_diversity_loss`).
    """
    return jax.jacrev(lambda a: jnp.sum(q_fn(a), axis=-1))(actions)


def edac_diversity_loss(action_grads: Array, eps: float = 1e-10) -> jax.Array:
    """EDAC ensemble-gradient diversity ``mean_b sum_{i != j} <g_i, g_j> / (N - 1)``.

    An et al. (2021, EDAC) penalize aligned action gradients of the N critics,
    ``(1 / (N - 1)) sum_{1 <= i != j <= N} <grad_a Q_i(s, a), grad_a Q_j(s, a)>`` at dataset
    pairs. Normalization, as in the official code (snu-mllab/EDAC) and CORL: each gradient is
    divided by ``||g_i||_2 + 1e-10`` (so the inner products are cosine similarities), the sum
    runs over ordered pairs (each unordered pair counted twice), divided by N - 1 and averaged
    over the batch. Range: [-N, N]; two identical critics give 2 per sample.

    Args:
        action_grads: (N, B, A), e.g. from `ensemble_action_gradients`.
        eps: added to each norm.
    """
    n = action_grads.shape[0]
    if n < 2:
        raise HybridRLError(f"the diversity loss needs at least 2 critics, got {n}")
    unit = action_grads / (jnp.linalg.norm(action_grads, axis=-1, keepdims=True) + eps)
    gram = jnp.einsum("iba,jba->bij", unit, unit)
    off_diagonal = jnp.sum(gram, axis=(1, 2)) - jnp.trace(gram, axis1=1, axis2=2)
    return jnp.mean(off_diagonal) / (n - 1)


# ----------------------------------------------------------------------------- PPO
def ppo_clipped_surrogate_loss(
    log_probs: Array, old_log_probs: Array, advantages: Array, clip_coef: float | Array
) -> jax.Array:
    """PPO's clipped surrogate, as a loss: ``mean(max(-A rho, -A clip(rho, 1 - eps, 1 + eps)))``.

    Schulman et al. (2017, "Proximal Policy Optimization Algorithms", Eq. 7) maximise
    ``E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)]`` with ``rho = pi(a|s) / pi_old(a|s) =
    exp(log pi - log pi_old)``; the negated form with ``max`` is the one of CleanRL's
    ``ppo.py`` / ``ppo_continuous_action.py`` (vwxyzjn/cleanrl). ``old_log_probs`` and
    ``advantages`` (already normalised if the caller normalises) are constants.
    """
    ratio = jnp.exp(log_probs - _sg(old_log_probs))
    adv = _sg(advantages)
    unclipped = -adv * ratio
    clipped = -adv * jnp.clip(ratio, 1.0 - clip_coef, 1.0 + clip_coef)
    return jnp.mean(jnp.maximum(unclipped, clipped))


def ppo_value_loss(
    values: Array,
    old_values: Array,
    returns: Array,
    clip_coef: float | Array,
    clip: bool | Array = True,
) -> jax.Array:
    """PPO value loss ``0.5 * mean(max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2))``.

    The clipped form is from OpenAI baselines' ``ppo2`` (Engstrom et al., 2020, "Implementation
    Matters", Sec. 3: "value function clipping"), kept by CleanRL (``clip_vloss=True``) with the
    policy's ``clip_coef`` as eps; with ``clip=False`` it is ``0.5 * mean((V - R)^2)``.
    ``old_values`` (the values when the rollout was prepared) and ``returns`` (GAE targets) are
    constants. ``clip`` may be a traced bool.
    """
    old, target = _sg(old_values), _sg(returns)
    unclipped = jnp.square(values - target)
    clipped_values = old + jnp.clip(values - old, -clip_coef, clip_coef)
    clipped = jnp.maximum(unclipped, jnp.square(clipped_values - target))
    return 0.5 * jnp.mean(jnp.where(clip, clipped, unclipped))


def ppo_normalize_advantages(advantages: Array, eps: float = 1e-8) -> jax.Array:
    """``(A - mean(A)) / (std(A) + eps)`` over a minibatch, std with Bessel's correction
    (``torch.std``'s default, as CleanRL's ``norm_adv``); no gradient."""
    adv = _sg(advantages)
    return (adv - jnp.mean(adv)) / (jnp.std(adv, ddof=1) + eps)


def ppo_approx_kl(log_ratio: Array) -> tuple[jax.Array, jax.Array]:
    """Estimators of KL(pi_old || pi) from ``log_ratio = log pi - log pi_old`` at samples of
    pi_old: ``(mean(-log_ratio), mean((rho - 1) - log_ratio))``, CleanRL's ``old_approx_kl`` and
    ``approx_kl`` (k1 and k3 of J. Schulman, "Approximating KL divergence", 2020); k3 is
    unbiased and never negative. No gradient."""
    lr = _sg(log_ratio)
    return jnp.mean(-lr), jnp.mean(jnp.expm1(lr) - lr)


def ppo_clip_fraction(log_ratio: Array, clip_coef: float | Array) -> jax.Array:
    """Fraction of samples whose ratio left the trust region, ``mean(|rho - 1| > eps)``."""
    return jnp.mean((jnp.abs(jnp.exp(_sg(log_ratio)) - 1.0) > clip_coef).astype(jnp.float32))


# ----------------------------------------------------------------------------- RO2O
# Wen et al. (2024), "Towards Robust Offline-to-Online Reinforcement Learning via Uncertainty
# and Smoothness" (arXiv 2309.16973); official code BattleWen/RO2O @ d066702,
# ``algorithms/offline/ro2o_mujoco.py`` (``get_qf_loss``, ``get_ood_loss``,
# ``get_policy_loss``). The perturbed states are s + δ_k for k = 1..K (see
# `hybridrl.core.perturbations`); the "adversarial" perturbation is the max over those K.
def value_smoothness_loss(
    q_clean: Array, q_perturbed: Array, tau: float | Array = 0.2
) -> jax.Array:
    """RO2O's asymmetric value smoothness, ``mean_b max_k mean_i ℓ_τ(Δ_ibk)`` with
    ``Δ_ibk = Q_i(s_b + δ_k, a_b) - Q_i(s_b, a_b)``.

    With ``Δ = Q_i(s + δ_k, a) - Q_i(s, a)``, ``ℓ_τ(Δ) = (1 - τ) max(Δ, 0)^2 + τ min(Δ, 0)^2``:
    with τ = 0.2 (hard-coded ``q_smooth_tau`` of the official ``get_qf_loss``) a perturbed
    state valued *above* the clean one costs four times more than one valued below, so the
    smoothing also leans pessimistic. The mean runs over the N critics, the max over the K
    perturbations of each state, the outer mean over the batch. Both Q's carry gradient (the
    official code detaches neither); the weight η1 (1e-4) is the caller's.

    Args:
        q_clean: Q_i(s, a), (N, B).
        q_perturbed: Q_i(s + δ_k, a), (N, B, K).
        tau: τ in [0, 1]; may be traced.
    """
    diff = q_perturbed - q_clean[..., None]
    per_member = (1.0 - tau) * jnp.square(jnp.maximum(diff, 0.0)) + tau * jnp.square(
        jnp.minimum(diff, 0.0)
    )
    return jnp.mean(jnp.max(jnp.mean(per_member, axis=0), axis=-1))


def ood_uncertainty_loss(q_ood: Array, uncertainty_weight: float | Array) -> jax.Array:
    """RO2O's OOD penalty ``mean_{i,m} (Q_im - sg[Q_im - α_u std_j Q_jm])^2``, with
    ``Q_im = Q_i(ŝ_m, â_m)``.

    At perturbed states ŝ with policy actions â ~ π(·|ŝ), each head is regressed onto itself
    minus α_u times the ensemble's standard deviation there: its value is ``α_u^2 mean(std^2)``
    and its gradient pushes every head down in proportion to the disagreement (the official
    ``get_ood_loss``: ``F.mse_loss(target.detach(), q)``). ``std`` is the unbiased (N - 1)
    standard deviation over the N heads, as ``torch.std``'s default. The weight η2 and the α_u
    schedule are the caller's.

    Args:
        q_ood: Q_i(ŝ_m, â_m), (N, M) with M = B·K perturbed states.
        uncertainty_weight: α_u; may be traced.
    """
    std = jnp.std(q_ood, axis=0, ddof=1)
    target = _sg(q_ood - uncertainty_weight * std[None])
    return jnp.mean(jnp.square(q_ood - target))


def gaussian_kl(mean_p: Array, log_std_p: Array, mean_q: Array, log_std_q: Array) -> jax.Array:
    """``KL(N(μ_p, σ_p^2) ‖ N(μ_q, σ_q^2))`` of diagonal Gaussians, summed over the last axis:
    ``sum_d [log(σ_q/σ_p) + (σ_p^2 + (μ_p - μ_q)^2) / (2 σ_q^2) - 1/2]``."""
    var_p, var_q = jnp.exp(2.0 * log_std_p), jnp.exp(2.0 * log_std_q)
    per_dim = log_std_q - log_std_p + (var_p + jnp.square(mean_p - mean_q)) / (2.0 * var_q) - 0.5
    return jnp.sum(per_dim, axis=-1)


def symmetric_gaussian_kl(
    mean_p: Array, log_std_p: Array, mean_q: Array, log_std_q: Array
) -> jax.Array:
    """``KL(p ‖ q) + KL(q ‖ p)`` of diagonal Gaussians (`gaussian_kl`), summed over the last
    axis: the log terms cancel, leaving
    ``sum_d [(σ_p^2 + Δμ^2) / (2 σ_q^2) + (σ_q^2 + Δμ^2) / (2 σ_p^2) - 1]``."""
    return gaussian_kl(mean_p, log_std_p, mean_q, log_std_q) + gaussian_kl(
        mean_q, log_std_q, mean_p, log_std_p
    )


def policy_smoothness_loss(
    mean: Array, log_std: Array, mean_perturbed: Array, log_std_perturbed: Array
) -> jax.Array:
    """RO2O's policy smoothness,
    ``mean_b max_k [KL(π(s_b) ‖ π(s_b + δ_k)) + KL(π(s_b + δ_k) ‖ π(s_b))]``.

    π is the actor's Gaussian *before* the tanh squashing (the official ``get_policy_loss``
    compares ``Normal(mu, std)`` of the clean and perturbed states), so the KL has the closed
    form of `symmetric_gaussian_kl`. Both sides carry gradient, as in the official code; the
    weight η3 (``beta_policy``, 1.0) is the caller's.

    Args:
        mean, log_std: the clean states' Gaussian, (B, A).
        mean_perturbed, log_std_perturbed: the perturbed states', (B, K, A).
    """
    kl = symmetric_gaussian_kl(mean[:, None], log_std[:, None], mean_perturbed, log_std_perturbed)
    return jnp.mean(jnp.max(kl, axis=-1))


# ----------------------------------------------------------------------------- NPG / HNPG
# The KL of NPG's trust region (pytorch-trpo's ``get_kl``, kept by HNPG's ``trpo.py``) is
# `gaussian_kl` above; the Fisher-vector product differentiates it in its second Gaussian.


def importance_surrogate_loss(
    log_probs: Array, old_log_probs: Array, advantages: Array
) -> jax.Array:
    """TRPO's surrogate ``L(θ) = −mean(A · π_θ(a|s) / π_old(a|s))`` (Schulman et al., 2015;
    HNPG ``update_policy.get_loss``); ``old_log_probs`` and the advantages are constants
    (stop-gradient). Its gradient at θ = θ_old is the policy gradient −E[A ∇ log π]."""
    ratio = jnp.exp(log_probs - _sg(old_log_probs))
    return -jnp.mean(_sg(advantages) * ratio)


def hybrid_critic_loss(
    q_online: Array,
    online_targets: Array,
    q_offline: Array,
    offline_targets: Array,
    offline_weight: float | Array = 1.0,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """HNPG's hybrid fitted policy evaluation (Zhou et al., 2024, Alg. 2; ``TRPO.update_q``):
    ``L(Q) = mean_on (Q(s,a) − R̂)² + w · mean_off (Q(s,a) − y)²`` with R̂ the online return
    targets and y the fitted-Q targets of the offline rows (`td_target` with Q(s', a'~π)).
    ``w`` is 1 for HNPG and 0 for the on-policy NPG baseline (``HYBRID = False``). Targets are
    constants (stop-gradient). Returns ``(loss, online term, offline term)``."""
    on = jnp.mean(jnp.square(q_online - _sg(online_targets)))
    off = jnp.mean(jnp.square(q_offline - _sg(offline_targets)))
    return on + offline_weight * off, on, off
