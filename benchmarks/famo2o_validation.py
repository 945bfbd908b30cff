"""CPU validation of FamO2O over IQL (`hybridrl.agents.famo2o`) on Pendulum-v1.

Three checks, all through the runner (`hybridrl.training.runner.run`), as users train:

(a) monotonicity: after the offline phase alone, E_s[min_i Q_i(s, mean π_u(s, φ(β)))] over
    2,048 fixed dataset states, for 5 values of β across [β_min, β_max]; it should rise
    with β on every seed (a larger AWR coefficient extracts a greedier member of the family);
(b) state-adaptivity: after the online phase, std_s of the balance model's β(s) over the
    same states, as a fraction of the range; it should exceed 5% (π_b did not collapse to
    one β for every state);
(c) end to end (``--e2e``): FamO2O vs ``iql_finetune`` with β fixed at the range's midpoint,
    equal budgets and settings; the score before the switch, the worst dip after it and the
    final score (mean return over the evaluation episodes).

The data: 20k transitions of the Pendulum swing-up controller with Gaussian noise 0.3 (the
learning tests' ``pendulum_offline``). Prints a Markdown table, the command and the machine.

    PYTHONPATH=src python benchmarks/famo2o_validation.py --seeds 0,1,2 --e2e
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hybridrl.agents import famo2o
from hybridrl.data.collect import NoiseConfig, collect
from hybridrl.data.dataset import Dataset
from hybridrl.envs.maze import ENV_IDS, MazeWaypointController
from hybridrl.evaluation.machine import describe_machine
from hybridrl.policies import PendulumSwingUp
from hybridrl.training.famo2o import famo2o as famo2o_recipe
from hybridrl.training.recipes import Recipe, get_recipe
from hybridrl.training.runner import run

ENV = "Pendulum-v1"


def task_data(task: str, noise: float) -> tuple[str, Dataset]:
    """The environment id and dataset of ``task``: "pendulum" (the swing-up controller) or
    "umaze" (PointMaze UMaze, the waypoint controller, 100k steps; the suite's
    pointmaze-umaze-v0 is the same controller with noise 0.5 over 1M steps)."""
    if task == "umaze":
        env_id = ENV_IDS["umaze"]
        controller: Any = MazeWaypointController("umaze")
        steps = 100_000
    else:
        env_id, controller, steps = ENV, PendulumSwingUp(), 20_000
    return env_id, collect(
        env_id,
        controller,
        num_steps=steps,
        seed=0,
        noise=NoiseConfig(gaussian_std=noise),
        random_reference_episodes=0,
        progress=False,
    )


def common_config(args: argparse.Namespace) -> dict[str, Any]:
    """The settings FamO2O and IQL share (the learning tests' Pendulum IQL settings, without
    the cosine decay, which FamO2O's official config does not use)."""
    hidden = [args.hidden, args.hidden]
    return {
        "hidden_dims": hidden,
        "actor_lr": 1e-3,
        "critic_lr": 1e-3,
        "value_lr": 1e-3,
        "expectile": 0.7,
    }


def famo2o_run_recipe(args: argparse.Namespace, online: bool) -> Recipe:
    recipe = famo2o_recipe(args.offline_updates, args.online_steps).with_config(
        **common_config(args), beta_min=args.beta_min, beta_max=args.beta_max
    )
    recipe = dataclasses.replace(recipe, reward_bias=args.reward_bias)
    if not online:
        recipe = dataclasses.replace(recipe, phases=recipe.phases[:1])
    return recipe


def iql_run_recipe(args: argparse.Namespace) -> Recipe:
    mid = 0.5 * (args.beta_min + args.beta_max)
    recipe = (
        get_recipe("iql_finetune")
        .with_budget(offline_updates=args.offline_updates, online_steps=args.online_steps)
        .with_config(**common_config(args), temperature=mid)
    )
    return dataclasses.replace(recipe, reward_bias=args.reward_bias)


def probe_states(data: Dataset, obs_stats: Any, n: int = 2048) -> jax.Array:
    obs = np.asarray(data.transitions.observations, np.float32)
    rows = np.random.default_rng(0).choice(len(obs), size=n, replace=False)
    x = obs[rows]
    if obs_stats is not None:
        x = (x - obs_stats[0]) / obs_stats[1]
    return jnp.asarray(x, jnp.float32)


def scores(result: Any) -> tuple[float, float, float]:
    """(score at the switch, worst online score, final score) from the run's evaluations."""
    evals = result.evaluations()
    online = [s for step, s in evals if step > 0]
    before = [s for step, s in evals if step == 0]
    return before[-1], min(online), online[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--offline-updates", type=int, default=2000)
    parser.add_argument("--online-steps", type=int, default=5000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--beta-min", type=float, default=1.0)
    parser.add_argument("--beta-max", type=float, default=5.0)
    parser.add_argument("--task", choices=("pendulum", "umaze"), default="pendulum")
    parser.add_argument(
        "--reward-bias", type=float, default=0.0, help="r + bias (AntMaze-style: -1)"
    )
    parser.add_argument("--noise", type=float, default=0.3, help="Gaussian action noise")
    parser.add_argument("--e2e", action="store_true", help="also run (c), IQL vs FamO2O")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--eval-interval", type=int, default=1000)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    betas = np.linspace(args.beta_min, args.beta_max, 5)
    width = args.beta_max - args.beta_min
    started = time.time()
    env_id, data = task_data(args.task, args.noise)
    settings = dict(
        eval_episodes=args.eval_episodes,
        eval_interval=args.eval_interval,
        offline_eval_interval=args.offline_updates,
        progress=False,
    )
    rows_a, rows_b, rows_c = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            t0 = time.time()
            offline = run(
                famo2o_run_recipe(args, online=False),
                env_id,
                dataset=data,
                run_dir=Path(tmp) / f"a{seed}",
                seed=seed,
                **settings,
            )
            states = probe_states(data, offline.obs_stats)
            qs = [float(famo2o.family_q(offline.state, states, b).mean()) for b in betas]
            beta_off = famo2o.balance_coefficients(offline.state, states)
            ends = [famo2o.universal_policy(offline.state, states, b).mode() for b in betas[::4]]
            gap = float(jnp.abs(ends[1] - ends[0]).mean())
            rows_a.append((seed, qs, bool(np.all(np.diff(qs) > 0)), gap, float(beta_off.std())))
            print(f"(a) seed {seed}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
            if not args.e2e:
                continue
            t0 = time.time()
            fam = run(
                famo2o_run_recipe(args, online=True),
                env_id,
                dataset=data,
                run_dir=Path(tmp) / f"f{seed}",
                seed=seed,
                **settings,
            )
            beta_on = np.asarray(
                famo2o.balance_coefficients(fam.state, probe_states(data, fam.obs_stats))
            )
            rows_b.append(
                (
                    seed,
                    float(beta_on.mean()),
                    float(beta_on.std()),
                    float(beta_on.min()),
                    float(beta_on.max()),
                )
            )
            t1 = time.time()
            base = run(
                iql_run_recipe(args),
                env_id,
                dataset=data,
                run_dir=Path(tmp) / f"i{seed}",
                seed=seed,
                **settings,
            )
            rows_c.append((seed, scores(fam), scores(base), t1 - t0, time.time() - t1))
            print(f"(b, c) seed {seed}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)

    print(f"## FamO2O validation ({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)\n")
    print("Command: `PYTHONPATH=src python " + " ".join(sys.argv) + "`  ")
    print(f"Machine: {describe_machine()}  ")
    print(
        f"Wall time: {time.time() - started:.0f} s; {env_id}, "
        f"{args.offline_updates} offline updates, "
        f"{args.online_steps} online steps, {args.hidden}x{args.hidden} networks, "
        f"β in [{args.beta_min}, {args.beta_max}], reward bias {args.reward_bias}\n"
    )
    head = " | ".join(f"β={b:.1f}" for b in betas)
    print(
        f"(a) E_s[Q(s, mean π_u(s, β))] after the offline phase\n\n| seed | {head} | rises "
        "| E_s|a(β_max) - a(β_min)| | std_s β(s) offline |\n|---|" + "---|" * (len(betas) + 3)
    )
    for seed, qs, mono, gap, std in rows_a:
        vals = " | ".join(f"{q:.3f}" for q in qs)
        print(f"| {seed} | {vals} | {'yes' if mono else 'NO'} | {gap:.3f} | {std:.3f} |")
    if rows_b:
        print("\n(b) β(s) = mode of π_b(s) after the online phase (2,048 dataset states)\n")
        print(
            "| seed | mean | std | std / range | min | max | > 5% |\n|---|---|---|---|---|---|---|"
        )
        for seed, mean, std, lo, hi in rows_b:
            frac = std / width
            print(
                f"| {seed} | {mean:.2f} | {std:.3f} | {100 * frac:.1f}% | {lo:.2f} | "
                f"{hi:.2f} | {'yes' if frac > 0.05 else 'NO'} |"
            )
        print("\n(c) returns (mean over evaluation episodes): at the switch, worst online, final\n")
        print(
            "| seed | FamO2O switch | FamO2O worst | FamO2O final | IQL switch | IQL worst | "
            "IQL final | FamO2O s | IQL s |\n|---|---|---|---|---|---|---|---|---|"
        )
        for seed, f, b, tf, tb in rows_c:
            print(
                f"| {seed} | {f[0]:.1f} | {f[1]:.1f} | {f[2]:.1f} | {b[0]:.1f} | {b[1]:.1f} | "
                f"{b[2]:.1f} | {tf:.0f} | {tb:.0f} |"
            )
        ff = np.mean([r[1][2] for r in rows_c])
        fb = np.mean([r[2][2] for r in rows_c])
        print(f"\nMean final return: FamO2O {ff:.1f}, IQL {fb:.1f}")


if __name__ == "__main__":
    main()
