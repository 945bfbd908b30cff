"""`hybridrl datasets list --details` on a store holding one small suite dataset."""

from __future__ import annotations

from typer.testing import CliRunner

from hybridrl.cli import app
from hybridrl.data import save_dataset
from hybridrl.data.collect import NoiseConfig, collect


def test_list_details_shows_size_and_normalized_mean(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ds = collect(
        "Pendulum-v1", None, num_steps=400, seed=0, noise=NoiseConfig(),
        ref_min_score=-1200.0, ref_max_score=-200.0, progress=False,
    )  # fmt: skip
    save_dataset(ds, "minari:hybridrl/pointmaze/umaze-v0")
    mean = ds.summary()["return_mean"]
    result = CliRunner().invoke(app, ["datasets", "list", "--details"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    built = rows["pointmaze-umaze-v0"]
    assert built[1:5] == ["yes", "yes", "400", "2"]  # 2 episodes of 200 steps
    assert built[5] == f"{mean:.1f}"
    assert built[6] == f"{100 * (mean + 1200) / 1000:.1f}"
    assert rows["pointmaze-large-v0"][1:3] == ["yes", "no"]
