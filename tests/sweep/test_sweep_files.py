"""The sweep files under benchmarks/sweeps/ (they replace benchmarks/suite_validation.py and
benchmarks/side_by_side.py): each validates without its datasets, and the files that
reproduce docs/results.md's tables build exactly the recipes and run settings the scripts
built. Then the d3rlpy runner: validation, its command, and its trial process end to end with
a stand-in for d3rlpy's Python (no d3rlpy needed)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hybridrl.data.dataset import Dataset
from hybridrl.data.io import save_npz
from hybridrl.sweep import Trial, load_sweep, parse_sweep, run_command
from hybridrl.sweep.d3rlpy_trial import PYTHON_VARIABLE
from hybridrl.sweep.d3rlpy_trial import main as d3rlpy_trial_main
from hybridrl.training.recipes import get_recipe, offline_recipe
from hybridrl.types import HybridRLError
from tests.conftest import make_chain_dataset

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "benchmarks" / "sweeps").glob("*.toml"))
CLI = (sys.executable, "-m", "hybridrl.cli")
BUDGET = ("--offline-updates", "20", "--offline-eval-interval", "10", "--hidden-dims", "8,8")


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # recipe files in the sweep files are relative to the repository


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_benchmark_sweep_file_validates(path: Path) -> None:
    spec = load_sweep(path)  # the suite datasets need not exist: they load at run time
    assert spec.trials and len({t.name for t in spec.trials}) == len(spec.trials)
    assert not any(t.name.endswith("-2") for t in spec.trials)  # no name collided


def test_the_cli_check_passes_on_a_sweep_file() -> None:
    proc = subprocess.run(
        [*CLI, "sweep", "benchmarks/sweeps/offline_suite.toml", "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "36 trials x 3 seeds: ok"
    assert "iql-hopper-medium-replay-v0/seed_2" in proc.stdout


def _effective(trial: Trial) -> tuple[object, dict[str, object]]:
    o = trial.options
    budget = ("offline_updates", "warmup_steps", "online_steps", "random_steps")
    recipe = get_recipe(o["recipe"]).with_budget(**{k: o[k] for k in budget if k in o})
    keys = ("eval_interval", "offline_eval_interval", "checkpoint_interval", "eval_episodes")
    return recipe, {k: o.get(k) for k in keys}


def test_results_offline_files_build_the_recipes_suite_validation_built() -> None:
    # suite_validation.py offline --recipes bc,td3_bc,iql --updates 10000 --eval-interval 5000
    # (--reward-normalization none, and return_range for the scaled IQL table), and cql.
    settings = {
        "eval_interval": 5000,
        "offline_eval_interval": 5000,
        "checkpoint_interval": 50_000,
        "eval_episodes": 10,
    }
    wanted = [
        offline_recipe(agent, updates=10_000, reward_normalization="none")
        for agent in ("bc", "td3_bc", "iql")
    ]
    spec = load_sweep("benchmarks/sweeps/results_offline_10k.toml")
    built = {t.label: _effective(t) for t in spec.trials}  # label: the recipe's name
    assert sorted(built) == sorted(r.name for r in wanted)
    for recipe in wanted:
        assert built[recipe.name] == (recipe, settings)
    assert all(built[t.label] == _effective(t) for t in spec.trials)
    assert len({t.options["dataset"] for t in spec.trials}) == 9 and spec.seeds == (0, 1)
    for name, recipe, seeds in (
        ("cql", offline_recipe("cql", updates=10_000), (0,)),
        ("iql_scaled", offline_recipe("iql", 10_000, reward_normalization="return_range"), (0, 1)),
    ):
        other = load_sweep(f"benchmarks/sweeps/results_offline_{name}_10k.toml")
        assert all(_effective(t) == (recipe, settings) for t in other.trials)
        assert len(other.trials) == 9 and other.seeds == seeds
        assert {t.options["dataset"] for t in other.trials} == {
            t.options["dataset"] for t in spec.trials
        }


def test_results_o2o_file_builds_the_budgets_of_section_5() -> None:
    spec = load_sweep("benchmarks/sweeps/results_o2o_short.toml")
    for trial in spec.trials:
        recipe, s = _effective(trial)
        name = trial.options["recipe"]
        assert recipe == get_recipe(name).with_budget(
            offline_updates=2000, warmup_steps=1000, online_steps=3000, random_steps=1000
        )
        assert s == {
            "eval_interval": 500,
            "offline_eval_interval": 500,
            "checkpoint_interval": 50_000,
            "eval_episodes": 10,
        }
    assert len(spec.trials) == 12 and spec.seeds == (0,)


def test_suite_dataset_ids_name_trials_by_suite_name() -> None:
    data = {
        "grid": {"dataset": ["minari:hybridrl/hopper/medium-v0", "minari:x/walker2d/medium-v0"]},
        "run": {"recipe": "offline:iql"},
    }
    spec = parse_sweep(data)
    assert [t.name for t in spec.trials] == ["hopper-medium-v0", "walker2d-medium-v0"]
    assert {t.label for t in spec.trials} == {"iql_offline"}  # the recipe's own name


# ------------------------------------------------------------------------ the d3rlpy runner
D3 = {
    "grid": {"runner": ["hybridrl", "d3rlpy"], "recipe": ["offline:iql", "offline:td3_bc"]},
    "run": {"dataset": "d/x.npz", "offline_updates": 10, "set": {"hidden_dims": [8]}},
}


def test_runner_axis_names_and_labels_trials() -> None:
    spec = parse_sweep(D3)
    assert [t.name for t in spec.trials] == [
        "hybridrl-iql",
        "hybridrl-td3_bc",
        "d3rlpy-iql",
        "d3rlpy-td3_bc",
    ]
    assert spec.trials[2].label == "d3rlpy-iql_offline"
    fixed = {"run": {**D3["run"], "runner": "d3rlpy", "recipe": "offline:bc"}}
    assert parse_sweep(fixed).trials[0].label == "d3rlpy-bc_offline"


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"runner": ["hybridrl", "torch"]}, "[grid] runner", "unknown runner 'torch'"),
        ({"recipe": ["iql_finetune"]}, "runner=d3rlpy", "offline training only"),
        ({"recipe": ["offline:awac"]}, "runner=d3rlpy", "agent 'awac' has no d3rlpy"),
        ({"set.actor_lr": [1e-4]}, "runner=d3rlpy", "set.actor_lr: only hidden_dims"),
        (
            {"recipe": ["benchmarks/sweeps/recipes/iql_offline_aw.toml"]},
            "runner=d3rlpy",
            "samples with 'advantage'; d3rlpy's runs sample uniformly",
        ),
    ],
)
def test_bad_d3rlpy_trials_are_refused_naming_file_and_field(change, where, message) -> None:
    data = {"grid": {**D3["grid"], **change}, "run": D3["run"]}
    with pytest.raises(HybridRLError) as info:
        parse_sweep(data, source="bad.toml")
    text = str(info.value)
    assert text.startswith("bad.toml: ") and where in text and message in text, text


def test_cli_refuses_a_bad_runner_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[run]\nrecipe = "offline:iql"\nenv = "Pendulum-v1"\nrunner = "sb3"\n')
    proc = subprocess.run(
        [*CLI, "sweep", str(bad), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {bad}: [run] runner: unknown runner 'sb3'; one of hybridrl, d3rlpy"
    )


def test_run_command_of_a_d3rlpy_trial_is_the_trial_process() -> None:
    spec = parse_sweep({**D3, "run": {**D3["run"], "offline_eval_interval": 5, "num_envs": 2}})
    cmd = run_command(spec.trials[2], 1, Path("o/d3rlpy-iql/seed_1"))
    assert cmd[1:4] == ["-m", "hybridrl.sweep.d3rlpy_trial", "offline:iql"]
    text = " ".join(cmd[4:])
    assert text == (
        "--dataset d/x.npz --offline-updates 10 --offline-eval-interval 5 --hidden-dims 8 "
        "--out o/d3rlpy-iql/seed_1 --seed 1"
    )  # num_envs shapes hybridrl's execution only
    assert "--runner" not in run_command(spec.trials[0], 1, Path("o"))


# A stand-in for d3rlpy's Python: records how bench_d3rlpy.py was called and the rewards it
# was given, and prints what `bench_d3rlpy.py train` prints.
FAKE_D3RLPY = """#!{python}
import json, sys
import numpy as np
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[4:] if "=" in a)
flags = [a for a in sys.argv[4:] if "=" not in a]
rewards = np.load(args["data"])["rewards"].tolist()
json.dump({{"argv": sys.argv[1:], "args": args, "flags": flags, "rewards": rewards}},
          open({log!r}, "w"))
steps, every = int(args["steps"]), int(args["eval-interval"])
evals = [{{"update": u, "return_mean": 5.0, "return_std": 0.0, "time_s": 0.1}}
         for u in range(every, steps + 1, every)]
print("loading...")
print(json.dumps({{"d3rlpy_version": "fake", "torch": "none", "device": "cpu",
                  "evaluations": evals, "train_time_s": 0.2, "wall_time_s": 0.3}}))
"""


@pytest.fixture
def fake_d3rlpy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "fake_call.json"
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_D3RLPY.format(python=sys.executable, log=str(log)))
    fake.chmod(0o755)
    monkeypatch.setenv(PYTHON_VARIABLE, str(fake))
    return log


def _dataset(tmp_path: Path) -> tuple[Path, Dataset]:
    ds = make_chain_dataset(episode_rewards=(1.0, 2.0, 3.0))  # returns 3, 8, 6: spread 5
    ds = Dataset.create(ds.transitions, dataclasses.replace(ds.metadata, env_id="Chain-v0"))
    path = tmp_path / "chain.npz"
    save_npz(ds, path)
    return path, ds


def test_d3rlpy_trial_writes_a_run_directory_reports_read(tmp_path: Path, fake_d3rlpy) -> None:
    data, ds = _dataset(tmp_path)
    out = tmp_path / "run"
    recipe = "benchmarks/sweeps/recipes/iql_offline_rn.toml"  # rewards x 1000 / 5
    d3rlpy_trial_main([recipe, "--out", str(out), "--seed", "3", "--dataset", str(data), *BUDGET])
    call = json.loads(fake_d3rlpy.read_text())
    assert call["argv"][0] == "-P" and call["argv"][1].endswith("bench_d3rlpy.py")
    assert call["argv"][2] == "train"
    args = call["args"]
    assert (args["algo"], args["env"], args["steps"], args["eval-interval"]) == (
        "iql",
        "Chain-v0",
        "20",
        "10",
    )
    assert (args["hidden"], args["batch-size"], args["seed"]) == ("8,8", "256", "3")
    assert call["flags"] == ["--normalize-observations"]  # IQL's recipe standardises
    np.testing.assert_allclose(call["rewards"], 200.0 * np.asarray(ds.transitions.rewards))
    assert not (out / "d3rlpy_data.npz").exists()

    summary = json.loads((out / "summary.json").read_text())
    assert summary["name"] == "d3rlpy_iql" and summary["task"] == "chain"
    assert summary["final_score"] == pytest.approx(75.0)  # 100 * (5 - -10) / (10 - -10)
    assert summary["total_updates"] == 20 and summary["seed"] == 3
    from hybridrl.evaluation.report import load_runs, summarize

    rows = summarize(load_runs([tmp_path]))
    assert [(r["recipe"], r["n_runs"]) for r in rows] == [("d3rlpy_iql", 1)]
    assert rows[0]["final_score"]["iqm"] == pytest.approx(75.0)


def test_d3rlpy_trial_refuses_what_d3rlpy_cannot_run(tmp_path: Path, fake_d3rlpy) -> None:
    data, _ = _dataset(tmp_path)
    with pytest.raises(SystemExit) as info:
        d3rlpy_trial_main(["offline:sac", "--out", str(tmp_path / "r"), "--dataset", str(data)])
    assert info.value.code == 2


def test_a_sweep_with_d3rlpy_trials_needs_d3rlpy_before_ray_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hybridrl.sweep import run_sweep

    monkeypatch.setenv(PYTHON_VARIABLE, str(tmp_path / "missing-python"))
    monkeypatch.setattr("hybridrl.bench_d3rlpy.SCRIPT", tmp_path / "a" / "b" / "c.py")
    pytest.importorskip("ray")
    with pytest.raises(HybridRLError, match="runner d3rlpy needs a Python with d3rlpy"):
        run_sweep(parse_sweep(D3, source="s.toml"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_sweep_with_missing_datasets_is_refused_before_ray_starts(tmp_path: Path) -> None:
    from hybridrl.sweep import run_sweep

    pytest.importorskip("ray")
    with pytest.raises(HybridRLError) as info:
        run_sweep("benchmarks/sweeps/results_o2o_short.toml", tmp_path / "out")
    text = str(info.value)  # the test's own empty Minari store (conftest)
    assert text.startswith("benchmarks/sweeps/results_o2o_short.toml: datasets missing: ")
    assert "(hybridrl datasets build pointmaze-umaze-v0)" in text
    assert not (tmp_path / "out").exists()


SWEEP = """
[sweep]
seeds = [0, 1]
[grid]
runner = ["d3rlpy"]
recipe = ["offline:iql", "offline:cql"]
[run]
dataset = "{data}"
offline_updates = 20
offline_eval_interval = 10
[resources]
cpus = 1
"""


@pytest.mark.slow  # starts Ray: ~20 s
def test_a_sweep_schedules_d3rlpy_trials_on_ray(tmp_path: Path, fake_d3rlpy) -> None:
    pytest.importorskip("ray")
    data, _ = _dataset(tmp_path)
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent(SWEEP.format(data=data)))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [*CLI, "sweep", str(path), "--out", str(tmp_path / "o"), "--num-cpus", "2"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [r["status"] for r in results] == ["done"] * 4
    assert all(
        (tmp_path / "o" / r["trial"] / f"seed_{r['seed']}" / "hardware.json").exists()
        for r in results
    )
    report = (tmp_path / "o" / "report" / "report.md").read_text()
    assert "d3rlpy-iql_offline" in report and "d3rlpy-cql_offline" in report
