"""PPO at 1M env steps on MuJoCo beside CleanRL's published ``ppo_continuous_action.py``.

Runs the ``ppo`` recipe (CleanRL's settings: 1 env, rollouts of 2048, 10 epochs x 32
minibatches, lr 3e-4 annealed, running observation and reward normalisation) on each task and
seed into ``--out/<env>/seed_K`` (resumable: a finished run is skipped, an unfinished one
continues from its checkpoint), then summarises what has finished:

- ``final 100k``: each run's mean training episodic return over its last 100k env steps
  (CleanRL's ``charts/episodic_return`` is the training episodes' return), then the IQM over
  seeds with a 95% stratified-bootstrap interval, and mean ± std over seeds;
- ``final eval``: the last evaluation (10 deterministic episodes), same statistics;
- the published CleanRL numbers beside them (openrlbenchmark, ``ppo_continuous_action``,
  tag ``pr-424``, MuJoCo **v4**, mean ± std over seeds of the episodic return; read from
  CleanRL's docs ``docs/rl-algorithms/ppo.md``, vwxyzjn/cleanrl @ 7a96de2). hybridrl runs the
  v5 tasks (Gymnasium 1.x); CleanRL's docs report v2 and v4 as roughly equal.

Learning curves (training episodic return, 20k-step bins, mean over seeds) go to
``--out/curves.png``; the table to ``--out/summary.md``.

    .venv/bin/python benchmarks/ppo_validation.py --run            # run (or resume), then summarise
    .venv/bin/python benchmarks/ppo_validation.py                  # summarise what has finished
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from hybridrl.evaluation.stats import iqm, stratified_bootstrap_ci

TASKS = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5")
# openrlbenchmark/cleanrl/ppo_continuous_action ({'tag': ['pr-424']}), MuJoCo v4, 1M steps
CLEANRL_PUBLISHED = {
    "HalfCheetah-v5": (1442.64, 46.03),
    "Walker2d-v5": (2287.95, 571.78),
    "Hopper-v5": (2382.86, 271.74),
}


def _episodes(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    steps, returns = [], []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "episode" and not record.get("cut"):
            steps.append(record["env_step"])
            returns.append(record["return"])
    return np.asarray(steps), np.asarray(returns)


def _final_eval(run_dir: Path) -> float:
    with (run_dir / "evaluations.csv").open() as f:
        return float(list(csv.DictReader(f))[-1]["return_mean"])


def _stat(values: np.ndarray) -> str:
    point, low, high = stratified_bootstrap_ci(values, iqm)
    return f"{point:.0f} [{low:.0f}, {high:.0f}] ({values.mean():.0f} ± {values.std(ddof=0):.0f})"


def summarize(out: Path, window: int = 100_000) -> str:
    rows = [
        "| task | seeds | final 100k training return: IQM [95% CI] (mean ± std) | "
        "final eval: IQM [95% CI] (mean ± std) | CleanRL published (v4, mean ± std) |",
        "|---|---|---|---|---|",
    ]
    curves = {}
    for task in TASKS:
        finished = sorted((out / task).glob("seed_*/summary.json"))
        if not finished:
            continue
        last, evals, binned = [], [], []
        for summary in finished:
            run_dir = summary.parent
            steps, returns = _episodes(run_dir)
            total = json.loads(summary.read_text())["total_env_steps"]
            last.append(returns[steps > total - window].mean())
            evals.append(_final_eval(run_dir))
            edges = np.arange(0, total + 20_000, 20_000)
            index = np.digitize(steps, edges)
            binned.append([returns[index == i].mean() if np.any(index == i) else np.nan
                           for i in range(1, len(edges))])  # fmt: skip
        curves[task] = (edges[1:], np.nanmean(np.asarray(binned), axis=0))
        mean, std = CLEANRL_PUBLISHED[task]
        rows.append(
            f"| {task} | {len(finished)} | {_stat(np.asarray(last))} | "
            f"{_stat(np.asarray(evals))} | {mean:.0f} ± {std:.0f} |"
        )
    if curves:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.5), squeeze=False)
        for ax, (task, (x, y)) in zip(axes[0], curves.items(), strict=True):
            ax.plot(x, y, label="hybridrl ppo")
            ax.axhline(CLEANRL_PUBLISHED[task][0], ls="--", c="gray", label="CleanRL (v4)")
            ax.set_title(task)
            ax.set_xlabel("env steps")
            ax.set_ylabel("training episodic return")
        axes[0][0].legend()
        fig.tight_layout()
        fig.savefig(out / "curves.png", dpi=100)
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", action="store_true", help="run or resume the missing runs first")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default="runs/validation/ppo")
    a = p.parse_args()
    out = Path(a.out)
    if a.run:
        from hybridrl.training.recipes import get_recipe
        from hybridrl.training.runner import run

        for task in a.tasks.split(","):
            for seed in (int(s) for s in a.seeds.split(",")):
                run_dir = out / task / f"seed_{seed}"
                if (run_dir / "summary.json").exists():
                    continue
                run(
                    get_recipe("ppo"),
                    task,
                    run_dir=run_dir,
                    resume=(run_dir / "run.json").exists(),
                    seed=seed,
                    eval_interval=100_000,
                    eval_episodes=10,
                    checkpoint_interval=51_200,
                )
    out.mkdir(parents=True, exist_ok=True)
    table = summarize(out)
    (out / "summary.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
