"""State perturbations for smoothness regularisers and robustness metrics (pure functions).

RO2O (Wen et al., 2024; BattleWen/RO2O @ d066702, ``get_noised_obs``) and RORL before it
draw K perturbations δ_k ~ U[-ε, ε]^D once per loss evaluation and add **the same K** to
every state of the batch: a (K, D) draw broadcast over the B rows, not B·K independent
draws. The "worst case" is then the max over those K, not a gradient-based attack.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hybridrl.types import Array


def uniform_perturbations(key: jax.Array, num: int, dim: int, epsilon: float | Array) -> jax.Array:
    """``num`` perturbations δ_k ~ U[-ε, ε]^dim, shape (num, dim); ``epsilon`` may be traced
    (``num`` and ``dim`` are shapes, so static)."""
    return jax.random.uniform(key, (num, dim), minval=-epsilon, maxval=epsilon)


def perturb(observations: Array, deltas: Array) -> jax.Array:
    """Every state plus every perturbation: (B, D) and (K, D) -> (B, K, D)."""
    return jnp.asarray(observations)[:, None, :] + jnp.asarray(deltas)[None, :, :]


def repeat_rows(x: Array, num: int) -> jax.Array:
    """Each row ``num`` times in a row: (B, ...) -> (B·num, ...), matching the row order of
    ``perturb(...).reshape(B * num, D)``."""
    x = jnp.asarray(x)
    return jnp.repeat(x, num, axis=0)
