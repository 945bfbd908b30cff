"""Minari format: round trips, files Minari itself reads, unflagged ends, errors, atomicity."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pytest
from minari.data_collector import EpisodeBuffer

from hybridrl.data import load_dataset, save_dataset
from hybridrl.data.minari_io import load_minari, minari_store_path, save_minari
from hybridrl.types import DatasetError
from tests.conftest import make_chain_dataset
from tests.unit.test_d4rl_format import pendulum_dataset


def _store_entries() -> list[str]:
    return sorted(os.listdir(minari_store_path()))


def _native(dataset_id: str, buffers: list[EpisodeBuffer], obs_space: gym.Space) -> None:
    """A dataset written by Minari alone (no hybridrl metadata)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari warns that there is no environment
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            observation_space=obs_space,
            action_space=gym.spaces.Box(-1.0, 1.0, (1,)),
            author="test",
            algorithm_name="random",
            code_permalink="none",
            author_email="none",
            description="native",
        )


def test_store_path_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "store"))
    assert minari_store_path() == tmp_path / "store"
    monkeypatch.delenv("MINARI_DATASETS_PATH")
    assert minari_store_path() == Path.home() / ".minari" / "datasets"


def test_round_trip_and_minari_reads_it():
    # terminal, time-out, terminal, then a trailing episode with no end flag; extras too
    ds = make_chain_dataset((3, 4, 2, 3), ("terminal", "timeout", "terminal", "none"))
    ds = ds.with_mc_returns(0.9).with_episode_ids()
    where = save_minari(ds, "hybridrl-test/chain-v0", author="me")
    assert where == minari_store_path() / "hybridrl-test" / "chain-v0"
    back = load_minari("hybridrl-test/chain-v0")
    assert back.content_hash() == ds.content_hash()
    assert back.metadata == ds.metadata
    # Minari itself reads it: episodes, steps, flags, reference scores
    mds = minari.load_dataset("hybridrl-test/chain-v0")
    assert mds.total_episodes == 4 and mds.total_steps == 12
    episodes = list(mds.iterate_episodes())
    assert [len(e) for e in episodes] == [3, 4, 2, 3]
    assert episodes[0].observations.shape == (4, 3)
    assert episodes[0].terminations.tolist() == [False, False, True]
    assert episodes[1].truncations.tolist() == [False, False, False, True]
    assert not episodes[3].terminations.any() and not episodes[3].truncations.any()
    np.testing.assert_array_equal(
        episodes[1].observations[1:], ds.transitions.next_observations[3:7]
    )
    assert minari.get_normalized_score(mds, np.array([0.0])) == pytest.approx(0.5)
    assert "hybridrl-test/chain-v0" in minari.list_local_datasets()
    assert _store_entries() == ["hybridrl-test"]  # no temporary folders left
    # through the format-dispatching API too
    assert load_dataset("minari:hybridrl-test/chain-v0").content_hash() == ds.content_hash()


def test_pendulum_round_trip_keeps_env_and_native_fields():
    ds = pendulum_dataset().with_metadata(ref_min_score=-1500.0, ref_max_score=-150.0)
    save_dataset(ds, "minari:hybridrl-test/pendulum-v0")
    mds = minari.load_dataset("hybridrl-test/pendulum-v0")
    assert mds.env_spec is not None and mds.env_spec.id == "Pendulum-v1"
    assert mds.total_episodes == 3 and mds.total_steps == 15
    back = load_minari("hybridrl-test/pendulum-v0")
    assert back.content_hash() == ds.content_hash() and back.metadata == ds.metadata
    # Without hybridrl's metadata, Minari's own fields still give spaces, env and references.
    meta_file = Path(mds.storage.data_path) / "metadata.json"
    raw = json.loads(meta_file.read_text())
    del raw["hybridrl_metadata"]
    meta_file.write_text(json.dumps(raw))
    native = load_minari("hybridrl-test/pendulum-v0")
    assert native.content_hash() == ds.content_hash()
    m = native.metadata
    assert (m.observation_space, m.action_space) == (
        ds.metadata.observation_space,
        ds.metadata.action_space,
    )
    assert (m.env_id, m.ref_min_score, m.ref_max_score) == ("Pendulum-v1", -1500.0, -150.0)
    assert m.source == "minari" and m.provenance["minari_id"] == "hybridrl-test/pendulum-v0"
    assert m.provenance["minari_version"] == minari.__version__


def test_changed_dataset_falls_back_to_minari_metadata():
    ds = make_chain_dataset()
    save_minari(ds, "hybridrl-test/grow-v0")
    mds = minari.load_dataset("hybridrl-test/grow-v0")
    extra = EpisodeBuffer(
        observations=np.zeros((3, 3), np.float32),
        actions=np.zeros((2, 2), np.float32),
        rewards=np.zeros(2, np.float32),
        terminations=np.array([False, True]),
        truncations=np.array([False, False]),
    )
    mds.update_dataset_from_buffer([extra])
    with pytest.warns(UserWarning, match="content hash does not match"):
        back = load_minari("hybridrl-test/grow-v0")
    assert len(back) == len(ds) + 2 and back.num_episodes == ds.num_episodes + 1
    assert back.metadata.source == "minari"
    assert back.metadata.provenance["stale_hybridrl_metadata"]["name"] == "chain"


def test_episode_without_end_flag_gets_a_timeout():
    obs_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
    buffers = [
        EpisodeBuffer(
            observations=np.arange(2 * (n + 1), dtype=np.float32).reshape(n + 1, 2),
            actions=np.zeros((n, 1), np.float32),
            rewards=np.ones(n, np.float32),
            terminations=np.zeros(n, bool),
            truncations=np.zeros(n, bool),
            infos={"speed": np.arange(n + 1, dtype=np.float64), "label": ["a"] * (n + 1)},
        )
        for n in (3, 2)
    ]
    _native("hybridrl-test/unflagged-v0", buffers, obs_space)
    ds = load_minari("hybridrl-test/unflagged-v0")
    np.testing.assert_array_equal(ds.transitions.timeouts, [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(ds.transitions.terminals, 0)
    assert ds.num_episodes == 2
    prov = ds.metadata.provenance
    assert (
        prov["unflagged_episode_ends"] == 2 and "timeouts=1" in prov["unflagged_episode_ends_rule"]
    )
    assert prov["author"] == ["test"] and prov["skipped_infos"] == ["label"]
    assert ds.metadata.boundaries_inferred is False and ds.metadata.env_id is None
    # info row t+1 belongs to step t
    np.testing.assert_array_equal(ds.transitions.extras["info_speed"], [1, 2, 3, 1, 2])


def test_dict_observations_are_refused_with_advice():
    space = gym.spaces.Dict({"pos": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)})
    buf = EpisodeBuffer(
        observations={"pos": np.zeros((3, 2), np.float32)},
        actions=np.zeros((2, 1), np.float32),
        rewards=np.zeros(2),
        terminations=np.array([False, True]),
        truncations=np.zeros(2, bool),
    )
    _native("hybridrl-test/dict-v0", [buf], space)
    with pytest.raises(DatasetError, match="flatten") as err:
        load_minari("hybridrl-test/dict-v0")
    assert err.value.field == "observation_space"


def test_unknown_id_lists_local_ids():
    save_minari(make_chain_dataset(), "hybridrl-test/present-v0")
    with pytest.raises(DatasetError, match="download=True") as err:
        load_minari("hybridrl-test/absent-v0")
    assert "hybridrl-test/present-v0" in str(err.value)
    assert "hybridrl-test/absent-v0" in str(err.value)


def test_overwrite_protection_and_replacement():
    first = make_chain_dataset(seed=1)
    second = make_chain_dataset((2, 2), ("terminal", "timeout"), seed=2)
    save_minari(first, "hybridrl-test/same-v0")
    with pytest.raises(DatasetError, match=r"already exists.*overwrite=True"):
        save_minari(second, "hybridrl-test/same-v0")
    assert load_minari("hybridrl-test/same-v0").content_hash() == first.content_hash()
    save_minari(second, "hybridrl-test/same-v0", overwrite=True)
    assert load_minari("hybridrl-test/same-v0").content_hash() == second.content_hash()
    assert _store_entries() == ["hybridrl-test"]


def test_failed_write_leaves_no_dataset(monkeypatch):
    from minari.dataset._storages.hdf5_storage import HDF5Storage

    store_env = os.environ["MINARI_DATASETS_PATH"]
    old = make_chain_dataset(seed=1)
    save_minari(old, "hybridrl-test/kept-v0")

    def crash(self, episodes):
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:  # not monkeypatch.undo(): that would unset the store
        m.setattr(HDF5Storage, "update_episodes", crash)
        with pytest.raises(RuntimeError, match="disk full"):
            save_minari(make_chain_dataset(seed=2), "hybridrl-test/new-v0")
        with pytest.raises(RuntimeError, match="disk full"):
            save_minari(make_chain_dataset(seed=2), "hybridrl-test/kept-v0", overwrite=True)
    assert list(minari.list_local_datasets()) == ["hybridrl-test/kept-v0"]
    assert load_minari("hybridrl-test/kept-v0").content_hash() == old.content_hash()
    assert _store_entries() == ["hybridrl-test"]
    assert os.environ["MINARI_DATASETS_PATH"] == store_env  # restored after the failure


def test_unrepresentable_data_and_bad_ids_are_refused():
    ds = make_chain_dataset()
    t = ds.transitions
    nxt = np.array(t.next_observations)
    nxt[0] += 1.0  # inside the first episode: next obs no longer the following obs
    broken = type(ds)(t.replace(next_observations=nxt), ds.metadata)
    with pytest.raises(DatasetError, match="one observation sequence per episode") as err:
        save_minari(broken, "hybridrl-test/broken-v0")
    assert err.value.field == "next_observations"
    with pytest.raises(DatasetError, match="not a Minari dataset id"):
        save_minari(ds, "no version")
    assert not minari_store_path().exists() or _store_entries() == []
