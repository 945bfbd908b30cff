"""Ensembles as ONE vmapped network, and REDQ-style random-subset minima.

`Ensemble` lifts a module with ``nn.vmap``: parameters get a leading axis of size ``num``
(``variable_axes={'params': 0}``), every member gets its own initialization and dropout masks
(``split_rngs``), and all members see the same inputs (``in_axes=None``). One batched matmul
per layer replaces N separate networks, which is what makes N=10 critics (RLPD) cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from hybridrl.types import HybridRLError


class Ensemble(nn.Module):
    """``num`` independent copies of ``net_cls``; outputs get a leading axis of size ``num``.

    Attributes:
        net_cls: a module class or a ``functools.partial`` of one (any callable that returns
            an unbound module when called with ``name=...``).
        num: ensemble size N.

    Call it with the member's arguments. Positional arguments (arrays) are shared by all
    members. Keyword arguments must be static Python values such as ``training=True``: they
    are bound before vmapping (flax's ``nn.vmap`` would otherwise drop them silently).

    Parameters live under ``params['members']`` with a leading axis N on every leaf.
    """

    net_cls: Callable[..., nn.Module]
    num: int

    @nn.compact
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        member = self.net_cls(name="members")

        def call(module: nn.Module, *inner: Any) -> Any:
            return module(*inner, **kwargs)

        vmapped = nn.vmap(
            call,
            variable_axes={"params": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num,
        )
        return vmapped(member, *args)


def subsample_ensemble_min(q_values: jax.Array, key: jax.Array, k: int) -> jax.Array:
    """Min over a random subset of ``k`` of the N ensemble members (REDQ target).

    REDQ (Chen et al., 2021, Algorithm 1) and RLPD (Ball et al., 2023; N=10, k=2) take the
    target ``min_{i in M} Q_i(s', a')`` over a set M of k distinct indices drawn uniformly
    without replacement from {1..N}, one draw per update (the whole batch shares M).

    Args:
        q_values: (N, ...) values of the N members.
        key: PRNG key for the subset.
        k: static subset size, 1 <= k <= N. ``k == N`` is the plain min (no randomness).

    Returns:
        ``q_values[M].min(axis=0)``, shape ``q_values.shape[1:]``.
    """
    n = q_values.shape[0]
    if not 1 <= k <= n:
        raise HybridRLError(f"subset size k={k} must be in [1, {n}] (the ensemble size)")
    if k == n:
        return jnp.min(q_values, axis=0)
    members = jax.random.choice(key, n, shape=(k,), replace=False)
    return jnp.min(q_values[members], axis=0)


def ensemble_min(q_values: jax.Array) -> jax.Array:
    """Min over the leading ensemble axis (clipped double-Q, SAC-N's pessimistic target)."""
    return jnp.min(q_values, axis=0)


def ensemble_mean(q_values: jax.Array) -> jax.Array:
    """Mean over the leading ensemble axis (REDQ/RLPD actor objective)."""
    return jnp.mean(q_values, axis=0)
