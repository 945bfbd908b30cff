"""The natural-gradient / trust-region step of TRPO and NPG as pure, jittable functions of flat
parameter vectors (Kakade, 2001; Schulman et al., 2015, Appendix C).

The constants and control flow follow pytorch-trpo as HNPG's ``trpo.py`` keeps it
(YifeiZhou02/HNPG @ 7d7ace1: ``conjugate_gradients``, ``trpo_step``, ``linesearch``):

1. g = ∇L(θ) of the surrogate loss L; the Fisher-vector product
   ``F v = ∇_θ (∇_θ KL(π_θold || π_θ) · v) + δ v`` (damping δ = 0.1), a Hessian-vector product
   of the mean KL at θ = θold (`fisher_vector_product`: forward-over-reverse, ``jax.jvp`` of
   ``jax.grad``; the KL's Hessian there is the Fisher matrix);
2. x ≈ F⁻¹(−g) by 10 conjugate-gradient iterations from x = 0 (`conjugate_gradient`; stops
   early once ‖r‖² < 1e-10);
3. the full step ``x / β`` with ``β = sqrt(½ xᵀF x / max_kl)``, so that the quadratic model
   of the KL is exactly max_kl at the full step (`trust_region_step`);
4. a backtracking line search over the step fractions 1, ½, ..., ½⁹: the first fraction
   whose actual improvement of L is positive and at least 0.1 × the linear prediction
   ``−g·(fraction · full step)``; none: θ unchanged (`line_search`; the ten candidates are
   evaluated in one ``vmap`` and the first accepted is selected by a mask, so the step has a
   fixed cost and no data-dependent Python control flow).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Vector = jax.Array


def conjugate_gradient(
    matvec: Callable[[Vector], Vector],
    b: Vector,
    iterations: int = 10,
    residual_tol: float = 1e-10,
) -> Vector:
    """x ≈ A⁻¹ b for a symmetric positive-definite A given as ``matvec``, by ``iterations``
    CG steps from x = 0 (exact after dim(b) steps in exact arithmetic). Once the squared
    residual falls below ``residual_tol`` the remaining iterations leave x unchanged (the
    official loop's ``break``). ``iterations`` is static."""

    def body(_: int, carry: tuple[Vector, ...]) -> tuple[Vector, ...]:
        x, r, p, rdotr, done = carry
        ap = matvec(p)
        # a converged solve would divide 0 by ~0: guard, and keep the old values below
        alpha = rdotr / jnp.where(done, 1.0, jnp.dot(p, ap))
        x_new, r_new = x + alpha * p, r - alpha * ap
        new_rdotr = jnp.dot(r_new, r_new)
        p_new = r_new + new_rdotr / jnp.where(done, 1.0, rdotr) * p

        def keep(old: Vector, new: Vector) -> Vector:
            return jnp.where(done, old, new)

        return (
            keep(x, x_new),
            keep(r, r_new),
            keep(p, p_new),
            keep(rdotr, new_rdotr),
            done | (new_rdotr < residual_tol),
        )

    b = jnp.asarray(b)
    rdotr = jnp.dot(b, b)
    init = (jnp.zeros_like(b), b, b, rdotr, rdotr < residual_tol)
    return jax.lax.fori_loop(0, iterations, body, init)[0]


def fisher_vector_product(
    kl_fn: Callable[[Vector], jax.Array], theta: Vector, v: Vector, damping: float | jax.Array
) -> Vector:
    """``∇²KL(θ) v + damping · v``: the Hessian of ``kl_fn`` (the mean KL from the fixed old
    policy to π_θ, whose Hessian at θ = θold is the Fisher information matrix) times v, by a
    JVP of its gradient (one forward-over-reverse pass, no matrix)."""
    return jax.jvp(jax.grad(kl_fn), (theta,), (v,))[1] + damping * v


def trust_region_step(
    grad: Vector, direction: Vector, f_direction: Vector, max_kl: float | jax.Array
) -> tuple[Vector, jax.Array]:
    """The full step ``x / β``, ``β = sqrt(½ xᵀ(F x) / max_kl)`` for the CG direction x and
    ``F x`` (damped, as the official code uses it), and the linear model's improvement of the
    loss per unit step fraction, ``−g · x / β``. ½ (x/β)ᵀ F (x/β) = max_kl by construction
    (x = 0 gives a zero step)."""
    # floored so a zero gradient (x = 0) gives a zero step, not 0/0
    shs = jnp.maximum(0.5 * jnp.dot(direction, f_direction), jnp.finfo(direction.dtype).tiny)
    beta = jnp.sqrt(shs / max_kl)
    return direction / beta, -jnp.dot(grad, direction) / beta


def line_search(
    loss_fn: Callable[[Vector], jax.Array],
    theta: Vector,
    full_step: Vector,
    expected_improve: jax.Array,
    max_backtracks: int = 10,
    accept_ratio: float | jax.Array = 0.1,
) -> tuple[Vector, dict[str, jax.Array]]:
    """Backtracking over fractions ½^k, k = 0 .. max_backtracks−1: the first θ + ½^k·step
    with ``L(θ) − L(θ_k) > 0`` and ``(L(θ) − L(θ_k)) / (½^k · expected_improve) > accept_ratio``;
    θ itself when none qualifies. Returns the new θ and metrics (``accepted``, the
    ``step_fraction`` taken (0 when none), ``loss_before``, ``loss_after``)."""
    fractions = 0.5 ** jnp.arange(max_backtracks, dtype=theta.dtype)
    before = loss_fn(theta)
    losses = jax.vmap(lambda f: loss_fn(theta + f * full_step))(fractions)
    actual = before - losses
    ok = (actual / (fractions * expected_improve) > accept_ratio) & (actual > 0)
    accepted = jnp.any(ok)
    first = jnp.argmax(ok)  # the first True (argmax of booleans); 0 when none
    fraction = jnp.where(accepted, fractions[first], 0.0)
    after = jnp.where(accepted, losses[first], before)
    return theta + fraction * full_step, {
        "accepted": accepted.astype(jnp.float32),
        "step_fraction": fraction,
        "loss_before": before,
        "loss_after": after,
    }
