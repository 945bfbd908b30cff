"""The run of the resume-after-kill test, importable in-process and runnable as a script
(``python -m tests.o2o.resume_job RUN_DIR``), so a child process can be SIGKILLed mid-run."""

from __future__ import annotations

import sys
from pathlib import Path

from hybridrl.data.collect import NoiseConfig, collect
from hybridrl.training.phases import Offline, Online, Warmup
from hybridrl.training.recipes import Recipe
from hybridrl.training.runner import RunResult, run

# Cal-QL offline, a warm-up, then 50/50 mixing with Monte-Carlo returns computed online: the
# path with the most state to restore (two buffers, episode-wise inserts, two agents' caches).
RECIPE = Recipe(
    name="resume_test",
    agent="calql",
    config={"hidden_dims": (16, 16), "num_samples": 2},
    phases=(
        Offline(updates=60, batch_size=32),
        Warmup(steps=100),
        Online(steps=800, offline_ratio=0.5, batch_size=32),
    ),
)
SETTINGS = {
    "seed": 3,
    "num_envs": 2,
    "eval_episodes": 2,
    "eval_interval": 200,
    "offline_eval_interval": 30,
    "checkpoint_interval": 100,
    "log_interval": 50,
    "chunk_size": 20,
}


def dataset():
    return collect(
        "Pendulum-v1",
        None,
        num_steps=600,
        seed=0,
        noise=NoiseConfig(),
        ref_min_score=-1200.0,
        ref_max_score=-150.0,
        progress=False,
        name="pendulum-random",
    )


def main(run_dir: str | Path, resume: bool = False, online_steps: int | None = None) -> RunResult:
    recipe = RECIPE if online_steps is None else RECIPE.with_budget(online_steps=online_steps)
    return run(
        recipe,
        "Pendulum-v1",
        dataset=dataset(),
        run_dir=run_dir,
        resume=resume,
        progress=False,
        **SETTINGS,
    )


if __name__ == "__main__":
    main(sys.argv[1], resume=len(sys.argv) > 2)
