"""Sweeps on a real local Ray instance (2 CPUs): end to end with the report, a run process
SIGKILLed mid-run and retried to the identical result, and a SIGKILLed driver resumed.

Each sweep runs 1 recipe x 2 seeds of tiny Pendulum runs; the reference sweep is run once per
module and the interrupted sweeps must reproduce its files exactly (wall times aside).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # each sweep starts Ray and 2 run processes: ~1 minute

SWEEP = """
[sweep]
seeds = [0, 1]
[grid]
recipe = ["iql_finetune"]
[run]
dataset = "{data}"
offline_updates = 40
online_steps = 400
eval_interval = 100
eval_episodes = 1
offline_eval_interval = 20
checkpoint_interval = 40
log_interval = 20
chunk_size = 20
set = {{ hidden_dims = [8] }}
[resources]
cpus = 1
max_concurrent = 2
"""
RUNS = ("iql_finetune/seed_0", "iql_finetune/seed_1")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hybridrl.cli", *args]


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": src if not path else f"{src}{os.pathsep}{path}"}


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    data = root / "p.npz"
    subprocess.run(
        _cli(
            "collect", "Pendulum-v1", "--policy", "pendulum_swingup", "--action-noise", "0.3",
            "--steps", "600", "--ref-episodes", "2", "--expert-return", "-150",
            "--out", str(data),
        ),
        check=True, env=_env(), capture_output=True,
    )  # fmt: skip
    path = root / "s.toml"
    path.write_text(SWEEP.format(data=data))
    return path


def _sweep(file: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = _cli("sweep", str(file), "--out", str(out), "--num-cpus", "2", *extra)
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=False)


def _files(run_dir: Path) -> tuple[str, dict]:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("wall_time_s")
    return (run_dir / "evaluations.csv").read_text(), summary


@pytest.fixture(scope="module")
def reference(sweep_file: Path) -> Path:
    out = sweep_file.parent / "reference"
    proc = _sweep(sweep_file, out)
    assert proc.returncode == 0, proc.stderr
    return out


def _run_pids(run_dir: Path) -> list[int]:
    """The `hybridrl run` processes writing to ``run_dir``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"run" in cmdline and str(run_dir).encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def _wait_for(predicate, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sweep_end_to_end_writes_runs_results_and_report(reference: Path) -> None:
    for run in RUNS:
        assert (reference / run / "summary.json").exists()
    results = json.loads((reference / "results.json").read_text())
    assert [r["status"] for r in results] == ["done", "done"]
    assert (reference / "report" / "report.md").exists()
    assert "iql_finetune" in (reference / "report" / "report.md").read_text()


def test_a_killed_run_is_retried_to_the_identical_result(sweep_file: Path, reference: Path):
    out = sweep_file.parent / "killed_run"
    victim = out / RUNS[1]
    driver = subprocess.Popen(
        _cli("sweep", str(sweep_file), "--out", str(out), "--num-cpus", "2"),
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # kill after its first checkpoint, before it finishes
    _wait_for(lambda: (victim / "checkpoints" / "latest.ckpt").exists())
    assert not (victim / "summary.json").exists()
    pids = _run_pids(victim)
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    _, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, err
    log = (out / f"{RUNS[1]}.log").read_text()
    assert "# attempt 2:" in log and "resumed from the checkpoint" in log
    for run in RUNS:
        assert _files(out / run) == _files(reference / run)


def test_a_killed_driver_is_resumed_to_the_identical_result(sweep_file: Path, reference: Path):
    out = sweep_file.parent / "killed_driver"
    driver = subprocess.Popen(
        _cli("sweep", str(sweep_file), "--out", str(out), "--num-cpus", "2"),
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_for(lambda: any((out / r / "checkpoints" / "latest.ckpt").exists() for r in RUNS))
    driver.kill()
    driver.wait()
    # the local Ray instance and its run processes go with the driver (no orphan keeps a lock)
    _wait_for(lambda: not any(_run_pids(out / r) for r in RUNS), timeout=60)
    again = _sweep(sweep_file, out)
    assert again.returncode == 2 and "pass --resume" in again.stderr
    resumed = _sweep(sweep_file, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "2/2 done" in resumed.stderr
    for run in RUNS:
        assert _files(out / run) == _files(reference / run)
    assert (out / "report" / "summary.json").exists()
