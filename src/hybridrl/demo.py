"""``hybridrl demo``: the whole product on Pendulum-v1 in a few minutes, with no download.

1. Data: roll out the scripted swing-up controller shipped with the package
   (`hybridrl.policies.PendulumSwingUp`), replacing half of its actions by uniform random ones,
   into a mediocre dataset; inspect it, save it as npz, D4RL-style HDF5 and Minari and reload
   each (identical content hash).
2. Offline-to-online: two recipes, each pretrained on that dataset and fine-tuned online —
   **WSRL** (Cal-QL pretraining, frozen-policy warm-up, SAC without the offline data) and the
   baseline **IQL fine-tuning** (the dataset appended to the replay buffer).
3. Report: a before / dip / after / regret table and ``curves.png``.

Budgets are scaled down from the papers' MuJoCo settings (see `DEMO_BUDGET`), and the networks
are 2×64 (papers: 2×256) and WSRL's CQL term samples 4 actions per set (paper: 10);
everything else is the registered recipe.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hybridrl.training.recipes import get_recipe
from hybridrl.types import HybridRLError

DEMO_ENV = "Pendulum-v1"
DEMO_RECIPES = ("wsrl", "iql_finetune")
DEMO_BUDGET: dict[str, Any] = {
    "offline_updates": 2000,
    "warmup_steps": 1000,
    "online_steps": 5000,
}
DEMO_NETWORKS = {"hidden_dims": (64, 64)}
DEMO_RECIPE_CONFIG: dict[str, dict[str, Any]] = {
    # 4 sampled actions per set in the CQL term instead of 10: a 10-critic Cal-QL update costs
    # ~95 ms with 10 on 2 CPU cores, ~43 ms with 4.
    "wsrl": {"num_samples": 4},
}


def demo_dataset(steps: int, seed: int, progress: bool = True) -> Any:
    """The demo's data: ``steps`` transitions of the Pendulum swing-up controller with half its
    actions uniform random, its noiseless return as the expert reference of normalized scores
    (also the data of the RO2O CPU validation)."""
    from hybridrl.data.collect import NoiseConfig, collect, evaluate_policy
    from hybridrl.policies import PendulumSwingUp

    expert = float(evaluate_policy(DEMO_ENV, PendulumSwingUp(), 10, seed=seed + 1).mean())
    return collect(
        DEMO_ENV,
        PendulumSwingUp(),
        num_steps=steps,
        seed=seed,
        noise=NoiseConfig(random_action_prob=0.5),
        ref_max_score=expert,
        name="pendulum-swingup-mixed",
        progress=progress,
    )


def build_dataset(out_dir: Path, steps: int, seed: int, echo: Callable[[str], None]) -> Any:
    """Step 1: collect, inspect, save in every format and reload."""
    from hybridrl.data import load_dataset, save_dataset
    from hybridrl.data.inspect import format_report, inspect_dataset, plot_return_histogram

    # The demo never writes into the user's own Minari store.
    os.environ["MINARI_DATASETS_PATH"] = str((out_dir / "minari").resolve())
    # The noiseless controller is the "expert" reference of normalized scores and TQ.
    ds = demo_dataset(steps, seed)
    echo(format_report(inspect_dataset(ds)))
    plot_return_histogram(ds, out_dir / "returns.png")
    targets = [
        str(out_dir / "pendulum.npz"),
        str(out_dir / "pendulum.hdf5"),
        "minari:hybridrl/pendulum-swingup-mixed-v0",
    ]
    for target in targets:
        save_dataset(ds, target, overwrite=True)  # a rerun of the demo replaces its files
        back = load_dataset(target)
        same = back.content_hash() == ds.content_hash()
        echo(f"saved and reloaded {target}: {len(back)} transitions, identical={same}")
        if not same:
            raise HybridRLError(f"round trip through {target} changed the data")
    return ds


def run_demo(
    out_dir: Path,
    *,
    steps: int = 10_000,
    seed: int = 0,
    recipes: tuple[str, ...] = DEMO_RECIPES,
    budget: dict[str, Any] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the three steps; returns ``{"summaries": {recipe: summary}, "table": str}``."""
    from hybridrl.evaluation.report import write_report
    from hybridrl.training.runner import run

    out_dir.mkdir(parents=True, exist_ok=True)
    echo("== 1. dataset")
    ds = build_dataset(out_dir, steps, seed, echo)
    summaries: dict[str, dict[str, Any]] = {}
    run_dirs = []
    for name in recipes:
        echo(f"== 2. {name}: pretrain offline, then fine-tune online")
        recipe = _demo_recipe(name, budget or DEMO_BUDGET)
        run_dir = out_dir / "runs" / name
        _clear_run(run_dir)
        result = run(
            recipe,
            DEMO_ENV,
            dataset=ds,
            run_dir=run_dir,
            seed=seed,
            eval_interval=500,
            offline_eval_interval=1000,
            checkpoint_interval=2000,
            eval_episodes=10,
            progress=progress,
        )
        summaries[name] = result.summary
        run_dirs.append(run_dir)
    echo("== 3. report")
    report = write_report(run_dirs, out_dir / "report")
    echo(report["table"])
    for name, s in summaries.items():
        echo(
            f"{name}: normalized score {_fmt(s['pretrain_score'])} after pretraining, "
            f"{_fmt(s['dip_score'])} at the dip, {_fmt(s['worst_score'])} at worst "
            f"(env step {s['worst_step']}), {_fmt(s['final_score'])} after fine-tuning "
            f"({s['wall_time_s']:.0f} s)"
        )
    echo(f"plots: {out_dir / 'report' / 'curves.png'}")
    return {"summaries": summaries, "table": report["table"]}


def _demo_recipe(name: str, budget: dict[str, Any]) -> Any:
    """The registered recipe at the demo's budget. Recipes without a warm-up get its steps
    as extra online steps, so every recipe uses the same number of env steps."""
    recipe = get_recipe(name)
    has_warmup = any(p.kind == "warmup" for p in recipe.phases)
    budget = dict(budget)
    if not has_warmup:
        budget["online_steps"] = budget["online_steps"] + budget.get("warmup_steps", 0)
    return recipe.with_budget(**budget).with_config(
        **DEMO_NETWORKS, **DEMO_RECIPE_CONFIG.get(name, {})
    )


def _clear_run(run_dir: Path) -> None:
    # The demo always starts fresh: an earlier demo's run directory is replaced.
    import shutil

    if (run_dir / "run.json").exists():
        shutil.rmtree(run_dir)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"
