"""Actors conditioned on extra context columns, and a sinusoidal code for scalar contexts.

A conditioned policy π(a | s, c) sees the observation with context columns c appended:
``actor(concat(s, c))``. FamO2O's universal actor is conditioned on a code φ(β) of its balance
coefficient (`sinusoidal_code`); a time-indexed policy would be conditioned on a code of the
step. `ConditionedActor` wraps any actor head that takes one input array (`GaussianActor`,
`TanhGaussianActor`, `DeterministicActor`), so no head is forked: the wrapped head is built
for an input of width ``observation_dim + context_dim`` and nothing else changes.

Parameters of the wrapped head sit under ``params["actor"]``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from hybridrl.types import Array


def conditioned_inputs(observations: Array, context: Array) -> jax.Array:
    """``concat(s, c)`` along the last axis; ``context`` is broadcast over the leading axes of
    ``observations`` (one context for a whole batch is allowed)."""
    observations = jnp.asarray(observations)
    context = jnp.asarray(context, observations.dtype)
    lead = observations.shape[:-1]
    context = jnp.broadcast_to(context, lead + context.shape[-1:])
    return jnp.concatenate([observations, context], axis=-1)


class ConditionedActor(nn.Module):
    """π(·|s, c) = ``actor(concat(s, c))``: any single-input actor head with context columns.

    Attributes:
        actor: the head (its output type is returned unchanged: a distribution, or actions).
    """

    actor: nn.Module

    @nn.compact
    def __call__(self, observations: jax.Array, context: jax.Array, training: bool = False) -> Any:
        return self.actor(conditioned_inputs(observations, context), training=training)


def sinusoidal_code(x: Array, dim: int, base: float | Array = 1e4) -> jax.Array:
    """The sinusoidal code of a scalar, shape ``x.shape + (dim,)``:
    ``φ_{2i}(x) = sin(x / base^{2i/dim})``, ``φ_{2i+1}(x) = cos(x / base^{2i/dim})`` for
    ``i = 0 .. dim/2 - 1`` (the Transformer's positional code, Vaswani et al., 2017, applied
    to a real number). FamO2O codes its balance coefficient this way with ``dim = 6``,
    ``base = 1e4`` (LeapLabTHU/FamO2O @ ea9cb01, ``jax_iql/family_utils.py``
    ``sin_cos_skill_func``). ``dim`` is static and even; ``base`` may be traced.

    Low frequencies (large i) vary slowly, so nearby x get nearby codes; high ones separate
    values that differ by less than one period.
    """
    if dim <= 0 or dim % 2:
        raise ValueError(f"the sinusoidal code needs a positive even dim, got {dim}")
    x = jnp.asarray(x, jnp.float32)[..., None]
    freqs = jnp.asarray(base, jnp.float32) ** (-2.0 * jnp.arange(dim // 2, dtype=jnp.float32) / dim)
    angles = x * freqs
    # interleave: sin at even columns, cos at odd columns
    return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape((*x.shape[:-1], dim))
