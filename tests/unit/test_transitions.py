"""Transition format: boundaries, returns, validation, dataset helpers."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrl.data import concatenate_datasets
from hybridrl.data import transitions as tr
from hybridrl.data.dataset import Dataset
from hybridrl.data.transitions import make_transitions
from hybridrl.types import DatasetError
from tests.conftest import make_chain_dataset


def _flags(n: int, at: list[int]) -> np.ndarray:
    out = np.zeros(n, np.float32)
    out[at] = 1
    return out


def _rewards_only(rewards, terminals, timeouts):
    n = len(rewards)
    z = np.zeros((n, 1), np.float32)
    return make_transitions(z, z, np.asarray(rewards), z, terminals, timeouts)


def test_episode_slices_terminal_timeout_and_trailing_cut():
    t = _rewards_only([1, 2, 3, 4, 5, 6], _flags(6, [1]), _flags(6, [3]))
    assert tr.episode_slices(t) == [slice(0, 2), slice(2, 4), slice(4, 6)]
    assert not tr.trailing_episode_complete(t)
    np.testing.assert_array_equal(tr.episode_ids(t), [0, 0, 1, 1, 2, 2])


def test_returns_to_go_hand_computed_stop_at_every_end():
    # episode A: [1, 2] terminal; episode B: [3, 4] time-out; episode C: [5] log end
    t = _rewards_only([1, 2, 3, 4, 5], _flags(5, [1]), _flags(5, [3]))
    g = 0.5
    expected = [1 + g * 2, 2, 3 + g * 4, 4, 5]
    np.testing.assert_allclose(tr.discounted_returns_to_go(t, g), expected)


def test_calql_sparse_rule_gives_failing_forever_value():
    # episode A never succeeds (all -1): every step gets -1/(1-gamma) = -10
    # episode B reaches the goal (reward 0 at the end): ordinary discounted returns
    t = _rewards_only([-1, -1, -1, -1, 0], _flags(5, [2, 4]), _flags(5, []))
    g = 0.9
    mc = tr.calql_mc_returns(t, g, sparse_reward=True, failure_reward=-1.0)
    np.testing.assert_allclose(mc[:3], [-10.0, -10.0, -10.0])
    np.testing.assert_allclose(mc[3:], [-1.0 + g * 0.0, 0.0])
    dense = tr.calql_mc_returns(t, g)
    np.testing.assert_allclose(dense[:3], [-1 - g - g * g, -1 - g, -1], rtol=1e-6)


def test_find_discontinuities_flags_hidden_boundary(chain_dataset):
    assert tr.find_discontinuities(chain_dataset.transitions).size == 0
    # remove the terminal flag of the first episode: its boundary is now hidden
    t = chain_dataset.transitions
    hidden = t.replace(terminals=np.zeros_like(t.terminals))
    # the time-out at step 6 still marks its boundary; the last step has no successor
    np.testing.assert_array_equal(tr.find_discontinuities(hidden), [2])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rewards", np.array([1.0, np.nan, 0.0]), "NaN"),
        ("terminals", np.array([0.0, 2.0, 0.0]), "0/1"),
        ("observations", np.zeros((2, 1), np.float32), "rows"),
        ("next_observations", np.zeros((3, 2), np.float32), "differs"),
    ],
)
def test_validation_names_the_field(field, value, message):
    z = np.zeros((3, 1), np.float32)
    t = make_transitions(z, z, np.zeros(3), z, np.zeros(3), np.zeros(3))
    bad = t.replace(**{field: value})
    with pytest.raises(DatasetError, match=message) as info:
        tr.validate_transitions(bad, path="some.npz")
    assert f"'{field}'" in str(info.value) and "some.npz" in str(info.value)


def test_actions_out_of_bounds_rejected(chain_dataset):
    t = chain_dataset.transitions
    acts = np.array(t.actions)
    acts[4, 1] = 1.5
    with pytest.raises(DatasetError, match="outside the action space") as info:
        Dataset.create(t.replace(actions=acts), chain_dataset.metadata, path="x.hdf5")
    assert "row 4" in str(info.value)


def test_observation_shape_mismatch_rejected(chain_dataset):
    t = chain_dataset.transitions
    obs = np.zeros((len(t), 4), np.float32)
    with pytest.raises(DatasetError, match="observation space"):
        Dataset.create(t.replace(observations=obs, next_observations=obs), chain_dataset.metadata)


def test_filter_top_episodes_keeps_highest_returns():
    ds = make_chain_dataset((2, 2, 2, 2), ("terminal",) * 4, seed=3)
    returns = ds.episode_returns()
    top = ds.filter_top_episodes(0.5)
    assert top.num_episodes == 2
    np.testing.assert_allclose(sorted(top.episode_returns()), sorted(returns)[-2:], rtol=1e-6)
    assert top.metadata.provenance["transforms"][-1]["op"] == "filter_top_episodes"
    with pytest.raises(DatasetError):
        ds.filter_top_episodes(0.0)


def test_concatenate_never_glues_episodes():
    a = make_chain_dataset((3,), ("none",), seed=1)
    b = make_chain_dataset((2,), ("terminal",), seed=2)
    ab = concatenate_datasets([a, b], name="a+b")
    assert len(ab) == 5 and ab.num_episodes == 2
    assert ab.transitions.timeouts[2] == 1  # a's cut is explicit after the join
    assert ab.metadata.source == "concat" and len(ab.metadata.provenance["parents"]) == 2


def test_concatenate_rejects_mismatched_spaces():
    a = make_chain_dataset(obs_dim=3)
    b = make_chain_dataset(obs_dim=4)
    with pytest.raises(DatasetError, match="differ"):
        concatenate_datasets([a, b])


def test_reward_transform_and_normalized_score(chain_dataset):
    shifted = chain_dataset.transform_rewards(scale=2.0, shift=-1.0)
    np.testing.assert_allclose(
        shifted.transitions.rewards, 2 * chain_dataset.transitions.rewards - 1, rtol=1e-6
    )
    assert chain_dataset.normalized_score(0.0) == pytest.approx(50.0)


def test_observation_normalization(chain_dataset):
    mean, std = chain_dataset.observation_stats()
    normed = chain_dataset.normalize_observations(mean, std)
    np.testing.assert_allclose(normed.transitions.observations.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(
        normed.transitions.next_observations,
        (chain_dataset.transitions.next_observations - mean) / std,
        rtol=1e-5,
    )


def test_split_episodes_partitions_whole_episodes():
    ds = make_chain_dataset((2, 3, 4, 5), ("terminal", "timeout", "terminal", "timeout"))
    a, b = ds.split_episodes(0.5, seed=0)
    assert a.num_episodes == 2 and b.num_episodes == 2 and len(a) + len(b) == len(ds)
    assert sorted([*a.episode_lengths(), *b.episode_lengths()]) == [2, 3, 4, 5]


def test_mc_returns_extra_and_content_hash_changes(chain_dataset):
    with_mc = chain_dataset.with_mc_returns(0.99)
    assert "mc_returns" in with_mc.transitions.extras
    assert with_mc.content_hash() != chain_dataset.content_hash()
