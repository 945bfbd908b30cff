"""Samplers: offline/online mixing at any ratio, and return/advantage-weighted trajectories."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.data.dataset import Dataset, DatasetMetadata
from hybridrl.data.replay import ReplayBuffer, from_dataset, replay_add, replay_init
from hybridrl.data.samplers import (
    probabilities_to_cdf,
    sample_mixed,
    sample_mixed_with_mask,
    sample_uniform,
    sample_weighted,
    trajectory_weights,
)
from hybridrl.data.transitions import Transitions, make_transitions
from hybridrl.types import HybridRLError, SpaceSpec

B = 64  # batch size of the mixing tests
M = 4000  # batches per ratio


def _rows(tags: np.ndarray, source: float, with_extras: bool = True) -> Transitions:
    """Rows tagged by ``tags`` (extras['tag'], observations); rewards mark the source."""
    tags = np.asarray(tags)
    n = len(tags)
    obs = np.repeat(tags[:, None].astype(np.float32), 2, axis=1)
    return make_transitions(
        observations=obs,
        actions=np.zeros((n, 1), np.float32),
        rewards=np.full(n, source, np.float32),
        next_observations=obs,
        terminals=np.zeros(n),
        extras={"tag": tags.astype(np.int32)} if with_extras else None,
    )


def _buffers() -> tuple[ReplayBuffer, ReplayBuffer]:
    offline = from_dataset(_rows(np.arange(30), source=1.0))  # full, rows 0..29
    online = replay_init(_rows(np.arange(1), 0.0), capacity=50)
    online = replay_add(online, _rows(np.arange(100, 105), source=0.0))  # 5 of 50 valid
    return offline, online


@functools.partial(jax.jit, static_argnames="permute")
def _many_batches(
    offline: ReplayBuffer, online: ReplayBuffer, ratio: jax.Array, permute: bool = False
) -> tuple[Transitions, jax.Array]:
    keys = jax.random.split(jax.random.key(42), M)
    fn = functools.partial(sample_mixed_with_mask, batch_size=B, permute=permute)
    return jax.vmap(lambda k: fn(offline, online, k, offline_ratio=ratio))(keys)


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.33, 0.5, 0.7, 1.0])
def test_mixed_ratio_statistics(ratio: float) -> None:
    offline, online = _buffers()
    batch, mask = _many_batches(offline, online, jnp.float32(ratio))
    is_off = np.asarray(batch.rewards) == 1.0
    np.testing.assert_array_equal(is_off, np.asarray(mask))  # mask describes the data
    tags = np.asarray(batch.extras["tag"])
    assert set(np.unique(tags[is_off])) <= set(range(30))
    assert set(np.unique(tags[~is_off])) <= set(range(100, 105))  # only valid online rows
    counts = is_off.sum(axis=1)
    # Unpermuted layout: offline rows fill slots [0, k).
    np.testing.assert_array_equal(is_off, np.arange(B)[None, :] < counts[:, None])

    x = float(np.float32(ratio) * np.float32(B))  # the implementation's r·B, in float32
    lo, hi = math.floor(x), math.ceil(x)
    assert set(np.unique(counts)) <= {lo, hi}
    # k = floor(x) + Bernoulli(frac): the mean of M counts has std sqrt(frac(1-frac)/M).
    frac = x - lo
    sigma = math.sqrt(frac * (1.0 - frac) / M)
    assert abs(counts.mean() - x) <= 5.0 * sigma + 1e-9
    if frac > 0:  # both values occur, in the right proportion
        assert abs((counts == hi).mean() - frac) <= 5.0 * sigma + 1e-9


def test_mixed_ratio_is_traced_and_permute_keeps_counts() -> None:
    offline, online = _buffers()
    traces = []

    @functools.partial(jax.jit, static_argnames="batch_size")
    def sample(
        offline: ReplayBuffer, online: ReplayBuffer, key: jax.Array, r: jax.Array, batch_size: int
    ) -> Transitions:
        traces.append(1)  # runs only while tracing
        return sample_mixed(offline, online, key, batch_size, r)

    key = jax.random.key(0)
    for r in (0.1, 0.5, 0.9):
        out = sample(offline, online, key, jnp.float32(r), 16)
        assert int(np.sum(np.asarray(out.rewards) == 1.0)) in (
            math.floor(16 * r),
            math.ceil(16 * r),
        )
    assert len(traces) == 1
    # A different buffer fill level is also traced (size is data), no recompile.
    out = sample(offline, replay_add(online, _rows(np.arange(3), 0.0)), key, jnp.float32(0.0), 16)
    assert len(traces) == 1 and np.all(np.asarray(out.rewards) == 0.0)

    batch, mask = _many_batches(offline, online, jnp.float32(0.5), permute=True)
    counts = np.asarray(mask).sum(axis=1)
    assert np.all(counts == B // 2)
    np.testing.assert_array_equal(np.asarray(batch.rewards) == 1.0, np.asarray(mask))
    assert np.asarray(mask)[:, B // 2 :].any()  # offline rows no longer all in front


def test_mixed_empty_buffers_fall_back() -> None:
    offline, _ = _buffers()
    empty = replay_init(_rows(np.arange(1), 0.0), capacity=8)
    key = jax.random.key(3)
    out = sample_mixed(offline, empty, key, 32, 0.25)
    assert np.all(np.asarray(out.rewards) == 1.0)  # online empty: all offline
    online = replay_add(empty, _rows(np.arange(100, 104), 0.0))
    empty_off = replay_init(_rows(np.arange(1), 1.0), capacity=8)
    out = sample_mixed(empty_off, online, key, 32, 0.75)
    assert np.all(np.asarray(out.rewards) == 0.0)  # offline empty: all online
    assert set(np.asarray(out.extras["tag"])) <= {100, 101, 102, 103}


def test_mixed_rejects_mismatched_extras() -> None:
    offline, _ = _buffers()
    bare = from_dataset(_rows(np.arange(4), 0.0, with_extras=False))
    with pytest.raises(HybridRLError, match="extras keys differ"):
        jax.jit(sample_mixed, static_argnums=3)(offline, bare, jax.random.key(0), 8, 0.5)


def test_sample_uniform_matches_replay_sample() -> None:
    offline, _ = _buffers()
    out = sample_uniform(offline, jax.random.key(0), 512)
    assert set(np.unique(np.asarray(out.extras["tag"]))) == set(range(30))


# --------------------------------------------------------------------------- weighted


def _three_episodes() -> Dataset:
    """Episodes of returns 2 (rows 0-1, terminal), 0 (rows 2-4, time-out), 4 (row 5, cut)."""
    rewards = np.array([1, 1, 0, 0, 0, 4], np.float32)
    obs = np.array([[0], [9], [1], [7], [8], [2]], np.float32)  # s0 = 0, 1, 2
    t = make_transitions(
        observations=obs,
        actions=np.zeros((6, 1), np.float32),
        rewards=rewards,
        next_observations=obs,
        terminals=np.array([0, 1, 0, 0, 0, 0]),
        timeouts=np.array([0, 0, 0, 0, 1, 0]),
    )
    meta = DatasetMetadata(
        observation_space=SpaceSpec.box_from_data(obs),
        action_space=SpaceSpec.box_from_data(np.asarray(t.actions)),
    )
    return Dataset.create(t, meta)


def _softmax_rows(norm_scores: list[float], lengths: list[int], alpha: float) -> np.ndarray:
    w = np.concatenate(
        [[math.exp(s / alpha)] * n for s, n in zip(norm_scores, lengths, strict=True)]
    )
    return w / w.sum()


def test_trajectory_weights_hand_computed() -> None:
    ds = _three_episodes()
    # RW: returns (2, 0, 4) -> min-max (0.5, 0, 1).
    for alpha in (1.0, 0.1):
        p = trajectory_weights(ds, "return", alpha)
        np.testing.assert_allclose(p, _softmax_rows([0.5, 0.0, 1.0], [2, 3, 1], alpha))
        assert p.sum() == pytest.approx(1.0)
    e = math.e
    np.testing.assert_allclose(
        trajectory_weights(ds, "return", 1.0)[[0, 2, 5]],
        [e**0.5 / (2 * e**0.5 + 3 + e), 1 / (2 * e**0.5 + 3 + e), e / (2 * e**0.5 + 3 + e)],
    )
    # AW: least squares of G = (2, 0, 4) on s0 = (0, 1, 2) is V = 1 + s0 = (1, 2, 3), so
    # advantages (1, -2, 1) -> min-max (1, 0, 1).
    p = trajectory_weights(ds, "advantage", 1.0)
    np.testing.assert_allclose(p, _softmax_rows([1.0, 0.0, 1.0], [2, 3, 1], 1.0))
    # A large temperature is uniform over transitions; equal scores are uniform too.
    np.testing.assert_allclose(trajectory_weights(ds, "return", 1e6), np.full(6, 1 / 6), rtol=1e-5)
    flat = ds.transform_rewards(scale=0.0)
    np.testing.assert_allclose(trajectory_weights(flat, "return"), np.full(6, 1 / 6))
    with pytest.raises(HybridRLError, match="temperature"):
        trajectory_weights(ds, "return", 0.0)
    with pytest.raises(HybridRLError, match="method"):
        trajectory_weights(ds, "bogus")  # type: ignore[arg-type]


def test_sample_weighted_empirical_frequencies() -> None:
    ds = _three_episodes()
    p = trajectory_weights(ds, "return", 0.5)
    buf = from_dataset(ds, capacity=10)  # extra empty rows must never be drawn
    n_samples = 40_000
    sample = jax.jit(sample_weighted, static_argnums=3)
    out = sample(buf, probabilities_to_cdf(p), jax.random.key(7), n_samples)
    rows = np.asarray(out.observations[:, 0]).astype(int)  # obs values identify rows
    row_of_obs = {0: 0, 9: 1, 1: 2, 7: 3, 8: 4, 2: 5}
    freq = np.bincount([row_of_obs[o] for o in rows], minlength=6) / n_samples
    tol = 5.0 * np.sqrt(p * (1 - p) / n_samples)
    np.testing.assert_array_less(np.abs(freq - p), tol)
    per_traj = [freq[0:2].sum(), freq[2:5].sum(), freq[5]]
    assert per_traj[2] / 1 > per_traj[0] / 2 > per_traj[1] / 3  # per-row: higher return wins

    # Zero-probability rows are never drawn, and a new CDF of the same shape is not a retrace.
    q = np.array([0.0, 1.0, 0.0, 3.0, 0.0, 0.0])
    out = sample(buf, probabilities_to_cdf(q), jax.random.key(8), n_samples)
    rows = np.array([row_of_obs[o] for o in np.asarray(out.observations[:, 0]).astype(int)])
    assert set(np.unique(rows)) == {1, 3}
    assert abs((rows == 3).mean() - 0.75) < 5 * math.sqrt(0.75 * 0.25 / n_samples)
    assert sample._cache_size() == 1


def test_weighted_cdf_validation() -> None:
    with pytest.raises(HybridRLError, match="probabilities"):
        probabilities_to_cdf(np.array([0.0, 0.0]))
    with pytest.raises(HybridRLError, match="probabilities"):
        probabilities_to_cdf(np.array([0.5, -0.1]))
    assert probabilities_to_cdf(np.array([1.0])).shape == (0,)  # one row: always row 0
    small = from_dataset(_rows(np.arange(3), 1.0))
    with pytest.raises(HybridRLError, match="covers 5 rows"):
        sample_weighted(small, probabilities_to_cdf(np.ones(5)), jax.random.key(0), 4)
