"""HNPG against NPG without offline data on Comblock (issue #17): online samples until the
moving-average probability of opening the lock exceeds 0.5, within a sample cap.

    PYTHONPATH=src .venv/bin/python benchmarks/hnpg_validation.py \
        --horizons 5,10 --seeds 0,1,2 --cap 200000 --out /tmp/hnpg_validation.json

Both methods are the registered recipes (``hnpg``: `OnPolicy` with ``offline_ratio`` 0.5 and
``hybrid=True``; ``npg``: no dataset, ``hybrid=False``) run by the ordinary runner with the
official constants, on ``hybridrl/Comblock-H{H}-v0``. HNPG's dataset: ``--offline-episodes``
episodes of the ε-greedy optimal policy, ε = 1/H (`hybridrl.envs.comblock.collect_offline`,
seed 0; the official collects 50,000 episodes).

Samples per iteration: 1,000, as the official ``--batch-size``, collected as 10 vector envs ×
100 steps (the official collects one env's whole episodes until 1,000 steps; H = 5 and 10
divide 100, so no episode is cut). P(open) of a training episode is 1 when its return is 1
(the lock's reward; the anti-reward is 0.1). The moving average is over the training episodes
of the last ``--window`` env steps (default 5,000: 5 iterations, 500-1,000 episodes); the
metric is the first env step at which it exceeds 0.5 (a multiple of the iteration size), or
"not reached" within ``--cap``. A run stops at its first evaluation (every ``--check`` env
steps) after the crossing: nothing after it changes the metric.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

from hybridrl.data.dataset import Dataset
from hybridrl.envs.comblock import collect_offline, comblock_id
from hybridrl.evaluation.machine import machine_info
from hybridrl.training.recipes import Recipe, get_recipe
from hybridrl.training.runner import run


class _Reached(Exception):
    """Raised from the evaluation callback to end a run once the metric is known."""


def crossing(records: list[dict[str, Any]], window: int, threshold: float = 0.5) -> int | None:
    """The first env step at which the share of opened locks among the training episodes that
    ended in the last ``window`` env steps exceeds ``threshold`` (checked at every env step
    where an episode ended, from ``window`` steps on); None if never."""
    steps = np.array([r["env_step"] for r in records], np.int64)
    opened = np.array([r["return"] >= 1.0 for r in records], np.float64)
    for step in steps:
        if step < window:
            continue
        inside = (steps > step - window) & (steps <= step)
        if opened[inside].mean() > threshold:
            return int(step)
    return None


def _episodes(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "episode"]


def _recipe(name: str, cap: int, rollout_steps: int) -> Recipe:
    recipe = get_recipe(name).with_budget(on_policy_steps=cap)
    phase = dataclasses.replace(recipe.phases[0], rollout_steps=rollout_steps)
    return dataclasses.replace(recipe, phases=(phase,))


def one_run(
    name: str, horizon: int, seed: int, dataset: Dataset | None, args: argparse.Namespace
) -> dict[str, Any]:
    recipe = _recipe(name, args.cap, args.rollout_steps)
    with TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"

        def stop_when_known(runner: Any, learner: Any, record: dict[str, Any]) -> None:
            if crossing(_episodes(run_dir), args.window) is not None:
                raise _Reached

        start = time.time()
        with contextlib.suppress(_Reached):
            run(
                recipe,
                comblock_id(horizon),
                dataset=dataset,
                run_dir=run_dir,
                progress=False,
                seed=seed,
                num_envs=args.num_envs,
                eval_interval=args.check,
                eval_episodes=1,
                checkpoint_interval=10**9,
                on_evaluation=stop_when_known,
            )
        wall = time.time() - start
        episodes = _episodes(run_dir)
    steps = crossing(episodes, args.window)
    return {
        "method": name,
        "horizon": horizon,
        "seed": seed,
        "samples_to_0.5": steps,
        "env_steps_run": int(episodes[-1]["env_step"]) if episodes else 0,
        "final_window_p_open": float(
            np.mean(
                [
                    e["return"] >= 1.0
                    for e in episodes
                    if e["env_step"] > episodes[-1]["env_step"] - args.window
                ]
            )
        )
        if episodes
        else 0.0,
        "seconds": round(wall, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--horizons", default="5,10")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--methods", default="hnpg,npg")
    p.add_argument("--cap", type=int, default=200_000, help="online env steps per run")
    p.add_argument("--offline-episodes", type=int, default=5000)
    p.add_argument("--num-envs", type=int, default=10)
    p.add_argument("--rollout-steps", type=int, default=100, help="per env, per iteration")
    p.add_argument("--window", type=int, default=5000)
    p.add_argument("--check", type=int, default=5000, help="env steps between stop checks")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    report: dict[str, Any] = {"machine": machine_info(), "args": vars(args), "runs": []}
    for horizon in map(int, args.horizons.split(",")):
        data = collect_offline(horizon, args.offline_episodes, seed=0)
        for name in args.methods.split(","):
            for seed in map(int, args.seeds.split(",")):
                row = one_run(name, horizon, seed, data if name == "hnpg" else None, args)
                report["runs"].append(row)
                print(json.dumps(row), flush=True)
                if args.out:
                    Path(args.out).write_text(json.dumps(report, indent=1))
    report["machine"]["load_after"] = machine_info()["loadavg"]
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
