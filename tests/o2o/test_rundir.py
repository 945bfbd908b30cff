"""The run directory: one process per run, nothing half-made, nothing rewritten by a failed
resume, Ctrl-C and --resume that say where the run stands, and evaluations in the dip window."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hybridrl import cli
from hybridrl.data import load_dataset
from hybridrl.training import rundir as rundir_module
from hybridrl.training.recipes import get_recipe
from hybridrl.training.rundir import LOCK_NAME, RunDirectory, RunDirectoryBusy, RunInterrupted
from hybridrl.training.runner import CHECKPOINT, Runner, run
from hybridrl.types import HybridRLError

FAST = {
    "num_envs": 2,
    "eval_episodes": 1,
    "eval_interval": 1000,
    "offline_eval_interval": 1000,
    "checkpoint_interval": 400,
    "log_interval": 1,
    "chunk_size": 4,
    "progress": False,
}
HOLD = (
    "import sys, time\n"
    "from hybridrl.training.rundir import RunDirectory\n"
    "d = RunDirectory(sys.argv[1]).__enter__()\n"
    "print('held', flush=True)\n"
    "time.sleep(120)\n"
)


def _recipe(online_steps: int = 8):
    return (
        get_recipe("iql_finetune")
        .with_budget(offline_updates=4, online_steps=online_steps)
        .with_config(hidden_dims=(8,))
    )


def _hold_in_child(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


# ------------------------------------------------------------------------------ the lock
def test_a_second_process_is_refused_and_a_killed_ones_lock_is_taken_over(tmp_path):
    child = _hold_in_child(tmp_path / "run")
    try:
        with pytest.raises(RunDirectoryBusy, match=rf"in use by process {child.pid} on"):
            RunDirectory(tmp_path / "run").__enter__()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert (tmp_path / "run" / LOCK_NAME).exists()  # the killed holder's lock stays behind
    with RunDirectory(tmp_path / "run"):  # ... and is taken over
        held = json.loads((tmp_path / "run" / LOCK_NAME).read_text())
        assert held["pid"] == os.getpid()
    assert not (tmp_path / "run" / LOCK_NAME).exists()  # released with the run


def test_the_check_and_the_creation_are_one_step_under_the_lock(tmp_path):
    # Two starts in the same directory: the second is refused while the first holds it,
    # even within one process (flock locks belong to open files, not processes).
    with RunDirectory(tmp_path / "run"), pytest.raises(RunDirectoryBusy):
        RunDirectory(tmp_path / "run").__enter__()


def test_without_flock_a_dead_holders_pid_file_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(RunDirectory, "_flock", lambda self, fh: False)  # e.g. NFS
    (tmp_path / "run").mkdir()
    lock = tmp_path / "run" / LOCK_NAME
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname()}))
        with pytest.raises(RunDirectoryBusy, match=str(sleeper.pid)):
            RunDirectory(tmp_path / "run").__enter__()
    finally:
        sleeper.kill()
        sleeper.wait()
    with RunDirectory(tmp_path / "run"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    # another host's lock cannot be judged from here: it is respected
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    with pytest.raises(RunDirectoryBusy, match=r"elsewhere\.example"):
        RunDirectory(tmp_path / "run").__enter__()
    assert rundir_module._alive({"pid": 1, "host": "elsewhere.example"})


# ------------------------------------------------------------------- nothing half-made
def test_failures_before_the_first_step_leave_no_run_directory(
    pendulum_small, tmp_path, monkeypatch
):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(HybridRLError, match=r"run directory .*a-file/run: cannot write"):
        run(_recipe(), "Pendulum-v1", dataset=pendulum_small, run_dir=blocker / "run", **FAST)

    def no_env(self, num, asynchronous=False):
        raise HybridRLError("could not make environment 'Pendulum-v1': no display")

    monkeypatch.setattr(Runner, "_make_envs", no_env)
    fresh = tmp_path / "fresh"
    with pytest.raises(HybridRLError, match="could not make"):
        run(_recipe(), "Pendulum-v1", dataset=pendulum_small, run_dir=fresh, **FAST)
    assert not fresh.exists()
    # a directory that existed keeps what it held, and only that
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(HybridRLError, match="could not make"):
        run(_recipe(), "Pendulum-v1", dataset=pendulum_small, run_dir=mine, **FAST)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # --resume of nothing creates nothing
    with pytest.raises(HybridRLError, match="no run to resume"):
        run(_recipe(), "Pendulum-v1", dataset=pendulum_small, run_dir=fresh, resume=True, **FAST)
    assert not fresh.exists()


def test_a_failed_resume_rewrites_nothing(pendulum_small, tmp_path):
    out = tmp_path / "run"
    first = run(_recipe(), "Pendulum-v1", dataset=pendulum_small, run_dir=out, **FAST)
    ckpt = out / CHECKPOINT
    good = ckpt.read_bytes()
    ckpt.write_bytes(good[:200])  # a damaged checkpoint
    before = _files(out)
    with pytest.raises(HybridRLError, match=r"latest\.ckpt"):
        run(_recipe(), "Pendulum-v1", dataset=pendulum_small, run_dir=out, resume=True, **FAST)
    # ... also when the resume asks for a longer budget (it used to rewrite run.json first,
    # after which the original command was refused as "another configuration")
    with pytest.raises(HybridRLError, match=r"latest\.ckpt"):
        run(_recipe(16), "Pendulum-v1", dataset=pendulum_small, run_dir=out, resume=True, **FAST)
    assert _files(out) == before
    ckpt.write_bytes(good)
    again = run(_recipe(), "Pendulum-v1", dataset=pendulum_small, run_dir=out, resume=True, **FAST)
    assert again.summary["final_score"] == first.summary["final_score"]


# ------------------------------------------------------------- Ctrl-C and --resume lines
def _interrupt_on_evaluation(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    from hybridrl.training.evaluate import Evaluator

    original = Evaluator.evaluate
    calls = []

    def evaluate(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "evaluate", evaluate)


def test_ctrl_c_says_where_the_run_stands_and_resume_says_where_it_continues(
    pendulum_small, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_on_evaluation(m, at=2)  # the first evaluation after pretraining
        with pytest.raises(RunInterrupted) as caught:
            run(_recipe(), "Pendulum-v1", dataset=pendulum_small, run_dir=out, **FAST)
    message = str(caught.value)
    assert isinstance(caught.value, KeyboardInterrupt) and caught.value.run_dir == out
    # the second evaluation is the dip window's, at env step 2 (0.25 x 8 steps)
    assert message == (
        f"{out}: interrupted at env step 2, update 6 (phase 2/2 'finetune', 2/8 env steps); "
        "the last checkpoint is at env step 0, update 4 (phase 2/2 'finetune', 0/8 env steps)"
    )
    assert not (out / LOCK_NAME).exists()
    lines: list[str] = []
    resume = {"dataset": pendulum_small, "run_dir": out, "resume": True, "echo": lines.append}
    run(_recipe(), "Pendulum-v1", **resume, **FAST)
    assert lines == [
        f"{out}: resumed from the checkpoint at env step 0, update 4 (phase 2/2 'finetune', "
        "0/8 env steps)"
    ]
    # killed before its first checkpoint: the resume says it starts over
    (out / CHECKPOINT).unlink()
    lines.clear()
    run(_recipe(), "Pendulum-v1", **resume, **FAST)
    assert lines == [
        f"{out}: no checkpoint yet (the run stopped before its first one); starting over"
    ]


def test_ctrl_c_in_the_cli_prints_the_command_that_resumes(
    pendulum_small, tmp_path, monkeypatch, capfd
):
    from hybridrl.data import save_dataset

    data = tmp_path / "data.npz"
    save_dataset(pendulum_small, data)
    out = tmp_path / "run"
    argv = ["hybridrl", "run", "iql_finetune", "--dataset", str(data), "--out", str(out),
            "--offline-updates", "4", "--online-steps", "8", "--set", "hidden_dims=[8]",
            "--eval-episodes", "1", "--no-progress"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    _interrupt_on_evaluation(monkeypatch, at=2)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 130
    err = capfd.readouterr().err
    assert "interrupted at env step" in err
    assert f"resume with: hybridrl run iql_finetune --dataset {data} --out {out}" in err
    assert err.rstrip().endswith("--no-progress --resume")


# ----------------------------------------------------------------- the dip window
def test_the_dip_window_always_holds_an_evaluation(pendulum_small, tmp_path):
    # 40 online steps, evaluations every 1000: only the end of fine-tuning (step 40) would be
    # evaluated, after the window (steps 0 to 10); the runner adds one at the window's end.
    result = run(_recipe(40), "Pendulum-v1", dataset=pendulum_small, run_dir=tmp_path, **FAST)
    steps = [r["env_step"] for r in result.records if r["kind"] == "eval"]
    assert steps == [0, 10, 40]
    assert result.summary["dip"] is not None
    assert result.summary["worst_step"] in (10, 40)


def test_a_dip_window_too_short_for_any_evaluation_is_warned_about(pendulum_small, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(
            _recipe(8),
            "Pendulum-v1",
            dataset=pendulum_small,
            run_dir=tmp_path,
            **{**FAST, "dip_fraction": 0.1},
        )
    assert any("no evaluation can fall in the dip window" in str(w.message) for w in caught)
    assert result.summary["dip"] is None


def test_resume_is_refused_while_the_run_still_goes(tmp_path):
    """The issue's case: `--resume` started while the run is going used to be accepted."""
    from tests.o2o import resume_job

    out = tmp_path / "run"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.o2o.resume_job", str(out)], cwd=root, env=env
    )
    try:
        deadline = time.time() + 120
        while not (out / "run.json").exists():
            assert child.poll() is None and time.time() < deadline
            time.sleep(0.05)
        with pytest.raises(RunDirectoryBusy, match=rf"in use by process {child.pid}"):
            resume_job.main(out, resume=True)
    finally:
        child.kill()
        child.wait()


def test_an_empty_dataset_is_one_line_and_no_run_directory(tmp_path):
    empty = tmp_path / "empty.npz"
    np.savez(
        empty,
        observations=np.zeros((0, 3), np.float32),
        actions=np.zeros((0, 1), np.float32),
        rewards=np.zeros(0, np.float32),
        terminals=np.zeros(0, bool),
        timeouts=np.zeros(0, bool),
    )
    with pytest.raises(HybridRLError, match=rf"{empty}.*no transitions"):
        load_dataset(empty)
    out = tmp_path / "run"
    args = ["run", "offline:bc", "--env", "Pendulum-v1", "--dataset", str(empty), "--out", str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warnings on the way
        result = CliRunner().invoke(cli.app, args)
    assert result.exit_code != 0 and not out.exists()
    assert isinstance(result.exception, HybridRLError)


def test_a_refused_process_deletes_nothing_of_the_run_that_holds_the_directory(
    tmp_path, monkeypatch
):
    # Another process takes the directory between our mkdir and our lock, and writes in it:
    # being refused, we must leave all of it (the directory included) alone.
    target = tmp_path / "new"
    holder = RunDirectory(target)
    original = RunDirectory._lock

    def racing(self):
        if self is not holder:
            holder.__enter__()
            (target / "checkpoints").mkdir()
            (target / "checkpoints" / "latest.ckpt").write_text("theirs")
        original(self)

    monkeypatch.setattr(RunDirectory, "_lock", racing)
    with pytest.raises(RunDirectoryBusy):
        RunDirectory(target).__enter__()
    assert (target / "checkpoints" / "latest.ckpt").read_text() == "theirs"
    holder.__exit__(None, None, None)


def test_the_dip_evaluation_waits_for_the_first_update():
    from hybridrl.training.context import RunSettings
    from hybridrl.training.phases import Offline, Online
    from hybridrl.training.summary import dip_evaluation_step

    def schedule(update_after: int, eval_interval: int = 1000):
        phases = (Offline(updates=10), Online(steps=40, update_after=update_after))
        settings = RunSettings("Pendulum-v1", num_envs=2, eval_interval=eval_interval)
        return dip_evaluation_step(phases, [(0, 0), (0, 40)], 0, 0, settings)

    # window (0, 10]: only the phase end (40) is on the regular schedule
    assert schedule(update_after=4) == (10, True)  # an extra evaluation at the window's end
    assert schedule(update_after=20) == (None, False)  # no update inside the window at all
    # evaluations every 8 steps: 8 is inside, once updates began before it
    assert schedule(update_after=4, eval_interval=8) == (None, True)
    assert schedule(update_after=8, eval_interval=8) == (10, True)
