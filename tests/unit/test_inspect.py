"""Tests of hybridrl.data.inspect: statistics, TQ, SACo, text report and histogram."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybridrl.data import inspect as insp
from hybridrl.data.dataset import Dataset, DatasetMetadata
from hybridrl.data.inspect import (
    format_report,
    inspect_dataset,
    plot_return_histogram,
    unique_state_action_pairs,
)
from hybridrl.data.transitions import make_transitions
from hybridrl.types import DatasetError, SpaceSpec
from tests.conftest import make_chain_dataset

OBS_SPACE = SpaceSpec(
    kind="box", shape=(3,), dtype="float32", low=(-np.inf,) * 3, high=(np.inf,) * 3
)
ACT_SPACE = SpaceSpec(kind="box", shape=(2,), dtype="float32", low=(-1.0,) * 2, high=(1.0,) * 2)

# Three episodes: 5 steps of reward 1 (terminal), 4 of reward 2 (terminal), 6 of 0.5 (timeout).
EPISODES = [(5, 1.0, "terminal"), (4, 2.0, "terminal"), (6, 0.5, "timeout")]
RETURNS = [5.0, 8.0, 3.0]


def episodes_dataset(
    episodes=EPISODES, *, incomplete_tail: int = 0, ref=(None, None), seed: int = 0
) -> Dataset:
    eps = [*episodes, *([(incomplete_tail, 4.0, "none")] if incomplete_tail else [])]
    lengths, rewards, ends = zip(*eps, strict=True)
    ds = make_chain_dataset(lengths, ends, seed=seed, episode_rewards=rewards).with_episode_ids()
    return ds.with_metadata(
        observation_space=OBS_SPACE,
        action_space=ACT_SPACE,
        env_id="Toy-v0",
        source="test",
        name="toy",
        ref_min_score=ref[0],
        ref_max_score=ref[1],
    )


def array_dataset(obs: np.ndarray, act: np.ndarray) -> Dataset:
    n = len(obs)
    term = np.zeros(n)
    term[-1] = 1
    t = make_transitions(obs, act, np.zeros(n), obs, term)
    return Dataset.create(t, DatasetMetadata(OBS_SPACE, ACT_SPACE, name="grid"))


def test_counts_returns_and_lengths():
    rep = inspect_dataset(episodes_dataset())
    assert rep["transitions"] == 15
    assert rep["episodes"] == 3
    assert rep["terminals"] == 2 and rep["timeouts"] == 1
    assert rep["last_episode_incomplete"] is False
    assert rep["boundaries_inferred"] is False
    r = rep["episode_returns"]
    assert r["mean"] == pytest.approx(np.mean(RETURNS))
    assert r["std"] == pytest.approx(np.std(RETURNS))
    assert (r["min"], r["median"], r["max"]) == pytest.approx((3.0, 5.0, 8.0))
    assert (r["q25"], r["q75"]) == pytest.approx(tuple(np.quantile(RETURNS, [0.25, 0.75])))
    assert rep["episode_lengths"]["mean"] == pytest.approx(5.0)
    assert rep["extras"] == {"episode_ids": {"shape": [], "dtype": "int64"}}
    assert rep["metadata"]["env_id"] == "Toy-v0" and rep["metadata"]["source"] == "test"


def test_report_is_strict_json():
    rep = inspect_dataset(episodes_dataset(ref=(1.0, 11.0)))
    json.loads(json.dumps(rep, allow_nan=False))


def test_per_dimension_stats_match_numpy():
    ds = episodes_dataset()
    rep = inspect_dataset(ds)
    obs = np.asarray(ds.transitions.observations, np.float64)
    act = np.asarray(ds.transitions.actions, np.float64)
    for key, arr in (("observations", obs), ("actions", act)):
        stats = rep[key]
        assert len(stats["min"]) == arr.shape[1]
        np.testing.assert_allclose(stats["min"], arr.min(0))
        np.testing.assert_allclose(stats["max"], arr.max(0))
        np.testing.assert_allclose(stats["mean"], arr.mean(0))
        np.testing.assert_allclose(stats["std"], arr.std(0))
    assert rep["rewards"]["min"] == [0.5] and rep["rewards"]["max"] == [2.0]


def test_tq_from_metadata_references():
    rep = inspect_dataset(episodes_dataset(ref=(1.0, 11.0)))
    # TQ = (mean return - random) / (expert - random) = (16/3 - 1) / 10 = 13/30
    assert rep["tq"]["value"] == pytest.approx(13 / 30)
    assert rep["tq"]["references"] == "metadata"
    assert rep["tq"]["reason"] is None
    assert rep["normalized_return_mean"] == pytest.approx(100 * 13 / 30)


def test_tq_arguments_override_and_missing_references():
    ds = episodes_dataset()
    rep = inspect_dataset(ds)
    assert rep["tq"]["value"] is None and "unknown" in rep["tq"]["reason"]
    assert rep["normalized_return_mean"] is None
    rep = inspect_dataset(ds, random_return=0.0, expert_return=8.0)
    assert rep["tq"]["value"] == pytest.approx((16 / 3) / 8)
    assert rep["tq"]["references"] == "arguments"
    rep = inspect_dataset(ds, random_return=2.0, expert_return=2.0)
    assert rep["tq"]["value"] is None and "equal" in rep["tq"]["reason"]


def test_incomplete_last_episode_flagged_and_left_out_of_returns():
    ds = episodes_dataset(incomplete_tail=3, ref=(1.0, 11.0))
    rep = inspect_dataset(ds)
    assert rep["episodes"] == 4
    assert rep["last_episode_incomplete"] is True
    assert rep["episodes_in_return_stats"] == 3
    assert rep["episode_returns"]["mean"] == pytest.approx(16 / 3)  # the cut episode's 12 left out
    assert rep["tq"]["value"] == pytest.approx(13 / 30)
    assert "incomplete" in format_report(rep)


def test_saco_exact_on_hand_built_grid():
    # Grid [0, 1] per dimension, 2 bins: cells split at 0.5.
    obs = np.array(
        [
            [0.1, 0.1, 0.1],
            [0.2, 0.3, 0.4],  # same cell as row 0 (with the same action cell)
            [0.9, 0.1, 0.1],
            [0.9, 0.1, 0.1],  # exact duplicate of row 2
            [0.1, 0.1, 0.1],  # row 0's state with another action cell
            [0.6, 0.6, 0.6],
        ]
    )
    act = np.array([[0.1, 0.1], [0.4, 0.2], [0.1, 0.1], [0.1, 0.1], [0.7, 0.1], [0.5, 1.0]])
    ds = array_dataset(obs, act)
    ranges = [[0.0, 1.0]] * 5
    assert unique_state_action_pairs(ds, 2, ranges=ranges) == 4
    assert unique_state_action_pairs(ds, 1, ranges=ranges) == 1
    assert unique_state_action_pairs(ds, 1000, ranges=ranges) == 5  # only row 3 repeats
    rep = inspect_dataset(ds, saco_bins=2, saco_ranges=ranges)
    saco = rep["saco"]
    assert saco["unique_pairs"] == 4
    assert saco["value"] == pytest.approx(4 / 6)
    assert saco["normalizer"] == "transitions" and saco["denominator"] == 6
    assert saco["range_sources"] == ["given"] * 5
    rep = inspect_dataset(ds, saco_bins=2, saco_ranges=ranges, saco_reference=10)
    assert rep["saco"]["value"] == pytest.approx(0.4)
    assert rep["saco"]["normalizer"] == "reference"


def test_saco_ranges_from_space_then_data():
    obs = np.array([[0.0, 5.0, -1.0], [1.0, 5.0, 3.0], [0.5, 5.0, 1.0]])
    act = np.array([[0.0, 0.0], [0.9, -0.9], [0.05, 0.0]])
    ds = array_dataset(obs, act)
    saco = inspect_dataset(ds, saco_bins=4)["saco"]
    assert saco["range_sources"] == ["data", "data", "data", "space", "space"]
    assert saco["ranges"] == [[0.0, 1.0], [5.0, 5.0], [-1.0, 3.0], [-1.0, 1.0], [-1.0, 1.0]]
    # Action bins over [-1, 1] with 4 bins: 0.0 and 0.05 share a cell; obs 0.5 vs 0.0 differ.
    assert saco["unique_pairs"] == 3
    # The reported ranges reproduce the count on another dataset's grid.
    assert unique_state_action_pairs(ds, 4, ranges=saco["ranges"]) == 3


def test_saco_rejects_bad_ranges():
    ds = array_dataset(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(DatasetError, match="shape"):
        unique_state_action_pairs(ds, 10, ranges=[[0, 1]] * 3)
    with pytest.raises(DatasetError, match="low <= high"):
        unique_state_action_pairs(ds, 10, ranges=[[1, 0]] * 5)
    with pytest.raises(DatasetError, match="bins"):
        unique_state_action_pairs(ds, 0)


def test_unique_counting_exact_under_hash_collisions(monkeypatch):
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 3, size=(500, 4)).astype(np.uint16)
    expected = np.unique(codes, axis=0).shape[0]
    assert insp._count_unique_rows(codes) == expected
    # A degenerate hash (everything collides) must fall back to exact counting.
    monkeypatch.setattr(insp, "_HASH_MULT", np.uint64(0))
    assert insp._count_unique_rows(codes) == expected


def test_discrete_actions():
    obs = np.array([[0.0, 0.0, 0.0]] * 4 + [[1.0, 1.0, 1.0]])
    act = np.array([0, 1, 1, 2, 0])
    t = make_transitions(obs, act, np.zeros(5), obs, [0, 0, 0, 0, 1])
    space = SpaceSpec(kind="discrete", shape=(), dtype="int64", n=3)
    ds = Dataset.create(t, DatasetMetadata(OBS_SPACE, space))
    rep = inspect_dataset(ds, saco_bins=10)
    assert rep["actions"]["counts"] == [2, 2, 1]
    assert rep["saco"]["unique_pairs"] == 4
    assert rep["saco"]["range_sources"][-1] == "discrete"
    assert "counts" in format_report(rep)


def test_empty_dataset():
    z = np.zeros((0, 3))
    t = make_transitions(z, np.zeros((0, 2)), np.zeros(0), z, np.zeros(0))
    rep = inspect_dataset(Dataset.create(t, DatasetMetadata(OBS_SPACE, ACT_SPACE)))
    assert rep["transitions"] == 0 and rep["episodes"] == 0
    assert rep["episode_returns"] is None and rep["tq"]["value"] is None
    assert rep["saco"]["unique_pairs"] == 0 and rep["saco"]["value"] is None
    format_report(rep)


def test_format_report_key_lines():
    text = format_report(inspect_dataset(episodes_dataset(ref=(1.0, 11.0))))
    assert "Dataset toy  [Toy-v0]" in text
    assert "transitions    15" in text
    assert "episodes       3" in text
    assert "TQ   (trajectory quality)     0.4333" in text
    assert "SACo (state-action coverage)" in text
    assert "episode return" in text and "observations" in text and "episode_ids" in text
    text = format_report(inspect_dataset(episodes_dataset()))
    assert "TQ   (trajectory quality)     n/a" in text


def test_return_histogram_png(tmp_path):
    out = plot_return_histogram(episodes_dataset(), tmp_path / "plots" / "returns.png", bins=5)
    assert out == tmp_path / "plots" / "returns.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["returns.png"]  # no temporary left
