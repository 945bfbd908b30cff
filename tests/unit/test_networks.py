"""MLP, vmapped ensembles, REDQ subsets, heads and the training states (tiny networks)."""

from __future__ import annotations

import collections
import functools
import itertools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hybridrl.core import TanhNormal, TargetTrainState
from hybridrl.core.distributions import Normal
from hybridrl.networks import (
    MLP,
    DeterministicActor,
    Ensemble,
    EnsembleCritic,
    GaussianActor,
    StateActionValue,
    StateValue,
    TanhGaussianActor,
    Temperature,
    subsample_ensemble_min,
)
from hybridrl.types import HybridRLError

KEY = jax.random.key(0)
OBS = jax.random.normal(jax.random.key(1), (5, 3))
ACT = jax.random.uniform(jax.random.key(2), (5, 2), minval=-1.0, maxval=1.0)


def init(module: nn.Module, *args: jax.Array) -> dict:
    """Jitted init: one compilation instead of many eager op dispatches (keeps tests fast)."""
    return jax.jit(module.init)(KEY, *args)


_JITTED: dict[int, tuple[nn.Module, Any]] = {}


def apply(module: nn.Module, params: dict, *args: jax.Array, **kwargs: object) -> Any:
    """Jitted apply, compiled once per module object (a fresh ``jax.jit(module.apply)`` per
    call would recompile, since each bound method is a new function object)."""
    if id(module) not in _JITTED:
        _JITTED[id(module)] = (module, jax.jit(module.apply, static_argnames=("training",)))
    return _JITTED[id(module)][1](params, *args, **kwargs)


def shapes(module: nn.Module, *args: jax.Array) -> dict:
    """Parameter shapes without compiling anything (``jax.eval_shape``)."""
    return jax.eval_shape(module.init, KEY, *args)


def flat_names(params: dict) -> list[str]:
    return [
        "/".join(str(k.key) for k in path)
        for path, _ in jax.tree_util.tree_leaves_with_path(params)
    ]


# --------------------------------------------------------------------------------- MLP
def test_mlp_layer_norm_present_only_when_requested() -> None:
    with_ln = shapes(MLP((8, 8, 1), layer_norm=True), OBS)
    names = flat_names(with_ln)
    # Two activated hidden layers get a LayerNorm each; the linear output layer does not.
    assert sum("LayerNorm" in n and n.endswith("scale") for n in names) == 2
    assert not any("LayerNorm" in n for n in flat_names(shapes(MLP((8, 8, 1)), OBS)))


def test_mlp_final_layer_linear_unless_activated() -> None:
    net = MLP((8, 4))
    params = init(net, OBS)
    out = apply(net, params, OBS)
    assert out.shape == (5, 4) and float(out.min()) < 0.0  # no ReLU on the output
    # Same parameter tree, ReLU after the last Dense.
    assert float(apply(MLP((8, 4), activate_final=True), params, OBS).min()) >= 0.0


def test_mlp_dropout_only_when_training() -> None:
    net = MLP((16, 16, 1), dropout_rate=0.5)
    params = init(net, OBS)
    det1 = apply(net, params, OBS)
    det2 = apply(net, params, OBS, training=False)
    np.testing.assert_array_equal(det1, det2)
    # Same parameters without dropout give the deterministic output.
    np.testing.assert_array_equal(det1, apply(MLP((16, 16, 1)), params, OBS))
    train = apply(net, params, OBS, training=True, rngs={"dropout": jax.random.key(3)})
    assert not np.allclose(train, det1)
    with pytest.raises(Exception, match="dropout"):
        apply(net, params, OBS, training=True)  # no rng given


def test_default_init_is_xavier_uniform_and_heads_scale_final_layer() -> None:
    critic = StateActionValue((8,))
    params = init(critic, OBS, ACT)["params"]
    hidden = params["MLP_0"]["Dense_0"]["kernel"]  # fan_in 5, fan_out 8
    final = params["Dense_0"]["kernel"]  # fan_in 8, fan_out 1, scale 1e-2
    # Uniform bound sqrt(3 * scale * 2 / (fan_in + fan_out)).
    assert float(jnp.abs(hidden).max()) <= math.sqrt(6.0 / 13.0)
    assert float(jnp.abs(hidden).max()) > 0.5 * math.sqrt(6.0 / 13.0)
    assert float(jnp.abs(final).max()) <= math.sqrt(3.0 * 1e-2 * 2.0 / 9.0)


# --------------------------------------------------------------------------------- ensembles
@pytest.fixture(scope="module")
def ensemble() -> tuple[EnsembleCritic, dict]:
    critic = EnsembleCritic((16, 16), num_qs=3, layer_norm=True, dropout_rate=0.5)
    return critic, init(critic, OBS, ACT)


def test_ensemble_critic_shapes_and_leading_param_axis(ensemble: tuple) -> None:
    critic, params = ensemble
    assert apply(critic, params, OBS, ACT).shape == (3, 5)
    leaves = jax.tree_util.tree_leaves(params)
    assert leaves and all(leaf.shape[0] == 3 for leaf in leaves)
    assert any("LayerNorm" in n for n in flat_names(params))
    # One vmapped network: one kernel array per layer, not one per member.
    kernels = [n for n in flat_names(params) if n.endswith("kernel")]
    assert len(kernels) == 3


def test_ensemble_members_initialized_differently(ensemble: tuple) -> None:
    critic, params = ensemble
    kernel = params["params"]["ensemble"]["members"]["MLP_0"]["Dense_0"]["kernel"]
    for i, j in itertools.combinations(range(3), 2):
        assert not np.allclose(kernel[i], kernel[j])
    q = apply(critic, params, OBS, ACT)
    assert not np.allclose(q[0], q[1])


def test_ensemble_forwards_training_flag_and_splits_dropout(ensemble: tuple) -> None:
    critic, params = ensemble
    det = apply(critic, params, OBS, ACT)
    np.testing.assert_array_equal(det, apply(critic, params, OBS, ACT, training=False))
    train = apply(critic, params, OBS, ACT, training=True, rngs={"dropout": jax.random.key(4)})
    # If the keyword were dropped by nn.vmap, training would equal deterministic.
    assert not np.allclose(train, det)


def test_generic_ensemble_with_partial() -> None:
    ens = Ensemble(functools.partial(StateValue, hidden_dims=(8,)), num=5)
    out = jax.eval_shape(lambda: ens.apply(ens.init(KEY, OBS), OBS))
    assert out.shape == (5, 5)


def _indicator_q(n: int) -> jax.Array:
    # q[i, c] = 0 if i == c else 1 + i: the min over a subset S is 0 exactly in the columns
    # c in S, and 1 + min(S) elsewhere, so the output reveals S.
    q = 1.0 + jnp.arange(n, dtype=jnp.float32)[:, None] * jnp.ones((n, n))
    return q * (1.0 - jnp.eye(n))


def _subsets(q: jax.Array, k: int, draws: int, seed: int) -> list[np.ndarray]:
    """Run subsample_ensemble_min on the indicator matrix and decode the subset of each draw;
    check that every draw is the min over exactly k distinct members."""
    keys = jax.random.split(jax.random.key(seed), draws)
    out = np.asarray(jax.jit(jax.vmap(lambda key: subsample_ensemble_min(q, key, k)))(keys))
    subsets = []
    for row in out:
        members = np.flatnonzero(row == 0.0)
        assert len(members) == k
        np.testing.assert_allclose(np.delete(row, members), 1.0 + members.min())
        subsets.append(members)
    return subsets


def test_subsample_min_uses_exactly_k_distinct_members() -> None:
    # (N, k) = (4, 2) is checked by the uniformity test below.
    _subsets(_indicator_q(10), 3, draws=100, seed=10)


def test_subsample_min_subsets_roughly_uniform() -> None:
    n, k, draws = 4, 2, 3000
    q = _indicator_q(n)
    counts = collections.Counter(tuple(m) for m in _subsets(q, k, draws, seed=6))
    assert len(counts) == math.comb(n, k)  # all 6 subsets occur
    expected = draws / math.comb(n, k)  # 500, sd ~ 20
    assert all(abs(c - expected) < 100 for c in counts.values())


def test_subsample_min_full_set_is_plain_min_and_bad_k_raises() -> None:
    q = jax.random.normal(KEY, (4, 6))
    np.testing.assert_array_equal(subsample_ensemble_min(q, KEY, 4), q.min(0))
    with pytest.raises(HybridRLError):
        subsample_ensemble_min(q, KEY, 5)
    with pytest.raises(HybridRLError):
        subsample_ensemble_min(q, KEY, 0)


# --------------------------------------------------------------------------------- heads
def test_value_heads_shapes() -> None:
    q = StateActionValue((8,), layer_norm=True)
    assert jax.eval_shape(lambda: q.apply(q.init(KEY, OBS, ACT), OBS, ACT)).shape == (5,)
    v = StateValue((8,))
    assert jax.eval_shape(lambda: v.apply(v.init(KEY, OBS), OBS)).shape == (5,)


def test_tanh_gaussian_actor_distribution_and_log_std_clip() -> None:
    actor = TanhGaussianActor((8,), action_dim=2, log_std_min=-5.0, log_std_max=2.0)
    params = init(actor, OBS)
    dist = apply(actor, params, OBS)
    assert isinstance(dist, TanhNormal) and dist.mean.shape == (5, 2)
    a, lp = dist.sample_and_log_prob(jax.random.key(7))
    assert a.shape == (5, 2) and lp.shape == (5,)
    assert np.all(np.abs(np.asarray(a)) <= 1.0)
    big = jax.tree_util.tree_map(lambda x: x, params)
    big["params"]["log_std"]["bias"] = jnp.full((2,), 100.0)
    np.testing.assert_allclose(apply(actor, big, OBS).log_std, 2.0)
    big["params"]["log_std"]["bias"] = jnp.full((2,), -100.0)
    np.testing.assert_allclose(apply(actor, big, OBS).log_std, -5.0)


def test_state_independent_std_is_one_parameter_vector() -> None:
    actor = TanhGaussianActor((8,), action_dim=2, state_dependent_std=False)
    params = shapes(actor, OBS)
    assert params["params"]["log_std"].shape == (2,)
    out = jax.eval_shape(lambda: actor.apply(actor.init(KEY, OBS), OBS))
    assert out.log_std.shape == (5, 2)


def test_gaussian_actor_is_unsquashed_with_tanh_mean() -> None:
    actor = GaussianActor((8,), action_dim=2)
    params = init(actor, OBS)
    assert params["params"]["log_std"].shape == (2,)
    params["params"]["mean"]["bias"] = jnp.full((2,), 50.0)
    dist = apply(actor, params, OBS)
    assert isinstance(dist, Normal)
    np.testing.assert_allclose(dist.mean, 1.0)  # tanh(large) = 1
    # Plain Gaussian log-density at the data action (no tanh change of variables).
    np.testing.assert_allclose(
        dist.log_prob(ACT), -((ACT - 1.0) ** 2 / 2).sum(-1) - math.log(2 * math.pi), rtol=1e-5
    )


def test_deterministic_actor_bounded() -> None:
    actor = DeterministicActor((8,), action_dim=2)
    params = init(actor, OBS)
    params = jax.tree_util.tree_map(lambda x: 100.0 * x + 1.0, params)
    out = apply(actor, params, 100.0 * OBS)
    assert out.shape == (5, 2) and np.all(np.abs(np.asarray(out)) <= 1.0)


def test_temperature_initial_value() -> None:
    temp = Temperature(initial=0.1)
    params = init(temp)
    np.testing.assert_allclose(params["params"]["log_alpha"], math.log(0.1), rtol=1e-6)
    np.testing.assert_allclose(apply(temp, params), 0.1, rtol=1e-6)


# --------------------------------------------------------------------------------- train state
def test_target_train_state_update_and_scan() -> None:
    critic = EnsembleCritic((8,), num_qs=2)
    params = init(critic, OBS, ACT)
    state = TargetTrainState.create(apply_fn=critic.apply, params=params, tx=optax.sgd(0.1))
    leaf = jax.tree_util.tree_leaves(state.target_params)[0]
    assert leaf is not jax.tree_util.tree_leaves(state.params)[0]  # copied buffers
    traces = []

    @jax.jit
    def run(s: TargetTrainState, tau: jax.Array) -> TargetTrainState:
        traces.append(1)

        def body(s: TargetTrainState, _: None) -> tuple[TargetTrainState, None]:
            grads = jax.grad(lambda p: s.apply_fn(p, OBS, ACT).mean())(s.params)
            return s.apply_gradients(grads=grads).update_target(tau), None

        return jax.lax.scan(body, s, None, length=3)[0]

    out = run(state, jnp.float32(0.5))
    run(state, jnp.float32(0.01))  # tau is traced: no second trace
    assert len(traces) == 1 and int(out.step) == 3
    # After one manual step and tau = 0.25: target = 0.25 * new + 0.75 * old.
    one = state.apply_gradients(grads=jax.tree_util.tree_map(jnp.ones_like, params))
    moved = one.update_target(0.25)
    for t, p, old in zip(
        jax.tree_util.tree_leaves(moved.target_params),
        jax.tree_util.tree_leaves(one.params),
        jax.tree_util.tree_leaves(params),
        strict=True,
    ):
        np.testing.assert_allclose(t, 0.25 * p + 0.75 * old, rtol=1e-6, atol=1e-7)


def test_conditioned_actor_is_the_head_on_concatenated_inputs() -> None:
    """`ConditionedActor` adds context columns and nothing else: its output is the wrapped
    head's on ``concat(s, c)``, a single context broadcasts over the batch, and its
    parameters are the head's (input width S + C) under ``actor``."""
    from hybridrl.networks import ConditionedActor, GaussianActor, conditioned_inputs

    head = GaussianActor((8, 8), 2)
    net = ConditionedActor(head)
    obs = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    ctx = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    params = net.init(jax.random.PRNGKey(2), obs, ctx)["params"]
    assert params["actor"]["MLP_0"]["Dense_0"]["kernel"].shape == (7, 8)
    params = jax.tree_util.tree_map(
        lambda x: x + 0.3 * jax.random.normal(jax.random.PRNGKey(3), x.shape), params
    )
    got = net.apply({"params": params}, obs, ctx)
    want = head.apply({"params": params["actor"]}, jnp.concatenate([obs, ctx], -1))
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-6)
    one = net.apply({"params": params}, obs, ctx[0])
    wide = net.apply({"params": params}, obs, jnp.broadcast_to(ctx[0], (5, 4)))
    np.testing.assert_allclose(one.mean, wide.mean, rtol=1e-6)
    assert conditioned_inputs(obs, ctx[0]).shape == (5, 7)
