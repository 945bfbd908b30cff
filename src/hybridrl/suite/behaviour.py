"""Behaviour policies for D4RL-style suites, trained with hybridrl's own SAC.

D4RL (Fu et al., 2020, §5) trained SAC online per environment: the *expert* is the final
policy, the *medium* one is the policy at the point where training reached about one third of
the expert's return, and *medium-replay* is what the replay buffer held up to that point.
`train_behaviour` runs the registered ``sac`` recipe and exports the actor at every evaluation
as a portable `hybridrl.policies.MLPPolicy` (``snapshots/step_XXXXXXXX.npz``, the evaluation
return in its ``info``); `select_medium` picks the medium snapshot by return threshold, and
the snapshots before it are what a medium-replay set is rebuilt from.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridrl.data.io import atomic_path
from hybridrl.envs.make import env_spaces
from hybridrl.policies import MLPPolicy, policy_from_agent
from hybridrl.training.phases import Learner, Online
from hybridrl.training.recipes import get_recipe
from hybridrl.training.runner import Runner, run
from hybridrl.types import HybridRLError

SNAPSHOTS = "snapshots"


@dataclass(frozen=True)
class Snapshot:
    """One exported policy: its path, env step and mean evaluation return."""

    path: Path
    env_step: int
    return_mean: float


def train_behaviour(
    env_id: str,
    out_dir: str | Path,
    *,
    steps: int,
    seed: int = 0,
    eval_interval: int = 10_000,
    eval_episodes: int = 10,
    random_steps: int = 5000,
    num_envs: int = 1,
    resume: bool = False,
    progress: bool = True,
) -> list[Snapshot]:
    """Train SAC online on ``env_id`` for ``steps`` env steps, exporting a policy snapshot at
    every evaluation; writes ``expert.npz`` (the final policy) and ``behaviour.json``.

    ``num_envs`` > 1 steps that many env copies at once and runs as many updates per vector
    step (still one update per env step), which amortizes acting and dispatch: on a CPU the
    per-step Python and dispatch cost is close to the update's own."""
    out = Path(out_dir)
    _, act_space = env_spaces(env_id)
    recipe = get_recipe("sac").with_budget(online_steps=steps)
    online = recipe.phases[0]
    assert isinstance(online, Online)
    phase = dataclasses.replace(online, random_steps=min(random_steps, steps))
    recipe = dataclasses.replace(recipe, phases=(phase,))

    def export(runner: Runner, learner: Learner, record: dict[str, Any]) -> None:
        path = out / SNAPSHOTS / f"step_{record['env_step']:08d}.npz"
        info = {
            "env_id": env_id,
            "env_step": record["env_step"],
            "return_mean": record["return_mean"],
            "return_std": record["return_std"],
            "seed": seed,
        }
        policy_from_agent(learner.state, act_space, info=info).save(path)

    run(
        recipe,
        env_id,
        run_dir=out / "run",
        resume=resume,
        progress=progress,
        on_evaluation=export,
        seed=seed,
        eval_interval=eval_interval,
        eval_episodes=eval_episodes,
        checkpoint_interval=eval_interval,
        num_envs=num_envs,
    )
    command = " ".join(shlex.quote(a) for a in sys.argv)
    return finalize_behaviour(
        out, env_id, steps=steps, seed=seed, random_steps=random_steps, command=command
    )


EXPERT_CHOICES = ("latest", "best", "best-stochastic")
STOCHASTIC_EPISODES = 10
# best-stochastic re-evaluates the snapshots within this fraction of the best evaluation return
CANDIDATE_FRACTION = 0.8


def _best_stochastic(
    env_id: str, snapshots: list[Snapshot], seed: int
) -> tuple[Snapshot, dict[str, float]]:
    """The snapshot whose *sampled* actions return most over `STOCHASTIC_EPISODES` episodes,
    among those whose deterministic evaluation is within `CANDIDATE_FRACTION` of the best:
    the datasets hold stochastic rollouts, and a policy can be strong deterministically yet
    fall often when it samples (a Hopper snapshot at 130k steps: 3,085 deterministic, 1,407
    sampled)."""
    from hybridrl.data.collect import evaluate_policy

    top = max(s.return_mean for s in snapshots)
    candidates = [
        s for s in snapshots if s.return_mean >= top - (1 - CANDIDATE_FRACTION) * abs(top)
    ]
    sampled = {
        s.path.name: float(
            np.mean(
                evaluate_policy(
                    env_id,
                    MLPPolicy.load(s.path),
                    STOCHASTIC_EPISODES,
                    seed=seed + 7,
                    deterministic=False,
                )
            )
        )
        for s in candidates
    }
    best = max(candidates, key=lambda s: sampled[s.path.name])
    return best, sampled


def finalize_behaviour(
    out_dir: str | Path,
    env_id: str,
    *,
    steps: int,
    seed: int = 0,
    random_steps: int = 5000,
    expert: str = "latest",
    command: str | None = None,
) -> list[Snapshot]:
    """``expert.npz`` and ``behaviour.json`` (the command, each snapshot's return).

    ``expert="latest"`` takes the final snapshot, as D4RL took the final SAC policy;
    ``"best"`` takes the snapshot with the highest evaluation return, for a training that ended
    in one of SAC's transient collapses; ``"best-stochastic"`` re-evaluates the best snapshots
    with sampled actions, as the datasets are rolled out (`_best_stochastic`). ``command`` is
    the training's command line (kept from an earlier ``behaviour.json`` when None).
    `train_behaviour` calls this at the end; call it yourself to stop a training early and
    keep what it reached (``steps`` then records the planned budget)."""
    if expert not in EXPERT_CHOICES:
        raise HybridRLError(f"unknown expert choice '{expert}'; use one of {EXPERT_CHOICES}")
    out = Path(out_dir)
    snapshots = list_snapshots(out)
    if not snapshots:
        raise HybridRLError(f"no policy snapshots under {out / SNAPSHOTS}")
    sampled: dict[str, float] = {}
    if expert == "latest":
        chosen = snapshots[-1]
    elif expert == "best":
        chosen = max(snapshots, key=lambda s: s.return_mean)
    else:
        chosen, sampled = _best_stochastic(env_id, snapshots, seed)
    MLPPolicy.load(chosen.path).save(out / "expert.npz")
    run_json = out / "run" / "run.json"
    info_file = out / "behaviour.json"
    earlier = json.loads(info_file.read_text()) if info_file.exists() else {}
    this_command = " ".join(shlex.quote(a) for a in sys.argv)
    recipe = (
        json.loads(run_json.read_text())["fingerprint"]["recipe"] if run_json.exists() else None
    )
    with atomic_path(out / "behaviour.json") as tmp:
        tmp.write_text(
            json.dumps(
                {
                    "env_id": env_id,
                    "planned_steps": steps,
                    "trained_steps": snapshots[-1].env_step,
                    "seed": seed,
                    "random_steps": random_steps,
                    "expert": {
                        "choice": expert,
                        "file": chosen.path.name,
                        **({"sampled_returns": sampled} if sampled else {}),
                    },
                    "recipe": recipe,  # as run (config: overrides of sac.Config defaults)
                    "command": command or earlier.get("command"),
                    "finalized_by": this_command,
                    "snapshots": [
                        {"file": s.path.name, "env_step": s.env_step, "return": s.return_mean}
                        for s in snapshots
                    ],
                },
                indent=2,
            )
        )
    return snapshots


def publish(
    src_dir: str | Path, env: str, dest_root: str | Path, *, reference_episodes: int = 100
) -> dict[str, Any]:
    """Copy what a suite needs from a training directory into ``dest_root/env``: the expert,
    the snapshots up to the medium one, ``behaviour.json`` and ``references.json`` (random and
    expert returns over ``reference_episodes`` episodes, the expert deterministic)."""
    import shutil

    src, dest = Path(src_dir), Path(dest_root) / env
    info = json.loads((src / "behaviour.json").read_text())
    n = reference_episodes
    lo, hi = reference_returns(info["env_id"], MLPPolicy.load(src / "expert.npz"), n)
    snapshots = list_snapshots(src)
    medium = select_medium(snapshots, expert_return=hi, random_return=lo)
    if (dest / SNAPSHOTS).exists():  # a re-publish may keep fewer snapshots than before
        shutil.rmtree(dest / SNAPSHOTS)
    (dest / SNAPSHOTS).mkdir(parents=True)
    for snap in snapshots:
        if snap.env_step <= medium.env_step:
            shutil.copy2(snap.path, dest / SNAPSHOTS / snap.path.name)
    shutil.copy2(src / "expert.npz", dest / "expert.npz")
    shutil.copy2(src / "behaviour.json", dest / "behaviour.json")
    refs = {
        "random": lo,
        "expert": hi,
        "episodes": n,
        "expert_policy": "expert.npz, deterministic",
        "medium": {"file": medium.path.name, "env_step": medium.env_step},
    }
    with atomic_path(dest / "references.json") as tmp:
        tmp.write_text(json.dumps(refs, indent=2))
    return refs


def reference_returns(
    env_id: str, expert: Any, episodes: int, *, seed: int = 0
) -> tuple[float, float]:
    """Mean returns of the uniform random policy and of ``expert`` (deterministic) over
    ``episodes`` episodes: the 0 and 100 of normalized scores."""
    from hybridrl.data.collect import evaluate_policy
    from hybridrl.policies import RandomPolicy

    _, act_space = env_spaces(env_id)
    lo = evaluate_policy(env_id, RandomPolicy(act_space), episodes, seed=seed)
    hi = evaluate_policy(env_id, expert, episodes, seed=seed + 1)
    return float(np.mean(lo)), float(np.mean(hi))


def list_snapshots(out_dir: str | Path) -> list[Snapshot]:
    """The exported snapshots under ``out_dir/snapshots``, in training order."""
    found = []
    for path in sorted((Path(out_dir) / SNAPSHOTS).glob("step_*.npz")):
        info = MLPPolicy.load(path).info
        found.append(Snapshot(path, int(info["env_step"]), float(info["return_mean"])))
    return found


def select_medium(
    snapshots: list[Snapshot], expert_return: float, random_return: float, fraction: float = 1 / 3
) -> Snapshot:
    """The first snapshot whose return reaches ``fraction`` of the way from the random to the
    expert return (D4RL's early stop at about one third of the expert)."""
    threshold = random_return + fraction * (expert_return - random_return)
    for snap in snapshots:
        if snap.return_mean >= threshold:
            return snap
    best = max(snapshots, key=lambda s: s.return_mean)
    raise HybridRLError(
        f"no snapshot reaches the medium threshold {threshold:.1f} "
        f"(best: {best.return_mean:.1f} at step {best.env_step})"
    )


def returns_summary(snapshots: list[Snapshot]) -> np.ndarray:
    """``(env_step, return)`` rows, for plots and docs."""
    return np.asarray([(s.env_step, s.return_mean) for s in snapshots], np.float64)
