"""A sweep trial run by d3rlpy instead of hybridrl: ``runner = "d3rlpy"`` in a sweep file.

The sweep schedules it like any trial (one process per seed, on Ray, with retries); the process
is this module, ``python -m hybridrl.sweep.d3rlpy_trial RECIPE --out RUN_DIR --dataset D ...``
(the options of ``hybridrl run`` that apply). It loads the dataset with hybridrl, writes the
five arrays d3rlpy trains on (``observations, actions, rewards, terminals, timeouts``, actions
in env units, rewards transformed as the recipe transforms them for hybridrl's agent) to a
temporary npz in the run directory, trains with ``hybridrl/bench_d3rlpy.py train`` (the one
d3rlpy adapter) in d3rlpy's own environment, and writes a run directory in hybridrl's format
(``run.json``, ``metrics.jsonl``, ``summary.json``; run name ``d3rlpy_AGENT``) that
``hybridrl report`` and the sweep's report aggregate beside hybridrl's runs.

What is matched to the hybridrl trial of the same recipe: the agent (``offline:AGENT`` or an
offline-only recipe file), updates (``offline_updates``), evaluation every
``offline_eval_interval`` updates on ``eval_episodes`` episodes, ``hidden_dims``, the offline
phase's batch size, observation standardisation (the recipe's ``normalize_observations``)
and the reward transform (``reward_normalization``, ``reward_scale``, ``reward_bias``).
Settings that only shape how hybridrl executes (checkpoints, chunks, logging, env backend)
do not apply; a trial that sets one d3rlpy cannot honour (``reward_kind``, ``env_kwargs``,
``max_episode_steps``, ``robustness_eps``, an agent config field other than ``hidden_dims``)
is refused when the sweep file is read. d3rlpy's Python: ``$HYBRIDRL_D3RLPY_PYTHON``, else
the repository's ``.venv-compare`` (``scripts/setup-compare``). A retried trial
(``--resume``) starts over: d3rlpy's training has no checkpoints here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hybridrl.types import HybridRLError

__all__ = ["AGENTS", "PYTHON_VARIABLE", "check_trial", "d3rlpy_python", "trial_command"]

AGENTS = ("bc", "iql", "td3_bc", "cql")  # bench_d3rlpy.py train's offline algorithms
PYTHON_VARIABLE = "HYBRIDRL_D3RLPY_PYTHON"
# trial options this runner reads; the other RunSettings only shape hybridrl's execution
USED = (
    "recipe",
    "dataset",
    "env",
    "runner",
    "offline_updates",
    "offline_eval_interval",
    "eval_episodes",
    "reference_returns",
)
# robustness_eps: d3rlpy runs log no robustness metrics, so asking for them is refused
REFUSED = ("reward_kind", "env_kwargs", "max_episode_steps", "robustness_eps")


def check_trial(recipe: Any, options: Mapping[str, Any], sets: Mapping[str, Any]) -> None:
    """Refuse (`HybridRLError`) a trial d3rlpy cannot run as hybridrl would."""
    from hybridrl.training.phases import Offline

    if len(recipe.phases) != 1 or not isinstance(recipe.phases[0], Offline):
        raise HybridRLError(
            f"runner d3rlpy: recipe {recipe.name!r} must be offline training only "
            "(offline:AGENT or an offline-only recipe file)"
        )
    if recipe.phases[0].sampler != "uniform":
        raise HybridRLError(
            f"runner d3rlpy: recipe {recipe.name!r} samples with "
            f"{recipe.phases[0].sampler!r}; d3rlpy's runs sample uniformly"
        )
    if recipe.agent not in AGENTS:
        raise HybridRLError(
            f"runner d3rlpy: agent {recipe.agent!r} has no d3rlpy counterpart here; "
            f"one of {', '.join(AGENTS)}"
        )
    for key in REFUSED:
        if options.get(key) is not None:
            raise HybridRLError(f"runner d3rlpy: {key} does not apply to d3rlpy's runs")
    extra = sorted(set(sets) - {"hidden_dims"})
    if extra:
        raise HybridRLError(
            f"runner d3rlpy: set.{extra[0]}: only hidden_dims is passed to d3rlpy's agents"
        )
    if "dataset" not in options:
        raise HybridRLError("runner d3rlpy: needs a dataset")


def trial_command(options: Mapping[str, Any], overrides: Mapping[str, Any]) -> list[str]:
    """The process of a d3rlpy trial (without ``--out``, ``--seed``)."""
    cmd = [sys.executable, "-m", "hybridrl.sweep.d3rlpy_trial", str(options["recipe"])]
    for key in USED:
        value = options.get(key)
        if key in ("recipe", "runner") or value is None:
            continue
        if key == "reference_returns":
            value = ",".join(str(v) for v in value)
        cmd += ["--" + key.replace("_", "-"), str(value)]
    if "hidden_dims" in overrides:
        cmd += ["--hidden-dims", ",".join(str(h) for h in overrides["hidden_dims"])]
    return cmd


def d3rlpy_python() -> str | None:
    """d3rlpy's Python: ``$HYBRIDRL_D3RLPY_PYTHON``, else the repository's ``.venv-compare``."""
    from hybridrl.bench_d3rlpy import find_d3rlpy_python

    return find_d3rlpy_python(os.environ.get(PYTHON_VARIABLE) or None)


def _export(ds: Any, path: Path, scale: float, bias: float) -> None:
    """The arrays ``bench_d3rlpy.py train`` reads, rewards as ``scale * r + bias``."""
    import numpy as np

    t = ds.transitions
    arrays = {k: np.asarray(getattr(t, k)) for k in ("observations", "actions", "terminals")}
    arrays["timeouts"] = np.asarray(t.timeouts)
    rewards = np.asarray(t.rewards, np.float64)
    arrays["rewards"] = (scale * rewards + bias).astype(np.float32)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train with d3rlpy and write the run directory; returns the summary."""
    from hybridrl.bench_d3rlpy import run_worker, worker_command
    from hybridrl.data import load_dataset
    from hybridrl.data.io import atomic_path
    from hybridrl.training.phases import Offline
    from hybridrl.training.prepared import reward_factor
    from hybridrl.training.recipes import get_recipe

    recipe = get_recipe(args.recipe).with_budget(offline_updates=args.offline_updates)
    if args.hidden_dims:
        recipe = recipe.with_config(hidden_dims=[int(h) for h in args.hidden_dims.split(",")])
    check_trial(recipe, {"dataset": args.dataset}, {})
    python = d3rlpy_python()
    if python is None:
        raise HybridRLError(
            f"no Python with d3rlpy: run scripts/setup-compare or set ${PYTHON_VARIABLE}"
        )
    ds = load_dataset(args.dataset)
    env_id = args.env or ds.metadata.env_id
    if not env_id:
        raise HybridRLError(f"dataset {args.dataset}: no env id in its metadata; give env")
    phase = recipe.phases[0]
    assert isinstance(phase, Offline)  # check_trial
    hidden = tuple(recipe.agent_config().hidden_dims)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "d3rlpy_data.npz"
    _export(ds, data, recipe.reward_scale * reward_factor(recipe, ds), recipe.reward_bias)
    cmd = worker_command(
        python,
        "train",
        f"--data={data}",
        f"--env={env_id}",
        f"--algo={recipe.agent}",
        f"--steps={phase.updates}",
        f"--eval-interval={args.offline_eval_interval}",
        f"--eval-episodes={args.eval_episodes}",
        f"--seed={args.seed}",
        f"--hidden={','.join(map(str, hidden))}",
        f"--batch-size={phase.batch_size}",
    )
    if recipe.normalize_observations:
        cmd.append("--normalize-observations")
    try:
        result = run_worker(cmd)
    except RuntimeError as exc:
        raise HybridRLError(str(exc)) from None
    finally:
        data.unlink(missing_ok=True)
    lo, hi = ds.metadata.ref_min_score, ds.metadata.ref_max_score
    if args.reference_returns:
        lo, hi = (float(v) for v in args.reference_returns.split(","))

    def score(ret: float) -> float:
        return ret if lo is None or hi is None else 100.0 * (ret - lo) / (hi - lo)

    records = [
        {
            "kind": "eval",
            "phase": "offline",
            "phase_index": 0,
            "env_step": 0,
            "score": score(e["return_mean"]),
            "q_probe": None,
            **e,
        }
        for e in result["evaluations"]
    ]
    unit = "return" if lo is None or hi is None else "normalized"
    name = f"d3rlpy_{recipe.agent}"
    info = {
        "name": name,
        "task": ds.metadata.name or env_id,
        "env_id": env_id,
        "seed": args.seed,
        "score_unit": unit,
        "switch_step": None,
        "phases": [{"name": "offline", "kind": "offline", "start_step": 0, "end_step": 0}],
        "d3rlpy_version": result["d3rlpy_version"],
        "torch": result["torch"],
        "recipe": recipe.to_dict(),
    }
    summary = {
        "name": name,
        "task": info["task"],
        "seed": args.seed,
        "score_unit": unit,
        "pretrain_score": None,
        "dip": None,
        "dip_score": None,
        "final_score": records[-1]["score"] if records else None,
        "regret": None,
        "improvement": None,
        "q_at_switch": None,
        "q_drift": None,
        "switch_step": None,
        "total_env_steps": 0,
        "total_updates": phase.updates,
        "wall_time_s": round(float(result["wall_time_s"]), 2),
    }
    for file, payload in (
        ("run.json", json.dumps(info, indent=2)),
        ("metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records)),
        ("summary.json", json.dumps(summary, indent=2)),
    ):
        with atomic_path(out / file) as tmp:
            tmp.write_text(payload)
    return summary


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", required=True)
    p.add_argument("--env", default=None)
    p.add_argument("--offline-updates", type=int, default=None)
    p.add_argument("--offline-eval-interval", type=int, default=50_000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--reference-returns", default=None, help="RANDOM,EXPERT")
    p.add_argument("--hidden-dims", default=None, help="e.g. 256,256 (default: the agent's)")
    p.add_argument("--resume", action="store_true", help="accepted; the run starts over")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        summary = train(args)
    except HybridRLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
