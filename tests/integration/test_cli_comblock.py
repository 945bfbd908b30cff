"""``hybridrl datasets comblock`` and ``hybridrl run hnpg|npg`` on its data, end to end."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from hybridrl.cli import app
from hybridrl.data import load_dataset
from hybridrl.types import HybridRLError

runner = CliRunner()


def test_comblock_dataset_then_hnpg_and_npg_runs(tmp_path):
    data = tmp_path / "c3.npz"
    result = runner.invoke(
        app, ["datasets", "comblock", "--horizon", "3", "--episodes", "50", "-o", str(data)]
    )
    assert result.exit_code == 0, result.output
    assert "150 transitions" in result.output
    ds = load_dataset(str(data))
    assert ds.metadata.env_id == "hybridrl/Comblock-H3-v0" and ds.num_episodes == 50
    again = runner.invoke(app, ["datasets", "comblock", "--horizon", "3", "-o", str(data)])
    assert isinstance(again.exception, HybridRLError) and "--overwrite" in str(again.exception)
    # the env id comes from the dataset's metadata
    small = ["--on-policy-steps", "60", "--set", "hidden_dims=[8]", "--no-progress"]
    out = tmp_path / "hnpg"
    result = runner.invoke(app, ["run", "hnpg", "--dataset", str(data), "-o", str(out), *small])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total_env_steps"] == 60
    record = json.loads((out / "run.json").read_text())
    assert record["fingerprint"]["recipe"]["phases"][0]["offline_ratio"] == 0.5
    out = tmp_path / "npg"
    env = ["--env", "hybridrl/Comblock-H3-v0"]
    result = runner.invoke(app, ["run", "npg", *env, "-o", str(out), *small])
    assert result.exit_code == 0, result.output
