"""RO2O CPU validation (official-code-notes, RO2O "CPU validation" item 1): on the Pendulum
demo dataset, offline RO2O vs SAC-N with the same N and networks, same seeds; after the same
number of updates RO2O's policy sensitivity and value sensitivity to state perturbations
(`hybridrl.evaluation.robustness`) should both be lower.

Both agents train through the runner with ``offline_recipe`` (standardised observations,
batch 256) and log the robustness metrics at the final evaluation (run setting
``robustness_eps``, here RO2O's training radius ε = 0.01, on the runner's 256 probe states);
the script also measures them at a 5x larger radius on the same final states. The reduced
configuration is the notes' CPU one: N = 5 critics, K = 5 perturbations, 2x64 networks.

    PYTHONPATH=src JAX_PLATFORMS=cpu python benchmarks/ro2o_validation.py \
        --updates 2000 --seeds 0,1,2 --out /tmp/ro2o-validation

It prints a table (one row per seed and agent, then the per-seed verdicts) and the command
and hardware, and writes ``ro2o_validation.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from hybridrl.agents import get_agent
from hybridrl.agents.edac import sac_n_config
from hybridrl.demo import demo_dataset
from hybridrl.evaluation.machine import machine_info
from hybridrl.evaluation.robustness import METRIC_NAMES, agent_robustness
from hybridrl.training.offline import unit_actions
from hybridrl.training.phases import Offline
from hybridrl.training.recipes import Recipe, offline_recipe
from hybridrl.training.runner import run

ENV = "Pendulum-v1"
CPU = {"num_qs": 5, "hidden_dims": (64, 64)}
TRAIN_EPS, WIDE_EPS = 0.01, 0.05


def recipe_for(agent: str, updates: int, num_perturb: int, ro2o_set: dict[str, float]) -> Recipe:
    if agent == "ro2o":
        return offline_recipe("ro2o", updates).with_config(
            **CPU, num_perturb=num_perturb, **ro2o_set
        )
    # SAC-N (min over all N in target and actor, log σ >= -5) with the same networks, on
    # standardised observations as the ro2o recipes use
    preset = sac_n_config()
    config = {"actor_q": preset.actor_q, "actor_log_std_min": preset.actor_log_std_min, **CPU}
    recipe = Recipe(
        name="sac_n_offline",
        agent="sac",
        config=config,
        normalize_observations=True,
        phases=(Offline(name="offline", updates=updates),),
    )
    recipe.validate()
    return recipe


def one_run(agent: str, seed: int, args: argparse.Namespace, dataset: Any) -> dict[str, Any]:
    recipe = recipe_for(agent, args.updates, args.num_perturb, args.ro2o_set)
    start = time.perf_counter()
    result = run(
        recipe,
        ENV,
        dataset=dataset,
        run_dir=Path(args.out) / f"{agent}_seed{seed}",
        seed=seed,
        eval_episodes=args.eval_episodes,
        offline_eval_interval=args.updates,
        checkpoint_interval=args.updates,
        chunk_size=min(500, args.updates),
        robustness_eps=TRAIN_EPS,
        progress=False,
    )
    seconds = time.perf_counter() - start
    final = [r for r in result.records if r["kind"] == "eval"][-1]
    row = {"agent": agent, "seed": seed, "seconds": round(seconds, 1), "score": final["score"]}
    row.update({name: final[name] for name in METRIC_NAMES})
    # the same probe states at a wider radius (the runner's probe rows, standardised)
    mean, std = result.obs_stats if result.obs_stats is not None else (0.0, 1.0)
    rows = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:256])
    obs = (np.asarray(dataset.transitions.observations)[rows] - mean) / std
    acts = np.asarray(unit_actions(dataset).actions)[rows]
    wide = agent_robustness(
        get_agent(agent), result.state, obs, acts, jax.random.PRNGKey(seed), WIDE_EPS
    )
    row["policy_sensitivity_wide"] = wide["policy_sensitivity"]
    row["value_sensitivity_wide"] = wide["value_sensitivity"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--num-perturb", type=int, default=5)
    parser.add_argument("--dataset-steps", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--out", default="/tmp/ro2o-validation")
    parser.add_argument(
        "--ro2o-set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a numeric ro2o.Config field (default: the official constants)",
    )
    args = parser.parse_args()
    args.ro2o_set = {k: float(v) for k, v in (item.split("=", 1) for item in args.ro2o_set)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    before = machine_info()
    dataset = demo_dataset(args.dataset_steps, 0, progress=False)
    rows = [one_run(agent, s, args, dataset) for s in seeds for agent in ("ro2o", "sac")]
    cols = [
        "agent",
        "seed",
        "score",
        "policy_sensitivity",
        "value_sensitivity",
        "policy_sensitivity_wide",
        "value_sensitivity_wide",
        "q_std_data",
        "q_std_policy",
        "seconds",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    verdicts = []
    for s in seeds:
        ro, sn = (
            next(r for r in rows if r["seed"] == s and r["agent"] == a) for a in ("ro2o", "sac")
        )
        ok = {
            m: ro[m] < sn[m]
            for m in (
                "policy_sensitivity",
                "value_sensitivity",
                "policy_sensitivity_wide",
                "value_sensitivity_wide",
            )
        }
        verdicts.append({"seed": s, **ok})
        print(f"seed {s}: RO2O lower than SAC-N: {ok}")
    after = machine_info()
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"hardware: {json.dumps(before)}; load after: {after['loadavg']}")
    (Path(args.out) / "ro2o_validation.json").write_text(
        json.dumps(
            {"rows": rows, "verdicts": verdicts, "args": vars(args), "hardware": before}, indent=1
        )
    )


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


if __name__ == "__main__":
    main()
