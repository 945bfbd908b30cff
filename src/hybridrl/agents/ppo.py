"""Proximal Policy Optimization (Schulman et al., 2017) with CleanRL's semantics.

Reference: CleanRL (Huang et al., 2022), ``cleanrl/ppo_continuous_action.py`` (Box actions) and
``cleanrl/ppo.py`` (Discrete actions), repository vwxyzjn/cleanrl at commit
``fe8d8a03c41a7ef5b523e2e354bd01c363e786bb`` (both files last changed in
``e421c2e50b81febf639fced51a69e2602593d50d``); observation and reward normalisation follow the
gymnasium v0.29.1 wrappers CleanRL pins. ``docs/agents/ppo.md`` has the equations, the
defaults and every deviation.

One iteration, for a rollout of T steps of N envs (B = T N rows):

- advantages by GAE (`hybridrl.data.rollout.gae`),
  ``A_t = δ_t + γλ (1 - end_t) A_{t+1}``, ``δ_t = r_t + γ (1 - terminal_t) V(s'_t) - V(s_t)``,
  value targets ``R = A + V``;
- ``update_epochs`` passes over a fresh permutation of the B rows, each split into
  ``num_minibatches`` minibatches; per minibatch one Adam step on
  ``L = L_clip - c_ent H[π] + c_vf L_V`` with
  ``L_clip = mean(max(-Â ρ, -Â clip(ρ, 1 ± ε)))``, ρ = π(a|s)/π_old(a|s), Â the advantages
  normalised per minibatch, and ``L_V = ½ mean(max((V - R)², (V_old + clip(V - V_old, ±ε) - R)²))``
  (`hybridrl.core.losses.ppo_clipped_surrogate_loss`, ``ppo_value_loss``); the gradient of
  actor and critic together is clipped to global norm ``max_grad_norm`` (one optimizer over
  both networks in CleanRL);
- with ``target_kl`` set, the epochs stop after the first one whose last minibatch has
  ``approx_kl > target_kl``.

The runner's on-policy loop calls, per environment step: `normalize_observations` (raw →
normalised, stats updated), `sample_actions` (clip before ``env.step``), `normalize_rewards`;
per iteration: `prepare` (log-probs, values, GAE with the *current* parameters) and `update`.
`apply_observation_norm` normalises without updating the statistics (the true final
observation of an episode). `act` is for evaluation and takes raw observations.
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

from hybridrl.agents.spec import AgentSpec, init_only
from hybridrl.core import losses
from hybridrl.core.distributions import Categorical, Normal
from hybridrl.core.running_norm import RunningMeanStd
from hybridrl.core.train_state import TrainState
from hybridrl.data.rollout import Rollout, RolloutBatch, gae
from hybridrl.evaluation.sampling_error import fit_sampling_error
from hybridrl.networks import PPOCategoricalActor, PPOGaussianActor, PPOStateValue

Metrics = dict[str, jax.Array]

_CARRIED_METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "old_approx_kl")


@struct.dataclass
class Config:
    """PPO hyperparameters; defaults are ``ppo_continuous_action.py``'s (see
    `cleanrl_discrete_config` for ``ppo.py``'s). Structural fields are static; numeric ones
    that do not change shapes are traced leaves, so changing them does not recompile.

    Attributes:
        hidden_dims: widths of the tanh trunks of actor and critic (separate networks).
        learning_rate: Adam's initial learning rate.
        anneal_iterations: 0 for a constant rate; else the rate decays linearly,
            ``lr0 * (1 - i / anneal_iterations)`` at the i-th `update` call (i from 0), to 0
            (CleanRL's ``anneal_lr`` with ``num_iterations``).
        discount: γ. gae_lambda: λ.
        clip_coef: ε of the ratio clip (and of the value clip).
        clip_value_loss: use the clipped value loss.
        ent_coef, vf_coef: weights of the entropy bonus and of the value loss.
        max_grad_norm: global-norm clip of the joint (actor + critic) gradient.
        target_kl: stop the epochs early when approx_kl exceeds it; None never stops.
        normalize_advantages: normalise advantages per minibatch.
        update_epochs, num_minibatches: K passes over the batch, each in this many minibatches
            (the batch size must be divisible by it).
        normalize_observations, normalize_rewards: gymnasium-style running normalisation.
        observation_clip, reward_clip: clip of the normalised observations / scaled rewards.
        log_std_init: initial log σ of the Gaussian policy.
        adam_eps: Adam's ε (CleanRL: 1e-5, not torch's 1e-8).
    """

    hidden_dims: Sequence[int] = init_only((64, 64))
    learning_rate: float = struct.field(pytree_node=False, default=3e-4)
    anneal_iterations: int = struct.field(pytree_node=False, default=0)
    discount: float = 0.99
    gae_lambda: float = 0.95
    clip_coef: float = 0.2
    clip_value_loss: bool = struct.field(pytree_node=False, default=True)
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = struct.field(pytree_node=False, default=0.5)
    target_kl: float | None = struct.field(pytree_node=False, default=None)
    normalize_advantages: bool = struct.field(pytree_node=False, default=True)
    update_epochs: int = struct.field(pytree_node=False, default=10)
    num_minibatches: int = struct.field(pytree_node=False, default=32)
    normalize_observations: bool = struct.field(pytree_node=False, default=True)
    normalize_rewards: bool = struct.field(pytree_node=False, default=True)
    observation_clip: float = 10.0
    reward_clip: float = 10.0
    log_std_init: float = init_only(0.0)
    adam_eps: float = init_only(1e-5)


def cleanrl_discrete_config(**overrides: Any) -> Config:
    """The defaults of CleanRL's ``ppo.py`` (Discrete actions, classic control): lr 2.5e-4,
    4 epochs of 4 minibatches, ent_coef 0.01, no observation or reward normalisation."""
    base: dict[str, Any] = dict(
        learning_rate=2.5e-4,
        update_epochs=4,
        num_minibatches=4,
        ent_coef=0.01,
        normalize_observations=False,
        normalize_rewards=False,
    )
    return Config(**{**base, **overrides})


@struct.dataclass
class State:
    """Everything PPO carries between iterations (a pytree).

    Attributes:
        actor, critic: networks and their Adam states (learning rate injected, see `update`).
        obs_norm: running statistics of the raw observations.
        return_norm: running statistics of the discounted returns (reward scaling).
        iteration: int32, `update` calls so far (drives the learning-rate anneal).
        config: the `Config`.
        discrete: Discrete actions (Categorical policy) rather than Box (Gaussian).
    """

    actor: TrainState
    critic: TrainState
    obs_norm: RunningMeanStd
    return_norm: RunningMeanStd
    iteration: jax.Array
    config: Config
    discrete: bool = struct.field(pytree_node=False, default=False)


@cache
def _adam(learning_rate: float, eps: float) -> optax.GradientTransformation:
    """Adam with an injectable learning rate, built once per hyperparameter set (equal
    static structure across states, see `hybridrl.core.optim`)."""
    return optax.inject_hyperparams(optax.adam, static_args=("eps",))(
        learning_rate=learning_rate, eps=eps
    )


def init(
    config: Config,
    key: jax.Array,
    observation_dim: int,
    action_dim: int,
    *,
    discrete: bool = False,
) -> State:
    """Fresh actor, critic and statistics. With ``discrete``, ``action_dim`` is the number of
    actions."""
    if config.update_epochs < 1 or config.num_minibatches < 1:
        raise ValueError("update_epochs and num_minibatches must be at least 1")
    if config.anneal_iterations < 0:
        raise ValueError(f"anneal_iterations must be >= 0, got {config.anneal_iterations}")
    hidden = tuple(config.hidden_dims)
    actor_net: Any
    if discrete:
        actor_net = PPOCategoricalActor(hidden_dims=hidden, num_actions=action_dim)
    else:
        actor_net = PPOGaussianActor(
            hidden_dims=hidden, action_dim=action_dim, log_std_init=config.log_std_init
        )
    critic_net = PPOStateValue(hidden_dims=hidden)
    k_actor, k_critic = jax.random.split(key)
    obs = jnp.zeros((1, observation_dim), jnp.float32)
    tx = _adam(config.learning_rate, config.adam_eps)
    # The injected rate as a float32 array from the start, so the state's leaves have the same
    # types before and after `update` (no second compile of a jitted loop).
    lr = jnp.asarray(config.learning_rate, jnp.float32)
    actor = TrainState.create(
        apply_fn=actor_net.apply, params=actor_net.init(k_actor, obs)["params"], tx=tx
    )
    critic = TrainState.create(
        apply_fn=critic_net.apply, params=critic_net.init(k_critic, obs)["params"], tx=tx
    )
    return State(
        actor=_with_learning_rate(actor, lr),
        critic=_with_learning_rate(critic, lr),
        obs_norm=RunningMeanStd.create((observation_dim,)),
        return_norm=RunningMeanStd.create(()),
        iteration=jnp.zeros((), jnp.int32),
        config=config,
        discrete=discrete,
    )


# ----------------------------------------------------------------------------- acting
def apply_observation_norm(state: State, obs: jax.Array) -> jax.Array:
    """Raw observations normalised with the current statistics and clipped, WITHOUT updating
    them (for the true final observation of an episode that the vector env already replaced
    by the next episode's first one, and for evaluation); float32."""
    obs = jnp.asarray(obs, jnp.float32)
    if not state.config.normalize_observations:
        return obs
    clip = state.config.observation_clip
    return jnp.clip(state.obs_norm.normalize(obs), -clip, clip)


def _policy(state: State, obs_n: jax.Array, params: Any = None) -> Any:
    params = state.actor.params if params is None else params
    return state.actor.apply_fn({"params": params}, obs_n)


def _value(state: State, obs_n: jax.Array, params: Any = None) -> jax.Array:
    params = state.critic.params if params is None else params
    return state.critic.apply_fn({"params": params}, obs_n)


def act(
    state: State, observations: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    """Actions for RAW observations (normalised inside with the current statistics, which are
    not updated): Box: in [-1, 1] (the mean, or a sample, clipped); Discrete: int32 (N,)
    (argmax, or a sample). ``deterministic`` is static under ``jit``."""
    dist = _policy(state, apply_observation_norm(state, observations))
    actions = dist.mode() if deterministic else dist.sample(key)
    return actions if state.discrete else jnp.clip(actions, -1.0, 1.0)


def normalize_observations(state: State, observations: jax.Array) -> tuple[State, jax.Array]:
    """Update ``obs_norm`` with the batch (N, obs_dim), then normalise it and clip to
    ±``observation_clip`` (gymnasium NormalizeObservation's order: update first). Without
    ``normalize_observations`` the observations come back as float32, the state unchanged."""
    obs = jnp.asarray(observations, jnp.float32)
    if not state.config.normalize_observations:
        return state, obs
    state = dataclasses.replace(state, obs_norm=state.obs_norm.update(obs))
    return state, apply_observation_norm(state, obs)


def normalize_rewards(
    state: State, discounted: jax.Array, rewards: jax.Array, terminated: jax.Array
) -> tuple[State, jax.Array, jax.Array]:
    """gymnasium v0.29.1 NormalizeReward plus CleanRL's clip, for one vector step.

    ``discounted ← discounted γ (1 - terminated) + r`` (``terminated`` only: a truncation does
    not reset it, as in that gymnasium version), ``return_norm`` updated with it, and
    ``scaled = clip(r / sqrt(var + 1e-8), ±reward_clip)``. ``discounted`` is the caller's
    (num_envs,) array (zeros at the start). Returns ``(state, discounted, scaled)``; without
    ``normalize_rewards``, the inputs unchanged.
    """
    rewards = jnp.asarray(rewards, jnp.float32)
    cfg = state.config
    if not cfg.normalize_rewards:
        return state, discounted, rewards
    done = jnp.asarray(terminated, jnp.float32)
    discounted = jnp.asarray(discounted, jnp.float32) * cfg.discount * (1.0 - done) + rewards
    return_norm = state.return_norm.update(discounted)
    scaled = jnp.clip(return_norm.scale(rewards), -cfg.reward_clip, cfg.reward_clip)
    return dataclasses.replace(state, return_norm=return_norm), discounted, scaled


def sample_actions(
    state: State, observations: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """A policy sample and its log-probability for NORMALISED observations. Box: the
    unclipped Gaussian sample (clip it before ``env.step``; the log-probability is of the
    unclipped sample, as CleanRL); Discrete: int32."""
    return _policy(state, observations).sample_and_log_prob(key)


def evaluate_actions(
    state: State, observations: jax.Array, actions: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(log π(a|s), H[π(·|s)], V(s))`` with the current parameters, normalised observations."""
    dist = _policy(state, observations)
    return dist.log_prob(actions), dist.entropy(), _value(state, observations)


# ----------------------------------------------------------------------------- learning
def prepare(state: State, rollout: Rollout) -> RolloutBatch:
    """The rollout's log-probs and values under the CURRENT parameters, GAE, flattened from
    (T, N) to T*N rows (row t*N + n is step t of env n).

    For plain PPO (prepared right after collection) these equal the values at collection
    time; data reused over several iterations is thereby treated as on-policy for the current
    policy, without importance correction.
    """
    cfg = state.config
    log_probs, _, values = evaluate_actions(state, rollout.observations, rollout.actions)
    next_values = _value(state, rollout.next_observations)
    advantages, returns = gae(
        rollout.rewards,
        values,
        next_values,
        rollout.terminals,
        rollout.timeouts,
        cfg.discount,
        cfg.gae_lambda,
    )
    rows = rollout.rewards.shape[0] * rollout.rewards.shape[1]

    def flat(x: jax.Array) -> jax.Array:
        return x.reshape((rows, *x.shape[2:]))

    return RolloutBatch(
        observations=flat(rollout.observations),
        actions=flat(rollout.actions),
        log_probs=jax.lax.stop_gradient(flat(log_probs)),
        values=jax.lax.stop_gradient(flat(values)),
        advantages=jax.lax.stop_gradient(flat(advantages)),
        returns=jax.lax.stop_gradient(flat(returns)),
    )


def learning_rate(config: Config, iteration: jax.Array) -> jax.Array:
    """The rate of the ``iteration``-th update (from 0): constant, or CleanRL's linear anneal
    ``lr0 (1 - iteration / anneal_iterations)``, floored at 0."""
    lr0 = jnp.asarray(config.learning_rate, jnp.float32)
    if config.anneal_iterations == 0:
        return lr0
    frac = 1.0 - iteration.astype(jnp.float32) / config.anneal_iterations
    return lr0 * jnp.maximum(frac, 0.0)


def _with_learning_rate(ts: TrainState, lr: jax.Array) -> TrainState:
    opt_state = ts.opt_state
    hyper = {**opt_state.hyperparams, "learning_rate": lr.astype(jnp.float32)}
    return ts.replace(opt_state=opt_state._replace(hyperparams=hyper))


def clip_joint_grad_norm(grads: Any, max_norm: float | jax.Array) -> Any:
    """Scale the gradient pytree by ``min(1, max_norm / (‖g‖₂ + 1e-6))``, the global norm over
    every leaf (``torch.nn.utils.clip_grad_norm_``, which CleanRL applies to actor and critic
    together)."""
    norm = optax.tree.norm(grads)
    scale = jnp.minimum(1.0, max_norm / (norm + 1e-6))
    return jax.tree_util.tree_map(lambda g: g * scale, grads)


def ppo_loss(
    state: State, actor_params: Any, critic_params: Any, mb: RolloutBatch
) -> tuple[jax.Array, Metrics]:
    """``L_clip - ent_coef H + vf_coef L_V`` on a minibatch, and its metrics."""
    cfg = state.config
    dist = _policy(state, mb.observations, actor_params)
    new_log_probs = dist.log_prob(mb.actions)
    entropy = jnp.mean(dist.entropy())
    new_values = _value(state, mb.observations, critic_params)
    log_ratio = new_log_probs - mb.log_probs
    adv = mb.advantages
    if cfg.normalize_advantages:
        adv = losses.ppo_normalize_advantages(adv)
    pg_loss = losses.ppo_clipped_surrogate_loss(new_log_probs, mb.log_probs, adv, cfg.clip_coef)
    v_loss = losses.ppo_value_loss(
        new_values, mb.values, mb.returns, cfg.clip_coef, cfg.clip_value_loss
    )
    loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
    old_approx_kl, approx_kl = losses.ppo_approx_kl(log_ratio)
    return loss, {
        "policy_loss": pg_loss,
        "value_loss": v_loss,
        "entropy": entropy,
        "approx_kl": approx_kl,
        "old_approx_kl": old_approx_kl,
        "clipfrac": losses.ppo_clip_fraction(log_ratio, cfg.clip_coef),
    }


def _minibatch_step(
    state: State, nets: tuple[TrainState, TrainState], mb: RolloutBatch
) -> tuple[tuple[TrainState, TrainState], Metrics]:
    actor, critic = nets
    grad_fn = jax.grad(lambda a, c: ppo_loss(state, a, c, mb), argnums=(0, 1), has_aux=True)
    grads, metrics = grad_fn(actor.params, critic.params)
    g_actor, g_critic = clip_joint_grad_norm(grads, state.config.max_grad_norm)
    return (actor.apply_gradients(grads=g_actor), critic.apply_gradients(grads=g_critic)), metrics


def explained_variance(values: jax.Array, returns: jax.Array) -> jax.Array:
    """``1 - Var(R - V) / Var(R)`` (NaN when Var(R) = 0), CleanRL's ``explained_variance``."""
    var_y = jnp.var(returns)
    return jnp.where(var_y == 0, jnp.nan, 1.0 - jnp.var(returns - values) / var_y)


def update(state: State, batch: RolloutBatch, key: jax.Array) -> tuple[State, Metrics]:
    """One PPO iteration: ``update_epochs`` × ``num_minibatches`` Adam steps, in one jittable
    function (a ``lax.scan`` over epochs, a ``lax.scan`` over minibatches). Epoch e shuffles
    the rows with ``jax.random.permutation(fold_in(key, e), B)`` and takes minibatch j as
    rows ``j B/M .. (j+1) B/M - 1`` of that order (CleanRL's ``b_inds`` slices).

    With ``target_kl``, an epoch whose last minibatch has ``approx_kl > target_kl`` is the
    last: later epochs are skipped by ``lax.cond`` (no compute, no change). The learning rate
    follows the anneal schedule at ``state.iteration``, which then increases by one.

    Metrics, as CleanRL logs them: ``policy_loss``, ``value_loss``, ``entropy``,
    ``approx_kl``, ``old_approx_kl`` of the last minibatch run; ``clipfrac`` averaged over every
    minibatch run; ``explained_variance`` of the batch's values against its returns;
    ``learning_rate``; ``epochs_run``.
    """
    cfg = state.config
    rows = batch.log_probs.shape[0]
    m = cfg.num_minibatches
    if rows % m:
        raise ValueError(f"a batch of {rows} rows does not split into {m} minibatches")
    lr = learning_rate(cfg, state.iteration)
    nets = (_with_learning_rate(state.actor, lr), _with_learning_rate(state.critic, lr))

    def run_epoch(carry: dict[str, Any], k: jax.Array) -> dict[str, Any]:
        order = jax.random.permutation(k, rows).reshape(m, rows // m)

        def step(
            n: tuple[TrainState, TrainState], idx: jax.Array
        ) -> tuple[tuple[TrainState, TrainState], Metrics]:
            mb = jax.tree_util.tree_map(lambda x: x[idx], batch)
            return _minibatch_step(state, n, mb)

        new_nets, ms = jax.lax.scan(step, carry["nets"], order)
        last = {name: ms[name][-1] for name in _CARRIED_METRICS}
        stop = jnp.asarray(False)
        if cfg.target_kl is not None:
            stop = last["approx_kl"] > cfg.target_kl
        return {
            "nets": new_nets,
            "stopped": stop,
            "epochs_run": carry["epochs_run"] + 1,
            "clipfrac_sum": carry["clipfrac_sum"] + jnp.sum(ms["clipfrac"]),
            "last": last,
        }

    def epoch(carry: dict[str, Any], k: jax.Array) -> tuple[dict[str, Any], None]:
        if cfg.target_kl is None:
            return run_epoch(carry, k), None
        return jax.lax.cond(carry["stopped"], lambda c, _: c, run_epoch, carry, k), None

    zero = jnp.zeros((), jnp.float32)
    carry0: dict[str, Any] = {
        "nets": nets,
        "stopped": jnp.asarray(False),
        "epochs_run": jnp.zeros((), jnp.int32),
        "clipfrac_sum": zero,
        "last": {name: zero for name in _CARRIED_METRICS},
    }
    epoch_keys = jax.vmap(lambda e: jax.random.fold_in(key, e))(jnp.arange(cfg.update_epochs))
    out, _ = jax.lax.scan(epoch, carry0, epoch_keys)
    actor, critic = out["nets"]
    epochs_run = out["epochs_run"].astype(jnp.float32)
    metrics = {
        **out["last"],
        "clipfrac": out["clipfrac_sum"] / (epochs_run * m),
        "explained_variance": explained_variance(batch.values, batch.returns),
        "learning_rate": lr,
        "epochs_run": epochs_run,
    }
    new_state = dataclasses.replace(
        state, actor=actor, critic=critic, iteration=state.iteration + 1
    )
    return new_state, metrics


# ----------------------------------------------------------------------------- sampling error
SAMPLING_ERROR_EPOCHS = 2000
"""Full-batch Adam steps of the empirical-policy fit (the 2025 protocol's 2,000)."""


def _trunk_features(trunk: Any, obs: jax.Array) -> jax.Array:
    """The actor's tanh trunk (``MLP_0``: ``Dense_0 .. Dense_{k-1}``, each followed by tanh)."""
    x = obs
    for i in range(len(trunk)):
        layer = trunk[f"Dense_{i}"]
        x = jnp.tanh(x @ layer["kernel"] + layer["bias"])
    return x


def _head_log_prob(head: dict[str, Any], features: jax.Array, actions: jax.Array) -> jax.Array:
    """log π(a|s) from the trunk's features and the output layer (``kernel``, ``bias``, and
    for a Gaussian ``log_std``). One module-level function: `fit_sampling_error` takes it as a
    static argument."""
    out = features @ head["kernel"] + head["bias"]
    if "log_std" in head:
        return Normal(out, jnp.broadcast_to(head["log_std"], out.shape)).log_prob(actions)
    return Categorical(out).log_prob(actions)


def sampling_error(
    state: State, rollout: Rollout, key: jax.Array, epochs: int = SAMPLING_ERROR_EPOCHS
) -> jax.Array:
    """The PROPS paper's sampling error of the rollout's (normalised observation, action)
    pairs under the current policy π_θ (`hybridrl.evaluation.sampling_error`, eq. 1):
    ``mean_D[log π_D(a|s) - log π_θ(a|s)]`` with π_D the maximum-likelihood fit to D started
    from θ.

    Protocol: NicholasCorrado/PROPS @ d5d91bd48b209bebe945c61b2a6b31f71cb71436,
    ``ppo_continuous.py`` ``compute_se`` (the 2025 rewrite): the hidden layers are frozen and
    only the output layer (Gaussian mean, or the logits) and log σ are fitted, by ``epochs``
    full-batch Adam steps at 1e-3, unweighted, no clipping (the 2025 warm-up of the rate is
    left out; see docs/sampling_error.md). Because the trunk is frozen, its features are
    computed once and the fit runs on the output layer alone: the same optimum and the same
    Adam trajectory as fitting the whole actor with the trunk masked, at the cost of a linear
    layer per step (2,000 steps over a 4,096-row buffer with 64 features: well under a
    second on a CPU). Deterministic (full batch: ``key`` is unused); jittable.

    Discrete actions use the same fit (the exact count-based KL needs discrete states).
    """
    params = state.actor.params
    act = rollout.actions
    rows = act.shape[0] * act.shape[1]
    obs = rollout.observations.reshape(rows, -1)
    act = act.reshape((rows, *act.shape[2:]))
    features = _trunk_features(params["MLP_0"], obs)
    head_name = "logits" if state.discrete else "mean"
    head = dict(params[head_name])
    if not state.discrete:
        head["log_std"] = params["log_std"]
    return fit_sampling_error(_head_log_prob, head, features, act, key, epochs=epochs)


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(
    on_policy=True,
    action_kinds=("box", "discrete"),
    running_stats=("obs_norm", "return_norm"),
    sampling_error=True,
)
