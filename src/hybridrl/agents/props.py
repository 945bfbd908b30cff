"""PROPS: Proximal Robust On-Policy Sampling (Corrado & Hanna, "On-Policy Policy Gradient
Reinforcement Learning Without On-Policy Sampling", arXiv 2311.08290) — PPO whose data are
collected by an adaptive *behaviour* policy π_φ that lowers the sampling error of the buffer.

Official code: NicholasCorrado/PPOROS @ a0c8708529047f85dcf98f90d5ea264dd43aeba2,
``PROPS/ppo_props_continuous.py`` (``update_props``, ``main``), ``PROPS/ppo_props_discrete.py``
and the tuned values in ``PROPS/hyperparams/ppo_ros.py``. ``docs/agents/props.md`` has the
equations, the defaults and every deviation.

The target π_θ is `hybridrl.agents.ppo` unchanged: `prepare` and `update` are PPO's on the
whole kept buffer, with log-probabilities and values recomputed under the current θ and no
importance correction for the behaviour policy (the paper's point: the reused data are
treated as on-policy). `act` (evaluation) uses the target. What this module adds:

- `sample_actions` samples from the behaviour policy π_φ (the runner collects with it);
- `update_behaviour`, every ``props_num_steps`` env steps: φ ← θ, then
  ``props_update_epochs`` × minibatches of Adam on the valid rows of the buffer D of

      L(φ) = E_D[ max(r, clip(r, 1 - ε_P, 1 + ε_P)) ] + λ KL(π_φ(·|s) ‖ π_θ(·|s)),
      r = π_φ(a|s) / π_θ(a|s)

  (`behaviour_loss`), gradient clipped to ``props_max_grad_norm``, stopping at the first
  minibatch whose approx-KL ``mean(r - 1 - log r)`` (before its step) exceeds
  ``props_target_kl``. Lowering r lowers the probability of the actions D already holds,
  which raises the under-sampled ones'.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, cast

import jax
import jax.numpy as jnp
import optax
from flax import struct

from hybridrl.agents import ppo
from hybridrl.agents.ppo import (
    act,
    apply_observation_norm,
    evaluate_actions,
    normalize_observations,
    normalize_rewards,
    prepare,
    sampling_error,
    update,
)
from hybridrl.agents.spec import AgentSpec, init_only
from hybridrl.core.train_state import TrainState
from hybridrl.data.rollout import Rollout, gae

__all__ = [
    "Config",
    "State",
    "act",
    "apply_observation_norm",
    "behaviour_loss",
    "evaluate_actions",
    "init",
    "normalize_observations",
    "normalize_rewards",
    "prepare",
    "sample_actions",
    "sampling_error",
    "update",
    "update_behaviour",
]

Metrics = dict[str, jax.Array]


@struct.dataclass
class Config(ppo.Config):
    """`ppo.Config` with PPOROS's argparse defaults for the target (``ppo_props_continuous.py``:
    lr 1e-4, entropy 0.01, target-KL 0.03; the rest as CleanRL) and the PROPS fields.

    Attributes (beyond `ppo.Config`):
        props_num_steps: m, env steps (summed over the vector envs) between behaviour updates.
        props_learning_rate: the behaviour Adam's rate (constant: PPOROS's ``props_anneal_lr``
            is off by default).
        props_clip_coef: ε_P of the ratio clip.
        props_lambda: λ, the weight of KL(π_φ ‖ π_θ).
        props_target_kl: stop the behaviour update at the first minibatch whose approx-KL
            exceeds it; None never stops.
        props_update_epochs, props_num_minibatches: passes over the buffer and its split
            (minibatch size ``(rows - props_num_steps) // props_num_minibatches``, PPOROS's).
        props_max_grad_norm: global-norm clip of the behaviour gradient.
        props_adv: AW-PROPS, weight the ratio term by |Â| / std(Â) of the minibatch.

    Per-task values tuned by the authors are in ``docs/agents/props.md``.
    """

    learning_rate: float = struct.field(pytree_node=False, default=1e-4)
    ent_coef: float = 0.01
    target_kl: float | None = struct.field(pytree_node=False, default=0.03)
    props_num_steps: int = struct.field(pytree_node=False, default=1024)
    props_learning_rate: float = init_only(1e-4)
    props_clip_coef: float = 0.3
    props_lambda: float = 0.3
    props_target_kl: float | None = struct.field(pytree_node=False, default=0.05)
    props_update_epochs: int = struct.field(pytree_node=False, default=16)
    props_num_minibatches: int = struct.field(pytree_node=False, default=16)
    props_max_grad_norm: float = 0.5
    props_adv: bool = struct.field(pytree_node=False, default=False)

    # The fields that make PROPS PPO plus an adaptive behaviour policy: a switch to PPO
    # (`hybridrl.training.phases.SwitchAgent`) stops adapting it, and these go with it.
    SWITCH_REMOVES: ClassVar[tuple[str, ...]] = (
        "props_num_steps",
        "props_learning_rate",
        "props_clip_coef",
        "props_lambda",
        "props_target_kl",
        "props_update_epochs",
        "props_num_minibatches",
        "props_max_grad_norm",
        "props_adv",
    )


@struct.dataclass(kw_only=True)
class State(ppo.State):
    """PPO's state (the target π_θ, critic, running statistics) plus the behaviour policy π_φ:
    the actor's network with its own Adam state, which persists across behaviour updates
    (PPOROS's ``props_optimizer``; the parameters are reset to θ at each update)."""

    behaviour: TrainState


def init(
    config: Config,
    key: jax.Array,
    observation_dim: int,
    action_dim: int,
    *,
    discrete: bool = False,
) -> State:
    """`ppo.init`, and π_φ = a copy of π_θ with Adam(``props_learning_rate``, ε 1e-5)."""
    if config.props_num_steps < 1:
        raise ValueError(f"props_num_steps must be at least 1, got {config.props_num_steps}")
    if config.props_update_epochs < 1 or config.props_num_minibatches < 1:
        raise ValueError("props_update_epochs and props_num_minibatches must be at least 1")
    base = ppo.init(config, key, observation_dim, action_dim, discrete=discrete)
    behaviour = TrainState.create(
        apply_fn=base.actor.apply_fn,
        params=base.actor.params,
        tx=optax.adam(config.props_learning_rate, eps=config.adam_eps),
    )
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    return State(**fields, behaviour=behaviour)


def sample_actions(
    state: State, observations: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """A sample of the BEHAVIOUR policy π_φ and its log-probability, for normalised
    observations (as `ppo.sample_actions`: Box samples unclipped, Discrete int32)."""
    dist = state.behaviour.apply_fn({"params": state.behaviour.params}, observations)
    return dist.sample_and_log_prob(key)


# ----------------------------------------------------------------------------- behaviour
def _kl(behaviour: Any, target: Any, discrete: bool) -> jax.Array:
    """Per-row KL(π_φ(·|s) ‖ π_θ(·|s)). Gaussian: the closed form per action dimension,
    AVERAGED over dimensions (PPOROS takes ``.mean()`` over the (rows, dims) tensor);
    Categorical: the exact sum over actions."""
    if discrete:
        logp_b, logp_t = behaviour.log_probs_all, target.log_probs_all
        return jnp.sum(jnp.exp(logp_b) * (logp_b - logp_t), axis=-1)
    var_b, var_t = jnp.exp(2.0 * behaviour.log_std), jnp.exp(2.0 * target.log_std)
    per_dim = (
        target.log_std
        - behaviour.log_std
        + (var_b + jnp.square(behaviour.mean - target.mean)) / (2.0 * var_t)
        - 0.5
    )
    return jnp.mean(per_dim, axis=-1)


def _masked_mean(x: jax.Array, w: jax.Array) -> jax.Array:
    return jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1.0)


def behaviour_loss(
    log_probs: jax.Array,
    target_log_probs: jax.Array,
    kl: jax.Array,
    clip_coef: float | jax.Array,
    lam: float | jax.Array,
    mask: jax.Array | None = None,
    weights: jax.Array | None = None,
) -> tuple[jax.Array, Metrics]:
    """The PROPS behaviour loss on a minibatch (PPOROS ``update_props``):

    ``L = mean(w · max(r, clip(r, 1 - ε, 1 + ε))) + λ mean(KL)`` with
    ``r = exp(log π_φ(a|s) - log π_θ(a|s))``, means over the rows with ``mask`` 1.

    Minimising max(r, clip(r)) pushes r down while r > 1 - ε and stops (zero gradient) once
    r < 1 - ε: the clip is from BELOW, where PPO's clipped surrogate with a negative
    advantage would stop. ``weights`` (AW-PROPS) default to 1; ``target_log_probs`` are
    constants. Metrics: ``policy_loss``, ``kl``, ``approx_kl`` (``mean(r - 1 - log r)``),
    ``old_approx_kl`` (``mean(-log r)``), ``clipfrac`` (``|r - 1| > ε``).
    """
    mask = jnp.ones_like(log_probs) if mask is None else mask.astype(log_probs.dtype)
    weights = jnp.ones_like(log_probs) if weights is None else weights
    log_ratio = log_probs - jax.lax.stop_gradient(target_log_probs)
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1.0 - clip_coef, 1.0 + clip_coef)
    pg = _masked_mean(weights * jnp.maximum(ratio, clipped), mask)
    kl_term = _masked_mean(kl, mask)
    stats = jax.lax.stop_gradient
    metrics = {
        "policy_loss": pg,
        "kl": kl_term,
        "approx_kl": stats(_masked_mean(ratio - 1.0 - log_ratio, mask)),
        "old_approx_kl": stats(_masked_mean(-log_ratio, mask)),
        "clipfrac": stats(
            _masked_mean((jnp.abs(ratio - 1.0) > clip_coef).astype(ratio.dtype), mask)
        ),
    }
    return pg + lam * kl_term, metrics


def _abs_advantages(state: State, buffer: Rollout, valid: jax.Array) -> jax.Array:
    """|Â| of the buffer under the current critic (GAE), for AW-PROPS; the last valid row of
    each env is cut like a time-out (bootstrapped from V of its next observation)."""
    cfg = cast(Config, state.config)
    # rows not collected yet: zeros, so that their contents cannot reach the valid rows
    keep = valid.astype(jnp.float32)
    buffer = jax.tree_util.tree_map(
        lambda x: jnp.where(keep.reshape(keep.shape + (1,) * (x.ndim - 2)) > 0, x, 0).astype(
            x.dtype
        ),
        buffer,
    )
    _, _, values = evaluate_actions(state, buffer.observations, buffer.actions)
    _, _, next_values = evaluate_actions(state, buffer.next_observations, buffer.actions)
    next_valid = jnp.concatenate([valid[1:], jnp.zeros_like(valid[:1])], axis=0)
    cut = jnp.maximum(buffer.timeouts, 1.0 - next_valid.astype(jnp.float32))
    adv, _ = gae(
        buffer.rewards, values, next_values, buffer.terminals, cut, cfg.discount, cfg.gae_lambda
    )
    return jnp.abs(adv)


def minibatch_size(rows: int, config: Config) -> int:
    """PPOROS's ``props_minibatch_size = (buffer_size - props_num_steps) // num_minibatches``
    for a buffer of ``rows`` rows (at least 1)."""
    return max(1, (rows - config.props_num_steps) // config.props_num_minibatches)


def update_behaviour(
    state: State, buffer: Rollout, valid: jax.Array, key: jax.Array
) -> tuple[State, Metrics]:
    """One PROPS behaviour update (PPOROS ``update_props``), in one jittable function.

    φ ← θ; then ``props_update_epochs`` epochs, each a fresh random order of the VALID rows
    of ``buffer`` (``valid``: (T, N) bool, rows collected so far) cut into minibatches of
    `minibatch_size` rows (static: ``ceil(rows / size)`` slots per epoch; slots past the
    valid rows are skipped without an optimizer step, and a partly valid slot averages over
    its valid rows only, like PPOROS's shorter last minibatch). Invalid rows never enter a
    loss. Per minibatch: log π_θ and π_θ's distribution recomputed from the current target,
    `behaviour_loss`, global-norm clip, an Adam step (the Adam state persists across
    behaviour updates). With ``props_target_kl``, the first minibatch whose approx-KL
    (computed before its step) exceeds it ends the update without stepping.

    Metrics: ``policy_loss``, ``kl``, ``approx_kl``, ``old_approx_kl`` of the last minibatch
    stepped; ``clipfrac`` averaged over the minibatches stepped; ``minibatches`` and
    ``epochs`` run.
    """
    cfg = cast(Config, state.config)
    steps, envs = valid.shape
    rows = steps * envs
    valid_flat = jnp.asarray(valid, bool).reshape(rows)
    obs = buffer.observations.reshape(rows, -1)
    actions = buffer.actions.reshape((rows, *buffer.actions.shape[2:]))
    target_params = state.actor.params
    apply = state.actor.apply_fn
    size = minibatch_size(rows, cfg)
    slots = math.ceil(rows / size)
    weights_all = None
    if cfg.props_adv:
        weights_all = _abs_advantages(state, buffer, jnp.asarray(valid, bool)).reshape(rows)

    def loss_fn(params: Any, idx: jax.Array, mask: jax.Array) -> tuple[jax.Array, Metrics]:
        mb_obs, mb_act = obs[idx], actions[idx]
        dist = apply({"params": params}, mb_obs)
        target = jax.lax.stop_gradient(apply({"params": target_params}, mb_obs))
        weights = None
        if weights_all is not None:
            adv = weights_all[idx]
            count = jnp.maximum(jnp.sum(mask), 2.0)
            mean = jnp.sum(adv * mask) / count
            std = jnp.sqrt(jnp.sum(jnp.square(adv - mean) * mask) / (count - 1.0))
            weights = adv / (std + 1e-8)
        return behaviour_loss(
            dist.log_prob(mb_act),
            target.log_prob(mb_act),
            _kl(dist, target, state.discrete),
            cfg.props_clip_coef,
            cfg.props_lambda,
            mask,
            weights,
        )

    tx = state.behaviour.tx
    zero = jnp.zeros((), jnp.float32)
    carried = ("policy_loss", "kl", "approx_kl", "old_approx_kl")

    def slot(carry: dict[str, Any], idx_mask: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
        idx, mask = idx_mask

        def compute(c: dict[str, Any]) -> dict[str, Any]:
            grads, m = jax.grad(loss_fn, has_aux=True)(c["params"], idx, mask)
            stop = jnp.asarray(False)
            if cfg.props_target_kl:
                stop = m["approx_kl"] > cfg.props_target_kl

            def step(c: dict[str, Any]) -> dict[str, Any]:
                g = ppo.clip_joint_grad_norm(grads, cfg.props_max_grad_norm)
                updates, opt_state = tx.update(g, c["opt_state"], c["params"])
                return {
                    **c,
                    "params": optax.apply_updates(c["params"], updates),
                    "opt_state": opt_state,
                    "minibatches": c["minibatches"] + 1,
                    "clipfrac_sum": c["clipfrac_sum"] + m["clipfrac"],
                    "last": {k: m[k] for k in carried},
                }

            return jax.lax.cond(stop, lambda c: {**c, "stopped": jnp.asarray(True)}, step, c)

        skip = carry["stopped"] | ~jnp.any(mask)
        return jax.lax.cond(skip, lambda c: c, compute, carry), None

    def epoch(carry: dict[str, Any], k: jax.Array) -> tuple[dict[str, Any], None]:
        # valid rows first, in a random order; invalid rows (and padding) after them
        order = jnp.argsort(jnp.where(valid_flat, jax.random.uniform(k, (rows,)), 2.0))
        order = jnp.concatenate([order, jnp.zeros(slots * size - rows, order.dtype)])
        position = jnp.arange(slots * size)
        mask = (valid_flat[order] & (position < rows)).astype(jnp.float32)
        # masked slots read a valid row (any), so rows not collected yet never enter a
        # computation (no NaN from their contents can reach a gradient)
        order = jnp.where(mask > 0, order, order[0])
        ran = carry["minibatches"]
        carry, _ = jax.lax.scan(
            slot, carry, (order.reshape(slots, size), mask.reshape(slots, size))
        )
        stepped = carry["minibatches"] > ran
        return {**carry, "epochs": carry["epochs"] + stepped.astype(jnp.int32)}, None

    carry0: dict[str, Any] = {
        "params": target_params,  # φ ← θ
        "opt_state": state.behaviour.opt_state,
        "stopped": jnp.asarray(False),
        "minibatches": jnp.zeros((), jnp.int32),
        "epochs": jnp.zeros((), jnp.int32),
        "clipfrac_sum": zero,
        "last": {k: zero for k in carried},
    }
    keys = jax.vmap(lambda e: jax.random.fold_in(key, e))(jnp.arange(cfg.props_update_epochs))
    out, _ = jax.lax.scan(epoch, carry0, keys)
    n = out["minibatches"].astype(jnp.float32)
    behaviour = state.behaviour.replace(params=out["params"], opt_state=out["opt_state"])
    metrics = {
        **out["last"],
        "clipfrac": out["clipfrac_sum"] / jnp.maximum(n, 1.0),
        "minibatches": n,
        "epochs": out["epochs"].astype(jnp.float32),
    }
    return dataclasses.replace(state, behaviour=behaviour), metrics


# What the runner reads (hybridrl.agents.spec).
SPEC = AgentSpec(
    on_policy=True,
    action_kinds=("box", "discrete"),
    running_stats=ppo.SPEC.running_stats,
    behaviour_interval=lambda config: int(config.props_num_steps),
    sampling_error=True,
)
