"""Sweeps: a grid or random search over recipes, datasets, envs, seeds and config overrides,
each run a ``hybridrl run`` process scheduled on Ray (`run_sweep`), with retries from the
runs' checkpoints. Sweep files are parsed and validated without Ray (`load_sweep`)."""

from hybridrl.sweep.execute import RunOutcome, SweepResult, run_command, run_sweep
from hybridrl.sweep.spec import Resources, SweepSpec, Trial, load_sweep, parse_sweep

__all__ = [
    "Resources",
    "RunOutcome",
    "SweepResult",
    "SweepSpec",
    "Trial",
    "load_sweep",
    "parse_sweep",
    "run_command",
    "run_sweep",
]
