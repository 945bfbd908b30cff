"""A test double of an agent: no learning, it reports what its batches contain.

Its metrics say which fraction of each batch came from the dataset (the test dataset's rewards
are +1, Pendulum's are <= 0), how many rows it saw and how many updates ran, so runner tests
can check sampler ratios and update counts from the logged ``train`` records.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from hybridrl.agents.spec import AgentSpec
from hybridrl.data.transitions import Transitions


@struct.dataclass
class Config:
    discount: float = 0.99
    hidden_dims: tuple[int, ...] = struct.field(pytree_node=False, default=(1,))


@struct.dataclass
class State:
    config: Config
    updates: jax.Array
    offline_rows: jax.Array
    rows: jax.Array


def init(config: Config, key: jax.Array, observation_dim: int, action_dim: int) -> State:
    del key, observation_dim
    return State(config, jnp.zeros((), jnp.int32), jnp.zeros(()), jnp.zeros(()))


def update(state: State, batch: Transitions, key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
    del key
    offline = jnp.sum(batch.rewards > 0.5)
    state = dataclasses.replace(
        state,
        updates=state.updates + 1,
        offline_rows=state.offline_rows + offline,
        rows=state.rows + batch.rewards.shape[0],
    )
    metrics = {"offline_fraction": offline / batch.rewards.shape[0]}
    return state, metrics


def act(
    state: State, observations: jax.Array, key: jax.Array, deterministic: bool = False
) -> jax.Array:
    del state
    if deterministic:
        return jnp.zeros((observations.shape[0], 1))
    return jax.random.uniform(key, (observations.shape[0], 1), minval=-1.0, maxval=1.0)


SPEC = AgentSpec()  # no critic to probe, no Monte-Carlo returns, one minibatch
