"""Env steps per second of whole online runs, hybridrl beside Stable-Baselines3, same machine.

    scripts/setup-compare --sb3            # once: .venv-sb3 with stable-baselines3 (torch CPU)
    .venv/bin/python benchmarks/online_throughput.py --algo ppo --env Hopper-v5 --steps 20480
    .venv/bin/python benchmarks/online_throughput.py --algo sac --env Hopper-v5 --steps 6000
    .venv/bin/python benchmarks/online_throughput.py --scale-envs 1,4,16 \
        --backend gymnasium,envpool --steps 16384       # hybridrl only, both env backends

PPO: the ``ppo`` recipe (CleanRL's ppo_continuous_action.py settings: rollouts of 2048 per env,
10 epochs x 32 minibatches, 64-64 tanh nets, running observation/reward normalisation) beside
SB3's PPO at the same settings (``benchmarks/sb3_worker.py``). SAC: an `Online` phase with
``--random-steps`` uniform actions and no updates before them (SB3's ``learning_starts``), then
one update per env step, 2x256 networks, batch 256, beside SB3's SAC: equal update counts.

Each library runs ``--repeats`` times, alternating; hybridrl's first (compiling) run is a
warm-up and not counted (its compile time is printed). The table gives medians, the ratio
and, for SAC, the share of a step spent outside the update (1 - update time / step time, the
update time measured alone on the same batch size, best of 3): over the whole run
(``outside_update_share``, which also counts setup, the random steps and the final evaluation)
and per updating step (``outside_update_share_per_step``: the run's wall minus that of the same
run stopped after its random steps, divided by the updating steps). Record `nproc` and the
load (`uptime`) beside the numbers: both libraries use the machine's default thread pools.

``--backend`` picks hybridrl's vector-env engine (``gymnasium``, or ``envpool`` with the
``envpool`` extra). ``--scale-envs 1,4,16`` runs hybridrl alone at each number of envs for
each backend given (a comma list) and prints one row per pair: the scaling table of
docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def hybridrl_run(
    algo: str, env: str, steps: int, num_envs: int, random_steps: int, backend: str = "gymnasium"
) -> float:
    """Wall seconds of one hybridrl run (no evaluation, no checkpoint inside the budget)."""
    from hybridrl.training.phases import Online
    from hybridrl.training.recipes import Recipe, get_recipe
    from hybridrl.training.runner import run

    if algo == "ppo":
        recipe = get_recipe("ppo").with_budget(on_policy_steps=steps)
    else:
        online = Online(steps=steps, random_steps=random_steps, update_after=random_steps)
        recipe = Recipe("sac_bench", "sac", (online,), config={"actor_q": "min"})
    run_dir = Path(tempfile.mkdtemp(prefix="hybridrl_bench_"))
    try:
        start = time.perf_counter()
        run(
            recipe,
            env,
            run_dir=run_dir / "run",
            progress=False,
            num_envs=num_envs,
            eval_episodes=1,
            eval_interval=10**9,
            checkpoint_interval=10**9 // num_envs * num_envs,
            env_backend=backend,
        )
        return time.perf_counter() - start
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def sac_update_seconds(
    env: str, updates: int = 2000, chunk: int = 500, repeats: int = 3, per_call: bool = True
) -> tuple[float, float]:
    """Seconds per SAC update (batch 256, 2x256) on a 10,000-row buffer, best of ``repeats``:
    (compute alone, one update per compiled call).

    The first is the update's own cost: ``chunk`` updates in one ``lax.scan`` call, so no
    dispatch or host work is counted; the online loop's share outside the update is measured
    against it. The second calls one update at a time from the host (keys split beforehand),
    as an unfused online loop would.
    """
    import jax
    import numpy as np

    from hybridrl.agents import sac
    from hybridrl.data.replay import from_dataset
    from hybridrl.data.transitions import Transitions
    from hybridrl.envs.make import env_spaces
    from hybridrl.training.updates import scan_updates

    obs_space, act_space = env_spaces(env)
    obs_dim, act_dim = int(np.prod(obs_space.shape)), int(np.prod(act_space.shape))
    rng = np.random.default_rng(0)
    n = 10_000
    data = Transitions(
        observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        next_observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        terminals=np.zeros(n, np.float32),
        timeouts=np.zeros(n, np.float32),
    )
    state = sac.init(sac.Config(actor_q="min"), jax.random.PRNGKey(0), obs_dim, act_dim)
    buffer = from_dataset(data)
    keys = list(jax.random.split(jax.random.PRNGKey(1), updates + 2))
    timings = []
    modes = ((chunk, updates // chunk), (1, updates)) if per_call else ((chunk, updates // chunk),)
    for num, calls in modes:
        state, metrics = scan_updates(
            sac.update, state, buffer, keys[-1], num_updates=num, batch_size=256
        )
        jax.block_until_ready(state)
        best = float("inf")
        for _ in range(repeats):  # best of: the compute cost; other load only slows a repeat
            start = time.perf_counter()
            for i in range(calls):
                state, metrics = scan_updates(
                    sac.update, state, buffer, keys[i], num_updates=num, batch_size=256
                )
            jax.block_until_ready(metrics)
            best = min(best, (time.perf_counter() - start) / (calls * num))
        timings.append(best)
    return timings[0], timings[-1]


def sb3_run(algo: str, env: str, steps: int, num_envs: int, random_steps: int) -> float:
    python = ROOT / ".venv-sb3" / "bin" / "python"
    if not python.exists():
        sys.exit("no .venv-sb3: run scripts/setup-compare --sb3 first")
    cmd = [str(python), str(ROOT / "benchmarks" / "sb3_worker.py"), algo, env]
    cmd += ["--steps", str(steps), "--num-envs", str(num_envs)]
    cmd += ["--learning-starts", str(random_steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["wall_s"])


def scale_envs(a: argparse.Namespace, counts: list[int], backends: list[str]) -> None:
    """hybridrl's env steps/s at each number of envs for each backend: a first (compiling)
    run, then ``--repeats`` timed runs, alternating backends; one JSON row per pair and a
    markdown table."""
    rows = []
    for n in counts:
        walls: dict[str, list[float]] = {b: [] for b in backends}
        first = {b: hybridrl_run(a.algo, a.env, a.steps, n, a.random_steps, b) for b in backends}
        for _ in range(a.repeats):
            for b in backends:
                walls[b].append(hybridrl_run(a.algo, a.env, a.steps, n, a.random_steps, b))
        for b in backends:
            row = {
                "algo": a.algo,
                "env": a.env,
                "steps": a.steps,
                "num_envs": n,
                "backend": b,
                "first_run_s": round(first[b], 2),
                "wall_s": [round(x, 2) for x in walls[b]],
                "steps_per_s": round(a.steps / statistics.median(walls[b]), 1),
                "nproc": os.cpu_count(),
                "load_1min_after": round(os.getloadavg()[0], 2),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| envs | " + " | ".join(f"{b} steps/s" for b in backends) + " |")
    print("|---:|" + "---:|" * len(backends))
    for n in counts:
        rates = [
            next(r["steps_per_s"] for r in rows if r["num_envs"] == n and r["backend"] == b)
            for b in backends
        ]
        print(f"| {n} | " + " | ".join(f"{x:.0f}" for x in rates) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algo", choices=("ppo", "sac"), default="ppo")
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--steps", type=int, default=20_480)
    p.add_argument("--num-envs", type=int, default=1)
    p.add_argument("--random-steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-sb3", action="store_true")
    p.add_argument("--backend", default="gymnasium", help="env backend(s), comma-separated")
    p.add_argument("--scale-envs", default=None, help="e.g. 1,4,16: hybridrl only, per backend")
    a = p.parse_args()
    backends = a.backend.split(",")
    if a.scale_envs:
        scale_envs(a, [int(n) for n in a.scale_envs.split(",")], backends)
        return
    args = (a.algo, a.env, a.steps, a.num_envs, a.random_steps, backends[0])
    compile_run = hybridrl_run(*args)
    ours: list[float] = []
    theirs: list[float] = []
    paired: list[float] = []  # SAC: the update's own cost measured just before each run
    for _ in range(a.repeats):
        if a.algo == "sac":
            paired.append(sac_update_seconds(a.env, updates=1000, repeats=1, per_call=False)[0])
        ours.append(hybridrl_run(*args))
        if not a.skip_sb3:
            theirs.append(sb3_run(*args[:5]))  # SB3 steps gymnasium envs
    result: dict[str, Any] = {
        "algo": a.algo,
        "env": a.env,
        "steps": a.steps,
        "num_envs": a.num_envs,
        "backend": backends[0],
        "hybridrl_first_run_s": round(compile_run, 2),
        "hybridrl_wall_s": [round(x, 2) for x in ours],
        "hybridrl_steps_per_s": round(a.steps / statistics.median(ours), 1),
        "cpu": platform.processor() or platform.machine(),
        "nproc": os.cpu_count(),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }
    if theirs:
        result["sb3_wall_s"] = [round(x, 2) for x in theirs]
        result["sb3_steps_per_s"] = round(a.steps / statistics.median(theirs), 1)
        result["ratio"] = round(statistics.median(theirs) / statistics.median(ours), 2)
    if a.algo == "sac":
        updating = a.steps - a.random_steps
        per_update, per_call = sac_update_seconds(a.env)
        wall = statistics.median(ours)
        # the fixed part of a run (setup, the random steps without updates, the final
        # evaluation): the same run stopped at the end of its random steps
        base = statistics.median(
            hybridrl_run(a.algo, a.env, a.random_steps, a.num_envs, a.random_steps, backends[0])
            for _ in range(a.repeats)
        )
        updating_step = (wall - base) / updating
        result["update_alone_per_s"] = round(1 / per_update, 1)
        result["update_per_call_per_s"] = round(1 / per_call, 1)
        # the whole run's time not spent computing its updates (random steps, env steps,
        # dispatch, acting, insertion, setup and the final evaluation all count as outside)
        result["outside_update_share"] = round(1 - per_update * updating / wall, 3)
        result["fixed_part_s"] = round(base, 2)
        result["updating_step_ms"] = round(1000 * updating_step, 3)
        # the measure: per updating env step, the share not spent in the update
        result["outside_update_share_per_step"] = round(1 - per_update / updating_step, 3)
        # paired: each run against the update cost measured right before it, so that the
        # machine's drift between minutes (up to 30% here) does not enter the share
        shares = [1 - u * updating / (w - base) for u, w in zip(paired, ours, strict=True)]
        result["update_alone_paired_per_s"] = [round(1 / u, 1) for u in paired]
        result["outside_update_share_paired"] = [round(x, 3) for x in shares]
        result["outside_update_share_paired_median"] = round(statistics.median(shares), 3)
        result["step_time_ms"] = round(1000 * wall / a.steps, 3)
        result["update_time_ms"] = round(1000 * per_update, 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
