"""FamO2O over IQL: the code φ(β), the β map, the loss terms against hand-computed numbers,
the offline/online switch, traced hyperparameters, `SetConfig` refusals and a fast learning
check (a larger β extracts a greedier member of the family)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import famo2o
from hybridrl.core import losses
from hybridrl.data.replay import from_dataset
from hybridrl.data.transitions import Transitions
from hybridrl.networks import sinusoidal_code
from hybridrl.training.phases import Learner, SetConfig
from hybridrl.training.recipes import get_recipe
from hybridrl.training.updates import scan_updates
from hybridrl.types import HybridRLError
from tests.helpers import random_batch

OBS, ACT = 4, 2
TINY = dict(hidden_dims=(16, 16), beta_min=1.0, beta_max=5.0)


def _state(seed: int = 0, **overrides) -> famo2o.State:
    return famo2o.init(famo2o.Config(**{**TINY, **overrides}), jax.random.PRNGKey(seed), OBS, ACT)


def close(a, b, tol: float = 1e-5) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- golden terms
def test_sinusoidal_code_of_two_by_hand() -> None:
    # β = 2, d = 6, n = 1e4: frequencies 1, 1e4^(-1/3) = 0.0464159, 1e4^(-2/3) = 0.00215443
    expected = [
        math.sin(2.0),
        math.cos(2.0),  # 0.9092974, -0.4161468
        0.09269850,
        0.99569422,  # sin/cos(0.09283178)
        0.00430886,
        0.99999072,  # sin/cos(0.00430887)
    ]
    close(sinusoidal_code(2.0, 6, 1e4), expected)
    close(expected[:2], [0.9092974, -0.4161468])


def test_sinusoidal_code_shapes_and_official_layout() -> None:
    beta = jnp.array([[8.0, 11.0], [14.0, 9.5]])
    code = sinusoidal_code(beta, 6)
    assert code.shape == (2, 2, 6)
    # The official layout: columns 0, 2, 4 sin(β / n^(2i/d)), columns 1, 3, 5 the cosines.
    i = np.arange(3)
    angles = np.asarray(beta)[..., None] / 1e4 ** (2 * i / 6)
    close(code[..., 0::2], np.sin(angles))
    close(code[..., 1::2], np.cos(angles))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_code(beta, 5)


def test_coefficients_map_the_unit_interval_onto_the_range() -> None:
    cfg = famo2o.Config(beta_min=8.0, beta_max=14.0)
    close(famo2o.coefficients(cfg, jnp.array([-1.0, 0.0, 1.0, 0.5])), [8.0, 11.0, 14.0, 12.5])


def test_family_weights_per_sample_and_official_batch_mean() -> None:
    adv, beta = jnp.array([0.5, -1.0, 2.0]), jnp.array([2.0, 1.0, 3.0])
    per_sample = famo2o.Config(max_weight=100.0)
    # min(exp(β_i A_i), 100): e^1, e^-1, min(e^6, 100)
    close(famo2o.family_weights(per_sample, adv, beta), [2.7182818, 0.3678794, 100.0])
    # the official (B, 1) x (B,) broadcast: sample i gets mean_j min(exp(β_j A_i), 100)
    batch_mean = famo2o.Config(max_weight=100.0, beta_weighting="batch_mean")
    close(famo2o.family_weights(batch_mean, adv, beta), [2.9495641, 0.1843339, 53.9957354])
    grads = jax.grad(lambda a: famo2o.family_weights(per_sample, a, beta).sum())(adv)
    close(grads, [0.0, 0.0, 0.0])  # constants for the actor loss


def test_balance_and_temperature_losses_by_hand() -> None:
    """The balance loss is SAC's actor loss over b, E[α_b log π_b - Q̄]; the temperature loss
    α_b (H - H_target) with H = -E[log π_b] is `losses.temperature_loss`."""
    logp, q = jnp.array([0.2, -0.4]), jnp.array([3.0, 1.0])
    close(losses.sac_actor_loss(logp, q, 0.5), -2.05)  # mean(0.1 - 3, -0.2 - 1)
    # H = 0.1, H_target = -0.5: α (H - H_target) = 0.6 at α = 1
    close(losses.temperature_loss(1.0, logp, -0.5), 0.6)
    grad = jax.grad(lambda la: losses.temperature_loss(jnp.exp(la), logp, -0.5))(0.0)
    close(grad, 0.6)  # H above the target: descending lowers α


# ----------------------------------------------------------------------------- mechanics
def test_training_coefficients_switch_between_uniform_and_the_balance_model() -> None:
    state = _state()
    obs = jax.random.normal(jax.random.PRNGKey(1), (512, OBS))
    training_coefficients = jax.jit(famo2o.training_coefficients)  # random_beta is traced
    uniform = training_coefficients(state, obs, jax.random.PRNGKey(2))
    assert float(uniform.min()) >= 1.0 and float(uniform.max()) <= 5.0
    assert abs(float(uniform.mean()) - 3.0) < 0.2 and float(uniform.std()) > 1.0
    # a near-deterministic balance model: online β is its mode in every state
    params = state.balance.params
    params = {**params, "log_std": jnp.full_like(params["log_std"], -10.0)}
    online = dataclasses.replace(
        state,
        balance=state.balance.replace(params=params),
        config=dataclasses.replace(state.config, random_beta=False),
    )
    chosen = training_coefficients(online, obs, jax.random.PRNGKey(2))
    close(chosen, famo2o.balance_coefficients(online, obs), tol=1e-3)


def test_balance_gradient_reaches_beta_through_the_actor() -> None:
    """Q̄(s, ã) depends on b only through φ(β) and the actor's mean: with an actor that
    ignores its code (zero code weights) the balance step sees no Q gradient."""
    state = _state()
    batch = random_batch(jax.random.PRNGKey(3), 64, OBS, ACT)

    def q_grad(state):
        def q_of(params):
            unit = famo2o.balance_policy(state, batch.observations, params).mode()[..., 0]
            beta = famo2o.coefficients(state.config, unit)
            a = famo2o.universal_policy(state, batch.observations, beta).mode()
            return famo2o._target_min_q(state, batch.observations, a).mean()

        g = jax.jit(jax.grad(q_of))(state.balance.params)
        return float(jnp.abs(g["mean"]["kernel"]).sum())

    first = state.actor.params["actor"]["MLP_0"]["Dense_0"]["kernel"]
    noisy = jax.random.normal(jax.random.PRNGKey(4), first.shape)
    critic = jax.tree_util.tree_map(
        lambda x: x + 0.3 * jax.random.normal(jax.random.PRNGKey(5), x.shape),
        state.critic.target_params,
    )
    mean = jax.tree_util.tree_map(lambda x: x * 0 + 0.5, state.actor.params["actor"]["mean"])

    def with_kernel(kernel):
        params = {**state.actor.params["actor"]}
        params["MLP_0"] = {
            **params["MLP_0"],
            "Dense_0": {**params["MLP_0"]["Dense_0"], "kernel": kernel},
        }
        params["mean"] = mean
        actor = state.actor.replace(params={"actor": params})
        return dataclasses.replace(
            state, actor=actor, critic=state.critic.replace(target_params=critic)
        )

    assert q_grad(with_kernel(noisy)) > 1e-4
    blind = noisy.at[OBS:].set(0.0)  # the rows that read φ(β)
    assert q_grad(with_kernel(blind)) < 1e-7


def test_update_trains_every_network_in_both_phases() -> None:
    state = _state()
    batch = random_batch(jax.random.PRNGKey(6), 32, OBS, ACT, terminal_every=5)
    update = jax.jit(famo2o.update)  # one compile for both phases: random_beta is traced
    for random_beta in (True, False):
        s = dataclasses.replace(
            state, config=dataclasses.replace(state.config, random_beta=random_beta)
        )
        new, metrics = update(s, batch, jax.random.PRNGKey(7))
        assert all(np.isfinite(float(v)) for v in metrics.values())
        for name in ("actor", "critic", "value", "balance", "balance_temperature"):
            before = jax.tree_util.tree_leaves(getattr(s, name).params)
            after = jax.tree_util.tree_leaves(getattr(new, name).params)
            assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True)), name
        # α_b at init is 1.0 and is logged before its step
        close(metrics["balance_temperature"], 1.0)


def test_switch_and_learning_rates_are_traced() -> None:
    """`SetConfig(random_beta=False)` and a new learning rate reuse the compiled update, and
    the learning rate takes effect (it is written into the optimizer state)."""
    state = _state()
    batch = random_batch(jax.random.PRNGKey(8), 32, OBS, ACT)
    update = jax.jit(famo2o.update)
    update(state, batch, jax.random.PRNGKey(0))
    compiled = update._cache_size()  # type: ignore[attr-defined]
    learner = Learner("famo2o", state, None, None)
    learner = SetConfig({"random_beta": False, "actor_lr": 1e-2, "balance_lr": 0.0}).apply(learner)
    new, _ = update(learner.state, batch, jax.random.PRNGKey(0))
    assert update._cache_size() == compiled  # type: ignore[attr-defined]
    close(new.actor.opt_state.hyperparams["learning_rate"], 1e-2)
    # balance_lr 0: π_b does not move
    for a, b in zip(
        jax.tree_util.tree_leaves(state.balance.params),
        jax.tree_util.tree_leaves(new.balance.params),
        strict=True,
    ):
        close(a, b, tol=0.0)


def test_set_config_refuses_fields_read_only_at_init() -> None:
    learner = Learner("famo2o", _state(), None, None)
    for values in (
        {"hidden_dims": (32, 32)},
        {"balance_init_temperature": 0.5},
        {"beta_encoding_dim": 8},
    ):
        with pytest.raises(HybridRLError, match="read only when the agent state is built"):
            SetConfig(values).apply(learner)
    # the same value is no change: allowed (a recipe may restate it; lists from TOML)
    same = SetConfig({"hidden_dims": [16, 16], "balance_init_temperature": 1.0}).apply(learner)
    assert same.state.config.hidden_dims == (16, 16)  # the config's own tuple, still hashable


def test_init_validates_the_config() -> None:
    with pytest.raises(ValueError, match="beta_min"):
        _state(beta_min=5.0, beta_max=5.0)
    with pytest.raises(ValueError, match="beta_weighting"):
        _state(beta_weighting="official")
    with pytest.raises(ValueError, match="even"):
        _state(beta_encoding_dim=3)


def test_recipe_switches_beta_source_at_the_online_phase() -> None:
    recipe = get_recipe("famo2o")
    offline, online = recipe.phases
    assert offline.updates == 1_000_000 and online.steps == 1_000_000
    kinds = [h.kind for h in online.hooks]
    assert kinds == ["seed_buffer", "set_config"]
    assert online.hooks[1].values == {"random_beta": False}
    assert recipe.agent_config().random_beta is True


# ----------------------------------------------------------------------------- learning
def _bandit_family(weighting: str) -> tuple[list[float], list[float]]:
    """Mean first action and mean Q of the family members β = 0.1, 2, 4, 8 after 600 updates
    on a one-step bandit, r = a₁, dataset actions uniform on [-1, 1] (the critics learn
    Q ≈ a₁)."""
    n = 2048
    k_obs, k_act = jax.random.split(jax.random.PRNGKey(0))
    obs = jax.random.normal(k_obs, (n, OBS))
    actions = jax.random.uniform(k_act, (n, ACT), minval=-1.0, maxval=1.0)
    data = Transitions(
        observations=obs,
        actions=actions,
        rewards=actions[:, 0],
        next_observations=obs,
        terminals=jnp.ones(n),
        timeouts=jnp.zeros(n),
    )
    state = _state(
        seed=1,
        beta_min=0.1,
        beta_max=8.0,
        actor_lr=3e-3,
        critic_lr=3e-3,
        value_lr=3e-3,
        expectile=0.7,
        beta_weighting=weighting,
    )
    state, _ = scan_updates(
        famo2o.update,
        state,
        from_dataset(data),
        jax.random.PRNGKey(2),
        num_updates=600,
        batch_size=128,
    )
    betas = (0.1, 2.0, 4.0, 8.0)
    means = [float(famo2o.universal_policy(state, obs[:256], b).mode()[:, 0].mean()) for b in betas]
    qs = [float(famo2o.family_q(state, obs[:256], b).mean()) for b in betas]
    return means, qs


def test_larger_beta_extracts_a_greedier_policy() -> None:
    """The family member with a larger β puts its mean on larger a₁, and Q(s, mean π_u(s, β))
    rises with β (measured means 0.15, 0.44, 0.71, 0.83 over seeds like this one). An
    untrained agent has no such order: its actor's means start near 0 (final layers at scale
    1e-2)."""
    means, qs = _bandit_family("per_sample")
    assert np.all(np.diff(means) > 0), means
    assert np.all(np.diff(qs) > 0), qs
    assert means[-1] - means[0] > 0.2, means


@pytest.mark.slow
def test_official_weight_broadcast_collapses_the_family() -> None:
    """With the official (B, 1) x (B,) broadcast ("batch_mean") a sample's weight does not
    depend on its own β: every member learns the same policy (measured means within 0.03 of
    each other, about 0.70-0.77 for every β, over three seeds)."""
    means, _ = _bandit_family("batch_mean")
    assert max(means) - min(means) < 0.1, means
    assert min(means) > 0.4, means  # the family as a whole still improves on the data
