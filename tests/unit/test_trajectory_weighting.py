"""Trajectory weighting (Hong et al., ICLR 2023) as a sampler: golden weights, the sampler's
row frequencies (chi-squared), the weighted offline share of mixed batches, the checks that
refuse what cannot be weighted, and the recipe/phase options."""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pytest

from hybridrl.data.dataset import Dataset, DatasetMetadata
from hybridrl.data.replay import from_dataset, replay_add, replay_init
from hybridrl.data.samplers import (
    probabilities_to_cdf,
    sample_mixed,
    sample_weighted,
    sample_weighted_indices,
    trajectory_weights,
)
from hybridrl.data.transitions import make_transitions
from hybridrl.training.phases import Offline, Online, phase_from_dict
from hybridrl.training.recipes import Recipe, get_recipe
from hybridrl.training.run_data import offline_source, sample_buffer
from hybridrl.training.weighting import dataset_weights, sampler_cdfs, with_sampler
from hybridrl.types import HybridRLError, SpaceSpec

# chi-squared critical value at p = 0.001 for 5 degrees of freedom (6 rows)
CHI2_5DF_P001 = 20.515


def _dataset(obs: list[float], rewards: list[float], terminals: list[int], timeouts: list[int]):
    o = np.asarray(obs, np.float32)[:, None]
    t = make_transitions(
        observations=o,
        actions=np.zeros((len(o), 1), np.float32),
        rewards=np.asarray(rewards, np.float32),
        next_observations=o,
        terminals=np.asarray(terminals),
        timeouts=np.asarray(timeouts),
    )
    meta = DatasetMetadata(
        observation_space=SpaceSpec.box_from_data(o),
        action_space=SpaceSpec.box_from_data(np.asarray(t.actions)),
        name="three",
    )
    return Dataset.create(t, meta)


def _three() -> Dataset:
    """Episodes A = rows 0-1 (s0 = 0, rewards 1, 2: G = 3), B = rows 2-4 (s0 = 2, rewards
    0, 0, 1: G = 1), C = row 5 (s0 = 4, reward 3: G = 3). A ends on a terminal, B on a
    time-out, C on a terminal."""
    return _dataset(
        obs=[0, 5, 2, 6, 7, 4],
        rewards=[1, 2, 0, 0, 1, 3],
        terminals=[0, 1, 0, 0, 0, 1],
        timeouts=[0, 0, 0, 0, 1, 0],
    )


def _rows(p_episode: list[float], lengths: list[int]) -> np.ndarray:
    w = np.concatenate([[p] * n for p, n in zip(p_episode, lengths, strict=True)])
    return w / w.sum()


def test_golden_rw_and_aw_weights_by_hand() -> None:
    ds = _three()
    lengths = [2, 3, 1]
    # RW: G = (3, 1, 3) -> min-max (1, 0, 1); alpha = 0.5: exp(2), exp(0), exp(2) per row.
    e2 = math.exp(2.0)
    z = 2 * e2 + 3 * 1 + 1 * e2
    expected = np.array([e2, e2, 1, 1, 1, e2]) / z
    np.testing.assert_allclose(trajectory_weights(ds, "return", 0.5), expected, rtol=1e-12)
    np.testing.assert_allclose(dataset_weights(ds, "return", 0.5), expected, rtol=1e-12)
    # AW: least squares G ~ a + b s0 on (0, 3), (2, 1), (4, 3): b = 0, a = 7/3, so
    # V = 7/3 everywhere, A = (2/3, -4/3, 2/3) -> min-max (1, 0, 1): the same as RW here.
    np.testing.assert_allclose(trajectory_weights(ds, "advantage", 0.5), expected, rtol=1e-9)
    # A second AW case where V matters: G = (3, 1, 5) with s0 = (0, 2, 4): b = 1/2, a = 8/3,
    # V = (8/3, 11/3, 14/3), A = (1/3, -8/3, 1/3) -> (1, 0, 1); RW: G -> (0.5, 0, 1).
    ds2 = _dataset([0, 5, 2, 6, 7, 4], [1, 2, 0, 0, 1, 5], [0, 1, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0])
    aw = trajectory_weights(ds2, "advantage", 1.0)
    np.testing.assert_allclose(aw, _rows([math.e, 1.0, math.e], lengths), rtol=1e-9)
    rw = trajectory_weights(ds2, "return", 1.0)
    np.testing.assert_allclose(rw, _rows([math.exp(0.5), 1.0, math.e], lengths), rtol=1e-12)


def _chi2(counts: np.ndarray, p: np.ndarray) -> float:
    expected = counts.sum() * p
    return float(np.sum((counts - expected) ** 2 / expected))


def test_sampler_row_frequencies_match_the_weights_chi_squared() -> None:
    ds = _three()
    p = trajectory_weights(ds, "advantage", 0.5)
    n = 60_000
    idx = jax.jit(sample_weighted_indices, static_argnums=2)(
        probabilities_to_cdf(p), jax.random.key(1234), n
    )
    counts = np.bincount(np.asarray(idx), minlength=6)
    assert _chi2(counts, p) < CHI2_5DF_P001
    # the same test rejects a uniform sampler on these weights
    uniform = np.bincount(np.asarray(jax.random.randint(jax.random.key(1234), (n,), 0, 6)))
    assert _chi2(uniform, p) > 100 * CHI2_5DF_P001
    # and through the buffer (rows identified by their observation)
    buf = from_dataset(ds)
    batch = sample_weighted(buf, probabilities_to_cdf(p), jax.random.key(5), n)
    rows = np.asarray(batch.observations)
    row_of = {0: 0, 5: 1, 2: 2, 6: 3, 7: 4, 4: 5}
    counts = np.bincount([row_of[int(v)] for v in rows[:, 0]], minlength=6)
    assert _chi2(counts, p) < CHI2_5DF_P001


def test_mixed_batches_weight_the_offline_rows_only() -> None:
    ds = _three()
    offline = from_dataset(ds)
    online = replay_init(ds.transitions.take(np.arange(1)), capacity=8)
    online = replay_add(
        online,
        ds.transitions.take(np.arange(6)).replace(observations=np.full((6, 1), 100.0, np.float32)),
    )
    p = trajectory_weights(ds, "return", 0.5)
    cdf = probabilities_to_cdf(p)
    keys = jax.random.split(jax.random.key(0), 2000)
    batch = jax.vmap(lambda k: sample_mixed(offline, online, k, 32, 0.5, offline_cdf=cdf))(keys)
    obs = np.asarray(batch.observations).reshape(-1)
    off = obs[obs != 100.0]
    assert abs(len(off) / len(obs) - 0.5) < 1e-9  # the ratio is untouched
    row_of = {0: 0, 5: 1, 2: 2, 6: 3, 7: 4, 4: 5}
    counts = np.bincount([row_of[int(v)] for v in off], minlength=6)
    assert _chi2(counts, p) < CHI2_5DF_P001
    # no CDF: the uniform program, bit-identical to the call without the argument
    a = sample_mixed(offline, online, keys[0], 32, 0.5)
    b = sample_mixed(offline, online, keys[0], 32, 0.5, offline_cdf=None)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    data, fn = offline_source(offline, None)
    assert data is offline and fn is sample_buffer


def test_what_cannot_be_weighted_is_refused() -> None:
    one = _dataset([0, 1, 2], [1, 1, 1], [0, 0, 1], [0, 0, 0])
    with pytest.raises(HybridRLError, match=r"dataset three: .*needs at least 2; found 1"):
        dataset_weights(one, "return", 0.1)
    two = _dataset([0, 1, 2], [1, 1, 1], [0, 1, 1], [0, 0, 0])
    dataset_weights(two, "return", 0.1)  # two episodes are enough for RW
    with pytest.raises(HybridRLError, match="fits V\\(s0\\) with 2 parameters"):
        dataset_weights(two, "advantage", 0.1)  # an exact fit: AW would be uniform
    with pytest.raises(HybridRLError, match="needs a dataset"):
        sampler_cdfs((Offline(updates=1, sampler="return"),), None)
    cdfs, records = sampler_cdfs(
        (Offline(name="a", updates=1, sampler="return"), Offline(name="b", updates=1)), _three()
    )
    assert list(cdfs) == [("return", 0.1)]
    [rec] = records
    assert rec["phase"] == "a" and rec["episodes"] == 3 and rec["sampler"] == "return"
    assert rec["trailing_episode_complete"] is True and len(rec["weights_sha256"]) == 64


def test_phase_options_validate_and_round_trip() -> None:
    p = Offline(updates=3, sampler="advantage", sampler_temperature=0.2)
    assert phase_from_dict(p.to_dict()) == p
    assert p.to_dict()["sampler"] == "advantage"
    with pytest.raises(HybridRLError, match="unknown sampler 'top'"):
        Offline(sampler="top").validate()
    with pytest.raises(HybridRLError, match="sampler_temperature must be > 0"):
        Offline(sampler="return", sampler_temperature=0.0).validate()
    with pytest.raises(HybridRLError, match="samples none \\(offline_ratio is 0\\)"):
        Online(steps=1, sampler="return").validate()
    Online(steps=1, offline_ratio=0.5, sampler="return").validate()


def test_with_sampler_sets_every_phase_that_samples_the_dataset(tmp_path) -> None:
    rlpd = with_sampler(get_recipe("rlpd"), "advantage", 0.3)
    online = [p for p in rlpd.phases if isinstance(p, Online)]
    assert online and all(p.sampler == "advantage" for p in online if p.offline_ratio > 0)
    assert all(p.sampler_temperature == 0.3 for p in online if p.offline_ratio > 0)
    if rlpd.sparse_variant is not None:
        assert any(getattr(p, "sampler", "") == "advantage" for p in rlpd.sparse_variant.phases)
    iql = with_sampler(get_recipe("iql_finetune"), "return")
    kinds = [(p.kind, getattr(p, "sampler", None)) for p in iql.phases]
    assert ("offline", "return") in kinds
    # naive fine-tuning samples the seeded online buffer: its online phase stays uniform
    assert all(s in ("uniform", None) for k, s in kinds if k != "offline")
    with pytest.raises(HybridRLError, match="has no phase that samples the dataset"):
        with_sampler(get_recipe("sac"), "return")
    with pytest.raises(HybridRLError, match="--sampler must be one of"):
        with_sampler(get_recipe("rlpd"), "best")
    # TOML recipes carry the options
    path = tmp_path / "r.toml"
    path.write_text(
        'name = "iql_aw"\nagent = "iql"\n[[phases]]\nphase = "offline"\nupdates = 10\n'
        'sampler = "advantage"\nsampler_temperature = 0.5\n'
    )
    recipe = get_recipe(str(path))
    assert recipe.phases[0] == Offline(updates=10, sampler="advantage", sampler_temperature=0.5)
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace('"advantage"', '"adv"'))
    with pytest.raises(HybridRLError, match="unknown sampler 'adv'"):
        get_recipe(str(bad))
    assert dataclasses.replace(recipe.phases[0], sampler="uniform").sampler == "uniform"


@pytest.mark.parametrize("agent", ["iql", "td3_bc"])
def test_the_benchmark_recipe_files_are_the_offline_recipes_with_aw(agent: str) -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    recipe = get_recipe(str(root / f"benchmarks/sweeps/recipes/{agent}_offline_aw.toml"))
    expected = with_sampler(get_recipe(f"offline:{agent}"), "advantage", 0.1)
    assert recipe == dataclasses.replace(
        expected, name=f"{agent}_offline_aw", description=recipe.description
    )
