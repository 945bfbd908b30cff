"""Files that are not what their name says, empty datasets, the overwrite rule, repr, and the
download hint of a Minari id that is not in the local store."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest

from hybridrl.data import load_dataset, save_dataset
from hybridrl.types import DatasetError
from tests.conftest import make_chain_dataset

EMPTY = {
    "observations": np.zeros((0, 3)),
    "actions": np.zeros((0, 1)),
    "rewards": np.zeros(0),
    "next_observations": np.zeros((0, 3)),
    "terminals": np.zeros(0, bool),
    "timeouts": np.zeros(0, bool),
}


@pytest.mark.parametrize(("name", "what"), [("notes.npz", "npz"), ("notes.hdf5", "HDF5")])
def test_a_text_file_with_a_dataset_suffix(tmp_path, name, what):
    path = tmp_path / name
    path.write_text("observations,actions\n1,2\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(str(path))
    msg = str(err.value)
    assert msg == f"[file {path}] not an {what} file ({msg.split('(', 1)[1]}"
    assert "\n" not in msg and "pickle" not in msg


def _empty_h5(path: Path, next_obs: bool) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in EMPTY.items():
            if next_obs or key != "next_observations":
                f.create_dataset(key, data=value)
    return path


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("kind", ["npz", "hdf5", "hdf5-no-next", "hdf5-one-row", "minari"])
def test_an_empty_dataset_is_one_clear_error(tmp_path, kind):
    if kind == "npz":
        np.savez(tmp_path / "e.npz", **EMPTY)
        spec = where = str(tmp_path / "e.npz")
    elif kind == "hdf5-one-row":  # without next observations the only row is dropped
        arrays = {k: np.zeros((1, *v.shape[1:]), v.dtype) for k, v in EMPTY.items()}
        del arrays["next_observations"]
        with h5py.File(tmp_path / "one.hdf5", "w") as f:
            for key, value in arrays.items():
                f.create_dataset(key, data=value)
        spec = where = str(tmp_path / "one.hdf5")
    elif kind.startswith("hdf5"):
        spec = where = str(_empty_h5(tmp_path / "e.hdf5", next_obs=kind == "hdf5"))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Minari nags about empty optional fields
            minari.create_dataset_from_buffers(
                "hybridrl-test/empty-v0",
                [],
                observation_space=gym.spaces.Box(-1.0, 1.0, (3,)),
                action_space=gym.spaces.Box(-1.0, 1.0, (1,)),
                algorithm_name="none",
            )
        spec, where = "minari:hybridrl-test/empty-v0", "hybridrl-test/empty-v0"
    with pytest.raises(DatasetError, match="holds no transitions") as err:
        load_dataset(spec)
    assert where in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("target", ["d.npz", "d.hdf5", "minari:hybridrl-test/twice-v0"])
def test_save_dataset_refuses_an_existing_target_unless_overwrite(tmp_path, target):
    spec = target if target.startswith("minari:") else str(tmp_path / target)
    first, second = make_chain_dataset(seed=0), make_chain_dataset(seed=1)
    where = save_dataset(first, spec)
    with pytest.raises(DatasetError, match="overwrite=True") as err:
        save_dataset(second, spec)
    assert where in str(err.value)
    assert load_dataset(spec).content_hash() == first.content_hash()
    save_dataset(second, spec, overwrite=True)
    assert load_dataset(spec).content_hash() == second.content_hash()


def test_repr_is_one_line_without_arrays():
    ds = make_chain_dataset()
    text = repr(ds)
    assert "\n" not in text and "array" not in text and len(text) < 300
    assert "chain" in text and "9 transitions" in text and "3 episodes" in text
    assert "Box(-1, 1, (2,), float32)" in text


def test_a_minari_id_not_in_the_store_says_how_to_download():
    with pytest.raises(DatasetError, match="download=True") as err:
        load_dataset("minari:nowhere/nothing-v0")
    assert "local ids: none" in str(err.value)
