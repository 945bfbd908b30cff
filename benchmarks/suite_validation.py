"""Validation runs on the locally rebuilt suite: offline agents and offline-to-online recipes.

Every (dataset, recipe, seed) becomes a run directory under ``--out``; finished runs (those
with a ``summary.json``) are skipped, so the script can be stopped and started again, and a
run killed mid-way resumes from its checkpoint. Each run records the machine it ran on in
its ``hardware.json``. At the end one ``hybridrl report`` over every finished run of the
group (this invocation's and earlier ones') is written to ``--out/<group>/report/report.md``,
so several invocations into one ``--out`` add up rather than overwrite each other.

    # offline: BC, TD3+BC, IQL, CQL on the medium, medium-replay and medium-expert sets
    .venv/bin/python benchmarks/suite_validation.py offline --envs hopper,halfcheetah,walker2d \
        --updates 100000 --seeds 0,1,2
    # offline-to-online: IQL, Cal-QL, RLPD, WSRL on medium and medium-replay sets
    .venv/bin/python benchmarks/suite_validation.py o2o --envs hopper --offline-updates 50000 \
        --online-steps 50000 --seeds 0,1,2

The datasets must be built first (``hybridrl datasets build NAME``); the command prints the
missing ones. Every number in docs/results.md names the command and the hardware it came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from hybridrl.data.minari_io import load_minari, minari_store_path
from hybridrl.evaluation.report import write_report
from hybridrl.suite.datasets import parse_name
from hybridrl.training.recipes import get_recipe, offline_recipe
from hybridrl.training.runner import run

OFFLINE_AGENTS = ("bc", "td3_bc", "iql", "cql")
OFFLINE_KINDS = ("medium", "medium-replay", "medium-expert")
O2O_RECIPES = ("iql_finetune", "calql", "rlpd", "wsrl")
O2O_KINDS = ("medium", "medium-replay")


def _datasets(envs: list[str], kinds: tuple[str, ...]) -> list[str]:
    names = [f"{env}-{kind}-v0" for env in envs for kind in kinds if env != "pointmaze"]
    names += [f"pointmaze-{maze}-v0" for env in envs if env == "pointmaze" for maze in kinds]
    return names


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("group", choices=("offline", "o2o"))
    p.add_argument("--envs", default="hopper,halfcheetah,walker2d")
    p.add_argument("--kinds", default=None, help="dataset kinds (default: the group's)")
    p.add_argument("--recipes", default=None, help="agents (offline) or recipes (o2o)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--updates", type=int, default=100_000, help="offline group: updates")
    p.add_argument("--offline-updates", type=int, default=50_000, help="o2o group")
    p.add_argument("--warmup-steps", type=int, default=5000, help="o2o group")
    p.add_argument("--online-steps", type=int, default=50_000, help="o2o group")
    p.add_argument(
        "--random-steps",
        type=int,
        default=None,
        help="o2o group: replace the random-action / no-update prefix of online phases that "
        "have one (RLPD's 5000) by this many steps, for budgets too short to hold it",
    )
    p.add_argument("--eval-interval", type=int, default=10_000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument(
        "--checkpoint-interval",
        type=int,
        default=50_000,
        help="env steps / updates between checkpoints; the runner resets the envs at each "
        "one (exact resume), so keep it above the episode length or no online episode ends "
        "uncut and regret is undefined",
    )
    p.add_argument(
        "--reward-normalization",
        default="none",
        choices=("none", "return_range"),
        help="offline group: 'return_range' is IQL's MuJoCo reward scaling, "
        "r * 1000 / (max - min episode return); runs are named AGENT_offline_rn",
    )
    p.add_argument("--out", default="runs/validation")
    a = p.parse_args()

    envs = a.envs.split(",")
    offline = a.group == "offline"
    kinds = tuple(a.kinds.split(",")) if a.kinds else (OFFLINE_KINDS if offline else O2O_KINDS)
    names = a.recipes.split(",") if a.recipes else list(OFFLINE_AGENTS if offline else O2O_RECIPES)
    seeds = [int(s) for s in a.seeds.split(",")]
    datasets = _datasets(envs, kinds)
    missing = [d for d in datasets if not (minari_store_path() / parse_name(d).minari_id).exists()]
    if missing:
        raise SystemExit(
            "build these first: " + "; ".join(f"hybridrl datasets build {d}" for d in missing)
        )
    out = Path(a.out) / a.group
    hardware = _hardware()
    for name in datasets:
        entry = parse_name(name)
        ds = load_minari(entry.minari_id)
        for recipe_name in names:
            if offline:
                recipe = offline_recipe(
                    recipe_name, updates=a.updates, reward_normalization=a.reward_normalization
                )
            else:
                recipe = get_recipe(recipe_name).with_budget(
                    offline_updates=a.offline_updates,
                    warmup_steps=a.warmup_steps,
                    online_steps=a.online_steps,
                    random_steps=a.random_steps,
                )
            for seed in seeds:
                run_dir = out / name / recipe.name / f"seed_{seed}"
                if (run_dir / "summary.json").exists():
                    continue
                resume = (run_dir / "run.json").exists()
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "hardware.json").write_text(
                    json.dumps({**hardware, "arguments": vars(a)}, indent=2)
                )
                run(
                    recipe,
                    entry.env_id,
                    dataset=ds,
                    run_dir=run_dir,
                    resume=resume,
                    seed=seed,
                    eval_interval=a.eval_interval,
                    offline_eval_interval=a.eval_interval,
                    checkpoint_interval=a.checkpoint_interval,
                    eval_episodes=a.eval_episodes,
                )
    # Every finished run of the group, so separate invocations share one report.
    finished = sorted(path.parent for path in out.glob("*/*/seed_*/summary.json"))
    report = write_report(finished, out / "report")
    print(report["table"])


def _hardware() -> dict[str, object]:
    import jax

    return {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "jax_devices": [str(d) for d in jax.devices()],
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "XLA_FLAGS")},
    }


if __name__ == "__main__":
    main()
