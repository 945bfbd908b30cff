"""`run_seeds(..., vmap_seeds=True)` and `hybridrl run --seeds ... --vmap-seeds`: the offline
phases of several seeds as one vmapped program, each seed's run directory as a separate run's,
numbers equal to separate runs, resume (also from seeds killed at different checkpoints), and
the refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from hybridrl.cli import app
from hybridrl.data import save_dataset
from hybridrl.training import multi_seed
from hybridrl.training.checkpoint import load_checkpoint_entry
from hybridrl.training.executors import offline as offline_executor
from hybridrl.training.recipes import offline_recipe
from hybridrl.training.runner import CHECKPOINT, Runner, run
from hybridrl.types import HybridRLError

SEEDS = (0, 1, 2)
# 30 updates in chunks of 5; train records every 5, evaluations and checkpoints every 10
SETTINGS: dict[str, Any] = {
    "eval_episodes": 2,
    "offline_eval_interval": 10,
    "checkpoint_interval": 10,
    "log_interval": 5,
    "chunk_size": 5,
    "progress": False,
}
RTOL, ATOL = 1e-5, 1e-6  # tests/unit/test_seeds.py's: float reassociation in batched kernels
ROOT = Path(__file__).resolve().parents[2]


class _Killed(Exception):
    pass


def _recipe() -> Any:
    return offline_recipe("iql", updates=30).with_config(hidden_dims=(8,))


def _strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


def _records_close(a: list[dict[str, Any]], b: list[dict[str, Any]], rtol: float) -> None:
    """Same records (kinds, phases, steps, keys); numbers within ``rtol``."""
    a, b = _strip(a), _strip(b)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k, v in x.items():
            if isinstance(v, float):
                np.testing.assert_allclose(v, y[k], rtol=rtol, atol=ATOL, err_msg=k)
            else:
                assert v == y[k], k


def _states_close(a: Any, b: Any) -> None:
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def separate(pendulum_small, tmp_path_factory) -> dict[int, Any]:
    """Each seed run alone, as `run` does it."""
    root = tmp_path_factory.mktemp("separate")
    return {
        k: run(
            _recipe(),
            "Pendulum-v1",
            dataset=pendulum_small,
            run_dir=root / str(k),
            seed=k,
            **SETTINGS,
        )
        for k in SEEDS
    }


def _counting_seeds(calls: list[int]) -> Any:
    """``scan_updates_seeds`` that appends the number of seeds of each compiled call."""
    original = offline_executor.scan_updates_seeds

    def recording(update_fn, states, data, keys, **kw):
        calls.append(int(keys.shape[0]))
        return original(update_fn, states, data, keys, **kw)

    return recording


@pytest.fixture(scope="module")
def vmapped(pendulum_small, tmp_path_factory) -> tuple[Path, list[Any], list[str], list[int]]:
    """The seeds as one vmapped run, recording how many seeds each compiled call held."""
    root = tmp_path_factory.mktemp("vmapped")
    lines: list[str] = []
    calls: list[int] = []
    with pytest.MonkeyPatch.context() as m:
        m.setattr(offline_executor, "scan_updates_seeds", _counting_seeds(calls))
        m.setattr(offline_executor, "scan_updates", None)  # the per-seed path must not run
        results = multi_seed.run_seeds(
            _recipe(),
            "Pendulum-v1",
            seeds=SEEDS,
            dataset=pendulum_small,
            run_dir=root,
            vmap_seeds=True,
            echo=lines.append,
            **SETTINGS,
        )
    return root, results, lines, calls


def test_each_vmapped_seed_equals_its_separate_run(vmapped, separate):
    root, results, lines, calls = vmapped
    assert calls == [len(SEEDS)] * 6  # 30 updates in chunks of 5, all seeds in each call
    assert lines == [
        "--vmap-seeds: offline phase(s) 'offline' of seeds 0,1,2 run as one vmapped program"
    ]
    for k, result in zip(SEEDS, results, strict=True):
        alone = separate[k]
        assert result.run_dir == root / f"seed_{k}"
        _states_close(result.state, alone.state)
        # train metrics to the test's tolerance; scores are returns of slightly different
        # policies, so a little looser
        _records_close(result.records, alone.records, rtol=1e-4)
        assert sum(r["kind"] == "train" for r in result.records) == 6
        assert sum(r["kind"] == "eval" for r in result.records) == 3
        # the same files, run.json identical
        for name in ("run.json", "metrics.jsonl", "evaluations.csv", "summary.json", CHECKPOINT):
            assert (result.run_dir / name).exists(), name
        assert json.loads((result.run_dir / "run.json").read_text()) == json.loads(
            (alone.run_dir / "run.json").read_text()
        )
        lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
        assert _strip([json.loads(x) for x in lines]) == _strip(result.records)
        summary = json.loads((result.run_dir / "summary.json").read_text())
        assert summary["total_updates"] == 30 and summary["seed"] == k
        # the checkpoint holds the final state in the usual format
        stored, meta = load_checkpoint_entry(
            result.run_dir / CHECKPOINT, "state", lambda meta, state=alone.state: state
        )
        assert meta["counters"]["update"] == 30 and meta["counters"]["phase_index"] == 1
        _states_close(stored, result.state)
    # the seeds are not one seed three times
    kernels = [jax.tree_util.tree_leaves(r.state.actor.params)[0] for r in results]
    assert not np.allclose(kernels[0], kernels[1])


def test_a_vmapped_run_killed_between_seeds_resumes_to_the_uninterrupted_one(
    vmapped, pendulum_small, tmp_path
):
    """Killed while writing the checkpoints at update 20: seed 0 has written its own, seeds
    1 and 2 stand at update 10. The resume vmaps each group from where it stands."""
    _, reference, _, _ = vmapped
    original = Runner._checkpoint
    written: list[int] = []

    def killing(self: Runner, learner: Any, key: Any, c: Any, logger: Any) -> None:
        if len(written) == len(SEEDS) + 1:  # after update 10 of every seed, 20 of seed 0
            raise _Killed
        original(self, learner, key, c, logger)
        written.append(self.settings.seed)

    kw = {"seeds": SEEDS, "dataset": pendulum_small, "run_dir": tmp_path, "vmap_seeds": True}
    with pytest.MonkeyPatch.context() as m, pytest.raises(_Killed):
        m.setattr(Runner, "_checkpoint", killing)
        multi_seed.run_seeds(_recipe(), "Pendulum-v1", **kw, **SETTINGS)
    assert written == [0, 1, 2, 0]
    for k in SEEDS:  # nothing half-written: no summary, every checkpoint whole
        assert not (tmp_path / f"seed_{k}" / "summary.json").exists()
        assert not list((tmp_path / f"seed_{k}").rglob("*.tmp*"))

    lines: list[str] = []
    calls: list[int] = []
    with pytest.MonkeyPatch.context() as m:
        m.setattr(offline_executor, "scan_updates_seeds", _counting_seeds(calls))
        resumed = multi_seed.run_seeds(
            _recipe(), "Pendulum-v1", **kw, resume=True, echo=lines.append, **SETTINGS
        )
    assert calls == [1, 1, 2, 2, 2, 2]  # seed 0 from 20, seeds 1 and 2 together from 10
    assert [line.split(": ", 1)[1] for line in lines[:3]] == [
        "resumed from the checkpoint at env step 0, update 20 (phase 1/1 'offline', 20/30 updates)",
        "resumed from the checkpoint at env step 0, update 10 (phase 1/1 'offline', 10/30 updates)",
        "resumed from the checkpoint at env step 0, update 10 (phase 1/1 'offline', 10/30 updates)",
    ]
    assert "of seeds 0,1,2 run as one vmapped program" in lines[3]
    for a, b in zip(resumed, reference, strict=True):
        _states_close(a.state, b.state)
        _records_close(a.records, b.records, rtol=1e-4)

    # resuming the finished set does no work and says so
    again: list[str] = []
    done = multi_seed.run_seeds(
        _recipe(), "Pendulum-v1", **kw, resume=True, echo=again.append, **SETTINGS
    )
    assert again[-1] == (
        "--vmap-seeds: every seed is past the offline phase(s) 'offline': nothing to vmap"
    )
    assert [r.summary["final_score"] for r in done] == [r.summary["final_score"] for r in resumed]


@pytest.mark.filterwarnings("ignore:checkpoint_interval")
def test_cli_vmap_seeds_offline_then_online_per_seed(pendulum_small, tmp_path):
    data = tmp_path / "p.npz"
    save_dataset(pendulum_small, data)
    out = tmp_path / "runs"
    args = [
        "run",
        "iql_finetune",
        "--dataset",
        str(data),
        "--out",
        str(out),
        "--seeds",
        "0,1",
        "--vmap-seeds",
        "--offline-updates",
        "20",
        "--online-steps",
        "40",
        "--set",
        "hidden_dims=[8]",
        "--eval-interval",
        "20",
        "--eval-episodes",
        "2",
        "--offline-eval-interval",
        "10",
        "--checkpoint-interval",
        "20",
        "--log-interval",
        "10",
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (
        "--vmap-seeds: offline phase(s) 'pretrain' of seeds 0,1 run as one vmapped program; "
        "phases 'finetune' (online) run per seed, one seed after another (not vmapped)"
    ) in result.stderr
    first, second = result.stdout.split("run directory: ")[:2]
    summaries = [json.loads(first), json.loads(second.split("\n", 1)[1])]
    assert [s["seed"] for s in summaries] == [0, 1]
    assert all(s["total_env_steps"] == 40 and s["total_updates"] == 60 for s in summaries)
    for k in (0, 1):
        records = [
            json.loads(x) for x in (out / f"seed_{k}/metrics.jsonl").read_text().splitlines()
        ]
        assert {r["phase"] for r in records if r["kind"] == "train"} == {"pretrain", "finetune"}
    # the online phase continued from the vmapped state: seed 1 as the same run alone
    alone = [*args[:4], "--out", str(tmp_path / "alone"), *args[9:], "--seed", "1"]
    assert "--seeds" not in alone and "--vmap-seeds" not in alone
    single = CliRunner().invoke(app, alone, catch_exceptions=False)
    assert single.exit_code == 0, single.output
    read = lambda path: [json.loads(x) for x in path.read_text().splitlines()]  # noqa: E731
    _records_close(
        read(out / "seed_1/metrics.jsonl"), read(tmp_path / "alone/metrics.jsonl"), rtol=1e-4
    )
    # a finished set resumes with no work; the report reads the seeds' directories
    again = CliRunner().invoke(app, [*args, "--resume"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "every seed is past the offline phase(s) 'pretrain': nothing to vmap" in again.stderr
    assert (
        json.loads(again.stdout.split("run dir")[0])["final_score"] == (summaries[0]["final_score"])
    )
    report = CliRunner().invoke(app, ["report", str(out), "--out", str(tmp_path / "report")])
    assert report.exit_code == 0 and "iql_finetune" in report.output


def test_what_cannot_be_vmapped_is_refused_in_one_line(pendulum_small, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hybridrl.cli",
            "run",
            "ppo",
            "--env",
            "Pendulum-v1",
            "--out",
            str(tmp_path / "ppo"),
            "--seeds",
            "0,1",
            "--vmap-seeds",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: --vmap-seeds vmaps a recipe's leading offline phases, and recipe 'ppo' "
        "starts with no offline updates (phases: 'online' (on_policy)); drop --vmap-seeds to "
        "run the seeds one after another"
    ], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "ppo").exists()

    cli = CliRunner()
    no_seeds = cli.invoke(
        app,
        ["run", "offline:iql", "--env", "Pendulum-v1", "-o", str(tmp_path / "b"), "--vmap-seeds"],
    )
    assert isinstance(no_seeds.exception, HybridRLError)
    assert str(no_seeds.exception) == "--vmap-seeds needs --seeds, e.g. --seeds 0,1,2,3,4"
    online_only = cli.invoke(
        app,
        [
            "run",
            "sac",
            "--env",
            "Pendulum-v1",
            "-o",
            str(tmp_path / "c"),
            "--seeds",
            "0,1",
            "--vmap-seeds",
        ],
    )
    assert isinstance(online_only.exception, HybridRLError)
    assert "recipe 'sac' starts with no offline updates" in str(online_only.exception)
    with pytest.raises(HybridRLError, match="cannot log to W&B"):
        multi_seed.run_seeds(
            _recipe(),
            "Pendulum-v1",
            seeds=[0, 1],
            dataset=pendulum_small,
            run_dir=tmp_path / "d",
            vmap_seeds=True,
            wandb_project="p",
        )
    with pytest.raises(HybridRLError, match="each seed once"):
        multi_seed.run_seeds(
            _recipe(),
            "Pendulum-v1",
            seeds=[0, 0],
            dataset=pendulum_small,
            run_dir=tmp_path / "e",
            vmap_seeds=True,
        )
    for name in "bcde":  # nothing left behind
        assert not (tmp_path / name).exists()
