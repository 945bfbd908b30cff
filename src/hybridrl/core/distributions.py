"""Diagonal Gaussian and tanh-squashed Gaussian action distributions as pytrees.

Both are ``flax.struct`` dataclasses holding ``mean`` and ``log_std`` arrays of shape
(..., A), so they pass through ``jit``/``vmap`` and can be returned by flax modules. Log-
probabilities are summed over the last (action) axis. Actions of `TanhNormal` lie in (-1, 1);
rescaling to an environment's bounds happens outside the agent.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)

# Actions are clipped to +-(1 - TANH_CLIP_EPS) before atanh in `TanhNormal.log_prob`: data
# actions of exactly +-1 (common in D4RL/Minari after clipping) would otherwise map to +-inf.
# In float32 this caps |atanh(a)| at about 7.25.
TANH_CLIP_EPS = 1e-6


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, x: jax.Array) -> jax.Array:
    """log N(x; mean, exp(log_std)^2 I), summed over the last axis.

    ``sum_i [ -((x_i - mu_i) / sigma_i)^2 / 2 - log sigma_i - log(2 pi) / 2 ]``.
    """
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * _LOG_2PI, axis=-1)


def tanh_log_det_jacobian(u: jax.Array) -> jax.Array:
    """``sum_i log(1 - tanh(u_i)^2)`` in the stable form ``2 (log 2 - u - softplus(-2u))``.

    Haarnoja et al. (2018a, Appendix C) subtract this term from the Gaussian log-density;
    the rewritten form (used by TensorFlow Probability's Tanh bijector) does not lose precision
    when ``tanh(u)`` rounds to +-1.
    """
    return jnp.sum(2.0 * (_LOG_2 - u - jax.nn.softplus(-2.0 * u)), axis=-1)


@struct.dataclass
class Normal:
    """Diagonal Gaussian N(mean, diag(exp(log_std)^2)) over the last axis (no squashing).

    Used by IQL/AWAC-style actors (`hybridrl.networks.heads.GaussianActor`); samples are not
    bounded, so clip them to [-1, 1] before acting.
    """

    mean: jax.Array
    log_std: jax.Array

    @property
    def std(self) -> jax.Array:
        return jnp.exp(self.log_std)

    def _shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sample_shape) + jnp.broadcast_shapes(self.mean.shape, self.log_std.shape)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        """Reparameterized sample ``mean + std * eps``, shape ``sample_shape + mean.shape``."""
        eps = jax.random.normal(key, self._shape(sample_shape), self.mean.dtype)
        return self.mean + self.std * eps

    def log_prob(self, x: jax.Array) -> jax.Array:
        return gaussian_log_prob(self.mean, self.log_std, x)

    def sample_and_log_prob(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, sample_shape)
        return x, self.log_prob(x)

    def mode(self) -> jax.Array:
        return self.mean

    def entropy(self) -> jax.Array:
        """Differential entropy, summed over the last axis (`gaussian_entropy`)."""
        return gaussian_entropy(jnp.broadcast_to(self.log_std, self.mean.shape))


@struct.dataclass
class TanhNormal:
    """a = tanh(u), u ~ N(mean, diag(exp(log_std)^2)): SAC's squashed Gaussian policy.

    ``log pi(a) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2)`` (Haarnoja et al., 2018a,
    Appendix C).
    """

    mean: jax.Array
    log_std: jax.Array

    @property
    def std(self) -> jax.Array:
        return jnp.exp(self.log_std)

    def _pre_tanh(self, key: jax.Array, sample_shape: tuple[int, ...]) -> jax.Array:
        shape = tuple(sample_shape) + jnp.broadcast_shapes(self.mean.shape, self.log_std.shape)
        return self.mean + self.std * jax.random.normal(key, shape, self.mean.dtype)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        """Reparameterized sample ``tanh(mean + std * eps)``: differentiable in mean/log_std."""
        return jnp.tanh(self._pre_tanh(key, sample_shape))

    def sample_and_log_prob(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, jax.Array]:
        """A sample and its log-density, computed from the pre-tanh value (exact, no atanh).

        Use this, not ``log_prob(sample(key))``, for SAC/CQL terms: it stays exact where
        ``tanh`` saturates in float32.
        """
        u = self._pre_tanh(key, sample_shape)
        log_prob = gaussian_log_prob(self.mean, self.log_std, u) - tanh_log_det_jacobian(u)
        return jnp.tanh(u), log_prob

    def log_prob(self, action: jax.Array) -> jax.Array:
        """log pi(a) of given actions in (-1, 1), e.g. dataset actions for a BC/AWR loss.

        Actions are clipped to ``+-(1 - TANH_CLIP_EPS)`` and inverted with ``atanh``; actions at
        the bounds therefore get a finite (very low or very high) density instead of NaN.
        """
        a = jnp.clip(action, -1.0 + TANH_CLIP_EPS, 1.0 - TANH_CLIP_EPS)
        u = jnp.arctanh(a)
        return gaussian_log_prob(self.mean, self.log_std, u) - tanh_log_det_jacobian(u)

    def mode(self) -> jax.Array:
        """``tanh(mean)``: the deterministic evaluation action (the conventional choice; it is
        the squashed Gaussian mode, not the mode of the squashed density)."""
        return jnp.tanh(self.mean)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Entropy of a diagonal Gaussian, ``sum_i [log sigma_i + (1 + log(2 pi)) / 2]`` over the
    last axis (it does not depend on the mean)."""
    return jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)


@struct.dataclass
class Categorical:
    """Categorical distribution over K actions given unnormalised ``logits`` (..., K).

    PPO's discrete policy (CleanRL ``ppo.py`` uses ``torch.distributions.Categorical(logits=)``).
    Actions are int32 indices of shape (...,).
    """

    logits: jax.Array

    @property
    def log_probs_all(self) -> jax.Array:
        """Normalised log-probabilities of every action, (..., K)."""
        return jax.nn.log_softmax(self.logits, axis=-1)

    def log_prob(self, actions: jax.Array) -> jax.Array:
        """log p(a) of int actions (...,)."""
        idx = jnp.asarray(actions, jnp.int32)[..., None]
        return jnp.take_along_axis(self.log_probs_all, idx, axis=-1)[..., 0]

    def entropy(self) -> jax.Array:
        """``-sum_k p_k log p_k`` over the last axis (0 log 0 taken as 0)."""
        logp = self.log_probs_all
        p = jnp.exp(logp)
        return -jnp.sum(jnp.where(p > 0, p * logp, 0.0), axis=-1)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        """int32 samples of shape ``sample_shape + logits.shape[:-1]``."""
        shape = tuple(sample_shape) + self.logits.shape[:-1]
        return jax.random.categorical(key, self.logits, axis=-1, shape=shape).astype(jnp.int32)

    def sample_and_log_prob(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, sample_shape)
        return x, self.log_prob(x)

    def mode(self) -> jax.Array:
        """The most probable action (argmax of the logits), int32."""
        return jnp.argmax(self.logits, axis=-1).astype(jnp.int32)
