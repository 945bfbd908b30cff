"""Whole offline runs of K seeds: one vmapped program (``--vmap-seeds``) vs one run after
another, same machine, same script.

    .venv/bin/python benchmarks/vmap_seeds.py                      # 5 seeds x 2000 IQL updates
    .venv/bin/python benchmarks/vmap_seeds.py --seeds 5 --updates 4000 --agent sac

The recipe is ``offline:AGENT`` (IQL by default) at the standard size (2x256 networks, batch
256) on a random-policy HalfCheetah-v5 dataset (obs 17, act 6), run through
`hybridrl.training.multi_seed.run_seeds` exactly as ``hybridrl run offline:iql --seeds
0,...,K-1 [--vmap-seeds]`` runs it: run directories, metric files, checkpoints and the final
evaluation (one episode per seed) included. Compilation is reported apart: the seconds JAX
itself reports spending in tracing, lowering and compiling during each mode
(``jax.monitoring``), so ``updates_per_s`` = K * updates / (wall - compile). Each mode runs
in a fresh process of its own (no compiled program carried from one mode to the other); the
evaluation episodes, file writes and checkpoints are inside both modes' wall-clock.

Prints one JSON line with both modes, the speed-up, ``nproc``, the CPU and the load average
(``os.getloadavg``) before and after: on a shared CPU, record it beside the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.monitoring

from hybridrl.data.collect import collect
from hybridrl.training.multi_seed import run_seeds
from hybridrl.training.recipes import offline_recipe

COMPILE_EVENTS = ("/jax/core/compile/",)  # trace, lower, backend compile durations


class CompileClock:
    """Seconds JAX reports for compilation (all ``/jax/core/compile/*`` durations)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **kwargs: Any) -> None:
        if event.startswith(COMPILE_EVENTS):
            self.seconds += duration


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor()
    for line in out.splitlines():
        if line.startswith("Model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agent", default="iql")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--updates", type=int, default=2000, help="offline updates per seed")
    p.add_argument("--chunk", type=int, default=500, help="updates per compiled call")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--dataset-steps", type=int, default=20_000)
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--modes", default="vmapped,sequential")
    args = p.parse_args()

    load_before = os.getloadavg()
    modes_asked = args.modes.split(",")
    if len(modes_asked) > 1:  # each mode in its own process, then one combined line
        modes = {}
        for mode in modes_asked:
            argv = [
                *("--agent", args.agent, "--seeds", str(args.seeds)),
                *("--updates", str(args.updates), "--chunk", str(args.chunk)),
                *("--batch-size", str(args.batch_size), "--env", args.env),
                *("--dataset-steps", str(args.dataset_steps)),
            ]
            proc = subprocess.run(
                [sys.executable, __file__, *argv, "--modes", mode],
                capture_output=True,
                text=True,
                check=True,
            )
            modes[mode] = json.loads(proc.stdout.strip().splitlines()[-1])["modes"][mode]
        report(args, modes, load_before)
        return
    dataset = collect(args.env, None, num_steps=args.dataset_steps, seed=0, progress=False)
    recipe = offline_recipe(args.agent, updates=args.updates)
    phases = tuple(dataclasses.replace(ph, batch_size=args.batch_size) for ph in recipe.phases)
    recipe = dataclasses.replace(recipe, phases=phases)
    settings = {
        "chunk_size": args.chunk,
        "log_interval": args.chunk,
        "checkpoint_interval": args.updates,  # one checkpoint per seed at the end
        "offline_eval_interval": args.updates,  # one evaluation per seed at the end
        "eval_episodes": 1,
    }
    seeds = list(range(args.seeds))
    clock = CompileClock()
    modes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in args.modes.split(","):
            compiled_before = clock.seconds
            start = time.perf_counter()
            results = run_seeds(
                recipe,
                args.env,
                seeds=seeds,
                dataset=dataset,
                run_dir=Path(tmp) / mode,
                vmap_seeds=mode == "vmapped",
                progress=False,
                echo=lambda line: None,
                **settings,
            )
            wall = time.perf_counter() - start
            compile_s = clock.seconds - compiled_before
            updates = sum(r.summary["total_updates"] for r in results)
            modes[mode] = {
                "wall_s": round(wall, 2),
                "compile_s": round(compile_s, 2),
                "updates": updates,
                "updates_per_s": round(updates / max(wall - compile_s, 1e-9), 1),
                "updates_per_s_with_compile": round(updates / wall, 1),
                "final_scores": [round(r.summary["final_score"], 3) for r in results],
            }
    report(args, modes, load_before)


def report(args: argparse.Namespace, modes: dict[str, Any], load_before: Any) -> None:
    out: dict[str, Any] = {
        "benchmark": "vmap_seeds",
        "agent": args.agent,
        "recipe": f"offline:{args.agent}",
        "env": args.env,
        "seeds": args.seeds,
        "updates_per_seed": args.updates,
        "chunk": args.chunk,
        "batch_size": args.batch_size,
        "network": "2x256 (agent default)",
        "modes": modes,
        "nproc": len(os.sched_getaffinity(0)),  # what `nproc` prints
        "cpu": cpu_model(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    if "vmapped" in modes and "sequential" in modes:
        v, s = modes["vmapped"], modes["sequential"]
        out["speedup"] = round(v["updates_per_s"] / s["updates_per_s"], 2)
        out["speedup_with_compile"] = round(s["wall_s"] / v["wall_s"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
