"""Sweep files: validation before any run (no Ray needed), expansion into trials, the run
command of a trial, and the retry loop (with a stand-in process, in milliseconds)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hybridrl.sweep import Trial, load_sweep, parse_sweep, run_command
from hybridrl.sweep.execute import run_with_retries
from hybridrl.types import HybridRLError

GOOD = {
    "sweep": {"seeds": [0, 1]},
    "grid": {"recipe": ["iql_finetune", "awac_finetune"], "set.actor_lr": [1e-4, 3e-4]},
    "run": {"env": "Pendulum-v1", "online_steps": 40, "set": {"hidden_dims": [8]}},
    "resources": {"cpus": 1, "max_concurrent": 2},
}


def test_grid_expands_every_combination_with_names_and_labels() -> None:
    spec = parse_sweep(GOOD, source="s.toml")
    assert [t.name for t in spec.trials] == [
        "iql_finetune-actor_lr=0.0001",
        "iql_finetune-actor_lr=0.0003",
        "awac_finetune-actor_lr=0.0001",
        "awac_finetune-actor_lr=0.0003",
    ]
    assert len(spec.runs()) == 8 and spec.seeds == (0, 1)
    first = spec.trials[0]
    assert first.overrides == {"hidden_dims": [8], "actor_lr": 1e-4}
    assert first.options == {"env": "Pendulum-v1", "online_steps": 40, "recipe": "iql_finetune"}
    assert spec.resources.max_concurrent == 2 and spec.resources.retries == 3


def test_dataset_axis_is_a_stratum_not_part_of_the_label() -> None:
    data = {"grid": {"dataset": ["d/a.npz", "minari:x/b-v0"]}, "run": {"recipe": "iql_finetune"}}
    spec = parse_sweep(data, source="s.toml")
    assert [t.name for t in spec.trials] == ["a", "b-v0"]
    assert {t.label for t in spec.trials} == {"iql_finetune"}


def test_random_search_is_reproducible_and_draws_in_bounds() -> None:
    data = {
        "sweep": {"search": "random", "num_samples": 5, "search_seed": 1},
        "grid": {"set.actor_lr": {"loguniform": [1e-5, 1e-3]}, "set.tau": [0.005, 0.01]},
        "run": {"recipe": "iql_finetune", "env": "Pendulum-v1"},
    }
    a, b = parse_sweep(data), parse_sweep(data)
    assert a.trials == b.trials and len(a.trials) == 5
    for t in a.trials:
        assert 1e-5 <= t.overrides["actor_lr"] <= 1e-3 and t.overrides["tau"] in (0.005, 0.01)


def test_run_command_is_hybridrl_run_with_every_option() -> None:
    trial = Trial(
        "t",
        {"recipe": "iql_finetune", "env": "Pendulum-v1", "num_envs": 2, "asynchronous": True},
        {"hidden_dims": [8, 8]},
    )
    cmd = run_command(trial, 3, Path("o/t/seed_3"))
    assert cmd[1:5] == ["-m", "hybridrl.cli", "run", "iql_finetune"]
    text = " ".join(cmd[5:])
    assert "--out o/t/seed_3 --seed 3 --no-progress --env Pendulum-v1 --num-envs 2" in text
    assert "--async-envs" in text and "--set hidden_dims=[8, 8]" in text


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"grid": {"recipe": ["iql_finetune", "nope"]}}, "recipe=nope", "unknown recipe 'nope'"),
        ({"run": {"env": "Pendulum-v1", "learning_rate": 1}}, "[run] learning_rate", "unknown"),
        ({"grid": {"recipe": []}}, "[grid] recipe", "empty axis"),
        ({"run": {"env": "Pendulum-v1", "set": {"nope": 1}}}, "", "has no field(s) nope"),
        ({"sweep": {"seeds": []}}, "[sweep] seeds", "non-empty"),
        ({"sweep": {"seed": [1]}}, "[sweep] seed", "unknown field"),
        ({"grids": {}}, "grids", "unknown table"),
        ({"resources": {"cpus": -1}}, "[resources] cpus", "non-negative"),
        ({"run": {"env": "Pendulum-v1", "num_envs": 0}}, "", "num_envs"),
        ({"grid": {"recipe": "iql_finetune"}}, "[grid] recipe", "must be a list"),
    ],
)
def test_bad_sweeps_are_refused_naming_file_and_field(change, where, message) -> None:
    data = {**GOOD, **change}
    with pytest.raises(HybridRLError) as info:
        parse_sweep(data, source="bad.toml")
    text = str(info.value)
    assert text.startswith("bad.toml: ") and where in text and message in text, text


def test_cli_refuses_a_bad_file_in_one_line_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[grid]\nrecipe = ["iql_finetune"]\n[run]\nenv = "Pendulum-v1"\nepochs = 3\n')
    proc = subprocess.run(
        [sys.executable, "-m", "hybridrl.cli", "sweep", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {bad}: [run] epochs: unknown field (a `hybridrl run` option or set.X)"
    )
    assert not (tmp_path / "o").exists()


def test_load_sweep_reads_toml(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        textwrap.dedent(
            """
            [sweep]
            seeds = [0]
            [grid]
            recipe = ["iql_finetune"]
            [run]
            env = "Pendulum-v1"
            """
        )
    )
    assert load_sweep(path).name == "s"
    with pytest.raises(HybridRLError, match="does not exist"):
        load_sweep(tmp_path / "missing.toml")


# A stand-in for `hybridrl run`: the first attempt SIGKILLs itself; the retry must come
# with --resume (and a run.json, as a run that checkpointed has), then it succeeds.
_FAKE = """
import json, os, signal, sys
run_dir = sys.argv[1]
os.makedirs(run_dir, exist_ok=True)
if "--resume" not in sys.argv:
    open(os.path.join(run_dir, "run.json"), "w").write("{}")
    os.kill(os.getpid(), signal.SIGKILL)
json.dump({"final_score": 1.5}, open(os.path.join(run_dir, "summary.json"), "w"))
"""


def test_a_killed_run_is_retried_with_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "t" / "seed_0"
    cmd = [sys.executable, "-c", _FAKE, str(run_dir)]
    r = run_with_retries(cmd, run_dir, retries=2, env={"X": "1"})
    assert r["returncode"] == 0 and r["attempts"] == 2
    assert r["summary"] == {"final_score": 1.5}
    log = (tmp_path / "t" / "seed_0.log").read_text()
    assert "# attempt 2:" in log and log.strip().endswith("--resume")


def test_an_ordinary_failure_is_not_retried_and_retries_are_bounded(tmp_path: Path) -> None:
    r = run_with_retries([sys.executable, "-c", "raise SystemExit(2)"], tmp_path / "a", 3)
    assert r["returncode"] == 2 and r["attempts"] == 1
    kill = f"import os, signal; os.kill(os.getpid(), signal.{'SIGKILL'})"
    r = run_with_retries([sys.executable, "-c", kill], tmp_path / "b", 1)
    assert r["returncode"] == -9 and r["attempts"] == 2
    assert os.path.exists(tmp_path / "b.log")
