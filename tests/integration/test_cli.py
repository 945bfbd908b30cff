"""The CLI end to end, as the README walks through it, on generated data."""

from __future__ import annotations

import json
import subprocess
import sys

import minari
import numpy as np
from typer.testing import CliRunner

from hybridrl.cli import app
from hybridrl.data import load_dataset
from hybridrl.types import HybridRLError

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_readme_walkthrough(tmp_path):
    npz, hdf5, png = tmp_path / "p.npz", tmp_path / "p.hdf5", tmp_path / "r.png"
    out = _ok(
        [
            "collect",
            "Pendulum-v1",
            "--policy",
            "pendulum_swingup",
            "--action-noise",
            "0.2",
            "--steps",
            "1000",
            "--seed",
            "0",
            "--ref-episodes",
            "2",
            "--out",
            str(npz),
        ]
    )
    assert "1000 transitions, 5 episodes" in out

    report = json.loads(_ok(["inspect", str(npz), "--json", "--histogram", str(png)]))
    assert report["transitions"] == 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "SACo" in _ok(["inspect", str(npz)])

    _ok(["convert", str(npz), str(hdf5)])
    _ok(["convert", str(npz), "minari:hybridrl/pendulum-test-v0"])
    original = load_dataset(str(npz))
    for spec in (str(hdf5), "minari:hybridrl/pendulum-test-v0"):
        assert load_dataset(spec).content_hash() == original.content_hash()
    # Minari itself reads what we wrote
    md = minari.load_dataset("hybridrl/pendulum-test-v0")
    assert md.total_steps == 1000 and md.total_episodes == 5

    bad = tmp_path / "rc.npz"
    _ok(["corrupt", str(npz), "--kind", "rewards", "--rate", "0.5", "--out", str(bad)])
    corrupted = load_dataset(str(bad))
    hit = corrupted.transitions.extras["corrupted_rewards"].astype(bool)
    assert 0.4 < hit.mean() < 0.6
    np.testing.assert_array_equal(
        corrupted.transitions.rewards[~hit], original.transitions.rewards[~hit]
    )


def test_every_verb_has_help():
    for verb in ("collect", "inspect", "corrupt", "convert", "run", "recipes", "report", "demo"):
        assert "Usage" in _ok([verb, "--help"])
    assert "d3rlpy" in _ok(["bench", "throughput", "--help"])


def test_bad_input_is_one_clear_line_and_exit_2(tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file")
    proc = subprocess.run(
        [sys.executable, "-m", "hybridrl.cli", "inspect", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: [file ") and str(broken) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_refuses_to_overwrite(tmp_path):
    target = tmp_path / "x.npz"
    target.write_bytes(b"keep me")
    result = runner.invoke(app, ["collect", "Pendulum-v1", "--steps", "10", "--out", str(target)])
    assert result.exit_code != 0 and target.read_bytes() == b"keep me"


def test_run_report_and_recipes_end_to_end(tmp_path):
    data = tmp_path / "p.npz"
    _ok(
        [
            "collect",
            "Pendulum-v1",
            "--policy",
            "pendulum_swingup",
            "--action-noise",
            "0.3",
            "--steps",
            "600",
            "--ref-episodes",
            "2",
            "--expert-return",
            "-150",
            "--out",
            str(data),
        ]
    )
    assert "wsrl" in _ok(["recipes"])
    assert json.loads(_ok(["recipes", "--show", "rlpd"]))["agent"] == "sac"
    # no --env: the run takes the dataset's env id (Pendulum-v1, recorded by collect)
    common = [
        "--dataset",
        str(data),
        "--offline-updates",
        "20",
        "--online-steps",
        "40",
        "--set",
        "hidden_dims=[8,8]",
        "--eval-interval",
        "20",
        "--eval-episodes",
        "2",
        "--offline-eval-interval",
        "10",
        "--checkpoint-interval",
        "20",
        "--no-progress",
    ]
    out = _ok(
        ["run", "iql_finetune", "--out", str(tmp_path / "runs/iql"), "--seeds", "0,1", *common]
    )
    first, second = out.split("run directory")[:2]
    summary = json.loads(first)
    assert summary["total_env_steps"] == 40 and summary["total_updates"] == 60
    assert json.loads(second.split("\n", 1)[1])["seed"] == 1
    # resuming a finished run does no work and reproduces its summary
    seed0 = str(tmp_path / "runs/iql/seed_0")
    # naming the same env explicitly is the same run: resume accepts it
    resume = ["run", "iql_finetune", "--out", seed0, "--seed", "0", "--resume"]
    again = runner.invoke(app, [*resume, "--env", "Pendulum-v1", *common])
    assert again.exit_code == 0, again.output
    assert (
        json.loads(again.stdout.split("run directory")[0])["final_score"]
        == (summary["final_score"])
    )
    assert f"{seed0}: resumed from the checkpoint at env step 40" in again.stderr
    table = _ok(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "report")])
    assert "iql_finetune" in table
    assert (tmp_path / "report" / "curves.png").exists()

    bad = runner.invoke(
        app, ["run", "iql_finetune", "--out", str(tmp_path / "y"), *common, "--set", "nope=1"]
    )
    assert isinstance(bad.exception, HybridRLError) and "nope" in str(bad.exception)
    assert not (tmp_path / "y").exists()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hybridrl.cli",
            "run",
            "wsrll",
            "--env",
            "Pendulum-v1",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "unknown recipe 'wsrll'" in proc.stderr
    no_env = runner.invoke(app, ["run", "sac", "--out", str(tmp_path / "z")])
    assert isinstance(no_env.exception, HybridRLError) and "--env is required" in str(
        no_env.exception
    )
    assert not (tmp_path / "z").exists()
