"""Running mean and variance of a stream of batches, as a pytree (observation and return
normalisation of PPO).

The statistics follow gymnasium's ``RunningMeanStd`` (``gymnasium/wrappers/normalize.py`` at
v0.29.1, the version CleanRL pins; Farama-Foundation/Gymnasium commit
``7cf49527c945297f0bfeb89edab417d87819ab00``): the state starts at mean 0, variance 1 and a
pseudo-count ε = 1e-4, and each batch x (rows on axis 0) is merged with the parallel-variance
rule of Chan et al. (1979):

    δ = mean(x) - μ,   n' = n + m  (m rows)
    μ' = μ + δ m / n'
    σ²' = (σ² n + var(x) m + δ² n m / n') / n'

``normalize`` returns ``(x - μ) / sqrt(σ² + 1e-8)`` (the wrappers' epsilon).

Unlike gymnasium (float64 NumPy), the statistics are float32 arrays so they live in the agent
state, pass through ``jit`` and are saved with it. ``update`` and ``normalize`` are pure: they
return a new `RunningMeanStd` / array and never mutate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["RunningMeanStd"]

INITIAL_COUNT = 1e-4  # gymnasium's ``epsilon`` pseudo-count
NORMALIZE_EPS = 1e-8  # gymnasium's NormalizeObservation / NormalizeReward ``epsilon``


@struct.dataclass
class RunningMeanStd:
    """Mean, (population) variance and count of every sample merged so far.

    Attributes:
        mean, var: arrays of the sample shape (``()`` for returns, ``(obs_dim,)`` for
            observations), float32.
        count: scalar float32, the number of samples merged plus the initial 1e-4.
    """

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape: tuple[int, ...] = ()) -> RunningMeanStd:
        """Statistics of no data: mean 0, variance 1, count 1e-4 (gymnasium's start)."""
        return cls(
            mean=jnp.zeros(shape, jnp.float32),
            var=jnp.ones(shape, jnp.float32),
            count=jnp.asarray(INITIAL_COUNT, jnp.float32),
        )

    def update(self, x: jax.Array) -> RunningMeanStd:
        """Merge the batch ``x`` of shape (m, *shape) (rows on axis 0); returns new statistics."""
        x = jnp.asarray(x, jnp.float32)
        m = jnp.asarray(x.shape[0], jnp.float32)
        return self.update_from_moments(jnp.mean(x, axis=0), jnp.var(x, axis=0), m)

    def update_from_moments(
        self, batch_mean: jax.Array, batch_var: jax.Array, batch_count: jax.Array
    ) -> RunningMeanStd:
        """Merge a batch given by its mean, population variance and count."""
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count
        m2 = m2 + jnp.square(delta) * self.count * batch_count / total
        return RunningMeanStd(mean=mean, var=m2 / total, count=total)

    def normalize(self, x: jax.Array, eps: float = NORMALIZE_EPS) -> jax.Array:
        """``(x - mean) / sqrt(var + eps)`` with the current statistics (no update)."""
        return (jnp.asarray(x, jnp.float32) - self.mean) / jnp.sqrt(self.var + eps)

    def scale(self, x: jax.Array, eps: float = NORMALIZE_EPS) -> jax.Array:
        """``x / sqrt(var + eps)``: division by the standard deviation only, without
        centring (gymnasium's NormalizeReward scales rewards this way)."""
        return jnp.asarray(x, jnp.float32) / jnp.sqrt(self.var + eps)
