"""Device ring replay buffer: adds with wrap-around, saturation, sampling, jit, from_dataset."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.data.dataset import Dataset, DatasetMetadata
from hybridrl.data.replay import (
    ReplayBuffer,
    from_dataset,
    replay_add,
    replay_init,
    replay_sample,
)
from hybridrl.data.transitions import Transitions, make_transitions
from hybridrl.types import HybridRLError, SpaceSpec


def _batch(values: np.ndarray, obs_dim: int = 3, with_extras: bool = True) -> Transitions:
    """Transitions whose row j is tagged by ``values[j]`` in every field."""
    v = np.asarray(values, np.float32)
    n = len(v)
    obs = np.repeat(v[:, None], obs_dim, axis=1)
    extras = {"tag": v.astype(np.int32)} if with_extras else None
    return make_transitions(
        observations=obs,
        actions=np.stack([v, -v], axis=1),
        rewards=v,
        next_observations=obs + 0.5,
        terminals=np.zeros(n),
        timeouts=(v % 2 == 0).astype(np.float32),
        extras=extras,
    )


def test_init_shapes_and_dtypes() -> None:
    buf = replay_init(_batch(np.arange(2)), capacity=7)
    assert buf.capacity == 7
    assert buf.data.observations.shape == (7, 3)
    assert buf.data.actions.shape == (7, 2)
    assert buf.data.rewards.shape == (7,)
    assert buf.data.extras["tag"].dtype == jnp.int32
    assert int(buf.size) == 0 and int(buf.insert_index) == 0
    assert buf.size.dtype == jnp.int32
    with pytest.raises(HybridRLError, match="positive"):
        replay_init(_batch(np.arange(2)), capacity=0)


def test_add_wraps_around_and_size_saturates() -> None:
    buf = replay_init(_batch(np.arange(1)), capacity=5)
    buf = replay_add(buf, _batch([1, 2, 3]))
    assert int(buf.size) == 3 and int(buf.insert_index) == 3
    np.testing.assert_array_equal(buf.data.rewards, [1, 2, 3, 0, 0])
    buf = replay_add(buf, _batch([4, 5, 6]))  # rows 3, 4, then wraps to 0
    assert int(buf.size) == 5 and int(buf.insert_index) == 1
    np.testing.assert_array_equal(buf.data.rewards, [6, 2, 3, 4, 5])
    np.testing.assert_array_equal(buf.data.extras["tag"], [6, 2, 3, 4, 5])
    np.testing.assert_array_equal(buf.data.observations[:, 0], [6, 2, 3, 4, 5])
    np.testing.assert_array_equal(buf.data.next_observations[:, 2], [6.5, 2.5, 3.5, 4.5, 5.5])
    np.testing.assert_array_equal(buf.data.actions[:, 1], [-6, -2, -3, -4, -5])
    np.testing.assert_array_equal(buf.data.timeouts, [1, 1, 0, 1, 0])
    buf = replay_add(buf, _batch([7, 8, 9]))  # overwrites the three oldest rows
    assert int(buf.size) == 5 and int(buf.insert_index) == 4
    np.testing.assert_array_equal(buf.data.rewards, [6, 7, 8, 9, 5])


def test_add_batch_larger_than_capacity_keeps_the_last_rows() -> None:
    buf = replay_init(_batch(np.arange(1)), capacity=4)
    buf = replay_add(buf, _batch([1]))
    buf = replay_add(buf, _batch(np.arange(10, 16)))  # 6 rows into capacity 4 from row 1
    # Sequential writes would put 10..15 at rows 1,2,3,0,1,2: the survivors are 12..15.
    np.testing.assert_array_equal(buf.data.rewards, [13, 14, 15, 12])
    assert int(buf.insert_index) == (1 + 6) % 4
    assert int(buf.size) == 4


def test_add_rejects_mismatched_layout() -> None:
    buf = replay_init(_batch(np.arange(1)), capacity=4)
    with pytest.raises(HybridRLError, match="extras keys differ"):
        replay_add(buf, _batch([1], with_extras=False))
    with pytest.raises(HybridRLError, match="per-row shape"):
        replay_add(buf, _batch([1], obs_dim=4))


def test_sample_only_valid_rows_and_deterministic() -> None:
    buf = replay_init(_batch(np.arange(1)), capacity=100)
    buf = replay_add(buf, _batch(np.arange(1, 11)))  # 10 valid rows tagged 1..10
    key = jax.random.key(0)
    batch = replay_sample(buf, key, 2000)
    tags = np.asarray(batch.rewards)
    assert set(np.unique(tags)) == set(range(1, 11))  # every valid row, and nothing else
    np.testing.assert_array_equal(batch.observations[:, 0], tags)
    np.testing.assert_array_equal(batch.extras["tag"], tags.astype(np.int32))
    again = replay_sample(buf, key, 2000)
    np.testing.assert_array_equal(again.rewards, batch.rewards)
    other = replay_sample(buf, jax.random.key(1), 2000)
    assert not np.array_equal(other.rewards, batch.rewards)


def test_add_and_sample_under_jit_and_scan() -> None:
    example = _batch(np.arange(4))
    buf = replay_init(example, capacity=6)

    @jax.jit
    def step(buf: ReplayBuffer, start: jax.Array) -> tuple[ReplayBuffer, Transitions]:
        vals = start + jnp.arange(4, dtype=jnp.float32)
        batch = example.map(jnp.asarray).replace(
            rewards=vals, extras={"tag": vals.astype(jnp.int32)}
        )
        buf = replay_add(buf, batch)
        return buf, replay_sample(buf, jax.random.key(0), 8)

    buf, sampled = step(buf, jnp.float32(1.0))
    assert int(buf.size) == 4
    assert set(np.asarray(sampled.rewards)) <= {1.0, 2.0, 3.0, 4.0}
    buf, _ = step(buf, jnp.float32(5.0))
    np.testing.assert_array_equal(buf.data.rewards, [7, 8, 3, 4, 5, 6])
    assert int(buf.insert_index) == 2 and int(buf.size) == 6

    def body(b: ReplayBuffer, k: jax.Array) -> tuple[ReplayBuffer, jax.Array]:
        batch = example.map(jnp.asarray).replace(rewards=jnp.full((4,), k, jnp.float32))
        return replay_add(b, batch), replay_sample(b, jax.random.key(k), 3).rewards

    final, _ = jax.lax.scan(body, replay_init(example, 6), jnp.arange(3))
    # 12 adds into 6 rows: the last 6 writes (steps 1 and 2) remain.
    np.testing.assert_array_equal(final.data.rewards, [1, 1, 2, 2, 2, 2])


def test_from_dataset() -> None:
    t = _batch(np.arange(1, 6))
    meta = DatasetMetadata(
        observation_space=SpaceSpec.box_from_data(np.asarray(t.observations)),
        action_space=SpaceSpec.box_from_data(np.asarray(t.actions)),
    )
    ds = Dataset.create(t, meta)
    full = from_dataset(ds)
    assert full.capacity == 5 and int(full.size) == 5 and int(full.insert_index) == 0
    np.testing.assert_array_equal(full.data.rewards, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(full.data.actions, t.actions)

    seeded = from_dataset(t, capacity=8)
    assert seeded.capacity == 8 and int(seeded.size) == 5 and int(seeded.insert_index) == 5
    np.testing.assert_array_equal(seeded.data.rewards, [1, 2, 3, 4, 5, 0, 0, 0])
    seeded = replay_add(seeded, _batch([6, 7, 8, 9]))
    np.testing.assert_array_equal(seeded.data.rewards, [9, 2, 3, 4, 5, 6, 7, 8])

    with pytest.raises(HybridRLError, match="smaller than the dataset"):
        from_dataset(ds, capacity=3)
