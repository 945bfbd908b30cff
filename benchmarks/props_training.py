"""PROPS in training: PPO, PPO with reused data (PPO-Buffer) and PROPS side by side.

The PROPS paper's training comparison (Corrado & Hanna, 2024, §6.2; PPOROS @ a0c8708,
``PROPS/ppo_props_continuous.py``) at the budgets two CPU cores afford:

- ``ppo``: the ``ppo_buffer`` recipe's target settings (PPOROS: lr 1e-4 annealed, entropy
  0.01, target-KL 0.03, rollouts of 2048) with ``keep_batches=1``: plain on-policy PPO;
- ``ppo_buffer``: the same on the last 2 rollouts, on-policy sampling (the paper's baseline);
- ``props``: the same buffer, collected by PROPS's adaptive behaviour policy.

Every run logs the sampling error of its update data (``sampling_error`` in its ``train``
records of ``metrics.jsonl``; `hybridrl.agents.ppo.sampling_error`) every
``--se-interval`` updates. The gate is the paper's: PROPS's training-time sampling error
below PPO-Buffer's (same buffer size, 2 × 2048 rows). ``ppo``'s is over 2048 rows and is
printed for reference only. Returns: the final evaluation's return (10 episodes), IQM over
seeds with a 95% stratified-bootstrap interval per method; no gate on returns at these
budgets.

Runs go to ``--out/<env>/<method>/seed_K``; finished ones are skipped and unfinished ones
resume from their checkpoint, so the script can be stopped and started again. The summary
table (markdown) is printed and written to ``--out/summary.md``.

    .venv/bin/python benchmarks/props_training.py --envs Hopper-v5,HalfCheetah-v5,CartPole-v1 \
        --steps 61440 --seeds 0,1,2
    .venv/bin/python benchmarks/props_training.py --summary-only   # the table of what ran
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from hybridrl.evaluation.stats import iqm, stratified_bootstrap_ci
from hybridrl.training.phases import OnPolicy
from hybridrl.training.recipes import Recipe, get_recipe
from hybridrl.training.runner import run

METHODS = ("ppo", "ppo_buffer", "props")
# Per-task settings. Discrete tasks take the defaults of PPOROS's discrete script
# (PROPS/ppo_props_discrete.py l. 82-127 @ a0c8708; docs/agents/props.md): rollouts of 1024,
# target lr 1e-3, and for PROPS m = 128, behaviour lr 1e-3, 16 epochs x 8 minibatches,
# target-KL 0.03, lambda 0.1 (b stays 2, the paper's comparison). MuJoCo tasks keep the
# recipes' continuous defaults.
DISCRETE_TARGET = {"learning_rate": 1e-3}
DISCRETE_ROLLOUT = 1024
DISCRETE_PROPS = {
    "props_num_steps": 128,
    "props_learning_rate": 1e-3,
    "props_update_epochs": 16,
    "props_num_minibatches": 8,
    "props_target_kl": 0.03,
    "props_lambda": 0.1,
}
DISCRETE_TASKS = ("CartPole-v1", "Acrobot-v1", "LunarLander-v3")


def method_recipe(method: str, steps: int, se_interval: int, discrete: bool = False) -> Recipe:
    """The recipe of ``method`` at ``steps`` env steps, sampling error every ``se_interval``;
    ``discrete``: PPOROS's discrete-script settings (``DISCRETE_*``)."""
    base = get_recipe("props" if method == "props" else "ppo_buffer")
    (phase,) = base.phases
    assert isinstance(phase, OnPolicy)
    phase = dataclasses.replace(
        phase,
        steps=steps,
        sampling_error_interval=se_interval,
        keep_batches=1 if method == "ppo" else phase.keep_batches,
        rollout_steps=DISCRETE_ROLLOUT if discrete else phase.rollout_steps,
    )
    recipe = dataclasses.replace(base, name=method, phases=(phase,))
    if discrete:
        recipe = recipe.with_config(**DISCRETE_TARGET)
        if method == "props":
            recipe = recipe.with_config(**DISCRETE_PROPS)
    recipe.validate()
    return recipe


def run_grid(a: argparse.Namespace) -> None:
    hardware = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "arguments": vars(a),
    }
    for env_id in a.envs.split(","):
        for method in a.methods.split(","):
            recipe = method_recipe(method, a.steps, a.se_interval, env_id in DISCRETE_TASKS)
            for seed in (int(s) for s in a.seeds.split(",")):
                run_dir = Path(a.out) / env_id / method / f"seed_{seed}"
                if (run_dir / "summary.json").exists():
                    continue
                resume = (run_dir / "run.json").exists()
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "hardware.json").write_text(json.dumps(hardware, indent=2))
                print(f"{env_id} {method} seed {seed}{' (resumed)' if resume else ''}", flush=True)
                run(
                    recipe,
                    env_id,
                    run_dir=run_dir,
                    resume=resume,
                    progress=False,
                    seed=seed,
                    eval_interval=a.eval_interval,
                    eval_episodes=a.eval_episodes,
                    checkpoint_interval=a.checkpoint_interval,
                )


def _run_numbers(run_dir: Path) -> dict[str, Any]:
    """Mean training-time sampling error and final evaluation return of one finished run."""
    errors = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "train" and "sampling_error" in record:
            errors.append(float(record["sampling_error"]))
    with (run_dir / "evaluations.csv").open() as f:
        final_return = list(csv.DictReader(f))[-1]["return_mean"]
    return {
        "sampling_error": float(np.mean(errors)) if errors else float("nan"),
        "measurements": len(errors),
        "final_return": float(final_return),
    }


def summarize(out: Path) -> str:
    rows = [
        "| env | method | seeds | sampling error (mean over training; IQM [95% CI]) | "
        "final return IQM [95% CI] | SE measurements/run |",
        "|---|---|---|---|---|---|",
    ]
    gates = []
    for env_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        per_method: dict[str, list[dict[str, Any]]] = {}
        for method in METHODS:
            runs = sorted((env_dir / method).glob("seed_*/summary.json"))
            if runs:
                per_method[method] = [_run_numbers(r.parent) for r in runs]
        for method, numbers in per_method.items():
            se = np.array([n["sampling_error"] for n in numbers])
            ret = np.array([n["final_return"] for n in numbers])
            se_p, se_lo, se_hi = stratified_bootstrap_ci(se)
            r_p, r_lo, r_hi = stratified_bootstrap_ci(ret)
            rows.append(
                f"| {env_dir.name} | {method} | {len(numbers)} | {se_p:.4f} [{se_lo:.4f}, "
                f"{se_hi:.4f}] | {r_p:.1f} [{r_lo:.1f}, {r_hi:.1f}] | "
                f"{numbers[0]['measurements']} |"
            )
        if "props" in per_method and "ppo_buffer" in per_method:
            props_se = iqm(np.array([n["sampling_error"] for n in per_method["props"]]))
            buffer_se = iqm(np.array([n["sampling_error"] for n in per_method["ppo_buffer"]]))
            gates.append(
                f"- {env_dir.name}: PROPS {props_se:.4f} vs PPO-Buffer {buffer_se:.4f} "
                f"({props_se / buffer_se:.2f}x): "
                f"{'below' if props_se < buffer_se else 'NOT below'}"
            )
    gate = "Gate (PROPS's sampling error below PPO-Buffer's, IQM):"
    return "\n".join([*rows, "", gate, *gates])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--envs", default="Hopper-v5,HalfCheetah-v5,CartPole-v1")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=61_440, help="env steps per run")
    p.add_argument("--se-interval", type=int, default=3, help="updates between SE measurements")
    p.add_argument("--eval-interval", type=int, default=30_720)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--checkpoint-interval", type=int, default=30_720)
    p.add_argument("--out", default="runs/validation/props_training")
    p.add_argument("--summary-only", action="store_true")
    a = p.parse_args()
    if not a.summary_only:
        run_grid(a)
    table = summarize(Path(a.out))
    (Path(a.out) / "summary.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
