"""A phase's trajectory-weighted sampler in real runs: it changes which dataset rows the
updates see (offline, and the dataset's share of mixed online batches), ``run.json`` records
it, and what cannot be weighted is refused before the run starts."""

from __future__ import annotations

import dataclasses
import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.agents import AGENTS
from hybridrl.data.dataset import Dataset
from hybridrl.data.transitions import episode_slices
from hybridrl.training.phases import Offline, Online
from hybridrl.training.recipes import Recipe
from hybridrl.training.runner import run
from hybridrl.types import HybridRLError
from tests.o2o import probe_agent

FAST = {
    "num_envs": 2,
    "eval_episodes": 1,
    "eval_interval": 1000,
    "offline_eval_interval": 1000,
    "checkpoint_interval": 40,
    "log_interval": 1,
    "chunk_size": 5,
    "progress": False,
}


def _update(state, batch, key):
    """The probe's update, reporting the share of rows from the best episode (reward 2)."""
    state, metrics = probe_agent.update(state, batch, key)
    return state, {**metrics, "best_fraction": jnp.mean(batch.rewards > 1.5)}


@pytest.fixture
def weighted_probe(monkeypatch: pytest.MonkeyPatch):
    module = types.ModuleType("weighted_probe")
    for name in ("Config", "State", "init", "act", "SPEC"):
        setattr(module, name, getattr(probe_agent, name))
    module.update = _update  # type: ignore[attr-defined]
    monkeypatch.setitem(AGENTS, "probe", module)


@pytest.fixture(scope="module")
def one_best_episode(pendulum_small: Dataset) -> Dataset:
    """pendulum_small with reward 2 on its first episode and 1 elsewhere: returns (2T, T,
    ...), so RW puts ~all mass on episode 0 and uniform ~1/5 of it."""
    t = pendulum_small.transitions
    first = episode_slices(t)[0]
    rewards = np.ones(len(t), np.float32)
    rewards[first] = 2.0
    return Dataset.create(t.replace(rewards=rewards), pendulum_small.metadata)


def _recipe(sampler: str) -> Recipe:
    return Recipe(
        "probe_weighted",
        "probe",
        (
            Offline(name="pre", updates=20, batch_size=64, sampler=sampler),
            Online(name="mix", steps=20, offline_ratio=0.5, batch_size=64, sampler=sampler),
        ),
    )


def _mean(records, phase, key):
    return float(np.mean([r[key] for r in records if r["kind"] == "train" and r["phase"] == phase]))


def test_the_sampler_changes_the_rows_and_run_json_records_it(
    weighted_probe, one_best_episode, tmp_path
):
    n = len(episode_slices(one_best_episode.transitions))
    uniform = run(
        _recipe("uniform"), "Pendulum-v1", dataset=one_best_episode, run_dir=tmp_path / "u", **FAST
    )
    weighted = run(
        _recipe("return"), "Pendulum-v1", dataset=one_best_episode, run_dir=tmp_path / "w", **FAST
    )
    first = episode_slices(one_best_episode.transitions)[0]
    p_first = (first.stop - first.start) / len(one_best_episode)
    assert abs(_mean(uniform.records, "pre", "best_fraction") - p_first) < 0.1
    assert _mean(weighted.records, "pre", "best_fraction") > 0.99
    # mixed batches: half offline, and the offline half is (almost) all episode 0
    assert _mean(weighted.records, "mix", "offline_fraction") == pytest.approx(0.5)
    assert _mean(weighted.records, "mix", "best_fraction") > 0.49
    assert _mean(uniform.records, "mix", "best_fraction") < 0.5 * p_first + 0.1
    info = json.loads((tmp_path / "w" / "run.json").read_text())
    assert [(s["phase"], s["sampler"], s["temperature"]) for s in info["samplers"]] == [
        ("pre", "return", 0.1),
        ("mix", "return", 0.1),
    ]
    assert info["samplers"][0]["episodes"] == n
    assert info["samplers"][0]["top_10pct_episode_mass"] > 0.99
    phases = info["fingerprint"]["recipe"]["phases"]
    assert [p["sampler"] for p in phases] == ["return", "return"]
    assert json.loads((tmp_path / "u" / "run.json").read_text())["samplers"] == []


def test_uniform_is_the_default_and_unchanged(weighted_probe, one_best_episode, tmp_path):
    explicit = run(
        _recipe("uniform"), "Pendulum-v1", dataset=one_best_episode, run_dir=tmp_path / "a", **FAST
    )
    phases = tuple(dataclasses.replace(p, sampler="uniform") for p in _recipe("uniform").phases)
    default = Recipe(
        "probe_weighted",
        "probe",
        (
            Offline(name="pre", updates=20, batch_size=64),
            Online(name="mix", steps=20, offline_ratio=0.5, batch_size=64),
        ),
    )
    assert default.phases == phases
    again = run(default, "Pendulum-v1", dataset=one_best_episode, run_dir=tmp_path / "b", **FAST)
    strip = [{k: v for k, v in r.items() if k != "time_s"} for r in explicit.records]
    assert strip == [{k: v for k, v in r.items() if k != "time_s"} for r in again.records]
    for a, b in zip(
        jax.tree_util.tree_leaves(explicit.state),
        jax.tree_util.tree_leaves(again.state),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_single_episode_dataset_is_refused_before_the_run(
    weighted_probe, pendulum_small, tmp_path
):
    t = pendulum_small.transitions
    one = Dataset.create(
        t.replace(terminals=np.zeros(len(t), np.float32), timeouts=np.zeros(len(t), np.float32)),
        pendulum_small.metadata,
    )
    with pytest.raises(HybridRLError, match="needs at least 2; found 1"):
        run(_recipe("advantage"), "Pendulum-v1", dataset=one, run_dir=tmp_path / "x", **FAST)
    assert not (tmp_path / "x" / "run.json").exists()


def test_vmapped_seeds_sample_with_the_weights(weighted_probe, one_best_episode, tmp_path):
    from hybridrl.training.multi_seed import run_seeds

    recipe = Recipe(
        "probe_w", "probe", (Offline(name="pre", updates=10, batch_size=64, sampler="return"),)
    )
    results = run_seeds(
        recipe,
        "Pendulum-v1",
        seeds=[0, 1],
        dataset=one_best_episode,
        run_dir=tmp_path,
        vmap_seeds=True,
        **FAST,
    )
    assert all(_mean(r.records, "pre", "best_fraction") > 0.99 for r in results)
