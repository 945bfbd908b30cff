"""D4RL-format HDF5: round trips, D4RL's qlearning conversion, inferred boundaries, bad files."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest

from hybridrl.data import load_dataset, save_dataset
from hybridrl.data.d4rl import d4rl_reference_scores, load_hdf5, save_hdf5
from hybridrl.data.dataset import Dataset, DatasetMetadata
from hybridrl.data.transitions import make_transitions
from hybridrl.types import DatasetError, SpaceSpec
from tests.conftest import make_chain_dataset


def pendulum_dataset(lengths: tuple[int, ...] = (5, 6, 4), seed: int = 0) -> Dataset:
    """A real Pendulum-v1 rollout with random actions, each episode cut by a time-out."""
    env = gym.make("Pendulum-v1")
    env.action_space.seed(seed)
    rows: dict[str, list] = {k: [] for k in ("obs", "act", "rew", "next", "term", "tout")}
    for k, length in enumerate(lengths):
        obs, _ = env.reset(seed=seed + k)
        for step in range(length):
            act = env.action_space.sample()
            nxt, rew, term, trunc, _ = env.step(act)
            for key, value in zip(
                rows, (obs, act, rew, nxt, term, trunc or step == length - 1), strict=True
            ):
                rows[key].append(value)
            obs = nxt
    env.close()
    t = make_transitions(*(np.asarray(v) for v in rows.values()))
    meta = DatasetMetadata(
        observation_space=SpaceSpec.from_gym(env.observation_space),
        action_space=SpaceSpec.from_gym(env.action_space),
        env_id="Pendulum-v1",
        source="collect",
        provenance={"policy": "random", "seed": seed},
        name="pendulum-random",
    )
    return Dataset.create(t, meta)


def write_h5(path: Path, arrays: dict[str, np.ndarray], attrs: dict | None = None) -> Path:
    """A raw HDF5 file; keys with '/' land in groups (``infos/goal``, ``metadata/x``)."""
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
        for key, value in (attrs or {}).items():
            f.require_group("metadata").attrs[key] = value
    return path


def assert_names(err: pytest.ExceptionInfo, path: Path, field: str | None) -> None:
    msg = str(err.value)
    assert str(path) in msg
    if field is not None:
        assert f"field '{field}'" in msg
        assert err.value.field == field


# ------------------------------------------------------------------------------ round trips
def test_hybridrl_file_round_trips_exactly(tmp_path):
    # terminal, time-out, terminal, then a trailing episode with no end flag
    ds = make_chain_dataset((3, 4, 2, 3), ("terminal", "timeout", "terminal", "none"))
    ds = ds.with_mc_returns(0.9).with_episode_ids()
    path = save_hdf5(ds, tmp_path / "chain.hdf5")
    back = load_hdf5(path)
    assert back.content_hash() == ds.content_hash()
    assert back.metadata == ds.metadata
    assert sorted(back.transitions.extras) == ["episode_ids", "mc_returns"]
    with h5py.File(path, "r") as f:  # D4RL layout, readable by D4RL tooling
        assert f["terminals"].dtype == bool and f["timeouts"].dtype == bool
        assert f["observations"].shape == (12, 3)
        assert f["metadata"].attrs["ref_min_score"] == -10.0
        assert f["metadata"].attrs["ref_max_score"] == 10.0
    # through the format-dispatching API too; no temporary files left behind
    save_dataset(ds, str(tmp_path / "again.h5"))
    assert load_dataset(str(tmp_path / "again.h5")).content_hash() == ds.content_hash()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.h5", "chain.hdf5"]


def test_pendulum_rollout_round_trip_and_env_spaces(tmp_path):
    ds = pendulum_dataset()
    path = save_hdf5(ds, tmp_path / "pendulum.hdf5")
    back = load_hdf5(path)
    assert back.content_hash() == ds.content_hash()
    assert back.metadata == ds.metadata
    assert back.num_episodes == 3 and list(back.episode_lengths()) == [5, 6, 4]
    # A plain D4RL file (no hybridrl metadata) takes its spaces from env_id.
    t = ds.transitions
    raw = write_h5(
        tmp_path / "plain.hdf5",
        {k: np.asarray(getattr(t, k)) for k in ("observations", "actions", "rewards")}
        | {"terminals": np.asarray(t.terminals), "timeouts": np.asarray(t.timeouts)},
    )
    plain = load_hdf5(raw, env_id="Pendulum-v1", dataset_id="pendulum-test-v0")
    assert plain.metadata.observation_space == ds.metadata.observation_space
    assert plain.metadata.action_space == ds.metadata.action_space
    assert plain.metadata.source == "d4rl-hdf5" and plain.metadata.env_id == "Pendulum-v1"
    assert plain.metadata.ref_min_score is None  # not a D4RL family
    # qlearning conversion: each time-out row is dropped, the row before it flagged
    assert len(plain) == len(ds) - 3
    assert plain.num_episodes == 3 and list(plain.episode_lengths()) == [4, 5, 3]
    # without env_id or spaces: unbounded boxes shaped like the data
    boxed = load_hdf5(raw)
    assert boxed.metadata.action_space.shape == (1,)
    assert np.isinf(boxed.metadata.action_space.high_array).all()


# ------------------------------------------------------------------------------ D4RL semantics
def _d4rl_rows() -> dict[str, np.ndarray]:
    """10 rows whose observation is its row index, so the conversion can be read off.

    Rows 0-2: episode ending in a terminal at 2. Rows 3-6: time-out at 6. Rows 7-8: row 8 is
    both terminal and time-out. Row 9: last row, no flag.
    """
    n = 10
    obs = np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, axis=1)
    terminals = np.zeros(n, bool)
    timeouts = np.zeros(n, bool)
    terminals[[2, 8]] = True
    timeouts[[6, 8]] = True
    return {
        "observations": obs,
        "actions": np.linspace(-1, 1, n, dtype=np.float32)[:, None],
        "rewards": np.arange(n, dtype=np.float32)[:, None],  # (N, 1) is squeezed
        "terminals": terminals,
        "timeouts": timeouts,
        "infos/goal": np.arange(n, dtype=np.float64)[:, None] * 10,
        "infos/short": np.zeros(3),
        "infos/nan": np.full(n, np.nan),
        "unknown": np.zeros(2),
        "metadata/algorithm": np.bytes_(b"SAC"),
        "metadata/iteration": np.int64(7),
        "metadata/policy/fc0/weight": np.ones((2, 2)),
    }


def test_file_without_next_observations_follows_d4rl(tmp_path):
    path = write_h5(tmp_path / "hopper-medium-v2.hdf5", _d4rl_rows())
    ds = load_hdf5(path, dataset_id="hopper-medium-v2")
    t = ds.transitions
    kept = [0, 1, 2, 3, 4, 5, 7, 8]  # row 6 (time-out) and row 9 (last) dropped
    np.testing.assert_array_equal(t.observations[:, 0], kept)
    np.testing.assert_array_equal(t.next_observations[:, 0], [k + 1 for k in kept])
    np.testing.assert_array_equal(t.rewards, kept)
    # terminals kept (row 8 too, although D4RL drops terminal+time-out rows)
    np.testing.assert_array_equal(t.terminals, [0, 0, 1, 0, 0, 0, 0, 1])
    # the row before the dropped time-out (row 5) is flagged, which D4RL does not do
    np.testing.assert_array_equal(t.timeouts, [0, 0, 0, 0, 0, 1, 0, 0])
    assert [(s.start, s.stop) for s in ds.episode_slices()] == [(0, 3), (3, 6), (6, 8)]
    np.testing.assert_array_equal(t.extras["info_goal"][:, 0], np.array(kept) * 10.0)
    meta = ds.metadata
    assert meta.boundaries_inferred is False
    assert (meta.ref_min_score, meta.ref_max_score) == (-20.272305, 3234.3)
    assert meta.name == "hopper-medium-v2" and meta.source == "d4rl-hdf5"
    assert meta.provenance["hdf5_metadata"] == {"algorithm": "SAC", "iteration": 7}
    assert list(meta.provenance["skipped_infos"]) == ["nan", "short"]
    assert meta.provenance["ignored_keys"] == ["unknown"]
    assert meta.provenance["qlearning_conversion"]["rows_dropped"] == 2


def test_reference_scores_from_file_metadata(tmp_path):
    rows = {k: v for k, v in _d4rl_rows().items() if not k.startswith(("infos", "metadata"))}
    path = write_h5(tmp_path / "x.hdf5", rows, attrs={"ref_min_score": 1.5, "ref_max_score": 9.0})
    meta = load_hdf5(path).metadata
    assert (meta.ref_min_score, meta.ref_max_score) == (1.5, 9.0)


def test_missing_timeouts_inferred_from_max_episode_steps(tmp_path):
    n = 7
    obs = np.arange(n, dtype=np.float32)[:, None]
    terminals = np.zeros(n, bool)
    terminals[1] = True
    rows = {
        "observations": obs,
        "actions": np.zeros((n, 1), np.float32),
        "rewards": np.ones(n, np.float32),
        "terminals": terminals,
    }
    path = write_h5(tmp_path / "no_timeouts.hdf5", rows)
    ds = load_hdf5(path, max_episode_steps=3)
    # counter: rows 0,1(terminal) | 2,3,4(counter 2 = limit-1: time-out, dropped) | 5, 6(last)
    np.testing.assert_array_equal(ds.transitions.observations[:, 0], [0, 1, 2, 3, 5])
    np.testing.assert_array_equal(ds.transitions.timeouts, [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(ds.transitions.terminals, [0, 1, 0, 0, 0])
    assert ds.metadata.boundaries_inferred is True
    assert "max_episode_steps" in ds.metadata.provenance["inferred_boundaries"]


def test_missing_timeouts_inferred_from_next_observations(tmp_path):
    ds = make_chain_dataset((3, 4, 2), ("timeout", "timeout", "terminal"))
    t = ds.transitions
    rows = {k: np.asarray(getattr(t, k)) for k in ("observations", "actions", "rewards")}
    rows |= {"terminals": t.terminals, "next_observations": t.next_observations}
    ds2 = load_hdf5(write_h5(tmp_path / "n.hdf5", rows))
    np.testing.assert_array_equal(ds2.transitions.timeouts, t.timeouts)
    assert ds2.content_hash() == ds.content_hash()
    assert ds2.metadata.boundaries_inferred is True
    assert "next observation" in ds2.metadata.provenance["inferred_boundaries"]


def test_missing_timeouts_without_any_hint_is_an_error(tmp_path):
    rows = {k: v for k, v in _d4rl_rows().items() if k != "timeouts"}
    path = write_h5(tmp_path / "x.hdf5", rows)
    with pytest.raises(DatasetError, match="max_episode_steps") as err:
        load_hdf5(path)
    assert_names(err, path, "timeouts")


@pytest.mark.parametrize(
    ("dataset_id", "expected"),
    [
        ("hopper-medium-v2", (-20.272305, 3234.3)),
        ("halfcheetah-medium-replay-v2", (-280.178953, 12135.0)),
        ("walker2d-expert-v0", (1.629008, 4592.3)),
        ("ant-medium-expert-v2", (-325.6, 3879.7)),
        ("maze2d-umaze-v1", (23.85, 161.86)),
        ("maze2d-large-v1", (6.7, 273.99)),
        ("maze2d-large-dense-v1", (30.569041, 303.4857382709002)),
        ("antmaze-large-diverse-v2", (0.0, 1.0)),
        ("antmaze-umaze-v0", (0.0, 1.0)),
        ("pen-human-v1", (96.262799, 3076.8331017826877)),
        ("door-cloned-v1", (-56.512833, 2880.5693087298737)),
        ("kitchen-mixed-v0", (0.0, 4.0)),
        ("bullet-hopper-medium-v0", None),
        ("maze2d-eval-umaze-v1", None),
        ("CartPole-v1", None),
    ],
)
def test_reference_table(dataset_id, expected):
    assert d4rl_reference_scores(dataset_id) == expected


# ------------------------------------------------------------------------------ bad input
def _good_rows(n: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    timeouts = np.zeros(n, bool)
    timeouts[2] = timeouts[-1] = True
    return {
        "observations": rng.normal(size=(n, 3)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(n, 1)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": np.zeros(n, bool),
        "timeouts": timeouts,
    }


def _bad(kind: str) -> tuple[dict[str, np.ndarray], dict, str]:
    rows = _good_rows()
    kwargs: dict = {}
    if kind == "missing":
        del rows["actions"]
        field = "actions"
    elif kind == "nan":
        rows["rewards"][3] = np.nan
        field = "rewards"
    elif kind == "length":
        rows["actions"] = rows["actions"][:-1]
        field = "actions"
    elif kind == "reward_shape":
        rows["rewards"] = np.zeros((6, 2), np.float32)
        field = "rewards"
    elif kind == "flags":
        rows["terminals"] = np.full(6, 2.0)
        field = "terminals"
    elif kind == "obs_vs_env":
        rows["observations"] = np.zeros((6, 4), np.float32)  # Pendulum has 3
        kwargs["env_id"] = "Pendulum-v1"
        field = "observations"
    else:  # out of bounds: Pendulum's torque is in [-2, 2]
        rows["actions"][4] = 5.0
        kwargs["env_id"] = "Pendulum-v1"
        field = "actions"
    return rows, kwargs, field


@pytest.mark.parametrize(
    "kind", ["missing", "nan", "length", "reward_shape", "flags", "obs_vs_env", "out_of_bounds"]
)
def test_bad_file_names_file_and_field(tmp_path, kind):
    rows, kwargs, field = _bad(kind)
    path = write_h5(tmp_path / f"{kind}.hdf5", rows)
    with pytest.raises(DatasetError) as err:
        load_hdf5(path, **kwargs)
    assert_names(err, path, field)


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(DatasetError, match="no such file") as err:
        load_hdf5(tmp_path / "nope.hdf5")
    assert_names(err, tmp_path / "nope.hdf5", None)
    path = save_hdf5(make_chain_dataset(), tmp_path / "d.hdf5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt") as err:
        load_hdf5(path)
    assert_names(err, path, None)
    path.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        load_hdf5(path)


def test_modified_hybridrl_file_fails_hash_check(tmp_path):
    path = save_hdf5(make_chain_dataset(), tmp_path / "d.hdf5")
    with h5py.File(path, "r+") as f:
        f["rewards"][0] = 123.0
    with pytest.raises(DatasetError, match="content hash") as err:
        load_hdf5(path)
    assert_names(err, path, "metadata/hybridrl_metadata.hash")
    assert load_hdf5(path, verify_hash=False).transitions.rewards[0] == 123.0
