"""Optimizers, built once per set of hyperparameters.

An optax transformation is a pair of closures, so two ``optax.adam(3e-4)`` are never equal;
as part of a state's static structure (``TrainState.tx``) each new one would make every jitted
update compile again. These constructors are cached: equal arguments give the same object.
"""

from __future__ import annotations

from functools import cache

import optax

__all__ = ["adam"]


@cache
def adam(
    learning_rate: float, cosine_decay_steps: int | None = None
) -> optax.GradientTransformation:
    """Adam at ``learning_rate``; with ``cosine_decay_steps``, the rate decays to 0 along a
    cosine over that many updates (IQL's official actor schedule)."""
    if cosine_decay_steps is None:
        return optax.adam(learning_rate)
    if cosine_decay_steps <= 0:
        raise ValueError(f"the decay needs a positive number of steps, got {cosine_decay_steps}")
    return optax.adam(optax.cosine_decay_schedule(learning_rate, cosine_decay_steps))
