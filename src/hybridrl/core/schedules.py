"""Hyperparameter schedules as pure functions of the update counter.

A schedule reads the step from the agent state (an optimizer's step count, saved in every
checkpoint) and its constants from the agent config (traced leaves), never from a Python-side
counter: a resumed run sees the same step and so the same value, and changing a constant does
not recompile. ReBRAC's online decay of the actor BC coefficient uses `linear_decay`; RO2O's
α_u decay (a fixed amount per update down to a floor) uses `linear_anneal`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hybridrl.types import Array


def linear_decay(
    step: Array, start: float | Array, length: float | Array, floor: float | Array = 0.0
) -> jax.Array:
    """A factor that is 1 before ``start``, then falls linearly to ``floor`` over ``length``
    steps and stays there: ``max(floor, 1 - (step - start) / length)`` for ``step >= start``.

    At ``step == start`` the factor is 1; at ``start + k`` it is ``max(floor, (length - k) /
    length)``, which is the official ReBRAC fine-tuning decay (DT6A/ReBRAC
    ``src/algorithms/rebrac_finetune.py``, ``decay_coef = max(min_decay_coef,
    (num_online_updates + num_offline_updates - i) / num_online_updates)`` with ``start`` the
    number of offline updates). ``length <= 0`` means no decay (the factor is always 1).
    """
    step = jnp.asarray(step, jnp.float32)
    length = jnp.asarray(length, jnp.float32)
    elapsed = jnp.maximum(step - start, 0.0)
    value = jnp.maximum(floor, 1.0 - elapsed / jnp.maximum(length, 1.0))
    return jnp.where(length > 0, value, 1.0)


def linear_anneal(
    step: Array, initial: float | Array, rate: float | Array, minimum: float | Array
) -> jax.Array:
    """``max(initial - rate * step, minimum)``: a value that falls by ``rate`` per update
    from ``initial`` and stops at ``minimum``.

    RO2O's OOD uncertainty weight α_u (BattleWen/RO2O @ d066702 ``ro2o_mujoco.py``
    ``get_ood_loss``: ``q_ood_uncertainty_reg`` starts at 1.0 and loses ``5e-7`` after each
    use, floored at 0.1): with ``step`` the number of critic updates taken before this one,
    the value used at update t is ``max(1 - 5e-7 t, 0.1)``, which reaches 0.1 after 1.8M
    updates.
    """
    value = initial - rate * jnp.asarray(step, jnp.float32)
    return jnp.maximum(value, minimum)
