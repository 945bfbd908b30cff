"""Natural policy gradient with a trust region, and its hybrid variant HNPG (Zhou, Sekhari,
Song, Sun, "Offline Data Enhanced On-Policy Policy Gradient with Provable Guarantees", ICLR
2024).

Reference: YifeiZhou02/HNPG @ 7d7ace1, ``trpo.py`` (``TRPO.update_params``, ``update_q``,
``update_policy``, ``trpo_step``), itself built on pytorch-trpo. ``docs/agents/npg.md`` has
the equations, the defaults and every deviation. ``hybrid=True`` is HNPG; ``hybrid=False``
is the official ``HYBRID = False`` baseline: the same NPG without offline data.

One iteration, for a rollout of T steps of N envs and (HNPG) a batch of offline transitions
(s, a, r, s', terminal) the runner samples from the dataset:

1. critic targets: online, the λ = 1 returns R̂ (the Monte-Carlo return of every whole
   episode; a segment cut bootstraps from V of the pre-fit critic); offline, the fitted-Q
   targets ``y = r + γ (1 − terminal) Q(s', a')``, a' ~ π(s'), with the pre-fit critic;
2. hybrid fitted policy evaluation: ``critic_steps`` full-batch Adam steps (fresh moments
   each iteration, as the official code builds a new optimizer per fit) on
   ``mean_on (Q(s,a) − R̂)² + mean_off (Q(s,a) − y)²`` (`losses.hybrid_critic_loss`; the
   offline term only with ``hybrid``);
3. advantages with the refit critic: online, GAE(γ, λ) with
   ``V(s) = (1/M) Σ_m Q(s, a_m)``, a_m ~ π(s), M = ``value_samples``; offline, a fresh
   a ~ π(s) and ``A = Q(s, a) − V(s)``;
4. one NPG step on the union of the online and (HNPG) offline (s, a, A) rows
   (`hybridrl.core.natural_gradient`): surrogate ``−mean(A π_θ(a|s)/π_old(a|s))``, CG on the
   damped Fisher-vector products of the mean KL, the step scaled to ``max_kl``, backtracking
   line search.

The runner's on-policy loop calls the same functions as for PPO (`normalize_observations`,
`apply_observation_norm`, `normalize_rewards`, `sample_actions`, `prepare`, `update`);
observations and rewards are not normalised (the official code's ``ZFilter`` is commented
out), so those are identities. `prepare` keeps the rollout's time axis: the advantages are
computed in `update`, after the critic is refit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cache
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from hybridrl.agents.spec import AgentSpec, init_only
from hybridrl.core import losses
from hybridrl.core import natural_gradient as ng
from hybridrl.core.distributions import Normal
from hybridrl.core.optim import adam
from hybridrl.core.train_state import TrainState
from hybridrl.data.rollout import Rollout, gae
from hybridrl.data.transitions import Transitions
from hybridrl.networks import PPOGaussianActor, TanhStateActionValue

Metrics = dict[str, jax.Array]


@struct.dataclass
class Config:
    """NPG/HNPG hyperparameters; defaults are the official ones (``utils.parse_args`` and
    ``trpo.py``). Structural fields are static; the rest are traced leaves.

    Attributes:
        hybrid: HNPG (offline rows in the critic fit and in the policy step) or, False, the
            on-policy NPG baseline. An `OnPolicy` phase feeds offline rows exactly when this
            is set (``offline_ratio`` > 0; `SPEC.needs_offline_rows`).
        hidden_dims: the policy's tanh trunk (official: 16, 16).
        critic_hidden_dims: the Q-network's tanh trunk (official: 64, 64).
        critic_lr, critic_steps: Adam's rate and the full-batch steps per fit (3e-4, 30).
        discount: γ (the official ``TRPO`` sets ``self.gamma = 1``; the CLI's 0.995 is unused).
        gae_lambda: λ of the online advantages (0.97, the official ``--tau``).
        max_kl: the trust region (0.01). damping: added to the Fisher matrix (0.1).
        cg_iterations, cg_residual_tol: conjugate-gradient iterations and early-stop (10, 1e-10).
        max_backtracks, accept_ratio: line-search fractions ½^0..½^9 and the acceptance ratio
            of actual to predicted improvement (10, 0.1).
        value_samples: actions per state in V(s) = E_{a~π} Q(s, a) (10).
        log_std_init: initial log σ of the state-independent Gaussian std (0).
    """

    hybrid: bool = struct.field(pytree_node=False, default=True)
    hidden_dims: Sequence[int] = init_only((16, 16))
    critic_hidden_dims: Sequence[int] = init_only((64, 64))
    critic_lr: float = init_only(3e-4)
    critic_steps: int = struct.field(pytree_node=False, default=30)
    discount: float = 1.0
    gae_lambda: float = 0.97
    max_kl: float = 0.01
    damping: float = 0.1
    cg_iterations: int = struct.field(pytree_node=False, default=10)
    cg_residual_tol: float = struct.field(pytree_node=False, default=1e-10)
    max_backtracks: int = struct.field(pytree_node=False, default=10)
    accept_ratio: float = 0.1
    value_samples: int = struct.field(pytree_node=False, default=10)
    log_std_init: float = init_only(0.0)


@struct.dataclass
class State:
    """Policy and critic (a pytree). The actor's parameters change only by the NPG step, so
    its optimizer is the identity; the critic's Adam moments are rebuilt at every fit.

    Attributes:
        actor: the Gaussian policy (`PPOGaussianActor`: tanh trunk, state-independent log σ).
        critic: Q(s, a) (`TanhStateActionValue`), one network for every step h (see
            docs/agents/npg.md: the official code has one per h).
        iteration: int32, `update` calls so far.
        config: the `Config`.
    """

    actor: TrainState
    critic: TrainState
    iteration: jax.Array
    config: Config


@cache
def _no_optimizer() -> optax.GradientTransformation:
    # one object, so every state has the same static structure (no recompiles)
    return optax.identity()


def init(
    config: Config,
    key: jax.Array,
    observation_dim: int,
    action_dim: int,
    *,
    discrete: bool = False,
) -> State:
    """Fresh policy and critic. NPG acts in Box spaces only (``SPEC.action_kinds``)."""
    if discrete:
        raise ValueError("npg acts in Box action spaces only")
    if config.critic_steps < 1 or config.value_samples < 1 or config.max_backtracks < 1:
        raise ValueError("critic_steps, value_samples and max_backtracks must be at least 1")
    actor_net = PPOGaussianActor(
        hidden_dims=tuple(config.hidden_dims),
        action_dim=action_dim,
        log_std_init=config.log_std_init,
    )
    critic_net = TanhStateActionValue(hidden_dims=tuple(config.critic_hidden_dims))
    k_actor, k_critic = jax.random.split(key)
    obs = jnp.zeros((1, observation_dim), jnp.float32)
    act = jnp.zeros((1, action_dim), jnp.float32)
    actor = TrainState.create(
        apply_fn=actor_net.apply, params=actor_net.init(k_actor, obs)["params"], tx=_no_optimizer()
    )
    critic = TrainState.create(
        apply_fn=critic_net.apply,
        params=critic_net.init(k_critic, obs, act)["params"],
        tx=adam(config.critic_lr),
    )
    return State(actor=actor, critic=critic, iteration=jnp.zeros((), jnp.int32), config=config)


# ----------------------------------------------------------------------------- acting
def _policy(state: State, obs: jax.Array, params: Any = None) -> Normal:
    params = state.actor.params if params is None else params
    return state.actor.apply_fn({"params": params}, obs)  # type: ignore[no-any-return]


def _q(state: State, params: Any, obs: jax.Array, actions: jax.Array) -> jax.Array:
    return state.critic.apply_fn({"params": params}, obs, actions)  # type: ignore[no-any-return]


def act(
    state: State, observations: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Actions in [-1, 1]: the Gaussian mean (``deterministic``, static under jit) or a
    sample, clipped."""
    dist = _policy(state, jnp.asarray(observations, jnp.float32))
    actions = dist.mode() if deterministic else dist.sample(key)
    return jnp.clip(actions, -1.0, 1.0)


def apply_observation_norm(state: State, obs: jax.Array) -> jax.Array:
    """Observations as float32 (no running normalisation)."""
    return jnp.asarray(obs, jnp.float32)


def normalize_observations(state: State, observations: jax.Array) -> tuple[State, jax.Array]:
    """The state unchanged and the observations as float32 (no running statistics)."""
    return state, apply_observation_norm(state, observations)


def normalize_rewards(
    state: State, discounted: jax.Array, rewards: jax.Array, terminated: jax.Array
) -> tuple[State, jax.Array, jax.Array]:
    """No reward scaling: the inputs back (rewards as float32)."""
    return state, discounted, jnp.asarray(rewards, jnp.float32)


def sample_actions(
    state: State, observations: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """An unclipped policy sample and its log-probability (clip before ``env.step``; the
    critic and the surrogate see the unclipped sample, as the official code, which never
    clips)."""
    return _policy(state, observations).sample_and_log_prob(key)


# ----------------------------------------------------------------------------- learning
def prepare(state: State, rollout: Rollout) -> Rollout:
    """The rollout itself: the advantages need the critic that `update` fits first."""
    return rollout


def state_value(state: State, critic_params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
    """``V(s) = (1/M) Σ_m Q(s, a_m)``, a_m ~ π(s), M = ``value_samples`` (the official
    ``QValue.get_value``), for observations of any leading shape."""
    dist = _policy(state, obs)
    actions = dist.sample(key, (state.config.value_samples,))
    q = jax.vmap(lambda a: _q(state, critic_params, obs, a))(actions)
    return jnp.mean(q, axis=0)


def fitted_q_targets(
    state: State, critic_params: Any, offline: Transitions, key: jax.Array
) -> jax.Array:
    """``y = r + γ (1 − terminal) Q(s', a')``, a' ~ π(s') (one sample, as the official code)."""
    next_actions = _policy(state, offline.next_observations).sample(key)
    next_q = _q(state, critic_params, offline.next_observations, next_actions)
    return losses.td_target(offline.rewards, offline.terminals, next_q, state.config.discount)


def fit_critic(
    state: State,
    obs: jax.Array,
    actions: jax.Array,
    targets: jax.Array,
    offline: Transitions | None,
    offline_targets: jax.Array | None,
) -> tuple[TrainState, Metrics]:
    """``critic_steps`` full-batch Adam steps on `losses.hybrid_critic_loss` from fresh Adam
    moments (rows flattened; without offline rows, the online term alone). Metrics are those
    of the last step."""
    cfg = state.config

    def loss_fn(params: Any) -> tuple[jax.Array, Metrics]:
        q_on = _q(state, params, obs, actions)
        if offline is None or offline_targets is None:
            on = jnp.mean(jnp.square(q_on - jax.lax.stop_gradient(targets)))
            return on, {"critic_loss_online": on, "critic_loss_offline": jnp.zeros(())}
        q_off = _q(state, params, offline.observations, offline.actions)
        loss, on, off = losses.hybrid_critic_loss(q_on, targets, q_off, offline_targets)
        return loss, {"critic_loss_online": on, "critic_loss_offline": off}

    critic = state.critic.replace(opt_state=state.critic.tx.init(state.critic.params), step=0)

    def step(ts: TrainState, _: None) -> tuple[TrainState, Metrics]:
        grads, metrics = jax.grad(loss_fn, has_aux=True)(ts.params)
        return ts.apply_gradients(grads=grads), metrics

    critic, ms = jax.lax.scan(step, critic, None, length=cfg.critic_steps)
    return critic, jax.tree_util.tree_map(lambda x: x[-1], ms)


def npg_step(
    state: State, obs: jax.Array, actions: jax.Array, advantages: jax.Array
) -> tuple[Any, Metrics]:
    """One trust-region natural-gradient step of the policy on the rows (`natural_gradient`
    module docstring); returns the new actor parameters and the step's metrics."""
    cfg = state.config
    theta, unravel = ravel_pytree(state.actor.params)
    old = _policy(state, obs)
    old_mean, old_log_std = jax.lax.stop_gradient((old.mean, old.log_std))
    old_log_probs = jax.lax.stop_gradient(old.log_prob(actions))

    def loss_fn(th: jax.Array) -> jax.Array:
        logp = _policy(state, obs, unravel(th)).log_prob(actions)
        return losses.importance_surrogate_loss(logp, old_log_probs, advantages)

    def kl_fn(th: jax.Array) -> jax.Array:
        new = _policy(state, obs, unravel(th))
        return jnp.mean(losses.gaussian_kl(old_mean, old_log_std, new.mean, new.log_std))

    def fvp(v: jax.Array) -> jax.Array:
        return ng.fisher_vector_product(kl_fn, theta, v, cfg.damping)

    grad = jax.grad(loss_fn)(theta)
    direction = ng.conjugate_gradient(fvp, -grad, cfg.cg_iterations, cfg.cg_residual_tol)
    full_step, expected = ng.trust_region_step(grad, direction, fvp(direction), cfg.max_kl)
    new_theta, metrics = ng.line_search(
        loss_fn, theta, full_step, expected, cfg.max_backtracks, cfg.accept_ratio
    )
    return unravel(new_theta), {
        **metrics,
        "kl": kl_fn(new_theta),
        "grad_norm": jnp.linalg.norm(grad),
        "entropy": jnp.mean(old.entropy()),
    }


def update(
    state: State, batch: Rollout, key: jax.Array, offline: Transitions | None = None
) -> tuple[State, Metrics]:
    """One NPG (``offline`` None) or HNPG iteration on a (T, N) rollout, jittable (module
    docstring, steps 1-4). ``offline`` holds the dataset rows the runner sampled for this
    iteration (`OnPolicy.offline_ratio`); with ``hybrid`` off it must be None."""
    cfg = state.config
    if offline is not None and not cfg.hybrid:
        raise ValueError("npg with hybrid=False takes no offline rows")
    if offline is None and cfg.hybrid:
        raise ValueError("hnpg (hybrid=True) needs offline rows: an OnPolicy offline_ratio > 0")
    k_old, k_old_next, k_target, k_v, k_v_next, k_off_a, k_off_v = jax.random.split(key, 7)
    r = batch
    params0 = state.critic.params
    # 1. targets (pre-fit critic only where a cut episode bootstraps, and in y)
    v0 = state_value(state, params0, r.observations, k_old)
    nv0 = state_value(state, params0, r.next_observations, k_old_next)
    _, returns = gae(r.rewards, v0, nv0, r.terminals, r.timeouts, cfg.discount, 1.0)
    rows = r.rewards.shape[0] * r.rewards.shape[1]

    def flat(x: jax.Array) -> jax.Array:
        return x.reshape((rows, *x.shape[2:]))

    obs, actions = flat(r.observations), flat(r.actions)
    y = None if offline is None else fitted_q_targets(state, params0, offline, k_target)
    # 2. hybrid fitted policy evaluation
    critic, critic_metrics = fit_critic(state, obs, actions, flat(returns), offline, y)
    state = dataclasses.replace(state, critic=critic)
    # 3. advantages with the refit critic
    values = state_value(state, critic.params, r.observations, k_v)
    next_values = state_value(state, critic.params, r.next_observations, k_v_next)
    advantages, _ = gae(
        r.rewards, values, next_values, r.terminals, r.timeouts, cfg.discount, cfg.gae_lambda
    )
    advantages = flat(advantages)
    extra: Metrics = {}
    if offline is not None:
        off_actions = _policy(state, offline.observations).sample(k_off_a)
        off_adv = _q(state, critic.params, offline.observations, off_actions) - state_value(
            state, critic.params, offline.observations, k_off_v
        )
        extra["offline_advantage_abs"] = jnp.mean(jnp.abs(off_adv))
        obs = jnp.concatenate([obs, offline.observations.astype(obs.dtype)])
        actions = jnp.concatenate([actions, off_actions])
        advantages = jnp.concatenate([advantages, off_adv])
    # 4. the natural-gradient step on the union
    actor_params, step_metrics = npg_step(state, obs, actions, advantages)
    state = dataclasses.replace(
        state, actor=state.actor.replace(params=actor_params), iteration=state.iteration + 1
    )
    return state, {
        **critic_metrics,
        **step_metrics,
        **extra,
        "online_advantage_abs": jnp.mean(jnp.abs(advantages[:rows])),
        "value_mean": jnp.mean(values),
    }


def _needs_offline_rows(config: Config) -> bool:
    return bool(config.hybrid)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(
    on_policy=True,
    action_kinds=("box",),
    needs_offline_rows=_needs_offline_rows,
)
