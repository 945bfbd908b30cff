"""Small builders shared by the tests."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hybridrl.data.transitions import Transitions


def enable_x64(new_val: bool = True) -> AbstractContextManager[Any]:
    """``jax.enable_x64(new_val)``: the context manager that turns 64-bit mode on for a block
    (``jax.experimental.enable_x64`` before jax made it public, in releases the oldest
    supported jax still covers)."""
    public = getattr(jax, "enable_x64", None)
    if public is not None:
        return public(new_val)
    from jax.experimental import enable_x64 as experimental

    return experimental(new_val)


def random_batch(
    key: jax.Array,
    n: int = 32,
    obs_dim: int = 3,
    act_dim: int = 1,
    *,
    terminal_every: int = 0,
    mc_returns: bool = False,
    next_actions: bool = False,
) -> Transitions:
    """Random transitions with actions in [-1, 1]; every ``terminal_every``-th row terminal;
    ``next_actions``: random ``next_actions`` with ``has_next_action`` 0 on terminal rows."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    terminals = (
        (jnp.arange(n) % terminal_every == 0).astype(jnp.float32)
        if terminal_every
        else jnp.zeros(n)
    )
    extras = {"mc_returns": jax.random.normal(k1, (n,))} if mc_returns else {}
    if next_actions:
        extras["next_actions"] = jax.random.uniform(k3, (n, act_dim), minval=-1, maxval=1)
        extras["has_next_action"] = 1.0 - terminals
    return Transitions(
        observations=jax.random.normal(k1, (n, obs_dim)),
        actions=jax.random.uniform(k2, (n, act_dim), minval=-1, maxval=1),
        rewards=jax.random.normal(k3, (n,)),
        next_observations=jax.random.normal(k4, (n, obs_dim)),
        terminals=terminals,
        timeouts=jnp.zeros(n),
        extras=extras,
    )


def same_tree(a: Any, b: Any) -> bool:
    """Whether two pytrees have exactly equal leaves."""
    return all(
        np.array_equal(x, y)
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


def pendulum_dataset(num_steps: int, name: str, **kw: Any) -> Any:
    """``num_steps`` transitions of the noisy (std 0.3) Pendulum swing-up controller, seed 0;
    ``kw`` goes to `collect` (e.g. reference scores)."""
    from hybridrl.data.collect import NoiseConfig, collect
    from hybridrl.policies import PendulumSwingUp

    return collect(
        "Pendulum-v1",
        PendulumSwingUp(),
        num_steps=num_steps,
        seed=0,
        noise=NoiseConfig(gaussian_std=0.3),
        progress=False,
        name=name,
        **kw,
    )
