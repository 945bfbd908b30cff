"""Every loss term against numbers computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.core import losses as L
from hybridrl.networks import EnsembleCritic
from hybridrl.types import HybridRLError

LN2 = math.log(2.0)


def close(got: jax.Array | float, want: float | list, tol: float = 1e-5) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=tol, atol=tol)


def test_td_target_ignores_gradient_and_stops_only_at_terminals() -> None:
    r = jnp.array([1.0, 2.0])
    term = jnp.array([0.0, 1.0])
    v = jnp.array([10.0, 10.0])
    # [1 + 0.9 * 1 * 10, 2 + 0.9 * 0 * 10] = [10, 2]
    close(L.td_target(r, term, v, 0.9), [10.0, 2.0])
    # Leading ensemble axis broadcasts: (2, B) next values.
    close(L.td_target(r, term, jnp.stack([v, 2 * v]), 0.9), [[10.0, 2.0], [19.0, 2.0]])
    grad = jax.grad(lambda nv: L.td_target(r, term, nv, 0.9).sum())(v)
    close(grad, [0.0, 0.0])


def test_polyak_update() -> None:
    target = {"w": jnp.array([1.0, 1.0]), "b": jnp.array(0.0)}
    online = {"w": jnp.array([3.0, -1.0]), "b": jnp.array(4.0)}
    out = L.polyak_update(target, online, 0.25)
    # 0.25 * 3 + 0.75 * 1 = 1.5; 0.25 * -1 + 0.75 * 1 = 0.5; 0.25 * 4 + 0 = 1
    close(out["w"], [1.5, 0.5])
    close(out["b"], 1.0)


def test_expectile_loss_value_and_gradient() -> None:
    diff = jnp.array([2.0, -1.0])  # Q - V
    # weights |0.8 - 1(u<0)| = [0.8, 0.2]; terms [0.8 * 4, 0.2 * 1] = [3.2, 0.2]; mean 1.7
    close(L.expectile_loss(diff, 0.8), 1.7)
    # d/du_i mean(w u^2) = 2 w_i u_i / n = [2 * 0.8 * 2 / 2, 2 * 0.2 * -1 / 2] = [1.6, -0.2]
    close(jax.grad(L.expectile_loss)(diff, 0.8), [1.6, -0.2])
    # expectile 0.5 is half the MSE: mean(0.5 u^2) = 0.5 * (4 + 1) / 2 = 1.25
    close(L.expectile_loss(diff, 0.5), 1.25)


def test_awr_weights_and_actor_loss() -> None:
    adv = jnp.array([0.0, 1.0, 10.0, 1000.0])
    # beta = 3: [exp(0), exp(3), min(exp(30), 100), min(inf, 100)] = [1, 20.085537, 100, 100]
    close(L.awr_weights(adv, 3.0), [1.0, 20.085537, 100.0, 100.0])
    close(jax.grad(lambda a: L.awr_weights(a, 3.0).sum())(adv), [0.0] * 4)
    # -mean([1 * -1, 3 * -2]) = -(-7 / 2) = 3.5
    close(L.awr_actor_loss(jnp.array([-1.0, -2.0]), jnp.array([1.0, 3.0])), 3.5)


def test_cql_logsumexp_penalty_golden() -> None:
    q_data = jnp.array([1.0, 0.0])
    q_ood = jnp.array([[0.0, 0.0], [1.0, 2.0]])
    log_mu = jnp.array([[-LN2, -LN2], [0.0, 0.0]])
    # state 0: logsumexp([0 + ln2, 0 + ln2]) = ln 4 = 1.3862944; minus Q_data 1 -> 0.3862944
    # state 1: logsumexp([1, 2]) = 2 + ln(1 + e^-1) = 2.3132617; minus 0 -> 2.3132617
    # mean: (0.3862944 + 2.3132617) / 2 = 1.3497780
    close(L.cql_logsumexp_penalty(q_data, q_ood, log_mu), 1.3497780)
    # temperature 2 on state 1: 2 * logsumexp([0.5, 1]) = 2 * (1 + ln(1 + e^-0.5)) = 2.9481545
    close(L.cql_logsumexp_penalty(q_data[1:], q_ood[1:], None, temperature=2.0), 2.9481545)
    # clip the per-state gap at 1: (0.3862944 + 1) / 2 = 0.6931472
    close(L.cql_logsumexp_penalty(q_data, q_ood, log_mu, clip_diff_max=1.0), 0.6931472)
    # Gradients: d/dQ_data = -1/B; d/dQ_ood = softmax / B; none into the log densities.
    g_data, g_ood, g_mu = jax.jit(jax.grad(L.cql_logsumexp_penalty, argnums=(0, 1, 2)))(
        q_data, q_ood, log_mu
    )
    close(g_data, [-0.5, -0.5])
    close(g_ood[0], [0.25, 0.25])
    close(g_ood[1], np.exp([1.0, 2.0]) / np.exp([1.0, 2.0]).sum() / 2)
    close(g_mu, np.zeros((2, 2)))
    # Ensemble axis: two identical critics give the same mean.
    close(
        L.cql_logsumexp_penalty(jnp.stack([q_data] * 2), jnp.stack([q_ood] * 2), log_mu),
        1.3497780,
    )
    close(L.cql_random_log_density(3), 3 * math.log(0.5))  # -2.0794415


def test_calql_bound() -> None:
    q_pi = jnp.array([[-1.0, 5.0], [0.0, -3.0]])
    mc = jnp.array([2.0, -1.0])
    # max([[-1, 5], [0, -3]], [[2], [-1]]) = [[2, 5], [0, -1]]
    close(L.calql_bound(q_pi, mc[:, None]), [[2.0, 5.0], [0.0, -1.0]])
    close(L.calql_bound(q_pi, mc[:, None], enabled=False), q_pi)
    # A traced flag switches between CQL and Cal-QL in one compiled function.
    f = jax.jit(L.calql_bound)
    close(f(q_pi, mc[:, None], jnp.array(False)), q_pi)
    close(f(q_pi, mc[:, None], jnp.array(True)), [[2.0, 5.0], [0.0, -1.0]])
    # Gradient flows to Q only where Q is above the bound.
    grad = jax.grad(lambda q: L.calql_bound(q, mc[:, None]).sum())(q_pi)
    close(grad, [[0.0, 1.0], [1.0, 0.0]])


def test_cql_lagrange_loss_signs() -> None:
    log_ap = jnp.array(LN2)  # alpha' = 2
    # -alpha' * (gap - target) = -2 * (3 - 1) = -4
    close(L.cql_alpha_lagrange_loss(log_ap, jnp.array(3.0), 1.0), -4.0)
    # d/dlog alpha' = -alpha' (gap - target) = -4 < 0: descent raises alpha' (gap too big).
    close(jax.grad(L.cql_alpha_lagrange_loss)(log_ap, jnp.array(3.0), 1.0), -4.0)
    # gap below target: +2 * (1 - 0.5) = 1 > 0, descent lowers alpha'.
    close(jax.grad(L.cql_alpha_lagrange_loss)(log_ap, jnp.array(0.5), 1.0), 1.0)
    # The gap is a constant for the multiplier's loss.
    close(jax.grad(L.cql_alpha_lagrange_loss, argnums=1)(log_ap, jnp.array(3.0), 1.0), 0.0)
    # Per-critic gaps are averaged: mean([2, 4]) = 3.
    close(L.cql_alpha_lagrange_loss(log_ap, jnp.array([2.0, 4.0]), 1.0), -4.0)
    close(L.cql_alpha_prime(jnp.array(30.0)), 1e6)  # exp(30) = 1.07e13, clipped


def test_sac_losses() -> None:
    logp = jnp.array([-1.0, 0.5])
    q = jnp.array([2.0, 1.0])
    # mean([0.2 * -1 - 2, 0.2 * 0.5 - 1]) = mean([-2.2, -0.9]) = -1.55
    close(L.sac_actor_loss(logp, q, 0.2), -1.55)
    close(jax.grad(L.sac_actor_loss, argnums=2)(logp, q, 0.2), 0.0)
    # temperature: -mean(0.5 * ([-1, -3] + (-2))) = -mean([-1.5, -2.5]) = 2.0
    logp2 = jnp.array([-1.0, -3.0])
    close(L.temperature_loss(0.5, logp2, -2.0), 2.0)
    # d/dalpha = -mean(log pi + H) = 4 > 0: entropy 2 exceeds target -2, so alpha falls.
    close(jax.grad(L.temperature_loss)(0.5, logp2, -2.0), 4.0)
    close(jax.grad(L.temperature_loss, argnums=1)(0.5, logp2, -2.0), [0.0, 0.0])
    assert L.default_target_entropy(6) == -6.0
    assert L.default_target_entropy(6, scale=0.5) == -3.0


def test_td3_bc_and_bc_losses() -> None:
    q_pi = jnp.array([1.0, -3.0])
    pi = jnp.array([[0.5, 0.0], [0.0, 0.0]])
    a = jnp.array([[0.0, 0.0], [0.0, 1.0]])
    # lambda = 2.5 / mean(|1|, |-3|) = 2.5 / 2 = 1.25; -1.25 * mean(1, -3) = -1.25 * -1 = 1.25
    # MSE over all 4 elements: (0.25 + 0 + 0 + 1) / 4 = 0.3125; total 1.5625
    close(L.td3_bc_actor_loss(q_pi, pi, a), 1.5625)
    # lambda is a constant: dL/dQ_i = -lambda / B = -0.625
    close(jax.grad(L.td3_bc_actor_loss)(q_pi, pi, a), [-0.625, -0.625])
    assert np.isfinite(float(L.td3_bc_actor_loss(jnp.zeros(2), pi, a)))
    close(L.bc_mse_loss(pi, a), 0.3125)
    close(L.bc_nll_loss(jnp.array([-1.0, -3.0])), 2.0)


def test_edac_diversity_loss_golden() -> None:
    # 2 critics, 1 sample: g1 = (3, 4) -> (0.6, 0.8); g2 = (1, 0). <g1, g2> = 0.6; ordered
    # pairs (1,2) and (2,1) sum to 1.2; divided by N - 1 = 1 -> 1.2.
    g = jnp.array([[[3.0, 4.0]], [[1.0, 0.0]]])
    close(L.edac_diversity_loss(g), 1.2)
    # 3 critics, 2 samples. Sample 0: (0.6, 0.8), (1, 0), (0, 1): pairs 0.6 + 0.8 + 0 = 1.4,
    # ordered 2.8, / 2 = 1.4. Sample 1: all (1, 0): 6 ordered pairs of 1 -> 6 / 2 = 3.
    # Batch mean (1.4 + 3) / 2 = 2.2.
    g3 = jnp.array(
        [
            [[3.0, 4.0], [2.0, 0.0]],
            [[1.0, 0.0], [5.0, 0.0]],
            [[0.0, 2.0], [0.5, 0.0]],
        ]
    )
    close(L.edac_diversity_loss(g3), 2.2)
    with pytest.raises(HybridRLError):
        L.edac_diversity_loss(g[:1])


def test_ensemble_action_gradients_match_analytic() -> None:
    w = jnp.array([[1.0, -2.0], [0.5, 3.0]])  # (N=2, A=2)
    c = jnp.array([1.0, -1.0])

    def q_fn(actions: jax.Array) -> jax.Array:
        # Q_i(a_b) = w_i . a_b + c_i |a_b|^2  ->  grad = w_i + 2 c_i a_b
        return actions @ w.T + c * jnp.sum(actions**2, -1, keepdims=True)

    actions = jnp.array([[0.1, 0.2], [-0.3, 0.4], [0.0, -1.0]])
    grads = jax.jit(L.ensemble_action_gradients, static_argnums=0)(lambda a: q_fn(a).T, actions)
    want = w[:, None, :] + 2 * c[:, None, None] * actions[None]
    close(grads, want)


def test_edac_loss_differentiable_through_critic() -> None:
    critic = EnsembleCritic((8,), num_qs=3)
    obs, act = jnp.ones((4, 3)), jnp.zeros((4, 2))
    params = critic.init(jax.random.key(0), obs, act)

    def loss(p: dict) -> jax.Array:
        grads = L.ensemble_action_gradients(lambda a: critic.apply(p, obs, a), act)
        return L.edac_diversity_loss(grads)

    value, grads = jax.jit(jax.value_and_grad(loss))(params)
    assert np.isfinite(float(value)) and -3.0 <= float(value) <= 3.0
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_losses_jit_without_recompiling_on_hyperparameters() -> None:
    traces = []

    @jax.jit
    def step(expectile: jax.Array, beta: jax.Array, tau: jax.Array) -> jax.Array:
        traces.append(1)
        d = jnp.array([1.0, -1.0])
        p = L.polyak_update(jnp.zeros(2), jnp.ones(2), tau)
        return L.expectile_loss(d, expectile) + L.awr_weights(d, beta).sum() + p.sum()

    for e, b, t in [(0.7, 3.0, 0.005), (0.9, 10.0, 0.01)]:
        step(jnp.float32(e), jnp.float32(b), jnp.float32(t))
    assert len(traces) == 1


# ----------------------------------------------------------------------------- PPO
def test_ppo_clipped_surrogate_by_hand() -> None:
    ratio = jnp.array([1.5, 0.5, 1.1, 0.7, 1.5])
    adv = jnp.array([1.0, 1.0, -1.0, -1.0, -1.0])
    old = jnp.zeros(5)
    # eps 0.2; per sample max(-A r, -A clip(r, 0.8, 1.2)):
    # [max(-1.5, -1.2), max(-0.5, -0.8), max(1.1, 1.1), max(0.7, 0.8), max(1.5, 1.2)]
    # = [-1.2, -0.5, 1.1, 0.8, 1.5]; mean 1.7 / 5 = 0.34
    close(L.ppo_clipped_surrogate_loss(jnp.log(ratio), old, adv, 0.2), 0.34)
    # d/dlog pi: clipped branch active -> 0; else -A r / 5: [0, -0.1, 0.22, 0, 0.3]
    grad = jax.grad(L.ppo_clipped_surrogate_loss)(jnp.log(ratio), old, adv, 0.2)
    close(grad, [0.0, -0.1, 0.22, 0.0, 0.3])
    # old log-probs and advantages are constants
    close(jax.grad(L.ppo_clipped_surrogate_loss, argnums=1)(jnp.log(ratio), old, adv, 0.2), [0] * 5)
    close(jax.grad(L.ppo_clipped_surrogate_loss, argnums=2)(jnp.log(ratio), old, adv, 0.2), [0] * 5)


def test_ppo_value_loss_clipped_and_unclipped_by_hand() -> None:
    v = jnp.array([1.0, 2.0, 0.0])
    old = jnp.array([0.5, 2.0, 1.0])
    ret = jnp.array([2.0, 1.0, 1.0])
    # unclipped (V - R)^2 = [1, 1, 1]; clipped V = old + clip(V - old, ±0.2) = [0.7, 2.0, 0.8]
    # -> (.. - R)^2 = [1.69, 1, 0.04]; max = [1.69, 1, 1]; 0.5 * 3.69 / 3 = 0.615
    close(L.ppo_value_loss(v, old, ret, 0.2), 0.615)
    close(L.ppo_value_loss(v, old, ret, 0.2, clip=False), 0.5)
    # gradient: sample 0 takes the clipped branch, outside the clip range -> 0;
    # sample 1: 0.5 * 2 * (2 - 1) / 3 = 1/3; sample 2: 0.5 * 2 * (0 - 1) / 3 = -1/3
    close(jax.grad(L.ppo_value_loss)(v, old, ret, 0.2), [0.0, 1 / 3, -1 / 3])
    close(jax.grad(L.ppo_value_loss, argnums=(1, 2))(v, old, ret, 0.2), [[0, 0, 0], [0, 0, 0]])


def test_ppo_advantage_normalization_kl_and_clip_fraction() -> None:
    # mean 2, std with Bessel's correction sqrt((1 + 0 + 1) / 2) = 1 -> [-1, 0, 1]
    close(L.ppo_normalize_advantages(jnp.array([1.0, 2.0, 3.0])), [-1.0, 0.0, 1.0])
    # log ratio [log 2, 0]: k1 = mean(-lr) = -log(2) / 2; k3 = mean((r - 1) - lr) = (1 - log 2) / 2
    old_kl, kl = L.ppo_approx_kl(jnp.array([LN2, 0.0]))
    close(old_kl, -LN2 / 2)
    close(kl, (1 - LN2) / 2)
    # |r - 1| > 0.2 for r in [1.5, 1.1, 0.5, 1.0] -> [1, 0, 1, 0] -> 0.5
    close(L.ppo_clip_fraction(jnp.log(jnp.array([1.5, 1.1, 0.5, 1.0])), 0.2), 0.5)


def test_value_smoothness_loss_golden() -> None:
    # N = 2 critics, B = 2 states, K = 2 perturbations.
    q_clean = jnp.array([[1.0, 0.0], [2.0, 0.0]])  # (N, B)
    q_pert = jnp.array([[[2.0, 0.0], [-2.0, 0.0]], [[2.0, 3.0], [0.0, 0.0]]])  # (N, B, K)
    # row 0: Δ member 0 = [1, -1], member 1 = [0, 1]
    #   ℓ (τ = 0.2): member 0 [0.8 * 1, 0.2 * 1] = [0.8, 0.2], member 1 [0, 0.8]
    #   mean over members [0.4, 0.5] -> max 0.5
    # row 1: Δ member 0 = [-2, 0], member 1 = [0, 0] -> ℓ [0.2 * 4, 0], [0, 0]
    #   mean [0.4, 0] -> max 0.4;  loss = (0.5 + 0.4) / 2 = 0.45
    close(L.value_smoothness_loss(q_clean, q_pert, 0.2), 0.45)
    # Symmetric τ = 0.5: row 0 ℓ m0 [0.5, 0.5], m1 [0, 0.5] -> mean [0.25, 0.5] -> 0.5;
    # row 1 m0 [2, 0] -> mean [1, 0] -> 1; loss 0.75: a downward step now costs as much.
    close(L.value_smoothness_loss(q_clean, q_pert, 0.5), 0.75)
    # Gradient of the τ = 0.2 loss reaches only the arg-max perturbation (row 0: k = 1):
    # d/dQ_1(s_0 + δ_1) = (1/B)(1/N) 0.8 · 2Δ = 0.5 · 0.5 · 1.6 · 1 = 0.4; the clean Q gets
    # the opposite (-0.4 from member 1) plus member 0's k = 1 term: (1/4) · 0.2 · 2 · (-1) ·
    # (-1) = 0.1.
    g_clean, g_pert = jax.grad(L.value_smoothness_loss, argnums=(0, 1))(q_clean, q_pert, 0.2)
    close(g_pert[1, 0], [0.0, 0.4])
    close(g_pert[0, 0], [0.0, -0.1])
    close(g_clean[:, 0], [0.1, -0.4])
    # row 1: argmax k = 0; member 0 Δ = -2: (1/4) 0.2 · 2 · (-2) = -0.2 on Q_0(s_1 + δ_0)
    close(g_pert[0, 1], [-0.2, 0.0])
    close(g_clean[0, 1], 0.2)


def test_ood_uncertainty_loss_golden() -> None:
    q = jnp.array([[1.0, 0.0], [3.0, 0.0]])  # (N = 2, M = 2)
    # unbiased std over heads: column 0 {1, 3}: sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt 2;
    # column 1: 0. Each residual is α std, so the loss is mean((α std)^2) over 4 entries:
    # (2 · 0.25 · 2 + 0) / 4 = 0.25 for α = 0.5
    close(L.ood_uncertainty_loss(q, 0.5), 0.25)
    # gradient 2 (Q - target) / 4 = α std / 2 = 0.5 · 1.4142136 / 2 = 0.3535534 on column 0
    close(jax.grad(L.ood_uncertainty_loss)(q, 0.5), [[0.3535534, 0.0], [0.3535534, 0.0]])
    close(L.ood_uncertainty_loss(q, 0.0), 0.0)


def test_gaussian_kl_and_symmetric_kl_golden() -> None:
    mp, lp = jnp.array([0.0, 0.3]), jnp.array([0.0, -0.2])
    mq, lq = jnp.array([1.0, 0.3]), jnp.array([math.log(2.0), -0.2])
    # dim 0: KL(N(0,1) ‖ N(1,4)) = ln 2 + (1 + 1) / 8 - 1/2 = 0.4431472; dim 1: identical, 0
    close(L.gaussian_kl(mp, lp, mq, lq), 0.4431472)
    # reverse: ln(1/2) + (4 + 1) / 2 - 1/2 = 1.3068528
    close(L.gaussian_kl(mq, lq, mp, lp), 1.3068528)
    # sum: (1 + 1) / 8 + (4 + 1) / 2 - 1 = 1.75
    close(L.symmetric_gaussian_kl(mp, lp, mq, lq), 1.75)


def test_policy_smoothness_loss_golden() -> None:
    mean, log_std = jnp.zeros((2, 1)), jnp.zeros((2, 1))
    pm = jnp.array([[[1.0], [0.0]], [[0.0], [2.0]]])  # (B = 2, K = 2, A = 1)
    pl = jnp.array([[[math.log(2.0)], [0.0]], [[0.0], [0.0]]])
    # row 0: k = 0 is N(1, 4) vs N(0, 1): 1.75 (above); k = 1 identical: 0 -> max 1.75
    # row 1: k = 1, equal σ = 1, Δμ = 2: 4/2 + 4/2 = 4 -> max 4;  mean (1.75 + 4) / 2 = 2.875
    close(L.policy_smoothness_loss(mean, log_std, pm, pl), 2.875)
    # gradient flows to both sides (the official code detaches neither): row 1's Δμ
    # derivative is (1/B) · 2Δμ = 0.5 · 4 = 2 for the perturbed mean, -2 for the clean one
    g_mean, g_pm = jax.grad(L.policy_smoothness_loss, argnums=(0, 2))(mean, log_std, pm, pl)
    close(g_pm[1, 1, 0], 2.0)
    close(g_mean[1, 0], -2.0)
