"""Sampling error: how far a batch of (s, a) pairs is from the policy that was meant to make it.

PROPS (Corrado & Hanna, "On-Policy Policy Gradient Reinforcement Learning Without On-Policy
Sampling", arXiv 2311.08290) measures a buffer ``D`` of state-action pairs against the target
policy ``pi_theta`` by the KL divergence of the buffer's *empirical policy* ``pi_D`` (the
maximum-likelihood policy of ``D``) from the target::

    SE(D) = E_{(s, a) ~ D}[ log pi_D(a | s) - log pi_theta(a | s) ]            (1)

which is ``sum_s d_D(s) KL(pi_D(.|s) || pi_theta(.|s))`` with ``d_D`` the buffer's state
frequencies: zero when the actions in ``D`` occur exactly in the proportions ``pi_theta``
gives them, and positive otherwise (an MLE ``pi_D`` fits ``D`` at least as well as
``pi_theta``, so (1) is >= 0 whenever the fit reaches the maximum).

Three ways to get ``pi_D``:

* `exact_sampling_error`: a state-free discrete policy (a bandit). ``pi_D(a) = count(a) / M``
  and (1) is ``KL(pi_D || pi) = sum_a pi_D(a) log(pi_D(a) / pi(a))`` with ``0 log 0 = 0``. For
  ``M`` i.i.d. samples from ``pi`` over ``|A|`` actions, ``2 M KL`` is asymptotically chi-square
  with ``|A| - 1`` degrees of freedom, so ``E[SE] ~ (|A| - 1) / (2 M)``.
* `exact_sampling_error_per_state`: discrete states and actions (tabular): ``pi_D(a|s) =
  count(s, a) / count(s)``, and (1) weights each state's KL by its share of the buffer.
* `fit_sampling_error`: the general case, as in the official code. ``pi_D`` starts as a copy
  of the target's parameters and is fitted by maximum likelihood on ``D`` with Adam
  (optionally only some parameters trainable); then (1) is averaged over ``D``. The fit is
  the only approximation: a fit that stops short of the maximum *underestimates* (1).

Official code this follows (read for the facts; nothing copied):

* NicholasCorrado/PPOROS @ a0c8708529047f85dcf98f90d5ea264dd43aeba2 (2024-04-27, the paper's
  code), ``PROPS/ppo_props_continuous.py`` and ``PROPS/ppo_props_discrete.py``, function
  ``compute_se``: ``pi_D`` is a deep copy of the target agent; Adam at ``--se-lr`` 1e-3 for
  ``--se-epochs`` 250 epochs of shuffled minibatches of ``512 * |D| / num_steps`` rows, with
  the gradient's global norm clipped to 1. The continuous version freezes the *weights* of
  the actor mean's first two linear layers (their biases, the output layer and the
  state-independent log-std stay trainable), clamps log-std to [-3, 1] in the log-probs, and
  weights (1) by the buffer's standardized absolute advantages ``|A_hat|``. The discrete
  version freezes nothing, does not weight, and clamps the logits to [-3, 1].
* NicholasCorrado/PROPS @ d5d91bd48b209bebe945c61b2a6b31f71cb71436 (2025-04-07, the rewrite),
  ``ppo_continuous.py``, function ``compute_se``: freezes the actor mean's first two linear
  layers entirely (weights and biases), so only the output layer and log-std are fitted;
  2,000 *full-batch* Adam steps at 1e-3 under torch's ``LinearLR`` default (the rate ramps
  linearly from a third of 1e-3 to 1e-3 over the 2,000 steps); no gradient clipping, no
  clamping, no advantage weighting.

Choices here: `fit_sampling_error` defaults to the 2025 protocol (2,000 full-batch epochs,
Adam 1e-3, unweighted, no clipping). Full batch makes the result a deterministic function of
``(params, D)`` (the key is unused), and on an accelerator one step over a PROPS buffer (a
few thousand rows) costs about as much as one minibatch step. ``batch_size=`` gives the
PPOROS protocol (shuffled minibatches each epoch; rows beyond a whole number of minibatches
are left out of that epoch, a different remainder each epoch), ``max_grad_norm=1.0`` its
clipping, ``weights=`` its advantage weighting, and an optax schedule as ``learning_rate``
the 2025 warm-up (``optax.linear_schedule(1e-3 / 3, 1e-3, 2000)``). Which parameters are
fitted is the caller's choice, by the names in its own parameter tree: the 2025 one (output
layer and log-std) is e.g. ``trainable=lambda path: path[-2:-1] == ("Dense_2",) or path[-1]
== "log_std"`` for a Flax actor with layers ``Dense_0..2``. Clamps (PPOROS clamps log-std and
logits to [-3, 1]) belong in the caller's ``log_prob_fn``.

Everything is pure: a function of its arguments and the key, one compiled ``lax.scan`` over
epochs. ``log_prob_fn`` is a static argument of that compiled function, so pass the same
function object each time (a module-level function or one built once), not a fresh lambda
per call, or every call compiles anew.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hybridrl.types import Array, HybridRLError

LogProbFn = Callable[[Any, Array, Array], Array]
"""``log_prob_fn(params, observations, actions) -> (M,)`` log pi(a_i | s_i)."""


# ----------------------------------------------------------------------------- exact, discrete
def exact_sampling_error(actions: Array, probs: Array) -> jax.Array:
    """``KL(pi_D || pi)`` for a state-free discrete policy ``pi`` (a bandit), eq. (1).

    Args:
        actions: int array (M,), the sampled actions, in ``[0, n)``.
        probs: (n,) the policy's action probabilities (summing to 1).

    Returns:
        A float scalar ``sum_a pi_D(a) log(pi_D(a) / pi(a))`` with ``pi_D(a) = count(a) / M``
        and ``0 log 0 = 0`` (an action never sampled adds nothing); ``inf`` when an action of
        probability 0 was sampled. Jit- and vmap-able; the input checks run only on concrete
        (non-traced) arrays.
    """
    probs = jnp.asarray(probs)
    if probs.ndim != 1:
        raise HybridRLError(f"probs must have shape (n,), got {probs.shape}")
    actions = _check_discrete(actions, int(probs.shape[0]), "actions")
    _check_probs(probs)
    return _bandit_kl(actions, probs)


def exact_sampling_error_per_state(states: Array, actions: Array, probs: Array) -> jax.Array:
    """Eq. (1) for a tabular policy: discrete states and discrete actions.

    Args:
        states: int array (M,), the visited states, in ``[0, S)``.
        actions: int array (M,), the actions taken there, in ``[0, n)``.
        probs: (S, n), ``probs[s]`` the policy's action probabilities in state ``s``.

    Returns:
        ``sum_s (M_s / M) KL(pi_D(.|s) || pi(.|s))`` with ``pi_D(a|s) = count(s, a) / M_s``
        and ``M_s`` the visits of ``s`` (states never visited add nothing), which equals
        ``mean_D[log pi_D(a|s) - log pi(a|s)]``.
    """
    probs = jnp.asarray(probs)
    if probs.ndim != 2:
        raise HybridRLError(f"probs must have shape (S, n), got {probs.shape}")
    num_states, n = (int(d) for d in probs.shape)
    states = _check_discrete(states, num_states, "states")
    actions = _check_discrete(actions, n, "actions")
    if states.shape != actions.shape:
        raise HybridRLError(f"states {states.shape} and actions {actions.shape} differ in shape")
    _check_probs(probs)
    return _tabular_kl(states, actions, probs)


@jax.jit
def _bandit_kl(actions: jax.Array, probs: jax.Array) -> jax.Array:
    counts = jnp.zeros(probs.shape, jnp.float32).at[actions].add(1.0)
    return _weighted_kl(counts, probs, actions.shape[0])


@jax.jit
def _tabular_kl(states: jax.Array, actions: jax.Array, probs: jax.Array) -> jax.Array:
    counts = jnp.zeros(probs.shape, jnp.float32).at[states, actions].add(1.0)
    return _weighted_kl(counts, probs, actions.shape[0])


def _weighted_kl(counts: jax.Array, probs: jax.Array, m: int) -> jax.Array:
    """``sum (counts / m) log(pi_D / probs)`` with ``pi_D`` the row-normalized counts."""
    visits = counts.sum(axis=-1, keepdims=True)
    empirical = counts / jnp.maximum(visits, 1.0)
    seen = counts > 0
    # log(p_D / p) only where p_D > 0; p = 0 there gives +inf, as the KL does
    log_ratio = jnp.where(seen, jnp.log(jnp.where(seen, empirical, 1.0)) - jnp.log(probs), 0.0)
    return jnp.sum(jnp.where(seen, counts * log_ratio, 0.0)) / m


def _check_discrete(x: Array, n: int, name: str) -> jax.Array:
    arr = jnp.asarray(x)
    if arr.ndim != 1 or not jnp.issubdtype(arr.dtype, jnp.integer):
        raise HybridRLError(
            f"{name} must be an integer array of shape (M,), got {arr.dtype} {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise HybridRLError(f"{name} is empty: the sampling error of no samples is undefined")
    if not isinstance(arr, jax.core.Tracer):
        host = np.asarray(arr)
        if host.min() < 0 or host.max() >= n:
            raise HybridRLError(
                f"{name} must lie in [0, {n}), got values in [{host.min()}, {host.max()}]"
            )
    return arr


def _check_probs(probs: jax.Array) -> None:
    if isinstance(probs, jax.core.Tracer):
        return
    host = np.asarray(probs, np.float64)
    if np.any(host < 0) or not np.allclose(host.sum(axis=-1), 1.0, atol=1e-5):
        raise HybridRLError("probs must be non-negative and sum to 1 over the actions")


# ----------------------------------------------------------------------------- fitted, general
def trainable_mask(params: Any, trainable: Any = None) -> Any:
    """A pytree like ``params`` of 1.0 (fitted) / 0.0 (frozen) leaves.

    ``trainable`` is None (everything is fitted), a pytree of bools with the structure of
    ``params``, or a function ``path -> bool`` of a leaf's path: the tuple of its dict keys,
    attribute names and sequence indices as strings, e.g. ``("params", "Dense_2", "kernel")``
    for a Flax parameter dict.
    """
    if trainable is None:
        return jax.tree_util.tree_map(lambda _: jnp.float32(1.0), params)
    if callable(trainable):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: jnp.float32(bool(trainable(_path_names(path)))), params
        )
    try:
        return jax.tree_util.tree_map(lambda _, t: jnp.float32(bool(t)), params, trainable)
    except ValueError as exc:
        raise HybridRLError(f"trainable must match the structure of params: {exc}") from exc


def _path_names(path: tuple[Any, ...]) -> tuple[str, ...]:
    names = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                names.append(str(getattr(entry, attr)))
                break
        else:
            names.append(str(entry))
    return tuple(names)


def empirical_policy_params(
    log_prob_fn: LogProbFn,
    params: Any,
    observations: Array,
    actions: Array,
    key: jax.Array,
    *,
    trainable: Any = None,
    epochs: int = 2000,
    learning_rate: float | optax.Schedule = 1e-3,
    batch_size: int | None = None,
    max_grad_norm: float | None = None,
) -> Any:
    """The empirical policy ``pi_D``: ``params`` fitted by maximum likelihood to ``D``.

    Minimises ``-mean_D log pi(a|s)`` from ``params`` with Adam, updating only the
    ``trainable`` leaves (`trainable_mask`); see `fit_sampling_error` for the arguments.
    """
    observations, actions = jnp.asarray(observations), jnp.asarray(actions)
    m = _check_buffer(observations, actions)
    if epochs <= 0:
        raise HybridRLError(f"epochs must be positive, got {epochs}")
    if batch_size is not None and not 0 < batch_size <= m:
        raise HybridRLError(f"batch_size must be in [1, {m}] (the buffer's size), got {batch_size}")
    mask = trainable_mask(params, trainable)
    schedule = learning_rate if callable(learning_rate) else None
    rate = 0.0 if schedule is not None else float(learning_rate)  # traced: no recompiles
    clip = -1.0 if max_grad_norm is None else float(max_grad_norm)
    return _fit(
        log_prob_fn,
        schedule,
        int(epochs),
        None if batch_size is None or batch_size == m else int(batch_size),
        max_grad_norm is not None,
        params,
        mask,
        observations,
        actions,
        key,
        jnp.float32(rate),
        jnp.float32(clip),
    )


def fit_sampling_error(
    log_prob_fn: LogProbFn,
    params: Any,
    observations: Array,
    actions: Array,
    key: jax.Array,
    *,
    trainable: Any = None,
    epochs: int = 2000,
    learning_rate: float | optax.Schedule = 1e-3,
    batch_size: int | None = None,
    max_grad_norm: float | None = None,
    weights: Array | None = None,
) -> jax.Array:
    """Sampling error (1) of a buffer under the target policy, with ``pi_D`` fitted.

    Args:
        log_prob_fn: ``(params, observations, actions) -> (M,)`` the policy's log-probabilities
            (densities for continuous actions); keeps this independent of network classes.
        params: the target policy's parameters (``pi_theta``), also ``pi_D``'s starting point.
        observations, actions: the buffer ``D``, M rows each.
        key: shuffles the minibatches (unused in full batch).
        trainable: which leaves of ``params`` the fit may change (`trainable_mask`); None: all.
            The official code fits only the output layer and log-std (2025) or all but the
            first two layers' weights (PPOROS).
        epochs: passes over ``D`` (2,000 in the 2025 code, 250 in PPOROS).
        learning_rate: Adam's step size, or an optax schedule of the step count.
        batch_size: None for full-batch steps (2025); else shuffled minibatches of this many
            rows, ``M // batch_size`` per epoch (PPOROS).
        max_grad_norm: clip the gradient's global norm (PPOROS: 1.0); None: no clipping.
        weights: (M,) weights of the final average (PPOROS: standardized ``|advantage|``);
            None: the plain mean of (1). The fit itself is never weighted.

    Returns:
        A float scalar ``mean_D[w (log pi_D(a|s) - log pi_theta(a|s))]``.
    """
    obs, act = jnp.asarray(observations), jnp.asarray(actions)
    m = _check_buffer(obs, act)
    w = jnp.ones(m) if weights is None else jnp.asarray(weights)
    if w.shape != (m,):
        raise HybridRLError(f"weights must have shape ({m},), got {w.shape}")
    fitted = empirical_policy_params(
        log_prob_fn,
        params,
        obs,
        act,
        key,
        trainable=trainable,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        max_grad_norm=max_grad_norm,
    )
    return _mean_log_ratio(log_prob_fn, fitted, params, obs, act, w)


@partial(jax.jit, static_argnums=0)
def _mean_log_ratio(
    log_prob_fn: LogProbFn,
    fitted: Any,
    params: Any,
    observations: jax.Array,
    actions: jax.Array,
    weights: jax.Array,
) -> jax.Array:
    """``mean(w * (log pi_D(a|s) - log pi_theta(a|s)))``, eq. (1)."""
    log_ratio = log_prob_fn(fitted, observations, actions) - log_prob_fn(
        params, observations, actions
    )
    return jnp.mean(weights * log_ratio)


def _check_buffer(observations: jax.Array, actions: jax.Array) -> int:
    if observations.ndim == 0 or actions.ndim == 0 or observations.shape[0] != actions.shape[0]:
        raise HybridRLError(
            f"observations {observations.shape} and actions {actions.shape} must share a leading "
            "dimension M (one row per sample)"
        )
    m = int(actions.shape[0])
    if m == 0:
        raise HybridRLError("the buffer is empty: the sampling error of no samples is undefined")
    return m


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _fit(
    log_prob_fn: LogProbFn,
    schedule: optax.Schedule | None,
    epochs: int,
    batch_size: int | None,
    clip: bool,
    params: Any,
    mask: Any,
    observations: jax.Array,
    actions: jax.Array,
    key: jax.Array,
    rate: jax.Array,
    max_grad_norm: jax.Array,
) -> Any:
    """``epochs`` Adam passes of maximum likelihood on ``(observations, actions)``, in one
    ``lax.scan``; frozen leaves (mask 0) never move."""
    adam = optax.adam(schedule if schedule is not None else rate)
    optimizer = optax.chain(optax.clip_by_global_norm(max_grad_norm), adam) if clip else adam

    def nll(p: Any, obs: jax.Array, act: jax.Array) -> jax.Array:
        return -jnp.mean(log_prob_fn(p, obs, act))

    def step(carry: tuple[Any, Any], rows: jax.Array | None) -> tuple[tuple[Any, Any], None]:
        p, opt_state = carry
        obs, act = (observations, actions) if rows is None else (observations[rows], actions[rows])
        grads = jax.grad(nll)(p, obs, act)
        grads = jax.tree_util.tree_map(lambda g, keep: g * keep, grads, mask)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        updates = jax.tree_util.tree_map(lambda u, keep: u * keep, updates, mask)
        return (optax.apply_updates(p, updates), opt_state), None

    m = actions.shape[0]

    def epoch(carry: tuple[Any, Any], epoch_key: jax.Array) -> tuple[tuple[Any, Any], None]:
        if batch_size is None:
            return step(carry, None)
        num = m // batch_size
        rows = jax.random.permutation(epoch_key, m)[: num * batch_size].reshape(num, batch_size)
        carry, _ = jax.lax.scan(step, carry, rows)
        return carry, None

    (fitted, _), _ = jax.lax.scan(
        epoch, (params, optimizer.init(params)), jax.random.split(key, epochs)
    )
    return fitted
