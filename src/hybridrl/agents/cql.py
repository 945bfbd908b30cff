"""Conservative Q-Learning (Kumar et al., NeurIPS 2020) on the SAC backbone of `sac`.

CQL(H) with the importance-sampled log-partition of the paper's Appendix F, as in the JAX
reference code (young-geng/JaxCQL ``conservative_sac.py``, reused by nakamotoo/Cal-QL). For a
minibatch (s, a, r, s', d) and each critic Q_i:

- TD loss: ``E[(Q_i(s, a) - y)^2]`` with ``y = r + γ (1 - d) min_j Q̄_j(s', a')``, a' ~ π(·|s')
  (no entropy bonus by default, ``backup_entropy=False`` as in the official code). With
  ``max_target_backup`` N = ``num_samples`` next actions are drawn and the target takes
  ``max_k min_j Q̄_j(s', a'_k)``.
- Conservative penalty (Eq. 4 with the Appendix F estimator), weight α = ``cql_alpha``::

      gap_i = E_s[ T log Σ_{k=1}^{3M} exp((Q_i(s, a_k) - log μ(a_k|s)) / T) - Q_i(s, a) ]

  over M uniform actions (log μ = A log ½), M actions from π(·|s) and M from π(·|s'), all
  evaluated at the current state s (`hybridrl.core.losses.cql_logsumexp_penalty`). The
  critic minimizes ``Σ_i TD_i + N α mean_{i ∈ P} gap_i``, with P all N critics, or (with a
  target subset ``num_min_qs`` and ``cql_subsample_critics``, the official ensemble CQL of
  WSRL) a fresh random subset of ``num_min_qs`` critics per step.
- Lagrange variant (``lagrange=True``, Appendix F): the critic minimizes
  ``Σ_i (TD_i + α' α (gap_i - τ))`` with τ = ``target_action_gap`` and α' = exp(log α')
  (a constant for the critic); α' descends ``α · (-α' (mean_i gap_i - τ))``
  (`losses.cql_alpha_lagrange_loss` times α, exactly the JAX code's multiplier loss), so it
  grows while the gap exceeds τ.
- Actor and temperature: SAC's (`sac.update_actor`), with the min of the critics
  (``actor_q="min"``, as the official code) and target entropy -|A|.
- Cal-QL (Nakamoto et al., 2023; see `hybridrl.agents.calql`): when ``enable_calql`` is true
  the policy-action columns (π(·|s) and π(·|s')) of the penalty are replaced by
  ``max(Q, V^μ(s))`` with V^μ the Monte-Carlo return ``batch.extras["mc_returns"]``
  (`losses.calql_bound`) before log π is subtracted. ``enable_calql`` is a traced leaf: one
  compiled update serves CQL and Cal-QL, and the bound can be switched off (e.g. at the
  offline-to-online switch) without recompiling. A batch without ``mc_returns`` gets no
  bound (plain CQL); `hybridrl.agents.calql` refuses such batches.

Update-to-data: as `sac.update`, the batch of ``utd_ratio * B`` transitions is split into
``utd_ratio`` minibatches; the critic (and α') takes one step on each inside a ``lax.scan``,
then the actor and temperature one step on the last minibatch.

Deviations from the official JAX code (all documented in ``docs/agents/cql.md``):

- The actor/temperature step follows the critic step (SAC's order, using the just-updated
  critics); the official code computes every loss from the same parameters and steps them
  simultaneously.
- The temperature loss uses α = exp(log α) (`networks.Temperature`) where the official code
  multiplies log α; same fixed point, gradient scaled by α.
- The actor is `networks.TanhGaussianActor` (log σ clipped to [-20, 2], final-layer init 1e-2);
  the official policy's ``log_std_offset=-1`` is folded into the log σ head's bias at
  initialisation (``actor_log_std_offset``: the same policy at init; the official code also
  trains a scalar multiplier and offset, which the per-dimension bias already covers up to
  the multiplier), and the official code uses orthogonal initialization (Cal-QL) or
  ``orthogonal_init=False`` (JaxCQL).
- ``max_target_backup`` (`sac.critic_target`) is refused together with ``backup_entropy``
  (JaxCQL subtracts α log π after the max, WSRL's SACAgent before it; no official config
  sets both). The max is taken over ``min_j Q̄_j`` (JAX code order; the PyTorch code takes
  the max per critic, then the min).
- The penalty's critic subset is drawn without replacement (official: ``randint``, with).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hybridrl.agents import sac
from hybridrl.agents.spec import AgentSpec, init_only, utd_minibatches
from hybridrl.core import losses
from hybridrl.core.optim import adam
from hybridrl.core.train_state import TrainState
from hybridrl.data.transitions import Transitions
from hybridrl.networks import Temperature
from hybridrl.types import HybridRLError

Metrics = dict[str, jax.Array]


@struct.dataclass
class Config(sac.Config):
    """CQL hyperparameters: SAC's fields (with CQL's defaults) plus the conservative penalty.

    Structural fields (sample counts, switches, learning rates) are static; the penalty's
    numbers (``cql_alpha``, ``target_action_gap``, ``cql_temperature``, clips) and
    ``enable_calql`` are traced leaves, so sweeping them or flipping Cal-QL reuses the
    compiled update.

    Attributes (beyond `sac.Config`; ``num_samples``, M, is also the number of actions per
    state in each of the penalty's three sets, and ``max_target_backup`` is SAC's):
        lagrange: learn the penalty weight α' against ``target_action_gap``.
        cql_subsample_critics: with a target subset (``num_min_qs`` set), the penalty reaches
            a fresh random subset of ``num_min_qs`` critics per step, not all N: the official
            ensemble CQL/Cal-QL (zhouzypaul/wsrl @ 891ee35 ``wsrl/agents/cql.py`` L113-125,
            ``critic_subsample_size``). Without a subset (JaxCQL, Cal-QL: 2 critics) every
            critic is penalised either way. False penalises all N.
        lagrange_lr: Adam learning rate of log α' (official: the critic's, 3e-4).
        init_alpha_prime: initial α' (official JAX code: log α' = 1, α' = e).
        cql_alpha: α, the penalty weight (``cql_min_q_weight``; 5.0 official default).
        target_action_gap: τ of the Lagrange variant (JaxCQL default 1.0).
        cql_temperature: T of the logsumexp (``cql_temp``, 1.0).
        cql_clip_diff_min, cql_clip_diff_max: per-state clip of the gap (±∞ official).
        enable_calql: apply Cal-QL's bound ``max(Q, mc_return)`` to the policy columns.
    """

    # The fields that make CQL/Cal-QL a penalty on top of SAC: a switch to SAC removes the
    # penalty, and these with it (`hybridrl.training.phases.SwitchAgent`).
    SWITCH_REMOVES: ClassVar[tuple[str, ...]] = (
        "lagrange",
        "cql_subsample_critics",
        "lagrange_lr",
        "init_alpha_prime",
        "cql_alpha",
        "target_action_gap",
        "cql_temperature",
        "cql_clip_diff_min",
        "cql_clip_diff_max",
        "enable_calql",
    )

    # SAC fields whose CQL defaults differ (JaxCQL / Cal-QL ``get_default_config``).
    backup_entropy: bool = struct.field(pytree_node=False, default=False)
    actor_q: str = struct.field(pytree_node=False, default="min")
    # JaxCQL's MuJoCo defaults (young-geng/JaxCQL @ bac4299 conservative_sac.py L33: policy_lr
    # 3e-4 for the actor and log α); Cal-QL's 1e-4 is `calql.Config`'s.
    actor_lr: float = init_only(3e-4)
    temperature_lr: float = init_only(3e-4)
    # The official policy's log_std_offset = -1 (JaxCQL @ bac4299 model.py L106, L120 and
    # conservative_sac_main.py L40; Cal-QL @ ac6eafe conservative_sac_main.py L38).
    actor_log_std_offset: float = init_only(-1.0)
    # CQL, static
    lagrange: bool = struct.field(pytree_node=False, default=False)
    cql_subsample_critics: bool = struct.field(pytree_node=False, default=True)
    lagrange_lr: float = init_only(3e-4)
    init_alpha_prime: float = init_only(math.e)
    # CQL, traced
    cql_alpha: float = 5.0
    target_action_gap: float = 1.0
    cql_temperature: float = 1.0
    cql_clip_diff_min: float = -math.inf
    cql_clip_diff_max: float = math.inf
    enable_calql: bool = False


@struct.dataclass
class State(sac.State):
    """SAC's state plus the Lagrange multiplier log α' (present, but frozen, when
    ``lagrange=False``, so both variants share one pytree layout)."""

    config: Config
    alpha_prime: TrainState


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    """SAC's networks (`sac.init`) plus log α'."""
    k_sac, k_prime = jax.random.split(key)
    base = sac.init(config, k_sac, observation_dim, action_dim)
    prime_net = Temperature(initial=config.init_alpha_prime)
    alpha_prime = TrainState.create(
        apply_fn=prime_net.apply,
        params=prime_net.init(k_prime)["params"],
        tx=adam(config.lagrange_lr),
    )
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    return State(**fields, alpha_prime=alpha_prime)


def _log_alpha_prime(params: Any) -> jax.Array:
    return params["log_alpha"]


# The sampling helpers and the (max-)backup live in `sac` (WSRL's SAC agent has the max
# backup too, so a switch to SAC carries it).
_repeat_states = sac.repeat_states
_policy_samples = sac.policy_samples
critic_target = sac.critic_target


def penalty_critics(config: Config) -> int:
    """How many critics the penalty reaches per step: ``num_min_qs`` (a random subset, drawn
    afresh each step) when ``cql_subsample_critics`` and a subset is set, else all N."""
    if config.cql_subsample_critics and config.num_min_qs is not None:
        return min(config.num_min_qs, config.num_qs)
    return config.num_qs


def alpha_prime(state: State) -> jax.Array:
    """The Lagrange multiplier α' = clip(exp(log α'), 0, 1e6)."""
    return losses.cql_alpha_prime(_log_alpha_prime(state.alpha_prime.params))


def conservative_penalty(
    state: sac.State, params: Any, batch: Transitions, key: jax.Array
) -> tuple[jax.Array, Metrics]:
    """The weighted CQL(H) / Cal-QL term of the critic loss, and its metrics.

    ``Σ_i α gap_i`` (or ``Σ_i α' α (gap_i - τ)`` with ``lagrange``, α' constant), with
    ``gap_i`` from `losses.cql_logsumexp_penalty` over M uniform, M π(·|s) and M π(·|s')
    actions, all evaluated at s; with ``mc_returns`` in the batch, the policy columns pass
    through `losses.calql_bound` (active when ``enable_calql``). A `sac.CriticRegularizer`:
    ``key`` is the critic step's dropout key (reused for Q(s, a), so it matches the TD term),
    the sampling keys are folded from it.
    """
    st = cast(State, state)
    cfg = st.config
    b, a_dim = batch.actions.shape[0], batch.actions.shape[-1]
    m = cfg.num_samples
    k_rand, k_cur, k_next = (jax.random.fold_in(key, i) for i in range(3))

    # The three sampled sets, all evaluated at the current states s.
    random_actions = jax.random.uniform(k_rand, (b, m, a_dim), minval=-1.0, maxval=1.0)
    cur_actions, cur_log_probs = _policy_samples(st, batch.observations, k_cur, m)
    next_actions, next_log_probs = _policy_samples(st, batch.next_observations, k_next, m)
    ood_actions = jax.lax.stop_gradient(
        jnp.concatenate([random_actions, cur_actions, next_actions], axis=1)
    )  # (B, 3M, A)
    random_log_density = jnp.full((b, m), losses.cql_random_log_density(a_dim))
    log_densities = jnp.concatenate([random_log_density, cur_log_probs, next_log_probs], axis=1)
    ood_obs = _repeat_states(batch.observations, 3 * m)

    qs = sac.critic_apply(st, params, batch.observations, batch.actions, key)  # (N, B)
    q_ood = sac.critic_apply(st, params, ood_obs, ood_actions, key)  # (N, B, 3M)
    n = qs.shape[0]
    k = penalty_critics(cfg)
    if k < n:  # a fresh random subset of k distinct critics per step (wsrl cql.py L113-125)
        members = jax.random.choice(jax.random.fold_in(key, 3), n, shape=(k,), replace=False)
        qs, q_ood = qs[members], q_ood[members]
    q_random, q_pi = q_ood[..., :m], q_ood[..., m:]
    metrics: Metrics = {"q_random_mean": q_random.mean(), "q_policy_mean": q_pi.mean()}
    mc_returns = batch.extras.get("mc_returns")
    if mc_returns is None and isinstance(cfg.enable_calql, bool) and cfg.enable_calql:
        raise HybridRLError("enable_calql needs Monte-Carlo returns in batch.extras['mc_returns']")
    if mc_returns is not None:
        bound = jnp.asarray(mc_returns, q_pi.dtype)[:, None]
        metrics["calql_bound_rate"] = jnp.mean(q_pi < bound)
        q_pi = losses.calql_bound(q_pi, bound, cfg.enable_calql)
    gap = losses.cql_logsumexp_penalty(
        qs,
        jnp.concatenate([q_random, q_pi], axis=-1),
        log_densities,
        cfg.cql_temperature,
        cfg.cql_clip_diff_min,
        cfg.cql_clip_diff_max,
    )
    if cfg.lagrange:
        loss = alpha_prime(st) * cfg.cql_alpha * (gap - cfg.target_action_gap)
    else:
        loss = cfg.cql_alpha * gap
    # N times the mean over the penalised critics: the TD part is summed over the N critics
    # where the official code averages it, so both keep the official ratio.
    loss = n * loss
    return loss, {**metrics, "cql_gap": gap, "cql_loss": loss}


def update_critic(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One step of every critic on TD + CQL penalty (`sac.critic_loss` with
    `conservative_penalty`), then Polyak; then one step of log α' when ``lagrange``."""
    cfg = state.config
    k_target, k_loss = jax.random.split(key)
    target = critic_target(state, batch, k_target)

    def loss_fn(params: Any) -> tuple[jax.Array, Metrics]:
        return sac.critic_loss(state, params, batch, target, k_loss, conservative_penalty)

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.critic.params)
    critic = state.critic.apply_gradients(grads=grads).update_target(cfg.tau)
    prime = state.alpha_prime
    if cfg.lagrange:
        gap = metrics["cql_gap"]

        def prime_loss_fn(params: Any) -> jax.Array:
            # The JAX code's multiplier loss carries the weight α: α · (-α' (gap - τ)).
            return cfg.cql_alpha * losses.cql_alpha_lagrange_loss(
                _log_alpha_prime(params), gap, cfg.target_action_gap
            )

        prime_loss, prime_grads = jax.value_and_grad(prime_loss_fn)(prime.params)
        prime = prime.apply_gradients(grads=prime_grads)
        metrics = {**metrics, "alpha_prime": alpha_prime(state), "alpha_prime_loss": prime_loss}
    return dataclasses.replace(state, critic=critic, alpha_prime=prime), metrics


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, Metrics]:
    """One CQL update from ``utd_ratio * B`` transitions (pure; jit it or use
    `hybridrl.training.scan_updates`): ``utd_ratio`` critic/α' steps in a ``lax.scan``, then
    one SAC actor and temperature step (`sac.update_actor`) on the last minibatch."""
    new_state, metrics = sac.utd_update(state, batch, key, update_critic)
    return cast(State, new_state), metrics


def act(
    state: State, observations: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Actions in [-1, 1] (SAC's tanh-Gaussian policy; ``tanh(mean)`` when deterministic)."""
    return sac.act(state, observations, key, deterministic)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(
    q_probe=True,
    robustness_probe=True,
    needs_mc_returns=lambda config: bool(np.asarray(config.enable_calql)),
    minibatches_per_update=utd_minibatches,
)
