"""npz round trip, bad npz files, and atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from hybridrl.data import load_dataset, save_dataset
from hybridrl.data.io import atomic_path, load_npz, save_npz
from hybridrl.types import DatasetError


def test_npz_round_trip_is_exact(chain_dataset, tmp_path):
    ds = chain_dataset.with_mc_returns(0.99)
    path = save_npz(ds, tmp_path / "d.npz")
    back = load_npz(path)
    assert back.content_hash() == ds.content_hash()
    assert back.metadata == ds.metadata
    np.testing.assert_array_equal(
        back.transitions.extras["mc_returns"], ds.transitions.extras["mc_returns"]
    )
    # through the format-dispatching API too
    save_dataset(ds, str(tmp_path / "e.npz"))
    assert load_dataset(str(tmp_path / "e.npz")).content_hash() == ds.content_hash()


def test_truncated_npz_names_file(chain_dataset, tmp_path):
    path = save_npz(chain_dataset, tmp_path / "d.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        load_npz(path)
    assert str(path) in str(info.value)


def test_missing_field_and_length_mismatch(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, observations=np.zeros((3, 2)), actions=np.zeros((3, 1)), rewards=np.zeros(3))
    with pytest.raises(DatasetError, match="'terminals'"):
        load_npz(p)
    np.savez(
        p,
        observations=np.zeros((3, 2)),
        actions=np.zeros((2, 1)),
        rewards=np.zeros(3),
        terminals=np.zeros(3),
        next_observations=np.zeros((3, 2)),
    )
    with pytest.raises(DatasetError, match=r"'actions'.*2 rows"):
        load_npz(p)


def test_nan_in_npz_names_field(tmp_path):
    p = tmp_path / "nan.npz"
    obs = np.zeros((3, 2))
    obs[1, 0] = np.nan
    np.savez(
        p,
        observations=obs,
        actions=np.zeros((3, 1)),
        rewards=np.zeros(3),
        terminals=np.zeros(3),
        next_observations=np.zeros((3, 2)),
    )
    with pytest.raises(DatasetError, match=r"'observations'.*NaN.*row 1"):
        load_npz(p)


def test_tampered_hash_detected(chain_dataset, tmp_path):
    path = save_npz(chain_dataset, tmp_path / "d.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["rewards"] = arrays["rewards"] + 1
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match="hash"):
        load_npz(path)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="format"):
        load_dataset(str(tmp_path / "data.csv"))
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(str(tmp_path / "absent.npz"))


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "out.npz"
    final.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_path(final) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert final.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.npz"]


def test_save_interrupted_midway_keeps_old_file(chain_dataset, tmp_path, monkeypatch):
    final = save_npz(chain_dataset, tmp_path / "d.npz")
    before = final.read_bytes()

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", explode)
    with pytest.raises(KeyboardInterrupt):
        save_npz(chain_dataset.transform_rewards(2.0), final, overwrite=True)
    assert final.read_bytes() == before
    assert os.listdir(tmp_path) == ["d.npz"]


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    import os

    from hybridrl.data.io import atomic_path

    with atomic_path(tmp_path / "f.txt") as tmp:
        tmp.write_text("x")
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "f.txt").st_mode & 0o777 == 0o666 & ~mask
