"""Many agent updates in one compiled call (GUIDE rule 3).

`scan_updates` samples a batch and applies the agent's ``update`` ``num_updates`` times inside
one ``lax.scan``; the metrics are averaged inside the scan and read once per chunk. Buffers and
samplers' numeric arguments (e.g. a mixing ratio) are *arguments*, never closed over, so a new
buffer of the same shapes or a new ratio reuses the compiled program.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from hybridrl.data.replay import ReplayBuffer, replay_sample
from hybridrl.data.transitions import Transitions

UpdateFn = Callable[[Any, Transitions, jax.Array], tuple[Any, dict[str, jax.Array]]]
SampleFn = Callable[[Any, jax.Array, int], Transitions]


def batch_size_per_update(state: Any, batch_size: int) -> int:
    """Transitions one update consumes: ``batch_size * utd_ratio`` for agents with a UTD."""
    return batch_size * int(getattr(state.config, "utd_ratio", 1))


@partial(jax.jit, static_argnames=("update_fn", "sample_fn", "num_updates", "batch_size"))
def scan_updates(
    update_fn: UpdateFn,
    state: Any,
    data: Any,
    key: jax.Array,
    *,
    num_updates: int,
    batch_size: int,
    sample_fn: SampleFn = replay_sample,
) -> tuple[Any, dict[str, jax.Array]]:
    """Run ``num_updates`` updates, each on ``sample_fn(data, key, n)`` with
    ``n = batch_size * utd_ratio``; returns the new state and the chunk's mean metrics."""
    n = batch_size_per_update(state, batch_size)

    def step(carry: Any, k: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        k_sample, k_update = jax.random.split(k)
        new_state, metrics = update_fn(carry, sample_fn(data, k_sample, n), k_update)
        return new_state, metrics

    state, metrics = jax.lax.scan(step, state, jax.random.split(key, num_updates))
    return state, jax.tree_util.tree_map(jnp.mean, metrics)


def sample_buffer(buffer: ReplayBuffer, key: jax.Array, n: int) -> Transitions:
    """The default sampler: uniform over a replay buffer (alias of `replay_sample`)."""
    return replay_sample(buffer, key, n)
