"""Buffers and sampling of a run: inserts that compile few programs, mixed offline/online
minibatches, the extras an agent's updates read (Cal-QL's Monte-Carlo returns)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import cache
from typing import Any

import jax
import numpy as np

from hybridrl.agents import agent_spec
from hybridrl.data.replay import ReplayBuffer, replay_add, replay_sample
from hybridrl.data.samplers import sample_mixed, sample_weighted
from hybridrl.data.transitions import Transitions, calql_mc_returns
from hybridrl.training.context import RunSettings

add = jax.jit(replay_add)


def sample_buffer(data: ReplayBuffer, key: jax.Array, n: int) -> Transitions:
    return replay_sample(data, key, n)


def sample_weighted_buffer(
    data: tuple[ReplayBuffer, jax.Array], key: jax.Array, n: int
) -> Transitions:
    """Rows of ``data = (buffer, cdf)`` drawn with the CDF's probabilities (a phase's
    trajectory-weighted sampler)."""
    buffer, cdf = data
    return sample_weighted(buffer, cdf, key, n)


def offline_source(buffer: ReplayBuffer, cdf: jax.Array | None) -> tuple[Any, Any]:
    """``(data, sample_fn)`` for `scan_updates` over the dataset: uniform (the buffer and
    `sample_buffer`, the program as before) or weighted by ``cdf``."""
    if cdf is None:
        return buffer, sample_buffer
    return (buffer, cdf), sample_weighted_buffer


@cache
def mixed_sampler(groups: int) -> Callable[[Any, jax.Array, int], Transitions]:
    """A sampler of ``n = groups × B`` rows made of ``groups`` minibatches that are *each*
    mixed at the ratio (``sample_mixed`` per minibatch): UTD agents split a batch into
    ``utd_ratio`` consecutive minibatches, and RLPD's every critic step sees both halves.
    Cached per ``groups`` so that ``scan_updates`` sees one static function per value."""

    def sample(data: tuple[Any, ...], key: jax.Array, n: int) -> Transitions:
        # (offline, online, ratio) or, with a weighted offline sampler, (..., offline_cdf)
        offline, online, ratio, *rest = data
        cdf = rest[0] if rest else None
        keys = jax.random.split(key, groups)
        parts = jax.vmap(
            lambda k: sample_mixed(offline, online, k, n // groups, ratio, offline_cdf=cdf)
        )(keys)
        return jax.tree_util.tree_map(lambda x: x.reshape(n, *x.shape[2:]), parts)

    return sample


def add_rows(buffer: ReplayBuffer, rows: Transitions) -> ReplayBuffer:
    """Add ``rows`` in power-of-two blocks, so variable episode lengths compile at most
    ~log2(capacity) programs instead of one per length."""
    n, start = len(rows), 0
    while start < n:
        block = 1 << int(math.log2(n - start))
        part = jax.tree_util.tree_map(lambda x, s=start, b=block: x[s : s + b], rows)
        buffer = add(buffer, part)
        start += block
    return buffer


def agent_needs_mc(agent_name: str, config: Any) -> bool:
    """Whether ``agent_name``'s updates read ``mc_returns`` under ``config``, as the agent
    declares (`AgentSpec.needs_mc_returns`): Cal-QL always, CQL when its calibration is on,
    agents switched to from them (SAC in WSRL) never."""
    return bool(agent_spec(agent_name).needs_mc_returns(config))


def with_extras(buffer: ReplayBuffer, keys: set[str]) -> ReplayBuffer:
    data = buffer.data
    if set(data.extras) == keys:
        return buffer
    extras = {k: v for k, v in data.extras.items() if k in keys}
    return dataclasses.replace(buffer, data=data.replace(extras=extras))


def episode_with_mc(steps: list[Transitions], gamma: float, s: RunSettings) -> Transitions:
    t = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *steps)
    mc = calql_mc_returns(t, gamma, sparse_reward=s.mc_sparse_reward)
    return t.replace(extras={"mc_returns": mc})
