"""The dataset options every data verb shares: --download and --overwrite."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hybridrl.cli import app
from hybridrl.data import load_dataset
from hybridrl.data.io import save_npz
from hybridrl.types import HybridRLError
from tests.conftest import make_chain_dataset

cli = CliRunner()
MISSING = "minari:nowhere/nothing-v0"


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", MISSING],
        ["convert", MISSING, "OUT/x.npz"],
        ["corrupt", MISSING, "--kind", "rewards", "--out", "OUT/x.npz"],
        ["run", "offline:bc", "--env", "Pendulum-v1", "--dataset", MISSING, "--out", "OUT/r"],
    ],
)
def test_a_missing_minari_id_names_the_download_option(args, tmp_path):
    args = [a.replace("OUT", str(tmp_path)) for a in args]
    assert "--download" in cli.invoke(app, [args[0], "--help"]).output
    result = cli.invoke(app, args)
    assert isinstance(result.exception, HybridRLError), result.output
    msg = str(result.exception)
    assert "pass --download" in msg and "download=True" not in msg and "\n" not in msg
    assert list(tmp_path.iterdir()) == []


def test_minari_targets_follow_the_overwrite_rule(tmp_path):
    first, second = make_chain_dataset(seed=0), make_chain_dataset(seed=1)
    a, b = save_npz(first, tmp_path / "a.npz"), save_npz(second, tmp_path / "b.npz")
    target = "minari:hybridrl-test/out-v0"
    assert cli.invoke(app, ["convert", str(a), target]).exit_code == 0
    for args in (
        ["convert", str(b), target],
        ["corrupt", str(b), "--kind", "rewards", "--out", target],
        ["collect", "Pendulum-v1", "--steps", "10", "--ref-episodes", "0", "--out", target],
    ):
        result = cli.invoke(app, args)
        assert isinstance(result.exception, HybridRLError), (args, result.output)
        assert "--overwrite" in str(result.exception)
        assert load_dataset(target).content_hash() == first.content_hash()
    assert cli.invoke(app, ["convert", str(b), target, "--overwrite"]).exit_code == 0
    assert load_dataset(target).content_hash() == second.content_hash()
