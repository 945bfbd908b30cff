"""SAC as RLPD runs it, against the official update rule (issue #18 §1).

Reference: github.com/ikostrikov/rlpd at commit c90fd4baf28c9c9ef40a81460a2e395092844f88,
files ``rlpd/agents/sac/sac_learner.py`` (``update_critic``, ``update_actor``,
``update_temperature``, ``update``), ``rlpd/agents/sac/temperature.py``,
``rlpd/networks/{ensemble,mlp,state_action_value}.py``, ``rlpd/distributions/tanh_normal.py``
and ``configs/{rlpd,sac,td}_config.py``. The reference below is written from the equations
of those files, in float64, without calling any hybridrl loss:

- critic step on minibatch i (``update_critic``): a' = tanh(μ(s') + σ(s') ε'),
  ``y = r + γ m min_{j∈K} Q̄_j(s', a') - γ m α log π(a'|s')`` (``backup_entropy=True``), K a
  random set of ``num_min_qs`` distinct critics (``subsample_ensemble``: ``jax.random.choice``
  without replacement); loss ``mean_{n,b} (Q_n(s, a) - y)^2``; one Adam step; then
  ``θ̄ <- τ θ + (1 - τ) θ̄`` (``optax.incremental_update``);
- ``update`` with ``utd_ratio`` U: U critic steps on U consecutive slices of the batch, then
  ONE actor step on the last slice with the updated critics (``update_actor``: loss
  ``mean(α log π(ã|s) - mean_n Q_n(s, ã))``) and ONE temperature step with the entropy that
  actor step measured (``update_temperature``: ``α (H - H̄)``, α = exp(log α), H̄ = -|A|/2);
- critics: Dense -> LayerNorm (flax default ε = 1e-6) -> ReLU for every hidden layer
  (``MLP(activate_final=True, use_layer_norm=True)``), then Dense(1); the actor has no
  LayerNorm, log σ clipped to [-20, 2]; Adam with optax's defaults (b1 0.9, b2 0.999, ε 1e-8).

Random draws are injected: the test derives ε', K and ε from the update key exactly as
hybridrl does (`hybridrl_sac_draws`) and feeds them to the reference. Gradients are read from
hybridrl's real update path by wrapping each optimizer in `recording` (Adam that also stores
the gradient it receives).

Differences found (also in docs/agents/sac.md, "Deviations"):

1. hybridrl's critic loss is SUMMED over the N critics (its documented SAC-N/EDAC convention),
   RLPD's is a MEAN over critics and batch (``((qs - target_q) ** 2).mean()``, L242):
   hybridrl's loss and gradients are exactly N times RLPD's. The reference follows hybridrl's
   documented choice (``critic_scale = N``) and `test_rlpd_critic_target_and_loss_on_one_
   minibatch` asserts the factor; Adam divides it out (up to its ε = 1e-8).
2. Initialisation (final layers at scale 1e-2, documented) is not part of the update rule; the
   tests perturb every parameter anyway.
3. Numerics only: RLPD evaluates log π(a) through tfp's Tanh bijector from the squashed sample;
   hybridrl from the pre-tanh value (exact where tanh saturates in float32).
Everything else (target, subset draw, entropy backup, actor/temperature losses, their order
and minibatch, Polyak, Adam) agrees to 1e-5.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hybridrl.agents import sac
from hybridrl.data.transitions import Transitions
from hybridrl.networks.ensemble import subsample_ensemble_min
from tests.helpers import enable_x64

RTOL = ATOL = 1e-5
OBS_DIM, ACT_DIM = 3, 2
HIDDEN = (8, 8)
LN_EPS = 1e-6  # flax.linen.LayerNorm's default, which RLPD's and WSRL's MLPs use unchanged
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8  # optax.adam defaults (RLPD and WSRL call it)

Arrays = dict[str, np.ndarray]


# ------------------------------------------------------------------ recording optimizer
class Recorded(NamedTuple):
    step: jax.Array
    grads: Any
    inner: Any


def recording(inner: optax.GradientTransformation, slots: int) -> optax.GradientTransformation:
    """``inner`` (Adam) that also writes every gradient it receives into slot ``step``: the
    only way to read the gradients of hybridrl's own update (inside its ``lax.scan``) without
    re-implementing its loss functions in the test."""

    def init(params: Any) -> Recorded:
        grads = jax.tree_util.tree_map(lambda p: jnp.zeros((slots, *p.shape), p.dtype), params)
        return Recorded(jnp.zeros((), jnp.int32), grads, inner.init(params))

    def update(g: Any, state: Recorded, params: Any = None) -> tuple[Any, Recorded]:
        grads = jax.tree_util.tree_map(lambda buf, x: buf.at[state.step].set(x), state.grads, g)
        updates, inner_state = inner.update(g, state.inner, params)
        return updates, Recorded(state.step + 1, grads, inner_state)

    return optax.GradientTransformation(init, update)  # type: ignore[arg-type]


def with_recording(state: Any, critic_slots: int) -> Any:
    """``state`` with each of its three optimizers replaced by a fresh `recording` Adam."""
    cfg = state.config

    def swap(ts: Any, lr: float, slots: int) -> Any:
        tx = recording(optax.adam(lr), slots)
        return ts.replace(tx=tx, opt_state=tx.init(ts.params))

    return dataclasses.replace(
        state,
        actor=swap(state.actor, cfg.actor_lr, 1),
        critic=swap(state.critic, cfg.critic_lr, critic_slots),
        temperature=swap(state.temperature, cfg.temperature_lr, 1),
    )


# ----------------------------------------------------------------- test states, batches
def perturbed(state: Any, seed: int, alpha: float = 0.3, scale: float = 0.3) -> Any:
    """Every weight moved off its initialisation (final layers start at 1e-2, which would make
    Q ≈ 0 and hide terms), target critics different from the online ones, α = ``alpha``.
    In numpy: eager JAX ops would each compile, which costs more than the tests themselves."""
    rng = np.random.default_rng(seed)

    def noisy(tree: Any) -> Any:
        return jax.tree_util.tree_map(
            lambda x: jnp.asarray(
                np.asarray(x) + scale * rng.standard_normal(x.shape).astype(np.float32)
            ),
            tree,
        )

    critic = state.critic.replace(
        params=noisy(state.critic.params), target_params=noisy(state.critic.params)
    )
    temperature = state.temperature.replace(
        params={"log_alpha": jnp.asarray(math.log(alpha), jnp.float32)}
    )
    actor = state.actor.replace(params=noisy(state.actor.params))
    return dataclasses.replace(state, actor=actor, critic=critic, temperature=temperature)


def batch_of(seed: int, n: int, mc_returns: bool = False) -> Transitions:
    """``n`` random transitions (actions in [-1, 1], every third row terminal), from numpy."""
    rng = np.random.default_rng(seed)

    def f32(x: np.ndarray) -> jax.Array:
        return jnp.asarray(x.astype(np.float32))

    return Transitions(
        observations=f32(rng.standard_normal((n, OBS_DIM))),
        actions=f32(rng.uniform(-1, 1, (n, ACT_DIM))),
        rewards=f32(rng.standard_normal(n)),
        next_observations=f32(rng.standard_normal((n, OBS_DIM))),
        terminals=f32((np.arange(n) % 3 == 0).astype(np.float64)),
        timeouts=f32(np.zeros(n)),
        extras={"mc_returns": f32(rng.standard_normal(n))} if mc_returns else {},
    )


# ------------------------------------------------------- hybridrl's draws, for injection
class Draws(NamedTuple):
    next_eps: list[np.ndarray]  # per critic step: (B, A) standard normals of a' ~ π(·|s')
    subsets: list[np.ndarray]  # per critic step: the K critic indices of the target min
    actor_eps: np.ndarray  # (B, A) standard normals of ã ~ π(·|s)


def hybridrl_sac_draws(key: jax.Array, utd: int, b: int, n: int, k: int) -> Draws:
    """The samples `sac.update(state, batch, key)` draws, derived from ``key`` by the same
    splits (`sac.utd_update` -> `sac.update_critic` -> `sac.critic_target`, and
    `sac.update_actor`). If hybridrl's key plumbing changes, this is what to update."""
    k_critic, k_actor = jax.random.split(key)
    next_eps, subsets = [], []
    for step_key in jax.random.split(k_critic, utd):
        k_target, _ = jax.random.split(step_key)
        k_pi, k_sub, _ = jax.random.split(k_target, 3)
        next_eps.append(np.asarray(jax.random.normal(k_pi, (b, ACT_DIM), jnp.float32)))
        subsets.append(
            np.arange(n)
            if k == n
            else np.asarray(jax.random.choice(k_sub, n, shape=(k,), replace=False))
        )
    k_pi, _ = jax.random.split(k_actor)
    actor_eps = np.asarray(jax.random.normal(k_pi, (b, ACT_DIM), jnp.float32))
    return Draws(next_eps, subsets, actor_eps)


# -------------------------------------------------- parameter layout (hybridrl -> plain)
def critic_arrays(tree: Mapping[str, Any]) -> Arrays:
    """hybridrl's `EnsembleCritic` parameters (or gradients) as named float64 arrays with the
    member axis first: ``h{i}.W`` (N, in, out), ``h{i}.b``, ``h{i}.ln_scale``,
    ``h{i}.ln_bias``, ``out.W``, ``out.b``. Only a renaming: the maths is in `ref_q`."""
    members = tree["ensemble"]["members"]
    out: Arrays = {}
    for i in range(len(HIDDEN)):
        dense = members["MLP_0"][f"Dense_{i}"]
        out[f"h{i}.W"], out[f"h{i}.b"] = dense["kernel"], dense["bias"]
        if f"LayerNorm_{i}" in members["MLP_0"]:
            ln = members["MLP_0"][f"LayerNorm_{i}"]
            out[f"h{i}.ln_scale"], out[f"h{i}.ln_bias"] = ln["scale"], ln["bias"]
    out["out.W"], out["out.b"] = members["Dense_0"]["kernel"], members["Dense_0"]["bias"]
    return {name: np.asarray(x, np.float64) for name, x in out.items()}


def actor_arrays(tree: Mapping[str, Any]) -> Arrays:
    """hybridrl's `TanhGaussianActor` parameters (or gradients) as named float64 arrays."""
    out: Arrays = {}
    for i in range(len(HIDDEN)):
        dense = tree["MLP_0"][f"Dense_{i}"]
        out[f"h{i}.W"], out[f"h{i}.b"] = dense["kernel"], dense["bias"]
        if f"LayerNorm_{i}" in tree["MLP_0"]:  # WSRL's actor (wsrl_config.py L12)
            ln = tree["MLP_0"][f"LayerNorm_{i}"]
            out[f"h{i}.ln_scale"], out[f"h{i}.ln_bias"] = ln["scale"], ln["bias"]
    for head in ("mean", "log_std"):
        out[f"{head}.W"], out[f"{head}.b"] = tree[head]["kernel"], tree[head]["bias"]
    return {name: np.asarray(x, np.float64) for name, x in out.items()}


# ------------------------------------------------------------ the reference, in float64
def ref_q(c: Mapping[str, jax.Array], obs: jax.Array, act: jax.Array) -> jax.Array:
    """Q_n(s, a) of every member, (N, ...): per hidden layer x W + b, LayerNorm where the
    arrays have one (mean and biased variance over features, ε = 1e-6, then scale and bias),
    ReLU; then a linear output (rlpd/networks/mlp.py, state_action_value.py)."""
    h = jnp.concatenate([obs, act], axis=-1)
    for i in range(len(HIDDEN)):
        w, b = c[f"h{i}.W"], c[f"h{i}.b"]
        h = jnp.einsum("...i,nio->n...o", h, w) if i == 0 else jnp.einsum("n...i,nio->n...o", h, w)
        h = h + b.reshape(b.shape[0], *([1] * (h.ndim - 2)), b.shape[-1])
        if f"h{i}.ln_scale" in c:
            mu = h.mean(axis=-1, keepdims=True)
            var = ((h - mu) ** 2).mean(axis=-1, keepdims=True)
            s, t = c[f"h{i}.ln_scale"], c[f"h{i}.ln_bias"]
            shape = (s.shape[0], *([1] * (h.ndim - 2)), s.shape[-1])
            h = (h - mu) / jnp.sqrt(var + LN_EPS) * s.reshape(shape) + t.reshape(shape)
        h = jnp.maximum(h, 0.0)
    y = jnp.einsum("n...i,nio->n...o", h, c["out.W"])[..., 0]
    return y + c["out.b"].reshape(c["out.b"].shape[0], *([1] * (y.ndim - 1)))


def ref_policy(
    p: Mapping[str, jax.Array], obs: jax.Array, eps: jax.Array, log_std_min: float = -20.0
) -> tuple[jax.Array, jax.Array]:
    """a = tanh(u), u = μ(s) + σ(s) ε, and log π(a|s) = log N(u; μ, σ) - Σ log(1 - tanh(u)²)
    (the change of variables of rlpd's TanhTransformedDistribution; float64 keeps
    ``1 - tanh(u)²`` exact for the moderate u of these tests)."""
    h = obs
    for i in range(len(HIDDEN)):
        h = h @ p[f"h{i}.W"] + p[f"h{i}.b"]
        if f"h{i}.ln_scale" in p:  # LayerNorm before the ReLU, as the critics
            mu = h.mean(axis=-1, keepdims=True)
            var = ((h - mu) ** 2).mean(axis=-1, keepdims=True)
            h = (h - mu) / jnp.sqrt(var + LN_EPS) * p[f"h{i}.ln_scale"] + p[f"h{i}.ln_bias"]
        h = jnp.maximum(h, 0.0)
    mean = h @ p["mean.W"] + p["mean.b"]
    log_std = jnp.clip(h @ p["log_std.W"] + p["log_std.b"], log_std_min, 2.0)
    std = jnp.exp(log_std)
    u = mean + std * eps
    a = jnp.tanh(u)
    log_normal = -0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    log_prob = jnp.sum(log_normal - jnp.log(1.0 - a**2), axis=-1)
    return a, log_prob


@dataclasses.dataclass(frozen=True)
class Rule:
    """The knobs that tell the official SAC variants apart (values cited where used).

    ``critic_scale`` multiplies the official mean-over-(critics, batch) critic loss: N to
    follow hybridrl's documented sum over critics (difference 1 of this module)."""

    actor_q: str  # "mean" (RLPD) or "min" (WSRL)
    backup_entropy: bool
    target_entropy: float
    critic_scale: float
    discount: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    temperature_lr: float = 3e-4


@dataclasses.dataclass
class RefState:
    actor: Arrays
    critic: Arrays
    target: Arrays
    log_alpha: float

    @staticmethod
    def of(state: Any) -> RefState:
        return RefState(
            actor=actor_arrays(state.actor.params),
            critic=critic_arrays(state.critic.params),
            target=critic_arrays(state.critic.target_params),
            log_alpha=float(state.temperature.params["log_alpha"]),
        )


@dataclasses.dataclass
class RefRecord:
    critic_losses: list[float]
    critic_grads: list[Arrays]
    targets: list[np.ndarray]
    actor_loss: float
    actor_grads: Arrays
    entropy: float
    temperature_loss: float
    temperature_grad: float


class _AdamState:
    """Adam moments and step count per parameter (numpy, float64): m = b1 m + (1 - b1) g,
    v = b2 v + (1 - b2) g², bias-corrected, ``p - lr m̂ / (sqrt(v̂) + ε)`` (optax.adam)."""

    def __init__(self, params: Arrays) -> None:
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: Arrays, grads: Arrays, lr: float) -> Arrays:
        self.t += 1
        out = {}
        for k, g in grads.items():
            self.m[k] = ADAM_B1 * self.m[k] + (1 - ADAM_B1) * g
            self.v[k] = ADAM_B2 * self.v[k] + (1 - ADAM_B2) * g**2
            m_hat = self.m[k] / (1 - ADAM_B1**self.t)
            v_hat = self.v[k] / (1 - ADAM_B2**self.t)
            out[k] = params[k] - lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
        return out


def _jnp(tree: Arrays) -> dict[str, jax.Array]:
    return {k: jnp.asarray(v, jnp.float64) for k, v in tree.items()}


def _np(tree: Mapping[str, jax.Array]) -> Arrays:
    return {k: np.asarray(v, np.float64) for k, v in tree.items()}


@functools.partial(jax.jit, static_argnames=("backup_entropy",))
def _ref_critic_step(
    critic: dict[str, jax.Array],
    target: dict[str, jax.Array],
    actor: dict[str, jax.Array],
    mb: dict[str, jax.Array],
    eps: jax.Array,
    subset: jax.Array,
    alpha: jax.Array,
    discount: jax.Array,
    scale: jax.Array,
    backup_entropy: bool,
) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
    """One official critic loss, its gradient and the target y (RLPD ``update_critic``; WSRL
    ``SACAgent.critic_loss_fn`` with ``backup_entropy=False``). Jitted: one compile serves
    every step of every test with the same shapes."""
    masks = 1.0 - mb["terminals"]  # RLPD's and WSRL's "masks"
    next_a, next_log_prob = ref_policy(actor, mb["next_observations"], eps)
    next_q = ref_q(target, mb["next_observations"], next_a)[subset].min(axis=0)
    y = mb["rewards"] + discount * masks * next_q
    if backup_entropy:
        y = y - discount * masks * alpha * next_log_prob

    def loss(c: dict[str, jax.Array]) -> jax.Array:
        qs = ref_q(c, mb["observations"], mb["actions"])
        return scale * jnp.mean((qs - y[None]) ** 2)

    value, grads = jax.value_and_grad(loss)(critic)
    return value, grads, y


@functools.partial(jax.jit, static_argnames=("actor_q",))
def _ref_actor_step(
    actor: dict[str, jax.Array],
    critic: dict[str, jax.Array],
    obs: jax.Array,
    eps: jax.Array,
    alpha: jax.Array,
    actor_q: str,
) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
    """The official actor loss ``mean(α log π(ã|s) - agg_n Q_n(s, ã))`` and its gradient, and
    log π (RLPD ``update_actor``: agg = mean; WSRL ``policy_loss_fn``: agg = min)."""

    def loss(p: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        a, log_prob = ref_policy(p, obs, eps)
        qs = ref_q(critic, obs, a)
        q = qs.mean(axis=0) if actor_q == "mean" else qs.min(axis=0)
        return jnp.mean(log_prob * alpha - q), log_prob

    (value, log_prob), grads = jax.value_and_grad(loss, has_aux=True)(actor)
    return value, grads, log_prob


def _mb64(mb: Transitions) -> dict[str, jax.Array]:
    return {
        name: jnp.asarray(np.asarray(getattr(mb, name)), jnp.float64)
        for name in ("observations", "actions", "rewards", "next_observations", "terminals")
    }


def official_update(
    rule: Rule, ref: RefState, minibatches: list[Transitions], draws: Draws
) -> tuple[RefState, RefRecord]:
    """The official high-UTD update (RLPD ``SACLearner.update``; WSRL
    ``SACAgent.update_high_utd``, see test_equivalence_wsrl.py for where it differs): one
    critic step + Polyak per minibatch, then one actor and one temperature step on the LAST
    minibatch with the updated critics and the pre-update α. Fresh Adam states, as
    `with_recording` gives hybridrl. Float64 throughout."""
    with enable_x64(True):
        actor, critic, target = _jnp(ref.actor), _jnp(ref.critic), _jnp(ref.target)
        alpha = jnp.asarray(math.exp(ref.log_alpha), jnp.float64)
        critic_adam = _AdamState(_np(critic))
        losses, grads, targets = [], [], []
        for mb, eps, subset in zip(minibatches, draws.next_eps, draws.subsets, strict=True):
            loss, g, y = _ref_critic_step(
                critic,
                target,
                actor,
                _mb64(mb),
                jnp.asarray(eps, jnp.float64),
                jnp.asarray(subset),
                alpha,
                jnp.asarray(rule.discount, jnp.float64),
                jnp.asarray(rule.critic_scale, jnp.float64),
                backup_entropy=rule.backup_entropy,
            )
            losses.append(float(loss))
            grads.append(_np(g))
            targets.append(np.asarray(y))
            new_critic = critic_adam.step(_np(critic), _np(g), rule.critic_lr)
            new_target = {
                k: rule.tau * new_critic[k] + (1 - rule.tau) * np.asarray(target[k])
                for k in new_critic
            }
            critic, target = _jnp(new_critic), _jnp(new_target)

        a_loss, a_grads, log_prob = _ref_actor_step(
            actor,
            critic,  # the critics after the U steps
            _mb64(minibatches[-1])["observations"],
            jnp.asarray(draws.actor_eps, jnp.float64),
            alpha,
            actor_q=rule.actor_q,
        )
        entropy = -float(jnp.mean(log_prob))
    # RLPD's update_temperature: loss exp(log α) (H - H̄) with H the actor step's entropy, so
    # d/d log α = exp(log α) (H - H̄).
    t_loss = math.exp(ref.log_alpha) * (entropy - rule.target_entropy)
    t_grad = t_loss
    new_actor = _AdamState(_np(actor)).step(_np(actor), _np(a_grads), rule.actor_lr)
    la = {"log_alpha": np.asarray(ref.log_alpha, np.float64)}
    new_log_alpha = _AdamState(la).step(la, {"log_alpha": np.asarray(t_grad)}, rule.temperature_lr)[
        "log_alpha"
    ]
    record = RefRecord(
        critic_losses=losses,
        critic_grads=grads,
        targets=targets,
        actor_loss=float(a_loss),
        actor_grads=_np(a_grads),
        entropy=entropy,
        temperature_loss=t_loss,
        temperature_grad=t_grad,
    )
    new = RefState(new_actor, _np(critic), _np(target), float(new_log_alpha))
    return new, record


def split_minibatches(batch: Transitions, utd: int) -> list[Transitions]:
    """RLPD's ``update`` slicing: minibatch i is rows [i B, (i + 1) B)."""
    b = len(batch) // utd
    return [
        jax.tree_util.tree_map(lambda x, i=i: x[i * b : (i + 1) * b], batch) for i in range(utd)
    ]


def assert_arrays_close(actual: Arrays, expected: Arrays, what: str) -> None:
    assert actual.keys() == expected.keys(), what
    for name in expected:
        np.testing.assert_allclose(
            actual[name], expected[name], rtol=RTOL, atol=ATOL, err_msg=f"{what}: {name}"
        )


_sac_update = jax.jit(sac.update)


def check_update_against_official(
    state: Any, batch: Transitions, key: jax.Array, rule: Rule, n: int, k: int
) -> tuple[RefRecord, dict[str, jax.Array]]:
    """Run hybridrl's `sac.update` (real code path, recording optimizers) and the official
    sequence on the same parameters, batch and draws; compare the gradients of every critic
    step, of the actor and of the temperature, the losses, and every post-update parameter."""
    utd = state.config.utd_ratio
    minibatches = split_minibatches(batch, utd)
    b = len(minibatches[0])
    draws = hybridrl_sac_draws(key, utd, b, n, k)
    state = with_recording(state, utd)
    new_state, metrics = _sac_update(state, batch, key)
    new_ref, record = official_update(rule, RefState.of(state), minibatches, draws)

    critic_grads = new_state.critic.opt_state.grads
    for i in range(utd):
        recorded = critic_arrays(jax.tree_util.tree_map(lambda g, i=i: g[i], critic_grads))
        assert_arrays_close(recorded, record.critic_grads[i], f"critic gradient, minibatch {i}")
    actor_grads = jax.tree_util.tree_map(lambda g: g[0], new_state.actor.opt_state.grads)
    assert_arrays_close(actor_arrays(actor_grads), record.actor_grads, "actor gradient")
    np.testing.assert_allclose(
        float(new_state.temperature.opt_state.grads["log_alpha"][0]),
        record.temperature_grad,
        rtol=RTOL,
        atol=ATOL,
    )
    # Losses: hybridrl reports the critic loss averaged over the U steps.
    np.testing.assert_allclose(
        float(metrics["critic_loss"]), np.mean(record.critic_losses), rtol=RTOL, atol=ATOL
    )
    for name, expected in (
        ("actor_loss", record.actor_loss),
        ("entropy", record.entropy),
        ("temperature_loss", record.temperature_loss),
    ):
        np.testing.assert_allclose(float(metrics[name]), expected, rtol=RTOL, atol=ATOL)
    # Parameters after the whole update.
    assert_arrays_close(critic_arrays(new_state.critic.params), new_ref.critic, "critic")
    assert_arrays_close(critic_arrays(new_state.critic.target_params), new_ref.target, "target")
    assert_arrays_close(actor_arrays(new_state.actor.params), new_ref.actor, "actor")
    np.testing.assert_allclose(
        float(new_state.temperature.params["log_alpha"]), new_ref.log_alpha, rtol=RTOL, atol=ATOL
    )
    return record, metrics


# ---------------------------------------------------------------------------------- RLPD
N_QS, N_MIN = 4, 2
B = 16


@functools.cache
def _initial_state(agent: str, num_qs: int) -> Any:
    """``agent``'s state for the WSRL/RLPD preset configs, shrunk to hidden (8, 8) and
    ``num_qs`` critics (subsets of 2); built once per module run (sac.init runs eagerly)."""
    from hybridrl.agents import get_agent
    from hybridrl.training.recipes import get_recipe

    recipe = get_recipe("rlpd" if agent == "sac" else "wsrl")
    config = recipe.with_config(hidden_dims=HIDDEN, num_qs=num_qs).agent_config()
    # One compiled init costs less than sac.init's many eager ops.
    init = jax.jit(get_agent(agent).init, static_argnums=(0, 2, 3))
    return init(config, jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)


def rlpd_state(utd: int, seed: int = 0) -> sac.State:
    """The `rlpd` recipe's SAC config, shrunk (hidden (8, 8), 4 critics with subsets of 2,
    utd_ratio ``utd``), parameters perturbed with ``seed``."""
    state = _initial_state("sac", N_QS)
    state = dataclasses.replace(state, config=dataclasses.replace(state.config, utd_ratio=utd))
    return perturbed(state, seed)


# RLPD's values: sac_learner.py create() (target_entropy = -action_dim / 2, backup_entropy
# True, learning rates 3e-4) and configs/sac_config.py, td_config.py (γ 0.99, τ 0.005).
RLPD_RULE = Rule(
    actor_q="mean",  # update_actor: qs.mean(axis=0)
    backup_entropy=True,
    target_entropy=-ACT_DIM / 2,
    critic_scale=float(N_QS),  # difference 1: hybridrl sums the N critic losses
)


def test_rlpd_config_matches_the_official_one():
    """The preset's values against rlpd's configs (rlpd_config.py: num_qs 10, num_min_qs 2,
    critic_layer_norm True; sac_config.py/td_config.py; utd_ratio 20 from the README's
    commands, ``--utd_ratio=20``: train_finetuning.py's flag defaults to 1)."""
    from hybridrl.training.recipes import get_recipe

    config = get_recipe("rlpd").agent_config()
    assert (config.num_qs, config.num_min_qs, config.critic_layer_norm) == (10, 2, True)
    assert config.utd_ratio == 20
    assert config.backup_entropy and config.actor_q == "mean"
    assert (config.actor_lr, config.critic_lr, config.temperature_lr) == (3e-4, 3e-4, 3e-4)
    assert (config.discount, config.tau, config.init_temperature) == (0.99, 0.005, 1.0)
    assert (config.actor_log_std_min, config.actor_log_std_max) == (-20.0, 2.0)
    assert config.critic_dropout is None
    # H̄ = -|A|/2 (sac.init computes it from these; the update tests check its use)
    assert config.target_entropy is None and config.target_entropy_scale == 0.5


def test_subset_draw_is_rlpds():
    """RLPD's ``subsample_ensemble`` draws K with ``jax.random.choice(key, arange(N), (k,),
    replace=False)``; hybridrl's `subsample_ensemble_min` takes the min over exactly that set
    for the same key (so any key gives the same critics)."""
    q = jnp.asarray(np.random.default_rng(0).standard_normal((10, 5)), jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(0), 200)

    def rlpd(key: jax.Array) -> jax.Array:
        idx = jax.random.choice(key, jnp.arange(10), shape=(2,), replace=False)
        return q[idx].min(axis=0)

    ours = jax.vmap(lambda k: subsample_ensemble_min(q, k, 2))(keys)
    np.testing.assert_array_equal(ours, jax.vmap(rlpd)(keys))


def test_rlpd_critic_target_and_loss_on_one_minibatch():
    """hybridrl's building blocks (`sac.critic_target`, `sac.critic_loss`) on the first
    minibatch: y equals the official target, and the loss and gradient are N times RLPD's
    mean-over-critics loss (difference 1)."""
    state = rlpd_state(utd=1)
    batch = batch_of(1, B)
    key = jax.random.PRNGKey(2)
    draws = hybridrl_sac_draws(key, 1, B, N_QS, N_MIN)
    # update -> utd_update (k_critic, then one key per step) -> update_critic (k_target, k_drop)
    k_target, k_drop = jax.random.split(jax.random.split(jax.random.split(key)[0], 1)[0])

    @jax.jit
    def target_and_loss(state: sac.State) -> tuple[jax.Array, jax.Array, Any]:
        target = sac.critic_target(state, batch, k_target)

        def loss(params: Any) -> jax.Array:
            return sac.critic_loss(state, params, batch, target, k_drop)[0]

        return (target, *jax.value_and_grad(loss)(state.critic.params))

    target, value, grads = target_and_loss(state)
    rule_mean = dataclasses.replace(RLPD_RULE, critic_scale=1.0)  # RLPD's own loss
    _, record = official_update(rule_mean, RefState.of(state), [batch], draws)
    np.testing.assert_allclose(np.asarray(target), record.targets[0], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(float(value), N_QS * record.critic_losses[0], rtol=RTOL, atol=ATOL)
    expected = {k: N_QS * v for k, v in record.critic_grads[0].items()}
    assert_arrays_close(critic_arrays(grads), expected, "critic gradient")


def test_rlpd_update_with_utd_reproduces_the_official_sequence():
    """One hybridrl update with utd_ratio 3 = RLPD's ``update(batch, utd_ratio=3)``: the
    gradients of the three critic steps (each on its own consecutive minibatch, each seeing
    the previous steps' critics and targets), the actor and temperature gradients on the last
    minibatch with the updated critics, the reported losses, and all parameters afterwards."""
    utd = 3
    state = rlpd_state(utd=utd)
    batch = batch_of(3, utd * B)
    record, _ = check_update_against_official(
        state, batch, jax.random.PRNGKey(4), RLPD_RULE, N_QS, N_MIN
    )
    # The steps differ (new minibatch, moved critics): the sequence, not one step U times.
    assert not np.allclose(record.critic_grads[0]["out.W"], record.critic_grads[-1]["out.W"])
