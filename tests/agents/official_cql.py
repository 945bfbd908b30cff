"""The official CQL / Cal-QL train step, written from its equations, for the equivalence tests.

Read at (the code below is written from the equations and the order of operations of these
files, not copied from them):

- young-geng/JaxCQL @ bac4299194bd6ae2bc7db9034fd1a31ac43a30d7 — ``JaxCQL/conservative_sac.py``
  (``ConservativeSAC.get_default_config``, ``_train_step``), ``JaxCQL/model.py``
  (``TanhGaussianPolicy``, ``FullyConnectedQFunction``, ``multiple_action_q_function``),
  ``JaxCQL/jax_utils.py`` (``value_and_multi_grad``, ``mse_loss``),
  ``JaxCQL/conservative_sac_main.py`` (target entropy -|A|, ``policy_log_std_offset=-1``).
  (young-geng/CQL, the address named in issue #18, holds the PyTorch ``SimpleSAC`` code; the
  JAX code lives in this sibling repository.)
- nakamotoo/Cal-QL @ ac6eafec22e8d60836573e1f488c7f626ce8a77e — ``JaxCQL/conservative_sac.py``
  (the same step with ``use_cql``/``cql_min_q_weight``/``enable_calql`` arguments and the
  Monte-Carlo lower bound), ``JaxCQL/conservative_sac_main.py``, ``scripts/run_antmaze.sh``.

The official step, for a batch (s, a, r, s', d) and the current parameters θ (policy φ, critics
Q1, Q2, targets Q̄1, Q̄2, log α, log α'), builds five scalar losses from the *same* θ and
differentiates each with respect to its own network only (``value_and_multi_grad``), then
applies all Adam steps at once and moves the targets towards the *new* critics:

1. ã, log π(ã|s) ~ π_φ(·|s);   L_α = -log α · mean(log π(ã|s) + H̄),  α = exp(log α)
2. L_π = mean(α log π(ã|s) - min(Q1, Q2)(s, ã))
3. y = r + γ (1 - d) Q̄(s', ·): a' ~ π_φ(·|s'), Q̄ = min(Q̄1, Q̄2)(s', a'); with the max backup
   K actions a'_k and the argmax over k of min(Q̄1, Q̄2); with ``backup_entropy`` minus
   α log π of the chosen action. TD_i = mean((Q_i(s, a) - y)^2), y constant.
4. M uniform actions on [-1, 1]^A, M from π_φ(·|s), M from π_φ(·|s'), all scored at s;
   (Cal-QL) the two policy columns become max(Q_i, G(s)) with G the MC return;
   gap_i = mean_s clip(T logsumexp_k([Q_rand - A log ½, Q_next - log π, Q_cur - log π] / T)
   - Q_i(s, a)); L_Qi = TD_i + w gap_i, or with the Lagrange form
   L_Qi = TD_i + α' w (gap_i - τ) and L_α' = -(α' w (gap_1 - τ) + α' w (gap_2 - τ)) / 2,
   α' = clip(exp(log α'), 0, 1e6).

Everything is computed in float64 (call inside ``jax.enable_x64(True)``). The random draws are
inputs (`Draws`), so a test can feed the very samples hybridrl drew.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from hybridrl.agents import cql
from hybridrl.data.transitions import Transitions
from hybridrl.types import Array
from tests.helpers import enable_x64

Layers = list[tuple[jax.Array, jax.Array]]
Params = dict[str, Any]

F64 = jnp.float64
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@struct.dataclass
class Settings:
    """The official ``ConservativeSAC`` settings that enter one train step.

    The switches that change the step's structure are static; the numbers (and the Cal-QL
    switch, applied with a select) are pytree leaves, so settings that differ only in them
    share one compiled reference.

    ``log_std_offset`` is the official policy's constant added to the raw log-std
    (``policy_log_std_offset``, -1 in both repositories' scripts); hybridrl's actor has none
    (issue #18 §2), so the tests pass 0 and share the raw log-std layer.
    """

    backup_entropy: bool = struct.field(pytree_node=False, default=False)
    max_target_backup: bool = struct.field(pytree_node=False, default=False)
    cql_lagrange: bool = struct.field(pytree_node=False, default=False)
    discount: float = 0.99
    target_entropy: float = -1.0
    cql_min_q_weight: float = 5.0
    cql_temp: float = 1.0
    cql_target_action_gap: float = 1.0
    cql_clip_diff_min: float = -np.inf
    cql_clip_diff_max: float = np.inf
    enable_calql: bool = False
    log_std_multiplier: float = 1.0
    log_std_offset: float = -1.0


@struct.dataclass
class Draws:
    """The random inputs of one step (float64): Gaussian noise ε of the reparameterized policy
    samples u = μ + σ ε and the uniform actions.

    actor: (B, A) for ã ~ π(·|s) (policy and temperature losses).
    target: (B, A), or (B, K, A) with the max backup, for a' ~ π(·|s').
    random_actions, current, next: (B, M, A) for the conservative term.
    """

    actor: Array
    target: Array
    random_actions: Array
    current: Array
    next: Array


# ----------------------------------------------------------------------------- networks
def mlp(layers: Layers, x: jax.Array) -> jax.Array:
    """ReLU hidden layers, linear output (``FullyConnectedNetwork``)."""
    for w, b in layers[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = layers[-1]
    return x @ w + b


def q_value(layers: Layers, observations: Array, actions: Array) -> jax.Array:
    """Q(s, a): (B,) for actions (B, A); (B, M) for actions (B, M, A), each state repeated
    once per action (``multiple_action_q_function``)."""
    if actions.ndim == 3:
        observations = jnp.repeat(observations[:, None], actions.shape[1], axis=1)
    return mlp(layers, jnp.concatenate([observations, actions], axis=-1))[..., 0]


def policy_sample(
    layers: Layers, observations: Array, noise: Array, settings: Settings
) -> tuple[jax.Array, jax.Array]:
    """tanh-Gaussian sample and its log-density for given noise ε (``TanhGaussianPolicy``).

    One output layer of width 2A split into (μ, raw); log σ = clip(m · raw + offset, -20, 2);
    u = μ + σ ε, a = tanh(u), log π(a) = Σ_j [log N(u_j; μ_j, σ_j) - log(1 - tanh(u_j)²)].
    ``noise`` of shape (B, M, A) gives M samples per state (the official ``repeat=M``).
    """
    if noise.ndim == 3:
        observations = jnp.repeat(observations[:, None], noise.shape[1], axis=1)
    mean, raw = jnp.split(mlp(layers, observations), 2, axis=-1)
    log_std = jnp.clip(settings.log_std_multiplier * raw + settings.log_std_offset, -20.0, 2.0)
    std = jnp.exp(log_std)
    u = mean + std * noise
    action = jnp.tanh(u)
    gaussian = -0.5 * jnp.square((u - mean) / std) - log_std - HALF_LOG_2PI
    # log(1 - tanh(u)²) = 2 (log 2 - u - softplus(-2u)): the form of distrax's Tanh bijector,
    # which the official policy uses; the naive form loses all precision once tanh(u) ≈ ±1.
    log_det = 2.0 * (math.log(2.0) - u - jnp.logaddexp(0.0, -2.0 * u))
    log_prob = jnp.sum(gaussian - log_det, axis=-1)
    return action, log_prob


# ----------------------------------------------------------------------------- the step
def td_target(
    policy: Layers,
    target_qf: Params,
    alpha: jax.Array,
    batch: dict[str, jax.Array],
    noise: Array,
    settings: Settings,
) -> jax.Array:
    """y = r + γ (1 - d) min(Q̄1, Q̄2)(s', a'), a' ~ π(·|s') (constant). With the max backup,
    ``noise`` is (B, K, A) and the argmax over the K actions is taken (its log π kept for the
    entropy bonus); with ``backup_entropy``, α log π(a'|s') is subtracted."""
    s_next = batch["next_observations"]
    next_actions, next_log_pi = policy_sample(policy, s_next, noise, settings)
    target_q = jnp.minimum(
        q_value(target_qf["qf1"], s_next, next_actions),
        q_value(target_qf["qf2"], s_next, next_actions),
    )
    if settings.max_target_backup:
        best = jnp.argmax(target_q, axis=-1)[:, None]
        target_q = jnp.take_along_axis(target_q, best, axis=-1)[:, 0]
        next_log_pi = jnp.take_along_axis(next_log_pi, best, axis=-1)[:, 0]
    if settings.backup_entropy:
        target_q = target_q - alpha * next_log_pi
    y = batch["rewards"] + (1.0 - batch["dones"]) * settings.discount * target_q
    return jax.lax.stop_gradient(y)


def losses(
    params: Params,
    target_qf: Params,
    batch: dict[str, jax.Array],
    draws: Draws,
    settings: Settings,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """The official losses at ``params`` (keys ``policy``, ``qf1``, ``qf2``, ``log_alpha``
    and, with the Lagrange form, ``log_alpha_prime``) and intermediate values."""
    s, a, s_next = batch["observations"], batch["actions"], batch["next_observations"]
    qf1, qf2, pi = params["qf1"], params["qf2"], params["policy"]
    out: dict[str, jax.Array] = {}
    aux: dict[str, jax.Array] = {}

    # 1-2. temperature and policy losses, from one sample ã ~ π(·|s).
    new_actions, log_pi = policy_sample(pi, s, draws.actor, settings)
    log_alpha = params["log_alpha"]
    entropy_term = jnp.mean(log_pi + settings.target_entropy)
    out["log_alpha"] = -log_alpha * entropy_term
    alpha = jnp.exp(log_alpha)
    q_new = jnp.minimum(q_value(qf1, s, new_actions), q_value(qf2, s, new_actions))
    out["policy"] = jnp.mean(alpha * log_pi - q_new)
    aux.update(log_pi=log_pi, entropy_term=entropy_term, alpha=alpha)

    # 3. TD target from the target critics and the current policy.
    q1_pred, q2_pred = q_value(qf1, s, a), q_value(qf2, s, a)
    y = td_target(pi, target_qf, alpha, batch, draws.target, settings)
    td1, td2 = jnp.mean(jnp.square(q1_pred - y)), jnp.mean(jnp.square(q2_pred - y))
    aux.update(td_target=y, q1_pred=q1_pred, q2_pred=q2_pred, td1=td1, td2=td2)

    # 4. conservative term: three sampled sets, all scored at the current state s.
    cur_actions, cur_log_pi = policy_sample(pi, s, draws.current, settings)
    nxt_actions, nxt_log_pi = policy_sample(pi, s_next, draws.next, settings)
    action_dim = a.shape[-1]
    gaps, rates, raw_diffs = [], [], []
    for qf, q_pred in ((qf1, q1_pred), (qf2, q2_pred)):
        q_rand = q_value(qf, s, draws.random_actions)
        q_cur = q_value(qf, s, cur_actions)
        q_nxt = q_value(qf, s, nxt_actions)
        # Cal-QL: the MC return bounds the policy columns from below (logged before bounding).
        bound = jnp.broadcast_to(batch["mc_returns"][:, None], q_cur.shape)
        rates += [jnp.mean(q_cur < bound), jnp.mean(q_nxt < bound)]
        q_cur = jnp.where(settings.enable_calql, jnp.maximum(q_cur, bound), q_cur)
        q_nxt = jnp.where(settings.enable_calql, jnp.maximum(q_nxt, bound), q_nxt)
        log_uniform = math.log(0.5**action_dim)
        logits = jnp.concatenate(
            [q_rand - log_uniform, q_nxt - nxt_log_pi, q_cur - cur_log_pi], axis=1
        )
        ood = jax.scipy.special.logsumexp(logits / settings.cql_temp, axis=1) * settings.cql_temp
        raw_diffs.append(ood - q_pred)
        diff = jnp.clip(ood - q_pred, settings.cql_clip_diff_min, settings.cql_clip_diff_max)
        gaps.append(jnp.mean(diff))
    w = settings.cql_min_q_weight
    if settings.cql_lagrange:
        alpha_prime = jnp.clip(jnp.exp(params["log_alpha_prime"]), 0.0, 1e6)
        cql1 = alpha_prime * w * (gaps[0] - settings.cql_target_action_gap)
        cql2 = alpha_prime * w * (gaps[1] - settings.cql_target_action_gap)
        out["log_alpha_prime"] = -(cql1 + cql2) * 0.5
        aux["alpha_prime"] = alpha_prime
    else:
        cql1, cql2 = w * gaps[0], w * gaps[1]
    out["qf1"], out["qf2"] = td1 + cql1, td2 + cql2
    aux.update(
        gap1=gaps[0],
        gap2=gaps[1],
        cql1=cql1,
        cql2=cql2,
        bound_rate=jnp.mean(jnp.stack(rates)),
        raw_diffs=jnp.stack(raw_diffs),
    )
    return out, aux


def losses_and_grads(
    params: Params,
    target_qf: Params,
    batch: dict[str, jax.Array],
    draws: Draws,
    settings: Settings,
) -> tuple[dict[str, jax.Array], dict[str, Any], dict[str, jax.Array]]:
    """Each loss and its gradient with respect to its own network only, all at ``params``
    (``value_and_multi_grad``: loss k's gradient is taken over every parameter, and only the
    entry of network k is applied). One reverse pass over the stacked losses (``jacrev``)
    instead of one per loss: the same numbers, a fifth of the compile time."""

    def stacked(p: Params) -> tuple[jax.Array, tuple[dict[str, jax.Array], Any]]:
        values, aux = losses(p, target_qf, batch, draws, settings)
        return jnp.stack([values[n] for n in sorted(values)]), (values, aux)

    jacobian, (values, aux) = jax.jacrev(stacked, has_aux=True)(params)
    grads = {
        name: jax.tree_util.tree_map(lambda x, i=i: x[i], jacobian[name])
        for i, name in enumerate(sorted(values))
    }
    return values, grads, aux


# The reference and the test's own random draws are compiled without LLVM optimization: on
# CPU that compiles about 40% faster, and a float64 reference (or integer PRNG bits) does not
# need it. hybridrl's update itself is compiled as users compile it.
FAST_COMPILE = {"xla_backend_optimization_level": 0}

# Compiled once per shape and static `Settings` fields (call inside ``jax.enable_x64(True)``).
reference_step = jax.jit(losses_and_grads, compiler_options=FAST_COMPILE)


# ----------------------------------------------------------------------------- layouts
def _dense_layers(tree: Any, member: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    names = sorted(tree, key=lambda n: int(n.split("_")[-1]))
    pick = (
        (lambda x: np.asarray(x, np.float64))
        if member is None
        else (lambda x: np.asarray(x[member], np.float64))
    )
    return [(pick(tree[n]["kernel"]), pick(tree[n]["bias"])) for n in names]


def policy_layers(actor_params: Any) -> Layers:
    """hybridrl's `TanhGaussianActor` parameters in the official layout: the hidden layers,
    then one output layer whose first A columns are the mean and last A the raw log-std (the
    ``mean`` and ``log_std`` heads side by side)."""
    hidden = _dense_layers(actor_params["MLP_0"], None)
    head = (
        np.concatenate(
            [np.asarray(actor_params[k]["kernel"], np.float64) for k in ("mean", "log_std")],
            axis=1,
        ),
        np.concatenate(
            [np.asarray(actor_params[k]["bias"], np.float64) for k in ("mean", "log_std")]
        ),
    )
    return [(jnp.asarray(w, F64), jnp.asarray(b, F64)) for w, b in [*hidden, head]]


def qf_layers(critic_params: Any, member: int) -> Layers:
    """Critic ``member`` of hybridrl's `EnsembleCritic` as one official
    ``FullyConnectedQFunction``."""
    members = critic_params["ensemble"]["members"]
    layers = [
        *_dense_layers(members["MLP_0"], member),
        *_dense_layers({"Dense_0": members["Dense_0"]}, member),
    ]
    return [(jnp.asarray(w, F64), jnp.asarray(b, F64)) for w, b in layers]


def flatten_layers(layers: Layers) -> list[np.ndarray]:
    """The arrays of a layer list, for element-wise comparison."""
    return [np.asarray(x) for pair in layers for x in pair]


# ----------------------------------------------------------------------------- hybridrl side
# What the tests need to put hybridrl's agent and the reference on the same footing: a small
# batch, non-trivial parameters, gradients read back exactly, and the very random draws
# `cql.update` makes.

OBS_DIM, ACT_DIM, BATCH = 3, 2, 16


def make_batch(seed: int = 0) -> Transitions:
    """16 hand-made transitions: 4 terminal (no bootstrap), one time-out (bootstraps), data
    actions inside (-1, 1), Monte-Carlo returns on the scale of the perturbed Q values so the
    Cal-QL bound is active for part of the policy samples."""
    rng = np.random.default_rng(seed)
    terminals = np.zeros(BATCH, np.float32)
    terminals[[2, 7, 11, 15]] = 1.0
    timeouts = np.zeros(BATCH, np.float32)
    timeouts[5] = 1.0
    return Transitions(
        observations=jnp.asarray(rng.normal(size=(BATCH, OBS_DIM)), jnp.float32),
        actions=jnp.asarray(rng.uniform(-0.9, 0.9, size=(BATCH, ACT_DIM)), jnp.float32),
        rewards=jnp.asarray(rng.normal(size=BATCH), jnp.float32),
        next_observations=jnp.asarray(rng.normal(size=(BATCH, OBS_DIM)), jnp.float32),
        terminals=jnp.asarray(terminals),
        timeouts=jnp.asarray(timeouts),
        extras={"mc_returns": jnp.asarray(rng.normal(0.0, 0.6, size=BATCH), jnp.float32)},
    )


@functools.cache
def fresh_state(hidden_dims: tuple[int, ...]) -> cql.State:
    """One initialized state shared by the CQL and Cal-QL tests (`prepare_state` gives it
    each test's config). Compiled: eager initialization compiles every small op separately."""
    init = jax.jit(cql.init, static_argnums=(0, 2, 3), compiler_options=FAST_COMPILE)
    # log σ bias 0, as before the official -1 offset became the default (issue #18 §2): the
    # parameters are perturbed anyway and the clip test's gap range is calibrated on these.
    config = cql.Config(hidden_dims=hidden_dims, actor_log_std_offset=0.0)
    return init(config, jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)


def official_batch(batch: Transitions) -> dict[str, jax.Array]:
    """The official batch dict (``dones`` = terminals) in float64 (inside ``enable_x64``)."""
    return {
        "observations": jnp.asarray(batch.observations, F64),
        "actions": jnp.asarray(batch.actions, F64),
        "rewards": jnp.asarray(batch.rewards, F64),
        "next_observations": jnp.asarray(batch.next_observations, F64),
        "dones": jnp.asarray(batch.terminals, F64),
        "mc_returns": jnp.asarray(batch.extras["mc_returns"], F64),
    }


def _capture_transformation() -> optax.GradientTransformation:
    """Plain gradient descent at rate 1 whose optimizer state is the last gradient.

    The parameters still move (so a later step of `cql.update` sees the moved critics, as it
    would after Adam) and the exact gradient each network received is read back from its
    ``opt_state`` instead of being recovered from a float32 difference of parameters.
    """

    def init(params: Any) -> Any:
        return jax.tree_util.tree_map(lambda x: jnp.asarray(np.zeros(x.shape, x.dtype)), params)

    def update(grads: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del state, params
        return jax.tree_util.tree_map(jnp.negative, grads), grads

    return optax.GradientTransformation(init, update)


# One object for the whole session: ``tx`` is part of a state's static structure, so equal
# configs then share their compiled update.
CAPTURE = _capture_transformation()


def _perturbed(tree: Any, rng: np.random.Generator, scale: float) -> Any:
    # Host noise: jax.random would compile a sampler for every parameter shape.
    return jax.tree_util.tree_map(
        lambda x: jnp.asarray(np.asarray(x) + scale * rng.normal(size=x.shape), x.dtype), tree
    )


def _capturing(ts: Any, params: Any, **changes: Any) -> Any:
    return ts.replace(params=params, tx=CAPTURE, opt_state=CAPTURE.init(params), **changes)


def prepare_state(
    state: cql.State, config: cql.Config, temperature: float = 0.5, seed: int = 1
) -> cql.State:
    """``state`` (from `cql.init` with the same network sizes) with ``config``, perturbed
    parameters (fresh heads are ~0: Q ≈ 0, log σ ≈ 0, which would hide most terms), target
    critics distinct from the online ones, α = ``temperature`` (≠ 1, so log α ≠ 0 and the
    two temperature-loss forms differ), and every optimizer replaced by `CAPTURE`.

    One `cql.init` serves every config of a test file: the optimizers are replaced anyway and
    the networks depend only on the sizes.
    """
    rng = np.random.default_rng(seed)
    actor = _perturbed(state.actor.params, rng, 0.3)
    critic = _perturbed(state.critic.params, rng, 0.3)
    target = _perturbed(critic, rng, 0.1)
    log_alpha = {"log_alpha": jnp.asarray(np.log(temperature), jnp.float32)}
    return dataclasses.replace(
        state,
        config=config,
        actor=_capturing(state.actor, actor),
        critic=_capturing(state.critic, critic, target_params=target),
        temperature=_capturing(state.temperature, log_alpha),
        alpha_prime=_capturing(state.alpha_prime, state.alpha_prime.params),
    )


def policy_noise(key: jax.Array, batch_size: int, action_dim: int, m: int | None) -> jax.Array:
    """The standard normal ε of `TanhNormal.sample_and_log_prob` drawn from ``key``: shape
    (B, A), or (m, B, A) moved to (B, m, A) as `cql._policy_samples` does."""
    if m is None:
        return jax.random.normal(key, (batch_size, action_dim), jnp.float32)
    return jnp.swapaxes(jax.random.normal(key, (m, batch_size, action_dim), jnp.float32), 0, 1)


def hybridrl_draws(config: cql.Config, key: jax.Array, batch_size: int, action_dim: int) -> Draws:
    """The random draws of ``cql.update(state, batch, key)`` (float64 copies for the
    reference), from the agent's key schedule:

    - `sac.utd_update`: k_critic, k_actor = split(key); the first critic step's key is
      split(k_critic, utd_ratio)[0]
    - `cql.update_critic`: k_target, k_loss = split(step key)
    - target (`sac.critic_target` / `cql.critic_target`): ε from split(k_target, 3)[0], one
      per state, or ``num_samples`` per state with the max backup
    - `cql.conservative_penalty`: uniform actions from fold_in(k_loss, 0), ε of π(·|s) from
      fold_in(k_loss, 1), ε of π(·|s') from fold_in(k_loss, 2)
    - `sac.update_actor`: ε from split(k_actor)[0]
    """
    draws = _draw(
        key,
        batch_size,
        action_dim,
        config.num_samples,
        config.max_target_backup,
        config.utd_ratio,
    )
    return Draws(
        *(np.asarray(getattr(draws, f.name), np.float64) for f in dataclasses.fields(draws))
    )


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5), compiler_options=FAST_COMPILE)
def _draw(key: jax.Array, b: int, a: int, m: int, max_target_backup: bool, utd_ratio: int) -> Draws:
    k_critic, k_actor = jax.random.split(key)
    k_step = jax.random.split(k_critic, utd_ratio)[0]
    k_target, k_loss = jax.random.split(k_step)
    k_next_pi = jax.random.split(k_target, 3)[0]
    k_rand, k_cur, k_nxt = (jax.random.fold_in(k_loss, i) for i in range(3))
    return Draws(
        actor=policy_noise(jax.random.split(k_actor)[0], b, a, None),
        target=policy_noise(k_next_pi, b, a, m if max_target_backup else None),
        random_actions=jax.random.uniform(k_rand, (b, m, a), jnp.float32, -1.0, 1.0),
        current=policy_noise(k_cur, b, a, m),
        next=policy_noise(k_nxt, b, a, m),
    )


def official_settings(config: cql.Config, action_dim: int, **overrides: Any) -> Settings:
    """The official settings equal to a hybridrl config (target entropy -|A| as the official
    scripts; ``log_std_offset=0``: hybridrl's actor has no offset, issue #18 §2)."""
    fields: dict[str, Any] = {
        "discount": float(config.discount),
        "target_entropy": -float(action_dim),
        "backup_entropy": config.backup_entropy,
        "max_target_backup": config.max_target_backup,
        "cql_min_q_weight": float(config.cql_alpha),
        "cql_temp": float(config.cql_temperature),
        "cql_lagrange": config.lagrange,
        "cql_target_action_gap": float(config.target_action_gap),
        "cql_clip_diff_min": float(config.cql_clip_diff_min),
        "cql_clip_diff_max": float(config.cql_clip_diff_max),
        "enable_calql": bool(config.enable_calql),
        "log_std_offset": 0.0,
    }
    fields.update(overrides)
    return Settings(**fields)


def official_params(state: cql.State, critic_params: Any = None) -> Params:
    """The official parameter dict of ``state`` (float64), optionally with other critics."""
    critic = state.critic.params if critic_params is None else critic_params
    return {
        "policy": policy_layers(state.actor.params),
        "qf1": qf_layers(critic, 0),
        "qf2": qf_layers(critic, 1),
        "log_alpha": jnp.asarray(state.temperature.params["log_alpha"], F64),
        "log_alpha_prime": jnp.asarray(state.alpha_prime.params["log_alpha"], F64),
    }


def official_targets(state: cql.State) -> Params:
    return {
        "qf1": qf_layers(state.critic.target_params, 0),
        "qf2": qf_layers(state.critic.target_params, 1),
    }


def assert_close(actual: Any, expected: Any, what: str) -> None:
    """rtol = atol = 1e-5 (hybridrl in float32 against the float64 reference)."""
    np.testing.assert_allclose(
        np.asarray(actual, np.float64),
        np.asarray(expected, np.float64),
        rtol=1e-5,
        atol=1e-5,
        err_msg=what,
    )


def assert_layers_close(actual: Layers, expected: Layers, what: str) -> None:
    for i, (x, y) in enumerate(zip(flatten_layers(actual), flatten_layers(expected), strict=True)):
        assert_close(x, y, f"{what}, array {i}")


UpdateFn = Callable[[cql.State, Transitions, jax.Array], tuple[cql.State, dict[str, jax.Array]]]


def check_update(
    update: UpdateFn, state: cql.State, batch: Transitions, key: jax.Array, settings: Settings
) -> dict[str, Any]:
    """Run one hybridrl ``update(state, batch, key)`` and compare it with the official step.

    Compared (each to rtol = atol = 1e-5):

    - critic side, official losses at this step's parameters: TD loss (``critic_loss``), TD
      target mean, Q(s, a) mean, gap (mean over critics), weighted conservative loss, the
      gradient of each critic, the Cal-QL bound rate; with the Lagrange form α', its loss and
      its gradient (else log α' untouched); the target critics after the step
      (τ · new + (1 - τ) · old, as the official code);
    - actor side: the policy loss and gradient, the entropy, α, the temperature loss and
      gradient. hybridrl takes the actor/temperature step *after* the critic step and with the
      updated critics (documented in docs/agents/cql.md, "Order of the updates"); the official
      step computes every loss at the pre-step parameters. The reference for this side
      therefore gets the updated critics, and the official-order gradient (pre-step critics)
      is asserted to differ, so the order is checked rather than assumed. The temperature
      loss is hybridrl's documented −α · mean(log π + H̄) (official: −log α · …): its value is
      compared with that form and its gradient with α times the official gradient.

    Returns the reference's values and intermediates for further checks.
    """
    new, metrics = update(state, batch, key)
    draws = hybridrl_draws(state.config, key, batch.rewards.shape[0], batch.actions.shape[-1])
    with enable_x64(True):
        data, targets = official_batch(batch), official_targets(state)
        values, grads, aux = reference_step(official_params(state), targets, data, draws, settings)

        # Critic side: the official order (this step's parameters, pre-step policy and targets).
        assert_close(metrics["critic_loss"], aux["td1"] + aux["td2"], "TD loss (sum of critics)")
        assert_close(metrics["target_mean"], jnp.mean(aux["td_target"]), "TD target mean")
        q_pred = jnp.concatenate([aux["q1_pred"], aux["q2_pred"]])
        assert_close(metrics["q_mean"], jnp.mean(q_pred), "Q(s, a) mean")
        assert_close(metrics["cql_gap"], (aux["gap1"] + aux["gap2"]) / 2, "conservative gap")
        assert_close(metrics["cql_loss"], aux["cql1"] + aux["cql2"], "weighted conservative loss")
        assert_close(
            metrics["critic_loss"] + metrics["cql_loss"],
            values["qf1"] + values["qf2"],
            "critic loss",
        )
        for i, name in enumerate(("qf1", "qf2")):
            got = qf_layers(new.critic.opt_state, i)
            assert_layers_close(got, grads[name], f"gradient of critic {i}")
        if "calql_bound_rate" in metrics:
            assert_close(metrics["calql_bound_rate"], aux["bound_rate"], "Cal-QL bound rate")
        prime_grad = new.alpha_prime.opt_state["log_alpha"]
        if settings.cql_lagrange:
            assert_close(metrics["alpha_prime"], aux["alpha_prime"], "alpha'")
            assert_close(metrics["alpha_prime_loss"], values["log_alpha_prime"], "alpha' loss")
            assert_close(prime_grad, grads["log_alpha_prime"], "gradient of log alpha'")
        else:
            assert float(prime_grad) == 0.0
            assert float(new.alpha_prime.params["log_alpha"]) == float(
                state.alpha_prime.params["log_alpha"]
            )
        tau = float(state.config.tau)
        expected_targets = jax.tree_util.tree_map(
            lambda new_p, old_t: (
                tau * np.asarray(new_p, np.float64) + (1 - tau) * np.asarray(old_t, np.float64)
            ),
            new.critic.params,
            state.critic.target_params,
        )
        for i in range(2):
            assert_layers_close(
                qf_layers(new.critic.target_params, i),
                qf_layers(expected_targets, i),
                f"target critic {i} after Polyak",
            )

        # Actor side: the same losses with the critics hybridrl's actor step sees (updated).
        values_a, grads_a, aux_a = reference_step(
            official_params(state, new.critic.params), targets, data, draws, settings
        )
        actor_grad = policy_layers(new.actor.opt_state)
        assert_close(metrics["actor_loss"], values_a["policy"], "policy loss")
        assert_layers_close(actor_grad, grads_a["policy"], "policy gradient")
        official_order = flatten_layers(grads["policy"])
        assert not all(
            np.allclose(x, y, rtol=1e-5, atol=1e-5)
            for x, y in zip(flatten_layers(actor_grad), official_order, strict=True)
        ), "the actor step should see the updated critics (docs/agents/cql.md)"
        assert_close(metrics["entropy"], -jnp.mean(aux_a["log_pi"]), "entropy")
        alpha = aux_a["alpha"]
        assert_close(metrics["temperature"], alpha, "temperature")
        assert_close(
            metrics["temperature_loss"], -alpha * aux_a["entropy_term"], "temperature loss"
        )
        assert_close(
            new.temperature.opt_state["log_alpha"],
            alpha * grads_a["log_alpha"],
            "gradient of log alpha",
        )
        return {"values": values, "grads": grads, "aux": aux}
