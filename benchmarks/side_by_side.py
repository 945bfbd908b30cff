"""hybridrl beside d3rlpy on the same datasets: final normalized scores and wall-clock.

For every dataset, agent and seed, trains hybridrl's agent (the ``offline:AGENT`` recipe) and
d3rlpy's (``src/hybridrl/bench_d3rlpy.py train``, the one d3rlpy adapter, in d3rlpy's own
environment) for the same number of updates with the same network sizes, batch size and
observation standardisation, evaluates both every ``--eval-interval`` updates on
``--eval-episodes`` episodes, and writes run
directories in hybridrl's format, so that ``hybridrl report OUT`` aggregates both (IQM and
95% stratified-bootstrap intervals across seeds). Prints the report table and the wall-clock
per library.

    scripts/setup-compare      # once: .venv-compare with d3rlpy
    .venv/bin/python benchmarks/side_by_side.py --datasets minari:hybridrl/hopper/medium-v0 \
        --agents iql,cql,td3_bc --seeds 0,1,2 --steps 100000 --eval-interval 10000

Both libraries use the machine's default thread pools; state the hardware with the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hybridrl.bench_d3rlpy import run_worker, worker_command
from hybridrl.data import load_dataset
from hybridrl.data.dataset import Dataset
from hybridrl.data.io import atomic_path, save_npz
from hybridrl.evaluation.report import write_report
from hybridrl.training.recipes import offline_recipe
from hybridrl.training.runner import run

ROOT = Path(__file__).resolve().parents[1]
NORMALIZE = {"td3_bc": True, "iql": True, "cql": False, "bc": False}


def export_arrays(ds: Dataset, path: Path) -> Path:
    """The dataset as npz (`save_npz`: one array per field, actions in env units), which the
    d3rlpy worker reads with plain numpy."""
    if not path.exists():
        save_npz(ds, path)
    return path


def run_hybridrl(ds: Dataset, env_id: str, agent: str, seed: int, out: Path, a: Any) -> None:
    recipe = offline_recipe(agent, updates=a.steps).with_config(hidden_dims=a.hidden)
    recipe = dataclasses.replace(recipe, name=f"hybridrl_{agent}")
    run(
        recipe,
        env_id,
        dataset=ds,
        run_dir=out,
        seed=seed,
        offline_eval_interval=a.eval_interval,
        eval_episodes=a.eval_episodes,
        checkpoint_interval=a.eval_interval,
        chunk_size=min(1000, a.eval_interval),
        progress=False,
    )


def run_d3rlpy(
    ds: Dataset, data: Path, env_id: str, agent: str, seed: int, out: Path, a: Any
) -> None:
    cmd = worker_command(
        a.d3rlpy_python,
        "train",
        f"--data={data}",
        f"--env={env_id}",
        f"--algo={agent}",
        f"--steps={a.steps}",
        f"--eval-interval={a.eval_interval}",
        f"--eval-episodes={a.eval_episodes}",
        f"--seed={seed}",
        f"--hidden={','.join(map(str, a.hidden))}",
        f"--batch-size={a.batch_size}",
    )
    if NORMALIZE[agent]:
        cmd.append("--normalize-observations")
    try:
        result = run_worker(cmd)
    except RuntimeError as e:
        raise SystemExit(str(e)) from None
    lo, hi = ds.metadata.ref_min_score, ds.metadata.ref_max_score

    def score(ret: float) -> float:
        return ret if lo is None or hi is None else 100.0 * (ret - lo) / (hi - lo)

    out.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "kind": "eval",
            "phase": "offline",
            "phase_index": 0,
            "env_step": 0,
            "score": score(e["return_mean"]),
            "q_probe": None,
            **e,
        }
        for e in result["evaluations"]
    ]
    unit = "return" if lo is None or hi is None else "normalized"
    info = {
        "name": f"d3rlpy_{agent}",
        "task": ds.metadata.name or env_id,
        "env_id": env_id,
        "seed": seed,
        "score_unit": unit,
        "switch_step": None,
        "phases": [{"name": "offline", "kind": "offline", "start_step": 0, "end_step": 0}],
        "d3rlpy_version": result["d3rlpy_version"],
        "torch": result["torch"],
    }
    summary = {
        "name": info["name"],
        "task": info["task"],
        "seed": seed,
        "score_unit": unit,
        "pretrain_score": None,
        "dip": None,
        "dip_score": None,
        "final_score": records[-1]["score"],
        "regret": None,
        "improvement": None,
        "q_at_switch": None,
        "q_drift": None,
        "switch_step": None,
        "total_env_steps": 0,
        "total_updates": a.steps,
        "wall_time_s": round(result["wall_time_s"], 2),
    }
    for name, payload in (
        ("run.json", json.dumps(info, indent=2)),
        ("metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records)),
        ("summary.json", json.dumps(summary, indent=2)),
    ):
        with atomic_path(out / name) as tmp:
            tmp.write_text(payload)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", required=True, help="comma-separated dataset specs")
    p.add_argument("--env", default=None, help="env id (default: the dataset's metadata)")
    p.add_argument("--agents", default="iql,cql,td3_bc")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--eval-interval", type=int, default=10_000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--hidden", default="256,256")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", default="runs/side_by_side")
    p.add_argument("--d3rlpy-python", default=str(ROOT / ".venv-compare" / "bin" / "python"))
    p.add_argument("--libraries", default="hybridrl,d3rlpy")
    a = p.parse_args()
    a.hidden = tuple(int(h) for h in a.hidden.split(","))
    libraries = a.libraries.split(",")
    if "d3rlpy" in libraries and not Path(a.d3rlpy_python).exists():
        raise SystemExit(f"{a.d3rlpy_python} not found: run scripts/setup-compare first")
    out = Path(a.out)
    run_dirs = []
    for spec in a.datasets.split(","):
        ds = load_dataset(spec)
        env_id = a.env or ds.metadata.env_id
        if env_id is None:
            raise SystemExit(f"{spec}: no env id in the metadata; pass --env")
        name = (ds.metadata.name or Path(spec).stem).replace("/", "_")
        data = export_arrays(ds, out / name / "data.npz")
        for agent in a.agents.split(","):
            for seed in (int(s) for s in a.seeds.split(",")):
                for lib in libraries:
                    run_dir = out / name / f"{lib}_{agent}" / f"seed_{seed}"
                    if (run_dir / "summary.json").exists():
                        run_dirs.append(run_dir)
                        continue  # finished earlier: the script resumes by skipping
                    if lib == "hybridrl":
                        if run_dir.exists():  # killed mid-run: start that run over
                            import shutil

                            shutil.rmtree(run_dir)
                        run_hybridrl(ds, env_id, agent, seed, run_dir, a)
                    else:
                        run_d3rlpy(ds, data, env_id, agent, seed, run_dir, a)
                    run_dirs.append(run_dir)
                    print(f"done {run_dir}", file=sys.stderr)
    report = write_report(run_dirs, out / "report")
    print(report["table"])
    walls: dict[str, list[float]] = {}
    for d in run_dirs:
        s = json.loads((d / "summary.json").read_text())
        walls.setdefault(s["name"], []).append(float(s["wall_time_s"] or 0.0))
    print("\nwall-clock per run (s, mean over runs, evaluation included):")
    for name in sorted(walls):
        print(f"  {name:20s} {np.mean(walls[name]):8.1f}")


if __name__ == "__main__":
    main()
